package book

import "fmt"

// Side is the side of an order.
type Side uint8

const (
	Buy  Side = 1
	Sell Side = 2
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "Buy"
	case Sell:
		return "Sell"
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// opposite is the other side (s must be Buy or Sell).
func (s Side) opposite() Side { return 3 - s }

// Price is a price in integer ticks. As an order's limit, 0 means none: a
// market order.
type Price int64

// Qty is a quantity in integer lots.
type Qty int64

// OrderID names an order. The caller chooses it; it must be nonzero and
// unique among the live orders (resting or pending stops) of a Book.
type OrderID uint64

// Flags are an order's conditions.
type Flags uint8

const (
	AON Flags       = 1 << iota // all-or-none: fill completely or not at all
	IOC                         // immediate-or-cancel: never rest
	FOK = AON | IOC             // fill-or-kill: everything at once or nothing

	allFlags = AON | IOC
)

func (f Flags) String() string {
	switch f {
	case 0:
		return "none"
	case AON:
		return "AON"
	case IOC:
		return "IOC"
	case FOK:
		return "FOK"
	}
	return fmt.Sprintf("Flags(%#x)", uint8(f))
}

// Order is an order as the caller enters it.
type Order struct {
	ID    OrderID
	Side  Side
	Price Price // limit; 0: a market order
	Stop  Price // 0: not a stop order; else the stop price
	Qty   Qty
	Flags Flags
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	Accepted        EventKind = iota + 1 // Add accepted the order
	Rejected                             // Add refused the order (Reason)
	Filled                               // Order traded Qty at Price with Other; Open is left
	Cancelled                            // Order's open Qty was cancelled (Reason 0: by Cancel)
	CancelRejected                       // Cancel refused (Reason)
	Replaced                             // Replace done: Open Qty and Price are now the order's
	ReplaceRejected                      // Replace refused (Reason)
	StopTriggered                        // a stop order became live at market Price
	BBOChanged                           // the best bid or ask changed (see Book.BBO)
	DepthChanged                         // the best levels changed (see Book.Depth)
	Trade                                // Order (aggressor) traded Qty at Price with Other (resting)
)

var kindNames = [...]string{
	Accepted: "Accepted", Rejected: "Rejected", Filled: "Filled", Cancelled: "Cancelled",
	CancelRejected: "CancelRejected", Replaced: "Replaced", ReplaceRejected: "ReplaceRejected",
	StopTriggered: "StopTriggered", BBOChanged: "BBOChanged", DepthChanged: "DepthChanged", Trade: "Trade",
}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Reason explains a rejection, or why the rest of an order was cancelled.
type Reason uint8

const (
	ReasonNone              Reason = iota
	ReasonBadID                    // order id 0
	ReasonDuplicateID              // the id is already live in the book
	ReasonBadSide                  // side is neither Buy nor Sell
	ReasonBadQty                   // quantity <= 0
	ReasonBadPrice                 // negative price
	ReasonBadStop                  // negative stop price
	ReasonBadFlags                 // unknown flag bits
	ReasonUnknownOrder             // no live order has the id (never was, filled or cancelled)
	ReasonNoLiquidity              // a market, IOC or FOK order's rest found nothing to trade with
	ReasonWouldLeaveNothing        // a Replace would leave open quantity <= 0
)

var reasonNames = [...]string{
	ReasonNone: "none", ReasonBadID: "bad id", ReasonDuplicateID: "duplicate id",
	ReasonBadSide: "bad side", ReasonBadQty: "bad quantity", ReasonBadPrice: "bad price",
	ReasonBadStop: "bad stop price", ReasonBadFlags: "bad flags", ReasonUnknownOrder: "unknown order",
	ReasonNoLiquidity: "no liquidity", ReasonWouldLeaveNothing: "would leave nothing",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Event is one consequence of a command.
type Event struct {
	Kind   EventKind
	Order  OrderID // the order the event is about; 0 for BBOChanged, DepthChanged
	Other  OrderID // Filled: the counterparty; Trade: the resting order
	Price  Price   // Filled, Trade: trade price; Replaced: the new price; StopTriggered: market price
	Qty    Qty     // Filled, Trade: quantity traded; Cancelled: quantity cancelled; Replaced: new open quantity; Accepted: the order's quantity
	Open   Qty     // Filled: what stays open of Order (0: done)
	Reason Reason  // Rejected, CancelRejected, ReplaceRejected; Cancelled by the engine
}

// Config sets up a Book.
type Config struct {
	// DepthLevels is how many best levels per side Depth returns and
	// DepthChanged watches. 0 means 5.
	DepthLevels int
	// MarketPrice is the initial market (reference) price; 0: unknown.
	MarketPrice Price
	// Capacity is how many live orders to preallocate for. 0 means 1024.
	// The book grows past it (allocating then); it is only a hint.
	Capacity int
}

func (c Config) normalized() Config {
	if c.DepthLevels <= 0 {
		c.DepthLevels = 5
	}
	if c.Capacity <= 0 {
		c.Capacity = 1024
	}
	return c
}

// Level is one price of one side of the book.
type Level struct {
	Price  Price
	Qty    Qty // open quantity of all orders at the price
	Orders int // number of orders at the price
}
