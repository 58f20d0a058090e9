package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

func TestSetsDiff(t *testing.T) {
	script := []step{
		cmd("sadd", "i", "3", "1", "-5", "10", "2"),
		cmd("smembers", "i"),
		cmd("sadd", "i", "1", "7"), cmd("smembers", "i"),
		cmd("sadd", "m", "a", "b", "c", "1"),
		anyOrder("smembers", "m"),
		cmd("sadd", "i", "x"), anyOrder("smembers", "i"),
		cmd("srem", "i", "x", "nope"), anyOrder("smembers", "i"),
		cmd("sismember", "i", "3"), cmd("sismember", "i", "x"), cmd("sismember", "nokey", "x"),
		cmd("scard", "i"), cmd("scard", "nokey"),
		cmd("sadd", "z", "007", "-0", "+1"), anyOrder("smembers", "z"),
		cmd("srem", "z", "007", "-0", "+1"), cmd("exists", "z"),
		cmd("smembers", "nokey"), cmd("srem", "nokey", "a"),
		cmd("spop", "nokey"), cmd("spop", "nokey", "3"), cmd("spop", "i", "-1"),
		cmd("spop", "i", "x"), cmd("spop", "i", "1", "2"), cmd("spop", "i", "0"),
		cmd("srandmember", "nokey"), cmd("srandmember", "nokey", "3"),
		cmd("srandmember", "i", "x"), cmd("srandmember", "i", "0"),
		cmd("srandmember", "i", "-9223372036854775808"),
		cmd("srandmember", "i", "1", "2"),
		cmd("sadd", "one", "5"), cmd("srandmember", "one"), cmd("srandmember", "one", "-3"),
		cmd("srandmember", "one", "4"), cmd("spop", "one"), cmd("exists", "one"),
		cmd("sadd", "two", "5", "6"), cmd("spop", "two", "9"), cmd("exists", "two"),
		cmd("set", "s", "v"),
		cmd("sadd", "s", "a"), cmd("srem", "s", "a"), cmd("smembers", "s"), cmd("sismember", "s", "a"),
		cmd("scard", "s"), cmd("spop", "s"), cmd("spop", "s", "2"), cmd("srandmember", "s"),
		cmd("srandmember", "s", "2"),
	}
	// Crossing set-max-intset-entries turns an intset into a hash table.
	for i := range 520 {
		script = append(script, cmd("sadd", "many", strconv.Itoa(520-i)))
		if i == 510 || i == 511 {
			script = append(script, cmd("smembers", "many"))
		}
	}
	script = append(script, anyOrder("smembers", "many"), cmd("scard", "many"))
	runDiff(t, script)
}

// TestSetRandomDeterminism: stores given the same commands and Env seeds make
// the same SPOP and SRANDMEMBER picks.
func TestSetRandomDeterminism(t *testing.T) {
	run := func() (string, [32]byte) {
		s := New()
		e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(7, 9))}
		var out []byte
		for i := range 200 {
			execArgs(s, e, []string{"sadd", "k", "m" + strconv.Itoa(i), strconv.Itoa(i)})
		}
		for range 20 {
			out = append(out, execArgs(s, e, []string{"spop", "k"})...)
			out = append(out, execArgs(s, e, []string{"spop", "k", "3"})...)
			out = append(out, execArgs(s, e, []string{"srandmember", "k", "5"})...)
			out = append(out, execArgs(s, e, []string{"srandmember", "k", "-5"})...)
			out = append(out, execArgs(s, e, []string{"srandmember", "k"})...)
		}
		return string(out), s.Digest()
	}
	a, da := run()
	b, db := run()
	if a != b || da != db {
		t.Fatal("same seed, different picks")
	}
	s := New()
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(7, 9))}
	execArgs(s, e, []string{"sadd", "k", "a", "b", "c", "d"})
	got := execArgs(s, e, []string{"srandmember", "k", "3"})
	if string(got[:4]) != "*3\r\n" {
		t.Fatalf("srandmember 3: %q", got)
	}
	if got := string(execArgs(s, e, []string{"srandmember", "k", "-6"})); got[:4] != "*6\r\n" {
		t.Fatalf("srandmember -6: %q", got)
	}
	for range 4 {
		execArgs(s, e, []string{"spop", "k"})
	}
	if s.Len() != 0 {
		t.Fatal("emptied set kept its key")
	}
}

