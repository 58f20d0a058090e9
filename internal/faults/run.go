package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// Plan is how a scenario runs: the workload's clients, and the windows
// before, during and after the fault.
type Plan struct {
	Clients  int           // the workload's clients, key-value or the system's own (default 5)
	Baseline time.Duration // workload before the fault (default 2 s)
	Window   time.Duration // the fault's length (default 3 s)
	Recovery time.Duration // workload after the fault (default 2 s)
	Knobs    Knobs
	// Budget bounds porcupine's search per scenario (default 60 s).
	Budget time.Duration
	// Dir receives the scenario's CSV, PNG and, after a violation, the
	// history and porcupine's visualisation.
	Dir string
	Log func(format string, args ...any)
}

func (p Plan) withDefaults() Plan {
	if p.Clients <= 0 {
		p.Clients = 5
	}
	if p.Baseline <= 0 {
		p.Baseline = 2 * time.Second
	}
	if p.Window <= 0 {
		p.Window = 3 * time.Second
	}
	if p.Recovery <= 0 {
		p.Recovery = 2 * time.Second
	}
	if p.Budget <= 0 {
		p.Budget = 60 * time.Second
	}
	if p.Log == nil {
		p.Log = func(string, ...any) {}
	}
	p.Knobs = p.Knobs.withDefaults()
	return p
}

// Scenario is one fault on one role.
type Scenario struct {
	Fault *Fault // nil: no fault, the baseline run
	Role  string // "leader" or "follower"
}

func (s Scenario) String() string {
	if s.Fault == nil {
		return "no-fault"
	}
	return s.Fault.Name + "/" + s.Role
}

// Outcome is a scenario's verdicts and numbers.
type Outcome struct {
	System, Env string
	Scenario    Scenario
	Replica     int // the replica the fault went to (1-based)
	// Ops is the operations recorded; Acked those that got an answer.
	Ops, Acked int
	// Own says the system ran a workload of its own (a Workloader): Lin
	// is then unset, and Lost, Doubled and Unjudged are that workload's
	// verdict on its Unit of requests.
	Own bool
	Lin lincheck.Result
	// Lost counts acknowledged writes missing from the final state (a
	// workload of its own: acknowledged requests not applied).
	Lost int
	// Doubled counts requests applied more often than acknowledged, and
	// Unjudged those its verdict could not decide (Workloader only).
	Doubled, Unjudged int
	// Unit names a workload of its own's requests ("orders"); Verdict is
	// its line and Note what it found wrong (see WorkResult).
	Unit, Verdict, Note string
	// Digests are the replicas' digests at the end; DigestsEqual says
	// whether every running replica's matches.
	Digests      []string
	DigestsEqual bool
	// DigestNote says what each replica reported when they differed.
	DigestNote string
	// Throughput (acknowledged operations per second) before and during
	// the fault, and the share it kept.
	BaseRate, FaultRate, Kept float64
	// Unavailable is the longest gap between acknowledged writes from
	// the fault's start to the end of the run.
	Unavailable time.Duration
	// UnavailableAt is when that gap began (since the run began).
	UnavailableAt time.Duration
	// WindowGap is the longest gap between acknowledged writes inside
	// the fault window alone: for a kill, the fail-over, without the
	// restarted replica's rejoin that follows the window.
	WindowGap time.Duration
	// Latency percentiles of acknowledged operations over the run.
	P50, P99, P999 time.Duration
	Events         map[string]int
	// Seconds is the per-second timeline; CSV and PNG are its files.
	Seconds  []Second
	CSV, PNG string
	// Err is what stopped the scenario short of its verdicts.
	Err error
}

// Violations counts what must be zero: a non-linearizable history (or one
// the search could not decide), lost writes, unequal digests; for a
// workload of its own, lost, doubled and unjudged requests.
func (o *Outcome) Violations() int {
	n := o.Lost + o.Doubled + o.Unjudged
	if !o.Own && o.Lin.Verdict != lincheck.Ok {
		n++
	}
	if !o.DigestsEqual {
		n++
	}
	return n
}

