// Command orderbook-cli is a console for a person to try the exchange:
// it reads order-entry lines in the order book's script language and sends
// each to a running orderbook-server (the leader, followed through
// redirects), printing what happened.
//
//	orderbook-cli --registry HOST:PORT --device FABRIC --ids 1,2,3
//	> BUY 100 IBM 1250
//	order #1 accepted: resting 100 @ 1250
//	> SELL 40 IBM MKT
//	order #2 accepted: filled 40 (1 fill, avg 1250, last 1250), done
//	> MODIFY 1 QTY -10 PRICE 1251
//	> CANCEL 1
//	> DISPLAY IBM
//
// The lines are those of apps/orderbook/internal/script: BUY/SELL qty
// symbol price|MKT [AON] [IOC] [FOK] [STOP price], CANCEL id, MODIFY id
// [QTY ±n] [PRICE p], DISPLAY symbol. Order ids are the exchange's, as the
// answers print them. MARKET (setting the reference price) is a script
// command for the bare engine; the exchange's market price moves only with
// trades, and the console says so. TRADER shows what the exchange applied
// for this console's trader id; HELP and QUIT do what they say. The
// registry flags are the ones orderbook-server --local prints after
// "traders:". Input need not be a terminal: `orderbook-cli … < orders.txt`
// runs a script.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/script"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

func main() {
	app := &cli.App{
		Name:  "orderbook-cli",
		Usage: "an interactive console for orderbook-server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "registry (memcached) `HOST:PORT`"},
			&cli.StringFlag{Name: "cluster", Value: "orderbook", Usage: "the exchange's cluster name (its RPC services live in <cluster>-rpc)"},
			&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated replica ids"},
			&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
			&cli.StringFlag{Name: "device", Usage: "verbs device (shm: the exchange's fabric; tcp: a local listen address)"},
			&cli.Uint64Flag{Name: "trader", Usage: "trader id (0: a random one)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "bound on one request, across leader changes"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected arguments %q: everything is a flag", c.Args().Slice())
			}
			ids, err := stbench.ParseIDs(c.String("ids"))
			if err != nil {
				return err
			}
			if c.String("registry") == "" {
				return fmt.Errorf("no registry: set %s or --registry (orderbook-server prints it after \"traders:\")", registry.EnvAddr)
			}
			cl, closeAll, err := connect(c.Context, c.String("registry"), c.String("cluster"), c.String("transport"), c.String("device"), ids, c.Uint64("trader"), c.Duration("timeout"))
			if err != nil {
				return err
			}
			defer closeAll()
			return console(os.Stdin, os.Stdout, cl, interactive(os.Stdin))
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "orderbook-cli:", err)
		os.Exit(1)
	}
}

