// Package wire is the order book's message format between traders and the
// exchange: fixed-size little-endian requests and results, so that encoding
// and decoding allocate nothing and a request fits one inline verbs WRITE.
//
// Every order-entry request (New, Cancel, Replace) names its trader and a
// client order id (ClOrd) the trader never reuses: the exchange applies a
// request once per (Trader, ClOrd) and answers a repeat with the result of
// the first, so a trader may resend after a timeout or a leader change
// without placing an order twice. Cancel and Replace name their target by
// the exchange's order id, the one New's result carried.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
)

// Op is what a request asks for.
type Op uint8

const (
	OpNew     Op = iota + 1 // place an order
	OpCancel                // cancel a resting order (or a pending stop)
	OpReplace               // change a resting order's quantity or price
	OpDepth                 // read a symbol's best levels (no log entry)
	OpTrader                // read what the exchange applied for a trader (no log entry)
)

var opNames = [...]string{OpNew: "new", OpCancel: "cancel", OpReplace: "replace", OpDepth: "depth", OpTrader: "trader"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// IsWrite reports whether the op changes the exchange (goes through the log).
func (o Op) IsWrite() bool { return o == OpNew || o == OpCancel || o == OpReplace }

// MaxSymbol is the longest symbol name.
const MaxSymbol = 16

// Request is one trader request.
type Request struct {
	Op     Op
	Side   book.Side
	Flags  book.Flags
	Trader uint64 // the trader's id, chosen by the trader (nonzero)
	ClOrd  uint64 // the trader's request number: nonzero, never reused
	Price  book.Price
	Stop   book.Price
	Qty    book.Qty // New: the quantity; Replace: the signed change
	Order  book.OrderID
	Symbol [MaxSymbol]byte
	SymLen uint8
}

// RequestSize is an encoded Request's size.
const RequestSize = 4 + 8 + 8 + 8 + 8 + 8 + 8 + MaxSymbol

// Sym is the request's symbol.
func (r *Request) Sym() []byte { return r.Symbol[:r.SymLen] }

// SetSymbol sets the symbol; it reports false (and leaves it) when s is
// longer than MaxSymbol.
func (r *Request) SetSymbol(s string) bool {
	if len(s) > MaxSymbol {
		return false
	}
	r.SymLen = uint8(copy(r.Symbol[:], s))
	return true
}

// Append appends r's encoding to b.
func (r *Request) Append(b []byte) []byte {
	b = append(b, byte(r.Op), byte(r.Side), byte(r.Flags), r.SymLen)
	b = binary.LittleEndian.AppendUint64(b, r.Trader)
	b = binary.LittleEndian.AppendUint64(b, r.ClOrd)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Price))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Stop))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Qty))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Order))
	return append(b, r.Symbol[:]...)
}

// Errors of Decode.
var (
	ErrShort     = errors.New("wire: message too short")
	ErrMalformed = errors.New("wire: malformed request")
)

// Decode reads a request from b, checking what does not need the
// exchange's state: a known op, a symbol name, nonzero ids for writes.
func (r *Request) Decode(b []byte) error {
	if len(b) < RequestSize {
		return fmt.Errorf("%w: %d bytes, a request has %d", ErrShort, len(b), RequestSize)
	}
	r.Op, r.Side, r.Flags, r.SymLen = Op(b[0]), book.Side(b[1]), book.Flags(b[2]), b[3]
	r.Trader = binary.LittleEndian.Uint64(b[4:])
	r.ClOrd = binary.LittleEndian.Uint64(b[12:])
	r.Price = book.Price(binary.LittleEndian.Uint64(b[20:]))
	r.Stop = book.Price(binary.LittleEndian.Uint64(b[28:]))
	r.Qty = book.Qty(binary.LittleEndian.Uint64(b[36:]))
	r.Order = book.OrderID(binary.LittleEndian.Uint64(b[44:]))
	copy(r.Symbol[:], b[52:52+MaxSymbol])
	switch {
	case r.Op < OpNew || r.Op > OpTrader:
		return fmt.Errorf("%w: unknown op %d", ErrMalformed, b[0])
	case r.SymLen > MaxSymbol:
		return fmt.Errorf("%w: symbol length %d > %d", ErrMalformed, r.SymLen, MaxSymbol)
	case (r.Op == OpNew || r.Op == OpDepth) && !book.ValidSymbol(r.Sym()):
		return fmt.Errorf("%w: bad symbol %q", ErrMalformed, r.Sym())
	case (r.Op.IsWrite() || r.Op == OpTrader) && r.Trader == 0:
		return fmt.Errorf("%w: %v without a trader id", ErrMalformed, r.Op)
	case r.Op.IsWrite() && r.ClOrd == 0:
		return fmt.Errorf("%w: %v without a client order id", ErrMalformed, r.Op)
	}
	return nil
}

