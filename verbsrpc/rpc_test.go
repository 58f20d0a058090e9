package verbsrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

var providers = []string{"shm", "tcp"}

// inProcessOnly are the providers whose peers cannot live in another
// process (the ibvfake double).
var inProcessOnly = map[string]bool{}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestEcho(t *testing.T) {
	const maxMsg = 64 << 10
	sizes := []int{0, 1, 63, 64, 200, 257, 1024, 4000, maxMsg}
	for _, p := range append(providers, faultyShm) {
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			w.listen(Config{MaxMsg: maxMsg}, echo)
			c := w.dial(Config{MaxMsg: maxMsg})
			resp := make([]byte, maxMsg)
			// Several laps of the ring, every size on every slot position.
			for round := range 3 * DefaultSlots / len(sizes) * len(sizes) {
				n := sizes[round%len(sizes)]
				req := payload(n, byte(round))
				ctx, cancel := within(waitLimit)
				got, err := c.Call(ctx, req, resp)
				cancel()
				if err != nil || !bytes.Equal(resp[:got], req) {
					t.Fatalf("call %d of %d bytes: %d bytes back, equal %v, %v", round, n, got, bytes.Equal(resp[:got], req), err)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	w := newWorld(t, "shm")
	w.listen(Config{MaxMsg: 100}, func(batch []*Request) {
		for _, r := range batch {
			if err := r.Reply(make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("reply of 101 bytes: %v", err)
			}
			r.Reply(r.Payload())
		}
	})
	c := w.dial(Config{MaxMsg: 100})
	ctx := ctxFor(t)
	if _, err := c.Call(ctx, make([]byte, 101), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("request of 101 bytes: %v", err)
	}
	if n, err := c.Call(ctx, make([]byte, 50), make([]byte, 10)); !errors.Is(err, ErrTooLarge) || n != 50 {
		t.Errorf("response of 50 bytes into 10: %d %v", n, err)
	}
	if n, err := c.Call(ctx, make([]byte, 100), make([]byte, 100)); err != nil || n != 100 {
		t.Errorf("call after: %d %v", n, err)
	}
	// A client asking for more than the server allows is refused.
	for _, cfg := range []Config{{MaxMsg: 101}, {Slots: DefaultSlots + 1, MaxMsg: 100}} {
		if _, err := w.tryDial(cfg); !errors.Is(err, ErrRefused) {
			t.Errorf("dial %+v: %v", cfg, err)
		}
	}
}

// TestServerRefuses sends hellos the service record would not have let
// through, straight to the inbox: the server says why in its answer.
func TestServerRefuses(t *testing.T) {
	w := newWorld(t, "shm")
	srv := w.listen(Config{Slots: 4, MaxMsg: 64}, echo)
	obs := w.registry(0)
	peer := registry.Peer{ID: 1, Incarnation: srv.cfg.Registry.Self().Incarnation}
	for _, tc := range []struct {
		q    []byte
		want string
	}{
		{hello{slots: 8, maxMsg: 64, endpoint: []byte("x")}.encode(), "8 slots"},
		{hello{slots: 4, maxMsg: 65, endpoint: []byte("x")}.encode(), "messages of 65 bytes"},
		{[]byte("junk"), "does not start with"},
		{hello{slots: 4, maxMsg: 64, endpoint: []byte("not an endpoint")}.encode(), "cannot set up"},
	} {
		ans, err := obs.Ask(ctxFor(t), peer, "rpc/echo", tc.q)
		if err != nil {
			t.Fatal(err)
		}
		wl, err := decodeWelcome(ans)
		if err != nil || !strings.Contains(wl.refused, tc.want) {
			t.Errorf("hello %q: refused %q (want %q), %v", tc.q, wl.refused, tc.want, err)
		}
	}
	if srv.Conns() != 0 {
		t.Errorf("%d conns after refusals", srv.Conns())
	}
}

func TestConcurrentConns(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			srv := w.listen(Config{}, echo)
			const clients, calls = 8, 200
			conns := make([]*Conn, clients)
			for i := range conns {
				conns[i] = w.dial(Config{})
			}
			if srv.Conns() != clients {
				t.Errorf("server counts %d conns", srv.Conns())
			}
			var wg sync.WaitGroup
			for i, c := range conns {
				wg.Go(func() {
					resp := make([]byte, DefaultMaxMsg)
					for j := range calls {
						req := []byte(fmt.Sprintf("client %d call %d", i, j))
						ctx, cancel := within(waitLimit)
						n, err := c.Call(ctx, req, resp)
						cancel()
						if err != nil || !bytes.Equal(resp[:n], req) {
							t.Errorf("client %d call %d: %q %v", i, j, resp[:n], err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestOutOfOrder replies late, in random order, from other goroutines,
// while clients give up on many calls: every answer a Call returns must be
// its own request's, whatever K.
func TestOutOfOrder(t *testing.T) {
	calls := 2000
	if testing.Short() {
		calls = 300
	}
	for _, k := range []int{2, 4} {
		t.Run(fmt.Sprint("K=", k), func(t *testing.T) {
			w := newWorld(t, "shm")
			work := make(chan *Request, 1024)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for r := range work {
						if rand.IntN(4) == 0 {
							time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
						}
						r.Reply(r.Payload())
					}
				})
			}
			srv := w.listen(Config{Slots: k}, func(batch []*Request) {
				rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				for _, r := range batch {
					work <- r
				}
			})
			var ok, timedOut, pressed atomic.Int64
			var cw sync.WaitGroup
			for i := range 2 {
				c := w.dial(Config{Slots: k})
				cw.Go(func() {
					resp := make([]byte, DefaultMaxMsg)
					for j := range calls {
						req := []byte(fmt.Sprintf("%d/%d", i, j))
						ctx, cancel := within(time.Duration(200+rand.IntN(1500)) * time.Microsecond)
						n, err := c.Call(ctx, req, resp)
						cancel()
						switch {
						case err == nil:
							if !bytes.Equal(resp[:n], req) {
								t.Errorf("call %s answered %q", req, resp[:n])
								return
							}
							ok.Add(1)
						case errors.Is(err, ErrBackPressure):
							pressed.Add(1)
						case errors.Is(err, ErrTimeout):
							timedOut.Add(1)
						default:
							t.Errorf("call %s: %v", req, err)
							return
						}
						if c.sent-c.recvd > uint64(k) {
							t.Errorf("%d outstanding with K=%d", c.sent-c.recvd, k)
							return
						}
					}
				})
			}
			cw.Wait()
			srv.Close()
			close(work)
			wg.Wait()
			t.Logf("K=%d: %d answered, %d timed out, %d back-pressured", k, ok.Load(), timedOut.Load(), pressed.Load())
			if ok.Load() == 0 || timedOut.Load()+pressed.Load() == 0 {
				t.Errorf("the run did not mix answers (%d) and late ones (%d)", ok.Load(), timedOut.Load()+pressed.Load())
			}
		})
	}
}

func TestDeadlineLateAnswer(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			h := newHolder()
			w.listen(Config{}, h.handle)
			c := w.dial(Config{})
			resp := make([]byte, 64)
			ctx, cancel := within(50 * time.Millisecond)
			_, err := c.Call(ctx, []byte("slow"), resp)
			cancel()
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBackPressure) {
				t.Fatalf("held call: %v", err)
			}
			if !strings.Contains(err.Error(), "no answer by the deadline") {
				t.Errorf("error %q does not say what happened", err)
			}
			<-h.seen
			h.release(t, "late ")
			// The late answer lands first; the next call must skip it.
			go func() {
				<-h.seen
				h.release(t, "")
			}()
			n, err := c.Call(ctxFor(t), []byte("fast"), resp)
			if err != nil || string(resp[:n]) != "fast" {
				t.Fatalf("call after a late answer: %q %v", resp[:n], err)
			}
		})
	}
}

func TestBackPressure(t *testing.T) {
	const k = 2
	w := newWorld(t, "shm")
	h := newHolder()
	w.listen(Config{Slots: k}, h.handle)
	c := w.dial(Config{Slots: k})
	for i := range k {
		ctx, cancel := within(20 * time.Millisecond)
		if _, err := c.Call(ctx, []byte{byte(i)}, nil); !errors.Is(err, ErrTimeout) {
			t.Fatalf("held call %d: %v", i, err)
		}
		cancel()
	}
	start := time.Now()
	ctx, cancel := within(100 * time.Millisecond)
	_, err := c.Call(ctx, []byte("third"), nil)
	cancel()
	if !errors.Is(err, ErrBackPressure) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with %d held: %v", k, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("all %d ring slots", k)) {
		t.Errorf("error %q does not say K requests are outstanding", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("back-pressured call returned before its deadline")
	}
	select {
	case s := <-h.seen:
		if s != "\x00" {
			t.Fatalf("server saw %q first", s)
		}
	case <-time.After(waitLimit):
		t.Fatal("nothing reached the server")
	}
	<-h.seen
	select {
	case s := <-h.seen:
		t.Fatalf("the back-pressured request %q reached the server", s)
	default:
	}
	h.release(t, "")
	go func() {
		<-h.seen
		h.release(t, "")
	}()
	resp := make([]byte, 8)
	if n, err := c.Call(ctxFor(t), []byte("again"), resp); err != nil || string(resp[:n]) != "again" {
		t.Fatalf("call once the held ones were answered: %q %v", resp[:n], err)
	}
}

// TestServerProcessDies kills a server process mid-call: the call ends
// with ErrPeerDead or a timeout, well before a generous deadline.
func TestServerProcessDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, p := range providers {
		if inProcessOnly[p] {
			continue
		}
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			child := w.startChild(t)
			c := w.dial(Config{})
			resp := make([]byte, 64)
			if n, err := c.Call(ctxFor(t), []byte("hi"), resp); err != nil || string(resp[:n]) != "hi" {
				t.Fatalf("call to the live server: %q %v", resp[:n], err)
			}
			// A call the server holds is waiting when the process dies.
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(ctxFor(t), []byte("hold"), resp)
				done <- err
			}()
			time.Sleep(50 * time.Millisecond)
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
			start := time.Now()
			err := <-done
			if !errors.Is(err, ErrPeerDead) {
				t.Fatalf("call held by a killed server: %v", err)
			}
			t.Logf("%s: the waiting call failed %v after the kill: %v", p, time.Since(start).Round(time.Millisecond), err)
			if _, err2 := c.Call(ctxFor(t), nil, nil); !errors.Is(err2, ErrPeerDead) {
				t.Errorf("call after the failure: %v", err2)
			}
		})
	}
}

