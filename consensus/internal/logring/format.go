package logring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Sizes and markers of the format.
const (
	// HeaderSize is the size of the log header at the start of the log MR;
	// the ring follows it.
	HeaderSize = 64
	// EntryHeaderSize is the size of an entry's header; the payload follows.
	EntryHeaderSize = 32
	// Align is the alignment of entries (and of the MR): one cache line.
	Align = 64
	// WrapLength in an entry's Length field marks a wrap marker: the entry
	// with the marker's index continues at ring offset 0.
	WrapLength = 0xFFFFFFFF
)

// Offsets of the log header's words, relative to the start of the log MR.
//
// The first SharedHeaderSize bytes are the log's state, which a leader
// copies from its own header to its followers'. The read-index words after
// them are private to each follower: the leader answers that follower's
// read-index request there (the index first, then the request's sequence
// number, so a reader that loads the sequence number first finds an index
// at least as new), and a copy of another replica's header must never
// overwrite them with answers meant for that replica.
const (
	OffMinProposal    = 0
	OffCommitIndex    = 8
	OffFirstUndecided = 16
	OffCommitProposal = 24
	SharedHeaderSize  = 32
	OffReadIndex      = 32
	OffReadSeq        = 40
)

// Offsets of an entry's header fields, relative to the entry.
const (
	offIndex    = 0
	offProposal = 8
	offCommit   = 16
	offLenSum   = 24 // Length (low 32 bits) and Checksum (high 32 bits)
)

// castagnoli is computed once; hash/crc32 uses the CPU's CRC32 instructions
// for it where the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// slicing8 extends castagnoli to slicing-by-8 tables, for checksumming the
// header fields straight from registers: handing hash/crc32 a stack buffer
// would move the buffer to the heap on every call.
var slicing8 = func() (t [8][256]uint32) {
	t[0] = *castagnoli
	for i := range 256 {
		for k := 1; k < 8; k++ {
			c := t[k-1][i]
			t[k][i] = c>>8 ^ t[0][c&0xFF]
		}
	}
	return t
}()

// nativeBigEndian is true where the CPU's word order is big-endian; the
// atomic loads and stores then swap bytes so memory stays little-endian.
var nativeBigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// load64 reads the little-endian word at b[off:off+8] with one atomic 8-byte
// load when it is 8-aligned (always, in a correctly laid out MR), bytewise
// otherwise. It panics only when the word is out of range.
func load64(b []byte, off int) uint64 {
	w := b[off : off+8 : off+8]
	p := unsafe.Pointer(unsafe.SliceData(w))
	if uintptr(p)&7 != 0 {
		return binary.LittleEndian.Uint64(w)
	}
	v := atomic.LoadUint64((*uint64)(p))
	if nativeBigEndian {
		v = bits.ReverseBytes64(v)
	}
	return v
}

// store64 is load64's counterpart.
func store64(b []byte, off int, v uint64) {
	w := b[off : off+8 : off+8]
	p := unsafe.Pointer(unsafe.SliceData(w))
	if uintptr(p)&7 != 0 {
		binary.LittleEndian.PutUint64(w, v)
		return
	}
	if nativeBigEndian {
		v = bits.ReverseBytes64(v)
	}
	atomic.StoreUint64((*uint64)(p), v)
}

// LoadU64 atomically reads the little-endian 8-byte word at mem[off:], e.g. a
// log header word (OffCommitIndex...). off must be 8-aligned relative to an
// 8-aligned mem for the load to be atomic (see [CheckLayout]); it panics if
// the word is out of range.
func LoadU64(mem []byte, off int) uint64 { return load64(mem, off) }

// PutU64 atomically writes v as the little-endian 8-byte word at mem[off:],
// under the same conditions as [LoadU64].
func PutU64(mem []byte, off int, v uint64) { store64(mem, off, v) }

// Header is the log header at the start of the log MR.
type Header struct {
	MinProposal    uint64 // Paxos promise
	CommitIndex    uint64 // highest committed index known
	FirstUndecided uint64 // reserved: CommitIndex+1
	CommitProposal uint64 // proposal of the leader that wrote CommitIndex
}

// ReadHeader reads the log header from mem (the log MR, or a copy of at least
// its first 32 bytes). Each word is loaded atomically, but the four words are
// not one snapshot: a word written concurrently may be older or newer than
// its neighbours. It panics if mem is shorter than 32 bytes.
func ReadHeader(mem []byte) Header {
	_ = mem[OffCommitProposal+7]
	return Header{
		MinProposal:    load64(mem, OffMinProposal),
		CommitIndex:    load64(mem, OffCommitIndex),
		FirstUndecided: load64(mem, OffFirstUndecided),
		CommitProposal: load64(mem, OffCommitProposal),
	}
}

