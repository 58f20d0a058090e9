package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// instructionBudget bounds every script run: a replicated script that has
// not finished after this many Lua VM instructions fails, at the same
// instruction on every replica (see budget). Seconds of work (about two
// on an idle core, more on a busy one); a variable so tests can shorten
// it.
var instructionBudget int64 = 1 << 28

// maxScriptString bounds string.rep's result: Redis's largest bulk
// string (proto-max-bulk-len).
const maxScriptString = 512 << 20

// ScriptRun is what a server sees of one script while it runs (BUSY,
// SCRIPT KILL).
type ScriptRun struct {
	// killable: it runs as a read, locally, so stopping it changes no
	// replica's state.
	killable bool
	function bool
	killed   atomic.Bool
	wrote    atomic.Bool
	// abandoned: a speculative run (Env.Speculation) reached a command
	// that must be replicated; killed is set with it, so the run stops at
	// its next instruction whatever pcall the script wraps around it.
	abandoned bool
	// name is the function's (FCALL), command the call's arguments: what
	// FUNCTION STATS shows of a running function. Set before the run is
	// observed; command is valid while it runs.
	name    string
	command [][]byte
}

// Killable reports whether SCRIPT KILL may stop it: a read-only script run
// locally. A replicated script runs on every replica and ends at its
// instruction budget.
func (r *ScriptRun) Killable() bool { return r.killable }

// Function reports whether it is an FCALL (else an EVAL).
func (r *ScriptRun) Function() bool { return r.function }

// Wrote reports whether it has run a write command.
func (r *ScriptRun) Wrote() bool { return r.wrote.Load() }

// Kill asks a killable script to stop at its next instruction.
func (r *ScriptRun) Kill() {
	if r.killable {
		r.killed.Store(true)
	}
}

// ScriptObserver hears of every script that starts and ends (the server's
// BUSY and SCRIPT KILL).
type ScriptObserver interface {
	ScriptStarted(r *ScriptRun)
	ScriptEnded(r *ScriptRun)
	// Running calls fn with the script that has run longest and for how
	// many milliseconds, if one runs (for FUNCTION STATS); r is valid
	// during the call only.
	Running(fn func(r *ScriptRun, ms int64))
}

var (
	errBudget    = errors.New("script exceeded its instruction budget")
	errKilled    = errors.New("script killed")
	errAbandoned = errors.New("speculative script run abandoned at a write")
)

// closedDone is the Done channel of a spent budget.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// budget is the context a script's LState checks once per VM instruction
// (gopher-lua's mainLoopWithContext calls Done every instruction): Done
// counts the calls and reports done after instructionBudget of them, or as
// soon as the run was killed. Counting instructions, not time, stops a
// replicated script at the same point on every replica.
type budget struct {
	left   int64
	run    *ScriptRun
	reason error
}

func (b *budget) Deadline() (time.Time, bool) { return time.Time{}, false }
func (b *budget) Value(any) any               { return nil }
func (b *budget) Err() error                  { return b.reason }

func (b *budget) Done() <-chan struct{} {
	b.left--
	if b.left < 0 {
		b.reason = errBudget
		return closedDone
	}
	if b.run.killed.Load() {
		b.reason = errKilled
		if b.run.abandoned {
			b.reason = errAbandoned
		}
		return closedDone
	}
	return nil
}

var _ context.Context = (*budget)(nil)

// callState is what the redis library functions see of the current run.
type callState struct {
	s *Store
	// db is the database the script was called in: a SELECT inside the
	// script switches s for the rest of the run only (end restores it).
	db *keyspace
	e  *Env
	// cmdEnv is e for the commands the script runs: InScript set.
	cmdEnv   Env
	readOnly bool
	// denyOOM: DenyOOM commands fail, out of memory (Env.OutOfMemory).
	denyOOM bool
	run     *ScriptRun
	// resp3: redis.setresp(3), the script's Lua client speaks RESP3.
	resp3 bool
	// loading collects redis.register_function's functions while a
	// library's code runs (FUNCTION LOAD, and every FCALL: see fcall).
	loading *libraryLoad
}

