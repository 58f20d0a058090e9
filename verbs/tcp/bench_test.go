package tcp

import (
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// BenchmarkPostWritePoll measures one signaled 64-byte WRITE and a spin on
// the CQ until its completion, over one QP pair between two devices of
// this process on loopback: the soft NIC's round trip.
func BenchmarkPostWritePoll(b *testing.B) {
	a, t := pair(b, time.Second, 4096, false)
	warmUp(b, a, t)
	var c [4]verbs.Completion
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.qp.PostWrite(uint64(i), a.mr, 0, 64, t.mr.Remote(), verbs.Signaled); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := a.cq.Poll(c[:])
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				if c[0].Status != verbs.StatusSuccess {
					b.Fatal(c[0].Err())
				}
				break
			}
		}
	}
}

// BenchmarkPostWritePipelined keeps up to 64 signaled 64-byte WRITEs in
// flight on one QP: the soft NIC's message rate.
func BenchmarkPostWritePipelined(b *testing.B) {
	const depth = 64
	a, t := pair(b, time.Second, 4096, false)
	warmUp(b, a, t)
	var c [depth]verbs.Completion
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	inflight := 0
	for i := 0; i < b.N; {
		if inflight < depth {
			if err := a.qp.PostWrite(uint64(i), a.mr, 0, 64, t.mr.Remote(), verbs.Signaled); err != nil {
				b.Fatal(err)
			}
			inflight++
			i++
			continue
		}
		n, err := a.cq.Poll(c[:])
		if err != nil {
			b.Fatal(err)
		}
		inflight -= n
	}
	for inflight > 0 {
		n, _ := a.cq.Poll(c[:])
		inflight -= n
	}
}

// BenchmarkPostWritePollWait is BenchmarkPostWritePoll with a poller that
// yields or sleeps between empty polls (internal/poll's modes), as
// replicas sharing a small machine do.
func BenchmarkPostWritePollWait(b *testing.B) {
	for _, mode := range []poll.Mode{poll.SpinYield, poll.Sleep} {
		b.Run(mode.String(), func(b *testing.B) {
			a, t := pair(b, time.Second, 4096, false)
			warmUp(b, a, t)
			var c [4]verbs.Completion
			w := poll.Waiter{Mode: mode}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := a.qp.PostWrite(uint64(i), a.mr, 0, 64, t.mr.Remote(), verbs.Signaled); err != nil {
					b.Fatal(err)
				}
				for w.Reset(); ; w.Wait() {
					if n, _ := a.cq.Poll(c[:]); n > 0 {
						break
					}
				}
			}
		})
	}
}

// warmUp does one round trip, so that connection setup (dial, hello,
// buffers), which runs asynchronously after Connect, is not measured.
func warmUp(b *testing.B, a, t end) {
	if err := a.qp.PostWrite(0, a.mr, 0, 64, t.mr.Remote(), verbs.Signaled); err != nil {
		b.Fatal(err)
	}
	if c := wait(b, a.cq, 5*time.Second); c.Status != verbs.StatusSuccess {
		b.Fatal(c.Err())
	}
}