// Line sums the outcome up on one line.
func (o *Outcome) Line() string {
	if o.Err != nil {
		return fmt.Sprintf("%-6s %-6s %-26s ERROR %v", o.System, o.Env, o.Scenario, o.Err)
	}
	d := "equal"
	if !o.DigestsEqual {
		d = "DIFFER"
	}
	verdict := fmt.Sprintf("lin=%v lost=%d", o.Lin.Verdict, o.Lost)
	if o.Own {
		verdict = fmt.Sprintf("lost=%d doubled=%d", o.Lost, o.Doubled)
		if o.Unjudged > 0 {
			verdict += fmt.Sprintf(" unjudged=%d", o.Unjudged)
		}
	}
	return fmt.Sprintf("%-6s %-6s %-26s r%d ops=%d %s digests=%s rate=%.0f/s kept=%.0f%% unavail=%v@%.2fs window_gap=%v p50=%v p99=%v p99.9=%v%s",
		o.System, o.Env, o.Scenario, o.Replica, o.Ops, verdict, d, o.BaseRate, 100*o.Kept,
		o.Unavailable.Round(100*time.Microsecond), o.UnavailableAt.Seconds(), o.WindowGap.Round(100*time.Microsecond), o.P50.Round(time.Microsecond), o.P99.Round(time.Microsecond), o.P999.Round(time.Microsecond), events(o.Events))
}

func events(m map[string]int) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, fmt.Sprintf(" %s=%d", k, m[k]))
	}
	return strings.Join(s, "")
}

// ownGrace is how long a workload of its own may take beyond the run to
// start its clients and judge what they saw.
const ownGrace = time.Minute

// RunScenario runs the key-value workload (or the system's own: see
// Workloader) on a started System, injects the scenario's fault after the
// baseline, ends it after the window, lets the cluster recover, and judges
// what the clients saw and what the replicas hold.
func RunScenario(ctx context.Context, sys System, env *Env, n int, sc Scenario, plan Plan) *Outcome {
	plan = plan.withDefaults()
	o := &Outcome{System: sys.Name(), Env: env.Kind, Scenario: sc, Events: map[string]int{}}
	name := uniqueName(fmt.Sprintf("%s-%s-%s", o.System, env.Kind, strings.ReplaceAll(sc.String(), "/", "-")))

	total := plan.Baseline + plan.Window + plan.Recovery
	wctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	own, isOwn := sys.(Workloader)
	o.Own = isOwn
	if isOwn {
		o.Unit = own.Unit()
	}
	var (
		rec  *lincheck.Recorder
		now  func() int64 // the scenario's clock, ns
		res  *WorkResult  // a workload of its own's, once done has answered
		done = make(chan error, 1)
	)
	if isOwn {
		start := time.Now()
		now = func() int64 { return int64(time.Since(start)) }
		octx, ocancel := context.WithTimeout(ctx, total+ownGrace)
		defer ocancel()
		go func() {
			var err error
			res, err = own.Workload(octx, Work{Clients: plan.Clients, Start: start, Duration: total, Name: name, Log: plan.Log})
			if err == nil && res == nil {
				err = errors.New("no result")
			}
			done <- err
		}()
	} else {
		rec = lincheck.NewRecorder()
		now = rec.Now
		w := lincheck.Workload{Clients: plan.Clients, Ops: math.MaxInt32, Prefix: name + ":", KeyOps: 2000}
		go func() { done <- w.Run(wctx, rec, sys.KV) }()
	}

	var marks []Mark
	var end func() error
	sleep(wctx, plan.Baseline)
	if sc.Fault != nil && wctx.Err() == nil {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		i, err := pickRole(lctx, sys, n, sc.Role)
		lcancel()
		if err == nil {
			o.Replica = i + 1
			inj := &injection{ctx: ctx, sys: sys, env: env, n: n, role: sc.Role, log: plan.Log, knobs: plan.Knobs, events: o.Events}
			marks = append(marks, Mark{At: now(), Label: fmt.Sprintf("%s on r%d", sc.Fault.Name, i+1)})
			end, err = sc.Fault.inject(inj, i)
		}
		if err != nil {
			o.Err = fmt.Errorf("inject %s: %w", sc, err)
		}
	}
	sleep(wctx, plan.Window)
	if end != nil {
		marks = append(marks, Mark{At: now(), Label: "fault ends"})
		if err := end(); err != nil && o.Err == nil {
			o.Err = fmt.Errorf("end %s: %w", sc, err)
		}
	}
	werr := <-done
	// The key-value workload ends with the run's deadline; a workload of
	// its own ends by itself, so any error of its is one.
	if werr != nil && (isOwn || !errors.Is(werr, context.DeadlineExceeded)) && o.Err == nil {
		o.Err = fmt.Errorf("workload: %w", werr)
	}
	// Whatever the fault left down comes back before the verdicts.
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	if err := restartDown(rctx, sys, n); err != nil && o.Err == nil {
		o.Err = err
	}

	var ops []TimedOp
	var history []lincheck.Op
	if isOwn {
		if res != nil {
			ops = res.Ops
			o.Lost, o.Doubled, o.Unjudged = res.Lost, res.Doubled, res.Unjudged
			o.Verdict, o.Note = res.Verdict, res.Note
		}
	} else {
		history, _ = rec.History()
		ops = timedOps(history)
	}
	o.Ops = len(ops)
	o.judgeTimeline(ops, marks, plan)
	var err error
	if !isOwn {
		o.Lin, err = lincheck.Check(history, lincheck.Options{Budget: plan.Budget, Dir: plan.Dir, Name: name})
		if err != nil && o.Err == nil {
			o.Err = fmt.Errorf("linearizability check: %w", err)
		}
	}
	// The search may have taken a while: the end state gets its own time.
	dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
	defer dcancel()
	o.Digests, err = sys.Digests(dctx)
	switch {
	case errors.Is(err, ErrDigestsDiffer):
		o.DigestNote = err.Error()
	case err != nil && o.Err == nil:
		o.Err = fmt.Errorf("digests: %w", err)
	}
	o.DigestsEqual = err == nil && equalDigests(o.Digests)
	if !isOwn {
		// The acknowledged writes are read back with time of their own: a
		// replica that did not converge may have used up the digests'.
		lctx, lcancel := context.WithTimeout(ctx, 60*time.Second)
		defer lcancel()
		o.Lost, err = lostWrites(lctx, sys, history)
		if err != nil && o.Err == nil {
			o.Err = fmt.Errorf("lost writes: %w", err)
		}
	}
	o.CSV = filepath.Join(plan.Dir, name+".csv")
	o.PNG = filepath.Join(plan.Dir, name+".png")
	if err := writeCSV(o.CSV, o.Seconds); err != nil && o.Err == nil {
		o.Err = err
	}
	// The last slot is cut short by the run's end: it is not drawn.
	fine := timeline(ops, plotSlot)
	fine = fine[:max(1, len(fine)-1)]
	if err := writeTimelinePNG(o.PNG, fmt.Sprintf("%s on %s: %s", o.System, o.Env, sc), fine, plotSlot, marks); err != nil && o.Err == nil {
		o.Err = err
	}
	return o
}

