package store

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

func TestHashesDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("hset", "h", "f1", "v1", "f2", "v2", "f3", "v3"),
		cmd("hset", "h", "f2", "V2", "f4", "v4"),
		cmd("hgetall", "h"), cmd("hkeys", "h"), cmd("hvals", "h"),
		cmd("hset", "h", "f5"), cmd("hmset", "h", "f5"),
		cmd("hmset", "h", "f0", "v0", "f1", "x"),
		cmd("hget", "h", "f1"), cmd("hget", "h", "nope"), cmd("hget", "nokey", "f"),
		cmd("hmget", "h", "f1", "nope", "f2"), cmd("hmget", "nokey", "a", "b"),
		cmd("hlen", "h"), cmd("hlen", "nokey"),
		cmd("hexists", "h", "f1"), cmd("hexists", "h", "zz"), cmd("hexists", "nokey", "f"),
		cmd("hdel", "h", "f2", "nope", "f3"), cmd("hgetall", "h"),
		cmd("hset", "h", "f2", "again"), cmd("hgetall", "h"),
		cmd("hdel", "nokey", "a"),
		cmd("hincrby", "h", "n", "5"), cmd("hincrby", "h", "n", "-7"),
		cmd("hincrby", "h", "f1", "1"), cmd("hincrby", "h", "n", "x"),
		cmd("hincrby", "h", "n", "9223372036854775807"),
		cmd("hset", "h", "m", "9223372036854775800"), cmd("hincrby", "h", "m", "100"),
		cmd("hincrby", "new", "c", "3"), cmd("hgetall", "new"),
		cmd("hgetall", "h"),
		cmd("hdel", "new", "c"), cmd("exists", "new"),
		cmd("hgetall", "nokey"), cmd("hkeys", "nokey"), cmd("hvals", "nokey"),
		cmd("set", "s", "v"),
		cmd("hset", "s", "a", "b"), cmd("hmset", "s", "a", "b"), cmd("hget", "s", "a"),
		cmd("hmget", "s", "a"), cmd("hdel", "s", "a"), cmd("hgetall", "s"), cmd("hkeys", "s"),
		cmd("hvals", "s"), cmd("hlen", "s"), cmd("hexists", "s", "a"), cmd("hincrby", "s", "a", "1"),
		cmd("hget", "h"),
	})
}

// xHashReply is an xstep for HGETALL, HKEYS or HVALS: exact while Redis
// holds the hash as a listpack (insertion order), as a multiset of pairs
// (or elements) once it is a hash table.
func xHashReply(args ...string) xstep {
	return xstep{args: args, judge: func(s *Store, rc *redistest.Conn) func(got, want string) error {
		if enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", args[1])); enc != "hashtable" {
			return nil
		}
		if strings.EqualFold(args[0], "hgetall") {
			return samePairs
		}
		return sameElems
	}}
}

// xHRandField is an xstep for HRANDFIELD: deterministic replies (errors, a
// missing key, a count of 0 or one covering the hash) must match, in order
// while the hash is a listpack; random picks must be valid (fields of the
// hash with their values, distinct for a positive count) and of Redis's
// shape.
func xHRandField(args ...string) xstep {
	return xstep{args: args, judge: func(s *Store, rc *redistest.Conn) func(got, want string) error {
		v := s.keys[args[1]]
		if v == nil || v.kind != kindHash || len(args) > 4 {
			return nil
		}
		var fields []string
		vals := map[string]string{}
		pos := map[string]int{}
		v.hash.each(func(en *hashEntry) {
			pos[en.field] = len(fields)
			fields = append(fields, en.field)
			vals[en.field] = string(en.val)
		})
		count, hasCount := countArg(args, 2)
		withValues := len(args) == 4 && strings.EqualFold(args[3], "withvalues")
		enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", args[1]))
		if hasCount && count >= int64(len(fields)) {
			switch {
			case enc != "hashtable":
				return nil
			case withValues:
				return samePairs
			}
			return sameElems
		}
		return both(func(raw string) error {
			if !hasCount {
				f, ok := bulkText(raw)
				if _, in := pos[f]; !ok || !in {
					return fmt.Errorf("%q is no field", f)
				}
				return nil
			}
			elems, ok := bulksOf(raw)
			if !ok {
				return fmt.Errorf("not an array of bulks")
			}
			per := 1
			if withValues {
				per = 2
			}
			n := count
			if n < 0 {
				n = -n
			}
			if int64(len(elems)) != n*int64(per) {
				return fmt.Errorf("%d elements for count %d", len(elems), count)
			}
			seen := map[string]bool{}
			for i := 0; i < len(elems); i += per {
				f := elems[i]
				if _, in := pos[f]; !in || (withValues && elems[i+1] != vals[f]) {
					return fmt.Errorf("bad pick %q", elems[i:i+per])
				}
				if count > 0 && seen[f] {
					return fmt.Errorf("repeated pick %q", f)
				}
				seen[f] = true
			}
			return nil
		})
	}}
}

