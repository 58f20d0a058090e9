package store

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestCollectionScanDiff: small encodings come back whole with cursor 0
// in Redis's order; errors and option parsing match Redis's.
func TestCollectionScanDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("sadd", "is", "5", "-3", "10", "1"),
		cmd("sscan", "is", "0"),
		cmd("sscan", "is", "123", "count", "1"),
		cmd("sscan", "is", "0", "match", "1*"),
		cmd("hset", "h", "f1", "a", "f2", "b", "x", "c"),
		cmd("hscan", "h", "0"),
		cmd("hscan", "h", "0", "match", "f*", "count", "1"),
		cmd("zadd", "z", "1.5", "a", "2", "b", "-1", "c", "0.1", "d"),
		cmd("zscan", "z", "0"),
		cmd("zscan", "z", "0", "match", "[ab]"),
		cmd("sscan", "missing", "0"),
		cmd("sscan", "missing", "0", "bogus"),
		cmd("sscan", "is", "x"),
		cmd("sscan", "is", "-1"),
		cmd("sscan", "is", "0", "count", "0"),
		cmd("sscan", "is", "0", "count", "x"),
		cmd("sscan", "is", "0", "type", "set"),
		cmd("sscan", "is", "0", "match"),
		cmd("hscan", "is", "0"),
		cmd("zscan", "h", "0"),
		cmd("set", "str", "v"),
		cmd("sscan", "str", "x"),
		cmd("sscan", "str", "0"),
	})
}

// scanCollection iterates a large collection to cursor 0, checking that no call
// returns more than count items (pairs for HSCAN and ZSCAN), and returns
// the members (fields) seen, in order.
func scanCollection(t *testing.T, s *Store, e *Env, name, key string, count int, pairs bool) []string {
	t.Helper()
	var seen []string
	cursor := "0"
	for calls := 0; ; calls++ {
		if calls > 10000 {
			t.Fatal("the scan does not end")
		}
		raw := string(execArgs(s, e, []string{name, key, cursor, "count", strconv.Itoa(count)}))
		parts, ok := arrayElems(raw)
		if !ok || len(parts) != 2 {
			t.Fatalf("%s reply %q", name, raw)
		}
		cursor, _ = bulkText(parts[0])
		items, ok := bulksOf(parts[1])
		if !ok {
			t.Fatalf("%s items %q", name, parts[1])
		}
		step := 1
		if pairs {
			step = 2
		}
		if len(items)/step > count {
			t.Fatalf("%s returned %d items for COUNT %d", name, len(items)/step, count)
		}
		for i := 0; i < len(items); i += step {
			seen = append(seen, items[i])
		}
		if cursor == "0" {
			return seen
		}
	}
}

// TestCollectionScanLarge: a large set, hash or sorted set is walked
// COUNT at a time, and every member is seen exactly once (the cursor
// line is SCAN's, whose guarantees under changes keys_test.go checks).
func TestCollectionScanLarge(t *testing.T) {
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 2))}
	s := New()
	var want []string
	for i := range 1000 {
		m := "m" + strconv.Itoa(i)
		want = append(want, m)
		execArgs(s, e, []string{"sadd", "s", m})
		execArgs(s, e, []string{"hset", "h", m, "v"})
		execArgs(s, e, []string{"zadd", "z", strconv.Itoa(i), m})
	}
	slices.Sort(want)
	for _, c := range []struct {
		name, key string
		pairs     bool
	}{{"sscan", "s", false}, {"hscan", "h", true}, {"zscan", "z", true}} {
		got := scanCollection(t, s, e, c.name, c.key, 7, c.pairs)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s saw %d members, want each of %d once", c.name, len(got), len(want))
		}
	}
}
