package exchange

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
)

// propose applies reqs to m as one proposal and returns their results.
func propose(t testing.TB, m *Machine, reqs ...wire.Request) []wire.Result {
	t.Helper()
	p := AppendProposal(nil, len(reqs))
	for i := range reqs {
		p = reqs[i].Append(p)
	}
	m.Apply(0, p)
	out := make([]wire.Result, len(reqs))
	for i, r := range reqs {
		res, ok := m.Result(r.Trader, r.ClOrd)
		if !ok {
			t.Fatalf("request %d (trader %d clord %d) has no result", i, r.Trader, r.ClOrd)
		}
		out[i] = res
	}
	return out
}

func newOrder(trader, clOrd uint64, side book.Side, qty book.Qty, price book.Price) wire.Request {
	r := wire.Request{Op: wire.OpNew, Trader: trader, ClOrd: clOrd, Side: side, Qty: qty, Price: price}
	r.SetSymbol("IBM")
	return r
}

func TestMachineResults(t *testing.T) {
	m := NewMachine(book.Config{})
	sell := newOrder(1, 1, book.Sell, 100, 1010)
	res := propose(t, m, sell)[0]
	if res.Status != wire.StatusOK || res.State != wire.StateResting || res.Open != 100 || res.Order == 0 {
		t.Fatalf("resting sell: %+v", res)
	}
	restingID := res.Order

	buy := newOrder(2, 1, book.Buy, 30, 1020)
	res = propose(t, m, buy)[0]
	if res.Status != wire.StatusOK || res.State != wire.StateDone || res.Filled != 30 || res.Fills != 1 || res.Last != 1010 || res.Notional != 30*1010 {
		t.Fatalf("crossing buy: %+v", res)
	}
	if ts := m.Trader(1); ts.Filled != 30 || ts.Open != 1 || ts.Applied != 1 {
		t.Fatalf("seller's totals after a passive fill: %+v", ts)
	}

	tests := []struct {
		name   string
		req    wire.Request
		status wire.Status
		reason wire.Reason
		state  wire.State
		open   book.Qty
	}{
		{"cancel of another trader's order", wire.Request{Op: wire.OpCancel, Trader: 2, ClOrd: 2, Order: restingID}, wire.StatusRejected, wire.ReasonNotOwner, 0, 0},
		{"cancel of an unknown order", wire.Request{Op: wire.OpCancel, Trader: 1, ClOrd: 2, Order: 999}, wire.StatusRejected, wire.Reason(book.ReasonUnknownOrder), 0, 0},
		{"replace down keeps it resting", wire.Request{Op: wire.OpReplace, Trader: 1, ClOrd: 3, Order: restingID, Qty: -20}, wire.StatusOK, 0, wire.StateResting, 50},
		{"cancel by its owner", wire.Request{Op: wire.OpCancel, Trader: 1, ClOrd: 4, Order: restingID}, wire.StatusOK, 0, wire.StateDone, 0},
		{"cancel again", wire.Request{Op: wire.OpCancel, Trader: 1, ClOrd: 5, Order: restingID}, wire.StatusRejected, wire.Reason(book.ReasonUnknownOrder), 0, 0},
		{"zero quantity", newOrder(3, 1, book.Buy, 0, 1000), wire.StatusRejected, wire.Reason(book.ReasonBadQty), wire.StateNone, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := propose(t, m, tc.req)[0]
			if res.Status != tc.status || res.Reason != tc.reason || res.Open != tc.open || (tc.state != 0 && res.State != tc.state) {
				t.Fatalf("got %+v, want status %v reason %v state %v open %d", res, tc.status, tc.reason, tc.state, tc.open)
			}
		})
	}
	if ts := m.Trader(1); ts.Open != 0 || ts.Applied != 5 {
		t.Fatalf("trader 1 at the end: %+v", ts)
	}
}

func TestMachineAppliesOnce(t *testing.T) {
	m := NewMachine(book.Config{})
	first := propose(t, m, newOrder(7, 1, book.Buy, 10, 1000))[0]
	_, orders := m.Applied()
	for _, name := range []string{"resent alone", "resent twice in one proposal"} {
		t.Run(name, func(t *testing.T) {
			reqs := []wire.Request{newOrder(7, 1, book.Buy, 10, 1000)}
			if name != "resent alone" {
				reqs = append(reqs, reqs[0])
			}
			for _, res := range propose(t, m, reqs...) {
				if res != first {
					t.Fatalf("resend answered %+v, the first answer was %+v", res, first)
				}
			}
			if _, n := m.Applied(); n != orders {
				t.Fatalf("a resend was applied: %d requests, want %d", n, orders)
			}
		})
	}
	// Requests out of order within the window are each applied once.
	propose(t, m, newOrder(7, 5, book.Buy, 1, 990), newOrder(7, 3, book.Buy, 1, 990), newOrder(7, 3, book.Buy, 1, 990))
	if ts := m.Trader(7); ts.Applied != 3 || ts.High != 5 || ts.IDSum != wire.Mix(1)+wire.Mix(3)+wire.Mix(5) {
		t.Fatalf("trader state: %+v", ts)
	}
	// Far behind the window: too old to say.
	propose(t, m, newOrder(7, 5+Window, book.Buy, 1, 990))
	if res, _ := m.Result(7, 2); res.Status != wire.StatusTooOld {
		t.Fatalf("a ClOrd a window behind: %+v", res)
	}
}

