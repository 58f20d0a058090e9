// Command compare runs gomu and its peers side by side on one workload and
// prints their latency and throughput in one table: main-st-lat --local on
// the shm and on the tcp transport, then etcd-raft-lat --local (etcd raft
// over loopback TCP), each with the same payload, outstanding count and
// number of commands, three replicas as processes of this machine, storage
// in memory.
//
//	compare [flags] <payload_size> <nr_outstanding>
//
// The tools are looked up in --bin (default: this executable's directory).
// Each run's output goes to stderr as it happens; a run that fails is tried
// again (--retries). A system that fails every attempt is marked failed in
// the table and compare exits non-zero after running the others; otherwise
// the last line is exactly
//
//	compare gomu_shm_p50_ns=<a> gomu_tcp_p50_ns=<b> etcd_raft_p50_ns=<c>
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:      "compare",
		Usage:     "gomu (shm, tcp) and etcd raft side by side: p50/p99 latency and throughput",
		ArgsUsage: "<payload_size> <nr_outstanding>",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bin", Usage: "`DIR` holding main-st-lat and etcd-raft-lat (default: this executable's directory)"},
			&cli.IntFlag{Name: "count", Value: 20000, Usage: "commands each system's leader proposes"},
			&cli.IntFlag{Name: "retries", Value: 2, Usage: "how often a failed run is tried again"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "limit of each run"},
			&cli.StringSliceFlag{Name: "gomu-flag", Usage: "extra flag for main-st-lat, e.g. --gomu-flag=--profile=fast (repeatable)"},
			&cli.StringSliceFlag{Name: "etcd-flag", Usage: "extra flag for etcd-raft-lat, e.g. --etcd-flag=--tick=1ms (repeatable)"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// system is one column of the comparison: a tool and its arguments.
type system struct {
	name, tool, transport string
	flags                 []string
}

// result is what one run printed.
type result struct {
	n, p50, p99 int64
	rate        float64
}

var (
	// summaryRE matches the last line both tools print.
	summaryRE = regexp.MustCompile(`(?m)^\S+ transport=\w+ payload=\d+ outstanding=\d+ n=(\d+) p50=(\d+)ns p90=\d+ns p99=(\d+)ns p99\.9=\d+ns max=\d+ns$`)
	// rateRE matches the line before it.
	rateRE = regexp.MustCompile(`(?m)^\S+: \d+ commands of \d+ B in \S+ s: (\d+) commands/s`)
)

func run(c *cli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("want 2 arguments, <payload_size> <nr_outstanding>; got %d", c.NArg())
	}
	payload, outstanding := c.Args().Get(0), c.Args().Get(1)
	for _, a := range []string{payload, outstanding} {
		if v, err := strconv.Atoi(a); err != nil || v < 1 {
			return fmt.Errorf("%q is not a positive number", a)
		}
	}
	count := c.Int("count")
	if count < 1 {
		return fmt.Errorf("--count must be at least 1, got %d", count)
	}
	bin := c.String("bin")
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable: %w", err)
		}
		bin = filepath.Dir(exe)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The tools write their dumps into their working directory.
	dir, err := os.MkdirTemp("", "gomu-compare-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(dir)

	gomu, etcd := c.StringSlice("gomu-flag"), c.StringSlice("etcd-flag")
	systems := []system{
		{"gomu", "main-st-lat", "shm", append([]string{"--transport", "shm"}, gomu...)},
		{"gomu", "main-st-lat", "tcp", append([]string{"--transport", "tcp"}, gomu...)},
		{"etcd-raft", "etcd-raft-lat", "tcp", etcd},
	}
	results := make([]result, len(systems))
	errs := make([]error, len(systems))
	for i, s := range systems {
		args := append([]string{"--local", "--count", strconv.Itoa(count)}, s.flags...)
		args = append(args, payload, outstanding)
		for attempt := 0; attempt <= c.Int("retries"); attempt++ {
			results[i], errs[i] = runOne(ctx, dir, filepath.Join(bin, s.tool), args, c.Duration("timeout"))
			if errs[i] == nil || ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "compare: %s on %s failed: %v\n", s.name, s.transport, errs[i])
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
	}

	// A system that failed every attempt keeps its row, marked, and the
	// comparison still shows the others; compare then fails.
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "system\ttransport\tpayload\toutstanding\tn\tp50_ns\tp99_ns\tcommands/s\t\n")
	var failed []string
	for i, s := range systems {
		if errs[i] != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tfailed\t-\t-\t-\t\n", s.name, s.transport, payload, outstanding)
			failed = append(failed, fmt.Sprintf("%s on %s: %v", s.name, s.transport, errs[i]))
			continue
		}
		r := results[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.0f\t\n", s.name, s.transport, payload, outstanding, r.n, r.p50, r.p99, r.rate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("no comparison: %s", strings.Join(failed, "; "))
	}
	shm, tcp, er := results[0], results[1], results[2]
	fmt.Printf("etcd-raft p50 / gomu-shm p50 = %.2fx (target: at least 50x)\n", float64(er.p50)/float64(shm.p50))
	fmt.Printf("gomu-tcp p50 / etcd-raft p50 = %.2fx (target: at most 1x)\n", float64(tcp.p50)/float64(er.p50))
	fmt.Printf("compare gomu_shm_p50_ns=%d gomu_tcp_p50_ns=%d etcd_raft_p50_ns=%d\n", shm.p50, tcp.p50, er.p50)
	return nil
}

// runOne runs a tool, echoing its output to stderr, and reads its summary.
func runOne(ctx context.Context, dir, tool string, args []string, timeout time.Duration) (result, error) {
	var r result
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintf(os.Stderr, "== %s %v\n", filepath.Base(tool), args)
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	// The tools stop their replicas on SIGTERM; give them a moment.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return r, fmt.Errorf("%w (limit %v)", ctx.Err(), timeout)
		}
		return r, err
	}
	m := summaryRE.FindSubmatch(out.Bytes())
	if m == nil {
		return r, fmt.Errorf("no summary line in its output")
	}
	r.n, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.p50, _ = strconv.ParseInt(string(m[2]), 10, 64)
	r.p99, _ = strconv.ParseInt(string(m[3]), 10, 64)
	if m := rateRE.FindSubmatch(out.Bytes()); m != nil {
		r.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r, nil
}
