package tcp

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/verbs"
)

// Errors of the hot path are built once so that a caller spinning on a
// full queue does not allocate.
var (
	errQueueFull = fmt.Errorf("tcp: post: %w", verbs.ErrQueueFull)
	errCQFull    = fmt.Errorf("tcp: post: %w", verbs.ErrCQFull)
	errCQClosed  = fmt.Errorf("tcp: cq: %w", verbs.ErrClosed)
)

// cq is a completion queue: a ring under a mutex. Producers are the NIC
// goroutines of the QPs that share it and posters (flush completions); the
// consumer is whoever polls.
//
// Capacity is reserved at post time: used counts queued completions plus
// requests that may still produce one, and never exceeds the depth, so a
// completion always has a place to go.
type cq struct {
	dev *device

	avail  atomic.Int32 // queued completions, read by Poll without the lock
	closed atomic.Bool

	mu   sync.Mutex
	ring []verbs.Completion
	head int // oldest queued completion
	n    int // queued completions
	used int // n + reservations
}

func (c *cq) reserve() error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return errCQClosed
	}
	if c.used == len(c.ring) {
		c.mu.Unlock()
		return errCQFull
	}
	c.used++
	c.mu.Unlock()
	return nil
}

// unreserve gives back the reservation of a request that completed
// without a completion (unsignaled success) or was dropped by Reset.
func (c *cq) unreserve() {
	c.mu.Lock()
	if c.used > c.n {
		c.used--
	}
	c.mu.Unlock()
}

// push queues a completion in place of its reservation.
func (c *cq) push(comp verbs.Completion) {
	c.mu.Lock()
	if !c.closed.Load() && c.n < len(c.ring) {
		i := c.head + c.n
		if i >= len(c.ring) {
			i -= len(c.ring)
		}
		c.ring[i] = comp
		c.n++
		c.avail.Add(1)
	}
	c.mu.Unlock()
}

func (c *cq) Poll(out []verbs.Completion) (int, error) {
	if c.avail.Load() == 0 {
		if c.closed.Load() {
			return 0, errCQClosed
		}
		return 0, nil
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return 0, errCQClosed
	}
	n := min(len(out), c.n)
	for i := 0; i < n; i++ {
		out[i] = c.ring[c.head]
		c.head++
		if c.head == len(c.ring) {
			c.head = 0
		}
	}
	c.n -= n
	c.used -= n
	c.avail.Add(int32(-n))
	c.mu.Unlock()
	return n, nil
}

// Close closes the CQ. QPs still using it drop their completions and
// fail new posts with ErrClosed.
func (c *cq) Close() error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return fmt.Errorf("tcp: close cq: %w", verbs.ErrClosed)
	}
	c.closed.Store(true)
	c.mu.Unlock()
	d := c.dev
	d.mu.Lock()
	delete(d.cqs, c)
	d.mu.Unlock()
	return nil
}
