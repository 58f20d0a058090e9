//go:build linux

package shm

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// slotSize is the size of a QP control block in the QP table.
const slotSize = 128

// slot is a QP's control block in shared memory (see the package doc). Its
// owner writes everything but fence; the connected peer writes fence.
type slot struct {
	word     atomic.Uint64 // generation<<32 | QPState
	access   atomic.Uint32 // rights the peer has through the QP
	pd       atomic.Uint32 // the QP's PD id
	peerNode atomic.Uint64 // the connected peer's node
	peerQP   atomic.Uint64 // the connected peer's num<<32 | generation
	_        [32]byte
	fence    atomic.Uint64 // generation<<32 | WRITEs in flight into the QP's PD
	_        [56]byte
}

// Compile-time check that slot fills exactly slotSize bytes.
var _ [slotSize - unsafe.Sizeof(slot{})]byte
var _ [unsafe.Sizeof(slot{}) - slotSize]byte

func makeWord(gen uint32, st verbs.QPState) uint64 { return uint64(gen)<<32 | uint64(st) }
func wordGen(w uint64) uint32                      { return uint32(w >> 32) }
func wordState(w uint64) verbs.QPState             { return verbs.QPState(uint8(w)) }

// enter counts a WRITE in flight if the slot is still in generation gen.
func (s *slot) enter(gen uint32) bool {
	for {
		f := s.fence.Load()
		if uint32(f>>32) != gen {
			return false
		}
		if s.fence.CompareAndSwap(f, f+1) {
			return true
		}
	}
}

// exit undoes enter, unless the owner has moved on to a new generation,
// which starts its count at zero.
func (s *slot) exit(gen uint32) {
	for {
		f := s.fence.Load()
		if uint32(f>>32) != gen || s.fence.CompareAndSwap(f, f-1) {
			return
		}
	}
}

// Endpoint encoding: magic, version, 3 reserved bytes, then little-endian
// fabric hash, node id, QP number and generation.
const (
	endpointLen     = 32
	endpointVersion = 1
)

var endpointMagic = [4]byte{'g', 's', 'h', 'm'}

type endpoint struct {
	fabric, node uint64
	num, gen     uint32
}

func (e endpoint) encode() []byte {
	b := make([]byte, endpointLen)
	copy(b, endpointMagic[:])
	b[4] = endpointVersion
	binary.LittleEndian.PutUint64(b[8:], e.fabric)
	binary.LittleEndian.PutUint64(b[16:], e.node)
	binary.LittleEndian.PutUint32(b[24:], e.num)
	binary.LittleEndian.PutUint32(b[28:], e.gen)
	return b
}

func parseEndpoint(b []byte) (endpoint, error) {
	if len(b) != endpointLen {
		return endpoint{}, fmt.Errorf("%d bytes, want %d: %w", len(b), endpointLen, verbs.ErrBadEndpoint)
	}
	if [4]byte(b[:4]) != endpointMagic || b[4] != endpointVersion {
		return endpoint{}, fmt.Errorf("not an shm endpoint (version %d): %w", endpointVersion, verbs.ErrBadEndpoint)
	}
	e := endpoint{
		fabric: binary.LittleEndian.Uint64(b[8:]),
		node:   binary.LittleEndian.Uint64(b[16:]),
		num:    binary.LittleEndian.Uint32(b[24:]),
		gen:    binary.LittleEndian.Uint32(b[28:]),
	}
	if e.node == 0 || e.num == 0 {
		return endpoint{}, fmt.Errorf("zero node or QP number: %w", verbs.ErrBadEndpoint)
	}
	return e, nil
}

type qp struct {
	dev       *device
	pd        *pd
	cq        *cq
	num       uint32
	slot      *slot
	maxSendWR int
	maxInline int

	ctlMu  sync.Mutex // serializes Connect, SetAccess, Reset and Close
	postMu sync.Mutex // serializes posts with connection changes
	closed atomic.Bool

	// Under postMu; written with ctlMu held too, so ctlMu holders may
	// read them.
	sqUsed int // unsignaled successes not yet released by a completion
	conn   *conn
}

