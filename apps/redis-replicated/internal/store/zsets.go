package store

import (
	"math"
	"sort"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// zsetValue is a sorted set: a slice kept sorted by (score, member bytes),
// Redis's order, plus a member -> score map. Inserts and removals move
// slice elements (O(n)) where Redis's skiplist is O(log n); rank and score
// lookups are O(log n) and O(1) as in Redis.
type zsetValue struct {
	sorted []zentry
	scores map[string]float64
}

type zentry struct {
	member string
	score  float64
}

func newZSet() *zsetValue { return &zsetValue{scores: make(map[string]float64)} }

func (z *zsetValue) len() int { return len(z.sorted) }

// less orders entries as Redis does: by score, then by member bytes.
func zless(a zentry, score float64, member string) bool {
	return a.score < score || (a.score == score && a.member < member)
}

// pos is the index of (score, member) or where it would go.
func (z *zsetValue) pos(score float64, member string) int {
	return sort.Search(len(z.sorted), func(i int) bool { return !zless(z.sorted[i], score, member) })
}

// set inserts member or moves it to score. A score of -0 is stored as 0:
// Redis 7.0's small (listpack) sorted sets store scores as text in which an
// integral -0 becomes "0"; its large (skiplist) ones would keep -0, which
// this type does not imitate.
func (z *zsetValue) set(member string, score float64) {
	if score == 0 {
		score = 0
	}
	if old, ok := z.scores[member]; ok {
		i := z.pos(old, member)
		z.sorted = append(z.sorted[:i], z.sorted[i+1:]...)
	}
	z.scores[member] = score
	i := z.pos(score, member)
	z.sorted = append(z.sorted, zentry{})
	copy(z.sorted[i+1:], z.sorted[i:])
	z.sorted[i] = zentry{member: member, score: score}
}

func (z *zsetValue) del(member string) bool {
	old, ok := z.scores[member]
	if !ok {
		return false
	}
	i := z.pos(old, member)
	z.sorted = append(z.sorted[:i], z.sorted[i+1:]...)
	delete(z.scores, member)
	return true
}

func zsetCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", Summary: summary, run: run}
}

