package consensus

import (
	"runtime"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// lead runs the fast path until the replica is closed or loses leadership.
//
// Each turn it reaps completions (a follower's completion of entry k means
// it holds every entry up to k: RC ordering), moves the commit index to the
// highest index a majority holds, applies newly committed entries and
// answers their proposers, releases ring space every active follower (or,
// when the ring is full, a majority) has applied, and appends one batch of
// queued proposals if fewer than Outstanding entries are in flight. It also
// runs read-barrier confirmation rounds (read.go) and, with EagerCommit,
// writes each new commit index to the followers' headers before answering.
// When it has nothing in flight it writes the commit index to the followers'
// headers, so they apply the last entry without waiting for another.
func (r *Replica) lead() {
	ms := &r.ms
	w := poll.Waiter{Mode: r.cfg.Poll}
	r.forgetReadRequests()
	ms.needDrop = r.mayHoldPartial()
	for {
		if r.closed.Load() {
			r.stepDown("closed", ErrClosed)
			return
		}
		if r.paused.Load() {
			r.idlePaused()
			continue
		}
		r.adoptLinksMain()
		if r.deposed.Load() {
			r.stepDown("a higher proposal leads", nil)
			return
		}
		progress := r.reap()
		if !r.advanceCommit() {
			r.stepDown("lost its majority", nil)
			return
		}
		if r.cfg.EagerCommit && r.commit.Load() > ms.commitWritten {
			r.writeCommit()
		}
		if r.applyCommitted() {
			progress = true
		}
		if r.takeReadRequests() {
			progress = true
		}
		if r.confirmReads() {
			progress = true
		}
		if r.answerReadRequests() {
			progress = true
		}
		if r.snapAsked.Load() != 0 && r.serveSnapshots() {
			progress = true
		}
		// Proposers just answered have not queued their next command yet:
		// let them run once before appending, or entries carry one or
		// two commands each and the per-entry cost dominates.
		if ms.answered > 0 && len(r.queue) < ms.answered {
			runtime.Gosched()
		}
		ms.answered = 0
		r.releaseSpace()
		if ms.needDrop {
			if r.appendDrop() {
				progress = true
			}
		} else if r.appendBatch() {
			progress = true
		}
		if ms.big >= 0 && r.appendChunk() {
			progress = true
		}
		r.takeLateGrants()
		r.publishPeers()
		if progress {
			w.Reset()
			continue
		}
		if ms.wring.Next()-1 == r.commit.Load() && ms.commitWritten < r.commit.Load() {
			r.writeCommit()
		}
		// Followers' readers cannot kick a parked or sleeping leader: a
		// sleep costs their read up to a millisecond of timer slack.
		// While they are about, the loop yields between polls instead.
		if time.Since(ms.readersAt) < readersAbout {
			if w.Mode != poll.Spin {
				w.Mode = poll.SpinYield
			}
		} else if w.Mode = r.cfg.Poll; w.Mode == poll.Sleep && ms.wring.Next()-1 == r.commit.Load() && ms.carry < 0 && ms.big < 0 && !ms.needDrop {
			r.park()
			continue
		}
		w.Wait()
	}
}

// readersAbout is how long after a follower's last read-index request the
// leader keeps polling for the next one, yielding rather than sleeping or
// parking.
const readersAbout = 20 * time.Millisecond

// maxPark bounds one park of an idle leader: the loop still looks at
// closing, pausing, deposition and late grants this often, as the sleep
// mode's longest back-off did.
const maxPark = time.Millisecond

// park waits, with nothing in flight, until a proposal arrives or maxPark
// passes. Sleeping on a timer instead would add up to a whole back-off step
// to the latency of the first proposal after a quiet spell; parking costs
// the proposer one wake-up. parked is set before the queue is checked and
// Propose queues before it reads parked, so one of the two always sees the
// other: no proposal waits out a park.
func (r *Replica) park() {
	r.parked.Store(true)
	defer r.parked.Store(false)
	if len(r.queue) > 0 {
		return
	}
	r.idle.Reset(maxPark)
	select {
	case <-r.kick:
	case <-r.idle.C:
	case <-r.stop:
	}
	r.idle.Stop()
}

// reap polls the replication CQ. A failed WRITE takes its follower out of
// the active set: it was revoked (another leader) or is gone.
func (r *Replica) reap() bool {
	ms := &r.ms
	got := false
	for {
		n, err := r.repCQ.Poll(ms.comps[:])
		if err != nil || n == 0 {
			return got
		}
		got = true
		for _, c := range ms.comps[:n] {
			kind, id, idx := splitWRID(c.WRID)
			p := r.peers[id]
			if p == nil || c.QPNum != p.rep.Num() {
				continue // or of a link since replaced
			}
			if kind == wrReadAns && idx == 1 {
				p.answering = false // both WRITEs are done, or flushed
			}
			if c.Status != verbs.StatusSuccess {
				if p.active {
					r.followerDown(p, c.Status.String())
				}
				if c.Status == verbs.StatusRemoteAccessError {
					// It revoked us: only a newer grant lets it back in.
					p.refused = p.granted
				}
				// Its QP is in error now; the background goroutine
				// reconnects it (or finds the peer dead).
				p.wantRecon.Store(true)
				continue
			}
			if kind == wrSnap {
				continue // a straggler of our own state transfer
			}
			if kind == wrEntry && p.active && idx > p.acked {
				p.acked = idx
				if p.down {
					p.down, p.retryWait = false, 0
					r.cfg.Logger.Info("follower back", "id", r.id, "follower", id, "acked", idx)
				}
			}
			if kind == wrConfirm && p.active && idx > p.confirmed {
				p.confirmed = idx
			}
		}
	}
}

// advanceCommit sets the commit index to the highest index held by a
// majority; it reports false when fewer than a majority are active.
func (r *Replica) advanceCommit() bool {
	var held [MaxReplicas + 1]uint64
	held[0] = r.ms.wring.Next() - 1
	n := 1
	for _, p := range r.others {
		if p.active {
			held[n] = p.acked
			n++
		}
	}
	if n < r.majority {
		return false
	}
	c := kthLargest(held[:n], r.majority)
	if c > r.commit.Load() {
		r.commit.Store(c)
		logring.PutU64(r.mem, logring.OffCommitIndex, c)
	}
	return true
}

// kthLargest sorts v in place, descending, and returns its k-th element.
func kthLargest(v []uint64, k int) uint64 {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] > v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[k-1]
}

