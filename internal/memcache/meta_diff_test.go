package memcache

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

// The differential test runs a seeded random stream of meta commands (and
// a few classic ones) through a Store and through a real memcached, and
// compares the replies. Replies are compared unit by unit (a line, or a
// data block), token by token, with these intentional differences:
//
//   - CAS values differ (memcached's counter is its own, shared with other
//     tests): they must correspond one to one, c0 to c0;
//   - TTLs (mg/ma t, me exp) may differ by up to 2 seconds: the two
//     clocks tick their seconds apart, and memcached converts absolute
//     times with its monotonic clock and start time;
//   - last access times (mg l, me la) are not compared: memcached moves
//     them with its LRU maintainer;
//   - the E flag is this package's extension (1.6.18 rejects it) and is
//     not generated, nor are negative TTLs together with t (memcached then
//     prints its own uptime);
//   - counters are kept apart (see metaGen): memcached rewrites a number
//     in place or makes a new item depending on who else holds the item at
//     that moment.
//
// Everything else, errors and quiet mode included, must be identical.
// GOMU_META_DIFF_SEEDS=n runs n other seeds; GOMU_META_DIFF_DUMP=dir
// writes the stream of a failing seed there.

// casMap checks that CAS values correspond one to one.
type casMap struct {
	fwd, back map[string]string
	// looseFetch, if set, tells the keys whose me fetch is not compared.
	looseFetch func(key string) bool
}

func newCASMap() *casMap { return &casMap{fwd: map[string]string{}, back: map[string]string{}} }

func (m *casMap) match(a, b string) bool {
	if (a == "0") != (b == "0") {
		return false
	}
	if x, ok := m.fwd[a]; ok {
		return x == b
	}
	if x, ok := m.back[b]; ok {
		return x == a
	}
	m.fwd[a], m.back[b] = b, a
	return true
}

// replyUnit is one reply line, and the data block after a VA or VALUE line.
type replyUnit struct {
	line string
	data []byte
}

// splitReplies cuts a reply stream into units. It reports whether the
// stream is complete: it ends with a whole line (and data block).
func splitReplies(b []byte) (units []replyUnit, complete bool) {
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return units, false
		}
		u := replyUnit{line: string(b[:i])}
		b = b[i+2:]
		f := strings.Split(u.line, " ")
		n := -1
		switch {
		case f[0] == "VA" && len(f) >= 2:
			n, _ = strconv.Atoi(f[1])
		case f[0] == "VALUE" && len(f) >= 4:
			n, _ = strconv.Atoi(f[3])
		}
		if n >= 0 {
			if len(b) < n+2 {
				return units, false
			}
			u.data = b[:n+2]
			b = b[n+2:]
		}
		units = append(units, u)
	}
	return units, true
}

func absDiff(a, b string) (int64, bool) {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if x > y {
		return x - y, true
	}
	return y - x, true
}

// compareMeta compares our replies (want) with memcached's (got), allowing
// the differences listed above.
func compareMeta(want, got []byte, cas *casMap) error {
	wu, wok := splitReplies(want)
	gu, gok := splitReplies(got)
	if !wok || !gok {
		return fmt.Errorf("incomplete reply stream")
	}
	if len(wu) != len(gu) {
		return fmt.Errorf("%d reply units, want %d", len(gu), len(wu))
	}
	for i := range wu {
		if !bytes.Equal(wu[i].data, gu[i].data) {
			return fmt.Errorf("unit %d: data %q, want %q", i, gu[i].data, wu[i].data)
		}
		if err := compareLine(wu[i].line, gu[i].line, cas); err != nil {
			return fmt.Errorf("unit %d: %q, want %q: %v", i, gu[i].line, wu[i].line, err)
		}
	}
	return nil
}

