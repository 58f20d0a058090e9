package lincheck

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

// startMemcache starts internal/memcache's server, a memcached that does
// not replicate.
func startMemcache(t *testing.T) string {
	t.Helper()
	s, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// TestMemcacheMapping checks each operation's commands against a real
// memcached-protocol server.
func TestMemcacheMapping(t *testing.T) {
	addr := startMemcache(t)
	tg := Memcache{Addrs: []string{addr}, Names: []string{"m"}, Timeout: time.Second}.NewTarget(0)
	defer tg.Close()
	ctx := context.Background()
	do := func(in Input) Reply {
		t.Helper()
		if err := tg.Prepare(ctx, in); err != nil {
			t.Fatal(err)
		}
		rep := tg.Do(in)
		if rep.Err != nil || rep.Where != "m" {
			t.Fatalf("%v %s: %+v", in.Kind, in.Key, rep)
		}
		return rep
	}
	for _, tc := range []struct {
		in   Input
		want Output
	}{
		{Input{Kind: Get, Key: "r"}, Output{Nil: true}},
		{Input{Kind: Set, Key: "r", Arg: "a b\tc"}, Output{}},
		{Input{Kind: Get, Key: "r"}, Output{Value: "a b\tc"}},
		{Input{Kind: Set, Key: "r", Arg: ""}, Output{}},
		{Input{Kind: Get, Key: "r"}, Output{Value: ""}},
		{Input{Kind: Incr, Key: "c"}, Output{N: 1}}, // NOT_FOUND, then add
		{Input{Kind: Incr, Key: "c"}, Output{N: 2}},
		{Input{Kind: Get, Key: "c"}, Output{Value: "2"}},
		{Input{Kind: Set, Key: "x", Arg: "1.5"}, Output{}},
		{Input{Kind: Incr, Key: "x"}, Output{NotInt: true}},
		{Input{Kind: Get, Key: "x"}, Output{Value: "1.5"}},
		{Input{Kind: Append, Key: "l", Arg: "0.1,"}, Output{N: 4}},  // missing: add
		{Input{Kind: Append, Key: "l", Arg: "0.22,"}, Output{N: 9}}, // gets, cas
		{Input{Kind: Get, Key: "l"}, Output{Value: "0.1,0.22,"}},
	} {
		if rep := do(tc.in); rep.Outcome != Done || rep.Output != tc.want {
			t.Fatalf("%v %s %q: %+v, want done with %+v", tc.in.Kind, tc.in.Key, tc.in.Arg, rep, tc.want)
		}
	}
}

// TestMemcacheContention runs APPENDs and INCRs of many clients on one
// key each: the CAS and add loops lose nothing.
func TestMemcacheContention(t *testing.T) {
	addr := startMemcache(t)
	const clients, each = 4, 50
	var wg sync.WaitGroup
	ctx := context.Background()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := Memcache{Addrs: []string{addr}, Timeout: 5 * time.Second}.NewTarget(c)
			defer tg.Close()
			for i := range each {
				for _, in := range []Input{{Kind: Append, Key: "l", Arg: "x"}, {Kind: Incr, Key: "c"}} {
					if err := tg.Prepare(ctx, in); err != nil {
						t.Error(err)
						return
					}
					if rep := tg.Do(in); rep.Outcome != Done {
						t.Errorf("client %d, %v #%d: %+v", c, in.Kind, i, rep)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	tg := Memcache{Addrs: []string{addr}}.NewTarget(9)
	defer tg.Close()
	if rep := tg.Do(Input{Kind: Get, Key: "l"}); rep.Output.Value != strings.Repeat("x", clients*each) {
		t.Errorf("log: %+v, want %d x", rep, clients*each)
	}
	if rep := tg.Do(Input{Kind: Get, Key: "c"}); rep.Output.Value != strconv.Itoa(clients*each) {
		t.Errorf("counter: %+v, want %d", rep, clients*each)
	}
}

// TestMemcacheWorkload runs the key-value workload on one server: a
// linearizable history.
func TestMemcacheWorkload(t *testing.T) {
	addr := startMemcache(t)
	rec := NewRecorder()
	w := Workload{Ops: 2000, KeyOps: 500}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := Memcache{Addrs: []string{addr}, Timeout: 2 * time.Second}
	if err := w.Run(ctx, rec, m.NewTarget); err != nil {
		t.Fatal(err)
	}
	res, err := rec.Check(Options{Budget: 20 * time.Second, Dir: t.TempDir(), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Verdict != Ok || res.MaybeApplied != 0 {
		t.Fatalf("%v, want Ok with no maybe-applied write", res)
	}
}

// fakeMemcache answers text-protocol commands with reply(line, data), data
// being a storage command's value; an empty reply is no reply at all. It
// counts the commands by verb.
type fakeMemcache struct {
	ln    net.Listener
	reply func(line, data string) string

	mu    sync.Mutex
	count map[string]int
}

func startFakeMemcache(t *testing.T, reply func(line, data string) string) *fakeMemcache {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeMemcache{ln: ln, reply: reply, count: map[string]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc)
		}
	}()
	return s
}

func (s *fakeMemcache) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		f := strings.Fields(line)
		var data string
		switch f[0] {
		case "set", "add", "cas":
			n, _ := strconv.Atoi(f[4])
			b := make([]byte, n+2)
			if _, err := io.ReadFull(br, b); err != nil {
				return
			}
			data = string(b[:n])
		}
		s.mu.Lock()
		s.count[f[0]]++
		s.mu.Unlock()
		if r := s.reply(line, data); r != "" {
			if _, err := nc.Write([]byte(r)); err != nil {
				return
			}
		}
	}
}

func (s *fakeMemcache) addr() string { return s.ln.Addr().String() }

func (s *fakeMemcache) commands(verb string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[verb]
}

// TestMemcacheTarget drives the Memcache Target against scripted servers:
// a follower that names the leader, the leader, and a server that never
// answers.
func TestMemcacheTarget(t *testing.T) {
	leader := startFakeMemcache(t, func(line, data string) string {
		switch {
		case line == "stats gomu":
			return "STAT gomu_id 2\r\nSTAT gomu_role leader\r\nSTAT gomu_paused 0\r\nEND\r\n"
		case strings.HasPrefix(line, "set"):
			return "STORED\r\n"
		case strings.HasPrefix(line, "get"):
			return "VALUE k 0 1\r\nv\r\nEND\r\n"
		}
		return "ERROR\r\n"
	})
	follower := startFakeMemcache(t, func(line, data string) string {
		switch {
		case line == "stats gomu":
			return "STAT gomu_id 1\r\nSTAT gomu_role follower\r\nSTAT gomu_leader_id 2\r\nSTAT gomu_leader_addr " + leader.addr() + "\r\nSTAT gomu_paused 0\r\nEND\r\n"
		case strings.HasPrefix(line, "get"):
			return "END\r\n"
		}
		return "SERVER_ERROR gomu: not the leader leader=2 addr=" + leader.addr() + "\r\n"
	})
	silent := startFakeMemcache(t, func(string, string) string { return "" })
	cfg := Memcache{Addrs: []string{follower.addr(), leader.addr(), silent.addr()}, Names: []string{"f", "l", "s"}, Timeout: 200 * time.Millisecond}
	ctx := context.Background()
	set := Input{Kind: Set, Key: "k", Arg: "v"}

	t.Run("asks who leads before the first write", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		tg.leader = 0 // the follower first: it names the leader
		if err := tg.Prepare(ctx, set); err != nil {
			t.Fatal(err)
		}
		if rep := tg.Do(set); rep.Outcome != Done || rep.Where != "l" {
			t.Fatalf("set: %+v, want done at l", rep)
		}
		if n := follower.commands("set"); n != 0 {
			t.Fatalf("the follower got %d sets", n)
		}
	})
	t.Run("follows not the leader", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 0, false // sure of the wrong server
		rep := tg.Do(set)
		if rep.Outcome != Unknown || rep.Where != "f" || rep.Err != nil {
			t.Fatalf("set on the follower: %+v, want unknown at f", rep)
		}
		if tg.leader != 1 || tg.doubt || tg.wait != 0 {
			t.Fatalf("after not the leader: leader %d doubt %v wait %v, want 1, false, 0", tg.leader, tg.doubt, tg.wait)
		}
	})
	t.Run("a refused gets starts no APPEND", func(t *testing.T) {
		// A replica catching up refuses the gets: nothing was written yet.
		behind := startFakeMemcache(t, func(string, string) string {
			return "SERVER_ERROR gomu: this replica is catching up. leader=2 addr=" + leader.addr() + "\r\n"
		})
		tg := Memcache{Addrs: []string{behind.addr(), leader.addr()}, Names: []string{"b", "l"}, Timeout: 200 * time.Millisecond}.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 0, false
		if rep := tg.Do(Input{Kind: Append, Key: "k", Arg: "x"}); rep.Outcome != Refused || rep.Where != "b" {
			t.Fatalf("append on the replica behind: %+v, want refused at b", rep)
		}
		if tg.leader != 1 || behind.commands("add")+behind.commands("cas") != 0 {
			t.Fatalf("after catching up: leader %d, %d writes sent; want 1, none", tg.leader, behind.commands("add")+behind.commands("cas"))
		}
	})
	t.Run("no reply is unknown, then in doubt", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 2, false
		start := time.Now()
		rep := tg.Do(set)
		if rep.Outcome != Unknown || rep.Where != "s" || time.Since(start) < cfg.Timeout {
			t.Fatalf("set on the silent server: %+v after %v, want unknown at s after %v", rep, time.Since(start), cfg.Timeout)
		}
		if !tg.doubt || tg.wait == 0 || tg.conns[silent.addr()] != nil {
			t.Fatalf("after a timeout: doubt %v wait %v conn kept %v; want doubt, a back-off, the connection dropped", tg.doubt, tg.wait, tg.conns[silent.addr()] != nil)
		}
		if err := tg.Prepare(ctx, set); err != nil {
			t.Fatal(err)
		}
		if rep := tg.Do(set); rep.Outcome != Done || rep.Where != "l" {
			t.Fatalf("set after asking: %+v, want done at l", rep)
		}
	})
	t.Run("not sent is refused", func(t *testing.T) {
		tg := Memcache{Addrs: []string{closedAddr(t), leader.addr()}, Timeout: 200 * time.Millisecond}.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 0, false
		if rep := tg.Do(set); rep.Outcome != Refused {
			t.Fatalf("set to a closed port: %+v, want refused", rep)
		}
	})
	t.Run("reads anywhere", func(t *testing.T) {
		two := cfg
		two.Addrs, two.Names = cfg.Addrs[:2], cfg.Names[:2]
		tg := two.NewTarget(0).(*memcacheTarget)
		defer tg.Close()
		seen := map[string]int{}
		for range 40 {
			in := Input{Kind: Get, Key: "k"}
			if err := tg.Prepare(ctx, in); err != nil {
				t.Fatal(err)
			}
			rep := tg.Do(in)
			if rep.Outcome != Done {
				t.Fatalf("get: %+v", rep)
			}
			seen[rep.Where]++
		}
		if seen["f"] == 0 || seen["l"] == 0 || len(seen) != 2 {
			t.Fatalf("reads per server %v, want some on each", seen)
		}
	})
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		found bool
		v     string
		cas   uint64
		ok    bool
	}{
		{"END\r\n", false, "", 0, true},
		{"VALUE k 0 3\r\nabc\r\nEND\r\n", true, "abc", 0, true},
		{"VALUE k 0 0 17\r\n\r\nEND\r\n", true, "", 17, true},
		{"VALUE k 0 4\r\na\r\nb\r\nEND\r\n", true, "a\r\nb", 0, true},
		{"VALUE k 0 4\r\nabc\r\nEND\r\n", false, "", 0, false},
		{"SERVER_ERROR gomu: this replica is paused\r\n", false, "", 0, false},
	} {
		found, v, cas, ok := parseValue([]byte(tc.raw))
		if found != tc.found || v != tc.v || cas != tc.cas || ok != tc.ok {
			t.Errorf("parseValue(%q) = %v %q %d %v, want %v %q %d %v", tc.raw, found, v, cas, ok, tc.found, tc.v, tc.cas, tc.ok)
		}
	}
}
