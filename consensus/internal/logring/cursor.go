package logring

// Cursor is a reader's position in a ring: the index it expects next and the
// ring offset where that entry (or a wrap marker for it) goes. The zero value
// is not useful; start at Cursor{Next: 1, Off: 0}, or wherever a state
// transfer left off. A Cursor is a plain value: copy it to remember a
// position.
type Cursor struct {
	Next uint64
	Off  int
}

// Poll decodes the entry at the cursor, following a wrap marker to offset 0.
// On success it returns the entry and advances past it; otherwise (nothing
// valid there yet) it returns false, having at most moved to offset 0 past a
// valid wrap marker. It never panics, whatever ring holds, and does not
// allocate; the entry's payload aliases ring (see Stable).
//
// Poll advances over entries that may not be committed yet. After a leader
// change such entries, and the offsets of the ones after them, can be
// replaced; a reader therefore keeps a copy of the cursor taken after its
// last applied entry (whose successors sit at the same offsets on every
// replica) and goes back to it when an entry it decoded turns out not to be
// Stable.
func (c *Cursor) Poll(ring []byte) (Entry, bool) {
	e, wrap, ok := Decode(ring, c.Off, c.Next)
	if !ok {
		return Entry{}, false
	}
	if wrap {
		c.Off = 0
		if e, wrap, ok = Decode(ring, 0, c.Next); !ok || wrap {
			return Entry{}, false
		}
	}
	c.Next++
	c.Off = e.Off + e.Size
	if c.Off >= len(ring) {
		c.Off = 0
	}
	return e, true
}

// Extent tells which ring bytes a Poll at c reads, judging by the entry
// headers ring holds now: n0 bytes at c.Off and, when the entry there is a
// wrap marker, n1 bytes at offset 0 (otherwise n1 is 0). A reader that holds
// only part of a ring (a new leader's partial copy of a follower's log)
// checks that these bytes are in its part, headers first, before it trusts
// Poll's answer.
func (c Cursor) Extent(ring []byte) (n0, n1 int) {
	n0, wrap := span(ring, c.Off)
	if wrap && c.Off != 0 {
		n1, _ = span(ring, 0)
	}
	return n0, n1
}

// span is the number of bytes Decode reads for an entry at off: the header
// only for a wrap marker or a length that cannot fit, the padded entry
// otherwise; 0 for an offset Decode rejects unread.
func span(ring []byte, off int) (n int, wrap bool) {
	if off < 0 || off%Align != 0 || off > len(ring)-EntryHeaderSize {
		return 0, false
	}
	length := uint32(load64(ring, off+offLenSum))
	if length == WrapLength {
		return EntryHeaderSize, true
	}
	size, ok := fitted(ring, off, length)
	if !ok {
		return EntryHeaderSize, false
	}
	return size, false
}
