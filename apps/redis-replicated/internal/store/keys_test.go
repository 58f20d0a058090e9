package store

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// keysScripts are differential scripts for the generic key commands.
var keysScripts = map[string][]step{
	"del-exists": {
		cmd("MSET", "a", "1", "b", "2", "c", "3"),
		cmd("EXISTS", "a", "a", "x", "b"),
		cmd("DEL", "a", "a", "x"),
		cmd("DEL", "b", "c", "d"),
		cmd("EXISTS", "a", "b", "c"),
		cmd("DEL"),
		cmd("EXISTS"),
		cmd("LPUSH", "l", "1"),
		cmd("HSET", "h", "f", "v"),
		cmd("EXISTS", "l", "h"),
		cmd("DEL", "l", "h"),
		cmd("DBSIZE"),
	},
	"expire": {
		cmd("SET", "k", "v"),
		cmd("EXPIRE", "k", "100"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "200", "NX"),
		cmd("EXPIRE", "k", "200", "XX"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "100", "GT"),
		cmd("EXPIRE", "k", "300", "GT"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "400", "LT"),
		cmd("EXPIRE", "k", "50", "lt"),
		cmd("TTL", "k"),
		cmd("PERSIST", "k"),
		cmd("PERSIST", "k"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "100", "XX"),
		cmd("EXPIRE", "k", "100", "GT"),
		cmd("EXPIRE", "k", "100", "LT"),
		cmd("TTL", "k"),
		cmd("PERSIST", "k"),
		cmd("EXPIRE", "k", "100", "NX"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "100", "NX", "XX"),
		cmd("EXPIRE", "k", "100", "NX", "GT"),
		cmd("EXPIRE", "k", "100", "GT", "LT"),
		// Not 100: whether now+100 s beats the TTL set a moment ago by
		// "EXPIRE k 100 NX" depends on a millisecond ticking in between.
		cmd("EXPIRE", "k", "50", "XX", "GT"),
		cmd("EXPIRE", "k", "200", "XX", "GT"),
		cmd("EXPIRE", "k", "100", "GT", "GT"),
		cmd("EXPIRE", "k", "100", "FOO"),
		cmd("EXPIRE", "k", "abc", "FOO"),
		cmd("EXPIRE", "k", "abc"),
		cmd("EXPIRE", "k", "1.5"),
		cmd("EXPIRE", "k"),
		cmd("EXPIRE", "nokey", "100"),
		cmd("EXPIRE", "nokey", "abc"),
		cmd("EXPIRE", "k", "9223372036854775"),
		cmd("EXPIRE", "k", "9223372036854776"),
		cmd("EXPIRE", "k", "-9223372036854775"),
		cmd("EXPIRE", "k", "-9223372036854776"),
		cmd("PEXPIRE", "k", "9223372036854775807"),
		cmd("PEXPIREAT", "k", "9223372036854775807"),
		cmd("TTL", "k"),
		cmd("EXPIREAT", "k", "9223372036854775"),
		cmd("EXPIREAT", "k", "9223372036854776"),
		cmd("EXPIREAT", "k", "4102444800"),
		cmd("TTL", "k"),
		cmd("PEXPIREAT", "k", "4102444800000", "GT"),
		cmd("PEXPIREAT", "k", "4102444800001", "GT"),
		cmd("PEXPIRE", "k", "100000"),
		cmd("TTL", "k"),
		cmd("EXPIRE", "k", "0"),
		cmd("EXISTS", "k"),
		cmd("SET", "k", "v"),
		cmd("EXPIRE", "k", "-1"),
		cmd("GET", "k"),
		cmd("SET", "k", "v"),
		cmd("PEXPIREAT", "k", "0"),
		cmd("EXISTS", "k"),
		cmd("SET", "k", "v"),
		cmd("EXPIREAT", "k", "1000"),
		cmd("EXISTS", "k"),
		cmd("SET", "k", "v", "EX", "100"),
		cmd("EXPIRE", "k", "-1", "GT"),
		cmd("EXPIRE", "k", "-1", "LT"),
		cmd("EXISTS", "k"),
		cmd("LPUSH", "l", "1"),
		cmd("EXPIRE", "l", "100"),
		cmd("TTL", "l"),
		cmd("PERSIST", "l"),
		cmd("PERSIST", "nokey"),
		cmd("TTL", "nokey"),
		cmd("TTL", "l"),
		cmd("PTTL", "nokey"),
		cmd("PTTL", "l"),
		cmd("SET", "s", "v", "EX", "1000"),
		cmd("TTL", "s"),
		cmd("SET", "s", "v", "PX", "1400"),
		cmd("TTL", "s"),
		cmd("SET", "s", "v", "PX", "1600"),
		cmd("TTL", "s"),
	},
	"type": {
		cmd("TYPE", "none"),
		cmd("SET", "s", "v"),
		cmd("LPUSH", "l", "1"),
		cmd("HSET", "h", "f", "v"),
		cmd("SADD", "st", "m"),
		cmd("ZADD", "z", "1", "m"),
		cmd("TYPE", "s"),
		cmd("TYPE", "l"),
		cmd("TYPE", "h"),
		cmd("TYPE", "st"),
		cmd("TYPE", "z"),
		cmd("TYPE"),
	},
	"rename": {
		cmd("RENAME", "a", "b"),
		cmd("SET", "a", "1"),
		cmd("RENAME", "a", "a"),
		cmd("RENAME", "a", "b"),
		cmd("MGET", "a", "b"),
		cmd("SET", "c", "3", "EX", "100"),
		cmd("RENAME", "c", "b"),
		cmd("TTL", "b"),
		cmd("GET", "b"),
		cmd("EXISTS", "c"),
		cmd("SET", "a", "1"),
		cmd("RENAME", "a", "b"),
		cmd("TTL", "b"),
		cmd("LPUSH", "l", "1"),
		cmd("RENAME", "l", "b"),
		cmd("TYPE", "b"),
		cmd("RENAMENX", "b", "b"),
		cmd("RENAMENX", "x", "y"),
		cmd("SET", "y", "1"),
		cmd("RENAMENX", "b", "y"),
		cmd("RENAMENX", "b", "z"),
		cmd("TYPE", "z"),
		cmd("RENAME", "z"),
		cmd("DBSIZE"),
	},
	"flush": {
		cmd("MSET", "a", "1", "b", "2"),
		cmd("DBSIZE"),
		cmd("FLUSHDB", "FOO"),
		cmd("FLUSHDB", "SYNC", "ASYNC"),
		cmd("DBSIZE"),
		cmd("FLUSHDB", "async"),
		cmd("DBSIZE"),
		cmd("SET", "a", "1", "EX", "10"),
		cmd("FLUSHALL"),
		cmd("DBSIZE"),
		cmd("SET", "a", "1"),
		cmd("FLUSHALL", "SYNC"),
		cmd("FLUSHDB"),
		cmd("DBSIZE", "x"),
		cmd("EXISTS", "a"),
	},
}

