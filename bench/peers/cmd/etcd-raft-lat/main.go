// Command etcd-raft-lat is main-st-lat's workload on etcd's raft library
// (go.etcd.io/raft/v3), the peer gomu is compared with: every replica runs
// a raft node on in-memory storage (raft.MemoryStorage) and sends raft's
// messages to the others over loopback TCP; the leader times each of
// --count commands of <payload_size> random bytes, from its Propose call
// until the command is applied on the leader, with <nr_outstanding>
// concurrent proposers.
//
//	etcd-raft-lat --local [flags] <payload_size> <nr_outstanding>
//	etcd-raft-lat --peers HOST:PORT,HOST:PORT,... [flags] <process_id> <payload_size> <nr_outstanding>
//
// --local runs the three replicas (--replicas) as separate OS processes of
// this executable on this machine, on loopback addresses the launcher picks,
// prints the leader's output and stops every replica however the run ends.
// Without it, one replica runs: replica i listens on the i-th address of
// --peers and the others dial it. Replica 1 stands for election and leads.
//
// The node is driven the usual way for the library: a ticker calls Tick
// (--tick; a follower's election timeout is --election-ticks ticks, the
// leader's heartbeat one tick), and each Ready is persisted to the memory
// storage, its messages are handed to the transport, its committed entries
// applied, then Advance. Measuring starts once replica 1 leads and every
// replica's log has caught up; a done command then ends the run on every
// replica. The leader prints, last, the same lines as main-st-lat:
//
//	etcd-raft-lat: <n> commands of <p> B in <s> s: <x> commands/s (<r> replicas, <k> outstanding)
//	etcd-raft-lat transport=tcp payload=64 outstanding=1 n=<count> p50=<ns>ns p90=<ns>ns p99=<ns>ns p99.9=<ns>ns max=<ns>ns
//
// A command carries a tag byte and an 8-byte sequence number, so a payload
// is at least 9 bytes.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/latency"
)

const (
	// MaxPayload is main-st-lat's largest command.
	MaxPayload = 64<<10 - 4
	// MaxOutstanding bounds concurrent proposers, as in main-st-lat.
	MaxOutstanding = 1024
	// EndTimeout bounds each side's wait for the other at the end of a run.
	EndTimeout = 5 * time.Second
	// maxLatency is the histogram's range; longer values are clamped to it.
	maxLatency = 10 * time.Second
)

// Options is one replica's, or the launcher's, configuration.
type Options struct {
	ID             int
	Payload        int
	Outstanding    int
	Count          int
	Peers          []string // replica i+1 listens on Peers[i]
	Replicas       int      // with Local
	Tick           time.Duration
	ElectionTicks  int
	StartTimeout   time.Duration
	ProposeTimeout time.Duration
	ListenFD       int // an inherited listening socket instead of Peers[ID-1]
	Hgrm           string
	Local          bool
	Verbose        bool
}

func main() {
	app := &cli.App{
		Name:      "etcd-raft-lat",
		Usage:     "main-st-lat's replication latency benchmark on etcd raft over loopback TCP",
		ArgsUsage: "<process_id> <payload_size> <nr_outstanding>",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "local", Usage: "run every replica on this machine, one process each; arguments are then <payload_size> <nr_outstanding>"},
			&cli.StringFlag{Name: "peers", Usage: "comma-separated `HOST:PORT` of every replica, in id order"},
			&cli.IntFlag{Name: "replicas", Value: 3, Usage: "with --local: how many replicas"},
			&cli.IntFlag{Name: "count", Value: 100000, Usage: "commands the leader proposes"},
			&cli.DurationFlag{Name: "tick", Value: 10 * time.Millisecond, Usage: "raft tick interval (the leader's heartbeat interval)"},
			&cli.IntFlag{Name: "election-ticks", Value: 30, Usage: "a follower's election timeout, in ticks"},
			&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long to wait for an elected leader and every replica at start"},
			&cli.DurationFlag{Name: "propose-timeout", Value: 2 * time.Second, Usage: "propose a command again when it is not applied within this"},
			&cli.StringFlag{Name: "hgrm", Usage: "also write the percentile distribution in HdrHistogram format to `FILE`"},
			&cli.BoolFlag{Name: "verbose", Usage: "log raft's informational messages on stderr"},
			&cli.IntFlag{Name: "listen-fd", Hidden: true, Usage: "listen on this inherited file descriptor (set by --local)"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "etcd-raft-lat:", err)
		os.Exit(1)
	}
}

