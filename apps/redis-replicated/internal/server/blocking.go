package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// Blocking commands (see doc.go and the store's blocking.go). A blocking
// command on the leader, outside MULTI, is proposed alone as
// gomu.blockat <waiter id> <arrival> <command…>; an empty reply means it blocked, and
// its reply then arrives through the Machine's owners map when a later
// log entry serves it, times it out or ends it.

// waiterIDLen is a waiter id's length: the server's incarnation nonce, the
// connection id and the connection's sequence number, 8 bytes each.
const waiterIDLen = 24

// newNonce is a random incarnation nonce: waiter ids of this server
// process never collide with those of an earlier or later one.
func newNonce() [8]byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], rand.Uint64())
	return n
}

// awaitReply makes the channel id's reply will arrive on, before the
// proposal that may block is made: a serve applied before the connection
// waits is kept, not lost.
func (m *Machine) awaitReply(id string) chan []byte {
	ch := make(chan []byte, 1)
	m.ownersMu.Lock()
	m.owners[id] = ch
	m.ownersMu.Unlock()
	return ch
}

// forgetWaiter drops id's channel: whatever is delivered to it later is
// dropped (its connection gave up or left).
func (m *Machine) forgetWaiter(id string) {
	m.ownersMu.Lock()
	delete(m.owners, id)
	m.ownersMu.Unlock()
}

// deliverUnblocked is the store's Env.Unblock: it runs in Apply and never
// waits (each id gets one reply, and its channel holds one).
func (m *Machine) deliverUnblocked(id string, reply []byte) {
	m.ownersMu.Lock()
	ch := m.owners[id]
	delete(m.owners, id)
	m.ownersMu.Unlock()
	if ch != nil {
		ch <- bytes.Clone(reply)
	}
}

// orphans looks for the waiters no connection of this process waits for:
// foreign reports some of another process (an earlier leader's), own lists
// (up to max) this process's whose connection gave up or left without
// ending them in the log.
func (m *Machine) orphans(nonce []byte, max int) (own []string, foreign bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.st.Waiters() == 0 {
		return nil, false
	}
	m.ownersMu.Lock()
	defer m.ownersMu.Unlock()
	m.st.EachWaiter(func(id string) {
		switch {
		case !strings.HasPrefix(id, string(nonce)):
			foreign = true
		case m.owners[id] == nil && len(own) < max:
			own = append(own, id)
		}
	})
	return own, foreign
}

// mayBlock reports whether a Blocking command outside MULTI takes the
// blocking path, with its timeout: not when it will not block (XREAD and
// XREADGROUP without BLOCK, which run as a read and a batched write); a
// write with bad arguments does, and gets its error from the log as it
// would when valid, a read's comes from the read path.
func mayBlock(args [][]byte, write bool) (ms int64, blocks bool) {
	ms, ok := store.BlockTimeout(args)
	if !ok {
		return 0, write
	}
	return ms, ms >= 0
}

// block runs a blocking command outside MULTI on the leader: proposed
// alone, answered at once or once served, timed out or ended (ms is its
// timeout, 0: forever).
func (c *conn) block(args [][]byte, ms int64) bool {
	c.s.noteOrdered(c.arrived)
	c.flushWrites()
	sh := shapeOf(args)
	c.blockSeq++
	idb := make([]byte, 0, waiterIDLen)
	idb = append(idb, c.s.nonce[:]...)
	idb = binary.BigEndian.AppendUint64(idb, uint64(c.id))
	idb = binary.BigEndian.AppendUint64(idb, c.blockSeq)
	id := string(idb)
	m := c.s.cfg.Machine
	ch := m.awaitReply(id)
	var p proposal // its own: the engine may still read a failed one
	p.reset(propBatch)
	p.use(int(c.state.db.Load())) // the waiter waits in the connection's database
	// Queued by when it arrived, not by when this entry reaches the log
	// (arrival.go).
	at := strconv.AppendInt(nil, c.arrived, 10)
	p.add(append([][]byte{[]byte(store.BlockAtCommand), idb, at}, args...))
	if hook := c.s.beforeBlock.Load(); hook != nil {
		(*hook)()
	}
	c.fence()
	res, err := c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
	var reply []byte
	quit := false
	switch {
	case err != nil:
		m.forgetWaiter(id)
		reply = resp.AppendError(nil, c.s.replicationError(err))
	case len(res) > 0:
		m.forgetWaiter(id)
		reply = res
	default:
		// The replies before it leave now, as Redis sends them while a
		// client blocks; and the fence waits neither for it nor for what
		// it sends meanwhile, which it reads only when served.
		c.intake.Store(0)
		c.s.order.remove(c.fd)
		c.write()
		reply, quit = c.waitUnblocked(id, ch, ms)
		c.s.order.add(c.fd)
	}
	start := len(c.out)
	c.out = append(c.out, reply...)
	if c.proto.Load() == 3 {
		c.one[0] = sh
		c.out = c.resp3Replies(c.out, start, c.one[:])
	}
	return quit
}

// blockedPoll is how often a blocked connection checks that its replica
// still leads.
func (s *Server) blockedPoll() time.Duration {
	return min(max(s.cfg.Timeout/10, 10*time.Millisecond), 100*time.Millisecond)
}

