package store

// LZF, the compression Redis applies to long strings in RDB files and DUMP
// payloads (its lzf_c.c and lzf_d.c, LZF 3.6 as Redis configures it: a
// 2^16-slot hash table, the VERY_FAST variant). lzfCompress follows the
// same choices step by step, so for the same input it produces the same
// bytes as Redis, provided Redis's hash table starts empty (Redis does not
// clear it between calls; a stale slot can only make Redis find an extra
// match, which this decoder reads all the same).
//
// The format is a sequence of runs. A control byte below 32 starts a run of
// ctrl+1 literal bytes. Otherwise its top 3 bits hold len (7: a length byte
// follows and is added) and its low 5 bits the high bits of an offset whose
// low byte follows: copy len+2 bytes from off+1 bytes back.

import "sync"

const (
	lzfHashLog  = 16
	lzfHashSize = 1 << lzfHashLog
	lzfMaxLit   = 1 << 5
	lzfMaxOff   = 1 << 13
	lzfMaxRef   = 1<<8 + 1<<3
)

// lzfTable is the compressor's hash table: the last position seen for
// each hash of three bytes. Clearing 2^16 slots for every string would
// cost more than compressing most strings, so each slot carries the
// generation (the call) that wrote it and slots of older calls read as
// empty; tables are pooled, as DUMPs may run concurrently.
type lzfTable struct {
	slots [lzfHashSize]uint64 // generation<<32 | position
	gen   uint64
}

var lzfTables = sync.Pool{New: func() any { return new(lzfTable) }}

// reset empties the table for a new call.
func (t *lzfTable) reset() {
	t.gen++
	if t.gen == 1<<32 {
		t.slots = [lzfHashSize]uint64{}
		t.gen = 1
	}
}

// get is the position in slot, -1 when empty (for this call).
func (t *lzfTable) get(slot uint32) int {
	e := t.slots[slot]
	if e>>32 != t.gen {
		return -1
	}
	return int(uint32(e))
}

func (t *lzfTable) set(slot uint32, pos int) { t.slots[slot] = t.gen<<32 | uint64(pos) }

// lzfIndex is the hash slot of the three bytes packed in h (VERY_FAST).
func lzfIndex(h uint32) uint32 {
	return ((h >> (3*8 - lzfHashLog)) - h*5) & (lzfHashSize - 1)
}

// lzfCompress compresses in into at most maxOut bytes; nil when the result
// would not fit (Redis then stores the string verbatim).
func lzfCompress(in []byte, maxOut int) []byte {
	n := len(in)
	if n == 0 || maxOut <= 0 || n < 3 {
		// Redis's loop needs three bytes to hash; shorter inputs are
		// literals, which never fit in less than their length.
		return lzfLiteralsOnly(in, maxOut)
	}
	h := lzfTables.Get().(*lzfTable)
	defer lzfTables.Put(h)
	h.reset()
	out := make([]byte, 0, maxOut)
	out = append(out, 0) // the first run's control byte
	lit := 0
	ip := 0
	hval := uint32(in[0])<<8 | uint32(in[1])
	for ip < n-2 {
		hval = hval<<8 | uint32(in[ip+2])
		slot := lzfIndex(hval)
		ref := h.get(slot)
		h.set(slot, ip)
		off := ip - ref - 1
		// Position 0 never matches: Redis tests ref > in_data, so as not
		// to take an empty slot (offset 0) for a match.
		if ref > 0 && off >= 0 && off < lzfMaxOff &&
			in[ref+2] == in[ip+2] && in[ref] == in[ip] && in[ref+1] == in[ip+1] {
			// Room for a back reference (3 bytes) and the next run's
			// control byte, the literal run's control byte reused if the
			// run is empty.
			if len(out)+3+1 >= maxOut {
				empty := 0
				if lit == 0 {
					empty = 1
				}
				if len(out)-empty+3+1 >= maxOut {
					return nil
				}
			}
			out[len(out)-lit-1] = byte(lit - 1) // close the literal run
			if lit == 0 {
				out = out[:len(out)-1] // drop the empty run
			}
			l := lzfMatchLen(in, ref, ip)
			l -= 2
			ip++
			if l < 7 {
				out = append(out, byte(off>>8)+byte(l<<5))
			} else {
				out = append(out, byte(off>>8)+7<<5, byte(l-7))
			}
			out = append(out, byte(off))
			lit = 0
			out = append(out, 0) // start a run
			ip += l + 1
			if ip >= n-2 {
				break
			}
			// VERY_FAST: hash the last two positions of the match.
			ip -= 2
			hval = uint32(in[ip])<<8 | uint32(in[ip+1])
			hval = hval<<8 | uint32(in[ip+2])
			h.set(lzfIndex(hval), ip)
			ip++
			hval = hval<<8 | uint32(in[ip+2])
			h.set(lzfIndex(hval), ip)
			ip++
			continue
		}
		if len(out) >= maxOut {
			return nil
		}
		out, lit = lzfAppendLiteral(out, lit, in[ip])
		ip++
	}
	if len(out)+3 > maxOut {
		return nil
	}
	for ip < n {
		out, lit = lzfAppendLiteral(out, lit, in[ip])
		ip++
	}
	out[len(out)-lit-1] = byte(lit - 1)
	if lit == 0 {
		out = out[:len(out)-1]
	}
	if len(out) > maxOut {
		return nil
	}
	return out
}

