package logring

import (
	"errors"
	"strings"
	"testing"
)

func TestNewRejects(t *testing.T) {
	tests := []struct {
		size, max int
		want      string
	}{
		{0, 8, "multiple of 64"},
		{100, 8, "multiple of 64"},
		{-64, 8, "multiple of 64"},
		{4096, 0, "at least one entry"},
	}
	for _, tt := range tests {
		if _, err := New(tt.size, tt.max); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%d, %d) = %v, want error containing %q", tt.size, tt.max, err, tt.want)
		}
	}
}

// step is one operation in a ring scenario.
type step struct {
	op      string // "append": Reserve then Appended; "full": Reserve must fail; "release"
	n       int    // payload bytes (append, full) or index (release)
	off     int    // expected offset (append)
	wrapAt  int    // expected wrap marker offset (append)
	wantErr error  // for "append-err": Appended's error
}

func TestRingScenarios(t *testing.T) {
	tests := []struct {
		name       string
		size, max  int
		steps      []step
		free, tail int
	}{
		{
			name: "fill exactly, then full until release", size: 256, max: 16,
			steps: []step{
				{op: "append", n: 0, off: 0, wrapAt: -1},
				{op: "append", n: 90, off: 64, wrapAt: -1}, // 128 bytes
				{op: "append", n: 32, off: 192, wrapAt: -1},
				{op: "full", n: 0},
				{op: "release", n: 1},
				{op: "append", n: 10, off: 0, wrapAt: -1}, // the end was exact: no marker
				{op: "full", n: 0},
			},
			free: 0, tail: 64,
		},
		{
			name: "wrap marker when the entry does not fit before the end", size: 512, max: 16,
			steps: []step{
				{op: "append", n: 200, off: 0, wrapAt: -1},  // 256 bytes
				{op: "append", n: 90, off: 256, wrapAt: -1}, // 128, ends at 384
				{op: "full", n: 100},                        // 128 skipped + 192 at 0: entry 1 still held
				{op: "release", n: 1},
				{op: "append", n: 100, off: 0, wrapAt: 384},
			},
			free: 512 - 128 - 128 - 192, tail: 192,
		},
		{
			name: "skipped tail is held until the entry after the wrap is released", size: 512, max: 16,
			steps: []step{
				{op: "append", n: 300, off: 0, wrapAt: -1}, // 384 bytes
				{op: "release", n: 1},
				{op: "append", n: 200, off: 0, wrapAt: 384}, // 256 at 0, 128 skipped
				{op: "append", n: 90, off: 256, wrapAt: -1}, // 128
				{op: "full", n: 0},
				{op: "release", n: 2},
				{op: "append", n: 0, off: 384, wrapAt: -1},
			},
			free: 512 - 128 - 64, tail: 448,
		},
		{
			name: "entry count limit", size: 4096, max: 2,
			steps: []step{
				{op: "append", n: 1, off: 0, wrapAt: -1},
				{op: "append", n: 1, off: 64, wrapAt: -1},
				{op: "full", n: 1},
				{op: "append-err", n: 1, off: 128, wantErr: ErrFull},
				{op: "release", n: 1},
				{op: "append", n: 1, off: 128, wrapAt: -1},
			},
			free: 4096 - 128, tail: 192,
		},
		{
			name: "too large never fits", size: 256, max: 4,
			steps: []step{
				{op: "full", n: 225},
				{op: "append", n: 224, off: 0, wrapAt: -1},
			},
			free: 0, tail: 0,
		},
		{
			name: "release beyond the tail and backwards", size: 256, max: 4,
			steps: []step{
				{op: "append", n: 1, off: 0, wrapAt: -1},
				{op: "release", n: 100},
				{op: "release", n: 0},
				{op: "append", n: 1, off: 64, wrapAt: -1},
			},
			free: 192, tail: 128,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.size, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				switch s.op {
				case "append":
					off, wrapAt, ok := r.Reserve(s.n)
					if !ok || off != s.off || wrapAt != s.wrapAt {
						t.Fatalf("step %d: Reserve(%d) = (%d, %d, %v), want (%d, %d, true)", i, s.n, off, wrapAt, ok, s.off, s.wrapAt)
					}
					if err := r.Appended(r.Next(), off, s.n); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				case "append-err":
					if err := r.Appended(r.Next(), s.off, s.n); !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: Appended = %v, want %v", i, err, s.wantErr)
					}
				case "full":
					if off, wrapAt, ok := r.Reserve(s.n); ok {
						t.Fatalf("step %d: Reserve(%d) = (%d, %d, true) on a full ring", i, s.n, off, wrapAt)
					}
				case "release":
					r.Release(uint64(s.n))
				}
			}
			if r.Free() != tt.free || r.Tail() != tt.tail {
				t.Fatalf("Free %d Tail %d, want %d %d", r.Free(), r.Tail(), tt.free, tt.tail)
			}
		})
	}
}

