package memcache

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultMaxBytes is the default memory limit of a Store, memcached's -m 64.
const DefaultMaxBytes = 64 << 20

// itemOverhead is what an item is charged beyond its key and value.
const itemOverhead = 64

// Store is an in-memory item table with memcached semantics: flags,
// expiration, CAS values, add/replace/append/prepend/cas rules, incr/decr,
// touch and delayed flush_all. It is safe for concurrent use: commands that
// change items hold its lock alone, reads share it.
//
// # Determinism
//
// A Store is a deterministic state machine of the commands that change it,
// so that replicas applying the same commands at the same times hold the
// same items, the same CAS values and the same memory use:
//
//   - every command takes the time from its caller (Unix nanoseconds)
//     instead of reading a clock, so a replicated store applies the
//     leader's time;
//   - CAS values come from a counter that only writes advance;
//   - reads never change anything: an expired item a read finds is reported
//     missing but stays until a write reclaims it (a write to its key, or
//     the eviction below);
//   - eviction follows write order, not reads.
//
// # Memory and eviction
//
// Memory is bounded by the limit given to NewStore: keys, values and a
// fixed overhead per item. When a write would pass it, the store takes
// items off the front of its write order (the items written longest ago;
// touch does not move an item) until the new one fits: dead items are
// reclaimed, and, when eviction is on, live ones are evicted, as memcached
// evicts with its default -M off. memcached evicts by least recent use,
// which reads update; reads are not replicated, so that order would differ
// between replicas, and this store evicts the least recently written item
// instead. With eviction off a write that does not fit, after every dead
// item is reclaimed, fails with ErrOutOfMemory (memcached -M).
//
// Items are changed in place under the lock; readers copy what they return
// while they hold it.
type Store struct {
	mu       sync.RWMutex
	m        map[string]*item
	order    []orderEntry // write order, oldest first, from head
	head     int
	cas      uint64
	used     int64
	maxBytes int64
	evict    bool
	arena    *arena // nil: values on the heap (see UseHugePages)
	// oldestLive is the time set by a delayed flush_all (Unix ns, 0 = none):
	// once reached, items stored before it are dead.
	oldestLive int64

	stats storeStats
}

// item is one stored item. Its key string is allocated once, when the key
// is first stored, and shared by the map and the write order.
type item struct {
	key    string
	value  []byte
	flags  uint32
	exp    int64 // Unix ns when the item dies; 0 never
	cas    uint64
	stored int64 // Unix ns of the last write, for delayed flush_all
	// seq identifies the write that made the item what it is, in the write
	// order: the CAS value it got, unless a meta command chose another one.
	seq uint64
	// meta is the item's meta-protocol state (meta.go): stale, win token
	// sent, binary key. Part of snapshots.
	meta uint8
	// acc is what reads record for meta commands (meta.go): per replica,
	// atomic, not in snapshots.
	acc itemAccess
}

// orderEntry places one write of an item in the write order. An entry is
// current while the map still holds that item from that write (seq); later
// writes leave stale entries behind, dropped when met or compacted.
type orderEntry struct {
	it  *item
	seq uint64
}

// storeStats counts what memcached's stats report, for one replica: reads
// are counted where they are served. Atomic, since reads share the lock.
type storeStats struct {
	cmdGet, cmdSet, cmdTouch, cmdFlush           atomic.Uint64
	getHits, getMisses, getExpired, getFlushed   atomic.Uint64
	deleteHits, deleteMisses                     atomic.Uint64
	incrHits, incrMisses, decrHits, decrMisses   atomic.Uint64
	casHits, casMisses, casBadval                atomic.Uint64
	touchHits, touchMisses                       atomic.Uint64
	totalItems, evictions, reclaimed, oomRefused atomic.Uint64
}

// NewStore returns an empty store holding at most maxBytes
// (DefaultMaxBytes if maxBytes <= 0). With evict, a full store evicts the
// items written longest ago; without, it refuses writes that do not fit.
func NewStore(maxBytes int64, evict bool) *Store {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Store{maxBytes: maxBytes, evict: evict, m: make(map[string]*item)}
}

// Bytes returns the memory charged to the items held, expired ones not yet
// reclaimed included.
func (s *Store) Bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.used
}

