package verbstest

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

type testCase struct {
	name string
	run  func(t *testing.T, p Provider)
	// needs, if set, says whether the provider supports the case.
	needs func(p Provider) bool
}

var cases = []testCase{
	{name: "RoundTrip", run: testRoundTrip},
	{name: "Loopback", run: testLoopback},
	{name: "Inline", run: testInline},
	{name: "UnsignaledThenSignaled", run: testUnsignaled},
	{name: "SendQueueFull", run: testSendQueueFull},
	{name: "CompletionQueueFull", run: testCQFull},
	{name: "SharedCQ", run: testSharedCQ},
	{name: "Violations", run: testViolations},
	{name: "ResetReconnect", run: testResetReconnect},
	{name: "Ordering", run: testOrdering},
	{name: "RevokeFence", run: testRevokeFence},
	{name: "RegrantWithoutTraffic", run: testRegrant},
	{name: "PeerClosed", run: testPeerClosed},
	{name: "PeerDeath", run: testPeerDeath, needs: func(p Provider) bool { return p.CrossProcess }},
	{name: "InvalidStateTransitions", run: testInvalidState},
	{name: "BadArguments", run: testBadArguments},
	{name: "DoubleClose", run: testDoubleClose},
	{name: "ZeroAlloc", run: testZeroAlloc, needs: func(p Provider) bool { return p.ZeroAlloc }},
}

// Run runs every conformance case as TestConformance/<provider>/<case>.
// Cases the provider does not claim (CrossProcess, ZeroAlloc) are not run
// at all rather than skipped, so a skip always means something is missing.
func Run(t *testing.T, p Provider) {
	t.Run(p.Name, func(t *testing.T) {
		for _, c := range cases {
			if c.needs != nil && !c.needs(p) {
				continue
			}
			t.Run(c.name, func(t *testing.T) { c.run(t, p) })
		}
	})
}

func testRoundTrip(t *testing.T, p Provider) {
	cfg := defaultPair()
	cfg.mrSize = 2<<20 + 4096
	a, b := p.newPair(t, cfg)
	const localOff, remoteOff, readOff = 3, 5, 1<<20 + 11
	for i, n := range []int{1, 7, 8, 63, 64, 257, 4096, 65537, 1 << 20} {
		fill(a.mr.Bytes()[localOff:localOff+n], byte(i+1))
		c := one(t, a, verbs.OpWrite, uint64(i), localOff, n, b.mr.Remote().Add(remoteOff), 0)
		mustSucceed(t, c, n)
		equalBytes(t, "target after WRITE", b.mr.Bytes()[remoteOff:remoteOff+n], a.mr.Bytes()[localOff:localOff+n])
		if got := b.mr.Bytes()[remoteOff+n]; n < 1<<20 && got != 0 {
			t.Fatalf("size %d: byte after the written range changed to %#x", n, got)
		}

		clear(a.mr.Bytes()[readOff : readOff+n])
		c = one(t, a, verbs.OpRead, uint64(100+i), readOff, n, b.mr.Remote().Add(remoteOff), 0)
		mustSucceed(t, c, n)
		equalBytes(t, "local after READ", a.mr.Bytes()[readOff:readOff+n], b.mr.Bytes()[remoteOff:remoteOff+n])
		clear(b.mr.Bytes()[remoteOff : remoteOff+n])
	}
	// A zero-length write moves nothing and succeeds.
	mustSucceed(t, one(t, a, verbs.OpWrite, 999, 0, 0, b.mr.Remote(), 0), 0)
}

// testLoopback connects two QPs of one device, as a replica does when it
// reads its own control memory through the same code path.
func testLoopback(t *testing.T, p Provider) {
	cfg := defaultPair()
	cfg.sameDevice = true
	a, b := p.newPair(t, cfg)
	fill(a.mr.Bytes()[:100], 9)
	mustSucceed(t, one(t, a, verbs.OpWrite, 1, 0, 100, b.mr.Remote().Add(200), 0), 100)
	equalBytes(t, "loopback WRITE", b.mr.Bytes()[200:300], a.mr.Bytes()[:100])
}