// TestServerCloses: a closed server fails the calls of its clients fast.
func TestServerCloses(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			h := newHolder()
			srv := w.listen(Config{}, h.handle)
			c := w.dial(Config{})
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(ctxFor(t), []byte("held"), nil)
				done <- err
			}()
			<-h.seen
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, ErrPeerDead) {
				t.Errorf("call held by a closing server: %v", err)
			}
			h.mu.Lock()
			r := h.reqs[0]
			h.mu.Unlock()
			if err := r.Reply(nil); !errors.Is(err, ErrClosed) {
				t.Errorf("reply on a closed server: %v", err)
			}
		})
	}
}

func TestClientGone(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			w := newWorld(t, p)
			srv := w.listen(Config{ClientTimeout: 400 * time.Millisecond}, echo)
			// A client that closes is dropped at once.
			c := w.dial(Config{})
			if _, err := c.Call(ctxFor(t), []byte("x"), make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "closed client dropped", func() bool { return srv.Conns() == 0 })
			if d := time.Since(start); d > 300*time.Millisecond {
				t.Logf("closed client dropped after %v, later than expected", d)
			}
			if _, err := c.Call(ctxFor(t), nil, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("call on a closed conn: %v", err)
			}
			if inProcessOnly[p] {
				// Closing a device under a live Conn (how this test makes a
				// client vanish) unmaps the memory its heartbeat writes on
				// the cgo provider: the process would die, not go silent.
				return
			}
			// A client whose device vanishes goes silent and is dropped
			// after ClientTimeout; one that stays idle is kept.
			idle := w.dial(Config{})
			dev := w.device()
			gone := w.dial(Config{Device: dev})
			_ = gone
			eventually(t, "two clients", func() bool { return srv.Conns() == 2 })
			dev.Close()
			eventually(t, "silent client dropped", func() bool { return srv.Conns() == 1 })
			time.Sleep(600 * time.Millisecond) // longer than ClientTimeout
			if n, err := idle.Call(ctxFor(t), []byte("still here"), make([]byte, 64)); err != nil || n != 10 {
				t.Errorf("idle client after ClientTimeout: %d %v", n, err)
			}
		})
	}
}

