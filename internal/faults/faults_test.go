package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// memKV is a key-value store in memory with Redis's answers to GET, SET,
// INCR and APPEND: linearizable, since one mutex orders everything. A
// lossy one acknowledges every 7th APPEND without applying it.
type memKV struct {
	mu      sync.Mutex
	kv      map[string]string
	appends int
	lossy   bool
}

func newMemKV(lossy bool) *memKV { return &memKV{kv: map[string]string{}, lossy: lossy} }

func (m *memKV) do(in lincheck.Input) lincheck.Reply {
	// A request takes a little while, as over a network: it keeps the
	// history to thousands of operations, which porcupine checks fast.
	time.Sleep(300 * time.Microsecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out lincheck.Output
	switch in.Kind {
	case lincheck.Get:
		v, ok := m.kv[in.Key]
		out.Value, out.Nil = v, !ok
	case lincheck.Set:
		m.kv[in.Key] = in.Arg
	case lincheck.Incr:
		v, ok := m.kv[in.Key]
		if !ok {
			v = "0"
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n == math.MaxInt64 {
			out.NotInt = true
			break
		}
		m.kv[in.Key] = strconv.FormatInt(n+1, 10)
		out.N = n + 1
	case lincheck.Append:
		m.appends++
		if m.lossy && m.appends%7 == 0 {
			out.N = int64(len(m.kv[in.Key]) + len(in.Arg)) // acknowledged, never applied
			break
		}
		m.kv[in.Key] += in.Arg
		out.N = int64(len(m.kv[in.Key]))
	}
	return lincheck.Reply{Outcome: lincheck.Done, Output: out, Where: "mem"}
}

func (m *memKV) digest() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := sha256.New()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m.kv {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(h, "%q=%q\n", k, m.kv[k])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

type memTarget struct{ m *memKV }

func (t memTarget) Prepare(ctx context.Context, _ lincheck.Input) error { return ctx.Err() }
func (t memTarget) Do(in lincheck.Input) lincheck.Reply                 { return t.m.do(in) }
func (t memTarget) Close() error                                        { return nil }

// leaseTable is a lease service in memory. A correct one grants a lease
// only once the last one has expired (SET NX PX); a broken one grants
// every request.
type leaseTable struct {
	mu     sync.Mutex
	held   map[string]time.Time // app → expiry
	broken bool
}

// fakeLeaser is one client of a leaseTable, or one that always times
// out (hang) or fails (fail).
type fakeLeaser struct {
	t          *leaseTable
	hang, fail bool
}

func (l *fakeLeaser) Acquire(ctx context.Context, app, holder string, ttl time.Duration) (bool, error) {
	switch {
	case l.hang:
		<-ctx.Done()
		return false, ctx.Err()
	case l.fail:
		return false, errors.New("fake: connection refused")
	}
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	now := time.Now()
	if !l.t.broken && now.Before(l.t.held[app]) {
		return false, nil
	}
	l.t.held[app] = now.Add(ttl)
	return true, nil
}

func (l *fakeLeaser) Close() error { return nil }

// fakeSys is a System in memory: n replicas that are all the one memKV
// (so their digests agree), replica leader leading.
type fakeSys struct {
	kv         *memKV
	leases     *leaseTable
	hang, fail bool // the leasers'
	n, leader  int
	procs      []*Proc
	pauseErr   error // what Pause answers

	mu                sync.Mutex
	paused, resumed   []int
	kills, restarts   int
	kvMade, leaseMade int
}

func newFakeSys(n int, lossy bool) *fakeSys {
	s := &fakeSys{kv: newMemKV(lossy), leases: &leaseTable{held: map[string]time.Time{}}, n: n}
	for i := range n {
		// A process that never ends: running, as far as the runner sees.
		s.procs = append(s.procs, &Proc{Name: fmt.Sprintf("fake replica %d", i+1), done: make(chan struct{})})
	}
	return s
}

func (s *fakeSys) Name() string                              { return "fake" }
func (s *fakeSys) Start(ctx context.Context, env *Env) error { return nil }
func (s *fakeSys) Proc(i int) *Proc                          { return s.procs[i] }
func (s *fakeSys) Leader(ctx context.Context) (int, error)   { return s.leader, nil }
func (s *fakeSys) Stop() error                               { return nil }

func (s *fakeSys) Kill(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kills++
	return nil
}

func (s *fakeSys) Restart(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restarts++
	return nil
}

func (s *fakeSys) Pause(i int) error {
	if s.pauseErr != nil {
		return s.pauseErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = append(s.paused, i)
	return nil
}

func (s *fakeSys) Resume(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumed = append(s.resumed, i)
	return nil
}

func (s *fakeSys) KV(c int) lincheck.Target {
	s.mu.Lock()
	s.kvMade++
	s.mu.Unlock()
	return memTarget{s.kv}
}

func (s *fakeSys) Lease(c int) Leaser {
	s.mu.Lock()
	s.leaseMade++
	s.mu.Unlock()
	return &fakeLeaser{t: s.leases, hang: s.hang, fail: s.fail}
}

func (s *fakeSys) Digests(ctx context.Context) ([]string, error) {
	d := s.kv.digest()
	out := make([]string, s.n)
	for i := range out {
		out[i] = d
	}
	return out, nil
}

var _ System = (*fakeSys)(nil)

// tlOp is an acknowledged operation that returned at ret after took.
func tlOp(kind lincheck.Kind, ret, took time.Duration) lincheck.Op {
	return lincheck.Op{Input: lincheck.Input{Kind: kind, Key: "k"}, Call: int64(ret - took), Return: int64(ret)}
}

// syntheticHistory is a run of 4.6 s (all in ms): a warm-up second of 10 SETs;
// a second of 20 operations, SETs and GETs in turn, every 50 ms; 3 writes
// without an answer invoked at 1.5 s and 2 at 2.5 s; writes at 2.1 and
// 2.2, then only reads (one of them 50 ms long) until writes at 3.5, 3.6,
// 4.5 and 4.6. Every operation but that read takes 1 ms.
func syntheticHistory(keep func(lincheck.Op) bool) []lincheck.Op {
	ms := time.Millisecond
	var h []lincheck.Op
	add := func(kind lincheck.Kind, ret, took time.Duration) {
		if op := tlOp(kind, ret, took); keep == nil || keep(op) {
			h = append(h, op)
		}
	}
	for k := range 10 {
		add(lincheck.Set, time.Duration(50*(k+1))*ms, ms)
	}
	for k := range 20 {
		kind := lincheck.Set
		if k%2 == 1 {
			kind = lincheck.Get
		}
		add(kind, time.Duration(1000+50*k)*ms, ms)
	}
	for _, call := range []time.Duration{1500 * ms, 1500 * ms, 1500 * ms, 2500 * ms, 2500 * ms} {
		h = append(h, lincheck.Op{Input: lincheck.Input{Kind: lincheck.Append, Key: "k", Arg: "x,"}, Call: int64(call), Return: int64(call + 300*ms), Unknown: true})
	}
	for _, ret := range []time.Duration{2100, 2200} {
		add(lincheck.Incr, ret*ms, ms)
	}
	for _, ret := range []time.Duration{2300, 2500, 2700, 3200} {
		add(lincheck.Get, ret*ms, ms)
	}
	add(lincheck.Get, 3000*ms, 50*ms)
	for _, ret := range []time.Duration{3500, 3600, 4500, 4600} {
		add(lincheck.Append, ret*ms, ms)
	}
	// The recorder's order is by return, roughly; the judge must not care.
	slices.Reverse(h)
	return h
}

func near(got, want float64) bool { return math.Abs(got-want) <= 0.01*math.Abs(want)+1e-9 }

func TestJudgeTimeline(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	faultMarks := []Mark{{At: int64(2 * s), Label: "fault"}, {At: int64(4 * s), Label: "fault ends"}}
	for _, tc := range []struct {
		name    string
		history []lincheck.Op
		marks   []Mark
		plan    Plan
		ops     []int // per second
		errs    []int
		acked   int
		// Rates in operations per second.
		base, fault float64
		unavail     time.Duration
		unavailAt   time.Duration // -1: not checked
	}{
		{
			name: "the marks bound the fault", history: syntheticHistory(nil), marks: faultMarks,
			plan: Plan{Baseline: s, Window: s}, // the marks win over the plan
			ops:  []int{10, 20, 5, 4, 2}, errs: []int{0, 3, 2, 0, 0}, acked: 41,
			base: 20, fault: 4.5, // 20 in [1 s, 2 s); 9 in [2 s, 4 s)
			unavail: 1300 * ms, unavailAt: 2200 * ms,
		},
		{
			name: "no marks: the plan's windows", history: syntheticHistory(nil),
			plan: Plan{Baseline: 1500 * ms, Window: 2500 * ms},
			ops:  []int{10, 20, 5, 4, 2}, errs: []int{0, 3, 2, 0, 0}, acked: 41,
			base: 20, fault: 7.6, // 10 in [1 s, 1.5 s); 19 in [1.5 s, 4 s)
			unavail: 1300 * ms, unavailAt: 2200 * ms,
		},
		{
			name: "a longer gap spans the fault's end", marks: faultMarks,
			history: syntheticHistory(func(op lincheck.Op) bool { return op.Return != int64(3500*ms) && op.Return != int64(3600*ms) }),
			plan:    Plan{Baseline: 2 * s, Window: 2 * s},
			ops:     []int{10, 20, 5, 2, 2}, errs: []int{0, 3, 2, 0, 0}, acked: 39,
			base: 20, fault: 3.5,
			unavail: 2300 * ms, unavailAt: 2200 * ms,
		},
		{
			name: "no write after the fault began", marks: faultMarks,
			history: syntheticHistory(func(op lincheck.Op) bool { return op.Input.Kind == lincheck.Get || op.Return < int64(2*s) }),
			plan:    Plan{Baseline: 2 * s, Window: 2 * s},
			ops:     []int{10, 20, 3, 2}, errs: []int{0, 3, 2, 0}, acked: 35,
			base: 20, fault: 2.5,
			// From the fault's start to the last answer, at 3.2 s.
			unavail: 1200 * ms, unavailAt: -1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &Outcome{}
			o.judgeTimeline(timedOps(tc.history), tc.marks, tc.plan.withDefaults())
			var ops, errs []int
			for i, sec := range o.Seconds {
				if sec.At != i {
					t.Errorf("second %d is labelled %d", i, sec.At)
				}
				ops, errs = append(ops, sec.Ops), append(errs, sec.Errors)
			}
			if !slices.Equal(ops, tc.ops) || !slices.Equal(errs, tc.errs) {
				t.Errorf("per second: ops %v errors %v, want ops %v errors %v", ops, errs, tc.ops, tc.errs)
			}
			if o.Acked != tc.acked {
				t.Errorf("Acked = %d, want %d", o.Acked, tc.acked)
			}
			if !near(o.BaseRate, tc.base) || !near(o.FaultRate, tc.fault) || !near(o.Kept, tc.fault/tc.base) {
				t.Errorf("rates: base %.3f fault %.3f kept %.4f, want %.3f %.3f %.4f", o.BaseRate, o.FaultRate, o.Kept, tc.base, tc.fault, tc.fault/tc.base)
			}
			if o.Unavailable != tc.unavail || tc.unavailAt >= 0 && o.UnavailableAt != tc.unavailAt {
				t.Errorf("unavailable %v at %v, want %v at %v", o.Unavailable, o.UnavailableAt, tc.unavail, tc.unavailAt)
			}
			// Every operation takes 1 ms but one 50 ms read.
			if !near(float64(o.P50), float64(ms)) || o.P99 < 49*ms || o.P999 < o.P99 {
				t.Errorf("percentiles p50 %v p99 %v p99.9 %v, want 1ms, about 50ms, at least p99", o.P50, o.P99, o.P999)
			}
			for _, sec := range o.Seconds {
				if sec.Ops > 0 && (sec.P50 <= 0 || sec.P99 < sec.P50 || sec.P999 < sec.P99) {
					t.Errorf("second %d: p50 %v p99 %v p99.9 %v", sec.At, sec.P50, sec.P99, sec.P999)
				}
			}
			if o.Seconds[3].P99 < 49*ms {
				t.Errorf("second 3's p99 %v misses its 50 ms read", o.Seconds[3].P99)
			}
		})
	}
}

func TestRunLease(t *testing.T) {
	plan := LeasePlan{Duration: time.Second, TTL: 300 * time.Millisecond, Timeout: 50 * time.Millisecond, Think: 10 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		setup func(s *fakeSys)
		check func(t *testing.T, pt LeasePoint)
	}{
		{"correct", func(*fakeSys) {}, func(t *testing.T, pt LeasePoint) {
			// Two apps, a grant every TTL each at most, and the other
			// requests refused.
			if pt.Overlaps != 0 || pt.Granted == 0 || pt.Rejected == 0 || pt.Timeouts+pt.Errors != 0 {
				t.Errorf("want grants, refusals and no overlap: %v", pt)
			}
			if pt.Granted > 2*(int(plan.Duration/plan.TTL)+1) {
				t.Errorf("more grants than one per TTL per application: %v", pt)
			}
			if pt.GrantP50 <= 0 || pt.RejectP50 <= 0 || pt.GrantP99 < pt.GrantP50 || pt.RejectP99 < pt.RejectP50 {
				t.Errorf("response times: %v", pt)
			}
		}},
		{"grants every request", func(s *fakeSys) { s.leases.broken = true }, func(t *testing.T, pt LeasePoint) {
			if pt.Overlaps == 0 || pt.Rejected != 0 {
				t.Errorf("two holders at once went unseen: %v", pt)
			}
		}},
		{"times out", func(s *fakeSys) { s.hang = true }, func(t *testing.T, pt LeasePoint) {
			if pt.Timeouts == 0 || pt.Granted+pt.Rejected+pt.Errors != 0 || pt.FirstErr != nil {
				t.Errorf("want timeouts only: %v", pt)
			}
		}},
		{"fails", func(s *fakeSys) { s.fail = true }, func(t *testing.T, pt LeasePoint) {
			if pt.Errors == 0 || pt.FirstErr == nil || !strings.Contains(pt.FirstErr.Error(), "connection refused") || pt.Timeouts != 0 {
				t.Errorf("want errors, the first kept: %v", pt)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeSys(3, false)
			tc.setup(s)
			pt := RunLease(context.Background(), s, 4, plan, "test")
			t.Log(pt)
			if pt.System != "fake" || pt.Clients != 4 || s.leaseMade != 4 {
				t.Errorf("system %q clients %d, %d leasers made", pt.System, pt.Clients, s.leaseMade)
			}
			tc.check(t, pt)
		})
	}
}

// tinyPlan is a scenario of about a second.
func tinyPlan(t *testing.T) Plan {
	return Plan{Baseline: 300 * time.Millisecond, Window: 300 * time.Millisecond, Recovery: 300 * time.Millisecond,
		Budget: 30 * time.Second, Dir: t.TempDir(), Log: t.Logf}
}

// checkFiles checks o's CSV (a header and a row per second) and PNG.
func checkFiles(t *testing.T, o *Outcome) {
	t.Helper()
	f, err := os.Open(o.CSV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != "second,ops,errors,p50_us,p99_us,p999_us" || len(rows) != 1+len(o.Seconds) {
		t.Fatalf("CSV %s: %d rows (want a header and %d), header %v", o.CSV, len(rows), len(o.Seconds), rows[0])
	}
	total := 0
	for _, r := range rows[1:] {
		n, err := strconv.Atoi(r[1])
		if err != nil || len(r) != 6 {
			t.Fatalf("CSV row %v", r)
		}
		total += n
	}
	if total != o.Acked {
		t.Errorf("the CSV counts %d operations, the outcome %d acknowledged", total, o.Acked)
	}
	png, err := os.ReadFile(o.PNG)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is no PNG", o.PNG)
	}
}

// TestRunScenario runs the key-value workload on the store in memory:
// the sound one passes every verdict, and the one that drops an APPEND
// now and then is caught twice over (a lost write and a history that is
// not linearizable).
func TestRunScenario(t *testing.T) {
	ctx := context.Background()
	t.Run("sound", func(t *testing.T) {
		s := newFakeSys(3, false)
		o := RunScenario(ctx, s, LocalEnv(3), 3, Scenario{}, tinyPlan(t))
		t.Log(o.Line())
		if o.Err != nil || o.Lin.Verdict != lincheck.Ok || o.Lost != 0 || !o.DigestsEqual || o.Violations() != 0 {
			t.Fatalf("want every verdict good: %s (%v)", o.Line(), o.Lin)
		}
		// (No base rate: the first second warms up, and this run is
		// shorter.)
		if o.Ops == 0 || o.Acked != o.Ops || o.Replica != 0 || len(o.Digests) != 3 || len(o.Seconds) == 0 {
			t.Errorf("ops %d acked %d replica %d digests %v seconds %v", o.Ops, o.Acked, o.Replica, o.Digests, o.Seconds)
		}
		if filepath.Base(o.CSV) != "fake-local-no-fault.csv" || filepath.Base(o.PNG) != "fake-local-no-fault.png" {
			t.Errorf("files %s, %s", o.CSV, o.PNG)
		}
		checkFiles(t, o)
		if s.kills+s.restarts != 0 || len(s.paused) != 0 || s.kvMade != 5+1 {
			t.Errorf("kills %d restarts %d pauses %v, %d clients made (5 and the one that reads back)", s.kills, s.restarts, s.paused, s.kvMade)
		}
	})
	t.Run("lossy", func(t *testing.T) {
		s := newFakeSys(3, true)
		o := RunScenario(ctx, s, LocalEnv(3), 3, Scenario{}, tinyPlan(t))
		t.Log(o.Line())
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Lost == 0 || o.Lin.Verdict != lincheck.Violation || o.Violations() <= o.Lost {
			t.Fatalf("want lost writes and a linearizability violation: %s (%v)", o.Line(), o.Lin)
		}
		if !o.DigestsEqual {
			t.Errorf("the replicas are one map, their digests differ: %v", o.Digests)
		}
		if o.Lin.History == "" {
			t.Errorf("the violation's history was not kept: %v", o.Lin)
		}
		checkFiles(t, o)
	})
}

// TestRunScenarioFaults injects faults into the store in memory: a pause
// aimed at a role goes to the replica holding it and is ended; a pause
// the system lacks and a network fault off the test bed are errors the
// runner can tell apart.
func TestRunScenarioFaults(t *testing.T) {
	pause, err := FaultNamed("pause-fifo")
	if err != nil {
		t.Fatal(err)
	}
	isolate, err := FaultNamed("isolate")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		sc       Scenario
		pauseErr error
		replica  int
		wantErr  error
	}{
		{"pause the leader", Scenario{pause, "leader"}, nil, 2, nil},
		{"pause a follower", Scenario{pause, "follower"}, nil, 3, nil},
		{"no pause", Scenario{pause, "leader"}, ErrUnsupported, 2, ErrUnsupported},
		{"isolate on one machine", Scenario{isolate, "leader"}, nil, 2, ErrNeedsBed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeSys(3, false)
			s.leader, s.pauseErr = 1, tc.pauseErr
			o := RunScenario(context.Background(), s, LocalEnv(3), 3, tc.sc, tinyPlan(t))
			t.Log(o.Line())
			if o.Replica != tc.replica {
				t.Errorf("the fault went to r%d, want r%d", o.Replica, tc.replica)
			}
			if tc.wantErr != nil {
				if !errors.Is(o.Err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", o.Err, tc.wantErr)
				}
				if len(s.paused)+len(s.resumed) != 0 {
					t.Errorf("paused %v resumed %v after a failed injection", s.paused, s.resumed)
				}
				return
			}
			if o.Err != nil || o.Violations() != 0 {
				t.Fatalf("%s: %v", o.Line(), o.Err)
			}
			if want := []int{tc.replica - 1}; !slices.Equal(s.paused, want) || !slices.Equal(s.resumed, want) {
				t.Errorf("paused %v resumed %v, want %v each", s.paused, s.resumed, want)
			}
			if !strings.Contains(o.CSV, "pause-fifo-"+tc.sc.Role) {
				t.Errorf("CSV %s does not name the scenario", o.CSV)
			}
			checkFiles(t, o)
		})
	}
}

func TestPickFaults(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil with err
		err  string
	}{
		{in: "none"},
		{in: ""},
		{in: "sigstop,loss", want: []string{"sigstop", "loss"}},
		{in: "crash-loop", want: []string{"crash-loop"}},
		{in: "bogus", err: `no fault "bogus"`},
		{in: "sigstop,bogus", err: `no fault "bogus"`},
		{in: "sigstop,", err: `no fault ""`},
	} {
		fs, err := pickFaults(tc.in)
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
		}
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("pickFaults(%q) = %v, %v; want an error saying %q", tc.in, names, err, tc.err)
		case tc.err == "" && (err != nil || !slices.Equal(names, tc.want)):
			t.Errorf("pickFaults(%q) = %v, %v; want %v", tc.in, names, err, tc.want)
		}
	}
	all, err := pickFaults("all")
	if err != nil || len(all) != len(Faults) || len(all) != 11 {
		t.Fatalf("pickFaults(all) = %d faults, %v; want the catalogue's 11", len(all), err)
	}
	seen := map[string]bool{}
	for _, f := range all {
		if seen[f.Name] || f.Doc == "" || f.inject == nil {
			t.Errorf("fault %q: a duplicate, or no doc or injection", f.Name)
		}
		seen[f.Name] = true
		g, err := FaultNamed(f.Name)
		if err != nil || g != f {
			t.Errorf("FaultNamed(%q) = %v, %v", f.Name, g, err)
		}
		if want := slices.Contains([]string{"isolate", "split", "loss", "slow-link"}, f.Name); f.Net != want {
			t.Errorf("fault %q: Net = %v", f.Name, f.Net)
		}
	}
	if _, err := FaultNamed("sigstopp"); err == nil || !strings.Contains(err.Error(), "sigstop") {
		t.Errorf("FaultNamed(sigstopp) = %v, want an error listing the faults", err)
	}
}

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		digests []string
		equal   bool
	}{
		{[]string{"a", "a", "a"}, true},
		{[]string{"a"}, true},
		{[]string{"a", "b", "a"}, false},
		{[]string{"a", "", "a"}, false}, // a replica down
		{[]string{"", "", ""}, false},
		{nil, false},
	} {
		if got := equalDigests(tc.digests); got != tc.equal {
			t.Errorf("equalDigests(%q) = %v", tc.digests, got)
		}
	}
	for _, tc := range []struct {
		o    Outcome
		want int
	}{
		{Outcome{Lin: lincheck.Result{Verdict: lincheck.Ok}, DigestsEqual: true}, 0},
		{Outcome{Lin: lincheck.Result{Verdict: lincheck.Ok}, DigestsEqual: true, Lost: 3}, 3},
		{Outcome{Lin: lincheck.Result{Verdict: lincheck.Inconclusive}, DigestsEqual: true}, 1},
		{Outcome{Lin: lincheck.Result{Verdict: lincheck.Violation}, Lost: 2}, 4},
	} {
		if got := tc.o.Violations(); got != tc.want {
			t.Errorf("Violations() of lost=%d lin=%v digests equal=%v = %d, want %d", tc.o.Lost, tc.o.Lin.Verdict, tc.o.DigestsEqual, got, tc.want)
		}
	}
}

