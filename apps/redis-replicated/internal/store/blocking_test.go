package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// blockRig runs commands on a store as the applier does (ServeReady after
// each) and records what Env.Unblock delivers.
type blockRig struct {
	s   *Store
	env *Env
	got []string // "id reply" per delivery, in order
}

func newBlockRig() *blockRig {
	r := &blockRig{s: New()}
	r.env = &Env{NowMs: 1_700_000_000_000, Rand: rand.New(rand.NewPCG(1, 2)),
		Unblock: func(id string, reply []byte) { r.got = append(r.got, id+" "+string(reply)) }}
	return r
}

func (r *blockRig) do(args ...string) string {
	out := execArgs(r.s, r.env, args)
	if r.s.HasReady() {
		r.s.ServeReady(r.env)
	}
	return string(out)
}

// blockStep is one command and its reply ("" for a command that blocked).
type blockStep struct {
	args []string
	want string
}

func blk(id string, args ...string) []string { return append([]string{BlockCommand, id}, args...) }

// blkAt is gomu.blockat: a waiter that arrived at at (ns).
func blkAt(id string, at int64, args ...string) []string {
	return append([]string{BlockAtCommand, id, strconv.FormatInt(at, 10)}, args...)
}

// TestBlockingArrivalOrder: waiters are served in the order their
// commands arrived, whatever the order their entries took in the log.
func TestBlockingArrivalOrder(t *testing.T) {
	runBlockCases(t, []blockCase{
		{name: "a later entry that arrived earlier is served first",
			steps: []blockStep{
				{blkAt("b", 200, "blpop", "k", "0"), ""},
				{blkAt("a", 100, "blpop", "k", "0"), ""},
				{[]string{"rpush", "k", "1", "2"}, ":2\r\n"},
			},
			delivered: []string{"a *2\r\n$1\r\nk\r\n$1\r\n1\r\n", "b *2\r\n$1\r\nk\r\n$1\r\n2\r\n"}},
		{name: "brpoplpush with multiple blocked clients, logged out of order",
			steps: []blockStep{
				{[]string{"set", "target1", "nolist"}, "+OK\r\n"},
				{blkAt("rd2", 20, "brpoplpush", "blist", "target2", "0"), ""},
				{blkAt("rd1", 10, "brpoplpush", "blist", "target1", "0"), ""},
				{[]string{"lpush", "blist", "foo"}, ":1\r\n"},
				{[]string{"lrange", "target2", "0", "-1"}, "*1\r\n$3\r\nfoo\r\n"},
			},
			delivered: []string{"rd1 -" + errWrongType + "\r\n", "rd2 $3\r\nfoo\r\n"}},
		{name: "equal arrivals keep log order",
			steps: []blockStep{
				{blkAt("a", 100, "blpop", "k", "0"), ""},
				{blkAt("b", 100, "blpop", "k", "0"), ""},
				{[]string{"rpush", "k", "1", "2"}, ":2\r\n"},
			},
			delivered: []string{"a *2\r\n$1\r\nk\r\n$1\r\n1\r\n", "b *2\r\n$1\r\nk\r\n$1\r\n2\r\n"}},
		{name: "gomu.block joins at the end",
			steps: []blockStep{
				{blkAt("a", 300, "blpop", "k", "0"), ""},
				{blk("b", "blpop", "k", "0"), ""},
				{blkAt("c", 100, "blpop", "k", "0"), ""},
				{[]string{"rpush", "k", "1", "2", "3"}, ":3\r\n"},
			},
			delivered: []string{"c *2\r\n$1\r\nk\r\n$1\r\n1\r\n", "a *2\r\n$1\r\nk\r\n$1\r\n2\r\n", "b *2\r\n$1\r\nk\r\n$1\r\n3\r\n"}},
		{name: "a waiter on two keys takes its place in each queue",
			steps: []blockStep{
				{blkAt("c", 300, "blpop", "k2", "0"), ""},
				{blkAt("b", 200, "blpop", "k1", "k2", "0"), ""},
				{blkAt("a", 100, "blpop", "k2", "k1", "0"), ""},
				{[]string{"rpush", "k1", "x"}, ":1\r\n"},
				{[]string{"rpush", "k2", "y", "z"}, ":2\r\n"},
			},
			delivered: []string{"a *2\r\n$2\r\nk1\r\n$1\r\nx\r\n", "b *2\r\n$2\r\nk2\r\n$1\r\ny\r\n", "c *2\r\n$2\r\nk2\r\n$1\r\nz\r\n"}},
		{name: "served at once whatever its arrival",
			steps: []blockStep{
				{[]string{"rpush", "k", "x"}, ":1\r\n"},
				{blkAt("a", 5, "lpop", "k"), "-ERR gomu: not a blocking command\r\n"},
				{blkAt("a", 5, "blpop", "k", "0"), "*2\r\n$1\r\nk\r\n$1\r\nx\r\n"},
			}},
		{name: "an arrival that is not a time is refused",
			steps: []blockStep{
				{blkAt("a", 5, "blpop", "k", "0")[:2], "-ERR wrong number of arguments for 'gomu.blockat' command\r\n"},
				{[]string{BlockAtCommand, "a", "soon", "blpop", "k", "0"}, "-ERR gomu: arrival is not a time in ns\r\n"},
				{[]string{BlockAtCommand, "a", "-9223372036854775808", "blpop", "k", "0"}, "-ERR gomu: arrival is not a time in ns\r\n"},
			}},
	})
}

