package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// command encodes one command as RESP.
func command(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return resp.AppendCommand(nil, b...)
}

// TestPipelining: 1000 SETs in one write become replies in order, then
// 1000 GETs read them back in order; a pipeline mixing writes and reads
// keeps read-your-writes order (a read after a write in the same batch
// sees it).
func TestPipelining(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cn := redistest.Dial(t, lead.Srv.Addr())
	var buf []byte
	for i := range 1000 {
		buf = append(buf, command("SET", fmt.Sprint("p", i), fmt.Sprint("v", i))...)
	}
	if err := cn.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if r, err := cn.Read(); err != nil || r != "+OK\r\n" {
			t.Fatalf("SET %d: %q %v", i, r, err)
		}
	}
	buf = buf[:0]
	for i := range 1000 {
		buf = append(buf, command("GET", fmt.Sprint("p", i))...)
	}
	if err := cn.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if r, err := cn.Read(); err != nil || r != bulk(fmt.Sprint("v", i)) {
			t.Fatalf("GET %d: %q %v", i, r, err)
		}
	}

	// Mixed: each read must see every write before it in the pipeline.
	buf = buf[:0]
	var want []string
	for i := range 300 {
		switch i % 5 {
		case 0:
			buf = append(buf, command("SET", "mix", fmt.Sprint(i))...)
			want = append(want, "+OK\r\n")
		case 1:
			buf = append(buf, command("GET", "mix")...)
			want = append(want, bulk(fmt.Sprint(i-1)))
		case 2:
			buf = append(buf, command("APPEND", "mix", "x")...)
			want = append(want, fmt.Sprintf(":%d\r\n", len(fmt.Sprint(i-2))+1))
		case 3:
			buf = append(buf, command("STRLEN", "mix")...)
			want = append(want, fmt.Sprintf(":%d\r\n", len(fmt.Sprint(i-3))+1))
		case 4:
			buf = append(buf, command("RPUSH", "mixlist", "e")...)
			want = append(want, fmt.Sprintf(":%d\r\n", i/5+1))
		}
	}
	buf = append(buf, command("LLEN", "mixlist")...)
	want = append(want, ":60\r\n")
	if err := cn.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if r, err := cn.Read(); err != nil || r != w {
			t.Fatalf("mixed pipeline reply %d: %q %v, want %q", i, r, err, w)
		}
	}

	// Writes whose total exceeds one proposal are split across proposals,
	// still answered in order.
	big := strings.Repeat("b", testMaxProposal/3)
	buf = buf[:0]
	for i := range 4 {
		buf = append(buf, command("SET", fmt.Sprint("big", i), big)...)
		buf = append(buf, command("STRLEN", fmt.Sprint("big", i))...)
	}
	if err := cn.Send(buf); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if r, err := cn.Read(); err != nil || r != "+OK\r\n" {
			t.Fatalf("big SET %d: %q %v", i, r, err)
		}
		if r, err := cn.Read(); err != nil || r != fmt.Sprintf(":%d\r\n", len(big)) {
			t.Fatalf("big STRLEN %d: %q %v", i, r, err)
		}
	}
}

// TestFollowerFreshness: a value the leader acknowledged is what a
// follower reads right after, every time, on shm and on tcp, where the
// commit index reaches a follower after the client's next request can.
func TestFollowerFreshness(t *testing.T) {
	for _, transport := range []string{"shm", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			c := startClusterOpts(t, 3, clusterOpts{transport: transport})
			lead := c.WaitLeader()
			lc := redistest.Dial(t, lead.Srv.Addr())
			var fcs []*redistest.Conn
			for _, f := range c.Followers(lead) {
				fc := redistest.Dial(t, f.Srv.Addr())
				if r := fc.Do("INFO", "replication"); !strings.Contains(r, "gomu_follower_reads:linearizable\r\n") {
					t.Fatalf("follower INFO does not say reads are linearizable: %q", r)
				}
				fcs = append(fcs, fc)
			}
			for i := range 500 {
				v := fmt.Sprint("v_", i)
				if r := lc.Do("SET", "k", v); r != "+OK\r\n" {
					t.Fatalf("SET %d: %q", i, r)
				}
				if r := fcs[i%len(fcs)].Do("GET", "k"); r != bulk(v) {
					t.Fatalf("iteration %d: follower GET k = %q, want %q", i, r, v)
				}
			}
		})
	}
}

// TestStaleFollowerReads: the opt-in mode serves follower reads without
// asking the leader, says so in INFO, and still serves a value once the
// leader's commit index reached the follower.
func TestStaleFollowerReads(t *testing.T) {
	c := startClusterOpts(t, 3, clusterOpts{staleReads: true})
	lead := c.WaitLeader()
	lc := redistest.Dial(t, lead.Srv.Addr())
	if r := lc.Do("SET", "k", "v"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		if r := fc.Do("INFO", "replication"); !strings.Contains(r, "gomu_follower_reads:stale\r\n") {
			t.Fatalf("follower INFO does not say reads are stale: %q", r)
		}
		if !replicatest.WaitFor(func() bool { return fc.Do("GET", "k") == bulk("v") }) {
			t.Fatalf("follower %d never served the committed value", f.ID)
		}
	}
}

