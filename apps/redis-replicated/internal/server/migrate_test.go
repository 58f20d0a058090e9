package server

import (
	"bufio"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// migrateValues are a key of every type, with the command that reads it
// back whole.
var migrateValues = []struct {
	kind  string
	write [][]string
	read  []string
}{
	{"string", [][]string{{"SET", "k", "Some Value"}}, []string{"GET", "k"}},
	{"int string", [][]string{{"SET", "k", "12345"}}, []string{"GET", "k"}},
	{"list", [][]string{{"RPUSH", "k", "a", "b", "c", "d"}}, []string{"LRANGE", "k", "0", "-1"}},
	{"intset", [][]string{{"SADD", "k", "1", "2", "3"}}, []string{"SMEMBERS", "k"}},
	{"set", [][]string{{"SADD", "k", "a", "b", "c"}}, []string{"SMEMBERS", "k"}},
	{"hash", [][]string{{"HSET", "k", "f1", "v1", "f2", "v2"}}, []string{"HGETALL", "k"}},
	{"zset", [][]string{{"ZADD", "k", "1", "a", "2.5", "b"}}, []string{"ZRANGE", "k", "0", "-1", "WITHSCORES"}},
	{"stream", [][]string{{"XADD", "k", "1-1", "f", "v"}, {"XADD", "k", "2-1", "g", "w"}}, []string{"XRANGE", "k", "-", "+"}},
	{"hll", [][]string{{"PFADD", "k", "a", "b", "c"}}, []string{"PFCOUNT", "k"}},
}

// sortedReply is a reply's lines, sorted: the same elements in any order
// (a set's, a hash's) compare equal.
func sortedReply(r string) []string {
	lines := strings.Split(r, "\r\n")
	slices.Sort(lines)
	return lines
}

// migrateTargets are the servers MIGRATE moves keys to in the tests: a
// real Redis and another gomu server.
func migrateTargets(t *testing.T) map[string]string {
	return map[string]string{"redis": redistest.Start(t), "gomu": startStandalone(t).Addr()}
}

func hostPort(t *testing.T, addr string) (string, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// TestMigrateValues: MIGRATE moves a key of every type with its TTL, to a
// real Redis and to another gomu server; the source no longer has it
// (without COPY), the target holds the same value; with COPY both do.
func TestMigrateValues(t *testing.T) {
	src := redistest.Dial(t, startStandalone(t).Addr())
	for name, addr := range migrateTargets(t) {
		host, port := hostPort(t, addr)
		dst := redistest.Dial(t, addr)
		for _, tc := range migrateValues {
			for _, copy := range []bool{false, true} {
				t.Run(name+"/"+tc.kind+"/copy="+strconv.FormatBool(copy), func(t *testing.T) {
					src.Do("DEL", "k")
					dst.Do("SELECT", "9")
					dst.Do("DEL", "k")
					for _, w := range tc.write {
						src.Do(w...)
					}
					src.Do("PEXPIRE", "k", "100000")
					want := src.Do(tc.read...)
					args := []string{"MIGRATE", host, port, "k", "9", "5000"}
					if copy {
						args = append(args, "COPY")
					}
					if r := src.Do(args...); r != "+OK\r\n" {
						t.Fatalf("MIGRATE: %q", r)
					}
					if got := dst.Do(tc.read...); !slices.Equal(sortedReply(got), sortedReply(want)) {
						t.Errorf("target has %q, want %q", got, want)
					}
					if ttl, _ := strconv.Atoi(strings.Trim(dst.Do("PTTL", "k"), ":\r\n")); ttl < 90000 || ttl > 100000 {
						t.Errorf("target's PTTL %d, want about 100000", ttl)
					}
					wantExists := ":0\r\n"
					if copy {
						wantExists = ":1\r\n"
					}
					if r := src.Do("EXISTS", "k"); r != wantExists {
						t.Errorf("source EXISTS k: %q, want %q", r, wantExists)
					}
				})
			}
		}
	}
}

// TestMigrateReplies: MIGRATE's replies, each case run against a gomu
// source and a real Redis source alike (the same target, a real Redis):
// REPLACE, BUSYKEY, the KEYS form, NOKEY, syntax errors, a target error
// passed through, AUTH and AUTH2.
func TestMigrateReplies(t *testing.T) {
	target := redistest.Start(t)
	host, port := hostPort(t, target)
	dst := redistest.Dial(t, target)
	sources := map[string]*redistest.Conn{"gomu": redistest.Dial(t, startStandalone(t).Addr()), "redis": redistest.Dial(t, redistest.Start(t))}
	// Down: a port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, downPort := hostPort(t, ln.Addr().String())
	ln.Close()
	for _, tc := range []struct {
		name   string
		src    [][]string // on the source first
		dst    [][]string // on the target first (database 9)
		args   []string   // MIGRATE's, after host and port
		host   string     // "": the target's
		port   string     // "": the target's
		reply  string
		srcHas []string // keys the source still has after
	}{
		{name: "moved", src: [][]string{{"SET", "a", "1"}}, args: []string{"a", "9", "5000"}, reply: "+OK\r\n"},
		{name: "busy key", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"SET", "a", "x"}}, args: []string{"a", "9", "5000"},
			reply: "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n", srcHas: []string{"a"}},
		{name: "replace", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"SET", "a", "x"}}, args: []string{"a", "9", "5000", "REPLACE"}, reply: "+OK\r\n"},
		{name: "copy replace", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"SET", "a", "x"}}, args: []string{"a", "9", "5000", "copy", "replace"},
			reply: "+OK\r\n", srcHas: []string{"a"}},
		{name: "keys", src: [][]string{{"MSET", "a", "1", "b", "2", "c", "3"}}, args: []string{"", "9", "5000", "KEYS", "a", "nokey", "b"},
			reply: "+OK\r\n", srcHas: []string{"c"}},
		{name: "keys, only acked deleted", src: [][]string{{"MSET", "a", "1", "b", "2", "c", "3"}}, dst: [][]string{{"SET", "b", "x"}},
			args:  []string{"", "9", "5000", "KEYS", "a", "b", "c"},
			reply: "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n", srcHas: []string{"b"}},
		{name: "nokey", args: []string{"a", "9", "5000"}, reply: "+NOKEY\r\n"},
		{name: "keys nokey", args: []string{"", "9", "5000", "KEYS", "x", "y"}, reply: "+NOKEY\r\n"},
		{name: "keys none", args: []string{"", "9", "5000", "KEYS"}, reply: "+NOKEY\r\n"},
		{name: "keys with a key", args: []string{"a", "9", "5000", "KEYS", "b"},
			reply: "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n"},
		{name: "unknown option", args: []string{"a", "9", "5000", "FOO"}, reply: "-ERR syntax error\r\n"},
		{name: "auth without password", args: []string{"a", "9", "5000", "AUTH"}, reply: "-ERR syntax error\r\n"},
		{name: "auth2 short", args: []string{"a", "9", "5000", "AUTH2", "u"}, reply: "-ERR syntax error\r\n"},
		{name: "bad timeout", args: []string{"a", "9", "soon"}, reply: "-ERR value is not an integer or out of range\r\n"},
		{name: "bad db", args: []string{"a", "x", "5000"}, reply: "-ERR value is not an integer or out of range\r\n"},
		{name: "target refuses the db", src: [][]string{{"SET", "a", "1"}}, args: []string{"a", "99", "5000"},
			reply: "-ERR Target instance replied with error: ERR DB index is out of range\r\n", srcHas: []string{"a"}},
		// Redis connects without blocking: a refusal shows when it writes.
		{name: "target down", src: [][]string{{"SET", "a", "1"}}, args: []string{"a", "9", "500"}, port: downPort,
			reply: "-IOERR error or timeout writing to target instance\r\n", srcHas: []string{"a"}},
		{name: "not a port", src: [][]string{{"SET", "a", "1"}}, args: []string{"a", "9", "500"}, port: "notaport",
			reply: "-IOERR error or timeout writing to target instance\r\n", srcHas: []string{"a"}},
		{name: "no such host", src: [][]string{{"SET", "a", "1"}}, args: []string{"a", "9", "300"}, host: "nosuchhost.invalid",
			reply: "-IOERR error or timeout connecting to the client\r\n", srcHas: []string{"a"}},
		{name: "auth", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"CONFIG", "SET", "requirepass", "foobar"}, {"AUTH", "foobar"}},
			args: []string{"a", "9", "5000", "AUTH", "foobar"}, reply: "+OK\r\n"},
		{name: "wrong password", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"CONFIG", "SET", "requirepass", "foobar"}, {"AUTH", "foobar"}},
			args:  []string{"a", "9", "5000", "AUTH", "nope"},
			reply: "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n", srcHas: []string{"a"}},
		{name: "auth2", src: [][]string{{"SET", "a", "1"}}, dst: [][]string{{"ACL", "SETUSER", "mover", "on", ">secret", "~*", "+@all"}},
			args: []string{"a", "9", "5000", "AUTH2", "mover", "secret"}, reply: "+OK\r\n"},
	} {
		for name, src := range sources {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				dst.Do("CONFIG", "SET", "requirepass", "")
				dst.Do("SELECT", "9")
				dst.Do("FLUSHALL")
				src.Do("FLUSHALL")
				for _, c := range tc.src {
					src.Do(c...)
				}
				for _, c := range tc.dst {
					dst.Do(c...)
				}
				h, p := host, port
				if tc.host != "" {
					h = tc.host
				}
				if tc.port != "" {
					p = tc.port
				}
				if r := src.Do(append([]string{"MIGRATE", h, p}, tc.args...)...); r != tc.reply {
					t.Errorf("MIGRATE: %q, want %q", r, tc.reply)
				}
				keys := sortedReply(src.Do("KEYS", "*"))
				want := sortedReply(strings.Join(tc.srcHas, "\r\n"))
				got := slices.DeleteFunc(keys, func(l string) bool { return l == "" || l[0] == '*' || l[0] == '$' })
				want = slices.DeleteFunc(want, func(l string) bool { return l == "" })
				if !slices.Equal(got, want) {
					t.Errorf("source keeps %q, want %q", got, want)
				}
			})
		}
	}
	dst.Do("CONFIG", "SET", "requirepass", "")
}

