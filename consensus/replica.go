package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
)

// StateMachine is the replicated application. Apply must be deterministic:
// every replica applies the same commands in the same order and must reach
// the same state and results. cmd aliases registered memory and is valid only
// during the call; copy what must be kept.
//
// Snapshot and Restore carry a state transfer to a follower that fell
// behind the ring or restarted (see catchup.go). The engine calls them on
// the same goroutine as Apply, between two applies, so they see and replace
// a state at one applied index; Snapshot runs on a live peer (a follower by
// preference) and holds up that replica's replay for as long as it takes,
// Restore replaces the whole state of the replica catching up. Snapshot's
// output must be what Restore reads back, on any replica.
type StateMachine interface {
	Apply(index uint64, cmd []byte) []byte
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

// Role is what a replica currently does.
type Role int32

const (
	Follower Role = iota
	Candidate
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", int32(r))
}

// peer is this replica's view of another replica. Fields are owned by the
// goroutine named in their comment; atomics are shared.
type peer struct {
	id  int
	rep verbs.QP // replication plane
	bg  verbs.QP // background plane
	log verbs.Remote
	ctl verbs.Remote

	// Background goroutine.
	lastBeat uint64
	// still is how long, in this replica's own progress (see tick), the
	// peer's heartbeat has stood still.
	still   time.Duration
	reading bool      // a status READ is outstanding
	readAt  time.Time // when it was posted
	// appliedStill: how long, in our own progress (as still), its applied
	// index has stood still behind our commit index; stalled: too long
	// while we lead (noticeStalled).
	appliedStill time.Duration
	stalled      atomic.Bool
	lastReq      uint64       // the highest request of this peer we granted
	reqWord      uint64       // its request word as serveGrants last saw it
	reqAt        atomic.Int64 // when that word changed (unix ns)
	// fresh: a status READ posted since we last resumed has completed,
	// so claim and applied are current; skipRead: the READ outstanding
	// when we resumed predates the pause and does not count.
	fresh, skipRead bool
	alive           atomic.Bool
	dead            atomic.Bool // its background QP failed: a linker is building a new link (link.go)
	claim           atomic.Uint64
	applied         atomic.Uint64
	lagMask         atomic.Uint64 // its lagging mask: whom it, leading, left out
	activeMask      atomic.Uint64 // its active mask: whom it, leading, writes
	behind          atomic.Bool   // it is catching up: it runs in no election
	snapReqSeen     atomic.Uint64 // its last snapshot request word (set by the background goroutine)
	// Reconnection (background goroutine): our outstanding request's
	// sequence (0 if none) and when we sent it, the last request of theirs
	// we answered.
	reconSeq, reconSeen uint64
	reconSent           time.Time
	wantRecon           atomic.Bool // the main goroutine asks for one
	// repMu orders resets of the replication QP against the leader's
	// posts on it. A Reset drops the requests in flight without
	// completions, and once the QP is connected again a later WRITE
	// lands as if nothing had been missing before it: a commit index
	// whose entries never came, over a follower's stale entries of an
	// earlier term at the same indexes. repResets counts the resets;
	// takenAt is repResets when the leader last took the follower in
	// (prepare, takeLateGrants), and the leader posts nothing more to it
	// once the two differ (postRep, post) until it takes it in again.
	repMu     sync.Mutex
	repResets uint64
	takenAt   uint64
	takenIn   atomic.Uint64 // copies of our whole log it was sent (PeerStats.TakenIn)

	// Main goroutine, while leading.
	active  bool   // holds our permission and takes our writes
	granted uint64 // the grant word under which it became active
	refused uint64 // the grant word under which it refused our WRITEs
	acked   uint64 // highest index it has completed
	lagging bool   // fell behind the reuse point: needs state transfer
	// down: it failed our WRITEs and has acknowledged none since (see
	// followerDown); takeLateGrants retries it after retryWait, at
	// retryAt.
	down      bool
	retryWait time.Duration
	retryAt   time.Time
	// lagTried is the applied index of a lagging follower at our last
	// attempt to take it back from the ring, at lagTriedAt.
	lagTried   uint64
	lagTriedAt time.Time
	// confirmed is the highest read-barrier round it completed a WRITE of.
	confirmed uint64
	// Its read-index requests (read.go): the request word last taken
	// from its control slot, the one waiting for an answer (0 if none)
	// and the read-barrier round that answers it; answering: our answer's
	// WRITEs are in flight, so their source must not change.
	readSeen, readPending, readTicket uint64
	answering                         bool
	meta                              atomic.Pointer[[]byte] // its Config.Meta, from the registry

	// Links (link.go). inc is the incarnation the current link cur
	// reaches; next is a new link handed over by the linker, adopted by
	// the main goroutine (mainLink) and the background goroutine
	// (bgLink); repQP is rep as last adopted, for the background
	// goroutine. linkedGen (linker) is the last offer it answered and
	// saw confirmed; watched (watcher) the last incarnation it asked a
	// relink for.
	inc                atomic.Uint64
	cur, next          atomic.Pointer[link]
	mainLink, bgLink   atomic.Pointer[link]
	repQP              atomic.Pointer[verbs.QP]
	building           atomic.Pointer[verbs.QP] // a new link's rep QP, connected, not yet adopted (guarded by roleMu)
	relinkCh           chan uint64
	linkedGen, watched uint64

	// The leader fields above as last published by the main goroutine
	// (see publishPeers), for Stats: written only when they change, so
	// the hot path pays one load per field and never takes a lock.
	pubActive, pubLagging atomic.Bool
	pubAcked              atomic.Uint64
}

// waiter states.
const (
	wFree int32 = iota
	wQueued
	wTaken
	wAbandoned
)

// waiter is one Propose call in flight. Waiters are preallocated so that
// proposing allocates nothing.
type waiter struct {
	cmd   []byte
	res   []byte
	err   error
	state atomic.Int32
	done  chan struct{}
}

// Replica is one member of a replicated state machine.
type Replica struct {
	cfg      Config
	sm       StateMachine
	id       int
	ids      []int
	majority int
	peers    []*peer // by id; nil for self and absent ids
	others   []*peer // every peer, by id order

	reg     *registry.Registry
	dev     verbs.Device
	pdRep   verbs.PD
	pdBg    verbs.PD
	logMR   verbs.MR // header + ring
	scratch verbs.MR // prepare: copies of peers' headers and rings (PD_rep)
	ctlMR   verbs.MR
	bgBuf   verbs.MR // status READ destinations (PD_bg)
	repCQ   verbs.CQ
	bgCQ    verbs.CQ

	// Background goroutine.
	bgComps  [32]verbs.Completion
	lastTick time.Time // the detector's previous tick (see tick)

	mem  []byte // logMR.Bytes()
	ring []byte // the ring area of mem
	ctl  []byte

	waiters []waiter
	free    chan int32
	queue   chan int32
	// An idle leader under a sleeping poll mode parks instead of sleeping
	// on a timer: parked says so, and a proposer that finds it set kicks
	// it awake, so a new proposal is taken at once, not at the next tick.
	parked atomic.Bool
	kick   chan struct{}
	idle   *time.Timer // the leader loop's bound on one park

	// Read barriers on the leader (see ReadBarrier): rounds asked for and
	// rounds a majority confirmed; each waiting reader's wake channel is in
	// readWaiting, and gets a token whenever readDone moves or leadership
	// ends. (A channel closed and replaced per round would cost every
	// round an allocation.)
	readWant    atomic.Uint64
	readDone    atomic.Uint64
	readMu      sync.Mutex
	readWaiting []chan struct{}
	// readAsk numbers this replica's read-index requests, as a follower
	// (read.go); it starts at the clock, so a restarted replica's requests
	// outnumber its previous incarnation's. readOut (PD_rep) holds, per
	// follower, the source words of the leader's answers.
	readAsk atomic.Uint64
	readOut verbs.MR
	// readSent is the last request word posted, to readSentTo (guarded by
	// bgPost).
	readSent   uint64
	readSentTo int
	answers    answerWatch
	// bgPost serializes posts on the background QPs, and their
	// replacement by new links: the background goroutine posts there, and
	// so does a follower's ReadBarrier, its read-index request.
	bgPost sync.Mutex

	// mainDone is closed when the main loop has exited: it holds no
	// proposal's command any more.
	mainDone chan struct{}

	role     atomic.Int32
	leader   atomic.Int32
	proposal atomic.Uint64 // our proposal number while leading
	commit   atomic.Uint64
	applied  atomic.Uint64
	paused   atomic.Bool
	elect    atomic.Bool   // set by the detector: we should run
	request  atomic.Uint64 // our latest permission request, 0 if none
	deposed  atomic.Bool   // we granted someone else, or saw a higher claim

	// roleMu orders local appends by the leader with grants by the
	// background goroutine: once a grant to another replica is decided, the
	// leader appends nothing more to its own log.
	roleMu sync.Mutex

	// grantee is the replica that may write our log: the one we granted
	// last, or ourselves from the moment we fence our log as a candidate.
	// Written under roleMu.
	grantee atomic.Int32
	// seen is the highest log index the replay has decoded: it grows only
	// as the grantee writes our log, so the detector takes its growth for
	// a sign of the grantee's life (see tick).
	seen     atomic.Uint64
	lastSeen uint64 // background goroutine: seen at the previous tick
	grantGen uint64 // background goroutine: grants given so far
	// ignoredSince (background goroutine): since when the live leader we
	// grant has not been writing our log (see grantIgnored).
	ignoredSince time.Time
	reconCtr     uint64

	stats statsCounters
	ms    mainState

	// Catch-up (catchup.go): snapshot requests noted by the background
	// goroutine (bit p: peer p asked), control WRITEs the main goroutine
	// queues for it, the main goroutine's own transfer and the snapshot
	// regions it keeps for others' transfers.
	snapAsked atomic.Uint32
	outbox    outbox
	cu        catchUp
	snaps     []retiredSnap
	// behind: we are catching up (published in our status words; see
	// judgeBehind).
	behind atomic.Bool
	// linksMain and linksBg count links handed over and not yet adopted
	// by the main and the background goroutine (link.go).
	linksMain, linksBg atomic.Int32

	// joined: Start found the cluster running and joined it (link.go).
	joined bool

	closeOnce sync.Once
	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	closeErr  error
	// memUsers is held shared by the callers' goroutines that read the
	// replica's registered memory (the read barriers), and exclusively by
	// Close while it releases that memory: a barrier still polling its
	// header when the memory went away read an unmapped page.
	memUsers sync.RWMutex
}

// statsCounters are counters updated by the engine.
type statsCounters struct {
	entries   atomic.Uint64
	commands  atomic.Uint64
	elections atomic.Uint64
	lastFail  atomic.Int64 // ns the last fail-over took
	transfers atomic.Uint64
	// The last state transfer restored: its size and how long it took
	// from the offer to the end of Restore.
	lastTransferBytes atomic.Int64
	lastTransferNs    atomic.Int64
	// midCommand counts state transfers restored in the middle of a
	// large command (its partial assembly came along: large.go).
	midCommand atomic.Uint64
}

// Start sets up this replica's planes, exchanges endpoints with its peers
// through the registry, waits for all of them at a barrier, connects its
// queue pairs and starts its goroutines. The lowest id starts as leader.
// Close releases everything Start acquired.
func Start(ctx context.Context, cfg Config, sm StateMachine) (*Replica, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Replica{
		cfg:      cfg,
		sm:       sm,
		id:       cfg.ID,
		ids:      slices.Sorted(slices.Values(cfg.IDs)),
		majority: len(cfg.IDs)/2 + 1,
		peers:    make([]*peer, MaxReplicas+1),
		stop:     make(chan struct{}),
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.StartTimeout)
		defer cancel()
	}
	if err := r.setup(ctx); err != nil {
		r.release()
		return nil, fmt.Errorf("consensus: start replica %d: %w", r.id, err)
	}
	if err := r.initMain(); err != nil {
		r.release()
		return nil, fmt.Errorf("consensus: start replica %d: %w", r.id, err)
	}
	r.waiters = make([]waiter, cfg.MaxWaiters)
	r.free = make(chan int32, cfg.MaxWaiters)
	r.queue = make(chan int32, cfg.MaxWaiters)
	r.kick = make(chan struct{}, 1)
	r.readAsk.Store(uint64(time.Now().UnixNano()))
	r.answers.seen = make(chan struct{})
	r.mainDone = make(chan struct{})
	r.idle = time.NewTimer(time.Hour)
	r.idle.Stop()
	for i := range r.waiters {
		r.waiters[i].done = make(chan struct{}, 1)
		r.free <- int32(i)
	}
	if r.joined {
		return r.startJoined(ctx)
	}
	lead := r.ids[0]
	r.leader.Store(int32(lead))
	r.grantee.Store(int32(lead))
	// The initial configuration is request 1 of the lowest id, granted by
	// everyone at connection time (grant counter 0).
	if p := r.peers[lead]; p != nil {
		logring.PutU64(r.ctl, ctlRequestOff(lead), 1)
		logring.PutU64(r.ctl, ctlGivenOff(lead), grantWord(1, 0))
		p.lastReq = 1
	}
	if lead == r.id {
		r.request.Store(1)
		logring.PutU64(r.ctl, ctlOwnRequest, 1)
		// The initial configuration: every follower granted the lowest id
		// write access when it connected, and all logs are empty, so there
		// is nothing to recover.
		r.proposal.Store(uint64(r.id))
		logring.PutU64(r.mem, logring.OffMinProposal, uint64(r.id))
		logring.PutU64(r.ctl, ctlClaim, uint64(r.id))
		for _, p := range r.others {
			logring.PutU64(r.ctl, ctlGrantOff(p.id), grantWord(1, 0))
			p.active, p.granted = true, grantWord(1, 0)
		}
		r.role.Store(int32(Leader))
	}
	for _, p := range r.others {
		p.alive.Store(true)
	}
	if err := r.startGoroutines(); err != nil {
		return nil, err
	}
	cfg.Logger.Info("replica started", "id", r.id, "ids", r.ids, "leader", lead, "transport", cfg.Transport)
	return r, nil
}

