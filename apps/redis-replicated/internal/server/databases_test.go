package server

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// dbStep is one command of a database script, on one of two connections.
type dbStep struct {
	conn int
	args []string
	cmp  order
}

func on(conn int, args ...string) dbStep { return dbStep{conn: conn, args: args} }

// TestDatabasesDifferential runs scripts over the 16 databases on two
// connections, on a standalone server and on Debian's redis-server,
// comparing every reply: SELECT and its errors, MOVE, SWAPDB seen from a
// connection that selected one of the two, FLUSHDB and FLUSHALL, COPY ...
// DB, the per-database DBSIZE, KEYS, SCAN and RANDOMKEY, SELECT queued in
// MULTI, WATCH in database 2, INFO keyspace and CONFIG GET databases.
func TestDatabasesDifferential(t *testing.T) {
	scripts := []struct {
		name  string
		steps []dbStep
	}{
		{"select", []dbStep{
			on(0, "SET", "k", "0"), on(0, "SELECT", "3"), on(0, "GET", "k"), on(0, "SET", "k", "3"),
			on(0, "GET", "k"), on(0, "DBSIZE"), on(1, "GET", "k"), on(1, "SELECT", "3"), on(1, "GET", "k"),
			on(0, "SELECT", "16"), on(0, "SELECT", "-1"), on(0, "SELECT", "x"), on(0, "SELECT", "1.0"),
			on(0, "SELECT", "99999999999"), on(0, "SELECT", "+1"), on(0, "SELECT", ""), on(0, "GET", "k"),
			on(0, "SELECT", "15"), on(0, "SET", "z", "15"), on(0, "SELECT", "0"), on(0, "GET", "z"),
			on(0, "HELLO", "2"), on(0, "SELECT", "15"), on(0, "HELLO", "2"), on(0, "GET", "z"),
			on(0, "gomu.select", "0"), on(0, "GET", "z"), // the internal command is no client's
		}},
		{"move", []dbStep{
			on(0, "SET", "a", "1"), on(0, "PEXPIREAT", "a", "4102444800000"), on(0, "MOVE", "a", "2"),
			on(0, "EXISTS", "a"), on(0, "MOVE", "a", "2"), on(0, "SET", "a", "again"),
			on(0, "MOVE", "a", "2"), on(0, "MOVE", "a", "0"), on(0, "MOVE", "a", "16"),
			on(0, "MOVE", "a", "x"), on(0, "MOVE", "a", "99999999999"), on(0, "MOVE", "nokey", "2"),
			on(1, "SELECT", "2"), on(1, "GET", "a"), on(1, "PEXPIRETIME", "a"), on(1, "MOVE", "a", "0"),
			on(1, "RPUSH", "l", "x", "y"), on(1, "MOVE", "l", "5"), on(1, "SELECT", "5"), on(1, "LRANGE", "l", "0", "-1"),
		}},
		{"swapdb", []dbStep{
			on(0, "SET", "k", "in0"), on(1, "SELECT", "1"), on(1, "SET", "k", "in1"), on(1, "SET", "only1", "x"),
			on(0, "SWAPDB", "0", "1"), on(0, "GET", "k"), on(1, "GET", "k"), on(0, "DBSIZE"), on(1, "DBSIZE"),
			on(0, "SWAPDB", "1", "1"), on(0, "GET", "k"), on(0, "SWAPDB", "0", "7"), on(0, "DBSIZE"),
			on(0, "SWAPDB", "x", "1"), on(0, "SWAPDB", "1", "x"), on(0, "SWAPDB", "1", "99999999999"),
			on(0, "SWAPDB", "16", "0"), on(0, "SWAPDB", "-1", "0"), on(0, "SWAPDB", "0"),
			on(1, "SWAPDB", "1", "7"), on(1, "GET", "k"), on(0, "SELECT", "1"), on(0, "GET", "k"),
		}},
		{"flush", []dbStep{
			on(0, "SET", "a", "0"), on(1, "SELECT", "4"), on(1, "SET", "a", "4"), on(1, "SET", "b", "4"),
			on(0, "FLUSHDB"), on(0, "DBSIZE"), on(1, "DBSIZE"), on(1, "FLUSHDB", "ASYNC"), on(1, "DBSIZE"),
			on(0, "SET", "a", "0"), on(1, "SET", "a", "4"), on(1, "FLUSHALL", "SYNC"), on(0, "DBSIZE"),
			on(1, "DBSIZE"), on(1, "FLUSHDB", "x"), on(1, "FLUSHALL", "x"),
		}},
		{"copy db", []dbStep{
			on(0, "HSET", "h", "f", "v"), on(0, "PEXPIREAT", "h", "4102444800123"), on(0, "COPY", "h", "h", "DB", "3"),
			on(0, "COPY", "h", "h"), on(0, "COPY", "h", "h", "DB", "0"), on(0, "COPY", "h", "h", "DB", "3"),
			on(0, "COPY", "h", "h", "DB", "3", "REPLACE"), on(0, "COPY", "h", "h2", "DB", "16"),
			on(0, "COPY", "h", "h2", "DB", "x"), on(0, "COPY", "h", "h2", "DB", "99999999999"),
			on(0, "COPY", "nokey", "h2", "DB", "3"), on(0, "COPY", "h", "h2", "DB", "3", "FOO"),
			on(1, "SELECT", "3"), on(1, "HGETALL", "h"), on(1, "PEXPIRETIME", "h"), on(1, "COPY", "h", "h", "DB", "0"),
			on(1, "COPY", "h", "back", "DB", "0"), on(0, "HGETALL", "back"),
		}},
		{"keys, scan, randomkey per db", []dbStep{
			on(0, "MSET", "a", "1", "b", "2"), on(1, "SELECT", "9"), on(1, "SET", "c", "3"),
			{conn: 0, args: []string{"KEYS", "*"}, cmp: sorted}, on(1, "KEYS", "*"), on(1, "RANDOMKEY"),
			on(1, "SCAN", "0"), on(1, "SELECT", "10"), on(1, "RANDOMKEY"), on(1, "SCAN", "0"), on(1, "KEYS", "*"),
			on(1, "DBSIZE"),
		}},
		{"select in multi", []dbStep{
			on(0, "SET", "k", "0"), on(0, "MULTI"), on(0, "SELECT", "6"), on(0, "SET", "k", "6"),
			on(0, "SELECT", "99"), on(0, "GET", "k"), on(0, "SELECT", "0"), on(0, "GET", "k"),
			on(0, "SELECT", "6"), on(0, "EXEC"), on(0, "GET", "k"), on(0, "DBSIZE"),
			// A transaction that only reads, in another database.
			on(0, "MULTI"), on(0, "GET", "k"), on(0, "SELECT", "0"), on(0, "GET", "k"), on(0, "EXEC"), on(0, "GET", "k"),
			// Discarded: the database does not change.
			on(0, "SELECT", "6"), on(0, "MULTI"), on(0, "SELECT", "0"), on(0, "DISCARD"), on(0, "GET", "k"),
			// Aborted by a queuing error: neither.
			on(0, "MULTI"), on(0, "SELECT", "0"), on(0, "SELECT"), on(0, "EXEC"), on(0, "GET", "k"),
			on(0, "MULTI"), on(0, "EXEC"), on(0, "GET", "k"),
		}},
		{"watch in db 2", []dbStep{
			on(0, "SELECT", "2"), on(0, "SET", "w", "1"), on(0, "WATCH", "w"),
			on(1, "SET", "w", "other db"), on(0, "MULTI"), on(0, "INCR", "w"), on(0, "EXEC"),
			on(0, "WATCH", "w"), on(1, "SELECT", "2"), on(1, "SET", "w", "5"),
			on(0, "MULTI"), on(0, "INCR", "w"), on(0, "EXEC"), on(0, "GET", "w"),
			// Watched in 2, then the transaction selects another.
			on(0, "WATCH", "w"), on(0, "MULTI"), on(0, "SELECT", "0"), on(0, "SET", "w", "x"), on(0, "EXEC"),
			on(0, "GET", "w"), on(0, "SELECT", "2"), on(0, "WATCH", "w"), on(1, "SWAPDB", "2", "3"),
			on(0, "MULTI"), on(0, "GET", "w"), on(0, "EXEC"),
		}},
		{"reset", []dbStep{
			on(0, "SELECT", "4"), on(0, "SET", "k", "4"), on(0, "CLIENT", "SETNAME", "me"), on(0, "WATCH", "k"),
			on(0, "MULTI"), on(0, "SET", "k", "x"), on(0, "RESET"), on(0, "EXEC"), on(0, "GET", "k"),
			on(0, "CLIENT", "GETNAME"), on(0, "SELECT", "4"), on(0, "GET", "k"), on(0, "RESET", "x"),
			on(1, "SUBSCRIBE", "ch"), on(1, "RESET"), on(1, "GET", "k"), on(0, "PUBLISH", "ch", "m"),
		}},
		{"info keyspace and config", []dbStep{
			on(0, "SET", "a", "1"), on(0, "SET", "t", "1", "EX", "1000"), on(0, "SELECT", "12"),
			on(0, "SET", "b", "1"), on(0, "INFO", "keyspace"), on(0, "CONFIG", "GET", "databases"),
			on(0, "FLUSHDB"), on(0, "INFO", "keyspace"), on(0, "FLUSHALL"), on(0, "INFO", "keyspace"),
		}},
	}
	redisAddr := redistest.Start(t)
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			ours := startStandalone(t)
			run := func(addr string) []string {
				conns := [2]*redistest.Conn{redistest.Dial(t, addr), redistest.Dial(t, addr)}
				conns[0].Do("FLUSHALL")
				var got []string
				for _, st := range sc.steps {
					got = append(got, anyAvgTTL(normalize(t, conns[st.conn].Do(st.args...), st.cmp)))
				}
				return got
			}
			want, got := run(redisAddr), run(ours.Addr())
			for i := range want {
				if lowerEq([]byte(sc.steps[i].args[0]), "hello") {
					continue // the servers differ in id and version fields
				}
				if got[i] != want[i] {
					t.Fatalf("step %d %q:\n got %q\nwant %q", i, sc.steps[i].args, got[i], want[i])
				}
			}
		})
	}
}