func TestBlockingServe(t *testing.T) {
	runBlockCases(t, []blockCase{
		{name: "fifo across two waiters and three pushes",
			steps: []blockStep{
				{blk("a", "blpop", "k", "0"), ""},
				{blk("b", "blpop", "k", "0"), ""},
				{[]string{"rpush", "k", "1", "2", "3"}, ":3\r\n"},
				{[]string{"lrange", "k", "0", "-1"}, "*1\r\n$1\r\n3\r\n"},
			},
			delivered: []string{"a *2\r\n$1\r\nk\r\n$1\r\n1\r\n", "b *2\r\n$1\r\nk\r\n$1\r\n2\r\n"}},
		{name: "served at once when ready",
			steps: []blockStep{
				{[]string{"rpush", "k", "x"}, ":1\r\n"},
				{blk("a", "brpop", "nokey", "k", "0"), "*2\r\n$1\r\nk\r\n$1\r\nx\r\n"},
				{[]string{"exists", "k"}, ":0\r\n"},
			}},
		{name: "wrong type at once is an error, later is passed over",
			steps: []blockStep{
				{[]string{"set", "s", "v"}, "+OK\r\n"},
				{blk("a", "blpop", "s", "0"), "-" + errWrongType + "\r\n"},
				{blk("b", "blpop", "k", "0"), ""},
				{[]string{"set", "k", "v"}, "+OK\r\n"},
				{[]string{"del", "k"}, ":1\r\n"},
				{[]string{"lpush", "k", "z"}, ":1\r\n"},
			},
			delivered: []string{"b *2\r\n$1\r\nk\r\n$1\r\nz\r\n"}},
		{name: "blmove chains into a waiter on the destination",
			steps: []blockStep{
				{blk("a", "blmove", "src", "mid", "left", "right", "0"), ""},
				{blk("b", "brpoplpush", "mid", "end", "0"), ""},
				{blk("c", "blpop", "end", "0"), ""},
				{[]string{"lpush", "src", "e"}, ":1\r\n"},
				{[]string{"dbsize"}, ":0\r\n"},
			},
			delivered: []string{"a $1\r\ne\r\n", "b $1\r\ne\r\n", "c *2\r\n$3\r\nend\r\n$1\r\ne\r\n"}},
		{name: "served blmove with a wrong-typed destination gets WRONGTYPE and pops nothing",
			steps: []blockStep{
				{[]string{"set", "d", "v"}, "+OK\r\n"},
				{blk("a", "blmove", "src", "d", "left", "right", "0"), ""},
				{[]string{"rpush", "src", "e"}, ":1\r\n"},
				{[]string{"llen", "src"}, ":1\r\n"},
			},
			delivered: []string{"a -" + errWrongType + "\r\n"}},
		{name: "sorted sets and mpop",
			steps: []blockStep{
				{blk("a", "bzpopmax", "z", "0"), ""},
				{blk("b", "bzmpop", "0", "2", "y", "z", "min", "count", "5"), ""},
				{blk("c", "blmpop", "0", "1", "l", "right", "count", "2"), ""},
				{[]string{"zadd", "z", "1", "m", "2", "n", "3", "o"}, ":3\r\n"},
				{[]string{"rpush", "l", "1", "2", "3"}, ":3\r\n"},
			},
			delivered: []string{
				"a *3\r\n$1\r\nz\r\n$1\r\no\r\n$1\r\n3\r\n",
				"b *2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n*2\r\n$1\r\nn\r\n$1\r\n2\r\n",
				"c *2\r\n$1\r\nl\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"}},
		{name: "a list does not serve a sorted-set waiter queued first",
			steps: []blockStep{
				{blk("a", "bzpopmin", "k", "0"), ""},
				{blk("b", "blpop", "k", "0"), ""},
				{[]string{"rpush", "k", "x"}, ":1\r\n"},
			},
			delivered: []string{"b *2\r\n$1\r\nk\r\n$1\r\nx\r\n"}, waiters: 1},
		{name: "unblock: timeout, error, and after a serve",
			steps: []blockStep{
				{blk("a", "blpop", "k", "0"), ""},
				{blk("b", "blmove", "k", "d", "left", "left", "0"), ""},
				{blk("c", "blpop", "k", "0"), ""},
				{[]string{UnblockCommand, "a", "timeout"}, ":1\r\n"},
				{[]string{UnblockCommand, "b", "TIMEOUT"}, ":1\r\n"},
				{[]string{UnblockCommand, "a", "timeout"}, ":0\r\n"},
				{[]string{"rpush", "k", "x"}, ":1\r\n"},
				{[]string{UnblockCommand, "c", "error"}, ":0\r\n"},
			},
			delivered: []string{"a *-1\r\n", "b *-1\r\n", "c *2\r\n$1\r\nk\r\n$1\r\nx\r\n"}},
		{name: "unblock with error",
			steps: []blockStep{
				{blk("a", "bzpopmin", "k", "0"), ""},
				{[]string{UnblockCommand, "a", "error"}, ":1\r\n"},
			},
			delivered: []string{"a -" + ErrClientUnblocked + "\r\n"}},
		{name: "unblockall keeps the new leader's own",
			steps: []blockStep{
				{blk("old1", "blpop", "k", "0"), ""},
				{blk("new1", "blpop", "k", "0"), ""},
				{blk("old2", "bzpopmin", "z", "0"), ""},
				{[]string{UnblockAllCommand, "new"}, ":2\r\n"},
				{[]string{"rpush", "k", "x"}, ":1\r\n"},
			},
			delivered: []string{"old1 -" + ErrLeadershipChanged + "\r\n", "old2 -" + ErrLeadershipChanged + "\r\n",
				"new1 *2\r\n$1\r\nk\r\n$1\r\nx\r\n"}},
		{name: "argument errors and a duplicate id",
			steps: []blockStep{
				{blk("a", "blpop", "k", "x"), "-ERR timeout is not a float or out of range\r\n"},
				{blk("a", "blpop", "k", "-1"), "-ERR timeout is negative\r\n"},
				{blk("a", "blpop", "k"), "-ERR wrong number of arguments for 'blpop' command\r\n"},
				{blk("a", "lpop", "k"), "-ERR gomu: not a blocking command\r\n"},
				{blk("a", "blpop", "k", "0"), ""},
				{blk("a", "blpop", "k", "0"), "-ERR gomu: waiter id in use\r\n"},
			},
			waiters: 1},
		{name: "a transaction's pushes are served after it, as Redis serves after EXEC",
			steps: []blockStep{
				{blk("a", "blpop", "k", "0"), ""},
				{[]string{"blpop", "k", "0"}, "*-1\r\n"}, // as inside MULTI: never blocks
			},
			waiters: 1},
	})
}

