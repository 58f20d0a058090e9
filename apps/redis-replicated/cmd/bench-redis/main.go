// Command bench-redis measures redis-server-replicated beside plain Redis
// with the same load generator, Redis's own redis-benchmark, in one run.
//
//	bench-redis [flags]
//
// It benchmarks, one after the other so that they do not compete for the
// CPUs, up to three targets (--targets, default all three):
//
//	replicated  redis-server-replicated --local 3 --port P: a 3-replica
//	            cluster whose leader serves on P (replicas on P+1, P+2)
//	standalone  redis-server-replicated --standalone --port P+10: the same
//	            server without consensus, to isolate replication's cost
//	redis       redis-server --port P+20 --save "" --appendonly no: Debian's
//	            Redis without persistence
//
// For each it starts the server, waits until PING answers +PONG and INFO
// replication says role:master on the serving port (--startup-timeout),
// runs `redis-benchmark -t set,get -n N -r K -d D --csv` twice, with -c 1
// (one request outstanding: latency) and with -c 50 -P 16 (throughput),
// and stops the server's whole process group. Servers and redis-benchmark
// run in process groups of their own with a parent-death signal, and are
// killed on SIGINT, SIGTERM and any error.
//
// Flags: --server PATH of redis-server-replicated (default: the one next to
// bench-redis, then PATH); --redis-server, --redis-benchmark (Debian's
// binaries); --requests N, redis-benchmark's -n (default 100000);
// --keyspace K, its -r (default 100000); --data-size D, its -d (default 3);
// --ports P (default: a free range); --targets LIST (comma-separated);
// --skip-redis; --startup-timeout; --bench-timeout (per redis-benchmark run).
//
// Output: a table with one row per target, test and setting (latencies in
// µs, from redis-benchmark's millisecond figures),
//
//	target      test  clients pipeline          rps     p50_us     p99_us
//	redis       SET         1        1        12345       79.0      151.0
//
// then the standalone numbers and the comparisons (the ratio lines only
// when both sides ran),
//
//	bench-redis standalone_rps=<rps> standalone_p50_us=<µs>
//	bench-redis ratio replicated/redis rps=<x> p50=<y>
//	bench-redis replicated-standalone p50_us=<µs>
//
// and, last,
//
//	bench-redis replicated_rps=<a> redis_rps=<b> replicated_p50_us=<c> redis_p50_us=<d>
//
// where rps is the mean of the SET and GET rates at -c 50 -P 16 and p50 the
// mean of the SET and GET medians at -c 1; a target that did not run reads
// n/a.
package main

import (
	"context"
	"fmt"
	"io"
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
	targetRedis      = "redis"
)

var allTargets = []string{targetReplicated, targetStandalone, targetRedis}

func main() {
	app := &cli.App{
		Name:  "bench-redis",
		Usage: "redis-benchmark against redis-server-replicated (3 replicas and standalone) and Debian's redis-server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "redis-server-replicated binary (default: next to bench-redis, then PATH)"},
			&cli.StringFlag{Name: "redis-server", Value: "/usr/bin/redis-server", Usage: "Debian's redis-server"},
			&cli.StringFlag{Name: "redis-benchmark", Value: "/usr/bin/redis-benchmark", Usage: "redis-benchmark binary"},
			&cli.IntFlag{Name: "requests", Value: 100_000, Usage: "requests per test (redis-benchmark -n)"},
			&cli.IntFlag{Name: "keyspace", Value: 100_000, Usage: "random keys (redis-benchmark -r)"},
			&cli.IntFlag{Name: "data-size", Value: 3, Usage: "value size in bytes (redis-benchmark -d)"},
			&cli.IntFlag{Name: "ports", Usage: "base port P: replicated P..P+2, standalone P+10, redis P+20 (0: find a free range)"},
			&cli.StringFlag{Name: "targets", Value: strings.Join(allTargets, ","), Usage: "comma-separated targets to run"},
			&cli.BoolFlag{Name: "skip-redis", Usage: "leave out the Debian redis-server target"},
			&cli.DurationFlag{Name: "startup-timeout", Value: 30 * time.Second, Usage: "how long a server may take to serve as leader"},
			&cli.DurationFlag{Name: "bench-timeout", Value: 10 * time.Minute, Usage: "deadline of each redis-benchmark run"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "bench-redis:", err)
		os.Exit(1)
	}
}

