package server

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// defaultBusyMs is Redis's lua-time-limit (busy-reply-threshold): how long
// a script runs before other clients are told the server is BUSY.
const defaultBusyMs = 5000

// scriptTracker follows the scripts running on this replica (the store
// tells it: store.ScriptObserver), for BUSY and SCRIPT KILL. A replicated
// script runs in Apply under the machine's write lock; read-only ones run
// locally, possibly several at once under the read lock.
type scriptTracker struct {
	mu   sync.Mutex
	runs []trackedRun // by start time
	// since is the wall-clock start (Unix ms) of the oldest running
	// script, 0 when none runs: the one thing a connection's dispatch
	// reads on its hot path.
	since  atomic.Int64
	busyMs atomic.Int64
}

type trackedRun struct {
	run   *store.ScriptRun
	start int64
}

func newScriptTracker() *scriptTracker {
	t := &scriptTracker{}
	t.busyMs.Store(defaultBusyMs)
	return t
}

// ScriptStarted implements store.ScriptObserver.
func (t *scriptTracker) ScriptStarted(r *store.ScriptRun) {
	now := time.Now().UnixMilli()
	t.mu.Lock()
	t.runs = append(t.runs, trackedRun{run: r, start: now})
	if len(t.runs) == 1 {
		t.since.Store(now)
	}
	t.mu.Unlock()
}

// ScriptEnded implements store.ScriptObserver.
func (t *scriptTracker) ScriptEnded(r *store.ScriptRun) {
	t.mu.Lock()
	t.runs = slices.DeleteFunc(t.runs, func(tr trackedRun) bool { return tr.run == r })
	if len(t.runs) == 0 {
		t.since.Store(0)
	} else {
		t.since.Store(t.runs[0].start)
	}
	t.mu.Unlock()
}

// Running implements store.ScriptObserver.
func (t *scriptTracker) Running(fn func(r *store.ScriptRun, ms int64)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.runs) > 0 {
		fn(t.runs[0].run, time.Now().UnixMilli()-t.runs[0].start)
	}
}

// busyError is the BUSY reply while the oldest script has run past the
// threshold ("" when it has not).
func (t *scriptTracker) busyError(since int64) string {
	if time.Now().UnixMilli()-since < t.busyMs.Load() {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.runs) == 0 {
		return ""
	}
	if t.runs[0].run.Function() {
		return "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
	}
	return "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
}