// setup opens the device, builds both planes and connects every QP.
func (r *Replica) setup(ctx context.Context) error {
	cfg := r.cfg
	var err error
	r.reg, err = registry.Dial(ctx, registry.Config{Addr: cfg.Registry, Cluster: cfg.Cluster, ID: r.id, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	if r.dev, err = verbs.Open(cfg.Transport, cfg.Device, cfg.Verbs); err != nil {
		return err
	}
	if cfg.WrapDevice != nil {
		r.dev = cfg.WrapDevice(r.dev)
	}
	if r.pdRep, err = r.dev.AllocPD(); err != nil {
		return fmt.Errorf("replication PD: %w", err)
	}
	if r.pdBg, err = r.dev.AllocPD(); err != nil {
		return fmt.Errorf("background PD: %w", err)
	}
	if r.logMR, err = r.pdRep.AllocMR(logring.MemSize(cfg.RingSize), verbs.AccessAll); err != nil {
		return fmt.Errorf("log MR: %w", err)
	}
	if r.scratch, err = r.pdRep.AllocMR(len(r.ids)*(logring.HeaderSize+cfg.RingSize), verbs.AccessAll); err != nil {
		return fmt.Errorf("scratch MR: %w", err)
	}
	if r.readOut, err = r.pdRep.AllocMR((MaxReplicas+1)*16, verbs.AccessAll); err != nil {
		return fmt.Errorf("read-index MR: %w", err)
	}
	if r.ctlMR, err = r.pdBg.AllocMR(ctlSize, verbs.AccessAll); err != nil {
		return fmt.Errorf("control MR: %w", err)
	}
	if r.bgBuf, err = r.pdBg.AllocMR((MaxReplicas+1)*ctlSlot, verbs.AccessAll); err != nil {
		return fmt.Errorf("background buffer MR: %w", err)
	}
	r.mem, r.ctl = r.logMR.Bytes(), r.ctlMR.Bytes()
	r.ring = r.mem[logring.HeaderSize:]
	depth := 4 * len(r.ids) * (cfg.Outstanding + 64)
	if r.repCQ, err = r.dev.CreateCQ(depth); err != nil {
		return fmt.Errorf("replication CQ: %w", err)
	}
	if r.bgCQ, err = r.dev.CreateCQ(depth); err != nil {
		return fmt.Errorf("background CQ: %w", err)
	}
	for _, id := range r.ids {
		if id == r.id {
			continue
		}
		p := &peer{id: id}
		r.peers[id], r.others = p, append(r.others, p)
		if p.rep, p.bg, err = r.newQPs(id); err != nil {
			return err
		}
		rep := p.rep // repQP must never point at p.rep, which the main goroutine rewrites
		p.repQP.Store(&rep)
		p.relinkCh = make(chan uint64, 1)
		if err := r.reg.Publish(ctx, fmt.Sprintf("qp/%d->%d", r.id, id), r.endpointRecordOf(p.rep, p.bg)); err != nil {
			return err
		}
	}
	if err := r.reg.Publish(ctx, "meta", cfg.Meta); err != nil {
		return err
	}
	met, joined, err := r.meet(ctx)
	if err != nil {
		return err
	}
	for _, p := range r.others {
		// The link the queue pairs made here form: connected below at a
		// fresh start; a placeholder a linker replaces when joining.
		l := &link{rep: p.rep, bg: p.bg}
		p.cur.Store(l)
		p.mainLink.Store(l)
		p.bgLink.Store(l)
	}
	if joined {
		r.joined = true
		return nil
	}
	for _, p := range r.others {
		for _, m := range met {
			if m.ID == p.id {
				p.inc.Store(m.Incarnation)
			}
		}
		meta, err := r.reg.Lookup(ctx, p.id, "meta")
		if err != nil {
			return err
		}
		p.meta.Store(&meta.Value)
		rec, err := r.reg.Lookup(ctx, p.id, fmt.Sprintf("qp/%d->%d", p.id, r.id))
		if err != nil {
			return err
		}
		repEP, bgEP, log, ctl, err := parseEndpointRecord(rec.Value)
		if err != nil {
			return fmt.Errorf("endpoints of replica %d: %w", p.id, err)
		}
		p.log, p.ctl = log, ctl
		l := p.cur.Load()
		l.inc, l.log, l.ctl = p.inc.Load(), log, ctl
		// Read access always (a candidate reads logs during prepare);
		// write access only for the leader, initially the lowest id.
		access := verbs.AccessRemoteRead
		if p.id == r.ids[0] {
			access |= verbs.AccessRemoteWrite
		}
		if err := p.rep.Connect(repEP, access); err != nil {
			return fmt.Errorf("connect replication QP to %d: %w", p.id, err)
		}
		if err := p.bg.Connect(bgEP, verbs.AccessAll); err != nil {
			return fmt.Errorf("connect background QP to %d: %w", p.id, err)
		}
	}
	// Nobody may write before everyone has connected (a WRITE to a QP not
	// yet connected back is refused).
	if _, err := r.reg.Barrier(ctx, "connected", r.ids); err != nil {
		return err
	}
	return nil
}

// newQPs creates a replication and a background QP towards peer id,
// labelled for fault injection when the device takes labels.
func (r *Replica) newQPs(id int) (rep, bg verbs.QP, err error) {
	if rep, err = r.pdRep.CreateQP(verbs.QPConfig{SendCQ: r.repCQ}); err != nil {
		return nil, nil, fmt.Errorf("replication QP to %d: %w", id, err)
	}
	if bg, err = r.pdBg.CreateQP(verbs.QPConfig{SendCQ: r.bgCQ}); err != nil {
		rep.Close()
		return nil, nil, fmt.Errorf("background QP to %d: %w", id, err)
	}
	if l, ok := r.dev.(interface{ Label(verbs.QP, string) }); ok {
		l.Label(rep, fmt.Sprintf("rep->%d", id))
		l.Label(bg, fmt.Sprintf("bg->%d", id))
	}
	return rep, bg, nil
}

// endpointRecordOf is what a peer needs to reach us through the queue
// pairs rep and bg: both QP endpoints and both MRs, length-prefixed.
func (r *Replica) endpointRecordOf(rep, bg verbs.QP) []byte {
	var b []byte
	for _, ep := range [][]byte{rep.Endpoint(), bg.Endpoint()} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ep)))
		b = append(b, ep...)
	}
	for _, m := range []verbs.MR{r.logMR, r.ctlMR} {
		b = binary.LittleEndian.AppendUint64(b, m.Addr())
		b = binary.LittleEndian.AppendUint32(b, m.RKey())
	}
	return b
}

