package store

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// library is one FUNCTION LOAD'ed library.
type library struct {
	name  string
	code  []byte
	proto *lua.FunctionProto
	funcs []*libFunction // by name
}

// libFunction is one function a library registered.
type libFunction struct {
	name        string
	lib         *library
	description string
	hasDesc     bool
	flags       []string // as given, in the order Redis lists them
	noWrites    bool
}

// libraryLoad collects what a library's code registers while it runs.
type libraryLoad struct {
	funcs     []*libFunction
	callbacks map[string]*lua.LFunction
}

// newRedisLoadLib is the redis table a library's code sees: register_function
// and the common part; reading anything else fails, as in Redis.
func (vm *luaVM) newRedisLoadLib() *lua.LTable {
	t := vm.newRedisCommon()
	t.RawSetString("register_function", vm.L.NewFunction(vm.registerFunction))
	return t
}

// nameKey is how libraries and functions are found: by name in any case,
// as Redis finds them.
func nameKey(name string) string { return strings.ToLower(name) }

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// registerFunction is redis.register_function(name, callback) or
// redis.register_function{function_name=, callback=, flags=, description=}.
func (vm *luaVM) registerFunction(L *lua.LState) int {
	ld := vm.call.loading
	if ld == nil {
		vm.raiseRedis(L, "ERR redis.register_function can only be called on FUNCTION LOAD command")
	}
	f := &libFunction{}
	var cb lua.LValue
	switch L.GetTop() {
	case 1:
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			vm.raiseRedis(L, "ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
		}
		var bad string
		t.ForEach(func(k, v lua.LValue) {
			if bad != "" {
				return
			}
			switch lua.LVAsString(k) {
			case "function_name":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "ERR function_name argument given to redis.register_function must be a string"
				}
				f.name = string(s)
			case "description":
				s, ok := v.(lua.LString)
				if !ok {
					bad = "ERR description argument given to redis.register_function must be a string"
				}
				f.description, f.hasDesc = string(s), true
			case "callback":
				cb = v
			case "flags":
				ft, ok := v.(*lua.LTable)
				if !ok {
					bad = "ERR flags argument to redis.register_function must be a table representing function flags"
					return
				}
				for i := 1; ft.RawGetInt(i) != lua.LNil; i++ {
					fl, ok := ft.RawGetInt(i).(lua.LString)
					if !ok || !slices.Contains(scriptFlagNames, string(fl)) {
						bad = "ERR unknown flag given"
						return
					}
					f.flags = append(f.flags, string(fl))
					f.noWrites = f.noWrites || fl == "no-writes"
				}
			default:
				bad = "ERR unknown argument given to redis.register_function"
			}
		})
		if bad != "" {
			vm.raiseRedis(L, bad)
		}
	case 2:
		s, ok := L.Get(1).(lua.LString)
		if !ok {
			vm.raiseRedis(L, "ERR first argument to redis.register_function must be a string")
		}
		f.name, cb = string(s), L.Get(2)
		if _, ok := cb.(*lua.LFunction); !ok {
			vm.raiseRedis(L, "ERR second argument to redis.register_function must be a function")
		}
	default:
		vm.raiseRedis(L, "ERR wrong number of arguments to redis.register_function")
	}
	fn, ok := cb.(*lua.LFunction)
	switch {
	case f.name == "" && L.GetTop() == 1:
		vm.raiseRedis(L, "ERR redis.register_function must get a function name argument")
	case cb == nil:
		vm.raiseRedis(L, "ERR redis.register_function must get a callback argument")
	case !ok:
		vm.raiseRedis(L, "ERR callback argument given to redis.register_function must be a function")
	case !validName(f.name):
		// Redis 7.0's wording, library for function.
		vm.raiseRedis(L, "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
	case ld.callbacks[nameKey(f.name)] != nil:
		vm.raiseRedis(L, "ERR Function already exists in the library")
	}
	ld.callbacks[nameKey(f.name)] = fn
	ld.funcs = append(ld.funcs, f)
	return 0
}

