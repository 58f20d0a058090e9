package exchange

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/replicatest"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

const hang = replicatest.Hang

type node = replicatest.Node[*Server, *Machine]

// rig is a cluster (or a standalone server) and what traders need to
// reach it: an RPC registry of its own and the RPC transport.
type rig struct {
	t         *testing.T
	c         *replicatest.Cluster[*Server, *Machine]
	alone     *Server
	reg       *memcache.Server
	transport string
	fabric    string
	ids       []int
	rpcName   string
	// inboxPoll is how often servers look for new connections (0: the
	// registry's default).
	inboxPoll time.Duration
	// stats, if set, gets each server a stats port and holds its address
	// by replica id.
	stats *sync.Map
}

func rpcDeviceName(transport, fabric string) string {
	if transport == "tcp" {
		return "127.0.0.1:0"
	}
	return fabric
}

func newRig(t *testing.T, transport string) *rig {
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return &rig{t: t, reg: reg, transport: transport, fabric: fmt.Sprintf("ob-%s-%d", name, os.Getpid()), rpcName: "ob-" + name}
}

// newServer makes replica id's machine and server, listening for traders.
func (r *rig) newServer(id int) (*Server, *Machine, error) {
	dev, err := verbs.Open(r.transport, rpcDeviceName(r.transport, r.fabric), verbs.Options{})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	reg, err := registry.Dial(ctx, registry.Config{Addr: r.reg.Addr(), Cluster: r.rpcName, ID: id, InboxPollInterval: r.inboxPoll})
	if err != nil {
		dev.Close()
		return nil, nil, err
	}
	var stats net.Listener
	if r.stats != nil {
		if stats, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			reg.Close()
			dev.Close()
			return nil, nil, err
		}
		r.stats.Store(id, stats.Addr().String())
	}
	m := NewMachine(book.Config{})
	srv, err := New(Config{Machine: m, Timeout: 5 * time.Second,
		RPC:   verbsrpc.Config{Device: dev, Registry: reg, Poll: poll.Sleep},
		Owned: []io.Closer{reg, dev}, Stats: stats})
	if err != nil {
		reg.Close()
		dev.Close()
		if stats != nil {
			stats.Close()
		}
	}
	return srv, m, err
}

func startCluster(t *testing.T, n int, transport string) *rig {
	return startClusterRig(t, n, newRig(t, transport))
}

func startClusterRig(t *testing.T, n int, r *rig) *rig {
	r.c = replicatest.Start(t, n, replicatest.Options{Transport: r.transport}, r.newServer)
	for i := 1; i <= n; i++ {
		r.ids = append(r.ids, i)
	}
	return r
}

func startStandalone(t *testing.T) *rig {
	return startStandaloneRig(t, newRig(t, "shm"))
}

