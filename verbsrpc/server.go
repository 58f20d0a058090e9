package verbsrpc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
)

// Handler serves requests. The server's poll goroutine calls it with every
// request found ready in one sweep over all connections. It must Reply to
// each, now or later, from any goroutine. The batch slice is reused after
// the Handler returns; the Requests stay valid until their Reply.
type Handler func(batch []*Request)

// Request is one request taken from a connection's ring.
type Request struct {
	c    *sconn
	id   uint64
	buf  []byte // MaxMsg bytes of the connection
	n    int
	held bool // taken from the ring, not yet replied (c.mu)
}

// Payload is the request's bytes, valid until Reply.
func (r *Request) Payload() []byte { return r.buf[:r.n] }

// Conn identifies the connection the request came on, for per-client
// state and logs.
func (r *Request) Conn() uint64 { return r.c.id }

// Reply writes resp as the request's response and releases the Request,
// which must not be used afterwards. It is safe from any goroutine and
// never allocates on success. A response longer than the connection's
// MaxMsg fails with ErrTooLarge and leaves the request held, to be replied
// again. On a dropped or broken connection the Request is released and
// the error says why.
func (r *Request) Reply(resp []byte) error {
	c := r.c
	if len(resp) > c.maxMsg {
		return fmt.Errorf("verbsrpc: reply to request %d on conn %d: %d bytes, the limit is %d: %w", r.id, c.id, len(resp), c.maxMsg, ErrTooLarge)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.held {
		return fmt.Errorf("verbsrpc: reply to request %d on conn %d: already replied", r.id, c.id)
	}
	r.held = false
	if c.closed != nil {
		return c.closed
	}
	c.free = append(c.free, r)
	i := int(c.nextResp % uint64(c.k))
	if err := c.link.send(i, resp, r.id, c.nextResp+1, c.respRing); err != nil {
		c.broken.Store(true)
		return fmt.Errorf("verbsrpc: reply to request %d on conn %d (client %v): %w: %w", r.id, c.id, c.client, ErrPeerDead, err)
	}
	c.nextResp++
	return nil
}

// sconn is the server's side of one connection.
type sconn struct {
	s      *Server
	id     uint64
	client registry.Peer
	k      int
	maxMsg int
	slot   int
	pd     verbs.PD
	ring   verbs.MR // request ring (k slots), then the control area
	ctl    *uint64  // the control word the client writes
	all    []*Request

	// Owned by the poll goroutine.
	nextReq   uint64 // number of the next request to take
	lastCtl   uint64
	lastReq   uint64
	lastAlive time.Time

	broken atomic.Bool // a write failed

	mu       sync.Mutex
	free     []*Request
	link     *link
	respRing verbs.Remote
	nextResp uint64
	closed   error // set when dropped
}

// Server is a verbsrpc server: the acceptor goroutine handles handshakes
// from the registry inbox, the poll goroutine sweeps every connection's
// request ring and hands what is ready to the Handler.
type Server struct {
	cfg Config
	h   Handler

	conns  atomic.Pointer[[]*sconn] // copy on write; read by the poll goroutine
	mu     sync.Mutex               // serializes changes to conns, and closed
	closed bool
	nextID atomic.Uint64
	count  atomic.Int64

	stop   atomic.Bool
	mode   atomic.Uint32 // the poll.Mode of the poll goroutine's waits
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Listen publishes the service "rpc/<Name>" in the registry, opens the
// inbox of that name and starts the acceptor and the poll goroutine, which
// locks its OS thread in Spin mode. ctx bounds the publication.
func Listen(ctx context.Context, cfg Config, h Handler) (*Server, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("verbsrpc: listen: nil Handler")
	}
	in, err := cfg.Registry.Inbox(cfg.service())
	if err != nil {
		return nil, fmt.Errorf("verbsrpc: listen %q: %w", cfg.Name, err)
	}
	if err := cfg.Registry.Publish(ctx, cfg.service(), service{cfg.Slots, cfg.MaxMsg}.encode()); err != nil {
		return nil, fmt.Errorf("verbsrpc: listen %q: %w", cfg.Name, err)
	}
	s := &Server{cfg: cfg, h: h}
	s.mode.Store(uint32(cfg.Poll))
	s.conns.Store(new([]*sconn))
	actx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.accept(actx, in)
	go s.pollLoop()
	return s, nil
}

// SetPoll changes how the poll goroutine waits when no request is ready,
// from its next sweep on: a replicated server yields while it leads and
// sleeps while it only redirects. Spin, which would need the goroutine's
// thread locked from the start, is taken as yield.
func (s *Server) SetPoll(m poll.Mode) {
	if m == poll.Spin && s.cfg.Poll != poll.Spin {
		m = poll.SpinYield
	}
	s.mode.Store(uint32(m))
}

// Conns is the number of live connections.
func (s *Server) Conns() int { return int(s.count.Load()) }

// Close stops both goroutines and drops every connection: Requests still
// held get an error from Reply, clients get ErrPeerDead.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.stop.Store(true)
	s.cancel()
	s.wg.Wait()
	for _, c := range *s.conns.Load() {
		s.drop(c, "server closing")
	}
	return nil
}