// parseLibraryShebang reads a library's "#!lua name=<name>" line.
func parseLibraryShebang(code []byte) (name string, body []byte, errMsg string) {
	if !bytes.HasPrefix(code, []byte("#!")) {
		return "", nil, "ERR Missing library metadata"
	}
	end := bytes.IndexByte(code, '\n')
	if end < 0 {
		end = len(code)
	}
	line := string(code[2:end])
	engine, opts, _ := strings.Cut(line, " ")
	if !strings.EqualFold(engine, "lua") {
		return "", nil, "ERR Engine '" + engine + "' not found"
	}
	for _, p := range strings.Fields(opts) {
		v, ok := strings.CutPrefix(p, "name=")
		if !ok {
			return "", nil, "ERR Invalid metadata value given: " + p
		}
		if name != "" {
			return "", nil, "ERR Invalid metadata value, name argument was given multiple times"
		}
		name = strings.Trim(v, "\"")
	}
	if name == "" {
		return "", nil, "ERR Library name was not given"
	}
	if !validName(name) {
		return "", nil, "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
	}
	return name, append(make([]byte, 0, len(code)), code[end:]...), ""
}

// runLibrary runs a library's code in vm, which must have begun a run,
// and returns what it registered (or Redis's error).
func (vm *luaVM) runLibrary(lib *library) (*libraryLoad, string) {
	ld := &libraryLoad{callbacks: map[string]*lua.LFunction{}}
	vm.call.loading = ld
	vm.envMeta.RawSetString("__index", vm.loadGlobals)
	defer func() {
		vm.call.loading = nil
		vm.envMeta.RawSetString("__index", vm.globals)
	}()
	fn := vm.L.NewFunctionFromProto(lib.proto)
	fn.Env = vm.env
	vm.L.Push(fn)
	if err := vm.pcall(0, 0); err != nil {
		return nil, "ERR Error registering functions: " + vm.errorMessage(err)
	}
	return ld, ""
}

// loadLibrary compiles and runs a library's code and installs it, replacing
// its namesake when replace. It changes nothing on error.
func (st *scriptState) loadLibrary(code []byte, replace bool) string {
	return st.loadLibraryAs(code, replace, false)
}

// loadLibraryAs is loadLibrary, with FUNCTION RESTORE's wording of a
// library that exists when restoring.
func (st *scriptState) loadLibraryAs(code []byte, replace, restoring bool) string {
	name, body, msg := parseLibraryShebang(code)
	if msg != "" {
		return msg
	}
	old := st.libs[nameKey(name)]
	if old != nil && !replace {
		if restoring {
			return "ERR Library " + name + " already exists"
		}
		return "ERR Library '" + name + "' already exists"
	}
	proto, msg := compileLua(body, "user_function")
	if msg != "" {
		return "ERR Error compiling function: " + msg
	}
	lib := &library{name: name, code: append([]byte(nil), code...), proto: proto}
	vm := st.getVM()
	defer st.putVM(vm)
	e := &Env{ReadOnly: true}
	run := vm.begin(nil, e, true, &ScriptRun{function: true})
	// Loading gets an eighth of a run's budget, as Redis gives it 500 ms.
	vm.ctx.left = instructionBudget / 8
	ld, msg := vm.runLibrary(lib)
	if vm.ctx.reason == errBudget {
		msg = "ERR Error registering functions: FUNCTION LOAD timeout"
	}
	vm.end(e, run)
	if msg != "" {
		return msg
	}
	if len(ld.funcs) == 0 {
		return "ERR No functions registered"
	}
	for _, f := range ld.funcs {
		if g := st.funcs[nameKey(f.name)]; g != nil && g.lib != old {
			return "ERR Function " + f.name + " already exists"
		}
	}
	if old != nil {
		st.dropLibrary(old)
	}
	slices.SortFunc(ld.funcs, func(a, b *libFunction) int { return strings.Compare(a.name, b.name) })
	for _, f := range ld.funcs {
		f.lib = lib
		st.funcs[nameKey(f.name)] = f
	}
	lib.funcs = ld.funcs
	st.libs[nameKey(name)] = lib
	return ""
}

func (st *scriptState) dropLibrary(lib *library) {
	for _, f := range lib.funcs {
		delete(st.funcs, nameKey(f.name))
	}
	delete(st.libs, nameKey(lib.name))
}

// cmdFCall runs a function: its library's code runs again in the Lua state
// to make the function's closure (so nothing of an earlier call lingers),
// then the function, with the keys and arguments as its two tables.
func cmdFCall(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	ro := strings.EqualFold(string(args[0]), "fcall_ro")
	f := s.scripts.funcs[nameKey(string(args[1]))]
	if f == nil {
		return errReply(dst, "ERR Function not found")
	}
	keys, argv, msg := parseNumKeys(args[2:])
	if msg == errNotInt {
		msg = "ERR Bad number of keys provided"
	}
	if msg != "" {
		return errReply(dst, msg)
	}
	if ro && !f.noWrites {
		return errReply(dst, errWriteFlagRO)
	}
	vm := s.scripts.getVM()
	defer s.scripts.putVM(vm)
	run := vm.begin(s, e, ro || f.noWrites || e.ReadOnly, &ScriptRun{function: true, name: f.name, command: args})
	defer vm.end(e, run)
	ld, msg := vm.runLibrary(f.lib)
	if msg != "" {
		return errReply(dst, oneLine(msg))
	}
	cb := ld.callbacks[nameKey(f.name)]
	if cb == nil {
		return errReply(dst, "ERR Function not found")
	}
	return vm.invokeRun(dst, run, cb, []lua.LValue{argsTable(vm.L, keys), argsTable(vm.L, argv)}, f.name, "user_function")
}

