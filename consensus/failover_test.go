package consensus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// proposeN proposes prefix-0 … prefix-(n-1) one after the other and returns
// what was acknowledged (retries carry a suffix: see tryPropose).
func proposeN(c *cluster, prefix string, n int) []string {
	c.t.Helper()
	var acked []string
	for i := 0; i < n; i++ {
		acked = append(acked, c.propose(fmt.Sprintf("%s-%d", prefix, i)))
	}
	return acked
}

// mustContainInOrder checks that every acknowledged command is in the
// applied sequence, once, in the order it was acknowledged.
func mustContainInOrder(t *testing.T, seq, acked []string) {
	t.Helper()
	pos := map[string]int{}
	for i, s := range seq {
		if _, dup := pos[s]; dup {
			t.Fatalf("command %q applied twice", s)
		}
		pos[s] = i
	}
	last := -1
	for _, a := range acked {
		p, ok := pos[a]
		if !ok {
			t.Fatalf("acknowledged command %q was lost", a)
		}
		if p < last {
			t.Fatalf("acknowledged command %q applied out of order", a)
		}
		last = p
	}
}

// Which replica takes over is not asserted in these tests: the lowest id
// believed alive runs, but on a starved machine (2 cores, the race
// detector, other packages' tests) any replica may be suspected for a
// while, and the protocol promises only one leader per proposal number, a
// live leader eventually, and nothing acknowledged lost.

func TestLeaderCrash(t *testing.T)    { testLeaderCrash(t, nil) }
func TestLeaderCrashTCP(t *testing.T) { testLeaderCrash(t, onTCP) }

func testLeaderCrash(t *testing.T, tweak func(*Config)) {
	c := startCluster(t, 3, tweak)
	acked := proposeN(c, "before", 20)
	old := c.waitLeader()
	c.crash(old.ID())
	lead := c.waitLeader(old.ID())
	acked = append(acked, proposeN(c, "after", 20)...)
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
	// Replica 1 leads from the start; any other leader won an election.
	if s := lead.Stats(); lead.ID() != 1 && s.Elections == 0 {
		t.Fatalf("leader %d never won an election: %+v", lead.ID(), s)
	}
}

func TestFollowerCrash(t *testing.T) {
	c := startCluster(t, 3, nil)
	acked := proposeN(c, "before", 10)
	lead := c.waitLeader()
	for id := range c.reps {
		if id != lead.ID() {
			c.crash(id)
			break
		}
	}
	acked = append(acked, proposeN(c, "after", 30)...)
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
}

func TestLeaderPauseResume(t *testing.T) {
	c := startCluster(t, 3, nil)
	acked := proposeN(c, "before", 10)
	old := c.waitLeader()
	old.Pause()
	if _, err := old.Propose(context.Background(), []byte("paused")); !errors.Is(err, ErrPaused) {
		t.Fatalf("propose while paused: %v, want ErrPaused", err)
	}
	lead := c.waitLeader(old.ID())
	acked = append(acked, proposeN(c, "during", 10)...)
	old.Resume()
	// The old leader wakes up believing it still leads; what it proposes
	// now goes to followers that fenced it out, so the proposal must fail
	// and its entry must never be applied anywhere. (It may legitimately
	// lead again, by winning an election, if its peers suspect the new
	// leader in the meantime: then its proposal succeeds.)
	var refused []string
	deadline := time.Now().Add(hang)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed old leader still takes proposals after %v", hang)
		}
		cmd := fmt.Sprintf("late-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		_, err := old.Propose(ctx, []byte(cmd))
		cancel()
		if err == nil {
			if old.Stats().Elections == 0 {
				t.Fatalf("the resumed old leader committed %q without winning an election", cmd)
			}
			acked = append(acked, cmd)
			break
		}
		if !errors.Is(err, ErrNotLeaderSentinel) {
			t.Fatalf("propose %q on the resumed old leader: %v, want ErrNotLeader", cmd, err)
		}
		refused = append(refused, cmd)
		if old.Role() == Follower {
			break
		}
	}
	acked = append(acked, proposeN(c, "after", 10)...)
	seq := c.checkConsistent(len(acked))
	mustContainInOrder(t, seq, acked)
	for _, s := range seq {
		if slices.Contains(refused, s) {
			t.Fatalf("a late write of the old leader was applied: %q", s)
		}
	}
	if now := c.waitLeader(); now != lead {
		t.Logf("leadership moved on from %d to %d (false suspicion on a loaded machine)", lead.ID(), now.ID())
	}
}

