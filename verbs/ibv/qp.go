//go:build rdma && cgo

package ibv

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"

	"github.com/gomu-rdma/gomu/verbs"
)

// qp is a reliable-connected queue pair.
//
// Each posted request gets the next number of a per-QP sequence, which is
// what the NIC carries as its work-request id; the caller's id, opcode and
// length wait in ring until the completion comes back. The NIC retires a
// request's send-queue slot when a completion for it or a later request is
// polled, and the provider mirrors that with head (next sequence number)
// and tail (oldest unretired one), so Post can say ErrQueueFull before the
// NIC would refuse. Reset moves tail up to head: whatever completion of an
// older request still surfaces is recognised as stale and dropped.
type qp struct {
	pd        *pd
	cq        *cq
	num       uint32
	maxInline int

	// mu serialises the QP's posts, completions and state changes; held
	// only for short non-blocking sections, including the libibverbs
	// calls.
	mu     sync.Mutex
	h      qpHandle
	closed bool // written under pd.dev.mu and mu
	// state is what the provider last moved the QP to. The NIC may move
	// it to ERROR on its own; State asks the device.
	state  verbs.QPState
	access verbs.Access
	psn    uint32
	ring   []wrInfo
	head   uint64
	tail   uint64
}

// wrInfo is what a completion reports of its request. The NIC's own
// opcode and byte count are undefined in failed completions, so the
// provider keeps them.
type wrInfo struct {
	wrID   uint64
	length uint32
	op     verbs.Opcode
}

// Post errors of the hot path, allocated once.
var (
	errQueueFull = fmt.Errorf("ibv: post: %w", verbs.ErrQueueFull)
	errNotRTS    = fmt.Errorf("ibv: post: QP not connected: %w", verbs.ErrQPState)
	errQPClosed  = fmt.Errorf("ibv: qp: %w", verbs.ErrClosed)
	errMRClosed  = fmt.Errorf("ibv: post: local mr: %w", verbs.ErrClosed)
	errNilMR     = fmt.Errorf("ibv: post: nil local mr: %w", verbs.ErrInvalidArgument)
	errForeignMR = fmt.Errorf("ibv: post: local mr of another provider: %w", verbs.ErrForeignObject)
	errRange     = fmt.Errorf("ibv: post: local range outside the mr or length out of [0, MaxMessageSize]: %w", verbs.ErrInvalidArgument)
	errInline    = fmt.Errorf("ibv: post: inline length over the QP's MaxInline: %w", verbs.ErrInvalidArgument)
)

// CreateQP makes an RC QP in RESET.
func (p *pd) CreateQP(cfg verbs.QPConfig) (verbs.QP, error) {
	d := p.dev
	if cfg.SendCQ == nil {
		return nil, fmt.Errorf("ibv: create qp: no SendCQ: %w", verbs.ErrInvalidArgument)
	}
	c, ok := cfg.SendCQ.(*cq)
	if !ok || c == nil || c.dev != d {
		return nil, fmt.Errorf("ibv: create qp: SendCQ of another device or provider: %w", verbs.ErrForeignObject)
	}
	if cfg.MaxSendWR < 0 || cfg.MaxInline < 0 {
		return nil, fmt.Errorf("ibv: create qp: negative MaxSendWR %d or MaxInline %d: %w", cfg.MaxSendWR, cfg.MaxInline, verbs.ErrInvalidArgument)
	}
	if cfg.MaxSendWR == 0 {
		cfg.MaxSendWR = verbs.DefaultMaxSendWR
	}
	if cfg.MaxInline == 0 {
		cfg.MaxInline = verbs.DefaultMaxInline
	}
	if cfg.MaxSendWR > d.attr.maxQPWR {
		return nil, fmt.Errorf("ibv: create qp: MaxSendWR %d over the device's %d: %w", cfg.MaxSendWR, d.attr.maxQPWR, verbs.ErrInvalidArgument)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if p.closed || c.closed {
		return nil, fmt.Errorf("ibv: create qp: pd or cq: %w", verbs.ErrClosed)
	}
	// Devices refuse a QP asking for more inline data than they support,
	// and do not say how much that is: step down until one is granted.
	var (
		h             qpHandle
		num           uint32
		grantedInline int
		err           error
	)
	for inline := cfg.MaxInline; ; inline /= 2 {
		h, num, _, grantedInline, err = createQP(p.h, c.h, cfg.MaxSendWR, inline)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINVAL) || inline == 0 {
			return nil, fmt.Errorf("ibv: create qp (send queue %d, inline %d): %w", cfg.MaxSendWR, inline, err)
		}
	}
	q := &qp{
		pd:        p,
		cq:        c,
		num:       num,
		maxInline: min(cfg.MaxInline, grantedInline),
		h:         h,
		state:     verbs.StateReset,
		psn:       newPSN(),
		ring:      make([]wrInfo, cfg.MaxSendWR),
	}
	c.mu.Lock()
	c.qps[num] = q
	c.mu.Unlock()
	p.qps[q] = struct{}{}
	return q, nil
}