// Len returns the number of items held, expired ones not yet reclaimed
// included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// ExpiryTime converts a protocol exptime into the Unix-ns time the item dies,
// following memcached: 0 never (returns 0), negative already dead, up to
// RelativeExptimeMax seconds from now, anything larger an absolute Unix time.
func ExpiryTime(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return math.MinInt64
	case exptime <= RelativeExptimeMax:
		return now + exptime*1e9
	default:
		return exptime * 1e9
	}
}

func (s *Store) live(it *item, now int64) bool {
	if it.exp != 0 && now >= it.exp {
		return false
	}
	if ol := s.oldestLive; ol != 0 && now >= ol && it.stored < ol {
		return false
	}
	return true
}

func itemSize(keyLen, valueLen int) int64 {
	return int64(keyLen + valueLen + itemOverhead)
}

// peek returns the live item under key without changing anything: the
// read path. The lock must be held, shared or not.
func (s *Store) peek(key []byte, now int64) *item {
	it := s.m[string(key)]
	if it == nil || !s.live(it, now) {
		return nil
	}
	return it
}

// lookup returns the live item under key, reclaiming a dead one: the write
// path. The lock must be held exclusively.
func (s *Store) lookup(key []byte, now int64) *item {
	it := s.m[string(key)]
	if it == nil {
		return nil
	}
	if !s.live(it, now) {
		s.drop(it)
		s.stats.reclaimed.Add(1)
		return nil
	}
	return it
}

// unlink removes it from the map; its order entries go stale. Its value
// stays its own (put reuses it); drop is for items that go.
func (s *Store) unlink(it *item) {
	delete(s.m, it.key)
	s.used -= itemSize(len(it.key), len(it.value))
}

// drop removes it for good, its value's memory freed.
func (s *Store) drop(it *item) {
	s.unlink(it)
	if s.arena != nil {
		s.arena.release(it.value)
	}
	it.value = nil
}

// UseHugePages keeps the store's values in slabs of huge pages outside
// Go's heap (see arena), for a long-lived store that grows: a server's.
// Call it before the first write.
func (s *Store) UseHugePages() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.arena == nil {
		s.arena = newArena(s.maxBytes)
		runtime.AddCleanup(s, func(a *arena) { a.unmap() }, s.arena)
	}
}

// link puts it in the map and at the back of the write order.
func (s *Store) link(it *item) {
	s.m[it.key] = it
	s.used += itemSize(len(it.key), len(it.value))
	s.pushOrder(it)
}

func (s *Store) pushOrder(it *item) {
	if s.head > 0 && len(s.order) == cap(s.order) && len(s.order)-s.head < 2*len(s.m)+64 {
		// Stale entries pile up behind rewrites: squeeze them out in place
		// rather than grow, once the array is full.
		s.compactOrder()
	}
	s.order = append(s.order, orderEntry{it: it, seq: it.seq})
}

func (s *Store) current(e orderEntry) bool {
	return e.it != nil && e.it.seq == e.seq && s.m[e.it.key] == e.it
}

// compactOrder drops stale entries, keeping the order of the current ones,
// in the same array.
func (s *Store) compactOrder() {
	n := 0
	for _, e := range s.order[s.head:] {
		if s.current(e) {
			s.order[n] = e
			n++
		}
	}
	clear(s.order[n:])
	s.order = s.order[:n]
	s.head = 0
}

// makeRoom frees memory, oldest writes first, until need more bytes fit.
// It reports whether they do.
func (s *Store) makeRoom(need int64, now int64) bool {
	if s.used+need <= s.maxBytes {
		return true
	}
	if !s.evict {
		// Only dead items may go, wherever they are in the order.
		for _, it := range s.m {
			if !s.live(it, now) {
				s.drop(it)
				s.stats.reclaimed.Add(1)
			}
		}
		return s.used+need <= s.maxBytes
	}
	for s.used+need > s.maxBytes && s.head < len(s.order) {
		e := s.order[s.head]
		s.order[s.head] = orderEntry{}
		s.head++
		if !s.current(e) {
			continue
		}
		if s.live(e.it, now) {
			s.stats.evictions.Add(1)
		} else {
			s.stats.reclaimed.Add(1)
		}
		s.drop(e.it)
	}
	if s.head == len(s.order) {
		s.order, s.head = s.order[:0], 0
	}
	return s.used+need <= s.maxBytes
}

