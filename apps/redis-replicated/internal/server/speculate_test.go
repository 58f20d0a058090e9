package server

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// loopLib is a library whose function f loops forever without writing,
// as Redis's "FUNCTION - test function kill"; it may write (no flags).
const loopLib = "#!lua name=loops\nredis.register_function('f', function(keys, args) redis.call('get', 'k') local a = 1 while true do a = a + 1 end end)"

// TestSpeculativeKill: a script that may write but has not written yet
// runs speculatively, so SCRIPT KILL (FUNCTION KILL for a function) stops
// it; its client gets Redis's error, and the server answers after. The
// other kind of kill answers BUSY, as in Redis, and FUNCTION STATS shows
// a running function.
func TestSpeculativeKill(t *testing.T) {
	srv := startStandalone(t)
	m := srv.cfg.Machine
	m.scripts.busyMs.Store(20)
	other := redistest.Dial(t, srv.Addr())
	if got := other.Do("FUNCTION", "LOAD", loopLib); got != bulk("loops") {
		t.Fatalf("FUNCTION LOAD: %q", got)
	}
	cases := []struct {
		name      string
		call      []string
		wrongKill string // the other kind's kill, refused with BUSY
		kill      string
		stats     string // FUNCTION STATS's reply starts so
	}{
		{"eval", []string{"EVAL", "local a = 1 while true do a = a + 1 end", "0"}, "FUNCTION",
			"SCRIPT", "-BUSY Redis is busy running a script. You can only call SCRIPT KILL"},
		{"eval reads then loops", []string{"EVAL", "redis.call('get', KEYS[1]) while true do end redis.call('set', KEYS[1], 'v')", "1", "k"}, "FUNCTION",
			"SCRIPT", "-BUSY"},
		{"fcall", []string{"FCALL", "f", "0"}, "SCRIPT",
			"FUNCTION", "*4\r\n$14\r\nrunning_script\r\n*6\r\n$4\r\nname\r\n$1\r\nf\r\n$7\r\ncommand\r\n*3\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\n0\r\n$11\r\nduration_ms\r\n:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runner := redistest.Dial(t, srv.Addr())
			done := make(chan string, 1)
			go func() { done <- runner.Do(c.call...) }()
			if busy := waitBusy(t, m, other); !strings.HasPrefix(busy, "-BUSY") {
				t.Fatalf("while the script runs: %q", busy)
			}
			if got := other.Do("FUNCTION", "STATS"); !strings.HasPrefix(got, c.stats) {
				t.Errorf("FUNCTION STATS: %q, want %q…", got, c.stats)
			}
			if got := other.Do(c.wrongKill, "KILL"); !strings.HasPrefix(got, "-BUSY") {
				t.Errorf("%s KILL: %q, want BUSY", c.wrongKill, got)
			}
			if got := other.Do(c.kill, "KILL"); got != "+OK\r\n" {
				t.Fatalf("%s KILL: %q", c.kill, got)
			}
			select {
			case got := <-done:
				if !strings.HasPrefix(got, "-ERR Script killed by user with SCRIPT KILL... script: ") { // Redis's words for FUNCTION KILL too
					t.Fatalf("the killed script's reply: %q", got)
				}
			case <-time.After(hang):
				t.Fatal("script still running")
			}
			if got := other.Do("PING"); got != "+PONG\r\n" {
				t.Fatalf("after the kill: %q", got)
			}
		})
	}
	if got := other.Do("EXISTS", "k"); got != ":0\r\n" {
		t.Errorf("a killed script wrote: EXISTS k = %q", got)
	}
	// Redis caches every EVAL'd script, the killed one too.
	if got := other.Do("SCRIPT", "EXISTS", sha1hex("local a = 1 while true do a = a + 1 end")); got != "*1\r\n:1\r\n" {
		t.Errorf("the killed EVAL's script is not cached: %q", got)
	}
}

