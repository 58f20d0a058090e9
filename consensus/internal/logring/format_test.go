package logring

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

func TestSizes(t *testing.T) {
	tests := []struct {
		payload, want int
	}{
		{0, 64}, {1, 64}, {32, 64}, {33, 128}, {96, 128}, {97, 192}, {4096, 4160},
	}
	for _, tt := range tests {
		if got := EntrySize(tt.payload); got != tt.want {
			t.Errorf("EntrySize(%d) = %d, want %d", tt.payload, got, tt.want)
		}
	}
	max := []struct {
		ring, want int
	}{
		{0, -1}, {63, -1}, {64, 32}, {100, 32}, {128, 96}, {1 << 20, 1<<20 - 32}, {1 << 40, WrapLength - 1},
	}
	for _, tt := range max {
		if got := MaxPayload(tt.ring); got != tt.want {
			t.Errorf("MaxPayload(%d) = %d, want %d", tt.ring, got, tt.want)
		}
		if tt.want >= 0 && tt.ring < 1<<32 && EntrySize(tt.want) > tt.ring {
			t.Errorf("EntrySize(MaxPayload(%d)) = %d overflows the ring", tt.ring, EntrySize(tt.want))
		}
	}
	for _, n := range []int{-1, WrapLength} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("EntrySize(%d) did not panic", n)
				}
			}()
			EntrySize(n)
		}()
	}
}

func TestHeader(t *testing.T) {
	mem := aligned(MemSize(256))
	h := Header{MinProposal: 1, CommitIndex: 0x0102030405060708, FirstUndecided: 3, CommitProposal: ^uint64(0)}
	h.Store(mem)
	if got := ReadHeader(mem); got != h {
		t.Fatalf("ReadHeader = %+v, want %+v", got, h)
	}
	// The words are little-endian in memory, whatever the CPU.
	if got := binary.LittleEndian.Uint64(mem[OffCommitIndex:]); got != h.CommitIndex {
		t.Errorf("CommitIndex bytes hold %#x, want %#x", got, h.CommitIndex)
	}
	PutU64(mem, OffCommitIndex, 42)
	if got := LoadU64(mem, OffCommitIndex); got != 42 {
		t.Errorf("LoadU64 after PutU64 = %d, want 42", got)
	}
	// Misaligned words fall back to bytewise access rather than faulting.
	PutU64(mem, 33, 0xdeadbeef)
	if got := LoadU64(mem, 33); got != 0xdeadbeef {
		t.Errorf("misaligned LoadU64 = %#x, want 0xdeadbeef", got)
	}
}

