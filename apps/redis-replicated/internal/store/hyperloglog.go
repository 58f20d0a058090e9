package store

// HyperLogLog: PFADD, PFCOUNT and PFMERGE over Redis's own representation.
// An HLL is a plain string value in Redis 7.0's format, so GET, SET,
// DUMP-like transfers and PFCOUNT agree with Redis byte for byte:
//
//	header (16 bytes): "HYLL", encoding (0 dense, 1 sparse), 3 unused
//	bytes, the cached cardinality (64 bits, little endian; its top bit set
//	means stale)
//	dense: 16384 registers of 6 bits, packed from the least significant
//	bit of each byte up
//	sparse: run-length opcodes over the registers: ZERO 00xxxxxx (1-64
//	zero registers), XZERO 01xxxxxx yyyyyyyy (1-16384 zero registers),
//	VAL 1vvvvvxx (1-4 registers of value 1-32)
//
// An element is hashed with MurmurHash64A (seed 0xadc83b19): the low 14
// bits pick a register, the run of zeros above them (plus one) is its
// candidate value. A sparse HLL turns dense when a value exceeds 32 or it
// would outgrow hll-sparse-max-bytes (Config; 3000 by default). Cardinality
// is Otmar Ertl's estimator over the register histogram, as in Redis 7.0.
//
// PFCOUNT is a read here, and reads never change the store: the
// cardinality it computes for a stale cache reaches the header through
// gomu.pfcache, which the leader proposes after the read (Env.FollowUp),
// as Redis's PFCOUNT writes it and propagates the write. A PFCOUNT on a
// follower leaves the cache stale.

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/gomu-rdma/gomu/internal/resp"
)

const (
	hllP              = 14
	hllQ              = 64 - hllP
	hllRegisters      = 1 << hllP
	hllBits           = 6
	hllRegisterMax    = 1<<hllBits - 1
	hllHdrSize        = 16
	hllDenseSize      = hllHdrSize + (hllRegisters*hllBits+7)/8
	hllDense          = 0
	hllSparse         = 1
	hllSparseValMax   = 32
	hllSparseValLen   = 4
	hllSparseZeroLen  = 64
	hllSparseXZeroLen = 16384
	hllSeed           = 0xadc83b19
	// hllAlphaInf is 0.5/ln(2).
	hllAlphaInf = 0.721347520444481703680
)

const (
	errNotHLL     = "WRONGTYPE Key is not a valid HyperLogLog string value."
	errInvalidHLL = "INVALIDOBJ Corrupted HLL object detected"
)

func init() {
	register(
		&Command{Name: "pfadd", Arity: -2, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "hyperloglog", Summary: "Adds the specified elements to the specified HyperLogLog.", run: cmdPFAdd},
		&Command{Name: "pfcount", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "hyperloglog", Summary: "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", run: cmdPFCount},
		&Command{Name: PFCacheCommand, Arity: -2, Flags: Write | Internal, Group: "hyperloglog",
			Summary: "Cache the cardinality of stale HyperLogLogs (after a PFCOUNT)", run: cmdPFCache},
		&Command{Name: "pfmerge", Arity: -2, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "hyperloglog", Summary: "Merge N different HyperLogLogs into a single one.", run: cmdPFMerge},
	)
}