// luaVM is one Lua state prepared as Redis prepares its own: base, table,
// string, math, coroutine, cjson, bit, cmsgpack and struct, the redis
// library, and globals protected. States are pooled per store and reused across runs; nothing a
// script does outlives its run, as every table it could reach is
// read-only (see protect).
type luaVM struct {
	L *lua.LState
	// globals holds the real globals; env, the read-only proxy every
	// script and function sees as its globals.
	globals, env *lua.LTable
	// redisFull is the redis library of running scripts; redisLoad, the
	// one a library's code sees while FUNCTION LOAD runs it, in
	// loadGlobals, its only global.
	redisFull, redisLoad, loadGlobals *lua.LTable
	// envMeta is env's metatable: its __index is globals, or loadGlobals
	// while a library's code runs.
	envMeta *lua.LTable
	call    callState
	ctx     budget
	rng     rand48
	json    jsonConfig
	// errLine is the script line where the last error this package
	// raised rose (0: none), for the "on @user_script:<line>" of the
	// reply when that error ends the run. (Not a PCall error handler:
	// gopher-lua pushes it on the registry unprotected, so a run that
	// overflowed the registry would panic past PCall.)
	errLine int
	scratch []byte
	conv    []byte // a reply converted to RESP3 (luaCallReply)
	args    [][]byte
	// broken: a panic escaped the state; it is not pooled again.
	broken bool

	// view is the store a read-only run works on: a copy of the shared
	// one, so that a SELECT inside the script switches only its own
	// database (other readers share the store under the read lock).
	view Store

	// replyCounted is the error a run failed with, when a command it
	// called gave it (CallCounter.ScriptDone).
	replyCounted string
}

// protectedMeta marks a metatable as not to be read or replaced by
// scripts.
const protectedMeta = "__metatable"

func newLuaVM() *luaVM {
	// The registry (the value stack) grows as a script needs, to a bound:
	// Redis's own suite unpacks 8000 values into one redis.call; Lua 5.1
	// itself allows 8000 (LUAI_MAXCSTACK). Growing to 64K costs little;
	// to a million, seconds of copying in one unpack.
	L := lua.NewState(lua.Options{SkipOpenLibs: true, RegistrySize: 1024 * 8, RegistryMaxSize: 1024 * 64, RegistryGrowStep: 1024 * 4})
	vm := &luaVM{L: L}
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath}, {lua.CoroutineLibName, lua.OpenCoroutine}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	vm.globals = L.G.Global
	for _, name := range []string{"print", "dofile", "loadfile", "_printregs", "getfenv", "setfenv", "module", "require", "newproxy"} {
		vm.globals.RawSetString(name, lua.LNil)
	}
	vm.setBaseOverrides()
	vm.setCallErrors()
	vm.setUnpack()
	vm.setCoroutines()
	vm.setMathRandom()
	vm.setStringOverrides()
	vm.globals.RawSetString("cjson", newCJSON(L, &vm.json))
	vm.globals.RawSetString("bit", newBitLib(L))
	vm.globals.RawSetString("cmsgpack", newCMsgpack(L, &vm.ctx))
	vm.globals.RawSetString("struct", newStructLib(L))
	vm.redisFull = vm.newRedisLib()
	vm.redisLoad = vm.newRedisLoadLib()

	// Library tables become read-only proxies, and the globals one too.
	for _, name := range []string{"string", "table", "math", "coroutine", "cjson", "bit", "cmsgpack", "struct"} {
		vm.globals.RawSetString(name, vm.protect(vm.globals.RawGetString(name).(*lua.LTable), false))
	}
	vm.redisFull = vm.protect(vm.redisFull, false)
	vm.redisLoad = vm.protect(vm.redisLoad, true)
	vm.globals.RawSetString("redis", vm.redisFull)
	vm.env = vm.protect(vm.globals, true)
	vm.envMeta = vm.env.Metatable.(*lua.LTable)
	// A library's code, while FUNCTION LOAD runs it, sees nothing but
	// its redis table, as in Redis (runLibrary switches env to it).
	vm.loadGlobals = L.NewTable()
	vm.loadGlobals.RawSetString("redis", vm.redisLoad)
	L.SetMetatable(vm.loadGlobals, vm.strictMeta())
	vm.globals.RawSetString("_G", vm.env)
	// Functions made from Go (loadstring's chunks, coroutines) take the
	// state's environment: the proxy, so they cannot write globals either.
	L.Env = vm.env
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		shown := L.NewTable()
		shown.RawSetString("__index", vm.globals.RawGetString("string"))
		mt.RawSetString(protectedMeta, vm.sealed(shown))
	}
	return vm
}

// protect returns a read-only proxy of t: every assignment through it
// fails as in Redis 7.0 ("Attempt to modify a readonly table"), and with
// strict, reading a missing name fails too (Redis's globals protection).
func (vm *luaVM) protect(t *lua.LTable, strict bool) *lua.LTable {
	L := vm.L
	if strict {
		L.SetMetatable(t, vm.strictMeta())
	}
	proxy := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		vm.raise(L, "Attempt to modify a readonly table", true)
		return 0
	}))
	// What getmetatable answers: a read-only table (Redis answers the
	// metatable, read-only too), never mt itself.
	mt.RawSetString(protectedMeta, vm.sealed(L.NewTable()))
	L.SetMetatable(proxy, mt)
	return proxy
}

