package store

import lua "github.com/yuin/gopher-lua"

// Base functions made to behave as Lua 5.1's where gopher-lua's differ in
// ways scripts see.

// setCallErrors makes calling, indexing, arithmetic on, taking the length
// of and concatenating a nil or a boolean (calling and indexing a number
// too) fail with Lua 5.1's text: "attempt to call a nil value", "attempt
// to index local 't' (a nil value)", "attempt to perform arithmetic on
// field 'n' (a nil value)", ... (gopher-lua's own: "attempt to call a
// non-function object", "attempt to index a non-table object(nil) with key
// 'x'", "cannot perform add operation between nil and number"). gopher-lua
// looks these metamethods up in the metatable it keeps per type, so one is
// set for each, raising the error at the failing line. getmetatable still
// answers nil for those types, as in Lua. (Strings are left out: their
// metatable is the string library itself, where the fields would show;
// numbers get no arithmetic or concatenation, which they have.)
func (vm *luaVM) setCallErrors() {
	L := vm.L
	for _, v := range []lua.LValue{lua.LNil, lua.LFalse, lua.LNumber(0)} {
		mt := L.NewTable()
		L.SetMetatable(v, mt)
		mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
			vm.typeError(L, L.Get(1), luaCulprit{op: opCall, name: calleeName(L)})
			return 0
		}))
		index := L.NewFunction(func(L *lua.LState) int {
			vm.typeError(L, L.Get(1), luaCulprit{op: opIndex, key: L.Get(2)})
			return 0
		})
		mt.RawSetString("__index", index)
		mt.RawSetString("__newindex", index)
		if v.Type() == lua.LTNumber {
			continue
		}
		for _, event := range []string{"__add", "__sub", "__mul", "__div", "__mod", "__pow"} {
			mt.RawSetString(event, L.NewFunction(vm.binaryError(event, opArith, isLuaNumeric)))
		}
		mt.RawSetString("__concat", L.NewFunction(vm.binaryError("__concat", opConcat, isLuaConcatenable)))
		mt.RawSetString("__unm", L.NewFunction(func(L *lua.LState) int {
			vm.typeError(L, L.Get(1), luaCulprit{op: opArith})
			return 0
		}))
		mt.RawSetString("__len", L.NewFunction(func(L *lua.LState) int {
			vm.typeError(L, L.Get(1), luaCulprit{op: opLength})
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

// binaryError is a nil's or boolean's metamethod for a binary event. As
// gopher-lua asks the left operand first, a table or userdata on the right
// may have its own, which Lua would have called: it is. Else the error
// names the left operand unless it could take part (ok), as Lua does.
func (vm *luaVM) binaryError(event string, op luaOp, ok func(lua.LValue) bool) lua.LGFunction {
	return func(L *lua.LState) int {
		lhs, rhs := L.Get(1), L.Get(2)
		switch rhs.Type() {
		case lua.LTTable, lua.LTUserData:
			if fn, isFn := L.GetMetaField(rhs, event).(*lua.LFunction); isFn {
				L.Push(fn)
				L.Push(lhs)
				L.Push(rhs)
				L.Call(2, 1)
				return 1
			}
		}
		if ok(lhs) {
			vm.typeError(L, rhs, luaCulprit{op: op, operand: 1})
		}
		vm.typeError(L, lhs, luaCulprit{op: op})
		return 0
	}
}

func isLuaNumeric(v lua.LValue) bool {
	_, ok := luaNumberOf(v)
	return ok
}

func isLuaConcatenable(v lua.LValue) bool {
	t := v.Type()
	return t == lua.LTString || t == lua.LTNumber
}

var luaOpVerbs = [...]string{opCall: "call", opIndex: "index", opArith: "perform arithmetic on",
	opLength: "get length of", opConcat: "concatenate"}

// typeError raises Lua 5.1's "attempt to <op> <kind> '<name>' (a <type>
// value)" for v, or "attempt to <op> a <type> value" when Lua would name
// nothing. The position goes in front only when Lua code failed (not
// pcall(nil), say).
func (vm *luaVM) typeError(L *lua.LState, v lua.LValue, c luaCulprit) {
	verb, typ := luaOpVerbs[c.op], v.Type().String()
	msg := "attempt to " + verb + " a " + typ + " value"
	if kind, name := culpritName(L, c); kind != "" {
		msg = "attempt to " + verb + " " + kind + " '" + name + "' (a " + typ + " value)"
	}
	if callerWhere(L) == "" {
		L.Error(lua.LString(msg), 0)
	}
	vm.raise(L, msg, true)
}

// calleeName is the name gopher-lua recorded for the call that reached
// the running Go function ("" if none).
func calleeName(L *lua.LState) string {
	dbg, ok := L.GetStack(0)
	if !ok {
		return ""
	}
	if _, err := L.GetInfo("n", dbg, nil); err != nil {
		return ""
	}
	switch dbg.Name {
	case "?", "(anonymous)":
		return ""
	}
	return dbg.Name
}

// setUnpack replaces unpack with Lua 5.1's: the range's ends are C ints,
// and a range that would not fit the C stack beside the arguments
// (luaCStackLimit) fails with "too many results to unpack" rather than
// growing gopher-lua's registry.
func (vm *luaVM) setUnpack() {
	vm.globals.RawSetString("unpack", vm.L.NewFunction(func(L *lua.LState) int {
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			cTypeError(L, 1, "table")
		}
		first := int32(cOptInteger(L, 2, 1))
		last := int32(t.Len())
		if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
			last = int32(cCheckInteger(L, 3))
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
