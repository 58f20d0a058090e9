package store

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Operations and aggregates of zsetOp.
const (
	zopUnion = iota
	zopInter
	zopDiff
)

const (
	aggSum = iota
	aggMin
	aggMax
)

// zsrc is one input of ZUNION, ZINTER, ZDIFF and friends: a sorted set, a
// set (every member scored 1, as Redis takes sets) or nothing (a missing
// key), and its weight.
type zsrc struct {
	z      *zsetValue
	set    *setValue
	weight float64
}

func (c *zsrc) length() int {
	switch {
	case c.z != nil:
		return c.z.len()
	case c.set != nil:
		return c.set.len()
	}
	return 0
}

func (c *zsrc) score(m string) (float64, bool) {
	switch {
	case c.z != nil:
		sc, ok := c.z.scoreOf(m)
		return sc, ok
	case c.set != nil:
		return 1, c.set.has([]byte(m))
	}
	return 0, false
}

// each calls fn on every member and its score until fn returns false.
func (c *zsrc) each(fn func(m string, sc float64) bool) {
	switch {
	case c.z != nil:
		if c.z.len() == 0 {
			return
		}
		for cur := c.z.tree.at(0); cur.leaf != nil; cur.next() {
			en := cur.entry()
			if !fn(en.member, en.score) {
				return
			}
		}
	case c.set != nil:
		for _, m := range c.set.members {
			if !fn(m, 1) {
				return
			}
		}
	}
}

// zaggregate folds v into t as Redis's zunionInterAggregate does: a sum
// that is NaN (inf + -inf) is 0, and a NaN v never wins MIN or MAX.
func zaggregate(t, v float64, agg int) float64 {
	switch agg {
	case aggMin:
		if v < t {
			return v
		}
		return t
	case aggMax:
		if v > t {
			return v
		}
		return t
	}
	t += v
	if math.IsNaN(t) {
		return 0
	}
	return t
}

// zweighted is score times weight, 0 when that is NaN (inf times 0).
func zweighted(sc, w float64) float64 {
	v := sc * w
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// zsetOp is ZUNION, ZINTER, ZDIFF (numkeys at args[1]), their STORE forms
// (name ends in "store": destination args[1], numkeys args[2]) and
// ZINTERCARD (cardOnly), after Redis's zunionInterDiffGenericCommand:
// numkeys is checked, then the keys are looked up (a wrong type fails
// before any option is read), then the options; inputs are ordered by
// size, stably, as Redis's qsort orders them, which decides the order in
// which a member's weighted scores are aggregated.
func (s *Store) zsetOp(e *Env, dst []byte, args [][]byte, name string, op int, cardOnly bool) []byte {
	store := strings.HasSuffix(name, "store")
	numIdx := 1
	if store {
		numIdx = 2
	}
	nk, ok := collInt(args[numIdx])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if nk < 1 {
		return resp.AppendError(dst, "ERR at least 1 input key is needed for '"+name+"' command")
	}
	if nk > int64(len(args)-(numIdx+1)) {
		return resp.AppendError(dst, errSyntax)
	}
	srcs := make([]zsrc, nk)
	j := numIdx + 1
	for i := range srcs {
		var v *value
		if store {
			v = s.lookupWrite(e, args[j])
		} else {
			v = s.lookup(e, args[j])
		}
		if v != nil {
			switch v.kind {
			case kindZSet:
				srcs[i].z = v.zset
			case kindSet:
				srcs[i].set = v.set
			default:
				return resp.AppendError(dst, errWrongType)
			}
		}
		srcs[i].weight = 1
		j++
	}
	agg := aggSum
	withScores := false
	limit := int64(0)
	for j < len(args) {
		left := len(args) - j
		a := args[j]
		switch {
		case op != zopDiff && !cardOnly && int64(left) >= nk+1 && collFold(a, "weights"):
			j++
			for i := range srcs {
				w, ok := collFloat(args[j])
				if !ok {
					return resp.AppendError(dst, "ERR weight value is not a float")
				}
				srcs[i].weight = w
				j++
			}
		case op != zopDiff && !cardOnly && left >= 2 && collFold(a, "aggregate"):
			switch b := args[j+1]; {
			case collFold(b, "sum"):
				agg = aggSum
			case collFold(b, "min"):
				agg = aggMin
			case collFold(b, "max"):
				agg = aggMax
			default:
				return resp.AppendError(dst, errSyntax)
			}
			j += 2
		case !store && !cardOnly && collFold(a, "withscores"):
			withScores = true
			j++
		case cardOnly && left >= 2 && collFold(a, "limit"):
			l, ok := collInt(args[j+1])
			if !ok || l < 0 {
				return resp.AppendError(dst, "ERR LIMIT can't be negative")
			}
			limit = l
			j += 2
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	if op != zopDiff {
		slices.SortStableFunc(srcs, func(a, b zsrc) int { return cmp.Compare(a.length(), b.length()) })
	}

	var res []zentry
	card := int64(0)
	switch op {
	case zopUnion:
		acc := make(map[string]float64)
		for i := range srcs {
			src := &srcs[i]
			src.each(func(m string, sc float64) bool {
				v := zweighted(sc, src.weight)
				if t, ok := acc[m]; ok {
					acc[m] = zaggregate(t, v, agg)
				} else {
					acc[m] = v
				}
				return true
			})
		}
		res = make([]zentry, 0, len(acc))
		for m, sc := range acc {
			res = append(res, zentry{member: m, score: sc})
		}
	case zopInter:
		srcs[0].each(func(m string, sc float64) bool {
			score := zweighted(sc, srcs[0].weight)
			for k := 1; k < len(srcs); k++ {
				v, ok := srcs[k].score(m)
				if !ok {
					return true
				}
				score = zaggregate(score, v*srcs[k].weight, agg)
			}
			if cardOnly {
				card++
				return limit == 0 || card < limit
			}
			res = append(res, zentry{member: m, score: score})
			return true
		})
	case zopDiff:
		srcs[0].each(func(m string, sc float64) bool {
			for k := 1; k < len(srcs); k++ {
				if _, ok := srcs[k].score(m); ok {
					return true
				}
			}
			res = append(res, zentry{member: m, score: sc})
			return true
		})
	}
	if cardOnly {
		return resp.AppendInt(dst, card)
	}
	slices.SortFunc(res, func(a, b zentry) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return strings.Compare(a.member, b.member)
	})
	if store {
		return s.storeZSet(e, dst, args[1], res, name)
	}
	if withScores {
		dst = resp.AppendArrayLen(dst, 2*len(res))
	} else {
		dst = resp.AppendArrayLen(dst, len(res))
	}
	for _, en := range res {
		dst = resp.AppendBulkString(dst, en.member)
		if withScores {
			dst = appendScore(dst, en.score)
		}
	}
	return dst
}
