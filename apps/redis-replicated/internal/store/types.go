package store

import (
	"bytes"
	"errors"
	"math"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// String returns the type name Redis's TYPE command reports for k.
func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindList:
		return "list"
	case kindHash:
		return "hash"
	case kindSet:
		return "set"
	case kindZSet:
		return "zset"
	case kindStream:
		return "stream"
	}
	return "none"
}

// Error texts used only by the collection types.
const (
	errMustBePositive = "ERR value is out of range, must be positive"
	errNaNScore       = "ERR resulting score is not a number (NaN)"
	errNotFloatRange  = "ERR min or max is not a float"
)

// collInt parses b as Redis's string2ll does: an optional '-', no '+', no
// leading zeros, no spaces, and a value that fits in int64.
func collInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	p := b
	if p[0] == '-' {
		neg = true
		p = p[1:]
	}
	if len(p) == 0 || p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var u uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u-1) - 1, true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// strtod approximates C's strtod over the whole of b: it reports the value
// and whether all of b was consumed and whether the result over- or
// underflowed. Go's ParseFloat wants a 'p' exponent on hex floats, which C
// does not, so one is supplied.
func strtod(b []byte) (f float64, ok, rangeErr bool) {
	s := string(b)
	body := s
	if len(body) > 0 && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		if !bytes.ContainsAny([]byte(body), "pP") {
			s += "p0"
		}
	}
	if bytes.IndexByte(b, '_') >= 0 {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, true, true
		}
		return 0, false, false
	}
	if f == 0 && !(len(body) > 1 && (body[1] == 'x' || body[1] == 'X')) {
		// Underflow to zero: strtod flags ERANGE when nonzero digits
		// produced a zero.
		for _, c := range []byte(body) {
			if c == 'e' || c == 'E' {
				break
			}
			if c >= '1' && c <= '9' {
				return f, true, true
			}
		}
	}
	return f, true, false
}

// collFloat parses b as Redis's getDoubleFromObject does: no leading
// space, nothing left over, no NaN, no overflow or underflow.
func collFloat(b []byte) (float64, bool) {
	if f, ok := parseFloatFast(b); ok {
		return f, true
	}
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	f, ok, rangeErr := strtod(b)
	if !ok || rangeErr || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// appendHelp appends a container command's HELP reply: its lines as
// simple strings.
func appendHelp(dst []byte, lines []string) []byte {
	dst = resp.AppendArrayLen(dst, len(lines))
	for _, l := range lines {
		dst = resp.AppendSimple(dst, l)
	}
	return dst
}

// appendScore appends d as Redis 7.0 replies a double: "inf"/"-inf", else
// printf's "%.17g" (so 0.1 is "0.10000000000000001", as 7.0 prints it;
// 7.2 switched to the shortest round-trip form).
func appendScore(dst []byte, d float64) []byte {
	var buf [32]byte
	return resp.AppendBulk(dst, formatScore(buf[:0], d))
}

// formatScore appends the text of d as appendScore replies it.
func formatScore(dst []byte, d float64) []byte {
	switch {
	case math.IsInf(d, 1):
		return append(dst, "inf"...)
	case math.IsInf(d, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, d, 'g', 17, 64)
}

// collFold reports whether b equals the lowercase ASCII word w in any case.
func collFold(b []byte, w string) bool {
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

// normRange turns a Redis start/stop index pair over n elements into a
// half-open [lo, hi) slice range; empty when lo >= hi.
func normRange(start, stop, n int64) (lo, hi int64) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= n {
		return 0, 0
	}
	if stop >= n {
		stop = n - 1
	}
	return start, stop + 1
}
