package consensus

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Multi-process tests of healing: replica processes killed with SIGKILL
// and restarted with the same id (a new incarnation with fresh memory),
// stopped with SIGSTOP until the ring laps them or their links break, then
// continued. Each ends with the cluster whole (see whole; under load, then
// again once idle) and checkEqual:
// no acknowledged command lost, every process's applied sequence (a
// restarted one's starting with the state it restored) a prefix of one
// sequence, the live ones' equal.

// procWriter proposes continuously through whichever process leads, in
// batches ("<prefix><k>-<i>"), until halt.
type procWriter struct {
	pc     *procCluster
	prefix string
	batch  int
	pad    int
	stop   chan struct{}
	done   chan struct{}
}

// batchWait bounds how long the writer waits for a batch before it looks
// for a leader again (the one it sent it to may be stopped or deposed):
// the batch stays with that process and counts whenever it finishes.
const batchWait = time.Second

func (pc *procCluster) startWriter(prefix string, batch, pad int) *procWriter {
	w := &procWriter{pc: pc, prefix: prefix, batch: batch, pad: pad, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *procWriter) run() {
	defer close(w.done)
	for k := 0; ; {
		select {
		case <-w.stop:
			return
		default:
		}
		// A process that reports leading and has no batch pending.
		var lead *proc
		for _, p := range w.pc.live() {
			var role string
			p.with(func() { role = p.role })
			if role == Leader.String() && !p.busy() {
				lead = p
				break
			}
		}
		if lead == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		prefix := fmt.Sprintf("%s%d", w.prefix, k)
		k++
		if err := lead.send(prefix, w.batch, w.pad); err != nil {
			continue // killed meanwhile
		}
		deadline := time.Now().Add(batchWait)
		for !lead.isDone(prefix) && time.Now().Before(deadline) {
			select {
			case <-w.stop:
				return
			case <-lead.readDone:
				deadline = time.Now()
			case <-time.After(time.Millisecond):
			}
		}
	}
}

// acked counts the writer's commands acknowledged so far, by any process.
func (w *procWriter) acked() int {
	n := 0
	for _, p := range w.pc.all() {
		a, _ := p.results()
		for _, c := range a {
			if strings.HasPrefix(c, w.prefix) {
				n++
			}
		}
	}
	return n
}

// progress waits until n more of the writer's commands are acknowledged.
func (w *procWriter) progress(t *testing.T, n int, what string) {
	t.Helper()
	from := w.acked()
	if !waitFor(func() bool { return w.acked() >= from+n }) {
		t.Fatalf("%s: %d commands acknowledged within %v, want %d", what, w.acked()-from, hang, n)
	}
}

// halt stops the writer and waits until every live process finished every
// batch sent to it.
func (w *procWriter) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	for _, p := range w.pc.live() {
		if !waitFor(func() bool { return !p.busy() }) {
			t.Fatalf("replica process %d did not finish its proposals within %v", p.id, hang)
		}
	}
}

// allAcked returns every command a process (killed ones included)
// acknowledged.
func (pc *procCluster) allAcked() []string {
	var acked []string
	for _, p := range pc.all() {
		a, _ := p.results()
		acked = append(acked, a...)
	}
	return acked
}

// wholeFor is how long the cluster must stay whole for whole to believe
// it: a follower may look active for an instant before the leader counts
// it down again.
const wholeFor = 300 * time.Millisecond

