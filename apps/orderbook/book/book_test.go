package book

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// checkBook verifies the book's internal invariants: levels strictly sorted
// worst to best, each level's totals matching its FIFO, every node reachable
// once and indexed, stops sorted in trigger order.
func checkBook(t testing.TB, b *Book) {
	t.Helper()
	seen := 0
	for _, l := range []*ladder{&b.bids, &b.asks} {
		for i, lv := range l.levels {
			if i > 0 && !l.better(lv.price, l.levels[i-1].price) {
				t.Fatalf("%v levels out of order at %d: %d after %d", l.side, i, lv.price, l.levels[i-1].price)
			}
			var q Qty
			var n int32
			prev := int32(0)
			for ni := lv.head; ni != 0; ni = b.nodes[ni].next {
				nd := &b.nodes[ni]
				if nd.prev != prev || nd.price != lv.price || nd.side != l.side || nd.open <= 0 || nd.stop != 0 || nd.flags&IOC != 0 || b.ids.get(nd.id) != ni {
					t.Fatalf("bad node %+v in %v level %d", *nd, l.side, lv.price)
				}
				q += nd.open
				n++
				prev = ni
			}
			if q != lv.qty || n != lv.n || lv.tail != prev || n == 0 {
				t.Fatalf("%v level %d: qty %d n %d, nodes hold %d in %d", l.side, lv.price, lv.qty, lv.n, q, n)
			}
			seen += int(n)
		}
	}
	for _, ss := range [][]int32{b.buyStops, b.sellStops} {
		for i, ni := range ss {
			if i > 0 && !stopFirst(&b.nodes[ni], &b.nodes[ss[i-1]]) {
				t.Fatalf("stops out of order at %d", i)
			}
			if b.nodes[ni].stop == 0 || b.ids.get(b.nodes[ni].id) != ni {
				t.Fatalf("bad stop node %+v", b.nodes[ni])
			}
		}
		seen += len(ss)
	}
	if seen != b.ids.n {
		t.Fatalf("%d orders reachable, %d indexed", seen, b.ids.n)
	}
}

