package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
)

// Links: how a replica reconnects to a peer whose queue pairs failed, and
// connects to a peer that restarted.
//
// A link is one pair of queue pairs to a peer (replication and background
// plane) and the peer's memory they reach. Nothing is excluded for good:
// when the background plane finds a peer unreachable (a crash, a partition
// longer than the retry timeout, a stopped process), or the registry shows
// that the peer restarted (a new incarnation announced), a linker goroutine
// builds a new link through the registry, with back-off, for as long as it
// takes:
//
//  1. It resets the old link's queue pairs, so that the peer, should it
//     still believe the old link works, sees its operations refused and
//     starts relinking too.
//  2. The lower id of the pair offers: it creates fresh queue pairs and
//     publishes "link/<me>-><peer>": the peer incarnation it is meant for,
//     a generation (increasing) and its endpoints. The higher id answers
//     an offer meant for its incarnation: fresh queue pairs connected to
//     the offered endpoints, published under the same name with the
//     generation it answers. The offerer connects to the answer and
//     publishes a confirmation; both now hold connected queue pairs.
//  3. The new link is handed to the replica's two goroutines (peer.next),
//     each of which adopts it at a safe point: the main goroutine the
//     replication QP (under roleMu, so that grants and fences stay
//     consistent with it), the background goroutine the background QP.
//     The old queue pairs are closed once both have.
//
// A replica that has restarted joins the same way: its peers' linkers see
// its new incarnation and link to it; its own linkers link to each peer.
// Until a leader has taken it back (from the ring or by state transfer) it
// says it is behind and runs in no election; it grants permission like any
// follower, so the leader can write its log once it has caught up.
//
// Completions of an old link's queue pairs may still be in the CQs when a
// new link is adopted: they are told apart by QP number and ignored.

// watchPeriod is how often the watcher reads the peers' announcements.
const watchPeriod = 250 * time.Millisecond

// maxRelinkBackoff bounds the wait before rebuilding a link that failed
// soon after it was built: also how late a healed partition is noticed.
const maxRelinkBackoff = 500 * time.Millisecond

// Link record kinds.
const (
	linkOffer   = 1
	linkAnswer  = 2
	linkConfirm = 3
	// linkProbe is an offer made at Start, before a replica knows whether
	// the cluster is running (see meet): answered like an offer, but
	// another starting replica takes it for nothing more.
	linkProbe = 4
)

// link is one generation of the connection to a peer.
type link struct {
	inc      uint64 // the peer's incarnation it reaches
	newInc   bool   // inc differs from the incarnation of the link it replaces
	rep, bg  verbs.QP
	log, ctl verbs.Remote
	meta     []byte
}

func linkName(from, to int) string { return fmt.Sprintf("link/%d->%d", from, to) }

// linkRecord encodes a link record: kind, the incarnation it is meant for,
// the generation, and the sender's endpoints (see endpointRecord).
func linkRecord(kind byte, toInc, gen uint64, endpoints []byte) []byte {
	b := []byte{kind}
	b = binary.LittleEndian.AppendUint64(b, toInc)
	b = binary.LittleEndian.AppendUint64(b, gen)
	return append(b, endpoints...)
}

func parseLinkRecord(b []byte) (kind byte, toInc, gen uint64, endpoints []byte, err error) {
	if len(b) < 17 {
		return 0, 0, 0, nil, errors.New("link record too short")
	}
	return b[0], binary.LittleEndian.Uint64(b[1:]), binary.LittleEndian.Uint64(b[9:]), b[17:], nil
}

// repOf returns p's replication QP as last adopted, for goroutines other
// than the main one (which owns p.rep).
func (p *peer) repOf() verbs.QP { return *p.repQP.Load() }

// pendingRep returns the replication QP of a link handed over to the main
// goroutine but not yet adopted by it, nil if none. Callers hold roleMu:
// revocations must reach it too, since it was connected with the access the
// peer had when it was built.
func (p *peer) pendingRep() verbs.QP {
	if q := p.building.Load(); q != nil {
		return *q
	}
	return nil
}

// relink asks p's linker to build a new link to incarnation inc (0: the
// incarnation it links now). It never blocks.
func (p *peer) relink(inc uint64) {
	select {
	case p.relinkCh <- inc:
	default:
		if inc != 0 {
			// A new incarnation outranks a pending same-incarnation
			// request: replace it.
			select {
			case <-p.relinkCh:
			default:
			}
			select {
			case p.relinkCh <- inc:
			default:
			}
		}
	}
}

