package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A Fault is one way a machine misbehaves, injected into one replica (the
// leader or a follower, picked when the fault starts) and ended after the
// fault window: the dqlite evaluation's slow CPU, crash and memory
// contention, and more.
type Fault struct {
	Name string
	// Doc says what the fault does, for --help and the README's table.
	Doc string
	// Net marks a network fault: it needs the test bed.
	Net bool
	// Root marks a fault that needs root (cgroups).
	Root bool
	// inject starts the fault on replica i; end stops it and puts the
	// replica back as it was.
	inject func(f *injection, i int) (end func() error, err error)
}

// injection is what a fault acts through.
type injection struct {
	ctx   context.Context
	sys   System
	env   *Env
	n     int    // replicas
	role  string // "leader" or "follower": crash loops pick anew each time
	log   func(format string, args ...any)
	knobs Knobs
	// events counts what happened during the fault ("kills").
	events map[string]int
}

// Knobs size the faults.
type Knobs struct {
	CPUShare       float64       // cpu-quota: the share of one CPU left (default 0.1)
	Neighbours     int           // busy-neighbours: busy processes beside the replica (default 2)
	MemoryHeadroom int64         // memory-limit: bytes allowed above the replica's use (default 8 MiB)
	CrashEvery     time.Duration // crash-loop: one kill per period (default 1 s)
	LossPercent    int           // loss: percent of packets dropped each way (default 10)
	SlowRate       string        // slow-link: tbf rate (default 1mbit)
}

func (k Knobs) withDefaults() Knobs {
	if k.CPUShare <= 0 {
		k.CPUShare = 0.1
	}
	if k.Neighbours <= 0 {
		k.Neighbours = 2
	}
	if k.MemoryHeadroom <= 0 {
		k.MemoryHeadroom = 8 << 20
	}
	if k.CrashEvery <= 0 {
		k.CrashEvery = time.Second
	}
	if k.LossPercent <= 0 {
		k.LossPercent = 10
	}
	if k.SlowRate == "" {
		k.SlowRate = "1mbit"
	}
	return k
}

// Faults is the catalogue, in the order a run takes them.
var Faults = []*Fault{
	{Name: "cpu-quota", Doc: "a cgroup CPU quota: the replica gets a tenth of one CPU", Root: true, inject: cpuQuota},
	{Name: "busy-neighbours", Doc: "the replica pinned to one CPU beside busy processes", inject: busyNeighbours},
	{Name: "kill", Doc: "kill -9 once; restarted when the window ends (it rejoins the running cluster)", inject: killOnce},
	{Name: "crash-loop", Doc: "kill -9 and restart, once a second (a new victim of the role each time)", inject: crashLoop},
	{Name: "memory-limit", Doc: "a cgroup memory limit a few MiB above what the replica uses", Root: true, inject: memoryLimit},
	{Name: "pause-fifo", Doc: "the replica's own pause (its fifo): it stops serving and replicating", inject: pauseFifo},
	{Name: "sigstop", Doc: "SIGSTOP, then SIGCONT", inject: sigstop},
	{Name: "isolate", Doc: "the replica's host cut off from every host (link down)", Net: true, inject: isolate},
	{Name: "split", Doc: "the replica's host cut off from the other replicas only (clients and registry still reach it)", Net: true, inject: split},
	{Name: "loss", Doc: "a share of the host's packets dropped each way (nftables; no netem in this kernel)", Net: true, inject: loss},
	{Name: "slow-link", Doc: "the host's link held to a low rate each way (tc tbf)", Net: true, inject: slowLink},
}

// FaultNamed finds a fault of the catalogue.
func FaultNamed(name string) (*Fault, error) {
	for _, f := range Faults {
		if f.Name == name {
			return f, nil
		}
	}
	var names []string
	for _, f := range Faults {
		names = append(names, f.Name)
	}
	return nil, fmt.Errorf("no fault %q (faults: %v)", name, names)
}

func (f *injection) proc(i int) (*Proc, error) {
	p := f.sys.Proc(i)
	if p == nil {
		return nil, fmt.Errorf("replica %d is down", i+1)
	}
	return p, nil
}

var cgroupSeq struct {
	sync.Mutex
	n int
}

func cgroupName() string {
	cgroupSeq.Lock()
	defer cgroupSeq.Unlock()
	cgroupSeq.n++
	return fmt.Sprintf("gomu-faults-%d-%d", os.Getpid(), cgroupSeq.n)
}

func cpuQuota(f *injection, i int) (func() error, error) {
	p, err := f.proc(i)
	if err != nil {
		return nil, err
	}
	g, err := newCgroup("cpu", cgroupName())
	if err != nil {
		return nil, err
	}
	if err := errors.Join(g.setCPU(f.knobs.CPUShare), g.add(p.Pid())); err != nil {
		g.close()
		return nil, err
	}
	return g.close, nil
}

func memoryLimit(f *injection, i int) (func() error, error) {
	p, err := f.proc(i)
	if err != nil {
		return nil, err
	}
	g, err := newCgroup("memory", cgroupName())
	if err != nil {
		return nil, err
	}
	if !g.v2 {
		// v1 leaves a process's pages charged where they were; moving
		// the charge makes the limit bite on what it already uses.
		_ = g.write("memory.move_charge_at_immigrate", "3")
	}
	if err := g.add(p.Pid()); err != nil {
		g.close()
		return nil, err
	}
	use, err := g.memoryUsage()
	if err == nil {
		err = g.setMemory(use + f.knobs.MemoryHeadroom)
	}
	if err != nil {
		g.close()
		return nil, err
	}
	f.log("memory-limit: replica %d's group limited to %d MiB (%d MiB charged to it when it moved in)", i+1, (use+f.knobs.MemoryHeadroom)>>20, use>>20)
	return g.close, nil
}

func busyNeighbours(f *injection, i int) (func() error, error) {
	p, err := f.proc(i)
	if err != nil {
		return nil, err
	}
	cpu := strconv.Itoa(runtime.NumCPU() - 1)
	all := "0-" + cpu
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpu, strconv.Itoa(p.Pid())).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("busy-neighbours: pin replica %d: %v: %s", i+1, err, out)
	}
	var ns []*Proc
	end := func() error {
		var errs []error
		for _, n := range ns {
			errs = append(errs, n.Kill(5*time.Second))
		}
		if p := f.sys.Proc(i); p != nil {
			if out, err := exec.Command("taskset", "-a", "-p", "-c", all, strconv.Itoa(p.Pid())).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("busy-neighbours: unpin replica %d: %v: %s", i+1, err, out))
			}
		}
		return errors.Join(errs...)
	}
	for k := range f.knobs.Neighbours {
		n, err := StartProc(fmt.Sprintf("busy neighbour %d", k+1),
			f.env.Command(f.env.Replicas[i], "taskset", "-c", cpu, "sh", "-c", "while :; do :; done"), "")
		if err != nil {
			end()
			return nil, err
		}
		ns = append(ns, n)
	}
	return end, nil
}

