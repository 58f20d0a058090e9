package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomemcache "github.com/bradfitz/gomemcache/memcache"

	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

// Environment of a child process re-executed by TestBarrierProcesses.
const (
	envChild   = "GOMU_REGISTRY_TEST_CHILD"
	envAddr    = "GOMU_REGISTRY_TEST_ADDR"
	envCluster = "GOMU_REGISTRY_TEST_CLUSTER"
	envIDs     = "GOMU_REGISTRY_TEST_IDS"
)

func TestMain(m *testing.M) {
	if id := os.Getenv(envChild); id != "" {
		os.Exit(child(id))
	}
	code := m.Run()
	memcachedtest.Stop()
	os.Exit(code)
}

// child is one replica of TestBarrierProcesses: it publishes, meets the
// others at a barrier, looks up each one's value, and prints what it saw.
func child(idStr string) int {
	id, _ := strconv.Atoi(idStr)
	var ids []int
	for _, s := range strings.Split(os.Getenv(envIDs), ",") {
		n, _ := strconv.Atoi(s)
		ids = append(ids, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Dial(ctx, Config{Addr: os.Getenv(envAddr), Cluster: os.Getenv(envCluster), ID: id})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer r.Close()
	if err := r.Publish(ctx, "ep", []byte(r.Self().String())); err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	peers, err := r.Barrier(ctx, "start", ids)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	out := []string{"SELF " + r.Self().String()}
	for _, p := range peers {
		rec, err := r.Lookup(ctx, p.ID, "ep")
		if err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		if string(rec.Value) != p.String() || !rec.Confirmed {
			fmt.Printf("ERR lookup of %v gave %q confirmed=%v\n", p, rec.Value, rec.Confirmed)
			return 1
		}
		out = append(out, "PEER "+p.String())
	}
	fmt.Println(strings.Join(out, "\n"))
	return 0
}

// backends returns the memcached servers every registry test runs against:
// the embedded server and a real memcached (skipped if there is none,
// except under CI=true).
func backends(t *testing.T) []struct {
	name string
	addr func(t *testing.T) string
} {
	return []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"embedded", func(t *testing.T) string {
			s, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Addr()
		}},
		{"memcached", func(t *testing.T) string { return memcachedtest.Addr(t) }},
	}
}

// env is what a registry test gets: a server and a fresh cluster name.
type env struct {
	t       *testing.T
	addr    string
	cluster string
}

func (e env) cfg(id int) Config {
	return Config{Addr: e.addr, Cluster: e.cluster, ID: id, PollInterval: time.Millisecond}
}

func (e env) dial(id int) *Registry {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Dial(ctx, e.cfg(id))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// registryTests is the table every backend runs.
var registryTests = []struct {
	name  string
	short bool // runs under -short
	run   func(t *testing.T, e env)
}{
	{"publish lookup", true, testPublishLookup},
	{"lookup waits for publish", true, testLookupWaits},
	{"lookup deadline says what is missing", true, testLookupDeadline},
	{"barrier of 3 goroutines", true, testBarrierGoroutines},
	{"barrier deadline lists missing ids", true, testBarrierDeadline},
	{"stale keys of earlier runs", true, testStaleKeys},
	{"unconfirmed lookup", true, testUnconfirmedLookup},
	{"restart and rejoin", true, testRestart},
	{"progress", true, testProgress},
	{"barrier processes", false, testBarrierProcesses},
	{"concurrent publishers", true, testConcurrentPublishers},
	{"watch", true, testWatch},
	{"invalid keys", true, testInvalidKeys},
	{"malformed values", true, testMalformedValues},
	{"duplicate id", true, testDuplicateID},
	{"observer", true, testObserver},
}

func TestRegistry(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			addr := b.addr(t)
			for _, tc := range registryTests {
				t.Run(tc.name, func(t *testing.T) {
					if testing.Short() && !tc.short {
						t.Skip("multi-process test; -short")
					}
					tc.run(t, env{t: t, addr: addr, cluster: fmt.Sprintf("t%x", rand.Uint64())})
				})
			}
		})
	}
}

