package store

import (
	"math"
	"slices"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Range kinds and directions of zrangeGeneric, as Redis's
// zrangeGenericCommand takes them: auto means "from the options".
const (
	zrAuto = iota
	zrRank
	zrScore
	zrLex
)

const (
	zrDirAuto = iota
	zrDirForward
	zrDirReverse
)

const errNotLexRange = "ERR min or max not valid string range item"

// scoreRange is a BYSCORE interval.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

// parseScoreBound parses "x" or "(x" as Redis's zslParseRange does: C's
// strtod over the argument up to its first NUL, which skips leading
// spaces, takes "" as 0, and lets an overflow be ±inf; NaN is refused.
func parseScoreBound(b []byte) (v float64, excl, ok bool) {
	b = cString(b)
	if len(b) > 0 && b[0] == '(' {
		excl = true
		b = b[1:]
	}
	t := b
	for len(t) > 0 && isCSpace(t[0]) {
		t = t[1:]
	}
	if len(t) == 0 {
		// No conversion: strtod ends where it began, which is the end
		// of the argument only when there were no spaces either.
		return 0, excl, len(b) == 0
	}
	if f, ok := parseFloatFast(t); ok {
		return f, excl, true
	}
	f, ok, _ := strtod(t)
	if !ok || math.IsNaN(f) {
		return 0, false, false
	}
	return f, excl, true
}

func parseScoreRange(minArg, maxArg []byte) (r scoreRange, ok bool) {
	var ok1, ok2 bool
	r.min, r.minex, ok1 = parseScoreBound(minArg)
	r.max, r.maxex, ok2 = parseScoreBound(maxArg)
	return r, ok1 && ok2
}

// span is the half-open rank interval of z's entries in r.
func (r *scoreRange) span(z *zsetValue) (first, end int) {
	if r.min > r.max || (r.min == r.max && (r.minex || r.maxex)) {
		return 0, 0
	}
	first, _, end = r.spanCursor(z)
	return first, end
}

// spanCursor is span and a cursor on rank first (when first < end).
func (r *scoreRange) spanCursor(z *zsetValue) (first int, c zcursor, end int) {
	if r.min > r.max || (r.min == r.max && (r.minex || r.maxex)) {
		return 0, zcursor{}, 0
	}
	first, c = z.tree.scoreSeek(r.min, r.minex)
	end = z.tree.scoreRank(r.max, !r.maxex)
	return first, c, max(first, end)
}

// lexBound is one end of a BYLEX interval: "-" (inf < 0), "+" (inf > 0),
// or a string, exclusive or not.
type lexBound struct {
	v   string
	inf int
	ex  bool
}

// parseLexBound parses "-", "+", "(x" or "[x" as Redis's
// zslParseLexRangeItem does ("-" and "+" are read as C strings).
func parseLexBound(b []byte) (lexBound, bool) {
	if len(b) == 0 {
		return lexBound{}, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) > 1 && b[1] != 0 {
			return lexBound{}, false
		}
		if b[0] == '+' {
			return lexBound{inf: 1, ex: true}, true
		}
		return lexBound{inf: -1, ex: true}, true
	case '(':
		return lexBound{v: string(b[1:]), ex: true}, true
	case '[':
		return lexBound{v: string(b[1:])}, true
	}
	return lexBound{}, false
}

// cmpMember compares member m with bound b, as sdscmplex(m, b) does.
func (b *lexBound) cmpMember(m string) int {
	switch {
	case b.inf < 0:
		return 1
	case b.inf > 0:
		return -1
	}
	return strings.Compare(m, b.v)
}

// lexRange is a BYLEX interval.
type lexRange struct{ min, max lexBound }

func parseLexRange(minArg, maxArg []byte) (r lexRange, ok bool) {
	var ok1, ok2 bool
	r.min, ok1 = parseLexBound(minArg)
	r.max, ok2 = parseLexBound(maxArg)
	return r, ok1 && ok2
}

// empty reports a range that can hold nothing, as zslIsInLexRange tests.
func (r *lexRange) empty() bool {
	var c int
	switch {
	case r.min.inf != 0 && r.min.inf == r.max.inf:
		c = 0
	case r.min.inf < 0 || r.max.inf > 0:
		c = -1
	case r.min.inf > 0 || r.max.inf < 0:
		c = 1
	default:
		c = strings.Compare(r.min.v, r.max.v)
	}
	return c > 0 || (c == 0 && (r.min.ex || r.max.ex))
}

func (r *lexRange) gteMin(m string) bool {
	c := r.min.cmpMember(m)
	if r.min.ex {
		return c > 0
	}
	return c >= 0
}

func (r *lexRange) lteMax(m string) bool {
	c := r.max.cmpMember(m)
	if r.max.ex {
		return c < 0
	}
	return c <= 0
}

