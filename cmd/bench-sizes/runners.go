package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/testbed"
	"github.com/gomu-rdma/gomu/registry"
)

// runner runs one benchmark tool on a cluster of n replicas and returns
// the leader's standard output; attempt counts the tries of that run.
type runner interface {
	Run(ctx context.Context, tool string, n, attempt int) ([]byte, error)
}

// grace is how long processes have to exit once stopped (SIGTERM), and how
// long followers have to exit once their leader has.
const grace = 15 * time.Second

// toolFlags are the flags every replica process and every --local launcher
// gets from cfg.
func toolFlags(cfg Config, count int) []string {
	f := []string{"--count", strconv.Itoa(count), "--profile", cfg.Profile}
	if cfg.Poll != "" {
		f = append(f, "--poll", cfg.Poll)
	}
	return f
}

// outstanding is the tool's nr_outstanding argument.
func outstanding(cfg Config, tool string) int {
	if tool == "main-st" {
		return cfg.STOutstanding
	}
	return cfg.Outstanding
}

func (cfg Config) bin(tool string) string {
	if tool == "main-st" {
		return cfg.MainSt
	}
	return cfg.MainStLat
}

// command prepares bin args to be stopped with SIGTERM when ctx ends (the
// tools clean up on it: a --local launcher stops its replicas, removes its
// shm files and fifos), killed grace later; in a process group of its own,
// sent SIGTERM too if bench-sizes dies.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = grace
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	return cmd
}

// shmRunner runs tool --local: the launcher starts an embedded registry
// and one process per replica on the shm provider.
type shmRunner struct {
	cfg  Config
	work string    // working directory (the leader's dump file goes there)
	log  io.Writer // --verbose echoes there
}

func (r *shmRunner) Run(ctx context.Context, tool string, n, _ int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	args := append([]string{"--local", "--ids", ids(n), "--transport", "shm"}, toolFlags(r.cfg, r.cfg.Count)...)
	args = append(args, strconv.Itoa(r.cfg.Payload), strconv.Itoa(outstanding(r.cfg, tool)))
	cmd := command(ctx, r.cfg.bin(tool), args...)
	cmd.Dir = r.work
	var out bytes.Buffer
	tail := benchproc.NewTailBuffer(16 << 10)
	cmd.Stdout, cmd.Stderr = io.Writer(&out), io.Writer(tail)
	if r.cfg.Verbose {
		fmt.Fprintf(r.log, "== %s\n", benchproc.Quote(cmd.Path, args...))
		cmd.Stdout = io.MultiWriter(&out, r.log)
		cmd.Stderr = io.MultiWriter(tail, r.log)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w (limit %v)", benchproc.Quote(tool, args...), context.Cause(ctx), r.cfg.Timeout)
		}
		return nil, fmt.Errorf("%s: %w; its last output:\n%s", benchproc.Quote(tool, args...), err, lastLines(tail.String(), 15))
	}
	return out.Bytes(), nil
}

// bed is the tcp runner: a test bed with a registry host, reg, running
// Debian's memcached, and one host per replica, r1 … rN.
type bed struct {
	cfg       Config
	work      string
	log       io.Writer // --verbose echoes there
	b         *testbed.Bed
	memcached *exec.Cmd
	memDone   chan struct{}
	registry  string // host:port
	runs      int    // runs started, for fresh cluster names and ports
	closeOnce sync.Once
	closeErr  error
}

// startBed sweeps a stale bed of cfg.BedName, brings a bed up with a host
// per replica of the largest size and the registry host, and starts
// memcached there. On failure it takes down what it made.
func startBed(ctx context.Context, cfg Config, work string, stderr io.Writer) (_ *bed, err error) {
	if err := testbed.Sweep(cfg.BedName); err != nil {
		return nil, fmt.Errorf("sweep a stale test bed %q: %w", cfg.BedName, err)
	}
	hosts := []string{"reg"}
	for i := 1; i <= cfg.Sizes[len(cfg.Sizes)-1]; i++ {
		hosts = append(hosts, "r"+strconv.Itoa(i))
	}
	b, err := testbed.Up(testbed.Spec{Name: cfg.BedName, Hosts: hosts, Subnet: cfg.Subnet})
	if err != nil {
		return nil, err
	}
	bd := &bed{cfg: cfg, work: work, log: stderr, b: b, registry: b.Addr("reg") + ":11211"}
	defer func() {
		if err != nil {
			bd.Close()
		}
	}()
	fmt.Fprintf(stderr, "%s: test bed %s up: registry (memcached) on %s, replicas r1…r%d on %s…%s\n",
		name, cfg.BedName, bd.registry, len(hosts)-1, b.Addr("r1"), b.Addr(hosts[len(hosts)-1]))
	bd.memcached = b.Command("reg", "memcached", "-u", "nobody", "-l", b.Addr("reg"), "-p", "11211", "-U", "0")
	memLog := benchproc.NewTailBuffer(4 << 10)
	bd.memcached.Stdout, bd.memcached.Stderr = memLog, memLog
	// memcached drops root for nobody, which clears a parent-death signal:
	// Close stops it, and Sweep leaves it no network if bench-sizes dies.
	bd.memcached.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bd.memcached.Start(); err != nil {
		return bd, fmt.Errorf("start memcached on the registry host (apt-get install memcached): %w", err)
	}
	bd.memDone = make(chan struct{})
	go func() { bd.memcached.Wait(); close(bd.memDone) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", bd.registry, time.Second)
		if err == nil {
			c.Close()
			return bd, nil
		}
		select {
		case <-bd.memDone:
			return bd, fmt.Errorf("memcached on the registry host exited: %s", memLog.String())
		case <-ctx.Done():
			return bd, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return bd, fmt.Errorf("memcached on %s never accepted: %v", bd.registry, err)
		}
	}
}