// lzfAppendLiteral adds c to the open literal run of lit bytes; a run
// that reaches lzfMaxLit is closed (its control byte set) and the next one
// opened. It returns out and the open run's length.
func lzfAppendLiteral(out []byte, lit int, c byte) ([]byte, int) {
	lit++
	out = append(out, c)
	if lit == lzfMaxLit {
		out[len(out)-lit-1] = byte(lit - 1)
		lit = 0
		out = append(out, 0)
	}
	return out, lit
}

// lzfMatchLen is the length of the match of in at ref and at ip, which
// agree on their first three bytes, as Redis measures it: capped at
// lzfMaxRef, except that its 16-byte unrolled step may run up to two bytes
// past the cap near the end of the input (never past the input).
func lzfMatchLen(in []byte, ref, ip int) int {
	l := 2
	maxLen := len(in) - ip - l
	if maxLen > lzfMaxRef {
		maxLen = lzfMaxRef
	}
	if maxLen > 16 {
		for range 16 {
			l++
			if in[ref+l] != in[ip+l] {
				return l
			}
		}
	}
	for {
		l++
		if !(l < maxLen && in[ref+l] == in[ip+l]) {
			return l
		}
	}
}

// lzfLiteralsOnly encodes in as literal runs (for inputs too short to hash).
func lzfLiteralsOnly(in []byte, maxOut int) []byte {
	if len(in) == 0 || maxOut <= 0 {
		return nil
	}
	out := make([]byte, 0, len(in)+len(in)/lzfMaxLit+1)
	for len(in) > 0 {
		k := min(len(in), lzfMaxLit)
		out = append(out, byte(k-1))
		out = append(out, in[:k]...)
		in = in[k:]
	}
	if len(out) > maxOut {
		return nil
	}
	return out
}

// lzfDecompress expands in, which must decode to exactly n bytes.
func lzfDecompress(in []byte, n int) ([]byte, bool) {
	out := make([]byte, 0, n)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < lzfMaxLit {
			k := ctrl + 1
			if i+k > len(in) || len(out)+k > n {
				return nil, false
			}
			out = append(out, in[i:i+k]...)
			i += k
			continue
		}
		l := ctrl >> 5
		if l == 7 {
			if i >= len(in) {
				return nil, false
			}
			l += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, false
		}
		ref := len(out) - (ctrl&0x1f)<<8 - int(in[i]) - 1
		i++
		l += 2
		if ref < 0 || len(out)+l > n {
			return nil, false
		}
		for k := range l { // byte by byte: the source may overlap the copy
			out = append(out, out[ref+k])
		}
	}
	if len(out) != n {
		return nil, false
	}
	return out, true
}
