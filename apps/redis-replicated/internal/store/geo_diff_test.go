package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// The GEO commands against a real Redis 7.0.15, reply for reply.

func TestGeoErrorsDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("geoadd", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
		cmd("geoadd", "g", "200", "10", "x"), cmd("geoadd", "g", "10", "85.06", "x"),
		cmd("geoadd", "g", "-180.0000001", "0", "x"), cmd("geoadd", "g", "inf", "0", "x"),
		cmd("geoadd", "g", "1", "-inf", "x"), cmd("geoadd", "g", "abc", "0", "x"), cmd("geoadd", "g", "1", " 2", "x"),
		cmd("geoadd", "g", "nan", "0", "x"), cmd("geoadd", "g", "1", "2", "x", "3"),
		cmd("geoadd", "g", "nx", "xx", "1", "2", "x"), cmd("geoadd", "g", "ch", "ch", "ch"),
		cmd("geoadd", "g", "gt", "1", "2", "x"), cmd("geoadd", "g", "1", "2"),
		cmd("geoadd", "g", "ch", "nx", "13.361389", "38.115556", "Palermo", "1", "2", "New"),
		cmd("geoadd", "g", "CH", "XX", "13.361389", "38", "Palermo", "1", "2", "Newer"),
		cmd("geoadd", "g", "xx", "0", "0", "missing"),
		cmd("set", "s", "x"), cmd("geoadd", "s", "1", "2", "m"), cmd("geoadd", "s", "1", "200", "m"),
		cmd("geopos", "s", "m"), cmd("geohash", "s", "m"), cmd("geodist", "s", "a", "b"),
		cmd("geosearch", "s", "fromlonlat", "0", "0", "byradius", "1", "m"),
		cmd("georadius", "s", "0", "0", "1", "m"), cmd("georadiusbymember", "s", "m", "1", "m"),
		cmd("geosearchstore", "d", "s", "fromlonlat", "0", "0", "byradius", "1", "m"),
		cmd("geodist", "g", "Palermo", "Catania", "yd"), cmd("geodist", "g", "Palermo", "Catania", "km", "x"),
		cmd("geodist", "g", "Palermo", "Catania", "KM"), cmd("geodist", "g", "Palermo", "Catania", "Mi"),
		cmd("geodist", "g", "Palermo", "Catania", "ft"), cmd("geodist", "g", "Palermo", "nope"),
		cmd("geodist", "nokey", "a", "b"), cmd("geodist", "g", "Palermo", "Palermo"),
		cmd("geopos", "g", "Palermo", "nope", "Catania", "New"), cmd("geopos", "nokey", "a", "b"),
		cmd("geohash", "g", "Palermo", "nope", "Catania"), cmd("geohash", "nokey", "a"),
		cmd("georadius", "g", "15", "37", "-1", "km"), cmd("georadius", "g", "15", "37", "x", "km"),
		cmd("georadius", "g", "15", "37", "1", "yd"), cmd("georadius", "g", "181", "37", "1", "km"),
		cmd("georadius", "g", "15", "37", "200", "km", "count", "0"),
		cmd("georadius", "g", "15", "37", "200", "km", "count", "-3"),
		cmd("georadius", "g", "15", "37", "200", "km", "count", "x"),
		cmd("georadius", "g", "15", "37", "200", "km", "count"),
		cmd("georadius", "g", "15", "37", "200", "km", "any"),
		cmd("georadius", "g", "15", "37", "200", "km", "store"),
		cmd("georadius", "g", "15", "37", "200", "km", "store", "d", "withdist"),
		cmd("georadius", "g", "15", "37", "200", "km", "bybox", "1", "1", "km"),
		cmd("georadius_ro", "g", "15", "37", "200", "km", "store", "d"),
		cmd("georadiusbymember", "g", "nope", "200", "km"),
		cmd("georadiusbymember", "nokey", "nope", "x", "km", "store", "d"),
		cmd("georadiusbymember", "nokey", "nope", "x", "km", "bogus"),
		cmd("georadiusbymember_ro", "nokey", "nope", "x", "km", "withdist"),
		cmd("geosearch", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "store", "d"),
		cmd("geosearch", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "storedist"),
		cmd("GeoSearch", "g", "byradius", "200", "km", "asc"),
		cmd("geosearch", "g", "frommember", "Palermo", "asc", "count", "1"),
		cmd("geosearch", "g", "frommember", "nope", "byradius", "200", "km"),
		cmd("geosearch", "nokey", "frommember", "nope", "byradius", "200", "km"),
		cmd("geosearch", "nokey", "frommember", "nope", "byradius", "x", "km"),
		cmd("geosearch", "g", "frommember", "Palermo", "fromlonlat", "1", "2", "byradius", "200", "km"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "frommember", "Palermo", "byradius", "200", "km"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "byradius", "200", "km", "bybox", "1", "1", "m"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "bybox", "-1", "1", "m"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "bybox", "x", "1", "m"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "bybox", "1", "y", "m"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "bybox", "1", "1", "furlong"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "bybox", "1", "1"),
		cmd("geosearch", "g", "fromlonlat", "1", "200", "bybox", "1", "1", "m"),
		cmd("geosearch", "g", "fromlonlat", "1", "2", "byradius", "1", "m", "any"),
		cmd("geosearchstore", "d", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "withcoord"),
		cmd("geosearchstore", "d", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "store", "x"),
		cmd("geosearchstore", "d", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "storedist", "asc"),
		cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("geosearchstore", "d", "g", "fromlonlat", "15", "37", "byradius", "1", "m"),
		cmd("exists", "d"),
		cmd("georadius", "g", "15", "37", "200", "km", "store", "d2", "storedist", "d3"),
		cmd("zrange", "d3", "0", "-1", "withscores"), cmd("exists", "d2"),
		cmd("georadius", "g", "15", "37", "200", "km", "withdist", "withhash", "withcoord", "desc"),
		cmd("georadius", "g", "15", "37", "0", "km", "withdist"),
		cmd("geosearch", "g", "frommember", "Palermo", "byradius", "0", "m", "withdist", "withcoord", "withhash"),
		cmd("geosearch", "g", "frommember", "Palermo", "bybox", "0", "0", "m", "withdist"),
		cmd("set", "s", "x"), cmd("georadius", "nokey", "15", "37", "200", "km", "store", "s"), cmd("exists", "s"),
		cmd("georadius", "nokey", "15", "37", "200", "km"),
		cmd("geosearchstore", "g", "g", "frommember", "Palermo", "byradius", "100", "km"),
		cmd("zrange", "g", "0", "-1", "withscores"),
	})
}

