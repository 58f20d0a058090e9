// Command bench-orderbook is the experiment of Mu's Liquibook demo on one
// machine: what replication adds to an order's latency, and what a
// trader sees when the exchange's leader hangs or dies.
//
//	bench-orderbook [flags]
//
// It runs, one after the other (--runs, default all four):
//
//	standalone  orderbook-server --standalone: the exchange without
//	            replication, the baseline (every exchange's RPC poller
//	            yields, orderbook-server's default --rpc-poll)
//	replicated  3 replicas of orderbook-server (--compare-profile
//	            relaxed by default, its engine sleeping when idle), the
//	            same load
//	pause       3 replicas (--profile fast --poll yield by default,
//	            Mu's µs detector); --fault-after into a --fault-duration run the
//	            leader is paused through its fifo ('p'), and --pause-for
//	            later continued ('c'): it rejoins as a follower
//	kill        the same, but the leader is killed (SIGKILL) and, after
//	            --restart-after, started again into the running cluster
//
// each exchange started fresh through internal/cluster (an embedded
// registry, one process per replica, shm), driven by in-process traders
// (internal/trader: --traders, default 1, one order outstanding each, the
// --mix of orderbook-trader) and stopped after its run. The comparison runs
// send --orders orders each after --warmup unmeasured ones; the fault runs
// last --fault-duration. Every run ends with the traders' check: what the
// exchange applied for each trader against what it was answered.
//
// Output: the comparison table (p50/p99/p99.9/max in µs, orders/s, the
// check) with replicated's p50 minus standalone's against the target of
// 1.5 µs; the fault table: per fault the longest stall (the longest time
// between two consecutive order completions, whatever caused it: on a
// loaded machine the fast profile's 250 µs suspicion also elects new
// leaders now and then, --suspect-timeout), the slowest order, the fault's
// own stall (the longest silence beginning within 500 ms after the fault,
// counted from the fault) and the recovery (the fault to the answer that
// ended it), p50 and p99 of the orders answered before the fault and of
// those sent after the recovery, and orders lost and doubled; per fault a PNG of latency over
// time with the fault marked (Mu's figure) and the run's timeline CSV in
// --png-dir (orderbook-pause.png, orderbook-pause.csv, …). Last,
//
//	bench-orderbook standalone_p50_ns=… replicated_p50_ns=… delta_p50_ns=… pause_stall_ms=… kill_stall_ms=… lost=… doubled=…
//
// (n/a for what did not run; the stalls are the runs' longest). It exits 1 when a run failed or anything
// was lost or doubled; a missed latency target is reported, not failed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/poll"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

const name = "bench-orderbook"

// faultWindow is how soon after the fault a silence must begin to count
// as the fault's (see analyze).
const faultWindow = 500 * time.Millisecond

const (
	runStandalone = "standalone"
	runReplicated = "replicated"
	faultPause    = "pause"
	faultKill     = "kill"
)

var allRuns = []string{runStandalone, runReplicated, faultPause, faultKill}

