package faults

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// System is a replicated store under test, started on an Env: gomu's
// replicated Redis here, etcd beside it in bench/peers, the order book in
// apps/orderbook. The runner asks it who leads, kills and restarts its
// replicas, pauses them its own way, and makes the workloads' clients (or
// runs its own workload: Workloader).
type System interface {
	// Name names the system in tables and file names ("gomu", "etcd").
	Name() string
	// Start starts replicas 0…n-1 on env's replica hosts (and whatever
	// the system needs beside them) and returns once each serves.
	Start(ctx context.Context, env *Env) error
	// Proc is replica i's running process (nil while it is down).
	Proc(i int) *Proc
	// Leader waits until one replica leads and the others follow it, and
	// returns it; with none by ctx's end, an error that says what each
	// replica answered.
	Leader(ctx context.Context) (int, error)
	// Kill kills replica i (SIGKILL) and waits for its end; Restart
	// starts it again with its identity and waits until it serves.
	Kill(i int) error
	Restart(ctx context.Context, i int) error
	// Pause and Resume stop replica i the system's own way (gomu: its
	// pause fifo), or return errors.ErrUnsupported.
	Pause(i int) error
	Resume(i int) error
	// KV is client c's connection for the key-value workload: writes
	// where they must go, reads on any replica (lincheck's model). A
	// Workloader's is never asked for.
	KV(c int) lincheck.Target
	// Lease is client c's lease client. A Workloader's is never asked
	// for: the lease command refuses it.
	Lease(c int) Leaser
	// Digests waits until every running replica has applied everything
	// the leader committed, then returns each one's state digest (""
	// for a replica that is down).
	Digests(ctx context.Context) ([]string, error)
	// Stop stops everything Start started.
	Stop() error
}

// A Workloader is a System that brings a workload of its own, and the
// verdict that goes with it, in place of the key-value workload: the order
// book's traders, whose verdict is exactly-once (every acknowledged order
// applied once) rather than a key-value history porcupine could check.
// RunScenario runs it through the baseline, the fault window and the
// recovery, as it runs the key-value workload, draws the timeline from the
// requests it reports, counts its verdict beside the digests, and neither
// checks linearizability nor reads writes back: the workload's verdict
// answers for what it was acknowledged.
type Workloader interface {
	// Unit names the workload's requests ("orders"): the summary line
	// counts lost_<unit> and doubled_<unit>.
	Unit() string
	// Workload runs w.Clients clients for w.Duration from about w.Start,
	// then judges what they were answered against what the system
	// applied, and returns once that is done or ctx ends. An error says
	// the workload could not run or be judged at all (its verdict is
	// then not counted); what it judged goes in the WorkResult.
	Workload(ctx context.Context, w Work) (*WorkResult, error)
}

// Work is what a Workloader is asked to run.
type Work struct {
	Clients int
	// Start is the scenario's clock: TimedOp times count from it, as the
	// fault's marks do. Duration is baseline, window and recovery.
	Start    time.Time
	Duration time.Duration
	// Name is the scenario's name, unique in the process (files, keys).
	Name string
	Log  func(format string, args ...any)
}

// WorkResult is what a Workloader's clients did and its verdict.
type WorkResult struct {
	// Ops are the requests, each from its first send to its final answer
	// (resends included), in any order.
	Ops []TimedOp
	// Lost counts acknowledged requests the system did not apply;
	// Doubled requests it applied more often than acknowledged;
	// Unjudged requests or clients the verdict could not decide (a
	// request still unanswered at the end, a client whose state could
	// not be read). Each must be 0.
	Lost, Doubled, Unjudged int
	// Verdict is the workload's own line for it ("check: traders=5
	// acked=… lost=0 doubled=0"), and Note what it found wrong, if
	// anything, in its own words.
	Verdict, Note string
}

// TimedOp is one request as the timeline sees it: sent at Call and
// answered at Return (ns since the scenario's start), whether it wrote,
// and whether it got no answer (Unanswered: only its Call counts).
type TimedOp struct {
	Call, Return      int64
	Write, Unanswered bool
}

// Leaser is one client of the lease workload.
type Leaser interface {
	// Acquire asks for the lease on app for holder, for ttl: granted or
	// refused (another holds it), or an error (timed out, failed).
	Acquire(ctx context.Context, app, holder string, ttl time.Duration) (granted bool, err error)
	Close() error
}

// ErrDigestsDiffer is what Digests answers when a replica's state did
// not become the leader's in time; the error says what each replica
// reported.
var ErrDigestsDiffer = errors.New("digests differ")

// ErrUnsupported is what a System answers for a fault it has no way to
// inject.
var ErrUnsupported = errors.ErrUnsupported

// Setup is what a System is made from.
type Setup struct {
	// Replicas is the cluster's size (3, 5, 7).
	Replicas int
	// Dir is a scratch directory of the run's own (data, fifos, logs).
	Dir string
	// Bin is the server program (gomu: redis-server-replicated; etcd:
	// etcd), "" for the system's default.
	Bin string
	// Fast asks for the system's low-latency settings: gomu's fast
	// profile; etcd's shortest sensible heartbeat and election timeout.
	Fast bool
	// Flags are more flags for every server process (gomu:
	// --poll=yield, --suspect-timeout=2ms …).
	Flags []string
	// Timeout bounds one client request (default 300 ms), ReadTimeout
	// one read (default Timeout): a read that gets no reply changes
	// nothing, so a client gives up on it sooner and asks another
	// replica.
	Timeout, ReadTimeout time.Duration
	// Logs is the directory where each process the System starts keeps
	// its whole output, one file per process appended across restarts
	// (see LogFile); "" keeps only the end of it, for messages.
	Logs string
	// Log receives progress lines (never nil).
	Log func(format string, args ...any)
}

// LogFile is where the process called name keeps its output ("" when
// s.Logs is empty): the log argument of StartProc.
func (s Setup) LogFile(name string) string {
	if s.Logs == "" {
		return ""
	}
	return filepath.Join(s.Logs, name+".log")
}

// Factory names a System and makes one per run.
type Factory struct {
	Name string
	New  func(s Setup) (System, error)
}
