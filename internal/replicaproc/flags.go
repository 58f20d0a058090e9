package replicaproc

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
	"github.com/gomu-rdma/gomu/registry"
)

// Options are the flags every replicated server's command takes beside
// its own: who the replica is, how its engine runs, and the modes
// (--standalone, --local N).
type Options struct {
	SID          int
	IDs          []int
	Registry     string
	Transport    string
	Device       string
	Profile      consensus.Profile
	Poll         string
	Suspect      time.Duration
	Cluster      string
	Ring         int
	MaxBatch     int
	Fifo         string
	Timeout      time.Duration
	StaleReads   bool
	StartTimeout time.Duration
	Standalone   bool
	Local        int
	Advertise    string
	CPUProfile   string
}

// Defaults are the values of Options's flags that differ between servers.
// A zero Ring or MaxBatch leaves them 0 for the command to derive.
type Defaults struct {
	Cluster       string
	Ring          int
	MaxBatch      int
	RingUsage     string
	MaxBatchUsage string
}

// Flags are Options's command-line flags.
func Flags(d Defaults) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "advertise", Usage: "client `HOST:PORT` other replicas name when they redirect a client here (default: the listen address)"},
		&cli.IntFlag{Name: "sid", EnvVars: []string{"SID"}, Usage: "this replica's id"},
		&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated ids of every replica"},
		&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "registry (memcached) `HOST:PORT`"},
		&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
		&cli.StringFlag{Name: "device", Usage: "provider device (shm: fabric name; tcp: listen address; ibv: NIC)"},
		&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "engine profile: fast or relaxed"},
		&cli.StringFlag{Name: "poll", Usage: "override the profile's polling: spin, yield or sleep"},
		&cli.DurationFlag{Name: "suspect-timeout", Usage: "how long a peer's heartbeat may stand still before it is suspected (0: the profile's, 100ms relaxed, 250µs fast); raise it on a machine so loaded that a live leader can stall that long"},
		&cli.StringFlag{Name: "cluster", Value: d.Cluster, Usage: "registry namespace of this cluster"},
		&cli.IntFlag{Name: "ring", Value: d.Ring, Usage: d.RingUsage},
		&cli.IntFlag{Name: "max-batch", Value: d.MaxBatch, Usage: d.MaxBatchUsage},
		&cli.StringFlag{Name: "fifo", Usage: "pause fifo `PATH` (default /tmp/fifo-<id>; - for none)"},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "bound on one replication or read barrier"},
		&cli.StringFlag{Name: "follower-reads", Value: "linearizable", Usage: "reads on a follower: linearizable (it asks the leader for a read index first) or stale (its state as the leader last told it; cheaper, may miss acknowledged writes)"},
		&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long to wait for every replica at start"},
		&cli.BoolFlag{Name: "standalone", Usage: "serve without replication (the baseline)"},
		&cli.IntFlag{Name: "local", Usage: "run an `N`-replica cluster on this machine (embedded registry, one process per replica)"},
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of this replica to `FILE` until it shuts down"},
	}
}

