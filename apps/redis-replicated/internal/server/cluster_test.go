package server

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

// hang bounds every wait in these tests: a hang detector, never a
// performance threshold.
const hang = replicatest.Hang

// Test engine sizes: large enough for the oversize-command test to reach the
// server's own limit, small enough for several clusters at once on shm.
const (
	testRing     = 4 << 20
	testMaxBatch = 1 << 20
	// testMaxProposal mirrors the binary's --max-batch less 64.
	testMaxProposal = testMaxBatch - 64
)

// node is one replica: machine, server and engine.
type node = replicatest.Node[*Server, *Machine]

// testCluster is N in-process replicas (internal/replicatest) of this
// server.
type testCluster = replicatest.Cluster[*Server, *Machine]

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
	return replicatest.Start(t, n, replicatest.Options{Transport: opts.transport, Ring: testRing, MaxBatch: testMaxBatch},
		func(int) (*Server, *Machine, error) {
			m := NewMachine()
			srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxProposal, Timeout: 5 * time.Second, StaleFollowerReads: opts.staleReads})
			return srv, m, err
		})
}

// startStandalone starts a server without a replica (--standalone).
func startStandalone(t testing.TB) *Server {
	t.Helper()
	return startStandaloneOn(t, NewMachine())
}

// startStandaloneOn is startStandalone over the machine m.
func startStandaloneOn(t testing.TB, m *Machine) *Server {
	t.Helper()
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxProposal})
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
	lead := c.WaitLeader()
	if got := redistest.Dial(t, lead.Srv.Addr()).Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING leader: %q", got)
	}
	for _, f := range c.Followers(lead) {
		if got := redistest.Dial(t, f.Srv.Addr()).Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING follower %d: %q", f.ID, got)
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
