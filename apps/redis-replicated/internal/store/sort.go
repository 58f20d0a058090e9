package store

// SORT and SORT_RO, as Redis 7.0's sort.c: BY (a pattern with '*', or
// without one to skip sorting; "->field" dereferences a hash), GET (# or a
// pattern), LIMIT, ASC|DESC, ALPHA and, for SORT, STORE.
//
// Differences from Redis 7.0: ALPHA compares bytes, as Redis does in the
// C locale (Redis uses the server's LC_COLLATE, which need not be the same
// on every replica); elements whose ALPHA BY values tie keep their input
// order (Redis's qsort may not). Unsorted sets (BY without '*') come out
// in the set's own order, which is not Redis's hash-table order.

import (
	"bytes"
	"math"
	"slices"

	"github.com/gomu-rdma/gomu/internal/resp"
)

func init() {
	register(
		&Command{Name: "sort", Arity: -2, Flags: Write | DenyOOM | MovableKeys, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Sort the elements in a list, a set or a sorted set, optionally storing the result.",
			run: func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.sort(e, dst, args, false) }},
		&Command{Name: "sort_ro", Arity: -2, Flags: ReadOnly | MovableKeys, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Returns the sorted elements of a list, a set, or a sorted set.",
			run: func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.sort(e, dst, args, true) }},
	)
}

// sortElem is one element to sort with its sort key.
type sortElem struct {
	obj   []byte
	score float64
	cmp   []byte // the BY value for ALPHA BY; nil when missing
}

func (s *Store) sort(e *Env, dst []byte, args [][]byte, readonly bool) []byte {
	var (
		desc, alpha, dontsort bool
		limitStart            int64
		limitCount            int64 = -1
		sortby, storekey      []byte
		gets                  [][]byte
	)
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case collFold(a, "asc"):
			desc = false
		case collFold(a, "desc"):
			desc = true
		case collFold(a, "alpha"):
			alpha = true
		case collFold(a, "limit") && left >= 2:
			st, ok1 := collInt(args[j+1])
			ct, ok2 := collInt(args[j+2])
			if !ok1 || !ok2 {
				return resp.AppendError(dst, errNotInt)
			}
			limitStart, limitCount = st, ct
			j += 2
		case !readonly && collFold(a, "store") && left >= 1:
			storekey = args[j+1]
			j++
		case collFold(a, "by") && left >= 1:
			sortby = args[j+1]
			if bytes.IndexByte(cString(sortby), '*') < 0 {
				dontsort = true
			}
			j++
		case collFold(a, "get") && left >= 1:
			gets = append(gets, args[j+1])
			j++
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}

	v := s.lookup(e, args[1])
	if v != nil && v.kind != kindList && v.kind != kindSet && v.kind != kindZSet {
		return resp.AppendError(dst, errWrongType)
	}
	k := kindList // a missing key sorts as an empty list
	if v != nil {
		k = v.kind
	}
	if dontsort && k == kindSet && (storekey != nil || e.InScript) {
		// Redis sorts a stored set, or one a script reads, for a result
		// independent of its hash table's order.
		dontsort, alpha, sortby = false, true, nil
	}

	var n int64
	switch k {
	case kindList:
		if v != nil {
			n = int64(v.list.len())
		}
	case kindSet:
		n = int64(v.set.len())
	case kindZSet:
		n = int64(v.zset.len())
	}
	start := max(limitStart, 0)
	var end int64
	if limitCount < 0 {
		end = n - 1
	} else {
		end = start + min(limitCount, n+1) - 1
	}
	if start >= n {
		start, end = n-1, n-2
	}
	if end >= n {
		end = n - 1
	}

	var vec []sortElem
	switch {
	case dontsort && (k == kindList || k == kindZSet):
		// Native order (reversed by DESC), the LIMIT range only.
		var all [][]byte
		if k == kindList {
			if v != nil {
				all = v.list.elems()
			}
		} else {
			v.zset.each(func(en zentry) { all = append(all, []byte(en.member)) })
		}
		for i := start; i <= end; i++ {
			idx := i
			if desc {
				idx = n - 1 - i
			}
			vec = append(vec, sortElem{obj: all[idx]})
		}
		if end >= start {
			end -= start
			start = 0
		}
	case k == kindList:
		if v != nil {
			for _, x := range v.list.elems() {
				vec = append(vec, sortElem{obj: x})
			}
		}
	case k == kindSet:
		for _, m := range v.set.ordered() {
			vec = append(vec, sortElem{obj: []byte(m)})
		}
	default: // kindZSet
		v.zset.each(func(en zentry) { vec = append(vec, sortElem{obj: []byte(en.member)}) })
	}

	convErr := false
	if !dontsort {
		for i := range vec {
			var by []byte
			if sortby != nil {
				b, ok := s.sortLookup(e, sortby, vec[i].obj)
				if !ok {
					continue
				}
				by = b
			} else {
				by = vec[i].obj
			}
			if alpha {
				if sortby != nil {
					vec[i].cmp = by
					if vec[i].cmp == nil {
						vec[i].cmp = []byte{}
					}
				}
				continue
			}
			f, ok := sortStrtod(by)
			if !ok {
				convErr = true
			}
			vec[i].score = f
		}
		byPattern := sortby != nil
		slices.SortStableFunc(vec, func(a, b sortElem) int {
			var c int
			switch {
			case !alpha:
				switch {
				case a.score > b.score:
					c = 1
				case a.score < b.score:
					c = -1
				default:
					c = bytes.Compare(a.obj, b.obj)
				}
			case byPattern:
				switch {
				case a.cmp == nil && b.cmp == nil:
					c = 0
				case a.cmp == nil:
					c = -1
				case b.cmp == nil:
					c = 1
				default:
					c = bytes.Compare(a.cmp, b.cmp)
				}
			default:
				c = bytes.Compare(a.obj, b.obj)
			}
			if desc {
				return -c
			}
			return c
		})
	}

	count := end - start + 1
	outLen := count
	if len(gets) > 0 {
		outLen = int64(len(gets)) * count
	}
	if convErr {
		return resp.AppendError(dst, "ERR One or more scores can't be converted into double")
	}
	if storekey == nil {
		dst = resp.AppendArrayLen(dst, int(outLen))
		for j := start; j <= end; j++ {
			if len(gets) == 0 {
				dst = resp.AppendBulk(dst, vec[j].obj)
			}
			for _, g := range gets {
				if val, ok := s.sortLookup(e, g, vec[j].obj); ok {
					dst = resp.AppendBulk(dst, val)
				} else {
					dst = resp.AppendNull(dst)
				}
			}
		}
		return dst
	}
	l := &listValue{}
	for j := start; j <= end; j++ {
		if len(gets) == 0 {
			l.pushBack(bytes.Clone(vec[j].obj))
		}
		for _, g := range gets {
			val, _ := s.sortLookup(e, g, vec[j].obj)
			l.pushBack(bytes.Clone(val))
		}
	}
	if outLen > 0 {
		s.lookupWrite(e, storekey) // an expired key goes with its TTL
		// put replaces the old value (no remove first: Redis overwrites
		// it, which is no "new" key).
		s.put(storekey, &value{kind: kindList, list: l})
		s.notify(e, notifyList, "sortstore", storekey)
	} else if s.lookupWrite(e, storekey) != nil {
		s.remove(storekey)
		s.notify(e, notifyGeneric, "del", storekey)
	}
	return resp.AppendInt(dst, outLen)
}

