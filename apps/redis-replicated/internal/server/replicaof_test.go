package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// bulkList parses a raw RESP array of bulk strings (KEYS, FUNCTION DUMP's
// neighbours) into its strings.
func bulkList(t testing.TB, raw string) []string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "*") {
		t.Fatalf("not an array: %q", raw)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	out := make([]string, 0, n)
	for range n {
		h, _ := br.ReadString('\n')
		size, _ := strconv.Atoi(strings.TrimSpace(h[1:]))
		b := make([]byte, size+2)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("bad bulk in %q", raw)
		}
		out = append(out, string(b[:size]))
	}
	return out
}

// fillMaster writes keys of every type, in several databases, and a
// function library on the Redis at c, tagged so that calls may add more.
func fillMaster(t *testing.T, c *redistest.Conn, tag string) {
	t.Helper()
	do := func(args ...string) {
		t.Helper()
		if r := c.Do(args...); strings.HasPrefix(r, "-") {
			t.Fatalf("master %q: %s", args, r)
		}
	}
	do("SELECT", "0")
	do("SET", tag+"str", "hello")
	do("SET", tag+"int", "12345")
	do("SET", tag+"ttl", "soon", "PX", "600000")
	do("SET", tag+"long", strings.Repeat("abcdefgh", 200)) // LZF-compressed in the RDB
	do("RPUSH", tag+"list", "a", "b", "c")
	big := []string{"RPUSH", tag + "biglist"}
	for i := range 300 {
		big = append(big, fmt.Sprintf("element-%d-%s", i, strings.Repeat("x", i%50)))
	}
	do(big...)
	do("SADD", tag+"intset", "1", "2", "3", "-7")
	do("SADD", tag+"set", "a", "b", "c")
	bigSet := []string{"SADD", tag + "bigintset"}
	for i := range 600 {
		bigSet = append(bigSet, strconv.Itoa(i*3))
	}
	do(bigSet...)
	do("HSET", tag+"hash", "f1", "v1", "f2", "v2")
	do("PEXPIRE", tag+"hash", "900000")
	bigHash := []string{"HSET", tag + "bighash"}
	for i := range 200 {
		bigHash = append(bigHash, fmt.Sprintf("field%d", i), strings.Repeat("v", i))
	}
	do(bigHash...)
	do("ZADD", tag+"zset", "1", "a", "2.5", "b", "-3", "c")
	bigZ := []string{"ZADD", tag + "bigzset"}
	for i := range 200 {
		bigZ = append(bigZ, strconv.Itoa(i), fmt.Sprintf("member-%d", i))
	}
	do(bigZ...)
	for i := range 5 {
		do("XADD", tag+"stream", fmt.Sprintf("%d-1", i+1), "field", strconv.Itoa(i), "other", "x")
	}
	do("XGROUP", "CREATE", tag+"stream", "g1", "0")
	do("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", tag+"stream", ">")
	do("XACK", tag+"stream", "g1", "1-1")
	do("XGROUP", "CREATE", tag+"stream", "g2", "$")
	do("SELECT", "5")
	do("SET", tag+"db5", "five")
	do("HSET", tag+"db5hash", "k", "v")
	do("SELECT", "15")
	do("RPUSH", tag+"db15", "x")
	do("SELECT", "0")
	lib := strings.TrimSuffix(tag, ":")
	do("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib"+lib+"\nredis.register_function('f"+lib+"', function() return 1 end)")
}