func main() {
	app := &cli.App{
		Name:            name,
		Usage:           "the order book exchange standalone vs replicated, and a trader's view of a paused and a killed leader",
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
		&cli.StringFlag{Name: "server", Usage: "orderbook-server binary (default: next to bench-orderbook, then PATH)"},
		&cli.StringFlag{Name: "runs", Value: strings.Join(allRuns, ","), Usage: "comma-separated runs: standalone, replicated, pause, kill"},
		&cli.IntFlag{Name: "orders", Value: 20_000, Usage: "measured orders of each comparison run"},
		&cli.IntFlag{Name: "warmup", Value: 1_000, Usage: "unmeasured orders before each comparison run"},
		&cli.IntFlag{Name: "traders", Value: 1, Usage: "traders of every run, one order outstanding each"},
		&cli.DurationFlag{Name: "fault-duration", Value: 4 * time.Second, Usage: "length of each fault run"},
		&cli.DurationFlag{Name: "fault-after", Value: 1500 * time.Millisecond, Usage: "when, into a fault run, the leader is failed"},
		&cli.DurationFlag{Name: "pause-for", Value: time.Second, Usage: "how long the paused leader stays paused"},
		&cli.DurationFlag{Name: "restart-after", Value: 200 * time.Millisecond, Usage: "how long after the kill the replica is started again"},
		&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileFast), Usage: "replicas' engine profile in the fault runs: fast or relaxed"},
		&cli.StringFlag{Name: "compare-profile", Value: string(consensus.ProfileRelaxed), Usage: "replicas' engine profile in the replicated comparison run (the fast profile's 50 µs heartbeats and 250 µs suspicion cost a 2-core machine more than replication does)"},
		&cli.StringFlag{Name: "server-poll", Value: "yield", Usage: "the engine's polling in the fault runs: spin, yield or sleep (\"\": the profile's); the comparison run keeps its profile's, and every exchange's RPC poller yields (orderbook-server --rpc-poll)"},
		&cli.DurationFlag{Name: "suspect-timeout", Usage: "replicas' --suspect-timeout (0: the profile's; raise it on a machine too loaded for the fast profile's 250µs)"},
		&cli.StringFlag{Name: "poll", Value: "yield", Usage: "how the traders wait for answers: spin, yield or sleep"},
		&cli.DurationFlag{Name: "attempt", Value: 3 * time.Millisecond, Usage: "bound on one send to one replica before a trader tries another (a paused leader costs about this; a send that times out is harmless: the resend is applied once)"},
		&cli.StringFlag{Name: "mix", Value: trader.DefaultMix.String(), Usage: "relative weights of the order kinds"},
		&cli.StringFlag{Name: "symbols", Value: "AAPL,MSFT,GOOG,AMZN", Usage: "comma-separated symbols traded"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the traders' choices"},
		&cli.StringFlag{Name: "png-dir", Value: ".", Usage: "where the fault runs' PNGs and timelines go"},
		&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long an exchange may take to answer a first order"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "progress every second and the replicas' stderr"},
	}
}

// options is the parsed command line.
type options struct {
	server        string
	runs          []string
	orders        int
	warmup        int
	traders       int
	faultDuration time.Duration
	faultAfter    time.Duration
	pauseFor      time.Duration
	restartAfter  time.Duration
	profile       string
	compare       string
	serverPoll    string
	suspect       time.Duration
	poll          poll.Mode
	attempt       time.Duration
	mix           trader.Mix
	symbols       []string
	seed          uint64
	pngDir        string
	startTimeout  time.Duration
	verbose       bool
}

// parseRuns splits --runs into its distinct known runs, in the order of
// allRuns.
func parseRuns(s string) ([]string, error) {
	var out []string
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(allRuns, r) {
			return nil, fmt.Errorf("--runs: unknown %q (want some of %s)", r, strings.Join(allRuns, ","))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--runs: nothing to run")
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(allRuns, a) - slices.Index(allRuns, b) })
	return out, nil
}

