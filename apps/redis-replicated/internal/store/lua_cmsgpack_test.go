package store

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// luaShowPrelude defines, for the differential scripts, hex(s) (a long
// string's length and SHA1), show(v), a value's text that does not depend
// on table order (keys sorted by their text), numbers to 17 digits, and
// try(f, ...), what pcall(f, ...) returns shown, or its error.
const luaShowPrelude = `
local function hex(s)
  if #s > 100 then return #s .. ':' .. redis.sha1hex(s) end
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
local show
show = function(v)
  local t = type(v)
  if t == 'table' then
    local keys = {}
    for k in pairs(v) do keys[#keys+1] = {show(k), k} end
    table.sort(keys, function(a, b) return a[1] < b[1] end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts+1] = k[1] .. '=' .. show(v[k[2]]) end
    return '{' .. table.concat(parts, ',') .. '}'
  elseif t == 'number' then
    if v ~= v then return 'NaN' elseif v == 1/0 then return 'inf' elseif v == -1/0 then return '-inf' end
    return string.format('%.17g', v)
  elseif t == 'string' then return 'x' .. hex(v)
  end
  return tostring(v)
end
local function try(f, ...)
  local r = {pcall(f, ...)}
  if not r[1] then return 'error: ' .. tostring(r[2]) end
  local parts = {}
  for i = 2, table.maxn(r) do parts[#parts+1] = show(r[i]) end
  return table.concat(parts, ' ')
end
`

// luaEval is an EVAL step running body after the prelude, with args as
// ARGV.
func luaEval(body string, args ...string) step {
	return cmd(append([]string{"EVAL", luaShowPrelude + body, "0"}, args...)...)
}

// packHex is a step returning the hex of cmsgpack.pack(<exprs>).
func packHex(exprs string) step {
	return luaEval("return hex(cmsgpack.pack(" + exprs + "))")
}

// unpackShow is a step returning what cmsgpack.unpack makes of data.
func unpackShow(data string) step {
	return luaEval("return try(cmsgpack.unpack, ARGV[1])", data)
}

