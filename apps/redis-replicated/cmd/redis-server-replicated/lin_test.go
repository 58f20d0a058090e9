package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/lincheck"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/resp"
	"github.com/gomu-rdma/gomu/registry"
)

// Faults on the leader of a cluster of three server processes.
const (
	linStop = 300 * time.Millisecond // SIGSTOP to SIGCONT, p to c
	// linLongStop is every other SIGSTOP: on tcp a peer's READs fail only
	// after the provider's 500 ms retry timeout, so a 300 ms stop stalls
	// the leader without a fail-over; this one outlasts it.
	linLongStop = time.Second
	// linAsk bounds one INFO asked to find the leader: a stopped or
	// paused replica answers nothing.
	linAsk = 300 * time.Millisecond
)

// TestLinearizableProcesses starts an embedded registry and three
// redis-server-replicated processes the way a user would across hosts (SID,
// IDS and DORY_REGISTRY_IP; --transport, --device, --port and --fifo), runs
// clients that write through the leader and read on every replica, and
// checks each history with porcupine, one per fault on the current leader:
// SIGSTOP then SIGCONT (300 ms, every other time 1 s); SIGKILL, then the
// same SID started again (it joins the running cluster by state transfer);
// p then c written to its pause fifo. On shm and on tcp. GOMU_LIN_OPS,
// GOMU_LIN_RUNS and GOMU_LIN_BUDGET size a long run; a violation's history
// is drawn in GOMU_LIN_DIR (default the system's temporary directory).
func TestLinearizableProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three server processes per transport, faults, thousands of operations")
	}
	knobs, err := lincheck.KnobsFromEnv(2000)
	if err != nil {
		t.Fatal(err)
	}
	bin := linBuild(t)
	faults := []struct {
		name   string
		inject func(t *testing.T, c *linCluster, id, i int)
	}{
		{"sigstop", func(t *testing.T, c *linCluster, id, i int) {
			c.signal(t, id, syscall.SIGSTOP)
			if i%2 == 0 {
				time.Sleep(linLongStop)
			} else {
				time.Sleep(linStop)
			}
			c.signal(t, id, syscall.SIGCONT)
		}},
		{"sigkill-restart", func(t *testing.T, c *linCluster, id, _ int) {
			c.kill(t, id)
			c.leader(t) // the others elect a leader: the restart joins a running cluster
			c.start(t, id)
			c.waitJoined(t, id)
		}},
		{"fifo-pause", func(t *testing.T, c *linCluster, id, _ int) {
			c.fifo(t, id, "p")
			time.Sleep(linStop)
			c.fifo(t, id, "c")
		}},
	}
	for _, transport := range []string{"shm", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			for run := range knobs.Runs {
				c := startLinCluster(t, bin, transport, run)
				for _, f := range faults {
					name := f.name
					if knobs.Runs > 1 {
						name = fmt.Sprintf("run%d/%s", run+1, f.name)
					}
					t.Run(name, func(t *testing.T) {
						c.history(t, knobs, fmt.Sprintf("%s-r%d-%s", transport, run+1, f.name), func(i int) {
							f.inject(t, c, c.leader(t), i)
						})
					})
				}
				c.stop(t)
			}
		})
	}
}

// history runs the workload with a few calls of inject spread over it (one
// more per 2500 operations of a long run), and checks what the clients
// saw.
func (c *linCluster) history(t *testing.T, knobs lincheck.Knobs, name string, inject func(i int)) {
	target := lincheck.Redis{}
	for _, id := range c.ids {
		target.Addrs = append(target.Addrs, c.addrs[id])
		target.Names = append(target.Names, fmt.Sprintf("r%d", id))
	}
	w := lincheck.Workload{Ops: knobs.Ops, Prefix: name + ":"}
	rec := lincheck.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), linDeadline(knobs.Ops))
	defer cancel()
	start := time.Now()
	var leaders []int
	err := w.RunFaults(ctx, rec, target.NewTarget, max(3, knobs.Ops/2500), func(i int) {
		before := len(c.faulted)
		inject(i)
		leaders = append(leaders, c.faulted[before:]...)
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("workload of %d operations (%v, faults on leaders %v): %v", knobs.Ops, took.Round(time.Millisecond), leaders, err)
	}
	res, err := rec.Check(lincheck.Options{Budget: knobs.Budget, Name: t.Name()})
	t.Logf("%s: workload %v, faults on leaders %v", name, took.Round(time.Millisecond), leaders)
	t.Logf("%v", res)
	if err != nil {
		t.Error(err)
	}
	switch res.Verdict {
	case lincheck.Violation:
		t.Errorf("history not linearizable (keys %q): see %s", res.BadKeys, res.HTML)
	case lincheck.Inconclusive:
		t.Errorf("porcupine did not decide within %v (%s raises it)", knobs.Budget, lincheck.EnvBudget)
	}
	for _, id := range c.ids {
		if r := fmt.Sprintf("r%d", id); res.ReadsAt[r] == 0 {
			t.Errorf("replica %s served no read of the history: reads per replica %v", r, res.ReadsAt)
		}
	}
}

