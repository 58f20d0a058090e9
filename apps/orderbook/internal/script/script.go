// Package script is a small line-oriented order-entry language for the order
// book: golden tests are written in it, and an interactive console reads it.
//
//	BUY 300 IBM 1251             limit order: quantity, symbol, price
//	BUY 300 IBM 1251 AON         conditions AON, IOC, FOK, in any order
//	SELL 100 IBM MKT             market order
//	SELL 100 IBM MKT STOP 1240   stop-market; BUY 100 IBM 1255 STOP 1250 is stop-limit
//	CANCEL 7                     by order id
//	MODIFY 7 QTY -50 PRICE 1249  QTY is a signed change; either or both
//	DISPLAY IBM                  the book of a symbol and its market price
//	MARKET IBM 1250              set the market (reference) price
//
// Keywords and symbols are case-insensitive (symbols are upper-cased), '#'
// starts a comment, blank lines do nothing. A Runner numbers BUY and SELL
// lines 1, 2, 3… in order; those numbers are the order ids.
package script

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
)

// Op is what a command does.
type Op uint8

const (
	OpNone    Op = iota // a blank or comment line
	OpOrder             // BUY or SELL
	OpCancel            // CANCEL
	OpModify            // MODIFY
	OpDisplay           // DISPLAY
	OpMarket            // MARKET
)

var opNames = [...]string{"none", "order", "cancel", "modify", "display", "market"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Command is one parsed line.
type Command struct {
	Op       Op
	Side     book.Side    // OpOrder
	Qty      book.Qty     // OpOrder
	Symbol   string       // OpOrder, OpDisplay, OpMarket
	Price    book.Price   // OpOrder (0: MKT), OpModify (0: keep), OpMarket
	Stop     book.Price   // OpOrder
	Flags    book.Flags   // OpOrder
	ID       book.OrderID // OpCancel, OpModify
	QtyDelta book.Qty     // OpModify
}

// Parse parses one line.
func Parse(line string) (Command, error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	p := &parser{toks: strings.Fields(line)}
	if len(p.toks) == 0 {
		return Command{}, nil
	}
	var c Command
	switch kw := strings.ToUpper(p.next()); kw {
	case "BUY", "SELL":
		c.Op, c.Side = OpOrder, book.Buy
		if kw == "SELL" {
			c.Side = book.Sell
		}
		c.Qty = book.Qty(p.int("a quantity"))
		c.Symbol = p.symbol()
		if p.keyword("MKT") {
			c.Price = 0
		} else {
			c.Price = book.Price(p.int("a price or MKT"))
		}
		for p.err == nil && p.more() {
			switch t := strings.ToUpper(p.next()); t {
			case "AON":
				c.Flags |= book.AON
			case "IOC":
				c.Flags |= book.IOC
			case "FOK":
				c.Flags |= book.FOK
			case "STOP":
				if c.Stop != 0 {
					p.fail(t, "AON, IOC or FOK (STOP only once)")
				}
				c.Stop = book.Price(p.int("a stop price"))
			default:
				p.fail(t, "AON, IOC, FOK or STOP")
			}
		}
	case "CANCEL":
		c.Op = OpCancel
		c.ID = p.id()
	case "MODIFY":
		c.Op = OpModify
		c.ID = p.id()
		var qty, price bool
		for p.err == nil && p.more() {
			switch t := strings.ToUpper(p.next()); {
			case t == "QTY" && !qty:
				qty = true
				c.QtyDelta = book.Qty(p.int("a signed quantity change"))
			case t == "PRICE" && !price:
				price = true
				c.Price = book.Price(p.int("a price"))
			default:
				p.fail(t, "QTY or PRICE (each at most once)")
			}
		}
		if p.err == nil && !qty && !price {
			p.fail("", "QTY or PRICE")
		}
	case "DISPLAY":
		c.Op = OpDisplay
		c.Symbol = p.symbol()
	case "MARKET":
		c.Op = OpMarket
		c.Symbol = p.symbol()
		c.Price = book.Price(p.int("a price"))
	default:
		p.fail(kw, "BUY, SELL, CANCEL, MODIFY, DISPLAY or MARKET")
	}
	if p.err == nil && p.more() {
		p.fail(p.next(), "the end of the line")
	}
	if p.err != nil {
		return Command{}, p.err
	}
	return c, nil
}

type parser struct {
	toks []string
	err  error
}

func (p *parser) more() bool { return len(p.toks) > 0 }

func (p *parser) next() string {
	if len(p.toks) == 0 {
		return ""
	}
	t := p.toks[0]
	p.toks = p.toks[1:]
	return t
}

// fail records the first error: tok (empty: the line ended) where want was
// expected.
func (p *parser) fail(tok, want string) {
	if p.err != nil {
		return
	}
	if tok == "" {
		p.err = fmt.Errorf("line ends where %s was expected", want)
	} else {
		p.err = fmt.Errorf("%q: expected %s", tok, want)
	}
}

func (p *parser) int(want string) int64 {
	if p.err != nil {
		return 0
	}
	t := p.next()
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		p.fail(t, want)
	}
	return v
}

