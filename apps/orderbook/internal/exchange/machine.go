package exchange

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
)

// Window is how many of a trader's latest results the exchange remembers:
// a repeat of one of them is answered from memory; an older ClOrd that
// was never applied still is, and one older than the window is answered
// StatusTooOld. A trader with at most Window requests in flight never
// sees StatusTooOld.
const Window = 64

// A proposal is one batch of order-entry requests, exactly as traders
// sent them: count u32, then count requests of wire.RequestSize bytes.
// Every replica decodes and applies them in order; nothing in a request
// depends on the replica's clock, and order ids are numbered by the
// machine, so every replica reaches the same books.
const propHeader = 4

// remembered is one applied request's result.
type remembered struct {
	clOrd uint64
	res   wire.Result
}

// trader is what the exchange keeps per trader: its recent results (the
// dedup window) and the totals its end-of-run check compares.
type trader struct {
	id    uint64
	high  uint64
	win   [Window]remembered
	state wire.TraderState
}

// owned is a live order's owner and book, for Cancel and Replace and to
// keep the owners' totals as fills happen.
type owned struct {
	trader *trader
	book   *book.Book
}

// Machine is the exchange's replicated state machine: the books of every
// symbol, the owners of live orders, and each trader's dedup window.
// Apply changes it (the engine's goroutine, or a standalone server's
// poller); reads and result lookups take the same lock.
type Machine struct {
	mu      sync.RWMutex
	market  *book.Market
	traders map[uint64]*trader
	owners  map[book.OrderID]owned
	names   map[*book.Book]string // each book's symbol, for snapshots
	next    book.OrderID          // the last order id handed out

	ev  []book.Event
	req wire.Request

	applied atomic.Uint64 // proposals applied
	orders  atomic.Uint64 // requests applied (repeats not counted)
}

// NewMachine returns an exchange with no orders; books get cfg.
func NewMachine(cfg book.Config) *Machine {
	return &Machine{market: book.NewMarket(cfg), traders: map[uint64]*trader{},
		owners: make(map[book.OrderID]owned, 1<<14), names: map[*book.Book]string{}, ev: make([]book.Event, 0, 256)}
}

// AppendProposal appends the header of a proposal of n requests; the
// caller appends the n encoded requests.
func AppendProposal(b []byte, n int) []byte { return binary.LittleEndian.AppendUint32(b, uint32(n)) }

// Apply implements consensus.StateMachine. It returns nil: results are
// remembered per trader, where Result finds them.
func (m *Machine) Apply(_ uint64, p []byte) []byte {
	if len(p) < propHeader {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(p))
	p = p[propHeader:]
	m.mu.Lock()
	for i := 0; i < n && len(p) >= wire.RequestSize; i++ {
		// A request the proposer decoded decodes here too; one that does
		// not is skipped the same way on every replica.
		if m.req.Decode(p[:wire.RequestSize]) == nil && m.req.Op.IsWrite() {
			m.apply(&m.req)
		}
		p = p[wire.RequestSize:]
	}
	m.mu.Unlock()
	m.applied.Add(1)
	return nil
}

// apply applies one request at most once per (trader, ClOrd).
func (m *Machine) apply(r *wire.Request) {
	t := m.traders[r.Trader]
	if t == nil {
		t = &trader{id: r.Trader}
		m.traders[r.Trader] = t
	}
	if _, seen := t.lookup(r.ClOrd); seen {
		return
	}
	res := m.exec(t, r)
	res.ClOrd = r.ClOrd
	t.win[r.ClOrd%Window] = remembered{clOrd: r.ClOrd, res: res}
	t.high = max(t.high, r.ClOrd)
	t.state.Applied++
	t.state.IDSum += wire.Mix(r.ClOrd)
	t.state.High = t.high
	m.orders.Add(1)
}

// lookup finds a trader's result for clOrd: seen reports that no request
// with it may be applied (again); res is its result, or StatusTooOld.
func (t *trader) lookup(clOrd uint64) (res wire.Result, seen bool) {
	if clOrd+Window <= t.high {
		return wire.Result{Status: wire.StatusTooOld, ClOrd: clOrd}, true
	}
	if w := &t.win[clOrd%Window]; w.clOrd == clOrd {
		return w.res, true
	}
	return wire.Result{}, false
}

