package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestZSetLargeDiff runs the sorted-set commands whose replies are fully
// determined on sets of tens of thousands of members against Redis: the
// sizes at which the tree has inner levels, splits and merges its inner
// nodes, and the member dict grows and shrinks through many sizes. Scores
// repeat (ties order by member), and a set of equal scores takes BYLEX.
func TestZSetLargeDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 5))
	const pop = 30000
	member := func() string { return "m" + strconv.Itoa(r.IntN(pop)) }
	score := func() string {
		switch r.IntN(4) {
		case 0:
			return strconv.Itoa(r.IntN(2000)) // ties
		case 1:
			return strconv.FormatFloat(r.NormFloat64()*1e3, 'g', -1, 64)
		default:
			return strconv.FormatFloat(r.Float64()*1e6, 'g', -1, 64)
		}
	}
	bound := func() string {
		b := strconv.Itoa(r.IntN(1000000))
		switch r.IntN(5) {
		case 0:
			return "(" + b
		case 1:
			return []string{"-inf", "+inf"}[r.IntN(2)]
		}
		return b
	}
	var script []step
	add := func(args ...string) { script = append(script, step{args: args}) }
	for range 120 { // grow to about 25 000 members
		args := []string{"ZADD", "z"}
		for range 250 {
			args = append(args, score(), member())
		}
		add(args...)
	}
	lex := []string{"ZADD", "lx"}
	for i := range 12000 {
		lex = append(lex, "0", strconv.Itoa(r.IntN(1000000))+"-"+strconv.Itoa(i))
	}
	add(lex...)
	for range 2500 {
		lo := r.IntN(30000) - 2000
		switch r.IntN(14) {
		case 0:
			add("ZRANK", "z", member())
		case 1:
			add("ZREVRANK", "z", member())
		case 2:
			add("ZRANGE", "z", strconv.Itoa(lo), strconv.Itoa(lo+r.IntN(20)), "WITHSCORES")
		case 3:
			add("ZRANGEBYSCORE", "z", bound(), bound(), "WITHSCORES", "LIMIT", strconv.Itoa(r.IntN(5)), strconv.Itoa(r.IntN(15)))
		case 4:
			add("ZREVRANGEBYSCORE", "z", bound(), bound(), "LIMIT", strconv.Itoa(r.IntN(5)), strconv.Itoa(r.IntN(15)))
		case 5:
			add("ZCOUNT", "z", bound(), bound())
		case 6:
			add("ZSCORE", "z", member())
		case 7: // shrink by batches, merging leaves and inner nodes
			args := []string{"ZREM", "z"}
			for range 150 + r.IntN(300) {
				args = append(args, member())
			}
			add(args...)
		case 8:
			add("ZADD", "z", []string{"XX", "GT", "LT", "CH"}[r.IntN(4)], score(), member())
		case 9:
			add("ZREMRANGEBYRANK", "z", strconv.Itoa(lo), strconv.Itoa(lo+r.IntN(200)))
		case 10:
			add([]string{"ZPOPMIN", "ZPOPMAX"}[r.IntN(2)], "z", strconv.Itoa(r.IntN(30)))
		case 11:
			x, y := strconv.Itoa(r.IntN(1000000)), strconv.Itoa(r.IntN(1000000))
			add("ZRANGEBYLEX", "lx", "["+x, "("+y, "LIMIT", "0", "10")
		case 12:
			add("ZLEXCOUNT", "lx", "["+strconv.Itoa(r.IntN(1000000)), "+")
		default:
			args := []string{"ZADD", "z"}
			for range 100 + r.IntN(300) {
				args = append(args, score(), member())
			}
			add(args...)
		}
	}
	add("ZCARD", "z")
	add("ZRANGE", "z", "0", "-1", "WITHSCORES")
	runDiff(t, script)
}
