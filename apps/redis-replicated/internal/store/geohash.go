package store

import "math"

// Geohashes as Redis 7.0 computes them (geohash.c, geohash_helper.c): a
// point is a 52-bit integer, 26 bits of latitude and 26 of longitude
// interleaved (latitude in the even bits), each the point's offset in
// Redis's Web Mercator ranges; the sorted set keeps it as the score.
// Every computation below follows Redis's order of operations in float64,
// so scores, coordinates and distances come out bit for bit the same
// (the trigonometry aside: Go's math package, not glibc's libm, which
// may differ in the last bit; see doc.go).

const (
	geoStepMax = 26 // 26*2 = 52 bits
	geoLatMin  = -85.05112878
	geoLatMax  = 85.05112878
	geoLonMin  = -180.0
	geoLonMax  = 180.0
	// geoEarthRadius is Redis's EARTH_RADIUS_IN_METERS.
	geoEarthRadius = 6372797.560856
	// geoMercatorMax bounds geohashEstimateStepsByRadius's doubling.
	geoMercatorMax = 20037726.37
)

// geoPi is a variable so that geoDegRad is computed as C computes
// M_PI / 180.0 (a float64 division), not as Go's exact constants would.
var geoPi = math.Pi

// geoDegRad is Redis's D_R.
var geoDegRad = geoPi / 180.0

type geoRange struct{ min, max float64 }

var (
	geoLonRange = geoRange{geoLonMin, geoLonMax}
	geoLatRange = geoRange{geoLatMin, geoLatMax}
	// geoStdLatRange is the standard geohash's, for GEOHASH's strings.
	geoStdLatRange = geoRange{-90, 90}
)

// geoHash is a geohash of step bits per coordinate; the zero value (no
// bits, step 0) is Redis's "zeroed" neighbour, which is skipped.
type geoHash struct {
	bits uint64
	step uint
}

func (h geoHash) zero() bool { return h.bits == 0 && h.step == 0 }

// geoArea is the box a geohash stands for.
type geoArea struct{ lon, lat geoRange }

// geoInterleave puts x's bits in the even positions and y's in the odd.
func geoInterleave(x32, y32 uint32) uint64 {
	spread := func(v uint64) uint64 {
		v = (v | v<<16) & 0x0000FFFF0000FFFF
		v = (v | v<<8) & 0x00FF00FF00FF00FF
		v = (v | v<<4) & 0x0F0F0F0F0F0F0F0F
		v = (v | v<<2) & 0x3333333333333333
		return (v | v<<1) & 0x5555555555555555
	}
	return spread(uint64(x32)) | spread(uint64(y32))<<1
}

// geoDeinterleave undoes geoInterleave: the even bits in the low word,
// the odd bits in the high word.
func geoDeinterleave(v uint64) uint64 {
	squash := func(v uint64) uint64 {
		v &= 0x5555555555555555
		v = (v | v>>1) & 0x3333333333333333
		v = (v | v>>2) & 0x0F0F0F0F0F0F0F0F
		v = (v | v>>4) & 0x00FF00FF00FF00FF
		v = (v | v>>8) & 0x0000FFFF0000FFFF
		return (v | v>>16) & 0x00000000FFFFFFFF
	}
	return squash(v) | squash(v>>1)<<32
}

// geoEncode is geohashEncode: false outside Redis's limits or the ranges.
func geoEncode(lonR, latR geoRange, lon, lat float64, step uint) (geoHash, bool) {
	if lon > geoLonMax || lon < geoLonMin || lat > geoLatMax || lat < geoLatMin {
		return geoHash{}, false
	}
	if lat < latR.min || lat > latR.max || lon < lonR.min || lon > lonR.max {
		return geoHash{step: step}, false
	}
	latOff := (lat - latR.min) / (latR.max - latR.min)
	lonOff := (lon - lonR.min) / (lonR.max - lonR.min)
	latOff *= float64(uint64(1) << step)
	lonOff *= float64(uint64(1) << step)
	return geoHash{bits: geoInterleave(uint32(latOff), uint32(lonOff)), step: step}, true
}

// geoDecode is geohashDecode: the box of h.
func geoDecode(lonR, latR geoRange, h geoHash) (geoArea, bool) {
	if h.zero() {
		return geoArea{}, false
	}
	sep := geoDeinterleave(h.bits)
	latScale := latR.max - latR.min
	lonScale := lonR.max - lonR.min
	ilat, ilon := uint32(sep), uint32(sep>>32)
	div := float64(uint64(1) << h.step)
	// float64(...) around each product: no fused multiply-add, as in C
	// on x86-64, on any architecture.
	var a geoArea
	a.lat.min = latR.min + float64((float64(ilat)*1.0/div)*latScale)
	a.lat.max = latR.min + float64((float64(ilat+1)*1.0/div)*latScale)
	a.lon.min = lonR.min + float64((float64(ilon)*1.0/div)*lonScale)
	a.lon.max = lonR.min + float64((float64(ilon+1)*1.0/div)*lonScale)
	return a, true
}

