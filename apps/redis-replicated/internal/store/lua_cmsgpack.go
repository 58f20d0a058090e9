package store

import (
	"encoding/binary"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// The cmsgpack library Redis gives scripts (its bundled lua-cmsgpack
// 0.4.0), written for gopher-lua: MessagePack as that library writes and
// reads it, quirks included, since scripts compare and store its bytes.
//
// Writing: a number that is an exact int64 takes the smallest integer
// form, any other number float32 when that loses nothing, else float64;
// a string the smallest str form (there are no bin forms); a table an
// array when its keys are exactly 1..n, else a map; a table nested 16
// deep, and anything that is not a string, number, boolean or table,
// nil. Reading accepts what it writes plus the other int and float forms;
// bin, ext and fixed-ext forms are "Bad data format".

// msgpackMaxNesting is how deep tables are written: a table at this
// depth is written as nil, so a table that contains itself still ends.
const msgpackMaxNesting = 16

// newCMsgpack returns the cmsgpack table. Its work is charged to budget,
// a value an instruction: no VM instruction counts it, and a table that
// holds itself many times over is packed to the nesting limit, which may
// be more work than any budget.
func newCMsgpack(L *lua.LState, budget *budget) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(func(L *lua.LState) int {
		return msgpackPack(L, budget)
	}))
	t.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int {
		return msgpackUnpack(L, budget, 0, 0)
	}))
	// unpack_one and unpack_limit drop their other arguments first;
	// unpack keeps them (they count against the stack's limit).
	t.RawSetString("unpack_one", L.NewFunction(func(L *lua.LState) int {
		offset := cOptInteger(L, 2, 0)
		L.SetTop(min(L.GetTop(), 1))
		return msgpackUnpack(L, budget, 1, offset)
	}))
	t.RawSetString("unpack_limit", L.NewFunction(func(L *lua.LState) int {
		limit := cCheckInteger(L, 2)
		offset := cOptInteger(L, 3, 0)
		L.SetTop(1)
		return msgpackUnpack(L, budget, limit, offset)
	}))
	t.RawSetString("_NAME", lua.LString("cmsgpack"))
	t.RawSetString("_VERSION", lua.LString("lua-cmsgpack 0.4.0"))
	t.RawSetString("_COPYRIGHT", lua.LString("Copyright (C) 2012, Salvatore Sanfilippo"))
	t.RawSetString("_DESCRIPTION", lua.LString("MessagePack C implementation for Lua"))
	return t
}

// msgpackPack writes every argument, one after another, into one string.
func msgpackPack(L *lua.LState, budget *budget) int {
	n := L.GetTop()
	if n == 0 {
		cArgError(L, 0, "MessagePack pack needs input.")
	}
	// The C library first makes room for a copy of every argument on
	// its stack, so more than half the stack's limit is refused.
	if 2*n > luaCStackLimit {
		cArgError(L, 0, "Too many arguments for MessagePack pack.")
	}
	enc := msgpackEncoder{L: L, budget: budget}
	var b []byte
	for i := 1; i <= n; i++ {
		b = enc.append(b, L.Get(i), 0)
	}
	L.Push(lua.LString(b))
	return 1
}

type msgpackEncoder struct {
	L      *lua.LState
	budget *budget
}

// append appends v's encoding; level is how many tables enclose it.
func (e msgpackEncoder) append(b []byte, v lua.LValue, level int) []byte {
	e.budget.charge(e.L, 1)
	if len(b) > maxScriptString {
		cError(e.L, "resulting string too large")
	}
	switch v := v.(type) {
	case lua.LString:
		return appendMsgpackStr(b, string(v))
	case lua.LBool:
		if v {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case lua.LNumber:
		return appendMsgpackNumber(b, float64(v))
	case *lua.LTable:
		if level == msgpackMaxNesting {
			return append(b, 0xc0)
		}
		if n, ok := msgpackArrayLen(v); ok {
			b = appendMsgpackHeader(b, 0x90, 0xdc, 0xdd, n)
			for i := 1; i <= n; i++ {
				b = e.append(b, v.RawGetInt(i), level+1)
			}
			return b
		}
		n := 0
		for k, _ := v.Next(lua.LNil); k != lua.LNil; k, _ = v.Next(k) {
			n++
		}
		b = appendMsgpackHeader(b, 0x80, 0xde, 0xdf, n)
		for k, val := v.Next(lua.LNil); k != lua.LNil; k, val = v.Next(k) {
			b = e.append(b, k, level+1)
			b = e.append(b, val, level+1)
		}
		return b
	default:
		return append(b, 0xc0)
	}
}

// msgpackArrayLen reports whether t's keys are exactly the integers 1..n
// (each within a C int), and n.
func msgpackArrayLen(t *lua.LTable) (int, bool) {
	count, highest := 0, 0.0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n, ok := k.(lua.LNumber)
		f := float64(n)
		if !ok || f <= 0 || f > math.MaxInt32 || f != math.Trunc(f) {
			return 0, false
		}
		highest = max(highest, f)
		count++
	}
	return count, highest == float64(count)
}

