package server

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/redistest"
)

// startRDBStandalone starts a standalone server whose files go to dir,
// loading dir's RDB file as the binary does (o's Load), with appendonly
// as aof says.
func startRDBStandalone(t testing.TB, dir string, aof bool) (*Server, *Machine) {
	t.Helper()
	m := NewMachine()
	if err := m.StartAOF(AOFOptions{Dir: dir, Enable: aof, Load: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.CloseAOF() })
	if err := m.StartRDB(RDBOptions{Load: true}); err != nil {
		t.Fatal(err)
	}
	return startStandaloneOn(t, m), m
}

// rdbWrites are writes of every type in several databases, with TTLs and
// a function library (no CONFIG nor script cache: not in an RDB file).
var rdbWrites = [][]string{
	{"SET", "s", "v"}, {"APPEND", "s", "w"}, {"INCRBYFLOAT", "f", "1.5"},
	{"SADD", "set", "a", "b", "c", "d", "e", "f"}, {"SPOP", "set"}, {"SADD", "ints", "1", "2", "3"},
	{"XADD", "x", "*", "f", "v"}, {"XADD", "x", "*", "g", "w"}, {"XGROUP", "CREATE", "x", "g", "0"},
	{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "x", ">"},
	{"SET", "t", "v", "EX", "100"}, {"EXPIRE", "s", "1000"}, {"PEXPIRE", "f", "50000"},
	{"ZADD", "z", "1", "a", "2", "b"}, {"ZINCRBY", "z", "3", "a"},
	{"HSET", "h", "a", "1", "b", "2"}, {"HINCRBY", "h", "a", "5"},
	{"RPUSH", "l", "1", "2", "3"}, {"LMOVE", "l", "l2", "LEFT", "RIGHT"},
	{"SELECT", "3"}, {"SET", "in3", "x"}, {"SELECT", "15"}, {"RPUSH", "in15", "x"}, {"SELECT", "0"},
	{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"},
}

// keyspaceImage is every database's keys with their DUMP and PEXPIRETIME,
// and the function libraries: what an RDB file keeps.
func keyspaceImage(t testing.TB, c *redistest.Conn) string {
	t.Helper()
	var b strings.Builder
	for db := range store.Databases {
		mustDo(t, c, []string{"SELECT", strconv.Itoa(db)})
		keys := bulkList(t, c.Do("KEYS", "*"))
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%d %q %q %q\n", db, k, c.Do("DUMP", k), c.Do("PEXPIRETIME", k))
		}
	}
	mustDo(t, c, []string{"SELECT", "0"})
	b.WriteString(c.Do("FUNCTION", "LIST", "WITHCODE"))
	return b.String()
}