// conn is a QP's connection to its peer QP, as the initiator uses it.
type conn struct {
	dev    *device
	peer   *peer
	target *slot  // the peer QP's control block; nil if the peer was gone
	gen    uint32 // the peer QP's generation we connected to
	node   uint64 // our node, as the target names its peer
	self   uint64 // our num<<32 | generation, likewise

	// Remote MRs by rkey: a few recent ones, then all touched ones.
	cache  [4]cachedMR
	victim int
	mrs    map[uint32]*remoteMR
}

type cachedMR struct {
	rkey uint32
	m    *remoteMR
}

// CreateQP makes a QP in RESET, in a fresh generation of a free slot.
func (p *pd) CreateQP(cfg verbs.QPConfig) (verbs.QP, error) {
	if cfg.SendCQ == nil {
		return nil, fmt.Errorf("shm: create qp: nil SendCQ: %w", verbs.ErrInvalidArgument)
	}
	c, ok := cfg.SendCQ.(*cq)
	if !ok || c == nil || c.dev != p.dev {
		return nil, fmt.Errorf("shm: create qp: SendCQ %T: %w", cfg.SendCQ, verbs.ErrForeignObject)
	}
	if cfg.MaxSendWR < 0 || cfg.MaxInline < 0 {
		return nil, fmt.Errorf("shm: create qp: MaxSendWR %d, MaxInline %d: %w", cfg.MaxSendWR, cfg.MaxInline, verbs.ErrInvalidArgument)
	}
	if cfg.MaxSendWR == 0 {
		cfg.MaxSendWR = verbs.DefaultMaxSendWR
	}
	if cfg.MaxInline == 0 {
		cfg.MaxInline = verbs.DefaultMaxInline
	}
	// The copy is synchronous, so inline needs no buffer and any size
	// up to the message limit is honoured.
	cfg.MaxInline = min(cfg.MaxInline, verbs.MaxMessageSize)

	d := p.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || p.closed || c.closed.Load() {
		return nil, fmt.Errorf("shm: create qp in pd %d: %w", p.id, verbs.ErrClosed)
	}
	i, ok := d.allocSlot()
	if !ok {
		return nil, fmt.Errorf("shm: create qp: device %s has all %d QPs in use", d.name, qpSlots)
	}
	s := slotAt(d.qpTable, i)
	gen := wordGen(s.word.Load()) + 1
	s.access.Store(0)
	s.pd.Store(p.id)
	s.peerNode.Store(0)
	s.peerQP.Store(0)
	s.fence.Store(uint64(gen) << 32)
	s.word.Store(makeWord(gen, verbs.StateReset))
	q := &qp{
		dev:       d,
		pd:        p,
		cq:        c,
		num:       i + 1,
		slot:      s,
		maxSendWR: cfg.MaxSendWR,
		maxInline: cfg.MaxInline,
	}
	p.qps[q] = struct{}{}
	return q, nil
}

func (q *qp) Num() uint32 { return q.num }

func (q *qp) State() verbs.QPState {
	if q.closed.Load() {
		return verbs.StateReset
	}
	return wordState(q.slot.word.Load())
}

func (q *qp) Access() verbs.Access {
	if q.closed.Load() {
		return 0
	}
	return verbs.Access(q.slot.access.Load())
}

// Endpoint names the QP in its current generation; it changes after Reset.
// A closed QP has none (nil, which Connect refuses).
func (q *qp) Endpoint() []byte {
	if q.closed.Load() {
		return nil
	}
	return endpoint{
		fabric: q.dev.fabric,
		node:   q.dev.node,
		num:    q.num,
		gen:    wordGen(q.slot.word.Load()),
	}.encode()
}

