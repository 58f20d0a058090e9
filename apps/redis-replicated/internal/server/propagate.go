package server

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// propagated is the command SYNC's stream carries for a write that took
// effect (args, replied reply, applied at the leader's time now): the
// command itself, or the form Redis 7.0 propagates it in, so that what a
// replica replays does not depend on when it replays it, nor on how a
// choice came out. nil: nothing is sent (GETEX without an expiry option,
// a pop that popped nothing). The form is decided from the arguments and
// the reply alone, so the store needs to know nothing of it.
func propagated(args [][]byte, reply []byte, now int64) [][]byte {
	name := strings.ToLower(string(args[0]))
	switch name {
	case "getdel":
		if isNull(reply) {
			return nil
		}
		return cmdArgs("DEL", args[1])
	case "getex":
		return getexPropagated(args, reply, now)
	case "set", "setex", "psetex":
		return setPropagated(name, args, reply, now)
	case "expire", "pexpire", "expireat", "pexpireat":
		return expirePropagated(name, args, now)
	case "lmpop", "zmpop":
		return mpopPropagated(args, reply)
	case "blmpop", "bzmpop": // as LMPOP/ZMPOP, without the timeout
		return mpopPropagated(append([][]byte{args[0]}, args[2:]...), reply)
	case "blpop", "brpop", "bzpopmin", "bzpopmax":
		return blockingPopPropagated(name, reply)
	case "restore":
		return restorePropagated(args, now)
	case "brpoplpush":
		return cmdArgs("RPOPLPUSH", args[1], args[2])
	case "blmove":
		return cmdArgs("LMOVE", args[1:5]...)
	case "spop":
		return spopPropagated(args, reply)
	case "incrbyfloat":
		if v, ok := bulkOf(reply); ok {
			return cmdArgs("SET", args[1], v, []byte("KEEPTTL"))
		}
	case "hincrbyfloat":
		if v, ok := bulkOf(reply); ok {
			return cmdArgs("HSET", args[1], args[2], v)
		}
	case "geoadd": // as the ZADD of the geohashes
		if z := store.GeoAddAsZAdd(args); z != nil {
			return z
		}
	case "georadius", "georadiusbymember": // without STORE, a read
		options := 6
		if name == "georadiusbymember" {
			options = 5
		}
		if len(geoRadiusKeyPositions(args, options)) == 1 {
			return nil
		}
	}
	return args
}

// restorePropagated: a RESTORE with a relative TTL goes out with the
// absolute time and ABSTTL appended, as Redis sends it.
func restorePropagated(args [][]byte, now int64) [][]byte {
	ttl, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || ttl == 0 {
		return args
	}
	for _, a := range args[4:] {
		if lowerEq(a, "absttl") {
			return args
		}
	}
	p := append([][]byte{}, args...)
	p[2] = strconv.AppendInt(nil, now+ttl, 10)
	return append(p, []byte("ABSTTL"))
}

// blockingPopPropagated: BLPOP, BRPOP, BZPOPMIN and BZPOPMAX go out as
// the pop without B of the key their reply names (nothing if none).
func blockingPopPropagated(name string, reply []byte) [][]byte {
	if isNull(reply) || len(reply) < 4 || reply[0] != '*' {
		return nil
	}
	rest := reply[bytes.IndexByte(reply, '\n')+1:]
	key, ok := bulkOf(rest[:replyLen(rest)])
	if !ok {
		return nil
	}
	return cmdArgs(strings.ToUpper(name[1:]), key)
}

// cmdArgs builds a command from its name and arguments.
func cmdArgs(name string, rest ...[]byte) [][]byte {
	return append([][]byte{[]byte(name)}, rest...)
}

func isNull(reply []byte) bool {
	return bytes.Equal(reply, []byte("$-1\r\n")) || bytes.Equal(reply, []byte("*-1\r\n"))
}

// bulkOf is the payload of a bulk reply.
func bulkOf(reply []byte) ([]byte, bool) {
	if len(reply) < 4 || reply[0] != '$' || isNull(reply) {
		return nil, false
	}
	i := bytes.IndexByte(reply, '\n')
	return reply[i+1 : len(reply)-2], true
}

// expiryAt turns an expiry option (EX, PX, EXAT, PXAT) and its value into
// Unix ms as the store computed it at now.
func expiryAt(opt, v []byte, now int64) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, false
	}
	switch {
	case lowerEq(opt, "ex"):
		return now + n*1000, true
	case lowerEq(opt, "px"):
		return now + n, true
	case lowerEq(opt, "exat"):
		return n * 1000, true
	case lowerEq(opt, "pxat"):
		return n, true
	}
	return 0, false
}

