package logring

import (
	"fmt"
	"testing"
)

func TestNoAllocations(t *testing.T) {
	ring := aligned(1 << 16)
	payload := payloadFor(1, 64)
	Encode(ring, 1, 1, 0, payload)
	e, _, _ := Decode(ring, 0, 1)
	r, _ := New(len(ring), 64)
	b := batch("set a 1", "get a")
	dst := make([]byte, 0, 64)
	var sink uint64
	var index uint64
	tests := []struct {
		name string
		f    func()
	}{
		{"Encode", func() { Encode(ring[64:], 2, 1, 1, payload) }},
		{"Seal", func() { Seal(ring[64:], 2, 1, 1, len(payload)) }},
		{"EncodeWrap", func() { EncodeWrap(ring[1024:], 3) }},
		{"Decode", func() { Decode(ring, 0, 1) }},
		{"Decode miss", func() { Decode(ring, 4096, 9) }},
		{"Stable", func() { Stable(ring, e) }},
		{"Poll", func() { c := Cursor{Next: 1}; c.Poll(ring) }},
		{"ReadHeader", func() { sink += ReadHeader(ring).CommitIndex }},
		{"PutU64", func() { PutU64(ring, OffCommitIndex, 7) }},
		{"Reserve", func() { r.Reserve(100) }},
		{"Appended+Release", func() {
			index++
			off, _, _ := r.Reserve(100)
			if err := r.Appended(index, off, 100); err != nil {
				panic(err)
			}
			r.Release(index)
		}},
		{"Lookup", func() { r.Lookup(index) }},
		{"AppendCommand", func() { dst = AppendCommand(dst[:0], payload[:20]) }},
		{"Commands", func() {
			cs := NewCommands(b)
			for _, ok := cs.Next(); ok; _, ok = cs.Next() {
			}
		}},
		{"ValidateBatch", func() { ValidateBatch(b) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, n)
		}
	}
	_ = sink
}

func BenchmarkEncodeDecode(b *testing.B) {
	for _, n := range []int{64, 1024, 4096} {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			ring := aligned(1 << 20)
			payload := payloadFor(1, n)
			size := EntrySize(n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			off := 0
			for i := uint64(1); b.Loop(); i++ {
				if off+size > len(ring) {
					off = 0
				}
				Encode(ring[off:], i, 1, i-1, payload)
				if _, _, ok := Decode(ring, off, i); !ok {
					b.Fatal("decode failed")
				}
				off += size
			}
		})
	}
}

// BenchmarkPollEmpty is the cost of a reader's poll that finds nothing new:
// what a spinning replayer pays per iteration.
func BenchmarkPollEmpty(b *testing.B) {
	ring := aligned(1 << 16)
	Encode(ring, 1, 1, 0, payloadFor(1, 64))
	c := Cursor{Next: 2}
	b.ReportAllocs()
	for b.Loop() {
		c.Poll(ring)
	}
}