// TestMigrateTimeout: a target that takes the connection but never
// replies fails MIGRATE with IOERR within its timeout, and the key stays.
func TestMigrateTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // reads, never answers
				defer nc.Close()
				bufio.NewReader(nc).WriteTo(discard{})
			}()
		}
	}()
	host, port := hostPort(t, ln.Addr().String())
	srv := startStandalone(t)
	src, other := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	src.Do("SET", "k", "v")
	start := time.Now()
	if err := src.Send(command("MIGRATE", host, port, "k", "0", "1000")); err != nil {
		t.Fatal(err)
	}
	// Other clients are served meanwhile: MIGRATE waits on its own
	// connection, holding no lock.
	time.Sleep(100 * time.Millisecond)
	if r := other.Do("SET", "k2", "v"); r != "+OK\r\n" || time.Since(start) > 900*time.Millisecond {
		t.Errorf("another client's SET during MIGRATE: %q after %v", r, time.Since(start))
	}
	if r, err := src.Read(); err != nil || r != "-IOERR error or timeout reading to target instance\r\n" {
		t.Errorf("MIGRATE: %q, %v", r, err)
	}
	if d := time.Since(start); d < time.Second || d > hang {
		t.Errorf("MIGRATE took %v, its timeout 1s", d)
	}
	if r := src.Do("EXISTS", "k"); r != ":1\r\n" {
		t.Errorf("EXISTS k: %q", r)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestMigrateCluster: on a 3-replica cluster, MIGRATE on the leader
// deletes the moved keys on every replica (their digests agree), in the
// database the connection selected; a follower refuses it as a write.
func TestMigrateCluster(t *testing.T) {
	target := redistest.Start(t)
	host, port := hostPort(t, target)
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := redistest.Dial(t, lead.Addr())
	lc.Do("SELECT", "3")
	lc.Do("MSET", "a", "1", "b", "2", "c", "3")
	if r := lc.Do("MIGRATE", host, port, "", "0", "5000", "KEYS", "a", "b"); r != "+OK\r\n" {
		t.Fatalf("MIGRATE: %q", r)
	}
	if r := redistest.Dial(t, target).Do("MGET", "a", "b"); r != "*2\r\n$1\r\n1\r\n$1\r\n2\r\n" {
		t.Errorf("target's a and b: %q", r)
	}
	want := digest(t, lead.Addr())
	for _, n := range c.Followers(lead) {
		fc := redistest.Dial(t, n.Addr())
		fc.Do("SELECT", "3")
		if r := fc.Do("EXISTS", "a", "b", "c"); r != ":1\r\n" {
			t.Errorf("replica %d: EXISTS a b c: %q, want only c", n.ID, r)
		}
		if d := digest(t, n.Addr()); d != want {
			t.Errorf("replica %d's digest %q, the leader's %q", n.ID, d, want)
		}
		if r := fc.Do("MIGRATE", host, port, "c", "0", "5000"); !strings.HasPrefix(r, "-READONLY") {
			t.Errorf("MIGRATE on a follower: %q", r)
		}
	}
}

// TestMigrateSyncStream: SYNC's stream sends a MIGRATE's deletion as one
// DEL of the moved keys, as Redis propagates it; a COPY sends nothing.
func TestMigrateSyncStream(t *testing.T) {
	target := redistest.Start(t)
	host, port := hostPort(t, target)
	srv := startStandalone(t)
	next := syncTap(t, srv.Addr())
	c := redistest.Dial(t, srv.Addr())
	c.Do("MSET", "a", "1", "b", "2")
	c.Do("MIGRATE", host, port, "", "0", "5000", "COPY", "KEYS", "a", "b")
	c.Do("MIGRATE", host, port, "", "0", "5000", "REPLACE", "KEYS", "a", "nokey", "b")
	c.Do("SET", "end", "1")
	want := []string{"select 0", "mset a 1 b 2", "del a b", "set end 1"}
	if got := next(len(want)); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stream\n got %q\nwant %q", got, want)
	}
}