// getexPropagated: GETEX is sent as PERSIST, as PEXPIREAT, as DEL when
// the expiry given is already past, or not at all without an option.
func getexPropagated(args [][]byte, reply []byte, now int64) [][]byte {
	if isNull(reply) || len(args) < 3 {
		return nil
	}
	if lowerEq(args[2], "persist") {
		return cmdArgs("PERSIST", args[1])
	}
	if len(args) < 4 {
		return args
	}
	at, ok := expiryAt(args[2], args[3], now)
	switch {
	case !ok:
		return args
	case at <= now:
		return cmdArgs("DEL", args[1])
	}
	return cmdArgs("PEXPIREAT", args[1], strconv.AppendInt(nil, at, 10))
}

// setPropagated: a SET (SETEX, PSETEX) with any expiry (PXAT too, in
// upper case) is sent as SET key value PXAT ms, one with GET without it;
// one that set nothing (NX, XX) is not sent.
func setPropagated(name string, args [][]byte, reply []byte, now int64) [][]byte {
	var at int64
	var ok bool
	switch name {
	case "setex":
		at, ok = expiryAt([]byte("ex"), args[2], now)
		return cmdArgs("SET", args[1], args[3], []byte("PXAT"), strconv.AppendInt(nil, at, 10))
	case "psetex":
		at, ok = expiryAt([]byte("px"), args[2], now)
		return cmdArgs("SET", args[1], args[3], []byte("PXAT"), strconv.AppendInt(nil, at, 10))
	}
	get, cond := false, false // GET; NX or XX
	for i := 3; i < len(args); i++ {
		switch {
		case lowerEq(args[i], "get"):
			get = true
		case lowerEq(args[i], "nx"), lowerEq(args[i], "xx"):
			cond = true
		case i+1 < len(args):
			if a, found := expiryAt(args[i], args[i+1], now); found {
				at, ok = a, true
				i++
			}
		}
	}
	if cond && !setHappened(args, reply, get) {
		return nil // NX or XX: nothing set
	}
	if ok {
		return cmdArgs("SET", args[1], args[2], []byte("PXAT"), strconv.AppendInt(nil, at, 10))
	}
	if !get {
		return args
	}
	// Redis sends it without GET (the reply is the client's business).
	var out [][]byte
	for i, a := range args {
		if i < 3 || !lowerEq(a, "get") {
			out = append(out, a)
		}
	}
	return out
}

// setHappened reports whether a SET with NX or XX set its key: without
// GET its reply is null when it did not; with GET the reply is the old
// value, null when there was none, so NX set iff it is null and XX iff
// it is not.
func setHappened(args [][]byte, reply []byte, get bool) bool {
	if !get {
		return !isNull(reply)
	}
	for _, a := range args[3:] {
		if lowerEq(a, "nx") {
			return isNull(reply)
		}
	}
	return !isNull(reply)
}

// expirePropagated: the EXPIRE family is sent as PEXPIREAT with its
// options, or as DEL when the time is already past (the key was deleted).
func expirePropagated(name string, args [][]byte, now int64) [][]byte {
	opt := map[string]string{"expire": "ex", "pexpire": "px", "expireat": "exat", "pexpireat": "pxat"}[name]
	at, ok := expiryAt([]byte(opt), args[2], now)
	switch {
	case !ok:
		return args
	case at <= now:
		return cmdArgs("DEL", args[1])
	}
	return append(cmdArgs("PEXPIREAT", args[1], strconv.AppendInt(nil, at, 10)), args[3:]...)
}

// mpopPropagated: LMPOP and ZMPOP are sent as the plain pop of the key
// they popped from, with the count they popped; nothing when they popped
// nothing. Their reply is [key, [elements]].
func mpopPropagated(args [][]byte, reply []byte) [][]byte {
	if isNull(reply) || !bytes.HasPrefix(reply, []byte("*2\r\n")) {
		return nil
	}
	rest := reply[4:]
	klen := replyLen(rest)
	key, ok := bulkOf(rest[:klen])
	if !ok {
		return nil
	}
	rest = rest[klen:]
	eol := bytes.IndexByte(rest, '\n')
	if len(rest) == 0 || rest[0] != '*' || eol < 0 {
		return nil
	}
	count := rest[1 : eol-1]
	// The direction follows the numkeys keys.
	numkeys, err := strconv.Atoi(string(args[1]))
	if err != nil || numkeys < 1 || 2+numkeys >= len(args) {
		return args
	}
	pops := map[string]string{"left": "LPOP", "right": "RPOP", "min": "ZPOPMIN", "max": "ZPOPMAX"}
	pop, ok := pops[strings.ToLower(string(args[2+numkeys]))]
	if !ok {
		return args
	}
	return cmdArgs(pop, key, count)
}

