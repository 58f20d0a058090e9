package store

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// The cjson and bit libraries Redis gives scripts, written here for
// gopher-lua, which has neither. cjson's object keys come out in the
// table's insertion order (gopher-lua's iteration order, deterministic),
// not in the order of Redis's hash part.

// jsonConfig is cjson's settings. Redis keeps them in its one Lua state
// until a script changes them back; here they last one run (reset by
// begin), so no run depends on what an earlier one, on some pooled state,
// left.
type jsonConfig struct {
	encodeDepth, decodeDepth     int
	encodeInvalid, decodeInvalid bool
}

var defaultJSONConfig = jsonConfig{encodeDepth: 1000, decodeDepth: 1000}

// newCJSON returns the cjson table: encode, decode, null and the settings.
func newCJSON(L *lua.LState, cfg *jsonConfig) *lua.LTable {
	t := L.NewTable()
	null := L.NewUserData()
	t.RawSetString("null", null)
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			cArgError(L, 1, "expected 1 argument")
		}
		enc := jsonEncoder{null: null, cfg: cfg}
		if msg := enc.encode(L.Get(1), 0); msg != "" {
			L.RaiseError("Cannot serialise%s", msg)
		}
		L.Push(lua.LString(enc.b.String()))
		return 1
	}))
	depthSetting := func(field *int) lua.LGFunction {
		return func(L *lua.LState) int {
			if L.GetTop() > 0 {
				n := cCheckInteger(L, 1)
				if n < 1 || n > 2147483647 {
					cArgError(L, 1, "expected integer between 1 and 2147483647")
				}
				*field = int(n)
			}
			L.Push(lua.LNumber(*field))
			return 1
		}
	}
	boolSetting := func(field *bool) lua.LGFunction {
		return func(L *lua.LState) int {
			if L.GetTop() > 0 {
				v := L.Get(1)
				*field = v == lua.LTrue || v == lua.LString("on") || v == lua.LString("allow")
			}
			L.Push(lua.LBool(*field))
			return 1
		}
	}
	t.RawSetString("encode_max_depth", L.NewFunction(depthSetting(&cfg.encodeDepth)))
	t.RawSetString("decode_max_depth", L.NewFunction(depthSetting(&cfg.decodeDepth)))
	t.RawSetString("encode_invalid_numbers", L.NewFunction(boolSetting(&cfg.encodeInvalid)))
	t.RawSetString("decode_invalid_numbers", L.NewFunction(boolSetting(&cfg.decodeInvalid)))
	// Settings this encoder has fixed (14 digits, sparse arrays as
	// table says, no buffer to keep): accepted, answered as given.
	for _, name := range []string{"encode_keep_buffer", "encode_sparse_array", "encode_number_precision"} {
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int { return L.GetTop() }))
	}
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			cArgError(L, 1, "expected 1 argument")
		}
		d := jsonDecoder{L: L, s: cCheckString(L, 1), null: null, maxDepth: cfg.decodeDepth}
		v := d.value(0)
		d.space()
		if d.err == "" && d.i < len(d.s) {
			d.fail("the end", "trailing garbage")
		}
		if d.err != "" {
			L.RaiseError("%s", d.err)
		}
		L.Push(v)
		return 1
	}))
	return t
}

// jsonEncoder writes Lua values as JSON.
type jsonEncoder struct {
	b    strings.Builder
	null *lua.LUserData
	cfg  *jsonConfig
}

// encode writes v at depth (the tables around it); it returns why it
// cannot ("" when it can).
func (e *jsonEncoder) encode(v lua.LValue, depth int) string {
	b := &e.b
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		b.WriteString(strconv.FormatBool(bool(x)))
	case lua.LNumber:
		f := float64(x)
		if (math.IsInf(f, 0) || math.IsNaN(f)) && !e.cfg.encodeInvalid {
			return " number: must not be NaN or Inf"
		}
		b.WriteString(formatLuaNumber(f))
	case lua.LString:
		jsonString(b, string(x))
	case *lua.LUserData:
		if x != e.null {
			return " userdata: type not supported"
		}
		b.WriteString("null")
	case *lua.LTable:
		if depth+1 > e.cfg.encodeDepth {
			return ", excessive nesting (" + strconv.Itoa(depth+1) + ")"
		}
		return e.table(x, depth+1)
	default:
		return " " + v.Type().String() + ": type not supported"
	}
	return ""
}

