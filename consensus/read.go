package consensus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// ReadBarrier makes a local read of the state machine that follows it
// linearizable, on any replica, without replicating the read: once it
// returns, the replica has applied every command acknowledged to anyone
// before the call began.
//
//   - On the leader the call returns once a majority (the leader included)
//     took a WRITE of this leader posted after the call began. A replica
//     that revoked the leader's permission refuses its WRITEs, and any new
//     leader needs a majority of such revocations, so no other leader can
//     have committed anything the leader has not applied; the leader
//     applies every entry before it answers its proposer. Waiting readers
//     share one round of WRITEs (the commit index to the followers'
//     headers), so a burst of reads costs one round trip.
//   - On a follower it asks the leader for a read index (see readIndex):
//     the leader runs the same confirmation round for it, batched with
//     every other reader's, and answers with its commit index; the
//     follower then waits until it has applied that index.
//
// It fails with ErrNotLeader{0} on a follower that knows no live leader
// (an election runs), with ErrNotLeader if the leader loses its position
// meanwhile, with ErrPaused on a paused replica, with ErrCatchingUp on a
// follower that is catching up (restarted, or left behind by the ring) and
// with ctx's error when ctx ends: a follower that cannot reach the leader
// waits for it until then.
func (r *Replica) ReadBarrier(ctx context.Context) error {
	r.memUsers.RLock()
	defer r.memUsers.RUnlock()
	return r.readBarrier(ctx)
}

// readBarrier is ReadBarrier under memUsers, which it must not take again:
// a shared lock taken twice deadlocks against a waiting Close.
func (r *Replica) readBarrier(ctx context.Context) error {
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
		return r.readIndex(ctx)
	}
	ticket := r.readWant.Add(1)
	if r.parked.Load() {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	wake := readWakePool.Get().(chan struct{})
	r.readMu.Lock()
	r.readWaiting = append(r.readWaiting, wake)
	r.readMu.Unlock()
	defer r.stopWaiting(wake)
	for {
		if r.readDone.Load() >= ticket {
			return nil
		}
		if Role(r.role.Load()) != Leader {
			return r.notLeader()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			return ErrClosed
		}
	}
}

// readWakePool holds the wake channels of leader readers (one token of
// room: a wake-up is never lost, and never blocks the loop).
var readWakePool = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// stopWaiting takes a reader's wake channel out of readWaiting, empties
// it and gives it back to the pool.
func (r *Replica) stopWaiting(wake chan struct{}) {
	r.readMu.Lock()
	for i, w := range r.readWaiting {
		if w == wake {
			last := len(r.readWaiting) - 1
			r.readWaiting[i] = r.readWaiting[last]
			r.readWaiting[last] = nil
			r.readWaiting = r.readWaiting[:last]
			break
		}
	}
	r.readMu.Unlock()
	select {
	case <-wake:
	default:
	}
	readWakePool.Put(wake)
}

// StaleReadBarrier is the cheaper barrier for readers that accept stale
// state, as Redis's replicas serve it: on a follower it waits until the
// replica has applied every entry its header says is committed, which is
// as fresh as the leader last told it (with Config.EagerCommit, usually
// every command acknowledged so far; after a pause or a partition,
// possibly much older); on the leader it returns at once. It fails with
// ErrPaused on a paused replica and ErrCatchingUp on one catching up, whose
// state is not even a committed prefix the cluster went through recently.
func (r *Replica) StaleReadBarrier(ctx context.Context) error {
	r.memUsers.RLock()
	defer r.memUsers.RUnlock()
	if r.closed.Load() {
		return ErrClosed
	}
	if r.paused.Load() {
		return ErrPaused
	}
	if Role(r.role.Load()) == Leader {
		return nil
	}
	if r.behind.Load() {
		return ErrCatchingUp
	}
	return r.awaitApplied(ctx, logring.LoadU64(r.mem, logring.OffCommitIndex))
}

// ServeReadBarrier is the barrier a server passes before it serves reads
// on this replica in whatever role: StaleReadBarrier when stale, else
// ReadBarrier; a leader that steps down during its barrier is a follower
// by then, and its read is served as a follower's, through a read index.
func (r *Replica) ServeReadBarrier(ctx context.Context, stale bool) error {
	if stale {
		return r.StaleReadBarrier(ctx)
	}
	err := r.ReadBarrier(ctx)
	for i := 0; i < 2 && errors.Is(err, ErrNotLeaderSentinel) && r.Role() == Follower; i++ {
		err = r.ReadBarrier(ctx)
	}
	return err
}

