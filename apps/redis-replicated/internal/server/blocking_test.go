package server

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// waitBlocked waits until n of srv's connections are blocked.
func waitBlocked(t *testing.T, srv *Server, n int64) {
	t.Helper()
	if !replicatest.WaitFor(func() bool { return srv.blockedClients.Load() == n }) {
		t.Fatalf("%d clients blocked, want %d", srv.blockedClients.Load(), n)
	}
}

// waiters is the number of waiters in m's store.
func waiters(m *Machine) int {
	n := 0
	m.read(func(st *store.Store) { n = st.Waiters() })
	return n
}

func read(t *testing.T, cn *redistest.Conn) string {
	t.Helper()
	r, err := cn.Read()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBlockingServedFIFO: two clients block on a key; one LPUSH of three
// elements serves each exactly one, the longest-waiting first, as Redis
// does (LPUSH a b c leaves c first); INFO and CLIENT LIST show them blocked
// meanwhile; every replica ends in the same state.
func TestBlockingServedFIFO(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	a, b, p := redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr())
	if err := a.Send(command("BLPOP", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, lead.Srv, 1)
	if err := b.Send(command("BLPOP", "other", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, lead.Srv, 2)
	if info := p.Do("INFO", "clients"); !strings.Contains(info, "blocked_clients:2\r\n") {
		t.Fatalf("INFO clients while two block:\n%s", info)
	}
	if list := p.Do("CLIENT", "LIST"); strings.Count(list, " flags=b ") != 2 {
		t.Fatalf("CLIENT LIST while two block:\n%s", list)
	}
	if r := p.Do("LPUSH", "k", "a", "b", "c"); r != ":3\r\n" {
		t.Fatalf("LPUSH: %q", r)
	}
	if r := read(t, a); r != "*2\r\n"+bulk("k")+bulk("c") {
		t.Fatalf("first waiter got %q", r)
	}
	if r := read(t, b); r != "*2\r\n"+bulk("k")+bulk("b") {
		t.Fatalf("second waiter got %q", r)
	}
	if r := p.Do("LRANGE", "k", "0", "-1"); r != "*1\r\n"+bulk("a") {
		t.Fatalf("left in the list: %q", r)
	}
	waitBlocked(t, lead.Srv, 0)
	if info := p.Do("INFO", "clients"); !strings.Contains(info, "blocked_clients:0\r\n") {
		t.Fatalf("INFO clients after:\n%s", info)
	}
	// The connections go on serving after the wait.
	if r := a.Do("PING"); r != "+PONG\r\n" {
		t.Fatalf("PING after the wait: %q", r)
	}
	want := digest(t, lead.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
			t.Fatalf("follower %d digest differs from the leader's", f.ID)
		}
	}
}

// TestBlockingArrivalOrder: the suite's "BRPOPLPUSH with multiple blocked
// clients". The first client's BRPOPLPUSH reaches the log after the
// second's (held just before it proposes); it still arrived first, so
// the push serves it first: its destination holds a string, so it gets
// WRONGTYPE and the element goes on to the second. Served in log order
// instead, the second would take the element and the first block forever.
func TestBlockingArrivalOrder(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	rd1, rd2, r := redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr())
	if got := r.Do("SET", "target1", "nolist"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	hook := func() {
		if first.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	lead.Srv.beforeBlock.Store(&hook)
	t.Cleanup(func() { lead.Srv.beforeBlock.Store(nil) })
	if err := rd1.Send(command("BRPOPLPUSH", "blist", "target1", "0")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first BRPOPLPUSH never reached its proposal")
	}
	if err := rd2.Send(command("BRPOPLPUSH", "blist", "target2", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, lead.Srv, 1) // the second, logged first
	close(release)
	waitBlocked(t, lead.Srv, 2)
	if got := r.Do("LPUSH", "blist", "foo"); got != ":1\r\n" {
		t.Fatalf("LPUSH: %q", got)
	}
	if got := read(t, rd1); !strings.HasPrefix(got, "-WRONGTYPE") {
		t.Fatalf("first client got %q, want WRONGTYPE", got)
	}
	if got := read(t, rd2); got != bulk("foo") {
		t.Fatalf("second client got %q, want foo", got)
	}
	if got := r.Do("LRANGE", "target2", "0", "-1"); got != "*1\r\n"+bulk("foo") {
		t.Fatalf("target2: %q", got)
	}
	want := digest(t, lead.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
			t.Fatalf("follower %d digest differs from the leader's", f.ID)
		}
	}
}

// TestBlockingTimeoutsAndUnblock: timeouts, MULTI, CLIENT UNBLOCK, a
// client that leaves while blocked, a RESP3 serve.
func TestBlockingTimeoutsAndUnblock(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	srv := lead.Srv
	a, p := redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"BLPOP", "k", "0.1"}, "*-1\r\n"},
		{[]string{"BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"}, "*-1\r\n"},
		{[]string{"BRPOPLPUSH", "k", "d", "0.05"}, "*-1\r\n"},
		{[]string{"BZPOPMIN", "z", "0.05"}, "*-1\r\n"},
		{[]string{"BZMPOP", "0.05", "1", "z", "MAX"}, "*-1\r\n"},
		{[]string{"BLPOP", "k", "-1"}, "-ERR timeout is negative\r\n"},
		{[]string{"BLPOP", "k", "x"}, "-ERR timeout is not a float or out of range\r\n"},
	} {
		start := time.Now()
		if r := a.Do(tc.args...); r != tc.want {
			t.Fatalf("%q: %q, want %q", tc.args, r, tc.want)
		}
		if tc.want == "*-1\r\n" && time.Since(start) < 50*time.Millisecond {
			t.Fatalf("%q timed out after %v", tc.args, time.Since(start))
		}
	}
	if r := a.Do("MULTI"); r != "+OK\r\n" {
		t.Fatal(r)
	}
	a.Do("BLPOP", "k", "0")
	a.Do("BLMOVE", "k", "d", "LEFT", "RIGHT", "0")
	if r := a.Do("EXEC"); r != "*2\r\n*-1\r\n$-1\r\n" {
		t.Fatalf("EXEC of blocking commands: %q", r)
	}

	id := strings.TrimSuffix(strings.TrimPrefix(a.Do("CLIENT", "ID"), ":"), "\r\n")
	for _, tc := range []struct{ reason, want string }{
		{"", "*-1\r\n"}, {"TIMEOUT", "*-1\r\n"}, {"error", "-" + store.ErrClientUnblocked + "\r\n"},
	} {
		if err := a.Send(command("BLPOP", "k", "0")); err != nil {
			t.Fatal(err)
		}
		waitBlocked(t, srv, 1)
		args := []string{"CLIENT", "UNBLOCK", id}
		if tc.reason != "" {
			args = append(args, tc.reason)
		}
		if r := p.Do(args...); r != ":1\r\n" {
			t.Fatalf("%q: %q", args, r)
		}
		if r := read(t, a); r != tc.want {
			t.Fatalf("unblocked with %q: %q, want %q", tc.reason, r, tc.want)
		}
		waitBlocked(t, srv, 0)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "UNBLOCK", id}, ":0\r\n"},
		{[]string{"CLIENT", "UNBLOCK", "999999"}, ":0\r\n"},
		{[]string{"CLIENT", "UNBLOCK", "x", "foo"}, "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
		{[]string{"CLIENT", "UNBLOCK", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"CLIENT", "UNBLOCK"}, "-ERR wrong number of arguments for 'client|unblock' command\r\n"},
		{[]string{"CLIENT", "UNBLOCK", "1", "timeout", "x"}, "-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n"},
		{[]string{"GOMU.BLOCK", "x", "BLPOP", "k", "0"}, "-ERR unknown command 'GOMU.BLOCK', with args beginning with: 'x' 'BLPOP' 'k' '0' \r\n"},
	} {
		if r := p.Do(tc.args...); r != tc.want {
			t.Fatalf("%q: %q, want %q", tc.args, r, tc.want)
		}
	}

	// A client that leaves while blocked takes its waiter with it: the
	// element pushed next stays.
	gone := redistest.Dial(t, lead.Addr())
	if err := gone.Send(command("BLPOP", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, srv, 1)
	gone.Close()
	waitBlocked(t, srv, 0)
	if !replicatest.WaitFor(func() bool { return waiters(lead.M) == 0 }) {
		t.Fatal("the waiter of a client that left is still registered")
	}
	if r := p.Do("RPUSH", "k", "kept"); r != ":1\r\n" {
		t.Fatalf("RPUSH: %q", r)
	}
	if r := p.Do("LPOP", "k"); r != bulk("kept") {
		t.Fatalf("LPOP: %q", r)
	}

	// RESP3: the served reply is rewritten like any other.
	r3 := redistest.Dial(t, lead.Addr())
	r3.Do("HELLO", "3")
	if err := r3.Send(command("BZPOPMAX", "z", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, srv, 1)
	p.Do("ZADD", "z", "1.5", "m")
	if r := read(t, r3); r != "*3\r\n"+bulk("z")+bulk("m")+",1.5\r\n" {
		t.Fatalf("RESP3 BZPOPMAX: %q", r)
	}
}

// TestBlockingAcrossLeaderChange: a client blocked on a leader that loses
// the lead gets the UNBLOCKED error once the new leader ends the foreign
// waiters, and no element pushed afterwards is lost to it.
func TestBlockingAcrossLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for an election")
	}
	c := startCluster(t, 3)
	old := c.WaitLeader()
	a := redistest.Dial(t, old.Addr())
	if err := a.Send(command("BLPOP", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, old.Srv, 1)
	if !replicatest.WaitFor(func() bool {
		for _, n := range c.Live() {
			if waiters(n.M) != 1 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the waiter did not reach every replica")
	}
	old.Rep.Pause()
	var next *node
	if !replicatest.WaitFor(func() bool {
		next = nil
		for _, n := range c.Live() {
			if n != old && n.Rep.Role() == consensus.Leader {
				next = n
			}
		}
		return next != nil
	}) {
		t.Fatalf("no new leader while %d was paused", old.ID)
	}
	if !replicatest.WaitFor(func() bool { return waiters(next.M) == 0 }) {
		t.Fatal("the new leader kept the old leader's waiter")
	}
	nc := redistest.Dial(t, next.Addr())
	var r string
	if !replicatest.WaitFor(func() bool { r = nc.Do("RPUSH", "k", "x", "y"); return r == ":2\r\n" }) {
		t.Fatalf("RPUSH on the new leader: %q", r)
	}
	old.Rep.Resume()
	if r := read(t, a); r != "-"+store.ErrLeadershipChanged+"\r\n" {
		t.Fatalf("the blocked client got %q", r)
	}
	if r := nc.Do("LRANGE", "k", "0", "-1"); r != "*2\r\n"+bulk("x")+bulk("y") {
		t.Fatalf("the list after the change: %q", r)
	}
	// The new leader's own clients block and are served as usual.
	b := redistest.Dial(t, next.Addr())
	if err := b.Send(command("BRPOP", "q", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, next.Srv, 1)
	nc.Do("RPUSH", "q", "1")
	if r := read(t, b); r != "*2\r\n"+bulk("q")+bulk("1") {
		t.Fatalf("served on the new leader: %q", r)
	}
}

// TestBlockingOrphansEnded: a waiter of the leader's own process that no
// connection waits for (its gomu.block committed after the connection gave
// up) is ended by the leader, so it pops nothing.
func TestBlockingOrphansEnded(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	var p proposal
	p.reset(propBatch)
	id := string(lead.Srv.nonce[:]) + "orphan-of-a-gone-connection"
	p.add([][]byte{[]byte(store.BlockCommand), []byte(id), []byte("BLPOP"), []byte("k"), []byte("0")})
	res, err := lead.Srv.replicate(deadline.New(), p.seal(time.Now().UnixMilli(), 1))
	if err != nil || len(res) != 0 {
		t.Fatalf("gomu.block: %q, %v", res, err)
	}
	if !replicatest.WaitFor(func() bool { return waiters(lead.M) == 0 }) {
		t.Fatal("the orphan waiter was never ended")
	}
	cn := redistest.Dial(t, lead.Addr())
	cn.Do("RPUSH", "k", "x")
	if r := cn.Do("LLEN", "k"); r != ":1\r\n" {
		t.Fatalf("LLEN after the push: %q", r)
	}
}

// TestBlockingDifferential sends one seeded random stream of pushes, pops
// and blocking commands (served at once, or timing out after 10 ms) to
// Redis 7 and to the gomu leader and compares every reply, then the
// replicas' digests. Pipelined: a command after a blocking one waits for it.
func TestBlockingDifferential(t *testing.T) {
	raddr := redistest.Start(t)
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	rc, gc := redistest.Dial(t, raddr), redistest.Dial(t, lead.Addr())
	r := rand.New(rand.NewPCG(20261205, 1))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	key := func() string { return pick("a", "b", "c", "z", "s") }
	for i := range 300 {
		var args []string
		switch r.IntN(12) {
		case 0, 1:
			args = []string{pick("LPUSH", "RPUSH"), key(), pick("1", "2", "3"), pick("x", "y")}
		case 2:
			args = []string{"ZADD", key(), pick("1", "2.5", "-3"), pick("m", "n", "o")}
		case 3:
			args = []string{"SET", "s", "v"}
		case 4:
			args = []string{pick("BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"), key(), key(), pick("0.01", "x", "-1")}
		case 5:
			args = []string{"BLMOVE", key(), key(), pick("LEFT", "RIGHT"), pick("LEFT", "RIGHT", "UP"), "0.01"}
		case 6:
			args = []string{"BRPOPLPUSH", key(), key(), "0.01"}
		case 7:
			args = []string{"BLMPOP", "0.01", "2", key(), key(), pick("LEFT", "RIGHT"), "COUNT", pick("1", "2", "0")}
		case 8:
			args = []string{"BZMPOP", "0.01", pick("1", "0"), key(), pick("MIN", "MAX", "FOO")}
		case 9:
			args = []string{"DEL", key()}
		case 10:
			args = []string{"LRANGE", key(), "0", "-1"}
		default:
			args = []string{"ZRANGE", key(), "0", "-1", "WITHSCORES"}
		}
		if want, got := rc.Do(args...), gc.Do(args...); got != want {
			t.Fatalf("command %d %q:\n gomu  %q\n redis %q", i, args, got, want)
		}
	}
	// RESP3: served at once, and timed out.
	r3, g3 := redistest.Dial(t, raddr), redistest.Dial(t, lead.Addr())
	for _, args := range [][]string{{"HELLO", "3"}, {"ZADD", "zz", "1.5", "m", "2", "n", "3", "o"}, {"BZPOPMIN", "zz", "0"},
		{"BZMPOP", "0", "1", "zz", "MAX", "COUNT", "2"}, {"BLPOP", "nokey", "0.01"}, {"BLMOVE", "nokey", "x", "LEFT", "LEFT", "0.01"},
		{"BZMPOP", "0.01", "1", "zz", "MIN"}} {
		want, got := r3.Do(args...), g3.Do(args...)
		if args[0] != "HELLO" && got != want {
			t.Fatalf("RESP3 %q:\n gomu  %q\n redis %q", args, got, want)
		}
	}
	// The reply to a command before a blocking one leaves at once.
	w := redistest.Dial(t, lead.Addr())
	if err := w.Send(append(command("SET", "before", "1"), command("BLPOP", "nokey", "0.5")...)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := read(t, w); r != "+OK\r\n" || time.Since(start) > 400*time.Millisecond {
		t.Fatalf("the reply before BLPOP: %q after %v", r, time.Since(start))
	}
	if r := read(t, w); r != "*-1\r\n" {
		t.Fatalf("BLPOP after SET: %q", r)
	}
	// A pipelined command after a blocking one is answered after it.
	raw := append(command("BLPOP", "nokey", "0.01"), command("PING")...)
	for _, cn := range []*redistest.Conn{rc, gc} {
		if err := cn.Send(raw); err != nil {
			t.Fatal(err)
		}
		if r1, r2 := read(t, cn), read(t, cn); r1 != "*-1\r\n" || r2 != "+PONG\r\n" {
			t.Fatalf("pipelined after BLPOP: %q then %q", r1, r2)
		}
	}
	want := digest(t, lead.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
			t.Fatalf("follower %d digest differs from the leader's", f.ID)
		}
	}
}

// TestBlockingExactlyOnce races serves against timeouts: clients loop on
// BLPOP with a short timeout while another pushes; every element pushed is
// received by exactly one client or still in the list.
func TestBlockingExactlyOnce(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	const clients, pushes = 4, 400
	stop := make(chan struct{})
	got := make(chan []string, clients)
	for range clients {
		cn := redistest.Dial(t, lead.Addr())
		go func() {
			var mine []string
			defer func() { got <- mine }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := cn.Do("BLPOP", "q", pick3("0.001", "0.005", "0.02"))
				if r == "*-1\r\n" {
					continue
				}
				parts := strings.Split(r, "\r\n")
				if len(parts) != 6 || parts[2] != "q" {
					mine = append(mine, "bad reply "+r)
					return
				}
				mine = append(mine, parts[4])
			}
		}()
	}
	p := redistest.Dial(t, lead.Addr())
	for i := range pushes {
		if r := p.Do("RPUSH", "q", strconv.Itoa(i)); !strings.HasPrefix(r, ":") {
			t.Fatalf("RPUSH: %q", r)
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	seen := map[string]int{}
	for range clients {
		for _, x := range <-got {
			seen[x]++
		}
	}
	rest := strings.Split(p.Do("LRANGE", "q", "0", "-1"), "\r\n")
	for i := 2; i < len(rest); i += 2 {
		seen[rest[i]]++
	}
	for i := range pushes {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("element %d received or kept %d times", i, n)
		}
		delete(seen, strconv.Itoa(i))
	}
	if len(seen) > 0 {
		t.Errorf("unexpected: %v", seen)
	}
	if !replicatest.WaitFor(func() bool { return waiters(lead.M) == 0 }) {
		t.Fatalf("%d waiters left", waiters(lead.M))
	}
}

func pick3(a, b, c string) string {
	return [3]string{a, b, c}[rand.IntN(3)]
}

// TestBlockingStandalone: without a replica the same paths apply directly.
func TestBlockingStandalone(t *testing.T) {
	srv := startStandalone(t)
	a, p := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	if r := a.Do("BLMOVE", "k", "d", "LEFT", "LEFT", "0.02"); r != "*-1\r\n" {
		t.Fatalf("timeout: %q", r)
	}
	if err := a.Send(command("BLMOVE", "k", "d", "LEFT", "LEFT", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, srv, 1)
	p.Do("RPUSH", "k", "x")
	if r := read(t, a); r != bulk("x") {
		t.Fatalf("served: %q", r)
	}
	if r := p.Do("LRANGE", "d", "0", "-1"); r != "*1\r\n"+bulk("x") {
		t.Fatalf("moved: %q", r)
	}
}

// TestBlockingDebugSleepInTransaction: a DEBUG SLEEP queued in MULTI moves
// the transaction's clock on, so a key it gives a value and a TTL shorter
// than the sleep has expired when EXEC serves the blocked clients: the
// waiter stays blocked and the key is gone, as in Redis. Any other DEBUG
// fails the transaction.
func TestBlockingDebugSleepInTransaction(t *testing.T) {
	srv := startStandalone(t)
	a, p := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	if err := a.Send(command("BRPOP", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, srv, 1)
	for _, step := range []struct{ cmd, want string }{
		{"MULTI", "+OK\r\n"},
		{"RPUSH k hello", "+QUEUED\r\n"},
		{"PEXPIRE k 100", "+QUEUED\r\n"},
		{"DEBUG SLEEP 0.2", "+QUEUED\r\n"},
		{"EXEC", "*3\r\n:1\r\n:1\r\n+OK\r\n"},
		{"EXISTS k", ":0\r\n"},
		{"MULTI", "+OK\r\n"},
		{"DEBUG RELOAD", "-ERR gomu: only DEBUG SLEEP can be queued in a transaction\r\n"},
		{"EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n"},
	} {
		if r := p.Do(strings.Fields(step.cmd)...); r != step.want {
			t.Fatalf("%s: %q, want %q", step.cmd, r, step.want)
		}
	}
	if list := p.Do("CLIENT", "LIST"); strings.Count(list, " flags=b ") != 1 {
		t.Fatalf("the waiter was served by an expired key:\n%s", list)
	}
}