func compareLine(want, got string, cas *casMap) error {
	wf, gf := strings.Split(want, " "), strings.Split(got, " ")
	if len(wf) != len(gf) {
		return errors.New("token count")
	}
	switch wf[0] {
	case "HD", "VA", "EN", "NF", "NS", "EX":
		for j := 1; j < len(wf); j++ {
			w, g := wf[j], gf[j]
			if w == g && !(len(w) > 0 && w[0] == 'c' && j > 0) {
				continue
			}
			if j == 1 && wf[0] == "VA" || len(w) == 0 || len(g) == 0 || w[0] != g[0] {
				return fmt.Errorf("token %d", j)
			}
			switch w[0] {
			case 'c':
				if !cas.match(w[1:], g[1:]) {
					return fmt.Errorf("cas %s vs %s", w, g)
				}
			case 't':
				if d, ok := absDiff(w[1:], g[1:]); !ok || d > 2 || w == "t-1" || g == "t-1" {
					return fmt.Errorf("ttl %s vs %s", w, g)
				}
			case 'l':
			default:
				return fmt.Errorf("token %d", j)
			}
		}
		return nil
	case "ME":
		for j := 1; j < len(wf); j++ {
			w, g := wf[j], gf[j]
			wk, wv, _ := strings.Cut(w, "=")
			gk, gv, _ := strings.Cut(g, "=")
			switch {
			case j == 1 || wk != gk:
				if w != g {
					return fmt.Errorf("token %d", j)
				}
			case wk == "cas":
				if !cas.match(wv, gv) {
					return fmt.Errorf("cas %s vs %s", w, g)
				}
			case wk == "exp":
				if d, ok := absDiff(wv, gv); !ok || d > 2 || (wv == "-1") != (gv == "-1") {
					return fmt.Errorf("exp %s vs %s", w, g)
				}
			case wk == "la":
			case wk == "fetch" && cas.looseFetch != nil && cas.looseFetch(wf[1]):
			default:
				if w != g {
					return fmt.Errorf("token %d", j)
				}
			}
		}
		return nil
	case "VALUE":
		if len(wf) == 5 {
			if !cas.match(wf[4], gf[4]) {
				return fmt.Errorf("cas %s vs %s", wf[4], gf[4])
			}
			wf, gf = wf[:4], gf[:4]
		}
		if strings.Join(wf, " ") != strings.Join(gf, " ") {
			return errors.New("differs")
		}
		return nil
	}
	if want != got {
		return errors.New("differs")
	}
	return nil
}

// observeCAS records, from replies that carry both, each key's CAS value.
func observeCAS(replies []byte, last map[string]string) {
	units, _ := splitReplies(replies)
	for _, u := range units {
		f := strings.Split(u.line, " ")
		var key, cas string
		haveKey := false
		switch f[0] {
		case "HD", "VA":
			for j, tok := range f[1:] {
				switch {
				case strings.HasPrefix(tok, "k"):
					key, haveKey = tok[1:], true
					if j+2 < len(f) && f[j+2] == "b" {
						dec, err := base64.StdEncoding.DecodeString(key)
						if err != nil {
							haveKey = false
						}
						key = string(dec)
					}
				case strings.HasPrefix(tok, "c"):
					cas = tok[1:]
				}
			}
		case "VALUE":
			if len(f) == 5 {
				key, cas, haveKey = f[1], f[4], true
			}
		}
		if haveKey && cas != "" && cas != "0" {
			last[key] = cas
		}
	}
}

// execStore runs a byte stream through a parser and st, as the server
// would (errors answered unless noreply, a too-large set drops the item).
func execStore(st *Store, in []byte) []byte {
	p := NewParser(bufio.NewReader(bytes.NewReader(in)), Limits{})
	var cmd Command
	var out []byte
	for {
		err := p.Parse(&cmd)
		now := time.Now().UnixNano()
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				return out
			}
			if pe == ErrTooLarge && (cmd.Op == OpSet || cmd.Op == OpMetaSet) {
				st.Delete(cmd.Key(), now)
			}
			out = AppendCommandError(out, &cmd, pe)
			if pe.Close {
				return out
			}
			continue
		}
		out = st.Exec(out, &cmd, now)
	}
}

// realRoundTrip sends a batch ending in mn to memcached and reads the
// replies up to its mns'th MN.
func realRoundTrip(c net.Conn, br *bufio.Reader, in []byte, mns int) ([]byte, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(in)
		werr <- err
	}()
	var got []byte
	for {
		line, err := br.ReadSlice('\n')
		got = append(got, line...)
		if err != nil {
			return got, err
		}
		f := strings.Split(strings.TrimSuffix(string(line), "\r\n"), " ")
		n := -1
		switch {
		case f[0] == "VA" && len(f) >= 2:
			n, _ = strconv.Atoi(f[1])
		case f[0] == "VALUE" && len(f) >= 4:
			n, _ = strconv.Atoi(f[3])
		case f[0] == "MN":
			if mns--; mns == 0 {
				return got, <-werr
			}
		}
		if n >= 0 {
			data := make([]byte, n+2)
			if _, err := io.ReadFull(br, data); err != nil {
				return got, err
			}
			got = append(got, data...)
		}
	}
}