func TestKeysDiff(t *testing.T) {
	for name, script := range keysScripts {
		t.Run(name, func(t *testing.T) { runDiff(t, script) })
	}
}

// globKeys are stored before the glob patterns are tried on them with KEYS.
var globKeys = []string{
	"", "a", "b", "ab", "abc", "abd", "aXc", "hello", "hallo", "hxllo", "hllo",
	"heeeello", "h*llo", "h?llo", "h[llo", "h]llo", "h\\llo", "x-y", "x^y",
	"-", "^", "]", "[", "\\", "*", "?", "a\\b", "\xff", "\x80x", "user:1",
	"user:2:name", "user:10", "ab*cd", "aaaaaaaaaaaaaaaaaaaab",
}

// globPatterns exercise every branch of the matcher, corner cases included.
var globPatterns = []string{
	"*", "**", "", "a", "a*", "*b", "*b*", "a?c", "?", "??", "???", "h?llo",
	"h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h[^a-z]llo",
	"h\\*llo", "h\\?llo", "h[\\]]llo", "h[\\[]llo", "h[]]llo", "h[]llo",
	"h[", "h[l", "h[^", "[a", "[abc", "a[", "\\", "h\\", "a\\", "h\\\\llo",
	"h[\\\\]llo", "a\\b", "x[-]y", "x[a-]y", "x[-a]y", "x[\\-]y", "[\\^]",
	"[^]", "[^^]", "[]", "[]]", "\\*", "\\?", "[*]", "*[?]*", "user:*",
	"user:?", "user:*:name", "*:*", "[\x80-\xff]*", "[\x00-\x7f]*",
	"[a-\xff]", "ab\\*cd", "ab*cd", "*a*a*a*a*a*a*b", "*a*a*a*a*a*a*c",
	"a*b*c", "*?", "?*", "*?*?", "[a-c][a-c]", "[^a-c]*", "*\\", "*[",
}