// exec runs one request on the books.
func (m *Machine) exec(t *trader, r *wire.Request) wire.Result {
	res := wire.Result{Status: wire.StatusOK, Op: r.Op}
	var b *book.Book
	var id book.OrderID
	switch r.Op {
	case wire.OpNew:
		b = m.market.Book(r.Sym())
		if _, ok := m.names[b]; !ok {
			m.names[b] = string(r.Sym())
		}
		m.next++
		id = m.next
		// The owner goes in first so that the order's own fills count.
		m.owners[id] = owned{trader: t, book: b}
		t.state.Open++
		m.ev = b.Add(book.Order{ID: id, Side: r.Side, Price: r.Price, Stop: r.Stop, Qty: r.Qty, Flags: r.Flags}, m.ev[:0])
	case wire.OpCancel, wire.OpReplace:
		id = r.Order
		o, ok := m.owners[id]
		switch {
		case !ok:
			return wire.Result{Status: wire.StatusRejected, Op: r.Op, Reason: wire.Reason(book.ReasonUnknownOrder), Order: id}
		case o.trader != t:
			return wire.Result{Status: wire.StatusRejected, Op: r.Op, Reason: wire.ReasonNotOwner, Order: id}
		}
		b = o.book
		if r.Op == wire.OpCancel {
			m.ev = b.Cancel(id, m.ev[:0])
		} else {
			m.ev = b.Replace(id, r.Qty, r.Price, m.ev[:0])
		}
	}
	res.Order = id
	triggered := false
	for i := range m.ev {
		e := &m.ev[i]
		switch e.Kind {
		case book.Rejected, book.CancelRejected, book.ReplaceRejected:
			if e.Order == id {
				res.Status, res.Reason = wire.StatusRejected, wire.Reason(e.Reason)
			}
		case book.Filled:
			if o, ok := m.owners[e.Order]; ok {
				o.trader.state.Filled += int64(e.Qty)
				if e.Open == 0 {
					m.drop(e.Order, o)
				}
			}
			if e.Order == id {
				res.Fills++
				res.Filled += e.Qty
				res.Notional += int64(e.Price) * int64(e.Qty)
				res.Last = e.Price
			}
		case book.Cancelled:
			if o, ok := m.owners[e.Order]; ok {
				m.drop(e.Order, o)
			}
		case book.StopTriggered:
			if e.Order == id {
				triggered = true
			}
		}
	}
	o, open, live := b.Order(id)
	switch {
	case live:
		res.Open = open
		res.State = wire.StateResting
		if o.Stop != 0 && !triggered && b.StopPending(id) {
			res.State = wire.StateStop
		}
	case res.Status == wire.StatusRejected && r.Op == wire.OpNew:
		res.State = wire.StateNone
	default:
		res.State = wire.StateDone
	}
	if !live {
		// Whatever ended the order (a rejection, a market or IOC rest,
		// a fill), it has no owner any more.
		if o, ok := m.owners[id]; ok {
			m.drop(id, o)
		}
	}
	return res
}

func (m *Machine) drop(id book.OrderID, o owned) {
	delete(m.owners, id)
	o.trader.state.Open--
}

// Result returns the result of the request (trader, clOrd) once Apply has
// run it, and false if it has not.
func (m *Machine) Result(traderID, clOrd uint64) (wire.Result, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.traders[traderID]
	if t == nil {
		return wire.Result{}, false
	}
	return t.lookup(clOrd)
}

// Depth fills d with sym's best levels (none for a symbol never traded).
func (m *Machine) Depth(sym []byte, d *wire.Depth) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	d.Bids, d.Asks, d.Market = d.Bids[:0], d.Asks[:0], 0
	d.Applied = m.applied.Load()
	if b := m.market.Find(sym); b != nil {
		d.Bids = b.Depth(book.Buy, d.Bids)
		d.Asks = b.Depth(book.Sell, d.Asks)
		d.Market = b.MarketPrice()
	}
}

// Trader returns what the exchange applied for a trader.
func (m *Machine) Trader(id uint64) wire.TraderState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if t := m.traders[id]; t != nil {
		return t.state
	}
	return wire.TraderState{}
}

// Applied returns the proposals and the requests applied so far.
func (m *Machine) Applied() (proposals, requests uint64) { return m.applied.Load(), m.orders.Load() }

// snapshotMagic starts a snapshot; a new layout gets a new one.
const snapshotMagic = "gomu-ob1"

// Snapshot implements consensus.StateMachine: the books, the order id
// counter, the traders' windows and totals and the owners of live
// orders, in a canonical order so that equal states give equal bytes.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.RLock()
	b := m.appendSnapshot(nil)
	m.mu.RUnlock()
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("order book snapshot: %w", err)
	}
	return nil
}

