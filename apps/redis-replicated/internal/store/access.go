package store

// Access tracking and eviction, for maxmemory-policy.
//
// Every value carries 32 bits of access data, as Redis's robj carries its
// 24-bit lru field: under an LRU policy (or no eviction, where OBJECT
// IDLETIME still reports it) the Unix second of the last access; under an
// LFU policy the Unix minute of the last decrement in the high bits and
// Redis's logarithmic counter in the low 8 (lfu-log-factor, lfu-decay-time,
// a new value starting at 5). Reads update it with atomic stores under the
// shared lock, at most once a second per key under LRU, so hot keys read
// from many connections do not fight over their cache line.
//
// The data is each node's own, as in Redis: it is not replicated, not in
// snapshots nor digests (a follower's reads touch its keys, not the
// leader's). Eviction is decided by the leader alone: it picks victims by
// its policy (EvictionVictims, sampling as Redis does) and proposes their
// deletion (gomu.evict), which every replica applies in log order.

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// EvictCommand is the internal write command the leader proposes to evict
// keys: "gomu.evict key ..." deletes each, publishing the "evicted" event.
const EvictCommand = "gomu.evict"

// Policy is a maxmemory-policy.
type Policy int32

// The policies, in Redis's names (PolicyNames).
const (
	NoEviction Policy = iota
	AllKeysLRU
	AllKeysLFU
	AllKeysRandom
	VolatileLRU
	VolatileLFU
	VolatileRandom
	VolatileTTL
)

// PolicyNames are the policies' names, in the order of Redis's CONFIG SET
// error.
var PolicyNames = map[Policy]string{
	VolatileLRU: "volatile-lru", VolatileLFU: "volatile-lfu", VolatileRandom: "volatile-random",
	VolatileTTL: "volatile-ttl", AllKeysLRU: "allkeys-lru", AllKeysLFU: "allkeys-lfu",
	AllKeysRandom: "allkeys-random", NoEviction: "noeviction",
}

// ParsePolicy reads a maxmemory-policy name (any case).
func ParsePolicy(b []byte) (Policy, bool) {
	for p, name := range PolicyNames {
		if eqFoldString(b, name) {
			return p, true
		}
	}
	return 0, false
}

func (p Policy) lfu() bool      { return p == AllKeysLFU || p == VolatileLFU }
func (p Policy) lru() bool      { return p == AllKeysLRU || p == VolatileLRU }
func (p Policy) volatile() bool { return p >= VolatileLRU }

// lfuInitVal is a new value's LFU counter, as Redis's LFU_INIT_VAL.
const lfuInitVal = 5

// Access is a node's access-tracking settings: its maxmemory-policy,
// lfu-log-factor and lfu-decay-time. The server owns it and hands it to
// the store through Env.Access.
type Access struct {
	policy    atomic.Int32
	logFactor atomic.Int32
	decayMins atomic.Int32
}

// NewAccess returns Redis's defaults: noeviction, factor 10, decay 1.
func NewAccess() *Access {
	a := &Access{}
	a.logFactor.Store(10)
	a.decayMins.Store(1)
	return a
}

// Policy is the maxmemory-policy.
func (a *Access) Policy() Policy { return Policy(a.policy.Load()) }

// SetPolicy sets the maxmemory-policy.
func (a *Access) SetPolicy(p Policy) { a.policy.Store(int32(p)) }

// LFULogFactor and LFUDecayTime are lfu-log-factor and lfu-decay-time.
func (a *Access) LFULogFactor() int32 { return a.logFactor.Load() }
func (a *Access) LFUDecayTime() int32 { return a.decayMins.Load() }

// SetLFULogFactor and SetLFUDecayTime set them (0 or more).
func (a *Access) SetLFULogFactor(n int32) { a.logFactor.Store(n) }
func (a *Access) SetLFUDecayTime(n int32) { a.decayMins.Store(n) }

// writeState is what the store's writes share beyond the keyspaces: the
// time and the node's access settings of the command being applied, so
// that a value put starts with its access data, and the count of evicted
// keys. Only writes, under the exclusive lock, change it.
type writeState struct {
	nowMs   int64
	access  *Access
	evicted int64
}

// created gives a value just put its first access data.
func (a *Access) created(v *value, nowMs int64) {
	if a.Policy().lfu() {
		atomic.StoreUint32(&v.access, uint32(nowMs/60000)<<8|lfuInitVal)
		return
	}
	atomic.StoreUint32(&v.access, uint32(nowMs/1000))
}

// touch records an access to v at nowMs. The LFU counter's roll draws from
// the process's own source, never a write's seeded one: access data is
// each node's, and a draw from the seeded source would change what the
// write after it draws on this node only.
func (a *Access) touch(v *value, nowMs int64) {
	if !a.Policy().lfu() {
		now := uint32(nowMs / 1000)
		if atomic.LoadUint32(&v.access) != now {
			atomic.StoreUint32(&v.access, now)
		}
		return
	}
	counter := a.decayed(v, nowMs)
	if counter < 255 {
		base := float64(counter) - lfuInitVal
		if base < 0 {
			base = 0
		}
		if rand.Float64() < 1/(base*float64(a.LFULogFactor())+1) {
			counter++
		}
	}
	atomic.StoreUint32(&v.access, uint32(nowMs/60000)<<8|counter)
}

