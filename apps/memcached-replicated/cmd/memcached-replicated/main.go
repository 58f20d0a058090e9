// Command memcached-replicated is a memcached whose items are replicated by
// gomu: Mu's memcached showcase, as a memcached 1.6 that any client can use
// (text, meta and binary protocols), over many connections, correct across
// leader changes. See apps/memcached-replicated/internal/server for the
// roles, the replication of time-dependent decisions and the differences
// from memcached.
//
//	memcached-replicated [flags]                  one replica (SID, IDS, DORY_REGISTRY_IP)
//	memcached-replicated --local 3 -p 11211       a 3-replica cluster on this machine
//	memcached-replicated --standalone -p 11211    no replication: the baseline
//
// memcached's own flags keep their meaning: -p/--port, -l/--listen, -c/--conn-limit,
// -m/--memory-limit (MiB), -I/--max-item-size (bytes, or with a k or m
// suffix; default 1m), -M/--disable-evictions, -U/--udp-port (only 0: there
// is no UDP), -t/--threads (Go's GOMAXPROCS), -v.
//
// Each replica listens on -p; with --local N, replica i listens on
// port+i-1 (replica 1 starts as leader) around an embedded registry, every
// replica a separate process on the shm provider, all cleaned up on Ctrl-C,
// and a replica killed by a signal is started again.
//
// At start a replica prints its PID ("memcached-replicated pid <pid>") and,
// once serving, its address and role ("listening on <addr> as <role>"); a
// follower prints "Reading pump started" when its replayer runs (again
// whenever it becomes a follower). SIGUSR1 writes dump-<SID>.txt in the
// working directory, one line per proposal this replica replicated as
// leader since start, the ns it took (Propose call to commit), and prints
// their percentile summary on stderr. SIGTERM and SIGINT shut down cleanly.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/memcached-replicated/internal/server"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/replicaproc"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

const name = "memcached-replicated"

func main() {
	app := &cli.App{
		Name:  name,
		Usage: "memcached replicated by gomu",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 11211, Usage: "TCP port (with --local: the first replica's; replica i uses port+i-1)"},
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: "127.0.0.1", Usage: "interface to listen on"},
			&cli.IntFlag{Name: "conn-limit", Aliases: []string{"c"}, Value: 1024, Usage: "max simultaneous connections"},
			&cli.IntFlag{Name: "memory-limit", Aliases: []string{"m"}, Value: 64, Usage: "item memory in megabytes"},
			&cli.StringFlag{Name: "max-item-size", Aliases: []string{"I"}, Value: "1m", Usage: "largest item (bytes, or a number with a k or m suffix)"},
			&cli.BoolFlag{Name: "disable-evictions", Aliases: []string{"M"}, Usage: "return an error when memory is exhausted instead of evicting"},
			&cli.IntFlag{Name: "udp-port", Aliases: []string{"U"}, Value: 0, Usage: "UDP port: only 0 (UDP is not served)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "GOMAXPROCS of the process (0: Go's default; with --local: the cores divided among the replicas)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log the engine's role changes on stderr"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "close connections idle this long (0: never, as memcached's default)"},
		}, replicaproc.Flags(replicaproc.Defaults{
			Cluster:       "memcached",
			RingUsage:     "log ring size in bytes (default: 16 MiB, or 4 times --max-batch if larger)",
			MaxBatchUsage: "largest log entry in bytes: bounds one proposal (default: 2 MiB, or the item size limit plus 64 KiB if larger)",
		})...),
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// options are the checked flags: the replicated servers' common ones and
// memcached's.
type options struct {
	replicaproc.Options
	port    int
	listen  string
	conns   int
	memMB   int
	itemMax int
	noEvict bool
	threads int
	verbose bool
	idle    time.Duration
}

// parseSize reads memcached's -I: bytes, or a number with k or m.
func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-I %q: want a positive size such as 1048576, 512k or 2m", s)
	}
	return n * mult, nil
}