// put stores value under key as a new write (a new CAS value, at the back
// of the write order), replacing old (the live item under key, or nil). It
// reuses old's memory where it can. It returns the stored item, or
// ErrOutOfMemory, in which case old stays.
func (s *Store) put(key []byte, old *item, value []byte, flags uint32, exp, now int64) (*item, error) {
	it := old
	if old != nil {
		s.unlink(old)
	}
	if !s.makeRoom(itemSize(len(key), len(value)), now) {
		if old != nil {
			s.m[old.key] = old
			s.used += itemSize(len(old.key), len(old.value))
		}
		s.stats.oomRefused.Add(1)
		return nil, ErrOutOfMemory
	}
	if it == nil {
		if it = s.m[string(key)]; it != nil {
			// A dead item not yet reclaimed: reuse it.
			s.unlink(it)
		} else {
			it = &item{key: string(key)}
		}
	}
	if cap(it.value) >= len(value) && cap(it.value) <= 2*len(value)+64 {
		it.value = append(it.value[:0], value...)
	} else {
		// Copied before the old value is freed: value may be part of it.
		var nv []byte
		if s.arena != nil {
			nv = s.arena.alloc(len(value))
			copy(nv, value)
			s.arena.release(it.value)
		} else {
			nv = append(make([]byte, 0, len(value)), value...)
		}
		it.value = nv
	}
	s.cas++
	it.flags, it.exp, it.cas, it.stored = flags, exp, s.cas, now
	it.seq, it.meta = s.cas, 0
	it.acc.reset(now)
	s.link(it)
	s.stats.totalItems.Add(1)
	return it, nil
}

// remove deletes a live item.
func (s *Store) remove(it *item) { s.drop(it) }

// Delete removes key if present, whatever its state. Servers use it to
// drop the item of a set that was too large, as memcached does.
func (s *Store) Delete(key []byte, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.m[string(key)]; it != nil {
		s.drop(it)
	}
}

// IsWrite reports whether cmd may change the store: it must then be
// replicated, while a read is served by any replica on its own.
func (c *Command) IsWrite() bool {
	switch {
	case c.Proto == ProtoBinary:
		return c.binaryIsWrite()
	case c.Op.IsMeta():
		return c.metaIsWrite()
	}
	switch c.Op {
	case OpGet, OpGets, OpVersion, OpVerbosity, OpQuit, OpNone, OpStats:
		return false
	}
	return true
}