// Store writes all four words of h into mem, each atomically (not all at
// once). It panics if mem is shorter than 32 bytes.
func (h Header) Store(mem []byte) {
	_ = mem[OffCommitProposal+7]
	store64(mem, OffMinProposal, h.MinProposal)
	store64(mem, OffCommitIndex, h.CommitIndex)
	store64(mem, OffFirstUndecided, h.FirstUndecided)
	store64(mem, OffCommitProposal, h.CommitProposal)
}

// MemSize is the size of a log MR whose ring has ringSize bytes.
func MemSize(ringSize int) int { return HeaderSize + ringSize }

// CheckLayout reports whether mem can hold a log: a header and a non-empty
// ring whose size is a multiple of Align, starting Align-aligned (an mmap'd
// MR is), so that header words are atomic and entries sit on cache lines.
func CheckLayout(mem []byte) error {
	ring := len(mem) - HeaderSize
	if ring < Align || ring%Align != 0 {
		return fmt.Errorf("logring: log memory of %d bytes: want %d header bytes and a ring of a positive multiple of %d bytes", len(mem), HeaderSize, Align)
	}
	if addr := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); addr%Align != 0 {
		return fmt.Errorf("logring: log memory at %#x is not %d-byte aligned", addr, Align)
	}
	return nil
}

// fitted returns the padded size of an entry of length payload bytes at off
// and whether it fits before the ring's end (entries never straddle it).
// Computed in uint64 so that no length overflows an int.
func fitted(ring []byte, off int, length uint32) (int, bool) {
	size := (uint64(EntryHeaderSize) + uint64(length) + Align - 1) &^ (Align - 1)
	if size > uint64(len(ring)-off) {
		return 0, false
	}
	return int(size), true
}

// entrySize is EntrySize without the range check; n must be in range.
func entrySize(n int) int { return (EntryHeaderSize + n + Align - 1) &^ (Align - 1) }

// EntrySize is the number of ring bytes an entry with a payload of n bytes
// occupies: header, payload and padding to a multiple of Align. It panics if
// n is negative or not below WrapLength.
func EntrySize(n int) int {
	if n < 0 || uint64(n) >= WrapLength {
		panic(fmt.Sprintf("logring: payload length %d out of range", n))
	}
	return entrySize(n)
}

// MaxPayload is the largest payload an entry in a ring of ringSize bytes can
// carry (such an entry fills the whole ring), or -1 if the ring cannot hold
// even an empty entry.
func MaxPayload(ringSize int) int {
	n := ringSize&^(Align-1) - EntryHeaderSize
	if n < 0 {
		return -1
	}
	if uint64(n) >= WrapLength {
		n = WrapLength - 1
	}
	return n
}

// Entry is a validated log entry (or wrap marker) as found in a ring.
type Entry struct {
	Index    uint64 // 1-based log index
	Proposal uint64 // proposal number of the leader that wrote it
	Commit   uint64 // the writer's commit index when it wrote it
	// Payload aliases the ring: see the package documentation for how long
	// its bytes stay valid. Its capacity is cut at its length, so appending
	// to it cannot write into the ring. Nil for a wrap marker.
	Payload  []byte
	Off      int    // ring offset of the entry (of the marker, for a wrap marker)
	Size     int    // ring bytes it occupies, padding included (EntryHeaderSize for a marker)
	Checksum uint32 // the validated checksum
}

// checksum is the CRC-32C of the header fields, as laid out in bytes [0,28)
// of an entry, followed by the payload.
func checksum(index, proposal, commit uint64, length uint32, payload []byte) uint32 {
	t := &slicing8
	crc := ^uint32(0)
	for _, v := range [3]uint64{index, proposal, commit} {
		crc ^= uint32(v)
		hi := uint32(v >> 32)
		crc = t[0][hi>>24] ^ t[1][hi>>16&0xFF] ^ t[2][hi>>8&0xFF] ^ t[3][hi&0xFF] ^
			t[4][crc>>24] ^ t[5][crc>>16&0xFF] ^ t[6][crc>>8&0xFF] ^ t[7][crc&0xFF]
	}
	crc ^= length
	crc = t[0][crc>>24] ^ t[1][crc>>16&0xFF] ^ t[2][crc>>8&0xFF] ^ t[3][crc&0xFF]
	return crc32.Update(^crc, castagnoli, payload)
}

// seal writes an entry header into dst, the Index word last.
func seal(dst []byte, index, proposal, commit uint64, length uint32, payload []byte) {
	sum := checksum(index, proposal, commit, length, payload)
	store64(dst, offLenSum, uint64(length)|uint64(sum)<<32)
	store64(dst, offCommit, commit)
	store64(dst, offProposal, proposal)
	store64(dst, offIndex, index)
}

