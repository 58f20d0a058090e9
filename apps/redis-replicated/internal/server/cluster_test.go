package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/redistest"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

// hang bounds every wait in these tests: a hang detector, never a
// performance threshold.
const hang = 20 * time.Second

// Test engine sizes: large enough for the oversize-command test to reach the
// server's own limit, small enough for several clusters at once on shm.
const (
	testRing     = 4 << 20
	testMaxBatch = 1 << 20
	// testMaxProposal mirrors the binary's --max-batch less 64.
	testMaxProposal = testMaxBatch - 64
)

// node is one replica as the binary wires it: a server listening first, a
// consensus replica publishing the server's address as its Meta, then
// Serve.
type node struct {
	id     int
	m      *Machine
	srv    *Server
	rep    *consensus.Replica
	served chan error
}

// close stops the replica and its server, as a crash of the process would
// (no goodbye to the peers).
func (n *node) close(t testing.TB) {
	if n.rep != nil {
		n.rep.Close()
	}
	n.srv.Close()
	select {
	case err := <-n.served:
		if err != nil {
			t.Errorf("replica %d: Serve: %v", n.id, err)
		}
	case <-time.After(hang):
		t.Errorf("replica %d: Serve did not return after Close", n.id)
	}
}

// testCluster is N in-process replicas on the shm provider around an
// embedded registry.
type testCluster struct {
	t     testing.TB
	reg   *memcache.Server
	mu    sync.Mutex // guards nodes against crash while others look
	nodes map[int]*node
	ids   []int
}

// clusterOpts vary a test cluster: the engine's transport (default shm)
// and the servers' follower-read mode.
type clusterOpts struct {
	transport  string
	staleReads bool
}

// startCluster starts n replicas, each with its server on 127.0.0.1:0, and
// waits for a leader every replica agrees on. Cleanup closes everything.
func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return startClusterOpts(t, n, clusterOpts{})
}

// startClusterOpts is startCluster with opts.
func startClusterOpts(t testing.TB, n int, opts clusterOpts) *testCluster {
	t.Helper()
	if opts.transport == "" {
		opts.transport = "shm"
	}
	device := ""
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if opts.transport == "shm" {
		device = fmt.Sprintf("rs-%s-%d", name, os.Getpid())
	}
	c := &testCluster{t: t, reg: reg, nodes: map[int]*node{}}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, i)
	}
	t.Cleanup(c.close)
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for _, id := range c.ids {
		m := NewMachine()
		srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxProposal, Timeout: 5 * time.Second, StaleFollowerReads: opts.staleReads})
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{id: id, m: m, srv: srv, served: make(chan error, 1)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			rep, err := consensus.Start(ctx, consensus.Config{
				ID: id, IDs: c.ids, Registry: reg.Addr(), Cluster: name,
				Transport: opts.transport, Device: device, RingSize: testRing, MaxBatch: testMaxBatch,
				Fifo: "-", Profile: consensus.ProfileRelaxed, EagerCommit: true,
				Meta: []byte(srv.Addr()),
			}, m)
			if err != nil {
				errs[id] = fmt.Errorf("start replica %d: %w", id, err)
				srv.Close()
				return
			}
			nd.rep = rep
			srv.SetReplica(rep)
			go func() { nd.served <- srv.Serve() }()
			c.mu.Lock()
			c.nodes[id] = nd
			c.mu.Unlock()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.waitLeader()
	return c
}

func (c *testCluster) close() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[int]*node{}
	c.mu.Unlock()
	for _, n := range nodes {
		n.close(c.t)
	}
	c.reg.Close()
}

// crash closes replica id and its server.
func (c *testCluster) crash(id int) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	n.close(c.t)
}

// live returns the running nodes.
func (c *testCluster) live() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ns []*node
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// waitLeader waits until one live replica leads and every live replica
// names it, and returns it.
func (c *testCluster) waitLeader() *node {
	c.t.Helper()
	var lead *node
	ok := waitFor(func() bool {
		lead = nil
		ns := c.live()
		for _, n := range ns {
			if n.rep.Role() == consensus.Leader {
				lead = n
			}
		}
		if lead == nil {
			return false
		}
		for _, n := range ns {
			if n.rep.Leader() != lead.id {
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("no leader agreed on within %v", hang)
	}
	return lead
}

// followers returns the live replicas other than lead.
func (c *testCluster) followers(lead *node) []*node {
	var fs []*node
	for _, n := range c.live() {
		if n != lead {
			fs = append(fs, n)
		}
	}
	return fs
}

// startStandalone starts a server without a replica (--standalone).
func startStandalone(t testing.TB) *Server {
	t.Helper()
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: NewMachine(), MaxProposal: testMaxProposal})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("standalone Serve: %v", err)
		}
	})
	return srv
}

// waitFor polls cond every few milliseconds until it holds or the hang
// deadline passes.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// redisCLI returns the path of redis-cli; it skips the test when there is
// none, except under CI=true, where that is a failure (as redistest does).
func redisCLI(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli needed under CI=true (apt-get install redis-tools): %v", err)
		}
		t.Skipf("no redis-cli: %v", err)
	}
	return p
}

// digest returns DEBUG DIGEST of the server at addr.
func digest(t testing.TB, addr string) string {
	t.Helper()
	return redistest.Dial(t, addr).Do("DEBUG", "DIGEST")
}

// bulk is the raw RESP bulk string of s, for comparing with Do's replies.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// TestClusterFixture checks the fixture itself: one leader, followers that
// name it, a standalone server that serves.
func TestClusterFixture(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.waitLeader()
	if got := redistest.Dial(t, lead.srv.Addr()).Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING leader: %q", got)
	}
	for _, f := range c.followers(lead) {
		if got := redistest.Dial(t, f.srv.Addr()).Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING follower %d: %q", f.id, got)
		}
	}
	sa := startStandalone(t)
	cn := redistest.Dial(t, sa.Addr())
	if got := cn.Do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("standalone SET: %q", got)
	}
	if got := cn.Do("GET", "k"); got != bulk("v") {
		t.Fatalf("standalone GET: %q", got)
	}
}
