package server

import (
	"github.com/gomu-rdma/gomu/internal/resp"
)

// CLIENT REPLY ON|OFF|SKIP, as Redis 7.0 keeps it: OFF silences every
// reply until ON; SKIP silences the reply of the next command only. The
// confirmations of SUBSCRIBE and its kin are pushes, which Redis sends
// even to a silenced client, and so do we.
const (
	replyOff      uint8 = 1 << iota // CLIENT REPLY OFF
	replySkip                       // this command's reply is dropped
	replySkipNext                   // CLIENT REPLY SKIP ran: the next one's is
	replyInside                     // dispatchSilenced is running a command
)

// clientReply is CLIENT REPLY mode.
func (c *conn) clientReply(out *[]byte, mode []byte) bool {
	switch {
	case lowerEq(mode, "on"):
		c.replyFlags &^= replyOff | replySkip
		*out = resp.AppendOK(*out)
	case lowerEq(mode, "off"):
		c.replyFlags |= replyOff
	case lowerEq(mode, "skip"):
		if c.replyFlags&replyOff == 0 {
			c.replyFlags |= replySkipNext
		}
	default:
		*out = resp.AppendError(*out, "ERR syntax error")
	}
	return false
}

// dispatchSilenced runs one command while CLIENT REPLY is not ON (or was
// just changed): its writes are replicated at once, so that its reply can
// be told apart from the batch's and dropped.
func (c *conn) dispatchSilenced(args [][]byte) bool {
	if c.replyFlags&replySkipNext != 0 {
		c.replyFlags = c.replyFlags&^replySkipNext | replySkip
	}
	c.flushWrites()
	mark := len(c.out)
	c.replyFlags |= replyInside
	quit := c.dispatch(args)
	c.flushWrites()
	c.replyFlags &^= replyInside
	if c.replyFlags&(replyOff|replySkip) != 0 && !isSubscription(args[0]) {
		c.out = c.out[:mark]
	}
	c.replyFlags &^= replySkip
	return quit
}

// isSubscription reports whether name is a command whose replies are
// pushes: (P)SUBSCRIBE and (P)UNSUBSCRIBE.
func isSubscription(name []byte) bool {
	return lowerEq(name, "subscribe") || lowerEq(name, "psubscribe") ||
		lowerEq(name, "unsubscribe") || lowerEq(name, "punsubscribe")
}