// runLinker is p's linker goroutine: it waits for relink requests and
// builds links until one is adopted.
func (r *Replica) runLinker(p *peer) {
	defer r.wg.Done()
	backoff := time.Duration(0)
	var linkedAt time.Time
	for {
		var inc uint64
		select {
		case <-r.stop:
			return
		case inc = <-p.relinkCh:
		}
		// A link that fails soon after it was built (the partition is
		// not over, the peer is stopped) is rebuilt with back-off, up to
		// maxRelinkBackoff; one that held for a while, at once.
		if !linkedAt.IsZero() && time.Since(linkedAt) < time.Second {
			backoff = min(max(2*backoff, 10*time.Millisecond), maxRelinkBackoff)
		} else {
			backoff = 0
		}
		select {
		case <-r.stop:
			return
		case <-time.After(backoff):
		}
		for !r.closed.Load() {
			if inc == 0 {
				inc = p.inc.Load()
			}
			newer, err := r.linkOnce(p, inc)
			if err == nil {
				linkedAt = time.Now()
				break
			}
			if newer != 0 {
				inc = newer
				continue
			}
			if !errors.Is(err, ErrClosed) {
				r.cfg.Logger.Warn("relink failed; trying again", "id", r.id, "peer", p.id, "err", err)
			}
		}
	}
}

// linkOnce builds one link to incarnation inc of p and hands it over. It
// returns a newer incarnation to link to instead if one is asked for
// meanwhile.
func (r *Replica) linkOnce(p *peer, inc uint64) (newer uint64, err error) {
	if old := p.cur.Load(); old != nil {
		// Make the old link fail for the peer too (see the doc above).
		old.rep.Reset()
		old.bg.Reset()
	}
	self := r.reg.Self()
	offerer := r.id < p.id
	var rep, bg verbs.QP
	closeNew := func() {
		r.roleMu.Lock()
		p.building.Store(nil)
		r.roleMu.Unlock()
		if rep != nil {
			rep.Close()
		}
		if bg != nil {
			bg.Close()
		}
		rep, bg = nil, nil
	}
	fresh := func() error {
		closeNew()
		var err error
		rep, bg, err = r.newQPs(p.id)
		return err
	}
	defer func() {
		if err != nil {
			closeNew()
		}
	}()
	publish := func(kind byte, gen uint64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return r.reg.Publish(ctx, linkName(r.id, p.id), linkRecord(kind, inc, gen, r.endpointRecordOf(rep, bg)))
	}
	var gen uint64 // offerer: our offer; answerer: the offer we answered
	var theirs []byte
	if offerer {
		if err := fresh(); err != nil {
			return 0, err
		}
		gen = uint64(time.Now().UnixNano())
		if err := publish(linkOffer, gen); err != nil {
			return 0, err
		}
	}
	r.cfg.Logger.Info("relinking", "id", r.id, "peer", p.id, "incarnation", fmt.Sprintf("%016x", inc), "offerer", offerer)
	wait := 5 * time.Millisecond
	for {
		if r.closed.Load() {
			return 0, ErrClosed
		}
		select {
		case n := <-p.relinkCh:
			if n != 0 && n != inc {
				return n, fmt.Errorf("peer %d restarted again", p.id)
			}
		default:
		}
		kind, toInc, g, eps, ok := r.readLink(p, inc)
		progressed := false
		switch {
		case !ok || toInc != self.Incarnation:
		case offerer && kind == linkAnswer && g == gen:
			theirs = eps
			if err := r.connectLink(p, inc, rep, bg, eps); err != nil {
				return 0, err
			}
			if err := publish(linkConfirm, gen); err != nil {
				return 0, err
			}
			return 0, r.handOver(p, inc, rep, bg, theirs)
		case !offerer && (kind == linkOffer || kind == linkProbe || kind == linkConfirm) && g > gen && g > p.linkedGen:
			// A new offer: answer it with fresh queue pairs (ours of an
			// older answer are connected to the older offer).
			if err := fresh(); err != nil {
				return 0, err
			}
			if err := r.connectLink(p, inc, rep, bg, eps); err != nil {
				return 0, err
			}
			gen, theirs = g, eps
			if err := publish(linkAnswer, gen); err != nil {
				return 0, err
			}
			progressed = true
		case !offerer && kind == linkConfirm && g == gen && gen != 0:
			p.linkedGen = gen
			return 0, r.handOver(p, inc, rep, bg, theirs)
		}
		if progressed {
			wait = 5 * time.Millisecond
			continue
		}
		select {
		case <-r.stop:
			return 0, ErrClosed
		case <-time.After(wait):
		}
		wait = min(2*wait, watchPeriod)
	}
}