// span is the half-open rank interval of z's entries in r. Redis defines
// BYLEX only for members of equal scores; otherwise the interval is found
// by a binary search over ranks, which depends on z's contents alone.
func (r *lexRange) span(z *zsetValue) (first, end int) {
	if r.empty() || z.len() == 0 {
		return 0, 0
	}
	in := func(en zentry) bool { return r.gteMin(en.member) }
	out := func(en zentry) bool { return !r.lteMax(en.member) }
	lo, hi := z.tree.at(0), z.tree.at(z.len()-1)
	if lo.entry().score == hi.entry().score {
		// Monotone: one answer however it is searched.
		first, end = z.tree.countBefore(in), z.tree.countBefore(out)
	} else {
		first, end = z.tree.searchRank(in), z.tree.searchRank(out)
	}
	return first, max(first, end)
}

// limitSpan applies Redis's LIMIT offset count to the in-range ranks
// [first, end), walked forward or in reverse: the ranks picked, from start
// on in the walk's direction.
func limitSpan(first, end int, offset, limit int64, rev bool) (start, n int) {
	if offset < 0 || offset >= int64(end-first) {
		return 0, 0
	}
	n = end - first - int(offset)
	if limit >= 0 && limit < int64(n) {
		n = int(limit)
	}
	if rev {
		return end - 1 - int(offset), n
	}
	return first + int(offset), n
}

// zrangeGeneric is ZRANGE, ZRANGESTORE (store: args[1] is the destination)
// and the older Z[REV]RANGE[BYSCORE|BYLEX], after Redis's
// zrangeGenericCommand: args[keyIdx] is the source key, followed by min,
// max and the options; kind and dir are fixed by the older commands and
// auto for ZRANGE and ZRANGESTORE.
func (s *Store) zrangeGeneric(e *Env, dst []byte, args [][]byte, keyIdx int, store bool, kind, dir int) []byte {
	withScores := false
	offset, limit := int64(0), int64(-1)
	for j := keyIdx + 3; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case !store && collFold(a, "withscores"):
			withScores = true
		case collFold(a, "limit") && left >= 2:
			o, ok := collInt(args[j+1])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			l, ok := collInt(args[j+2])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			offset, limit = o, l
			j += 2
		case dir == zrDirAuto && collFold(a, "rev"):
			dir = zrDirReverse
		case kind == zrAuto && collFold(a, "bylex"):
			kind = zrLex
		case kind == zrAuto && collFold(a, "byscore"):
			kind = zrScore
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	if dir == zrDirAuto {
		dir = zrDirForward
	}
	if kind == zrAuto {
		kind = zrRank
	}
	if limit != -1 && kind == zrRank {
		return resp.AppendError(dst, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	if withScores && kind == zrLex {
		return resp.AppendError(dst, "ERR syntax error, WITHSCORES not supported in combination with BYLEX")
	}
	rev := dir == zrDirReverse
	minArg, maxArg := args[keyIdx+1], args[keyIdx+2]
	if rev && kind != zrRank {
		minArg, maxArg = maxArg, minArg
	}
	var start, stop int64
	var sr scoreRange
	var lr lexRange
	switch kind {
	case zrRank:
		var ok1, ok2 bool
		start, ok1 = collInt(minArg)
		if ok1 {
			stop, ok2 = collInt(maxArg)
		}
		if !ok1 || !ok2 {
			return resp.AppendError(dst, errNotInt)
		}
	case zrScore:
		var ok bool
		if sr, ok = parseScoreRange(minArg, maxArg); !ok {
			return resp.AppendError(dst, errNotFloatRange)
		}
	case zrLex:
		var ok bool
		if lr, ok = parseLexRange(minArg, maxArg); !ok {
			return resp.AppendError(dst, errNotLexRange)
		}
	}
	z, wrong := s.zsetFor(e, args[keyIdx], store)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		if store {
			return s.storeZSet(e, dst, args[1], nil, "zrangestore")
		}
		return resp.AppendArrayLen(dst, 0)
	}
	// The picked entries: n of them from rank at, in the walk's direction;
	// c is on rank at when a search found it already.
	var at, n int
	var c zcursor
	switch kind {
	case zrRank:
		size := int64(z.len())
		a, b := normRange(start, stop, size)
		n = int(b - a)
		at = int(a)
		if rev {
			at = int(size - 1 - a)
		}
	case zrScore:
		first, fc, end := sr.spanCursor(z)
		at, n = limitSpan(first, end, offset, limit, rev)
		if at == first {
			c = fc
		}
	case zrLex:
		first, end := lr.span(z)
		at, n = limitSpan(first, end, offset, limit, rev)
	}
	if n > 0 && c.leaf == nil {
		c = z.tree.at(at)
	}
	if store {
		ents := make([]zentry, 0, n)
		if n > 0 {
			for range n {
				ents = append(ents, c.entry())
				if rev {
					c.prev()
				} else {
					c.next()
				}
			}
		}
		if rev {
			slices.Reverse(ents)
		}
		return s.storeZSet(e, dst, args[1], ents, "zrangestore")
	}
	if withScores {
		dst = resp.AppendArrayLen(dst, 2*n)
	} else {
		dst = resp.AppendArrayLen(dst, n)
	}
	for range n {
		en := c.entry()
		dst = resp.AppendBulkString(dst, en.member)
		if withScores {
			dst = appendScore(dst, en.score)
		}
		if rev {
			c.prev()
		} else {
			c.next()
		}
	}
	return dst
}

// zsetFor looks key up for a read, or for a write (write: expired keys are
// deleted); wrong reports a non-zset.
func (s *Store) zsetFor(e *Env, key []byte, write bool) (z *zsetValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindZSet, write)
	if v == nil {
		return nil, wrong
	}
	return v.zset, false
}

