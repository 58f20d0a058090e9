package consensus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
)

// recordOf is what the recorder keeps of a command: the command itself, or
// for one longer than a megabyte its length and a digest, so that a replica
// that applied part of a large command, or a corrupt one, shows a record
// nobody proposed.
func recordOf(cmd []byte) string {
	if len(cmd) <= 1<<20 {
		return string(cmd)
	}
	sum := sha256.Sum256(cmd)
	return fmt.Sprintf("large:%d:%x", len(cmd), sum[:8])
}

// largeCmd is n pseudo-random bytes named by tag (the tag first, so that
// retries with a suffix differ).
func largeCmd(tag string, n int) []byte {
	seed := sha256.Sum256([]byte(tag))
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	copy(b, tag)
	return b
}

// proposeLarge proposes largeCmd(tag, n) through whichever replica leads
// until one acknowledges it, as tryPropose does (a retry carries a fresh
// tag), and returns the record of the command acknowledged. Its errors
// name the tag, not the bytes.
func (c *cluster) proposeLarge(tag string, n int) (string, error) {
	deadline := time.Now().Add(hang)
	try := tag
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		lead, err := c.findLeader()
		if err != nil {
			return "", err
		}
		cmd := largeCmd(try, n)
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		_, err = lead.Propose(ctx, cmd)
		cancel()
		if err == nil {
			return recordOf(cmd), nil
		}
		if !errors.Is(err, ErrNotLeaderSentinel) && !errors.Is(err, ErrPaused) && !errors.Is(err, ErrClosed) {
			return "", fmt.Errorf("propose the large command %q of %d bytes: %w", try, n, err)
		}
		try = fmt.Sprintf("%s~%d", tag, attempt)
		time.Sleep(time.Millisecond)
	}
	return "", fmt.Errorf("propose the large command %q: no success within %v", tag, hang)
}

// proposeLargeAsync proposes cmd on r without waiting.
func proposeLargeAsync(r *Replica, cmd []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Propose(context.Background(), cmd)
		done <- err
	}()
	return done
}

