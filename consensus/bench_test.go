package consensus

import (
	"context"
	"io"
	"math"
	"sync/atomic"
	"testing"

	"github.com/gomu-rdma/gomu/internal/poll"
)

// counter is a state machine that allocates nothing.
type counter struct{ n atomic.Uint64 }

var okResult = []byte("OK")

func (c *counter) Apply(uint64, []byte) []byte { c.n.Add(1); return okResult }
func (c *counter) Snapshot(io.Writer) error    { return nil }
func (c *counter) Restore(io.Reader) error     { return nil }

func startFast(tb testing.TB) *Replica {
	c := startClusterSM(tb, 3, func(cfg *Config) { *cfg = cfg.WithPoll(poll.SpinYield) },
		func() StateMachine { return &counter{} })
	return c.waitLeader()
}

// TestProposeAllocs checks that the fast path allocates nothing: Propose on
// the leader, batching, the WRITEs, commit and apply.
func TestProposeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	lead := startFast(t)
	cmd := []byte("set k v")
	ctx := context.Background()
	// AllocsPerRun counts the whole process's allocations, and the
	// background goroutines allocate now and then (a log line when a
	// loaded machine makes a peer look slow): the fewest of a few runs is
	// the fast path's, which would allocate on every call.
	least := math.Inf(1)
	for range 5 {
		least = min(least, testing.AllocsPerRun(200, func() {
			if _, err := lead.Propose(ctx, cmd); err != nil {
				t.Fatal(err)
			}
		}))
		if least == 0 {
			return
		}
	}
	t.Fatalf("Propose allocates %.1f times per call at least, want 0", least)
}

// BenchmarkPropose measures one Propose at a time on a leader with two
// followers, all in this process over shm, loops spinning then yielding.
func BenchmarkPropose(b *testing.B) {
	lead := startFast(b)
	cmd := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := lead.Propose(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}