// storeZSet makes key a sorted set of ents (sorted, distinct), replacing
// what it held and its TTL, or deletes key when ents is empty, and
// replies the count, as Redis's *STORE commands do.
func (s *Store) storeZSet(e *Env, dst []byte, key []byte, ents []zentry, event string) []byte {
	if len(ents) == 0 {
		if s.remove(key) {
			s.notify(e, notifyGeneric, "del", key)
		}
		return resp.AppendInt(dst, 0)
	}
	maxLen := 0
	for i := range ents {
		if ents[i].score == 0 {
			ents[i].score = 0 // -0 (see zsetValue)
		}
		maxLen = max(maxLen, len(ents[i].member))
	}
	z := newZSetSorted(ents)
	// The encoding Redis's ZUNIONSTORE & co. convert their result to, and
	// ZRANGESTORE's (created for the count, converted by long members).
	z.skiplist = int64(len(ents)) > s.cfg.ZSetMaxListpackEntries || int64(maxLen) > s.cfg.ZSetMaxListpackValue
	s.put(key, &value{kind: kindZSet, zset: z})
	s.notify(e, notifyZSet, event, key)
	return resp.AppendInt(dst, int64(len(ents)))
}

func cmdZRangeStore(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.zrangeGeneric(e, dst, args, 2, true, zrAuto, zrDirAuto)
}

func cmdZCount(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	r, ok := parseScoreRange(args[2], args[3])
	if !ok {
		return resp.AppendError(dst, errNotFloatRange)
	}
	return s.zcount(e, dst, args[1], r.span)
}

func cmdZLexCount(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	r, ok := parseLexRange(args[2], args[3])
	if !ok {
		return resp.AppendError(dst, errNotLexRange)
	}
	return s.zcount(e, dst, args[1], r.span)
}

// zcount is ZCOUNT and ZLEXCOUNT: the size of the rank span a parsed range
// covers in key's sorted set.
func (s *Store) zcount(e *Env, dst, key []byte, span func(*zsetValue) (int, int)) []byte {
	z, wrong := s.readZSet(e, key)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		return resp.AppendInt(dst, 0)
	}
	first, end := span(z)
	return resp.AppendInt(dst, int64(end-first))
}

// zremrange is ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX.
func (s *Store) zremrange(e *Env, dst []byte, args [][]byte, kind int) []byte {
	var start, stop int64
	var sr scoreRange
	var lr lexRange
	switch kind {
	case zrRank:
		var ok1, ok2 bool
		start, ok1 = collInt(args[2])
		if ok1 {
			stop, ok2 = collInt(args[3])
		}
		if !ok1 || !ok2 {
			return resp.AppendError(dst, errNotInt)
		}
	case zrScore:
		var ok bool
		if sr, ok = parseScoreRange(args[2], args[3]); !ok {
			return resp.AppendError(dst, errNotFloatRange)
		}
	case zrLex:
		var ok bool
		if lr, ok = parseLexRange(args[2], args[3]); !ok {
			return resp.AppendError(dst, errNotLexRange)
		}
	}
	z, wrong := s.zsetFor(e, args[1], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		return resp.AppendInt(dst, 0)
	}
	var first, end int
	switch kind {
	case zrRank:
		a, b := normRange(start, stop, int64(z.len()))
		first, end = int(a), int(b)
	case zrScore:
		first, end = sr.span(z)
	case zrLex:
		first, end = lr.span(z)
	}
	for range end - first {
		z.removeAt(first)
	}
	if end > first {
		s.notify(e, notifyZSet, zremrangeEvents[kind], args[1])
	}
	if z.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	return resp.AppendInt(dst, int64(end-first))
}