// readLink reads p's link record for us, at incarnation inc, without
// waiting.
func (r *Replica) readLink(p *peer, inc uint64) (kind byte, toInc, gen uint64, eps []byte, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	rec, err := r.reg.LookupAt(ctx, registry.Peer{ID: p.id, Incarnation: inc}, linkName(p.id, r.id))
	if err != nil {
		return 0, 0, 0, nil, false
	}
	kind, toInc, gen, eps, err = parseLinkRecord(rec.Value)
	if err != nil {
		r.cfg.Logger.Warn("malformed link record", "id", r.id, "peer", p.id, "err", err)
		return 0, 0, 0, nil, false
	}
	return kind, toInc, gen, eps, true
}

// connectLink connects fresh queue pairs to a peer's endpoints: the
// replication QP with the access the peer has now (write if we granted it
// and it reaches the same incarnation: a leader whose link broke and was
// rebuilt writes on at once, while the other end may not have adopted the
// link yet), the background QP open. Under roleMu, so that a grant or a
// fence decided meanwhile is not missed: from handOver on, revocations
// reach the link through pendingRep.
func (r *Replica) connectLink(p *peer, inc uint64, rep, bg verbs.QP, eps []byte) error {
	repEP, bgEP, _, _, err := parseEndpointRecord(eps)
	if err != nil {
		return err
	}
	r.roleMu.Lock()
	access := verbs.AccessRemoteRead
	if inc == p.inc.Load() {
		access = r.repAccess(p)
	}
	err = rep.Connect(repEP, access)
	if err == nil {
		p.building.Store(&rep) // revocations reach it until it is adopted
	}
	r.roleMu.Unlock()
	if err != nil {
		return fmt.Errorf("connect replication QP: %w", err)
	}
	if err := bg.Connect(bgEP, verbs.AccessAll); err != nil {
		return fmt.Errorf("connect background QP: %w", err)
	}
	return nil
}

// handOver gives a connected link to the replica's goroutines, waits until
// both have adopted it and closes the link it replaces.
func (r *Replica) handOver(p *peer, inc uint64, rep, bg verbs.QP, eps []byte) error {
	_, _, log, ctl, err := parseEndpointRecord(eps)
	if err != nil {
		return err
	}
	l := &link{inc: inc, newInc: inc != p.inc.Load(), rep: rep, bg: bg, log: log, ctl: ctl}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if m, err := r.reg.LookupAt(ctx, registry.Peer{ID: p.id, Incarnation: inc}, "meta"); err == nil {
		l.meta = m.Value
	}
	cancel()
	old := p.cur.Load()
	p.next.Store(l)
	r.linksMain.Add(1)
	r.linksBg.Add(1)
	for p.mainLink.Load() != l || p.bgLink.Load() != l {
		if r.closed.Load() {
			return ErrClosed
		}
		time.Sleep(time.Millisecond)
	}
	p.cur.Store(l)
	p.inc.Store(inc)
	if old != nil {
		old.rep.Close()
		old.bg.Close()
	}
	r.cfg.Logger.Info("peer linked", "id", r.id, "peer", p.id, "incarnation", fmt.Sprintf("%016x", inc), "restarted", l.newInc)
	return nil
}

// unadopted returns the link handed over for p that the goroutine whose
// adopted link is adopted has not taken yet, nil if none.
func (p *peer) unadopted(adopted *atomic.Pointer[link]) *link {
	if l := p.next.Load(); l != nil && adopted.Load() != l {
		return l
	}
	return nil
}

