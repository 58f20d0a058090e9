package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func needMemcached(t *testing.T) {
	t.Helper()
	for _, b := range []string{"/usr/bin/memcached", "/usr/bin/memcslap", "/usr/bin/memcaslap"} {
		if _, err := os.Stat(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s needed under CI=true: %v", b, err)
			}
			t.Skipf("no %s", b)
		}
	}
}

// latencyClients builds memcached-puts-only and memcached-gets-only into a
// temporary directory and returns the flags that name them.
func latencyClients(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../memcached-puts-only", "../memcached-gets-only")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the latency clients: %v\n%s", err, out)
	}
	return []string{"--puts-only", filepath.Join(dir, "memcached-puts-only"), "--gets-only", filepath.Join(dir, "memcached-gets-only")}
}

// checkDown fails t if anything still listens on port: every server must
// be gone when bench-memcached has exited.
func checkDown(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("a server still listens on port %d after bench-memcached exited", port)
	}
}

// small keeps an end-to-end run to a few seconds a target.
var small = []string{"--requests", "300", "--latency-requests", "300", "--memcaslap-time", "1s"}

// fakeServer writes a stand-in for memcached-replicated: a shell that
// starts Debian's memcached on -p in the background and waits, so that only
// killing the whole process group stops it. With --local, it serves on the
// third replica's port, as a cluster whose leader moved would.
func fakeServer(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "memcached-replicated")
	script := `#!/bin/sh
port=
local=
while [ $# -gt 0 ]; do
	case "$1" in
	-p) port=$2; shift ;;
	--local) local=1; shift ;;
	-m) shift ;;
	esac
	shift
done
[ -n "$local" ] && port=$((port + 2))
user=
[ "$(id -u)" = 0 ] && user="-u nobody"
/usr/bin/memcached -p "$port" -U 0 -l 127.0.0.1 $user &
wait
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllTargetsWithFakeServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every load generator against three servers")
	}
	needMemcached(t)
	base, err := benchproc.FreeBase(rangePorts)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"--server", fakeServer(t), "--ports", strconv.Itoa(base)}, small...), latencyClients(t)...)
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: args, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// Header, 3 targets × 7 runs, comparison header and 7 rows, 4 summary lines.
	if len(lines) != 1+21+8+4 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, l := range lines[1:22] {
		f := strings.Fields(l)
		if len(f) != 7 || f[3] == "failed" {
			t.Errorf("row %q", l)
		}
	}
	for _, want := range []string{"\nreplicated  memcslap   bin-get ", "\nstandalone  memcaslap  get9:set1 ", "\nmemcached   gets-only  get ",
		"\nmemcslap   set ", "\nbench-memcached ratio replicated/memcached ops=", "\nbench-memcached replicated-standalone p50_us="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var rops, mops, ratio, rp50, sp50, mp50 float64
	if n, err := fmt.Sscanf(lines[len(lines)-1], "bench-memcached replicated_ops=%g memcached_ops=%g ratio=%g replicated_p50_us=%g standalone_p50_us=%g memcached_p50_us=%g",
		&rops, &mops, &ratio, &rp50, &sp50, &mp50); n != 6 || err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if want := fmt.Sprintf("bench-memcached: replicated serves on port %d after ", base+2); !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	for _, p := range []int{base, base + 2, base + 10, base + 20} {
		checkDown(t, p)
	}
}

func TestBadInput(t *testing.T) {
	needMemcached(t)
	dir := t.TempDir()
	crash := filepath.Join(dir, "crash")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho no consensus today >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The latency clients never run in these cases: any file will do.
	clients := []string{"--puts-only", crash, "--gets-only", crash}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port - 20
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown target", []string{"--targets", "redis"}, `--targets: unknown "redis"`},
		{"no targets", []string{"--targets", "memcached", "--skip-memcached"}, "no targets"},
		{"argument", []string{"extra"}, "no arguments expected"},
		{"unknown test", []string{"--memcslap-tests", "set,mget"}, `--memcslap-tests: unknown "mget"`},
		{"bad requests", []string{"--requests", "0"}, "must be positive"},
		{"bad latency requests", []string{"--latency-requests", "-1"}, "must be positive"},
		{"bad memory", []string{"--memory", "0"}, "--memory must be positive"},
		{"short memcaslap", []string{"--memcaslap-time", "500ms"}, "at least 1s"},
		{"bad ports", []string{"--ports", "65530"}, "not all TCP ports"},
		{"no memcslap", []string{"--memcslap", filepath.Join(dir, "missing")}, "--memcslap"},
		{"no memcaslap", []string{"--memcaslap", filepath.Join(dir, "missing")}, "--skip-memcaslap"},
		{"no memcached", []string{"--targets", "memcached", "--memcached", filepath.Join(dir, "missing")}, "--memcached"},
		{"no server binary", []string{"--targets", "standalone", "--server", filepath.Join(dir, "missing")}, "--server"},
		{"no puts-only", []string{"--targets", "memcached", "--puts-only", filepath.Join(dir, "missing")}, "--puts-only"},
		{"server crashes", append([]string{"--targets", "standalone", "--server", crash}, clients...), "no consensus today"},
		{"port taken", append([]string{"--targets", "memcached", "--ports", strconv.Itoa(busy)}, clients...), "is taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Timeout: 30 * time.Second})
			if err == nil {
				t.Fatalf("exit 0\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

// TestFailedRunsAreRows runs against Debian memcached with latency clients
// that fail: their rows read failed, the rest is measured, the headline
// still comes last, and the exit status is 1.
func TestFailedRunsAreRows(t *testing.T) {
	needMemcached(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho cannot reach the leader >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--targets", "memcached", "--memcslap-tests", "set", "--skip-memcaslap", "--puts-only", broken, "--gets-only", broken}, small...)
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: args})
	if err == nil {
		t.Fatalf("exit 0\nstdout:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+3+2 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[1]); f[1] != "memcslap" || f[3] == "failed" {
		t.Errorf("memcslap row %q", lines[1])
	}
	for _, l := range lines[2:4] {
		if f := strings.Fields(l); f[3] != "failed" {
			t.Errorf("row %q should have failed", l)
		}
	}
	if !strings.HasPrefix(lines[5], "bench-memcached replicated_ops=n/a memcached_ops=n/a ratio=n/a ") || !strings.HasSuffix(lines[5], " memcached_p50_us=n/a") {
		t.Errorf("last line %q", lines[5])
	}
	if !strings.Contains(errOut, "2 failed") || !strings.Contains(errOut, "cannot reach the leader") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

func TestInterruptStopsServers(t *testing.T) {
	needMemcached(t)
	// A server that never becomes ready keeps bench-memcached waiting;
	// SIGINT must end the wait and the server's process group.
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+dir+"/child\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--targets", "standalone", "--server", hang, "--puts-only", hang, "--gets-only", hang)
	cmd.Env = append(os.Environ(), "GOMU_CLITEST_RUN_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; {
		if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the fake server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("interrupted run exited 0")
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("bench-memcached did not exit after SIGINT")
	}
	// A killed child may stay a zombie until init reaps it: look at its
	// state, and give the kill a moment to land.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("server's child %d still running: %s", child, b)
			break
		}
	}
}
