package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// BenchmarkSpeculativeScript measures what speculative runs cost a script
// that writes (its reads before the first write run twice, plus the
// abandoned run's setup) and save one that only reads (no proposal): each
// script with speculation on and off, on a standalone server (so a
// proposal costs Apply, not replication).
func BenchmarkSpeculativeScript(b *testing.B) {
	scripts := []struct{ name, body string }{
		{"writes-first", "return redis.call('incr', KEYS[1])"},
		{"10-reads-then-write", "for i = 1, 10 do redis.call('get', KEYS[1]) end return redis.call('incr', KEYS[1])"},
		{"100-reads-then-write", "for i = 1, 100 do redis.call('get', KEYS[1]) end return redis.call('incr', KEYS[1])"},
		{"reads-only", "return redis.call('get', KEYS[1])"},
	}
	for _, sc := range scripts {
		for _, on := range []bool{true, false} {
			name := sc.name + "/speculation=off"
			if on {
				name = sc.name + "/speculation=on"
			}
			b.Run(name, func(b *testing.B) {
				defer func(was bool) { speculation = was }(speculation)
				speculation = on
				benchBatch(b, 1, func(int) [][]byte {
					return [][]byte{[]byte("EVAL"), []byte(sc.body), []byte("1"), []byte("counter")}
				})
			})
		}
	}
}

// BenchmarkSpeculativeScriptCluster is one EVAL at a time from one client
// to the leader of three replicas: what speculation adds there to a
// script that writes at once (the abandoned run and its read barrier) and
// saves one that only reads (the proposal).
func BenchmarkSpeculativeScriptCluster(b *testing.B) {
	c := startCluster(b, 3)
	cl := redistest.Dial(b, c.WaitLeader().Addr())
	for _, sc := range []struct{ name, body string }{
		{"writes-first", "return redis.call('incr', KEYS[1])"},
		{"reads-only", "return redis.call('get', KEYS[1])"},
	} {
		for _, on := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/speculation=%v", sc.name, on), func(b *testing.B) {
				defer func(was bool) { speculation = was }(speculation)
				speculation = on
				cl.Do("EVAL", sc.body, "1", "counter")
				b.ResetTimer()
				for range b.N {
					if got := cl.Do("EVAL", sc.body, "1", "counter"); strings.HasPrefix(got, "-") {
						b.Fatal(got)
					}
				}
			})
		}
	}
}