// TestSpeculativeWriteInCluster: a script that writes then loops is
// UNKILLABLE (its replicated run wrote) and its write lands on every
// replica; scripts that read then write give the same replies and states
// as before; a script that turns out to only read is not proposed (an EVAL
// of a new body proposes its caching only), and a follower serves it.
func TestSpeculativeWriteInCluster(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lead.M.scripts.busyMs.Store(20)
	leader := redistest.Dial(t, lead.Addr())
	other := redistest.Dial(t, lead.Addr())
	proposals := func() int64 { n, _ := lead.Srv.link.Counts(); return n }

	runner := redistest.Dial(t, lead.Addr())
	done := make(chan string, 1)
	go func() {
		done <- runner.Do("EVAL", "redis.call('set', 'w', 'x') local i = 0 while i < "+busyScriptLoops+" do i = i + 1 end return 'end'", "0")
	}()
	waitBusy(t, lead.M, other)
	if got := other.Do("SCRIPT", "KILL"); !strings.HasPrefix(got, "-UNKILLABLE Sorry") {
		t.Fatalf("SCRIPT KILL of a script that wrote: %q", got)
	}
	if got := <-done; got != bulk("end") {
		t.Fatalf("the unkillable script: %q", got)
	}

	for _, step := range []struct {
		args      []string
		want      string
		proposals int64 // how many the call makes
	}{
		{[]string{"SET", "n", "1"}, "+OK\r\n", 1},
		{[]string{"EVAL", "local v = redis.call('get', KEYS[1]) redis.call('set', KEYS[1], v + 1) return v + 1", "1", "n"}, ":2\r\n", 1},
		{[]string{"EVAL", "local v = redis.call('get', KEYS[1]) redis.call('set', KEYS[1], v + 1) return v + 1", "1", "n"}, ":3\r\n", 1},
		{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "n"}, bulk("3"), 1}, // caches the body
		{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "n"}, bulk("3"), 0},
		{[]string{"EVALSHA", sha1hex("return redis.call('get', KEYS[1])"), "1", "n"}, bulk("3"), 0},
		{[]string{"EVAL", "if redis.call('get', KEYS[1]) == '3' then return redis.pcall('publish', 'ch', 'm') end return 0", "1", "n"}, ":0\r\n", 1},
		{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "w"}, bulk("x"), 0},
		{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "nope"}, "$-1\r\n", 0},
		{[]string{"EVAL", "redis.call('select', 1) return redis.call('get', KEYS[1])", "1", "n"}, "$-1\r\n", 1},
		{[]string{"EVAL", "redis.call('select', 1) redis.call('set', KEYS[1], 'db1') return 1", "1", "n"}, ":1\r\n", 1},
		{[]string{"EVAL", "redis.call('select', 1) return redis.call('get', KEYS[1])", "1", "n"}, bulk("db1"), 0},
		{[]string{"GET", "n"}, bulk("3"), 0},
		// Abandoned inside a pcall, and with closures open: the replicated
		// run gives the reply, and the pooled Lua state stays sound.
		{[]string{"EVAL", "local ok = pcall(redis.call, 'set', KEYS[1], 'p') return ok and 1 or 0", "1", "pc"}, ":1\r\n", 1},
		{[]string{"EVAL", "return pcall(function() redis.call('set', KEYS[1], 'q') end)", "1", "pc"}, ":1\r\n", 1},
		{[]string{"EVAL", "local x = 0 local function f() x = x + 1 return x end f() redis.call('set', KEYS[1], f()) return f()", "1", "cl"}, ":3\r\n", 1},
		{[]string{"EVAL", "local x = 10 local function f() x = x + 1 return x end f() return {f(), redis.call('get', KEYS[1])}", "1", "cl"}, "*2\r\n:12\r\n$1\r\n2\r\n", 1},
		{[]string{"EVAL", "local x = 10 local function f() x = x + 1 return x end f() return {f(), redis.call('get', KEYS[1])}", "1", "pc"}, "*2\r\n:12\r\n$1\r\nq\r\n", 0},
		{[]string{"EVAL", "return redis.call('get', 'x') .. 1", "0"}, "-", 1}, // an error, cached
	} {
		before := proposals()
		got := leader.Do(step.args...)
		if got != step.want && !(step.want == "-" && strings.HasPrefix(got, "-")) {
			t.Errorf("%q: %q, want %q", step.args, got, step.want)
		}
		if n := proposals() - before; n != step.proposals {
			t.Errorf("%q: %d proposals, want %d", step.args, n, step.proposals)
		}
	}

	// The followers serve the scripts that only read; a script that
	// writes, and an EVAL of a body the cache lacks, get READONLY.
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Addr())
		for _, step := range []struct {
			args []string
			want string
		}{
			{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "n"}, bulk("3")},
			{[]string{"EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "n"}, "-READONLY"},
			{[]string{"EVAL", "return 'never cached'", "0"}, "-READONLY"},
		} {
			if got := fc.Do(step.args...); !strings.HasPrefix(got, step.want) {
				t.Errorf("follower %s: %q: %q, want %q", f.Addr(), step.args, got, step.want)
			}
		}
	}

	d := digest(t, lead.Addr())
	for _, n := range c.Live() {
		if got := digest(t, n.Addr()); got != d {
			t.Errorf("%s: digest %q, leader's %q", n.Addr(), got, d)
		}
		if got := redistest.Dial(t, n.Addr()).Do("GET", "w"); got != bulk("x") {
			t.Errorf("%s: the unkillable script's write: %q", n.Addr(), got)
		}
	}
}

