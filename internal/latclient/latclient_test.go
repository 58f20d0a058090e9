package latclient

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/latclient/latclienttest"
	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	memcachedtest.Stop()
	os.Exit(code)
}

// protocols are the Protocols every client test runs with.
var protocols = []Protocol{Redis, Memcached}

// realServer starts (or finds) a real server of p: Redis, or memcached.
func realServer(t *testing.T, p Protocol) string {
	if p == Memcached {
		return memcachedtest.Addr(t)
	}
	return redistest.Start(t)
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
		{KeySize: 1, Requests: 1, Replicas: []string{"a:1", "b"}},
		{KeySize: 1, Requests: 1, Replicas: []string{":1"}},
		{KeySize: 1, Requests: 1, Replicas: []string{"a:0"}},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("Check(%+v) accepted", c)
		}
	}
	c := Config{KeySize: 1, Requests: 500_000}
	if err := c.Check(); err != nil || c.Keys != DefaultKeys || c.Timeout != DefaultTimeout || c.RetryFor != DefaultRetryFor {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	// memcached's keys are at most 250 bytes; Redis's are not bounded.
	for _, tc := range []struct {
		p  Protocol
		ks int
		ok bool
	}{{Redis, 251, true}, {Memcached, 250, true}, {Memcached, 251, false}, {Protocol(9), 1, false}} {
		c := Config{Protocol: tc.p, KeySize: tc.ks, Requests: 1}
		if err := c.Check(); (err == nil) != tc.ok {
			t.Errorf("Check(%v, key_size %d) = %v; want ok %v", tc.p, tc.ks, err, tc.ok)
		}
	}
}

// Replies a fake's script gives besides "" (serve the command as a leader
// would) and an error reply's text.
const (
	hang      = "<hang>"  // answer nothing more on this connection: hung, paused, SIGSTOPped
	closeConn = "<close>" // close this connection
	kill      = "<kill>"  // close the listener and every connection: refused from now on
	late      = "<late>"  // answer after lateBy, when the client has given up on it
	slow      = "<slow>"  // serve the command, after slowBy
)

const slowBy = 5 * time.Millisecond

const lateBy = 300 * time.Millisecond

// fake is a scripted replica of redis-server-replicated, or of the
// replicated memcached, id i+1 of a cluster made by fakes.
type fake struct {
	id    int
	proto Protocol
	addr  string
	l     net.Listener
	// script answers the k-th data command (SET or GET, from 0) the fake
	// receives; nil serves every one. Error replies are worded for Redis,
	// and translated for memcached (wire).
	script func(k int) string
	// info is the text of INFO after k data commands (for memcached, the
	// stats gomu reply made of its field:value lines); nil answers -ERR
	// (ERROR), as a fake that knows no INFO (or memcached) would.
	info func(k int) string

	done  chan struct{}
	mu    sync.Mutex
	k     int // data commands received
	conns []net.Conn
	kv    map[string]string
}

// fakes listens for n replicas speaking p; the test scripts them, then
// serve starts them.
func fakes(t *testing.T, p Protocol, n int) []*fake {
	t.Helper()
	fs := make([]*fake, n)
	for i := range fs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f := &fake{id: i + 1, proto: p, addr: l.Addr().String(), l: l, done: make(chan struct{}), kv: map[string]string{}}
		t.Cleanup(f.stop)
		fs[i] = f
	}
	return fs
}

func serve(fs []*fake) {
	for _, f := range fs {
		go f.accept()
	}
}

func (f *fake) stop() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.kill()
}

// kill closes the listener and every connection, as a SIGKILL does.
func (f *fake) kill() {
	f.l.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fake) served() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.k
}

func (f *fake) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

func (f *fake) accept() {
	for {
		conn, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		go f.handle(conn)
	}
}