// sortLookup is Redis's lookupKeyByPattern: "#" is subst itself;
// otherwise the first '*' of pattern is replaced by subst to name a string
// key, or, when "->field" follows the '*', a hash key and its field. ok is
// false when there is no such value (or the pattern has no '*').
func (s *Store) sortLookup(e *Env, pattern, subst []byte) (val []byte, ok bool) {
	cpat := cString(pattern)
	if len(cpat) == 1 && cpat[0] == '#' {
		return subst, true
	}
	p := bytes.IndexByte(cpat, '*')
	if p < 0 {
		return nil, false
	}
	var field []byte
	hasField := false
	if f := bytes.Index(cpat[p+1:], []byte("->")); f >= 0 && p+1+f+2 < len(cpat) {
		f += p + 1
		field = pattern[f+2:] // to the end of the whole pattern, as sdslen
		hasField = true
		pattern = pattern[:f]
	}
	key := make([]byte, 0, len(pattern)+len(subst))
	key = append(key, pattern[:p]...)
	key = append(key, subst...)
	key = append(key, pattern[p+1:]...)
	v := s.lookup(e, key)
	if v == nil {
		return nil, false
	}
	if hasField {
		if v.kind != kindHash {
			return nil, false
		}
		return v.hash.get(field)
	}
	if v.kind != kindString {
		return nil, false
	}
	return v.str, true
}

// sortStrtod converts a sort key as SORT does, with C's strtod: leading
// white space is skipped, the rest (to a NUL) must be consumed, and NaN,
// overflow and underflow fail. The empty string is 0.
func sortStrtod(b []byte) (float64, bool) {
	b = cString(b) // strtod stops at the first NUL
	if len(b) == 0 {
		return 0, true
	}
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	if i == len(b) {
		return 0, false // nothing converted: strtod's end is the start
	}
	f, ok, rangeErr := strtod(b[i:])
	if !ok || rangeErr || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
