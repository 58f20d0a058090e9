package store

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// The GEO commands, after Redis 7.0's geo.c: a geospatial index is a
// sorted set whose scores are the members' 52-bit geohashes (geohash.go),
// so GEOADD is a ZADD and the searches are score ranges of the sorted set
// (at most nine boxes around the centre), filtered by distance.

func geoCmd(name string, arity int, flags Flags, first, last int, summary string, run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: 1, Group: "geo", Summary: summary, run: run}
}

// How georadiusGeneric is called: the command's form.
const (
	geoFromCoords  = 1 << iota // GEORADIUS[_RO]: longitude latitude radius unit
	geoFromMember              // GEORADIUSBYMEMBER[_RO]: member radius unit
	geoNoStore                 // the _RO forms
	geoSearch                  // GEOSEARCH[STORE]: FROM... BY... options
	geoSearchStore             // GEOSEARCHSTORE: destination first
)

func init() {
	register(
		geoCmd("geoadd", -5, Write|DenyOOM, 1, 1, "Add one or more geospatial items in the geospatial index represented using a sorted set", cmdGeoAdd),
		geoCmd("geodist", -4, ReadOnly, 1, 1, "Returns the distance between two members of a geospatial index", cmdGeoDist),
		geoCmd("geohash", -2, ReadOnly, 1, 1, "Returns members of a geospatial index as standard geohash strings", cmdGeoHash),
		geoCmd("geopos", -2, ReadOnly, 1, 1, "Returns longitude and latitude of members of a geospatial index", cmdGeoPos),
		geoCmd("georadius", -6, Write|DenyOOM|MovableKeys, 1, 1, "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", geoSearchCmd(1, geoFromCoords)),
		geoCmd("georadius_ro", -6, ReadOnly, 1, 1, "A read-only variant for GEORADIUS", geoSearchCmd(1, geoFromCoords|geoNoStore)),
		geoCmd("georadiusbymember", -5, Write|DenyOOM|MovableKeys, 1, 1, "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", geoSearchCmd(1, geoFromMember)),
		geoCmd("georadiusbymember_ro", -5, ReadOnly, 1, 1, "A read-only variant for GEORADIUSBYMEMBER", geoSearchCmd(1, geoFromMember|geoNoStore)),
		geoCmd("geosearch", -7, ReadOnly, 1, 1, "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", geoSearchCmd(1, geoSearch)),
		geoCmd("geosearchstore", -8, Write|DenyOOM, 1, 2, "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", geoSearchCmd(2, geoSearch|geoSearchStore)),
	)
}

// geoParseLonLat is extractLongLatOrReply: a longitude and a latitude
// within Redis's limits, or the error reply.
func geoParseLonLat(lonArg, latArg []byte) (lon, lat float64, errMsg string) {
	var ok bool
	if lon, ok = collFloat(lonArg); !ok {
		return 0, 0, errNotFloat
	}
	if lat, ok = collFloat(latArg); !ok {
		return 0, 0, errNotFloat
	}
	if lon < geoLonMin || lon > geoLonMax || lat < geoLatMin || lat > geoLatMax {
		return 0, 0, "ERR invalid longitude,latitude pair " + geoFormatC(lon) + "," + geoFormatC(lat)
	}
	return lon, lat, ""
}

// geoFormatC is C's "%f" (only an infinity reaches it out of range).
func geoFormatC(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', 6, 64)
}

// geoUnit is extractUnitOrReply: meters per unit.
func geoUnit(b []byte) (float64, string) {
	switch {
	case collFold(b, "m"):
		return 1, ""
	case collFold(b, "km"):
		return 1000, ""
	case collFold(b, "ft"):
		return 0.3048, ""
	case collFold(b, "mi"):
		return 1609.34, ""
	}
	return 0, "ERR unsupported unit provided. please use M, KM, FT, MI"
}

// geoParseRadius is extractDistanceOrReply: a radius and its unit.
func geoParseRadius(distArg, unitArg []byte) (radius, conv float64, errMsg string) {
	radius, ok := collFloat(distArg)
	if !ok {
		return 0, 0, "ERR need numeric radius"
	}
	if radius < 0 {
		return 0, 0, "ERR radius cannot be negative"
	}
	conv, errMsg = geoUnit(unitArg)
	return radius, conv, errMsg
}

