package consensus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// faultDevices wraps every replica's device in the fault-injecting
// provider and remembers the wrappers by replica id (a restart replaces
// its entry).
type faultDevices struct {
	mu   sync.Mutex
	devs map[int]*faulty.Device
}

func (f *faultDevices) tweak(inner func(*Config)) func(*Config) {
	return func(cfg *Config) {
		if inner != nil {
			inner(cfg)
		}
		id := cfg.ID
		cfg.WrapDevice = func(d verbs.Device) verbs.Device {
			fd := faulty.Wrap(d)
			f.mu.Lock()
			f.devs[id] = fd
			f.mu.Unlock()
			return fd
		}
	}
}

func (f *faultDevices) dev(id int) *faulty.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devs[id]
}

// isolate cuts replica id off from every other replica, both ways, on both
// planes: every operation on a link to or from it completes with
// retry-exceeded (and its queue pair goes to the error state), including
// the links built to replace them, until the returned heal is called. It
// returns the rules, so a test can check that they fired.
func (f *faultDevices) isolate(ids []int, id int) (heal func(), rules []*faulty.Rule) {
	for _, other := range ids {
		aim := func(op faulty.Op) bool { return op.Label != "" }
		if other != id {
			rep, bg := fmt.Sprintf("rep->%d", id), fmt.Sprintf("bg->%d", id)
			aim = func(op faulty.Op) bool { return op.Label == rep || op.Label == bg }
		}
		rules = append(rules, f.dev(other).Inject(faulty.PredicateFunc(aim), faulty.Partition(0)))
	}
	return func() {
		for _, r := range rules {
			r.Heal()
		}
	}, rules
}

// whole waits until the cluster is whole again: one leader that every
// replica names, and every other replica active at it.
func (c *cluster) whole() {
	c.t.Helper()
	var lead *Replica
	if !waitFor(func() bool {
		lead = nil
		for _, r := range c.live() {
			if r.Role() == Leader {
				lead = r
			}
		}
		if lead == nil {
			return false
		}
		for _, r := range c.live() {
			if r.Leader() != lead.ID() {
				return false
			}
		}
		for _, p := range lead.Stats().Peers {
			if !p.Active || p.Lagging {
				return false
			}
		}
		return true
	}) {
		for _, r := range c.live() {
			c.t.Logf("replica %d: %+v", r.ID(), r.Stats())
		}
		c.t.Fatalf("the cluster is not whole again within %v", hang)
	}
}

// TestPartitionHeals isolates a replica (a follower, then the leader) from
// the others with the fault-injecting provider for longer than any retry
// timeout, on both planes and both ways, while commands keep being
// proposed; then heals the partition. The links must be rebuilt and the
// cluster whole again: one leader, every replica active, every replica
// holding the same sequence with every acknowledged command. Twice in a
// row, so that healing leaves nothing behind that breaks the next one.
func TestPartitionHeals(t *testing.T) {
	for _, tc := range victimCases {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultDevices{devs: map[int]*faulty.Device{}}
			c := startCluster(t, 3, f.tweak(func(cfg *Config) {
				cfg.RingSize = 16 << 10
				if tc.tweak != nil {
					tc.tweak(cfg)
				}
			}))
			acked := proposeN(c, "before", 10)
			for round := 0; round < 2; round++ {
				victim := c.waitLeader().ID()
				if !tc.leader {
					victim = victim%3 + 1
				}
				heal, rules := f.isolate(c.ids, victim)
				// Long enough for the others to suspect it and, for a
				// leader, to elect another; the commands lap the small
				// ring, so the victim needs a state transfer after.
				pad := strings.Repeat("z", 40)
				deadline := time.Now().Add(1500 * time.Millisecond)
				for i := 0; time.Now().Before(deadline) || i < 300; i++ {
					acked = append(acked, c.propose(fmt.Sprintf("cut-%d-%d-%s", round, i, pad)))
				}
				heal()
				healed := time.Now()
				for _, r := range rules {
					if r.Fired() == 0 {
						t.Fatalf("round %d: partition rule %v never fired", round, r)
					}
				}
				acked = append(acked, proposeN(c, fmt.Sprintf("healed-%d", round), 10)...)
				c.whole()
				t.Logf("round %d: replica %d cut off, whole again %v after the heal", round, victim, time.Since(healed).Round(time.Millisecond))
				mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
			}
		})
	}
}

// TestCatchingUpRefusesReads restarts a follower while the leader's WRITEs
// to it are cut off (a partition of the leader's replication links to it):
// the restarted replica cannot be taken back, so it must stay behind and
// refuse reads with ErrCatchingUp, and run for nothing; once the partition
// heals, the leader takes it back and its reads are served again.
func TestCatchingUpRefusesReads(t *testing.T) {
	f := &faultDevices{devs: map[int]*faulty.Device{}}
	c := startCluster(t, 3, f.tweak(func(cfg *Config) { cfg.RingSize = 16 << 10 }))
	acked := proposeN(c, "before", 200)
	lead := c.waitLeader()
	victim := lead.ID()%3 + 1
	c.crash(victim)
	cut := f.dev(lead.ID()).Inject(faulty.Label(fmt.Sprintf("rep->%d", victim)), faulty.Partition(0))
	back := c.restart(victim)
	acked = append(acked, proposeN(c, "while-cut", 20)...)
	if !waitFor(func() bool { return cut.Fired() > 0 }) {
		t.Fatalf("the leader never tried to write the restarted replica")
	}
	if !back.CatchingUp() {
		t.Fatalf("restarted replica %d, which the leader cannot write, is not catching up: %+v", victim, back.Stats())
	}
	if err := back.ReadBarrier(context.Background()); !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("ReadBarrier on a replica catching up: %v, want ErrCatchingUp", err)
	}
	if back.Role() != Follower {
		t.Fatalf("a replica catching up runs for leader: %v", back.Role())
	}
	cut.Heal()
	acked = append(acked, proposeN(c, "healed", 20)...)
	c.whole()
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
	if !waitFor(func() bool { return !back.CatchingUp() }) {
		t.Fatalf("replica %d still catching up after the heal: %+v", victim, back.Stats())
	}
	if err := back.ReadBarrier(context.Background()); err != nil {
		t.Fatalf("ReadBarrier on the caught-up replica: %v", err)
	}
}