// TestPausedReplicaAnswersNothing: a paused replica holds its clients'
// requests like a hung process until it resumes, then answers them; and no
// replica names itself, or a replica it does not see alive, as leader.
func TestPausedReplicaAnswersNothing(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := redistest.Dial(t, lead.Srv.Addr())
	if r := lc.Do("SET", "k", "1"); r != "+OK\r\n" {
		t.Fatalf("SET: %q", r)
	}
	lead.Rep.Pause()
	pc := redistest.Dial(t, lead.Srv.Addr())
	if err := pc.Send(command("GET", "k")); err != nil {
		t.Fatal(err)
	}
	held := make(chan string, 1)
	go func() {
		r, err := pc.Read()
		if err != nil {
			r = "read error: " + err.Error()
		}
		held <- r
	}()
	select {
	case r := <-held:
		t.Fatalf("a paused replica answered %q", r)
	case <-time.After(300 * time.Millisecond):
	}
	// The others elect a new leader meanwhile; none names the paused one.
	var next *node
	if !replicatest.WaitFor(func() bool {
		next = nil
		for _, n := range c.Live() {
			if n != lead && n.Rep.Role() == consensus.Leader {
				next = n
			}
		}
		return next != nil
	}) {
		t.Fatalf("no new leader while %d was paused", lead.ID)
	}
	for _, f := range c.Followers(next) {
		if f == lead {
			continue
		}
		fc := redistest.Dial(t, f.Srv.Addr())
		if !replicatest.WaitFor(func() bool {
			return strings.Contains(fc.Do("SET", "x", "1"), fmt.Sprintf("leader=%d ", next.ID))
		}) {
			t.Fatalf("follower %d answers a write with %q, want a redirect to %d", f.ID, fc.Do("SET", "x", "1"), next.ID)
		}
	}
	lead.Rep.Resume()
	select {
	case r := <-held:
		if r != bulk("1") && !strings.HasPrefix(r, "-TRYAGAIN") {
			t.Fatalf("the resumed replica answered the held GET with %q", r)
		}
	case <-time.After(hang):
		t.Fatalf("the resumed replica never answered the held GET")
	}
	// Once it follows, it redirects writes to the new leader, never to
	// itself.
	if !replicatest.WaitFor(func() bool {
		r := lc.Do("SET", "k", "2")
		return strings.Contains(r, fmt.Sprintf("leader=%d ", next.ID))
	}) {
		t.Fatalf("the resumed replica never redirected to the new leader %d: %q", next.ID, lc.Do("SET", "k", "2"))
	}
}

