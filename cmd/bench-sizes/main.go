// Command bench-sizes measures gomu's latency and throughput against the
// number of replicas (Electrode's scenarios). For every cluster size of
// --sizes (default 3,5,7) it runs Mu's standalone benchmarks,
// main-st-lat (latency: p50/p99/p99.9 with --outstanding concurrent
// proposers, default 1) and main-st (throughput: commands/s with
// --st-outstanding proposers, default 16; the median of --st-repeat runs,
// default 3), --payload bytes per command,
// --count commands per run on shm and --tcp-count on tcp, on two
// transports:
//
//	shm  main-st(-lat) --local --ids 1,…,n: an embedded registry and one
//	     process per replica on this machine, the shm provider
//	tcp  a test bed (internal/testbed; root only, --netns, on by default
//	     for root): one network namespace per replica, r1…rN, plus one for
//	     the registry, reg, running Debian's memcached, all on a bridge;
//	     replica i runs main-st(-lat) i … --transport tcp --device
//	     <its host's address>:<port> in its own namespace, and the output
//	     of the leader (replica 1) is read
//
// one run after the other, every run with the same engine profile and
// polling: --profile relaxed --poll sleep by default, because with 7
// replica processes and the proposer on a 2-core machine the cores are
// oversubscribed and spinning replicas would starve each other. A failed
// run is tried again (--retries). A stale bed of the same name (--bed-name)
// is swept first, and the bed is taken down on every exit path, SIGINT and
// SIGTERM included.
//
// Output, on stdout: a header naming the settings, then a table with one
// row per size and transport: p50/p99/p99.9 latency in µs, commands/s, and
// the ratios of p50 and of commands/s to those of the smallest size on the
// same transport (3 replicas by default). In --out-dir: bench-sizes.csv
// (the same rows, with p90, max, the range of the throughput runs and the
// settings) and bench-sizes.png (two panels: p50
// and p99 latency against the number of replicas, and commands/s against
// it, one colour per transport). Progress goes to stderr. The last line is
//
//	bench-sizes shm_p50_us=3:…,5:…,7:… tcp_p50_us=3:…,… shm_ops=3:…,… tcp_ops=3:…,…
//
// with n/a for what did not run or failed (tcp without root). It exits 1
// when a run failed every attempt, after running the others and writing
// what it has.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/internal/testbed"
)

const name = "bench-sizes"

func main() {
	if err := newApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// newApp is the command, its table on stdout and its progress on stderr.
func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            name,
		Usage:           "gomu's latency and throughput against the number of replicas, on shm and on tcp across network namespaces",
		Flags:           flags(),
		HideHelpCommand: true,
		Writer:          stdout,
		ErrWriter:       stderr,
		Action: func(c *cli.Context) error {
			cfg, err := parse(c)
			if err != nil {
				return err
			}
			// Signals are caught before anything starts, so that no
			// interruption leaves a process or the bed behind: the runs
			// end on ctx, and run's defers take everything down.
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, stdout, stderr)
		},
	}
}