func (m *Machine) appendSnapshot(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, snapshotMagic...)
	b = le.AppendUint64(b, uint64(m.next))
	b = le.AppendUint64(b, m.applied.Load())
	b = le.AppendUint64(b, m.orders.Load())
	mk := m.market.AppendSnapshot(nil)
	b = le.AppendUint64(b, uint64(len(mk)))
	b = append(b, mk...)

	ids := make([]uint64, 0, len(m.traders))
	for id := range m.traders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = le.AppendUint64(b, uint64(len(ids)))
	for _, id := range ids {
		t := m.traders[id]
		b = le.AppendUint64(b, t.id)
		b = le.AppendUint64(b, t.high)
		b = le.AppendUint64(b, t.state.Applied)
		b = le.AppendUint64(b, t.state.IDSum)
		b = le.AppendUint64(b, uint64(t.state.Filled))
		for i := range t.win {
			b = le.AppendUint64(b, t.win[i].clOrd)
			b = t.win[i].res.Append(b, "")
		}
	}
	orders := make([]book.OrderID, 0, len(m.owners))
	for id := range m.owners {
		orders = append(orders, id)
	}
	slices.Sort(orders)
	b = le.AppendUint64(b, uint64(len(orders)))
	for _, id := range orders {
		o := m.owners[id]
		b = le.AppendUint64(b, uint64(id))
		b = le.AppendUint64(b, o.trader.id)
		sym := m.names[o.book]
		b = append(b, byte(len(sym)))
		b = append(b, sym...)
	}
	return b
}

var errSnapshot = errors.New("order book snapshot: malformed")

// Restore implements consensus.StateMachine: it replaces the machine's
// state with a snapshot's.
func (m *Machine) Restore(r io.Reader) error {
	data, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("order book restore: %w", err)
	}
	fresh, err := decodeSnapshot(data, m.market.Config())
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.market, m.traders, m.owners, m.names, m.next = fresh.market, fresh.traders, fresh.owners, fresh.names, fresh.next
	m.applied.Store(fresh.applied.Load())
	m.orders.Store(fresh.orders.Load())
	m.mu.Unlock()
	return nil
}

// snapReader reads a snapshot's fields, remembering the first short read.
type snapReader struct {
	b   []byte
	bad bool
}

func (s *snapReader) u64() uint64 {
	if len(s.b) < 8 {
		s.bad, s.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint64(s.b)
	s.b = s.b[8:]
	return v
}

func (s *snapReader) bytes(n int) []byte {
	if n < 0 || len(s.b) < n {
		s.bad, s.b = true, nil
		return nil
	}
	v := s.b[:n]
	s.b = s.b[n:]
	return v
}

func decodeSnapshot(data []byte, cfg book.Config) (*Machine, error) {
	s := &snapReader{b: data}
	if string(s.bytes(len(snapshotMagic))) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a %s snapshot", errSnapshot, snapshotMagic)
	}
	m := NewMachine(cfg)
	m.next = book.OrderID(s.u64())
	m.applied.Store(s.u64())
	m.orders.Store(s.u64())
	mk := s.bytes(int(s.u64()))
	if s.bad {
		return nil, fmt.Errorf("%w: truncated header", errSnapshot)
	}
	market, err := book.RestoreMarket(mk, cfg)
	if err != nil {
		return nil, fmt.Errorf("order book restore: %w", err)
	}
	m.market = market
	nt := s.u64()
	for i := uint64(0); i < nt && !s.bad; i++ {
		t := &trader{id: s.u64(), high: s.u64()}
		t.state.Applied, t.state.IDSum, t.state.Filled = s.u64(), s.u64(), int64(s.u64())
		t.state.High = t.high
		for j := range t.win {
			t.win[j].clOrd = s.u64()
			if _, err := wire.DecodeResult(s.bytes(wire.ResultSize), &t.win[j].res); err != nil {
				s.bad = true
			}
		}
		m.traders[t.id] = t
	}
	no := s.u64()
	for i := uint64(0); i < no && !s.bad; i++ {
		id, tid := book.OrderID(s.u64()), s.u64()
		n := s.bytes(1)
		if s.bad {
			break
		}
		sym := s.bytes(int(n[0]))
		t, b := m.traders[tid], market.Find(sym)
		if t == nil || b == nil {
			return nil, fmt.Errorf("%w: order %d of unknown trader %d or symbol %q", errSnapshot, id, tid, sym)
		}
		m.owners[id] = owned{trader: t, book: b}
		m.names[b] = string(sym)
		t.state.Open++
	}
	if s.bad || len(s.b) != 0 {
		return nil, fmt.Errorf("%w: truncated or trailing bytes", errSnapshot)
	}
	return m, nil
}

// Digest is a hash of the machine's state: equal on replicas that
// applied the same requests.
func (m *Machine) Digest() [32]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sha256.Sum256(m.appendSnapshot(nil))
}
