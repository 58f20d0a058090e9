package store

import (
	"cmp"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// SSCAN, HSCAN and ZSCAN iterate one collection as SCAN iterates the
// keyspace (see cmdScan). As in Redis 7.0, a collection in a small
// encoding (intset, listpack) is returned whole in one call with cursor 0,
// in its encoding's order, whatever the cursor and COUNT; one in a large
// encoding is walked along the line of its members' scan hashes, COUNT
// members (or pairs) a call, so that a member present for the whole
// iteration is returned exactly once and a cursor means the same thing on
// every replica.

func init() {
	register(
		setCmd("sscan", -3, ReadOnly|Random, "Iterates over members of a set.", cmdSScan),
		hashCmd("hscan", -3, ReadOnly|Random, "Iterates over fields and values of a hash.", cmdHScan),
		zsetCmd("zscan", -3, ReadOnly|Random, "Iterates over members and scores of a sorted set.", cmdZScan),
	)
}

// scanOpts are the MATCH, COUNT and (SCAN's only) TYPE options of a scan.
type scanOpts struct {
	count   int64
	pat     []byte // nil: everything matches
	typ     []byte
	hasType bool
}

// parseScanOpts parses the options after the cursor, TYPE only when
// withType (SCAN); the reply is an error Redis gives.
func parseScanOpts(args [][]byte, withType bool) (scanOpts, string) {
	o := scanOpts{count: 10}
	for i := 0; i < len(args); i += 2 {
		more := i+1 < len(args)
		switch {
		case more && eqFold(args[i], "count"):
			n, ok := parseRedisInt(args[i+1])
			if !ok {
				return o, errNotInt
			}
			if n < 1 {
				return o, errSyntax
			}
			o.count = n
		case more && eqFold(args[i], "match"):
			o.pat = args[i+1]
			if len(o.pat) == 1 && o.pat[0] == '*' {
				o.pat = nil
			}
		case more && withType && eqFold(args[i], "type"):
			o.typ, o.hasType = args[i+1], true
		default:
			return o, errSyntax
		}
	}
	return o, ""
}

func (o scanOpts) matches(m string) bool { return o.pat == nil || globMatch(o.pat, []byte(m)) }

// scanLine picks, from members (all distinct), those the call at cursor
// returns on the scan-hash line: the count with the smallest hashes at or
// above cursor (all of a hash's members together), in hash order, and the
// next cursor (0 when none is left). The order members come in does not
// matter (SCAN's are a map's keys).
func scanLine(members iter.Seq[string], cursor uint64, count int64) ([]string, uint64) {
	type entry struct {
		h uint64
		m string
	}
	var cands []entry
	for m := range members {
		if h := scanHash(m); h >= cursor {
			cands = append(cands, entry{h, m})
		}
	}
	// Keep only the candidates up to the count-th smallest hash (all
	// members of that hash included), found with a bounded max-heap:
	// O(n log count) rather than sorting every candidate.
	var next uint64
	if int64(len(cands)) > count {
		limit := smallestHashes(cands, int(count), func(c entry) uint64 { return c.h })
		kept := cands[:0]
		for _, c := range cands {
			if c.h <= limit {
				kept = append(kept, c)
			}
		}
		if len(kept) < len(cands) {
			next = limit + 1 // cannot wrap: a larger hash remains
		}
		cands = kept
	}
	slices.SortFunc(cands, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.h, b.h), strings.Compare(a.m, b.m))
	})
	out := make([]string, len(cands))
	for i, c := range cands {
		out[i] = c.m
	}
	return out, next
}

// appendScanReply appends [cursor, items].
func appendScanReply(dst []byte, cursor uint64, items []string) []byte {
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, strconv.AppendUint(nil, cursor, 10))
	dst = resp.AppendArrayLen(dst, len(items))
	for _, it := range items {
		dst = resp.AppendBulkString(dst, it)
	}
	return dst
}

// scanStart parses the cursor (first, as Redis does) and looks the key up
// with read: ok false when dst holds the whole reply.
func scanStart(dst []byte, args [][]byte, read func() (found, wrong bool)) (out []byte, cursor uint64, o scanOpts, ok bool) {
	cursor, valid := parseScanCursor(args[2])
	if !valid {
		return resp.AppendError(dst, "ERR invalid cursor"), 0, o, false
	}
	found, wrong := read()
	switch {
	case wrong:
		return resp.AppendError(dst, errWrongType), 0, o, false
	case !found:
		return appendScanReply(dst, 0, nil), 0, o, false
	}
	o, errText := parseScanOpts(args[3:], false)
	if errText != "" {
		return resp.AppendError(dst, errText), 0, o, false
	}
	return dst, cursor, o, true
}

func cmdSScan(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var st *setValue
	dst, cursor, o, ok := scanStart(dst, args, func() (bool, bool) {
		var wrong bool
		st, wrong = s.readSet(e, args[1])
		return st != nil, wrong
	})
	if !ok {
		return dst
	}
	var ms []string
	if st.intset {
		ms, cursor = st.ordered(), 0
	} else {
		ms, cursor = scanLine(slices.Values(st.members), cursor, o.count)
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if o.matches(m) {
			out = append(out, m)
		}
	}
	return appendScanReply(dst, cursor, out)
}

func cmdHScan(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var h *hashValue
	dst, cursor, o, ok := scanStart(dst, args, func() (bool, bool) {
		var wrong bool
		h, wrong = s.readHash(e, args[1])
		return h != nil, wrong
	})
	if !ok {
		return dst
	}
	fields := make([]string, 0, h.len())
	h.each(func(en *hashEntry) { fields = append(fields, en.field) })
	if h.table {
		fields, cursor = scanLine(slices.Values(fields), cursor, o.count)
	} else {
		cursor = 0
	}
	out := make([]string, 0, 2*len(fields))
	for _, f := range fields {
		if o.matches(f) {
			val, _ := h.get([]byte(f))
			out = append(out, f, string(val))
		}
	}
	return appendScanReply(dst, cursor, out)
}

func cmdZScan(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var z *zsetValue
	dst, cursor, o, ok := scanStart(dst, args, func() (bool, bool) {
		var wrong bool
		z, wrong = s.readZSet(e, args[1])
		return z != nil, wrong
	})
	if !ok {
		return dst
	}
	members := make([]string, 0, z.len())
	z.each(func(en zentry) { members = append(members, en.member) })
	if z.skiplist {
		members, cursor = scanLine(slices.Values(members), cursor, o.count)
	} else {
		cursor = 0
	}
	out := make([]string, 0, 2*len(members))
	var buf [32]byte
	for _, m := range members {
		if o.matches(m) {
			sc, _ := z.scoreOf(m)
			out = append(out, m, string(formatScore(buf[:0], sc)))
		}
	}
	return appendScanReply(dst, cursor, out)
}