// TestTornWrite tears a request's WRITE: only its first bytes land. The
// server never delivers it, whatever the completion says.
func TestTornWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status verbs.Status
		want   error
	}{
		{"reported success", verbs.StatusSuccess, ErrTimeout},
		{"reported failure", verbs.StatusRetryExceeded, ErrPeerDead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, faultyShm)
			var seen atomic.Int64
			w.listen(Config{}, func(batch []*Request) {
				for _, r := range batch {
					seen.Add(1)
					t.Errorf("delivered %q", r.Payload())
					r.Reply(nil)
				}
			})
			dev := w.device().(*faulty.Device)
			c := w.dial(Config{Device: dev})
			var first atomic.Bool
			rule := dev.Inject(faulty.PredicateFunc(func(op faulty.Op) bool {
				return op.Kind == faulty.Write && op.Length > 8 && first.CompareAndSwap(false, true)
			}), faulty.Tear(40, tc.status))
			ctx, cancel := within(200 * time.Millisecond)
			_, err := c.Call(ctx, bytes.Repeat([]byte("torn"), 16), nil)
			cancel()
			if rule.Fired() != 1 {
				t.Fatalf("the tear fired %d times", rule.Fired())
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("torn call: %v, want %v", err, tc.want)
			}
			time.Sleep(50 * time.Millisecond)
			if seen.Load() != 0 {
				t.Errorf("%d torn requests delivered", seen.Load())
			}
		})
	}
}

