package store

import (
	"bytes"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// hashValue is a hash that keeps its fields in insertion order, the order
// Redis 7.0 shows for a small (listpack-encoded) hash; once Redis converts a
// hash to a hash table its order is Redis's hash order, which this type does
// not imitate. A deleted field leaves a hole (nil) in entries until holes
// outnumber live fields, so HDEL is amortized O(1) and order is kept.
//
// table is Redis's encoding: false while it would be a listpack, true once
// it would have converted to a hash table (put), which it never undoes.
type hashValue struct {
	entries []*hashEntry
	index   map[string]int // field -> position in entries
	table   bool
}

type hashEntry struct {
	field string
	val   []byte
}

func newHash() *hashValue { return &hashValue{index: make(map[string]int)} }

func (h *hashValue) len() int { return len(h.index) }

func (h *hashValue) get(f []byte) ([]byte, bool) {
	i, ok := h.index[string(f)]
	if !ok {
		return nil, false
	}
	return h.entries[i].val, true
}

// set stores a copy of val under f; it reports whether f is new.
func (h *hashValue) set(f, val []byte) bool {
	if i, ok := h.index[string(f)]; ok {
		h.entries[i].val = bytes.Clone(val)
		return false
	}
	h.index[string(f)] = len(h.entries)
	h.entries = append(h.entries, &hashEntry{field: string(f), val: bytes.Clone(val)})
	return true
}

// put is set as a hash command sets a field: it first converts a
// listpack whose field or value would exceed hash-max-listpack-value, and
// then one that outgrew hash-max-listpack-entries, as Redis's hashTypeSet.
func (h *hashValue) put(c *Config, f, val []byte) bool {
	if int64(len(f)) > c.HashMaxListpackValue || int64(len(val)) > c.HashMaxListpackValue {
		h.table = true
	}
	created := h.set(f, val)
	if int64(h.len()) > c.HashMaxListpackEntries {
		h.table = true
	}
	return created
}

func (h *hashValue) del(f []byte) bool {
	i, ok := h.index[string(f)]
	if !ok {
		return false
	}
	delete(h.index, string(f))
	h.entries[i] = nil
	if holes := len(h.entries) - len(h.index); holes > 16 && holes > len(h.index) {
		live := make([]*hashEntry, 0, len(h.index))
		for _, en := range h.entries {
			if en != nil {
				h.index[en.field] = len(live)
				live = append(live, en)
			}
		}
		h.entries = live
	}
	return true
}

// each calls fn on the live entries in order.
func (h *hashValue) each(fn func(en *hashEntry)) {
	for _, en := range h.entries {
		if en != nil {
			fn(en)
		}
	}
}

func hashCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", Summary: summary, run: run}
}

