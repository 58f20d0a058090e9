package trader

import (
	"context"
	"errors"
	"sync"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
)

// fakeExchange is the exchange's twin for the workload's tests: it applies
// order entry once per (trader, ClOrd) as the real one does, keeps the
// totals OpTrader reads, and misbehaves on demand.
type fakeExchange struct {
	mu      sync.Mutex
	traders map[uint64]*fakeTrader
	next    book.OrderID
	resting map[book.OrderID]uint64 // order → owner
	writes  int

	// noDedup applies a resend again (a broken exchange: doubles).
	noDedup bool
	// forget drops the effect of every forget-th write but answers it
	// (a broken exchange: loses).
	forget int
	// giveUp makes the client give up on every giveUp-th write after the
	// exchange applied it (a dead leader whose entry survived).
	giveUp int
}

type fakeTrader struct {
	seen  map[uint64]wire.Result
	state wire.TraderState
}

func newFakeExchange() *fakeExchange {
	return &fakeExchange{traders: map[uint64]*fakeTrader{}, resting: map[book.OrderID]uint64{}}
}

func (x *fakeExchange) dialer() Dialer {
	var mu sync.Mutex
	id := uint64(0)
	return func(context.Context, int) (Session, error) {
		mu.Lock()
		defer mu.Unlock()
		id++
		return &fakeSession{x: x, trader: 0x1000 + id}, nil
	}
}

var errFakeGaveUp = errors.New("fake: " + client.ErrGaveUp.Error())

func (x *fakeExchange) do(req *wire.Request, body []byte) (wire.Result, []byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.traders[req.Trader]
	if t == nil {
		t = &fakeTrader{seen: map[uint64]wire.Result{}}
		x.traders[req.Trader] = t
	}
	if req.Op == wire.OpTrader {
		return wire.Result{Status: wire.StatusOK, Op: wire.OpTrader}, wire.AppendTrader(body[:0], &t.state), nil
	}
	if res, ok := t.seen[req.ClOrd]; ok && !x.noDedup {
		return res, nil, nil
	}
	x.writes++
	res := x.exec(req)
	res.ClOrd = req.ClOrd
	if x.forget == 0 || x.writes%x.forget != 0 {
		t.seen[req.ClOrd] = res
		t.state.Applied++
		t.state.IDSum += wire.Mix(req.ClOrd)
		t.state.High = max(t.state.High, req.ClOrd)
	}
	if x.giveUp > 0 && x.writes%x.giveUp == 0 {
		return wire.Result{}, nil, errFakeGaveUp
	}
	return res, nil, nil
}

func (x *fakeExchange) exec(req *wire.Request) wire.Result {
	res := wire.Result{Status: wire.StatusOK, Op: req.Op}
	switch req.Op {
	case wire.OpNew:
		x.next++
		res.Order = x.next
		if req.Price == 0 || req.Flags != 0 {
			res.State, res.Filled = wire.StateDone, req.Qty
			return res
		}
		res.State, res.Open = wire.StateResting, req.Qty
		if req.Stop != 0 {
			res.State = wire.StateStop
		}
		x.resting[res.Order] = req.Trader
	case wire.OpCancel, wire.OpReplace:
		res.Order = req.Order
		if owner, ok := x.resting[req.Order]; !ok || owner != req.Trader {
			return wire.Result{Status: wire.StatusRejected, Op: req.Op, Reason: wire.Reason(book.ReasonUnknownOrder), Order: req.Order}
		}
		if req.Op == wire.OpCancel {
			delete(x.resting, req.Order)
			res.State = wire.StateDone
		} else {
			res.State, res.Open = wire.StateResting, 5
		}
	}
	return res
}

// fakeSession numbers ClOrds and fills in the trader as client.Client does.
type fakeSession struct {
	x      *fakeExchange
	trader uint64
	next   uint64
	stats  client.Stats
	body   []byte
}

func (s *fakeSession) Do(req *wire.Request) (wire.Result, []byte, error) {
	if req.Op.IsWrite() || req.Op == wire.OpTrader {
		if req.Trader == 0 {
			req.Trader = s.trader
		}
	}
	if req.Op.IsWrite() && req.ClOrd == 0 {
		s.next++
		req.ClOrd = s.next
	}
	s.stats.Requests++
	s.stats.Attempts++
	if s.body == nil {
		s.body = make([]byte, 0, 256)
	}
	res, body, err := s.x.do(req, s.body)
	if err != nil {
		return res, nil, err
	}
	if body != nil {
		s.body = body
	}
	return res, body, nil
}

func (s *fakeSession) Trader() uint64      { return s.trader }
func (s *fakeSession) Stats() client.Stats { return s.stats }
func (s *fakeSession) Close() error        { return nil }

// echoSession answers every write "ok, resting" without a lock or a map:
// the allocation test's exchange, so that what it counts is the trader's.
type echoSession struct {
	next, order uint64
	stats       client.Stats
}

func (s *echoSession) Do(req *wire.Request) (wire.Result, []byte, error) {
	req.Trader = 7
	if req.ClOrd == 0 {
		s.next++
		req.ClOrd = s.next
	}
	s.stats.Attempts++
	s.order++
	st := wire.StateResting
	if s.order%3 == 0 {
		st = wire.StateDone
	}
	return wire.Result{Status: wire.StatusOK, Op: req.Op, State: st, Order: book.OrderID(s.order), Open: 3, ClOrd: req.ClOrd}, nil, nil
}

func (s *echoSession) Trader() uint64      { return 7 }
func (s *echoSession) Stats() client.Stats { return s.stats }
func (s *echoSession) Close() error        { return nil }