// sameData compares every key of every database (DUMP, and PTTL to the
// second), DBSIZE and FUNCTION LIST of the Redis master and the server.
func sameData(t *testing.T, master, gomu *redistest.Conn) error {
	t.Helper()
	for db := range store.Databases {
		master.Do("SELECT", strconv.Itoa(db))
		gomu.Do("SELECT", strconv.Itoa(db))
		if m, g := master.Do("DBSIZE"), gomu.Do("DBSIZE"); m != g {
			return fmt.Errorf("db %d: DBSIZE %q on the master, %q here", db, m, g)
		}
		keys := bulkList(t, master.Do("KEYS", "*"))
		slices.Sort(keys)
		for _, k := range keys {
			if m, g := keyValue(t, master, k), keyValue(t, gomu, k); m != g {
				return fmt.Errorf("db %d key %q: %.200q on the master, %.200q here", db, k, m, g)
			}
			m, _ := strconv.ParseInt(strings.Trim(master.Do("PTTL", k), ":\r\n"), 10, 64)
			g, _ := strconv.ParseInt(strings.Trim(gomu.Do("PTTL", k), ":\r\n"), 10, 64)
			if (m < 0) != (g < 0) || m-g > 2000 || g-m > 2000 {
				return fmt.Errorf("db %d key %q: PTTL %d on the master, %d here", db, k, m, g)
			}
		}
	}
	master.Do("SELECT", "0")
	gomu.Do("SELECT", "0")
	if m, g := functionList(master), functionList(gomu); m != g {
		return fmt.Errorf("FUNCTION LIST %q on the master, %q here", m, g)
	}
	return nil
}

// keyValue is k's DUMP, or for a hash table (whose order is each
// server's own) its sorted members or field-value pairs.
func keyValue(t *testing.T, c *redistest.Conn, k string) string {
	t.Helper()
	if c.Do("TYPE", k) == "+stream\r\n" {
		// A consumer's seen-time is each server's clock, and a group's
		// entries-read is lost by replication, on a Redis replica too.
		v := c.Do("XRANGE", k, "-", "+")
		groups := c.Do("XINFO", "GROUPS", k)
		for _, g := range strings.Split(groups, "$4\r\nname\r\n")[1:] {
			name := bulkList(t, "*1\r\n"+g)[0]
			v += name + ":" + c.Do("XPENDING", k, name)
		}
		return v
	}
	if c.Do("OBJECT", "ENCODING", k) != bulk("hashtable") {
		return c.Do("DUMP", k)
	}
	if c.Do("TYPE", k) == "+set\r\n" {
		m := bulkList(t, c.Do("SMEMBERS", k))
		slices.Sort(m)
		return strings.Join(m, ",")
	}
	kv := bulkList(t, c.Do("HGETALL", k))
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+"="+kv[i+1])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// functionList is FUNCTION LIST's libraries, sorted (Redis lists them in
// its dictionary's order).
func functionList(c *redistest.Conn) string {
	libs := strings.Split(c.Do("FUNCTION", "LIST"), "*6\r\n$12\r\nlibrary_name\r\n")
	slices.Sort(libs[1:])
	return strings.Join(libs, "|")
}

// waitSame waits until sameData holds.
func waitSame(t *testing.T, master, gomu *redistest.Conn) {
	t.Helper()
	var last error
	if !replicatest.WaitFor(func() bool { last = sameData(t, master, gomu); return last == nil }) {
		t.Fatalf("data differs: %v", last)
	}
}

// waitLink waits for INFO's master_link_status to be want.
func waitLink(t *testing.T, c *redistest.Conn, want string) {
	t.Helper()
	if !replicatest.WaitFor(func() bool { return infoField(c.Do("INFO", "replication"), "master_link_status") == want }) {
		t.Fatalf("master_link_status never %s: %s", want, c.Do("INFO", "replication"))
	}
}

// startMaster starts a real Redis master that syncs at once, disk-based or
// diskless.
func startMaster(t *testing.T, diskless bool) (string, *redistest.Conn) {
	t.Helper()
	addr := redistest.Start(t)
	c := redistest.Dial(t, addr)
	c.Do("CONFIG", "SET", "repl-diskless-sync-delay", "0")
	c.Do("CONFIG", "SET", "repl-diskless-sync", map[bool]string{true: "yes", false: "no"}[diskless])
	return addr, c
}

