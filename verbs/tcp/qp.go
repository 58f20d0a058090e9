package tcp

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

// wr is one posted work request in its send-queue slot.
type wr struct {
	id       uint64
	op       verbs.Opcode
	signaled bool
	inlined  bool // payload copied into the QP's inline buffer at post time
	length   int
	off      int // offset in mr
	remote   verbs.Remote
	mr       *mr          // pinned local MR; nil when inlined or pre-failed
	pre      verbs.Status // nonzero: never sent, fails with this status in turn
}

// qp is a reliable-connected queue pair. It plays two roles: initiator of
// its own posts (through its link) and target of its peer's requests
// (served by the device's target connections).
//
// Locks, in order: ctl (control operations, serialised), mu (send queue
// and initiator state), rxMu (what the target side checks). state, gen,
// closed and the peer are written with both mu and rxMu held, so either
// lock gives a stable view; they are atomics so that State and the
// target's fast path can read them without locking.
type qp struct {
	dev       *device
	pd        *pd
	cq        *cq
	num       uint32
	maxWR     int
	maxInline int

	ctl sync.Mutex

	state  atomic.Uint32 // verbs.QPState
	closed atomic.Bool
	gen    atomic.Uint32

	// Target side. epoch changes whenever state, gen, closed or peer
	// change, so a target connection can cache "this QP is connected to
	// my initiator" as the epoch it validated. access is the fence:
	// written under rxMu, and a WRITE lands only under rxMu after
	// checking it.
	rxMu   sync.Mutex
	epoch  atomic.Uint64
	access atomic.Uint32
	peer   endpoint // guarded by rxMu

	// Initiator side, guarded by mu. Sequence numbers grow forever; slot
	// i%maxWR holds request i. head <= compl <= sent <= tail:
	// [head, compl) acked unsignaled requests still holding their slots,
	// [compl, sent) in flight, [sent, tail) posted, not yet sent.
	mu     sync.Mutex
	slots  []wr
	inline []byte // maxWR*maxInline bytes, mmap'd; slot i's payload at i*maxInline
	head   uint64
	compl  uint64
	sent   uint64
	tail   uint64
	link   *link
}

func newQP(p *pd, cfg verbs.QPConfig) (*qp, error) {
	d := p.dev
	if cfg.SendCQ == nil {
		return nil, fmt.Errorf("tcp: create qp: nil SendCQ: %w", verbs.ErrInvalidArgument)
	}
	c, ok := cfg.SendCQ.(*cq)
	if !ok {
		return nil, fmt.Errorf("tcp: create qp: SendCQ %T is not a tcp CQ: %w", cfg.SendCQ, verbs.ErrForeignObject)
	}
	if c == nil {
		return nil, fmt.Errorf("tcp: create qp: nil SendCQ: %w", verbs.ErrInvalidArgument)
	}
	if c.dev != d {
		return nil, fmt.Errorf("tcp: create qp: SendCQ belongs to device %s, not %s: %w", c.dev.name, d.name, verbs.ErrForeignObject)
	}
	maxWR, maxInline := cfg.MaxSendWR, cfg.MaxInline
	if maxWR == 0 {
		maxWR = verbs.DefaultMaxSendWR
	}
	if maxInline == 0 {
		maxInline = verbs.DefaultMaxInline
	}
	if maxWR < 0 || maxWR > maxSendWR || maxInline < 0 {
		return nil, fmt.Errorf("tcp: create qp: MaxSendWR %d (want 1..%d), MaxInline %d: %w",
			cfg.MaxSendWR, maxSendWR, cfg.MaxInline, verbs.ErrInvalidArgument)
	}
	maxInline = min(maxInline, maxInlineCap)
	q := &qp{
		dev:       d,
		pd:        p,
		cq:        c,
		maxWR:     maxWR,
		maxInline: maxInline,
		slots:     make([]wr, maxWR),
	}
	// Epoch 0 is never current, so a fresh target connection validates.
	q.epoch.Store(1)
	if n := maxWR * maxInline; n > 0 {
		buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("tcp: create qp: mmap %d-byte inline buffer: %w", n, err)
		}
		q.inline = buf
	}
	d.mu.Lock()
	if d.closed || p.closed || c.closed.Load() {
		d.mu.Unlock()
		if q.inline != nil {
			unix.Munmap(q.inline)
		}
		return nil, fmt.Errorf("tcp: create qp: device, pd or cq %w", verbs.ErrClosed)
	}
	q.num = d.nextQPN
	d.nextQPN++
	d.qps[q.num] = q
	d.mu.Unlock()
	return q, nil
}

