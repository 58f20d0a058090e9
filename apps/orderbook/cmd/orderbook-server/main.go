// Command orderbook-server is a stock exchange replicated by gomu: limit
// order books of many symbols (apps/orderbook/book) behind a microsecond
// RPC over verbs (verbsrpc), every order a proposal on the leader. Mu's
// Liquibook demo, runnable on one machine.
//
//	orderbook-server [flags]                 one replica (SID, IDS, DORY_REGISTRY_IP)
//	orderbook-server --local 3               a 3-replica cluster on this machine
//	orderbook-server --standalone            no replication: the baseline
//
// Traders (orderbook-trader, orderbook-cli) find the replicas through the
// registry: each replica publishes its RPC service there under its id, in
// the registry namespace "<cluster>-rpc". With --local the launcher prints
// what a trader needs, a line
//
//	traders: --registry 127.0.0.1:PORT --transport shm --device FABRIC --ids 1,2,3
//
// A standalone exchange with no --registry starts an embedded one and
// prints the same line with --ids 1.
//
// At start a replica prints its PID ("orderbook-server pid <pid>") and,
// once serving, "listening on <transport>:<device>/rpc/orderbook as
// <role>"; a follower prints "Reading pump started". SIGUSR1 writes
// dump-<SID>.txt (ns per proposal replicated as leader) and a summary on
// stderr; SIGTERM and SIGINT shut down cleanly. Writes reach only the
// leader; a follower answers them with the leader's id, and serves depth
// and trader reads behind a read barrier (linearizable by default).
//
// With --stats HOST:PORT a replica also answers "stats gomu" (its role,
// its leader, its commit and applied indexes) and "stats gomu digest" (the
// same and a SHA-256 of the exchange's state, taken between two applies)
// over TCP, in memcached's text form, as memcached-replicated does: what
// the fault runner (apps/orderbook/cmd/orderbook-faults) asks who leads
// and whether the replicas agree.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/exchange"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/replicaproc"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

const name = "orderbook-server"

