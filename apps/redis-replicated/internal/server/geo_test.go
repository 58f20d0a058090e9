package server

import (
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestGeoServerDiff: what the server adds to the store's GEO commands —
// GETKEYS of GEORADIUS's STORE keys, and RESP3's doubles for coordinates —
// is Redis's.
func TestGeoServerDiff(t *testing.T) {
	redis := redistest.Start(t)
	ours := startStandalone(t).Addr()
	add := []string{"GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"}
	for _, script := range [][][]string{
		{{"COMMAND", "GETKEYS", "georadius", "k", "1", "2", "3", "m", "store", "d"},
			{"COMMAND", "GETKEYS", "georadius", "k", "1", "2", "3", "m", "storedist", "d", "STORE", "e"},
			{"COMMAND", "GETKEYS", "georadius", "k", "1", "2", "3", "m", "store"},
			{"COMMAND", "GETKEYS", "georadiusbymember", "k", "m", "3", "m", "storedist", "x", "store", "y", "store", "z"},
			{"COMMAND", "GETKEYS", "georadius_ro", "k", "1", "2", "3", "m"},
			{"COMMAND", "GETKEYS", "geosearchstore", "d", "s", "fromlonlat", "1", "2", "byradius", "1", "m"}},
		{{"HELLO", "3"}, add, {"GEOPOS", "g", "Palermo", "nope", "Catania"}, {"GEOPOS", "nokey", "x"},
			{"GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "WITHCOORD", "WITHDIST", "WITHHASH", "ASC"},
			{"GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "WITHDIST"},
			{"GEORADIUSBYMEMBER_RO", "g", "Palermo", "200", "km", "WITHCOORD"},
			{"GEORADIUS", "g", "15", "37", "200", "km", "WITHCOORD", "COUNT", "1"},
			{"GEODIST", "g", "Palermo", "Catania", "km"}, {"GEOHASH", "g", "Palermo", "nope"}},
	} {
		want := pipelineBytes(t, redis, script)
		got := pipelineBytes(t, ours, script)
		if script[0][0] == "HELLO" {
			want, got = afterHello(want), afterHello(got)
		}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", script, got, want)
		}
	}
}

// TestPropagatedGeoDiff: SYNC's stream carries GEOADD as Redis 7.0 does,
// the ZADD of the geohashes, leaves out a GEORADIUS without STORE, and
// carries the STORE forms as they are; compared with Redis's own stream.
func TestPropagatedGeoDiff(t *testing.T) {
	script := [][]string{
		{"GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"},
		{"GEOADD", "g", "CH", "XX", "13.5", "38", "Palermo", "1", "2", "x"}, {"GEOADD", "g", "200", "0", "bad"},
		{"GEORADIUS", "g", "15", "37", "200", "km"}, {"GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "WITHDIST"},
		{"GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d"},
		{"GEORADIUSBYMEMBER", "g", "Palermo", "300", "km", "STOREDIST", "d2"},
		{"GEOSEARCHSTORE", "d3", "g", "FROMMEMBER", "Catania", "BYBOX", "500", "500", "km", "STOREDIST"},
		{"SET", "end", "1"},
	}
	const sent = 7
	compareStreams(t, func(addr string) []string {
		next := syncTap(t, addr)
		c := redistest.Dial(t, addr)
		for _, cmd := range script {
			c.Do(cmd...)
		}
		return next(sent)
	})
}
