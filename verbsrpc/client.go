package verbsrpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
)

// clientMaxSleep caps a sleeping Call's back-off: the answer is due within
// microseconds.
const clientMaxSleep = 50 * time.Microsecond

// Conn is a client's connection to one server. It is not for concurrent
// use: one Call at a time (a second concurrent Call fails); open a Conn per
// goroutine.
type Conn struct {
	cfg    Config
	server registry.Peer
	id     uint64
	k      int
	maxMsg int
	slot   int
	pd     verbs.PD
	ring   verbs.MR // response ring
	ctlMR  verbs.MR // the word heartbeats and the close mark are written from
	reqs   verbs.Remote
	ctl    verbs.Remote
	mask   int // polls between checks of the clock and completions

	// Owned by the calling goroutine.
	sent  uint64 // requests sent
	recvd uint64 // responses consumed
	busy  atomic.Bool
	sentA atomic.Uint64 // sent, for the heartbeat goroutine

	mu     sync.Mutex // the link, the heartbeat counter
	link   *link
	beats  uint64
	broken atomic.Pointer[error]
	closed atomic.Bool
	stopHB chan struct{}
	hbDone chan struct{}
}

// DialID connects to the service cfg.Name of replica id, in the
// incarnation registry.Lookup finds. ctx bounds the whole handshake.
func DialID(ctx context.Context, cfg Config, id int) (*Conn, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	rec, err := cfg.Registry.Lookup(ctx, id, cfg.service())
	if err != nil {
		return nil, fmt.Errorf("verbsrpc: dial %q of replica %d: %w", cfg.Name, id, err)
	}
	return dial(ctx, cfg, rec)
}

// DialPeer connects to the service cfg.Name of peer, that exact
// incarnation.
func DialPeer(ctx context.Context, cfg Config, peer registry.Peer) (*Conn, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return nil, err
	}
	rec, err := cfg.Registry.LookupAt(ctx, peer, cfg.service())
	if err != nil {
		return nil, fmt.Errorf("verbsrpc: dial %q of %v: %w", cfg.Name, peer, err)
	}
	return dial(ctx, cfg, rec)
}

func dial(ctx context.Context, cfg Config, rec registry.Record) (_ *Conn, err error) {
	where := fmt.Sprintf("%q of %v", cfg.Name, rec.Peer)
	svc, err := decodeService(rec.Value)
	if err != nil {
		return nil, fmt.Errorf("verbsrpc: dial %s: %w", where, err)
	}
	if cfg.Slots > svc.slots || cfg.MaxMsg > svc.maxMsg {
		return nil, fmt.Errorf("verbsrpc: dial %s: %w: the client wants %d slots of %d bytes, the server allows %d of %d",
			where, ErrRefused, cfg.Slots, cfg.MaxMsg, svc.slots, svc.maxMsg)
	}
	c := &Conn{cfg: cfg, server: rec.Peer, k: cfg.Slots, maxMsg: cfg.MaxMsg, slot: slotSize(cfg.MaxMsg)}
	switch cfg.Poll {
	case poll.Spin:
		c.mask = 4095
	case poll.SpinYield:
		c.mask = 63
	default:
		c.mask = 0 // a sleep costs far more than a look at the clock
	}
	if c.pd, err = cfg.Device.AllocPD(); err != nil {
		return nil, fmt.Errorf("verbsrpc: dial %s: %w", where, err)
	}
	var cq verbs.CQ
	var qp verbs.QP
	var stage verbs.MR
	defer func() {
		if err != nil {
			for _, cl := range []interface{ Close() error }{qp, stage, c.ctlMR, c.ring, cq, c.pd} {
				if cl != nil {
					cl.Close()
				}
			}
			err = fmt.Errorf("verbsrpc: dial %s: %w", where, err)
		}
	}()
	sq, _ := sendQueue(c.k)
	if cq, err = cfg.Device.CreateCQ(sq); err != nil {
		return nil, err
	}
	if c.ring, err = c.pd.AllocMR(c.k*c.slot, verbs.AccessLocalWrite|verbs.AccessRemoteWrite); err != nil {
		return nil, err
	}
	if stage, err = c.pd.AllocMR(c.k*c.slot, verbs.AccessLocalWrite); err != nil {
		return nil, err
	}
	if c.ctlMR, err = c.pd.AllocMR(8, verbs.AccessLocalWrite); err != nil {
		return nil, err
	}
	if qp, err = c.pd.CreateQP(verbs.QPConfig{SendCQ: cq, MaxSendWR: sq}); err != nil {
		return nil, err
	}
	q := hello{slots: c.k, maxMsg: c.maxMsg, respRing: c.ring.Remote(), endpoint: qp.Endpoint()}
	ans, err := cfg.Registry.Ask(ctx, rec.Peer, cfg.service(), q.encode())
	if err != nil {
		return nil, err
	}
	w, err := decodeWelcome(ans)
	if err != nil {
		return nil, err
	}
	if w.refused != "" {
		return nil, fmt.Errorf("%w: %s", ErrRefused, w.refused)
	}
	if err = qp.Connect(w.endpoint, verbs.AccessRemoteWrite); err != nil {
		return nil, err
	}
	c.id, c.reqs, c.ctl = w.conn, w.reqRing, w.ctl
	c.link = newLink(qp, cq, stage, c.k, c.slot)
	c.stopHB, c.hbDone = make(chan struct{}), make(chan struct{})
	go c.heartbeat()
	return c, nil
}

