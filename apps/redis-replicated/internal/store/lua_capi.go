package store

import (
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// Errors and argument checks worded as Lua 5.1's C API words them, for
// the libraries Redis links into its Lua as C code (cmsgpack, struct):
// their messages reach scripts (pcall) and clients, so they must read as
// Redis's do.

// luaCStackLimit is Lua 5.1's LUAI_MAXCSTACK: the most values a C
// function may hold on its stack; cmsgpack's limits follow from it.
const luaCStackLimit = 8000

// callerWhere is what Lua 5.1's luaL_where(L, 1) puts in front of a C
// function's error: the position of the Lua line that called it, or
// nothing when its caller is not a Lua function (pcall, say).
func callerWhere(L *lua.LState) string {
	dbg, ok := L.GetStack(1)
	if !ok {
		return ""
	}
	if _, err := L.GetInfo("Sl", dbg, nil); err != nil || dbg.What == "G" || dbg.CurrentLine <= 0 {
		return ""
	}
	return dbg.Source + ":" + strconv.Itoa(dbg.CurrentLine) + ": "
}

// cError raises msg as a C library's luaL_error does.
func cError(L *lua.LState, msg string) {
	L.Error(lua.LString(callerWhere(L)+msg), 0)
}

// cArgError raises luaL_argerror's "bad argument #n to 'name' (msg)".
// Lua names the function as its caller's code called it (struct.pack,
// 'pack'; a local alias, the alias's name); a caller that is not Lua code
// (pcall(struct.pack, ...)), or an expression Lua cannot name, leaves it
// '?'. gopher-lua records the same names at its call sites.
func cArgError(L *lua.LState, n int, msg string) {
	where, name := callerWhere(L), "?"
	if where != "" {
		if callee := calleeName(L); callee != "" {
			name = callee
		}
	}
	L.Error(lua.LString(where+"bad argument #"+strconv.Itoa(n)+" to '"+name+"' ("+msg+")"), 0)
}

// cTypeError raises luaL_typerror's "<want> expected, got <type>".
func cTypeError(L *lua.LState, n int, want string) {
	got := "no value"
	if n <= L.GetTop() {
		got = L.Get(n).Type().String()
	}
	cArgError(L, n, want+" expected, got "+got)
}

// cCheckString is luaL_checklstring: a string, or a number as Lua
// formats it.
func cCheckString(L *lua.LState, n int) string {
	if n <= L.GetTop() {
		switch v := L.Get(n).(type) {
		case lua.LString:
			return string(v)
		case lua.LNumber:
			return formatLuaNumber(float64(v))
		}
	}
	cTypeError(L, n, "string")
	return ""
}

// cCheckNumber is luaL_checknumber: a number, or a numeric string.
func cCheckNumber(L *lua.LState, n int) float64 {
	if f, ok := cToNumber(L, n); ok {
		return f
	}
	cTypeError(L, n, "number")
	return 0
}

// cToNumber is lua_tonumber's conversion of argument n.
func cToNumber(L *lua.LState, n int) (float64, bool) {
	if n > L.GetTop() {
		return 0, false
	}
	switch v := L.Get(n).(type) {
	case lua.LNumber:
		return float64(v), true
	case lua.LString:
		return parseLuaNumber(string(v))
	}
	return 0, false
}

// cCheckInteger is luaL_checkinteger: the number truncated.
func cCheckInteger(L *lua.LState, n int) int64 {
	return truncInt64(cCheckNumber(L, n))
}

// cOptInteger is luaL_optinteger: def when argument n is absent or nil.
func cOptInteger(L *lua.LState, n int, def int64) int64 {
	if n > L.GetTop() || L.Get(n) == lua.LNil {
		return def
	}
	return cCheckInteger(L, n)
}

// truncInt64 converts f as C's (int64_t) cast does on x86-64: truncated
// toward zero, and the "integer indefinite" value, math.MinInt64, when f
// is NaN or out of range (spelled out so every replica's architecture
// agrees).
func truncInt64(f float64) int64 {
	if math.IsNaN(f) || f >= 1<<63 || f < -(1<<63) {
		return math.MinInt64
	}
	return int64(f)
}
