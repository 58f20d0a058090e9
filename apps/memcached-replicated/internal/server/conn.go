package server

import (
	"bufio"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/memcache"
)

// conn is one client connection, served by one goroutine.
type conn struct {
	s    *Server
	nc   net.Conn
	br   *bufio.Reader
	text *memcache.Parser
	bin  *memcache.BinaryParser
	cmd  memcache.Command
	out  []byte
	slot int // reply slot in the machine, -1 standalone
	// failed parses a failed proposal's requests again to answer each.
	failed *requestParser
	// ctx bounds each proposal and read barrier, re-armed every time.
	ctx *deadline.Context

	// prop collects the writes of the current batch.
	prop proposal
	// readOK: this batch already passed its read barrier.
	readOK bool
}

const connBufSize = 16 << 10

func (s *Server) newConn(nc net.Conn, slot int) *conn {
	br := bufio.NewReaderSize(countingReader{nc, &s.bytesRead}, connBufSize)
	c := &conn{s: s, nc: nc, br: br, slot: slot, ctx: deadline.New(),
		text: memcache.NewParser(br, s.cfg.Limits),
		bin:  memcache.NewBinaryParser(br, s.cfg.Limits),
	}
	c.prop.reset()
	return c
}

// serve reads batches of commands until the client leaves or breaks the
// protocol. The protocol is the first byte's, as memcached decides it: a
// binary request's magic byte, or text.
func (c *conn) serve() {
	defer c.nc.Close()
	var proto memcache.Proto
	for started := false; ; started = true {
		if c.s.cfg.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		p, err := memcache.DetectProto(c.br)
		if err != nil {
			return
		}
		if !started {
			proto = p // the first byte chose the protocol
		}
		c.s.link.AwaitResumed(c.s.stop)
		c.readOK = false
		quit := c.batch(proto)
		c.flushWrites()
		// Paused while the batch ran: its replies wait for the resume.
		c.s.link.AwaitResumed(c.s.stop)
		if !c.write() || quit {
			return
		}
	}
}

// batch handles the commands buffered now (at least one); it reports
// whether the connection ends. A command whose bytes are not all in yet is
// read to its end within the timeout, as one client's slowness must not
// hold a batch forever.
func (c *conn) batch(proto memcache.Proto) bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.Timeout))
	for first := true; first || c.br.Buffered() > 0; first = false {
		var err error
		if proto == memcache.ProtoBinary {
			err = c.bin.Parse(&c.cmd)
		} else {
			err = c.text.Parse(&c.cmd)
		}
		if err != nil {
			var pe *memcache.ProtocolError
			if !errors.As(err, &pe) {
				return true // EOF, a network error, a client too slow
			}
			if pe == memcache.ErrTooLarge {
				c.s.tooLarge.Add(1)
				if (c.cmd.Op == memcache.OpSet || c.cmd.Op == memcache.OpMetaSet) && c.s.link.Leads() {
					// memcached drops the item a set too large would
					// have replaced (a text, binary or meta set, in
					// any mode): a write like any other.
					if c.s.link.Replica == nil {
						c.s.cfg.Machine.st.Delete(c.cmd.Key(), time.Now().UnixNano())
					} else {
						c.prop.addDelete(c.cmd.Key())
					}
				}
			}
			c.flushWrites()
			c.out = memcache.AppendCommandError(c.out, &c.cmd, pe)
			if pe.Close {
				return true
			}
			continue
		}
		if c.dispatch() {
			return true
		}
	}
	return false
}