// TestAssemblyFeed checks the reassembly rule every replica applies to the
// special entries in log order: whole commands out once, partial ones
// discarded by a drop, a new start or a stray chunk.
func TestAssemblyFeed(t *testing.T) {
	chunk := func(total, off uint64, data string) logring.Special {
		return logring.Special{Kind: logring.KindChunk, Total: total, Offset: off, Data: []byte(data)}
	}
	drop := logring.Special{Kind: logring.KindDrop}
	for _, tc := range []struct {
		name string
		in   []logring.Special
		want []string // commands completed, in order
	}{
		{"one chunk", []logring.Special{chunk(3, 0, "abc")}, []string{"abc"}},
		{"three chunks", []logring.Special{chunk(6, 0, "ab"), chunk(6, 2, "cd"), chunk(6, 4, "ef")}, []string{"abcdef"}},
		{"drop discards", []logring.Special{chunk(6, 0, "ab"), drop, chunk(6, 2, "cd"), chunk(6, 4, "ef")}, nil},
		{"drop then whole", []logring.Special{chunk(4, 0, "ab"), drop, chunk(4, 0, "wx"), chunk(4, 2, "yz")}, []string{"wxyz"}},
		{"new start discards", []logring.Special{chunk(4, 0, "ab"), chunk(2, 0, "xy"), chunk(4, 2, "cd")}, []string{"xy"}},
		{"stray offset", []logring.Special{chunk(6, 0, "ab"), chunk(6, 4, "ef"), chunk(6, 2, "cd")}, nil},
		{"stray total", []logring.Special{chunk(6, 0, "ab"), chunk(7, 2, "cd"), chunk(6, 4, "ef")}, nil},
		{"chunk without start", []logring.Special{chunk(4, 2, "cd"), chunk(4, 0, "ab"), chunk(4, 2, "cd")}, []string{"abcd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a assembly
			var got []string
			for _, s := range tc.in {
				if cmd, ok := a.feed(s); ok {
					got = append(got, string(cmd))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("completed %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAssemblyTransferPrefix checks that the partial assembly a state
// transfer carries comes back as it was, ahead of the state machine's
// snapshot.
func TestAssemblyTransferPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		asm  assembly
	}{
		{"none", assembly{}},
		{"started", assembly{buf: append(make([]byte, 0, 10), "abc"...), total: 10, on: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Replica{}
			r.ms.asm = tc.asm
			var buf bytes.Buffer
			r.snapshotAssembly(&buf)
			buf.WriteString("state")
			rest, got, err := restoreAssembly(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != "state" || got.on != tc.asm.on || got.total != tc.asm.total ||
				!bytes.Equal(got.buf, tc.asm.buf) || cap(got.buf) != int(tc.asm.total) {
				t.Fatalf("restored %+v and %q, want %+v and %q", got, rest, tc.asm, "state")
			}
		})
	}
	if _, _, err := restoreAssembly([]byte{1, 2}); err == nil {
		t.Fatal("a transfer without its prefix restored")
	}
}

// TestLargeCommand proposes commands of several entries, up to 100 MB
// through a 1 MiB ring, alone, concurrently and among small proposals from
// other goroutines: each must be applied whole and once on every replica,
// in the same place of every replica's sequence.
func TestLargeCommand(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ring          int
		size          int // of each large command
		large, small  int // proposers of each
		smallEach     int
		skipWithShort bool
	}{
		{name: "two entries", ring: 64 << 10, size: 20 << 10, large: 1},
		{name: "many entries through a smaller ring", ring: 64 << 10, size: 1 << 20, large: 1},
		{name: "among small proposals", ring: 64 << 10, size: 2 << 20, large: 1, small: 4, smallEach: 100},
		{name: "several at once", ring: 64 << 10, size: 512 << 10, large: 3, small: 2, smallEach: 50},
		{name: "100 MB through a 1 MiB ring", ring: 1 << 20, size: 100 << 20, large: 1, skipWithShort: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipWithShort && testing.Short() {
				t.Skip("a 100 MB command in -short mode")
			}
			c := startCluster(t, 3, func(cfg *Config) { cfg.RingSize = tc.ring })
			var wg sync.WaitGroup
			var mu sync.Mutex
			var errs []error
			acked := make([][]string, tc.large+tc.small)
			run := func(p int, propose func(i int) (string, error), n int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					a, err := propose(i)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					acked[p] = append(acked[p], a)
				}
			}
			start := time.Now()
			for p := 0; p < tc.large; p++ {
				wg.Add(1)
				go run(p, func(int) (string, error) { return c.proposeLarge(fmt.Sprintf("L%d", p), tc.size) }, 1)
			}
			for p := tc.large; p < tc.large+tc.small; p++ {
				wg.Add(1)
				go run(p, func(i int) (string, error) { return c.tryPropose(fmt.Sprintf("s%d-%d", p, i)) }, tc.smallEach)
			}
			wg.Wait()
			for _, err := range errs {
				t.Fatal(err)
			}
			took := time.Since(start)
			want := tc.large + tc.small*tc.smallEach
			got := c.checkConsistent(want)
			for _, a := range acked {
				mustContainInOrder(t, got, a)
			}
			// A proposal refused because its replica lost the lead (a
			// spurious election on a loaded machine) may still commit; its
			// proposer retried it under a new name (cmd~attempt), so an
			// earlier attempt may be applied beside the acknowledged one.
			// Anything else applied was never proposed.
			proposed := map[string]bool{}
			for _, a := range acked {
				for _, cmd := range a {
					proposed[attemptOf(cmd)] = true
				}
			}
			for _, cmd := range got {
				if !proposed[attemptOf(cmd)] {
					t.Fatalf("applied %q, which nobody proposed (%d applied, %d acknowledged)", cmd, len(got), want)
				}
			}
			if len(got) != want {
				t.Logf("%d earlier attempts of retried proposals applied too", len(got)-want)
			}
			t.Logf("%d large commands of %d bytes and %d small ones in %v", tc.large, tc.size, tc.small*tc.smallEach, took)
		})
	}
}

// attemptOf is the command a retried proposal's name stands for (cmd for
// cmd~attempt).
func attemptOf(name string) string {
	if i := strings.IndexByte(name, '~'); i >= 0 {
		return name[:i]
	}
	return name
}

// TestLargeCommandLeaderChange loses the leader in the middle of a large
// command, once its first chunks are applied on the followers: its
// proposer must get an error it can retry (ErrClosed from a crashed
// replica, ErrNotLeader from a deposed one), no replica may apply any of
// it, and the command proposed again through the new leader must be
// applied whole and once everywhere.
func TestLargeCommandLeaderChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		crash   bool
		wantErr error
	}{
		{"crash", true, ErrClosed},
		{"pause", false, ErrNotLeaderSentinel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *cluster
			if tc.crash {
				c, _ = scriptedCluster(t, 3, nil)
			} else {
				c = startCluster(t, 3, nil)
			}
			acked := proposeN(c, "before", 5)
			c.checkConsistent(len(acked))
			old := c.waitLeader()
			from := old.Stats().Commit
			first := largeCmd("first", 64<<20)
			done := proposeLargeAsync(old, first)
			// A few chunks applied on a follower: it holds a partial
			// command when the leader goes.
			if !waitFor(func() bool { return c.follower(old).Stats().Applied > from+4 }) {
				t.Fatal("no chunk of the large command reached a follower")
			}
			if tc.crash {
				c.crash(old.ID())
			} else {
				old.Pause()
			}
			c.waitLeader(old.ID())
			if !tc.crash {
				old.Resume()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("the large command's proposer got %v, want %v", err, tc.wantErr)
				}
			case <-time.After(hang):
				t.Fatalf("the large command's proposal hangs %v after its leader went", hang)
			}
			again, err := c.proposeLarge("again", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, again)
			acked = append(acked, proposeN(c, "after", 5)...)
			got := c.checkConsistent(len(acked))
			mustContainInOrder(t, got, acked)
			if slices.Contains(got, recordOf(first)) {
				t.Fatal("the large command whose leader went was applied")
			}
			if len(got) != len(acked) {
				t.Fatalf("applied %q, want only the acknowledged %q", got, acked)
			}
		})
	}
}

