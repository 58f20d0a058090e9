package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

func TestZSetsDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("zadd", "z", "1", "a", "2", "b", "1.5", "c", "0.1", "d", "1e20", "e", "-inf", "f", "+inf", "g"),
		cmd("zrange", "z", "0", "-1", "withscores"),
		cmd("zadd", "z", "1", "b", "1", "aa", "-0", "neg0", "3.0000000000000004", "p", "1e-300", "tiny"),
		cmd("zrange", "z", "0", "-1", "WITHSCORES"),
		cmd("zscore", "z", "neg0"), cmd("zscore", "z", "d"), cmd("zscore", "z", "nope"), cmd("zscore", "nokey", "a"),
		cmd("zadd", "z", "x", "a"), cmd("zadd", "z", "nan", "a"), cmd("zadd", "z", "1e400", "a"),
		cmd("zadd", "z", "1e-400", "a"), cmd("zadd", "z", " 1", "a"), cmd("zadd", "z", "1 ", "a"),
		cmd("zadd", "z", "0x10", "hex"), cmd("zadd", "z", "", "a"),
		cmd("zadd", "z", "1"), cmd("zadd", "z", "1", "a", "2"), cmd("zadd", "z", "nx", "xx", "1", "a"),
		cmd("zadd", "z", "nx", "gt", "1", "a"), cmd("zadd", "z", "gt", "lt", "1", "a"),
		cmd("zadd", "z", "incr", "1", "a", "2", "b"), cmd("zadd", "z", "nx"),
		cmd("zadd", "z", "nx", "5", "a", "5", "new1"), cmd("zscore", "z", "a"),
		cmd("zadd", "z", "xx", "5", "a", "5", "new2"), cmd("zscore", "z", "new2"),
		cmd("zadd", "z", "xx", "ch", "6", "a", "5", "new2"),
		cmd("zadd", "z", "gt", "ch", "1", "a", "7", "b"), cmd("zadd", "z", "lt", "ch", "1", "a", "70", "b"),
		cmd("zadd", "z", "incr", "2.5", "a"), cmd("zadd", "z", "incr", "nx", "2.5", "a"),
		cmd("zadd", "z", "incr", "xx", "1", "nope"), cmd("zadd", "z", "incr", "gt", "-1", "a"),
		cmd("zadd", "z", "incr", "0", "a"),
		cmd("zadd", "z", "incr", "-inf", "g"),
		cmd("zadd", "z", "ch", "CH", "incr", "1", "q"),
		cmd("zadd", "xxnew", "xx", "1", "a"), cmd("exists", "xxnew"),
		cmd("zadd", "xxnew", "xx", "incr", "1", "a"),
		cmd("zincrby", "z", "1.5", "a"), cmd("zincrby", "z", "x", "a"), cmd("zincrby", "z", "inf", "nn"),
		cmd("zincrby", "z", "-inf", "nn"), cmd("zincrby", "newz", "0.1", "m"),
		cmd("zcard", "z"), cmd("zcard", "nokey"),
		cmd("zrank", "z", "a"), cmd("zrank", "z", "f"), cmd("zrank", "z", "nope"), cmd("zrank", "nokey", "a"),
		cmd("zrevrank", "z", "a"), cmd("zrevrank", "z", "f"),
		cmd("zrange", "z", "0", "2"), cmd("zrange", "z", "-3", "-1", "withscores"),
		cmd("zrange", "z", "5", "2"), cmd("zrange", "z", "x", "2"), cmd("zrange", "z", "0", "1", "foo"),
		cmd("zrange", "z", "0", "-1", "rev"), cmd("zrange", "z", "0", "2", "rev", "withscores"),
		cmd("zrange", "z", "0", "1", "limit", "0", "1"),
		cmd("zrange", "z", "1", "2", "byscore"), cmd("zrange", "z", "(1", "2", "byscore", "withscores"),
		cmd("zrange", "z", "-inf", "+inf", "byscore", "limit", "2", "3"),
		cmd("zrange", "z", "-inf", "+inf", "byscore", "limit", "-1", "3"),
		cmd("zrange", "z", "-inf", "+inf", "byscore", "limit", "100", "3"),
		cmd("zrange", "z", "-inf", "+inf", "byscore", "limit", "1", "-1"),
		cmd("zrange", "z", "+inf", "-inf", "byscore", "rev", "limit", "1", "3", "withscores"),
		cmd("zrange", "z", "(5", "(1", "byscore", "rev"),
		cmd("zrange", "z", "x", "1", "byscore"), cmd("zrange", "z", "nan", "1", "byscore"),
		cmd("zrange", "z", "", "1", "byscore"), cmd("zrange", "z", "( 1", "1e400", "byscore"),
		cmd("zrange", "z", "0", "1", "limit", "0"), cmd("zrange", "z", "0", "1", "limit", "x", "1"),
		cmd("zrange", "z", "0", "1", "byscore", "byscore"), cmd("zrange", "z", "0", "1", "rev", "rev"),
		cmd("zrange", "nokey", "0", "1"), cmd("zrange", "nokey", "x", "1"),
		cmd("zrevrange", "z", "0", "3", "withscores"), cmd("zrevrange", "z", "0", "3", "limit", "0", "1"),
		cmd("zrevrange", "z", "0", "3", "rev"),
		cmd("zrangebyscore", "z", "1", "3", "withscores"), cmd("zrangebyscore", "z", "-inf", "inf", "limit", "1", "2"),
		cmd("zrangebyscore", "z", "1", "3", "byscore"),
		cmd("zrem", "z", "a", "nope", "b"), cmd("zrem", "nokey", "a"),
		cmd("zpopmin", "z"), cmd("zpopmin", "z", "2"), cmd("zpopmax", "z"), cmd("zpopmax", "z", "2"),
		cmd("zpopmin", "z", "0"), cmd("zpopmin", "z", "-1"), cmd("zpopmin", "z", "x"), cmd("zpopmin", "z", "1", "2"),
		cmd("zpopmin", "nokey"), cmd("zpopmin", "nokey", "-1"), cmd("zpopmin", "nokey", "0"),
		cmd("zpopmin", "z", "100"), cmd("exists", "z"),
		cmd("zadd", "r", "1", "a"), cmd("zrem", "r", "a"), cmd("exists", "r"),
		cmd("set", "s", "v"),
		cmd("zadd", "s", "1", "a"), cmd("zadd", "s", "x", "a"), cmd("zincrby", "s", "1", "a"), cmd("zrem", "s", "a"),
		cmd("zscore", "s", "a"), cmd("zcard", "s"), cmd("zrange", "s", "0", "1"), cmd("zrange", "s", "x", "1"),
		cmd("zrank", "s", "a"), cmd("zpopmin", "s"), cmd("zpopmax", "s", "0"),
	})
}

// zbig returns ZADD args adding n members m0..m{n-1} to key with scores
// i*step (so n > 128 makes Redis use its skiplist encoding).
func zbig(key string, n int, step float64) step {
	args := []string{"zadd", key}
	for i := range n {
		args = append(args, strconv.FormatFloat(float64(i)*step, 'g', -1, 64), "m"+strconv.Itoa(i))
	}
	return cmd(args...)
}

// zlex returns ZADD args adding members with score 0 to key.
func zlex(key string, members ...string) step {
	args := []string{"zadd", key}
	for _, m := range members {
		args = append(args, "0", m)
	}
	return cmd(args...)
}

