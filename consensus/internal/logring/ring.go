package logring

import (
	"errors"
	"fmt"
)

// ErrFull is wrapped by Ring.Appended when the entry does not fit in the
// space released so far, or the ring already retains its maximum number of
// entries.
var ErrFull = errors.New("logring: ring full")

// Slot is where a retained entry lives in the ring.
type Slot struct {
	Off    int // ring offset of the entry
	WrapAt int // ring offset of the wrap marker before it, or -1 if none
	Size   int // ring bytes of the entry, padding included (not the marker)
}

type slot struct {
	Slot
	end uint64 // virtual position just past the entry
}

// Ring is the writer's space accounting for a ring of fixed size: where the
// next entry goes, which entries are retained (appended, not yet released)
// and where they live. Placement depends only on where the previous entry
// ended and on the new entry's size, so replaying the same sizes from the same
// offset yields the same offsets (the mirror property). After New, no method
// allocates. A Ring is not safe for concurrent use.
//
// Bytes are accounted on a virtual, ever-growing position; an offset is a
// position modulo the ring size. The retained entries occupy [head, tail),
// including the wasted bytes a wrap skips, which count against the entry
// after the wrap.
type Ring struct {
	size       int
	maxPayload int
	slots      []slot // circular: retained entries, oldest at first
	first      int    // slots index of the oldest retained entry
	count      int    // retained entries
	firstIndex uint64 // index of the oldest retained entry (released+1)
	next       uint64 // index of the next entry to append
	head, tail uint64 // virtual positions
}

// New returns an empty ring of size bytes (a positive multiple of Align)
// that retains at most maxEntries entries; the first entry to append is index
// 1 at offset 0.
func New(size, maxEntries int) (*Ring, error) {
	if size < Align || size%Align != 0 {
		return nil, fmt.Errorf("logring: ring size %d is not a positive multiple of %d", size, Align)
	}
	if maxEntries < 1 {
		return nil, fmt.Errorf("logring: ring of %d bytes must retain at least one entry, not %d", size, maxEntries)
	}
	r := &Ring{size: size, maxPayload: MaxPayload(size), slots: make([]slot, maxEntries)}
	if err := r.Reset(1, 0); err != nil {
		return nil, err
	}
	return r, nil
}

// Reset forgets every retained entry and continues with index nextIndex at
// ring offset off: the whole ring counts as free. After a recovery a new
// leader resets to the oldest entry it must keep (one a majority may not
// have applied yet) and calls Appended for every entry from there to its
// tail, which re-registers them and checks that they sit where this ring's
// placement puts them.
func (r *Ring) Reset(nextIndex uint64, off int) error {
	if nextIndex == 0 {
		return errors.New("logring: reset to index 0: indexes start at 1")
	}
	if off < 0 || off >= r.size || off%Align != 0 {
		return fmt.Errorf("logring: reset to offset %d: want a multiple of %d in [0, %d)", off, Align, r.size)
	}
	r.first, r.count = 0, 0
	r.firstIndex, r.next = nextIndex, nextIndex
	r.head, r.tail = uint64(off), uint64(off)
	return nil
}

// place computes where an entry with an n-byte payload goes, and by how much
// it advances the tail (its size plus any bytes skipped by a wrap).
func (r *Ring) place(n int) (off, wrapAt int, advance uint64, ok bool) {
	if n < 0 || n > r.maxPayload {
		return 0, -1, 0, false
	}
	size := entrySize(n)
	t := int(r.tail % uint64(r.size))
	if t+size <= r.size {
		return t, -1, uint64(size), true
	}
	return 0, t, uint64(r.size - t + size), true
}

// Reserve reports where the next entry, with a payload of n bytes, goes: at
// ring offset off, after a wrap marker at wrapAt (-1 if none is needed). ok
// is false if it does not fit in the space released so far or the ring
// retains its maximum number of entries — the caller waits for applies
// (Release) or gives up on laggards — and always if n > MaxPayload(size).
// Reserve changes nothing; Appended records the entry once written.
func (r *Ring) Reserve(n int) (off, wrapAt int, ok bool) {
	off, wrapAt, advance, fits := r.place(n)
	if !fits || r.count == len(r.slots) || r.tail-r.head+advance > uint64(r.size) {
		return 0, -1, false
	}
	return off, wrapAt, true
}

// Appended records that entry index, with a payload of n bytes, was written
// at ring offset off (where Reserve put it; the wrap marker too, if any). It
// fails if index is not Next(), off is not where the entry goes, or the entry
// does not fit (wrapping ErrFull).
func (r *Ring) Appended(index uint64, off, n int) error {
	if index != r.next {
		return fmt.Errorf("logring: appended index %d, want %d", index, r.next)
	}
	want, wrapAt, advance, fits := r.place(n)
	if !fits {
		return fmt.Errorf("logring: appended index %d: payload of %d bytes exceeds the maximum of %d", index, n, r.maxPayload)
	}
	if off != want {
		return fmt.Errorf("logring: appended index %d at offset %d, but it goes at %d", index, off, want)
	}
	if r.count == len(r.slots) {
		return fmt.Errorf("logring: appended index %d: %d entries retained already: %w", index, r.count, ErrFull)
	}
	if used := r.tail - r.head; used+advance > uint64(r.size) {
		return fmt.Errorf("logring: appended index %d: needs %d bytes, %d of %d free: %w", index, advance, uint64(r.size)-used, r.size, ErrFull)
	}
	r.tail += advance
	r.slots[(r.first+r.count)%len(r.slots)] = slot{Slot{Off: off, WrapAt: wrapAt, Size: entrySize(n)}, r.tail}
	r.count++
	r.next++
	return nil
}

// Release lets the space of every entry with an index up to index be
// reused: call it once a majority (whose applied positions the zero-copy
// readers rely on) has applied them. Releasing entries not yet appended
// releases only those appended; releasing less than before does nothing.
func (r *Ring) Release(index uint64) {
	for r.count > 0 && r.firstIndex <= index {
		r.head = r.slots[r.first].end
		r.first = (r.first + 1) % len(r.slots)
		r.count--
		r.firstIndex++
	}
}

// Lookup reports where retained entry index lives.
func (r *Ring) Lookup(index uint64) (Slot, bool) {
	if index < r.firstIndex || index >= r.next {
		return Slot{}, false
	}
	return r.slots[(r.first+int(index-r.firstIndex))%len(r.slots)].Slot, true
}

// Offset reports the ring offset of retained entry index.
func (r *Ring) Offset(index uint64) (off int, ok bool) {
	s, ok := r.Lookup(index)
	return s.Off, ok
}

// Size is the ring's size in bytes.
func (r *Ring) Size() int { return r.size }

// Next is the index of the next entry to append.
func (r *Ring) Next() uint64 { return r.next }

// Released is the highest index released (or skipped by Reset): entries up to
// it are no longer retained.
func (r *Ring) Released() uint64 { return r.firstIndex - 1 }

// Len is the number of retained entries.
func (r *Ring) Len() int { return r.count }

// Tail is the ring offset where the previous entry ended: the next entry goes
// there if it fits before the ring's end.
func (r *Ring) Tail() int { return int(r.tail % uint64(r.size)) }

// Free is the number of ring bytes not retained. An entry may need more than
// its size: a wrap skips the bytes up to the ring's end.
func (r *Ring) Free() int { return r.size - int(r.tail-r.head) }
