// Package stbench is what the standalone benchmarks main-st and main-st-lat
// share, after Mu's tools of the same names: their arguments
// (<process_id> <payload_size> <nr_outstanding>, the registry, ids,
// transport and profile), the replica they run, the proposing loop of the
// leader, and the way a run ends.
//
// # Ending a run
//
// Followers exit when the leader finishes, with no Ctrl-C: after its last
// measured command the leader proposes one more, the done command. Every
// command of a run is tagged by its first byte: 0 for a measured command
// (the rest of its payload is random), 1 for done. Every replica's state
// machine sees done in log order; a follower then waits for the leader to
// go away and exits. The leader, once done is committed, waits until every
// follower has published that it applied it, followers that fell behind and
// are being caught up included, for at most FinishTimeout, and gives up
// earlier only on a follower that shows no sign of life for EndTimeout; then
// it exits. A follower never gives up while the leader's heartbeat moves,
// even while it is behind; one whose leader disappears without a done
// command reaching it (another replica takes over, or the leader stops for
// longer than EndTimeout) exits with an error rather than waiting forever.
package stbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
)

const (
	// MaxBatch is the log entry payload limit the tools configure, the
	// engine's default.
	MaxBatch = 64 << 10
	// commandHeader is the length prefix a command takes in an entry
	// (consensus/internal/logring.CommandHeaderSize).
	commandHeader = 4
	// MaxPayload is the largest command one entry holds.
	MaxPayload = MaxBatch - commandHeader
	// MaxOutstanding bounds concurrent proposers (the engine's default
	// MaxWaiters).
	MaxOutstanding = 1024
	// DefaultRingSize is the benchmarks' log ring (see Options.RingSize).
	DefaultRingSize = 16 << 20
	// EndTimeout bounds how long one side waits for the other at the end
	// of a run once the other shows no sign of life.
	EndTimeout = 5 * time.Second
	// FinishTimeout bounds the leader's wait, after the done command, for
	// followers that are alive but slow or catching up to apply it.
	FinishTimeout = 60 * time.Second
	// leadTimeout bounds how long the leader waits to lead again after it
	// stepped down.
	leadTimeout = 10 * time.Second
)

// Command tags, the first byte of every command.
const (
	tagMeasured = 0
	tagDone     = 1
)

// Options is one replica's configuration.
type Options struct {
	ID          int
	Payload     int
	Outstanding int
	Count       int
	IDs         []int
	Leader      int
	Registry    string
	Cluster     string
	Transport   string
	Device      string
	Profile     consensus.Profile
	Poll        string // "" for the profile's
	// FollowerPoll is the --local launcher's Poll for followers.
	FollowerPoll string
	Fifo         string
	// RingSize is the log ring's size in bytes. The benchmarks default to
	// a bigger ring than the engine: a follower descheduled for a few
	// milliseconds on a busy 2-core machine should not be lapped by a
	// leader that recycles space a majority applied, since catching it up
	// again (from the ring or by a state transfer) costs the run time.
	RingSize  int
	StartTime time.Duration
	Local     bool
	Verbose   bool
	// CPUProfile, when set, is where Run writes a Go CPU profile of this
	// replica; the --local launcher gives every replica the path with
	// ".<id>" appended.
	CPUProfile string
}

// Flags are the flags both tools take.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry", EnvVars: []string{registry.EnvAddr}, Usage: "registry (memcached) `HOST:PORT`"},
		&cli.StringFlag{Name: "ids", EnvVars: []string{"IDS"}, Value: "1,2,3", Usage: "comma-separated ids of every replica"},
		&cli.IntFlag{Name: "leader", Usage: "id of the replica that proposes and reports (default: the lowest id, which the engine starts as leader)"},
		&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm, tcp or ibv"},
		&cli.StringFlag{Name: "device", Usage: "provider device (shm: fabric name; tcp: listen address; ibv: NIC)"},
		&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "engine profile: fast (spinning, µs heartbeats) or relaxed (sleeping, ms heartbeats)"},
		&cli.StringFlag{Name: "poll", Usage: "override the profile's polling: spin, yield or sleep"},
		&cli.StringFlag{Name: "follower-poll", Usage: "with --local: polling of the followers, which do nothing on the fast path (default: --poll)"},
		&cli.IntFlag{Name: "count", Value: 1000000, Usage: "commands the leader proposes"},
		&cli.IntFlag{Name: "ring", Value: DefaultRingSize, Usage: "log ring size in bytes, a multiple of 64"},
		&cli.StringFlag{Name: "cluster", Value: "main-st", Usage: "registry namespace of this cluster"},
		&cli.StringFlag{Name: "fifo", Usage: "pause fifo `PATH` (default /tmp/fifo-<id>; - for none)"},
		&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long to wait for every replica at start"},
		&cli.BoolFlag{Name: "verbose", Usage: "log the engine's role changes and permission switches on stderr"},
		&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a Go CPU profile of the replica to `FILE` (with --local: FILE.<id> for each replica)"},
		&cli.BoolFlag{Name: "local", Usage: "run the whole cluster on this machine: embedded registry, one process per replica; arguments are then <payload_size> <nr_outstanding>"},
	}
}

