package consensus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "run TestRandomFaults for this seed only (also GOMU_SEED)")

// faultKind is one step of a fault schedule.
type faultKind int

const (
	fCrash   faultKind = iota // Close a replica for good
	fPause                    // Pause a replica (a hung process)
	fResume                   // Resume a paused replica
	fRestart                  // start the replica crashed first again (a new incarnation)
	fIdle                     // only let time pass
)

// fault is a step: what to do, to whom (0 means "whoever leads when the
// step runs": which replica that is depends on timing, so it is resolved
// then and recorded), and how long to let the cluster run afterwards.
type fault struct {
	kind   faultKind
	target int
	dwell  time.Duration
}

func (f fault) String() string {
	who := "the leader"
	if f.target != 0 {
		who = fmt.Sprint("replica ", f.target)
	}
	switch f.kind {
	case fCrash:
		return fmt.Sprintf("crash %s, run %v", who, f.dwell)
	case fPause:
		return fmt.Sprintf("pause %s, run %v", who, f.dwell)
	case fResume:
		return fmt.Sprintf("resume the replica paused first, run %v", f.dwell)
	case fRestart:
		return fmt.Sprintf("restart the replica crashed first, run %v", f.dwell)
	}
	return fmt.Sprintf("run %v", f.dwell)
}

// schedule draws a cluster size and a fault schedule from seed. It keeps a
// majority running (crashed plus paused at most ⌊(n-1)/2⌋), so the cluster
// can always make progress once the faults are past; a resume wakes the
// replica paused longest, a restart starts the replica crashed first again,
// whoever that turned out to be in the run.
func schedule(seed uint64) (n int, steps []fault) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	n = 3
	if rng.IntN(2) == 1 {
		n = 5
	}
	f := (n - 1) / 2
	crashed, paused := 0, 0
	for len(steps) < 6+rng.IntN(5) {
		st := fault{dwell: time.Duration(10+rng.IntN(190)) * time.Millisecond}
		switch k := rng.IntN(10); {
		case k < 2 && crashed+paused < f:
			st.kind, crashed = fCrash, crashed+1
		case k < 5 && crashed+paused < f:
			st.kind, paused = fPause, paused+1
		case k < 8 && paused > 0:
			st.kind, paused = fResume, paused-1
		case k < 9 && crashed > 0:
			st.kind, crashed = fRestart, crashed-1
		default:
			st.kind = fIdle
		}
		if st.kind == fCrash || st.kind == fPause {
			// Half the time the leader, else a replica by id (which may
			// be the leader too, or already be down: then it is skipped).
			if rng.IntN(2) == 1 {
				st.target = 1 + rng.IntN(n)
			}
		}
		steps = append(steps, st)
	}
	return n, steps
}

// TestRandomFaults runs a seeded schedule of crashes, restarts, pauses and
// resumes against a cluster under concurrent proposals, restarts whatever
// is still crashed, and then checks that the cluster is whole (one leader,
// every replica active) and the histories: every replica's applied sequence
// is a prefix of one sequence, no command is applied twice, and every
// acknowledged proposal is applied, in its proposer's order. A failure prints its seed and the schedule as run;
// replay it with -seed=N or GOMU_SEED=N.
func TestRandomFaults(t *testing.T) {
	seeds := []uint64{}
	for s := uint64(1); s <= 20; s++ {
		seeds = append(seeds, s)
	}
	if testing.Short() {
		seeds = seeds[:3]
	}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	} else if env := os.Getenv("GOMU_SEED"); env != "" {
		s, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("GOMU_SEED=%q: %v", env, err)
		}
		seeds = []uint64{s}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runFaults(t, seed) })
	}
}

func runFaults(t *testing.T, seed uint64) {
	n, steps := schedule(seed)
	var ran []string // the schedule as run, with whom each step hit
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (replay: go test -run 'TestRandomFaults/seed%d$' -seed=%d ./consensus/), %d replicas, schedule:\n\t%s",
				seed, seed, seed, n, strings.Join(ran, "\n\t"))
		}
	})
	// A small ring: followers paused or restarted fall behind its reuse
	// point and come back by state transfer.
	c := startCluster(t, n, func(cfg *Config) { cfg.RingSize = 16 << 10 })

	// Proposers: each proposes its own unique commands, one at a time,
	// through whoever leads, and records what was acknowledged. A command
	// that failed is never retried: it may or may not be applied.
	// Each proposer stops after perProposer acknowledgements, which
	// bounds the run however fast the machine.
	const proposers, perProposer = 3, 300
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make([][]string, proposers)
	errs := make(chan error, proposers)
	for p := range proposers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if len(acked[p]) == perProposer {
					time.Sleep(time.Millisecond)
					continue
				}
				lead, err := c.findLeader()
				if err != nil {
					errs <- err
					return
				}
				cmd := fmt.Sprintf("w%d-%d", p, i)
				ctx, cancel := context.WithTimeout(context.Background(), hang)
				_, err = lead.Propose(ctx, []byte(cmd))
				cancel()
				if err == nil {
					acked[p] = append(acked[p], cmd)
				} else if !errors.Is(err, ErrNotLeaderSentinel) && !errors.Is(err, ErrPaused) && !errors.Is(err, ErrClosed) {
					errs <- fmt.Errorf("propose %q: %w", cmd, err)
					return
				} else {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}

	var paused []*Replica
	var crashed []int
	restarts := 0
	for _, st := range steps {
		var victim *Replica
		switch st.kind {
		case fCrash, fPause:
			if st.target == 0 {
				if r, err := c.findLeader(); err == nil {
					victim = r
				}
			} else if r := c.reps[st.target]; r != nil && !r.Paused() {
				victim = r
			}
		case fResume:
			if len(paused) > 0 {
				victim, paused = paused[0], paused[1:]
			}
		case fRestart:
			if len(crashed) > 0 {
				victim = c.restart(crashed[0])
				crashed = crashed[1:]
				restarts++
			}
		}
		what := st.String()
		if victim != nil {
			what += fmt.Sprintf(" [replica %d]", victim.ID())
		} else if st.kind != fIdle {
			what += " [skipped]"
		}
		ran = append(ran, what)
		if victim != nil {
			switch st.kind {
			case fCrash:
				c.crash(victim.ID())
				crashed = append(crashed, victim.ID())
			case fPause:
				victim.Pause()
				paused = append(paused, victim)
			case fResume:
				victim.Resume()
			}
		}
		time.Sleep(st.dwell)
	}
	for _, r := range paused {
		r.Resume()
	}
	for _, id := range crashed {
		c.restart(id)
		restarts++
	}
	ran = append(ran, "resume and restart all, stop proposing")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// One more command through the settled cluster: every replica that
	// applies it has applied everything acknowledged before it.
	final := c.propose("final")
	total := 1
	for _, a := range acked {
		total += len(a)
	}
	seq := c.checkConsistent(total)
	for _, a := range acked {
		mustContainInOrder(t, seq, append(a, final))
	}
	c.whole()
	transfers := uint64(0)
	for _, r := range c.live() {
		transfers += r.Stats().Transfers
	}
	t.Logf("%d replicas, %d steps, %d restarts, %d commands acknowledged, %d applied, %d state transfers", n, len(steps), restarts, total, len(seq), transfers)
}
