package store

import (
	"math"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// zsetValue is a sorted set: a member -> score dict (see zdict), which
// also holds the members' bytes, and an order-statistic B+tree of the same
// entries in Redis's order (see ztree), so score lookups are O(1) and
// inserts, removals, ranks and range bounds O(log n), as with Redis's
// skiplist. Neither holds a pointer per member: an insert allocates no
// string, and the garbage collector has nothing to scan.
//
// A score of -0 is stored as 0: Redis 7.0's small (listpack) sorted sets
// store scores as text in which an integral -0 becomes "0"; its large
// (skiplist) ones would keep -0, which this type does not imitate.
//
// skiplist is Redis's encoding: false while it would be a listpack, true
// once it would have converted (see zadd and storeZSet).
//
// The tree points at the dict (tree.d): a zsetValue is made by newZSet or
// newZSetSorted and never copied.
type zsetValue struct {
	dict     zdict
	tree     ztree
	skiplist bool
}

func newZSet() *zsetValue {
	z := &zsetValue{}
	z.tree.d = &z.dict
	return z
}

// newZSetSorted returns a sorted set of ents, which must be in order,
// distinct and free of -0.
func newZSetSorted(ents []zentry) *zsetValue {
	bytes := 0
	for _, en := range ents {
		bytes += len(en.member)
	}
	z := &zsetValue{dict: newZDict(len(ents), bytes)}
	for _, en := range ents {
		z.dict.set(en.member, en.score) // a new dict numbers them 0, 1, …
	}
	z.tree = buildZTree(&z.dict, len(ents))
	return z
}

func (z *zsetValue) len() int { return z.tree.n }

// score is member's score.
func (z *zsetValue) score(member []byte) (float64, bool) { return z.dict.get(member) }

// scoreOf is score for a string.
func (z *zsetValue) scoreOf(member string) (float64, bool) { return z.dict.getString(member) }

// add inserts member, which must not be in z.
func (z *zsetValue) add(member string, score float64) {
	slot, h, _ := z.dict.probe(member)
	z.addAt(slot, h, member, score)
}

// addAt is add for a member not in z whose table slot (and hash)
// z.dict.probe returned; z copies member's bytes.
func (z *zsetValue) addAt(slot int, h uint32, member string, score float64) {
	if score == 0 {
		score = 0 // -0 (see zsetValue)
	}
	z.tree.insert(z.dict.fill(slot, h, member, score))
}

// moveAt changes the score of the member whose entry z.dict.probe
// found.
func (z *zsetValue) moveAt(ref int, score float64) {
	if score == 0 {
		score = 0
	}
	idx := uint32(ref)
	z.tree.delete(idx)
	z.dict.ent(idx).score = score
	z.tree.insert(idx)
}

// set inserts member or moves it to score.
func (z *zsetValue) set(member string, score float64) {
	ref, h, found := z.dict.probe(member)
	if found {
		z.moveAt(ref, score)
		return
	}
	z.addAt(ref, h, member, score)
}

func (z *zsetValue) del(member []byte) bool {
	d := &z.dict
	if d.n == 0 {
		return false
	}
	m := bstr(member)
	slot, ok := d.find(zhashString(m), m)
	if !ok {
		return false
	}
	idx := d.table[slot].idx
	z.tree.delete(idx)
	d.remove(slot, idx)
	z.compactIfSparse()
	return true
}

// removeAt removes and returns the entry of rank r.
func (z *zsetValue) removeAt(r int) zentry {
	c := z.tree.at(r)
	en := c.entry() // its member stays valid: the arena's bytes never change
	idx := c.leaf.idx[c.i]
	z.tree.delete(idx)
	z.dict.remove(z.dict.slotOf(idx), idx)
	z.compactIfSparse()
	return en
}

// compactIfSparse compacts the dict once deletes have left it more garbage
// or free entries than live ones (see zdict.needsCompact).
func (z *zsetValue) compactIfSparse() {
	if z.dict.needsCompact() {
		z.tree.renumber(z.dict.compact(z.tree.each))
	}
}

// each calls fn on every entry in order.
func (z *zsetValue) each(fn func(zentry)) {
	for x := z.tree.first(); x != nil; x = x.next {
		for i := range x.idx {
			fn(z.tree.entry(x, i))
		}
	}
}

func zsetCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", Summary: summary, run: run}
}