func TestHashesMoreDiff(t *testing.T) {
	script := []xstep{
		x("hsetnx", "h", "f", "v"), x("hsetnx", "h", "f", "w"), x("hget", "h", "f"),
		x("hsetnx", "h", "g", ""), xHashReply("hgetall", "h"), x("hsetnx", "h", "f"), x("hsetnx", "h"),
		x("set", "s", "v"), x("hsetnx", "s", "f", "v"),
		x("hstrlen", "h", "f"), x("hstrlen", "h", "g"), x("hstrlen", "h", "nope"), x("hstrlen", "nokey", "f"),
		x("hstrlen", "s", "f"), x("hset", "h", "n", "-12345", "bin", "a\x00b\r\n"), x("hstrlen", "h", "n"),
		x("hstrlen", "h", "bin"), x("hstrlen", "h"), x("hstrlen", "h", "f", "g"),
		// HINCRBYFLOAT: long double arithmetic and Redis's formatting.
		x("hincrbyfloat", "h", "x", "10.5"), x("hincrbyfloat", "h", "x", "0.1"), x("hincrbyfloat", "h", "x", "-10.6"),
		x("hincrbyfloat", "h", "y", "5.0e3"), x("hincrbyfloat", "h", "y", "2.0e2"), x("hincrbyfloat", "h", "y", "-5200"),
		x("hincrbyfloat", "h", "z", "0.1"), x("hincrbyfloat", "h", "z", "0.2"), x("hincrbyfloat", "h", "z", "1e-20"),
		x("hincrbyfloat", "h", "n", "1"), x("hincrbyfloat", "h", "n", "1.5"),
		x("hincrbyfloat", "h", "big", "1e300"), x("hincrbyfloat", "h", "big", "1e300"), x("hstrlen", "h", "big"),
		x("hincrbyfloat", "h", "f", "1"), x("hincrbyfloat", "h", "g", "1"),
		x("hincrbyfloat", "h", "x", "abc"), x("hincrbyfloat", "h", "x", ""), x("hincrbyfloat", "h", "x", " 1"),
		x("hincrbyfloat", "h", "x", "1 "), x("hincrbyfloat", "h", "x", "inf"), x("hincrbyfloat", "h", "x", "-infinity"),
		x("hincrbyfloat", "h", "x", "nan"), x("hincrbyfloat", "h", "x", "1e5000"), x("hincrbyfloat", "h", "x", "0x10"),
		x("hincrbyfloat", "h", "x", "1e-5000"), x("hincrbyfloat", "h", "x", "+.5"), x("hincrbyfloat", "h", "x", "5."),
		x("hset", "h", "inf", "inf"), x("hincrbyfloat", "h", "inf", "1"), x("hget", "h", "inf"),
		x("hset", "h", "max", "1.18e4932"), x("hincrbyfloat", "h", "max", "1.18e4932"), x("hincrbyfloat", "h", "max", "-1"),
		x("hset", "h", "sp", " 2"), x("hincrbyfloat", "h", "sp", "1"),
		x("hincrbyfloat", "new", "f", "-0.0"), x("hgetall", "new"), x("hincrbyfloat", "new2", "f", "abc"),
		x("exists", "new2"), x("hincrbyfloat", "s", "f", "1"), x("hincrbyfloat", "h", "x"),
		xHashReply("hgetall", "h"),
		// HRANDFIELD.
		x("hrandfield", "nokey"), x("hrandfield", "nokey", "3"), x("hrandfield", "nokey", "-3", "withvalues"),
		x("hrandfield", "s"), x("hrandfield", "s", "1"), x("hrandfield", "nokey", "1", "x"),
		x("hrandfield", "h", "x"), x("hrandfield", "h", "1", "withvalues", "x"), x("hrandfield", "h", "1", "values"),
		x("hrandfield", "h", "-9223372036854775808"), x("hrandfield", "h", "4611686018427387904", "withvalues"),
		x("hrandfield", "h", "-4611686018427387904", "withvalues"), x("hrandfield", "nokey", "4611686018427387904", "withvalues"),
		x("hrandfield", "h", "0"), x("hrandfield", "h", "0", "withvalues"),
		xHRandField("hrandfield", "h", "100"), xHRandField("hrandfield", "h", "100", "WITHVALUES"),
		xHRandField("hrandfield", "h"), xHRandField("hrandfield", "h", "1"), xHRandField("hrandfield", "h", "1", "withvalues"),
		xHRandField("hrandfield", "h", "3"), xHRandField("hrandfield", "h", "5", "withvalues"),
		xHRandField("hrandfield", "h", "-20"), xHRandField("hrandfield", "h", "-20", "withvalues"),
		x("hset", "one", "f", "v"), x("hrandfield", "one"), x("hrandfield", "one", "-3", "withvalues"),
		x("hrandfield", "one", "1", "withvalues"),
		// A hash with a long value is a hash table in Redis.
		x("hset", "ht", "a", "1", "b", "2", "c", strings.Repeat("x", 65), "d", "4"), xHashReply("hgetall", "ht"),
		xHRandField("hrandfield", "ht", "2", "withvalues"), xHRandField("hrandfield", "ht", "10", "withvalues"),
		xHRandField("hrandfield", "ht", "-10"),
	}
	runDiffX(t, script)
}

