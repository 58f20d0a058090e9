//go:build linux

package faulty_test

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// TestRulesWhilePosting installs and removes rules from one goroutine while
// another posts and polls: every accepted write must complete exactly once,
// in post order, whether it went through the fast path, the slow path or a
// hold, and the wrapper must come back to the fast path at the end.
func TestRulesWhilePosting(t *testing.T) {
	a, b := pair(t)
	const total = 3000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var r *faulty.Rule
			if i%2 == 0 {
				r = a.dev.Inject(faulty.EveryNth(2), faulty.Fail(verbs.ErrQueueFull))
			} else {
				r = a.dev.Inject(writes, faulty.Hold())
			}
			runtime.Gosched()
			r.Release()
			runtime.Gosched()
			r.Remove()
		}
	}()

	buf := make([]verbs.Completion, 32)
	next := uint64(0) // the WRID the next completion must carry
	check := func(n int) {
		for _, c := range buf[:n] {
			if c.Status != verbs.StatusSuccess || c.WRID != next {
				t.Errorf("completion wr=%d %v, want wr=%d success", c.WRID, c.Status, next)
			}
			next = c.WRID + 1
		}
	}
	deadline := time.Now().Add(waitLimit)
	for wr := uint64(0); wr < total; {
		if time.Now().After(deadline) {
			t.Fatalf("posted %d of %d writes within %v", wr, total, waitLimit)
		}
		err := write(a, b, wr, int(wr%64), wr, verbs.Signaled)
		switch {
		case err == nil:
			wr++
		case errors.Is(err, faulty.ErrInjected), errors.Is(err, verbs.ErrCQFull):
		default:
			t.Fatalf("post %d: %v", wr, err)
		}
		n, err := a.cq.Poll(buf)
		if err != nil {
			t.Fatal(err)
		}
		check(n)
	}
	close(stop)
	wg.Wait()
	for next < total {
		c := collect(t, a.cq, 1)
		buf[0] = c[0]
		check(1)
	}
	expectNone(t, a.cq)
	wantState(t, a.qp, verbs.StateRTS)
}