func parseEndpointRecord(b []byte) (rep, bg []byte, log, ctl verbs.Remote, err error) {
	var eps [2][]byte
	for i := range eps {
		if len(b) < 4 {
			return nil, nil, log, ctl, errors.New("truncated record")
		}
		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 4+n {
			return nil, nil, log, ctl, errors.New("truncated endpoint")
		}
		eps[i], b = b[4:4+n], b[4+n:]
	}
	if len(b) != 24 {
		return nil, nil, log, ctl, fmt.Errorf("memory descriptors of %d bytes, want 24", len(b))
	}
	log = verbs.Remote{Addr: binary.LittleEndian.Uint64(b), RKey: binary.LittleEndian.Uint32(b[8:])}
	ctl = verbs.Remote{Addr: binary.LittleEndian.Uint64(b[12:]), RKey: binary.LittleEndian.Uint32(b[20:])}
	return eps[0], eps[1], log, ctl, nil
}

// release closes everything setup acquired, in reverse order. Closing the
// device releases its PDs, MRs, CQs, QPs and shm files.
func (r *Replica) release() error {
	var errs []error
	if r.dev != nil {
		if err := r.dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close device: %w", err))
		}
	}
	if r.reg != nil {
		if err := r.reg.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close registry: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the replica's goroutines, fails pending proposals with
// ErrClosed and releases its queue pairs, memory and registry connection.
// It says no goodbye: to its peers the replica looks crashed.
func (r *Replica) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		r.wg.Wait()
		r.memUsers.Lock() // the barriers see closed or stop and return
		r.closeErr = r.release()
		r.memUsers.Unlock()
		r.cfg.Logger.Info("replica closed", "id", r.id)
	})
	return r.closeErr
}