func TestCMsgpackDifferential(t *testing.T) {
	var steps []step
	for _, e := range []string{
		"0", "1", "127", "128", "255", "256", "65535", "65536", "2^32-1", "2^32", "2^53", "2^63-1024", "2^63", "2^64",
		"-1", "-32", "-33", "-128", "-129", "-32768", "-32769", "-2^31", "-2^31-1", "-2^63", "-2^63-4096", "-0.0",
		"0.1", "0.5", "1.5", "-2.25", "1e300", "-1e-300", "1/0", "-1/0", "3.4028234663852886e38", "1e-45", "2^-149", "16777217.5",
		"''", "'a'", "string.rep('x', 31)", "string.rep('x', 32)", "string.rep('y', 255)", "string.rep('y', 256)",
		"string.rep('z', 65535)", "string.rep('z', 65536)", "'\\0\\1\\255'",
		"nil", "true", "false", "cjson.null", "function() end", "coroutine.create(function() end)",
		"{}", "{1, 2, 3}", "{[1]=1, [3]=3}", "{[2]=2}", "{a=1}", "{[0]=1}", "{[-1]=1}", "{[1.5]=1}", "{[2^31]=1}", "{[2^31-1]=1}",
		"{true, false, 'x', {}, {{}}}", "{1, nil, 3}", "{[1]='a', [2]='b', [3]=nil}",
		"{{{{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}}}}", "{[{}]=1}", "{[{1}]={2}}",
		"1, 'a', {1}, nil, true",
		"(function() local t = {} for i = 1, 20 do t[i] = i end return t end)()",
		"(function() local t = {} for i = 1, 70000 do t[i] = i % 300 end return t end)()",
		"(function() local t = {} t[1] = t return t end)()",
		"(function() local t = {} for i = 1, 17 do t = {k = t} end return t end)()",
		"(function() local t = {1, 2, 3} t[2] = nil return t end)()",
		"unpack((function() local t = {} for i = 1, 4000 do t[i] = i end return t end)())",
		"KEYS",
	} {
		steps = append(steps, packHex(e))
	}
	for _, data := range []string{
		"", "\x00", "\x7f", "\x80", "\x8f", "\x90", "\x9f", "\xa0", "\xbf", "\xc0", "\xc1", "\xc2", "\xc3",
		"\xc4\x01a", "\xc5\x00\x01a", "\xc7\x01\x01a", "\xd4\x01\x01", "\xe0", "\xff",
		"\xcc\xff", "\xcd\xff\xff", "\xce\xff\xff\xff\xff", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff",
		"\xcf\x80\x00\x00\x00\x00\x00\x00\x00", "\xd0\x80", "\xd0\x7f", "\xd1\x80\x00", "\xd1\xff\x7f", "\xd2\x80\x00\x00\x00",
		"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", "\xd3\xff\xff\xff\xff\xff\xff\xff\xfe",
		"\xca\x3f\xc0\x00\x00", "\xca\x7f\xc0\x00\x00", "\xca\xff\x80\x00\x00", "\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a",
		"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
		"\xd9\x03abc", "\xda\x00\x03abc", "\xdb\x00\x00\x00\x03abc", "\xd9\x05abc", "\xdb\xff\xff\xff\xffabc",
		"\x93\x01\x02\x03", "\x93\x01\x02", "\xdc\x00\x02\x01\x02", "\xdd\x00\x00\x00\x02\x01\x02", "\xdd\xff\xff\xff\xff\x01",
		"\x82\xa1a\x01\xa1b\x02", "\xde\x00\x01\x01\x02", "\xdf\x00\x00\x00\x01\x01\x02", "\x81\x01", "\x81\xc0\x01",
		"\x81\x01\xc0", "\x81\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\x01", "\x81\x91\x01\x02", "\x93\xc0\x02\xc0",
		"\x01\x02\x03", "\x01\xc1", "\xcc",
		"\xcd\x01", "\xd9", "\xda\x00",
		strings.Repeat("\x00", 7998), strings.Repeat("\x00", 7999), strings.Repeat("\x00", 8000),
	} {
		steps = append(steps, unpackShow(data))
	}
	// Deep nesting, walked without recursion (a recursive show would
	// meet the Lua call depth limit first).
	for _, data := range []string{
		strings.Repeat("\x91", 3990) + "\x01", strings.Repeat("\x91", 4000) + "\x01",
		strings.Repeat("\x81\x01", 2600) + "\x01", strings.Repeat("\x81\x01", 2700) + "\x01",
	} {
		steps = append(steps, cmd("EVAL", "local ok, v = pcall(cmsgpack.unpack, ARGV[1]) if not ok then return v end "+
			"local d = 0 while type(v) == 'table' do v = v[1] d = d + 1 end return {d, v}", "0", data))
	}
	steps = append(steps,
		luaEval("return try(cmsgpack.unpack, 5)"),
		luaEval("return try(cmsgpack.unpack, nil)"),
		luaEval("return try(cmsgpack.unpack)"),
		luaEval("return try(cmsgpack.unpack, {})"),
		luaEval("return try(cmsgpack.unpack, ARGV[1], 1, 2)", "\x01\x02"),
		luaEval("return try(cmsgpack.pack)"),
		luaEval("return try(function() return cmsgpack.pack() end)"),
		luaEval("return try(function() return cmsgpack.unpack('\\193') end)"),
		luaEval("return try(function() return cmsgpack.unpack('\\204') end)"),
		luaEval("return try(function() return cmsgpack.unpack('\\129\\192\\1') end)"),
		luaEval("return try(function() return cmsgpack.pack(unpack((function() local t = {} for i = 1, 4001 do t[i] = i end return t end)())) end)"),
		cmd("EVAL", "return cmsgpack.unpack('\\193')", "0"),
		cmd("EVAL", "return cmsgpack.pack()", "0"),
		cmd("EVAL", "return cmsgpack.unpack_limit('a', -1)", "0"),
		cmd("EVAL", "cmsgpack.pack = 1", "0"),
		cmd("EVAL", "return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}", "0"),
	)
	multi := "\x01\xa1a\x92\x01\x02\xc0\xc3"
	for _, call := range []string{
		"cmsgpack.unpack_one, ARGV[1]", "cmsgpack.unpack_one, ARGV[1], 0", "cmsgpack.unpack_one, ARGV[1], 1",
		"cmsgpack.unpack_one, ARGV[1], 3", "cmsgpack.unpack_one, ARGV[1], 6", "cmsgpack.unpack_one, ARGV[1], 7",
		"cmsgpack.unpack_one, ARGV[1], 8", "cmsgpack.unpack_one, ARGV[1], 9", "cmsgpack.unpack_one, ARGV[1], -1",
		"cmsgpack.unpack_one, ARGV[1], 2", "cmsgpack.unpack_one, ARGV[1], 1.9", "cmsgpack.unpack_one, ARGV[1], '3'",
		"cmsgpack.unpack_one, ARGV[1], 'x'", "cmsgpack.unpack_one, ARGV[1], nil",
		"cmsgpack.unpack_limit, ARGV[1], 0", "cmsgpack.unpack_limit, ARGV[1], 0, 0", "cmsgpack.unpack_limit, ARGV[1], 0, 1",
		"cmsgpack.unpack_limit, ARGV[1], 2", "cmsgpack.unpack_limit, ARGV[1], 2, 1", "cmsgpack.unpack_limit, ARGV[1], 10, 1",
		"cmsgpack.unpack_limit, ARGV[1], 100", "cmsgpack.unpack_limit, ARGV[1], -1", "cmsgpack.unpack_limit, ARGV[1], 1, -5",
		"cmsgpack.unpack_limit, ARGV[1]", "cmsgpack.unpack_limit, ARGV[1], 1, 100", "cmsgpack.unpack_limit, ARGV[1], 1, 8",
		"cmsgpack.unpack_limit, ARGV[1], 1, 2^40", "cmsgpack.unpack_limit, ARGV[1], 1, -2^40", "cmsgpack.unpack_limit, '', 0, 0",
		"cmsgpack.unpack_limit, '', 1", "cmsgpack.unpack_one, ''",
	} {
		steps = append(steps, luaEval("return try("+call+")", multi))
	}
	steps = append(steps, cmsgpackRandomSteps(rand.New(rand.NewPCG(7, 11)), 150)...)
	runDiff(t, steps)
}