// TestReplicaOfRealMaster makes a standalone server a replica of a real
// Redis (disk and diskless RDB transfer): every key of every type arrives
// as the master has it, then the master's later writes; client writes get
// READONLY; ROLE and INFO say so; REPLICAOF NO ONE keeps the data and
// takes writes again.
func TestReplicaOfRealMaster(t *testing.T) {
	for _, tc := range []struct {
		name     string
		diskless bool
	}{{"disk", false}, {"diskless", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, master := startMaster(t, tc.diskless)
			fillMaster(t, master, "a:")
			g := redistest.Dial(t, startStandalone(t).Addr())
			g.Do("SET", "stale", "gone after the sync")
			host, port := hostPort(t, addr)
			if r := g.Do("REPLICAOF", host, port); r != "+OK\r\n" {
				t.Fatalf("REPLICAOF: %q", r)
			}
			if r := g.Do("REPLICAOF", host, port); r != "+OK Already connected to specified master\r\n" {
				t.Fatalf("REPLICAOF again: %q", r)
			}
			waitLink(t, g, "up")
			waitSame(t, master, g)

			fillMaster(t, master, "b:") // the command stream
			master.Do("DEL", "a:str")
			master.Do("SELECT", "5")
			master.Do("INCRBY", "a:counter", "7")
			master.Do("SELECT", "0")
			master.Do("MULTI")
			master.Do("INCR", "tx")
			master.Do("LPUSH", "a:list", "z")
			master.Do("EXEC")
			waitSame(t, master, g)

			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"SET", "x", "1"}, "-READONLY You can't write against a read only replica.\r\n"},
				{[]string{"GET", "a:int"}, "$5\r\n12345\r\n"},
				{[]string{"EVAL", "return redis.call('get', KEYS[1])", "1", "a:int"}, "$5\r\n12345\r\n"},
				{[]string{"EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "a:int"}, "-READONLY You can't write against a read only replica.\r\n"},
				{[]string{"FCALL", "fa", "0"}, ":1\r\n"},
				{[]string{"FUNCTION", "DELETE", "liba"}, "-READONLY You can't write against a read only replica.\r\n"},
				{[]string{"PUBLISH", "ch", "m"}, ":0\r\n"},
				{[]string{"ROLE"}, "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:" + port + "\r\n$9\r\nconnected\r\n"},
				{[]string{"CONFIG", "GET", "replica-read-only"}, "*2\r\n$17\r\nreplica-read-only\r\n$3\r\nyes\r\n"},
			} {
				if got := g.Do(tc.args...); !strings.HasPrefix(got, tc.want) {
					t.Errorf("%q: %q, want %q…", tc.args, got, tc.want)
				}
			}
			info := g.Do("INFO", "replication")
			for field, want := range map[string]string{"role": "slave", "master_host": host, "master_port": port,
				"master_sync_in_progress": "0", "slave_read_only": "1", "master_failover_state": "no-failover"} {
				if got := infoField(info, field); got != want {
					t.Errorf("INFO %s: %q, want %q", field, got, want)
				}
			}
			// WAIT on the master: its REPLCONF GETACK is answered.
			master.Do("SET", "waited", "1")
			if r := master.Do("WAIT", "1", "5000"); r != ":1\r\n" {
				t.Errorf("WAIT on the master: %q", r)
			}
			// The offset the replica acknowledges reaches the master's.
			if !replicatest.WaitFor(func() bool {
				return infoField(g.Do("INFO", "replication"), "slave_repl_offset") ==
					infoField(master.Do("INFO", "replication"), "master_repl_offset")
			}) {
				t.Errorf("offsets: replica %s, master %s", g.Do("INFO", "replication"), master.Do("INFO", "replication"))
			}

			if r := g.Do("REPLICAOF", "NO", "ONE"); r != "+OK\r\n" {
				t.Fatalf("REPLICAOF NO ONE: %q", r)
			}
			master.Do("SET", "after", "no one")
			if err := sameData(t, master, g); err == nil || !strings.Contains(err.Error(), "DBSIZE") {
				t.Errorf("after REPLICAOF NO ONE the master's write arrived: %v", err)
			}
			if r := g.Do("SET", "x", "1"); r != "+OK\r\n" {
				t.Errorf("write after REPLICAOF NO ONE: %q", r)
			}
			if r := g.Do("GET", "b:str"); r != bulk("hello") {
				t.Errorf("data after REPLICAOF NO ONE: %q", r)
			}
			if r := g.Do("ROLE"); !strings.HasPrefix(r, "*3\r\n$6\r\nmaster\r\n") {
				t.Errorf("ROLE of a master: %q", r)
			}
			noLinkGoroutines(t)
		})
	}
}