// ID returns this replica's id.
func (r *Replica) ID() int { return r.id }

// Leader returns the id of the replica this one believes leads, 0 if none.
//
// The leader word keeps our own id from the moment we win until the
// detector sees another claimant, so for a while after stepping down (a
// lost majority, a revoked follower) it still names us. A replica that does
// not lead never reports itself: it knows no leader until the detector finds
// one, and may well win the next election itself. Nor does it report a
// leader its detector suspects: clients sent there would find it dead.
func (r *Replica) Leader() int {
	l := int(r.leader.Load())
	if l == r.id {
		if Role(r.role.Load()) != Leader {
			return 0
		}
		return l
	}
	if l <= 0 || l >= len(r.peers) || r.peers[l] == nil || !r.peers[l].alive.Load() {
		return 0 // never name a replica we do not see alive
	}
	return l
}

// notLeader is the error for a proposal this replica cannot take or
// complete. It is built on paths where the role may still read Leader (a
// step-down about to withdraw it, a deposed append), so it drops our own id
// outright: whoever fails a proposal with ErrNotLeader is not leading.
func (r *Replica) notLeader() error {
	l := r.Leader()
	if l == r.id {
		l = 0
	}
	return ErrNotLeader{Leader: l}
}

// CatchingUp reports whether this replica is catching up (see
// Stats.Behind): its state misses committed entries, so it must not serve
// reads, stale or not, until a leader has taken it back.
func (r *Replica) CatchingUp() bool { return r.behind.Load() }