func TestCheckLayout(t *testing.T) {
	good := aligned(MemSize(4096))
	tests := []struct {
		name string
		mem  []byte
		want string // substring of the error; "" for none
	}{
		{"ok", good, ""},
		{"no ring", good[:HeaderSize], "positive multiple"},
		{"ring not a multiple", good[:HeaderSize+100], "positive multiple"},
		{"misaligned", good[8 : 8+MemSize(1024)], "aligned"},
		{"nil", nil, "positive multiple"},
	}
	for _, tt := range tests {
		err := CheckLayout(tt.mem)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: CheckLayout = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestChecksumIsCRC32C(t *testing.T) {
	ring := aligned(256)
	payload := []byte("hello, log")
	Encode(ring, 7, 8, 9, payload)
	want := crc32.Checksum(append(bytes.Clone(ring[:28]), payload...), crc32.MakeTable(crc32.Castagnoli))
	if got := binary.LittleEndian.Uint32(ring[28:]); got != want {
		t.Fatalf("checksum %#x, want CRC-32C %#x", got, want)
	}
	// And for arbitrary fields and payload lengths.
	rng := newRand(1)
	for range 1000 {
		var hdr [28]byte
		rng.Read(hdr[:])
		p := payloadFor(rng.Uint64(), rng.Intn(300))
		want := crc32.Checksum(append(hdr[:], p...), crc32.MakeTable(crc32.Castagnoli))
		got := checksum(binary.LittleEndian.Uint64(hdr[0:]), binary.LittleEndian.Uint64(hdr[8:]),
			binary.LittleEndian.Uint64(hdr[16:]), binary.LittleEndian.Uint32(hdr[24:]), p)
		if got != want {
			t.Fatalf("checksum of % x and %d bytes = %#x, want %#x", hdr, len(p), got, want)
		}
	}
	wantHdr := []byte{7, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0}
	if !bytes.Equal(ring[:28], wantHdr) {
		t.Fatalf("header bytes % x, want % x", ring[:28], wantHdr)
	}
}

func TestRoundTrip(t *testing.T) {
	const ringSize = 8192
	tests := []struct {
		name                    string
		off                     int
		index, proposal, commit uint64
		n                       int
	}{
		{"empty", 0, 1, 1, 0, 0},
		{"one byte", 64, 2, 1, 1, 1},
		{"fills header line", 128, 3, 5, 2, 32},
		{"spills a line", 256, 4, 5, 3, 33},
		{"4 KiB", 512, 5, 1 << 40, 4, 4096},
		{"max words", 0, ^uint64(0), ^uint64(0), ^uint64(0), 100},
		{"at the end", ringSize - 64, 9, 1, 8, 32},
		{"whole ring", 0, 10, 2, 9, MaxPayload(ringSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := aligned(ringSize)
			payload := payloadFor(tt.index, tt.n)
			size := Encode(ring[tt.off:], tt.index, tt.proposal, tt.commit, payload)
			if size != EntrySize(tt.n) {
				t.Fatalf("Encode size %d, want %d", size, EntrySize(tt.n))
			}
			e, wrap, ok := Decode(ring, tt.off, tt.index)
			if !ok || wrap {
				t.Fatalf("Decode = ok %v wrap %v, want an entry", ok, wrap)
			}
			if err := checkEntry(e, tt.index, tt.proposal, tt.commit, payload, tt.off); err != nil {
				t.Fatal(err)
			}
			if !within(e.Payload, ring) {
				t.Fatal("payload does not alias the ring")
			}
			if !Stable(ring, e) {
				t.Fatal("untouched entry not Stable")
			}
			// Seal over a payload built in place gives the same bytes.
			other := aligned(ringSize)
			copy(other[tt.off+EntryHeaderSize:], payload)
			Seal(other[tt.off:], tt.index, tt.proposal, tt.commit, tt.n)
			if !bytes.Equal(other[tt.off:tt.off+EntryHeaderSize+tt.n], ring[tt.off:tt.off+EntryHeaderSize+tt.n]) {
				t.Fatal("Seal and Encode disagree")
			}
		})
	}
}

func TestEncodePanicsOnShortSpace(t *testing.T) {
	ring := aligned(128)
	for name, f := range map[string]func(){
		"Encode":     func() { Encode(ring[64:], 1, 1, 0, make([]byte, 33)) },
		"Seal":       func() { Seal(ring[:100], 1, 1, 0, 40) },
		"EncodeWrap": func() { EncodeWrap(ring[:31], 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestDecodeRejects(t *testing.T) {
	const ringSize = 1024
	valid := func() []byte {
		ring := aligned(ringSize)
		Encode(ring[128:], 5, 1, 4, payloadFor(5, 40))
		return ring
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		off    int
		expect uint64
	}{
		{"zeroed memory", func(r []byte) []byte { clear(r); return r }, 128, 5},
		{"zeroed memory, index 0", func(r []byte) []byte { clear(r); return r }, 128, 0},
		{"wrong index", nil, 128, 6},
		{"earlier index", nil, 128, 4},
		{"misaligned offset", nil, 136, 5},
		{"negative offset", nil, -64, 5},
		{"offset past the end", nil, ringSize, 5},
		{"header past the end", func(r []byte) []byte { return r[:128+16] }, 128, 5},
		{"payload past the end", func(r []byte) []byte { return r[:128+64] }, 128, 5},
		{"nil ring", func([]byte) []byte { return nil }, 0, 5},
		{"huge length", func(r []byte) []byte {
			binary.LittleEndian.PutUint32(r[128+24:], 0xFFFFFFFE)
			return r
		}, 128, 5},
		{"wrap marker at offset 0", func(r []byte) []byte { EncodeWrap(r, 5); return r }, 0, 5},
		{"wrap marker, bad checksum", func(r []byte) []byte {
			EncodeWrap(r[128:], 5)
			r[128+30] ^= 1
			return r
		}, 128, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := valid()
			if tt.mutate != nil {
				ring = tt.mutate(ring)
			}
			if e, wrap, ok := Decode(ring, tt.off, tt.expect); ok {
				t.Fatalf("Decode accepted %+v (wrap %v)", e, wrap)
			}
		})
	}
}

// TestSingleByteFlips flips every byte of the header and the payload in every
// possible way: each flip must be rejected, while flips in the padding, which
// the checksum does not cover, must not matter.
func TestSingleByteFlips(t *testing.T) {
	for _, n := range []int{0, 1, 7, 40, 100} {
		ring := aligned(512)
		payload := payloadFor(9, n)
		size := Encode(ring[64:], 9, 3, 8, payload)
		entry := ring[64 : 64+size]
		for i := range entry {
			for mask := 1; mask < 256; mask++ {
				entry[i] ^= byte(mask)
				_, _, ok := Decode(ring, 64, 9)
				entry[i] ^= byte(mask)
				if covered := i < EntryHeaderSize+n; ok == covered {
					t.Fatalf("payload %d bytes: flipping byte %d with %#x: accepted %v", n, i, mask, ok)
				}
			}
		}
		if _, _, ok := Decode(ring, 64, 9); !ok {
			t.Fatalf("payload %d bytes: entry not restored", n)
		}
	}
}

// TestTornWrite lays a new entry over an old one from an earlier lap at the
// same offset, landing only partly, in the ways a WRITE can be observed
// mid-flight: none may be accepted, and the complete one must be.
func TestTornWrite(t *testing.T) {
	const off, n = 64, 200
	oldP, newP := payloadFor(3, n), payloadFor(11, n)
	oldRing, newRing := aligned(1024), aligned(1024)
	Encode(oldRing[off:], 3, 1, 2, oldP)
	size := Encode(newRing[off:], 11, 2, 10, newP)
	tests := []struct {
		name   string
		ranges [][2]int // byte ranges of the entry that have landed
	}{
		{"header only", [][2]int{{0, EntryHeaderSize}}},
		{"header and half the payload", [][2]int{{0, EntryHeaderSize + n/2}}},
		{"all but the last payload byte", [][2]int{{0, EntryHeaderSize + n - 1}}},
		{"payload only", [][2]int{{EntryHeaderSize, size}}},
		{"index word only", [][2]int{{0, 8}}},
		{"all but the length and checksum", [][2]int{{0, 24}, {EntryHeaderSize, size}}},
		{"second half of the payload first", [][2]int{{0, 8}, {EntryHeaderSize + n/2, size}}},
		{"everything", [][2]int{{0, size}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := aligned(1024)
			copy(ring, oldRing)
			complete := true
			landed := make([]bool, EntryHeaderSize+n)
			for _, r := range tt.ranges {
				copy(ring[off+r[0]:off+r[1]], newRing[off+r[0]:off+r[1]])
				for i := r[0]; i < r[1] && i < len(landed); i++ {
					landed[i] = true
				}
			}
			for _, l := range landed {
				complete = complete && l
			}
			e, _, ok := Decode(ring, off, 11)
			if ok != complete {
				t.Fatalf("Decode ok = %v, want %v", ok, complete)
			}
			if ok {
				if err := checkEntry(e, 11, 2, 10, newP, off); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestStaleLap(t *testing.T) {
	// Entry 7 from an earlier lap at offset 192: a reader on a later lap
	// expects a larger index there and must not take it.
	ring := aligned(1024)
	Encode(ring[192:], 7, 1, 6, payloadFor(7, 50))
	for _, expect := range []uint64{8, 15, 7 + 1<<32} {
		if _, _, ok := Decode(ring, 192, expect); ok {
			t.Errorf("stale entry 7 accepted when expecting %d", expect)
		}
	}
	// A stale wrap marker is no better.
	EncodeWrap(ring[512:], 7)
	if _, _, ok := Decode(ring, 512, 8); ok {
		t.Error("stale wrap marker accepted")
	}
	if e, wrap, ok := Decode(ring, 512, 7); !ok || !wrap || e.Index != 7 || e.Size != EntryHeaderSize || e.Payload != nil {
		t.Errorf("current wrap marker: %+v wrap %v ok %v", e, wrap, ok)
	}
}

func TestStable(t *testing.T) {
	ring := aligned(1024)
	payload := payloadFor(4, 100)
	Encode(ring[256:], 4, 2, 3, payload)
	e, _, _ := Decode(ring, 256, 4)
	tests := []struct {
		name   string
		mutate func()
		want   bool
	}{
		{"untouched", func() {}, true},
		{"padding changed", func() { ring[256+EntryHeaderSize+100] ^= 1 }, true},
		{"payload byte overwritten", func() { ring[256+EntryHeaderSize+10] ^= 1 }, false},
		{"next lap's header landed", func() { Encode(ring[256:], 20, 2, 19, payload) }, false},
		{"rewritten by a new leader", func() { Encode(ring[256:], 4, 3, 3, payload) }, false},
		{"rewritten with a new commit", func() { Encode(ring[256:], 4, 2, 4, payload) }, false},
		{"replaced by a wrap marker", func() { EncodeWrap(ring[256:], 4) }, false},
		{"rewritten identically", func() { Encode(ring[256:], 4, 2, 3, payload) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := bytes.Clone(ring)
			defer copy(ring, saved)
			tt.mutate()
			if got := Stable(ring, e); got != tt.want {
				t.Fatalf("Stable = %v, want %v", got, tt.want)
			}
		})
	}
	// The reader's pattern: copy, then Stable.
	cp := append([]byte(nil), e.Payload...)
	if !Stable(ring, e) || !bytes.Equal(cp, payload) {
		t.Fatal("copy of a stable entry differs")
	}
}
