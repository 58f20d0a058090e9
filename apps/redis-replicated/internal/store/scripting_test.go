package store

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// scriptFlushes starts every scripting differential: the real Redis keeps
// its script cache and libraries across FLUSHALL.
var scriptFlushes = []step{cmd("SCRIPT", "FLUSH"), cmd("FUNCTION", "FLUSH")}

func TestScriptingDifferential(t *testing.T) {
	lib := "#!lua name=mylib\nredis.register_function('echo', function(keys, args) return args[1] end)\n" +
		"redis.register_function{function_name='get', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n" +
		"redis.register_function('put', function(keys, args) return redis.call('set', keys[1], args[1]) end)"
	cases := []struct {
		name  string
		steps []step
	}{
		{"writes and reads", []step{
			cmd("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"),
			cmd("EVAL", "return redis.call('get', KEYS[1])", "1", "k"),
			cmd("EVAL", "redis.call('rpush', 'l', 'a', 'b', 'c'); return redis.call('lrange', 'l', 0, -1)", "0"),
			cmd("EVAL", "return redis.call('hset', 'h', 'f', 1.5)", "0"),
			cmd("HGETALL", "h"),
			cmd("EVAL", "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.call('lpush', 'big', unpack(a))", "0"),
			cmd("EVAL", "local value = 9007199254740991 redis.call('set', 'n', value) return redis.call('get', 'n')", "0"),
			cmd("EVAL", "local t = {} for _, v in ipairs({0.1, 1.5, -2.25, 1e20, 1e5, 1e-7, 123456789012345678, 3.14159265358979, 0.000123, -0.5, 2^53, 1/3}) do redis.call('set', 'n', v) t[#t+1] = redis.call('get', 'n') end return t", "0"),
			cmd("EVAL", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", "1", "a", "b", "c"),
		}},
		{"reply types", []step{
			cmd("EVAL", "return {1, 2, 3, 'a', nil, 5}", "0"),
			cmd("EVAL", "return {1.9, -3.99, true, false, {ok='fine'}, {err='bad'}, {1, {2}}}", "0"),
			cmd("EVAL", "return 3.99", "0"),
			cmd("EVAL", "return nil", "0"),
			cmd("EVAL", "return true", "0"),
			cmd("EVAL", "return false", "0"),
			cmd("EVAL", "return {err=5}", "0"),
			cmd("EVAL", "return {err='MYERR x\\ny'}", "0"),
			cmd("EVAL", "return redis.error_reply('MY x')", "0"),
			cmd("EVAL", "return redis.error_reply('x')", "0"),
			cmd("EVAL", "return redis.status_reply('fine')", "0"),
			cmd("EVAL", "return redis.call('get', 'nokey')", "0"),
			cmd("EVAL", "return redis.call('ping')", "0"),
			cmd("EVAL", "return redis.call('hgetall', 'nokey')", "0"),
			cmd("EVAL", "return redis.sha1hex('')", "0"),
			cmd("EVAL", "return {redis.REPL_ALL, redis.LOG_WARNING, redis.REDIS_VERSION_NUM}", "0"),
			cmd("EVAL", "return cjson.encode({1, 2, {a=1}, 'x\"/'})", "0"),
			cmd("EVAL", "return cjson.decode('[1,2,{\"a\":[3]}]')[3].a[1]", "0"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[1,2"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[1 2]"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[1,]"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[]"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[[],[1,[2]]]"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "{\"a\":1 \"b\":2}"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "{\"a\":1,}"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "{\"a\":1"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "{}"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "{\"a\":[1,{}]}"),
			cmd("EVAL", "local ok, v = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(v) end return 'error'", "0", "[1,2]x"),
			cmd("EVAL", "return {bit.tohex(-1), bit.tohex(255, -4), bit.band(7, 3), bit.bor(1, 2, 4), bit.lshift(1, 31), bit.arshift(-16, 2)}", "0"),
			cmd("EVAL", "return tostring(3.14159265358979)", "0"),
		}},
		{"errors", []step{
			cmd("SET", "s", "foo"),
			cmd("EVAL", "return redis.call('incr', 's')", "0"),
			cmd("EVAL", "return redis.pcall('incr', 's')", "0"),
			cmd("EVAL", "local ok, e = pcall(redis.call, 'incr', 's'); return {tostring(ok), e}", "0"),
			cmd("EVAL", "local ok, e = pcall(function() error({err='X y'}) end); return e", "0"),
			cmd("EVAL", "\nlocal x = 1\nreturn redis.call('incr', 's')", "0"),
			cmd("EVAL", "error('boom')", "0"),
			cmd("EVAL", "error({err='MY boom'})", "0"),
			cmd("EVAL", "error('x', 0)", "0"),
			cmd("EVAL", "error(12)", "0"),
			cmd("EVAL", "error()", "0"),
			cmd("EVAL", "return a", "0"),
			cmd("EVAL", "a = 1", "0"),
			cmd("EVAL", "string.x = 1", "0"),
			cmd("EVAL", "return type(os)", "0"),
			cmd("EVAL", "return loadstring('return 1 + 1')()", "0"),
			cmd("EVAL", "return x", "0"),
			cmd("EVAL", "setmetatable(_G, nil)", "0"),
			cmd("EVAL", "return getmetatable(_G)", "0"),
			cmd("EVAL", "return getmetatable('').__index", "0"),
			cmd("EVAL", "redis.call = nil", "0"),
			cmd("EVAL", "local t = setmetatable({}, {__index = function() return 5 end}) return t.x", "0"),
			cmd("EVAL", "return {pcall(error)}", "0"),
			cmd("EVAL", "return {xpcall(function() error('x') end, function(e) return 'handled ' .. e end)}", "0"),
			cmd("EVAL", "return select('#', 1, 2, 3)", "0"),
			cmd("EVAL", "return string.format('%d %s %5.2f %q', 3, 'x', 1.234, 'a\"b')", "0"),
			cmd("EVAL", "return {string.find('hello world', 'o w'), string.match('key:123', '(%a+):(%d+)')}", "0"),
			cmd("EVAL", "return string.gsub('hello', 'l', 'L')", "0"),
			cmd("EVAL", "local t = {3, 1, 2} table.sort(t) return t", "0"),
			cmd("EVAL", "return {math.floor(3.7), math.max(1, 5, 3), math.fmod(7, 3), math.huge > 0}", "0"),
			cmd("EVAL", "return tonumber('0x10') + tonumber('1e2')", "0"),
			cmd("EVAL", "return unpack({1, 2, 3})", "0"),
			cmd("EVAL", "return #ARGV", "0"),
			cmd("EVAL", "return redis.call()", "0"),
			cmd("EVAL", "return redis.call('nosuch')", "0"),
			cmd("EVAL", "return redis.call('incr', 'x', 'y')", "0"),
			cmd("EVAL", "return redis.call('eval', 'return 1', 0)", "0"),
			cmd("EVAL", "return redis.call('set', 'k', {})", "0"),
			cmd("EVAL", "return redis.setresp(4)", "0"),
			cmd("EVAL", "return redis.set_repl(99)", "0"),
			cmd("EVAL", "return 1", "notanumber"),
			cmd("EVAL", "return 1", "-1"),
			cmd("EVAL", "return 1", "3", "a"),
			cmd("EVAL", "#!lua flags=bad\nreturn 1", "0"),
			cmd("EVAL", "#!lua name=x\nreturn 1", "0"),
		}},
		{"script cache", []step{
			cmd("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
			cmd("EVALSHA", "abc", "0"),
			cmd("EVALSHA", "abc", "2", "k"),
			cmd("EVALSHA", "0123456789012345678901234567890123456789", "2", "k"),
			cmd("EVAL", "return x(", "x"),
			cmd("SCRIPT", "LOAD", "return 1"),
			cmd("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "abc"),
			cmd("EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"),
			cmd("EVAL", "return 2", "0"),
			cmd("SCRIPT", "EXISTS", "7f923f79fe76194c868d7e1d0820de36700eb649"),
			cmd("SCRIPT", "FLUSH", "bogus"),
			cmd("SCRIPT", "FLUSH", "ASYNC"),
			cmd("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
			cmd("SCRIPT", "FOO"),
		}},
		{"read-only scripts", []step{
			cmd("EVAL_RO", "return redis.call('set', 'k', 'v')", "0"),
			cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')", "0"),
			cmd("EVAL", "#!lua\nreturn redis.call('set', 'k', 'v')", "0"),
			cmd("EVAL_RO", "#!lua\nreturn 1", "0"),
			cmd("EVAL_RO", "return redis.call('get', 'k')", "0"),
		}},
		{"functions", []step{
			cmd("FUNCTION", "LOAD", lib),
			cmd("FUNCTION", "LOAD", lib),
			cmd("FUNCTION", "LOAD", "return 1"),
			cmd("FUNCTION", "LOAD", "#!lua name=lib2\nreturn 1"),
			cmd("FUNCTION", "LOAD", "#!lua name=lib3\nredis.register_function('echo', function() return 1 end)"),
			cmd("FUNCTION", "LOAD", "#!lua name=lib3\nredis.call('ping')"),
			cmd("FUNCTION", "LOAD", "#!lua name=lib3 foo=bar\nredis.register_function('f3', function() return 1 end)"),
			cmd("FUNCTION", "LOAD", "#!js name=lib3\nx"),
			cmd("FUNCTION", "LOAD", "#!lua name=1-bad\nx"),
			cmd("FCALL", "echo", "0", "hello"),
			cmd("FCALL", "put", "1", "k", "v"),
			cmd("FCALL", "get", "1", "k"),
			cmd("FCALL_RO", "get", "1", "k"),
			cmd("FCALL_RO", "echo", "0", "x"),
			cmd("FCALL", "nofunc", "0"),
			cmd("FCALL", "echo", "2", "a"),
			cmd("FUNCTION", "LOAD", "#!lua name=one\nredis.register_function{function_name='f', callback=function() return 1 end, description='d', flags={'no-writes'}}"),
			cmd("FUNCTION", "LIST", "LIBRARYNAME", "one", "WITHCODE"),
			cmd("FUNCTION", "LIST", "LIBRARYNAME", "my"),
			cmd("FUNCTION", "STATS"),
			cmd("FUNCTION", "DELETE", "nolib"),
			cmd("FUNCTION", "DELETE", "mylib"),
			cmd("FCALL", "echo", "0"),
			cmd("FUNCTION", "FLUSH", "bogus"),
			cmd("FUNCTION", "FLUSH"),
			cmd("FUNCTION", "LIST"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runDiff(t, append(slices_clone(scriptFlushes), c.steps...)) })
	}
}

func slices_clone(s []step) []step { return append([]step(nil), s...) }

// exec runs one command given as strings on s with e.
func exec(s *Store, e *Env, args ...string) string { return string(execArgs(s, e, args)) }

func newTestEnv(seed uint64) *Env {
	return &Env{NowMs: 1_700_000_000_123, Rand: rand.New(rand.NewPCG(seed, seed))}
}

// TestScriptingOwn covers what has no Redis twin: read-only runs of write
// commands, the Env's clock and generator.
func TestScriptingOwn(t *testing.T) {
	code := "#!lua name=r\nredis.register_function('rf', function() return 7 end)"
	dumpPayload := "GOMUFN1\x01" + string(rune(len(code))) + code
	cases := []struct {
		name string
		env  func(*Env)
		args []string
		want string
	}{
		{"time is the Env's", nil, []string{"EVAL", "return redis.call('time')", "0"}, "*2\r\n$10\r\n1700000000\r\n$6\r\n123000\r\n"},
		{"read env refuses writes", func(e *Env) { e.ReadOnly = true }, []string{"EVAL", "return redis.call('set', 'k', 'v')", "0"},
			"-ERR Write commands are not allowed from read-only scripts. script: " + sha1Hex([]byte("return redis.call('set', 'k', 'v')")) + ", on @user_script:1.\r\n"},
		{"read env does not cache", func(e *Env) { e.ReadOnly = true }, []string{"SCRIPT", "LOAD", "return 1"}, "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n"},
		{"nothing cached", nil, []string{"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"}, "*1\r\n:0\r\n"},
		{"globals do not leak", nil, []string{"EVAL", "return rawget(_G, 'KEYS') ~= nil", "0"}, "$-1\r\n"},
		{"dump restore", nil, []string{"FUNCTION", "RESTORE", dumpPayload}, "+OK\r\n"},
		{"restored runs", nil, []string{"FCALL", "rf", "0"}, ":7\r\n"},
		{"dump", nil, []string{"FUNCTION", "DUMP"}, "$" + strconv.Itoa(len(dumpPayload)) + "\r\n" + dumpPayload + "\r\n"},
		{"restore conflict", nil, []string{"FUNCTION", "RESTORE", dumpPayload}, "-ERR Library r already exists\r\n"},
		{"restore bad payload", nil, []string{"FUNCTION", "RESTORE", "xx"}, "-ERR payload version or checksum are wrong\r\n"},
	}
	s := New()
	for _, c := range cases {
		e := newTestEnv(1)
		if c.env != nil {
			c.env(e)
		}
		if got := exec(s, e, c.args...); got != c.want {
			t.Errorf("%s: %q:\n got %q\nwant %q", c.name, c.args, got, c.want)
		}
	}
}

// TestScriptDeterminism: two stores applying the same commands with the
// same Envs agree on replies and digest, math.random and TIME included,
// and a runaway script stops at the same instruction on both.
func TestScriptDeterminism(t *testing.T) {
	defer func(b int64) { instructionBudget = b }(instructionBudget)
	instructionBudget = 200_000
	script := [][]string{
		{"EVAL", "local t = {} for i = 1, 5 do t[i] = tostring(math.random()) .. ' ' .. math.random(100) end redis.call('set', 'r', table.concat(t, ',')) return t", "0"},
		{"EVAL", "local t = redis.call('time') redis.call('set', 'now', t[1] .. '.' .. t[2]) return t", "0"},
		{"EVAL", "local i = 0 while true do i = i + 1 redis.call('set', 'count', i) end", "0"},
		{"EVAL", "local i = 0 while true do i = i + 1 pcall(function() while true do end end) end", "0"},
		{"EVAL", "local co = coroutine.create(function() while true do end end) return {coroutine.resume(co)}", "0"},
		{"EVAL", "return coroutine.wrap(function() while true do end end)()", "0"},
		{"GET", "count"},
		{"EVAL", "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end) return {co(1), co(5)}", "0"},
		{"FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('rnd', function() return redis.call('set', 'f', math.random(1000000)) end)"},
		{"FCALL", "rnd", "0"},
		{"GET", "f"},
	}
	a, b := New(), New()
	var repliesA []string
	for i, args := range script {
		ra := exec(a, newTestEnv(uint64(i)), args...)
		rb := exec(b, newTestEnv(uint64(i)), args...)
		if ra != rb {
			t.Fatalf("%q: replies differ:\n%q\n%q", args, ra, rb)
		}
		repliesA = append(repliesA, ra)
	}
	if a.Digest() != b.Digest() {
		t.Fatal("digests differ")
	}
	if !strings.Contains(repliesA[2], "instructions script: ") || !strings.HasPrefix(repliesA[6], "$") {
		t.Fatalf("budget: %q then count %q", repliesA[2], repliesA[6])
	}
	for i, what := range []string{3: "pcall", 4: "coroutine.resume", 5: "coroutine.wrap"} {
		if what != "" && !strings.Contains(repliesA[i], "budget") {
			t.Fatalf("%s escaped the budget: %q", what, repliesA[i])
		}
	}
	if repliesA[7] != "*2\r\n:2\r\n:10\r\n" {
		t.Fatalf("coroutine.wrap: %q", repliesA[7])
	}
	// A script overflowing the value stack fails; it does not crash the
	// store (gopher-lua would panic past PCall with an error handler).
	for _, script := range []string{"return unpack({}, 1, 1e8)", "return string.rep('x', 2^40)"} {
		if got := exec(a, newTestEnv(1), "EVAL", script, "0"); !strings.HasPrefix(got, "-ERR ") {
			t.Fatalf("%s: %q", script, got)
		}
	}
	if exec(a, newTestEnv(9), "EVAL", "return tostring(math.random())", "0") == exec(a, newTestEnv(10), "EVAL", "return tostring(math.random())", "0") {
		t.Fatal("math.random does not follow the Env's seed")
	}
}

// TestScriptSnapshot: scripts and libraries ride snapshots and the digest;
// a store without them snapshots as before.
func TestScriptSnapshot(t *testing.T) {
	s := New()
	e := newTestEnv(1)
	exec(s, e, "SET", "k", "v")
	plain := s.Digest()
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	noScripts := buf.Len()
	exec(s, e, "SCRIPT", "LOAD", "return 1")
	exec(s, e, "FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', function(k, a) return a[1] end)")
	if s.Digest() == plain {
		t.Fatal("digest ignores scripts")
	}
	buf.Reset()
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= noScripts {
		t.Fatal("snapshot has no scripting section")
	}
	r := New()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r.Digest() != s.Digest() {
		t.Fatal("restored digest differs")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"}, ":1\r\n"},
		{[]string{"FCALL", "f", "0", "x"}, "$1\r\nx\r\n"},
		{[]string{"GET", "k"}, "$1\r\nv\r\n"},
	} {
		if got := exec(r, e, c.args...); got != c.want {
			t.Errorf("%q after restore: %q, want %q", c.args, got, c.want)
		}
	}
	// Corrupting the section is caught.
	bad := bytes.Clone(buf.Bytes())
	bad[noScripts-32] = 'X'
	if err := New().Restore(bytes.NewReader(bad)); err == nil {
		t.Fatal("corrupt scripting section restored")
	}
}

// BenchmarkEvalSha measures a cached script's run: pooled state, compiled
// once.
func BenchmarkEvalSha(b *testing.B) {
	s := New()
	e := newTestEnv(1)
	sha := strings.TrimSpace(strings.Split(exec(s, e, "SCRIPT", "LOAD", "return redis.call('set', KEYS[1], ARGV[1])"), "\r\n")[1])
	args := [][]byte{[]byte("EVALSHA"), []byte(sha), []byte("1"), []byte("k"), []byte("v")}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = s.Exec(out[:0], e, args)
	}
}

// TestScriptSelectDiff: SELECT inside a script switches the database of
// the script's later calls only, never the caller's (as Redis 7), and its
// errors are Redis's.
func TestScriptSelectDiff(t *testing.T) {
	runDiffDB(t, []step{
		{args: []string{"SELECT", "2"}},
		{args: []string{"EVAL", "redis.call('select', 3) redis.call('set', 'k', 'three') return redis.call('get', 'k')", "0"}},
		{args: []string{"GET", "k"}},
		{args: []string{"SELECT", "3"}},
		{args: []string{"GET", "k"}},
		{args: []string{"EVAL", "return redis.pcall('select', '99')", "0"}},
		{args: []string{"EVAL", "return redis.pcall('select', 'x')", "0"}},
		{args: []string{"EVAL", "return redis.pcall('select')", "0"}},
		{args: []string{"EVAL", "return redis.call('select', 0)", "0"}},
		{args: []string{"DBSIZE"}},
	})
}

// TestScriptStreamReadDiff: scripts may call XREAD and XREADGROUP, which
// never block inside them, BLOCK or not (as Redis).
func TestScriptStreamReadDiff(t *testing.T) {
	runDiffDB(t, []step{
		{args: []string{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}},
		{args: []string{"EVAL", "return redis.pcall('xread', 'STREAMS', 's', '$')", "1", "s"}},
		{args: []string{"EVAL", "return redis.pcall('xread', 'BLOCK', 0, 'STREAMS', 's', '$')", "1", "s"}},
		{args: []string{"XADD", "s", "1-1", "f", "v"}},
		{args: []string{"EVAL", "return redis.pcall('xreadgroup', 'GROUP', 'g', 'c', 'BLOCK', 0, 'STREAMS', 's', '>')", "1", "s"}},
		{args: []string{"XPENDING", "s", "g"}},
	})
}