// Status is a result's outcome.
type Status uint8

const (
	// StatusOK: the request was applied (Result says how the order fared).
	StatusOK Status = iota
	// StatusRejected: the exchange refused it (Reason says why); nothing
	// changed, and a repeat is answered the same.
	StatusRejected
	// StatusNotLeader: this replica does not take writes; Leader names the
	// one that does (0: none known yet). Nothing was applied.
	StatusNotLeader
	// StatusRetry: the replica could not tell whether the request was
	// applied (its proposal failed: a leader change, a timeout). Resend it
	// with the same ClOrd, to Leader if named: it is applied at most once.
	StatusRetry
	// StatusTooOld: ClOrd is older than the trader's window of
	// remembered results; whether it was applied cannot be said any more.
	StatusTooOld
	// StatusBadRequest: the request was malformed (Text says how).
	StatusBadRequest
	// StatusUnavailable: reads are not served here now (Text says why:
	// catching up, no leader known); try another replica.
	StatusUnavailable
)

var statusNames = [...]string{"ok", "rejected", "not-leader", "retry", "too-old", "bad-request", "unavailable"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Reason explains a rejection: book.Reason values, and the exchange's own
// from ReasonNotOwner up.
type Reason uint8

const (
	// ReasonNotOwner: Cancel or Replace of another trader's order.
	ReasonNotOwner Reason = 200
)

func (r Reason) String() string {
	if r == ReasonNotOwner {
		return "not the trader's order"
	}
	return book.Reason(r).String()
}

// State is where an order stands after a request.
type State uint8

const (
	StateNone    State = iota // rejected: no order
	StateResting              // open in the book
	StateDone                 // filled or cancelled: nothing open
	StateStop                 // a stop order waiting for its trigger
)

var stateNames = [...]string{"none", "resting", "done", "stop"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Result is the exchange's answer to an order-entry request: what the
// request did to its order, fills counted from this request only.
type Result struct {
	Status   Status
	Reason   Reason
	Op       Op
	State    State
	Fills    uint32
	Order    book.OrderID // the exchange's id of the order
	Filled   book.Qty     // quantity filled by this request
	Open     book.Qty     // quantity left open
	Notional int64        // Σ price×qty of this request's fills
	Last     book.Price   // the last fill's price
	Leader   uint32       // StatusNotLeader, StatusRetry: the leader, 0 unknown
	ClOrd    uint64       // the request's ClOrd, echoed
}

// ResultSize is an encoded Result's size (without Text).
const ResultSize = 4 + 4 + 8*6 + 4 + 4

// Append appends r's encoding to b, then text (an error's words, may be
// empty).
func (r *Result) Append(b []byte, text string) []byte {
	b = append(b, byte(r.Status), byte(r.Reason), byte(r.Op), byte(r.State))
	b = binary.LittleEndian.AppendUint32(b, r.Fills)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Order))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Filled))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Open))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Notional))
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Last))
	b = binary.LittleEndian.AppendUint64(b, r.ClOrd)
	b = binary.LittleEndian.AppendUint32(b, r.Leader)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(text)))
	return append(b, text...)
}

// DecodeResult reads a result and its text (aliasing b).
func DecodeResult(b []byte, r *Result) (text []byte, err error) {
	if len(b) < ResultSize {
		return nil, fmt.Errorf("%w: %d bytes, a result has %d", ErrShort, len(b), ResultSize)
	}
	r.Status, r.Reason, r.Op, r.State = Status(b[0]), Reason(b[1]), Op(b[2]), State(b[3])
	r.Fills = binary.LittleEndian.Uint32(b[4:])
	r.Order = book.OrderID(binary.LittleEndian.Uint64(b[8:]))
	r.Filled = book.Qty(binary.LittleEndian.Uint64(b[16:]))
	r.Open = book.Qty(binary.LittleEndian.Uint64(b[24:]))
	r.Notional = int64(binary.LittleEndian.Uint64(b[32:]))
	r.Last = book.Price(binary.LittleEndian.Uint64(b[40:]))
	r.ClOrd = binary.LittleEndian.Uint64(b[48:])
	r.Leader = binary.LittleEndian.Uint32(b[56:])
	n := int(binary.LittleEndian.Uint32(b[60:]))
	if n > len(b)-ResultSize {
		return nil, fmt.Errorf("%w: text of %d bytes, %d left", ErrShort, n, len(b)-ResultSize)
	}
	return b[ResultSize : ResultSize+n], nil
}

