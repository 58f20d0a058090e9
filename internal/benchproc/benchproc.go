// Package benchproc is the process handling the bench-* commands share
// (bench-redis, bench-memcached): servers started in process groups of
// their own that die with the benchmark, a readiness wait, free port
// ranges, binaries found next to the benchmark, and load generators run
// under a deadline.
package benchproc

import (
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
)

// Server is one started server process (for a --local cluster, the parent
// of all its replicas) in its own process group.
type Server struct {
	name string
	cmd  *exec.Cmd
	log  *TailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// Start starts bin args in a new process group that the kernel kills if the
// benchmark dies (Pdeathsig), so that no server outlives a crashed or
// killed run. Its output is kept for error messages (the last 16 KiB).
func Start(name, bin string, args ...string) (*Server, error) {
	cmd := exec.Command(bin, args...)
	log := NewTailBuffer(16 << 10)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	s := &Server{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Stop ends the server's whole process group: SIGTERM, then SIGKILL if it
// is still there after a grace period. Replicas a --local server started
// are in the group too.
func (s *Server) Stop() {
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

// Exited reports the server's exit, if it has exited, with its output.
func (s *Server) Exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v); its output:\n%s", s.name, s.err, s.log.String())
	default:
		return nil
	}
}

// WaitReady polls probe(addr, deadline) until it succeeds: the server
// serves as the benchmark needs (for a cluster, as the leader). timeout
// bounds the whole wait, and probe is to bound its network calls by
// deadline. It fails at once if the server exits or ctx ends.
func (s *Server) WaitReady(ctx context.Context, addr string, timeout time.Duration, probe func(addr string, deadline time.Time) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := s.Exited(); err != nil {
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

// DialTimeout is how long a probe may wait for its connection: at most a
// second, at least a millisecond, never past deadline.
func DialTimeout(deadline time.Time) time.Duration {
	d := min(time.Until(deadline), time.Second)
	if d <= 0 {
		d = time.Millisecond
	}
	return d
}

// PortsFree checks that nothing listens on the ports a target needs, so
// that a readiness check cannot be fooled by some other server.
func PortsFree(ports ...int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("port %d is taken: %w", p, err)
		}
		l.Close()
	}
	return nil
}

// FreeBase finds a base port P such that every port of ports(P), all at
// least P, is a TCP port and free now.
func FreeBase(ports func(base int) []int) (int, error) {
	for try := 0; try < 20; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ps := ports(p)
		fits := true
		for _, q := range ps {
			fits = fits && q <= 65535
		}
		if fits && PortsFree(ps...) == nil {
			return p, nil
		}
	}
	return 0, errors.New("found no range of free ports; pass --ports")
}

// FindBinary resolves a binary the benchmark starts: value, the path
// --flag gave, if not empty; else name next to this executable (make puts
// the benchmark and the binaries it runs together in bin/); else name in
// PATH.
func FindBinary(name, flag, value string) (string, error) {
	if value != "" {
		if _, err := os.Stat(value); err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		return value, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no %s next to %s or in PATH (build it, or pass --%s): %w", name, filepath.Base(os.Args[0]), flag, err)
	}
	return p, nil
}

// Run runs a load generator, bin args, in dir ("" for the current one) and
// returns its standard output and the tail of its standard error (16 KiB).
// It has its own process group, which is killed when ctx ends or timeout
// passes. A non-zero exit is an error that quotes the command and its
// standard error.
func Run(ctx context.Context, timeout time.Duration, dir, bin string, args ...string) (stdout []byte, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	errOut := NewTailBuffer(16 << 10)
	cmd.Stdout, cmd.Stderr = &out, errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	line := Quote(bin, args...)
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errOut.String(), fmt.Errorf("%s did not finish within %v (--bench-timeout)", line, timeout)
		}
		return nil, errOut.String(), ctx.Err()
	}
	if err != nil {
		return out.Bytes(), errOut.String(), fmt.Errorf("%s: %w\n%s", line, err, errOut.String())
	}
	return out.Bytes(), errOut.String(), nil
}

// Quote is a command line for messages.
func Quote(bin string, args ...string) string {
	return strings.Join(append([]string{bin}, args...), " ")
}

// TailBuffer keeps the last bytes written to it: a process's output for
// error messages, without growing for a long run.
type TailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

// NewTailBuffer keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
