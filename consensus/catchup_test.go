package consensus

import (
	"fmt"
	"strings"
	"testing"
)

// TestLaggingFollowerCatchesUp pauses a follower (a hung process: its
// replayer stops while the leader's one-sided WRITEs keep landing in its
// ring) while the leader laps a small ring many times over, then resumes
// it. It must come back by
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
			slow := c.follower(c.waitLeader())
			acked := proposeN(c, "before", 10)
			slow.Pause()
			// ~100 bytes of ring a command: 2000 of them lap the ring
			// a dozen times, and the snapshot (every command so far)
			// is many times the ring and the transfer's chunk.
			pad := strings.Repeat("x", 40)
			for i := 0; i < 2000; i++ {
				acked = append(acked, c.propose(fmt.Sprintf("during-%d-%s", i, pad)))
			}
			// The leader left it out as lagging, or (should the
			// loaded machine have moved leadership meanwhile) never
			// took its grant: either way its next entry is long gone
			// from every ring.
			slow.Resume()
			acked = append(acked, proposeN(c, "after", 20)...)
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
			if n := slow.Stats().Transfers; n == 0 {
				t.Fatalf("replica %d caught up without a state transfer: %+v", slow.ID(), slow.Stats())
			}
			if !waitFor(func() bool { return c.activeAt(slow.ID()) }) {
				t.Fatalf("replica %d is not active again: leader's stats %+v", slow.ID(), c.waitLeader().Stats())
			}
		})
	}
}

// victimCases are the healing tests' table: the replica a fault hits (a
// follower or the leader) on each transport.
var victimCases = []struct {
	name   string
	leader bool
	tweak  func(*Config)
}{
	{"follower-shm", false, nil},
	{"leader-shm", true, nil},
	{"follower-tcp", false, onTCP},
	{"leader-tcp", true, onTCP},
}

// follower returns a live replica other than lead.
func (c *cluster) follower(lead *Replica) *Replica {
	for _, r := range c.live() {
		if r != lead {
			return r
		}
	}
	c.t.Fatalf("no replica but the leader %d", lead.ID())
	return nil
}

// activeAt reports whether the current leader counts replica id active
// (and not lagging).
func (c *cluster) activeAt(id int) bool {
	lead, err := c.findLeader()
	if err != nil {
		return false
	}
	for _, p := range lead.Stats().Peers {
		if p.ID == id {
			return p.Active && !p.Lagging
		}
	}
	return false
}

// TestRestartRejoins crashes a replica, lets the others go on, starts it
// again with the same id (a new incarnation, empty memory) and expects it
// back: linked by the others, caught up (by state transfer: the ring has
// lapped), active at the leader and holding everyone's sequence. Then the
// leader is crashed: the restarted replica must be part of the majority
// that goes on. Both for a restarted follower and a restarted leader.
func TestRestartRejoins(t *testing.T) {
	for _, tc := range victimCases {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3, func(cfg *Config) {
				cfg.RingSize = 16 << 10
				if tc.tweak != nil {
					tc.tweak(cfg)
				}
			})
			acked := proposeN(c, "before", 20)
			victim := c.waitLeader().ID()
			if !tc.leader {
				victim = victim%3 + 1
			}
			c.crash(victim)
			pad := strings.Repeat("y", 40)
			for i := 0; i < 500; i++ {
				acked = append(acked, c.propose(fmt.Sprintf("while-down-%d-%s", i, pad)))
			}
			back := c.restart(victim)
			acked = append(acked, proposeN(c, "after-restart", 20)...)
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
			if !waitFor(func() bool { return c.activeAt(victim) }) {
				t.Fatalf("restarted replica %d is not active at the leader: %+v", victim, back.Stats())
			}
			if back.Stats().Transfers == 0 {
				t.Fatalf("restarted replica %d caught up without a state transfer", victim)
			}
			// The restarted replica must now carry a fail-over: crash the
			// leader (unless it is the restarted one: then crash another).
			other := c.waitLeader().ID()
			if other == victim {
				other = victim%3 + 1
			}
			c.crash(other)
			acked = append(acked, proposeN(c, "after-second-crash", 20)...)
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
		})
	}
}
