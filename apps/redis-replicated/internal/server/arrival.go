package server

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Arrival times. Redis runs commands in the order they arrived, and a test
// or an application may rely on that across connections: two clients that
// send BRPOPLPUSH one after the other expect the first to be served first.
// Here every connection's goroutine proposes its own commands, and the Go
// scheduler may run a later one first (its poller even hands goroutines
// whose sockets became readable together over last-first). So a blocking
// command carries when the kernel received it (store's gomu.blockat), and
// the store queues its waiter in arrival order, whatever order the entries
// took in the log.
//
// The time is the kernel's receive timestamp (SO_TIMESTAMPNS, read with
// recvmsg(2) on every read of a TCP connection, one syscall as read(2)):
// taken when the bytes reached the socket, before any scheduling. Where the
// kernel gives none (another kind of connection, or the first bytes after
// the server started: the kernel turns stamping on a moment after it is
// first asked for), it is the time the read returned.

// arrivalListen listens on addr with receive timestamps on: accepted
// connections inherit the option, and the kernel stamps every packet from
// then on, so even a connection's first bytes carry a time.
func arrivalListen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// arrivalReader is an io.Reader over a TCP connection that also keeps the
// kernel's receive time of the bytes each Read returned. Its Read
// allocates nothing: the message header, its vector and the control
// buffer are its own, and the poller's callback is bound once.
type arrivalReader struct {
	rc  syscall.RawConn
	fd  int // the socket, for the fence's epoll set (-1: unknown)
	msg unix.Msghdr
	iov unix.Iovec
	oob [64]byte // room for one timestamp message, and then some
	p   []byte
	n   int
	err error
	// at is the receive time of the last Read's bytes in Unix ns, 0 when
	// the kernel gave none.
	at   int64
	recv func(fd uintptr) bool
	// intake, if set, is marked intakeReading as bytes are taken from
	// the socket; the connection's noteArrival then sets their arrival
	// (ordering.go).
	intake *atomic.Int64
}

// intakeReading marks a connection taking bytes from its socket.
const intakeReading = -1

// newArrivalReader reads nc with timestamps, or reports false when nc is
// not a TCP connection.
func newArrivalReader(nc net.Conn) (*arrivalReader, bool) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, false
	}
	r := &arrivalReader{rc: rc, fd: -1}
	rc.Control(func(fd uintptr) { r.fd = int(fd) })
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.recv = r.recvmsg
	return r, true
}

// Read reads into p as the connection's Read would (deadlines included:
// the poller enforces them), noting the bytes' receive time.
func (r *arrivalReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err, r.at = p, 0, nil, 0
	if err := r.rc.Read(r.recv); err != nil {
		return 0, err
	}
	r.p = nil
	if r.err != nil {
		return 0, r.err
	}
	if r.n == 0 {
		return 0, io.EOF
	}
	return r.n, nil
}

// recvmsg is the poller's callback: false asks it to wait until the
// socket is readable.
func (r *arrivalReader) recvmsg(fd uintptr) bool {
	r.iov.Base = &r.p[0]
	r.iov.SetLen(len(r.p))
	r.msg.Control = &r.oob[0]
	r.msg.SetControllen(len(r.oob))
	if r.intake != nil {
		r.intake.Store(intakeReading) // before the bytes leave the socket
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
		switch errno {
		case 0:
			r.n = int(n)
			r.at = cmsgTimestamp(r.oob[:r.msg.Controllen])
			return true // intake stays "reading" until noteArrival
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.intake != nil {
				r.intake.Store(0)
			}
			return false
		default:
			r.err = &net.OpError{Op: "read", Net: "tcp", Err: errno}
			return true
		}
	}
}

// cmsgTimestamp finds SCM_TIMESTAMPNS among the control messages buf
// holds: the receive time in Unix ns, or 0.
func cmsgTimestamp(buf []byte) int64 {
	for len(buf) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(buf) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			int(h.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&buf[unix.CmsgLen(0)]))
			return ts.Nano()
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(buf) {
			return 0
		}
		buf = buf[next:]
	}
	return 0
}

// noteArrival notes when the bytes the connection just read arrived, and
// makes it the connection's intake until its batch is done.
func (c *conn) noteArrival() {
	c.arrived = 0
	if c.arrivals != nil {
		c.arrived = c.arrivals.at
	}
	if c.arrived == 0 {
		c.arrived = time.Now().UnixNano()
	}
	c.intake.Store(c.arrived)
}
