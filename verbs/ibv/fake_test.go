//go:build rdma && ibvfake

package ibv

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// The whole suite again over the fake RoCE device, addressed by GID.
func TestConformanceRoCE(t *testing.T) {
	p := provider
	p.Device = func(testing.TB, int) string { return "fakeroce0" }
	p.Options.GIDIndex = 1
	verbstest.Run(t, p)
}

func TestOpenWithoutDevices(t *testing.T) {
	old := setFakeDevices(0)
	defer setFakeDevices(old)
	for _, name := range []string{"", "fakeib0"} {
		d, err := verbs.Open("ibv", name, verbs.Options{})
		if err == nil {
			d.Close()
			t.Fatalf("Open(%q) with no device succeeded", name)
		}
		if !errors.Is(err, verbs.ErrNoDevice) || !strings.Contains(err.Error(), "no RDMA device found; use --transport shm or tcp") {
			t.Fatalf("Open(%q) with no device = %v, want ErrNoDevice saying what to use instead", name, err)
		}
	}
}

func TestOpenSelectsDeviceAndPort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     verbs.Options
		want     string // device name, or "" when an error is expected
		wantErr  error
		contains string
	}{
		{name: "", want: "fakeib0"},
		{name: "fakeib0", want: "fakeib0"},
		{name: "fakeib0:1", want: "fakeib0"},
		{name: "fakeroce0", want: "fakeroce0"},
		{name: "fakeroce0", opts: verbs.Options{GIDIndex: 1}, want: "fakeroce0"},
		{name: "fakeroce0", opts: verbs.Options{GIDIndex: 2}, wantErr: verbs.ErrInvalidArgument, contains: "GID index 2"},
		{name: "fakeroce0", opts: verbs.Options{GIDIndex: -1}, wantErr: verbs.ErrInvalidArgument},
		{name: "fakeib0:2", wantErr: verbs.ErrInvalidArgument, contains: "1 port"},
		{name: "fakeib0", opts: verbs.Options{Port: 3}, wantErr: verbs.ErrInvalidArgument},
		{name: "fakeib0:0", wantErr: verbs.ErrInvalidArgument},
		{name: "fakeib0:x", wantErr: verbs.ErrInvalidArgument},
		{name: "mlx5_0", wantErr: verbs.ErrNoDevice, contains: "have fakeib0, fakeroce0"},
	} {
		d, err := verbs.Open("ibv", tc.name, tc.opts)
		if tc.wantErr != nil {
			if err == nil {
				d.Close()
				t.Errorf("Open(%q, %+v) succeeded, want %v", tc.name, tc.opts, tc.wantErr)
			} else if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Open(%q, %+v) = %v, want %v saying %q", tc.name, tc.opts, err, tc.wantErr, tc.contains)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q, %+v): %v", tc.name, tc.opts, err)
			continue
		}
		if d.Name() != tc.want || d.Provider() != "ibv" {
			t.Errorf("Open(%q) opened %s/%s, want ibv/%s", tc.name, d.Provider(), d.Name(), tc.want)
		}
		if err := d.Close(); err != nil {
			t.Errorf("close %s: %v", tc.name, err)
		}
	}

	old := setFakeDevices(1)
	defer setFakeDevices(old)
	if _, err := verbs.Open("ibv", "fakeroce0", verbs.Options{}); !errors.Is(err, verbs.ErrNoDevice) {
		t.Errorf("Open of a device that went away = %v, want ErrNoDevice", err)
	}
}

// end is one side of a test connection.
type end struct {
	dev verbs.Device
	pd  verbs.PD
	cq  verbs.CQ
	mr  verbs.MR
	qp  verbs.QP
}

func newEnd(t testing.TB, name string, opts verbs.Options, cfg verbs.QPConfig) end {
	t.Helper()
	var e end
	var err error
	if e.dev, err = verbs.Open("ibv", name, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dev.Close() })
	if e.pd, err = e.dev.AllocPD(); err != nil {
		t.Fatal(err)
	}
	if e.cq, err = e.dev.CreateCQ(256); err != nil {
		t.Fatal(err)
	}
	if e.mr, err = e.pd.AllocMR(1<<16, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	cfg.SendCQ = e.cq
	if e.qp, err = e.pd.CreateQP(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func connectEnds(t testing.TB, a, b end) {
	t.Helper()
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
}

func newPair(t testing.TB, name string, opts verbs.Options, cfg verbs.QPConfig) (a, b end) {
	t.Helper()
	a, b = newEnd(t, name, opts, cfg), newEnd(t, name, opts, cfg)
	connectEnds(t, a, b)
	return a, b
}

// waitOne polls cq until one completion arrives.
func waitOne(t testing.TB, cq verbs.CQ) verbs.Completion {
	t.Helper()
	var buf [1]verbs.Completion
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := cq.Poll(buf[:])
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return buf[0]
		}
	}
	t.Fatal("no completion")
	return verbs.Completion{}
}