// accept answers handshakes until the server closes.
func (s *Server) accept(ctx context.Context, in *registry.Inbox) {
	defer s.wg.Done()
	for {
		q, err := in.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.cfg.Logger.Warn("verbsrpc: handshake inbox", "service", s.cfg.Name, "err", err)
			if !errors.Is(err, registry.ErrMalformedValue) {
				poll.SleepContext(ctx, 100*time.Millisecond)
			}
			continue
		}
		ans, c := s.handshake(q)
		if err := q.Answer(ctx, ans.encode()); err != nil {
			s.cfg.Logger.Warn("verbsrpc: answer handshake", "service", s.cfg.Name, "client", q.Asker(), "err", err)
			// The client never learns of c; its silence drops it.
		}
		if c != nil {
			s.cfg.Logger.Info("verbsrpc: connected", "service", s.cfg.Name, "conn", c.id, "client", c.client,
				"slots", c.k, "max_msg", c.maxMsg)
		}
	}
}

// handshake builds the connection a client asks for, or says why not.
func (s *Server) handshake(q *registry.Question) (welcome, *sconn) {
	h, err := decodeHello(q.Value())
	refuse := func(format string, args ...any) (welcome, *sconn) {
		w := welcome{refused: fmt.Sprintf(format, args...)}
		s.cfg.Logger.Warn("verbsrpc: refused", "service", s.cfg.Name, "client", q.Asker(), "why", w.refused)
		return w, nil
	}
	switch {
	case err != nil:
		return refuse("%v", err)
	case h.slots < 1 || h.slots > s.cfg.Slots:
		return refuse("client asks for %d slots, server %q allows 1..%d", h.slots, s.cfg.Name, s.cfg.Slots)
	case h.maxMsg < 0 || h.maxMsg > s.cfg.MaxMsg:
		return refuse("client asks for messages of %d bytes, server %q allows up to %d", h.maxMsg, s.cfg.Name, s.cfg.MaxMsg)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return refuse("server %q is closing", s.cfg.Name)
	}
	c, err := s.newConn(h, q.Asker())
	if err != nil {
		return refuse("server %q cannot set up the connection: %v", s.cfg.Name, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.release("server closing")
		return refuse("server %q is closing", s.cfg.Name)
	}
	old := *s.conns.Load()
	next := make([]*sconn, len(old), len(old)+1)
	copy(next, old)
	next = append(next, c)
	s.conns.Store(&next)
	s.count.Add(1)
	s.mu.Unlock()
	return welcome{conn: c.id, reqRing: c.ring.Remote(), ctl: c.ring.Remote().Add(uint64(c.k * c.slot)), endpoint: c.link.qp.Endpoint()}, c
}

// newConn allocates a connection's resources and connects its QP to the
// client's endpoint.
func (s *Server) newConn(h hello, client registry.Peer) (_ *sconn, err error) {
	c := &sconn{s: s, id: s.nextID.Add(1), client: client, k: h.slots, maxMsg: h.maxMsg, slot: slotSize(h.maxMsg), respRing: h.respRing}
	var (
		cq    verbs.CQ
		qp    verbs.QP
		stage verbs.MR
	)
	if c.pd, err = s.cfg.Device.AllocPD(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, cl := range []interface{ Close() error }{qp, stage, c.ring, cq, c.pd} {
				if cl != nil {
					cl.Close()
				}
			}
		}
	}()
	sq, _ := sendQueue(c.k)
	if cq, err = s.cfg.Device.CreateCQ(sq); err != nil {
		return nil, err
	}
	if c.ring, err = c.pd.AllocMR(c.k*c.slot+ctlLen, verbs.AccessLocalWrite|verbs.AccessRemoteWrite); err != nil {
		return nil, err
	}
	if stage, err = c.pd.AllocMR(c.k*c.slot, verbs.AccessLocalWrite); err != nil {
		return nil, err
	}
	if qp, err = c.pd.CreateQP(verbs.QPConfig{SendCQ: cq, MaxSendWR: sq}); err != nil {
		return nil, err
	}
	if err = qp.Connect(h.endpoint, verbs.AccessRemoteWrite); err != nil {
		return nil, err
	}
	c.link = newLink(qp, cq, stage, c.k, c.slot)
	c.ctl = seqWord(c.ring.Bytes()[:c.k*c.slot+8])
	c.all = make([]*Request, c.k)
	c.free = make([]*Request, 0, c.k)
	for i := range c.all {
		c.all[i] = &Request{c: c, buf: make([]byte, c.maxMsg)}
		c.free = append(c.free, c.all[i])
	}
	c.lastAlive = time.Now()
	return c, nil
}

