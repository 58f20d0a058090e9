package store

// Lua scripting as Redis 7.0 has it: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO,
// SCRIPT, FUNCTION, FCALL and FCALL_RO, on gopher-lua (Lua 5.1, the
// language Redis embeds, in pure Go).
//
// Scripts are replicated verbatim: EVAL, EVALSHA and FCALL of a script that
// may write, and SCRIPT LOAD/FLUSH and FUNCTION LOAD/DELETE/FLUSH/RESTORE,
// are write commands, applied in log order on every replica with the
// leader's Env: math.random draws from a generator seeded by Env.Rand, TIME
// inside a script is Env.NowMs. The script cache and the function libraries
// are replicated state (scriptState: in snapshots and the digest). EVAL_RO,
// EVALSHA_RO, FCALL_RO and scripts declared "#!lua flags=no-writes" only
// read: the server runs them locally (Env.ReadOnly), and they refuse write
// commands. A server may also run a script that may write locally first,
// speculatively (Env.Speculation): such a run is abandoned, silently and
// changing nothing, at its first write, and the server then replicates the
// call; until then SCRIPT KILL may stop it.
//
// Every run has an instruction budget (instructionBudget): a script still
// running after it fails, at the same instruction on every replica, and
// keeps the writes it made before, as Redis keeps a failed script's writes.
//
// Differences from Redis 7.0: EVAL_RO, and EVAL of a no-writes script, do
// not add it to the script cache (they run under the read lock; only a
// replicated EVAL or SCRIPT LOAD adds it, which the server proposes after
// a speculative EVAL of a new body); math.random is seeded per run from the Env (not
// once per server); library-level state of a function library (its locals)
// does not persist between FCALLs, as the library's code runs again for
// every call (replicas could not agree on it otherwise), and cjson's
// settings last one run; a run stops at its instruction budget, not after
// lua-time-limit, and FUNCTION LOAD at an eighth of it ("FUNCTION LOAD
// timeout"); redis.setresp(3) is accepted but replies still reach scripts
// as RESP2's; redis.log logs nowhere; compile errors and some of
// gopher-lua's runtime error texts (calling, indexing or concatenating a
// table or a string that cannot be, comparing two values of one type, ...;
// Lua 5.1's texts for nil, booleans and numbers are matched, lua_compat.go)
// are gopher-lua's, as is the formatting of
// non-integral numbers concatenated into strings (tostring uses Lua's
// %.14g, redis.call's arguments Redis's %.17g); pairs over a library table
// (string, math, ...) yields nothing, as scripts see read-only proxies of
// them; FUNCTION LIST orders libraries and functions by name; FUNCTION
// DUMP's payload is this server's own format (RESTORE reads only it);
// FUNCTION STATS waits for a replicated script (it runs under the write
// lock) and reports only the scripts of its own replica; commands only the
// server knows (INFO, CLIENT, CONFIG, ...) are unknown to scripts.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// scriptState is the server-wide scripting state: the script cache and the
// function libraries (replicated), and a pool of Lua states (not).
type scriptState struct {
	scripts map[string]*script // by lowercase SHA-1 hex
	libs    map[string]*library
	funcs   map[string]*libFunction // every library's, by name

	mu   sync.Mutex // guards free: reads run scripts concurrently
	free []*luaVM

	// denyOff: DEBUG SET-DISABLE-DENY-SCRIPTS 1, scripts may call DEBUG
	// (DenyScriptsCommand; a test knob, not snapshotted).
	denyOff bool
}

func newScriptState() *scriptState {
	return &scriptState{scripts: map[string]*script{}, libs: map[string]*library{}, funcs: map[string]*libFunction{}}
}

// empty reports whether there is nothing to snapshot.
func (st *scriptState) empty() bool { return len(st.scripts) == 0 && len(st.libs) == 0 }

const maxPooledVMs = 8

