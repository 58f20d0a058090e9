package store

import "hash/maphash"

// zdict is the member -> score half of a sorted set: open addressing with
// linear probing over a power-of-two table. Each slot's hash is kept in a
// dense array beside it, so a probe compares members only on equal hashes
// and growing never hashes a member again; a delete shifts the slots after
// it back (no tombstones). ZADD asks once (probe) where a member is or
// would go, and fills that slot, where a Go map would hash it twice.
//
// Nothing reads the slots in table order (which depends on the process's
// hash seed): what clients and snapshots see is ordered by the tree.
type zdict struct {
	hashes []uint32 // 0: an empty slot
	slots  []zslot
	n      int
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
	return zdict{hashes: make([]uint32, size), slots: make([]zslot, size)}
}

// find is the slot of member m of hash h, or of the empty slot that ends
// its probe; found tells which.
func (d *zdict) find(h uint32, m string) (int, bool) {
	mask := uint32(len(d.hashes) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch d.hashes[i] {
		case 0:
			return int(i), false
		case h:
			if d.slots[i].member == m {
				return int(i), true
			}
		}
	}
}

// get is m's score.
func (d *zdict) get(m []byte) (float64, bool) {
	if d.n == 0 {
		return 0, false
	}
	i, ok := d.find(zhashBytes(m), string(m))
	return d.slots[i].score, ok
}

// getString is get for a string.
func (d *zdict) getString(m string) (float64, bool) {
	if d.n == 0 {
		return 0, false
	}
	i, ok := d.find(zhashString(m), m)
	return d.slots[i].score, ok
}

// probe is the slot of m: its own (found) or the one fill would give it,
// after making room for one more member.
func (d *zdict) probe(m []byte) (slot int, h uint32, found bool) {
	if (d.n+1)*4 > len(d.hashes)*3 {
		d.grow()
	}
	h = zhashBytes(m)
	slot, found = d.find(h, string(m))
	return slot, h, found
}

// fill puts a new member, of hash h, with its score in the empty slot
// probe returned.
func (d *zdict) fill(slot int, h uint32, member string, score float64) {
	d.hashes[slot] = h
	d.slots[slot] = zslot{member: member, score: score}
	d.n++
}

// set gives member score, adding it if it is new.
func (d *zdict) set(member string, score float64) {
	if (d.n+1)*4 > len(d.hashes)*3 {
		d.grow()
	}
	h := zhashString(member)
	i, found := d.find(h, member)
	if found {
		d.slots[i].score = score
		return
	}
	d.fill(i, h, member, score)
}

func (d *zdict) grow() {
	old, oldSlots := d.hashes, d.slots
	size := max(zdictMinSize, 2*len(old))
	d.hashes, d.slots = make([]uint32, size), make([]zslot, size)
	mask := uint32(size - 1)
	for i, h := range old {
		if h == 0 {
			continue
		}
		j := h & mask
		for d.hashes[j] != 0 {
			j = (j + 1) & mask
		}
		d.hashes[j], d.slots[j] = h, oldSlots[i]
	}
}

// delete removes m; it reports whether m was there.
func (d *zdict) delete(m string) bool {
	if d.n == 0 {
		return false
	}
	i, ok := d.find(zhashString(m), m)
	if !ok {
		return false
	}
	// Shift back every later slot of the run that may move to i: one whose
	// home is not cyclically within (i, j].
	mask := len(d.hashes) - 1
	for j := (i + 1) & mask; d.hashes[j] != 0; j = (j + 1) & mask {
		home := int(d.hashes[j]) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.hashes[i], d.slots[i] = d.hashes[j], d.slots[j]
			i = j
		}
	}
	d.hashes[i], d.slots[i] = 0, zslot{}
	d.n--
	return true
}