// release frees a connection's resources; held Requests get reason from
// Reply.
func (c *sconn) release(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return
	}
	c.closed = fmt.Errorf("verbsrpc: conn %d (client %v) of %q dropped: %s: %w", c.id, c.client, c.s.cfg.Name, reason, ErrClosed)
	c.link.qp.Close()
	c.link.cq.Close()
	c.link.stage.Close()
	c.ring.Close()
	c.pd.Close()
}

// drop removes c from the sweep and releases it. Only the poll goroutine
// (or Close, once it has stopped) calls it: nothing reads c's ring after.
func (s *Server) drop(c *sconn, reason string) {
	s.mu.Lock()
	old := *s.conns.Load()
	next := make([]*sconn, 0, len(old))
	for _, o := range old {
		if o != c {
			next = append(next, o)
		}
	}
	if len(next) != len(old) {
		s.count.Add(-1)
	}
	s.conns.Store(&next)
	s.mu.Unlock()
	c.release(reason)
	s.cfg.Logger.Info("verbsrpc: dropped", "service", s.cfg.Name, "conn", c.id, "client", c.client, "why", reason)
}

// Poll-loop constants: the sleep cap of an idle server, and how many
// sweeps pass between checks of the control words and the clock.
const (
	serverMaxSleep = 250 * time.Microsecond
	houseEvery     = 64
)

// pollLoop sweeps the request rings until the server closes.
func (s *Server) pollLoop() {
	defer s.wg.Done()
	if s.cfg.Poll == poll.Spin {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	w := poll.Waiter{Mode: s.cfg.Poll, Max: serverMaxSleep}
	var batch []*Request
	for sweep := 1; !s.stop.Load(); sweep++ {
		if m := poll.Mode(s.mode.Load()); m != w.Mode {
			w = poll.Waiter{Mode: m, Max: serverMaxSleep}
		}
		batch = batch[:0]
		for _, c := range *s.conns.Load() {
			batch = c.take(batch)
		}
		if len(batch) > 0 {
			s.h(batch)
			clear(batch) // the Requests are the handler's now
			w.Reset()
		} else {
			w.Wait()
		}
		if sweep%houseEvery == 0 {
			s.housekeeping()
		}
	}
}

// take appends to batch every request ready in c's ring, as long as c has
// free Requests: a client with more than K unanswered requests finds the
// extra ones left in its ring until a Reply frees a Request.
func (c *sconn) take(batch []*Request) []*Request {
	ring := c.ring.Bytes()
	for {
		slot := ring[int(c.nextReq%uint64(c.k))*c.slot:][:c.slot]
		seq := c.nextReq + 1
		if !arrived(slot, seq) {
			return batch
		}
		payload, id, ok := check(slot, c.maxMsg, seq)
		if !ok || id != c.nextReq {
			return batch // still landing (or corrupt: never delivered)
		}
		c.mu.Lock()
		n := len(c.free)
		if n == 0 {
			c.mu.Unlock()
			return batch
		}
		r := c.free[n-1]
		c.free = c.free[:n-1]
		r.held = true
		c.mu.Unlock()
		r.id, r.n = id, copy(r.buf, payload)
		c.nextReq++
		batch = append(batch, r)
	}
}

// housekeeping drops the connections whose client closed, broke or went
// silent for longer than ClientTimeout.
func (s *Server) housekeeping() {
	now := time.Now()
	for _, c := range *s.conns.Load() {
		ctl := atomic.LoadUint64(c.ctl)
		switch {
		case ctl&closeBit != 0:
			s.drop(c, "closed by the client")
		case c.broken.Load():
			s.drop(c, "a reply could not be written (client gone?)")
		case ctl != c.lastCtl || c.nextReq != c.lastReq:
			c.lastCtl, c.lastReq, c.lastAlive = ctl, c.nextReq, now
		case now.Sub(c.lastAlive) > s.cfg.ClientTimeout:
			s.drop(c, fmt.Sprintf("client silent for %v (heartbeats stopped)", now.Sub(c.lastAlive).Round(time.Millisecond)))
		}
	}
}