func (st *scriptState) getVM() *luaVM {
	st.mu.Lock()
	if n := len(st.free); n > 0 {
		vm := st.free[n-1]
		st.free = st.free[:n-1]
		st.mu.Unlock()
		return vm
	}
	st.mu.Unlock()
	return newLuaVM()
}

func (st *scriptState) putVM(vm *luaVM) {
	if vm.broken {
		vm.L.Close()
		return
	}
	vm.call = callState{}
	vm.view = Store{}
	vm.L.SetTop(0)
	if cap(vm.scratch) > 1<<20 {
		vm.scratch = nil
	}
	st.mu.Lock()
	if len(st.free) < maxPooledVMs {
		st.free = append(st.free, vm)
	}
	st.mu.Unlock()
}

// script is one cached EVAL script.
type script struct {
	sha      string
	body     []byte
	proto    *lua.FunctionProto
	noWrites bool // "#!lua flags=no-writes"
	shebang  bool
}

// scriptFlagNames are the flags a shebang may give (Redis 7.0's).
var scriptFlagNames = []string{"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}

// parseScriptShebang reads an EVAL script's "#!lua flags=..." line: whether
// there is one, whether it says no-writes, and Redis's error if it is
// wrong. body is what to compile: the shebang line blanked, so line
// numbers hold.
func parseScriptShebang(src []byte) (shebang, noWrites bool, body []byte, errMsg string) {
	if !bytes.HasPrefix(src, []byte("#!")) {
		return false, false, src, ""
	}
	end := bytes.IndexByte(src, '\n')
	if end < 0 {
		end = len(src)
	}
	parts := strings.Fields(string(src[2:end]))
	if len(parts) == 0 || parts[0] != "lua" {
		engine := ""
		if len(parts) > 0 {
			engine = parts[0]
		}
		return true, false, nil, "ERR Unexpected engine in script shebang: " + engine
	}
	for _, p := range parts[1:] {
		flags, ok := strings.CutPrefix(p, "flags=")
		if !ok {
			return true, false, nil, "ERR Unknown lua shebang option: " + p
		}
		for _, f := range strings.Split(flags, ",") {
			if f == "" {
				continue
			}
			if !slices.Contains(scriptFlagNames, f) {
				return true, false, nil, "ERR Unexpected flag in script shebang: " + f
			}
			noWrites = noWrites || f == "no-writes"
		}
	}
	return true, noWrites, append(make([]byte, 0, len(src)), src[end:]...), ""
}

// compileLua compiles src under chunk name (user_script, user_function),
// with the error worded as Lua words a syntax error where it can be.
func compileLua(src []byte, name string) (*lua.FunctionProto, string) {
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		if pe, ok := err.(*parse.Error); ok {
			tok := pe.Token
			if pe.Pos.Line == parse.EOF || tok == "EOF" {
				tok = "<eof>"
			}
			line := pe.Pos.Line
			if line == parse.EOF {
				line = bytes.Count(src, []byte("\n")) + 1
			}
			return nil, name + ":" + strconv.Itoa(line) + ": " + pe.Message + " near '" + tok + "'"
		}
		return nil, err.Error()
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, err.Error()
	}
	return proto, ""
}

func sha1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

// newScript compiles an EVAL script (not yet cached).
func newScript(src []byte) (*script, string) {
	shebang, noWrites, body, msg := parseScriptShebang(src)
	if msg != "" {
		return nil, msg
	}
	proto, msg := compileLua(body, "user_script")
	if msg != "" {
		return nil, "ERR Error compiling script (new function): " + msg
	}
	return &script{sha: sha1Hex(src), body: append([]byte(nil), src...), proto: proto, noWrites: noWrites, shebang: shebang}, ""
}