// geoCoord formats a random coordinate with a random precision.
func geoCoord(r *rand.Rand, lo, hi float64) string {
	return strconv.FormatFloat(lo+r.Float64()*(hi-lo), 'f', r.IntN(12), 64)
}

// geoRandomPoint is a longitude and a latitude, one in five at a limit
// (the poles' ±85.05112878, the antimeridian).
func geoRandomPoint(r *rand.Rand) (string, string) {
	lon, lat := geoCoord(r, -180, 180), geoCoord(r, -85.05112878, 85.05112878)
	switch r.IntN(10) {
	case 0:
		lat = []string{"85.05112878", "-85.05112878", "85.0511", "-85.05"}[r.IntN(4)]
	case 1:
		lon = []string{"180", "-180", "179.9999999", "-179.99999"}[r.IntN(4)]
	case 2:
		lon, lat = geoCoord(r, 10, 10.5), geoCoord(r, 45, 45.5) // a cluster
	}
	return lon, lat
}

func geoRandomUnit(r *rand.Rand) (dist, unit string) {
	unit = []string{"m", "km", "ft", "mi", "KM"}[r.IntN(5)]
	meters := []float64{50, 5000, 200000, 2000000, 8000000, 25000000, 45000000}[r.IntN(7)] * r.Float64()
	perUnit := map[string]float64{"m": 1, "km": 1000, "ft": 0.3048, "mi": 1609.34, "KM": 1000}[unit]
	return strconv.FormatFloat(meters/perUnit, 'f', r.IntN(5), 64), unit
}

// geoRandomOptions are the reply options of a search, in any order
// (COUNT n [ANY] kept together).
func geoRandomOptions(r *rand.Rand, store bool) []string {
	var opts [][]string
	if !store {
		for _, w := range []string{"withdist", "withhash", "withcoord"} {
			if r.IntN(2) == 0 {
				opts = append(opts, []string{w})
			}
		}
	}
	switch r.IntN(3) {
	case 0:
		opts = append(opts, []string{"asc"})
	case 1:
		opts = append(opts, []string{"DESC"})
	}
	if r.IntN(2) == 0 {
		count := []string{"count", strconv.Itoa(1 + r.IntN(12))}
		if r.IntN(3) == 0 {
			count = append(count, "any")
		}
		opts = append(opts, count)
	}
	r.Shuffle(len(opts), func(i, j int) {
		opts[i], opts[j] = opts[j], opts[i]
	})
	var flat []string
	for _, o := range opts {
		flat = append(flat, o...)
	}
	return flat
}