// table writes a table as an array when its keys are 1..n (holes
// allowed unless the array is excessively sparse, as cjson decides), else
// as an object.
func (e *jsonEncoder) table(t *lua.LTable, depth int) string {
	b := &e.b
	maxIdx, count, isArray := 0, 0, true
	t.ForEach(func(k, _ lua.LValue) {
		n, ok := k.(lua.LNumber)
		if !ok || float64(n) != math.Floor(float64(n)) || n < 1 {
			isArray = false
			return
		}
		count++
		maxIdx = max(maxIdx, int(n))
	})
	if isArray && count > 0 {
		if maxIdx > 10 && maxIdx > 2*count {
			return " table: excessively sparse array"
		}
		b.WriteByte('[')
		for i := 1; i <= maxIdx; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			if msg := e.encode(t.RawGetInt(i), depth); msg != "" {
				return msg
			}
		}
		b.WriteByte(']')
		return ""
	}
	b.WriteByte('{')
	first, msg := true, ""
	t.ForEach(func(k, v lua.LValue) {
		if msg != "" {
			return
		}
		var key string
		switch kk := k.(type) {
		case lua.LString:
			key = string(kk)
		case lua.LNumber:
			key = formatLuaNumber(float64(kk))
		default:
			msg = " table: table key must be a number or string"
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		jsonString(b, key)
		b.WriteByte(':')
		msg = e.encode(v, depth)
	})
	b.WriteByte('}')
	return msg
}

func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			b.WriteString(`\/`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// jsonDecoder parses JSON into Lua values, with cjson's error wording.
type jsonDecoder struct {
	L        *lua.LState
	s        string
	i        int
	null     *lua.LUserData
	maxDepth int
	err      string
}

func (d *jsonDecoder) fail(expected, found string) {
	if d.err == "" {
		d.err = "Expected " + expected + " but found " + found + " at character " + strconv.Itoa(d.i+1)
	}
}

func (d *jsonDecoder) space() {
	for d.i < len(d.s) && strings.IndexByte(" \t\r\n", d.s[d.i]) >= 0 {
		d.i++
	}
}

func (d *jsonDecoder) value(depth int) lua.LValue {
	d.space()
	if d.err != "" {
		return lua.LNil
	}
	if d.i < len(d.s) && (d.s[d.i] == '{' || d.s[d.i] == '[') && depth+1 > d.maxDepth {
		d.err = "Found too many nested data structures (" + strconv.Itoa(depth+1) + ") at character " + strconv.Itoa(d.i+1)
		return lua.LNil
	}
	if d.i >= len(d.s) {
		d.fail("value", "T_END")
		return lua.LNil
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return lua.LTrue
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return lua.LFalse
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return d.null
	}
	d.fail("value", "invalid token")
	return lua.LNil
}

// open steps into an object or array at its opening character; empty
// says the closer follows at once (and is consumed).
func (d *jsonDecoder) open(closer byte) (empty bool) {
	d.i++
	d.space()
	if d.i < len(d.s) && d.s[d.i] == closer {
		d.i++
		return true
	}
	return false
}

// afterElement reads what follows an element of an object or array: a comma
// (true: another element follows) or the closer (false, consumed);
// anything else fails, cjson expecting "comma or <container> end".
func (d *jsonDecoder) afterElement(closer byte, container string) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ',' {
		d.i++
		return true
	}
	if d.i < len(d.s) && d.s[d.i] == closer {
		d.i++
		return false
	}
	d.fail("comma or "+container+" end", "invalid token")
	return false
}

func (d *jsonDecoder) object(depth int) lua.LValue {
	t := d.L.NewTable()
	if d.open('}') {
		return t
	}
	for more := true; more && d.err == ""; {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			d.fail("object key string", "invalid token")
			break
		}
		k := d.str()
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			d.fail("colon", "invalid token")
			break
		}
		d.i++
		v := d.value(depth + 1)
		t.RawSet(k, v)
		more = d.afterElement('}', "object")
	}
	return t
}

func (d *jsonDecoder) array(depth int) lua.LValue {
	t := d.L.NewTable()
	if d.open(']') {
		return t
	}
	for n, more := 1, true; more && d.err == ""; n++ {
		t.RawSetInt(n, d.value(depth+1))
		more = d.afterElement(']', "array")
	}
	return t
}

