package benchproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	b := NewTailBuffer(5)
	fmt.Fprint(b, "abc")
	fmt.Fprint(b, "defg")
	if got := b.String(); got != "cdefg" {
		t.Errorf("tail %q, want cdefg", got)
	}
}

func TestFreeBase(t *testing.T) {
	base, err := FreeBase(func(b int) []int { return []int{b, b + 3} })
	if err != nil {
		t.Fatal(err)
	}
	if err := PortsFree(base, base+3); err != nil {
		t.Error(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := PortsFree(l.Addr().(*net.TCPAddr).Port); err == nil || !strings.Contains(err.Error(), "is taken") {
		t.Errorf("PortsFree of a listening port: %v", err)
	}
	if _, err := FreeBase(func(b int) []int { return []int{b, 70000} }); err == nil {
		t.Error("FreeBase accepted port 70000")
	}
}

func TestFindBinary(t *testing.T) {
	if p, err := FindBinary("sh", "shell", ""); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Errorf("sh from PATH: %q, %v", p, err)
	}
	if p, err := FindBinary("sh", "shell", "/bin/sh"); err != nil || p != "/bin/sh" {
		t.Errorf("flag: %q, %v", p, err)
	}
	if _, err := FindBinary("sh", "shell", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.HasPrefix(err.Error(), "--shell: ") {
		t.Errorf("missing flag path: %v", err)
	}
	if _, err := FindBinary("no-such-binary-here", "thing", ""); err == nil || !strings.Contains(err.Error(), "pass --thing") {
		t.Errorf("missing binary: %v", err)
	}
}

// gone waits until pid has exited (or is a zombie).
func gone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d still running: %s", pid, b)
			return
		}
	}
}

// childOf writes a script that starts sleep in the background, records its
// pid in dir/child and waits for it.
func childOf(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "parent")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho started\nsleep 300 &\necho $! > "+dir+"/child\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readChild(t *testing.T, dir string) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the script did not start its child")
		}
	}
}

func TestRun(t *testing.T) {
	out, errOut, err := Run(context.Background(), 10*time.Second, "", "/bin/sh", "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\n" || errOut != "err\n" {
		t.Errorf("Run = %q, %q, %v", out, errOut, err)
	}
	_, _, err = Run(context.Background(), 10*time.Second, "", "/bin/sh", "-c", "echo why >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "why") {
		t.Errorf("failing run: %v", err)
	}
	// The deadline kills the whole group, the background child too.
	dir := t.TempDir()
	_, _, err = Run(context.Background(), 300*time.Millisecond, "", childOf(t, dir))
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("hanging run: %v", err)
	}
	gone(t, readChild(t, dir))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Run(ctx, time.Minute, "", "/bin/sh", "-c", "sleep 10"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func TestServer(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("parent", childOf(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	child := readChild(t, dir)
	calls := 0
	err = s.WaitReady(context.Background(), "addr", 5*time.Second, func(addr string, deadline time.Time) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("WaitReady: %v after %d probes", err, calls)
	}
	err = s.WaitReady(context.Background(), "addr", 100*time.Millisecond, func(string, time.Time) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "not ready within") || !strings.Contains(err.Error(), "started") {
		t.Errorf("WaitReady that times out: %v", err)
	}
	if err := s.Exited(); err != nil {
		t.Errorf("running server: %v", err)
	}
	s.Stop()
	gone(t, child)
	if err := s.Exited(); err == nil {
		t.Error("stopped server has not exited")
	}

	crash, err := Start("crash", "/bin/sh", "-c", "echo no consensus today; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	defer crash.Stop()
	err = crash.WaitReady(context.Background(), "addr", 5*time.Second, func(string, time.Time) error { return errors.New("down") })
	if err == nil || !strings.Contains(err.Error(), "no consensus today") {
		t.Errorf("WaitReady on a crashed server: %v", err)
	}
}