func TestValidation(t *testing.T) {
	b := New(Config{})
	b.Add(Order{ID: 1, Side: Buy, Price: 10, Qty: 1}, nil)
	for _, c := range []struct {
		o    Order
		want Reason
	}{
		{Order{ID: 0, Side: Buy, Price: 10, Qty: 1}, ReasonBadID},
		{Order{ID: 1, Side: Sell, Price: 20, Qty: 1}, ReasonDuplicateID},
		{Order{ID: 2, Side: 0, Price: 10, Qty: 1}, ReasonBadSide},
		{Order{ID: 2, Side: 3, Price: 10, Qty: 1}, ReasonBadSide},
		{Order{ID: 2, Side: Buy, Price: 10, Qty: 0}, ReasonBadQty},
		{Order{ID: 2, Side: Buy, Price: 10, Qty: -1}, ReasonBadQty},
		{Order{ID: 2, Side: Buy, Price: -1, Qty: 1}, ReasonBadPrice},
		{Order{ID: 2, Side: Buy, Price: 10, Stop: -1, Qty: 1}, ReasonBadStop},
		{Order{ID: 2, Side: Buy, Price: 10, Qty: 1, Flags: 4}, ReasonBadFlags},
	} {
		before := b.AppendSnapshot(nil)
		ev := b.Add(c.o, nil)
		want := []Event{{Kind: Rejected, Order: c.o.ID, Reason: c.want}}
		if !slices.Equal(ev, want) {
			t.Errorf("Add(%+v) = %+v, want %+v", c.o, ev, want)
		}
		if !bytes.Equal(before, b.AppendSnapshot(nil)) {
			t.Errorf("Add(%+v) was rejected but changed the book", c.o)
		}
	}
	// Stops may carry conditions; they apply when the stop triggers.
	if ev := b.Add(Order{ID: 3, Side: Sell, Stop: 5, Qty: 1, Flags: FOK}, nil); ev[0].Kind != Accepted {
		t.Errorf("FOK stop: %+v", ev)
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Buy.String(), "Buy"}, {Sell.String(), "Sell"}, {Side(9).String(), "Side(9)"},
		{FOK.String(), "FOK"}, {(AON | IOC).String(), "FOK"}, {Flags(0).String(), "none"},
		{Trade.String(), "Trade"}, {EventKind(0).String(), "EventKind(0)"},
		{ReasonWouldLeaveNothing.String(), "would leave nothing"}, {Reason(99).String(), "Reason(99)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestIndex(t *testing.T) {
	x := newIndex(4)
	ref := map[OrderID]int32{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		k := OrderID(r.IntN(5000) + 1)
		if r.IntN(3) == 0 {
			k = OrderID(r.Uint64() | 1)
		}
		if v, ok := ref[k]; ok {
			if got := x.get(k); got != v {
				t.Fatalf("get(%d) = %d, want %d", k, got, v)
			}
			x.del(k)
			delete(ref, k)
		} else {
			if got := x.get(k); got != 0 {
				t.Fatalf("get(%d) = %d for a missing key", k, got)
			}
			v := int32(i + 1)
			x.put(k, v)
			ref[k] = v
		}
		if x.n != len(ref) {
			t.Fatalf("n = %d, want %d", x.n, len(ref))
		}
	}
	for k, v := range ref {
		if x.get(k) != v {
			t.Fatalf("get(%d) != %d at the end", k, v)
		}
	}
}

func TestQueries(t *testing.T) {
	b := New(Config{DepthLevels: 2, MarketPrice: 7})
	for i, o := range []Order{
		{Side: Buy, Price: 10, Qty: 5}, {Side: Buy, Price: 9, Qty: 5}, {Side: Buy, Price: 10, Qty: 3},
		{Side: Buy, Price: 8, Qty: 1}, {Side: Sell, Price: 12, Qty: 4}, {Side: Sell, Price: 11, Qty: 2},
		{Side: Sell, Stop: 2, Qty: 1}, {Side: Buy, Stop: 20, Price: 21, Qty: 1}, {Side: Buy, Stop: 15, Qty: 1},
	} {
		o.ID = OrderID(i + 1)
		b.Add(o, nil)
	}
	bid, ask := b.BBO()
	if bid != (Level{10, 8, 2}) || ask != (Level{11, 2, 1}) {
		t.Errorf("BBO = %+v %+v", bid, ask)
	}
	if d := b.Depth(Buy, nil); !slices.Equal(d, []Level{{10, 8, 2}, {9, 5, 1}}) {
		t.Errorf("bid depth %+v", d)
	}
	if d := b.Depth(Sell, nil); !slices.Equal(d, []Level{{11, 2, 1}, {12, 4, 1}}) {
		t.Errorf("ask depth %+v", d)
	}
	var ids []OrderID
	b.Each(func(o Order, open Qty) { ids = append(ids, o.ID) })
	if want := []OrderID{1, 3, 2, 4, 6, 5, 9, 8, 7}; !slices.Equal(ids, want) {
		t.Errorf("Each order %v, want %v", ids, want)
	}
	if o, open, ok := b.Order(8); !ok || open != 1 || o != (Order{ID: 8, Side: Buy, Price: 21, Stop: 20, Qty: 1}) {
		t.Errorf("Order(8) = %+v %d %v", o, open, ok)
	}
	if !b.StopPending(8) || b.StopPending(1) || b.StopPending(99) {
		t.Errorf("StopPending wrong")
	}
	if _, _, ok := b.Order(99); ok {
		t.Errorf("Order(99) found")
	}
	if b.Len() != 9 || b.MarketPrice() != 7 {
		t.Errorf("Len %d MarketPrice %d", b.Len(), b.MarketPrice())
	}
}

func TestMarket(t *testing.T) {
	m := NewMarket(Config{})
	for _, s := range []string{"", "ibm", "TOO.LONG.SYMBOL.X", "A-B", "A B"} {
		if ValidSymbol([]byte(s)) || m.Book([]byte(s)) != nil {
			t.Errorf("symbol %q accepted", s)
		}
	}
	for _, s := range []string{"MSFT", "A", "BRK.B", "1234567890ABCDEF"} {
		if !ValidSymbol([]byte(s)) || m.Book([]byte(s)) == nil {
			t.Errorf("symbol %q refused", s)
		}
	}
	if got := m.Symbols(); !slices.Equal(got, []string{"1234567890ABCDEF", "A", "BRK.B", "MSFT"}) {
		t.Errorf("Symbols = %v", got)
	}
	sym := []byte("MSFT")
	if n := testing.AllocsPerRun(100, func() { m.Book(sym) }); n != 0 {
		t.Errorf("Book lookup allocates %v", n)
	}
	if m.Find([]byte("IBM")) != nil || len(m.Symbols()) != 4 {
		t.Errorf("Find created a book")
	}
	m.Book(sym).Add(Order{ID: 1, Side: Buy, Price: 5, Qty: 5}, nil)
	m.Book([]byte("A")).Add(Order{ID: 1, Side: Sell, Stop: 3, Qty: 5}, nil)
	snap := m.AppendSnapshot(nil)
	m2, err := RestoreMarket(snap, m.Config())
	if err != nil {
		t.Fatal(err)
	}
	if m2.Digest() != m.Digest() || !bytes.Equal(m2.AppendSnapshot(nil), snap) {
		t.Errorf("restored market differs")
	}
	if _, err := RestoreMarket(append(snap, 0), Config{}); err == nil {
		t.Errorf("trailing byte accepted")
	}
	for i := 0; i < len(snap); i++ {
		if _, err := RestoreMarket(snap[:i], Config{}); err == nil {
			t.Fatalf("snapshot cut at %d of %d accepted", i, len(snap))
		}
	}
	m.Book(sym).Cancel(1, nil)
	if m2.Digest() == m.Digest() {
		t.Errorf("digest did not change")
	}
}

func TestRestoreConcatenated(t *testing.T) {
	a, c := New(Config{DepthLevels: 3}), New(Config{MarketPrice: 100})
	a.Add(Order{ID: 1, Side: Buy, Price: 5, Qty: 5, Flags: AON}, nil)
	c.Add(Order{ID: 1, Side: Sell, Price: 6, Qty: 5}, nil)
	data := c.AppendSnapshot(a.AppendSnapshot(nil))
	a2, rest, err := Restore(data)
	if err != nil {
		t.Fatal(err)
	}
	c2, rest, err := Restore(rest)
	if err != nil || len(rest) != 0 {
		t.Fatalf("second book: %v, %d bytes left", err, len(rest))
	}
	if !bytes.Equal(a2.AppendSnapshot(nil), a.AppendSnapshot(nil)) || !bytes.Equal(c2.AppendSnapshot(nil), c.AppendSnapshot(nil)) {
		t.Errorf("restored books differ")
	}
	if a2.Config().DepthLevels != 3 || c2.MarketPrice() != 100 {
		t.Errorf("config or market price lost: %+v %d", a2.Config(), c2.MarketPrice())
	}
	bad := a.AppendSnapshot(nil)
	bad[len(bad)-1] = 0 // the order's arrival number
	if _, _, err := Restore(bad); err == nil {
		t.Errorf("arrival 0 accepted")
	}
}

// TestAllocs asserts that the steady-state paths allocate nothing.
func TestAllocs(t *testing.T) {
	b := New(Config{Capacity: 4096})
	ev := make([]Event, 0, 64)
	id := OrderID(0)
	for i := 0; i < 1000; i++ {
		id++
		b.Add(Order{ID: id, Side: Buy, Price: Price(900 + i%50), Qty: 10}, ev[:0])
		id++
		b.Add(Order{ID: id, Side: Sell, Price: Price(1001 + i%50), Qty: 10}, ev[:0])
	}
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"insert+cancel", func() {
			id++
			ev = b.Add(Order{ID: id, Side: Buy, Price: 960, Qty: 10}, ev[:0])
			ev = b.Cancel(id, ev[:0])
		}},
		{"new level+cancel", func() {
			id++
			ev = b.Add(Order{ID: id, Side: Sell, Price: 1000, Qty: 10}, ev[:0])
			ev = b.Cancel(id, ev[:0])
		}},
		{"replace", func() {
			ev = b.Replace(2, 5, 0, ev[:0])
			ev = b.Replace(2, -5, 1020, ev[:0])
			ev = b.Replace(2, 0, 1001, ev[:0])
		}},
		{"crossing match", func() {
			id++
			ev = b.Add(Order{ID: id, Side: Sell, Price: 999, Qty: 10}, ev[:0])
			id++
			ev = b.Add(Order{ID: id, Side: Buy, Price: 1000, Qty: 15, Flags: IOC}, ev[:0])
		}},
		{"stop", func() {
			id++
			ev = b.Add(Order{ID: id, Side: Buy, Stop: 5000, Qty: 10}, ev[:0])
			ev = b.Cancel(id, ev[:0])
		}},
	} {
		c.fn() // let pools reach their working size
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
	checkBook(t, b)
}