// blockCase is a script of commands on one store and what its waiters'
// owners got at the end, in order, and how many waiters are left.
type blockCase struct {
	name      string
	steps     []blockStep
	delivered []string
	waiters   int
}

// runBlockCases runs each case on a fresh blockRig.
func runBlockCases(t *testing.T, cases []blockCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newBlockRig()
			for i, st := range tc.steps {
				if got := r.do(st.args...); got != st.want {
					t.Fatalf("step %d %q: got %q, want %q", i, st.args, got, st.want)
				}
			}
			if !slices.Equal(r.got, tc.delivered) {
				t.Fatalf("delivered %q, want %q", r.got, tc.delivered)
			}
			if n := r.s.Waiters(); n != tc.waiters {
				t.Fatalf("%d waiters left, want %d", n, tc.waiters)
			}
		})
	}
}

// TestBlockingServeAfterTransaction: pushes and pops in one transaction
// are served after all of it (what the applier does for EXEC).
func TestBlockingServeAfterTransaction(t *testing.T) {
	r := newBlockRig()
	r.do(blk("a", "blpop", "k", "0")...)
	execArgs(r.s, r.env, []string{"rpush", "k", "1", "2"})
	if got := string(execArgs(r.s, r.env, []string{"lpop", "k"})); got != "$1\r\n1\r\n" {
		t.Fatalf("lpop in the transaction: %q", got)
	}
	r.s.ServeReady(r.env)
	if want := []string{"a *2\r\n$1\r\nk\r\n$1\r\n2\r\n"}; !slices.Equal(r.got, want) {
		t.Fatalf("delivered %q, want %q", r.got, want)
	}
}

