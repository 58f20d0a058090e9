package server

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// redirect finds the leader's address in a READONLY error.
var redirect = regexp.MustCompile(`^-READONLY .* leader=\d+ addr=(\S+)\r\n$`)

// failoverWriter writes unique keys through whichever replica leads,
// following READONLY redirects, and records the keys that were
// acknowledged. It reports problems as errors, never through t, because it
// runs on its own goroutine.
type failoverWriter struct {
	addrs []string // every replica, to fall back on when one is gone
	addr  string   // where it writes now
	nc    net.Conn
	br    *bufio.Reader

	mu    sync.Mutex
	acked []string
	last  string       // the last reply, for a stuck writer's report
	n     atomic.Int64 // len(acked), for waiting
}

func (w *failoverWriter) connect() bool {
	if w.nc != nil {
		return true
	}
	nc, err := net.DialTimeout("tcp", w.addr, time.Second)
	if err != nil {
		// Gone (the crashed leader): ask the others, which redirect.
		for i, a := range w.addrs {
			if a == w.addr {
				w.addr = w.addrs[(i+1)%len(w.addrs)]
				break
			}
		}
		return false
	}
	w.nc, w.br = nc, bufio.NewReader(nc)
	return true
}

func (w *failoverWriter) drop() {
	if w.nc != nil {
		w.nc.Close()
		w.nc = nil
	}
}

// do sends one command and returns the raw reply, or "" when the
// connection failed.
func (w *failoverWriter) do(args ...string) string {
	if !w.connect() {
		return ""
	}
	_ = w.nc.SetDeadline(time.Now().Add(hang))
	if _, err := w.nc.Write(command(args...)); err != nil {
		w.drop()
		return ""
	}
	r, err := resp.ReadReply(w.br, nil, 1<<20)
	if err != nil {
		w.drop()
		return ""
	}
	return string(r)
}

// run writes w0, w1, … until stop is closed. A key is retried until it is
// acknowledged: SET of the same value twice is harmless, and a write
// refused because leadership changed mid-flight may or may not have been
// kept, which is why only acknowledged keys are checked.
func (w *failoverWriter) run(stop <-chan struct{}) error {
	defer w.drop()
	deadline := time.Now().Add(4 * hang)
	for i := 0; ; {
		select {
		case <-stop:
			return nil
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("writer still running after %v", 4*hang)
		}
		key := fmt.Sprint("w", i)
		r := w.do("SET", key, key)
		w.mu.Lock()
		w.last = fmt.Sprintf("%q from %s", r, w.addr)
		w.mu.Unlock()
		switch {
		case r == "+OK\r\n":
			w.mu.Lock()
			w.acked = append(w.acked, key)
			w.mu.Unlock()
			w.n.Add(1)
			i++
		case redirect.MatchString(r):
			w.drop()
			w.addr = redirect.FindStringSubmatch(r)[1]
		case r == "" || strings.HasPrefix(r, "-READONLY") || strings.HasPrefix(r, "-TRYAGAIN"):
			// No leader yet, a lost connection or a timed-out proposal.
			time.Sleep(10 * time.Millisecond)
		default:
			return fmt.Errorf("SET %s: unexpected reply %q", key, r)
		}
	}
}

// waitAcked waits until the writer has n acknowledged keys.
func (w *failoverWriter) waitAcked(t *testing.T, c *testCluster, n int64) {
	t.Helper()
	if !replicatest.WaitFor(func() bool { return w.n.Load() >= n }) {
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		for _, n := range c.Live() {
			t.Logf("replica %d: role %v, leader %d, stats %+v", n.ID, n.Rep.Role(), n.Rep.Leader(), n.Rep.Stats())
		}
		t.Fatalf("writer stuck at %d acknowledged keys, waiting for %d; last reply %s", w.n.Load(), n, last)
	}
}

// TestFailover crashes the leader while a client writes: a new leader
// takes over, the client follows the READONLY redirect to it, every write
// that was acknowledged is readable from the new leader, and the
// surviving replicas agree on the digest.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("fail-over waits for the failure detector")
	}
	c := startCluster(t, 3)
	old := c.WaitLeader()
	w := &failoverWriter{addr: old.Srv.Addr()}
	for _, n := range c.Live() {
		w.addrs = append(w.addrs, n.Srv.Addr())
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- w.run(stop) }()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-done
		}
	}()

	w.waitAcked(t, c, 200)
	c.Crash(old.ID)
	before := w.n.Load()
	w.waitAcked(t, c, before+200)
	close(stop)
	stopped = true
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	lead := c.WaitLeader()
	if lead.ID == old.ID {
		t.Fatalf("crashed replica %d still leads", old.ID)
	}
	if w.addr != lead.Srv.Addr() {
		t.Errorf("writer ended on %s, new leader serves %s", w.addr, lead.Srv.Addr())
	}
	t.Logf("%d keys acknowledged, %d before the crash of replica %d; replica %d leads", len(w.acked), before, old.ID, lead.ID)

	cn := redistest.Dial(t, lead.Srv.Addr())
	var buf []byte
	for _, k := range w.acked {
		buf = append(buf, command("GET", k)...)
	}
	if err := cn.Send(buf); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, k := range w.acked {
		r, err := cn.Read()
		if err != nil {
			t.Fatal(err)
		}
		if r != bulk(k) {
			if lost++; lost <= 10 {
				t.Errorf("acknowledged key %s reads %q on the new leader", k, r)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged keys lost", lost, len(w.acked))
	}
	want := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if got := digest(t, f.Srv.Addr()); got != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, got, want)
		}
	}
}
