package store

import (
	"hash/maphash"
	"unsafe"
)

// zdict is the member -> score half of a sorted set, and the owner of its
// members' bytes, laid out so that nothing in it holds a pointer: the
// garbage collector has nothing to scan, and an insert allocates no
// string.
//
//   - arena holds the members' bytes, one after another. Bytes once
//     written there never change (a member's string, handed out by
//     member, aliases them): a delete leaves its bytes as garbage, and
//     when garbage outweighs the live bytes, compact copies the live ones
//     into a new arena (the old one lives on for as long as some string
//     still points into it).
//   - ents are the entries (score, the member's place in arena and its
//     hash), in no particular order; an entry's index is its member's
//     identity, which the tree's leaves hold. A deleted entry joins a
//     free list, so that no entry moves but in compact.
//   - table is a power-of-two table of (hash, entry index) pairs, probed
//     linearly; a delete shifts the slots after it back (no tombstones).
//     ZADD asks once (probe) where a member is or would go.
//
// Nothing reads the table or the entries in their order (which depends on
// the process's hash seed and on history): what clients and snapshots see
// is ordered by the tree.
type zdict struct {
	table   []zdslot
	segs    [][]zent // the entries, zentSeg to a segment (the first grows up to that)
	nents   int      // entries, live or free
	free    uint32   // 1 + the first free entry's index; 0: none
	n       int      // live entries
	chunks  [][]byte // the arena, in chunks (the last grows up to zchunkMax)
	bytes   int      // bytes written to the arena
	garbage int      // of which no live member's
}

// zent is a member's entry: its score, its bytes (chunks[chunk][off:][:n])
// and its hash. A free entry has n zfreeMark and off the next free's link.
type zent struct {
	score      float64
	chunk, off uint32
	n          uint32
	hash       uint32
}

const (
	zfreeMark = ^uint32(0)
	// The entries and the arena grow in pieces of these sizes (12 KiB and
	// 16 KiB) but for their first, which doubles up to that: a set grows
	// without moving what it holds (nor allocating a large object), and a
	// small one stays small.
	zentShift = 9
	zentSeg   = 1 << zentShift
	zchunkMax = 16 << 10
)

// zdslot is a table slot: hash 0 is an empty slot; idx indexes ents.
type zdslot struct {
	hash, idx uint32
}

// zdictSeed keys the member hashes: fixed for the process, so that slots
// stay put, and random, so that clients cannot choose colliding members.
var zdictSeed = maphash.MakeSeed()

const zdictMinSize = 8

func zhashString(m string) uint32 {
	h := uint32(maphash.String(zdictSeed, m))
	if h == 0 {
		h = 1
	}
	return h
}

// bstr views b as a string for a comparison or a lookup, without a copy;
// the string must not outlive the call (b may change afterwards).
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// newZDict returns a dict with room for n members (of about bytes bytes in
// all) without growing its table.
func newZDict(n, bytes int) zdict {
	size := zdictMinSize
	for size*3/4 < n {
		size *= 2
	}
	d := zdict{table: make([]zdslot, size)}
	d.segs = [][]zent{make([]zent, 0, min(n, zentSeg))}
	d.chunks = [][]byte{make([]byte, 0, min(bytes, zchunkMax))}
	return d
}

// ent is entry i.
func (d *zdict) ent(i uint32) *zent { return &d.segs[i>>zentShift][i&(zentSeg-1)] }

// member is the member of entry i. The string aliases the arena, whose
// bytes never change, so it stays valid after any change to the dict.
func (d *zdict) member(i uint32) string {
	e := d.ent(i)
	if e.n == 0 {
		return ""
	}
	return unsafe.String(&d.chunks[e.chunk][e.off], int(e.n))
}

// store writes m to the arena and returns where: a chunk and an offset.
func (d *zdict) store(m string) (chunk, off uint32) {
	d.bytes += len(m)
	last := len(d.chunks) - 1
	if last >= 0 {
		c := d.chunks[last]
		if len(c)+len(m) <= cap(c) {
			d.chunks[last] = append(c, m...)
			return uint32(last), uint32(len(c))
		}
		if need := len(c) + len(m); need <= zchunkMax && cap(c) < zchunkMax {
			// The last chunk doubles into a new array: the old one stays
			// for the strings that alias it, and offsets hold.
			g := make([]byte, len(c), min(max(2*cap(c), need, 32), zchunkMax))
			copy(g, c)
			d.chunks[last] = append(g, m...)
			return uint32(last), uint32(len(c))
		}
	}
	c := make([]byte, 0, max(len(m), zchunkMax))
	if last < 0 {
		c = make([]byte, 0, max(len(m), 32))
	}
	d.chunks = append(d.chunks, append(c, m...))
	return uint32(len(d.chunks) - 1), 0
}

// push appends entry e and returns its index.
func (d *zdict) push(e zent) uint32 {
	i := d.nents
	seg := i >> zentShift
	if seg == len(d.segs) {
		c := zentSeg
		if seg == 0 {
			c = 8
		}
		d.segs = append(d.segs, make([]zent, 0, c))
	}
	if s := d.segs[seg]; len(s) == cap(s) {
		g := make([]zent, len(s), min(max(2*cap(s), 8), zentSeg))
		copy(g, s)
		d.segs[seg] = g
	}
	d.segs[seg] = append(d.segs[seg], e)
	d.nents++
	return uint32(i)
}