func (q *qp) Num() uint32             { return q.num }
func (q *qp) State() verbs.QPState    { return verbs.QPState(q.state.Load()) }
func (q *qp) Access() verbs.Access    { return verbs.Access(q.access.Load()) }
func (q *qp) slot(seq uint64) *wr     { return &q.slots[seq%uint64(q.maxWR)] }
func (q *qp) inlineAt(seq uint64) int { return int(seq%uint64(q.maxWR)) * q.maxInline }

func (q *qp) Endpoint() []byte {
	return endpoint{addr: q.dev.name, qpn: q.num, gen: q.gen.Load(), nonce: q.dev.nonce}.marshal()
}

// setLocked changes the state with mu held; it takes rxMu so the target
// side sees the change atomically with the epoch.
func (q *qp) setLocked(st verbs.QPState, peer endpoint) {
	q.rxMu.Lock()
	q.state.Store(uint32(st))
	q.peer = peer
	q.epoch.Add(1)
	q.rxMu.Unlock()
}

// Connect moves the QP from RESET to RTS towards the peer. It does not
// touch the network: the link dials in the background (bounded by the
// retry timeout), and an unreachable peer shows up as RetryExceeded
// completions, exactly like a dead one.
func (q *qp) Connect(remote []byte, access verbs.Access) error {
	q.ctl.Lock()
	defer q.ctl.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("tcp: connect qp %d: %w", q.num, verbs.ErrClosed)
	}
	if st := q.State(); st != verbs.StateReset {
		return fmt.Errorf("tcp: connect qp %d in state %v: %w", q.num, st, verbs.ErrQPState)
	}
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("tcp: connect qp %d with access %v: %w", q.num, access, verbs.ErrInvalidArgument)
	}
	ep, err := parseEndpoint(remote)
	if err != nil {
		return fmt.Errorf("tcp: connect qp %d: %w: %v", q.num, verbs.ErrBadEndpoint, err)
	}
	l := newLink(q, ep)
	q.mu.Lock()
	q.link = l
	q.rxMu.Lock()
	q.access.Store(uint32(access))
	q.rxMu.Unlock()
	// RESET -> INIT -> RTR -> RTS at once: there is nothing to set up
	// between them.
	q.setLocked(verbs.StateRTS, ep)
	q.mu.Unlock()
	l.start()
	return nil
}

// SetAccess changes what the peer may do through this QP. Target
// connections apply a WRITE only while holding rxMu and after checking
// access under it, and never block on the network while holding it, so
// once SetAccess has taken and released rxMu no further WRITE lands: the
// fence needs no waiting and ErrFenceTimeout never happens.
func (q *qp) SetAccess(access verbs.Access) error {
	q.ctl.Lock()
	defer q.ctl.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("tcp: set access on qp %d: %w", q.num, verbs.ErrClosed)
	}
	if st := q.State(); st != verbs.StateRTR && st != verbs.StateRTS {
		return fmt.Errorf("tcp: set access on qp %d in state %v: %w", q.num, st, verbs.ErrQPState)
	}
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("tcp: set access %v on qp %d: %w", access, q.num, verbs.ErrInvalidArgument)
	}
	q.rxMu.Lock()
	q.access.Store(uint32(access))
	q.rxMu.Unlock()
	return nil
}

// Reset moves the QP to RESET and bumps its generation, so its endpoint
// changes and connections made towards the old one are refused.
func (q *qp) Reset() error {
	q.ctl.Lock()
	defer q.ctl.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("tcp: reset qp %d: %w", q.num, verbs.ErrClosed)
	}
	q.teardown(false)
	return nil
}