func init() {
	register(
		&Command{Name: "eval", Arity: -3, Flags: Write | Scripted | MovableKeys, Group: "scripting",
			Summary: "Executes a server-side Lua script.", run: cmdEval},
		&Command{Name: "evalsha", Arity: -3, Flags: Write | Scripted | MovableKeys, Group: "scripting",
			Summary: "Executes a server-side Lua script by SHA1 digest.", run: cmdEval},
		&Command{Name: "eval_ro", Arity: -3, Flags: ReadOnly | MovableKeys, Group: "scripting",
			Summary: "Executes a read-only server-side Lua script.", run: cmdEval},
		&Command{Name: "evalsha_ro", Arity: -3, Flags: ReadOnly | MovableKeys, Group: "scripting",
			Summary: "Executes a read-only server-side Lua script by SHA1 digest.", run: cmdEval},
		&Command{Name: "fcall", Arity: -3, Flags: Write | Scripted | MovableKeys, Group: "scripting",
			Summary: "Invokes a function.", run: cmdFCall},
		&Command{Name: "fcall_ro", Arity: -3, Flags: ReadOnly | MovableKeys, Group: "scripting",
			Summary: "Invokes a read-only function.", run: cmdFCall},
		&Command{Name: "script", Arity: -2, Flags: Write | Scripted, Group: "scripting",
			Summary: "A container for Lua scripts management commands.", run: cmdScript},
		&Command{Name: "function", Arity: -2, Flags: Write | Scripted, Group: "scripting",
			Summary: "A container for function commands.", run: cmdFunction},
	)
}

// CacheScriptCommand is the internal write command a server proposes to
// add an EVAL'd body to every replica's script cache when a speculative
// run answered the EVAL (Speculation.Uncached): SCRIPT LOAD's effect,
// without a command of its own in the replication stream (Redis
// propagates nothing for a script that did not write).
const CacheScriptCommand = "gomu.scriptcache"

func init() {
	register(&Command{Name: CacheScriptCommand, Arity: 2, Flags: Write | Internal, Group: "scripting",
		Summary: "Add a script to the script cache (an EVAL answered by its speculative run)",
		run: func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
			return cmdScript(s, e, dst, [][]byte{[]byte("script"), []byte("load"), args[1]})
		}})
}

// ScriptWrites reports whether a call of a Scripted command may change the
// state, so must be replicated; else the server runs it locally as a read.
// It reads the script cache and libraries: call it under the read lock.
func (s *Store) ScriptWrites(args [][]byte) bool {
	var buf [16]byte
	name := string(lowerInto(buf[:0], args[0]))
	sub := ""
	if len(args) > 1 && len(args[1]) <= 16 {
		var b2 [16]byte
		sub = string(lowerInto(b2[:0], args[1]))
	}
	switch name {
	case "eval":
		shebang, noWrites, _, msg := parseScriptShebang(args[1])
		return !(shebang && (noWrites || msg != ""))
	case "evalsha":
		sc := s.scripts.scripts[strings.ToLower(string(args[1]))]
		return sc != nil && !sc.noWrites
	case "fcall":
		f := s.scripts.funcs[nameKey(string(args[1]))]
		return f != nil && !f.noWrites
	case "script":
		return sub == "load" || sub == "flush"
	case "function":
		return sub == "load" || sub == "delete" || sub == "flush" || sub == "restore"
	}
	return true
}

// ScriptDeclaresWrites reports whether a call of a Scripted command runs a
// script with flags (a function, or an EVAL'd script with a shebang) that
// does not declare no-writes: Redis treats such a call as a write command
// before it runs (min-replicas-to-write refuses it then); a script
// without flags is refused at its first write instead. Under the read
// lock.
func (s *Store) ScriptDeclaresWrites(args [][]byte) bool {
	var buf [16]byte
	switch string(lowerInto(buf[:0], args[0])) {
	case "eval":
		shebang, noWrites, _, msg := parseScriptShebang(args[1])
		return shebang && !noWrites && msg == ""
	case "evalsha":
		sc := s.scripts.scripts[strings.ToLower(string(args[1]))]
		return sc != nil && sc.shebang && !sc.noWrites
	case "fcall":
		f := s.scripts.funcs[nameKey(string(args[1]))]
		return f != nil && !f.noWrites
	}
	return false
}

