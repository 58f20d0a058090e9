package store

// The generic key commands (DEL, UNLINK, EXISTS, TOUCH, the EXPIRE family,
// TTL, EXPIRETIME, TYPE, KEYS, SCAN, RANDOMKEY, RENAME, COPY, OBJECT,
// DBSIZE, FLUSHDB/FLUSHALL), the glob matcher they share with the types'
// SCAN variants, and the leader's expiry sweep (gomu.expire).
//
// Differences from Redis 7.0:
//
//   - KEYS replies in sorted key order; Redis's order is its hash table's.
//   - SCAN's cursor is not a hash-table bucket index (see cmdScan); its
//     values differ from Redis's, but the guarantees are the same and
//     stronger: a key present for the whole iteration is returned exactly
//     once, even if the keyspace grows or shrinks meanwhile, and the same
//     cursor means the same thing on every replica.
//   - Expired keys are deleted by writes, by the leader's sweep
//     (gomu.expire) and, after a read on the leader met them, by the
//     deletion its connection proposes (gomu.expirekeys) before replying;
//     never by a background cycle of each replica's own: DBSIZE counts an
//     expired key until then, as Redis's may.
//   - RANDOMKEY's picks follow the Env's random source, not Redis's.
//   - OBJECT ENCODING and REFCOUNT are derived from the value (see
//     encodingOf); IDLETIME and FREQ are each node's own (access.go).