// applyCommitted applies committed entries in order and answers the
// proposers of the commands this leader appended.
func (r *Replica) applyCommitted() bool {
	ms := &r.ms
	did := false
	for ms.cur.Next <= r.commit.Load() {
		c := ms.cur
		e, ok := c.Poll(r.ring)
		if !ok {
			r.broken("a committed entry is intact in the leader's log", "index", c.Next)
		}
		m := &ms.meta[e.Index%uint64(len(ms.meta))]
		ours := m.index == e.Index
		if logring.IsSpecial(e.Payload) {
			res, whole := r.applySpecial(e.Index, e.Payload)
			if ours && m.n > 0 {
				r.answerLarge(res, whole)
			}
		} else {
			cs := logring.NewCommands(e.Payload)
			for cmd, ok := cs.Next(); ok; cmd, ok = cs.Next() {
				res := r.sm.Apply(e.Index, cmd)
				if ours && ms.wqLen > 0 {
					r.finish(ms.wq[ms.wqHead], res, nil)
					ms.answered++
					ms.wqHead = (ms.wqHead + 1) % len(ms.wq)
					ms.wqLen--
				}
			}
		}
		if ours {
			*m = entryMeta{}
		}
		ms.hist[e.Index%uint64(len(ms.hist))] = ms.cur
		ms.cur = c
		r.setApplied(e.Index)
		did = true
	}
	return did
}

