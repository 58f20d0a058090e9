// Command orderbook-trader is the load of Mu's Liquibook demo: traders
// sending orders to the replicated exchange (orderbook-server), each with
// one order outstanding, every order's latency measured from its first
// send to its final answer through any leader change.
//
//	orderbook-trader --registry ADDR --transport shm --device FABRIC --ids 1,2,3 [flags]
//	orderbook-trader --local 3 [flags]     start a 3-replica exchange, run, stop it
//
// The first form takes what `orderbook-server --local N` prints on its
// "traders:" line (DORY_REGISTRY_IP and IDS stand for --registry and
// --ids, TRADERS_NUM for --traders). With --local N it starts the exchange
// itself, N replicas of orderbook-server (--server, default: next to this
// binary, then PATH) on shm with an embedded registry, and tears it down at
// the end; --local 1 --standalone runs the unreplicated baseline.
//
// The traders run --orders orders in all (default 100000), or for
// --duration, with the --mix of kinds (limit, cross, market, cancel,
// replace, ioc, fok, stop; see internal/trader) over --symbols. Output:
//
//   - the latency dump, one ns value a line in send order (--out, default
//     orderbook-cli.txt, as Mu's client writes; "" for none);
//   - with --timeline FILE, a CSV of every order:
//     send_unix_ns,latency_ns,trader,op,status,attempts;
//   - on stdout, percentiles, throughput, counts by kind and status, the
//     clients' redirects, timeouts, retries and reconnects, and the check
//     (on by default): `check: traders=N acked=X applied=Y lost=0 doubled=0`,
//     what the exchange says it applied for each trader against what the
//     trader was answered (followed by mismatched=, unresolved= and
//     unreadable= counts when some traders could not be judged);
//   - last, `orderbook-trader orders=… p50_ns=… p99_ns=… p999_ns=… max_ns=… lost=… doubled=…`.
//
// It exits 1 when the check fails (anything lost, doubled or unanswered).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/registry"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

const name = "orderbook-trader"

// defaultOrders is --orders when neither it nor --duration is given.
const defaultOrders = 100_000

func main() {
	app := &cli.App{
		Name:            name,
		Usage:           "traders sending orders to the replicated exchange (orderbook-server), measuring latency and checking nothing is lost or doubled",
		Flags:           flags(),
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "the exchange's registry `HOST:PORT`"},
		&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
		&cli.StringFlag{Name: "device", Usage: "verbs device (shm: the fabric the exchange printed; tcp: a local address, default 127.0.0.1:0; ibv: the NIC)"},
		&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated ids of the replicas"},
		&cli.StringFlag{Name: "cluster", Value: trader.DefaultCluster, Usage: "the exchange's registry namespace (its RPC service is in <cluster>-rpc)"},
		&cli.IntFlag{Name: "traders", EnvVars: []string{"TRADERS_NUM"}, Value: 1, Usage: "traders, each a goroutine with its own session and one order outstanding"},
		&cli.IntFlag{Name: "orders", Usage: fmt.Sprintf("orders in all, split evenly among the traders (default %d unless --duration)", defaultOrders)},
		&cli.DurationFlag{Name: "duration", Usage: "run this long instead of a count of orders"},
		&cli.StringFlag{Name: "mix", Value: trader.DefaultMix.String(), Usage: "relative weights of the order kinds"},
		&cli.StringFlag{Name: "symbols", Value: "AAPL,MSFT,GOOG,AMZN", Usage: "comma-separated symbols traded"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the traders' choices and the mid prices' walk"},
		&cli.StringFlag{Name: "poll", Value: "yield", Usage: "how a trader waits for answers: spin, yield or sleep"},
		&cli.DurationFlag{Name: "attempt", Value: 20 * time.Millisecond, Usage: "bound on one send to one replica before trying another (a paused leader costs about this)"},
		&cli.DurationFlag{Name: "request-timeout", Value: 10 * time.Second, Usage: "bound on one request over all its sends before the client gives up (the trader then resends it)"},
		&cli.StringFlag{Name: "out", Value: "orderbook-cli.txt", Usage: "latency dump `FILE`, one ns value a line (\"\" for none)"},
		&cli.StringFlag{Name: "timeline", Usage: "write every order as CSV to `FILE`: send_unix_ns,latency_ns,trader,op,status,attempts"},
		&cli.BoolFlag{Name: "check", Value: true, Usage: "check at the end that the exchange applied exactly the orders it answered (--check=false to skip)"},
		&cli.IntFlag{Name: "keep", Value: trader.DefaultKeep, Usage: "orders kept for the dump, the timeline and the percentiles"},
		&cli.IntFlag{Name: "local", Usage: "start an `N`-replica orderbook-server cluster on this machine, run against it, stop it"},
		&cli.BoolFlag{Name: "standalone", Usage: "with --local 1: the unreplicated exchange (orderbook-server --standalone)"},
		&cli.StringFlag{Name: "server", Usage: "with --local: the orderbook-server binary (default: next to this binary, then PATH)"},
		&cli.StringFlag{Name: "profile", Usage: "with --local: the replicas' engine profile, fast or relaxed (default: the server's)"},
		&cli.StringFlag{Name: "server-poll", Usage: "with --local: the replicas' polling, spin, yield or sleep (default: the profile's)"},
		&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long the exchange may take to answer a first order"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "progress every second and, with --local, the replicas' stderr"},
	}
}

