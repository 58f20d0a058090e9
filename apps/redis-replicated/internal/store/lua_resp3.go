package store

import (
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// RESP3 in scripts, as Redis 7.0 has it.
//
// A script's Lua client speaks RESP2 until redis.setresp(3): from then on
// redis.call hands it its commands' RESP3 replies, typed (maps as
// {map={...}}, sets as {set={member=true}}, doubles as {double=n}, big
// numbers as {big_number=s}, verbatim strings as {verbatim_string=
// {format=f, string=s}}, booleans as booleans, null as nil). The store's
// commands write RESP2; their RESP3 form is the server's conversion
// (shapes, see SetRESP3Converter), reused here rather than written again.
//
// A script's reply is written by the store in its caller's protocol
// (Env.RESP3), with Redis's rules (luaReplyToRedisReply): booleans follow
// the Lua client's protocol (RESP2: true is 1, false a null; RESP3: a
// boolean), the typed tables their RESP3 type or its RESP2 fallback. A
// read run (a speculative one, EVAL_RO, FCALL_RO) knows its connection's
// protocol; a replicated run learns it from its command: a RESP3
// connection proposes its script calls wrapped in RESP3Command.

// replyToRESP3 converts one of the store's RESP2 replies, to the command
// args, into RESP3; nil (no server, as in this package's tests): scripts
// in RESP3 see the RESP2 replies.
var replyToRESP3 func(dst, reply []byte, args [][]byte) []byte

// SetRESP3Converter sets how a script in RESP3 (redis.setresp(3)) sees
// its commands' replies: the server's own RESP3 conversion. Call it once,
// before any script runs.
func SetRESP3Converter(fn func(dst, reply []byte, args [][]byte) []byte) { replyToRESP3 = fn }

// luaCallReply is what redis.call hands the script for the store's reply
// b to args: b itself in RESP2, or converted to RESP3 (into vm.conv).
func (vm *luaVM) luaCallReply(b []byte, args [][]byte) []byte {
	if !vm.call.resp3 || replyToRESP3 == nil {
		return b
	}
	vm.conv = replyToRESP3(vm.conv[:0], b, args)
	return vm.conv
}

// respToLua3 converts one RESP3 reply to Lua as Redis does (RESP2's types
// as respToLua; see above for the rest). Attributes are skipped.
func respToLua3(L *lua.LState, b []byte) (lua.LValue, []byte, bool) {
	line, rest, ok := respHeader(b)
	if !ok {
		return nil, nil, false
	}
	switch b[0] {
	case '_':
		return lua.LNil, rest, true
	case '#':
		return lua.LBool(line == "t"), rest, true
	case ',':
		f, ok := parseRESPDouble(line)
		return typedTable(L, "double", lua.LNumber(f)), rest, ok
	case '(':
		return typedTable(L, "big_number", lua.LString(line)), rest, true
	case '=':
		n, err := strconv.Atoi(line)
		if err != nil || n < 4 || len(rest) < n+2 {
			return nil, nil, false
		}
		v := L.CreateTable(0, 2)
		v.RawSetString("string", lua.LString(rest[4:n]))
		v.RawSetString("format", lua.LString(rest[:3]))
		return typedTable(L, "verbatim_string", v), rest[n+2:], true
	case '%', '~', '|', '*', '>':
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, nil, false
		}
		if n < 0 {
			return lua.LFalse, rest, true
		}
		return aggregateToLua(L, b[0], n, rest)
	}
	return respToLua(L, b) // statuses, errors, integers, bulks
}

