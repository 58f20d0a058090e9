package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// Every wait below is bounded: these are hang detectors, not performance
// thresholds, generous because the test machines are small and shared.
const (
	runDeadline   = 60 * time.Second // one run of the tool that should end by itself
	startDeadline = 30 * time.Second // a server or cluster coming up
	stopDeadline  = 20 * time.Second // a server shutting down after a signal
)

// cleanEnv overrides the replica settings a developer's environment may
// hold, so that only what a test passes counts.
var cleanEnv = []string{"SID=", "DORY_REGISTRY_IP="}

func TestBadInput(t *testing.T) {
	// A port some other process is listening on, for the "in use" cases.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Not deferred: the parallel subtests run after this function returns.
	t.Cleanup(func() { busy.Close() })
	busyPort := busy.Addr().(*net.TCPAddr).Port
	// A port nobody listens on: a registry that refuses connections.
	closedPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	busyArg, closedArg := strconv.Itoa(busyPort), strconv.Itoa(closedPort)

	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"--frobnicate"}, "flag provided but not defined: -frobnicate"},
		{"flag without its value", nil, []string{"--standalone", "--port"}, "flag needs an argument"},
		{"port not a number", nil, []string{"--standalone", "--port", "x"}, `invalid value "x" for flag -port`},
		{"port out of range", nil, []string{"--standalone", "--port", "70000"}, "--port 70000 out of range"},
		{"local ports out of range", nil, []string{"--local", "3", "--port", "65534"}, "--port 65534 out of range"},
		{"positional argument", nil, []string{"--standalone", "extra"}, `unexpected arguments ["extra"]: everything is a flag`},
		{"no replica id", nil, []string{"--registry", "127.0.0.1:1"}, "no replica id: set SID or --sid"},
		{"sid not in ids", nil, []string{"--sid", "4", "--registry", "127.0.0.1:1"}, "SID 4 is not one of the ids [1 2 3]"},
		{"SID not in IDS", []string{"SID=1", "IDS=2,3,5"}, []string{"--registry", "127.0.0.1:1"}, "SID 1 is not one of the ids [2 3 5]"},
		{"bad ids", nil, []string{"--sid", "1", "--ids", "1,x", "--registry", "127.0.0.1:1"}, `"x" is not a replica id`},
		{"no registry", nil, []string{"--sid", "1"}, "no registry: set DORY_REGISTRY_IP or --registry"},
		{"local zero", nil, []string{"--local", "0"}, "--local 0: want a replica count"},
		{"local negative", nil, []string{"--local", "-1"}, "--local -1: want a replica count"},
		{"local too many", nil, []string{"--local", "16"}, "--local 16: at most 15 replicas"},
		{"standalone and local", nil, []string{"--standalone", "--local", "3"}, "--standalone and --local exclude each other"},
		{"max-batch too small", nil, []string{"--standalone", "--max-batch", "4095"}, "--max-batch 4095 must be from 4096 to a quarter of --ring"},
		{"max-batch over a quarter ring", nil, []string{"--standalone", "--ring", "1048576", "--max-batch", "262145"}, "--max-batch 262145 must be from 4096 to a quarter of --ring (262144)"},
		{"unknown profile", nil, []string{"--standalone", "--profile", "turbo"}, `unknown --profile "turbo"`},
		{"negative suspect timeout", nil, []string{"--standalone", "--suspect-timeout", "-1s"}, `--suspect-timeout -1s is negative`},
		{"unknown poll mode", nil, []string{"--standalone", "--poll", "busy"}, "--poll: "},
		{"unknown transport", nil, []string{"--sid", "1", "--registry", "127.0.0.1:1", "--transport", "pigeon"}, `unknown --transport "pigeon"`},
		{"zero timeout", nil, []string{"--standalone", "--timeout", "0s"}, "--timeout and --start-timeout must be positive"},
		{"appendonly not yes or no", nil, []string{"--standalone", "--appendonly", "maybe"}, `--appendonly "maybe": want yes or no`},
		{"unknown appendfsync", nil, []string{"--standalone", "--appendfsync", "sometimes"}, `--appendfsync "sometimes": want always, everysec or no`},
		{"appendfilename with a directory", nil, []string{"--standalone", "--appendfilename", "a/b.aof"}, `--appendfilename "a/b.aof": want a file name`},
		{"dbfilename with a directory", nil, []string{"--standalone", "--dbfilename", "a/b.rdb"}, `--dbfilename "a/b.rdb": want a file name`},
		{"aof dir missing", nil, []string{"--standalone", "--port", "0", "--appendonly", "yes", "--dir", "/nonexistent/gomu-aof"}, "/nonexistent/gomu-aof"},
		{"unknown follower-reads mode", nil, []string{"--standalone", "--follower-reads", "fresh"}, `--follower-reads "fresh": want linearizable or stale`},
		{"unreachable registry", nil,
			[]string{"--sid", "1", "--registry", "127.0.0.1:" + closedArg, "--port", "0", "--fifo", "-"},
			"registry 127.0.0.1:" + closedArg + " unreachable"},
		{"port in use, standalone", nil, []string{"--standalone", "--port", busyArg}, "address already in use"},
		{"port in use, replica", nil,
			[]string{"--sid", "1", "--registry", "127.0.0.1:" + closedArg, "--port", busyArg, "--fifo", "-"}, "address already in use"},
		// The second replica's port is taken: the launcher must stop the
		// first and third and report it, not wait for a cluster that
		// cannot form.
		{"port in use, local", nil, []string{"--local", "3", "--port", strconv.Itoa(busyPort - 1), "--start-timeout", "10s"}, "address already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Env: append(cleanEnv, tc.env...), Timeout: runDeadline})
			if err == nil {
				t.Fatalf("exited 0, want failure\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr does not say %q:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
			if strings.Contains(out, "listening on") {
				t.Fatalf("a failed start claims to be serving:\n%s", out)
			}
		})
	}
}