// Parse reads Options from c. The command may then derive what it left at
// 0 (Ring, MaxBatch) before Check.
func Parse(c *cli.Context) (Options, error) {
	o := Options{
		SID: c.Int("sid"), Registry: c.String("registry"), Transport: c.String("transport"),
		Device: c.String("device"), Profile: consensus.Profile(c.String("profile")), Poll: c.String("poll"),
		Suspect: c.Duration("suspect-timeout"), Cluster: c.String("cluster"), Ring: c.Int("ring"), MaxBatch: c.Int("max-batch"),
		Fifo: c.String("fifo"), Timeout: c.Duration("timeout"), StartTimeout: c.Duration("start-timeout"),
		Standalone: c.Bool("standalone"), Local: c.Int("local"), Advertise: c.String("advertise"), CPUProfile: c.String("cpuprofile"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: everything is a flag", c.Args().Slice())
	}
	switch fr := c.String("follower-reads"); fr {
	case "linearizable":
	case "stale":
		o.StaleReads = true
	default:
		return o, fmt.Errorf("--follower-reads %q: want linearizable or stale", fr)
	}
	// --local 0 is the flag's default, yet asked for outright it is a
	// mistake, not a request for a single replica that needs SID and a
	// registry.
	if c.IsSet("local") && o.Local <= 0 {
		return o, fmt.Errorf("--local %d: want a replica count from 1 to %d", o.Local, consensus.MaxReplicas)
	}
	var err error
	if o.Local > 0 {
		if o.Local > consensus.MaxReplicas {
			return o, fmt.Errorf("--local %d: at most %d replicas", o.Local, consensus.MaxReplicas)
		}
		for i := 1; i <= o.Local; i++ {
			o.IDs = append(o.IDs, i)
		}
	} else if o.IDs, err = stbench.ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	return o, nil
}

// Check checks Options as a whole.
func (o Options) Check() error {
	switch {
	case o.Standalone && o.Local > 0:
		return errors.New("--standalone and --local exclude each other")
	case o.Profile != consensus.ProfileFast && o.Profile != consensus.ProfileRelaxed:
		return fmt.Errorf("unknown --profile %q (want fast or relaxed)", o.Profile)
	case o.Suspect < 0:
		return fmt.Errorf("--suspect-timeout %v is negative", o.Suspect)
	case o.MaxBatch < 4096 || o.MaxBatch > o.Ring/4:
		return fmt.Errorf("--max-batch %d must be from 4096 to a quarter of --ring (%d)", o.MaxBatch, o.Ring/4)
	case o.Timeout <= 0 || o.StartTimeout <= 0:
		return errors.New("--timeout and --start-timeout must be positive")
	}
	if o.Poll != "" {
		if _, err := poll.ParseMode(o.Poll); err != nil {
			return fmt.Errorf("--poll: %w", err)
		}
	}
	if o.Standalone || o.Local > 0 {
		return nil
	}
	switch {
	case o.SID == 0:
		return errors.New("no replica id: set SID or --sid (or use --local or --standalone)")
	case !slices.Contains(o.IDs, o.SID):
		return fmt.Errorf("SID %d is not one of the ids %v (set IDS or --ids)", o.SID, o.IDs)
	case o.Registry == "":
		return fmt.Errorf("no registry: set %s or --registry (or use --local or --standalone)", registry.EnvAddr)
	}
	switch o.Transport {
	case "shm", "tcp", "ibv":
	default:
		return fmt.Errorf("unknown --transport %q (want shm, tcp or ibv)", o.Transport)
	}
	return nil
}

// Logger is a replica's logger: warnings on stderr, and with verbose the
// engine's role changes too.
func Logger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Consensus is the engine configuration of the replica Options describe,
// nil when standalone.
func (o Options) Consensus(logger *slog.Logger) *consensus.Config {
	if o.Standalone {
		return nil
	}
	cfg := consensus.Config{
		ID: o.SID, IDs: o.IDs, Registry: o.Registry, Cluster: o.Cluster,
		Transport: o.Transport, Device: o.Device, RingSize: o.Ring, MaxBatch: o.MaxBatch,
		Profile: o.Profile, SuspectTimeout: o.Suspect, Fifo: o.Fifo, EagerCommit: true, Meta: []byte(o.Advertise),
		StartTimeout: o.StartTimeout, Logger: logger,
	}
	if o.Poll != "" {
		mode, _ := poll.ParseMode(o.Poll)
		cfg = cfg.WithPoll(mode)
	}
	return &cfg
}

// LocalArgs are the arguments of Options that --local passes to replica
// n's process (its identity, the embedded registry, shm, and the engine
// flags given); the command adds its own (ports, sizes).
func (o Options) LocalArgs(n cluster.Node) []string {
	ids := make([]string, len(o.IDs))
	for i, id := range o.IDs {
		ids[i] = strconv.Itoa(id)
	}
	reads := "linearizable"
	if o.StaleReads {
		reads = "stale"
	}
	return []string{
		"--sid", strconv.Itoa(n.ID), "--ids", strings.Join(ids, ","),
		"--registry", n.Registry, "--transport", "shm", "--device", n.Fabric,
		"--profile", string(o.Profile), "--poll", o.Poll, "--suspect-timeout", o.Suspect.String(), "--cluster", o.Cluster,
		"--ring", strconv.Itoa(o.Ring), "--max-batch", strconv.Itoa(o.MaxBatch),
		"--fifo", n.Fifo, "--timeout", o.Timeout.String(), "--start-timeout", o.StartTimeout.String(),
		"--follower-reads", reads,
	}
}