// zsetKeysCmd is a command whose keys COMMAND reports as Redis 7.0 does
// for it: first, last and step (for the commands whose keys follow a
// numkeys argument, flagged MovableKeys, what Redis reports for them).
func zsetKeysCmd(name string, arity int, flags Flags, first, last, step int, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: step, Group: "sorted-set", Summary: summary, run: run}
}

// zrangeCmd registers a range command over zrangeGeneric.
func zrangeCmd(name string, summary string, kind, dir int) *Command {
	return zsetCmd(name, -4, ReadOnly, summary, func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
		return s.zrangeGeneric(e, dst, args, 1, false, kind, dir)
	})
}

func init() {
	register(
		zsetCmd("zadd", -4, Write|DenyOOM|Fast, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", cmdZAdd),
		zsetCmd("zincrby", 4, Write|DenyOOM|Fast, "Increments the score of a member in a sorted set.", cmdZIncrBy),
		zsetCmd("zrem", -3, Write|Fast, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", cmdZRem),
		zsetCmd("zscore", 3, ReadOnly|Fast, "Returns the score of a member in a sorted set.", cmdZScore),
		zsetCmd("zmscore", -3, ReadOnly|Fast, "Returns the score of one or more members in a sorted set.", cmdZMScore),
		zsetCmd("zcard", 2, ReadOnly|Fast, "Returns the number of members in a sorted set.", cmdZCard),
		zsetCmd("zcount", 4, ReadOnly|Fast, "Returns the count of members in a sorted set that have scores within a range.", cmdZCount),
		zsetCmd("zlexcount", 4, ReadOnly|Fast, "Returns the number of members in a sorted set within a lexicographical range.", cmdZLexCount),
		zrangeCmd("zrange", "Returns members in a sorted set within a range of indexes.", zrAuto, zrDirAuto),
		zrangeCmd("zrevrange", "Returns members in a sorted set within a range of indexes in reverse order.", zrRank, zrDirReverse),
		zrangeCmd("zrangebyscore", "Returns members in a sorted set within a range of scores.", zrScore, zrDirForward),
		zrangeCmd("zrevrangebyscore", "Returns members in a sorted set within a range of scores in reverse order.", zrScore, zrDirReverse),
		zrangeCmd("zrangebylex", "Returns members in a sorted set within a lexicographical range.", zrLex, zrDirForward),
		zrangeCmd("zrevrangebylex", "Returns members in a sorted set within a lexicographical range in reverse order.", zrLex, zrDirReverse),
		zsetKeysCmd("zrangestore", -5, Write|DenyOOM, 1, 2, 1, "Stores a range of members from sorted set in a key.", cmdZRangeStore),
		zsetCmd("zremrangebyrank", 4, Write, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zremrange(e, dst, args, zrRank) }),
		zsetCmd("zremrangebyscore", 4, Write, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zremrange(e, dst, args, zrScore) }),
		zsetCmd("zremrangebylex", 4, Write, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zremrange(e, dst, args, zrLex) }),
		zsetCmd("zrank", 3, ReadOnly|Fast, "Returns the index of a member in a sorted set ordered by ascending scores.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrank(e, dst, args, false) }),
		zsetCmd("zrevrank", 3, ReadOnly|Fast, "Returns the index of a member in a sorted set ordered by descending scores.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrank(e, dst, args, true) }),
		zsetCmd("zpopmin", -2, Write|Fast, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zpop(e, dst, args, false) }),
		zsetCmd("zpopmax", -2, Write|Fast, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zpop(e, dst, args, true) }),
		zsetKeysCmd("zmpop", -4, Write|MovableKeys, 0, 0, 0, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", cmdZMPop),
		zsetCmd("zrandmember", -2, ReadOnly|Random, "Returns one or more random members from a sorted set.", cmdZRandMember),
		zsetKeysCmd("zunion", -3, ReadOnly|MovableKeys, 0, 0, 0, "Returns the union of multiple sorted sets.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zunion", zopUnion, false)
			}),
		zsetKeysCmd("zinter", -3, ReadOnly|MovableKeys, 0, 0, 0, "Returns the intersect of multiple sorted sets.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zinter", zopInter, false)
			}),
		zsetKeysCmd("zdiff", -3, ReadOnly|MovableKeys, 0, 0, 0, "Returns the difference between multiple sorted sets.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zdiff", zopDiff, false)
			}),
		zsetKeysCmd("zintercard", -3, ReadOnly|MovableKeys, 0, 0, 0, "Returns the number of members of the intersect of multiple sorted sets.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zintercard", zopInter, true)
			}),
		zsetKeysCmd("zunionstore", -4, Write|DenyOOM|MovableKeys, 1, 1, 1, "Stores the union of multiple sorted sets in a key.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zunionstore", zopUnion, false)
			}),
		zsetKeysCmd("zinterstore", -4, Write|DenyOOM|MovableKeys, 1, 1, 1, "Stores the intersect of multiple sorted sets in a key.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zinterstore", zopInter, false)
			}),
		zsetKeysCmd("zdiffstore", -4, Write|DenyOOM|MovableKeys, 1, 1, 1, "Stores the difference of multiple sorted sets in a key.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.zsetOp(e, dst, args, "zdiffstore", zopDiff, false)
			}),
	)
}

