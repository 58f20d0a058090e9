package verbstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// waitLimit bounds every wait of the suite. It is a hang detector, not a
// performance threshold: a provider that needs anywhere near this long is
// broken, not slow.
const waitLimit = 10 * time.Second

// FabricName returns a device name unique to this process and test, made of
// characters every provider takes in a name (shm turns it into file names),
// after prefix: for a provider's tests, whose devices must not meet those
// of other tests or processes.
func FabricName(t testing.TB, prefix string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	return fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), name)
}

func (p Provider) deviceName(t testing.TB, i int) string {
	if p.Device == nil {
		return ""
	}
	return p.Device(t, i)
}

// open opens the i-th device of the test and closes it at cleanup.
func (p Provider) open(t testing.TB, i int) verbs.Device {
	t.Helper()
	d, err := verbs.Open(p.Name, p.deviceName(t, i), p.Options)
	if err != nil {
		t.Fatalf("open device %d: %v", i, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// side is one end of a connection: a device with a PD, a CQ, an MR and a QP.
type side struct {
	dev verbs.Device
	pd  verbs.PD
	cq  verbs.CQ
	mr  verbs.MR
	qp  verbs.QP
}

type pairConfig struct {
	mrSize     int
	cqDepth    int
	qp         verbs.QPConfig
	targetQP   verbs.Access // rights the initiator gets at the target
	sameDevice bool         // both sides on one device (loopback)
}

func defaultPair() pairConfig {
	return pairConfig{mrSize: 1 << 16, cqDepth: 1024, targetQP: verbs.AccessAll}
}

// newSide makes a PD, CQ, MR and an unconnected QP on dev.
func newSide(t testing.TB, dev verbs.Device, cfg pairConfig) side {
	t.Helper()
	s := side{dev: dev}
	var err error
	if s.pd, err = dev.AllocPD(); err != nil {
		t.Fatalf("alloc pd: %v", err)
	}
	if s.cq, err = dev.CreateCQ(cfg.cqDepth); err != nil {
		t.Fatalf("create cq: %v", err)
	}
	if s.mr, err = s.pd.AllocMR(cfg.mrSize, verbs.AccessAll); err != nil {
		t.Fatalf("alloc mr: %v", err)
	}
	qc := cfg.qp
	qc.SendCQ = s.cq
	if s.qp, err = s.pd.CreateQP(qc); err != nil {
		t.Fatalf("create qp: %v", err)
	}
	return s
}

// newPair connects an initiator a to a target b. The initiator lets the
// target do anything; the target grants cfg.targetQP.
func (p Provider) newPair(t testing.TB, cfg pairConfig) (a, b side) {
	t.Helper()
	da := p.open(t, 0)
	db := da
	if !cfg.sameDevice {
		db = p.open(t, 1)
	}
	a, b = newSide(t, da, cfg), newSide(t, db, cfg)
	connect(t, a, b, cfg.targetQP)
	return a, b
}

func connect(t testing.TB, a, b side, targetAccess verbs.Access) {
	t.Helper()
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatalf("connect initiator: %v", err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), targetAccess); err != nil {
		t.Fatalf("connect target: %v", err)
	}
	if st := a.qp.State(); st != verbs.StateRTS {
		t.Fatalf("initiator state after Connect = %v, want RTS", st)
	}
}

// collect polls cq until n completions arrived, failing the test if they do
// not arrive within waitLimit.
func collect(t testing.TB, cq verbs.CQ, n int) []verbs.Completion {
	t.Helper()
	got := make([]verbs.Completion, 0, n)
	buf := make([]verbs.Completion, 16)
	ok := poll.Until(poll.SpinYield, time.Now().Add(waitLimit), func() bool {
		k, err := cq.Poll(buf[:min(len(buf), n-len(got))])
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		got = append(got, buf[:k]...)
		return len(got) == n
	})
	if !ok {
		t.Fatalf("got %d of %d completions within %v: %v", len(got), n, waitLimit, got)
	}
	return got
}

// expectNoCompletion checks that nothing more arrives for a short while.
func expectNoCompletion(t testing.TB, cq verbs.CQ) {
	t.Helper()
	buf := make([]verbs.Completion, 4)
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n, _ := cq.Poll(buf); n > 0 {
			t.Fatalf("unexpected completions: %v", buf[:n])
		}
		time.Sleep(time.Millisecond)
	}
}

// drain discards completions until none has arrived for a short while.
func drain(cq verbs.CQ) {
	buf := make([]verbs.Completion, 64)
	quiet := time.Now().Add(20 * time.Millisecond)
	for deadline := time.Now().Add(waitLimit); time.Now().Before(quiet) && time.Now().Before(deadline); {
		if n, _ := cq.Poll(buf); n > 0 {
			quiet = time.Now().Add(20 * time.Millisecond)
			continue
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// one posts a single request and returns its completion.
func one(t testing.TB, s side, op verbs.Opcode, wrID uint64, localOff, n int, remote verbs.Remote, flags verbs.SendFlags) verbs.Completion {
	t.Helper()
	if err := post(s.qp, op, wrID, s.mr, localOff, n, remote, flags|verbs.Signaled); err != nil {
		t.Fatalf("post %v: %v", op, err)
	}
	c := collect(t, s.cq, 1)[0]
	if c.WRID != wrID || c.Op != op {
		t.Fatalf("completion %+v does not match wr %d op %v", c, wrID, op)
	}
	return c
}

func post(qp verbs.QP, op verbs.Opcode, wrID uint64, mr verbs.MR, off, n int, remote verbs.Remote, flags verbs.SendFlags) error {
	if op == verbs.OpRead {
		return qp.PostRead(wrID, mr, off, n, remote, flags)
	}
	return qp.PostWrite(wrID, mr, off, n, remote, flags)
}

func mustSucceed(t testing.TB, c verbs.Completion, n int) {
	t.Helper()
	if c.Status != verbs.StatusSuccess {
		t.Fatalf("completion failed: %v", c.Err())
	}
	if int(c.Bytes) != n {
		t.Fatalf("completion moved %d bytes, want %d", c.Bytes, n)
	}
}

func fill(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes differ, first at byte %d", what, len(want), i)
	}
}

// word gives atomic access to the 8 bytes at off of registered memory, for
// observing it while a peer writes.
func word(mr verbs.MR, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&mr.Bytes()[off]))
}

func load(mr verbs.MR, off int) uint64 { return atomic.LoadUint64(word(mr, off)) }

func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, targets)
	}
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Fatalf("%s: error %q is none of %v", what, err, targets)
}

func wantState(t testing.TB, qp verbs.QP, want verbs.QPState) {
	t.Helper()
	if got := qp.State(); got != want {
		t.Fatalf("qp %d state = %v, want %v", qp.Num(), got, want)
	}
}

func describe(c verbs.Completion) string {
	return fmt.Sprintf("wr=%d op=%v status=%v bytes=%d", c.WRID, c.Op, c.Status, c.Bytes)
}
