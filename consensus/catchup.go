package consensus

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// Catch-up: how a follower that fell behind the leader's ring comes back.
//
// The leader never waits for a slow follower: when its ring has no room
// left it reuses what a majority applied and leaves the followers behind
// that point out (lagging, in Stats and in the lagging mask of its status
// words). From then on, each time a lagging follower's published applied
// index moves, the leader tries to take it back from the ring: if the ring
// still holds every entry after that index (retain), it copies its whole
// log to the follower, which finds its next entry where it expects it (logs
// are byte mirrors), and the follower is active again.
//
// When the ring no longer holds it, the follower pulls a state transfer,
// one-sidedly:
//
//  1. It picks a producer: a live peer that has applied more than it has,
//     preferring a follower the leader does not count as lagging (taking a
//     snapshot holds up the producer's main loop, and a follower's is not
//     the fast path), the leader only when no such follower exists.
//  2. It writes a request number into the producer's request slot.
//  3. The producer's main loop, between two applies, takes a Snapshot at
//     its applied index s, copies it into a fresh memory region registered
//     in its replication PD (read-only to peers) and writes an offer into
//     the follower's offer slot: s, the ring offset of entry s+1 (the same
//     in every log), the size, the region's address and key, a CRC-32C,
//     then the request number (last: RC ordering makes the rest visible
//     first).
//  4. The follower READs the snapshot in chunks through its replication QP
//     into its scratch memory, checks the CRC, Restores it, and moves its
//     apply cursor to s+1 at that offset. Its applied index jumps to s; the
//     leader sees it and takes it back from the ring as above. Should the
//     ring have lapped it again meanwhile, it is still lagging and asks
//     again.
//
// A request that gets no offer within catchUpOfferTimeout, an offer older
// than what the follower already applied, a failed READ or a bad CRC only
// cost a new request. Producers keep each snapshot region for
// snapshotKeep before closing it, long enough for any transfer in
// progress.
//
// A replica that is catching up sets the behind flag in its status words:
// the others leave it out when they work out the lowest live id that should
// run for leader, and it runs for nobody, since its log is not up to date.
// (Should every live replica be behind, the flags are ignored: a cluster
// without any leader helps nobody.)