// options is the parsed command line.
type options struct {
	ep        trader.Endpoint
	run       trader.Config
	out       string
	timeline  string
	local     int
	local1    bool // --standalone
	server    string
	profile   string
	serverPol string
	start     time.Duration
	verbose   bool
}

func parse(c *cli.Context) (options, error) {
	o := options{
		ep: trader.Endpoint{Registry: c.String("registry"), Transport: c.String("transport"), Device: c.String("device"),
			Cluster: c.String("cluster"), Attempt: c.Duration("attempt"), Timeout: c.Duration("request-timeout")},
		run: trader.Config{Traders: c.Int("traders"), Orders: c.Int("orders"), Duration: c.Duration("duration"),
			Seed: c.Uint64("seed"), Check: c.Bool("check"), Keep: c.Int("keep")},
		out: c.String("out"), timeline: c.String("timeline"), local: c.Int("local"), local1: c.Bool("standalone"),
		profile: c.String("profile"), serverPol: c.String("server-poll"), start: c.Duration("start-timeout"), verbose: c.Bool("verbose"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: everything is a flag", c.Args().Slice())
	}
	var err error
	if o.run.Mix, err = trader.ParseMix(c.String("mix")); err != nil {
		return o, err
	}
	if o.run.Symbols, err = trader.ParseSymbols(c.String("symbols")); err != nil {
		return o, err
	}
	if o.ep.Poll, err = poll.ParseMode(c.String("poll")); err != nil {
		return o, fmt.Errorf("--poll: %w", err)
	}
	switch {
	case c.IsSet("orders") && c.IsSet("duration"):
		return o, errors.New("--orders and --duration exclude each other")
	case o.run.Orders < 0 || (c.IsSet("orders") && o.run.Orders == 0):
		return o, fmt.Errorf("--orders %d: want a positive count", o.run.Orders)
	case c.IsSet("duration") && o.run.Duration <= 0:
		return o, fmt.Errorf("--duration %v: want a positive length", o.run.Duration)
	case o.run.Traders < 1 || o.run.Traders > 1024:
		return o, fmt.Errorf("--traders %d: want 1 to 1024", o.run.Traders)
	case o.ep.Attempt <= 0 || o.ep.Timeout <= 0 || o.start <= 0:
		return o, errors.New("--attempt, --request-timeout and --start-timeout must be positive")
	case o.run.Keep < 1:
		return o, fmt.Errorf("--keep %d: want a positive count", o.run.Keep)
	case c.IsSet("local") && (o.local < 1 || o.local > consensus.MaxReplicas):
		return o, fmt.Errorf("--local %d: want a replica count from 1 to %d", o.local, consensus.MaxReplicas)
	}
	if o.run.Orders == 0 && o.run.Duration == 0 {
		o.run.Orders = defaultOrders
	}
	if o.run.Orders > 0 && o.run.Orders < o.run.Traders {
		return o, fmt.Errorf("--orders %d for %d traders: want at least one each", o.run.Orders, o.run.Traders)
	}
	if o.local > 0 {
		return o, parseLocal(c, &o)
	}
	for _, f := range []string{"standalone", "server", "profile", "server-poll"} {
		if c.IsSet(f) {
			return o, fmt.Errorf("--%s goes with --local", f)
		}
	}
	if o.ep.IDs, err = stbench.ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	switch {
	case o.ep.Registry == "":
		return o, fmt.Errorf("no registry: set %s or --registry to what orderbook-server printed (or use --local N)", registry.EnvAddr)
	case o.ep.Transport != "shm" && o.ep.Transport != "tcp" && o.ep.Transport != "ibv":
		return o, fmt.Errorf("unknown --transport %q (want shm, tcp or ibv)", o.ep.Transport)
	case o.ep.Transport == "shm" && o.ep.Device == "":
		return o, errors.New("--transport shm needs --device, the fabric orderbook-server printed")
	case o.ep.Transport == "tcp" && o.ep.Device == "":
		o.ep.Device = "127.0.0.1:0"
	}
	return o, nil
}

func parseLocal(c *cli.Context, o *options) error {
	for _, f := range []string{"registry", "device", "ids", "cluster"} {
		if c.IsSet(f) {
			return fmt.Errorf("--%s names an exchange to join; --local starts one", f)
		}
	}
	if c.IsSet("transport") && o.ep.Transport != "shm" {
		return fmt.Errorf("--local runs on shm, not --transport %s", o.ep.Transport)
	}
	if o.local1 && o.local != 1 {
		return fmt.Errorf("--standalone is one exchange: use --local 1, not %d", o.local)
	}
	if o.profile != "" && o.profile != string(consensus.ProfileFast) && o.profile != string(consensus.ProfileRelaxed) {
		return fmt.Errorf("unknown --profile %q (want fast or relaxed)", o.profile)
	}
	if o.serverPol != "" {
		if _, err := poll.ParseMode(o.serverPol); err != nil {
			return fmt.Errorf("--server-poll: %w", err)
		}
	}
	var err error
	o.server, err = benchproc.FindBinary("orderbook-server", "server", c.String("server"))
	return err
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var errOut io.Writer
	if o.verbose {
		errOut = os.Stderr
		o.run.Progress = os.Stderr
	}
	var local *trader.Local
	if o.local > 0 {
		local, err = trader.StartLocal(ctx, trader.LocalSpec{Server: o.server, Replicas: o.local, Standalone: o.local1,
			Profile: o.profile, Poll: o.serverPol, Name: name, Stderr: errOut})
		if err != nil {
			return err
		}
		defer local.Close()
		ep := local.Endpoint()
		ep.Poll, ep.Attempt, ep.Timeout = o.ep.Poll, o.ep.Attempt, o.ep.Timeout
		o.ep = ep
		fmt.Fprintln(os.Stderr, local.TradersLine())
	}
	rep, err := measure(ctx, o, local)
	if rep == nil {
		return err
	}
	if local != nil {
		err = errors.Join(err, local.Failed())
	}
	return errors.Join(err, output(os.Stdout, o, rep))
}

// measure connects, waits for the exchange, and runs the traders.
func measure(ctx context.Context, o options, local *trader.Local) (*trader.Report, error) {
	dctx, cancel := context.WithTimeout(ctx, o.start)
	defer cancel()
	conn, err := trader.Connect(dctx, o.ep)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	leader, err := conn.Probe(dctx)
	if err != nil {
		if local != nil {
			err = errors.Join(err, local.Failed())
		}
		return nil, fmt.Errorf("exchange at %s (ids %v): %w", o.ep.Registry, o.ep.IDs, err)
	}
	if o.verbose {
		fmt.Fprintf(os.Stderr, "%s: replica %d takes orders; %d traders start\n", name, leader, o.run.Traders)
	}
	o.run.Dial = conn.Dialer()
	return trader.Run(ctx, o.run)
}

// output writes the dump, the timeline and the summary.
func output(w io.Writer, o options, r *trader.Report) error {
	var errs []error
	if o.out != "" {
		if err := r.Latency.WriteRaw(o.out); err != nil {
			errs = append(errs, err)
		}
	}
	if o.timeline != "" {
		if err := trader.WriteTimelineFile(o.timeline, r.Samples); err != nil {
			errs = append(errs, err)
		}
	}
	r.Print(w)
	fmt.Fprintln(w, Headline(r))
	return errors.Join(errs...)
}

// Headline is the machine-readable last line.
func Headline(r *trader.Report) string {
	l := r.Latency
	f := []string{
		"orders=" + strconv.FormatInt(r.Orders, 10),
		"p50_ns=" + strconv.FormatInt(l.Percentile(50), 10),
		"p99_ns=" + strconv.FormatInt(l.Percentile(99), 10),
		"p999_ns=" + strconv.FormatInt(l.Percentile(99.9), 10),
		"max_ns=" + strconv.FormatInt(l.Percentile(100), 10),
		"lost=" + checkNum(r.Check, r.Check.Lost),
		"doubled=" + checkNum(r.Check, r.Check.Doubled),
	}
	return name + " " + strings.Join(f, " ")
}

func checkNum(c trader.CheckResult, v uint64) string {
	if !c.Ran {
		return "n/a"
	}
	return strconv.FormatUint(v, 10)
}