// TestCheckTorn drives the slot validation through the states a poller
// can see while a WRITE lands in any byte order.
func TestCheckTorn(t *testing.T) {
	const maxMsg = 64
	size := slotSize(maxMsg)
	ring := make([]byte, size)
	// Lap 1 leaves a complete message 0 behind.
	stage := make([]byte, size)
	copy(stage[size-trailerLen-10:], "lap one!!!")
	off := seal(stage, 10, 0, 1)
	copy(ring[off:], stage[off:])
	if p, id, ok := check(ring, maxMsg, 1); !ok || id != 0 || string(p) != "lap one!!!" {
		t.Fatalf("complete message: %q %d %v", p, id, ok)
	}
	// Lap 2 writes message 2 (seq 3, id 7) of 20 bytes into the same slot.
	stage = make([]byte, size)
	copy(stage[size-trailerLen-20:], "second lap, 20 bytes")
	off = seal(stage, 20, 7, 3)
	msg := stage[off:]
	// Only the seq word landed: the old message must not pass as new.
	torn := bytes.Clone(ring)
	copy(torn[size-8:], stage[size-8:])
	if !arrived(torn, 3) {
		t.Fatal("seq word not seen")
	}
	if _, _, ok := check(torn, maxMsg, 3); ok {
		t.Fatal("previous lap's message accepted under the new seq")
	}
	// Every byte of the new message but one landed: never accepted.
	for i := range len(msg) - 8 {
		torn := bytes.Clone(ring)
		copy(torn[off:], msg)
		torn[off+i] = ring[off+i] ^ 0x5a
		if _, _, ok := check(torn, maxMsg, 3); ok {
			t.Fatalf("message with byte %d not landed accepted", i)
		}
	}
	copy(ring[off:], msg)
	if p, id, ok := check(ring, maxMsg, 3); !ok || id != 7 || string(p) != "second lap, 20 bytes" {
		t.Fatalf("landed message: %q %d %v", p, id, ok)
	}
}