// waitUnblocked waits for id's reply. At the deadline (ms > 0) it proposes
// gomu.unblock … timeout, whose Apply delivers the timeout reply unless a
// serve came first; a client that leaves proposes it too and quits. A
// replica that has not led for longer than Timeout gives up with
// ErrLeadershipChanged: the new leader's gomu.unblockall ends the waiter
// in the log, where this replica may not follow (a serve committed
// meanwhile is lost to this client).
func (c *conn) waitUnblocked(id string, ch chan []byte, ms int64) (reply []byte, quit bool) {
	c.state.blocked.Store(true)
	c.blockedID.Store(&id)
	c.s.blockedClients.Add(1)
	defer func() {
		c.s.blockedClients.Add(-1)
		c.blockedID.Store(nil)
		c.state.blocked.Store(false)
	}()
	closed, stopWatch := c.watchClosed()
	defer stopWatch()
	var deadline <-chan time.Time
	if ms > 0 && ms < int64(100*365*24*time.Hour/time.Millisecond) {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	poll := time.NewTicker(c.s.blockedPoll())
	defer poll.Stop()
	var notLeading time.Time
	retry := false
	for {
		select {
		case r := <-ch:
			return r, false
		case <-deadline:
			deadline = nil
			_, err := c.proposeUnblock(id, "timeout")
			retry = err != nil
		case <-closed:
			c.proposeUnblock(id, "timeout")
			c.s.cfg.Machine.forgetWaiter(id)
			return nil, true
		case <-c.s.stop:
			c.s.cfg.Machine.forgetWaiter(id)
			return nil, true
		case <-poll.C:
			if c.s.link.Leads() {
				notLeading = time.Time{}
				if retry { // the timeout's unblock did not commit
					_, err := c.proposeUnblock(id, "timeout")
					retry = err != nil
				}
				continue
			}
			if notLeading.IsZero() {
				notLeading = time.Now()
			} else if time.Since(notLeading) > c.s.cfg.Timeout {
				c.s.cfg.Machine.forgetWaiter(id)
				return resp.AppendError(nil, store.ErrLeadershipChanged), false
			}
		}
	}
}

// proposeUnblock ends waiter id's wait through the log; its reply, if it
// commits, arrives on the waiter's channel. It reports the proposal's
// integer reply (1: the waiter was there), or an error.
func (c *conn) proposeUnblock(id, reason string) ([]byte, error) {
	if !c.s.link.Leads() {
		return nil, errNotLeading
	}
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte(store.UnblockCommand), []byte(id), []byte(reason)})
	return c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
}

var errNotLeading = errors.New("not leading")

// watchClosed reads from the client while it is blocked, so that one that
// leaves is noticed; what it sends meanwhile is kept for after the wait.
// stop ends the reading (and must be called before the connection reads
// again).
func (c *conn) watchClosed() (closed <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if err := c.rd.Fill(); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					close(ch)
				}
				return
			}
		}
	}()
	return ch, func() {
		_ = c.nc.SetReadDeadline(time.Now())
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// unblockClient is CLIENT UNBLOCK's work: it ends the wait of connection
// id, if blocked, through the log.
func (c *conn) unblockClient(id int64, withError bool) []byte {
	var target *conn
	c.s.mu.Lock()
	for o := range c.s.conns {
		if o.id == id && !o.state.killed.Load() {
			target = o
		}
	}
	c.s.mu.Unlock()
	if target == nil {
		return resp.AppendInt(nil, 0)
	}
	wid := target.blockedID.Load()
	if wid == nil {
		return resp.AppendInt(nil, 0)
	}
	reason := "timeout"
	if withError {
		reason = "error"
	}
	res, err := c.proposeUnblock(*wid, reason)
	if err != nil {
		if errors.Is(err, errNotLeading) {
			return resp.AppendError(nil, c.s.readOnlyError())
		}
		return resp.AppendError(nil, c.s.replicationError(err))
	}
	return res
}

// unblockOrphans ends, through the log, the waits nobody waits for: an
// earlier leader's waiters (gomu.unblockall: their owners, if they still
// apply the log, answer ErrLeadershipChanged) and this process's own whose
// connection gave up while it did not lead, or left, or whose gomu.blockat
// committed after its proposal had timed out (gomu.unblock each). The
// leader calls it periodically; it proposes nothing while there are none.
func (s *Server) unblockOrphans() {
	own, foreign := s.cfg.Machine.orphans(s.nonce[:], maxOrphans)
	if len(own) == 0 && !foreign {
		return
	}
	var p proposal
	p.reset(propBatch)
	if foreign {
		p.add([][]byte{[]byte(store.UnblockAllCommand), s.nonce[:]})
	}
	for _, id := range own {
		p.add([][]byte{[]byte(store.UnblockCommand), []byte(id), []byte("timeout")})
	}
	if _, err := s.replicate(deadline.New(), p.seal(time.Now().UnixMilli(), rand.Uint64())); err != nil {
		s.cfg.Logger.Debug("unblocking orphan waiters not replicated", "err", err)
	}
}

// maxOrphans bounds the own orphans one proposal ends.
const maxOrphans = 1000

// clientUnblock is CLIENT UNBLOCK client-id [TIMEOUT|ERROR], its
// arguments checked in Redis 7.0's order.
func (c *conn) clientUnblock(args [][]byte) []byte {
	withError := false
	if len(args) == 4 {
		switch {
		case lowerEq(args[3], "timeout"):
		case lowerEq(args[3], "error"):
			withError = true
		default:
			return resp.AppendError(nil, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
		}
	}
	id, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return resp.AppendError(nil, "ERR value is not an integer or out of range")
	}
	return c.unblockClient(id, withError)
}