// refBook is a deliberately simple order book for plain limit, market and
// IOC orders, Cancel and Replace: a flat list scanned in full for every
// match. The differential test holds the engine to it.
type refBook struct {
	orders []*refOrder
	seq    int
	depth  int
}

type refOrder struct {
	id    OrderID
	side  Side
	price Price
	qty   Qty
	open  Qty
	seq   int
}

// ahead reports whether resting order a has priority over b (same side).
func (a *refOrder) ahead(b *refOrder) bool {
	if a.price != b.price {
		if a.side == Buy {
			return a.price > b.price
		}
		return a.price < b.price
	}
	return a.seq < b.seq
}

func (r *refBook) find(id OrderID) int {
	for i, o := range r.orders {
		if o.id == id {
			return i
		}
	}
	return -1
}

func (r *refBook) levels(side Side) []Level {
	var os []*refOrder
	for _, o := range r.orders {
		if o.side == side {
			os = append(os, o)
		}
	}
	sort.Slice(os, func(i, j int) bool { return os[i].ahead(os[j]) })
	var ls []Level
	for _, o := range os {
		if n := len(ls); n > 0 && ls[n-1].Price == o.price {
			ls[n-1].Qty += o.open
			ls[n-1].Orders++
		} else {
			ls = append(ls, Level{o.price, o.open, 1})
		}
	}
	return ls
}