func startStandaloneRig(t *testing.T, r *rig) *rig {
	srv, _, err := r.newServer(1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	r.alone, r.ids = srv, []int{1}
	return r
}

// rpcConfig is a trader's view of the rig: its own device and an observer
// registry.
func (r *rig) rpcConfig() verbsrpc.Config {
	r.t.Helper()
	dev, err := verbs.Open(r.transport, rpcDeviceName(r.transport, r.fabric), verbs.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { dev.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	reg, err := registry.Dial(ctx, registry.Config{Addr: r.reg.Addr(), Cluster: r.rpcName})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { reg.Close() })
	return verbsrpc.Config{Device: dev, Registry: reg, Name: "orderbook", Poll: poll.Sleep}
}

// trader dials a client whose first choice is ids[0].
func (r *rig) trader(ids ...int) *client.Client {
	r.t.Helper()
	if len(ids) == 0 {
		ids = r.ids
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{RPC: r.rpcConfig(), IDs: ids, Attempt: 200 * time.Millisecond, Timeout: hang})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func order(side book.Side, qty book.Qty, price book.Price) *wire.Request {
	r := &wire.Request{Op: wire.OpNew, Side: side, Qty: qty, Price: price}
	r.SetSymbol("IBM")
	return r
}

func do(t *testing.T, c *client.Client, req *wire.Request) wire.Result {
	t.Helper()
	res, _, err := c.Do(req)
	if err != nil {
		t.Fatalf("%v: %v", req.Op, err)
	}
	return res
}

// waitSame waits until every live replica holds the leader's state.
func (r *rig) waitSame() {
	r.t.Helper()
	var got []string
	ok := replicatest.WaitFor(func() bool {
		got = got[:0]
		for _, n := range r.c.Live() {
			d := n.M.Digest()
			got = append(got, fmt.Sprintf("%d:%x", n.ID, d[:4]))
		}
		for _, g := range got {
			if g[strings.IndexByte(g, ':'):] != got[0][strings.IndexByte(got[0], ':'):] {
				return false
			}
		}
		return true
	})
	if !ok {
		r.t.Fatalf("replicas did not converge: %v", got)
	}
}

func TestOrdersOnCluster(t *testing.T) {
	for _, transport := range []string{"shm", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			r := startCluster(t, 3, transport)
			lead := r.c.WaitLeader()
			// The trader starts at a follower: it must be redirected.
			var first int
			for _, n := range r.c.Followers(lead) {
				first = n.ID
			}
			ids := []int{first}
			for _, id := range r.ids {
				if id != first {
					ids = append(ids, id)
				}
			}
			seller, buyer := r.trader(ids...), r.trader()
			sell := do(t, seller, order(book.Sell, 100, 1010))
			if sell.Status != wire.StatusOK || sell.State != wire.StateResting {
				t.Fatalf("sell: %+v", sell)
			}
			if seller.Stats().Redirects == 0 || seller.Leader() != lead.ID {
				t.Fatalf("the trader started at follower %d was not redirected to %d: %+v", first, lead.ID, seller.Stats())
			}
			buy := do(t, buyer, order(book.Buy, 60, 1015))
			if buy.Filled != 60 || buy.Last != 1010 || buy.State != wire.StateDone {
				t.Fatalf("buy: %+v", buy)
			}
			rep := do(t, seller, &wire.Request{Op: wire.OpReplace, Order: sell.Order, Qty: -10, Price: 1012})
			if rep.Status != wire.StatusOK || rep.Open != 30 {
				t.Fatalf("replace: %+v", rep)
			}
			// Depth through every replica at once, without waiting for the
			// followers to apply: reads are linearizable everywhere, so
			// each must already show the acknowledged replace.
			for _, id := range r.ids {
				c := r.trader(id)
				_, raw, err := c.Do(&wire.Request{Op: wire.OpDepth, Symbol: order(0, 0, 0).Symbol, SymLen: 3})
				if err != nil {
					t.Fatalf("depth on %d: %v", id, err)
				}
				var d wire.Depth
				if err := wire.DecodeDepth(raw, &d); err != nil {
					t.Fatal(err)
				}
				if len(d.Asks) != 1 || d.Asks[0] != (book.Level{Price: 1012, Qty: 30, Orders: 1}) || len(d.Bids) != 0 || d.Market != 1010 {
					t.Fatalf("depth on replica %d: %+v", id, d)
				}
			}
			r.waitSame()
		})
	}
}

func TestStandalone(t *testing.T) {
	r := startStandalone(t)
	c := r.trader()
	if res := do(t, c, order(book.Buy, 5, 100)); res.Status != wire.StatusOK || res.Open != 5 {
		t.Fatalf("standalone order: %+v", res)
	}
	_, raw, err := c.Do(&wire.Request{Op: wire.OpTrader})
	if err != nil {
		t.Fatal(err)
	}
	var ts wire.TraderState
	if err := wire.DecodeTrader(raw, &ts); err != nil || ts.Applied != 1 || ts.Open != 1 {
		t.Fatalf("trader state %+v (%v)", ts, err)
	}
}

func TestBadRequests(t *testing.T) {
	r := startStandalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	conn, err := verbsrpc.DialID(ctx, r.rpcConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	good := order(book.Buy, 1, 100)
	good.Trader, good.ClOrd = 9, 1
	tests := []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"short", []byte{1, 2, 3}},
		{"unknown op", append([]byte{99}, good.Append(nil)[1:]...)},
		{"no trader", func() []byte { q := *good; q.Trader = 0; return q.Append(nil) }()},
		{"no clord", func() []byte { q := *good; q.ClOrd = 0; return q.Append(nil) }()},
		{"bad symbol", func() []byte { q := *good; q.SetSymbol("a b"); return q.Append(nil) }()},
	}
	resp := make([]byte, 4096)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := conn.Call(ctx, tc.req, resp)
			if err != nil {
				t.Fatal(err)
			}
			var res wire.Result
			text, err := wire.DecodeResult(resp[:n], &res)
			if err != nil || res.Status != wire.StatusBadRequest || len(text) == 0 {
				t.Fatalf("answer %+v %q (%v)", res, text, err)
			}
		})
	}
	// And the server still serves.
	n, err := conn.Call(ctx, good.Append(nil), resp)
	var res wire.Result
	if _, derr := wire.DecodeResult(resp[:n], &res); err != nil || derr != nil || res.Status != wire.StatusOK {
		t.Fatalf("a good order after bad ones: %+v %v %v", res, err, derr)
	}
}

