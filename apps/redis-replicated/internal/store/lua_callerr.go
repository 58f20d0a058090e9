package store

import lua "github.com/yuin/gopher-lua"

// setCallErrors makes calling a nil, a boolean or a number fail
// with Lua 5.1's "attempt to call a <type> value" (gopher-lua's own text
// is "attempt to call a non-function object"): gopher-lua looks up __call
// in the metatable it keeps per type, so one is set for each, raising
// that error at the calling line. getmetatable still answers nil for those
// types, as in Lua. (Strings are left out: their metatable is the string
// library itself, where a __call would show.)
func (vm *luaVM) setCallErrors() {
	L := vm.L
	for _, v := range []lua.LValue{lua.LNil, lua.LFalse, lua.LNumber(0)} {
		msg := "attempt to call a " + v.Type().String() + " value"
		mt := L.NewTable()
		L.SetMetatable(v, mt)
		mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
			// Lua puts the position in front only when Lua code made
			// the call (not pcall(nil), say).
			if callerWhere(L) == "" {
				L.Error(lua.LString(msg), 0)
			}
			vm.raise(L, msg, true)
			return 0
		}))
	}
	vm.globals.RawSetString("getmetatable", L.NewFunction(func(L *lua.LState) int {
		v := L.CheckAny(1)
		switch v.Type() {
		case lua.LTNil, lua.LTBool, lua.LTNumber:
			L.Push(lua.LNil)
		default:
			L.Push(L.GetMetatable(v))
		}
		return 1
	}))
}
