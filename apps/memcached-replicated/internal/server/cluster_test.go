package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/replicatest"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

// hang bounds every wait in these tests: a hang detector, never a
// performance threshold.
const hang = replicatest.Hang

// Test sizes: small enough for several clusters at once on shm.
const (
	testRing     = 8 << 20
	testMaxBatch = 2 << 20
	testItemMax  = 1 << 20
	testMem      = 64 << 20
	testConns    = 256
)

// node is one replica: machine, server and engine.
type node = replicatest.Node[*Server, *Machine]

// testCluster is N in-process replicas (internal/replicatest) of this
// server.
type testCluster struct {
	*replicatest.Cluster[*Server, *Machine]
	t testing.TB
}

// clusterOpts vary a test cluster.
type clusterOpts struct {
	transport  string
	staleReads bool
	mem        int64 // item memory (default testMem)
	noEvict    bool
	conns      int // -c (default testConns)
}

func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return startClusterOpts(t, n, clusterOpts{})
}

func startClusterOpts(t testing.TB, n int, opts clusterOpts) *testCluster {
	t.Helper()
	if opts.mem == 0 {
		opts.mem = testMem
	}
	if opts.conns == 0 {
		opts.conns = testConns
	}
	c := replicatest.Start(t, n, replicatest.Options{Transport: opts.transport, Ring: testRing, MaxBatch: testMaxBatch},
		func(int) (*Server, *Machine, error) {
			m := NewMachine(opts.mem, !opts.noEvict, opts.conns)
			srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxBatch - 64,
				MaxConns: opts.conns, Limits: memcache.Limits{MaxValueLen: testItemMax},
				Timeout: 5 * time.Second, StaleFollowerReads: opts.staleReads})
			return srv, m, err
		})
	return &testCluster{Cluster: c, t: t}
}

// waitDigests waits until every live replica has applied what the leader
// has and holds the same items.
func (c *testCluster) waitDigests() {
	c.t.Helper()
	var ds []string
	ok := replicatest.WaitFor(func() bool {
		ds = ds[:0]
		for _, n := range c.Live() {
			ds = append(ds, fmt.Sprintf("%d:%x", n.ID, n.M.Digest()))
		}
		for _, d := range ds[1:] {
			if d[strings.IndexByte(d, ':'):] != ds[0][strings.IndexByte(ds[0], ':'):] {
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("replicas' digests differ: %v", ds)
	}
}

// startStandalone starts a server without a replica (--standalone).
func startStandalone(t testing.TB) *Server {
	t.Helper()
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: NewMachine(testMem, true, testConns),
		MaxProposal: testMaxBatch - 64, MaxConns: testConns})
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

// client is a raw protocol connection.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// do sends in and reads exactly len(want) bytes of reply, failing the
// test when they differ.
func (c *client) do(in, want string) {
	c.t.Helper()
	if got := c.roundTrip(in, len(want)); got != want {
		c.t.Fatalf("%q:\n got %q\nwant %q", in, got, want)
	}
}

// roundTrip sends in and reads n bytes of reply.
func (c *client) roundTrip(in string, n int) string {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(hang))
	if _, err := io.WriteString(c.nc, in); err != nil {
		c.t.Fatalf("write %q: %v", in, err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		c.t.Fatalf("%q: read: %v (got %q)", in, err, buf)
	}
	return string(buf)
}

// line sends in and reads one reply line.
func (c *client) line(in string) string {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(hang))
	if _, err := io.WriteString(c.nc, in); err != nil {
		c.t.Fatalf("write %q: %v", in, err)
	}
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%q: read: %v (got %q)", in, err, l)
	}
	return l
}