// ScriptDeniedOOM reports whether a call of a Scripted command is refused
// when the server is out of memory, before it runs: as Redis refuses a
// script with flags (a function, or an EVAL'd script with a shebang) that
// declares neither no-writes nor allow-oom. (A script without flags is
// refused at its first write instead.) Under the read lock.
func (s *Store) ScriptDeniedOOM(args [][]byte) bool {
	var buf [16]byte
	switch string(lowerInto(buf[:0], args[0])) {
	case "eval":
		return shebangDeniesOOM(args[1])
	case "evalsha":
		sc := s.scripts.scripts[strings.ToLower(string(args[1]))]
		return sc != nil && shebangDeniesOOM(sc.body)
	case "fcall":
		f := s.scripts.funcs[nameKey(string(args[1]))]
		return f != nil && !slices.Contains(f.flags, "no-writes") && !slices.Contains(f.flags, "allow-oom")
	}
	return false
}

// shebangDeniesOOM reports whether src has a shebang line whose flags
// include neither no-writes nor allow-oom.
func shebangDeniesOOM(src []byte) bool {
	if !bytes.HasPrefix(src, []byte("#!")) {
		return false
	}
	line, _, _ := bytes.Cut(src[2:], []byte("\n"))
	for _, p := range strings.Fields(string(line)) {
		if flags, ok := strings.CutPrefix(p, "flags="); ok {
			for _, f := range strings.Split(flags, ",") {
				if f == "no-writes" || f == "allow-oom" {
					return false
				}
			}
		}
	}
	return true
}

// Speculation is the outcome of a speculative script run (Env.Speculation):
// a server runs a script call that may write first as a read, locally and
// killable, and replicates it only when it turns out to write.
type Speculation struct {
	// Wrote: the run reached a write (or another command that must be
	// replicated, as PUBLISH) and was abandoned there, before running it:
	// nothing changed, and no reply was appended. The call must be
	// replicated.
	Wrote bool
	// Uncached: EVAL's body was not in the script cache, and a read does
	// not add it. Redis caches every EVAL'd script (a later EVALSHA finds
	// it), so the server must still add it through the log (SCRIPT LOAD):
	// the cache is replicated state, every replica must agree on it.
	Uncached bool
}

// parseNumKeys splits a script call's arguments after the script or
// function name into keys and arguments.
func parseNumKeys(args [][]byte) (keys, argv [][]byte, errMsg string) {
	n, err := strconv.ParseInt(string(args[0]), 10, 64)
	switch {
	case err != nil:
		return nil, nil, errNotInt
	case n < 0:
		return nil, nil, "ERR Number of keys can't be negative"
	case n > int64(len(args)-1):
		return nil, nil, "ERR Number of keys can't be greater than number of args"
	}
	return args[1 : 1+n], args[1+n:], ""
}

const errWriteFlagRO = "ERR Can not execute a script with write flag using *_ro command."

func cmdEval(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	name := strings.ToLower(string(args[0]))
	ro := strings.HasSuffix(name, "_ro")
	evalsha := strings.HasPrefix(name, "evalsha")
	if evalsha && len(args[1]) != 40 {
		return append(dst, "-NOSCRIPT No matching script. Please use EVAL.\r\n"...)
	}
	// Redis checks the key count before it looks the script up.
	keys, argv, msg := parseNumKeys(args[2:])
	if msg != "" {
		return errReply(dst, msg)
	}
	var sc *script
	switch {
	case evalsha:
		sc = s.scripts.scripts[strings.ToLower(string(args[1]))]
		if sc == nil {
			return append(dst, "-NOSCRIPT No matching script. Please use EVAL.\r\n"...)
		}
	default:
		sha := sha1Hex(args[1])
		if sc = s.scripts.scripts[sha]; sc == nil {
			var cmsg string
			if sc, cmsg = newScript(args[1]); sc == nil {
				return errReply(dst, cmsg)
			}
			// Only a replicated EVAL caches: a read must not change state.
			// A speculative one leaves it to its server (Speculation).
			if !e.ReadOnly && !ro && !sc.noWrites {
				s.scripts.scripts[sha] = sc
			} else if e.Speculation != nil {
				e.Speculation.Uncached = true
			}
		}
	}
	if ro && sc.shebang && !sc.noWrites {
		return errReply(dst, errWriteFlagRO)
	}
	readOnly := ro || sc.noWrites || e.ReadOnly
	vm := s.scripts.getVM()
	defer s.scripts.putVM(vm)
	run := vm.begin(s, e, readOnly, &ScriptRun{command: args})
	defer vm.end(e, run)
	// A script with flags out of memory ran only if it may (allow-oom,
	// no-writes: see ScriptDeniedOOM); one without is refused its writes.
	vm.call.denyOOM = e.OutOfMemory && !sc.shebang
	vm.globals.RawSetString("KEYS", argsTable(vm.L, keys))
	vm.globals.RawSetString("ARGV", argsTable(vm.L, argv))
	fn := vm.L.NewFunctionFromProto(sc.proto)
	fn.Env = vm.env
	return vm.invokeRun(dst, run, fn, nil, sc.sha, "user_script")
}

