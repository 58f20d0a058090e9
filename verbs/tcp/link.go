package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

const (
	bufSize = 64 << 10 // bufio size of every connection, each way
	// maxBatch bounds how many requests the sender takes per lock.
	maxBatch = 64
	// writeChunk bounds one socket write, so a large payload reports
	// progress to the retry timer as it goes.
	writeChunk = 256 << 10
	// maxDirect bounds the payload of a WRITE that a post may put on the
	// wire itself (see postDirect); larger ones go through the sender.
	maxDirect = 4 << 10
	// directInFlight is how many requests may be in flight for a post to
	// still take the direct path. A post into a busy pipeline leaves the
	// request to the sender, which writes a whole batch with one system
	// call, rather than paying one per request.
	directInFlight = 0
)

var errLinkDown = errors.New("link shut down")

// directWriteLimit, when not negative, caps what one direct write puts
// into the socket (0 acts as EAGAIN), so that tests can drive the hand-over
// of a partly written frame to the sender.
var directWriteLimit = -1

// link is the initiator side of one connected QP: a connection to the
// peer's device, a sender goroutine that dials it and writes requests, and
// a receiver goroutine that turns acks into completions. A link lives from
// Connect to Reset or Close; once it fails it is not redialed (the peer
// device it names is gone), the QP goes to ERROR, and a new Connect makes
// a new link.
type link struct {
	q    *qp
	ep   endpoint
	rt   time.Duration
	ctx  context.Context
	stop context.CancelFunc
	kick chan struct{}
	idle atomic.Bool // the sender is parked waiting for a kick
	wg   sync.WaitGroup

	connMu sync.Mutex
	conn   *net.TCPConn
	down   bool

	// sendMu is the right to write to the connection. The sender holds it
	// from before it dials until it parks waiting for a kick, and again
	// from the kick on; it keeps it when it exits, so nobody writes to a
	// link whose sender is gone. A post takes it only with TryLock, for
	// the direct path (see postDirect). The fields below are guarded by
	// it.
	sendMu sync.Mutex
	raw    syscall.RawConn // set once connected
	// dbuf[doff:dlen] is what a direct post could not get into the
	// socket: the sender writes it before anything else.
	dbuf       []byte
	doff, dlen int
	wfn        func(fd uintptr) bool // writes dbuf[doff:dlen] once, never waits
	wn         int
	werr       error

	// Retry timer. last is the time of the latest progress (an ack, bytes
	// written or read) as nanoseconds since t0. The receiver's read
	// deadline is armed when requests go in flight; when it fires, the
	// receiver fails the oldest request if there has been no progress for
	// rt, and otherwise re-arms it. This costs no timer operation per
	// request.
	t0    time.Time
	last  atomic.Int64
	armed bool // guarded by q.mu
	// batch is how many requests the sender took last time, guarded by
	// q.mu: more than one means a pipelining caller, which the direct
	// path would slow down.
	batch int

	// dead is set (under q.mu) when the connection failed while nothing
	// was outstanding: the next post fails at once with RetryExceeded.
	dead bool
}

func newLink(q *qp, ep endpoint) *link {
	ctx, stop := context.WithCancel(context.Background())
	l := &link{
		q:    q,
		ep:   ep,
		rt:   q.dev.opts.RetryTimeout,
		ctx:  ctx,
		stop: stop,
		kick: make(chan struct{}, 1),
		t0:   time.Now(),
		dbuf: make([]byte, reqLen+min(q.maxInline, maxDirect)),
	}
	// Built once so that the direct path does not allocate a closure per
	// post. It always reports done, so RawConn.Write never parks on
	// EAGAIN: what did not fit is left for the sender.
	l.wfn = func(fd uintptr) bool {
		p := l.dbuf[l.doff:l.dlen]
		if lim := directWriteLimit; lim >= 0 && len(p) > lim {
			if lim == 0 {
				l.wn, l.werr = 0, unix.EAGAIN
				return true
			}
			p = p[:lim]
		}
		l.wn, l.werr = unix.Write(int(fd), p)
		return true
	}
	return l
}

func (l *link) start() {
	l.wg.Add(1)
	go l.send()
}

// shutdown stops the link's goroutines without waiting for them: it
// cancels a dial and closes the connection under any blocked read or
// write. Safe to call more than once and with q.mu held.
func (l *link) shutdown() {
	l.stop()
	l.connMu.Lock()
	l.down = true
	if l.conn != nil {
		l.conn.Close()
	}
	l.connMu.Unlock()
}