// parse reads and checks the arguments.
func parse(c *cli.Context) (Options, error) {
	o := Options{
		Count:          c.Int("count"),
		Replicas:       c.Int("replicas"),
		Tick:           c.Duration("tick"),
		ElectionTicks:  c.Int("election-ticks"),
		StartTimeout:   c.Duration("start-timeout"),
		ProposeTimeout: c.Duration("propose-timeout"),
		ListenFD:       c.Int("listen-fd"),
		Hgrm:           c.String("hgrm"),
		Local:          c.Bool("local"),
		Verbose:        c.Bool("verbose"),
	}
	if p := c.String("peers"); p != "" {
		o.Peers = strings.Split(p, ",")
	}
	args := c.Args().Slice()
	want := "<process_id> <payload_size> <nr_outstanding>"
	if o.Local {
		want = "<payload_size> <nr_outstanding> (with --local)"
		args = append([]string{"1"}, args...)
	}
	if len(args) != 3 {
		return o, fmt.Errorf("want %d arguments, %s; got %d", strings.Count(want, "<"), want, c.NArg())
	}
	names := []string{"process_id", "payload_size", "nr_outstanding"}
	vals := []*int{&o.ID, &o.Payload, &o.Outstanding}
	for i, a := range args {
		v, err := strconv.Atoi(a)
		if err != nil {
			return o, fmt.Errorf("%s %q is not a number", names[i], a)
		}
		*vals[i] = v
	}
	switch {
	case o.Local && len(o.Peers) > 0:
		return o, errors.New("--local picks the replicas' addresses itself: drop --peers")
	case o.Local && (o.Replicas < 1 || o.Replicas > 9):
		return o, fmt.Errorf("--replicas %d out of range 1..9", o.Replicas)
	case !o.Local && len(o.Peers) == 0:
		return o, errors.New("no --peers: give every replica's address, or use --local")
	case !o.Local && (o.ID < 1 || o.ID > len(o.Peers)):
		return o, fmt.Errorf("process_id %d is not a replica of --peers (1..%d)", o.ID, len(o.Peers))
	case o.Payload < MinPayload || o.Payload > MaxPayload:
		return o, fmt.Errorf("payload_size %d out of range %d..%d (a command carries a tag and a sequence number)", o.Payload, MinPayload, MaxPayload)
	case o.Outstanding < 1 || o.Outstanding > MaxOutstanding:
		return o, fmt.Errorf("nr_outstanding %d out of range 1..%d", o.Outstanding, MaxOutstanding)
	case o.Count < 1:
		return o, fmt.Errorf("--count must be at least 1, got %d", o.Count)
	case o.Tick <= 0 || o.ElectionTicks < 2:
		return o, fmt.Errorf("--tick %v and --election-ticks %d: want a positive tick and at least 2 ticks", o.Tick, o.ElectionTicks)
	case o.StartTimeout <= 0 || o.ProposeTimeout <= 0:
		return o, errors.New("--start-timeout and --propose-timeout must be positive")
	}
	return o, nil
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	if o.Local {
		return runLocal(c.Context, o, os.Stdout, os.Stderr)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var ln net.Listener
	if o.ListenFD > 0 {
		f := os.NewFile(uintptr(o.ListenFD), "listener")
		ln, err = net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("inherited listener: %w", err)
		}
	} else if ln, err = net.Listen("tcp", o.Peers[o.ID-1]); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	r := startReplica(o, ln)
	defer r.stop()
	const leader = 1
	if o.ID != leader {
		if err := r.follow(ctx, leader); err != nil {
			return err
		}
		fmt.Printf("replica %d: follower, applied %d commands\n", o.ID, r.applied.Load())
		return nil
	}
	if err := r.waitLeader(ctx); err != nil {
		return err
	}
	res, err := r.lead(ctx, os.Stderr)
	if err != nil {
		return err
	}
	if err := r.finish(ctx); err != nil {
		return err
	}
	rec := latency.New(maxLatency, 0)
	for _, ns := range res.Latencies {
		rec.Record(time.Duration(ns))
	}
	if o.Hgrm != "" {
		if err := rec.WriteHgrm(o.Hgrm); err != nil {
			return err
		}
		fmt.Printf("wrote the percentile distribution to %s\n", o.Hgrm)
	}
	if res.Retries > 0 {
		fmt.Fprintf(os.Stderr, "note: %d commands proposed again after %v without being applied\n", res.Retries, o.ProposeTimeout)
	}
	secs := res.Elapsed.Seconds()
	fmt.Printf("etcd-raft-lat: %d commands of %d B in %.3g s: %.0f commands/s (%d replicas, %d outstanding)\n",
		o.Count, o.Payload, secs, float64(o.Count)/secs, len(o.Peers), o.Outstanding)
	fmt.Printf("etcd-raft-lat transport=tcp payload=%d outstanding=%d %s\n", o.Payload, o.Outstanding, rec.Summary())
	return nil
}
