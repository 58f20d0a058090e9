package store

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// setValue is a set. Members live in a slice (with a position index), so
// random picks index a deterministic order: replicas that applied the same
// commands hold the same slice and make the same picks for the same Env.
// intset mirrors Redis's encoding choice: true while every member is a
// canonical integer and there are at most set-max-intset-entries of them
// (Config; checked by fitIntset after a command's adds); once false it
// stays false, as Redis never converts back. While intset holds,
// replies list members in numeric order as Redis's do; otherwise in slice
// order, which differs from Redis's hash order (clients must not rely on it).
type setValue struct {
	members []string
	index   map[string]int
	intset  bool
}

// newSet returns an empty set encoded as Redis would encode one whose first
// member is first.
func newSet(first []byte) *setValue {
	_, isInt := collInt(first)
	return &setValue{index: make(map[string]int), intset: isInt}
}

func (st *setValue) len() int { return len(st.members) }

func (st *setValue) has(m []byte) bool { _, ok := st.index[string(m)]; return ok }

// hasStr is has for a member held as a string.
func (st *setValue) hasStr(m string) bool { _, ok := st.index[m]; return ok }

func (st *setValue) add(m []byte) bool {
	if st.has(m) {
		return false
	}
	st.addNew(string(m))
	return true
}

// addStr is add for a member held as a string.
func (st *setValue) addStr(m string) bool {
	if _, ok := st.index[m]; ok {
		return false
	}
	st.addNew(m)
	return true
}

// addNew appends m, which is not a member, converting an intset as Redis
// does when m is not an integer (fitIntset converts one that outgrew its
// maximum size).
func (st *setValue) addNew(m string) {
	if st.intset {
		if _, ok := collInt([]byte(m)); !ok {
			st.intset = false
		}
	}
	st.index[m] = len(st.members)
	st.members = append(st.members, m)
}

// fitIntset converts an intset of more than max members, as Redis does on
// the add that outgrows set-max-intset-entries; a command that adds calls
// it before anything else reads the encoding. It returns st.
func (st *setValue) fitIntset(max int64) *setValue {
	if st.intset && int64(len(st.members)) > max {
		st.intset = false
	}
	return st
}

// newResultSet returns the empty set Redis 7.0 builds a computed set in
// (SUNION, SDIFF, SINTERSTORE …): an intset that add converts as members
// arrive.
func newResultSet() *setValue { return &setValue{index: make(map[string]int), intset: true} }

// del removes m, moving the last member into its place.
func (st *setValue) del(m string) bool {
	i, ok := st.index[m]
	if !ok {
		return false
	}
	last := len(st.members) - 1
	if i != last {
		st.members[i] = st.members[last]
		st.index[st.members[i]] = i
	}
	st.members = st.members[:last]
	delete(st.index, m)
	return true
}

// ordered returns the members in reply order (see setValue); the result
// must not be modified.
func (st *setValue) ordered() []string {
	if !st.intset {
		return st.members
	}
	return sortInts(slices.Clone(st.members))
}

// copyOrder returns the members in the order Redis 7.0 replies them after
// copying them into a new set (SPOP with a count that takes the whole set):
// ascending when the copy is an intset, which it is when every member is
// an integer even if st itself left the intset encoding.
func (st *setValue) copyOrder(maxIntset int64) []string {
	if !st.intset && int64(len(st.members)) <= maxIntset && allInts(st.members) {
		return sortInts(slices.Clone(st.members))
	}
	return st.ordered()
}

// allInts reports whether every member is a canonical integer.
func allInts(ms []string) bool {
	for _, m := range ms {
		if _, ok := collInt([]byte(m)); !ok {
			return false
		}
	}
	return true
}

// sortInts sorts integer members in ascending numeric order, in place.
func sortInts(ms []string) []string {
	slices.SortFunc(ms, func(a, b string) int {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return cmp.Compare(x, y)
	})
	return ms
}

func setCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", Summary: summary, run: run}
}