// newPSN picks a random initial packet sequence number, so that packets of
// an earlier connection of the same QPs are not taken for this one's.
func newPSN() uint32 { return rand.Uint32() & 0xffffff }

// qpAccess maps verbs rights onto a QP's IBV_ACCESS flags; local write is
// not a QP right.
func qpAccess(a verbs.Access) uint32 {
	var f uint32
	if a&verbs.AccessRemoteWrite != 0 {
		f |= accessRemoteWrite
	}
	if a&verbs.AccessRemoteRead != 0 {
		f |= accessRemoteRead
	}
	return f
}

func (q *qp) Num() uint32 { return q.num }

// State reports the device's view of the QP, which sees errors first.
func (q *qp) State() verbs.QPState {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return verbs.StateError
	}
	if q.state == verbs.StateReset {
		return q.state // only the provider moves a QP out of RESET
	}
	s, err := qpState(q.h)
	if err != nil {
		return verbs.StateError
	}
	return s
}

func (q *qp) Endpoint() []byte {
	d := q.pd.dev
	q.mu.Lock()
	psn := q.psn
	q.mu.Unlock()
	return endpoint{linkLayer: d.linkLayer, mtu: d.mtu, qpn: q.num, psn: psn, lid: d.lid, gid: d.gid}.encode()
}

// Connect takes the QP RESET→INIT→RTR→RTS towards the peer's endpoint.
func (q *qp) Connect(remote []byte, access verbs.Access) error {
	d := q.pd.dev
	ep, err := decodeEndpoint(remote)
	if err != nil {
		return fmt.Errorf("ibv: connect qp %d: %w", q.num, err)
	}
	if ep.linkLayer != d.linkLayer {
		return fmt.Errorf("ibv: connect qp %d: peer port is %s, ours %s: %w",
			q.num, linkLayerName(ep.linkLayer), linkLayerName(d.linkLayer), verbs.ErrBadEndpoint)
	}
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("ibv: connect qp %d: access %v: %w", q.num, access, verbs.ErrInvalidArgument)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQPClosed
	}
	if q.state != verbs.StateReset {
		return fmt.Errorf("ibv: connect qp %d in %v, want RESET: %w", q.num, q.state, verbs.ErrQPState)
	}
	rtr := rtrAttr{
		port:          d.port,
		destQPN:       ep.qpn,
		rqPSN:         ep.psn,
		mtu:           int(min(d.mtu, ep.mtu)),
		dlid:          ep.lid,
		global:        d.linkLayer == linkLayerEthernet,
		dgid:          ep.gid,
		sgidIndex:     d.gidIndex,
		maxDestRdAtom: d.rdAtom,
	}
	err = qpToInit(q.h, d.port, qpAccess(access))
	if err == nil {
		q.state = verbs.StateInit
		err = qpToRTR(q.h, rtr)
	}
	if err == nil {
		q.state = verbs.StateRTR
		err = qpToRTS(q.h, q.psn, d.retry, d.initRdAtom)
	}
	if err != nil {
		// Leave the QP as it was, ready for another attempt.
		if q.state != verbs.StateReset && qpReset(q.h) == nil {
			q.state = verbs.StateReset
		}
		return fmt.Errorf("ibv: connect qp %d to qp %d: %w", q.num, ep.qpn, err)
	}
	q.state = verbs.StateRTS
	q.access = access
	return nil
}

func linkLayerName(l uint8) string {
	if l == linkLayerEthernet {
		return "Ethernet (RoCE)"
	}
	return "InfiniBand"
}

// SetAccess changes the peer's rights with ibv_modify_qp(IBV_QP_ACCESS_FLAGS).
// Once the device has applied the change, requests arriving from the peer
// are checked against the new rights, which is the revoke fence; the call
// cannot time out, so ErrFenceTimeout is never returned.
func (q *qp) SetAccess(access verbs.Access) error {
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("ibv: set access of qp %d to %v: %w", q.num, access, verbs.ErrInvalidArgument)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQPClosed
	}
	if q.state != verbs.StateRTS {
		return fmt.Errorf("ibv: set access of qp %d in %v: %w", q.num, q.state, verbs.ErrQPState)
	}
	if err := qpSetAccess(q.h, qpAccess(access)); err != nil {
		// The device refuses attribute changes in ERROR.
		if s, qerr := qpState(q.h); qerr == nil && s != verbs.StateRTS {
			return fmt.Errorf("ibv: set access of qp %d in %v: %w", q.num, s, verbs.ErrQPState)
		}
		return fmt.Errorf("ibv: set access of qp %d: %w", q.num, err)
	}
	q.access = access
	return nil
}

