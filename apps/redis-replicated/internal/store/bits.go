package store

// The bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
// BITFIELD and BITFIELD_RO. Bit 0 is the most significant bit of the first
// byte; reading past a string's end reads zeros, and writing past it grows
// the string with zero bytes, up to 512 MB (proto-max-bulk-len). The order
// of Redis 7.0's checks is kept (BITCOUNT and BITPOS look the key up before
// parsing their range, so a missing key answers before a syntax error).

import (
	"math"
	"math/bits"

	"github.com/gomu-rdma/gomu/internal/resp"
)

const (
	errBitOffset = "ERR bit offset is not an integer or out of range"
	errBitValue  = "ERR bit is not an integer or out of range"
	errBitfield  = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)

func bitCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "bitmap", Summary: summary, run: run}
}

func init() {
	register(
		bitCmd("setbit", 4, Write|DenyOOM, "Sets or clears the bit at offset in the string value stored at key", cmdSetBit),
		bitCmd("getbit", 3, ReadOnly|Fast, "Returns the bit value at offset in the string value stored at key", cmdGetBit),
		bitCmd("bitcount", -2, ReadOnly, "Count set bits in a string", cmdBitCount),
		bitCmd("bitpos", -3, ReadOnly, "Find first bit set or clear in a string", cmdBitPos),
		&Command{Name: "bitop", Arity: -4, Flags: Write | DenyOOM, FirstKey: 2, LastKey: -1, Step: 1, Group: "bitmap",
			Summary: "Perform bitwise operations between strings", run: cmdBitOp},
		bitCmd("bitfield", -2, Write|DenyOOM, "Perform arbitrary bitfield integer operations on strings",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.bitfield(e, dst, args, false) }),
		bitCmd("bitfield_ro", -2, ReadOnly|Fast, "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.bitfield(e, dst, args, true) }),
	)
}

// bitOffset parses a bit offset as Redis's getBitOffsetFromArgument does:
// an integer from 0 to the last bit of a 512 MB string. With width > 0
// (BITFIELD) "#n" means n*width, a product that wraps as Redis's does.
func bitOffset(b []byte, width int) (uint64, bool) {
	hash := width > 0 && len(b) > 0 && b[0] == '#'
	if hash {
		b = b[1:]
	}
	n, ok := parseRedisInt(b)
	if !ok {
		return 0, false
	}
	if hash {
		n *= int64(width)
	}
	if n < 0 || n>>3 >= maxStringLen {
		return 0, false
	}
	return uint64(n), true
}

// growString returns key's string value v (nil: create it) grown with zero
// bytes to at least n bytes, keeping its TTL.
func (s *Store) growString(key []byte, v *value, n uint64) *value {
	if v == nil {
		v = &value{kind: kindString, strEnc: strRaw, str: make([]byte, n)}
		s.put(key, v)
		return v
	}
	v.strEnc = strRaw
	if uint64(len(v.str)) < n {
		v.str = append(v.str, make([]byte, n-uint64(len(v.str)))...)
	}
	return v
}

func cmdSetBit(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	off, ok := bitOffset(args[2], 0)
	if !ok {
		return resp.AppendError(dst, errBitOffset)
	}
	on, ok := parseRedisInt(args[3])
	if !ok || on&^1 != 0 {
		return resp.AppendError(dst, errBitValue)
	}
	v, ok := s.stringOfWrite(e, args[1])
	if !ok {
		return resp.AppendError(dst, errWrongType)
	}
	grown := v == nil || uint64(len(v.str)) < off>>3+1
	v = s.growString(args[1], v, off>>3+1)
	i, shift := off>>3, 7-off&7
	old := v.str[i] >> shift & 1
	v.str[i] = v.str[i]&^(1<<shift) | byte(on)<<shift
	if grown || old != byte(on) { // as Redis 7.0: an unchanged bit is no event
		s.notify(e, notifyString, "setbit", args[1])
	}
	return resp.AppendInt(dst, int64(old))
}

