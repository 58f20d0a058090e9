package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// rdbFixture is a keyspace of every type and encoding, in several
// databases, with TTLs and a function library: per database, its
// commands.
func rdbFixture(expireAt int64) map[int][][]string {
	at := strconv.FormatInt(expireAt, 10)
	db0 := [][]string{
		{"SET", "str", "hello"},
		{"SET", "int", "12345"},
		{"SET", "long", strings.Repeat("abcdefgh", 40)},
		{"PEXPIREAT", "str", at},
		{"RPUSH", "list", "a", "b", "c", "1", "2", "3"},
		{"SADD", "intset", "1", "2", "300000"},
		{"SADD", "set", "a", "b", "c"},
		{"HSET", "hash", "f", "v", "g", "w"},
		{"ZADD", "zset", "1", "a", "2", "b", "3.5", "c"},
		{"XADD", "stream", "1-1", "f", "v"},
		{"XADD", "stream", "2-1", "g", "w"},
		{"XGROUP", "CREATE", "stream", "grp", "0"},
		{"PFADD", "hll", "a", "b", "c"},
		{"PEXPIREAT", "hash", at},
	}
	bigList := []string{"RPUSH", "biglist"}
	bigHash := []string{"HSET", "bighash"}
	bigSet := []string{"SADD", "bigset"}
	bigZSet := []string{"ZADD", "bigzset"}
	for i := range 300 {
		v := fmt.Sprintf("member-%03d-%s", i, strings.Repeat("x", i%50))
		bigList = append(bigList, v)
		bigHash = append(bigHash, v, strconv.Itoa(i))
		bigSet = append(bigSet, v)
		bigZSet = append(bigZSet, strconv.Itoa(i*7%300), v)
	}
	db0 = append(db0, bigList, bigHash, bigSet, bigZSet,
		[]string{"FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)"},
		[]string{"FUNCTION", "LOAD", "#!lua name=alib\nredis.register_function('afunc', function(keys, args) return 2 end)"})
	return map[int][][]string{
		0:  db0,
		3:  {{"SET", "other", "x"}, {"PEXPIREAT", "other", at}, {"RPUSH", "l3", "x", "y"}},
		15: {{"HSET", "h15", "a", "1"}},
	}
}

// TestRDBWrittenLoadsIntoRedis checks that the RDB file a store writes
// passes redis-check-rdb and that a real Redis loading it holds every key
// equal (DUMP, TTL) and the functions.
func TestRDBWrittenLoadsIntoRedis(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	e := &Env{NowMs: time.Now().UnixMilli(), Rand: rand.New(rand.NewPCG(1, 2))}
	expireAt := e.NowMs + 3600_000
	for db, cmds := range rdbFixture(expireAt) {
		for _, c := range cmds {
			if r := s.ExecDB(nil, e, db, byteArgs(c)); r[0] == '-' {
				t.Fatalf("db %d %q: %s", db, c, r)
			}
		}
	}
	rdb, err := s.AppendRDB(nil, RDBInfo{NowMs: e.NowMs, UsedMem: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dir := redisDir(t, rc)
	path := filepath.Join(dir, "dump.rdb")
	if err := os.WriteFile(path, rdb, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := osexec.Command("redis-check-rdb", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "RDB looks OK") {
		t.Fatalf("redis-check-rdb: %v\n%s", err, out)
	}
	if r := rc.Do("DEBUG", "RELOAD", "NOSAVE"); r != "+OK\r\n" {
		t.Fatalf("DEBUG RELOAD NOSAVE: %q", r)
	}
	compareWithRedis(t, rc, s, e)
}

// TestRDBFromRedisLoads checks that an RDB file a real Redis writes (SAVE)
// loads into a store (WalkRDB, RESTORE ABSTTL, FUNCTION LOAD) equal.
func TestRDBFromRedisLoads(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	e := &Env{NowMs: time.Now().UnixMilli(), Rand: rand.New(rand.NewPCG(1, 2))}
	for db, cmds := range rdbFixture(e.NowMs + 3600_000) {
		rc.Do("SELECT", strconv.Itoa(db))
		for _, c := range cmds {
			if r := rc.Do(c...); r[0] == '-' {
				t.Fatalf("redis db %d %q: %s", db, c, r)
			}
		}
	}
	rc.Do("SELECT", "0")
	if r := rc.Do("SAVE"); r != "+OK\r\n" {
		t.Fatalf("SAVE: %q", r)
	}
	rdb, err := os.ReadFile(filepath.Join(redisDir(t, rc), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	s := New()
	err = WalkRDB(rdb, func(en *RDBEntry) error {
		args := []string{"FUNCTION", "LOAD", string(en.Function)}
		if en.Function == nil {
			args = []string{"RESTORE", string(en.Key), strconv.FormatInt(en.ExpireAt, 10), string(en.Payload), "REPLACE", "ABSTTL"}
		}
		if r := s.ExecDB(nil, e, en.DB, byteArgs(args)); r[0] == '-' {
			return fmt.Errorf("%q: %s", args[:2], r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	compareWithRedis(t, rc, s, e)
}

// TestRDBDeterministic checks that equal states give equal files.
func TestRDBDeterministic(t *testing.T) {
	var files [2][]byte
	for i := range files {
		s := New()
		e := &Env{NowMs: 1_700_000_000_000, Rand: rand.New(rand.NewPCG(1, 2))}
		for db, cmds := range rdbFixture(e.NowMs + 1000) {
			for _, c := range cmds {
				s.ExecDB(nil, e, db, byteArgs(c))
			}
		}
		var err error
		if files[i], err = s.AppendRDB(nil, RDBInfo{NowMs: e.NowMs}); err != nil {
			t.Fatal(err)
		}
	}
	if string(files[0]) != string(files[1]) {
		t.Fatal("two writes of equal states differ")
	}
	n := 0
	if err := WalkRDB(files[0], func(*RDBEntry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 17+2 { // 17 keys, 2 libraries
		t.Fatalf("entries: %d, want 19", n)
	}
}

func byteArgs(args []string) [][]byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return b
}

// redisDir is the real Redis's working directory (redistest gives each
// its own).
func redisDir(t *testing.T, rc *redistest.Conn) string {
	t.Helper()
	elems := arrayOf(t, rc.Do("CONFIG", "GET", "dir"))
	if len(elems) != 2 {
		t.Fatalf("CONFIG GET dir: %q", elems)
	}
	return elems[1]
}

// arrayOf is a flat array reply's bulk strings.
func arrayOf(t *testing.T, raw string) []string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	head, err := br.ReadString('\n')
	if err != nil || head[0] != '*' {
		t.Fatalf("not an array: %q", raw)
	}
	var out []string
	for {
		e, err := resp.ReadReply(br, nil, 1<<30)
		if err != nil {
			break
		}
		s := string(e)
		if i := strings.IndexByte(s, '\n'); s[0] == '$' && i > 0 {
			s = strings.TrimSuffix(s[i+1:], "\r\n")
		}
		out = append(out, s)
	}
	return out
}

// compareWithRedis fails unless the real Redis and s hold the same keys in
// every database, with equal values and TTLs, and the same functions.
// Values are compared by DUMP, but for hash-table encodings (whose
// serialized order is Redis's hash order): by their sorted content.
func compareWithRedis(t *testing.T, rc *redistest.Conn, s *Store, e *Env) {
	t.Helper()
	for db := range Databases {
		rc.Do("SELECT", strconv.Itoa(db))
		do := func(args ...string) (got, want string) {
			return string(s.ExecDB(nil, e, db, byteArgs(args))), rc.Do(args...)
		}
		got, want := do("KEYS", "*")
		if sortedArray(t, got) != sortedArray(t, want) {
			t.Fatalf("db %d keys:\n got %q\nwant %q", db, sortedArray(t, got), sortedArray(t, want))
		}
		for _, k := range arrayOf(t, want) {
			checks := [][]string{{"PEXPIRETIME", k}, {"TYPE", k}}
			// A string's raw/embstr is its history's (a loaded one is
			// embstr when short, in both), not the file's.
			if rc.Do("TYPE", k) != "+string\r\n" {
				checks = append(checks, []string{"OBJECT", "ENCODING", k})
			}
			if strings.Contains(rc.Do("OBJECT", "ENCODING", k), "hashtable") {
				checks = append(checks, []string{"SMEMBERS", k}, []string{"HGETALL", k})
			} else {
				checks = append(checks, []string{"DUMP", k})
			}
			for _, c := range checks {
				got, want := do(c...)
				if c[0] == "SMEMBERS" || c[0] == "HGETALL" {
					got, want = sortedArray(t, got), sortedArray(t, want)
				}
				if got != want {
					t.Errorf("db %d %q:\n got %q\nwant %q", db, c, got, want)
				}
			}
		}
	}
	rc.Do("SELECT", "0")
	for _, lib := range []string{"mylib", "alib"} {
		got, want := string(s.ExecDB(nil, e, 0, byteArgs([]string{"FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", lib}))),
			rc.Do("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", lib)
		if got != want {
			t.Errorf("FUNCTION LIST %s:\n got %q\nwant %q", lib, got, want)
		}
	}
}