func (q *qp) Close() error {
	q.ctl.Lock()
	defer q.ctl.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("tcp: close qp %d: %w", q.num, verbs.ErrClosed)
	}
	q.teardown(true)
	d := q.dev
	d.mu.Lock()
	delete(d.qps, q.num)
	d.mu.Unlock()
	return nil
}

// teardown stops the link, drops outstanding requests without completions
// and leaves the QP in RESET at a new generation (or closed). Called with
// ctl held.
func (q *qp) teardown(closing bool) {
	q.mu.Lock()
	q.rxMu.Lock()
	q.gen.Add(1)
	q.access.Store(0)
	if closing {
		q.closed.Store(true)
	}
	q.state.Store(uint32(verbs.StateReset))
	q.peer = endpoint{}
	q.epoch.Add(1)
	q.rxMu.Unlock()
	l := q.link
	q.link = nil
	q.mu.Unlock()

	// The link's goroutines take mu; wait for them without holding it.
	if l != nil {
		l.shutdown()
		l.wg.Wait()
	}

	q.mu.Lock()
	for seq := q.compl; seq < q.tail; seq++ {
		w := q.slot(seq)
		if w.mr != nil {
			w.mr.unpin()
		}
		*w = wr{}
		q.cq.unreserve()
	}
	q.head, q.compl, q.sent = q.tail, q.tail, q.tail
	if closing && q.inline != nil {
		unix.Munmap(q.inline)
		q.inline = nil
	}
	q.mu.Unlock()
}

func (q *qp) PostWrite(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpWrite, wrID, local, localOff, length, remote, flags)
}

func (q *qp) PostRead(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpRead, wrID, local, localOff, length, remote, flags)
}

// post queues a request for the link's sender. It never blocks on the
// network and does not allocate: WRITEs up to MaxInline are copied into
// the slot's inline buffer now (inline semantics whether or not Inline was
// asked for); larger ones pin the local MR and are streamed from it by the
// sender, so the caller must leave that memory alone until completion, as
// with a real NIC.
func (q *qp) post(op verbs.Opcode, id uint64, local verbs.MR, off, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	if q.closed.Load() {
		return fmt.Errorf("tcp: post %v on qp %d: %w", op, q.num, verbs.ErrClosed)
	}
	if st := q.State(); st != verbs.StateRTS && st != verbs.StateError {
		return fmt.Errorf("tcp: post %v on qp %d in state %v: %w", op, q.num, st, verbs.ErrQPState)
	}
	// An MR of another provider is outside our PD: it fails with a local
	// protection error like one of another PD. Its bounds are not checked,
	// since we never touch it.
	m, own := local.(*mr)
	if local == nil || (own && m == nil) {
		return fmt.Errorf("tcp: post %v on qp %d: nil MR: %w", op, q.num, verbs.ErrInvalidArgument)
	}
	size := verbs.MaxMessageSize
	if own {
		size = m.size
	}
	if length < 0 || length > verbs.MaxMessageSize || off < 0 || off > size-length {
		return fmt.Errorf("tcp: post %v on qp %d: %d bytes at offset %d of a %d-byte MR: %w",
			op, q.num, length, off, size, verbs.ErrInvalidArgument)
	}
	if flags&verbs.Inline != 0 && length > q.maxInline {
		return fmt.Errorf("tcp: post %v on qp %d: %d bytes inline, max %d: %w",
			op, q.num, length, q.maxInline, verbs.ErrInvalidArgument)
	}
	pre := verbs.StatusSuccess
	if m == nil || m.pd != q.pd || (op == verbs.OpRead && m.access&verbs.AccessLocalWrite == 0) {
		pre = verbs.StatusLocalProtectionError
	}

	q.mu.Lock()
	if q.closed.Load() {
		q.mu.Unlock()
		return fmt.Errorf("tcp: post %v on qp %d: %w", op, q.num, verbs.ErrClosed)
	}
	switch verbs.QPState(q.state.Load()) {
	case verbs.StateRTS:
	case verbs.StateError:
		// Everything before was flushed when the QP failed; this one
		// completes at once, in order after them.
		err := q.cq.reserve()
		if err == nil {
			q.cq.push(verbs.Completion{WRID: id, QPNum: q.num, Bytes: uint32(length), Status: verbs.StatusFlushError, Op: op})
		}
		q.mu.Unlock()
		return err
	default: // a concurrent Reset
		q.mu.Unlock()
		return fmt.Errorf("tcp: post %v on qp %d in state %v: %w", op, q.num, q.State(), verbs.ErrQPState)
	}
	if q.tail-q.head >= uint64(q.maxWR) {
		q.mu.Unlock()
		return errQueueFull
	}
	if err := q.cq.reserve(); err != nil {
		q.mu.Unlock()
		return err
	}
	w := q.slot(q.tail)
	*w = wr{id: id, op: op, signaled: flags&verbs.Signaled != 0, length: length, off: off, remote: remote}
	if pre == verbs.StatusSuccess {
		switch {
		case !m.pin():
			pre = verbs.StatusLocalProtectionError // closed MR
		case op == verbs.OpWrite && length <= q.maxInline:
			at := q.inlineAt(q.tail)
			copy(q.inline[at:at+length], m.buf[off:off+length])
			w.inlined = true
			m.unpin()
		default:
			w.mr = m
		}
	}
	w.pre = pre
	l := q.link
	if q.compl == q.tail && (pre != verbs.StatusSuccess || l.dead) {
		// Nothing ahead of it: fail it now rather than through the link.
		if pre == verbs.StatusSuccess {
			pre = verbs.StatusRetryExceeded
		}
		q.tail++
		q.failLocked(pre)
		q.mu.Unlock()
		return nil
	}
	// Latency-bound: the sender must start for this one, and nothing is
	// in flight ahead of it but what the direct path sent.
	fresh := q.sent == q.tail && (q.sent == q.compl || (q.sent-q.compl <= directInFlight+1 && l.batch <= 1))
	q.tail++
	if l.postDirect(q, w) {
		return nil // q.mu released
	}
	q.mu.Unlock()
	l.kickSender(fresh)
	return nil
}

