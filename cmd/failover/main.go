// Command failover measures leader fail-over, as Mu's evaluation does: a
// client proposes continuously to whichever replica leads, the leader is
// made to fail, and the fail-over time is the gap between the last command
// the old leader acknowledged and the first one the new leader acknowledged.
//
//	failover --local [--trials N] [--transport shm|tcp] [--profile relaxed|fast] [--kill | --sigstop]
//
// It runs a whole cluster on this machine (internal/cluster: embedded
// registry, one process per replica, clean-up even on Ctrl-C). Each trial
// waits for the cluster to be steady (one leader acknowledging commands,
// every replica alive in every other's view), then fails the leader:
//
//   - by default it pauses it through its pause fifo ('p', what cmd/fifo
//     sends): the replica stops its heartbeat and serves nothing, like a
//     hung process; after the measurement it is continued ('c') and rejoins
//     as a follower, so the next trial fails the new leader;
//   - --sigstop stops the leader's process with SIGSTOP and continues it
//     with SIGCONT afterwards;
//   - --kill kills it with SIGKILL, then restarts it (the same id, a new
//     process: a new incarnation with empty memory) into the running
//     cluster, and waits until it has caught up: it no longer says it is
//     behind, and the leader counts it active and not lagging. The next
//     trial kills the new leader, and so on, one incident at a time.
//
// The client is in-process, because Propose is: every replica runs a
// one-outstanding proposer that proposes only while its replica leads, and
// publishes each acknowledgement's CLOCK_MONOTONIC time (system-wide, so
// comparable between processes) in a shared memory board the launcher reads.
// The gap therefore includes the failure detection (the profile's suspect
// timeout), the permission switch and the new leader's prepare, plus up to
// one proposer poll interval.
//
// Each trial prints one line; the per-trial gaps, in µs, one a line, go to
// failover-<transport>.txt in the working directory, and the last line is
//
//	failover transport=<t> trials=<n> median_us=<a> p99_us=<b>
//
// With --kill each trial's line also says how long after the restart the
// replica's consensus.Start returned (joined) and it caught up (the launcher
// sees it on the board: replicas publish whether they are behind and, the
// leader, which followers it counts active and not lagging), the
// restart-to-caught-up times go to failover-<transport>-catchup.txt, and
// the last line ends with catchup_median_us=<c> catchup_p99_us=<d>.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	app := &cli.App{
		Name:  "failover",
		Usage: "measure leader fail-over (and, with --kill, a restarted replica's catch-up) on a local cluster",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "local", Usage: "run the whole cluster on this machine (required: the tool drives every replica)"},
			&cli.IntFlag{Name: "trials", Value: 20, Usage: "fail-overs to measure"},
			&cli.StringFlag{Name: "transport", Value: "shm", Usage: "verbs provider: shm or tcp"},
			&cli.StringFlag{Name: "profile", Value: string(consensus.ProfileRelaxed), Usage: "engine profile: relaxed (sleeping, ms heartbeats) or fast (spinning, µs heartbeats; needs a core per replica)"},
			&cli.StringFlag{Name: "poll", Usage: "override the profile's polling: spin, yield or sleep (fast heartbeats with yield suit a machine short of cores better)"},
			&cli.BoolFlag{Name: "kill", Usage: "kill the leader with SIGKILL and restart it into the running cluster (reporting when it caught up) instead of pausing it through its fifo"},
			&cli.BoolFlag{Name: "sigstop", Usage: "stop the leader with SIGSTOP (and SIGCONT after) instead of pausing it through its fifo"},
			&cli.StringFlag{Name: "ids", Value: "1,2,3", Usage: "comma-separated ids of every replica (at least 3)"},
			&cli.IntFlag{Name: "payload", Value: 64, Usage: "size of the client's commands in bytes"},
			&cli.DurationFlag{Name: "trial-timeout", Value: 30 * time.Second, Usage: "how long one step of a trial (steady cluster, new leader; with --kill, restarted replica caught up, plus --start-timeout) may take before the run fails"},
			&cli.DurationFlag{Name: "start-timeout", Value: 30 * time.Second, Usage: "how long replicas wait for each other at start"},
			&cli.BoolFlag{Name: "verbose", Usage: "log the engine's role changes and permission switches on stderr"},
			// Set by the launcher on the replica processes it starts.
			&cli.IntFlag{Name: "replica", Hidden: true},
			&cli.StringFlag{Name: "board", Hidden: true},
			&cli.StringFlag{Name: "registry", Hidden: true},
			&cli.StringFlag{Name: "device", Hidden: true},
			&cli.StringFlag{Name: "fifo", Hidden: true},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