// Read-index requests. A follower's reader takes a ticket from readAsk and
// makes sure a request word no older than its ticket (the newest ticket
// taken when it is posted, so one post serves every reader waiting) lands
// in its slot of the leader's control MR (ctlReadReqOff), posting on the
// background QP itself (under bgPost) rather than handing it to the
// background goroutine, whose sleeps would be most of a read's latency. The leader's loop notices the word changed
// (takeReadRequests), joins the next confirmation round with it, and once
// a majority confirmed that round (answerReadRequests) writes its commit
// index and then the word into the follower's header (OffReadIndex,
// OffReadSeq), through the replication QP. A word is written after every
// reader whose ticket it covers began, and answered after a round posted
// after it arrived: the answer is an index a confirmed leader had
// committed after each of those readers began. The reader loads OffReadSeq
// first: RC ordering put an index at least as new in OffReadIndex before
// it. A deposed leader cannot complete a round, so it never answers; a
// request that goes unanswered (a leader change, a lost WRITE) is sent
// again after readResend, with a fresh ticket, to whoever leads then.
const (
	// readYield is how long a reader yields between looks at its header
	// before it waits the way the replica's poll mode says: the answer is
	// due within microseconds, and a sleep would cost up to a millisecond
	// of timer slack (Go's timers, in a process with a single P).
	readYield = time.Millisecond
	// readPoll caps a reader's sleep between looks after that.
	readPoll = 20 * time.Microsecond
	// readResendMin bounds readResend from below.
	readResendMin = time.Millisecond
)

// readWaiter is how a reader waits for an answer due soon: yielding for
// readYield, then as the replica's poll mode says, sleeping at most
// readPoll.
type readWaiter struct {
	w     poll.Waiter
	until time.Time
}

func (r *Replica) newReadWaiter() readWaiter {
	m := r.cfg.Poll
	if m != poll.Spin {
		m = poll.SpinYield
	}
	return readWaiter{w: poll.Waiter{Mode: m, Max: readPoll}, until: time.Now().Add(readYield)}
}

func (rw *readWaiter) wait(r *Replica, now time.Time) {
	if rw.w.Mode != r.cfg.Poll && now.After(rw.until) {
		rw.w = poll.Waiter{Mode: r.cfg.Poll, Max: readPoll}
	}
	rw.w.Wait()
}

// readResend is how long a follower's reader waits for an answer before
// asking again: a few heartbeat periods, the time the detector needs to
// notice a new leader at the earliest.
func (r *Replica) readResend() time.Duration {
	return max(4*r.cfg.HeartbeatPeriod, readResendMin)
}

// readIndex is ReadBarrier on a follower.
func (r *Replica) readIndex(ctx context.Context) error {
	ticket := r.readAsk.Add(1)
	sentTo := 0
	var sentAt time.Time
	for logring.LoadU64(r.mem, logring.OffReadSeq) < ticket {
		if err := r.readable(); err != nil {
			return err
		}
		if Role(r.role.Load()) == Leader {
			return r.readBarrier(ctx) // we won an election meanwhile
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if lead := r.Leader(); lead != sentTo || now.Sub(sentAt) > r.readResend() {
			if lead == 0 {
				if sentTo == 0 {
					return ErrNotLeader{}
				}
				// The leader we asked is no longer seen alive: its
				// answer may still come; wait for a new one meanwhile.
			} else {
				if sentTo != 0 {
					ticket = r.readAsk.Add(1)
				}
				r.sendReadRequest(lead, ticket)
				sentTo, sentAt = lead, now
			}
		}
		r.awaitAnswer(ctx, sentAt.Add(r.readResend()))
	}
	return r.awaitApplied(ctx, logring.LoadU64(r.mem, logring.OffReadIndex))
}

// answerWatch lets one of a follower's waiting readers poll its header for
// read-index answers while the others wait on a channel the poller closes
// when it sees one: fifty readers yielding in turn would take the processor
// from the replica and the server they wait for.
type answerWatch struct {
	mu      sync.Mutex
	polling bool
	seen    chan struct{}
}

// awaitAnswer returns once a read-index answer may have landed: as the
// poller, when OffReadSeq moved, at until (when the caller asks again), or
// when the replica may not serve reads; otherwise when the poller returns.
func (r *Replica) awaitAnswer(ctx context.Context, until time.Time) {
	aw := &r.answers
	aw.mu.Lock()
	if aw.polling {
		ch := aw.seen
		aw.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		case <-r.stop:
		}
		return
	}
	aw.polling = true
	aw.mu.Unlock()
	seq := logring.LoadU64(r.mem, logring.OffReadSeq)
	w := r.newReadWaiter()
	for now := time.Now(); logring.LoadU64(r.mem, logring.OffReadSeq) == seq && now.Before(until); now = time.Now() {
		if r.readable() != nil || ctx.Err() != nil || Role(r.role.Load()) == Leader {
			break
		}
		w.wait(r, now)
	}
	aw.mu.Lock()
	aw.polling = false
	close(aw.seen)
	aw.seen = make(chan struct{})
	aw.mu.Unlock()
}