func (q *qp) Access() verbs.Access {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.access
}

// Reset moves the QP to RESET from any state, dropping its outstanding
// requests without completions. The next Connect uses a new PSN, so the
// endpoint changes.
func (q *qp) Reset() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQPClosed
	}
	if err := qpReset(q.h); err != nil {
		return fmt.Errorf("ibv: reset qp %d: %w", q.num, err)
	}
	q.dropOutstandingLocked()
	q.state = verbs.StateReset
	q.access = 0
	q.psn = newPSN()
	return nil
}

// dropOutstandingLocked forgets the requests in flight and gives their CQ
// reservations back.
func (q *qp) dropOutstandingLocked() {
	q.cq.release(q.head - q.tail)
	q.tail = q.head
}

// Close destroys the QP.
func (q *qp) Close() error {
	d := q.pd.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if q.closed {
		return fmt.Errorf("ibv: close qp %d: %w", q.num, verbs.ErrClosed)
	}
	return q.closeLocked()
}

// closeLocked destroys the QP; the caller holds the device lock.
func (q *qp) closeLocked() error {
	// Unhook from the CQ first, so that Poll, which locks the CQ and then
	// the QP, never sees the QP again.
	q.cq.mu.Lock()
	delete(q.cq.qps, q.num)
	q.cq.mu.Unlock()

	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.dropOutstandingLocked()
	delete(q.pd.qps, q)
	err := destroyQP(q.h)
	q.h = nil
	if err != nil {
		return fmt.Errorf("ibv: destroy qp %d: %w", q.num, err)
	}
	return nil
}

func (q *qp) PostWrite(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpWrite, wrID, local, localOff, length, remote, flags)
}

func (q *qp) PostRead(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpRead, wrID, local, localOff, length, remote, flags)
}

func (q *qp) post(op verbs.Opcode, wrID uint64, local verbs.MR, off, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	m, ok := local.(*mr)
	switch {
	case local == nil || (ok && m == nil):
		return errNilMR
	case !ok:
		return errForeignMR
	case length < 0 || length > verbs.MaxMessageSize || off < 0 || off > len(m.buf)-length:
		return errRange
	case flags&verbs.Inline != 0 && length > q.maxInline:
		return errInline
	case m.closed.Load():
		return errMRClosed
	}
	opcode, cflags := wrRDMAWrite, uint32(0)
	if op == verbs.OpRead {
		opcode = wrRDMARead
	}
	if flags&verbs.Signaled != 0 {
		cflags |= sendSignaled
	}
	// Inline data is read by the CPU at post time and the NIC checks no
	// lkey for it. A local MR of another PD is posted by reference, so that
	// the NIC refuses it as it would any other request. READs have nothing
	// to inline.
	if flags&verbs.Inline != 0 && op == verbs.OpWrite && length > 0 && m.pd == q.pd {
		cflags |= sendInline
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return errQPClosed
	case q.state != verbs.StateRTS:
		return errNotRTS
	case q.head-q.tail >= uint64(len(q.ring)):
		return errQueueFull
	case !q.cq.reserve():
		return errCQFull
	}
	seq := q.head
	q.ring[seq%uint64(len(q.ring))] = wrInfo{wrID: wrID, length: uint32(length), op: op}
	if errno := postSend(q.h, seq, opcode, m.addr+uint64(off), uint32(length), m.lkey, remote.Addr, remote.RKey, cflags); errno != 0 {
		q.cq.release(1)
		if errno == syscall.ENOMEM {
			return errQueueFull // the device's queue is smaller than it said
		}
		return fmt.Errorf("ibv: post %v on qp %d: %w", op, q.num, errno)
	}
	q.head++
	return nil
}

// complete matches a polled completion to its request and fills c; it
// reports false for a stale completion of a request dropped by Reset.
func (q *qp) complete(seq uint64, status verbs.Status, c *verbs.Completion) bool {
	q.mu.Lock()
	if seq < q.tail || seq >= q.head {
		q.mu.Unlock()
		return false
	}
	w := q.ring[seq%uint64(len(q.ring))]
	// The completion retires its request and every unsignaled one before it.
	retired := seq + 1 - q.tail
	q.tail = seq + 1
	q.mu.Unlock()
	q.cq.release(retired)
	*c = verbs.Completion{WRID: w.wrID, QPNum: q.num, Bytes: w.length, Status: status, Op: w.op}
	return true
}