// strictMeta is a metatable failing every read of a missing name, as
// Redis's globals protection does.
func (vm *luaVM) strictMeta() *lua.LTable {
	mt := vm.L.NewTable()
	mt.RawSetString("__index", vm.L.NewFunction(func(L *lua.LState) int {
		vm.raise(L, "Script attempted to access nonexistent global variable '"+L.ToStringMeta(L.Get(2)).String()+"'", true)
		return 0
	}))
	return mt
}

// sealed makes t read-only in place, for a table no script holds yet.
func (vm *luaVM) sealed(t *lua.LTable) *lua.LTable {
	mt := vm.L.NewTable()
	mt.RawSetString("__newindex", vm.L.NewFunction(func(L *lua.LState) int {
		vm.raise(L, "Attempt to modify a readonly table", true)
		return 0
	}))
	mt.RawSetString(protectedMeta, lua.LFalse)
	vm.L.SetMetatable(t, mt)
	return t
}

// isProtected reports whether v is one of the read-only proxies.
func isProtected(L *lua.LState, v lua.LValue) bool {
	return L.GetMetaField(v, protectedMeta) != lua.LNil
}

// raise raises msg as a Lua error, with the position of the script line
// that caused it in front when withPos.
func (vm *luaVM) raise(L *lua.LState, msg string, withPos bool) {
	src, line := scriptPosition(L, 1)
	vm.errLine = line
	if withPos && line > 0 {
		msg = src + ":" + strconv.Itoa(line) + ": " + msg
	}
	L.Error(lua.LString(msg), 0)
}

// scriptPosition is the source and current line of the nth Lua (not Go)
// function on the stack, counting from the running one (n = 1: the
// script line running now, whether or not a Go function such as
// redis.call or error is between, or was tail-called); line 0 when there
// is none.
func scriptPosition(L *lua.LState, n int) (string, int) {
	for lvl := 0; lvl < 64; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			return "", 0
		}
		if _, err := L.GetInfo("Sl", dbg, nil); err != nil {
			return "", 0
		}
		if dbg.What == "G" || dbg.CurrentLine <= 0 {
			continue
		}
		if n--; n == 0 {
			return dbg.Source, dbg.CurrentLine
		}
	}
	return "", 0
}

// setBaseOverrides replaces the base functions whose gopher-lua behaviour
// differs from what scripts see in Redis: pcall (Redis's turns an error
// table into its message), error (Lua 5.1 puts the position in front of
// numbers too), tostring (numbers as %.14g), and the metatable functions
// (protected tables stay protected; gopher-lua's getmetatable already honours
// __metatable).
func (vm *luaVM) setBaseOverrides() {
	L, g := vm.L, vm.globals
	g.RawSetString("pcall", L.NewFunction(func(L *lua.LState) int {
		L.CheckAny(1)
		nargs := L.GetTop() - 1
		if err := L.PCall(nargs, lua.MultRet, nil); err != nil {
			var obj lua.LValue = lua.LString(err.Error())
			if aerr, ok := err.(*lua.ApiError); ok {
				obj = aerr.Object
			}
			if t, ok := obj.(*lua.LTable); ok {
				if msg, ok := t.RawGetString("err").(lua.LString); ok {
					obj = msg
				}
			}
			L.SetTop(0)
			L.Push(lua.LFalse)
			L.Push(obj)
			return 2
		}
		L.Insert(lua.LTrue, 1)
		return L.GetTop()
	}))
	g.RawSetString("error", L.NewFunction(func(L *lua.LState) int {
		obj := L.Get(1)
		level := L.OptInt(2, 1)
		_, vm.errLine = scriptPosition(L, 1)
		switch obj.(type) {
		case lua.LString, lua.LNumber:
			msg := luaToString(obj)
			if level > 0 {
				if src, line := scriptPosition(L, level); line > 0 {
					msg = src + ":" + strconv.Itoa(line) + ": " + msg
				}
			}
			L.Error(lua.LString(msg), 0)
		default:
			L.Error(obj, 0)
		}
		return 0
	}))
	g.RawSetString("tostring", L.NewFunction(func(L *lua.LState) int {
		v := L.CheckAny(1)
		if n, ok := v.(lua.LNumber); ok {
			L.Push(lua.LString(formatLuaNumber(float64(n))))
			return 1
		}
		L.Push(L.ToStringMeta(v))
		return 1
	}))
	g.RawSetString("setmetatable", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		if isProtected(L, t) {
			vm.raise(L, "Attempt to modify a readonly table", false)
		}
		mt := L.Get(2)
		if _, ok := mt.(*lua.LTable); !ok && mt != lua.LNil {
			L.ArgError(2, "nil or table expected")
		}
		L.SetMetatable(t, mt)
		L.SetTop(1)
		return 1
	}))
	g.RawSetString("rawset", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		if isProtected(L, t) {
			vm.raise(L, "Attempt to modify a readonly table", false)
		}
		t.RawSet(L.CheckAny(2), L.CheckAny(3))
		L.SetTop(1)
		return 1
	}))
	baseToNumber := g.RawGetString("tonumber")
	g.RawSetString("tonumber", L.NewFunction(func(L *lua.LState) int {
		str, isStr := L.Get(1).(lua.LString)
		if L.GetTop() != 1 || !isStr {
			L.Push(baseToNumber)
			L.Insert(L.Get(-1), 1)
			L.Pop(1)
			L.Call(L.GetTop()-1, 1)
			return 1
		}
		if n, ok := parseLuaNumber(string(str)); ok {
			L.Push(lua.LNumber(n))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}))
	// Binary chunks are refused, as Redis refuses them: loadstring of
	// one answers nil (string.dump, which gopher-lua cannot do, makes
	// one).
	baseLoadString := g.RawGetString("loadstring")
	g.RawSetString("loadstring", L.NewFunction(func(L *lua.LState) int {
		if src, ok := L.Get(1).(lua.LString); ok && strings.HasPrefix(string(src), "\x1b") {
			L.Push(lua.LNil)
			L.Push(lua.LString("binary chunks are not allowed"))
			return 2
		}
		L.Push(baseLoadString)
		L.Insert(L.Get(-1), 1)
		L.Pop(1)
		L.Call(L.GetTop()-1, lua.MultRet)
		return L.GetTop()
	}))
	g.RawSetString("gcinfo", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(0))
		return 1
	}))
}