func cmdGetBit(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	off, ok := bitOffset(args[2], 0)
	if !ok {
		return resp.AppendError(dst, errBitOffset)
	}
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil || off>>3 >= uint64(len(v.str)):
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(v.str[off>>3]>>(7-off&7)&1))
}

// bitRange turns BITCOUNT's and BITPOS's start/end (bit or byte indexes,
// negative from the end, over a string of n bytes) into a byte range
// [start, end] and the masks of the bits of its first and last bytes that
// lie outside a bit range; empty when start > end.
func bitRange(start, end int64, n int64, bit bool) (int64, int64, byte, byte) {
	total := n
	if bit {
		total <<= 3
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	if end >= total {
		end = total - 1
	}
	var firstMask, lastMask byte
	if bit && start <= end {
		firstMask = ^byte(1<<(8-start&7) - 1)
		lastMask = byte(1<<(7-end&7) - 1)
		start >>= 3
		end >>= 3
	}
	return start, end, firstMask, lastMask
}

// bitUnit parses BITCOUNT's and BITPOS's BIT|BYTE argument.
func bitUnit(b []byte) (bit, ok bool) {
	switch {
	case eqFold(b, "bit"):
		return true, true
	case eqFold(b, "byte"):
		return false, true
	}
	return false, false
}

func cmdBitCount(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendInt(dst, 0)
	}
	p := v.str
	var start, end int64
	var firstMask, lastMask byte
	switch len(args) {
	case 2:
		start, end = 0, int64(len(p))-1
	case 4, 5:
		var ok1, ok2 bool
		start, ok1 = parseRedisInt(args[2])
		end, ok2 = parseRedisInt(args[3])
		if !ok1 || !ok2 {
			return resp.AppendError(dst, errNotInt)
		}
		if start < 0 && end < 0 && start > end {
			return resp.AppendInt(dst, 0)
		}
		isBit := false
		if len(args) == 5 {
			if isBit, ok = bitUnit(args[4]); !ok {
				return resp.AppendError(dst, errSyntax)
			}
		}
		start, end, firstMask, lastMask = bitRange(start, end, int64(len(p)), isBit)
	default:
		return resp.AppendError(dst, errSyntax)
	}
	if start > end {
		return resp.AppendInt(dst, 0)
	}
	n := popcount(p[start : end+1])
	n -= bits.OnesCount8(p[start]&firstMask) + bits.OnesCount8(p[end]&lastMask)
	return resp.AppendInt(dst, int64(n))
}

func popcount(b []byte) int {
	n := 0
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return n
}

// firstBit is Redis's redisBitpos: the position of the first bit equal to
// bit in b; when there is none, -1 looking for a 1 and len(b)*8 looking
// for a 0 (as if b were followed by zeros).
func firstBit(b []byte, bit int64) int64 {
	skip := byte(0)
	if bit == 0 {
		skip = 0xff
	}
	for i, c := range b {
		if c != skip {
			if bit == 1 {
				return int64(i)*8 + int64(bits.LeadingZeros8(c))
			}
			return int64(i)*8 + int64(bits.LeadingZeros8(^c))
		}
	}
	if bit == 1 {
		return -1
	}
	return int64(len(b)) * 8
}