func (r *refBook) top(k int) [2][]Level {
	b, a := r.levels(Buy), r.levels(Sell)
	return [2][]Level{b[:min(k, len(b))], a[:min(k, len(a))]}
}

func (r *refBook) diff(before [2][]Level, ev []Event) []Event {
	after := r.top(r.depth)
	top := func(ls []Level) []Level { return ls[:min(1, len(ls))] }
	if !slices.Equal(top(before[0]), top(after[0])) || !slices.Equal(top(before[1]), top(after[1])) {
		ev = append(ev, Event{Kind: BBOChanged})
	}
	if !slices.Equal(before[0], after[0]) || !slices.Equal(before[1], after[1]) {
		ev = append(ev, Event{Kind: DepthChanged})
	}
	return ev
}

func (r *refBook) enter(o *refOrder, ioc bool, ev []Event) []Event {
	for o.open > 0 {
		var best *refOrder
		for _, x := range r.orders {
			if x.side != o.side && crosses(o.side, o.price, x.price) && (best == nil || x.ahead(best)) {
				best = x
			}
		}
		if best == nil {
			break
		}
		q := min(o.open, best.open)
		o.open -= q
		best.open -= q
		ev = append(ev,
			Event{Kind: Filled, Order: o.id, Other: best.id, Price: best.price, Qty: q, Open: o.open},
			Event{Kind: Filled, Order: best.id, Other: o.id, Price: best.price, Qty: q, Open: best.open},
			Event{Kind: Trade, Order: o.id, Other: best.id, Price: best.price, Qty: q})
		if best.open == 0 {
			r.orders = slices.Delete(r.orders, r.find(best.id), r.find(best.id)+1)
		}
	}
	if o.open > 0 {
		if o.price == 0 || ioc {
			return append(ev, Event{Kind: Cancelled, Order: o.id, Qty: o.open, Reason: ReasonNoLiquidity})
		}
		r.seq++
		o.seq = r.seq
		r.orders = append(r.orders, o)
	}
	return ev
}