// kickSender wakes the sender after a post that did not take the direct
// path. A post that is first in the unsent queue (fresh) is latency-bound:
// the caller will likely spin on its CQ for this very request, or the
// direct path has just sent the one before it. So if the sender was
// parked the poster also yields: the woken sender sits in this P's
// runnext, and a poster spinning on without yielding would leave it there
// until another P steals it, which costs the runtime a sleep (tens of µs
// of timer slack). Yielding runs the sender here at once; the post itself
// still never waits for the network. Posts that join a queue the sender
// has yet to drain never yield, so pipelining is unaffected.
func (l *link) kickSender(fresh bool) {
	select {
	case l.kick <- struct{}{}:
	default:
	}
	if fresh && l.idle.Load() {
		runtime.Gosched()
	}
}

func (l *link) touch() { l.last.Store(int64(time.Since(l.t0))) }

// dial connects to the peer's device and exchanges the hello, all within
// the retry timeout.
func (l *link) dial() (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.rt)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.ep.addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.TCPConn)
	conn.SetNoDelay(true)
	l.connMu.Lock()
	if l.down {
		l.connMu.Unlock()
		conn.Close()
		return nil, errLinkDown
	}
	l.conn = conn
	l.connMu.Unlock()

	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	q := l.q
	h := hello{
		target: l.ep,
		init:   endpoint{qpn: q.num, gen: q.gen.Load(), nonce: q.dev.nonce},
		wait:   l.rt,
	}
	var b [helloLen]byte
	h.put(b[:])
	if _, err := conn.Write(b[:]); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	var rb [helloReplyLen]byte
	if _, err := io.ReadFull(conn, rb[:]); err != nil {
		return nil, fmt.Errorf("read hello reply: %w", err)
	}
	st, err := parseHelloReply(rb[:])
	if err != nil {
		return nil, err
	}
	if st != verbs.StatusSuccess {
		return nil, fmt.Errorf("peer device has no QP %d at generation %d", l.ep.qpn, l.ep.gen)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// frame is what the sender needs of one request, copied out of its slot
// under q.mu.
type frame struct {
	seq     uint64
	op      verbs.Opcode
	inlined bool
	length  int
	off     int // in mr, or in the QP's inline buffer
	remote  verbs.Remote
	mr      *mr // referenced for the sender; nil when inlined
}

// progressWriter is the sender's socket writer: it writes large buffers
// in chunks and counts every chunk as progress for the retry timer.
type progressWriter struct{ l *link }

func (w progressWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := w.l.conn.Write(p[n:min(len(p), n+writeChunk)])
		n += k
		if k > 0 {
			w.l.touch()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (l *link) send() {
	defer l.wg.Done()
	// Held while dialing and writing, released only while parked, and kept
	// on return (see sendMu).
	l.sendMu.Lock()
	conn, err := l.dial()
	if err == nil {
		l.raw, err = conn.SyscallConn()
	}
	if err != nil {
		l.q.linkFailed(l, fmt.Errorf("connect to %s: %w", l.ep.addr, err))
		return
	}
	l.wg.Add(1)
	go l.receive(conn)

	w := bufio.NewWriterSize(progressWriter{l}, bufSize)
	batch := make([]frame, 0, maxBatch)
	var hdr [reqLen]byte
	for {
		batch = batch[:0]
		// What a direct post left behind goes first: it is older than
		// anything still queued.
		if l.doff < l.dlen {
			_, err = w.Write(l.dbuf[l.doff:l.dlen])
			l.doff, l.dlen = 0, 0
		}
		var ok bool
		if err == nil {
			batch, ok = l.q.takeBatch(l, batch)
			if !ok {
				return
			}
			for i := range batch {
				if err = l.writeFrame(w, &batch[i], hdr[:]); err != nil {
					break
				}
			}
		}
		if err == nil && w.Buffered() > 0 {
			err = w.Flush()
		}
		if err != nil {
			// Closing the connection wakes the receiver, which fails the
			// outstanding requests.
			slog.Debug("tcp: send", "qp", l.q.num, "peer", l.ep.addr, "err", err)
			l.shutdown()
			for i := range batch {
				if batch[i].mr != nil {
					batch[i].mr.unpin()
				}
			}
			return
		}
		if len(batch) == 0 {
			l.idle.Store(true)
			l.sendMu.Unlock()
			select {
			case <-l.kick:
				l.sendMu.Lock()
				l.idle.Store(false)
			case <-l.ctx.Done():
				l.sendMu.Lock()
				return
			}
		}
	}
}

// postDirect is the direct path of a post: the request just queued at seq
// q.tail-1 has nothing unsent ahead of it, so if the poster can take the
// sender's right to write, it encodes the frame and writes it to the
// socket itself, with one non-blocking write, saving the wake-up of the
// sender. Called with q.mu held; it releases it. It reports false, with
// q.mu still held and nothing changed, if the request must go through the
// sender.
//
// It cannot block: sendMu is only tried, and the write never waits for
// the socket (what does not fit stays in dbuf, which the sender writes
// before anything else). It cannot reorder: the request is moved to in
// flight under q.mu together with taking sendMu, and the sender takes
// requests only while holding sendMu, so whatever the sender took earlier
// is already in the socket or in its flushed buffer, and whatever it takes
// later goes after dbuf.
func (l *link) postDirect(q *qp, w *wr) bool {
	if w.pre != verbs.StatusSuccess || q.sent != q.tail-1 || q.sent-q.compl > directInFlight || l.batch > 1 ||
		(w.op == verbs.OpWrite && (!w.inlined || w.length > maxDirect)) {
		return false
	}
	if !l.sendMu.TryLock() {
		return false
	}
	if l.raw == nil || l.doff < l.dlen {
		// Not connected yet, or the socket was full last time.
		l.sendMu.Unlock()
		return false
	}
	seq := q.sent
	h := reqHeader{op: wireWrite, length: uint32(w.length), seq: seq, addr: w.remote.Addr, rkey: w.remote.RKey}
	n := reqLen
	if w.op == verbs.OpRead {
		h.op = wireRead
	} else {
		at := q.inlineAt(seq)
		n += copy(l.dbuf[reqLen:], q.inline[at:at+w.length])
	}
	h.put(l.dbuf)
	l.doff, l.dlen = 0, n
	if q.sent == q.compl {
		l.touch() // the retry clock of the oldest request starts now
	}
	q.sent++
	if !l.armed {
		l.conn.SetReadDeadline(time.Now().Add(l.rt))
		l.armed = true
	}
	q.mu.Unlock()

	err := l.raw.Write(l.wfn)
	if err == nil {
		err = l.werr
	}
	if l.wn > 0 {
		l.doff += l.wn
		l.touch()
	}
	l.wn, l.werr = 0, nil
	left := l.doff < l.dlen
	if err == unix.EAGAIN || err == unix.EINTR {
		err = nil
	}
	if err != nil {
		slog.Debug("tcp: send", "qp", q.num, "peer", l.ep.addr, "err", err)
		l.shutdown() // the receiver fails what is outstanding
		left = false
	}
	l.sendMu.Unlock()
	if left {
		l.kickSender(false)
	}
	return true
}

func (l *link) writeFrame(w *bufio.Writer, f *frame, hdr []byte) error {
	h := reqHeader{op: wireWrite, length: uint32(f.length), seq: f.seq, addr: f.remote.Addr, rkey: f.remote.RKey}
	if f.op == verbs.OpRead {
		h.op = wireRead
	}
	h.put(hdr)
	_, err := w.Write(hdr)
	switch {
	case err != nil || f.op != verbs.OpWrite:
	case f.inlined:
		_, err = w.Write(l.q.inline[f.off : f.off+f.length])
	case f.mr != nil:
		_, err = w.Write(f.mr.buf[f.off : f.off+f.length])
	}
	if f.mr != nil {
		f.mr.unpin()
		f.mr = nil
	}
	return err
}

// takeBatch moves the next posted requests to in flight and copies what
// the sender needs. It stops at a request refused at post time: that one
// fails in turn once everything before it has completed. ok is false when
// the link is no longer the QP's live link.
func (q *qp) takeBatch(l *link, out []frame) (_ []frame, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.link != l || q.State() != verbs.StateRTS {
		return out, false
	}
	if q.sent == q.compl && q.sent < q.tail {
		l.touch() // the retry clock of the oldest request starts now
	}
	for q.sent < q.tail && len(out) < cap(out) {
		w := q.slot(q.sent)
		if w.pre != verbs.StatusSuccess {
			break
		}
		f := frame{seq: q.sent, op: w.op, inlined: w.inlined, length: w.length, off: w.off, remote: w.remote}
		if w.inlined {
			f.off = q.inlineAt(q.sent)
		} else if w.mr != nil {
			// The slot's pin may be dropped if the QP fails while the
			// sender still streams from the memory: keep our own.
			w.mr.ref()
			f.mr = w.mr
		}
		out = append(out, f)
		q.sent++
	}
	if len(out) > 0 {
		l.batch = len(out)
	}
	if len(out) > 0 && !l.armed {
		l.conn.SetReadDeadline(time.Now().Add(l.rt))
		l.armed = true
	}
	return out, true
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (l *link) receive(conn *net.TCPConn) {
	defer l.wg.Done()
	q := l.q
	r := bufio.NewReaderSize(conn, bufSize)
	for {
		b, err := r.Peek(ackLen)
		if err != nil {
			if isTimeout(err) && q.checkTimeout(l) {
				continue
			}
			q.linkFailed(l, err)
			return
		}
		h, err := parseAck(b)
		if err != nil {
			q.linkFailed(l, err)
			return
		}
		r.Discard(ackLen)
		l.touch()
		if h.status == statusProgress {
			if err := q.checkProgress(l, &h); err != nil {
				q.linkFailed(l, err)
				return
			}
			continue
		}
		f, live, err := q.ackBegin(l, &h)
		if err != nil || !live {
			q.linkFailed(l, err)
			return
		}
		if h.status == verbs.StatusSuccess && f.op == verbs.OpRead && f.length > 0 {
			if err := l.readData(r, f.mr.buf[f.off:f.off+f.length]); err != nil {
				q.linkFailed(l, fmt.Errorf("read data: %w", err))
				return
			}
		}
		if !q.ackEnd(l, h.status) {
			return
		}
	}
}

// readData lands READ data in the (pinned) local MR, counting progress.
func (l *link) readData(r *bufio.Reader, dst []byte) error {
	for len(dst) > 0 {
		n, err := r.Read(dst)
		dst = dst[n:]
		if n > 0 {
			l.touch()
		}
		if err != nil && !(isTimeout(err) && l.q.checkTimeout(l)) {
			return err
		}
	}
	return nil
}

// ackBegin checks an ack against the oldest in-flight request and returns
// it. Between ackBegin and ackEnd only the receiver can complete requests
// (Reset and Close wait for it), so the frame stays valid.
func (q *qp) ackBegin(l *link, h *ackHeader) (f frame, live bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.link != l || q.State() != verbs.StateRTS {
		return f, false, nil
	}
	if q.compl >= q.sent || h.seq != q.compl {
		return f, true, fmt.Errorf("ack for request %d, expected %d (in flight up to %d)", h.seq, q.compl, q.sent)
	}
	w := q.slot(q.compl)
	want := 0
	if h.status == verbs.StatusSuccess && w.op == verbs.OpRead {
		want = w.length
	}
	if int(h.length) != want {
		return f, true, fmt.Errorf("ack for request %d carries %d bytes, want %d", h.seq, h.length, want)
	}
	return frame{seq: q.compl, op: w.op, length: w.length, off: w.off, mr: w.mr}, true, nil
}

// checkProgress validates a progress note: it must name the oldest
// in-flight request, a WRITE.
func (q *qp) checkProgress(l *link, h *ackHeader) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.compl >= q.sent || h.seq != q.compl || h.length != 0 || q.slot(q.compl).op != verbs.OpWrite {
		return fmt.Errorf("bad progress note for request %d (oldest in flight %d, sent up to %d)", h.seq, q.compl, q.sent)
	}
	return nil
}

// ackEnd completes the acked request; it reports whether the receiver
// should go on.
func (q *qp) ackEnd(l *link, st verbs.Status) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.link != l || q.State() != verbs.StateRTS {
		return false
	}
	if st != verbs.StatusSuccess {
		q.failLocked(st)
		return false
	}
	q.completeLocked()
	q.failPreLocked()
	return q.State() == verbs.StateRTS
}

// checkTimeout runs when the receiver's read deadline fires; it reports
// whether the link is still good (and re-arms the deadline) or the oldest
// request has gone rt without progress.
func (q *qp) checkTimeout(l *link) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.link != l || q.State() != verbs.StateRTS {
		return false
	}
	if q.sent == q.compl {
		l.conn.SetReadDeadline(time.Time{})
		l.armed = false
		return true
	}
	idle := time.Since(l.t0) - time.Duration(l.last.Load())
	if idle < l.rt {
		l.conn.SetReadDeadline(time.Now().Add(l.rt - idle))
		return true
	}
	return false
}

// linkFailed handles the end of a link's connection (error, EOF, timeout,
// refused hello): the oldest outstanding request completes with
// RetryExceeded and the rest are flushed; with nothing outstanding the
// link is marked dead so that the next post fails the same way.
func (q *qp) linkFailed(l *link, cause error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.link != l || q.State() != verbs.StateRTS {
		return
	}
	slog.Debug("tcp: link failed", "qp", q.num, "peer", l.ep.addr, "peer_qp", l.ep.qpn, "err", cause)
	if q.compl < q.tail {
		q.failLocked(verbs.StatusRetryExceeded)
		return
	}
	l.dead = true
	l.shutdown()
}
