package consensus

import (
	"fmt"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// mainState is owned by the main goroutine: the apply cursor, the writer's
// ring accounting and the proposals in flight. One goroutine replays as a
// follower and drives the pipeline as leader, so the cursor passes from one
// role to the other without synchronisation.
type mainState struct {
	cur   logring.Cursor // next entry to apply
	wring *logring.Ring  // leader: space accounting
	spare *logring.Ring  // leader: scratch accounting for retain, swapped with wring
	comps [64]verbs.Completion

	// Proposals taken into entries, in log order (a circular FIFO), and
	// per in-flight entry the number of them it carries.
	wq            []int32
	wqHead, wqLen int
	meta          []entryMeta
	carry         int32 // a taken proposal that did not fit the last batch, or -1
	answered      int   // proposals answered in this turn of the leader loop

	// hist[k%len(hist)] is the cursor from which entry k was applied
	// (Next == k), for every applied entry still possibly in the ring: a
	// new leader re-registers the entries its slower followers have not
	// applied from there (see keepFrom). One slot per smallest possible
	// entry, so a slot is overwritten only once its entry surely is.
	hist []logring.Cursor

	commitWritten uint64    // the commit index last written to followers' headers
	readPosted    uint64    // the last read-barrier round posted to followers
	readersAt     time.Time // when a follower's read-index request last arrived
	applyBuf      []byte    // follower: committed payloads are copied here before Apply

	// Large commands (large.go): the one being appended in chunks (a
	// waiter, or -1) and how much of it is appended; whether a new
	// leader owes a drop before anything else; the command being
	// reassembled from the log (either role).
	big      int32
	bigOff   int
	needDrop bool
	asm      assembly
}

type entryMeta struct {
	index uint64
	n     int
}

func (r *Replica) initMain() error {
	ms := &r.ms
	ms.cur = logring.Cursor{Next: 1}
	var err error
	if ms.wring, err = logring.New(r.cfg.RingSize, r.cfg.RingSize/logring.Align); err != nil {
		return err
	}
	if ms.spare, err = logring.New(r.cfg.RingSize, r.cfg.RingSize/logring.Align); err != nil {
		return err
	}
	ms.wq = make([]int32, r.cfg.MaxWaiters)
	ms.meta = make([]entryMeta, 2*r.cfg.Outstanding+2)
	ms.carry, ms.big = -1, -1
	ms.hist = make([]logring.Cursor, r.cfg.RingSize/logring.Align+1)
	ms.applyBuf = make([]byte, r.cfg.MaxBatch)
	return nil
}

// runMain alternates between following (replaying) and leading, running an
// election in between when the detector says this replica should.
func (r *Replica) runMain() {
	defer r.wg.Done()
	defer close(r.mainDone)
	for !r.closed.Load() {
		switch Role(r.role.Load()) {
		case Leader:
			r.lead()
		default:
			if r.follow() {
				r.campaign()
			}
		}
	}
	r.failQueued(ErrClosed)
}

// follow replays committed entries of the local log until the replica is
// closed (false) or the detector asks it to run for leader (true).
//
// An entry is applied only once it is known committed, from the header's
// commit index (written by an idle leader) or from the commit index carried
// by the entry after it, and only as decoded after that knowledge was
// gained: a leader writes entry k before anything that says k is committed,
// so the copy decoded afterwards is the final one. The payload is copied out
// and checked Stable before it is applied, in case the leader reuses the
// space (it only does once a majority applied it, but this replica may be
// the laggard).
func (r *Replica) follow() bool {
	ms := &r.ms
	w := poll.Waiter{Mode: r.cfg.Poll}
	known := r.commit.Load()
	for {
		if r.closed.Load() {
			return false
		}
		if r.paused.Load() {
			r.idlePaused()
			continue
		}
		r.adoptLinksMain()
		if r.elect.Load() {
			return true // queued proposals wait for the campaign
		}
		r.failQueued(r.notLeader())
		if r.snapAsked.Load() != 0 && r.serveSnapshots() {
			w.Reset()
		}
		if r.leaderSaysLagging() {
			if idx := r.catchUpStep(); idx > 0 {
				known = max(known, idx)
				w.Reset()
				continue
			}
		}
		// An answer to a read-index request is a committed index too,
		// written after the entries it covers, like the commit index.
		if hc := max(logring.LoadU64(r.mem, logring.OffCommitIndex), logring.LoadU64(r.mem, logring.OffReadIndex)); hc > known {
			known = hc
		}
		if known < ms.cur.Next {
			c := ms.cur
			if e, ok := c.Poll(r.ring); ok {
				known = max(known, e.Commit)
				seen := e.Index
				if e2, ok := c.Poll(r.ring); ok {
					known, seen = max(known, e2.Commit), e2.Index
				}
				if seen > r.seen.Load() {
					r.seen.Store(seen)
				}
			}
			if known < ms.cur.Next {
				w.Wait()
				continue
			}
		}
		c := ms.cur
		e, ok := c.Poll(r.ring)
		if !ok {
			w.Wait()
			continue
		}
		n := copy(ms.applyBuf, e.Payload)
		if n != len(e.Payload) || !logring.Stable(r.ring, e) {
			w.Wait()
			continue
		}
		payload := ms.applyBuf[:n]
		if logring.IsSpecial(payload) {
			r.applySpecial(e.Index, payload)
		} else {
			if _, err := logring.ValidateBatch(payload); err != nil {
				// A committed, checksummed entry cannot be malformed
				// unless a writer is broken: stop rather than diverge.
				r.broken("a committed entry holds a well-formed batch", "index", e.Index, "err", err)
			}
			cs := logring.NewCommands(payload)
			for cmd, ok := cs.Next(); ok; cmd, ok = cs.Next() {
				r.sm.Apply(e.Index, cmd)
			}
		}
		ms.hist[e.Index%uint64(len(ms.hist))] = ms.cur
		ms.cur = c
		r.setApplied(e.Index)
		r.commit.Store(known)
		w.Reset()
	}
}

func (r *Replica) setApplied(i uint64) {
	r.applied.Store(i)
	logring.PutU64(r.ctl, ctlApplied, i)
}

// broken stops the replica, loudly, because an invariant the protocol rests
// on does not hold: going on could apply a different history than the other
// replicas. Like etcd's raft, it panics with a message naming the
// invariant; the process dies, the others go on without it, and restarted
// it rejoins with a state transfer from a healthy replica.
func (r *Replica) broken(invariant string, args ...any) {
	r.cfg.Logger.Error("invariant broken: "+invariant, append([]any{"id", r.id}, args...)...)
	panic(fmt.Sprintf("consensus: replica %d: invariant broken: %s %v", r.id, invariant, args))
}
