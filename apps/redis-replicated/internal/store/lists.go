package store

import (
	"bytes"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// listValue is a list: items[head:] are the elements in order. Keeping
// free room before head makes LPUSH amortized O(1) like RPUSH.
type listValue struct {
	items [][]byte
	head  int
}

func (l *listValue) len() int        { return len(l.items) - l.head }
func (l *listValue) elems() [][]byte { return l.items[l.head:] }

// pushFront inserts x before the first element.
func (l *listValue) pushFront(x []byte) {
	if l.head == 0 {
		n := l.len()
		room := n + 4
		items := make([][]byte, room+n, room+n+n/2+4)
		copy(items[room:], l.elems())
		l.items, l.head = items, room
	}
	l.head--
	l.items[l.head] = x
}

func (l *listValue) pushBack(x []byte) { l.items = append(l.items, x) }

func (l *listValue) popFront() []byte {
	x := l.items[l.head]
	l.items[l.head] = nil
	l.head++
	if l.head == len(l.items) {
		l.items, l.head = l.items[:0], 0
	}
	return x
}

func (l *listValue) popBack() []byte {
	x := l.items[len(l.items)-1]
	l.items[len(l.items)-1] = nil
	l.items = l.items[:len(l.items)-1]
	return x
}

// setElems replaces the elements with es (which it keeps).
func (l *listValue) setElems(es [][]byte) { l.items, l.head = es, 0 }

// listCmd describes a list command; every list command has its key first.
func listCmd(name string, arity int, flags Flags, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", Summary: summary, run: run}
}

func init() {
	register(
		listCmd("lpush", -3, Write|DenyOOM|Fast, "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.push(e, dst, args, true) }),
		listCmd("rpush", -3, Write|DenyOOM|Fast, "Appends one or more elements to a list. Creates the key if it doesn't exist.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.push(e, dst, args, false) }),
		listCmd("lpop", -2, Write|Fast, "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.pop(e, dst, args, true) }),
		listCmd("rpop", -2, Write|Fast, "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.pop(e, dst, args, false) }),
		listCmd("llen", 2, ReadOnly|Fast, "Returns the length of a list.", cmdLLen),
		listCmd("lrange", 4, ReadOnly, "Returns a range of elements from a list.", cmdLRange),
		listCmd("lindex", 3, ReadOnly, "Returns an element from a list by its index.", cmdLIndex),
		listCmd("lset", 4, Write|DenyOOM, "Sets the value of an element in a list by its index.", cmdLSet),
		listCmd("lrem", 4, Write, "Removes elements from a list. Deletes the list if the last element was removed.", cmdLRem),
		listCmd("ltrim", 4, Write, "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", cmdLTrim),
		listCmd("lpushx", -3, Write|DenyOOM|Fast, "Prepends one or more elements to a list only when the list exists.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.pushX(e, dst, args, true) }),
		listCmd("rpushx", -3, Write|DenyOOM|Fast, "Appends an element to a list only when the list exists.",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.pushX(e, dst, args, false) }),
		listCmd("linsert", 5, Write|DenyOOM, "Inserts an element before or after another element in a list.", cmdLInsert),
		listCmd("lpos", -3, ReadOnly, "Returns the index of matching elements in a list.", cmdLPos),
		&Command{Name: "lmove", Arity: 5, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list",
			Summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
			run:     cmdLMove},
		&Command{Name: "rpoplpush", Arity: 3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list",
			Summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
			run:     cmdRPopLPush},
		&Command{Name: "lmpop", Arity: -4, Flags: Write | MovableKeys, Group: "list",
			Summary: "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
			run:     cmdLMPop},
	)
}

// push is LPUSH (front) and RPUSH.
func (s *Store) push(e *Env, dst []byte, args [][]byte, front bool) []byte {
	v := s.lookupWrite(e, args[1])
	if v == nil {
		v = &value{kind: kindList, list: &listValue{}}
		s.put(args[1], v)
	} else if v.kind != kindList {
		return resp.AppendError(dst, errWrongType)
	}
	for _, a := range args[2:] {
		if front {
			v.list.pushFront(bytes.Clone(a))
		} else {
			v.list.pushBack(bytes.Clone(a))
		}
	}
	s.notify(e, notifyList, pushEvent(front), args[1])
	return resp.AppendInt(dst, int64(v.list.len()))
}

// pop is LPOP (front) and RPOP. Without a count the reply is one bulk
// string (null for a missing key); with one it is an array (null array for
// a missing key).
func (s *Store) pop(e *Env, dst []byte, args [][]byte, front bool) []byte {
	if len(args) > 3 {
		return AppendWrongArity(dst, string(bytes.ToLower(args[0])))
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
	v := s.lookupWrite(e, args[1])
	if v == nil {
		if hasCount {
			return resp.AppendNullArray(dst)
		}
		return resp.AppendNull(dst)
	}
	if v.kind != kindList {
		return resp.AppendError(dst, errWrongType)
	}
	l := v.list
	if !hasCount {
		var x []byte
		if front {
			x = l.popFront()
		} else {
			x = l.popBack()
		}
		dst = resp.AppendBulk(dst, x)
	} else {
		dst = appendPops(dst, l, count, front)
	}
	if !hasCount || count > 0 {
		s.notify(e, notifyList, popEvent(front), args[1])
	}
	if l.len() == 0 {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	}
	return dst
}

// readList looks key up for a read; wrong reports a non-list.
func (s *Store) readList(e *Env, key []byte) (l *listValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindList, false)
	if v == nil {
		return nil, wrong
	}
	return v.list, false
}

// writeList looks key up for a write; wrong reports a non-list.
func (s *Store) writeList(e *Env, key []byte) (l *listValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindList, true)
	if v == nil {
		return nil, wrong
	}
	return v.list, false
}

func cmdLLen(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	l, wrong := s.readList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(l.len()))
}

func cmdLRange(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	start, ok1 := collInt(args[2])
	stop, ok2 := collInt(args[3])
	if !ok1 || !ok2 {
		return resp.AppendError(dst, errNotInt)
	}
	l, wrong := s.readList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	lo, hi := normRange(start, stop, int64(l.len()))
	dst = resp.AppendArrayLen(dst, int(hi-lo))
	for _, x := range l.elems()[lo:hi] {
		dst = resp.AppendBulk(dst, x)
	}
	return dst
}

// listIndex turns a possibly negative index into a position, or -1.
func listIndex(idx int64, n int) int {
	if idx < 0 {
		idx += int64(n)
	}
	if idx < 0 || idx >= int64(n) {
		return -1
	}
	return int(idx)
}

func cmdLIndex(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	l, wrong := s.readList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendNull(dst)
	}
	idx, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	i := listIndex(idx, l.len())
	if i < 0 {
		return resp.AppendNull(dst)
	}
	return resp.AppendBulk(dst, l.elems()[i])
}

func cmdLSet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	l, wrong := s.writeList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendError(dst, errNoSuchKey)
	}
	idx, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	i := listIndex(idx, l.len())
	if i < 0 {
		return resp.AppendError(dst, errOutOfRange)
	}
	l.elems()[i] = bytes.Clone(args[3])
	s.notify(e, notifyList, "lset", args[1])
	return resp.AppendOK(dst)
}

