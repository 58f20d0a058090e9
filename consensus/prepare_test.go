package consensus

import (
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// TestLogCopyFollow checks the rule that lets prepare copy a follower's log
// in windows: a walk is settled (its chain ends there) only when every byte
// the last Poll read lies in the held window; entries that straddle the
// window's edge, and stale bytes past it, never end or extend a chain.
func TestLogCopyFollow(t *testing.T) {
	const ring = 4096
	// A chain 1..5 from offset 0: entry sizes 64, 1088, 128, 64, 64.
	log := make([]byte, logring.MemSize(ring))
	body := log[logring.HeaderSize:]
	off := 0
	for i, n := range []int{8, 1040, 90, 20, 20} {
		off += logring.Encode(body[off:], uint64(i+1), 1, uint64(i), make([]byte, n))
	}
	end := off // 1408: where entry 6 would go
	// Stale bytes past the chain: what an old copy may hold there.
	stale := make([]byte, logring.MemSize(ring))
	copy(stale, log)
	logring.Encode(stale[logring.HeaderSize+end:], 6, 1, 5, make([]byte, 8))

	tests := []struct {
		name        string
		src         []byte
		start, held int
		settled     bool
		at          logring.Cursor
	}{
		{"whole ring", log, 0, ring, true, logring.Cursor{Next: 6, Off: end}},
		{"window ends inside the big entry", log, 0, 1000, false, logring.Cursor{Next: 2, Off: 64}},
		{"window ends on an entry boundary before the end", log, 0, 1280, false, logring.Cursor{Next: 4, Off: 1280}},
		{"window holds the chain and the slot after it", log, 0, end + logring.Align, true, logring.Cursor{Next: 6, Off: end}},
		// Extent judges by the length field alone, not the index: it
		// asks for the slot its length names even where the index
		// already rules the entry out. More than needed, never less.
		{"window holds only the next header", log, 0, end + logring.EntryHeaderSize, false, logring.Cursor{Next: 6, Off: end}},
		{"window ends just before the next header", log, 0, end, false, logring.Cursor{Next: 6, Off: end}},
		{"stale entry 6 outside the window is not taken", stale, 0, end, false, logring.Cursor{Next: 6, Off: end}},
		{"stale entry 6 inside the window is a real entry", stale, 0, ring, true, logring.Cursor{Next: 7, Off: end + 64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The copy holds the header and the window; the rest of its
			// ring area is garbage that looks like nothing.
			cp := make([]byte, len(tc.src))
			for i := range cp {
				cp[i] = 0xA5
			}
			copy(cp[:logring.HeaderSize], tc.src)
			copy(cp[logring.HeaderSize+tc.start:], tc.src[logring.HeaderSize+tc.start:logring.HeaderSize+tc.start+tc.held])
			c := logCopy{log: cp, start: tc.start, n: tc.held, at: logring.Cursor{Next: 1}}
			c.follow()
			if c.settled != tc.settled || c.at != tc.at {
				t.Fatalf("follow: settled %v at %+v; want %v at %+v", c.settled, c.at, tc.settled, tc.at)
			}
		})
	}
}

// TestLogCopyHolds checks the window arithmetic, wrapping included.
func TestLogCopyHolds(t *testing.T) {
	const ring = 1024
	c := logCopy{log: make([]byte, logring.MemSize(ring)), start: 768, n: 512}
	tests := []struct {
		off, size int
		want      bool
	}{
		{768, 256, true},   // start to the ring's end
		{0, 256, true},     // wrapped part
		{0, 257, false},    // one past the window
		{256, 64, false},   // outside
		{704, 64, false},   // just before the start
		{960, 64, true},    // last line before the wrap
		{192, 64, true},    // last line of the window
		{256, 0, true},     // empty range at the window's edge
		{768, 1024, false}, // more than held
	}
	for _, tc := range tests {
		if got := c.holds(tc.off, tc.size); got != tc.want {
			t.Errorf("holds(%d, %d) = %v, want %v", tc.off, tc.size, got, tc.want)
		}
	}
	full := logCopy{log: c.log, start: 768, n: ring}
	if !full.holds(256, 64) {
		t.Error("a copy holding the whole ring must hold everything")
	}
}

// TestRecoverPastTheFirstWindow has the new leader recover entries that
// reach well past prepare's first 64 KiB window: a 200 KiB entry, then a
// small one, that the leader writes into every log but never learns the
// followers hold (the fault provider withholds the completions of its
// WRITEs), so it dies before committing them. They are on every replica,
// so the next leader (the lowest live id: see scriptedCluster) must adopt
// both, which it can only do by widening its window round after round.
func TestRecoverPastTheFirstWindow(t *testing.T) {
	c, f := scriptedCluster(t, 3, func(cfg *Config) { cfg.RingSize, cfg.MaxBatch = 1<<20, 256<<10 })
	acked := proposeN(c, "before", 5)
	c.checkConsistent(len(acked))
	old := c.waitLeader()
	k := old.Stats().Applied + 1
	rule := f.dev(old.ID()).Inject(faulty.And(faulty.Kind(faulty.Write), faulty.PredicateFunc(func(op faulty.Op) bool {
		return strings.HasPrefix(op.Label, "rep->")
	})), faulty.Hold())
	big := string(make([]byte, 200<<10))
	var pending []<-chan error
	for i, cmd := range []string{big, "after-big"} {
		// One at a time, so that they make two entries.
		pending = append(pending, proposeAsync(old, cmd))
		for _, id := range c.survivors(old.ID()) {
			waitEntry(t, c.reps[id], k+uint64(i))
		}
	}
	if n := rule.Fired(); n != 4 {
		t.Fatalf("the rule held %d WRITEs, want 4 (two entries to two followers)", n)
	}
	if s := old.Stats(); s.Commit >= k {
		t.Fatalf("the leader committed entry %d with every acknowledgement withheld: %+v", k, s)
	}
	c.crash(old.ID())
	for _, done := range pending {
		mustNotCommit(t, done, "an entry past the first window")
	}
	lead := c.waitLeader(old.ID())
	if want := c.survivors(old.ID())[0]; lead.ID() != want {
		t.Fatalf("replica %d leads after the crash, want %d, the lowest live id", lead.ID(), want)
	}
	after := proposeN(c, "after", 3)
	want := append(append(append(acked, big), "after-big"), after...)
	seq := c.checkConsistent(len(want))
	mustContainInOrder(t, seq, want)
	if seq[len(acked)] != big || seq[len(acked)+1] != "after-big" {
		t.Fatal("the 200 KiB entry and the one after it were not recovered right after the committed ones")
	}
}