// TestBlockingReplayDigest: two stores applying the same log end equal,
// waiters included, and a snapshot with waiters restores them.
func TestBlockingReplayDigest(t *testing.T) {
	log := [][]string{
		blk("a", "blpop", "k1", "k2", "0"),
		blk("b", "bzmpop", "1.5", "1", "z", "max"),
		blk("c", "blmove", "k2", "k3", "right", "left", "0"),
		{"rpush", "k2", "x"},
		blk("d", "brpop", "k2", "0"),
		blk("e", "blpop", "k4", "0.25"),
	}
	stores := []*blockRig{newBlockRig(), newBlockRig()}
	for _, r := range stores {
		for _, args := range log {
			r.do(args...)
		}
	}
	if stores[0].s.Digest() != stores[1].s.Digest() {
		t.Fatal("digests differ after the same log")
	}
	if n := stores[0].s.Waiters(); n != 4 {
		t.Fatalf("%d waiters, want 4", n)
	}
	var snap bytes.Buffer
	if err := stores[0].s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	re := newBlockRig()
	if err := re.s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if re.s.Digest() != stores[0].s.Digest() {
		t.Fatal("restored digest differs")
	}
	// The restored waiters keep their order and are served alike.
	for _, r := range []*blockRig{stores[0], re} {
		r.got = nil
		r.do("rpush", "k1", "1")
		r.do("rpush", "k2", "2", "3")
		r.do("zadd", "z", "1", "m")
	}
	if !slices.Equal(re.got, stores[0].got) || len(re.got) != 3 {
		t.Fatalf("restored served %q, original %q", re.got, stores[0].got)
	}
	if re.s.Digest() != stores[0].s.Digest() {
		t.Fatal("digests differ after serving")
	}
	// Once its waiters are gone a store snapshots as one that never had any.
	var plain, after bytes.Buffer
	New().Snapshot(&plain)
	gone := newBlockRig()
	gone.do(blk("x", "BLPOP", "k", "0")...)
	gone.do(UnblockCommand, "x", "timeout")
	gone.s.Snapshot(&after)
	if gone.s.Waiters() != 0 || !bytes.Equal(plain.Bytes(), after.Bytes()) {
		t.Fatalf("snapshot after the waiter left: %q, empty store's %q", after.Bytes(), plain.Bytes())
	}
}