func (r *refBook) add(o Order) []Event {
	if r.find(o.ID) >= 0 {
		return []Event{{Kind: Rejected, Order: o.ID, Reason: ReasonDuplicateID}}
	}
	before := r.top(r.depth)
	ev := []Event{{Kind: Accepted, Order: o.ID, Price: o.Price, Qty: o.Qty}}
	ev = r.enter(&refOrder{id: o.ID, side: o.Side, price: o.Price, qty: o.Qty, open: o.Qty}, o.Flags&IOC != 0, ev)
	return r.diff(before, ev)
}

func (r *refBook) cancel(id OrderID) []Event {
	i := r.find(id)
	if i < 0 {
		return []Event{{Kind: CancelRejected, Order: id, Reason: ReasonUnknownOrder}}
	}
	before := r.top(r.depth)
	o := r.orders[i]
	r.orders = slices.Delete(r.orders, i, i+1)
	return r.diff(before, []Event{{Kind: Cancelled, Order: id, Qty: o.open}})
}

func (r *refBook) replace(id OrderID, delta Qty, price Price) []Event {
	i := r.find(id)
	if i < 0 {
		return []Event{{Kind: ReplaceRejected, Order: id, Reason: ReasonUnknownOrder}}
	}
	o := r.orders[i]
	if o.open+delta <= 0 {
		return []Event{{Kind: ReplaceRejected, Order: id, Reason: ReasonWouldLeaveNothing}}
	}
	if price == 0 {
		price = o.price
	}
	before := r.top(r.depth)
	moves := delta > 0 || price != o.price
	o.open += delta
	o.qty += delta
	ev := []Event{{Kind: Replaced, Order: id, Price: price, Qty: o.open}}
	if moves {
		r.orders = slices.Delete(r.orders, i, i+1)
		o.price = price
		ev = r.enter(o, false, ev)
	}
	return r.diff(before, ev)
}

// cmd is one random command.
type cmd struct {
	op    byte // 'a' add, 'c' cancel, 'r' replace
	o     Order
	id    OrderID
	delta Qty
	price Price
}

func (c cmd) apply(b *Book, ev []Event) []Event {
	switch c.op {
	case 'a':
		return b.Add(c.o, ev)
	case 'c':
		return b.Cancel(c.id, ev)
	}
	return b.Replace(c.id, c.delta, c.price, ev)
}

// randomCmds makes a command stream around price 1000. With fancy, orders
// also carry AON and FOK and stops.
func randomCmds(r *rand.Rand, n int, fancy bool) []cmd {
	cmds := make([]cmd, 0, n)
	next := OrderID(0)
	for len(cmds) < n {
		switch k := r.IntN(20); {
		case k < 3 && next > 0:
			cmds = append(cmds, cmd{op: 'c', id: OrderID(r.IntN(int(next))) + 1})
		case k < 5 && next > 0:
			c := cmd{op: 'r', id: OrderID(r.IntN(int(next))) + 1, delta: Qty(r.IntN(41) - 20)}
			if r.IntN(2) == 0 {
				c.price = Price(990 + r.IntN(21))
			}
			cmds = append(cmds, c)
		default:
			next++
			o := Order{ID: next, Side: Side(1 + r.IntN(2)), Qty: Qty(1 + r.IntN(50))}
			if o.Side == Buy {
				o.Price = Price(985 + r.IntN(20))
			} else {
				o.Price = Price(996 + r.IntN(20))
			}
			switch r.IntN(10) {
			case 0:
				o.Price = 0
			case 1:
				o.Flags = IOC
			}
			if fancy {
				switch r.IntN(12) {
				case 0:
					o.Flags |= AON
				case 1:
					o.Flags = FOK
				case 2, 3:
					o.Stop = Price(990 + r.IntN(21))
				}
			}
			cmds = append(cmds, cmd{op: 'a', o: o})
		}
	}
	return cmds
}