func sigstop(f *injection, i int) (func() error, error) {
	p, err := f.proc(i)
	if err != nil {
		return nil, err
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	return func() error { return p.Signal(syscall.SIGCONT) }, nil
}

func pauseFifo(f *injection, i int) (func() error, error) {
	if err := f.sys.Pause(i); err != nil {
		return nil, err
	}
	return func() error { return f.sys.Resume(i) }, nil
}

// crashLoop kills replica i and restarts it, then once every CrashEvery
// kills whichever replica holds the role now (the leader elected after the
// last kill, for the leader), as dqlite's crash scripts do.
func crashLoop(f *injection, i int) (func() error, error) {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		for victim := i; ; {
			next := time.Now().Add(f.knobs.CrashEvery)
			if err = f.sys.Kill(victim); err != nil {
				return
			}
			f.events["kills"]++
			if err = f.sys.Restart(ctx, victim); err != nil {
				if ctx.Err() != nil {
					// The window ended while it restarted: end restarts it.
					err = nil
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			if victim, err = pickRole(ctx, f.sys, f.n, f.role); err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				return
			}
		}
	}()
	return func() error {
		cancel()
		err := <-done
		return errors.Join(err, restartDown(f.ctx, f.sys, f.n))
	}, nil
}

func killOnce(f *injection, i int) (func() error, error) {
	if err := f.sys.Kill(i); err != nil {
		return nil, err
	}
	f.events["kills"]++
	return func() error { return restartDown(f.ctx, f.sys, f.n) }, nil
}

func isolate(f *injection, i int) (func() error, error) { return f.env.Isolate(f.env.Replicas[i]) }

func split(f *injection, i int) (func() error, error) {
	var others []string
	for j, h := range f.env.Replicas {
		if j != i {
			others = append(others, h)
		}
	}
	return f.env.Cut(f.env.Replicas[i], others)
}

func loss(f *injection, i int) (func() error, error) {
	return f.env.Loss(f.env.Replicas[i], f.knobs.LossPercent)
}

func slowLink(f *injection, i int) (func() error, error) {
	return f.env.Slow(f.env.Replicas[i], f.knobs.SlowRate)
}

// pickRole is the replica that holds role now: the leader, or the
// replica after it.
func pickRole(ctx context.Context, sys System, n int, role string) (int, error) {
	lead, err := sys.Leader(ctx)
	if err != nil {
		return -1, err
	}
	if role == "leader" {
		return lead, nil
	}
	for j := 1; ; j++ {
		// The first running replica after the leader.
		if j >= n {
			return -1, fmt.Errorf("no running follower")
		} else if k := (lead + j) % n; sys.Proc(k) != nil {
			return k, nil
		}
	}
}

// restartDown restarts every replica that is down (killed by a fault, or
// ended by itself: the kernel's OOM killer under a memory limit).
func restartDown(ctx context.Context, sys System, n int) error {
	var errs []error
	for i := range n {
		p := sys.Proc(i)
		if p != nil {
			if ended, _ := p.Exited(); !ended {
				continue
			}
			// It ended by itself: forget it, then start it again.
			_ = sys.Kill(i)
		}
		if err := sys.Restart(ctx, i); err != nil {
			errs = append(errs, fmt.Errorf("restart replica %d: %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}
