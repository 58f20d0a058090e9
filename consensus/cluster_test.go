package consensus

import (
	"context"
	"encoding/binary"
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
	s.cmds = append(s.cmds, recordOf(cmd))
	n := len(s.cmds)
	s.mu.Unlock()
	return []byte(fmt.Sprint(n))
}

// Snapshot writes every command applied so far, each length-prefixed, so a
// replica caught up by state transfer holds the same sequence as the others.
func (s *recorder) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	for _, c := range s.cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	_, err := w.Write(b)
	return err
}

func (s *recorder) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var cmds []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return fmt.Errorf("recorder: malformed snapshot")
		}
		cmds = append(cmds, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	s.mu.Lock()
	s.cmds = cmds
	s.mu.Unlock()
	return nil
}

func (s *recorder) applied() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

type cluster struct {
	mu    sync.Mutex // guards reps against crash while others propose
	t     testing.TB
	srv   *memcache.Server
	reps  map[int]*Replica
	sms   map[int]*recorder
	ids   []int
	fab   string
	clust string
	tweak func(*Config)
	newSM func() StateMachine
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
		fab: fmt.Sprintf("ct-%s-%d", name, os.Getpid()), clust: name, tweak: tweak, newSM: newSM}
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
			r, rec, err := c.start(id)
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

