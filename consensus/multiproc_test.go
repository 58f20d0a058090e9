package consensus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
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
	inc   int // 1 for the first process of this id, +1 per restart
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu       sync.Mutex
	role     string
	status   procStatus
	started  bool // reported a status: Start returned
	applied  []string
	restores int      // states restored (state transfers)
	bad      []string // restored states that do not extend what it had applied
	acked    []string
	refused  []string
	done     map[string]bool
	sent     []string // prefixes of the proposals sent to it
	exited   bool
	stderr   strings.Builder
	readDone chan struct{}
}

// procStatus is a process's last "status" line (see statusLine).
type procStatus struct {
	role            string
	leader          int
	behind          bool
	active, lagging []int
	transfers       int
}

func parseStatus(s string) procStatus {
	var ps procStatus
	ids := func(v string) []int {
		var r []int
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(f); err == nil {
				r = append(r, n)
			}
		}
		return r
	}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "role":
			ps.role = v
		case "leader":
			ps.leader, _ = strconv.Atoi(v)
		case "behind":
			ps.behind = v == "true"
		case "active":
			ps.active = ids(v)
		case "lagging":
			ps.lagging = ids(v)
		case "transfers":
			ps.transfers, _ = strconv.Atoi(v)
		}
	}
	return ps
}

