package consensus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A leader that loses its majority steps down and fails the proposals it
// holds with ErrNotLeader. Its leader word still names itself until the
// detector sees another claimant, and the error used to be built from it:
// clients were told to retry on the replica that had just refused them.
// Neither the error nor Leader() may name a replica that does not lead.
func TestStepDownDoesNotNameItself(t *testing.T) {
	c := startCluster(t, 3, nil)
	proposeN(c, "before", 5)
	lead := c.waitLeader()
	for _, r := range c.live() {
		if r != lead {
			c.crash(r.ID())
		}
	}
	deadline := time.Now().Add(hang)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the leader still takes proposals %v after losing both followers", hang)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		_, err := lead.Propose(ctx, []byte("orphan"))
		cancel()
		var nl ErrNotLeader
		if errors.As(err, &nl) {
			if nl.Leader == lead.ID() {
				t.Fatalf("replica %d refused a proposal naming itself as leader: %v", lead.ID(), err)
			}
			break
		}
		if err != nil && !errors.Is(err, ErrBusy) {
			t.Fatalf("propose: %v", err)
		}
	}
	if lead.Role() != Leader && lead.Leader() == lead.ID() {
		t.Fatalf("replica %d is a %v but reports itself as leader", lead.ID(), lead.Role())
	}
}
