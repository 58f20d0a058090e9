package store

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestParseFloatFast checks parseFloatFast against strconv.ParseFloat on
// fixed cases and a million random decimal texts: where it answers, it
// answers strconv's double, bit for bit, and only for text strconv reads
// without error; and it answers for most of the common forms.
func TestParseFloatFast(t *testing.T) {
	check := func(s string) bool {
		t.Helper()
		f, ok := parseFloatFast([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok {
			return false
		}
		if err != nil || math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("parseFloatFast(%q) = %v (%x), strconv: %v (%x) %v", s, f, math.Float64bits(f), want, math.Float64bits(want), err)
		}
		return true
	}
	for _, c := range []struct {
		s    string
		fast bool
	}{
		{"0", true}, {"-0", true}, {"+0", true}, {"0.0", true}, {"0e5", true}, {"1", true}, {"-1.5", true},
		{".5", true}, {"5.", true}, {"5.e3", true}, {"-.5", true}, {"+.5e-1", true}, {"00.00e00", true}, {"1e10", true}, {"1E-10", true}, {"1e+3", true},
		{"0.1", true}, {"123456.78901234567", true}, {"9007199254740993", false}, {"9007199254740994", true}, {"1.7976931348623157e308", false},
		{"", false}, {".", false}, {"-", false}, {"e5", false}, {"1e", false}, {"1e+", false}, {"1.2.3", false},
		{"inf", false}, {"-inf", false}, {"nan", false}, {"0x10", false}, {"1_0", false}, {" 1", false}, {"1 ", false},
		{"12345678901234567890", false}, {"1e99999", false}, {"4.9e-324", false}, {"1e400", false},
	} {
		if got := check(c.s); got != c.fast {
			t.Errorf("parseFloatFast(%q): fast %v, want %v", c.s, got, c.fast)
		}
	}
	r := rand.New(rand.NewPCG(3, 3))
	fast := 0
	const n = 1000000
	for i := range n {
		var s string
		switch i % 3 {
		case 0: // as the benchmarks and clients write scores
			s = strconv.FormatFloat(r.Float64()*math.Pow(10, float64(r.IntN(40)-20)), 'g', -1, 64)
		case 1: // digits, a point, an exponent
			var sb strings.Builder
			if r.IntN(2) == 0 {
				sb.WriteByte('-')
			}
			nd := 1 + r.IntN(20)
			dot := r.IntN(nd + 1)
			for j := range nd {
				if j == dot {
					sb.WriteByte('.')
				}
				sb.WriteByte(byte('0' + r.IntN(10)))
			}
			if dot == nd {
				sb.WriteByte('.')
			}
			if r.IntN(2) == 0 {
				sb.WriteString("e" + strconv.Itoa(r.IntN(160)-80))
			}
			s = sb.String()
		default: // near halfway between doubles: 17 to 19 digits
			s = strconv.FormatUint(r.Uint64()%10000000000000000000, 10) + "e" + strconv.Itoa(r.IntN(60)-40)
		}
		if check(s) {
			fast++
		}
	}
	if fast < n*9/10 {
		t.Errorf("fast path took %d of %d", fast, n)
	}
}
