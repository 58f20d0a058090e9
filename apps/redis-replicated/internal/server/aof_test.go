package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// startAOFStandalone starts a standalone server whose append-only file
// goes to dir (appendonly still off); its file is closed at cleanup.
func startAOFStandalone(t testing.TB, dir string) (*Server, *Machine) {
	t.Helper()
	m := NewMachine()
	if err := m.StartAOF(AOFOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.CloseAOF() }) // after the server's own cleanup: cleanups run last first
	return startStandaloneOn(t, m), m
}

// mustDo sends each command and fails on an error reply.
func mustDo(t testing.TB, c *redistest.Conn, cmds ...[]string) {
	t.Helper()
	for _, args := range cmds {
		if r := c.Do(args...); strings.HasPrefix(r, "-") {
			t.Fatalf("%q: %q", args, r)
		}
	}
}

// aofWrites are writes of every kind, random and timed ones among them:
// the file records proposals, so all replay the same.
var aofWrites = [][]string{
	{"SET", "s", "v"}, {"APPEND", "s", "w"}, {"INCRBYFLOAT", "f", "1.5"},
	{"SADD", "set", "a", "b", "c", "d", "e", "f"}, {"SPOP", "set"}, {"SPOP", "set", "2"},
	{"XADD", "x", "*", "f", "v"}, {"XADD", "x", "*", "g", "w"}, {"XGROUP", "CREATE", "x", "g", "0"},
	{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "x", ">"},
	{"SET", "t", "v", "EX", "100"}, {"EXPIRE", "s", "1000"}, {"PEXPIRE", "f", "50000"},
	{"EVAL", "redis.call('set', KEYS[1], tostring(math.random())) return 1", "1", "r"},
	{"ZADD", "z", "1", "a", "2", "b"}, {"ZINCRBY", "z", "3", "a"},
	{"HSET", "h", "a", "1", "b", "2"}, {"HINCRBY", "h", "a", "5"},
	{"RPUSH", "l", "1", "2", "3"}, {"LMOVE", "l", "l2", "LEFT", "RIGHT"},
	{"SELECT", "3"}, {"SET", "in3", "x"}, {"SRANDMEMBER", "nothing"}, {"SELECT", "0"},
	{"MULTI"}, {"INCR", "n"}, {"SPOP", "set"}, {"EXEC"},
	{"CONFIG", "SET", "hash-max-listpack-entries", "1"}, {"HSET", "h2", "a", "1", "b", "2"},
	{"DEBUG", "RELOAD"}, {"SWAPDB", "0", "5"}, {"SET", "after-swap", "1"},
}