// TestLargeCommandStateTransfer has a follower come back by state transfer
// in the middle of a large command's chunks, restarted (a new incarnation)
// or resumed after the leader left it out for lagging behind its ring: the
// transfer carries the partial command, the follower goes on from the ring
// and must apply the command whole, once, in everyone's place.
//
// To be sure the transfer lands mid-command, the leader is paused once it
// lists the follower as lagging (nobody suspects it: see scriptedCluster),
// so no more chunks come until the follower has restored a snapshot of the
// other follower, taken between two of the command's chunks. (A restart
// takes long enough for the whole command to go through: the other
// follower is paused meanwhile, which holds the leader's stream.)
func TestLargeCommandStateTransfer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
	}{
		{"restarted follower", true},
		{"lagging follower", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := scriptedCluster(t, 3, func(cfg *Config) { cfg.RingSize = 1 << 20 })
			acked := proposeN(c, "before", 5)
			lead := c.waitLeader()
			victim := c.follower(lead)
			id := victim.ID()
			if tc.restart {
				c.crash(id)
			} else {
				victim.Pause()
			}
			// 1024 chunks, the ring holds 16: seconds of streaming.
			cmd := largeCmd("during", 64<<20)
			from := lead.Stats().Applied
			done := proposeLargeAsync(lead, cmd)
			// The leader waits for a live follower while only chunks
			// stream (spareLive), and a paused one is never suspected
			// here: small proposals make it leave a paused follower
			// out.
			stop := make(chan struct{})
			smallDone := make(chan struct{})
			go func() {
				defer close(smallDone)
				for i := 0; !tc.restart; i++ {
					select {
					case <-stop:
						return
					default:
					}
					lead.Propose(context.Background(), []byte(fmt.Sprintf("small-%d", i)))
				}
			}()
			stopSmall := func() { close(stop); <-smallDone }
			if !waitFor(func() bool { return lead.Stats().Applied > from+32 }) {
				stopSmall()
				t.Fatalf("the large command's chunks do not stream: leader %+v", lead.Stats())
			}
			other := c.follower(lead)
			for _, r := range c.live() {
				if r != lead && r.ID() != id {
					other = r
				}
			}
			if tc.restart {
				// Restarting takes a while: hold the stream meanwhile.
				// With the other follower paused (alive all the same)
				// the leader fills its ring and waits for it.
				other.Pause()
				victim = c.restart(id)
			}
			lagging := waitFor(func() bool { return peerOf(lead.Stats(), id).Lagging })
			stopSmall()
			if !lagging {
				other.Resume()
				t.Fatalf("the leader does not list follower %d as lagging: %+v", id, lead.Stats())
			}
			lead.Pause()
			if tc.restart {
				other.Resume() // the producer of the snapshot
			} else {
				victim.Resume()
			}
			if !waitFor(func() bool { return victim.stats.midCommand.Load() > 0 }) {
				t.Fatalf("follower %d was not caught up in the middle of the command: %+v", id, victim.Stats())
			}
			lead.Resume()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("propose the large command: %v", err)
				}
			case <-time.After(hang):
				t.Fatalf("the large command hangs: leader %+v", lead.Stats())
			}
			acked = append(acked, recordOf(cmd))
			acked = append(acked, proposeN(c, "after", 5)...)
			got := c.checkConsistent(len(acked))
			mustContainInOrder(t, got, acked)
			// The small proposals are not in acked: wait for the
			// follower to hold all the leader applied.
			if !waitFor(func() bool { return slices.Equal(c.sms[id].applied(), c.sms[lead.ID()].applied()) }) {
				t.Fatalf("follower %d applied %d commands, the leader %d", id, len(c.sms[id].applied()), len(c.sms[lead.ID()].applied()))
			}
		})
	}
}

// peerOf is s's view of peer id.
func peerOf(s Stats, id int) PeerStats {
	for _, p := range s.Peers {
		if p.ID == id {
			return p
		}
	}
	return PeerStats{}
}