// scriptedCluster starts n replicas whose devices are wrapped in the
// fault-injecting provider, with a suspect timeout longer than any test:
// nobody is ever suspected for being slow, however loaded the machine, so
// leadership moves only when the test crashes the leader. (A crashed
// replica's links fail at once on shm, so its peers find it dead without
// suspicion.) Then the lowest live id runs, and it wins: the fail-over is
// scripted, not raced.
func scriptedCluster(t *testing.T, n int, tweak func(*Config)) (*cluster, *faultDevices) {
	t.Helper()
	f := &faultDevices{devs: map[int]*faulty.Device{}}
	c := startCluster(t, n, f.tweak(func(cfg *Config) {
		cfg.SuspectTimeout = time.Hour
		if tweak != nil {
			tweak(cfg)
		}
	}))
	return c, f
}

// survivors returns the ids of c other than id, in increasing order: the
// first is the replica that leads once id, the leader, crashes.
func (c *cluster) survivors(id int) []int {
	var s []int
	for _, x := range c.ids {
		if x != id {
			s = append(s, x)
		}
	}
	return s
}

// writeOnlyTo makes the next replication WRITEs of lead, the leader of a
// quiet cluster, land on the followers in holders only: the first WRITE it
// posts to any other follower pauses it (a leader that hangs right after
// posting an entry) and completes with retry exceeded without landing, as
// does every later one to them. The WRITEs to the holders go through, so
// the entry being posted ends up on a minority (the leader and the
// holders), uncommitted, and the paused leader neither sees the failures
// nor posts anything after it.
func writeOnlyTo(f *faultDevices, lead *Replica, holders ...int) *faulty.Rule {
	cut := map[string]bool{}
	for _, p := range lead.Stats().Peers {
		if !contains(holders, p.ID) {
			cut[fmt.Sprintf("rep->%d", p.ID)] = true
		}
	}
	return f.dev(lead.ID()).Inject(faulty.PredicateFunc(func(op faulty.Op) bool {
		if op.Kind != faulty.Write || !cut[op.Label] {
			return false
		}
		lead.Pause()
		return true
	}), faulty.Complete(verbs.StatusRetryExceeded))
}

// proposeAsync proposes cmd on r without waiting: the returned channel
// gets the outcome.
func proposeAsync(r *Replica, cmd string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Propose(context.Background(), []byte(cmd))
		done <- err
	}()
	return done
}

// waitEntry waits until r's ring holds a valid entry with index idx or
// higher.
func waitEntry(t *testing.T, r *Replica, idx uint64) {
	t.Helper()
	if !waitFor(func() bool {
		e, ok := lastEntry(r.ring)
		return ok && e.Index >= idx
	}) {
		t.Fatalf("entry %d never reached replica %d's log", idx, r.ID())
	}
}

// mustNotCommit checks that a proposal whose entry never reached a
// majority was not acknowledged: its leader crashed before it could be.
func mustNotCommit(t *testing.T, done <-chan error, cmd string) {
	t.Helper()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("%q was acknowledged, yet its entry never reached a majority", cmd)
		}
	case <-time.After(hang):
		t.Fatalf("the proposal of %q still hangs %v after its leader crashed", cmd, hang)
	}
}