// waitBgsaveDone waits for INFO's rdb_bgsave_in_progress to be 0.
func waitBgsaveDone(t testing.TB, c *redistest.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); infoField(c.Do("INFO", "persistence"), "rdb_bgsave_in_progress") != "0"; {
		if time.Now().After(deadline) {
			t.Fatal("BGSAVE still in progress after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRDBSaveAndLoad: what SAVE, BGSAVE and SHUTDOWN SAVE write, a
// standalone server started on the directory loads, equal; with
// appendonly yes the append-only file is the state and the RDB file is
// not loaded.
func TestRDBSaveAndLoad(t *testing.T) {
	tests := []struct {
		name  string
		save  []string
		reply string
	}{
		{"SAVE", []string{"SAVE"}, "+OK\r\n"},
		{"BGSAVE", []string{"BGSAVE"}, "+Background saving started\r\n"},
		{"BGSAVE SCHEDULE", []string{"BGSAVE", "SCHEDULE"}, "+Background saving started\r\n"},
		{"SHUTDOWN SAVE", []string{"SHUTDOWN", "SAVE"}, ""}, // no reply: the connection closes
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv, _ := startRDBStandalone(t, dir, false)
			c := redistest.Dial(t, srv.Addr())
			mustDo(t, c, rdbWrites...)
			want := keyspaceImage(t, c)
			if got := c.Do("INFO", "persistence"); infoField(got, "rdb_changes_since_last_save") == "0" {
				t.Fatalf("no changes counted before the save:\n%s", got)
			}
			if tc.reply == "" {
				if err := c.Send([]byte("*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")); err != nil {
					t.Fatal(err)
				}
				if r, err := c.Read(); err == nil {
					t.Fatalf("SHUTDOWN SAVE replied %q", r)
				}
			} else {
				if r := c.Do(tc.save...); r != tc.reply {
					t.Fatalf("%q: %q", tc.save, r)
				}
				waitBgsaveDone(t, c)
				info := c.Do("INFO", "persistence")
				for field, v := range map[string]string{"rdb_changes_since_last_save": "0", "rdb_saves": "1", "rdb_last_bgsave_status": "ok"} {
					if got := infoField(info, field); got != v {
						t.Errorf("%s: %q, want %q", field, got, v)
					}
				}
			}
			if err := store.WalkRDB(mustRead(t, filepath.Join(dir, "dump.rdb")), func(*store.RDBEntry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			srv2, _ := startRDBStandalone(t, dir, false)
			c2 := redistest.Dial(t, srv2.Addr())
			if got := keyspaceImage(t, c2); got != want {
				t.Fatalf("loaded:\n%s\nsaved:\n%s", got, want)
			}
			info := c2.Do("INFO", "persistence")
			if infoField(info, "rdb_last_load_keys_loaded") != "12" || infoField(info, "rdb_changes_since_last_save") != "0" {
				t.Fatalf("after the load:\n%s", info)
			}
			// appendonly yes: a new (empty) append-only file is the state.
			srv3, _ := startRDBStandalone(t, dir, true)
			if r := redistest.Dial(t, srv3.Addr()).Do("DBSIZE"); r != ":0\r\n" {
				t.Fatalf("appendonly yes loaded the RDB file: DBSIZE %q", r)
			}
			// A cluster's replica (Load false, as the binary starts one)
			// gets its state by state transfer, not from the file.
			m := NewMachine()
			if err := m.StartAOF(AOFOptions{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			if err := m.StartRDB(RDBOptions{}); err != nil {
				t.Fatal(err)
			}
			if r := redistest.Dial(t, startStandaloneOn(t, m).Addr()).Do("DBSIZE"); r != ":0\r\n" {
				t.Fatalf("a replica loaded the RDB file: DBSIZE %q", r)
			}
		})
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBGSAVEConsistent: a BGSAVE while a client writes pairs of keys in
// transactions, in order, holds a prefix of them and never half a pair:
// its image is one point in time.
func TestBGSAVEConsistent(t *testing.T) {
	dir := t.TempDir()
	srv, _ := startRDBStandalone(t, dir, false)
	c := redistest.Dial(t, srv.Addr())
	mustDo(t, c, []string{"SET", "big", strings.Repeat("x", 1<<20)})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := redistest.Dial(t, srv.Addr())
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := strconv.Itoa(i)
			for _, args := range [][]string{{"MULTI"}, {"SET", "a" + n, n}, {"SET", "b" + n, n}, {"EXEC"}} {
				if r := w.Do(args...); strings.HasPrefix(r, "-") {
					t.Errorf("%q: %q", args, r)
					return
				}
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	for range 3 {
		if r := c.Do("BGSAVE"); r != "+Background saving started\r\n" {
			t.Fatalf("BGSAVE: %q", r)
		}
		waitBgsaveDone(t, c)
		keys := map[string]bool{}
		err := store.WalkRDB(mustRead(t, filepath.Join(dir, "dump.rdb")), func(e *store.RDBEntry) error {
			keys[string(e.Key)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pairs := (len(keys) - 1) / 2
		for i := range pairs {
			n := strconv.Itoa(i)
			if !keys["a"+n] || !keys["b"+n] {
				t.Fatalf("image of %d keys lacks pair %d", len(keys), i)
			}
		}
		if len(keys) != 1+2*pairs || pairs == 0 {
			t.Fatalf("image of %d keys: not whole pairs", len(keys))
		}
	}
	close(stop)
	wg.Wait()
}

// TestRDBCommands: the replies and errors of SAVE, BGSAVE, LASTSAVE and
// SHUTDOWN, as Redis 7.0 words them.
func TestRDBCommands(t *testing.T) {
	dir := t.TempDir()
	srv, _ := startRDBStandalone(t, dir, false)
	c := redistest.Dial(t, srv.Addr())
	before := c.Do("LASTSAVE")
	if !strings.HasPrefix(before, ":") {
		t.Fatalf("LASTSAVE: %q", before)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"BGSAVE", "NOW"}, "-ERR syntax error\r\n"},
		{[]string{"BGSAVE", "SCHEDULE", "X"}, "-ERR syntax error\r\n"},
		{[]string{"SAVE", "X"}, "-ERR wrong number of arguments for 'save' command\r\n"},
		{[]string{"LASTSAVE", "X"}, "-ERR wrong number of arguments for 'lastsave' command\r\n"},
		{[]string{"SHUTDOWN", "X"}, "-ERR syntax error\r\n"},
		{[]string{"SHUTDOWN", "SAVE", "NOSAVE"}, "-ERR syntax error\r\n"},
		{[]string{"SHUTDOWN", "ABORT", "NOW"}, "-ERR syntax error\r\n"},
		{[]string{"SHUTDOWN", "ABORT"}, "-ERR No shutdown in progress.\r\n"},
		{[]string{"CONFIG", "GET", "dbfilename"}, "*2\r\n" + bulk("dbfilename") + bulk("dump.rdb")},
		{[]string{"CONFIG", "SET", "dbfilename", "a/b.rdb"}, "-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename\r\n"},
		{[]string{"CONFIG", "SET", "dbfilename", "other.rdb"}, "+OK\r\n"},
		{[]string{"CONFIG", "SET", "rdb-key-save-delay", "abc"}, "-ERR CONFIG SET failed (possibly related to argument 'rdb-key-save-delay') - argument couldn't be parsed into an integer\r\n"},
		{[]string{"CONFIG", "SET", "rdb-key-save-delay", "99999999999"}, "-ERR CONFIG SET failed (possibly related to argument 'rdb-key-save-delay') - argument must be between -2147483648 and 2147483647 inclusive\r\n"},
		{[]string{"CONFIG", "GET", "rdb-key-save-delay"}, "*2\r\n" + bulk("rdb-key-save-delay") + bulk("0")},
		{[]string{"SET", "k", "v"}, "+OK\r\n"},
		{[]string{"SAVE"}, "+OK\r\n"},
		// Transactions: SAVE and SHUTDOWN are refused, BGSAVE runs at EXEC.
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"SET", "k", "w"}, "+QUEUED\r\n"},
		{[]string{"SAVE"}, "-ERR Command not allowed inside a transaction\r\n"},
		{[]string{"SHUTDOWN"}, "-ERR Command not allowed inside a transaction\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"BGSAVE"}, "+QUEUED\r\n"},
		{[]string{"EXEC"}, "*1\r\n+Background saving started\r\n"},
	} {
		if got := c.Do(tc.args...); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
	waitBgsaveDone(t, c)
	if _, err := os.Stat(filepath.Join(dir, "other.rdb")); err != nil {
		t.Fatalf("SAVE after CONFIG SET dbfilename: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dump.rdb")); err == nil {
		t.Fatal("dump.rdb written after CONFIG SET dbfilename other.rdb")
	}
	// An unwritable directory: SAVE answers Redis's bare ERR, BGSAVE
	// starts and INFO reports its failure.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if got := c.Do("SAVE"); got != "-ERR\r\n" {
		t.Fatalf("SAVE into a missing dir: %q", got)
	}
	if got := c.Do("BGSAVE"); got != "+Background saving started\r\n" {
		t.Fatalf("BGSAVE into a missing dir: %q", got)
	}
	waitBgsaveDone(t, c)
	if got := infoField(c.Do("INFO", "persistence"), "rdb_last_bgsave_status"); got != "err" {
		t.Fatalf("rdb_last_bgsave_status after a failed BGSAVE: %q", got)
	}
	if got := c.Do("SHUTDOWN", "SAVE"); got != "-ERR Errors trying to SHUTDOWN. Check logs.\r\n" {
		t.Fatalf("SHUTDOWN SAVE into a missing dir: %q", got)
	}
	if err := c.Send([]byte("*3\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n$5\r\nFORCE\r\n")); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(); err == nil {
		t.Fatalf("SHUTDOWN SAVE FORCE replied %q", r)
	}
}

// TestRDBKeySaveDelay: rdb-key-save-delay keeps a BGSAVE in progress for
// that long per key (tests of Redis's use it so), and it ends written.
func TestRDBKeySaveDelay(t *testing.T) {
	dir := t.TempDir()
	srv, _ := startRDBStandalone(t, dir, false)
	c := redistest.Dial(t, srv.Addr())
	c.Do("MSET", "a", "1", "b", "2")
	if got := c.Do("CONFIG", "SET", "rdb-key-save-delay", "1000000"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET rdb-key-save-delay: %q", got)
	}
	if got := c.Do("BGSAVE"); got != "+Background saving started\r\n" {
		t.Fatalf("BGSAVE: %q", got)
	}
	// Two keys at a second each: in progress for two seconds.
	if got := infoField(c.Do("INFO", "persistence"), "rdb_bgsave_in_progress"); got != "1" {
		t.Fatalf("rdb_bgsave_in_progress right after BGSAVE with a delay: %q", got)
	}
	if got := c.Do("BGSAVE"); got != "-ERR Background save already in progress\r\n" {
		t.Fatalf("a second BGSAVE: %q", got)
	}
	waitBgsaveDone(t, c)
	if _, err := os.Stat(filepath.Join(dir, "dump.rdb")); err != nil {
		t.Fatalf("the delayed BGSAVE wrote nothing: %v", err)
	}
}
