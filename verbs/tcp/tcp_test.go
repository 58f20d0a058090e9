package tcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// end is one side of a test connection.
type end struct {
	dev *device
	pd  verbs.PD
	cq  verbs.CQ
	mr  verbs.MR
	qp  *qp
}

func openDev(t testing.TB, rt time.Duration) *device {
	t.Helper()
	d, err := Open("", verbs.Options{RetryTimeout: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*device)
}

func newEnd(t testing.TB, d *device, mrSize int) end {
	t.Helper()
	e := end{dev: d}
	var err error
	if e.pd, err = d.AllocPD(); err != nil {
		t.Fatal(err)
	}
	if e.cq, err = d.CreateCQ(1024); err != nil {
		t.Fatal(err)
	}
	if e.mr, err = e.pd.AllocMR(mrSize, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	q, err := e.pd.CreateQP(verbs.QPConfig{SendCQ: e.cq})
	if err != nil {
		t.Fatal(err)
	}
	e.qp = q.(*qp)
	return e
}

// pair connects a to b, each on its own device unless same is set.
func pair(t testing.TB, rt time.Duration, mrSize int, same bool) (a, b end) {
	t.Helper()
	da := openDev(t, rt)
	db := da
	if !same {
		db = openDev(t, rt)
	}
	a, b = newEnd(t, da, mrSize), newEnd(t, db, mrSize)
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// wait polls cq for one completion, failing after limit.
func wait(t testing.TB, cq verbs.CQ, limit time.Duration) verbs.Completion {
	t.Helper()
	var c [1]verbs.Completion
	ok := poll.Until(poll.SpinYield, time.Now().Add(limit), func() bool {
		n, err := cq.Poll(c[:])
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if !ok {
		t.Fatalf("no completion within %v", limit)
	}
	return c[0]
}

func TestWriteReadLarge(t *testing.T) {
	const n = 64 << 20
	a, b := pair(t, time.Second, n, false)
	src := a.mr.Bytes()
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(src[i:], uint64(i)*0x9e3779b97f4a7c15)
	}
	if err := a.qp.PostWrite(1, a.mr, 0, n, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 10*time.Second); c.Status != verbs.StatusSuccess || c.Bytes != n {
		t.Fatalf("large write: %+v", c)
	}
	clear(src)
	if err := a.qp.PostRead(2, a.mr, 0, n, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 10*time.Second); c.Status != verbs.StatusSuccess {
		t.Fatalf("large read: %+v", c)
	}
	for i := 0; i < n; i += 8 {
		if got := binary.LittleEndian.Uint64(src[i:]); got != uint64(i)*0x9e3779b97f4a7c15 {
			t.Fatalf("word at %d = %#x after the round trip", i, got)
		}
	}
}

func TestSlowTargetProgress(t *testing.T) {
	// A target that takes far longer than the retry timeout to land a
	// WRITE, but keeps saying so, must not be declared dead.
	const (
		rt    = 150 * time.Millisecond
		n     = 8 * progressEvery
		pause = 40 * time.Millisecond // per MiB: 320ms in all
	)
	ep := fakePeer(t, func(c net.Conn) {
		var hdr [reqLen]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		h, err := parseReq(hdr[:])
		if err != nil || h.length != n {
			return
		}
		// Take the whole payload at once, so the initiator's sender has
		// nothing left to report, then land it slowly: only the notes
		// keep the initiator's retry timer from firing.
		if _, err := io.CopyN(io.Discard, c, n); err != nil {
			return
		}
		var ack [ackLen]byte
		for done := 0; done < n; done += progressEvery {
			time.Sleep(pause)
			st := statusProgress
			if done+progressEvery == n {
				st = verbs.StatusSuccess
			}
			(&ackHeader{seq: h.seq, status: st}).put(ack[:])
			c.Write(ack[:])
		}
		io.Copy(io.Discard, c)
	})
	a := newEnd(t, openDev(t, rt), n)
	if err := a.qp.Connect(ep, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.qp.PostWrite(1, a.mr, 0, n, verbs.Remote{Addr: 1, RKey: 1}, verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 10*time.Second); c.Status != verbs.StatusSuccess {
		t.Fatalf("write to a slow target: %+v after %v", c, time.Since(start))
	}
	t.Logf("write took %v with retry timeout %v", time.Since(start), rt)
}

func TestPostBeforePeerConnects(t *testing.T) {
	// The initiator may post before the target QP is connected; the
	// target holds the request (up to the retry timeout) as a NIC drops
	// packets for a QP not yet in RTR and the initiator retransmits.
	da, db := openDev(t, time.Second), openDev(t, time.Second)
	a, b := newEnd(t, da, 4096), newEnd(t, db, 4096)
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(a.mr.Bytes(), 77)
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 5*time.Second); c.Status != verbs.StatusSuccess {
		t.Fatalf("write before the target connected: %+v", c)
	}
	if got := binary.LittleEndian.Uint64(b.mr.Bytes()); got != 77 {
		t.Fatalf("target holds %d", got)
	}
}

func TestTargetNeverConnects(t *testing.T) {
	const rt = 50 * time.Millisecond
	da, db := openDev(t, rt), openDev(t, rt)
	a, b := newEnd(t, da, 4096), newEnd(t, db, 4096)
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 5*time.Second); c.Status != verbs.StatusRetryExceeded {
		t.Fatalf("write to an unconnected QP: %+v", c)
	}
	t.Logf("failed after %v", time.Since(start))
	if b.mr.Bytes()[0] != 0 {
		t.Fatal("write landed")
	}
}

// fakePeer listens and answers hellos, then behaves as told: a stalled
// process (reads, never acks) or a dead one (closes).
func fakePeer(t *testing.T, behave func(c net.Conn)) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var h [helloLen]byte
				if _, err := io.ReadFull(c, h[:]); err != nil {
					return
				}
				var r [helloReplyLen]byte
				putHelloReply(r[:], verbs.StatusSuccess)
				c.Write(r[:])
				behave(c)
			}()
		}
	}()
	return endpoint{addr: ln.Addr().String(), qpn: 1, nonce: 1}.marshal()
}