func init() {
	register(
		zsetCmd("zadd", -4, Write|DenyOOM|Fast, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", cmdZAdd),
		zsetCmd("zincrby", 4, Write|DenyOOM|Fast, "Increments the score of a member in a sorted set.", cmdZIncrBy),
		zsetCmd("zrem", -3, Write|Fast, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", cmdZRem),
		zsetCmd("zscore", 3, ReadOnly|Fast, "Returns the score of a member in a sorted set.", cmdZScore),
		zsetCmd("zcard", 2, ReadOnly|Fast, "Returns the number of members in a sorted set.", cmdZCard),
		zsetCmd("zrange", -4, ReadOnly, "Returns members in a sorted set within a range of indexes.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrange(e, dst, args, false, false) }),
		zsetCmd("zrevrange", -4, ReadOnly, "Returns members in a sorted set within a range of indexes in reverse order.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrange(e, dst, args, true, false) }),
		zsetCmd("zrangebyscore", -4, ReadOnly, "Returns members in a sorted set within a range of scores.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrange(e, dst, args, false, true) }),
		zsetCmd("zrank", 3, ReadOnly|Fast, "Returns the index of a member in a sorted set ordered by ascending scores.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrank(e, dst, args, false) }),
		zsetCmd("zrevrank", 3, ReadOnly|Fast, "Returns the index of a member in a sorted set ordered by descending scores.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zrank(e, dst, args, true) }),
		zsetCmd("zpopmin", -2, Write|Fast, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zpop(e, dst, args, false) }),
		zsetCmd("zpopmax", -2, Write|Fast, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.zpop(e, dst, args, true) }),
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
	scores := make([]float64, len(elems)/2)
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
		v = &value{kind: kindZSet, zset: newZSet()}
		s.put(key, v)
	}
	if v != nil {
		z := v.zset
		for j, sc := range scores {
			m := string(elems[2*j+1])
			cur, exists := z.scores[m]
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
					z.set(m, sc)
					updated++
				}
			case !xx:
				z.set(m, sc)
				added++
			default:
				continue
			}
			processed++
			score = sc
		}
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
		if v.zset.del(string(m)) {
			n++
		}
	}
	if v.zset.len() == 0 {
		s.remove(args[1])
	}
	return resp.AppendInt(dst, n)
}

func cmdZScore(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z != nil {
		if sc, ok := z.scores[string(args[2])]; ok {
			return appendScore(dst, sc)
		}
	}
	return resp.AppendNull(dst)
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
		if sc, ok := z.scores[string(args[2])]; ok {
			r := z.pos(sc, string(args[2]))
			if rev {
				r = z.len() - 1 - r
			}
			return resp.AppendInt(dst, int64(r))
		}
	}
	return resp.AppendNull(dst)
}

// scoreBound is one end of a BYSCORE range.
type scoreBound struct {
	v    float64
	excl bool
}

// parseScoreBound parses "x" or "(x" as Redis's zslParseRange does (plain
// strtod: leading spaces, "" as 0 and overflow to ±inf are accepted).
func parseScoreBound(b []byte) (scoreBound, bool) {
	var r scoreBound
	if len(b) > 0 && b[0] == '(' {
		r.excl = true
		b = b[1:]
	}
	for len(b) > 0 && isCSpace(b[0]) {
		b = b[1:]
	}
	if len(b) == 0 {
		return r, true
	}
	f, ok, _ := strtod(b)
	if !ok || math.IsNaN(f) {
		return r, false
	}
	r.v = f
	return r, true
}

func (b scoreBound) aboveMin(x float64) bool {
	if b.excl {
		return x > b.v
	}
	return x >= b.v
}

func (b scoreBound) belowMax(x float64) bool {
	if b.excl {
		return x < b.v
	}
	return x <= b.v
}

// zrange is ZRANGE (with BYSCORE, REV, LIMIT, WITHSCORES; BYLEX is not
// supported and answers a syntax error), ZREVRANGE and ZRANGEBYSCORE.
func (s *Store) zrange(e *Env, dst []byte, args [][]byte, rev, byScore bool) []byte {
	name := "zrange"
	switch {
	case rev:
		name = "zrevrange"
	case byScore:
		name = "zrangebyscore"
	}
	legacy := name != "zrange"
	withScores := false
	offset, limit := int64(0), int64(-1)
	revOpt, scoreOpt := false, false
	for j := 4; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case collFold(a, "withscores"):
			withScores = true
		case collFold(a, "limit") && left >= 2:
			o, ok1 := collInt(args[j+1])
			if !ok1 {
				return resp.AppendError(dst, errNotInt)
			}
			l, ok2 := collInt(args[j+2])
			if !ok2 {
				return resp.AppendError(dst, errNotInt)
			}
			offset, limit = o, l
			j += 2
		case !legacy && !revOpt && collFold(a, "rev"):
			revOpt = true
		case !legacy && !scoreOpt && collFold(a, "byscore"):
			scoreOpt = true
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	if revOpt {
		rev = true
	}
	if scoreOpt {
		byScore = true
	}
	if limit != -1 && !byScore {
		return resp.AppendError(dst, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	minArg, maxArg := args[2], args[3]
	if rev && byScore {
		minArg, maxArg = maxArg, minArg
	}
	var start, stop int64
	var lo, hi scoreBound
	if byScore {
		var ok1, ok2 bool
		lo, ok1 = parseScoreBound(minArg)
		hi, ok2 = parseScoreBound(maxArg)
		if !ok1 || !ok2 {
			return resp.AppendError(dst, errNotFloatRange)
		}
	} else {
		var ok1, ok2 bool
		start, ok1 = collInt(minArg)
		stop, ok2 = collInt(maxArg)
		if !ok1 || !ok2 {
			return resp.AppendError(dst, errNotInt)
		}
	}
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	var picked []zentry
	n := int64(z.len())
	if !byScore {
		a, b := normRange(start, stop, n)
		if rev {
			a, b = n-b, n-a
		}
		picked = z.sorted[a:b]
	} else {
		// [first, end) is the in-range slice of z.sorted.
		first := sort.Search(z.len(), func(i int) bool { return lo.aboveMin(z.sorted[i].score) })
		end := sort.Search(z.len(), func(i int) bool { return !hi.belowMax(z.sorted[i].score) })
		if end < first {
			end = first
		}
		picked = z.sorted[first:end]
		switch {
		case offset < 0 || (offset > 0 && offset >= n):
			picked = nil
		case offset >= int64(len(picked)):
			picked = nil
		default:
			if rev {
				picked = picked[:int64(len(picked))-offset]
			} else {
				picked = picked[offset:]
			}
		}
		if limit >= 0 && limit < int64(len(picked)) {
			if rev {
				picked = picked[int64(len(picked))-limit:]
			} else {
				picked = picked[:limit]
			}
		}
	}
	cnt := len(picked)
	if withScores {
		cnt *= 2
	}
	dst = resp.AppendArrayLen(dst, cnt)
	for k := range picked {
		en := picked[k]
		if rev {
			en = picked[len(picked)-1-k]
		}
		dst = resp.AppendBulkString(dst, en.member)
		if withScores {
			dst = appendScore(dst, en.score)
		}
	}
	return dst
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
	if count > int64(z.len()) {
		count = int64(z.len())
	}
	dst = resp.AppendArrayLen(dst, int(count)*2)
	for range count {
		var en zentry
		if max {
			en = z.sorted[len(z.sorted)-1]
		} else {
			en = z.sorted[0]
		}
		z.del(en.member)
		dst = resp.AppendBulkString(dst, en.member)
		dst = appendScore(dst, en.score)
	}
	if z.len() == 0 {
		s.remove(args[1])
	}
	return dst
}