// TestClientListDB checks CLIENT INFO and CLIENT LIST's db= field, which
// follows SELECT.
func TestClientListDB(t *testing.T) {
	srv := startStandalone(t)
	a, b := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	a.Do("SELECT", "7")
	if got := a.Do("CLIENT", "INFO"); !strings.Contains(got, " db=7 ") {
		t.Fatalf("CLIENT INFO after SELECT 7: %q", got)
	}
	list := b.Do("CLIENT", "LIST")
	if n := len(regexp.MustCompile(` db=7 `).FindAllString(list, -1)); n != 1 {
		t.Fatalf("CLIENT LIST: %d lines with db=7: %q", n, list)
	}
	if n := len(regexp.MustCompile(` db=0 `).FindAllString(list, -1)); n != 1 {
		t.Fatalf("CLIENT LIST: %d lines with db=0: %q", n, list)
	}
}

// dbGen makes random commands over few keys in four databases, so that
// MOVE, COPY ... DB and SWAPDB keep meeting keys that exist.
type dbGen struct{ r *rand.Rand }

func (g dbGen) key() string { return "k" + strconv.Itoa(g.r.IntN(4)) }
func (g dbGen) db() string {
	if g.r.IntN(30) == 0 {
		return []string{"16", "-1", "x"}[g.r.IntN(3)]
	}
	return strconv.Itoa(g.r.IntN(4))
}