// TestUnreachableRegistry: with DORY_REGISTRY_IP naming a port nobody
// listens on, a replica fails within seconds (the registry's DialTimeout;
// it used to retry for the whole 30 s --start-timeout), saying which
// address is unreachable, and never claims to be serving. The 15 s bound is
// a hang detector generous enough for a loaded machine, not a timing
// assertion.
func TestUnreachableRegistry(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	start := time.Now()
	out, errOut, err := clitest.Run(t, clitest.Cmd{
		Args:    []string{"--port", "0", "--fifo", "-"},
		Env:     append(cleanEnv, "SID=1", "DORY_REGISTRY_IP="+addr),
		Timeout: 15 * time.Second,
	})
	t.Logf("failed after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
	if err == nil {
		t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
	}
	if want := "registry " + addr + " unreachable"; !strings.Contains(errOut, want) {
		t.Fatalf("stderr does not say %q:\n%s", want, errOut)
	}
	if strings.Contains(out, "listening on") {
		t.Fatalf("a failed start claims to be serving:\n%s", out)
	}
}

func TestStandalone(t *testing.T) {
	port := clitest.FreePorts(t, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := clitest.Start(t, t.TempDir(), cleanEnv, "--standalone", "--port", strconv.Itoa(port))
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^redis-server-replicated pid `+strconv.Itoa(p.Cmd.Process.Pid)+`$`), startDeadline)
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(addr)+` as standalone$`), startDeadline)

	c := redistest.Dial(t, addr)
	for _, tc := range []struct{ args, want string }{
		{"PING", "+PONG\r\n"},
		{"SET k v1", "+OK\r\n"},
		{"GET k", "$2\r\nv1\r\n"},
		{"INCR n", ":1\r\n"},
		{"GET missing", "$-1\r\n"},
	} {
		if got := c.Do(strings.Fields(tc.args)...); got != tc.want {
			t.Fatalf("%s: got %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := c.Do("INFO", "replication"); !strings.Contains(got, "role:master\r\n") || !strings.Contains(got, "gomu_mode:standalone\r\n") {
		t.Fatalf("INFO replication of a standalone server:\n%s", got)
	}
	// SIGUSR1 on a server that replicates nothing still writes the dump.
	if err := p.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.Stderr.WaitFor(t, regexp.MustCompile(`wrote dump-0\.txt \(0 proposals\)`), stopDeadline)

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(t, stopDeadline); err != nil {
		t.Fatalf("SIGTERM: %v, want exit 0\nstderr:\n%s", err, p.Stderr)
	}
}

// TestStandaloneAOFRestart: a standalone server with --appendonly yes
// comes back from its file with the state it had, random writes and all.
func TestStandaloneAOFRestart(t *testing.T) {
	dir := t.TempDir()
	var want string
	for run := range 2 {
		port := clitest.FreePorts(t, 1)[0]
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p := clitest.Start(t, t.TempDir(), cleanEnv, "--standalone", "--port", strconv.Itoa(port),
			"--appendonly", "yes", "--dir", dir, "--appendfsync", "always")
		p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(addr)+` as standalone$`), startDeadline)
		c := redistest.Dial(t, addr)
		if run == 0 {
			for _, args := range [][]string{{"SET", "k", "v"}, {"SADD", "s", "a", "b", "c", "d"}, {"SPOP", "s"},
				{"XADD", "x", "*", "f", "v"}, {"EXPIRE", "k", "1000"}} {
				if r := c.Do(args...); strings.HasPrefix(r, "-") {
					t.Fatalf("%q: %q", args, r)
				}
			}
			want = c.Do("DEBUG", "DIGEST")
		} else if got := c.Do("DEBUG", "DIGEST"); got != want {
			t.Fatalf("digest after restarting from the file %q, before %q", got, want)
		}
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(t, stopDeadline); err != nil {
			t.Fatalf("SIGTERM: %v, want exit 0\nstderr:\n%s", err, p.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonly.aof")); err != nil {
		t.Fatal(err)
	}
}

// TestStandaloneShutdown: SHUTDOWN ends the process cleanly without a
// reply; with SAVE it first writes the RDB file, which the next start
// loads (and without, the file of the SAVE before stays as it was).
func TestStandaloneShutdown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shutdown []string
		kept     string // the value k has after the restart
	}{
		{"SHUTDOWN SAVE", []string{"SHUTDOWN", "SAVE"}, "$6\r\nsecond\r\n"},
		{"SHUTDOWN", []string{"SHUTDOWN"}, "$5\r\nfirst\r\n"},
		{"SHUTDOWN NOSAVE NOW FORCE", []string{"SHUTDOWN", "NOSAVE", "NOW", "FORCE"}, "$5\r\nfirst\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for run := range 2 {
				port := clitest.FreePorts(t, 1)[0]
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				p := clitest.Start(t, t.TempDir(), cleanEnv, "--standalone", "--port", strconv.Itoa(port),
					"--dir", dir, "--dbfilename", "my.rdb")
				p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(addr)+` as standalone$`), startDeadline)
				c := redistest.Dial(t, addr)
				if run == 1 {
					if got := c.Do("GET", "k"); got != tc.kept {
						t.Fatalf("after the restart GET k %q, want %q", got, tc.kept)
					}
					shutdownClosed(t, c, "SHUTDOWN", "NOSAVE")
				} else {
					for _, args := range [][]string{{"SET", "k", "first"}, {"SAVE"}, {"SET", "k", "second"}} {
						if r := c.Do(args...); strings.HasPrefix(r, "-") {
							t.Fatalf("%q: %q", args, r)
						}
					}
					shutdownClosed(t, c, tc.shutdown...)
				}
				if err := p.Wait(t, stopDeadline); err != nil {
					t.Fatalf("SHUTDOWN: %v, want exit 0\nstderr:\n%s", err, p.Stderr)
				}
			}
		})
	}
}

// shutdownClosed sends a SHUTDOWN and fails unless the connection closes
// without a reply.
func shutdownClosed(t *testing.T, c *redistest.Conn, args ...string) {
	t.Helper()
	cmd := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.Send([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(); err == nil {
		t.Fatalf("%q replied %q", args, r)
	}
}

func TestSignalWhileStarting(t *testing.T) {
	// A replica waiting for peers that never come must give up on SIGTERM.
	srv := listenRegistry(t)
	p := clitest.Start(t, t.TempDir(), cleanEnv, "--sid", "1", "--registry", srv, "--port", "0", "--fifo", "-", "--start-timeout", "1m")
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^redis-server-replicated pid \d+$`), startDeadline)
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.Wait(t, stopDeadline)
	if err == nil || !strings.Contains(p.Stderr.String(), "interrupted by terminated while starting") {
		t.Fatalf("SIGTERM while starting: %v\nstderr:\n%s", err, p.Stderr)
	}
}