// TestFailoverExactlyOnce runs traders through a leader pause and a
// leader crash, then checks every acknowledged order was applied exactly
// once, on every replica alike.
func TestFailoverExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-second failover run")
	}
	for _, fault := range []string{"pause", "crash"} {
		t.Run(fault, func(t *testing.T) {
			r := startCluster(t, 3, "shm")
			const traders = 3
			type tally struct {
				acked uint64
				sum   uint64
			}
			tallies := make([]tally, traders)
			clients := make([]*client.Client, traders)
			for i := range clients {
				clients[i] = r.trader()
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, traders)
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; ; k++ {
						select {
						case <-stop:
							return
						default:
						}
						side := book.Side(k%2 + 1)
						req := order(side, book.Qty(k%7+1), book.Price(1000+(k%5)-2))
						res, _, err := c.Do(req)
						if err != nil {
							errs <- fmt.Errorf("trader %d order %d: %w", i, k, err)
							return
						}
						if res.ClOrd != req.ClOrd {
							errs <- fmt.Errorf("trader %d: answer for clord %d to request %d", i, res.ClOrd, req.ClOrd)
							return
						}
						tallies[i].acked++
						tallies[i].sum += wire.Mix(req.ClOrd)
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			lead := r.c.WaitLeader()
			switch fault {
			case "pause":
				lead.Rep.Pause()
				newLead := waitOtherLeader(t, r, lead.ID)
				time.Sleep(200 * time.Millisecond)
				lead.Rep.Resume()
				_ = newLead
			case "crash":
				r.c.Crash(lead.ID)
				waitOtherLeader(t, r, lead.ID)
				time.Sleep(200 * time.Millisecond)
				if err := r.c.StartNode(lead.ID); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			r.waitSame()
			for i, c := range clients {
				_, raw, err := c.Do(&wire.Request{Op: wire.OpTrader})
				if err != nil {
					t.Fatal(err)
				}
				var ts wire.TraderState
				if err := wire.DecodeTrader(raw, &ts); err != nil {
					t.Fatal(err)
				}
				if ts.Applied != tallies[i].acked || ts.IDSum != tallies[i].sum {
					t.Errorf("trader %d: %d acknowledged, %d applied (id sums %x vs %x)", i, tallies[i].acked, ts.Applied, tallies[i].sum, ts.IDSum)
				}
				if tallies[i].acked == 0 {
					t.Errorf("trader %d placed nothing", i)
				}
				t.Logf("trader %d: %d orders, %+v", i, tallies[i].acked, c.Stats())
			}
		})
	}
}

func waitOtherLeader(t *testing.T, r *rig, old int) *node {
	t.Helper()
	var lead *node
	if !replicatest.WaitFor(func() bool {
		for _, n := range r.c.Live() {
			if n.ID != old && n.Rep.Role() == consensus.Leader {
				lead = n
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no replica other than %d took over", old)
	}
	return lead
}

// TestNoAllocsPerOrder counts the process's allocations while a trader
// places orders, through a standalone exchange and through the leader of
// a 3-replica cluster. The order path allocates nothing; what the count
// sees is background work that allocates by the second, not by the order
// (registry polls: about 30 a second standalone, 0.004 per order over
// 100 000 orders; the engines' registry watches in the cluster). The
// bounds catch an allocation per order, or per few orders.
func TestNoAllocsPerOrder(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		name string
		max  float64
	}{{"standalone", 0.1}, {"cluster", 0.5}} {
		t.Run(tc.name, func(t *testing.T) {
			// The servers' inboxes poll the registry for new traders,
			// which allocates; slowly here.
			r := newRig(t, "shm")
			r.inboxPoll = time.Second
			if tc.name == "standalone" {
				startStandaloneRig(t, r)
			} else {
				startClusterRig(t, 3, r)
			}
			c := r.trader()
			reqs := [2]*wire.Request{order(book.Buy, 10, 1000), order(book.Sell, 10, 1000)}
			place := func(k int) {
				req := reqs[k%2]
				req.ClOrd = 0
				if res, _, err := c.Do(req); err != nil || res.Status != wire.StatusOK {
					t.Fatalf("order %d: %+v %v", k, res, err)
				}
			}
			for k := range 3000 {
				place(k)
			}
			const n = 2000
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for k := range n {
				place(k)
			}
			runtime.ReadMemStats(&after)
			per := float64(after.Mallocs-before.Mallocs) / n
			t.Logf("%.3f allocations per order (process-wide, %d orders)", per, n)
			if per >= tc.max {
				t.Fatalf("%.3f allocations per order (process-wide), want under %v", per, tc.max)
			}
		})
	}
}

// TestRestartedFollowerCatchesUp restarts a follower after the leader's
// ring has lapped it, so that only a state transfer (the machine's
// snapshot: books, owners, windows) can catch it up; its state must then
// equal the leader's, and the trader's resends must still be recognised.
func TestRestartedFollowerCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of orders through a 3-replica cluster")
	}
	r := newRig(t, "shm")
	r.c = replicatest.Start(t, 3, replicatest.Options{Ring: 256 << 10, MaxBatch: 64 << 10}, r.newServer)
	r.ids = []int{1, 2, 3}
	lead := r.c.WaitLeader()
	follower := r.c.Followers(lead)[0].ID
	r.c.Crash(follower)
	c := r.trader()
	var last *wire.Request
	for k := range 6000 { // each a proposal of ~100 bytes: the ring laps twice
		req := order(book.Side(k%2+1), book.Qty(k%5+1), book.Price(1000+k%7-3))
		if res, _, err := c.Do(req); err != nil || res.Status != wire.StatusOK {
			t.Fatalf("order %d: %+v %v", k, res, err)
		}
		last = req
	}
	if err := r.c.StartNode(follower); err != nil {
		t.Fatal(err)
	}
	r.waitSame()
	// The restarted replica remembers the trader's last result too.
	n := r.c.Node(follower)
	got, ok := n.M.Result(c.Trader(), last.ClOrd)
	want, _ := lead.M.Result(c.Trader(), last.ClOrd)
	if !ok || got != want {
		t.Fatalf("restarted replica's window: %+v %v, the leader's %+v", got, ok, want)
	}
	if st := n.Rep.Stats(); st.Transfers == 0 {
		t.Fatalf("the follower caught up without a state transfer (the ring did not lap it?): %+v", st)
	}
}