// appendRunningScript appends the start of FUNCTION STATS's reply and its
// running_script: the function running longest here, or null. While an
// EVAL runs there, Redis answers BUSY instead (busy reports it: the error
// is then all it appended).
func appendRunningScript(dst []byte, e *Env) (out []byte, busy bool) {
	head := append(dst, "*4\r\n$14\r\nrunning_script\r\n"...)
	out = append(head, "$-1\r\n"...)
	if e.Scripts == nil {
		return out, false
	}
	e.Scripts.Running(func(r *ScriptRun, ms int64) {
		if !r.function {
			out, busy = errReply(dst, errBusyEval), true
			return
		}
		out = append(head, "*6\r\n$4\r\nname\r\n"...)
		out = appendBulkBytes(out, r.name)
		out = appendBulkBytes(out, "command")
		out = append(append(append(out, '*'), strconv.Itoa(len(r.command))...), "\r\n"...)
		for _, a := range r.command {
			out = appendBulkBytes(out, string(a))
		}
		out = appendBulkBytes(out, "duration_ms")
		out = appendInt(out, ms)
	})
	return out, busy
}

// errBusyEval is Redis's BUSY while an EVAL runs.
const errBusyEval = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."

// functionDumpMagic opens FUNCTION DUMP's payload, this server's own
// format: the magic, a count, then each library's code (uvarint length
// and bytes).
const functionDumpMagic = "GOMUFN1"

func cmdFunction(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st := s.scripts
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "load":
		if len(args) < 3 {
			return errReply(dst, "ERR wrong number of arguments for 'function|load' command")
		}
		replace := false
		for _, opt := range args[2 : len(args)-1] {
			if !strings.EqualFold(string(opt), "replace") {
				return errReply(dst, "ERR Unknown option given: "+string(opt))
			}
			replace = true
		}
		code := args[len(args)-1]
		if e.ReadOnly {
			return errReply(dst, "ERR gomu: FUNCTION LOAD must be replicated")
		}
		if msg := st.loadLibrary(code, replace); msg != "" {
			return errReply(dst, oneLine(msg))
		}
		name, _, _ := parseLibraryShebang(code)
		return appendBulkBytes(dst, name)
	case "delete":
		if len(args) != 3 {
			return errReply(dst, "ERR wrong number of arguments for 'function|delete' command")
		}
		lib := st.libs[nameKey(string(args[2]))]
		if lib == nil {
			return errReply(dst, "ERR Library not found")
		}
		if !e.ReadOnly {
			st.dropLibrary(lib)
		}
		return append(dst, "+OK\r\n"...)
	case "flush":
		if len(args) > 3 {
			return errReply(dst, "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.")
		}
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "async") && !strings.EqualFold(string(args[2]), "sync") {
			return errReply(dst, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
		}
		if !e.ReadOnly {
			st.libs, st.funcs = map[string]*library{}, map[string]*libFunction{}
		}
		return append(dst, "+OK\r\n"...)
	case "list":
		return st.appendList(dst, args[2:])
	case "stats":
		if len(args) != 2 {
			return errReply(dst, "ERR wrong number of arguments for 'function|stats' command")
		}
		dst, busy := appendRunningScript(dst, e)
		if busy {
			return dst
		}
		dst = append(dst, "$7\r\nengines\r\n*2\r\n$3\r\nLUA\r\n*4\r\n"...)
		dst = appendBulkBytes(dst, "libraries_count")
		dst = appendInt(dst, int64(len(st.libs)))
		dst = appendBulkBytes(dst, "functions_count")
		return appendInt(dst, int64(len(st.funcs)))
	case "dump":
		if len(args) != 2 {
			return errReply(dst, "ERR wrong number of arguments for 'function|dump' command")
		}
		payload := []byte(functionDumpMagic)
		names := st.libraryNames()
		payload = binary.AppendUvarint(payload, uint64(len(names)))
		for _, n := range names {
			payload = binary.AppendUvarint(payload, uint64(len(st.libs[n].code)))
			payload = append(payload, st.libs[n].code...)
		}
		return appendBulkBytes(dst, string(payload))
	case "restore":
		if len(args) < 3 {
			return errReply(dst, "ERR wrong number of arguments for 'function|restore' command")
		}
		if len(args) > 4 {
			return errReply(dst, "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.")
		}
		if e.ReadOnly {
			return errReply(dst, "ERR gomu: FUNCTION RESTORE must be replicated")
		}
		policy := "append"
		if len(args) == 4 {
			policy = strings.ToLower(string(args[3]))
			if policy != "append" && policy != "replace" && policy != "flush" {
				return errReply(dst, "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
			}
		}
		return st.restore(dst, args[2], policy)
	case "kill":
		return errReply(dst, "NOTBUSY No scripts in execution right now.")
	}
	return errReply(dst, "ERR unknown subcommand '"+string(truncate(args[1], 128))+"'. Try FUNCTION HELP.")
}

