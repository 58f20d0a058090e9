package store

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// stringsScripts are differential scripts for the string commands, one per
// command or theme; each runs against a fresh Store and a fresh Redis.
var stringsScripts = map[string][]step{
	"get": {
		cmd("GET", "k"),
		cmd("SET", "k", "v"),
		cmd("GET", "k"),
		cmd("get", "k"),
		cmd("GET"),
		cmd("GET", "k", "x"),
		cmd("LPUSH", "l", "a"),
		cmd("GET", "l"),
		cmd("SET", "e", ""),
		cmd("GET", "e"),
		cmd("SET", "bin", "a\r\nb\x00c"),
		cmd("GET", "bin"),
	},
	"set-options": {
		cmd("SET", "k"),
		cmd("SET", "k", "v", "NX"),
		cmd("SET", "k", "w", "NX"),
		cmd("GET", "k"),
		cmd("SET", "k", "w", "XX"),
		cmd("GET", "k"),
		cmd("SET", "n", "w", "XX"),
		cmd("EXISTS", "n"),
		cmd("SET", "k", "v", "NX", "XX"),
		cmd("SET", "k", "v", "XX", "NX"),
		cmd("SET", "k", "v", "nx", "nx"),
		cmd("SET", "k", "v", "EX"),
		cmd("SET", "k", "v", "EX", "10", "PX", "100"),
		cmd("SET", "k", "v", "EX", "10", "EX", "20"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v", "PX", "5000", "PX", "20000"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v", "EX", "10", "KEEPTTL"),
		cmd("SET", "k", "v", "KEEPTTL", "EX", "10"),
		cmd("SET", "k", "v", "KEEPTTL", "KEEPTTL"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v", "EXAT", "1", "PXAT", "1"),
		cmd("SET", "k", "v", "FOO"),
		cmd("SET", "k", "v", "EX", "abc"),
		cmd("SET", "k", "v", "EX", "0"),
		cmd("SET", "k", "v", "EX", "-5"),
		cmd("SET", "k", "v", "PX", "0"),
		cmd("SET", "k", "v", "EX", "9223372036854775"),
		cmd("SET", "k", "v", "EX", "9223372036854776"),
		cmd("SET", "k", "v", "PX", "9223372036854775807"),
		cmd("SET", "k", "v", "EXAT", "9223372036854775"),
		cmd("SET", "k", "v", "PXAT", "9223372036854775807"),
		cmd("SET", "k", "v", "EX", "1.5"),
		cmd("SET", "k", "v", "EX", "99999999999999999999"),
		cmd("SET", "k", "v", "EX", "100"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v2"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v3", "ex", "100"),
		cmd("SET", "k", "v4", "keepttl"),
		cmd("TTL", "k"),
		cmd("GET", "k"),
		cmd("SET", "k", "v5", "EXAT", "4102444800"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v6", "PXAT", "4102444800000", "XX"),
		cmd("TTL", "k"),
		cmd("SET", "k", "v6", "PXAT", "4102444800000", "NX"),
		cmd("SET", "k", "v", "PERSIST"),
	},
	"set-get": {
		cmd("SET", "k", "v", "GET"),
		cmd("SET", "k", "w", "GET"),
		cmd("SET", "k", "x", "GET", "GET"),
		cmd("SET", "k", "y", "NX", "GET"),
		cmd("GET", "k"),
		cmd("SET", "n", "y", "XX", "GET"),
		cmd("EXISTS", "n"),
		cmd("SET", "n", "y", "NX", "GET"),
		cmd("GET", "n"),
		cmd("SET", "k", "z", "GET", "EX", "100"),
		cmd("TTL", "k"),
		cmd("SET", "k", "z", "GET", "EX", "0"),
		cmd("HSET", "h", "f", "v"),
		cmd("SET", "h", "v", "GET"),
		cmd("TYPE", "h"),
		cmd("SET", "h", "v"),
		cmd("TYPE", "h"),
		cmd("SET", "h", "v", "GET", "FOO"),
	},
	"setnx-setex-psetex": {
		cmd("SETNX", "k", "v"),
		cmd("SETNX", "k", "w"),
		cmd("GET", "k"),
		cmd("SETNX", "k"),
		cmd("LPUSH", "l", "a"),
		cmd("SETNX", "l", "x"),
		cmd("SETEX", "k", "100", "v"),
		cmd("TTL", "k"),
		cmd("SETEX", "k", "0", "v"),
		cmd("SETEX", "k", "-1", "v"),
		cmd("SETEX", "k", "x", "v"),
		cmd("SETEX", "k", "9223372036854776", "v"),
		cmd("SETEX", "k", "10"),
		cmd("PSETEX", "k", "100000", "v"),
		cmd("TTL", "k"),
		cmd("PSETEX", "k", "0", "v"),
		cmd("PSETEX", "k", "9223372036854775807", "v"),
		cmd("PSETEX", "k", "", "v"),
		cmd("SETEX", "l", "10", "v"),
		cmd("TYPE", "l"),
	},
	"getset-getdel": {
		cmd("GETSET", "k", "v"),
		cmd("GETSET", "k", "w"),
		cmd("EXPIRE", "k", "100"),
		cmd("GETSET", "k", "x"),
		cmd("TTL", "k"),
		cmd("LPUSH", "l", "a"),
		cmd("GETSET", "l", "x"),
		cmd("GETDEL", "k"),
		cmd("GETDEL", "k"),
		cmd("EXISTS", "k"),
		cmd("GETDEL", "l"),
		cmd("GETDEL"),
	},
	"mget-mset": {
		cmd("MSET", "a", "1", "b", "2"),
		cmd("MGET", "a", "b", "c", "a"),
		cmd("MSET", "a"),
		cmd("MSET", "a", "1", "b"),
		cmd("MSET", "a", "x", "a", "y"),
		cmd("GET", "a"),
		cmd("LPUSH", "l", "a"),
		cmd("MGET", "l", "a"),
		cmd("MSET", "l", "s"),
		cmd("TYPE", "l"),
		cmd("MSETNX", "a", "1", "z", "2"),
		cmd("EXISTS", "z"),
		cmd("MSETNX", "y", "1", "z", "2"),
		cmd("MGET", "y", "z"),
		cmd("MSETNX", "q", "1", "q", "2"),
		cmd("GET", "q"),
		cmd("MSETNX", "q"),
		cmd("MSETNX", "q", "1", "r"),
		cmd("MGET"),
		cmd("EXPIRE", "a", "100"),
		cmd("MSET", "a", "2"),
		cmd("TTL", "a"),
	},
	"append-strlen": {
		cmd("APPEND", "k", "ab"),
		cmd("APPEND", "k", "cd"),
		cmd("GET", "k"),
		cmd("STRLEN", "k"),
		cmd("STRLEN", "nope"),
		cmd("APPEND", "k", ""),
		cmd("APPEND", "e", ""),
		cmd("EXISTS", "e"),
		cmd("EXPIRE", "k", "100"),
		cmd("APPEND", "k", "x"),
		cmd("TTL", "k"),
		cmd("LPUSH", "l", "a"),
		cmd("APPEND", "l", "x"),
		cmd("STRLEN", "l"),
		cmd("SET", "n", "10"),
		cmd("APPEND", "n", "5"),
		cmd("INCR", "n"),
	},
	"incr-decr": {
		cmd("INCR", "k"),
		cmd("INCR", "k"),
		cmd("DECR", "k"),
		cmd("DECR", "d"),
		cmd("INCRBY", "k", "10"),
		cmd("INCRBY", "k", "-100"),
		cmd("DECRBY", "k", "7"),
		cmd("DECRBY", "k", "-7"),
		cmd("INCRBY", "k", "x"),
		cmd("INCRBY", "k", "1.5"),
		cmd("INCRBY", "k", "+1"),
		cmd("INCRBY", "k", "01"),
		cmd("INCRBY", "k", " 1"),
		cmd("INCRBY", "k", "-0"),
		cmd("INCRBY", "k", "0"),
		cmd("INCRBY", "k", ""),
		cmd("INCRBY", "k", "9223372036854775808"),
		cmd("DECRBY", "k", "-9223372036854775808"),
		cmd("SET", "m", "9223372036854775807"),
		cmd("INCR", "m"),
		cmd("INCRBY", "m", "0"),
		cmd("DECRBY", "m", "-1"),
		cmd("SET", "m", "-9223372036854775808"),
		cmd("DECR", "m"),
		cmd("INCRBY", "m", "-1"),
		cmd("INCRBY", "m", "9223372036854775807"),
		cmd("SET", "s", "abc"),
		cmd("INCR", "s"),
		cmd("SET", "s", "12 "),
		cmd("INCR", "s"),
		cmd("SET", "s", "012"),
		cmd("INCR", "s"),
		cmd("SET", "s", "-0"),
		cmd("DECR", "s"),
		cmd("SET", "s", ""),
		cmd("INCR", "s"),
		cmd("SET", "s", "+5"),
		cmd("INCR", "s"),
		cmd("SET", "s", "99999999999999999999"),
		cmd("INCR", "s"),
		cmd("LPUSH", "l", "1"),
		cmd("INCR", "l"),
		cmd("DECRBY", "l", "x"),
		cmd("SET", "t", "5", "EX", "100"),
		cmd("INCR", "t"),
		cmd("TTL", "t"),
		cmd("GET", "t"),
		cmd("INCR"),
		cmd("INCRBY", "k"),
	},
	"incrbyfloat": {
		cmd("INCRBYFLOAT", "f", "10.5"),
		cmd("INCRBYFLOAT", "f", "0.1"),
		cmd("INCRBYFLOAT", "f", "-5"),
		cmd("INCRBYFLOAT", "f", "5.0e3"),
		cmd("INCRBYFLOAT", "f", "2.0e-3"),
		cmd("INCRBYFLOAT", "f", "-5005.602"),
		cmd("GET", "f"),
		cmd("INCRBYFLOAT", "g", "3"),
		cmd("INCRBYFLOAT", "g", "-3"),
		cmd("INCRBYFLOAT", "g", "-0"),
		cmd("INCRBYFLOAT", "h", "1e20"),
		cmd("INCRBYFLOAT", "h", "1e300"),
		cmd("INCRBYFLOAT", "i", "0.1"),
		cmd("INCRBYFLOAT", "i", "0.2"),
		cmd("INCRBYFLOAT", "i", "0.3"),
		cmd("INCRBYFLOAT", "i", "1e-17"),
		cmd("INCRBYFLOAT", "i", "1e-18"),
		cmd("INCRBYFLOAT", "j", "3.0000000000000000001"),
		cmd("INCRBYFLOAT", "j", "1.23456789012345678901234"),
		cmd("INCRBYFLOAT", "k", "abc"),
		cmd("INCRBYFLOAT", "k", ""),
		cmd("INCRBYFLOAT", "k", " 1"),
		cmd("INCRBYFLOAT", "k", "1 "),
		cmd("INCRBYFLOAT", "k", "+1.5"),
		cmd("INCRBYFLOAT", "k", ".5"),
		cmd("INCRBYFLOAT", "k", "5."),
		cmd("INCRBYFLOAT", "k", "."),
		cmd("INCRBYFLOAT", "k", "1e"),
		cmd("INCRBYFLOAT", "k", "1e+2"),
		cmd("INCRBYFLOAT", "k", "0x10"),
		cmd("INCRBYFLOAT", "k", "0x1.8p1"),
		cmd("INCRBYFLOAT", "k", "0x"),
		cmd("INCRBYFLOAT", "k", "1_0"),
		cmd("INCRBYFLOAT", "k", "inf"),
		cmd("INCRBYFLOAT", "k", "-infinity"),
		cmd("INCRBYFLOAT", "k", "nan"),
		cmd("INCRBYFLOAT", "k", "1e5000"),
		cmd("INCRBYFLOAT", "k", "1e-5000"),
		cmd("INCRBYFLOAT", "k", "1e4000"),
		cmd("INCRBYFLOAT", "k", "1e4000"),
		cmd("INCRBYFLOAT", "k", "1e4932"),
		cmd("INCRBYFLOAT", "k", "1e-999999999"),
		cmd("INCRBYFLOAT", "k", "1e999999999"),
		cmd("INCRBYFLOAT", "k", "1e-99999999999"),
		cmd("INCRBYFLOAT", "k", "1e99999999999"),
		cmd("INCRBYFLOAT", "k", "0e-99999999999999999999"),
		cmd("INCRBYFLOAT", "k", "-0.000e99999999999999999999"),
		cmd("INCRBYFLOAT", "k", "0x0p99999999999999999999"),
		cmd("INCRBYFLOAT", "k", "1e-4940"),
		cmd("INCRBYFLOAT", "k", "-1e4000"),
		cmd("GET", "k"),
		cmd("SET", "s", "inf"),
		cmd("INCRBYFLOAT", "s", "1"),
		cmd("SET", "s", "1.5abc"),
		cmd("INCRBYFLOAT", "s", "1"),
		cmd("SET", "s", "  2"),
		cmd("INCRBYFLOAT", "s", "1"),
		cmd("SET", "s", "7", "EX", "100"),
		cmd("INCRBYFLOAT", "s", "0.25"),
		cmd("TTL", "s"),
		cmd("LPUSH", "l", "1"),
		cmd("INCRBYFLOAT", "l", "1"),
		cmd("INCRBYFLOAT", "l", "x"),
		cmd("INCRBYFLOAT", "m", "-1.5"),
		cmd("INCRBYFLOAT", "m", "1.5"),
		cmd("INCRBYFLOAT", "n", "123456789.123456789"),
		cmd("INCRBYFLOAT", "n", "-0.000000001"),
		cmd("INCRBYFLOAT", "o", "1.1"),
		cmd("INCRBYFLOAT", "o", "2.2"),
		cmd("INCRBYFLOAT", "o", "3.3"),
		cmd("INCRBYFLOAT", "p", "99999999999999999999.5"),
	},
	"getrange": {
		cmd("SET", "k", "Hello World"),
		cmd("GETRANGE", "k", "0", "4"),
		cmd("GETRANGE", "k", "-5", "-1"),
		cmd("GETRANGE", "k", "0", "-1"),
		cmd("GETRANGE", "k", "-1", "-5"),
		cmd("GETRANGE", "k", "5", "3"),
		cmd("GETRANGE", "k", "-100", "100"),
		cmd("GETRANGE", "k", "100", "200"),
		cmd("GETRANGE", "k", "-100", "-50"),
		cmd("GETRANGE", "k", "3", "-100"),
		cmd("GETRANGE", "k", "0", "0"),
		cmd("GETRANGE", "k", "-9223372036854775808", "9223372036854775807"),
		cmd("GETRANGE", "k", "x", "1"),
		cmd("GETRANGE", "k", "1", "x"),
		cmd("GETRANGE", "none", "0", "1"),
		cmd("GETRANGE", "none", "x", "1"),
		cmd("SET", "e", ""),
		cmd("GETRANGE", "e", "0", "-1"),
		cmd("LPUSH", "l", "a"),
		cmd("GETRANGE", "l", "0", "1"),
		cmd("GETRANGE", "k", "0"),
	},
	"setrange": {
		cmd("SETRANGE", "k", "0", "Hello"),
		cmd("SETRANGE", "k", "6", "World"),
		cmd("GET", "k"),
		cmd("SETRANGE", "k", "1", "a"),
		cmd("GET", "k"),
		cmd("SETRANGE", "k", "-1", "a"),
		cmd("SETRANGE", "k", "x", "a"),
		cmd("SETRANGE", "n", "5", ""),
		cmd("EXISTS", "n"),
		cmd("SETRANGE", "k", "100", ""),
		cmd("STRLEN", "k"),
		cmd("SETRANGE", "p", "3", "x"),
		cmd("GET", "p"),
		cmd("SETRANGE", "k", "536870912", "x"),
		cmd("SETRANGE", "k", "536870911", "xy"),
		cmd("SETRANGE", "k", "9223372036854775807", "x"),
		cmd("SETRANGE", "n", "536870912", "x"),
		cmd("EXISTS", "n"),
		cmd("LPUSH", "l", "a"),
		cmd("SETRANGE", "l", "0", "x"),
		cmd("SETRANGE", "l", "0", ""),
		cmd("SET", "t", "abc", "EX", "100"),
		cmd("SETRANGE", "t", "1", "Z"),
		cmd("TTL", "t"),
		cmd("GET", "t"),
	},
}

func TestStringsDiff(t *testing.T) {
	for name, script := range stringsScripts {
		t.Run(name, func(t *testing.T) { runDiff(t, script) })
	}
}

// randomKeys is the small key space of the random differential tests.
var randomKeys = []string{"a", "b", "c", "d", "n1", "n2", "l"}

// randomStringOp returns one random string or generic command.
func randomStringOp(r *rand.Rand) []string {
	k := func() string { return randomKeys[r.IntN(len(randomKeys))] }
	num := func() string {
		switch r.IntN(6) {
		case 0:
			return "x" + strconv.Itoa(r.IntN(10))
		case 1:
			return strconv.FormatInt(r.Int64N(1<<62)-(1<<61), 10)
		}
		return strconv.Itoa(r.IntN(200) - 100)
	}
	flt := func() string {
		switch r.IntN(4) {
		case 0:
			return strconv.Itoa(r.IntN(100) - 50)
		case 1:
			return fmt.Sprintf("%.3f", r.Float64()*200-100)
		case 2:
			return fmt.Sprintf("%de%d", r.IntN(9)+1, r.IntN(10)-5)
		}
		return fmt.Sprintf("0.%d", r.IntN(1000))
	}
	val := func() string {
		if r.IntN(3) == 0 {
			return num()
		}
		return strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(5))
	}
	switch r.IntN(26) {
	case 24:
		args := []string{"GETEX", k()}
		switch r.IntN(6) {
		case 0:
			args = append(args, "EX", strconv.Itoa(r.IntN(1000)+100))
		case 1:
			args = append(args, "PX", strconv.Itoa(r.IntN(1000)*1000+1000))
		case 2:
			args = append(args, "PERSIST")
		case 3:
			args = append(args, []string{"EXAT", "PXAT"}[r.IntN(2)], []string{"1", "4102444800"}[r.IntN(2)])
		case 4:
			args = append(args, []string{"EX", "PERSIST", "KEEPTTL", "0"}[r.IntN(4)])
		}
		return args
	case 25:
		args := []string{"LCS", k(), k()}
		if r.IntN(2) == 0 {
			args = append(args, []string{"LEN", "IDX", "WITHMATCHLEN"}[r.IntN(3)])
		}
		return args
	case 0:
		return []string{"GET", k()}
	case 1:
		opts := []string{"SET", k(), val()}
		for range r.IntN(3) {
			opts = append(opts, []string{"NX", "XX", "GET", "KEEPTTL", "EX", "PX"}[r.IntN(6)])
			if o := opts[len(opts)-1]; o == "EX" || o == "PX" {
				opts = append(opts, strconv.Itoa(r.IntN(1000)*1000+1000))
			}
		}
		return opts
	case 2:
		return []string{"SETNX", k(), val()}
	case 3:
		return []string{"SETEX", k(), strconv.Itoa(r.IntN(1000) + 1), val()}
	case 4:
		return []string{"GETSET", k(), val()}
	case 5:
		return []string{"GETDEL", k()}
	case 6:
		return []string{"MGET", k(), k(), k()}
	case 7:
		return []string{"MSET", k(), val(), k(), val()}
	case 8:
		return []string{"MSETNX", k(), val(), k(), val()}
	case 9:
		return []string{"APPEND", k(), val()}
	case 10:
		return []string{"STRLEN", k()}
	case 11:
		return []string{[]string{"INCR", "DECR"}[r.IntN(2)], k()}
	case 12:
		return []string{[]string{"INCRBY", "DECRBY"}[r.IntN(2)], k(), num()}
	case 13:
		return []string{"INCRBYFLOAT", k(), flt()}
	case 14:
		return []string{"GETRANGE", k(), strconv.Itoa(r.IntN(20) - 10), strconv.Itoa(r.IntN(20) - 10)}
	case 15:
		return []string{"SETRANGE", k(), strconv.Itoa(r.IntN(10)), val()}
	case 16:
		return []string{"DEL", k(), k()}
	case 17:
		return []string{"EXISTS", k(), k()}
	case 18:
		args := []string{[]string{"EXPIRE", "PEXPIRE"}[r.IntN(2)], k(), strconv.Itoa(r.IntN(100000) + 100000)}
		if r.IntN(2) == 0 {
			args = append(args, []string{"NX", "XX", "GT", "LT"}[r.IntN(4)])
		}
		return args
	case 19:
		return []string{"TTL", k()}
	case 20:
		return []string{"PERSIST", k()}
	case 21:
		return []string{"TYPE", k()}
	case 22:
		return []string{[]string{"RENAME", "RENAMENX"}[r.IntN(2)], k(), k()}
	}
	return []string{"LPUSH", "l", val()}
}

// TestStringsRandomDiff runs a seeded random mix of string and key commands
// on a small key space against Redis.
func TestStringsRandomDiff(t *testing.T) {
	const seed = 20240607
	r := rand.New(rand.NewPCG(seed, 1))
	script := make([]step, 2000)
	for i := range script {
		script[i] = cmd(randomStringOp(r)...)
	}
	script = append(script, anyOrder("KEYS", "*"), cmd("DBSIZE"))
	t.Logf("seed %d", seed)
	runDiff(t, script)
}

// TestStringsDeterministic checks that two stores given the same commands
// and Envs answer identically, time-dependent commands included.
func TestStringsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var script [][]string
	for range 3000 {
		script = append(script, randomStringOp(r))
		if r.IntN(50) == 0 {
			script = append(script, []string{"gomu.expire", "3"})
		}
		if r.IntN(40) == 0 {
			script = append(script, []string{"SCAN", "0", "COUNT", "3"})
		}
	}
	script = append(script, []string{"KEYS", "*"}, []string{"SCAN", "0"})
	a, b := New(), New()
	now := int64(1_700_000_000_000)
	ra, rb := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	for i, args := range script {
		now += int64(r.IntN(50_000)) // time passes: keys expire
		ga := string(execArgs(a, &Env{NowMs: now, Rand: ra}, args))
		gb := string(execArgs(b, &Env{NowMs: now, Rand: rb}, args))
		if ga != gb {
			t.Fatalf("step %d %q: %q vs %q", i, args, ga, gb)
		}
	}
	if a.Len() != b.Len() || a.Expiring() != b.Expiring() {
		t.Fatalf("stores differ: %d/%d keys, %d/%d expiring", a.Len(), b.Len(), a.Expiring(), b.Expiring())
	}
}

