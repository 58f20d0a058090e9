// Command verbs-lat measures one-sided WRITE latency between two processes,
// in the manner of perftest's ib_write_lat: each side writes a message into
// the other's registered memory and polls its own memory for the reply, so
// no side ever receives; the reported value is half the round trip.
//
//	verbs-lat [flags]             # server: waits for a client on --oob
//	verbs-lat [flags] HOST:PORT   # client: connects, measures, reports
//	verbs-lat --local [flags]     # both ends on this machine
//
// The two processes exchange QP endpoints and memory keys over a small TCP
// side channel (--oob). With --baseline (the default) the same pair then
// times a side-by-side peer of the same size: a bare shared-memory
// ping-pong for shm (what the verbs layer costs on top of memory) and a
// plain Go TCP ping-pong over the side channel otherwise (what the soft NIC
// costs on top of its socket). The last line is machine-readable:
//
//	verbs-lat transport=<t> size=<n> p50_ns=<a> p99_ns=<b>
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/poll"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	reexecWithoutPreemption()
	app := &cli.App{
		Name:      "verbs-lat",
		Usage:     "one-sided WRITE ping-pong latency between two processes",
		ArgsUsage: "[SERVER_HOST:PORT]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
			&cli.StringFlag{Name: "device", Usage: "device name (shm: fabric, chosen by the server; tcp: listen address; ibv: NIC name)"},
			&cli.IntFlag{Name: "size", Value: 64, Usage: "message size in bytes"},
			&cli.IntFlag{Name: "iters", Value: 100000, Usage: "measured round trips"},
			&cli.IntFlag{Name: "warmup", Value: 2000, Usage: "round trips before measuring"},
			&cli.StringFlag{Name: "poll", Value: "spin", Usage: "how to wait for a message: spin, yield or sleep"},
			&cli.StringFlag{Name: "oob", Value: "127.0.0.1:18515", Usage: "server: side-channel listen address"},
			&cli.BoolFlag{Name: "local", Usage: "run both ends on this machine"},
			&cli.BoolFlag{Name: "baseline", Value: true, Usage: "also time the side-by-side peer: a bare shared-memory ping-pong for shm, a plain Go TCP ping-pong otherwise"},
			&cli.StringFlag{Name: "hgrm", Usage: "write the percentile distribution in HdrHistogram format to `FILE`"},
			&cli.DurationFlag{Name: "retry-timeout", Usage: "verbs retry timeout (0: provider default)"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "verbs-lat:", err)
		os.Exit(1)
	}
}

// reexecWithoutPreemption restarts the tool with asynchronous preemption
// off: the measuring loop spins, and a SIGURG every 10 ms would show up in
// the tail as a multi-microsecond stall that is the runtime's, not the
// transport's (DESIGN §6).
func reexecWithoutPreemption() {
	if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	if g := os.Getenv("GODEBUG"); g != "" {
		env = append(os.Environ(), "GODEBUG="+g+",asyncpreemptoff=1")
	}
	_ = syscall.Exec(exe, os.Args, env) // on failure, run as we are
}

type config struct {
	transport, device string
	size              int
	iters, warmup     int
	mode              poll.Mode
	oob               string
	baseline          bool
	hgrm              string
	opts              optsFlags
}

type optsFlags struct{ retryTimeoutNS int64 }

func run(c *cli.Context) error {
	mode, err := poll.ParseMode(c.String("poll"))
	if err != nil {
		return err
	}
	cfg := config{
		transport: c.String("transport"),
		device:    c.String("device"),
		size:      c.Int("size"),
		iters:     c.Int("iters"),
		warmup:    c.Int("warmup"),
		mode:      mode,
		oob:       c.String("oob"),
		baseline:  c.Bool("baseline"),
		hgrm:      c.String("hgrm"),
		opts:      optsFlags{retryTimeoutNS: int64(c.Duration("retry-timeout"))},
	}
	switch {
	case cfg.size < 1 || cfg.size > maxSize:
		return fmt.Errorf("--size %d out of range 1..%d", cfg.size, maxSize)
	case cfg.iters < 1:
		return fmt.Errorf("--iters must be at least 1, got %d", cfg.iters)
	case cfg.warmup < 0:
		return fmt.Errorf("--warmup must not be negative, got %d", cfg.warmup)
	}
	switch {
	case c.Bool("local"):
		if c.NArg() != 0 {
			return fmt.Errorf("--local takes no server address (got %q)", c.Args().First())
		}
		return runLocal(cfg)
	case c.NArg() == 0:
		return runServer(cfg, os.Stdout)
	case c.NArg() == 1:
		return runClient(cfg, c.Args().First())
	default:
		return fmt.Errorf("want at most one argument, the server's HOST:PORT; got %d", c.NArg())
	}
}