// redisSetEnc asks Redis how it encodes the set that a STORE form of a set
// command builds (storeArgs names it, with "__enc" as its destination),
// without changing anything else; "" when the result is empty.
func redisSetEnc(rc *redistest.Conn, storeArgs ...string) string {
	rc.Do(storeArgs...)
	enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", "__enc"))
	rc.Do("DEL", "__enc")
	return enc
}

// orderedIf compares exactly when ordered (Redis replies an intset's
// members in numeric order), as multisets otherwise (a hash table's order
// is Redis's own).
func orderedIf(ordered bool) func(got, want string) error {
	if ordered {
		return nil
	}
	return sameElems
}

// xSetReply is an xstep for a command replying a set (SMEMBERS, SINTER,
// SUNION, SDIFF): the order must match exactly when Redis's set (the key's,
// the smallest's for SINTER, the result's for SUNION and SDIFF) is an
// intset.
func xSetReply(args ...string) xstep {
	return xstep{args: args, judge: func(s *Store, rc *redistest.Conn) func(got, want string) error {
		switch strings.ToLower(args[0]) {
		case "smembers":
			enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", args[1]))
			return orderedIf(enc != "hashtable")
		case "sinter":
			// Redis walks the smallest set (the first of the smallest).
			best, bestN := "", int64(-1)
			for _, k := range args[1:] {
				if rc.Do("TYPE", k) != "+set\r\n" {
					return nil // missing (empty reply) or an error
				}
				n, _ := strconv.ParseInt(strings.TrimSpace(rc.Do("SCARD", k)[1:]), 10, 64)
				if bestN < 0 || n < bestN {
					best, bestN = k, n
				}
			}
			enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", best))
			return orderedIf(enc != "hashtable")
		}
		store := append([]string{args[0] + "store", "__enc"}, args[1:]...)
		return orderedIf(redisSetEnc(rc, store...) != "hashtable")
	}}
}

// setMembers returns key's members in s (nil: not a set).
func setMembers(s *Store, key string) []string {
	if v := s.keys[key]; v != nil && v.kind == kindSet {
		return slices.Clone(v.set.members)
	}
	return nil
}

// xSetPick is an xstep for SPOP or SRANDMEMBER, whose picks differ from
// Redis's: deterministic replies (errors, missing keys, a count of 0 or
// one taking the whole set) must match, in order when the copy Redis makes
// (SPOP's) or the set (SRANDMEMBER's) is an intset; random ones must be
// valid picks from the set, of the same shape as Redis's. After an SPOP,
// Redis's set is made the store's again.
func xSetPick(args ...string) xstep {
	pop := strings.EqualFold(args[0], "spop")
	st := xstep{args: args, judge: func(s *Store, rc *redistest.Conn) func(got, want string) error {
		pre := setMembers(s, args[1])
		count, hasCount := countArg(args, 2)
		if pre == nil || len(args) > 3 {
			return nil
		}
		if hasCount && count >= int64(len(pre)) {
			// SPOP replies a copy of the set, SRANDMEMBER the set itself.
			if pop {
				return orderedIf(redisSetEnc(rc, "sunionstore", "__enc", args[1]) != "hashtable")
			}
			enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", args[1]))
			return orderedIf(enc != "hashtable")
		}
		in := map[string]bool{}
		for _, m := range pre {
			in[m] = true
		}
		return both(func(raw string) error {
			if !hasCount {
				m, ok := bulkText(raw)
				if !ok || !in[m] {
					return fmt.Errorf("%q is no member", m)
				}
				return nil
			}
			ms, ok := bulksOf(raw)
			if !ok {
				return fmt.Errorf("not an array of members")
			}
			want := count
			if count < 0 {
				want = -count
			}
			if int64(len(ms)) != want {
				return fmt.Errorf("%d picks for count %d", len(ms), count)
			}
			seen := map[string]bool{}
			for _, m := range ms {
				if !in[m] || (count > 0 && seen[m]) {
					return fmt.Errorf("bad pick %q", m)
				}
				seen[m] = true
			}
			return nil
		})
	}}
	if pop {
		st.after = func(rc *redistest.Conn, s *Store) { syncSet(rc, s, args[1]) }
	}
	return st
}

