package server

import (
	"bufio"
	"encoding/hex"
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

// TestStatsGomuDigest: "stats gomu digest" adds gomu_digest, the hex of
// the machine's digest, equal on every replica once they applied the
// same writes and changed by a write; the plain "stats gomu" has none.
func TestStatsGomuDigest(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	empty := readStats(t, lc, "stats gomu digest\r\n")["gomu_digest"]
	if len(empty) != 64 {
		t.Fatalf("gomu_digest %q: want 64 hex digits", empty)
	}
	if _, ok := readStats(t, lc, "stats gomu\r\n")["gomu_digest"]; ok {
		t.Fatal("stats gomu carries gomu_digest")
	}
	for i := range 50 {
		lc.do(fmt.Sprintf("set k%d 0 0 2\r\nv%d\r\n", i%7, i%10), "STORED\r\n")
		if i == 0 {
			lc.do("add n 0 0 1\r\n0\r\n", "STORED\r\n")
		} else {
			lc.do("incr n 1\r\n", fmt.Sprintf("%d\r\n", i))
		}
	}
	// Every replica ends with the leader's digest, the Machine's in hex.
	want := readStats(t, lc, "stats gomu digest\r\n")["gomu_digest"]
	if want == empty {
		t.Fatal("gomu_digest unchanged by writes")
	}
	if d := lead.M.Digest(); want != hex.EncodeToString(d[:]) {
		t.Fatalf("leader's gomu_digest %s, its machine's %x", want, d)
	}
	cls := map[int]*client{}
	for _, n := range c.Live() {
		cls[n.ID] = dial(t, n.Addr())
	}
	var got map[int]string
	ok := replicatest.WaitFor(func() bool {
		got = map[int]string{}
		same := true
		for id, cl := range cls {
			got[id] = readStats(t, cl, "stats gomu digest\r\n")["gomu_digest"]
			same = same && got[id] == want
		}
		return same
	})
	if !ok {
		t.Fatalf("gomu_digest per replica %v, leader's %s", got, want)
	}
}
