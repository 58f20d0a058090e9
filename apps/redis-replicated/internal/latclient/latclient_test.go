package latclient

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

func TestParseRedirect(t *testing.T) {
	for _, tc := range []struct {
		reply, addr string
		ok          bool
	}{
		{"-READONLY You can't write against a read only replica. leader=2 addr=127.0.0.1:7001\r\n", "127.0.0.1:7001", true},
		{"-READONLY x addr=[::1]:7001 more\r\n", "[::1]:7001", true},
		{"-READONLY You can't write against a read only replica.\r\n", "", false}, // real Redis: no address
		{"-READONLY addr=\r\n", "", false},
		{"-ERR addr=127.0.0.1:1\r\n", "", false},
		{"+OK\r\n", "", false},
	} {
		addr, ok := ParseRedirect([]byte(tc.reply))
		if addr != tc.addr || ok != tc.ok {
			t.Errorf("ParseRedirect(%q) = %q, %v; want %q, %v", tc.reply, addr, ok, tc.addr, tc.ok)
		}
	}
}

func TestFillPrintable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 10_000)
	fillPrintable(rng, b)
	seen := map[byte]bool{}
	for _, c := range b {
		if c < '!' || c > '~' {
			t.Fatalf("byte %q is not printable", c)
		}
		seen[c] = true
	}
	if len(seen) != len(printable) {
		t.Fatalf("%d distinct bytes, want all %d", len(seen), len(printable))
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []Config{
		{KeySize: 0, Requests: 1},
		{KeySize: 1, ValueSize: -1, Requests: 1},
		{KeySize: 1, Requests: 0},
		{KeySize: 1, Requests: 1, Keys: -1},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("Check(%+v) accepted", c)
		}
	}
	c := Config{KeySize: 1, Requests: 500_000}
	if err := c.Check(); err != nil || c.Keys != DefaultKeys || c.Timeout != 5*time.Second {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

// fakeReplica answers every command with a -READONLY redirect to leader,
// as a follower of redis-server-replicated does, and counts them. An empty
// leader names the fake itself.
func fakeReplica(t *testing.T, leader string) (addr string, served *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if leader == "" {
		leader = l.Addr().String()
	}
	served = new(atomic.Int64)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := resp.ReadReply(br, nil, 1<<20); err != nil {
						return
					}
					served.Add(1)
					msg := "READONLY You can't write against a read only replica. leader=1 addr=" + leader
					if _, err := conn.Write(resp.AppendError(nil, msg)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), served
}

func TestRunFollowsRedirect(t *testing.T) {
	leader := redistest.Start(t)
	for _, mode := range []Mode{PutsOnly, GetsOnly, PutsGets} {
		t.Run(mode.String(), func(t *testing.T) {
			replica, served := fakeReplica(t, leader)
			res, err := Run(context.Background(), Config{Mode: mode, Addr: replica, KeySize: 8, ValueSize: 16, Requests: 300, Keys: 50})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rec.Count() != 300 || res.Errors != 0 || res.Addr != leader {
				t.Fatalf("count %d errors %d addr %s, want 300, 0, %s", res.Rec.Count(), res.Errors, res.Addr, leader)
			}
			if res.Redirects != 1 || served.Load() == 0 {
				t.Fatalf("%d redirects, fake replica served %d; want one redirect, then the leader only", res.Redirects, served.Load())
			}
		})
	}
}

func TestRunRedirectLoopGivesUp(t *testing.T) {
	// A replica naming itself: the request must fail after RetryFor, not
	// spin forever.
	replica, _ := fakeReplica(t, "")
	_, err := Run(context.Background(), Config{Mode: PutsOnly, Addr: replica, KeySize: 8, Requests: 1, RetryFor: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "still redirected") {
		t.Fatalf("err %v, want the redirect deadline", err)
	}
	// A leader that is gone: reconnecting gives up after RetryFor.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close()
	replica, _ = fakeReplica(t, gone)
	_, err = Run(context.Background(), Config{Mode: PutsOnly, Addr: replica, KeySize: 8, Requests: 1, RetryFor: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no server reachable") {
		t.Fatalf("err %v, want the reconnect deadline", err)
	}
}

func TestRunSilentServerGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Hold the connection open and say nothing.
			t.Cleanup(func() { c.Close() })
		}
	}()
	start := time.Now()
	_, err = Run(context.Background(), Config{Mode: PutsOnly, Addr: l.Addr().String(), KeySize: 8, Requests: 1,
		Timeout: 100 * time.Millisecond, RetryFor: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no reply within") {
		t.Fatalf("err %v, want the retry deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestRunCountsErrorReplies(t *testing.T) {
	addr := redistest.Start(t)
	// Every SET is refused, as a full server would; the run completes and
	// counts them.
	redistest.Dial(t, addr).Do("CONFIG", "SET", "maxmemory", "1")
	res, err := Run(context.Background(), Config{Mode: PutsOnly, Addr: addr, KeySize: 8, ValueSize: 4, Requests: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rec.Count() != 50 || res.Errors != 50 || !strings.HasPrefix(res.FirstError, "-OOM") {
		t.Fatalf("count %d errors %d first %q; want 50, 50, -OOM...", res.Rec.Count(), res.Errors, res.FirstError)
	}
	// The preload of a reading run refuses to go on: its GETs would miss.
	_, err = Run(context.Background(), Config{Mode: GetsOnly, Addr: addr, KeySize: 8, Requests: 10})
	if err == nil || !strings.Contains(err.Error(), "preload") {
		t.Fatalf("err %v, want a preload failure", err)
	}
}

// TestRequestDoesNotAllocate keeps the timed loop free of per-request
// allocation, which would add GC noise to the latencies.
func TestRequestDoesNotAllocate(t *testing.T) {
	addr := redistest.Start(t)
	cfg := Config{KeySize: 16, ValueSize: 64, Requests: 1}
	_ = cfg.Check()
	c := &client{cfg: &cfg, res: &Result{}}
	if err := c.dial(addr); err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	key, val := make([]byte, 16), make([]byte, 64)
	put := false
	allocs := testing.AllocsPerRun(500, func() {
		put = !put
		fillPrintable(rng, key)
		if put {
			fillPrintable(rng, val)
			c.args = [3][]byte{cmdSET, key, val}
			c.out = resp.AppendCommand(c.out[:0], c.args[:3]...)
		} else {
			c.args = [3][]byte{cmdGET, key, nil}
			c.out = resp.AppendCommand(c.out[:0], c.args[:2]...)
		}
		if err := c.do(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a request allocates %.1f times", allocs)
	}
}