func TestSilentPeers(t *testing.T) {
	const rt = 100 * time.Millisecond
	refused := func() []byte {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return endpoint{addr: addr, qpn: 1, nonce: 1}.marshal()
	}
	for _, tc := range []struct {
		name string
		ep   func(t *testing.T) []byte
	}{
		{"stalled", func(t *testing.T) []byte { return fakePeer(t, func(c net.Conn) { io.Copy(io.Discard, c) }) }},
		{"hangs up", func(t *testing.T) []byte { return fakePeer(t, func(c net.Conn) {}) }},
		{"garbage acks", func(t *testing.T) []byte {
			return fakePeer(t, func(c net.Conn) { c.Write(bytes.Repeat([]byte{0xee}, 64)); io.Copy(io.Discard, c) })
		}},
		{"refused", func(t *testing.T) []byte { return refused() }},
		{"unroutable", func(t *testing.T) []byte {
			// TEST-NET-1: packets go nowhere, the dial times out.
			return endpoint{addr: "192.0.2.1:9", qpn: 1, nonce: 1}.marshal()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newEnd(t, openDev(t, rt), 4096)
			if err := a.qp.Connect(tc.ep(t), verbs.AccessAll); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := uint64(0); i < 4; i++ {
				if err := a.qp.PostWrite(i, a.mr, 0, 8, verbs.Remote{Addr: 1, RKey: 1}, 0); err != nil {
					t.Fatal(err)
				}
			}
			c := wait(t, a.cq, 5*time.Second)
			took := time.Since(start)
			if c.Status != verbs.StatusRetryExceeded || c.WRID != 0 {
				t.Fatalf("first completion %+v, want wr 0 retry exceeded", c)
			}
			for i := uint64(1); i < 4; i++ {
				if c := wait(t, a.cq, time.Second); c.Status != verbs.StatusFlushError || c.WRID != i {
					t.Fatalf("completion %+v, want wr %d flushed", c, i)
				}
			}
			if a.qp.State() != verbs.StateError {
				t.Fatalf("state %v", a.qp.State())
			}
			if took > rt+time.Second {
				t.Fatalf("retry exceeded after %v, retry timeout %v", took, rt)
			}
		})
	}
}