func TestKeysGlobDiff(t *testing.T) {
	var script []step
	for _, k := range globKeys {
		script = append(script, cmd("SET", k, "v"))
	}
	for _, p := range globPatterns {
		script = append(script, anyOrder("KEYS", p))
	}
	runDiff(t, script)
}

// TestGlobNesting checks Redis's guard against abusive patterns: more than
// a thousand nested '*' groups match nothing.
func TestGlobNesting(t *testing.T) {
	s := strings.Repeat("a", 1500)
	if !globMatch([]byte(strings.Repeat("a*", 999)), []byte(s)) {
		t.Error("999 stars should match")
	}
	// Redis 7.0.15 matches 1000 nested stars and refuses 1001 (checked on
	// a real server).
	if !globMatch([]byte(strings.Repeat("*a", 1000)), []byte(s)) {
		t.Error("1000 nested stars should match")
	}
	if globMatch([]byte(strings.Repeat("*a", 1001)), []byte(s)) {
		t.Error("1001 nested stars should not match")
	}
	// Exponential without the skip-longer rule: must return at once.
	start := time.Now()
	if globMatch([]byte(strings.Repeat("*a", 30)+"b"), []byte(strings.Repeat("a", 100))) {
		t.Error("unexpected match")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("pathological pattern took %v", d)
	}
}

// scanDiff runs SCAN commands that finish in one call on both sides and
// compares the cursor and the set of keys. Other steps are compared byte for
// byte.
func scanDiff(t *testing.T, script []step) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	for i, st := range script {
		want := rc.Do(st.args...)
		got := string(execArgs(s, &Env{NowMs: time.Now().UnixMilli()}, st.args))
		if strings.EqualFold(st.args[0], "scan") {
			want, got = normScan(t, want), normScan(t, got)
		}
		if got != want {
			t.Fatalf("step %d %q:\n got %q\nwant %q", i, st.args, got, want)
		}
	}
}

// normScan returns a SCAN reply with its key list sorted (errors as they
// are).
func normScan(t *testing.T, raw string) string {
	t.Helper()
	if !strings.HasPrefix(raw, "*2\r\n") {
		return raw
	}
	br := bufio.NewReader(strings.NewReader(raw[4:]))
	cur, err := resp.ReadReply(br, nil, 1<<20)
	if err != nil {
		t.Fatalf("bad SCAN reply %q", raw)
	}
	return string(cur) + sortedArray(t, raw[4+len(cur):])
}

func TestKeysScanDiff(t *testing.T) {
	script := []step{
		cmd("SCAN", "0"),
		cmd("MSET", "a1", "1", "a2", "2", "b1", "3", "b2", "4", "user:1", "x", "user:2", "y"),
		cmd("LPUSH", "l1", "1"),
		cmd("HSET", "h1", "f", "v"),
		cmd("SADD", "s1", "m"),
		cmd("ZADD", "z1", "1", "m"),
		cmd("SCAN", "0", "COUNT", "1000"),
		cmd("SCAN", "0", "MATCH", "a*", "COUNT", "1000"),
		cmd("SCAN", "0", "match", "user:?", "count", "1000"),
		cmd("SCAN", "0", "MATCH", "*", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "string", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "LIST", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "hash", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "set", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "zset", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "foo", "COUNT", "1000"),
		cmd("SCAN", "0", "TYPE", "string", "MATCH", "b*", "COUNT", "1000", "COUNT", "500"),
		cmd("SCAN", "0", "COUNT", "0"),
		cmd("SCAN", "0", "COUNT", "-1"),
		cmd("SCAN", "0", "COUNT", "x"),
		cmd("SCAN", "0", "COUNT"),
		cmd("SCAN", "0", "MATCH"),
		cmd("SCAN", "0", "TYPE"),
		cmd("SCAN", "0", "FOO", "bar"),
		cmd("SCAN", "x"),
		cmd("SCAN", "1x"),
		cmd("SCAN", " 1"),
		cmd("SCAN", "18446744073709551616"),
		cmd("SCAN", "-1x"),
		cmd("SCAN"),
		cmd("DBSIZE"),
	}
	scanDiff(t, script)
}

