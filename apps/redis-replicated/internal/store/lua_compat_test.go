package store

import "testing"

func TestLuaCompatDifferential(t *testing.T) {
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
		cmd("EVAL", "local t = {} for i = 1, 10 do t[i] = i end return {pcall(unpack, t, 1, 7998)}", "0"),
		cmd("EVAL", "local t = {} for i = 1, 10 do t[i] = i end return select('#', unpack(t, 1, 7997))", "0"),
		cmd("EVAL", "local t = {} for i = 1, 10 do t[i] = i end return {pcall(function() return select('#', unpack(t, 1, 8000)) end)}", "0"),
		cmd("EVAL", "local t = {} for i = 1, 10 do t[i] = i end return {pcall(function() return select('#', unpack(t, 1, 7999)) end)}", "0"),
		cmd("EVAL", "local t = {} for i = 1, 10 do t[i] = i end return {pcall(function() return select('#', unpack(t, 1, 1e6)) end)}", "0"),
		cmd("EVAL", "return {pcall(unpack, {1, 2, 3}, -2^31, 2^31)}", "0"),
		cmd("EVAL", "return {pcall(unpack, {1, 2, 3}, 2.7, '3')}", "0"),
		cmd("EVAL", "return {pcall(unpack, {1, 2, 3}, nil, 2)}", "0"),
		cmd("EVAL", "return {pcall(unpack, {1, 2, 3}, 3, 1)}", "0"),
		cmd("EVAL", "return {pcall(unpack, {1, 2, 3}, 0, 4)}", "0"),
		cmd("EVAL", "return {pcall(unpack, 'abc')}", "0"),
		cmd("EVAL", "return {pcall(unpack)}", "0"),
		cmd("EVAL", "return {pcall(function() return unpack({}, 'x') end)}", "0"),
		cmd("EVAL", "return unpack({1, 2, 3})", "0"),
		cmd("EVAL", "return {unpack({1, 2, 3}, 2)}", "0"),
	}
	runDiff(t, append(scriptFlushes, steps...))
}
