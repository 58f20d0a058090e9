//go:build linux

package shm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// fabricName returns a fabric name unique to this process and test.
func fabricName(t testing.TB) string { return verbstest.FabricName(t, "ut") }

func openDev(t testing.TB, name string, opts verbs.Options) verbs.Device {
	t.Helper()
	d, err := verbs.Open(providerName, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// side is one end of a connection: a device with a PD, CQ, QP and MR.
type side struct {
	dev verbs.Device
	pd  verbs.PD
	cq  verbs.CQ
	qp  verbs.QP
	mr  verbs.MR
}

func newSide(t testing.TB, name string, opts verbs.Options, mrSize int) *side {
	t.Helper()
	s := &side{dev: openDev(t, name, opts)}
	var err error
	if s.pd, err = s.dev.AllocPD(); err != nil {
		t.Fatal(err)
	}
	if s.cq, err = s.dev.CreateCQ(64); err != nil {
		t.Fatal(err)
	}
	if s.qp, err = s.pd.CreateQP(verbs.QPConfig{SendCQ: s.cq}); err != nil {
		t.Fatal(err)
	}
	if s.mr, err = s.pd.AllocMR(mrSize, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	return s
}

// pair returns two connected sides on one fabric.
func pair(t testing.TB, opts verbs.Options, mrSize int) (a, b *side) {
	t.Helper()
	name := fabricName(t)
	a, b = newSide(t, name, opts, mrSize), newSide(t, name, opts, mrSize)
	if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// complete polls one completion; posts complete synchronously in shm.
func complete(t testing.TB, cq verbs.CQ) verbs.Completion {
	t.Helper()
	var out [1]verbs.Completion
	n, err := cq.Poll(out[:])
	if err != nil || n != 1 {
		t.Fatalf("poll: n=%d err=%v, want one completion", n, err)
	}
	return out[0]
}

func TestWriteRead(t *testing.T) {
	a, b := pair(t, verbs.Options{}, 4096)
	copy(a.mr.Bytes(), "hello, shared memory")
	if err := a.qp.PostWrite(1, a.mr, 0, 20, b.mr.Remote().Add(100), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, a.cq); c.Status != verbs.StatusSuccess || c.WRID != 1 || c.Bytes != 20 || c.Op != verbs.OpWrite || c.QPNum != a.qp.Num() {
		t.Fatalf("write completion %+v", c)
	}
	if got := string(b.mr.Bytes()[100:120]); got != "hello, shared memory" {
		t.Fatalf("target holds %q", got)
	}
	if err := a.qp.PostRead(2, a.mr, 1000, 20, b.mr.Remote().Add(100), verbs.Signaled); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, a.cq); c.Status != verbs.StatusSuccess || c.Op != verbs.OpRead {
		t.Fatalf("read completion %+v", c)
	}
	if !bytes.Equal(a.mr.Bytes()[1000:1020], a.mr.Bytes()[:20]) {
		t.Fatal("read brought back other bytes")
	}
}

func TestEndpointParse(t *testing.T) {
	good := endpoint{fabric: 1, node: 2, num: 3, gen: 4}.encode()
	if e, err := parseEndpoint(good); err != nil || e != (endpoint{1, 2, 3, 4}) {
		t.Fatalf("round trip: %+v, %v", e, err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"nil":     nil,
		"short":   good[:31],
		"long":    append(append([]byte(nil), good...), 0),
		"magic":   mutate(func(b []byte) []byte { b[0] = 'x'; return b }),
		"version": mutate(func(b []byte) []byte { b[4] = 9; return b }),
		"node 0":  mutate(func(b []byte) []byte { clear(b[16:24]); return b }),
		"qp 0":    mutate(func(b []byte) []byte { clear(b[24:28]); return b }),
	} {
		if _, err := parseEndpoint(b); !errors.Is(err, verbs.ErrBadEndpoint) {
			t.Errorf("%s: err %v, want ErrBadEndpoint", name, err)
		}
	}
}

func TestRemoteChecks(t *testing.T) {
	a, b := pair(t, verbs.Options{}, 4096)
	otherPD, err := b.dev.AllocPD()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherPD.AllocMR(4096, verbs.AccessAll)
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := b.pd.AllocMR(4096, verbs.AccessRemoteRead)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := b.pd.AllocMR(4096, verbs.AccessAll)
	if err != nil {
		t.Fatal(err)
	}
	goneRemote := gone.Remote()
	gone.Close()
	for _, tc := range []struct {
		name   string
		remote verbs.Remote
		length int
	}{
		{"unknown rkey", verbs.Remote{Addr: b.mr.Addr(), RKey: b.mr.RKey() ^ 1}, 8},
		{"other pd", foreign.Remote(), 8},
		{"no remote write", readOnly.Remote(), 8},
		{"deregistered", goneRemote, 8},
		{"below mr", b.mr.Remote().Add(^uint64(0)), 8},
		{"past end", b.mr.Remote().Add(4090), 8},
		{"whole mr shifted by one", b.mr.Remote().Add(1), 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.qp.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := b.qp.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := a.qp.Connect(b.qp.Endpoint(), verbs.AccessAll); err != nil {
				t.Fatal(err)
			}
			if err := b.qp.Connect(a.qp.Endpoint(), verbs.AccessAll); err != nil {
				t.Fatal(err)
			}
			length := tc.length
			if err := a.qp.PostWrite(7, a.mr, 0, length, tc.remote, 0); err != nil {
				t.Fatal(err)
			}
			if c := complete(t, a.cq); c.Status != verbs.StatusRemoteAccessError || c.WRID != 7 {
				t.Fatalf("completion %+v, want remote access error", c)
			}
			if s := a.qp.State(); s != verbs.StateError {
				t.Fatalf("initiator in %v, want ERROR", s)
			}
		})
	}
}

// TestFence drives the fence counter directly, as a stalled or dead
// initiator would leave it.
func TestFence(t *testing.T) {
	a, b := pair(t, verbs.Options{FenceTimeout: 20 * time.Millisecond}, 4096)
	target := b.qp.(*qp).slot
	gen := wordGen(target.word.Load())
	if !target.enter(gen) {
		t.Fatal("enter refused in the current generation")
	}
	if err := b.qp.SetAccess(verbs.AccessRemoteRead); !errors.Is(err, verbs.ErrFenceTimeout) {
		t.Fatalf("SetAccess with a write in flight: %v, want ErrFenceTimeout", err)
	}
	if got := b.qp.Access(); got != verbs.AccessRemoteRead {
		t.Fatalf("access %v after timed-out fence, want it revoked anyway", got)
	}
	// The revoked write path refuses new writes.
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), 0); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, a.cq); c.Status != verbs.StatusRemoteAccessError {
		t.Fatalf("write after revoke: %v", c.Status)
	}
	// A dead peer counts as drained.
	b.qp.(*qp).conn.peer.dead.Store(true)
	if err := b.qp.SetAccess(0); err != nil {
		t.Fatalf("SetAccess with a dead writer: %v", err)
	}
	b.qp.(*qp).conn.peer.dead.Store(false)
	target.exit(gen)
	if err := b.qp.SetAccess(0); err != nil {
		t.Fatalf("SetAccess once drained: %v", err)
	}
	// Reset starts a new generation: a late exit of the old one must not
	// disturb its count.
	target.enter(gen)
	if err := b.qp.Reset(); !errors.Is(err, verbs.ErrFenceTimeout) {
		t.Fatalf("Reset with a write in flight: %v, want ErrFenceTimeout", err)
	}
	target.exit(gen)
	if f := target.fence.Load(); uint32(f) != 0 || wordGen(f) == gen {
		t.Fatalf("fence word %#x after reset and a stale exit", f)
	}
}