// parseLuaNumber reads a number as Lua 5.1's tonumber does: decimal
// (strtod's syntax) or hexadecimal after 0x, spaces around allowed.
func parseLuaNumber(s string) (float64, bool) {
	t := strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(t), "0x"); ok && h != "" {
		u, err := strconv.ParseUint(h, 16, 64)
		return float64(u), err == nil
	}
	if t == "" || strings.ContainsAny(t, "_") {
		return 0, false
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// setStringOverrides bounds string.rep and gives string.dump a binary
// chunk's look (gopher-lua cannot dump; loadstring refuses binary chunks,
// as Redis's does).
func (vm *luaVM) setStringOverrides() {
	L := vm.L
	strlib := vm.globals.RawGetString("string").(*lua.LTable)
	rep := strlib.RawGetString("rep")
	strlib.RawSetString("rep", L.NewFunction(func(L *lua.LState) int {
		// One call must not allocate without bound on every replica
		// (instructions are counted, not what a Go function does).
		if n := L.OptInt(2, 0); n > 0 && int64(len(L.CheckString(1)))*int64(n) > maxScriptString {
			L.RaiseError("resulting string too large")
		}
		L.Push(rep)
		L.Insert(L.Get(-1), 1)
		L.Pop(1)
		L.Call(L.GetTop()-1, 1)
		return 1
	}))
	strlib.RawSetString("dump", L.NewFunction(func(L *lua.LState) int {
		L.CheckFunction(1)
		L.Push(lua.LString("\x1bLua binary chunks are not supported"))
		return 1
	}))
}

// setCoroutines makes coroutines count against the run's budget:
// gopher-lua gives a new thread context.WithCancel of its parent's, which
// never sees a budget that was not spent when the thread was made, so a
// loop inside a coroutine would run forever. coroutine.create sets the
// thread's context to the budget itself; wrap is rebuilt on that create.
func (vm *luaVM) setCoroutines() {
	L := vm.L
	co := vm.globals.RawGetString("coroutine").(*lua.LTable)
	create := co.RawGetString("create")
	co.RawSetString("create", L.NewFunction(func(L *lua.LState) int {
		L.Push(create)
		L.Insert(L.Get(-1), 1)
		L.Pop(1)
		L.Call(L.GetTop()-1, 1)
		if th, ok := L.Get(-1).(*lua.LState); ok && L.Context() != nil {
			th.SetContext(L.Context())
		}
		return 1
	}))
	err := L.DoString(`
local create, resume, unpack, select, error = coroutine.create, coroutine.resume, unpack, select, error
local function pack(...) return select('#', ...), {...} end
coroutine.wrap = function(f)
	local co = create(f)
	return function(...)
		local n, r = pack(resume(co, ...))
		if not r[1] then error(r[2], 0) end
		return unpack(r, 2, n)
	end
end`)
	if err != nil {
		panic("store: coroutine.wrap: " + err.Error())
	}
}

// luaToString converts a string or number as Lua 5.1's lua_tostring does.
func luaToString(v lua.LValue) string {
	if n, ok := v.(lua.LNumber); ok {
		return formatLuaNumber(float64(n))
	}
	return lua.LVAsString(v)
}

// formatLuaNumber formats n as Lua 5.1 does (LUA_NUMBER_FMT, "%.14g").
func formatLuaNumber(n float64) string {
	switch {
	case math.IsInf(n, 1):
		return "inf"
	case math.IsInf(n, -1):
		return "-inf"
	case math.IsNaN(n):
		return "nan"
	}
	return strconv.FormatFloat(n, 'g', 14, 64)
}

// formatArgNumber appends a number given to redis.call as Redis 7.0
// writes it: "%.17g", every digit a double carries.
func formatArgNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', 17, 64)
}

