package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// A command the leader acknowledged is applied on every follower once that
// follower's ReadBarrier returns, whatever the transport and whether or not
// the leader writes commit indexes eagerly: the follower asks the leader
// for a read index and waits for it. Readers on both followers run
// concurrently with the writer; each checks that its barrier covered every
// command acknowledged before it began.
func TestReadBarrierFollowerSeesAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
	}{
		{"shm-eager", func(cfg *Config) { cfg.EagerCommit = true }},
		{"shm-lazy", nil},
		{"tcp-lazy", onTCP},
		{"tcp-eager", func(cfg *Config) { onTCP(cfg); cfg.EagerCommit = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3, tc.tweak)
			lead := c.waitLeader()
			var acked atomic.Int64
			stop := make(chan struct{})
			errs := make(chan error, 8)
			var wg sync.WaitGroup
			for _, r := range c.live() {
				if r == lead {
					continue
				}
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for n := 0; ; n++ {
							select {
							case <-stop:
								if n == 0 {
									errs <- fmt.Errorf("reader on %d never read", r.ID())
								}
								return
							default:
							}
							before := acked.Load()
							ctx, cancel := context.WithTimeout(context.Background(), hang)
							err := r.ReadBarrier(ctx)
							cancel()
							var nl ErrNotLeader
							if errors.As(err, &nl) && nl.Leader == 0 {
								// The leader was suspected for a moment (a
								// loaded machine): no read, no harm.
								continue
							}
							if err != nil {
								errs <- fmt.Errorf("read barrier on follower %d: %w", r.ID(), err)
								return
							}
							if got := int64(len(c.sms[r.ID()].applied())); got < before {
								errs <- fmt.Errorf("follower %d applied %d commands after its barrier; %d were acknowledged before it began", r.ID(), got, before)
								return
							}
						}
					}()
				}
			}
			for i := 1; i <= 300; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), hang)
				_, err := lead.Propose(ctx, []byte(fmt.Sprint("cmd", i)))
				cancel()
				if err != nil {
					t.Fatalf("propose %d: %v", i, err)
				}
				acked.Store(int64(i))
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// Concurrent barriers on the leader share confirmation rounds and all
// return; a deposed leader's barrier never succeeds.
func TestReadBarrierLeader(t *testing.T) {
	c := startCluster(t, 3, nil)
	proposeN(c, "before", 3)
	lead := c.waitLeader()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			for range 20 {
				if err := lead.ReadBarrier(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("read barrier on a steady leader: %v", err)
	}

	// The leader sleeps through a fail-over; woken, it must not confirm a
	// read: its followers revoked it.
	lead.Pause()
	next := c.waitLeader(lead.ID())
	c.propose("after")
	lead.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	err := lead.ReadBarrier(ctx)
	if lead.Role() == Leader {
		t.Fatalf("old leader %d leads again beside %d", lead.ID(), next.ID())
	}
	if err == nil && lead.Role() != Follower {
		t.Fatalf("old leader's barrier succeeded while it was a %v", lead.Role())
	}
	var nl ErrNotLeader
	if err != nil && !errors.As(err, &nl) {
		t.Fatalf("old leader's barrier: %v, want ErrNotLeader", err)
	}
	// As a follower, its barrier passes only once it applied what the new
	// leader committed while it slept.
	if !waitFor(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		return lead.ReadBarrier(ctx) == nil
	}) {
		t.Fatalf("old leader's barrier never passed as a follower")
	}
	if !slices.Contains(c.sms[lead.ID()].applied(), "after") {
		t.Fatalf("old leader passed a read barrier without the command the new leader acknowledged while it slept")
	}
}

// A follower that knows no live leader refuses reads at once, and one whose
// requests cannot reach the leader does not pass a barrier: it never serves
// a read from its own, possibly stale, state.
func TestReadBarrierFollowerCutOff(t *testing.T) {
	f := &faultDevices{devs: map[int]*faulty.Device{}}
	c := startCluster(t, 3, f.tweak(nil))
	lead := c.waitLeader()
	victim := c.reps[lead.ID()%3+1]
	// Its background plane to the leader is cut: its read-index requests
	// are lost, while entries still reach it.
	cut := f.dev(victim.ID()).Inject(faulty.Label(fmt.Sprintf("bg->%d", lead.ID())), faulty.Partition(0))
	defer cut.Heal()
	c.propose("x")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := victim.ReadBarrier(ctx)
	var nl ErrNotLeader
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &nl) && nl.Leader == 0) {
		t.Fatalf("barrier on a follower cut off from the leader's control plane: %v, want a deadline or no leader", err)
	}
	cut.Heal()
	if !waitFor(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		return victim.ReadBarrier(ctx) == nil
	}) {
		t.Fatalf("follower %d never read again after the heal", victim.ID())
	}
}

// TestReadBarrierAcrossClose: read barriers running on a follower while it
// closes return (ErrClosed, or whatever they were failing with) instead of
// reading its memory after Close released it. Before Close waited for them,
// one polling its header for a read-index answer could fault on the
// unmapped page.
func TestReadBarrierAcrossClose(t *testing.T) {
	for round := range 3 {
		c := startCluster(t, 3, nil)
		lead := c.waitLeader()
		var f *Replica
		for _, r := range c.live() {
			if r != lead {
				f = r
				break
			}
		}
		var wg sync.WaitGroup
		var reads atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ctx, cancel := context.WithTimeout(context.Background(), hang)
					err := f.ReadBarrier(ctx)
					cancel()
					if errors.Is(err, ErrClosed) {
						return
					}
					reads.Add(1)
				}
			}()
		}
		for reads.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		c.crash(f.ID())
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(hang):
			t.Fatalf("round %d: read barriers still running %v after Close", round, hang)
		}
		c.close()
	}
}