func (f *fake) handle(conn net.Conn) {
	defer conn.Close()
	next := f.reader(conn)
	for {
		args, err := next()
		if err != nil {
			return
		}
		reply := f.answer(args)
		switch reply {
		case hang:
			<-f.done
			return
		case closeConn:
			return
		case kill:
			f.kill()
			return
		case late:
			go func() {
				select {
				case <-time.After(lateBy):
					_, _ = conn.Write([]byte(f.ok()))
				case <-f.done:
				}
			}()
			continue
		}
		if _, err := conn.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// reader returns the function that reads the next command off conn.
func (f *fake) reader(conn net.Conn) func() ([][]byte, error) {
	if f.proto == Memcached {
		br := bufio.NewReader(conn)
		return func() ([][]byte, error) { return latclienttest.ReadMemcached(br) }
	}
	rd := resp.NewReader(conn, resp.Limits{})
	return func() ([][]byte, error) {
		for {
			args, ok, err := rd.Next()
			if err != nil || ok {
				return args, err
			}
			if err := rd.Fill(); err != nil {
				return nil, err
			}
		}
	}
}

// ok is the reply to a SET.
func (f *fake) ok() string {
	if f.proto == Memcached {
		return "STORED\r\n"
	}
	return "+OK\r\n"
}

// wire is a script's error reply r, worded for Redis, as a server of p
// sends it, without its CRLF: for memcached, -READONLY and -TRYAGAIN
// gomu: become the replicated memcached's SERVER_ERROR gomu: lines, and
// anything else goes as it is.
func wire(p Protocol, r string) string {
	if p == Redis {
		return "-" + r
	}
	if rest, ok := strings.CutPrefix(r, "READONLY You can't write against a read only replica."); ok {
		return "SERVER_ERROR gomu: not the leader" + rest
	}
	if rest, ok := strings.CutPrefix(r, "READONLY"); ok {
		return "SERVER_ERROR gomu: not the leader" + rest
	}
	if rest, ok := strings.CutPrefix(r, "TRYAGAIN gomu:"); ok {
		return "SERVER_ERROR gomu:" + rest
	}
	return r
}

// statsOf is the stats gomu reply carrying INFO text's field:value lines.
func statsOf(info string) string {
	var b strings.Builder
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":"); ok {
			fmt.Fprintf(&b, "STAT %s %s\r\n", k, v)
		}
	}
	return b.String() + "END\r\n"
}

// answer is the raw reply to one command, or one of the script's actions.
func (f *fake) answer(args [][]byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	mc := f.proto == Memcached
	name := strings.ToUpper(string(args[0]))
	if name == "INFO" || name == "STATS" {
		if f.info == nil {
			if mc {
				return "ERROR\r\n" // what memcached 1.6.18 answers to stats gomu
			}
			return "-ERR unknown command 'INFO'\r\n"
		}
		s := f.info(f.k)
		if s == hang || s == closeConn || s == kill || s == late {
			return s
		}
		if mc {
			return statsOf(s)
		}
		return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s)
	}
	k := f.k
	f.k++
	if f.script != nil {
		switch r := f.script(k); r {
		case "":
		case slow:
			time.Sleep(slowBy) // then serve it
		case hang, closeConn, kill, late:
			return r
		default:
			return wire(f.proto, r) + "\r\n"
		}
	}
	switch {
	case name == "SET" && len(args) == 3:
		f.kv[string(args[1])] = string(args[2])
		return f.ok()
	case name == "GET" && len(args) == 2:
		v, ok := f.kv[string(args[1])]
		switch {
		case mc && ok:
			return fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", args[1], len(v), v)
		case mc:
			return "END\r\n"
		case ok:
			return fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)
		}
		return "$-1\r\n"
	}
	if mc {
		return "ERROR\r\n"
	}
	return "-ERR unknown command\r\n"
}

// Scripts.
func always(r string) func(int) string { return func(int) string { return r } }

// from answers r from the n-th data command on, and serves before.
func from(n int, r string) func(int) string {
	return func(k int) string {
		if k >= n {
			return r
		}
		return ""
	}
}

// until answers r to the first n data commands, and serves after.
func until(n int, r string) func(int) string {
	return func(k int) string {
		if k < n {
			return r
		}
		return ""
	}
}