func TestHostileConnections(t *testing.T) {
	a, b := pair(t, time.Second, 4096, false)
	valid := func() []byte {
		h := hello{target: endpoint{qpn: b.qp.num, gen: b.qp.gen.Load(), nonce: b.dev.nonce}, init: endpoint{qpn: a.qp.num, nonce: 12345}, wait: time.Hour}
		var buf [helloLen]byte
		h.put(buf[:])
		return buf[:]
	}
	req := func(op uint8, length uint32) []byte {
		var buf [reqLen]byte
		h := reqHeader{op: op, length: length, seq: 0, addr: b.mr.Addr(), rkey: b.mr.RKey()}
		h.put(buf[:])
		return buf[:]
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + string(make([]byte, 100)))},
		{"bad hello magic", append([]byte("xxxx"), make([]byte, helloLen)...)},
		{"hello for unknown qp", func() []byte { h := valid(); le.PutUint32(h[8:], 999); return h }()},
		{"hello with wrong nonce", func() []byte { h := valid(); le.PutUint64(h[16:], 1); return h }()},
		{"huge length", cat(valid(), req(wireWrite, 1<<32-1))},
		{"bad op", cat(valid(), req(9, 8))},
		{"truncated payload", cat(valid(), req(wireWrite, 1<<20), make([]byte, 100))},
		{"not connected to us", cat(valid(), req(wireWrite, 8), make([]byte, 8), req(wireRead, 1<<30))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.dev.name)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(tc.send)
			c.(*net.TCPConn).CloseWrite()
			// The device must close the connection and survive.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
			if b.mr.Bytes()[0] != 0 {
				t.Fatal("hostile write landed")
			}
		})
	}
	// The device still serves its real peer.
	binary.LittleEndian.PutUint64(a.mr.Bytes(), 5)
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 5*time.Second); c.Status != verbs.StatusSuccess {
		t.Fatalf("write after hostile connections: %+v", c)
	}
}

// TestRevokeFenceDrained is the conformance fence test with the initiator
// draining every completion before reconnecting.
func TestRevokeFenceDrained(t *testing.T) {
	a, b := pair(t, time.Second, 1<<16, false)
	var posted, completed atomic.Uint64
	var refusedAt, maxAcked atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]verbs.Completion, 64)
		deadline := time.Now().Add(10 * time.Second)
		stopPosting := false
		for time.Now().Before(deadline) {
			i := posted.Load() + 1
			if !stopPosting {
				slot := int(i%1024) * 8
				binary.LittleEndian.PutUint64(a.mr.Bytes()[slot:], i)
				if err := a.qp.PostWrite(i, a.mr, slot, 8, b.mr.Remote(), verbs.Signaled); err == nil {
					posted.Store(i)
				}
			}
			n, _ := a.cq.Poll(buf)
			for _, c := range buf[:n] {
				completed.Add(1)
				if c.Status == verbs.StatusSuccess && c.WRID > maxAcked.Load() {
					maxAcked.Store(c.WRID)
				}
				if c.Status == verbs.StatusRemoteAccessError {
					refusedAt.Store(c.WRID)
					stopPosting = true
				}
			}
			if stopPosting && completed.Load() == posted.Load() {
				return
			}
		}
	}()
	for binary.LittleEndian.Uint64(b.mr.Bytes()) < 500 {
		time.Sleep(100 * time.Microsecond)
	}
	if err := b.qp.SetAccess(verbs.AccessRemoteRead); err != nil {
		t.Fatal(err)
	}
	fenced := binary.LittleEndian.Uint64(b.mr.Bytes())
	<-done
	time.Sleep(5 * time.Millisecond)
	if got := binary.LittleEndian.Uint64(b.mr.Bytes()); got != fenced {
		t.Fatalf("value moved from %d to %d after SetAccess returned", fenced, got)
	}
	if refusedAt.Load() == 0 {
		t.Fatal("no write was refused")
	}
	if m := maxAcked.Load(); m > fenced {
		t.Fatalf("write %d acknowledged but the target holds %d", m, fenced)
	}
	t.Logf("fenced at %d, refused wr %d, %d posted", fenced, refusedAt.Load(), posted.Load())
	for _, e := range []end{a, b} {
		if err := e.qp.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := a.qp.PostWrite(1<<40, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, 5*time.Second); c.Status != verbs.StatusSuccess || c.WRID != 1<<40 {
		t.Fatalf("after regrant: %+v", c)
	}
}