func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sizes", Value: "3,5,7", Usage: "comma-separated cluster sizes (replicas 1..n of each)"},
		&cli.StringFlag{Name: "transports", Value: "shm,tcp", Usage: "comma-separated transports: shm (--local), tcp (the test bed; needs --netns)"},
		&cli.StringFlag{Name: "main-st", Value: "bin/main-st", Usage: "main-st binary (if the default is missing: next to bench-sizes, then PATH)"},
		&cli.StringFlag{Name: "main-st-lat", Value: "bin/main-st-lat", Usage: "main-st-lat binary (if the default is missing: next to bench-sizes, then PATH)"},
		&cli.IntFlag{Name: "count", Value: 500_000, Usage: "commands of each shm run"},
		&cli.IntFlag{Name: "tcp-count", Value: 50_000, Usage: "commands of each tcp run (0: --count); tcp commits take 100s of µs where shm's take 1"},
		&cli.IntFlag{Name: "payload", Value: 64, Usage: "bytes per command"},
		&cli.IntFlag{Name: "outstanding", Value: 1, Usage: "concurrent proposers of the latency runs (main-st-lat)"},
		&cli.IntFlag{Name: "st-outstanding", Value: 16, Usage: "concurrent proposers of the throughput runs (main-st)"},
		&cli.IntFlag{Name: "st-repeat", Value: 3, Usage: "throughput runs per size and transport; the median counts"},
		&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "replicas' engine profile: relaxed (ms heartbeats, sleeping loops) or fast (µs heartbeats, spinning: needs a core per replica)"},
		&cli.StringFlag{Name: "poll", Value: "sleep", Usage: "replicas' polling: spin, yield or sleep (\"\": the profile's)"},
		&cli.BoolFlag{Name: "netns", Value: testbed.Root(), Usage: "run the tcp rows in a test bed of network namespaces (default: on when root)"},
		&cli.StringFlag{Name: "bed-name", Value: "gbsz", Usage: "the test bed's name (1 to 6 of [a-z0-9]); a stale bed of that name is removed first"},
		&cli.StringFlag{Name: "subnet", Value: "10.213.9.0/24", Usage: "the test bed's IPv4 /24"},
		&cli.IntFlag{Name: "retries", Value: 2, Usage: "how often a failed run is tried again"},
		&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "limit of each run"},
		&cli.StringFlag{Name: "out-dir", Value: ".", Usage: "where bench-sizes.csv and bench-sizes.png go"},
		&cli.BoolFlag{Name: "verbose", Usage: "echo every run's output on stderr as it happens"},
	}
}

// Config is one invocation's settings.
type Config struct {
	Sizes         []int
	Transports    []string
	MainSt        string // binaries, absolute
	MainStLat     string
	Count         int // commands of a shm run
	TCPCount      int // of a tcp run
	Payload       int
	Outstanding   int
	STOutstanding int
	STRepeat      int // throughput runs of a size and transport
	Profile       string
	Poll          string
	Netns         bool
	BedName       string
	Subnet        string
	Retries       int
	Timeout       time.Duration
	OutDir        string
	Verbose       bool
}

