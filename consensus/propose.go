package consensus

import (
	"context"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
)

// Propose replicates cmd and, once it is committed, returns the result of
// applying it on this replica (the leader). It is safe for concurrent use;
// concurrent calls are committed together in one log entry (group commit).
// On a replica that does not lead it fails with ErrNotLeader; during an
// election it waits for the outcome rather than dropping cmd. A leader that
// loses its position fails the calls it had in flight with ErrNotLeader:
// their commands may or may not have been committed by the next leader.
// cmd must not be modified until Propose returns.
//
// A command too long for one entry (more than MaxBatch bytes with its
// length prefix), up to MaxCommand, is replicated in chunks and applied
// whole, once, when its last chunk commits (see large.go); the leader
// appends one such command at a time, and a leader change in its middle
// fails it with ErrNotLeader, every replica discarding its chunks.
//
// Propose allocates nothing on the fast path.
func (r *Replica) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if r.paused.Load() {
		return nil, ErrPaused
	}
	// A follower the detector has just told to run is as good as a
	// candidate: the command waits for the election's outcome (the main
	// loop fails it if the replica does not run after all).
	if Role(r.role.Load()) == Follower && !r.elect.Load() {
		return nil, r.notLeader()
	}
	if logring.CommandSize(len(cmd)) > r.cfg.MaxBatch && len(cmd) > r.cfg.MaxCommand {
		return nil, ErrTooLarge
	}
	var idx int32
	select {
	case idx = <-r.free:
	default:
		return nil, ErrBusy
	}
	w := &r.waiters[idx]
	w.cmd = cmd
	w.state.Store(wQueued)
	r.queue <- idx // never blocks: it holds at most MaxWaiters ids
	if r.parked.Load() {
		select {
		case r.kick <- struct{}{}:
		default: // a kick is already pending
		}
	}
	if ctx.Done() == nil && !r.closed.Load() {
		// Nothing can cancel the call and the replica was open after
		// cmd was queued: the main loop, which drains the queue once it
		// sees closed, is sure to answer. A plain receive costs much
		// less than a select over channels every proposer shares.
		<-w.done
	} else {
		if err := r.await(ctx, w); err != nil {
			return nil, err
		}
	}
	res, err := w.res, w.err
	w.cmd, w.res, w.err = nil, nil, nil
	w.state.Store(wFree)
	r.free <- idx
	return res, err
}

// await waits for w's outcome, ctx's end or the replica's closing; it
// returns an error only where Propose returns without w's outcome.
func (r *Replica) await(ctx context.Context, w *waiter) error {
	select {
	case <-w.done:
	case <-ctx.Done():
		if w.state.CompareAndSwap(wQueued, wAbandoned) {
			return ctx.Err() // the main loop frees the waiter
		}
		// The leader took the command: its outcome is on the way.
		select {
		case <-w.done:
		case <-r.stop:
			return r.closedWhileProposing(w)
		}
	case <-r.stop:
		return r.closedWhileProposing(w)
	}
	return nil
}

// take receives the next queued proposal, if any, for the main loop; it
// frees abandoned ones on the way.
func (r *Replica) take() (int32, bool) {
	for {
		select {
		case idx := <-r.queue:
			w := &r.waiters[idx]
			if w.state.CompareAndSwap(wQueued, wTaken) {
				return idx, true
			}
			w.cmd = nil
			w.state.Store(wFree)
			r.free <- idx
		default:
			return 0, false
		}
	}
}

// finish delivers a taken proposal's outcome.
func (r *Replica) finish(idx int32, res []byte, err error) {
	w := &r.waiters[idx]
	w.res, w.err = res, err
	w.done <- struct{}{}
}

// failQueued fails every queued proposal with err.
func (r *Replica) failQueued(err error) {
	for {
		idx, ok := r.take()
		if !ok {
			return
		}
		r.finish(idx, nil, err)
	}
}

// closedWhileProposing waits, once the replica is closing, until the main
// loop has let go of w's command (it answers every proposal it holds before
// it exits), so that Propose keeps its promise that the caller may reuse
// cmd as soon as it returns.
func (r *Replica) closedWhileProposing(w *waiter) error {
	select {
	case <-w.done:
	case <-r.mainDone:
	}
	return ErrClosed
}
