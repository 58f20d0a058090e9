package consensus

import (
	"context"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// ReadBarrier makes a local read of the state machine that follows it
// safe, without replicating the read:
//
//   - On the leader it is linearizable: the call returns once a majority
//     (the leader included) took a WRITE of this leader posted after the
//     call began. A replica that revoked the leader's permission refuses its
//     WRITEs, and any new leader needs a majority of such revocations, so no
//     other leader can have committed anything the leader has not applied;
//     the leader applies every entry before it answers its proposer. Waiting
//     readers share one round of WRITEs (the commit index to the followers'
//     headers), so a burst of reads costs one round trip.
//   - On a follower (or a candidate) it waits until the replica has applied
//     every entry its header says is committed: the follower's committed
//     state, as fresh as the leader last told it. With Config.EagerCommit the
//     leader tells it before answering a proposer, so a command a client saw
//     committed is visible on every active follower after its ReadBarrier.
//
// It fails with ErrNotLeader if the leader loses its position meanwhile, with
// ErrPaused on a paused replica, with ErrCatchingUp on a follower that is
// catching up (restarted, or left behind by the ring) and with ctx's error
// when ctx ends.
func (r *Replica) ReadBarrier(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.paused.Load() {
		return ErrPaused
	}
	if Role(r.role.Load()) != Leader {
		if r.behind.Load() {
			return ErrCatchingUp
		}
		return r.followerBarrier(ctx)
	}
	ticket := r.readWant.Add(1)
	if r.parked.Load() {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	for {
		r.readMu.Lock()
		ch := r.readCh
		r.readMu.Unlock()
		if r.readDone.Load() >= ticket {
			return nil
		}
		if Role(r.role.Load()) != Leader {
			return r.notLeader()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			return ErrClosed
		}
	}
}

// followerBarrier waits until the applied index reaches the commit index in
// our header as it stood when the call began.
func (r *Replica) followerBarrier(ctx context.Context) error {
	target := logring.LoadU64(r.mem, logring.OffCommitIndex)
	w := poll.Waiter{Mode: r.cfg.Poll}
	for r.applied.Load() < target {
		if r.closed.Load() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		w.Wait()
	}
	return nil
}

// confirmReads, on the leader's goroutine, starts a confirmation round for
// the read barriers that arrived since the last one and completes the rounds
// a majority confirmed. It reports whether it did anything.
func (r *Replica) confirmReads() bool {
	ms := &r.ms
	did := false
	if want := r.readWant.Load(); want > ms.readPosted {
		ms.readPosted = want
		for _, p := range r.others {
			if p.active {
				r.post(p, wrConfirm, want, logring.OffCommitIndex, 8, verbs.Signaled)
			}
		}
		did = true
	}
	if ms.readPosted == r.readDone.Load() {
		return did
	}
	var held [MaxReplicas + 1]uint64
	held[0] = ms.readPosted
	n := 1
	for _, p := range r.others {
		if p.active {
			held[n] = p.confirmed
			n++
		}
	}
	if n < r.majority {
		return did
	}
	if c := kthLargest(held[:n], r.majority); c > r.readDone.Load() {
		r.readDone.Store(c)
		r.wakeReaders()
		did = true
	}
	return did
}

// wakeReaders wakes every ReadBarrier call waiting, to look again.
func (r *Replica) wakeReaders() {
	r.readMu.Lock()
	close(r.readCh)
	r.readCh = make(chan struct{})
	r.readMu.Unlock()
}

// Meta returns the Config.Meta replica id published at Start (nil for an
// unknown id; this replica's own for its id).
func (r *Replica) Meta(id int) []byte {
	if id == r.id {
		return r.cfg.Meta
	}
	if id <= 0 || id >= len(r.peers) || r.peers[id] == nil {
		return nil
	}
	if m := r.peers[id].meta.Load(); m != nil {
		return *m
	}
	return nil
}