// Fault is how a trial fails the leader.
type Fault string

const (
	FaultPause   Fault = "pause"
	FaultSigstop Fault = "sigstop"
	FaultKill    Fault = "kill"
)

// Options is the run's configuration.
type Options struct {
	Trials       int
	Transport    string
	Profile      consensus.Profile
	Poll         string // "" for the profile's
	Fault        Fault
	IDs          []int
	Payload      int
	TrialTimeout time.Duration
	StartTimeout time.Duration
	Verbose      bool
}

func parse(c *cli.Context) (Options, error) {
	o := Options{
		Trials:       c.Int("trials"),
		Transport:    c.String("transport"),
		Profile:      consensus.Profile(c.String("profile")),
		Poll:         c.String("poll"),
		Fault:        FaultPause,
		Payload:      c.Int("payload"),
		TrialTimeout: c.Duration("trial-timeout"),
		StartTimeout: c.Duration("start-timeout"),
		Verbose:      c.Bool("verbose"),
	}
	var err error
	if o.IDs, err = stbench.ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	switch {
	case c.NArg() != 0:
		return o, fmt.Errorf("want no arguments, got %d (%s)", c.NArg(), strings.Join(c.Args().Slice(), " "))
	case !c.Bool("local"):
		return o, errors.New("failover drives every replica of a cluster on this machine: use --local")
	case c.Bool("kill") && c.Bool("sigstop"):
		return o, errors.New("--kill and --sigstop are mutually exclusive (the default pauses the leader through its fifo)")
	case o.Trials < 1:
		return o, fmt.Errorf("--trials must be at least 1, got %d", o.Trials)
	case o.Transport == "ibv":
		return o, errors.New("--local runs on one machine: use --transport shm or tcp")
	case o.Transport != "shm" && o.Transport != "tcp":
		return o, fmt.Errorf("unknown --transport %q (want shm or tcp)", o.Transport)
	case o.Profile != consensus.ProfileFast && o.Profile != consensus.ProfileRelaxed:
		return o, fmt.Errorf("unknown --profile %q (want %s or %s)", o.Profile, consensus.ProfileFast, consensus.ProfileRelaxed)
	case len(o.IDs) < 3:
		return o, fmt.Errorf("--ids %v: fail-over needs at least 3 replicas, so that a majority survives the leader", o.IDs)
	case o.Payload < 1 || o.Payload > stbench.MaxPayload:
		return o, fmt.Errorf("--payload %d out of range 1..%d", o.Payload, stbench.MaxPayload)
	case o.TrialTimeout <= 0 || o.StartTimeout <= 0:
		return o, errors.New("--trial-timeout and --start-timeout must be positive")
	}
	if o.Poll != "" {
		if _, err := poll.ParseMode(o.Poll); err != nil {
			return o, fmt.Errorf("--poll: %w", err)
		}
	}
	if c.Bool("kill") {
		o.Fault = FaultKill
	} else if c.Bool("sigstop") {
		o.Fault = FaultSigstop
	}
	return o, nil
}

func run(c *cli.Context) error {
	if c.IsSet("replica") {
		o, err := parseReplica(c)
		if err != nil {
			return err
		}
		return runReplica(c.Context, o)
	}
	o, err := parse(c)
	if err != nil {
		return err
	}
	return launch(c.Context, o)
}

// monotonic is CLOCK_MONOTONIC in ns: unlike time.Now's monotonic reading,
// it compares between processes.
func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// The board is a small shared file every replica maps: two cache lines per
// possible id where the replica publishes its state and acknowledgements,
// each field an atomic uint64.
const (
	slotSize  = 128
	boardSize = slotSize * (consensus.MaxReplicas + 1)
)

type slot struct {
	beat    atomic.Int64  // monotonic ns of the replica's last status update
	role    atomic.Int64  // consensus.Role
	leader  atomic.Int64  // who it believes leads
	paused  atomic.Int64  // 1 while paused
	alive   atomic.Uint64 // bit p set: it sees peer p alive
	acks    atomic.Int64  // commands acknowledged as leader
	lastAck atomic.Int64  // monotonic ns of the last acknowledgement
	mark    atomic.Int64  // monotonic ns of the first acknowledgement since the launcher zeroed it
	behind  atomic.Int64  // 1 while the replica is catching up (Stats.Behind)
	current atomic.Uint64 // leader: bit p set: peer p is active and not lagging
	started atomic.Int64  // monotonic ns at which consensus.Start returned (0 before)
}

var _ [slotSize - unsafe.Sizeof(slot{})]byte // a slot fits its line

type board struct {
	mem []byte
}

