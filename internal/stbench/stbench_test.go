package stbench

import (
	"bytes"
	"testing"
)

// TestMachineSnapshotCarriesDone: a follower caught up by a state transfer
// taken after the done command never applies done itself; the snapshot must
// carry it, or the follower waits for an end it already passed.
func TestMachineSnapshotCarriesDone(t *testing.T) {
	for _, done := range []bool{false, true} {
		src := &machine{done: make(chan struct{})}
		for range 3 {
			src.Apply(0, []byte{tagMeasured, 7})
		}
		if done {
			src.Apply(0, []byte{tagDone})
		}
		var buf bytes.Buffer
		if err := src.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
		dst := &machine{done: make(chan struct{})}
		if err := dst.Restore(&buf); err != nil {
			t.Fatal(err)
		}
		if n := dst.applied.Load(); n != 3 {
			t.Fatalf("done %v: restored %d measured commands, want 3", done, n)
		}
		select {
		case <-dst.done:
			if !done {
				t.Fatal("restored machine says done; the snapshot was taken before it")
			}
		default:
			if done {
				t.Fatal("restored machine does not say done; the snapshot was taken after it")
			}
		}
		// Applying done again (from the ring after the transfer) is harmless.
		dst.Apply(0, []byte{tagDone})
	}
}
