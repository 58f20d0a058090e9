package store

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bigSeries is the Taylor series of sin (first 1) or cos (first 0) at x
// in 256-bit floats: the reference the double-double results must round
// to.
func bigSeries(x float64, first int) *big.Float {
	return bigSeriesAt(new(big.Float).SetPrec(256).SetFloat64(x), first)
}

func bigSeriesAt(bx *big.Float, first int) *big.Float {
	const prec = 256
	x2 := new(big.Float).SetPrec(prec).Mul(bx, bx)
	term := new(big.Float).SetPrec(prec).SetFloat64(1)
	if first == 1 {
		term.Set(bx)
	}
	sum := new(big.Float).SetPrec(prec).Set(term)
	for n := first + 1; n < 120; n += 2 {
		term.Mul(term, x2)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(int64(-n*(n+1))))
		sum.Add(sum, term)
	}
	return sum
}

// TestGeoTrigCorrectlyRounded: geoSin and geoCos are the nearest
// float64 to the true values, and geoAsin's result y is within half an
// ulp of the true arcsine (sin(y - ulp/2) <= a <= sin(y + ulp/2)).
func TestGeoTrigCorrectlyRounded(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 3000 {
		x := (r.Float64()*2 - 1) * math.Pi
		if i%3 == 0 {
			x *= 1e-5
		}
		if want, _ := bigSeries(x, 1).Float64(); geoSin(x) != want {
			t.Fatalf("sin(%v) = %v, want %v", x, geoSin(x), want)
		}
		if want, _ := bigSeries(x, 0).Float64(); geoCos(x) != want {
			t.Fatalf("cos(%v) = %v, want %v", x, geoCos(x), want)
		}
		a := r.Float64()
		if i%5 == 0 {
			a = 1 - a*1e-9
		}
		y := geoAsin(a)
		half := new(big.Float).SetPrec(256).SetFloat64((math.Nextafter(y, 2) - y) / 2)
		by := new(big.Float).SetPrec(256).SetFloat64(y)
		lo := bigSeriesAt(new(big.Float).SetPrec(256).Sub(by, half), 1)
		hi := bigSeriesAt(new(big.Float).SetPrec(256).Add(by, half), 1)
		ba := new(big.Float).SetPrec(256).SetFloat64(a)
		if ba.Cmp(lo) < 0 || ba.Cmp(hi) > 0 {
			t.Fatalf("asin(%v) = %v: not within half an ulp", a, y)
		}
	}
}