// metaGen generates the random stream.
//
// memcached rewrites the number of an incr or ma in place (keeping the
// item's fetched bit, stale mark, win token and binary key mark, and
// padding a shorter number with spaces) only when nothing else holds the
// item: a reply of the same pipeline not yet sent, or its LRU maintainer
// thread at that moment; else it makes a new item. The store always
// behaves as in place. So counters get keys of their own (n1, n2): plain
// keys holding numbers of 6 or 7 digits (which no delta here shrinks),
// never stale, never won, never fetched with h (me's fetch is not compared
// for them), never asked for in the batch of an incr or ma. The other keys
// never hold numbers, so an ma of them fails or misses the same way on both.
type metaGen struct {
	r      *rand.Rand
	prefix string
	keys   []string // raw keys; counters first
	binary []bool   // raw key must be sent base64 encoded
	held   map[int]bool
}

const metaGenCounters = 2

func newMetaGen(seed uint64, prefix string) *metaGen {
	g := &metaGen{r: rand.New(rand.NewPCG(seed, 7)), prefix: prefix, held: map[int]bool{}}
	for _, name := range []string{"n1", "n2", "a", "b", "c"} {
		g.keys = append(g.keys, prefix+name)
		g.binary = append(g.binary, false)
	}
	g.keys = append(g.keys, prefix+"\x01bin\x7f\xc3\xa9=", prefix+"\xfe\xff")
	g.binary = append(g.binary, true, true)
	return g
}

func (g *metaGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// key returns a key token, the index of its raw key, and whether it is
// base64 (the command then needs the b flag).
func (g *metaGen) key(i int) (string, bool) {
	if g.binary[i] || i >= metaGenCounters && g.r.IntN(5) == 0 {
		return base64.StdEncoding.EncodeToString([]byte(g.keys[i])), true
	}
	return g.keys[i], false
}

// value returns a value for key i: a number for a counter (or, rarely,
// junk), never a number for the others.
func (g *metaGen) value(i int) string {
	if i < metaGenCounters && g.r.IntN(8) != 0 {
		return strconv.Itoa(200000 + g.r.IntN(700000))
	}
	if g.r.IntN(4) == 0 {
		return ""
	}
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 1+g.r.IntN(11))
	b[0] = 'v'
	for i := 1; i < len(b); i++ {
		b[i] = letters[g.r.IntN(len(letters))]
	}
	return string(b)
}

func (g *metaGen) ttl() string {
	return g.pick("0", "100", "300", "3000", "+300", strconv.FormatInt(time.Now().Unix()+1500, 10))
}

// casTok is a C token to resolve per side: the key's last CAS value seen
// (off 0 or -1), or values that match nothing.
func (g *metaGen) casTok(key int) string {
	switch g.r.IntN(5) {
	case 0:
		return "C0"
	case 1:
		return "C1125899906842624"
	case 2:
		return fmt.Sprintf("C{%d-1}", key)
	}
	return fmt.Sprintf("C{%d}", key)
}

// flags picks each option with probability p% and shuffles them after
// fixed.
func (g *metaGen) flags(fixed []string, p int, opts ...string) string {
	fl := fixed
	for _, o := range opts {
		if g.r.IntN(100) < p {
			fl = append(fl, o)
		}
	}
	g.r.Shuffle(len(fl), func(i, j int) { fl[i], fl[j] = fl[j], fl[i] })
	if len(fl) == 0 {
		return ""
	}
	return " " + strings.Join(fl, " ")
}

func (g *metaGen) opaque() string { return "O" + strconv.Itoa(g.r.IntN(100000)) }

