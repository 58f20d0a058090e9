package server

import (
	"runtime/metrics"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// maxmemory with Redis's default policy, noeviction: once the heap holds
// more than maxmemory bytes, the commands that may grow memory (DenyOOM)
// are refused, and inside MULTI every command but EXEC, DISCARD and QUIT,
// as Redis refuses them. The leader decides before proposing, so nothing
// refused reaches the log; like Redis's, the setting is this node's own
// and not replicated. 0 (the default) is no limit.

// errOOM is Redis's reply to a command refused for memory.
const errOOM = "OOM command not allowed when used memory > 'maxmemory'."

// outOfMemory reports whether maxmemory is set and the heap exceeds it.
func (s *Server) outOfMemory() bool {
	limit := s.maxMemory.Load()
	if limit == 0 {
		return false
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Kind() == metrics.KindUint64 && int64(sample[0].Value.Uint64()) > limit
}

// refuseOOM answers a command refused for memory (flagging a transaction
// being queued, as Redis does) and reports whether it did.
func (c *conn) refuseOOM(denyOOM bool) bool {
	if !denyOOM && !c.multi || !c.s.outOfMemory() {
		return false
	}
	if c.multi {
		c.multiDirty = true
	}
	out := c.reply()
	*out = resp.AppendError(*out, errOOM)
	return true
}

// refuseScriptOOM answers a call of a script with flags that may write
// and does not allow OOM, out of memory (store.ScriptDeniedOOM); it
// reports whether it did.
func (c *conn) refuseScriptOOM(args [][]byte) bool {
	if !c.s.outOfMemory() {
		return false
	}
	m := c.s.cfg.Machine
	m.mu.RLock()
	denied := m.st.ScriptDeniedOOM(args)
	m.mu.RUnlock()
	if !denied {
		return false
	}
	out := c.reply()
	*out = resp.AppendError(*out, "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
	return true
}

// growsLibraries reports whether args are FUNCTION LOAD or FUNCTION
// RESTORE, which Redis refuses when out of memory (their subcommands are
// denyoom; FUNCTION's other subcommands, and the command, are not).
func growsLibraries(args [][]byte) bool {
	return len(args) > 2 && lowerEq(args[0], "function") && (lowerEq(args[1], "load") || lowerEq(args[1], "restore"))
}

// setMaxMemory is CONFIG SET maxmemory; it returns the error text, if any.
func (s *Server) setMaxMemory(v []byte) string {
	n, ok := parseMemoryValue(v)
	if !ok || n > 1<<63-1 {
		return "argument must be a memory value"
	}
	s.maxMemory.Store(int64(n))
	return ""
}

// maxMemoryValue is maxmemory as CONFIG GET prints it.
func (s *Server) maxMemoryValue() string { return strconv.FormatInt(s.maxMemory.Load(), 10) }

// oomExempt reports whether h runs inside MULTI even when out of memory:
// EXEC (which checks its queued commands itself), DISCARD and QUIT.
func (h *serverCommand) oomExempt() bool {
	return h.name == "exec" || h.name == "discard" || h.name == "quit"
}