type options struct {
	targets        []string
	server         string
	redisServer    string
	benchmark      string
	requests       int
	keyspace       int
	dataSize       int
	base           int
	startupTimeout time.Duration
	benchTimeout   time.Duration
}

func parse(c *cli.Context) (options, error) {
	o := options{
		redisServer: c.String("redis-server"), benchmark: c.String("redis-benchmark"),
		requests: c.Int("requests"), keyspace: c.Int("keyspace"), dataSize: c.Int("data-size"),
		base: c.Int("ports"), startupTimeout: c.Duration("startup-timeout"), benchTimeout: c.Duration("bench-timeout"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("no arguments expected, got %q", c.Args().Slice())
	}
	for _, t := range strings.Split(c.String("targets"), ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(allTargets, t) {
			return o, fmt.Errorf("--targets: unknown target %q (want some of %s)", t, strings.Join(allTargets, ","))
		}
		if t == targetRedis && c.Bool("skip-redis") {
			continue
		}
		if !slices.Contains(o.targets, t) {
			o.targets = append(o.targets, t)
		}
	}
	if len(o.targets) == 0 {
		return o, fmt.Errorf("no targets to run")
	}
	if o.requests <= 0 || o.keyspace <= 0 || o.dataSize <= 0 {
		return o, fmt.Errorf("--requests, --keyspace and --data-size must be positive")
	}
	if o.base < 0 || o.base+22 > 65535 {
		return o, fmt.Errorf("--ports %d: the range %d..%d is not all TCP ports", o.base, o.base, o.base+22)
	}
	if _, err := exec.LookPath(o.benchmark); err != nil {
		return o, fmt.Errorf("--redis-benchmark: %w (apt-get install redis-tools)", err)
	}
	if slices.Contains(o.targets, targetRedis) {
		if _, err := exec.LookPath(o.redisServer); err != nil {
			return o, fmt.Errorf("--redis-server: %w (apt-get install redis-server)", err)
		}
	}
	if slices.Contains(o.targets, targetReplicated) || slices.Contains(o.targets, targetStandalone) {
		var err error
		if o.server, err = benchproc.FindBinary("redis-server-replicated", "server", c.String("server")); err != nil {
			return o, err
		}
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
		if o.base, err = freeRange(); err != nil {
			return err
		}
	}
	var results []Result
	for _, t := range o.targets {
		rs, err := benchTarget(ctx, t, o, os.Stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		results = append(results, rs...)
	}
	FormatTable(os.Stdout, results)
	FormatSummary(os.Stdout, results)
	return nil
}

// freeRange finds a base port whose ports are free now.
func freeRange() (int, error) { return benchproc.FreeBase(rangePorts) }

func rangePorts(base int) []int {
	return []int{base, base + 1, base + 2, base + 10, base + 20}
}

// benchTarget starts target's server, runs both settings against it, and
// stops it.
func benchTarget(ctx context.Context, target string, o options, progress io.Writer) ([]Result, error) {
	var (
		bin   string
		args  []string
		port  int
		ports []int
	)
	switch target {
	case targetReplicated:
		port = o.base
		ports = []int{port, port + 1, port + 2}
		bin, args = o.server, []string{"--local", "3", "--port", fmt.Sprint(port)}
	case targetStandalone:
		port = o.base + 10
		ports = []int{port}
		bin, args = o.server, []string{"--standalone", "--port", fmt.Sprint(port)}
	case targetRedis:
		port = o.base + 20
		ports = []int{port}
		bin, args = o.redisServer, []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}
	}
	if err := benchproc.PortsFree(ports...); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench-redis: starting %s: %s %s\n", target, bin, strings.Join(args, " "))
	srv, err := benchproc.Start(target, bin, args...)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	t0 := time.Now()
	if err := srv.WaitReady(ctx, fmt.Sprintf("127.0.0.1:%d", port), o.startupTimeout, probe); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench-redis: %s serves on port %d after %v\n", target, port, time.Since(t0).Round(time.Millisecond))
	var out []Result
	for _, s := range settings {
		fmt.Fprintf(progress, "bench-redis: %s: redis-benchmark -t set,get -n %d %s\n", target, o.requests, s)
		rows, err := runBenchmark(ctx, o.benchmark, port, s, o)
		if err != nil {
			return nil, err
		}
		// A server that crashed under load must not pass for a fast one.
		if err := srv.Exited(); err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, Result{Target: target, Setting: s, Row: r})
		}
	}
	return out, nil
}
