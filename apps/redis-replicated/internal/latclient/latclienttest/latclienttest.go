// Package latclienttest is the end-to-end test the three latency clients
// (redis-puts-only, redis-gets-only, redis-puts-gets) share: each command's
// test binary runs itself as the tool (internal/clitest) and calls Run.
package latclienttest

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// Run tests the tool called name, whose test binary runs it through
// clitest.Main: a run against a real Redis, bad input, a leader redirect
// followed, and a hung replica passed over for one given by --replicas.
func Run(t *testing.T, name string) {
	t.Run("run", func(t *testing.T) { testRun(t, name) })
	t.Run("bad input", testBadInput)
	t.Run("redirect", testFollowsRedirect)
	t.Run("replicas", testReplicas)
}

func testRun(t *testing.T, name string) {
	host, port, _ := net.SplitHostPort(redistest.Start(t))
	dir := t.TempDir()
	out, errOut, err := clitest.Run(t, clitest.Cmd{Dir: dir, Args: []string{"--requests", "2000", "--hgrm", "x.hgrm", "16", "32", host, port}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "redis-cli.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2000 {
		t.Fatalf("%d lines in redis-cli.txt, want 2000", len(lines))
	}
	for _, l := range lines {
		if ns, err := strconv.ParseInt(l, 10, 64); err != nil || ns <= 0 {
			t.Fatalf("line %q is not a latency in ns", l)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.hgrm")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{name + ": 2000 requests (", " requests/s, 0 errors\n",
		name + ": faults: 0 timeouts, 0 broken connections, 0 redirects, 0 TRYAGAINs, 0 reconnects; 0 requests retried; longest stall ",
		name + " key=16 value=32 n=2000 p50="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func testBadInput(t *testing.T) {
	free, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no args", nil, "want 4 arguments"},
		{"three args", []string{"1", "2", "127.0.0.1"}, "want 4 arguments"},
		{"key size not a number", []string{"k", "2", "127.0.0.1", "1"}, "key_size \"k\" is not a number"},
		{"value size not a number", []string{"1", "2x", "127.0.0.1", "1"}, "value_size \"2x\" is not a number"},
		{"key size 0", []string{"0", "2", "127.0.0.1", "1"}, "key_size must be at least 1"},
		{"negative value size", []string{"1", "-2", "127.0.0.1", "1"}, "value_size must not be negative"},
		{"bad port", []string{"1", "2", "127.0.0.1", "70000"}, "not a TCP port"},
		{"zero requests", []string{"--requests", "0", "1", "2", "127.0.0.1", "1"}, "--requests must be at least 1"},
		{"bad replica", []string{"--replicas", "127.0.0.1:1,127.0.0.1", "1", "2", "127.0.0.1", "1"}, `--replicas: "127.0.0.1" is not host:port`},
		{"nobody listening", []string{"1", "2", "127.0.0.1", strconv.Itoa(free)}, "no replica reachable: 127.0.0.1:" + strconv.Itoa(free) + ": connect: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Timeout: 20 * time.Second})
			if err == nil {
				t.Fatalf("exit 0\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

// testFollowsRedirect points the tool at a fake replica that answers every
// command with redis-server-replicated's redirect to a real Redis.
func testFollowsRedirect(t *testing.T) {
	leader := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(conn)
				for {
					if _, err := resp.ReadReply(br, nil, 1<<20); err != nil {
						return
					}
					if _, err := conn.Write([]byte("-READONLY You can't write against a read only replica. leader=1 addr=" + leader + "\r\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	dir := t.TempDir()
	out, errOut, err := clitest.Run(t, clitest.Cmd{Dir: dir, Args: []string{"--requests", "500", "--out", "lat.txt", "8", "8", host, port}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, " 0 broken connections, 1 redirects, 0 TRYAGAINs, 1 reconnects;") {
		t.Fatalf("want one redirect followed:\n%s", out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "lat.txt"))
	if n := strings.Count(string(b), "\n"); n != 500 {
		t.Fatalf("%d latencies, want 500", n)
	}
}

// testReplicas gives the tool a replica that accepts connections but never
// answers, as a paused or stopped one does, and a real Redis through
// --replicas: the run passes over the first and ends on the second.
func testReplicas(t *testing.T) {
	redis := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // hold it open, say nothing
				<-done
				conn.Close()
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	out, errOut, err := clitest.Run(t, clitest.Cmd{Dir: t.TempDir(), Args: []string{
		"--requests", "200", "--timeout", "100ms", "--replicas", redis, "8", "8", host, port}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "; 2 replicas known, ended on "+redis+"\n") {
		t.Fatalf("want the run on %s:\n%s", redis, out)
	}
}