func interactive(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// connect dials the exchange as a registry observer.
func connect(ctx context.Context, regAddr, clusterName, transport, device string, ids []int, trader uint64, timeout time.Duration) (*client.Client, func(), error) {
	dev, err := verbs.Open(transport, device, verbs.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s device %q: %w", transport, device, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reg, err := registry.Dial(dctx, registry.Config{Addr: regAddr, Cluster: clusterName + "-rpc"})
	if err != nil {
		dev.Close()
		return nil, nil, err
	}
	cl, err := client.Dial(dctx, client.Config{RPC: verbsrpc.Config{Device: dev, Registry: reg, Poll: poll.Sleep},
		IDs: ids, Trader: trader, Attempt: 100 * time.Millisecond, Timeout: timeout, DialTimeout: 2 * time.Second})
	if err != nil {
		reg.Close()
		dev.Close()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); reg.Close(); dev.Close() }, nil
}

const help = `BUY|SELL qty SYMBOL price|MKT [AON] [IOC] [FOK] [STOP price]
CANCEL id | MODIFY id [QTY ±n] [PRICE p] | DISPLAY SYMBOL | TRADER | HELP | QUIT
`

// console runs lines from in against the exchange until EOF or QUIT. A bad
// line or a refused order is reported and the console goes on; it fails
// only when the exchange cannot be reached.
func console(in io.Reader, out io.Writer, cl *client.Client, prompt bool) error {
	sc := bufio.NewScanner(in)
	for {
		if prompt {
			fmt.Fprint(out, "> ")
		}
		if !sc.Scan() {
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch strings.ToUpper(line) {
		case "QUIT", "EXIT":
			return nil
		case "HELP", "?":
			fmt.Fprint(out, help)
			continue
		case "TRADER":
			if err := showTrader(out, cl); err != nil {
				return err
			}
			continue
		}
		cmd, err := script.Parse(line)
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
			continue
		}
		if err := run(out, cl, cmd); err != nil {
			return err
		}
	}
}

// run sends one command and prints its outcome.
func run(out io.Writer, cl *client.Client, cmd script.Command) error {
	var req wire.Request
	switch cmd.Op {
	case script.OpNone:
		return nil
	case script.OpMarket:
		fmt.Fprintln(out, "error: MARKET is not an exchange request: the market price moves with trades")
		return nil
	case script.OpOrder:
		req = wire.Request{Op: wire.OpNew, Side: cmd.Side, Qty: cmd.Qty, Price: cmd.Price, Stop: cmd.Stop, Flags: cmd.Flags}
		req.SetSymbol(cmd.Symbol)
	case script.OpCancel:
		req = wire.Request{Op: wire.OpCancel, Order: cmd.ID}
	case script.OpModify:
		req = wire.Request{Op: wire.OpReplace, Order: cmd.ID, Qty: cmd.QtyDelta, Price: cmd.Price}
	case script.OpDisplay:
		req = wire.Request{Op: wire.OpDepth}
		req.SetSymbol(cmd.Symbol)
		_, raw, err := cl.Do(&req)
		if err != nil {
			return err
		}
		var d wire.Depth
		if err := wire.DecodeDepth(raw, &d); err != nil {
			return err
		}
		fmt.Fprint(out, formatDepth(cmd.Symbol, &d))
		return nil
	}
	res, _, err := cl.Do(&req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, formatResult(&res))
	return nil
}

// formatResult says what a request did to its order.
func formatResult(r *wire.Result) string {
	var b strings.Builder
	switch r.Op {
	case wire.OpNew:
		fmt.Fprintf(&b, "order #%d ", r.Order)
	default:
		fmt.Fprintf(&b, "%s #%d ", r.Op, r.Order)
	}
	switch r.Status {
	case wire.StatusOK:
		b.WriteString("accepted: ")
	case wire.StatusRejected:
		fmt.Fprintf(&b, "rejected: %v", r.Reason)
		return b.String()
	default:
		fmt.Fprintf(&b, "%v", r.Status)
		return b.String()
	}
	if r.Filled > 0 {
		fills := "fills"
		if r.Fills == 1 {
			fills = "fill"
		}
		fmt.Fprintf(&b, "filled %d (%d %s, avg %s, last %d), ", r.Filled, r.Fills, fills, avg(r.Notional, r.Filled), r.Last)
	}
	switch r.State {
	case wire.StateResting:
		fmt.Fprintf(&b, "resting %d", r.Open)
	case wire.StateStop:
		fmt.Fprintf(&b, "stop pending, %d", r.Open)
	default:
		b.WriteString("done")
	}
	return b.String()
}

// avg is a notional over a quantity, to two decimals of a tick.
func avg(notional int64, qty book.Qty) string {
	hundredths := notional * 100 / int64(qty)
	if hundredths%100 == 0 {
		return fmt.Sprint(hundredths / 100)
	}
	return fmt.Sprintf("%d.%02d", hundredths/100, hundredths%100)
}

// formatDepth prints the asks worst to best above the bids best to worst.
func formatDepth(sym string, d *wire.Depth) string {
	var b strings.Builder
	market := "none"
	if d.Market != 0 {
		market = fmt.Sprint(d.Market)
	}
	fmt.Fprintf(&b, "%s market %s\n", sym, market)
	for i := len(d.Asks) - 1; i >= 0; i-- {
		l := d.Asks[i]
		fmt.Fprintf(&b, "  ask %8d x %-6d %d orders\n", l.Price, l.Qty, l.Orders)
	}
	b.WriteString("  ---\n")
	for _, l := range d.Bids {
		fmt.Fprintf(&b, "  bid %8d x %-6d %d orders\n", l.Price, l.Qty, l.Orders)
	}
	return b.String()
}

func showTrader(out io.Writer, cl *client.Client) error {
	_, raw, err := cl.Do(&wire.Request{Op: wire.OpTrader})
	if err != nil {
		return err
	}
	var ts wire.TraderState
	if err := wire.DecodeTrader(raw, &ts); err != nil {
		return errors.Join(errors.New("trader state"), err)
	}
	fmt.Fprintf(out, "trader %d: %d requests applied, %d orders open, %d filled\n", cl.Trader(), ts.Applied, ts.Open, ts.Filled)
	return nil
}
