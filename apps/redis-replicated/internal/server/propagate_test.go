package server

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// syncTap opens a SYNC stream on addr and returns a function reading the
// next n commands from it, each as its arguments joined by spaces, with
// the times of PXAT and PEXPIREAT (which differ between servers) as T.
func syncTap(t *testing.T, addr string) func(n int) []string {
	t.Helper()
	c := redistest.Dial(t, addr)
	c.Do("CONFIG", "SET", "repl-ping-replica-period", "3600")
	c.Do("CONFIG", "SET", "repl-diskless-sync-delay", "0") // Redis's; refused by ours, harmlessly
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, "SYNC\r\n")
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head string
	for head == "" || head == "\n" {
		if head, err = br.ReadString('\n'); err != nil {
			t.Fatalf("SYNC: %v", err)
		}
	}
	size, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	if _, err := io.ReadFull(br, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	var failed error
	line := func() string {
		s, err := br.ReadString('\n')
		if err != nil && failed == nil {
			failed = err
		}
		return strings.TrimSuffix(s, "\r\n")
	}
	return func(n int) []string {
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		var cmds []string
		for len(cmds) < n {
			l := line()
			if failed != nil {
				break // what came so far is compared
			}
			if !strings.HasPrefix(l, "*") {
				continue // Redis's newline keepalives
			}
			argc, _ := strconv.Atoi(l[1:])
			args := make([]string, argc)
			for i := range args {
				line()
				args[i] = line()
			}
			args[0] = strings.ToLower(args[0])
			for i := 1; i < len(args); i++ {
				if strings.EqualFold(args[i-1], "pxat") || args[0] == "pexpireat" && i == 2 {
					args[i] = "T"
				}
			}
			cmds = append(cmds, strings.Join(args, " "))
		}
		return cmds
	}
}

// compareStreams runs run against Debian's redis-server and against a
// standalone server and compares the commands each returned.
func compareStreams(t *testing.T, run func(addr string) []string) {
	t.Helper()
	want := run(redistest.Start(t))
	got := run(startStandalone(t).Addr())
	if len(got) != len(want) {
		t.Fatalf("streams of %d and %d commands:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("command %d: got %q, want %q\n got %q\nwant %q", i, got[i], want[i], got, want)
			break
		}
	}
}

// TestPropagatedFormsDiff: SYNC's stream carries the forms Redis 7.0
// propagates (absolute expiry times, DEL for GETDEL and past expiries,
// LPOP/ZPOPMIN for LMPOP/ZMPOP, SET KEEPTTL for INCRBYFLOAT …) and leaves
// out what it leaves out, compared with Redis's own stream.
func TestPropagatedFormsDiff(t *testing.T) {
	script := [][]string{
		{"SET", "k", "v"}, {"GETDEL", "k"}, {"GETDEL", "k"},
		{"SET", "k", "v", "EX", "100"}, {"GETEX", "k"}, {"GETEX", "k", "PERSIST"},
		{"GETEX", "k", "PX", "50000"}, {"GETEX", "k", "EXAT", "1000"},
		{"SETEX", "k", "100", "v"}, {"PSETEX", "k", "100000", "v"}, {"SET", "k", "v", "pxat", "99999999999999"},
		{"SET", "k", "v2", "NX"}, {"SET", "k", "v3", "XX", "GET"}, {"SET", "n", "v", "XX"},
		{"EXPIRE", "k", "100"}, {"PEXPIRE", "k", "200000", "GT"}, {"EXPIRE", "k", "-1"},
		{"RPUSH", "l", "a", "b", "c"}, {"LMPOP", "2", "none", "l", "RIGHT", "COUNT", "2"},
		{"LMPOP", "1", "none", "LEFT"},
		{"ZADD", "z", "1", "a", "2", "b"}, {"ZMPOP", "1", "z", "MAX", "COUNT", "5"},
		{"INCRBYFLOAT", "f", "1.5"}, {"HINCRBYFLOAT", "h", "x", "2.5"},
		{"SET", "end", "1"},
	}
	const sent = 20 // commands each stream carries for script
	run := func(addr string) []string {
		next := syncTap(t, addr)
		c := redistest.Dial(t, addr)
		for _, cmd := range script {
			c.Do(cmd...)
		}
		return next(sent)
	}
	compareStreams(t, run)
}