// Depth is the answer to OpDepth: the best levels of each side.
type Depth struct {
	Market  book.Price
	Bids    []book.Level
	Asks    []book.Level
	Applied uint64 // log entries the answering replica had applied
}

// AppendDepth appends a StatusOK result header followed by d.
func AppendDepth(b []byte, d *Depth) []byte {
	r := Result{Status: StatusOK, Op: OpDepth}
	b = r.Append(b, "")
	b = binary.LittleEndian.AppendUint64(b, uint64(d.Market))
	b = binary.LittleEndian.AppendUint64(b, d.Applied)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.Bids)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.Asks)))
	for _, side := range [2][]book.Level{d.Bids, d.Asks} {
		for _, l := range side {
			b = binary.LittleEndian.AppendUint64(b, uint64(l.Price))
			b = binary.LittleEndian.AppendUint64(b, uint64(l.Qty))
			b = binary.LittleEndian.AppendUint32(b, uint32(l.Orders))
		}
	}
	return b
}

// DecodeDepth reads what AppendDepth wrote after the result header (b is
// the whole answer), reusing d's slices.
func DecodeDepth(b []byte, d *Depth) error {
	b = b[min(len(b), ResultSize):]
	if len(b) < 24 {
		return fmt.Errorf("%w: depth of %d bytes", ErrShort, len(b))
	}
	d.Market = book.Price(binary.LittleEndian.Uint64(b))
	d.Applied = binary.LittleEndian.Uint64(b[8:])
	nb, na := int(binary.LittleEndian.Uint32(b[16:])), int(binary.LittleEndian.Uint32(b[20:]))
	b = b[24:]
	if nb < 0 || na < 0 || (nb+na)*20 != len(b) {
		return fmt.Errorf("%w: %d+%d levels in %d bytes", ErrMalformed, nb, na, len(b))
	}
	level := func() book.Level {
		l := book.Level{Price: book.Price(binary.LittleEndian.Uint64(b)), Qty: book.Qty(binary.LittleEndian.Uint64(b[8:])),
			Orders: int(binary.LittleEndian.Uint32(b[16:]))}
		b = b[20:]
		return l
	}
	d.Bids, d.Asks = d.Bids[:0], d.Asks[:0]
	for range nb {
		d.Bids = append(d.Bids, level())
	}
	for range na {
		d.Asks = append(d.Asks, level())
	}
	return nil
}

// TraderState is the answer to OpTrader: what the exchange applied for a
// trader, for the trader's end-of-run check.
type TraderState struct {
	Applied uint64 // distinct order-entry requests applied
	IDSum   uint64 // Σ Mix(ClOrd) over them: equal sets of ids give equal sums
	High    uint64 // the highest ClOrd applied
	Open    uint64 // the trader's orders still open (resting or stop)
	Filled  int64  // quantity filled across the trader's orders
}

// Mix spreads a ClOrd over 64 bits so that IDSum tells sets apart.
func Mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// AppendTrader appends a StatusOK result header followed by t.
func AppendTrader(b []byte, t *TraderState) []byte {
	r := Result{Status: StatusOK, Op: OpTrader}
	b = r.Append(b, "")
	for _, v := range [...]uint64{t.Applied, t.IDSum, t.High, t.Open, uint64(t.Filled)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// DecodeTrader reads what AppendTrader wrote (b is the whole answer).
func DecodeTrader(b []byte, t *TraderState) error {
	b = b[min(len(b), ResultSize):]
	if len(b) != 40 {
		return fmt.Errorf("%w: trader state of %d bytes", ErrShort, len(b))
	}
	t.Applied = binary.LittleEndian.Uint64(b)
	t.IDSum = binary.LittleEndian.Uint64(b[8:])
	t.High = binary.LittleEndian.Uint64(b[16:])
	t.Open = binary.LittleEndian.Uint64(b[24:])
	t.Filled = int64(binary.LittleEndian.Uint64(b[32:]))
	return nil
}