// Close stops memcached and takes the bed down; it is idempotent.
func (bd *bed) Close() error {
	bd.closeOnce.Do(func() {
		if bd.memDone != nil {
			bd.memcached.Process.Signal(syscall.SIGTERM)
			select {
			case <-bd.memDone:
			case <-time.After(5 * time.Second):
				bd.memcached.Process.Kill()
				<-bd.memDone
			}
		}
		bd.closeErr = bd.b.Down()
	})
	return bd.closeErr
}

// proc is one replica process of a bed run.
type proc struct {
	id   int
	cmd  *exec.Cmd
	out  *bytes.Buffer // the leader's standard output
	tail *benchproc.TailBuffer
}

// exit is a replica process's end.
type exit struct {
	id  int
	err error
}

// Run starts replica i of 1…n on host ri, each in its namespace with the
// tcp transport on its host's address, waits for the leader (1) and then
// for the followers to exit, and returns the leader's output. A replica
// that fails before the leader is done stops the run.
func (bd *bed) Run(ctx context.Context, tool string, n, _ int) ([]byte, error) {
	bd.runs++
	ctx, cancel := context.WithTimeout(ctx, bd.cfg.Timeout)
	defer cancel()
	// Every run its own registry namespace and ports: nothing a previous
	// run left in memcached or in TIME_WAIT can meet this one.
	clusterName := fmt.Sprintf("bs%d-%s-%d", bd.runs, tool, n)
	port := 7000 + bd.runs%1000
	procs := map[int]*proc{}
	exits := make(chan exit, n)
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	for id := 1; id <= n; id++ {
		host := "r" + strconv.Itoa(id)
		dir := filepath.Join(bd.work, host)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		args := append([]string{"--transport", "tcp", "--device", bd.b.Addr(host) + ":" + strconv.Itoa(port),
			"--fifo", "-", "--cluster", clusterName}, toolFlags(bd.cfg, bd.cfg.TCPCount)...)
		args = append(args, strconv.Itoa(id), strconv.Itoa(bd.cfg.Payload), strconv.Itoa(outstanding(bd.cfg, tool)))
		// b.Command is `ip netns exec <ns> bin args…`, which execs bin.
		nsCmd := bd.b.Command(host, bd.cfg.bin(tool), args...)
		cmd := command(stopCtx, nsCmd.Path, nsCmd.Args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SID="+strconv.Itoa(id), "IDS="+ids(n), registry.EnvAddr+"="+bd.registry)
		p := &proc{id: id, cmd: cmd, out: &bytes.Buffer{}, tail: benchproc.NewTailBuffer(8 << 10)}
		var stdout, stderr io.Writer = p.tail, p.tail
		if id == 1 {
			stdout = io.MultiWriter(p.out, p.tail)
		}
		if bd.cfg.Verbose {
			if id == 1 {
				fmt.Fprintf(bd.log, "== %s (and the followers likewise)\n", benchproc.Quote(nsCmd.Path, nsCmd.Args[1:]...))
			}
			stdout = io.MultiWriter(stdout, cluster.NewPrefixWriter(bd.log, fmt.Sprintf("[%s] ", host)))
			stderr = io.MultiWriter(stderr, cluster.NewPrefixWriter(bd.log, fmt.Sprintf("[%s] ", host)))
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Start(); err != nil {
			stop()
			for _, p := range procs {
				p.cmd.Wait()
			}
			return nil, fmt.Errorf("start replica %d on %s: %w", id, host, err)
		}
		procs[id] = p
		go func() { exits <- exit{id, cmd.Wait()} }()
	}

	var failed []string
	var stopped []int // replicas that exited because the run was stopped
	leaderDone, stopping := false, false
	var graceC <-chan time.Time
	for left := n; left > 0; {
		select {
		case e := <-exits:
			left--
			switch {
			case e.err != nil && stopping:
				stopped = append(stopped, e.id)
			case e.err != nil:
				failed = append(failed, fmt.Sprintf("replica %d: %v; its last output:\n%s", e.id, e.err, lastLines(procs[e.id].tail.String(), 10)))
				if !leaderDone {
					stopping = true
					stop() // the run is lost: stop the others now
				}
			}
			if e.id == 1 {
				leaderDone = true
				graceC = time.After(grace)
			}
		case <-graceC:
			graceC = nil
			failed = append(failed, fmt.Sprintf("followers still running %v after the leader exited", grace))
			stopping = true
			stop()
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s on %d replicas: %w (limit %v)", tool, n, context.Cause(ctx), bd.cfg.Timeout)
	}
	if len(stopped) > 0 {
		slices.Sort(stopped)
		failed = append(failed, fmt.Sprintf("stopped replicas %v", stopped))
	}
	if len(failed) > 0 {
		return nil, errors.New(strings.Join(failed, "\n"))
	}
	return procs[1].out.Bytes(), nil
}

// lastLines is the last n lines of s but the tools' progress reports, for
// error messages.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if !strings.Contains(l, "progress: ") && strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// count is the commands of one run on transport.
func (cfg Config) count(transport string) int {
	if transport == "tcp" {
		return cfg.TCPCount
	}
	return cfg.Count
}
