package faulty

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// scratchLen is how many inner completions the slow path takes per inner
// Poll.
const scratchLen = 64

// cq wraps a CQ. While nothing is withheld it is the inner CQ; otherwise
// Poll takes the inner completions, matches those of wrapper-posted requests
// to their records (see qp), and hands out what is due, per QP in post
// order.
type cq struct {
	dev   *Device
	inner verbs.CQ
	depth int64

	// pending counts what the wrapper tracks for this CQ and Poll has not
	// yet returned: records of its QPs plus ready completions. A record is
	// counted before its request reaches the inner QP, so a Poll that saw
	// zero both before and after polling the inner CQ got no completion
	// that needs translating.
	pending atomic.Int64

	mu      sync.Mutex
	qps     map[uint32]*qp     // by number; under mu
	ready   []verbs.Completion // due, in order; under mu
	scratch []verbs.Completion // under mu
}

func newCQ(d *Device, inner verbs.CQ, depth int) *cq {
	return &cq{
		dev:     d,
		inner:   inner,
		depth:   int64(depth),
		qps:     map[uint32]*qp{},
		scratch: make([]verbs.Completion, scratchLen),
	}
}

// Poll never blocks; it allocates nothing unless the wrapper withholds
// completions.
func (c *cq) Poll(out []verbs.Completion) (int, error) {
	if c.pending.Load() == 0 {
		n, err := c.inner.Poll(out)
		if n == 0 || c.pending.Load() == 0 {
			return n, err
		}
		// A slow-path post raced this Poll: what it got may need
		// translating, so it goes through the records like the rest.
		c.mu.Lock()
		defer c.mu.Unlock()
		c.feedLocked(out[:n])
	} else {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	if err := c.pumpLocked(); err != nil {
		return 0, err
	}
	n := copy(out, c.ready)
	c.ready = append(c.ready[:0], c.ready[n:]...)
	c.pending.Add(-int64(n))
	return n, nil
}

func (c *cq) Close() error { return c.inner.Close() }

// pumpLocked moves everything the inner CQ has into the records, then
// makes due what may show.
func (c *cq) pumpLocked() error {
	for {
		n, err := c.inner.Poll(c.scratch)
		if err != nil {
			return err
		}
		c.feedLocked(c.scratch[:n])
		if n < len(c.scratch) {
			break
		}
	}
	var now time.Time // read at most once, and only if a delay needs it
	for _, q := range c.qps {
		q.advanceLocked(&now)
	}
	return nil
}

// feedLocked takes inner completions: those of recorded requests complete
// their records; the others (requests posted while the QP needed no
// records) are due as they are, since they precede every record of their QP.
func (c *cq) feedLocked(cs []verbs.Completion) {
	for _, comp := range cs {
		if q := c.qps[comp.QPNum]; q != nil && q.completeLocked(comp) {
			continue
		}
		c.ready = append(c.ready, comp)
		c.pending.Add(1)
	}
}

// roomLocked says whether one more completion fits, the CQ depth counting
// what the wrapper holds as well as the inner CQ's own reservations.
func (c *cq) roomLocked() bool {
	if c.pending.Load() < c.depth {
		return true
	}
	c.pumpLocked()
	return c.pending.Load() < c.depth
}
