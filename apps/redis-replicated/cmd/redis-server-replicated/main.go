// Command redis-server-replicated is a Redis-protocol server whose keyspace
// is replicated by gomu: Mu's Redis showcase, as a real Redis 7-compatible
// server (see apps/redis-replicated/internal/server for the roles, the
// commands and the differences from Redis).
//
//	redis-server-replicated [flags]                 one replica (SID, IDS, DORY_REGISTRY_IP)
//	redis-server-replicated --local 3 --port 6379   a 3-replica cluster on this machine
//	redis-server-replicated --standalone            no replication: the baseline
//
// Each replica listens on --port; with --local N, replica i listens on
// port+i-1 (replica 1 starts as leader) around an embedded registry, every
// replica a separate process on the shm provider, all cleaned up on Ctrl-C.
//
// At start a replica prints its PID ("redis-server-replicated pid <pid>")
// and, once serving, its address and role ("listening on <addr> as
// <role>"); a follower prints "Reading pump started" when its replayer
// runs (again whenever it becomes a follower). SIGUSR1 writes dump-<SID>.txt
// in the working directory, one line per proposal this replica replicated as
// leader since start, the ns it took (Propose call to commit), and prints
// their percentile summary on stderr. SIGTERM and SIGINT shut down cleanly.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/server"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/replicaproc"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/registry"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	app := &cli.App{
		Name:  "redis-server-replicated",
		Usage: "Redis-protocol server replicated by gomu",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Value: 6379, Usage: "client port (with --local: the first replica's; replica i uses port+i-1)"},
			&cli.StringFlag{Name: "bind", Value: "127.0.0.1", Usage: "client listen address"},
			&cli.StringFlag{Name: "advertise", Usage: "client `HOST:PORT` other replicas name in READONLY errors (default: bind:port)"},
			&cli.IntFlag{Name: "sid", EnvVars: []string{"SID"}, Usage: "this replica's id"},
			&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated ids of every replica"},
			&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "registry (memcached) `HOST:PORT`"},
			&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
			&cli.StringFlag{Name: "device", Usage: "provider device (shm: fabric name; tcp: listen address; ibv: NIC)"},
			&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "engine profile: fast or relaxed"},
			&cli.StringFlag{Name: "poll", Usage: "override the profile's polling: spin, yield or sleep"},
			&cli.DurationFlag{Name: "suspect-timeout", Usage: "how long a peer's heartbeat may stand still before it is suspected (0: the profile's, 100ms relaxed, 250µs fast); raise it on a machine so loaded that a live leader can stall that long"},
			&cli.StringFlag{Name: "cluster", Value: "redis", Usage: "registry namespace of this cluster"},
			&cli.IntFlag{Name: "ring", Value: 16 << 20, Usage: "log ring size in bytes"},
			&cli.IntFlag{Name: "max-batch", Value: 1 << 20, Usage: "largest log entry in bytes: bounds one proposal (a pipelined batch of writes, a transaction)"},
			&cli.StringFlag{Name: "fifo", Usage: "pause fifo `PATH` (default /tmp/fifo-<id>; - for none)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "bound on one replication or read barrier"},
			&cli.StringFlag{Name: "follower-reads", Value: "linearizable", Usage: "reads on a follower: linearizable (it asks the leader for a read index first) or stale (its state as the leader last told it, as Redis replicas serve; cheaper, may miss acknowledged writes)"},
			&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long to wait for every replica at start"},
			&cli.BoolFlag{Name: "standalone", Usage: "serve without replication (the baseline)"},
			&cli.IntFlag{Name: "local", Usage: "run an `N`-replica cluster on this machine (embedded registry, one process per replica)"},
			&cli.IntFlag{Name: "procs", Usage: "GOMAXPROCS of each replica process (0: Go's default, every core; with --local: the cores divided among the replicas, at least 1)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log the engine's role changes on stderr"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of this replica to `FILE` until it shuts down"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "redis-server-replicated:", err)
		os.Exit(1)
	}
}

// options are the checked flags.
type options struct {
	port       int
	bind       string
	advertise  string
	sid        int
	ids        []int
	registry   string
	transport  string
	device     string
	profile    consensus.Profile
	poll       string
	suspect    time.Duration
	cluster    string
	ring       int
	maxBatch   int
	fifo       string
	timeout    time.Duration
	staleReads bool
	startTO    time.Duration
	standalone bool
	local      int
	procs      int
	verbose    bool
	cpuprofile string
}