// checkNumber is argument n as a number, a numeric string converted, as
// Lua 5.1's luaL_checknumber takes it (gopher-lua's wants a number).
func checkNumber(L *lua.LState, n int) float64 { return cCheckNumber(L, n) }

// rand48 is the generator behind scripts' math.random: POSIX's drand48
// family, as Redis uses its own copy of it, seeded from the run's Env so
// every replica draws the same numbers.
type rand48 struct{ x uint64 }

func (r *rand48) seed(s int32) { r.x = uint64(uint32(s))<<16 | 0x330e }

func (r *rand48) next() int32 {
	r.x = (0x5deece66d*r.x + 0xb) & (1<<48 - 1)
	return int32(r.x >> 17)
}

func (vm *luaVM) setMathRandom() {
	L := vm.L
	m := vm.globals.RawGetString("math").(*lua.LTable)
	m.RawSetString("random", L.NewFunction(func(L *lua.LState) int {
		const max = math.MaxInt32
		r := float64(vm.rng.next()%max) / max
		switch L.GetTop() {
		case 0:
			L.Push(lua.LNumber(r))
		case 1:
			u := int(checkNumber(L, 1))
			if u < 1 {
				cArgError(L, 1, "interval is empty")
			}
			L.Push(lua.LNumber(math.Floor(r*float64(u)) + 1))
		case 2:
			l, u := int(checkNumber(L, 1)), int(checkNumber(L, 2))
			if l > u {
				cArgError(L, 2, "interval is empty")
			}
			L.Push(lua.LNumber(math.Floor(r*float64(u-l+1)) + float64(l)))
		default:
			L.RaiseError("wrong number of arguments")
		}
		return 1
	}))
	m.RawSetString("randomseed", L.NewFunction(func(L *lua.LState) int {
		vm.rng.seed(int32(checkNumber(L, 1)))
		return 0
	}))
}

// Redis's log levels and replication flags, as the redis library offers
// them.
var redisConstants = []struct {
	name string
	v    int
}{
	{"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3},
	{"REPL_NONE", 0}, {"REPL_AOF", 1}, {"REPL_SLAVE", 2}, {"REPL_REPLICA", 2}, {"REPL_ALL", 3},
}

const (
	redisVersion    = "7.0.15"
	redisVersionNum = 0x07000f
)

func (vm *luaVM) newRedisLib() *lua.LTable {
	L := vm.L
	t := vm.newRedisCommon()
	fns := map[string]lua.LGFunction{
		"call":  func(L *lua.LState) int { return vm.redisCall(L, true) },
		"pcall": func(L *lua.LState) int { return vm.redisCall(L, false) },
		"error_reply": func(L *lua.LState) int {
			msg := L.CheckString(1)
			if !strings.HasPrefix(msg, "-") {
				msg = "-" + msg
			}
			L.Push(errorTable(L, redisErrorText(msg)))
			return 1
		},
		"status_reply": func(L *lua.LState) int {
			st := L.NewTable()
			st.RawSetString("ok", lua.LString(L.CheckString(1)))
			L.Push(st)
			return 1
		},
		"sha1hex": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				vm.raise(L, "wrong number of arguments", true)
			}
			sum := sha1.Sum([]byte(luaToString(L.Get(1))))
			L.Push(lua.LString(hex.EncodeToString(sum[:])))
			return 1
		},
		"set_repl": func(L *lua.LState) int {
			if L.GetTop() != 1 {
				vm.raiseRedis(L, "ERR redis.set_repl() requires one argument.")
			}
			if f := L.CheckInt(1); f < 0 || f > 3 {
				vm.raiseRedis(L, "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
			}
			return 0
		},
		"replicate_commands": func(L *lua.LState) int {
			L.Push(lua.LTrue)
			return 1
		},
		"breakpoint": func(L *lua.LState) int {
			L.Push(lua.LFalse)
			return 1
		},
		"debug": func(L *lua.LState) int { return 0 },
		"acl_check_cmd": func(L *lua.LState) int {
			if L.GetTop() == 0 {
				vm.raiseRedis(L, "ERR Please specify at least one argument for this redis lib call")
			}
			args := make([][]byte, L.GetTop())
			for i := range args {
				args[i] = []byte(luaToString(L.Get(i + 1)))
			}
			if Lookup(args[0]) == nil && !ACLCommandKnown(args) {
				vm.raiseRedis(L, "ERR Invalid command passed to redis.acl_check_cmd()")
			}
			denied, _ := vm.call.e.ACL.Check(args)
			L.Push(lua.LBool(denied == ACLOK))
			return 1
		},
	}
	for name, fn := range fns {
		t.RawSetString(name, L.NewFunction(fn))
	}
	t.RawSetString("setresp", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			vm.raiseRedis(L, "ERR redis.setresp() requires one argument.")
		}
		v := L.CheckInt(1)
		if v != 2 && v != 3 {
			vm.raiseRedis(L, "ERR RESP version must be 2 or 3.")
		}
		vm.call.resp3 = v == 3
		return 0
	}))
	return t
}

