package logring

import (
	"bytes"
	"math/rand"
	"testing"
)

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

// writer appends entries to a ring memory the way the engine's leader does.
type writer struct {
	t    *testing.T
	ring []byte
	r    *Ring
}

// append writes entry index with payload p and reports whether it fit.
func (w *writer) append(index uint64, p []byte) bool {
	off, wrapAt, ok := w.r.Reserve(len(p))
	if !ok {
		return false
	}
	if wrapAt >= 0 {
		EncodeWrap(w.ring[wrapAt:], index)
	}
	Encode(w.ring[off:], index, 1, index-1, p)
	if err := w.r.Appended(index, off, len(p)); err != nil {
		w.t.Fatal(err)
	}
	return true
}

func TestCursorWrap(t *testing.T) {
	ring := aligned(512)
	r, _ := New(len(ring), 8)
	w := writer{t, ring, r}
	c := Cursor{Next: 1}
	for i, n := range []int{200, 90} {
		if !w.append(uint64(i+1), payloadFor(uint64(i+1), n)) {
			t.Fatal("no space")
		}
		if _, ok := c.Poll(ring); !ok {
			t.Fatalf("entry %d not read", i+1)
		}
	}
	if c.Off != 384 {
		t.Fatalf("cursor at %d, want 384", c.Off)
	}
	// Nothing there yet: Poll stays put.
	if _, ok := c.Poll(ring); ok || c != (Cursor{Next: 3, Off: 384}) {
		t.Fatalf("Poll on nothing moved to %+v", c)
	}
	r.Release(2)
	// A marker alone (the entry has not landed): the cursor moves to 0.
	EncodeWrap(ring[384:], 3)
	if _, ok := c.Poll(ring); ok || c != (Cursor{Next: 3, Off: 0}) {
		t.Fatalf("Poll on a lone marker: %+v", c)
	}
	p := payloadFor(3, 100)
	if !w.append(3, p) {
		t.Fatal("no space")
	}
	e, ok := c.Poll(ring)
	if !ok {
		t.Fatal("entry 3 not read after the wrap")
	}
	if err := checkEntry(e, 3, 1, 2, p, 0); err != nil {
		t.Fatal(err)
	}
	// A marker whose entry at 0 is itself a marker is garbage: no loop.
	bad := aligned(256)
	EncodeWrap(bad[128:], 1)
	Encode(bad, 1, 1, 0, nil)
	bad[24] = 0xFF // make it look like a marker...
	bad[25], bad[26], bad[27] = 0xFF, 0xFF, 0xFF
	bc := Cursor{Next: 1, Off: 128}
	if _, ok := bc.Poll(bad); ok {
		t.Fatal("accepted a marker pointing at a marker")
	}
}

// TestCursorModel runs a writer and a reader over small rings with many
// random sizes, the reader polling at random moments and the writer
// releasing what the reader has consumed. Every entry must come out once, in
// order, with its payload, across many wraps.
func TestCursorModel(t *testing.T) {
	tests := []struct {
		ring, max, maxPayload, entries int
	}{
		{256, 4, 224, 3000},
		{1024, 16, 300, 20000},
		{4096, 3, 4064, 5000},
		{8192, 1024, 100, 20000},
	}
	for _, tt := range tests {
		rng := newRand(int64(tt.ring))
		ring := aligned(tt.ring)
		r, _ := New(tt.ring, tt.max)
		w := writer{t, ring, r}
		c := Cursor{Next: 1}
		var pending [][]byte // written, not yet read: the model
		next := uint64(1)
		var wraps int
		for read := 0; read < tt.entries; {
			if rng.Intn(3) > 0 && next <= uint64(tt.entries) {
				p := payloadFor(next, rng.Intn(tt.maxPayload+1))
				if _, wrapAt, _ := r.Reserve(len(p)); wrapAt >= 0 {
					wraps++
				}
				if w.append(next, p) {
					pending = append(pending, p)
					next++
					continue
				}
			}
			before := c
			e, ok := c.Poll(ring)
			if ok != (len(pending) > 0) {
				t.Fatalf("ring %d: Poll at %+v ok = %v with %d pending", tt.ring, before, ok, len(pending))
			}
			if !ok {
				continue
			}
			if off, _ := r.Offset(e.Index); e.Index != uint64(read+1) || e.Off != off || !bytes.Equal(e.Payload, pending[0]) {
				t.Fatalf("ring %d: read entry %d at %d, want %d at %d", tt.ring, e.Index, e.Off, read+1, off)
			}
			pending = pending[1:]
			read++
			r.Release(e.Index) // applied: the writer may reuse it
		}
		if tt.ring < 8192 && wraps < 10 {
			t.Errorf("ring %d: only %d wraps", tt.ring, wraps)
		}
	}
}

// TestCursorExtent checks that Extent names exactly the bytes a Poll at the
// cursor reads: what a reader holding part of a ring must hold before it
// trusts Poll.
func TestCursorExtent(t *testing.T) {
	ring := aligned(1024)
	Encode(ring[0:], 5, 1, 4, payloadFor(5, 100))   // 192 bytes padded
	Encode(ring[256:], 2, 1, 1, payloadFor(2, 10))  // 64
	EncodeWrap(ring[896:], 5)                       // marker: 5 continues at 0
	Encode(ring[512:], 3, 1, 2, payloadFor(3, 300)) // 384, ends at the ring's end
	huge := aligned(64)
	Encode(huge, 1, 1, 0, nil)
	huge[24], huge[25] = 0x00, 0x10 // length 4096 cannot fit: header only
	tests := []struct {
		name   string
		ring   []byte
		c      Cursor
		n0, n1 int
	}{
		{"entry", ring, Cursor{Next: 2, Off: 256}, 64, 0},
		{"entry up to the end", ring, Cursor{Next: 3, Off: 512}, 384, 0},
		{"wrap marker and the entry at 0", ring, Cursor{Next: 5, Off: 896}, EntryHeaderSize, 192},
		{"entry at 0 itself", ring, Cursor{Next: 5, Off: 0}, 192, 0},
		{"length that cannot fit", huge, Cursor{Next: 1, Off: 0}, EntryHeaderSize, 0},
		{"misaligned offset", ring, Cursor{Next: 2, Off: 100}, 0, 0},
		{"offset past the end", ring, Cursor{Next: 2, Off: 1024}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n0, n1 := tc.c.Extent(tc.ring)
			if n0 != tc.n0 || n1 != tc.n1 {
				t.Fatalf("Extent = %d, %d; want %d, %d", n0, n1, tc.n0, tc.n1)
			}
		})
	}
}
