package server

import (
	"strconv"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// RESP3. A connection that said HELLO 3 gets Redis 7.0's RESP3 replies.
// The store writes RESP2 (the replicated replies are the same bytes on
// every replica, whatever the clients speak), and the connection rewrites
// each reply for its client as Redis types it: nulls as _, scores as
// doubles, hashes and CONFIG GET as maps, set commands as sets, scored
// ranges as [member, score] pairs, INFO and CLIENT INFO/LIST as verbatim
// text, Pub/Sub messages as pushes. A RESP2 connection pays one comparison
// per reply.

// shape says how a command's RESP2 reply becomes RESP3; every shape also
// turns null bulks and null arrays, at any depth, into RESP3's null.
type shape uint8

const (
	shapePlain       shape = iota // nulls only
	shapeMap                      // a flat array of pairs: a map
	shapeSet                      // an array: a set
	shapeDouble                   // a bulk: a double
	shapeDoubles                  // an array of bulks: doubles
	shapePairs                    // a flat array of pairs: [a, b] arrays
	shapeScores                   // a flat array of member, score: [member, double] arrays
	shapePopScore                 // ZPOPMIN/MAX without a count: member, then a double
	shapeKeyScores                // ZMPOP: a key, then [member, score] arrays
	shapeScoreArrays              // [member, score] arrays: the scores as doubles
	shapeVerbatim                 // a bulk: verbatim text
	shapeStatsMap                 // MEMORY STATS: pairs to a map, bulk values doubles, array values maps
	shapeKeyedMap                 // XREAD: [key, value] arrays: a map
	shapeMaps                     // XINFO GROUPS/CONSUMERS: an array of maps
	shapeStreamInfo               // XINFO STREAM: a map; with FULL, its groups as shapeGroupsFull
	shapeGroupsFull               // XINFO STREAM FULL's groups: an array of shapeGroupFull
	shapeGroupFull                // one of them: a map, its consumers as shapeMaps
	shapeKeyPopScore              // BZPOPMIN/MAX: key, member, then a double
	shapeGeoPos                   // GEOPOS: [longitude, latitude] arrays of doubles
	shapeGeoCoords                // a geo search WITHCOORD: arrays ending with the coordinates
	shapeGeoItem                  // one of them: its last element, the coordinates, doubles
)

// shapeOf is the shape of the reply to args.
func shapeOf(args [][]byte) shape {
	var name [20]byte // georadiusbymember_ro
	if len(args[0]) > len(name) {
		return shapePlain
	}
	n := string(lowerInto(name[:0], args[0]))
	has := func(word string) bool {
		for _, a := range args[1:] {
			if lowerEq(a, word) {
				return true
			}
		}
		return false
	}
	switch n {
	case "hgetall":
		return shapeMap
	case "smembers", "sinter", "sunion", "sdiff":
		return shapeSet
	case "spop":
		if len(args) > 2 {
			return shapeSet
		}
	case "zscore", "zincrby", "zadd":
		return shapeDouble
	case "zmscore":
		return shapeDoubles
	case "zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore", "zrandmember", "zunion", "zinter", "zdiff":
		if has("withscores") {
			return shapeScores
		}
	case "zpopmin", "zpopmax":
		if len(args) > 2 {
			return shapeScores
		}
		return shapePopScore
	case "hrandfield":
		if has("withvalues") {
			return shapePairs
		}
	case "zmpop", "bzmpop":
		return shapeKeyScores
	case "bzpopmin", "bzpopmax":
		return shapeKeyPopScore
	case "lcs":
		if has("idx") {
			return shapeMap
		}
	case "memory":
		switch {
		case len(args) == 2 && lowerEq(args[1], "stats"):
			return shapeStatsMap
		case len(args) == 2 && lowerEq(args[1], "doctor"):
			return shapeVerbatim
		}
	case "xread", "xreadgroup":
		return shapeKeyedMap
	case "geopos":
		return shapeGeoPos
	case "geosearch", "georadius", "georadius_ro", "georadiusbymember", "georadiusbymember_ro":
		if has("withcoord") {
			return shapeGeoCoords
		}
	case "xinfo":
		switch {
		case len(args) < 2:
		case lowerEq(args[1], "stream"):
			return shapeStreamInfo
		case lowerEq(args[1], "groups"), lowerEq(args[1], "consumers"):
			return shapeMaps
		}
	}
	return shapePlain
}

// toRESP3 appends to dst the RESP3 form of the reply at the start of src,
// typed by sh, and returns dst and what follows the reply in src. src is
// one of this server's RESP2 replies (well-formed by construction).
func toRESP3(dst, src []byte, sh shape) ([]byte, []byte) {
	line, rest := cutLine(src)
	switch src[0] {
	case '$':
		n, _ := strconv.Atoi(string(line[1:]))
		if n < 0 {
			return append(dst, "_\r\n"...), rest
		}
		body := rest[:n]
		rest = rest[n+2:]
		switch sh {
		case shapeDouble, shapeDoubles:
			dst = append(dst, ',')
			dst = append(dst, body...)
			return append(dst, "\r\n"...), rest
		case shapeVerbatim:
			return appendVerbatim(dst, body), rest
		}
		dst = append(dst, src[:len(src)-len(rest)]...)
		return dst, rest
	case '*':
		n, _ := strconv.Atoi(string(line[1:]))
		if n < 0 {
			return append(dst, "_\r\n"...), rest
		}
		elem := shapePlain
		switch sh {
		case shapeMap:
			dst = appendRESP3Len(dst, '%', n/2)
		case shapeSet:
			dst = appendRESP3Len(dst, '~', n)
		case shapeDoubles:
			dst = resp.AppendArrayLen(dst, n)
			elem = shapeDouble
		case shapePairs, shapeScores:
			dst = resp.AppendArrayLen(dst, n/2)
			second := shapePlain
			if sh == shapeScores {
				second = shapeDouble
			}
			for i := 0; i < n/2; i++ {
				dst = resp.AppendArrayLen(dst, 2)
				dst, rest = toRESP3(dst, rest, shapePlain)
				dst, rest = toRESP3(dst, rest, second)
			}
			return dst, rest
		case shapeKeyScores:
			dst = resp.AppendArrayLen(dst, n)
			return toRESP3PlainBut(dst, rest, n, 1, shapeScoreArrays)
		case shapeScoreArrays:
			dst = resp.AppendArrayLen(dst, n)
			for range n {
				dst, rest = toRESP3(dst, rest, shapePopScore)
			}
			return dst, rest
		case shapeStatsMap:
			dst = appendRESP3Len(dst, '%', n/2)
			for range n / 2 {
				dst, rest = toRESP3(dst, rest, shapePlain)
				value := shapePlain
				switch rest[0] {
				case '$':
					value = shapeDouble
				case '*':
					value = shapeStatsMap
				}
				dst, rest = toRESP3(dst, rest, value)
			}
			return dst, rest
		case shapeKeyPopScore:
			dst = resp.AppendArrayLen(dst, n)
			return toRESP3PlainBut(dst, rest, n, 2, shapeDouble)
		case shapePopScore:
			dst = resp.AppendArrayLen(dst, n)
			for i := range n {
				s := shapePlain
				if i%2 == 1 {
					s = shapeDouble
				}
				dst, rest = toRESP3(dst, rest, s)
			}
			return dst, rest
		case shapeKeyedMap:
			dst = appendRESP3Len(dst, '%', n)
			for range n {
				_, rest = cutLine(rest) // the pair's own array header
				dst, rest = toRESP3(dst, rest, shapePlain)
				dst, rest = toRESP3(dst, rest, shapePlain)
			}
			return dst, rest
		case shapeMaps:
			dst = resp.AppendArrayLen(dst, n)
			elem = shapeMap
		case shapeGroupsFull:
			dst = resp.AppendArrayLen(dst, n)
			elem = shapeGroupFull
		case shapeGeoPos:
			dst = resp.AppendArrayLen(dst, n)
			elem = shapeDoubles
		case shapeGeoCoords:
			dst = resp.AppendArrayLen(dst, n)
			elem = shapeGeoItem
		case shapeGeoItem:
			dst = resp.AppendArrayLen(dst, n)
			return toRESP3PlainBut(dst, rest, n, n-1, shapeDoubles)
		case shapeStreamInfo, shapeGroupFull:
			// A map whose last value is nested maps: XINFO STREAM FULL's
			// groups (it has 9 pairs; without FULL, 10), a group's consumers.
			dst = appendRESP3Len(dst, '%', n/2)
			last := shapeMaps
			if sh == shapeStreamInfo {
				last = shapePlain
				if n == 18 {
					last = shapeGroupsFull
				}
			}
			return toRESP3PlainBut(dst, rest, n, n-1, last)
		default:
			dst = resp.AppendArrayLen(dst, n)
		}
		for range n {
			dst, rest = toRESP3(dst, rest, elem)
		}
		return dst, rest
	case '=', '%', '~':
		return copyRESP3(dst, src)
	}
	// Simple strings, errors, integers (and RESP3's simple types).
	return append(dst, src[:len(src)-len(rest)]...), rest
}

// copyRESP3 appends the RESP3 reply at the start of src as it is, and
// returns dst and what follows it: a script's reply a read wrote in its
// connection's RESP3 already (store.Env.RESP3) may hold any RESP3 type.
func copyRESP3(dst, src []byte) ([]byte, []byte) {
	line, rest := cutLine(src)
	n, _ := strconv.Atoi(string(line[1:]))
	switch src[0] {
	case '=':
		rest = rest[n+2:]
	case '%':
		n *= 2
		fallthrough
	case '~':
		dst = append(dst, src[:len(src)-len(rest)]...)
		for range n {
			dst, rest = toRESP3(dst, rest, shapePlain)
		}
		return dst, rest
	}
	return append(dst, src[:len(src)-len(rest)]...), rest
}

// A script that said redis.setresp(3) sees its commands' replies as this
// server's RESP3 connections do.
func init() {
	store.SetRESP3Converter(func(dst, reply []byte, args [][]byte) []byte {
		dst, _ = toRESP3(dst, reply, shapeOf(args))
		return dst
	})
}

// toRESP3PlainBut converts the n replies at the start of src, each as
// shapePlain but the one at index at, as special; it returns dst and what
// follows them in src.
func toRESP3PlainBut(dst, src []byte, n, at int, special shape) ([]byte, []byte) {
	for i := range n {
		sh := shapePlain
		if i == at {
			sh = special
		}
		dst, src = toRESP3(dst, src, sh)
	}
	return dst, src
}

// appendRESP3Len starts a RESP3 aggregate of type typ ('%' a map of n
// pairs, '~' a set of n elements, '>' a push, ...).
func appendRESP3Len(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n"...)
}

// appendVerbatim appends text as a RESP3 verbatim string of format txt.
func appendVerbatim(b, text []byte) []byte {
	b = append(b, '=')
	b = strconv.AppendInt(b, int64(len(text)+4), 10)
	b = append(b, "\r\ntxt:"...)
	b = append(b, text...)
	return append(b, "\r\n"...)
}

// cutLine splits b after its first CRLF: the line without it, the rest.
func cutLine(b []byte) (line, rest []byte) {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return b[:i], b[i+2:]
		}
	}
	return b, nil
}