// TestAOFRoundTrip: DEBUG LOADAOF rebuilds exactly the live state (DEBUG
// DIGEST before and after), whether the writes came before or after a
// BGREWRITEAOF, and whatever the fsync policy.
func TestAOFRoundTrip(t *testing.T) {
	half := len(aofWrites) / 2
	tests := []struct {
		name          string
		fsync         string
		before, after [][]string // writes before and after a BGREWRITEAOF (nil: none)
	}{
		{"everysec", "everysec", aofWrites, nil},
		{"always", "always", aofWrites, nil},
		{"no", "no", aofWrites, nil},
		{"rewrite then more writes", "everysec", aofWrites[:half], aofWrites[half:]},
		{"rewrite only", "everysec", aofWrites, [][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv, _ := startAOFStandalone(t, dir)
			c := redistest.Dial(t, srv.Addr())
			mustDo(t, c, []string{"SET", "before-aof", "1"}, []string{"CONFIG", "SET", "appendfsync", tc.fsync},
				[]string{"CONFIG", "SET", "appendonly", "yes"})
			mustDo(t, c, tc.before...)
			if tc.after != nil {
				if r := c.Do("BGREWRITEAOF"); r != "+Background append only file rewriting started\r\n" {
					t.Fatalf("BGREWRITEAOF: %q", r)
				}
				mustDo(t, c, tc.after...)
			}
			want := c.Do("DEBUG", "DIGEST")
			if r := c.Do("DEBUG", "LOADAOF"); r != "+OK\r\n" {
				t.Fatalf("DEBUG LOADAOF: %q", r)
			}
			if got := c.Do("DEBUG", "DIGEST"); got != want {
				t.Fatalf("digest after DEBUG LOADAOF %q, before %q", got, want)
			}
			// The state stays live: writes go on, and load again.
			mustDo(t, c, []string{"SPOP", "set"}, []string{"SET", "more", "1"})
			want = c.Do("DEBUG", "DIGEST")
			if r := c.Do("DEBUG", "LOADAOF"); r != "+OK\r\n" || c.Do("DEBUG", "DIGEST") != want {
				t.Fatalf("second DEBUG LOADAOF: %q, digest changed", r)
			}
			if got := c.Do("CONFIG", "GET", "appendfsync"); got != "*2\r\n"+bulk("appendfsync")+bulk(tc.fsync) {
				t.Fatalf("CONFIG GET appendfsync: %q", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "appendonly.aof")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAOFOff: with appendonly no, DEBUG LOADAOF is refused (Redis would
// load a stale file, or exit), and turning it off closes the file.
func TestAOFOff(t *testing.T) {
	srv, _ := startAOFStandalone(t, t.TempDir())
	c := redistest.Dial(t, srv.Addr())
	if r := c.Do("DEBUG", "LOADAOF"); !strings.HasPrefix(r, "-ERR gomu: DEBUG LOADAOF: appendonly is no") {
		t.Fatalf("DEBUG LOADAOF, appendonly no: %q", r)
	}
	mustDo(t, c, []string{"CONFIG", "SET", "appendonly", "yes"}, []string{"SET", "k", "v"}, []string{"CONFIG", "SET", "appendonly", "no"})
	if r := c.Do("INFO", "persistence"); !strings.Contains(r, "aof_enabled:0\r\n") || strings.Contains(r, "aof_current_size") {
		t.Fatalf("INFO persistence, appendonly no:\n%s", r)
	}
}

// TestAOFConfigLikeRedis: CONFIG SET and GET of the AOF parameters answer
// as Redis 7.0's (the refusals, word for word).
func TestAOFConfigLikeRedis(t *testing.T) {
	srv, _ := startAOFStandalone(t, t.TempDir())
	ours := redistest.Dial(t, srv.Addr())
	redis := redistest.Dial(t, redistest.Start(t))
	for _, args := range [][]string{
		{"CONFIG", "SET", "appendfsync", "sometimes"},
		{"CONFIG", "SET", "appendonly", "maybe"},
		{"CONFIG", "SET", "appendfilename", "other.aof"},
		{"CONFIG", "SET", "dir", "/tmp"},
		{"CONFIG", "SET", "aof-use-rdb-preamble", "no"},
		{"CONFIG", "GET", "aof-use-rdb-preamble"},
		{"CONFIG", "SET", "appendfsync", "always"},
		{"CONFIG", "GET", "appendfsync"},
		{"CONFIG", "SET", "appendfsync", "everysec"},
		{"CONFIG", "GET", "appendonly"},
		{"CONFIG", "GET", "appendfilename"},
	} {
		if got, want := ours.Do(args...), redis.Do(args...); got != want {
			t.Errorf("%q: got %q, want %q", args, got, want)
		}
	}
}

// TestAOFInfoFields: with appendonly yes, every aof_ field INFO
// persistence gives is one Redis 7.0 gives, under the same name.
func TestAOFInfoFields(t *testing.T) {
	srv, _ := startAOFStandalone(t, t.TempDir())
	ours := redistest.Dial(t, srv.Addr())
	redis := redistest.Dial(t, redistest.Start(t))
	for _, c := range []*redistest.Conn{ours, redis} {
		mustDo(t, c, []string{"CONFIG", "SET", "appendonly", "yes"})
	}
	time.Sleep(200 * time.Millisecond) // Redis's rewrite runs in the background
	theirs := redis.Do("INFO", "persistence")
	n := 0
	for _, line := range strings.Split(ours.Do("INFO", "persistence"), "\r\n") {
		name, _, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "aof_") {
			continue
		}
		n++
		if !strings.Contains(theirs, "\r\n"+name+":") {
			t.Errorf("INFO persistence field %s: Redis 7.0 has none", name)
		}
	}
	if n < 8 {
		t.Fatalf("only %d aof_ fields", n)
	}
}

// TestAOFStateTransfer: a state transfer (Machine.Restore) rewrites the
// file with the state received as its base.
func TestAOFStateTransfer(t *testing.T) {
	src := NewMachine()
	src.Apply(0, oneCommand([][]byte{[]byte("SADD"), []byte("s"), []byte("a"), []byte("b")}))
	var snap bytes.Buffer
	if err := src.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	m := NewMachine()
	if err := m.StartAOF(AOFOptions{Dir: t.TempDir(), Enable: true}); err != nil {
		t.Fatal(err)
	}
	defer m.CloseAOF()
	m.Apply(0, oneCommand([][]byte{[]byte("SET"), []byte("gone"), []byte("1")}))
	if err := m.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	m.Apply(0, oneCommand([][]byte{[]byte("SPOP"), []byte("s")}))
	want := m.Digest()
	if err := m.loadAOF(); err != nil || m.Digest() != want {
		t.Fatalf("load after a state transfer: %v, or the state differs", err)
	}
}

// TestAOFTail: at start a standalone server loads its file; a record cut
// short or corrupt ends it (truncated away), as aof-load-truncated yes.
func TestAOFTail(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, path string, last int64) // last: the last record's offset
		// keepsLast: the last write survives.
		keepsLast bool
	}{
		{"whole", func(*testing.T, string, int64) {}, true},
		{"size cut short", func(t *testing.T, p string, last int64) { truncate(t, p, last+2) }, false},
		{"proposal cut short", func(t *testing.T, p string, last int64) { truncate(t, p, last+10) }, false},
		{"checksum cut short", func(t *testing.T, p string, _ int64) { truncate(t, p, fileSize(t, p)-1) }, false},
		{"proposal corrupt", func(t *testing.T, p string, last int64) { flip(t, p, last+6) }, false},
		{"garbage after", func(t *testing.T, p string, _ int64) { appendBytes(t, p, []byte{1, 2, 3}) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "appendonly.aof")
			srv, m := startAOFStandalone(t, dir)
			c := redistest.Dial(t, srv.Addr())
			mustDo(t, c, []string{"CONFIG", "SET", "appendonly", "yes"}, []string{"SADD", "s", "a", "b", "c"}, []string{"SPOP", "s"})
			mid := m.Digest()
			last := fileSize(t, path)
			mustDo(t, c, []string{"XADD", "x", "*", "f", "v"})
			end := m.Digest()
			srv.Close()
			m.CloseAOF()
			full := fileSize(t, path)
			tc.tear(t, path, last)

			m2 := NewMachine()
			if err := m2.StartAOF(AOFOptions{Dir: dir, Enable: true, Load: true}); err != nil {
				t.Fatal(err)
			}
			defer m2.CloseAOF()
			want, wantSize := mid, last
			if tc.keepsLast {
				want, wantSize = end, full
			}
			if m2.Digest() != want {
				t.Fatalf("state loaded is not the state after the last whole record")
			}
			if got := fileSize(t, path); got != wantSize {
				t.Fatalf("file is %d bytes after loading, want %d (the torn tail truncated)", got, wantSize)
			}
			// Appends go on after the last whole record, and load again.
			m2.Apply(0, oneCommand([][]byte{[]byte("SET"), []byte("k"), []byte("v")}))
			want = m2.Digest()
			if err := m2.loadAOF(); err != nil || m2.Digest() != want {
				t.Fatalf("load after appending to a truncated file: %v", err)
			}
		})
	}
}

// TestAOFCorruptBase: a file whose base does not check out, or that is no
// gomu append-only file, is refused at start, saying why.
func TestAOFCorruptBase(t *testing.T) {
	tests := []struct {
		name string
		hurt func(t *testing.T, path string)
		want string
	}{
		{"base byte flipped", func(t *testing.T, p string) { flip(t, p, int64(aofHeader)+12) }, "corrupt base"},
		{"base cut short", func(t *testing.T, p string) { truncate(t, p, int64(aofHeader)+5) }, "corrupt base"},
		{"bad magic", func(t *testing.T, p string) { flip(t, p, 0) }, "not a gomu append-only file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := NewMachine()
			m.Apply(0, oneCommand([][]byte{[]byte("SET"), []byte("k"), []byte("v")}))
			if err := m.StartAOF(AOFOptions{Dir: dir, Enable: true}); err != nil {
				t.Fatal(err)
			}
			m.CloseAOF()
			tc.hurt(t, filepath.Join(dir, "appendonly.aof"))
			err := NewMachine().StartAOF(AOFOptions{Dir: dir, Enable: true, Load: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("StartAOF: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAOFWriteFailure: a write the file cannot take stops it, INFO says
// so and writes are refused (MISCONF) until a rewrite succeeds; an
// unwritable directory refuses appendonly yes.
func TestAOFWriteFailure(t *testing.T) {
	srv, m := startAOFStandalone(t, t.TempDir())
	c := redistest.Dial(t, srv.Addr())
	mustDo(t, c, []string{"CONFIG", "SET", "appendonly", "yes"}, []string{"SET", "a", "1"})
	m.mu.Lock()
	m.aof.log.f.Close() // the next record's write fails
	m.mu.Unlock()
	mustDo(t, c, []string{"SET", "b", "2"}) // applied, acknowledged, not in the file
	if r := c.Do("SET", "c", "3"); !strings.HasPrefix(r, "-MISCONF Errors writing to the AOF file") {
		t.Fatalf("write after the file failed: %q", r)
	}
	if r := c.Do("INFO", "persistence"); !strings.Contains(r, "aof_last_write_status:err\r\n") {
		t.Fatalf("INFO after the file failed:\n%s", r)
	}
	if r := c.Do("DEBUG", "LOADAOF"); !strings.HasPrefix(r, "-ERR gomu: DEBUG LOADAOF: the append-only file failed") {
		t.Fatalf("DEBUG LOADAOF of a failed file: %q", r)
	}
	mustDo(t, c, []string{"BGREWRITEAOF"}, []string{"SET", "c", "3"})
	want := c.Do("DEBUG", "DIGEST")
	if r := c.Do("DEBUG", "LOADAOF"); r != "+OK\r\n" || c.Do("DEBUG", "DIGEST") != want {
		t.Fatalf("DEBUG LOADAOF after the rewrite: %q, digest changed", r)
	}
	if got := c.Do("GET", "b"); got != bulk("2") {
		t.Fatalf("the write whose record failed is lost: GET b %q", got)
	}

	srv2, _ := startAOFStandalone(t, filepath.Join(t.TempDir(), "missing"))
	c2 := redistest.Dial(t, srv2.Addr())
	if r := c2.Do("CONFIG", "SET", "appendonly", "yes"); r != "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.\r\n" {
		t.Fatalf("appendonly yes in a missing directory: %q", r)
	}
}

// TestAOFCluster: with appendonly on the leader and a follower, DEBUG
// LOADAOF on each gives back the live state, the same on every replica.
func TestAOFCluster(t *testing.T) {
	cl := replicatest.Start(t, 3, replicatest.Options{Ring: testRing, MaxBatch: testMaxBatch},
		func(int) (*Server, *Machine, error) {
			m := NewMachine()
			if err := m.StartAOF(AOFOptions{Dir: t.TempDir()}); err != nil {
				return nil, nil, err
			}
			t.Cleanup(func() { m.CloseAOF() })
			srv, err := New(Config{Addr: "127.0.0.1:0", Machine: m, MaxProposal: testMaxProposal, Timeout: 5 * time.Second})
			return srv, m, err
		})
	lead := cl.WaitLeader()
	f := cl.Followers(lead)[0]
	lc, fc := redistest.Dial(t, lead.Addr()), redistest.Dial(t, f.Addr())
	mustDo(t, lc, []string{"SET", "before", "1"})
	mustDo(t, lc, []string{"CONFIG", "SET", "appendonly", "yes"})
	mustDo(t, fc, []string{"CONFIG", "SET", "appendonly", "yes"})
	mustDo(t, lc, aofWrites...)
	want := lc.Do("DEBUG", "DIGEST")
	for _, c := range []*redistest.Conn{lc, fc} {
		if got := c.Do("DEBUG", "DIGEST"); got != want {
			t.Fatalf("digests differ before loading: %q, leader %q", got, want)
		}
		if r := c.Do("DEBUG", "LOADAOF"); r != "+OK\r\n" {
			t.Fatalf("DEBUG LOADAOF: %q", r)
		}
		if got := c.Do("DEBUG", "DIGEST"); got != want {
			t.Fatalf("digest after DEBUG LOADAOF %q, want the live %q", got, want)
		}
	}
	mustDo(t, lc, []string{"SPOP", "set"})
	if lc.Do("DEBUG", "DIGEST") != fc.Do("DEBUG", "DIGEST") {
		t.Fatal("replicas diverge after DEBUG LOADAOF")
	}
}

// TestAOFConcurrentApply: proposals applied from many goroutines at once
// (a standalone server's connections), with rewrites meanwhile, are all
// in the file, in the order applied: loading gives the live state.
func TestAOFConcurrentApply(t *testing.T) {
	for _, fsync := range []string{"no", "always"} {
		t.Run(fsync, func(t *testing.T) {
			m := NewMachine()
			if err := m.StartAOF(AOFOptions{Dir: t.TempDir(), Fsync: fsync, Enable: true}); err != nil {
				t.Fatal(err)
			}
			defer m.CloseAOF()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 100 {
						m.Apply(0, oneCommand([][]byte{[]byte("RPUSH"), []byte("l"), []byte(strconv.Itoa(g*1000 + i))}))
						m.Apply(0, oneCommand([][]byte{[]byte("SPOP"), []byte("s")}))
						m.Apply(0, oneCommand([][]byte{[]byte("SADD"), []byte("s"), []byte(strconv.Itoa(i))}))
						if g == 0 && i%25 == 0 {
							if e := m.rewriteAOF(); e != "" {
								t.Error(e)
							}
						}
					}
				}()
			}
			wg.Wait()
			want := m.Digest()
			if err := m.loadAOF(); err != nil {
				t.Fatal(err)
			}
			if m.Digest() != want {
				t.Fatal("state loaded differs from the live state")
			}
		})
	}
}

// BenchmarkApplyAOF: Apply of a one-command SET, appendonly off and on
// with each fsync policy (the file in a temporary directory).
func BenchmarkApplyAOF(b *testing.B) {
	for _, mode := range []string{"off", "no", "everysec", "always"} {
		b.Run(mode, func(b *testing.B) {
			m := NewMachine()
			if mode != "off" {
				if err := m.StartAOF(AOFOptions{Dir: b.TempDir(), Fsync: mode, Enable: true}); err != nil {
					b.Fatal(err)
				}
				defer m.CloseAOF()
			}
			p := setProposal()
			b.ReportAllocs()
			for b.Loop() {
				m.Apply(0, p)
			}
		})
	}
}

// TestAOFApplyAllocs: recording a proposal allocates nothing once warm.
func TestAOFApplyAllocs(t *testing.T) {
	m := NewMachine()
	p := setProposal()
	off := testing.AllocsPerRun(1000, func() { m.Apply(0, p) })
	if err := m.StartAOF(AOFOptions{Dir: t.TempDir(), Fsync: "no", Enable: true}); err != nil {
		t.Fatal(err)
	}
	defer m.CloseAOF()
	if on := testing.AllocsPerRun(1000, func() { m.Apply(0, p) }); on != off {
		t.Fatalf("Apply(SET) allocates %v times with appendonly yes, %v without", on, off)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, extra []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(extra); err != nil {
		t.Fatal(err)
	}
}
