// Package redistest gives tests a real Redis (Debian's redis-server) to
// compare gomu's replies with, and a raw RESP connection that returns each
// reply's exact bytes.
//
// Start runs one redis-server per call on a free loopback port with no
// persistence; the process is killed by the test's cleanup and dies with the
// test binary (parent-death signal). GOMU_TEST_REDIS=host:port points tests at
// an existing server instead (which they FLUSHALL). When no redis-server is
// installed, tests are skipped, except under CI=true, where that is a failure.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// EnvAddr names the variable that points tests at an existing Redis.
const EnvAddr = "GOMU_TEST_REDIS"

// Start returns the address of a fresh real Redis. It skips tb when there is
// none (fails it when CI=true).
func Start(tb testing.TB) string {
	tb.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		c := Dial(tb, a)
		c.Do("FLUSHALL")
		return a
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("real redis-server needed under CI=true (apt-get install redis-server): %v", err)
		}
		tb.Skipf("no redis-server: %v", err)
	}
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return startOn(tb, bin, port)
}

// StartOn starts a fresh real Redis on port (a test that restarts a
// Redis it shut down, on the same address). It skips tb when there is
// none (fails it when CI=true).
func StartOn(tb testing.TB, port int) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("real redis-server needed under CI=true (apt-get install redis-server): %v", err)
		}
		tb.Skipf("no redis-server: %v", err)
	}
	return startOn(tb, bin, port)
}

func startOn(tb testing.TB, bin string, port int) string {
	tb.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
		"--enable-debug-command", "local",
		// A SYNC makes Redis write its RDB file even without save points.
		"--dir", tb.TempDir())
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s not up after 10s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Conn is a raw RESP connection for tests.
type Conn struct {
	tb   testing.TB
	conn net.Conn
	br   *bufio.Reader
}

// Dial connects to addr; the connection is closed by tb's cleanup.
func Dial(tb testing.TB, addr string) *Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return &Conn{tb: tb, conn: c, br: bufio.NewReader(c)}
}

// Do sends one command and returns its reply's raw bytes. A transport
// error fails the test.
func (c *Conn) Do(args ...string) string {
	c.tb.Helper()
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	if err := c.Send(resp.AppendCommand(nil, b...)); err != nil {
		c.tb.Fatalf("send %q: %v", args, err)
	}
	r, err := c.Read()
	if err != nil {
		c.tb.Fatalf("reply to %q: %v", args, err)
	}
	return r
}

// Send writes raw bytes (several commands, garbage) with a deadline.
func (c *Conn) Send(raw []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(raw)
	return err
}

// Read reads one reply, with a deadline, and returns its raw bytes.
func (c *Conn) Read() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := resp.ReadReply(c.br, nil, 1<<30)
	return string(b), err
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }
