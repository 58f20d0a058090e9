package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// listsScripts are differential scripts for the list commands beyond the
// basics of TestListsDiff.
var listsScripts = map[string][]step{
	"pushx": {
		cmd("LPUSHX", "l", "a"), cmd("RPUSHX", "l", "a", "b"), cmd("EXISTS", "l"),
		cmd("RPUSH", "l", "x"),
		cmd("LPUSHX", "l", "a", "b"), cmd("RPUSHX", "l", "c", "d"),
		cmd("LRANGE", "l", "0", "-1"),
		cmd("LPUSHX", "l"), cmd("RPUSHX"),
		cmd("SET", "s", "v"), cmd("LPUSHX", "s", "a"), cmd("RPUSHX", "s", "a"),
	},
	"linsert": {
		cmd("LINSERT", "l", "BEFORE", "a", "b"),
		cmd("LINSERT", "l", "middle", "a", "b"),
		cmd("RPUSH", "l", "a", "b", "c", "b"),
		cmd("LINSERT", "l", "BEFORE", "b", "x"),
		cmd("LINSERT", "l", "after", "b", "y"),
		cmd("LINSERT", "l", "AfTeR", "b", "z"),
		cmd("LINSERT", "l", "before", "a", "first"),
		cmd("LINSERT", "l", "after", "b", "last"),
		cmd("LINSERT", "l", "after", "nope", "q"),
		cmd("LINSERT", "l", "around", "nope", "q"),
		cmd("LRANGE", "l", "0", "-1"),
		cmd("LINSERT", "l", "before", "a"),
		cmd("SET", "s", "v"),
		cmd("LINSERT", "s", "before", "a", "b"),
		cmd("LINSERT", "s", "sideways", "a", "b"),
	},
	"lpos": {
		cmd("LPOS", "l", "a"), cmd("LPOS", "l", "a", "COUNT", "0"),
		cmd("LPOS", "l", "a", "RANK", "0"),
		cmd("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c", "a"),
		cmd("LPOS", "l", "a"), cmd("LPOS", "l", "c"), cmd("LPOS", "l", "zz"),
		cmd("LPOS", "l", "c", "RANK", "2"), cmd("LPOS", "l", "c", "RANK", "-1"),
		cmd("LPOS", "l", "c", "RANK", "-3"), cmd("LPOS", "l", "c", "RANK", "4"),
		cmd("LPOS", "l", "c", "COUNT", "0"), cmd("LPOS", "l", "c", "COUNT", "2"),
		cmd("LPOS", "l", "c", "COUNT", "2", "RANK", "2"),
		cmd("LPOS", "l", "c", "COUNT", "0", "RANK", "-1"),
		cmd("LPOS", "l", "c", "COUNT", "10", "RANK", "-2"),
		cmd("LPOS", "l", "c", "MAXLEN", "3"), cmd("LPOS", "l", "c", "MAXLEN", "4"),
		cmd("LPOS", "l", "c", "MAXLEN", "0", "COUNT", "0"),
		cmd("LPOS", "l", "c", "MAXLEN", "7", "COUNT", "0"),
		cmd("LPOS", "l", "a", "RANK", "-1", "MAXLEN", "1"),
		cmd("LPOS", "l", "a", "RANK", "-1", "MAXLEN", "2", "COUNT", "0"),
		cmd("LPOS", "l", "zz", "COUNT", "3"),
		cmd("LPOS", "l", "1"), cmd("LPOS", "l", "01"), cmd("LPOS", "l", "3"),
		cmd("LPOS", "l", "c", "RANK", "0"),
		cmd("LPOS", "l", "c", "RANK", "x"),
		cmd("LPOS", "l", "c", "RANK", "-9223372036854775808"),
		cmd("LPOS", "l", "c", "RANK", "-9223372036854775808", "COUNT", "1"),
		cmd("LPOS", "l", "c", "RANK", "-9223372036854775808", "COUNT", "0"),
		cmd("LPOS", "l", "c", "RANK", "-9223372036854775807"),
		cmd("LPOS", "l", "c", "RANK", "9223372036854775807"),
		cmd("LPOS", "l", "c", "COUNT", "-1"), cmd("LPOS", "l", "c", "COUNT", "x"),
		cmd("LPOS", "l", "c", "MAXLEN", "-1"), cmd("LPOS", "l", "c", "MAXLEN", "x"),
		cmd("LPOS", "l", "c", "RANK"), cmd("LPOS", "l", "c", "FOO", "1"),
		cmd("LPOS", "l", "c", "COUNT", "1", "COUNT", "2"),
		cmd("LPOS", "l"),
		cmd("SET", "s", "v"), cmd("LPOS", "s", "a"), cmd("LPOS", "s", "a", "RANK", "0"),
		cmd("LPOS", "s", "a", "COUNT", "1"),
	},
	"lmove": {
		cmd("LMOVE", "a", "b", "LEFT", "RIGHT"), cmd("EXISTS", "a", "b"),
		cmd("RPOPLPUSH", "a", "b"), cmd("EXISTS", "a", "b"),
		cmd("RPUSH", "a", "1", "2", "3"),
		cmd("LMOVE", "a", "b", "LEFT", "RIGHT"), cmd("LMOVE", "a", "b", "right", "left"),
		cmd("LRANGE", "a", "0", "-1"), cmd("LRANGE", "b", "0", "-1"),
		cmd("LMOVE", "a", "b", "LEFT", "LEFT"), cmd("EXISTS", "a"),
		cmd("LRANGE", "b", "0", "-1"),
		cmd("LMOVE", "b", "b", "LEFT", "RIGHT"), cmd("LRANGE", "b", "0", "-1"),
		cmd("LMOVE", "b", "b", "RIGHT", "RIGHT"), cmd("LRANGE", "b", "0", "-1"),
		cmd("RPOPLPUSH", "b", "b"), cmd("LRANGE", "b", "0", "-1"),
		cmd("RPUSH", "one", "x"), cmd("LMOVE", "one", "one", "LEFT", "RIGHT"),
		cmd("LRANGE", "one", "0", "-1"),
		cmd("RPOPLPUSH", "b", "c"), cmd("LRANGE", "c", "0", "-1"),
		cmd("LMOVE", "a", "b", "UP", "RIGHT"), cmd("LMOVE", "b", "c", "LEFT", "DOWN"),
		cmd("LMOVE", "nokey", "c", "UP", "RIGHT"),
		cmd("SET", "s", "v"),
		cmd("LMOVE", "s", "b", "LEFT", "RIGHT"), cmd("LMOVE", "b", "s", "LEFT", "RIGHT"),
		cmd("LMOVE", "nokey", "s", "LEFT", "RIGHT"),
		cmd("RPOPLPUSH", "s", "b"), cmd("RPOPLPUSH", "b", "s"), cmd("RPOPLPUSH", "nokey", "s"),
		cmd("LRANGE", "b", "0", "-1"),
		cmd("LMOVE", "a", "b", "LEFT"), cmd("RPOPLPUSH", "a"),
	},
	"lmpop": {
		cmd("LMPOP", "2", "a", "b", "LEFT"),
		cmd("RPUSH", "b", "1", "2", "3", "4"),
		cmd("LMPOP", "2", "a", "b", "LEFT"),
		cmd("LMPOP", "2", "a", "b", "RIGHT", "COUNT", "2"),
		cmd("LMPOP", "2", "a", "b", "right", "count", "10"),
		cmd("EXISTS", "b"),
		cmd("RPUSH", "a", "x", "y"), cmd("RPUSH", "b", "z"),
		cmd("LMPOP", "1", "b", "LEFT", "COUNT", "5"),
		cmd("LMPOP", "3", "nokey", "a", "b", "LEFT", "COUNT", "1"),
		cmd("LMPOP", "0", "a", "LEFT"), cmd("LMPOP", "-1", "a", "LEFT"),
		cmd("LMPOP", "x", "a", "LEFT"), cmd("LMPOP", "3", "a", "LEFT"),
		cmd("LMPOP", "2", "a", "LEFT"), cmd("LMPOP", "1", "a", "UP"),
		cmd("LMPOP", "1", "a", "LEFT", "COUNT", "0"), cmd("LMPOP", "1", "a", "LEFT", "COUNT", "-1"),
		cmd("LMPOP", "1", "a", "LEFT", "COUNT", "x"), cmd("LMPOP", "1", "a", "LEFT", "COUNT"),
		cmd("LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"),
		cmd("LMPOP", "1", "a", "LEFT", "FOO"),
		cmd("LMPOP", "1", "a"), cmd("LMPOP", "1"),
		cmd("SET", "s", "v"),
		cmd("LMPOP", "2", "s", "a", "LEFT"), cmd("LMPOP", "2", "a", "s", "LEFT"),
		cmd("LMPOP", "2", "nokey", "s", "LEFT"),
		cmd("LRANGE", "a", "0", "-1"),
	},
}