// cmdBitPos follows Redis 7.0's search in three parts (a masked first
// byte, the whole bytes, a masked last byte) and its bookkeeping, so that
// its answers agree at every boundary.
func cmdBitPos(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	bit, ok := parseRedisInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if bit != 0 && bit != 1 {
		return resp.AppendError(dst, "ERR The bit argument must be 1 or 0.")
	}
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		// A missing key is an endless run of zeros.
		if bit == 1 {
			return resp.AppendInt(dst, -1)
		}
		return resp.AppendInt(dst, 0)
	}
	p := v.str
	n := int64(len(p))
	var start, end int64
	var firstMask, lastMask byte
	endGiven := false
	switch len(args) {
	case 3:
		start, end = 0, n-1
	case 4, 5, 6:
		if start, ok = parseRedisInt(args[3]); !ok {
			return resp.AppendError(dst, errNotInt)
		}
		isBit := false
		if len(args) == 6 {
			if isBit, ok = bitUnit(args[5]); !ok {
				return resp.AppendError(dst, errSyntax)
			}
		}
		if len(args) >= 5 {
			if end, ok = parseRedisInt(args[4]); !ok {
				return resp.AppendError(dst, errNotInt)
			}
			endGiven = true
		} else if isBit {
			end = n<<3 + 7
		} else {
			end = n - 1
		}
		start, end, firstMask, lastMask = bitRange(start, end, n, isBit)
	default:
		return resp.AppendError(dst, errSyntax)
	}
	if start > end {
		return resp.AppendInt(dst, -1)
	}
	nbytes := end - start + 1
	pos := func() int64 {
		if firstMask != 0 {
			c := p[start]
			if bit == 1 {
				c &^= firstMask
			} else {
				c |= firstMask
			}
			if lastMask != 0 && nbytes == 1 {
				if bit == 1 {
					c &^= lastMask
				} else {
					c |= lastMask
				}
			}
			pos := firstBit([]byte{c}, bit)
			if nbytes == 1 || (pos != -1 && pos != 8) {
				return pos
			}
			start++
			nbytes--
		}
		whole := nbytes
		if lastMask != 0 {
			whole--
		}
		if whole > 0 {
			pos := firstBit(p[start:start+whole], bit)
			if nbytes == whole || (pos != -1 && pos != whole<<3) {
				return pos
			}
			start += whole
			nbytes -= whole
		}
		c := p[end]
		if bit == 1 {
			c &^= lastMask
		} else {
			c |= lastMask
		}
		return firstBit([]byte{c}, bit)
	}()
	// Looking for a 0 in an explicit range, running off its end means
	// there is none; without an end the string counts as zero-padded.
	if endGiven && bit == 0 && pos == nbytes<<3 {
		return resp.AppendInt(dst, -1)
	}
	if pos != -1 {
		pos += start << 3
	}
	return resp.AppendInt(dst, pos)
}

func cmdBitOp(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	op := cString(args[1]) // Redis compares it with strcasecmp
	switch {
	case eqFold(op, "and"), eqFold(op, "or"), eqFold(op, "xor"):
	case eqFold(op, "not"):
		if len(args) != 4 {
			return resp.AppendError(dst, "ERR BITOP NOT must be called with a single source key.")
		}
	default:
		return resp.AppendError(dst, errSyntax)
	}
	srcs := make([][]byte, len(args)-3)
	maxLen := 0
	for i, k := range args[3:] {
		v, ok := s.stringOfWrite(e, k)
		if !ok {
			return resp.AppendError(dst, errWrongType)
		}
		if v != nil {
			srcs[i] = v.str
			maxLen = max(maxLen, len(v.str))
		}
	}
	if maxLen == 0 {
		if s.remove(args[2]) {
			s.notify(e, notifyGeneric, "del", args[2])
		}
		return resp.AppendInt(dst, 0)
	}
	res := make([]byte, maxLen)
	copy(res, srcs[0])
	switch {
	case eqFold(op, "not"):
		for i := range res {
			res[i] = ^res[i]
		}
	case eqFold(op, "and"):
		for _, src := range srcs[1:] {
			for i := range res {
				if i < len(src) {
					res[i] &= src[i]
				} else {
					res[i] = 0
				}
			}
		}
	case eqFold(op, "or"):
		for _, src := range srcs[1:] {
			for i := range src {
				res[i] |= src[i]
			}
		}
	default:
		for _, src := range srcs[1:] {
			for i := range src {
				res[i] ^= src[i]
			}
		}
	}
	s.put(args[2], &value{kind: kindString, strEnc: strRaw, str: res})
	s.notify(e, notifyString, "set", args[2])
	return resp.AppendInt(dst, int64(maxLen))
}