// TestParseRedisInt checks the strict integer syntax against strconv.
func TestParseRedisInt(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"-1", true}, {"9223372036854775807", true}, {"-9223372036854775808", true},
		{"9223372036854775808", false}, {"-9223372036854775809", false}, {"", false}, {"-", false},
		{"+1", false}, {"01", false}, {"-0", false}, {" 1", false}, {"1 ", false}, {"1a", false},
		{"18446744073709551616", false}, {"99999999999999999999", false},
	} {
		n, ok := parseRedisInt([]byte(c.in))
		if ok != c.ok {
			t.Errorf("parseRedisInt(%q) ok = %v", c.in, ok)
		}
		if ok {
			if want, _ := strconv.ParseInt(c.in, 10, 64); n != want {
				t.Errorf("parseRedisInt(%q) = %d", c.in, n)
			}
		}
	}
}

// TestIncrByFloatRandomDiff compares INCRBYFLOAT's long double emulation
// with Redis on random increments of many magnitudes and digit counts.
func TestIncrByFloatRandomDiff(t *testing.T) {
	const seed = 4242
	r := rand.New(rand.NewPCG(seed, 3))
	var script []step
	for i := range 1500 {
		var inc string
		switch r.IntN(5) {
		case 0:
			inc = strconv.FormatFloat(r.NormFloat64()*1e6, 'f', r.IntN(20), 64)
		case 1:
			inc = strconv.FormatFloat(r.Float64(), 'g', r.IntN(25)+1, 64)
		case 2:
			inc = fmt.Sprintf("%de%d", r.IntN(2000)-1000, r.IntN(60)-30)
		case 3:
			inc = "0." + strconv.Itoa(r.IntN(100000))
		default:
			inc = strconv.FormatFloat(r.ExpFloat64()*1e15, 'f', -1, 64)
		}
		key := "f" + strconv.Itoa(i%5)
		if r.IntN(30) == 0 {
			script = append(script, cmd("DEL", key))
		}
		script = append(script, cmd("INCRBYFLOAT", key, inc))
	}
	t.Logf("seed %d", seed)
	runDiff(t, script)
}

