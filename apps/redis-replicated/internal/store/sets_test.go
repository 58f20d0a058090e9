package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
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