func testInline(t *testing.T, p Provider) {
	cfg := defaultPair()
	cfg.qp.MaxInline = 64
	a, b := p.newPair(t, cfg)
	src := a.mr.Bytes()[:64]
	fill(src, 1)
	want := append([]byte(nil), src...)
	if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Inline|verbs.Signaled); err != nil {
		t.Fatalf("inline post: %v", err)
	}
	// Inline means the buffer is ours again as soon as Post returns.
	fill(src, 77)
	mustSucceed(t, collect(t, a.cq, 1)[0], 64)
	equalBytes(t, "inline WRITE", b.mr.Bytes()[:64], want)

	err := a.qp.PostWrite(2, a.mr, 0, 4096, b.mr.Remote(), verbs.Inline|verbs.Signaled)
	wantErr(t, "inline longer than MaxInline", err, verbs.ErrInvalidArgument)
	wantState(t, a.qp, verbs.StateRTS)
}

func testUnsignaled(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	const n = 10
	for i := 0; i <= n; i++ {
		binary.LittleEndian.PutUint64(a.mr.Bytes()[i*8:], uint64(i+1))
		flags := verbs.SendFlags(0)
		if i == n {
			flags = verbs.Signaled
		}
		if err := a.qp.PostWrite(uint64(i), a.mr, i*8, 8, b.mr.Remote().Add(uint64(i*8)), flags); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	c := collect(t, a.cq, 1)[0]
	mustSucceed(t, c, 8)
	if c.WRID != n {
		t.Fatalf("the only completion is wr %d, want %d", c.WRID, n)
	}
	expectNoCompletion(t, a.cq)
	for i := 0; i <= n; i++ {
		if got := binary.LittleEndian.Uint64(b.mr.Bytes()[i*8:]); got != uint64(i+1) {
			t.Fatalf("slot %d = %d, want %d", i, got, i+1)
		}
	}
}

func testSendQueueFull(t *testing.T, p Provider) {
	cfg := defaultPair()
	cfg.qp.MaxSendWR = 16
	a, b := p.newPair(t, cfg)
	postN := func(k int, lastSignaled bool) error {
		for i := 0; i < k; i++ {
			flags := verbs.SendFlags(0)
			if lastSignaled && i == k-1 {
				flags = verbs.Signaled
			}
			if err := a.qp.PostWrite(uint64(i), a.mr, 0, 8, b.mr.Remote(), flags); err != nil {
				return err
			}
		}
		return nil
	}
	// A signaled request every queue-depth requests keeps the queue flowing.
	for round := 0; round < 3; round++ {
		if err := postN(16, true); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		mustSucceed(t, collect(t, a.cq, 1)[0], 8)
	}
	// Never signaling fills it.
	if err := postN(16, false); err != nil {
		t.Fatalf("16 unsignaled posts: %v", err)
	}
	wantErr(t, "17th unsignaled post", a.qp.PostWrite(17, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled), verbs.ErrQueueFull)
}

func testCQFull(t *testing.T, p Provider) {
	cfg := defaultPair()
	cfg.cqDepth = 4
	a, b := p.newPair(t, cfg)
	for i := 0; i < 4; i++ {
		if err := a.qp.PostWrite(uint64(i), a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatalf("post %d into a CQ of 4: %v", i, err)
		}
	}
	wantErr(t, "5th signaled post into a full CQ", a.qp.PostWrite(5, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled), verbs.ErrCQFull)
	for i, c := range collect(t, a.cq, 4) {
		mustSucceed(t, c, 8)
		if c.WRID != uint64(i) {
			t.Fatalf("completion %d has wr %d", i, c.WRID)
		}
	}
	mustSucceed(t, one(t, a, verbs.OpWrite, 6, 0, 8, b.mr.Remote(), 0), 8)
}

func testSharedCQ(t *testing.T, p Provider) {
	cfg := defaultPair()
	a, b := p.newPair(t, cfg)
	// A second QP on a's PD, sharing a's CQ, towards a second target.
	qp2, err := a.pd.CreateQP(verbs.QPConfig{SendCQ: a.cq})
	if err != nil {
		t.Fatal(err)
	}
	c2 := newSide(t, p.open(t, 2), cfg)
	connect(t, side{qp: qp2}, c2, verbs.AccessAll)
	if qp2.Num() == a.qp.Num() {
		t.Fatalf("two QPs of one device share number %d", qp2.Num())
	}
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if err := qp2.PostWrite(2, a.mr, 0, 8, c2.mr.Remote(), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	byWR := map[uint64]uint32{}
	for _, c := range collect(t, a.cq, 2) {
		mustSucceed(t, c, 8)
		byWR[c.WRID] = c.QPNum
	}
	if byWR[1] != a.qp.Num() || byWR[2] != qp2.Num() {
		t.Fatalf("completions name QPs %v, want 1→%d 2→%d", byWR, a.qp.Num(), qp2.Num())
	}
}

// violation describes one refused request.
type violation struct {
	name string
	// setup returns the request to post, given a fresh pair.
	setup func(t *testing.T, a, b side) (op verbs.Opcode, local verbs.MR, remote verbs.Remote, n int)
	// targetAccess is what the target QP grants (default all).
	targetAccess verbs.Access
	want         verbs.Status
}

var violations = []violation{
	{name: "UnknownRKey", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			r := b.mr.Remote()
			r.RKey ^= 0x5a5a0001
			return verbs.OpWrite, a.mr, r, 8
		}},
	{name: "PastEnd", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			return verbs.OpWrite, a.mr, b.mr.Remote().Add(uint64(len(b.mr.Bytes()) - 4)), 8
		}},
	{name: "BeforeStart", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			r := b.mr.Remote()
			r.Addr--
			return verbs.OpWrite, a.mr, r, 8
		}},
	{name: "ReadPastEnd", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			return verbs.OpRead, a.mr, b.mr.Remote().Add(uint64(len(b.mr.Bytes()) - 1)), 2
		}},
	{name: "RemoteMRInOtherPD", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			pd2, err := b.dev.AllocPD()
			if err != nil {
				t.Fatal(err)
			}
			mr2, err := pd2.AllocMR(4096, verbs.AccessAll)
			if err != nil {
				t.Fatal(err)
			}
			return verbs.OpWrite, a.mr, mr2.Remote(), 8
		}},
	{name: "RemoteMRReadOnly", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			ro, err := b.pd.AllocMR(4096, verbs.AccessLocalWrite|verbs.AccessRemoteRead)
			if err != nil {
				t.Fatal(err)
			}
			return verbs.OpWrite, a.mr, ro.Remote(), 8
		}},
	{name: "RemoteMRWriteOnlyRead", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			wo, err := b.pd.AllocMR(4096, verbs.AccessLocalWrite|verbs.AccessRemoteWrite)
			if err != nil {
				t.Fatal(err)
			}
			return verbs.OpRead, a.mr, wo.Remote(), 8
		}},
	{name: "DeregisteredMR", want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			gone, err := b.pd.AllocMR(4096, verbs.AccessAll)
			if err != nil {
				t.Fatal(err)
			}
			r := gone.Remote()
			if err := gone.Close(); err != nil {
				t.Fatal(err)
			}
			return verbs.OpWrite, a.mr, r, 8
		}},
	{name: "QPWithoutRemoteWrite", targetAccess: verbs.AccessLocalWrite | verbs.AccessRemoteRead, want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			return verbs.OpWrite, a.mr, b.mr.Remote(), 8
		}},
	{name: "QPWithoutRemoteRead", targetAccess: verbs.AccessLocalWrite | verbs.AccessRemoteWrite, want: verbs.StatusRemoteAccessError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			return verbs.OpRead, a.mr, b.mr.Remote(), 8
		}},
	{name: "LocalMRInOtherPD", want: verbs.StatusLocalProtectionError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			pd2, err := a.dev.AllocPD()
			if err != nil {
				t.Fatal(err)
			}
			mr2, err := pd2.AllocMR(4096, verbs.AccessAll)
			if err != nil {
				t.Fatal(err)
			}
			return verbs.OpWrite, mr2, b.mr.Remote(), 8
		}},
	{name: "ReadIntoReadOnlyLocal", want: verbs.StatusLocalProtectionError,
		setup: func(t *testing.T, a, b side) (verbs.Opcode, verbs.MR, verbs.Remote, int) {
			ro, err := a.pd.AllocMR(4096, verbs.AccessRemoteRead)
			if err != nil {
				t.Fatal(err)
			}
			return verbs.OpRead, ro, b.mr.Remote(), 8
		}},
}