func errReply(dst []byte, msg string) []byte {
	return append(append(append(dst, '-'), msg...), "\r\n"...)
}

func argsTable(L *lua.LState, args [][]byte) *lua.LTable {
	t := L.CreateTable(len(args), 0)
	for i, a := range args {
		t.RawSetInt(i+1, lua.LString(a))
	}
	return t
}

// begin prepares vm for run, described (function, name, command) by its
// caller: its call state, a fresh budget, the random generator seeded from
// e, and tells e's observer.
func (vm *luaVM) begin(s *Store, e *Env, readOnly bool, run *ScriptRun) *ScriptRun {
	run.killable = readOnly
	if e.ReadOnly && s != nil {
		vm.view = *s // SELECT in the script must not switch the shared store
		s = &vm.view
	}
	vm.call = callState{s: s, e: e, cmdEnv: *e, readOnly: readOnly, run: run}
	if s != nil { // nil while FUNCTION LOAD runs a library's code
		vm.call.db = s.keyspace
	}
	vm.call.cmdEnv.InScript = true
	vm.ctx = budget{left: instructionBudget, run: run}
	vm.L.SetContext(&vm.ctx)
	var seed int32
	if e.Rand != nil {
		seed = int32(e.Rand.Uint32())
	}
	vm.rng.seed(seed)
	vm.json = defaultJSONConfig
	vm.errLine = 0
	if e.Scripts != nil {
		e.Scripts.ScriptStarted(run)
	}
	return run
}

func (vm *luaVM) end(e *Env, run *ScriptRun) {
	vm.L.RemoveContext()
	if vm.call.s != nil {
		vm.call.s.keyspace = vm.call.db // a SELECT in the script ends with it
	}
	vm.globals.RawSetString("KEYS", lua.LNil)
	vm.globals.RawSetString("ARGV", lua.LNil)
	if e.Scripts != nil {
		e.Scripts.ScriptEnded(run)
	}
}

// invokeRun is invoke for a script or function run: the reply of a
// speculative run abandoned at a write is dropped (its server replicates
// the call instead).
func (vm *luaVM) invokeRun(dst []byte, run *ScriptRun, fn *lua.LFunction, args []lua.LValue, name, source string) []byte {
	vm.replyCounted = ""
	out := vm.invoke(dst, fn, args, name, source)
	if cc := vm.call.e.Calls; cc != nil {
		cc.ScriptDone(run.abandoned, vm.replyCounted)
	}
	if run.abandoned {
		return dst
	}
	return out
}