func TestAppendedRejects(t *testing.T) {
	r, _ := New(1024, 8)
	if err := r.Appended(1, 0, 10); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		index uint64
		off   int
		n     int
		want  string
	}{
		{"skipped index", 3, 64, 10, "want 2"},
		{"repeated index", 1, 64, 10, "want 2"},
		{"wrong offset", 2, 128, 10, "goes at 64"},
		{"too large", 2, 64, 1000, "exceeds the maximum"},
		{"negative", 2, 64, -1, "exceeds the maximum"},
		{"no space", 2, 0, 1000 - 64, "ring full"},
	}
	for _, tt := range tests {
		err := r.Appended(tt.index, tt.off, tt.n)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Appended(%d, %d, %d) = %v, want error containing %q", tt.name, tt.index, tt.off, tt.n, err, tt.want)
		}
	}
	if r.Next() != 2 || r.Len() != 1 {
		t.Fatalf("failed Appended changed the ring: next %d len %d", r.Next(), r.Len())
	}
}

func TestLookup(t *testing.T) {
	r, _ := New(512, 8)
	sizes := []int{100, 200, 150, 0}
	var got []Slot
	for i, n := range sizes {
		r.Release(uint64(i - 1)) // keep the previous two
		off, wrapAt, ok := r.Reserve(n)
		if !ok {
			t.Fatalf("entry %d does not fit", i+1)
		}
		if err := r.Appended(uint64(i+1), off, n); err != nil {
			t.Fatal(err)
		}
		got = append(got, Slot{Off: off, WrapAt: wrapAt, Size: EntrySize(n)})
	}
	want := []Slot{{0, -1, 192}, {192, -1, 256}, {0, 448, 192}, {192, -1, 64}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d placed at %+v, want %+v", i+1, got[i], want[i])
		}
	}
	for i := uint64(1); i <= 6; i++ {
		s, ok := r.Lookup(i)
		retained := i > r.Released() && i < r.Next()
		if ok != retained {
			t.Fatalf("Lookup(%d) ok = %v, want %v", i, ok, retained)
		}
		if ok && s != want[i-1] {
			t.Fatalf("Lookup(%d) = %+v, want %+v", i, s, want[i-1])
		}
		if off, ok2 := r.Offset(i); ok2 != ok || off != s.Off {
			t.Fatalf("Offset(%d) = (%d, %v), want (%d, %v)", i, off, ok2, s.Off, ok)
		}
	}
	if _, ok := r.Lookup(0); ok {
		t.Fatal("Lookup(0) found an entry")
	}
}

func TestReset(t *testing.T) {
	r, _ := New(512, 8)
	for _, tt := range []struct {
		next uint64
		off  int
		want string
	}{
		{0, 0, "index 0"},
		{5, -64, "offset -64"},
		{5, 512, "offset 512"},
		{5, 65, "offset 65"},
	} {
		if err := r.Reset(tt.next, tt.off); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Reset(%d, %d) = %v, want error containing %q", tt.next, tt.off, err, tt.want)
		}
	}
	// Continue from index 40 at offset 448: the next entry wraps.
	if err := r.Reset(40, 448); err != nil {
		t.Fatal(err)
	}
	if r.Next() != 40 || r.Released() != 39 || r.Len() != 0 || r.Free() != 512 {
		t.Fatalf("after Reset: next %d released %d len %d free %d", r.Next(), r.Released(), r.Len(), r.Free())
	}
	off, wrapAt, ok := r.Reserve(40)
	if !ok || off != 0 || wrapAt != 448 {
		t.Fatalf("Reserve after Reset = (%d, %d, %v), want (0, 448, true)", off, wrapAt, ok)
	}
}

// TestMirror replays one writer's sequence of sizes on a second ring reset to
// the same position, as a new leader does after recovery: every offset must
// agree, however differently the two released space.
func TestMirror(t *testing.T) {
	rng := newRand(3)
	a, _ := New(4096, 64)
	var offs []int
	var sizes []int
	for i := uint64(1); i <= 2000; i++ {
		n := rng.Intn(700)
		off, _, ok := a.Reserve(n)
		for !ok {
			a.Release(a.Released() + 1)
			off, _, ok = a.Reserve(n)
		}
		if err := a.Appended(i, off, n); err != nil {
			t.Fatal(err)
		}
		offs, sizes = append(offs, off), append(sizes, n)
	}
	const from = 1500
	b, _ := New(4096, 1000)
	if err := b.Reset(from, offs[from-1]); err != nil {
		t.Fatal(err)
	}
	for i := uint64(from); i <= 2000; i++ {
		off, _, ok := b.Reserve(sizes[i-1])
		if ok && off != offs[i-1] {
			t.Fatalf("entry %d: replay puts it at %d, writer at %d", i, off, offs[i-1])
		}
		b.Release(b.Released() + uint64(rng.Intn(3))) // any release pattern
		if err := b.Appended(i, offs[i-1], sizes[i-1]); err != nil && !errors.Is(err, ErrFull) {
			t.Fatalf("entry %d: %v", i, err)
		} else if err != nil {
			b.Release(i - 1)
			if err := b.Appended(i, offs[i-1], sizes[i-1]); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
	}
}