// Connect maps the peer's QP table (once per peer node), starts watching
// its process and moves the QP to RTS. It does not wait for the peer: as
// on a NIC, operations fail later if the peer never connects back.
func (q *qp) Connect(remote []byte, access verbs.Access) error {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("shm: connect qp %d: %w", q.num, verbs.ErrClosed)
	}
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("shm: connect qp %d with access %v: %w", q.num, access, verbs.ErrInvalidArgument)
	}
	ep, err := parseEndpoint(remote)
	if err != nil {
		return fmt.Errorf("shm: connect qp %d: %w", q.num, err)
	}
	if ep.fabric != q.dev.fabric {
		return fmt.Errorf("shm: connect qp %d: endpoint from another fabric than %s: %w", q.num, q.dev.dir, verbs.ErrBadEndpoint)
	}
	w := q.slot.word.Load()
	if st := wordState(w); st != verbs.StateReset {
		return fmt.Errorf("shm: connect qp %d in state %v: %w", q.num, st, verbs.ErrQPState)
	}
	p, err := q.dev.acquirePeer(ep.node)
	if err != nil {
		return fmt.Errorf("shm: connect qp %d to node %016x: %w", q.num, ep.node, err)
	}
	c := &conn{
		dev:  q.dev,
		peer: p,
		gen:  ep.gen,
		node: q.dev.node,
		self: uint64(q.num)<<32 | uint64(wordGen(w)),
		mrs:  map[uint32]*remoteMR{},
	}
	if p.table != nil {
		if c.target = p.slot(ep.num); c.target == nil {
			q.dev.releasePeer(p)
			return fmt.Errorf("shm: connect qp %d: peer QP %d out of range: %w", q.num, ep.num, verbs.ErrBadEndpoint)
		}
	}
	// The peer checks its identity against these before trusting the
	// state word, so they are in place before RTS is.
	q.slot.peerNode.Store(ep.node)
	q.slot.peerQP.Store(uint64(ep.num)<<32 | uint64(ep.gen))
	q.slot.access.Store(uint32(access))
	q.postMu.Lock()
	q.conn = c
	q.sqUsed = 0
	q.slot.word.Store(makeWord(wordGen(w), verbs.StateRTS))
	q.postMu.Unlock()
	return nil
}

// SetAccess changes the peer's rights; without AccessRemoteWrite it is the
// revoke fence: it returns once no WRITE of the peer is in flight.
func (q *qp) SetAccess(access verbs.Access) error {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("shm: set access on qp %d: %w", q.num, verbs.ErrClosed)
	}
	if access&^verbs.AccessAll != 0 {
		return fmt.Errorf("shm: set access %v on qp %d: %w", access, q.num, verbs.ErrInvalidArgument)
	}
	if st := wordState(q.slot.word.Load()); st != verbs.StateRTR && st != verbs.StateRTS {
		return fmt.Errorf("shm: set access on qp %d in state %v: %w", q.num, st, verbs.ErrQPState)
	}
	// Store, then drain: a writer that incremented the fence before
	// this store is waited for, and one that increments after it sees
	// the new access (both sides are sequentially consistent atomics).
	q.slot.access.Store(uint32(access))
	if access&verbs.AccessRemoteWrite != 0 {
		return nil
	}
	if !q.drain() {
		return fmt.Errorf("shm: set access %v on qp %d: access revoked, but the peer still has a write in flight after %v: %w",
			access, q.num, q.dev.opts.FenceTimeout, verbs.ErrFenceTimeout)
	}
	return nil
}

// drain waits until no WRITE into the QP is in flight, the peer is dead,
// or FenceTimeout passes; it reports whether the fence is clear. ctlMu is
// held.
func (q *qp) drain() bool {
	var dead *atomic.Bool
	if q.conn != nil {
		dead = &q.conn.peer.dead
	}
	idle := func() bool {
		return uint32(q.slot.fence.Load()) == 0 || (dead != nil && dead.Load())
	}
	if idle() {
		return true
	}
	return poll.Until(poll.Sleep, time.Now().Add(q.dev.opts.FenceTimeout), idle)
}

func (q *qp) Reset() error {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("shm: reset qp %d: %w", q.num, verbs.ErrClosed)
	}
	return q.reset(true)
}

// reset moves the QP to RESET in a new generation: the old connection's
// writes are refused from the state store on, and (with drain) waited for
// before the fence count restarts at zero. ctlMu is held.
func (q *qp) reset(drain bool) error {
	gen := wordGen(q.slot.word.Load()) + 1
	q.slot.word.Store(makeWord(gen, verbs.StateReset))
	q.slot.access.Store(0)
	var err error
	if drain && !q.drain() {
		err = fmt.Errorf("shm: reset qp %d: the old peer still has a write in flight after %v: %w",
			q.num, q.dev.opts.FenceTimeout, verbs.ErrFenceTimeout)
	}
	q.postMu.Lock()
	q.slot.fence.Store(uint64(gen) << 32)
	q.slot.peerNode.Store(0)
	q.slot.peerQP.Store(0)
	c := q.conn
	q.conn = nil
	q.sqUsed = 0
	q.postMu.Unlock()
	if c != nil {
		q.dev.releasePeer(c.peer)
	}
	return err
}

