//go:build rdma && cgo

package ibv

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/verbs"
)

// cq is a completion queue.
//
// Capacity is accounted in Go: every posted request reserves room for the
// completion it may produce (any request may fail, and failures always
// complete), and the reservation is given back when its completion, or that
// of a later signaled request of the same QP, is polled. Posting fails with
// ErrCQFull rather than letting the NIC overrun the CQ.
type cq struct {
	dev      *device
	h        cqHandle
	depth    int64
	reserved atomic.Int64

	// mu serialises Poll and guards what it uses. closed is written
	// under both dev.mu and mu, so either is enough to read it.
	mu     sync.Mutex
	closed bool
	wcs    wcArray
	qps    map[uint32]*qp // the QPs completing here, by number
}

var errCQFull = fmt.Errorf("ibv: post: %w", verbs.ErrCQFull)

// reserve takes room for one completion.
func (c *cq) reserve() bool {
	for {
		r := c.reserved.Load()
		if r >= c.depth {
			return false
		}
		if c.reserved.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (c *cq) release(n uint64) { c.reserved.Add(-int64(n)) }

// Poll copies completions from the device into the CQ's C array, then
// matches each to its request to fill out. It never blocks and never
// allocates.
func (c *cq) Poll(out []verbs.Completion) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, fmt.Errorf("ibv: poll cq: %w", verbs.ErrClosed)
	}
	if len(out) == 0 {
		return 0, nil
	}
	got, err := c.wcs.poll(c.h, len(out))
	if err != nil {
		return 0, fmt.Errorf("ibv: poll cq on %s: %w", c.dev.name, err)
	}
	k := 0
	for i := 0; i < got; i++ {
		seq, num, status := c.wcs.at(i)
		// A closed QP gave its reservations back when it closed.
		if q := c.qps[num]; q != nil && q.complete(seq, status, &out[k]) {
			k++
		}
	}
	return k, nil
}

// Close closes the QPs that complete here, then the CQ.
func (c *cq) Close() error {
	c.dev.mu.Lock()
	defer c.dev.mu.Unlock()
	if c.closed {
		return fmt.Errorf("ibv: close cq: %w", verbs.ErrClosed)
	}
	return c.closeLocked()
}

func (c *cq) closeLocked() error {
	c.mu.Lock()
	users := make([]*qp, 0, len(c.qps))
	for _, q := range c.qps {
		users = append(users, q)
	}
	c.mu.Unlock()
	var errs []error
	for _, q := range users {
		errs = append(errs, q.closeLocked())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	delete(c.dev.cqs, c)
	c.wcs.free()
	if err := destroyCQ(c.h); err != nil {
		errs = append(errs, fmt.Errorf("ibv: destroy cq: %w", err))
	}
	return errors.Join(errs...)
}