// BITFIELD's overflow behaviours.
const (
	overflowWrap = iota
	overflowSat
	overflowFail
)

// bitfieldOp is one GET, SET or INCRBY of a BITFIELD.
type bitfieldOp struct {
	op       byte // 'g', 's' or 'i'
	signed   bool
	width    uint
	offset   uint64
	arg      int64
	overflow int
}

// bitfieldType parses a type such as i16 or u8 (u64 is refused: its
// values do not fit Redis's integer replies). Redis reads the width as a
// C string, up to a NUL.
func bitfieldType(b []byte) (signed bool, width uint, ok bool) {
	if len(b) == 0 || (b[0] != 'i' && b[0] != 'u') {
		return false, 0, false
	}
	signed = b[0] == 'i'
	n, ok := parseRedisInt(cString(b[1:]))
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, false
	}
	return signed, uint(n), true
}

// bitfield is BITFIELD and, when readOnly, BITFIELD_RO: every operation is
// parsed (and any error reported) before the key is touched.
func (s *Store) bitfield(e *Env, dst []byte, args [][]byte, readOnly bool) []byte {
	var ops []bitfieldOp
	overflow := overflowWrap
	writes := false
	var highest uint64
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		sub := cString(args[j])
		var op byte
		switch {
		case eqFold(sub, "get") && left >= 2:
			op = 'g'
		case eqFold(sub, "set") && left >= 3:
			op = 's'
		case eqFold(sub, "incrby") && left >= 3:
			op = 'i'
		case eqFold(sub, "overflow") && left >= 1:
			j++
			switch t := cString(args[j]); {
			case eqFold(t, "wrap"):
				overflow = overflowWrap
			case eqFold(t, "sat"):
				overflow = overflowSat
			case eqFold(t, "fail"):
				overflow = overflowFail
			default:
				return resp.AppendError(dst, "ERR Invalid OVERFLOW type specified")
			}
			continue
		default:
			return resp.AppendError(dst, errSyntax)
		}
		signed, width, ok := bitfieldType(args[j+1])
		if !ok {
			return resp.AppendError(dst, errBitfield)
		}
		off, ok := bitOffset(args[j+2], int(width))
		if !ok {
			return resp.AppendError(dst, errBitOffset)
		}
		o := bitfieldOp{op: op, signed: signed, width: width, offset: off, overflow: overflow}
		if op != 'g' {
			writes = true
			highest = max(highest, off+uint64(width)-1)
			if o.arg, ok = parseRedisInt(args[j+3]); !ok {
				return resp.AppendError(dst, errNotInt)
			}
			j++
		}
		ops = append(ops, o)
		j += 2
	}
	var v *value
	if !writes {
		var ok bool
		if readOnly {
			v, ok = s.stringOf(e, args[1])
		} else {
			v, ok = s.stringOfWrite(e, args[1])
		}
		if !ok {
			return resp.AppendError(dst, errWrongType)
		}
	} else {
		if readOnly {
			return resp.AppendError(dst, "ERR BITFIELD_RO only supports the GET subcommand")
		}
		var ok bool
		if v, ok = s.stringOfWrite(e, args[1]); !ok {
			return resp.AppendError(dst, errWrongType)
		}
		v = s.growString(args[1], v, highest>>3+1)
	}
	dst = resp.AppendArrayLen(dst, len(ops))
	changes := false
	for _, o := range ops {
		var str []byte
		if v != nil {
			str = v.str
		}
		old := getBits(str, o.offset, o.width)
		if o.op == 'g' {
			if o.signed {
				dst = resp.AppendInt(dst, signExtend(old, o.width))
			} else {
				dst = resp.AppendInt(dst, int64(old))
			}
			continue
		}
		var next, reply uint64
		var over bool
		if o.signed {
			oldv := signExtend(old, o.width)
			var n int64
			if o.op == 'i' {
				n, over = signedOverflow(oldv, o.arg, o.width, o.overflow)
				reply = uint64(n)
			} else {
				n, over = signedOverflow(o.arg, 0, o.width, o.overflow)
				reply = uint64(oldv)
			}
			next = uint64(n)
		} else {
			if o.op == 'i' {
				next, over = unsignedOverflow(old, o.arg, o.width, o.overflow)
				reply = next
			} else {
				next, over = unsignedOverflow(uint64(o.arg), 0, o.width, o.overflow)
				reply = old
			}
		}
		if over && o.overflow == overflowFail {
			dst = resp.AppendNull(dst)
			continue
		}
		dst = resp.AppendInt(dst, int64(reply))
		setBits(v.str, o.offset, o.width, next)
		changes = true
	}
	if changes {
		s.notify(e, notifyString, "setbit", args[1])
	}
	s.endNews(e)
	return dst
}