// resp3Replies rewrites out[from:], the replies to commands of the given
// shapes in order, into RESP3 (a connection that said HELLO 3).
func (c *conn) resp3Replies(out []byte, from int, shapes []shape) []byte {
	src := append(c.conv[:0], out[from:]...)
	out = out[:from]
	for _, sh := range shapes {
		if len(src) == 0 {
			break
		}
		out, src = toRESP3(out, src, sh)
	}
	c.conv = src[:0]
	return append(out, src...) // anything unaccounted for, as it was
}

// resp3Exec rewrites an EXEC reply at out[from:]: a null (the watch check
// failed) or an array of the queued commands' replies.
func (c *conn) resp3Exec(out []byte, from int, shapes []shape) []byte {
	if len(out) == from || out[from] != '*' {
		return out
	}
	line, rest := cutLine(out[from:])
	n, _ := strconv.Atoi(string(line[1:]))
	if n < 0 {
		return append(out[:from], "_\r\n"...)
	}
	head := len(out) - len(rest)
	return c.resp3Replies(out, head, shapes)
}

// appendMapLen starts a map of n pairs: a flat array in RESP2.
func (c *conn) appendMapLen(b []byte, n int) []byte {
	if c.proto.Load() == 3 {
		return appendRESP3Len(b, '%', n)
	}
	return resp.AppendArrayLen(b, 2*n)
}

// appendText appends text meant to be read (INFO, CLIENT INFO and LIST): a
// bulk string in RESP2, a verbatim string in RESP3.
func (c *conn) appendText(b, text []byte) []byte {
	if c.proto.Load() == 3 {
		return appendVerbatim(b, text)
	}
	return resp.AppendBulk(b, text)
}
