package lincheck

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// fakeServer answers RESP commands with reply(args); an empty reply is no
// reply at all, as from a stopped process. It counts the commands by name.
type fakeServer struct {
	ln    net.Listener
	reply func(args []string) string

	mu    sync.Mutex
	count map[string]int
}

func startFake(t *testing.T, reply func(args []string) string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, reply: reply, count: map[string]int{}}
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

func (s *fakeServer) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	for {
		raw, err := resp.ReadReply(br, nil, 1<<20)
		if err != nil {
			return
		}
		// *<n> $<len> <arg> $<len> <arg> …: the args are every other line.
		lines := strings.Split(string(raw), "\r\n")
		var args []string
		for i := 2; i < len(lines); i += 2 {
			args = append(args, lines[i])
		}
		s.mu.Lock()
		s.count[args[0]]++
		s.mu.Unlock()
		r := s.reply(args)
		if r == "" {
			continue
		}
		if _, err := nc.Write([]byte(r)); err != nil {
			return
		}
	}
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) commands(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[name]
}

func bulkReply(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// TestRedisTarget drives the Redis Target against scripted servers: a
// follower that names the leader, the leader, and a server that never
// answers.
func TestRedisTarget(t *testing.T) {
	var leader *fakeServer
	leader = startFake(t, func(args []string) string {
		switch args[0] {
		case "INFO":
			return bulkReply("# Replication\r\nrole:master\r\ngomu_paused:0\r\n")
		case "SET":
			return "+OK\r\n"
		case "GET":
			return bulkReply("v")
		}
		return "-ERR unknown\r\n"
	})
	host, port, _ := net.SplitHostPort(leader.addr())
	follower := startFake(t, func(args []string) string {
		switch args[0] {
		case "INFO":
			return bulkReply("# Replication\r\nrole:slave\r\nmaster_host:" + host + "\r\nmaster_port:" + port + "\r\n")
		case "GET":
			return "$-1\r\n"
		}
		return "-READONLY You can't write against a read only replica. leader=2 addr=" + leader.addr() + "\r\n"
	})
	silent := startFake(t, func([]string) string { return "" })
	cfg := Redis{Addrs: []string{follower.addr(), leader.addr(), silent.addr()}, Names: []string{"f", "l", "s"}, Timeout: 200 * time.Millisecond}
	ctx := context.Background()
	set := Input{Kind: Set, Key: "k", Arg: "v"}

	t.Run("asks who leads before the first write", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*redisTarget)
		defer tg.Close()
		tg.leader = 0 // the follower first: it names the leader
		if err := tg.Prepare(ctx, set); err != nil {
			t.Fatal(err)
		}
		if rep := tg.Do(set); rep.Outcome != Done || rep.Where != "l" {
			t.Fatalf("SET: %+v, want done at l", rep)
		}
		if n := follower.commands("SET"); n != 0 {
			t.Fatalf("the follower got %d SETs", n)
		}
	})
	t.Run("follows READONLY", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*redisTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 0, false // sure of the wrong server
		rep := tg.Do(set)
		if rep.Outcome != Unknown || rep.Where != "f" {
			t.Fatalf("SET on the follower: %+v, want unknown at f", rep)
		}
		if tg.leader != 1 || tg.doubt || tg.wait != 0 {
			t.Fatalf("after READONLY: leader %d doubt %v wait %v, want 1, false, 0", tg.leader, tg.doubt, tg.wait)
		}
	})
	t.Run("no reply is unknown, then in doubt", func(t *testing.T) {
		tg := cfg.NewTarget(0).(*redisTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 2, false
		start := time.Now()
		rep := tg.Do(set)
		if rep.Outcome != Unknown || rep.Where != "s" || time.Since(start) < cfg.Timeout {
			t.Fatalf("SET on the silent server: %+v after %v, want unknown at s after %v", rep, time.Since(start), cfg.Timeout)
		}
		if !tg.doubt || tg.wait == 0 || tg.conns[silent.addr()] != nil {
			t.Fatalf("after a timeout: doubt %v wait %v conn kept %v; want doubt, a back-off, the connection dropped", tg.doubt, tg.wait, tg.conns[silent.addr()] != nil)
		}
		if err := tg.Prepare(ctx, set); err != nil {
			t.Fatal(err)
		}
		if rep := tg.Do(set); rep.Outcome != Done || rep.Where != "l" {
			t.Fatalf("SET after asking: %+v, want done at l", rep)
		}
	})
	t.Run("not sent is refused", func(t *testing.T) {
		closed := closedAddr(t)
		tg := Redis{Addrs: []string{closed, leader.addr()}, Timeout: 200 * time.Millisecond}.NewTarget(0).(*redisTarget)
		defer tg.Close()
		tg.leader, tg.doubt = 0, false
		if rep := tg.Do(set); rep.Outcome != Refused {
			t.Fatalf("SET to a closed port: %+v, want refused", rep)
		}
	})
	t.Run("reads anywhere", func(t *testing.T) {
		two := cfg
		two.Addrs, two.Names = cfg.Addrs[:2], cfg.Names[:2]
		tg := two.NewTarget(0).(*redisTarget)
		defer tg.Close()
		seen := map[string]int{}
		for range 40 {
			in := Input{Kind: Get, Key: "k"}
			if err := tg.Prepare(ctx, in); err != nil {
				t.Fatal(err)
			}
			seen[tg.Do(in).Where]++
		}
		if seen["f"] == 0 || seen["l"] == 0 || len(seen) != 2 {
			t.Fatalf("reads per server %v, want some on each", seen)
		}
	})
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}
