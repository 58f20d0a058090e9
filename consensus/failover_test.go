package consensus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
)

func proposeN(c *cluster, prefix string, n int) []string {
	var cmds []string
	for i := 0; i < n; i++ {
		cmd := fmt.Sprintf("%s-%d", prefix, i)
		c.propose(cmd)
		cmds = append(cmds, cmd)
	}
	return cmds
}

// mustContainInOrder checks that every acknowledged command is in the
// applied sequence, in the order it was acknowledged.
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

func TestLeaderCrash(t *testing.T) {
	c := startCluster(t, 3, nil)
	acked := proposeN(c, "before", 20)
	c.crash(1)
	lead := c.waitLeader(1)
	if lead.ID() != 2 {
		t.Fatalf("new leader %d, want 2 (the lowest id alive)", lead.ID())
	}
	acked = append(acked, proposeN(c, "after", 20)...)
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
	if s := lead.Stats(); s.Elections != 1 || s.Proposal <= 1 {
		t.Fatalf("new leader's stats: %+v", s)
	}
}

func TestFollowerCrash(t *testing.T) {
	c := startCluster(t, 3, nil)
	acked := proposeN(c, "before", 10)
	c.crash(3)
	acked = append(acked, proposeN(c, "after", 30)...)
	mustContainInOrder(t, c.checkConsistent(len(acked)), acked)
	if lead := c.waitLeader(); lead.ID() != 1 {
		t.Fatalf("leader changed to %d after a follower crash", lead.ID())
	}
}

func TestLeaderPauseResume(t *testing.T) {
	c := startCluster(t, 3, nil)
	acked := proposeN(c, "before", 10)
	old := c.reps[1]
	old.Pause()
	if _, err := old.Propose(context.Background(), []byte("paused")); !errors.Is(err, ErrPaused) {
		t.Fatalf("propose while paused: %v, want ErrPaused", err)
	}
	lead := c.waitLeader(1)
	acked = append(acked, proposeN(c, "during", 10)...)
	old.Resume()
	// The old leader must not be able to commit anything any more.
	late := 0
	ok := waitFor(func() bool {
		late++
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		_, err := old.Propose(ctx, []byte(fmt.Sprintf("late-%d", late)))
		var nl ErrNotLeader
		if err == nil {
			t.Fatalf("the resumed old leader committed late-%d", late)
		}
		return errors.As(err, &nl) && nl.Leader == lead.ID()
	})
	if !ok {
		t.Fatalf("the resumed old leader never answered ErrNotLeader{%d}", lead.ID())
	}
	acked = append(acked, proposeN(c, "after", 10)...)
	seq := c.checkConsistent(len(acked))
	mustContainInOrder(t, seq, acked)
	for _, s := range seq {
		if len(s) > 5 && s[:5] == "late-" {
			t.Fatalf("a late write of the old leader was applied: %q", s)
		}
	}
	if c.waitLeader().ID() != lead.ID() {
		t.Fatal("the resumed old leader pre-empted the new one")
	}
}

// plantEntry writes the next entry, as leader 1 would have, into the logs
// of the replicas in holders only: what a leader leaves behind when it dies
// having reached a minority.
func plantEntry(t *testing.T, c *cluster, cmd string, holders ...int) {
	t.Helper()
	src := c.reps[1]
	cur := logring.Cursor{Next: 1}
	var last logring.Entry
	for {
		e, ok := cur.Poll(src.ring)
		if !ok {
			break
		}
		last = e
	}
	payload := logring.AppendCommand(nil, []byte(cmd))
	for _, id := range holders {
		r := c.reps[id]
		logring.Encode(r.ring[cur.Off:], cur.Next, src.proposal.Load(), last.Index, payload)
	}
}

func testMinorityEntry(t *testing.T, holders ...int) {
	c := startCluster(t, 5, nil)
	acked := proposeN(c, "before", 10)
	c.checkConsistent(len(acked)) // quiet: everything applied everywhere
	c.reps[1].Pause()
	plantEntry(t, c, "minority", holders...)
	c.crash(1)
	c.waitLeader(1)
	acked = append(acked, proposeN(c, "after", 10)...)
	seq := c.checkConsistent(len(acked))
	mustContainInOrder(t, seq, acked)
	has := 0
	for _, sm := range c.sms {
		for _, s := range sm.applied() {
			if s == "minority" {
				has++
			}
		}
	}
	t.Logf("the minority entry was applied by %d of %d replicas", has, len(c.reps)+1)
	if has != 0 && has != len(c.sms) {
		// Replica 1 was closed before applying it; the others must agree.
		live := 0
		for id := range c.reps {
			for _, s := range c.sms[id].applied() {
				if s == "minority" {
					live++
				}
			}
		}
		if live != 0 && live != len(c.reps) {
			t.Fatalf("the minority entry was applied by %d of %d live replicas", live, len(c.reps))
		}
	}
}

// The new leader (2) holds the entry: it must be recovered.
func TestMinorityEntryRecovered(t *testing.T) { testMinorityEntry(t, 1, 2) }

// Only replica 5 holds it: recovered or discarded, but consistently.
func TestMinorityEntryConsistent(t *testing.T) { testMinorityEntry(t, 1, 5) }

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