// replicaCluster is three replicas started as separate processes of this
// test binary through internal/cluster, as --local does.
type replicaCluster struct {
	*cluster.Cluster
	addrs  map[int]string      // client addresses by replica id
	stdout *clitest.LineBuffer // the stdout of the replica named watch
	stderr *clitest.LineBuffer // every replica's stderr, lines prefixed "[<id>] "
}

// startCluster starts replicas 1, 2 and 3 (1 leads) in dir and waits until
// each answers PING. name must differ between the clusters of one test
// binary: it names their shm fabric. watch names the replica whose
// standard output is kept.
func startCluster(t *testing.T, name, dir string, watch int, extra ...string) *replicaCluster {
	t.Helper()
	t.Setenv(clitest.EnvRunMain, "1")
	ids := []int{1, 2, 3}
	rc := &replicaCluster{addrs: map[int]string{}, stdout: &clitest.LineBuffer{}, stderr: &clitest.LineBuffer{}}
	ports := clitest.FreePorts(t, len(ids))
	for i, id := range ids {
		rc.addrs[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
	}
	c, err := cluster.Start(t.Context(), cluster.Spec{
		Name:   name,
		IDs:    ids,
		Leader: watch,
		Dir:    dir,
		Stdout: rc.stdout,
		Stderr: rc.stderr,
		Args: func(n cluster.Node) []string {
			return append([]string{
				"--sid", strconv.Itoa(n.ID), "--ids", "1,2,3", "--registry", n.Registry,
				"--transport", "shm", "--device", n.Fabric, "--port", strconv.Itoa(ports[n.ID-1]),
				"--fifo", n.Fifo, "--timeout", "2s", "--start-timeout", "20s", "--verbose",
			}, extra...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rc.Cluster = c
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("replicas' stderr:\n%s", rc.stderr)
		}
	})
	for _, id := range ids {
		waitPong(t, rc.addrs[id], startDeadline)
	}
	return rc
}

func TestReplicas(t *testing.T) {
	dir := t.TempDir()
	// No fail-over here: a leader starved for the relaxed profile's 100 ms
	// under a loaded CI (-race, test binaries in parallel, redis-benchmark)
	// was once deposed mid-benchmark, whose clients cannot follow a
	// READONLY redirect.
	rc := startCluster(t, "rsr-test-replicas", dir, 1, "--suspect-timeout", "2s")
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^redis-server-replicated pid \d+$`), startDeadline)
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(rc.addrs[1])+` as leader$`), startDeadline)

	leader := redistest.Dial(t, rc.addrs[1])
	f2, f3 := redistest.Dial(t, rc.addrs[2]), redistest.Dial(t, rc.addrs[3])
	writes := 0
	set := func(k, v string) {
		t.Helper()
		if got := leader.Do("SET", k, v); got != "+OK\r\n" {
			t.Fatalf("SET %s on the leader: %q", k, got)
		}
		writes++
	}
	set("greeting", "hello")
	// The leader commits eagerly and a follower's read waits for what its
	// header knows committed: the write is visible at once, no retry.
	for id, f := range map[int]*redistest.Conn{2: f2, 3: f3} {
		if got := f.Do("GET", "greeting"); got != "$5\r\nhello\r\n" {
			t.Fatalf("GET on replica %d: %q, want hello", id, got)
		}
	}
	wantRO := "-READONLY You can't write against a read only replica. leader=1 addr=" + rc.addrs[1] + "\r\n"
	if got := f2.Do("SET", "greeting", "bye"); got != wantRO {
		t.Fatalf("SET on replica 2: %q, want %q", got, wantRO)
	}
	if got := f3.Do("INCR", "counter"); got != wantRO {
		t.Fatalf("INCR on replica 3: %q, want %q", got, wantRO)
	}
	if got := f2.Do("INFO", "replication"); !strings.Contains(got, "role:slave\r\n") || !strings.Contains(got, "gomu_leader_id:1\r\n") {
		t.Fatalf("INFO replication on replica 2:\n%s", got)
	}
	for i := range 50 {
		set(fmt.Sprintf("k%d", i), strconv.Itoa(i))
	}
	if got := f3.Do("GET", "k49"); got != "$2\r\n49\r\n" {
		t.Fatalf("GET k49 on replica 3: %q", got)
	}

	// SIGUSR1: one line per proposal the leader replicated.
	if err := rc.Signal(1, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rc.stderr.WaitFor(t, regexp.MustCompile(`(?m)^\[1\] redis-server-replicated: wrote dump-1\.txt`), stopDeadline)
	data, err := os.ReadFile(filepath.Join(dir, "dump-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < writes {
		t.Fatalf("dump-1.txt has %d lines, want at least one per write (%d)", len(lines), writes)
	}
	for _, l := range lines {
		if ns, err := strconv.ParseInt(l, 10, 64); err != nil || ns <= 0 {
			t.Fatalf("dump-1.txt line %q is not a positive ns count", l)
		}
	}

	t.Run("redis-benchmark", func(t *testing.T) {
		if testing.Short() {
			t.Skip("redis-benchmark runs for seconds")
		}
		bin, err := exec.LookPath("redis-benchmark")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("redis-benchmark needed under CI=true (apt-get install redis-tools): %v", err)
			}
			t.Skipf("no redis-benchmark: %v", err)
		}
		host, port, _ := net.SplitHostPort(rc.addrs[1])
		out, err := clitest.RunBounded(t, runDeadline*2, bin, "-h", host, "-p", port, "-q", "-n", "10000")
		if err != nil {
			t.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
		if strings.Contains(out, "ERR") || strings.Contains(strings.ToLower(out), "error") {
			t.Fatalf("redis-benchmark reported errors:\n%s", out)
		}
		if !strings.Contains(out, "MSET") {
			t.Fatalf("redis-benchmark did not run its whole default set:\n%s", out)
		}
		// The followers replicated the benchmark too.
		want := leader.Do("DEBUG", "DIGEST")
		waitEqual(t, func() string { return f3.Do("DEBUG", "DIGEST") }, want, stopDeadline)
	})

	// SIGTERM stops a replica cleanly (exit 0), even a follower whose
	// leader is still running.
	if err := rc.Signal(3, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-rc.Exits():
		if e.ID != 3 || e.Err != nil {
			t.Fatalf("after SIGTERM to replica 3: replica %d exited with %v", e.ID, e.Err)
		}
	case <-time.After(stopDeadline):
		t.Fatalf("replica 3 still running %v after SIGTERM", stopDeadline)
	}
}

// TestFailover stops the leader, replica 1, in the middle of a stream of
// writes, outright (SIGKILL) or asking it to (SIGTERM): a survivor takes
// over, every write acknowledged before or after stays readable, and the
// survivors converge.
func TestFailover(t *testing.T) {
	tests := []struct {
		name    string
		cluster string // the shm fabric's name, distinct per cluster
		sig     syscall.Signal
	}{
		{"kill -9", "rsr-test-kill", syscall.SIGKILL},
		{"SIGTERM", "rsr-test-term", syscall.SIGTERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testFailover(t, tc.cluster, tc.sig) })
	}
}

func testFailover(t *testing.T, name string, sig syscall.Signal) {
	// Replica 2's stdout is kept: it follows, then leads.
	rc := startCluster(t, name, t.TempDir(), 2)
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(rc.addrs[2])+` as follower$`), startDeadline)
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^Reading pump started$`), startDeadline)

	// Several clients, so that the leader fails with proposals in flight.
	w := &writer{addrs: []string{rc.addrs[1], rc.addrs[2], rc.addrs[3]}, stop: make(chan struct{})}
	for n := range 4 {
		w.wg.Add(1)
		go w.run(n)
	}
	stopWriter := sync.OnceFunc(func() { close(w.stop); w.wg.Wait() })
	defer stopWriter()

	clitest.WaitUntil(t, "the writers' first 200 acknowledged writes", startDeadline, func() bool { return w.ackedCount() >= 200 })
	if err := rc.Signal(1, sig); err != nil {
		t.Fatal(err)
	}
	killedAt := w.ackedCount()
	select {
	case e := <-rc.Exits():
		// A replica asked to stop exits 0 even with clients writing.
		if e.ID != 1 || (sig == syscall.SIGTERM) != (e.Err == nil) {
			t.Fatalf("after %v to replica 1: replica %d exited with %v", sig, e.ID, e.Err)
		}
	case <-time.After(stopDeadline):
		t.Fatalf("replica 1 still running %v after %v", stopDeadline, sig)
	}

	var newLeader int
	clitest.WaitUntil(t, "a new leader", startDeadline, func() bool {
		for _, id := range []int{2, 3} {
			if r, err := do(rc.addrs[id], "INFO", "replication"); err == nil && strings.Contains(r, "role:master\r\n") {
				newLeader = id
				return true
			}
		}
		return false
	})
	// The writers followed the redirects to the new leader.
	clitest.WaitUntil(t, "writes acknowledged after the fail-over", startDeadline, func() bool { return w.ackedCount() >= killedAt+200 })
	stopWriter()
	if w.err != nil {
		t.Fatal(w.err)
	}
	t.Logf("%d writes acknowledged, %d before the signal; replica %d took over", len(w.acked), killedAt, newLeader)

	// Every acknowledged write survived, pipelined 100 GETs at a time.
	c := redistest.Dial(t, rc.addrs[newLeader])
	for i := 0; i < len(w.acked); i += 100 {
		chunk := w.acked[i:min(i+100, len(w.acked))]
		var req []byte
		for _, k := range chunk {
			req = resp.AppendCommand(req, []byte("GET"), []byte(k))
		}
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
		for _, k := range chunk {
			got, err := c.Read()
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("$%d\r\n%s\r\n", len(k), k); got != want {
				t.Fatalf("GET %s on the new leader %d: %q, want %q (acknowledged before it took over)", k, newLeader, got, want)
			}
		}
	}
	// The survivors converge on the same keyspace.
	other := 5 - newLeader
	want, err := do(rc.addrs[newLeader], "DEBUG", "DIGEST")
	if err != nil || !strings.HasPrefix(want, "$64\r\n") {
		t.Fatalf("DEBUG DIGEST on replica %d: %q, %v", newLeader, want, err)
	}
	waitEqual(t, func() string { r, _ := do(rc.addrs[other], "DEBUG", "DIGEST"); return r }, want, stopDeadline)
}