func readOnlyTo(f *fake) string {
	return fmt.Sprintf("READONLY You can't write against a read only replica. leader=%d addr=%s", f.id, f.addr)
}

const (
	readOnlyNone = "READONLY You can't write against a read only replica. leader=none"
	electing     = "TRYAGAIN gomu: no leader (election in progress)"
	paused       = "TRYAGAIN gomu: this replica is paused"
)

// infoOf is INFO replication as replica self of fs prints it, leader 0
// for none.
func infoOf(self, leader int, fs ...*fake) func(int) string {
	return func(int) string {
		b := fmt.Sprintf("# Replication\r\nrole:slave\r\ngomu_id:%d\r\ngomu_leader_id:%d\r\n", self, leader)
		addr := ""
		var list []string
		for _, f := range fs {
			list = append(list, fmt.Sprintf("%d=%s", f.id, f.addr))
			if f.id == leader {
				addr = f.addr
			}
		}
		return b + "gomu_leader_addr:" + addr + "\r\ngomu_replica_addrs:" + strings.Join(list, ",") + "\r\n"
	}
}

// TestRunRidesThroughFaults scripts a cluster of fake replicas through the
// faults a run must survive, and checks that it completes, with every
// request one sample, on the replica it should end on. The client is given
// fakes 0..given-1; the others it must discover. Counts are checked where
// the router's policy fixes them; where a fault is a timeout, only that it
// was seen.
func TestRunRidesThroughFaults(t *testing.T) {
	const requests = 40
	for _, tc := range []struct {
		name    string
		n       int // fakes
		given   int // 0: all
		mode    Mode
		stay    bool          // Config.Stay
		timeout time.Duration // 0: long enough that only scripted hangs time out
		script  func(fs []*fake)
		endOn   int                                       // the fake the run ends on
		check   func(t *testing.T, fs []*fake, r *Result) // more checks
	}{
		{name: "leader hangs", n: 2, timeout: 50 * time.Millisecond, script: func(fs []*fake) {
			fs[0].script = from(20, hang)
			fs[1].script = until(3, readOnlyTo(fs[0])) // the fail-over takes a while
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			// The stalled request waited out the timeout, at least.
			if r.Timeouts < 1 || r.Longest < 50*time.Millisecond || r.Retried < 1 {
				t.Errorf("want a request to wait out a timeout: %+v", r)
			}
		}},
		{name: "leader killed", n: 3, script: func(fs []*fake) {
			fs[0].script = from(20, kill)
			fs[1].script = until(2, readOnlyTo(fs[0]))
			fs[2].script = always(readOnlyTo(fs[1]))
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.Broken < 1 || r.Timeouts != 0 || r.Retried != 1 {
				t.Errorf("want one request refused, no timeout: %+v", r)
			}
		}},
		{name: "connection closed, replica rediscovered", n: 2, given: 1, script: func(fs []*fake) {
			fs[0].script = from(20, closeConn)
			fs[0].info = func(k int) string {
				if k < 20 {
					return infoOf(1, 1, fs[0])(k) // alone, as far as it knows
				}
				return infoOf(1, 2, fs...)(k)
			}
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.Broken < 2 || len(r.Replicas) != 2 {
				t.Errorf("want a closed connection, then fake 2 learned: %+v", r)
			}
		}},
		{name: "READONLY naming itself", n: 2, script: func(fs []*fake) {
			fs[0].script = always(readOnlyTo(fs[0]))
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if fs[0].served() != 1 || r.Redirects != 1 {
				t.Errorf("fake 1 served %d, %d redirects; want 1, 1", fs[0].served(), r.Redirects)
			}
		}},
		{name: "READONLY leader=none, then a leader", n: 2, script: func(fs []*fake) {
			fs[0].script = always(readOnlyNone)
			fs[1].script = until(1, electing)
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.Redirects != 2 || r.TryAgains != 1 || r.Retried != 1 {
				t.Errorf("want none, election, none, answer: %+v", r)
			}
		}},
		{name: "election on the only replica: its connection kept", n: 1, script: func(fs []*fake) {
			fs[0].script = until(3, electing)
		}, endOn: 0, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.TryAgains != 3 || r.Reconnects != 0 || fs[0].connections() != 1 {
				t.Errorf("%d connections; want 3 TRYAGAINs on the first: %+v", fs[0].connections(), r)
			}
		}},
		{name: "TRYAGAIN naming the leader", n: 3, script: func(fs []*fake) {
			fs[0].script = always("TRYAGAIN gomu: this replica is catching up. leader=3 addr=" + fs[2].addr)
			fs[1].script = always(hang) // never asked
		}, endOn: 2, check: func(t *testing.T, fs []*fake, r *Result) {
			if fs[1].served() != 0 || r.TryAgains != 1 || r.Timeouts != 0 {
				t.Errorf("fake 2 served %d; want the catching-up replica's leader straight away: %+v", fs[1].served(), r)
			}
		}},
		{name: "TRYAGAIN paused, no leader named", n: 2, script: func(fs []*fake) {
			fs[0].script = from(10, paused)
			fs[1].script = until(1, readOnlyTo(fs[0]))
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.TryAgains != 2 || r.Redirects != 1 || r.Retried != 1 {
				t.Errorf("want paused, redirect back, paused, answer: %+v", r)
			}
		}},
		{name: "discovery through INFO, redirect by id", n: 3, given: 1, script: func(fs []*fake) {
			fs[0].info = infoOf(1, 0, fs...)
			fs[0].script = always("READONLY You can't write against a read only replica. leader=3")
			fs[1].script = always(hang)
		}, endOn: 2, check: func(t *testing.T, fs []*fake, r *Result) {
			if fs[1].served() != 0 || r.Redirects != 1 || len(r.Replicas) != 3 {
				t.Errorf("want leader=3 resolved through INFO: %+v", r)
			}
		}},
		{name: "starts on the leader INFO names", n: 2, given: 1, script: func(fs []*fake) {
			fs[0].info = infoOf(1, 2, fs...)
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if fs[0].served() != 0 || r.Redirects != 0 || r.Retried != 0 {
				t.Errorf("fake 1 served %d; want the run on the leader from the start: %+v", fs[0].served(), r)
			}
		}},
		{name: "back to the leader after a follower served a GET", n: 3, mode: GetsOnly, timeout: 50 * time.Millisecond, script: func(fs []*fake) {
			fs[0].script = from(400+10, hang) // after the preload and 10 GETs
			fs[1].info = infoOf(2, 3, fs...)
		}, endOn: 2, check: func(t *testing.T, fs []*fake, r *Result) {
			if fs[1].served() != 1 || fs[2].served() != requests-10-1 {
				t.Errorf("fakes 2 and 3 served %d, %d GETs; want 1 (the stalled one), then the rest on the leader", fs[1].served(), fs[2].served())
			}
		}},
		{name: "stay on the given follower", n: 2, mode: GetsOnly, stay: true, script: func(fs []*fake) {
			fs[0].info = infoOf(1, 2, fs...)
			fs[0].script = func(k int) string {
				if k < 256 { // the preload's first batch of SETs: redirected
					return readOnlyTo(fs[1])
				}
				return ""
			}
			fs[1].info = infoOf(2, 2, fs...)
		}, endOn: 0, check: func(t *testing.T, fs []*fake, r *Result) {
			if n := fs[1].served(); n != 400 {
				t.Errorf("the leader served %d requests; want the preload's 400 SETs, and every GET on the follower the run was given", n)
			}
		}},
		{name: "stay: back to the given follower after a hiccup", n: 2, mode: GetsOnly, stay: true, timeout: 50 * time.Millisecond, script: func(fs []*fake) {
			fs[0].info = infoOf(1, 2, fs...)
			fs[0].script = func(k int) string {
				if k == 400+10 { // after the preload and 10 GETs, one hang
					return late
				}
				return ""
			}
			fs[1].info = infoOf(2, 2, fs...)
			fs[1].script = always(slow) // so that the hold on fake 1 ends within the run
		}, endOn: 0, check: func(t *testing.T, fs []*fake, r *Result) {
			if n := fs[1].served(); n < 1 || n >= requests-10-1 {
				t.Errorf("the leader served %d GETs; want the one the follower stalled on and those while it was held, then the rest back on the follower", fs[1].served())
			}
		}},
		{name: "late reply dropped with its connection", n: 1, timeout: 50 * time.Millisecond, script: func(fs []*fake) {
			fs[0].script = func(k int) string {
				if k == 5 {
					return late
				}
				return ""
			}
		}, endOn: 0, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.Timeouts != 1 || r.Reconnects != 1 || fs[0].connections() != 2 {
				t.Errorf("%d connections; want the one with the late reply replaced: %+v", fs[0].connections(), r)
			}
		}},
		{name: "preload through a killed leader", n: 2, mode: PutsGets, script: func(fs []*fake) {
			fs[0].script = from(300, kill) // in the second batch of 256
		}, endOn: 1, check: func(t *testing.T, fs []*fake, r *Result) {
			if r.Broken < 1 || fs[1].served() < 400-256+requests {
				t.Errorf("fake 2 served %d; want the second batch resent to it: %+v", fs[1].served(), r)
			}
		}},
	} {
		for _, p := range protocols {
			t.Run(p.String()+"/"+tc.name, func(t *testing.T) {
				fs := fakes(t, p, tc.n)
				tc.script(fs)
				serve(fs)
				given := tc.given
				if given == 0 {
					given = tc.n
				}
				cfg := Config{Mode: tc.mode, Protocol: p, Addr: fs[0].addr, KeySize: 8, ValueSize: 8, Requests: requests, Keys: 400,
					Timeout: cmp.Or(tc.timeout, 5*time.Second), RetryFor: 20 * time.Second, Stay: tc.stay}
				for _, f := range fs[1:given] {
					cfg.Replicas = append(cfg.Replicas, f.addr)
				}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.Rec.Count() != requests || res.Errors != 0 || res.Addr != fs[tc.endOn].addr {
					t.Fatalf("%d samples, %d errors (%s), ended on %s; want %d, 0, fake %d at %s", res.Rec.Count(), res.Errors, res.FirstError, res.Addr, requests, tc.endOn+1, fs[tc.endOn].addr)
				}
				// The longest stall is the histogram's max, within its 3 digits.
				if hm := time.Duration(res.Rec.Percentile(100)); res.Longest < hm-hm/100 || res.Longest > hm+hm/100 {
					t.Errorf("longest stall %v, histogram max %v", res.Longest, hm)
				}
				tc.check(t, fs, res)
			})
		}
	}
}