// scanAll iterates SCAN to the end with the given COUNT, running mutate
// between calls, and returns how often each key was returned.
func scanAll(t *testing.T, s *Store, count int, mutate func(call int)) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := "0"
	for call := 0; ; call++ {
		if call > 10000 {
			t.Fatal("SCAN does not terminate")
		}
		raw := execArgs(s, &Env{NowMs: 1}, []string{"SCAN", cursor, "COUNT", strconv.Itoa(count)})
		br := bufio.NewReader(strings.NewReader(string(raw)))
		if line, _ := br.ReadString('\n'); line != "*2\r\n" {
			t.Fatalf("bad SCAN reply %q", raw)
		}
		cur, _ := resp.ReadReply(br, nil, 1<<20)
		cursor = strings.Split(string(cur), "\r\n")[1]
		head, _ := br.ReadString('\n')
		n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
		if n > count {
			t.Fatalf("SCAN COUNT %d returned %d keys", count, n)
		}
		for range n {
			el, _ := resp.ReadReply(br, nil, 1<<20)
			seen[strings.Split(string(el), "\r\n")[1]]++
		}
		if cursor == "0" {
			return seen
		}
		if mutate != nil {
			mutate(call)
		}
	}
}

// TestScanGuarantees checks SCAN's promise: every key present throughout a
// full iteration is returned exactly once, even while other keys come and
// go.
func TestScanGuarantees(t *testing.T) {
	s := New()
	e := &Env{NowMs: 1}
	for i := range 500 {
		execArgs(s, e, []string{"SET", "k" + strconv.Itoa(i), "v"})
	}
	for _, count := range []int{1, 3, 10, 1000} {
		seen := scanAll(t, s, count, nil)
		if len(seen) != 500 {
			t.Fatalf("COUNT %d: %d keys seen, want 500", count, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("COUNT %d: %s seen %d times", count, k, n)
			}
		}
	}
	// Mutate during the scan: the stable keys k0..k249 must each come back
	// exactly once.
	r := rand.New(rand.NewPCG(3, 3))
	seen := scanAll(t, s, 7, func(int) {
		execArgs(s, e, []string{"DEL", "k" + strconv.Itoa(250+r.IntN(250))})
		execArgs(s, e, []string{"SET", "new" + strconv.Itoa(r.IntN(1000)), "v"})
	})
	for i := range 250 {
		if k := "k" + strconv.Itoa(i); seen[k] != 1 {
			t.Fatalf("stable key %s seen %d times", k, seen[k])
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
}

// TestPTTLNearRedis compares PTTL with a real Redis's within a tolerance
// (the two clocks are read a moment apart).
func TestPTTLNearRedis(t *testing.T) {
	rc := redistest.Dial(t, redistest.Start(t))
	s := New()
	env := func() *Env { return &Env{NowMs: time.Now().UnixMilli()} }
	for _, c := range [][]string{
		{"SET", "a", "v", "PX", "100000"},
		{"SET", "b", "v", "EX", "100"},
		{"SET", "c", "v"},
		{"PEXPIRE", "c", "5555"},
		{"SET", "d", "v"},
	} {
		rc.Do(c...)
		execArgs(s, env(), c)
	}
	for _, k := range []string{"a", "b", "c", "d", "nokey"} {
		want, err := strconv.ParseInt(strings.Trim(rc.Do("PTTL", k), ":\r\n"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := strconv.ParseInt(strings.Trim(string(execArgs(s, env(), []string{"PTTL", k})), ":\r\n"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if d := got - want; d < -100 || d > 100 || (want < 0) != (got < 0) || (want < 0 && got != want) {
			t.Errorf("PTTL %s: got %d, Redis %d", k, got, want)
		}
	}
}

// TestTTLAtEnvTime checks TTL arithmetic against Env time, expiry of reads
// without mutation, and deletion by writes.
func TestTTLAtEnvTime(t *testing.T) {
	s := New()
	at := func(ms int64, args ...string) string { return string(execArgs(s, &Env{NowMs: ms}, args)) }
	const t0 = 1_000_000
	at(t0, "SET", "k", "v", "PX", "10000")
	for _, c := range []struct {
		now       int64
		cmd, want string
	}{
		{t0, "PTTL", ":10000\r\n"},
		{t0, "TTL", ":10\r\n"},
		{t0 + 4499, "TTL", ":6\r\n"}, // 5501 ms rounds up
		{t0 + 4500, "TTL", ":6\r\n"}, // 5500 ms rounds half up
		{t0 + 4501, "TTL", ":5\r\n"},
		{t0 + 9999, "PTTL", ":1\r\n"},
		// Expired strictly after its time, as Redis: PX n lives n ms at least.
		{t0 + 10000, "PTTL", ":0\r\n"},
		{t0 + 10000, "GET", "$1\r\nv\r\n"},
		{t0 + 10001, "PTTL", ":-2\r\n"},
		{t0 + 10001, "GET", "$-1\r\n"},
	} {
		if got := at(c.now, c.cmd, "k"); got != c.want {
			t.Errorf("%s at +%d: %q, want %q", c.cmd, c.now-t0, got, c.want)
		}
	}
	// A read leaves the expired key in place; a write deletes it.
	if s.Len() != 1 || s.Expiring() != 1 {
		t.Fatalf("read mutated the store: %d keys, %d expiring", s.Len(), s.Expiring())
	}
	at(t0+10001, "SETNX", "k", "w")
	if s.Len() != 1 || s.Expiring() != 0 || at(t0+10001, "GET", "k") != "$1\r\nw\r\n" {
		t.Fatalf("write did not replace the expired key: %d keys, %d expiring", s.Len(), s.Expiring())
	}
	// EXPIRE at exactly the command's time deletes.
	if got := at(t0+20000, "PEXPIREAT", "k", strconv.Itoa(t0+20000)); got != ":1\r\n" || s.Len() != 0 {
		t.Fatalf("PEXPIREAT now: %q, %d keys", got, s.Len())
	}
}

// TestSweepExpired checks gomu.expire: only expired keys go, earliest TTL
// first (ties by key), at most max per call, and the TTL count follows.
func TestSweepExpired(t *testing.T) {
	s := New()
	e := &Env{NowMs: 1000}
	for i := range 10 {
		// k0..k4 expire at 1500, k5..k9 at 5000; p0..p2 have no TTL.
		ms := "500"
		if i >= 5 {
			ms = "4000"
		}
		execArgs(s, e, []string{"SET", "k" + strconv.Itoa(i), "v", "PX", ms})
	}
	for i := range 3 {
		execArgs(s, e, []string{"SET", "p" + strconv.Itoa(i), "v"})
	}
	if s.Expiring() != 10 {
		t.Fatalf("Expiring = %d, want 10", s.Expiring())
	}
	later := &Env{NowMs: 2000}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gomu.expire", "x"}, "-" + errNotInt + "\r\n"},
		{[]string{"gomu.expire", "-1"}, "-" + errNotInt + "\r\n"},
		{[]string{"gomu.expire", "1", "2"}, "-ERR wrong number of arguments for 'gomu.expire' command\r\n"},
		{[]string{"gomu.expire", "0"}, ":0\r\n"},
		{[]string{"gomu.expire", "2"}, ":2\r\n"},
		{[]string{"EXISTS", "k0", "k1", "k2"}, ":0\r\n"}, // k2 expired but not yet swept: a read says absent
		{[]string{"gomu.expire"}, ":3\r\n"},
		{[]string{"gomu.expire"}, ":0\r\n"},
		{[]string{"DBSIZE"}, ":8\r\n"},
	} {
		if got := string(execArgs(s, later, c.args)); got != c.want {
			t.Errorf("%q: %q, want %q", c.args, got, c.want)
		}
	}
	if s.Expiring() != 5 {
		t.Fatalf("Expiring = %d, want 5", s.Expiring())
	}
	if _, ok := s.keys["k2"]; ok {
		t.Fatal("k2 should be gone")
	}
	if got := string(execArgs(s, &Env{NowMs: 9000}, []string{"gomu.expire", "100"})); got != ":5\r\n" || s.Expiring() != 0 || s.Len() != 3 {
		t.Fatalf("final sweep %q: %d keys, %d expiring", got, s.Len(), s.Expiring())
	}
	c := Lookup([]byte("GOMU.EXPIRE"))
	if c == nil || c.Flags&(Internal|Write) != Internal|Write {
		t.Fatal("gomu.expire must be registered Internal|Write")
	}
}

// TestKeysCommandTable checks that every command of this file set is
// registered with one of Write or ReadOnly and sane key positions.
func TestKeysCommandTable(t *testing.T) {
	names := []string{"get", "set", "setnx", "setex", "psetex", "getset", "getdel", "mget", "mset",
		"msetnx", "append", "strlen", "incr", "decr", "incrby", "decrby", "incrbyfloat", "getrange",
		"setrange", "del", "exists", "expire", "pexpire", "expireat", "pexpireat", "ttl", "pttl",
		"persist", "type", "keys", "scan", "rename", "renamenx", "dbsize", "flushdb", "flushall", "gomu.expire"}
	for _, n := range names {
		c := Lookup([]byte(n))
		if c == nil {
			t.Errorf("%s not registered", n)
			continue
		}
		if (c.Flags&Write != 0) == (c.Flags&ReadOnly != 0) {
			t.Errorf("%s: needs exactly one of Write and ReadOnly", n)
		}
		if c.Summary == "" || c.Group == "" || c.run == nil {
			t.Errorf("%s: incomplete", n)
		}
	}
}

// TestKeysGlobRandomDiff compares the matcher with Redis's on random
// patterns over a small alphabet rich in metacharacters.
func TestKeysGlobRandomDiff(t *testing.T) {
	const seed = 99
	r := rand.New(rand.NewPCG(seed, 2))
	word := func(alpha string, n int) string {
		b := make([]byte, r.IntN(n+1))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return string(b)
	}
	var script []step
	for range 60 {
		script = append(script, cmd("SET", word("abc-^]\\[*?", 5), "v"))
	}
	for range 1500 {
		script = append(script, anyOrder("KEYS", word("abc*?[]^-\\", 7)))
	}
	t.Logf("seed %d", seed)
	runDiff(t, script)
}

// TestSmallestHashes checks SCAN's selection against sorting, duplicates
// included.
func TestSmallestHashes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 200 {
		xs := make([]uint64, 1+r.IntN(50))
		for i := range xs {
			xs[i] = uint64(r.IntN(20))
		}
		n := 1 + r.IntN(len(xs))
		got := smallestHashes(xs, n, func(x uint64) uint64 { return x })
		sorted := append([]uint64(nil), xs...)
		slices.Sort(sorted)
		if got != sorted[n-1] {
			t.Fatalf("smallestHashes(%v, %d) = %d, want %d", xs, n, got, sorted[n-1])
		}
	}
}

// The sweep deletes the same keys whatever stale entries a replica's expiry
// index holds: a store whose TTLs were rewritten many times (and one
// restored from its snapshot, whose index is rebuilt) sweep exactly like a
// store that set each TTL once.
func TestSweepIgnoresStaleIndexEntries(t *testing.T) {
	e := &Env{NowMs: 1000}
	churned, plain := New(), New()
	for i := range 50 {
		k := "k" + strconv.Itoa(i)
		ttl := strconv.Itoa(100 + i%7*100) // due at 1100..1700
		execArgs(plain, e, []string{"SET", k, "v", "PX", ttl})
		execArgs(churned, e, []string{"SET", k, "v", "PX", "50"})
		for _, px := range []string{"5000", "20", "900"} {
			execArgs(churned, e, []string{"PEXPIRE", k, px})
		}
		execArgs(churned, e, []string{"PERSIST", k})
		execArgs(churned, e, []string{"PEXPIRE", k, ttl})
	}
	execArgs(churned, e, []string{"RENAME", "k3", "r3"})
	execArgs(plain, e, []string{"RENAME", "k3", "r3"})
	var snap bytes.Buffer
	if err := churned.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	for _, now := range []int64{1050, 1300, 1300, 1650, 9000} {
		later := &Env{NowMs: now}
		want := string(execArgs(plain, later, []string{"gomu.expire", "5"}))
		for name, s := range map[string]*Store{"churned": churned, "restored": restored} {
			if got := string(execArgs(s, later, []string{"gomu.expire", "5"})); got != want {
				t.Fatalf("at %d the %s store swept %q, want %q", now, name, got, want)
			}
			if s.Digest() != plain.Digest() {
				t.Fatalf("at %d the %s store differs from the plain one after the sweep", now, name)
			}
		}
	}
}