// releaseSpace lets the ring reuse entries every active follower applied.
// When that leaves no room for a full batch, it releases what a majority
// applied instead and leaves the followers behind that point out: they need
// a state transfer, and the leader never stalls on them.
func (r *Replica) releaseSpace() {
	ms := &r.ms
	low := r.applied.Load()
	var all [MaxReplicas + 1]uint64
	all[0] = low
	n := 1
	for _, p := range r.others {
		a := p.applied.Load()
		if p.active {
			low = min(low, a)
		}
		all[n] = a
		n++
	}
	ms.wring.Release(low)
	if _, _, ok := ms.wring.Reserve(r.cfg.MaxBatch); ok || len(r.queue) == 0 && ms.carry < 0 && ms.big < 0 && !ms.needDrop {
		return
	}
	maj := kthLargest(all[:n], r.majority)
	if len(r.queue) == 0 && ms.carry < 0 {
		maj = r.spareLive(maj)
	}
	if maj <= low {
		return
	}
	for _, p := range r.others {
		if p.active && p.applied.Load() < maj {
			p.leaveOut(p.applied.Load(), time.Now())
			r.cfg.Logger.Warn("follower fell behind the ring's reuse point; left out until it catches up",
				"id", r.id, "follower", p.id, "applied", p.applied.Load(), "released", maj)
		}
	}
	ms.wring.Release(maj)
}

// spareLive lowers the reuse point maj to what every live active follower
// applied, when only a large command's chunks (or a new leader's drop) wait
// for room: a follower that is merely slower than the leader streaming
// chunks flat out is waited for, not left out to a state transfer that
// would carry the partial command and, the stream going on, be outrun
// again. A suspected follower is left out as ever; so are slow ones as soon
// as small proposals wait, which the leader never holds up.
func (r *Replica) spareLive(maj uint64) uint64 {
	for _, p := range r.others {
		if p.active && p.alive.Load() {
			maj = min(maj, p.applied.Load())
		}
	}
	return maj
}

// appendBatch appends queued proposals as one entry, if the pipeline and the
// ring have room, and posts it to every active follower.
func (r *Replica) appendBatch() bool {
	ms := &r.ms
	next := ms.wring.Next()
	if next-1-r.applied.Load() >= uint64(r.cfg.Outstanding) {
		return false
	}
	if _, _, ok := ms.wring.Reserve(r.cfg.MaxBatch); !ok {
		return false
	}
	size, count := 0, 0
	start := (ms.wqHead + ms.wqLen) % len(ms.wq)
	for {
		idx := ms.carry
		if idx >= 0 {
			ms.carry = -1
		} else {
			var ok bool
			if idx, ok = r.take(); !ok {
				break
			}
		}
		n := logring.CommandSize(len(r.waiters[idx].cmd))
		if size+n > r.cfg.MaxBatch {
			if n > r.cfg.MaxBatch && ms.big < 0 {
				// A large command: appendChunk takes it from here.
				ms.big, ms.bigOff = idx, 0
				continue
			}
			ms.carry = idx
			break
		}
		ms.wq[(start+count)%len(ms.wq)] = idx
		size += n
		count++
	}
	if count == 0 {
		return false
	}
	off, wrapAt, _ := ms.wring.Reserve(size)
	r.roleMu.Lock()
	if r.deposed.Load() {
		r.roleMu.Unlock()
		// Not ours to append any more: hand the commands back.
		for i := 0; i < count; i++ {
			r.finish(ms.wq[(start+i)%len(ms.wq)], nil, r.notLeader())
		}
		return true
	}
	body := r.ring[off+logring.EntryHeaderSize : off+logring.EntryHeaderSize : off+logring.EntryHeaderSize+size]
	for i := 0; i < count; i++ {
		body = logring.AppendCommand(body, r.waiters[ms.wq[(start+i)%len(ms.wq)]].cmd)
	}
	esize := r.sealEntry(next, off, wrapAt, size)
	r.roleMu.Unlock()
	ms.wqLen += count
	r.stats.commands.Add(uint64(count))
	r.sendEntry(next, off, wrapAt, size, esize, count)
	return true
}

