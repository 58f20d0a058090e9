package store

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
)

// parseFloatFast parses the common form of a decimal number, [+-]digits
// [.digits][(e|E)[+-]digits] with at most 19 significant digits and a
// normal result, correctly rounded as strconv.ParseFloat does, several
// times faster (sorted-set scores are parsed on every ZADD). ok is false
// for anything else (other forms, more digits, a decimal exponent out of
// the table, a result that would be subnormal or overflow, or a product
// too close to halfway between two doubles to decide cheaply): the caller
// then parses with strtod. It never accepts what strtod rejects.
func parseFloatFast(b []byte) (f float64, ok bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, i = b[0] == '-', 1
	}
	// w: the significant digits; q: the decimal exponent of w's last.
	w, sig, n := scanDigits(b[i:], 0, 0)
	i += n
	digits, q := n, 0
	if i < len(b) && b[i] == '.' {
		i++
		w, sig, n = scanDigits(b[i:], w, sig)
		i += n
		digits += n
		q -= n
	}
	if sig > 19 {
		return 0, false // w has overflowed, or may round
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(b) {
		e, ok := parseExponent(b[i:])
		if !ok {
			return 0, false
		}
		q += e
	}
	if w == 0 {
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	if f, ok = decimalToFloat(w, q); ok && neg {
		f = -f
	}
	return f, ok
}

// scanDigits reads the leading ASCII digits of b into w (already holding
// sig significant digits): it returns the new w and count of significant
// digits (leading zeros are not; past 19, w has wrapped) and how many
// bytes it read. Eight digits at a time while it can: scores have many.
func scanDigits(b []byte, w uint64, sig int) (uint64, int, int) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if !eightDigits(x) {
			break
		}
		if w == 0 {
			// The digits after the leading zeros (the low bytes) count.
			sig += 8 - bits.TrailingZeros64(x-0x3030303030303030)/8
		} else {
			sig += 8
		}
		w = w*100000000 + eightDigitsValue(x)
	}
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		if w != 0 || c != 0 {
			sig++
		}
		w = w*10 + uint64(c)
	}
	return w, sig, i
}

// eightDigits reports whether the 8 bytes of x (read little-endian) are
// all ASCII digits: no byte is below '0' (x - '0'… borrows into no top
// bit) nor above '9' (adding 0x46 reaches no top bit).
func eightDigits(x uint64) bool {
	return ((x+0x4646464646464646)|(x-0x3030303030303030))&0x8080808080808080 == 0
}

// eightDigitsValue is the number that 8 ASCII digits read little-endian
// into x write (the first digit is the low byte): pairs, then quads, then
// the whole, combined by multiplications.
func eightDigitsValue(x uint64) uint64 {
	x -= 0x3030303030303030
	x = x*10 + x>>8 // each low byte of a pair: its two digits' value
	const pairs = 0x000000FF000000FF
	// The 4 pairs: (p0·100 + p1)·10⁴ + p2·100 + p3 lands in the top half.
	x = ((x&pairs)*(100+1000000<<32) + (x>>16&pairs)*(1+10000<<32)) >> 32
	return x
}

// parseExponent parses (e|E)[+-]digits, all of b, up to a magnitude that
// no table covers.
func parseExponent(b []byte) (int, bool) {
	if b[0] != 'e' && b[0] != 'E' {
		return 0, false
	}
	b = b[1:]
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 || len(b) > 4 {
		return 0, false
	}
	e := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		e = e*10 + int(c-'0')
	}
	if neg {
		e = -e
	}
	return e, true
}

// exactPow10 are the powers of ten a double holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// decimalToFloat is the double nearest w·10^q (w > 0), or ok false when
// it cannot tell cheaply.
func decimalToFloat(w uint64, q int) (float64, bool) {
	// Both w and 10^|q| exact: one correctly rounded operation.
	if w <= 1<<53 && -22 <= q && q <= 22 {
		if q < 0 {
			return float64(w) / exactPow10[-q], true
		}
		return float64(w) * exactPow10[q], true
	}
	// Otherwise Lemire's method: the top bits of w (normalized) times a
	// 128-bit truncation of 10^q, with the cases where the truncations
	// could change the rounding left to the slow path.
	if q < pow10Min || q > pow10Max {
		return 0, false
	}
	p := &pow10Table[q-pow10Min]
	l := bits.LeadingZeros64(w)
	w <<= l
	hi, lo := bits.Mul64(w, p.hi)
	if hi&0x1ff == 0x1ff && lo+w < lo {
		// The product with the low word might carry into the bits kept.
		h2, _ := bits.Mul64(w, p.lo)
		var c uint64
		lo, c = bits.Add64(lo, h2, 0)
		hi += c
		if hi&0x1ff == 0x1ff && lo == math.MaxUint64 {
			return 0, false
		}
	}
	top := hi >> 63
	m := hi >> (top + 9) // 53 bits and a rounding bit
	if lo == 0 && hi&0x1ff == 0 && m&3 == 1 {
		return 0, false // maybe exactly halfway: ties go to even
	}
	m = (m + m&1) >> 1
	e := int(top) + 10 + 128 + p.exp - l
	if m == 1<<53 {
		m >>= 1
		e++
	}
	biased := e + 52 + 1023
	if biased < 1 || biased > 2046 {
		return 0, false
	}
	return math.Float64frombits(uint64(biased)<<52 | m&(1<<52-1)), true
}

// pow10Entry is 10^q ≈ (hi·2^64 + lo)·2^exp, hi's top bit set, truncated.
type pow10Entry struct {
	hi, lo uint64
	exp    int
}

const pow10Min, pow10Max = -64, 64

var pow10Table = func() (t [pow10Max - pow10Min + 1]pow10Entry) {
	ten := big.NewInt(10)
	for q := pow10Min; q <= pow10Max; q++ {
		var m big.Int
		exp := 0
		if q >= 0 {
			m.Exp(ten, big.NewInt(int64(q)), nil)
			exp = m.BitLen() - 128
			if exp < 0 {
				m.Lsh(&m, uint(-exp))
			} else {
				m.Rsh(&m, uint(exp))
			}
		} else {
			var d big.Int
			d.Exp(ten, big.NewInt(int64(-q)), nil)
			s := 127 + d.BitLen()
			m.Lsh(big.NewInt(1), uint(s))
			m.Quo(&m, &d)
			exp = -s
		}
		var lo big.Int
		lo.And(&m, new(big.Int).SetUint64(math.MaxUint64))
		t[q-pow10Min] = pow10Entry{hi: new(big.Int).Rsh(&m, 64).Uint64(), lo: lo.Uint64(), exp: exp}
	}
	return t
}()