// testViolations posts each refused request unsignaled (errors complete
// anyway), then checks the QP went to ERROR, nothing was written, and later
// requests are flushed.
func testViolations(t *testing.T, p Provider) {
	for _, v := range violations {
		t.Run(v.name, func(t *testing.T) {
			cfg := defaultPair()
			cfg.mrSize = 4096
			if v.targetAccess != 0 {
				cfg.targetQP = v.targetAccess
			}
			a, b := p.newPair(t, cfg)
			fill(b.mr.Bytes(), 0xab)
			before := append([]byte(nil), b.mr.Bytes()...)
			fill(a.mr.Bytes(), 0x11)

			op, local, remote, n := v.setup(t, a, b)
			if err := post(a.qp, op, 7, local, 0, n, remote, 0); err != nil {
				t.Fatalf("post: %v (a refused request must complete with an error, not fail to post)", err)
			}
			c := collect(t, a.cq, 1)[0]
			if c.Status != v.want || c.WRID != 7 {
				t.Fatalf("completion %s, want wr=7 status=%v", describe(c), v.want)
			}
			wantState(t, a.qp, verbs.StateError)

			if err := a.qp.PostWrite(8, a.mr, 0, 8, b.mr.Remote(), 0); err != nil {
				t.Fatalf("post after error: %v (must be accepted and flushed)", err)
			}
			c = collect(t, a.cq, 1)[0]
			if c.Status != verbs.StatusFlushError || c.WRID != 8 {
				t.Fatalf("post after error completed %s, want wr=8 flushed", describe(c))
			}
			equalBytes(t, "target memory after refused requests", b.mr.Bytes(), before)
		})
	}
}

