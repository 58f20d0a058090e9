package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// notifyRig runs the same commands on a store and on a real Redis with
// notify-keyspace-events set alike, and records the events each produces:
// the store's through Env.Publish, Redis's as a PSUBSCRIBE * client hears
// them. After every command a PUBLISH of a marker on Redis ends that
// command's events, so that they are compared command by command.
type notifyRig struct {
	t       *testing.T
	s       *Store
	env     *Env
	rc, sub *redistest.Conn
	blk     *redistest.Conn // the client a blocking command waits on
	addr    string
	db      int
	got     []string // the store's events, "channel message"
	blocked bool     // a blocking command waits on both sides
	served  bool     // the store served it
	marker  int
}

func newNotifyRig(t *testing.T, flags string) *notifyRig {
	r := &notifyRig{t: t, s: New()}
	r.addr = redistest.Start(t)
	r.rc = redistest.Dial(t, r.addr)
	r.sub = redistest.Dial(t, r.addr)
	r.blk = redistest.Dial(t, r.addr)
	r.env = &Env{Rand: rand.New(rand.NewPCG(1, 2)),
		Publish: func(ch, msg []byte) int {
			r.got = append(r.got, string(ch)+" "+string(msg))
			return 1
		},
		Unblock: func(string, []byte) { r.served = true },
	}
	if got := r.sub.Do("PSUBSCRIBE", "*"); !strings.Contains(got, "psubscribe") {
		t.Fatalf("psubscribe: %q", got)
	}
	r.config(flags)
	return r
}

// config sets notify-keyspace-events on both sides, the store's through
// gomu.config as the server proposes it.
func (r *notifyRig) config(flags string) {
	r.t.Helper()
	_, mask, msg := ParseConfig("notify-keyspace-events", []byte(flags))
	if msg != "" {
		r.t.Fatalf("flags %q: %s", flags, msg)
	}
	r.env.NowMs = time.Now().UnixMilli()
	if got := string(execArgs(r.s, r.env, []string{ConfigCommand, "notify-keyspace-events", strconv.FormatInt(mask, 10)})); got != "+OK\r\n" {
		r.t.Fatalf("gomu.config: %q", got)
	}
	if got := r.rc.Do("CONFIG", "SET", "notify-keyspace-events", flags); got != "+OK\r\n" {
		r.t.Fatalf("CONFIG SET: %q", got)
	}
}

// redisEvents reads what the subscriber heard up to the next marker.
func (r *notifyRig) redisEvents() []string {
	r.t.Helper()
	r.marker++
	mark := "m" + strconv.Itoa(r.marker)
	r.rc.Do("PUBLISH", "zz-marker", mark)
	var evs []string
	for {
		raw, err := r.sub.Read()
		if err != nil {
			r.t.Fatalf("subscriber: %v", err)
		}
		parts, ok := bulksOf(raw)
		if !ok || len(parts) != 4 || parts[0] != "pmessage" {
			r.t.Fatalf("subscriber got %q", raw)
		}
		if parts[2] == "zz-marker" && parts[3] == mark {
			return evs
		}
		evs = append(evs, parts[2]+" "+parts[3])
	}
}

// do runs one command on both sides and compares replies and events.
func (r *notifyRig) do(args ...string) {
	r.t.Helper()
	r.env.NowMs = time.Now().UnixMilli()
	r.got = r.got[:0]
	var want, got string
	switch {
	case strings.EqualFold(args[0], "select"):
		want = r.rc.Do(args...)
		r.db, _ = strconv.Atoi(args[1])
		got = "+OK\r\n"
	case strings.EqualFold(args[0], "blpop") || strings.EqualFold(args[0], "bzpopmin") ||
		strings.EqualFold(args[0], "blmove"):
		r.block(args)
		return
	default:
		want = r.rc.Do(args...)
		got = string(r.s.ExecDB(nil, r.env, r.db, toBytes(args)))
	}
	if r.s.HasReady() {
		r.s.ServeReady(r.env)
	}
	if r.blocked && r.served {
		if _, err := r.blk.Read(); err != nil {
			r.t.Fatalf("blocked client: %v", err)
		}
		r.blocked = false
	}
	if got != want && !randomReply(args) {
		r.t.Fatalf("%q:\n got reply %q\nwant reply %q", args, got, want)
	}
	r.compare(args)
}