func (d *jsonDecoder) str() lua.LValue {
	var b strings.Builder
	d.i++
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return lua.LString(b.String())
		case c == '\\' && d.i+1 < len(d.s):
			d.i++
			switch e := d.s[d.i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if d.i+4 >= len(d.s) {
					d.fail("string", "invalid unicode escape code")
					return lua.LNil
				}
				r, err := strconv.ParseUint(d.s[d.i+1:d.i+5], 16, 32)
				if err != nil {
					d.fail("string", "invalid unicode escape code")
					return lua.LNil
				}
				b.WriteString(string(utf8.AppendRune(nil, rune(r))))
				d.i += 4
			default:
				b.WriteByte(e)
			}
			d.i++
		default:
			b.WriteByte(c)
			d.i++
		}
	}
	d.fail("string", "T_END")
	return lua.LNil
}

func (d *jsonDecoder) number() lua.LValue {
	j := d.i
	for j < len(d.s) && strings.IndexByte("+-0123456789.eE", d.s[j]) >= 0 {
		j++
	}
	f, err := strconv.ParseFloat(d.s[d.i:j], 64)
	if err != nil {
		d.fail("value", "invalid number")
		return lua.LNil
	}
	d.i = j
	return lua.LNumber(f)
}

// newBitLib returns LuaBitOp's bit table: 32-bit operations on numbers.
func newBitLib(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	arg := func(L *lua.LState, n int) int32 { return toBit(checkNumber(L, n)) }
	ret := func(L *lua.LState, v int32) int { L.Push(lua.LNumber(v)); return 1 }
	fold := func(op func(a, b int32) int32) lua.LGFunction {
		return func(L *lua.LState) int {
			v := arg(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				v = op(v, arg(L, i))
			}
			return ret(L, v)
		}
	}
	shift := func(op func(a int32, n uint) int32) lua.LGFunction {
		return func(L *lua.LState) int { return ret(L, op(arg(L, 1), uint(arg(L, 2))&31)) }
	}
	fns := map[string]lua.LGFunction{
		"tobit":   func(L *lua.LState) int { return ret(L, arg(L, 1)) },
		"bnot":    func(L *lua.LState) int { return ret(L, ^arg(L, 1)) },
		"band":    fold(func(a, b int32) int32 { return a & b }),
		"bor":     fold(func(a, b int32) int32 { return a | b }),
		"bxor":    fold(func(a, b int32) int32 { return a ^ b }),
		"lshift":  shift(func(a int32, n uint) int32 { return int32(uint32(a) << n) }),
		"rshift":  shift(func(a int32, n uint) int32 { return int32(uint32(a) >> n) }),
		"arshift": shift(func(a int32, n uint) int32 { return a >> n }),
		"rol": shift(func(a int32, n uint) int32 {
			return int32(uint32(a)<<n | uint32(a)>>((32-n)&31))
		}),
		"ror": shift(func(a int32, n uint) int32 {
			return int32(uint32(a)>>n | uint32(a)<<((32-n)&31))
		}),
		"bswap": func(L *lua.LState) int {
			u := uint32(arg(L, 1))
			return ret(L, int32(u>>24|u>>8&0xff00|u<<8&0xff0000|u<<24))
		},
		"tohex": func(L *lua.LState) int {
			u := uint32(arg(L, 1))
			n := 8
			if L.GetTop() >= 2 {
				n = int(arg(L, 2))
			}
			digits := "0123456789abcdef"
			if n < 0 {
				digits, n = "0123456789ABCDEF", -n
			}
			n = min(n, 8)
			buf := make([]byte, n)
			for i := n - 1; i >= 0; i-- {
				buf[i] = digits[u&15]
				u >>= 4
			}
			L.Push(lua.LString(buf))
			return 1
		},
	}
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}

// toBit normalizes a number to a signed 32-bit integer as LuaBitOp does
// (modulo 2^32, rounding to the nearest integer).
func toBit(f float64) int32 {
	f = math.RoundToEven(f)
	m := math.Mod(f, 1<<32)
	if m < 0 {
		m += 1 << 32
	}
	return int32(uint32(m))
}
