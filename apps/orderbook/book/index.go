package book

// index maps live order ids to node numbers: an open-addressing table with
// linear probing and backward-shift deletion, so that a steady stream of
// inserts and deletes never allocates (a Go map may, to clean up its
// tombstones) and lookups touch one or two cache lines. Key 0 marks an empty
// slot, which is why OrderID 0 is invalid. The table doubles when it is half
// full.
type index struct {
	keys  []OrderID
	vals  []int32
	mask  uint64
	shift uint
	n     int
}

func newIndex(capacity int) index {
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	var x index
	x.alloc(size)
	return x
}

func (x *index) alloc(size int) {
	x.keys = make([]OrderID, size)
	x.vals = make([]int32, size)
	x.mask = uint64(size - 1)
	x.shift = 64
	for s := size; s > 1; s /= 2 {
		x.shift--
	}
}

// home is the slot where k's probe starts (Fibonacci hashing).
func (x *index) home(k OrderID) uint64 { return (uint64(k) * 0x9E3779B97F4A7C15) >> x.shift }

// get returns k's node, or 0 if k is not in the table.
func (x *index) get(k OrderID) int32 {
	for i := x.home(k); ; i = (i + 1) & x.mask {
		switch x.keys[i] {
		case k:
			return x.vals[i]
		case 0:
			return 0
		}
	}
}

// put adds k, which must not be in the table.
func (x *index) put(k OrderID, v int32) {
	if 2*(x.n+1) > len(x.keys) {
		x.grow()
	}
	i := x.home(k)
	for x.keys[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.keys[i], x.vals[i] = k, v
	x.n++
}

func (x *index) grow() {
	keys, vals := x.keys, x.vals
	x.alloc(2 * len(keys))
	for i, k := range keys {
		if k != 0 {
			j := x.home(k)
			for x.keys[j] != 0 {
				j = (j + 1) & x.mask
			}
			x.keys[j], x.vals[j] = k, vals[i]
		}
	}
}

// del removes k, which must be in the table. The entries after it in its
// probe run move back to close the gap, so no tombstones accumulate.
func (x *index) del(k OrderID) {
	i := x.home(k)
	for x.keys[i] != k {
		i = (i + 1) & x.mask
	}
	x.n--
	for {
		x.keys[i] = 0
		j := i
		for {
			j = (j + 1) & x.mask
			if x.keys[j] == 0 {
				return
			}
			h := x.home(x.keys[j])
			// The entry at j may stay if its home lies cyclically in (i, j].
			if i < j {
				if i < h && h <= j {
					continue
				}
			} else if i < h || h <= j {
				continue
			}
			break
		}
		x.keys[i], x.vals[i] = x.keys[j], x.vals[j]
		i = j
	}
}