// TestMigrateCache: a target connection is cached for the next MIGRATE
// (INFO migrate_cached_sockets), closed once idle for migrateCacheTTL, and
// a cached one the target closed is replaced without an error.
func TestMigrateCache(t *testing.T) {
	target := redistest.Start(t)
	host, port := hostPort(t, target)
	srv := startStandalone(t)
	c, tc := redistest.Dial(t, srv.Addr()), redistest.Dial(t, target)
	cached := func() string { return infoField(c.Do("INFO", "stats"), "migrate_cached_sockets") }
	if n := cached(); n != "0" {
		t.Fatalf("migrate_cached_sockets %q before any MIGRATE", n)
	}
	c.Do("SET", "k", "v")
	if r := c.Do("MIGRATE", host, port, "k", "0", "5000", "COPY", "REPLACE"); r != "+OK\r\n" || cached() != "1" {
		t.Fatalf("MIGRATE: %q, migrate_cached_sockets %q", r, cached())
	}
	// The target drops its clients but this test's own: the cached one
	// goes, and the next MIGRATE connects again.
	tc.Do("CLIENT", "KILL", "SKIPME", "yes")
	if r := c.Do("MIGRATE", host, port, "k", "0", "5000", "COPY", "REPLACE"); r != "+OK\r\n" {
		t.Fatalf("MIGRATE after the target closed the cached connection: %q", r)
	}
	// Idle for the TTL: closed.
	srv.migrations.mu.Lock()
	for _, mconn := range srv.migrations.conns {
		mconn.idle = time.Now().Add(-migrateCacheTTL)
	}
	srv.migrations.mu.Unlock()
	srv.migrations.closeIdle()
	if n := cached(); n != "0" {
		t.Errorf("migrate_cached_sockets %q after the TTL", n)
	}
}