func (g dbGen) next() diffCmd {
	c := func(args ...string) diffCmd { return diffCmd{args: args} }
	k := g.key()
	switch g.r.IntN(24) {
	case 0, 1, 2:
		return c("SELECT", g.db())
	case 3:
		return c("MOVE", k, g.db())
	case 4:
		return c("SWAPDB", g.db(), g.db())
	case 5:
		if g.r.IntN(8) == 0 {
			return c("FLUSHALL")
		}
		return c("FLUSHDB")
	case 6:
		args := []string{"COPY", k, g.key(), "DB", g.db()}
		if g.r.IntN(2) == 0 {
			args = append(args, "REPLACE")
		}
		return c(args...)
	case 7:
		return c("DBSIZE")
	case 8:
		return diffCmd{args: []string{"KEYS", "*"}, cmp: sorted}
	case 9, 10, 11:
		return c("SET", k, strconv.Itoa(g.r.IntN(100)))
	case 12:
		return c("INCR", k)
	case 13:
		return c("RPUSH", k, "a", "b")
	case 14:
		return c("PEXPIREAT", k, strconv.Itoa(4102444800000+g.r.IntN(1000)))
	case 15:
		return c("PEXPIRETIME", k)
	case 16:
		return c("DEL", k)
	case 17:
		return c("RENAME", k, g.key())
	case 18:
		return c("EXISTS", k, g.key())
	case 19:
		return c("TYPE", k)
	case 20:
		return c("LRANGE", k, "0", "-1")
	default:
		return c("GET", k)
	}
}

