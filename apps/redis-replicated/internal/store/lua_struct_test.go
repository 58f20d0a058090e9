package store

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestStructDifferential(t *testing.T) {
	var steps []step
	for _, call := range []string{
		// integers of every size, both orders, signed and not
		"'b', -1", "'B', 255", "'b', 127", "'b', 128", "'B', 256", "'B', -1", "'h', -2", "'>h', -2", "'<H', 65535",
		"'i', 1", "'>i', -100000", "'I', 2^32-1", "'l', -1", "'>L', 2^64-1", "'L', 2^63", "'L', 2^64", "'L', 2^70",
		"'l', -2^63", "'l', -2^64", "'l', 2^63", "'T', 12345", "'>T', 1", "'i1', 300", "'i3', -2", "'>i3', 70000",
		"'i8', -3", "'i9', -3", "'>i12', -3", "'I16', 2^60", "'i32', -1", "'i0', 5", "'i', 1.9", "'i', -1.9",
		"'i', 0/0", "'L', 0/0", "'l', 1/0", "'L', -1/0", "'B', '42'", "'B', ' 0x10 '", "'i', 'x'", "'i'",
		// floats
		"'f', 1.5", "'>f', -0.1", "'d', 0.1", "'>d', 1/0", "'d', -0.0", "'f', 1e300", "'f', 0/0",
		// strings
		"'c3', 'abc'", "'c3', 'abcdef'", "'c3', 'ab'", "'c0', 'hello'", "'c', 'xyz'", "'s', 'hi'", "'s', 'a\\0b'",
		"'c2c0s', 'ab', 'cd', 'ef'", "'c', 5", "'s', 12.5", "'s', {}", "'s'",
		// padding and alignment
		"'x'", "'xxb', 1", "'!bi', 1, 2", "'!4bd', 1, 2", "'!2bhbi', 1, 2, 3, 4", "'!8bl', 1, 2", "'!bi3', 1, 2",
		"'!1bi', 1, 2", "'! b i', 1, 2", "'!16bd', 1, 2", "'!3bi', 1, 2", "'!0b', 1", "'<>!b', 1", "'bc3i', 1, 'xyz', 2",
		"' < b > h ', 1, 2", "'!4 bxi', 1, 2",
		// errors
		"'z', 1", "'b3', 1", "'i33', 1", "'i99999999999', 1", "'!99999999999', 1", "'', 1", "'>', 1", "'%'",
		"5", "{}",
	} {
		steps = append(steps, luaEval("return try(function() return hex(struct.pack("+call+")) end)"))
	}
	for _, c := range []struct{ call, data string }{
		{"'b'", "\xff"}, {"'B'", "\xff"}, {"'h'", "\xfe\xff"}, {"'>h'", "\xfe\xff"}, {"'<H'", "\xfe\xff"}, {"'i'", "\x01\x02\x03\x04"},
		{"'>I'", "\x81\x02\x03\x04"}, {"'l'", "\xff\xff\xff\xff\xff\xff\xff\xff"}, {"'L'", "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{"'T'", "\x01\x00\x00\x00\x00\x00\x00\x80"}, {"'i3'", "\xff\xff\xff"}, {"'I3'", "\xff\xff\xff"}, {"'>i3'", "\x80\x00\x00"},
		{"'i9'", "\x01\x02\x03\x04\x05\x06\x07\x08\xff"}, {"'i9'", "\xff\x02\x03\x04\x05\x06\x07\x08\x01"},
		{"'I12'", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"}, {"'>i16'", strings.Repeat("\xff", 16)},
		{"'i0'", ""}, {"'i0i'", "\x05\x00\x00\x00"},
		{"'f'", "\x00\x00\xc0\x3f"}, {"'>f'", "\x3f\xc0\x00\x00"}, {"'d'", "\x9a\x99\x99\x99\x99\x99\xb9\x3f"},
		{"'>d'", "\x7f\xf0\x00\x00\x00\x00\x00\x00"}, {"'f'", "\x00\x00\xc0\x7f"},
		{"'c3'", "abcdef"}, {"'c3c3'", "abcdef"}, {"'bc0'", "\x03abcdef"}, {"'c1c0'", "3abcdef"}, {"'c1c0'", "xabcdef"},
		{"'c0'", "abc"}, {"'bc0'", "\x09abc"}, {"'bc0'", "\xffabc"}, {"'s'", "ab\x00cd"}, {"'ss'", "ab\x00cd\x00"},
		{"'s'", "abcd"}, {"'xb'", "\x01\x02"}, {"'!bi'", "\x01\x00\x00\x00\x02\x00\x00\x00"}, {"'!bi'", "\x01\x00\x00\x00\x02\x00\x00"},
		{"'!2bh'", "\x01\x00\x02\x00"}, {"'!bi3'", "\x01\x00\x00\x02\x00\x00"}, {"'b', ARGV[1], 2", "\x01\x02"},
		{"'b', ARGV[1], 3", "\x01\x02"}, {"'', ARGV[1], 3", "\x01\x02"}, {"'', ARGV[1], 7", "\x01\x02"},
		{"'b', ARGV[1], 0", "\x01\x02"}, {"'b', ARGV[1], -1", "\x01\x02"}, {"'', ARGV[1], -5", "\x01\x02"},
		{"'b', ARGV[1], '2'", "\x01\x02"}, {"'b', ARGV[1], 1.9", "\x01\x02"}, {"'b', ARGV[1], 'x'", "\x01\x02"},
		{"'z'", "abc"}, {"'i40'", "abc"}, {"'b'", ""}, {"'bbb'", "\x01\x02"}, {"'b', 5", ""}, {"'b', nil", ""},
		{"'b', {}", ""}, {"'!3b'", "a"},
	} {
		call := c.call
		if !strings.Contains(call, "ARGV") {
			call += ", ARGV[1]"
		}
		steps = append(steps, luaEval("return try(struct.unpack, "+call+")", c.data))
	}
	for _, f := range []string{
		"''", "'b'", "'bhilT'", "'!bhilT'", "'!2bhi'", "'c5'", "'c0'", "'s'", "'x'", "'i3'", "'!bi3'", "'!4bd'",
		"'z'", "'zq9'", "'%'", "'i33'", "'!3'", "'> < !'", "'c'", "5", "nil",
	} {
		steps = append(steps, luaEval("return try(struct.size, "+f+")"))
	}
	steps = append(steps,
		luaEval("return try(function() return struct.unpack(string.rep('b', 8000), string.rep('x', 8000)) end)"),
		luaEval("return try(function() return select('#', struct.unpack(string.rep('b', 7997), string.rep('x', 8000))) end)"),
		luaEval("return try(function() return select('#', struct.unpack(string.rep('b', 7998), string.rep('x', 8000))) end)"),
		cmd("EVAL", "return struct.pack('z')", "0"),
		cmd("EVAL", "return struct.unpack('b', '')", "0"),
		cmd("EVAL", "return struct.size('s')", "0"),
		cmd("EVAL", "return struct.pack('i40', 1)", "0"),
		cmd("EVAL", "struct.pack = 1", "0"),
		cmd("EVAL", "local t = {struct.unpack('>i<hs', struct.pack('>i<hs', -5, 7, 'abc'))} return {t[1], t[2], t[3], t[4]}", "0"),
	)
	steps = append(steps, structRandomSteps(rand.New(rand.NewPCG(3, 5)), 200)...)
	runDiff(t, steps)
}

// structRandomSteps makes n random formats with values to pack, and
// unpacks their result and random bytes with them.
func structRandomSteps(r *rand.Rand, n int) []step {
	var steps []step
	for i := 0; i < n; i++ {
		var format strings.Builder
		var args []string
		for k := r.IntN(8); k >= 0; k-- {
			opt := "bBhHlLTiIfdxcs<>! "[r.IntN(18)]
			format.WriteByte(opt)
			switch opt {
			case 'i', 'I':
				if r.IntN(2) == 0 {
					format.WriteString(strconv.Itoa(1 + r.IntN(16)))
				}
			case 'c':
				format.WriteString(strconv.Itoa(r.IntN(5)))
			case '!':
				format.WriteString([]string{"", "1", "2", "4", "8"}[r.IntN(5)])
			}
			switch opt {
			case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
				args = append(args, strconv.FormatInt(r.Int64N(1<<uint(r.IntN(63)))-r.Int64N(1<<uint(r.IntN(63))), 10))
			case 'f', 'd':
				args = append(args, strconv.FormatFloat(r.NormFloat64()*1e3, 'g', 17, 64))
			case 'c', 's':
				args = append(args, strconv.Quote(randomBytes(r, r.IntN(6))))
			}
		}
		call := strconv.Quote(format.String())
		if len(args) > 0 {
			call += ", " + strings.Join(args, ", ")
		}
		steps = append(steps,
			luaEval("return try(function() local p = struct.pack("+call+") return hex(p), struct.size("+strconv.Quote(format.String())+"), struct.unpack("+strconv.Quote(format.String())+", p) end)"),
			luaEval("return try(struct.unpack, ARGV[1], ARGV[2])", format.String(), randomMsgpackish(r)+randomMsgpackish(r)))
	}
	return steps
}
