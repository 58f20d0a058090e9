package server

import (
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// debugObject is DEBUG OBJECT key: the store describes the value as Redis
// 7.0 does (encoding, serialized length, quicklist shape), read on this
// replica after the read barrier, at the local clock, in the connection's
// database.
func debugObject(c *conn, out *[]byte, key []byte) bool {
	if !c.readBarrier(out) {
		return false
	}
	now := time.Now().UnixMilli()
	c.readDB(func(st *store.Store) { *out = st.DebugObject(*out, now, key) })
	return false
}
