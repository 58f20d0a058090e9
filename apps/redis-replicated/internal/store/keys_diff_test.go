package store

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// keysMoreScripts are differential scripts for the generic key commands
// beyond keysScripts: COPY, EXPIRETIME, OBJECT, TOUCH, UNLINK.
var keysMoreScripts = map[string][]step{
	"copy": {
		cmd("COPY", "a", "b"),
		cmd("SET", "a", "v"),
		cmd("COPY", "a", "a"), cmd("COPY", "a", "a", "DB", "0"),
		cmd("COPY", "a", "b"), cmd("GET", "b"), cmd("COPY", "a", "b"),
		cmd("SET", "a", "w"), cmd("COPY", "a", "b", "REPLACE"), cmd("GET", "b"),
		cmd("COPY", "a", "b", "replace", "db", "0"), cmd("COPY", "a", "b", "DB", "0", "REPLACE"),
		cmd("COPY", "a", "c", "DB", "x"), cmd("COPY", "a", "c", "DB", "-1"),
		cmd("COPY", "a", "c", "DB", "16"), cmd("COPY", "a", "c", "DB", "99999999999"),
		cmd("COPY", "a", "c", "DB"), cmd("COPY", "a", "c", "FOO"),
		cmd("COPY", "a", "c", "REPLACE", "FOO"), cmd("COPY", "nokey", "c", "FOO"),
		cmd("COPY", "a", "a", "FOO"), cmd("COPY", "a"),
		cmd("PEXPIREAT", "a", "4102444800123"), cmd("COPY", "a", "t"), cmd("PEXPIRETIME", "t"),
		cmd("RPUSH", "l", "1", "2", "3"), cmd("COPY", "l", "l2"), cmd("RPUSH", "l2", "4"),
		cmd("LRANGE", "l", "0", "-1"), cmd("LRANGE", "l2", "0", "-1"),
		cmd("HSET", "h", "f1", "v1", "f2", "v2"), cmd("COPY", "h", "h2"), cmd("HSET", "h2", "f3", "v3"),
		cmd("HGETALL", "h"), cmd("HGETALL", "h2"),
		cmd("SADD", "s", "1", "2", "3"), cmd("COPY", "s", "s2"), cmd("SADD", "s2", "x"),
		anyOrder("SMEMBERS", "s"), anyOrder("SMEMBERS", "s2"), cmd("OBJECT", "ENCODING", "s2"),
		cmd("ZADD", "z", "1", "a", "2", "b"), cmd("COPY", "z", "z2"), cmd("ZADD", "z2", "0", "c"),
		cmd("ZRANGE", "z", "0", "-1", "WITHSCORES"), cmd("ZRANGE", "z2", "0", "-1", "WITHSCORES"),
		cmd("COPY", "z", "l", "REPLACE"), cmd("TYPE", "l"), cmd("ZRANGE", "l", "0", "-1"),
		cmd("DEL", "z"), cmd("ZRANGE", "l", "0", "-1"),
	},
	"expiretime": {
		cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("SET", "k", "v"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("PEXPIREAT", "k", "4102444800499"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("PEXPIREAT", "k", "4102444800500"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "4102444801"), cmd("EXPIRETIME", "k"), cmd("PEXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "4102444802", "LT"), cmd("EXPIREAT", "k", "4102444800", "LT"),
		cmd("EXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "4102444800", "GT"), cmd("EXPIREAT", "k", "4102444900", "GT"),
		cmd("EXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "4102444999", "NX"), cmd("EXPIREAT", "k", "4102444999", "XX"),
		cmd("EXPIRETIME", "k"),
		cmd("PERSIST", "k"), cmd("EXPIRETIME", "k"),
		cmd("EXPIREAT", "k", "4102444999", "XX"), cmd("EXPIREAT", "k", "4102444999", "GT"),
		cmd("EXPIREAT", "k", "4102444999", "LT"), cmd("EXPIRETIME", "k"),
		cmd("PEXPIREAT", "k", "1"), cmd("EXISTS", "k"), cmd("EXPIRETIME", "k"),
		cmd("EXPIRETIME"), cmd("EXPIRETIME", "a", "b"), cmd("PEXPIRETIME", "a", "b"),
		cmd("SET", "k", "v", "EX", "100"), cmd("EXPIRE", "k", "-1"), cmd("EXISTS", "k"),
	},
	"touch-unlink": {
		cmd("MSET", "a", "1", "b", "2"), cmd("RPUSH", "l", "x"),
		cmd("TOUCH", "a", "b", "l", "nokey", "a"), cmd("TOUCH"),
		cmd("UNLINK", "a", "nokey", "a"), cmd("UNLINK"),
		cmd("UNLINK", "b", "l"), cmd("DBSIZE"), cmd("TOUCH", "a"),
	},
	"object": {
		cmd("OBJECT", "ENCODING", "nokey"), cmd("OBJECT", "REFCOUNT", "nokey"),
		cmd("OBJECT", "IDLETIME", "nokey"), cmd("OBJECT", "FREQ", "nokey"),
		cmd("OBJECT", "HELP"), cmd("object", "help"), cmd("OBJECT", "HELP", "x"),
		cmd("OBJECT"), cmd("OBJECT", "FOO"), cmd("OBJECT", "foo", "bar"), cmd("OBJECT", "ENCODING"),
		cmd("OBJECT", "encoding", "a", "b"), cmd("OBJECT", "Refcount"), cmd("OBJECT", "FREQ"),
		cmd("OBJECT", "IDLETIME", "a", "b"),
		cmd("OBJECT", strings.Repeat("x", 200)), cmd("OBJECT", "a\x00b"),
		cmd("SET", "i", "123"), cmd("OBJECT", "ENCODING", "i"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("OBJECT", "FREQ", "i"),
		cmd("SET", "i", "9999"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("SET", "i", "10000"), cmd("OBJECT", "ENCODING", "i"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("SET", "i", "-5"), cmd("OBJECT", "ENCODING", "i"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("SET", "i", "0"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("SET", "i", "-0"), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", "007"), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", "9223372036854775807"), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", "9223372036854775808"), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", "-9223372036854775808"), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", "1.5"), cmd("OBJECT", "ENCODING", "i"), cmd("OBJECT", "REFCOUNT", "i"),
		cmd("SET", "i", ""), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", strings.Repeat("x", 44)), cmd("OBJECT", "ENCODING", "i"),
		cmd("SET", "i", strings.Repeat("x", 45)), cmd("OBJECT", "ENCODING", "i"),
		cmd("INCR", "n"), cmd("OBJECT", "ENCODING", "n"), cmd("OBJECT", "REFCOUNT", "n"),
		cmd("RPUSH", "l", "a"), cmd("OBJECT", "ENCODING", "l"), cmd("OBJECT", "REFCOUNT", "l"),
		cmd("SADD", "s", "1", "2"), cmd("OBJECT", "ENCODING", "s"),
		cmd("SADD", "s", "x"), cmd("OBJECT", "ENCODING", "s"),
		cmd("SADD", "s3", "a"), cmd("OBJECT", "ENCODING", "s3"),
		cmd("HSET", "h", "f", "v"), cmd("OBJECT", "ENCODING", "h"),
		cmd("HSET", "h", "g", strings.Repeat("v", 64)), cmd("OBJECT", "ENCODING", "h"),
		cmd("HSET", "h", "g", strings.Repeat("v", 65)), cmd("OBJECT", "ENCODING", "h"),
		cmd("HSET", "h2", strings.Repeat("f", 65), "v"), cmd("OBJECT", "ENCODING", "h2"),
		cmd("ZADD", "z", "1", "a"), cmd("OBJECT", "ENCODING", "z"),
		cmd("ZADD", "z", "1", strings.Repeat("m", 64)), cmd("OBJECT", "ENCODING", "z"),
		cmd("ZADD", "z", "1", strings.Repeat("m", 65)), cmd("OBJECT", "ENCODING", "z"),
		cmd("OBJECT", "IDLETIME", "nokey"),
	},
	"type-rename": {
		cmd("TYPE", "nokey"), cmd("SET", "s", "v"), cmd("RPUSH", "l", "a"), cmd("HSET", "h", "f", "v"),
		cmd("SADD", "st", "m"), cmd("ZADD", "z", "1", "m"),
		cmd("TYPE", "s"), cmd("TYPE", "l"), cmd("TYPE", "h"), cmd("TYPE", "st"), cmd("TYPE", "z"),
		cmd("TYPE"), cmd("TYPE", "a", "b"),
		cmd("RENAME", "nokey", "x"), cmd("RENAME", "nokey", "nokey"), cmd("RENAMENX", "nokey", "x"),
		cmd("RENAME", "s", "s"), cmd("RENAMENX", "s", "s"),
		cmd("RENAME", "s", "l"), cmd("TYPE", "l"), cmd("EXISTS", "s"),
		cmd("RENAMENX", "l", "h"), cmd("RENAMENX", "l", "new"), cmd("GET", "new"),
		cmd("EXPIREAT", "new", "4102444800"), cmd("RENAME", "new", "n2"), cmd("EXPIRETIME", "n2"),
		cmd("SET", "n3", "x", "EX", "1000"), cmd("RENAME", "n2", "n3"), cmd("EXPIRETIME", "n3"),
		cmd("PERSIST", "n3"), cmd("PERSIST", "n3"), cmd("PERSIST", "nokey"), cmd("EXPIRETIME", "n3"),
		cmd("PEXPIREAT", "n3", "1"), cmd("RENAME", "n3", "x"),
	},
}

// encodingThresholds builds values at both sides of Redis's default
// encoding thresholds and asks OBJECT ENCODING about each.
func encodingThresholds() []step {
	var out []step
	grow := func(name string, n int, add func(i int) []string) {
		for i := range n {
			out = append(out, cmd(add(i)...))
		}
		out = append(out, cmd("OBJECT", "ENCODING", name))
	}
	grow("set512", 512, func(i int) []string { return []string{"SADD", "set512", strconv.Itoa(i)} })
	grow("set513", 513, func(i int) []string { return []string{"SADD", "set513", strconv.Itoa(i)} })
	grow("h512", 512, func(i int) []string { return []string{"HSET", "h512", "f" + strconv.Itoa(i), "v"} })
	grow("h513", 513, func(i int) []string { return []string{"HSET", "h513", "f" + strconv.Itoa(i), "v"} })
	grow("z128", 128, func(i int) []string { return []string{"ZADD", "z128", strconv.Itoa(i), "m" + strconv.Itoa(i)} })
	grow("z129", 129, func(i int) []string { return []string{"ZADD", "z129", strconv.Itoa(i), "m" + strconv.Itoa(i)} })
	grow("l1000", 1000, func(i int) []string { return []string{"RPUSH", "l1000", strconv.Itoa(i)} })
	out = append(out, cmd("COPY", "h513", "h513c"), cmd("OBJECT", "ENCODING", "h513c"),
		cmd("COPY", "set513", "s513c"), cmd("OBJECT", "ENCODING", "s513c"),
		cmd("COPY", "z128", "z128c"), cmd("OBJECT", "ENCODING", "z128c"))
	return out
}

func TestKeysEncodingDiff(t *testing.T) { runDiff(t, encodingThresholds()) }

func TestKeysMoreDiff(t *testing.T) {
	for name, script := range keysMoreScripts {
		t.Run(name, func(t *testing.T) { runDiff(t, script) })
	}
}

// TestKeysRandomDiff runs a seeded random stream of generic key commands
// over values of every type and compares every reply with Redis's. TTLs
// are absolute (EXPIREAT family) so that the two clocks cannot disagree.
func TestKeysRandomDiff(t *testing.T) {
	for _, seed := range []uint64{21, 101, 202} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 5))
			keys := []string{"k1", "k2", "k3", "k4", "k5"}
			key := func() string { return keys[r.IntN(len(keys))] }
			const base = 4102444800 // 2100-01-01, seconds
			strVals := []string{"1", "-5", "123456", "abc", "1.5", "007", strings.Repeat("y", 50), ""}
			var script []step
			for range 4000 {
				var c []string
				switch r.IntN(22) {
				case 0:
					c = []string{"SET", key(), strVals[r.IntN(len(strVals))]}
				case 1:
					c = []string{"RPUSH", key(), "a", "b"}
				case 2:
					c = []string{"HSET", key(), "f" + strconv.Itoa(r.IntN(3)), "v"}
				case 3:
					c = []string{"SADD", key(), []string{"1", "2", "x"}[r.IntN(3)]}
				case 4:
					c = []string{"ZADD", key(), strconv.Itoa(r.IntN(5)), "m" + strconv.Itoa(r.IntN(3))}
				case 5:
					c = []string{"COPY", key(), key()}
					if r.IntN(2) == 0 {
						c = append(c, "REPLACE")
					}
					if r.IntN(4) == 0 {
						c = append(c, "DB", "0")
					}
				case 6:
					opts := []string{"", "NX", "XX", "GT", "LT"}
					name := []string{"EXPIREAT", "PEXPIREAT"}[r.IntN(2)]
					at := base + r.IntN(5)
					if name == "PEXPIREAT" {
						at = at*1000 + r.IntN(1000)
					}
					if r.IntN(20) == 0 {
						at = r.IntN(3) // in the past: deletes
					}
					c = []string{name, key(), strconv.Itoa(at)}
					if o := opts[r.IntN(len(opts))]; o != "" {
						c = append(c, o)
					}
				case 7:
					c = []string{"PERSIST", key()}
				case 8:
					c = []string{"EXPIRETIME", key()}
				case 9:
					c = []string{"PEXPIRETIME", key()}
				case 10:
					c = []string{"TYPE", key()}
				case 11:
					c = []string{"RENAME", key(), key()}
				case 12:
					c = []string{"RENAMENX", key(), key()}
				case 13:
					c = []string{"TOUCH", key(), key()}
				case 14:
					c = []string{"UNLINK", key(), key()}
				case 15:
					c = []string{"DEL", key()}
				case 16:
					c = []string{"EXISTS", key(), key()}
				case 17, 18:
					c = []string{"OBJECT", "ENCODING", key()}
				case 19:
					c = []string{"DBSIZE"}
				default:
					switch r.IntN(4) {
					case 0:
						c = []string{"GET", key()}
					case 1:
						c = []string{"LRANGE", key(), "0", "-1"}
					case 2:
						c = []string{"ZRANGE", key(), "0", "-1", "WITHSCORES"}
					default:
						c = []string{"HGETALL", key()}
					}
				}
				script = append(script, cmd(c...))
			}
			runDiff(t, script)
		})
	}
}

// TestRandomKey checks RANDOMKEY's replies for validity (its picks follow
// e.Rand, not Redis's hash table): null on an empty keyspace or one whose
// keys all expired, as Redis's, and otherwise a live key, each of them
// eventually.
func TestRandomKey(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	env := &Env{NowMs: time.Now().UnixMilli(), Rand: rand.New(rand.NewPCG(3, 4))}
	if got, want := string(execArgs(s, env, []string{"RANDOMKEY"})), rc.Do("RANDOMKEY"); got != want {
		t.Fatalf("empty: got %q want %q", got, want)
	}
	if got, want := string(execArgs(s, env, []string{"RANDOMKEY", "x"})), rc.Do("RANDOMKEY", "x"); got != want {
		t.Fatalf("arity: got %q want %q", got, want)
	}
	live := map[string]bool{"a": true, "b": true, "c": true}
	for k := range live {
		execArgs(s, env, []string{"SET", k, "v"})
	}
	execArgs(s, env, []string{"SET", "gone", "v", "PX", "1"})
	later := &Env{NowMs: env.NowMs + 10, Rand: env.Rand}
	seen := map[string]bool{}
	for range 300 {
		got := string(execArgs(s, later, []string{"RANDOMKEY"}))
		var k string
		if _, err := parseBulkReply(got, &k); err != nil || !live[k] {
			t.Fatalf("RANDOMKEY = %q, not a live key", got)
		}
		seen[k] = true
	}
	if len(seen) != len(live) {
		t.Fatalf("RANDOMKEY picked only %v", seen)
	}
	s2 := New()
	execArgs(s2, env, []string{"SET", "gone", "v", "PX", "1"})
	if got := string(execArgs(s2, later, []string{"RANDOMKEY"})); got != "$-1\r\n" {
		t.Fatalf("all expired: got %q", got)
	}
}

// parseBulkReply parses a bulk string reply.
func parseBulkReply(raw string, out *string) (int, error) {
	if !strings.HasPrefix(raw, "$") || !strings.HasSuffix(raw, "\r\n") {
		return 0, strconv.ErrSyntax
	}
	i := strings.Index(raw, "\r\n")
	n, err := strconv.Atoi(raw[1:i])
	if err != nil || n < 0 || len(raw) != i+2+n+2 {
		return 0, strconv.ErrSyntax
	}
	*out = raw[i+2 : i+2+n]
	return 1, nil
}

// TestCopyIndependentAndSnapshot checks that COPY's values share nothing
// with their sources and that the copies survive a snapshot round trip.
func TestCopyIndependentAndSnapshot(t *testing.T) {
	s := New()
	env := &Env{NowMs: 1000, Rand: rand.New(rand.NewPCG(1, 1))}
	for _, c := range [][]string{
		{"SET", "s", "abc"}, {"RPUSH", "l", "a", "b"}, {"HSET", "h", "f", "v", "g", "w"}, {"HDEL", "h", "f"},
		{"SADD", "st", "1", "2"}, {"SADD", "sx", "a", "b"}, {"SREM", "sx", "a"}, {"ZADD", "z", "1", "a", "2", "b"},
		{"PEXPIREAT", "l", "5000"},
	} {
		execArgs(s, env, c)
	}
	for _, k := range []string{"s", "l", "h", "st", "sx", "z"} {
		if got := string(execArgs(s, env, []string{"COPY", k, k + "2"})); got != ":1\r\n" {
			t.Fatalf("COPY %s: %q", k, got)
		}
	}
	if got := string(execArgs(s, env, []string{"PEXPIRETIME", "l2"})); got != ":5000\r\n" {
		t.Fatalf("copied TTL: %q", got)
	}
	before := s.Digest()
	for _, c := range [][]string{
		{"APPEND", "s2", "x"}, {"LSET", "l2", "0", "z"}, {"HSET", "h2", "g", "changed"}, {"SADD", "st2", "x"},
		{"SADD", "sx2", "c"}, {"ZADD", "z2", "5", "a"},
	} {
		execArgs(s, env, c)
	}
	for _, c := range [][]string{
		{"GET", "s"}, {"LRANGE", "l", "0", "-1"}, {"HGETALL", "h"}, {"SMEMBERS", "st"}, {"SMEMBERS", "sx"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"},
	} {
		orig := string(execArgs(s, env, c))
		c2 := append([]string{c[0], c[1] + "2"}, c[2:]...)
		if cp := string(execArgs(s, env, c2)); cp == orig {
			t.Errorf("%v: copy did not change or changed the source too: %q", c, orig)
		}
	}
	if s.Digest() == before {
		t.Fatal("digest unchanged by writes to the copies")
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if r.Digest() != s.Digest() {
		t.Fatal("digest differs after a snapshot round trip")
	}
}

// TestListsAndSortAtEnvTime checks that the new commands judge TTLs at the
// command's time: expired keys are missing to LMOVE, COPY, OBJECT and SORT.
func TestListsAndSortAtEnvTime(t *testing.T) {
	s := New()
	env := &Env{NowMs: 1000, Rand: rand.New(rand.NewPCG(1, 1))}
	for _, c := range [][]string{
		{"RPUSH", "src", "3", "1"}, {"SET", "dst", "str"}, {"PEXPIREAT", "dst", "1500"},
		{"SET", "w_1", "9"}, {"PEXPIREAT", "w_1", "1500"}, {"SET", "w_3", "5"},
	} {
		execArgs(s, env, c)
	}
	if got := string(execArgs(s, env, []string{"LMOVE", "src", "dst", "LEFT", "LEFT"})); got[0] != '-' {
		t.Fatalf("LMOVE onto a live string: %q", got)
	}
	if got := string(execArgs(s, env, []string{"SORT", "src", "BY", "w_*"})); got != "*2\r\n$1\r\n3\r\n$1\r\n1\r\n" {
		t.Fatalf("SORT BY before expiry: %q", got)
	}
	later := &Env{NowMs: 2000, Rand: env.Rand}
	if got := string(execArgs(s, later, []string{"SORT", "src", "BY", "w_*"})); got != "*2\r\n$1\r\n1\r\n$1\r\n3\r\n" {
		t.Fatalf("SORT BY after expiry: %q", got)
	}
	if got := string(execArgs(s, later, []string{"OBJECT", "ENCODING", "dst"})); got != "$-1\r\n" {
		t.Fatalf("OBJECT on an expired key: %q", got)
	}
	if got := string(execArgs(s, later, []string{"LMOVE", "src", "dst", "LEFT", "LEFT"})); got != "$1\r\n3\r\n" {
		t.Fatalf("LMOVE onto an expired key: %q", got)
	}
	if got := string(execArgs(s, later, []string{"PEXPIRETIME", "dst"})); got != ":-1\r\n" {
		t.Fatalf("LMOVE's new list kept the old TTL: %q", got)
	}
	if s.Expiring() != 1 { // w_1, expired but not yet swept
		t.Fatalf("expiring = %d", s.Expiring())
	}
}

// TestObjectIdleTime: with access tracking, IDLETIME is the seconds since
// the last read or write (OBJECT and TYPE do not count); without, 0.
func TestObjectIdleTime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		access *Access
		steps  [][]string // run one second apart after a SET of k
		want   []string
	}{
		{"not tracked", nil, [][]string{{"OBJECT", "IDLETIME", "k"}}, []string{":0\r\n"}},
		{"tracked", NewAccess(), [][]string{
			{"OBJECT", "IDLETIME", "k"}, // OBJECT does not touch
			{"OBJECT", "IDLETIME", "k"},
			{"TYPE", "k"}, // nor does TYPE
			{"GET", "k"},  // GET does
			{"OBJECT", "IDLETIME", "k"},
			{"APPEND", "k", "x"}, // a write too
			{"OBJECT", "IDLETIME", "k"},
		}, []string{":1\r\n", ":2\r\n", "+string\r\n", "$1\r\nv\r\n", ":1\r\n", ":2\r\n", ":1\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			env := &Env{NowMs: 1_000_000, Rand: rand.New(rand.NewPCG(1, 1)), Access: tc.access}
			execArgs(s, env, []string{"SET", "k", "v"})
			for i, step := range tc.steps {
				env.NowMs += 1000
				if got := string(execArgs(s, env, step)); got != tc.want[i] {
					t.Fatalf("%q: %q, want %q", step, got, tc.want[i])
				}
			}
		})
	}
}

// TestKeysMoreCommandTable checks the registration of this file set's
// newer commands against Redis 7.0's COMMAND INFO.
func TestKeysMoreCommandTable(t *testing.T) {
	for _, w := range []struct {
		name              string
		arity             int
		flags             Flags
		first, last, step int
	}{
		{"copy", -3, Write | DenyOOM, 1, 2, 1},
		{"expiretime", 2, ReadOnly | Fast, 1, 1, 1},
		{"pexpiretime", 2, ReadOnly | Fast, 1, 1, 1},
		{"randomkey", 1, ReadOnly | Random, 0, 0, 0},
		{"object", -2, 0, 0, 0, 0},
		{"touch", -2, ReadOnly | Fast, 1, -1, 1},
		{"unlink", -2, Write | Fast, 1, -1, 1},
		{"lmove", 5, Write | DenyOOM, 1, 2, 1},
		{"rpoplpush", 3, Write | DenyOOM, 1, 2, 1},
		{"lmpop", -4, Write | MovableKeys, 0, 0, 0},
		{"lpos", -3, ReadOnly, 1, 1, 1},
		{"linsert", 5, Write | DenyOOM, 1, 1, 1},
		{"lpushx", -3, Write | DenyOOM | Fast, 1, 1, 1},
		{"rpushx", -3, Write | DenyOOM | Fast, 1, 1, 1},
		{"sort", -2, Write | DenyOOM | MovableKeys, 1, 1, 1},
		{"sort_ro", -2, ReadOnly | MovableKeys, 1, 1, 1},
	} {
		c := Lookup([]byte(w.name))
		if c == nil {
			t.Errorf("%s not registered", w.name)
			continue
		}
		if c.Arity != w.arity || c.Flags != w.flags || c.FirstKey != w.first || c.LastKey != w.last || c.Step != w.step {
			t.Errorf("%s: got %d %b %d %d %d", w.name, c.Arity, c.Flags, c.FirstKey, c.LastKey, c.Step)
		}
		if c.Summary == "" || c.Group == "" || c.run == nil {
			t.Errorf("%s: incomplete", w.name)
		}
	}
}