// command returns one command, with its data block if any.
func (g *metaGen) command() string {
	ki := g.r.IntN(len(g.keys))
	counter := ki < metaGenCounters
	key, b := g.key(ki)
	var fixed []string
	if b {
		fixed = append(fixed, "b")
	}
	n := g.r.IntN(100)
	if n >= 67 && n < 80 && !counter && g.r.IntN(10) < 7 {
		// Mostly counters for ma: the other keys only fail.
		ki = g.r.IntN(metaGenCounters)
		counter = true
		key, _ = g.key(ki)
		fixed = fixed[:0]
	}
	if counter && g.held[ki] && n >= 67 && n < 80 {
		n = 80 // me instead of ma
	}
	switch {
	case n < 30: // mg
		g.held[ki] = true
		opts := []string{"v", "f", "t", "c", "s", "k", "q", "l", "u", g.opaque()}
		if !counter {
			opts = append(opts, "h")
		}
		if g.r.IntN(3) == 0 {
			fixed = append(fixed, g.pick("", "T"+g.ttl()))
			if !counter {
				fixed = append(fixed, g.pick("", "N"+g.ttl()), g.pick("", "R"+g.pick("0", "50", "200", "2000", "5000")))
			}
			fixed = slicesDeleteEmpty(fixed)
		}
		if g.r.IntN(25) == 0 {
			// A negative TTL, without t after it (memcached would print
			// its uptime).
			fixed = append(fixed, g.pick("N-1", "T-1"))
			opts = opts[:0]
		}
		return "mg " + key + g.flags(fixed, 35, opts...) + "\r\n"
	case n < 55: // ms
		v := g.value(ki)
		mode := g.pick("", "", "MS", "ME", "MA", "MP", "MR", "Ms")
		if counter && (mode == "MA" || mode == "MP") {
			v = strconv.Itoa(g.r.IntN(10))
		}
		if mode != "" {
			fixed = append(fixed, mode)
		}
		if g.r.IntN(4) == 0 {
			fixed = append(fixed, g.casTok(ki))
		}
		opts := []string{"c", "k", "q", g.opaque(), "F" + g.pick("0", "1", "4294967295", "77"), "T" + g.ttl()}
		if !counter {
			opts = append(opts, "I")
		}
		return fmt.Sprintf("ms %s %d%s\r\n%s\r\n", key, len(v), g.flags(fixed, 30, opts...), v)
	case n < 67: // md
		if g.r.IntN(4) == 0 {
			fixed = append(fixed, g.casTok(ki))
		}
		opts := []string{"q", "k", g.opaque(), "T" + g.ttl()}
		if !counter {
			opts = append(opts, "I")
		}
		return "md " + key + g.flags(fixed, 30, opts...) + "\r\n"
	case n < 80: // ma
		if g.r.IntN(5) == 0 {
			fixed = append(fixed, g.casTok(ki))
		}
		mode := g.pick("", "MI", "M+", "MD", "M-")
		if mode != "" {
			fixed = append(fixed, mode)
		}
		opts := []string{"q", "k", "v", "t", "c", g.opaque(), "T" + g.ttl()}
		if (mode == "" || mode == "MI" || mode == "M+") && g.r.IntN(3) == 0 {
			fixed = append(fixed, "D18446744073709551615")
		} else {
			opts = append(opts, "D"+g.pick("1", "2", "7"))
		}
		if counter {
			opts = append(opts, "N"+g.ttl(), "J"+strconv.Itoa(200000+g.r.IntN(700000)))
		}
		return "ma " + key + g.flags(slicesDeleteEmpty(fixed), 30, opts...) + "\r\n"
	case n < 84:
		return "me " + key + g.flags(fixed, 0) + "\r\n"
	case n < 92: // classic commands on plain keys
		k := g.keys[ki]
		if g.binary[ki] {
			k = g.keys[ki%metaGenCounters]
			ki = ki % metaGenCounters
			counter = true
		}
		switch c := g.r.IntN(6); {
		case c == 0 || c == 4 && (!counter || g.held[ki]):
			g.held[ki] = true
			return "get " + k + "\r\n"
		case c == 1:
			g.held[ki] = true
			return "gets " + k + "\r\n"
		case c == 2:
			v := g.value(ki)
			return fmt.Sprintf("set %s %d %s %d\r\n%s\r\n", k, g.r.IntN(3), g.ttl(), len(v), v)
		case c == 3:
			return "touch " + k + " " + g.ttl() + "\r\n"
		case c == 4:
			return "incr " + k + " " + g.pick("1", "10") + "\r\n"
		}
		if counter {
			return "append " + k + " 0 0 1\r\n7\r\n"
		}
		return "append " + k + " 0 0 1\r\nz\r\n"
	}
	return g.bad(key, g.flags(fixed, 0))
}

// bad returns a malformed command.
func (g *metaGen) bad(key, fl string) string {
	long := strings.Repeat("x", 251)
	switch g.r.IntN(20) {
	case 0:
		return "mg " + key + fl + " Z\r\n"
	case 1:
		return "mg " + key + fl + " v v\r\n"
	case 2:
		return "mg " + key + " T" + g.pick("x", "", "9x", "99999999999999999999") + "\r\n"
	case 3:
		return "mg " + key + " a b c d e f g h i j k l m n o p q r\r\n"
	case 4:
		return "mg " + long + " v\r\n"
	case 5:
		return "mg @@@ b v\r\n"
	case 6:
		return "ms " + key + " 3" + fl + " Z\r\nabc\r\n"
	case 7:
		return "ms " + key + " 2" + fl + "\r\nabc\r\n"
	case 8:
		return "ms " + key + " x\r\n"
	case 9:
		return "ms " + key + " 1 MX\r\na\r\n"
	case 10:
		return "md " + key + fl + " Z\r\n"
	case 11:
		return "ma " + key + fl + " M" + g.pick("X", "II") + "\r\n"
	case 12:
		return "ma " + key + fl + " D" + g.pick("x", "-1", "") + "\r\n"
	case 13:
		return "mg " + key + fl + " O" + strings.Repeat("9", 32) + "\r\n"
	case 14:
		return "md " + key + fl + " O" + strings.Repeat("9", 32) + "\r\n"
	case 15:
		return "ms " + key + " 1" + fl + " O" + strings.Repeat("9", 32) + "\r\na\r\n"
	case 16:
		return "me\r\n"
	case 17:
		return "mg\r\nmx " + key + "\r\n"
	case 18:
		return "ms " + key + " 1 F" + g.pick("x", "-1", "4294967296") + "\r\na\r\n"
	}
	return "ma " + key + fl + " J" + g.pick("x", "-5") + " N0\r\n"
}