// testMinorityEntry has the leader of a 5-replica cluster post an entry
// that lands on one follower only (the lowest other id, or the highest),
// then crashes the leader. The entry is on a minority and was never
// acknowledged, so the protocol may recover it or discard it; the test
// scripts which:
//
//   - lowest: the holder is the lowest live id, so it runs and leads next;
//     its prepare finds the entry in its own log, with the highest proposal
//     at that index, and adopts it: the entry must be applied everywhere,
//     right after the commands before it.
//   - highest: the holder is paused while the others elect the lowest live
//     id, so the new leader's prepare cannot see it: the entry must be
//     discarded. Resumed, the holder is taken back by a copy of the new
//     leader's log, which overwrites it, and must never apply it.
//
// Either way nothing acknowledged may be lost and every replica must hold
// the same sequence.
func testMinorityEntry(t *testing.T, highest bool) {
	c, f := scriptedCluster(t, 5, nil)
	acked := proposeN(c, "before", 10)
	c.checkConsistent(len(acked)) // quiet: everything applied everywhere
	old := c.waitLeader()
	alive := c.survivors(old.ID())
	next := alive[0] // the lowest live id once old crashes
	holder := next
	if highest {
		holder = alive[len(alive)-1]
	}
	k := old.Stats().Applied + 1
	rule := writeOnlyTo(f, old, holder)
	done := proposeAsync(old, "minority")
	waitEntry(t, c.reps[holder], k)
	if !waitFor(old.Paused) {
		t.Fatal("the leader never posted the entry")
	}
	if n := rule.Fired(); n != len(alive)-1 {
		t.Fatalf("the rule failed %d WRITEs, want %d (one to each follower but the holder)", n, len(alive)-1)
	}
	for _, id := range alive {
		if e, _ := lastEntry(c.reps[id].ring); id != holder && e.Index >= k {
			t.Fatalf("entry %d reached replica %d, which is not its holder", k, id)
		}
	}
	if highest {
		c.reps[holder].Pause()
	}
	c.crash(old.ID())
	mustNotCommit(t, done, "minority")
	lead := c.waitLeader(old.ID())
	if lead.ID() != next {
		t.Fatalf("replica %d leads after the crash, want %d, the lowest live id", lead.ID(), next)
	}
	after := proposeN(c, "after", 10)
	if highest {
		c.reps[holder].Resume()
		after = append(after, proposeN(c, "resumed", 10)...)
		if !waitFor(func() bool { return c.activeAt(holder) }) {
			t.Fatalf("the resumed holder %d is not active again: leader's stats %+v", holder, lead.Stats())
		}
	}
	var want []string
	want = append(want, acked...)
	if !highest {
		want = append(want, "minority")
	}
	want = append(want, after...)
	seq := c.checkConsistent(len(want))
	mustContainInOrder(t, seq, want)
	switch {
	case !highest && seq[len(acked)] != "minority":
		t.Fatalf("command %d is %q, want the recovered minority entry", len(acked), seq[len(acked)])
	case highest && slices.Contains(seq, "minority"):
		t.Fatal("the minority entry its new leader never saw was applied")
	}
}

// The lowest follower holds the entry and leads next: recovered.
func TestMinorityEntryRecovered(t *testing.T) { testMinorityEntry(t, false) }

// Only the highest follower holds it, and it is paused through the
// election: discarded, everywhere.
func TestMinorityEntryConsistent(t *testing.T) { testMinorityEntry(t, true) }

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	c := startCluster(t, 3, func(cfg *Config) { cfg.Fifo = fmt.Sprintf("%s/fifo-%d", t.TempDir(), cfg.ID) })
	proposeN(c, "x", 5)
	c.close()
	c.reps = nil
	deadline := time.Now().Add(hang)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestLeaderPauseFifo pauses the leader through its fifo, as an operator
// would ("echo p > /tmp/fifo-1"), and resumes it the same way.
func TestLeaderPauseFifo(t *testing.T) {
	dir := t.TempDir()
	fifo := func(id int) string { return fmt.Sprintf("%s/fifo-%d", dir, id) }
	c := startCluster(t, 3, func(cfg *Config) { cfg.Fifo = fifo(cfg.ID) })
	send := func(id int, b string) {
		t.Helper()
		f, err := os.OpenFile(fifo(id), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(b); err != nil {
			t.Fatal(err)
		}
	}
	acked := proposeN(c, "before", 10)
	old := c.waitLeader()
	send(old.ID(), "p")
	if !waitFor(old.Paused) {
		t.Fatalf("replica %d not paused by its fifo within %v", old.ID(), hang)
	}
	c.waitLeader(old.ID())
	acked = append(acked, proposeN(c, "during", 10)...)
	send(old.ID(), "c\n")
	if !waitFor(func() bool { return !old.Paused() }) {
		t.Fatalf("replica %d not resumed by its fifo within %v", old.ID(), hang)
	}
	acked = append(acked, proposeN(c, "after", 10)...)
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
}
