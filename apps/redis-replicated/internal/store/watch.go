package store

import (
	"bufio"
	"crypto/sha256"
)

// A WatchStamp is what WATCH remembers of a key: a SHA-256 of its value
// and TTL as the snapshot encodes them, or the zero stamp for a key that
// does not exist (an expired one included). A transaction's watch check
// compares stamps when it is applied, on every replica alike: the stamp
// depends on the replicated state only, so every replica decides the same
// (per-key modification counters would have to be replicated, snapshots
// included). The difference from Redis: a key rewritten to the same value
// and TTL does not abort the transaction.
type WatchStamp [32]byte

// Stamp is the WatchStamp of key in database db at e's time. It only reads
// (db is looked at, not selected), so it may run under a shared lock.
func (s *Store) Stamp(e *Env, db int, key []byte) WatchStamp {
	v := s.dbs[db].lookup(e, key)
	if v == nil {
		return WatchStamp{}
	}
	h := sha256.New()
	w := bufio.NewWriter(h)
	encodeValue(w, v)
	w.Flush()
	var st WatchStamp
	h.Sum(st[:0])
	return st
}