// readable fails for a replica that must not serve reads now.
func (r *Replica) readable() error {
	switch {
	case r.closed.Load():
		return ErrClosed
	case r.paused.Load():
		return ErrPaused
	case r.behind.Load():
		return ErrCatchingUp
	}
	return nil
}

// sendReadRequest makes sure lead's control MR holds, in our read-request
// slot, a request word no older than ticket. A failed post is left to the background goroutine, which
// finds the link broken on its own; the reader asks again after
// readResend.
func (r *Replica) sendReadRequest(lead int, ticket uint64) {
	p := r.peers[lead]
	if p == nil {
		return
	}
	r.bgPost.Lock()
	defer r.bgPost.Unlock()
	if r.readSentTo == lead && r.readSent >= ticket {
		// A reader that came later sent a word covering ours meanwhile.
		return
	}
	if p.dead.Load() {
		return
	}
	// The word is the newest ticket taken, not ours: it covers every
	// reader that began before now, so the readers that queued behind us
	// for the lock find their tickets sent.
	w := r.readAsk.Load()
	logring.PutU64(r.ctl, ctlReadOut, w)
	if p.bg.PostWrite(makeWRID(wrReadReq, p.id, 0), r.ctlMR, ctlReadOut, 8, p.ctl.Add(uint64(ctlReadReqOff(r.id))), verbs.Signaled) == nil {
		r.readSentTo, r.readSent = lead, w
	}
}

// awaitApplied waits until the applied index reaches index.
func (r *Replica) awaitApplied(ctx context.Context, index uint64) error {
	w := r.newReadWaiter()
	for r.applied.Load() < index {
		if err := r.readable(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		w.wait(r, time.Now())
	}
	return nil
}

// takeReadRequests, on the leader's goroutine, notes the read-index
// requests that arrived since the last look and joins each to the next
// confirmation round. It reports whether any arrived.
func (r *Replica) takeReadRequests() bool {
	got := false
	for _, p := range r.others {
		w := logring.LoadU64(r.ctl, ctlReadReqOff(p.id))
		if w == p.readSeen || w == 0 {
			continue
		}
		p.readSeen, p.readPending = w, w
		p.readTicket = r.readWant.Add(1)
		got = true
	}
	if got {
		r.ms.readersAt = time.Now()
	}
	return got
}

// answerReadRequests, on the leader's goroutine, answers the read-index
// requests whose round a majority confirmed: the commit index, then the
// request word, into the follower's header. One answer per follower is in
// flight at a time, so its source words stay put until they are sent; a
// request that arrives meanwhile is answered after it.
func (r *Replica) answerReadRequests() bool {
	did := false
	done := r.readDone.Load()
	for _, p := range r.others {
		if p.readPending == 0 || p.readTicket > done || p.answering || !p.active {
			continue
		}
		src := p.id * 16
		out := r.readOut.Bytes()
		logring.PutU64(out, src, r.commit.Load())
		logring.PutU64(out, src+8, p.readPending)
		err := p.postRep(func(q verbs.QP) error {
			if err := q.PostWrite(makeWRID(wrReadAns, p.id, 0), r.readOut, src, 8, p.log.Add(logring.OffReadIndex), 0); err != nil {
				return err
			}
			return q.PostWrite(makeWRID(wrReadAns, p.id, 1), r.readOut, src+8, 8, p.log.Add(logring.OffReadSeq), verbs.Signaled)
		})
		if err != nil {
			r.followerDown(p, err.Error())
			continue
		}
		p.readPending, p.answering = 0, true
		did = true
	}
	return did
}

// forgetReadRequests drops the read-index state of a term that ended: the
// followers ask again.
func (r *Replica) forgetReadRequests() {
	for _, p := range r.others {
		p.readPending, p.answering = 0, false
	}
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
	for _, w := range r.readWaiting {
		select {
		case w <- struct{}{}:
		default: // a token is already there
		}
	}
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