func TestLocalMRClosedWhileOutstanding(t *testing.T) {
	// Closing a local MR while a large write streams from it must not
	// crash: the mapping lives until the sender is done with it.
	a, b := pair(t, time.Second, 8<<20, false)
	big, err := a.pd.AllocMR(8<<20, verbs.AccessAll)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := a.qp.PostWrite(uint64(i), big, 0, 8<<20, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
	}
	if err := big.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if c := wait(t, a.cq, 10*time.Second); c.Status != verbs.StatusSuccess {
			t.Fatalf("write %d: %+v", i, c)
		}
	}
	// Posting from the closed MR now is a local protection error.
	if err := a.qp.PostWrite(9, big, 0, 8, b.mr.Remote(), 0); err != nil {
		t.Fatal(err)
	}
	if c := wait(t, a.cq, time.Second); c.Status != verbs.StatusLocalProtectionError {
		t.Fatalf("write from a closed MR: %+v", c)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		da, err := Open("", verbs.Options{RetryTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db, err := Open("", verbs.Options{RetryTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		a, b := newEnd(t, da.(*device), 4096), newEnd(t, db.(*device), 4096)
		a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll)
		b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll)
		for j := uint64(0); j < 10; j++ {
			a.qp.PostWrite(j, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled)
			b.qp.PostRead(j, b.mr, 0, 64, a.mr.Remote(), verbs.Signaled)
		}
		wait(t, a.cq, 5*time.Second)
		// Close in the middle of traffic, initiator side first or last.
		if i%2 == 0 {
			da.Close()
			db.Close()
		} else {
			db.Close()
			da.Close()
		}
	}
	if !poll.Until(poll.Sleep, time.Now().Add(5*time.Second), func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

func TestPostAllocs(t *testing.T) {
	a, b := pair(t, time.Second, 4096, false)
	var c [4]verbs.Completion
	// AllocsPerRun runs with GOMAXPROCS=1, where a spinning poller would
	// starve the netpoller (sysmon polls it only every 10ms): sleep.
	w := poll.Waiter{Mode: poll.Sleep}
	round := func() {
		if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		for w.Reset(); ; w.Wait() {
			if n, _ := a.cq.Poll(c[:]); n > 0 {
				return
			}
		}
	}
	round()
	// Whole round trip, every goroutine of both NICs included: the
	// softer bound leaves room for runtime-internal allocations that
	// the provider does not control (netpoll, timers).
	if n := testing.AllocsPerRun(500, round); n > 0.5 {
		t.Fatalf("PostWrite+Poll round trip allocates %.2f times per op", n)
	}
}

func TestDirectPathLeftovers(t *testing.T) {
	// A post that writes its frame itself and gets only part of it (or
	// nothing) into the socket leaves the rest to the sender, which must
	// write it before any later request: every WRITE lands where it
	// should and every READ returns what the WRITEs before it left.
	for _, limit := range []int{0, 1, 5, reqLen + 3} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			directWriteLimit = limit
			t.Cleanup(func() { directWriteLimit = -1 })
			const size = 1 << 16
			a, b := pair(t, 5*time.Second, size, false)
			src, dst := a.mr.Bytes(), b.mr.Bytes()
			want := make([]byte, size)
			rng := rand.New(rand.NewPCG(uint64(limit), 1))
			id := uint64(0)
			for round := 0; round < 200; round++ {
				k := 1 + rng.IntN(3)
				for i := 0; i < k; i++ {
					id++
					flags := verbs.SendFlags(0)
					if i == k-1 {
						flags = verbs.Signaled
					}
					n := rng.IntN(a.qp.maxInline + 64)
					// Posts of a round use disjoint local memory: a
					// large WRITE streams from it until it completes.
					const span = size / 2 / 3
					off := i*span + rng.IntN(span-n)
					roff := size/2 + rng.IntN(size/2-n)
					var err error
					if rng.IntN(4) == 0 {
						// READ back what earlier WRITEs left at roff.
						err = a.qp.PostRead(id, a.mr, off, n, b.mr.Remote().Add(uint64(roff)), flags)
						copy(want[off:off+n], want[roff:roff+n])
					} else {
						for j := off; j < off+n; j++ {
							src[j] = byte(rng.Uint32())
						}
						copy(want[off:off+n], src[off:off+n])
						copy(want[roff:roff+n], src[off:off+n])
						err = a.qp.PostWrite(id, a.mr, off, n, b.mr.Remote().Add(uint64(roff)), flags)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if c := wait(t, a.cq, 10*time.Second); c.Status != verbs.StatusSuccess || c.WRID != id {
					t.Fatalf("round %d: %+v, want wr %d successful", round, c, id)
				}
				if !bytes.Equal(src[:size/2], want[:size/2]) || !bytes.Equal(dst[size/2:], want[size/2:]) {
					t.Fatalf("round %d: memory differs from what was written", round)
				}
			}
		})
	}
}