// aggregateToLua converts the n elements (pairs for a map or attribute)
// of an aggregate of type typ at the start of b.
func aggregateToLua(L *lua.LState, typ byte, n int, b []byte) (lua.LValue, []byte, bool) {
	var k, v lua.LValue
	ok := true
	switch typ {
	case '|': // not shown to scripts: the reply that follows is
		for range 2 * n {
			if _, b, ok = respToLua3(L, b); !ok {
				return nil, nil, false
			}
		}
		return respToLua3(L, b)
	case '*', '>':
		t := L.CreateTable(n, 0)
		for j := 1; j <= n; j++ {
			if v, b, ok = respToLua3(L, b); !ok {
				return nil, nil, false
			}
			t.RawSetInt(j, v)
		}
		return t, b, true
	}
	t := L.NewTable()
	for range n {
		if k, b, ok = respToLua3(L, b); !ok {
			return nil, nil, false
		}
		v = lua.LTrue
		if typ == '%' {
			if v, b, ok = respToLua3(L, b); !ok {
				return nil, nil, false
			}
		}
		if k != lua.LNil {
			t.RawSet(k, v)
		}
	}
	name := "set"
	if typ == '%' {
		name = "map"
	}
	return typedTable(L, name, t), b, true
}

// typedTable is {name=v}: how Lua sees a RESP3 type it has none of.
func typedTable(L *lua.LState, name string, v lua.LValue) *lua.LTable {
	t := L.CreateTable(0, 1)
	t.RawSetString(name, v)
	return t
}

