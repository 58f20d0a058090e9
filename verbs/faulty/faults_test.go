//go:build linux

package faulty_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

var writes = faulty.Kind(faulty.Write)

// faultCases each install a rule on a fresh connected pair (a initiates on
// its own wrapped device, b is the target) and assert what a caller sees.
var faultCases = []struct {
	name string
	run  func(t *testing.T, a, b *end)
}{
	{"FailPostSynchronously", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(writes, faulty.OnIndex(1)), faulty.Fail(verbs.ErrQueueFull))
		mustWrite(t, a, b, 0, 0, 10, verbs.Signaled)
		one(t, a.cq, 0, verbs.StatusSuccess)
		err := write(a, b, 1, 1, 11, verbs.Signaled)
		wantErrIs(t, "second write", err, verbs.ErrQueueFull, faulty.ErrInjected)
		expectNone(t, a.cq)
		wantWord(t, b, 1, 0)
		wantState(t, a.qp, verbs.StateRTS)
		mustWrite(t, a, b, 2, 2, 12, verbs.Signaled)
		one(t, a.cq, 2, verbs.StatusSuccess)
		wantWord(t, b, 2, 12)
		wantFired(t, r, 1)
	}},
	{"ThirdLabelledWriteRetryExceeded", func(t *testing.T, a, b *end) {
		a.dev.Label(a.qp, "rep->2")
		r := a.dev.Inject(faulty.And(writes, faulty.Label("rep->2"), faulty.OnIndex(2)),
			faulty.Complete(verbs.StatusRetryExceeded))
		for wr := uint64(0); wr < 2; wr++ {
			mustWrite(t, a, b, wr, int(wr), wr+100, verbs.Signaled)
			one(t, a.cq, wr, verbs.StatusSuccess)
		}
		mustWrite(t, a, b, 2, 2, 102, verbs.Signaled)
		one(t, a.cq, 2, verbs.StatusRetryExceeded)
		wantWord(t, b, 2, 0) // not executed
		wantState(t, a.qp, verbs.StateError)
		// Contract item 4: later posts, even unsignaled, are flushed.
		mustWrite(t, a, b, 3, 3, 103, 0)
		one(t, a.cq, 3, verbs.StatusFlushError)
		wantWord(t, b, 3, 0)
		reconnect(t, a, b, verbs.AccessAll)
		mustWrite(t, a, b, 4, 4, 104, verbs.Signaled)
		one(t, a.cq, 4, verbs.StatusSuccess)
		wantWord(t, b, 4, 104)
		wantFired(t, r, 1)
	}},
	{"ReadToPeerRemoteAccessError", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(faulty.Kind(faulty.Read), faulty.Peer(b.qp.Endpoint())),
			faulty.Complete(verbs.StatusRemoteAccessError))
		mustWrite(t, a, b, 1, 0, 77, verbs.Signaled) // WRITEs are not matched
		one(t, a.cq, 1, verbs.StatusSuccess)
		if err := a.qp.PostRead(2, a.mr, 64, 8, b.mr.Remote(), 0); err != nil {
			t.Fatalf("post read: %v", err)
		}
		one(t, a.cq, 2, verbs.StatusRemoteAccessError)
		wantWord(t, a, 8, 0) // nothing read into a
		wantState(t, a.qp, verbs.StateError)
		wantFired(t, r, 1)
	}},
	{"OnIndexFiresExactlyOnce", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(writes, faulty.OnIndex(3)), faulty.Fail(nil))
		for wr := uint64(0); wr < 10; wr++ {
			err := write(a, b, wr, int(wr), wr+1, verbs.Signaled)
			if (err != nil) != (wr == 3) {
				t.Fatalf("write %d: err %v; only write 3 must fail", wr, err)
			}
			if err == nil {
				one(t, a.cq, wr, verbs.StatusSuccess)
			}
		}
		wantFired(t, r, 1)
	}},
	{"EveryNth", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.EveryNth(3), faulty.Fail(verbs.ErrQueueFull))
		var failed []uint64
		for wr := uint64(0); wr < 9; wr++ {
			if err := write(a, b, wr, int(wr), 1, verbs.Signaled); err != nil {
				failed = append(failed, wr)
				continue
			}
			one(t, a.cq, wr, verbs.StatusSuccess)
		}
		if len(failed) != 3 || failed[0] != 2 || failed[1] != 5 || failed[2] != 8 {
			t.Fatalf("writes %v failed, want 2, 5 and 8", failed)
		}
		wantFired(t, r, 3)
	}},
	{"SeededProbabilityRepeats", func(t *testing.T, a, b *end) {
		pattern := func() []bool {
			r := a.dev.Inject(faulty.Probability(0.3, 42), faulty.Fail(nil))
			defer r.Remove()
			var out []bool
			for wr := uint64(0); wr < 100; wr++ {
				err := write(a, b, wr, 0, wr, verbs.Signaled)
				out = append(out, err != nil)
				if err == nil {
					one(t, a.cq, wr, verbs.StatusSuccess)
				}
			}
			n := 0
			for _, f := range out {
				if f {
					n++
				}
			}
			if n == 0 || n == 100 {
				t.Fatalf("p=0.3 failed %d of 100 writes", n)
			}
			wantFired(t, r, n)
			return out
		}
		first, second := pattern(), pattern()
		for i := range first {
			if first[i] != second[i] {
				t.Fatalf("write %d: seed 42 failed it once and not the other time", i)
			}
		}
	}},
	{"HoldThenReleaseInOrder", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(writes, faulty.OnIndex(1)), faulty.Hold())
		mustWrite(t, a, b, 0, 0, 1, verbs.Signaled)
		mustWrite(t, a, b, 1, 1, 2, verbs.Signaled) // held
		mustWrite(t, a, b, 2, 2, 3, verbs.Signaled) // behind it
		mustWrite(t, a, b, 3, 3, 4, 0)              // unsignaled: never shows
		mustWrite(t, a, b, 4, 4, 5, verbs.Signaled)
		one(t, a.cq, 0, verbs.StatusSuccess)
		expectNone(t, a.cq)
		for slot := 0; slot < 5; slot++ {
			wantWord(t, b, slot, uint64(slot+1)) // all executed
		}
		r.Release()
		got := collect(t, a.cq, 3)
		for i, wr := range []uint64{1, 2, 4} {
			if got[i].WRID != wr || got[i].Status != verbs.StatusSuccess {
				t.Fatalf("released completions %v, want wr 1, 2, 4 succeeded", got)
			}
		}
		expectNone(t, a.cq)
		wantFired(t, r, 1)
	}},
	{"HoldUntilRemoved", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(writes, faulty.Hold())
		mustWrite(t, a, b, 7, 0, 1, verbs.Signaled)
		expectNone(t, a.cq)
		r.Remove()
		one(t, a.cq, 7, verbs.StatusSuccess)
		mustWrite(t, a, b, 8, 0, 2, verbs.Signaled) // passes straight through
		one(t, a.cq, 8, verbs.StatusSuccess)
		wantFired(t, r, 1)
	}},
	{"ResetDropsHeld", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(writes, faulty.OnIndex(0)), faulty.Hold())
		mustWrite(t, a, b, 1, 0, 1, verbs.Signaled)
		expectNone(t, a.cq)
		reconnect(t, a, b, verbs.AccessAll)
		r.Release()
		expectNone(t, a.cq) // dropped with the connection
		mustWrite(t, a, b, 2, 0, 2, verbs.Signaled)
		one(t, a.cq, 2, verbs.StatusSuccess)
		wantFired(t, r, 1)
	}},
	{"DelayReleasedEarly", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(writes, faulty.Delay(time.Hour))
		mustWrite(t, a, b, 1, 0, 42, verbs.Signaled)
		wantWord(t, b, 0, 42) // landed: only the completion is late
		expectNone(t, a.cq)
		r.Release()
		one(t, a.cq, 1, verbs.StatusSuccess)
		wantFired(t, r, 1)
	}},
	{"DelayElapses", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(writes, faulty.Delay(time.Millisecond))
		mustWrite(t, a, b, 1, 0, 42, verbs.Signaled)
		mustWrite(t, a, b, 2, 1, 43, verbs.Signaled)
		got := collect(t, a.cq, 2) // shows by itself, in order
		if got[0].WRID != 1 || got[1].WRID != 2 {
			t.Fatalf("delayed completions %v, want wr 1 then 2", got)
		}
		wantFired(t, r, 2)
	}},
	{"TornWriteWithError", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(writes, faulty.Tear(10, verbs.StatusRetryExceeded))
		src := a.mr.Bytes()[:64]
		for i := range src {
			src[i] = byte(i + 1)
		}
		if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		one(t, a.cq, 1, verbs.StatusRetryExceeded)
		dst := b.mr.Bytes()[:64]
		if !bytes.Equal(dst[:10], src[:10]) || !bytes.Equal(dst[10:], make([]byte, 54)) {
			t.Fatalf("target holds %v, want the first 10 bytes of %v and zeros", dst, src)
		}
		wantState(t, a.qp, verbs.StateError)
		r.Remove()
		mustWrite(t, a, b, 2, 0, 1, verbs.Signaled)
		one(t, a.cq, 2, verbs.StatusFlushError)
	}},
	{"TornWriteReportedAsSuccess", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(faulty.And(writes, faulty.OnIndex(0)), faulty.Tear(5, verbs.StatusSuccess))
		src := a.mr.Bytes()[:64]
		for i := range src {
			src[i] = 0xee
		}
		if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		if c := one(t, a.cq, 1, verbs.StatusSuccess); c.Bytes != 64 {
			t.Fatalf("torn write reports %d bytes, want the 64 asked", c.Bytes)
		}
		dst := b.mr.Bytes()[:64]
		if !bytes.Equal(dst[:5], src[:5]) || !bytes.Equal(dst[5:], make([]byte, 59)) {
			t.Fatalf("target holds %v, want 5 bytes of 0xee and zeros", dst)
		}
		wantState(t, a.qp, verbs.StateRTS)
		if err := a.qp.PostWrite(2, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		one(t, a.cq, 2, verbs.StatusSuccess)
		if !bytes.Equal(dst, src) {
			t.Fatalf("the next write did not land whole")
		}
		wantFired(t, r, 1)
	}},
	{"PartitionThenHeal", func(t *testing.T, a, b *end) {
		p := a.dev.Inject(faulty.QPNum(a.qp.Num()), faulty.Partition(0))
		mustWrite(t, a, b, 1, 0, 1, verbs.Signaled)
		one(t, a.cq, 1, verbs.StatusRetryExceeded)
		wantState(t, a.qp, verbs.StateError)
		mustWrite(t, a, b, 2, 0, 2, 0)
		one(t, a.cq, 2, verbs.StatusFlushError)
		// Reconnecting does not help while the link is down.
		reconnect(t, a, b, verbs.AccessAll)
		mustWrite(t, a, b, 3, 0, 3, verbs.Signaled)
		one(t, a.cq, 3, verbs.StatusRetryExceeded)
		wantWord(t, b, 0, 0)
		p.Heal()
		// Healing alone does not either: the QP is still in error.
		mustWrite(t, a, b, 4, 0, 4, verbs.Signaled)
		one(t, a.cq, 4, verbs.StatusFlushError)
		reconnect(t, a, b, verbs.AccessAll)
		mustWrite(t, a, b, 5, 0, 5, verbs.Signaled)
		one(t, a.cq, 5, verbs.StatusSuccess)
		wantWord(t, b, 0, 5)
		wantFired(t, p, 2)
	}},
	{"PartitionHealsItself", func(t *testing.T, a, b *end) {
		// The partition lasts d from Inject. A write posted within d must
		// be cut; one posted later (a starved machine) proves nothing,
		// so the scenario runs again with a longer partition.
		deadline := time.Now().Add(waitLimit)
		wr := uint64(0)
		for d := 5 * time.Millisecond; ; d *= 2 {
			injected := time.Now()
			p := a.dev.Inject(nil, faulty.Partition(d))
			wr++
			mustWrite(t, a, b, wr, 0, wr, verbs.Signaled)
			posted := time.Since(injected)
			c := collect(t, a.cq, 1)[0]
			if c.Status == verbs.StatusSuccess {
				if posted < d {
					t.Fatalf("a write posted %v into a %v partition was not cut", posted, d)
				}
				p.Remove()
				continue
			}
			if c.Status != verbs.StatusRetryExceeded {
				t.Fatalf("write %d completed %v in a partition, want retry exceeded", wr, c.Status)
			}
			wantFired(t, p, 1)
			// Now wait for the heal, reconnecting after each cut write.
			for {
				reconnect(t, a, b, verbs.AccessAll)
				wr++
				mustWrite(t, a, b, wr, 0, wr, verbs.Signaled)
				c := collect(t, a.cq, 1)[0]
				if c.Status == verbs.StatusSuccess {
					wantWord(t, b, 0, wr)
					return
				}
				if c.Status != verbs.StatusRetryExceeded || time.Now().After(deadline) {
					t.Fatalf("write %d completed %v while waiting for the heal", wr, c.Status)
				}
			}
		}
	}},
	{"SetAccessFailsThenResetFallback", func(t *testing.T, a, b *end) {
		r := b.dev.Inject(faulty.And(faulty.Kind(faulty.SetAccess), faulty.OnIndex(0)), faulty.Fail(verbs.ErrFenceTimeout))
		readOnly := verbs.AccessLocalWrite | verbs.AccessRemoteRead
		err := b.qp.SetAccess(readOnly)
		wantErrIs(t, "revoke", err, verbs.ErrFenceTimeout, faulty.ErrInjected)
		if got := b.qp.Access(); got != verbs.AccessAll {
			t.Fatalf("access %v after a failed SetAccess, want it unchanged", got)
		}
		// The caller's fallback: a fresh connection with the new rights.
		reconnect(t, a, b, readOnly)
		mustWrite(t, a, b, 1, 0, 1, verbs.Signaled)
		one(t, a.cq, 1, verbs.StatusRemoteAccessError)
		wantWord(t, b, 0, 0)
		if err := b.qp.SetAccess(verbs.AccessAll); err != nil {
			t.Fatalf("second SetAccess: %v (the rule fires once)", err)
		}
		wantFired(t, r, 1)
	}},
	{"UnsignaledSuccessesStayQuiet", func(t *testing.T, a, b *end) {
		// A rule that never fires still puts posts on the slow path.
		r := a.dev.Inject(faulty.Label("nobody"), faulty.Complete(verbs.StatusGeneralError))
		for wr := uint64(0); wr < 10; wr++ {
			mustWrite(t, a, b, wr, int(wr), wr+1, 0)
		}
		mustWrite(t, a, b, 10, 10, 11, verbs.Signaled)
		one(t, a.cq, 10, verbs.StatusSuccess)
		expectNone(t, a.cq)
		for slot := 0; slot <= 10; slot++ {
			wantWord(t, b, slot, uint64(slot+1))
		}
		wantFired(t, r, 0)
	}},
	{"UnsignaledErrorStillCompletes", func(t *testing.T, a, b *end) {
		r := a.dev.Inject(writes, faulty.Complete(verbs.StatusRetryExceeded))
		mustWrite(t, a, b, 1, 0, 1, 0)
		one(t, a.cq, 1, verbs.StatusRetryExceeded)
		wantFired(t, r, 1)
	}},
	{"LabelSelectsQP", func(t *testing.T, a, b *end) {
		a2, b2 := newEnd(t, a.dev), newEnd(t, b.dev)
		connect(t, a2, b2, verbs.AccessAll)
		a.dev.Label(a.qp, "x")
		a.dev.Label(a2.qp, "y")
		r := a.dev.Inject(faulty.Label("x"), faulty.Complete(verbs.StatusRetryExceeded))
		mustWrite(t, a2, b2, 1, 0, 1, verbs.Signaled)
		one(t, a2.cq, 1, verbs.StatusSuccess)
		mustWrite(t, a, b, 2, 0, 2, verbs.Signaled)
		one(t, a.cq, 2, verbs.StatusRetryExceeded)
		wantState(t, a2.qp, verbs.StateRTS)
		wantFired(t, r, 1)
	}},
	{"FirstMatchingRuleWins", func(t *testing.T, a, b *end) {
		first := a.dev.Inject(faulty.OnIndex(0), faulty.Fail(verbs.ErrQueueFull))
		second := a.dev.Inject(writes, faulty.Fail(verbs.ErrCQFull))
		wantErrIs(t, "first write", write(a, b, 1, 0, 1, verbs.Signaled), verbs.ErrQueueFull)
		wantErrIs(t, "second write", write(a, b, 2, 0, 1, verbs.Signaled), verbs.ErrCQFull)
		wantFired(t, first, 1)
		wantFired(t, second, 1)
	}},
}

func TestFaults(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			a, b := pair(t)
			fc.run(t, a, b)
		})
	}
}

// TestBadArgumentsUnderRules checks that rules do not hide the provider's
// own refusals: a bad post fails synchronously, the rule is not asked.
func TestBadArgumentsUnderRules(t *testing.T) {
	a, b := pair(t)
	r := a.dev.Inject(writes, faulty.Complete(verbs.StatusRetryExceeded))
	err := a.qp.PostWrite(1, a.mr, 4090, 8, b.mr.Remote(), verbs.Signaled)
	if !errors.Is(err, verbs.ErrInvalidArgument) {
		t.Fatalf("write past the local MR: %v, want ErrInvalidArgument", err)
	}
	_, err = a.pd.CreateQP(verbs.QPConfig{SendCQ: b.cq})
	if !errors.Is(err, verbs.ErrForeignObject) {
		t.Fatalf("CreateQP with another device's CQ: %v, want ErrForeignObject", err)
	}
	wantState(t, a.qp, verbs.StateRTS)
	expectNone(t, a.cq)
	wantFired(t, r, 0)
}
