// Command bench-memcached measures memcached-replicated beside Debian's
// memcached with the same load generators, in one run.
//
//	bench-memcached [flags]
//
// It benchmarks, one after the other so that they do not compete for the
// CPUs, up to three targets (--targets, default all three):
//
//	replicated  memcached-replicated --local 3 -p P: a 3-replica cluster
//	            whose leader, replica 1, serves on P (replicas on P+1, P+2)
//	standalone  memcached-replicated --standalone -p P+10: the same server
//	            without consensus, to isolate replication's cost
//	memcached   memcached -p P+20 -U 0 -l 127.0.0.1 (-u nobody as root):
//	            Debian's memcached
//
// every one with -m --memory (default 256 MiB: memcslap's four runs store
// about 4×N×2.5 KB). For each it starts the server, waits until it answers
// version with VERSION and stores a key (so a cluster has a leader and
// replicates; --startup-timeout), then runs, in order, each against the
// port that stores the probe key just before it (a cluster's leader: it may
// move under load, and memcslap and memcaslap do not follow it; a move
// during a run fails that run):
//
//	memcslap   --servers=127.0.0.1:<port> --execute-number=N --test=set|get
//	           (--requests N, default 20000; its default concurrency, 1 thread; its keys are
//	           20-60 B, values 50-5000 B); --memcslap-tests picks among set,
//	           get, bin-set and bin-get (the same with --binary). ops/s is
//	           threads×N over the time it reports for the test (a get test's
//	           untimed initial load stores the N keys first).
//	memcaslap  -s 127.0.0.1:<port> -t T -F <config>: its default 1 thread,
//	           16 concurrent connections and 9 gets to 1 set, keys of 16 B
//	           and values of 32 B (the config file; memcaslap's default
//	           1 KiB values overflow memcached's default 64 MiB, which answers
//	           SERVER_ERROR out of memory); ops/s is its TPS (--memcaslap-time
//	           T; --skip-memcaslap leaves it out).
//	puts-only  memcached-puts-only --requests L --out F 16 32 127.0.0.1 <port>
//	gets-only  memcached-gets-only, the same: one request outstanding, 16 B
//	           keys and 32 B values (--latency-requests L, default 20000); ops/s is its
//	           requests/s, and p50/p99/p99.9 its latencies.
//
// and stops the server's whole process group. Servers and load generators
// run in process groups of their own with a parent-death signal, and are
// killed on SIGINT, SIGTERM and any error. Before the first bin- test, a
// binary version and set check that the server speaks the binary protocol:
// memcslap against a server that drops binary requests waits out a timeout
// per request. A run that fails (memcslap exits 0 even when every request
// failed: its "Fatal error" lines and short counts are what fail it;
// memcaslap fails on any reply it echoes as unexpected) is a "failed" row;
// the other runs go on, unless the server exited, and bench-memcached
// exits 1 at the end, naming what failed.
//
// Flags: --server PATH of memcached-replicated, --puts-only, --gets-only
// (default: next to bench-memcached, then PATH); --memcached, --memcslap,
// --memcaslap (Debian's binaries); --ports P (default: a free range);
// --targets LIST (comma-separated); --skip-memcached; --startup-timeout;
// --bench-timeout (per load generator run, default 2m). The defaults take
// about a minute and a half on a loaded 2-core machine.
//
// Output: a table with one row per target, tool and test (latencies in µs),
//
//	target      tool       test              ops/s     p50_us     p99_us   p99.9_us
//	memcached   memcslap   set               27027          -          -          -
//	memcached   puts-only  set               23528       35.9       84.4      214.5
//
// then, per tool and test, replicated's ops/s over memcached's and
// replicated's p50 minus standalone's, then the standalone numbers and the
// comparisons (the ratio lines only when both sides ran),
//
//	bench-memcached standalone_ops=<ops/s> standalone_p50_us=<µs>
//	bench-memcached ratio replicated/memcached ops=<x> p50=<y>
//	bench-memcached replicated-standalone p50_us=<µs>
//
// and, last,
//
//	bench-memcached replicated_ops=<a> memcached_ops=<b> ratio=<a/b> replicated_p50_us=<c> standalone_p50_us=<d> memcached_p50_us=<e>
//
// where ops is the mean of memcslap's set and get rates (text protocol) and
// p50 the mean of the puts-only and gets-only medians; a number whose runs
// did not succeed reads n/a.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/benchproc"
)