// linBuild builds the server into the test's temporary directory, with
// the race detector when this test runs under it.
func linBuild(t *testing.T) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "redis-server-replicated")
	args := []string{"build", "-o", bin}
	if linRace {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gocmd, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// linCluster is three server processes around an embedded registry.
type linCluster struct {
	bin, dir  string
	transport string
	device    string // shm: the fabric; tcp: the soft NIC's listen address
	cluster   string // the registry namespace
	reg       *memcache.Server
	ids       []int
	addrs     map[int]string
	ports     map[int]int

	mu      sync.Mutex
	procs   map[int]*linProc
	exited  []*linProc // processes that ended, killed or not
	faulted []int      // the replicas faults were injected into, in order
	stopped bool
}

// linProc is one server process, in a process group of its own.
type linProc struct {
	id     int
	cmd    *exec.Cmd
	out    *clitest.LineBuffer // stdout and stderr
	done   chan struct{}
	err    error // set when done closes
	killed bool  // by the test
}

// startLinCluster starts replicas 1, 2 and 3 and waits until each answers
// PING. Cleanup (or stop, which may come first) kills them all.
func startLinCluster(t *testing.T, bin, transport string, run int) *linCluster {
	t.Helper()
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &linCluster{
		bin: bin, dir: t.TempDir(), transport: transport, reg: reg,
		cluster: fmt.Sprintf("lin-%s-%d", transport, run),
		ids:     []int{1, 2, 3}, addrs: map[int]string{}, ports: map[int]int{}, procs: map[int]*linProc{},
	}
	switch transport {
	case "shm":
		c.device = fmt.Sprintf("lin-%d-%s-%d", os.Getpid(), transport, run)
	case "tcp":
		c.device = "127.0.0.1:0"
	}
	t.Cleanup(func() { c.stop(t) })
	for i, p := range clitest.FreePorts(t, len(c.ids)) {
		id := c.ids[i]
		c.ports[id] = p
		c.addrs[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	for _, id := range c.ids {
		c.start(t, id)
	}
	for _, id := range c.ids {
		waitPong(t, c.addrs[id], startDeadline)
	}
	return c
}

// start starts replica id, as a user on its host would.
func (c *linCluster) start(t *testing.T, id int) {
	t.Helper()
	cmd := exec.Command(c.bin,
		"--port", strconv.Itoa(c.ports[id]), "--bind", "127.0.0.1",
		"--transport", c.transport, "--device", c.device, "--cluster", c.cluster,
		"--fifo", c.fifoPath(id), "--timeout", "2s", "--start-timeout", "30s", "--verbose")
	env := []string{"SID=" + strconv.Itoa(id), "IDS=1,2,3", registry.EnvAddr + "=" + c.reg.Addr()}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "SID" && name != "IDS" && name != registry.EnvAddr && name != clitest.EnvRunMain {
			env = append(env, kv)
		}
	}
	p := &linProc{id: id, cmd: cmd, out: &clitest.LineBuffer{}, done: make(chan struct{})}
	cmd.Env, cmd.Dir = env, c.dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start replica %d: %v", id, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
}

func (c *linCluster) fifoPath(id int) string { return filepath.Join(c.dir, fmt.Sprintf("fifo-%d", id)) }

// proc returns replica id's running process; it fails t if there is none
// or it ended by itself.
func (c *linCluster) proc(t *testing.T, id int) *linProc {
	t.Helper()
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	if p == nil {
		t.Fatalf("replica %d is not running", id)
	}
	select {
	case <-p.done:
		t.Fatalf("replica %d exited by itself: %v\n%s", id, p.err, tail(p.out.String()))
	default:
	}
	return p
}

// signal sends sig to replica id.
func (c *linCluster) signal(t *testing.T, id int, sig syscall.Signal) {
	t.Helper()
	p := c.proc(t, id)
	if sig == syscall.SIGSTOP {
		c.faulted = append(c.faulted, id)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("%v to replica %d: %v", sig, id, err)
	}
}

// kill SIGKILLs replica id's process group and waits for it to end.
func (c *linCluster) kill(t *testing.T, id int) {
	t.Helper()
	p := c.proc(t, id)
	c.faulted = append(c.faulted, id)
	p.killed = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopDeadline):
		t.Fatalf("replica %d still running %v after SIGKILL", id, stopDeadline)
	}
	c.mu.Lock()
	delete(c.procs, id)
	c.exited = append(c.exited, p)
	c.mu.Unlock()
}