func (p *parser) id() book.OrderID {
	if p.err != nil {
		return 0
	}
	t := p.next()
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 {
		p.fail(t, "an order id (1, 2, …)")
	}
	return book.OrderID(v)
}

func (p *parser) symbol() string {
	if p.err != nil {
		return ""
	}
	t := p.next()
	s := strings.ToUpper(t)
	if !book.ValidSymbol([]byte(s)) {
		p.fail(t, fmt.Sprintf("a symbol (1 to %d of A-Z 0-9 .)", book.MaxSymbol))
	}
	return s
}

// keyword consumes the next token if it is kw (any case).
func (p *parser) keyword(kw string) bool {
	if p.err == nil && p.more() && strings.EqualFold(p.toks[0], kw) {
		p.next()
		return true
	}
	return false
}

// FormatEvent renders an event as one line.
func FormatEvent(e book.Event) string {
	switch e.Kind {
	case book.Accepted:
		return fmt.Sprintf("accepted #%d", e.Order)
	case book.Rejected:
		return fmt.Sprintf("rejected #%d: %v", e.Order, e.Reason)
	case book.Filled:
		return fmt.Sprintf("filled #%d %d @ %d with #%d, open %d", e.Order, e.Qty, e.Price, e.Other, e.Open)
	case book.Trade:
		return fmt.Sprintf("trade #%d x #%d %d @ %d", e.Order, e.Other, e.Qty, e.Price)
	case book.Cancelled:
		if e.Reason != book.ReasonNone {
			return fmt.Sprintf("cancelled #%d %d (%v)", e.Order, e.Qty, e.Reason)
		}
		return fmt.Sprintf("cancelled #%d %d", e.Order, e.Qty)
	case book.CancelRejected:
		return fmt.Sprintf("cancel rejected #%d: %v", e.Order, e.Reason)
	case book.Replaced:
		return fmt.Sprintf("replaced #%d open %d @ %s", e.Order, e.Qty, price(e.Price))
	case book.ReplaceRejected:
		return fmt.Sprintf("replace rejected #%d: %v", e.Order, e.Reason)
	case book.StopTriggered:
		return fmt.Sprintf("stop triggered #%d at market %d", e.Order, e.Price)
	case book.BBOChanged:
		return "bbo changed"
	case book.DepthChanged:
		return "depth changed"
	}
	return fmt.Sprintf("%v %+v", e.Kind, e)
}

func price(p book.Price) string {
	if p == 0 {
		return "MKT"
	}
	return strconv.FormatInt(int64(p), 10)
}

// FormatBBO renders a book's best bid and ask on one line.
func FormatBBO(b *book.Book) string {
	bid, ask := b.BBO()
	side := func(l book.Level) string {
		if l.Orders == 0 {
			return "-"
		}
		return fmt.Sprintf("%d @ %d", l.Qty, l.Price)
	}
	return fmt.Sprintf("bid %s, ask %s", side(bid), side(ask))
}

// FormatDepth renders a whole book: the market price, the asks worst to best
// above the bids best to worst, one line per level, then the pending stops.
// Each line ends with a newline.
func FormatDepth(sym string, b *book.Book) string {
	type lvl struct {
		price book.Price
		qty   book.Qty
		n     int
	}
	var bids, asks []lvl
	var stops []string
	b.Each(func(o book.Order, open book.Qty) {
		if o.Stop != 0 {
			var f string
			if o.Flags != 0 {
				f = " " + o.Flags.String()
			}
			stops = append(stops, fmt.Sprintf("  stop #%d %s %d %s STOP %d%s\n",
				o.ID, strings.ToUpper(o.Side.String()), open, price(o.Price), o.Stop, f))
			return
		}
		ls := &bids
		if o.Side == book.Sell {
			ls = &asks
		}
		if n := len(*ls); n > 0 && (*ls)[n-1].price == o.Price {
			(*ls)[n-1].qty += open
			(*ls)[n-1].n++
		} else {
			*ls = append(*ls, lvl{o.Price, open, 1})
		}
	})
	var sb strings.Builder
	mp := "none"
	if p := b.MarketPrice(); p != 0 {
		mp = strconv.FormatInt(int64(p), 10)
	}
	fmt.Fprintf(&sb, "%s market %s\n", sym, mp)
	plural := func(n int) string {
		if n == 1 {
			return "1 order"
		}
		return fmt.Sprintf("%d orders", n)
	}
	for i := len(asks) - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, "  ask %8d x %-6d %s\n", asks[i].price, asks[i].qty, plural(asks[i].n))
	}
	sb.WriteString("  ---\n")
	for _, l := range bids {
		fmt.Fprintf(&sb, "  bid %8d x %-6d %s\n", l.price, l.qty, plural(l.n))
	}
	for _, s := range stops {
		sb.WriteString(s)
	}
	return sb.String()
}
