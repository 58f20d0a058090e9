package store

import (
	"cmp"
	"container/heap"
	"slices"
)

// expiryIndex orders the keys that have a TTL by (expiry time, key), so that
// the leader's sweep (gomu.expire) finds the expired ones in O(k log n)
// instead of scanning the keyspace under the write lock on every replica.
//
// Entries are only ever added, when a key gets a TTL, never updated: an
// entry whose key no longer holds exactly that TTL (deleted, renamed,
// persisted, given a new TTL) is stale and dropped when it surfaces. Which
// live keys a sweep deletes is therefore a function of the keyspace alone —
// the smallest (expiry, key) pairs that are due — whatever stale entries a
// replica's index holds, so replicas that restored from a snapshot (a
// rebuilt index) still delete exactly what the others do.
type expiryIndex []expiryEntry

type expiryEntry struct {
	at  int64
	key string
}

func (x expiryIndex) Len() int { return len(x) }
func (x expiryIndex) Less(i, j int) bool {
	if x[i].at != x[j].at {
		return x[i].at < x[j].at
	}
	return x[i].key < x[j].key
}
func (x expiryIndex) Swap(i, j int) { x[i], x[j] = x[j], x[i] }
func (x *expiryIndex) Push(v any)   { *x = append(*x, v.(expiryEntry)) }
func (x *expiryIndex) Pop() any {
	old := *x
	e := old[len(old)-1]
	*x = old[:len(old)-1]
	return e
}

// track records that key now expires at at (at != 0).
func (s *keyspace) track(key string, at int64) {
	heap.Push(&s.expiry, expiryEntry{at: at, key: key})
	// Stale entries accumulate when TTLs are rewritten often: rebuild once
	// they clearly outnumber the live ones.
	if len(s.expiry) > 2*s.expiring+1024 {
		s.rebuildExpiry()
	}
}

// rebuildExpiry makes the index hold exactly the keys with a TTL.
func (s *keyspace) rebuildExpiry() {
	s.expiry = s.expiry[:0]
	for k, v := range s.keys {
		if v.expireAt != 0 {
			s.expiry = append(s.expiry, expiryEntry{at: v.expireAt, key: k})
		}
	}
	// Sorted is a valid heap, and the same on every replica.
	slices.SortFunc(s.expiry, func(a, b expiryEntry) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.key, b.key))
	})
}

// sweepExpired deletes up to limit keys (all if limit < 0) whose TTL passed
// at nowMs, in every database, earliest first (ties: lower database first),
// and returns how many it deleted. Stale entries it meets on the way are
// dropped; they are bounded per call too, so that one sweep never holds the
// store for long.
func (s *Store) sweepExpired(e *Env, limit int64) int64 {
	nowMs := e.NowMs
	var deleted, seen int64
	for limit < 0 || (deleted < limit && seen < 4*limit+64) {
		ks := s.earliestDue(nowMs)
		if ks == nil {
			break
		}
		seen++
		if ks.popExpired(e) {
			deleted++
		}
	}
	return deleted
}

// earliestDue is the database whose earliest index entry is due at nowMs
// (strictly after, as expired) and earliest of all; nil if none is due.
func (s *Store) earliestDue(nowMs int64) *keyspace {
	var best *keyspace
	for _, ks := range s.dbs {
		if len(ks.expiry) > 0 && ks.expiry[0].at < nowMs &&
			(best == nil || ks.expiry[0].at < best.expiry[0].at) {
			best = ks
		}
	}
	return best
}

// popExpired removes the earliest index entry and deletes its key if the
// entry is not stale; it reports whether it deleted one.
func (s *keyspace) popExpired(env *Env) bool {
	e := heap.Pop(&s.expiry).(expiryEntry)
	v := s.keys[e.key]
	if v == nil || v.expireAt != e.at {
		return false
	}
	s.expiring--
	delete(s.keys, e.key)
	s.signalDeletedStream([]byte(e.key), v)
	if s.cfg.NotifyKeyspaceEvents&notifyExpired != 0 {
		s.publishEvent(env, s.db, "expired", []byte(e.key))
	}
	if env.Deleted != nil {
		env.Deleted(s.db, []byte(e.key))
	}
	return true
}

// NextExpiry is the earliest TTL the indexes of all databases hold (Unix
// ms; 0 if none). It may belong to a key that has since lost it: the
// server proposes a sweep when it is due, and the sweep clears such stale
// entries.
func (s *Store) NextExpiry() int64 {
	var next int64
	for _, ks := range s.dbs {
		if len(ks.expiry) > 0 && (next == 0 || ks.expiry[0].at < next) {
			next = ks.expiry[0].at
		}
	}
	return next
}