func TestBlockTimeout(t *testing.T) {
	tests := []struct {
		args []string
		ms   int64
		ok   bool
	}{
		{[]string{"blpop", "k", "0"}, 0, true},
		{[]string{"blpop", "k", "0.05"}, 50, true},
		{[]string{"blpop", "k", "0.001"}, 1, true},
		{[]string{"blpop", "k", "1e-5"}, 1, true},
		{[]string{"blpop", "k", "0.0015"}, 2, true},
		{[]string{"blpop", "k", "-0.0001"}, 0, true},
		{[]string{"blpop", "k", "0x10"}, 16000, true},
		{[]string{"blpop", "k", "1e15"}, 1e18, true},
		{[]string{"blpop", "k", "1e16"}, 0, false},
		{[]string{"blpop", "k", "inf"}, 0, false},
		{[]string{"blpop", "k", " 1"}, 0, false},
		{[]string{"blmove", "a", "b", "left", "right", "2"}, 2000, true},
		{[]string{"blmove", "a", "b", "up", "right", "2"}, 0, false},
		{[]string{"bzmpop", "1.5", "1", "z", "min"}, 1500, true},
		{[]string{"brpoplpush", "a", "b", "3"}, 3000, true},
		{[]string{"lpop", "a"}, 0, false},
	}
	for _, tc := range tests {
		b := make([][]byte, len(tc.args))
		for i, a := range tc.args {
			b[i] = []byte(a)
		}
		ms, ok := BlockTimeout(b)
		if ms != tc.ms || ok != tc.ok {
			t.Errorf("%q: got %d %v, want %d %v", tc.args, ms, ok, tc.ms, tc.ok)
		}
	}
}

// TestBlockingDiff compares the replies of the blocking commands that do
// not block (served at once, argument errors, short timeouts that expire)
// with Redis's.
func TestBlockingDiff(t *testing.T) {
	var script []step
	for _, c := range [][]string{
		{"blpop", "k", "x"}, {"blpop", "k", "-1"}, {"blpop", "k", "nan"}, {"blpop", "k", "inf"}, {"blpop", "k", "1e16"},
		{"blpop", "k", " 1"}, {"blpop", "k", ""}, {"blpop", "k", "0.05"}, {"brpop", "a", "b", "0.02"},
		{"blmove", "a", "b", "foo", "left", "-1"}, {"blmove", "a", "b", "left", "foo", "x"}, {"blmove", "a", "b", "left", "left", "x"},
		{"blmove", "a", "b", "left", "left", "0.02"}, {"brpoplpush", "a", "b", "x"}, {"brpoplpush", "a", "b", "0.02"},
		{"blmpop", "x", "0", "a", "left"}, {"blmpop", "x", "1", "a", "foo"}, {"blmpop", "x", "1", "a", "left"},
		{"blmpop", "0.01", "1", "a", "left", "count", "0"}, {"blmpop", "0.01", "1", "a", "left", "count"},
		{"blmpop", "0.01", "3", "a", "left"}, {"blmpop", "0.02", "2", "a", "b", "right", "count", "3"},
		{"bzpopmin", "a", "x"}, {"bzpopmax", "a", "0.02"}, {"bzmpop", "x", "0", "a", "min"}, {"bzmpop", "x", "1", "a", "foo"},
		{"bzmpop", "0.01", "1", "a", "min", "count", "0"}, {"bzmpop", "0.02", "1", "a", "max"},
		{"set", "s", "v"}, {"blpop", "s", "0.01"}, {"blpop", "nokey", "s", "0.01"}, {"bzpopmin", "s", "0.01"},
		{"blmove", "s", "d", "left", "left", "0.01"}, {"rpush", "l", "1", "2", "3", "4"},
		{"blmove", "l", "s", "left", "left", "0.01"}, {"blmove", "nokey", "s", "left", "left", "0.01"},
		{"blpop", "nokey", "l", "0"}, {"brpop", "l", "0"}, {"blmove", "l", "l2", "right", "left", "0"},
		{"brpoplpush", "l2", "l", "0"}, {"blmpop", "0", "2", "nokey", "l", "left", "count", "10"}, {"exists", "l"},
		{"zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"}, {"bzpopmin", "z", "0"}, {"bzpopmax", "nokey", "z", "0"},
		{"blpop", "z", "0.01"}, {"bzmpop", "0", "1", "z", "max", "count", "1"}, {"bzmpop", "0", "2", "l", "z", "min", "count", "9"},
		{"bzmpop", "0", "2", "s", "z", "min"}, {"exists", "z"},
	} {
		script = append(script, cmd(c...))
	}
	runBlockDiff(t, script)
}