// score is the score of entry i.
func (d *zdict) score(i uint32) float64 { return d.ent(i).score }

// find is the table slot of member m of hash h, or of the empty slot that
// ends its probe; found tells which.
func (d *zdict) find(h uint32, m string) (int, bool) {
	mask := uint32(len(d.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := d.table[i]
		if s.hash == 0 {
			return int(i), false
		}
		if s.hash == h && d.member(s.idx) == m {
			return int(i), true
		}
	}
}

// lookup is the entry index of m.
func (d *zdict) lookup(m string) (uint32, bool) {
	if d.n == 0 {
		return 0, false
	}
	i, ok := d.find(zhashString(m), m)
	if !ok {
		return 0, false
	}
	return d.table[i].idx, true
}

// get is m's score.
func (d *zdict) get(m []byte) (float64, bool) { return d.getString(bstr(m)) }

// getString is get for a string.
func (d *zdict) getString(m string) (float64, bool) {
	i, ok := d.lookup(m)
	if !ok {
		return 0, false
	}
	return d.ent(i).score, true
}

// probe looks m up, after making room for one more member. Found, ref is
// m's entry index; otherwise it is the table slot that fill takes, and h
// is m's hash.
func (d *zdict) probe(m string) (ref int, h uint32, found bool) {
	if (d.n+1)*4 > len(d.table)*3 {
		d.grow()
	}
	h = zhashString(m)
	i, found := d.find(h, m)
	if found {
		return int(d.table[i].idx), h, true
	}
	return i, h, false
}

// fill adds member m, of hash h, with its score, in the table slot probe
// returned; it copies m's bytes and returns the new entry's index.
func (d *zdict) fill(slot int, h uint32, m string, score float64) uint32 {
	chunk, off := d.store(m)
	e := zent{score: score, chunk: chunk, off: off, n: uint32(len(m)), hash: h}
	var idx uint32
	if d.free != 0 {
		idx = d.free - 1
		d.free = d.ent(idx).off
		*d.ent(idx) = e
	} else {
		idx = d.push(e)
	}
	d.table[slot] = zdslot{hash: h, idx: idx}
	d.n++
	return idx
}

// set gives member score, adding it if it is new; it returns the entry's
// index.
func (d *zdict) set(member string, score float64) uint32 {
	ref, h, found := d.probe(member)
	if found {
		d.ent(uint32(ref)).score = score
		return uint32(ref)
	}
	return d.fill(ref, h, member, score)
}

// grow doubles the table, placing the slots again by their hashes.
func (d *zdict) grow() {
	d.rehash(max(zdictMinSize, 2*len(d.table)))
}

// rehash places the slots in a new table of size slots.
func (d *zdict) rehash(size int) {
	old := d.table
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

// remove deletes entry idx, which is in table slot i; the caller then
// drops it from the tree, and may compact the dict (see needsCompact).
func (d *zdict) remove(i int, idx uint32) {
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
	e := d.ent(idx)
	d.garbage += int(e.n)
	*e = zent{off: d.free, n: zfreeMark}
	d.free = idx + 1
	d.n--
}

// slotOf is the table slot of entry idx.
func (d *zdict) slotOf(idx uint32) int {
	h := d.ent(idx).hash
	mask := uint32(len(d.table) - 1)
	j := h & mask
	for d.table[j].idx != idx || d.table[j].hash != h {
		j = (j + 1) & mask
	}
	return int(j)
}

// needsCompact reports whether the garbage in the arena, or the free
// entries, outweigh what is live (past a floor, so that a small set
// never compacts).
func (d *zdict) needsCompact() bool {
	return d.garbage > 1024 && d.garbage > d.bytes/2 ||
		d.nents > 64 && d.nents-d.n > d.nents/2
}

// compact renumbers the live entries 0… in the order order gives (every
// live entry once), copies their bytes into a new arena, drops the free
// list, resizes the table for them and returns the renumbering (old
// index -> new), for the tree to follow.
func (d *zdict) compact(order func(yield func(uint32) bool)) []uint32 {
	old := *d
	*d = newZDict(0, old.bytes-old.garbage)
	size := zdictMinSize
	for size*3/8 < old.n { // half full at most, so that it does not soon grow
		size *= 2
	}
	d.table = make([]zdslot, size)
	renum := make([]uint32, old.nents)
	for i := range order {
		e := *old.ent(i)
		if e.n > 0 {
			e.chunk, e.off = d.store(old.member(i))
		} else {
			e.chunk, e.off = 0, 0
		}
		renum[i] = d.push(e)
		d.n++
	}
	mask := uint32(size - 1)
	for i := range d.nents {
		h := d.ent(uint32(i)).hash
		j := h & mask
		for d.table[j].hash != 0 {
			j = (j + 1) & mask
		}
		d.table[j] = zdslot{hash: h, idx: uint32(i)}
	}
	return renum
}