func init() {
	register(
		setCmd("sadd", -3, Write|DenyOOM|Fast, "Adds one or more members to a set. Creates the key if it doesn't exist.", cmdSAdd),
		setCmd("srem", -3, Write|Fast, "Removes one or more members from a set. Deletes the set if the last member was removed.", cmdSRem),
		setCmd("smembers", 2, ReadOnly, "Returns all members of a set.", cmdSMembers),
		setCmd("sismember", 3, ReadOnly|Fast, "Determines whether a member belongs to a set.", cmdSIsMember),
		setCmd("scard", 2, ReadOnly|Fast, "Returns the number of members in a set.", cmdSCard),
		setCmd("spop", -2, Write|Random|Fast, "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", cmdSPop),
		setCmd("srandmember", -2, ReadOnly|Random, "Get one or multiple random members from a set", cmdSRandMember),
		setCmd("smismember", -3, ReadOnly|Fast, "Returns the membership associated with the given elements for a set", cmdSMIsMember),
		&Command{Name: "smove", Arity: 4, Flags: Write | Fast, FirstKey: 1, LastKey: 2, Step: 1, Group: "set",
			Summary: "Move a member from one set to another", run: cmdSMove},
		setsCmd("sinter", -2, ReadOnly, "Intersect multiple sets",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.sinter(e, dst, args[1:], nil) }),
		setsCmd("sinterstore", -3, Write|DenyOOM, "Intersect multiple sets and store the resulting set in a key",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.sinter(e, dst, args[2:], args[1]) }),
		setsCmd("sunion", -2, ReadOnly, "Add multiple sets",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.sunionDiff(e, dst, args[1:], nil, false)
			}),
		setsCmd("sunionstore", -3, Write|DenyOOM, "Add multiple sets and store the resulting set in a key",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.sunionDiff(e, dst, args[2:], args[1], false)
			}),
		setsCmd("sdiff", -2, ReadOnly, "Subtract multiple sets",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.sunionDiff(e, dst, args[1:], nil, true)
			}),
		setsCmd("sdiffstore", -3, Write|DenyOOM, "Subtract multiple sets and store the resulting set in a key",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
				return s.sunionDiff(e, dst, args[2:], args[1], true)
			}),
		// SINTERCARD's keys follow numkeys: COMMAND reports no fixed
		// positions, as Redis does.
		&Command{Name: "sintercard", Arity: -3, Flags: ReadOnly | MovableKeys, Group: "set",
			Summary: "Intersect multiple sets and return the cardinality of the result", run: cmdSInterCard},
	)
}

// setsCmd registers a command over several set keys, from the first
// argument to the last.
func setsCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", Summary: summary, run: run}
}

// readSet looks key up for a read; wrong reports a non-set.
func (s *Store) readSet(e *Env, key []byte) (st *setValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindSet, false)
	if v == nil {
		return nil, wrong
	}
	return v.set, false
}

// writeSet looks key up for a write; wrong reports a non-set.
func (s *Store) writeSet(e *Env, key []byte) (st *setValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindSet, true)
	if v == nil {
		return nil, wrong
	}
	return v.set, false
}

func cmdSAdd(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.writeSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		st = newSet(args[2])
		s.put(args[1], &value{kind: kindSet, set: st})
	}
	n := int64(0)
	for _, m := range args[2:] {
		if st.add(m) {
			n++
		}
	}
	st.fitIntset(s.cfg.SetMaxIntsetEntries)
	if n > 0 {
		s.notify(e, notifySet, "sadd", args[1])
	}
	return resp.AppendInt(dst, n)
}

func cmdSRem(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.writeSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendInt(dst, 0)
	}
	n := int64(0)
	for _, m := range args[2:] {
		if st.del(string(m)) {
			n++
		}
	}
	if n > 0 {
		s.notify(e, notifySet, "srem", args[1])
	}
	if st.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	return resp.AppendInt(dst, n)
}

func appendMembers(dst []byte, ms []string) []byte {
	dst = resp.AppendArrayLen(dst, len(ms))
	for _, m := range ms {
		dst = resp.AppendBulkString(dst, m)
	}
	return dst
}

func cmdSMembers(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.readSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	return appendMembers(dst, st.ordered())
}

func cmdSIsMember(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.readSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st != nil && st.has(args[2]) {
		return resp.AppendInt(dst, 1)
	}
	return resp.AppendInt(dst, 0)
}

func cmdSCard(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.readSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(st.len()))
}

// cmdSPop picks members with e.Rand over the member slice; the picks differ
// from Redis's (which uses its own generator and hash layout) but are the
// same on every replica.
func cmdSPop(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) > 3 {
		return resp.AppendError(dst, errSyntax)
	}
	hasCount := len(args) == 3
	var count int64
	if hasCount {
		n, ok := collInt(args[2])
		if !ok || n < 0 {
			return resp.AppendError(dst, errMustBePositive)
		}
		count = n
	}
	st, wrong := s.writeSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		if hasCount {
			return resp.AppendArrayLen(dst, 0)
		}
		return resp.AppendNull(dst)
	}
	if !hasCount {
		m := st.members[e.Rand.IntN(st.len())]
		st.del(m)
		s.notify(e, notifySet, "spop", args[1])
		if st.len() == 0 {
			s.remove(args[1])
			s.notify(e, notifyGeneric, "del", args[1])
		}
		return resp.AppendBulkString(dst, m)
	}
	if count == 0 {
		return resp.AppendArrayLen(dst, 0)
	}
	if count >= int64(st.len()) {
		dst = appendMembers(dst, st.copyOrder(s.cfg.SetMaxIntsetEntries))
		s.remove(args[1])
		s.notify(e, notifySet, "spop", args[1])
		s.notify(e, notifyGeneric, "del", args[1])
		return dst
	}
	remaining := st.len() - int(count)
	popped := make([]string, count)
	for i := range popped {
		m := st.members[e.Rand.IntN(st.len())]
		st.del(m)
		popped[i] = m
	}
	if remaining*spopMoveStrategyMul <= int(count) {
		// Redis 7.0 moves the few members that stay into a new set, whose
		// encoding is chosen afresh, and replies the popped ones in the
		// old set's order.
		if st.intset {
			sortInts(popped)
		}
		kept := newSet([]byte(st.members[0]))
		for _, m := range st.members {
			kept.addStr(m)
		}
		kept.fitIntset(s.cfg.SetMaxIntsetEntries)
		s.keys[string(args[1])].set = kept
	}
	s.notify(e, notifySet, "spop", args[1])
	return appendMembers(dst, popped)
}

