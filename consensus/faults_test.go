package consensus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// These tests fail one operation at a time, after pebble's errorfs: each
// scenario is run once for every i in a short list of failure points that
// cover its distinct phases, with the i-th operation of a kind failed by
// the fault provider, and each run must end as well as a run without the
// fault. Every run is a scripted cluster (see scriptedCluster): nobody is
// suspected for being slow, so what happens is what the fault causes.

// logCapture counts the messages a replica logs (and passes them on to the
// test logger when GOMU_TEST_LOG is set), so a test can tell that a
// fallback path ran.
type logCapture struct {
	mu   sync.Mutex
	msgs map[string]int
	next slog.Handler
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Message]++
	h.mu.Unlock()
	if h.next != nil {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

func (h *logCapture) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// captureLogs returns a tweak that gives every replica a logCapture, and
// the captures by replica id (a restart replaces its entry).
func captureLogs(t *testing.T) (func(*Config), func(id int) *logCapture) {
	var mu sync.Mutex
	caps := map[int]*logCapture{}
	tweak := func(cfg *Config) {
		h := &logCapture{msgs: map[string]int{}}
		if l := testLogger(t); l != nil {
			h.next = l.Handler()
		}
		cfg.Logger = slog.New(h)
		mu.Lock()
		caps[cfg.ID] = h
		mu.Unlock()
	}
	return tweak, func(id int) *logCapture {
		mu.Lock()
		defer mu.Unlock()
		return caps[id]
	}
}

// repLabel matches operations on replication-plane QPs, whichever peer
// they reach.
var repLabel = faulty.PredicateFunc(func(op faulty.Op) bool { return strings.HasPrefix(op.Label, "rep->") })

// sameAs checks that replica id applies exactly the sequence seq. It waits
// for it: checkConsistent returns once every replica applied what was
// acknowledged, and seq may hold a command more (one proposed but not
// acknowledged yet) that a follower applies a moment later.
func (c *cluster) sameAs(id int, seq []string) {
	c.t.Helper()
	var got []string
	if !waitFor(func() bool { got = c.sms[id].applied(); return len(got) >= len(seq) }) || !slices.Equal(got[:len(seq)], seq) {
		c.t.Fatalf("replica %d applied %d commands, the longest sequence has %d", id, len(got), len(seq))
	}
}

// TestFaultSnapshotRead pauses a follower while the leader laps a small
// ring many times over, so that on Resume it must catch up by state
// transfer, and fails the i-th READ of the transfer (retry exceeded: its
// QP goes to the error state) for every chunk of it: the first, a middle
// one, the last. The follower must give up that transfer, have its QP
// reconnected, ask again and restore a snapshot, be taken back by the
// leader and hold exactly the others' sequence.
func TestFaultSnapshotRead(t *testing.T) {
	const ring = 4096
	// The transfer READs the snapshot in chunks of the follower's
	// scratch memory: a copy of the log per replica.
	const chunk = 3 * (logring.HeaderSize + ring)
	pad := strings.Repeat("s", 40)
	for i := 0; i < 3; i++ {
		t.Run(fmt.Sprintf("read-%d", i), func(t *testing.T) {
			c, f := scriptedCluster(t, 3, func(cfg *Config) { cfg.RingSize = ring })
			lead := c.waitLeader()
			slow := c.survivors(lead.ID())[1]
			acked := proposeN(c, "before", 10)
			c.checkConsistent(len(acked))
			c.reps[slow].Pause()
			for j := 0; j < 600; j++ {
				acked = append(acked, c.propose(fmt.Sprintf("during-%03d-%s", j, pad)))
			}
			// Quiet: the snapshot any producer takes now holds exactly
			// these commands, so the transfer's READs are known.
			if !waitFor(func() bool {
				for id, sm := range c.sms {
					if id != slow && len(sm.applied()) < len(acked) {
						return false
					}
				}
				return true
			}) {
				t.Fatal("the live replicas did not apply every command")
			}
			var snap bytes.Buffer
			if err := c.sms[lead.ID()].Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			if reads := (snap.Len() + chunk - 1) / chunk; reads != 3 {
				t.Fatalf("the snapshot takes %d READs, want 3 (the scenario is sized for that)", reads)
			}
			rule := f.dev(slow).Inject(faulty.And(faulty.Kind(faulty.Read), repLabel, faulty.OnIndex(i)),
				faulty.Complete(verbs.StatusRetryExceeded))
			c.reps[slow].Resume()
			if !waitFor(func() bool { return c.reps[slow].Stats().Transfers > 0 }) {
				t.Fatalf("replica %d restored no snapshot: %+v", slow, c.reps[slow].Stats())
			}
			if rule.Fired() != 1 {
				t.Fatalf("READ %d of the transfer never failed (%v fired %d times)", i, rule, rule.Fired())
			}
			if !waitFor(func() bool { return c.activeAt(slow) }) {
				t.Fatalf("replica %d is not active again: leader's stats %+v", slow, lead.Stats())
			}
			acked = append(acked, proposeN(c, "after", 10)...)
			seq := c.checkConsistent(len(acked))
			mustContainInOrder(t, seq, acked)
			c.sameAs(slow, seq)
			if !waitFor(func() bool { return !c.reps[slow].CatchingUp() }) {
				t.Fatalf("replica %d still says it is catching up: %+v", slow, c.reps[slow].Stats())
			}
		})
	}
}

// TestFaultLeaderWrite fails the i-th replication WRITE of the leader to
// one follower (retry exceeded: its QP goes to the error state) while
// commands are proposed one after the other, for failure points in the
// first entry, early in the pipeline and after the small ring has wrapped.
// The follower must be left out, reconnected and taken back by a copy of
// the leader's log, and hold exactly the others' sequence; nothing
// acknowledged may be lost. A second rule then fails the copy that takes
// it back as well: it must be reconnected and copied again.
func TestFaultLeaderWrite(t *testing.T) {
	const ring = 8192
	for _, tc := range []struct {
		i        int
		failCopy bool // the take-back copy of the whole log fails too
	}{
		{0, false}, {3, false}, {150, false}, {3, true},
	} {
		t.Run(fmt.Sprintf("write-%d-copy-fails-%v", tc.i, tc.failCopy), func(t *testing.T) {
			c, f := scriptedCluster(t, 3, func(cfg *Config) { cfg.RingSize = ring })
			lead := c.waitLeader()
			victim := c.survivors(lead.ID())[0]
			acked := proposeN(c, "before", 5)
			c.checkConsistent(len(acked))
			label := faulty.Label(fmt.Sprintf("rep->%d", victim))
			var rules []*faulty.Rule
			if tc.failCopy {
				// The take-back copy: the whole ring, then the header.
				whole := faulty.PredicateFunc(func(op faulty.Op) bool { return op.Length == ring })
				rules = append(rules, f.dev(lead.ID()).Inject(faulty.And(faulty.Kind(faulty.Write), label, whole, faulty.OnIndex(0)),
					faulty.Complete(verbs.StatusRetryExceeded)))
			}
			rules = append(rules, f.dev(lead.ID()).Inject(faulty.And(faulty.Kind(faulty.Write), label, faulty.OnIndex(tc.i)),
				faulty.Complete(verbs.StatusRetryExceeded)))
			pad := strings.Repeat("w", 40)
			// 200 commands, and more until every rule fired: how many
			// WRITEs the follower gets depends on whether it lagged
			// meanwhile (the leader does not write a lagging follower).
			deadline := time.Now().Add(hang)
			fired := func() bool {
				for _, r := range rules {
					if r.Fired() == 0 {
						return false
					}
				}
				return true
			}
			for j := 0; j < 200 || !fired() && time.Now().Before(deadline); j++ {
				acked = append(acked, c.propose(fmt.Sprintf("steady-%03d-%s", j, pad)))
			}
			// The take-back copy comes after a reconnection and the
			// leader's back-off: it may still be to come.
			for _, r := range rules {
				if !waitFor(func() bool { return r.Fired() > 0 }) || r.Fired() != 1 {
					t.Fatalf("%v fired %d times, want once", r, r.Fired())
				}
			}
			acked = append(acked, proposeN(c, "after", 10)...)
			seq := c.checkConsistent(len(acked))
			mustContainInOrder(t, seq, acked)
			c.sameAs(victim, seq)
			if !waitFor(func() bool { return c.activeAt(victim) }) {
				t.Fatalf("replica %d is not active again: leader's stats %+v", victim, lead.Stats())
			}
			if now := c.waitLeader(); now != lead {
				t.Fatalf("leadership moved from %d to %d over one failed WRITE to a follower", lead.ID(), now.ID())
			}
		})
	}
}

// TestFaultSetAccess fails a SetAccess (verbs.ErrFenceTimeout) on a
// granter during an election: the leader hangs (paused) until its peers
// suspect it (a suspect timeout of 500 ms, long enough that on a loaded
// machine nobody else is suspected meanwhile) and the lowest live id runs,
// while the granter's replication QP still gives the old leader write
// access (a crash would have reset it, a partition relinked it). The granter's first SetAccess is the revoke of that access (the
// fence: the Reset fallback must run instead), its second the grant to the
// candidate (it must be tried again). The election must still complete,
// the lowest live id leading; once the old leader resumes, it must follow
// (its WRITEs fenced out), every replica be active and hold the same
// sequence.
func TestFaultSetAccess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		i      int    // which of the granter's SetAccess calls fails
		logged string // what the failure makes it log
		label  string // the QP it is called on
	}{
		{"revoke", 0, "revoke failed; resetting the QP", "rep->1"},
		{"grant", 1, "grant failed", "rep->2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, logOf := captureLogs(t)
			c, f := scriptedCluster(t, 3, func(cfg *Config) {
				logs(cfg)
				cfg.SuspectTimeout = 500 * time.Millisecond
			})
			acked := proposeN(c, "before", 20)
			c.checkConsistent(len(acked))
			old := c.waitLeader()
			if old.ID() != 1 {
				t.Fatalf("replica %d leads at start, want 1", old.ID())
			}
			const candidate, granter = 2, 3
			var mu sync.Mutex
			var calls []string // the QPs of the granter's SetAccess calls, in order
			rule := f.dev(granter).Inject(faulty.And(faulty.Kind(faulty.SetAccess), faulty.PredicateFunc(func(op faulty.Op) bool {
				mu.Lock()
				calls = append(calls, op.Label)
				mu.Unlock()
				return true
			}), faulty.OnIndex(tc.i)), faulty.Fail(verbs.ErrFenceTimeout))
			labels := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(calls)
			}
			old.Pause()
			lead := c.waitLeader(old.ID())
			if lead.ID() != candidate {
				t.Fatalf("replica %d leads after the old leader hung, want %d, the lowest live id", lead.ID(), candidate)
			}
			if rule.Fired() != 1 {
				t.Fatalf("%v fired %d times, want once (SetAccess calls on %v)", rule, rule.Fired(), labels())
			}
			if l := labels(); l[tc.i] != tc.label {
				t.Fatalf("SetAccess %d was on %s, want %s (calls on %v)", tc.i, l[tc.i], tc.label, l)
			}
			if logOf(granter).count(tc.logged) == 0 {
				t.Fatalf("replica %d never logged %q", granter, tc.logged)
			}
			acked = append(acked, proposeN(c, "during", 20)...)
			old.Resume()
			acked = append(acked, proposeN(c, "after", 20)...)
			c.whole()
			if now := c.waitLeader(); now != lead {
				t.Fatalf("replica %d leads after the heal, want %d", now.ID(), lead.ID())
			}
			seq := c.checkConsistent(len(acked))
			mustContainInOrder(t, seq, acked)
			for _, id := range c.ids {
				c.sameAs(id, seq)
			}
		})
	}
}