// ID is the connection's id at the server (Request.Conn there).
func (c *Conn) ID() uint64 { return c.id }

// Server is the server incarnation the Conn is connected to.
func (c *Conn) Server() registry.Peer { return c.server }

// Call sends req and waits for its response, which it copies into resp,
// returning its length. The deadline is ctx's (none: wait until the
// answer, a failure, or ctx's cancellation, checked now and then). While
// Slots requests are outstanding (timed-out ones count until their late
// answers arrive, which are then dropped) Call first waits for one to be
// answered; if none is by the deadline the error wraps ErrBackPressure.
// A failed connection gives ErrPeerDead, here and on every later Call.
// Call does not allocate unless it fails.
func (c *Conn) Call(ctx context.Context, req, resp []byte) (int, error) {
	if !c.busy.CompareAndSwap(false, true) {
		return 0, fmt.Errorf("verbsrpc: conn %d to %q of %v: concurrent Call (a Conn is for one goroutine at a time)", c.id, c.cfg.Name, c.server)
	}
	defer c.busy.Store(false)
	if c.closed.Load() {
		return 0, fmt.Errorf("verbsrpc: conn %d to %q of %v: %w", c.id, c.cfg.Name, c.server, ErrClosed)
	}
	if p := c.broken.Load(); p != nil {
		return 0, *p
	}
	if len(req) > c.maxMsg {
		return 0, fmt.Errorf("verbsrpc: call on conn %d to %q of %v: request of %d bytes, the limit is %d: %w", c.id, c.cfg.Name, c.server, len(req), c.maxMsg, ErrTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return 0, c.ended(ctx, err, false)
	}
	deadline, _ := ctx.Deadline()
	if c.sent-c.recvd >= uint64(c.k) {
		if _, err := c.await(ctx, deadline, ^uint64(0), nil); err != nil {
			return 0, err
		}
	}
	id := c.sent
	c.mu.Lock()
	err := c.link.send(int(id%uint64(c.k)), req, id, id+1, c.reqs)
	c.mu.Unlock()
	if err != nil {
		return 0, c.fail(err)
	}
	c.sent++
	c.sentA.Store(c.sent)
	return c.await(ctx, deadline, id, resp)
}

// await consumes responses in ring order until the one for request want
// (want = ^0: any one, to make room) or the deadline.
func (c *Conn) await(ctx context.Context, deadline time.Time, want uint64, resp []byte) (int, error) {
	w := poll.Waiter{Mode: c.cfg.Poll, Max: clientMaxSleep}
	ring := c.ring.Bytes()
	for i := 1; ; i++ {
		slot := ring[int(c.recvd%uint64(c.k))*c.slot:][:c.slot]
		seq := c.recvd + 1
		if arrived(slot, seq) {
			if payload, id, ok := check(slot, c.maxMsg, seq); ok {
				c.recvd++
				switch {
				case want == ^uint64(0):
					return 0, nil
				case id == want:
					if len(payload) > len(resp) {
						return len(payload), fmt.Errorf("verbsrpc: call %d on conn %d to %q of %v: response of %d bytes, resp holds %d: %w",
							want, c.id, c.cfg.Name, c.server, len(payload), len(resp), ErrTooLarge)
					}
					return copy(resp, payload), nil
				}
				// A late answer to a call that timed out: dropped.
				continue
			}
		}
		if i&c.mask == 0 {
			c.mu.Lock()
			err := c.link.reap()
			c.mu.Unlock()
			if err != nil {
				return 0, c.fail(err)
			}
			if p := c.broken.Load(); p != nil {
				return 0, *p
			}
			if !deadline.IsZero() && time.Now().After(deadline) {
				return 0, c.ended(ctx, context.DeadlineExceeded, want == ^uint64(0))
			}
			if err := ctx.Err(); err != nil {
				return 0, c.ended(ctx, err, want == ^uint64(0))
			}
		}
		w.Wait()
	}
}

// ended is the error of a call whose context ended.
func (c *Conn) ended(ctx context.Context, err error, backPressure bool) error {
	out := c.sent - c.recvd
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("verbsrpc: call on conn %d to %q of %v (%d outstanding): %w", c.id, c.cfg.Name, c.server, out, err)
	}
	if backPressure {
		return fmt.Errorf("verbsrpc: call on conn %d to %q of %v: all %d ring slots held unanswered requests until the deadline: %w: %w: %w",
			c.id, c.cfg.Name, c.server, c.k, ErrBackPressure, ErrTimeout, err)
	}
	return fmt.Errorf("verbsrpc: call %d on conn %d to %q of %v: no answer by the deadline (%d outstanding): %w: %w",
		c.sent-1, c.id, c.cfg.Name, c.server, out, ErrTimeout, err)
}

