package server

import (
	"bufio"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// order says how a command's reply is compared with Redis's.
type order int

const (
	// exact: byte for byte.
	exact order = iota
	// sorted: a flat array whose order Redis leaves to its hash tables
	// (SMEMBERS of a set that is not an intset, KEYS, HKEYS and HVALS of a
	// hash, which Redis keeps as a listpack in insertion order only while
	// it is small): compared with its elements sorted.
	sorted
	// sortedPairs: HGETALL, for the same reason, compared as sorted
	// field-value pairs.
	sortedPairs
)

// diffCmd is one command of the random stream.
type diffCmd struct {
	args []string
	cmp  order
}

// gen makes a random command stream over a small keyspace, so that types
// collide (WRONGTYPE), keys come and go, and the error paths are hit. It
// leaves out what depends on time or randomness: SPOP, SRANDMEMBER,
// SCAN's cursors, PTTL (TTL of a fresh 1000 s expiry is stable).
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g gen) key() string              { return "k" + strconv.Itoa(g.r.IntN(10)) }
func (g gen) num() string              { return strconv.Itoa(g.r.IntN(41) - 20) }
func (g gen) idx() string              { return strconv.Itoa(g.r.IntN(13) - 6) }
func (g gen) val() string {
	switch g.r.IntN(8) {
	case 0:
		return ""
	case 1:
		return "x\x00y\r\n\xff"
	case 2:
		return g.num()
	case 3:
		return strconv.FormatFloat(float64(g.r.IntN(2000)-1000)/8, 'f', -1, 64)
	case 4:
		return "9223372036854775807"
	default:
		return g.pick("a", "b", "c", "hello", "world", "zz", "1.5e3", "abc", "-0", "nan")
	}
}
func (g gen) member() string { return g.pick("a", "b", "c", "d", "e", "1", "2", "3", "10") }
func (g gen) score() string {
	return g.pick("0", "1", "-1", "2.5", "3", "1e3", "-inf", "+inf", "nan", "x", g.num())
}

func (g gen) next() diffCmd {
	c := func(args ...string) diffCmd { return diffCmd{args: args} }
	k, v := g.key(), g.val()
	switch g.r.IntN(70) {
	// strings
	case 0, 1, 2:
		args := []string{"SET", k, v}
		switch g.r.IntN(6) {
		case 0:
			args = append(args, "NX")
		case 1:
			args = append(args, "XX")
		case 2:
			args = append(args, "GET")
		case 3:
			args = append(args, "KEEPTTL")
		case 4:
			args = append(args, g.pick("EX", "PX", "NX", "BOGUS"), g.pick("1000", "-1", "0", "x"))
		}
		return c(args...)
	case 3, 4:
		return c("GET", k)
	case 5:
		return c(g.pick("GETSET", "APPEND", "SETNX"), k, v)
	case 6:
		return c(g.pick("GETDEL", "STRLEN", "INCR", "DECR"), k)
	case 7:
		return c(g.pick("INCRBY", "DECRBY"), k, g.pick(g.num(), "x", "9223372036854775807"))
	case 8:
		return c("INCRBYFLOAT", k, g.pick("1.5", "-0.25", "x", "1e10", g.num()))
	case 9:
		return c("GETRANGE", k, g.idx(), g.idx())
	case 10:
		return c("SETRANGE", k, strconv.Itoa(g.r.IntN(8)-1), v)
	case 11:
		return c("MSET", k, v, g.key(), g.val())
	case 12:
		return c("MGET", k, g.key(), g.key())
	case 13:
		return c("MSETNX", k, v, g.key(), g.val())
	// keys
	case 14, 15:
		return c("DEL", k, g.key())
	case 16:
		return c("EXISTS", k, g.key(), k)
	case 17:
		return c("TYPE", k)
	case 18:
		return c(g.pick("RENAME", "RENAMENX"), k, g.key())
	case 19:
		return c("EXPIRE", k, g.pick("1000", "-1", "x"))
	case 20:
		return c(g.pick("PERSIST", "TTL"), k)
	case 21:
		return diffCmd{args: []string{"KEYS", g.pick("*", "k[1-4]", "k?", "*1*", "x*")}, cmp: sorted}
	case 22:
		return c("DBSIZE")
	case 23:
		if g.r.IntN(10) == 0 {
			return c("FLUSHDB")
		}
		return c("EXISTS", k)
	// lists
	case 24, 25, 26:
		return c(g.pick("LPUSH", "RPUSH"), k, g.member(), g.member())
	case 27, 28:
		if g.r.IntN(2) == 0 {
			return c(g.pick("LPOP", "RPOP"), k)
		}
		return c(g.pick("LPOP", "RPOP"), k, g.pick("0", "1", "3", "-1", "x"))
	case 29, 30:
		return c("LRANGE", k, g.idx(), g.idx())
	case 31:
		return c(g.pick("LINDEX", "LSET"), k, g.idx(), g.member())
	case 32:
		return c("LLEN", k)
	case 33:
		return c("LTRIM", k, g.idx(), g.idx())
	case 34:
		return c("LREM", k, g.idx(), g.member())
	// hashes
	case 35, 36, 37:
		return c(g.pick("HSET", "HMSET"), k, g.member(), v, g.member(), g.val())
	case 38:
		return c("HGET", k, g.member())
	case 39:
		return c("HDEL", k, g.member(), g.member())
	case 40:
		return c(g.pick("HEXISTS"), k, g.member())
	case 41:
		return c("HLEN", k)
	case 42:
		return c("HINCRBY", k, g.member(), g.pick(g.num(), "x"))
	case 43:
		return c("HMGET", k, g.member(), g.member())
	case 44:
		return diffCmd{args: []string{"HGETALL", k}, cmp: sortedPairs}
	case 45:
		return diffCmd{args: []string{g.pick("HKEYS", "HVALS"), k}, cmp: sorted}
	// sets
	case 46, 47, 48:
		return c("SADD", k, g.member(), g.member())
	case 49:
		return c("SREM", k, g.member(), g.member())
	case 50:
		return c("SISMEMBER", k, g.member())
	case 51:
		return c("SCARD", k)
	case 52:
		return diffCmd{args: []string{"SMEMBERS", k}, cmp: sorted}
	// sorted sets
	case 53, 54, 55:
		args := []string{"ZADD", k}
		if g.r.IntN(3) == 0 {
			args = append(args, g.pick("NX", "XX", "GT", "LT", "CH", "INCR"))
		}
		return c(append(args, g.score(), g.member())...)
	case 56:
		return c("ZREM", k, g.member())
	case 57:
		return c(g.pick("ZSCORE", "ZRANK", "ZREVRANK"), k, g.member())
	case 58:
		return c("ZCARD", k)
	case 59, 60:
		args := []string{g.pick("ZRANGE", "ZREVRANGE"), k, g.idx(), g.idx()}
		if g.r.IntN(2) == 0 {
			args = append(args, "WITHSCORES")
		}
		return c(args...)
	case 61:
		return c("ZRANGEBYSCORE", k, g.pick("-inf", "0", "(1", "x"), g.pick("+inf", "3", "(10"))
	case 62:
		return c("ZINCRBY", k, g.score(), g.member())
	case 63:
		return c(g.pick("ZPOPMIN", "ZPOPMAX"), k)
	// errors
	case 64:
		return c(g.pick("GET", "SET", "LPUSH", "HSET", "ZADD", "SADD", "DEL", "MSET"))
	case 65:
		return c(g.pick("NOSUCHCOMMAND", "NO\x00SUCH"), k, g.pick(v, strings.Repeat("a", 200)), v)
	case 66:
		return c("MSET", k)
	case 67:
		return c("get", k) // case-insensitive names
	case 68:
		return c("PING")
	default:
		return c("ECHO", v)
	}
}