// writer runs clients that set unique keys, each to its own name, on
// whichever replica leads, as clients of a Redis fail-over would: they
// follow READONLY redirects, try the next replica when one does not answer,
// and retry on TRYAGAIN. acked holds the keys a leader answered OK.
type writer struct {
	addrs []string
	stop  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	acked []string
	err   error // the first unexpected reply; it ends that client's run
}

var readOnlyRE = regexp.MustCompile(`^-READONLY .* leader=(\d+|none)(?: addr=(\S+))?\r\n$`)

func (w *writer) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// run is client n.
func (w *writer) run(n int) {
	defer w.wg.Done()
	var c *client
	target, next := w.addrs[0], n%len(w.addrs)
	// retarget switches to addr, or to the next replica in turn when addr
	// is "", after a pause: no replica is hammered while it fails over.
	retarget := func(addr string) {
		if c != nil {
			c.close()
			c = nil
		}
		if addr == "" {
			next = (next + 1) % len(w.addrs)
			addr = w.addrs[next]
		}
		target = addr
		select {
		case <-w.stop:
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i := 0; ; {
		select {
		case <-w.stop:
			if c != nil {
				c.close()
			}
			return
		default:
		}
		if c == nil {
			var err error
			if c, err = dial(target); err != nil {
				retarget("")
				continue
			}
		}
		key := fmt.Sprintf("fo:%d:%06d", n, i)
		r, err := c.do("SET", key, key)
		switch {
		case err != nil:
			retarget("")
		case r == "+OK\r\n":
			w.mu.Lock()
			w.acked = append(w.acked, key)
			w.mu.Unlock()
			i++
		case strings.HasPrefix(r, "-TRYAGAIN "):
			retarget(target)
		case strings.HasPrefix(r, "-READONLY "):
			m := readOnlyRE.FindStringSubmatch(r)
			if m == nil {
				w.fail(fmt.Errorf("SET %s on %s: malformed READONLY %q", key, target, r))
				return
			}
			retarget(m[2]) // "" with leader=none: try the next replica
		default:
			w.fail(fmt.Errorf("SET %s on %s: %q", key, target, r))
			return
		}
	}
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func TestLocalCluster(t *testing.T) {
	ports := freeConsecutivePorts(t, 3)
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports+i))
	}
	p := clitest.Start(t, t.TempDir(), cleanEnv, "--local", "3", "--port", strconv.Itoa(ports), "--start-timeout", "20s")
	// The launcher forwards replica 1's output.
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(addrs[0])+` as leader$`), startDeadline)
	for _, a := range addrs {
		waitPong(t, a, startDeadline)
	}
	if r, err := do(addrs[0], "SET", "k", "v"); err != nil || r != "+OK\r\n" {
		t.Fatalf("SET on replica 1: %q, %v", r, err)
	}
	if r, err := do(addrs[2], "GET", "k"); err != nil || r != "$1\r\nv\r\n" {
		t.Fatalf("GET on replica 3: %q, %v", r, err)
	}

	if err := p.Cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// Ctrl-C is how a served cluster ends: the launcher stops every
	// replica and exits 0.
	if err := p.Wait(t, stopDeadline); err != nil {
		t.Errorf("launcher after SIGINT: %v", err)
	}
	if !strings.Contains(p.Stderr.String(), "stopping every replica") {
		t.Errorf("launcher's stderr after SIGINT:\n%s", p.Stderr)
	}
	for _, a := range addrs {
		clitest.WaitUntil(t, a+" to stop answering", stopDeadline, func() bool {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return true
			}
			c.Close()
			return false
		})
	}
}