// TestRunGivesUp checks that a request the cluster cannot answer fails the
// run after RetryFor, with an error that names what every replica last
// said, and that waiting for it is no busy loop.
func TestRunGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		script func(fs []*fake)
		want   func(p Protocol, fs []*fake) []string
		check  func(t *testing.T, fs []*fake)
	}{
		{name: "hung, electing, refused", n: 3, script: func(fs []*fake) {
			fs[0].script = always(hang)
			fs[1].script = always(electing)
			fs[2].l.Close()
		}, want: func(p Protocol, fs []*fake) []string {
			return []string{"request 0: no replica answered within --retry-for 300ms",
				fs[0].addr + ": request: no reply within 50ms",
				fs[1].addr + ": " + wire(p, electing),
				fs[2].addr + ": connect: connection refused"}
		}},
		{name: "alone, naming itself", n: 1, script: func(fs []*fake) {
			fs[0].script = always(readOnlyTo(fs[0]))
		}, want: func(p Protocol, fs []*fake) []string {
			return []string{fs[0].addr + " (id 1): " + wire(p, readOnlyTo(fs[0]))}
		}, check: func(t *testing.T, fs []*fake) {
			// Backing off, it asks a few dozen times at most; spinning, it
			// would ask thousands.
			if n := fs[0].served(); n > 300 {
				t.Errorf("asked %d times in 300ms: a busy loop", n)
			}
		}},
		{name: "silent from the start", n: 1, script: func(fs []*fake) {
			fs[0].script = always(hang)
			fs[0].info = always(hang) // INFO too
		}, want: func(p Protocol, fs []*fake) []string {
			_, name := p.codec().discovery()
			return []string{fs[0].addr + ": " + name + ": no reply within 50ms"}
		}},
		{name: "redirected to a dead leader", n: 2, script: func(fs []*fake) {
			fs[0].script = always(readOnlyTo(fs[1]))
			fs[1].l.Close()
		}, want: func(p Protocol, fs []*fake) []string {
			return []string{fs[0].addr + ": " + wire(p, readOnlyTo(fs[1])), fs[1].addr + " (id 2): connect: connection refused"}
		}},
	} {
		for _, p := range protocols {
			t.Run(p.String()+"/"+tc.name, func(t *testing.T) {
				fs := fakes(t, p, tc.n)
				tc.script(fs)
				serve(fs)
				cfg := Config{Mode: PutsOnly, Protocol: p, Addr: fs[0].addr, KeySize: 8, Requests: 10,
					Timeout: 50 * time.Millisecond, RetryFor: 300 * time.Millisecond}
				for _, f := range fs[1:] {
					cfg.Replicas = append(cfg.Replicas, f.addr)
				}
				_, err := Run(context.Background(), cfg)
				if err == nil {
					t.Fatal("run completed")
				}
				for _, w := range tc.want(p, fs) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				if tc.check != nil {
					tc.check(t, fs)
				}
			})
		}
	}
}

