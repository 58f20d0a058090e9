// Command main-st-lat is gomu's standalone latency benchmark, after Mu's
// main-st-lat: every replica of a cluster runs it, and the leader times
// each of --count commands of <payload_size> random bytes from its Propose
// call to its return, with <nr_outstanding> concurrent proposers.
//
//	main-st-lat [flags] <process_id> <payload_size> <nr_outstanding>
//	main-st-lat --local [flags] <payload_size> <nr_outstanding>
//
// Arguments, environment, --local and the end of a run are main-st's (see
// internal/stbench). The leader writes dump-st-<payload>-<outstanding>.txt in
// its working directory, one latency in ns per line in the order the
// commands were issued, optionally the percentile distribution in
// HdrHistogram's text format (--hgrm FILE), and prints, last, the rate of
// the run and the percentiles:
//
//	main-st-lat: <n> commands of <p> B in <s> s: <x> commands/s (shm, 3 replicas, 1 outstanding)
//	main-st-lat transport=shm payload=64 outstanding=1 n=<count> p50=<ns>ns p90=<ns>ns p99=<ns>ns p99.9=<ns>ns max=<ns>ns
//
// A latency is the time until the command is committed by a majority and
// applied on the leader.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/stbench"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	app := &cli.App{
		Name:      "main-st-lat",
		Usage:     "standalone replication latency benchmark",
		ArgsUsage: "<process_id> <payload_size> <nr_outstanding>",
		Flags: append(stbench.Flags(),
			&cli.StringFlag{Name: "hgrm", Usage: "also write the percentile distribution in HdrHistogram format to `FILE`"},
		),
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "main-st-lat:", err)
		os.Exit(1)
	}
}

// maxLatency is the histogram's range; longer values are clamped to it.
const maxLatency = 10 * time.Second

func run(c *cli.Context) error {
	o, err := stbench.Parse(c)
	if err != nil {
		return err
	}
	hgrm := c.String("hgrm")
	if o.Local {
		var extra []string
		if hgrm != "" {
			extra = []string{"--hgrm", hgrm}
		}
		return stbench.Local(c.Context, "main-st-lat", o, extra, os.Stdout, os.Stderr)
	}
	res, err := stbench.Run(c.Context, o, true, os.Stderr)
	if err != nil {
		return err
	}
	if !res.Leader {
		fmt.Printf("replica %d: follower, applied %d commands\n", o.ID, res.Commands)
		return nil
	}
	rec := latency.New(maxLatency, len(res.Latencies))
	for _, ns := range res.Latencies {
		rec.Record(time.Duration(ns))
	}
	dump := fmt.Sprintf("dump-st-%d-%d.txt", o.Payload, o.Outstanding)
	if err := rec.WriteRaw(dump); err != nil {
		return err
	}
	fmt.Printf("wrote %d latencies to %s\n", rec.Count(), dump)
	if hgrm != "" {
		if err := rec.WriteHgrm(hgrm); err != nil {
			return err
		}
		fmt.Printf("wrote the percentile distribution to %s\n", hgrm)
	}
	if n := res.Retries.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "note: %d proposals repeated after the leader stepped down and back\n", n)
	}
	secs := res.Elapsed.Seconds()
	fmt.Printf("main-st-lat: %d commands of %d B in %.3g s: %.0f commands/s (%s, %d replicas, %d outstanding)\n",
		res.Commands, o.Payload, secs, float64(res.Commands)/secs, o.Transport, len(o.IDs), o.Outstanding)
	fmt.Printf("main-st-lat transport=%s payload=%d outstanding=%d %s\n", o.Transport, o.Payload, o.Outstanding, rec.Summary())
	return nil
}