// adoptLinksMain takes over new links' replication QPs (main goroutine).
func (r *Replica) adoptLinksMain() {
	if r.linksMain.Load() == 0 {
		return
	}
	for _, p := range r.others {
		l := p.unadopted(&p.mainLink)
		if l == nil {
			continue
		}
		r.roleMu.Lock()
		if l.newInc && r.grantee.Load() == int32(p.id) {
			// The replica we granted is gone; its new incarnation
			// earns write access with a request of its own.
			r.grantee.Store(0)
		}
		if want := r.repAccess(p); l.rep.Access() != want {
			if err := l.rep.SetAccess(want); err != nil {
				r.cfg.Logger.Warn("access on a new link", "id", r.id, "peer", p.id, "err", err)
			}
		}
		p.rep, p.log = l.rep, l.log
		p.repQP.Store(&l.rep)
		p.building.Store(nil)
		r.roleMu.Unlock()
		p.meta.Store(&l.meta)
		p.active, p.lagging, p.acked, p.granted, p.refused, p.confirmed = false, false, 0, 0, 0, 0
		p.down, p.retryWait = false, 0
		// Read-index answers of the old link are lost or done: the
		// follower asks again.
		p.readPending, p.answering = 0, false
		// A reconnection asked for on the old link would reset the new
		// one's QP under the peer's feet.
		p.wantRecon.Store(false)
		p.mainLink.Store(l)
		r.linksMain.Add(-1)
	}
}

// adoptLinksBg takes over new links' background QPs (background goroutine).
// A peer that restarted starts from scratch: the control slots its old
// incarnation wrote are cleared (a replica that just joined has no old
// incarnation's words to clear, and may already hold its peers' new
// requests) and it learns our current request anew.
func (r *Replica) adoptLinksBg() {
	if r.linksBg.Load() == 0 {
		return
	}
	for _, p := range r.others {
		l := p.unadopted(&p.bgLink)
		if l == nil {
			continue
		}
		old := p.bgLink.Load()
		r.bgPost.Lock()
		p.bg, p.ctl = l.bg, l.ctl
		r.bgPost.Unlock()
		if l.newInc && old.inc != 0 {
			for _, off := range []int{ctlRequestOff(p.id), ctlGrantOff(p.id), ctlSnapReqOff(p.id), ctlSnapOfferOff(p.id), ctlEpInOff(p.id), ctlReadReqOff(p.id)} {
				logring.PutU64(r.ctl, off, 0)
			}
			p.lastReq = 0
			p.snapReqSeen.Store(0)
			p.claim.Store(0)
			p.applied.Store(0)
			p.lagMask.Store(0)
			p.activeMask.Store(0)
			p.behind.Store(false)
		}
		// Reconnection requests of the old link are done with: what the
		// peer's slot holds now counts as seen.
		p.reconSeq, p.reconSeen = 0, logring.LoadU64(r.ctl, ctlEpInOff(p.id))>>1
		p.wantRecon.Store(false)
		p.lastBeat, p.still, p.reading, p.fresh, p.skipRead = 0, 0, false, false, false
		p.alive.Store(false)
		p.dead.Store(false)
		if logring.LoadU64(r.ctl, ctlOwnRequest) != 0 {
			r.postControl(p, ctlOwnRequest, ctlRequestOff(r.id))
		}
		p.bgLink.Store(l)
		r.linksBg.Add(-1)
	}
}

// runWatcher reads the peers' announcements every watchPeriod and relinks
// to a peer that announced a new incarnation (it restarted).
func (r *Replica) runWatcher() {
	defer r.wg.Done()
	t := time.NewTicker(watchPeriod)
	defer t.Stop()
	quiet := false // the registry is unreachable and we said so
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		for _, p := range r.others {
			a, found, err := r.reg.Announced(context.Background(), p.id)
			if err != nil {
				if !quiet {
					r.cfg.Logger.Warn("registry unreachable; restarted peers go unnoticed until it answers", "id", r.id, "err", err)
					quiet = true
				}
				break
			}
			quiet = false
			if found && !a.Departed && a.Incarnation != p.inc.Load() && a.Incarnation != p.watched {
				p.watched = a.Incarnation
				r.cfg.Logger.Info("peer restarted", "id", r.id, "peer", p.id, "incarnation", fmt.Sprintf("%016x", a.Incarnation))
				p.relink(a.Incarnation)
			}
		}
	}
}

