package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestBadInputReplicated: malformed commands on the leader get memcached's
// errors, change nothing, and the connection goes on where memcached's
// would.
func TestBadInputReplicated(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	long := strings.Repeat("k", memcache.MaxKeyLen+1)
	tests := []struct{ name, in, want string }{
		{"unknown command", "bogus\r\n", "ERROR\r\n"},
		{"empty line", "\r\n", "ERROR\r\n"},
		{"key too long", "get " + long + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set key too long", "set " + long + " 0 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"negative length", "set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"huge length", "set k 0 0 99999999999\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"bad data chunk", "set k 0 0 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"half command", "set k 0 0\r\n", "ERROR\r\n"},
		{"bad delta", "incr k x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
		{"bad exptime", "touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"noreply error silent", "set k 0 0 x noreply\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := dial(t, lead.Addr())
			cl.do(tc.in+"version\r\n", tc.want+"VERSION "+DefaultVersion+"\r\n")
		})
	}
	// A line longer than memcached's limit closes the connection after
	// the error.
	cl := dial(t, lead.Addr())
	cl.do("get "+strings.Repeat("k ", memcache.DefaultMaxLineLen)+"\r\n", "CLIENT_ERROR line too long\r\n")
	c.waitDigests()
	dial(t, lead.Addr()).do("get k\r\n", "END\r\n")
}

// TestManyConnections: 2000 clients against -c 256: the ones over the
// limit get memcached's refusal, the others are all served.
func TestManyConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("2000 connections: slow")
	}
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	served, refused := 0, 0
	for i := range 2000 {
		nc, err := net.DialTimeout("tcp", lead.Addr(), hang)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, nc)
		_ = nc.SetDeadline(time.Now().Add(hang))
		if _, err := fmt.Fprintf(nc, "set c%d 0 0 1\r\nx\r\n", i); err != nil {
			refused++ // closed already
			continue
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		switch {
		case line == "STORED\r\n":
			served++
		case line == "ERROR Too many open connections\r\n" || err != nil:
			refused++
		default:
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
	}
	if served != testConns || refused != 2000-testConns {
		t.Fatalf("%d served, %d refused; want %d served", served, refused, testConns)
	}
	for _, nc := range conns {
		nc.Close()
	}
	conns = nil
	// Slots come back as connections close.
	ok := replicatest.WaitFor(func() bool {
		nc, err := net.Dial("tcp", lead.Addr())
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprint(nc, "get c0\r\n")
		l, _ := bufio.NewReader(nc).ReadString('\n')
		return l == "VALUE c0 0 1\r\n"
	})
	if !ok {
		t.Fatal("server does not serve after the crowd left")
	}
}

// TestClientThatNeverReads: a client pipelining reads without reading the
// replies is cut off once its replies cannot be written for a while; other
// clients are served meanwhile.
func TestClientThatNeverReads(t *testing.T) {
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: NewMachine(testMem, true, testConns),
		MaxConns: testConns, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	val := strings.Repeat("v", 100<<10)
	dial(t, srv.Addr()).do("set big 0 0 "+fmt.Sprint(len(val))+"\r\n"+val+"\r\n", "STORED\r\n")
	hog, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	done := make(chan error, 1)
	go func() {
		req := bytes.Repeat([]byte("get big\r\n"), 1000)
		for {
			_ = hog.SetWriteDeadline(time.Now().Add(hang))
			if _, err := hog.Write(req); err != nil {
				done <- err
				return
			}
		}
	}()
	other := dial(t, srv.Addr())
	for range 20 {
		other.do("get nothing\r\n", "END\r\n")
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-done: // the server cut the hog off
	case <-time.After(hang):
		t.Fatal("a client that never reads is never disconnected")
	}
}

// TestRequestPathAllocs: once buffers have grown, a replicated write
// (parse, proposal, Apply into the reply slot) and a read (parse, execute)
// allocate nothing.
func TestRequestPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; make test runs this test without it")
	}
	m := NewMachine(testMem, true, 4)
	slot, _ := m.takeSlot()
	in := "set key:0001 0 0 32\r\n" + strings.Repeat("v", 32) + "\r\nget key:0001\r\n"
	src := strings.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	p := memcache.NewParser(br, memcache.Limits{})
	var cmd memcache.Command
	var prop proposal
	var out []byte
	one := func() {
		src.Reset(in)
		br.Reset(src)
		out = out[:0]
		prop.reset()
		if err := p.Parse(&cmd); err != nil {
			t.Fatal(err)
		}
		prop.add(&cmd)
		seq := m.seq.Add(1)
		m.slots[slot].want.Store(seq)
		m.Apply(1, prop.seal(time.Now().UnixNano(), m.nonce, slot, seq))
		out = append(out, m.slots[slot].buf...)
		if err := p.Parse(&cmd); err != nil {
			t.Fatal(err)
		}
		out = m.st.Exec(out, &cmd, time.Now().UnixNano())
	}
	one()
	if want := "STORED\r\nVALUE key:0001 0 32\r\n" + strings.Repeat("v", 32) + "\r\nEND\r\n"; string(out) != want {
		t.Fatalf("replies %q", out)
	}
	if n := testing.AllocsPerRun(200, one); n != 0 {
		t.Fatalf("%.1f allocations per write and read, want 0", n)
	}
}

// TestServedRequestsDoNotAllocate: a text set and get through a real
// connection to the leader of a 3-replica cluster (parse, proposal,
// consensus, Apply into the reply slot, read barrier, reply) allocate
// nothing once the buffers have grown; the whole process is counted,
// engine goroutines included.
func TestServedRequestsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; make test runs this test without it")
	}
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	nc, err := net.Dial("tcp", lead.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := []byte("set key:0001 0 0 32\r\n" + strings.Repeat("v", 32) + "\r\nget key:0001\r\n")
	want := "STORED\r\nVALUE key:0001 0 32\r\n" + strings.Repeat("v", 32) + "\r\nEND\r\n"
	buf := make([]byte, len(want))
	one := func() {
		if _, err := nc.Write(req[:len(req)-len("get key:0001\r\n")]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf[:len("STORED\r\n")]); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(req[len(req)-len("get key:0001\r\n"):]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf[len("STORED\r\n"):]); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.SetDeadline(time.Now().Add(hang))
	for range 100 {
		one()
	}
	if string(buf) != want {
		t.Fatalf("replies %q", buf)
	}
	if n := testing.AllocsPerRun(500, one); n > 0.05 {
		t.Fatalf("%.2f allocations per set and get, want 0", n)
	}
}
