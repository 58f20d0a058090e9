//go:build linux

package shm

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/verbs"
)

// maxCQDepth bounds CreateCQ: the ring is allocated up front.
const maxCQDepth = 1 << 22

// cq is a bounded multi-producer ring. A poster first reserves an entry
// (used), so pushes never find the ring full; it then claims a position with
// tail and publishes the entry by storing its sequence number. Poll consumes
// published entries in position order and returns their reservations. RC
// ordering holds because a QP's posts are serialized, so its completions
// claim increasing positions.
type cq struct {
	dev   *device
	depth int64
	mask  uint64
	ring  []cqEntry

	closed atomic.Bool

	_    [64]byte
	used atomic.Int64 // reserved plus unconsumed entries, at most depth
	_    [56]byte
	tail atomic.Uint64 // next position to claim
	_    [56]byte
	head atomic.Uint64 // next position to consume; advanced under pollMu
	_    [56]byte

	pollMu sync.Mutex
}

type cqEntry struct {
	seq atomic.Uint64 // pos+1 once the completion for pos is written
	c   verbs.Completion
}

func newCQ(d *device, depth int) *cq {
	size := uint64(1)
	for size < uint64(depth) {
		size <<= 1
	}
	return &cq{dev: d, depth: int64(depth), mask: size - 1, ring: make([]cqEntry, size)}
}

// reserve takes room for one completion, or reports the CQ full.
func (c *cq) reserve() bool {
	if c.used.Add(1) > c.depth {
		c.used.Add(-1)
		return false
	}
	return true
}

// unreserve returns a reservation that produced no completion.
func (c *cq) unreserve() { c.used.Add(-1) }

// push writes a completion into a reserved entry.
func (c *cq) push(comp verbs.Completion) {
	pos := c.tail.Add(1) - 1
	e := &c.ring[pos&c.mask]
	e.c = comp
	e.seq.Store(pos + 1)
}

// Poll never blocks: an entry whose producer has claimed it but not yet
// published it ends the batch, and the next Poll returns it.
func (c *cq) Poll(out []verbs.Completion) (int, error) {
	if c.closed.Load() {
		return 0, errClosedCQ
	}
	if len(out) == 0 {
		return 0, nil
	}
	// Peek without the lock, so an idle poll loop never contends.
	h := c.head.Load()
	if c.ring[h&c.mask].seq.Load() != h+1 {
		return 0, nil
	}
	c.pollMu.Lock()
	h = c.head.Load()
	n := 0
	for n < len(out) {
		e := &c.ring[h&c.mask]
		if e.seq.Load() != h+1 {
			break
		}
		out[n] = e.c
		n++
		h++
	}
	c.head.Store(h)
	c.pollMu.Unlock()
	// Only now may producers reuse the entries just read.
	c.used.Add(int64(-n))
	return n, nil
}

// errClosedCQ is preallocated: Poll must not allocate, even when misused.
var errClosedCQ = fmt.Errorf("shm: poll cq: %w", verbs.ErrClosed)

func (c *cq) Close() error {
	d := c.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("shm: close cq: %w", verbs.ErrClosed)
	}
	c.closed.Store(true)
	delete(d.cqs, c)
	return nil
}