// newRedisCommon is what both redis libraries hold: logging, constants
// and the version.
func (vm *luaVM) newRedisCommon() *lua.LTable {
	L := vm.L
	t := L.NewTable()
	for _, c := range redisConstants {
		t.RawSetString(c.name, lua.LNumber(c.v))
	}
	t.RawSetString("REDIS_VERSION", lua.LString(redisVersion))
	t.RawSetString("REDIS_VERSION_NUM", lua.LNumber(redisVersionNum))
	t.RawSetString("log", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() < 2 {
			vm.raiseRedis(L, "ERR redis.log() requires two arguments or more.")
		}
		return 0 // logged nowhere: the server keeps no log of scripts'
	}))
	return t
}

// raiseRedis raises a Redis error (an error table, as redis.call raises).
func (vm *luaVM) raiseRedis(L *lua.LState, msg string) {
	vm.raiseRedisTable(L, errorTable(L, msg))
}

// raiseRedisTable raises an error table, noting the script line.
func (vm *luaVM) raiseRedisTable(L *lua.LState, t *lua.LTable) {
	_, vm.errLine = scriptPosition(L, 1)
	L.Error(t, 0)
}

// errorTable is a Redis error reply as Lua sees it: {err=msg}.
func errorTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	return t
}

// countedErrorKey marks an error table as a called command's error,
// counted in errorstats when it happened, as Redis 7.0 marks it: a script
// that fails with it does not count it again (see CallCounter).
const countedErrorKey = "ignore_error_stats_update"

// commandErrorTable is errorTable for a command's error: a reply, or its
// refusal before it ran.
func commandErrorTable(L *lua.LState, msg string) *lua.LTable {
	t := errorTable(L, msg)
	t.RawSetString(countedErrorKey, lua.LTrue)
	return t
}

// countedError is the message of v, if it is a command's error table.
func countedError(v lua.LValue) (string, bool) {
	t, ok := v.(*lua.LTable)
	if !ok || t.RawGetString(countedErrorKey) != lua.LTrue {
		return "", false
	}
	msg, ok := t.RawGetString("err").(lua.LString)
	return string(msg), ok
}

// redisErrorText makes an error reply's text as Redis's scripts see it:
// "CODE message", with the code ERR when the text brings none ("-" in
// front marks one), and no trailing newline.
func redisErrorText(s string) string {
	code, msg := "ERR", s
	if strings.HasPrefix(s, "-") {
		if i := strings.IndexByte(s, ' '); i >= 0 {
			code, msg = s[1:i], s[i+1:]
		} else {
			msg = s[1:]
		}
	}
	return code + " " + strings.TrimRight(msg, "\r\n")
}

// commands scripts may not call: Redis's noscript commands (and the
// transactions, Pub/Sub and connection ones this store does not know).
// XREAD and XREADGROUP may be called: inside a script they never block.
var noScriptCommands = map[string]bool{
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "fcall": true, "fcall_ro": true,
	"script": true, "function": true, "multi": true, "exec": true, "discard": true, "watch": true,
	"unwatch": true, "subscribe": true, "psubscribe": true, "unsubscribe": true, "punsubscribe": true,
	"ssubscribe": true, "sunsubscribe": true, "hello": true, "config": true, "debug": true,
	"blpop": true, "brpop": true, "blmove": true, "brpoplpush": true, "blmpop": true, "bzpopmin": true,
	"bzpopmax": true, "bzmpop": true, "wait": true, "shutdown": true,
	"monitor": true, "sync": true, "psync": true, "replicaof": true, "slaveof": true, "save": true,
	"bgsave": true, "bgrewriteaof": true, "auth": true, "quit": true, "reset": true, "cluster": true,
}