// Exec runs cmd at time now (Unix ns) and appends its reply to out, unless
// the command asked for none. OpVersion, OpStats and OpQuit concern the
// server, not the items: they are the caller's to answer, and here append
// nothing.
func (s *Store) Exec(out []byte, cmd *Command, now int64) []byte {
	if cmd.IsWrite() {
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	switch {
	case cmd.Proto == ProtoBinary:
		return s.execBinary(out, cmd, now)
	case cmd.Op.IsMeta():
		return s.execMeta(out, cmd, now)
	}
	return s.execText(out, cmd, now)
}

func (s *Store) execText(out []byte, cmd *Command, now int64) []byte {
	reply := !cmd.NoReply
	switch cmd.Op {
	case OpGet, OpGets, OpGat, OpGats:
		withCAS := cmd.Op == OpGets || cmd.Op == OpGats
		touch := cmd.Op == OpGat || cmd.Op == OpGats
		for _, k := range cmd.Keys {
			var it *item
			if touch {
				it = s.touch(k, cmd.Exptime, now)
			} else {
				it = s.get(k, now)
			}
			if it != nil {
				out = AppendValue(out, k, it.flags, it.value, it.cas, withCAS)
			}
		}
		return AppendStatus(out, StatusEnd)
	case OpSet, OpAdd, OpReplace, OpAppend, OpPrepend, OpCas:
		st, err := s.store(cmd, now)
		switch {
		case !reply:
			return out
		case err != nil:
			return AppendError(out, err)
		}
		return AppendStatus(out, st)
	case OpDelete:
		st := StatusNotFound
		if it := s.lookup(cmd.Key(), now); it != nil {
			s.remove(it)
			st = StatusDeleted
			s.stats.deleteHits.Add(1)
		} else {
			s.stats.deleteMisses.Add(1)
		}
		if !reply {
			return out
		}
		return AppendStatus(out, st)
	case OpTouch:
		st := StatusNotFound
		s.stats.cmdTouch.Add(1)
		if s.touchItem(cmd.Key(), cmd.Exptime, now) != nil {
			st = StatusTouched
			s.stats.touchHits.Add(1)
		} else {
			s.stats.touchMisses.Add(1)
		}
		if !reply {
			return out
		}
		return AppendStatus(out, st)
	case OpIncr, OpDecr:
		v, st, err := s.arith(cmd.Key(), cmd.Op == OpIncr, cmd.Delta, now)
		switch {
		case !reply:
			return out
		case err != nil:
			return AppendError(out, err)
		case st == StatusNotFound:
			return AppendStatus(out, st)
		}
		return AppendUint(out, v)
	case OpFlushAll:
		s.flushAll(cmd.Exptime, now)
		if !reply {
			return out
		}
		return AppendStatus(out, StatusOK)
	case OpVerbosity:
		if !reply {
			return out
		}
		return AppendStatus(out, StatusOK)
	}
	return out
}

// get is a counted read.
func (s *Store) get(key []byte, now int64) *item {
	s.stats.cmdGet.Add(1)
	it := s.peek(key, now)
	if it == nil {
		s.stats.getMisses.Add(1)
	} else {
		s.stats.getHits.Add(1)
		it.acc.bump(now)
	}
	return it
}

// touch is gat's counted read-and-touch.
func (s *Store) touch(key []byte, exptime, now int64) *item {
	s.stats.cmdGet.Add(1)
	s.stats.cmdTouch.Add(1)
	it := s.touchItem(key, exptime, now)
	if it == nil {
		s.stats.getMisses.Add(1)
		s.stats.touchMisses.Add(1)
	} else {
		s.stats.getHits.Add(1)
		s.stats.touchHits.Add(1)
	}
	return it
}

// touchItem gives a live item a new expiration and returns it. The CAS
// value and the place in the write order stay.
func (s *Store) touchItem(key []byte, exptime, now int64) *item {
	it := s.lookup(key, now)
	if it == nil {
		return nil
	}
	// An exptime in the past kills the item, but this command still sees
	// it, as memcached's does.
	it.exp = ExpiryTime(exptime, now)
	it.acc.bump(now)
	return it
}

func (s *Store) store(cmd *Command, now int64) (Status, error) {
	s.stats.cmdSet.Add(1)
	key := cmd.Key()
	old := s.lookup(key, now)
	flags, exp := cmd.Flags, ExpiryTime(cmd.Exptime, now)
	value := cmd.Value
	switch cmd.Op {
	case OpAdd:
		if old != nil {
			return StatusNotStored, nil
		}
	case OpReplace:
		if old == nil {
			return StatusNotStored, nil
		}
	case OpCas:
		if old == nil {
			s.stats.casMisses.Add(1)
			return StatusNotFound, nil
		}
		if old.cas != cmd.CAS {
			s.stats.casBadval.Add(1)
			return StatusExists, nil
		}
		s.stats.casHits.Add(1)
	case OpAppend, OpPrepend:
		if old == nil {
			return StatusNotStored, nil
		}
		// Flags and expiration stay those of the existing item.
		flags, exp = old.flags, old.exp
		joined := make([]byte, 0, len(old.value)+len(cmd.Value))
		if cmd.Op == OpAppend {
			joined = append(append(joined, old.value...), cmd.Value...)
		} else {
			joined = append(append(joined, cmd.Value...), old.value...)
		}
		value = joined
	}
	if exp != 0 && now >= exp {
		// Stored already expired: memcached answers STORED and the key
		// reads as missing.
		if old != nil {
			s.remove(old)
		}
		return StatusStored, nil
	}
	if _, err := s.put(key, old, value, flags, exp, now); err != nil {
		return 0, err
	}
	return StatusStored, nil
}

// arith runs incr or decr. incr wraps around at 2^64, decr stops at 0.
func (s *Store) arith(key []byte, incr bool, delta uint64, now int64) (uint64, Status, error) {
	old := s.lookup(key, now)
	if old == nil {
		if incr {
			s.stats.incrMisses.Add(1)
		} else {
			s.stats.decrMisses.Add(1)
		}
		return 0, StatusNotFound, nil
	}
	v, ok := parseCounter(old.value)
	if !ok {
		return 0, 0, ErrNonNumeric
	}
	switch {
	case incr:
		v += delta
		s.stats.incrHits.Add(1)
	case delta > v:
		v = 0
		s.stats.decrHits.Add(1)
	default:
		v -= delta
		s.stats.decrHits.Add(1)
	}
	var buf [64]byte
	value := strconv.AppendUint(buf[:0], v, 10)
	// memcached rewrites a counter in place when the new number is no
	// longer than the old value, padding it with spaces.
	for len(value) < len(old.value) {
		value = append(value, ' ')
	}
	if _, err := s.putCounter(key, old, value, now); err != nil {
		return 0, 0, err
	}
	return v, StatusStored, nil
}

// parseCounter reads a value as incr and decr do, as memcached's
// safe_strtoull reads the item's data: leading white space, an optional
// sign, decimal digits, then white space or the end; a negative number is
// refused once it wraps past 2^63.
func parseCounter(v []byte) (uint64, bool) {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	neg := false
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	start := i
	var n uint64
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := uint64(v[i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false // ERANGE
		}
		n = n*10 + d
	}
	if i == start || i < len(v) && !isSpace(v[i]) {
		return 0, false
	}
	if neg {
		n = -n
		if int64(n) < 0 {
			return 0, false
		}
	}
	return n, true
}

func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// flushAll drops every item now (delay <= 0) or schedules every item stored
// until then to die when the delay has passed.
func (s *Store) flushAll(delay, now int64) {
	s.stats.cmdFlush.Add(1)
	if delay > 0 {
		s.oldestLive = ExpiryTime(delay, now)
		return
	}
	s.oldestLive = 0
	clear(s.m)
	clear(s.order)
	s.order, s.head, s.used = s.order[:0], 0, 0
	if s.arena != nil {
		s.arena.reset() // every value went with the items
	}
}

// StoreStats is a snapshot of a store's counters and sizes, named as
// memcached's stats names them.
type StoreStats struct {
	CurrItems, TotalItems, Bytes, LimitMaxbytes           uint64
	CmdGet, CmdSet, CmdTouch, CmdFlush                    uint64
	GetHits, GetMisses, GetExpired, GetFlushed            uint64
	DeleteHits, DeleteMisses                              uint64
	IncrHits, IncrMisses, DecrHits, DecrMisses            uint64
	CasHits, CasMisses, CasBadval, TouchHits, TouchMisses uint64
	Evictions, Reclaimed, OutOfMemory                     uint64
	EvictionsEnabled                                      bool
	_                                                     struct{}
}

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	s.mu.RLock()
	st := StoreStats{CurrItems: uint64(len(s.m)), Bytes: uint64(s.used), LimitMaxbytes: uint64(s.maxBytes), EvictionsEnabled: s.evict}
	s.mu.RUnlock()
	c := &s.stats
	st.TotalItems = c.totalItems.Load()
	st.CmdGet, st.CmdSet, st.CmdTouch, st.CmdFlush = c.cmdGet.Load(), c.cmdSet.Load(), c.cmdTouch.Load(), c.cmdFlush.Load()
	st.GetHits, st.GetMisses, st.GetExpired, st.GetFlushed = c.getHits.Load(), c.getMisses.Load(), c.getExpired.Load(), c.getFlushed.Load()
	st.DeleteHits, st.DeleteMisses = c.deleteHits.Load(), c.deleteMisses.Load()
	st.IncrHits, st.IncrMisses, st.DecrHits, st.DecrMisses = c.incrHits.Load(), c.incrMisses.Load(), c.decrHits.Load(), c.decrMisses.Load()
	st.CasHits, st.CasMisses, st.CasBadval = c.casHits.Load(), c.casMisses.Load(), c.casBadval.Load()
	st.TouchHits, st.TouchMisses = c.touchHits.Load(), c.touchMisses.Load()
	st.Evictions, st.Reclaimed, st.OutOfMemory = c.evictions.Load(), c.reclaimed.Load(), c.oomRefused.Load()
	return st
}

