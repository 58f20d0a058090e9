package server

import (
	"math/rand/v2"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// maxmemory: once the heap holds more than maxmemory bytes, the leader
// evicts keys by its maxmemory-policy (below) before a command that may
// grow memory (DenyOOM), and when CONFIG SET lowers the limit. Under
// noeviction (the default), or when nothing is left to evict, such
// commands are refused, and inside MULTI every command but EXEC, DISCARD
// and QUIT, as Redis refuses them. The leader decides before proposing,
// so nothing refused reaches the log; like Redis's, the settings are this
// node's own and not replicated. 0 (the default) is no limit.
//
// Used memory is the Go heap's live objects less what evictions freed
// since the last garbage collection (the MEMORY USAGE estimate of each
// evicted key): the heap figure keeps a deleted key's bytes until the
// collector runs, and without the correction one eviction would seem to
// free nothing and the next would evict far too much.

// errOOM is Redis's reply to a command refused for memory.
const errOOM = "OOM command not allowed when used memory > 'maxmemory'."

// evictState is the leader's eviction: one at a time, and what it freed
// since the collection cycle gcCycles.
type evictState struct {
	mu       sync.Mutex
	freed    atomic.Int64
	gcCycles atomic.Uint64
	samples  atomic.Int32 // maxmemory-samples
}

// Eviction's bounds: keys per proposal, and proposals per eviction (a
// command waits for at most this much eviction before it is refused).
const (
	evictBatch  = 16
	evictRounds = 64
)

// usedMemory is the heap's live objects, less what evictions freed since
// the last collection.
func (s *Server) usedMemory() int64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	used := int64(sample[0].Value.Uint64())
	if sample[1].Value.Kind() == metrics.KindUint64 {
		if n := sample[1].Value.Uint64(); s.evict.gcCycles.Load() != n {
			s.evict.gcCycles.Store(n)
			s.evict.freed.Store(0)
		}
	}
	return used - s.evict.freed.Load()
}

// outOfMemory reports whether maxmemory is set and used memory exceeds it.
func (s *Server) outOfMemory() bool {
	limit := s.maxMemory.Load()
	return limit != 0 && s.usedMemory() > limit
}

// evictToFit evicts keys by the maxmemory-policy, on the leader, until
// the keys evicted free (by their MEMORY USAGE estimates) what used memory
// exceeds maxmemory by, nothing is left to evict or evictRounds proposals
// went out; it reports whether memory then fits. The excess is measured
// once: the heap figure keeps garbage until the collector runs, and
// measuring it again between rounds would evict for that garbage too.
func (c *conn) evictToFit() bool {
	s := c.s
	m := s.cfg.Machine
	limit := s.maxMemory.Load()
	if limit == 0 {
		return true
	}
	if m.access.Policy() == store.NoEviction || !s.link.Leads() {
		return !s.outOfMemory()
	}
	s.evict.mu.Lock()
	defer s.evict.mu.Unlock()
	excess := s.usedMemory() - limit
	env := store.Env{Access: m.access, Rand: rand.New(rand.NewPCG(rand.Uint64(), 0))}
	freed := int64(0)
	for round := 0; round < evictRounds && freed < excess; round++ {
		env.NowMs = time.Now().UnixMilli()
		var victims []store.Victim
		m.read(func(st *store.Store) {
			victims = st.EvictionVictims(&env, int(s.evict.samples.Load()), evictBatch, env.Rand)
		})
		if len(victims) == 0 {
			break
		}
		var p proposal
		p.reset(propBatch)
		bytes := 0
		for i := 0; i < len(victims); {
			args := [][]byte{[]byte(store.EvictCommand)}
			j := i
			for ; j < len(victims) && victims[j].DB == victims[i].DB; j++ {
				args = append(args, []byte(victims[j].Key))
				bytes += victims[j].Bytes
			}
			p.use(victims[i].DB)
			p.add(args)
			i = j
		}
		if _, err := s.replicate(c.ctx, p.seal(env.NowMs, rand.Uint64())); err != nil {
			break
		}
		s.evict.freed.Add(int64(bytes))
		freed += int64(bytes)
	}
	return freed >= excess
}

// refuseOOM answers a command refused for memory (flagging a transaction
// being queued, as Redis does) and reports whether it did; out of memory,
// the leader first evicts what its policy lets it.
func (c *conn) refuseOOM(denyOOM bool) bool {
	if !denyOOM && !c.multi || !c.s.outOfMemory() || c.evictToFit() {
		return false
	}
	return c.refuse(errOOM)
}

// refuseScriptOOM answers a call of a script with flags that may write
// and does not allow OOM, out of memory (store.ScriptDeniedOOM); it
// reports whether it did.
func (c *conn) refuseScriptOOM(args [][]byte) bool {
	if !c.s.outOfMemory() {
		return false
	}
	denied := false
	c.s.cfg.Machine.read(func(st *store.Store) { denied = st.ScriptDeniedOOM(args) })
	return denied && c.refuse("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
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

// evictionParams are the CONFIG parameters of eviction besides maxmemory.
var evictionParams = map[string]bool{"maxmemory-policy": true, "maxmemory-samples": true,
	"lfu-log-factor": true, "lfu-decay-time": true}

// checkEvictionParam checks CONFIG SET's value v of an eviction parameter
// name and returns Redis's error text, or "" (also for other names).
func checkEvictionParam(name string, v []byte) string {
	switch name {
	case "maxmemory-policy":
		if _, ok := store.ParsePolicy(v); !ok {
			return "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
		}
	case "maxmemory-samples", "lfu-log-factor", "lfu-decay-time":
		low := int64(0)
		if name == "maxmemory-samples" {
			low = 1
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return "argument couldn't be parsed into an integer"
		}
		if n < low || n > 1<<31-1 {
			return "argument must be between " + strconv.FormatInt(low, 10) + " and 2147483647 inclusive"
		}
	}
	return ""
}

// setEvictionParam sets an eviction parameter checkEvictionParam passed
// (nothing for other names).
func (s *Server) setEvictionParam(name string, v []byte) {
	a := s.cfg.Machine.access
	n, _ := strconv.ParseInt(string(v), 10, 32)
	switch name {
	case "maxmemory-policy":
		p, _ := store.ParsePolicy(v)
		a.SetPolicy(p)
	case "maxmemory-samples":
		s.evict.samples.Store(int32(n))
	case "lfu-log-factor":
		a.SetLFULogFactor(int32(n))
	case "lfu-decay-time":
		a.SetLFUDecayTime(int32(n))
	}
}

// maxMemoryValue is maxmemory as CONFIG GET prints it.
func (s *Server) maxMemoryValue() string { return strconv.FormatInt(s.maxMemory.Load(), 10) }

// oomExempt reports whether h runs inside MULTI even when out of memory:
// EXEC (which checks its queued commands itself), DISCARD and QUIT.
func (h *serverCommand) oomExempt() bool {
	return h.name == "exec" || h.name == "discard" || h.name == "quit"
}
