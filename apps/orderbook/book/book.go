package book

import "fmt"

// node is an order the book holds: resting in a level's FIFO (prev, next
// link the nodes of the level) or waiting as a stop. Nodes live in one slab,
// Book.nodes, and are named by their number there; number 0 is never used,
// so it can mean "none". Free nodes are chained through next.
type node struct {
	id    OrderID
	price Price
	stop  Price // nonzero only while the order waits for its trigger
	qty   Qty   // the order's quantity, as changed by Replace
	open  Qty
	seq   uint64 // arrival number; orders stops of equal stop price
	prev  int32
	next  int32
	side  Side
	flags Flags
}

// level is one price of one side: the FIFO of the orders resting there.
type level struct {
	price Price
	qty   Qty
	n     int32
	head  int32
	tail  int32
}

// ladder is one side of the visible book: its levels sorted from worst to
// best, so the best level is the last one. Most activity happens at the top
// of the book, so most inserts and removals of levels move few elements.
type ladder struct {
	side   Side
	levels []level
}

// better reports whether price a is better than b on this side.
func (l *ladder) better(a, b Price) bool {
	if l.side == Buy {
		return a > b
	}
	return a < b
}

// find returns the index of the level at price p and true, or the index
// where a level at p belongs and false.
func (l *ladder) find(p Price) (int, bool) {
	lv := l.levels
	n := len(lv)
	lo := max(n-4, 0)
	// Look at the few best levels first: most orders land there.
	for i := n - 1; i >= lo; i-- {
		if lv[i].price == p {
			return i, true
		}
		if l.better(p, lv[i].price) {
			return i + 1, false
		}
	}
	// lv[lo:] are all better than p: binary search the rest for the first
	// level not worse than p.
	i, j := 0, lo
	for i < j {
		h := int(uint(i+j) >> 1)
		if l.better(p, lv[h].price) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i, i < lo && lv[i].price == p
}

func (l *ladder) insert(i int, p Price) *level {
	l.levels = append(l.levels, level{})
	copy(l.levels[i+1:], l.levels[i:])
	l.levels[i] = level{price: p}
	return &l.levels[i]
}

func (l *ladder) remove(i int) {
	copy(l.levels[i:], l.levels[i+1:])
	l.levels = l.levels[:len(l.levels)-1]
}

// crosses reports whether an order on side s with limit lim (0: market)
// trades with a resting order at price p.
func crosses(s Side, lim, p Price) bool {
	switch {
	case lim == 0:
		return true
	case s == Buy:
		return p <= lim
	default:
		return p >= lim
	}
}

// Book is the order book of one instrument. It is not safe for concurrent
// use.
type Book struct {
	cfg Config
	mp  Price  // market price; 0: unknown
	seq uint64 // last arrival number given out
	// traded is set when the running command trades: only then can stops
	// trigger.
	traded bool
	nodes  []node // slab; nodes[0] unused
	free   int32  // first free node; 0: none
	ids    index
	bids   ladder
	asks   ladder
	// Pending stops per side, sorted so that the one to trigger first is
	// last.
	buyStops  []int32
	sellStops []int32
	// The best levels as they were when the running command started, to
	// tell whether it changed the BBO or the depth.
	prevBids []Level
	prevAsks []Level
}

// New returns an empty book.
func New(cfg Config) *Book {
	cfg = cfg.normalized()
	b := &Book{
		cfg:      cfg,
		mp:       cfg.MarketPrice,
		nodes:    make([]node, 1, cfg.Capacity+1),
		ids:      newIndex(cfg.Capacity),
		bids:     ladder{side: Buy, levels: make([]level, 0, 256)},
		asks:     ladder{side: Sell, levels: make([]level, 0, 256)},
		prevBids: make([]Level, 0, cfg.DepthLevels),
		prevAsks: make([]Level, 0, cfg.DepthLevels),
	}
	return b
}

// Config is the book's configuration (with defaults filled in).
func (b *Book) Config() Config { return b.cfg }

// SetMarketPrice sets the market (reference) price. It triggers no stop by
// itself; see the package documentation.
func (b *Book) SetMarketPrice(p Price) { b.mp = p }

// MarketPrice is the price of the last trade, or what SetMarketPrice set
// since; 0 if unknown.
func (b *Book) MarketPrice() Price { return b.mp }

// Len is the number of live orders: resting and pending stops.
func (b *Book) Len() int { return b.ids.n }

func (b *Book) ladder(s Side) *ladder {
	if s == Buy {
		return &b.bids
	}
	return &b.asks
}

func (b *Book) newNode() int32 {
	if ni := b.free; ni != 0 {
		b.free = b.nodes[ni].next
		return ni
	}
	b.nodes = append(b.nodes, node{})
	return int32(len(b.nodes) - 1)
}

// release forgets a node's order and frees the node.
func (b *Book) release(ni int32) {
	n := &b.nodes[ni]
	b.ids.del(n.id)
	*n = node{next: b.free}
	b.free = ni
}

func (b *Book) check(o Order) Reason {
	switch {
	case o.ID == 0:
		return ReasonBadID
	case o.Side != Buy && o.Side != Sell:
		return ReasonBadSide
	case o.Qty <= 0:
		return ReasonBadQty
	case o.Price < 0:
		return ReasonBadPrice
	case o.Stop < 0:
		return ReasonBadStop
	case o.Flags&^allFlags != 0:
		return ReasonBadFlags
	case b.ids.get(o.ID) != 0:
		return ReasonDuplicateID
	}
	return ReasonNone
}

// Add enters an order and appends the events it causes to ev.
func (b *Book) Add(o Order, ev []Event) []Event {
	if r := b.check(o); r != ReasonNone {
		return append(ev, Event{Kind: Rejected, Order: o.ID, Reason: r})
	}
	b.mark()
	b.traded = false
	ni := b.newNode()
	b.seq++
	b.nodes[ni] = node{id: o.ID, price: o.Price, stop: o.Stop, qty: o.Qty, open: o.Qty, seq: b.seq, side: o.Side, flags: o.Flags}
	b.ids.put(o.ID, ni)
	ev = append(ev, Event{Kind: Accepted, Order: o.ID, Price: o.Price, Qty: o.Qty})
	if o.Stop != 0 {
		if !b.reached(o.Side, o.Stop) {
			b.park(ni)
			return b.diff(ev)
		}
		b.nodes[ni].stop = 0
		ev = append(ev, Event{Kind: StopTriggered, Order: o.ID, Price: b.mp, Qty: o.Qty})
	}
	ev = b.enter(ni, ev)
	ev = b.cascade(ev)
	return b.diff(ev)
}

// Cancel cancels a resting order or a pending stop.
func (b *Book) Cancel(id OrderID, ev []Event) []Event {
	ni := b.ids.get(id)
	if ni == 0 {
		return append(ev, Event{Kind: CancelRejected, Order: id, Reason: ReasonUnknownOrder})
	}
	b.mark()
	if b.nodes[ni].stop != 0 {
		b.unpark(ni)
	} else {
		b.unrest(ni)
	}
	ev = append(ev, Event{Kind: Cancelled, Order: id, Qty: b.nodes[ni].open})
	b.release(ni)
	return b.diff(ev)
}

// Replace changes a live order's open quantity by qtyDelta and, if newPrice
// is not 0, its limit price. See the package documentation for priority.
func (b *Book) Replace(id OrderID, qtyDelta Qty, newPrice Price, ev []Event) []Event {
	ni := b.ids.get(id)
	if ni == 0 {
		return append(ev, Event{Kind: ReplaceRejected, Order: id, Reason: ReasonUnknownOrder})
	}
	n := &b.nodes[ni]
	if newPrice < 0 {
		return append(ev, Event{Kind: ReplaceRejected, Order: id, Reason: ReasonBadPrice})
	}
	if n.open+qtyDelta <= 0 {
		return append(ev, Event{Kind: ReplaceRejected, Order: id, Reason: ReasonWouldLeaveNothing})
	}
	price := n.price
	if newPrice != 0 {
		price = newPrice
	}
	moves := qtyDelta > 0 || price != n.price
	b.mark()
	b.traded = false
	if n.stop != 0 {
		if moves {
			b.unpark(ni)
			b.seq++
			n.seq = b.seq
		}
		n.qty += qtyDelta
		n.open += qtyDelta
		n.price = price
		if moves {
			b.park(ni)
		}
		ev = append(ev, Event{Kind: Replaced, Order: id, Price: price, Qty: n.open})
		return b.diff(ev)
	}
	if !moves {
		l := b.ladder(n.side)
		i, ok := l.find(n.price)
		if !ok {
			panic(fmt.Sprintf("book: invariant broken: resting order %d has no level at %d", id, n.price))
		}
		l.levels[i].qty += qtyDelta
		n.qty += qtyDelta
		n.open += qtyDelta
		ev = append(ev, Event{Kind: Replaced, Order: id, Price: price, Qty: n.open})
		return b.diff(ev)
	}
	b.unrest(ni)
	n.qty += qtyDelta
	n.open += qtyDelta
	n.price = price
	b.seq++
	n.seq = b.seq
	ev = append(ev, Event{Kind: Replaced, Order: id, Price: price, Qty: n.open})
	ev = b.enter(ni, ev)
	ev = b.cascade(ev)
	return b.diff(ev)
}

// reached reports whether the market price triggers a stop at stop on side s.
func (b *Book) reached(s Side, stop Price) bool {
	if b.mp == 0 {
		return false
	}
	if s == Buy {
		return b.mp >= stop
	}
	return b.mp <= stop
}

// enter matches a live order that is in no level, then rests what is left
// of it or cancels that (market and IOC orders), or frees it when filled.
func (b *Book) enter(ni int32, ev []Event) []Event {
	n := &b.nodes[ni]
	opp := b.ladder(n.side.opposite())
	if n.flags&AON == 0 || b.fillable(n, opp) {
		ev = b.match(n, opp, ev)
	}
	switch {
	case n.open == 0:
		b.release(ni)
	case n.price == 0 || n.flags&IOC != 0:
		ev = append(ev, Event{Kind: Cancelled, Order: n.id, Qty: n.open, Reason: ReasonNoLiquidity})
		b.release(ni)
	default:
		b.rest(ni)
	}
	return ev
}

// fillable reports whether matching n against opp would fill it completely:
// the walk match does, without trading.
func (b *Book) fillable(n *node, opp *ladder) bool {
	left := n.open
	for li := len(opp.levels) - 1; li >= 0 && left > 0; li-- {
		lv := &opp.levels[li]
		if !crosses(n.side, n.price, lv.price) {
			break
		}
		if lv.qty <= left {
			// The whole level: every AON order in it is no bigger than
			// what is left of the level, so it would be taken too.
			left -= lv.qty
			continue
		}
		for ri := lv.head; ri != 0 && left > 0; ri = b.nodes[ri].next {
			r := &b.nodes[ri]
			if r.flags&AON != 0 && r.open > left {
				continue
			}
			left -= min(left, r.open)
		}
	}
	return left == 0
}

// match trades n against the resting orders of opp in priority order,
// passing over AON orders it cannot fill completely.
func (b *Book) match(n *node, opp *ladder, ev []Event) []Event {
	for li := len(opp.levels) - 1; li >= 0 && n.open > 0; li-- {
		lv := &opp.levels[li]
		if !crosses(n.side, n.price, lv.price) {
			break
		}
		for ri := lv.head; ri != 0 && n.open > 0; {
			r := &b.nodes[ri]
			next := r.next
			if r.flags&AON != 0 && r.open > n.open {
				ri = next
				continue
			}
			q := min(n.open, r.open)
			n.open -= q
			r.open -= q
			lv.qty -= q
			b.mp = lv.price
			b.traded = true
			ev = append(ev,
				Event{Kind: Filled, Order: n.id, Other: r.id, Price: lv.price, Qty: q, Open: n.open},
				Event{Kind: Filled, Order: r.id, Other: n.id, Price: lv.price, Qty: q, Open: r.open},
				Event{Kind: Trade, Order: n.id, Other: r.id, Price: lv.price, Qty: q})
			if r.open == 0 {
				b.unlink(lv, ri)
				b.release(ri)
			}
			ri = next
		}
		if lv.n == 0 {
			opp.remove(li)
		}
	}
	return ev
}

// rest appends a node to the back of its price level.
func (b *Book) rest(ni int32) {
	n := &b.nodes[ni]
	l := b.ladder(n.side)
	i, ok := l.find(n.price)
	var lv *level
	if ok {
		lv = &l.levels[i]
	} else {
		lv = l.insert(i, n.price)
	}
	n.next = 0
	n.prev = lv.tail
	if lv.tail != 0 {
		b.nodes[lv.tail].next = ni
	} else {
		lv.head = ni
	}
	lv.tail = ni
	lv.n++
	lv.qty += n.open
}

// unrest takes a resting node out of its level.
func (b *Book) unrest(ni int32) {
	n := &b.nodes[ni]
	l := b.ladder(n.side)
	i, ok := l.find(n.price)
	if !ok {
		panic(fmt.Sprintf("book: invariant broken: resting order %d has no level at %d", n.id, n.price))
	}
	lv := &l.levels[i]
	lv.qty -= n.open
	b.unlink(lv, ni)
	if lv.n == 0 {
		l.remove(i)
	}
}

func (b *Book) unlink(lv *level, ni int32) {
	n := &b.nodes[ni]
	if n.prev != 0 {
		b.nodes[n.prev].next = n.next
	} else {
		lv.head = n.next
	}
	if n.next != 0 {
		b.nodes[n.next].prev = n.prev
	} else {
		lv.tail = n.prev
	}
	n.prev, n.next = 0, 0
	lv.n--
}

// stopFirst reports whether stop a triggers before stop b (same side).
func stopFirst(a, b *node) bool {
	if a.stop != b.stop {
		if a.side == Buy {
			return a.stop < b.stop
		}
		return a.stop > b.stop
	}
	return a.seq < b.seq
}

func (b *Book) stops(s Side) *[]int32 {
	if s == Buy {
		return &b.buyStops
	}
	return &b.sellStops
}

// stopIndex is the index in *ss of the first stop that triggers no later
// than n: n's own index if n is there, else where it belongs.
func (b *Book) stopIndex(ss []int32, n *node) int {
	i, j := 0, len(ss)
	for i < j {
		h := int(uint(i+j) >> 1)
		if stopFirst(n, &b.nodes[ss[h]]) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// park adds a pending stop.
func (b *Book) park(ni int32) {
	ss := b.stops(b.nodes[ni].side)
	i := b.stopIndex(*ss, &b.nodes[ni])
	*ss = append(*ss, 0)
	copy((*ss)[i+1:], (*ss)[i:])
	(*ss)[i] = ni
}

// unpark removes a pending stop.
func (b *Book) unpark(ni int32) {
	ss := b.stops(b.nodes[ni].side)
	i := b.stopIndex(*ss, &b.nodes[ni])
	if i == len(*ss) || (*ss)[i] != ni {
		panic(fmt.Sprintf("book: invariant broken: stop order %d is not among the pending stops", b.nodes[ni].id))
	}
	*ss = append((*ss)[:i], (*ss)[i+1:]...)
}

// cascade enters the stops the market price has reached, one at a time,
// until none is left to trigger, if the running command traded.
func (b *Book) cascade(ev []Event) []Event {
	for b.traded {
		var ss *[]int32
		switch {
		case len(b.buyStops) > 0 && b.reached(Buy, b.nodes[b.buyStops[len(b.buyStops)-1]].stop):
			ss = &b.buyStops
		case len(b.sellStops) > 0 && b.reached(Sell, b.nodes[b.sellStops[len(b.sellStops)-1]].stop):
			ss = &b.sellStops
		default:
			return ev
		}
		ni := (*ss)[len(*ss)-1]
		*ss = (*ss)[:len(*ss)-1]
		n := &b.nodes[ni]
		n.stop = 0
		ev = append(ev, Event{Kind: StopTriggered, Order: n.id, Price: b.mp, Qty: n.open})
		ev = b.enter(ni, ev)
	}
	return ev
}

// top appends the best k levels of l to dst.
func (l *ladder) top(dst []Level, k int) []Level {
	for i := len(l.levels) - 1; i >= 0 && k > 0; i-- {
		lv := &l.levels[i]
		dst = append(dst, Level{Price: lv.price, Qty: lv.qty, Orders: int(lv.n)})
		k--
	}
	return dst
}

// same reports whether the best k levels of l are those in prev (which
// holds the best DepthLevels levels as they were).
func (l *ladder) same(prev []Level, k int) bool {
	n := min(len(l.levels), k)
	if min(len(prev), k) != n {
		return false
	}
	for i := 0; i < n; i++ {
		lv := &l.levels[len(l.levels)-1-i]
		if p := prev[i]; p.Price != lv.price || p.Qty != lv.qty || p.Orders != int(lv.n) {
			return false
		}
	}
	return true
}

// mark remembers the best levels before a command changes the book.
func (b *Book) mark() {
	b.prevBids = b.bids.top(b.prevBids[:0], b.cfg.DepthLevels)
	b.prevAsks = b.asks.top(b.prevAsks[:0], b.cfg.DepthLevels)
}

// diff appends BBOChanged and DepthChanged as the command that called mark
// deserves.
func (b *Book) diff(ev []Event) []Event {
	if !b.bids.same(b.prevBids, 1) || !b.asks.same(b.prevAsks, 1) {
		ev = append(ev, Event{Kind: BBOChanged})
	}
	if !b.bids.same(b.prevBids, b.cfg.DepthLevels) || !b.asks.same(b.prevAsks, b.cfg.DepthLevels) {
		ev = append(ev, Event{Kind: DepthChanged})
	}
	return ev
}

// BBO returns the best bid and ask levels; a zero Level for an empty side.
func (b *Book) BBO() (bid, ask Level) {
	if n := len(b.bids.levels); n > 0 {
		lv := &b.bids.levels[n-1]
		bid = Level{Price: lv.price, Qty: lv.qty, Orders: int(lv.n)}
	}
	if n := len(b.asks.levels); n > 0 {
		lv := &b.asks.levels[n-1]
		ask = Level{Price: lv.price, Qty: lv.qty, Orders: int(lv.n)}
	}
	return bid, ask
}

// Depth appends the best levels of a side, best first and at most
// Config.DepthLevels of them, to out.
func (b *Book) Depth(side Side, out []Level) []Level {
	if side != Buy && side != Sell {
		return out
	}
	return b.ladder(side).top(out, b.cfg.DepthLevels)
}

// Order returns a live order (resting or a pending stop) and its open
// quantity. Qty is the order's quantity as changed by Replace.
func (b *Book) Order(id OrderID) (o Order, open Qty, ok bool) {
	ni := b.ids.get(id)
	if ni == 0 {
		return Order{}, 0, false
	}
	n := &b.nodes[ni]
	return n.order(), n.open, true
}

// StopPending reports whether id is a stop order waiting for its trigger.
// (Equivalently: Order reports it with Stop != 0, since a triggered stop is
// an ordinary order with Stop 0.)
func (b *Book) StopPending(id OrderID) bool {
	ni := b.ids.get(id)
	return ni != 0 && b.nodes[ni].stop != 0
}

func (n *node) order() Order {
	return Order{ID: n.id, Side: n.side, Price: n.price, Stop: n.stop, Qty: n.qty, Flags: n.flags}
}

// Each calls fn for every live order: bids best to worst, asks best to worst
// (each level first come first), then pending buy stops and pending sell
// stops, each in the order they would trigger.
func (b *Book) Each(fn func(o Order, open Qty)) {
	b.each(func(n *node) { fn(n.order(), n.open) })
}

func (b *Book) each(fn func(n *node)) {
	for _, l := range [2]*ladder{&b.bids, &b.asks} {
		for i := len(l.levels) - 1; i >= 0; i-- {
			for ni := l.levels[i].head; ni != 0; ni = b.nodes[ni].next {
				fn(&b.nodes[ni])
			}
		}
	}
	for _, ss := range [2][]int32{b.buyStops, b.sellStops} {
		for i := len(ss) - 1; i >= 0; i-- {
			fn(&b.nodes[ss[i]])
		}
	}
}
