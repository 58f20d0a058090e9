package consensus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// With EagerCommit, a command the leader acknowledged is applied on every
// follower once that follower's ReadBarrier returns: the read-your-writes
// guarantee a Redis client gets when it writes to the leader and reads from
// a replica.
func TestReadBarrierFollowerSeesAcknowledged(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.EagerCommit = true })
	lead := c.waitLeader()
	for i := 1; i <= 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		if _, err := lead.Propose(ctx, []byte(fmt.Sprint("cmd", i))); err != nil {
			cancel()
			t.Fatalf("propose %d: %v", i, err)
		}
		for _, r := range c.live() {
			if r == lead {
				continue
			}
			if err := r.ReadBarrier(ctx); err != nil {
				cancel()
				t.Fatalf("read barrier on follower %d: %v", r.ID(), err)
			}
			if got := len(c.sms[r.ID()].applied()); got < i {
				cancel()
				t.Fatalf("follower %d applied %d commands after its barrier, the leader acknowledged %d", r.ID(), got, i)
			}
		}
		cancel()
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
}
