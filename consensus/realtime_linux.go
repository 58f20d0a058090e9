package consensus

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// lockRealtime locks the calling goroutine to its OS thread and gives the
// thread the SCHED_FIFO policy at prio. The thread is never unlocked: when
// the goroutine returns, the runtime ends the thread with it, so the policy
// never reaches another goroutine. On failure (no CAP_SYS_NICE, no
// RLIMIT_RTPRIO) the thread stays locked but ordinary.
func lockRealtime(prio int) error {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_FIFO %d: %w", prio, err)
	}
	return nil
}