// spopPropagated: SPOP goes out as the SREM of what it popped (nothing
// when it popped nothing), or as a DEL of the key when it popped fewer
// than its count (the whole set). Redis also sends a DEL when the count
// equals the set's size, which the reply does not tell, and one SREM per
// member (a transaction): here one SREM of them all.
func spopPropagated(args [][]byte, reply []byte) [][]byte {
	if len(args) == 2 {
		if m, ok := bulkOf(reply); ok {
			return cmdArgs("SREM", args[1], m)
		}
		return nil
	}
	eol := bytes.IndexByte(reply, '\n')
	n, err := strconv.Atoi(string(reply[1:max(eol-1, 1)]))
	count, cerr := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case reply[0] != '*' || err != nil || cerr != nil:
		return args
	case n == 0:
		return nil
	case int64(n) < count:
		return cmdArgs("DEL", args[1])
	}
	p := cmdArgs("SREM", args[1])
	for rest := reply[eol+1:]; len(rest) > 0; {
		l := replyLen(rest)
		m, _ := bulkOf(rest[:l])
		p = append(p, m)
		rest = rest[l:]
	}
	return p
}

// xreadgroupClaims: an XREADGROUP of new entries (">") goes out as one
// XCLAIM per entry it delivered, as Redis 7.0 propagates it — the
// consumer, the entry, the delivery at the leader's time now, a delivery
// count of 1 and the group's last id, which is that entry's — so that a
// replica's pending entries list matches without reading. Empty, not
// nil, for one that delivered nothing (nothing is sent); nil when the
// command is not such a read (its NOACK form, a read of the pending
// history): propagated decides.
func xreadgroupClaims(args [][]byte, reply []byte, now int64) [][][]byte {
	if !lowerEq(args[0], "xreadgroup") || len(reply) == 0 || reply[0] != '*' {
		return nil
	}
	if isNull(reply) {
		return [][][]byte{}
	}
	var group, consumer []byte
	streams := -1
	for i := 1; i < len(args); i++ {
		switch {
		case lowerEq(args[i], "group") && i+2 < len(args):
			group, consumer = args[i+1], args[i+2]
			i += 2
		case lowerEq(args[i], "noack"):
			return nil
		case lowerEq(args[i], "count"), lowerEq(args[i], "block"):
			i++
		case lowerEq(args[i], "streams"):
			streams = i + 1
			i = len(args)
		}
	}
	if group == nil || streams < 0 || (len(args)-streams)%2 != 0 {
		return nil
	}
	nkeys := (len(args) - streams) / 2
	newOnly := map[string]bool{}
	for k := range nkeys {
		newOnly[string(args[streams+k])] = string(args[streams+nkeys+k]) == ">"
	}
	at := strconv.AppendInt(nil, now, 10)
	var claims [][][]byte
	// The reply: an array of [key, array of [id, fields]] per stream.
	n, rest, ok := arrayHeader(reply)
	for ; ok && n > 0; n-- {
		var pair, entries int
		if pair, rest, ok = arrayHeader(rest); !ok || pair != 2 {
			return nil
		}
		kl := replyLen(rest)
		key, isBulk := bulkOf(rest[:kl])
		if !isBulk {
			return nil
		}
		rest = rest[kl:]
		if entries, rest, ok = arrayHeader(rest); !ok {
			return nil
		}
		for ; entries > 0; entries-- {
			el := replyLen(rest)
			entry := rest[:el]
			rest = rest[el:]
			if !newOnly[string(key)] {
				continue
			}
			if m, body, ok := arrayHeader(entry); ok && m == 2 {
				if id, ok := bulkOf(body[:replyLen(body)]); ok {
					claims = append(claims, cmdArgs("XCLAIM", key, group, consumer, []byte("0"), id,
						[]byte("TIME"), at, []byte("RETRYCOUNT"), []byte("1"), []byte("FORCE"), []byte("JUSTID"),
						[]byte("LASTID"), id))
				}
			}
		}
	}
	return claims
}

// arrayHeader reads an array's header "*n\r\n": n and what follows.
func arrayHeader(b []byte) (n int, rest []byte, ok bool) {
	eol := bytes.IndexByte(b, '\n')
	if len(b) == 0 || b[0] != '*' || eol < 2 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(b[1 : eol-1]))
	return n, b[eol+1:], err == nil && n >= 0
}
