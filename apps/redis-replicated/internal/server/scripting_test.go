package server

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// TestScriptBusyAndKill: while a script runs past lua-time-limit other
// clients get BUSY; SCRIPT KILL stops a read-only script and a script that
// has not written yet (its speculative run), refuses a replicated one
// (UNKILLABLE once it wrote; inside MULTI an EVAL is replicated at once).
func TestScriptBusyAndKill(t *testing.T) {
	srv := startStandalone(t)
	m := srv.cfg.Machine
	m.scripts.busyMs.Store(20)
	other := redistest.Dial(t, srv.Addr())
	if got := other.Do("CONFIG", "GET", "lua-time-limit"); got != "*2\r\n"+bulk("lua-time-limit")+bulk("20") {
		t.Fatalf("CONFIG GET lua-time-limit: %q", got)
	}
	if got := other.Do("SCRIPT", "KILL"); got != "-NOTBUSY No scripts in execution right now.\r\n" {
		t.Fatalf("SCRIPT KILL with none running: %q", got)
	}
	cases := []struct {
		name, cmd, script string
		multi             bool   // EVAL inside MULTI (EXEC's reply holds the script's)
		kill, final       string // SCRIPT KILL's reply, then the script's
	}{
		{"read-only", "EVAL_RO", "while true do end", false, "+OK\r\n", "-ERR Script killed by user with SCRIPT KILL..."},
		{"not written yet", "EVAL", "local i = 0 while true do i = i + 1 end redis.call('set', 'x', '1')", false, "+OK\r\n", "-ERR Script killed by user with SCRIPT KILL..."},
		{"replicated", "EVAL", "local i = 0 while i < " + busyScriptLoops + " do i = i + 1 end return 1", true, "-ERR gomu: a replicated script cannot be killed", "*1\r\n:1\r\n"},
		{"replicated wrote", "EVAL", "redis.call('set', 'x', '1') local i = 0 while i < " + busyScriptLoops + " do i = i + 1 end return 2", false, "-UNKILLABLE Sorry", ":2\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runner := redistest.Dial(t, srv.Addr())
			done := make(chan string, 1)
			if c.multi {
				runner.Do("MULTI")
				if got := runner.Do(c.cmd, c.script, "0"); got != "+QUEUED\r\n" {
					t.Fatalf("%s in MULTI: %q", c.cmd, got)
				}
				go func() { done <- runner.Do("EXEC") }()
			} else {
				go func() { done <- runner.Do(c.cmd, c.script, "0") }()
			}
			busy := waitBusy(t, m, other)
			if !strings.HasPrefix(busy, "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.") {
				t.Fatalf("while the script runs: %q", busy)
			}
			if got := other.Do("SCRIPT", "KILL"); !strings.HasPrefix(got, c.kill) {
				t.Fatalf("SCRIPT KILL: %q, want %q…", got, c.kill)
			}
			select {
			case got := <-done:
				if !strings.HasPrefix(got, c.final) {
					t.Fatalf("script's reply: %q, want %q…", got, c.final)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("script still running")
			}
			if got := other.Do("PING"); got != "+PONG\r\n" {
				t.Fatalf("after the script: %q", got)
			}
		})
	}
}

// waitBusy waits for a script to run past the threshold, then sends a
// command. (One sent earlier would pass the BUSY check and wait for the
// machine's lock behind the replicated script, as a Redis client whose
// command arrived before the threshold waits.)
func waitBusy(t *testing.T, m *Machine, c *redistest.Conn) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.scripts.since.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no script started")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(m.scripts.busyMs.Load()+50) * time.Millisecond)
	return c.Do("GET", "k")
}

// TestScriptsReplicate: a script's writes, the script cache and the
// libraries reach every replica; read-only scripts run on a follower.
func TestScriptsReplicate(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	leader := redistest.Dial(t, lead.Addr())
	for _, cmd := range [][]string{
		{"EVAL", "return redis.call('set', 'k', math.random(1000000))", "0"},
		{"SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"},
		{"FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='rd', callback=function(k) return redis.call('get', k[1]) end, flags={'no-writes'}}"},
	} {
		if got := leader.Do(cmd...); strings.HasPrefix(got, "-") {
			t.Fatalf("%q: %q", cmd, got)
		}
	}
	want := leader.Do("GET", "k")
	for _, n := range c.Live() {
		addr := n.Addr()
		f := redistest.Dial(t, addr)
		if got := f.Do("FCALL_RO", "rd", "1", "k"); got != want {
			t.Errorf("%s: FCALL_RO rd: %q, want %q", addr, got, want)
		}
		if got := f.Do("EVALSHA_RO", "c8fad8a7b2b8fd01f8ec9bf4a2d0e6d0e6e6c2aa", "1", "k"); !strings.HasPrefix(got, "-NOSCRIPT") {
			t.Errorf("%s: EVALSHA_RO of an unknown script: %q", addr, got)
		}
	}
	// The followers answered the reads after a barrier: they applied the
	// writes, so their states (the script cache too) equal the leader's.
	d := digest(t, lead.Addr())
	for _, n := range c.Live() {
		if got := digest(t, n.Addr()); got != d {
			t.Errorf("%s: digest %q, leader's %q", n.Addr(), got, d)
		}
	}
}

// TestRunawayScriptInCluster: a replicated script that never ends stops at
// its instruction budget on every replica, which keep agreeing on the
// state (and keep their leader) afterwards.
func TestRunawayScriptInCluster(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cl := redistest.Dial(t, lead.Addr())
	nc, err := net.Dial("tcp", lead.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	if _, err := nc.Write(command("EVAL", "redis.call('set', 'before', '1') while true do end", "0")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got, err := resp.ReadReply(bufio.NewReader(nc), nil, 1<<20)
	t.Logf("after %v: %q %v", time.Since(start), got, err)
	if !strings.HasPrefix(string(got), "-ERR gomu: script stopped after its budget") {
		t.Fatalf("runaway script: %q", got)
	}
	if got := cl.Do("SET", "after", "2"); got != "+OK\r\n" {
		t.Fatalf("write after the script: %q", got)
	}
	// Followers may still be running the script (BUSY): wait them out.
	settled := func(addr string) string {
		deadline := time.Now().Add(hang)
		for {
			d := digest(t, addr)
			if !strings.HasPrefix(d, "-BUSY") || time.Now().After(deadline) {
				return d
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	d := settled(lead.Addr())
	for _, n := range c.Live() {
		if got := settled(n.Addr()); got != d {
			t.Errorf("%s: digest %q, leader's %q", n.Addr(), got, d)
		}
	}
	if c.WaitLeader() != lead {
		t.Error("the leader changed while the script ran")
	}
	if got := cl.Do("GET", "before"); got != bulk("1") {
		t.Errorf("the script's write before its budget: %q", got)
	}
}