func testResetReconnect(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	bad := b.mr.Remote()
	bad.RKey ^= 0x5a5a0001
	if c := one(t, a, verbs.OpWrite, 1, 0, 8, bad, 0); c.Status != verbs.StatusRemoteAccessError {
		t.Fatalf("bad rkey completed %s", describe(c))
	}
	for round := 0; round < 3; round++ {
		for _, s := range []side{a, b} {
			if err := s.qp.Reset(); err != nil {
				t.Fatalf("reset: %v", err)
			}
			wantState(t, s.qp, verbs.StateReset)
		}
		connect(t, a, b, verbs.AccessAll)
		binary.LittleEndian.PutUint64(a.mr.Bytes(), uint64(round+42))
		mustSucceed(t, one(t, a, verbs.OpWrite, uint64(round+2), 0, 8, b.mr.Remote(), 0), 8)
		if got := binary.LittleEndian.Uint64(b.mr.Bytes()); got != uint64(round+42) {
			t.Fatalf("round %d: target has %d", round, got)
		}
	}
}

// testOrdering posts 10 000 writes of an increasing counter to one word
// while the target watches it: effects and completions must follow post
// order.
func testOrdering(t *testing.T, p Provider) {
	const total = 10000
	a, b := p.newPair(t, defaultPair())
	const slots = 2048 // local source slots, more than the send queue holds

	stop := make(chan struct{})
	var regressions atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := uint64(0)
		for {
			v := load(b.mr, 0)
			if v < last {
				regressions.Add(1)
			}
			last = v
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	buf := make([]verbs.Completion, 64)
	nextWR := uint64(0)
	check := func(cs []verbs.Completion) {
		for _, c := range cs {
			mustSucceed(t, c, 8)
			if c.WRID < nextWR {
				t.Fatalf("completion for wr %d after wr %d", c.WRID, nextWR)
			}
			nextWR = c.WRID + 1
		}
	}
	deadline := time.Now().Add(waitLimit * 3)
	for i := 0; i < total; {
		if time.Now().After(deadline) {
			t.Fatalf("posted only %d of %d writes", i, total)
		}
		slot := (i % slots) * 8
		binary.LittleEndian.PutUint64(a.mr.Bytes()[slot:], uint64(i+1))
		flags := verbs.SendFlags(0)
		if i%32 == 31 || i == total-1 {
			flags = verbs.Signaled
		}
		err := a.qp.PostWrite(uint64(i), a.mr, slot, 8, b.mr.Remote(), flags)
		switch {
		case err == nil:
			i++
		case errorsIsAny(err, verbs.ErrQueueFull, verbs.ErrCQFull):
		default:
			t.Fatalf("post %d: %v", i, err)
		}
		n, err := a.cq.Poll(buf)
		if err != nil {
			t.Fatal(err)
		}
		check(buf[:n])
	}
	for nextWR < total {
		check(collect(t, a.cq, 1))
	}
	close(stop)
	wg.Wait()
	if got := load(b.mr, 0); got != total {
		t.Fatalf("final value %d, want %d", got, total)
	}
	if r := regressions.Load(); r != 0 {
		t.Fatalf("target saw the counter go backwards %d times", r)
	}
}

// testRevokeFence hammers a counter from the initiator while the target
// revokes remote write: once SetAccess returns the counter must never move.
func testRevokeFence(t *testing.T, p Provider) {
	for round := 0; round < 3; round++ {
		a, b := p.newPair(t, defaultPair())
		var (
			refused   atomic.Bool
			maxAcked  atomic.Uint64
			writerErr = make(chan string, 1)
			done      = make(chan struct{})
		)
		go func() {
			defer close(done)
			buf := make([]verbs.Completion, 64)
			deadline := time.Now().Add(waitLimit)
			for i := uint64(1); time.Now().Before(deadline); i++ {
				slot := int(i%1024) * 8
				binary.LittleEndian.PutUint64(a.mr.Bytes()[slot:], i)
				err := a.qp.PostWrite(i, a.mr, slot, 8, b.mr.Remote(), verbs.Signaled)
				if err != nil && !errorsIsAny(err, verbs.ErrQueueFull, verbs.ErrCQFull) {
					writerErr <- err.Error()
					return
				}
				n, _ := a.cq.Poll(buf)
				for _, c := range buf[:n] {
					switch c.Status {
					case verbs.StatusSuccess:
						if c.WRID > maxAcked.Load() {
							maxAcked.Store(c.WRID)
						}
					case verbs.StatusRemoteAccessError:
						refused.Store(true)
						return
					case verbs.StatusFlushError:
					default:
						writerErr <- describe(c)
						return
					}
				}
			}
			writerErr <- "writes were never refused after the revoke"
		}()

		// Let writes flow, then revoke.
		if !untilTrue(func() bool { return load(b.mr, 0) >= 500 }) {
			t.Fatalf("writes did not start landing")
		}
		if err := b.qp.SetAccess(verbs.AccessLocalWrite | verbs.AccessRemoteRead); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		fenced := load(b.mr, 0)
		if got := b.qp.Access(); got&verbs.AccessRemoteWrite != 0 {
			t.Fatalf("Access() = %v after revoke", got)
		}
		<-done
		select {
		case e := <-writerErr:
			t.Fatalf("writer: %s", e)
		default:
		}
		if !refused.Load() {
			t.Fatalf("writer stopped without a refusal")
		}
		// Give any straggler a chance to land before the final look.
		time.Sleep(5 * time.Millisecond)
		if got := load(b.mr, 0); got != fenced {
			t.Fatalf("round %d: value moved from %d to %d after SetAccess returned", round, fenced, got)
		}
		if m := maxAcked.Load(); m > fenced {
			t.Fatalf("round %d: write %d acknowledged but target holds %d", round, m, fenced)
		}
		wantState(t, a.qp, verbs.StateError)
		// Requests the writer posted after the refused one are flushed;
		// take those completions before reusing the CQ.
		drain(a.cq)

		// Regranting needs a fresh connection for the errored initiator.
		for _, s := range []side{a, b} {
			if err := s.qp.Reset(); err != nil {
				t.Fatal(err)
			}
		}
		connect(t, a, b, verbs.AccessAll)
		binary.LittleEndian.PutUint64(a.mr.Bytes(), 1<<40)
		mustSucceed(t, one(t, a, verbs.OpWrite, 1, 0, 8, b.mr.Remote(), 0), 8)
		if got := load(b.mr, 0); got != 1<<40 {
			t.Fatalf("write after regrant: target holds %d", got)
		}
	}
}

// testRegrant revokes and regrants while the initiator is idle: its QP never
// saw an error, so writes work again without a reconnect.
func testRegrant(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	for _, acc := range []verbs.Access{verbs.AccessRemoteRead, verbs.AccessAll, 0, verbs.AccessAll} {
		if err := b.qp.SetAccess(acc); err != nil {
			t.Fatalf("SetAccess(%v): %v", acc, err)
		}
		if got := b.qp.Access(); got != acc {
			t.Fatalf("Access() = %v, want %v", got, acc)
		}
	}
	binary.LittleEndian.PutUint64(a.mr.Bytes(), 5)
	mustSucceed(t, one(t, a, verbs.OpWrite, 1, 0, 8, b.mr.Remote(), 0), 8)
	if got := load(b.mr, 0); got != 5 {
		t.Fatalf("target holds %d after regrant", got)
	}
}

// testPeerClosed closes the target's device: the initiator's requests must
// complete with retry exceeded, not hang and not land.
func testPeerClosed(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	mustSucceed(t, one(t, a, verbs.OpWrite, 1, 0, 8, b.mr.Remote(), 0), 8)
	if err := b.dev.Close(); err != nil {
		t.Fatalf("close target device: %v", err)
	}
	c := one(t, a, verbs.OpWrite, 2, 0, 8, b.mr.Remote(), 0)
	if c.Status != verbs.StatusRetryExceeded {
		t.Fatalf("write to a closed peer completed %s, want retry exceeded", describe(c))
	}
	wantState(t, a.qp, verbs.StateError)
}

func testInvalidState(t *testing.T, p Provider) {
	cfg := defaultPair()
	da, db := p.open(t, 0), p.open(t, 1)
	a, b := newSide(t, da, cfg), newSide(t, db, cfg)
	wantState(t, a.qp, verbs.StateReset)
	wantErr(t, "PostWrite on a RESET QP", a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled), verbs.ErrQPState)
	wantErr(t, "PostRead on a RESET QP", a.qp.PostRead(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled), verbs.ErrQPState)
	wantErr(t, "SetAccess on a RESET QP", a.qp.SetAccess(verbs.AccessAll), verbs.ErrQPState)

	good := b.qp.Endpoint()
	garbage := [][]byte{nil, {}, {0}, make([]byte, 64), []byte("hello, I am not an endpoint at all"), good[:len(good)/2]}
	for i, ep := range garbage {
		wantErr(t, "Connect to garbage endpoint", a.qp.Connect(ep, verbs.AccessAll), verbs.ErrBadEndpoint)
		if a.qp.State() != verbs.StateReset {
			t.Fatalf("garbage endpoint %d moved the QP to %v", i, a.qp.State())
		}
	}
	connect(t, a, b, verbs.AccessAll)
	wantErr(t, "second Connect without Reset", a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll), verbs.ErrQPState)
	for i := 0; i < 2; i++ {
		if err := a.qp.Reset(); err != nil {
			t.Fatalf("reset %d: %v", i, err)
		}
		wantState(t, a.qp, verbs.StateReset)
	}
	expectNoCompletion(t, a.cq)
}