func TestZSetCountAndRangeDiff(t *testing.T) {
	script := []step{
		cmd("zadd", "z", "1", "a", "2", "b", "2", "bb", "3", "c", "-inf", "ninf", "+inf", "pinf", "1.5", "x", "0", "zero"),
		cmd("set", "s", "v"),
		// ZCOUNT
		cmd("zcount", "z", "-inf", "+inf"), cmd("zcount", "z", "1", "2"), cmd("zcount", "z", "(1", "2"),
		cmd("zcount", "z", "(1", "(2"), cmd("zcount", "z", "2", "2"), cmd("zcount", "z", "(2", "2"),
		cmd("zcount", "z", "2", "(2"), cmd("zcount", "z", "3", "1"), cmd("zcount", "z", "inf", "inf"),
		cmd("zcount", "z", "-inf", "-inf"), cmd("zcount", "z", "(-inf", "(inf"), cmd("zcount", "z", "", "1"),
		cmd("zcount", "z", "(", "1"), cmd("zcount", "z", "  ", "1"), cmd("zcount", "z", " 1", "2"),
		cmd("zcount", "z", "1 ", "2"), cmd("zcount", "z", "x", "1"), cmd("zcount", "z", "1", "nan"),
		cmd("zcount", "z", "((1", "2"), cmd("zcount", "z", "1e400", "-1e400"), cmd("zcount", "z", "-1e400", "1e400"),
		cmd("zcount", "z", "0x1", "0x2"), cmd("zcount", "z", "1\x00junk", "2"), cmd("zcount", "z", "-0", "0"),
		cmd("zcount", "nokey", "0", "1"), cmd("zcount", "nokey", "x", "1"), cmd("zcount", "s", "0", "1"),
		cmd("zcount", "s", "x", "1"), cmd("zcount", "z", "1"), cmd("zcount", "z", "1", "2", "3"),
		// BYSCORE forms
		cmd("zrangebyscore", "z", "-inf", "+inf", "withscores"), cmd("zrangebyscore", "z", "(1", "3", "WITHSCORES"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "1", "2"), cmd("zrangebyscore", "z", "1", "3", "limit", "0", "0"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "0", "-1"), cmd("zrangebyscore", "z", "1", "3", "limit", "-1", "2"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "4", "2"), cmd("zrangebyscore", "z", "1", "3", "limit", "7", "2"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "8", "2"), cmd("zrangebyscore", "z", "1", "3", "limit", "9223372036854775807", "2"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "1", "9223372036854775807"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "1"), cmd("zrangebyscore", "z", "1", "3", "limit", "x", "1"),
		cmd("zrangebyscore", "z", "1", "3", "limit", "1", "x"), cmd("zrangebyscore", "z", "1", "3", "rev"),
		cmd("zrangebyscore", "z", "1", "3", "bylex"), cmd("zrangebyscore", "z", "3", "1"),
		cmd("zrangebyscore", "z", "1", "3", "withscores", "limit", "1", "1", "withscores"),
		cmd("zrevrangebyscore", "z", "+inf", "-inf", "withscores"), cmd("zrevrangebyscore", "z", "3", "(1"),
		cmd("zrevrangebyscore", "z", "(3", "(1", "limit", "1", "5", "withscores"), cmd("zrevrangebyscore", "z", "1", "3"),
		cmd("zrevrangebyscore", "z", "2", "2", "limit", "1", "1"), cmd("zrevrangebyscore", "z", "3", "1", "limit", "-1", "1"),
		cmd("zrevrangebyscore", "z", "x", "1"), cmd("zrevrangebyscore", "z", "3", "1", "rev"),
		cmd("zrevrangebyscore", "nokey", "3", "1"), cmd("zrevrangebyscore", "s", "3", "1"),
		cmd("zrange", "z", "(1", "+inf", "byscore", "limit", "1", "3", "withscores"),
		cmd("zrange", "z", "+inf", "(1", "byscore", "rev", "limit", "1", "3", "withscores"),
		cmd("zrange", "z", "2", "2", "BYSCORE", "REV"), cmd("zrange", "z", "1", "2", "byscore", "bylex"),
		cmd("zrange", "z", "1", "2", "bylex", "byscore"),
		// BYLEX on a set of equal scores
		zlex("l", "a", "b", "c", "d", "e", "f", "g", "aa", "", "B", "\x00", "ab"),
		cmd("zrangebylex", "l", "-", "+"), cmd("zrangebylex", "l", "[a", "[c"), cmd("zrangebylex", "l", "(a", "(c"),
		cmd("zrangebylex", "l", "[aa", "(b"), cmd("zrangebylex", "l", "(", "+"), cmd("zrangebylex", "l", "[", "[a"),
		cmd("zrangebylex", "l", "-", "(a"), cmd("zrangebylex", "l", "+", "-"), cmd("zrangebylex", "l", "-", "-"),
		cmd("zrangebylex", "l", "+", "+"), cmd("zrangebylex", "l", "[c", "[a"), cmd("zrangebylex", "l", "[c", "(c"),
		cmd("zrangebylex", "l", "[c", "[c"), cmd("zrangebylex", "l", "-", "+", "limit", "2", "3"),
		cmd("zrangebylex", "l", "-", "+", "limit", "2", "-1"), cmd("zrangebylex", "l", "-", "+", "limit", "-2", "3"),
		cmd("zrangebylex", "l", "-", "+", "limit", "20", "3"), cmd("zrangebylex", "l", "-", "+", "limit", "0", "0"),
		cmd("zrangebylex", "l", "-", "+", "withscores"), cmd("zrangebylex", "l", "a", "+"),
		cmd("zrangebylex", "l", "", "+"), cmd("zrangebylex", "l", "-x", "+"), cmd("zrangebylex", "l", "-", "+x"),
		cmd("zrangebylex", "l", "-\x00x", "+"), cmd("zrangebylex", "l", "[b\x00", "+"), cmd("zrangebylex", "l", "-", "+", "rev"),
		cmd("zrangebylex", "nokey", "-", "+"), cmd("zrangebylex", "nokey", "x", "+"), cmd("zrangebylex", "s", "-", "+"),
		cmd("zrevrangebylex", "l", "+", "-"), cmd("zrevrangebylex", "l", "[c", "[a"), cmd("zrevrangebylex", "l", "(c", "(a", "limit", "1", "1"),
		cmd("zrevrangebylex", "l", "-", "+"), cmd("zrevrangebylex", "l", "+", "-", "limit", "3", "100"),
		cmd("zrange", "l", "[b", "[f", "bylex"), cmd("zrange", "l", "[f", "[b", "bylex", "rev", "limit", "1", "2"),
		cmd("zrange", "l", "-", "+", "bylex", "withscores"), cmd("zrange", "l", "0", "-1", "bylex"),
		cmd("zrange", "l", "-", "+", "bylex", "limit", "1", "-1"),
		// ZLEXCOUNT
		cmd("zlexcount", "l", "-", "+"), cmd("zlexcount", "l", "[a", "[c"), cmd("zlexcount", "l", "(a", "(c"),
		cmd("zlexcount", "l", "+", "-"), cmd("zlexcount", "l", "[z", "+"), cmd("zlexcount", "l", "-", "(\x00"),
		cmd("zlexcount", "l", "a", "b"), cmd("zlexcount", "nokey", "-", "+"), cmd("zlexcount", "nokey", "x", "+"),
		cmd("zlexcount", "s", "-", "+"), cmd("zlexcount", "s", "x", "+"),
		// by rank
		cmd("zrange", "z", "0", "-1", "withscores"), cmd("zrange", "z", "-100", "100"), cmd("zrange", "z", "3", "3", "rev"),
		cmd("zrange", "z", "-1", "-1", "rev", "withscores"), cmd("zrange", "z", "9223372036854775807", "-9223372036854775808"),
		cmd("zrange", "z", "-9223372036854775808", "9223372036854775807", "rev"),
		cmd("zrange", "z", "0", "1", "limit", "0", "-1"), cmd("zrange", "z", "0", "1", "limit", "0", "-2"),
		cmd("zrevrange", "z", "1", "-2", "withscores"), cmd("zrevrange", "z", "0", "1", "byscore"),
		cmd("zrange", "z", "0", "x", "byscore"), cmd("zrange", "z", "x", "0"),
		// ZRANGESTORE
		cmd("zrangestore", "d", "z", "0", "-1"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zrangestore", "d", "z", "1", "3", "rev"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zrangestore", "d", "z", "(1", "3", "byscore", "limit", "1", "2"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zrangestore", "d", "z", "3", "(1", "byscore", "rev"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zrangestore", "d", "l", "[b", "[e", "bylex"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zrangestore", "d", "l", "[e", "[b", "bylex", "rev", "limit", "1", "2"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("set", "d", "x"), cmd("expire", "d", "100"),
		cmd("zrangestore", "d", "z", "0", "0"), cmd("type", "d"), cmd("ttl", "d"),
		cmd("zrangestore", "d", "z", "5", "1"), cmd("exists", "d"),
		cmd("zrangestore", "d", "z", "0", "0"), cmd("zrangestore", "d", "nokey", "0", "-1"), cmd("exists", "d"),
		cmd("zrangestore", "d", "z", "0", "-1", "withscores"), cmd("zrangestore", "d", "z", "0", "-1", "limit", "0", "1"),
		cmd("zrangestore", "d", "z", "[a", "+", "bylex", "withscores"), cmd("zrangestore", "d", "z", "a", "+", "bylex"),
		cmd("zrangestore", "d", "z", "x", "1", "byscore"), cmd("zrangestore", "d", "s", "0", "-1"),
		cmd("zrangestore", "s", "z", "0", "-1"), cmd("type", "s"), cmd("zrangestore", "z", "z", "1", "2"),
		cmd("zrange", "z", "0", "-1", "withscores"), cmd("zrangestore", "d", "z", "0"),
		cmd("zrangestore", "d", "z", "0", "-1", "foo"),
	}
	// A big set: Redis's skiplist encoding, several levels of ztree.
	script = append(script, zbig("big", 3000, 0.5), zbig("big", 500, -1),
		cmd("zcard", "big"), cmd("zcount", "big", "(100", "200"), cmd("zcount", "big", "-inf", "(0"),
		cmd("zrangebyscore", "big", "(100", "200", "withscores", "limit", "7", "5"),
		cmd("zrevrangebyscore", "big", "200", "(100", "withscores", "limit", "7", "5"),
		cmd("zrange", "big", "1234", "1240", "withscores"), cmd("zrange", "big", "-1240", "-1234", "rev", "withscores"),
		cmd("zrank", "big", "m1234"), cmd("zrevrank", "big", "m1234"), cmd("zrank", "big", "m499"),
		cmd("zrangestore", "bigd", "big", "-100", "(1000", "byscore"), cmd("zcard", "bigd"),
		cmd("zrange", "bigd", "0", "5", "withscores"), cmd("zrange", "bigd", "-5", "-1", "withscores"))
	big := []string{"zadd", "lbig"}
	for i := range 1000 {
		big = append(big, "0", fmt.Sprintf("k%04d", (i*7919)%1000))
	}
	script = append(script, cmd(big...),
		cmd("zlexcount", "lbig", "[k0100", "(k0200"), cmd("zrangebylex", "lbig", "(k0100", "[k0200", "limit", "90", "20"),
		cmd("zrevrangebylex", "lbig", "[k0200", "(k0100", "limit", "90", "20"), cmd("zrange", "lbig", "[k0990", "+", "bylex"))
	runDiff(t, script)
}

func TestZSetRemRangeDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("set", "s", "v"),
		cmd("zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"),
		cmd("zremrangebyrank", "z", "1", "2"), cmd("zrange", "z", "0", "-1", "withscores"),
		cmd("zremrangebyrank", "z", "-2", "-1"), cmd("zrange", "z", "0", "-1"),
		cmd("zremrangebyrank", "z", "3", "1"), cmd("zremrangebyrank", "z", "5", "10"), cmd("zremrangebyrank", "z", "-100", "-50"),
		cmd("zremrangebyrank", "z", "x", "1"), cmd("zremrangebyrank", "z", "1", "1.5"), cmd("zremrangebyrank", "s", "0", "1"),
		cmd("zremrangebyrank", "s", "x", "1"), cmd("zremrangebyrank", "nokey", "0", "1"), cmd("zremrangebyrank", "nokey", "x", "1"),
		cmd("zremrangebyrank", "z", "-100", "100"), cmd("exists", "z"),
		cmd("zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f", "-inf", "n", "inf", "p"),
		cmd("zremrangebyscore", "z", "(1", "3"), cmd("zrange", "z", "0", "-1", "withscores"),
		cmd("zremrangebyscore", "z", "5", "(5"), cmd("zremrangebyscore", "z", "6", "5"), cmd("zremrangebyscore", "z", "inf", "+inf"),
		cmd("zremrangebyscore", "z", "-inf", "(-inf"), cmd("zremrangebyscore", "z", "x", "1"), cmd("zremrangebyscore", "z", "1", "nan"),
		cmd("zremrangebyscore", "s", "1", "2"), cmd("zremrangebyscore", "s", "x", "2"), cmd("zremrangebyscore", "nokey", "1", "2"),
		cmd("zrange", "z", "0", "-1", "withscores"), cmd("zremrangebyscore", "z", "-inf", "+inf"), cmd("exists", "z"),
		zlex("l", "a", "b", "c", "d", "e", "f", "aa", "ab"),
		cmd("zremrangebylex", "l", "(a", "[b"), cmd("zrange", "l", "0", "-1"),
		cmd("zremrangebylex", "l", "[e", "[c"), cmd("zremrangebylex", "l", "[c", "(c"), cmd("zremrangebylex", "l", "+", "-"),
		cmd("zremrangebylex", "l", "-", "(a"), cmd("zremrangebylex", "l", "x", "+"), cmd("zremrangebylex", "l", "-", "+x"),
		cmd("zremrangebylex", "s", "-", "+"), cmd("zremrangebylex", "s", "x", "+"), cmd("zremrangebylex", "nokey", "-", "+"),
		cmd("zremrangebylex", "l", "[e", "+"), cmd("zrange", "l", "0", "-1"),
		cmd("zremrangebylex", "l", "-", "+"), cmd("exists", "l"),
		cmd("zremrangebyrank", "z", "0"), cmd("zremrangebyscore", "z", "0", "1", "2"),
		zbig("big", 2000, 1),
		cmd("zremrangebyrank", "big", "100", "1099"), cmd("zcard", "big"), cmd("zrange", "big", "95", "105", "withscores"),
		cmd("zremrangebyscore", "big", "(1500", "1700"), cmd("zcount", "big", "1400", "1800"),
		cmd("zrange", "big", "-310", "-290", "withscores"), cmd("zremrangebyrank", "big", "0", "-2"),
		cmd("zrange", "big", "0", "-1", "withscores"),
	})
}

func TestZSetOpsDiff(t *testing.T) {
	script := []step{
		cmd("zadd", "z1", "1", "a", "2", "b", "3", "c"),
		cmd("zadd", "z2", "10", "b", "20", "c", "30", "d", "0", "zero"),
		cmd("zadd", "z3", "-1", "c", "inf", "d", "-inf", "a", "5", "e"),
		cmd("zadd", "z4", "1", "b", "1", "x"), // as large as a set of 2 and a zset of 2
		cmd("sadd", "st", "a", "d", "e"), cmd("sadd", "si", "1", "2", "3"), cmd("zadd", "zi", "1", "1", "2", "2", "5", "05"),
		cmd("set", "str", "v"), cmd("hset", "h", "f", "v"),
		// 0 and -0 tie under MIN and MAX: the first input (by size, then
		// as given) wins.
		cmd("zadd", "za", "0", "m"), cmd("zadd", "zb", "0", "m", "1", "n"), cmd("zadd", "zc", "0", "m"),
		cmd("zunion", "2", "zb", "za", "weights", "-1", "1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "zb", "za", "weights", "1", "-1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "zb", "za", "weights", "-1", "1", "aggregate", "max", "withscores"),
		cmd("zunion", "2", "za", "zc", "weights", "1", "-1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "za", "zc", "weights", "-1", "1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "zc", "za", "weights", "-1", "1", "aggregate", "max", "withscores"),
		cmd("zinter", "2", "za", "zc", "weights", "1", "-1", "aggregate", "max", "withscores"),
		cmd("zinter", "2", "za", "zc", "weights", "-1", "1", "aggregate", "max", "withscores"),
		cmd("zinter", "3", "zb", "za", "zc", "weights", "1", "-1", "1", "aggregate", "min", "withscores"),
		cmd("zinter", "2", "za", "zc", "weights", "-1", "-1", "withscores"),
		cmd("zunion", "2", "za", "zc", "weights", "-1", "1", "withscores"),
		// ZUNION
		cmd("zunion", "1", "z1"), cmd("zunion", "2", "z1", "z2", "withscores"), cmd("zunion", "3", "z1", "z2", "z3", "WITHSCORES"),
		cmd("zunion", "2", "z1", "nokey", "withscores"), cmd("zunion", "2", "nokey", "nokey2", "withscores"),
		cmd("zunion", "2", "z1", "st", "withscores"), cmd("zunion", "2", "si", "zi", "withscores"),
		cmd("zunion", "2", "z1", "z2", "weights", "2", "0.5", "withscores"),
		cmd("zunion", "2", "z1", "z2", "weights", "-1", "-1", "withscores"),
		cmd("zunion", "2", "z2", "z3", "weights", "0", "1", "withscores"),
		cmd("zunion", "2", "z2", "z3", "weights", "inf", "-inf", "withscores"),
		cmd("zunion", "2", "z3", "z3", "weights", "1", "-1", "withscores"),
		cmd("zunion", "2", "z3", "z3", "weights", "1", "-1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "z3", "z3", "weights", "1", "-1", "aggregate", "max", "withscores"),
		cmd("zunion", "3", "z1", "z2", "z3", "aggregate", "min", "withscores"),
		cmd("zunion", "3", "z1", "z2", "z3", "aggregate", "MAX", "withscores"),
		cmd("zunion", "3", "z1", "z2", "z3", "aggregate", "sum", "aggregate", "max", "weights", "1", "2", "3", "weights", "3", "2", "1", "withscores"),
		cmd("zunion", "2", "z1", "z4", "weights", "0", "-1", "aggregate", "min", "withscores"),
		cmd("zunion", "2", "z4", "z1", "weights", "-1", "0", "aggregate", "max", "withscores"),
		cmd("zunion", "2", "z4", "st", "weights", "1e308", "1e308", "withscores"),
		cmd("zunion", "2", "z1", "z1", "withscores"), cmd("zunion", "1", "z1", "withscores", "withscores"),
		cmd("zunion", "0", "z1"), cmd("zunion", "-1", "z1"), cmd("zunion", "x", "z1"), cmd("zunion", "3", "z1", "z2"),
		cmd("zunion", "9223372036854775807", "z1"), cmd("zunion", "99999999999999999999", "z1"),
		cmd("zunion", "1", "z1", "weights"), cmd("zunion", "2", "z1", "z2", "weights", "1"),
		cmd("zunion", "2", "z1", "z2", "weights", "1", "x"), cmd("zunion", "2", "z1", "z2", "weights", "1", "nan"),
		cmd("zunion", "2", "z1", "z2", "weights", "1", " 1"), cmd("zunion", "2", "z1", "z2", "weights", "1", "1e400"),
		cmd("zunion", "2", "z1", "z2", "aggregate"), cmd("zunion", "2", "z1", "z2", "aggregate", "avg"),
		cmd("zunion", "2", "z1", "z2", "limit", "1"), cmd("zunion", "1", "str"), cmd("zunion", "2", "z1", "h"),
		cmd("zunion", "2", "str", "z1", "weights", "x"), cmd("zunion", "2", "z1", "str", "foo"),
		// ZINTER
		cmd("zinter", "2", "z1", "z2", "withscores"), cmd("zinter", "3", "z1", "z2", "z3", "withscores"),
		cmd("zinter", "2", "z1", "st", "withscores"), cmd("zinter", "2", "si", "zi", "withscores"),
		cmd("zinter", "2", "z1", "nokey", "withscores"), cmd("zinter", "1", "nokey"),
		cmd("zinter", "2", "z2", "z3", "weights", "0", "1", "withscores"),
		cmd("zinter", "2", "z2", "z3", "weights", "1", "0", "withscores"),
		cmd("zinter", "2", "z2", "z3", "weights", "inf", "-inf", "withscores"),
		cmd("zinter", "2", "z2", "z3", "weights", "-inf", "inf", "aggregate", "min", "withscores"),
		cmd("zinter", "2", "z2", "z3", "weights", "0", "1", "aggregate", "max", "withscores"),
		cmd("zinter", "2", "z2", "z3", "weights", "1", "0", "aggregate", "max", "withscores"),
		cmd("zinter", "2", "z3", "z2", "weights", "0", "inf", "aggregate", "min", "withscores"),
		cmd("zinter", "2", "z1", "z4", "weights", "0", "-1", "aggregate", "min", "withscores"),
		cmd("zinter", "2", "z4", "z1", "weights", "0", "-1", "aggregate", "min", "withscores"),
		cmd("zinter", "2", "z1", "z1", "weights", "1", "-1", "withscores"),
		cmd("zinter", "2", "z1", "z2", "aggregate", "min"), cmd("zinter", "2", "z1", "z2", "withscores", "aggregate", "max"),
		cmd("zinter", "0", "z1"), cmd("zinter", "2", "z1", "str"), cmd("zinter", "2", "z1", "z2", "foo"),
		// ZDIFF
		cmd("zdiff", "1", "z1", "withscores"), cmd("zdiff", "2", "z1", "z2", "withscores"), cmd("zdiff", "3", "z3", "z1", "z2", "withscores"),
		cmd("zdiff", "2", "z1", "st", "withscores"), cmd("zdiff", "2", "st", "z1", "withscores"), cmd("zdiff", "2", "z1", "z1"),
		cmd("zdiff", "2", "nokey", "z1"), cmd("zdiff", "2", "z1", "nokey"),
		cmd("zdiff", "2", "z1", "z2", "weights", "1", "2"), cmd("zdiff", "2", "z1", "z2", "aggregate", "min"),
		cmd("zdiff", "0", "z1"), cmd("zdiff", "2", "z1", "str"), cmd("zdiff", "2", "str", "z1"),
		// ZINTERCARD
		cmd("zintercard", "2", "z1", "z2"), cmd("zintercard", "3", "z1", "z2", "z3"), cmd("zintercard", "2", "z1", "st"),
		cmd("zintercard", "2", "z1", "z2", "limit", "0"), cmd("zintercard", "2", "z1", "z2", "limit", "1"),
		cmd("zintercard", "2", "z1", "z2", "limit", "100"), cmd("zintercard", "2", "z1", "z2", "limit", "-1"),
		cmd("zintercard", "2", "z1", "z2", "limit", "x"), cmd("zintercard", "2", "z1", "z2", "limit"),
		cmd("zintercard", "2", "z1", "z2", "limit", "1", "limit", "2"), cmd("zintercard", "2", "z1", "z2", "withscores"),
		cmd("zintercard", "2", "z1", "z2", "weights", "1", "1"), cmd("zintercard", "1", "nokey"),
		cmd("zintercard", "0", "z1"), cmd("zintercard", "x", "z1"), cmd("zintercard", "3", "z1", "z2"),
		cmd("zintercard", "2", "z1", "str"), cmd("zintercard", "1"),
		// the STORE forms
		cmd("zunionstore", "d", "2", "z1", "z2"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zunionstore", "d", "2", "z1", "z2", "weights", "1", "-1"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zunionstore", "d", "3", "z1", "z2", "z3", "aggregate", "max"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zunionstore", "d", "2", "z2", "z3", "weights", "0", "-1"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zinterstore", "d", "2", "z1", "z2", "weights", "2", "3"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zinterstore", "d", "2", "z1", "st", "aggregate", "min"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zdiffstore", "d", "2", "z3", "z1"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("set", "d", "x"), cmd("expire", "d", "100"),
		cmd("zunionstore", "d", "1", "z1"), cmd("type", "d"), cmd("ttl", "d"),
		cmd("zinterstore", "d", "2", "z1", "nokey"), cmd("exists", "d"),
		cmd("zunionstore", "d", "1", "z1"), cmd("zdiffstore", "d", "2", "z1", "z1"), cmd("exists", "d"),
		cmd("zunionstore", "z1", "2", "z1", "z2"), cmd("zrange", "z1", "0", "-1", "withscores"),
		cmd("zinterstore", "z2", "2", "z2", "z1", "weights", "1", "0"), cmd("zrange", "z2", "0", "-1", "withscores"),
		cmd("zunionstore", "d", "1", "z1", "withscores"), cmd("zunionstore", "d", "0", "z1"),
		cmd("zinterstore", "d", "0", "z1"), cmd("zdiffstore", "d", "0", "z1"), cmd("zdiffstore", "d", "1", "z1", "weights", "2"),
		cmd("zunionstore", "d", "x", "z1"), cmd("zunionstore", "d", "2", "z1"), cmd("zunionstore", "d", "1", "str"),
		cmd("zunionstore", "d", "2", "z1", "z2", "aggregate", "foo"), cmd("zunionstore", "str", "1", "z1"), cmd("type", "str"),
		cmd("zinterstore", "d", "1", "st"), cmd("zrange", "d", "0", "-1", "withscores"),
		cmd("zunionstore", "d", "2", "si", "st"), cmd("zrange", "d", "0", "-1", "withscores"),
	}
	// Large inputs: Redis's skiplists and hash tables, several levels of
	// ztree.
	script = append(script, zbig("b1", 1500, 1), zbig("b2", 1200, -0.25))
	sadd := []string{"sadd", "bs"}
	for i := 0; i < 3000; i += 3 {
		sadd = append(sadd, "m"+strconv.Itoa(i))
	}
	script = append(script, cmd(sadd...),
		cmd("zunionstore", "bd", "3", "b1", "b2", "bs", "weights", "1", "2", "0.5"), cmd("zcard", "bd"),
		cmd("zrange", "bd", "0", "20", "withscores"), cmd("zrange", "bd", "-20", "-1", "withscores"),
		cmd("zinterstore", "bd", "3", "b1", "b2", "bs", "aggregate", "max"), cmd("zrange", "bd", "0", "-1", "withscores"),
		cmd("zdiffstore", "bd", "3", "b1", "bs", "b2"), cmd("zcard", "bd"), cmd("zrange", "bd", "0", "10", "withscores"),
		cmd("zinter", "2", "b1", "bs", "withscores"), cmd("zintercard", "3", "b1", "b2", "bs"),
		cmd("zintercard", "2", "b1", "b2", "limit", "77"), cmd("zdiff", "2", "b2", "b1", "withscores"))
	runDiff(t, script)
}

func TestZSetPopDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("set", "s", "v"),
		cmd("zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f", "6", "g", "-inf", "n"),
		cmd("zpopmin", "z", "1"), cmd("zpopmax", "z", "1"), cmd("zpopmin", "z", "3"), cmd("zpopmax", "z", "0"),
		cmd("zpopmax", "z", "2"), cmd("zpopmin", "z", "10"), cmd("exists", "z"),
		cmd("zpopmin", "z", "9223372036854775807"), cmd("zpopmax", "z", "-9223372036854775808"), cmd("zpopmax", "s", "x"),
		cmd("zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
		// ZMPOP
		cmd("zmpop", "1", "z", "min"), cmd("zmpop", "1", "z", "MAX"), cmd("zmpop", "1", "z", "min", "count", "2"),
		cmd("zmpop", "2", "nokey", "z", "max", "COUNT", "10"), cmd("exists", "z"),
		cmd("zmpop", "1", "z", "min"), cmd("zmpop", "2", "nokey", "z", "min"),
		cmd("zadd", "z", "1", "a", "2", "b"), cmd("zadd", "z2", "3", "c"),
		cmd("zmpop", "2", "z", "z2", "max", "count", "1"), cmd("zmpop", "2", "nokey", "s", "min"),
		cmd("zmpop", "2", "z", "s", "min"), cmd("zmpop", "2", "s", "z", "min"),
		cmd("zmpop", "0", "z", "min"), cmd("zmpop", "-1", "z", "min"), cmd("zmpop", "x", "z", "min"),
		cmd("zmpop", "99999999999999999999", "z", "min"), cmd("zmpop", "9223372036854775807", "z", "min"),
		cmd("zmpop", "2", "z", "min"), cmd("zmpop", "3", "z", "z2", "min"), cmd("zmpop", "1", "z", "foo"),
		cmd("zmpop", "1", "z", "min", "count"), cmd("zmpop", "1", "z", "min", "count", "0"),
		cmd("zmpop", "1", "z", "min", "count", "-1"), cmd("zmpop", "1", "z", "min", "count", "x"),
		cmd("zmpop", "1", "z", "min", "count", "1", "count", "1"), cmd("zmpop", "1", "z", "min", "foo"),
		cmd("zmpop", "1", "z", "min", "count", "9223372036854775807"), cmd("exists", "z"),
		cmd("zmpop", "1", "z"), cmd("zmpop", "1"),
		zbig("big", 1000, 2),
		cmd("zpopmin", "big", "70"), cmd("zpopmax", "big", "70"), cmd("zmpop", "1", "big", "min", "count", "70"),
		cmd("zmpop", "1", "big", "max", "count", "70"), cmd("zcard", "big"), cmd("zrange", "big", "0", "2", "withscores"),
	})
}

func TestZMScoreDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("set", "s", "v"),
		cmd("zadd", "z", "1", "a", "2.5", "b", "-inf", "c", "1e-310", "d"),
		cmd("zmscore", "z", "a"), cmd("zmscore", "z", "a", "nope", "b", "c", "d", "a"),
		cmd("zmscore", "nokey", "a", "b"), cmd("zmscore", "s", "a"), cmd("zmscore", "z"),
	})
}