// Role returns what this replica currently does.
func (r *Replica) Role() Role { return Role(r.role.Load()) }

// Pause makes the replica behave like a hung process: its heartbeat stops,
// its loops idle and Propose fails with ErrPaused, until Resume.
func (r *Replica) Pause() {
	if !r.paused.Swap(true) {
		r.cfg.Logger.Info("paused", "id", r.id)
	}
}

// Resume undoes Pause.
func (r *Replica) Resume() {
	if r.paused.Swap(false) {
		r.cfg.Logger.Info("resumed", "id", r.id)
	}
}

// idlePaused is how a paused replica's loops wait: asleep, as a hung
// process's threads would be. Polling instead would take the cores the
// surviving replicas need to take over, which on a machine with fewer
// cores than replicas is most of the fail-over time it is paused to
// measure. Resume is noticed within the sleep.
func (r *Replica) idlePaused() { time.Sleep(100 * time.Microsecond) }

// Paused reports whether the replica is paused.
func (r *Replica) Paused() bool { return r.paused.Load() }

// PeerStats is a replica's view of one peer.
type PeerStats struct {
	ID      int
	Alive   bool   // its heartbeat moves
	Active  bool   // (leader) it holds our permission and takes our writes
	Acked   uint64 // (leader) highest index it completed
	Applied uint64 // the applied index it last published
	Lagging bool   // (leader) fell behind the reuse point: being caught up
	Behind  bool   // it says it is catching up
	// TakenIn counts the copies of this replica's log it was sent while
	// this replica led: at an election, on a late grant, after it stalled,
	// after a reset of the link between them dropped WRITEs in flight.
	TakenIn uint64
}