// redisCall is redis.call (raise: errors become Lua errors) and
// redis.pcall (errors are returned as {err=...}).
func (vm *luaVM) redisCall(L *lua.LState, raise bool) int {
	fail := func(msg string) int {
		if raise {
			vm.raiseRedis(L, msg)
		}
		L.Push(errorTable(L, msg))
		return 1
	}
	// reject is fail for a command refused before it ran, which counts
	// as its rejected call (cmd nil: by its name, if the server knows it).
	reject := func(cmd *Command, msg string) int {
		vm.noteCall(cmd, true, msg)
		t := commandErrorTable(L, msg)
		if raise {
			vm.raiseRedisTable(L, t)
		}
		L.Push(t)
		return 1
	}
	n := L.GetTop()
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	vm.args = vm.args[:0]
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			vm.args = append(vm.args, []byte(string(v)))
		case lua.LNumber:
			vm.args = append(vm.args, formatArgNumber(nil, float64(v)))
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	c := Lookup(vm.args[0])
	var denied ACLDenial // the script's user may not run it (acl.go)
	var name [32]byte
	lower := lowerInto(name[:0], vm.args[0])
	switch {
	case string(lower) == "time":
		vm.noteCall(nil, false, "")
		return vm.pushTime(L)
	case string(lower) == "select":
		return vm.selectDB(L, raise, reject)
	case string(lower) == "debug" && vm.call.s != nil && vm.call.s.scripts.denyOff:
		vm.scratch = vm.debugFromScript(vm.args)
		vm.noteReply(nil, vm.scratch)
		return vm.pushReply(L, vm.scratch, raise, fail)
	case noScriptCommands[string(lower)]:
		return reject(c, "ERR This Redis command is not allowed from script")
	case c == nil || c.Flags&Internal != 0:
		return reject(nil, "ERR Unknown Redis command called from script")
	case !c.CheckArity(len(vm.args)):
		return reject(c, "ERR Wrong number of args calling Redis command from script")
	case vm.call.e.ACL != nil && scriptDenied(vm.call.e, vm.args, &denied):
		return reject(c, aclScriptError(denied))
	case c.Flags&Write != 0 && vm.call.e.NoReplicas:
		return reject(c, "NOREPLICAS Not enough good replicas to write.")
	case c.Flags&DenyOOM != 0 && vm.call.denyOOM:
		return reject(c, "OOM command not allowed when used memory > 'maxmemory'.")
	case c.Flags&Write != 0 && vm.call.readOnly && vm.call.e.Speculation != nil:
		return vm.abandon(L)
	case c.Flags&Write != 0 && vm.call.readOnly:
		return reject(c, "ERR Write commands are not allowed from read-only scripts.")
	case c.Flags&Blocking != 0 && blocksWhenAllowed(vm.args):
		return reject(c, "ERR "+c.Name+" command is not allowed with BLOCK option from scripts")
	}
	if c.Flags&Write != 0 {
		vm.call.run.wrote.Store(true)
		vm.call.s.ws.nowMs, vm.call.s.ws.access = vm.call.cmdEnv.NowMs, vm.call.cmdEnv.Access
	}
	vm.scratch = c.run(vm.call.s, &vm.call.cmdEnv, vm.scratch[:0], vm.args)
	if c.Flags&Write != 0 && vm.call.e.Scripted != nil {
		vm.call.e.Scripted(vm.call.s.db, vm.args, vm.scratch)
	}
	vm.noteReply(c, vm.scratch)
	return vm.pushReply(L, vm.luaCallReply(vm.scratch, vm.args), raise, fail)
}

// noteCall tells the run's CallCounter of a command the script called:
// cmd (nil: known by its name, vm.args[0]), refused before it ran or not,
// and its error ("" if none).
func (vm *luaVM) noteCall(cmd *Command, rejected bool, errText string) {
	if cc := vm.call.e.Calls; cc != nil {
		cc.ScriptCall(cmd, vm.args, rejected, errText)
	}
}

// noteReply is noteCall for a command that ran and answered reply.
func (vm *luaVM) noteReply(cmd *Command, reply []byte) {
	if vm.call.e.Calls == nil {
		return
	}
	errText := ""
	if len(reply) > 0 && reply[0] == '-' {
		line, _, _ := strings.Cut(string(reply[1:]), "\r\n")
		errText = line
	}
	vm.noteCall(cmd, false, errText)
}

// pushReply hands the script a command's reply b (in its Lua client's
// protocol), raising it when it is an error and raise is set.
func (vm *luaVM) pushReply(L *lua.LState, b []byte, raise bool, fail func(string) int) int {
	conv := respToLua
	if vm.call.resp3 {
		conv = respToLua3
	}
	v, rest, ok := conv(L, b)
	if !ok || len(rest) != 0 {
		return fail("ERR gomu: unreadable reply from the store")
	}
	if t, isErr := v.(*lua.LTable); isErr && raise {
		if _, e := t.RawGetString("err").(lua.LString); e && b[0] == '-' {
			vm.raiseRedisTable(L, t)
		}
	}
	L.Push(v)
	return 1
}

// abandon ends a speculative run at its first write (or PUBLISH: any
// command that must go through the log) before running it: the caller
// drops the run's reply and replicates the call instead. The run stops at
// its next instruction even if a pcall catches the error raised here.
func (vm *luaVM) abandon(L *lua.LState) int {
	run := vm.call.run
	run.abandoned = true
	run.killed.Store(true)
	vm.call.e.Speculation.Wrote = true
	// Raised as gopher-lua raises (Error closes the open upvalues), by a
	// Panic that brings its own stack trace: PCall would format one, most
	// of an abandoned run's cost, for a reply that is dropped. PCall puts
	// its Panic back as it returns.
	L.Panic = panicAbandoned
	L.Error(lua.LString("gomu: speculative run abandoned"), 0)
	return 0
}

