package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/memcache"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

// hang bounds every wait in these tests: a hang detector, never a
// performance threshold.
const hang = 20 * time.Second

// Test sizes: small enough for several clusters at once on shm.
const (
	testRing     = 8 << 20
	testMaxBatch = 2 << 20
	testItemMax  = 1 << 20
	testMem      = 64 << 20
	testConns    = 256
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

func (n *node) addr() string { return n.srv.Addr() }

// close stops the replica and its server, as a crash of the process would.
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
	mu    sync.Mutex
	nodes map[int]*node
	ids   []int
	name  string
	opts  clusterOpts
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
	if opts.transport == "" {
		opts.transport = "shm"
	}
	if opts.mem == 0 {
		opts.mem = testMem
	}
	if opts.conns == 0 {
		opts.conns = testConns
	}
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	c := &testCluster{t: t, reg: reg, nodes: map[int]*node{}, name: name, opts: opts}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, i)
	}
	t.Cleanup(c.close)
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for _, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[id] = c.startNode(id)
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

// startNode starts (or restarts) replica id with an empty machine.
func (c *testCluster) startNode(id int) error {
	m := NewMachine(c.opts.mem, !c.opts.noEvict, c.opts.conns)
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxBatch - 64,
		MaxConns: c.opts.conns, Limits: memcache.Limits{MaxValueLen: testItemMax},
		Timeout: 5 * time.Second, StaleFollowerReads: c.opts.staleReads})
	if err != nil {
		return err
	}
	nd := &node{id: id, m: m, srv: srv, served: make(chan error, 1)}
	device := ""
	if c.opts.transport == "shm" {
		device = fmt.Sprintf("mc-%s-%d", c.name, os.Getpid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	rep, err := consensus.Start(ctx, consensus.Config{
		ID: id, IDs: c.ids, Registry: c.reg.Addr(), Cluster: c.name,
		Transport: c.opts.transport, Device: device, RingSize: testRing, MaxBatch: testMaxBatch,
		Fifo: "-", Profile: consensus.ProfileRelaxed, EagerCommit: true,
		Meta: []byte(srv.Addr()),
	}, m)
	if err != nil {
		srv.Close()
		return fmt.Errorf("start replica %d: %w", id, err)
	}
	nd.rep = rep
	srv.SetReplica(rep)
	go func() { nd.served <- srv.Serve() }()
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	return nil
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

// waitDigests waits until every live replica has applied what the leader
// has and holds the same items.
func (c *testCluster) waitDigests() {
	c.t.Helper()
	var ds []string
	ok := waitFor(func() bool {
		ds = ds[:0]
		for _, n := range c.live() {
			ds = append(ds, fmt.Sprintf("%d:%x", n.id, n.m.Digest()))
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