// Parse reads and checks the arguments; nothing in them can make a tool
// hang or fail late.
func Parse(c *cli.Context) (Options, error) {
	o := Options{
		Count:        c.Int("count"),
		Registry:     c.String("registry"),
		Cluster:      c.String("cluster"),
		Transport:    c.String("transport"),
		Device:       c.String("device"),
		Profile:      consensus.Profile(c.String("profile")),
		Poll:         c.String("poll"),
		FollowerPoll: c.String("follower-poll"),
		Fifo:         c.String("fifo"),
		RingSize:     c.Int("ring"),
		StartTime:    c.Duration("start-timeout"),
		Local:        c.Bool("local"),
		Verbose:      c.Bool("verbose"),
		CPUProfile:   c.String("cpuprofile"),
	}
	args := c.Args().Slice()
	want := "<process_id> <payload_size> <nr_outstanding>"
	if o.Local {
		want = "<payload_size> <nr_outstanding> (with --local)"
		args = append([]string{"0"}, args...)
	}
	if len(args) != 3 {
		return o, fmt.Errorf("want %d arguments, %s; got %d", strings.Count(want, "<"), want, c.NArg())
	}
	var err error
	names := []string{"process_id", "payload_size", "nr_outstanding"}
	vals := []*int{&o.ID, &o.Payload, &o.Outstanding}
	for i, a := range args {
		if *vals[i], err = strconv.Atoi(a); err != nil {
			return o, fmt.Errorf("%s %q is not a number", names[i], a)
		}
	}
	if o.IDs, err = ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	o.Leader = c.Int("leader")
	if o.Leader == 0 {
		o.Leader = slices.Min(o.IDs)
	}
	switch {
	case !o.Local && !slices.Contains(o.IDs, o.ID):
		return o, fmt.Errorf("process_id %d is not one of the ids %v (set IDS or --ids)", o.ID, o.IDs)
	case !slices.Contains(o.IDs, o.Leader):
		return o, fmt.Errorf("--leader %d is not one of the ids %v", o.Leader, o.IDs)
	case o.Leader != slices.Min(o.IDs):
		return o, fmt.Errorf("--leader %d: the engine starts the lowest id, %d, as leader, so only it can drive the run", o.Leader, slices.Min(o.IDs))
	case o.Payload < 1 || o.Payload > MaxPayload:
		return o, fmt.Errorf("payload_size %d out of range 1..%d (the largest command one log entry holds)", o.Payload, MaxPayload)
	case o.Outstanding < 1 || o.Outstanding > MaxOutstanding:
		return o, fmt.Errorf("nr_outstanding %d out of range 1..%d", o.Outstanding, MaxOutstanding)
	case o.Count < 1:
		return o, fmt.Errorf("--count must be at least 1, got %d", o.Count)
	case o.RingSize < 1<<20 || o.RingSize > 1<<30 || o.RingSize%64 != 0:
		return o, fmt.Errorf("--ring %d must be a multiple of 64 from 1 MiB to 1 GiB", o.RingSize)
	case o.Profile != consensus.ProfileFast && o.Profile != consensus.ProfileRelaxed:
		return o, fmt.Errorf("unknown --profile %q (want %s or %s)", o.Profile, consensus.ProfileFast, consensus.ProfileRelaxed)
	case !o.Local && o.Registry == "":
		return o, fmt.Errorf("no registry: set %s or --registry (or use --local)", registry.EnvAddr)
	}
	for _, f := range []struct{ flag, v string }{{"--poll", o.Poll}, {"--follower-poll", o.FollowerPoll}} {
		if f.v != "" {
			if _, err := poll.ParseMode(f.v); err != nil {
				return o, fmt.Errorf("%s: %w", f.flag, err)
			}
		}
	}
	switch o.Transport {
	case "shm", "tcp", "ibv":
	default:
		return o, fmt.Errorf("unknown --transport %q (want shm, tcp or ibv)", o.Transport)
	}
	if o.Local && o.Transport == "ibv" {
		return o, errors.New("--local runs on one machine: use --transport shm or tcp")
	}
	return o, nil
}