// syncSet makes Redis's key the store's set again, encoding included (a
// hash table is forced by creating it with a member that is no integer).
func syncSet(rc *redistest.Conn, s *Store, key string) {
	rc.Do("DEL", key)
	v := s.keys[key]
	if v == nil || v.kind != kindSet {
		return
	}
	const marker = "\x00not-an-int"
	args := []string{"SADD", key}
	if !v.set.intset {
		args = append(args, marker)
	}
	rc.Do(append(args, v.set.members...)...)
	if !v.set.intset {
		rc.Do("SREM", key, marker)
	}
	if v.expireAt != 0 {
		rc.Do("PEXPIREAT", key, strconv.FormatInt(v.expireAt, 10))
	}
}

// xSetEncodings checks that every set key of the store has the encoding
// Redis gives it (intset or hash table), and that Redis has no other sets.
func xSetEncodings(keys ...string) xstep {
	return xstep{args: []string{"DBSIZE"}, judge: func(s *Store, rc *redistest.Conn) func(got, want string) error {
		for _, k := range keys {
			enc, _ := bulkText(rc.Do("OBJECT", "ENCODING", k))
			var mine string
			if v := s.keys[k]; v != nil && v.kind == kindSet {
				mine = "hashtable"
				if v.set.intset {
					mine = "intset"
				}
			}
			if rc.Do("TYPE", k) != "+set\r\n" {
				enc = ""
			}
			if enc != mine {
				return func(string, string) error { return fmt.Errorf("%s: encoding %q, Redis %q", k, mine, enc) }
			}
		}
		return nil
	}}
}

