package store

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestLookupIndexed checks Lookup against the command table: every name in
// any case finds its command, and names one byte off, or of other bytes
// that fold alike (|0x20), find what the table says (nothing, mostly).
func TestLookupIndexed(t *testing.T) {
	want := func(name []byte) *Command {
		if len(name) > 32 {
			return nil
		}
		return table[string(bytes.ToLower(name))]
	}
	r := rand.New(rand.NewPCG(1, 1))
	for name, c := range table {
		for _, n := range [][]byte{[]byte(name), bytes.ToUpper([]byte(name)), mixCase(r, name)} {
			if got := Lookup(n); got != c {
				t.Fatalf("Lookup(%q) = %v, want %s", n, got, name)
			}
		}
		for range 20 {
			n := []byte(name)
			i := r.IntN(len(n))
			switch r.IntN(3) {
			case 0:
				n[i] = byte(r.IntN(256))
			case 1:
				n[i] ^= 0x20 // alike under the hash's fold, not as a name
			default:
				n = append(n, byte('a'+r.IntN(26)))
			}
			if got, w := Lookup(n), want(n); got != w {
				t.Fatalf("Lookup(%q) = %v, want %v", n, got, w)
			}
		}
	}
	for _, n := range []string{"", "x", "SETT", "GET_", "get\x00", string(make([]byte, 33))} {
		if got, w := Lookup([]byte(n)), want([]byte(n)); got != w {
			t.Fatalf("Lookup(%q) = %v, want %v", n, got, w)
		}
	}
}

func mixCase(r *rand.Rand, name string) []byte {
	n := []byte(name)
	for i, c := range n {
		if 'a' <= c && c <= 'z' && r.IntN(2) == 0 {
			n[i] = c - 'a' + 'A'
		}
	}
	return n
}

// BenchmarkLookup: one op is a lookup of each of a few common names, in
// upper case as clients send them.
func BenchmarkLookup(b *testing.B) {
	names := [][]byte{[]byte("GET"), []byte("SET"), []byte("ZADD"), []byte("ZRANGEBYSCORE"), []byte("HINCRBYFLOAT"), []byte("NOSUCHCMD")}
	for b.Loop() {
		for _, n := range names {
			Lookup(n)
		}
	}
}