const (
	// catchUpOfferTimeout bounds the wait for an offer from a producer
	// whose link holds (its snapshot of a large state may take seconds,
	// and may hold up its heartbeat: asking another would only start a
	// second snapshot); one whose link failed is given up on at once.
	catchUpOfferTimeout = 30 * time.Second
	catchUpResend       = 100 * time.Millisecond
	catchUpReadTimeout  = 5 * time.Second
	snapshotKeep        = 30 * time.Second
	snapChunk           = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offer slot words (a 64-byte slot; the sequence word is written last).
const (
	offerSeq   = 0
	offerIndex = 8
	offerOff   = 16
	offerSize  = 24
	offerAddr  = 32
	offerRKey  = 40
	offerCRC   = 48
	offerEnd   = 56 // just past the last word
)

func ctlSnapReqOff(p int) int    { return ctlSnapReq + p*ctlSlot }
func ctlSnapOfferOff(p int) int  { return ctlSnapOffer + p*ctlSlot }
func ctlSnapReqOutOff(p int) int { return ctlSnapReqOut + p*ctlSlot }
func ctlSnapOfOutOff(p int) int  { return ctlSnapOfOut + p*ctlSlot }

// ctlSend is one control WRITE the main goroutine asks the background
// goroutine to post: n bytes at our control offset from to the peer's
// control offset to. Only the background goroutine posts on the
// background plane's QPs.
type ctlSend struct {
	p        *peer
	from, to int
	n        int
}

// outbox holds control WRITEs queued for the background goroutine, in
// order. pending lets the background loop skip the lock when it is empty.
type outbox struct {
	mu      sync.Mutex
	sends   []ctlSend
	pending atomic.Bool
}

func (o *outbox) push(s ...ctlSend) {
	o.mu.Lock()
	o.sends = append(o.sends, s...)
	o.mu.Unlock()
	o.pending.Store(true)
}

// flushOutbox posts the queued control WRITEs (background goroutine).
func (r *Replica) flushOutbox() bool {
	if !r.outbox.pending.Load() {
		return false
	}
	r.outbox.mu.Lock()
	sends := r.outbox.sends
	r.outbox.sends = nil
	r.outbox.pending.Store(false)
	r.outbox.mu.Unlock()
	r.bgPost.Lock()
	defer r.bgPost.Unlock()
	for _, s := range sends {
		if s.p.dead.Load() {
			continue
		}
		if err := s.p.bg.PostWrite(makeWRID(wrControl, s.p.id, 0), r.ctlMR, s.from, s.n, s.p.ctl.Add(uint64(s.to)), verbs.Signaled); err != nil {
			r.markDead(s.p, err.Error())
		}
	}
	return len(sends) > 0
}

// scanSnapRequests notes new snapshot requests for the main goroutine
// (background goroutine).
func (r *Replica) scanSnapRequests() {
	for _, p := range r.others {
		if w := logring.LoadU64(r.ctl, ctlSnapReqOff(p.id)); w != p.snapReqSeen.Load() {
			p.snapReqSeen.Store(w)
			if w != 0 {
				r.snapAsked.Or(1 << p.id)
			}
		}
	}
}

// retiredSnap is a snapshot region a producer keeps for transfers in
// progress.
type retiredSnap struct {
	mr   verbs.MR
	made time.Time
}

// serveSnapshots answers the snapshot requests the background goroutine
// noted, with one snapshot taken now, between two applies (main goroutine,
// either role). It reports whether it answered any.
func (r *Replica) serveSnapshots() bool {
	asked := r.snapAsked.Swap(0)
	if asked == 0 {
		return false
	}
	ms := &r.ms
	now := time.Now()
	// Regions old enough that no transfer can still be reading them.
	kept := r.snaps[:0]
	for _, s := range r.snaps {
		if now.Sub(s.made) > snapshotKeep {
			s.mr.Close()
		} else {
			kept = append(kept, s)
		}
	}
	r.snaps = kept

	index, cur := r.applied.Load(), ms.cur
	var buf bytes.Buffer
	var mr verbs.MR
	r.snapshotAssembly(&buf)
	err := r.sm.Snapshot(&buf)
	if err == nil {
		mr, err = r.pdRep.AllocMR(max(buf.Len(), 64), verbs.AccessLocalWrite|verbs.AccessRemoteRead)
	}
	var addr uint64
	var rkey uint32
	var crc uint32
	if err != nil {
		// Refuse with an empty offer: the follower asks someone else.
		r.cfg.Logger.Error("snapshot for a lagging follower failed", "id", r.id, "err", err)
		index = 0
	} else {
		copy(mr.Bytes(), buf.Bytes())
		r.snaps = append(r.snaps, retiredSnap{mr: mr, made: now})
		addr, rkey, crc = mr.Addr(), mr.RKey(), crc32.Checksum(buf.Bytes(), castagnoli)
	}
	for _, p := range r.others {
		if asked&(1<<p.id) == 0 {
			continue
		}
		out := ctlSnapOfOutOff(p.id)
		logring.PutU64(r.ctl, out+offerIndex, index)
		logring.PutU64(r.ctl, out+offerOff, uint64(cur.Off))
		logring.PutU64(r.ctl, out+offerSize, uint64(buf.Len()))
		logring.PutU64(r.ctl, out+offerAddr, addr)
		logring.PutU64(r.ctl, out+offerRKey, uint64(rkey))
		logring.PutU64(r.ctl, out+offerCRC, uint64(crc))
		logring.PutU64(r.ctl, out+offerSeq, p.snapReqSeen.Load())
		in := ctlSnapOfferOff(r.id)
		r.outbox.push(
			ctlSend{p: p, from: out + offerIndex, to: in + offerIndex, n: offerEnd - offerIndex},
			ctlSend{p: p, from: out + offerSeq, to: in + offerSeq, n: 8},
		)
		r.cfg.Logger.Info("snapshot offered to a lagging follower", "id", r.id, "follower", p.id,
			"index", index, "bytes", buf.Len(), "took_us", time.Since(now).Microseconds())
	}
	return true
}

// catchUp is the main goroutine's state of a state transfer it pulls.
type catchUp struct {
	seq   uint64 // our outstanding request, 0 if none
	from  *peer
	asked time.Time // when we asked
	sent  time.Time // when we last sent the request word
	ctr   uint64
	buf   []byte
	// lastApplied is our applied index when catchUpStep last looked,
	// unchanged since stillSince.
	lastApplied uint64
	stillSince  time.Time
}

// leaderSaysLagging reports whether the live leader's last status lists us
// as lagging.
func (r *Replica) leaderSaysLagging() bool {
	l := int(r.leader.Load())
	if l == r.id || l <= 0 || l >= len(r.peers) || r.peers[l] == nil {
		return false
	}
	return r.peers[l].lagMask.Load()&(1<<r.id) != 0
}

// catchUpStep advances a state transfer by one step (main goroutine, as a
// follower the leader lists as lagging). It returns the index a restored
// snapshot brought us to, 0 if none.
func (r *Replica) catchUpStep() uint64 {
	cu := &r.cu
	now := time.Now()
	if cu.seq != 0 && (now.Sub(cu.asked) > catchUpOfferTimeout || cu.from.dead.Load()) {
		r.cfg.Logger.Warn("no snapshot offer in time; asking again", "id", r.id, "producer", cu.from.id, "waited", catchUpOfferTimeout)
		cu.seq = 0
	}
	if cu.seq == 0 {
		// While our replay still moves, the leader may take us back
		// from its ring (it tries whenever our applied index moves),
		// and a snapshot just restored needs a fresh status READ of the
		// leader to show it: ask only once we have stood still for a
		// few heartbeats.
		if a := r.applied.Load(); a != cu.lastApplied || cu.stillSince.IsZero() {
			cu.lastApplied, cu.stillSince = a, now
			return 0
		}
		if now.Sub(cu.stillSince) < 3*r.cfg.HeartbeatPeriod {
			return 0
		}
		q := r.pickProducer()
		if q == nil {
			return 0
		}
		if q == r.peers[r.leader.Load()] && now.Sub(cu.stillSince) < time.Second {
			// Only the leader could serve now, but a follower we do not
			// hear from yet (not linked since we started, say) may
			// soon: taking the snapshot would stop the leader's fast
			// path, so give the followers a second.
			for _, p := range r.others {
				if p != q && (p.dead.Load() || !p.alive.Load()) {
					return 0
				}
			}
		}
		cu.ctr++
		cu.seq = uint64(now.UnixNano())>>10 + cu.ctr // above any request of an earlier run
		cu.from, cu.asked, cu.sent = q, now, now
		out := ctlSnapReqOutOff(q.id)
		logring.PutU64(r.ctl, out, cu.seq)
		r.outbox.push(ctlSend{p: q, from: out, to: ctlSnapReqOff(r.id), n: 8})
		r.cfg.Logger.Info("lagging: asking for a snapshot", "id", r.id, "producer", q.id, "applied", r.applied.Load())
		return 0
	}
	in := ctlSnapOfferOff(cu.from.id)
	if logring.LoadU64(r.ctl, in+offerSeq) != cu.seq {
		// The request may have been dropped (the link was down): say it
		// again now and then. The producer acts on a new word only.
		if now.Sub(cu.sent) > catchUpResend {
			cu.sent = now
			r.outbox.push(ctlSend{p: cu.from, from: ctlSnapReqOutOff(cu.from.id), to: ctlSnapReqOff(r.id), n: 8})
		}
		return 0
	}
	q := cu.from
	cu.seq = 0
	index := logring.LoadU64(r.ctl, in+offerIndex)
	if index <= r.applied.Load() {
		return 0 // refused, or no newer than what we have: ask again
	}
	off := int(logring.LoadU64(r.ctl, in+offerOff))
	size := int(logring.LoadU64(r.ctl, in+offerSize))
	src := verbs.Remote{Addr: logring.LoadU64(r.ctl, in+offerAddr), RKey: uint32(logring.LoadU64(r.ctl, in+offerRKey))}
	crc := uint32(logring.LoadU64(r.ctl, in+offerCRC))
	if off < 0 || off >= r.cfg.RingSize || off%logring.Align != 0 {
		r.cfg.Logger.Error("snapshot offer with a bad ring offset", "id", r.id, "producer", q.id, "off", off)
		return 0
	}
	start := time.Now()
	data, err := r.readSnapshot(q, src, size)
	if err == nil && crc32.Checksum(data, castagnoli) != crc {
		err = fmt.Errorf("checksum mismatch")
	}
	read := time.Since(start)
	var asm assembly
	if err == nil {
		data, asm, err = restoreAssembly(data)
	}
	if err == nil {
		err = r.sm.Restore(bytes.NewReader(data))
	}
	if err != nil {
		r.cfg.Logger.Warn("state transfer failed; asking again", "id", r.id, "producer", q.id, "err", err)
		return 0
	}
	ms := &r.ms
	ms.asm = asm
	if asm.on {
		r.stats.midCommand.Add(1)
	}
	ms.cur = logring.Cursor{Next: index + 1, Off: off}
	r.setApplied(index)
	if index > r.commit.Load() {
		r.commit.Store(index)
	}
	// seen is left alone: it moves only with entries the leader writes
	// us, which is what tells judgeBehind the leader took us back.
	el := time.Since(start)
	r.stats.lastTransferBytes.Store(int64(size))
	r.stats.lastTransferNs.Store(int64(el))
	r.stats.transfers.Add(1)
	r.cfg.Logger.Info("state transfer restored", "id", r.id, "producer", q.id, "index", index, "bytes", size,
		"took_us", el.Microseconds(), "read_us", read.Microseconds(), "MBps", int(float64(size)/max(el.Seconds(), 1e-9)/1e6))
	return index
}

// pickProducer chooses whom to ask for a snapshot: the live follower with
// the highest applied index above ours that the leader does not list as
// lagging, else the leader if it has applied more than we have.
func (r *Replica) pickProducer() *peer {
	own := r.applied.Load()
	var lead *peer
	if l := int(r.leader.Load()); l > 0 && l < len(r.peers) {
		lead = r.peers[l]
	}
	var mask uint64
	if lead != nil {
		mask = lead.lagMask.Load()
	}
	var best *peer
	for _, p := range r.others {
		if p == lead || p.dead.Load() || !p.alive.Load() || p.behind.Load() || mask&(1<<p.id) != 0 {
			continue
		}
		if a := p.applied.Load(); a > own && (best == nil || a > best.applied.Load()) {
			best = p
		}
	}
	if best == nil && lead != nil && !lead.dead.Load() && lead.applied.Load() > own {
		best = lead
	}
	return best
}

// readSnapshot READs size bytes at src from q in chunks through scratch.
func (r *Replica) readSnapshot(q *peer, src verbs.Remote, size int) ([]byte, error) {
	chunk := min(snapChunk, len(r.scratch.Bytes()))
	if cap(r.cu.buf) < size {
		r.cu.buf = make([]byte, 0, size)
	}
	data := r.cu.buf[:0]
	var comps [16]verbs.Completion
	for done := 0; done < size; {
		n := min(chunk, size-done)
		if err := q.rep.PostRead(makeWRID(wrSnap, q.id, uint64(done)), r.scratch, 0, n, src.Add(uint64(done)), verbs.Signaled); err != nil {
			return nil, fmt.Errorf("read snapshot bytes %d..%d: %w", done, done+n, err)
		}
		var status verbs.Status
		got := false
		deadline := time.Now().Add(catchUpReadTimeout)
		poll.Until(r.cfg.Poll, deadline, func() bool {
			k, _ := r.repCQ.Poll(comps[:])
			for _, c := range comps[:k] {
				if kind, id, at := splitWRID(c.WRID); kind == wrSnap && id == q.id && at == uint64(done) {
					status, got = c.Status, true
				}
			}
			return got || r.closed.Load()
		})
		switch {
		case r.closed.Load():
			return nil, ErrClosed
		case !got:
			return nil, fmt.Errorf("read snapshot bytes %d..%d: no completion within %v", done, done+n, catchUpReadTimeout)
		case status != verbs.StatusSuccess:
			q.wantRecon.Store(true) // the QP is in error now
			return nil, fmt.Errorf("read snapshot bytes %d..%d: %v", done, done+n, status)
		}
		data = append(data, r.scratch.Bytes()[:n]...)
		done += n
	}
	return data, nil
}