// center is geohashDecodeAreaToLongLat: the box's middle, clamped.
func (a geoArea) center() (lon, lat float64) {
	lon = (a.lon.min + a.lon.max) / 2
	lon = min(max(lon, geoLonMin), geoLonMax)
	lat = (a.lat.min + a.lat.max) / 2
	lat = min(max(lat, geoLatMin), geoLatMax)
	return lon, lat
}

// geoScore is the sorted-set score of a point (already range-checked).
func geoScore(lon, lat float64) uint64 {
	h, _ := geoEncode(geoLonRange, geoLatRange, lon, lat, geoStepMax)
	return h.bits << (52 - 2*h.step)
}

// geoDecodeScore is decodeGeohash: the point a score stands for.
func geoDecodeScore(score float64) (lon, lat float64, ok bool) {
	a, ok := geoDecode(geoLonRange, geoLatRange, geoHash{bits: geoScoreBits(score), step: geoStepMax})
	if !ok {
		return 0, 0, false
	}
	lon, lat = a.center()
	return lon, lat, true
}

// geoScoreBits converts a score to an integer as C's (uint64_t) cast does
// on x86-64 for the values a sorted set may hold: truncation within
// range; a negative or too large one (never a geo score) gives what the
// hardware conversion gives.
func geoScoreBits(score float64) uint64 {
	switch {
	case score >= 0 && score < 1<<63:
		return uint64(score)
	case score >= 1<<63 && score < 1<<64:
		return uint64(score-(1<<63)) ^ 1<<63
	case score >= 1<<64:
		return 0 // the subtraction's conversion overflows to 1<<63, then the xor
	case score < 0 && score > -(1<<63):
		return uint64(int64(score))
	}
	return 1 << 63
}

// geoMove shifts h by one box along the odd (lon) or even (lat) bits, as
// geohash_move_x and geohash_move_y do, wrapping around.
func geoMove(h geoHash, d int, lonBits bool) geoHash {
	if d == 0 {
		return h
	}
	moving, keep := uint64(0xaaaaaaaaaaaaaaaa), uint64(0x5555555555555555)
	if !lonBits {
		moving, keep = keep, moving
	}
	x := h.bits & moving
	y := h.bits & keep
	zz := keep >> (64 - h.step*2)
	if d > 0 {
		x += zz + 1
	} else {
		x |= zz
		x -= zz + 1
	}
	x &= moving >> (64 - h.step*2)
	h.bits = x | y
	return h
}

// geoNeighbours are the eight boxes around one, in the order Redis
// searches them after the box itself.
type geoNeighbours struct {
	north, south, east, west                   geoHash
	northEast, northWest, southEast, southWest geoHash
}

func geoNeighboursOf(h geoHash) geoNeighbours {
	at := func(dx, dy int) geoHash { return geoMove(geoMove(h, dx, true), dy, false) }
	return geoNeighbours{
		east: at(1, 0), west: at(-1, 0), south: at(0, -1), north: at(0, 1),
		northWest: at(-1, 1), northEast: at(1, 1), southEast: at(1, -1), southWest: at(-1, -1),
	}
}

// geoEstimateSteps is geohashEstimateStepsByRadius.
func geoEstimateSteps(rangeMeters, lat float64) uint {
	if rangeMeters == 0 {
		return 26
	}
	step := 1
	for rangeMeters < geoMercatorMax {
		rangeMeters *= 2
		step++
	}
	step -= 2
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	return uint(min(max(step, 1), 26))
}

func geoDegToRad(a float64) float64 { return a * geoDegRad }
func geoRadToDeg(a float64) float64 { return a / geoDegRad }

// geoLatDistance is geohashGetLatDistance.
func geoLatDistance(lat1, lat2 float64) float64 {
	return geoEarthRadius * math.Abs(geoDegToRad(lat2)-geoDegToRad(lat1))
}

// geoDistance is geohashGetDistance: haversine on Redis's sphere.
func geoDistance(lon1, lat1, lon2, lat2 float64) float64 {
	return geoHaversine(lon1, lat1, lon2, lat2, geoSin, geoCos, geoAsin)
}

// geoHaversine is geohashGetDistance's formula with the given sine,
// cosine and arcsine.
func geoHaversine(lon1, lat1, lon2, lat2 float64, sin, cos, asin func(float64) float64) float64 {
	lon1r, lon2r := geoDegToRad(lon1), geoDegToRad(lon2)
	v := sin((lon2r - lon1r) / 2)
	if v == 0 {
		return geoLatDistance(lat1, lat2)
	}
	lat1r, lat2r := geoDegToRad(lat1), geoDegToRad(lat2)
	u := sin((lat2r - lat1r) / 2)
	// Explicit float64 conversions keep the compiler from fusing the
	// multiply-adds, which C does not either.
	a := float64(u*u) + float64(float64(cos(lat1r)*cos(lat2r))*v)*v
	return 2.0 * geoEarthRadius * asin(math.Sqrt(a))
}