// readZSet looks key up for a read; wrong reports a non-zset.
func (s *Store) readZSet(e *Env, key []byte) (z *zsetValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindZSet, false)
	if v == nil {
		return nil, wrong
	}
	return v.zset, false
}

// ZADD flags.
const (
	zaddNX = 1 << iota
	zaddXX
	zaddGT
	zaddLT
	zaddCH
	zaddINCR
)

func cmdZAdd(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	flags := 0
	i := 2
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case collFold(a, "nx"):
			flags |= zaddNX
		case collFold(a, "xx"):
			flags |= zaddXX
		case collFold(a, "gt"):
			flags |= zaddGT
		case collFold(a, "lt"):
			flags |= zaddLT
		case collFold(a, "ch"):
			flags |= zaddCH
		case collFold(a, "incr"):
			flags |= zaddINCR
		default:
			goto parsed
		}
	}
parsed:
	return s.zadd(e, dst, args[1], args[i:], flags)
}

func cmdZIncrBy(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.zadd(e, dst, args[1], args[2:], zaddINCR)
}

// zadd is ZADD and ZINCRBY (INCR); elems are score/member pairs.
func (s *Store) zadd(e *Env, dst []byte, key []byte, elems [][]byte, flags int) []byte {
	nx, xx, gt, lt := flags&zaddNX != 0, flags&zaddXX != 0, flags&zaddGT != 0, flags&zaddLT != 0
	incr := flags&zaddINCR != 0
	if len(elems) == 0 || len(elems)%2 != 0 {
		return resp.AppendError(dst, errSyntax)
	}
	if nx && xx {
		return resp.AppendError(dst, "ERR XX and NX options at the same time are not compatible")
	}
	if (gt && nx) || (lt && nx) || (gt && lt) {
		return resp.AppendError(dst, "ERR GT, LT, and/or NX options at the same time are not compatible")
	}
	if incr && len(elems) > 2 {
		return resp.AppendError(dst, "ERR INCR option supports a single increment-element pair")
	}
	var buf [16]float64
	scores := buf[:0]
	if len(elems)/2 > len(buf) {
		scores = make([]float64, 0, len(elems)/2)
	}
	scores = scores[:len(elems)/2]
	for j := range scores {
		f, ok := collFloat(elems[2*j])
		if !ok {
			return resp.AppendError(dst, errNotFloat)
		}
		scores[j] = f
	}
	v := s.lookupWrite(e, key)
	if v != nil && v.kind != kindZSet {
		return resp.AppendError(dst, errWrongType)
	}
	var added, updated, processed int64
	var score float64
	if v == nil && !xx {
		z := newZSet()
		// Redis picks the encoding of a new sorted set by its first member.
		z.skiplist = s.cfg.ZSetMaxListpackEntries == 0 || s.cfg.ZSetMaxListpackValue < int64(len(elems[1]))
		v = &value{kind: kindZSet, zset: z}
		s.put(key, v)
	}
	if v != nil {
		z := v.zset
		for j, sc := range scores {
			m := bstr(elems[2*j+1])
			ref, h, exists := z.dict.probe(m)
			var cur float64
			if exists {
				cur = z.dict.ent(uint32(ref)).score
			}
			switch {
			case exists:
				if nx {
					continue
				}
				if incr {
					sc += cur
					if math.IsNaN(sc) {
						return resp.AppendError(dst, errNaNScore)
					}
				}
				if (lt && sc >= cur) || (gt && sc <= cur) {
					continue
				}
				if sc != cur {
					z.moveAt(ref, sc)
					updated++
				}
			case !xx:
				if int64(z.len())+1 > s.cfg.ZSetMaxListpackEntries || int64(len(m)) > s.cfg.ZSetMaxListpackValue {
					z.skiplist = true
				}
				z.addAt(ref, h, m, sc)
				added++
			default:
				continue
			}
			processed++
			score = sc
		}
	}
	if added+updated > 0 {
		s.notify(e, notifyZSet, zaddEvent(incr), key)
	}
	if incr {
		if processed > 0 {
			return appendScore(dst, score)
		}
		return resp.AppendNull(dst)
	}
	if flags&zaddCH != 0 {
		return resp.AppendInt(dst, added+updated)
	}
	return resp.AppendInt(dst, added)
}