// TestStalledFollowerTakenBack: a follower that acknowledged an entry it
// never received (a NIC that completes a WRITE it did not execute) waits on
// that slot while later entries land after it; nothing rewrites the slot
// and the ring is far from full, so only the leader noticing that its
// applied index stands still behind the commit index heals it: the leader
// takes it back from the ring, which rewrites its log.
func TestStalledFollowerTakenBack(t *testing.T) {
	f := &faultDevices{devs: map[int]*faulty.Device{}}
	c := startCluster(t, 3, f.tweak(nil))
	acked := proposeN(c, "before", 5)
	lead := c.waitLeader()
	victim := lead.ID()%3 + 1
	isEntry := faulty.PredicateFunc(func(op faulty.Op) bool {
		kind, _, _ := splitWRID(op.WRID)
		return kind == wrEntry
	})
	lost := f.dev(lead.ID()).Inject(faulty.And(faulty.Kind(faulty.Write), faulty.Label(fmt.Sprintf("rep->%d", victim)), isEntry, faulty.OnIndex(0)),
		faulty.Complete(verbs.StatusSuccess))
	acked = append(acked, proposeN(c, "after", 20)...)
	if lost.Fired() != 1 {
		t.Fatalf("the lost WRITE rule fired %d times, want 1", lost.Fired())
	}
	c.whole()
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
}

// TestRejoinAfterFailedTakeBack: the leader's first WRITE to a restarted
// follower (the take-back copy of its ring) fails as if the link dropped
// it; the follower must still be caught up, by a later take-back or a
// state transfer, and the cluster become whole.
func TestRejoinAfterFailedTakeBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status verbs.Status
	}{
		{"retry exceeded", verbs.StatusRetryExceeded},
		{"remote access error", verbs.StatusRemoteAccessError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultDevices{devs: map[int]*faulty.Device{}}
			c := startCluster(t, 3, f.tweak(nil))
			acked := proposeN(c, "before", 20)
			lead := c.waitLeader()
			victim := lead.ID()%3 + 1
			c.crash(victim)
			acked = append(acked, proposeN(c, "while-down", 20)...)
			isEntry := faulty.PredicateFunc(func(op faulty.Op) bool {
				kind, _, _ := splitWRID(op.WRID)
				return kind == wrEntry
			})
			failed := f.dev(lead.ID()).Inject(faulty.And(faulty.Kind(faulty.Write), faulty.Label(fmt.Sprintf("rep->%d", victim)), isEntry, faulty.OnIndex(0)),
				faulty.Complete(tc.status))
			c.restart(victim)
			if !waitFor(func() bool { return failed.Fired() > 0 }) {
				t.Fatalf("the leader never wrote the restarted replica")
			}
			acked = append(acked, proposeN(c, "after", 20)...)
			c.whole()
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
		})
	}
}

// TestReconnectionTakesFollowerIn: a follower asks for its replication QP
// to be rebuilt (as one does whose end went to ERROR) while the cluster is
// idle. The leader's answer resets its own end, which drops whatever it had
// in flight there without completions (a take-back copy of the follower's
// log, say), and a WRITE it posts after the reconnection would land as if
// nothing were missing: a commit index over entries that never came, above
// the follower's stale entries of an earlier term at the same indexes. The
// fault runner found that on tcp: an old leader, stopped and continued,
// applied its own uncommitted entries and stalled for good. So the leader
// must take the follower in again, with a fresh copy of its log, before it
// writes it anything more.
func TestReconnectionTakesFollowerIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
	}{{"shm", nil}, {"tcp", onTCP}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3, tc.tweak)
			acked := proposeN(c, "before", 10)
			c.whole()
			lead := c.waitLeader()
			victim := lead.ID()%3 + 1
			c.mu.Lock()
			follower := c.reps[victim]
			c.mu.Unlock()
			theirs, ours := lead.peers[victim], follower.peers[lead.ID()]
			resets := func(p *peer) uint64 {
				p.repMu.Lock()
				defer p.repMu.Unlock()
				return p.repResets
			}
			before, leaderResets := theirs.takenIn.Load(), resets(theirs)
			ours.wantRecon.Store(true)
			if !waitFor(func() bool {
				return resets(theirs) > leaderResets && ours.repOf().State() == verbs.StateRTS
			}) {
				t.Fatalf("the leader never answered the reconnection request (its resets: %d)", resets(theirs))
			}
			acked = append(acked, proposeN(c, "after", 10)...)
			if !waitFor(func() bool { return theirs.takenIn.Load() > before }) {
				t.Fatalf("replica %d's replication QP was reset at the leader, yet the leader goes on writing it without a fresh copy of its log: %+v", victim, lead.Stats())
			}
			c.whole()
			mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
		})
	}
}