// TestDifferential holds the engine to the reference book on random
// streams of plain orders.
func TestDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		depth := 1 + r.IntN(6)
		b := New(Config{DepthLevels: depth, Capacity: 4})
		ref := &refBook{depth: depth}
		var ev []Event
		for i, c := range randomCmds(r, 3000, false) {
			var want []Event
			switch c.op {
			case 'a':
				want = ref.add(c.o)
			case 'c':
				want = ref.cancel(c.id)
			default:
				want = ref.replace(c.id, c.delta, c.price)
			}
			ev = c.apply(b, ev[:0])
			if !slices.Equal(ev, want) {
				t.Fatalf("seed %d, command %d %+v:\n got %v\nwant %v", seed, i, c, ev, want)
			}
			if i%100 == 0 {
				checkBook(t, b)
			}
		}
		checkBook(t, b)
		var got []string
		b.Each(func(o Order, open Qty) { got = append(got, fmt.Sprint(o.ID, o.Price, o.Qty, open)) })
		var want []string
		for _, s := range []Side{Buy, Sell} {
			var os []*refOrder
			for _, o := range ref.orders {
				if o.side == s {
					os = append(os, o)
				}
			}
			sort.Slice(os, func(i, j int) bool { return os[i].ahead(os[j]) })
			for _, o := range os {
				want = append(want, fmt.Sprint(o.id, o.price, o.qty, o.open))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: final books differ:\n got %v\nwant %v", seed, got, want)
		}
	}
}

// TestSnapshotContinues restores snapshots taken at random points of random
// streams with every feature, and checks that the restored book answers the
// rest of the stream with the same events and ends with the same bytes.
func TestSnapshotContinues(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		cmds := randomCmds(r, 2000, true)
		b := New(Config{MarketPrice: 1000})
		var ev, ev2 []Event
		cut := r.IntN(len(cmds))
		var b2 *Book
		for i, c := range cmds {
			if i == cut {
				snap := b.AppendSnapshot(nil)
				var err error
				var rest []byte
				if b2, rest, err = Restore(snap); err != nil || len(rest) != 0 {
					t.Fatalf("seed %d: restore: %v, %d bytes left", seed, err, len(rest))
				}
				if !bytes.Equal(b2.AppendSnapshot(nil), snap) {
					t.Fatalf("seed %d: restored snapshot differs", seed)
				}
			}
			ev = c.apply(b, ev[:0])
			if b2 != nil {
				ev2 = c.apply(b2, ev2[:0])
				if !slices.Equal(ev, ev2) {
					t.Fatalf("seed %d command %d: restored book answered\n%v\nnot\n%v", seed, i, ev2, ev)
				}
			}
			if i%50 == 0 {
				checkBook(t, b)
			}
		}
		checkBook(t, b)
		if b2 != nil && digest(b.AppendSnapshot(nil)) != digest(b2.AppendSnapshot(nil)) {
			t.Fatalf("seed %d: digests differ at the end", seed)
		}
	}
}

// TestEventRules checks, on random streams with every feature, the rules
// every command's events follow.
func TestEventRules(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	b := New(Config{MarketPrice: 1000})
	var ev []Event
	for i, c := range randomCmds(r, 20000, true) {
		ev = c.apply(b, ev[:0])
		if len(ev) == 0 {
			t.Fatalf("command %d: no events", i)
		}
		switch ev[0].Kind {
		case Rejected, CancelRejected, ReplaceRejected:
			if len(ev) != 1 {
				t.Fatalf("command %d: rejection with more events %v", i, ev)
			}
		}
		var bbo, depth int
		for j, e := range ev {
			switch e.Kind {
			case BBOChanged:
				bbo++
			case DepthChanged:
				depth++
			case Trade:
				if j < 2 || ev[j-2].Kind != Filled || ev[j-1].Kind != Filled || ev[j-2].Order != e.Order || ev[j-1].Order != e.Other {
					t.Fatalf("command %d: trade %d not after its two fills: %v", i, j, ev)
				}
			}
		}
		if bbo > 1 || depth > 1 || (bbo == 1 && depth == 0) {
			t.Fatalf("command %d: %d BBOChanged, %d DepthChanged", i, bbo, depth)
		}
	}
	checkBook(t, b)
}

