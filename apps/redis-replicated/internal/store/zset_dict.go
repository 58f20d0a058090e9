package store

import (
	"hash/maphash"
	"math/bits"
)

// zdict is the member -> score half of a sorted set, laid out as a compact
// dict: the entries (member and score) lie in a segmented array (see
// zentries), in no particular order, and a power-of-two table of (hash,
// entry index) pairs, probed linearly, finds them. The table holds no
// pointers, so growing it moves 8-byte pairs, and never a member (nor
// hashes one again); a new member's entry is appended, and growing the
// entries moves none. A delete shifts the table slots after it back (no
// tombstones) and moves the last entry into the hole. ZADD asks once
// (probe) where a member is or would go, where a Go map would hash it
// twice.
//
// Nothing reads the table or the entries in their order (which depends on
// the process's hash seed and on history): what clients and snapshots see
// is ordered by the tree.
type zdict struct {
	table   []zdslot
	entries zentries
}

// zentries is an array of entries in segments of 8, 16, 32, … entries, so
// that it grows without moving any.
type zentries struct {
	segs [][]zslot
	n    int
}

// zsegOf is the segment and offset of entry i.
func zsegOf(i int) (seg, off int) {
	b := uint(i) + 8
	seg = bits.Len(b) - 4
	return seg, int(b - 8<<seg)
}

func (es *zentries) at(i int) *zslot {
	seg, off := zsegOf(i)
	return &es.segs[seg][off]
}

func (es *zentries) push(e zslot) {
	seg, off := zsegOf(es.n)
	if seg == len(es.segs) {
		es.segs = append(es.segs, make([]zslot, 8<<seg))
	}
	es.segs[seg][off] = e
	es.n++
}

// pop clears and drops the last entry (and its segment once empty).
func (es *zentries) pop() {
	es.n--
	seg, off := zsegOf(es.n)
	es.segs[seg][off] = zslot{}
	if off == 0 && seg > 0 {
		es.segs[seg] = nil
		es.segs = es.segs[:seg]
	}
}

// zdslot is a table slot: hash 0 is an empty slot; idx indexes entries.
type zdslot struct {
	hash, idx uint32
}

type zslot struct {
	member string
	score  float64
}

// zdictSeed keys the member hashes: fixed for the process, so that slots
// stay put, and random, so that clients cannot choose colliding members.
var zdictSeed = maphash.MakeSeed()

const zdictMinSize = 8

func zhashBytes(m []byte) uint32 {
	h := uint32(maphash.Bytes(zdictSeed, m))
	if h == 0 {
		h = 1
	}
	return h
}

func zhashString(m string) uint32 {
	h := uint32(maphash.String(zdictSeed, m))
	if h == 0 {
		h = 1
	}
	return h
}

// newZDict returns a dict with room for n members without growing.
func newZDict(n int) zdict {
	size := zdictMinSize
	for size*3/4 < n {
		size *= 2
	}
	return zdict{table: make([]zdslot, size)}
}

// find is the table slot of member m of hash h, or of the empty slot that
// ends its probe; found tells which.
func (d *zdict) find(h uint32, m string) (int, bool) {
	mask := uint32(len(d.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := d.table[i]
		if s.hash == 0 {
			return int(i), false
		}
		if s.hash == h && d.entries.at(int(s.idx)).member == m {
			return int(i), true
		}
	}
}

// get is m's score.
func (d *zdict) get(m []byte) (float64, bool) {
	if d.entries.n == 0 {
		return 0, false
	}
	i, ok := d.find(zhashBytes(m), string(m))
	if !ok {
		return 0, false
	}
	return d.entries.at(int(d.table[i].idx)).score, true
}

// getString is get for a string.
func (d *zdict) getString(m string) (float64, bool) {
	if d.entries.n == 0 {
		return 0, false
	}
	i, ok := d.find(zhashString(m), m)
	if !ok {
		return 0, false
	}
	return d.entries.at(int(d.table[i].idx)).score, true
}

// probe looks m up, after making room for one more member. Found, ref is
// m's entry (see entry); otherwise it is the table slot that fill takes,
// and h is m's hash.
func (d *zdict) probe(m []byte) (ref int, h uint32, found bool) {
	if (d.entries.n+1)*4 > len(d.table)*3 {
		d.grow()
	}
	h = zhashBytes(m)
	i, found := d.find(h, string(m))
	if found {
		return int(d.table[i].idx), h, true
	}
	return i, h, false
}

// entry is the entry probe found.
func (d *zdict) entry(ref int) *zslot { return d.entries.at(ref) }

// fill adds a member, of hash h, with its score, in the table slot probe
// returned.
func (d *zdict) fill(slot int, h uint32, member string, score float64) {
	d.table[slot] = zdslot{hash: h, idx: uint32(d.entries.n)}
	d.entries.push(zslot{member: member, score: score})
}

// set gives member score, adding it if it is new.
func (d *zdict) set(member string, score float64) {
	if (d.entries.n+1)*4 > len(d.table)*3 {
		d.grow()
	}
	h := zhashString(member)
	i, found := d.find(h, member)
	if found {
		d.entries.at(int(d.table[i].idx)).score = score
		return
	}
	d.fill(i, h, member, score)
}

// grow doubles the table, placing the slots again by their hashes.
func (d *zdict) grow() {
	old := d.table
	size := max(zdictMinSize, 2*len(old))
	d.table = make([]zdslot, size)
	mask := uint32(size - 1)
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		j := s.hash & mask
		for d.table[j].hash != 0 {
			j = (j + 1) & mask
		}
		d.table[j] = s
	}
}

// delete removes m; it reports whether m was there.
func (d *zdict) delete(m string) bool {
	if d.entries.n == 0 {
		return false
	}
	i, ok := d.find(zhashString(m), m)
	if !ok {
		return false
	}
	idx := d.table[i].idx
	// Shift back every later slot of the run that may move to i: one whose
	// home is not cyclically within (i, j].
	mask := len(d.table) - 1
	for j := (i + 1) & mask; d.table[j].hash != 0; j = (j + 1) & mask {
		home := int(d.table[j].hash) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.table[i] = d.table[j]
			i = j
		}
	}
	d.table[i] = zdslot{}
	// The last entry fills the hole; its slot learns its new index.
	last := uint32(d.entries.n - 1)
	if idx != last {
		moved := *d.entries.at(int(last))
		*d.entries.at(int(idx)) = moved
		h := zhashString(moved.member)
		j := h & uint32(mask)
		for d.table[j].idx != last || d.table[j].hash != h {
			j = (j + 1) & uint32(mask)
		}
		d.table[j].idx = idx
	}
	d.entries.pop()
	return true
}