// geoRandomScript adds points (duplicates among them) to a few keys and
// searches them every way there is.
func geoRandomScript(seed uint64, n int) []xstep {
	r := rand.New(rand.NewPCG(seed, 7))
	keys := []string{"g1", "g2", "g3"}
	member := func() string { return "m" + strconv.Itoa(r.IntN(400)) }
	var script []xstep
	type point struct{ lon, lat string }
	var seen []point
	for range n {
		key := keys[r.IntN(len(keys))]
		switch k := r.IntN(20); {
		case k < 8:
			args := []string{"geoadd", key}
			if r.IntN(4) == 0 {
				args = append(args, []string{"nx", "xx", "ch", "CH"}[r.IntN(4)])
			}
			for range 1 + r.IntN(6) {
				p := point{}
				if len(seen) > 0 && r.IntN(6) == 0 {
					p = seen[r.IntN(len(seen))] // the same place, another member
				} else {
					p.lon, p.lat = geoRandomPoint(r)
					seen = append(seen, p)
				}
				args = append(args, p.lon, p.lat, member())
			}
			script = append(script, x(args...))
		case k < 10:
			script = append(script, x("geopos", key, member(), member()), x("geohash", key, member(), member()))
			d := []string{"geodist", key, member(), member()}
			if r.IntN(2) == 0 {
				_, u := geoRandomUnit(r)
				d = append(d, u)
			}
			script = append(script, x(d...))
		case k < 16:
			store := r.IntN(4) == 0
			args := []string{"geosearch", key}
			if store {
				args = []string{"geosearchstore", "dst", key}
			}
			if r.IntN(2) == 0 || len(seen) == 0 {
				lon, lat := geoRandomPoint(r)
				args = append(args, "fromlonlat", lon, lat)
			} else {
				args = append(args, "frommember", member())
			}
			dist, unit := geoRandomUnit(r)
			if r.IntN(2) == 0 {
				args = append(args, "byradius", dist, unit)
			} else {
				w, _ := geoRandomUnit(r)
				args = append(args, "bybox", dist, w, unit)
			}
			args = append(args, geoRandomOptions(r, store)...)
			if store && r.IntN(2) == 0 {
				args = append(args, "storedist")
			}
			script = append(script, x(args...))
			if store {
				script = append(script, geoStored(), x("object", "encoding", "dst"))
			}
		default:
			name := []string{"georadius", "georadius_ro", "georadiusbymember", "georadiusbymember_ro"}[r.IntN(4)]
			args := []string{name, key}
			if name == "georadius" || name == "georadius_ro" {
				lon, lat := geoRandomPoint(r)
				args = append(args, lon, lat)
			} else {
				args = append(args, member())
			}
			dist, unit := geoRandomUnit(r)
			args = append(args, dist, unit)
			store := (name == "georadius" || name == "georadiusbymember") && r.IntN(3) == 0
			args = append(args, geoRandomOptions(r, store)...)
			if store {
				args = append(args, []string{"store", "storedist"}[r.IntN(2)], "dst")
			}
			script = append(script, x(args...))
			if store {
				script = append(script, geoStored(), x("object", "encoding", "dst"))
			}
		}
	}
	for _, k := range keys {
		script = append(script, x("zrange", k, "0", "-1", "withscores"))
	}
	return script
}

func TestGeoRandomDiff(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			script := geoRandomScript(seed, 1500)
			runDiffX(t, script)
			geoCheckReplay(t, script)
		})
	}
}

// geoCheckReplay runs script on a leader and its writes alone on a
// follower, as the log would: the two must end in the same state.
func geoCheckReplay(t *testing.T, script []xstep) {
	t.Helper()
	env := func() *Env { return &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(3, 3))} }
	leader, follower := New(), New()
	for _, st := range script {
		out := execArgs(leader, env(), st.args)
		if c := Lookup([]byte(st.args[0])); c != nil && c.Flags&Write != 0 {
			if again := execArgs(follower, env(), st.args); string(again) != string(out) {
				t.Fatalf("%q: the follower replied %q, the leader %q", st.args, again, out)
			}
		}
	}
	if leader.Digest() != follower.Digest() {
		t.Fatal("the leader's and the follower's digests differ")
	}
}

// geoStored reads the destination of a search's STORE back. The
// distances STOREDIST keeps to their last bit may differ from Redis's in
// the last bits, rarely (an ulp of glibc's sine or cosine, which the
// arcsine may magnify; see geomath.go): they are compared to within a
// relative 1e-12 (the destination may hold them from an earlier search
// when this one failed).
func geoStored() xstep {
	st := x("zrange", "dst", "0", "-1", "withscores")
	st.judge = func(*Store, *redistest.Conn) func(got, want string) error { return geoNearScores }
	return st
}

