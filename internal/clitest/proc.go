package clitest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvRunMain is the variable that makes a re-executed test binary run the
// tool's main. Tests that start the tool through internal/cluster set it
// themselves (t.Setenv), so that the cluster's processes are the tool.
const EnvRunMain = envRunMain

// Proc is the tool running in the background, its output collected.
type Proc struct {
	Cmd            *exec.Cmd
	Stdout, Stderr *LineBuffer
	done           chan struct{}
	err            error // set when done is closed
}

// Start starts the tool with args in dir, env added to the test's
// environment; the test's cleanup kills it if it is still running (and so
// does the test binary's death), and logs its output if the test failed.
func Start(t testing.TB, dir string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(os.Args[0], args...), Stdout: &LineBuffer{}, Stderr: &LineBuffer{}, done: make(chan struct{})}
	p.Cmd.Env = append(append(os.Environ(), envRunMain+"=1"), env...)
	p.Cmd.Dir = dir
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%v stdout:\n%s\nstderr:\n%s", args, p.Stdout, p.Stderr)
		}
	})
	return p
}

// Wait waits for the process to exit and returns how it exited; it fails
// t if the process still runs after d.
func (p *Proc) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%v still running after %v", p.Cmd.Args[1:], d)
		return nil
	}
}

// LineBuffer collects a process's output for tests to wait on.
type LineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor waits until the output matches re, failing t after d.
func (b *LineBuffer) WaitFor(t testing.TB, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	WaitUntil(t, fmt.Sprintf("output matching %q", re), d, func() bool { return re.MatchString(b.String()) })
}

// WaitUntil polls cond every 20 ms until it holds, failing t after d; what
// names the condition in the failure.
func WaitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RunBounded runs another program with a deadline and returns its combined
// output; it fails t if the program outlives d.
func RunBounded(t testing.TB, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out LineBuffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v:\n%s", name, args, d, out.String())
	}
	return out.String(), err
}

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}