// TestReplicaOfCluster makes a 3-replica cluster a replica of a real
// Redis: the leader runs the link, every replica has the data (equal
// digests), and a follower's INFO shows the link up.
func TestReplicaOfCluster(t *testing.T) {
	addr, master := startMaster(t, true)
	fillMaster(t, master, "c:")
	cl := startCluster(t, 3)
	lead := cl.WaitLeader()
	g := redistest.Dial(t, lead.Srv.Addr())
	host, port := hostPort(t, addr)
	if r := g.Do("SLAVEOF", host, port); r != "+OK\r\n" {
		t.Fatalf("SLAVEOF: %q", r)
	}
	waitLink(t, g, "up")
	waitSame(t, master, g)
	fillMaster(t, master, "d:")
	waitSame(t, master, g)
	want := digest(t, lead.Srv.Addr())
	for _, f := range cl.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		if !replicatest.WaitFor(func() bool { return digest(t, f.Srv.Addr()) == want }) {
			t.Errorf("follower %d: digest differs from the leader's", f.ID)
		}
		waitLink(t, fc, "up")
		if err := sameData(t, master, fc); err != nil {
			t.Errorf("follower %d: %v", f.ID, err)
		}
		if r := fc.Do("SET", "x", "1"); !strings.HasPrefix(r, "-READONLY You can't write against a read only replica.") {
			t.Errorf("follower write: %q", r)
		}
	}
	// A value larger than a proposal, through the RDB of the next sync
	// and through the stream; then the leader dies: the next one takes
	// the link over with a full resync.
	master.Do("SET", "c:huge", strings.Repeat("h", 3<<20))
	waitSame(t, master, g)
	cl.Crash(lead.ID)
	lead = cl.WaitLeader()
	g = redistest.Dial(t, lead.Srv.Addr())
	master.Do("SET", "d:huge", strings.Repeat("i", 3<<20))
	fillMaster(t, master, "e:")
	waitLink(t, g, "up")
	waitSame(t, master, g)
	if r := g.Do("REPLICAOF", "NO", "ONE"); r != "+OK\r\n" {
		t.Fatalf("REPLICAOF NO ONE: %q", r)
	}
	if r := g.Do("SET", "x", "1"); r != "+OK\r\n" {
		t.Errorf("write after REPLICAOF NO ONE: %q", r)
	}
	want = digest(t, lead.Srv.Addr())
	for _, f := range cl.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Srv.Addr()) == want }) {
			t.Errorf("follower %d after the new leader's sync: digest differs", f.ID)
		}
	}
}