// TestPropagatedBlockingPopsDiff: the blocking pops go out as Redis sends
// them, served at once or after blocking (BLMPOP as LPOP … COUNT, BLPOP as
// LPOP, BRPOPLPUSH as RPOPLPUSH, BLMOVE as LMOVE, BZPOPMIN as ZPOPMIN,
// BZMPOP as ZPOPMAX … COUNT), a served client's pop after the write that
// served it; compared with Redis's own stream.
func TestPropagatedBlockingPopsDiff(t *testing.T) {
	script := []struct {
		block bool // sent by the waiting connection, which then blocks
		cmd   []string
	}{
		{false, []string{"LPUSH", "l", "a", "b", "c"}},
		{false, []string{"BLMPOP", "0", "1", "l", "LEFT", "COUNT", "1"}},
		{false, []string{"BLPOP", "l", "0"}},
		{false, []string{"BRPOPLPUSH", "l", "d", "0"}},
		{true, []string{"BLMPOP", "0", "2", "q", "l", "RIGHT", "COUNT", "5"}},
		{false, []string{"RPUSH", "q", "x", "y", "z"}},
		{true, []string{"BLMOVE", "q2", "d", "LEFT", "RIGHT", "0"}},
		{false, []string{"RPUSH", "q2", "m"}},
		{true, []string{"BZPOPMIN", "z", "0"}},
		{false, []string{"ZADD", "z", "1", "a", "2", "b"}},
		{true, []string{"BZMPOP", "0", "1", "z2", "MAX", "COUNT", "3"}},
		{false, []string{"ZADD", "z2", "1", "a", "2", "b"}},
		{false, []string{"SET", "end", "1"}},
	}
	const sent = 14 // commands each stream carries for script
	run := func(addr string) []string {
		next := syncTap(t, addr)
		c, w := redistest.Dial(t, addr), redistest.Dial(t, addr)
		waiting := false
		for _, step := range script {
			if !step.block {
				c.Do(step.cmd...)
				if waiting { // served: its reply comes, and it no longer counts as blocked
					read(t, w)
					waiting = false
				}
				continue
			}
			if err := w.Send(command(step.cmd...)); err != nil {
				t.Fatal(err)
			}
			if !replicatest.WaitFor(func() bool { return strings.Contains(c.Do("INFO", "clients"), "blocked_clients:1\r\n") }) {
				t.Fatalf("%q did not block", step.cmd)
			}
			waiting = true
		}
		return next(sent)
	}
	compareStreams(t, run)
}

// TestPropagatedScriptsDiff: a script call goes out as its effects, as
// Redis 7.0 replicates scripts (SPOP as SREM or DEL, EXPIRE as PEXPIREAT,
// INCRBYFLOAT as SET KEEPTTL, reads and failed or ineffective writes not
// at all, more than one effect between MULTI and EXEC, a SELECT in the
// script before the effects in its database; SCRIPT LOAD not at all), from RESP2 and RESP3
// clients, in and out of a transaction; compared with Redis's own stream.
// (SPOP with a count equal to the set's size is left out: Redis sends a
// DEL, this server an SREM of every member, see spopPropagated.)
func TestPropagatedScriptsDiff(t *testing.T) {
	script := [][]string{
		{"SADD", "s", "a"}, {"EVAL", "return redis.call('spop', 's')", "0"},
		{"SADD", "s", "b", "b2"}, {"EVAL", "return redis.call('spop', KEYS[1], 0)", "1", "s"},
		{"SREM", "s", "b2"}, {"EVAL", "return redis.call('spop', KEYS[1], 0)", "1", "s"},
		{"EVAL", "return redis.call('spop', KEYS[1])", "1", "s"},
		{"SADD", "s", "c", "d"}, {"EVAL", "return redis.call('spop', KEYS[1], 5)", "1", "s"},
		{"MSET", "a", "1", "b", "2"}, {"EVAL", "return redis.call('mget', 'a', 'b')", "0"},
		{"EVAL", "return redis.call('expire', KEYS[1], ARGV[1])", "1", "a", "100"},
		{"EVAL", "return redis.call('incrbyfloat', KEYS[1], 1)", "1", "f"},
		{"EVAL", "redis.call('set', 'x', 1); redis.call('incr', 'x'); return redis.call('get', 'x')", "0"},
		{"EVAL", "redis.pcall('incr', 'a'); redis.call('del', 'nope'); return redis.pcall('lpush', 'x', 1)", "0"},
		{"EVAL", "redis.call('select', 3); redis.call('set', 'y', 1); redis.call('select', 0); return redis.call('set', 'y', 2)", "0"},
		{"HELLO", "3"}, {"EVAL", "redis.call('set', 'r', 1); return redis.call('incr', 'r')", "0"},
		{"MULTI"}, {"SET", "m", "1"}, {"EVAL", "return redis.call('incr', 'm')", "0"}, {"EXEC"},
		{"HELLO", "2"},
		{"SCRIPT", "LOAD", "return 1"}, {"MULTI"}, {"SCRIPT", "LOAD", "return 2"}, {"SET", "foo", "bar"}, {"EXEC"},
		{"SET", "end", "1"},
	}
	run := func(addr string) []string {
		next := syncTap(t, addr)
		c := redistest.Dial(t, addr)
		for _, cmd := range script {
			c.Do(cmd...)
		}
		return next(40) // more than either sends: what came is compared
	}
	compareStreams(t, run)
}