// randomReply: the reply depends on the clock or randomness (an XADD *
// ID and what XREADGROUP reads of it, SPOP's pick), so only the events are compared.
func randomReply(args []string) bool {
	return strings.EqualFold(args[0], "spop") || strings.EqualFold(args[0], "xreadgroup") ||
		(strings.EqualFold(args[0], "xadd") && slices.Contains(args, "*"))
}

// block starts a blocking command (on an empty key, so that it waits) on
// both sides: the store's through gomu.block, Redis's on its own client.
func (r *notifyRig) block(args []string) {
	r.t.Helper()
	if r.blocked {
		return // one waiter at a time
	}
	raw := toBytes(args)
	if err := r.blk.Send(appendCmd(raw)); err != nil {
		r.t.Fatal(err)
	}
	r.served = false
	out := r.s.ExecDB(nil, r.env, r.db, append([][]byte{[]byte(BlockCommand), []byte("w")}, raw...))
	if len(out) != 0 { // served at once: so is Redis's
		want, err := r.blk.Read()
		if err != nil {
			r.t.Fatal(err)
		}
		if string(out) != want {
			r.t.Fatalf("%q:\n got reply %q\nwant reply %q", args, out, want)
		}
		r.compare(args)
		return
	}
	// Redis runs the command once its bytes arrive: wait until it counts
	// the client as blocked.
	for i := 0; !strings.Contains(r.rc.Do("INFO", "clients"), "blocked_clients:1"); i++ {
		if i > 500 {
			r.t.Fatalf("%q never blocked on Redis", args)
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.blocked = true
	r.compare(args)
}

func (r *notifyRig) compare(args []string) {
	r.t.Helper()
	want := r.redisEvents()
	if strings.Join(r.got, "\n") != strings.Join(want, "\n") {
		r.t.Fatalf("%q (db %d):\n got events %q\nwant events %q", args, r.db, r.got, want)
	}
}

func toBytes(args []string) [][]byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return b
}

func appendCmd(args [][]byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

// TestNotifyEventsFixed checks each command family's events, one script
// each, against Redis 7.0.
func TestNotifyEventsFixed(t *testing.T) {
	scripts := map[string][][]string{
		"strings": {
			{"set", "s", "1"}, {"set", "s", "2", "ex", "100"}, {"set", "s", "3", "nx"}, {"set", "s", "4", "xx", "get"},
			{"setnx", "s2", "a"}, {"setex", "s3", "10", "v"}, {"psetex", "s3", "10000", "v"}, {"getset", "s", "9"},
			{"mset", "a", "1", "b", "2"}, {"msetnx", "c", "1", "d", "2"}, {"msetnx", "c", "1", "e", "2"},
			{"append", "a", "x"}, {"append", "new", "x"}, {"incr", "b"}, {"incrby", "b", "5"}, {"decr", "b"}, {"decrby", "b", "2"},
			{"incrbyfloat", "b", "1.5"}, {"setrange", "a", "3", "zz"}, {"setrange", "a", "1", ""}, {"getdel", "a"}, {"getdel", "a"},
			{"getex", "b", "ex", "100"}, {"getex", "b", "persist"}, {"getex", "b", "persist"}, {"getex", "b", "pxat", "1"},
			{"setbit", "bits", "7", "1"}, {"bitop", "or", "bo", "bits", "nokey"}, {"bitop", "and", "bo", "nokey"}, {"bitop", "and", "bo", "nokey"},
			{"bitfield", "bf", "set", "u8", "0", "5", "get", "u8", "0"}, {"bitfield", "bf", "get", "u8", "0"},
			{"bitfield", "bf", "overflow", "fail", "incrby", "u8", "0", "300"},
			{"pfadd", "h", "a", "b"}, {"pfadd", "h", "a"}, {"pfmerge", "h2", "h"},
			{"set", "wrong", "x"}, {"lpush", "wrong", "x"},
		},
		"generic": {
			{"set", "k", "v"}, {"expire", "k", "100"}, {"pexpire", "k", "100000"}, {"expireat", "k", "99999999999"},
			{"expire", "k", "100", "nx"}, {"persist", "k"}, {"persist", "k"}, {"expire", "nokey", "10"},
			{"set", "k2", "v"}, {"pexpireat", "k2", "1"}, {"set", "k3", "v"}, {"expire", "k3", "-1"},
			{"del", "k", "nokey"}, {"set", "a", "1"}, {"unlink", "a"}, {"set", "a", "1"}, {"set", "b", "2"},
			{"rename", "a", "b"}, {"rename", "b", "b"}, {"renamenx", "b", "c"}, {"set", "d", "1"}, {"renamenx", "c", "d"},
			{"copy", "c", "e"}, {"copy", "c", "e"}, {"copy", "c", "e", "replace"}, {"copy", "c", "e", "db", "3"},
			{"move", "c", "4"}, {"move", "d", "4"}, {"select", "4"}, {"set", "d", "x"}, {"move", "d", "0"}, {"select", "0"},
			{"swapdb", "0", "4"}, {"flushdb"}, {"select", "4"}, {"flushall"}, {"select", "0"},
			{"rpush", "l", "3", "1", "2"}, {"sort", "l", "store", "ls"}, {"sort", "nokey", "store", "ls"}, {"sort", "nokey", "store", "ls"},
			{"touch", "l"}, {"type", "l"},
		},
		"lists": {
			{"lpush", "l", "a", "b"}, {"rpush", "l", "c"}, {"lpushx", "l", "x"}, {"rpushx", "l", "y"}, {"lpushx", "nol", "x"},
			{"linsert", "l", "before", "c", "z"}, {"linsert", "l", "before", "nothere", "z"}, {"lset", "l", "0", "q"},
			{"lrem", "l", "0", "nothere"}, {"lrem", "l", "1", "q"}, {"ltrim", "l", "0", "2"}, {"lpop", "l"}, {"rpop", "l", "0"},
			{"rpop", "l", "5"}, {"rpush", "l", "1", "2", "3"}, {"lmove", "l", "m", "left", "right"}, {"rpoplpush", "l", "m"},
			{"rpoplpush", "l", "m"}, {"rpoplpush", "m", "m"}, {"lmpop", "2", "nol", "m", "left", "count", "5"},
			{"rpush", "l", "1"}, {"ltrim", "l", "5", "6"}, {"rpush", "l", "1", "1"}, {"lrem", "l", "0", "1"},
		},
		"edges": {
			{"bitfield", "bf", "overflow", "fail", "incrby", "u8", "0", "300"}, {"set", "x", "1"},
			{"hincrby", "h", "f", "9223372036854775807"}, {"hincrby", "h", "f", "1"}, {"hincrby", "h2", "f", "1"},
			{"hincrbyfloat", "h3", "f", "1e4932"}, {"hincrbyfloat", "h3", "f", "1e4932"}, {"set", "y", "1"},
		},
		"hashes": {
			{"hset", "h", "a", "1", "b", "2"}, {"hset", "h", "a", "1"}, {"hmset", "h", "c", "3"}, {"hsetnx", "h", "a", "x"},
			{"hsetnx", "h", "d", "x"}, {"hincrby", "h", "a", "5"}, {"hincrbyfloat", "h", "a", "1.5"}, {"hdel", "h", "zz"},
			{"hdel", "h", "a", "b"}, {"hdel", "h", "c", "d"}, {"hdel", "h", "c"},
		},
		"sets": {
			{"sadd", "s", "a", "b", "c"}, {"sadd", "s", "a"}, {"srem", "s", "zz"}, {"srem", "s", "a"}, {"smove", "s", "t", "b"},
			{"smove", "s", "t", "nothere"}, {"sadd", "t", "c"}, {"smove", "s", "t", "c"}, {"sadd", "s", "1", "2", "3", "4"},
			{"spop", "s"}, {"spop", "s", "0"}, {"spop", "s", "1"}, {"spop", "s", "10"}, {"sadd", "s", "1"}, {"spop", "s"},
			{"sadd", "a", "1", "2"}, {"sadd", "b", "2", "3"}, {"sinterstore", "d", "a", "b"}, {"sunionstore", "d", "a", "b"},
			{"sdiffstore", "d", "a", "b"}, {"sinterstore", "d", "a", "nokey"}, {"sinterstore", "d", "a", "nokey"},
			{"sdiffstore", "d", "a", "a"},
		},
		"zsets": {
			{"zadd", "z", "1", "a", "2", "b", "3", "c"}, {"zadd", "z", "1", "a"}, {"zadd", "z", "5", "a"}, {"zadd", "z", "xx", "1", "new"},
			{"zadd", "z", "incr", "1", "a"}, {"zincrby", "z", "1", "b"}, {"zadd", "z", "gt", "0", "c"}, {"zrem", "z", "nothere"},
			{"zrem", "z", "c"}, {"zadd", "z", "1", "x", "2", "y", "3", "w"}, {"zremrangebyscore", "z", "100", "200"},
			{"zremrangebyscore", "z", "1", "1"}, {"zremrangebyrank", "z", "0", "0"}, {"zremrangebylex", "z", "-", "+"},
			{"zadd", "z", "1", "a", "2", "b", "3", "c"}, {"zpopmin", "z"}, {"zpopmax", "z", "0"}, {"zpopmax", "z", "5"},
			{"zpopmin", "z"}, {"zadd", "z", "1", "a", "2", "b"}, {"zmpop", "2", "nokey", "z", "max", "count", "1"},
			{"zadd", "y", "2", "b", "3", "c"}, {"zunionstore", "d", "2", "z", "y"}, {"zinterstore", "d", "2", "z", "y"},
			{"zdiffstore", "d", "2", "z", "y"}, {"zdiffstore", "d", "2", "z", "z"}, {"zdiffstore", "d", "2", "z", "z"},
			{"zrangestore", "d", "z", "0", "-1"}, {"zrangestore", "d", "z", "5", "6"}, {"zrangestore", "d", "z", "5", "6"},
			{"zrangestore", "d", "nokey", "0", "-1"}, {"zmpop", "1", "z", "min", "count", "10"},
		},
		"streams": {
			{"xadd", "x", "1-1", "f", "v"}, {"xadd", "x", "2-1", "f", "v"}, {"xadd", "x", "maxlen", "1", "3-1", "f", "v"},
			{"xadd", "nox", "nomkstream", "*", "f", "v"}, {"xtrim", "x", "maxlen", "5"}, {"xadd", "x", "4-1", "f", "v"},
			{"xtrim", "x", "maxlen", "1"}, {"xdel", "x", "1-1"}, {"xdel", "x", "4-1"}, {"xsetid", "x", "10-1"},
			{"xgroup", "create", "x", "g", "0"}, {"xgroup", "create", "x", "g", "0"}, {"xgroup", "create", "y", "g", "$", "mkstream"},
			{"xgroup", "setid", "x", "g", "0"}, {"xgroup", "createconsumer", "x", "g", "c1"}, {"xgroup", "createconsumer", "x", "g", "c1"},
			{"xadd", "x", "11-1", "f", "v"}, {"xreadgroup", "group", "g", "c2", "streams", "x", ">"},
			{"xreadgroup", "group", "g", "c2", "streams", "x", ">"},
			{"xclaim", "x", "g", "c3", "0", "11-1"}, {"xautoclaim", "x", "g", "c4", "0", "0"}, {"xautoclaim", "x", "g", "c4", "0", "0"},
			{"xack", "x", "g", "11-1"}, {"xgroup", "delconsumer", "x", "g", "nobody"}, {"xgroup", "delconsumer", "x", "g", "c1"},
			{"xgroup", "destroy", "x", "g"}, {"xgroup", "destroy", "x", "g"},
		},
		"blocking": {
			{"blpop", "bl", "0"}, {"rpush", "bl", "a", "b"}, {"blpop", "bl", "0"}, {"lpush", "other", "x"}, {"rpush", "bl", "c"},
			{"bzpopmin", "bz", "0"}, {"zadd", "bz", "1", "a"}, {"blmove", "src", "dst", "left", "right", "0"},
			{"rpush", "src", "x", "y"}, {"del", "src"},
		},
	}
	for name, steps := range scripts {
		for _, flags := range []string{"KEA", "KEAn"} {
			t.Run(name+"/"+flags, func(t *testing.T) {
				r := newNotifyRig(t, flags)
				for _, st := range steps {
					r.do(st...)
				}
			})
		}
	}
}

// TestNotifyExpired checks the expired events: a write that finds a key
// expired, and the sweep.
func TestNotifyExpired(t *testing.T) {
	r := newNotifyRig(t, "KEA")
	r.do("set", "a", "1", "px", "30")
	r.do("set", "b", "1", "px", "30")
	time.Sleep(300 * time.Millisecond) // past both TTLs; Redis's active cycle deletes them
	r.env.NowMs = time.Now().UnixMilli()
	r.got = r.got[:0]
	r.s.sweepExpired(r.env, -1)
	// Redis's active expiry goes in its hash table's order: compare sets.
	want := r.redisEvents()
	slices.Sort(want)
	slices.Sort(r.got)
	if !slices.Equal(r.got, want) {
		t.Fatalf("sweep:\n got events %q\nwant events %q", r.got, want)
	}
	r.do("set", "c", "1", "px", "30")
	time.Sleep(50 * time.Millisecond) // past the TTL, before Redis's cycle (hz 10) finds it, usually
	r.do("incr", "c")
}

// TestNotifyFlags checks which classes each flag lets through, and the
// keyspace-miss events of reads.
func TestNotifyFlags(t *testing.T) {
	for _, flags := range []string{"K$", "Eg", "Kl", "Eh", "KEs", "Ez", "Kt", "Ex", "Em", "KEA", "AK", "E$lshzxet", "En", "Kn"} {
		t.Run(flags, func(t *testing.T) {
			r := newNotifyRig(t, flags)
			for _, st := range [][]string{
				{"set", "s", "1"}, {"get", "nokey"}, {"get", "s"}, {"rpush", "l", "a"}, {"lpop", "l"},
				{"hset", "h", "f", "v"}, {"sadd", "S", "m"}, {"zadd", "z", "1", "m"}, {"xadd", "x", "1-1", "f", "v"},
				{"expire", "s", "100"}, {"del", "s", "h"}, {"mget", "a", "S"}, {"exists", "nokey"},
			} {
				r.do(st...)
			}
		})
	}
}

// TestNotifyRandom runs a seeded random sequence of writes over every type
// with KEA on both sides and compares the events command by command.
func TestNotifyRandom(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { notifyRandom(t, seed) })
	}
}

