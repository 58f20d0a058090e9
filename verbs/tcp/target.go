package tcp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// helloTimeout bounds how long an accepted connection may take to say who
// it is.
const helloTimeout = 5 * time.Second

// tconn is the target side of one connection: a goroutine of the soft NIC
// that validates and executes the requests of one initiator QP against one
// of our QPs, and acks them in order. Application goroutines are never
// involved.
type tconn struct {
	d    *device
	conn *net.TCPConn
	r    *bufio.Reader
	w    *bufio.Writer

	// From the hello.
	t    *qp
	tgen uint32   // generation of t the initiator connected to
	init endpoint // the initiator QP
	wait time.Duration

	// okEpoch is t's epoch when it was last seen connected to init.
	okEpoch uint64
	// failed is set once a request was refused: like a responder after a
	// NAK, the connection executes nothing more (the initiator has
	// flushed everything behind the refused request).
	failed bool
	ack    [ackLen]byte
}

func newTconn(d *device, c *net.TCPConn) *tconn {
	return &tconn{d: d, conn: c, r: bufio.NewReaderSize(c, bufSize), w: bufio.NewWriterSize(c, bufSize)}
}

func (c *tconn) serve() {
	defer c.d.wg.Done()
	defer func() {
		c.conn.Close()
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	}()
	if err := c.handshake(); err != nil {
		slog.Debug("tcp: refusing connection", "device", c.d.name, "from", c.conn.RemoteAddr(), "err", err)
		return
	}
	for {
		// About to wait for the initiator: push out the acks of what was
		// executed so far, as one write.
		if c.r.Buffered() < reqLen {
			if err := c.w.Flush(); err != nil {
				c.closing("flush acks", err)
				return
			}
		}
		b, err := c.r.Peek(reqLen)
		if err != nil {
			c.closing("read request", err)
			return
		}
		h, err := parseReq(b)
		if err != nil {
			c.closing("malformed request", err)
			return
		}
		c.r.Discard(reqLen)
		if h.op == wireWrite {
			err = c.write(&h)
		} else {
			err = c.read(&h)
		}
		if err != nil {
			c.closing("serve request", err)
			return
		}
	}
}

func (c *tconn) closing(what string, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	slog.Debug("tcp: closing connection", "device", c.d.name, "from", c.conn.RemoteAddr(), "qp", c.t.num, "what", what, "err", err)
}

func (c *tconn) handshake() error {
	c.conn.SetReadDeadline(time.Now().Add(helloTimeout))
	b, err := c.r.Peek(helloLen)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	h, err := parseHello(b)
	if err != nil {
		return err
	}
	c.r.Discard(helloLen)
	st := verbs.StatusSuccess
	t := c.d.lookupQP(h.target.qpn)
	if t == nil || h.target.nonce != c.d.nonce || t.gen.Load() != h.target.gen || t.closed.Load() {
		st = verbs.StatusRetryExceeded
	}
	var rb [helloReplyLen]byte
	putHelloReply(rb[:], st)
	c.conn.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := c.conn.Write(rb[:]); err != nil {
		return fmt.Errorf("send hello reply: %w", err)
	}
	if st != verbs.StatusSuccess {
		return fmt.Errorf("no QP %d at generation %d (device nonce %#x)", h.target.qpn, h.target.gen, h.target.nonce)
	}
	c.conn.SetDeadline(time.Time{})
	c.t, c.tgen, c.init, c.wait = t, h.target.gen, h.init, h.wait
	return nil
}

func (c *tconn) reply(seq uint64, st verbs.Status, length int) error {
	h := ackHeader{seq: seq, status: st, length: uint32(length)}
	h.put(c.ack[:])
	_, err := c.w.Write(c.ack[:])
	if st != verbs.StatusSuccess {
		c.failed = true
	}
	return err
}

// note tells the initiator that request seq is still being landed.
func (c *tconn) note(seq uint64) error {
	h := ackHeader{seq: seq, status: statusProgress}
	h.put(c.ack[:])
	if _, err := c.w.Write(c.ack[:]); err != nil {
		return err
	}
	return c.w.Flush()
}

// skip consumes n payload bytes without looking at them.
func (c *tconn) skip(n int) error {
	_, err := c.r.Discard(n)
	return err
}