// geoParseBox is extractBoxOrReply: a width, a height and their unit.
func geoParseBox(wArg, hArg, unitArg []byte) (w, h, conv float64, errMsg string) {
	w, ok := collFloat(wArg)
	if !ok {
		return 0, 0, 0, "ERR need numeric width"
	}
	if h, ok = collFloat(hArg); !ok {
		return 0, 0, 0, "ERR need numeric height"
	}
	if h < 0 || w < 0 {
		return 0, 0, 0, "ERR height or width cannot be negative"
	}
	conv, errMsg = geoUnit(unitArg)
	return w, h, conv, errMsg
}

// cmdGeoAdd is GEOADD key [NX|XX] [CH] lon lat member ...: Redis turns it
// into a ZADD of the members' geohashes once every pair is valid.
func cmdGeoAdd(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	flags, i := 0, 2
	for ; i < len(args); i++ {
		switch {
		case collFold(args[i], "nx"):
			flags |= zaddNX
		case collFold(args[i], "xx"):
			flags |= zaddXX
		case collFold(args[i], "ch"):
			flags |= zaddCH
		default:
			goto parsed
		}
	}
parsed:
	if (len(args)-i)%3 != 0 || (flags&zaddNX != 0 && flags&zaddXX != 0) {
		return resp.AppendError(dst, errSyntax)
	}
	elems := make([][]byte, 0, (len(args)-i)/3*2)
	for ; i < len(args); i += 3 {
		lon, lat, errMsg := geoParseLonLat(args[i], args[i+1])
		if errMsg != "" {
			return resp.AppendError(dst, errMsg)
		}
		elems = append(elems, strconv.AppendUint(nil, geoScore(lon, lat), 10), args[i+2])
	}
	return s.zadd(e, dst, args[1], elems, flags)
}

// GeoAddAsZAdd is the ZADD that Redis 7.0 turns a valid GEOADD into, and
// propagates: the options as given, then each member's geohash score
// (nil if args is no valid GEOADD).
func GeoAddAsZAdd(args [][]byte) [][]byte {
	i := 2
	for i < len(args) && (collFold(args[i], "nx") || collFold(args[i], "xx") || collFold(args[i], "ch")) {
		i++
	}
	if len(args) < 3 || (len(args)-i)%3 != 0 {
		return nil
	}
	out := append([][]byte{[]byte("zadd")}, args[1:i]...)
	for ; i < len(args); i += 3 {
		lon, lat, errMsg := geoParseLonLat(args[i], args[i+1])
		if errMsg != "" {
			return nil
		}
		out = append(out, strconv.AppendUint(nil, geoScore(lon, lat), 10), args[i+2])
	}
	return out
}

// geoAppendDistance is addReplyDoubleDistance: fixedpoint_d2string's
// four decimals (the value times 10^4, rounded half to even).
func geoAppendDistance(dst []byte, d float64) []byte {
	var buf [32]byte
	return resp.AppendBulk(dst, geoFormatDistance(buf[:0], d))
}

func geoFormatDistance(b []byte, d float64) []byte {
	v := int64(math.RoundToEven(d * 10000))
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/10000, 10)
	b = append(b, '.')
	frac := v % 10000
	for p := int64(1000); p > 0; p /= 10 {
		b = append(b, byte('0'+frac/p%10))
	}
	return b
}

// geoAppendCoord is addReplyHumanLongDouble for a coordinate: "%.17Lf"
// without its trailing zeros (a double's digits are exact in a long
// double, so float64's correctly rounded ones are the same).
func geoAppendCoord(dst []byte, f float64) []byte {
	var buf [48]byte
	b := strconv.AppendFloat(buf[:0], f, 'f', 17, 64)
	b = trimHumanZeros(b)
	return resp.AppendBulk(dst, b)
}

