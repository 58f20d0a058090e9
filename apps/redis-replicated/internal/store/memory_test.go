package store

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestMemoryUsageDiff compares MEMORY USAGE with Redis's for values whose
// size Redis computes without randomness (all but skiplists, whose node
// levels are random: those only need to be close).
func TestMemoryUsageDiff(t *testing.T) {
	p := newPair(t)
	setups := [][]string{
		c("set", "int", "1"), c("set", "bigint", "123456789012"), c("set", "embstr", "hello"),
		c("set", "raw", repeat("x", 100)), c("set", "raw2", repeat("x", 300)),
		c("set", repeat("k", 40), "v"),
		c("rpush", "list", "a", "b", "c"), rpushMany("biglist", 5000, func(i int) string { return "item" + strconv.Itoa(i) }),
		c("sadd", "intset", "1", "2", "3"), c("sadd", "intset32", "1", "100000"),
		c("sadd", "set", "a", "b", "c"), rpushMany("bigset", 120, func(i int) string { return "m" + strconv.Itoa(i) }),
		c("hset", "hash", "f", "v", "g", "w"), c("hset", "hashtable", "f", repeat("x", 100)),
		c("zadd", "zset", "1", "a", "2", "b"),
	}
	setups[11][0] = "sadd"
	for _, st := range setups {
		p.both(st...)
	}
	for _, st := range setups {
		key := st[1]
		p.both("memory", "usage", key)
		p.both("memory", "usage", key, "samples", "0")
		p.both("memory", "usage", key, "samples", "2")
	}
	p.both("zadd", "skip", "1", repeat("x", 100), "2", "b")
	want, _ := strconv.Atoi(p.rc.Do("memory", "usage", "skip")[1:5])
	got, _ := strconv.Atoi(p.ours("memory", "usage", "skip")[1:5])
	if got < want-100 || got > want+100 {
		t.Fatalf("skiplist usage %d, Redis %d", got, want)
	}
	for _, args := range [][]string{
		c("memory", "usage", "nokey"), c("memory", "usage", "int", "samples", "x"),
		c("memory", "usage", "int", "samples", "-1"), c("memory", "usage", "int", "foo"),
		c("memory", "usage", "int", "samples"), c("memory", "usage"), c("memory"),
		c("memory", "foo"), c("memory", "stats", "x"), c("memory", "doctor", "x"),
		c("memory", "help", "x"), c("memory", "help"), c("memory", "purge"),
		c("memory", "malloc-stats", "x"), c("memory", "usage", "nokey", "samples", "x"), c("memory", "doctor"),
	} {
		p.both(args...)
	}
}

// TestMemoryStatsShape checks MEMORY STATS has Redis's fields in Redis's
// order (the values differ: they are this process's).
func TestMemoryStatsShape(t *testing.T) {
	p := newPair(t)
	for _, withKeys := range []bool{false, true} {
		if withKeys {
			p.both("set", "a", "1")
			p.both("set", "b", "2", "ex", "100")
		}
		names := func(raw string) []string {
			es, _ := parseRESP(raw)
			var out []string
			for i, e := range es.([]any) {
				if i%2 == 0 {
					out = append(out, e.(string))
				} else if sub, ok := e.([]any); ok {
					for _, x := range sub {
						if s, ok := x.(string); ok {
							out = append(out, s)
						}
					}
				}
			}
			return out
		}
		want, got := names(p.rc.Do("memory", "stats")), names(p.ours("memory", "stats"))
		if len(want) != len(got) {
			t.Fatalf("fields:\n got %q\nwant %q", got, want)
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("field %d: got %q want %q", i, got[i], want[i])
			}
		}
	}
	if r := p.ours("memory", "doctor"); r[0] != '$' {
		t.Fatalf("doctor: %q", r)
	}
}

// TestDebugObjectDiff compares DEBUG OBJECT with Redis's, address and LRU
// clock aside. Debian's redis-server refuses DEBUG by default, so this
// runs only against a server started with --enable-debug-command yes and
// named by GOMU_TEST_REDIS.
func TestDebugObjectDiff(t *testing.T) {
	p := newPair(t)
	if r := p.rc.Do("debug", "object", "x"); r != "-ERR no such key\r\n" {
		t.Skipf("redis-server refuses DEBUG: %q", r)
	}
	setups := [][]string{
		c("set", "int", "1"), c("set", "embstr", "hello"), c("set", "raw", repeat("x", 100)),
		c("rpush", "list", "a", "b", "c"), rpushMany("biglist", 5000, func(i int) string { return "item" + strconv.Itoa(i) }),
		c("sadd", "intset", "1", "2", "3"), c("sadd", "set", "a", "b", "c"),
		c("hset", "hash", "f", "v", "g", "w"), c("zadd", "zset", "1", "a", "2", "b"),
		c("zadd", "skip", "1", repeat("x", 100), "2", "b"),
	}
	mask := regexp.MustCompile(`at:0x[0-9a-f]+|lru:[0-9]+ |lru_seconds_idle:[0-9]+`)
	for _, st := range setups {
		p.both(st...)
		want := mask.ReplaceAllString(p.rc.Do("debug", "object", st[1]), "")
		got := mask.ReplaceAllString(string(p.s.DebugObject(nil, time.Now().UnixMilli(), []byte(st[1]))), "")
		if got != want {
			t.Fatalf("%s:\n got %q\nwant %q", st[1], got, want)
		}
	}
	if got := string(p.s.DebugObject(nil, time.Now().UnixMilli(), []byte("nokey"))); got != "-ERR no such key\r\n" {
		t.Fatalf("missing key: %q", got)
	}
}