func testPublishLookup(t *testing.T, e env) {
	r1, r2 := e.dial(1), e.dial(2)
	ctx := ctxFor(t, 5*time.Second)
	values := map[string][]byte{
		"qp/1->2": []byte("endpoint of 1 for 2"),
		"empty":   {},
		"binary":  {0, '\r', '\n', 0xff, ' '},
		"big":     bytes.Repeat([]byte{7}, MaxValueLen),
	}
	for name, v := range values {
		if err := r1.Publish(ctx, name, v); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range values {
		rec, err := r2.Lookup(ctx, 1, name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Value, v) || rec.Peer != r1.Self() || rec.Name != name || rec.Confirmed {
			t.Errorf("%s: got %v %q (%d bytes) confirmed=%v", name, rec.Peer, rec.Name, len(rec.Value), rec.Confirmed)
		}
		if time.Since(rec.Time) > time.Minute || !strings.HasPrefix(rec.Key, "gomu/"+e.cluster+"/pub/1/") {
			t.Errorf("%s: time %v key %s", name, rec.Time, rec.Key)
		}
	}
	// Republishing replaces.
	if err := r1.Publish(ctx, "qp/1->2", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if rec, err := r2.LookupAt(ctx, r1.Self(), "qp/1->2"); err != nil || string(rec.Value) != "v2" {
		t.Fatalf("after republish: %q %v", rec.Value, err)
	}
	if err := r1.Publish(ctx, "too big", make([]byte, MaxValueLen+1)); err == nil {
		t.Error("value over MaxValueLen accepted")
	}
}

func testLookupWaits(t *testing.T, e env) {
	r1, r2 := e.dial(1), e.dial(2)
	ctx := ctxFor(t, 5*time.Second)
	go func() {
		time.Sleep(30 * time.Millisecond)
		r1.Publish(ctx, "late", []byte("here"))
	}()
	rec, err := r2.Lookup(ctx, 1, "late")
	if err != nil || string(rec.Value) != "here" {
		t.Fatalf("%q %v", rec.Value, err)
	}
	// A replica that announces later is waited for too.
	dialed := make(chan *Registry, 1)
	go func() {
		time.Sleep(30 * time.Millisecond)
		r3, err := Dial(ctx, e.cfg(3))
		if err == nil {
			r3.Publish(ctx, "x", []byte("3"))
		}
		dialed <- r3
	}()
	if rec, err := r2.Lookup(ctx, 3, "x"); err != nil || string(rec.Value) != "3" {
		t.Fatalf("%q %v", rec.Value, err)
	}
	if r3 := <-dialed; r3 != nil {
		r3.Close()
	}
}

func testLookupDeadline(t *testing.T, e env) {
	r1, r2 := e.dial(1), e.dial(2)
	cases := []struct {
		id   int
		name string
		want []string
	}{
		{7, "ep", []string{"replica 7 has not announced itself", "gomu/" + e.cluster + "/announce/7"}},
		{1, "ep", []string{r1.Self().String(), "has not published it", "/pub/1/"}},
	}
	for _, c := range cases {
		start := time.Now()
		_, err := r2.Lookup(ctxFor(t, 100*time.Millisecond), c.id, c.name)
		var we *WaitError
		if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("lookup %d: %v, want a WaitError wrapping DeadlineExceeded", c.id, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v past a 100ms deadline", d)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if !strings.Contains(err.Error(), e.addr) || !strings.Contains(err.Error(), `"ep"`) {
			t.Errorf("error %q does not name the address and the name", err)
		}
	}
	// A context without a deadline gets WaitTimeout.
	cfg := e.cfg(4)
	cfg.WaitTimeout = 50 * time.Millisecond
	r4, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r4.Close()
	if _, err := r4.Lookup(context.Background(), 9, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no-deadline lookup: %v", err)
	}
}

// runBarrier has each registry publish, then meet at the barrier, in its
// own goroutine, and returns what each barrier returned.
func runBarrier(t *testing.T, ctx context.Context, rs []*Registry, name string, ids []int) ([][]Peer, []error) {
	peers := make([][]Peer, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			if err := r.Publish(ctx, "ep", []byte(r.Self().String())); err != nil {
				errs[i] = err
				return
			}
			peers[i], errs[i] = r.Barrier(ctx, name, ids)
		})
	}
	wg.Wait()
	return peers, errs
}

func selves(rs ...*Registry) []Peer {
	var ps []Peer
	for _, r := range rs {
		ps = append(ps, r.Self())
	}
	return ps
}

func testBarrierGoroutines(t *testing.T, e env) {
	rs := []*Registry{e.dial(1), e.dial(2), e.dial(3)}
	ctx := ctxFor(t, 10*time.Second)
	peers, errs := runBarrier(t, ctx, rs, "start", []int{3, 1, 2, 2})
	for i := range rs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !slices.Equal(peers[i], selves(rs...)) {
			t.Errorf("replica %d met %v, want %v", i+1, peers[i], selves(rs...))
		}
	}
	// Lookups after the barrier read confirmed incarnations.
	for _, r := range rs {
		for _, p := range selves(rs...) {
			rec, err := r.Lookup(ctx, p.ID, "ep")
			if err != nil || string(rec.Value) != p.String() || !rec.Confirmed {
				t.Errorf("%v looking up %v: %q confirmed=%v %v", r.Self(), p, rec.Value, rec.Confirmed, err)
			}
		}
	}
	// A second barrier of the same ids, under a new name, passes too.
	if _, errs := runBarrier(t, ctx, rs, "connected", []int{1, 2, 3}); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
}

func testBarrierDeadline(t *testing.T, e env) {
	rs := []*Registry{e.dial(1), e.dial(2)}
	start := time.Now()
	_, errs := runBarrier(t, ctxFor(t, 200*time.Millisecond), rs, "start", []int{1, 2, 3, 4})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v past a 200ms deadline", d)
	}
	for i, err := range errs {
		var we *WaitError
		if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("replica %d: %v, want a WaitError", i+1, err)
		}
		if !slices.Equal(we.MissingIDs, []int{3, 4}) {
			t.Errorf("replica %d: missing %v, want [3 4]", i+1, we.MissingIDs)
		}
		for _, w := range []string{"3 has not arrived", "4 has not arrived", `"start"`, e.addr} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
}

