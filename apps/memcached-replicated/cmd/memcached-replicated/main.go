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

	"github.com/gomu-rdma/gomu/apps/memcached-replicated/internal/server"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/replicaproc"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/registry"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

const name = "memcached-replicated"

func main() {
	app := &cli.App{
		Name:  name,
		Usage: "memcached replicated by gomu",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 11211, Usage: "TCP port (with --local: the first replica's; replica i uses port+i-1)"},
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: "127.0.0.1", Usage: "interface to listen on"},
			&cli.IntFlag{Name: "conn-limit", Aliases: []string{"c"}, Value: 1024, Usage: "max simultaneous connections"},
			&cli.IntFlag{Name: "memory-limit", Aliases: []string{"m"}, Value: 64, Usage: "item memory in megabytes"},
			&cli.StringFlag{Name: "max-item-size", Aliases: []string{"I"}, Value: "1m", Usage: "largest item (bytes, or a number with a k or m suffix)"},
			&cli.BoolFlag{Name: "disable-evictions", Aliases: []string{"M"}, Usage: "return an error when memory is exhausted instead of evicting"},
			&cli.IntFlag{Name: "udp-port", Aliases: []string{"U"}, Value: 0, Usage: "UDP port: only 0 (UDP is not served)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "GOMAXPROCS of the process (0: Go's default; with --local: the cores divided among the replicas)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log the engine's role changes on stderr"},
			&cli.StringFlag{Name: "advertise", Usage: "client `HOST:PORT` other replicas name in their not-the-leader errors (default: listen:port)"},
			&cli.IntFlag{Name: "sid", EnvVars: []string{"SID"}, Usage: "this replica's id"},
			&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated ids of every replica"},
			&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "registry (memcached) `HOST:PORT`"},
			&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
			&cli.StringFlag{Name: "device", Usage: "provider device (shm: fabric name; tcp: listen address; ibv: NIC)"},
			&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "engine profile: fast or relaxed"},
			&cli.StringFlag{Name: "poll", Usage: "override the profile's polling: spin, yield or sleep"},
			&cli.DurationFlag{Name: "suspect-timeout", Usage: "how long a peer's heartbeat may stand still before it is suspected (0: the profile's)"},
			&cli.StringFlag{Name: "cluster", Value: "memcached", Usage: "registry namespace of this cluster"},
			&cli.IntFlag{Name: "ring", Usage: "log ring size in bytes (default: 16 MiB, or 4 times --max-batch if larger)"},
			&cli.IntFlag{Name: "max-batch", Usage: "largest log entry in bytes: bounds one proposal (default: 2 MiB, or the item size limit plus 64 KiB if larger)"},
			&cli.StringFlag{Name: "fifo", Usage: "pause fifo `PATH` (default /tmp/fifo-<id>; - for none)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "bound on one replication or read barrier"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "close connections idle this long (0: never, as memcached's default)"},
			&cli.StringFlag{Name: "follower-reads", Value: "linearizable", Usage: "reads on a follower: linearizable (it asks the leader for a read index first) or stale (its state as the leader last told it; cheaper, may miss acknowledged writes)"},
			&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long to wait for every replica at start"},
			&cli.BoolFlag{Name: "standalone", Usage: "serve without replication (the baseline)"},
			&cli.IntFlag{Name: "local", Usage: "run an `N`-replica cluster on this machine (embedded registry, one process per replica)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of this replica to `FILE` until it shuts down"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// options are the checked flags.
type options struct {
	port       int
	listen     string
	conns      int
	memMB      int
	itemMax    int
	noEvict    bool
	threads    int
	verbose    bool
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
	idle       time.Duration
	staleReads bool
	startTO    time.Duration
	standalone bool
	local      int
	cpuprofile string
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
	o := options{
		port: c.Int("port"), listen: c.String("listen"), conns: c.Int("conn-limit"), memMB: c.Int("memory-limit"),
		noEvict: c.Bool("disable-evictions"), threads: c.Int("threads"), verbose: c.Bool("verbose"),
		advertise: c.String("advertise"), sid: c.Int("sid"), registry: c.String("registry"), transport: c.String("transport"),
		device: c.String("device"), profile: consensus.Profile(c.String("profile")), poll: c.String("poll"),
		suspect: c.Duration("suspect-timeout"), cluster: c.String("cluster"), ring: c.Int("ring"), maxBatch: c.Int("max-batch"),
		fifo: c.String("fifo"), timeout: c.Duration("timeout"), idle: c.Duration("idle-timeout"), startTO: c.Duration("start-timeout"),
		standalone: c.Bool("standalone"), local: c.Int("local"), cpuprofile: c.String("cpuprofile"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: everything is a flag", c.Args().Slice())
	}
	var err error
	if o.itemMax, err = parseSize(c.String("max-item-size")); err != nil {
		return o, err
	}
	switch fr := c.String("follower-reads"); fr {
	case "linearizable":
	case "stale":
		o.staleReads = true
	default:
		return o, fmt.Errorf("--follower-reads %q: want linearizable or stale", fr)
	}
	if c.IsSet("local") && o.local <= 0 {
		return o, fmt.Errorf("--local %d: want a replica count from 1 to %d", o.local, consensus.MaxReplicas)
	}
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
	if o.maxBatch == 0 {
		o.maxBatch = max(2<<20, o.itemMax+64<<10)
	}
	if o.ring == 0 {
		o.ring = max(16<<20, 4*o.maxBatch)
	}
	switch {
	case c.Int("udp-port") != 0:
		return o, fmt.Errorf("-U %d: UDP is not served; use -U 0", c.Int("udp-port"))
	case o.port < 0 || o.port+max(o.local, 1)-1 > 65535:
		return o, fmt.Errorf("-p %d out of range", o.port)
	case o.conns < 1:
		return o, fmt.Errorf("-c %d: want at least one connection", o.conns)
	case o.memMB < 1:
		return o, fmt.Errorf("-m %d: want at least 1 megabyte", o.memMB)
	case o.itemMax < 1024:
		return o, fmt.Errorf("-I %d: items must be allowed at least 1 KiB, as memcached requires", o.itemMax)
	case int64(o.itemMax) > int64(o.memMB)<<20/2:
		return o, fmt.Errorf("-I %d: cannot exceed half of -m %d (megabytes)", o.itemMax, o.memMB)
	case o.itemMax+64<<10 > o.maxBatch:
		return o, fmt.Errorf("-I %d does not fit in --max-batch %d: raise --max-batch to at least %d", o.itemMax, o.maxBatch, o.itemMax+64<<10)
	case o.standalone && o.local > 0:
		return o, errors.New("--standalone and --local exclude each other")
	case o.profile != consensus.ProfileFast && o.profile != consensus.ProfileRelaxed:
		return o, fmt.Errorf("unknown --profile %q (want fast or relaxed)", o.profile)
	case o.suspect < 0:
		return o, fmt.Errorf("--suspect-timeout %v is negative", o.suspect)
	case o.maxBatch < 4096 || o.maxBatch > o.ring/4:
		return o, fmt.Errorf("--max-batch %d must be from 4096 to a quarter of --ring (%d)", o.maxBatch, o.ring/4)
	case o.threads < 0:
		return o, fmt.Errorf("-t %d: want a count of threads (0: Go's default)", o.threads)
	case o.timeout <= 0 || o.startTO <= 0 || o.idle < 0:
		return o, errors.New("--timeout and --start-timeout must be positive, --idle-timeout not negative")
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
	if o.threads > 0 {
		runtime.GOMAXPROCS(o.threads)
	}
	proc, err := replicaproc.Begin(name, o.cpuprofile)
	if err != nil {
		return err
	}
	defer proc.End()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	m := server.NewMachine(int64(o.memMB)<<20, !o.noEvict, o.conns)
	srv, err := server.New(server.Config{
		Addr:        net.JoinHostPort(o.listen, strconv.Itoa(o.port)),
		Machine:     m,
		Limits:      memcache.Limits{MaxValueLen: o.itemMax},
		MaxProposal: o.maxBatch - 64,
		MaxConns:    o.conns,
		Timeout:     o.timeout,
		IdleTimeout: o.idle,
		Settings: []string{"tcpport", strconv.Itoa(o.port), "inter", o.listen,
			"gomu_transport", o.transport, "gomu_profile", string(o.profile), "gomu_max_batch", strconv.Itoa(o.maxBatch)},
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
	// Replicas sharing a machine share its cores (see redis-server-replicated).
	threads := o.threads
	if threads == 0 {
		threads = max(1, runtime.NumCPU()/len(o.ids))
	}
	idList := make([]string, len(o.ids))
	for i, id := range o.ids {
		idList[i] = strconv.Itoa(id)
	}
	return cluster.Run(ctx, cluster.Spec{
		Name:   name,
		IDs:    o.ids,
		Leader: o.ids[0],
		Serve:  true,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Args: func(n cluster.Node) []string {
			args := []string{
				"--sid", strconv.Itoa(n.ID), "--ids", strings.Join(idList, ","),
				"--registry", n.Registry, "--transport", "shm", "--device", n.Fabric,
				"-p", strconv.Itoa(o.port + n.ID - 1), "-l", o.listen,
				"-c", strconv.Itoa(o.conns), "-m", strconv.Itoa(o.memMB), "-I", strconv.Itoa(o.itemMax),
				"--profile", string(o.profile), "--poll", o.poll, "--cluster", o.cluster,
				"--ring", strconv.Itoa(o.ring), "--max-batch", strconv.Itoa(o.maxBatch),
				"--fifo", n.Fifo, "--timeout", o.timeout.String(), "--idle-timeout", o.idle.String(),
				"--start-timeout", o.startTO.String(),
				"--follower-reads", map[bool]string{false: "linearizable", true: "stale"}[o.staleReads],
				"-t", strconv.Itoa(threads), "--verbose=" + strconv.FormatBool(o.verbose),
			}
			if o.noEvict {
				args = append(args, "-M")
			}
			return args
		},
	})
}