func (q *qp) Close() error { return q.close(true) }

func (q *qp) close(drain bool) error {
	q.ctlMu.Lock()
	defer q.ctlMu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("shm: close qp %d: %w", q.num, verbs.ErrClosed)
	}
	err := q.reset(drain)
	q.postMu.Lock()
	q.closed.Store(true)
	q.postMu.Unlock()
	d := q.dev
	d.mu.Lock()
	delete(q.pd.qps, q)
	d.freeSlots = append(d.freeSlots, q.num-1)
	d.mu.Unlock()
	return err
}

func (q *qp) PostWrite(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpWrite, wrID, local, localOff, length, remote, flags)
}

func (q *qp) PostRead(wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	return q.post(verbs.OpRead, wrID, local, localOff, length, remote, flags)
}

// post validates a work request, executes it on the spot and produces its
// completion. The success path makes no system call and allocates nothing.
func (q *qp) post(op verbs.Opcode, wrID uint64, local verbs.MR, localOff, length int, remote verbs.Remote, flags verbs.SendFlags) error {
	q.postMu.Lock()
	defer q.postMu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("shm: post %v on qp %d: %w", op, q.num, verbs.ErrClosed)
	}
	w := q.slot.word.Load()
	st := wordState(w)
	if st != verbs.StateRTS && st != verbs.StateError {
		return fmt.Errorf("shm: post %v on qp %d in state %v: %w", op, q.num, st, verbs.ErrQPState)
	}
	lm, ours := local.(*mr)
	if local == nil || (ours && lm == nil) {
		return fmt.Errorf("shm: post %v on qp %d: nil local MR: %w", op, q.num, verbs.ErrInvalidArgument)
	}
	size := 0
	if ours {
		size = lm.size
	} else {
		size = len(local.Bytes())
	}
	if length < 0 || length > verbs.MaxMessageSize || localOff < 0 || localOff > size-length {
		return fmt.Errorf("shm: post %v on qp %d: %d bytes at offset %d of a %d-byte MR: %w",
			op, q.num, length, localOff, size, verbs.ErrInvalidArgument)
	}
	if flags&verbs.Inline != 0 && length > q.maxInline {
		return fmt.Errorf("shm: post %v on qp %d: %d bytes inline, max %d: %w", op, q.num, length, q.maxInline, verbs.ErrInvalidArgument)
	}
	if q.sqUsed >= q.maxSendWR {
		return fmt.Errorf("shm: post %v on qp %d: %d requests outstanding: %w", op, q.num, q.sqUsed, verbs.ErrQueueFull)
	}
	cq := q.cq
	if cq.closed.Load() {
		return fmt.Errorf("shm: post %v on qp %d: cq: %w", op, q.num, verbs.ErrClosed)
	}
	if !cq.reserve() {
		return fmt.Errorf("shm: post %v on qp %d: %w", op, q.num, verbs.ErrCQFull)
	}

	status := verbs.StatusFlushError
	if st == verbs.StateRTS {
		if !ours {
			lm = nil // another provider's MR: not registered here
		}
		status = q.execute(op, lm, localOff, length, remote)
	}
	q.sqUsed++
	if status == verbs.StatusSuccess && flags&verbs.Signaled == 0 {
		cq.unreserve()
		return nil
	}
	cq.push(verbs.Completion{WRID: wrID, QPNum: q.num, Bytes: uint32(length), Status: status, Op: op})
	q.sqUsed = 0
	if status != verbs.StatusSuccess && st == verbs.StateRTS {
		// A CAS, not a store: Reset may have moved the QP on meanwhile.
		q.slot.word.CompareAndSwap(w, makeWord(wordGen(w), verbs.StateError))
	}
	return nil
}