func TestRunNothingReachable(t *testing.T) {
	fs := fakes(t, Redis, 2)
	fs[0].l.Close()
	fs[1].l.Close()
	_, err := Run(context.Background(), Config{Addr: fs[0].addr, Replicas: []string{fs[1].addr}, KeySize: 8, Requests: 1})
	if err == nil || !strings.Contains(err.Error(), "no replica reachable: "+fs[0].addr+": connect: connection refused; "+fs[1].addr) {
		t.Fatalf("err %v, want both addresses refused", err)
	}
}

// TestRunFollowsRedirect runs each mode through a fake replica that
// redirects everything to a real server: Redis, or Debian's memcached.
func TestRunFollowsRedirect(t *testing.T) {
	for _, p := range protocols {
		for _, mode := range []Mode{PutsOnly, GetsOnly, PutsGets} {
			t.Run(p.String()+"/"+mode.String(), func(t *testing.T) {
				leader := realServer(t, p)
				fs := fakes(t, p, 1)
				fs[0].script = always("READONLY You can't write against a read only replica. leader=2 addr=" + leader)
				serve(fs)
				res, err := Run(context.Background(), Config{Mode: mode, Protocol: p, Addr: fs[0].addr, KeySize: 8, ValueSize: 16, Requests: 300, Keys: 50})
				if err != nil {
					t.Fatal(err)
				}
				if res.Rec.Count() != 300 || res.Errors != 0 || res.Addr != leader {
					t.Fatalf("count %d errors %d (%s) addr %s, want 300, 0, %s", res.Rec.Count(), res.Errors, res.FirstError, res.Addr, leader)
				}
				if res.Redirects != 1 || fs[0].served() == 0 {
					t.Fatalf("%d redirects, fake replica served %d; want one redirect, then the leader only", res.Redirects, fs[0].served())
				}
			})
		}
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

// TestRunCountsMemcachedErrorReplies is TestRunCountsErrorReplies for
// memcached: a value over memcached's item size limit (1 MiB by default)
// is refused with SERVER_ERROR object too large for cache, and its data
// block skipped, so the stream stays in step; a gomu replica's faults are
// not errors.
func TestRunCountsMemcachedErrorReplies(t *testing.T) {
	addr := memcachedtest.Addr(t)
	res, err := Run(context.Background(), Config{Mode: PutsOnly, Protocol: Memcached, Addr: addr, KeySize: 8, ValueSize: 2 << 20, Requests: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rec.Count() != 5 || res.Errors != 5 || res.FirstError != "SERVER_ERROR object too large for cache" {
		t.Fatalf("count %d errors %d first %q; want 5, 5, SERVER_ERROR object too large for cache", res.Rec.Count(), res.Errors, res.FirstError)
	}
	_, err = Run(context.Background(), Config{Mode: GetsOnly, Protocol: Memcached, Addr: addr, KeySize: 8, ValueSize: 2 << 20, Requests: 10, Keys: 3})
	if err == nil || !strings.Contains(err.Error(), "preload: server replied SERVER_ERROR object too large for cache") {
		t.Fatalf("err %v, want a preload failure", err)
	}

	// A fake's other error replies, every third SET.
	for _, reply := range []string{"SERVER_ERROR out of memory storing object", "CLIENT_ERROR bad data chunk", "ERROR"} {
		fs := fakes(t, Memcached, 1)
		fs[0].script = func(k int) string {
			if k%3 == 0 {
				return reply
			}
			return ""
		}
		serve(fs)
		res, err := Run(context.Background(), Config{Protocol: Memcached, Addr: fs[0].addr, KeySize: 8, Requests: 30})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 10 || res.FirstError != reply || res.TryAgains+res.Redirects+res.Retried != 0 {
			t.Fatalf("%s: errors %d first %q; want 10, the reply, and no retry: %+v", reply, res.Errors, res.FirstError, res)
		}
	}
}

// TestMemcachedMissIsAnswer checks that a GET of a key nobody set (END
// alone) ends its request without an error, as Redis's nil reply does.
func TestMemcachedMissIsAnswer(t *testing.T) {
	addr := memcachedtest.Addr(t)
	cfg := Config{Protocol: Memcached, Addr: addr, KeySize: 200, Requests: 1}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	c := newClient(&cfg, &Result{})
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	defer c.drop()
	key := make([]byte, 200)
	fillPrintable(rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano()))), key)
	c.out = c.codec.appendGet(c.out[:0], key)
	if err := c.do(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if string(c.in) != "END\r\n" || c.res.Errors != 0 {
		t.Fatalf("reply %q, %d errors; want END, 0", c.in, c.res.Errors)
	}
}

// TestRequestDoesNotAllocate keeps the timed loop free of per-request
// allocation, which would add GC noise to the latencies.
func TestRequestDoesNotAllocate(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			cfg := Config{Protocol: p, Addr: realServer(t, p), KeySize: 16, ValueSize: 64, Requests: 1}
			_ = cfg.Check()
			c := newClient(&cfg, &Result{})
			if err := c.start(); err != nil {
				t.Fatal(err)
			}
			defer c.drop()
			rng := rand.New(rand.NewPCG(1, 1))
			key, val := make([]byte, 16), make([]byte, 64)
			put := false
			allocs := testing.AllocsPerRun(500, func() {
				// SET a key, then GET it: both hit.
				put = !put
				if put {
					fillPrintable(rng, key)
					fillPrintable(rng, val)
					c.out = c.codec.appendSet(c.out[:0], key, val)
				} else {
					c.out = c.codec.appendGet(c.out[:0], key)
				}
				if err := c.do(context.Background(), 1); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("a request allocates %.1f times", allocs)
			}
			if c.res.Reconnects+c.res.Timeouts+c.res.Broken+c.res.Errors != 0 {
				t.Fatalf("the requests met faults: %+v", c.res)
			}
			// The GETs hit: one more of the last key SET.
			if !put {
				t.Fatal("the last request was a GET")
			}
			c.out = c.codec.appendGet(c.out[:0], key)
			if err := c.do(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if hit := map[Protocol]string{Redis: "$64\r\n", Memcached: "VALUE "}[p]; !strings.HasPrefix(string(c.in), hit) {
				t.Fatalf("GET read %q, want a hit", c.in)
			}
		})
	}
}
