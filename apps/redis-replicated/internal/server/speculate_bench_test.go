package server

import (
	"testing"
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