// TestReplicaOfUnreachable: a master that cannot be reached leaves the
// link down, and with replica-serve-stale-data no the stale-denied
// commands, queued ones included, answer MASTERDOWN, as Redis's multi
// tests check.
func TestReplicaOfUnreachable(t *testing.T) {
	srv := startStandalone(t)
	g, other := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	g.Do("SET", "xx", "1")
	steps := []struct {
		c    *redistest.Conn
		args []string
		want string
	}{
		{g, []string{"CONFIG", "SET", "replica-serve-stale-data", "no"}, "+OK\r\n"},
		{g, []string{"CONFIG", "GET", "slave-serve-stale-data"}, "*2\r\n$22\r\nslave-serve-stale-data\r\n$2\r\nno\r\n"},
		{g, []string{"CONFIG", "SET", "replica-serve-stale-data", "maybe"}, "-ERR CONFIG SET failed (possibly related to argument 'replica-serve-stale-data') - argument(s) must be one of the following: yes, no\r\n"},
		{g, []string{"MULTI"}, "+OK\r\n"},
		{g, []string{"GET", "xx"}, "+QUEUED\r\n"},
		{other, []string{"REPLICAOF", "localhsot", "0"}, "+OK\r\n"},
		{g, []string{"EXEC"}, "-EXECABORT Transaction discarded because of: MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"},
		{g, []string{"GET", "xx"}, "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"},
		{g, []string{"PING"}, "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"},
		{g, []string{"SET", "xx", "2"}, "-READONLY You can't write against a read only replica.\r\n"},
		{g, []string{"ROLE"}, "*5\r\n$5\r\nslave\r\n$9\r\nlocalhsot\r\n:0\r\n"},
		{g, []string{"MULTI"}, "+OK\r\n"},
		{g, []string{"GET", "xx"}, "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"},
		{g, []string{"EXEC"}, "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{g, []string{"CONFIG", "SET", "slave-serve-stale-data", "yes"}, "+OK\r\n"},
		{g, []string{"GET", "xx"}, "$1\r\n1\r\n"},
		{g, []string{"CONFIG", "SET", "replica-serve-stale-data", "no"}, "+OK\r\n"},
		{g, []string{"MULTI"}, "+OK\r\n"},
		{g, []string{"REPLICAOF", "no", "one"}, "+QUEUED\r\n"},
		{g, []string{"EXEC"}, "*1\r\n+OK\r\n"},
		{g, []string{"GET", "xx"}, "$1\r\n1\r\n"},
		{g, []string{"SET", "xx", "3"}, "+OK\r\n"},
		{g, []string{"REPLICAOF", "localhost", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{g, []string{"CONFIG", "SET", "replica-serve-stale-data", "yes"}, "+OK\r\n"},
	}
	for i, s := range steps {
		if got := s.c.Do(s.args...); !strings.HasPrefix(got, s.want) {
			t.Fatalf("step %d %q: %q, want %q", i, s.args, got, s.want)
		}
		if i == 6 {
			info := g.Do("INFO", "replication")
			if infoField(info, "master_link_status") != "down" || infoField(info, "master_host") != "localhsot" {
				t.Fatalf("INFO of an unreachable master: %s", info)
			}
		}
	}
}

// TestReplicaOfLinkLost: the master drops the link (and refuses the next
// sync until masterauth is set): the link is down, and once it can sync
// again a full resync brings the data the master has then.
func TestReplicaOfLinkLost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lock    [][]string // on the master: what the next sync lacks
		unlock  [][]string // on the replica: what gives it
		relogin []string   // on the master, for the test's own connection
	}{
		{"requirepass", [][]string{{"CONFIG", "SET", "requirepass", "s3cret"}},
			[][]string{{"CONFIG", "SET", "masterauth", "s3cret"}}, []string{"AUTH", "s3cret"}},
		{"acl user", [][]string{{"ACL", "SETUSER", "repl", "on", ">s3cret", "+@all", "~*", "&*"}, {"ACL", "SETUSER", "default", "resetpass", ">other"}},
			[][]string{{"CONFIG", "SET", "masteruser", "repl"}, {"CONFIG", "SET", "masterauth", "s3cret"}}, []string{"AUTH", "other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, master := startMaster(t, false)
			fillMaster(t, master, "e:")
			g := redistest.Dial(t, startStandalone(t).Addr())
			host, port := hostPort(t, addr)
			g.Do("REPLICAOF", host, port)
			waitLink(t, g, "up")
			waitSame(t, master, g)
			for _, args := range tc.lock {
				master.Do(args...)
			}
			master.Do(tc.relogin...)
			master.Do("CLIENT", "KILL", "TYPE", "replica")
			waitLink(t, g, "down")
			master.Do("FLUSHALL")
			fillMaster(t, master, "f:")
			if r := g.Do("GET", "e:str"); r != bulk("hello") {
				t.Errorf("data while the link is down: %q", r)
			}
			for _, args := range tc.unlock {
				if r := g.Do(args...); r != "+OK\r\n" {
					t.Fatalf("%q: %q", args, r)
				}
			}
			waitLink(t, g, "up")
			waitSame(t, master, g)
			if r := g.Do("CONFIG", "GET", "masterauth"); r != "*2\r\n$10\r\nmasterauth\r\n$6\r\ns3cret\r\n" {
				t.Errorf("CONFIG GET masterauth: %q", r)
			}
		})
	}
}

// TestReplicaOfBadMaster: a master that sends a corrupt RDB, or stalls
// in the handshake or in the middle of the RDB for longer than
// repl-timeout, gets the link dropped and retried, never a panic or a
// hang, and the data stays as it was.
func TestReplicaOfBadMaster(t *testing.T) {
	addr, master := startMaster(t, false)
	master.Do("SET", "k", "v")
	rdb := fetchRDB(t, addr)
	corrupt := bytes.Clone(rdb)
	corrupt[len(corrupt)/2] ^= 0x55
	for _, tc := range []struct {
		name string
		mode fakeMode
		rdb  []byte
	}{
		{"corrupt RDB", fakeFull, corrupt},
		{"stall in the RDB", fakeStallRDB, rdb},
		{"stall in the handshake", fakeStallHandshake, rdb},
		{"a database above 15", fakeSelect20, rdb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns atomic.Int64
			go fakeMaster(ln, tc.rdb, tc.mode, &conns)
			g := redistest.Dial(t, startStandalone(t).Addr())
			g.Do("CONFIG", "SET", "repl-timeout", "1")
			g.Do("SET", "mine", "1")
			host, port := hostPort(t, ln.Addr().String())
			g.Do("REPLICAOF", host, port)
			if !replicatest.WaitFor(func() bool { return conns.Load() >= 2 }) {
				t.Fatal("the link did not retry")
			}
			want := bulk("1")
			if tc.mode == fakeSelect20 {
				want = "$-1\r\n" // the RDB's sync flushed it, the stream's SET went nowhere
			}
			if r := g.Do("GET", "mine"); r != want {
				t.Errorf("data after a bad master: %q, want %q", r, want)
			}
			waitLink(t, g, "down")
			g.Do("REPLICAOF", "NO", "ONE")
			noLinkGoroutines(t)
		})
	}
}

