package store

import (
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The struct library Redis gives scripts (Roberto Ierusalimschy's
// lua-struct, as bundled), written for gopher-lua: binary packing to a
// format string, as Redis's x86-64 build does it. Sizes are that
// build's C types (short 2, int 4, long and size_t 8), the default byte
// order is little-endian, and '!' without a number aligns to 8.
//
// Format letters: '<' '>' byte order ('!' native = little), '!n'
// alignment, ' ' nothing; b/B h/H l/L T i/I (in or In: n bytes, at most
// 32) integers, signed when lower case; f d floats; x a zero byte; cn a
// string of n bytes (c0: all of it when packing, the length unpacked just
// before when unpacking); s a zero-terminated string.

const (
	structMaxIntSize  = 32
	structMaxAlign    = 8
	structNativeOrder = structLittle
)

type structOrder int

const (
	structBig structOrder = iota
	structLittle
)

// structFormat walks a format string, keeping the byte order and the
// alignment its control letters set.
type structFormat struct {
	L     *lua.LState
	fmt   string
	order structOrder
	align int
}

func newStructFormat(L *lua.LState, format string) *structFormat {
	return &structFormat{L: L, fmt: format, order: structNativeOrder, align: 1}
}

// next returns the next letter and the size it stands for (0 for the
// letters that take no room or no alignment, and for 's'); ok is false
// at the end.
func (f *structFormat) next() (opt byte, size int, ok bool) {
	if f.fmt == "" {
		return 0, 0, false
	}
	opt, f.fmt = f.fmt[0], f.fmt[1:]
	switch opt {
	case 'b', 'B', 'x':
		return opt, 1, true
	case 'h', 'H':
		return opt, 2, true
	case 'l', 'L', 'T', 'd':
		return opt, 8, true
	case 'f':
		return opt, 4, true
	case 'c':
		return opt, f.number(1), true
	case 'i', 'I':
		n := f.number(4)
		if n > structMaxIntSize {
			cError(f.L, "integral size "+strconv.Itoa(n)+" is larger than limit of "+strconv.Itoa(structMaxIntSize))
		}
		return opt, n, true
	}
	return opt, 0, true
}

// number reads the decimal count after a letter, def if there is none.
func (f *structFormat) number(def int) int {
	digits := len(f.fmt) - len(strings.TrimLeft(f.fmt, "0123456789"))
	if digits == 0 {
		return def
	}
	n := 0
	for _, c := range f.fmt[:digits] {
		d := int(c - '0')
		if n > math.MaxInt32/10 || n*10 > math.MaxInt32-d {
			cError(f.L, "integral size overflow")
		}
		n = n*10 + d
	}
	f.fmt = f.fmt[digits:]
	return n
}

// padding is how many bytes bring pos to the alignment of an item of
// size bytes: its size, capped by the alignment in force ('c' and empty
// items are never aligned). The arithmetic is lua-struct's, which assumes
// a power of two.
func (f *structFormat) padding(pos int, opt byte, size int) int {
	if size == 0 || opt == 'c' {
		return 0
	}
	size = min(size, f.align)
	return (size - (pos & (size - 1))) & (size - 1)
}

// control applies a letter that is no data item: a byte order, an
// alignment, a space; any other letter is an invalid option.
func (f *structFormat) control(opt byte) {
	switch opt {
	case ' ':
	case '>':
		f.order = structBig
	case '<':
		f.order = structLittle
	case '!':
		a := f.number(structMaxAlign)
		if a <= 0 || a&(a-1) != 0 {
			cError(f.L, "alignment "+strconv.Itoa(a)+" is not a power of 2")
		}
		f.align = a
	default:
		cArgError(f.L, 1, "invalid format option '"+string(opt)+"'")
	}
}

// newStructLib returns the struct table.
func newStructLib(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(structPack))
	t.RawSetString("unpack", L.NewFunction(structUnpack))
	t.RawSetString("size", L.NewFunction(structSize))
	return t
}

func structPack(L *lua.LState) int {
	f := newStructFormat(L, cCheckString(L, 1))
	// lua-struct pushes a nil after the arguments, so a missing value
	// is "got nil" rather than "got no value".
	L.Push(lua.LNil)
	arg := 2
	var b []byte
	for {
		opt, size, ok := f.next()
		if !ok {
			break
		}
		for pad := f.padding(len(b), opt, size); pad > 0; pad-- {
			b = append(b, 0)
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			b = appendStructInt(b, structIntBits(cCheckNumber(L, arg)), size, f.order)
			arg++
		case 'x':
			b = append(b, 0)
		case 'f':
			bits := math.Float32bits(float32(cCheckNumber(L, arg)))
			b = appendStructInt(b, uint64(bits), 4, f.order)
			arg++
		case 'd':
			b = appendStructInt(b, math.Float64bits(cCheckNumber(L, arg)), 8, f.order)
			arg++
		case 'c', 's':
			s := cCheckString(L, arg)
			arg++
			if size == 0 {
				size = len(s)
			}
			if len(s) < size {
				// lua-struct names the argument after the string's.
				cArgError(L, arg, "string too short")
			}
			b = append(b, s[:size]...)
			if opt == 's' {
				b = append(b, 0)
			}
		default:
			f.control(opt)
		}
	}
	L.Push(lua.LString(b))
	return 1
}

// structIntBits is the 64 bits lua-struct packs for a number: a negative
// one through int64, any other through uint64, converted as x86-64's C
// conversions do (truncated; out of range or NaN: the value those
// instructions give, spelled out so every replica agrees).
func structIntBits(n float64) uint64 {
	switch {
	case n < 0:
		return uint64(truncInt64(n))
	case n < 1<<63:
		return uint64(n)
	case n < 1<<64:
		return uint64(truncInt64(n-(1<<63))) ^ 1<<63
	case math.IsNaN(n): // it fails both comparisons, and converts as int64
		return uint64(truncInt64(n))
	default: // 2^64 and past
		return 0
	}
}

// appendStructInt appends size bytes of v in order; bytes past the 8 of a
// 64-bit value are zeros, negative or not, as in lua-struct.
func appendStructInt(b []byte, v uint64, size int, order structOrder) []byte {
	start := len(b)
	for i := 0; i < size; i++ {
		b = append(b, byte(v))
		v >>= 8
	}
	if order == structBig {
		reverseBytes(b[start:])
	}
	return b
}

func reverseBytes(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// structInt reads size bytes in order as lua-struct does: the last 8
// bytes to be shifted in are kept, and sign-extended from the bit its
// (x86-masked) shift names.
func structInt(data string, order structOrder, signed bool, size int) float64 {
	var v uint64
	for i := 0; i < size; i++ {
		j := i
		if order == structLittle {
			j = size - 1 - i
		}
		v = v<<8 | uint64(data[j])
	}
	if !signed {
		return float64(v)
	}
	mask := ^uint64(0) << (uint(size*8-1) & 63)
	if v&mask != 0 {
		v |= mask
	}
	return float64(int64(v))
}

func structUnpack(L *lua.LState) int {
	f := newStructFormat(L, cCheckString(L, 1))
	data := cCheckString(L, 2)
	// The position is a C size_t: a negative one wraps around, passes
	// the check below and fails as past the data.
	pos := uint64(cOptInteger(L, 3, 1))
	if pos == 0 {
		cArgError(L, 3, "offset must be 1 or greater")
	}
	pos--
	ld := uint64(len(data))
	fits := func(size uint64) {
		if size > ld || pos > ld-size {
			cArgError(L, 2, "data string too short")
		}
	}
	n := 0
	var last lua.LValue = lua.LNil
	push := func(v lua.LValue) {
		L.Push(v)
		last = v
		n++
	}
	for {
		opt, isize, ok := f.next()
		if !ok {
			break
		}
		size := uint64(isize)
		pos += uint64(f.padding(int(pos), opt, isize))
		fits(size)
		// Room for this item and the final position, as lua-struct asks.
		if L.GetTop()+2 > luaCStackLimit {
			cError(L, "stack overflow (too many results)")
		}
		switch opt {
		case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
			signed := opt >= 'a'
			push(lua.LNumber(structInt(data[pos:pos+size], f.order, signed, isize)))
		case 'x':
		case 'f':
			bits := uint32(structInt(data[pos:pos+4], f.order, false, 4))
			push(lua.LNumber(math.Float32frombits(bits)))
		case 'd':
			bits := structUint64(data[pos:pos+8], f.order)
			push(lua.LNumber(math.Float64frombits(bits)))
		case 'c':
			if size == 0 {
				prev, ok := luaNumberOf(last)
				if n == 0 || !ok {
					cError(L, "format 'c0' needs a previous size")
				}
				L.Pop(1)
				n--
				size = structSizeOf(prev)
				fits(size)
			}
			push(lua.LString(data[pos : pos+size]))
		case 's':
			end := strings.IndexByte(data[pos:], 0)
			if end < 0 {
				cError(L, "unfinished string in data")
			}
			push(lua.LString(data[pos : pos+uint64(end)]))
			size = uint64(end) + 1
		default:
			f.control(opt)
		}
		pos += size
	}
	L.Push(lua.LNumber(int64(pos + 1)))
	return n + 1
}

// structUint64 reads 8 bytes in order.
func structUint64(data string, order structOrder) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		j := i
		if order == structLittle {
			j = 7 - i
		}
		v = v<<8 | uint64(data[j])
	}
	return v
}

// luaNumberOf is lua_tonumber: a number, or a string that reads as one.
func luaNumberOf(v lua.LValue) (float64, bool) {
	switch v := v.(type) {
	case lua.LNumber:
		return float64(v), true
	case lua.LString:
		return parseLuaNumber(string(v))
	}
	return 0, false
}

// structSizeOf converts a length read from the data to a C size_t as
// x86-64 does (negative ones wrap around).
func structSizeOf(f float64) uint64 { return structIntBits(f) }

func structSize(L *lua.LState) int {
	f := newStructFormat(L, cCheckString(L, 1))
	pos := 0
	for {
		opt, size, ok := f.next()
		if !ok {
			break
		}
		pos += f.padding(pos, opt, size)
		switch {
		case opt == 's':
			cArgError(L, 1, "option 's' has no fixed size")
		case opt == 'c' && size == 0:
			cArgError(L, 1, "option 'c0' has no fixed size")
		}
		// Unknown letters and digits count for nothing here; only other
		// characters are control letters (or errors).
		if !isAlnum(opt) {
			f.control(opt)
		}
		pos += size
	}
	L.Push(lua.LNumber(pos))
	return 1
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
