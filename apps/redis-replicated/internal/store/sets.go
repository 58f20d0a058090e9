package store

import (
	"slices"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// maxIntsetEntries is Redis's default set-max-intset-entries: a set of up
// to this many integers is an intset, which Redis 7.0 lists in ascending
// numeric order.
const maxIntsetEntries = 512

// setValue is a set. Members live in a slice (with a position index), so
// random picks index a deterministic order: replicas that applied the same
// commands hold the same slice and make the same picks for the same Env.
// intset mirrors Redis's encoding choice: true while every member is a
// canonical integer and there are at most maxIntsetEntries of them; once
// false it stays false, as Redis never converts back. While intset holds,
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

func (st *setValue) add(m []byte) bool {
	if st.has(m) {
		return false
	}
	if st.intset {
		if _, ok := collInt(m); !ok || len(st.members)+1 > maxIntsetEntries {
			st.intset = false
		}
	}
	st.index[string(m)] = len(st.members)
	st.members = append(st.members, string(m))
	return true
}

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
	out := slices.Clone(st.members)
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return out
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
	)
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
	if st.len() == 0 {
		s.remove(args[1])
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
		if st.len() == 0 {
			s.remove(args[1])
		}
		return resp.AppendBulkString(dst, m)
	}
	if count == 0 {
		return resp.AppendArrayLen(dst, 0)
	}
	if count >= int64(st.len()) {
		dst = appendMembers(dst, st.ordered())
		s.remove(args[1])
		return dst
	}
	dst = resp.AppendArrayLen(dst, int(count))
	for range count {
		m := st.members[e.Rand.IntN(st.len())]
		st.del(m)
		dst = resp.AppendBulkString(dst, m)
	}
	return dst
}

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
