package trader

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
)

// StartMid is every symbol's first mid price, in ticks.
const StartMid book.Price = 10_000

// minMid keeps the walk far enough from 0 that every price the generator
// derives from the mid stays positive.
const minMid book.Price = 100

// MaxOpen bounds the resting orders and stops a trader keeps: with that
// many open, an order that would rest becomes a cancel instead, so the
// books stay the working set of the run, not its history.
const MaxOpen = 32

// Market is the mid prices every trader of a run shares: one random walk
// per symbol, stepped by the traders as they go (an atomic add, so the
// walk costs no lock and no allocation). The walk's path depends on how
// the traders interleave; with one trader and a seed it is reproducible.
type Market struct {
	syms [][wire.MaxSymbol]byte
	lens []uint8
	mids []atomic.Int64
}

// NewMarket starts every symbol's walk at StartMid.
func NewMarket(symbols []string) *Market {
	m := &Market{syms: make([][wire.MaxSymbol]byte, len(symbols)), lens: make([]uint8, len(symbols)), mids: make([]atomic.Int64, len(symbols))}
	for i, s := range symbols {
		m.lens[i] = uint8(copy(m.syms[i][:], s))
		m.mids[i].Store(int64(StartMid))
	}
	return m
}

// Mid is symbol i's mid price now.
func (m *Market) Mid(i int) book.Price { return book.Price(m.mids[i].Load()) }

// step moves symbol i's mid by d ticks, never below minMid.
func (m *Market) step(i int, d int64) book.Price {
	v := m.mids[i].Add(d)
	if v < int64(minMid) {
		v = m.mids[i].Add(int64(minMid) - v)
	}
	return book.Price(v)
}

// openOrder is one of the trader's orders the exchange said is open.
type openOrder struct {
	id    book.OrderID
	sym   int
	side  book.Side
	price book.Price
	open  book.Qty
	stop  bool
}

// Gen is one trader's order flow: it picks each order's kind by the mix,
// prices it around the symbol's mid, and remembers which of the trader's
// orders rest (from the exchange's answers) so that cancels and replaces
// name real orders. Nothing in Next or Done allocates.
type Gen struct {
	mkt  *Market
	cum  [numKinds]int // cumulative weights
	pcg  rand.PCG
	rng  rand.Rand
	open [MaxOpen]openOrder
	n    int // open orders in open
}

// NewGen returns trader index's generator: the same seed and index give
// the same choices for the same answers.
func NewGen(mkt *Market, mix Mix, seed uint64, index int) *Gen {
	g := &Gen{mkt: mkt}
	sum := 0
	for k, w := range mix {
		sum += w
		g.cum[k] = sum
	}
	g.pcg.Seed(seed, uint64(index)*0x9e3779b97f4a7c15+1)
	g.rng = *rand.New(&g.pcg)
	return g
}

// Open is how many of the trader's orders the generator believes open.
func (g *Gen) Open() int { return g.n }

func (g *Gen) pick() Kind {
	r := g.rng.IntN(g.cum[numKinds-1])
	for k, c := range g.cum {
		if r < c {
			return Kind(k)
		}
	}
	return KindLimit
}

func (g *Gen) side() book.Side {
	if g.rng.IntN(2) == 0 {
		return book.Buy
	}
	return book.Sell
}

func (g *Gen) span(n int) book.Price { return book.Price(g.rng.IntN(n)) }