// geoNearScores compares a ZRANGE WITHSCORES reply's members and integral
// scores (geohashes) exactly, its other scores to within a relative 1e-12.
func geoNearScores(got, want string) error {
	if got == want {
		return nil
	}
	g, ok1 := bulksOf(got)
	w, ok2 := bulksOf(want)
	if !ok1 || !ok2 || len(g) != len(w) {
		return fmt.Errorf("not the same array")
	}
	for i := range g {
		if g[i] == w[i] {
			continue
		}
		if i%2 == 0 || !strings.Contains(g[i], ".") || !strings.Contains(w[i], ".") {
			return fmt.Errorf("element %d differs", i)
		}
		gf, err1 := strconv.ParseFloat(g[i], 64)
		wf, err2 := strconv.ParseFloat(w[i], 64)
		if err1 != nil || err2 != nil || math.Abs(gf-wf) > 1e-12*math.Abs(wf) {
			return fmt.Errorf("score %d differs by more than its last bits", i/2)
		}
	}
	return nil
}

// TestGeoTiesDiff: many members at one place, so the order among equal
// distances is the sort's own (glibc's stable qsort for all of them,
// Redis's pqsort under a COUNT).
func TestGeoTiesDiff(t *testing.T) {
	script := []step{}
	add := []string{"geoadd", "t"}
	for i := range 90 {
		switch i % 3 {
		case 0:
			add = append(add, "2.5", "48.8", "same"+strconv.Itoa(i))
		case 1:
			add = append(add, "2.51", "48.8", "near"+strconv.Itoa(i))
		default:
			add = append(add, strconv.FormatFloat(2.5+float64(i)/1000, 'f', -1, 64), "48.81", "p"+strconv.Itoa(i))
		}
	}
	script = append(script, cmd(add...))
	for _, n := range []string{"1", "3", "7", "8", "30", "41", "45", "60", "89", "90", "100"} {
		for _, dir := range []string{"asc", "desc"} {
			script = append(script,
				cmd("geosearch", "t", "fromlonlat", "2.5", "48.8", "byradius", "50", "km", dir, "count", n),
				cmd("geosearch", "t", "frommember", "p5", "bybox", "40", "40", "km", dir, "count", n, "withdist"),
				cmd("georadius", "t", "2.5", "48.8", "50", "km", dir, "count", n, "store", "d"),
				cmd("zrange", "d", "0", "-1", "withscores"),
				cmd("geosearch", "t", "fromlonlat", "2.5", "48.8", "byradius", "50", "km", "count", n, "any"))
		}
	}
	script = append(script, cmd("geosearch", "t", "fromlonlat", "2.5", "48.8", "byradius", "50", "km", "desc"),
		cmd("geosearch", "t", "fromlonlat", "2.5", "48.8", "byradius", "50", "km", "asc", "withcoord"))
	runDiff(t, script)
}

// TestGeoNotifyDiff: the keyspace events of the GEO writes are Redis's
// (GEOADD's are ZADD's; the STORE forms' georadiusstore, geosearchstore
// or del).
func TestGeoNotifyDiff(t *testing.T) {
	r := newNotifyRig(t, "KEA")
	for _, st := range [][]string{
		{"geoadd", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"},
		{"geoadd", "g", "13.361389", "38.115556", "Palermo"}, {"geoadd", "g", "xx", "ch", "13", "38", "Palermo"},
		{"geoadd", "g", "200", "38", "bad"}, {"geoadd", "g", "nx", "1", "1", "Palermo"},
		{"georadius", "g", "15", "37", "200", "km", "store", "d"}, {"georadius", "g", "15", "37", "1", "m", "storedist", "d"},
		{"georadius", "g", "15", "37", "1", "m", "storedist", "d"}, {"georadiusbymember", "g", "Palermo", "300", "km", "storedist", "d"},
		{"geosearchstore", "d2", "g", "frommember", "Catania", "bybox", "500", "500", "km"},
		{"geosearchstore", "d2", "nokey", "frommember", "Catania", "bybox", "500", "500", "km"},
		{"georadius", "g", "15", "37", "200", "km"}, {"geosearch", "g", "fromlonlat", "15", "37", "byradius", "200", "km"},
	} {
		r.do(st...)
	}
}

// TestGeoOddScoresDiff: members whose scores are no geohash (negative,
// beyond 52 bits, infinite) decode as Redis's casts decode them.
func TestGeoOddScoresDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("zadd", "k", "-5", "a", "1e30", "b", "inf", "c", "-inf", "d", "9.3e18", "e", "1.8e19", "f", "4503599627370496", "g",
			"4503599627370495", "h", "0", "i", "0.5", "j", "-1e19", "l"),
		cmd("geopos", "k", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l"),
		cmd("geohash", "k", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l"),
		cmd("geodist", "k", "a", "h"), cmd("geodist", "k", "e", "i"), cmd("geodist", "k", "c", "d"),
		cmd("geosearch", "k", "frommember", "a", "byradius", "20000", "km", "asc", "withcoord", "withdist", "withhash"),
		cmd("geosearch", "k", "frommember", "h", "bybox", "40000", "40000", "km", "desc", "withhash"),
		cmd("geosearch", "k", "fromlonlat", "0", "0", "byradius", "1", "m", "withhash", "withcoord"),
	})
}
