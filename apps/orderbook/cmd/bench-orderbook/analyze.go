package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
)

// Pcts are exact percentiles of a set of latencies, in ns (nearest rank).
type Pcts struct {
	N                   int
	P50, P99, P999, Max int64
}

// percentiles computes Pcts of lats (it sorts a copy).
func percentiles(lats []int64) Pcts {
	if len(lats) == 0 {
		return Pcts{}
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	rank := func(q float64) int64 {
		// The epsilon keeps 99.9% of 1000 at rank 999, not 1000.
		i := int(math.Ceil(q/100*float64(len(s))-1e-9)) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Pcts{N: len(s), P50: rank(50), P99: rank(99), P999: rank(99.9), Max: s[len(s)-1]}
}

// Fault is what one fault run measured around its fault.
type Fault struct {
	Name    string // pause, kill
	FaultAt int64  // unix ns the leader was failed
	Orders  int
	// MaxGap is the run's longest time between consecutive order
	// completions (the traders' longest silence, whatever caused it),
	// and GapFrom when it began.
	MaxGap  time.Duration
	GapFrom int64
	// FaultGap is the longest such silence that the fault caused: the
	// longest gap that ends after the fault and begins within the
	// window after it.
	FaultGap time.Duration
	// MaxLatency is the slowest order's latency.
	MaxLatency time.Duration
	// Recovery is from the fault to the end of FaultGap: the first
	// answer after the fault's silence.
	Recovery time.Duration
	// Before are the orders answered before the fault; After those sent
	// once it was recovered from.
	Before, After Pcts
	Check         trader.CheckResult
	PNG, Timeline string
}

// analyze measures samples (in any order) around the fault at faultAt:
// the fault's silence is looked for in the window after it.
func analyze(name string, samples []trader.Sample, faultAt int64, window time.Duration) Fault {
	f := Fault{Name: name, FaultAt: faultAt, Orders: len(samples)}
	if len(samples) == 0 {
		return f
	}
	done := make([]int64, len(samples))
	for i, s := range samples {
		done[i] = s.Send + s.Latency
		f.MaxLatency = max(f.MaxLatency, time.Duration(s.Latency))
	}
	slices.Sort(done)
	recovered := faultAt
	for i := 1; i < len(done); i++ {
		from, to := done[i-1], done[i]
		g := time.Duration(to - from)
		if g > f.MaxGap {
			f.MaxGap, f.GapFrom = g, from
		}
		// A gap spanning the fault counts from the fault: what came
		// before it was ordinary waiting.
		if to > faultAt && from < faultAt+window.Nanoseconds() {
			if fg := time.Duration(to - max(from, faultAt)); fg > f.FaultGap {
				f.FaultGap, recovered = fg, to
			}
		}
	}
	f.Recovery = time.Duration(recovered - faultAt)
	var before, after []int64
	for _, s := range samples {
		switch {
		case s.Send+s.Latency < faultAt:
			before = append(before, s.Latency)
		case s.Send >= recovered:
			after = append(after, s.Latency)
		}
	}
	f.Before, f.After = percentiles(before), percentiles(after)
	return f
}

// Side is one run of the side-by-side comparison.
type Side struct {
	Name       string // standalone, replicated
	Lat        Pcts
	Throughput float64
	Check      trader.CheckResult
	Err        error
}

// sideOf summarizes a comparison run.
func sideOf(name string, r *trader.Report, err error) Side {
	s := Side{Name: name, Err: err}
	if r == nil {
		return s
	}
	lats := make([]int64, len(r.Samples))
	for i, x := range r.Samples {
		lats[i] = x.Latency
	}
	s.Lat, s.Throughput, s.Check = percentiles(lats), r.Throughput(), r.Check
	return s
}

func usStr(ns int64) string { return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64) }
func msStr(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// printSides writes the comparison table and the p50 difference.
func printSides(w io.Writer, sides []Side) {
	fmt.Fprintf(w, "%-11s %8s %9s %9s %9s %9s %10s  %s\n", "run", "orders", "p50_us", "p99_us", "p99.9_us", "max_us", "orders/s", "check")
	for _, s := range sides {
		if s.Err != nil && s.Lat.N == 0 {
			fmt.Fprintf(w, "%-11s %8s  failed: %v\n", s.Name, "-", firstLine(s.Err))
			continue
		}
		fmt.Fprintf(w, "%-11s %8d %9s %9s %9s %9s %10.0f  %s\n", s.Name, s.Lat.N, usStr(s.Lat.P50), usStr(s.Lat.P99),
			usStr(s.Lat.P999), usStr(s.Lat.Max), s.Throughput, strings.TrimPrefix(s.Check.String(), "check: "))
	}
	if d, ok := deltaP50(sides); ok {
		verdict := "met"
		if d > targetDelta.Nanoseconds() {
			verdict = "missed"
		}
		fmt.Fprintf(w, "replicated p50 - standalone p50 = %s µs (target ≤ %s µs: %s)\n", usStr(d), usStr(targetDelta.Nanoseconds()), verdict)
	}
}

// targetDelta is what replication may add to the median: Mu's claim.
const targetDelta = 1500 * time.Nanosecond

func sideNamed(sides []Side, name string) (Side, bool) {
	for _, s := range sides {
		if s.Name == name && s.Lat.N > 0 {
			return s, true
		}
	}
	return Side{}, false
}

func deltaP50(sides []Side) (int64, bool) {
	st, ok1 := sideNamed(sides, runStandalone)
	rp, ok2 := sideNamed(sides, runReplicated)
	if !ok1 || !ok2 {
		return 0, false
	}
	return rp.Lat.P50 - st.Lat.P50, true
}

// printFaults writes the fault runs' table.
func printFaults(w io.Writer, faults []Fault) {
	fmt.Fprintf(w, "%-6s %8s %9s %9s %15s %12s %13s %13s %12s %12s %5s %7s  %s\n", "fault", "orders", "stall_ms", "max_ms", "fault_stall_ms", "recovery_ms",
		"before_p50_us", "before_p99_us", "after_p50_us", "after_p99_us", "lost", "doubled", "png")
	for _, f := range faults {
		fmt.Fprintf(w, "%-6s %8d %9s %9s %15s %12s %13s %13s %12s %12s %5s %7s  %s\n", f.Name, f.Orders, msStr(f.MaxGap), msStr(f.MaxLatency),
			msStr(f.FaultGap), msStr(f.Recovery), usStr(f.Before.P50), usStr(f.Before.P99), usStr(f.After.P50), usStr(f.After.P99),
			checkNum(f.Check, f.Check.Lost), checkNum(f.Check, f.Check.Doubled), f.PNG)
	}
}

func checkNum(c trader.CheckResult, v uint64) string {
	if !c.Ran {
		return "n/a"
	}
	return strconv.FormatUint(v, 10)
}

// headline is the last line: what the experiment found, n/a for what did
// not run or failed.
func headline(sides []Side, faults []Fault) string {
	na := "n/a"
	val := func(s string, ok bool) string {
		if !ok {
			return na
		}
		return s
	}
	st, okS := sideNamed(sides, runStandalone)
	rp, okR := sideNamed(sides, runReplicated)
	d, okD := deltaP50(sides)
	stall := map[string]string{}
	var lost, doubled uint64
	checked := false
	for _, f := range faults {
		if f.Orders > 0 {
			stall[f.Name] = msStr(f.MaxGap)
		}
		if f.Check.Ran {
			checked = true
			lost, doubled = lost+f.Check.Lost, doubled+f.Check.Doubled
		}
	}
	for _, s := range sides {
		if s.Check.Ran {
			checked = true
			lost, doubled = lost+s.Check.Lost, doubled+s.Check.Doubled
		}
	}
	get := func(name string) string {
		if v, ok := stall[name]; ok {
			return v
		}
		return na
	}
	return fmt.Sprintf("bench-orderbook standalone_p50_ns=%s replicated_p50_ns=%s delta_p50_ns=%s pause_stall_ms=%s kill_stall_ms=%s lost=%s doubled=%s",
		val(strconv.FormatInt(st.Lat.P50, 10), okS), val(strconv.FormatInt(rp.Lat.P50, 10), okR), val(strconv.FormatInt(d, 10), okD),
		get(faultPause), get(faultKill), val(strconv.FormatUint(lost, 10), checked), val(strconv.FormatUint(doubled, 10), checked))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