// Stats is a snapshot of a replica's state.
type Stats struct {
	ID        int
	Role      Role
	Leader    int
	Proposal  uint64 // the proposal number we lead with (0 unless leading)
	Commit    uint64
	Applied   uint64
	Entries   uint64 // entries appended as leader
	Commands  uint64 // commands proposed as leader
	Elections uint64 // campaigns won
	Transfers uint64 // state transfers restored (as a lagging follower)
	// LastTransferBytes and LastTransfer are the size of the last state
	// transfer and the time from its offer to the end of its Restore.
	LastTransferBytes int64
	LastTransfer      time.Duration
	// Behind: this replica is catching up (it restarted into a running
	// cluster, or the leader left it out for falling behind its ring): it
	// misses committed entries, serves no reads and runs in no election.
	Behind     bool
	LastFailMs float64
	Peers      []PeerStats
}

// Stats returns a snapshot of the replica's state. The per-peer leader
// fields (Active, Acked, Lagging) are what the leader loop last published,
// once per turn, each field read on its own: they may lag the loop by a turn
// and are not one atomic snapshot; they are zero unless this replica leads.
func (r *Replica) Stats() Stats {
	s := Stats{
		ID:                r.id,
		Role:              r.Role(),
		Leader:            r.Leader(),
		Commit:            r.commit.Load(),
		Applied:           r.applied.Load(),
		Entries:           r.stats.entries.Load(),
		Commands:          r.stats.commands.Load(),
		Elections:         r.stats.elections.Load(),
		Transfers:         r.stats.transfers.Load(),
		LastTransferBytes: r.stats.lastTransferBytes.Load(),
		LastTransfer:      time.Duration(r.stats.lastTransferNs.Load()),
		Behind:            r.behind.Load(),
		LastFailMs:        float64(r.stats.lastFail.Load()) / 1e6,
	}
	if s.Role == Leader {
		s.Proposal = r.proposal.Load()
	}
	for _, p := range r.others {
		ps := PeerStats{ID: p.id, Alive: p.alive.Load(), Applied: p.applied.Load(), Behind: p.behind.Load(), TakenIn: p.takenIn.Load()}
		if s.Role == Leader {
			ps.Active, ps.Acked, ps.Lagging = p.pubActive.Load(), p.pubAcked.Load(), p.pubLagging.Load()
		}
		s.Peers = append(s.Peers, ps)
	}
	return s
}
