package store

import lua "github.com/yuin/gopher-lua"

// Base functions made to behave as Lua 5.1's where gopher-lua's differ in
// ways scripts see.

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

// setUnpack replaces unpack with Lua 5.1's: the range's ends are C ints,
// and a range that would not fit the C stack beside the arguments
// (luaCStackLimit) fails with "too many results to unpack" rather than
// growing gopher-lua's registry.
func (vm *luaVM) setUnpack() {
	vm.globals.RawSetString("unpack", vm.L.NewFunction(func(L *lua.LState) int {
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			cTypeError(L, 1, "unpack", "table")
		}
		first := int32(cOptInteger(L, 2, "unpack", 1))
		last := int32(t.Len())
		if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
			last = int32(cCheckInteger(L, 3, "unpack"))
		}
		if first > last {
			return 0
		}
		n := int32(uint32(last) - uint32(first) + 1) // C's int arithmetic, wrapping
		if n <= 0 || L.GetTop()+int(n) > luaCStackLimit {
			cError(L, "too many results to unpack")
		}
		for i := int64(first); i <= int64(last); i++ {
			L.Push(t.RawGetInt(int(i)))
		}
		return int(n)
	}))
}