func TestClosedPeerRetryExceeded(t *testing.T) {
	a, b := pair(t, verbs.Options{}, 4096)
	if err := b.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.qp.PostWrite(1, a.mr, 0, 8, b.mr.Remote(), 0); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, a.cq); c.Status != verbs.StatusRetryExceeded {
		t.Fatalf("write to a closed device: %v", c.Status)
	}
	if err := a.qp.PostWrite(2, a.mr, 0, 8, b.mr.Remote(), 0); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, a.cq); c.Status != verbs.StatusFlushError {
		t.Fatalf("write after an error: %v", c.Status)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		want      error
	}{
		{"a/b", "", verbs.ErrInvalidArgument},
		{strings.Repeat("x", maxNameLen+1), "", verbs.ErrInvalidArgument},
		{"x", file, nil}, // a path under a regular file
		{"x", filepath.Join(file + ".missing"), nil},
	} {
		_, err := verbs.Open(providerName, tc.name, verbs.Options{Dir: tc.dir})
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Open(%q, dir %q): %v, want %v", tc.name, tc.dir, err, tc.want)
		}
		if tc.dir != "" && (err == nil || !strings.Contains(err.Error(), tc.dir)) {
			t.Errorf("error %q does not name %s", err, tc.dir)
		}
	}
}

