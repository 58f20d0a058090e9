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
		if count > int64(l.len()) {
			count = int64(l.len())
		}
		dst = resp.AppendArrayLen(dst, int(count))
		for range count {
			var x []byte
			if front {
				x = l.popFront()
			} else {
				x = l.popBack()
			}
			dst = resp.AppendBulk(dst, x)
		}
	}
	if l.len() == 0 {
		s.remove(args[1])
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
		if len(out) == 0 {
			s.remove(args[1])
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
	if lo >= hi {
		s.remove(args[1])
		return resp.AppendOK(dst)
	}
	l.setElems(append([][]byte(nil), l.elems()[lo:hi]...))
	return resp.AppendOK(dst)
}