func TestRoCEConnectsByGID(t *testing.T) {
	for _, gid := range []int{0, 1} {
		a, b := newPair(t, "fakeroce0", verbs.Options{GIDIndex: gid}, verbs.QPConfig{})
		binary.LittleEndian.PutUint64(a.mr.Bytes(), 0xc0ffee)
		if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		if c := waitOne(t, a.cq); c.Err() != nil {
			t.Fatalf("GID index %d: %v", gid, c.Err())
		}
		if got := binary.LittleEndian.Uint64(b.mr.Bytes()); got != 0xc0ffee {
			t.Fatalf("GID index %d: target holds %#x", gid, got)
		}
	}
}

func TestConnectAcrossLinkLayersIsRefused(t *testing.T) {
	ib := newEnd(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	roce := newEnd(t, "fakeroce0", verbs.Options{}, verbs.QPConfig{})
	if err := ib.qp.Connect(roce.qp.Endpoint(), verbs.AccessAll); !errors.Is(err, verbs.ErrBadEndpoint) {
		t.Fatalf("IB QP connecting to a RoCE endpoint: %v, want ErrBadEndpoint", err)
	}
	if s := ib.qp.State(); s != verbs.StateReset {
		t.Fatalf("state after refused Connect = %v", s)
	}
}

func TestEndpointChangesOnReset(t *testing.T) {
	a, _ := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	before := string(a.qp.Endpoint())
	seen := map[string]bool{before: true}
	for range 4 {
		if err := a.qp.Reset(); err != nil {
			t.Fatal(err)
		}
		seen[string(a.qp.Endpoint())] = true
	}
	// A fresh random PSN each time; five equal ones in 2^24 would be a bug.
	if len(seen) < 2 {
		t.Fatal("endpoint never changed across resets")
	}
}

func TestInlineCappedToWhatTheDeviceGrants(t *testing.T) {
	// The fake supports 512 bytes inline and refuses QPs asking more,
	// so 1000 steps down to 500.
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{MaxInline: 1000})
	if got := a.qp.(*qp).maxInline; got != 500 {
		t.Fatalf("MaxInline 1000 granted as %d, want 500", got)
	}
	if err := a.qp.PostWrite(1, a.mr, 0, 500, b.mr.Remote(), verbs.Inline|verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := waitOne(t, a.cq); c.Err() != nil || c.Bytes != 500 {
		t.Fatalf("inline 500: %+v", c)
	}
	if err := a.qp.PostWrite(2, a.mr, 0, 501, b.mr.Remote(), verbs.Inline); !errors.Is(err, verbs.ErrInvalidArgument) {
		t.Fatalf("inline 501 over a 500 cap: %v", err)
	}
}

type otherMR struct{ verbs.MR }
type otherCQ struct{ verbs.CQ }

func TestMisuseIsAnError(t *testing.T) {
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"MR of another provider", a.qp.PostWrite(1, otherMR{}, 0, 8, b.mr.Remote(), 0), verbs.ErrForeignObject},
		{"typed nil MR", a.qp.PostWrite(1, (*mr)(nil), 0, 8, b.mr.Remote(), 0), verbs.ErrInvalidArgument},
		{"CQ of another provider", errOf(a.pd.CreateQP(verbs.QPConfig{SendCQ: otherCQ{}})), verbs.ErrForeignObject},
		{"send queue over the device's", errOf(a.pd.CreateQP(verbs.QPConfig{SendCQ: a.cq, MaxSendWR: 1 << 20})), verbs.ErrInvalidArgument},
		{"negative send queue", errOf(a.pd.CreateQP(verbs.QPConfig{SendCQ: a.cq, MaxSendWR: -1})), verbs.ErrInvalidArgument},
		{"CQ deeper than the device's", errOf(a.dev.CreateCQ(1 << 30)), verbs.ErrInvalidArgument},
		{"absurd MR", errOf(a.pd.AllocMR(1<<50, verbs.AccessAll)), verbs.ErrInvalidArgument},
		{"unknown access bits", errOf(a.pd.AllocMR(64, 1<<7)), verbs.ErrInvalidArgument},
		{"garbage access on SetAccess", b.qp.SetAccess(1 << 9), verbs.ErrInvalidArgument},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestSetAccessOnErroredQP(t *testing.T) {
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	bad := b.mr.Remote()
	bad.RKey++
	if err := a.qp.PostWrite(1, a.mr, 0, 8, bad, 0); err != nil {
		t.Fatal(err)
	}
	if c := waitOne(t, a.cq); c.Status != verbs.StatusRemoteAccessError {
		t.Fatalf("bad rkey: %+v", c)
	}
	if err := a.qp.SetAccess(verbs.AccessAll); !errors.Is(err, verbs.ErrQPState) {
		t.Fatalf("SetAccess on a QP in ERROR: %v, want ErrQPState", err)
	}
}

// TestRefusalAlsoErrorsTheTarget documents what a NIC does and the fake
// mirrors: a responder that refuses a request moves its own QP to ERROR as
// well, so regranting through it takes Reset and Connect, not SetAccess.
func TestRefusalAlsoErrorsTheTarget(t *testing.T) {
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	if err := b.qp.SetAccess(verbs.AccessRemoteRead); err != nil {
		t.Fatal(err)
	}
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), 0); err != nil {
		t.Fatal(err)
	}
	if c := waitOne(t, a.cq); c.Status != verbs.StatusRemoteAccessError {
		t.Fatalf("write after revoke: %+v", c)
	}
	if s := b.qp.State(); s != verbs.StateError {
		t.Fatalf("target state after refusing = %v, want ERROR", s)
	}
	if err := b.qp.SetAccess(verbs.AccessAll); !errors.Is(err, verbs.ErrQPState) {
		t.Fatalf("regrant through the errored target QP: %v, want ErrQPState", err)
	}
}