func testBadArguments(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	for _, size := range []int{0, -1} {
		_, err := a.pd.AllocMR(size, verbs.AccessAll)
		wantErr(t, "AllocMR of a bad size", err, verbs.ErrInvalidArgument)
	}
	for _, depth := range []int{0, -5} {
		_, err := a.dev.CreateCQ(depth)
		wantErr(t, "CreateCQ of a bad depth", err, verbs.ErrInvalidArgument)
	}
	_, err := a.pd.CreateQP(verbs.QPConfig{})
	wantErr(t, "CreateQP without a CQ", err, verbs.ErrInvalidArgument)
	_, err = a.pd.CreateQP(verbs.QPConfig{SendCQ: b.cq})
	wantErr(t, "CreateQP with another device's CQ", err, verbs.ErrForeignObject, verbs.ErrInvalidArgument)

	size := len(a.mr.Bytes())
	posts := []struct {
		name   string
		mr     verbs.MR
		off, n int
	}{
		{"nil MR", nil, 0, 8},
		{"negative length", a.mr, 0, -1},
		{"negative offset", a.mr, -1, 8},
		{"past the local MR", a.mr, size - 4, 8},
		{"over the message size", a.mr, 0, verbs.MaxMessageSize + 1},
	}
	for _, pc := range posts {
		for _, op := range []verbs.Opcode{verbs.OpWrite, verbs.OpRead} {
			wantErr(t, op.String()+" "+pc.name, post(a.qp, op, 1, pc.mr, pc.off, pc.n, b.mr.Remote(), verbs.Signaled), verbs.ErrInvalidArgument)
		}
	}
	wantState(t, a.qp, verbs.StateRTS)
	expectNoCompletion(t, a.cq)
	mustSucceed(t, one(t, a, verbs.OpWrite, 2, 0, 8, b.mr.Remote(), 0), 8)
}