// restore loads the libraries of a FUNCTION DUMP payload, all or none.
func (st *scriptState) restore(dst, payload []byte, policy string) []byte {
	codes, ok := decodeFunctionDump(payload)
	if !ok {
		return errReply(dst, "ERR payload version or checksum are wrong")
	}
	next := newScriptState()
	next.scripts = st.scripts
	if policy != "flush" {
		for _, n := range st.libraryNames() {
			next.loadLibrary(st.libs[n].code, false)
		}
	}
	for _, code := range codes {
		if msg := next.loadLibraryAs(code, policy == "replace", true); msg != "" {
			return errReply(dst, oneLine(msg))
		}
	}
	st.libs, st.funcs = next.libs, next.funcs
	return append(dst, "+OK\r\n"...)
}

func decodeFunctionDump(p []byte) ([][]byte, bool) {
	rest, ok := bytes.CutPrefix(p, []byte(functionDumpMagic))
	if !ok {
		return nil, false
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return nil, false
	}
	rest = rest[k:]
	var codes [][]byte
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return nil, false
		}
		codes = append(codes, rest[k:k+int(l)])
		rest = rest[k+int(l):]
	}
	return codes, len(rest) == 0
}

// appendList answers FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
func (st *scriptState) appendList(dst []byte, opts [][]byte) []byte {
	var pattern []byte
	withCode := false
	for i := 0; i < len(opts); i++ {
		switch {
		case strings.EqualFold(string(opts[i]), "withcode") && !withCode:
			withCode = true
		case strings.EqualFold(string(opts[i]), "libraryname") && pattern == nil:
			if i+1 >= len(opts) {
				return errReply(dst, "ERR library name argument was not given")
			}
			pattern = opts[i+1]
			i++
		default:
			return errReply(dst, "ERR Unknown argument "+string(opts[i]))
		}
	}
	var libs []*library
	for _, n := range st.libraryNames() {
		if pattern == nil || globMatch(pattern, []byte(n)) {
			libs = append(libs, st.libs[n])
		}
	}
	dst = append(append(dst, '*'), strconv.Itoa(len(libs))...)
	dst = append(dst, "\r\n"...)
	for _, lib := range libs {
		if withCode {
			dst = append(dst, "*8\r\n"...)
		} else {
			dst = append(dst, "*6\r\n"...)
		}
		dst = appendBulkBytes(dst, "library_name")
		dst = appendBulkBytes(dst, lib.name)
		dst = appendBulkBytes(dst, "engine")
		dst = appendBulkBytes(dst, "LUA")
		dst = appendBulkBytes(dst, "functions")
		dst = append(append(dst, '*'), strconv.Itoa(len(lib.funcs))...)
		dst = append(dst, "\r\n"...)
		for _, f := range lib.funcs {
			dst = append(dst, "*6\r\n"...)
			dst = appendBulkBytes(dst, "name")
			dst = appendBulkBytes(dst, f.name)
			dst = appendBulkBytes(dst, "description")
			if f.hasDesc {
				dst = appendBulkBytes(dst, f.description)
			} else {
				dst = append(dst, "$-1\r\n"...)
			}
			dst = appendBulkBytes(dst, "flags")
			dst = append(append(dst, '*'), strconv.Itoa(len(f.flags))...)
			dst = append(dst, "\r\n"...)
			for _, fl := range f.flags {
				dst = append(append(append(dst, '+'), fl...), "\r\n"...)
			}
		}
		if withCode {
			dst = appendBulkBytes(dst, "library_code")
			dst = appendBulkBytes(dst, string(lib.code))
		}
	}
	return dst
}