// fail marks the connection broken by err and returns the error every
// Call gives from now on.
func (c *Conn) fail(err error) error {
	e := fmt.Errorf("verbsrpc: conn %d to %q of %v: %w: %w", c.id, c.cfg.Name, c.server, ErrPeerDead, err)
	c.broken.CompareAndSwap(nil, &e)
	return *c.broken.Load()
}

// heartbeat tells the server the client is alive when no request has
// done so lately, and notices a dead server through the write's failure.
func (c *Conn) heartbeat() {
	defer close(c.hbDone)
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	last := c.sentA.Load()
	for {
		select {
		case <-c.stopHB:
			return
		case <-t.C:
		}
		if s := c.sentA.Load(); s != last {
			last = s
			c.mu.Lock()
			err := c.link.reap()
			c.mu.Unlock()
			if err != nil {
				c.fail(err)
				return
			}
			continue
		}
		c.mu.Lock()
		c.beats++
		err := c.writeCtl(c.beats&^closeBit, false)
		c.mu.Unlock()
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// writeCtl writes v into the server's control word (c.mu held).
func (c *Conn) writeCtl(v uint64, signal bool) error {
	b := c.ctlMR.Bytes()
	if len(b) < 8 {
		return fmt.Errorf("verbsrpc: the control word's memory is gone (device closed under the Conn?): %w", ErrClosed)
	}
	atomic.StoreUint64(seqWord(b), v)
	l := c.link
	stage := l.stage
	l.stage = c.ctlMR
	err := l.write(0, 8, c.ctl, -1, signal)
	l.stage = stage
	return err
}

// Close tells the server the client is leaving, so it frees the
// connection at once, and releases the client's resources. The Device
// stays open.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(c.stopHB)
	<-c.hbDone
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.broken.Load() == nil {
		// Wait for the close mark to land before the QP goes away.
		if err = c.writeCtl(closeBit|c.beats, true); err == nil {
			err = c.link.waitFor(c.link.posted)
		}
		if err != nil {
			err = fmt.Errorf("verbsrpc: close conn %d to %q of %v: the close mark was not delivered: %w", c.id, c.cfg.Name, c.server, err)
		}
	}
	c.link.qp.Close()
	c.link.cq.Close()
	c.link.stage.Close()
	c.ctlMR.Close()
	c.ring.Close()
	c.pd.Close()
	return err
}