// runBlockDiff is runDiff for a server's view of blocking: each command
// runs as the server proposes a blocking one (in gomu.block) and one that
// blocks is timed out with gomu.unblock, whose delivery is its reply. So
// Redis's timeout replies are compared too (its short timeouts expire).
func runBlockDiff(t *testing.T, script []step) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	r := newBlockRig()
	for i, st := range script {
		want := rc.Do(st.args...)
		args := st.args
		if Lookup([]byte(args[0])).Flags&Blocking != 0 {
			args = blk("w", args...)
		}
		got := r.do(args...)
		if got == "" {
			r.got = nil
			r.do(UnblockCommand, "w", "timeout")
			if len(r.got) != 1 {
				t.Fatalf("step %d %q: blocked, then delivered %q", i, st.args, r.got)
			}
			got = strings.TrimPrefix(r.got[0], "w ")
		}
		if got != want {
			t.Fatalf("step %d %q:\n got %q\nwant %q", i, st.args, got, want)
		}
	}
}

// TestBlockingInMultiDiff: inside MULTI nothing blocks, and BLMOVE's
// answer is then a null bulk, unlike its timeout.
func TestBlockingInMultiDiff(t *testing.T) {
	rc := redistest.Dial(t, redistest.Start(t))
	r := newBlockRig()
	rc.Do("multi")
	var got []byte
	cmds := [][]string{{"blmove", "a", "b", "left", "left", "0"}, {"brpoplpush", "a", "b", "0"},
		{"blpop", "a", "0"}, {"bzpopmin", "a", "0"}, {"blmpop", "0", "1", "a", "left"}, {"bzmpop", "0", "1", "a", "min"}}
	for _, c := range cmds {
		rc.Do(c...)
		got = append(got, r.do(c...)...)
	}
	want := rc.Do("exec")
	if got := fmt.Sprintf("*%d\r\n%s", len(cmds), got); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestBlockingServedByEveryWrite: every write that gives a key a new list
// or sorted set serves its waiter.
func TestBlockingServedByEveryWrite(t *testing.T) {
	tests := []struct {
		name  string
		wait  []string
		setup [][]string
		write []string
	}{
		{"rename", []string{"blpop", "k", "0"}, [][]string{{"rpush", "src", "x"}}, []string{"rename", "src", "k"}},
		{"copy", []string{"blpop", "k", "0"}, [][]string{{"rpush", "src", "x"}}, []string{"copy", "src", "k"}},
		{"lmove", []string{"blpop", "k", "0"}, [][]string{{"rpush", "src", "x"}}, []string{"lmove", "src", "k", "left", "left"}},
		{"rpoplpush", []string{"brpop", "k", "0"}, [][]string{{"rpush", "src", "x"}}, []string{"rpoplpush", "src", "k"}},
		{"sort store", []string{"blpop", "k", "0"}, [][]string{{"rpush", "src", "2", "1"}}, []string{"sort", "src", "store", "k"}},
		{"zunionstore", []string{"bzpopmin", "k", "0"}, [][]string{{"zadd", "a", "1", "m"}}, []string{"zunionstore", "k", "1", "a"}},
		{"zrangestore", []string{"bzpopmax", "k", "0"}, [][]string{{"zadd", "a", "1", "m"}}, []string{"zrangestore", "k", "a", "0", "-1"}},
		{"zincrby", []string{"bzmpop", "0", "1", "k", "min"}, nil, []string{"zincrby", "k", "1", "m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newBlockRig()
			if got := r.do(blk("w", tc.wait...)...); got != "" {
				t.Fatalf("%q did not block: %q", tc.wait, got)
			}
			for _, s := range tc.setup {
				r.do(s...)
			}
			r.do(tc.write...)
			served := r.s.Waiters() == 0 && len(r.got) == 1 && !strings.HasPrefix(r.got[0], "w -")
			if !served {
				t.Fatalf("after %q: %d waiters, delivered %q", tc.write, r.s.Waiters(), r.got)
			}
		})
	}
}

// TestSignalKey: a value that grows in place (a stream's XADD, one day)
// serves its waiters through signalKey, which put does not see.
func TestSignalKey(t *testing.T) {
	r := newBlockRig()
	r.do(blk("w", "blpop", "k", "0")...)
	r.s.signalKey([]byte("other"))
	if r.s.HasReady() {
		t.Fatal("a key nobody waits on was noted ready")
	}
	l := &listValue{}
	l.pushBack([]byte("x"))
	r.s.keys["k"] = &value{kind: kindList, list: l} // grown behind put's back
	r.s.signalKey([]byte("k"))
	r.s.ServeReady(r.env)
	if want := []string{"w *2\r\n$1\r\nk\r\n$1\r\nx\r\n"}; !slices.Equal(r.got, want) {
		t.Fatalf("delivered %q, want %q", r.got, want)
	}
}

// TestBlockingArrivalSnapshot: a restored store keeps its waiters'
// arrivals, so a waiter that arrives between two of them later takes the
// same place as on a replica that applied the whole log.
func TestBlockingArrivalSnapshot(t *testing.T) {
	log := [][]string{
		blkAt("c", 300, "blpop", "k", "0"),
		blkAt("a", 100, "blpop", "k", "0"),
	}
	orig := newBlockRig()
	for _, args := range log {
		orig.do(args...)
	}
	var snap bytes.Buffer
	if err := orig.s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	re := newBlockRig()
	if err := re.s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*blockRig{orig, re} {
		r.do(blkAt("b", 200, "blpop", "k", "0")...)
		r.do("rpush", "k", "1", "2", "3")
	}
	if !slices.Equal(re.got, orig.got) || len(re.got) != 3 || !strings.HasPrefix(re.got[1], "b ") {
		t.Fatalf("restored served %q, original %q", re.got, orig.got)
	}

	// An older build's snapshot, whose waiters had no arrivals ('W', the
	// count and per waiter its id, database, argc and args), is refused
	// with a clear error, not misread.
	var plain bytes.Buffer
	New().Snapshot(&plain)
	body := bytes.Clone(plain.Bytes()[:plain.Len()-sha256.Size])
	body = append(body, 'W', 1, 1, 'y', 0, 3, 5)
	body = append(body, "blpop"...)
	body = append(body, 1, 'k', 1, '0')
	sum := sha256.Sum256(body)
	err := newBlockRig().s.Restore(bytes.NewReader(append(body, sum[:]...)))
	if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "unknown section") {
		t.Fatalf("older snapshot with waiters: %v, want unknown section", err)
	}
}