// oldRun leaves in memcached what an earlier run of replicas ids left: each
// publishes and meets the others at "start" among barrierIDs (all of them
// pass when barrierIDs == ids; otherwise they time out), then the process
// ends, cleanly (depart) or by crashing. It returns their incarnations.
func oldRun(ids, barrierIDs []int, depart bool) func(t *testing.T, e env) map[int]Peer {
	return func(t *testing.T, e env) map[int]Peer {
		var rs []*Registry
		for _, id := range ids {
			rs = append(rs, e.dial(id))
		}
		d := 10 * time.Second
		if !slices.Equal(ids, barrierIDs) {
			d = 100 * time.Millisecond // some never come: a partial run
		}
		_, errs := runBarrier(t, ctxFor(t, d), rs, "start", barrierIDs)
		if slices.Equal(ids, barrierIDs) && errors.Join(errs...) != nil {
			t.Fatal(errors.Join(errs...))
		}
		old := make(map[int]Peer)
		for _, r := range rs {
			old[r.Self().ID] = r.Self()
			r.shutdown(depart)
		}
		return old
	}
}

// testStaleKeys: replicas of a new run start, some early and some seconds
// later, on a memcached where earlier runs left keys. The early ones must
// not pass without the others, must name what is missing without calling a
// stale incarnation a live peer, and then everyone must start cleanly and
// read only this run's values.
func testStaleKeys(t *testing.T, e env) {
	cases := []struct {
		name string
		old  func(t *testing.T, e env) map[int]Peer // nil: a fresh cluster
		// announced are new replicas that dial (announce) before the
		// early ones wait, but reach the barrier only with the late ones.
		announced []int
		// early wait alone first and time out, missing wantMissing.
		early       []int
		wantMissing []int
		wantStale   []int // ids whose old incarnation is reported stale
		// wantSays are substrings of each early replica's error.
		wantSays func(old, cur map[int]Peer) []string
		// stagger separates the arrivals of the replicas that are not
		// early, in id order.
		stagger time.Duration
	}{
		{
			name: "crashed full run", old: oldRun([]int{1, 2, 3}, []int{1, 2, 3}, false),
			early: []int{1, 2}, wantMissing: []int{3}, wantStale: []int{3},
			wantSays: func(old, _ map[int]Peer) []string {
				return []string{"3: only a stale incarnation " + old[3].String() + " (announced", "before this wait began"}
			},
		},
		{
			name: "departed full run", old: oldRun([]int{1, 2, 3}, []int{1, 2, 3}, true),
			early: []int{1, 2}, wantMissing: []int{3}, wantStale: []int{3},
			wantSays: func(old, _ map[int]Peer) []string {
				return []string{"3: only a stale incarnation " + old[3].String() + " (departed"}
			},
		},
		{
			name: "partial old run", old: oldRun([]int{1, 2}, []int{1, 2, 3}, false),
			early: []int{3}, wantMissing: []int{1, 2}, wantStale: []int{1, 2},
			wantSays: func(old, _ map[int]Peer) []string {
				return []string{
					"1: only a stale incarnation " + old[1].String(), "2: only a stale incarnation " + old[2].String(),
					"before this wait began", "not started?",
				}
			},
		},
		{
			name: "new incarnation announced, not arrived", old: oldRun([]int{1, 2, 3}, []int{1, 2, 3}, false),
			announced: []int{3}, early: []int{1, 2}, wantMissing: []int{3}, wantStale: []int{3},
			wantSays: func(old, cur map[int]Peer) []string {
				return []string{"3: only a stale incarnation " + old[3].String() + "; the current one, " + cur[3].String()}
			},
		},
		{
			name: "no old run, never announced", early: []int{1}, wantMissing: []int{2, 3},
			wantSays: func(_, _ map[int]Peer) []string { return []string{"2 has not arrived (never announced)"} },
		},
		{name: "fresh cluster, seconds apart", stagger: time.Second},
		{name: "after a crashed run, staggered", old: oldRun([]int{1, 2, 3}, []int{1, 2, 3}, false), stagger: 300 * time.Millisecond},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := env{t: t, addr: e.addr, cluster: fmt.Sprintf("%s-%d", e.cluster, i)}
			old := map[int]Peer{}
			if c.old != nil {
				old = c.old(t, e)
			}
			ctx := ctxFor(t, 30*time.Second)
			cur := map[int]*Registry{}
			curPeers := func() map[int]Peer {
				m := map[int]Peer{}
				for id, r := range cur {
					m[id] = r.Self()
				}
				return m
			}
			for _, id := range c.announced {
				cur[id] = e.dial(id)
			}
			var early []*Registry
			for _, id := range c.early {
				cur[id] = e.dial(id)
				early = append(early, cur[id])
			}
			if len(early) > 0 {
				_, errs := runBarrier(t, ctxFor(t, 300*time.Millisecond), early, "start", []int{1, 2, 3})
				for i, err := range errs {
					var we *WaitError
					if !errors.As(err, &we) {
						t.Fatalf("replica %d passed the barrier without %v: %v", c.early[i], c.wantMissing, err)
					}
					t.Logf("replica %d: %v", c.early[i], err)
					if !slices.Equal(we.MissingIDs, c.wantMissing) {
						t.Errorf("replica %d: missing %v, want %v: %v", c.early[i], we.MissingIDs, c.wantMissing, err)
					}
					var wantStale []Peer
					for _, id := range c.wantStale {
						wantStale = append(wantStale, old[id])
					}
					if !slices.Equal(we.Stale, wantStale) {
						t.Errorf("replica %d: stale %v, want %v", c.early[i], we.Stale, wantStale)
					}
					for _, w := range c.wantSays(old, curPeers()) {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("replica %d: error does not say %q:\n%v", c.early[i], w, err)
						}
					}
					// An earlier run's process is never called a live peer.
					for _, p := range old {
						if strings.Contains(err.Error(), p.String()+" has not acknowledged us") {
							t.Errorf("replica %d: stale %v named as a live peer:\n%v", c.early[i], p, err)
						}
					}
				}
			}
			// Everyone else arrives, staggered; the early ones wait again.
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			var mu sync.Mutex
			met := map[int][]Peer{}
			ready := maps.Clone(cur) // the goroutines write cur
			for n, id := range []int{1, 2, 3} {
				r := ready[id]
				isEarly := slices.Contains(c.early, id)
				wg.Go(func() {
					if !isEarly {
						time.Sleep(time.Duration(n) * c.stagger)
					}
					if r == nil {
						cfg := e.cfg(id)
						var err error
						if r, err = Dial(ctx, cfg); err != nil {
							errs <- err
							return
						}
						t.Cleanup(func() { r.Close() })
					}
					if err := r.Publish(ctx, "ep", []byte(r.Self().String())); err != nil {
						errs <- err
						return
					}
					peers, err := r.Barrier(ctx, "start", []int{1, 2, 3})
					if err != nil {
						errs <- fmt.Errorf("replica %d: %w", id, err)
						return
					}
					for _, p := range peers {
						rec, err := r.Lookup(ctx, p.ID, "ep")
						if err != nil || string(rec.Value) != p.String() || !rec.Confirmed {
							errs <- fmt.Errorf("%v looking up %v: %q confirmed=%v %v", r.Self(), p, rec.Value, rec.Confirmed, err)
						}
					}
					mu.Lock()
					met[id] = peers
					cur[id] = r
					mu.Unlock()
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			var want []Peer
			for _, id := range []int{1, 2, 3} {
				want = append(want, cur[id].Self())
			}
			for id, peers := range met {
				if !slices.Equal(peers, want) {
					t.Errorf("replica %d met %v, want this run's %v", id, peers, want)
				}
			}
		})
	}
}

