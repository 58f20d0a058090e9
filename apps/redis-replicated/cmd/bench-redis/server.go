package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// server is one started server process (for --local, the parent of the
// whole cluster) in its own process group.
type server struct {
	name string
	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startServer starts bin args in a new process group that the kernel kills
// if bench-redis dies (Pdeathsig), so that no server outlives a crashed or
// killed run.
func startServer(name, bin string, args ...string) (*server, error) {
	cmd := exec.Command(bin, args...)
	log := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	s := &server{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// stop ends the server's whole process group: SIGTERM, then SIGKILL if it
// is still there after a grace period. Replicas a --local server started
// are in the group too.
func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	// Also after a clean exit of the parent: a child may linger.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.done
}

// exited reports the server's exit, if it has exited, with its log.
func (s *server) exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v); its output:\n%s", s.name, s.err, s.log.String())
	default:
		return nil
	}
}

// waitReady waits until addr answers PING with +PONG and INFO replication
// with role:master, that is, until it is the leader and serves; deadline
// bounds the whole wait and every network call in it.
func (s *server) waitReady(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := s.exited(); err != nil {
			return err
		}
		if last = probe(addr, deadline); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s not ready within %v: %w; its output:\n%s", s.name, addr, timeout, last, s.log.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe checks PING and the replication role once.
func probe(addr string, deadline time.Time) error {
	d := min(time.Until(deadline), time.Second)
	if d <= 0 {
		d = time.Millisecond
	}
	conn, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(conn)
	do := func(args ...string) (string, error) {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		if _, err := conn.Write(resp.AppendCommand(nil, b...)); err != nil {
			return "", err
		}
		r, err := resp.ReadReply(br, nil, 1<<20)
		return string(r), err
	}
	r, err := do("PING")
	if err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	if r != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", r)
	}
	r, err = do("INFO", "replication")
	if err != nil {
		return fmt.Errorf("INFO replication: %w", err)
	}
	if !strings.Contains(r, "role:master") {
		return fmt.Errorf("not the leader yet: INFO replication answered %q", truncate(r, 200))
	}
	return nil
}

// portsFree checks that nothing listens on the ports a target needs, so
// that the readiness check cannot be fooled by some other server.
func portsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("port %d is taken: %w", p, err)
		}
		l.Close()
	}
	return nil
}

// findServer resolves the redis-server-replicated binary: the --server flag,
// else the one next to this executable (make bench-redis puts both in
// bin/), else PATH.
func findServer(flag string) (string, error) {
	const name = "redis-server-replicated"
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", fmt.Errorf("--server: %w", err)
		}
		return flag, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no %s next to bench-redis or in PATH (build it, or pass --server): %w", name, err)
	}
	return p, nil
}

// tailBuffer keeps the last max bytes written to it: a server's output for
// error messages, without growing for a long run.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// runBenchmark runs redis-benchmark --csv against addr in one setting and
// returns its rows. The run has its own process group and is killed with
// ctx (SIGINT, SIGTERM, --bench-timeout).
func runBenchmark(ctx context.Context, bin string, port int, s Setting, o options) ([]Row, error) {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "set,get",
		"-n", strconv.Itoa(o.requests), "-r", strconv.Itoa(o.keyspace), "-d", strconv.Itoa(o.dataSize),
		"-c", strconv.Itoa(s.Clients), "-P", strconv.Itoa(s.Pipeline), "--csv"}
	ctx, cancel := context.WithTimeout(ctx, o.benchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	errOut := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &out, errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s did not finish within %v (--bench-timeout)", bin, strings.Join(args, " "), o.benchTimeout)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, errOut.String())
	}
	rows, err := ParseCSV(&out)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, errOut.String())
	}
	return rows, nil
}