const (
	targetReplicated = "replicated"
	targetStandalone = "standalone"
	targetMemcached  = "memcached"
)

var allTargets = []string{targetReplicated, targetStandalone, targetMemcached}

// memcslapTests are the memcslap runs --memcslap-tests may pick.
var memcslapTests = []string{"set", "get", "bin-set", "bin-get"}

func main() {
	app := &cli.App{
		Name:  "bench-memcached",
		Usage: "memcslap, memcaslap and latency clients against memcached-replicated (3 replicas and standalone) and Debian's memcached",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "memcached-replicated binary (default: next to bench-memcached, then PATH)"},
			&cli.StringFlag{Name: "puts-only", Usage: "memcached-puts-only binary (default: next to bench-memcached, then PATH)"},
			&cli.StringFlag{Name: "gets-only", Usage: "memcached-gets-only binary (default: next to bench-memcached, then PATH)"},
			&cli.StringFlag{Name: "memcached", Value: "/usr/bin/memcached", Usage: "Debian's memcached"},
			&cli.StringFlag{Name: "memcslap", Value: "/usr/bin/memcslap", Usage: "memcslap binary (libmemcached-tools)"},
			&cli.StringFlag{Name: "memcaslap", Value: "/usr/bin/memcaslap", Usage: "memcaslap binary (libmemcached-tools)"},
			&cli.IntFlag{Name: "requests", Value: 20_000, Usage: "operations per memcslap run (its --execute-number)"},
			&cli.StringFlag{Name: "memcslap-tests", Value: strings.Join(memcslapTests, ","), Usage: "comma-separated memcslap runs: set, get, bin-set, bin-get (bin-: --binary)"},
			&cli.DurationFlag{Name: "memcaslap-time", Value: 5 * time.Second, Usage: "length of each memcaslap run (its -t)"},
			&cli.BoolFlag{Name: "skip-memcaslap", Usage: "leave memcaslap out"},
			&cli.IntFlag{Name: "latency-requests", Value: 20_000, Usage: "requests per latency client run (their --requests)"},
			&cli.IntFlag{Name: "memory", Value: 256, Usage: "item memory of every server in MiB (-m)"},
			&cli.IntFlag{Name: "ports", Usage: "base port P: replicated P..P+2, standalone P+10, memcached P+20 (0: find a free range)"},
			&cli.StringFlag{Name: "targets", Value: strings.Join(allTargets, ","), Usage: "comma-separated targets to run"},
			&cli.BoolFlag{Name: "skip-memcached", Usage: "leave out the Debian memcached target"},
			&cli.DurationFlag{Name: "startup-timeout", Value: 30 * time.Second, Usage: "how long a server may take to serve as leader"},
			&cli.DurationFlag{Name: "bench-timeout", Value: 2 * time.Minute, Usage: "deadline of each load generator run"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "bench-memcached:", err)
		os.Exit(1)
	}
}

type options struct {
	targets        []string
	server         string
	putsOnly       string
	getsOnly       string
	memcached      string
	memcslap       string
	memcaslap      string // "" when left out
	requests       int
	tests          []string
	memcaslapTime  time.Duration
	latRequests    int
	memoryMB       int
	base           int
	startupTimeout time.Duration
	benchTimeout   time.Duration
}

