package store

import (
	"bufio"
	"crypto/sha256"
)

// ValueDigest is DEBUG DIGEST-VALUE's digest of key's value: 20 bytes of
// SHA-256 over the value's snapshot encoding (its kind, TTL and content),
// zero for a missing key, as Redis's is. Equal values with equal TTLs
// have equal digests; the bytes differ from Redis's.
func (s *Store) ValueDigest(e *Env, key []byte) [20]byte {
	var d [20]byte
	v := s.lookup(e, key)
	if v == nil {
		return d
	}
	h := sha256.New()
	w := bufio.NewWriter(h)
	encodeValue(w, v)
	w.Flush()
	copy(d[:], h.Sum(nil))
	return d
}
