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

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func needRedis(t *testing.T) {
	t.Helper()
	for _, b := range []string{"/usr/bin/redis-server", "/usr/bin/redis-benchmark"} {
		if _, err := os.Stat(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s needed under CI=true: %v", b, err)
			}
			t.Skipf("no %s", b)
		}
	}
}

// checkDown fails t if anything still listens on port: every server must
// be gone when bench-redis has exited.
func checkDown(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("a server still listens on port %d after bench-redis exited", port)
	}
}

func TestRedisOnly(t *testing.T) {
	needRedis(t)
	base, err := freeRange()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: []string{"--targets", "redis", "--requests", "2000", "--keyspace", "100", "--ports", strconv.Itoa(base)}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+4+2 {
		t.Fatalf("want header, 4 rows, 2 summary lines:\n%s", out)
	}
	for _, l := range lines[1:5] {
		if f := strings.Fields(l); len(f) != 7 || f[0] != "redis" {
			t.Errorf("row %q", l)
		}
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "bench-redis replicated_rps=n/a redis_rps=") || !strings.Contains(last, " replicated_p50_us=n/a redis_p50_us=") {
		t.Fatalf("last line %q", last)
	}
	checkDown(t, base+20)
}

// fakeServer writes a stand-in for redis-server-replicated: a shell that
// starts a real redis-server on --port in the background and waits, so
// that only killing the whole process group stops it.
func fakeServer(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "redis-server-replicated")
	script := `#!/bin/sh
port=
while [ $# -gt 0 ]; do
	case "$1" in
	--port) port=$2; shift ;;
	--local) shift ;;
	esac
	shift
done
/usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
wait
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllTargetsWithFakeServer(t *testing.T) {
	needRedis(t)
	base, err := freeRange()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: []string{"--server", fakeServer(t), "--requests", "1000", "--ports", strconv.Itoa(base)}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{"\nreplicated  SET ", "\nstandalone  GET ", "\nredis       SET ",
		"\nbench-redis standalone_rps=", "\nbench-redis ratio replicated/redis rps=", "\nbench-redis replicated-standalone p50_us="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var rrps, drps, rp50, dp50 float64
	if n, err := fmt.Sscanf(lines[len(lines)-1], "bench-redis replicated_rps=%g redis_rps=%g replicated_p50_us=%g redis_p50_us=%g", &rrps, &drps, &rp50, &dp50); n != 4 || err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for _, p := range []int{base, base + 10, base + 20} {
		checkDown(t, p)
	}
}

func TestBadInput(t *testing.T) {
	needRedis(t)
	dir := t.TempDir()
	crash := filepath.Join(dir, "crash")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho no consensus today >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
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
		{"unknown target", []string{"--targets", "memcached"}, `unknown target "memcached"`},
		{"no targets", []string{"--targets", "redis", "--skip-redis"}, "no targets"},
		{"argument", []string{"extra"}, "no arguments expected"},
		{"no server binary", []string{"--targets", "standalone", "--server", filepath.Join(dir, "missing")}, "--server"},
		{"server crashes", []string{"--targets", "standalone", "--server", crash}, "no consensus today"},
		{"port taken", []string{"--targets", "redis", "--ports", strconv.Itoa(busy)}, "is taken"},
		{"bad requests", []string{"--targets", "redis", "--requests", "0"}, "must be positive"},
		{"no redis-benchmark", []string{"--targets", "redis", "--redis-benchmark", filepath.Join(dir, "missing")}, "--redis-benchmark"},
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

func TestInterruptStopsServers(t *testing.T) {
	needRedis(t)
	base, err := freeRange()
	if err != nil {
		t.Fatal(err)
	}
	// A server that never becomes ready keeps bench-redis waiting; SIGINT
	// must end the wait and the server's process group.
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+dir+"/child\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--targets", "standalone", "--server", hang, "--ports", strconv.Itoa(base))
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
		t.Fatal("bench-redis did not exit after SIGINT")
	}
	// The grandchild is reaped by init eventually; signal 0 on a zombie
	// still succeeds, so check /proc for its state instead. A kill is
	// delivered asynchronously: give it a moment to take effect.
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