// checkQP reports whether our QP is connected to the initiator: in RTR or
// RTS, at the generation the initiator connected to, with the initiator as
// its peer. A QP not connected yet (RESET at that generation) is waited
// for, up to the initiator's retry timeout, as a NIC drops packets for a
// QP not yet in RTR and the initiator retransmits; everything else is a
// definite RetryExceeded.
func (c *tconn) checkQP() verbs.Status {
	t := c.t
	var deadline time.Time
	for {
		t.rxMu.Lock()
		e := t.epoch.Load()
		if e == c.okEpoch {
			t.rxMu.Unlock()
			return verbs.StatusSuccess
		}
		st := verbs.QPState(t.state.Load())
		if t.closed.Load() || t.gen.Load() != c.tgen || st == verbs.StateError {
			t.rxMu.Unlock()
			return verbs.StatusRetryExceeded
		}
		if st == verbs.StateRTR || st == verbs.StateRTS {
			ok := t.peer.sameQP(c.init)
			if ok {
				c.okEpoch = e
			}
			t.rxMu.Unlock()
			if !ok {
				return verbs.StatusRetryExceeded
			}
			return verbs.StatusSuccess
		}
		t.rxMu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(c.wait)
		}
		changed := poll.Until(poll.Sleep, deadline, func() bool {
			return t.epoch.Load() != e || c.d.closing.Load()
		})
		if !changed || c.d.closing.Load() {
			return verbs.StatusRetryExceeded
		}
	}
}

// admit runs the checks of a request that do not change while it
// executes: QP state and peer, QP access, rkey, PD, bounds and MR access.
// On success the MR is returned pinned (nil for a zero-length request,
// which touches no memory and so checks no rkey).
func (c *tconn) admit(h *reqHeader, right verbs.Access) (*mr, int, verbs.Status) {
	if st := c.checkQP(); st != verbs.StatusSuccess {
		return nil, 0, st
	}
	if verbs.Access(c.t.access.Load())&right == 0 {
		return nil, 0, verbs.StatusRemoteAccessError
	}
	if h.length == 0 {
		return nil, 0, verbs.StatusSuccess
	}
	m := c.d.lookupMR(h.rkey)
	if m == nil {
		return nil, 0, verbs.StatusRemoteAccessError
	}
	off := h.addr - m.addr
	if m.pd != c.t.pd || m.access&right == 0 || h.addr < m.addr ||
		off > uint64(m.size) || uint64(h.length) > uint64(m.size)-off {
		m.unpin()
		return nil, 0, verbs.StatusRemoteAccessError
	}
	return m, int(off), verbs.StatusSuccess
}

// write executes a WRITE. The payload is landed in pieces of at most the
// buffer size, each copied while holding the QP's rxMu after re-checking
// that the QP is still connected and still grants remote write, and never
// while waiting for the network: SetAccess takes rxMu, so when it returns
// no further piece lands. A piece refused half-way leaves the earlier
// pieces in place, as a real NIC may.
func (c *tconn) write(h *reqHeader) error {
	n := int(h.length)
	if c.failed {
		return c.skip(n)
	}
	m, off, st := c.admit(h, verbs.AccessRemoteWrite)
	if st != verbs.StatusSuccess {
		if err := c.skip(n); err != nil {
			return err
		}
		return c.reply(h.seq, st, 0)
	}
	t := c.t
	noted := 0
	for done := 0; done < n; {
		if done-noted >= progressEvery {
			noted = done
			if err := c.note(h.seq); err != nil {
				m.unpin()
				return err
			}
		}
		k := min(n-done, c.r.Size())
		if b := c.r.Buffered(); b > 0 && b < k {
			k = b // land what has arrived rather than wait for a full piece
		}
		p, err := c.r.Peek(k)
		if err != nil {
			m.unpin()
			return err
		}
		t.rxMu.Lock()
		switch {
		case t.epoch.Load() != c.okEpoch:
			st = verbs.StatusRetryExceeded
		case verbs.Access(t.access.Load())&verbs.AccessRemoteWrite == 0 || m.closed.Load():
			st = verbs.StatusRemoteAccessError
		default:
			copy(m.buf[off+done:], p)
		}
		t.rxMu.Unlock()
		c.r.Discard(k)
		done += k
		if st != verbs.StatusSuccess {
			m.unpin()
			if err := c.skip(n - done); err != nil {
				return err
			}
			return c.reply(h.seq, st, 0)
		}
	}
	if m != nil {
		m.unpin()
	}
	return c.reply(h.seq, verbs.StatusSuccess, 0)
}

// read executes a READ: the ack is followed by the data, written from the
// pinned MR (straight to the socket when large).
func (c *tconn) read(h *reqHeader) error {
	if c.failed {
		return nil
	}
	m, off, st := c.admit(h, verbs.AccessRemoteRead)
	if st != verbs.StatusSuccess {
		return c.reply(h.seq, st, 0)
	}
	n := int(h.length)
	err := c.reply(h.seq, verbs.StatusSuccess, n)
	if m != nil {
		if err == nil {
			_, err = c.w.Write(m.buf[off : off+n])
		}
		m.unpin()
	}
	return err
}
