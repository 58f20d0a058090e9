package server

import (
	"bytes"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Server commands inside MULTI. Redis runs a CONFIG queued in a
// transaction at EXEC, in its place. Here a transaction is one proposal of
// the store's commands, which every replica applies, and CONFIG is this
// node's (or proposes its own entry for the replicated parameters). So a
// CONFIG queued in MULTI holds its place in the proposal with a PING, and
// runs on this node once the transaction has run, its reply put where the
// PING's was: its effect follows the transaction's writes rather than
// sitting between them, and a transaction WATCH aborted runs none of it.

// placeholder holds a queued server command's place in the transaction.
var placeholder = [][]byte{[]byte("PING")}

// localCommand is a server command queued in MULTI: its reply's position
// in EXEC's array and its arguments (owned).
type localCommand struct {
	pos  int
	args [][]byte
}

// queueLocal queues a server command in the transaction (see above).
func (c *conn) queueLocal(h *serverCommand, args [][]byte) {
	owned := make([][]byte, len(args))
	for i, a := range args {
		owned[i] = bytes.Clone(a)
	}
	c.queuedLocal = append(c.queuedLocal, localCommand{pos: c.queued.replies(), args: owned})
	c.queueTx(placeholder, placeholder, statSlot(h.statsID, args))
	out := c.reply()
	*out = resp.AppendSimple(*out, "QUEUED")
}

// queueTx adds args to the transaction, counted in commandstats' slot
// and replied (under RESP3) in the shape of the command as.
func (c *conn) queueTx(args, as [][]byte, slot int) {
	c.queued.add(args)
	c.queuedSlots = append(c.queuedSlots, int32(slot))
	if c.proto.Load() == 3 {
		c.queuedShapes = append(c.queuedShapes, shapeOf(as))
	}
	c.state.multiLen.Add(1)
}

// runLocals runs the transaction's queued server commands and returns
// res, EXEC's reply array, with their replies in their placeholders'
// places; a null array (WATCH aborted it) comes back as it is.
func (c *conn) runLocals(res []byte) []byte {
	locals := c.queuedLocal
	c.queuedLocal = nil
	if len(locals) == 0 || len(res) == 0 || res[0] != '*' || bytes.HasPrefix(res, []byte("*-1\r\n")) {
		return res
	}
	replies := make([][]byte, len(locals))
	for i, l := range locals {
		start := len(c.out)
		lookupServerCommand(l.args[0]).run(c, l.args)
		replies[i] = bytes.Clone(c.out[start:])
		c.out = c.out[:start]
	}
	eol := bytes.IndexByte(res, '\n') + 1
	out := append([]byte(nil), res[:eol]...)
	rest := res[eol:]
	for pos, next := 0, 0; len(rest) > 0; pos++ {
		n := replyLen(rest)
		if next < len(locals) && locals[next].pos == pos {
			out = append(out, replies[next]...)
			next++
		} else {
			out = append(out, rest[:n]...)
		}
		rest = rest[n:]
	}
	return out
}