// appendMsgpackHeader appends an array's or map's header: the fix form
// (up to 15 entries), else the 16-bit, else the 32-bit one.
func appendMsgpackHeader(b []byte, fix, form16, form32 byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, form16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, form32), uint32(n))
	}
}

func appendMsgpackStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendMsgpackNumber writes an integral number (within int64) as an
// integer, else as a float32 when that is exact (infinities included),
// else as a float64.
func appendMsgpackNumber(b []byte, f float64) []byte {
	if f >= -(1<<63) && f < 1<<63 && f == math.Trunc(f) {
		return appendMsgpackInt(b, int64(f))
	}
	if f32 := float32(f); float64(f32) == f {
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f32))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// appendMsgpackInt writes n in the smallest form: unsigned ones for n >= 0.
func appendMsgpackInt(b []byte, n int64) []byte {
	if n >= 0 {
		switch {
		case n <= 127:
			return append(b, byte(n))
		case n <= math.MaxUint8:
			return append(b, 0xcc, byte(n))
		case n <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
		case n <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
		default:
			return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(n))
		}
	}
	switch {
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
	}
}

// msgpackUnpack decodes the string argument from offset: every value
// when limit and offset are both 0 (unpack), else up to limit values,
// returned after the offset to resume from (-1: the end was reached).
func msgpackUnpack(L *lua.LState, budget *budget, limit, offset int64) int {
	s := cCheckString(L, 1)
	args := L.GetTop()
	switch {
	case offset < 0 || limit < 0:
		// The C library prints the input's length where it says limit.
		cError(L, "Invalid request to unpack with offset of "+strconv.Itoa(int(int32(offset)))+
			" and limit of "+strconv.Itoa(int(int32(len(s))))+".")
	case offset > int64(len(s)):
		cError(L, "Start offset "+strconv.Itoa(int(int32(offset)))+" greater than input length "+
			strconv.Itoa(int(int32(len(s))))+".")
	}
	all := limit == 0 && offset == 0
	if all {
		limit = math.MaxInt32
	}
	d := msgpackDecoder{L: L, budget: budget, s: s, i: int(offset), slots: args}
	count := 0
	for ; d.i < len(s) && int64(count) < limit; count++ {
		v := d.value()
		switch d.err {
		case errMsgpackShort:
			cError(L, "Missing bytes in input.")
		case errMsgpackFormat:
			cError(L, "Bad data format in input.")
		}
		L.Push(v)
		d.slots++
	}
	if all {
		return count // the top count values: any extra argument stays below
	}
	next := int64(d.i)
	if d.i == len(s) {
		next = -1
	}
	L.Insert(lua.LNumber(next), 2)
	return count + 1
}

type msgpackError int

const (
	errMsgpackNone msgpackError = iota
	errMsgpackShort
	errMsgpackFormat
)

// msgpackDecoder reads values from s at i. slots counts the values the C
// library would hold on its Lua stack at this point, to fail where it
// fails: a stack past luaCStackLimit.
type msgpackDecoder struct {
	L      *lua.LState
	budget *budget
	s      string
	i      int
	slots  int
	err    msgpackError
}

// need reports whether n more bytes are there, failing the decode if not.
func (d *msgpackDecoder) need(n int) bool {
	if len(d.s)-d.i < n {
		d.err = errMsgpackShort
		return false
	}
	return true
}

// uint reads the n-byte big-endian unsigned integer after the type byte.
func (d *msgpackDecoder) uint(n int) (uint64, bool) {
	if !d.need(1 + n) {
		return 0, false
	}
	var u uint64
	for j := d.i + 1; j <= d.i+n; j++ {
		u = u<<8 | uint64(d.s[j])
	}
	d.i += 1 + n
	return u, true
}

// checkStack fails as luaL_checkstack does when one more value would not
// fit the C function's stack.
func (d *msgpackDecoder) checkStack(where string) {
	if d.slots+1 > luaCStackLimit {
		cError(d.L, "stack overflow ("+where+")")
	}
}

