package latclient

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
)

// Main is the whole command line of a latency client: the commands differ
// only in name, protocol and mode. It exits non-zero on bad input, on a run
// that could not complete (no replica reachable at start, or one request
// without an answer for --retry-for), and on a run in which any request
// got an error reply. Faults the cluster survives do not end the run.
func Main(name string, p Protocol, mode Mode) {
	app := App(name, p, mode, os.Stdout)
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// App builds the command; output goes to stdout.
func App(name string, p Protocol, mode Mode, stdout io.Writer) *cli.App {
	disc, faults := "INFO replication", "-READONLY or -TRYAGAIN"
	if p == Memcached {
		disc, faults = "stats gomu", "SERVER_ERROR gomu: ..."
	}
	return &cli.App{
		Name:      name,
		Usage:     fmt.Sprintf("time %s requests against a %s server or a gomu cluster, one outstanding", mode, p),
		ArgsUsage: "<key_size> <value_size> <host> <port>",
		Description: "<host> <port> is one replica; --replicas names others, and the rest are discovered through " + disc + ".\n" +
			"The client follows the leader: a request whose attempt times out (hung or paused replica), finds the connection\n" +
			"refused or closed, or gets " + faults + ", is sent again to the leader the reply names or to the next\n" +
			"replica, and stays one sample from its first send to its final reply.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "requests", Value: 500_000, Usage: "timed requests"},
			&cli.IntFlag{Name: "keys", Usage: fmt.Sprintf("key space preloaded and read (0: min(requests, %d)); unused by SET-only runs", DefaultKeys)},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed for keys, values and the request mix"},
			&cli.StringFlag{Name: "out", Value: p.DefaultOut(), Usage: "write one latency in ns per line to `FILE`"},
			&cli.StringFlag{Name: "hgrm", Usage: "also write the percentile distribution in HdrHistogram format to `FILE`"},
			&cli.StringSliceFlag{Name: "replicas", Usage: "the other replicas, `ADDRS` = host:port,host:port,... (more are discovered through " + disc + ")"},
			&cli.DurationFlag{Name: "timeout", Value: DefaultTimeout, Usage: "deadline of each attempt (connect, or write and reply): a replica silent for longer is taken as hung and the request moves on; raise it when healthy replies can take longer"},
			&cli.BoolFlag{Name: "stay", Usage: "time the requests on the replica given, not on the leader (a gets-only run on a follower measures follower reads; writes are still redirected)"},
			&cli.DurationFlag{Name: "retry-for", Value: DefaultRetryFor, Usage: "how long one request may keep moving between replicas before the run fails"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			return action(c, name, p, mode, stdout)
		},
	}
}

func action(c *cli.Context, name string, p Protocol, mode Mode, stdout io.Writer) error {
	if c.NArg() != 4 {
		return fmt.Errorf("want 4 arguments <key_size> <value_size> <host> <port>, got %d", c.NArg())
	}
	a := c.Args().Slice()
	ks, err := strconv.Atoi(a[0])
	if err != nil {
		return fmt.Errorf("key_size %q is not a number", a[0])
	}
	vs, err := strconv.Atoi(a[1])
	if err != nil {
		return fmt.Errorf("value_size %q is not a number", a[1])
	}
	port, err := strconv.Atoi(a[3])
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("port %q is not a TCP port", a[3])
	}
	cfg := Config{
		Mode: mode, Protocol: p, Addr: net.JoinHostPort(a[2], strconv.Itoa(port)), Replicas: c.StringSlice("replicas"),
		KeySize: ks, ValueSize: vs,
		Requests: c.Int("requests"), Keys: c.Int("keys"), Seed: c.Uint64("seed"),
		Timeout: c.Duration("timeout"), RetryFor: c.Duration("retry-for"), Stay: c.Bool("stay"),
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	res, err := Run(c.Context, cfg)
	if err != nil {
		return err
	}
	out := c.String("out")
	if err := res.Rec.WriteRaw(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d latencies to %s\n", res.Rec.Count(), out)
	if h := c.String("hgrm"); h != "" {
		if err := res.Rec.WriteHgrm(h); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the percentile distribution to %s\n", h)
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "%s: %d requests (%s, key %d B, value %d B) in %.3g s: %.0f requests/s, %d errors\n",
		name, cfg.Requests, mode, ks, vs, secs, float64(cfg.Requests)/secs, res.Errors)
	fmt.Fprintf(stdout, "%s: faults: %d timeouts, %d broken connections, %d redirects, %d TRYAGAINs, %d reconnects; %d requests retried; longest stall %v (request %d, %d attempts); %d replicas known, ended on %s\n",
		name, res.Timeouts, res.Broken, res.Redirects, res.TryAgains, res.Reconnects, res.Retried,
		res.Longest, res.LongestAt, res.LongestTries, len(res.Replicas), res.Addr)
	fmt.Fprintf(stdout, "%s key=%d value=%d %s\n", name, ks, vs, res.Rec.Summary())
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d requests got an error reply, the first: %s", res.Errors, cfg.Requests, res.FirstError)
	}
	return nil
}