// Encode writes an entry at the start of dst (the ring at the entry's offset,
// which should be Align-aligned) and returns its size in the ring, padding
// included: the length of the WRITE that sends it. The padding is left as it
// was. payload may overlap dst. It panics if dst is shorter than the entry's
// size or the payload is too long for the format.
func Encode(dst []byte, index, proposal, commit uint64, payload []byte) (size int) {
	size = EntrySize(len(payload))
	if len(dst) < size {
		panic(fmt.Sprintf("logring: Encode: %d bytes of space for an entry of %d", len(dst), size))
	}
	copy(dst[EntryHeaderSize:], payload)
	return Seal(dst, index, proposal, commit, len(payload))
}

// Seal is Encode for a payload of n bytes already in place at
// dst[EntryHeaderSize:], e.g. a batch built there with AppendCommand: it
// writes the entry header and returns the entry's size.
func Seal(dst []byte, index, proposal, commit uint64, n int) (size int) {
	size = EntrySize(n)
	if len(dst) < size {
		panic(fmt.Sprintf("logring: Seal: %d bytes of space for an entry of %d", len(dst), size))
	}
	seal(dst, index, proposal, commit, uint32(n), dst[EntryHeaderSize:EntryHeaderSize+n])
	return size
}

// EncodeWrap writes a wrap marker at the start of dst (the ring at the offset
// where the entry does not fit): the entry with the given index continues at
// ring offset 0. The marker is EntryHeaderSize bytes long. It panics if dst is
// shorter.
func EncodeWrap(dst []byte, index uint64) {
	if len(dst) < EntryHeaderSize {
		panic(fmt.Sprintf("logring: EncodeWrap: %d bytes of space for a %d-byte marker", len(dst), EntryHeaderSize))
	}
	seal(dst, index, 0, 0, WrapLength, nil)
}

// Decode validates the entry at offset off of ring (the ring area of a log
// MR, not the whole MR) and returns it if its index is expect, it lies within
// ring, and its checksum matches; ok is false otherwise — nothing there yet,
// a WRITE still landing, or an entry from an earlier lap. wrap is true (with
// ok) for a wrap marker: the entry with index expect continues at offset 0.
// Wrap markers at offset 0 are rejected, as no writer puts one there.
//
// Decode never panics and never reads outside ring, whatever its bytes, and
// copies nothing: e.Payload aliases ring. Header words are read with aligned
// atomic loads; the fields returned are exactly the ones checksummed.
func Decode(ring []byte, off int, expect uint64) (e Entry, wrap bool, ok bool) {
	if off < 0 || off%Align != 0 || off > len(ring)-EntryHeaderSize {
		return Entry{}, false, false
	}
	index := load64(ring, off+offIndex)
	if index != expect {
		return Entry{}, false, false
	}
	proposal := load64(ring, off+offProposal)
	commit := load64(ring, off+offCommit)
	w := load64(ring, off+offLenSum)
	length, sum := uint32(w), uint32(w>>32)
	if length == WrapLength {
		if off == 0 || checksum(index, proposal, commit, length, nil) != sum {
			return Entry{}, false, false
		}
		return Entry{Index: index, Proposal: proposal, Commit: commit, Off: off, Size: EntryHeaderSize, Checksum: sum}, true, true
	}
	size, ok := fitted(ring, off, length)
	if !ok {
		return Entry{}, false, false
	}
	start, end := off+EntryHeaderSize, off+EntryHeaderSize+int(length)
	payload := ring[start:end:end]
	if checksum(index, proposal, commit, length, payload) != sum {
		return Entry{}, false, false
	}
	return Entry{
		Index:    index,
		Proposal: proposal,
		Commit:   commit,
		Payload:  payload,
		Off:      off,
		Size:     size,
		Checksum: sum,
	}, false, true
}

// Stable reports whether e, returned earlier by Decode or Cursor.Poll on the
// same ring, is still intact there: same header and a payload that still
// matches the checksum. A reader that cannot rule out the writer reusing the
// entry's space copies e.Payload, then calls Stable, and uses the copy only
// if it returns true (see the package documentation). Like Decode it never
// panics.
func Stable(ring []byte, e Entry) bool {
	now, _, ok := Decode(ring, e.Off, e.Index)
	// Size tells markers (EntryHeaderSize) from entries (at least Align).
	return ok && now.Size == e.Size && len(now.Payload) == len(e.Payload) &&
		now.Checksum == e.Checksum && now.Proposal == e.Proposal &&
		now.Commit == e.Commit
}