func trimHumanZeros(b []byte) []byte {
	if slices.Contains(b, '.') {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	if len(b) == 2 && b[0] == '-' && b[1] == '0' {
		b = b[1:]
	}
	return b
}

func cmdGeoDist(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	toMeters := 1.0
	if len(args) == 5 {
		var errMsg string
		if toMeters, errMsg = geoUnit(args[4]); errMsg != "" {
			return resp.AppendError(dst, errMsg)
		}
	} else if len(args) > 5 {
		return resp.AppendError(dst, errSyntax)
	}
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if z == nil {
		return resp.AppendNull(dst)
	}
	sc1, ok1 := z.score(args[2])
	sc2, ok2 := z.score(args[3])
	if !ok1 || !ok2 {
		return resp.AppendNull(dst)
	}
	lon1, lat1, ok1 := geoDecodeScore(sc1)
	lon2, lat2, ok2 := geoDecodeScore(sc2)
	if !ok1 || !ok2 {
		return resp.AppendNull(dst)
	}
	return geoAppendDistance(dst, geoDistance(lon1, lat1, lon2, lat2)/toMeters)
}

const geoAlphabet = "0123456789bcdefghjkmnpqrstuvwxyz"

// cmdGeoHash answers the standard 11-character geohashes: Redis's own
// are over latitudes ±85.05, so each point is decoded and encoded again
// over ±90; the 11th character stands for bits Redis does not keep.
func cmdGeoHash(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.geoPerMember(e, dst, args, resp.AppendNull, func(dst []byte, lon, lat float64) []byte {
		h, _ := geoEncode(geoLonRange, geoStdLatRange, lon, lat, geoStepMax)
		var buf [11]byte
		for i := range 10 {
			buf[i] = geoAlphabet[(h.bits>>(52-(i+1)*5))&0x1f]
		}
		buf[10] = geoAlphabet[0]
		return resp.AppendBulk(dst, buf[:])
	})
}

// cmdGeoPos answers each member's longitude and latitude.
func cmdGeoPos(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.geoPerMember(e, dst, args, resp.AppendNullArray, func(dst []byte, lon, lat float64) []byte {
		dst = resp.AppendArrayLen(dst, 2)
		dst = geoAppendCoord(dst, lon)
		return geoAppendCoord(dst, lat)
	})
}

// geoPerMember answers an array of one reply per member args[2:] of the
// sorted set args[1]: missing's for a member it lacks, found's of the
// position of one it has.
func (s *Store) geoPerMember(e *Env, dst []byte, args [][]byte, missing func([]byte) []byte,
	found func(dst []byte, lon, lat float64) []byte) []byte {
	z, wrong := s.readZSet(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	dst = resp.AppendArrayLen(dst, len(args)-2)
	for _, m := range args[2:] {
		if lon, lat, ok := geoMemberPos(z, m); ok {
			dst = found(dst, lon, lat)
		} else {
			dst = missing(dst)
		}
	}
	return dst
}

// geoMemberPos is the position of member m of z (nil: none).
func geoMemberPos(z *zsetValue, m []byte) (lon, lat float64, ok bool) {
	if z == nil {
		return 0, 0, false
	}
	sc, ok := z.score(m)
	if !ok {
		return 0, 0, false
	}
	return geoDecodeScore(sc)
}

// geoPoint is one search result: dist in meters until the reply.
type geoPoint struct {
	lon, lat, dist, score float64
	member                string
}

// geoQuery is a parsed search.
type geoQuery struct {
	shape                          geoShape
	storeKey                       []byte
	storeDist                      bool
	withDist, withHash, withCoords bool
	sort                           int // 0 none, 1 ascending, -1 descending
	any                            bool
	count                          int64
}

func geoSearchCmd(keyIdx, flags int) func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
		return s.geoSearch(e, dst, args, keyIdx, flags)
	}
}

