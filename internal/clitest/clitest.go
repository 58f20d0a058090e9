// Package clitest runs a command's own test binary as the command, so the
// end-to-end tests of gomu's tools exercise the real main, including the
// --local modes that re-execute the binary for every process they start,
// without a separate build step.
//
//	func TestMain(m *testing.M) { clitest.Main(m, main) }
//
//	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: []string{"--local", "64", "1"}})
package clitest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// envRunMain tells a re-executed test binary to be the tool. Children the
// tool starts inherit it, which is what makes --local work under test.
const envRunMain = "GOMU_CLITEST_RUN_MAIN"

// DefaultTimeout bounds a run whose Cmd sets none: a hang detector, not a
// performance threshold.
const DefaultTimeout = 60 * time.Second

// Main runs the tests, or the tool's main when the binary was started by Run.
func Main(m *testing.M, main func()) {
	if os.Getenv(envRunMain) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Cmd is one run of the tool.
type Cmd struct {
	Args    []string
	Env     []string // added to the test's environment
	Stdin   string
	Dir     string // working directory; "" means a fresh temporary one
	Timeout time.Duration
}

// Run runs the tool and returns what it printed and how it exited. A run
// that outlives its timeout fails the test.
func Run(t testing.TB, c Cmd) (stdout, stderr string, err error) {
	t.Helper()
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], c.Args...)
	cmd.Env = append(append(os.Environ(), envRunMain+"=1"), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = strings.NewReader(c.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %v\nstdout:\n%s\nstderr:\n%s", c.Args, c.Timeout, out.String(), errb.String())
	}
	return out.String(), errb.String(), err
}

// ClosedAddr returns a loopback host:port nobody listens on (a port just
// freed), for tests of what a tool does when its registry is unreachable.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// UnreachableRegistry runs the tool with args and DORY_REGISTRY_IP naming a
// port nobody listens on, and fails the test unless the tool exits with an
// error that names the address as unreachable. The 15 s bound is a hang
// detector for a loaded machine (the registry gives up after its 3 s
// DialTimeout), not a timing assertion.
func UnreachableRegistry(t *testing.T, args ...string) {
	t.Helper()
	addr := ClosedAddr(t)
	start := time.Now()
	out, errOut, err := Run(t, Cmd{Args: args, Env: []string{"DORY_REGISTRY_IP=" + addr}, Timeout: 15 * time.Second})
	t.Logf("failed after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
	if err == nil {
		t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
	}
	if want := "registry " + addr + " unreachable"; !strings.Contains(errOut, want) {
		t.Fatalf("stderr does not say %q:\n%s", want, errOut)
	}
}
