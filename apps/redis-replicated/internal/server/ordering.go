package server

import (
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Arrival order for writes. Blocked clients queue by arrival (arrival.go),
// but that cannot help a write that reaches the log before a blocking
// command that arrived earlier: two clients that send BRPOPLPUSH, and a
// third that then sends LPUSH, may have their goroutines run last-first
// (Go's poller hands over goroutines whose sockets became readable
// together in reverse), so the push is applied first and the wrong client
// pops; an UNSUBSCRIBE sent before a PUBLISH may run after it and count a
// receiver Redis would not.
//
// So while such commands are in use (a blocking command or a
// subscription change in the last orderWindow), a connection about to
// propose writes first waits, up to orderWait, until no other connection
// holds a command that arrived before its own and is not yet done:
//
//   - unread bytes in the kernel: the server keeps every client socket in
//     an epoll set of its own, polled without waiting, and reads a
//     readable socket's receive time with MSG_PEEK (nothing is consumed);
//   - a batch read but not yet done: each connection's intake is the
//     arrival of the batch it is running (-1 while reading), cleared when
//     its replies are ready or it blocks.
//
// Outside that window a write pays one atomic load. The wait is bounded:
// a connection that sits on a long batch (a script, WAIT) delays others'
// writes by orderWait at most.
const (
	orderWindow = 10 * time.Second
	orderWait   = 2 * time.Millisecond
)

// orderSet is the server's epoll set of client sockets, for the fence.
type orderSet struct {
	ep int // -1: no set (epoll failed): writes are not fenced
}

func newOrderSet() orderSet {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return orderSet{ep: -1}
	}
	return orderSet{ep: ep}
}

// add watches fd for unread bytes (level-triggered). The kernel drops it
// from the set when the socket closes.
func (o orderSet) add(fd int) {
	if o.ep < 0 || fd < 0 {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	unix.EpollCtl(o.ep, unix.EPOLL_CTL_ADD, fd, &ev)
}

// remove stops watching fd.
func (o orderSet) remove(fd int) {
	if o.ep < 0 || fd < 0 {
		return
	}
	unix.EpollCtl(o.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

func (o orderSet) close() {
	if o.ep >= 0 {
		unix.Close(o.ep)
	}
}

// noteOrdered opens (or extends) the window in which writes are fenced:
// called for each blocking command and subscription change.
func (s *Server) noteOrdered(now int64) {
	if until := now + int64(orderWindow); s.orderUntil.Load() < until {
		s.orderUntil.Store(until)
	}
}

// fenceScratch is a connection's buffers for the fence, made at its first
// fenced write.
type fenceScratch struct {
	events [32]unix.EpollEvent
	msg    unix.Msghdr
	iov    unix.Iovec
	one    [1]byte
	oob    [64]byte
}

// fence waits, up to orderWait, until no other connection holds a command
// that arrived before this batch (see above); only inside the window.
func (c *conn) fence() {
	if c.s.order.ep < 0 || c.s.orderUntil.Load() < c.arrived {
		return
	}
	var deadline time.Time
	for spins := 0; c.earlierPending(); spins++ {
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(orderWait)
		} else if now.After(deadline) {
			return
		}
		if hook := c.s.fenceWaits.Load(); hook != nil {
			(*hook)()
		}
		// The earlier connection's goroutine is runnable: let it run,
		// and sleep when yielding alone does not get it there.
		if spins < 16 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// earlierPending reports whether another connection holds a command that
// arrived before c's batch: unread in its socket, or read and not done.
func (c *conn) earlierPending() bool {
	if c.fenceBuf == nil {
		f := &fenceScratch{}
		f.iov.Base = &f.one[0]
		f.iov.SetLen(1)
		f.msg.Iov = &f.iov
		f.msg.SetIovlen(1)
		c.fenceBuf = f
	}
	f := c.fenceBuf
	n, err := unix.EpollWait(c.s.order.ep, f.events[:], 0)
	if err == nil {
		for _, ev := range f.events[:n] {
			if int(ev.Fd) == c.fd {
				continue
			}
			if at := f.peekArrival(int(ev.Fd)); at != 0 && at < c.arrived {
				return true
			}
		}
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for x := range c.s.conns {
		if x == c {
			continue
		}
		if at := x.intake.Load(); at == intakeReading || at != 0 && at < c.arrived {
			return true
		}
	}
	return false
}

// peekArrival is the receive time of the first unread bytes of socket fd,
// read without consuming them: 0 if it has none or no time.
func (f *fenceScratch) peekArrival(fd int) int64 {
	f.msg.Control = &f.oob[0]
	f.msg.SetControllen(len(f.oob))
	_, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&f.msg)),
		unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if errno != 0 {
		return 0
	}
	return cmsgTimestamp(f.oob[:f.msg.Controllen])
}