// testUnconfirmedLookup: before any barrier, Lookup falls back to the
// announced incarnation, which may be an earlier run's, and says so.
func testUnconfirmedLookup(t *testing.T, e env) {
	old := oldRun([]int{1, 2, 3}, []int{1, 2, 3}, false)(t, e)
	r1 := e.dial(1)
	ctx := ctxFor(t, 10*time.Second)
	if rec, err := r1.Lookup(ctx, 3, "ep"); err != nil || rec.Confirmed || rec.Peer != old[3] {
		t.Errorf("unconfirmed lookup: %v confirmed=%v %v", rec.Peer, rec.Confirmed, err)
	}
	_, err := r1.Lookup(ctxFor(t, 100*time.Millisecond), 3, "never")
	if err == nil || !strings.Contains(err.Error(), "before this wait began; unconfirmed") {
		t.Errorf("lookup of a name an old incarnation never published: %v", err)
	}
}

// testRestart: a replica killed and restarted with the same id gets a new
// incarnation. The start barrier, which its peers have passed, fails at its
// deadline saying so; the documented rejoin works: the peers learn the new
// incarnation by Watch, the restarted one theirs by Announced, each pair
// meets at RejoinBarrier, and Lookup then reads the new records.
func testRestart(t *testing.T, e env) {
	ctx := ctxFor(t, 20*time.Second)
	rs := []*Registry{e.dial(1), e.dial(2), e.dial(3)}
	if _, errs := runBarrier(t, ctx, rs, "start", []int{1, 2, 3}); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	old2 := rs[1].Self()
	rs[1].shutdown(false) // killed
	// The peers notice the restart.
	type seen struct {
		a   Announcement
		err error
	}
	watched := make(chan seen, 2)
	for _, r := range []*Registry{rs[0], rs[2]} {
		go func() {
			a, err := r.Watch(ctx, 2, old2.Incarnation)
			watched <- seen{a, err}
		}()
	}
	r2 := e.dial(2)
	if err := r2.Publish(ctx, "ep", []byte("new 2")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if w := <-watched; w.err != nil || w.a.Peer != r2.Self() || w.a.Departed {
			t.Fatalf("watch: %+v %v, want %v", w.a, w.err, r2.Self())
		}
	}

	// The start barrier is no way back in: 1 and 3 are past it.
	_, err := r2.Barrier(ctxFor(t, 300*time.Millisecond), "start", []int{1, 2, 3})
	var we *WaitError
	if !errors.As(err, &we) || !slices.Equal(we.MissingIDs, []int{1, 3}) || !slices.Equal(we.Stale, []Peer{rs[0].Self(), rs[2].Self()}) {
		t.Fatalf("restarted replica at the start barrier: %v, want 1 and 3 missing and stale", err)
	}
	if !strings.Contains(err.Error(), "met our earlier incarnation "+old2.String()) || !strings.Contains(err.Error(), "past this barrier") {
		t.Errorf("error does not say the peers are past the barrier:\n%v", err)
	}

	// The rejoin: Announced does not wait, and gives the peers' current
	// incarnations; each pair meets at its own barrier.
	var wg sync.WaitGroup
	for _, r := range []*Registry{rs[0], rs[2]} {
		a, found, err := r2.Announced(ctx, r.Self().ID)
		if err != nil || !found || a.Peer != r.Self() || a.Departed {
			t.Fatalf("announced %d: %+v %v %v", r.Self().ID, a, found, err)
		}
		wg.Go(func() {
			if err := r.Publish(ctx, "ep/for/"+r2.Self().String(), []byte(r.Self().String())); err != nil {
				t.Error(err)
				return
			}
			if _, err := r.Barrier(ctx, RejoinBarrier(r2.Self(), r.Self().ID), []int{r.Self().ID, 2}); err != nil {
				t.Error(err)
				return
			}
			if rec, err := r.Lookup(ctx, 2, "ep"); err != nil || string(rec.Value) != "new 2" || !rec.Confirmed {
				t.Errorf("%v looking up the restarted 2: %q %v", r.Self(), rec.Value, err)
			}
		})
		wg.Go(func() {
			peers, err := r2.Barrier(ctx, RejoinBarrier(r2.Self(), a.ID), []int{a.ID, 2})
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Contains(peers, a.Peer) {
				t.Errorf("rejoin barrier with %d met %v", a.ID, peers)
			}
			if rec, err := r2.LookupAt(ctx, a.Peer, "ep/for/"+r2.Self().String()); err != nil || string(rec.Value) != a.Peer.String() {
				t.Errorf("restarted 2 looking up %v: %q %v", a.Peer, rec.Value, err)
			}
		})
	}
	wg.Wait()
	if _, found, err := r2.Announced(ctx, 7); found || err != nil {
		t.Errorf("announced of a replica that never ran: found=%v %v", found, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// testProgress: a long wait reports what it waits for through the logger,
// at most once per ProgressInterval; Watch, whose job is to wait, does not.
func testProgress(t *testing.T, e env) {
	old := oldRun([]int{1, 2, 3}, []int{1, 2, 3}, false)(t, e)
	var buf syncBuffer
	const every = 20 * time.Millisecond
	cfg := e.cfg(1)
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	cfg.ProgressInterval = every
	r1, err := Dial(ctxFor(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	cases := []struct {
		name string
		wait func() error
		want []string
	}{
		{"barrier", func() error {
			_, err := r1.Barrier(ctxFor(t, 300*time.Millisecond), "start", []int{1, 2, 3})
			return err
		}, []string{"registry: still waiting barrier", `\"start\"`, "only a stale incarnation " + old[2].String(), "missing_ids=\"[2 3]\"", "stale="}},
		{"lookup", func() error {
			_, err := r1.Lookup(ctxFor(t, 200*time.Millisecond), 9, "ep")
			return err
		}, []string{"registry: still waiting lookup", "replica 9 has not announced itself"}},
		{"watch", func() error {
			_, err := r1.Watch(ctxFor(t, 200*time.Millisecond), 2, old[2].Incarnation)
			return err
		}, nil},
	}
	for _, c := range cases {
		before := len(buf.lines())
		start := time.Now()
		if err := c.wait(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want a deadline", c.name, err)
		}
		waited := time.Since(start)
		got := buf.lines()[before:]
		if c.want == nil {
			if len(got) > 0 {
				t.Errorf("%s reported progress:\n%s", c.name, strings.Join(got, "\n"))
			}
			continue
		}
		// Rate limited: the first report after one interval, then one per
		// interval at most.
		if len(got) == 0 || len(got) > int(waited/every)+1 {
			t.Fatalf("%s: %d reports in %v at most one per %v:\n%s", c.name, len(got), waited, every, strings.Join(got, "\n"))
		}
		t.Logf("%s: %d reports in %v, the first:\n%s", c.name, len(got), waited.Round(time.Millisecond), got[0])
		for _, w := range c.want {
			if !strings.Contains(got[0], w) {
				t.Errorf("%s: report does not say %s:\n%s", c.name, w, got[0])
			}
		}
	}
}

// testBarrierProcesses runs three replicas as separate processes (this
// test binary re-executed) and checks they all met the same incarnations.
func testBarrierProcesses(t *testing.T, e env) {
	ids := []int{1, 2, 3}
	outs := make([]bytes.Buffer, len(ids))
	cmds := make([]*exec.Cmd, len(ids))
	for i, id := range ids {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			envChild+"="+strconv.Itoa(id), envAddr+"="+e.addr,
			envCluster+"="+e.cluster, envIDs+"=1,2,3")
		cmd.Stdout = &outs[i]
		cmd.Stderr = &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	var selvesSeen, peerLists []string
	for i, cmd := range cmds {
		err := cmd.Wait()
		out := outs[i].String()
		if err != nil {
			t.Fatalf("replica %d: %v\n%s", ids[i], err, out)
		}
		var self string
		var peers []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			switch {
			case strings.HasPrefix(l, "SELF "):
				self = l[5:]
			case strings.HasPrefix(l, "PEER "):
				peers = append(peers, l[5:])
			}
		}
		selvesSeen = append(selvesSeen, self)
		peerLists = append(peerLists, strings.Join(peers, " "))
	}
	want := strings.Join(selvesSeen, " ")
	for i, pl := range peerLists {
		if pl != want {
			t.Errorf("replica %d met %s, want %s", ids[i], pl, want)
		}
	}
}

func testConcurrentPublishers(t *testing.T, e env) {
	ctx := ctxFor(t, 20*time.Second)
	const n, names = 5, 20
	rs := make([]*Registry, n)
	for i := range rs {
		rs[i] = e.dial(i + 1)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*names)
	for _, r := range rs {
		for j := range names {
			// Several goroutines share each Registry.
			wg.Go(func() {
				if err := r.Publish(ctx, fmt.Sprintf("n%d", j), fmt.Appendf(nil, "%v/%d", r.Self(), j)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	for _, r := range rs {
		wg.Go(func() {
			for _, p := range rs {
				for j := range names {
					rec, err := r.Lookup(ctx, p.Self().ID, fmt.Sprintf("n%d", j))
					if err != nil {
						errs <- err
						return
					}
					if want := fmt.Sprintf("%v/%d", p.Self(), j); string(rec.Value) != want {
						errs <- fmt.Errorf("got %q want %q", rec.Value, want)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testWatch(t *testing.T, e env) {
	ctx := ctxFor(t, 10*time.Second)
	r1 := e.dial(1)
	r2a := e.dial(2)
	peers, errs := runBarrier(t, ctx, []*Registry{r1, r2a}, "start", []int{1, 2})
	if errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if p, ok := r1.Confirmed(2); !ok || p != r2a.Self() || !slices.Contains(peers[0], p) {
		t.Fatalf("confirmed %v %v", p, ok)
	}
	// Nothing changes: the watch runs until its context ends.
	if _, err := r1.Watch(ctxFor(t, 30*time.Millisecond), 2, r2a.Self().Incarnation); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("watch with no change: %v", err)
	}
	// Replica 2 restarts.
	type result struct {
		a   Announcement
		err error
	}
	got := make(chan result, 1)
	go func() {
		a, err := r1.Watch(ctx, 2, r2a.Self().Incarnation)
		got <- result{a, err}
	}()
	time.Sleep(20 * time.Millisecond)
	r2a.shutdown(false) // a crash: no departure
	r2b := e.dial(2)
	r2b.Publish(ctx, "ep", []byte("b"))
	res := <-got
	if res.err != nil || res.a.Peer != r2b.Self() || res.a.Departed {
		t.Fatalf("watch: %+v %v, want %v", res.a, res.err, r2b.Self())
	}
	// The new incarnation is confirmed: Lookup reads it.
	if rec, err := r1.Lookup(ctx, 2, "ep"); err != nil || string(rec.Value) != "b" || !rec.Confirmed {
		t.Fatalf("lookup after watch: %q %v", rec.Value, err)
	}
	// A clean Close is seen as a departure, and forgotten.
	go func() {
		a, err := r1.Watch(ctx, 2, r2b.Self().Incarnation)
		got <- result{a, err}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := r2b.Close(); err != nil {
		t.Fatal(err)
	}
	res = <-got
	if res.err != nil || res.a.Peer != r2b.Self() || !res.a.Departed {
		t.Fatalf("watch departure: %+v %v", res.a, res.err)
	}
	if _, ok := r1.Confirmed(2); ok {
		t.Error("departed incarnation still confirmed")
	}
	_, err := r1.Lookup(ctxFor(t, 50*time.Millisecond), 2, "ep")
	if err == nil || !strings.Contains(err.Error(), "departed") {
		t.Errorf("lookup of a departed replica: %v", err)
	}
	if a, found, err := r1.Announced(ctx, 2); err != nil || !found || !a.Departed {
		t.Errorf("announced: %+v %v %v", a, found, err)
	}
}

func testInvalidKeys(t *testing.T, e env) {
	r := e.dial(1)
	ctx := ctxFor(t, 5*time.Second)
	long := strings.Repeat("n", maxKeyLen)
	for _, name := range []string{"", "has space", "tab\there", "nl\n", "del\x7f", long} {
		start := time.Now()
		errs := []error{
			r.Publish(ctx, name, nil),
			func() error { _, err := r.Lookup(ctx, 2, name); return err }(),
			func() error { _, err := r.LookupAt(ctx, Peer{2, 5}, name); return err }(),
			func() error { _, err := r.Barrier(ctx, name, []int{1}); return err }(),
		}
		for i, err := range errs {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("name %.20q op %d: %v, want ErrInvalidKey", name, i, err)
			}
		}
		if time.Since(start) > time.Second {
			t.Errorf("name %.20q: invalid keys were not refused at once", name)
		}
	}
	// A name that fits with a short id but not a long one.
	prefixLen := len(r.publishKey(Peer{ID: 1, Incarnation: 1}, ""))
	fits := strings.Repeat("f", maxKeyLen-prefixLen)
	if err := r.Publish(ctx, fits, []byte("x")); err != nil {
		t.Errorf("250-byte key: %v", err)
	}
	if err := r.Publish(ctx, fits+"f", []byte("x")); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("251-byte key: %v", err)
	}
	for _, c := range []string{"", "a b", "a/b", strings.Repeat("c", 65), "ü"} {
		if _, err := Dial(ctx, Config{Addr: e.addr, Cluster: c, ID: 1}); err == nil {
			t.Errorf("cluster %q accepted", c)
		}
	}
	for _, id := range []int{-1, MaxID + 1} {
		if _, err := Dial(ctx, Config{Addr: e.addr, Cluster: "c", ID: id}); err == nil {
			t.Errorf("id %d accepted", id)
		}
	}
}

func testMalformedValues(t *testing.T, e env) {
	r := e.dial(1)
	mc := gomemcache.New(e.addr)
	mc.Timeout = 5 * time.Second
	p2 := Peer{ID: 2, Incarnation: 0xabc}
	good := encodeAnnounce(p2, 1, false)
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "shorter than"},
		{"version", append([]byte{9}, good[1:]...), "format version 9"},
		{"kind", append([]byte{1, 'P'}, good[2:]...), "record kind"},
		{"id", encodeAnnounce(Peer{ID: 3, Incarnation: 1}, 1, false), "replica 3 under the key of replica 2"},
		{"length", append(slices.Clone(good), 0), "announce record of 24 bytes"},
		{"state", append(slices.Clone(good[:len(good)-1]), 7), "unknown announce state"},
		{"zero incarnation", encodeAnnounce(Peer{ID: 2}, 1, false), "incarnation 0"},
	}
	ctx := ctxFor(t, 5*time.Second)
	for _, c := range cases {
		key := r.announceKey(2)
		if err := mc.Set(&gomemcache.Item{Key: key, Value: c.value}); err != nil {
			t.Fatal(err)
		}
		_, err := r.Lookup(ctx, 2, "ep")
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Key != key || !errors.Is(err, ErrMalformedValue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a ValueError naming %s and saying %q", c.name, err, key, c.want)
		}
	}
	// A published record under the wrong incarnation's key.
	mc.Set(&gomemcache.Item{Key: r.announceKey(2), Value: good})
	key := r.publishKey(p2, "ep")
	mc.Set(&gomemcache.Item{Key: key, Value: encodePublish(Peer{ID: 2, Incarnation: 0xdef}, 1, nil)})
	if _, err := r.Lookup(ctx, 2, "ep"); !errors.Is(err, ErrMalformedValue) || !strings.Contains(err.Error(), key) {
		t.Errorf("wrong incarnation: %v", err)
	}
	// A barrier entry that does not parse.
	bkey := r.barrierKey("b", 2)
	mc.Set(&gomemcache.Item{Key: bkey, Value: append(encodeBarrier(p2, []Peer{{1, 1}}), 0)})
	if _, err := r.Barrier(ctx, "b", []int{1, 2}); !errors.Is(err, ErrMalformedValue) || !strings.Contains(err.Error(), bkey) {
		t.Errorf("barrier entry: %v", err)
	}
}

// testDuplicateID: two live processes with the same id at one barrier are
// reported, not left to overwrite each other forever.
func testDuplicateID(t *testing.T, e env) {
	a, b := e.dial(1), e.dial(1)
	ctx := ctxFor(t, 500*time.Millisecond)
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { _, errA = a.Barrier(ctx, "dup", []int{1, 2}) })
	wg.Go(func() { _, errB = b.Barrier(ctx, "dup", []int{1, 2}) })
	wg.Wait()
	if !strings.Contains(fmt.Sprint(errA, errB), "two processes with replica id 1") {
		t.Errorf("duplicate id not reported: %v / %v", errA, errB)
	}
}

func testObserver(t *testing.T, e env) {
	ctx := ctxFor(t, 5*time.Second)
	r1 := e.dial(1)
	obs := e.dial(0)
	if err := obs.Publish(ctx, "x", nil); !errors.Is(err, ErrObserver) {
		t.Errorf("observer publish: %v", err)
	}
	if _, err := obs.Barrier(ctx, "x", []int{1}); !errors.Is(err, ErrObserver) {
		t.Errorf("observer barrier: %v", err)
	}
	r1.Publish(ctx, "ctl", []byte("c"))
	if rec, err := obs.Lookup(ctx, 1, "ctl"); err != nil || string(rec.Value) != "c" {
		t.Errorf("observer lookup: %q %v", rec.Value, err)
	}
	if _, err := r1.Barrier(ctx, "x", []int{2, 3}); err == nil {
		t.Error("barrier without own id accepted")
	}
}

// TestUnreachable: a registry that does not answer fails within the
// deadline, with an error naming the address.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a closed port: connection refused

	// A port that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	for _, a := range []string{addr, silent.Addr().String()} {
		for _, id := range []int{1, 0} {
			start := time.Now()
			_, err := Dial(ctxFor(t, 300*time.Millisecond), Config{Addr: a, Cluster: "c", ID: id, OpTimeout: 5 * time.Second})
			d := time.Since(start)
			var we *WaitError
			if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: %v, want a WaitError", a, err)
			}
			if !strings.Contains(err.Error(), "registry "+a+" unreachable") || !errors.Is(err, ErrUnreachable) {
				t.Errorf("error %q does not say %s is unreachable", err, a)
			}
			if d > time.Second {
				t.Errorf("%s: gave up after %v, deadline 300ms", a, d)
			}
		}
	}
	if we := new(WaitError); !errors.As(func() error {
		_, err := Dial(ctxFor(t, 100*time.Millisecond), Config{Addr: addr, Cluster: "c", ID: 1})
		return err
	}(), &we) || we.LastErr == nil || !strings.Contains(we.LastErr.Error(), "refused") {
		t.Errorf("refused connection not reported: %+v", we)
	}
	if _, err := Dial(ctxFor(t, time.Second), Config{Cluster: "c"}); err == nil || !strings.Contains(err.Error(), EnvAddr) {
		t.Errorf("empty address: %v", err)
	}

	// DialTimeout bounds Dial whatever the context: a tool's 30 s start
	// timeout must not become 30 s of retrying a registry that is not there.
	for _, c := range []struct {
		name string
		addr string
		ctx  context.Context
	}{
		{"refused, no deadline", addr, context.Background()},
		{"refused, long deadline", addr, ctxFor(t, time.Hour)},
		{"silent, long deadline", silent.Addr().String(), ctxFor(t, time.Hour)},
	} {
		cfg := Config{Addr: c.addr, Cluster: "c", ID: 1, DialTimeout: 200 * time.Millisecond, WaitTimeout: time.Hour}
		done := make(chan error, 1)
		go func() {
			_, err := Dial(c.ctx, cfg)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "registry "+c.addr+" unreachable") {
				t.Errorf("%s: %v, want it unreachable", c.name, err)
			}
		case <-time.After(time.Minute): // a hang detector, not a threshold
			t.Fatalf("%s: Dial still retrying after a minute with a 200ms DialTimeout", c.name)
		}
	}
	cfg, err := Config{Addr: addr, Cluster: "c"}.withDefaults()
	if err != nil || cfg.DialTimeout != DefaultDialTimeout || cfg.ProgressInterval != DefaultProgressInterval {
		t.Errorf("defaults: %+v %v", cfg, err)
	}
	// A negative DialTimeout leaves Dial to its context.
	_, err = Dial(ctxFor(t, 100*time.Millisecond), Config{Addr: addr, Cluster: "c", ID: 1, DialTimeout: -1})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("negative DialTimeout: %v", err)
	}
}

// TestMemcachedRestart: waits ride out the registry going away and coming
// back on the same port.
func TestMemcachedRestart(t *testing.T) {
	s, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	e := env{t: t, addr: addr, cluster: "restart"}
	// r1's DialTimeout, shorter than the outage below, bounds its Dial
	// only: its later waits still ride out memcached being away.
	cfg := e.cfg(1)
	cfg.DialTimeout = 200 * time.Millisecond
	r1, err := Dial(ctxFor(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2 := e.dial(2)
	s.Close()
	ctx := ctxFor(t, 10*time.Second)
	go func() {
		time.Sleep(500 * time.Millisecond)
		s2, err := memcache.ListenAndServe(addr, memcache.Config{})
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { s2.Close() })
	}()
	// The new server is empty: 1 must announce again to be found. Publish
	// retries until the server is back.
	if err := r1.Publish(ctx, "ep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = r2.Lookup(ctxFor(t, 100*time.Millisecond), 1, "ep")
	if err == nil || !strings.Contains(err.Error(), "has not announced") {
		t.Fatalf("lookup on a restarted, empty registry: %v", err)
	}
	if rec, err := r2.LookupAt(ctx, r1.Self(), "ep"); err != nil || string(rec.Value) != "x" {
		t.Fatalf("lookup at: %q %v", rec.Value, err)
	}
}

func TestAddrFromEnv(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"10.0.0.1":       "10.0.0.1:11211",
		"10.0.0.1:9999":  "10.0.0.1:9999",
		"host":           "host:11211",
		" host:1 ":       "host:1",
		"::1":            "[::1]:11211",
		"[fe80::1]:2000": "[fe80::1]:2000",
	} {
		t.Setenv(EnvAddr, in)
		if got := AddrFromEnv(); got != want {
			t.Errorf("%s=%q: got %q want %q", EnvAddr, in, got, want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	p := Peer{ID: 7, Incarnation: 0x0123456789abcdef}
	a, err := decodeAnnounce("k", 7, encodeAnnounce(p, 42, true))
	if err != nil || a.inc != p.Incarnation || a.unixNano != 42 || !a.departed {
		t.Errorf("announce: %+v %v", a, err)
	}
	ts, v, err := decodePublish("k", p, encodePublish(p, 43, []byte("val")))
	if err != nil || ts != 43 || string(v) != "val" {
		t.Errorf("publish: %d %q %v", ts, v, err)
	}
	seen := []Peer{{1, 5}, {3, 1<<64 - 1}}
	b, err := decodeBarrier("k", 7, encodeBarrier(p, seen))
	if err != nil || b.inc != p.Incarnation || !slices.Equal(b.seen, seen) || !b.acknowledges(Peer{3, 1<<64 - 1}) || b.acknowledges(Peer{3, 1}) {
		t.Errorf("barrier: %+v %v", b, err)
	}
	if len(encodeAnnounce(p, 0, false)) != announceLen {
		t.Error("announce length")
	}
}