// waitEqual waits until get returns want.
func waitEqual(t *testing.T, get func() string, want string, d time.Duration) {
	t.Helper()
	var got string
	deadline := time.Now().Add(d)
	for got = get(); got != want; got = get() {
		if time.Now().After(deadline) {
			t.Fatalf("got %q for %v, want %q", got, d, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPong waits until addr answers PING: a replica listens before it has
// joined its cluster but serves only after.
func waitPong(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	clitest.WaitUntil(t, addr+" answering PING", d, func() bool {
		r, err := do(addr, "PING")
		return err == nil && r == "+PONG\r\n"
	})
}

// client is a RESP connection that reports errors instead of failing the
// test, for goroutines and for servers that may be down.
type client struct {
	nc net.Conn
	br *bufio.Reader
}

func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	return &client{nc: nc, br: bufio.NewReader(nc)}, nil
}

// do sends one command and returns its raw reply. The deadline outlasts
// the servers' --timeout of 2 s, so a slow proposal gets its TRYAGAIN.
func (c *client) do(args ...string) (string, error) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(resp.AppendCommand(nil, b...)); err != nil {
		return "", err
	}
	r, err := resp.ReadReply(c.br, nil, 1<<20)
	return string(r), err
}

func (c *client) close() { c.nc.Close() }

// do runs one command on a fresh connection to addr.
func do(addr string, args ...string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.close()
	return c.do(args...)
}

// listenRegistry starts an embedded registry and returns its address.
func listenRegistry(t *testing.T) string {
	t.Helper()
	srv, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// freeConsecutivePorts returns the first of n consecutive ports that were
// all free a moment ago, as --local needs.
func freeConsecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		first := clitest.FreePorts(t, 1)[0]
		if first+n-1 > 65535 {
			continue
		}
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first+i)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
