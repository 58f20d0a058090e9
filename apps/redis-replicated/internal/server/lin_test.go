package server

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/lincheck"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// linPause is how long the leader stays paused: well past the relaxed
// profile's 100 ms suspect timeout, so that the others elect a new one.
const linPause = 300 * time.Millisecond

// linFaults is how many times a faulty history of ops operations pauses
// the leader: a few, and one more per 2500 operations of a long run.
func linFaults(ops int) int { return max(3, ops/2500) }

// linDeadline bounds the workload of a history of ops operations: a hang
// detector, ten times what a loaded machine needs.
func linDeadline(ops int) time.Duration { return time.Minute + time.Duration(ops)*5*time.Millisecond }

// linPhase is one history on a cluster.
type linPhase struct {
	name        string
	pause       bool // pause the leader linFaults times
	leaderReads bool // reads go where writes go
}

// TestLinearizable runs clients on an in-process 3-replica cluster, writes
// through the leader and reads on every replica, and checks the history
// with porcupine: with no fault, with the leader paused several times (as
// the fifo's p does), and the same with reads sent where writes go (the
// leader, as far as each client knows), a check of the harness itself: a
// violation that shows only when followers serve reads is theirs. On shm
// and on tcp. GOMU_LIN_OPS, GOMU_LIN_RUNS and GOMU_LIN_BUDGET size a long
// run; a violation's history is drawn in GOMU_LIN_DIR (default the
// system's temporary directory).
func TestLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault run of thousands of operations per transport")
	}
	linTest(t, false, []linPhase{
		{"no-fault", false, false},
		{"leader-paused", true, false},
		{"leader-paused-leader-reads", true, true},
	})
}

// TestLinearizableStaleReads is the harness's positive control, run when
// GOMU_LIN_STALE=1: the same workload on servers whose followers serve
// stale reads (--follower-reads stale), which may miss acknowledged writes.
// It reports what the check found and fails only when the workload does:
// whether a stale read happens is up to timing.
func TestLinearizableStaleReads(t *testing.T) {
	if os.Getenv("GOMU_LIN_STALE") != "1" {
		t.Skip("a positive control for the checker: GOMU_LIN_STALE=1 runs it")
	}
	linTest(t, true, []linPhase{
		{"no-fault", false, false},
		{"leader-paused", true, false},
	})
}

func linTest(t *testing.T, stale bool, phases []linPhase) {
	knobs, err := lincheck.KnobsFromEnv(3000)
	if err != nil {
		t.Fatal(err)
	}
	for _, transport := range []string{"shm", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			for run := range knobs.Runs {
				c := startClusterOpts(t, 3, clusterOpts{transport: transport, staleReads: stale})
				for _, ph := range phases {
					name := ph.name
					if knobs.Runs > 1 {
						name = fmt.Sprintf("run%d/%s", run+1, ph.name)
					}
					t.Run(name, func(t *testing.T) {
						res := linRun(t, c, knobs, fmt.Sprintf("%s-r%d-%s", transport, run+1, ph.name), ph)
						switch {
						case stale:
							t.Logf("stale follower reads: %v (keys %q) %s", res.Verdict, res.BadKeys, res.HTML)
						case res.Verdict == lincheck.Violation:
							t.Errorf("history not linearizable (keys %q): see %s", res.BadKeys, res.HTML)
						case res.Verdict == lincheck.Inconclusive:
							t.Errorf("porcupine did not decide within %v (%s raises it)", knobs.Budget, lincheck.EnvBudget)
						}
					})
				}
				c.Close() // idempotent: the cleanup closes it again
			}
		})
	}
}

// linRun runs one history on c, with ph's faults, and checks it.
func linRun(t *testing.T, c *testCluster, knobs lincheck.Knobs, name string, ph linPhase) lincheck.Result {
	nodes := c.Live()
	target := lincheck.Redis{LeaderReads: ph.leaderReads}
	for _, n := range nodes {
		target.Addrs = append(target.Addrs, n.Srv.Addr())
		target.Names = append(target.Names, fmt.Sprintf("r%d", n.ID))
	}
	w := lincheck.Workload{Ops: knobs.Ops, Prefix: name + ":"}
	rec := lincheck.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), linDeadline(knobs.Ops))
	defer cancel()
	faults := 0
	if ph.pause {
		faults = linFaults(knobs.Ops)
	}
	var paused []int
	start := time.Now()
	err := w.RunFaults(ctx, rec, target.NewTarget, faults, func(int) {
		lead := linLeader(t, c)
		paused = append(paused, lead.ID)
		lead.Rep.Pause()
		time.Sleep(linPause)
		lead.Rep.Resume()
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("workload of %d operations (%v, leaders paused %v): %v", knobs.Ops, took.Round(time.Millisecond), paused, err)
	}
	res, err := rec.Check(lincheck.Options{Budget: knobs.Budget, Name: t.Name()})
	t.Logf("%s: workload %v, leaders paused %v", name, took.Round(time.Millisecond), paused)
	t.Logf("%v", res)
	if err != nil {
		t.Error(err)
	}
	if !ph.leaderReads {
		for _, n := range nodes {
			if r := fmt.Sprintf("r%d", n.ID); res.ReadsAt[r] == 0 {
				t.Errorf("replica %s served no read of the history: reads per replica %v", r, res.ReadsAt)
			}
		}
	}
	return res
}

// linLeader waits for a leader every live replica names, as c.waitLeader
// does, failing t rather than the cluster's test.
func linLeader(t *testing.T, c *testCluster) *node {
	t.Helper()
	var lead *node
	if !replicatest.WaitFor(func() bool {
		lead = nil
		ns := c.Live()
		for _, n := range ns {
			if n.Rep.Role() == consensus.Leader && !n.Rep.Paused() {
				lead = n
			}
		}
		for _, n := range ns {
			if lead == nil || n.Rep.Leader() != lead.ID {
				return false
			}
		}
		return lead != nil
	}) {
		t.Fatalf("no leader agreed on within %v", hang)
	}
	return lead
}