// BenchmarkInsert adds non-crossing limit orders within 50 ticks of the mid
// and cancels the oldest, keeping 10,000 orders in the book: one op is one
// Add and one Cancel.
func BenchmarkInsert(b *testing.B) {
	const live = 10000
	const mid = 100000
	r := rand.New(rand.NewPCG(1, 1))
	orders := make([]Order, 1<<16)
	for i := range orders {
		o := Order{Side: Side(1 + r.IntN(2)), Qty: Qty(1 + r.IntN(100))}
		if o.Side == Buy {
			o.Price = Price(mid - 1 - r.IntN(50))
		} else {
			o.Price = Price(mid + 1 + r.IntN(50))
		}
		orders[i] = o
	}
	bk := New(Config{Capacity: 2 * live})
	ev := make([]Event, 0, 64)
	id := OrderID(0)
	add := func() {
		id++
		o := orders[int(id)&(len(orders)-1)]
		o.ID = id
		ev = bk.Add(o, ev[:0])
	}
	for i := 0; i < live; i++ {
		add()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		add()
		ev = bk.Cancel(id-live, ev[:0])
	}
	b.StopTimer()
	if bk.Len() != live {
		b.Fatalf("book holds %d orders, want %d", bk.Len(), live)
	}
}

// BenchmarkMatch sends orders that cross and fill against a book kept deep
// on both sides: one op is an aggressive order (filling one to a few resting
// orders) and the resting order that replaces what it took.
func BenchmarkMatch(b *testing.B) {
	const mid = 100000
	r := rand.New(rand.NewPCG(2, 2))
	bk := New(Config{Capacity: 1 << 14})
	ev := make([]Event, 0, 256)
	id := OrderID(0)
	for i := 0; i < 2000; i++ {
		id++
		bk.Add(Order{ID: id, Side: Buy, Price: Price(mid - 1 - r.IntN(50)), Qty: 10}, nil)
		id++
		bk.Add(Order{ID: id, Side: Sell, Price: Price(mid + 1 + r.IntN(50)), Qty: 10}, nil)
	}
	type pair struct{ agg, rest Order }
	ops := make([]pair, 1<<12)
	for i := range ops {
		s := Side(1 + r.IntN(2))
		q := Qty(1 + r.IntN(25))
		p := pair{agg: Order{Side: s, Qty: q, Flags: IOC}, rest: Order{Side: s.opposite(), Qty: q}}
		if s == Buy {
			p.agg.Price = mid + 50
			p.rest.Price = Price(mid + 1 + r.IntN(50))
		} else {
			p.agg.Price = mid - 50
			p.rest.Price = Price(mid - 1 - r.IntN(50))
		}
		ops[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	trades := 0
	for i := 0; i < b.N; i++ {
		p := ops[i&(len(ops)-1)]
		id++
		p.agg.ID = id
		ev = bk.Add(p.agg, ev[:0])
		for _, e := range ev {
			if e.Kind == Trade {
				trades++
			}
		}
		id++
		p.rest.ID = id
		ev = bk.Add(p.rest, ev[:0])
	}
	b.ReportMetric(float64(trades)/float64(b.N), "trades/op")
}

// BenchmarkAdd times inserts alone: non-crossing limit orders within ±50
// ticks of the mid into a book of up to 10 000 orders, cleared (untimed)
// whenever it is full. It reports inserts per second.
func BenchmarkAdd(b *testing.B) {
	const live = 10000
	const mid = 100000
	r := rand.New(rand.NewPCG(3, 3))
	orders := make([]Order, live)
	for i := range orders {
		o := Order{Side: Side(1 + r.IntN(2)), Qty: Qty(1 + r.IntN(100))}
		if o.Side == Buy {
			o.Price = Price(mid - 1 - r.IntN(50))
		} else {
			o.Price = Price(mid + 1 + r.IntN(50))
		}
		orders[i] = o
	}
	bk := New(Config{Capacity: 2 * live})
	ev := make([]Event, 0, 64)
	id := OrderID(0)
	clear := func() {
		for k := OrderID(live - 1); k < live; k-- {
			ev = bk.Cancel(id-k, ev[:0])
		}
	}
	for i := range orders { // one untimed round grows the pools
		id++
		o := orders[i]
		o.ID = id
		ev = bk.Add(o, ev[:0])
	}
	clear()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := i % live
		if n == 0 && i > 0 {
			b.StopTimer()
			clear()
			b.StartTimer()
		}
		id++
		o := orders[n]
		o.ID = id
		ev = bk.Add(o, ev[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}