func TestListsMoreDiff(t *testing.T) {
	for name, script := range listsScripts {
		t.Run(name, func(t *testing.T) { runDiff(t, script) })
	}
}

// TestListsRandomDiff runs a seeded random stream of list commands over a
// few keys (one of them a string) and compares every reply with Redis's.
func TestListsRandomDiff(t *testing.T) {
	for _, seed := range []uint64{7, 101, 202} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			keys := []string{"l1", "l2", "l3", "str"}
			elems := []string{"a", "b", "c", "1", "2", "01", "-1", ""}
			key := func() string { return keys[r.IntN(len(keys))] }
			el := func() string { return elems[r.IntN(len(elems))] }
			num := func(lo, hi int) string { return strconv.Itoa(lo + r.IntN(hi-lo+1)) }
			side := func() string { return []string{"LEFT", "RIGHT", "left"}[r.IntN(3)] }
			script := []step{cmd("SET", "str", "v")}
			for range 4000 {
				var c []string
				switch r.IntN(20) {
				case 0, 1:
					c = []string{"RPUSH", key(), el(), el()}
				case 2, 3:
					c = []string{"LPUSH", key(), el(), el(), el()}
				case 4:
					c = []string{[]string{"LPUSHX", "RPUSHX"}[r.IntN(2)], key(), el()}
				case 5:
					c = []string{"LINSERT", key(), []string{"BEFORE", "AFTER"}[r.IntN(2)], el(), el()}
				case 6:
					c = []string{"LPOS", key(), el()}
					for range r.IntN(3) {
						switch r.IntN(3) {
						case 0:
							c = append(c, "RANK", num(-3, 3))
						case 1:
							c = append(c, "COUNT", num(0, 3))
						default:
							c = append(c, "MAXLEN", num(0, 6))
						}
					}
				case 7:
					c = []string{"LMOVE", key(), key(), side(), side()}
				case 8:
					c = []string{"RPOPLPUSH", key(), key()}
				case 9:
					n := 1 + r.IntN(3)
					c = []string{"LMPOP", strconv.Itoa(n)}
					for range n {
						c = append(c, key())
					}
					c = append(c, side())
					if r.IntN(2) == 0 {
						c = append(c, "COUNT", num(1, 4))
					}
				case 10:
					c = []string{[]string{"LPOP", "RPOP"}[r.IntN(2)], key()}
					if r.IntN(2) == 0 {
						c = append(c, num(0, 4))
					}
				case 11:
					c = []string{"LSET", key(), num(-6, 6), el()}
				case 12:
					c = []string{"LREM", key(), num(-3, 3), el()}
				case 13:
					c = []string{"LTRIM", key(), num(-6, 6), num(-6, 6)}
				case 14:
					c = []string{"LINDEX", key(), num(-6, 6)}
				case 15:
					c = []string{"LLEN", key()}
				default:
					c = []string{"LRANGE", key(), "0", "-1"}
				}
				script = append(script, cmd(c...))
			}
			runDiff(t, script)
		})
	}
}