func parse(c *cli.Context) (options, error) {
	o := options{
		port: c.Int("port"), bind: c.String("bind"), advertise: c.String("advertise"),
		sid: c.Int("sid"), registry: c.String("registry"), transport: c.String("transport"),
		device: c.String("device"), profile: consensus.Profile(c.String("profile")), poll: c.String("poll"),
		suspect: c.Duration("suspect-timeout"), cluster: c.String("cluster"), ring: c.Int("ring"), maxBatch: c.Int("max-batch"), fifo: c.String("fifo"),
		timeout: c.Duration("timeout"), startTO: c.Duration("start-timeout"),
		standalone: c.Bool("standalone"), local: c.Int("local"), procs: c.Int("procs"), verbose: c.Bool("verbose"), cpuprofile: c.String("cpuprofile"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: everything is a flag", c.Args().Slice())
	}
	switch fr := c.String("follower-reads"); fr {
	case "linearizable":
	case "stale":
		o.staleReads = true
	default:
		return o, fmt.Errorf("--follower-reads %q: want linearizable or stale", fr)
	}
	// --local 0 is the flag's default, yet asked for outright it is a
	// mistake, not a request for a single replica that needs SID and a
	// registry.
	if c.IsSet("local") && o.local <= 0 {
		return o, fmt.Errorf("--local %d: want a replica count from 1 to %d", o.local, consensus.MaxReplicas)
	}
	var err error
	if o.local > 0 {
		if o.local > consensus.MaxReplicas {
			return o, fmt.Errorf("--local %d: at most %d replicas", o.local, consensus.MaxReplicas)
		}
		o.ids = nil
		for i := 1; i <= o.local; i++ {
			o.ids = append(o.ids, i)
		}
	} else if o.ids, err = stbench.ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	switch {
	case o.port < 0 || o.port+max(o.local, 1)-1 > 65535:
		return o, fmt.Errorf("--port %d out of range", o.port)
	case o.standalone && o.local > 0:
		return o, errors.New("--standalone and --local exclude each other")
	case o.profile != consensus.ProfileFast && o.profile != consensus.ProfileRelaxed:
		return o, fmt.Errorf("unknown --profile %q (want fast or relaxed)", o.profile)
	case o.suspect < 0:
		return o, fmt.Errorf("--suspect-timeout %v is negative", o.suspect)
	case o.maxBatch < 4096 || o.maxBatch > o.ring/4:
		return o, fmt.Errorf("--max-batch %d must be from 4096 to a quarter of --ring (%d)", o.maxBatch, o.ring/4)
	case o.procs < 0:
		return o, fmt.Errorf("--procs %d: want a count of Ps (0: Go's default)", o.procs)
	case o.timeout <= 0 || o.startTO <= 0:
		return o, errors.New("--timeout and --start-timeout must be positive")
	}
	if o.poll != "" {
		if _, err := poll.ParseMode(o.poll); err != nil {
			return o, fmt.Errorf("--poll: %w", err)
		}
	}
	if o.standalone || o.local > 0 {
		return o, nil
	}
	switch {
	case o.sid == 0:
		return o, errors.New("no replica id: set SID or --sid (or use --local or --standalone)")
	case !slices.Contains(o.ids, o.sid):
		return o, fmt.Errorf("SID %d is not one of the ids %v (set IDS or --ids)", o.sid, o.ids)
	case o.registry == "":
		return o, fmt.Errorf("no registry: set %s or --registry (or use --local or --standalone)", registry.EnvAddr)
	}
	switch o.transport {
	case "shm", "tcp", "ibv":
	default:
		return o, fmt.Errorf("unknown --transport %q (want shm, tcp or ibv)", o.transport)
	}
	return o, nil
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	if o.local > 0 {
		return runLocal(c.Context, o)
	}
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	proc, err := replicaproc.Begin("redis-server-replicated", o.cpuprofile)
	if err != nil {
		return err
	}
	defer proc.End()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	m := server.NewMachine()
	srv, err := server.New(server.Config{
		Addr:               net.JoinHostPort(o.bind, strconv.Itoa(o.port)),
		Machine:            m,
		MaxProposal:        o.maxBatch - 64,
		Timeout:            o.timeout,
		Replication:        latency.New(10*time.Second, dumpKeep),
		StaleFollowerReads: o.staleReads,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	if o.standalone {
		return proc.Serve(srv, nil, m)
	}
	ccfg := consensus.Config{
		ID: o.sid, IDs: o.ids, Registry: o.registry, Cluster: o.cluster,
		Transport: o.transport, Device: o.device, RingSize: o.ring, MaxBatch: o.maxBatch,
		Profile: o.profile, SuspectTimeout: o.suspect, Fifo: o.fifo, EagerCommit: true, Meta: []byte(o.advertise),
		StartTimeout: o.startTO, Logger: logger,
	}
	if o.poll != "" {
		mode, _ := poll.ParseMode(o.poll)
		ccfg = ccfg.WithPoll(mode)
	}
	return proc.Serve(srv, &ccfg, m)
}

// dumpKeep bounds the raw values kept for the SIGUSR1 dump (8 B each).
const dumpKeep = 4 << 20

// runLocal starts the whole cluster on this machine.
func runLocal(ctx context.Context, o options) error {
	// Replicas that share a machine share its cores: with more Ps than its
	// share, a replica's Go scheduler hands each proposal between threads
	// (the connection's, the engine loop's), and on a VM every such
	// hand-off wakes an idle vCPU: a SET cost ~88 µs p50 with 3 replicas
	// at the default GOMAXPROCS on 2 cores, ~35 µs with 1 (standalone 25).
	procs := o.procs
	if procs == 0 {
		procs = max(1, runtime.NumCPU()/len(o.ids))
	}
	idList := make([]string, len(o.ids))
	for i, id := range o.ids {
		idList[i] = strconv.Itoa(id)
	}
	return cluster.Run(ctx, cluster.Spec{
		Name:   "redis-server-replicated",
		IDs:    o.ids,
		Leader: o.ids[0],
		Serve:  true,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Args: func(n cluster.Node) []string {
			return []string{
				"--sid", strconv.Itoa(n.ID), "--ids", strings.Join(idList, ","),
				"--registry", n.Registry, "--transport", "shm", "--device", n.Fabric,
				"--port", strconv.Itoa(o.port + n.ID - 1), "--bind", o.bind,
				"--profile", string(o.profile), "--poll", o.poll, "--cluster", o.cluster,
				"--ring", strconv.Itoa(o.ring), "--max-batch", strconv.Itoa(o.maxBatch),
				"--fifo", n.Fifo, "--timeout", o.timeout.String(), "--start-timeout", o.startTO.String(),
				"--follower-reads", map[bool]string{false: "linearizable", true: "stale"}[o.staleReads],
				"--procs", strconv.Itoa(procs), "--verbose=" + strconv.FormatBool(o.verbose),
			}
		},
	})
}
