package faulty

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// qp wraps a QP. On the fast path (no rule installed, nothing withheld) a
// post goes straight to the inner QP. Otherwise it is recorded: the request
// goes to the inner QP signaled and with a wrapper-chosen work-request id
// (seq), so that its completion, whatever the caller's flags, comes back and
// can be told from others; or it does not go at all and the record carries
// the completion a rule made up. Records queue per QP in post order, and
// Poll hands out the head ones that are complete and not withheld: that is
// how held completions keep RC order.
type qp struct {
	dev   *Device
	cq    *cq
	inner verbs.QP
	num   uint32

	label  atomic.Pointer[string]
	peer   atomic.Pointer[[]byte]
	failed atomic.Bool // a rule moved the QP to ERROR; written under cq.mu

	// Under cq.mu.
	queue    []*record
	inflight map[uint64]*record // posted records by seq
	nextSeq  uint64
	hot      bool // counted in dev.hot: queue non-empty or failed
}

// record is one slow-path request.
type record struct {
	wrID     uint64
	seq      uint64
	op       verbs.Opcode
	signaled bool
	posted   bool             // in the inner QP; its completion has not come
	comp     verbs.Completion // what Poll will return, once !posted
	rewrite  bool             // Tear: a successful inner completion reports comp's status and bytes instead
	rule     *Rule            // Hold and Delay: the rule withholding it
	ticket   uint64
	due      time.Time // Delay: when it shows by itself
}

func newQP(d *Device, c *cq, inner verbs.QP) *qp {
	return &qp{
		dev:      d,
		cq:       c,
		inner:    inner,
		num:      inner.Num(),
		inflight: map[uint64]*record{},
		// A random start keeps wrapper ids clear of the caller's, which
		// the completions of requests posted on the fast path carry.
		nextSeq: rand.Uint64() >> 1,
	}
}

func (q *qp) Num() uint32      { return q.num }
func (q *qp) Endpoint() []byte { return q.inner.Endpoint() }
func (q *qp) Access() verbs.Access {
	return q.inner.Access()
}

// State is ERROR while a rule has the QP in error, else the inner QP's.
func (q *qp) State() verbs.QPState {
	if q.failed.Load() {
		return verbs.StateError
	}
	return q.inner.State()
}

func (q *qp) Connect(remote []byte, access verbs.Access) error {
	if err := q.inner.Connect(remote, access); err != nil {
		return err
	}
	ep := bytes.Clone(remote)
	q.peer.Store(&ep)
	return nil
}

func (q *qp) SetAccess(access verbs.Access) error {
	if q.dev.hot.Load() != 0 {
		op := q.describe(SetAccess, 0, 0)
		if r := q.dev.match(op); r != nil {
			return r.failure(op)
		}
	}
	return q.inner.SetAccess(access)
}

// Reset also drops what the wrapper still withholds for the QP and ends a
// rule-made error: from the caller's view these requests never completed,
// as a NIC drops outstanding requests.
func (q *qp) Reset() error {
	err := q.inner.Reset()
	q.forget()
	return err
}

func (q *qp) Close() error {
	err := q.inner.Close()
	q.forget()
	c := q.cq
	c.mu.Lock()
	if c.qps[q.num] == q {
		delete(c.qps, q.num)
	}
	c.mu.Unlock()
	return err
}

// forget drops the QP's records, after taking in whatever completions the
// inner CQ already has, which are kept.
func (q *qp) forget() {
	c := q.cq
	c.mu.Lock()
	defer c.mu.Unlock()
	if !q.hot {
		return
	}
	c.pumpLocked()
	for _, rec := range q.queue {
		if rec.posted {
			delete(q.inflight, rec.seq)
		}
	}
	c.pending.Add(-int64(len(q.queue)))
	clear(q.queue)
	q.queue = q.queue[:0]
	q.failed.Store(false)
	q.syncLocked()
}

func (q *qp) PostWrite(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	if q.dev.hot.Load() == 0 {
		return q.inner.PostWrite(wrID, innerMR(local), localOff, length, remote, flags)
	}
	return q.post(verbs.OpWrite, wrID, local, localOff, length, remote, flags)
}

func (q *qp) PostRead(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	if q.dev.hot.Load() == 0 {
		return q.inner.PostRead(wrID, innerMR(local), localOff, length, remote, flags)
	}
	return q.post(verbs.OpRead, wrID, local, localOff, length, remote, flags)
}

// post is the slow path.
func (q *qp) post(op verbs.Opcode, wrID uint64, local verbs.MR, off, n int, remote verbs.Remote, flags verbs.SendFlags) error {
	c := q.cq
	c.mu.Lock()
	defer c.mu.Unlock()
	if !q.hot && !q.dev.anyRules() {
		// Only another QP is hot: nothing to record for this one.
		return q.postInner(op, wrID, innerMR(local), off, n, remote, flags)
	}
	rec := &record{wrID: wrID, op: op, signaled: flags&verbs.Signaled != 0}
	// Rules only see requests the provider would execute: bad arguments
	// and QPs not in RTS get the provider's own answer.
	if !validArgs(local, off, n) || q.inner.State() != verbs.StateRTS {
		return q.postRecordLocked(rec, local, off, n, remote, flags)
	}
	if q.failed.Load() {
		return q.synthLocked(rec, verbs.StatusFlushError, n)
	}
	kind := Write
	if op == verbs.OpRead {
		kind = Read
	}
	desc := q.describe(kind, wrID, n)
	r := q.dev.match(desc)
	if r == nil {
		return q.postRecordLocked(rec, local, off, n, remote, flags)
	}
	switch a := r.act; a.kind {
	case actFail:
		return r.failure(desc)
	case actComplete:
		return q.synthLocked(rec, a.status, n)
	case actHold:
		rec.rule, rec.ticket = r, r.ticket()
	case actDelay:
		rec.rule, rec.ticket = r, r.ticket()
		rec.due = time.Now().Add(a.delay)
	case actTear:
		rec.rewrite = true
		rec.comp.Status, rec.comp.Bytes = a.status, uint32(n)
		n = min(n, a.prefix)
	}
	if err := q.postRecordLocked(rec, local, off, n, remote, flags); err != nil {
		return err
	}
	if rec.rewrite && rec.comp.Status != verbs.StatusSuccess {
		q.failLocked()
	}
	return nil
}

