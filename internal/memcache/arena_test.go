package memcache

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestArenaChunks(t *testing.T) {
	a := newArena(64 << 20)
	defer a.unmap()
	tests := []struct {
		n       int
		inArena bool
	}{
		{1, true}, {64, true}, {65, true}, {5000, true}, {arenaMaxChunk, true}, {arenaMaxChunk + 1, false},
	}
	for _, tc := range tests {
		b := a.alloc(tc.n)
		if len(b) != tc.n || a.owns(b) != tc.inArena {
			t.Fatalf("alloc(%d): len %d, in arena %v", tc.n, len(b), a.owns(b))
		}
		if tc.inArena && cap(b) != a.sizes[a.class(tc.n)] {
			t.Fatalf("alloc(%d): cap %d, not its class's chunk", tc.n, cap(b))
		}
		for i := range b {
			b[i] = byte(i)
		}
		a.release(b)
		if c := a.alloc(tc.n); tc.inArena && &c[0] != &b[0] {
			t.Fatalf("alloc(%d) after release did not reuse the chunk", tc.n)
		}
	}
}

func TestArenaCapFallsBackToHeap(t *testing.T) {
	a := newArena(0) // the cap is a page per class
	defer a.unmap()
	var inArena, onHeap int
	for range 4 * arenaPage / arenaMaxChunk * len(a.sizes) {
		if a.owns(a.alloc(arenaMaxChunk)) {
			inArena++
		} else {
			onHeap++
		}
	}
	if inArena == 0 || onHeap == 0 || a.pages > a.maxPage {
		t.Fatalf("%d in the arena, %d on the heap, %d pages of %d", inArena, onHeap, a.pages, a.maxPage)
	}
}

// TestHugePageStoreMatchesHeapStore runs one random stream of writes and
// reads through a store on the heap and one in huge-page slabs: replies and
// digests must match, so no chunk is ever shared by two values or used
// after it was freed.
func TestHugePageStoreMatchesHeapStore(t *testing.T) {
	heap := NewStore(1<<20, true)
	huge := NewStore(1<<20, true)
	huge.UseHugePages()
	rng := rand.New(rand.NewPCG(1, 2))
	var in strings.Builder
	for i := range 20000 {
		k := fmt.Sprintf("k%d", rng.IntN(300))
		switch rng.IntN(8) {
		case 0, 1, 2:
			v := strings.Repeat(string(rune('a'+i%26)), rng.IntN(9000))
			fmt.Fprintf(&in, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
		case 3:
			fmt.Fprintf(&in, "append %s 0 0 3\r\nxyz\r\n", k)
		case 4:
			fmt.Fprintf(&in, "delete %s\r\n", k)
		case 5:
			fmt.Fprintf(&in, "incr %s 7\r\n", k)
		case 6:
			if rng.IntN(50) == 0 {
				in.WriteString("flush_all\r\n")
			}
		}
		fmt.Fprintf(&in, "get %s\r\n", k)
	}
	run := func(s *Store) []byte {
		p := NewParser(bufio.NewReader(strings.NewReader(in.String())), Limits{})
		var out []byte
		var cmd Command
		now := int64(1e18)
		for p.Parse(&cmd) == nil {
			out = s.Exec(out, &cmd, now)
			now += 1000
		}
		return out
	}
	a, b := run(heap), run(huge)
	if !bytes.Equal(a, b) {
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		t.Fatalf("replies differ at byte %d: heap %q, huge pages %q", i, a[max(0, i-40):min(len(a), i+40)], b[max(0, i-40):min(len(b), i+40)])
	}
	if heap.Digest() != huge.Digest() {
		t.Fatal("digests differ")
	}
	if huge.arena.pages == 0 {
		t.Fatal("the huge-page store used no arena page")
	}
}