// snapshotMagic starts a snapshot: "gomu memcache store", version 2.
const snapshotMagic = "gomu-mc2"

// Snapshot writes the whole state: every item in write order (dead ones
// not yet reclaimed included, so that a restored store reclaims and evicts
// exactly as the original), the CAS counter and a pending flush_all.
// Counters of reads and hits are the replica's own and not included.
func (s *Store) Snapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.encode(w)
}

func (s *Store) encode(w io.Writer) error {
	var b []byte
	b = append(b, snapshotMagic...)
	b = binary.LittleEndian.AppendUint64(b, s.cas)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.oldestLive))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.m)))
	n := 0
	for _, e := range s.order[s.head:] {
		if !s.current(e) {
			continue
		}
		it := e.it
		b = binary.LittleEndian.AppendUint32(b, uint32(len(it.key)))
		b = append(b, it.key...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(it.value)))
		b = append(b, it.value...)
		b = binary.LittleEndian.AppendUint32(b, it.flags)
		b = binary.LittleEndian.AppendUint64(b, uint64(it.exp))
		b = binary.LittleEndian.AppendUint64(b, it.cas)
		b = binary.LittleEndian.AppendUint64(b, uint64(it.stored))
		b = binary.LittleEndian.AppendUint64(b, it.seq)
		b = append(b, it.meta)
		n++
		if len(b) >= 64<<10 {
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("memcache snapshot: %w", err)
			}
			b = b[:0]
		}
	}
	if n != len(s.m) {
		return fmt.Errorf("memcache snapshot: write order holds %d of %d items", n, len(s.m))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("memcache snapshot: %w", err)
	}
	return nil
}

