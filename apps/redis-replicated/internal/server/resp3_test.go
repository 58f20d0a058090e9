package server

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestRESP3Differential runs a script after HELLO 3 on a standalone server
// and on Debian's redis-server and compares every reply byte for byte
// (the connection id in HELLO's map aside): nulls, doubles, maps, sets,
// scored pairs, transactions, pipelined writes, pushes in subscribed mode,
// and HELLO 2 going back.
func TestRESP3Differential(t *testing.T) {
	script := [][]string{
		{"HELLO", "3"},
		{"HSET", "h", "f", "v", "g", "w"}, {"HGETALL", "h"}, {"HGETALL", "nope"},
		{"GET", "nope"}, {"MGET", "h", "nope"}, {"LPOP", "nope"}, {"LPOP", "nope", "2"},
		{"SADD", "s", "3", "1", "2"}, {"SMEMBERS", "s"}, {"SPOP", "nope", "2"},
		{"SINTER", "s", "s"}, {"SUNION", "s", "nope"}, {"SDIFF", "s", "nope"}, {"SMISMEMBER", "s", "1", "9"},
		{"ZADD", "z", "1.5", "a", "2", "b", "inf", "c", "-3", "d"}, {"ZSCORE", "z", "a"}, {"ZSCORE", "z", "c"}, {"ZSCORE", "z", "x"},
		{"ZINCRBY", "z", "0.1", "a"}, {"ZADD", "z", "INCR", "1", "b"}, {"ZADD", "z", "NX", "INCR", "1", "b"}, {"ZMSCORE", "z", "a", "x", "d"},
		{"ZUNION", "1", "z", "WITHSCORES"}, {"ZINTER", "2", "z", "z", "WITHSCORES"}, {"ZMPOP", "1", "nope", "MIN"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"ZRANGE", "z", "0", "-1"}, {"ZREVRANGE", "z", "0", "1", "WITHSCORES"},
		{"ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"}, {"ZPOPMIN", "z"}, {"ZPOPMAX", "z", "2"}, {"ZPOPMAX", "nope"},
		{"ZADD", "m", "1", "p", "2", "q"}, {"ZMPOP", "1", "m", "MAX", "COUNT", "2"},
		{"SET", "k1", "ohmytext"}, {"SET", "k2", "mynewtext"}, {"LCS", "k1", "k2", "IDX", "WITHMATCHLEN"}, {"LCS", "k1", "k2"},
		{"LMPOP", "1", "nope", "LEFT"}, {"RPUSH", "l", "a"}, {"LMPOP", "1", "l", "LEFT"},
		{"CONFIG", "GET", "maxmemory"}, {"INCRBYFLOAT", "f", "1.5"}, {"HINCRBYFLOAT", "h2", "f", "1.5"},
		{"MULTI"}, {"GET", "nope"}, {"ZSCORE", "z", "b"}, {"HGETALL", "h"}, {"SET", "k", "v"}, {"EXEC"},
		{"MULTI"}, {"GET", "nope"}, {"SMEMBERS", "s"}, {"EXEC"},
		{"SUBSCRIBE", "ch"}, {"PING"}, {"GET", "nope"}, {"UNSUBSCRIBE"}, {"UNSUBSCRIBE"},
		{"HELLO", "2"}, {"GET", "nope"}, {"HGETALL", "h"},
	}
	id := regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`)
	run := func(addr string) []string {
		cn := redistest.Dial(t, addr)
		var got []string
		for _, args := range script {
			got = append(got, id.ReplaceAllString(cn.Do(args...), "$2\r\nid\r\n:ID\r\n"))
		}
		// Pipelined writes: one proposal, replies rewritten each.
		cn.Do("HELLO", "3")
		cn.Send([]byte("*4\r\n$4\r\nZADD\r\n$1\r\ny\r\n$1\r\n1\r\n$1\r\nm\r\n*5\r\n$4\r\nZADD\r\n$1\r\ny\r\n$4\r\nINCR\r\n$3\r\n2.5\r\n$1\r\nm\r\n*2\r\n$4\r\nSPOP\r\n$7\r\nmissing\r\n*3\r\n$7\r\nZINCRBY\r\n$1\r\ny\r\n$1\r\n1\r\n$1\r\nm\r\n"))
		for range 4 {
			r, err := cn.Read()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		return got
	}
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	for i := range want {
		if got[i] != want[i] {
			step := "pipelined"
			if i < len(script) {
				step = string(regexp.MustCompile(`\s+`).ReplaceAll([]byte(regexp.QuoteMeta(joinArgs(script[i]))), []byte(" ")))
			}
			t.Errorf("step %d (%s):\n got %q\nwant %q", i, step, got[i], want[i])
		}
	}
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

// TestRESP3GoRedis: go-redis v9 in its default mode (it says HELLO 3)
// reads maps, sets, doubles and nulls from the server as it reads them
// from Redis, on the leader of a cluster.
func TestRESP3GoRedis(t *testing.T) {
	c := startCluster(t, 3)
	rc := redis.NewClient(&redis.Options{Addr: c.WaitLeader().Srv.Addr()})
	defer rc.Close()
	ctx := context.Background()
	if err := rc.HSet(ctx, "h", "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := rc.HGetAll(ctx, "h").Result(); err != nil || len(m) != 2 || m["a"] != "1" || m["b"] != "2" {
		t.Fatalf("HGETALL: %v, %v", m, err)
	}
	rc.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "x"}, redis.Z{Score: 2, Member: "y"})
	if s, err := rc.ZScore(ctx, "z", "x").Result(); err != nil || s != 1.5 {
		t.Fatalf("ZSCORE: %v, %v", s, err)
	}
	if zs, err := rc.ZRangeWithScores(ctx, "z", 0, -1).Result(); err != nil || len(zs) != 2 || zs[1].Score != 2 || zs[1].Member != "y" {
		t.Fatalf("ZRANGE WITHSCORES: %v, %v", zs, err)
	}
	if err := rc.Get(ctx, "nope").Err(); err != redis.Nil {
		t.Fatalf("GET of a missing key: %v, want redis.Nil", err)
	}
	rc.SAdd(ctx, "s", "p", "q")
	if ms, err := rc.SMembers(ctx, "s").Result(); err != nil || len(ms) != 2 {
		t.Fatalf("SMEMBERS: %v, %v", ms, err)
	}
	// go-redis fell back to RESP2 if HELLO 3 was refused: make sure it
	// did not, so the replies above were read as RESP3.
	if p := rc.Do(ctx, "CLIENT", "INFO").String(); !strings.Contains(p, "resp=3") {
		t.Fatalf("go-redis's connection is not on RESP3: %s", p)
	}
}
