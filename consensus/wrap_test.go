package consensus

import (
	"encoding/binary"
	"fmt"
	"slices"
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

// TestRecoveryAcrossWrap fills a small ring for several laps, then leaves,
// in the leader's log and one follower's, an entry that only fits after a
// wrap marker (a leader that died having reached a minority), and crashes
// the leader. The next leader's prepare must walk the logs across the wrap
// and either recover the entry or discard it, consistently everywhere; the
// cluster then laps the ring again.
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
			c := startCluster(t, 3, func(cfg *Config) { cfg.RingSize = ringSize })
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
			for i := 0; ; i++ {
				acked = append(acked, c.propose(cmd("before", i)))
				c.checkConsistent(len(acked))
				lead = c.waitLeader()
				last, ok := lastEntry(lead.ring)
				if !ok {
					t.Fatal("no valid entry in the leader's ring")
				}
				if i > 2*ringSize/entry && last.Off+last.Size+entry > ringSize {
					break
				}
			}
			lead.Pause()
			if lead.Role() != Leader {
				t.Skip("leadership moved before the entry could be planted")
			}
			var other *Replica
			for _, id := range c.ids {
				if r := c.reps[id]; r != nil && r != lead && (other == nil || tc.highest) {
					other = r
				}
			}
			last, _ := lastEntry(lead.ring)
			payload := logring.AppendCommand(nil, []byte("minority"))
			for _, r := range []*Replica{lead, other} {
				if end := last.Off + last.Size; end < ringSize {
					logring.EncodeWrap(r.ring[end:], last.Index+1)
				}
				logring.Encode(r.ring, last.Index+1, lead.proposal.Load(), last.Index, payload)
			}
			c.crash(lead.ID())
			c.waitLeader(lead.ID())
			// Lap the ring again through the new leader.
			for i := 0; i < 2*ringSize/entry; i++ {
				acked = append(acked, c.propose(cmd("after", i)))
				c.checkConsistent(len(acked))
			}
			seq := c.checkConsistent(len(acked))
			mustContainInOrder(t, seq, acked)
			t.Logf("entry %d after the wrap, held by %d: %s", last.Index+1, other.ID(),
				map[bool]string{true: "recovered", false: "discarded"}[slices.Contains(seq, "minority")])
		})
	}
}