var errBadSnapshot = errors.New("memcache restore: malformed snapshot")

// Restore replaces the store's state with a snapshot's. The memory limit
// and eviction setting stay this store's; a snapshot that does not fit
// under the limit is refused.
func (s *Store) Restore(r io.Reader) error {
	var hdr [len(snapshotMagic) + 24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("memcache restore: header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return errBadSnapshot
	}
	h := hdr[len(snapshotMagic):]
	cas := binary.LittleEndian.Uint64(h)
	oldestLive := int64(binary.LittleEndian.Uint64(h[8:]))
	count := binary.LittleEndian.Uint64(h[16:])
	m := make(map[string]*item, min(count, 1<<20))
	order := make([]orderEntry, 0, min(count, 1<<20))
	var used int64
	var fixed [37]byte
	var lenBuf [4]byte
	for range count {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return fmt.Errorf("memcache restore: item: %w", err)
		}
		kl := binary.LittleEndian.Uint32(lenBuf[:])
		if kl == 0 || kl > MaxKeyLen {
			return errBadSnapshot
		}
		key := make([]byte, kl)
		if _, err := io.ReadFull(r, key); err != nil {
			return fmt.Errorf("memcache restore: key: %w", err)
		}
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return fmt.Errorf("memcache restore: item: %w", err)
		}
		vl := binary.LittleEndian.Uint32(lenBuf[:])
		if int64(vl) > s.maxBytes {
			return errBadSnapshot
		}
		value := make([]byte, vl)
		if _, err := io.ReadFull(r, value); err != nil {
			return fmt.Errorf("memcache restore: value: %w", err)
		}
		if _, err := io.ReadFull(r, fixed[:]); err != nil {
			return fmt.Errorf("memcache restore: item: %w", err)
		}
		it := &item{key: string(key), value: value,
			flags:  binary.LittleEndian.Uint32(fixed[:]),
			exp:    int64(binary.LittleEndian.Uint64(fixed[4:])),
			cas:    binary.LittleEndian.Uint64(fixed[12:]),
			stored: int64(binary.LittleEndian.Uint64(fixed[20:])),
			seq:    binary.LittleEndian.Uint64(fixed[28:]),
			meta:   fixed[36]}
		it.acc.reset(it.stored)
		if m[it.key] != nil {
			return errBadSnapshot
		}
		m[it.key] = it
		order = append(order, orderEntry{it: it, seq: it.seq})
		used += itemSize(len(it.key), len(it.value))
	}
	if used > s.maxBytes {
		return fmt.Errorf("memcache restore: %d bytes of items do not fit in %d", used, s.maxBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m, s.order, s.head, s.used, s.cas, s.oldestLive = m, order, 0, used, cas, oldestLive
	if s.arena != nil {
		// The items of before are gone; the restored values are on the
		// heap until rewritten.
		s.arena.reset()
	}
	return nil
}

// Digest is a SHA-256 of the state Snapshot writes: equal on replicas that
// applied the same writes.
func (s *Store) Digest() [32]byte {
	h := sha256.New()
	s.mu.RLock()
	_ = s.encode(h) // a hash never fails to write
	s.mu.RUnlock()
	var d [32]byte
	h.Sum(d[:0])
	return d
}