func parse(c *cli.Context) (Config, error) {
	cfg := Config{
		Count: c.Int("count"), TCPCount: c.Int("tcp-count"), Payload: c.Int("payload"),
		Outstanding: c.Int("outstanding"), STOutstanding: c.Int("st-outstanding"), STRepeat: c.Int("st-repeat"),
		Profile: c.String("profile"), Poll: c.String("poll"),
		Netns: c.Bool("netns"), BedName: c.String("bed-name"), Subnet: c.String("subnet"),
		Retries: c.Int("retries"), Timeout: c.Duration("timeout"),
		OutDir: c.String("out-dir"), Verbose: c.Bool("verbose"),
	}
	var err error
	if cfg.Sizes, err = parseSizes(c.String("sizes")); err != nil {
		return cfg, err
	}
	for _, t := range strings.Split(c.String("transports"), ",") {
		t = strings.TrimSpace(t)
		if t != "shm" && t != "tcp" {
			return cfg, fmt.Errorf("--transports: unknown transport %q (want shm or tcp)", t)
		}
		if slices.Contains(cfg.Transports, t) {
			return cfg, fmt.Errorf("--transports: %s given twice", t)
		}
		cfg.Transports = append(cfg.Transports, t)
	}
	switch {
	case cfg.Count < 1:
		return cfg, fmt.Errorf("--count %d: want at least 1", cfg.Count)
	case cfg.TCPCount < 0:
		return cfg, fmt.Errorf("--tcp-count %d: want 0 (--count) or more", cfg.TCPCount)
	case cfg.Payload < 1 || cfg.Payload > stbench.MaxPayload:
		return cfg, fmt.Errorf("--payload %d out of range 1..%d", cfg.Payload, stbench.MaxPayload)
	case cfg.Outstanding < 1 || cfg.Outstanding > stbench.MaxOutstanding:
		return cfg, fmt.Errorf("--outstanding %d out of range 1..%d", cfg.Outstanding, stbench.MaxOutstanding)
	case cfg.STOutstanding < 1 || cfg.STOutstanding > stbench.MaxOutstanding:
		return cfg, fmt.Errorf("--st-outstanding %d out of range 1..%d", cfg.STOutstanding, stbench.MaxOutstanding)
	case cfg.Profile != string(consensus.ProfileRelaxed) && cfg.Profile != string(consensus.ProfileFast):
		return cfg, fmt.Errorf("--profile %q: want relaxed or fast", cfg.Profile)
	case cfg.STRepeat < 1:
		return cfg, fmt.Errorf("--st-repeat %d: want at least 1", cfg.STRepeat)
	case cfg.Retries < 0:
		return cfg, fmt.Errorf("--retries %d: want 0 or more", cfg.Retries)
	case cfg.Timeout <= 0:
		return cfg, fmt.Errorf("--timeout %v: want a positive duration", cfg.Timeout)
	}
	if cfg.TCPCount == 0 {
		cfg.TCPCount = cfg.Count
	}
	if cfg.Poll != "" {
		if _, err := poll.ParseMode(cfg.Poll); err != nil {
			return cfg, fmt.Errorf("--poll: %w", err)
		}
	}
	if cfg.Netns && !testbed.Root() {
		return cfg, errors.New("--netns: network namespaces need root (run with sudo, or --netns=false to skip the tcp rows)")
	}
	for _, b := range []struct {
		name string
		dst  *string
	}{{"main-st", &cfg.MainSt}, {"main-st-lat", &cfg.MainStLat}} {
		p, err := binary(c, b.name)
		if err != nil {
			return cfg, err
		}
		if *b.dst, err = filepath.Abs(p); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// binary resolves the --<tool> flag: the path it names; when it was left at
// its default and that is missing, the tool next to this executable or in
// PATH (benchproc.FindBinary).
func binary(c *cli.Context, tool string) (string, error) {
	v := c.String(tool)
	if c.IsSet(tool) {
		return benchproc.FindBinary(tool, tool, v)
	}
	if _, err := os.Stat(v); err == nil {
		return v, nil
	}
	return benchproc.FindBinary(tool, tool, "")
}

// parseSizes reads --sizes: distinct cluster sizes, sorted.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > consensus.MaxReplicas {
			return nil, fmt.Errorf("--sizes %q: %q is not a cluster size 1..%d", s, f, consensus.MaxReplicas)
		}
		if slices.Contains(sizes, n) {
			return nil, fmt.Errorf("--sizes %q: %d given twice", s, n)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return sizes, nil
}

// ids is "1,2,…,n".
func ids(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i + 1)
	}
	return strings.Join(s, ",")
}

// Row is one size on one transport: what its runs measured.
type Row struct {
	Size      int
	Transport string
	Lat       *LatResult  // nil when the latency run failed or did not run
	Tput      *TputResult // the median throughput run; nil when none succeeded
	// TputMin and TputMax are the extreme rates of the throughput runs.
	TputMin, TputMax float64
	TputRuns         int
	Err              []string // why a run failed
}

// add parses tool's output into r (main-st-lat) or onto rates (main-st).
func (r *Row) add(tool string, out []byte, rates *[]TputResult) error {
	if tool == "main-st-lat" {
		l, err := parseLat(out)
		if err != nil {
			return err
		}
		r.Lat = &l
		return nil
	}
	t, err := parseTput(out)
	if err != nil {
		return err
	}
	*rates = append(*rates, t)
	return nil
}

// setTput keeps the median of the throughput runs (the upper one of an
// even count) and their range.
func (r *Row) setTput(rates []TputResult) {
	if len(rates) == 0 {
		return
	}
	rates = slices.Clone(rates)
	slices.SortFunc(rates, func(a, b TputResult) int { return cmp.Compare(a.Rate, b.Rate) })
	m := rates[len(rates)/2]
	r.Tput = &m
	r.TputMin, r.TputMax, r.TputRuns = rates[0].Rate, rates[len(rates)-1].Rate, len(rates)
}

