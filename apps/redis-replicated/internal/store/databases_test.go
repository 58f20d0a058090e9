package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// runDiffDB is runDiff for scripts that SELECT: the store has no SELECT
// (it is the server's connection state), so the script's selected
// database is kept here, as the server keeps a connection's, and every
// other command runs in it through ExecDB.
func runDiffDB(t *testing.T, script []step) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	rnd := rand.New(rand.NewPCG(1, 2))
	db := 0
	for i, st := range script {
		want := rc.Do(st.args...)
		var got string
		if eqFoldString([]byte(st.args[0]), "select") {
			n, msg := ParseDB([]byte(st.args[1]))
			if msg != "" {
				got = string(resp.AppendError(nil, msg))
			} else {
				db, got = n, "+OK\r\n"
			}
		} else {
			env := &Env{NowMs: time.Now().UnixMilli(), Rand: rnd}
			b := make([][]byte, len(st.args))
			for j, a := range st.args {
				b[j] = []byte(a)
			}
			got = string(s.ExecDB(nil, env, db, b))
		}
		if st.unordered {
			want, got = sortedArray(t, want), sortedArray(t, got)
		}
		if got != want {
			t.Fatalf("step %d %q (db %d):\n got %q\nwant %q", i, st.args, db, got, want)
		}
	}
}

// TestDatabasesRandomDiff runs seeded random streams of commands across
// databases (SELECT, MOVE, SWAPDB, FLUSHDB, FLUSHALL, COPY ... DB, and
// writes and reads of every kind of value) and compares every reply with
// Redis's.
func TestDatabasesRandomDiff(t *testing.T) {
	for _, seed := range []uint64{3, 16, 2026} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 9))
			key := func() string { return "k" + strconv.Itoa(r.IntN(4)) }
			db := func() string {
				if r.IntN(25) == 0 {
					return []string{"16", "-1", "x", "99999999999", ""}[r.IntN(5)]
				}
				return strconv.Itoa(r.IntN(5))
			}
			var script []step
			for range 3000 {
				var c []string
				switch r.IntN(20) {
				case 0, 1:
					c = []string{"SELECT", db()}
				case 2:
					c = []string{"MOVE", key(), db()}
				case 3:
					c = []string{"SWAPDB", db(), db()}
				case 4:
					c = []string{"FLUSHDB"}
					if r.IntN(6) == 0 {
						c = []string{"FLUSHALL"}
					}
				case 5:
					c = []string{"COPY", key(), key(), "DB", db()}
					if r.IntN(2) == 0 {
						c = append(c, "REPLACE")
					}
				case 6:
					c = []string{"SET", key(), strconv.Itoa(r.IntN(9))}
				case 7:
					c = []string{"HSET", key(), "f" + strconv.Itoa(r.IntN(3)), "v"}
				case 8:
					c = []string{"SADD", key(), strconv.Itoa(r.IntN(4))}
				case 9:
					c = []string{"ZADD", key(), strconv.Itoa(r.IntN(5)), "m" + strconv.Itoa(r.IntN(3))}
				case 10:
					c = []string{"RPUSH", key(), "x"}
				case 11:
					at := 4102444800000 + r.IntN(1000)
					if r.IntN(10) == 0 {
						at = r.IntN(3) // in the past: deletes
					}
					c = []string{"PEXPIREAT", key(), strconv.Itoa(at)}
				case 12:
					c = []string{"PEXPIRETIME", key()}
				case 13:
					c = []string{"DBSIZE"}
				case 14:
					script = append(script, anyOrder("KEYS", "*"))
					continue
				case 15:
					c = []string{"RENAME", key(), key()}
				case 16:
					c = []string{"OBJECT", "ENCODING", key()}
				case 17:
					c = []string{"DEL", key()}
				default:
					c = []string{"TYPE", key()}
				}
				script = append(script, cmd(c...))
			}
			runDiffDB(t, script)
		})
	}
}