// post writes length bytes of our log at off to the same offset of p's log;
// a post that fails synchronously, or that would follow requests a reset of
// p's replication QP dropped (see peer.repMu), takes p out of the active
// set. It is peer.postRep without the closure, for the fast path.
func (r *Replica) post(p *peer, kind int, idx uint64, off, length int, flags verbs.SendFlags) {
	p.repMu.Lock()
	err := errRepReset
	if p.repResets == p.takenAt {
		err = p.rep.PostWrite(makeWRID(kind, p.id, idx), r.logMR, off, length, p.log.Add(uint64(off)), flags)
	}
	p.repMu.Unlock()
	if err != nil && p.active {
		r.followerDown(p, err.Error())
	}
}

// leaveOut takes p out of the active set as lagging: its next entry after
// applied is no longer kept. takeLateGrants tries to take it back once its
// applied index has moved (see catchup.go).
func (p *peer) leaveOut(applied uint64, now time.Time) {
	p.active, p.lagging = false, true
	p.lagTried, p.lagTriedAt = applied, now
}

// followerDown takes p out of the active set. Being down is a state, said
// once: a follower that cannot take our WRITEs (unreachable, its send queue
// full of requests that will never complete) is not retried every turn and
// logged every time, but retried by takeLateGrants with back-off, and
// logged again only once it has acknowledged an entry in between.
func (r *Replica) followerDown(p *peer, why string) {
	p.active = false
	if !p.down {
		p.down = true
		r.cfg.Logger.Warn("follower down", "id", r.id, "follower", p.id, "why", why)
	}
}

// writeCommit writes the commit index into every active follower's header.
func (r *Replica) writeCommit() {
	ms := &r.ms
	ms.commitWritten = r.commit.Load()
	for _, p := range r.others {
		if p.active {
			r.post(p, wrCommit, ms.commitWritten, logring.OffCommitIndex, 8, verbs.Signaled)
		}
	}
}

// publishPeers copies the leader's per-follower bookkeeping into the atomics
// Stats reads. It stores only what changed, so an idle or steady leader
// writes nothing and followers' cache lines stay put.
func (r *Replica) publishPeers() {
	var mask, act uint64
	for _, p := range r.others {
		if p.lagging {
			mask |= 1 << p.id
		}
		if p.active && p.acked > 0 {
			// Active, and a WRITE since it was taken in completed:
			// what tells a follower catching up that it is done.
			act |= 1 << p.id
		}
		if p.pubActive.Load() != p.active {
			p.pubActive.Store(p.active)
		}
		if p.pubLagging.Load() != p.lagging {
			p.pubLagging.Store(p.lagging)
		}
		if p.pubAcked.Load() != p.acked {
			p.pubAcked.Store(p.acked)
		}
	}
	if logring.LoadU64(r.ctl, ctlLagging) != mask {
		logring.PutU64(r.ctl, ctlLagging, mask)
	}
	if logring.LoadU64(r.ctl, ctlActive) != act {
		logring.PutU64(r.ctl, ctlActive, act)
	}
}

// stepDown leaves leadership: proposals in flight and queued fail, the
// claim is withdrawn and the main loop goes back to following.
func (r *Replica) stepDown(why string, err error) {
	ms := &r.ms
	if err == nil {
		err = r.notLeader()
	}
	r.roleMu.Lock()
	r.role.Store(int32(Follower))
	logring.PutU64(r.ctl, ctlClaim, 0)
	r.deposed.Store(false)
	r.roleMu.Unlock()
	for ; ms.wqLen > 0; ms.wqLen-- {
		r.finish(ms.wq[ms.wqHead], nil, err)
		ms.wqHead = (ms.wqHead + 1) % len(ms.wq)
	}
	if ms.carry >= 0 {
		r.finish(ms.carry, nil, err)
		ms.carry = -1
	}
	if ms.big >= 0 {
		r.finish(ms.big, nil, err)
		ms.big = -1
	}
	ms.needDrop = false
	clear(ms.meta)
	for _, p := range r.others {
		p.active, p.lagging = false, false
	}
	r.publishPeers()
	r.failQueued(err)
	r.wakeReaders()
	if why != "closed" {
		r.cfg.Logger.Info("stepped down", "id", r.id, "why", why, "commit", r.commit.Load())
	}
}