// execute performs a request on an RTS QP and returns its status.
func (q *qp) execute(op verbs.Opcode, lm *mr, localOff, length int, remote verbs.Remote) verbs.Status {
	if lm == nil || lm.pd != q.pd || lm.closed.Load() {
		return verbs.StatusLocalProtectionError
	}
	if op == verbs.OpRead && lm.access&verbs.AccessLocalWrite == 0 {
		return verbs.StatusLocalProtectionError
	}
	c := q.conn
	if c.peer.dead.Load() {
		return verbs.StatusRetryExceeded
	}
	buf := lm.buf[localOff : localOff+length]
	if op == verbs.OpWrite {
		return c.write(buf, remote)
	}
	return c.read(buf, remote)
}

// write copies src to the peer, inside the fence of the target QP.
func (c *conn) write(src []byte, r verbs.Remote) verbs.Status {
	t := c.target
	if !t.enter(c.gen) {
		return verbs.StatusRetryExceeded
	}
	st := c.check(t, verbs.AccessRemoteWrite)
	// Zero-length requests carry no address: the rkey is not checked,
	// as on InfiniBand.
	if st == verbs.StatusSuccess && len(src) > 0 {
		var dst []byte
		if dst, st = c.window(t, r, len(src), verbs.AccessRemoteWrite); st == verbs.StatusSuccess {
			copy(dst, src)
		}
	}
	t.exit(c.gen)
	return st
}

// read copies from the peer into dst; reads need no fence.
func (c *conn) read(dst []byte, r verbs.Remote) verbs.Status {
	t := c.target
	st := c.check(t, verbs.AccessRemoteRead)
	if st == verbs.StatusSuccess && len(dst) > 0 {
		var src []byte
		if src, st = c.window(t, r, len(dst), verbs.AccessRemoteRead); st == verbs.StatusSuccess {
			copy(dst, src)
		}
	}
	return st
}

// check validates the target QP: same generation, ready, connected to us,
// and granting need.
func (c *conn) check(t *slot, need verbs.Access) verbs.Status {
	w := t.word.Load()
	if wordGen(w) != c.gen {
		return verbs.StatusRetryExceeded
	}
	if st := wordState(w); st != verbs.StateRTR && st != verbs.StateRTS {
		return verbs.StatusRetryExceeded
	}
	if t.peerNode.Load() != c.node || t.peerQP.Load() != c.self {
		return verbs.StatusRetryExceeded
	}
	if verbs.Access(t.access.Load())&need == 0 {
		return verbs.StatusRemoteAccessError
	}
	return verbs.StatusSuccess
}

// window returns the n bytes of remote memory at r, checked against the MR
// the target registered under r.RKey.
func (c *conn) window(t *slot, r verbs.Remote, n int, need verbs.Access) ([]byte, verbs.Status) {
	m := c.lookup(r.RKey)
	if m == nil {
		return nil, verbs.StatusRemoteAccessError
	}
	if m.hdr.valid.Load() == 0 {
		c.evict(r.RKey)
		return nil, verbs.StatusRemoteAccessError
	}
	if m.pd != t.pd.Load() || m.access&need == 0 {
		return nil, verbs.StatusRemoteAccessError
	}
	size := uint64(len(m.data))
	off := r.Addr - m.base
	if r.Addr < m.base || off > size || uint64(n) > size-off {
		return nil, verbs.StatusRemoteAccessError
	}
	return m.data[off : off+uint64(n)], verbs.StatusSuccess
}

// lookup finds a remote MR by rkey, mapping it on first use.
func (c *conn) lookup(rkey uint32) *remoteMR {
	if rkey == 0 {
		return nil
	}
	for i := range c.cache {
		if c.cache[i].rkey == rkey {
			return c.cache[i].m
		}
	}
	m := c.mrs[rkey]
	if m == nil {
		if m = c.peer.mapMR(c.dev.dir, rkey); m == nil {
			return nil
		}
		c.mrs[rkey] = m
	}
	c.cache[c.victim] = cachedMR{rkey: rkey, m: m}
	c.victim = (c.victim + 1) % len(c.cache)
	return m
}

// evict forgets a deregistered MR, so that a later MR with the same rkey
// is mapped afresh.
func (c *conn) evict(rkey uint32) {
	for i := range c.cache {
		if c.cache[i].rkey == rkey {
			c.cache[i] = cachedMR{}
		}
	}
	delete(c.mrs, rkey)
}
