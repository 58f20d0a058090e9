package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/cluster"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// Hang detectors, not performance thresholds.
const (
	startDeadline = 30 * time.Second
	stopDeadline  = 20 * time.Second
	runDeadline   = 120 * time.Second
)

func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"udp", []string{"--standalone", "-U", "11211"}, "UDP is not served"},
		{"item size", []string{"--standalone", "-I", "12x"}, "want a positive size"},
		{"item too small", []string{"--standalone", "-I", "100"}, "at least 1 KiB"},
		{"item over half memory", []string{"--standalone", "-m", "2", "-I", "2m"}, "cannot exceed half"},
		{"item over batch", []string{"--standalone", "-I", "4m", "--max-batch", "2097152"}, "raise --max-batch"},
		{"no connections", []string{"--standalone", "-c", "0"}, "want at least one connection"},
		{"no memory", []string{"--standalone", "-m", "0"}, "at least 1 megabyte"},
		{"local zero", []string{"--local", "0"}, "want a replica count"},
		{"local and standalone", []string{"--local", "3", "--standalone"}, "exclude each other"},
		{"no sid", []string{}, "no replica id"},
		{"sid not in ids", []string{"--sid", "4", "--ids", "1,2,3"}, "not one of the ids"},
		{"no registry", []string{"--sid", "1"}, "no registry"},
		{"transport", []string{"--sid", "1", "--registry", "127.0.0.1:1", "--transport", "udp"}, "unknown --transport"},
		{"follower reads", []string{"--standalone", "--follower-reads", "maybe"}, "want linearizable or stale"},
		{"argument", []string{"--standalone", "extra"}, "everything is a flag"},
		{"port", []string{"--standalone", "-p", "70000"}, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Env: []string{"SID=", "DORY_REGISTRY_IP="}})
			if err == nil || !strings.Contains(errOut, tc.want) {
				t.Fatalf("err %v, stderr %q, want %q", err, errOut, tc.want)
			}
		})
	}
}

func TestUnreachableRegistry(t *testing.T) {
	clitest.UnreachableRegistry(t, "--sid", "1", "--ids", "1,2,3", "--start-timeout", "10s")
}