// meet waits for this replica's peers at Start. At a fresh start every
// replica arrives at the registry's "start" barrier; a replica that
// restarted into a running cluster never sees the others there again, but
// their watchers notice its new incarnation and their linkers reach out to
// it. meet waits for whichever comes first: the barrier (it returns the
// peers met) or a link record meant for this incarnation (joined). Meanwhile
// it offers links to the higher ids, whose linkers answer only offers
// (a restarted lowest id would otherwise never hear from anyone).
func (r *Replica) meet(ctx context.Context) (met []registry.Peer, joined bool, err error) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		peers []registry.Peer
		err   error
	}
	barrier := make(chan result, 1)
	go func() {
		ps, err := r.reg.Barrier(bctx, "start", r.ids)
		barrier <- result{ps, err}
	}()
	self := r.reg.Self()
	offered := map[int]uint64{} // peer id: the incarnation we offered a link to
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case b := <-barrier:
			return b.peers, false, b.err
		case <-t.C:
		}
		for _, p := range r.others {
			a, found, err := r.reg.Announced(bctx, p.id)
			if err != nil || !found || a.Departed {
				continue
			}
			if r.id < p.id && offered[p.id] != a.Incarnation {
				offered[p.id] = a.Incarnation
				rec := linkRecord(linkProbe, a.Incarnation, uint64(time.Now().UnixNano()), r.endpointRecordOf(p.rep, p.bg))
				if err := r.reg.Publish(bctx, linkName(r.id, p.id), rec); err != nil {
					continue
				}
			}
			// A running peer's linker offers us a link, or answers our
			// probe; a starting peer's probe is no sign of anything.
			if kind, toInc, _, _, ok := r.readLink(p, a.Incarnation); ok && toInc == self.Incarnation && kind != linkProbe {
				r.cfg.Logger.Info("the cluster is running: joining it", "id", r.id, "answered_by", p.id)
				return nil, true, nil
			}
		}
	}
}

// startGoroutines starts the main, background, watcher and linker
// goroutines and the pause fifo's; should the fifo fail, it closes the
// replica.
func (r *Replica) startGoroutines() error {
	r.wg.Add(3 + len(r.others))
	go r.runMain()
	go r.runBackground()
	go r.runWatcher()
	for _, p := range r.others {
		go r.runLinker(p)
	}
	if r.cfg.Fifo != "-" {
		if err := r.startFifo(); err != nil {
			r.Close()
			return fmt.Errorf("consensus: start replica %d: %w", r.id, err)
		}
	}
	return nil
}

// startJoined finishes Start for a replica that joined a running cluster:
// it knows no leader, grants nobody, holds no state and says it is behind;
// every peer is unlinked until its linker has linked it. Start returns once
// a majority (this replica included) is linked.
func (r *Replica) startJoined(ctx context.Context) (*Replica, error) {
	r.setBehind(true, "joined a running cluster: catching up")
	incs := make([]uint64, len(r.others))
	for i, p := range r.others {
		p.dead.Store(true)
		if a, found, err := r.reg.Announced(ctx, p.id); err == nil && found && !a.Departed {
			incs[i], p.watched = a.Incarnation, a.Incarnation
		}
	}
	if err := r.startGoroutines(); err != nil {
		return nil, err
	}
	for i, p := range r.others {
		if incs[i] != 0 {
			p.relink(incs[i])
		}
	}
	linked := func() (n int, missing []int) {
		n = 1
		for _, p := range r.others {
			if p.cur.Load().inc != 0 {
				n++
			} else {
				missing = append(missing, p.id)
			}
		}
		return n, missing
	}
	for {
		n, missing := linked()
		if n >= r.majority {
			break
		}
		select {
		case <-ctx.Done():
			r.Close()
			return nil, fmt.Errorf("consensus: start replica %d: joined a running cluster but could not link to a majority (missing %v): %w", r.id, missing, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	r.cfg.Logger.Info("replica started: joined a running cluster", "id", r.id, "ids", r.ids, "transport", r.cfg.Transport)
	return r, nil
}

// resetRep resets q, p's replication QP, and counts the reset: the
// requests in flight on it are dropped without completions, so the leader
// writes p nothing more until it has taken p in again (see peer.repMu).
func (p *peer) resetRep(q verbs.QP) error {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	p.repResets++
	return q.Reset()
}

// takeIn records that the leader starts a sequence of requests to p that
// must land whole or not at all: a copy of its log and everything after it
// (prepare, takeLateGrants), or prepare's reads of p's log.
func (p *peer) takeIn() {
	p.repMu.Lock()
	p.takenAt = p.repResets
	p.repMu.Unlock()
}

// errRepReset: p's replication QP was reset since the leader took it in.
var errRepReset = errors.New("replication QP reset since the follower was taken in: requests in flight were dropped")

// postRep runs post on p's replication QP, unless the QP was reset since p
// was taken in (the requests before this one may be gone).
func (p *peer) postRep(post func(q verbs.QP) error) error {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	if p.repResets != p.takenAt {
		return errRepReset
	}
	return post(p.rep)
}