func cmdLRem(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	count, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	l, wrong := s.writeList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendInt(dst, 0)
	}
	es := l.elems()
	keep := make([]bool, len(es))
	removed := int64(0)
	limit := count
	if limit < 0 {
		limit = -limit
	}
	if count >= 0 {
		for i, x := range es {
			if (limit == 0 || removed < limit) && bytes.Equal(x, args[3]) {
				removed++
				continue
			}
			keep[i] = true
		}
	} else {
		for i := len(es) - 1; i >= 0; i-- {
			if removed < limit && bytes.Equal(es[i], args[3]) {
				removed++
				continue
			}
			keep[i] = true
		}
	}
	if removed > 0 {
		out := make([][]byte, 0, len(es)-int(removed))
		for i, x := range es {
			if keep[i] {
				out = append(out, x)
			}
		}
		l.setElems(out)
		s.notify(e, notifyList, "lrem", args[1])
		if len(out) == 0 {
			s.remove(args[1])
			s.notify(e, notifyGeneric, "del", args[1])
		}
	}
	return resp.AppendInt(dst, removed)
}

func cmdLTrim(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	start, ok1 := collInt(args[2])
	stop, ok2 := collInt(args[3])
	if !ok1 || !ok2 {
		return resp.AppendError(dst, errNotInt)
	}
	l, wrong := s.writeList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendOK(dst)
	}
	lo, hi := normRange(start, stop, int64(l.len()))
	s.notify(e, notifyList, "ltrim", args[1])
	if lo >= hi {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
		return resp.AppendOK(dst)
	}
	l.setElems(append([][]byte(nil), l.elems()[lo:hi]...))
	return resp.AppendOK(dst)
}

