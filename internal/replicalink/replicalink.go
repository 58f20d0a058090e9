// Package replicalink is what a replicated app's server does with its
// consensus replica, whatever protocol it speaks to clients: tell whether
// writes may be proposed here, name the live leader for redirects, hold
// clients while the replica is paused, propose under a deadline, and
// record how long replication took for the SIGUSR1 dump.
package replicalink

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/latency"
)

// Link ties a server to its replica. Replica is nil for a standalone
// server; it is set before the server serves and not changed after.
type Link struct {
	Replica *consensus.Replica
	// Timeout bounds each proposal.
	Timeout time.Duration
	// Replication, if set, records the ns each proposal took.
	Replication *latency.Recorder

	recMu             sync.Mutex
	proposals, failed atomic.Int64
}

// Leads reports whether writes may be proposed here: standalone, or the
// leader and not paused.
func (l *Link) Leads() bool {
	r := l.Replica
	return r == nil || r.Role() == consensus.Leader && !r.Paused()
}

// LeaderAddr names the live leader: its id and the client address it
// published as its consensus Meta; 0 and "" while none is known (or
// standalone).
func (l *Link) LeaderAddr() (int, string) {
	r := l.Replica
	if r == nil {
		return 0, ""
	}
	id := r.Leader()
	if id <= 0 {
		return 0, ""
	}
	return id, string(r.Meta(id))
}

// AwaitResumed holds the caller while the replica is paused (the fifo's
// p): a paused replica behaves like a hung process towards its clients
// too, answering nothing until it resumes, or until stop is closed.
func (l *Link) AwaitResumed(stop <-chan struct{}) {
	r := l.Replica
	for r != nil && r.Paused() {
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// Propose replicates p within Timeout (ctx is the caller's re-armed
// deadline, so that nothing is allocated) and returns the engine's result.
func (l *Link) Propose(ctx *deadline.Context, p []byte) ([]byte, error) {
	rec := l.Replication
	var start time.Time
	if rec != nil {
		start = time.Now()
	}
	ctx.Arm(l.Timeout)
	res, err := l.Replica.Propose(ctx, p)
	ctx.Disarm()
	if rec != nil && err == nil {
		l.recMu.Lock()
		rec.Record(time.Since(start))
		l.recMu.Unlock()
	}
	l.proposals.Add(1)
	if err != nil {
		l.failed.Add(1)
	}
	return res, err
}

// Counts returns the proposals made and how many of them failed.
func (l *Link) Counts() (proposals, failed int64) { return l.proposals.Load(), l.failed.Load() }

// Dump writes the replication latencies recorded so far to path, one ns
// value per proposal, and returns their count and percentile summary.
func (l *Link) Dump(path string) (int64, string, error) {
	rec := l.Replication
	if rec == nil {
		return 0, "", errors.New("no replication recorder")
	}
	l.recMu.Lock()
	defer l.recMu.Unlock()
	if err := rec.WriteRaw(path); err != nil {
		return 0, "", fmt.Errorf("dump: %w", err)
	}
	return rec.Count(), rec.Summary(), nil
}