// TestPropagatedRestoreAndLazyExpiryDiff: RESTORE with a relative TTL goes
// out with an absolute one and ABSTTL, and an expired key SCAN, RANDOMKEY
// or GET meets goes out as a DEL, as Redis sends them.
func TestPropagatedRestoreAndLazyExpiryDiff(t *testing.T) {
	abs := regexp.MustCompile(`^(restore \S+) \d+ `)
	compareStreams(t, func(addr string) []string {
		c := redistest.Dial(t, addr)
		c.Do("DEBUG", "SET-ACTIVE-EXPIRE", "0")
		c.Do("SET", "src", "bar")
		payload := c.Do("DUMP", "src")
		raw := payload[strings.Index(payload, "\r\n")+2 : len(payload)-2]
		next := syncTap(t, addr)
		c.Do("RESTORE", "rel", "100000", raw)
		c.Do("RESTORE", "abs", "99999999999999", raw, "ABSTTL")
		c.Do("RESTORE", "none", "0", raw)
		c.Do("DEL", "src", "rel", "abs", "none")
		// One expired key at a time: the order in which SCAN and
		// RANDOMKEY meet two is each server's hash order.
		for _, read := range [][]string{{"SCAN", "0"}, {"RANDOMKEY"}, {"GET", "foo"}} {
			c.Do("SET", "foo", "bar", "PX", "1")
			time.Sleep(5 * time.Millisecond)
			c.Do(read...)
		}
		c.Do("SET", "end", "1")
		cmds := next(40)
		for i, cmd := range cmds {
			cmds[i] = abs.ReplaceAllString(cmd, "$1 T ")
		}
		return cmds
	})
}

// TestPropagatedXReadGroupDiff: an XREADGROUP of new entries goes out as
// one XCLAIM per entry (between MULTI and EXEC when several), alone, in a
// transaction and from a script, compared with Redis's own stream (the
// delivery times, which differ between servers, as T).
func TestPropagatedXReadGroupDiff(t *testing.T) {
	script := [][]string{
		{"XADD", "s", "1-1", "f", "v"}, {"XADD", "s", "1-2", "f", "v"}, {"XADD", "s", "1-3", "f", "v"},
		{"XGROUP", "CREATE", "s", "g", "0"},
		{"XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"}, // nothing new: nothing sent
		{"XADD", "s", "1-4", "f", "v"}, {"XADD", "s", "1-5", "f", "v"}, {"XADD", "s", "1-6", "f", "v"},
		{"MULTI"},
		{"XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"},
		{"EXEC"},
		{"XADD", "s", "1-7", "f", "v"}, {"XADD", "s", "1-8", "f", "v"},
		{"EVAL", "return redis.call('XREADGROUP', 'GROUP', 'g', 'c3', 'STREAMS', KEYS[1], '>')", "1", "s"},
		{"SET", "end", "1"},
	}
	const sent = 26
	run := func(addr string) []string {
		next := syncTap(t, addr)
		c := redistest.Dial(t, addr)
		for _, cmd := range script {
			c.Do(cmd...)
		}
		cmds := next(sent)
		for i, cmd := range cmds {
			if f := strings.Fields(cmd); len(f) > 7 && f[0] == "xclaim" && f[6] == "TIME" {
				f[7] = "T"
				cmds[i] = strings.Join(f, " ")
			}
		}
		return cmds
	}
	compareStreams(t, run)
}