func parse(c *cli.Context) (options, error) {
	o := options{
		orders: c.Int("orders"), warmup: c.Int("warmup"), traders: c.Int("traders"),
		faultDuration: c.Duration("fault-duration"), faultAfter: c.Duration("fault-after"),
		pauseFor: c.Duration("pause-for"), restartAfter: c.Duration("restart-after"),
		profile: c.String("profile"), compare: c.String("compare-profile"), serverPoll: c.String("server-poll"), suspect: c.Duration("suspect-timeout"), attempt: c.Duration("attempt"),
		seed: c.Uint64("seed"), pngDir: c.String("png-dir"), startTimeout: c.Duration("start-timeout"), verbose: c.Bool("verbose"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("no arguments expected, got %q", c.Args().Slice())
	}
	var err error
	if o.runs, err = parseRuns(c.String("runs")); err != nil {
		return o, err
	}
	if o.mix, err = trader.ParseMix(c.String("mix")); err != nil {
		return o, err
	}
	if o.symbols, err = trader.ParseSymbols(c.String("symbols")); err != nil {
		return o, err
	}
	if o.poll, err = poll.ParseMode(c.String("poll")); err != nil {
		return o, fmt.Errorf("--poll: %w", err)
	}
	if o.serverPoll != "" {
		if _, err := poll.ParseMode(o.serverPoll); err != nil {
			return o, fmt.Errorf("--server-poll: %w", err)
		}
	}
	switch {
	case o.profile != string(consensus.ProfileFast) && o.profile != string(consensus.ProfileRelaxed):
		return o, fmt.Errorf("unknown --profile %q (want fast or relaxed)", o.profile)
	case o.compare != string(consensus.ProfileFast) && o.compare != string(consensus.ProfileRelaxed):
		return o, fmt.Errorf("unknown --compare-profile %q (want fast or relaxed)", o.compare)
	case o.traders < 1 || o.traders > 1024:
		return o, fmt.Errorf("--traders %d: want 1 to 1024", o.traders)
	case o.orders < o.traders:
		return o, fmt.Errorf("--orders %d: want at least one per trader (%d)", o.orders, o.traders)
	case o.warmup < 0:
		return o, fmt.Errorf("--warmup %d is negative", o.warmup)
	case o.faultAfter <= 0 || o.pauseFor <= 0 || o.restartAfter < 0:
		return o, errors.New("--fault-after and --pause-for must be positive, --restart-after not negative")
	case o.faultAfter+o.pauseFor >= o.faultDuration || o.faultAfter+o.restartAfter >= o.faultDuration:
		return o, fmt.Errorf("--fault-duration %v: the fault (at %v) and its end (%v, %v later) must fall inside the run",
			o.faultDuration, o.faultAfter, o.pauseFor, o.restartAfter)
	case o.suspect < 0:
		return o, fmt.Errorf("--suspect-timeout %v is negative", o.suspect)
	case o.attempt <= 0 || o.startTimeout <= 0:
		return o, errors.New("--attempt and --start-timeout must be positive")
	}
	if st, err := os.Stat(o.pngDir); err != nil || !st.IsDir() {
		return o, fmt.Errorf("--png-dir %s: not a directory", o.pngDir)
	}
	o.server, err = benchproc.FindBinary("orderbook-server", "server", c.String("server"))
	return o, err
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	// Cancelling on SIGINT/SIGTERM, rather than dying of them, lets the
	// deferred closes stop every replica.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		sides  []Side
		faults []Fault
		failed []string
	)
	for _, r := range o.runs {
		fmt.Fprintf(os.Stderr, "%s: %s run\n", name, r)
		switch r {
		case runStandalone, runReplicated:
			rep, err := runSide(ctx, o, r)
			s := sideOf(r, rep, err)
			sides = append(sides, s)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", r, err))
			}
		case faultPause, faultKill:
			f, err := runFault(ctx, o, r)
			faults = append(faults, f)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", r, err))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(sides) > 0 {
		printSides(os.Stdout, sides)
	}
	if len(faults) > 0 {
		printFaults(os.Stdout, faults)
	}
	fmt.Println(headline(sides, faults))
	if len(failed) > 0 {
		return fmt.Errorf("%d failed:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// exchange starts a fresh exchange for one run and connects to it; done
// stops both.
func exchange(ctx context.Context, o options, standalone bool, profile, enginePoll string) (local *trader.Local, conn *trader.Conn, leader int, done func(), err error) {
	var errOut io.Writer
	if o.verbose {
		errOut = os.Stderr
	}
	// Every exchange polls its traders' rings alike (the server's default
	// --rpc-poll), so that the comparison isolates replication.
	spec := trader.LocalSpec{Server: o.server, Replicas: 3, Standalone: standalone, Poll: enginePoll, Name: name, Stderr: errOut}
	if !standalone {
		spec.Profile = profile
		if o.suspect > 0 {
			spec.Extra = []string{"--suspect-timeout", o.suspect.String()}
		}
	}
	local, err = trader.StartLocal(ctx, spec)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	ep := local.Endpoint()
	ep.Poll, ep.Attempt = o.poll, o.attempt
	sctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	conn, err = trader.Connect(sctx, ep)
	if err != nil {
		local.Close()
		return nil, nil, 0, nil, err
	}
	leader, err = conn.Probe(sctx)
	if err != nil {
		conn.Close()
		local.Close()
		return nil, nil, 0, nil, errors.Join(err, local.Failed())
	}
	return local, conn, leader, func() { conn.Close(); local.Close() }, nil
}

func (o options) config(conn *trader.Conn) trader.Config {
	cfg := trader.Config{Traders: o.traders, Mix: o.mix, Symbols: o.symbols, Seed: o.seed, Check: true, Dial: conn.Dialer()}
	if o.verbose {
		cfg.Progress = os.Stderr
	}
	return cfg
}

// runSide is one comparison run: warm-up, then --orders measured.
func runSide(ctx context.Context, o options, which string) (*trader.Report, error) {
	local, conn, _, done, err := exchange(ctx, o, which == runStandalone, o.compare, "")
	if err != nil {
		return nil, err
	}
	defer done()
	cfg := o.config(conn)
	if o.warmup >= o.traders {
		w := cfg
		w.Orders, w.Seed = o.warmup, o.seed+1000
		if _, err := trader.Run(ctx, w); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	cfg.Orders = o.orders
	rep, err := trader.Run(ctx, cfg)
	return rep, errors.Join(err, local.Failed())
}

// runFault is one fault run: the traders run for --fault-duration while
// the leader is paused or killed, and brought back.
func runFault(ctx context.Context, o options, fault string) (Fault, error) {
	f := Fault{Name: fault}
	local, conn, _, done, err := exchange(ctx, o, false, o.profile, o.serverPoll)
	if err != nil {
		return f, err
	}
	defer done()
	cfg := o.config(conn)
	cfg.Duration = o.faultDuration
	result := make(chan injection, 1)
	cfg.OnStart = func(start time.Time) {
		go func() {
			result <- inject(ctx, o, fault, local, conn, start)
		}()
	}
	rep, runErr := trader.Run(ctx, cfg)
	inj := <-result
	if rep == nil {
		return f, errors.Join(runErr, inj.err)
	}
	if inj.err != nil || len(inj.marks) == 0 {
		return f, errors.Join(runErr, inj.err, errors.New("the fault was not injected"))
	}
	f = analyze(fault, rep.Samples, inj.marks[0].At, faultWindow)
	f.Check = rep.Check
	base := filepath.Join(o.pngDir, "orderbook-"+fault)
	f.PNG, f.Timeline = base+".png", base+".csv"
	title := fmt.Sprintf("order latency, leader %s (%d trader, %s)", map[string]string{faultPause: "paused", faultKill: "killed"}[fault], o.traders, o.profile)
	err = errors.Join(runErr, local.Failed(),
		writePNG(f.PNG, title, rep.Samples, inj.marks),
		trader.WriteTimelineFile(f.Timeline, rep.Samples))
	return f, err
}

// injection is what inject did: the instants, the fault first.
type injection struct {
	marks []Mark
	err   error
}

// inject fails the leader at --fault-after into the run and brings it
// back.
func inject(ctx context.Context, o options, fault string, local *trader.Local, conn *trader.Conn, start time.Time) (res injection) {
	sleepUntil := func(t time.Time) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Until(t)):
			return true
		}
	}
	if !sleepUntil(start.Add(o.faultAfter)) {
		res.err = ctx.Err()
		return
	}
	// Ask who leads now, just before failing it: a probe write through
	// a client of its own.
	pctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	leader, err := conn.Probe(pctx)
	cancel()
	if err != nil {
		res.err = fmt.Errorf("find the leader: %w", err)
		return
	}
	at := time.Now()
	switch fault {
	case faultPause:
		if err := local.Pause(leader); err != nil {
			res.err = err
			return
		}
		res.marks = append(res.marks, Mark{At: at.UnixNano(), Label: fmt.Sprintf("replica %d paused", leader)})
		if !sleepUntil(at.Add(o.pauseFor)) {
			res.err = ctx.Err()
			return
		}
		if err := local.Continue(leader); err != nil {
			res.err = err
			return
		}
		res.marks = append(res.marks, Mark{At: time.Now().UnixNano(), Label: "continued"})
	case faultKill:
		if err := local.Kill(leader); err != nil {
			res.err = err
			return
		}
		res.marks = append(res.marks, Mark{At: at.UnixNano(), Label: fmt.Sprintf("replica %d killed", leader)})
		if !sleepUntil(at.Add(o.restartAfter)) {
			res.err = ctx.Err()
			return
		}
		if err := local.Restart(leader); err != nil {
			res.err = err
			return
		}
		res.marks = append(res.marks, Mark{At: time.Now().UnixNano(), Label: "restarted"})
	}
	if o.verbose {
		fmt.Fprintf(os.Stderr, "%s: %s of replica %d at %v into the run\n", name, fault, leader, at.Sub(start).Round(time.Millisecond))
	}
	return
}