// spopMoveStrategyMul is Redis's SPOP_MOVE_STRATEGY_MUL: SPOP with a count
// rebuilds the set when at most 1/this of the popped count stays.
const spopMoveStrategyMul = 5

// cmdSRandMember: a positive count picks distinct members (a partial
// Fisher-Yates shuffle of a copy), a negative one -count members with
// repetition.
func cmdSRandMember(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) > 3 {
		return resp.AppendError(dst, errSyntax)
	}
	hasCount := len(args) == 3
	var count int64
	if hasCount {
		n, ok := collInt(args[2])
		if !ok {
			return resp.AppendError(dst, errNotInt)
		}
		if n == -1<<63 {
			return resp.AppendError(dst, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		}
		count = n
	}
	st, wrong := s.readSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		if hasCount {
			return resp.AppendArrayLen(dst, 0)
		}
		return resp.AppendNull(dst)
	}
	if !hasCount {
		return resp.AppendBulkString(dst, st.members[e.Rand.IntN(st.len())])
	}
	switch {
	case count == 0:
		return resp.AppendArrayLen(dst, 0)
	case count < 0:
		dst = resp.AppendArrayLen(dst, int(-count))
		for range -count {
			dst = resp.AppendBulkString(dst, st.members[e.Rand.IntN(st.len())])
		}
		return dst
	case count >= int64(st.len()):
		return appendMembers(dst, st.ordered())
	}
	ms := slices.Clone(st.members)
	for i := range int(count) {
		j := i + e.Rand.IntN(len(ms)-i)
		ms[i], ms[j] = ms[j], ms[i]
	}
	return appendMembers(dst, ms[:count])
}

func cmdSMIsMember(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.readSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	dst = resp.AppendArrayLen(dst, len(args)-2)
	for _, m := range args[2:] {
		if st != nil && st.has(m) {
			dst = resp.AppendInt(dst, 1)
		} else {
			dst = resp.AppendInt(dst, 0)
		}
	}
	return dst
}

// cmdSMove looks both keys up before checking either, as Redis does: a
// missing source answers 0 whatever the destination holds.
func cmdSMove(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	src, wrongSrc := s.writeSet(e, args[1])
	to, wrongDst := s.writeSet(e, args[2])
	switch {
	case src == nil && !wrongSrc:
		return resp.AppendInt(dst, 0)
	case wrongSrc || wrongDst:
		return resp.AppendError(dst, errWrongType)
	case src == to:
		if src.has(args[3]) {
			return resp.AppendInt(dst, 1)
		}
		return resp.AppendInt(dst, 0)
	}
	if !src.del(string(args[3])) {
		return resp.AppendInt(dst, 0)
	}
	s.notify(e, notifySet, "srem", args[1])
	if src.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	if to == nil {
		to = newSet(args[3])
		s.put(args[2], &value{kind: kindSet, set: to})
	}
	if to.add(args[3]) {
		s.notify(e, notifySet, "sadd", args[2])
	}
	to.fitIntset(s.cfg.SetMaxIntsetEntries)
	return resp.AppendInt(dst, 1)
}

// setsOf looks keys up as sets, as a write when write: nil for a missing
// key. Every key is checked before anything is answered, so a missing key
// does not hide a later one of another type (wrong).
func (s *Store) setsOf(e *Env, keys [][]byte, write bool) (sets []*setValue, wrong bool) {
	sets = make([]*setValue, len(keys))
	for i, k := range keys {
		v, w := s.lookupKind(e, k, kindSet, write)
		if w {
			return nil, true
		}
		if v != nil {
			sets[i] = v.set
		}
	}
	return sets, false
}

