package consensus

import (
	"fmt"
	"strings"
	"testing"
)

// TestLaggingFollowerCatchesUp pauses a follower (a hung process: its
// replayer stops while the leader's one-sided WRITEs keep landing in its
// ring) while the leader laps a small ring many times over, then resumes
// it. The leader must have left it out as lagging; it must come back by
// state transfer (its snapshot is several times the ring: the transfer
// takes many chunks) and then from the ring, be active again, and hold
// exactly the others' sequence.
func TestLaggingFollowerCatchesUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
	}{
		{"shm", nil},
		{"tcp", onTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const ringSize = 16 << 10
			c := startCluster(t, 3, func(cfg *Config) {
				cfg.RingSize = ringSize
				if tc.tweak != nil {
					tc.tweak(cfg)
				}
			})
			lead := c.waitLeader()
			var slow *Replica
			for _, r := range c.live() {
				if r != lead {
					slow = r
					break
				}
			}
			acked := proposeN(c, "before", 10)
			slow.Pause()
			// ~100 bytes of ring a command: 2000 of them lap the ring
			// a dozen times, and the snapshot (every command so far)
			// is many times the ring and the transfer's chunk.
			pad := strings.Repeat("x", 40)
			for i := 0; i < 2000; i++ {
				acked = append(acked, c.propose(fmt.Sprintf("during-%d-%s", i, pad)))
			}
			if !waitFor(func() bool {
				for _, p := range c.waitLeader().Stats().Peers {
					if p.ID == slow.ID() && p.Lagging {
						return true
					}
				}
				return false
			}) {
				t.Fatalf("the leader never left paused replica %d out as lagging: %+v", slow.ID(), lead.Stats())
			}
			slow.Resume()
			acked = append(acked, proposeN(c, "after", 20)...)
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
			if n := slow.Stats().Transfers; n == 0 {
				t.Fatalf("replica %d caught up without a state transfer: %+v", slow.ID(), slow.Stats())
			}
			if !waitFor(func() bool {
				for _, p := range c.waitLeader().Stats().Peers {
					if p.ID == slow.ID() {
						return p.Active && !p.Lagging
					}
				}
				return false
			}) {
				t.Fatalf("replica %d is not active again: leader's stats %+v", slow.ID(), c.waitLeader().Stats())
			}
		})
	}
}