// TestConcurrentReadOnlyTransactions runs read-only MULTI/EXEC on several
// connections at once while another writes: they run under the machine's
// read lock together, so they must not share decoding state (the race
// detector watches).
func TestConcurrentReadOnlyTransactions(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	if r := redistest.Dial(t, lead.Srv.Addr()).Do("MSET", "a", "1", "b", "2"); r != "+OK\r\n" {
		t.Fatalf("MSET: %q", r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		addr := lead.Srv.Addr()
		if w%2 == 1 { // followers run read-only transactions too
			addr = c.Followers(lead)[0].Srv.Addr()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", addr, hang)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			var tx []byte
			tx = append(tx, command("MULTI")...)
			tx = append(tx, command("GET", "a")...)
			tx = append(tx, command("MGET", "a", "b")...)
			tx = append(tx, command("EXISTS", "a", "b", "c")...)
			tx = append(tx, command("EXEC")...)
			want := "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$1\r\n1\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n:2\r\n"
			got := make([]byte, len(want))
			for i := range 200 {
				_ = nc.SetDeadline(time.Now().Add(hang))
				if _, err := nc.Write(tx); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
					errs <- fmt.Errorf("transaction %d: %q %v", i, got, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := net.DialTimeout("tcp", lead.Srv.Addr(), hang)
		if err != nil {
			errs <- err
			return
		}
		defer nc.Close()
		want := "+OK\r\n"
		got := make([]byte, len(want))
		for i := range 200 {
			_ = nc.SetDeadline(time.Now().Add(hang))
			if _, err := nc.Write(command("SET", "other", fmt.Sprint(i))); err != nil {
				errs <- err
				return
			}
			if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
				errs <- fmt.Errorf("SET %d: %q %v", i, got, err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readUntilDone reads from nc until the server closes it, answers with an
// error, or (for input it ignores or waits on) the short deadline passes.
// It returns what was read and whether the connection was closed.
func readUntilDone(nc net.Conn, wait time.Duration) (string, bool) {
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			var ne net.Error
			return out.String(), !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// TestBadInput throws malformed and hostile input at a follower and at the
// leader; each connection gets an error reply or is closed (or is left
// waiting for the rest of a command), the server never crashes, and a
// separate client is served throughout.
func TestBadInput(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	for _, n := range []*node{lead, c.Followers(lead)[0]} {
		addr := n.Srv.Addr()
		watch := redistest.Dial(t, addr)
		ping := func(what string) {
			t.Helper()
			if r := watch.Do("PING"); r != "+PONG\r\n" {
				t.Fatalf("replica %d after %s: PING = %q", n.ID, what, r)
			}
		}
		cases := []struct {
			name, in string
			// want is a prefix of the reply, "" when any reply (or none)
			// will do; closed: the server must hang up.
			want   string
			closed bool
		}{
			{"huge bulk length", "*2\r\n$3\r\nGET\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length", true},
			{"bulk over the limit", fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n", resp.DefaultMaxBulk+1), "-ERR Protocol error: invalid bulk length", true},
			{"huge multibulk count", "*99999999999\r\n", "-ERR Protocol error: invalid multibulk length", true},
			{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length", true},
			{"negative multibulk count", "*-5\r\nPING\r\n", "", false},
			{"non-numeric length", "*x\r\n", "-ERR Protocol error", true},
			{"unbalanced quotes", "SET \"k v\r\n", "-ERR Protocol error", true},
			{"missing $", "*1\r\nPING\r\n", "-ERR Protocol error", true},
			{"half command", "*3\r\n$3\r\nSET\r\n$1\r\nk", "", false},
			{"zero-length array", "*0\r\n", "", false},
		}
		for _, tc := range cases {
			nc, err := net.DialTimeout("tcp", addr, hang)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write([]byte(tc.in)); err != nil {
				t.Fatalf("%s: write: %v", tc.name, err)
			}
			got, closed := readUntilDone(nc, 300*time.Millisecond)
			nc.Close()
			if !strings.HasPrefix(got, tc.want) || tc.closed && !closed {
				t.Errorf("replica %d, %s: got %q closed=%v, want %q closed=%v", n.ID, tc.name, got, closed, tc.want, tc.closed)
			}
			ping(tc.name)
		}

		// Random garbage, binary and RESP-looking, on many connections.
		r := rand.New(rand.NewPCG(uint64(n.ID), 99))
		for i := range 50 {
			nc, err := net.DialTimeout("tcp", addr, hang)
			if err != nil {
				t.Fatal(err)
			}
			g := make([]byte, 1+r.IntN(2000))
			for j := range g {
				g[j] = byte(r.Uint32())
				if i%2 == 0 { // mostly protocol characters
					g[j] = "*$\r\n0123456789-+:SETGET "[r.IntN(24)]
				}
			}
			_, _ = nc.Write(g)
			readUntilDone(nc, 20*time.Millisecond)
			nc.Close()
		}
		ping("garbage")

		// Half commands then close, and many short-lived connections.
		count := 2000
		if testing.Short() {
			count = 300
		}
		for i := range count {
			nc, err := net.DialTimeout("tcp", addr, hang)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if i%3 == 0 {
				_, _ = nc.Write([]byte("*2\r\n$3\r\nGET\r\n$10\r\nabc"))
			}
			nc.Close()
			if i%500 == 0 {
				ping("open/close")
			}
		}
		ping("open/close")

		// A command over the proposal limit is replicated alone (a
		// follower refuses it as any write); the connection and the
		// server go on.
		cn := redistest.Dial(t, addr)
		huge := strings.Repeat("h", testMaxProposal-10)
		if r := cn.Do("SET", "huge", huge); r != "+OK\r\n" && !strings.HasPrefix(r, "-READONLY") {
			t.Errorf("replica %d: oversize SET: %.100q", n.ID, r)
		}
		if r := cn.Do("PING"); r != "+PONG\r\n" {
			t.Errorf("replica %d: PING after oversize SET: %q", n.ID, r)
		}
		if n == lead {
			if r := cn.Do("SET", "small", "ok"); r != "+OK\r\n" {
				t.Errorf("SET after oversize SET: %q", r)
			}
			// Inside MULTI it is queued, and the transaction goes as
			// one large command.
			for _, cmd := range [][]string{{"MULTI"}, {"SET", "huge", huge}} {
				cn.Do(cmd...)
			}
			if r := cn.Do("EXEC"); r != "*1\r\n+OK\r\n" {
				t.Errorf("EXEC of an oversize transaction: %q", r)
			}
		}
		ping("oversize")
	}
	// The cluster still agrees.
	want := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if got := digest(t, f.Srv.Addr()); got != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, got, want)
		}
	}
}

// TestActiveExpiry: keys whose TTL passes are deleted on every replica by
// the leader's sweep, untouched by any client; keys without one stay.
func TestActiveExpiry(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := redistest.Dial(t, lead.Srv.Addr())
	for i := range 20 {
		if r := lc.Do("SET", fmt.Sprint("tmp", i), "v", "PX", "30"); r != "+OK\r\n" {
			t.Fatalf("SET PX: %q", r)
		}
	}
	lc.Do("SET", "keep", "v")
	for _, n := range c.Live() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var keys int
			n.M.read(func(st *store.Store) { keys = st.Len() })
			if keys == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d still holds %d keys 20 s after their TTLs passed", n.ID, keys)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