// TestDatabasesReplicated sends one seeded random stream over the
// databases, in pipelined batches (so that a batch's writes switch
// database inside one proposal) and in transactions with SELECT inside, to
// Redis 7 and to the gomu leader of three replicas, comparing every reply.
// Then a follower connection that selected database 3 must read what the
// leader's does, every replica's digest must be the leader's, and INFO
// keyspace must be Redis's.
func TestDatabasesReplicated(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 600
	}
	raddr := redistest.Start(t)
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	rc, gc := redistest.Dial(t, raddr), redistest.Dial(t, lead.Srv.Addr())
	rc.Do("FLUSHALL")
	g := dbGen{rand.New(rand.NewPCG(20261205, 16))}
	for i := 0; i < n; {
		var cmds []diffCmd
		if g.r.IntN(6) == 0 {
			cmds = append(cmds, diffCmd{args: []string{"MULTI"}})
			for range 1 + g.r.IntN(5) {
				cmd := g.next()
				for cmd.cmp != exact { // EXEC's array is compared as it is
					cmd = g.next()
				}
				cmds = append(cmds, cmd)
			}
			cmds = append(cmds, diffCmd{args: []string{"EXEC"}})
		} else {
			for range 1 + g.r.IntN(8) {
				cmds = append(cmds, g.next())
			}
		}
		want, got := pipeline(t, rc, cmds), pipeline(t, gc, cmds)
		for j, cmd := range cmds {
			if nw, ng := normalize(t, want[j], cmd.cmp), normalize(t, got[j], cmd.cmp); nw != ng {
				t.Fatalf("command %d %q:\n gomu  %q\n redis %q", i+j, cmd.args, got[j], want[j])
			}
		}
		i += len(cmds)
	}

	// Database 3, written on the leader, read on a follower.
	rc.Do("SELECT", "3")
	gc.Do("SELECT", "3")
	for _, args := range [][]string{{"SET", "in3", "v"}, {"RPUSH", "list3", "x"}} {
		if want, got := rc.Do(args...), gc.Do(args...); got != want {
			t.Fatalf("%q: gomu %q, redis %q", args, got, want)
		}
	}
	reads := [][]string{{"DBSIZE"}, {"KEYS", "*"}, {"GET", "in3"}, {"LRANGE", "list3", "0", "-1"}}
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		if got := fc.Do("SELECT", "3"); got != "+OK\r\n" {
			t.Fatalf("follower SELECT 3: %q", got)
		}
		for _, args := range reads {
			want, got := gc.Do(args...), fc.Do(args...)
			if normalize(t, got, sorted) != normalize(t, want, sorted) {
				t.Fatalf("follower %d %q: %q, leader %q", f.ID, args, got, want)
			}
		}
	}
	want := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		if got := digest(t, f.Srv.Addr()); got != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, got, want)
		}
	}
	if want, got := anyAvgTTL(rc.Do("INFO", "keyspace")), anyAvgTTL(gc.Do("INFO", "keyspace")); got != want {
		t.Errorf("INFO keyspace:\n gomu  %q\n redis %q", got, want)
	}
}

// anyAvgTTL replaces INFO keyspace's avg_ttl figures by 0, ours, and the
// reply's length by *: Redis's are estimates its expiry cycle makes from
// time to time.
func anyAvgTTL(info string) string {
	if !avgTTL.MatchString(info) {
		return info
	}
	if _, body, ok := strings.Cut(info, "\r\n"); ok && strings.HasPrefix(info, "$") {
		info = "$*\r\n" + body
	}
	return avgTTL.ReplaceAllString(info, "avg_ttl=0")
}

var avgTTL = regexp.MustCompile(`avg_ttl=\d+`)

// pipeline sends cmds in one write and returns their replies.
func pipeline(t *testing.T, c *redistest.Conn, cmds []diffCmd) []string {
	t.Helper()
	var raw []byte
	for _, cmd := range cmds {
		b := make([][]byte, len(cmd.args))
		for i, a := range cmd.args {
			b[i] = []byte(a)
		}
		raw = resp.AppendCommand(raw, b...)
	}
	if err := c.Send(raw); err != nil {
		t.Fatalf("send: %v", err)
	}
	out := make([]string, len(cmds))
	for i := range cmds {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(cmds), err)
		}
		out[i] = r
	}
	return out
}

