package server

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// Pub/Sub. PUBLISH goes through the log like a write (store's pubsub.go):
// each replica, applying it, hands the message to its own subscribers
// (hub.publish, the machine's Env.Publish), so a subscriber on any replica
// hears every message, in log order. SUBSCRIBE and the rest are this
// replica's business: a connection that subscribes enters Redis's
// subscribed mode (RESP2), and from then on its replies and its messages
// leave through one queue drained by a writer goroutine of its own, so that
// applying a PUBLISH never waits for a subscriber's socket. A subscriber
// that lets more than pushLimit bytes pile up is disconnected, as Redis's
// client-output-buffer-limit for pubsub clients does.

// pushLimit bounds the bytes waiting for one subscriber (Redis's default
// hard limit for pubsub clients).
const pushLimit = 32 << 20

// hub is a replica's subscriptions: channel and pattern to connections.
type hub struct {
	mu       sync.Mutex
	channels map[string]map[*conn]struct{}
	patterns map[string]map[*conn]struct{}
}

func newHub() *hub {
	return &hub{channels: map[string]map[*conn]struct{}{}, patterns: map[string]map[*conn]struct{}{}}
}

// publish delivers a message to the subscribers of channel and of every
// pattern matching it, and returns how many deliveries it made.
func (h *hub) publish(channel, message []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.channels[string(channel)] {
		c.push(func(b []byte) []byte {
			b = c.appendPushLen(b, 3)
			b = resp.AppendBulkString(b, "message")
			b = resp.AppendBulk(b, channel)
			return resp.AppendBulk(b, message)
		})
		n++
	}
	for p, cs := range h.patterns {
		if !store.Match([]byte(p), channel) {
			continue
		}
		for c := range cs {
			c.push(func(b []byte) []byte {
				b = c.appendPushLen(b, 4)
				b = resp.AppendBulkString(b, "pmessage")
				b = resp.AppendBulkString(b, p)
				b = resp.AppendBulk(b, channel)
				return resp.AppendBulk(b, message)
			})
			n++
		}
	}
	return n
}

// subscription is one connection's subscribed state (nil until it first
// subscribes).
type subscription struct {
	channels, patterns map[string]struct{}

	mu     sync.Mutex // guards buf, failed
	buf    []byte     // replies and messages waiting for the writer
	failed bool       // the writer could not write, or buf overflowed
	wake   chan struct{}
	done   chan struct{} // closed when the connection ends
}

// count is the number of channels and patterns subscribed to.
func (s *subscription) count() int {
	if s == nil {
		return 0
	}
	return len(s.channels) + len(s.patterns)
}

// subscribed reports whether the connection is in subscribed mode.
func (c *conn) subscribed() bool { return c.sub.count() > 0 }