// MinTCPProcs is the GOMAXPROCS a replica on the tcp transport needs at
// least; see TCPProcs.
const MinTCPProcs = 4

// TCPProcs raises GOMAXPROCS to MinTCPProcs in a replica process on the tcp
// transport. The tcp provider serves the peers' one-sided operations from
// goroutines woken by the network poller, and in the fast profile the
// engine keeps two Ps busy for good: the main loop polls on one, and the
// real-time detector thread holds another even while it sleeps (see
// consensus's runBackground). With GOMAXPROCS at 2 (a 2-core machine)
// nothing is left for those goroutines: they run only when the runtime's
// sysmon polls the network, every 10 ms, so every heartbeat READ outlasts
// the 250 µs suspect timeout, every replica suspects every other, and after
// a fail-over the survivors stay candidates, seeing nobody alive. Extra Ps
// cost nothing while idle.
func TCPProcs(transport string) {
	if transport == "tcp" && runtime.GOMAXPROCS(0) < MinTCPProcs {
		runtime.GOMAXPROCS(MinTCPProcs)
	}
}

// ParseIDs reads a comma-separated list of distinct replica ids.
func ParseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || id < 1 || id > consensus.MaxReplicas {
			return nil, fmt.Errorf("ids %q: %q is not a replica id 1..%d", s, f, consensus.MaxReplicas)
		}
		if slices.Contains(ids, id) {
			return nil, fmt.Errorf("ids %q: %d listed twice", s, id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Local runs o's whole cluster on this machine (see internal/cluster): every
// replica is this executable started with o's flags, its id and the
// launcher's registry, fabric and fifo; extra are further flags for the
// leader only.
func Local(ctx context.Context, tool string, o Options, extra []string, stdout, stderr io.Writer) error {
	return cluster.Run(ctx, cluster.Spec{
		Name:   tool,
		IDs:    o.IDs,
		Leader: o.Leader,
		Stdout: stdout,
		Stderr: stderr,
		// What each follower applied, on stderr like its messages.
		OthersStdout: stderr,
		Args: func(n cluster.Node) []string {
			ids := make([]string, len(o.IDs))
			for i, id := range o.IDs {
				ids[i] = strconv.Itoa(id)
			}
			device := o.Device
			if o.Transport == "shm" {
				device = n.Fabric
			}
			mode := o.Poll
			if n.ID != o.Leader && o.FollowerPoll != "" {
				mode = o.FollowerPoll
			}
			args := []string{
				"--registry", n.Registry, "--ids", strings.Join(ids, ","),
				"--transport", o.Transport, "--device", device,
				"--profile", string(o.Profile), "--poll", mode,
				"--count", strconv.Itoa(o.Count), "--cluster", o.Cluster,
				"--ring", strconv.Itoa(o.RingSize),
				"--fifo", n.Fifo, "--start-timeout", o.StartTime.String(),
				"--verbose=" + strconv.FormatBool(o.Verbose),
			}
			if o.CPUProfile != "" {
				args = append(args, "--cpuprofile", o.CPUProfile+"."+strconv.Itoa(n.ID))
			}
			if n.ID == o.Leader {
				args = append(args, extra...)
			}
			return append(args, strconv.Itoa(n.ID), strconv.Itoa(o.Payload), strconv.Itoa(o.Outstanding))
		},
	})
}

// machine is the benchmark's state machine: it counts measured commands and
// notices the done command.
type machine struct {
	applied  atomic.Uint64
	done     chan struct{}
	doneOnce sync.Once
}

func (m *machine) Apply(_ uint64, cmd []byte) []byte {
	if len(cmd) > 0 && cmd[0] == tagDone {
		m.doneOnce.Do(func() { close(m.done) })
		return nil
	}
	m.applied.Add(1)
	return nil
}

// Snapshot writes the measured commands applied and whether done was: a
// follower caught up by a state transfer taken after the done command
// never applies done itself, and must still see the run end.
func (m *machine) Snapshot(w io.Writer) error {
	var done uint64
	select {
	case <-m.done:
		done = 1
	default:
	}
	return binary.Write(w, binary.LittleEndian, [2]uint64{m.applied.Load(), done})
}

func (m *machine) Restore(r io.Reader) error {
	var s [2]uint64
	if err := binary.Read(r, binary.LittleEndian, &s); err != nil {
		return fmt.Errorf("stbench: restore: %w", err)
	}
	m.applied.Store(s[0])
	if s[1] != 0 {
		m.doneOnce.Do(func() { close(m.done) })
	}
	return nil
}

// Result is what the leader measured, or on a follower what it applied.
type Result struct {
	Leader   bool
	Commands int
	Elapsed  time.Duration
	// Retries counts proposals repeated because the leader stepped down
	// and back up while they were in flight (see propose).
	Retries atomic.Int64
	// Latencies holds, when asked for, each command's time from its
	// Propose call to its return, in ns, in the order commands were issued.
	Latencies []int64
}

// Run runs replica o.ID until the run is over. On the leader it proposes
// o.Count commands from o.Outstanding concurrent proposers, timing each one
// if measure is set, and returns the result; a follower returns once the
// leader finished, with the number of commands it applied. Progress goes to progress about once a
// second on long runs.
func Run(ctx context.Context, o Options, measure bool, progress io.Writer) (*Result, error) {
	// An unreachable registry needs no check here: consensus.Start's
	// registry.Dial gives up within registry.DefaultDialTimeout with an
	// error naming the address, as it does for every tool.
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cfg := consensus.Config{
		ID: o.ID, IDs: o.IDs, Registry: o.Registry, Cluster: o.Cluster,
		Transport: o.Transport, Device: o.Device, Profile: o.Profile,
		MaxBatch: MaxBatch, Outstanding: o.Outstanding, MaxWaiters: MaxOutstanding + 1,
		Fifo: o.Fifo, StartTimeout: o.StartTime, RingSize: o.RingSize,
	}
	if o.Poll != "" {
		m, _ := poll.ParseMode(o.Poll)
		cfg = cfg.WithPoll(m)
	}
	if o.Verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Transport == "tcp" && o.Device == "" {
		cfg.Device = "127.0.0.1:0"
	}
	TCPProcs(o.Transport)
	sm := &machine{done: make(chan struct{})}
	r, err := consensus.Start(ctx, cfg, sm)
	if err != nil {
		return nil, fmt.Errorf("start replica %d: %w", o.ID, err)
	}
	defer r.Close()
	if o.ID != o.Leader {
		if err := follow(ctx, r, sm, o); err != nil {
			return nil, err
		}
		return &Result{Commands: int(sm.applied.Load())}, nil
	}
	if l := r.Leader(); l != o.ID {
		return nil, fmt.Errorf("replica %d started, but %d leads", o.ID, l)
	}
	res, err := lead(ctx, r, o, measure, progress)
	if err != nil {
		return nil, err
	}
	return res, finish(ctx, r)
}

// payloads returns n random measured commands of size bytes in one
// allocation; proposers cycle through them.
func payloads(size, n int) [][]byte {
	buf := make([]byte, size*n)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*size : (i+1)*size : (i+1)*size]
		out[i][0] = tagMeasured
	}
	return out
}

