package store

import "testing"

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
