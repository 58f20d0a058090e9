package script

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
)

// Runner executes script lines against a market and writes a transcript:
// every line as it was given, then, indented by two spaces, what it did —
// its events one per line (a BBOChanged followed by the new best bid and
// ask), a DISPLAY's book, or the error of a line that does not parse.
type Runner struct {
	Market *book.Market
	Out    io.Writer

	last book.OrderID
	syms map[book.OrderID]string // the symbol of every id given out
	ev   []book.Event
}

// NewRunner returns a runner that writes its transcript to out.
func NewRunner(m *book.Market, out io.Writer) *Runner {
	return &Runner{Market: m, Out: out, syms: map[book.OrderID]string{}}
}

// Run executes every line of in.
func (r *Runner) Run(in io.Reader) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if err := r.Line(sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Line executes one line. The error is the Out writer's; a line that does
// not parse is reported in the transcript.
func (r *Runner) Line(line string) error {
	var sb strings.Builder
	sb.WriteString(line)
	sb.WriteByte('\n')
	r.exec(line, &sb)
	_, err := io.WriteString(r.Out, sb.String())
	return err
}

func (r *Runner) exec(line string, sb *strings.Builder) {
	c, err := Parse(line)
	if err != nil {
		fmt.Fprintf(sb, "  error: %v\n", err)
		return
	}
	var b *book.Book
	var sym string
	switch c.Op {
	case OpNone:
		return
	case OpOrder:
		sym = c.Symbol
		b = r.Market.Book([]byte(sym))
		r.last++
		r.syms[r.last] = sym
		r.ev = b.Add(book.Order{ID: r.last, Side: c.Side, Price: c.Price, Stop: c.Stop, Qty: c.Qty, Flags: c.Flags}, r.ev[:0])
	case OpCancel, OpModify:
		sym = r.syms[c.ID]
		if sym == "" {
			fmt.Fprintf(sb, "  error: no order #%d was placed\n", c.ID)
			return
		}
		b = r.Market.Book([]byte(sym))
		if c.Op == OpCancel {
			r.ev = b.Cancel(c.ID, r.ev[:0])
		} else {
			r.ev = b.Replace(c.ID, c.QtyDelta, c.Price, r.ev[:0])
		}
	case OpDisplay:
		b := r.Market.Find([]byte(c.Symbol))
		if b == nil {
			fmt.Fprintf(sb, "  %s: no book\n", c.Symbol)
			return
		}
		for _, l := range strings.SplitAfter(FormatDepth(c.Symbol, b), "\n") {
			if l != "" {
				sb.WriteString("  ")
				sb.WriteString(l)
			}
		}
		return
	case OpMarket:
		r.Market.Book([]byte(c.Symbol)).SetMarketPrice(c.Price)
		fmt.Fprintf(sb, "  market %s %d\n", c.Symbol, c.Price)
		return
	}
	for _, e := range r.ev {
		sb.WriteString("  ")
		sb.WriteString(FormatEvent(e))
		if e.Kind == book.BBOChanged {
			sb.WriteString(": ")
			sb.WriteString(FormatBBO(b))
		}
		sb.WriteByte('\n')
	}
}
