//go:build linux

package faulty_test

import (
	"testing"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// TestPassThroughZeroAlloc checks that with no rule installed the wrapper
// adds no allocation to PostWrite+Poll or PostRead+Poll, also after a rule
// came and went (the wrapper must find its way back to the fast path).
func TestPassThroughZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	a, b := pair(t)
	r := a.dev.Inject(writes, faulty.Hold())
	mustWrite(t, a, b, 1, 0, 1, verbs.Signaled)
	r.Remove()
	one(t, a.cq, 1, verbs.StatusSuccess)

	buf := make([]verbs.Completion, 4)
	round := func(op verbs.Opcode) func() {
		return func() {
			var err error
			if op == verbs.OpRead {
				err = a.qp.PostRead(2, a.mr, 64, 64, b.mr.Remote(), verbs.Signaled)
			} else {
				err = a.qp.PostWrite(2, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled)
			}
			if err != nil {
				t.Fatal(err)
			}
			for {
				n, err := a.cq.Poll(buf)
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					return
				}
			}
		}
	}
	for _, op := range []verbs.Opcode{verbs.OpWrite, verbs.OpRead} {
		round(op)() // warm up: the first touch of a remote key maps memory
		if allocs := testing.AllocsPerRun(1000, round(op)); allocs != 0 {
			t.Fatalf("%v+Poll through the wrapper allocates %.1f times per op, want 0", op, allocs)
		}
	}
}
