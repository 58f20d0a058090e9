package consensus

import (
	"errors"
	"fmt"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// campaign runs for leader: permission switch, then prepare. Proposals that
// arrive meanwhile wait in the queue and are appended once it has won; if it
// loses they fail with ErrNotLeader.
func (r *Replica) campaign() {
	start := time.Now()
	r.elect.Store(false)
	r.roleMu.Lock()
	r.role.Store(int32(Candidate)) // from now on we grant nobody
	r.roleMu.Unlock()
	granted, err := r.gatherPermissions()
	permDone := time.Now()
	if err == nil {
		err = r.prepare(granted)
	}
	if err != nil {
		r.roleMu.Lock()
		r.role.Store(int32(Follower))
		r.roleMu.Unlock()
		if errors.Is(err, errNoGrants) {
			// We used no grant: say so, so that our granters may give
			// the live leader they fenced out for us its access back.
			// (After the fence we may have read and written logs under
			// our proposal: then only a new election moves on.)
			logring.PutU64(r.ctl, ctlOwnRequest, r.request.Load()|reqWithdrawn)
		}
		r.failQueued(r.notLeader())
		r.cfg.Logger.Info("election lost", "id", r.id, "err", err)
		return
	}
	done := time.Now()
	r.stats.elections.Add(1)
	r.stats.lastFail.Store(int64(done.Sub(start)))
	r.leader.Store(int32(r.id))
	logring.PutU64(r.ctl, ctlClaim, r.proposal.Load())
	r.role.Store(int32(Leader))
	r.cfg.Logger.Info(fmt.Sprintf("became leader after %d µs: permissions %d µs, recovery %d µs",
		done.Sub(start).Microseconds(), permDone.Sub(start).Microseconds(), done.Sub(permDone).Microseconds()),
		"id", r.id, "proposal", r.proposal.Load(), "followers", len(granted), "commit", r.commit.Load())
}

// gatherPermissions publishes a new request number to every peer and waits
// for grants from a majority, ourselves included; later grants are taken by
// the leader loop. We grant ourselves only once the others' grants are in:
// then we revoke every peer's write access to our own log, the same fence a
// granter raises. Until then the replica we granted keeps writing our log,
// so a campaign that fails for want of grants (the leader is alive after
// all) leaves it undisturbed. Fencing after the others' grants is safe: our
// promise dates from the fence, and prepare copies our log after it.
func (r *Replica) gatherPermissions() ([]*peer, error) {
	req := r.request.Load() + 1
	logring.PutU64(r.ctl, ctlOwnRequest, req)
	r.request.Store(req) // the background goroutine sends it
	deadline := time.Now().Add(r.cfg.GrantTimeout)
	var granted []*peer
	yieldTo := 0
	ok := poll.Until(r.cfg.Poll, deadline, func() bool {
		if r.closed.Load() {
			return true
		}
		// Links rebuilt meanwhile (a healed partition) are taken now:
		// their linkers wait for it, and so would the grants.
		r.adoptLinksMain()
		// A live leader turned up (we were cut off from it): follow it.
		if lead, _ := r.liveLeader(); lead != 0 && lead != r.id {
			yieldTo = lead
			return true
		}
		// We run because every lower id looked dead. One that turns out
		// alive outranks us: yield before fencing anything, so that it
		// collects our grant instead of both of us waiting out the grant
		// timeout for each other's (a starved machine makes such split
		// views common, and they used to repeat round after round).
		for _, p := range r.others {
			if p.id < r.id && p.alive.Load() && !p.dead.Load() && !p.behind.Load() {
				yieldTo = p.id
				return true
			}
			// A lower id asks for our grant: it runs too, and it
			// outranks us. Two candidates waiting for each other's
			// grant (each suspecting the other on a starved machine)
			// would otherwise stall until both time out, round after
			// round.
			if w := logring.LoadU64(r.ctl, ctlRequestOff(p.id)); p.id < r.id && w&reqWithdrawn == 0 && !p.dead.Load() && !p.behind.Load() &&
				w > grantReq(logring.LoadU64(r.ctl, ctlGivenOff(p.id))) && time.Since(time.Unix(0, p.reqAt.Load())) < r.cfg.GrantTimeout {
				yieldTo = p.id
				return true
			}
		}
		granted = granted[:0]
		for _, p := range r.others {
			if w := logring.LoadU64(r.ctl, ctlGrantOff(p.id)); grantReq(w) == req && !p.dead.Load() {
				p.granted = w
				granted = append(granted, p)
			}
		}
		return 1+len(granted) >= r.majority
	})
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if yieldTo != 0 {
		return nil, fmt.Errorf("permission request %d: replica %d is alive and leads or outranks us: %w", req, yieldTo, errNoGrants)
	}
	if !ok {
		return nil, fmt.Errorf("permission request %d: %d grants of the %d needed in %v: %w", req, len(granted), r.majority-1, r.cfg.GrantTimeout, errNoGrants)
	}
	r.roleMu.Lock()
	defer r.roleMu.Unlock()
	r.grantee.Store(int32(r.id)) // reconnections now grant read access only
	for _, p := range r.others {
		for _, q := range []verbs.QP{p.rep, p.pendingRep()} {
			if q == nil || q.Access()&verbs.AccessRemoteWrite == 0 {
				continue
			}
			if err := q.SetAccess(verbs.AccessRemoteRead); err != nil {
				// Reset fences too; the QP is reconnected read-only.
				if err := p.resetRep(q); err != nil {
					return nil, fmt.Errorf("revoke replica %d's write access: %w", p.id, err)
				}
				p.wantRecon.Store(true)
			}
		}
	}
	return granted, nil
}

// errNoGrants: a campaign found no majority of grants (and fenced nothing).
var errNoGrants = errors.New("no majority granted")

// prepare is recovery with permission at a majority: it copies the granted
// followers' logs (header and ring) with READs, picks a proposal number above
// every promise seen, walks every copy from our apply cursor and adopts, at
// each index, the entry with the highest proposal, rewrites the adopted
// entries into our log with our proposal, invalidates the slot after the
// tail, and writes the whole log to the granted followers. The adopted tail
// is then on a majority with our proposal: committed.
func (r *Replica) prepare(granted []*peer) error {
	ms := &r.ms
	deadline := time.Now().Add(r.cfg.GrantTimeout)
	copies, okPeers, err := r.copyLogs(granted, deadline)

	if err != nil {
		return fmt.Errorf("read followers' logs: %w", err)
	}
	// What the granted followers have applied, as they last published it
	// (a stale value is only lower: we keep more than needed).
	applied := make([]uint64, len(granted))
	low := ms.cur.Next - 1
	for i, p := range granted {
		applied[i] = p.applied.Load()
		if okPeers[i] {
			low = min(low, applied[i])
		}
	}
	var maxPromise, maxCommit uint64
	for _, c := range copies {
		h := logring.ReadHeader(c)
		maxPromise, maxCommit = max(maxPromise, h.MinProposal), max(maxCommit, h.CommitIndex)
	}
	maxPromise = max(maxPromise, r.proposal.Load())
	prop := (maxPromise/16+1)*16 + uint64(r.id) // unique: ids are below 16

	// Adopt, index by index, the entry with the highest proposal.
	type adopted struct {
		payload []byte
	}
	var chosen []adopted
	curs := make([]logring.Cursor, len(copies))
	live := make([]bool, len(copies))
	for i := range curs {
		curs[i], live[i] = ms.cur, true
	}
	for {
		var best logring.Entry
		found := false
		for i, c := range copies {
			if !live[i] {
				continue
			}
			e, ok := curs[i].Poll(c[logring.HeaderSize:])
			if !ok {
				live[i] = false
				continue
			}
			if !found || e.Proposal > best.Proposal {
				best, found = e, true
			}
		}
		if !found {
			break
		}
		chosen = append(chosen, adopted{payload: best.Payload})
	}
	tail := ms.cur.Next - 1 + uint64(len(chosen))
	if maxCommit > tail {
		// Others applied what our log no longer reaches: step aside
		// for a replica that can lead, and catch up once one does.
		r.setBehind(true, "our log misses committed entries: catching up")
		return fmt.Errorf("committed index %d lies beyond the log reachable from our applied index %d: this replica needs a state transfer", maxCommit, ms.cur.Next-1)
	}

	// Keep the entries we applied and a granted follower may not have: a
	// ring reset at our own apply point would let the next entries
	// overwrite them under a follower that is still to replay them, and it
	// would stall there with nothing telling it or us.
	kept, err := r.keepApplied(low)
	if err != nil {
		return fmt.Errorf("reset ring: %w", err)
	}

	// Rewrite our log: adopted entries with our proposal, at the places
	// the ring's placement rule gives them.
	for k, a := range chosen {
		idx := ms.cur.Next + uint64(k)
		off, wrapAt, ok := ms.wring.Reserve(len(a.payload))
		for !ok && ms.wring.Released() < ms.cur.Next-1 {
			// The adopted tail comes first: give up the oldest kept
			// entry (its laggards are left out below).
			ms.wring.Release(ms.wring.Released() + 1)
			off, wrapAt, ok = ms.wring.Reserve(len(a.payload))
		}
		if !ok {
			return fmt.Errorf("recovered entry %d does not fit the ring", idx)
		}
		if wrapAt >= 0 {
			logring.EncodeWrap(r.ring[wrapAt:], idx)
		}
		logring.Encode(r.ring[off:], idx, prop, maxCommit, a.payload)
		if err := ms.wring.Appended(idx, off, len(a.payload)); err != nil {
			return fmt.Errorf("recovered entry %d: %w", idx, err)
		}
	}
	// Nothing past the tail may pass for the next entry.
	if t := ms.wring.Tail(); t+logring.EntryHeaderSize <= len(r.ring) {
		clear(r.ring[t : t+logring.EntryHeaderSize])
	}
	logring.PutU64(r.mem, logring.OffMinProposal, prop)
	logring.PutU64(r.mem, logring.OffCommitIndex, maxCommit)
	r.proposal.Store(prop)
	r.commit.Store(max(r.commit.Load(), maxCommit))
	ms.commitWritten = 0
	// Read-barrier rounds of an earlier term must not count in this one.
	ms.readPosted = r.readDone.Load()
	for _, p := range r.others {
		p.confirmed = ms.readPosted
	}

	// What the granted followers need of our log: the header, and the
	// ring from the oldest entry we keep for them (they replay from there
	// at the latest, at the offsets we hold it) through the tail and its
	// invalidated slot. Their ring elsewhere holds nothing they will read.
	end := ms.wring.Tail() + logring.EntryHeaderSize
	if end > len(r.ring) {
		end = len(r.ring)
	}
	span := end - kept.Off
	if span <= 0 {
		span += len(r.ring)
	}
	okPeers, err = r.awaitPeers(granted, true, deadline, func(_ int, p *peer) error {
		p.takeIn()
		p.takenIn.Add(1)
		if err := r.postRing(p, false, kept.Off, span, 0); err != nil {
			return err
		}
		return p.postRep(func(q verbs.QP) error {
			return q.PostWrite(makeWRID(wrRecover, p.id, recoverLast), r.logMR, 0, logring.SharedHeaderSize, p.log, verbs.Signaled)
		})
	})
	if err != nil {
		return fmt.Errorf("write recovered log: %w", err)
	}
	for i, p := range granted {
		p.active, p.acked, p.lagging = okPeers[i], tail, false
		if p.active && applied[i] < ms.wring.Released() {
			// Its next entry is no longer kept: as on the fast path,
			// it needs a state transfer and is left out.
			p.leaveOut(applied[i], time.Now())
			r.cfg.Logger.Warn("follower is behind the entries the new leader keeps; it needs a state transfer and is left out",
				"id", r.id, "follower", p.id, "applied", applied[i], "kept from", ms.wring.Released()+1)
		}
	}
	r.cfg.Logger.Debug("recovered", "id", r.id, "proposal", prop, "from", ms.cur.Next, "tail", tail, "commit", maxCommit)
	return nil
}

// keepApplied resets the ring accounting for a new term so that it retains
// our applied entries from low+1 on, as far back as they are still intact in
// our ring, then everything up to our apply point: followers that applied
// less than we did replay them from our log copy, and the fast path
// releases them as the followers' applied positions pass them (or leaves
// the followers behind, lagging, when the ring must make room). Should the
// entries not re-register, it keeps none, as a plain reset would.
func (r *Replica) keepApplied(low uint64) (logring.Cursor, error) {
	ms := &r.ms
	base := r.keepFrom(low + 1)
	sp := ms.spare
	if err := sp.Reset(base.Next, base.Off); err != nil {
		return ms.cur, err
	}
	for c := base; c.Next < ms.cur.Next; {
		e, ok := c.Poll(r.ring)
		if !ok {
			r.cfg.Logger.Error("re-registering applied entries: entry gone", "id", r.id, "index", c.Next)
			return ms.cur, ms.wring.Reset(ms.cur.Next, ms.cur.Off)
		}
		if err := sp.Appended(e.Index, e.Off, len(e.Payload)); err != nil {
			r.cfg.Logger.Error("re-registering applied entries", "id", r.id, "index", e.Index, "err", err)
			return ms.cur, ms.wring.Reset(ms.cur.Next, ms.cur.Off)
		}
	}
	ms.wring, ms.spare = sp, ms.wring
	return base, nil
}

// keepFrom returns the cursor of the oldest entry at or after index from
// (and at most our apply point) whose successors up to our apply point are
// all intact in our ring, as recorded when we applied them.
func (r *Replica) keepFrom(from uint64) logring.Cursor {
	ms := &r.ms
	n := uint64(len(ms.hist))
	if ms.cur.Next > n && from < ms.cur.Next-n {
		from = ms.cur.Next - n
	}
	for s := from; s < ms.cur.Next; s++ {
		start := ms.hist[s%n]
		if start.Next != s {
			continue
		}
		c := start
		for c.Next < ms.cur.Next {
			if _, ok := c.Poll(r.ring); !ok {
				break
			}
		}
		if c == ms.cur {
			return start
		}
		s = c.Next // entry c.Next was overwritten: try the one after it
	}
	return ms.cur
}

// retain makes the ring accounting keep the entries from k on, for a
// follower whose next entry is k, and reports whether it could: a late
// follower may be behind what the fast path has already released (given
// up for reuse) while its entries still sit intact in our ring, and it must
// not be taken in only to be overwritten under its replayer. The entries
// are re-registered in the spare ring first and the two are swapped only
// if all of them fit, so a failure leaves the live accounting untouched.
func (r *Replica) retain(k uint64) bool {
	ms := &r.ms
	if k > ms.wring.Released() {
		return true
	}
	base := r.keepFrom(k)
	if base.Next != k {
		return false
	}
	sp := ms.spare
	if sp.Reset(base.Next, base.Off) != nil {
		return false
	}
	for c := base; c.Next < ms.wring.Next(); {
		e, ok := c.Poll(r.ring)
		if !ok || sp.Appended(e.Index, e.Off, len(e.Payload)) != nil {
			return false
		}
	}
	ms.wring, ms.spare = sp, ms.wring
	return true
}

// recoverLast marks the last, signaled, request prepare posts to a peer in a
// round; the unsignaled ones before it complete only if they fail.
const recoverLast = 1

// awaitPeers runs one round of prepare's requests: post queues a peer's
// requests, the last signaled with recoverLast, and awaitPeers waits until
// every peer's round has ended: with that completion, or with the first
// error completion (the requests behind it are flushed). It reports which
// peers succeeded; with majority set it fails unless a majority, ourselves
// included, did.
func (r *Replica) awaitPeers(ps []*peer, majority bool, deadline time.Time, post func(i int, p *peer) error) ([]bool, error) {
	ok := make([]bool, len(ps))
	done := make([]bool, len(ps))
	pending := 0
	for i, p := range ps {
		if err := post(i, p); err == nil {
			pending++
		} else {
			done[i] = true
		}
	}
	var comps [16]verbs.Completion
	success := 0
	fin := poll.Until(r.cfg.Poll, deadline, func() bool {
		n, _ := r.repCQ.Poll(comps[:])
		for _, c := range comps[:n] {
			kind, id, seq := splitWRID(c.WRID)
			if kind != wrRecover {
				continue // a straggler of an earlier term
			}
			for i, p := range ps {
				if p.id != id || done[i] {
					continue
				}
				switch {
				case c.Status != verbs.StatusSuccess:
					done[i] = true
					pending--
				case seq == recoverLast:
					done[i], ok[i] = true, true
					pending--
					success++
				}
			}
		}
		return pending <= 0 || r.closed.Load()
	})
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if !fin {
		return nil, errors.New("completions did not arrive in time")
	}
	if majority && 1+success < r.majority {
		return nil, fmt.Errorf("%d of %d needed succeeded", 1+success, r.majority)
	}
	return ok, nil
}

// postRing posts unsignaled READs (read true: into p's copy in scratch,
// copy k, see copyLogs) or WRITEs (read false: from our log) of the n ring
// bytes that start at ring offset off, wrapping at the ring's end.
func (r *Replica) postRing(p *peer, read bool, off, n, k int) error {
	ring := r.cfg.RingSize
	return ringSpans(off, n, ring, func(off, l int) error {
		remote := p.log.Add(uint64(logring.HeaderSize + off))
		return p.postRep(func(q verbs.QP) error {
			if read {
				return q.PostRead(makeWRID(wrRecover, p.id, 0), r.scratch, k*logring.MemSize(ring)+logring.HeaderSize+off, l, remote, 0)
			}
			return q.PostWrite(makeWRID(wrRecover, p.id, 0), r.logMR, logring.HeaderSize+off, l, remote, 0)
		})
	})
}

// ringSpans calls f for the one or two contiguous pieces of the n bytes
// from offset off of a ring of size bytes, in order, stopping at an error.
func ringSpans(off, n, size int, f func(off, l int) error) error {
	for n > 0 {
		l := min(n, size-off)
		if err := f(off, l); err != nil {
			return err
		}
		off, n = 0, n-l
	}
	return nil
}

// logCopy is the part of one replica's log that prepare holds in scratch:
// the header and n ring bytes from ring offset start on (wrapping). The
// rest of the copy's ring area is stale.
type logCopy struct {
	log      []byte // a whole log's worth of scratch
	start, n int
	at       logring.Cursor // how far the chain from our apply cursor has been followed
	settled  bool           // the chain's end is known from held bytes alone
}

// holds reports whether ring bytes [off, off+size) are in the copy.
func (c *logCopy) holds(off, size int) bool {
	ring := len(c.log) - logring.HeaderSize
	if c.n >= ring {
		return true
	}
	rel := off - c.start
	if rel < 0 {
		rel += ring
	}
	return rel+size <= c.n
}

// follow walks the copy's chain as far as the bytes it holds decide it,
// and records whether that is the chain's end.
func (c *logCopy) follow() {
	ring := c.log[logring.HeaderSize:]
	for {
		// Poll reads the entry at c.at.Off and, past a wrap marker, the
		// one at 0; it must read held bytes only, headers first.
		if !c.holds(c.at.Off, logring.EntryHeaderSize) {
			return
		}
		n0, n1 := c.at.Extent(ring)
		if !c.holds(c.at.Off, n0) || n1 > 0 && !(c.holds(0, logring.EntryHeaderSize) && c.holds(0, n1)) {
			return
		}
		if _, ok := c.at.Poll(ring); !ok {
			c.settled = true
			return
		}
	}
}

// copyLogs copies into scratch our log's header and ring from our apply
// cursor on (copy 0) and the same of each granted follower (copy i+1)
// with READs, as far as the entry chains from our apply cursor go: a window
// that doubles, round after round, for the copies whose chain runs past it.
// A fail-over thus moves the few entries past the apply point rather than
// whole rings (a 16 MiB ring took milliseconds to copy). It returns the
// copies (ours, then the followers' that could be read) and which
// followers could.
func (r *Replica) copyLogs(granted []*peer, deadline time.Time) ([][]byte, []bool, error) {
	ms := &r.ms
	ring, logSize := r.cfg.RingSize, logring.MemSize(r.cfg.RingSize)
	sc := r.scratch.Bytes()
	cs := make([]logCopy, 1+len(granted))
	for k := range cs {
		cs[k] = logCopy{log: sc[k*logSize : (k+1)*logSize], start: ms.cur.Off, at: ms.cur}
	}
	copy(cs[0].log[:logring.HeaderSize], r.mem[:logring.HeaderSize])
	okPeers := make([]bool, len(granted))
	for i, p := range granted {
		okPeers[i] = true
		p.takeIn() // the copies must come whole from one connection
	}
	for size := min(ring, 64<<10); ; size = min(ring, 2*size) {
		var ps []*peer
		var ks []int
		more := false
		for k := range cs {
			c := &cs[k]
			if c.settled || k > 0 && !okPeers[k-1] {
				continue
			}
			if k == 0 {
				_ = ringSpans((c.start+c.n)%ring, size-c.n, ring, func(off, l int) error {
					copy(c.log[logring.HeaderSize+off:], r.ring[off:off+l])
					return nil
				})
				c.n = size
				c.follow()
				more = more || !c.settled
				continue
			}
			ps, ks = append(ps, granted[k-1]), append(ks, k)
		}
		if len(ps) == 0 {
			if !more {
				break
			}
			continue
		}
		ok, err := r.awaitPeers(ps, false, deadline, func(j int, p *peer) error {
			c := &cs[ks[j]]
			if err := r.postRing(p, true, (c.start+c.n)%ring, size-c.n, ks[j]); err != nil {
				return err
			}
			hdr := ks[j] * logSize
			return p.postRep(func(q verbs.QP) error {
				return q.PostRead(makeWRID(wrRecover, p.id, recoverLast), r.scratch, hdr, logring.HeaderSize, p.log, verbs.Signaled)
			})
		})
		if err != nil {
			return nil, nil, err
		}
		for j, k := range ks {
			if !ok[j] {
				okPeers[k-1] = false
				continue
			}
			cs[k].n = size
			cs[k].follow() // settles at the latest once it holds the whole ring
		}
	}
	copies := [][]byte{cs[0].log}
	for i := range granted {
		if okPeers[i] {
			copies = append(copies, cs[i+1].log)
		}
	}
	if len(copies) < r.majority {
		return nil, nil, fmt.Errorf("%d of %d needed could be read", len(copies), r.majority)
	}
	return copies, okPeers, nil
}

// takeLateGrants brings in followers whose grant arrived after prepare, and
// lagging followers whose next entry the ring holds again (they applied
// more, or restored a snapshot; see catchup.go): the whole log is copied to
// them (it mirrors ours byte for byte, so their
// replayers find every retained entry where they expect it) and they join
// the fast path; RC ordering puts the copy before any later entry.
func (r *Replica) takeLateGrants() {
	req := r.request.Load()
	if req == 0 {
		return
	}
	ms := &r.ms
	for _, p := range r.others {
		if p.stalled.Swap(false) && p.active {
			// It takes our entries but replays none: rewrite its log.
			p.active, p.lagging = false, false
			r.cfg.Logger.Warn("follower stalled; taking it back from the ring",
				"id", r.id, "follower", p.id, "applied", p.applied.Load(), "commit", r.commit.Load())
		}
		if p.active || p.dead.Load() {
			continue
		}
		a := p.applied.Load()
		if p.lagging && a == p.lagTried {
			continue // nothing new since the last attempt
		}
		w := logring.LoadU64(r.ctl, ctlGrantOff(p.id))
		if grantReq(w) != req || w == p.refused {
			continue
		}
		if p.rep.State() != verbs.StateRTS {
			p.wantRecon.Store(true) // the background goroutine reconnects it
			continue
		}
		now := time.Now()
		if p.down {
			// It failed the last attempt: try again with back-off, up
			// to a second.
			if now.Before(p.retryAt) {
				continue
			}
			p.retryWait = min(max(2*p.retryWait, time.Millisecond), time.Second)
			p.retryAt = now.Add(p.retryWait)
		}
		if p.lagging {
			// A retain walks the ring: at most one attempt per
			// lagging follower a millisecond.
			if now.Sub(p.lagTriedAt) < time.Millisecond {
				continue
			}
			p.lagTried, p.lagTriedAt = a, now
		}
		if !r.retain(a + 1) {
			// The copy would not hold its next entry any more: it
			// would stall in it unnoticed. It catches up by state
			// transfer (catchup.go) and is tried again when its
			// applied index moves.
			if !p.lagging {
				p.leaveOut(a, now)
				r.cfg.Logger.Warn("follower behind our ring; it catches up by state transfer",
					"id", r.id, "follower", p.id, "applied", a)
			}
			continue
		}
		was := p.lagging
		p.active, p.lagging, p.acked, p.granted = true, false, 0, w
		p.takeIn()
		p.takenIn.Add(1)
		tail := ms.wring.Next() - 1
		// The ring before the header: a WRITE lands in no particular
		// byte order, and a commit index landing before the entries it
		// covers would let the follower apply a stale entry of an
		// earlier term sitting at the same index. RC ordering lands the
		// header after the ring.
		r.post(p, wrEntry, 0, logring.HeaderSize, r.cfg.RingSize, 0)
		r.post(p, wrEntry, tail, 0, logring.SharedHeaderSize, verbs.Signaled)
		if !p.down {
			r.cfg.Logger.Info("follower taken back from the ring", "id", r.id, "follower", p.id,
				"applied", a, "tail", tail, "was_lagging", was)
		}
	}
}