// fillDatabases puts keys of every kind, some with TTLs, in databases 0,
// 3 and 15 of a new store.
func fillDatabases(t testing.TB) *Store {
	s := New()
	e := &Env{NowMs: 1000, Rand: rand.New(rand.NewPCG(3, 4))}
	for _, c := range []struct {
		db   int
		args []string
	}{
		{0, []string{"set", "a", "0"}}, {0, []string{"rpush", "l", "x", "y"}},
		{3, []string{"set", "a", "3"}}, {3, []string{"hset", "h", "f", "v"}}, {3, []string{"pexpire", "h", "50000"}},
		{3, []string{"zadd", "z", "1", "m"}}, {15, []string{"sadd", "s", "1", "2"}},
		{15, []string{"set", "t", "v", "px", "10"}},
	} {
		b := make([][]byte, len(c.args))
		for i, a := range c.args {
			b[i] = []byte(a)
		}
		if r := s.ExecDB(nil, e, c.db, b); r[0] == '-' {
			t.Fatalf("%q: %q", c.args, r)
		}
	}
	return s
}

// TestSnapshotDatabases round-trips keys in several databases, checks that
// the digest sees every database (the same keys in another database are
// another state), and that a snapshot of version 1, the single-database
// format, still restores into database 0.
func TestSnapshotDatabases(t *testing.T) {
	s := fillDatabases(t)
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r.Digest() != s.Digest() {
		t.Fatal("restored store differs")
	}
	for db := range Databases {
		k1, e1 := s.DBStats(db)
		k2, e2 := r.DBStats(db)
		if k1 != k2 || e1 != e2 {
			t.Fatalf("db %d: %d keys %d expiring, restored %d %d", db, k1, e1, k2, e2)
		}
	}
	if k, e := r.DBStats(3); k != 3 || e != 1 {
		t.Fatalf("db 3 restored with %d keys, %d expiring", k, e)
	}
	// The restored expiry index covers database 15's TTL.
	if got := string(r.Exec(nil, &Env{NowMs: 5000}, [][]byte{[]byte(ExpireCommand)})); got != ":1\r\n" {
		t.Fatalf("sweep after restore: %q", got)
	}

	moved := fillDatabases(t)
	e := &Env{NowMs: 1000}
	moved.ExecDB(nil, e, 0, [][]byte{[]byte("swapdb"), []byte("3"), []byte("4")})
	if moved.Digest() == s.Digest() {
		t.Fatal("SWAPDB did not change the digest")
	}
	moved.ExecDB(nil, e, 0, [][]byte{[]byte("swapdb"), []byte("4"), []byte("3")})
	if moved.Digest() != s.Digest() {
		t.Fatal("SWAPDB twice changed the digest")
	}

	// Corruptions of the database list are refused.
	body := buf.Bytes()[len(snapshotMagic) : buf.Len()-32]
	for name, bad := range map[string][]byte{
		"database out of range": append([]byte{1, 16}, body[2:]...),
		"databases out of order": func() []byte {
			b := bytes.Clone(body)
			b[1] = 3 // the first database, 0, now repeats the second's index
			return b
		}(),
		"empty database listed": {1, 2, 0},
	} {
		var in bytes.Buffer
		h := sha256.New()
		in.WriteString(snapshotMagic)
		in.Write(bad)
		h.Write(in.Bytes())
		in.Write(h.Sum(nil))
		if err := New().Restore(&in); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want a corrupt snapshot", name, err)
		}
	}
}

// TestViewAndExecDB checks that ExecDB leaves database 0 selected, even
// after a SWAPDB with database 0, and that View reads another database
// without changing the store.
func TestViewAndExecDB(t *testing.T) {
	s := New()
	e := &Env{NowMs: 1}
	run := func(db int, args ...string) string {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		return string(s.ExecDB(nil, e, db, b))
	}
	run(2, "set", "k", "two")
	run(0, "set", "k", "zero")
	run(2, "swapdb", "0", "2")
	if s.keyspace != s.dbs[0] {
		t.Fatal("ExecDB left another database selected")
	}
	if got := string(s.Exec(nil, e, [][]byte{[]byte("get"), []byte("k")})); got != "$3\r\ntwo\r\n" {
		t.Fatalf("db 0 after SWAPDB: %q", got)
	}
	run(0, "swapdb", "0", "2") // run in db 0 by plain Exec too
	s.Exec(nil, e, [][]byte{[]byte("swapdb"), []byte("0"), []byte("5")})
	if s.keyspace != s.dbs[0] {
		t.Fatal("SWAPDB under Exec left a stale keyspace selected")
	}
	var view Store
	if got := string(s.View(2, &view).Exec(nil, e, [][]byte{[]byte("get"), []byte("k")})); got != "$3\r\ntwo\r\n" {
		t.Fatalf("view of db 2: %q", got)
	}
	if s.View(0, &view) != s || s.keyspace != s.dbs[0] {
		t.Fatal("View changed the store")
	}
}