// TestStandalone: the baseline serves, prints its PID, and shuts down on
// SIGTERM.
func TestStandalone(t *testing.T) {
	port := clitest.FreePorts(t, 1)[0]
	p := clitest.Start(t, t.TempDir(), []string{"SID=", "DORY_REGISTRY_IP="}, "--standalone", "-p", strconv.Itoa(port))
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^memcached-replicated pid \d+$`), startDeadline)
	p.Stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on .* as standalone$`), startDeadline)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if got := roundTrip(t, addr, "set k 0 0 1\r\nv\r\nget k\r\n", "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"); got != "" {
		t.Fatal(got)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(t, stopDeadline); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

type replicaCluster struct {
	*cluster.Cluster
	addrs  map[int]string
	stdout *clitest.LineBuffer
	stderr *clitest.LineBuffer
}

// startCluster starts replicas 1, 2 and 3 (1 leads) as processes of this
// binary and waits until each serves; watch names the replica whose
// standard output is kept.
func startCluster(t *testing.T, name, dir string, watch int, extra ...string) *replicaCluster {
	t.Helper()
	t.Setenv(clitest.EnvRunMain, "1")
	ids := []int{1, 2, 3}
	rc := &replicaCluster{addrs: map[int]string{}, stdout: &clitest.LineBuffer{}, stderr: &clitest.LineBuffer{}}
	ports := clitest.FreePorts(t, len(ids))
	for i, id := range ids {
		rc.addrs[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
	}
	c, err := cluster.Start(t.Context(), cluster.Spec{
		Name: name, IDs: ids, Leader: watch, Dir: dir, Stdout: rc.stdout, Stderr: rc.stderr,
		Args: func(n cluster.Node) []string {
			return append([]string{
				"--sid", strconv.Itoa(n.ID), "--ids", "1,2,3", "--registry", n.Registry,
				"--transport", "shm", "--device", n.Fabric, "-p", strconv.Itoa(ports[n.ID-1]),
				"--fifo", n.Fifo, "--timeout", "2s", "--start-timeout", "20s", "--verbose",
			}, extra...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rc.Cluster = c
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("replicas' stderr:\n%s", rc.stderr)
		}
	})
	for _, id := range ids {
		clitest.WaitUntil(t, rc.addrs[id]+" serving", startDeadline, func() bool {
			return roundTrip(t, rc.addrs[id], "version\r\n", "VERSION 1.6.18-gomu\r\n") == ""
		})
	}
	return rc
}

// TestReplicas: PID and role lines, follower reads, the not-the-leader
// error, memccapable's ascii and binary checks against the leader, and the
// SIGUSR1 dump.
func TestReplicas(t *testing.T) {
	dir := t.TempDir()
	rc := startCluster(t, "mcr-test-replicas", dir, 1, "--suspect-timeout", "2s")
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^memcached-replicated pid \d+$`), startDeadline)
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^listening on `+regexp.QuoteMeta(rc.addrs[1])+` as leader$`), startDeadline)
	if got := roundTrip(t, rc.addrs[1], "set greeting 0 0 5\r\nhello\r\n", "STORED\r\n"); got != "" {
		t.Fatal(got)
	}
	notLeader := "SERVER_ERROR gomu: not the leader leader=1 addr=" + rc.addrs[1] + "\r\n"
	for _, id := range []int{2, 3} {
		if got := roundTrip(t, rc.addrs[id], "get greeting\r\nset x 0 0 1\r\ny\r\n", "VALUE greeting 0 5\r\nhello\r\nEND\r\n"+notLeader); got != "" {
			t.Fatalf("replica %d: %s", id, got)
		}
	}
	mc, err := exec.LookPath("memccapable")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("memccapable needed under CI=true (apt-get install libmemcached-tools): %v", err)
		}
		t.Skipf("no memccapable: %v", err)
	}
	host, port, _ := net.SplitHostPort(rc.addrs[1])
	for _, mode := range []string{"-a", "-b"} {
		out, err := clitest.RunBounded(t, runDeadline, mc, "-h", host, "-p", port, "-t", "10", mode)
		if err != nil || !strings.Contains(out, "All tests passed") || strings.Contains(out, "[FAIL]") {
			t.Fatalf("memccapable %s: %v\n%s", mode, err, out)
		}
		t.Logf("memccapable %s: %d checks passed", mode, strings.Count(out, "[pass]"))
	}
	if err := rc.Signal(1, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rc.stderr.WaitFor(t, regexp.MustCompile(`(?m)^\[1\] memcached-replicated: wrote dump-1\.txt \(\d+ proposals\)`), stopDeadline)
	data, err := os.ReadFile(filepath.Join(dir, "dump-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	if len(lines) == 0 {
		t.Fatal("empty dump")
	}
	for _, l := range lines {
		if ns, err := strconv.ParseInt(l, 10, 64); err != nil || ns <= 0 {
			t.Fatalf("dump line %q", l)
		}
	}
}

// TestFailoverKill9: four writers while the leader is killed with
// SIGKILL; a follower prints "Reading pump started", a new leader takes
// over, and every write acknowledged STORED is on it.
func TestFailoverKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("fail-over of processes: slow")
	}
	rc := startCluster(t, "mcr-test-failover", t.TempDir(), 2)
	rc.stdout.WaitFor(t, regexp.MustCompile(`(?m)^Reading pump started$`), startDeadline)
	var mu sync.Mutex
	acked := map[string]string{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	addrs := []string{rc.addrs[1], rc.addrs[2], rc.addrs[3]}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k, v := fmt.Sprintf("w%d-%d", w, i), strconv.Itoa(i)
				if writeSomewhere(addrs, k, v) {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := rc.Signal(1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var lead string
	clitest.WaitUntil(t, "a new leader", startDeadline, func() bool {
		for _, id := range []int{2, 3} {
			if roundTrip(t, rc.addrs[id], "set probe 0 0 1\r\nx\r\n", "STORED\r\n") == "" {
				lead = rc.addrs[id]
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for k, v := range acked {
		if got := roundTrip(t, lead, "get "+k+"\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)); got != "" {
			t.Fatalf("acknowledged write lost: %s", got)
		}
	}
	t.Logf("%d acknowledged writes, all on the new leader %s", len(acked), lead)
}

// writeSomewhere sets k on whichever replica takes it; false when none
// acknowledged it within 10 s.
func writeSomewhere(addrs []string, k, v string) bool {
	req := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		nc, err := net.DialTimeout("tcp", addrs[i%len(addrs)], time.Second)
		if err != nil {
			continue
		}
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 512)
		n := 0
		if _, err = nc.Write([]byte(req)); err == nil {
			n, _ = nc.Read(buf)
		}
		nc.Close()
		if string(buf[:n]) == "STORED\r\n" {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// roundTrip sends in to addr and returns "" when the reply is want, else
// a description of what came back.
func roundTrip(t *testing.T, addr, in, want string) string {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(in)); err != nil {
		return err.Error()
	}
	buf := make([]byte, len(want))
	n, err := ioReadFull(bufio.NewReader(nc), buf)
	if string(buf[:n]) != want {
		return fmt.Sprintf("%q: got %q (%v), want %q", in, buf[:n], err, want)
	}
	return ""
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
