package consensus

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
)

// lastEntry finds the valid entry with the highest index in ring by trying
// every aligned offset: after several laps the first entries are long
// overwritten, so a walk from index 1 finds nothing.
func lastEntry(ring []byte) (logring.Entry, bool) {
	var last logring.Entry
	found := false
	for off := 0; off+logring.EntryHeaderSize <= len(ring); off += logring.Align {
		idx := binary.LittleEndian.Uint64(ring[off:])
		if e, wrap, ok := logring.Decode(ring, off, idx); ok && !wrap && (!found || e.Index > last.Index) {
			last, found = e, true
		}
	}
	return last, found
}

// TestRecoveryAcrossWrap fills a small ring for several laps, then has the
// leader post an entry that only fits after a wrap marker to one follower
// only (the fault provider fails its WRITEs to the other: a leader that
// died having reached a minority), and crashes the leader. The next leader
// is the lowest live id (see scriptedCluster), and in a 3-replica cluster
// its prepare needs the only other survivor's log, so whoever holds the
// entry, its prepare must walk the logs across the wrap and recover it,
// the same everywhere; the cluster then laps the ring again.
func TestRecoveryAcrossWrap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		highest bool // the follower holding the entry: the highest id, else the lowest
	}{
		{"lowest-holds", false},
		{"highest-holds", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 65 slots of 64 bytes; every entry below takes two, so
			// each lap ends with a wrap marker.
			const ringSize = 65 * logring.Align
			c, f := scriptedCluster(t, 3, func(cfg *Config) { cfg.RingSize = ringSize })
			cmd := func(prefix string, i int) string {
				s := fmt.Sprintf("%s-%d-", prefix, i)
				return s + strings.Repeat("x", 60-len(s))
			}
			entry := logring.EntrySize(logring.CommandSize(60))
			if entry != 2*logring.Align {
				t.Fatalf("entry of %d bytes, want %d", entry, 2*logring.Align)
			}
			// Propose in lockstep (every replica applies each command
			// before the next) so no follower ever falls behind the
			// ring's reuse point, until the ring lapped twice and the
			// next entry needs a wrap.
			var acked []string
			var lead *Replica
			var last logring.Entry
			for i := 0; ; i++ {
				acked = append(acked, c.propose(cmd("before", i)))
				c.checkConsistent(len(acked))
				lead = c.waitLeader()
				var ok bool
				if last, ok = lastEntry(lead.ring); !ok {
					t.Fatal("no valid entry in the leader's ring")
				}
				if i > 2*ringSize/entry && last.Off+last.Size+entry > ringSize {
					break
				}
			}
			alive := c.survivors(lead.ID())
			holder := alive[0]
			if tc.highest {
				holder = alive[len(alive)-1]
			}
			rule := writeOnlyTo(f, lead, holder)
			minority := cmd("minority", 0)
			done := proposeAsync(lead, minority)
			waitEntry(t, c.reps[holder], last.Index+1)
			if !waitFor(lead.Paused) {
				t.Fatal("the leader never posted the entry")
			}
			// The wrap marker to the one other follower failed, and the
			// entry behind it was flushed.
			if n := rule.Fired(); n != 1 {
				t.Fatalf("the rule failed %d WRITEs, want 1 (the wrap marker)", n)
			}
			if e, _ := lastEntry(c.reps[alive[0]+alive[1]-holder].ring); e.Index > last.Index {
				t.Fatalf("entry %d reached the follower that is not its holder", e.Index)
			}
			if e, ok := lastEntry(c.reps[holder].ring); !ok || e.Off != 0 {
				t.Fatalf("entry %d at offset %d, want 0: after the wrap marker", e.Index, e.Off)
			}
			c.crash(lead.ID())
			mustNotCommit(t, done, minority)
			if now := c.waitLeader(lead.ID()); now.ID() != alive[0] {
				t.Fatalf("replica %d leads after the crash, want %d, the lowest live id", now.ID(), alive[0])
			}
			acked = append(acked, minority)
			// Lap the ring again through the new leader.
			for i := 0; i < 2*ringSize/entry; i++ {
				acked = append(acked, c.propose(cmd("after", i)))
				c.checkConsistent(len(acked))
			}
			seq := c.checkConsistent(len(acked))
			mustContainInOrder(t, seq, acked)
		})
	}
}