func TestCloseCascadesAndUseAfterClose(t *testing.T) {
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	if err := a.cq.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.qp.Close(); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("QP close after its CQ closed: %v", err)
	}
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), 0); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("post on a closed QP: %v", err)
	}
	if _, err := a.cq.Poll(make([]verbs.Completion, 1)); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("poll of a closed CQ: %v", err)
	}
	for _, f := range []func() error{a.qp.Reset, func() error { return a.qp.Connect(b.qp.Endpoint(), 0) }, func() error { return a.qp.SetAccess(0) }} {
		if err := f(); !errors.Is(err, verbs.ErrClosed) {
			t.Fatalf("state change on a closed QP: %v", err)
		}
	}
	if err := b.mr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.qp.PostWrite(1, b.mr, 0, 8, a.mr.Remote(), verbs.Inline); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("post from a closed MR: %v", err)
	}
	if err := a.pd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.mr.Close(); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("MR close after its PD closed: %v", err)
	}
	if _, err := a.pd.AllocMR(64, 0); !errors.Is(err, verbs.ErrClosed) {
		t.Fatalf("AllocMR on a closed PD: %v", err)
	}
}

// TestResetRacesPostAndPoll resets and reconnects a QP while one goroutine
// posts on it and another polls its CQ, as consensus does when a leader
// changes. Afterwards the accounting must balance: nothing reserved, no
// stale completion delivered.
func TestResetRacesPostAndPoll(t *testing.T) {
	a, b := newPair(t, "fakeib0", verbs.Options{}, verbs.QPConfig{MaxSendWR: 32})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var posted, completed atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := uint64(0); !stop.Load(); i++ {
			flags := verbs.SendFlags(0)
			if i%4 == 0 {
				flags = verbs.Signaled
			}
			err := a.qp.PostWrite(i, a.mr, 0, 8, b.mr.Remote(), flags)
			switch {
			case err == nil:
				posted.Add(1)
			case errors.Is(err, verbs.ErrQPState), errors.Is(err, verbs.ErrQueueFull), errors.Is(err, verbs.ErrCQFull):
			default:
				t.Errorf("post: %v", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]verbs.Completion, 16)
		for !stop.Load() {
			n, err := a.cq.Poll(buf)
			if err != nil {
				t.Errorf("poll: %v", err)
				return
			}
			for _, c := range buf[:n] {
				if c.QPNum != a.qp.Num() || c.Op != verbs.OpWrite {
					t.Errorf("completion %+v", c)
				}
			}
			completed.Add(int64(n))
		}
	}()
	for range 200 {
		// Let some requests through on each connection.
		for start, t0 := posted.Load(), time.Now(); posted.Load() < start+8 && time.Since(t0) < 20*time.Millisecond; {
			runtime.Gosched()
		}
		for _, e := range []end{a, b} {
			if err := e.qp.Reset(); err != nil {
				t.Fatal(err)
			}
		}
		connectEnds(t, a, b)
	}
	stop.Store(true)
	wg.Wait()
	if err := a.qp.Reset(); err != nil {
		t.Fatal(err)
	}
	if n, err := a.cq.Poll(make([]verbs.Completion, 16)); n != 0 || err != nil {
		t.Fatalf("poll after reset: %d completions, %v", n, err)
	}
	if r := a.cq.(*cq).reserved.Load(); r != 0 {
		t.Fatalf("%d CQ reservations left after reset", r)
	}
	t.Logf("%d posts, %d completions across 200 resets", posted.Load(), completed.Load())
}

// BenchmarkPostWritePoll measures one signaled 64-byte WRITE and the poll
// of its completion through the cgo path, against the fake.
func BenchmarkPostWritePoll(b *testing.B) {
	a, t := newPair(b, "fakeib0", verbs.Options{}, verbs.QPConfig{})
	buf := make([]verbs.Completion, 4)
	remote := t.mr.Remote()
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		if err := a.qp.PostWrite(1, a.mr, 0, 64, remote, verbs.Signaled); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := a.cq.Poll(buf)
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
		}
	}
}