// CallCounter hears of the commands a script calls (redis.call and
// redis.pcall), for INFO commandstats and errorstats, as Redis 7.0 counts
// them: a call refused before it ran (unknown command, arity, ACL, out of
// memory, a write in a read-only script …) is a rejected call, one that
// ran a call, failed if it answered an error; each error counts in
// errorstats when it happens, and a script that fails with such an error
// (raised by redis.call or returned) does not count it again.
type CallCounter interface {
	// ScriptCall: the script called cmd (nil: a command the store does
	// not run, known by args[0], if at all), with args (valid during the
	// call only); rejected: refused before it ran; errText: its error
	// ("CODE message"), "" when it succeeded.
	ScriptCall(cmd *Command, args [][]byte, rejected bool, errText string)
	// ScriptDone: the run ended. abandoned: a speculative run that gave
	// way to the call's replicated run (its calls do not count);
	// counted: the run's error reply came from a called command's error
	// (its text), counted by ScriptCall already ("": it did not).
	ScriptDone(abandoned bool, counted string)
}

// invoke calls fn with args and appends its reply, or the error as Redis
// words it: "<message> script: <name>, on @<source>:<line>.".
func (vm *luaVM) invoke(dst []byte, fn *lua.LFunction, args []lua.LValue, name, source string) []byte {
	L := vm.L
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if err := vm.pcall(len(args), 1); err != nil {
		if aerr, ok := err.(*lua.ApiError); ok && vm.ctx.reason == nil {
			vm.replyCounted, _ = countedError(aerr.Object)
		}
		return vm.appendRunError(dst, err, name, source)
	}
	vm.replyCounted, _ = countedError(L.Get(-1))
	dst = scriptReply{lua3: vm.call.resp3, client3: vm.call.e.RESP3}.append(dst, L.Get(-1), 0)
	L.Pop(1)
	return dst
}

// pcall is L.PCall, made safe against a panic gopher-lua lets escape
// PCall (one would stop every replica at once): the run fails with it, and
// the state, perhaps inconsistent, is not pooled again.
func (vm *luaVM) pcall(nargs, nret int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			vm.broken = true
			err = fmt.Errorf("gomu: script failed: %v", r)
		}
	}()
	return vm.L.PCall(nargs, nret, nil)
}

func (vm *luaVM) appendRunError(dst []byte, err error, name, source string) []byte {
	msg := vm.errorMessage(err)
	if line := vm.failedLine(err, source); line > 0 {
		msg += " script: " + name + ", on @" + source + ":" + strconv.Itoa(line) + "."
	}
	return errReply(dst, oneLine(msg))
}

// failedLine is the script line a run failed at: the position gopher-lua
// or error() put in front of a message ("user_script:3: ..."), else where
// this package last raised an error.
func (vm *luaVM) failedLine(err error, source string) int {
	if aerr, ok := err.(*lua.ApiError); ok {
		if msg, ok := aerr.Object.(lua.LString); ok {
			if rest, ok := strings.CutPrefix(string(msg), source+":"); ok {
				if i := strings.IndexByte(rest, ':'); i > 0 {
					if n, err := strconv.Atoi(rest[:i]); err == nil {
						return n
					}
				}
			}
		}
	}
	return vm.errLine
}

// errorMessage is the error text of a failed run: a Redis error table's
// message, "ERR " and the text of anything else.
func (vm *luaVM) errorMessage(err error) string {
	switch vm.ctx.reason {
	case errKilled:
		// Redis 7.0 words it so for FUNCTION KILL too.
		return "ERR Script killed by user with SCRIPT KILL..."
	case errAbandoned:
		return "ERR gomu: speculative run abandoned" // the caller discards it
	case errBudget:
		return "ERR gomu: script stopped after its budget of " + strconv.FormatInt(instructionBudget, 10) + " instructions"
	}
	aerr, ok := err.(*lua.ApiError)
	if !ok || aerr.Object == nil {
		return "ERR " + err.Error()
	}
	switch o := aerr.Object.(type) {
	case *lua.LTable:
		if m, ok := o.RawGetString("err").(lua.LString); ok {
			return string(m)
		}
		return "ERR " + o.String()
	case lua.LString, lua.LNumber:
		return "ERR " + luaToString(o)
	default:
		return "ERR " + o.String()
	}
}