func (p *proc) read(r io.Reader) {
	defer close(p.readDone)
	sc := bufio.NewScanner(r)
	// A "restored" line holds a whole applied sequence.
	sc.Buffer(nil, 256<<20)
	// Whole lines only: a process killed while it writes a long line
	// leaves a fragment at EOF, which reports nothing.
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF {
			return len(data), nil, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		p.mu.Lock()
		switch kind {
		case "role":
			p.role = rest
		case "status":
			p.status, p.started = parseStatus(rest), true
		case "applied":
			p.applied = append(p.applied, rest)
		case "restored":
			f := strings.Fields(rest)
			n, _ := strconv.Atoi(f[0])
			seq := f[1:]
			if len(seq) != n {
				p.bad = append(p.bad, fmt.Sprintf("restored %d commands, listed %d", n, len(seq)))
			} else if len(seq) < len(p.applied) || !slices.Equal(seq[:len(p.applied)], p.applied) {
				p.bad = append(p.bad, fmt.Sprintf("restored a state of %d commands that does not extend the %d it had applied", len(seq), len(p.applied)))
			}
			p.applied = seq
			p.restores++
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
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		p.mu.Lock()
		p.bad = append(p.bad, fmt.Sprintf("reading its reports: %v", err))
		p.mu.Unlock()
	}
}

// with runs f with p's reports locked.
func (p *proc) with(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// send asks p to propose prefix-0 … prefix-(n-1), each padded with pad z's
// (none if 0); it does not wait.
func (p *proc) send(prefix string, n, pad int) error {
	p.with(func() { p.sent = append(p.sent, prefix) })
	_, err := fmt.Fprintf(p.stdin, "propose %s %d %d\n", prefix, n, pad)
	return err
}

// isDone reports whether p finished proposing prefix.
func (p *proc) isDone(prefix string) bool {
	var done bool
	p.with(func() { done = p.done[prefix] })
	return done
}

// busy reports whether p has a proposal sent that it has not finished.
func (p *proc) busy() bool {
	var busy bool
	p.with(func() {
		for _, s := range p.sent {
			busy = busy || !p.done[s]
		}
	})
	return busy
}

func (p *proc) propose(t *testing.T, prefix string, n int) {
	t.Helper()
	p.proposePad(t, prefix, n, 0)
}

func (p *proc) proposePad(t *testing.T, prefix string, n, pad int) {
	t.Helper()
	if err := p.send(prefix, n, pad); err != nil {
		t.Fatalf("replica process %d: %v", p.id, err)
	}
	if !waitFor(func() bool { return p.isDone(prefix) }) {
		t.Fatalf("replica process %d did not finish proposing %s within %v", p.id, prefix, hang)
	}
}

type procCluster struct {
	t   *testing.T
	env []string // every process's environment but its id

	mu    sync.Mutex // guards procs and gone against a writer goroutine
	procs map[int]*proc
	gone  []*proc // killed processes, with what they reported
	incs  map[int]int
}

// procOption tunes the replica processes of a procCluster.
type procOption func(env []string) []string

// procRing gives every replica process a ring of size bytes.
func procRing(size int) procOption {
	return func(env []string) []string { return append(env, fmt.Sprintf("GOMU_RING=%d", size)) }
}

// procTCP runs the replica processes over the tcp provider on loopback.
func procTCP(env []string) []string { return append(env, "GOMU_TRANSPORT=tcp") }

// startProcs starts n replica processes around an embedded registry, on one
// shm fabric in a temporary directory (unless an option says otherwise).
func startProcs(t *testing.T, n int, opts ...procOption) *procCluster {
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
	pc := &procCluster{t: t, procs: map[int]*proc{}, incs: map[int]int{}}
	pc.env = append(os.Environ(),
		"GOMU_IDS="+strings.Join(ids, ","),
		"GOMU_REGISTRY="+srv.Addr(),
		"GOMU_CLUSTER="+strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()),
		fmt.Sprintf("GOMU_FABRIC=mp-%d", os.Getpid()),
		"GOMU_SHMDIR="+dir,
	)
	for _, o := range opts {
		pc.env = o(pc.env)
	}
	t.Cleanup(func() {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		for _, p := range pc.procs {
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.stdin.Close()
		}
		for _, p := range pc.procs {
			timer := time.AfterFunc(hang, func() { p.cmd.Process.Kill() })
			p.cmd.Wait()
			timer.Stop()
		}
		if t.Failed() {
			for _, p := range append(slices.Clone(pc.gone), pc.sorted()...) {
				p.with(func() {
					s := p.stderr.String()
					if len(s) > 16<<10 {
						s = "…" + s[len(s)-16<<10:]
					}
					t.Logf("replica process %d (incarnation %d) stderr:\n%s", p.id, p.inc, s)
				})
			}
		}
	})
	for i := 1; i <= n; i++ {
		pc.spawn(i)
	}
	for _, p := range pc.live() {
		pc.waitStarted(p)
	}
	return pc
}

// waitStarted waits until p's Start returned (it reported its status), so
// that no test stops or kills a process halfway through Start.
func (pc *procCluster) waitStarted(p *proc) {
	pc.t.Helper()
	var started bool
	if !waitFor(func() bool {
		p.with(func() { started = p.started })
		select {
		case <-p.readDone:
			return true
		default:
		}
		return started
	}) || !started {
		pc.t.Fatalf("replica process %d (incarnation %d) did not start within %v", p.id, p.inc, hang)
	}
}

// spawn starts a process for replica id (again, after a kill: a new
// incarnation with fresh memory).
func (pc *procCluster) spawn(id int) *proc {
	t := pc.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(slices.Clone(pc.env), fmt.Sprintf("GOMU_REPLICA=%d", id))
	pc.mu.Lock()
	pc.incs[id]++
	p := &proc{id: id, inc: pc.incs[id], cmd: cmd, done: map[string]bool{}, readDone: make(chan struct{})}
	pc.mu.Unlock()
	cmd.Stderr = &lockedWriter{p: p}
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
	pc.mu.Lock()
	pc.procs[id] = p
	pc.mu.Unlock()
	return p
}

// lockedWriter appends to p.stderr under p's lock.
type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// restart starts replica id again (it must have been killed) and waits
// until its Start returned.
func (pc *procCluster) restart(id int) *proc {
	pc.t.Helper()
	p := pc.spawn(id)
	pc.waitStarted(p)
	return p
}

// sorted returns the live processes by id (pc.mu held).
func (pc *procCluster) sorted() []*proc {
	var ps []*proc
	for _, p := range pc.procs {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	return ps
}

// live returns the live processes by id; safe off the test goroutine.
func (pc *procCluster) live() []*proc {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.sorted()
}

// proc returns the live process of replica id.
func (pc *procCluster) proc(id int) *proc {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.procs[id]
}

// all returns every process started, killed ones included.
func (pc *procCluster) all() []*proc {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return append(slices.Clone(pc.gone), pc.sorted()...)
}

// waitLeader waits until one process other than those in not reports that
// it leads and returns it.
func (pc *procCluster) waitLeader(not ...int) *proc {
	pc.t.Helper()
	var lead *proc
	ok := waitFor(func() bool {
		for _, p := range pc.live() {
			var role string
			p.with(func() { role = p.role })
			if role == Leader.String() && !slices.Contains(not, p.id) {
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
// moves it from the live processes to the killed ones.
func (pc *procCluster) kill(id int, sig syscall.Signal) {
	pc.t.Helper()
	p := pc.proc(id)
	if err := p.cmd.Process.Signal(sig); err != nil {
		pc.t.Fatal(err)
	}
	if sig == syscall.SIGKILL {
		// Read to the end before Wait closes the pipe.
		<-p.readDone
		p.cmd.Wait()
		pc.mu.Lock()
		delete(pc.procs, id)
		pc.gone = append(pc.gone, p)
		pc.mu.Unlock()
	}
}

// check waits until every live process applied every acknowledged command
// and checks their histories: the live and the killed processes' applied
// sequences (restored states included) prefixes of one sequence, no command
// twice, none of the refused ones applied, no restored state that does not
// extend what its process had applied.
func (pc *procCluster) check(acked, refused []string) {
	pc.t.Helper()
	seq := pc.checkWith(acked, false)
	has := map[string]bool{}
	for _, c := range seq {
		has[c] = true
	}
	for _, r := range refused {
		if has[r] {
			pc.t.Fatalf("refused command %q was applied", r)
		}
	}
}

// checkEqual is check for tests that also want the live processes' applied
// sequences equal (after the last proposal), and every command each process
// acknowledged (killed ones included) in the order it did; it returns the
// sequence.
func (pc *procCluster) checkEqual(acked []string) []string {
	pc.t.Helper()
	seq := pc.checkWith(acked, true)
	for _, p := range pc.all() {
		a, _ := p.results()
		mustContainInOrder(pc.t, seq, a)
	}
	return seq
}

func (pc *procCluster) checkWith(acked []string, equal bool) []string {
	pc.t.Helper()
	var seqs map[int][]string
	ok := waitFor(func() bool {
		seqs = map[int][]string{}
		for _, p := range pc.live() {
			p.with(func() { seqs[p.id] = slices.Clone(p.applied) })
		}
		n := -1
		for _, s := range seqs {
			has := make(map[string]bool, len(s))
			for _, c := range s {
				has[c] = true
			}
			for _, a := range acked {
				if !has[a] {
					return false
				}
			}
			if equal && n >= 0 && len(s) != n {
				return false
			}
			n = len(s)
		}
		return true
	})
	// Killed processes' sequences must be prefixes too: key them apart.
	all := map[int][]string{}
	for id, s := range seqs {
		all[id] = s
	}
	pc.mu.Lock()
	gone := slices.Clone(pc.gone)
	pc.mu.Unlock()
	for i, p := range gone {
		p.with(func() { all[1000*(i+1)+p.id] = slices.Clone(p.applied) })
	}
	for _, p := range pc.all() {
		p.with(func() {
			for _, b := range p.bad {
				pc.t.Errorf("replica process %d (incarnation %d): %s", p.id, p.inc, b)
			}
		})
	}
	if pc.t.Failed() {
		pc.t.FailNow()
	}
	seq, err := checkPrefixes(all)
	if err != nil {
		pc.t.Fatalf("%v (ids above 1000: killed processes, 1000·k + id)", err)
	}
	if !ok {
		for id, s := range seqs {
			pc.t.Logf("replica process %d applied %d commands", id, len(s))
		}
		if equal {
			pc.t.Fatalf("the live replica processes did not all apply the %d acknowledged commands and the same sequence within %v", len(acked), hang)
		}
		pc.t.Fatalf("not every replica process applied the %d acknowledged commands within %v", len(acked), hang)
	}
	mustContainInOrder(pc.t, seq, acked)
	return seq
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