// sha1hex is a script's SHA-1 as EVALSHA names it.
func sha1hex(body string) string {
	sum := sha1.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// TestScriptsOutOfMemory: out of memory, a script with flags that may
// write and lacks allow-oom is refused before it runs, as are FUNCTION
// LOAD and RESTORE; a script without flags, a no-writes or an allow-oom
// one runs.
func TestScriptsOutOfMemory(t *testing.T) {
	srv := startStandalone(t)
	cl := redistest.Dial(t, srv.Addr())
	lib := "#!lua name=oom\n" +
		"redis.register_function('plain', function() return 1 end)\n" +
		"redis.register_function{function_name='ro', callback=function() return 2 end, flags={'no-writes'}}\n" +
		"redis.register_function{function_name='oomok', callback=function() return 3 end, flags={'allow-oom'}}"
	if got := cl.Do("FUNCTION", "LOAD", lib); got != bulk("oom") {
		t.Fatalf("FUNCTION LOAD: %q", got)
	}
	dump := cl.Do("FUNCTION", "DUMP")
	if got := cl.Do("CONFIG", "SET", "maxmemory", "1"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET maxmemory: %q", got)
	}
	const denied = "-OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'\r\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"FCALL", "plain", "0"}, denied},
		{[]string{"FCALL", "ro", "0"}, ":2\r\n"},
		{[]string{"FCALL", "oomok", "0"}, ":3\r\n"},
		{[]string{"EVAL", "#!lua\nreturn 4", "0"}, denied},
		{[]string{"EVAL", "#!lua flags=allow-oom\nreturn 5", "0"}, ":5\r\n"},
		{[]string{"EVAL", "return 6", "0"}, ":6\r\n"},
		{[]string{"EVAL", "return redis.call('set', 'x', 1)", "0"}, "-OOM command not allowed when used memory > 'maxmemory'. script: " + sha1hex("return redis.call('set', 'x', 1)") + ", on @user_script:1.\r\n"},
		{[]string{"EVAL", "return redis.pcall('set', 'x', 1)['err']", "0"}, bulk("OOM command not allowed when used memory > 'maxmemory'.")},
		{[]string{"EVAL", "return redis.call('del', 'x')", "0"}, ":0\r\n"}, // DEL is not denyoom
		{[]string{"EXISTS", "x"}, ":0\r\n"},
		{[]string{"FUNCTION", "LOAD", "REPLACE", lib}, "-OOM command not allowed when used memory > 'maxmemory'.\r\n"},
		{[]string{"FUNCTION", "RESTORE", strings.TrimSuffix(dump[strings.Index(dump, "\r\n")+2:], "\r\n")}, "-OOM command not allowed when used memory > 'maxmemory'.\r\n"},
	} {
		if got := cl.Do(c.args...); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	cl.Do("CONFIG", "SET", "maxmemory", "0")
}

// TestSpeculativeCommandStats: a script call counts once in INFO
// commandstats, answered by its speculative run or replicated after it;
// a failed one counts as failed once.
func TestSpeculativeCommandStats(t *testing.T) {
	srv := startStandalone(t)
	c := redistest.Dial(t, srv.Addr())
	for _, args := range [][]string{
		{"EVAL", "return redis.call('get', 'k')", "0"},
		{"EVAL", "return redis.call('set', 'k', 'v')", "0"},
		{"EVAL", "return redis.call('get', 'k')", "0"},
		{"EVAL", "return redis.call('nope')", "0"},
	} {
		c.Do(args...)
	}
	info := c.Do("INFO", "commandstats")
	_, line, _ := strings.Cut(info, "cmdstat_eval:")
	line, _, _ = strings.Cut(line, "\r\n")
	if !strings.HasPrefix(line, "calls=4,") || !strings.HasSuffix(line, ",rejected_calls=0,failed_calls=1") {
		t.Errorf("cmdstat_eval: %q", line)
	}
}

// TestSpeculativeRunsConcurrently: scripts that only read run speculatively
// side by side under the shared lock, changing nothing the store shares
// (run under -race, it catches a write there).
func TestSpeculativeRunsConcurrently(t *testing.T) {
	srv := startStandalone(t)
	redistest.Dial(t, srv.Addr()).Do("SET", "k", "v")
	var wg sync.WaitGroup
	for range 4 {
		c := redistest.Dial(t, srv.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if r := c.Do("EVAL", "return redis.call('get', KEYS[1])", "1", "k"); r != "$1\r\nv\r\n" {
					t.Errorf("EVAL: %q", r)
					return
				}
			}
		}()
	}
	wg.Wait()
}