// geoSearch is georadiusGeneric: every GEORADIUS and GEOSEARCH form,
// with Redis's order of checks and errors.
func (s *Store) geoSearch(e *Env, dst []byte, args [][]byte, keyIdx, flags int) []byte {
	z, wrong := s.readZSet(e, args[keyIdx])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	q, errMsg := parseGeoQuery(z, args, flags)
	if errMsg != "" {
		return resp.AppendError(dst, errMsg)
	}
	if flags&geoSearchStore != 0 {
		q.storeKey = args[1]
	}
	if z == nil {
		if q.storeKey != nil {
			return s.storeZSet(e, dst, q.storeKey, nil, "")
		}
		return resp.AppendArrayLen(dst, 0)
	}
	if q.count != 0 && q.sort == 0 && !q.any {
		q.sort = 1
	}
	limit := int64(0)
	if q.any {
		limit = q.count
	}
	pts := geoCollect(z, &q.shape, limit)
	if len(pts) == 0 && q.storeKey == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	n := len(pts)
	if q.count != 0 && int64(n) > q.count {
		n = int(q.count)
	}
	geoSortPoints(pts, n, q.sort)
	pts = pts[:n]
	for i := range pts {
		pts[i].dist /= q.shape.conv
	}
	if q.storeKey != nil {
		return s.geoStore(e, dst, q.storeKey, pts, q.storeDist, flags)
	}
	return geoAppendPoints(dst, pts, q)
}

// parseGeoQuery reads the centre, shape and options of a search.
func parseGeoQuery(z *zsetValue, args [][]byte, flags int) (q geoQuery, errMsg string) {
	base := 0
	switch {
	case flags&geoFromCoords != 0:
		base = 6
		if q.shape.lon, q.shape.lat, errMsg = geoParseLonLat(args[2], args[3]); errMsg != "" {
			return q, errMsg
		}
		if q.shape.radius, q.shape.conv, errMsg = geoParseRadius(args[4], args[5]); errMsg != "" {
			return q, errMsg
		}
	case flags&geoFromMember != 0:
		base = 5
		if z != nil {
			var ok bool
			if q.shape.lon, q.shape.lat, ok = geoMemberPos(z, args[2]); !ok {
				return q, "ERR could not decode requested zset member"
			}
			if q.shape.radius, q.shape.conv, errMsg = geoParseRadius(args[3], args[4]); errMsg != "" {
				return q, errMsg
			}
		}
	default:
		base = 2
		if flags&geoSearchStore != 0 {
			base = 3
		}
	}
	var fromMember, fromLonLat, byRadius, byBox bool
	for i := base; i < len(args); i++ {
		a, left := args[i], len(args)-1-i
		switch {
		case collFold(a, "withdist"):
			q.withDist = true
		case collFold(a, "withhash"):
			q.withHash = true
		case collFold(a, "withcoord"):
			q.withCoords = true
		case collFold(a, "any"):
			q.any = true
		case collFold(a, "asc"):
			q.sort = 1
		case collFold(a, "desc"):
			q.sort = -1
		case collFold(a, "count") && left >= 1:
			n, ok := collInt(args[i+1])
			if !ok {
				return q, errNotInt
			}
			if n <= 0 {
				return q, "ERR COUNT must be > 0"
			}
			q.count = n
			i++
		case (collFold(a, "store") || collFold(a, "storedist")) && left >= 1 && flags&(geoNoStore|geoSearch) == 0:
			q.storeKey = args[i+1]
			q.storeDist = collFold(a, "storedist")
			i++
		case collFold(a, "storedist") && flags&geoSearchStore != 0:
			q.storeDist = true
		case collFold(a, "frommember") && left >= 1 && flags&geoSearch != 0 && !fromLonLat:
			if z != nil {
				var ok bool
				if q.shape.lon, q.shape.lat, ok = geoMemberPos(z, args[i+1]); !ok {
					return q, "ERR could not decode requested zset member"
				}
			}
			fromMember = true
			i++
		case collFold(a, "fromlonlat") && left >= 2 && flags&geoSearch != 0 && !fromMember:
			if q.shape.lon, q.shape.lat, errMsg = geoParseLonLat(args[i+1], args[i+2]); errMsg != "" {
				return q, errMsg
			}
			fromLonLat = true
			i += 2
		case collFold(a, "byradius") && left >= 2 && flags&geoSearch != 0 && !byBox:
			if q.shape.radius, q.shape.conv, errMsg = geoParseRadius(args[i+1], args[i+2]); errMsg != "" {
				return q, errMsg
			}
			q.shape.box = false
			byRadius = true
			i += 2
		case collFold(a, "bybox") && left >= 3 && flags&geoSearch != 0 && !byRadius:
			if q.shape.width, q.shape.height, q.shape.conv, errMsg = geoParseBox(args[i+1], args[i+2], args[i+3]); errMsg != "" {
				return q, errMsg
			}
			q.shape.box = true
			byBox = true
			i += 3
		default:
			return q, errSyntax
		}
	}
	storing := q.storeKey != nil || flags&geoSearchStore != 0
	if storing && (q.withDist || q.withHash || q.withCoords) {
		what := "STORE option in GEORADIUS"
		if flags&geoSearchStore != 0 {
			what = "GEOSEARCHSTORE"
		}
		return q, "ERR " + what + " is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
	}
	if flags&geoSearch != 0 && !fromMember && !fromLonLat {
		return q, "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + string(args[0])
	}
	if flags&geoSearch != 0 && !byRadius && !byBox {
		return q, "ERR exactly one of BYRADIUS and BYBOX can be specified for " + string(args[0])
	}
	if q.any && q.count == 0 {
		return q, "ERR the ANY argument requires COUNT argument"
	}
	return q, ""
}

