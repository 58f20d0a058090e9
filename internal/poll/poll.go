// Package poll implements the waiting policies of gomu's poll loops: spin,
// spin-then-yield and sleep. Every loop that waits for memory or completions
// takes a Mode so that a 3-replica cluster plus a client can share a 2-core
// machine without starving each other.
package poll

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Mode is how a poll loop waits between unsuccessful polls.
type Mode uint8

const (
	// Spin busy-polls: lowest latency, burns a core.
	Spin Mode = iota
	// SpinYield spins for a while, then yields the processor between polls:
	// first to the process's other goroutines (runtime.Gosched), then, when
	// the Go scheduler had nothing else to run, to other processes
	// (sched_yield). The second matters when a whole cluster shares a few
	// cores: a yielding replica hands its core to a runnable peer process
	// within microseconds instead of at the end of the kernel's time slice,
	// so heartbeats keep moving and µs detector timeouts hold.
	SpinYield
	// Sleep spins briefly, then sleeps with a growing back-off up to a cap.
	Sleep
)

var modeNames = [...]string{"spin", "yield", "sleep"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode reads "spin", "yield" (or "spin-then-yield") and "sleep".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "spin":
		return Spin, nil
	case "yield", "spin-then-yield":
		return SpinYield, nil
	case "sleep":
		return Sleep, nil
	}
	return 0, fmt.Errorf("poll: unknown mode %q (want spin, yield or sleep)", s)
}

const (
	spinBeforeYield = 2000
	spinBeforeSleep = 200
	minSleep        = 20 * time.Microsecond
	maxSleep        = time.Millisecond
)

// Waiter carries the state of one wait. Reset it after every success; call
// Wait after every unsuccessful poll. The zero value spins.
type Waiter struct {
	Mode Mode
	// Max caps one sleep of the Sleep mode (0: a millisecond). A loop that
	// waits for a peer's answer, not for work to arrive, caps it lower:
	// the answer is due within microseconds, and a millisecond of back-off
	// would be most of its latency.
	Max   time.Duration
	spins int
	sleep time.Duration
}

// Reset starts a new wait.
func (w *Waiter) Reset() { w.spins, w.sleep = 0, 0 }

// Wait pauses according to the mode after an unsuccessful poll.
func (w *Waiter) Wait() {
	switch w.Mode {
	case Spin:
		return
	case SpinYield:
		if w.spins < spinBeforeYield {
			w.spins++
			return
		}
		runtime.Gosched()
		osYield()
	case Sleep:
		if w.spins < spinBeforeSleep {
			w.spins++
			return
		}
		top := maxSleep
		if w.Max > 0 {
			top = w.Max
		}
		if w.sleep == 0 {
			w.sleep = min(minSleep, top)
		} else if w.sleep < top {
			w.sleep = min(2*w.sleep, top)
		}
		time.Sleep(w.sleep)
	}
}

// Until polls cond until it returns true or the deadline passes; it reports
// whether cond became true.
func Until(mode Mode, deadline time.Time, cond func() bool) bool {
	w := Waiter{Mode: mode}
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		// Reading the clock costs more than a poll: check it now and then.
		if i&63 == 0 && time.Now().After(deadline) {
			return cond()
		}
		w.Wait()
	}
}

// SleepContext sleeps for d, or until ctx ends, and returns ctx's error if
// it ended first (or had already): the back-off of a client between
// attempts, which a cancelled run must not sit out.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
