package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestStreamBlocking: XREAD … BLOCK and XREADGROUP … BLOCK wait on the
// leader (in the connection's database) until an XADD serves them; two
// group consumers get different entries; a BLOCK that runs out answers a
// null array, without BLOCK XREAD stays a read (a follower answers it);
// every replica ends in the same state.
func TestStreamBlocking(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	a, b, p := redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr())

	if err := a.Send(command("XREAD", "BLOCK", "0", "STREAMS", "s", "$")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, lead.Srv, 1)
	if r := p.Do("XADD", "s", "1-1", "f", "v"); r != bulk("1-1") {
		t.Fatalf("XADD: %q", r)
	}
	want := "*1\r\n*2\r\n" + bulk("s") + "*1\r\n*2\r\n" + bulk("1-1") + "*2\r\n" + bulk("f") + bulk("v")
	if r := read(t, a); r != want {
		t.Fatalf("XREAD BLOCK got %q, want %q", r, want)
	}

	if r := p.Do("XGROUP", "CREATE", "s", "g", "$"); r != "+OK\r\n" {
		t.Fatalf("XGROUP CREATE: %q", r)
	}
	for i, cn := range []*redistest.Conn{a, b} {
		if err := cn.Send(command("XREADGROUP", "GROUP", "g", "c"+string(rune('1'+i)), "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">")); err != nil {
			t.Fatal(err)
		}
		waitBlocked(t, lead.Srv, int64(i+1))
	}
	// One transaction adds both: served after EXEC, each waiter one entry
	// (COUNT 1; without it the first would take both, as in Redis).
	p.Do("MULTI")
	p.Do("XADD", "s", "2-1", "f", "a")
	p.Do("XADD", "s", "3-1", "f", "b")
	if r := p.Do("EXEC"); r != "*2\r\n"+bulk("2-1")+bulk("3-1") {
		t.Fatalf("EXEC: %q", r)
	}
	for i, cn := range []*redistest.Conn{a, b} {
		id, v := []string{"2-1", "3-1"}[i], []string{"a", "b"}[i]
		want := "*1\r\n*2\r\n" + bulk("s") + "*1\r\n*2\r\n" + bulk(id) + "*2\r\n" + bulk("f") + bulk(v)
		if r := read(t, cn); r != want {
			t.Fatalf("consumer %d got %q, want %q", i+1, r, want)
		}
	}
	if r := p.Do("XPENDING", "s", "g"); !strings.HasPrefix(r, "*4\r\n:2\r\n") {
		t.Fatalf("XPENDING: %q", r)
	}

	// In another database, with a timeout; without BLOCK it answers at once.
	a.Do("SELECT", "5")
	start := time.Now()
	if r := a.Do("XREAD", "BLOCK", "50", "STREAMS", "s", "0"); r != "*-1\r\n" {
		t.Fatalf("XREAD BLOCK 50 in db 5: %q", r)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("timed out after %v", time.Since(start))
	}
	if r := a.Do("XREAD", "STREAMS", "s", "0"); r != "*-1\r\n" {
		t.Fatalf("XREAD in db 5: %q", r)
	}
	if r := a.Do("MULTI"); r != "+OK\r\n" {
		t.Fatal(r)
	}
	a.Do("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	if r := a.Do("EXEC"); r != "*1\r\n*-1\r\n" {
		t.Fatalf("XREAD BLOCK in MULTI: %q", r)
	}
	if err := a.Send(command("XREAD", "BLOCK", "0", "STREAMS", "s", "$")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, lead.Srv, 1)
	p.Do("XADD", "s", "4-1", "f", "v") // db 0: not a's stream
	p.Do("SELECT", "5")
	p.Do("XADD", "s", "9-1", "f", "v")
	if r := read(t, a); !strings.Contains(r, bulk("9-1")) {
		t.Fatalf("XREAD BLOCK in db 5 got %q", r)
	}

	f := c.Followers(lead)[0]
	fc := redistest.Dial(t, f.Addr())
	if !replicatest.WaitFor(func() bool { return fc.Do("XLEN", "s") == ":4\r\n" }) {
		t.Fatal("the follower did not catch up")
	}
	if r := fc.Do("XREAD", "COUNT", "1", "STREAMS", "s", "0"); !strings.Contains(r, bulk("1-1")) {
		t.Fatalf("XREAD on a follower: %q", r)
	}
	if r := fc.Do("XREAD", "BLOCK", "0", "STREAMS", "s", "$"); !strings.HasPrefix(r, "-") {
		t.Fatalf("XREAD BLOCK on a follower: %q", r)
	}
	want = digest(t, lead.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
			t.Fatalf("follower %d digest differs from the leader's", f.ID)
		}
	}
}