// geoCollect is membersOfAllNeighbors: the points of z in sh, box after
// box in Redis's order, each box's in score order; with a limit, it
// stops once that many are found (ANY).
func geoCollect(z *zsetValue, sh *geoShape, limit int64) []geoPoint {
	boxes := sh.searchBoxes()
	var pts []geoPoint
	last := 0
	for i, h := range boxes {
		if h.zero() {
			continue
		}
		// Huge radii make neighbours coincide; Redis skips a box equal to
		// the last one searched (never comparing with the first).
		if last != 0 && h == boxes[last] {
			continue
		}
		if len(pts) > 0 && limit > 0 && int64(len(pts)) >= limit {
			break
		}
		pts = geoCollectBox(z, h, sh, limit, pts)
		last = i
	}
	return pts
}

// geoCollectBox is geoGetPointsInRange over one box's scores.
func geoCollectBox(z *zsetValue, h geoHash, sh *geoShape, limit int64, pts []geoPoint) []geoPoint {
	lo, hi := geoBoxScores(h)
	r := scoreRange{min: float64(lo), max: float64(hi), maxex: true}
	first, c, end := r.spanCursor(z)
	for i := first; i < end; i++ {
		if i > first {
			c.next()
		}
		en := c.entry()
		lon, lat, ok := geoDecodeScore(en.score)
		if ok {
			if d, in := sh.within(lon, lat); in {
				pts = append(pts, geoPoint{lon: lon, lat: lat, dist: d, score: en.score, member: en.member})
			}
		}
		if len(pts) > 0 && limit > 0 && int64(len(pts)) >= limit {
			break
		}
	}
	return pts
}

// geoSortPoints orders pts by distance as Redis does: all of them with
// glibc's qsort (a stable merge sort), or only the first n with Redis's
// pqsort when a COUNT cuts the result.
func geoSortPoints(pts []geoPoint, n, dir int) {
	if dir == 0 {
		return
	}
	cmp := func(a, b *geoPoint) int {
		switch {
		case a.dist > b.dist:
			return dir
		case a.dist == b.dist:
			return 0
		}
		return -dir
	}
	if n == len(pts) {
		slices.SortStableFunc(pts, func(a, b geoPoint) int { return cmp(&a, &b) })
		return
	}
	pqsort(pts, 0, n-1, cmp)
}

// geoStore writes a search's result to key: scores the geohashes, or the
// distances (STOREDIST) in the query's unit.
func (s *Store) geoStore(e *Env, dst []byte, key []byte, pts []geoPoint, storeDist bool, flags int) []byte {
	ents := make([]zentry, len(pts))
	for i, p := range pts {
		ents[i] = zentry{member: p.member, score: p.score}
		if storeDist {
			ents[i].score = p.dist
		}
	}
	slices.SortFunc(ents, func(a, b zentry) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return strings.Compare(a.member, b.member)
	})
	event := "georadiusstore"
	if flags&geoSearch != 0 {
		event = "geosearchstore"
	}
	return s.storeZSet(e, dst, key, ents, event)
}

