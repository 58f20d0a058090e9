package script

import (
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		line string
		want Command
	}{
		{"", Command{}},
		{"   # only a comment", Command{}},
		{"BUY 300 IBM 1251", Command{Op: OpOrder, Side: book.Buy, Qty: 300, Symbol: "IBM", Price: 1251}},
		{"sell 100 ibm mkt # lower case", Command{Op: OpOrder, Side: book.Sell, Qty: 100, Symbol: "IBM"}},
		{"BUY 300 IBM 1251 AON", Command{Op: OpOrder, Side: book.Buy, Qty: 300, Symbol: "IBM", Price: 1251, Flags: book.AON}},
		{"BUY 3 IBM 1 IOC AON", Command{Op: OpOrder, Side: book.Buy, Qty: 3, Symbol: "IBM", Price: 1, Flags: book.FOK}},
		{"BUY 3 IBM 1 FOK", Command{Op: OpOrder, Side: book.Buy, Qty: 3, Symbol: "IBM", Price: 1, Flags: book.FOK}},
		{"SELL 100 IBM MKT STOP 1240", Command{Op: OpOrder, Side: book.Sell, Qty: 100, Symbol: "IBM", Stop: 1240}},
		{"BUY 100 BRK.B 1255 STOP 1250 IOC", Command{Op: OpOrder, Side: book.Buy, Qty: 100, Symbol: "BRK.B", Price: 1255, Stop: 1250, Flags: book.IOC}},
		{"BUY -5 IBM -1", Command{Op: OpOrder, Side: book.Buy, Qty: -5, Symbol: "IBM", Price: -1}},
		{"CANCEL 7", Command{Op: OpCancel, ID: 7}},
		{"MODIFY 7 QTY -50 PRICE 1249", Command{Op: OpModify, ID: 7, QtyDelta: -50, Price: 1249}},
		{"modify 7 price 1249 qty +5", Command{Op: OpModify, ID: 7, QtyDelta: 5, Price: 1249}},
		{"MODIFY 7 QTY 10", Command{Op: OpModify, ID: 7, QtyDelta: 10}},
		{"DISPLAY ibm", Command{Op: OpDisplay, Symbol: "IBM"}},
		{"MARKET IBM 1250", Command{Op: OpMarket, Symbol: "IBM", Price: 1250}},
	} {
		got, err := Parse(c.line)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"HOLD 1", `"HOLD": expected BUY, SELL, CANCEL, MODIFY, DISPLAY or MARKET`},
		{"BUY", "line ends where a quantity was expected"},
		{"BUY x IBM 1", `"x": expected a quantity`},
		{"BUY 1", "line ends where a symbol"},
		{"BUY 1 TOOLONGSYMBOLNAME17 1", `"TOOLONGSYMBOLNAME17": expected a symbol`},
		{"BUY 1 IBM", "line ends where a price or MKT was expected"},
		{"BUY 1 IBM 1.5", `"1.5": expected a price or MKT`},
		{"BUY 1 IBM 1 GTC", `"GTC": expected AON, IOC, FOK or STOP`},
		{"BUY 1 IBM 1 STOP", "line ends where a stop price was expected"},
		{"BUY 1 IBM 1 STOP 2 STOP 3", `"STOP": expected AON, IOC or FOK (STOP only once)`},
		{"CANCEL", "line ends where an order id"},
		{"CANCEL 0", `"0": expected an order id`},
		{"CANCEL -1", `"-1": expected an order id`},
		{"CANCEL 1 2", `"2": expected the end of the line`},
		{"MODIFY 1", "line ends where QTY or PRICE was expected"},
		{"MODIFY 1 SIZE 3", `"SIZE": expected QTY or PRICE`},
		{"MODIFY 1 PRICE 3 PRICE 4", `"PRICE": expected QTY or PRICE (each at most once)`},
		{"MODIFY 1 QTY", "line ends where a signed quantity change was expected"},
		{"DISPLAY", "line ends where a symbol"},
		{"MARKET IBM x", `"x": expected a price`},
	} {
		_, err := Parse(c.line)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) error %v, want it to contain %q", c.line, err, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		e    book.Event
		want string
	}{
		{book.Event{Kind: book.Accepted, Order: 1}, "accepted #1"},
		{book.Event{Kind: book.Rejected, Order: 1, Reason: book.ReasonBadQty}, "rejected #1: bad quantity"},
		{book.Event{Kind: book.Filled, Order: 1, Other: 2, Price: 10, Qty: 5, Open: 3}, "filled #1 5 @ 10 with #2, open 3"},
		{book.Event{Kind: book.Trade, Order: 1, Other: 2, Price: 10, Qty: 5}, "trade #1 x #2 5 @ 10"},
		{book.Event{Kind: book.Cancelled, Order: 1, Qty: 5}, "cancelled #1 5"},
		{book.Event{Kind: book.Cancelled, Order: 1, Qty: 5, Reason: book.ReasonNoLiquidity}, "cancelled #1 5 (no liquidity)"},
		{book.Event{Kind: book.Replaced, Order: 1, Qty: 5, Price: 0}, "replaced #1 open 5 @ MKT"},
		{book.Event{Kind: book.StopTriggered, Order: 1, Price: 9}, "stop triggered #1 at market 9"},
		{book.Event{Kind: book.DepthChanged}, "depth changed"},
	} {
		if got := FormatEvent(c.e); got != c.want {
			t.Errorf("FormatEvent(%+v) = %q, want %q", c.e, got, c.want)
		}
	}
	b := book.New(book.Config{})
	b.Add(book.Order{ID: 1, Side: book.Buy, Price: 10, Qty: 5}, nil)
	b.Add(book.Order{ID: 2, Side: book.Buy, Price: 10, Qty: 1}, nil)
	b.Add(book.Order{ID: 3, Side: book.Sell, Price: 12, Qty: 7}, nil)
	b.Add(book.Order{ID: 4, Side: book.Sell, Stop: 3, Qty: 2, Flags: book.AON}, nil)
	want := "X market none\n" +
		"  ask       12 x 7      1 order\n" +
		"  ---\n" +
		"  bid       10 x 6      2 orders\n" +
		"  stop #4 SELL 2 MKT STOP 3 AON\n"
	if got := FormatDepth("X", b); got != want {
		t.Errorf("FormatDepth:\n%s\nwant\n%s", got, want)
	}
}

func TestRunner(t *testing.T) {
	var out strings.Builder
	r := NewRunner(book.NewMarket(book.Config{}), &out)
	if err := r.Run(strings.NewReader("BUY 1 X 10\nSELL 1 X 10\nCANCEL 3\nBOGUS\n")); err != nil {
		t.Fatal(err)
	}
	want := `BUY 1 X 10
  accepted #1
  bbo changed: bid 1 @ 10, ask -
  depth changed
SELL 1 X 10
  accepted #2
  filled #2 1 @ 10 with #1, open 0
  filled #1 1 @ 10 with #2, open 0
  trade #2 x #1 1 @ 10
  bbo changed: bid -, ask -
  depth changed
CANCEL 3
  error: no order #3 was placed
BOGUS
  error: "BOGUS": expected BUY, SELL, CANCEL, MODIFY, DISPLAY or MARKET
`
	if out.String() != want {
		t.Errorf("transcript:\n%s\nwant\n%s", out.String(), want)
	}
}
