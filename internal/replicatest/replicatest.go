// Package replicatest runs in-process clusters of a replicated server for
// tests, wired as the servers' commands wire them: per replica, a server
// that listens first, then a consensus replica that publishes the server's
// address as its Meta, then Serve; all around an embedded registry, on the
// shm provider (or tcp), closed by the test's cleanup.
package replicatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/memcache"
)

// Hang bounds every wait of a fixture: a hang detector, never a
// performance threshold.
const Hang = 20 * time.Second

// Server is an app's network server.
type Server interface {
	Addr() string
	SetReplica(r *consensus.Replica)
	Serve() error
	Close() error
}

// Node is one replica: its state machine, its server and its engine.
type Node[S Server, M consensus.StateMachine] struct {
	ID     int
	M      M
	Srv    S
	Rep    *consensus.Replica
	served chan error
}

// Addr is the node's client address.
func (n *Node[S, M]) Addr() string { return n.Srv.Addr() }

// Close stops the replica and its server, as a crash of the process would
// (no goodbye to the peers).
func (n *Node[S, M]) Close(t testing.TB) {
	if n.Rep != nil {
		n.Rep.Close()
	}
	n.Srv.Close()
	select {
	case err := <-n.served:
		if err != nil {
			t.Errorf("replica %d: Serve: %v", n.ID, err)
		}
	case <-time.After(Hang):
		t.Errorf("replica %d: Serve did not return after Close", n.ID)
	}
}

// Options shape a cluster's engine.
type Options struct {
	Transport string // shm (default) or tcp
	Ring      int    // log ring bytes (default 4 MiB)
	MaxBatch  int    // largest entry (default 1 MiB)
}

// NewNode makes replica id's state machine and its server, listening.
type NewNode[S Server, M consensus.StateMachine] func(id int) (S, M, error)

// Cluster is N in-process replicas.
type Cluster[S Server, M consensus.StateMachine] struct {
	t       testing.TB
	reg     *memcache.Server
	mu      sync.Mutex // guards nodes against a crash while others look
	nodes   map[int]*Node[S, M]
	ids     []int
	name    string
	device  string
	opts    Options
	newNode NewNode[S, M]
}

// Start starts n replicas and waits for a leader every replica agrees on.
// The test's cleanup closes everything.
func Start[S Server, M consensus.StateMachine](t testing.TB, n int, opts Options, newNode NewNode[S, M]) *Cluster[S, M] {
	t.Helper()
	if opts.Transport == "" {
		opts.Transport = "shm"
	}
	if opts.Ring == 0 {
		opts.Ring = 4 << 20
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 1 << 20
	}
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	c := &Cluster[S, M]{t: t, reg: reg, nodes: map[int]*Node[S, M]{}, name: name, opts: opts, newNode: newNode}
	if opts.Transport == "shm" {
		c.device = fmt.Sprintf("rt-%s-%d", name, os.Getpid())
	}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, i)
	}
	t.Cleanup(c.Close)
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for _, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[id] = c.StartNode(id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.WaitLeader()
	return c
}

// StartNode starts (or restarts, after Crash) replica id with a fresh
// state machine from the cluster's NewNode.
func (c *Cluster[S, M]) StartNode(id int) error {
	srv, m, err := c.newNode(id)
	if err != nil {
		return err
	}
	nd := &Node[S, M]{ID: id, M: m, Srv: srv, served: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), Hang)
	defer cancel()
	rep, err := consensus.Start(ctx, consensus.Config{
		ID: id, IDs: c.ids, Registry: c.reg.Addr(), Cluster: c.name,
		Transport: c.opts.Transport, Device: c.device, RingSize: c.opts.Ring, MaxBatch: c.opts.MaxBatch,
		Fifo: "-", Profile: consensus.ProfileRelaxed, EagerCommit: true,
		Meta: []byte(srv.Addr()),
	}, m)
	if err != nil {
		srv.Close()
		return fmt.Errorf("start replica %d: %w", id, err)
	}
	nd.Rep = rep
	srv.SetReplica(rep)
	go func() { nd.served <- srv.Serve() }()
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	return nil
}

// Close stops every replica and the registry; the test's cleanup calls it,
// and calling it before is harmless.
func (c *Cluster[S, M]) Close() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[int]*Node[S, M]{}
	c.mu.Unlock()
	for _, n := range nodes {
		n.Close(c.t)
	}
	c.reg.Close()
}

// Crash closes replica id and its server.
func (c *Cluster[S, M]) Crash(id int) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	n.Close(c.t)
}

// Node returns replica id, nil if it is not running.
func (c *Cluster[S, M]) Node(id int) *Node[S, M] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Live returns the running nodes, by id.
func (c *Cluster[S, M]) Live() []*Node[S, M] {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ns []*Node[S, M]
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// WaitLeader waits until one live replica leads and every live replica
// names it, and returns it.
func (c *Cluster[S, M]) WaitLeader() *Node[S, M] {
	c.t.Helper()
	var lead *Node[S, M]
	ok := WaitFor(func() bool {
		lead = nil
		ns := c.Live()
		for _, n := range ns {
			if n.Rep.Role() == consensus.Leader {
				lead = n
			}
		}
		if lead == nil {
			return false
		}
		for _, n := range ns {
			if n.Rep.Leader() != lead.ID {
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("no leader agreed on within %v", Hang)
	}
	return lead
}

// Followers returns the live replicas other than lead.
func (c *Cluster[S, M]) Followers(lead *Node[S, M]) []*Node[S, M] {
	var fs []*Node[S, M]
	for _, n := range c.Live() {
		if n != lead {
			fs = append(fs, n)
		}
	}
	return fs
}

// WaitFor polls cond every few milliseconds until it holds or Hang
// passes, and reports whether it held.
func WaitFor(cond func() bool) bool {
	deadline := time.Now().Add(Hang)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}