// pushX is LPUSHX (front) and RPUSHX: it pushes only onto an existing list.
func (s *Store) pushX(e *Env, dst []byte, args [][]byte, front bool) []byte {
	l, wrong := s.writeList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendInt(dst, 0)
	}
	for _, a := range args[2:] {
		if front {
			l.pushFront(bytes.Clone(a))
		} else {
			l.pushBack(bytes.Clone(a))
		}
	}
	s.notify(e, notifyList, pushEvent(front), args[1])
	return resp.AppendInt(dst, int64(l.len()))
}

// cmdLInsert is LINSERT key BEFORE|AFTER pivot element: the new length, 0
// for a missing key, -1 when the pivot is not found.
func cmdLInsert(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var after bool
	switch {
	case collFold(args[2], "after"):
		after = true
	case collFold(args[2], "before"):
	default:
		return resp.AppendError(dst, errSyntax)
	}
	l, wrong := s.writeList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		return resp.AppendInt(dst, 0)
	}
	es := l.elems()
	i := -1
	for j, x := range es {
		if bytes.Equal(x, args[3]) {
			i = j
			break
		}
	}
	if i < 0 {
		return resp.AppendInt(dst, -1)
	}
	if after {
		i++
	}
	out := make([][]byte, 0, len(es)+1)
	out = append(out, es[:i]...)
	out = append(out, bytes.Clone(args[4]))
	out = append(out, es[i:]...)
	l.setElems(out)
	s.notify(e, notifyList, "linsert", args[1])
	return resp.AppendInt(dst, int64(len(out)))
}