// decayed is v's LFU counter after lfu-decay-time's decrements for the
// minutes since its last one (Redis's LFUDecrAndReturn).
func (a *Access) decayed(v *value, nowMs int64) uint32 {
	data := atomic.LoadUint32(&v.access)
	counter := data & 255
	decay := a.LFUDecayTime()
	if decay <= 0 {
		return counter
	}
	now, last := uint32(nowMs/60000)&0xffff, data>>8&0xffff
	elapsed := (now - last) & 0xffff // minutes, wrapping as Redis's 16 bits
	if periods := elapsed / uint32(decay); periods < counter {
		return counter - periods
	}
	return 0
}

// idleSeconds is v's idle time under an LRU policy.
func idleSeconds(v *value, nowMs int64) int64 {
	last := int64(atomic.LoadUint32(&v.access))
	if idle := nowMs/1000 - last; idle > 0 {
		return idle
	}
	return 0
}

// restored gives a RESTOREd value the IDLETIME or FREQ its command gave
// (-1: none), as Redis's objectSetLRUOrLFU.
func (a *Access) restored(v *value, idle, freq, nowMs int64) {
	switch {
	case a.Policy().lfu() && freq >= 0:
		atomic.StoreUint32(&v.access, uint32(nowMs/60000)<<8|uint32(freq))
	case !a.Policy().lfu() && idle >= 0:
		atomic.StoreUint32(&v.access, uint32(max(nowMs/1000-idle, 0)))
	}
}

// objectIdleTime and objectFreq answer OBJECT IDLETIME and FREQ.
func objectIdleTime(dst []byte, e *Env, v *value) []byte {
	if e.Access == nil {
		return resp.AppendInt(dst, 0) // nothing tracked
	}
	if e.Access.Policy().lfu() {
		return resp.AppendError(dst, "ERR An LFU maxmemory policy is selected, idle time not tracked. "+
			"Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	}
	return resp.AppendInt(dst, idleSeconds(v, e.NowMs))
}

func objectFreq(dst []byte, e *Env, v *value) []byte {
	if e.Access == nil || !e.Access.Policy().lfu() {
		return resp.AppendError(dst, "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "+
			"Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	}
	return resp.AppendInt(dst, int64(e.Access.decayed(v, e.NowMs)))
}

// Victim is a key eviction may delete: its database, name and an estimate
// of the memory its deletion frees (MEMORY USAGE's).
type Victim struct {
	DB    int
	Key   string
	Bytes int
}

// EvictionVictims picks up to n keys to evict under the node's policy, as
// Redis's approximations do: for each, samples keys of each database (any
// key, or for volatile-* policies keys with a TTL) and keeps the best —
// the longest idle (LRU), the least frequently used (LFU), the nearest TTL
// (volatile-ttl) or the first drawn (random). It only reads: the leader
// proposes the deletion of what it returns. r draws the samples.
func (s *Store) EvictionVictims(e *Env, samples, n int, r *rand.Rand) []Victim {
	p := NoEviction
	if e.Access != nil {
		p = e.Access.Policy()
	}
	if p == NoEviction || samples < 1 {
		return nil
	}
	chosen := map[string]bool{}
	var out []Victim
	for len(out) < n {
		var best *value
		var bestKey string
		var bestDB int
		var bestScore int64
		for _, ks := range s.dbs {
			for range samples {
				k, v := ks.sample(p.volatile(), r)
				if v == nil {
					break
				}
				if chosen[strconv.Itoa(ks.db)+":"+k] {
					continue
				}
				score := evictionScore(p, e, v)
				if best == nil || score > bestScore {
					best, bestKey, bestDB, bestScore = v, k, ks.db, score
				}
				if p == AllKeysRandom || p == VolatileRandom {
					break
				}
			}
		}
		if best == nil {
			break
		}
		chosen[strconv.Itoa(bestDB)+":"+bestKey] = true
		out = append(out, Victim{DB: bestDB, Key: bestKey, Bytes: keyUsage([]byte(bestKey), best, memorySamplesDef)})
	}
	return out
}

// evictionScore ranks v for eviction under p: higher goes first.
func evictionScore(p Policy, e *Env, v *value) int64 {
	switch {
	case p.lru():
		return idleSeconds(v, e.NowMs)
	case p.lfu():
		return 255 - int64(e.Access.decayed(v, e.NowMs))
	case p == VolatileTTL:
		return -v.expireAt
	}
	return 0
}

// sample draws a key of the keyspace (one with a TTL if volatile): Go's
// map iteration starts at a random place, the expiry index is drawn from
// by r.
func (s *keyspace) sample(volatile bool, r *rand.Rand) (string, *value) {
	if volatile {
		for range 8 { // the index may hold stale entries
			if len(s.expiry) == 0 {
				return "", nil
			}
			ent := s.expiry[r.IntN(len(s.expiry))]
			if v := s.keys[ent.key]; v != nil && v.expireAt == ent.at {
				return ent.key, v
			}
		}
		return "", nil
	}
	for k, v := range s.keys {
		return k, v
	}
	return "", nil
}

// cmdEvict is the internal gomu.evict key ...: it deletes each key that
// exists, publishing "evicted", counts it in EvictedKeys and replies with
// how many it deleted.
func cmdEvict(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var n int64
	for _, k := range args[1:] {
		if s.remove(k) {
			s.notify(e, notifyEvicted, "evicted", k)
			if e.Deleted != nil {
				e.Deleted(s.db, k)
			}
			n++
		}
	}
	s.ws.evicted += n
	return resp.AppendInt(dst, n)
}

// EvictedKeys is how many keys gomu.evict deleted in this store (INFO's
// evicted_keys; a state transfer starts it again).
func (s *Store) EvictedKeys() int64 { return s.ws.evicted }