// interMembers returns the intersection of sets (nil: a missing key, so
// empty) in Redis 7.0's reply order: the order of the smallest set, ties
// going to the earlier key. It stops after limit members when limit > 0.
func interMembers(sets []*setValue, limit int64) []string {
	if slices.Contains(sets, nil) {
		return nil
	}
	bySize := slices.Clone(sets)
	slices.SortStableFunc(bySize, func(a, b *setValue) int { return cmp.Compare(a.len(), b.len()) })
	var out []string
	for _, m := range bySize[0].ordered() {
		in := true
		for _, o := range bySize[1:] {
			if o != bySize[0] && !o.hasStr(m) {
				in = false
				break
			}
		}
		if in {
			out = append(out, m)
			if limit > 0 && int64(len(out)) >= limit {
				break
			}
		}
	}
	return out
}

// sinter is SINTER (dstKey nil) and SINTERSTORE.
func (s *Store) sinter(e *Env, dst []byte, keys [][]byte, dstKey []byte) []byte {
	sets, wrong := s.setsOf(e, keys, dstKey != nil)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	ms := interMembers(sets, 0)
	if dstKey == nil {
		return appendMembers(dst, ms)
	}
	res := newResultSet()
	for _, m := range ms {
		res.addStr(m)
	}
	res.fitIntset(s.cfg.SetMaxIntsetEntries)
	return s.storeSet(e, dst, dstKey, res, "sinterstore")
}

// sunionDiff is SUNION, SDIFF (diff) and their STORE forms (dstKey set).
// The result is built as Redis builds it, so that it gets the same
// encoding: SDIFF picks Redis's algorithm by the same estimate of work,
// and its second algorithm copies the whole first set before removing,
// which leaves the result a hash table whenever the first set is one.
func (s *Store) sunionDiff(e *Env, dst []byte, keys [][]byte, dstKey []byte, diff bool) []byte {
	sets, wrong := s.setsOf(e, keys, dstKey != nil)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	res := newResultSet()
	first := sets[0]
	switch {
	case !diff:
		for _, st := range sets {
			if st != nil {
				for _, m := range st.members {
					res.addStr(m)
				}
			}
		}
		res.fitIntset(s.cfg.SetMaxIntsetEntries)
	case first == nil || slices.Contains(sets[1:], first):
		// Nothing to subtract from, or the first set subtracted from
		// itself: empty.
	default:
		var work1, work2 int
		for _, st := range sets {
			if st != nil {
				work1 += first.len()
				work2 += st.len()
			}
		}
		if work1/2 <= work2 {
			for _, m := range first.members {
				found := false
				for _, o := range sets[1:] {
					if o != nil && o.hasStr(m) {
						found = true
						break
					}
				}
				if !found {
					res.addStr(m)
				}
			}
			res.fitIntset(s.cfg.SetMaxIntsetEntries)
		} else {
			for _, m := range first.members {
				res.addStr(m)
			}
			res.fitIntset(s.cfg.SetMaxIntsetEntries)
			for _, o := range sets[1:] {
				if o == nil {
					continue
				}
				for _, m := range o.members {
					res.del(m)
				}
				if res.len() == 0 {
					break
				}
			}
		}
	}
	if dstKey == nil {
		return appendMembers(dst, res.ordered())
	}
	event := "sunionstore"
	if diff {
		event = "sdiffstore"
	}
	return s.storeSet(e, dst, dstKey, res, event)
}

// storeSet stores res under key (replacing any value and its TTL) and
// replies its size; an empty res deletes key instead.
func (s *Store) storeSet(e *Env, dst, key []byte, res *setValue, event string) []byte {
	if res.len() == 0 {
		if s.remove(key) {
			s.notify(e, notifyGeneric, "del", key)
		}
		return resp.AppendInt(dst, 0)
	}
	s.put(key, &value{kind: kindSet, set: res})
	s.notify(e, notifySet, event, key)
	return resp.AppendInt(dst, int64(res.len()))
}

func cmdSInterCard(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	n, ok := collInt(args[1])
	if !ok || n < 1 {
		return resp.AppendError(dst, "ERR numkeys should be greater than 0")
	}
	if n > int64(len(args)-2) {
		return resp.AppendError(dst, "ERR Number of keys can't be greater than number of args")
	}
	var limit int64
	for j := 2 + int(n); j < len(args); j++ {
		if !eqFold(args[j], "limit") || j+1 == len(args) {
			return resp.AppendError(dst, errSyntax)
		}
		j++
		if limit, ok = collInt(args[j]); !ok || limit < 0 {
			return resp.AppendError(dst, "ERR LIMIT can't be negative")
		}
	}
	sets, wrong := s.setsOf(e, args[2:2+n], false)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	return resp.AppendInt(dst, int64(len(interMembers(sets, limit))))
}
