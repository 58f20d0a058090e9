package consensus

import (
	"runtime"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// runBackground is the background plane's goroutine: every HeartbeatPeriod
// it bumps this replica's heartbeat and READs every peer's status words
// (heartbeat, leader claim, applied index); it suspects a peer whose
// heartbeat stood still for SuspectTimeout, works out who leads (the live
// claimant with the highest proposal), asks the main loop to campaign when
// nobody live leads and this replica is the lowest id it believes alive,
// sends this replica's permission requests and serves its peers'.
func (r *Replica) runBackground() {
	defer r.wg.Done()
	w := poll.Waiter{Mode: r.cfg.Poll}
	// A dedicated thread sleeps between iterations rather than polling:
	// spinning at a real-time priority would starve this replica's own
	// main loop, and the heartbeat period bounds how late it looks.
	dedicated := r.cfg.DetectorPriority > 0
	if dedicated {
		if err := lockRealtime(r.cfg.DetectorPriority); err != nil {
			r.cfg.Logger.Warn("background plane runs at ordinary priority", "id", r.id, "err", err)
		}
	}
	// With a P to spare the thread keeps its P while it sleeps, so that it
	// runs the moment it wakes (see poll.NapHoldingP): woken from an
	// ordinary nanosleep it would wait for a P, that is for an ordinary
	// thread to run the Go scheduler, which on a loaded machine took ms.
	// Holding the P starves what sits on it, though: goroutines and timers
	// that landed there while the runtime had taken it from us (it
	// preempts a goroutine that never reschedules every 10 ms) would wait
	// for the next such preemption. So once a millisecond the thread goes
	// through the scheduler instead of napping.
	nap := poll.Nap
	holdP := dedicated && runtime.GOMAXPROCS(0) >= 2
	if holdP {
		nap = poll.NapHoldingP
	}
	scheduled := time.Now()
	busy := 0          // iterations in a row that found work
	var sentReq uint64 // our request word as last sent
	next := time.Now()
	r.lastTick = next
	for !r.closed.Load() {
		if r.paused.Load() {
			// A hung process: no heartbeat, no grants, no reads.
			r.idlePaused()
			next = time.Now()
			r.lastTick = next
			for _, p := range r.others {
				p.still = 0 // do not suspect everyone on resume
				// Claims read before the pause are stale: judge no
				// election on them (see judge).
				p.fresh, p.skipRead = false, p.reading
			}
			continue
		}
		did := false
		if now := time.Now(); !now.Before(next) {
			next = now.Add(r.cfg.HeartbeatPeriod)
			r.tick(now)
			did = true
		}
		if req := logring.LoadU64(r.ctl, ctlOwnRequest); req != sentReq {
			sentReq = req
			for _, p := range r.others {
				if !p.dead.Load() {
					r.postControl(p, ctlOwnRequest, ctlRequestOff(r.id))
				}
			}
		}
		if r.pollBackground(time.Now()) {
			did = true
		}
		r.adoptLinksBg()
		if r.reconnect() {
			did = true
		}
		r.scanSnapRequests()
		if r.flushOutbox() {
			did = true
		}
		if r.serveGrants() {
			did = true
		}
		switch {
		case dedicated:
			// Work may bring more (a grant, then its completion): look
			// again at once, but never loop without sleeping for long.
			if did && busy < 8 {
				busy++
				continue
			}
			busy = 0
			if now := time.Now(); holdP && now.Sub(scheduled) > time.Millisecond {
				scheduled = now
				runtime.Gosched()
			} else {
				nap(min(max(next.Sub(now), time.Microsecond), r.cfg.HeartbeatPeriod))
			}
		case did:
			w.Reset()
		case w.Mode == poll.Sleep:
			// Nothing to do until the next tick but grant requests, which
			// a sleeping profile answers within its back-off anyway:
			// sleep to the tick rather than waking every few tens of µs,
			// which on a 2-core machine steals the cores the leader and
			// its clients need.
			time.Sleep(min(max(time.Until(next), 20*time.Microsecond), time.Millisecond))
		default:
			w.Wait()
		}
	}
}

// tick bumps our heartbeat, reads the peers' status words and updates the
// detector's verdicts.
//
// Suspicion is measured in this replica's own progress, not in wall time:
// each tick adds the time since the previous one to every peer's still
// time, but never more than a quarter of SuspectTimeout, and a status READ
// that finds the heartbeat moved resets it. A replica that was not running
// (descheduled, its VM's vCPU stolen, the whole machine stalled) has watched
// nothing meanwhile; counting that gap in full made every replica suspect
// every other after each stall of a few ms on a shared 2-core machine, and
// elections followed. Capped, suspicion takes at least four ticks that saw
// the heartbeat stand still. Entries arriving in our log count as a
// heartbeat of the replica we let write it. The verdict is taken after the READs this tick
// posted have been looked at, so a stall is never judged on pre-stall data.
func (r *Replica) tick(now time.Time) {
	gap := now.Sub(r.lastTick)
	step := min(gap, r.cfg.SuspectTimeout/4)
	r.lastTick = now
	for _, p := range r.others {
		// A status READ still on its way is no evidence yet: on a slow
		// fabric (tcp on a loaded machine) its round trip can outlast a
		// µs suspect timeout while the peer runs fine. Only one
		// unanswered for several timeouts counts (a stopped process's
		// soft NIC answers nothing until the retry timeout).
		if !p.reading || now.Sub(p.readAt) > 4*r.cfg.SuspectTimeout {
			p.still += step
		}
	}
	// New entries in our log prove the replica that writes it alive even
	// when its heartbeat stalls: on a machine with fewer cores than
	// threads a leader's detector thread can be held up for a
	// millisecond while its replication thread runs, and a busy leader
	// should not be deposed for it. An idle or hung leader writes nothing.
	if s := r.seen.Load(); s != r.lastSeen {
		r.lastSeen = s
		if g := r.peers[r.grantee.Load()]; g != nil {
			g.still = 0
		}
	}
	logring.PutU64(r.ctl, ctlHeartbeat, logring.LoadU64(r.ctl, ctlHeartbeat)+1)
	r.bgPost.Lock()
	for _, p := range r.others {
		if p.dead.Load() || p.reading {
			continue
		}
		err := p.bg.PostRead(makeWRID(wrStatus, p.id, 0), r.bgBuf, p.id*ctlSlot, ctlStatusSize, p.ctl, verbs.Signaled)
		if err == nil {
			p.reading, p.readAt = true, now
		} else {
			r.markDead(p, err.Error())
		}
	}
	r.bgPost.Unlock()
	// On shm the READs completed as they were posted.
	r.pollBackground(now)
	for _, p := range r.others {
		if !p.dead.Load() && p.alive.Load() && p.still > r.cfg.SuspectTimeout {
			p.alive.Store(false)
			r.cfg.Logger.Info("peer suspected", "id", r.id, "peer", p.id, "still_us", p.still.Microseconds())
		}
	}
	r.judge()
	r.noticeStalled(gap)
}

// noticeStalled, while we lead, flags for the main goroutine a follower
// whose applied index has not moved for stallAfter although we committed
// more: it takes our WRITEs yet does not replay them (say, an entry slot it
// waits on was overwritten while it was out, and nothing rewrites it). The
// main goroutine takes it back from the ring like a late grant, which
// rewrites its whole log (see takeLateGrants). The time is counted in our
// own progress, as suspicion is (see tick), with gap, the time since the
// previous tick, counted up to an eighth of stallAfter: a leader that was
// itself stopped (SIGSTOP, a stalled VM) and continues has watched nothing
// meanwhile, and counting the whole gap would have it rewrite every
// follower's log at once.
func (r *Replica) noticeStalled(gap time.Duration) {
	if Role(r.role.Load()) != Leader {
		return
	}
	commit := r.commit.Load()
	limit := r.stallAfter()
	step := min(gap, limit/8)
	for _, p := range r.others {
		if !p.alive.Load() || p.applied.Load() >= commit {
			p.appliedStill = 0
			continue
		}
		if p.appliedStill += step; p.appliedStill > limit {
			p.stalled.Store(true)
			p.appliedStill = 0
		}
	}
}

// stallAfter is how long a live follower's applied index may stand still
// behind our commit index before noticeStalled flags it: long enough for a
// large batch, or a snapshot it produces for a peer, to be applied.
func (r *Replica) stallAfter() time.Duration {
	return max(20*r.cfg.SuspectTimeout, 2*time.Second)
}

// pollBackground takes the background plane's completions; it reports
// whether there were any.
func (r *Replica) pollBackground(now time.Time) bool {
	n, _ := r.bgCQ.Poll(r.bgComps[:])
	for _, c := range r.bgComps[:n] {
		r.bgCompletion(c, now)
	}
	return n > 0
}

// markDead records that p's background plane failed and asks its linker
// for a new link (link.go); until then p counts as neither alive nor
// reachable.
func (r *Replica) markDead(p *peer, why string) {
	if !p.dead.Swap(true) {
		r.cfg.Logger.Info("peer unreachable; relinking", "id", r.id, "peer", p.id, "why", why)
		p.relink(0)
	}
	p.alive.Store(false)
}

func (r *Replica) bgCompletion(c verbs.Completion, now time.Time) {
	kind, id, _ := splitWRID(c.WRID)
	p := r.peers[id]
	if p == nil || c.QPNum != p.bg.Num() {
		return // or of a link since replaced
	}
	if kind == wrStatus {
		p.reading = false
	}
	if c.Status != verbs.StatusSuccess {
		r.markDead(p, c.Status.String())
		return
	}
	if kind != wrStatus {
		return
	}
	if p.skipRead {
		p.skipRead = false
	} else {
		p.fresh = true
	}
	base := p.id * ctlSlot
	buf := r.bgBuf.Bytes()
	if hb := logring.LoadU64(buf, base+ctlHeartbeat); hb != p.lastBeat {
		p.lastBeat, p.still = hb, 0
		if !p.alive.Swap(true) {
			r.cfg.Logger.Info("peer alive", "id", r.id, "peer", p.id)
		}
	}
	p.claim.Store(logring.LoadU64(buf, base+ctlClaim))
	if a := logring.LoadU64(buf, base+ctlApplied); a != p.applied.Load() {
		p.applied.Store(a)
		p.appliedStill = 0
	}
	p.lagMask.Store(logring.LoadU64(buf, base+ctlLagging))
	p.behind.Store(logring.LoadU64(buf, base+ctlBehind) != 0)
	p.activeMask.Store(logring.LoadU64(buf, base+ctlActive))
}

// liveLeader returns the live replica claiming leadership with the highest
// proposal, 0 if none. Our own claim counts while we lead and are not
// deposed.
func (r *Replica) liveLeader() (int, uint64) {
	best, claim := 0, uint64(0)
	if Role(r.role.Load()) == Leader && !r.deposed.Load() {
		best, claim = r.id, r.proposal.Load()
	}
	for _, p := range r.others {
		if c := p.claim.Load(); c > claim && p.alive.Load() {
			best, claim = p.id, c
		}
	}
	return best, claim
}

// judge updates who we believe leads and applies the election rule: run
// only when no live replica leads and we are the lowest id believed alive.
// A live leader is never pre-empted, and a leader that sees a higher live
// claim steps down.
func (r *Replica) judge() {
	lead, _ := r.liveLeader()
	role := Role(r.role.Load())
	r.judgeBehind(lead)
	if lead != 0 {
		r.leader.Store(int32(lead))
		if role == Leader && lead != r.id {
			r.deposed.Store(true)
		}
		r.elect.Store(false)
		return
	}
	if role != Follower {
		return
	}
	// The lowest live id runs, leaving out replicas that are catching
	// up (their logs miss committed entries: they could not prepare),
	// unless every live replica is.
	lowest, lowestAny, anyAlive := MaxReplicas+1, r.id, false
	if !r.behind.Load() {
		lowest = r.id
	}
	for _, p := range r.others {
		if !p.dead.Load() && !p.fresh {
			// A replica that just resumed (or started) knows no
			// current claims yet: running on its stale view would
			// fence a live leader out of its log for nothing.
			r.elect.Store(false)
			return
		}
		if p.alive.Load() {
			anyAlive = true
			lowestAny = min(lowestAny, p.id)
			if !p.behind.Load() {
				lowest = min(lowest, p.id)
			}
		}
	}
	if lowest > MaxReplicas && anyAlive {
		lowest = lowestAny
	}
	r.elect.Store(lowest == r.id)
}

// judgeBehind keeps our behind flag: set while the live leader lists us as
// lagging, cleared once it counts us active again (it took us back).
func (r *Replica) judgeBehind(lead int) {
	if lead == 0 || lead == r.id {
		return
	}
	lp := r.peers[lead]
	if !lp.fresh {
		return
	}
	lagging := lp.lagMask.Load()&(1<<r.id) != 0
	active := lp.activeMask.Load()&(1<<r.id) != 0
	switch {
	case lagging && !r.behind.Load():
		r.setBehind(true, "the leader left us out: catching up")
	case !lagging && active && r.behind.Load():
		r.setBehind(false, "caught up")
	}
}

// setBehind sets our behind flag and publishes it in our status words.
func (r *Replica) setBehind(v bool, why string) {
	if r.behind.Swap(v) == v {
		return
	}
	w := uint64(0)
	if v {
		w = 1
	}
	logring.PutU64(r.ctl, ctlBehind, w)
	r.cfg.Logger.Info(why, "id", r.id, "applied", r.applied.Load())
}

// serveGrants answers permission requests. A request from candidate c is
// granted when no live replica other than c leads and we are a follower: we
// revoke write access from everyone else on our replication QPs (the fence:
// once SetAccess returns no WRITE of the old leader lands), give it to c,
// and write a grant word for the request into c's grant slot. A request we
// cannot grant yet stays pending and is looked at again.
//
// A request already granted is granted again, with a new grant word, to the
// live leader when the candidate we fenced it out for has withdrawn its
// request unused: otherwise a leader that keeps its majority would never
// write our log again.
func (r *Replica) serveGrants() bool {
	did := false
	for _, c := range r.others {
		w := logring.LoadU64(r.ctl, ctlRequestOff(c.id))
		if w != c.reqWord {
			// When it last asked: a candidate yields only to a lower
			// id's request of the current campaign (see
			// gatherPermissions).
			c.reqWord = w
			c.reqAt.Store(time.Now().UnixNano())
		}
		req := w &^ reqWithdrawn
		if w&reqWithdrawn != 0 || req == 0 || c.dead.Load() {
			continue
		}
		lead, _ := r.liveLeader()
		if lead != 0 && lead != c.id {
			continue
		}
		if req < c.lastReq || req == c.lastReq && !(lead == c.id && (r.granteeWithdrew() || r.grantIgnored(c))) {
			continue
		}
		if c.reconSeq != 0 {
			continue // grant once reconnected
		}
		if c.repOf().State() != verbs.StateRTS {
			c.wantRecon.Store(true)
			continue
		}
		r.roleMu.Lock()
		if Role(r.role.Load()) != Follower {
			r.roleMu.Unlock()
			continue
		}
		ok := true
		for _, q := range r.others {
			if q == c {
				continue
			}
			for _, qr := range []verbs.QP{q.repOf(), q.pendingRep()} {
				if qr == nil || qr.Access()&verbs.AccessRemoteWrite == 0 {
					continue
				}
				if err := qr.SetAccess(verbs.AccessRemoteRead); err != nil {
					// The fallback: Reset fences as well (it drains
					// in-flight WRITEs); reconnect read-only later.
					r.cfg.Logger.Warn("revoke failed; resetting the QP", "id", r.id, "old", q.id, "err", err)
					if err := q.resetRep(qr); err != nil {
						ok = false
					}
					q.wantRecon.Store(true)
				}
			}
		}
		if ok {
			if err := c.repOf().SetAccess(verbs.AccessRemoteRead | verbs.AccessRemoteWrite); err != nil {
				r.cfg.Logger.Warn("grant failed", "id", r.id, "candidate", c.id, "err", err)
				ok = false
			}
		}
		if ok {
			r.grantee.Store(int32(c.id))
		}
		r.roleMu.Unlock()
		if !ok {
			continue
		}
		c.lastReq = req
		r.grantGen++
		logring.PutU64(r.ctl, ctlGivenOff(c.id), grantWord(req, r.grantGen))
		r.postControl(c, ctlGivenOff(c.id), ctlGrantOff(r.id))
		r.cfg.Logger.Info("granted permission", "id", r.id, "candidate", c.id, "request", req)
		did = true
	}
	return did
}

// grantIgnored reports whether the live leader c, which holds our grant
// (or which we fenced out for a campaign of our own that is over), has not
// been writing our log for grantRetry: its status words list us neither
// active nor lagging. It refused our log after a WRITE failed (a refusal
// of a link not yet given its access, say, or our own abandoned fence),
// and only a newer grant word takes us back (see takeLateGrants): granting
// its request again gives it one. No other candidate relies on our fence:
// the grant is c's already, or the fence was for our own campaign.
func (r *Replica) grantIgnored(c *peer) bool {
	g := r.grantee.Load()
	if g != int32(c.id) && !(g == int32(r.id) && Role(r.role.Load()) == Follower) || !c.fresh {
		r.ignoredSince = time.Time{}
		return false
	}
	if bit := uint64(1) << r.id; c.activeMask.Load()&bit != 0 || c.lagMask.Load()&bit != 0 {
		r.ignoredSince = time.Time{}
		return false
	}
	now := time.Now()
	if r.ignoredSince.IsZero() {
		r.ignoredSince = now
		return false
	}
	if now.Sub(r.ignoredSince) < grantRetry {
		return false
	}
	r.ignoredSince = now
	r.cfg.Logger.Info("the leader does not write our log: granting it again", "id", r.id, "leader", c.id)
	return true
}

// grantRetry is how long the live leader may leave our log unwritten, though
// we grant it, before we grant it again: longer than its retry back-off for
// a follower that is down (a second), so that a link that only failed is
// retried by the leader itself.
const grantRetry = 1500 * time.Millisecond

// granteeWithdrew reports whether the replica we last granted is a peer that
// withdrew the request we granted it.
func (r *Replica) granteeWithdrew() bool {
	g := r.peers[r.grantee.Load()]
	return g != nil && logring.LoadU64(r.ctl, ctlRequestOff(g.id)) == g.lastReq|reqWithdrawn
}

// postControl writes the 8-byte word at local control offset from to the
// peer's control MR at offset to.
func (r *Replica) postControl(p *peer, from, to int) {
	r.bgPost.Lock()
	err := p.bg.PostWrite(makeWRID(wrControl, p.id, 0), r.ctlMR, from, 8, p.ctl.Add(uint64(to)), verbs.Signaled)
	r.bgPost.Unlock()
	if err != nil {
		r.markDead(p, err.Error())
	}
}

// repAccess is the access a peer gets on our replication QP: read always,
// write only while it is the replica we granted. Callers hold roleMu, so a
// reconnection cannot hand write access back to a replica a candidate has
// just fenced out.
func (r *Replica) repAccess(p *peer) verbs.Access {
	if int32(p.id) == r.grantee.Load() {
		return verbs.AccessRemoteRead | verbs.AccessRemoteWrite
	}
	return verbs.AccessRemoteRead
}

// reconnect runs the endpoint exchange that brings an errored replication
// QP back (see ctlEpInOff). When both ends ask at once, the lower id's
// request wins and the higher id answers it.
func (r *Replica) reconnect() bool {
	did := false
	for _, p := range r.others {
		if p.dead.Load() {
			continue
		}
		in := ctlEpInOff(p.id)
		word := logring.LoadU64(r.ctl, in)
		seq, reply := word>>1, word&1 == 1
		switch {
		case reply && p.reconSeq != 0 && seq == p.reconSeq:
			if ep, ok := r.readEndpoint(in); ok {
				r.roleMu.Lock()
				err := p.repOf().Connect(ep, r.repAccess(p))
				r.roleMu.Unlock()
				if err != nil {
					r.cfg.Logger.Warn("reconnect", "id", r.id, "peer", p.id, "err", err)
				} else {
					r.cfg.Logger.Info("replication QP reconnected", "id", r.id, "peer", p.id)
				}
				p.reconSeq = 0
				p.wantRecon.Store(false)
				did = true
			}
		case !reply && seq > p.reconSeen && (p.reconSeq == 0 || p.id < r.id):
			ep, ok := r.readEndpoint(in)
			if !ok {
				continue
			}
			p.reconSeen, p.reconSeq = seq, 0
			p.wantRecon.Store(false)
			r.roleMu.Lock()
			rep := p.repOf()
			err := p.resetRep(rep)
			if err == nil {
				err = rep.Connect(ep, r.repAccess(p))
			}
			r.roleMu.Unlock()
			if err != nil {
				r.cfg.Logger.Warn("reconnect", "id", r.id, "peer", p.id, "err", err)
			}
			r.sendEndpoint(p, seq<<1|1)
			did = true
		case p.reconSeq != 0 && time.Since(p.reconSent) > reconRetry:
			// Unanswered: the request or its answer was lost (the control
			// link relinked in between, say), and nothing would ask again,
			// while serveGrants waits for this reconnection. Ask anew: a
			// late answer to the old request carries its old sequence and
			// is ignored.
			r.cfg.Logger.Info("replication QP reconnection unanswered; asking again", "id", r.id, "peer", p.id)
			p.reconSeq = 0
			p.wantRecon.Store(true)
			did = true
		case p.reconSeq == 0 && (p.wantRecon.Load() || p.repOf().State() == verbs.StateError):
			p.wantRecon.Store(false)
			r.roleMu.Lock()
			err := p.resetRep(p.repOf())
			r.roleMu.Unlock()
			if err != nil {
				continue
			}
			r.reconCtr++
			p.reconSeq = r.reconCtr + uint64(time.Now().UnixNano())>>20 // above any earlier run's
			p.reconSent = time.Now()
			r.sendEndpoint(p, p.reconSeq<<1)
			did = true
		}
	}
	return did
}

// reconRetry is how long a reconnection request may go unanswered before
// it is sent again: an answer takes a control-plane round trip, well under
// it even on a loaded machine.
const reconRetry = time.Second

func (r *Replica) readEndpoint(off int) ([]byte, bool) {
	n := int(logring.LoadU64(r.ctl, off+8))
	if n <= 0 || n > ctlEpSlot-16 {
		return nil, false
	}
	return r.ctl[off+16 : off+16+n], true
}

// sendEndpoint writes our replication QP's current endpoint for p into p's
// EpIn slot, the sequence word last (RC ordering).
func (r *Replica) sendEndpoint(p *peer, word uint64) {
	out := ctlEpOutOff(p.id)
	ep := p.repOf().Endpoint()
	if len(ep) > ctlEpSlot-16 {
		r.cfg.Logger.Error("endpoint too long for its control slot", "id", r.id, "len", len(ep))
		return
	}
	logring.PutU64(r.ctl, out+8, uint64(len(ep)))
	copy(r.ctl[out+16:], ep)
	logring.PutU64(r.ctl, out, word)
	dst := ctlEpInOff(r.id)
	r.bgPost.Lock()
	err := p.bg.PostWrite(makeWRID(wrControl, p.id, 0), r.ctlMR, out+8, 8+8+len(ep), p.ctl.Add(uint64(dst+8)), 0)
	r.bgPost.Unlock()
	if err != nil {
		r.markDead(p, err.Error())
		return
	}
	r.postControl(p, out, dst)
}