func cmdZRem(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v := s.lookupWrite(e, args[1])
	if v == nil {
		return resp.AppendInt(dst, 0)
	}
	if v.kind != kindZSet {
		return resp.AppendError(dst, errWrongType)
	}
	n := int64(0)
	for _, m := range args[2:] {
		if v.zset.del(m) {
			n++
		}
	}
	if n > 0 {
		s.notify(e, notifyZSet, "zrem", args[1])
	}
	if v.zset.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	return resp.AppendInt(dst, n)
}

func cmdZScore(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z != nil {
		if sc, ok := z.score(args[2]); ok {
			return appendScore(dst, sc)
		}
	}
	return resp.AppendNull(dst)
}

func cmdZMScore(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	dst = resp.AppendArrayLen(dst, len(args)-2)
	for _, m := range args[2:] {
		sc, ok := 0.0, false
		if z != nil {
			sc, ok = z.score(m)
		}
		if ok {
			dst = appendScore(dst, sc)
		} else {
			dst = resp.AppendNull(dst)
		}
	}
	return dst
}

func cmdZCard(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(z.len()))
}

func (s *Store) zrank(e *Env, dst []byte, args [][]byte, rev bool) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z != nil {
		if idx, ok := z.dict.lookup(bstr(args[2])); ok {
			r := z.tree.rankOfIdx(idx)
			if rev {
				r = z.len() - 1 - r
			}
			return resp.AppendInt(dst, int64(r))
		}
	}
	return resp.AppendNull(dst)
}