// geoAppendPoints is the reply of a search: members, or arrays of the
// member and the options asked for.
func geoAppendPoints(dst []byte, pts []geoPoint, q geoQuery) []byte {
	opts := 0
	for _, w := range []bool{q.withDist, q.withHash, q.withCoords} {
		if w {
			opts++
		}
	}
	dst = resp.AppendArrayLen(dst, len(pts))
	for _, p := range pts {
		if opts > 0 {
			dst = resp.AppendArrayLen(dst, opts+1)
		}
		dst = resp.AppendBulkString(dst, p.member)
		if q.withDist {
			dst = geoAppendDistance(dst, p.dist)
		}
		if q.withHash {
			dst = resp.AppendInt(dst, int64(p.score))
		}
		if q.withCoords {
			dst = resp.AppendArrayLen(dst, 2)
			dst = geoAppendCoord(dst, p.lon)
			dst = geoAppendCoord(dst, p.lat)
		}
	}
	return dst
}

// pqsort is Redis's pqsort.c (a BSD quicksort that only sorts the parts
// holding ranks lrange..rrange): with equal distances, the order it leaves
// among them is Redis's, which a COUNT-limited reply shows.
func pqsort(a []geoPoint, lrange, rrange int, cmp func(a, b *geoPoint) int) {
	pqsortPart(a, 0, len(a), lrange, rrange, cmp)
}

func pqsortPart(a []geoPoint, lo, n, lrange, rrange int, cmp func(a, b *geoPoint) int) {
	swap := func(i, j int) { a[i], a[j] = a[j], a[i] }
	vecswap := func(i, j, k int) {
		for ; k > 0; k-- {
			swap(i, j)
			i++
			j++
		}
	}
	med3 := func(x, y, z int) int {
		if cmp(&a[x], &a[y]) < 0 {
			if cmp(&a[y], &a[z]) < 0 {
				return y
			}
			if cmp(&a[x], &a[z]) < 0 {
				return z
			}
			return x
		}
		if cmp(&a[y], &a[z]) > 0 {
			return y
		}
		if cmp(&a[x], &a[z]) < 0 {
			return x
		}
		return z
	}
	// outside: the part [from, from+k) holds none of the wanted ranks.
	outside := func(from, k int) bool {
		return (lrange < from && rrange < from) || (lrange >= from+k && rrange >= from+k)
	}
	for {
		if n < 7 {
			for pm := lo + 1; pm < lo+n; pm++ {
				for pl := pm; pl > lo && cmp(&a[pl-1], &a[pl]) > 0; pl-- {
					swap(pl, pl-1)
				}
			}
			return
		}
		pm := lo + n/2
		if n > 7 {
			pl, pn := lo, lo+n-1
			if n > 40 {
				d := n / 8
				pl = med3(pl, pl+d, pl+2*d)
				pm = med3(pm-d, pm, pm+d)
				pn = med3(pn-2*d, pn-d, pn)
			}
			pm = med3(pl, pm, pn)
		}
		swap(lo, pm)
		pa, pb := lo+1, lo+1
		pc, pd := lo+n-1, lo+n-1
		for {
			for pb <= pc {
				c := cmp(&a[pb], &a[lo])
				if c > 0 {
					break
				}
				if c == 0 {
					swap(pa, pb)
					pa++
				}
				pb++
			}
			for pb <= pc {
				c := cmp(&a[pc], &a[lo])
				if c < 0 {
					break
				}
				if c == 0 {
					swap(pc, pd)
					pd--
				}
				pc--
			}
			if pb > pc {
				break
			}
			swap(pb, pc)
			pb++
			pc--
		}
		pn := lo + n
		r := min(pa-lo, pb-pa)
		vecswap(lo, pb-r, r)
		r = min(pd-pc, pn-pd-1)
		vecswap(pb, pn-r, r)
		if r = pb - pa; r > 1 && !outside(lo, r) {
			pqsortPart(a, lo, r, lrange, rrange, cmp)
		}
		r = pd - pc
		if r <= 1 || outside(pn-r, r) {
			return
		}
		lo, n = pn-r, r
	}
}
