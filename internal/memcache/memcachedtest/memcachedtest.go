// Package memcachedtest gives tests a real memcached to run against, so the
// same test tables check the embedded server and memcached itself.
//
// Addr uses GOMU_TEST_MEMCACHED=host:port when set. Otherwise it starts one
// memcached per test binary on a free loopback port, the first time it is
// asked, and Stop (called from TestMain) kills it; the process also dies with
// the test binary (parent-death signal). When no memcached binary is found,
// tests are skipped, except under CI=true, where that is a failure.
package memcachedtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvAddr names the variable that points tests at an existing memcached.
const EnvAddr = "GOMU_TEST_MEMCACHED"

var (
	mu     sync.Mutex
	proc   *exec.Cmd
	addr   string
	stderr bytes.Buffer
	failed error
)

// Addr returns the address of a real memcached, starting one if needed.
// It skips tb when there is no memcached (fails it when CI=true).
func Addr(tb testing.TB) string {
	tb.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		return a
	}
	mu.Lock()
	defer mu.Unlock()
	if addr == "" && failed == nil {
		addr, failed = start()
	}
	if failed != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("real memcached needed under CI=true: %v", failed)
		}
		tb.Skipf("no real memcached: %v", failed)
	}
	return addr
}

func start() (string, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/memcached"); serr != nil {
			return "", fmt.Errorf("memcached not installed (apt-get install memcached): %w", err)
		}
		bin = "/usr/bin/memcached"
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	args := []string{"-p", strconv.Itoa(port), "-U", "0", "-l", "127.0.0.1", "-t", "1", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without -u
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	a := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", a, 100*time.Millisecond)
		if err == nil {
			c.Close()
			proc = cmd
			return a, nil
		}
		select {
		case werr := <-exited:
			return "", fmt.Errorf("memcached %v exited: %v: %s", args, werr, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return "", fmt.Errorf("memcached on %s not accepting after 5s: %v", a, err)
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Stop kills the memcached that Addr started, if any.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if proc != nil {
		_ = proc.Process.Kill()
		proc = nil
	}
	addr = ""
}