func notifyRandom(t *testing.T, seed uint64) {
	r := newNotifyRig(t, "KEAn")
	rnd := rand.New(rand.NewPCG(7, 11+seed))
	key := func(prefix string) string { return prefix + strconv.Itoa(rnd.IntN(3)) }
	num := func() string { return strconv.Itoa(rnd.IntN(5)) }
	gens := []func() []string{
		func() []string { return []string{"set", key("s"), num()} },
		func() []string { return []string{"set", key("s"), num(), "ex", "1000"} },
		func() []string { return []string{"incrby", key("s"), num()} },
		func() []string { return []string{"append", key("s"), num()} },
		func() []string { return []string{"getdel", key("s")} },
		func() []string { return []string{"del", key("s"), key("l"), key("h")} },
		func() []string { return []string{"expire", key("s"), "1000"} },
		func() []string { return []string{"persist", key("s")} },
		func() []string { return []string{"pexpireat", key("z"), "1"} },
		func() []string { return []string{"rename", key("s"), key("s")} },
		func() []string { return []string{"copy", key("l"), key("l"), "replace"} },
		func() []string { return []string{"move", key("s"), "1"} },
		func() []string { return []string{"select", strconv.Itoa(rnd.IntN(2))} },
		func() []string { return []string{"swapdb", "0", "1"} },
		func() []string { return []string{"lpush", key("l"), num(), num()} },
		func() []string { return []string{"rpop", key("l")} },
		func() []string { return []string{"lmove", key("l"), key("l"), "left", "right"} },
		func() []string { return []string{"lrem", key("l"), "0", num()} },
		func() []string { return []string{"ltrim", key("l"), "1", "2"} },
		func() []string { return []string{"sort", key("l"), "store", key("l")} },
		func() []string { return []string{"hset", key("h"), num(), num()} },
		func() []string { return []string{"hdel", key("h"), num(), num()} },
		func() []string { return []string{"hincrby", key("h"), num(), num()} },
		func() []string { return []string{"sadd", key("S"), num(), num()} },
		func() []string { return []string{"srem", key("S"), num()} },
		func() []string { return []string{"smove", key("S"), key("S"), num()} },
		func() []string { return []string{"sunionstore", key("S"), key("S"), key("S")} },
		func() []string { return []string{"sinterstore", key("S"), key("S"), key("S")} },
		func() []string { return []string{"zadd", key("z"), num(), num()} },
		func() []string { return []string{"zincrby", key("z"), num(), num()} },
		func() []string { return []string{"zrem", key("z"), num()} },
		func() []string { return []string{"zpopmin", key("z")} },
		func() []string { return []string{"zremrangebyscore", key("z"), "0", num()} },
		func() []string { return []string{"zunionstore", key("z"), "2", key("z"), key("z")} },
		func() []string { return []string{"zinterstore", key("z"), "2", key("z"), key("z")} },
		func() []string { return []string{"zrangestore", key("z"), key("z"), "0", "1"} },
		func() []string { return []string{"xadd", key("x"), "maxlen", "3", "*", "f", num()} },
		func() []string { return []string{"xdel", key("x"), "0-1"} },
		func() []string { return []string{"xtrim", key("x"), "maxlen", "1"} },
		func() []string { return []string{"flushdb"} },
		func() []string { return []string{"blpop", key("l"), "0"} },
		func() []string { return []string{"copy", key("h"), key("h"), "db", "1"} },
		func() []string { return []string{"renamenx", key("z"), key("S")} },
		func() []string { return []string{"pexpire", key("l"), "-1"} },
		func() []string { return []string{"getex", key("s"), "px", "100000"} },
		func() []string { return []string{"setrange", key("s"), num(), num()} },
		func() []string { return []string{"incrbyfloat", key("s"), "1.5"} },
		func() []string { return []string{"bitop", "xor", key("s"), key("s"), key("s")} },
		func() []string { return []string{"setbit", key("s"), num(), "1"} },
		func() []string { return []string{"pfadd", key("p"), num()} },
		func() []string { return []string{"pfmerge", key("p"), key("p")} },
		func() []string { return []string{"lmpop", "2", key("l"), key("l"), "right", "count", "2"} },
		func() []string { return []string{"zmpop", "2", key("z"), key("z"), "min", "count", "2"} },
		func() []string { return []string{"zdiffstore", key("z"), "2", key("z"), key("z")} },
		func() []string { return []string{"sdiffstore", key("S"), key("S"), key("S")} },
		func() []string { return []string{"hsetnx", key("h"), num(), num()} },
		func() []string { return []string{"hincrbyfloat", key("h"), num(), "0.5"} },
		func() []string { return []string{"linsert", key("l"), "after", num(), num()} },
		func() []string { return []string{"lset", key("l"), "0", num()} },
		func() []string { return []string{"xgroup", "create", key("x"), "g", "0", "mkstream"} },
		func() []string {
			return []string{"xreadgroup", "group", "g", "c" + num(), "count", "1", "streams", key("x"), ">"}
		},
		func() []string { return []string{"xgroup", "delconsumer", key("x"), "g", "c" + num()} },
		func() []string { return []string{"xgroup", "destroy", key("x"), "g"} },
		func() []string { return []string{"zadd", key("z"), "incr", num(), num()} },
		func() []string { return []string{"mset", key("s"), num(), key("s"), num()} },
		func() []string { return []string{"msetnx", key("s"), num(), key("s"), num()} },
	}
	total := 0
	for range 1500 {
		args := gens[rnd.IntN(len(gens))]()
		if args[0] == "flushdb" && rnd.IntN(4) != 0 {
			continue // rarer
		}
		if args[0] == "blpop" && r.db != 0 {
			continue
		}
		r.do(args...)
		total += len(r.got)
	}
	if total < 1000 {
		t.Fatalf("only %d events in the whole run", total)
	}
	t.Logf("%d events compared", total)
}

// TestNotifyRestore checks RESTORE's events: "restore", none when the key
// exists without REPLACE, and "del" when REPLACE meets a TTL already past.
func TestNotifyRestore(t *testing.T) {
	r := newNotifyRig(t, "KEAn")
	r.do("rpush", "src", "a", "b")
	payload, ok := bulkText(r.rc.Do("DUMP", "src"))
	if !ok {
		t.Fatal("DUMP gave no payload")
	}
	for _, st := range [][]string{
		{"restore", "dst", "0", payload}, {"restore", "dst", "0", payload}, {"restore", "dst", "0", payload, "replace"},
		{"restore", "dst", "100000", payload, "replace"}, {"restore", "dst", "1", payload, "replace", "absttl"},
		{"restore", "dst", "1", payload, "absttl"}, {"restore", "dst2", "0", payload}, {"select", "2"},
		{"restore", "dst2", "0", payload},
	} {
		r.do(st...)
	}
}