// fetchRDB gets the master's RDB file with redis-cli --rdb.
func fetchRDB(t *testing.T, addr string) []byte {
	t.Helper()
	host, port := hostPort(t, addr)
	path := t.TempDir() + "/dump.rdb"
	if out, err := exec.Command(redisCLI(t), "-h", host, "-p", port, "--rdb", path).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --rdb: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeMode is how fakeMaster misbehaves.
type fakeMode int

const (
	fakeFull           fakeMode = iota // the handshake and the whole RDB
	fakeStallRDB                       // half the RDB, then silence
	fakeStallHandshake                 // no reply to anything
	fakeSelect20                       // the whole RDB, then SELECT 20
)

// fakeMaster serves the replica handshake on ln as mode says, counting
// connections in conns, each until the replica hangs up.
func fakeMaster(ln net.Listener, rdb []byte, mode fakeMode, conns *atomic.Int64) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer nc.Close()
			br := bufio.NewReader(nc)
			for {
				args, _, err := readStreamCommand(br)
				if err != nil {
					return
				}
				switch {
				case mode == fakeStallHandshake:
				case strings.EqualFold(string(args[0]), "PING"):
					nc.Write([]byte("+PONG\r\n"))
				case strings.EqualFold(string(args[0]), "PSYNC"):
					fmt.Fprintf(nc, "+FULLRESYNC %s 0\r\n$%d\r\n", strings.Repeat("a", 40), len(rdb))
					switch mode {
					case fakeStallRDB:
						nc.Write(rdb[:len(rdb)/2])
					case fakeSelect20:
						nc.Write(rdb)
						nc.Write([]byte("*2\r\n$6\r\nSELECT\r\n$2\r\n20\r\n*3\r\n$3\r\nSET\r\n$4\r\nmine\r\n$1\r\n2\r\n"))
					default:
						nc.Write(rdb)
					}
				default:
					nc.Write([]byte("+OK\r\n"))
				}
			}
		}()
	}
}