// Next fills req with the trader's next order and says what kind it is.
// ClOrd is left 0 for the client to number; Trader too.
func (g *Gen) Next(req *wire.Request) Kind {
	k := g.pick()
	switch {
	case (k == KindCancel || k == KindReplace) && g.n == 0:
		k = KindLimit
	case (k == KindLimit || k == KindCross || k == KindStop) && g.n == MaxOpen:
		k = KindCancel
	}
	*req = wire.Request{}
	if k == KindCancel || k == KindReplace {
		o := &g.open[g.rng.IntN(g.n)]
		req.Order = o.id
		req.Symbol, req.SymLen = g.mkt.syms[o.sym], g.mkt.lens[o.sym]
		if k == KindCancel {
			req.Op = wire.OpCancel
			return k
		}
		req.Op = wire.OpReplace
		// A signed change that always leaves something open: down to
		// one lot, or up by as much as ten.
		if o.open > 1 && g.rng.IntN(2) == 0 {
			req.Qty = -book.Qty(1 + g.rng.IntN(int(min(o.open-1, 10))))
		} else {
			req.Qty = book.Qty(1 + g.rng.IntN(10))
		}
		// Half the replaces move a resting order a tick or two, staying
		// on its side of the mid; a stop keeps its (market) price.
		if !o.stop && g.rng.IntN(2) == 0 {
			mid := g.mkt.Mid(o.sym)
			if o.side == book.Buy {
				req.Price = max(1, min(mid-1, o.price+g.span(5)-2))
			} else {
				req.Price = max(mid+1, o.price+g.span(5)-2)
			}
		}
		return k
	}

	sym := g.rng.IntN(len(g.mkt.mids))
	req.Symbol, req.SymLen = g.mkt.syms[sym], g.mkt.lens[sym]
	req.Op = wire.OpNew
	// One order in four moves the mid a tick.
	mid := g.mkt.Mid(sym)
	switch g.rng.IntN(8) {
	case 0:
		mid = g.mkt.step(sym, 1)
	case 1:
		mid = g.mkt.step(sym, -1)
	}
	side := g.side()
	req.Side = side
	// at is the best price of side's own book at the mid (one tick
	// away); through is the other side's, where an order trades.
	dir := book.Price(1)
	if side == book.Sell {
		dir = -1
	}
	switch k {
	case KindLimit:
		req.Price = mid - dir*(1+g.span(5))
		req.Qty = book.Qty(1 + g.rng.IntN(100))
	case KindCross:
		req.Price = mid + dir*(1+g.span(3))
		req.Qty = book.Qty(1 + g.rng.IntN(50))
	case KindMarket:
		req.Qty = book.Qty(1 + g.rng.IntN(20))
	case KindIOC, KindFOK:
		req.Price = mid + dir*(1+g.span(2))
		req.Qty = book.Qty(1 + g.rng.IntN(20))
		req.Flags = book.IOC
		if k == KindFOK {
			req.Flags = book.FOK
		}
	case KindStop:
		// A buy stop above the mid, a sell stop below; half are
		// stop-limit orders, priced two ticks past their stop.
		req.Stop = mid + dir*(2+g.span(5))
		if g.rng.IntN(2) == 0 {
			req.Price = req.Stop + dir*2
		}
		req.Qty = book.Qty(1 + g.rng.IntN(20))
	}
	return k
}

// Done takes the exchange's final answer to the order Next made (req as
// sent): it tracks which of the trader's orders are open.
func (g *Gen) Done(k Kind, req *wire.Request, res *wire.Result) {
	switch req.Op {
	case wire.OpNew:
		if res.Status == wire.StatusOK && (res.State == wire.StateResting || res.State == wire.StateStop) && g.n < MaxOpen {
			g.open[g.n] = openOrder{id: res.Order, sym: g.symIndex(req), side: req.Side, price: req.Price,
				open: res.Open, stop: res.State == wire.StateStop}
			g.n++
		}
	case wire.OpCancel:
		g.drop(req.Order)
	case wire.OpReplace:
		i := g.find(req.Order)
		if i < 0 {
			return
		}
		if res.Status == wire.StatusOK && (res.State == wire.StateResting || res.State == wire.StateStop) {
			o := &g.open[i]
			o.open = res.Open
			o.stop = res.State == wire.StateStop
			if req.Price != 0 {
				o.price = req.Price
			}
			return
		}
		// Filled by the replace, or gone before it (filled by another
		// trader's order): either way not open any more.
		g.drop(req.Order)
	}
}

func (g *Gen) symIndex(req *wire.Request) int {
	for i := range g.mkt.syms {
		if g.mkt.lens[i] == req.SymLen && g.mkt.syms[i] == req.Symbol {
			return i
		}
	}
	return 0
}

func (g *Gen) find(id book.OrderID) int {
	for i := 0; i < g.n; i++ {
		if g.open[i].id == id {
			return i
		}
	}
	return -1
}

func (g *Gen) drop(id book.OrderID) {
	if i := g.find(id); i >= 0 {
		g.n--
		g.open[i] = g.open[g.n]
	}
}