func parse(c *cli.Context) (options, error) {
	ro, err := replicaproc.Parse(c)
	o := options{Options: ro,
		port: c.Int("port"), listen: c.String("listen"), conns: c.Int("conn-limit"), memMB: c.Int("memory-limit"),
		noEvict: c.Bool("disable-evictions"), threads: c.Int("threads"), verbose: c.Bool("verbose"), idle: c.Duration("idle-timeout"),
	}
	if err != nil {
		return o, err
	}
	if o.itemMax, err = parseSize(c.String("max-item-size")); err != nil {
		return o, err
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = max(2<<20, o.itemMax+64<<10)
	}
	if o.Ring == 0 {
		o.Ring = max(16<<20, 4*o.MaxBatch)
	}
	switch {
	case c.Int("udp-port") != 0:
		return o, fmt.Errorf("-U %d: UDP is not served; use -U 0", c.Int("udp-port"))
	case o.port < 0 || o.port+max(o.Local, 1)-1 > 65535:
		return o, fmt.Errorf("-p %d out of range", o.port)
	case o.conns < 1:
		return o, fmt.Errorf("-c %d: want at least one connection", o.conns)
	case o.memMB < 1:
		return o, fmt.Errorf("-m %d: want at least 1 megabyte", o.memMB)
	case o.itemMax < 1024:
		return o, fmt.Errorf("-I %d: items must be allowed at least 1 KiB, as memcached requires", o.itemMax)
	case int64(o.itemMax) > int64(o.memMB)<<20/2:
		return o, fmt.Errorf("-I %d: cannot exceed half of -m %d (megabytes)", o.itemMax, o.memMB)
	case o.itemMax+64<<10 > o.MaxBatch:
		return o, fmt.Errorf("-I %d does not fit in --max-batch %d: raise --max-batch to at least %d", o.itemMax, o.MaxBatch, o.itemMax+64<<10)
	case o.threads < 0:
		return o, fmt.Errorf("-t %d: want a count of threads (0: Go's default)", o.threads)
	case o.idle < 0:
		return o, fmt.Errorf("--idle-timeout %v is negative", o.idle)
	}
	return o, o.Check()
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	if o.Local > 0 {
		return runLocal(c.Context, o)
	}
	if o.threads > 0 {
		runtime.GOMAXPROCS(o.threads)
	}
	proc, err := replicaproc.Begin(name, o.CPUProfile)
	if err != nil {
		return err
	}
	defer proc.End()
	logger := replicaproc.Logger(o.verbose)
	m := server.NewMachine(int64(o.memMB)<<20, !o.noEvict, o.conns)
	srv, err := server.New(server.Config{
		Addr:        net.JoinHostPort(o.listen, strconv.Itoa(o.port)),
		Machine:     m,
		Limits:      memcache.Limits{MaxValueLen: o.itemMax},
		MaxProposal: o.MaxBatch - 64,
		MaxConns:    o.conns,
		Timeout:     o.Timeout,
		IdleTimeout: o.idle,
		Settings: []string{"tcpport", strconv.Itoa(o.port), "inter", o.listen,
			"gomu_transport", o.Transport, "gomu_profile", string(o.Profile), "gomu_max_batch", strconv.Itoa(o.MaxBatch)},
		Replication:        replicaproc.DumpRecorder(),
		StaleFollowerReads: o.StaleReads,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	return proc.Serve(srv, o.Consensus(logger), m)
}

// runLocal starts the whole cluster on this machine.
func runLocal(ctx context.Context, o options) error {
	threads := replicaproc.LocalProcs(o.threads, len(o.IDs))
	return cluster.Run(ctx, cluster.Spec{
		Name:   name,
		IDs:    o.IDs,
		Leader: o.IDs[0],
		Serve:  true,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Args: func(n cluster.Node) []string {
			args := append(o.LocalArgs(n),
				"-p", strconv.Itoa(o.port+n.ID-1), "-l", o.listen,
				"-c", strconv.Itoa(o.conns), "-m", strconv.Itoa(o.memMB), "-I", strconv.Itoa(o.itemMax),
				"--idle-timeout", o.idle.String(), "-t", strconv.Itoa(threads), "--verbose="+strconv.FormatBool(o.verbose))
			if o.noEvict {
				args = append(args, "-M")
			}
			return args
		},
	})
}
