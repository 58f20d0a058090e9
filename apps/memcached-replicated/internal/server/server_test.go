package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestReplicatedCommands runs text commands through the leader, then reads
// every key on every replica: a follower's reads see the leader's writes
// (linearizable by default), and every replica holds the same items.
func TestReplicatedCommands(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	steps := []struct{ in, want string }{
		{"set a 5 0 3\r\nabc\r\n", "STORED\r\n"},
		{"add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		{"add b 0 0 2\r\n10\r\n", "STORED\r\n"},
		{"incr b 5\r\n", "15\r\n"},
		{"decr b 100\r\n", "0\r\n"},
		{"append a 0 0 2\r\nde\r\n", "STORED\r\n"},
		{"prepend a 0 0 1\r\n_\r\n", "STORED\r\n"},
		{"replace c 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		{"set c 0 0 1 noreply\r\nx\r\nset d 0 0 1\r\ny\r\n", "STORED\r\n"},
		{"delete d\r\n", "DELETED\r\n"},
		{"delete d\r\n", "NOT_FOUND\r\n"},
		{"touch c 1000\r\n", "TOUCHED\r\n"},
		{"cas c 0 0 1 1\r\nz\r\n", "EXISTS\r\n"},
		{"get a b c d\r\n", "VALUE a 5 6\r\n_abcde\r\nVALUE b 0 2\r\n0 \r\nVALUE c 0 1\r\nx\r\nEND\r\n"},
	}
	for _, s := range steps {
		lc.do(s.in, s.want)
	}
	// gets on the leader gives c's CAS; the cas with it succeeds.
	line := lc.line("gets c\r\n")
	var cas uint64
	if _, err := fmt.Sscanf(line, "VALUE c 0 1 %d", &cas); err != nil {
		t.Fatalf("gets c: %q", line)
	}
	lc.roundTrip("", len("x\r\nEND\r\n"))
	lc.do(fmt.Sprintf("cas c 0 0 1 %d\r\nz\r\n", cas), "STORED\r\n")
	for _, n := range c.Live() {
		dial(t, n.Addr()).do("get a b c d\r\n", "VALUE a 5 6\r\n_abcde\r\nVALUE b 0 2\r\n0 \r\nVALUE c 0 1\r\nz\r\nEND\r\n")
	}
	c.waitDigests()
}

// TestFollowerRefusesWrites: a write on a follower names the leader, as
// the latency clients and users read it; a noreply write gets no reply
// (memcached never answers one), and reads are served.
func TestFollowerRefusesWrites(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	for _, f := range c.Followers(lead) {
		fc := dial(t, f.Addr())
		got := fc.line("set k 0 0 1\r\nv\r\n")
		want := "SERVER_ERROR gomu: not the leader " + leaderhint.Format(lead.ID, lead.Addr()) + "\r\n"
		if got != want {
			t.Fatalf("follower %d: %q, want %q", f.ID, got, want)
		}
		if id, addr := leaderhint.Parse(got); id != lead.ID || addr != lead.Addr() {
			t.Fatalf("leader hint %q parses as %d %q", got, id, addr)
		}
		fc.do("set k 0 0 1 noreply\r\nv\r\nget k\r\n", "END\r\n")
		fc.do("incr k 1\r\n", want)
		fc.do("gat 10 k\r\n", want)
		fc.do("get k\r\n", "END\r\n")
	}
}

// TestTooLarge: an item over -I gets memcached's error, the connection
// goes on, and the item it would have replaced is gone on every replica.
func TestTooLarge(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	lc.do("set k 0 0 1\r\nv\r\n", "STORED\r\n")
	big := strings.Repeat("x", testItemMax+1)
	lc.do("set k 0 0 "+fmt.Sprint(len(big))+"\r\n"+big+"\r\n", "SERVER_ERROR object too large for cache\r\n")
	lc.do("get k\r\n", "END\r\n")
	ok := strings.Repeat("y", testItemMax)
	lc.do("set j 0 0 "+fmt.Sprint(len(ok))+"\r\n"+ok+"\r\n", "STORED\r\n")
	c.waitDigests()
	for _, f := range c.Followers(lead) {
		dial(t, f.Addr()).do("get k\r\n", "END\r\n")
	}
	// The same standalone, where the delete is not replicated.
	sa := dial(t, startStandalone(t).Addr())
	sa.do("set k 0 0 1\r\nv\r\n", "STORED\r\n")
	sa.do("set k 0 0 "+fmt.Sprint(len(big))+"\r\n"+big+"\r\n", "SERVER_ERROR object too large for cache\r\n")
	sa.do("get k\r\n", "END\r\n")
}

// TestExpiryAndFlushReplicated: exptimes and flush_all delays are judged
// by the leader's clock in each proposal, so replicas expire alike.
func TestExpiryAndFlushReplicated(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	abs := time.Now().Add(time.Hour).Unix()
	lc.do("set short 0 1 1\r\na\r\n", "STORED\r\n")
	lc.do(fmt.Sprintf("set abs 0 %d 1\r\nb\r\n", abs), "STORED\r\n")
	lc.do("set past 0 -1 1\r\nc\r\n", "STORED\r\n")
	lc.do("flush_all 1\r\n", "OK\r\n")
	lc.do("set later 0 0 1\r\nd\r\n", "STORED\r\n")
	time.Sleep(2100 * time.Millisecond) // both the exptime and the flush delay pass
	lc.do("set after 0 0 1\r\ne\r\n", "STORED\r\n")
	for _, n := range c.Live() {
		dial(t, n.Addr()).do("get short abs past later after\r\n", "VALUE after 0 1\r\ne\r\nEND\r\n")
	}
	c.waitDigests()
}

// TestEvictionSameEverywhere: with a small -m, the leader's writes evict,
// and every replica evicts the same items.
func TestEvictionSameEverywhere(t *testing.T) {
	c := startClusterOpts(t, 3, clusterOpts{mem: 1 << 20})
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	val := strings.Repeat("v", 1000)
	for i := range 3000 {
		lc.do(fmt.Sprintf("set key%d 0 0 %d\r\n%s\r\n", i, len(val), val), "STORED\r\n")
	}
	c.waitDigests()
	st := lead.M.Store().Stats()
	if st.Evictions == 0 || st.Bytes > 1<<20 {
		t.Fatalf("no eviction under 1 MiB: %+v", st)
	}
	// The oldest writes went first.
	lc.do("get key0\r\n", "END\r\n")
	lc.do("get key2999\r\n", "VALUE key2999 0 1000\r\n"+val+"\r\nEND\r\n")
	for _, f := range c.Followers(lead) {
		if fs := f.M.Store().Stats(); fs.CurrItems != st.CurrItems {
			t.Fatalf("follower %d holds %d items, leader %d", f.ID, fs.CurrItems, st.CurrItems)
		}
	}
}

// TestStatsGomu: stats gomu names the leader and every replica, the bare
// stats carries memcached's general lines.
func TestStatsGomu(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	for _, n := range c.Live() {
		cl := dial(t, n.Addr())
		st := readStats(t, cl, "stats gomu\r\n")
		if st["gomu_leader_id"] != fmt.Sprint(lead.ID) || st["gomu_leader_addr"] != lead.Addr() || st["gomu_id"] != fmt.Sprint(n.ID) {
			t.Fatalf("replica %d: stats gomu %v", n.ID, st)
		}
		var want []string
		for _, m := range c.Live() {
			want = append(want, fmt.Sprintf("%d=%s", m.ID, m.Addr()))
		}
		if st["gomu_replica_addrs"] != strings.Join(want, ",") {
			t.Fatalf("replica %d: gomu_replica_addrs %q, want %q", n.ID, st["gomu_replica_addrs"], strings.Join(want, ","))
		}
		gen := readStats(t, cl, "stats\r\n")
		for _, k := range []string{"pid", "uptime", "curr_connections", "cmd_get", "limit_maxbytes", "curr_items", "evictions", "gomu_role"} {
			if _, ok := gen[k]; !ok {
				t.Fatalf("replica %d: stats lacks %s: %v", n.ID, k, gen)
			}
		}
		cl.do("stats noexists\r\n", "ERROR\r\n")
		cl.do("stats detail\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n")
		cl.do("stats reset\r\n", "RESET\r\n")
		set := readStats(t, cl, "stats settings\r\n")
		if set["item_size_max"] != fmt.Sprint(testItemMax) || set["maxconns"] != fmt.Sprint(testConns) {
			t.Fatalf("stats settings: %v", set)
		}
	}
}

func readStats(t *testing.T, cl *client, cmd string) map[string]string {
	t.Helper()
	st := map[string]string{}
	l := cl.line(cmd)
	for ; l != "END\r\n"; l = cl.line("") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "STAT" {
			t.Fatalf("%q: line %q", cmd, l)
		}
		st[f[1]] = strings.Join(f[2:], " ")
	}
	return st
}

// TestGomemcacheClient drives every operation of a common Go client
// against the leader, and reads back on a follower.
func TestGomemcacheClient(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	mc := memcache.New(lead.Addr())
	mc.Timeout = hang
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("ping", mc.Ping())
	must("set", mc.Set(&memcache.Item{Key: "a", Value: []byte("1"), Flags: 7}))
	must("add", mc.Add(&memcache.Item{Key: "b", Value: []byte("x")}))
	if err := mc.Add(&memcache.Item{Key: "b", Value: []byte("y")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("add existing: %v", err)
	}
	must("replace", mc.Replace(&memcache.Item{Key: "b", Value: []byte("z")}))
	must("append", mc.Append(&memcache.Item{Key: "b", Value: []byte("!")}))
	must("prepend", mc.Prepend(&memcache.Item{Key: "b", Value: []byte("<")}))
	it, err := mc.Get("a")
	must("get", err)
	if string(it.Value) != "1" || it.Flags != 7 {
		t.Fatalf("get a: %+v", it)
	}
	it.Value = []byte("2")
	must("cas", mc.CompareAndSwap(it))
	if err := mc.CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	n, err := mc.Increment("a", 40)
	must("incr", err)
	if n != 42 {
		t.Fatalf("incr: %d", n)
	}
	if n, err = mc.Decrement("a", 50); err != nil || n != 0 {
		t.Fatalf("decr: %d %v", n, err)
	}
	must("touch", mc.Touch("a", 100))
	if it, err := mc.GetAndTouch("a", 200); err != nil || string(it.Value) != "0 " {
		t.Fatalf("get and touch: %+v %v", it, err)
	}
	if _, err := mc.GetAndTouch("none", 200); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("get and touch a missing key: %v", err)
	}
	items, err := mc.GetMulti([]string{"a", "b", "none"})
	must("getmulti", err)
	if len(items) != 2 || string(items["b"].Value) != "<z!" {
		t.Fatalf("getmulti: %v", items)
	}
	must("delete", mc.Delete("b"))
	if err := mc.Delete("b"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("delete missing: %v", err)
	}
	for _, f := range c.Followers(lead) {
		fc := memcache.New(f.Addr())
		fc.Timeout = hang
		// memcached pads a counter that shrank: "42" decremented to 0 is "0 ".
		it, err := fc.Get("a")
		if err != nil || string(it.Value) != "0 " {
			t.Fatalf("follower %d get a: %v %v", f.ID, it, err)
		}
		if err := fc.Set(&memcache.Item{Key: "f", Value: []byte("v")}); err == nil || !strings.Contains(err.Error(), "not the leader") {
			t.Fatalf("follower %d set: %v", f.ID, err)
		}
	}
	must("flush", mc.FlushAll())
	if _, err := mc.Get("a"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("after flush_all: %v", err)
	}
	must("deleteall", mc.DeleteAll())
	c.waitDigests()
}

// TestFailoverKeepsAcknowledgedWrites: four writers through a crash of the
// leader; every write acknowledged STORED is read back on the new leader.
func TestFailoverKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("fail-over: slow")
	}
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	var mu sync.Mutex
	acked := map[string]string{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	addrs := []string{}
	for _, n := range c.Live() {
		addrs = append(addrs, n.Addr())
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key, val := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("v%d", i)
				if writeSomewhere(addrs, key, val) {
					mu.Lock()
					acked[key] = val
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	c.Crash(lead.ID)
	next := c.WaitLeader()
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no write acknowledged")
	}
	cl := dial(t, next.Addr())
	for k, v := range acked {
		cl.do("get "+k+"\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v))
	}
	c.waitDigests()
	t.Logf("%d acknowledged writes, all on the new leader %d", len(acked), next.ID)
}

// writeSomewhere sets key on whichever replica takes it, following
// not-the-leader errors; false when no replica acknowledged it in time.
func writeSomewhere(addrs []string, key, val string) bool {
	req := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val)
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		nc, err := net.DialTimeout("tcp", addrs[i%len(addrs)], time.Second)
		if err != nil {
			continue
		}
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 512)
		n := 0
		if _, err = nc.Write([]byte(req)); err == nil {
			n, _ = nc.Read(buf)
		}
		nc.Close()
		if string(buf[:n]) == "STORED\r\n" {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestRestartedFollowerCatchesUp: a follower restarted empty, after more
// writes than the ring holds, gets the items by state transfer (the
// machine's Snapshot and Restore) and replays from there.
func TestRestartedFollowerCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("restart: slow")
	}
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	for i := range 200 {
		lc.do(fmt.Sprintf("set k%d %d 0 2\r\nv%d\r\n", i, i, i%10), "STORED\r\n")
	}
	f := c.Followers(lead)[0]
	c.Crash(f.ID)
	for i := 200; i < 400; i++ {
		lc.do(fmt.Sprintf("set k%d %d 0 2\r\nv%d\r\n", i, i, i%10), "STORED\r\n")
	}
	// More than the ring holds, so the restarted replica cannot replay its
	// way back: it needs a snapshot of the items.
	big := strings.Repeat("b", 64<<10)
	for i := range 2 * testRing / len(big) {
		lc.do(fmt.Sprintf("set big%d 0 0 %d\r\n%s\r\n", i%40, len(big), big), "STORED\r\n")
	}
	if err := c.StartNode(f.ID); err != nil {
		t.Fatal(err)
	}
	lc.do("set last 0 0 1\r\nx\r\n", "STORED\r\n")
	c.waitDigests()
	nf := c.Node(f.ID)
	if n := nf.Rep.Stats().Transfers; n == 0 {
		t.Fatal("the restarted replica caught up without a state transfer: the test did not test it")
	}
	// It serves reads once it knows it has caught up (until then it says
	// so: a client moves to another replica).
	want := "VALUE k0 0 2\r\nv0\r\nVALUE k399 399 2\r\nv9\r\nVALUE last 0 1\r\nx\r\nEND\r\n"
	cl := dial(t, nf.Addr())
	var got string
	if !replicatest.WaitFor(func() bool {
		got = cl.line("get k0 k399 last\r\n")
		if strings.HasPrefix(got, "SERVER_ERROR gomu: this replica is catching up.") {
			return false
		}
		got += cl.roundTrip("", len(want)-len(got))
		return true
	}) || got != want {
		t.Fatalf("restarted replica reads %q, want %q", got, want)
	}
}