// TestWalkRDB reads a real Redis's RDB (every type, several databases, a
// function library) and the same file damaged: a flipped byte fails the
// CRC, a damaged value without a CRC fails the decoding, a cut file fails,
// and none panics.
func TestWalkRDB(t *testing.T) {
	addr, master := startMaster(t, false)
	fillMaster(t, master, "w:")
	rdb := fetchRDB(t, addr)
	keys, funcs := 0, 0
	dbs := map[int]bool{}
	err := store.WalkRDB(rdb, func(e *store.RDBEntry) error {
		if e.Function != nil {
			funcs++
			return nil
		}
		keys++
		dbs[e.DB] = true
		if r := master.Do("SELECT", strconv.Itoa(e.DB)); r != "+OK\r\n" {
			t.Fatal(r)
		}
		if d := master.Do("DUMP", string(e.Key)); d != bulk(string(e.Payload)) {
			t.Errorf("key %q: payload differs from DUMP's", e.Key)
		}
		return nil
	})
	master.Do("SELECT", "0")
	if err != nil || keys != 17 || funcs != 1 || len(dbs) != 3 {
		t.Fatalf("WalkRDB: %v, %d keys, %d functions, databases %v", err, keys, funcs, dbs)
	}
	noCRC := bytes.Clone(rdb)
	clear(noCRC[len(noCRC)-8:])
	if err := store.WalkRDB(noCRC, func(*store.RDBEntry) error { return nil }); err != nil {
		t.Fatalf("WalkRDB without a CRC: %v", err)
	}
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		rdb  []byte
		want error
	}{
		{"flipped", func() []byte { b := bytes.Clone(rdb); b[len(b)/2] ^= 1; return b }(), store.ErrBadRDB},
		{"cut", rdb[:len(rdb)/2], store.ErrBadRDB},
		{"header", []byte("REDIX0010"), store.ErrBadRDB},
		{"damaged without CRC", func() []byte {
			// The EOF opcode, before the 8 bytes of the CRC, made a type
			// no RDB has: damage that no string's bytes can absorb.
			b := bytes.Clone(noCRC)
			b[len(b)-9] = 0x7f
			return b
		}(), store.ErrBadRDB},
		{"callback error", rdb, stop},
	} {
		err := store.WalkRDB(tc.rdb, func(*store.RDBEntry) error {
			if tc.want == stop {
				return stop
			}
			return nil
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestReplicaOfMasterRestart kills the master while it streams writes:
// the link goes down (and keeps retrying), and once a master runs again
// on that address, empty and then written to, a full resync leaves the
// replica with exactly its data.
func TestReplicaOfMasterRestart(t *testing.T) {
	addr, master := startMaster(t, false)
	fillMaster(t, master, "k:")
	g := redistest.Dial(t, startStandalone(t).Addr())
	host, port := hostPort(t, addr)
	g.Do("REPLICAOF", host, port)
	waitLink(t, g, "up")
	writer := redistest.Dial(t, addr)
	for i := range 200 {
		writer.Do("INCR", "counter")
		if i == 100 {
			master.Send([]byte("*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n"))
			break
		}
	}
	waitLink(t, g, "down")
	if r := g.Do("GET", "k:str"); r != bulk("hello") {
		t.Errorf("data while the master is down: %q", r)
	}
	p, _ := strconv.Atoi(port)
	addr2 := redistest.StartOn(t, p)
	master2 := redistest.Dial(t, addr2)
	master2.Do("CONFIG", "SET", "repl-diskless-sync-delay", "0")
	fillMaster(t, master2, "n:")
	waitLink(t, g, "up")
	waitSame(t, master2, g)
	if r := g.Do("EXISTS", "k:str", "counter"); r != ":0\r\n" {
		t.Errorf("the old master's keys after the resync: %q", r)
	}
	g.Do("REPLICAOF", "NO", "ONE")
	noLinkGoroutines(t)
}

// noLinkGoroutines waits until no goroutine of the link (replink.go) is
// left.
func noLinkGoroutines(t *testing.T) {
	t.Helper()
	var dump string
	if !replicatest.WaitFor(func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		dump = b.String()
		return !strings.Contains(dump, "replicaLink") && !strings.Contains(dump, "runLink")
	}) {
		t.Fatalf("link goroutines left:\n%s", dump)
	}
}

// TestExecAbortReasons: EXEC of a transaction the server's state refuses
// since it was queued answers EXECABORT with the reason, as Redis 7.0's
// multi tests check: a busy script (MULTI itself is allowed while busy),
// too few replicas for its writes.
func TestExecAbortReasons(t *testing.T) {
	srv := startStandalone(t)
	r, r2, busy := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	r.Do("SET", "xx", "1")
	r.Do("CONFIG", "SET", "lua-time-limit", "10")
	for i, s := range []struct {
		args []string
		want string
	}{
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"INCR", "xx"}, "+QUEUED\r\n"},
		{[]string{"CONFIG", "SET", "min-replicas-to-write", "2"}, "+OK\r\n"},
		{[]string{"EXEC"}, "-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n"},
		{[]string{"CONFIG", "SET", "min-replicas-to-write", "0"}, "+OK\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"INCR", "xx"}, "+QUEUED\r\n"},
	} {
		c := r
		if lowerEq([]byte(s.args[0]), "config") {
			c = r2
		}
		if got := c.Do(s.args...); got != s.want {
			t.Fatalf("step %d %q: %q, want %q", i, s.args, got, s.want)
		}
	}
	if err := busy.Send([]byte("*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")); err != nil {
		t.Fatal(err)
	}
	if !replicatest.WaitFor(func() bool { return strings.HasPrefix(r2.Do("GET", "xx"), "-BUSY") }) {
		t.Fatal("the script never made the server busy")
	}
	if got := r.Do("EXEC"); !strings.HasPrefix(got, "-EXECABORT Transaction discarded because of: BUSY ") {
		t.Fatalf("EXEC while busy: %q", got)
	}
	if got := r2.Do("MULTI"); got != "+OK\r\n" {
		t.Fatalf("MULTI while busy: %q", got)
	}
	r2.Do("DISCARD")
	if got := r2.Do("SCRIPT", "KILL"); got != "+OK\r\n" {
		t.Fatalf("SCRIPT KILL: %q", got)
	}
	if got, _ := busy.Read(); !strings.HasPrefix(got, "-ERR Error running script") && !strings.HasPrefix(got, "-") {
		t.Fatalf("the killed script: %q", got)
	}
	if got := r.Do("GET", "xx"); got != bulk("1") {
		t.Fatalf("xx after the aborted transactions: %q", got)
	}
	if got := r.Do("PING", "asdf"); got != bulk("asdf") {
		t.Fatalf("the connection is still in MULTI: %q", got)
	}
}

// TestReplicaOfAccessData: under an LRU or LFU policy the master's RDB
// carries each key's IDLE or FREQ; the walker reports them and the sync
// loads them (RESTORE's IDLETIME and FREQ).
func TestReplicaOfAccessData(t *testing.T) {
	for _, tc := range []struct {
		policy     string
		idle, freq bool
	}{{"allkeys-lru", true, false}, {"allkeys-lfu", false, true}} {
		t.Run(tc.policy, func(t *testing.T) {
			addr, master := startMaster(t, false)
			master.Do("CONFIG", "SET", "maxmemory-policy", tc.policy)
			fillMaster(t, master, "p:")
			n := 0
			err := store.WalkRDB(fetchRDB(t, addr), func(e *store.RDBEntry) error {
				if e.Function == nil {
					n++
					if (e.Idle >= 0) != tc.idle || (e.Freq >= 0) != tc.freq {
						t.Errorf("key %q: idle %d, freq %d", e.Key, e.Idle, e.Freq)
					}
				}
				return nil
			})
			if err != nil || n != 17 {
				t.Fatalf("WalkRDB: %v, %d keys", err, n)
			}
			g := redistest.Dial(t, startStandalone(t).Addr())
			g.Do("CONFIG", "SET", "maxmemory-policy", tc.policy)
			host, port := hostPort(t, addr)
			g.Do("REPLICAOF", host, port)
			waitLink(t, g, "up")
			waitSame(t, master, g)
			if tc.freq {
				if m, got := master.Do("OBJECT", "FREQ", "p:str"), g.Do("OBJECT", "FREQ", "p:str"); m != got {
					t.Errorf("OBJECT FREQ: %q on the master, %q here", m, got)
				}
			}
		})
	}
}