// value decodes one value; on failure d.err is set and the value is nil.
func (d *msgpackDecoder) value() lua.LValue {
	if !d.need(1) {
		return lua.LNil
	}
	d.checkStack("too many return values at once; use unpack_one or unpack_limit instead.")
	d.budget.charge(d.L, 1)
	c := d.s[d.i]
	switch {
	case c <= 0x7f:
		d.i++
		return lua.LNumber(c)
	case c >= 0xe0:
		d.i++
		return lua.LNumber(int8(c))
	case c&0xe0 == 0xa0:
		return d.str(int(c&0x1f), 1)
	case c&0xf0 == 0x90:
		d.i++
		return d.array(int(c & 0x0f))
	case c&0xf0 == 0x80:
		d.i++
		return d.hash(int(c & 0x0f))
	}
	switch c {
	case 0xc0:
		d.i++
		return lua.LNil
	case 0xc2, 0xc3:
		d.i++
		return lua.LBool(c == 0xc3)
	case 0xcc, 0xcd, 0xce, 0xcf:
		// Unsigned 64-bit values past int64 come out negative, as the
		// C library pushes them as a signed lua_Integer.
		if u, ok := d.uint(1 << (c - 0xcc)); ok {
			return lua.LNumber(int64(u))
		}
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		if u, ok := d.uint(size); ok {
			shift := 64 - 8*size
			return lua.LNumber(int64(u<<shift) >> shift)
		}
	case 0xca:
		if u, ok := d.uint(4); ok {
			return lua.LNumber(math.Float32frombits(uint32(u)))
		}
	case 0xcb:
		if u, ok := d.uint(8); ok {
			return lua.LNumber(math.Float64frombits(u))
		}
	case 0xd9, 0xda, 0xdb:
		size := 1 << (c - 0xd9)
		if n, ok := d.uint(size); ok {
			d.i -= 1 + size
			return d.str(int(n), 1+size)
		}
	case 0xdc, 0xdd:
		if n, ok := d.uint(2 << (c - 0xdc)); ok {
			return d.array(int(n))
		}
	case 0xde, 0xdf:
		if n, ok := d.uint(2 << (c - 0xde)); ok {
			return d.hash(int(n))
		}
	default:
		d.err = errMsgpackFormat
	}
	return lua.LNil
}

// str reads a string of n bytes after a header of hdr bytes.
func (d *msgpackDecoder) str(n, hdr int) lua.LValue {
	if !d.need(hdr + n) {
		return lua.LNil
	}
	v := lua.LString(d.s[d.i+hdr : d.i+hdr+n])
	d.i += hdr + n
	return v
}

// array reads n values into a table at 1..n.
func (d *msgpackDecoder) array(n int) lua.LValue {
	t := d.L.NewTable()
	d.slots++ // the table
	d.checkStack("in function mp_decode_to_lua_array")
	for i := 1; i <= n; i++ {
		d.slots++ // the index
		v := d.value()
		if d.err != errMsgpackNone {
			return lua.LNil
		}
		d.setField(t, lua.LNumber(i), v)
		d.slots--
	}
	d.slots--
	return t
}

// hash reads n key and value pairs into a table.
func (d *msgpackDecoder) hash(n int) lua.LValue {
	t := d.L.NewTable()
	d.slots++
	for ; n > 0; n-- {
		k := d.value()
		if d.err != errMsgpackNone {
			return lua.LNil
		}
		d.slots++
		v := d.value()
		if d.err != errMsgpackNone {
			return lua.LNil
		}
		d.setField(t, k, v)
		d.slots--
	}
	d.slots--
	return t
}

// setField is lua_settable on a fresh table: a nil or NaN key is an error
// (raised with no position, from inside the library); a nil value sets
// nothing.
func (d *msgpackDecoder) setField(t *lua.LTable, k, v lua.LValue) {
	if k == lua.LNil {
		d.L.Error(lua.LString("table index is nil"), 0)
	}
	if n, ok := k.(lua.LNumber); ok && math.IsNaN(float64(n)) {
		d.L.Error(lua.LString("table index is NaN"), 0)
	}
	if v != lua.LNil {
		t.RawSet(k, v)
	}
}

// charge spends n instructions of the budget on work done in Go, failing
// the run as a spent (or killed) budget does: now, and at the script's next
// instruction should it catch this error.
func (b *budget) charge(L *lua.LState, n int64) {
	b.left -= n - 1
	if b.Done() != nil {
		L.RaiseError("%v", b.reason)
	}
}