func main() {
	app := &cli.App{
		Name:  name,
		Usage: "a limit order book exchange replicated by gomu, served over verbs RPC",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rpc-device", Usage: "verbs device traders reach this replica through (default: shm: the --device fabric; tcp: the --device host on a free port; ibv: --device)"},
			&cli.StringFlag{Name: "rpc-poll", Value: "yield", Usage: "how the leader's RPC poller waits for traders' requests: spin, yield or sleep (apart from the engine's --poll: on a small machine the engine's loops sleep best, while the poller's wake-up is the order's latency; a follower's poller sleeps)"},
			&cli.IntFlag{Name: "slots", Value: 16, Usage: "requests a trader connection may have outstanding (ring depth)"},
			&cli.IntFlag{Name: "depth-levels", Value: 5, Usage: "levels per side a depth read returns"},
			&cli.StringFlag{Name: "stats", Usage: "answer \"stats gomu\" and \"stats gomu digest\" (role, leader, indexes, a digest of the state) over TCP on `HOST:PORT`, in memcached's text form (default: off)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "GOMAXPROCS of the process (0: Go's default; with --local: the cores divided among the replicas)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log the engine's role changes on stderr"},
		}, replicaproc.Flags(replicaproc.Defaults{
			Cluster: "orderbook", Ring: 16 << 20, MaxBatch: 256 << 10,
			RingUsage:     "log ring size in bytes",
			MaxBatchUsage: "largest log entry in bytes: bounds one proposal",
		})...),
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

type options struct {
	replicaproc.Options
	stats     string
	rpcDevice string
	rpcPoll   poll.Mode
	slots     int
	depth     int
	threads   int
	verbose   bool
}

func parse(c *cli.Context) (options, error) {
	ro, err := replicaproc.Parse(c)
	o := options{Options: ro, stats: c.String("stats"), rpcDevice: c.String("rpc-device"), slots: c.Int("slots"), depth: c.Int("depth-levels"),
		threads: c.Int("threads"), verbose: c.Bool("verbose")}
	if err != nil {
		return o, err
	}
	if o.rpcPoll, err = poll.ParseMode(c.String("rpc-poll")); err != nil {
		return o, fmt.Errorf("--rpc-poll: %w", err)
	}
	switch {
	case o.slots < 1 || o.slots > 1024:
		return o, fmt.Errorf("--slots %d: want 1 to 1024", o.slots)
	case o.depth < 1 || o.depth > 1000:
		return o, fmt.Errorf("--depth-levels %d: want 1 to 1000", o.depth)
	case o.threads < 0:
		return o, fmt.Errorf("-t %d: want a count of threads (0: Go's default)", o.threads)
	case o.stats != "" && o.Local > 0:
		return o, errors.New("--stats is one replica's port: not with --local")
	}
	return o, o.Check()
}

// rpcDevice is the device traders use: see --rpc-device.
func (o options) rpcDeviceName() string {
	if o.rpcDevice != "" {
		return o.rpcDevice
	}
	if o.Transport == "tcp" {
		host, _, err := net.SplitHostPort(o.Device)
		if err != nil || host == "" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, "0")
	}
	return o.Device
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

	id, regAddr := o.SID, o.Registry
	if o.Standalone {
		id = 1
		if regAddr == "" {
			reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
			if err != nil {
				return fmt.Errorf("embedded registry: %w", err)
			}
			defer reg.Close()
			regAddr = reg.Addr()
		}
	}
	// The stats port is taken first: on tcp the RPC device takes a free
	// port of the same host.
	var stats net.Listener
	if o.stats != "" {
		if stats, err = net.Listen("tcp", o.stats); err != nil {
			return fmt.Errorf("--stats: %w", err)
		}
		defer stats.Close() // the server closes it too; a second close is harmless
	}
	dev, err := verbs.Open(o.Transport, o.rpcDeviceName(), verbs.Options{})
	if err != nil {
		return fmt.Errorf("rpc device: %w", err)
	}
	defer dev.Close()
	// The RPC service has its own registry participant, in its own
	// namespace: the replica's announcement under the same id is the
	// engine's, and a second one there would look like a restart.
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	reg, err := registry.Dial(ctx, registry.Config{Addr: regAddr, Cluster: o.Cluster + "-rpc", ID: id})
	cancel()
	if err != nil {
		return fmt.Errorf("rpc registry: %w", err)
	}
	defer reg.Close()
	m := exchange.NewMachine(book.Config{DepthLevels: o.depth})
	srv, err := exchange.New(exchange.Config{
		Machine:            m,
		RPC:                verbsrpc.Config{Device: dev, Registry: reg, Slots: o.slots, Poll: o.rpcPoll, Logger: logger},
		Timeout:            o.Timeout,
		MaxProposal:        o.MaxBatch - 64,
		Replication:        replicaproc.DumpRecorder(),
		StaleFollowerReads: o.StaleReads,
		Logger:             logger,
		Stats:              stats,
	})
	if err != nil {
		return err
	}
	if o.Standalone && o.Registry == "" {
		fmt.Printf("traders: --registry %s --transport %s --device %s --ids 1\n", regAddr, o.Transport, dev.Name())
	}
	return proc.Serve(srv, o.Consensus(logger), m)
}

// runLocal starts the whole cluster on this machine.
func runLocal(ctx context.Context, o options) error {
	threads := replicaproc.LocalProcs(o.threads, len(o.IDs))
	ids := make([]string, len(o.IDs))
	for i, id := range o.IDs {
		ids[i] = strconv.Itoa(id)
	}
	return cluster.Run(ctx, cluster.Spec{
		Name:   name,
		IDs:    o.IDs,
		Leader: o.IDs[0],
		Serve:  true,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Started: func(c *cluster.Cluster) {
			n := c.Node(o.IDs[0])
			fmt.Printf("traders: --registry %s --transport shm --device %s --ids %s\n", n.Registry, n.Fabric, strings.Join(ids, ","))
		},
		Args: func(n cluster.Node) []string {
			return append(o.LocalArgs(n),
				"--rpc-poll", o.rpcPoll.String(), "--slots", strconv.Itoa(o.slots), "--depth-levels", strconv.Itoa(o.depth),
				"-t", strconv.Itoa(threads), "--verbose="+strconv.FormatBool(o.verbose))
		},
	})
}