func TestZeroAllocs(t *testing.T) {
	w := newWorld(t, "shm")
	srv := w.listen(Config{}, echo)
	c := w.dial(Config{})
	// The acceptor's registry polling allocates; it has done its job.
	srv.cancel()
	time.Sleep(20 * time.Millisecond)
	req, resp := payload(64, 1), make([]byte, 64)
	ctx, cancel := within(waitLimit)
	defer cancel()
	allocs := testing.AllocsPerRun(2000, func() {
		if n, err := c.Call(ctx, req, resp); err != nil || n != 64 {
			t.Fatalf("call: %d %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Call+Reply round trip", allocs)
	}
}

func TestConcurrentCallRefused(t *testing.T) {
	w := newWorld(t, "shm")
	h := newHolder()
	w.listen(Config{}, h.handle)
	c := w.dial(Config{})
	done := make(chan error, 1)
	go func() { _, err := c.Call(ctxFor(t), []byte("a"), make([]byte, 1)); done <- err }()
	<-h.seen
	if _, err := c.Call(ctxFor(t), []byte("b"), nil); err == nil || !strings.Contains(err.Error(), "concurrent Call") {
		t.Errorf("second concurrent call: %v", err)
	}
	h.release(t, "")
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func BenchmarkCall(b *testing.B) {
	for _, p := range providers {
		for _, mode := range []poll.Mode{poll.Spin, poll.SpinYield} {
			b.Run(fmt.Sprintf("%s/%s/64B", p, mode), func(b *testing.B) {
				benchCall(b, p, mode)
			})
		}
	}
}

func benchCall(b *testing.B, provider string, mode poll.Mode) {
	w := newWorld(b, provider)
	// Two spinners on a small machine can starve the tcp soft NIC for
	// longer than the tests' short retry timeout.
	// The server is another process, as in cmd/verbs-lat --local.
	w.mode, w.retry = mode, 5*time.Second
	w.startChild(b)
	c := w.dial(Config{})
	if mode == poll.Spin {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	req, resp := payload(64, 3), make([]byte, 64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for range 1000 {
		c.Call(ctx, req, resp)
	}
	rec := latency.New(time.Second, 0)
	for b.Loop() {
		start := time.Now()
		if _, err := c.Call(ctx, req, resp); err != nil {
			b.Fatal(err)
		}
		rec.Record(time.Since(start))
	}
	b.ReportMetric(float64(rec.Percentile(50)), "p50-ns")
	b.ReportMetric(float64(rec.Percentile(99)), "p99-ns")
}

// TestSetPoll changes the server's waiting under a stream of calls: every
// call is answered whatever the mode, spin included (taken as yield by a
// server that did not start spinning).
func TestSetPoll(t *testing.T) {
	w := newWorld(t, "shm")
	srv := w.listen(Config{Poll: poll.SpinYield}, echo)
	c := w.dial(Config{Poll: poll.SpinYield})
	resp := make([]byte, 64)
	for i, m := range []poll.Mode{poll.Sleep, poll.SpinYield, poll.Spin, poll.Sleep} {
		srv.SetPoll(m)
		for k := range 50 {
			req := payload(32, byte(i*50+k))
			ctx, cancel := within(waitLimit)
			n, err := c.Call(ctx, req, resp)
			cancel()
			if err != nil || !bytes.Equal(resp[:n], req) {
				t.Fatalf("mode %v, call %d: %v", m, k, err)
			}
		}
	}
}
