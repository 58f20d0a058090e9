package server

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/replicatest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// bigConn is a client connection for values of hundreds of megabytes:
// redistest's deadlines are made for small ones.
type bigConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialBig(t *testing.T, addr string) *bigConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &bigConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 1<<20)}
}

// do sends one command and returns its raw reply.
func (c *bigConn) do(args ...[]byte) []byte {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(2 * hang))
	if _, err := c.nc.Write(resp.AppendCommand(nil, args...)); err != nil {
		c.t.Fatalf("send %q: %v", args[0], err)
	}
	b, err := resp.ReadReply(c.br, nil, 1<<30)
	if err != nil {
		c.t.Fatalf("reply to %q: %v", args[0], err)
	}
	return b
}

// bulkBytes is the RESP bulk string of v.
func bulkBytes(v []byte) []byte {
	b := append([]byte("$"+strconv.Itoa(len(v))+"\r\n"), v...)
	return append(b, "\r\n"...)
}

// TestLargeValue writes a 100 MB value, a hundred times the batch limit
// (16 MB under the race detector),
// through SET on a 3-replica cluster: it goes through as one command in
// the engine's chunks, reads back whole on every replica, and the replicas'
// digests agree, also on a follower restarted afterwards, which catches up
// by a state transfer holding the value. CONFIG GET proto-max-bulk-len
// says Redis's 512 MB.
func TestLargeValue(t *testing.T) {
	if testing.Short() {
		t.Skip("a 100 MB value in -short mode")
	}
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cn := dialBig(t, lead.Srv.Addr())
	want := "*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n"
	if got := cn.do([]byte("CONFIG"), []byte("GET"), []byte("proto-max-bulk-len")); string(got) != want {
		t.Fatalf("CONFIG GET proto-max-bulk-len = %q, want %q", got, want)
	}
	val := bytes.Repeat([]byte("0123456789abcdef"), largeValueSize/16)
	copy(val, "the large value")
	if got := cn.do([]byte("SET"), []byte("small-before"), []byte("1")); string(got) != "+OK\r\n" {
		t.Fatalf("SET small-before: %q", got)
	}
	start := time.Now()
	if got := cn.do([]byte("SET"), []byte("big"), val); string(got) != "+OK\r\n" {
		t.Fatalf("SET of %d bytes: %.100q", len(val), got)
	}
	t.Logf("SET of %d bytes took %v", len(val), time.Since(start))
	if got := cn.do([]byte("SET"), []byte("small-after"), []byte("2")); string(got) != "+OK\r\n" {
		t.Fatalf("SET small-after: %q", got)
	}
	wantGet := bulkBytes(val)
	checkAll := func(what string) {
		t.Helper()
		lead := c.WaitLeader()
		digests := map[int]string{}
		for _, n := range c.Live() {
			var got []byte
			// A follower serves once it has applied the write (the
			// engine commits eagerly, but a restarted replica catches
			// up first and answers TRYAGAIN meanwhile).
			if !replicatest.WaitFor(func() bool {
				got = dialBig(t, n.Srv.Addr()).do([]byte("GET"), []byte("big"))
				return bytes.Equal(got, wantGet)
			}) {
				t.Fatalf("%s: GET big on replica %d: %d bytes, %.100q", what, n.ID, len(got), got)
			}
			digests[n.ID] = digest(t, n.Srv.Addr())
		}
		for id, d := range digests {
			if d != digests[lead.ID] {
				t.Fatalf("%s: replica %d digest %q, leader %d %q", what, id, d, lead.ID, digests[lead.ID])
			}
		}
	}
	checkAll("after SET")

	f := c.Followers(lead)[0]
	c.Crash(f.ID)
	if got := cn.do([]byte("SET"), []byte("while-down"), []byte("3")); string(got) != "+OK\r\n" {
		t.Fatalf("SET while-down: %q", got)
	}
	if err := c.StartNode(f.ID); err != nil {
		t.Fatal(err)
	}
	if !replicatest.WaitFor(func() bool { return c.Node(f.ID).Rep.Stats().Transfers > 0 }) {
		t.Fatalf("restarted replica %d never caught up by state transfer", f.ID)
	}
	checkAll("after a restart")
}

// TestLargeValuePipelined pipelines a write over the proposal limit between
// small ones, in one read: the small batch before it is flushed, it goes
// alone, the ones after it follow, and the replies and the effects keep the
// pipeline's order.
func TestLargeValuePipelined(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cn := dialBig(t, lead.Srv.Addr())
	val := bytes.Repeat([]byte("v"), 2*testMaxProposal)
	var in []byte
	in = resp.AppendCommand(in, []byte("SET"), []byte("k"), []byte("1"))
	in = resp.AppendCommand(in, []byte("APPEND"), []byte("k"), []byte("2"))
	in = resp.AppendCommand(in, []byte("SET"), []byte("big"), val)
	in = resp.AppendCommand(in, []byte("APPEND"), []byte("k"), []byte("3"))
	in = resp.AppendCommand(in, []byte("STRLEN"), []byte("big"))
	_ = cn.nc.SetDeadline(time.Now().Add(hang))
	if _, err := cn.nc.Write(in); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 5 {
		b, err := resp.ReadReply(cn.br, nil, 1<<30)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(b))
	}
	want := []string{"+OK\r\n", ":2\r\n", "+OK\r\n", ":3\r\n", ":" + strconv.Itoa(len(val)) + "\r\n"}
	if len(got) != len(want) {
		t.Fatalf("replies %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("replies %q, want %q", got, want)
		}
	}
	if r := cn.do([]byte("GET"), []byte("k")); string(r) != bulk("123") {
		t.Fatalf("GET k = %q, want %q", r, bulk("123"))
	}
	want0 := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Srv.Addr()) == want0 }) {
			t.Fatalf("follower %d digest differs from the leader's", f.ID)
		}
	}
}

// TestLargeTransaction: a transaction larger than the proposal limit, with
// a command over it, is replicated whole as one large command: EXEC
// answers every command, and every replica applied all of it.
func TestLargeTransaction(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cn := dialBig(t, lead.Srv.Addr())
	val := bytes.Repeat([]byte("t"), 3*testMaxProposal)
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SET", "small", "1"}, "+QUEUED\r\n"},
		{[]string{"SET", "big", string(val)}, "+QUEUED\r\n"},
		{[]string{"APPEND", "big", "!"}, "+QUEUED\r\n"},
		{[]string{"INCR", "small"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "*4\r\n+OK\r\n+OK\r\n:" + strconv.Itoa(len(val)+1) + "\r\n:2\r\n"},
	} {
		args := make([][]byte, len(step.args))
		for i, a := range step.args {
			args[i] = []byte(a)
		}
		if got := cn.do(args...); string(got) != step.want {
			t.Fatalf("%s: %.100q, want %.100q", step.args[0], got, step.want)
		}
	}
	want := bulkBytes(append(val, '!'))
	d := digest(t, lead.Srv.Addr())
	for _, n := range c.Live() {
		var got []byte
		if !replicatest.WaitFor(func() bool {
			got = dialBig(t, n.Srv.Addr()).do([]byte("GET"), []byte("big"))
			return bytes.Equal(got, want)
		}) {
			t.Fatalf("replica %d: GET big: %d bytes", n.ID, len(got))
		}
		if got := digest(t, n.Srv.Addr()); got != d {
			t.Fatalf("replica %d: digest %q, leader's %q", n.ID, got, d)
		}
	}
}