// cmsgpackRandomSteps makes n random values, each packed (compared as
// hex where no map has two keys, whose order is Lua's hash order) and
// round-tripped, and n random byte strings of msgpack-like bytes to
// unpack.
func cmsgpackRandomSteps(r *rand.Rand, n int) []step {
	var steps []step
	for i := 0; i < n; i++ {
		g := luaValueGen{r: r, budget: 60}
		lit := g.value(0)
		if g.multiKeyMap {
			steps = append(steps, luaEval("local v = "+lit+" return show(cmsgpack.unpack(cmsgpack.pack(v))) .. ' ' .. #cmsgpack.pack(v)"))
		} else {
			steps = append(steps, luaEval("local v = "+lit+" local p = cmsgpack.pack(v) return hex(p) .. ' ' .. show(cmsgpack.unpack(p))"))
		}
	}
	for i := 0; i < n; i++ {
		steps = append(steps, unpackShow(randomMsgpackish(r)))
	}
	return steps
}

// luaValueGen writes random Lua value literals.
type luaValueGen struct {
	r           *rand.Rand
	multiKeyMap bool
	// budget is how many more values may be tables' elements.
	budget int
}

func (g *luaValueGen) value(depth int) string {
	r := g.r
	choices := 8
	if depth > 18 || g.budget <= 0 {
		choices = 6 // no more tables
	}
	switch r.IntN(choices) {
	case 0:
		return strconv.FormatInt(r.Int64N(1<<uint(r.IntN(63)))-r.Int64N(1<<uint(r.IntN(40))), 10)
	case 1:
		return strconv.FormatFloat(r.NormFloat64()*float64(int64(1)<<uint(r.IntN(60))), 'g', 17, 64)
	case 2:
		return strconv.Quote(randomBytes(r, []int{0, 5, 31, 32, 200, 255, 256, 300, 70000}[r.IntN(9)]))
	case 3:
		return []string{"true", "false", "nil", "0/0", "1/0", "-1/0", "2^63", "-2^63"}[r.IntN(8)]
	case 4:
		return strconv.Itoa(r.IntN(300) - 150)
	case 5:
		return strconv.FormatFloat(float64(float32(r.Float64()*1000)), 'g', -1, 64)
	case 6:
		n := r.IntN(20)
		if depth > 2 {
			n = r.IntN(3) // deep chains, not wide trees
		}
		g.budget -= n
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.value(depth + 1)
			if parts[i] == "nil" {
				parts[i] = "false"
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		n := r.IntN(4)
		if depth > 2 {
			n = r.IntN(2)
		}
		g.budget -= n
		if n > 1 {
			g.multiKeyMap = true
		}
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("[%q]=%s", randomBytes(r, r.IntN(40)), g.value(depth+1))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
}

// randomBytes is n random bytes, printable ones more often, written so
// strconv.Quote makes a Lua 5.1 literal of them (no \x escapes: Lua 5.1
// has none, so only \ooo-free bytes: letters and digits).
func randomBytes(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// randomMsgpackish is a short string of type bytes and small payloads,
// often valid MessagePack, often not.
func randomMsgpackish(r *rand.Rand) string {
	var b []byte
	for n := r.IntN(12); n > 0; n-- {
		switch r.IntN(6) {
		case 0:
			b = append(b, byte(0x80+r.IntN(0x20))) // fixmap, fixarray
		case 1:
			b = append(b, byte(0xc0+r.IntN(0x20))) // the typed forms
		case 2:
			b = append(b, byte(0xa0+r.IntN(4)))
		default:
			b = append(b, byte(r.IntN(256)))
		}
	}
	return string(b)
}

// TestCMsgpackBudget: packing a table that holds itself many times over
// (to the nesting limit: 100^16 values) stops at the instruction budget,
// at the same point on two stores, even when the script catches the
// error; an unpack's values are charged too.
func TestCMsgpackBudget(t *testing.T) {
	defer func(b int64) { instructionBudget = b }(instructionBudget)
	instructionBudget = 200_000
	for _, script := range []string{
		"local t = {} for i = 1, 100 do t[i] = t end redis.call('set', 'k', 'v') return #cmsgpack.pack(t)",
		"local t = {} for i = 1, 100 do t[i] = t end local ok = pcall(cmsgpack.pack, t) redis.call('set', 'after', 'v') return 1",
		"local s = cmsgpack.pack(string.rep('x', 300000)) return #s",
		"return #cmsgpack.unpack('\\221\\0\\4\\147\\224' .. string.rep('\\0', 300000))", // an array of 300000
		"return #cmsgpack.unpack('\\221\\0\\1\\134\\160' .. string.rep('\\0', 100000))", // of 100000: within it
	} {
		a, b := New(), New()
		ra := exec(a, newTestEnv(1), "EVAL", script, "0")
		rb := exec(b, newTestEnv(1), "EVAL", script, "0")
		if ra != rb || a.Digest() != b.Digest() {
			t.Fatalf("%q: stores differ: %q, %q", script, ra, rb)
		}
		if !strings.Contains(ra, "budget") && !strings.HasPrefix(ra, ":") {
			t.Fatalf("%q: %q", script, ra)
		}
		t.Logf("%.60q: %q", script, ra)
	}
	if got := exec(New(), newTestEnv(1), "EVAL", "local t = {} for i = 1, 100 do t[i] = t end local ok = pcall(cmsgpack.pack, t) return 1", "0"); !strings.Contains(got, "budget") {
		t.Fatalf("a caught budget error let the script go on: %q", got)
	}
}