// whole waits until the cluster is whole again, and stays so for wholeFor:
// exactly one live process leads, every live process names it and is not
// catching up, and the leader counts every other live process active and
// none lagging. It returns the leader.
func (pc *procCluster) whole() *proc {
	pc.t.Helper()
	var lead *proc
	var since time.Time
	if !waitFor(func() bool {
		prev := lead
		var ok bool
		lead, ok = pc.isWhole()
		if !ok || lead != prev {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= wholeFor
	}) {
		for _, p := range pc.live() {
			p.with(func() { pc.t.Logf("replica process %d (incarnation %d): role %s, %+v", p.id, p.inc, p.role, p.status) })
		}
		pc.t.Fatalf("the cluster is not whole again (for %v in a row) within %v", wholeFor, hang)
	}
	return lead
}

// isWhole reports whether the cluster is whole now, and returns its
// leader (nil if none).
func (pc *procCluster) isWhole() (*proc, bool) {
	live := pc.live()
	st := map[int]procStatus{}
	var lead *proc
	for _, p := range live {
		p.with(func() { st[p.id] = p.status })
		if st[p.id].role == Leader.String() {
			if lead != nil {
				return nil, false
			}
			lead = p
		}
	}
	if lead == nil {
		return nil, false
	}
	for _, p := range live {
		if st[p.id].leader != lead.id || st[p.id].behind {
			return lead, false
		}
		if p != lead && !slices.Contains(st[lead.id].active, p.id) {
			return lead, false
		}
	}
	return lead, len(st[lead.id].lagging) == 0
}

// follower returns the id of a live process other than lead.
func (pc *procCluster) follower(lead int) int {
	for _, p := range pc.live() {
		if p.id != lead {
			return p.id
		}
	}
	pc.t.Fatal("no live process other than the leader")
	return 0
}

func (p *proc) restored() int {
	var n int
	p.with(func() { n = p.restores })
	return n
}

// TestProcessFollowerRestart kills a follower process with SIGKILL, laps
// the small ring while it is dead, and starts it again with the same id: it
// must rejoin by itself, restore a state transfer, hold the others'
// sequence and be active at the leader. Then the original leader is killed:
// the survivors, the restarted process among them (a majority of 3 needs
// both), elect a leader and commit.
func TestProcessFollowerRestart(t *testing.T) {
	pc := startProcs(t, 3, procRing(16<<10))
	lead := pc.waitLeader()
	lead.propose(t, "before", 20)
	victim := pc.follower(lead.id)
	pc.kill(victim, syscall.SIGKILL)
	// 300 padded commands are well over 16 KiB of entries: entry 1 is
	// gone from the ring when the victim comes back.
	lead.proposePad(t, "dead", 300, 60)
	back := pc.restart(victim)
	// Under load until it is back (TestProcessRestartIdle is the idle
	// case).
	w := pc.startWriter("back", 20, 0)
	if got := pc.whole(); got != lead {
		t.Logf("leadership moved from %d to %d meanwhile", lead.id, got.id)
	}
	w.halt(t)
	pc.checkEqual(pc.allAcked())
	if back.restored() == 0 {
		t.Fatalf("restarted replica process %d caught up without a state transfer, yet the ring was lapped", victim)
	}

	old := pc.whole()
	pc.kill(old.id, syscall.SIGKILL)
	next := pc.waitLeader(old.id)
	next.propose(t, "after", 20)
	pc.whole()
	seq := pc.checkEqual(pc.allAcked())
	t.Logf("restarted process %d restored %d state(s); replica %d leads after %d was killed; %d commands", victim, back.restored(), next.id, old.id, len(seq))
}

// TestProcessLeaderRestart kills the leader process with SIGKILL: another
// takes over and commits; the old leader, started again with the same id,
// rejoins as a follower and catches up.
func TestProcessLeaderRestart(t *testing.T) {
	pc := startProcs(t, 3, procRing(16<<10))
	old := pc.waitLeader()
	old.proposePad(t, "before", 300, 60)
	pc.kill(old.id, syscall.SIGKILL)
	lead := pc.waitLeader(old.id)
	lead.propose(t, "during", 20)
	back := pc.restart(old.id)
	w := pc.startWriter("after", 20, 0)
	now := pc.whole()
	w.halt(t)
	if now.id == old.id {
		t.Fatalf("the restarted old leader %d leads again; want it back as a follower", old.id)
	}
	var st procStatus
	back.with(func() { st = back.status })
	if st.role != Follower.String() {
		t.Fatalf("restarted replica process %d: role %s, want follower", old.id, st.role)
	}
	seq := pc.checkEqual(pc.allAcked())
	t.Logf("replica %d leads after %d was killed; the restarted one restored %d state(s); %d commands", now.id, old.id, back.restored(), len(seq))
}

// TestProcessCrashFollowerLoop is dqlite's crash-follower experiment: while
// a writer proposes continuously, a follower process is killed with
// SIGKILL and started again every second for 30 s. No acknowledged command
// may be lost, and at the end the cluster must be whole with equal
// sequences everywhere.
func TestProcessCrashFollowerLoop(t *testing.T) {
	const period, length = time.Second, 30 * time.Second
	// The default ring (1 MiB): with 64 KiB the writer laps it faster
	// than a restarted follower's state transfer completes under the race
	// detector, and it keeps asking for transfers for as long as the
	// writer runs.
	pc := startProcs(t, 3)
	lead := pc.waitLeader()
	victim := pc.follower(lead.id)
	w := pc.startWriter("w", 50, 0)
	w.progress(t, 50, "before the first kill")
	start := time.Now()
	kills, transfers := 0, 0
	for time.Since(start) < length {
		next := time.Now().Add(period)
		// The victim is a follower: should it lead by now, another one.
		if p := pc.proc(victim); p != nil {
			var role string
			p.with(func() { role = p.role })
			if role == Leader.String() {
				victim = pc.follower(victim)
			}
		}
		transfers += pc.proc(victim).restored()
		pc.kill(victim, syscall.SIGKILL)
		pc.restart(victim)
		kills++
		time.Sleep(time.Until(next))
	}
	during := w.acked()
	w.progress(t, 50, "after the last restart")
	pc.whole()
	w.halt(t)
	pc.whole()
	transfers += pc.proc(victim).restored()
	seq := pc.checkEqual(pc.allAcked())
	t.Logf("%d kills in %v; %d commands acknowledged during them, %d applied in all; %d state transfers restored by the victims",
		kills, time.Since(start).Round(time.Millisecond), during, len(seq), transfers)
}

// TestProcessStoppedFollowerLapped stops a follower process with SIGSTOP
// under load until the leader's small ring laps it (the leader reports it
// lagging) and then a good deal more, then continues it: it must be caught
// up by a state transfer and active again.
func TestProcessStoppedFollowerLapped(t *testing.T) {
	pc := startProcs(t, 3, procRing(16<<10))
	lead := pc.waitLeader()
	lead.propose(t, "before", 20)
	victim := pc.follower(lead.id)
	w := pc.startWriter("w", 20, 60)
	pc.kill(victim, syscall.SIGSTOP)
	stopped := time.Now()
	if !waitFor(func() bool {
		for _, p := range pc.live() {
			var st procStatus
			p.with(func() { st = p.status })
			if st.role == Leader.String() && slices.Contains(st.lagging, victim) {
				return true
			}
		}
		return false
	}) {
		pc.kill(victim, syscall.SIGCONT)
		t.Fatalf("no leader reports the stopped replica %d lagging within %v", victim, hang)
	}
	lapped := time.Since(stopped)
	// Lagging, it may still be taken back from the ring once it applied
	// what its log holds; another 400 padded commands (over 30 KiB) make
	// sure the ring no longer holds that either, so it needs a transfer.
	w.progress(t, 400, "while the victim is lagging")
	pc.kill(victim, syscall.SIGCONT)
	t.Logf("replica %d lapped %v after SIGSTOP, continued %v after", victim, lapped.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	w.progress(t, 100, "after SIGCONT")
	pc.whole()
	w.halt(t)
	pc.whole()
	seq := pc.checkEqual(pc.allAcked())
	if pc.proc(victim).restored() == 0 {
		t.Fatalf("replica process %d was lapped but caught up without a state transfer", victim)
	}
	t.Logf("%d commands", len(seq))
}

// TestProcessStopTCP stops a process (a follower, then in another cluster
// the leader) with SIGSTOP for 3 s under load over the tcp provider, long
// past the verbs retry timeout, so its links break; after SIGCONT they
// must be rebuilt and the cluster whole again with equal sequences.
func TestProcessStopTCP(t *testing.T) {
	for _, leader := range []bool{false, true} {
		name := "follower"
		if leader {
			name = "leader"
		}
		t.Run(name, func(t *testing.T) {
			pc := startProcs(t, 3, procTCP)
			lead := pc.waitLeader()
			victim := lead.id
			if !leader {
				victim = pc.follower(lead.id)
			}
			w := pc.startWriter("w", 20, 0)
			w.progress(t, 50, "before SIGSTOP")
			pc.kill(victim, syscall.SIGSTOP)
			stopped := time.Now()
			if leader {
				pc.waitLeader(victim)
			}
			w.progress(t, 50, "while stopped")
			time.Sleep(time.Until(stopped.Add(3 * time.Second)))
			pc.kill(victim, syscall.SIGCONT)
			w.progress(t, 50, "after SIGCONT")
			pc.whole()
			w.halt(t)
			now := pc.whole()
			seq := pc.checkEqual(pc.allAcked())
			t.Logf("replica %d stopped for %v; replica %d leads; %d commands", victim, 3*time.Second, now.id, len(seq))
		})
	}
}

// TestProcessRestartIdle restarts a killed follower process into a cluster
// that is idle by then: nothing is proposed after it comes back. The
// leader must still take it back after its state transfer, and it must
// know it: active at the leader and no longer catching up (Stats.Behind),
// with no further proposal needed.
func TestProcessRestartIdle(t *testing.T) {
	pc := startProcs(t, 3, procRing(16<<10))
	lead := pc.waitLeader()
	victim := pc.follower(lead.id)
	pc.kill(victim, syscall.SIGKILL)
	lead.proposePad(t, "dead", 300, 60)
	back := pc.restart(victim)
	pc.whole()
	pc.checkEqual(pc.allAcked())
	t.Logf("restarted process %d restored %d state(s)", victim, back.restored())
}