func init() {
	register(
		hashCmd("hset", -4, Write|DenyOOM|Fast, "Creates or modifies the value of a field in a hash.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.hset(e, dst, args, false) }),
		hashCmd("hmset", -4, Write|DenyOOM|Fast, "Sets the values of multiple fields.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.hset(e, dst, args, true) }),
		hashCmd("hget", 3, ReadOnly|Fast, "Returns the value of a field in a hash.", cmdHGet),
		hashCmd("hmget", -3, ReadOnly|Fast, "Returns the values of all fields in a hash.", cmdHMGet),
		hashCmd("hdel", -3, Write|Fast, "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", cmdHDel),
		hashCmd("hgetall", 2, ReadOnly, "Returns all fields and values in a hash.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.hdump(e, dst, args, true, true) }),
		hashCmd("hkeys", 2, ReadOnly, "Returns all fields in a hash.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.hdump(e, dst, args, true, false) }),
		hashCmd("hvals", 2, ReadOnly, "Returns all values in a hash.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.hdump(e, dst, args, false, true) }),
		hashCmd("hlen", 2, ReadOnly|Fast, "Returns the number of fields in a hash.", cmdHLen),
		hashCmd("hexists", 3, ReadOnly|Fast, "Determines whether a field exists in a hash.", cmdHExists),
		hashCmd("hincrby", 4, Write|DenyOOM|Fast, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", cmdHIncrBy),
		hashCmd("hincrbyfloat", 4, Write|DenyOOM|Fast, "Increment the float value of a hash field by the given amount", cmdHIncrByFloat),
		hashCmd("hsetnx", 4, Write|DenyOOM|Fast, "Set the value of a hash field, only if the field does not exist", cmdHSetNX),
		hashCmd("hstrlen", 3, ReadOnly|Fast, "Get the length of the value of a hash field", cmdHStrlen),
		hashCmd("hrandfield", -2, ReadOnly|Random, "Get one or multiple random fields from a hash", cmdHRandField),
	)
}

// readHash looks key up for a read; wrong reports a non-hash.
func (s *Store) readHash(e *Env, key []byte) (h *hashValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindHash, false)
	if v == nil {
		return nil, wrong
	}
	return v.hash, false
}

// writeHash looks key up for a write, creating an empty hash if create;
// wrong reports a non-hash.
func (s *Store) writeHash(e *Env, key []byte, create bool) (h *hashValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindHash, true)
	if wrong || v == nil && !create {
		return nil, wrong
	}
	if v == nil {
		v = &value{kind: kindHash, hash: newHash()}
		s.put(key, v)
	}
	return v.hash, false
}

// hset is HSET (replies the number of new fields) and HMSET (replies OK).
func (s *Store) hset(e *Env, dst []byte, args [][]byte, ok bool) []byte {
	if len(args)%2 == 1 {
		return AppendWrongArity(dst, string(bytes.ToLower(args[0])))
	}
	h, wrong := s.writeHash(e, args[1], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	created := int64(0)
	for i := 2; i < len(args); i += 2 {
		if h.put(&s.cfg, args[i], args[i+1]) {
			created++
		}
	}
	s.notify(e, notifyHash, "hset", args[1])
	if ok {
		return resp.AppendOK(dst)
	}
	return resp.AppendInt(dst, created)
}

func cmdHGet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h != nil {
		if val, ok := h.get(args[2]); ok {
			return resp.AppendBulk(dst, val)
		}
	}
	return resp.AppendNull(dst)
}

func cmdHMGet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	dst = resp.AppendArrayLen(dst, len(args)-2)
	for _, f := range args[2:] {
		if h != nil {
			if val, ok := h.get(f); ok {
				dst = resp.AppendBulk(dst, val)
				continue
			}
		}
		dst = resp.AppendNull(dst)
	}
	return dst
}

func cmdHDel(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.writeHash(e, args[1], false)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h == nil {
		return resp.AppendInt(dst, 0)
	}
	n := int64(0)
	for _, f := range args[2:] {
		if h.del(f) {
			n++
		}
	}
	if n > 0 {
		s.notify(e, notifyHash, "hdel", args[1])
	}
	if h.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	return resp.AppendInt(dst, n)
}

// hdump is HGETALL (fields and values), HKEYS and HVALS.
func (s *Store) hdump(e *Env, dst []byte, args [][]byte, fields, vals bool) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	n := h.len()
	if fields && vals {
		n *= 2
	}
	dst = resp.AppendArrayLen(dst, n)
	h.each(func(en *hashEntry) {
		if fields {
			dst = resp.AppendBulkString(dst, en.field)
		}
		if vals {
			dst = resp.AppendBulk(dst, en.val)
		}
	})
	return dst
}

func cmdHLen(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h == nil {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(h.len()))
}

func cmdHExists(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h != nil {
		if _, ok := h.get(args[2]); ok {
			return resp.AppendInt(dst, 1)
		}
	}
	return resp.AppendInt(dst, 0)
}

func cmdHIncrBy(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	incr, ok := collInt(args[3])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	// Like Redis, the hash is created before the field is examined; the
	// field cannot then fail to parse, so no empty hash is left behind.
	h, wrong := s.writeHash(e, args[1], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	var old int64
	if cur, ok := h.get(args[2]); ok {
		if old, ok = collInt(cur); !ok {
			return resp.AppendError(dst, "ERR hash value is not an integer")
		}
	}
	if (incr < 0 && old < 0 && incr < math.MinInt64-old) || (incr > 0 && old > 0 && incr > math.MaxInt64-old) {
		if h.len() == 0 {
			s.remove(args[1])
		}
		s.endNews(e)
		return resp.AppendError(dst, errOverflow)
	}
	n := old + incr
	var buf [20]byte
	h.put(&s.cfg, args[2], strconv.AppendInt(buf[:0], n, 10))
	s.notify(e, notifyHash, "hincrby", args[1])
	return resp.AppendInt(dst, n)
}

// cmdHIncrByFloat computes in the x87 long double Redis uses, as
// INCRBYFLOAT does (see strings.go).
func cmdHIncrByFloat(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	incr, ok := parseLongDouble(args[3])
	if !ok {
		return resp.AppendError(dst, errNotFloat)
	}
	if incr.IsInf() {
		return resp.AppendError(dst, "ERR value is NaN or Infinity")
	}
	h, wrong := s.writeHash(e, args[1], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	cur := new(big.Float).SetPrec(longDoublePrec)
	if old, ok := h.get(args[2]); ok {
		if cur, ok = parseLongDouble(old); !ok {
			return resp.AppendError(dst, "ERR hash value is not a float")
		}
	}
	// inf + a finite increment stays inf; a finite sum may overflow.
	if cur.IsInf() {
		return resp.AppendError(dst, errNaNOrInf)
	}
	sum := new(big.Float).SetPrec(longDoublePrec).Add(cur, incr)
	if sum.MantExp(nil) > longDoubleMaxExp {
		if h.len() == 0 {
			s.remove(args[1])
		}
		s.endNews(e)
		return resp.AppendError(dst, errNaNOrInf)
	}
	out := formatLongDouble(sum)
	h.put(&s.cfg, args[2], out)
	s.notify(e, notifyHash, "hincrbyfloat", args[1])
	return resp.AppendBulk(dst, out)
}

func cmdHSetNX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.writeHash(e, args[1], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if _, ok := h.get(args[2]); ok {
		return resp.AppendInt(dst, 0)
	}
	h.put(&s.cfg, args[2], args[3])
	s.notify(e, notifyHash, "hset", args[1])
	return resp.AppendInt(dst, 1)
}

func cmdHStrlen(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	h, wrong := s.readHash(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if h != nil {
		if val, ok := h.get(args[2]); ok {
			return resp.AppendInt(dst, int64(len(val)))
		}
	}
	return resp.AppendInt(dst, 0)
}

// randomEntry picks a live entry with e.Rand: holes are at most as many as
// live entries (or 16), so retrying on one ends quickly.
func (h *hashValue) randomEntry(e *Env) *hashEntry {
	for {
		if en := h.entries[e.Rand.IntN(len(h.entries))]; en != nil {
			return en
		}
	}
}

// cmdHRandField picks with e.Rand, so its picks differ from Redis's (but
// are the same on every replica). Distinct picks (a positive count) come in
// the hash's order, and a count covering the whole hash returns it all in
// that order, as Redis 7.0 does for a small hash; a negative count picks
// -count fields with repetition, in pick order.
func cmdHRandField(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) == 2 {
		h, wrong := s.readHash(e, args[1])
		switch {
		case wrong:
			return resp.AppendError(dst, errWrongType)
		case h == nil:
			return resp.AppendNull(dst)
		}
		return resp.AppendBulkString(dst, h.randomEntry(e).field)
	}
	count, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if count == math.MinInt64 {
		return resp.AppendError(dst, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
	}
	withValues := false
	switch {
	case len(args) > 4 || len(args) == 4 && !eqFold(args[3], "withvalues"):
		return resp.AppendError(dst, errSyntax)
	case len(args) == 4:
		withValues = true
		if count < -math.MaxInt64/2 || count > math.MaxInt64/2 {
			return resp.AppendError(dst, "ERR value is out of range")
		}
	}
	h, wrong := s.readHash(e, args[1])
	switch {
	case wrong:
		return resp.AppendError(dst, errWrongType)
	case h == nil || count == 0:
		return resp.AppendArrayLen(dst, 0)
	}
	per := 1
	if withValues {
		per = 2
	}
	appendEntry := func(en *hashEntry) {
		dst = resp.AppendBulkString(dst, en.field)
		if withValues {
			dst = resp.AppendBulk(dst, en.val)
		}
	}
	if count < 0 || count == 1 {
		n := int(count)
		if n < 0 {
			n = -n
		}
		dst = resp.AppendArrayLen(dst, n*per)
		for range n {
			appendEntry(h.randomEntry(e))
		}
		return dst
	}
	live := make([]*hashEntry, 0, h.len())
	h.each(func(en *hashEntry) { live = append(live, en) })
	if count >= int64(len(live)) {
		dst = resp.AppendArrayLen(dst, len(live)*per)
		for _, en := range live {
			appendEntry(en)
		}
		return dst
	}
	// A partial Fisher-Yates shuffle of positions picks count of them,
	// replied in the hash's order.
	pos := make([]int, len(live))
	for i := range pos {
		pos[i] = i
	}
	for i := range int(count) {
		j := i + e.Rand.IntN(len(pos)-i)
		pos[i], pos[j] = pos[j], pos[i]
	}
	picked := pos[:count]
	slices.Sort(picked)
	dst = resp.AppendArrayLen(dst, int(count)*per)
	for _, i := range picked {
		appendEntry(live[i])
	}
	return dst
}
