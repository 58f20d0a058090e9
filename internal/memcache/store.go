package memcache

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultMaxBytes is the default memory limit of a Store, memcached's -m 64.
const DefaultMaxBytes = 64 << 20

// itemOverhead is what an item is charged beyond its key and value.
const itemOverhead = 64

const nShards = 16 // a power of two

// Store is an in-memory item table with memcached semantics: flags,
// expiration, CAS values, add/replace/append/prepend/cas rules, incr/decr,
// touch and delayed flush_all. It is safe for concurrent use; the table is
// split into shards, each under its own mutex.
//
// Every operation takes the current time from the caller (Unix nanoseconds)
// rather than reading a clock, so tests control time and a replicated state
// machine can apply the leader's time deterministically.
//
// Items are immutable once stored: a get hands out the stored value without
// copying, and every change stores a new item.
//
// Memory is bounded by MaxBytes (keys, values and a fixed overhead per item).
// When a store would pass it, expired items are reclaimed; if that is not
// enough the store fails with ErrOutOfMemory (memcached with -M). There is
// no LRU eviction.
type Store struct {
	shards   [nShards]shard
	cas      atomic.Uint64
	used     atomic.Int64
	maxBytes int64
	// oldestLive is the time set by a delayed flush_all (Unix ns, 0 = none):
	// once reached, items stored before it are dead.
	oldestLive atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[string]*item
	_  [40]byte // keep shards on separate cache lines
}

type item struct {
	value  []byte
	flags  uint32
	exp    int64 // Unix ns when the item dies; 0 never
	cas    uint64
	stored int64 // Unix ns of the store, for delayed flush_all
}

// NewStore returns an empty store holding at most maxBytes
// (DefaultMaxBytes if maxBytes <= 0).
func NewStore(maxBytes int64) *Store {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	s := &Store{maxBytes: maxBytes}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*item)
	}
	return s
}

// Bytes returns the memory charged to the items held, expired ones not yet
// reclaimed included.
func (s *Store) Bytes() int64 { return s.used.Load() }

// Len returns the number of items held, expired ones not yet reclaimed
// included.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
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

func (s *Store) shardFor(key []byte) *shard {
	// FNV-1a.
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return &s.shards[h&(nShards-1)]
}

func (s *Store) live(it *item, now int64) bool {
	if it.exp != 0 && now >= it.exp {
		return false
	}
	if ol := s.oldestLive.Load(); ol != 0 && now >= ol && it.stored < ol {
		return false
	}
	return true
}

func size(key []byte, value []byte) int64 {
	return int64(len(key) + len(value) + itemOverhead)
}

// lookup returns the live item under key, removing a dead one.
// The shard must be locked.
func (s *Store) lookup(sh *shard, key []byte, now int64) *item {
	it, ok := sh.m[string(key)]
	if !ok {
		return nil
	}
	if !s.live(it, now) {
		delete(sh.m, string(key))
		s.used.Add(-size(key, it.value))
		return nil
	}
	return it
}

// reserve charges delta bytes if they fit under the limit.
func (s *Store) reserve(delta int64) bool {
	if s.used.Add(delta) > s.maxBytes && delta > 0 {
		s.used.Add(-delta)
		return false
	}
	return true
}

// sweep removes every dead item.
func (s *Store) sweep(now int64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, it := range sh.m {
			if !s.live(it, now) {
				delete(sh.m, k)
				s.used.Add(-int64(len(k) + len(it.value) + itemOverhead))
			}
		}
		sh.mu.Unlock()
	}
}

// Apply executes cmd at time now and writes its reply to w, unless
// cmd.NoReply or w is nil. It returns only write errors. OpVersion and
// OpQuit concern the connection, not the items: they are the caller's to
// handle, and here do nothing.
func (s *Store) Apply(cmd *Command, now int64, w *bufio.Writer) error {
	reply := w != nil && !cmd.NoReply
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
			if it != nil && w != nil {
				if err := WriteValue(w, k, it.flags, it.value, it.cas, withCAS); err != nil {
					return err
				}
			}
		}
		if w == nil {
			return nil
		}
		return WriteStatus(w, StatusEnd)
	case OpSet, OpAdd, OpReplace, OpAppend, OpPrepend, OpCas:
		st, err := s.store(cmd, now)
		if !reply {
			return nil
		}
		if err != nil {
			return WriteError(w, err)
		}
		return WriteStatus(w, st)
	case OpDelete:
		st := s.delete(cmd.Key(), now)
		if !reply {
			return nil
		}
		return WriteStatus(w, st)
	case OpTouch:
		st := StatusNotFound
		if s.touch(cmd.Key(), cmd.Exptime, now) != nil {
			st = StatusTouched
		}
		if !reply {
			return nil
		}
		return WriteStatus(w, st)
	case OpIncr, OpDecr:
		v, st, err := s.arith(cmd.Key(), cmd.Op == OpIncr, cmd.Delta, now)
		switch {
		case !reply:
			return nil
		case err != nil:
			return WriteError(w, err)
		case st == StatusNotFound:
			return WriteStatus(w, st)
		}
		return WriteUint(w, v)
	case OpFlushAll:
		s.flushAll(cmd.Exptime, now)
		if !reply {
			return nil
		}
		return WriteStatus(w, StatusOK)
	case OpVerbosity:
		if !reply {
			return nil
		}
		return WriteStatus(w, StatusOK)
	}
	return nil
}

