package poll

import "syscall"

// osYield gives the OS thread's core to another runnable thread, if any
// (sched_yield(2)). RawSyscall: the call returns at once, so the Go
// scheduler need not hand this P to another thread meanwhile.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