func openBoard(path string, create bool) (*board, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	defer f.Close()
	if create {
		if err := f.Truncate(boardSize); err != nil {
			return nil, fmt.Errorf("board: %w", err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, boardSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("board: mmap %s: %w", path, err)
	}
	return &board{mem: mem}, nil
}

func (b *board) slot(id int) *slot {
	return (*slot)(unsafe.Pointer(&b.mem[id*slotSize]))
}

func (b *board) reset() {
	clear(b.mem)
}

// clearSlot zeroes replica id's slot: what the launcher does before it
// restarts the replica, whose old process, dead, writes nothing any more.
func (b *board) clearSlot(id int) {
	clear(b.mem[id*slotSize : (id+1)*slotSize])
}

func (b *board) close() { unix.Munmap(b.mem) }

// writeFifo sends s to a replica's pause fifo without blocking.
func writeFifo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open fifo: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		return fmt.Errorf("write fifo %s: %w", path, err)
	}
	return nil
}

// settle is how long a cluster must look steady before a trial fails its
// leader: long enough for a resumed replica to be seen alive again and to
// catch up.
func settle(p consensus.Profile) time.Duration {
	if p == consensus.ProfileFast {
		return 50 * time.Millisecond
	}
	return 300 * time.Millisecond
}

// staleBeat is how old a replica's status may be for it to count as running.
const staleBeat = 500 * time.Millisecond

// maxGap is the histogram's range; longer gaps are clamped to it.
const maxGap = time.Minute

func launch(ctx context.Context, o Options) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "gomu-failover-board-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	boardPath := tmp + "/board"
	b, err := openBoard(boardPath, true)
	if err != nil {
		return err
	}
	defer b.close()

	start := func() (*cluster.Cluster, error) {
		return cluster.Start(ctx, cluster.Spec{
			Name:   "failover",
			IDs:    o.IDs,
			Stderr: os.Stderr,
			Args: func(n cluster.Node) []string {
				ids := make([]string, len(o.IDs))
				for i, id := range o.IDs {
					ids[i] = strconv.Itoa(id)
				}
				device := ""
				if o.Transport == "shm" {
					device = n.Fabric
				}
				return []string{
					"--replica", strconv.Itoa(n.ID), "--board", boardPath,
					"--registry", n.Registry, "--device", device, "--fifo", n.Fifo,
					"--ids", strings.Join(ids, ","), "--transport", o.Transport,
					"--profile", string(o.Profile), "--poll", o.Poll, "--payload", strconv.Itoa(o.Payload),
					"--start-timeout", o.StartTimeout.String(),
					"--verbose=" + strconv.FormatBool(o.Verbose),
				}
			},
		})
	}

	rec := latency.New(maxGap, 0)
	catchRec := latency.New(maxGap, 0)
	var gaps, catches []time.Duration
	b.reset()
	cl, err := start()
	if err != nil {
		return err
	}
	defer cl.Close()
	x := &exits{cl: cl, killed: map[cluster.Exit]bool{}}
	live := slices.Clone(o.IDs)
	for trial := 1; trial <= o.Trials; trial++ {
		leader, err := waitSteady(x, b, live, o)
		if err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		killed := cluster.Exit{ID: leader, Run: cl.CurrentRun(leader)}
		if o.Fault == FaultKill {
			x.killed[killed] = true
		}
		next, gap, err := failLeader(x, b, leader, live, o)
		if err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		rec.Record(gap)
		gaps = append(gaps, gap)
		line := fmt.Sprintf("trial %d: %s %d, %d took over after %d µs", trial, o.Fault, leader, next, gap.Microseconds())
		if o.Fault == FaultKill {
			joined, caught, err := restart(x, b, killed, o)
			if err != nil {
				return fmt.Errorf("trial %d: %w", trial, err)
			}
			catchRec.Record(caught)
			catches = append(catches, caught)
			line += fmt.Sprintf("; restarted %d joined after %d µs, caught up after %d µs", leader, joined.Microseconds(), caught.Microseconds())
		}
		fmt.Println(line)
	}

	path := "failover-" + o.Transport + ".txt"
	if err := writeMicros(path, gaps); err != nil {
		return err
	}
	fmt.Printf("wrote %d fail-over times in µs to %s\n", len(gaps), path)
	summary := fmt.Sprintf("failover transport=%s trials=%d median_us=%d p99_us=%d",
		o.Transport, o.Trials, rec.Percentile(50)/1000, rec.Percentile(99)/1000)
	if o.Fault == FaultKill {
		path := "failover-" + o.Transport + "-catchup.txt"
		if err := writeMicros(path, catches); err != nil {
			return err
		}
		fmt.Printf("wrote %d restart-to-caught-up times in µs to %s\n", len(catches), path)
		summary += fmt.Sprintf(" catchup_median_us=%d catchup_p99_us=%d", catchRec.Percentile(50)/1000, catchRec.Percentile(99)/1000)
	}
	fmt.Println(summary)
	return nil
}