// binarySet is a binary-protocol Set request of key and value.
func binarySet(key, value string, opaque uint32) string {
	var b []byte
	body := 8 + len(key) + len(value)
	b = append(b, 0x80, 0x01, byte(len(key)>>8), byte(len(key)), 8, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(body))
	b = binary.BigEndian.AppendUint32(b, opaque)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // flags, exptime
	b = append(b, key...)
	return string(append(b, value...))
}

// TestBinaryProtocolReplicated: a binary Set on the leader is replicated;
// on a follower it gets status 0x86 (temporary failure) naming the leader.
func TestBinaryProtocolReplicated(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := dial(t, lead.Addr())
	resp := lc.roundTrip(binarySet("bk", "bv", 7), 24)
	if resp[0] != 0x81 || resp[1] != 0x01 || binary.BigEndian.Uint16([]byte(resp[6:8])) != 0 || binary.BigEndian.Uint32([]byte(resp[12:16])) != 7 {
		t.Fatalf("binary set on the leader: % x", resp)
	}
	for _, f := range c.Followers(lead) {
		fc := dial(t, f.Addr())
		head := fc.roundTrip(binarySet("bk", "other", 9), 24)
		status := binary.BigEndian.Uint16([]byte(head[6:8]))
		body := fc.roundTrip("", int(binary.BigEndian.Uint32([]byte(head[8:12]))))
		want := "gomu: not the leader " + leaderhint.Format(lead.ID, lead.Addr())
		if status != 0x86 || body != want {
			t.Fatalf("binary set on follower %d: status %#x body %q, want 0x86 %q", f.ID, status, body, want)
		}
		dial(t, f.Addr()).do("get bk\r\n", "VALUE bk 0 2\r\nbv\r\nEND\r\n")
	}
	c.waitDigests()
}
