package store

import "testing"

func TestLuaCallErrorsDifferential(t *testing.T) {
	steps := []step{
		cmd("EVAL", "return loadstring(string.dump(function() return 1 end))()", "0"),
		// A named callee ("attempt to call local 'x' (a nil value)",
		// "field '?'") is not matched: gopher-lua's debug interface does
		// not give the calling instruction to name it from.
		cmd("EVAL", "return {pcall(function() return (5)() end)}", "0"),
		cmd("EVAL", "return {pcall(nil)}", "0"),
		cmd("EVAL", "return {pcall(true)}", "0"),
		cmd("EVAL", "return {pcall(function() return (1 == 2)(1, 2) end)}", "0"),
		cmd("EVAL", "return {getmetatable(nil), getmetatable(1), getmetatable(true), type(getmetatable('')), getmetatable({})}", "0"),
		cmd("EVAL", "return tostring(getmetatable(setmetatable({}, {__metatable = 'locked'})))", "0"),
	}
	runDiff(t, append(scriptFlushes, steps...))
}
