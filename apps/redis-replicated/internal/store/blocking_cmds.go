package store

import "github.com/gomu-rdma/gomu/internal/resp"

// The blocking list and sorted-set commands: their argument checks in
// Redis 7.0's order, the keys they wait on, and how each is served from a
// key (see blocking.go for how they block).

func init() {
	register(
		blockingCmd(&Command{Name: "blpop", Arity: -3, Flags: Write, FirstKey: 1, LastKey: -2, Step: 1, Group: "list",
			Summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."},
			popSpec(tryListPop(true))),
		blockingCmd(&Command{Name: "brpop", Arity: -3, Flags: Write, FirstKey: 1, LastKey: -2, Step: 1, Group: "list",
			Summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."},
			popSpec(tryListPop(false))),
		blockingCmd(&Command{Name: "blmove", Arity: 6, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list",
			Summary: "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved."},
			&blockSpec{validate: validateBLMove, timeout: lastTimeout, keys: firstKey, try: tryLMove, nullBulk: true}),
		blockingCmd(&Command{Name: "brpoplpush", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list",
			Summary: "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped."},
			&blockSpec{validate: validateLastTimeout, timeout: lastTimeout, keys: firstKey, try: tryLMove, nullBulk: true}),
		blockingCmd(&Command{Name: "blmpop", Arity: -5, Flags: Write | MovableKeys, Group: "list",
			Summary: "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped."},
			mpopSpec(listWhere, tryListMPop)),
		blockingCmd(&Command{Name: "bzpopmin", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: -2, Step: 1, Group: "sorted-set",
			Summary: "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."},
			popSpec(tryZPop(false))),
		blockingCmd(&Command{Name: "bzpopmax", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: -2, Step: 1, Group: "sorted-set",
			Summary: "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped."},
			popSpec(tryZPop(true))),
		blockingCmd(&Command{Name: "bzmpop", Arity: -5, Flags: Write | MovableKeys, Group: "sorted-set",
			Summary: "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."},
			mpopSpec(zsetWhere, tryZMPop)),
	)
}

type tryFunc = func(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool)

func lastArg(args [][]byte) []byte          { return args[len(args)-1] }
func firstKey(args [][]byte) [][]byte       { return args[1:2] }
func keysBeforeLast(args [][]byte) [][]byte { return args[1 : len(args)-1] }

// secondsTimeout is a validated timeout argument in ms.
func secondsTimeout(b []byte) int64 {
	ms, _ := parseTimeout(b)
	return ms
}

func lastTimeout(args [][]byte) int64 { return secondsTimeout(lastArg(args)) }

func validateLastTimeout(args [][]byte) string {
	_, msg := parseTimeout(lastArg(args))
	return msg
}

// popSpec is BLPOP's and BZPOPMIN's shape: key [key ...] timeout.
func popSpec(try tryFunc) *blockSpec {
	return &blockSpec{validate: validateLastTimeout, timeout: lastTimeout, keys: keysBeforeLast, try: try}
}

// validateBLMove checks BLMOVE's directions, then its timeout.
func validateBLMove(args [][]byte) string {
	if _, ok := listWhere(args[3]); !ok {
		return errSyntax
	}
	if _, ok := listWhere(args[4]); !ok {
		return errSyntax
	}
	return validateLastTimeout(args)
}

// liveKind looks key up for a blocking pop of kind k: the value, or nil
// with wrong set when it holds another type.
func (s *Store) liveKind(e *Env, key []byte, k kind) (v *value, wrong bool) {
	return s.lookupKind(e, key, k, true)
}

// tryListPop is BLPOP (front) and BRPOP: replies [key, element].
func tryListPop(front bool) tryFunc {
	return func(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool) {
		for _, k := range keys {
			v, wrong := s.liveKind(e, k, kindList)
			if wrong && !serving {
				return resp.AppendError(dst, errWrongType), true
			}
			if v == nil {
				continue
			}
			dst = resp.AppendArrayLen(dst, 2)
			dst = resp.AppendBulk(dst, k)
			if front {
				dst = resp.AppendBulk(dst, v.list.popFront())
			} else {
				dst = resp.AppendBulk(dst, v.list.popBack())
			}
			s.notify(e, notifyList, popEvent(front), k)
			if v.list.len() == 0 {
				s.remove(k)
				s.notify(e, notifyGeneric, "del", k)
			}
			return dst, true
		}
		return dst, false
	}
}

// tryLMove is BLMOVE and BRPOPLPUSH: LMOVE once the source has an element.
func tryLMove(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool) {
	v, wrong := s.liveKind(e, args[1], kindList)
	if wrong && !serving {
		return resp.AppendError(dst, errWrongType), true
	}
	if v == nil {
		return dst, false
	}
	from, to := false, true // BRPOPLPUSH
	if len(args) == 6 {
		from, _ = listWhere(args[3])
		to, _ = listWhere(args[4])
	}
	return s.lmove(e, dst, args[1], args[2], from, to), true
}

// tryZPop is BZPOPMIN and BZPOPMAX (max): replies [key, member, score].
func tryZPop(max bool) tryFunc {
	return func(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool) {
		for _, k := range keys {
			v, wrong := s.liveKind(e, k, kindZSet)
			if wrong && !serving {
				return resp.AppendError(dst, errWrongType), true
			}
			if v == nil {
				continue
			}
			dst = resp.AppendArrayLen(dst, 3)
			dst = resp.AppendBulk(dst, k)
			dst = appendPopped(dst, v.zset, max)
			s.notifyZPop(e, k, v.zset, 1, max)
			return dst, true
		}
		return dst, false
	}
}

// mpopArgs splits BLMPOP's and BZMPOP's arguments, timeout numkeys key
// [key ...] where [COUNT count], checking them in Redis 7.0's order
// (numkeys, where, count, then the timeout); where is parsed by parseWhere.
func mpopArgs(args [][]byte, parseWhere func([]byte) (bool, bool)) (keys [][]byte, where bool, count int64, errMsg string) {
	keys, where, count, errMsg = parseMPop(args[1:], parseWhere)
	if errMsg != "" {
		return nil, false, 0, errMsg
	}
	if _, msg := parseTimeout(args[1]); msg != "" {
		return nil, false, 0, msg
	}
	return keys, where, count, ""
}

// zsetWhere parses MIN or MAX: max reports MAX.
func zsetWhere(b []byte) (max, ok bool) {
	switch {
	case collFold(b, "min"):
		return false, true
	case collFold(b, "max"):
		return true, true
	}
	return false, false
}

// mpopTry serves an MPOP from key with the parsed where and count.
type mpopTry func(s *Store, e *Env, dst []byte, key []byte, where bool, count int64, serving bool) (out []byte, served, wrong bool)

// mpopSpec is BLMPOP's and BZMPOP's shape.
func mpopSpec(parseWhere func([]byte) (bool, bool), serve mpopTry) *blockSpec {
	return &blockSpec{
		validate: func(args [][]byte) string {
			_, _, _, msg := mpopArgs(args, parseWhere)
			return msg
		},
		timeout: func(args [][]byte) int64 { return secondsTimeout(args[1]) },
		keys: func(args [][]byte) [][]byte {
			keys, _, _, _ := mpopArgs(args, parseWhere)
			return keys
		},
		try: func(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool) {
			_, where, count, _ := mpopArgs(args, parseWhere)
			for _, k := range keys {
				out, served, wrong := serve(s, e, dst, k, where, count, serving)
				if wrong && !serving {
					return resp.AppendError(dst, errWrongType), true
				}
				if served {
					return out, true
				}
			}
			return dst, false
		},
	}
}

// tryListMPop pops up to count elements from key's front (where) or back:
// [key, [elements]].
func tryListMPop(s *Store, e *Env, dst []byte, key []byte, front bool, count int64, _ bool) ([]byte, bool, bool) {
	v, wrong := s.liveKind(e, key, kindList)
	if v == nil {
		return dst, false, wrong
	}
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, key)
	dst = appendPops(dst, v.list, count, front)
	s.notify(e, notifyList, popEvent(front), key)
	if v.list.len() == 0 {
		s.remove(key)
		s.notify(e, notifyGeneric, "del", key)
	}
	return dst, true, false
}

// tryZMPop pops up to count members from key's low end or high end (max):
// [key, [[member, score] ...]].
func tryZMPop(s *Store, e *Env, dst []byte, key []byte, max bool, count int64, _ bool) ([]byte, bool, bool) {
	v, wrong := s.liveKind(e, key, kindZSet)
	if v == nil {
		return dst, false, wrong
	}
	z := v.zset
	count = min(count, int64(z.len()))
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, key)
	dst = resp.AppendArrayLen(dst, int(count))
	for range count {
		dst = resp.AppendArrayLen(dst, 2)
		dst = appendPopped(dst, z, max)
	}
	s.notifyZPop(e, key, z, count, max)
	return dst, true, false
}