func slicesDeleteEmpty(xs []string) []string {
	out := xs[:0]
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// resolveCAS replaces C{i} and C{i-1} with the CAS value last seen on one
// side for raw key i.
func resolveCAS(in string, keys []string, last map[string]string) string {
	for {
		i := strings.IndexByte(in, '{')
		if i < 0 {
			return in
		}
		j := strings.IndexByte(in[i:], '}') + i
		spec := in[i+1 : j]
		minus := strings.HasSuffix(spec, "-1")
		idx, _ := strconv.Atoi(strings.TrimSuffix(spec, "-1"))
		v := "1125899906842623"
		if c, ok := last[keys[idx]]; ok {
			n, _ := strconv.ParseUint(c, 10, 64)
			if minus {
				n--
			}
			v = strconv.FormatUint(n, 10)
		}
		in = in[:i] + v + in[j+1:]
	}
}

func TestMetaDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	addr := memcachedtest.Addr(t)
	seeds := []uint64{1, 2, 3, 4}
	if n, _ := strconv.Atoi(os.Getenv("GOMU_META_DIFF_SEEDS")); n > 0 {
		seeds = seeds[:0]
		for i := range n {
			seeds = append(seeds, uint64(100+i))
		}
	}
	var tally map[string]int
	if testing.Verbose() {
		tally = map[string]int{}
		defer func() { t.Logf("reply tokens seen: %v", tally) }()
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			prefix := fmt.Sprintf("md%x-", rand.Uint64())
			g := newMetaGen(seed, prefix)
			st := NewStore(0, true)
			st.cas = 1 << 20 // away from 0 and 1, as memcached's counter is
			cas := newCASMap()
			cas.looseFetch = func(key string) bool {
				return key == g.keys[0] || key == g.keys[1] // counters
			}
			ours, theirs := map[string]string{}, map[string]string{}
			var history strings.Builder
			for range 400 {
				var batch strings.Builder
				mns := 1
				clear(g.held)
				for range 1 + g.r.IntN(5) {
					if g.r.IntN(15) == 0 {
						batch.WriteString("mn\r\n")
						mns++
					} else {
						batch.WriteString(g.command())
					}
				}
				batch.WriteString("mn\r\n")
				inOurs := resolveCAS(batch.String(), g.keys, ours)
				inTheirs := resolveCAS(batch.String(), g.keys, theirs)
				history.WriteString(inOurs)
				want := execStore(st, []byte(inOurs))
				got, err := realRoundTrip(c, br, []byte(inTheirs), mns)
				if err != nil {
					t.Fatalf("memcached: %v after %q", err, got)
				}
				if err := compareMeta(want, got, cas); err != nil {
					h := history.String()
					if dir := os.Getenv("GOMU_META_DIFF_DUMP"); dir != "" {
						_ = os.WriteFile(filepath.Join(dir, t.Name()[len("TestMetaDifferential/"):]), []byte(h), 0o644)
					}
					t.Fatalf("%v\ninput  %q\nours   %q\ntheirs %q\nhistory (last 3000 bytes) %q", err, inOurs, want, got, h[max(0, len(h)-3000):])
				}
				if tally != nil {
					units, _ := splitReplies(want)
					for _, u := range units {
						f := strings.Split(u.line, " ")
						tally[f[0]]++
						if f[0] == "CLIENT_ERROR" {
							tally[u.line]++
						}
						for _, tok := range f[1:] {
							switch tok {
							case "W", "X", "Z", "b", "h0", "h1":
								tally[tok]++
							}
						}
					}
				}
				observeCAS(want, ours)
				observeCAS(got, theirs)
			}
		})
	}
}
