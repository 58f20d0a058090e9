//go:build linux

package faulty_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// waitLimit bounds every wait: a hang detector, never a performance
// threshold.
const waitLimit = 10 * time.Second

// fabricName returns an shm fabric name unique to this process and test.
func fabricName(t testing.TB) string { return verbstest.FabricName(t, "faulty") }

// end is one side of a connection, made from a wrapped shm device.
type end struct {
	dev *faulty.Device
	pd  verbs.PD
	cq  verbs.CQ
	mr  verbs.MR
	qp  verbs.QP
}

func openWrapped(t testing.TB) *faulty.Device {
	t.Helper()
	inner, err := verbs.Open("shm", fabricName(t), verbs.Options{RetryTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("open shm: %v", err)
	}
	d := faulty.Wrap(inner)
	t.Cleanup(func() { d.Close() })
	return d
}

func newEnd(t testing.TB, d *faulty.Device) *end {
	t.Helper()
	e := &end{dev: d}
	var err error
	if e.pd, err = d.AllocPD(); err != nil {
		t.Fatalf("alloc pd: %v", err)
	}
	if e.cq, err = d.CreateCQ(256); err != nil {
		t.Fatalf("create cq: %v", err)
	}
	if e.mr, err = e.pd.AllocMR(4096, verbs.AccessAll); err != nil {
		t.Fatalf("alloc mr: %v", err)
	}
	if e.qp, err = e.pd.CreateQP(verbs.QPConfig{SendCQ: e.cq}); err != nil {
		t.Fatalf("create qp: %v", err)
	}
	return e
}

// pair connects initiator a, on its own wrapped device, to target b.
func pair(t testing.TB) (a, b *end) {
	t.Helper()
	a, b = newEnd(t, openWrapped(t)), newEnd(t, openWrapped(t))
	connect(t, a, b, verbs.AccessAll)
	return a, b
}

func connect(t testing.TB, a, b *end, targetAccess verbs.Access) {
	t.Helper()
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatalf("connect initiator: %v", err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), targetAccess); err != nil {
		t.Fatalf("connect target: %v", err)
	}
}

// reconnect is a caller's recovery: Reset both QPs, connect again.
func reconnect(t testing.TB, a, b *end, targetAccess verbs.Access) {
	t.Helper()
	for _, e := range []*end{a, b} {
		if err := e.qp.Reset(); err != nil {
			t.Fatalf("reset qp %d: %v", e.qp.Num(), err)
		}
	}
	connect(t, a, b, targetAccess)
}

// write puts v in a's word slot and WRITEs it to the same slot of b.
func write(a, b *end, wrID uint64, slot int, v uint64, flags verbs.SendFlags) error {
	binary.LittleEndian.PutUint64(a.mr.Bytes()[slot*8:], v)
	return a.qp.PostWrite(wrID, a.mr, slot*8, 8, b.mr.Remote().Add(uint64(slot*8)), flags)
}

func mustWrite(t testing.TB, a, b *end, wrID uint64, slot int, v uint64, flags verbs.SendFlags) {
	t.Helper()
	if err := write(a, b, wrID, slot, v, flags); err != nil {
		t.Fatalf("post write wr %d: %v", wrID, err)
	}
}

func word(e *end, slot int) uint64 { return binary.LittleEndian.Uint64(e.mr.Bytes()[slot*8:]) }

// collect polls until n completions arrived.
func collect(t testing.TB, cq verbs.CQ, n int) []verbs.Completion {
	t.Helper()
	got := make([]verbs.Completion, 0, n)
	buf := make([]verbs.Completion, 8)
	deadline := time.Now().Add(waitLimit)
	for len(got) < n {
		k, err := cq.Poll(buf[:min(len(buf), n-len(got))])
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		got = append(got, buf[:k]...)
		if k == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("got %d of %d completions within %v: %v", len(got), n, waitLimit, got)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return got
}

// one collects a single completion and checks who it is and how it ended.
func one(t testing.TB, cq verbs.CQ, wrID uint64, want verbs.Status) verbs.Completion {
	t.Helper()
	c := collect(t, cq, 1)[0]
	if c.WRID != wrID || c.Status != want {
		t.Fatalf("completion wr=%d %v status=%q, want wr=%d status=%q", c.WRID, c.Op, c.Status, wrID, want)
	}
	return c
}

// expectNone checks that nothing is pollable. shm completes a request
// before Post returns, so a completion that is not withheld would already
// be there: no waiting is needed to tell.
func expectNone(t testing.TB, cq verbs.CQ) {
	t.Helper()
	buf := make([]verbs.Completion, 8)
	for i := 0; i < 100; i++ {
		if n, err := cq.Poll(buf); err != nil || n > 0 {
			t.Fatalf("unexpected completions %v (err %v)", buf[:n], err)
		}
	}
}

func wantState(t testing.TB, qp verbs.QP, want verbs.QPState) {
	t.Helper()
	if got := qp.State(); got != want {
		t.Fatalf("qp %d state %v, want %v", qp.Num(), got, want)
	}
}

func wantFired(t testing.TB, r *faulty.Rule, want int) {
	t.Helper()
	if got := r.Fired(); got != want {
		t.Fatalf("%v fired %d times, want %d", r, got, want)
	}
}

func wantWord(t testing.TB, e *end, slot int, want uint64) {
	t.Helper()
	if got := word(e, slot); got != want {
		t.Fatalf("target slot %d holds %#x, want %#x", slot, got, want)
	}
}

func wantErrIs(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
		}
	}
}