// push appends what add writes to the connection's queue and wakes its
// writer; past pushLimit the subscriber is dropped (its socket closed).
func (c *conn) push(add func([]byte) []byte) {
	s := c.sub
	s.mu.Lock()
	if s.failed {
		s.mu.Unlock()
		return
	}
	s.buf = add(s.buf)
	if len(s.buf) > pushLimit {
		s.failed = true
		s.buf = nil
		s.mu.Unlock()
		c.s.cfg.Logger.Info("pubsub subscriber dropped: output buffer over its limit", "client", c.id, "limit", pushLimit)
		c.nc.Close()
		return
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// startPushing makes the connection's replies leave through its queue from
// now on, starting its writer goroutine once.
func (c *conn) startPushing() {
	if c.sub != nil {
		return
	}
	s := &subscription{channels: map[string]struct{}{}, patterns: map[string]struct{}{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	h := c.s.cfg.Machine.hub
	h.mu.Lock() // CLIENT LIST looks at other connections' sub under it
	c.sub = s
	h.mu.Unlock()
	// Replies gathered before the first subscription go first.
	if len(c.out) > 0 {
		out := c.out
		c.push(func(b []byte) []byte { return append(b, out...) })
		c.out = c.out[:0]
	}
	go c.pushWriter(c.sub)
}

// pushWriter writes the queue out until the connection ends.
func (c *conn) pushWriter(s *subscription) {
	var out []byte
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		out, s.buf = s.buf, out[:0]
		s.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(6 * c.s.cfg.Timeout))
		if _, err := c.nc.Write(out); err != nil {
			s.mu.Lock()
			s.failed, s.buf = true, nil
			s.mu.Unlock()
			c.nc.Close()
			return
		}
	}
}

// endPubSub forgets the connection's subscriptions when it ends.
func (c *conn) endPubSub() {
	if c.sub == nil {
		return
	}
	c.unsubscribeAll()
	close(c.sub.done)
}

// drop takes c out of m[name] (h.mu held).
func (h *hub) drop(m map[string]map[*conn]struct{}, name string, c *conn) {
	if cs := m[name]; cs != nil {
		delete(cs, c)
		if len(cs) == 0 {
			delete(m, name)
		}
	}
}

// appendPushLen starts a message of n elements: an array in RESP2, a push
// in RESP3.
func (c *conn) appendPushLen(b []byte, n int) []byte {
	if c.proto.Load() == 3 {
		b = append(b, '>')
		b = strconv.AppendInt(b, int64(n), 10)
		return append(b, "\r\n"...)
	}
	return resp.AppendArrayLen(b, n)
}

// appendSubReply appends one (un)subscribe confirmation: kind, the channel
// or pattern (nil: a null), the connection's subscription count.
func (c *conn) appendSubReply(b []byte, kind string, name []byte, count int) []byte {
	b = c.appendPushLen(b, 3)
	b = resp.AppendBulkString(b, kind)
	if name == nil && c.proto.Load() == 3 {
		b = append(b, "_\r\n"...)
	} else if name == nil {
		b = resp.AppendNull(b)
	} else {
		b = resp.AppendBulk(b, name)
	}
	return resp.AppendInt(b, int64(count))
}

// cmdSubscribe serves SUBSCRIBE and PSUBSCRIBE.
func cmdSubscribe(c *conn, args [][]byte) bool {
	c.flushWrites()
	c.s.noteOrdered(c.arrived)
	pattern := lowerEq(args[0], "psubscribe")
	c.startPushing()
	h := c.s.cfg.Machine.hub
	kind, own, all := "subscribe", c.sub.channels, h.channels
	if pattern {
		kind, own, all = "psubscribe", c.sub.patterns, h.patterns
	}
	for _, name := range args[1:] {
		// Under the hub's lock, so that no message for name can reach
		// the queue before its confirmation.
		h.mu.Lock()
		own[string(name)] = struct{}{}
		cs := all[string(name)]
		if cs == nil {
			cs = map[*conn]struct{}{}
			all[string(name)] = cs
		}
		cs[c] = struct{}{}
		n := c.sub.count()
		c.push(func(b []byte) []byte { return c.appendSubReply(b, kind, name, n) })
		h.mu.Unlock()
	}
	return false
}

// cmdUnsubscribe serves UNSUBSCRIBE and PUNSUBSCRIBE: the names given, or
// every one subscribed to.
func cmdUnsubscribe(c *conn, args [][]byte) bool {
	c.flushWrites()
	c.s.noteOrdered(c.arrived)
	pattern := lowerEq(args[0], "punsubscribe")
	kind := "unsubscribe"
	if pattern {
		kind = "punsubscribe"
	}
	if c.sub == nil {
		// Never subscribed: Redis still confirms, in the reply stream.
		out := c.reply()
		if len(args) == 1 {
			*out = c.appendSubReply(*out, kind, nil, 0)
		}
		for _, name := range args[1:] {
			*out = c.appendSubReply(*out, kind, name, 0)
		}
		return false
	}
	h := c.s.cfg.Machine.hub
	own, all := c.sub.channels, h.channels
	if pattern {
		own, all = c.sub.patterns, h.patterns
	}
	names := args[1:]
	if len(names) == 0 {
		for name := range own {
			names = append(names, []byte(name))
		}
		slices.SortFunc(names, bytes.Compare)
		if len(names) == 0 {
			c.push(func(b []byte) []byte { return c.appendSubReply(b, kind, nil, c.sub.count()) })
			return false
		}
	}
	for _, name := range names {
		h.mu.Lock()
		delete(own, string(name))
		h.drop(all, string(name), c)
		n := c.sub.count()
		c.push(func(b []byte) []byte { return c.appendSubReply(b, kind, name, n) })
		h.mu.Unlock()
	}
	return false
}

// cmdPubSub serves PUBSUB CHANNELS, NUMSUB, NUMPAT (and the shard forms,
// empty: this server has no shard channels) for this replica's subscribers.
func cmdPubSub(c *conn, args [][]byte) bool {
	out := c.reply()
	h := c.s.cfg.Machine.hub
	sub := string(lowerInto(nil, args[1]))
	switch {
	case (sub == "channels" || sub == "shardchannels") && len(args) <= 3:
		var names []string
		if sub == "channels" {
			h.mu.Lock()
			for ch := range h.channels {
				if len(args) == 2 || store.Match(args[2], []byte(ch)) {
					names = append(names, ch)
				}
			}
			h.mu.Unlock()
		}
		slices.Sort(names)
		*out = resp.AppendArrayLen(*out, len(names))
		for _, n := range names {
			*out = resp.AppendBulkString(*out, n)
		}
	case sub == "numsub" || sub == "shardnumsub":
		*out = resp.AppendArrayLen(*out, 2*(len(args)-2))
		h.mu.Lock()
		for _, ch := range args[2:] {
			n := 0
			if sub == "numsub" {
				n = len(h.channels[string(ch)])
			}
			*out = resp.AppendBulk(*out, ch)
			*out = resp.AppendInt(*out, int64(n))
		}
		h.mu.Unlock()
	case sub == "numpat" && len(args) == 2:
		h.mu.Lock()
		n := len(h.patterns)
		h.mu.Unlock()
		*out = resp.AppendInt(*out, int64(n))
	case sub == "help" && len(args) == 2:
		help := []string{
			"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CHANNELS [<pattern>]",
			"    Return the currently active channels matching a <pattern> (default: '*').",
			"NUMPAT",
			"    Return number of subscriptions to patterns.",
			"NUMSUB [<channel> ...]",
			"    Return the number of subscribers for the specified channels, excluding",
			"    pattern subscriptions(default: no channels).",
			"SHARDCHANNELS [<pattern>]",
			"    Return the currently active shard level channels matching a <pattern> (default: '*').",
			"SHARDNUMSUB [<shardchannel> ...]",
			"    Return the number of subscribers for the specified shard level channel(s)",
			"HELP",
			"    Prints this help.",
		}
		*out = resp.AppendArrayLen(*out, len(help))
		for _, l := range help {
			*out = resp.AppendSimple(*out, l)
		}
	case sub == "channels" || sub == "shardchannels" || sub == "numpat" || sub == "help":
		*out = resp.AppendError(*out, "ERR wrong number of arguments for 'pubsub|"+sub+"' command")
	default:
		*out = resp.AppendError(*out, "ERR unknown subcommand '"+truncated(args[1])+"'. Try PUBSUB HELP.")
	}
	return false
}

// subscribedAllows is what a connection in subscribed mode may run (RESP2).
func subscribedAllows(name []byte) bool {
	for _, n := range []string{"subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset"} {
		if lowerEq(name, n) {
			return true
		}
	}
	return false
}

// appendSubscribedPong is PING's reply in subscribed mode: an array of
// "pong" and the argument (empty without one).
func appendSubscribedPong(b []byte, args [][]byte) []byte {
	b = resp.AppendArrayLen(b, 2)
	b = resp.AppendBulkString(b, "pong")
	if len(args) > 1 {
		return resp.AppendBulk(b, args[1])
	}
	return resp.AppendBulkString(b, "")
}