func cmdScript(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "load" && len(args) == 3:
		sc := s.scripts.scripts[sha1Hex(args[2])]
		if sc == nil {
			var msg string
			if sc, msg = newScript(args[2]); sc == nil {
				return errReply(dst, msg)
			}
			if !e.ReadOnly {
				s.scripts.scripts[sc.sha] = sc
			}
		}
		return appendBulkBytes(dst, sc.sha)
	case sub == "exists" && len(args) >= 3:
		dst = append(append(dst, '*'), strconv.Itoa(len(args)-2)...)
		dst = append(dst, "\r\n"...)
		for _, a := range args[2:] {
			n := int64(0)
			if s.scripts.scripts[strings.ToLower(string(a))] != nil {
				n = 1
			}
			dst = appendInt(dst, n)
		}
		return dst
	case sub == "flush" && len(args) <= 3:
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "async") && !strings.EqualFold(string(args[2]), "sync") {
			return errReply(dst, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		}
		if !e.ReadOnly {
			s.scripts.scripts = map[string]*script{}
		}
		return append(dst, "+OK\r\n"...)
	case sub == "kill" && len(args) == 2:
		// The server answers SCRIPT KILL; here (inside MULTI) no script
		// can be running.
		return errReply(dst, "NOTBUSY No scripts in execution right now.")
	case sub == "help" && len(args) == 2:
		return appendHelp(dst, scriptHelp)
	case sub == "load" || sub == "exists" || sub == "flush" || sub == "kill" || sub == "help":
		return errReply(dst, "ERR wrong number of arguments for 'script|"+sub+"' command")
	}
	return errReply(dst, "ERR unknown subcommand '"+string(truncate(args[1], 128))+"'. Try SCRIPT HELP.")
}

var scriptHelp = []string{
	"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"EXISTS <sha1> [<sha1> ...]",
	"    Return information about the existence of the scripts in the script cache.",
	"FLUSH [ASYNC|SYNC]",
	"    Flush the Lua scripts cache.",
	"KILL",
	"    Kill the currently executing Lua script (until its first write: then it is replicated, and stops at its instruction budget).",
	"LOAD <script>",
	"    Load a script into the scripts cache without executing it.",
	"HELP",
	"    Prints this help.",
}

// encodeScripts writes the scripting state in the snapshot's encoding:
// scripts by SHA, then libraries by name, each as its source.
func (st *scriptState) encodeTo(w *bufio.Writer) {
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	bs := func(b []byte) { uv(uint64(len(b))); w.Write(b) }
	shas := make([]string, 0, len(st.scripts))
	for sha := range st.scripts {
		shas = append(shas, sha)
	}
	slices.Sort(shas)
	uv(uint64(len(shas)))
	for _, sha := range shas {
		bs(st.scripts[sha].body)
	}
	names := st.libraryNames()
	uv(uint64(len(names)))
	for _, n := range names {
		bs(st.libs[n].code)
	}
}

func (st *scriptState) libraryNames() []string {
	names := make([]string, 0, len(st.libs))
	for n := range st.libs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decodeScripts reads what encodeTo wrote, compiling every script and
// loading every library again.
func decodeScripts(d *snapReader) *scriptState {
	st := newScriptState()
	n := d.uv()
	for i := uint64(0); i < n && d.err == nil; i++ {
		body := d.bytes()
		if d.err != nil {
			break
		}
		sc, msg := newScript(body)
		if sc == nil {
			d.fail("script does not compile: %s", msg)
			break
		}
		st.scripts[sc.sha] = sc
	}
	n = d.uv()
	for i := uint64(0); i < n && d.err == nil; i++ {
		code := d.bytes()
		if d.err != nil {
			break
		}
		if msg := st.loadLibrary(code, false); msg != "" {
			d.fail("library does not load: %s", msg)
		}
	}
	return st
}

// ScriptCount is the number of cached scripts (INFO's
// number_of_cached_scripts).
func (s *Store) ScriptCount() int { return len(s.scripts.scripts) }

// LibraryCount is the number of function libraries.
func (s *Store) LibraryCount() int { return len(s.scripts.libs) }
