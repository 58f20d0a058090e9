package lincheck

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memStore is a store in memory: linearizable, since one mutex orders
// everything. With stale set, reads are served from a copy that lags the
// writes by a few operations, as a follower that answers from an old state
// would.
type memStore struct {
	mu      sync.Mutex
	kv      map[string]string
	old     map[string]string // what a stale reader sees
	writes  int
	stale   bool
	unknown float64 // share of writes whose reply is lost (applied or not)
	rng     *rand.Rand
}

func newMemStore(stale bool, unknown float64) *memStore {
	return &memStore{kv: map[string]string{}, old: map[string]string{}, stale: stale, unknown: unknown, rng: rand.New(rand.NewPCG(1, 2))}
}

func (m *memStore) do(in Input) Reply {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.Kind == Get {
		kv := m.kv
		if m.stale {
			kv = m.old
		}
		v, ok := kv[in.Key]
		return Reply{Outcome: Done, Output: Output{Value: v, Nil: !ok}, Where: "mem"}
	}
	lost := m.rng.Float64() < m.unknown
	if lost && m.rng.IntN(2) == 0 {
		return Reply{Outcome: Unknown, Where: "mem"} // lost before it was applied
	}
	var out Output
	switch in.Kind {
	case Set:
		m.kv[in.Key] = in.Arg
	case Incr:
		v, ok := m.kv[in.Key]
		if !ok {
			v = "0"
		}
		n, isInt := parseInt(v)
		if !isInt {
			out.NotInt = true
			break
		}
		m.kv[in.Key] = strconv.FormatInt(n+1, 10)
		out.N = n + 1
	case Append:
		m.kv[in.Key] += in.Arg
		out.N = int64(len(m.kv[in.Key]))
	}
	// The stale copy catches up every fourth write.
	if m.writes++; m.writes%4 == 0 {
		for k, v := range m.kv {
			m.old[k] = v
		}
	}
	if lost {
		return Reply{Outcome: Unknown, Where: "mem"} // applied, reply lost
	}
	return Reply{Outcome: Done, Output: out, Where: "mem"}
}

type memTarget struct{ m *memStore }

func (t memTarget) Prepare(ctx context.Context, _ Input) error { return ctx.Err() }
func (t memTarget) Do(in Input) Reply                          { return t.m.do(in) }
func (t memTarget) Close() error                               { return nil }

// TestWorkload runs the workload end to end on stores in memory: the
// linearizable one passes, with replies lost on the way; the one with stale
// reads is caught.
func TestWorkload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stale   bool
		unknown float64
		want    Verdict
	}{
		{"linearizable", false, 0, Ok},
		{"linearizable, lost replies", false, 0.05, Ok},
		{"stale reads", true, 0, Violation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemStore(tc.stale, tc.unknown)
			rec := NewRecorder()
			w := Workload{Ops: 3000, KeyOps: 500, Seed: 7}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.Run(ctx, rec, func(int) Target { return memTarget{m} }); err != nil {
				t.Fatal(err)
			}
			res, err := rec.Check(Options{Budget: 20 * time.Second, Dir: t.TempDir(), Name: t.Name()})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %v, want %v", res.Verdict, tc.want)
			}
			if res.Ops < 3000 || res.Keys < 3000/500*8/2 {
				t.Fatalf("%d operations on %d keys: the workload did not spread over fresh keys", res.Ops, res.Keys)
			}
			if tc.unknown > 0 && res.MaybeApplied == 0 {
				t.Fatal("no maybe-applied write recorded")
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	get, set := Input{Kind: Get, Key: "k"}, Input{Kind: Set, Key: "k", Arg: "v"}
	incr, app := Input{Kind: Incr, Key: "k"}, Input{Kind: Append, Key: "k", Arg: "x"}
	for _, tc := range []struct {
		in     Input
		raw    string
		want   Reply
		leader string
		bad    bool
	}{
		{get, "$-1\r\n", Reply{Outcome: Done, Output: Output{Nil: true}}, "", false},
		{get, "$0\r\n\r\n", Reply{Outcome: Done, Output: Output{}}, "", false},
		{get, "$3\r\na\r\n\r\n", Reply{Outcome: Done, Output: Output{Value: "a\r\n"}}, "", false},
		{set, "+OK\r\n", Reply{Outcome: Done}, "", false},
		{incr, ":42\r\n", Reply{Outcome: Done, Output: Output{N: 42}}, "", false},
		{app, ":7\r\n", Reply{Outcome: Done, Output: Output{N: 7}}, "", false},
		{incr, "-ERR value is not an integer or out of range\r\n", Reply{Outcome: Done, Output: Output{NotInt: true}}, "", false},
		{incr, "-ERR increment or decrement would overflow\r\n", Reply{Outcome: Done, Output: Output{NotInt: true}}, "", false},
		{set, "-ERR value is not an integer or out of range\r\n", Reply{Outcome: Unknown}, "", false},
		{set, "-READONLY You can't write against a read only replica. leader=2 addr=127.0.0.1:7002\r\n", Reply{Outcome: Unknown}, "127.0.0.1:7002", false},
		{set, "-READONLY You can't write against a read only replica. leader=none\r\n", Reply{Outcome: Unknown}, "", false},
		{app, "-TRYAGAIN gomu: this replica is catching up. leader=3 addr=10.0.0.3:6379\r\n", Reply{Outcome: Unknown}, "10.0.0.3:6379", false},
		{app, "-TRYAGAIN gomu: this replica is catching up. leader=0 addr=\r\n", Reply{Outcome: Unknown}, "", false},
		{incr, "-TRYAGAIN gomu: replication timed out\r\n", Reply{Outcome: Unknown}, "", false},
		{get, "-TRYAGAIN gomu: this replica is paused\r\n", Reply{Outcome: Unknown}, "", false},
		{get, "+OK\r\n", Reply{Outcome: Unknown}, "", true},
		{set, ":1\r\n", Reply{Outcome: Unknown}, "", true},
		{incr, "$1\r\n1\r\n", Reply{Outcome: Unknown}, "", true},
	} {
		rep, leader := parseReply(tc.in, []byte(tc.raw))
		if (rep.Err != nil) != tc.bad {
			t.Errorf("%v %q: error %v, want one: %v", tc.in.Kind, tc.raw, rep.Err, tc.bad)
		}
		rep.Err = nil
		if rep != tc.want || leader != tc.leader {
			t.Errorf("%v %q: %+v leader %q, want %+v leader %q", tc.in.Kind, tc.raw, rep, leader, tc.want, tc.leader)
		}
	}
}