// run runs every transport and size, then writes the table, the CSV and the
// PNG. A failed run is reported in the table and makes run fail at the end.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	started := time.Now()
	var rows []*Row
	for _, tr := range cfg.Transports {
		if tr == "tcp" && !cfg.Netns {
			fmt.Fprintf(stderr, "%s: tcp skipped: it runs in a test bed of network namespaces, which needs root (--netns)\n", name)
			continue
		}
		var r runner
		switch tr {
		case "shm":
			r = &shmRunner{cfg: cfg, work: work, log: stderr}
		case "tcp":
			bed, err := startBed(ctx, cfg, work, stderr)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted (%v); the test bed is down", context.Cause(ctx))
				}
				return err
			}
			// Down also on the error paths below: a deferred call
			// runs on every return, and an interruption ends ctx, which
			// ends the runs, which return here.
			defer bed.Close()
			r = bed
		}
		for _, n := range cfg.Sizes {
			row := &Row{Size: n, Transport: tr}
			rows = append(rows, row)
			// The latency run, then --st-repeat throughput runs, of
			// which the median counts: one run of a second or so is at
			// the mercy of a stall of this VM or of a neighbour's burst.
			tools := []string{"main-st-lat"}
			for range cfg.STRepeat {
				tools = append(tools, "main-st")
			}
			var rates []TputResult
			for _, tool := range tools {
				out, err := attempt(ctx, cfg, r, tool, n, stderr)
				if err == nil {
					err = row.add(tool, out, &rates)
				}
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted (%v); everything started is stopped", context.Cause(ctx))
					}
					row.Err = append(row.Err, fmt.Sprintf("%s: %v", tool, err))
					continue
				}
				if tool == "main-st-lat" {
					l := row.Lat
					fmt.Fprintf(stderr, "%s: %s, %d replicas: p50 %s µs, p99 %s µs, p99.9 %s µs\n", name, tr, n, us(l.P50), us(l.P99), us(l.P999))
				} else {
					fmt.Fprintf(stderr, "%s: %s, %d replicas: %.0f commands/s\n", name, tr, n, rates[len(rates)-1].Rate)
				}
			}
			row.setTput(rates)
		}
		if c, ok := r.(io.Closer); ok {
			if err := c.Close(); err != nil {
				fmt.Fprintf(stderr, "%s: take the test bed down: %v\n", name, err)
			}
		}
	}
	if len(rows) == 0 {
		return errors.New("nothing ran (--transports tcp without --netns?)")
	}

	fmt.Fprintf(stdout, "bench-sizes: %d B commands, %d per shm run, %d per tcp run; latency: main-st-lat, %d outstanding; throughput: main-st, %d outstanding, median of %d; profile %s, poll %s; %d cores; %s\n",
		cfg.Payload, cfg.Count, cfg.TCPCount, cfg.Outstanding, cfg.STOutstanding, cfg.STRepeat, cfg.Profile, pollName(cfg.Poll), numCPU(), time.Since(started).Round(time.Second))
	if err := writeTable(stdout, rows); err != nil {
		return err
	}
	csvPath := filepath.Join(cfg.OutDir, name+".csv")
	if err := writeCSV(csvPath, cfg, rows); err != nil {
		return err
	}
	pngPath := filepath.Join(cfg.OutDir, name+".png")
	if err := writePNG(pngPath, cfg, rows); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", csvPath, pngPath)
	var failed []string
	for _, r := range rows {
		for _, e := range r.Err {
			failed = append(failed, fmt.Sprintf("%s, %d replicas, %s", r.Transport, r.Size, e))
		}
	}
	for _, f := range failed {
		fmt.Fprintf(stdout, "FAILED: %s\n", f)
	}
	fmt.Fprintln(stdout, headline(cfg.Sizes, rows))
	if len(failed) > 0 {
		return fmt.Errorf("%d runs failed every attempt", len(failed))
	}
	return nil
}

// attempt runs tool on n replicas through r, again after a failure up to
// cfg.Retries times, and returns the leader's standard output.
func attempt(ctx context.Context, cfg Config, r runner, tool string, n int, stderr io.Writer) ([]byte, error) {
	var err error
	for a := 0; a <= cfg.Retries; a++ {
		if a > 0 {
			fmt.Fprintf(stderr, "%s: %s on %d replicas failed (%v); trying again\n", name, tool, n, err)
		}
		var out []byte
		out, err = r.Run(ctx, tool, n, a)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}

func pollName(p string) string {
	if p == "" {
		return "the profile's"
	}
	return p
}