// zstream is a seeded random stream of n sorted-set commands over a few
// keys, members drawn from pool names. The l keys only ever hold score 0
// (BYLEX is defined for equal scores only); destinations of weighted
// stores get positive weights, so that no -0 score is stored (Redis keeps
// one in a large set, this store never does: see zsetValue).
func zstream(seed uint64, n, pool int) []step {
	r := rand.New(rand.NewPCG(seed, 99))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	zkeys := []string{"z1", "z2", "z3", "z4", "d"}
	lkeys := []string{"l1", "l2", "dl"}
	zkey := func() string {
		if r.IntN(30) == 0 {
			return pick("nokey", "str", "s1")
		}
		return zkeys[r.IntN(len(zkeys))]
	}
	lkey := func() string {
		if r.IntN(30) == 0 {
			return pick("nolex", "str")
		}
		return lkeys[r.IntN(len(lkeys))]
	}
	member := func() string { return "m" + strconv.Itoa(r.IntN(pool)) }
	lexMember := func() string {
		b := make([]byte, 1+r.IntN(3))
		for i := range b {
			b[i] = "abcde"[r.IntN(5)]
		}
		return string(b)
	}
	score := func() string {
		if r.IntN(3) == 0 {
			return strconv.Itoa(r.IntN(11) - 5)
		}
		return pick("1.5", "-2.25", "0.1", "0.2", "inf", "-inf", "+inf", "1e300", "-1e300",
			"3.0000000000000004", "1e-310", "7", "100", "-0.5", "2")
	}
	bound := func() string {
		b := pick("-inf", "+inf", score(), score(), "x")
		if r.IntN(3) == 0 {
			b = "(" + b
		}
		return b
	}
	lexBound := func() string {
		switch r.IntN(6) {
		case 0:
			return "-"
		case 1:
			return "+"
		case 2:
			return "(" + lexMember()
		case 3:
			return pick("x", "", "+a")
		}
		return "[" + lexMember()
	}
	idx := func() string { return strconv.Itoa(r.IntN(24) - 12) }
	limit := func(args []string) []string {
		if r.IntN(3) == 0 {
			return append(args, "LIMIT", strconv.Itoa(r.IntN(8)-1), strconv.Itoa(r.IntN(8)-2))
		}
		return args
	}
	srcKeys := func(lex bool) []string {
		k := 1 + r.IntN(3)
		args := []string{strconv.Itoa(k)}
		for range k {
			switch {
			case lex:
				args = append(args, lkey())
			case r.IntN(6) == 0:
				args = append(args, "s1")
			default:
				args = append(args, zkey())
			}
		}
		return args
	}
	opts := func(args []string, k int, positive bool) []string {
		if r.IntN(2) == 0 {
			args = append(args, "WEIGHTS")
			for range k {
				if positive {
					args = append(args, pick("1", "2", "0.5", "inf", "3"))
				} else {
					args = append(args, pick("1", "2", "0.5", "inf", "-1", "0", "-inf", "3"))
				}
			}
		}
		if r.IntN(2) == 0 {
			args = append(args, "AGGREGATE", pick("sum", "min", "max", "MIN", "Max"))
		}
		return args
	}
	steps := []step{cmd("set", "str", "v"), cmd("sadd", "s1", "m1", "m2", "m3", "x")}
	for len(steps) < n {
		var a []string
		switch r.IntN(34) {
		case 0, 1, 2, 3:
			a = []string{"ZADD", zkey()}
			for _, f := range []string{"NX", "XX", "GT", "LT", "CH"} {
				if r.IntN(8) == 0 {
					a = append(a, f)
				}
			}
			if r.IntN(10) == 0 {
				a = append(a, "INCR", score(), member())
			} else {
				for range 1 + r.IntN(max(4, pool/20)) {
					a = append(a, score(), member())
				}
			}
		case 4:
			a = []string{"ZADD", lkey()}
			if r.IntN(5) == 0 {
				a = append(a, pick("NX", "XX", "CH"))
			}
			for range 1 + r.IntN(4) {
				a = append(a, "0", lexMember())
			}
		case 5:
			a = []string{"ZINCRBY", zkey(), score(), member()}
		case 6:
			a = []string{"ZREM", zkey(), member(), member()}
		case 7:
			a = []string{pick("ZPOPMIN", "ZPOPMAX"), zkey()}
			if r.IntN(2) == 0 {
				a = append(a, strconv.Itoa(r.IntN(5)-1))
			}
		case 8:
			a = append([]string{"ZMPOP"}, srcKeys(false)...)
			a = append(a, pick("MIN", "MAX"))
			if r.IntN(2) == 0 {
				a = append(a, "COUNT", strconv.Itoa(r.IntN(4)))
			}
		case 9, 10:
			a = []string{"ZRANGE", zkey(), idx(), idx()}
			if r.IntN(2) == 0 {
				a = append(a, "REV")
			}
			if r.IntN(2) == 0 {
				a = append(a, "WITHSCORES")
			}
		case 11, 12:
			a = []string{"ZRANGE", zkey(), bound(), bound(), "BYSCORE"}
			if r.IntN(2) == 0 {
				a = append(a, "REV")
			}
			if r.IntN(2) == 0 {
				a = append(a, "WITHSCORES")
			}
			a = limit(a)
		case 13:
			a = limit([]string{pick("ZRANGEBYSCORE", "ZREVRANGEBYSCORE"), zkey(), bound(), bound(), "WITHSCORES"})
		case 14:
			a = []string{pick("ZCOUNT", "ZREMRANGEBYSCORE"), zkey(), bound(), bound()}
		case 15:
			a = []string{pick("ZREMRANGEBYRANK", "ZREVRANGE"), zkey(), idx(), idx()}
		case 16, 17:
			a = limit([]string{pick("ZRANGEBYLEX", "ZREVRANGEBYLEX"), lkey(), lexBound(), lexBound()})
		case 18:
			a = []string{"ZRANGE", lkey(), lexBound(), lexBound(), "BYLEX"}
			if r.IntN(2) == 0 {
				a = append(a, "REV")
			}
			a = limit(a)
		case 19:
			a = []string{pick("ZLEXCOUNT", "ZREMRANGEBYLEX"), lkey(), lexBound(), lexBound()}
		case 20:
			switch r.IntN(3) {
			case 0:
				a = []string{"ZRANGESTORE", pick(zkeys...), zkey(), idx(), idx()}
			case 1:
				a = limit([]string{"ZRANGESTORE", pick(zkeys...), zkey(), bound(), bound(), "BYSCORE"})
			default:
				a = limit([]string{"ZRANGESTORE", pick(lkeys...), lkey(), lexBound(), lexBound(), "BYLEX"})
			}
			if r.IntN(2) == 0 {
				a = append(a, "REV")
			}
		case 21, 22:
			k := srcKeys(false)
			a = opts(append([]string{pick("ZUNION", "ZINTER")}, k...), len(k)-1, false)
			if r.IntN(2) == 0 {
				a = append(a, "WITHSCORES")
			}
		case 23:
			a = append([]string{"ZDIFF"}, srcKeys(false)...)
			if r.IntN(2) == 0 {
				a = append(a, "WITHSCORES")
			}
		case 24, 25:
			k := srcKeys(false)
			a = opts(append([]string{pick("ZUNIONSTORE", "ZINTERSTORE"), pick(zkeys...)}, k...), len(k)-1, true)
		case 26:
			a = append([]string{"ZDIFFSTORE", pick(zkeys...)}, srcKeys(false)...)
		case 27:
			a = append([]string{"ZINTERCARD"}, srcKeys(false)...)
			if r.IntN(2) == 0 {
				a = append(a, "LIMIT", strconv.Itoa(r.IntN(4)))
			}
		case 28:
			a = []string{"ZMSCORE", zkey(), member(), member(), member()}
		case 29:
			a = []string{pick("ZSCORE", "ZRANK", "ZREVRANK"), zkey(), member()}
		case 30:
			a = []string{"ZCARD", pick(zkey(), lkey())}
		case 31:
			a = []string{"ZRANGE", pick(zkey(), lkey()), "0", "-1", "WITHSCORES"}
		case 32:
			if r.IntN(4) == 0 {
				a = []string{"DEL", pick(pick(zkeys...), pick(lkeys...))}
			} else {
				a = []string{"SADD", "s1", member()}
			}
		case 33:
			// ZRANDMEMBER with a count at least the size replies the
			// whole set, in Redis's order.
			a = []string{"ZRANDMEMBER", pick(zkey(), lkey()), strconv.Itoa(1000 + r.IntN(10))}
			if r.IntN(2) == 0 {
				a = append(a, "WITHSCORES")
			}
		}
		steps = append(steps, cmd(a...))
	}
	for _, k := range append(zkeys, lkeys...) {
		steps = append(steps, cmd("ZRANGE", k, "0", "-1", "WITHSCORES"))
	}
	return steps
}

