package verbsrpc

import (
	"fmt"
	"runtime"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// completionLimit bounds a wait for a completion the provider owes us
// (contract item 5: a dead peer completes with retry-exceeded within the
// retry timeout); past it the connection is treated as broken.
const completionLimit = 10 * time.Second

// link is one side's sending half of a connection: the QP, its CQ, the
// staging MR messages are written from, and the accounting that keeps the
// send queue from filling and staging slots from being reused too early.
// Its owner serializes every use (a mutex).
type link struct {
	qp    verbs.QP
	cq    verbs.CQ
	stage verbs.MR
	slot  int // staging slot size

	sq       uint64 // send-queue depth
	sigEvery uint64 // every sigEvery-th write is signaled
	posted   uint64 // work-request ids 1..posted are used
	done     uint64 // every work request up to done has completed
	stageWR  []uint64
	cqs      []verbs.Completion
	err      error // the first failure; the link is dead once set
}

// sendQueue returns the send-queue depth and signaling period for a ring
// of k slots. Unsignaled writes hold their send-queue slots until a later
// signaled one completes, so there is always a signaled write among the
// last sigEvery, and sq leaves room for two such windows.
func sendQueue(k int) (sq, sigEvery int) {
	sigEvery = max(1, min(k/2, 32))
	return max(verbs.DefaultMaxSendWR, 2*k+2*sigEvery+2), sigEvery
}

func newLink(qp verbs.QP, cq verbs.CQ, stage verbs.MR, k, slot int) *link {
	sq, sig := sendQueue(k)
	return &link{
		qp: qp, cq: cq, stage: stage, slot: slot,
		sq: uint64(sq), sigEvery: uint64(sig),
		stageWR: make([]uint64, k),
		cqs:     make([]verbs.Completion, 16),
	}
}

// reap takes the completions there are, without waiting, and returns the
// link's error: the first error completion breaks the connection.
func (l *link) reap() error {
	n, err := l.cq.Poll(l.cqs)
	if err != nil && l.err == nil {
		l.err = err
	}
	for _, c := range l.cqs[:n] {
		if e := c.Err(); e != nil && l.err == nil {
			l.err = e
		}
		// RC order: a completion vouches for every request before it.
		l.done = max(l.done, c.WRID)
	}
	return l.err
}

// waitFor reaps until work request wr has completed.
func (l *link) waitFor(wr uint64) error {
	var start time.Time
	for i := 0; l.done < wr; i++ {
		if err := l.reap(); err != nil {
			return err
		}
		if l.done >= wr {
			break
		}
		if i&1023 == 1023 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > completionLimit {
				l.err = fmt.Errorf("verbsrpc: write %d not completed after %v", wr, completionLimit)
				return l.err
			}
		}
		runtime.Gosched()
	}
	return nil
}

// write posts one WRITE of length bytes at off in the staging MR to
// remote. slot is the staging slot the bytes sit in (-1 for the control
// word, which is always inline); a non-inline write's slot is not
// reused until the write has completed. signal forces a completion.
func (l *link) write(off, length int, remote verbs.Remote, slot int, signal bool) error {
	if l.err != nil {
		return l.err
	}
	if slot >= 0 && l.stageWR[slot] > l.done {
		if err := l.waitFor(l.stageWR[slot]); err != nil {
			return err
		}
	}
	wr := l.posted + 1
	if wr-l.done >= l.sq {
		if err := l.waitFor(wr - l.sq + 1); err != nil {
			return err
		}
	}
	inline := length <= verbs.DefaultMaxInline
	var flags verbs.SendFlags
	if inline {
		flags |= verbs.Inline
	}
	if !inline || signal || wr%l.sigEvery == 0 {
		flags |= verbs.Signaled
	}
	if err := l.qp.PostWrite(wr, l.stage, off, length, remote, flags); err != nil {
		l.err = err
		return err
	}
	l.posted = wr
	if !inline && slot >= 0 {
		l.stageWR[slot] = wr
	}
	return l.reap()
}

// stagingSlot returns staging slot i.
func (l *link) stagingSlot(i int) []byte {
	return l.stage.Bytes()[i*l.slot : (i+1)*l.slot]
}

// send stages payload in staging slot i, seals it as message (id, seq)
// and writes it to the same slot of the remote ring.
func (l *link) send(i int, payload []byte, id, seq uint64, ring verbs.Remote) error {
	s := l.stagingSlot(i)
	copy(s[len(s)-trailerLen-len(payload):], payload)
	off := seal(s, len(payload), id, seq)
	base := i * l.slot
	return l.write(base+off, l.slot-off, ring.Add(uint64(base+off)), i, false)
}
