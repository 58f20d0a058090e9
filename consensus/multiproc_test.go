package consensus

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

// proc is a replica process started by re-executing the test binary (see
// replicaProcess), and what it reported so far.
type proc struct {
	id    int
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu       sync.Mutex
	role     string
	applied  []string
	acked    []string
	refused  []string
	done     map[string]bool
	exited   bool
	stderr   strings.Builder
	readDone chan struct{}
}

func (p *proc) read(r io.Reader) {
	defer close(p.readDone)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		p.mu.Lock()
		switch kind {
		case "role":
			p.role = rest
		case "applied":
			p.applied = append(p.applied, rest)
		case "acked":
			p.acked = append(p.acked, rest)
		case "refused":
			cmd, _, _ := strings.Cut(rest, " ")
			p.refused = append(p.refused, cmd)
		case "done":
			p.done[rest] = true
		}
		p.mu.Unlock()
	}
}

// with runs f with p's reports locked.
func (p *proc) with(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

func (p *proc) propose(t *testing.T, prefix string, n int) {
	t.Helper()
	if _, err := fmt.Fprintf(p.stdin, "propose %s %d\n", prefix, n); err != nil {
		t.Fatalf("replica process %d: %v", p.id, err)
	}
	var done bool
	if !waitFor(func() bool { p.with(func() { done = p.done[prefix] }); return done }) {
		t.Fatalf("replica process %d did not finish proposing %s within %v", p.id, prefix, hang)
	}
}

type procCluster struct {
	t     *testing.T
	procs map[int]*proc
}

// startProcs starts n replica processes around an embedded registry, on one
// shm fabric in a temporary directory.
func startProcs(t *testing.T, n int) *procCluster {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	srv, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, fmt.Sprint(i))
	}
	dir := t.TempDir()
	pc := &procCluster{t: t, procs: map[int]*proc{}}
	for i := 1; i <= n; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("GOMU_REPLICA=%d", i),
			"GOMU_IDS="+strings.Join(ids, ","),
			"GOMU_REGISTRY="+srv.Addr(),
			"GOMU_CLUSTER="+t.Name(),
			fmt.Sprintf("GOMU_FABRIC=mp-%d", os.Getpid()),
			"GOMU_SHMDIR="+dir,
		)
		p := &proc{id: i, cmd: cmd, done: map[string]bool{}, readDone: make(chan struct{})}
		cmd.Stderr = &p.stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go p.read(out)
		pc.procs[i] = p
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.stdin.Close()
		}
		for _, p := range pc.procs {
			timer := time.AfterFunc(hang, func() { p.cmd.Process.Kill() })
			p.cmd.Wait()
			timer.Stop()
			if t.Failed() {
				p.with(func() { t.Logf("replica process %d stderr:\n%s", p.id, p.stderr.String()) })
			}
		}
	})
	return pc
}

// waitLeader waits until one process other than those in not reports that
// it leads and returns it.
func (pc *procCluster) waitLeader(not ...int) *proc {
	pc.t.Helper()
	var lead *proc
	ok := waitFor(func() bool {
		for id, p := range pc.procs {
			var role string
			p.with(func() { role = p.role })
			if role == Leader.String() && !slices.Contains(not, id) {
				lead = p
				return true
			}
		}
		return false
	})
	if !ok {
		pc.t.Fatalf("no replica process other than %v leads within %v", not, hang)
	}
	return lead
}

// kill stops process id with sig; SIGKILL also waits for it to die and
// drops it from the cluster.
func (pc *procCluster) kill(id int, sig syscall.Signal) {
	pc.t.Helper()
	p := pc.procs[id]
	if err := p.cmd.Process.Signal(sig); err != nil {
		pc.t.Fatal(err)
	}
	if sig == syscall.SIGKILL {
		p.cmd.Wait()
		<-p.readDone
		delete(pc.procs, id)
	}
}

// check waits until every process in pc applied every acknowledged command
// and checks their histories: prefixes of one sequence, no command twice,
// none of the refused ones applied.
func (pc *procCluster) check(acked, refused []string) {
	pc.t.Helper()
	seqs := map[int][]string{}
	ok := waitFor(func() bool {
		for id, p := range pc.procs {
			p.with(func() { seqs[id] = slices.Clone(p.applied) })
		}
		for _, s := range seqs {
			for _, a := range acked {
				if !slices.Contains(s, a) {
					return false
				}
			}
		}
		return true
	})
	seq, err := checkPrefixes(seqs)
	if err != nil {
		pc.t.Fatal(err)
	}
	if !ok {
		for id, s := range seqs {
			pc.t.Logf("replica process %d applied %d commands", id, len(s))
		}
		pc.t.Fatalf("not every replica process applied the %d acknowledged commands within %v", len(acked), hang)
	}
	mustContainInOrder(pc.t, seq, acked)
	for _, r := range refused {
		if slices.Contains(seq, r) {
			pc.t.Fatalf("refused command %q was applied", r)
		}
	}
}

func (p *proc) results() (acked, refused []string) {
	p.with(func() { acked, refused = slices.Clone(p.acked), slices.Clone(p.refused) })
	return acked, refused
}

// TestProcessKill kills the leader process with SIGKILL: the survivors
// elect a new leader and keep every command the old one acknowledged.
func TestProcessKill(t *testing.T) {
	pc := startProcs(t, 3)
	old := pc.waitLeader()
	old.propose(t, "before", 20)
	acked, _ := old.results()
	pc.kill(old.id, syscall.SIGKILL)
	lead := pc.waitLeader(old.id)
	lead.propose(t, "after", 20)
	after, _ := lead.results()
	pc.check(append(acked, after...), nil)
}

// TestProcessStopCont stops the leader process with SIGSTOP (a hung
// process): the others fail over. Continued with SIGCONT, the old leader
// must not get anything it proposes from then on committed while another
// leads, and must catch up with what was committed meanwhile.
func TestProcessStopCont(t *testing.T) {
	pc := startProcs(t, 3)
	old := pc.waitLeader()
	old.propose(t, "before", 10)
	acked, _ := old.results()
	pc.kill(old.id, syscall.SIGSTOP)
	lead := pc.waitLeader(old.id)
	lead.propose(t, "during", 10)
	during, _ := lead.results()
	acked = append(acked, during...)
	pc.kill(old.id, syscall.SIGCONT)
	// Until it notices, the old leader still believes it leads; what it
	// proposes then goes to followers that fenced it out. (If the others
	// meanwhile suspected the new leader, the old one may win a real
	// election and commit: then those commands count as acknowledged.)
	old.propose(t, "late", 3)
	lateAcked, refused := old.results()
	lateAcked = slices.DeleteFunc(lateAcked, func(s string) bool { return !strings.HasPrefix(s, "late-") })
	acked = append(acked, lateAcked...)
	lead.propose(t, "after", 10)
	after, _ := lead.results()
	acked = append(acked, slices.DeleteFunc(after, func(s string) bool { return !strings.HasPrefix(s, "after-") })...)
	pc.check(acked, refused)
}
