package store

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// runConfigDiff is runDiff for scripts that change the encoding
// thresholds: a "config set" step runs as the internal gomu.config the
// server proposes for it, a "config get" of one parameter reads ConfigGet.
func runConfigDiff(t *testing.T, script []step) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i, st := range script {
		want := rc.Do(st.args...)
		env := &Env{NowMs: time.Now().UnixMilli(), Rand: rnd}
		var got string
		switch {
		case strings.EqualFold(st.args[0], "config") && strings.EqualFold(st.args[1], "set"):
			got = string(execArgs(s, env, append([]string{ConfigCommand}, st.args[2:]...)))
		case strings.EqualFold(st.args[0], "config") && strings.EqualFold(st.args[1], "get"):
			v, _ := s.ConfigGet(st.args[2])
			b := resp.AppendArrayLen(nil, 2)
			b = resp.AppendBulkString(b, st.args[2])
			got = string(resp.AppendBulkString(b, v))
		default:
			got = string(execArgs(s, env, st.args))
		}
		if st.unordered {
			want, got = sortedArray(t, want), sortedArray(t, got)
		}
		if got != want {
			t.Fatalf("step %d %q:\n got %q\nwant %q", i, st.args, got, want)
		}
	}
}

// TestConfigEncodingsDiff changes every threshold the suite changes and
// checks OBJECT ENCODING (and an HLL's bytes) against Redis's as values
// grow, shrink and are computed by the *STORE commands.
func TestConfigEncodingsDiff(t *testing.T) {
	enc := func(k string) step { return cmd("object", "encoding", k) }
	script := []step{
		// Hashes: entries, then value length, never converted back.
		cmd("config", "set", "hash-max-listpack-entries", "4"),
		cmd("config", "get", "hash-max-ziplist-entries"),
		cmd("hset", "h", "a", "1", "b", "2", "c", "3", "d", "4"), enc("h"),
		cmd("hset", "h", "e", "5"), enc("h"),
		cmd("hdel", "h", "e", "d"), enc("h"),
		cmd("config", "set", "hash-max-ziplist-value", "8"),
		cmd("hset", "h2", "f", "12345678"), enc("h2"),
		cmd("hsetnx", "h2", "g", "123456789"), enc("h2"),
		cmd("hset", "h3", "f", "1"), cmd("hincrbyfloat", "h3", "f", "0.123456789"), enc("h3"),
		cmd("copy", "h", "hcopy"), enc("hcopy"),
		// Sets: size of an intset.
		cmd("config", "set", "set-max-intset-entries", "3"),
		cmd("sadd", "s", "1", "2", "3"), enc("s"),
		cmd("sadd", "s", "4"), enc("s"),
		cmd("srem", "s", "4", "3"), enc("s"),
		cmd("sadd", "t", "1", "2", "5", "6"), enc("t"),
		cmd("sunionstore", "u", "s"), enc("u"),
		cmd("sunionstore", "u", "t"), enc("u"),
		cmd("sinterstore", "u", "t", "t"), enc("u"),
		cmd("sdiffstore", "u", "t", "s"), enc("u"),
		cmd("smembers", "u"),
		// Sorted sets: the first member, the count, the *STORE results.
		cmd("config", "set", "zset-max-listpack-entries", "2"),
		cmd("zadd", "z", "1", "a", "2", "b"), enc("z"),
		cmd("zadd", "z", "3", "c"), enc("z"),
		cmd("zrem", "z", "c", "b"), enc("z"),
		cmd("zunionstore", "zu", "1", "z"), enc("zu"),
		cmd("zadd", "z", "2", "b", "3", "c"),
		cmd("zunionstore", "zu", "1", "z"), enc("zu"),
		cmd("zrangestore", "zr", "z", "0", "1"), enc("zr"),
		cmd("zrangestore", "zr", "z", "0", "-1"), enc("zr"),
		cmd("config", "set", "zset-max-ziplist-value", "3", "zset-max-listpack-entries", "128"),
		cmd("zadd", "z2", "1", "abcd"), enc("z2"),
		cmd("zadd", "z3", "1", "abc"), enc("z3"),
		cmd("zadd", "z3", "2", "abcde"), enc("z3"),
		cmd("zinterstore", "zi", "1", "z3"), enc("zi"),
		cmd("config", "set", "zset-max-listpack-entries", "0"),
		cmd("zadd", "z4", "1", "a"), enc("z4"),
		cmd("config", "get", "zset-max-listpack-entries"),
		// HyperLogLog: promotion to dense at the sparse size limit.
		cmd("config", "set", "hll-sparse-max-bytes", "30"),
		cmd("pfadd", "hll", "a", "b", "c", "d", "e", "f", "g", "h"),
		cmd("get", "hll"),
		cmd("config", "set", "hll-sparse-max-bytes", "3000"),
		cmd("pfadd", "hll2", "a", "b", "c", "d", "e", "f", "g", "h"),
		cmd("get", "hll2"),
		// Lists keep their encoding; the values read back.
		cmd("config", "set", "list-max-ziplist-size", "-1", "list-compress-depth", "2"),
		cmd("config", "get", "list-max-listpack-size"),
		cmd("config", "get", "list-compress-depth"),
		cmd("rpush", "l", "a"), enc("l"),
		// Refusals, all or nothing.
		cmd("config", "set", "set-max-intset-entries", "-1"),
		cmd("config", "set", "list-compress-depth", "x"),
		cmd("config", "set", "hash-max-listpack-value", "1kb"),
		cmd("config", "get", "hash-max-listpack-value"),
		cmd("config", "set", "hash-max-listpack-value", "x1"),
		cmd("config", "set", "hash-max-listpack-entries", "7", "set-max-intset-entries", "z"),
		cmd("config", "get", "hash-max-listpack-entries"),
	}
	runConfigDiff(t, script)
}