// TestZSetRandomDiff runs seeded random streams of sorted-set commands
// against Redis, byte for byte: small sets (Redis's listpacks) and sets of
// a few hundred members (skiplists; several ztree leaves).
func TestZSetRandomDiff(t *testing.T) {
	for _, tc := range []struct {
		seed       uint64
		steps, pop int
	}{{1, 4000, 40}, {2, 4000, 12}, {3, 6000, 600}} {
		t.Run(fmt.Sprintf("seed%d", tc.seed), func(t *testing.T) {
			runDiff(t, zstream(tc.seed, tc.steps, tc.pop))
		})
	}
}

// flatBulks parses a flat RESP array of bulk strings; ok is false for any
// other reply.
func flatBulks(raw string) (elems []string, ok bool) {
	if len(raw) == 0 || raw[0] != '*' {
		return nil, false
	}
	i := strings.Index(raw, "\r\n")
	n, err := strconv.Atoi(raw[1:i])
	if err != nil || n < 0 {
		return nil, false
	}
	rest := raw[i+2:]
	for range n {
		if len(rest) == 0 || rest[0] != '$' {
			return nil, false
		}
		j := strings.Index(rest, "\r\n")
		l, err := strconv.Atoi(rest[1:j])
		if err != nil || l < 0 {
			return nil, false
		}
		elems = append(elems, rest[j+2:j+2+l])
		rest = rest[j+2+l+2:]
	}
	return elems, rest == ""
}

