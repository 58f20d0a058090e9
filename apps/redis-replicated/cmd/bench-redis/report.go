package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Row is one test of one redis-benchmark run, as its --csv output gives it.
type Row struct {
	Test         string
	RPS          float64
	AvgMs, MinMs float64
	P50Ms, P95Ms float64
	P99Ms, MaxMs float64
}

// csvColumns are the columns of Redis 7's redis-benchmark --csv, looked up
// by name so that a reordering does not go unnoticed.
var csvColumns = []string{"test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_latency_ms"}

// ParseCSV reads redis-benchmark --csv output: a header line, then one line
// per test. Lines before the header (warnings some versions print on
// stdout) are skipped.
func ParseCSV(r io.Reader) ([]Row, error) {
	all, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read redis-benchmark output: %w", err)
	}
	// The header is the first line that starts with a quoted field.
	text := string(all)
	i := 0
	for i < len(text) && text[i] != '"' {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			i = len(text)
			break
		}
		i += j + 1
	}
	if i >= len(text) {
		return nil, fmt.Errorf("no csv header in redis-benchmark output %q", truncate(text, 300))
	}
	cr := csv.NewReader(strings.NewReader(text[i:]))
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse redis-benchmark csv: %w", err)
	}
	col := map[string]int{}
	for j, h := range recs[0] {
		col[h] = j
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("redis-benchmark csv lacks column %q (header %q)", c, recs[0])
		}
	}
	var rows []Row
	for _, rec := range recs[1:] {
		var v [7]float64
		for k, c := range csvColumns[1:] {
			f, err := strconv.ParseFloat(rec[col[c]], 64)
			if err != nil {
				return nil, fmt.Errorf("redis-benchmark csv: %s of %s is %q: %w", c, rec[col["test"]], rec[col[c]], err)
			}
			v[k] = f
		}
		rows = append(rows, Row{Test: rec[col["test"]], RPS: v[0], AvgMs: v[1], MinMs: v[2], P50Ms: v[3], P95Ms: v[4], P99Ms: v[5], MaxMs: v[6]})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("redis-benchmark csv has a header but no tests")
	}
	return rows, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Setting is one way of driving the server.
type Setting struct{ Clients, Pipeline int }

func (s Setting) String() string { return fmt.Sprintf("-c %d -P %d", s.Clients, s.Pipeline) }

// The two settings: one client with one request outstanding measures
// latency; 50 clients pipelining 16 requests each measure throughput.
var (
	latencySetting    = Setting{Clients: 1, Pipeline: 1}
	throughputSetting = Setting{Clients: 50, Pipeline: 16}
	settings          = []Setting{latencySetting, throughputSetting}
)

// Result is one test of one target in one setting.
type Result struct {
	Target  string
	Setting Setting
	Row
}

// FormatTable writes the results as an aligned table, latencies in µs.
func FormatTable(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "%-11s %-5s %7s %8s %12s %10s %10s\n", "target", "test", "clients", "pipeline", "rps", "p50_us", "p99_us")
	for _, r := range rs {
		fmt.Fprintf(w, "%-11s %-5s %7d %8d %12.0f %10.1f %10.1f\n",
			r.Target, r.Test, r.Setting.Clients, r.Setting.Pipeline, r.RPS, r.P50Ms*1000, r.P99Ms*1000)
	}
}

// Summary is a target's two headline numbers.
type Summary struct {
	RPS   float64 // mean of SET and GET rps at -c 50 -P 16
	P50us float64 // mean of SET and GET p50 at -c 1, in µs
	OK    bool    // the target ran and both numbers exist
}

// Summarize computes target's Summary: the mean over its SET and GET tests,
// so that one number stands for the read/write mix without favouring either.
func Summarize(rs []Result, target string) Summary {
	var rps, p50 []float64
	for _, r := range rs {
		if r.Target != target || (r.Test != "SET" && r.Test != "GET") {
			continue
		}
		switch r.Setting {
		case throughputSetting:
			rps = append(rps, r.RPS)
		case latencySetting:
			p50 = append(p50, r.P50Ms*1000)
		}
	}
	if len(rps) == 0 || len(p50) == 0 {
		return Summary{}
	}
	return Summary{RPS: mean(rps), P50us: mean(p50), OK: true}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// num formats a headline number; a target that did not run reads "n/a".
func num(ok bool, v float64, prec int) string {
	if !ok {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// FormatSummary writes the standalone line, the ratio lines and, last, the
// headline line.
func FormatSummary(w io.Writer, rs []Result) {
	rep, sta, red := Summarize(rs, targetReplicated), Summarize(rs, targetStandalone), Summarize(rs, targetRedis)
	fmt.Fprintf(w, "bench-redis standalone_rps=%s standalone_p50_us=%s\n", num(sta.OK, sta.RPS, 0), num(sta.OK, sta.P50us, 1))
	if rep.OK && red.OK {
		fmt.Fprintf(w, "bench-redis ratio replicated/redis rps=%.3f p50=%.3f\n", rep.RPS/red.RPS, rep.P50us/red.P50us)
	}
	if rep.OK && sta.OK {
		fmt.Fprintf(w, "bench-redis replicated-standalone p50_us=%.1f\n", rep.P50us-sta.P50us)
	}
	fmt.Fprintf(w, "bench-redis replicated_rps=%s redis_rps=%s replicated_p50_us=%s redis_p50_us=%s\n",
		num(rep.OK, rep.RPS, 0), num(red.OK, red.RPS, 0), num(rep.OK, rep.P50us, 1), num(red.OK, red.P50us, 1))
}