// start starts replica id of the cluster (again, after a crash: a new
// incarnation with fresh memory).
func (c *cluster) start(id int) (*Replica, *recorder, error) {
	cfg := Config{
		ID: id, IDs: c.ids, Registry: c.srv.Addr(), Cluster: c.clust,
		Transport: "shm", Device: c.fab, RingSize: 64 << 10, Fifo: "-",
		Profile: ProfileRelaxed, Logger: testLogger(c.t),
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	rec := &recorder{}
	var sm StateMachine = rec
	if c.newSM != nil {
		sm = c.newSM()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	r, err := Start(ctx, cfg, sm)
	return r, rec, err
}

// restart starts crashed replica id again, into the running cluster.
func (c *cluster) restart(id int) *Replica {
	c.t.Helper()
	r, rec, err := c.start(id)
	if err != nil {
		c.t.Fatalf("restart replica %d: %v", id, err)
	}
	c.mu.Lock()
	c.reps[id], c.sms[id] = r, rec
	c.mu.Unlock()
	return r
}

func (c *cluster) close() {
	for _, r := range c.reps {
		r.Close()
	}
	c.srv.Close()
}

// crash closes replica id without a goodbye.
func (c *cluster) crash(id int) {
	c.mu.Lock()
	r := c.reps[id]
	delete(c.reps, id)
	c.mu.Unlock()
	r.Close()
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

// tryPropose proposes cmd through whichever replica leads until one
// acknowledges it, and returns the command that was acknowledged. A Propose
// that fails with ErrNotLeader may or may not have been committed, so every
// retry carries a fresh suffix ("cmd~1", "cmd~2", …): with unique commands a
// replica that applied something twice is a bug, never a retry.
func (c *cluster) tryPropose(cmd string) (string, error) {
	deadline := time.Now().Add(hang)
	try := cmd
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		lead, err := c.findLeader()
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		_, err = lead.Propose(ctx, []byte(try))
		cancel()
		if err == nil {
			return try, nil
		}
		if !errors.Is(err, ErrNotLeaderSentinel) && !errors.Is(err, ErrPaused) && !errors.Is(err, ErrClosed) {
			return "", fmt.Errorf("propose %q: %w", try, err)
		}
		try = fmt.Sprintf("%s~%d", cmd, attempt)
		time.Sleep(time.Millisecond)
	}
	return "", fmt.Errorf("propose %q: no success within %v", cmd, hang)
}

// propose is tryPropose for the test goroutine: it fails the test on error.
func (c *cluster) propose(cmd string) string {
	c.t.Helper()
	acked, err := c.tryPropose(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	return acked
}

// findLeader waits until some live, unpaused replica believes it leads, and
// returns it; unlike waitLeader it is safe off the test goroutine.
func (c *cluster) findLeader() (*Replica, error) {
	var lead *Replica
	ok := waitFor(func() bool {
		lead = nil
		for _, r := range c.live() {
			if r.Role() == Leader && !r.Paused() {
				lead = r
			}
		}
		return lead != nil
	})
	if !ok {
		return nil, fmt.Errorf("no leader within %v", hang)
	}
	return lead, nil
}

// live returns the replicas not crashed, safe for concurrent use.
func (c *cluster) live() []*Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs []*Replica
	for _, r := range c.reps {
		rs = append(rs, r)
	}
	return rs
}

// checkConsistent waits until every live replica applied at least want
// commands, checks that all replicas' applied sequences (crashed ones
// included) are prefixes of one sequence, and returns the longest.
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
	seqs := map[int][]string{}
	for id, sm := range c.sms {
		seqs[id] = sm.applied()
	}
	longest, err := checkPrefixes(seqs)
	if err != nil {
		c.t.Fatal(err)
	}
	if !ok {
		for id, r := range c.reps {
			c.t.Logf("replica %d: applied %d, stats %+v", id, len(seqs[id]), r.Stats())
		}
		c.t.Fatalf("not every replica applied %d commands within %v", want, hang)
	}
	return longest
}

// checkPrefixes checks that every sequence is a prefix of the longest (so
// that any two are prefixes of one another) and that none holds a command
// twice; it returns the longest.
func checkPrefixes(seqs map[int][]string) ([]string, error) {
	var longest []string
	for _, s := range seqs {
		if len(s) > len(longest) {
			longest = s
		}
	}
	for id, s := range seqs {
		for i := range s {
			if s[i] != longest[i] {
				return nil, fmt.Errorf("replica %d diverges at command %d: %q vs %q", id, i, s[i], longest[i])
			}
		}
	}
	seen := map[string]int{}
	for i, s := range longest {
		if j, dup := seen[s]; dup {
			return nil, fmt.Errorf("command %q applied twice, at %d and %d", s, j, i)
		}
		seen[s] = i
	}
	return longest, nil
}

// onTCP runs a cluster over the tcp provider (soft NICs on loopback)
// instead of shm.
func onTCP(cfg *Config) { cfg.Transport, cfg.Device = "tcp", "" }

func testSteady(t *testing.T, n int, tweak func(*Config)) {
	c := startCluster(t, n, tweak)
	const proposers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, proposers)
	ackedBy := make([][]string, proposers)
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				a, err := c.tryPropose(fmt.Sprintf("p%d-%d", p, i))
				if err != nil {
					errs <- err
					return
				}
				ackedBy[p] = append(ackedBy[p], a)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := c.checkConsistent(proposers * each)
	for _, acked := range ackedBy {
		// Each proposer waited for every acknowledgement before its next
		// proposal, so its commands are applied in its order.
		mustContainInOrder(t, got, acked)
	}
	// A follower answers ErrNotLeader naming another replica. Which one
	// leads depends on timing (a starved leader may be suspected and
	// replaced), so only that much is certain.
	for _, f := range c.live() {
		if f.Role() != Follower {
			continue
		}
		_, err := f.Propose(context.Background(), []byte("x"))
		var nl ErrNotLeader
		if err != nil && (!errors.As(err, &nl) || nl.Leader == f.ID()) {
			t.Fatalf("propose on follower %d: %v, want ErrNotLeader naming another replica", f.ID(), err)
		}
		break
	}
}

func TestSteadyState3(t *testing.T)    { testSteady(t, 3, nil) }
func TestSteadyState5(t *testing.T)    { testSteady(t, 5, nil) }
func TestSteadyState3TCP(t *testing.T) { testSteady(t, 3, onTCP) }