// TestMigrateACL: a user's key patterns cover MIGRATE's keys, the KEYS
// form's too, as Redis's (a gomu source and a Redis one answer alike).
func TestMigrateACL(t *testing.T) {
	target := redistest.Start(t)
	host, port := hostPort(t, target)
	for name, addr := range map[string]string{"gomu": startStandalone(t).Addr(), "redis": redistest.Start(t)} {
		t.Run(name, func(t *testing.T) {
			admin, c := redistest.Dial(t, addr), redistest.Dial(t, addr)
			admin.Do("MSET", "a1", "1", "b1", "2")
			admin.Do("ACL", "SETUSER", "mover", "on", ">pw", "~a*", "+@all")
			c.Do("AUTH", "mover", "pw")
			for _, tc := range []struct {
				args  []string
				reply string
			}{
				{[]string{"b1", "0", "5000", "COPY", "REPLACE"}, "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"},
				{[]string{"", "0", "5000", "COPY", "REPLACE", "KEYS", "a1", "b1"}, "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"},
				{[]string{"a1", "0", "5000", "COPY", "REPLACE"}, "+OK\r\n"},
				{[]string{"", "0", "5000", "COPY", "REPLACE", "KEYS", "a1"}, "+OK\r\n"},
			} {
				if r := c.Do(append([]string{"MIGRATE", host, port}, tc.args...)...); r != tc.reply {
					t.Errorf("MIGRATE %q: %q, want %q", tc.args, r, tc.reply)
				}
			}
		})
	}
}