func testDoubleClose(t *testing.T, p Provider) {
	d := p.open(t, 0)
	s := newSide(t, d, defaultPair())
	closers := []struct {
		name  string
		close func() error
	}{
		{"QP", s.qp.Close}, {"MR", s.mr.Close}, {"CQ", s.cq.Close}, {"PD", s.pd.Close}, {"Device", d.Close},
	}
	for _, c := range closers {
		if err := c.close(); err != nil {
			t.Fatalf("first %s close: %v", c.name, err)
		}
		wantErr(t, "second "+c.name+" close", c.close(), verbs.ErrClosed)
	}
	_, err := d.AllocPD()
	wantErr(t, "AllocPD on a closed device", err, verbs.ErrClosed)

	// Device.Close releases what is still open under it.
	d2 := p.open(t, 1)
	s2 := newSide(t, d2, defaultPair())
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "QP close after its device closed", s2.qp.Close(), verbs.ErrClosed)
	wantErr(t, "MR close after its device closed", s2.mr.Close(), verbs.ErrClosed)
}

func testZeroAlloc(t *testing.T, p Provider) {
	a, b := p.newPair(t, defaultPair())
	buf := make([]verbs.Completion, 4)
	round := func() {
		if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := a.cq.Poll(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				return
			}
		}
	}
	round() // warm up: first touch of a remote key may map memory
	if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
		t.Fatalf("PostWrite+Poll allocates %.1f times per op, want 0", allocs)
	}
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func untilTrue(cond func() bool) bool {
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
	return true
}
