package store

// The string commands: GET, SET and its variants, the multi-key forms, the
// counters (INCR … INCRBYFLOAT) and the range commands.
//
// Differences from Redis 7.0 (intentional or unavoidable):
//
//   - INCRBYFLOAT emulates the x87 80-bit long double Redis computes in with
//     a math/big.Float of 64 mantissa bits (the same precision and rounding),
//     so results and their "%.17Lf, trailing zeros trimmed" rendering match.
//     The exponent range is checked only coarsely (overflow past the long
//     double maximum and underflow below its smallest subnormal are refused
//     as Redis refuses them) and subnormal results keep full precision where
//     the hardware would lose some: visible only for |values| < 1e-4931,
//     which print as "0" either way.
//   - Redis stores small integers in a shared, integer-encoded form; this
//     store keeps every string as bytes, which only OBJECT ENCODING (not
//     implemented here) could tell apart.
//   - A SET with an EXAT/PXAT time already past stores the key with that
//     time, as Redis 7.0 does; it reads as absent and the next write or the
//     expiry sweep deletes it.

import (
	"bytes"
	"math/big"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// maxStringLen is Redis's default proto-max-bulk-len: the longest string
// APPEND and SETRANGE may build.
const maxStringLen = 512 << 20

const (
	errStringTooLong = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errNaNOrInf      = "ERR increment would produce NaN or Infinity"
)

func init() {
	register(
		&Command{Name: "get", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Get the value of a key", run: cmdGet},
		&Command{Name: "set", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Set the string value of a key", run: cmdSet},
		&Command{Name: "setnx", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Set the value of a key, only if the key does not exist", run: cmdSetNX},
		&Command{Name: "setex", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Set the value and expiration of a key", run: cmdSetEX},
		&Command{Name: "psetex", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Set the value and expiration in milliseconds of a key", run: cmdPSetEX},
		&Command{Name: "getset", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Set the string value of a key and return its old value", run: cmdGetSet},
		&Command{Name: "getdel", Arity: 2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Get the value of a key and delete the key", run: cmdGetDel},
		&Command{Name: "mget", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1,
			Group: "string", Summary: "Get the values of all the given keys", run: cmdMGet},
		&Command{Name: "mset", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2,
			Group: "string", Summary: "Set multiple keys to multiple values", run: cmdMSet},
		&Command{Name: "msetnx", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2,
			Group: "string", Summary: "Set multiple keys to multiple values, only if none of the keys exist", run: cmdMSetNX},
		&Command{Name: "append", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Append a value to a key", run: cmdAppend},
		&Command{Name: "strlen", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Get the length of the value stored in a key", run: cmdStrlen},
		&Command{Name: "incr", Arity: 2, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Increment the integer value of a key by one", run: cmdIncr},
		&Command{Name: "decr", Arity: 2, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Decrement the integer value of a key by one", run: cmdDecr},
		&Command{Name: "incrby", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Increment the integer value of a key by the given amount", run: cmdIncrBy},
		&Command{Name: "decrby", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Decrement the integer value of a key by the given number", run: cmdDecrBy},
		&Command{Name: "incrbyfloat", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Increment the float value of a key by the given amount", run: cmdIncrByFloat},
		&Command{Name: "getrange", Arity: 4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Get a substring of the string stored at a key", run: cmdGetRange},
		&Command{Name: "setrange", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Overwrite part of a string at key starting at the specified offset", run: cmdSetRange},
		&Command{Name: "getex", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "string", Summary: "Get the value of a key and optionally set its expiration", run: cmdGetEx},
		&Command{Name: "lcs", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 2, Step: 1,
			Group: "string", Summary: "Find longest common substring", run: cmdLCS},
	)
}

// parseRedisInt parses b as Redis's string2ll does: an optional '-', then
// decimal digits with no leading zero (bare "0" aside), no '+', no spaces,
// within int64.
func parseRedisInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (1<<64-1-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// newString returns a string value holding a copy of b (arguments alias the
// connection's buffers).
func newString(b []byte) *value { return &value{kind: kindString, str: bytes.Clone(b)} }

// strEncoding is what a string's encoding owes to its history: Redis
// encodes a value a client SETs by its content (int, embstr, raw), but
// leaves raw a string a command modified in place (APPEND, SETRANGE,
// SETBIT, BITFIELD, the HLL commands) or created as a buffer (BITOP), and
// never int one INCRBYFLOAT wrote.
type strEncoding uint8

const (
	strAuto  strEncoding = iota // by content
	strRaw                      // raw
	strNoInt                    // embstr or raw by length
)

// stringOf looks key up for a read: the value (nil if absent) and false if
// it holds another type.
func (s *Store) stringOf(e *Env, key []byte) (*value, bool) {
	v, wrong := s.lookupKind(e, key, kindString, false)
	return v, !wrong
}

// stringOfWrite is stringOf for writes (an expired key is deleted first).
func (s *Store) stringOfWrite(e *Env, key []byte) (*value, bool) {
	v, wrong := s.lookupKind(e, key, kindString, true)
	return v, !wrong
}

func cmdGet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendNull(dst)
	}
	return resp.AppendBulk(dst, v.str)
}

// SET's option bits.
const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setEX
	setPX
	setEXAT
	setPXAT
)

const setExpireMask = setEX | setPX | setEXAT | setPXAT

func cmdSet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	flags := 0
	var expire []byte
	for i := 3; i < len(args); i++ {
		opt := args[i]
		hasNext := i+1 < len(args)
		var bit int
		switch {
		case eqFold(opt, "nx") && flags&setXX == 0:
			flags |= setNX
			continue
		case eqFold(opt, "xx") && flags&setNX == 0:
			flags |= setXX
			continue
		case eqFold(opt, "get"):
			flags |= setGet
			continue
		case eqFold(opt, "keepttl") && flags&setExpireMask == 0:
			flags |= setKeepTTL
			continue
		default:
			if bit = expireOption(opt); bit == 0 {
				return resp.AppendError(dst, errSyntax)
			}
		}
		// Repeating the same option is allowed (the last time wins); mixing
		// it with another expire option or KEEPTTL is not.
		if flags&(setKeepTTL|setExpireMask&^bit) != 0 || !hasNext {
			return resp.AppendError(dst, errSyntax)
		}
		flags |= bit
		i++
		expire = args[i]
	}
	return s.setGeneric(e, dst, "set", flags, args[1], args[2], expire)
}

// setGeneric is the common part of SET, SETNX, SETEX and PSETEX, with
// Redis's order of checks: the expire time, then GET's type check, then
// the NX/XX condition.
func (s *Store) setGeneric(e *Env, dst []byte, name string, flags int, key, val, expire []byte) []byte {
	var at int64
	if expire != nil {
		var errMsg string
		if at, errMsg = expireAt(e, flags, expire, name); errMsg != "" {
			return resp.AppendError(dst, errMsg)
		}
	}
	old := s.lookupWrite(e, key)
	if flags&setGet != 0 {
		switch {
		case old == nil:
			dst = resp.AppendNull(dst)
		case old.kind != kindString:
			return resp.AppendError(dst, errWrongType)
		default:
			dst = resp.AppendBulk(dst, old.str)
		}
	}
	if (flags&setNX != 0 && old != nil) || (flags&setXX != 0 && old == nil) {
		if flags&setGet != 0 {
			return dst
		}
		if name == "setnx" {
			return resp.AppendInt(dst, 0)
		}
		return resp.AppendNull(dst)
	}
	if old != nil && old.kind == kindString {
		// Overwrite in place: a workload of SETs on existing keys (what
		// every replica applies) then allocates nothing for them.
		old.str = append(old.str[:0], val...)
		old.strEnc = strAuto
		newAt := int64(0)
		if flags&setKeepTTL != 0 {
			newAt = old.expireAt
		}
		if at != 0 {
			newAt = at
		}
		s.setExpire(key, old, newAt)
	} else {
		v := newString(val)
		if flags&setKeepTTL != 0 && old != nil {
			v.expireAt = old.expireAt
		}
		if at != 0 {
			v.expireAt = at
		}
		s.put(key, v)
	}
	if s.cfg.NotifyKeyspaceEvents != 0 { // the hot path's one branch
		s.notifySet(e, key, at)
	}
	switch {
	case flags&setGet != 0:
		return dst
	case name == "setnx":
		return resp.AppendInt(dst, 1)
	}
	return resp.AppendOK(dst)
}

const maxInt64 = 1<<63 - 1

// expireAt turns the argument of an EX, PX, EXAT or PXAT option (flags
// says which) into a Unix time in ms, or an error message as Redis's
// getExpireMillisecondsOrReply words it for command name.
func expireAt(e *Env, flags int, expire []byte, name string) (int64, string) {
	ms, ok := parseRedisInt(expire)
	if !ok {
		return 0, errNotInt
	}
	seconds := flags&(setEX|setEXAT) != 0
	if ms <= 0 || (seconds && ms > maxInt64/1000) {
		return 0, "ERR invalid expire time in '" + name + "' command"
	}
	if seconds {
		ms *= 1000
	}
	if flags&(setEX|setPX) != 0 {
		ms += e.NowMs // wraps negative on overflow, as Redis's does
	}
	if ms <= 0 {
		return 0, "ERR invalid expire time in '" + name + "' command"
	}
	return ms, ""
}

func appendInvalidExpire(dst []byte, name string) []byte {
	return resp.AppendError(dst, "ERR invalid expire time in '"+name+"' command")
}

// eqFold reports whether b equals the lowercase ASCII word w, in any case.
func eqFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

func cmdSetNX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.setGeneric(e, dst, "setnx", setNX, args[1], args[2], nil)
}

func cmdSetEX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.setGeneric(e, dst, "setex", setEX, args[1], args[3], args[2])
}

func cmdPSetEX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.setGeneric(e, dst, "psetex", setPX, args[1], args[3], args[2])
}

func cmdGetSet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	old, ok := s.stringOfWrite(e, args[1])
	if !ok {
		return resp.AppendError(dst, errWrongType)
	}
	if old == nil {
		dst = resp.AppendNull(dst)
	} else {
		dst = resp.AppendBulk(dst, old.str)
	}
	s.put(args[1], newString(args[2])) // drops the TTL, as Redis's GETSET
	s.notify(e, notifyString, "set", args[1])
	return dst
}

func cmdGetDel(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOfWrite(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendNull(dst)
	}
	dst = resp.AppendBulk(dst, v.str)
	s.remove(args[1])
	s.notify(e, notifyGeneric, "del", args[1])
	return dst
}

func cmdMGet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	dst = resp.AppendArrayLen(dst, len(args)-1)
	for _, k := range args[1:] {
		// A key of another type reads as nil, not as an error.
		if v := s.lookup(e, k); v != nil && v.kind == kindString {
			dst = resp.AppendBulk(dst, v.str)
		} else {
			dst = resp.AppendNull(dst)
		}
	}
	return dst
}

func cmdMSet(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args)%2 == 0 {
		return AppendWrongArity(dst, "mset")
	}
	for i := 1; i < len(args); i += 2 {
		s.put(args[i], newString(args[i+1]))
		s.notify(e, notifyString, "set", args[i])
	}
	return resp.AppendOK(dst)
}

func cmdMSetNX(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args)%2 == 0 {
		return AppendWrongArity(dst, "msetnx")
	}
	for i := 1; i < len(args); i += 2 {
		if s.lookupWrite(e, args[i]) != nil {
			return resp.AppendInt(dst, 0)
		}
	}
	for i := 1; i < len(args); i += 2 {
		s.put(args[i], newString(args[i+1]))
		s.notify(e, notifyString, "set", args[i])
	}
	return resp.AppendInt(dst, 1)
}

func cmdAppend(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOfWrite(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		s.put(args[1], newString(args[2]))
		s.notify(e, notifyString, "append", args[1])
		return resp.AppendInt(dst, int64(len(args[2])))
	}
	if len(v.str)+len(args[2]) > maxStringLen {
		return resp.AppendError(dst, errStringTooLong)
	}
	v.str = append(v.str, args[2]...) // in place: the TTL stays
	v.strEnc = strRaw
	s.notify(e, notifyString, "append", args[1])
	return resp.AppendInt(dst, int64(len(v.str)))
}

func cmdStrlen(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(len(v.str)))
}

func cmdIncr(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.incrBy(e, dst, args[1], 1)
}

func cmdDecr(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.incrBy(e, dst, args[1], -1)
}

func cmdIncrBy(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	n, ok := parseRedisInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	return s.incrBy(e, dst, args[1], n)
}

func cmdDecrBy(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	n, ok := parseRedisInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if n == -maxInt64-1 { // its negation does not fit
		return resp.AppendError(dst, "ERR decrement would overflow")
	}
	return s.incrBy(e, dst, args[1], -n)
}

// incrBy adds n to key's integer, keeping its TTL.
func (s *Store) incrBy(e *Env, dst []byte, key []byte, n int64) []byte {
	v, ok := s.stringOfWrite(e, key)
	if !ok {
		return resp.AppendError(dst, errWrongType)
	}
	var cur int64
	if v != nil {
		if cur, ok = parseRedisInt(v.str); !ok {
			return resp.AppendError(dst, errNotInt)
		}
	}
	if (n < 0 && cur < -maxInt64-1-n) || (n > 0 && cur > maxInt64-n) {
		return resp.AppendError(dst, errOverflow)
	}
	cur += n
	if v == nil {
		v = &value{kind: kindString}
		s.put(key, v)
	}
	v.str = strconv.AppendInt(v.str[:0], cur, 10)
	v.strEnc = strAuto
	s.notify(e, notifyString, "incrby", key)
	return resp.AppendInt(dst, cur)
}

func cmdIncrByFloat(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v, ok := s.stringOfWrite(e, args[1])
	if !ok {
		return resp.AppendError(dst, errWrongType)
	}
	cur := new(big.Float).SetPrec(longDoublePrec)
	if v != nil {
		if cur, ok = parseLongDouble(v.str); !ok {
			return resp.AppendError(dst, errNotFloat)
		}
	}
	incr, ok := parseLongDouble(args[2])
	if !ok {
		return resp.AppendError(dst, errNotFloat)
	}
	if cur.IsInf() || incr.IsInf() {
		// inf + x is inf and inf - inf is NaN: Redis refuses both.
		return resp.AppendError(dst, errNaNOrInf)
	}
	sum := new(big.Float).SetPrec(longDoublePrec).Add(cur, incr)
	if sum.MantExp(nil) > longDoubleMaxExp {
		return resp.AppendError(dst, errNaNOrInf)
	}
	out := formatLongDouble(sum)
	if v == nil {
		v = &value{kind: kindString}
		s.put(args[1], v)
	}
	v.str = out
	v.strEnc = strNoInt
	s.notify(e, notifyString, "incrbyfloat", args[1])
	return resp.AppendBulk(dst, out)
}

// The x87 extended format Redis's long double is: 64 mantissa bits; finite
// values below 2^16384, subnormals down to 2^-16445.
const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384
	longDoubleMinExp = -16445
)

// parseLongDouble parses b as Redis's string2ld does with strtold: decimal
// or hexadecimal floats and inf/infinity, no leading space, nothing
// trailing, no NaN, nothing that overflows or underflows to zero, at most
// 5 KiB.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) > 5*1024 {
		return nil, false
	}
	s := string(b)
	body := s
	neg := false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	f := new(big.Float).SetPrec(longDoublePrec)
	if eqFold([]byte(body), "inf") || eqFold([]byte(body), "infinity") {
		return f.SetInf(neg), true
	}
	base := 10
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		if !validFloatSyntax(body[2:], true) {
			return nil, false
		}
		base = 0
	} else if !validFloatSyntax(body, false) {
		return nil, false
	}
	if !nonZeroMantissa(body, base == 0) {
		// Zero whatever the exponent (strtold does not overflow on
		// "0e99999999999999999999", which big.Float refuses to parse).
		return f, true
	}
	if _, _, err := f.Parse(s, base); err != nil || f.IsInf() || f.Sign() == 0 {
		return nil, false // exponent out of any range: overflow or underflow
	}
	exp := f.MantExp(nil)
	if exp > longDoubleMaxExp || exp < longDoubleMinExp {
		return nil, false // ERANGE: overflow, or underflow to zero
	}
	return f, true
}

// nonZeroMantissa reports whether a float literal (syntax checked) has a
// nonzero digit before its exponent.
func nonZeroMantissa(body string, hex bool) bool {
	if hex {
		body = body[2:]
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '.' || c == '0':
		case !hex && c|0x20 == 'e', hex && c|0x20 == 'p':
			return false
		default:
			return true
		}
	}
	return false
}

// validFloatSyntax checks strtold's grammar after the sign (and the 0x of a
// hexadecimal float): digits with at most one '.', at least one digit, then
// an optional exponent (e for decimal, p for hex) with an optional sign and
// at least one decimal digit.
func validFloatSyntax(s string, hex bool) bool {
	digits, i := 0, 0
	isDigit := func(c byte) bool {
		if hex {
			return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
		}
		return '0' <= c && c <= '9'
	}
	dot := false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			digits++
			continue
		case c == '.' && !dot:
			dot = true
			continue
		}
		break
	}
	if digits == 0 {
		return false
	}
	if i == len(s) {
		return true
	}
	expChar := byte('e')
	if hex {
		expChar = 'p'
	}
	if s[i]|0x20 != expChar {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// formatLongDouble renders f as Redis's human-friendly long double format:
// printf("%.17Lf") with trailing zeros (and a bare '.') trimmed, "-0" as "0".
func formatLongDouble(f *big.Float) []byte {
	out := f.Append(nil, 'f', 17)
	if bytes.IndexByte(out, '.') >= 0 {
		out = bytes.TrimRight(out, "0")
		out = bytes.TrimSuffix(out, []byte("."))
	}
	if string(out) == "-0" {
		out = out[1:]
	}
	return out
}

func cmdGetRange(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	start, ok1 := parseRedisInt(args[2])
	end, ok2 := parseRedisInt(args[3])
	if !ok1 || !ok2 {
		return resp.AppendError(dst, errNotInt)
	}
	v, ok := s.stringOf(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendBulk(dst, nil)
	}
	n := int64(len(v.str))
	if start < 0 && end < 0 && start > end {
		return resp.AppendBulk(dst, nil)
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return resp.AppendBulk(dst, nil)
	}
	return resp.AppendBulk(dst, v.str[start:end+1])
}

func cmdSetRange(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	off, ok := parseRedisInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if off < 0 {
		return resp.AppendError(dst, "ERR offset is out of range")
	}
	val := args[3]
	v, ok := s.stringOfWrite(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case len(val) == 0:
		// Nothing to write: not even a missing key is created.
		if v == nil {
			return resp.AppendInt(dst, 0)
		}
		return resp.AppendInt(dst, int64(len(v.str)))
	case off > maxStringLen-int64(len(val)): // no overflow, unlike off+len
		return resp.AppendError(dst, errStringTooLong)
	}
	if v == nil {
		v = &value{kind: kindString}
		s.put(args[1], v)
	}
	if need := int(off) + len(val); need > len(v.str) {
		v.str = append(v.str, make([]byte, need-len(v.str))...)
	}
	copy(v.str[off:], val)
	v.strEnc = strRaw
	s.notify(e, notifyString, "setrange", args[1])
	return resp.AppendInt(dst, int64(len(v.str)))
}

// getexPersist is GETEX's PERSIST option (with SET's expire bits).
const getexPersist = setPXAT << 1

func cmdGetEx(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	flags := 0
	var expire []byte
	for i := 2; i < len(args); i++ {
		opt := args[i]
		var bit int
		switch {
		case eqFold(opt, "persist") && flags&setExpireMask == 0:
			flags |= getexPersist
			continue
		default:
			bit = expireOption(opt)
		}
		// The same expire option may repeat (the last wins); mixing it
		// with another or PERSIST, or a missing time, is a syntax error.
		if bit == 0 || flags&(getexPersist|setExpireMask&^bit) != 0 || i+1 == len(args) {
			return resp.AppendError(dst, errSyntax)
		}
		flags |= bit
		i++
		expire = args[i]
	}
	v, ok := s.stringOfWrite(e, args[1])
	switch {
	case !ok:
		return resp.AppendError(dst, errWrongType)
	case v == nil:
		return resp.AppendNull(dst)
	}
	var at int64
	if expire != nil {
		var errMsg string
		if at, errMsg = expireAt(e, flags, expire, "getex"); errMsg != "" {
			return resp.AppendError(dst, errMsg)
		}
	}
	dst = resp.AppendBulk(dst, v.str)
	switch {
	case flags&(setEXAT|setPXAT) != 0 && at <= e.NowMs:
		// An absolute time already reached deletes the key, unlike SET's.
		s.remove(args[1])
		s.notify(e, notifyGeneric, "del", args[1])
	case expire != nil:
		s.setExpire(args[1], v, at)
		s.notify(e, notifyGeneric, "expire", args[1])
	case flags&getexPersist != 0 && v.expireAt != 0:
		s.setExpire(args[1], v, 0)
		s.notify(e, notifyGeneric, "persist", args[1])
	}
	return dst
}

// cmdLCS follows Redis's dynamic programme and its walk back through the
// table, so that among several longest common subsequences it returns the
// same one, and the same match ranges, as Redis.
func cmdLCS(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	va, wa := s.lookupKind(e, args[1], kindString, false)
	vb, wb := s.lookupKind(e, args[2], kindString, false)
	if wa || wb {
		return resp.AppendError(dst, "ERR The specified keys must contain string values")
	}
	var a, b []byte
	if va != nil {
		a = va.str
	}
	if vb != nil {
		b = vb.str
	}
	var getLen, getIdx, withMatchLen bool
	var minMatchLen int64
	for j := 3; j < len(args); j++ {
		switch opt := args[j]; {
		case eqFold(opt, "idx"):
			getIdx = true
		case eqFold(opt, "len"):
			getLen = true
		case eqFold(opt, "withmatchlen"):
			withMatchLen = true
		case eqFold(opt, "minmatchlen") && j+1 < len(args):
			n, ok := parseRedisInt(args[j+1])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			minMatchLen = max(n, 0)
			j++
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	if getLen && getIdx {
		return resp.AppendError(dst, "ERR If you want both the length and indexes, please just use IDX.")
	}
	alen, blen := len(a), len(b)
	if uint64(alen+1)*uint64(blen+1)*4 > maxStringLen {
		return resp.AppendError(dst, "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
	}
	// lcs[i*(blen+1)+j] is the length of the LCS of a[:i] and b[:j].
	w := blen + 1
	lcs := make([]uint32, (alen+1)*w)
	for i := 1; i <= alen; i++ {
		for j := 1; j <= blen; j++ {
			if a[i-1] == b[j-1] {
				lcs[i*w+j] = lcs[(i-1)*w+j-1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i-1)*w+j], lcs[i*w+j-1])
			}
		}
	}
	total := lcs[alen*w+blen]
	if getLen {
		return resp.AppendInt(dst, int64(total))
	}
	result := make([]byte, total)
	idx := total
	type match struct{ aStart, aEnd, bStart, bEnd int }
	var matches []match
	// A range is open while cur.aStart != alen; it grows backwards and is
	// emitted when the walk leaves it or reaches the start of a string.
	cur := match{aStart: alen}
	for i, j := alen, blen; i > 0 && j > 0; {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			switch {
			case cur.aStart == alen:
				cur = match{i - 1, i - 1, j - 1, j - 1}
			case cur.aStart == i && cur.bStart == j:
				cur.aStart--
				cur.bStart--
			default:
				emit = true
			}
			if cur.aStart == 0 || cur.bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if lcs[(i-1)*w+j] > lcs[i*w+j-1] {
				i--
			} else {
				j--
			}
			if cur.aStart != alen {
				emit = true
			}
		}
		if emit {
			if n := int64(uint32(cur.aEnd - cur.aStart + 1)); minMatchLen == 0 || n >= minMatchLen {
				matches = append(matches, cur)
			}
			cur.aStart = alen
		}
	}
	if !getIdx {
		return resp.AppendBulk(dst, result)
	}
	dst = resp.AppendArrayLen(dst, 4)
	dst = resp.AppendBulkString(dst, "matches")
	dst = resp.AppendArrayLen(dst, len(matches))
	for _, m := range matches {
		if withMatchLen {
			dst = resp.AppendArrayLen(dst, 3)
		} else {
			dst = resp.AppendArrayLen(dst, 2)
		}
		dst = resp.AppendArrayLen(dst, 2)
		dst = resp.AppendInt(dst, int64(m.aStart))
		dst = resp.AppendInt(dst, int64(m.aEnd))
		dst = resp.AppendArrayLen(dst, 2)
		dst = resp.AppendInt(dst, int64(m.bStart))
		dst = resp.AppendInt(dst, int64(m.bEnd))
		if withMatchLen {
			dst = resp.AppendInt(dst, int64(uint32(m.aEnd-m.aStart+1)))
		}
	}
	dst = resp.AppendBulkString(dst, "len")
	return resp.AppendInt(dst, int64(total))
}

// expireOption is the flag of SET's and GETEX's expire options (EX, PX,
// EXAT, PXAT), 0 for anything else.
func expireOption(opt []byte) int {
	switch {
	case eqFold(opt, "ex"):
		return setEX
	case eqFold(opt, "px"):
		return setPX
	case eqFold(opt, "exat"):
		return setEXAT
	case eqFold(opt, "pxat"):
		return setPXAT
	}
	return 0
}