// TestZRandMemberDiff compares ZRANDMEMBER with Redis. Errors, empty
// replies and a count of at least the set's size (the whole set, highest
// score first) are compared byte for byte; other picks are random on both
// sides, so they are checked for validity: the reply's length, members of
// the set with their own scores, distinct for a positive count.
func TestZRandMemberDiff(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	env := &Env{NowMs: time.Now().UnixMilli(), Rand: rand.New(rand.NewPCG(5, 6))}
	do := func(args ...string) (got, want string) {
		return string(execArgs(s, env, args)), rc.Do(args...)
	}
	same := func(args ...string) {
		t.Helper()
		if got, want := do(args...); got != want {
			t.Fatalf("%q:\n got %q\nwant %q", args, got, want)
		}
	}
	same("set", "s", "v")
	same("zadd", "small", "1", "a", "2", "b", "3", "c", "2.5", "d", "-inf", "e")
	big := []string{"zadd", "big"}
	for i := range 300 {
		big = append(big, strconv.Itoa(i%17), "m"+strconv.Itoa(i))
	}
	same(big...)
	for _, args := range [][]string{
		{"zrandmember", "nokey"}, {"zrandmember", "nokey", "5"}, {"zrandmember", "nokey", "-5", "withscores"},
		{"zrandmember", "nokey", "0"}, {"zrandmember", "s"}, {"zrandmember", "s", "1"}, {"zrandmember", "s", "0"},
		{"zrandmember", "small", "0"}, {"zrandmember", "small", "0", "withscores"},
		{"zrandmember", "small", "x"}, {"zrandmember", "small", "1.5"}, {"zrandmember", "small", "1", "foo"},
		{"zrandmember", "small", "1", "withscores", "x"}, {"zrandmember", "small", "x", "foo"},
		{"zrandmember", "small", "-9223372036854775808"}, {"zrandmember", "small", "-9223372036854775808", "withscores"},
		{"zrandmember", "small", "9223372036854775807", "withscores"},
		{"zrandmember", "small", "-4611686018427387904", "withscores"},
		{"zrandmember", "small", "4611686018427387904", "withscores"},
		{"zrandmember", "nokey", "4611686018427387904", "withscores"},
		{"zrandmember", "small", "5"}, {"zrandmember", "small", "6", "withscores"},
		{"zrandmember", "small", "9223372036854775807"}, {"zrandmember", "small", "4611686018427387903", "WITHSCORES"},
		{"zrandmember", "big", "300", "withscores"}, {"zrandmember", "big", "1000"},
		{"zrandmember"},
	} {
		same(args...)
	}
	// The set's members and scores, as Redis formats them.
	scores := map[string]map[string]string{}
	for _, k := range []string{"small", "big"} {
		all, ok := flatBulks(rc.Do("zrange", k, "0", "-1", "withscores"))
		if !ok {
			t.Fatalf("zrange %s", k)
		}
		scores[k] = map[string]string{}
		for i := 0; i < len(all); i += 2 {
			scores[k][all[i]] = all[i+1]
		}
	}
	for _, tc := range []struct {
		key        string
		count      int
		withScores bool
	}{
		{"small", 1, false}, {"small", 1, true}, {"small", 2, true}, {"small", 4, false}, {"small", -1, true},
		{"small", -3, false}, {"small", -50, true}, {"big", 1, true}, {"big", 5, true}, {"big", 99, false},
		{"big", 101, true}, {"big", 299, false}, {"big", -20, true}, {"big", -1000, false},
	} {
		args := []string{"zrandmember", tc.key, strconv.Itoa(tc.count)}
		if tc.withScores {
			args = append(args, "withscores")
		}
		for range 3 {
			got, want := do(args...)
			for side, raw := range map[string]string{"gomu": got, "redis": want} {
				elems, ok := flatBulks(raw)
				if !ok {
					t.Fatalf("%q: %s replied %q", args, side, raw)
				}
				n := tc.count
				if n < 0 {
					n = -n
				}
				if tc.withScores {
					n *= 2
				}
				if len(elems) != n {
					t.Fatalf("%q: %s replied %d elements, want %d", args, side, len(elems), n)
				}
				seen := map[string]int{}
				step := 1
				if tc.withScores {
					step = 2
				}
				for i := 0; i < len(elems); i += step {
					m := elems[i]
					sc, in := scores[tc.key][m]
					if !in || (tc.withScores && elems[i+1] != sc) {
						t.Fatalf("%q: %s picked %q (%v) not in the set", args, side, m, elems[i:i+step])
					}
					seen[m]++
					if tc.count > 0 && seen[m] > 1 {
						t.Fatalf("%q: %s picked %q twice", args, side, m)
					}
				}
				if tc.count == -1000 && len(seen) < 250 {
					t.Fatalf("%q: %s picked only %d of 300 members in 1000 draws", args, side, len(seen))
				}
			}
		}
	}
	// Without a count: one member, a bulk string.
	for range 20 {
		got, want := do("zrandmember", "small")
		for _, raw := range []string{got, want} {
			if !strings.HasPrefix(raw, "$") {
				t.Fatalf("zrandmember small replied %q", raw)
			}
			m := raw[strings.Index(raw, "\r\n")+2 : len(raw)-2]
			if _, in := scores["small"][m]; !in {
				t.Fatalf("zrandmember small picked %q", m)
			}
		}
	}
	// The picks are a function of the Env's random source: replicas that
	// applied the same log reply the same.
	for _, args := range [][]string{{"zrandmember", "big"}, {"zrandmember", "big", "7", "withscores"}, {"zrandmember", "big", "-7"}} {
		a := execArgs(s, &Env{Rand: rand.New(rand.NewPCG(9, 9))}, args)
		b := execArgs(s, &Env{Rand: rand.New(rand.NewPCG(9, 9))}, args)
		if string(a) != string(b) {
			t.Fatalf("%q: %q and %q from the same seed", args, a, b)
		}
	}
}