// TestReclaim plants the files of a dead node and of a live one, and checks
// that Open removes the first and keeps the second, and that the last Close
// removes the directory.
func TestReclaim(t *testing.T) {
	base := t.TempDir()
	opts := verbs.Options{Dir: base}
	live := openDev(t, "f", opts).(*device)
	dir := filepath.Join(base, "gomu-f")
	const deadNode = 0xdead
	for _, suffix := range []string{".lock", ".qp", mrSuffix(0x1234)} {
		if err := os.WriteFile(nodeFile(dir, deadNode, suffix), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := openDev(t, "f", opts)
	for _, suffix := range []string{".lock", ".qp", mrSuffix(0x1234)} {
		if _, err := os.Stat(nodeFile(dir, deadNode, suffix)); !os.IsNotExist(err) {
			t.Errorf("dead node's %s survived: %v", suffix, err)
		}
	}
	if _, err := os.Stat(live.qpPath); err != nil {
		t.Errorf("live node's QP table: %v", err)
	}
	d.Close()
	live.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Errorf("fabric directory left behind: %v, %v", err, entries)
	}
}

func TestZeroAlloc(t *testing.T) {
	a, b := pair(t, verbs.Options{}, 4096)
	out := make([]verbs.Completion, 4)
	op := func() {
		if err := a.qp.PostWrite(1, a.mr, 0, 64, b.mr.Remote(), verbs.Signaled); err != nil {
			t.Fatal(err)
		}
		if n, _ := a.cq.Poll(out); n != 1 || out[0].Status != verbs.StatusSuccess {
			t.Fatalf("poll: %d %+v", n, out[0])
		}
	}
	op() // maps the remote MR
	if allocs := testing.AllocsPerRun(1000, op); allocs != 0 {
		t.Fatalf("PostWrite+Poll: %v allocations per op", allocs)
	}
}

func BenchmarkPostWritePoll(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			x, y := pair(b, verbs.Options{}, 1<<20)
			out := make([]verbs.Completion, 16)
			remote := y.mr.Remote()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := x.qp.PostWrite(1, x.mr, 0, size, remote, verbs.Signaled); err != nil {
					b.Fatal(err)
				}
				if n, _ := x.cq.Poll(out); n != 1 {
					b.Fatal("no completion")
				}
			}
		})
	}
}

// envChild makes the test binary a child for TestDeadNode: it opens a device
// in the fabric named by the variable (base directory in envChildDir),
// prints a QP endpoint and an MR, and waits to be killed.
const (
	envChild    = "GOMU_SHM_TEST_CHILD"
	envChildDir = "GOMU_SHM_TEST_CHILD_DIR"
)

func runChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "shm test child:", err)
		os.Exit(1)
	}
	d, err := verbs.Open(providerName, os.Getenv(envChild), verbs.Options{Dir: os.Getenv(envChildDir)})
	if err != nil {
		fail(err)
	}
	pd, err := d.AllocPD()
	if err != nil {
		fail(err)
	}
	cq, err := d.CreateCQ(4)
	if err != nil {
		fail(err)
	}
	q, err := pd.CreateQP(verbs.QPConfig{SendCQ: cq})
	if err != nil {
		fail(err)
	}
	m, err := pd.AllocMR(4096, verbs.AccessAll)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%x %d %d\n", q.Endpoint(), m.Addr(), m.RKey())
	os.Stdin.Read(make([]byte, 1)) // until the parent kills us or goes away
	d.Close()
}