func (q *qp) completion(w *wr, st verbs.Status) verbs.Completion {
	return verbs.Completion{WRID: w.id, QPNum: q.num, Bytes: uint32(w.length), Status: st, Op: w.op}
}

// completeLocked finishes request compl successfully: a signaled one
// produces a completion and releases its slot and every earlier one; an
// unsignaled one gives back its CQ reservation and keeps its slot.
func (q *qp) completeLocked() {
	w := q.slot(q.compl)
	if w.mr != nil {
		w.mr.unpin()
		w.mr = nil
	}
	q.compl++
	if w.signaled {
		q.cq.push(q.completion(w, verbs.StatusSuccess))
		q.head = q.compl
	} else {
		q.cq.unreserve()
	}
}

// failLocked completes request compl with st, flushes every later one and
// moves the QP to ERROR. Every error produces a completion, signaled or not.
func (q *qp) failLocked(st verbs.Status) {
	// The state first: a poller that has seen the error completion must
	// find the QP in ERROR (contract item 4), not still RTS.
	q.setLocked(verbs.StateError, q.peer)
	for seq := q.compl; seq < q.tail; seq++ {
		w := q.slot(seq)
		if w.mr != nil {
			w.mr.unpin()
			w.mr = nil
		}
		s := verbs.StatusFlushError
		if seq == q.compl {
			s = st
		}
		q.cq.push(q.completion(w, s))
	}
	q.head, q.compl, q.sent = q.tail, q.tail, q.tail
	if q.link != nil {
		q.link.shutdown()
	}
}

// failPreLocked fails request compl if it was refused at post time and
// everything before it has completed.
func (q *qp) failPreLocked() {
	if q.compl < q.tail && q.compl == q.sent {
		if w := q.slot(q.compl); w.pre != verbs.StatusSuccess {
			q.failLocked(w.pre)
		}
	}
}
