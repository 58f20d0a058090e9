package server

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// cli runs redis-cli against addr and returns its trimmed output.
func cli(t *testing.T, bin, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRedisCLI: a value SET on the leader is visible on a follower at once,
// and a follower refuses writes naming the leader's id and address.
func TestRedisCLI(t *testing.T) {
	bin := redisCLI(t)
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	if got := cli(t, bin, lead.Srv.Addr(), "SET", "greeting", "hello world"); got != "OK" {
		t.Fatalf("SET on leader: %q", got)
	}
	want := fmt.Sprintf("READONLY You can't write against a read only replica. leader=%d addr=%s", lead.ID, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if got := cli(t, bin, f.Srv.Addr(), "GET", "greeting"); got != "hello world" {
			t.Errorf("GET on follower %d: %q", f.ID, got)
		}
		got := cli(t, bin, f.Srv.Addr(), "SET", "greeting", "x")
		if !strings.Contains(got, want) {
			t.Errorf("SET on follower %d: %q, want %q", f.ID, got, want)
		}
	}
	if got := cli(t, bin, lead.Srv.Addr(), "GET", "greeting"); got != "hello world" {
		t.Errorf("GET on leader after refused writes: %q", got)
	}
}

// TestGoRedis drives the leader with go-redis v9 and its default options:
// it opens with HELLO 3, gets NOPROTO and must fall back to RESP2.
func TestGoRedis(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	rdb := redis.NewClient(&redis.Options{Addr: lead.Srv.Addr(), ReadTimeout: hang, WriteTimeout: hang})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*hang)
	defer cancel()

	// check fails the test on an error and returns the value.
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eq := func(t *testing.T, what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}

	t.Run("strings", func(t *testing.T) {
		check(t, "SET", rdb.Set(ctx, "s1", "v1", 0).Err())
		v, err := rdb.Get(ctx, "s1").Result()
		check(t, "GET", err)
		eq(t, "GET s1", v, "v1")
		ok, err := rdb.SetNX(ctx, "s1", "other", 0).Result()
		check(t, "SETNX", err)
		eq(t, "SETNX existing", ok, false)
		check(t, "SET EX", rdb.Set(ctx, "s2", "v2", time.Minute).Err())
		ttl, err := rdb.TTL(ctx, "s2").Result()
		check(t, "TTL", err)
		if ttl <= 0 || ttl > time.Minute {
			t.Errorf("TTL s2 = %v", ttl)
		}
		old, err := rdb.SetArgs(ctx, "s1", "v1b", redis.SetArgs{Get: true, KeepTTL: true}).Result()
		check(t, "SET GET KEEPTTL", err)
		eq(t, "SET GET", old, "v1")
		_, err = rdb.Get(ctx, "missing").Result()
		eq(t, "GET missing", err, redis.Nil)
		check(t, "MSET", rdb.MSet(ctx, "m1", "a", "m2", "b").Err())
		vs, err := rdb.MGet(ctx, "m1", "missing", "m2").Result()
		check(t, "MGET", err)
		eq(t, "MGET", vs, []any{"a", nil, "b"})
		n, err := rdb.Incr(ctx, "ctr").Result()
		check(t, "INCR", err)
		eq(t, "INCR", n, 1)
		n, err = rdb.IncrBy(ctx, "ctr", 41).Result()
		check(t, "INCRBY", err)
		eq(t, "INCRBY", n, 42)
		f, err := rdb.IncrByFloat(ctx, "fl", 1.5).Result()
		check(t, "INCRBYFLOAT", err)
		eq(t, "INCRBYFLOAT", f, 1.5)
		eq(t, "INCR on text", errText(rdb.Incr(ctx, "m1").Err()), "ERR value is not an integer or out of range")
		n, err = rdb.Append(ctx, "ap", "hello").Result()
		check(t, "APPEND", err)
		eq(t, "APPEND", n, 5)
		n, err = rdb.SetRange(ctx, "ap", 6, "world").Result()
		check(t, "SETRANGE", err)
		eq(t, "SETRANGE", n, 11)
		v, err = rdb.GetRange(ctx, "ap", 6, -1).Result()
		check(t, "GETRANGE", err)
		eq(t, "GETRANGE", v, "world")
		v, err = rdb.Get(ctx, "ap").Result()
		check(t, "GET ap", err)
		eq(t, "GET ap", v, "hello\x00world")
	})

	t.Run("keys", func(t *testing.T) {
		check(t, "FLUSHDB", rdb.FlushDB(ctx).Err())
		for i := range 50 {
			check(t, "SET", rdb.Set(ctx, fmt.Sprintf("key:%02d", i), i, 0).Err())
		}
		n, err := rdb.DBSize(ctx).Result()
		check(t, "DBSIZE", err)
		eq(t, "DBSIZE", n, 50)
		n, err = rdb.Exists(ctx, "key:00", "key:01", "nope").Result()
		check(t, "EXISTS", err)
		eq(t, "EXISTS", n, 2)
		typ, err := rdb.Type(ctx, "key:00").Result()
		check(t, "TYPE", err)
		eq(t, "TYPE", typ, "string")
		ok, err := rdb.Expire(ctx, "key:00", time.Hour).Result()
		check(t, "EXPIRE", err)
		eq(t, "EXPIRE", ok, true)
		ttl, err := rdb.TTL(ctx, "key:00").Result()
		check(t, "TTL", err)
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL = %v", ttl)
		}
		ok, err = rdb.Persist(ctx, "key:00").Result()
		check(t, "PERSIST", err)
		eq(t, "PERSIST", ok, true)
		ttl, err = rdb.TTL(ctx, "key:00").Result()
		check(t, "TTL", err)
		eq(t, "TTL after PERSIST", ttl, time.Duration(-1))
		keys, err := rdb.Keys(ctx, "key:1?").Result()
		check(t, "KEYS", err)
		slices.Sort(keys)
		eq(t, "KEYS key:1?", len(keys), 10)
		var scanned []string
		it := rdb.Scan(ctx, 0, "key:*", 7).Iterator()
		for it.Next(ctx) {
			scanned = append(scanned, it.Val())
		}
		check(t, "SCAN", it.Err())
		slices.Sort(scanned)
		scanned = slices.Compact(scanned)
		eq(t, "SCAN distinct keys", len(scanned), 50)
		check(t, "RENAME", rdb.Rename(ctx, "key:01", "renamed").Err())
		v, err := rdb.Get(ctx, "renamed").Result()
		check(t, "GET renamed", err)
		eq(t, "renamed", v, "1")
		eq(t, "RENAME missing", errText(rdb.Rename(ctx, "nope", "x").Err()), "ERR no such key")
		n, err = rdb.Del(ctx, "renamed", "key:02", "nope").Result()
		check(t, "DEL", err)
		eq(t, "DEL", n, 2)
		check(t, "FLUSHDB", rdb.FlushDB(ctx).Err())
		n, err = rdb.DBSize(ctx).Result()
		check(t, "DBSIZE", err)
		eq(t, "DBSIZE after FLUSHDB", n, 0)
	})

	t.Run("lists", func(t *testing.T) {
		n, err := rdb.RPush(ctx, "l", "a", "b", "c").Result()
		check(t, "RPUSH", err)
		eq(t, "RPUSH", n, 3)
		check(t, "LPUSH", rdb.LPush(ctx, "l", "z").Err())
		vs, err := rdb.LRange(ctx, "l", 0, -1).Result()
		check(t, "LRANGE", err)
		eq(t, "LRANGE", vs, []string{"z", "a", "b", "c"})
		v, err := rdb.LPop(ctx, "l").Result()
		check(t, "LPOP", err)
		eq(t, "LPOP", v, "z")
		v, err = rdb.RPop(ctx, "l").Result()
		check(t, "RPOP", err)
		eq(t, "RPOP", v, "c")
		n, err = rdb.LLen(ctx, "l").Result()
		check(t, "LLEN", err)
		eq(t, "LLEN", n, 2)
		v, err = rdb.LIndex(ctx, "l", 1).Result()
		check(t, "LINDEX", err)
		eq(t, "LINDEX", v, "b")
		check(t, "LSET", rdb.LSet(ctx, "l", 0, "A").Err())
		check(t, "LTRIM", rdb.LTrim(ctx, "l", 0, 0).Err())
		vs, err = rdb.LRange(ctx, "l", 0, -1).Result()
		check(t, "LRANGE", err)
		eq(t, "LRANGE after LTRIM", vs, []string{"A"})
		check(t, "SET", rdb.Set(ctx, "str", "x", 0).Err())
		eq(t, "LPUSH on string", errText(rdb.LPush(ctx, "str", "x").Err()), "WRONGTYPE Operation against a key holding the wrong kind of value")
	})

	t.Run("hashes", func(t *testing.T) {
		n, err := rdb.HSet(ctx, "h", "f1", "v1", "f2", "v2").Result()
		check(t, "HSET", err)
		eq(t, "HSET", n, 2)
		v, err := rdb.HGet(ctx, "h", "f1").Result()
		check(t, "HGET", err)
		eq(t, "HGET", v, "v1")
		m, err := rdb.HGetAll(ctx, "h").Result()
		check(t, "HGETALL", err)
		eq(t, "HGETALL", m, map[string]string{"f1": "v1", "f2": "v2"})
		n, err = rdb.HIncrBy(ctx, "h", "n", 5).Result()
		check(t, "HINCRBY", err)
		eq(t, "HINCRBY", n, 5)
		ok, err := rdb.HExists(ctx, "h", "f2").Result()
		check(t, "HEXISTS", err)
		eq(t, "HEXISTS", ok, true)
		n, err = rdb.HDel(ctx, "h", "f2", "nope").Result()
		check(t, "HDEL", err)
		eq(t, "HDEL", n, 1)
		n, err = rdb.HLen(ctx, "h").Result()
		check(t, "HLEN", err)
		eq(t, "HLEN", n, 2)
		vs, err := rdb.HMGet(ctx, "h", "f1", "nope").Result()
		check(t, "HMGET", err)
		eq(t, "HMGET", vs, []any{"v1", nil})
	})

	t.Run("sets", func(t *testing.T) {
		n, err := rdb.SAdd(ctx, "set1", "a", "b", "c").Result()
		check(t, "SADD", err)
		eq(t, "SADD", n, 3)
		check(t, "SADD", rdb.SAdd(ctx, "set2", "b", "c", "d").Err())
		ms, err := rdb.SMembers(ctx, "set1").Result()
		check(t, "SMEMBERS", err)
		slices.Sort(ms)
		eq(t, "SMEMBERS", ms, []string{"a", "b", "c"})
		ok, err := rdb.SIsMember(ctx, "set1", "a").Result()
		check(t, "SISMEMBER", err)
		eq(t, "SISMEMBER", ok, true)
		// The store has no SINTER/SUNION/SDIFF: Mu's showcase needs none.
		n, err = rdb.SRem(ctx, "set1", "a", "zz").Result()
		check(t, "SREM", err)
		eq(t, "SREM", n, 1)
		n, err = rdb.SCard(ctx, "set1").Result()
		check(t, "SCARD", err)
		eq(t, "SCARD", n, 2)
		// SPOP draws with the leader's seed: every replica removes the same.
		check(t, "SPOP", rdb.SPop(ctx, "set2").Err())
	})

	t.Run("zsets", func(t *testing.T) {
		n, err := rdb.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "one"}, redis.Z{Score: 2, Member: "two"}, redis.Z{Score: 3, Member: "three"}).Result()
		check(t, "ZADD", err)
		eq(t, "ZADD", n, 3)
		vs, err := rdb.ZRange(ctx, "z", 0, -1).Result()
		check(t, "ZRANGE", err)
		eq(t, "ZRANGE", vs, []string{"one", "two", "three"})
		zs, err := rdb.ZRangeWithScores(ctx, "z", 0, 0).Result()
		check(t, "ZRANGE WITHSCORES", err)
		eq(t, "ZRANGE WITHSCORES", zs, []redis.Z{{Score: 1, Member: "one"}})
		f, err := rdb.ZIncrBy(ctx, "z", 10, "one").Result()
		check(t, "ZINCRBY", err)
		eq(t, "ZINCRBY", f, 11)
		r, err := rdb.ZRank(ctx, "z", "one").Result()
		check(t, "ZRANK", err)
		eq(t, "ZRANK", r, 2)
		sc, err := rdb.ZScore(ctx, "z", "two").Result()
		check(t, "ZSCORE", err)
		eq(t, "ZSCORE", sc, 2)
		vs, err = rdb.ZRangeByScore(ctx, "z", &redis.ZRangeBy{Min: "2", Max: "(11"}).Result()
		check(t, "ZRANGEBYSCORE", err)
		eq(t, "ZRANGEBYSCORE", vs, []string{"two", "three"})
		n, err = rdb.ZRem(ctx, "z", "two").Result()
		check(t, "ZREM", err)
		eq(t, "ZREM", n, 1)
		n, err = rdb.ZCard(ctx, "z").Result()
		check(t, "ZCARD", err)
		eq(t, "ZCARD", n, 2)
	})

	t.Run("transactions", func(t *testing.T) {
		var incr *redis.IntCmd
		var get *redis.StringCmd
		_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "tx", "10", 0)
			incr = p.Incr(ctx, "tx")
			get = p.Get(ctx, "tx")
			return nil
		})
		check(t, "TxPipelined", err)
		eq(t, "INCR in tx", incr.Val(), 11)
		eq(t, "GET in tx", get.Val(), "11")
		// A read-only transaction runs locally after one barrier.
		cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "tx")
			p.Exists(ctx, "tx")
			return nil
		})
		check(t, "read-only TxPipelined", err)
		eq(t, "read-only tx", fmt.Sprintf("%s %d", cmds[0].(*redis.StringCmd).Val(), cmds[1].(*redis.IntCmd).Val()), "11 1")
		// MULTI, DISCARD and a queue-time error on one connection.
		conn := rdb.Conn()
		defer conn.Close()
		check(t, "MULTI", conn.Do(ctx, "MULTI").Err())
		check(t, "queue SET", conn.Do(ctx, "SET", "tx", "discarded").Err())
		check(t, "DISCARD", conn.Do(ctx, "DISCARD").Err())
		v, err := conn.Get(ctx, "tx").Result()
		check(t, "GET after DISCARD", err)
		eq(t, "GET after DISCARD", v, "11")
		check(t, "MULTI", conn.Do(ctx, "MULTI").Err())
		eq(t, "unknown in MULTI", errText(conn.Do(ctx, "NOSUCHCMD").Err()), "ERR unknown command 'NOSUCHCMD', with args beginning with: ")
		err = conn.Do(ctx, "EXEC").Err()
		if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
			t.Errorf("EXEC after a queue error: %v", err)
		}
		// A runtime error inside EXEC fails that command only.
		cmds, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "txs", "text", 0)
			p.Incr(ctx, "txs")
			p.Set(ctx, "txs2", "after", 0)
			return nil
		})
		if err == nil || len(cmds) != 3 || cmds[0].Err() != nil || cmds[1].Err() == nil || cmds[2].Err() != nil {
			t.Errorf("tx with a runtime error: %v %v", err, cmds)
		}
	})

	t.Run("server", func(t *testing.T) {
		v, err := rdb.Ping(ctx).Result()
		check(t, "PING", err)
		eq(t, "PING", v, "PONG")
		v, err = rdb.Echo(ctx, "hi there").Result()
		check(t, "ECHO", err)
		eq(t, "ECHO", v, "hi there")
		info, err := rdb.Info(ctx, "replication").Result()
		check(t, "INFO", err)
		fields := map[string]string{}
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = v
			}
		}
		eq(t, "role", fields["role"], "master")
		eq(t, "gomu_role", fields["gomu_role"], "leader")
		eq(t, "gomu_id", fields["gomu_id"], lead.ID)
		eq(t, "gomu_leader_id", fields["gomu_leader_id"], lead.ID)
		eq(t, "gomu_leader_addr", fields["gomu_leader_addr"], lead.Srv.Addr())
		eq(t, "connected_slaves", fields["connected_slaves"], 2)
		if n, err := strconv.Atoi(fields["gomu_commit_index"]); err != nil || n <= 0 {
			t.Errorf("gomu_commit_index %q", fields["gomu_commit_index"])
		}
		tm, err := rdb.Time(ctx).Result()
		check(t, "TIME", err)
		if d := time.Since(tm); d < -time.Minute || d > time.Minute {
			t.Errorf("TIME %v is %v off", tm, d)
		}
		conn := rdb.Conn()
		defer conn.Close()
		check(t, "CLIENT SETNAME", conn.ClientSetName(ctx, "tester").Err())
		v, err = conn.ClientGetName(ctx).Result()
		check(t, "CLIENT GETNAME", err)
		eq(t, "CLIENT GETNAME", v, "tester")
		check(t, "SELECT 1", conn.Select(ctx, 1).Err())
		check(t, "SET in db 1", conn.Set(ctx, "in1", "v", 0).Err())
		eq(t, "EXISTS in db 0", rdb.Exists(ctx, "in1").Val(), int64(0))
		check(t, "SELECT 0", conn.Select(ctx, 0).Err())
		eq(t, "SELECT 16", errText(conn.Select(ctx, 16).Err()), "ERR DB index is out of range")
		cfg, err := rdb.ConfigGet(ctx, "maxmemory*").Result()
		check(t, "CONFIG GET", err)
		eq(t, "CONFIG GET", cfg, map[string]string{"maxmemory": "0", "maxmemory-policy": "noeviction", "maxmemory-samples": "5"})
	})

	t.Run("pipeline", func(t *testing.T) {
		var cmds []redis.Cmder
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range 100 {
				k := fmt.Sprintf("p%d", i%10)
				switch i % 4 {
				case 0:
					cmds = append(cmds, p.Set(ctx, k, i, 0))
				case 1:
					cmds = append(cmds, p.Get(ctx, k))
				case 2:
					cmds = append(cmds, p.Incr(ctx, "pctr"))
				case 3:
					cmds = append(cmds, p.RPush(ctx, "plist", i))
				}
			}
			return nil
		})
		if err != nil && err != redis.Nil { // Nil: a GET before any SET of its key
			t.Fatalf("Pipelined: %v", err)
		}
		lastSet := map[string]int{}
		ctr, llen := 0, 0
		for i, cmd := range cmds {
			k := fmt.Sprintf("p%d", i%10)
			switch i % 4 {
			case 0:
				eq(t, fmt.Sprint("SET ", i), cmd.(*redis.StatusCmd).Val(), "OK")
				lastSet[k] = i
			case 1:
				want, ok := lastSet[k]
				v, err := cmd.(*redis.StringCmd).Result()
				if !ok {
					eq(t, fmt.Sprint("GET ", i), err, redis.Nil)
				} else {
					eq(t, fmt.Sprint("GET ", i), v, want)
				}
			case 2:
				ctr++
				eq(t, fmt.Sprint("INCR ", i), cmd.(*redis.IntCmd).Val(), ctr)
			case 3:
				llen++
				eq(t, fmt.Sprint("RPUSH ", i), cmd.(*redis.IntCmd).Val(), llen)
			}
		}
	})

	// Every replica applied the same commands.
	want := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if got := digest(t, f.Srv.Addr()); got != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, got, want)
		}
	}
}

// errText is err's message, "<nil>" for none.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