// zpop is ZPOPMIN and ZPOPMAX (max); RESP2 replies a flat member/score
// array.
func (s *Store) zpop(e *Env, dst []byte, args [][]byte, max bool) []byte {
	if len(args) > 3 {
		return resp.AppendError(dst, errSyntax)
	}
	count := int64(1)
	if len(args) == 3 {
		n, ok := collInt(args[2])
		if !ok || n < 0 {
			return resp.AppendError(dst, errMustBePositive)
		}
		count = n
	}
	v := s.lookupWrite(e, args[1])
	if v == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	if v.kind != kindZSet {
		return resp.AppendError(dst, errWrongType)
	}
	z := v.zset
	count = min(count, int64(z.len()))
	dst = resp.AppendArrayLen(dst, int(count)*2)
	for range count {
		dst = appendPopped(dst, z, max)
	}
	s.notifyZPop(e, args[1], z, count, max)
	return dst
}

// appendPopped removes z's first (or last, max) entry and appends it as a
// member and a score.
func appendPopped(dst []byte, z *zsetValue, max bool) []byte {
	r := 0
	if max {
		r = z.len() - 1
	}
	en := z.removeAt(r)
	dst = resp.AppendBulkString(dst, en.member)
	return appendScore(dst, en.score)
}

// cmdZMPop is ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: pops from
// the first of the keys that holds a sorted set.
func cmdZMPop(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	keys, max, count, errMsg := parseMPop(args, zsetWhere)
	if errMsg != "" {
		return resp.AppendError(dst, errMsg)
	}
	return s.mpopFirst(e, dst, keys, max, count, tryZMPop)
}

// cmdZRandMember is ZRANDMEMBER key [count [WITHSCORES]]. Picks come from
// e.Rand over ranks, so they are deterministic but not Redis's: a count of
// at least the set's size replies the whole set from the highest score
// down, as Redis does; other counts reply distinct (count > 0) or
// independent (count < 0) uniform picks, in pick order.
func cmdZRandMember(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) == 2 {
		z, wrong := s.readZSet(e, args[1])
		if wrong {
			return resp.AppendError(dst, errWrongType)
		}
		if z == nil {
			return resp.AppendNull(dst)
		}
		c := z.tree.at(e.Rand.IntN(z.len()))
		return resp.AppendBulkString(dst, c.entry().member)
	}
	l, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if l == math.MinInt64 {
		return resp.AppendError(dst, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
	}
	if len(args) > 4 || (len(args) == 4 && !collFold(args[3], "withscores")) {
		return resp.AppendError(dst, errSyntax)
	}
	withScores := len(args) == 4
	if withScores && (l < -math.MaxInt64/2 || l > math.MaxInt64/2) {
		return resp.AppendError(dst, "ERR value is out of range")
	}
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil || l == 0 {
		return resp.AppendArrayLen(dst, 0)
	}
	n := z.len()
	emit := func(dst []byte, en zentry) []byte {
		dst = resp.AppendBulkString(dst, en.member)
		if withScores {
			dst = appendScore(dst, en.score)
		}
		return dst
	}
	arrayLen := func(dst []byte, k int64) []byte {
		if withScores {
			k *= 2
		}
		return resp.AppendArrayLen(dst, int(k))
	}
	switch {
	case l < 0:
		dst = arrayLen(dst, -l)
		for range -l {
			c := z.tree.at(e.Rand.IntN(n))
			dst = emit(dst, c.entry())
		}
		return dst
	case l >= int64(n):
		dst = arrayLen(dst, int64(n))
		for c := z.tree.at(n - 1); c.leaf != nil; c.prev() {
			dst = emit(dst, c.entry())
		}
		return dst
	}
	// A partial Fisher-Yates shuffle of the ranks, the swapped ones kept
	// in a map.
	dst = arrayLen(dst, l)
	moved := make(map[int]int, l)
	at := func(i int) int {
		if r, ok := moved[i]; ok {
			return r
		}
		return i
	}
	for i := range int(l) {
		j := i + e.Rand.IntN(n-i)
		ri, rj := at(i), at(j)
		moved[j] = ri
		c := z.tree.at(rj)
		dst = emit(dst, c.entry())
	}
	return dst
}