func TestGetExLCSDiff(t *testing.T) {
	runDiff(t, []step{
		// GETEX.
		cmd("GETEX", "nokey"), cmd("GETEX", "nokey", "EX", "10"), cmd("GETEX", "nokey", "EX", "abc"),
		cmd("GETEX", "nokey", "FOO"), cmd("GETEX", "nokey", "EX"),
		cmd("SET", "k", "v"), cmd("GETEX", "k"), cmd("TTL", "k"),
		cmd("GETEX", "k", "EX", "100"), cmd("TTL", "k"), cmd("GETEX", "k"), cmd("TTL", "k"),
		cmd("GETEX", "k", "PX", "200000"), cmd("TTL", "k"), cmd("GETEX", "k", "persist"), cmd("TTL", "k"),
		cmd("GETEX", "k", "EXAT", "4102444800"), cmd("TTL", "k"), cmd("GETEX", "k", "PXAT", "4102444800000"), cmd("TTL", "k"),
		cmd("GETEX", "k", "EX", "10", "EX", "300"), cmd("TTL", "k"),
		cmd("GETEX", "k", "EX", "10", "PX", "300"), cmd("GETEX", "k", "EX", "10", "PERSIST"),
		cmd("GETEX", "k", "PERSIST", "EX", "10"), cmd("GETEX", "k", "PERSIST", "PERSIST"), cmd("TTL", "k"),
		cmd("GETEX", "k", "KEEPTTL"), cmd("GETEX", "k", "NX"), cmd("GETEX", "k", "GET"), cmd("GETEX", "k", "EX"),
		cmd("GETEX", "k", "EX", "0"), cmd("GETEX", "k", "EX", "-1"), cmd("GETEX", "k", "EX", "x"),
		cmd("GETEX", "k", "EX", "9223372036854776"), cmd("GETEX", "k", "PX", "9223372036854775807"),
		cmd("GETEX", "k", "EXAT", "9223372036854775"), cmd("GETEX", "k", "PXAT", "0"),
		cmd("GETEX", "k", "EX", "1.5"), cmd("TTL", "k"),
		// An absolute time already past deletes the key after replying.
		cmd("GETEX", "k", "EXAT", "1"), cmd("EXISTS", "k"),
		cmd("SET", "k", "v"), cmd("GETEX", "k", "PXAT", "1000"), cmd("EXISTS", "k"),
		cmd("LPUSH", "l", "a"), cmd("GETEX", "l"), cmd("GETEX", "l", "EX", "10"), cmd("GETEX", "l", "EX", "x"),
		cmd("GETEX", "l", "FOO"), cmd("GETEX"),
		// LCS.
		cmd("SET", "a", "ohmytext"), cmd("SET", "b", "mynewtext"),
		cmd("LCS", "a", "b"), cmd("LCS", "a", "b", "LEN"), cmd("LCS", "a", "b", "IDX"),
		cmd("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"), cmd("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
		cmd("LCS", "a", "b", "idx", "withmatchlen"), cmd("LCS", "a", "b", "WITHMATCHLEN"), cmd("LCS", "a", "b", "LEN", "WITHMATCHLEN"),
		cmd("LCS", "a", "b", "MINMATCHLEN", "-5", "IDX"), cmd("LCS", "a", "b", "MINMATCHLEN", "x"),
		cmd("LCS", "a", "b", "MINMATCHLEN"), cmd("LCS", "a", "b", "LEN", "IDX"), cmd("LCS", "a", "b", "IDX", "LEN"),
		cmd("LCS", "a", "b", "FOO"), cmd("LCS", "a", "nokey"), cmd("LCS", "nokey", "nokey2", "IDX"),
		cmd("LCS", "a", "nokey", "LEN"), cmd("LCS", "a", "a", "IDX", "WITHMATCHLEN"), cmd("LCS", "a", "l"),
		cmd("LCS", "l", "nokey", "FOO"), cmd("LCS", "a"),
		cmd("SET", "x", "AAAA"), cmd("SET", "y", "AA"), cmd("LCS", "x", "y", "IDX", "WITHMATCHLEN"),
		cmd("SET", "p", "abcXdefXghi"), cmd("SET", "q", "abcdefghi"), cmd("LCS", "p", "q", "IDX", "WITHMATCHLEN"),
		cmd("LCS", "q", "p", "IDX", "MINMATCHLEN", "3"), cmd("SET", "e", ""), cmd("LCS", "e", "q", "IDX"),
		cmd("SET", "bin", "a\x00b\xffc"), cmd("SET", "bin2", "\x00\xff"), cmd("LCS", "bin", "bin2"),
	})
}

// TestLCSRandomDiff compares LCS (string, LEN, IDX with its options) on
// random strings over small alphabets, where many longest common
// subsequences tie and the walk back decides which one Redis returns.
func TestLCSRandomDiff(t *testing.T) {
	const seed = 777
	r := rand.New(rand.NewPCG(seed, 9))
	t.Logf("seed %d", seed)
	str := func() string {
		b := make([]byte, r.IntN(25))
		alpha := 2 + r.IntN(4)
		for i := range b {
			b[i] = byte('a' + r.IntN(alpha))
		}
		return string(b)
	}
	var script []step
	for range 600 {
		script = append(script, cmd("SET", "a", str()), cmd("SET", "b", str()))
		args := []string{"LCS", "a", "b"}
		switch r.IntN(4) {
		case 0:
		case 1:
			args = append(args, "LEN")
		default:
			args = append(args, "IDX")
			if r.IntN(2) == 0 {
				args = append(args, "MINMATCHLEN", strconv.Itoa(r.IntN(4)))
			}
			if r.IntN(2) == 0 {
				args = append(args, "WITHMATCHLEN")
			}
		}
		script = append(script, cmd(args...))
	}
	runDiff(t, script)
}