// murmurHash64A is MurmurHash2's 64-bit variant, reading 8-byte blocks as
// little endian (Redis's endian-neutral form).
func murmurHash64A(key []byte, seed uint64) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := seed ^ uint64(len(key))*m
	for len(key) >= 8 {
		k := binary.LittleEndian.Uint64(key)
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
		key = key[8:]
	}
	if len(key) > 0 {
		for i := len(key) - 1; i >= 0; i-- {
			h ^= uint64(key[i]) << (8 * i)
		}
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// hllPatLen returns the register an element hashes to and the length of
// the run of zeros (plus the one ending it) in the rest of its hash.
func hllPatLen(ele []byte) (int, uint8) {
	hash := murmurHash64A(ele, hllSeed)
	index := int(hash & (hllRegisters - 1))
	hash >>= hllP
	hash |= 1 << hllQ // the run ends by bit Q at the latest
	return index, uint8(bits.TrailingZeros64(hash) + 1)
}

// newHLL returns an empty sparse HLL as Redis creates one: one XZERO opcode
// covering every register, and a valid cached cardinality of 0.
func newHLL() []byte {
	h := make([]byte, hllHdrSize+2)
	copy(h, "HYLL")
	h[4] = hllSparse
	h[hllHdrSize] = 0x40 | byte((hllRegisters-1)>>8)
	h[hllHdrSize+1] = byte((hllRegisters - 1) & 0xff)
	return h
}

// isHLL applies Redis's isHLLObjectOrReply checks: long enough for the
// header, the magic, a known encoding, and the exact size if dense.
func isHLL(h []byte) bool {
	return len(h) >= hllHdrSize && string(h[:4]) == "HYLL" && h[4] <= hllSparse &&
		(h[4] != hllDense || len(h) == hllDenseSize)
}

func hllInvalidateCache(h []byte) { h[15] |= 0x80 }

// hllDenseGet reads register i. The last register's second byte lies past
// the registers (Redis reads the string's NUL terminator there): zero.
func hllDenseGet(regs []byte, i int) uint8 {
	b := i * hllBits / 8
	fb := uint(i * hllBits & 7)
	v := uint(regs[b]) >> fb
	if b+1 < len(regs) {
		v |= uint(regs[b+1]) << (8 - fb)
	}
	return uint8(v & hllRegisterMax)
}

func hllDenseSetReg(regs []byte, i int, val uint8) {
	b := i * hllBits / 8
	fb := uint(i * hllBits & 7)
	regs[b] &^= byte(hllRegisterMax << fb)
	regs[b] |= byte(uint(val) << fb)
	if b+1 < len(regs) {
		regs[b+1] &^= byte(hllRegisterMax >> (8 - fb))
		regs[b+1] |= byte(uint(val) >> (8 - fb))
	}
}

// hllDenseSet raises register i to count; it reports whether it changed.
func hllDenseSet(regs []byte, i int, count uint8) bool {
	if count > hllDenseGet(regs, i) {
		hllDenseSetReg(regs, i, count)
		return true
	}
	return false
}

// Sparse opcodes.
func hllIsZero(op byte) bool  { return op&0xc0 == 0 }
func hllIsXZero(op byte) bool { return op&0xc0 == 0x40 }
func hllIsVal(op byte) bool   { return op&0x80 != 0 }
func hllValValue(op byte) int { return int(op>>2&0x1f) + 1 }
func hllValLen(op byte) int   { return int(op&0x3) + 1 }
func hllValOp(val, n int) byte {
	return byte((val-1)<<2|(n-1)) | 0x80
}

// hllXZeroLen reads the XZERO at h[p]; a second byte past the end reads as
// Redis's NUL terminator.
func hllXZeroLen(h []byte, p int) int {
	lo := 0
	if p+1 < len(h) {
		lo = int(h[p+1])
	}
	return (int(h[p]&0x3f)<<8 | lo) + 1
}

// hllZeroRun appends the shortest opcode for n zero registers.
func hllZeroRun(seq []byte, n int) []byte {
	if n > hllSparseZeroLen {
		return append(seq, 0x40|byte((n-1)>>8), byte((n-1)&0xff))
	}
	return append(seq, byte(n-1))
}

// hllSparseRuns walks the opcodes of a sparse HLL, calling fn(first, n,
// val) for each run of n registers from first holding val. It reports
// false when the runs do not cover exactly the registers.
func hllSparseRuns(h []byte, fn func(first, n, val int)) bool {
	idx := 0
	for p := hllHdrSize; p < len(h); {
		var n, val int
		switch op := h[p]; {
		case hllIsZero(op):
			n = int(op&0x3f) + 1
			p++
		case hllIsXZero(op):
			n = hllXZeroLen(h, p)
			p += 2
		default:
			n, val = hllValLen(op), hllValValue(op)
			p++
		}
		if idx+n > hllRegisters {
			return false
		}
		fn(idx, n, val)
		idx += n
	}
	return idx == hllRegisters
}

// hllSparseToDense converts h to the dense encoding, keeping its header
// (cached cardinality included); false if the sparse data is corrupt.
func hllSparseToDense(h []byte) ([]byte, bool) {
	if h[4] == hllDense {
		return h, true
	}
	d := make([]byte, hllDenseSize)
	copy(d, h[:hllHdrSize])
	d[4] = hllDense
	regs := d[hllHdrSize:]
	ok := hllSparseRuns(h, func(first, n, val int) {
		for i := first; val != 0 && i < first+n; i++ {
			hllDenseSetReg(regs, i, uint8(val))
		}
	})
	return d, ok
}

// hllSparseSet raises register index of the sparse HLL h to count, as
// Redis's hllSparseSet does opcode for opcode (so the bytes match): it
// splits the opcode covering the register, merges equal neighbouring VAL
// opcodes after it, and turns h dense when count does not fit a VAL opcode
// or h would outgrow maxBytes (hll-sparse-max-bytes). It returns the new h and 1 if a
// register changed, 0 if not, -1 if h is corrupt.
func hllSparseSet(h []byte, index int, count uint8, maxBytes int64) ([]byte, int) {
	if count > hllSparseValMax {
		return hllPromote(h, index, count)
	}
	// Step 1: find the opcode covering the register.
	p, end := hllHdrSize, len(h)
	first, prev, span, oplen := 0, -1, 0, 1
	for p < end {
		oplen = 1
		switch op := h[p]; {
		case hllIsZero(op):
			span = int(op&0x3f) + 1
		case hllIsVal(op):
			span = hllValLen(op)
		default:
			span = hllXZeroLen(h, p)
			oplen = 2
		}
		if index <= first+span-1 {
			break
		}
		prev = p
		p += oplen
		first += span
	}
	if span == 0 || p >= end || p+oplen > end {
		return h, -1
	}
	op := h[p]
	// Step 2: the trivial cases update the opcode in place.
	switch {
	case hllIsVal(op) && hllValValue(op) >= int(count):
		return h, 0
	case hllIsVal(op) && hllValLen(op) == 1, hllIsZero(op) && span == 1:
		h[p] = hllValOp(int(count), 1)
	default:
		// Otherwise the opcode splits into up to three (XZERO-VAL-XZERO
		// at worst).
		last := first + span - 1
		seq := make([]byte, 0, 5)
		if hllIsVal(op) {
			cur := hllValValue(op)
			if index != first {
				seq = append(seq, hllValOp(cur, index-first))
			}
			seq = append(seq, hllValOp(int(count), 1))
			if index != last {
				seq = append(seq, hllValOp(cur, last-index))
			}
		} else {
			if index != first {
				seq = hllZeroRun(seq, index-first)
			}
			seq = append(seq, hllValOp(int(count), 1))
			if index != last {
				seq = hllZeroRun(seq, last-index)
			}
		}
		// Step 3: put the new sequence in place of the opcode.
		delta := len(seq) - oplen
		if delta > 0 && int64(len(h)+delta) > maxBytes {
			return hllPromote(h, index, count)
		}
		nh := make([]byte, 0, len(h)+delta)
		nh = append(nh, h[:p]...)
		nh = append(nh, seq...)
		h = append(nh, h[p+oplen:]...)
		end += delta
	}
	// Step 4: merge adjacent VAL opcodes of the same value, scanning up
	// to five opcodes from the one before the change.
	p = hllHdrSize
	if prev >= 0 {
		p = prev
	}
	for scan := 5; p < end && scan > 0; {
		scan--
		switch {
		case hllIsXZero(h[p]):
			p += 2
			continue
		case hllIsZero(h[p]):
			p++
			continue
		}
		if p+1 < end && hllIsVal(h[p+1]) {
			v1, v2 := hllValValue(h[p]), hllValValue(h[p+1])
			if n := hllValLen(h[p]) + hllValLen(h[p+1]); v1 == v2 && n <= hllSparseValLen {
				h[p+1] = hllValOp(v1, n)
				h = append(h[:p], h[p+1:]...)
				end--
				continue // try to merge the merged opcode with the next
			}
		}
		p++
	}
	hllInvalidateCache(h)
	return h, 1
}

// hllPromote turns h dense and then sets the register.
func hllPromote(h []byte, index int, count uint8) ([]byte, int) {
	d, ok := hllSparseToDense(h)
	if !ok {
		return h, -1
	}
	hllDenseSet(d[hllHdrSize:], index, count)
	return d, 1
}

// hllAdd adds ele to h: it returns the new h and 1 if a register changed,
// 0 if not, -1 if h is corrupt. A sparse h turns dense past maxBytes.
func hllAdd(h, ele []byte, maxBytes int64) ([]byte, int) {
	index, count := hllPatLen(ele)
	if h[4] == hllDense {
		if hllDenseSet(h[hllHdrSize:], index, count) {
			return h, 1
		}
		return h, 0
	}
	return hllSparseSet(h, index, count, maxBytes)
}

// hllMerge raises each of merged's registers to h's; false if h is corrupt.
func hllMerge(merged *[hllRegisters]uint8, h []byte) bool {
	if h[4] == hllDense {
		regs := h[hllHdrSize:]
		for i := range merged {
			if v := hllDenseGet(regs, i); v > merged[i] {
				merged[i] = v
			}
		}
		return true
	}
	return hllSparseRuns(h, func(first, n, val int) {
		for i := first; i < first+n; i++ {
			if uint8(val) > merged[i] {
				merged[i] = uint8(val)
			}
		}
	})
}

// hllCountHisto estimates the cardinality from the histogram of register
// values (Ertl's estimator, as Redis 7.0). The explicit float64
// conversions keep Go from fusing a multiply and an add, which C (as Redis
// is built) does not.
func hllCountHisto(histo *[64]int) uint64 {
	m := float64(hllRegisters)
	z := m * hllTau((m-float64(histo[hllQ+1]))/m)
	for j := hllQ; j >= 1; j-- {
		z += float64(histo[j])
		z *= 0.5
	}
	z += float64(m * hllSigma(float64(histo[0])/m))
	return uint64(math.Round(hllAlphaInf * m * m / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zPrime := z
		z += float64(x * y)
		y += y
		if zPrime == z {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zPrime := z
		y *= 0.5
		d := 1 - x
		z -= float64(float64(d*d) * y)
		if zPrime == z {
			return z / 3
		}
	}
}

// hllCount computes h's cardinality from its registers; false if corrupt.
func hllCount(h []byte) (uint64, bool) {
	var histo [64]int
	if h[4] == hllDense {
		regs := h[hllHdrSize:]
		for i := range hllRegisters {
			histo[hllDenseGet(regs, i)]++
		}
	} else {
		if !hllSparseRuns(h, func(_, n, val int) { histo[val] += n }) {
			return 0, false // the runs do not cover exactly the registers
		}
	}
	return hllCountHisto(&histo), true
}

// hllOf looks key up as an HLL: its value (nil if missing) or the error to
// reply.
func (s *Store) hllOf(e *Env, key []byte, write bool) (*value, string) {
	v, wrong := s.lookupKind(e, key, kindString, write)
	switch {
	case wrong:
		return nil, errWrongType
	case v != nil && !isHLL(v.str):
		return nil, errNotHLL
	}
	return v, ""
}

func cmdPFAdd(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, errMsg := s.hllOf(e, args[1], true)
	if errMsg != "" {
		return resp.AppendError(dst, errMsg)
	}
	updated := false
	if v == nil {
		v = &value{kind: kindString, strEnc: strRaw, str: newHLL()}
		s.put(args[1], v)
		updated = true
	}
	v.strEnc = strRaw // Redis unshares the string it modifies: raw
	for _, ele := range args[2:] {
		h, r := hllAdd(v.str, ele, s.cfg.HLLSparseMaxBytes)
		v.str = h
		switch r {
		case 1:
			updated = true
		case -1:
			// Like Redis: what was added stays, the cache untouched.
			return resp.AppendError(dst, errInvalidHLL)
		}
	}
	if !updated {
		return resp.AppendInt(dst, 0)
	}
	hllInvalidateCache(v.str)
	s.notify(e, notifyString, "pfadd", args[1])
	return resp.AppendInt(dst, 1)
}

func cmdPFCount(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) > 2 {
		// The cardinality of the union: merge into plain registers.
		var merged [hllRegisters]uint8
		for _, k := range args[1:] {
			v, errMsg := s.hllOf(e, k, false)
			if errMsg != "" {
				return resp.AppendError(dst, errMsg)
			}
			if v != nil && !hllMerge(&merged, v.str) {
				return resp.AppendError(dst, errInvalidHLL)
			}
		}
		var histo [64]int
		for _, r := range merged {
			histo[r]++
		}
		return resp.AppendInt(dst, int64(hllCountHisto(&histo)))
	}
	v, errMsg := s.hllOf(e, args[1], false)
	switch {
	case errMsg != "":
		return resp.AppendError(dst, errMsg)
	case v == nil:
		return resp.AppendInt(dst, 0)
	}
	if v.str[15]&0x80 == 0 {
		return resp.AppendInt(dst, int64(binary.LittleEndian.Uint64(v.str[8:16])))
	}
	n, ok := hllCount(v.str)
	if !ok {
		return resp.AppendError(dst, errInvalidHLL)
	}
	if e.FollowUp != nil {
		e.FollowUp(s.db, PFCacheCommand, args[1])
	}
	return resp.AppendInt(dst, int64(n))
}

// cmdPFCache is the internal gomu.pfcache key ...: it computes and caches
// the cardinality of each key holding an HLL whose cache is stale, and
// replies with how many it cached. Like Redis's cache write, it publishes
// no event.
func cmdPFCache(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var cached int64
	for _, k := range args[1:] {
		v := s.keys[string(k)] // not lookup: no keymiss event
		if v == nil || v.expired(e.NowMs) || v.kind != kindString || !isHLL(v.str) || v.str[15]&0x80 == 0 {
			continue
		}
		if n, ok := hllCount(v.str); ok {
			binary.LittleEndian.PutUint64(v.str[8:16], n)
			cached++
		}
	}
	return resp.AppendInt(dst, cached)
}

// cmdPFMerge merges every key, the destination included, then writes the
// maximum registers into the destination one by one as Redis does (so a
// sparse destination grows, and may turn dense, the same way), dense from
// the start if any input was.
func cmdPFMerge(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var merged [hllRegisters]uint8
	useDense := false
	for _, k := range args[1:] {
		v, errMsg := s.hllOf(e, k, true)
		if errMsg != "" {
			return resp.AppendError(dst, errMsg)
		}
		if v == nil {
			continue
		}
		if v.str[4] == hllDense {
			useDense = true
		}
		if !hllMerge(&merged, v.str) {
			return resp.AppendError(dst, errInvalidHLL)
		}
	}
	v, _ := s.hllOf(e, args[1], true)
	if v == nil {
		v = &value{kind: kindString, strEnc: strRaw, str: newHLL()}
		s.put(args[1], v)
	}
	v.strEnc = strRaw
	if useDense {
		d, ok := hllSparseToDense(v.str)
		if !ok {
			return resp.AppendError(dst, errInvalidHLL)
		}
		v.str = d
	}
	for i, r := range merged {
		if r == 0 {
			continue
		}
		if v.str[4] == hllDense {
			hllDenseSet(v.str[hllHdrSize:], i, r)
		} else {
			v.str, _ = hllSparseSet(v.str, i, r, s.cfg.HLLSparseMaxBytes)
		}
	}
	hllInvalidateCache(v.str)
	s.notify(e, notifyString, "pfadd", args[1])
	return resp.AppendOK(dst)
}