// TestConfigSnapshot checks that the thresholds and the encodings they
// gave travel in the snapshot and the Digest.
func TestConfigSnapshot(t *testing.T) {
	env := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 2))}
	a := New()
	for _, c := range [][]string{
		{ConfigCommand, "hash-max-listpack-entries", "1", "zset-max-listpack-entries", "1", "set-max-intset-entries", "1"},
		{"hset", "h", "a", "1", "b", "2"}, {"hdel", "h", "b"},
		{"zadd", "z", "1", "a", "2", "b"}, {"zrem", "z", "b"},
		{"sadd", "s", "1", "2"}, {"srem", "s", "2"},
		{ConfigCommand, "hash-max-listpack-entries", "512", "zset-max-listpack-entries", "128"},
	} {
		execArgs(a, env, c)
	}
	var buf bytes.Buffer
	if err := a.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := New()
	if err := b.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() {
		t.Fatal("digest differs after restore")
	}
	for k, want := range map[string]string{"h": "hashtable", "z": "skiplist", "s": "hashtable"} {
		if got := string(execArgs(b, env, []string{"object", "encoding", k})); got != string(resp.AppendBulkString(nil, want)) {
			t.Errorf("%s: encoding %q, want %s", k, got, want)
		}
	}
	if v, _ := b.ConfigGet("set-max-intset-entries"); v != "1" {
		t.Errorf("set-max-intset-entries restored as %s", v)
	}
	c := New()
	execArgs(c, env, []string{ConfigCommand, "set-max-intset-entries", "2"})
	if c.Digest() == New().Digest() {
		t.Error("the digest ignores the config")
	}
}

// TestPFDebugDiff: PFDEBUG's subcommands against Redis's, sparse and dense.
func TestPFDebugDiff(t *testing.T) {
	runDiff(t, []step{
		cmd("pfadd", "h", "a", "b", "c"),
		cmd("pfdebug", "encoding", "h"),
		cmd("pfdebug", "decode", "h"),
		cmd("pfdebug", "todense", "h"),
		cmd("pfdebug", "todense", "h"),
		cmd("pfdebug", "encoding", "h"),
		cmd("pfdebug", "decode", "h"),
		cmd("get", "h"),
		cmd("pfadd", "g", "x"),
		cmd("pfdebug", "getreg", "g"),
		cmd("pfdebug", "encoding", "g"),
		cmd("pfdebug", "encoding", "missing"),
		cmd("pfdebug", "nope", "g"),
		cmd("pfdebug", "encoding"),
		cmd("set", "str", "x"),
		cmd("pfdebug", "encoding", "str"),
		cmd("lpush", "l", "x"),
		cmd("pfdebug", "encoding", "l"),
		cmd("pfselftest"),
	})
}

// TestStringEncodingDiff: OBJECT ENCODING of strings follows Redis's
// history rules (raw after in-place changes, never int from INCRBYFLOAT,
// by content after SET, INCR and DEBUG RELOAD's loading).
func TestStringEncodingDiff(t *testing.T) {
	enc := func(k string) step { return cmd("object", "encoding", k) }
	runDiff(t, []step{
		cmd("set", "k", "1234"), enc("k"),
		cmd("setrange", "k", "0", "2"), enc("k"), cmd("get", "k"),
		cmd("set", "k", "1234"), cmd("setrange", "k", "0", ""), enc("k"),
		cmd("set", "k", "1234"), cmd("setrange", "k", "5", "2"), enc("k"),
		cmd("setrange", "new", "0", "ab"), enc("new"),
		cmd("set", "a", "x"), cmd("append", "a", "y"), enc("a"),
		cmd("append", "a2", "12"), enc("a2"),
		cmd("incr", "a3"), enc("a3"), cmd("append", "a3", "4"), enc("a3"), cmd("incr", "a3"), enc("a3"),
		cmd("incrbyfloat", "f", "3"), enc("f"), cmd("get", "f"),
		cmd("set", "b", "abc"), cmd("setbit", "b", "1", "1"), enc("b"),
		cmd("setbit", "b2", "1", "1"), enc("b2"),
		cmd("bitop", "or", "b3", "b", "b2"), enc("b3"),
		cmd("bitfield", "b4", "set", "u8", "0", "65"), enc("b4"),
		cmd("pfadd", "h", "a"), enc("h"),
		cmd("set", "a", "plain"), enc("a"),
		cmd("copy", "b", "bcopy"), enc("bcopy"),
	})
}