// getBits reads width bits at offset, most significant first, reading
// zeros past the end of b.
func getBits(b []byte, offset uint64, width uint) uint64 {
	var x uint64
	for range width {
		x <<= 1
		if i := offset >> 3; i < uint64(len(b)) {
			x |= uint64(b[i]>>(7-offset&7)) & 1
		}
		offset++
	}
	return x
}

// setBits writes the low width bits of x at offset (b is long enough).
func setBits(b []byte, offset uint64, width uint, x uint64) {
	for j := range width {
		bit := byte(x>>(width-1-j)) & 1
		i, shift := offset>>3, 7-offset&7
		b[i] = b[i]&^(1<<shift) | bit<<shift
		offset++
	}
}

// signExtend reads the low width bits of x as a two's complement integer.
func signExtend(x uint64, width uint) int64 {
	if width < 64 && x&(1<<(width-1)) != 0 {
		x |= math.MaxUint64 << width
	}
	return int64(x)
}

// unsignedOverflow adds incr to value for an unsigned field of width bits,
// as Redis's checkUnsignedBitfieldOverflow decides: the result to store
// (wrapped, or saturated, by the behaviour ov) and whether it overflowed.
func unsignedOverflow(value uint64, incr int64, width uint, ov int) (uint64, bool) {
	maxv := uint64(1)<<width - 1
	maxIncr := int64(maxv - value)
	minIncr := -int64(value)
	wrap := func() uint64 { return (value + uint64(incr)) & maxv }
	switch {
	case value > maxv || (incr > 0 && incr > maxIncr):
		if ov == overflowSat {
			return maxv, true
		}
		return wrap(), true
	case incr < 0 && incr < minIncr:
		if ov == overflowSat {
			return 0, true
		}
		return wrap(), true
	}
	return value + uint64(incr), false
}

// signedOverflow is unsignedOverflow for a signed field, as Redis's
// checkSignedBitfieldOverflow decides.
func signedOverflow(value, incr int64, width uint, ov int) (int64, bool) {
	maxv := int64(math.MaxInt64)
	if width < 64 {
		maxv = int64(1)<<(width-1) - 1
	}
	minv := -maxv - 1
	maxIncr := int64(uint64(maxv) - uint64(value))
	minIncr := minv - value
	wrap := func() int64 {
		c := uint64(value) + uint64(incr)
		if width < 64 {
			mask := uint64(math.MaxUint64) << width
			if c&(1<<(width-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		return int64(c)
	}
	switch {
	case value > maxv || (width != 64 && incr > maxIncr) || (value >= 0 && incr > 0 && incr > maxIncr):
		if ov == overflowSat {
			return maxv, true
		}
		return wrap(), true
	case value < minv || (width != 64 && incr < minIncr) || (value < 0 && incr < 0 && incr < minIncr):
		if ov == overflowSat {
			return minv, true
		}
		return wrap(), true
	}
	return value + incr, false
}