// writeMicros writes each recorded gap in µs, one a line, in trial order.
func writeMicros(path string, gaps []time.Duration) error {
	var sb strings.Builder
	for _, g := range gaps {
		fmt.Fprintf(&sb, "%d\n", g.Microseconds())
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("write per-trial results: %w", err)
	}
	return nil
}

// waitSteady waits until, for a settle period, every replica in live runs
// and is not paused, all agree on one leader, which acknowledges commands,
// and each replica has seen every other alive (at least once in the period:
// under the fast profile on a machine short of cores, suspicions flicker);
// it returns the leader.
func waitSteady(x *exits, b *board, live []int, o Options) (int, error) {
	limit := o.TrialTimeout + o.StartTimeout
	deadline := time.Now().Add(limit)
	var since time.Time
	var leader int
	var acks int64
	seen := map[int]uint64{}
	var want uint64
	for _, id := range live {
		want |= 1 << id
	}
	why := "no replica reported yet"
	for {
		if err := x.check(); err != nil {
			return 0, err
		}
		l, reason := steadyLeader(b, live)
		now := time.Now()
		switch {
		case l == 0:
			why, since = reason, time.Time{}
		case l != leader || since.IsZero():
			leader, since, acks = l, now, b.slot(l).acks.Load()
			clear(seen)
		}
		if !since.IsZero() {
			for _, id := range live {
				seen[id] |= b.slot(id).alive.Load() | 1<<id
			}
			if now.Sub(since) >= settle(o.Profile) {
				why = fmt.Sprintf("leader %d acknowledges no commands", leader)
				ok := b.slot(leader).acks.Load() > acks
				for _, id := range live {
					if seen[id] != want {
						ok, why = false, fmt.Sprintf("replica %d does not see every other alive (it sees %v)", id, members(seen[id]&^(1<<id)))
					}
				}
				if ok {
					return leader, nil
				}
				since = time.Time{}
			}
		}
		if now.After(deadline) {
			return 0, fmt.Errorf("the cluster did not settle within %v: %s (%s)", limit, why, describe(b, live))
		}
		time.Sleep(time.Millisecond)
	}
}

