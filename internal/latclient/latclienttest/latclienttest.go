// Package latclienttest is the end-to-end test the latency clients share
// (redis-puts-only, redis-gets-only, redis-puts-gets; memcached-puts-only,
// memcached-gets-only, memcached-puts-gets): each command's test binary
// runs itself as the tool (internal/clitest) and calls Run or
// RunMemcached.
package latclienttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// protocol is what the tests need of the tool's protocol.
type protocol struct {
	out   string                  // the default --out
	start func(testing.TB) string // a real server's address
	// embedded, if set, starts gomu's own server of the protocol, which
	// the tool must also run against.
	embedded func(testing.TB) string
	// readCommand reads one command off a connection.
	readCommand func(*bufio.Reader) error
	// notLeader is a gomu replica's redirect of any command to leader 1 at addr.
	notLeader func(addr string) string
	maxKey    int // the longest key; 0: none
}

var redisProtocol = protocol{
	out: "redis-cli.txt", start: redistest.Start,
	readCommand: func(br *bufio.Reader) error {
		_, err := resp.ReadReply(br, nil, 1<<20)
		return err
	},
	notLeader: func(addr string) string {
		return "-READONLY You can't write against a read only replica. leader=1 addr=" + addr + "\r\n"
	},
}

var memcachedProtocol = protocol{
	out: "memcached-cli.txt", start: memcachedtest.Addr, embedded: embeddedMemcache,
	readCommand: func(br *bufio.Reader) error {
		_, err := ReadMemcached(br)
		return err
	},
	notLeader: func(addr string) string {
		return "SERVER_ERROR gomu: not the leader leader=1 addr=" + addr + "\r\n"
	},
	maxKey: 250,
}

// embeddedMemcache starts internal/memcache's server, which speaks
// memcached's text protocol with the parser the replicated memcached uses.
func embeddedMemcache(tb testing.TB) string {
	srv, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// Run tests the Redis tool called name, whose test binary runs it through
// clitest.Main: a run against a real Redis, bad input, a leader redirect
// followed, and a hung replica passed over for one given by --replicas.
func Run(t *testing.T, name string) { run(t, name, redisProtocol) }

// RunMemcached is Run for the memcached tool called name, against a real
// memcached (internal/memcache/memcachedtest: skipped without one), the
// embedded server of internal/memcache, and fakes of gomu's replicated
// memcached.
func RunMemcached(t *testing.T, name string) {
	t.Cleanup(memcachedtest.Stop)
	run(t, name, memcachedProtocol)
}

func run(t *testing.T, name string, p protocol) {
	t.Run("run", func(t *testing.T) { testRun(t, name, p, p.start) })
	if p.embedded != nil {
		t.Run("run embedded", func(t *testing.T) { testRun(t, name, p, p.embedded) })
	}
	t.Run("bad input", func(t *testing.T) { testBadInput(t, p) })
	t.Run("redirect", func(t *testing.T) { testFollowsRedirect(t, p) })
	t.Run("replicas", func(t *testing.T) { testReplicas(t, p) })
}

func testRun(t *testing.T, name string, p protocol, start func(testing.TB) string) {
	host, port, _ := net.SplitHostPort(start(t))
	dir := t.TempDir()
	out, errOut, err := clitest.Run(t, clitest.Cmd{Dir: dir, Args: []string{"--requests", "2000", "--hgrm", "x.hgrm", "16", "32", host, port}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, p.out))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2000 {
		t.Fatalf("%d lines in %s, want 2000", len(lines), p.out)
	}
	for _, l := range lines {
		if ns, err := strconv.ParseInt(l, 10, 64); err != nil || ns <= 0 {
			t.Fatalf("line %q is not a latency in ns", l)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.hgrm")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wrote 2000 latencies to " + p.out + "\n", name + ": 2000 requests (", " requests/s, 0 errors\n",
		name + ": faults: 0 timeouts, 0 broken connections, 0 redirects, 0 TRYAGAINs, 0 reconnects; 0 requests retried; longest stall ",
		name + " key=16 value=32 n=2000 p50="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func testBadInput(t *testing.T, p protocol) {
	free, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	type badInput struct {
		name string
		args []string
		want string
	}
	var extra []badInput
	if p.maxKey > 0 {
		k := strconv.Itoa(p.maxKey + 1)
		extra = append(extra, badInput{"key too long", []string{k, "2", "127.0.0.1", "1"}, "key_size must be at most " + strconv.Itoa(p.maxKey)})
	}
	for _, tc := range append([]badInput{
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
	}, extra...) {
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
// command with a gomu replica's redirect to a real server.
func testFollowsRedirect(t *testing.T, p protocol) {
	leader := p.start(t)
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
					if err := p.readCommand(br); err != nil {
						return
					}
					if _, err := conn.Write([]byte(p.notLeader(leader))); err != nil {
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
// answers, as a paused or stopped one does, and a real server through
// --replicas: the run passes over the first and ends on the second.
func testReplicas(t *testing.T, p protocol) {
	server := p.start(t)
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
		"--requests", "200", "--timeout", "100ms", "--replicas", server, "8", "8", host, port}})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "; 2 replicas known, ended on "+server+"\n") {
		t.Fatalf("want the run on %s:\n%s", server, out)
	}
}

// ReadMemcached reads one command of memcached's text protocol, as far as
// the latency clients use it, and returns its words: a storage command's
// (set <key> <flags> <exptime> <bytes> [noreply]) as name, key and data
// block, any other's as they come (get <key>..., stats gomu, ...). It is
// for fake servers: it checks what a broken client would get wrong and no
// more.
func ReadMemcached(br *bufio.Reader) ([][]byte, error) {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, fmt.Errorf("command line %q not ended by CRLF", line)
	}
	args := bytes.Fields(line)
	if len(args) == 0 {
		return nil, errors.New("empty command line")
	}
	switch string(args[0]) {
	case "set", "add", "replace", "append", "prepend", "cas":
		if len(args) < 5 {
			return nil, fmt.Errorf("short storage command %q", line)
		}
		n, err := strconv.Atoi(string(args[4]))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad length in %q", line)
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			return nil, fmt.Errorf("data block of %q not ended by CRLF", line)
		}
		return [][]byte{args[0], args[1], data[:n]}, nil
	}
	return args, nil
}