// TestParseMigrate: the options as Redis reads them (AUTH's password may
// be "KEYS"), the timeout defaulted and bounded.
func TestParseMigrate(t *testing.T) {
	split := func(s string) [][]byte {
		var b [][]byte
		for _, f := range strings.Split(s, " ") {
			if f == `""` {
				f = ""
			}
			b = append(b, []byte(f))
		}
		return b
	}
	for _, tc := range []struct {
		args    string
		addr    string
		keys    string
		keyAt   []int
		timeout int64
	}{
		{"MIGRATE h 7 k 0 0", "h:7", "k", []int{3}, 1000},
		{"MIGRATE h 7x k 0 -5", "h:7", "k", []int{3}, 1000},
		{`MIGRATE ::1 7 "" 0 500 AUTH KEYS KEYS a b`, "[::1]:7", "a,b", []int{9, 10}, 500},
		{`MIGRATE h 7 "" 0 500 AUTH2 KEYS 123 KEYS rw`, "h:7", "rw", []int{10}, 500},
		{"MIGRATE h 7 k 0 99999999999999999", "h:7", "k", []int{3}, math.MaxInt64 / int64(time.Millisecond)},
	} {
		r, msg := parseMigrate(split(tc.args))
		var keys []string
		for _, k := range r.keys {
			keys = append(keys, string(k))
		}
		if msg != "" || r.addr != tc.addr || strings.Join(keys, ",") != tc.keys || !slices.Equal(r.keyAt, tc.keyAt) || r.timeoutMs != tc.timeout {
			t.Errorf("%s: %+v %q", tc.args, r, msg)
		}
	}
}

// TestMigrateGetKeys: COMMAND GETKEYS finds MIGRATE's keys as Redis's
// does.
func TestMigrateGetKeys(t *testing.T) {
	ours, redis := redistest.Dial(t, startStandalone(t).Addr()), redistest.Dial(t, redistest.Start(t))
	for _, args := range [][]string{
		{"h", "1", "k", "0"},
		{"h", "1", "k", "0", "100"},
		{"h", "1", "", "0", "100", "KEYS"},
		{"h", "1", "", "0", "100", "AUTH", "keys", "keys", "a", "b"},
		{"h", "1", "", "0", "100", "AUTH2", "u", "p", "COPY", "KEYS", "a"},
		{"h", "1", "k", "0", "100", "foo"},
		{"h", "1", "k", "0", "100", "KEYS", "a"},
		{"h", "1", "", "0", "100", "KEYS", "a", "KEYS"},
		{"h", "1", "keys", "0", "100"},
		{"h", "1", "", "0", "100", "AUTH", "keys", "x"},
		{"h", "1", "", "0", "100", "AUTH2", "keys", "keys", "KEYS", "b"},
	} {
		cmd := append([]string{"COMMAND", "GETKEYS", "MIGRATE"}, args...)
		if got, want := ours.Do(cmd...), redis.Do(cmd...); got != want {
			t.Errorf("%q: %q, Redis %q", args, got, want)
		}
	}
}

// TestMigrateToGomu: a gomu target answers MIGRATE's AUTH2, SELECT and
// RESTORE as Redis does: its errors are passed through.
func TestMigrateToGomu(t *testing.T) {
	target := startStandalone(t).Addr()
	host, port := hostPort(t, target)
	dst := redistest.Dial(t, target)
	dst.Do("ACL", "SETUSER", "mover", "on", ">secret", "~*", "+@all")
	dst.Do("ACL", "SETUSER", "default", "off")
	src := redistest.Dial(t, startStandalone(t).Addr())
	for _, tc := range []struct {
		args  []string
		reply string
	}{
		{[]string{"a", "9", "5000", "COPY"}, "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n"},
		{[]string{"a", "9", "5000", "COPY", "AUTH2", "mover", "wrong"}, "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"a", "99", "5000", "COPY", "AUTH2", "mover", "secret"}, "-ERR Target instance replied with error: ERR DB index is out of range\r\n"},
		{[]string{"a", "9", "5000", "COPY", "AUTH2", "mover", "secret"}, "+OK\r\n"},
		{[]string{"a", "9", "5000", "COPY", "AUTH2", "mover", "secret"}, "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"},
		{[]string{"a", "9", "5000", "AUTH2", "mover", "secret", "REPLACE"}, "+OK\r\n"},
	} {
		src.Do("SET", "a", "v")
		if r := src.Do(append([]string{"MIGRATE", host, port}, tc.args...)...); r != tc.reply {
			t.Errorf("MIGRATE %q: %q, want %q", tc.args, r, tc.reply)
		}
	}
	if r := src.Do("EXISTS", "a"); r != ":0\r\n" {
		t.Errorf("source EXISTS a: %q", r)
	}
}
