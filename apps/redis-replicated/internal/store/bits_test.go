package store

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestBitsDiff(t *testing.T) {
	ones := strings.Repeat("\xff", 20)
	runDiff(t, []step{
		// SETBIT / GETBIT.
		cmd("SETBIT", "b", "7", "1"), cmd("GET", "b"), cmd("SETBIT", "b", "7", "0"), cmd("SETBIT", "b", "7", "1"),
		cmd("SETBIT", "b", "100", "1"), cmd("STRLEN", "b"), cmd("GET", "b"), cmd("SETBIT", "z", "0", "0"), cmd("GET", "z"),
		cmd("GETBIT", "b", "7"), cmd("GETBIT", "b", "6"), cmd("GETBIT", "b", "100"), cmd("GETBIT", "b", "101"),
		cmd("GETBIT", "b", "100000"), cmd("GETBIT", "nokey", "3"), cmd("GETBIT", "nokey", "x"),
		cmd("SETBIT", "b", "4294967296", "1"), cmd("SETBIT", "b", "-1", "1"), cmd("SETBIT", "b", "x", "1"),
		cmd("SETBIT", "b", "01", "1"), cmd("SETBIT", "b", "1", "2"), cmd("SETBIT", "b", "1", "-1"), cmd("SETBIT", "b", "1", "x"),
		cmd("SETBIT", "b", "1", ""), cmd("SETBIT", "b", "1", "01"), cmd("GETBIT", "b", "4294967296"), cmd("GETBIT", "b", "-1"),
		cmd("GETBIT", "b", "4294967295"), cmd("LPUSH", "l", "a"), cmd("SETBIT", "l", "1", "1"), cmd("GETBIT", "l", "1"),
		cmd("SETBIT", "l", "x", "1"), cmd("SETBIT", "l", "1", "5"), cmd("SETEX", "t", "100", "a"), cmd("SETBIT", "t", "20", "1"),
		cmd("TTL", "t"), cmd("GET", "t"), cmd("SETBIT", "b"), cmd("GETBIT", "b"),
		// BITCOUNT.
		cmd("SET", "s", "foobar"), cmd("BITCOUNT", "s"), cmd("BITCOUNT", "s", "0", "0"), cmd("BITCOUNT", "s", "1", "1"),
		cmd("BITCOUNT", "s", "1", "-2"), cmd("BITCOUNT", "s", "-100", "100"), cmd("BITCOUNT", "s", "5", "1"),
		cmd("BITCOUNT", "s", "-1", "-2"), cmd("BITCOUNT", "s", "-2", "-1"), cmd("BITCOUNT", "s", "-1", "-2", "x"),
		cmd("BITCOUNT", "s", "6", "100"), cmd("BITCOUNT", "s", "0", "-1", "BIT"), cmd("BITCOUNT", "s", "5", "30", "bit"),
		cmd("BITCOUNT", "s", "1", "1", "BYTE"), cmd("BITCOUNT", "s", "-5", "-1", "BIT"), cmd("BITCOUNT", "s", "7", "7", "BIT"),
		cmd("BITCOUNT", "s", "9", "9", "BIT"), cmd("BITCOUNT", "s", "3", "12", "BIT"), cmd("BITCOUNT", "s", "47", "1000", "BIT"),
		cmd("BITCOUNT", "s", "48", "1000", "BIT"), cmd("BITCOUNT", "s", "-48", "-48", "BIT"), cmd("BITCOUNT", "s", "1"),
		cmd("BITCOUNT", "s", "1", "2", "x"), cmd("BITCOUNT", "s", "x", "1"), cmd("BITCOUNT", "s", "1", "x"),
		cmd("BITCOUNT", "s", "0", "0", "BIT", "x"), cmd("BITCOUNT", "nokey"), cmd("BITCOUNT", "nokey", "1"),
		cmd("BITCOUNT", "nokey", "x", "y", "z"), cmd("BITCOUNT", "l"), cmd("BITCOUNT", "l", "1"),
		cmd("SET", "e", ""), cmd("BITCOUNT", "e"), cmd("BITCOUNT", "e", "0", "-1"), cmd("BITCOUNT", "e", "0", "-1", "BIT"),
		cmd("SET", "ones", ones), cmd("BITCOUNT", "ones"), cmd("BITCOUNT", "ones", "3", "150", "BIT"),
		cmd("BITCOUNT", "ones", "-9223372036854775808", "9223372036854775807"),
		cmd("BITCOUNT", "ones", "-9223372036854775808", "9223372036854775807", "BIT"),
		// BITPOS.
		cmd("BITPOS", "s", "1"), cmd("BITPOS", "s", "0"), cmd("BITPOS", "s", "1", "2"), cmd("BITPOS", "s", "0", "2", "4"),
		cmd("BITPOS", "s", "1", "-1"), cmd("BITPOS", "s", "1", "7"), cmd("BITPOS", "s", "1", "3", "2"),
		cmd("BITPOS", "s", "1", "0", "-1", "BIT"), cmd("BITPOS", "s", "0", "1", "5", "bit"), cmd("BITPOS", "s", "1", "9", "9", "BIT"),
		cmd("BITPOS", "s", "1", "10", "12", "BIT"), cmd("BITPOS", "s", "0", "10", "12", "BIT"), cmd("BITPOS", "s", "1", "-3", "-1", "BIT"),
		cmd("BITPOS", "s", "0", "-3", "-1", "BIT"), cmd("BITPOS", "s", "1", "5", "BYTE"),
		cmd("BITPOS", "s", "2"), cmd("BITPOS", "s", "x"), cmd("BITPOS", "s", "1", "x"), cmd("BITPOS", "s", "1", "0", "x"),
		cmd("BITPOS", "s", "1", "0", "1", "x"), cmd("BITPOS", "s", "1", "0", "1", "BIT", "5"), cmd("BITPOS", "nokey", "1"),
		cmd("BITPOS", "nokey", "0"), cmd("BITPOS", "nokey", "0", "5", "7"), cmd("BITPOS", "nokey", "1", "x", "y", "z", "w"),
		cmd("BITPOS", "nokey", "2"), cmd("BITPOS", "l", "1"), cmd("BITPOS", "e", "0"), cmd("BITPOS", "e", "1"),
		cmd("BITPOS", "e", "0", "0"), cmd("BITPOS", "ones", "0"), cmd("BITPOS", "ones", "0", "3"),
		cmd("BITPOS", "ones", "0", "3", "-1"), cmd("BITPOS", "ones", "0", "3", "BIT"), cmd("BITPOS", "ones", "0", "3", "-1", "BIT"),
		cmd("BITPOS", "ones", "0", "3", "20", "BIT"), cmd("BITPOS", "ones", "1", "3", "20", "BIT"), cmd("BITPOS", "ones", "1", "300"),
		cmd("SET", "zeros", "\x00\x00\x00"), cmd("BITPOS", "zeros", "1"), cmd("BITPOS", "zeros", "0"),
		cmd("BITPOS", "zeros", "1", "0", "-1", "BIT"), cmd("BITPOS", "zeros", "0", "5", "9", "BIT"),
		cmd("SET", "m", "\x00\x0f\xf0\x00"), cmd("BITPOS", "m", "1", "1", "3", "BIT"), cmd("BITPOS", "m", "1", "9", "11", "BIT"),
		cmd("BITPOS", "m", "1", "9", "13", "BIT"), cmd("BITPOS", "m", "0", "12", "19", "BIT"), cmd("BITPOS", "m", "0", "12", "20", "BIT"),
		cmd("BITPOS", "m", "1", "13", "14", "BIT"), cmd("BITPOS", "m", "1", "20", "25", "BIT"), cmd("BITPOS", "m", "0", "12", "BIT"),
		cmd("BITPOS", "m", "1", "-20", "-1", "BIT"),
		// BITOP.
		cmd("SET", "k1", "foobar"), cmd("SET", "k2", "abcdef"), cmd("SET", "k3", "\xff\x0f"),
		cmd("BITOP", "AND", "d", "k1", "k2"), cmd("GET", "d"), cmd("BITOP", "or", "d", "k1", "k3"), cmd("GET", "d"),
		cmd("BITOP", "XOR", "d", "k1", "k2", "k3"), cmd("GET", "d"), cmd("BITOP", "NOT", "d", "k3"), cmd("GET", "d"),
		cmd("BITOP", "AND", "d", "k3", "k1"), cmd("GET", "d"), cmd("BITOP", "AND", "d", "k1", "nokey"), cmd("GET", "d"),
		cmd("BITOP", "OR", "d", "nokey", "k3"), cmd("GET", "d"), cmd("BITOP", "NOT", "d", "nokey"), cmd("EXISTS", "d"),
		cmd("BITOP", "AND", "d", "nokey", "nokey2"), cmd("SET", "d", "x"), cmd("BITOP", "OR", "d", "e"), cmd("EXISTS", "d"),
		cmd("SETEX", "d", "100", "x"), cmd("BITOP", "OR", "d", "k1"), cmd("TTL", "d"), cmd("GET", "d"),
		cmd("BITOP", "OR", "k1", "k1", "k3"), cmd("GET", "k1"), cmd("BITOP", "NOT", "d", "k1", "k2"),
		cmd("BITOP", "NAND", "d", "k1"), cmd("BITOP", "AND", "d", "l"), cmd("BITOP", "AND", "d", "nokey", "l"),
		cmd("BITOP", "and", "l", "k1"), cmd("TYPE", "l"), cmd("BITOP", "and", "d"), cmd("BITOP", "not", "d"),
		cmd("LPUSH", "l", "a"),
		// BITFIELD.
		cmd("BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0"), cmd("GET", "bf"),
		cmd("BITFIELD", "bf", "GET", "i8", "0", "GET", "u4", "0", "GET", "i4", "4", "GET", "u1", "7", "GET", "i1", "7"),
		cmd("BITFIELD", "bf", "INCRBY", "u8", "0", "1"), cmd("BITFIELD", "bf", "INCRBY", "u8", "0", "-1"),
		cmd("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300", "INCRBY", "u8", "0", "-300"),
		cmd("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300", "GET", "u8", "0", "INCRBY", "u8", "0", "5"),
		cmd("BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "i8", "0", "127", "INCRBY", "i8", "0", "127"),
		cmd("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "200", "INCRBY", "i8", "0", "-400"),
		cmd("BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "i8", "0", "200", "SET", "u8", "0", "-1", "SET", "u8", "0", "256"),
		cmd("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "200", "SET", "u8", "8", "-1", "SET", "i8", "16", "-1000"),
		cmd("BITFIELD", "bf", "SET", "i8", "0", "200", "SET", "u8", "8", "-1", "GET", "u16", "0"), cmd("GET", "bf"),
		cmd("BITFIELD", "bf", "SET", "i64", "3", "-9223372036854775808", "GET", "i64", "3", "GET", "u63", "4"),
		cmd("BITFIELD", "bf", "INCRBY", "i64", "3", "-1", "OVERFLOW", "SAT", "INCRBY", "i64", "3", "-1", "INCRBY", "i64", "3", "9223372036854775807"),
		cmd("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i64", "3", "9223372036854775807", "INCRBY", "i64", "3", "1"),
		cmd("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i64", "3", "1", "INCRBY", "u63", "0", "9223372036854775807"),
		cmd("BITFIELD", "bf", "SET", "u63", "1", "9223372036854775807", "INCRBY", "u63", "1", "1", "GET", "u63", "1"),
		cmd("BITFIELD", "w", "SET", "i64", "0", "-5", "INCRBY", "i64", "0", "10", "INCRBY", "i64", "0", "-9223372036854775808",
			"OVERFLOW", "SAT", "INCRBY", "i64", "0", "-9223372036854775808", "INCRBY", "i64", "0", "9223372036854775807",
			"INCRBY", "i64", "0", "9223372036854775807", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", "1", "SET", "i64", "0", "-1",
			"INCRBY", "i64", "0", "-9223372036854775808", "INCRBY", "i64", "0", "1"),
		cmd("BITFIELD", "w", "OVERFLOW", "WRAP", "SET", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "1",
			"INCRBY", "i64", "0", "-1", "SET", "i63", "0", "-9223372036854775808", "GET", "i63", "0", "SET", "u63", "0", "-1",
			"INCRBY", "u63", "0", "-9223372036854775808", "INCRBY", "u63", "0", "9223372036854775807", "GET", "u63", "0"),
		cmd("BITFIELD", "bf", "SET", "u8", "#2", "7", "GET", "u8", "#2", "GET", "u8", "16", "SET", "i5", "#3", "-3", "GET", "i5", "15"),
		cmd("BITFIELD", "bf", "GET", "u8", "#"), cmd("BITFIELD", "bf", "GET", "u8", "#-1"), cmd("BITFIELD", "bf", "GET", "u8", "##1"),
		cmd("BITFIELD", "bf", "GET", "u8", "#2305843009213693953"), cmd("BITFIELD", "bf", "GET", "u8", "#536870912"),
		cmd("BITFIELD", "bf", "GET", "u8", "4294967288"), cmd("BITFIELD", "bf", "GET", "u8", "4294967296"),
		cmd("BITFIELD", "bf", "GET", "u64", "0"), cmd("BITFIELD", "bf", "GET", "i65", "0"), cmd("BITFIELD", "bf", "GET", "i0", "0"),
		cmd("BITFIELD", "bf", "GET", "x8", "0"), cmd("BITFIELD", "bf", "GET", "", "0"), cmd("BITFIELD", "bf", "GET", "i08", "0"),
		cmd("BITFIELD", "bf", "GET", "U8", "0"), cmd("BITFIELD", "bf", "GET", "u8"), cmd("BITFIELD", "bf", "get", "u8", "-1"),
		cmd("BITFIELD", "bf", "OVERFLOW", "foo"), cmd("BITFIELD", "bf", "OVERFLOW"), cmd("BITFIELD", "bf", "FOO"),
		cmd("BITFIELD", "bf", "SET", "u8", "0"), cmd("BITFIELD", "bf", "SET", "u8", "0", "x"), cmd("BITFIELD", "bf", "INCRBY", "u8", "0", "1.5"),
		cmd("BITFIELD", "bf", "GET", "u8", "0", "SET", "u8", "0", "1", "BAD"), cmd("BITFIELD", "bf", "overflow", "wrap"),
		cmd("BITFIELD", "bf"), cmd("BITFIELD", "nokey"), cmd("BITFIELD", "nokey", "GET", "i16", "100"), cmd("EXISTS", "nokey"),
		cmd("BITFIELD", "grow", "OVERFLOW", "FAIL", "SET", "u2", "100", "9"), cmd("GET", "grow"),
		cmd("BITFIELD", "l", "GET", "u8", "0"), cmd("BITFIELD", "l", "SET", "u8", "0", "1"), cmd("BITFIELD", "l"),
		cmd("BITFIELD", "l", "GET", "x8", "0"), cmd("SETEX", "bt", "100", "ab"), cmd("BITFIELD", "bt", "SET", "u8", "20", "1"), cmd("TTL", "bt"),
		cmd("BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i16", "#1"), cmd("BITFIELD_RO", "bf", "SET", "u8", "0", "1"),
		cmd("BITFIELD_RO", "l", "SET", "u8", "0", "1"), cmd("BITFIELD_RO", "l", "GET", "u8", "0"), cmd("BITFIELD_RO", "nokey"),
		cmd("BITFIELD_RO", "nokey", "GET", "u8", "0"), cmd("BITFIELD_RO", "bf", "INCRBY", "u8", "0", "1"),
		cmd("BITFIELD_RO", "bf", "OVERFLOW", "SAT", "GET", "u8", "0"), cmd("BITFIELD_RO", "bf", "GET", "u64", "0"),
		cmd("BITFIELD_RO"), cmd("BITFIELD"),
	})
}

// TestBitsRandomDiff runs a seeded random stream of bit commands over a few
// short strings against Redis.
func TestBitsRandomDiff(t *testing.T) {
	const seed = 20240614
	r := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	keys := []string{"b1", "b2", "b3"}
	k := func() string {
		if r.IntN(30) == 0 {
			return []string{"l", "nokey"}[r.IntN(2)]
		}
		return keys[r.IntN(len(keys))]
	}
	idx := func(n int) string { return strconv.Itoa(r.IntN(2*n) - n) }
	bytesVal := func() string {
		b := make([]byte, r.IntN(9))
		for i := range b {
			b[i] = []byte{0, 0xff, 0x0f, 0xf0, 0x80, 0x01, byte(r.IntN(256))}[r.IntN(7)]
		}
		return string(b)
	}
	bfType := func() string {
		if r.IntN(4) == 0 {
			return []string{"i64", "u63", "i63", "u1", "i1", "i32", "u32", "i2"}[r.IntN(8)]
		}
		if r.IntN(2) == 0 {
			return "i" + strconv.Itoa(1+r.IntN(64))
		}
		return "u" + strconv.Itoa(1+r.IntN(63))
	}
	bfOffset := func() string {
		if r.IntN(4) == 0 {
			return "#" + strconv.Itoa(r.IntN(6))
		}
		return strconv.Itoa(r.IntN(90))
	}
	bfValue := func() string {
		switch r.IntN(5) {
		case 0:
			return strconv.FormatInt(r.Int64(), 10)
		case 1:
			return strconv.FormatInt(-r.Int64(), 10)
		case 2:
			return []string{"9223372036854775807", "-9223372036854775808", "0", "-1", "1"}[r.IntN(5)]
		}
		return strconv.Itoa(r.IntN(600) - 300)
	}
	script := []step{cmd("LPUSH", "l", "x")}
	for range 4000 {
		var st step
		switch r.IntN(14) {
		case 0:
			st = cmd("SETBIT", k(), strconv.Itoa(r.IntN(80)), strconv.Itoa(r.IntN(2)))
		case 1:
			st = cmd("GETBIT", k(), strconv.Itoa(r.IntN(90)))
		case 2:
			args := []string{"BITCOUNT", k()}
			if r.IntN(4) != 0 {
				args = append(args, idx(12), idx(12))
				if r.IntN(2) == 0 {
					args = append(args, []string{"BIT", "BYTE", "bit"}[r.IntN(3)])
					if args[len(args)-1] != "byte" {
						args[2], args[3] = idx(80), idx(80)
					}
				}
			}
			st = cmd(args...)
		case 3, 4:
			args := []string{"BITPOS", k(), strconv.Itoa(r.IntN(2))}
			switch r.IntN(5) {
			case 1:
				args = append(args, idx(10))
			case 2:
				args = append(args, idx(10), idx(10))
			case 3, 4:
				args = append(args, idx(70), idx(70), "BIT")
			}
			st = cmd(args...)
		case 5:
			op := []string{"AND", "OR", "XOR", "NOT"}[r.IntN(4)]
			args := []string{"BITOP", op, k(), k()}
			if op != "NOT" {
				for range r.IntN(3) {
					args = append(args, k())
				}
			}
			st = cmd(args...)
		case 6, 7, 8:
			name := "BITFIELD"
			if r.IntN(4) == 0 {
				name = "BITFIELD_RO"
			}
			args := []string{name, k()}
			for range 1 + r.IntN(4) {
				switch r.IntN(5) {
				case 0:
					args = append(args, "OVERFLOW", []string{"WRAP", "SAT", "FAIL"}[r.IntN(3)])
				case 1, 2:
					args = append(args, "GET", bfType(), bfOffset())
				case 3:
					args = append(args, "SET", bfType(), bfOffset(), bfValue())
				case 4:
					args = append(args, "INCRBY", bfType(), bfOffset(), bfValue())
				}
			}
			st = cmd(args...)
		case 9:
			st = cmd("SET", k(), bytesVal())
		case 10:
			st = cmd("APPEND", k(), bytesVal())
		case 11, 12:
			st = cmd("GET", k())
		case 13:
			st = cmd("DEL", k())
		}
		script = append(script, st)
	}
	for _, key := range keys {
		script = append(script, cmd("GET", key))
	}
	runDiff(t, script)
}
