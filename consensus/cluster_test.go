package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

// hang is the deadline of every wait in these tests: a hang detector, never
// a performance threshold.
const hang = 20 * time.Second

// recorder is a state machine that remembers every command it applied.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (s *recorder) Apply(_ uint64, cmd []byte) []byte {
	s.mu.Lock()
	s.cmds = append(s.cmds, string(cmd))
	n := len(s.cmds)
	s.mu.Unlock()
	return []byte(fmt.Sprint(n))
}
func (s *recorder) Snapshot(io.Writer) error { return nil }
func (s *recorder) Restore(io.Reader) error  { return nil }

func (s *recorder) applied() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

type cluster struct {
	t     testing.TB
	srv   *memcache.Server
	reps  map[int]*Replica
	sms   map[int]*recorder
	ids   []int
	fab   string
	clust string
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("GOMU_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startCluster starts n replicas in this process, each with its own shm
// device on one fabric named after the test, around an embedded registry.
func startCluster(t testing.TB, n int, tweak func(*Config)) *cluster {
	t.Helper()
	return startClusterSM(t, n, tweak, nil)
}

// startClusterSM is startCluster with a state machine of newSM's making on
// every replica (when not nil) instead of a recorder.
func startClusterSM(t testing.TB, n int, tweak func(*Config), newSM func() StateMachine) *cluster {
	t.Helper()
	srv, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	c := &cluster{t: t, srv: srv, reps: map[int]*Replica{}, sms: map[int]*recorder{},
		fab: fmt.Sprintf("ct-%s-%d", name, os.Getpid()), clust: name}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, i)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for _, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{
				ID: id, IDs: c.ids, Registry: srv.Addr(), Cluster: c.clust,
				Transport: "shm", Device: c.fab, RingSize: 64 << 10, Fifo: "-",
				Profile: ProfileRelaxed, Logger: testLogger(t),
			}
			if tweak != nil {
				tweak(&cfg)
			}
			rec := &recorder{}
			var sm StateMachine = rec
			if newSM != nil {
				sm = newSM()
			}
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			r, err := Start(ctx, cfg, sm)
			errs[id] = err
			if err == nil {
				mu.Lock()
				c.reps[id], c.sms[id] = r, rec
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(c.close)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) close() {
	for _, r := range c.reps {
		r.Close()
	}
	c.srv.Close()
}

// crash closes replica id without a goodbye.
func (c *cluster) crash(id int) {
	c.reps[id].Close()
	delete(c.reps, id)
}

// waitLeader waits until some live replica other than those in not leads
// and every live replica agrees, and returns it.
func (c *cluster) waitLeader(not ...int) *Replica {
	c.t.Helper()
	var lead *Replica
	ok := waitFor(func() bool {
		lead = nil
		for id, r := range c.reps {
			if r.Role() == Leader && !r.Paused() && !contains(not, id) {
				lead = r
			}
		}
		if lead == nil {
			return false
		}
		for _, r := range c.reps {
			if !r.Paused() && r.Leader() != lead.ID() {
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("no leader agreed on within %v (excluding %v)", hang, not)
	}
	return lead
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// waitFor polls cond every millisecond until it holds or the hang deadline
// passes.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// propose proposes through whichever replica leads, retrying on
// ErrNotLeader, and returns once it was acknowledged.
func (c *cluster) propose(cmd string) {
	c.t.Helper()
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		lead := c.waitLeader()
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		_, err := lead.Propose(ctx, []byte(cmd))
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotLeaderSentinel) && !errors.Is(err, ErrPaused) {
			c.t.Fatalf("propose %q: %v", cmd, err)
		}
		time.Sleep(time.Millisecond)
	}
	c.t.Fatalf("propose %q: no success within %v", cmd, hang)
}

// checkConsistent waits until every live replica applied at least want
// commands and checks that all applied sequences are prefixes of the
// longest; it returns the longest.
func (c *cluster) checkConsistent(want int) []string {
	c.t.Helper()
	ok := waitFor(func() bool {
		for id := range c.reps {
			if len(c.sms[id].applied()) < want {
				return false
			}
		}
		return true
	})
	var longest []string
	for _, sm := range c.sms {
		if a := sm.applied(); len(a) > len(longest) {
			longest = a
		}
	}
	for id, sm := range c.sms {
		a := sm.applied()
		for i := range a {
			if a[i] != longest[i] {
				c.t.Fatalf("replica %d diverges at command %d: %q vs %q", id, i, a[i], longest[i])
			}
		}
	}
	if !ok {
		for id, r := range c.reps {
			c.t.Logf("replica %d: applied %d, stats %+v", id, len(c.sms[id].applied()), r.Stats())
		}
		c.t.Fatalf("not every replica applied %d commands within %v", want, hang)
	}
	return longest
}

func testSteady(t *testing.T, n int) {
	c := startCluster(t, n, nil)
	lead := c.waitLeader()
	if lead.ID() != 1 {
		t.Fatalf("initial leader is %d, want 1", lead.ID())
	}
	const proposers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, proposers*each)
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), hang)
				res, err := lead.Propose(ctx, []byte(fmt.Sprintf("p%d-%d", p, i)))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if len(res) == 0 {
					errs <- errors.New("empty result")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := c.checkConsistent(proposers * each)
	if len(got) != proposers*each {
		t.Fatalf("applied %d commands, want %d", len(got), proposers*each)
	}
	// Followers answer with ErrNotLeader naming the leader.
	_, err := c.reps[2].Propose(context.Background(), []byte("x"))
	var nl ErrNotLeader
	if !errors.As(err, &nl) || nl.Leader != 1 {
		t.Fatalf("propose on a follower: %v, want ErrNotLeader{1}", err)
	}
}

func TestSteadyState3(t *testing.T) { testSteady(t, 3) }
func TestSteadyState5(t *testing.T) { testSteady(t, 5) }