func lead(ctx context.Context, r *consensus.Replica, o Options, measure bool, progress io.Writer) (*Result, error) {
	pool := payloads(o.Payload, min(1024, max(16, (16<<20)/o.Payload)))
	res := &Result{Leader: true, Commands: o.Count}
	if measure {
		res.Latencies = make([]int64, o.Count)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Proposals are not cancelled: every one gets its outcome from the
	// engine (a step-down fails those in flight), and a Propose whose
	// context cannot end waits more cheaply. ctx still stops the
	// proposers between commands.
	pctx := context.WithoutCancel(ctx)
	var next, acked atomic.Int64
	var wg sync.WaitGroup
	stopProgress := cluster.ReportProgress(progress, &acked, o.Count)
	start := time.Now()
	for range o.Outstanding {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.Count) || ctx.Err() != nil {
					return
				}
				var t0 time.Time
				if measure {
					t0 = time.Now()
				}
				err := propose(ctx, pctx, r, pool[i%int64(len(pool))], &res.Retries)
				if err != nil {
					cancel(fmt.Errorf("command %d: %w", i, err))
					return
				}
				if measure {
					res.Latencies[i] = int64(time.Since(t0))
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	return res, nil
}

// propose proposes cmd. A leader that loses its majority for a moment (a
// follower that got no CPU for a while on a loaded machine) fails the
// proposals it had in flight with ErrNotLeader and then leads again; such a
// proposal is repeated once this replica leads again, within leadTimeout, and
// counted in retries. The repeated command may have been committed twice,
// which a benchmark of random payloads does not mind. A step-down in favour of
// another replica ends the run.
//
// pctx is the context of the Propose calls, ctx the run's.
func propose(ctx, pctx context.Context, r *consensus.Replica, cmd []byte, retries *atomic.Int64) error {
	for {
		_, err := r.Propose(pctx, cmd)
		if err == nil {
			return nil
		}
		var nl consensus.ErrNotLeader // escapes: only off the fast path
		if !errors.As(err, &nl) || (nl.Leader != 0 && nl.Leader != r.ID()) {
			return err
		}
		retries.Add(1)
		if !poll.Until(poll.Sleep, time.Now().Add(leadTimeout), func() bool { return r.Role() == consensus.Leader || ctx.Err() != nil }) {
			return fmt.Errorf("%w; and no longer leads after %v", err, leadTimeout)
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// finish proposes the done command and waits until every follower has
// applied it, those catching up included (a follower the leader left out
// for falling behind its ring, or that restarted, is taken back while this
// leader stays up, and learns of the done command only then), for at most
// FinishTimeout. It stops waiting for a follower that shows no sign of life
// (its heartbeat stands still and its applied index does not move) for
// EndTimeout: a crashed one. A follower it gave up on is named on stderr;
// the run's result stands.
func finish(ctx context.Context, r *consensus.Replica) error {
	pctx, cancel := context.WithTimeout(ctx, EndTimeout)
	defer cancel()
	if _, err := r.Propose(pctx, []byte{tagDone}); err != nil {
		return fmt.Errorf("propose the done command: %w", err)
	}
	target := r.Stats().Applied
	type watch struct {
		applied uint64
		since   time.Time // of the last sign of life
	}
	watched := map[int]*watch{}
	var waiting []int
	poll.Until(poll.Sleep, time.Now().Add(FinishTimeout), func() bool {
		if ctx.Err() != nil {
			return true
		}
		now := time.Now()
		waiting = waiting[:0]
		for _, p := range r.Stats().Peers {
			if p.Applied >= target {
				continue
			}
			w := watched[p.ID]
			if w == nil {
				w = &watch{applied: p.Applied, since: now}
				watched[p.ID] = w
			}
			if p.Alive || p.Applied != w.applied {
				w.applied, w.since = p.Applied, now
			}
			if now.Sub(w.since) < EndTimeout {
				waiting = append(waiting, p.ID)
			}
		}
		return len(waiting) == 0
	})
	for _, p := range r.Stats().Peers {
		if p.Applied < target {
			fmt.Fprintf(os.Stderr, "warning: follower %d applied %d of the run's %d entries when the leader stopped waiting for it (alive %v, behind %v, lagging %v)\n",
				p.ID, p.Applied, target, p.Alive, p.Behind, p.Lagging)
		}
	}
	return nil
}

// follow waits for the done command, then for the leader to go away. It
// never gives up while the leader's heartbeat moves: a follower that fell
// behind (or is being caught up) sees the done command once the leader has
// taken it back, and the leader waits for that (see finish). A follower
// that saw the done command stays until the leader has gone too, so that
// the leader keeps its majority while it brings a slower follower up to
// date.
func follow(ctx context.Context, r *consensus.Replica, sm *machine, o Options) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var gone time.Time // since when the leader's heartbeat stands still
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sm.done:
			poll.Until(poll.Sleep, time.Now().Add(FinishTimeout+EndTimeout), func() bool {
				return ctx.Err() != nil || !leaderAlive(r, o.Leader)
			})
			return nil
		case now := <-t.C:
			if l := r.Leader(); l != 0 && l != o.Leader {
				return fmt.Errorf("leader %d went away before it finished the run (now %d leads); %d commands applied", o.Leader, l, sm.applied.Load())
			}
			if leaderAlive(r, o.Leader) {
				gone = time.Time{}
			} else if gone.IsZero() {
				gone = now
			} else if now.Sub(gone) > EndTimeout {
				behind := ""
				if r.CatchingUp() {
					behind = " while catching up"
				}
				return fmt.Errorf("leader %d went away and this replica never saw the end of the run (%d commands applied%s)", o.Leader, sm.applied.Load(), behind)
			}
		}
	}
}

// leaderAlive reports whether r believes the replica leader's heartbeat moves.
func leaderAlive(r *consensus.Replica, leader int) bool {
	for _, p := range r.Stats().Peers {
		if p.ID == leader {
			return p.Alive
		}
	}
	return false
}