// randomRequests is a seeded stream of every kind of request by a few
// traders on two symbols.
func randomRequests(seed uint64, n int) []wire.Request {
	rng := rand.New(rand.NewPCG(seed, 1))
	clOrd := map[uint64]uint64{}
	var out []wire.Request
	for len(out) < n {
		tr := uint64(rng.IntN(4) + 1)
		clOrd[tr]++
		var r wire.Request
		switch k := rng.IntN(10); {
		case k < 6:
			side := book.Side(rng.IntN(2) + 1)
			r = wire.Request{Op: wire.OpNew, Side: side, Qty: book.Qty(rng.IntN(50) + 1), Price: book.Price(1000 + rng.IntN(20) - 10)}
			switch rng.IntN(10) {
			case 0:
				r.Price = 0
			case 1:
				r.Flags = book.IOC
			case 2:
				r.Flags = book.AON
			case 3:
				r.Stop = r.Price
			}
			r.SetSymbol([]string{"IBM", "AAPL"}[rng.IntN(2)])
		case k < 8:
			r = wire.Request{Op: wire.OpCancel, Order: book.OrderID(rng.IntN(len(out)+1) + 1)}
		default:
			r = wire.Request{Op: wire.OpReplace, Order: book.OrderID(rng.IntN(len(out)+1) + 1), Qty: book.Qty(rng.IntN(20) - 10), Price: book.Price(rng.IntN(3) * (995 + rng.IntN(10)))}
		}
		r.Trader, r.ClOrd = tr, clOrd[tr]
		out = append(out, r)
	}
	return out
}

func TestMachineSnapshotRestore(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		reqs := randomRequests(seed, 2000)
		a := NewMachine(book.Config{})
		for i := 0; i < 1000; i += 7 {
			propose(t, a, reqs[i:min(i+7, 1000)]...)
		}
		var snap bytes.Buffer
		if err := a.Snapshot(&snap); err != nil {
			t.Fatal(err)
		}
		b := NewMachine(book.Config{})
		if err := b.Restore(bytes.NewReader(snap.Bytes())); err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		if a.Digest() != b.Digest() {
			t.Fatalf("seed %d: digests differ right after restore", seed)
		}
		// Resends of what was applied before the snapshot are still
		// answered from the windows.
		for _, r := range reqs[990:1000] {
			ra, _ := a.Result(r.Trader, r.ClOrd)
			rb, _ := b.Result(r.Trader, r.ClOrd)
			if ra != rb {
				t.Fatalf("seed %d: remembered result differs: %+v vs %+v", seed, ra, rb)
			}
		}
		for i := 1000; i < len(reqs); i += 5 {
			ra := propose(t, a, reqs[i:min(i+5, len(reqs))]...)
			rb := propose(t, b, reqs[i:min(i+5, len(reqs))]...)
			for j := range ra {
				if ra[j] != rb[j] {
					t.Fatalf("seed %d request %d: %+v on the original, %+v on the restored copy", seed, i+j, ra[j], rb[j])
				}
			}
		}
		if a.Digest() != b.Digest() {
			t.Fatalf("seed %d: digests differ after the same requests", seed)
		}
	}
}

func TestMachineRestoreRejectsGarbage(t *testing.T) {
	m := NewMachine(book.Config{})
	propose(t, m, newOrder(1, 1, book.Buy, 10, 1000))
	var snap bytes.Buffer
	if err := m.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()
	for _, bad := range [][]byte{nil, []byte("gomu-ob0"), good[:len(good)-1], append(append([]byte{}, good...), 0)} {
		if err := NewMachine(book.Config{}).Restore(bytes.NewReader(bad)); err == nil {
			t.Errorf("restore of %d bytes of garbage succeeded", len(bad))
		}
	}
}

func TestMachineApplyAllocs(t *testing.T) {
	m := NewMachine(book.Config{})
	p := AppendProposal(nil, 3)
	var clOrd uint64
	build := func() {
		p = AppendProposal(p[:0], 2)
		clOrd++
		r := newOrder(1, clOrd, book.Buy, 10, book.Price(990-clOrd%10))
		p = r.Append(p)
		clOrd++
		r = newOrder(2, clOrd, book.Sell, 10, book.Price(980+clOrd%10))
		p = r.Append(p)
	}
	for range 2000 { // warm the pools, maps and windows
		build()
		m.Apply(0, p)
	}
	if n := testing.AllocsPerRun(1000, func() { build(); m.Apply(0, p) }); n != 0 {
		t.Fatalf("Apply of a crossing pair allocates %.1f times", n)
	}
}
