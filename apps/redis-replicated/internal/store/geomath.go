package store

import "math"

// Correctly rounded sine, cosine and arcsine for the geo distances.
//
// Redis computes its haversine with glibc's libm, whose sin, cos and asin
// are accurate to about half an ulp: all but rarely the correctly rounded
// result. Go's math package is off by an ulp often enough that a
// STOREDIST score (a distance kept to its last bit) would differ from
// Redis's in most searches. So the geo code evaluates them in
// double-double arithmetic (about 106 bits) and rounds once: the
// correctly rounded value, which is glibc's whenever glibc's is.

// dd is an unevaluated sum hi + lo, |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

func (x dd) add(y dd) dd {
	s := twoSum(x.hi, y.hi)
	t := twoSum(x.lo, y.lo)
	s = quickTwoSum(s.hi, s.lo+t.hi)
	return quickTwoSum(s.hi, s.lo+t.lo)
}

func (x dd) neg() dd { return dd{-x.hi, -x.lo} }

func (x dd) mul(y dd) dd {
	p := twoProd(x.hi, y.hi)
	// The conversions forbid fused multiply-adds (arm64 and others):
	// every replica must round alike.
	return quickTwoSum(p.hi, p.lo+float64(float64(x.hi*y.lo)+float64(x.lo*y.hi)))
}

// div is x / y by long division: three quotient digits.
func (x dd) div(y dd) dd {
	q1 := x.hi / y.hi
	r := x.add(y.mul(dd{q1, 0}).neg())
	q2 := r.hi / y.hi
	r = r.add(y.mul(dd{q2, 0}).neg())
	q3 := r.hi / y.hi
	return quickTwoSum(q1, q2).add(dd{q3, 0})
}

// ddSeries sums the Taylor series of sin (first 1: x - x^3/3! + ...) or
// cos (first 0: 1 - x^2/2! + ...) until its terms vanish next to the sum.
func ddSeries(x dd, first int) dd {
	x2 := x.mul(x)
	term := dd{1, 0}
	if first == 1 {
		term = x
	}
	sum := term
	for n := first + 1; n+1 < len(ddRecip); n += 2 {
		term = term.mul(x2).mul(ddRecip[n]).neg()
		sum = sum.add(term)
		if term.hi == 0 || math.Abs(term.hi) < 1e-36*math.Abs(sum.hi) {
			break
		}
	}
	return sum
}

// The sine and cosine are found from a table at multiples of 1/64 and
// short series for the remainder: sin(a+r) = sin a cos r + cos a sin r.
const ddTableStep = 64

var (
	// ddRecip[n] is 1/(n(n+1)), the ratio of consecutive series terms.
	ddRecip [80]dd
	// ddSinTab[k] and ddCosTab[k] are sin and cos of k/64, k/64 <= 4.
	ddSinTab, ddCosTab [4*ddTableStep + 2]dd
)

func init() {
	for n := 1; n < len(ddRecip); n++ {
		ddRecip[n] = dd{1, 0}.div(dd{float64(n * (n + 1)), 0})
	}
	for k := range ddSinTab {
		a := dd{float64(k) / ddTableStep, 0}
		ddSinTab[k], ddCosTab[k] = ddSeries(a, 1), ddSeries(a, 0)
	}
}

// ddSinCos is sin and cos of x, 0 <= x <= 4.
func ddSinCos(x float64) (sin, cos dd) {
	k := int(x*ddTableStep + 0.5)
	r := x - float64(k)/ddTableStep // exact: x is within 1/128 of k/64
	sr, cr := ddSeries(dd{r, 0}, 1), ddSeries(dd{r, 0}, 0)
	sa, ca := ddSinTab[k], ddCosTab[k]
	return sa.mul(cr).add(ca.mul(sr)), ca.mul(cr).add(sa.mul(sr).neg())
}

func geoSin(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.Abs(x) > 4 {
		return math.Sin(x)
	}
	s, _ := ddSinCos(math.Abs(x))
	return math.Copysign(s.hi, x)
}

func geoCos(x float64) float64 {
	if math.IsNaN(x) || math.Abs(x) > 4 {
		return math.Cos(x)
	}
	_, c := ddSinCos(math.Abs(x))
	return c.hi
}

// geoAsin refines Go's arcsine by Newton steps on sin y = a: the sine in
// double-double, its slope (the cosine) in float64, which is plenty for
// a correction of an ulp or two; a second step next to 1, where the
// slope is steep.
func geoAsin(a float64) float64 {
	if a == 0 || math.IsNaN(a) || a < -1 || a > 1 {
		return math.Asin(a)
	}
	if a == 1 || a == -1 {
		return math.Copysign(math.Pi/2, a)
	}
	y0 := math.Asin(math.Abs(a))
	s, _ := ddSinCos(y0)
	y := dd{y0, 0}.add(s.add(dd{-math.Abs(a), 0}).div(dd{math.Cos(y0), 0}).neg())
	if math.Abs(a) > 0.99 {
		s = ddSeries(y, 1)
		y = y.add(s.add(dd{-math.Abs(a), 0}).div(dd{math.Cos(y.hi), 0}).neg())
	}
	return math.Copysign(y.hi, a)
}