// TestDifferential sends one seeded random stream to Redis 7 and to the
// gomu leader over raw RESP and compares every reply; then it replays the
// stream's reads on a follower and compares those with the leader's, and
// checks every replica's DEBUG DIGEST.
func TestDifferential(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	raddr := redistest.Start(t)
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	rc, gc := redistest.Dial(t, raddr), redistest.Dial(t, lead.Srv.Addr())
	g := gen{rand.New(rand.NewPCG(20260501, 7))}
	var reads []diffCmd
	for i := range n {
		cmd := g.next()
		want, got := rc.Do(cmd.args...), gc.Do(cmd.args...)
		if got != want {
			if nw, ng := normalize(t, want, cmd.cmp), normalize(t, got, cmd.cmp); nw != ng {
				t.Fatalf("command %d %q:\n gomu  %q\n redis %q", i, cmd.args, got, want)
			}
		}
		if d := store.Lookup([]byte(cmd.args[0])); d != nil && d.Flags&store.Write == 0 {
			reads = append(reads, cmd)
		}
	}
	if len(reads) < n/4 {
		t.Fatalf("only %d reads in %d commands", len(reads), n)
	}
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		for i, cmd := range reads {
			want, got := gc.Do(cmd.args...), fc.Do(cmd.args...)
			if got != want {
				// The leader's expiry sweep may have been applied
				// between the two reads (DBSIZE counts expired keys
				// until swept): the follower must then agree with
				// the leader read after it.
				if after := gc.Do(cmd.args...); got != after {
					t.Fatalf("read %d %q: follower %d %q, leader %q before and %q after", i, cmd.args, f.ID, got, want, after)
				}
			}
		}
	}
	want := digest(t, lead.Srv.Addr())
	if !strings.HasPrefix(want, "$64\r\n") {
		t.Fatalf("leader DEBUG DIGEST: %q", want)
	}
	for _, f := range c.Followers(lead) {
		if got := digest(t, f.Srv.Addr()); got != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, got, want)
		}
	}
}

// normalize returns an array reply with its elements (or pairs of
// elements) sorted; other replies as they are.
func normalize(t *testing.T, raw string, o order) string {
	t.Helper()
	if o == exact || !strings.HasPrefix(raw, "*") {
		return raw
	}
	br := bufio.NewReader(strings.NewReader(raw))
	head, _ := br.ReadString('\n')
	var elems []string
	for {
		e, err := resp.ReadReply(br, nil, 1<<30)
		if err != nil {
			break
		}
		elems = append(elems, string(e))
	}
	if o == sortedPairs {
		pairs := make([]string, 0, len(elems)/2)
		for i := 0; i+1 < len(elems); i += 2 {
			pairs = append(pairs, elems[i]+elems[i+1])
		}
		elems = pairs
	}
	slices.Sort(elems)
	return head + strings.Join(elems, "")
}

// TestDiffGenerator keeps the generator honest: the stream covers every
// group and its commands are ones the store or the server knows, or the
// deliberate unknown one.
func TestDiffGenerator(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 1))}
	seen := map[string]bool{}
	for range 5000 {
		cmd := g.next()
		name := strings.ToLower(cmd.args[0])
		seen[name] = true
		if name != "nosuchcommand" && name != "no\x00such" && store.Lookup([]byte(name)) == nil && lookupServerCommand([]byte(name)) == nil {
			t.Errorf("generator makes %q, which nobody implements", name)
		}
	}
	for _, w := range []string{"set", "lpush", "hset", "sadd", "zadd", "keys", "rename", "expire", "nosuchcommand"} {
		if !seen[w] {
			t.Errorf("generator never makes %s", w)
		}
	}
}
