package server

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestEarlierPending: what the fence waits for, on connections no
// goroutine serves (so their bytes stay where the test leaves them).
func TestEarlierPending(t *testing.T) {
	srv, err := New(Config{Addr: "127.0.0.1:0", Machine: NewMachine(), MaxProposal: testMaxProposal})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	accept := func() (net.Conn, *conn) {
		t.Helper()
		cl, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		nc, err := srv.ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := srv.newConn(nc)
		t.Cleanup(func() { nc.Close() })
		srv.mu.Lock()
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		return cl, c
	}
	aClient, a := accept()
	bClient, b := accept()
	// The kernel stamps received bytes a moment after the first socket
	// asks for it: wait until a read carries a time.
	for deadline := time.Now().Add(10 * time.Second); a.arrivals.at == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no receive timestamp 10 s after the listener asked for them")
		}
		aClient.Write([]byte("PING\r\n"))
		if err := a.rd.Fill(); err != nil {
			t.Fatal(err)
		}
	}
	drain := func(cl net.Conn, c *conn) { // read what cl sent, as a batch start does
		t.Helper()
		if _, err := cl.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := c.rd.Fill(); err != nil {
			t.Fatal(err)
		}
		c.noteArrival()
	}
	for _, tc := range []struct {
		name string
		// setup leaves a and b as the case needs; b.arrived is b's batch.
		setup func()
		want  bool
	}{
		{"nothing pending", func() {
			a.intake.Store(0)
			b.arrived = time.Now().UnixNano()
		}, false},
		{"unread bytes that arrived earlier", func() {
			a.intake.Store(0)
			aClient.Write([]byte("PING\r\n"))
			time.Sleep(time.Millisecond) // the bytes are in a's socket
			b.arrived = time.Now().UnixNano()
		}, true},
		{"unread bytes that arrived later", func() {
			b.arrived = time.Now().UnixNano() - int64(time.Hour)
		}, false},
		{"a batch read earlier and running", func() {
			drain(aClient, a) // a's intake: the bytes' arrival
			b.arrived = time.Now().UnixNano()
		}, true},
		{"a batch read earlier and done", func() {
			a.intake.Store(0)
		}, false},
		{"a connection taking bytes from its socket", func() {
			a.intake.Store(intakeReading)
		}, true},
		{"a batch read later", func() {
			a.intake.Store(b.arrived + 1)
		}, false},
		{"its own unread bytes", func() {
			a.intake.Store(0)
			bClient.Write([]byte("PING\r\n"))
			time.Sleep(time.Millisecond)
			b.arrived = time.Now().UnixNano()
		}, false},
	} {
		tc.setup()
		if got := b.earlierPending(); got != tc.want {
			t.Errorf("%s: earlierPending %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFenceOrdersWrites: an XREAD BLOCK … $ that arrived before an XADD
// is registered first, even though its connection is held back until the
// XADD's connection waits in the fence: so $ is the id before the XADD,
// and the XADD serves it, as Redis would. Had the XADD gone to the log
// first, $ would have been its id and the reader would wait for ever.
func TestFenceOrdersWrites(t *testing.T) {
	srv := startStandalone(t)
	rd, r := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	if got := r.Do("XADD", "s", "1-0", "f", "v"); got != bulk("1-0") {
		t.Fatalf("XADD: %q", got)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free)
	hold := func() {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	srv.beforeBlock.Store(&hold)
	srv.fenceWaits.Store(&free)
	if err := rd.Send(command("XREAD", "BLOCK", "0", "STREAMS", "s", "$")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the XREAD never reached its proposal")
	}
	if got := r.Do("XADD", "s", "2-0", "f", "w"); got != bulk("2-0") {
		t.Fatalf("XADD: %q", got)
	}
	free() // if the fence never waited, let the reader go now
	got := read(t, rd)
	if !strings.Contains(got, "2-0") {
		t.Fatalf("the XREAD got %q, want the entry 2-0", got)
	}
}
