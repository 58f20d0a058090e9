package server

import (
	"github.com/gomu-rdma/gomu/internal/resp"
)

// cmdReset is RESET: the connection's state back to a new connection's, as
// Redis's does it — the transaction discarded and the keys unwatched,
// database 0, RESP2, no name, no-evict off, every subscription dropped.
// Inside MULTI it runs at once, as in Redis.
func cmdReset(c *conn, _ [][]byte) bool {
	c.multi, c.multiDirty, c.watched = false, false, nil
	c.state.multiLen.Store(-1)
	c.state.db.Store(0)
	c.state.noEvict.Store(false)
	c.state.name.Store(nil)
	c.proto.Store(2)
	c.env.RESP3 = false
	c.unsubscribeAll()
	c.setDefaultAuth()
	out := c.reply()
	*out = resp.AppendSimple(*out, "RESET")
	return false
}

// unsubscribeAll drops every channel and pattern the connection subscribed
// to, telling nobody (RESET's way). Its replies keep leaving through its
// queue, behind what is queued already.
func (c *conn) unsubscribeAll() {
	if c.sub == nil {
		return
	}
	h := c.s.cfg.Machine.hub
	h.mu.Lock()
	for ch := range c.sub.channels {
		h.drop(h.channels, ch, c)
	}
	for p := range c.sub.patterns {
		h.drop(h.patterns, p, c)
	}
	clear(c.sub.channels)
	clear(c.sub.patterns)
	h.mu.Unlock()
}