// TestHashesRandomDiff runs a seeded random stream of hash commands against
// Redis (HRANDFIELD's picks checked for validity).
func TestHashesRandomDiff(t *testing.T) {
	const seed = 20240613
	r := rand.New(rand.NewPCG(seed, 6))
	t.Logf("seed %d", seed)
	keys := []string{"h1", "h2", "h3", "h4"}
	k := func() string {
		if r.IntN(25) == 0 {
			return []string{"str", "nokey"}[r.IntN(2)]
		}
		return keys[r.IntN(len(keys))]
	}
	f := func() string { return "f" + strconv.Itoa(r.IntN(10)) }
	val := func() string {
		switch r.IntN(4) {
		case 0:
			return strconv.Itoa(r.IntN(2000) - 1000)
		case 1:
			return strconv.FormatFloat(r.NormFloat64()*100, 'f', r.IntN(6), 64)
		case 2:
			return []string{"", "abc", "1e3", "0x1p3", " 5", "-0", "inf", "3.0"}[r.IntN(8)]
		}
		return "v" + strconv.Itoa(r.IntN(50))
	}
	incr := func() string {
		switch r.IntN(5) {
		case 0:
			return strconv.Itoa(r.IntN(200) - 100)
		case 1:
			return fmt.Sprintf("%de%d", r.IntN(100)-50, r.IntN(10)-5)
		case 2:
			return []string{"inf", "nan", "x", "0.1", "-0.1", "1e400", ".5"}[r.IntN(7)]
		}
		return strconv.FormatFloat(r.NormFloat64()*10, 'g', r.IntN(10)+1, 64)
	}
	count := func() string { return strconv.Itoa(r.IntN(16) - 5) }
	script := []xstep{x("set", "str", "v")}
	for range 3000 {
		var st xstep
		switch r.IntN(16) {
		case 0, 1:
			st = x("hset", k(), f(), val(), f(), val())
		case 2:
			st = x("hsetnx", k(), f(), val())
		case 3:
			st = x("hdel", k(), f(), f())
		case 4:
			st = x("hincrby", k(), f(), strconv.Itoa(r.IntN(20)-10))
		case 5, 6:
			st = x("hincrbyfloat", k(), f(), incr())
		case 7:
			st = x("hstrlen", k(), f())
		case 8:
			st = xHashReply("hgetall", k())
		case 9:
			st = xHRandField("hrandfield", k())
		case 10:
			st = xHRandField("hrandfield", k(), count())
		case 11:
			st = xHRandField("hrandfield", k(), count(), "withvalues")
		case 12:
			st = x("hget", k(), f())
		case 13:
			st = x("hlen", k())
		case 14:
			st = x("hmget", k(), f(), f())
		case 15:
			if r.IntN(3) == 0 {
				st = x("del", k())
			} else {
				st = xHashReply("hkeys", k())
			}
		}
		script = append(script, st)
	}
	for _, key := range keys {
		script = append(script, xHashReply("hgetall", key))
	}
	runDiffX(t, script)
}