// dispatch handles one parsed command; it reports whether the connection
// ends.
func (c *conn) dispatch() bool {
	cmd := &c.cmd
	switch {
	case cmd.Op == memcache.OpQuit:
		c.flushWrites()
		if cmd.Proto == memcache.ProtoBinary {
			c.out = memcache.AppendBinaryQuit(c.out, cmd)
		}
		return true
	case cmd.Op == memcache.OpVersion:
		c.flushWrites()
		if cmd.Proto == memcache.ProtoBinary {
			c.out = memcache.AppendBinaryVersion(c.out, cmd, c.s.cfg.Version)
		} else {
			c.out = memcache.AppendVersion(c.out, c.s.cfg.Version)
		}
		return false
	case cmd.Op == memcache.OpStats:
		c.flushWrites()
		c.out = c.s.appendStats(c.out, cmd)
		return false
	case cmd.IsWrite():
		if !c.s.link.Leads() {
			c.flushWrites()
			c.out = memcache.AppendFailure(c.out, cmd, c.s.notLeaderError())
			return false
		}
		if c.s.link.Replica == nil {
			c.out = c.s.cfg.Machine.st.Exec(c.out, cmd, time.Now().UnixNano())
			return false
		}
		if len(c.prop.buf)+len(cmd.Value)+memcache.DefaultMaxLineLen+16 > c.s.cfg.MaxProposal {
			c.flushWrites()
		}
		c.prop.add(cmd)
		return false
	}
	// A read: after the batch's writes so far, which it must see.
	c.flushWrites()
	if !c.readBarrier() {
		return false
	}
	c.out = c.s.cfg.Machine.st.Exec(c.out, cmd, time.Now().UnixNano())
	return false
}

// readBarrier makes the reads of this batch linearizable (see consensus
// ReadBarrier), or on a follower with StaleFollowerReads as fresh as the
// leader last told it; on failure it appends the error reply and reports
// false.
func (c *conn) readBarrier() bool {
	r := c.s.link.Replica
	if r == nil || c.readOK {
		return true
	}
	c.ctx.Arm(c.s.cfg.Timeout)
	err := r.ServeReadBarrier(c.ctx, c.s.cfg.StaleFollowerReads)
	c.ctx.Disarm()
	if err != nil {
		var nl consensus.ErrNotLeader
		if errors.As(err, &nl) && nl.Leader != 0 {
			// A read needs no redirect: any replica serves it.
			c.out = memcache.AppendFailure(c.out, &c.cmd, errReadMoved)
			return false
		}
		c.out = memcache.AppendFailure(c.out, &c.cmd, c.s.replicationError(err))
		return false
	}
	c.readOK = true
	return true
}

// flushWrites replicates the batch's pending writes and appends their
// replies. When replication fails, every command of the proposal is
// answered with the error, as memcache.AppendFailure words it.
func (c *conn) flushWrites() {
	if c.prop.count == 0 {
		return
	}
	m := c.s.cfg.Machine
	rs := &m.slots[c.slot]
	seq := m.seq.Add(1)
	rs.want.Store(seq)
	p := c.prop.seal(time.Now().UnixNano(), m.nonce, c.slot, seq)
	_, err := c.s.link.Propose(c.ctx, p)
	rs.want.Store(0)
	if err != nil {
		msg := c.s.replicationError(err)
		c.failProposal(msg)
		// The engine may still read a proposal that timed out: never
		// reuse its buffer.
		c.prop.buf = nil
	} else {
		c.out = append(c.out, rs.buf...)
	}
	if cap(rs.buf) > 64<<10 {
		// A gat of a large item grew it: do not keep that much per
		// connection. (No Apply writes it now: want is 0.)
		rs.buf = nil
	}
	c.prop.reset()
}

// failProposal answers each command of the pending proposal with msg, in
// its protocol.
func (c *conn) failProposal(msg string) {
	if c.failed == nil {
		c.failed = newRequestParser()
	}
	var cmd memcache.Command
	for rest := c.prop.buf[propHeader:]; ; {
		proto, req, next, ok := nextRequest(rest)
		if !ok {
			return
		}
		if c.failed.parse(&cmd, proto, req) == nil {
			c.out = memcache.AppendFailure(c.out, &cmd, msg)
		}
		rest = next
	}
}

// write sends the replies gathered so far.
func (c *conn) write() bool {
	if len(c.out) == 0 {
		return true
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(6 * c.s.cfg.Timeout))
	n, err := c.nc.Write(c.out)
	c.s.bytesWritten.Add(uint64(n))
	if cap(c.out) > 1<<20 {
		c.out = nil // do not keep a huge reply's buffer for every connection
	} else {
		c.out = c.out[:0]
	}
	return err == nil
}

// countingReader counts the bytes a connection reads, for stats.
type countingReader struct {
	r net.Conn
	n *atomic.Uint64
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n.Add(uint64(n))
	return n, err
}
