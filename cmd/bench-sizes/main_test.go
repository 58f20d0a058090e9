package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/testbed"
)

// Outputs as the tools print them (the leader's standard output).
const (
	latOut = `wrote 20000 latencies to dump-st-64-1.txt
main-st-lat: 20000 commands of 64 B in 0.0758 s: 264006 commands/s (shm, 5 replicas, 1 outstanding)
main-st-lat transport=shm payload=64 outstanding=1 n=20000 p50=1032ns p90=1532ns p99=65055ns p99.9=162303ns max=6402047ns
`
	latOutHgrm = `wrote 5000 latencies to dump-st-64-1.txt
wrote the percentile distribution to lat.hgrm
main-st-lat: 5000 commands of 64 B in 3.5 s: 1428 commands/s (tcp, 7 replicas, 1 outstanding)
main-st-lat transport=tcp payload=64 outstanding=1 n=5000 p50=669695ns p90=1200000ns p99=2918399ns p99.9=7557119ns max=90000000ns
`
	tputOut = `Received 200000 in 1292544723 ns
main-st: 200000 commands of 64 B in 1.29 s: 154734 commands/s, 9.9 MB/s (shm, 7 replicas, 16 outstanding)
`
)

func TestParseLat(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want LatResult
		err  string
	}{
		{"shm", latOut, LatResult{Transport: "shm", N: 20000, P50: 1032, P90: 1532, P99: 65055, P999: 162303, Max: 6402047, Rate: 264006}, ""},
		{"tcp with hgrm", latOutHgrm, LatResult{Transport: "tcp", N: 5000, P50: 669695, P90: 1200000, P99: 2918399, P999: 7557119, Max: 90000000, Rate: 1428}, ""},
		{"no rate line", "main-st-lat transport=shm payload=8 outstanding=2 n=10 p50=1ns p90=2ns p99=3ns p99.9=4ns max=5ns\n",
			LatResult{Transport: "shm", N: 10, P50: 1, P90: 2, P99: 3, P999: 4, Max: 5}, ""},
		{"no trailing newline", strings.TrimSuffix(latOut, "\n"), LatResult{Transport: "shm", N: 20000, P50: 1032, P90: 1532, P99: 65055, P999: 162303, Max: 6402047, Rate: 264006}, ""},
		{"empty", "", LatResult{}, "no percentile line"},
		{"main-st's output", tputOut, LatResult{}, "no percentile line"},
		{"truncated", "main-st-lat transport=shm payload=64 outstanding=1 n=20000 p50=1032ns p90=1532ns\n", LatResult{}, "no percentile line"},
		{"nothing timed", "main-st-lat transport=shm payload=64 outstanding=1 n=0 p50=0ns p90=0ns p99=0ns p99.9=0ns max=0ns\n", LatResult{}, "n=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLat([]byte(tc.out))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseLat = %+v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseLat = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseTput(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want TputResult
		err  string
	}{
		{"shm", tputOut, TputResult{Commands: 200000, Elapsed: 1292544723, Rate: 200000 / 1.292544723, Transport: "shm", Replicas: 7}, ""},
		{"tcp", "Received 20000 in 1000000000 ns\nmain-st: 20000 commands of 64 B in 1 s: 20000 commands/s, 1.3 MB/s (tcp, 3 replicas, 16 outstanding)\n",
			TputResult{Commands: 20000, Elapsed: 1e9, Rate: 20000, Transport: "tcp", Replicas: 3}, ""},
		{"Mu's line only", "Received 1000 in 500000000 ns\n", TputResult{Commands: 1000, Elapsed: 5e8, Rate: 2000}, ""},
		{"empty", "", TputResult{}, "no \"Received"},
		{"main-st-lat's output", latOut, TputResult{}, "no \"Received"},
		{"zero time", "Received 1000 in 0 ns\n", TputResult{}, "bad Received line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTput([]byte(tc.out))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseTput = %+v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Rate - tc.want.Rate; d > 1e-6 || d < -1e-6 {
				t.Fatalf("rate %v, want %v", got.Rate, tc.want.Rate)
			}
			got.Rate = tc.want.Rate
			if got != tc.want {
				t.Fatalf("parseTput = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{"3,5,7", []int{3, 5, 7}, ""},
		{"7, 3,5", []int{3, 5, 7}, ""},
		{"1", []int{1}, ""},
		{"3,3", nil, "given twice"},
		{"0", nil, "not a cluster size"},
		{"16", nil, "not a cluster size"},
		{"three", nil, "not a cluster size"},
		{"", nil, "not a cluster size"},
	} {
		got, err := parseSizes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSizes(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !equal(got, tc.want) {
			t.Errorf("parseSizes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\n", 5, "a"},
		{"", 3, ""},
		// The tools' progress reports, bare (bed runs) or prefixed
		// (--local), and carriage returns are dropped.
		{"progress: 1/2 commands (50%), 1 commands/s, 1s elapsed\nmain-st-lat: leader 1 went away\n", 3, "main-st-lat: leader 1 went away"},
		{"[1] progress: 1/2\r[2] main-st: boom\r\n\n", 3, "[2] main-st: boom"},
	} {
		if got := lastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestSetTput(t *testing.T) {
	for _, tc := range []struct {
		rates         []float64
		med, min, max float64
	}{
		{[]float64{300, 100, 200}, 200, 100, 300},
		{[]float64{5}, 5, 5, 5},
		{[]float64{400, 100}, 400, 100, 400},
	} {
		var rs []TputResult
		for _, v := range tc.rates {
			rs = append(rs, TputResult{Rate: v})
		}
		var r Row
		r.setTput(rs)
		if r.Tput == nil || r.Tput.Rate != tc.med || r.TputMin != tc.min || r.TputMax != tc.max || r.TputRuns != len(tc.rates) {
			t.Errorf("setTput(%v) = %+v", tc.rates, r)
		}
	}
	var r Row
	if r.setTput(nil); r.Tput != nil {
		t.Errorf("setTput(nil) set %+v", r.Tput)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReport checks the table's ratios and the headline against rows
// with a failed run in them.
func TestReport(t *testing.T) {
	rows := []*Row{
		{Size: 3, Transport: "shm", Lat: &LatResult{P50: 1000, P99: 40000, P999: 300000}, Tput: &TputResult{Rate: 600000}},
		{Size: 5, Transport: "shm", Lat: &LatResult{P50: 1500, P99: 80000, P999: 500000}, Tput: &TputResult{Rate: 300000}},
		{Size: 3, Transport: "tcp", Lat: &LatResult{P50: 150000, P99: 1400000, P999: 2000000}, Err: []string{"main-st: boom"}},
		{Size: 5, Transport: "tcp", Lat: &LatResult{P50: 300000, P99: 1700000, P999: 4000000}, Tput: &TputResult{Rate: 20000}},
	}
	var b bytes.Buffer
	if err := writeTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`p50 µs +p99 µs +p99\.9 µs +commands/s +p50 vs 3 +commands/s vs 3`),
		regexp.MustCompile(`(?m)^ +5 +shm +1\.50 +80\.0 +500\.0 +300000 +1\.50x +0\.50x *$`),
		regexp.MustCompile(`(?m)^ +3 +tcp +150\.0 +1400 +2000 +n/a +1\.00x +n/a *$`),
		// No tcp throughput at 3: 5's ratio has no reference but itself.
		regexp.MustCompile(`(?m)^ +5 +tcp +300\.0 +1700 +4000 +20000 +2\.00x +1\.00x *$`),
	} {
		if !want.MatchString(table) {
			t.Errorf("table does not match %v:\n%s", want, table)
		}
	}
	got := headline([]int{3, 5, 7}, rows)
	want := "bench-sizes shm_p50_us=3:1.00,5:1.50,7:n/a tcp_p50_us=3:150.00,5:300.00,7:n/a shm_ops=3:600000,5:300000,7:n/a tcp_ops=3:n/a,5:20000,7:n/a"
	if got != want {
		t.Errorf("headline\n got %s\nwant %s", got, want)
	}
}

var headlineRE = regexp.MustCompile(`^bench-sizes shm_p50_us=(\S+) tcp_p50_us=(\S+) shm_ops=(\S+) tcp_ops=(\S+)$`)

// TestEndToEnd runs bench-sizes on small clusters with tiny counts: shm
// always, tcp in a test bed when root, and checks the table, the CSV and
// the PNG. Its limits are hang detectors, not performance thresholds.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tools and starts clusters of processes")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "github.com/gomu-rdma/gomu/cmd/main-st", "github.com/gomu-rdma/gomu/cmd/main-st-lat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	root := testbed.Root()
	dir := t.TempDir()
	args := []string{name, "--sizes", "3,5", "--count", "3000", "--tcp-count", "500", "--st-repeat", "2",
		"--main-st", filepath.Join(bin, "main-st"), "--main-st-lat", filepath.Join(bin, "main-st-lat"),
		"--out-dir", dir, "--timeout", "40s", "--netns=" + strconv.FormatBool(root),
		// Not the default bed: a real run beside the test keeps its own.
		"--bed-name", "gbszt", "--subnet", "10.213.10.0/24"}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := newApp(&stdout, &stderr).RunContext(ctx, args); err != nil {
		t.Fatalf("bench-sizes: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("stdout:\n%s", stdout.String())
	transports := []string{"shm"}
	if root {
		transports = append(transports, "tcp")
	}

	// The table: a row per size and transport, every number there.
	for _, tr := range transports {
		for _, n := range []string{"3", "5"} {
			row := regexp.MustCompile(`(?m)^ +` + n + ` +` + tr + `( +\S+){6} *$`)
			line := row.FindString(stdout.String())
			if line == "" || strings.Contains(line, na) {
				t.Errorf("no complete table row for %s replicas on %s: %q", n, tr, line)
			}
		}
	}
	// The last line.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	m := headlineRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line is not the headline: %q", lines[len(lines)-1])
	}
	for i, tr := range []string{"shm", "tcp", "shm", "tcp"} {
		if tr == "tcp" && !root {
			continue
		}
		if !regexp.MustCompile(`^3:[0-9.]+,5:[0-9.]+$`).MatchString(m[i+1]) {
			t.Errorf("headline field %d %q: want 3:<v>,5:<v>", i+1, m[i+1])
		}
	}

	// The CSV: the header, then the rows with a p50 and a rate each.
	f, err := os.Open(filepath.Join(dir, name+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+2*len(transports) || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("CSV: %d records, header %v; want %d rows under %v", len(recs), recs[0], 2*len(transports), csvHeader)
	}
	for _, r := range recs[1:] {
		for _, col := range []int{2, 9} { // p50_us, ops_per_s
			if v, err := strconv.ParseFloat(r[col], 64); err != nil || v <= 0 {
				t.Errorf("CSV row %v: %s = %q, want a positive number", r, recs[0][col], r[col])
			}
		}
	}

	// The PNG.
	png, err := os.ReadFile(filepath.Join(dir, name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("bench-sizes.png: %d bytes, not a drawn PNG", len(png))
	}
	if root {
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "gbszt-") {
			t.Fatalf("the test bed is still up:\n%s", out)
		}
	}
}