// kill answers SCRIPT KILL (function false) and FUNCTION KILL (true): it
// stops the scripts of that kind running locally, read-only ones and
// speculative runs (speculate). A replicated script runs on every replica
// and cannot be stopped on one: it ends at its instruction budget. As in
// Redis, SCRIPT KILL does not stop a function, nor FUNCTION KILL an EVAL:
// they answer BUSY.
func (t *scriptTracker) kill(dst []byte, function bool) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.runs) == 0 {
		return resp.AppendError(dst, "NOTBUSY No scripts in execution right now.")
	}
	killed, wrote, otherKind := false, false, false
	for _, tr := range t.runs {
		switch {
		case tr.run.Wrote():
			wrote = true
		case tr.run.Killable() && tr.run.Function() != function:
			otherKind = true
		case tr.run.Killable():
			tr.run.Kill()
			killed = true
		}
	}
	switch {
	case killed:
		return resp.AppendOK(dst)
	case wrote:
		return resp.AppendError(dst, "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
	case otherKind && function:
		return resp.AppendError(dst, "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
	case otherKind:
		return resp.AppendError(dst, "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
	}
	return resp.AppendError(dst, "ERR gomu: a replicated script cannot be killed: it runs on every replica and stops at its instruction budget")
}

// isScriptKill reports whether args are SCRIPT KILL or FUNCTION KILL.
func isScriptKill(args [][]byte) bool {
	return len(args) == 2 && lowerEq(args[1], "kill") && (lowerEq(args[0], "script") || lowerEq(args[0], "function"))
}

// refuseBusy answers BUSY when a script has run past the threshold and
// args may not run meanwhile; it reports whether it did.
func (c *conn) refuseBusy(since int64, args [][]byte) bool {
	if isScriptKill(args) || len(args) == 2 && lowerEq(args[0], "function") && lowerEq(args[1], "stats") {
		return false // allowed while busy, as in Redis
	}
	if h := lookupServerCommand(args[0]); h != nil && slices.Contains(h.flags, "allow_busy") {
		return false
	}
	msg := c.s.cfg.Machine.scripts.busyError(since)
	if msg == "" {
		return false
	}
	if c.multi && lowerEq(args[0], "exec") { // Redis aborts the transaction
		c.multi, c.watched = false, nil
		c.state.multiLen.Store(-1)
		out := c.reply()
		*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of: "+msg)
		return true
	}
	return c.refuse(msg)
}

// scriptWrites reports whether a Scripted command's call must be
// replicated (store.ScriptWrites, under the read lock).
func (m *Machine) scriptWrites(args [][]byte) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.ScriptWrites(args)
}

// busyThreshold is lua-time-limit's value for CONFIG GET.
func (m *Machine) busyThreshold() string { return strconv.FormatInt(m.scripts.busyMs.Load(), 10) }

// setBusyThreshold sets lua-time-limit from CONFIG SET's argument.
func (m *Machine) setBusyThreshold(arg []byte) bool {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil || n < 0 {
		return false
	}
	m.scripts.busyMs.Store(n)
	return true
}

// Speculative script runs. A call of a script that may write (EVAL,
// EVALSHA, FCALL of a script or function without the no-writes flag) is
// first run locally as a read, under the read lock after the batch's read
// barrier, exactly as EVAL_RO runs, but with Env.Speculation set: the run
// is abandoned silently at its first command that must be replicated (a
// write, PUBLISH). A run that ends without one (its result, its error, or
// SCRIPT KILL's error) answers the call, a linearizable read like EVAL_RO,
// and nothing is proposed. An abandoned run changed nothing: the call is
// then replicated as any write and runs again, from the start, in Apply on
// every replica. So:
//   - a script is killable (SCRIPT KILL, FUNCTION KILL) until its first
//     write, as in Redis: until then it runs speculatively; its replicated
//     run is not, and SCRIPT KILL answers UNKILLABLE once it wrote, a gomu
//     error before (the replicated run repeats the reads its speculation
//     made, up to the write);
//   - a writing script costs its reads twice, up to its first write, plus
//     a read barrier (BenchmarkSpeculativeWrite measures it);
//   - inside MULTI nothing speculates: the transaction is replicated whole
//     (and EXEC's watch check sees it in log order);
//   - the run sees the connection's database, and a SELECT inside it
//     switches only its own copy of the store (store's luaVM.view); its
//     reply is converted to RESP3 as any read's; a script cannot block
//     (blocking pops are refused in scripts, XREAD … BLOCK too), so a run
//     never waits; it has its own instruction budget, and the replicated
//     run a whole one again; the call counts once in commandstats, as the
//     read it was or as the write it became; the run's keyspace hits and
//     misses (and 'm' events) before an abandoned write count again in the
//     replicated run;
//   - out of memory, a script without flags is refused its DenyOOM writes
//     by the speculative run (Env.OutOfMemory), as Redis refuses them at
//     the write; the replicated run is not (replicas must agree), so a
//     script that pcalls past that refusal and then writes something else
//     runs its refused write there;
//   - a follower speculates too: a script that only reads is served there
//     (as EVAL_RO is); one that writes gets READONLY, as before;
//   - EVAL of a body not in the script cache, which the read does not add,
//     has its body added through the log afterwards (SCRIPT LOAD's
//     effect: store.CacheScriptCommand), as Redis caches every EVAL'd
//     script, killed ones too: the cache is replicated state, every
//     replica's EVALSHA must find it. A follower cannot propose: it
//     answers READONLY to such an EVAL.

// speculation turns speculative runs on; benchmarks turn it off to measure
// what it costs.
var speculation = true

// speculates reports whether cmd's calls are run speculatively first.
func speculates(cmd *store.Command) bool {
	return cmd.Name == "eval" || cmd.Name == "evalsha" || cmd.Name == "fcall"
}

// speculate runs a script call that may write as a read (see above) and
// reports whether that answered it; when not, the script writes, and the
// call must be replicated as any write.
func (c *conn) speculate(args [][]byte, slot int) bool {
	out := c.reply()
	if !c.readBarrier(out) {
		c.rejected(slot)
		return true
	}
	c.env.NowMs = time.Now().UnixMilli()
	c.spec = store.Speculation{}
	c.env.Speculation = &c.spec
	// Out of memory, a script without flags is refused its DenyOOM writes
	// (Redis's check at the write): the speculative run does it, before
	// it would be abandoned there.
	c.env.OutOfMemory = c.s.maxMemory.Load() != 0 && c.s.outOfMemory()
	// Short of good replicas, its writes fail (min-replicas-to-write).
	c.env.NoReplicas = c.s.minReplicas.Load() != 0 && c.s.lacksReplicas()
	start := len(*out)
	*out = c.s.cfg.Machine.execRead(*out, &c.env, int(c.state.db.Load()), &c.view, args)
	c.env.Speculation, c.env.OutOfMemory, c.env.NoReplicas = nil, false, false
	if c.spec.Wrote && c.s.link.Leads() {
		*out = (*out)[:start]
		return false
	}
	if c.spec.Wrote || c.spec.Uncached && !c.s.link.Leads() {
		*out = resp.AppendError((*out)[:start], c.s.readOnlyError())
		c.rejected(slot)
		return true
	}
	if c.spec.Uncached {
		if msg := c.cacheScript(args[1]); msg != "" {
			*out = resp.AppendError((*out)[:start], msg)
		}
	}
	c.addCall(slot)
	if start < len(*out) && (*out)[start] == '-' {
		c.failed(slot, (*out)[start:])
	}
	if c.proto.Load() == 3 {
		c.one[0] = shapeOf(args)
		*out = c.resp3Replies(*out, start, c.one[:])
	}
	return true
}

// cacheScript adds an EVAL'd script body to every replica's script cache
// (store.CacheScriptCommand, SCRIPT LOAD's effect, through the log), for a
// call answered by its speculative run; it returns the error to answer
// instead, "" when it is cached.
func (c *conn) cacheScript(body []byte) string {
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte(store.CacheScriptCommand), body})
	res, err := c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
	switch {
	case err != nil:
		return c.s.replicationError(err)
	case len(res) > 0 && res[0] == '-':
		return string(bytes.TrimSuffix(res[1:], []byte("\r\n")))
	}
	return ""
}

// resp3Command is store.RESP3Command's name, as an argument.
var resp3Command = []byte(store.RESP3Command)

// scriptArgs is what a connection replicates for the write args of cmd:
// args, or a RESP3 connection's script call wrapped in store.RESP3Command
// (its reply is the script's, in RESP3: store's lua_resp3.go), in a
// buffer of the connection's.
func (c *conn) scriptArgs(cmd *store.Command, args [][]byte) [][]byte {
	if !c.env.RESP3 || !speculates(cmd) {
		return args
	}
	c.wrapped = append(append(c.wrapped[:0], resp3Command), args...)
	return c.wrapped
}