// timedOps is a key-value history as the timeline sees it.
func timedOps(h []lincheck.Op) []TimedOp {
	ops := make([]TimedOp, len(h))
	for i, op := range h {
		ops[i] = TimedOp{Call: op.Call, Return: op.Return, Write: op.Input.Kind != lincheck.Get, Unanswered: op.Unknown}
	}
	return ops
}

// names counts the scenarios run by name in this process.
var names struct {
	sync.Mutex
	seen map[string]int
}

// uniqueName is name, or name-2, name-3… when a scenario of that name ran
// before in this process: it prefixes the workload's keys (the model
// starts every key empty, so a repeated scenario must not find the last
// one's values) and names its files.
func uniqueName(name string) string {
	names.Lock()
	defer names.Unlock()
	if names.seen == nil {
		names.seen = map[string]int{}
	}
	names.seen[name]++
	if n := names.seen[name]; n > 1 {
		return fmt.Sprintf("%s-%d", name, n)
	}
	return name
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func equalDigests(ds []string) bool {
	want := ""
	for _, d := range ds {
		if d == "" {
			return false
		}
		if want == "" {
			want = d
		} else if d != want {
			return false
		}
	}
	return want != ""
}

// Mark is an instant on a run's timeline (recorder clock, ns).
type Mark struct {
	At    int64
	Label string
}

// Second is one slot of a run's timeline: a second in the CSV, a tenth
// of one in the plot.
type Second struct {
	At             int // slots since the run began
	Ops, Errors    int // acknowledged operations; attempts with no answer
	P50, P99, P999 time.Duration
}

// timeline cuts h into slots of width by return time (attempts with no
// answer by call time): acknowledged operations, unanswered attempts and
// latency percentiles per slot, up to the last acknowledged operation.
func timeline(h []TimedOp, width time.Duration) []Second {
	var last int64
	for _, op := range h {
		if !op.Unanswered {
			last = max(last, op.Return)
		}
	}
	n := int(last/int64(width)) + 1
	slots := make([]Second, n)
	hists := make([]*latency.Recorder, n)
	for i := range n {
		slots[i].At = i
		hists[i] = latency.New(10*time.Second, 0)
	}
	for _, op := range h {
		if op.Unanswered {
			if i := int(op.Call / int64(width)); i < n {
				slots[i].Errors++
			}
			continue
		}
		i := int(op.Return / int64(width))
		slots[i].Ops++
		hists[i].Record(time.Duration(op.Return - op.Call))
	}
	for i := range n {
		if hists[i].Count() > 0 {
			slots[i].P50 = time.Duration(hists[i].Percentile(50))
			slots[i].P99 = time.Duration(hists[i].Percentile(99))
			slots[i].P999 = time.Duration(hists[i].Percentile(99.9))
		}
	}
	return slots
}

// plotSlot is the plot's resolution: fine enough to show a fail-over.
const plotSlot = 100 * time.Millisecond

// judgeTimeline fills the per-second timeline, the rates before and
// during the fault, the longest gap between acknowledged writes and the
// latency percentiles.
func (o *Outcome) judgeTimeline(h []TimedOp, marks []Mark, plan Plan) {
	var last int64
	for _, op := range h {
		if !op.Unanswered {
			last = max(last, op.Return)
		}
	}
	o.Seconds = timeline(h, time.Second)
	all := latency.New(10*time.Second, 0)
	faultAt := int64(plan.Baseline)
	faultEnd := int64(plan.Baseline + plan.Window)
	if len(marks) > 0 {
		faultAt = marks[0].At
		if len(marks) > 1 {
			faultEnd = marks[1].At
		}
	}
	var baseOps, faultOps int
	var writes []int64
	for _, op := range h {
		if op.Unanswered {
			continue
		}
		o.Acked++
		all.Record(time.Duration(op.Return - op.Call))
		// The first second warms up: it is not the baseline.
		if op.Return >= int64(time.Second) && op.Return < faultAt {
			baseOps++
		}
		if op.Return >= faultAt && op.Return < faultEnd {
			faultOps++
		}
		if op.Write && op.Return >= faultAt {
			writes = append(writes, op.Return)
		}
	}
	if all.Count() > 0 {
		o.P50, o.P99, o.P999 = time.Duration(all.Percentile(50)), time.Duration(all.Percentile(99)), time.Duration(all.Percentile(99.9))
	}
	if b := float64(faultAt-int64(time.Second)) / 1e9; b > 0 {
		o.BaseRate = float64(baseOps) / b
	}
	if f := float64(faultEnd-faultAt) / 1e9; f > 0 {
		o.FaultRate = float64(faultOps) / f
	}
	if o.BaseRate > 0 {
		o.Kept = o.FaultRate / o.BaseRate
	}
	slices.Sort(writes)
	wprev := faultAt
	for _, w := range writes {
		if w > faultEnd {
			break
		}
		o.WindowGap = max(o.WindowGap, time.Duration(w-wprev))
		wprev = w
	}
	if faultEnd > wprev && faultEnd <= last {
		o.WindowGap = max(o.WindowGap, time.Duration(faultEnd-wprev))
	}
	prev := faultAt
	for _, w := range writes {
		if gap := time.Duration(w - prev); gap > o.Unavailable {
			o.Unavailable, o.UnavailableAt = gap, time.Duration(prev)
		}
		prev = w
	}
	// The stretch from the last acknowledged write to the run's end
	// counts too (all of it when nothing was written after the fault).
	if gap := time.Duration(last - prev); gap > o.Unavailable {
		o.Unavailable, o.UnavailableAt = gap, time.Duration(prev)
	}
}

// lostWrites reads every log and counter key of the history back and
// counts the acknowledged writes the final state lacks: an APPENDed token
// missing from its log, or a counter below an INCR's acknowledged result.
// (Registers are overwritten by design; the linearizability check covers
// them.)
func lostWrites(ctx context.Context, sys System, h []lincheck.Op) (int, error) {
	tokens := map[string][]string{}
	counts := map[string]int64{}
	for _, op := range h {
		if op.Unknown {
			continue
		}
		switch op.Input.Kind {
		case lincheck.Append:
			tokens[op.Input.Key] = append(tokens[op.Input.Key], op.Input.Arg)
		case lincheck.Incr:
			if !op.Output.NotInt {
				counts[op.Input.Key] = max(counts[op.Input.Key], op.Output.N)
			}
		}
	}
	t := sys.KV(1 << 20)
	defer t.Close()
	read := func(key string) (lincheck.Output, error) {
		in := lincheck.Input{Kind: lincheck.Get, Key: key}
		var last lincheck.Reply
		for range 50 {
			if err := t.Prepare(ctx, in); err != nil {
				return lincheck.Output{}, err
			}
			if last = t.Do(in); last.Outcome == lincheck.Done {
				return last.Output, nil
			}
		}
		return lincheck.Output{}, fmt.Errorf("GET %s: no answer in 50 attempts (last at %s)", key, last.Where)
	}
	lost := 0
	for key, toks := range tokens {
		out, err := read(key)
		if err != nil {
			return lost, err
		}
		have := map[string]bool{}
		for _, t := range strings.SplitAfter(out.Value, ",") {
			have[t] = true
		}
		for _, tok := range toks {
			if !have[tok] {
				lost++
			}
		}
	}
	for key, n := range counts {
		out, err := read(key)
		if err != nil {
			return lost, err
		}
		v, _ := strconv.ParseInt(out.Value, 10, 64)
		if out.Nil || v < n {
			lost += int(n - v)
		}
	}
	return lost, nil
}