// parseRESPDouble reads a RESP3 double's text.
func parseRESPDouble(s string) (float64, bool) {
	switch s {
	case "inf":
		return math.Inf(1), true
	case "-inf":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// scriptReply writes a script's result v in the protocol of its caller
// (client3: RESP3), with Lua's booleans as the script's Lua client speaks
// (lua3: RESP3), as Redis 7.0's luaReplyToRedisReply does.
type scriptReply struct{ lua3, client3 bool }

func (r scriptReply) append(dst []byte, v lua.LValue, depth int) []byte {
	switch x := v.(type) {
	case lua.LString:
		return appendBulkBytes(dst, string(x))
	case lua.LNumber:
		return appendInt(dst, int64(x))
	case lua.LBool:
		switch {
		case r.lua3:
			return r.appendBool(dst, bool(x))
		case bool(x):
			return appendInt(dst, 1)
		}
		return r.appendNull(dst)
	case *lua.LTable:
		return r.appendTable(dst, x, depth)
	}
	return r.appendNull(dst)
}

func (r scriptReply) appendNull(dst []byte) []byte {
	if r.client3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

func (r scriptReply) appendBool(dst []byte, b bool) []byte {
	switch {
	case r.client3 && b:
		return append(dst, "#t\r\n"...)
	case r.client3:
		return append(dst, "#f\r\n"...)
	case b:
		return appendInt(dst, 1)
	}
	return appendInt(dst, 0)
}

// appendTable writes a table: an error ({err=}), a status ({ok=}), one of
// RESP3's types ({double=}, {big_number=}, {verbatim_string=}, {map=},
// {set=}), else an array of its elements up to the first nil.
func (r scriptReply) appendTable(dst []byte, x *lua.LTable, depth int) []byte {
	if e, ok := x.RawGetString("err").(lua.LString); ok {
		return append(append(append(dst, '-'), oneLine(string(e))...), "\r\n"...)
	}
	if s, ok := x.RawGetString("ok").(lua.LString); ok {
		return append(append(append(dst, '+'), oneLine(string(s))...), "\r\n"...)
	}
	if d, ok := x.RawGetString("double").(lua.LNumber); ok {
		return r.appendDouble(dst, float64(d))
	}
	if b, ok := x.RawGetString("big_number").(lua.LString); ok {
		if r.client3 {
			return append(append(append(dst, '('), oneLine(string(b))...), "\r\n"...)
		}
		return appendBulkBytes(dst, oneLine(string(b)))
	}
	if vt, ok := x.RawGetString("verbatim_string").(*lua.LTable); ok {
		f, fok := vt.RawGetString("format").(lua.LString)
		s, sok := vt.RawGetString("string").(lua.LString)
		if fok && sok {
			return r.appendVerbatim(dst, string(f), string(s))
		}
	}
	if depth > 1000 {
		return append(dst, "-ERR reached lua stack limit\r\n"...)
	}
	if m, ok := x.RawGetString("map").(*lua.LTable); ok {
		return r.appendHashed(dst, m, true, depth)
	}
	if s, ok := x.RawGetString("set").(*lua.LTable); ok {
		return r.appendHashed(dst, s, false, depth)
	}
	n := 0
	for x.RawGetInt(n+1) != lua.LNil {
		n++
	}
	dst = resp.AppendArrayLen(dst, n)
	for j := 1; j <= n; j++ {
		dst = r.append(dst, x.RawGetInt(j), depth+1)
	}
	return dst
}

// appendDouble is Redis's addReplyDouble: %.17g, a bulk in RESP2.
func (r scriptReply) appendDouble(dst []byte, d float64) []byte {
	var text string
	switch {
	case math.IsInf(d, 1):
		text = "inf"
	case math.IsInf(d, -1):
		text = "-inf"
	default:
		text = formatG17(d)
	}
	if r.client3 {
		return append(append(append(dst, ','), text...), "\r\n"...)
	}
	return appendBulkBytes(dst, text)
}

// appendVerbatim is Redis's addReplyVerbatim: the text alone in RESP2.
func (r scriptReply) appendVerbatim(dst []byte, format, s string) []byte {
	if !r.client3 {
		return appendBulkBytes(dst, s)
	}
	if len(format) > 3 {
		format = format[:3]
	}
	for len(format) < 3 {
		format += " "
	}
	dst = append(dst, '=')
	dst = strconv.AppendInt(dst, int64(len(s)+4), 10)
	dst = append(append(append(append(dst, "\r\n"...), format...), ':'), s...)
	return append(dst, "\r\n"...)
}

// appendHashed writes a {map=} (pairs) or {set=} (its keys) table in Lua's
// iteration order, a flat array (or a plain one) in RESP2.
func (r scriptReply) appendHashed(dst []byte, t *lua.LTable, pairs bool, depth int) []byte {
	n := 0
	t.ForEach(func(lua.LValue, lua.LValue) { n++ })
	switch {
	case r.client3 && pairs:
		dst = appendLen(dst, '%', n)
	case r.client3:
		dst = appendLen(dst, '~', n)
	case pairs:
		dst = resp.AppendArrayLen(dst, 2*n)
	default:
		dst = resp.AppendArrayLen(dst, n)
	}
	t.ForEach(func(k, v lua.LValue) {
		dst = r.append(dst, k, depth+1)
		if pairs {
			dst = r.append(dst, v, depth+1)
		}
	})
	return dst
}

func appendLen(dst []byte, typ byte, n int) []byte {
	dst = strconv.AppendInt(append(dst, typ), int64(n), 10)
	return append(dst, "\r\n"...)
}

// formatG17 is C's %.17g.
func formatG17(d float64) string {
	// Go writes the exponent with at least two digits, as C does, and
	// 'g' drops trailing zeros as %g does: they agree.
	return strconv.FormatFloat(d, 'g', 17, 64)
}

// RESP3Command wraps a script call (EVAL, EVALSHA, FCALL) a RESP3
// connection replicates: the call runs as itself, with its reply written
// in RESP3 (Env.RESP3) on every replica; its effects are the call's.
const RESP3Command = "gomu.resp3"

func init() {
	register(&Command{Name: RESP3Command, Arity: -2, Flags: Write | Internal, Group: "scripting",
		Summary: "Run a script call for a RESP3 client", run: cmdRESP3})
}

func cmdRESP3(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	was := e.RESP3
	e.RESP3 = true
	dst = s.Exec(dst, e, args[1:])
	e.RESP3 = was
	return dst
}

// DenyScriptsCommand is the internal write DEBUG SET-DISABLE-DENY-SCRIPTS
// proposes: with 1, scripts may call DEBUG (Redis lets them call every
// noscript command then; the others are the server's, out of a script's
// reach here). Replicated, so every replica's scripts agree.
const DenyScriptsCommand = "gomu.disable-deny-scripts"

func init() {
	register(&Command{Name: DenyScriptsCommand, Arity: 2, Flags: Write | Internal, Group: "server",
		Summary: "Let scripts call DEBUG (DEBUG SET-DISABLE-DENY-SCRIPTS)", run: cmdDenyScripts})
}

func cmdDenyScripts(s *Store, _ *Env, dst []byte, args [][]byte) []byte {
	n, _ := strconv.Atoi(string(args[1])) // atoi, as Redis reads it
	s.scripts.denyOff = n != 0
	return resp.AppendOK(dst)
}

// debugFromScript is DEBUG called from a script, allowed only after
// DEBUG SET-DISABLE-DENY-SCRIPTS 1 (DenyScriptsCommand): PROTOCOL, in the
// Lua client's protocol, and SLEEP (the script's clock stands still, as
// Redis's does during a script).
func (vm *luaVM) debugFromScript(args [][]byte) []byte {
	if len(args) == 3 && strings.EqualFold(string(args[1]), "protocol") {
		return AppendDebugProtocol(vm.scratch[:0], strings.ToLower(string(args[2])), vm.call.resp3)
	}
	if len(args) == 3 && strings.EqualFold(string(args[1]), "sleep") {
		if secs, err := strconv.ParseFloat(string(args[2]), 64); err == nil && secs > 0 && secs <= 1 {
			time.Sleep(time.Duration(secs * float64(time.Second)))
		}
		return resp.AppendOK(vm.scratch[:0])
	}
	return errReply(vm.scratch[:0], "ERR gomu: a script may call DEBUG PROTOCOL and DEBUG SLEEP only")
}

// AppendDebugProtocol is DEBUG PROTOCOL's sample of the RESP type name, in
// RESP3 or RESP2, as Redis's.
func AppendDebugProtocol(b []byte, name string, resp3 bool) []byte {
	r := scriptReply{lua3: true, client3: resp3}
	switch name {
	case "string":
		return resp.AppendBulkString(b, "Hello World")
	case "integer":
		return resp.AppendInt(b, 12345)
	case "double":
		if resp3 {
			return append(b, ",3.141\r\n"...)
		}
		return resp.AppendBulkString(b, "3.141")
	case "bignum":
		if resp3 {
			return append(b, "(1234567999999999999999999999999999999\r\n"...)
		}
		return resp.AppendBulkString(b, "1234567999999999999999999999999999999")
	case "null":
		return r.appendNull(b)
	case "array", "set":
		switch {
		case resp3 && name == "set":
			b = appendLen(b, '~', 3)
		default:
			b = resp.AppendArrayLen(b, 3)
		}
		for j := range 3 {
			b = resp.AppendInt(b, int64(j))
		}
		return b
	case "map":
		if resp3 {
			b = appendLen(b, '%', 3)
		} else {
			b = resp.AppendArrayLen(b, 6)
		}
		for j := range 3 {
			b = resp.AppendInt(b, int64(j))
			b = r.appendBool(b, j == 1)
		}
		return b
	case "attrib":
		if resp3 {
			b = appendLen(b, '|', 1)
			b = resp.AppendBulkString(b, "key-popularity")
			b = resp.AppendArrayLen(b, 2)
			b = resp.AppendBulkString(b, "key:123")
			b = resp.AppendInt(b, 90)
		}
		return resp.AppendBulkString(b, "Some real reply following the attribute")
	case "push":
		if !resp3 {
			return resp.AppendError(b, "ERR RESP2 is not supported by this command")
		}
		b = appendLen(b, '>', 2)
		b = resp.AppendBulkString(b, "server-cpu-usage")
		b = resp.AppendInt(b, 42)
		return resp.AppendBulkString(b, "Some real reply following the push reply")
	case "true", "false":
		return r.appendBool(b, name == "true")
	case "verbatim":
		return r.appendVerbatim(b, "txt", "This is a verbatim\nstring")
	}
	return resp.AppendError(b, "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
}