func TestSetOpsDiff(t *testing.T) {
	var big []string
	for i := range 600 {
		big = append(big, strconv.Itoa(600-i))
	}
	script := []xstep{
		x("sadd", "i1", "5", "3", "1", "-2", "10"),
		x("sadd", "i2", "3", "4", "5", "10", "100"),
		x("sadd", "h1", "a", "3", "b", "5", "1"),
		x("sadd", "h2", "b", "c", "5"),
		x("set", "str", "v"),
		x("lpush", "list", "a"),
		// SINTER: smallest set's order; missing key: empty; every key is
		// type-checked first.
		xSetReply("sinter", "i1", "i2"), xSetReply("sinter", "i2", "i1"),
		xSetReply("sinter", "h1", "i1"), xSetReply("sinter", "i1", "h1"),
		xSetReply("sinter", "h1", "h2"), xSetReply("sinter", "i1"), xSetReply("sinter", "h1", "h1"),
		x("sinter", "i1", "nokey"), x("sinter", "nokey", "str"), x("sinter", "str", "nokey"),
		x("sinter", "i1", "list"), x("sinter", "nokey"),
		xSetReply("sunion", "i1", "i2"), xSetReply("sunion", "h1", "i1"), xSetReply("sunion", "nokey", "i2", "nokey"),
		x("sunion", "nokey"), x("sunion", "i1", "str"), x("sunion", "nokey", "str"),
		xSetReply("sdiff", "i1", "i2"), xSetReply("sdiff", "h1", "h2"), xSetReply("sdiff", "h1", "h2", "nokey", "i1"),
		x("sdiff", "i1", "i1"), x("sdiff", "i1", "i2", "i1"), x("sdiff", "nokey", "i1"), x("sdiff", "i1", "str"),
		x("sdiff", "nokey", "str"), xSetReply("sdiff", "i1"), xSetReply("sdiff", "i1", "nokey"),
		// STORE forms: the result replaces any value and its TTL; empty
		// deletes the destination.
		x("sinterstore", "d", "i1", "i2"), xSetReply("smembers", "d"), x("type", "d"),
		x("expire", "d", "100"), x("sunionstore", "d", "i1", "i2"), x("ttl", "d"), xSetReply("smembers", "d"),
		x("sdiffstore", "str2", "h1", "h2"), xSetReply("smembers", "str2"),
		x("set", "dst", "x"), x("sunionstore", "dst", "h1", "h2"), x("type", "dst"), xSetReply("smembers", "dst"),
		x("sinterstore", "dst", "i1", "nokey"), x("exists", "dst"),
		x("sdiffstore", "dst", "i1", "i1"), x("exists", "dst"),
		x("sinterstore", "dst", "i1", "str"), x("sinterstore", "nokey", "nokey2"), x("exists", "nokey"),
		x("sunionstore", "i1", "i1", "i2"), xSetReply("smembers", "i1"),
		x("sdiffstore", "i2", "i2", "h2"), xSetReply("smembers", "i2"),
		x("sinterstore", "h1", "h1"), xSetReply("smembers", "h1"),
		// Encodings: an all-integer result is an intset, whatever its
		// sources were; SDIFF's second algorithm keeps the first set's.
		x("sadd", "m", "x", "1", "2", "3", "4", "5", "6", "7", "8", "9"),
		x("sadd", "mx", "x"), x("sadd", "m1", "1"),
		x("sdiffstore", "r1", "m", "mx"), xSetReply("smembers", "r1"),
		x("sdiffstore", "r2", "m", "mx", "m1"), xSetReply("smembers", "r2"),
		xSetReply("sdiff", "m", "mx"), xSetReply("sdiff", "m", "mx", "m1"),
		x("sinterstore", "r3", "m", "m"), xSetReply("smembers", "r3"),
		x("srem", "m", "x"), x("sunionstore", "r4", "m"), xSetReply("smembers", "r4"),
		xSetEncodings("i1", "i2", "h1", "h2", "d", "dst", "str2", "m", "r1", "r2", "r3", "r4"),
		// SPOP and SRANDMEMBER with a count over a hash table of integers
		// reply a fresh intset: in order.
		xSetPick("spop", "m", "100"), x("exists", "m"),
		x("sadd", "m", "x", "9", "8", "7"), x("srem", "m", "x"),
		xSetPick("srandmember", "m", "3"), xSetPick("srandmember", "m", "4"),
		// SPOP rebuilds the set when few members stay: a fresh encoding.
		x("sadd", "p", "x", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"), x("srem", "p", "x"),
		xSetPick("spop", "p", "11"), xSetEncodings("p"), x("sadd", "p", "-1", "0"), xSetReply("smembers", "p"),
		x("sadd", "q", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"),
		xSetPick("spop", "q", "11"), xSetPick("spop", "q", "1"), xSetPick("spop", "q", "3"),
		xSetPick("spop", "h2", "2"), xSetEncodings("h2"), xSetReply("smembers", "h2"),
		xSetPick("srandmember", "h1", "2"), xSetPick("srandmember", "h1", "-7"), xSetPick("srandmember", "h1"),
		xSetPick("spop", "h1"), xSetPick("srandmember", "h1", "0"), xSetPick("spop", "h1", "0"),
		// SMOVE.
		x("sadd", "mv", "1", "2", "a"), x("sadd", "mv2", "5"),
		x("smove", "nokey", "str", "1"), x("smove", "str", "mv", "1"), x("smove", "mv", "str", "1"),
		x("smove", "mv", "mv2", "zz"), x("smove", "mv", "mv", "1"), x("smove", "mv", "mv", "zz"),
		x("smove", "mv", "mv2", "1"), xSetReply("smembers", "mv2"), x("smove", "mv", "mv2", "a"),
		xSetReply("smembers", "mv2"), x("smove", "mv", "new", "2"), x("exists", "mv"), xSetReply("smembers", "new"),
		x("sadd", "new", "-7"), xSetReply("smembers", "new"), x("smove", "mv2", "new2", "a"), x("sadd", "new2", "9"),
		xSetEncodings("mv", "mv2", "new", "new2"),
		// SMISMEMBER.
		x("smismember", "mv2", "1", "a", "nope", "5"), x("smismember", "nokey", "a", "b"),
		x("smismember", "str", "a"), x("smismember", "mv2"),
		// SINTERCARD.
		x("sintercard", "2", "i1", "i2"), x("sintercard", "1", "h1"), x("sintercard", "2", "i1", "nokey"),
		x("sintercard", "2", "i1", "i2", "limit", "1"), x("sintercard", "2", "i1", "i2", "LIMIT", "0"),
		x("sintercard", "2", "i1", "i2", "limit", "100"), x("sintercard", "2", "i1", "i2", "limit", "1", "limit", "2"),
		x("sintercard", "0", "i1"), x("sintercard", "-1", "i1"), x("sintercard", "x", "i1"), x("sintercard", "01", "i1"),
		x("sintercard", "9223372036854775808", "i1"), x("sintercard", "3", "i1", "i2"),
		x("sintercard", "1", "i1", "limit"), x("sintercard", "1", "i1", "limit", "-1"), x("sintercard", "1", "i1", "limit", "x"),
		x("sintercard", "1", "i1", "foo"), x("sintercard", "1", "str"), x("sintercard", "2", "nokey", "str"),
		x("sintercard", "1", "nokey", "str"), x("sintercard", "1", "i1", "i2"),
		// Arity.
		x("sinter"), x("sinterstore", "d"), x("sunion"), x("sunionstore", "d"), x("sdiff"), x("sdiffstore", "d"),
		x("sintercard", "1"), x("smove", "a", "b"), x("smismember", "a"),
		// Past set-max-intset-entries.
		x(append([]string{"sadd", "big"}, big...)...), x("sadd", "small", "7", "3", "1000", "-1"),
		xSetReply("sinter", "big", "small"), xSetReply("sinter", "small", "big"),
		x("sinterstore", "bs", "big", "small"), xSetReply("smembers", "bs"),
		x("sunionstore", "bu", "big", "small"), x("scard", "bu"),
		x("sdiffstore", "bd", "big", "small"), x("scard", "bd"), xSetReply("sdiff", "small", "big"),
		x("sintercard", "2", "big", "small"), x("sintercard", "2", "big", "big", "limit", "550"),
		xSetEncodings("big", "small", "bs", "bu", "bd"),
		xSetPick("srandmember", "big", "-5"), xSetPick("srandmember", "big", "5"),
		xSetPick("spop", "big", "3"), xSetPick("spop", "big", "590"), xSetEncodings("big"),
		xSetReply("smembers", "big"),
	}
	runDiffX(t, script)
}

// TestSetsRandomDiff runs a seeded random stream of set commands against
// Redis: orders that Redis leaves to its hash tables are compared as
// multisets, random picks for validity (SPOP then resyncs Redis).
func TestSetsRandomDiff(t *testing.T) {
	const seed = 20240612
	r := rand.New(rand.NewPCG(seed, 5))
	t.Logf("seed %d", seed)
	keys := []string{"s1", "s2", "s3", "s4", "s5"}
	member := func() string {
		if r.IntN(3) == 0 {
			return []string{"a", "b", "c", "xy", "", "07", "-0", "+1", "1.5"}[r.IntN(9)]
		}
		return strconv.Itoa(r.IntN(16) - 3)
	}
	k := func() string {
		if r.IntN(25) == 0 {
			return []string{"str", "nokey"}[r.IntN(2)]
		}
		return keys[r.IntN(len(keys))]
	}
	ks := func(min int) []string {
		out := []string{}
		for range min + r.IntN(3) {
			out = append(out, k())
		}
		return out
	}
	count := func() string { return strconv.Itoa(r.IntN(14) - 4) }
	script := []xstep{x("set", "str", "v")}
	for range 3000 {
		var st xstep
		switch r.IntN(22) {
		case 0, 1, 2:
			args := []string{"sadd", k()}
			for range 1 + r.IntN(4) {
				args = append(args, member())
			}
			st = x(args...)
		case 3:
			st = x("srem", k(), member(), member())
		case 4:
			st = xSetReply("smembers", k())
		case 5:
			st = xSetReply(append([]string{"sinter"}, ks(1)...)...)
		case 6:
			st = xSetReply(append([]string{"sunion"}, ks(1)...)...)
		case 7:
			st = xSetReply(append([]string{"sdiff"}, ks(1)...)...)
		case 8:
			st = x(append([]string{"sinterstore", k()}, ks(1)...)...)
		case 9:
			st = x(append([]string{"sunionstore", k()}, ks(1)...)...)
		case 10:
			st = x(append([]string{"sdiffstore", k()}, ks(1)...)...)
		case 11:
			keys := ks(1)
			args := append([]string{"sintercard", strconv.Itoa(len(keys))}, keys...)
			if r.IntN(2) == 0 {
				args = append(args, "LIMIT", strconv.Itoa(r.IntN(4)))
			}
			st = x(args...)
		case 12:
			st = x("smove", k(), k(), member())
		case 13:
			st = x("smismember", k(), member(), member(), member())
		case 14:
			st = xSetPick("srandmember", k(), count())
		case 15:
			st = xSetPick("spop", k(), count())
		case 16:
			st = xSetPick("spop", k())
		case 17:
			st = xSetPick("srandmember", k())
		case 18:
			st = x("scard", k())
		case 19:
			st = x("sismember", k(), member())
		case 20:
			if r.IntN(4) == 0 {
				st = x("del", k())
			} else {
				st = x("exists", k())
			}
		case 21:
			st = xSetEncodings(keys...)
		}
		script = append(script, st)
	}
	for _, key := range keys {
		script = append(script, xSetReply("smembers", key))
	}
	script = append(script, xSetEncodings(keys...))
	runDiffX(t, script)
}

// TestSetOpsDeterminism: two stores given the same commands and seeds
// reach the same state (digest) and replies, new commands included.
func TestSetOpsDeterminism(t *testing.T) {
	run := func() (string, [32]byte) {
		s := New()
		e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(11, 12))}
		r := rand.New(rand.NewPCG(5, 6))
		var out []byte
		for range 3000 {
			k := func() string { return "k" + strconv.Itoa(r.IntN(4)) }
			m := strconv.Itoa(r.IntN(40))
			if r.IntN(3) == 0 {
				m = "m" + m
			}
			var args []string
			switch r.IntN(8) {
			case 0, 1:
				args = []string{"sadd", k(), m, m + "0"}
			case 2:
				args = []string{"spop", k(), strconv.Itoa(r.IntN(6))}
			case 3:
				args = []string{"srandmember", k(), strconv.Itoa(r.IntN(10) - 5)}
			case 4:
				args = []string{"sunionstore", k(), k(), k()}
			case 5:
				args = []string{"sdiffstore", k(), k(), k()}
			case 6:
				args = []string{"smove", k(), k(), m}
			case 7:
				args = []string{"sinterstore", k(), k(), k()}
			}
			out = append(out, execArgs(s, e, args)...)
		}
		return string(out), s.Digest()
	}
	a, da := run()
	b, db := run()
	if a != b || da != db {
		t.Fatal("same commands and seeds, different replies or state")
	}
}
