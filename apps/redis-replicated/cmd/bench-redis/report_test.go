package main

import (
	"strings"
	"testing"
)

// Captured from Redis 7.0.15's redis-benchmark --csv, with a warning line
// in front as some setups print.
const cannedC1 = `WARNING: Could not fetch server CONFIG
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","11764.71","0.078","0.016","0.095","0.135","0.159","0.223"
"GET","8097.17","0.116","0.064","0.119","0.151","0.191","2.831"
`

const cannedC50 = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","600000.00","1.049","0.560","1.023","1.551","1.831","1.855"
"GET","800000.00","0.588","0.200","0.599","0.863","0.919","0.943"
`

func TestParseCSV(t *testing.T) {
	rows, err := ParseCSV(strings.NewReader(cannedC1))
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Test: "SET", RPS: 11764.71, AvgMs: 0.078, MinMs: 0.016, P50Ms: 0.095, P95Ms: 0.135, P99Ms: 0.159, MaxMs: 0.223},
		{Test: "GET", RPS: 8097.17, AvgMs: 0.116, MinMs: 0.064, P50Ms: 0.119, P95Ms: 0.151, P99Ms: 0.191, MaxMs: 2.831},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	// Columns are found by name, not position.
	swapped := "\"rps\",\"test\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"5\",\"SET\",\"1\",\"1\",\"2\",\"1\",\"3\",\"1\"\n"
	rows, err = ParseCSV(strings.NewReader(swapped))
	if err != nil || rows[0].Test != "SET" || rows[0].RPS != 5 || rows[0].P50Ms != 2 || rows[0].P99Ms != 3 {
		t.Fatalf("swapped columns: %+v, %v", rows, err)
	}
}

func TestParseCSVErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"quiet format":   "SET: 54054.05 requests per second, p50=0.471 msec\n",
		"missing column": "\"test\",\"rps\"\n\"SET\",\"1\"\n",
		"not a number":   strings.Replace(cannedC50, "600000.00", "fast", 1),
		"header only":    strings.SplitAfter(cannedC50, "\n")[0],
		"ragged":         cannedC50 + "\"SET\",\"1\"\n",
	} {
		if rows, err := ParseCSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: parsed as %+v", name, rows)
		}
	}
}

func results(t *testing.T, targets ...string) []Result {
	t.Helper()
	var rs []Result
	for _, tg := range targets {
		for _, c := range []struct {
			s   Setting
			csv string
		}{{latencySetting, cannedC1}, {throughputSetting, cannedC50}} {
			rows, err := ParseCSV(strings.NewReader(c.csv))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if tg == targetReplicated {
					// Make the replicated target twice as slow, so the
					// comparisons have something to show.
					r.RPS /= 2
					r.P50Ms *= 2
				}
				rs = append(rs, Result{Target: tg, Setting: c.s, Row: r})
			}
		}
	}
	return rs
}

func TestFormat(t *testing.T) {
	var b strings.Builder
	rs := results(t, targetReplicated, targetStandalone, targetRedis)
	FormatTable(&b, rs)
	FormatSummary(&b, rs)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1+12+4 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	if got, want := lines[0], "target      test  clients pipeline          rps     p50_us     p99_us"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	if got, want := lines[5], "standalone  SET         1        1        11765       95.0      159.0"; got != want {
		t.Errorf("row %q, want %q", got, want)
	}
	// rps: mean of 600000 and 800000 at -c 50 -P 16; p50: mean of 95 and
	// 119 µs at -c 1; replicated: half the rate, twice the median.
	for i, want := range []string{
		"bench-redis standalone_rps=700000 standalone_p50_us=107.0",
		"bench-redis ratio replicated/redis rps=0.500 p50=2.000",
		"bench-redis replicated-standalone p50_us=107.0",
		"bench-redis replicated_rps=350000 redis_rps=700000 replicated_p50_us=214.0 redis_p50_us=107.0",
	} {
		if got := lines[13+i]; got != want {
			t.Errorf("line %q, want %q", got, want)
		}
	}

	b.Reset()
	FormatSummary(&b, results(t, targetRedis))
	if got, want := b.String(), "bench-redis standalone_rps=n/a standalone_p50_us=n/a\n"+
		"bench-redis replicated_rps=n/a redis_rps=700000 replicated_p50_us=n/a redis_p50_us=107.0\n"; got != want {
		t.Errorf("redis only:\n%s\nwant:\n%s", got, want)
	}
}