// TestDeadNode kills a child process holding a node of the fabric and
// checks that connections to it fail fast and that the next Open removes
// its files.
func TestDeadNode(t *testing.T) {
	base := t.TempDir()
	opts := verbs.Options{Dir: base}
	name := "dead"
	dir := filepath.Join(base, "gomu-"+name)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+name, envChildDir+"="+base)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		epHex  string
		remote verbs.Remote
	)
	_, scanErr := fmt.Fscanf(out, "%s %d %d\n", &epHex, &remote.Addr, &remote.RKey)
	cmd.Process.Kill()
	cmd.Wait()
	if scanErr != nil {
		t.Fatalf("child's endpoint: %v", scanErr)
	}
	ep, err := hex.DecodeString(epHex)
	if err != nil {
		t.Fatal(err)
	}
	childFiles, _ := filepath.Glob(filepath.Join(dir, "n-*"))
	if len(childFiles) != 3 { // lock, QP table, MR
		t.Fatalf("dead child left %v, want its lock, QP table and MR", childFiles)
	}

	// Its files are still there, but its lock is free: dead at connect.
	s := newSide(t, name, opts, 4096)
	if err := s.qp.Connect(ep, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := s.qp.PostWrite(1, s.mr, 0, 8, remote, 0); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, s.cq); c.Status != verbs.StatusRetryExceeded {
		t.Fatalf("write to a dead node: %v", c.Status)
	}
	// Opening newSide's device reclaimed the child's files.
	for _, f := range childFiles {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s survived the next Open: %v", f, err)
		}
	}
	// With the files gone, Connect still works and requests fail.
	if err := s.qp.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := s.qp.Connect(ep, verbs.AccessAll); err != nil {
		t.Fatal(err)
	}
	if err := s.qp.PostRead(2, s.mr, 0, 8, remote, 0); err != nil {
		t.Fatal(err)
	}
	if c := complete(t, s.cq); c.Status != verbs.StatusRetryExceeded {
		t.Fatalf("read from a reclaimed node: %v", c.Status)
	}
}

// TestCQRing runs producers against one poller on a small ring, so that
// positions wrap many times and reservations often fail, and checks that
// every completion arrives once and in each producer's order.
func TestCQRing(t *testing.T) {
	const producers, each, depth = 3, 20000, 5
	c := newCQ(nil, depth)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				if !c.reserve() {
					runtime.Gosched()
					continue
				}
				c.push(verbs.Completion{QPNum: uint32(p), WRID: uint64(i)})
				i++
			}
		}()
	}
	next := make([]uint64, producers)
	out := make([]verbs.Completion, 3)
	deadline := time.Now().Add(time.Minute) // hang guard only
	for got := 0; got < producers*each; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d completions arrived", got)
		}
		n, err := c.Poll(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, comp := range out[:n] {
			if comp.WRID != next[comp.QPNum] {
				t.Fatalf("producer %d: wr %d, want %d", comp.QPNum, comp.WRID, next[comp.QPNum])
			}
			next[comp.QPNum]++
		}
		got += n
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	if u := c.used.Load(); u != 0 {
		t.Fatalf("%d entries still reserved", u)
	}
}

// TestWatcherProbe checks the fallback for kernels without pidfd: a peer
// whose lock nobody holds is found dead by probing.
func TestWatcherProbe(t *testing.T) {
	w, err := newWatcher(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	p := &peer{lock: filepath.Join(t.TempDir(), "n-0000000000000001.lock")}
	if err := w.add(p, -1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // hang guard only
	for !p.dead.Load() {
		if time.Now().After(deadline) {
			t.Fatal("probe never found the peer dead")
		}
		time.Sleep(time.Millisecond)
	}
}
