package server

import "github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"

// cmdAuth is AUTH (store.AppendAuth), queued inside MULTI as PING is.
func cmdAuth(c *conn, args [][]byte) bool {
	if c.multi {
		return cmdPingEcho(c, args)
	}
	out := c.reply()
	*out = store.AppendAuth(*out, args)
	return false
}