// cmdLPos is LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
func cmdLPos(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j++ {
		more := j+1 < len(args)
		switch {
		case more && collFold(args[j], "rank"):
			j++
			n, ok := collInt(args[j])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			if n == 0 {
				return resp.AppendError(dst, "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
			}
			rank = n
		case more && collFold(args[j], "count"):
			j++
			n, ok := collInt(args[j])
			if !ok || n < 0 {
				return resp.AppendError(dst, "ERR COUNT can't be negative")
			}
			count = n
		case more && collFold(args[j], "maxlen"):
			j++
			n, ok := collInt(args[j])
			if !ok || n < 0 {
				return resp.AppendError(dst, "ERR MAXLEN can't be negative")
			}
			maxlen = n
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	fromTail := rank < 0
	if fromTail {
		// As in Redis 7.0, -MinInt64 stays negative (wrapping): every
		// match then counts, and COUNT never stops the scan.
		rank = -rank
	}
	l, wrong := s.readList(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if l == nil {
		if count != -1 {
			return resp.AppendArrayLen(dst, 0)
		}
		return resp.AppendNull(dst)
	}
	es := l.elems()
	n := int64(len(es))
	var found []int64
	matches := int64(0)
	for idx := int64(0); idx < n && (maxlen == 0 || idx < maxlen); idx++ {
		pos := idx
		if fromTail {
			pos = n - idx - 1
		}
		if !bytes.Equal(es[pos], args[2]) {
			continue
		}
		matches++
		if matches < rank {
			continue
		}
		found = append(found, pos)
		if count == -1 || (count != 0 && matches-rank+1 >= count) {
			break
		}
	}
	if count == -1 {
		if len(found) == 0 {
			return resp.AppendNull(dst)
		}
		return resp.AppendInt(dst, found[0])
	}
	dst = resp.AppendArrayLen(dst, len(found))
	for _, p := range found {
		dst = resp.AppendInt(dst, p)
	}
	return dst
}

// listWhere parses LEFT or RIGHT: front reports LEFT.
func listWhere(b []byte) (front, ok bool) {
	switch {
	case collFold(b, "left"):
		return true, true
	case collFold(b, "right"):
		return false, true
	}
	return false, false
}

func cmdLMove(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	from, ok1 := listWhere(args[3])
	if !ok1 {
		return resp.AppendError(dst, errSyntax)
	}
	to, ok2 := listWhere(args[4])
	if !ok2 {
		return resp.AppendError(dst, errSyntax)
	}
	return s.lmove(e, dst, args[1], args[2], from, to)
}

func cmdRPopLPush(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.lmove(e, dst, args[1], args[2], false, true)
}

// lmove pops an element from src's front (from) or back and pushes it onto
// dstKey's front (to) or back, creating dstKey if needed; src and dstKey
// may be the same list.
func (s *Store) lmove(e *Env, out []byte, src, dstKey []byte, from, to bool) []byte {
	sl, wrong := s.writeList(e, src)
	if wrong {
		return resp.AppendError(out, errWrongType)
	}
	if sl == nil {
		return resp.AppendNull(out)
	}
	dl, wrong := s.writeList(e, dstKey)
	if wrong {
		return resp.AppendError(out, errWrongType)
	}
	var x []byte
	if from {
		x = sl.popFront()
	} else {
		x = sl.popBack()
	}
	if dl == nil {
		dl = &listValue{}
		s.put(dstKey, &value{kind: kindList, list: dl})
	}
	if to {
		dl.pushFront(x)
	} else {
		dl.pushBack(x)
	}
	s.notify(e, notifyList, pushEvent(to), dstKey)
	s.notify(e, notifyList, popEvent(from), src)
	if sl.len() == 0 {
		s.remove(src)
		s.notify(e, notifyGeneric, "del", src)
	}
	return resp.AppendBulk(out, x)
}

// cmdLMPop is LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: it pops
// from the first non-empty list and replies [key, [elements]], or a null
// array when every list is missing.
func cmdLMPop(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	keys, front, count, errMsg := parseMPop(args, listWhere)
	if errMsg != "" {
		return resp.AppendError(dst, errMsg)
	}
	return s.mpopFirst(e, dst, keys, front, count, tryListMPop)
}

// mpopFirst is LMPOP's and ZMPOP's pop: from the first of keys that holds
// a value, by pop (the blocking forms' own, run once); WRONGTYPE at a key
// of another type before it, a null array if none holds one.
func (s *Store) mpopFirst(e *Env, dst []byte, keys [][]byte, where bool, count int64, pop mpopTry) []byte {
	for _, key := range keys {
		out, popped, wrong := pop(s, e, dst, key, where, count, false)
		if wrong {
			return resp.AppendError(dst, errWrongType)
		}
		if popped {
			return out
		}
	}
	return resp.AppendNullArray(dst)
}

// parseMPop parses numkeys key [key ...] where [COUNT count] at args[1:]
// for LMPOP and ZMPOP (args[0] their name) and for BLMPOP and BZMPOP
// (args[0] their timeout), where by parseWhere; errMsg is the error reply.
func parseMPop(args [][]byte, parseWhere func([]byte) (bool, bool)) (keys [][]byte, where bool, count int64, errMsg string) {
	nk, ok := collInt(args[1])
	if !ok || nk < 1 {
		return nil, false, 0, "ERR numkeys should be greater than 0"
	}
	if nk >= int64(len(args))-2 {
		return nil, false, 0, errSyntax
	}
	at := 2 + int(nk)
	where, ok = parseWhere(args[at])
	if !ok {
		return nil, false, 0, errSyntax
	}
	count, errMsg = mpopCount(args[at+1:])
	if errMsg != "" {
		return nil, false, 0, errMsg
	}
	return args[2:at], where, count, ""
}

// mpopCount parses what follows LMPOP's and ZMPOP's direction: nothing
// (one element) or COUNT n, n > 0; errMsg is the error reply otherwise.
func mpopCount(opts [][]byte) (count int64, errMsg string) {
	count = -1
	for j := 0; j < len(opts); j++ {
		if count == -1 && collFold(opts[j], "count") && j+1 < len(opts) {
			j++
			n, ok := collInt(opts[j])
			if !ok || n < 1 {
				return 0, "ERR count should be greater than 0"
			}
			count = n
			continue
		}
		return 0, errSyntax
	}
	if count == -1 {
		count = 1
	}
	return count, ""
}

// appendPops pops up to count elements from l's front or back and appends
// them as an array (LPOP and RPOP with a count, LMPOP).
func appendPops(dst []byte, l *listValue, count int64, front bool) []byte {
	n := min(count, int64(l.len()))
	dst = resp.AppendArrayLen(dst, int(n))
	for range n {
		var x []byte
		if front {
			x = l.popFront()
		} else {
			x = l.popBack()
		}
		dst = resp.AppendBulk(dst, x)
	}
	return dst
}
