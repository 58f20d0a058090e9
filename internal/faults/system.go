package faults

import (
	"context"
	"errors"
	"time"

	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// System is a replicated store under test, started on an Env: gomu's
// replicated Redis here, etcd beside it in bench/peers. The runner asks it
// who leads, kills and restarts its replicas, pauses them its own way, and
// makes the workloads' clients.
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
	// where they must go, reads on any replica (lincheck's model).
	KV(c int) lincheck.Target
	// Lease is client c's lease client.
	Lease(c int) Leaser
	// Digests waits until every running replica has applied everything
	// the leader committed, then returns each one's state digest (""
	// for a replica that is down).
	Digests(ctx context.Context) ([]string, error)
	// Stop stops everything Start started.
	Stop() error
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
	// Log receives progress lines (never nil).
	Log func(format string, args ...any)
}

// Factory names a System and makes one per run.
type Factory struct {
	Name string
	New  func(s Setup) (System, error)
}
