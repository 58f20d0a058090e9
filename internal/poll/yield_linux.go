package poll

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// osYield gives the OS thread's core to another runnable thread, if any
// (sched_yield(2)). RawSyscall: the call returns at once, so the Go
// scheduler need not hand this P to another thread meanwhile.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }

// Nap blocks the calling OS thread in the kernel for d (nanosleep(2)),
// where time.Sleep would park the goroutine on the runtime's timers. A
// thread with a real-time policy wakes on time only this way: the kernel
// ignores timer slack for it and preempts ordinary threads to run it.
func Nap(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// NapHoldingP is Nap without telling the Go scheduler: the goroutine's P
// stays with the sleeping thread, so the thread runs the moment it wakes
// instead of waiting for another goroutine to give a P up (which a spinning
// poller does only when preempted, after up to 10 ms). The process loses
// the P's use meanwhile, and a stop-the-world waits up to d for it: only
// for short naps, and only with a P to spare.
func NapHoldingP(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		_, _, errno := syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