// TestGomuUnderSIGSTOP builds redis-server-replicated and runs three of
// them on this machine (shm) around Debian's memcached: SIGSTOP on the
// leader for a second keeps every verdict good.
func TestGomuUnderSIGSTOP(t *testing.T) {
	testGomuUnderSIGSTOP(t, GomuRedis(), "github.com/gomu-rdma/gomu/apps/redis-replicated/cmd/redis-server-replicated")
}

// TestGomuMemcachedUnderSIGSTOP is TestGomuUnderSIGSTOP with
// memcached-replicated.
func TestGomuMemcachedUnderSIGSTOP(t *testing.T) {
	testGomuUnderSIGSTOP(t, GomuMemcached(), "github.com/gomu-rdma/gomu/apps/memcached-replicated/cmd/memcached-replicated")
}

func testGomuUnderSIGSTOP(t *testing.T, f Factory, pkg string) {
	if testing.Short() {
		t.Skip("builds a server and starts a cluster of three")
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("needs Debian's memcached as the registry")
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer bcancel()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if out, err := exec.CommandContext(bctx, gocmd, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var logMu sync.Mutex
	var logs bytes.Buffer
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&logs, format+"\n", args...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("log:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	sys, err := f.New(Setup{Replicas: 3, Dir: t.TempDir(), Bin: bin, Log: logf})
	if err != nil {
		t.Fatal(err)
	}
	env := LocalEnv(3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	defer func() {
		if err := sys.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := sys.Start(ctx, env); err != nil {
		t.Fatal(err)
	}
	stop, err := FaultNamed("sigstop")
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{Baseline: time.Second, Window: time.Second, Recovery: 1500 * time.Millisecond, Budget: 30 * time.Second, Dir: t.TempDir(), Log: logf}
	o := RunScenario(ctx, sys, env, 3, Scenario{stop, "leader"}, plan)
	t.Log(o.Line())
	if o.Err != nil || o.Violations() != 0 {
		t.Fatalf("%s (%v): %v", o.Line(), o.Lin, o.Err)
	}
	if o.Replica < 1 || o.Acked == 0 {
		t.Errorf("fault on r%d, %d operations acknowledged", o.Replica, o.Acked)
	}
	checkFiles(t, o)
}

// TestSummaryPNG draws two systems' scenarios side by side, skipping one
// that ended in an error.
func TestSummaryPNG(t *testing.T) {
	sig, _ := FaultNamed("sigstop")
	kill, _ := FaultNamed("kill")
	var outs []*Outcome
	for si, sys := range []string{"gomu", "etcd"} {
		for fi, sc := range []Scenario{{}, {Fault: sig, Role: "leader"}, {Fault: kill, Role: "follower"}} {
			outs = append(outs, &Outcome{System: sys, Env: "netns", Scenario: sc,
				BaseRate: float64(1000 * (2 - si)), WindowGap: time.Duration(fi+1) * time.Duration(si*40+10) * time.Millisecond})
		}
	}
	outs = append(outs, &Outcome{System: "etcd", Env: "local", Scenario: Scenario{Fault: sig, Role: "follower"}, Err: errors.New("did not start")})
	path := filepath.Join(t.TempDir(), "summary.png")
	if err := writeSummaryPNG(path, outs); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("summary plot %s: %v, %v", path, st, err)
	}
	if err := writeSummaryPNG(path, outs[len(outs)-1:]); err == nil {
		t.Error("a plot of only failed scenarios: no error")
	}
}

func TestLaggards(t *testing.T) {
	for _, tc := range []struct {
		digests []string
		want    []int
	}{
		{[]string{"a", "a", "a"}, nil},
		{[]string{"a", "b", "a"}, []int{1}},
		{[]string{"b", "a", "a"}, []int{0}},
		{[]string{"a", "", "b", "a", "a"}, []int{1, 2}},
		{[]string{"", "", ""}, nil},
	} {
		if got := laggards(tc.digests); !slices.Equal(got, tc.want) {
			t.Errorf("laggards(%q) = %v, want %v", tc.digests, got, tc.want)
		}
	}
}

// ownSys is fakeSys with a workload of its own (a Workloader) whose
// verdict is the test's: it answers an order every 5 ms for the run's
// length, then reports res (or err).
type ownSys struct {
	*fakeSys
	res WorkResult
	err error
	got Work // what Workload was asked
}

func (s *ownSys) Workload(ctx context.Context, w Work) (*WorkResult, error) {
	s.got = w
	res := s.res
	end := w.Start.Add(w.Duration)
	for at := time.Duration(0); ; at += 5 * time.Millisecond {
		if now := time.Since(w.Start); now < at {
			sleep(ctx, at-now)
		}
		if ctx.Err() != nil || !time.Now().Before(end) {
			break
		}
		res.Ops = append(res.Ops, TimedOp{Call: int64(at), Return: int64(at + time.Millisecond), Write: true})
	}
	if s.err != nil {
		return nil, s.err
	}
	return &res, nil
}

func (s *ownSys) Unit() string { return "orders" }

var _ Workloader = (*ownSys)(nil)

// TestOwnWorkload runs a system's own workload through RunScenario and
// summarize: its verdict replaces the linearizability check and the
// read-back, and a lost, doubled or unjudged request fails the scenario,
// the summary line says which, and faults short fails on it.
func TestOwnWorkload(t *testing.T) {
	pause, err := FaultNamed("pause-fifo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		res        WorkResult
		err        error
		violations int
		summary    string // in the summary line
		shortErr   string // "" : faults short passes
	}{
		{name: "exactly once", res: WorkResult{Verdict: "check: lost=0 doubled=0"},
			summary: "errors=0 lost_orders=0 doubled_orders=0\n"},
		{name: "a lost order", res: WorkResult{Lost: 1, Verdict: "check: lost=1 doubled=0"}, violations: 1,
			summary: "lost_writes=0 digest_mismatches=0 errors=0 lost_orders=1 doubled_orders=0\n", shortErr: "1 orders lost, 0 doubled"},
		{name: "doubled orders", res: WorkResult{Doubled: 2, Verdict: "check: lost=0 doubled=2"}, violations: 2,
			summary: "lost_orders=0 doubled_orders=2\n", shortErr: "0 orders lost, 2 doubled"},
		{name: "unjudged orders", res: WorkResult{Unjudged: 3, Note: "trader 2: no answer"}, violations: 3,
			summary: "lost_orders=0 doubled_orders=0 unjudged_orders=3\n", shortErr: "3 unjudged"},
		{name: "the workload fails", err: errors.New("traders did not start"),
			summary: "errors=1 lost_orders=0 doubled_orders=0\n", shortErr: "1 scenarios with errors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &ownSys{fakeSys: newFakeSys(3, false), res: tc.res, err: tc.err}
			s.leader = 1
			plan := tinyPlan(t)
			plan.Clients = 7
			o := RunScenario(context.Background(), s, LocalEnv(3), 3, Scenario{pause, "leader"}, plan)
			t.Log(o.Line())
			if s.got.Clients != 7 || s.got.Duration != plan.Baseline+plan.Window+plan.Recovery || s.got.Name != "fake-local-pause-fifo-leader" && !strings.HasPrefix(s.got.Name, "fake-local-pause-fifo-leader-") {
				t.Errorf("asked for %+v", s.got)
			}
			if !o.Own || o.Lin.Verdict != 0 || s.kvMade != 0 {
				t.Errorf("own %v, lin %v, %d key-value clients made: the key-value workload ran", o.Own, o.Lin.Verdict, s.kvMade)
			}
			if want := []int{1}; !slices.Equal(s.paused, want) || !slices.Equal(s.resumed, want) || o.Replica != 2 {
				t.Errorf("fault on r%d, paused %v resumed %v", o.Replica, s.paused, s.resumed)
			}
			if tc.err != nil {
				if o.Err == nil || !strings.Contains(o.Err.Error(), tc.err.Error()) {
					t.Fatalf("err = %v, want the workload's", o.Err)
				}
			} else {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				if o.Lost != tc.res.Lost || o.Doubled != tc.res.Doubled || o.Unjudged != tc.res.Unjudged || o.Unit != "orders" || o.Verdict != tc.res.Verdict || o.Note != tc.res.Note {
					t.Errorf("outcome %+v, want the workload's verdict %+v", o, tc.res)
				}
				if o.Ops == 0 || o.Acked != o.Ops || !o.DigestsEqual {
					t.Errorf("ops %d acked %d digests %v", o.Ops, o.Acked, o.Digests)
				}
				checkFiles(t, o)
				want := fmt.Sprintf("lost=%d doubled=%d", tc.res.Lost, tc.res.Doubled)
				if !strings.Contains(o.Line(), want) || strings.Contains(o.Line(), "lin=") {
					t.Errorf("line %q lacks %q, or names a linearizability verdict", o.Line(), want)
				}
			}
			if got := o.Violations(); got != tc.violations {
				t.Errorf("Violations() = %d, want %d", got, tc.violations)
			}
			var b strings.Builder
			err := summarize(&b, []*Outcome{o}, true, nil)
			if !strings.HasPrefix(b.String(), "faults-short: scenarios=1 ") || !strings.HasSuffix(b.String(), tc.summary) {
				t.Errorf("summary %q, want it to end %q", b.String(), tc.summary)
			}
			switch {
			case tc.shortErr == "" && err != nil:
				t.Errorf("faults short failed: %v", err)
			case tc.shortErr != "" && (err == nil || !strings.Contains(err.Error(), tc.shortErr)):
				t.Errorf("faults short: %v, want an error saying %q", err, tc.shortErr)
			}
			if err := summarize(io.Discard, []*Outcome{o}, false, nil); (err != nil) != (tc.violations > 0 || tc.err != nil) {
				t.Errorf("faults run: %v with %d violations", err, tc.violations)
			}
		})
	}
}

// TestSummarizeKV: a run of key-value systems alone keeps its summary
// line as it was, and beside a workload of its own, each counts apart.
func TestSummarizeKV(t *testing.T) {
	ok := lincheck.Result{Verdict: lincheck.Ok}
	kv := &Outcome{System: "gomu", Ops: 10, Lin: ok, DigestsEqual: true}
	var b strings.Builder
	if err := summarize(&b, []*Outcome{kv}, true, nil); err != nil {
		t.Fatal(err)
	}
	if want := "faults-short: scenarios=1 ops=10 linearizability_violations=0 undecided=0 lost_writes=0 digest_mismatches=0 errors=0\n"; b.String() != want {
		t.Errorf("summary %q, want %q", b.String(), want)
	}
	lossy := &Outcome{System: "gomu", Ops: 10, Lin: ok, DigestsEqual: true, Lost: 2}
	own := &Outcome{System: "orderbook", Own: true, Unit: "orders", Ops: 5, DigestsEqual: true, Doubled: 1}
	b.Reset()
	err := summarize(&b, []*Outcome{lossy, own}, true, nil)
	if want := "faults-short: scenarios=2 ops=15 linearizability_violations=0 undecided=0 lost_writes=2 digest_mismatches=0 errors=0 lost_orders=0 doubled_orders=1\n"; b.String() != want {
		t.Errorf("summary %q, want %q", b.String(), want)
	}
	if err == nil || !strings.Contains(err.Error(), "2 lost writes") || !strings.Contains(err.Error(), "1 doubled") {
		t.Errorf("faults short: %v", err)
	}
}

// TestTimelinePNGEmpty: a scenario in which nothing was answered (a
// workload that never started) still gets its plot, rather than a panic
// of the latency panel's empty log axis.
func TestTimelinePNGEmpty(t *testing.T) {
	for _, marks := range [][]Mark{nil, {{At: int64(time.Second), Label: "fault"}, {At: int64(2 * time.Second), Label: "fault ends"}}} {
		path := filepath.Join(t.TempDir(), "empty.png")
		if err := writeTimelinePNG(path, "nothing answered", timeline(nil, plotSlot), plotSlot, marks); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
			t.Fatalf("plot %s: %v, %v", path, st, err)
		}
	}
}
