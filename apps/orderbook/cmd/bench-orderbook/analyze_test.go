package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
)

const ms = int64(time.Millisecond)

// steady is n orders of one trader, back to back, each taking lat ns,
// the first sent at from.
func steady(from int64, n int, lat int64) []trader.Sample {
	out := make([]trader.Sample, n)
	t := from
	for i := range out {
		out[i] = trader.Sample{Send: t, Latency: lat, Trader: 1}
		t += lat
	}
	return out
}

func TestPercentiles(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want Pcts
	}{
		{nil, Pcts{}},
		{[]int64{7}, Pcts{N: 1, P50: 7, P99: 7, P999: 7, Max: 7}},
		{[]int64{4, 1, 3, 2}, Pcts{N: 4, P50: 2, P99: 4, P999: 4, Max: 4}},
		{func() []int64 {
			v := make([]int64, 1000)
			for i := range v {
				v[i] = int64(1000 - i)
			}
			return v
		}(), Pcts{N: 1000, P50: 500, P99: 990, P999: 999, Max: 1000}},
	} {
		if got := percentiles(tc.in); got != tc.want {
			t.Errorf("percentiles(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestAnalyze(t *testing.T) {
	base := int64(1_700_000_000_000_000_000)
	for _, tc := range []struct {
		name    string
		samples []trader.Sample
		faultAt int64
		want    Fault // the fields checked: MaxGap, FaultGap, MaxLatency, Recovery, Before.N, After.N, P50s
	}{
		{
			// 10 orders of 1 ms, then one order sent at 10 ms that waits
			// 30 ms through the fault at 12 ms, then 10 more of 1 ms.
			name: "one stalled order",
			samples: append(append(steady(base, 10, ms),
				trader.Sample{Send: base + 10*ms, Latency: 30 * ms, Trader: 1}),
				steady(base+40*ms, 10, ms)...),
			faultAt: base + 12*ms,
			want: Fault{MaxGap: 30 * time.Millisecond, FaultGap: 28 * time.Millisecond, MaxLatency: 30 * time.Millisecond,
				Recovery: 28 * time.Millisecond, Before: Pcts{N: 10, P50: ms}, After: Pcts{N: 10, P50: ms}},
		},
		{
			// The longest silence comes before the fault (a spurious
			// election): the run's stall is it, the fault's is shorter.
			name: "stall before the fault",
			samples: append(append(append(steady(base, 5, ms),
				trader.Sample{Send: base + 5*ms, Latency: 50 * ms, Trader: 1}),
				steady(base+55*ms, 5, ms)...),
				append([]trader.Sample{{Send: base + 60*ms, Latency: 8 * ms, Trader: 1}}, steady(base+68*ms, 5, ms)...)...),
			faultAt: base + 61*ms,
			want: Fault{MaxGap: 50 * time.Millisecond, FaultGap: 7 * time.Millisecond, MaxLatency: 50 * time.Millisecond,
				Recovery: 7 * time.Millisecond, Before: Pcts{N: 11, P50: ms}, After: Pcts{N: 5, P50: ms}},
		},
		{
			// A silence long after the fault (beyond the window) is not
			// the fault's.
			name: "late stall",
			samples: append(append(steady(base, 600, ms),
				trader.Sample{Send: base + 600*ms, Latency: 900 * ms, Trader: 1}),
				steady(base+1500*ms, 3, ms)...),
			faultAt: base + 2*ms,
			want: Fault{MaxGap: 900 * time.Millisecond, FaultGap: time.Millisecond, MaxLatency: 900 * time.Millisecond,
				Recovery: time.Millisecond, Before: Pcts{N: 1, P50: ms}, After: Pcts{N: 601, P50: ms}},
		},
		{
			// Two traders: while one waits out the fault the other goes
			// on, so the silence is only where both wait.
			name: "two traders",
			samples: []trader.Sample{
				{Send: base, Latency: ms, Trader: 1}, {Send: base, Latency: 2 * ms, Trader: 2},
				{Send: base + ms, Latency: 20 * ms, Trader: 1}, {Send: base + 2*ms, Latency: 10 * ms, Trader: 2},
				{Send: base + 12*ms, Latency: ms, Trader: 2}, {Send: base + 21*ms, Latency: ms, Trader: 1},
			},
			faultAt: base + 3*ms,
			want: Fault{MaxGap: 10 * time.Millisecond, FaultGap: 9 * time.Millisecond, MaxLatency: 20 * time.Millisecond,
				Recovery: 9 * time.Millisecond, Before: Pcts{N: 2, P50: ms}, After: Pcts{N: 2, P50: ms}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := analyze("pause", tc.samples, tc.faultAt, 500*time.Millisecond)
			w := tc.want
			if f.Orders != len(tc.samples) || f.MaxGap != w.MaxGap || f.FaultGap != w.FaultGap || f.MaxLatency != w.MaxLatency ||
				f.Recovery != w.Recovery || f.Before.N != w.Before.N || f.After.N != w.After.N ||
				f.Before.P50 != w.Before.P50 || f.After.P50 != w.After.P50 {
				t.Fatalf("analyze = %+v\nwant      %+v", f, w)
			}
		})
	}
	if f := analyze("kill", nil, base, time.Second); f.Orders != 0 || f.MaxGap != 0 {
		t.Fatalf("no samples: %+v", f)
	}
}

func TestHeadline(t *testing.T) {
	check := trader.CheckResult{Ran: true, Traders: 1, Acked: 10, Applied: 10}
	sides := []Side{
		{Name: runStandalone, Lat: Pcts{N: 10, P50: 2000}, Check: check},
		{Name: runReplicated, Lat: Pcts{N: 10, P50: 3200}, Check: check},
	}
	faults := []Fault{
		{Name: faultPause, Orders: 5, MaxGap: 21500 * time.Microsecond, Check: check},
		{Name: faultKill, Orders: 5, MaxGap: 3 * time.Millisecond, Check: trader.CheckResult{Ran: true, Doubled: 2}},
	}
	want := "bench-orderbook standalone_p50_ns=2000 replicated_p50_ns=3200 delta_p50_ns=1200 pause_stall_ms=21.50 kill_stall_ms=3.00 lost=0 doubled=2"
	if got := headline(sides, faults); got != want {
		t.Errorf("headline\n got %s\nwant %s", got, want)
	}
	want = "bench-orderbook standalone_p50_ns=n/a replicated_p50_ns=n/a delta_p50_ns=n/a pause_stall_ms=n/a kill_stall_ms=n/a lost=n/a doubled=n/a"
	if got := headline(nil, nil); got != want {
		t.Errorf("empty headline\n got %s\nwant %s", got, want)
	}
	var b bytes.Buffer
	printSides(&b, sides)
	if !strings.Contains(b.String(), "= 1.2 µs (target ≤ 1.5 µs: met)") {
		t.Errorf("comparison:\n%s", b.String())
	}
	b.Reset()
	printFaults(&b, faults)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "kill ") {
		t.Errorf("fault table:\n%s", b.String())
	}
}

func TestWritePNG(t *testing.T) {
	base := int64(1_700_000_000_000_000_000)
	for _, n := range []int{50, maxPoints + 1000} {
		samples := steady(base, n, 20_000)
		samples[n/2].Latency = 30 * ms
		path := filepath.Join(t.TempDir(), "x.png")
		marks := []Mark{{At: samples[n/2].Send, Label: "replica 1 paused"}, {At: samples[n/2].Send + 5*ms, Label: "continued"}}
		if err := writePNG(path, "test", samples, marks); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%d samples: not a PNG: %v", n, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
			t.Fatalf("image of %v", b)
		}
		if pts := plotPoints(samples, base); len(pts) > maxPoints || !hasY(pts, 30_000) {
			t.Fatalf("%d samples: %d points drawn, the spike kept: %v", n, len(pts), hasY(pts, 30_000))
		}
	}
	if err := writePNG(filepath.Join(t.TempDir(), "y.png"), "empty", nil, []Mark{{At: 1}}); err == nil {
		t.Fatal("drew nothing without an error")
	}
}

func hasY(pts interface {
	Len() int
	XY(int) (float64, float64)
}, y float64) bool {
	for i := range pts.Len() {
		if _, v := pts.XY(i); v == y {
			return true
		}
	}
	return false
}