// parseRESP parses one RESP2 reply: strings for simple and bulk strings,
// int64 for integers, []any for arrays, nil for nulls.
func parseRESP(raw string) (v any, rest string) {
	i := strings.Index(raw, "\r\n")
	head, rest := raw[1:i], raw[i+2:]
	switch raw[0] {
	case '+', '-':
		return head, rest
	case ':':
		n, _ := strconv.ParseInt(head, 10, 64)
		return n, rest
	case '$':
		n, _ := strconv.Atoi(head)
		if n < 0 {
			return nil, rest
		}
		return rest[:n], rest[n+2:]
	case '*':
		n, _ := strconv.Atoi(head)
		if n < 0 {
			return nil, rest
		}
		arr := make([]any, n)
		for k := range arr {
			arr[k], rest = parseRESP(rest)
		}
		return arr, rest
	}
	panic("bad reply " + raw)
}

// TestZSetCommandTable checks every sorted-set command's arity, flags and
// key positions against COMMAND INFO of Redis 7.0.
func TestZSetCommandTable(t *testing.T) {
	rc := redistest.Dial(t, redistest.Start(t))
	var names []string
	for _, c := range Commands() {
		if c.Group == "sorted-set" {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	for _, want := range []string{"zadd", "zcard", "zcount", "zdiff", "zdiffstore", "zincrby", "zinter", "zintercard",
		"zinterstore", "zlexcount", "zmpop", "zmscore", "zpopmax", "zpopmin", "zrandmember", "zrange", "zrangebylex",
		"zrangebyscore", "zrangestore", "zrank", "zrem", "zremrangebylex", "zremrangebyrank", "zremrangebyscore",
		"zrevrange", "zrevrangebylex", "zrevrangebyscore", "zrevrank", "zscore", "zunion", "zunionstore"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not registered", want)
		}
	}
	for _, name := range names {
		c := Lookup([]byte(name))
		info, _ := parseRESP(rc.Do("command", "info", name))
		d, ok := info.([]any)[0].([]any)
		if !ok {
			t.Errorf("%s: Redis does not know it", name)
			continue
		}
		var flags []string
		for _, f := range d[2].([]any) {
			if f := f.(string); f == "write" || f == "readonly" || f == "denyoom" || f == "fast" || f == "movablekeys" {
				flags = append(flags, f)
			}
		}
		var ours []string
		for _, f := range []struct {
			f    Flags
			name string
		}{{Write, "write"}, {ReadOnly, "readonly"}, {DenyOOM, "denyoom"}, {Fast, "fast"}, {MovableKeys, "movablekeys"}} {
			if c.Flags&f.f != 0 {
				ours = append(ours, f.name)
			}
		}
		got := fmt.Sprint(c.Arity, ours, c.FirstKey, c.LastKey, c.Step)
		want := fmt.Sprint(d[1], flags, d[3], d[4], d[5])
		if got != want {
			t.Errorf("%s: arity, flags, keys %s; Redis %s", name, got, want)
		}
	}
}

// TestZSetShapeIndependence: the tree's shape depends on the history of
// inserts and deletes and differs after a restore; no reply and no state
// may. Three stores reach the same sorted sets by different paths (random
// inserts and deletes, a restore from a snapshot, one sorted bulk insert)
// and must then answer every read and every write alike, BYLEX over
// members of different scores (undefined in Redis) included.
func TestZSetShapeIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	env := func() *Env { return &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(3, 3))} }
	a := New()
	live := map[string]string{}
	for range 6000 {
		m := fmt.Sprintf("%c%d", 'a'+r.IntN(26), r.IntN(200))
		if r.IntN(3) == 0 {
			execArgs(a, env(), []string{"zrem", "z", m})
			delete(live, m)
			continue
		}
		sc := strconv.Itoa(r.IntN(4))
		execArgs(a, env(), []string{"zadd", "z", sc, m})
		live[m] = sc
	}
	var snap bytes.Buffer
	if err := a.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := New()
	if err := b.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	c := New()
	add := []string{"zadd", "z"}
	for m, sc := range live {
		add = append(add, sc, m)
	}
	execArgs(c, env(), add)
	if a.Digest() != b.Digest() || a.Digest() != c.Digest() {
		t.Fatal("digests differ")
	}
	var queries [][]string
	for range 300 {
		lo := fmt.Sprintf("%c%d", 'a'+r.IntN(26), r.IntN(200))
		hi := fmt.Sprintf("%c%d", 'a'+r.IntN(26), r.IntN(200))
		queries = append(queries,
			[]string{"zrangebylex", "z", "[" + lo, "(" + hi},
			[]string{"zrevrangebylex", "z", "(" + hi, "-", "limit", "3", "10"},
			[]string{"zlexcount", "z", "[" + lo, "+"},
			[]string{"zrange", "z", "(1", "3", "byscore", "limit", strconv.Itoa(r.IntN(50)), "20", "withscores"},
			[]string{"zrank", "z", lo}, []string{"zrevrank", "z", hi},
			[]string{"zrange", "z", strconv.Itoa(r.IntN(3000)), strconv.Itoa(r.IntN(3000)), "withscores"},
			[]string{"zrandmember", "z", strconv.Itoa(r.IntN(40) - 20), "withscores"})
	}
	queries = append(queries,
		[]string{"zremrangebylex", "z", "[m", "(q"}, []string{"zrangestore", "d", "z", "(b", "[k50", "bylex"},
		[]string{"zremrangebyscore", "z", "(2", "3"}, []string{"zpopmin", "z", "17"}, []string{"zrange", "z", "0", "-1"})
	for _, q := range queries {
		ra, rb, rc := execArgs(a, env(), q), execArgs(b, env(), q), execArgs(c, env(), q)
		if !bytes.Equal(ra, rb) || !bytes.Equal(ra, rc) {
			t.Fatalf("%q:\n%q\n%q\n%q", q, ra, rb, rc)
		}
	}
	if a.Digest() != b.Digest() || a.Digest() != c.Digest() {
		t.Fatal("digests differ after the writes")
	}
}