// list splits a comma-separated flag into its distinct known words.
func list(flag, value string, known []string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(value, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(known, t) {
			return nil, fmt.Errorf("--%s: unknown %q (want some of %s)", flag, t, strings.Join(known, ","))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func parse(c *cli.Context) (options, error) {
	o := options{
		memcached: c.String("memcached"), memcslap: c.String("memcslap"), memcaslap: c.String("memcaslap"),
		requests: c.Int("requests"), memcaslapTime: c.Duration("memcaslap-time"), latRequests: c.Int("latency-requests"),
		memoryMB: c.Int("memory"), base: c.Int("ports"),
		startupTimeout: c.Duration("startup-timeout"), benchTimeout: c.Duration("bench-timeout"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("no arguments expected, got %q", c.Args().Slice())
	}
	var err error
	if o.targets, err = list("targets", c.String("targets"), allTargets); err != nil {
		return o, err
	}
	if c.Bool("skip-memcached") {
		o.targets = slices.DeleteFunc(o.targets, func(t string) bool { return t == targetMemcached })
	}
	if len(o.targets) == 0 {
		return o, errors.New("no targets to run")
	}
	if o.tests, err = list("memcslap-tests", c.String("memcslap-tests"), memcslapTests); err != nil {
		return o, err
	}
	if c.Bool("skip-memcaslap") {
		o.memcaslap = ""
	}
	switch {
	case o.requests <= 0 || o.latRequests <= 0:
		return o, errors.New("--requests and --latency-requests must be positive")
	case o.memoryMB <= 0:
		return o, errors.New("--memory must be positive")
	case o.memcaslap != "" && o.memcaslapTime < time.Second:
		return o, fmt.Errorf("--memcaslap-time %v: memcaslap counts whole seconds; want at least 1s", o.memcaslapTime)
	case o.startupTimeout <= 0 || o.benchTimeout <= 0:
		return o, errors.New("--startup-timeout and --bench-timeout must be positive")
	case o.base < 0 || o.base+22 > 65535:
		return o, fmt.Errorf("--ports %d: the range %d..%d is not all TCP ports", o.base, o.base, o.base+22)
	}
	if len(o.tests) > 0 {
		if _, err := exec.LookPath(o.memcslap); err != nil {
			return o, fmt.Errorf("--memcslap: %w (apt-get install libmemcached-tools)", err)
		}
	}
	if o.memcaslap != "" {
		if _, err := exec.LookPath(o.memcaslap); err != nil {
			return o, fmt.Errorf("--memcaslap: %w (apt-get install libmemcached-tools, or --skip-memcaslap)", err)
		}
	}
	if slices.Contains(o.targets, targetMemcached) {
		if _, err := exec.LookPath(o.memcached); err != nil {
			return o, fmt.Errorf("--memcached: %w (apt-get install memcached)", err)
		}
	}
	if slices.Contains(o.targets, targetReplicated) || slices.Contains(o.targets, targetStandalone) {
		if o.server, err = benchproc.FindBinary("memcached-replicated", "server", c.String("server")); err != nil {
			return o, err
		}
	}
	if o.putsOnly, err = benchproc.FindBinary("memcached-puts-only", "puts-only", c.String("puts-only")); err != nil {
		return o, err
	}
	if o.getsOnly, err = benchproc.FindBinary("memcached-gets-only", "gets-only", c.String("gets-only")); err != nil {
		return o, err
	}
	return o, nil
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	// Cancelling on SIGINT/SIGTERM, rather than dying of them, lets the
	// deferred stops end every server's process group.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.base == 0 {
		if o.base, err = benchproc.FreeBase(rangePorts); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "bench-memcached-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var (
		results []Result
		failed  []string
	)
	for _, t := range o.targets {
		rs, err := benchTarget(ctx, t, o, dir, os.Stderr)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		results = append(results, rs...)
		for _, r := range rs {
			if r.Err != nil {
				failed = append(failed, fmt.Sprintf("%s %s %s: %v", r.Target, r.Tool, r.Test, r.Err))
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", t, err))
		}
	}
	FormatTable(os.Stdout, results)
	FormatComparison(os.Stdout, results)
	FormatSummary(os.Stdout, results)
	if len(failed) > 0 {
		return fmt.Errorf("%d failed:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// rangePorts are the ports the three targets of base need.
func rangePorts(base int) []int {
	return []int{base, base + 1, base + 2, base + 10, base + 20}
}