// fifo writes s to replica id's pause fifo (p pauses, c resumes).
func (c *linCluster) fifo(t *testing.T, id int, s string) {
	t.Helper()
	c.proc(t, id)
	if s == "p" {
		c.faulted = append(c.faulted, id)
	}
	// Non-blocking: with no reader (the replica died) the open fails
	// instead of hanging.
	f, err := os.OpenFile(c.fifoPath(id), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("open replica %d's fifo: %v", id, err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatalf("write %q to replica %d's fifo: %v", s, id, err)
	}
}

// info returns replica id's INFO replication fields, or nil when it does
// not answer within linAsk.
func (c *linCluster) info(id int) map[string]string {
	nc, err := net.DialTimeout("tcp", c.addrs[id], linAsk)
	if err != nil {
		return nil
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(linAsk))
	if _, err := nc.Write(resp.AppendCommand(nil, []byte("INFO"), []byte("replication"))); err != nil {
		return nil
	}
	raw, err := resp.ReadReply(bufio.NewReader(nc), nil, 1<<20)
	if err != nil || raw[0] != '$' {
		return nil
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// leader waits until one running replica leads, unpaused, and every other
// running replica names it, and returns it.
func (c *linCluster) leader(t *testing.T) int {
	t.Helper()
	var lead int
	c.waitInfo(t, "a leader every running replica names", func(seen map[int]map[string]string) bool {
		lead = 0
		named := map[string]int{}
		for id, f := range seen {
			if f == nil {
				return false
			}
			if f["gomu_role"] == "leader" && f["gomu_paused"] == "0" {
				lead = id
			}
			named[f["gomu_leader_id"]]++
		}
		return lead != 0 && named[strconv.Itoa(lead)] == len(seen)
	})
	return lead
}

// waitJoined waits until replica id serves as a follower that has caught
// up.
func (c *linCluster) waitJoined(t *testing.T, id int) {
	t.Helper()
	c.waitInfo(t, fmt.Sprintf("replica %d rejoined and caught up", id), func(seen map[int]map[string]string) bool {
		f := seen[id]
		return f != nil && f["gomu_catching_up"] == "0" && f["gomu_leader_id"] != "0"
	})
}

// waitInfo asks every running replica for INFO replication until cond
// holds of the answers (nil for a replica that gave none), for up to
// startDeadline; then it fails t with the last answers.
func (c *linCluster) waitInfo(t *testing.T, what string, cond func(seen map[int]map[string]string) bool) {
	t.Helper()
	deadline := time.Now().Add(startDeadline)
	for {
		c.mu.Lock()
		var ids []int
		for id := range c.procs {
			ids = append(ids, id)
		}
		c.mu.Unlock()
		seen := map[int]map[string]string{}
		for _, id := range ids {
			c.proc(t, id)
			seen[id] = c.info(id)
		}
		if cond(seen) {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, id := range c.ids {
				f, ok := seen[id]
				switch {
				case !ok:
					fmt.Fprintf(&b, "\n  replica %d: not running", id)
				case f == nil:
					fmt.Fprintf(&b, "\n  replica %d: no answer within %v", id, linAsk)
				default:
					fmt.Fprintf(&b, "\n  replica %d: role %s leader %s paused %s catching_up %s commit %s applied %s",
						id, f["gomu_role"], f["gomu_leader_id"], f["gomu_paused"], f["gomu_catching_up"], f["gomu_commit_index"], f["gomu_applied_index"])
				}
			}
			t.Fatalf("no %s within %v; INFO replication last said:%s", what, startDeadline, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills every replica and the registry, removes the shm fabric the
// killed processes could not, and reports replicas that died by themselves
// or saw a data race. It is idempotent.
func (c *linCluster) stop(t *testing.T) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	procs := c.procs
	c.procs = map[int]*linProc{}
	c.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			p.killed = true
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		c.exited = append(c.exited, p)
	}
	c.reg.Close()
	if c.transport == "shm" {
		if err := os.RemoveAll(filepath.Join("/dev/shm", "gomu-"+c.device)); err != nil {
			t.Errorf("remove the shm fabric: %v", err)
		}
	}
	for _, p := range c.exited {
		out := p.out.String()
		switch {
		case !p.killed:
			t.Errorf("replica %d exited by itself: %v\n%s", p.id, p.err, tail(out))
		case strings.Contains(out, "WARNING: DATA RACE"):
			t.Errorf("replica %d saw a data race:\n%s", p.id, tail(out))
		case strings.Contains(out, "panic:"):
			t.Errorf("replica %d panicked:\n%s", p.id, tail(out))
		case t.Failed():
			t.Logf("replica %d's output:\n%s", p.id, tail(out))
		}
	}
	c.exited = nil
}

// linDeadline bounds the workload of a history of ops operations: a hang
// detector, several times what a loaded machine needs with its restarts.
func linDeadline(ops int) time.Duration { return 2*time.Minute + time.Duration(ops)*5*time.Millisecond }

// tail is the end of a process's output.
func tail(s string) string {
	const n = 8 << 10
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