// TestActiveExpiryEveryDatabase checks that the leader's sweep deletes
// expired keys in every database, on every replica.
func TestActiveExpiryEveryDatabase(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	gc := redistest.Dial(t, lead.Srv.Addr())
	for _, db := range []string{"0", "5", "15"} {
		gc.Do("SELECT", db)
		gc.Do("SET", "keep", "v")
		gc.Do("SET", "gone", "v", "PX", "20")
	}
	deadline := time.Now().Add(hang)
	for _, nd := range c.Live() {
		cn := redistest.Dial(t, nd.Srv.Addr())
		for {
			info := cn.Do("INFO", "keyspace")
			if strings.Count(info, "keys=1,expires=0") == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: not swept: %q", nd.ID, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestAnyAvgTTL(t *testing.T) {
	in := "$57\r\n# Keyspace\r\ndb11:keys=1,expires=1,avg_ttl=2305970250733\r\n\r\n"
	want := "$*\r\n# Keyspace\r\ndb11:keys=1,expires=1,avg_ttl=0\r\n\r\n"
	if got := anyAvgTTL(in); got != want {
		t.Fatalf("%q", got)
	}
	if got := anyAvgTTL("+OK\r\n"); got != "+OK\r\n" {
		t.Fatalf("%q", got)
	}
}

// TestDatabaseSwitchCostsNoAllocation checks the hot paths in a database
// other than 0: a proposal that switches database applies without
// allocating, and a read sees its database through the connection's view
// without allocating either.
func TestDatabaseSwitchCostsNoAllocation(t *testing.T) {
	m := NewMachine()
	set := [][]byte{[]byte("SET"), []byte("k"), []byte("v")}
	get := [][]byte{[]byte("GET"), []byte("k")}
	var p proposal
	p.reset(propBatch)
	p.add(set)
	p.use(3)
	p.add(set)
	p.use(0)
	p.add(get)
	sealed := p.seal(1, 1)
	var d decoder
	out := make([]byte, 0, 256)
	apply := func() {
		h, err := d.decode(sealed)
		if err != nil {
			t.Fatal(err)
		}
		out = d.exec(out[:0], m.st, h, &m.env, true)
	}
	apply()
	if string(out) != "+OK\r\n+OK\r\n$1\r\nv\r\n" {
		t.Fatalf("replies %q", out)
	}
	if n := testing.AllocsPerRun(200, apply); n != 0 {
		t.Errorf("applying a proposal that switches database: %v allocations", n)
	}
	var view store.Store
	read := func() { out = m.execRead(out[:0], &m.env, 3, &view, get) }
	read()
	if string(out) != "$1\r\nv\r\n" {
		t.Fatalf("read in db 3: %q", out)
	}
	if n := testing.AllocsPerRun(200, read); n != 0 {
		t.Errorf("a read in database 3: %v allocations", n)
	}
}

// TestMalformedSelect checks that a proposal whose gomu.select names no
// database is refused whole.
func TestMalformedSelect(t *testing.T) {
	for _, db := range []string{"16", "-1", "x", ""} {
		var p proposal
		p.reset(propBatch)
		p.add([][]byte{[]byte("SET"), []byte("k"), []byte("v")})
		p.add([][]byte{[]byte(selectCommand), []byte(db)})
		var d decoder
		if _, err := d.decode(p.seal(1, 1)); err != errMalformed {
			t.Errorf("gomu.select %q: %v", db, err)
		}
	}
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte(selectCommand)})
	var d decoder
	if _, err := d.decode(p.seal(1, 1)); err != errMalformed {
		t.Errorf("gomu.select without a database: %v", err)
	}
}

// TestDatabasesConcurrent runs connections in different databases at
// once, each writing and reading its own database (reads of several
// databases share the read lock), and one swapping two other databases
// meanwhile: no connection sees another database's keys.
func TestDatabasesConcurrent(t *testing.T) {
	srv := startStandalone(t)
	const workers, rounds = 4, 300
	errs := make(chan error, workers+1)
	for w := range workers {
		go func() {
			cn := redistest.Dial(t, srv.Addr())
			db := strconv.Itoa(w + 1)
			cn.Do("SELECT", db)
			for i := range rounds {
				v := db + ":" + strconv.Itoa(i)
				cn.Do("SET", "k", v)
				if got := cn.Do("GET", "k"); got != bulk(v) {
					errs <- fmt.Errorf("db %s: GET k = %q, want %q", db, got, v)
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		cn := redistest.Dial(t, srv.Addr())
		for range rounds {
			cn.Do("SWAPDB", "10", "11")
			cn.Do("MULTI")
			cn.Do("SELECT", "10")
			cn.Do("INCR", "n")
			cn.Do("EXEC")
		}
		errs <- nil
	}()
	for range workers + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Every INCR landed in one of the two swapped databases.
	cn := redistest.Dial(t, srv.Addr())
	sum := 0
	for _, db := range []string{"10", "11"} {
		cn.Do("SELECT", db)
		if r := cn.Do("GET", "n"); r != "$-1\r\n" {
			_, text, _ := strings.Cut(r, "\r\n")
			n, err := strconv.Atoi(strings.TrimSuffix(text, "\r\n"))
			if err != nil {
				t.Fatalf("db %s: GET n = %q", db, r)
			}
			sum += n
		}
	}
	if sum != rounds {
		t.Fatalf("%d increments across databases 10 and 11, want %d", sum, rounds)
	}
}