// geoSurelyFarther reports that the distance is more than limit meters
// by a margin no rounding of the trigonometry can cross, from a cheap
// estimate with Go's own functions: most points of a search's boxes are
// refused without the exact (and slower) computation.
func geoSurelyFarther(lon1, lat1, lon2, lat2, limit float64) bool {
	d := geoHaversine(lon1, lat1, lon2, lat2, math.Sin, math.Cos, math.Asin)
	// Near the antipode the arcsine's slope magnifies errors: no estimate.
	return d < 0.99*math.Pi*geoEarthRadius && d > limit*(1+1e-9)+1e-9
}

// geoShape is a search area: a circle of radius or a box of width and
// height (in the unit of conv meters) around lon, lat.
type geoShape struct {
	box                   bool
	lon, lat              float64
	radius, width, height float64
	conv                  float64
}

// within is geoWithinShape for a decoded point: its distance to the
// centre, in meters, and whether it lies in the shape.
func (sh *geoShape) within(lon, lat float64) (float64, bool) {
	if !sh.box {
		radius := sh.radius * sh.conv
		if geoSurelyFarther(sh.lon, sh.lat, lon, lat, radius) {
			return 0, false
		}
		d := geoDistance(sh.lon, sh.lat, lon, lat)
		return d, d <= radius
	}
	widthM, heightM := sh.width*sh.conv, sh.height*sh.conv
	if geoLatDistance(lat, sh.lat) > heightM/2 {
		return 0, false
	}
	if geoSurelyFarther(lon, lat, sh.lon, lat, widthM/2) || geoDistance(lon, lat, sh.lon, lat) > widthM/2 {
		return 0, false
	}
	return geoDistance(sh.lon, sh.lat, lon, lat), true
}

// bounds is geohashBoundingBox: min lon, min lat, max lon, max lat.
func (sh *geoShape) bounds() [4]float64 {
	height, width := sh.conv*sh.radius, sh.conv*sh.radius
	if sh.box {
		height, width = sh.conv*(sh.height/2), sh.conv*(sh.width/2)
	}
	latDelta := geoRadToDeg(height / geoEarthRadius)
	lonDeltaTop := geoRadToDeg(width / geoEarthRadius / geoCos(geoDegToRad(sh.lat+latDelta)))
	lonDeltaBottom := geoRadToDeg(width / geoEarthRadius / geoCos(geoDegToRad(sh.lat-latDelta)))
	delta := lonDeltaTop
	if sh.lat < 0 {
		delta = lonDeltaBottom
	}
	return [4]float64{sh.lon - delta, sh.lat - latDelta, sh.lon + delta, sh.lat + latDelta}
}

// searchBoxes is geohashCalculateAreasByShapeWGS84: the box holding the
// centre and its neighbours, at a step where they cover the shape, the
// useless ones zeroed; in Redis's search order.
func (sh *geoShape) searchBoxes() [9]geoHash {
	b := sh.bounds()
	minLon, minLat, maxLon, maxLat := b[0], b[1], b[2], b[3]
	radius := sh.radius
	if sh.box {
		radius = math.Sqrt(float64((sh.width/2)*(sh.width/2)) + float64((sh.height/2)*(sh.height/2)))
	}
	radius *= sh.conv
	steps := geoEstimateSteps(radius, sh.lat)
	hash, _ := geoEncode(geoLonRange, geoLatRange, sh.lon, sh.lat, steps)
	nb := geoNeighboursOf(hash)
	area, _ := geoDecode(geoLonRange, geoLatRange, hash)

	// A centre near its box's edge may need a coarser step for the
	// neighbours to cover the shape.
	north, _ := geoDecode(geoLonRange, geoLatRange, nb.north)
	south, _ := geoDecode(geoLonRange, geoLatRange, nb.south)
	east, _ := geoDecode(geoLonRange, geoLatRange, nb.east)
	west, _ := geoDecode(geoLonRange, geoLatRange, nb.west)
	decrease := north.lat.max < maxLat || south.lat.min > minLat || east.lon.max < maxLon || west.lon.min > minLon
	if steps > 1 && decrease {
		steps--
		hash, _ = geoEncode(geoLonRange, geoLatRange, sh.lon, sh.lat, steps)
		nb = geoNeighboursOf(hash)
		area, _ = geoDecode(geoLonRange, geoLatRange, hash)
	}
	if steps >= 2 {
		if area.lat.min < minLat {
			nb.south, nb.southWest, nb.southEast = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lat.max > maxLat {
			nb.north, nb.northEast, nb.northWest = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lon.min < minLon {
			nb.west, nb.southWest, nb.northWest = geoHash{}, geoHash{}, geoHash{}
		}
		if area.lon.max > maxLon {
			nb.east, nb.southEast, nb.northEast = geoHash{}, geoHash{}, geoHash{}
		}
	}
	return [9]geoHash{hash, nb.north, nb.south, nb.east, nb.west, nb.northEast, nb.northWest, nb.southEast, nb.southWest}
}

// geoBoxScores is scoresOfGeoHashBox: the scores [min, max) of h's box.
func geoBoxScores(h geoHash) (lo, hi uint64) {
	shift := 52 - 2*h.step
	return h.bits << shift, (h.bits + 1) << shift
}
