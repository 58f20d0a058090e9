package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
)

// na marks what did not run or failed.
const na = "n/a"

// us is ns in µs for the table: two decimals under 10 µs, one under 1 ms,
// none above.
func us(ns int64) string {
	v := float64(ns) / 1e3
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func numCPU() int { return runtime.NumCPU() }

// base is the row of the smallest size on r's transport that measured
// what get reads, the reference of r's ratios.
func base(rows []*Row, transport string, ok func(*Row) bool) *Row {
	var b *Row
	for _, r := range rows {
		if r.Transport == transport && ok(r) && (b == nil || r.Size < b.Size) {
			b = r
		}
	}
	return b
}

func hasLat(r *Row) bool  { return r.Lat != nil }
func hasTput(r *Row) bool { return r.Tput != nil }

// p50Ratio and opsRatio are r's p50 and commands/s over those of the
// smallest size of its transport; ok is false when either is missing.
func p50Ratio(rows []*Row, r *Row) (float64, bool) {
	b := base(rows, r.Transport, hasLat)
	if b == nil || r.Lat == nil || b.Lat.P50 == 0 {
		return 0, false
	}
	return float64(r.Lat.P50) / float64(b.Lat.P50), true
}

func opsRatio(rows []*Row, r *Row) (float64, bool) {
	b := base(rows, r.Transport, hasTput)
	if b == nil || r.Tput == nil || b.Tput.Rate == 0 {
		return 0, false
	}
	return r.Tput.Rate / b.Tput.Rate, true
}

// baseSize names the reference size of the ratio columns: the smallest
// size of every row (3 by default).
func baseSize(rows []*Row) int {
	n := 0
	for _, r := range rows {
		if n == 0 || r.Size < n {
			n = r.Size
		}
	}
	return n
}

func ratio(v float64, ok bool) string {
	if !ok {
		return na
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "x"
}

// writeTable prints one row per size and transport.
func writeTable(w io.Writer, rows []*Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	n := baseSize(rows)
	fmt.Fprintf(tw, "replicas\ttransport\tp50 µs\tp99 µs\tp99.9 µs\tcommands/s\tp50 vs %d\tcommands/s vs %d\t\n", n, n)
	for _, r := range rows {
		p50, p99, p999, ops := na, na, na, na
		if r.Lat != nil {
			p50, p99, p999 = us(r.Lat.P50), us(r.Lat.P99), us(r.Lat.P999)
		}
		if r.Tput != nil {
			ops = strconv.FormatFloat(r.Tput.Rate, 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Size, r.Transport, p50, p99, p999, ops,
			ratio(p50Ratio(rows, r)), ratio(opsRatio(rows, r)))
	}
	return tw.Flush()
}

// csvHeader is bench-sizes.csv's first record.
var csvHeader = []string{
	"replicas", "transport", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "lat_n", "lat_ops_per_s",
	"ops_per_s", "ops_min", "ops_max", "ops_runs", "p50_ratio", "ops_ratio", "payload", "count", "lat_outstanding", "st_outstanding", "profile", "poll", "error",
}

// writeCSV writes the rows with the settings; missing values are empty.
func writeCSV(path string, cfg Config, rows []*Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	cw.Write(csvHeader)
	num := func(v float64, ok bool, prec int) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	for _, r := range rows {
		rec := []string{strconv.Itoa(r.Size), r.Transport}
		l := r.Lat
		for _, v := range []func() int64{
			func() int64 { return l.P50 }, func() int64 { return l.P90 }, func() int64 { return l.P99 },
			func() int64 { return l.P999 }, func() int64 { return l.Max },
		} {
			if l == nil {
				rec = append(rec, "")
			} else {
				rec = append(rec, num(float64(v())/1e3, true, 3))
			}
		}
		if l == nil {
			rec = append(rec, "", "")
		} else {
			rec = append(rec, strconv.FormatInt(l.N, 10), num(l.Rate, true, 0))
		}
		rate, okRate := 0.0, r.Tput != nil
		if okRate {
			rate = r.Tput.Rate
		}
		pr, okP := p50Ratio(rows, r)
		or, okO := opsRatio(rows, r)
		rec = append(rec, num(rate, okRate, 0), num(r.TputMin, okRate, 0), num(r.TputMax, okRate, 0), strconv.Itoa(r.TputRuns),
			num(pr, okP, 3), num(or, okO, 3),
			strconv.Itoa(cfg.Payload), strconv.Itoa(cfg.count(r.Transport)), strconv.Itoa(cfg.Outstanding), strconv.Itoa(cfg.STOutstanding),
			cfg.Profile, pollName(cfg.Poll), strings.Join(r.Err, "; "))
		cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// headline is the last line: per transport, size:p50 in µs and
// size:commands/s, n/a where a run failed or did not run.
func headline(sizes []int, rows []*Row) string {
	find := func(tr string, n int) *Row {
		for _, r := range rows {
			if r.Transport == tr && r.Size == n {
				return r
			}
		}
		return nil
	}
	field := func(tr string, get func(*Row) string) string {
		parts := make([]string, len(sizes))
		for i, n := range sizes {
			v := na
			if r := find(tr, n); r != nil {
				v = get(r)
			}
			parts[i] = fmt.Sprintf("%d:%s", n, v)
		}
		return strings.Join(parts, ",")
	}
	p50 := func(r *Row) string {
		if r.Lat == nil {
			return na
		}
		return strconv.FormatFloat(float64(r.Lat.P50)/1e3, 'f', 2, 64)
	}
	ops := func(r *Row) string {
		if r.Tput == nil {
			return na
		}
		return strconv.FormatFloat(r.Tput.Rate, 'f', 0, 64)
	}
	return fmt.Sprintf("%s shm_p50_us=%s tcp_p50_us=%s shm_ops=%s tcp_ops=%s", name,
		field("shm", p50), field("tcp", p50), field("shm", ops), field("tcp", ops))
}