// describe is what the board says about each replica, for errors.
func describe(b *board, live []int) string {
	now := monotonic()
	var parts []string
	for _, id := range live {
		s := b.slot(id)
		if s.beat.Load() == 0 {
			parts = append(parts, fmt.Sprintf("replica %d: no status yet", id))
			continue
		}
		p := fmt.Sprintf("replica %d: %v, believes %d leads, paused %v, behind %v, sees %v alive, %d acks, status %v old",
			id, consensus.Role(s.role.Load()), s.leader.Load(), s.paused.Load() != 0, s.behind.Load() != 0, members(s.alive.Load()), s.acks.Load(),
			time.Duration(now-s.beat.Load()).Round(time.Millisecond))
		if consensus.Role(s.role.Load()) == consensus.Leader {
			p += fmt.Sprintf(", counts %v active and current", members(s.current.Load()))
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// members lists the ids whose bits are set in mask.
func members(mask uint64) []int {
	var ids []int
	for id := 1; id <= consensus.MaxReplicas; id++ {
		if mask&(1<<id) != 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// steadyLeader returns the one leader every live replica agrees on, or 0
// and why not.
func steadyLeader(b *board, live []int) (int, string) {
	now := monotonic()
	leader := 0
	for _, id := range live {
		s := b.slot(id)
		switch {
		case now-s.beat.Load() > int64(staleBeat):
			return 0, fmt.Sprintf("replica %d reports no status", id)
		case s.paused.Load() != 0:
			return 0, fmt.Sprintf("replica %d is paused", id)
		case consensus.Role(s.role.Load()) == consensus.Leader:
			if leader != 0 {
				return 0, fmt.Sprintf("replicas %d and %d both lead", leader, id)
			}
			leader = id
		}
	}
	if leader == 0 {
		return 0, "no replica leads"
	}
	for _, id := range live {
		if l := b.slot(id).leader.Load(); l != int64(leader) {
			return 0, fmt.Sprintf("replica %d believes %d leads, not %d", id, l, leader)
		}
	}
	return leader, ""
}

// exits receives the replica processes' ends: those of processes the
// launcher killed (killed) are expected, any other fails the run.
type exits struct {
	cl     *cluster.Cluster
	killed map[cluster.Exit]bool // {ID, Run} of killed processes whose end is not in yet
}

// check fails if a replica process the launcher did not kill exited, or the
// run was interrupted; it never waits.
func (x *exits) check() error {
	for {
		select {
		case <-x.cl.Context().Done():
			return fmt.Errorf("interrupted (%w); stopped every replica", context.Cause(x.cl.Context()))
		case e := <-x.cl.Exits():
			k := cluster.Exit{ID: e.ID, Run: e.Run}
			if !x.killed[k] {
				return fmt.Errorf("replica %d exited: %v", e.ID, e.Err)
			}
			delete(x.killed, k)
		default:
			return nil
		}
	}
}

// wait waits until killed process k's end is in.
func (x *exits) wait(k cluster.Exit, deadline time.Time) error {
	for x.killed[k] {
		if err := x.check(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("killed replica %d's process did not exit", k.ID)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// restart starts the killed replica k.ID again, a new process and a new
// incarnation that rejoins the running cluster, and waits until it has
// caught up: its slot says it is not behind, and the leader it follows
// counts it active and not lagging. It returns how long after the restart
// consensus.Start returned in the new process (joined) and it caught up.
func restart(x *exits, b *board, k cluster.Exit, o Options) (joined, caught time.Duration, err error) {
	id := k.ID
	limit := o.TrialTimeout + o.StartTimeout
	deadline := time.Now().Add(limit)
	if err := x.wait(k, deadline); err != nil {
		return 0, 0, err
	}
	s := b.slot(id)
	b.clearSlot(id)
	t0 := monotonic()
	if _, err := x.cl.Restart(id); err != nil {
		return 0, 0, err
	}
	for {
		if err := x.check(); err != nil {
			return 0, 0, err
		}
		now := monotonic()
		if st := s.started.Load(); st != 0 && s.behind.Load() == 0 && now-s.beat.Load() <= int64(staleBeat) {
			l := int(s.leader.Load())
			if l != id && l > 0 && l <= consensus.MaxReplicas {
				ls := b.slot(l)
				if consensus.Role(ls.role.Load()) == consensus.Leader && ls.current.Load()&(1<<id) != 0 {
					return time.Duration(st - t0), time.Duration(now - t0), nil
				}
			}
		}
		if time.Now().After(deadline) {
			why := "it has not started (consensus.Start has not returned)"
			if s.started.Load() != 0 {
				why = "it did not catch up"
			}
			return 0, 0, fmt.Errorf("restarted replica %d: %s within %v (%s)", id, why, limit, describe(b, o.IDs))
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// failLeader fails leader, waits for another replica to acknowledge a
// command, and undoes the fault (except a kill); it returns the new leader
// and the gap between the old leader's last acknowledgement and the new
// one's first.
func failLeader(x *exits, b *board, leader int, live []int, o Options) (int, time.Duration, error) {
	cl := x.cl
	for _, id := range live {
		b.slot(id).mark.Store(0)
	}
	var err error
	switch o.Fault {
	case FaultPause:
		err = writeFifo(cl.Node(leader).Fifo, "p")
	case FaultSigstop:
		err = cl.Signal(leader, syscall.SIGSTOP)
	case FaultKill:
		err = cl.Signal(leader, syscall.SIGKILL)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("fail leader %d: %w", leader, err)
	}
	deadline := time.Now().Add(o.TrialTimeout)
	next, first := 0, int64(0)
	for next == 0 {
		if err := x.check(); err != nil {
			return 0, 0, err
		}
		for _, id := range live {
			if m := b.slot(id).mark.Load(); id != leader && m != 0 && (next == 0 || m < first) {
				next, first = id, m
			}
		}
		if next == 0 {
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("no replica took over from leader %d within %v (%s)", leader, o.TrialTimeout, describe(b, live))
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	last := b.slot(leader).lastAck.Load()
	switch o.Fault {
	case FaultPause:
		err = writeFifo(cl.Node(leader).Fifo, "c")
	case FaultSigstop:
		err = cl.Signal(leader, syscall.SIGCONT)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("resume replica %d: %w", leader, err)
	}
	if first < last {
		// Timestamps are taken after Propose returns, so a proposer
		// descheduled at the wrong moment on a loaded machine can stamp
		// the old leader's last acknowledgement late. Say so; count 0.
		fmt.Fprintf(os.Stderr, "failover: warning: replica %d's first acknowledgement is stamped %v before leader %d's last one; counted as 0\n", next, time.Duration(last-first), leader)
		last = first
	}
	return next, time.Duration(first - last), nil
}