// panicAbandoned is abandon's Panic: gopher-lua's own without a trace.
func panicAbandoned(L *lua.LState) {
	panic(&lua.ApiError{Type: lua.ApiErrorRun, Object: L.Get(-1), StackTrace: "(speculative run abandoned)"})
}

func lowerInto(dst, b []byte) []byte {
	if len(b) > cap(dst) {
		return dst
	}
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// blocksWhenAllowed reports whether a Blocking command's args ask to block
// (XREAD … BLOCK; the blocking pops never reach here, scripts may not call
// them): its spec's timeout, negative when it does not block.
func blocksWhenAllowed(args [][]byte) bool {
	ms, ok := BlockTimeout(args)
	return ok && ms >= 0
}

// selectDB is SELECT from a script: it switches the database of the
// script's later calls, not the caller's (as Redis 7).
func (vm *luaVM) selectDB(L *lua.LState, raise bool, reject func(*Command, string) int) int {
	if len(vm.args) != 2 {
		return reject(nil, "ERR Wrong number of args calling Redis command from script")
	}
	db, msg := ParseDB(vm.args[1])
	if msg != "" {
		vm.noteCall(nil, false, msg) // it ran, and failed
		t := commandErrorTable(L, msg)
		if raise {
			vm.raiseRedisTable(L, t)
		}
		L.Push(t)
		return 1
	}
	vm.noteCall(nil, false, "")
	vm.call.s.keyspace = vm.call.s.dbs[db]
	t := L.CreateTable(0, 1)
	t.RawSetString("ok", lua.LString("OK"))
	L.Push(t)
	return 1
}

// pushTime answers TIME from a script: the run's Env clock, so a
// replicated script reads the same time on every replica.
func (vm *luaVM) pushTime(L *lua.LState) int {
	ms := vm.call.e.NowMs
	t := L.CreateTable(2, 0)
	t.RawSetInt(1, lua.LString(strconv.FormatInt(ms/1000, 10)))
	t.RawSetInt(2, lua.LString(strconv.FormatInt(ms%1000*1000, 10)))
	L.Push(t)
	return 1
}

// respHeader splits a RESP reply's first line (after its type byte) from
// what follows it.
func respHeader(b []byte) (line string, rest []byte, ok bool) {
	if len(b) < 3 {
		return "", nil, false
	}
	i := strings.Index(string(b), "\r\n")
	if i < 1 {
		return "", nil, false
	}
	return string(b[1:i]), b[i+2:], true
}

// respToLua converts one RESP2 reply to Lua as Redis does: integers to
// numbers, bulk strings to strings, nulls to false, arrays to tables,
// statuses to {ok=...} and errors to {err=...}.
func respToLua(L *lua.LState, b []byte) (lua.LValue, []byte, bool) {
	line, rest, ok := respHeader(b)
	if !ok {
		return nil, nil, false
	}
	switch b[0] {
	case '+':
		t := L.NewTable()
		t.RawSetString("ok", lua.LString(line))
		return t, rest, true
	case '-':
		return commandErrorTable(L, redisErrorText("-"+line)), rest, true
	case ':':
		n, err := strconv.ParseInt(line, 10, 64)
		return lua.LNumber(n), rest, err == nil
	case '$':
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, nil, false
		}
		if n < 0 {
			return lua.LFalse, rest, true
		}
		if len(rest) < n+2 {
			return nil, nil, false
		}
		return lua.LString(rest[:n]), rest[n+2:], true
	case '*':
		n, err := strconv.Atoi(line)
		if err != nil {
			return nil, nil, false
		}
		if n < 0 {
			return lua.LFalse, rest, true
		}
		t := L.CreateTable(n, 0)
		for j := 1; j <= n; j++ {
			var v lua.LValue
			var ok bool
			if v, rest, ok = respToLua(L, rest); !ok {
				return nil, nil, false
			}
			t.RawSetInt(j, v)
		}
		return t, rest, true
	}
	return nil, nil, false
}

func appendBulkBytes(dst []byte, s string) []byte {
	dst = append(append(dst, '$'), strconv.Itoa(len(s))...)
	dst = append(append(dst, "\r\n"...), s...)
	return append(dst, "\r\n"...)
}

func appendInt(dst []byte, n int64) []byte {
	dst = strconv.AppendInt(append(dst, ':'), n, 10)
	return append(dst, "\r\n"...)
}

// oneLine replaces the line breaks of an error or status text with spaces,
// as Redis does, so the reply stays one protocol line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := []byte(s) // bytes, not runes: the text need not be UTF-8
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