import (
	"bytes"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

func init() {
	register(
		&Command{Name: "del", Arity: -2, Flags: Write, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "generic", Summary: "Delete a key", run: cmdDel},
		&Command{Name: "exists", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "generic", Summary: "Determine if a key exists", run: cmdExists},
		&Command{Name: "expire", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Set a key's time to live in seconds", run: cmdExpire},
		&Command{Name: "pexpire", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Set a key's time to live in milliseconds", run: cmdPExpire},
		&Command{Name: "expireat", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Set the expiration for a key as a UNIX timestamp", run: cmdExpireAt},
		&Command{Name: "pexpireat", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds", run: cmdPExpireAt},
		&Command{Name: "ttl", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Get the time to live for a key in seconds", run: cmdTTL},
		&Command{Name: "pttl", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Get the time to live for a key in milliseconds", run: cmdPTTL},
		&Command{Name: "persist", Arity: 2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Remove the expiration from a key", run: cmdPersist},
		&Command{Name: "type", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Determine the type stored at key", run: cmdType},
		&Command{Name: "keys", Arity: 2, Flags: ReadOnly, Group: "generic",
			Summary: "Find all keys matching the given pattern", run: cmdKeys},
		&Command{Name: "scan", Arity: -2, Flags: ReadOnly, Group: "generic",
			Summary: "Incrementally iterate the keys space", run: cmdScan},
		&Command{Name: "rename", Arity: 3, Flags: Write, FirstKey: 1, LastKey: 2, Step: 1,
			Group: "generic", Summary: "Rename a key", run: cmdRename},
		&Command{Name: "renamenx", Arity: 3, Flags: Write | Fast, FirstKey: 1, LastKey: 2, Step: 1,
			Group: "generic", Summary: "Rename a key, only if the new key does not exist", run: cmdRenameNX},
		&Command{Name: "dbsize", Arity: 1, Flags: ReadOnly | Fast, Group: "server",
			Summary: "Return the number of keys in the selected database", run: cmdDBSize},
		&Command{Name: "flushdb", Arity: -1, Flags: Write, Group: "server",
			Summary: "Remove all keys from the current database", run: cmdFlush},
		&Command{Name: "flushall", Arity: -1, Flags: Write, Group: "server",
			Summary: "Remove all keys from all databases", run: cmdFlush},
		&Command{Name: "unlink", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "generic", Summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", run: cmdDel},
		&Command{Name: "touch", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "generic", Summary: "Alters the last access time of a key(s). Returns the number of existing keys specified.", run: cmdExists},
		&Command{Name: "expiretime", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Get the expiration Unix timestamp for a key", run: cmdExpireTime},
		&Command{Name: "pexpiretime", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Get the expiration Unix timestamp for a key in milliseconds", run: cmdPExpireTime},
		&Command{Name: "randomkey", Arity: 1, Flags: ReadOnly | Random, Group: "generic",
			Summary: "Return a random key from the keyspace", run: cmdRandomKey},
		&Command{Name: "copy", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1,
			Group: "generic", Summary: "Copy a key", run: cmdCopy},
		// OBJECT is a container command: no flags and no key positions of
		// its own, as COMMAND INFO reports it; every subcommand reads.
		&Command{Name: "object", Arity: -2, Group: "generic",
			Summary: "A container for object introspection commands", run: cmdObject},
		&Command{Name: "gomu.expire", Arity: -1, Flags: Write | Internal, Group: "generic",
			Summary: "Delete keys whose time to live has passed (the leader's expiry sweep)", run: cmdSweepExpired},
		&Command{Name: EvictCommand, Arity: -2, Flags: Write | Internal, Group: "generic",
			Summary: "Delete the given keys (the leader's eviction under maxmemory)", run: cmdEvict},
		&Command{Name: ExpireKeysCommand, Arity: -2, Flags: Write | Internal, Group: "generic",
			Summary: "Delete the given keys if their time to live has passed (met by reads)", run: cmdExpireKeys},
	)
}

func cmdDel(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var n int64
	for _, k := range args[1:] {
		// An expired key is deleted too, but not counted.
		if s.lookupWrite(e, k) != nil {
			s.remove(k)
			s.notify(e, notifyGeneric, "del", k)
			n++
		}
	}
	return resp.AppendInt(dst, n)
}

func cmdExists(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var n int64
	for _, k := range args[1:] {
		if s.lookupNoTouch(e, k) != nil { // a repeated key counts each time
			n++
		}
	}
	return resp.AppendInt(dst, n)
}

func cmdExpire(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireGeneric(e, dst, args, e.NowMs, true)
}

func cmdPExpire(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireGeneric(e, dst, args, e.NowMs, false)
}

func cmdExpireAt(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireGeneric(e, dst, args, 0, true)
}

func cmdPExpireAt(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireGeneric(e, dst, args, 0, false)
}

// EXPIRE's condition options.
const (
	expNX = 1 << iota
	expXX
	expGT
	expLT
)

// expireGeneric implements the EXPIRE family: args[2] is a time in seconds
// or milliseconds relative to base (the command's time, or 0 for the *AT
// forms). A time not after the command's deletes the key.
func (s *Store) expireGeneric(e *Env, dst []byte, args [][]byte, base int64, seconds bool) []byte {
	name := string(bytesLower(args[0]))
	flags := 0
	for _, opt := range args[3:] {
		switch {
		case eqFold(opt, "nx"):
			flags |= expNX
		case eqFold(opt, "xx"):
			flags |= expXX
		case eqFold(opt, "gt"):
			flags |= expGT
		case eqFold(opt, "lt"):
			flags |= expLT
		default:
			return resp.AppendError(dst, "ERR Unsupported option "+string(opt))
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		return resp.AppendError(dst, "ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		return resp.AppendError(dst, "ERR GT and LT options at the same time are not compatible")
	}
	when, ok := parseRedisInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if seconds {
		if when > maxInt64/1000 || when < (-maxInt64-1)/1000 {
			return appendInvalidExpire(dst, name)
		}
		when *= 1000
	}
	if when > maxInt64-base {
		return appendInvalidExpire(dst, name)
	}
	when += base
	v := s.lookupWrite(e, args[1])
	if v == nil {
		return resp.AppendInt(dst, 0)
	}
	if flags != 0 {
		cur := v.expireAt // 0: no TTL, an infinite one for GT and LT
		switch {
		case flags&expNX != 0 && cur != 0,
			flags&expXX != 0 && cur == 0,
			flags&expGT != 0 && (cur == 0 || when <= cur),
			flags&expLT != 0 && cur != 0 && when >= cur:
			return resp.AppendInt(dst, 0)
		}
	}
	if when <= e.NowMs {
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	} else {
		s.setExpire(args[1], v, when)
		s.notify(e, notifyGeneric, "expire", args[1])
	}
	return resp.AppendInt(dst, 1)
}

// bytesLower returns an ASCII-lowercased copy of b.
func bytesLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func cmdTTL(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.ttl(e, dst, args[1], false)
}

func cmdPTTL(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.ttl(e, dst, args[1], true)
}

func (s *Store) ttl(e *Env, dst []byte, key []byte, ms bool) []byte {
	v := s.lookupNoTouch(e, key)
	switch {
	case v == nil:
		return resp.AppendInt(dst, -2)
	case v.expireAt == 0:
		return resp.AppendInt(dst, -1)
	}
	left := max(v.expireAt-e.NowMs, 0)
	if !ms {
		left = (left + 500) / 1000 // rounded, as Redis does
	}
	return resp.AppendInt(dst, left)
}

func cmdExpireTime(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireTime(e, dst, args[1], false)
}

func cmdPExpireTime(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.expireTime(e, dst, args[1], true)
}

// expireTime is EXPIRETIME (seconds, rounded as Redis rounds them) and
// PEXPIRETIME: -2 for a missing key, -1 for one without a TTL.
func (s *Store) expireTime(e *Env, dst []byte, key []byte, ms bool) []byte {
	v := s.lookup(e, key)
	switch {
	case v == nil:
		return resp.AppendInt(dst, -2)
	case v.expireAt == 0:
		return resp.AppendInt(dst, -1)
	}
	at := v.expireAt
	if !ms {
		at = (at + 500) / 1000
	}
	return resp.AppendInt(dst, at)
}

// cmdRandomKey picks one live key with e.Rand (a null reply when there is
// none). It only reads: Redis may delete the expired keys it meets, this
// never does. The pick is uniform over the live keys, but which key a
// given draw lands on follows the map's order, so it is not the same on
// every replica: it need not be, as a read's reply changes no state.
func cmdRandomKey(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	n := 0
	for k, v := range s.keys {
		if !v.expired(e.NowMs) {
			n++
		} else {
			s.metExpired(e, k)
		}
	}
	if n == 0 {
		return resp.AppendNull(dst)
	}
	i := e.Rand.IntN(n)
	for k, v := range s.keys {
		if v.expired(e.NowMs) {
			continue // met above
		}
		if i == 0 {
			return resp.AppendBulkString(dst, k)
		}
		i--
	}
	return resp.AppendNull(dst) // not reached
}

// cmdCopy is COPY source destination [DB destination-db] [REPLACE]: the
// copy goes to the selected database unless DB names another.
func cmdCopy(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	replace := false
	to := s.keyspace
	for j := 3; j < len(args); j++ {
		switch {
		case eqFoldString(args[j], "replace"):
			replace = true
		case eqFoldString(args[j], "db") && j+1 < len(args):
			j++
			db, msg := ParseDB(args[j])
			if msg != "" {
				return resp.AppendError(dst, msg)
			}
			to = s.dbs[db]
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	if string(args[1]) == string(args[2]) && to == s.keyspace {
		return resp.AppendError(dst, errSameObject)
	}
	v := s.lookupWrite(e, args[1])
	if v == nil {
		return resp.AppendInt(dst, 0)
	}
	if to.lookupWrite(e, args[2]) != nil {
		if !replace {
			return resp.AppendInt(dst, 0)
		}
		to.remove(args[2])
	}
	to.put(args[2], copyValue(v))
	s.notifyDB(e, notifyGeneric, "copy_to", args[2], to.db)
	return resp.AppendInt(dst, 1)
}

// copyValue returns a deep copy of v, TTL included.
func copyValue(v *value) *value {
	c := &value{kind: v.kind, expireAt: v.expireAt}
	switch v.kind {
	case kindString:
		c.str = bytes.Clone(v.str)
		c.strEnc = v.strEnc
	case kindList:
		es := v.list.elems()
		c.list = &listValue{items: append(make([][]byte, 0, len(es)), es...)}
	case kindHash:
		h := newHash()
		v.hash.each(func(en *hashEntry) { h.set([]byte(en.field), en.val) })
		h.table = v.hash.table
		c.hash = h
	case kindSet:
		c.set = &setValue{members: slices.Clone(v.set.members), index: maps.Clone(v.set.index), intset: v.set.intset}
		if c.set.index == nil {
			c.set.index = make(map[string]int)
		}
	case kindZSet:
		ents := make([]zentry, 0, v.zset.len())
		v.zset.each(func(en zentry) { ents = append(ents, en) })
		c.zset = newZSetSorted(ents)
		c.zset.skiplist = v.zset.skiplist
	case kindStream:
		c.stream = v.stream.clone()
	}
	return c
}

const sharedIntegers = 10000 // OBJ_SHARED_INTEGERS

// objectHelp is OBJECT HELP's reply, line by line.
var objectHelp = []string{
	"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
	"HELP",
	"    Prints this help.",
}

// cmdObject is OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key and OBJECT HELP.
// ENCODING and REFCOUNT are what Redis 7.0 would report for a value of
// this size and content built by plain writes (see encodingOf); IDLETIME
// and FREQ report the node's access data (access.go), without touching it.
func cmdObject(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	sub := args[1]
	arity := 3
	switch {
	case eqFoldString(sub, "help"):
		arity = 2
	case eqFoldString(sub, "encoding"), eqFoldString(sub, "refcount"),
		eqFoldString(sub, "idletime"), eqFoldString(sub, "freq"):
	default:
		name := truncate(cString(sub), 128)
		msg := "ERR unknown subcommand '" + string(name) + "'. Try OBJECT HELP."
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
		return resp.AppendError(dst, msg)
	}
	if len(args) != arity {
		return AppendWrongArity(dst, "object|"+string(bytesLower(sub)))
	}
	if arity == 2 {
		return appendHelp(dst, objectHelp)
	}
	v := s.lookupNoTouch(e, args[2])
	if v == nil {
		return resp.AppendNull(dst)
	}
	switch {
	case eqFoldString(sub, "encoding"):
		return resp.AppendBulkString(dst, encodingOf(v))
	case eqFoldString(sub, "refcount"):
		if v.kind == kindString {
			if n, ok := collInt(v.str); ok && n >= 0 && n < sharedIntegers {
				return resp.AppendInt(dst, math.MaxInt32) // OBJ_SHARED_REFCOUNT
			}
		}
		return resp.AppendInt(dst, 1)
	case eqFoldString(sub, "idletime"):
		return objectIdleTime(dst, e, v)
	}
	return objectFreq(dst, e, v)
}

// encodingOf names the encoding Redis 7.0 gives v: lists are quicklists
// (7.0 has no listpack lists); sets, hashes and sorted sets carry the
// encoding their history gave them under the Config's thresholds (intset,
// table, skiplist: converted once, never back); strings int when they read
// as an integer, else embstr up to 44 bytes, else raw, unless the command
// that wrote them leaves them raw (APPEND, SETRANGE, the bit and HLL
// commands) or never int (INCRBYFLOAT): strEnc.
func encodingOf(v *value) string {
	switch v.kind {
	case kindString:
		switch {
		case v.strEnc == strRaw:
			return "raw"
		case v.strEnc == strNoInt && len(v.str) <= 44:
			return "embstr"
		case v.strEnc == strNoInt:
			return "raw"
		}
		if len(v.str) <= 20 {
			if _, ok := collInt(v.str); ok {
				return "int"
			}
		}
		if len(v.str) <= 44 {
			return "embstr"
		}
		return "raw"
	case kindList:
		return "quicklist"
	case kindSet:
		if v.set.intset {
			return "intset"
		}
		return "hashtable"
	case kindHash:
		if v.hash.table {
			return "hashtable"
		}
		return "listpack"
	case kindZSet:
		if v.zset.skiplist {
			return "skiplist"
		}
		return "listpack"
	case kindStream:
		return "stream"
	}
	return "unknown"
}

func cmdPersist(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v := s.lookupWrite(e, args[1])
	if v == nil || v.expireAt == 0 {
		return resp.AppendInt(dst, 0)
	}
	s.setExpire(args[1], v, 0)
	s.notify(e, notifyGeneric, "persist", args[1])
	return resp.AppendInt(dst, 1)
}

func cmdType(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v := s.lookupNoTouch(e, args[1])
	if v == nil {
		return resp.AppendSimple(dst, "none")
	}
	return resp.AppendSimple(dst, v.kind.String())
}

func cmdKeys(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	pat := args[1]
	all := len(pat) == 1 && pat[0] == '*'
	var out []string
	for k, v := range s.keys {
		if !v.expired(e.NowMs) && (all || globMatch(pat, []byte(k))) {
			out = append(out, k)
		}
	}
	slices.Sort(out) // a deterministic order, whatever the map's
	dst = resp.AppendArrayLen(dst, len(out))
	for _, k := range out {
		dst = resp.AppendBulkString(dst, k)
	}
	return dst
}

// scanHash places a key on SCAN's cursor line: FNV-1a, fixed, so that a
// cursor means the same on every replica and across restarts.
func scanHash(k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k))
	return h.Sum64()
}

// cmdScan implements SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
//
// The cursor is a position on the 64-bit line of key hashes (scanHash):
// a call returns the COUNT keys (fewer after filtering) with the smallest
// hashes at or above the cursor, and as the next cursor the hash after the
// last one's (0 when none is left). Keys sharing a hash are never split
// across calls. So a key present from the first call to the last is
// returned exactly once however the keyspace changes, and a key added or
// deleted meanwhile may or may not be, as Redis promises. Each call costs
// a pass over the keyspace (O(n log count)), not O(count) as Redis's: the
// map keeps no order to resume from.
func cmdScan(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	cursor, ok := parseScanCursor(args[1])
	if !ok {
		return resp.AppendError(dst, "ERR invalid cursor")
	}
	o, errText := parseScanOpts(args[2:], true)
	if errText != "" {
		return resp.AppendError(dst, errText)
	}
	keys, next := scanLine(maps.Keys(s.keys), cursor, o.count)
	var out []string
	for _, k := range keys {
		v := s.keys[k]
		if v.expired(e.NowMs) {
			s.metExpired(e, k)
			continue
		}
		if !o.matches(k) || (o.hasType && !eqFoldString(o.typ, v.kind.String())) {
			continue
		}
		out = append(out, k)
	}
	return appendScanReply(dst, next, out)
}

// smallestHashes returns the n-th smallest hash of items (1 <= n <=
// len(items)), keeping a max-heap of the n smallest seen.
func smallestHashes[T any](items []T, n int, hash func(T) uint64) uint64 {
	h := make([]uint64, 0, n)
	down := func(i int) {
		for {
			l, big := 2*i+1, i
			if l < len(h) && h[l] > h[big] {
				big = l
			}
			if l+1 < len(h) && h[l+1] > h[big] {
				big = l + 1
			}
			if big == i {
				return
			}
			h[i], h[big] = h[big], h[i]
			i = big
		}
	}
	for _, it := range items {
		x := hash(it)
		switch {
		case len(h) < n:
			h = append(h, x)
			for i := len(h) - 1; i > 0 && h[(i-1)/2] < h[i]; i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
		case x < h[0]:
			h[0] = x
			down(0)
		}
	}
	return h[0]
}

// eqFoldString reports whether b equals s ignoring ASCII case.
func eqFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseScanCursor parses a cursor as Redis's strtoul-based check does:
// decimal, no leading space, nothing trailing, within uint64; a sign is
// accepted and "-n" wraps around, as strtoul's does.
func parseScanCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true // strtoul parses nothing: cursor 0
	}
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	u, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		u = -u
	}
	return u, true
}

func cmdRename(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.rename(e, dst, args[1], args[2], false)
}

func cmdRenameNX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.rename(e, dst, args[1], args[2], true)
}

// rename moves src's value (and TTL) to dst, replacing what dst held unless
// nx.
func (s *Store) rename(e *Env, out []byte, src, dst []byte, nx bool) []byte {
	v := s.lookupWrite(e, src)
	if v == nil {
		return resp.AppendError(out, errNoSuchKey)
	}
	if string(src) == string(dst) {
		if nx {
			return resp.AppendInt(out, 0)
		}
		return resp.AppendOK(out)
	}
	if s.lookupWrite(e, dst) != nil {
		if nx {
			return resp.AppendInt(out, 0)
		}
		s.remove(dst)
	}
	s.remove(src)
	s.put(dst, v)
	s.notify(e, notifyGeneric, "rename_from", src)
	s.notify(e, notifyGeneric, "rename_to", dst)
	if nx {
		return resp.AppendInt(out, 1)
	}
	return resp.AppendOK(out)
}

func cmdDBSize(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return resp.AppendInt(dst, int64(len(s.keys)))
}

// cmdFlush is FLUSHDB (the selected database) and FLUSHALL (every one): an
// optional SYNC or ASYNC is accepted and makes no difference.
func cmdFlush(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) > 2 || (len(args) == 2 && !eqFold(args[1], "sync") && !eqFold(args[1], "async")) {
		return resp.AppendError(dst, errSyntax)
	}
	if !eqFoldString(args[0], "flushall") {
		s.flush()
		return resp.AppendOK(dst)
	}
	for _, ks := range s.dbs {
		ks.flush()
	}
	return resp.AppendOK(dst)
}

// Expiring is the number of keys with a TTL in all databases, expired ones
// not yet deleted included: the server sweeps (proposes gomu.expire) only
// while it is not 0.
func (s *Store) Expiring() int {
	n := 0
	for _, ks := range s.dbs {
		n += ks.expiring
	}
	return n
}

// metExpired tells the Env's FollowUp that a read met key expired, as
// lookup does: SCAN and RANDOMKEY, which walk the keyspace, delete what
// they meet expired in Redis too.
func (s *keyspace) metExpired(e *Env, key string) {
	if e.FollowUp != nil {
		e.FollowUp(s.db, ExpireKeysCommand, []byte(key))
	}
}

// cmdExpireKeys is the internal gomu.expirekeys key ...: it deletes each
// key whose TTL has passed at the proposal's time, as a write meeting it
// would, and replies with how many it deleted.
func cmdExpireKeys(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var n int64
	for _, k := range args[1:] {
		if v := s.keys[string(k)]; v != nil && v.expired(e.NowMs) {
			s.lookupWrite(e, k) // deletes it, with its event
			n++
		}
	}
	return resp.AppendInt(dst, n)
}

// cmdSweepExpired is the internal gomu.expire [max]: it deletes the keys
// whose TTL has passed at the proposal's time, at most max of them (all when
// max is absent), and replies with how many it deleted. The leader proposes
// it when a TTL is due; since it runs in log order with the leader's time,
// and deletes the due keys earliest TTL first (ties by key, see
// expiry.go), every replica deletes the same keys. It costs O(k log n).
func cmdSweepExpired(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	limit := int64(-1)
	if len(args) > 2 {
		return AppendWrongArity(dst, "gomu.expire")
	}
	if len(args) == 2 {
		n, ok := parseRedisInt(args[1])
		if !ok || n < 0 {
			return resp.AppendError(dst, errNotInt)
		}
		limit = n
	}
	if s.Expiring() == 0 || limit == 0 {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, s.sweepExpired(e, limit))
}