func (s *Store) get(key []byte, now int64) *item {
	sh := s.shardFor(key)
	sh.mu.Lock()
	it := s.lookup(sh, key, now)
	sh.mu.Unlock()
	return it
}

// touch gives a live item a new expiration and returns it.
func (s *Store) touch(key []byte, exptime, now int64) *item {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it := s.lookup(sh, key, now)
	if it == nil {
		return nil
	}
	n := *it
	n.exp = ExpiryTime(exptime, now)
	sh.m[string(key)] = &n
	return &n
}

func (s *Store) delete(key []byte, now int64) Status {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	it := s.lookup(sh, key, now)
	if it == nil {
		return StatusNotFound
	}
	delete(sh.m, string(key))
	s.used.Add(-size(key, it.value))
	return StatusDeleted
}

// Delete removes key if present, whatever its state. Servers use it to
// drop the item of a set that was too large, as memcached does.
func (s *Store) Delete(key []byte, now int64) { s.delete(key, now) }

func (s *Store) store(cmd *Command, now int64) (Status, error) {
	key := cmd.Key()
	sh := s.shardFor(key)
	for attempt := 0; ; attempt++ {
		sh.mu.Lock()
		old := s.lookup(sh, key, now)
		var value []byte
		flags, exp := cmd.Flags, ExpiryTime(cmd.Exptime, now)
		switch cmd.Op {
		case OpAdd:
			if old != nil {
				sh.mu.Unlock()
				return StatusNotStored, nil
			}
		case OpReplace:
			if old == nil {
				sh.mu.Unlock()
				return StatusNotStored, nil
			}
		case OpCas:
			if old == nil {
				sh.mu.Unlock()
				return StatusNotFound, nil
			}
			if old.cas != cmd.CAS {
				sh.mu.Unlock()
				return StatusExists, nil
			}
		case OpAppend, OpPrepend:
			if old == nil {
				sh.mu.Unlock()
				return StatusNotStored, nil
			}
			// Flags and expiration stay those of the existing item.
			flags, exp = old.flags, old.exp
			value = make([]byte, 0, len(old.value)+len(cmd.Value))
			if cmd.Op == OpAppend {
				value = append(append(value, old.value...), cmd.Value...)
			} else {
				value = append(append(value, cmd.Value...), old.value...)
			}
		}
		if value == nil {
			value = bytes.Clone(cmd.Value)
			if value == nil {
				value = []byte{}
			}
		}
		if exp != 0 && now >= exp {
			// Stored already expired: memcached answers STORED and the key
			// reads as missing.
			if old != nil {
				delete(sh.m, string(key))
				s.used.Add(-size(key, old.value))
			}
			sh.mu.Unlock()
			return StatusStored, nil
		}
		delta := size(key, value)
		if old != nil {
			delta -= size(key, old.value)
		}
		if !s.reserve(delta) {
			sh.mu.Unlock()
			if attempt == 0 {
				s.sweep(now)
				continue
			}
			return 0, ErrOutOfMemory
		}
		sh.m[string(key)] = &item{value: value, flags: flags, exp: exp, cas: s.cas.Add(1), stored: now}
		sh.mu.Unlock()
		return StatusStored, nil
	}
}

// arith runs incr or decr. incr wraps around at 2^64, decr stops at 0.
func (s *Store) arith(key []byte, incr bool, delta uint64, now int64) (uint64, Status, error) {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := s.lookup(sh, key, now)
	if old == nil {
		return 0, StatusNotFound, nil
	}
	v, ok := parseUint(bytes.Trim(old.value, " "), math.MaxUint64)
	if !ok {
		return 0, 0, ErrNonNumeric
	}
	switch {
	case incr:
		v += delta
	case delta > v:
		v = 0
	default:
		v -= delta
	}
	var buf [20]byte
	value := strconv.AppendUint(buf[:0], v, 10)
	d := size(key, value) - size(key, old.value)
	if !s.reserve(d) {
		return 0, 0, ErrOutOfMemory
	}
	sh.m[string(key)] = &item{value: bytes.Clone(value), flags: old.flags, exp: old.exp, cas: s.cas.Add(1), stored: now}
	return v, StatusStored, nil
}

// flushAll drops every item now (delay <= 0) or schedules every item stored
// until then to die when the delay has passed.
func (s *Store) flushAll(delay, now int64) {
	if delay > 0 {
		s.oldestLive.Store(ExpiryTime(delay, now))
		return
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, it := range sh.m {
			s.used.Add(-int64(len(k) + len(it.value) + itemOverhead))
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
}