// describe is op as rules see it.
func (q *qp) describe(k OpKind, wrID uint64, n int) Op {
	op := Op{Kind: k, QPNum: q.num, WRID: wrID, Length: n}
	if l := q.label.Load(); l != nil {
		op.Label = *l
	}
	if p := q.peer.Load(); p != nil {
		op.Peer = *p
	}
	return op
}

// validArgs mirrors the checks every provider makes before accepting a
// request (verbstest's BadArguments).
func validArgs(local verbs.MR, off, n int) bool {
	m := innerMR(local)
	if m == nil || off < 0 || n < 0 || n > verbs.MaxMessageSize {
		return false
	}
	return off+n <= len(m.Bytes())
}

func (q *qp) postInner(op verbs.Opcode, wrID uint64, local verbs.MR, off, n int, remote verbs.Remote, flags verbs.SendFlags) error {
	if op == verbs.OpRead {
		return q.inner.PostRead(wrID, local, off, n, remote, flags)
	}
	return q.inner.PostWrite(wrID, local, off, n, remote, flags)
}

// postRecordLocked queues rec and hands its request to the inner QP.
func (q *qp) postRecordLocked(rec *record, local verbs.MR, off, n int, remote verbs.Remote, flags verbs.SendFlags) error {
	c := q.cq
	if !c.roomLocked() {
		return fmt.Errorf("faulty: post on qp %d: %d completions withheld: %w", q.num, c.pending.Load(), verbs.ErrCQFull)
	}
	rec.seq, rec.posted = q.nextSeq, true
	q.nextSeq++
	// Counted before the inner post: see cq.pending.
	q.queue = append(q.queue, rec)
	q.inflight[rec.seq] = rec
	c.pending.Add(1)
	m := innerMR(local)
	err := q.postInner(rec.op, rec.seq, m, off, n, remote, flags|verbs.Signaled)
	if errors.Is(err, verbs.ErrCQFull) {
		// Forced signals fill the inner CQ with completions the caller
		// may never see (unsignaled successes); take them and retry.
		c.pumpLocked()
		err = q.postInner(rec.op, rec.seq, m, off, n, remote, flags|verbs.Signaled)
	}
	if err != nil {
		q.queue = q.queue[:len(q.queue)-1]
		delete(q.inflight, rec.seq)
		c.pending.Add(-1)
		return err
	}
	q.syncLocked()
	return nil
}

// synthLocked completes rec with status without executing it; an error
// status moves the QP to ERROR.
func (q *qp) synthLocked(rec *record, status verbs.Status, n int) error {
	c := q.cq
	if !c.roomLocked() {
		return fmt.Errorf("faulty: post on qp %d: %d completions withheld: %w", q.num, c.pending.Load(), verbs.ErrCQFull)
	}
	rec.comp = verbs.Completion{WRID: rec.wrID, QPNum: q.num, Bytes: uint32(n), Status: status, Op: rec.op}
	q.queue = append(q.queue, rec)
	c.pending.Add(1)
	if status != verbs.StatusSuccess {
		q.failLocked()
	}
	q.syncLocked()
	return nil
}

func (q *qp) failLocked() {
	q.failed.Store(true)
	q.syncLocked()
}

// completeLocked takes an inner completion if it is one of the QP's
// records'.
func (q *qp) completeLocked(comp verbs.Completion) bool {
	rec := q.inflight[comp.WRID]
	if rec == nil {
		return false
	}
	delete(q.inflight, comp.WRID)
	rec.posted = false
	if rec.rewrite && comp.Status == verbs.StatusSuccess {
		// A torn write reports what the rule says, not the prefix.
		comp.Status, comp.Bytes = rec.comp.Status, rec.comp.Bytes
	}
	comp.WRID = rec.wrID
	rec.comp = comp
	return true
}

// advanceLocked makes the complete, released head records due: signaled
// ones and failures to the ready list, unsignaled successes nowhere. It
// stops at the first that must wait, so what follows it waits too.
func (q *qp) advanceLocked(now *time.Time) {
	c := q.cq
	i := 0
	for ; i < len(q.queue); i++ {
		rec := q.queue[i]
		if rec.posted {
			break
		}
		if rec.rule != nil && !rec.rule.letGo(rec.ticket) {
			if rec.due.IsZero() {
				break
			}
			if now.IsZero() {
				*now = time.Now()
			}
			if now.Before(rec.due) {
				break
			}
		}
		if rec.signaled || rec.comp.Status != verbs.StatusSuccess {
			c.ready = append(c.ready, rec.comp)
		} else {
			c.pending.Add(-1)
		}
	}
	if i > 0 {
		rest := copy(q.queue, q.queue[i:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
		q.syncLocked()
	}
}

// syncLocked keeps the QP's share of dev.hot right.
func (q *qp) syncLocked() {
	hot := len(q.queue) > 0 || q.failed.Load()
	if hot == q.hot {
		return
	}
	q.hot = hot
	if hot {
		q.dev.hot.Add(1)
	} else {
		q.dev.hot.Add(-1)
	}
}
