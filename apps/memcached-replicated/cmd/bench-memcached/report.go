package main

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// MemcslapRun is what memcslap (libmemcached-awesome 1.1's memslap) reports
// of one run:
//
//	Time to generate      10000 test keys:                0.082 seconds.
//	Time to set           10000 keys:                     1.008 seconds.     (get only: the initial load)
//	Time to start             1 threads:                  0.000 seconds.
//	--------------------------------------------------------------------
//	Time to get           10000 keys by    1 threads:     0.607 seconds.
//	--------------------------------------------------------------------
//	Time total:                                           1.688 seconds.
//
// Every thread runs all --execute-number operations; the count is of those
// that succeeded (a set thread stops at its first failure, a get that
// misses is not counted). memcslap exits 0 whatever failed.
type MemcslapRun struct {
	Test    string  // set, get or mget
	Keys    int     // keys set, or found, by all threads together
	Threads int     // --concurrency
	Seconds float64 // wall time of the timed test
	Loaded  int     // keys the initial load of a get test stored; -1 without one
}

var (
	memcslapTest = regexp.MustCompile(`^Time to (\w+)\s+(\d+) keys by\s+(\d+) threads:\s+([0-9.]+) seconds\.$`)
	memcslapLoad = regexp.MustCompile(`^Time to set\s+(\d+) keys:\s+([0-9.]+) seconds\.$`)
)

// ParseMemcslap reads memcslap's standard output.
func ParseMemcslap(out string) (MemcslapRun, error) {
	r := MemcslapRun{Loaded: -1}
	found := false
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if m := memcslapLoad.FindStringSubmatch(l); m != nil {
			r.Loaded, _ = strconv.Atoi(m[1])
		}
		if m := memcslapTest.FindStringSubmatch(l); m != nil {
			if found {
				return r, fmt.Errorf("memcslap reported two tests: %q", truncate(out, 400))
			}
			found = true
			r.Test = m[1]
			r.Keys, _ = strconv.Atoi(m[2])
			r.Threads, _ = strconv.Atoi(m[3])
			var err error
			if r.Seconds, err = strconv.ParseFloat(m[4], 64); err != nil {
				return r, fmt.Errorf("memcslap time %q: %w", m[4], err)
			}
		}
	}
	if !found {
		return r, fmt.Errorf("no \"Time to <test> N keys by T threads\" line in memcslap's output %q", truncate(out, 400))
	}
	return r, nil
}

// Rate is the run's operations per second when each thread ran n
// operations; misses counts the gets that found nothing. A set run that
// stored fewer than all keys, a get run whose initial load did, or one
// that found no key at all, failed.
func (r MemcslapRun) Rate(n int) (ops float64, misses int, err error) {
	want := n * r.Threads
	switch {
	case r.Threads < 1:
		return 0, 0, fmt.Errorf("memcslap ran %d threads", r.Threads)
	case r.Seconds <= 0:
		return 0, 0, fmt.Errorf("memcslap's %s run took %.3f s, too short to time: raise --requests", r.Test, r.Seconds)
	case r.Test == "set" && r.Keys < want:
		return 0, 0, fmt.Errorf("memcslap stored %d of %d keys", r.Keys, want)
	case r.Test != "set" && r.Loaded >= 0 && r.Loaded < n:
		return 0, 0, fmt.Errorf("memcslap's initial load stored %d of %d keys", r.Loaded, n)
	case r.Test != "set" && r.Keys == 0:
		return 0, 0, fmt.Errorf("memcslap's %s found none of %d keys", r.Test, want)
	}
	return float64(want) / r.Seconds, max(0, want-r.Keys), nil
}

// MemcaslapRun is what memcaslap (memaslap 1.0) reports at the end of a
// run of -t seconds:
//
//	cmd_get: 136945
//	cmd_set: 15224
//	get_misses: 0
//	...
//	Run time: 3.0s Ops: 152169 TPS: 50716 Net_rate: 4.3M/s
//
// It echoes every unexpected reply as "<fd> <reply>" (SERVER_ERROR ...,
// ERROR ...) on standard output, and keeps going.
type MemcaslapRun struct {
	Seconds               float64
	Ops                   int64
	TPS                   float64
	Gets, Sets, GetMisses int64
	Errors                int    // unexpected replies and failed verifications echoed
	FirstError            string // the first of them
}

var (
	memcaslapEnd   = regexp.MustCompile(`^Run time: ([0-9.]+)s Ops: (\d+) TPS: (\d+)`)
	memcaslapError = regexp.MustCompile(`^<\d+ `)
)

// ParseMemcaslap reads memcaslap's output (standard output and error).
func ParseMemcaslap(out string) (MemcaslapRun, error) {
	var r MemcaslapRun
	found := false
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if memcaslapError.MatchString(l) || strings.HasPrefix(l, "Server ") && strings.HasSuffix(l, " disconnect") {
			if r.Errors == 0 {
				r.FirstError = l
			}
			r.Errors++
			continue
		}
		if k, v, ok := strings.Cut(l, ": "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			switch k {
			case "cmd_get":
				r.Gets = n
			case "cmd_set":
				r.Sets = n
			case "get_misses":
				r.GetMisses = n
			}
			if err != nil && (k == "cmd_get" || k == "cmd_set" || k == "get_misses") {
				return r, fmt.Errorf("memcaslap %s %q: %w", k, v, err)
			}
		}
		if m := memcaslapEnd.FindStringSubmatch(l); m != nil {
			found = true
			r.Seconds, _ = strconv.ParseFloat(m[1], 64)
			r.Ops, _ = strconv.ParseInt(m[2], 10, 64)
			r.TPS, _ = strconv.ParseFloat(m[3], 64)
		}
	}
	if !found {
		return r, fmt.Errorf("no \"Run time: ... TPS: ...\" line in memcaslap's output %q", truncate(out, 400))
	}
	if r.Ops == 0 || r.TPS == 0 {
		return r, fmt.Errorf("memcaslap ran no operations: %q", truncate(out, 400))
	}
	return r, nil
}

// LatencyRun is the summary of a latency client, memcached-puts-only or
// memcached-gets-only:
//
//	memcached-puts-only: 20000 requests (SET, key 16 B, value 32 B) in 0.85 s: 23528 requests/s, 0 errors
//	...
//	memcached-puts-only key=16 value=32 n=20000 p50=35935ns p90=63327ns p99=84351ns p99.9=214527ns max=4124671ns
type LatencyRun struct {
	N                        int
	Rate                     float64 // requests/s
	P50, P90, P99, P999, Max float64 // ns
}

var latencyRate = regexp.MustCompile(` in [^:]+: ([0-9.]+) requests/s`)

// ParseLatency reads the output of the latency client called name; its
// last line is the summary.
func ParseLatency(name, out string) (LatencyRun, error) {
	var r LatencyRun
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	fields := strings.Fields(last)
	if len(fields) == 0 || fields[0] != name {
		return r, fmt.Errorf("%s's last line %q is not its summary", name, truncate(last, 200))
	}
	kv := map[string]string{}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	var err error
	if r.N, err = strconv.Atoi(kv["n"]); err != nil || r.N <= 0 {
		return r, fmt.Errorf("%s's summary %q: no count n=", name, last)
	}
	for _, p := range []struct {
		key string
		dst *float64
	}{{"p50", &r.P50}, {"p90", &r.P90}, {"p99", &r.P99}, {"p99.9", &r.P999}, {"max", &r.Max}} {
		v, ok := strings.CutSuffix(kv[p.key], "ns")
		if !ok {
			return r, fmt.Errorf("%s's summary %q: %s is not in ns", name, last, p.key)
		}
		if *p.dst, err = strconv.ParseFloat(v, 64); err != nil {
			return r, fmt.Errorf("%s's summary %q: %s: %w", name, last, p.key, err)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, name+": ") {
			if m := latencyRate.FindStringSubmatch(l); m != nil {
				r.Rate, _ = strconv.ParseFloat(m[1], 64)
			}
		}
	}
	if r.Rate <= 0 {
		return r, fmt.Errorf("%s's output has no \"N requests/s\" line: %q", name, truncate(out, 400))
	}
	return r, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Tools, in the order they run against a target.
const (
	toolMemcslap  = "memcslap"
	toolMemcaslap = "memcaslap"
	toolPuts      = "puts-only"
	toolGets      = "gets-only"
)

// memcaslapTest names memcaslap's mix: its default 9 gets to 1 set.
const memcaslapTest = "get9:set1"

// Result is one tool's run against one target: a rate, latencies for the
// latency clients, or the error that ended it.
type Result struct {
	Target string
	Tool   string
	Test   string
	Ops    float64 // operations/s
	Lat    bool    // the latencies are set
	P50us  float64
	P99us  float64
	P999us float64
	Err    error
}

// FormatTable writes the results as an aligned table, latencies in µs.
func FormatTable(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "%-11s %-10s %-10s %12s %10s %10s %10s\n", "target", "tool", "test", "ops/s", "p50_us", "p99_us", "p99.9_us")
	for _, r := range rs {
		if r.Err != nil {
			fmt.Fprintf(w, "%-11s %-10s %-10s %12s %10s %10s %10s\n", r.Target, r.Tool, r.Test, "failed", "-", "-", "-")
			continue
		}
		lat := [3]string{"-", "-", "-"}
		if r.Lat {
			for i, v := range []float64{r.P50us, r.P99us, r.P999us} {
				lat[i] = strconv.FormatFloat(v, 'f', 1, 64)
			}
		}
		fmt.Fprintf(w, "%-11s %-10s %-10s %12.0f %10s %10s %10s\n", r.Target, r.Tool, r.Test, r.Ops, lat[0], lat[1], lat[2])
	}
}

// find returns the successful result of target, tool and test.
func find(rs []Result, target, tool, test string) (Result, bool) {
	for _, r := range rs {
		if r.Target == target && r.Tool == tool && r.Test == test && r.Err == nil {
			return r, true
		}
	}
	return Result{}, false
}

// FormatComparison writes, for every tool and test, replicated's rate
// over memcached's and replicated's p50 minus standalone's, when the runs
// they need succeeded. It writes nothing when no pair exists.
func FormatComparison(w io.Writer, rs []Result) {
	type key struct{ tool, test string }
	var keys []key
	seen := map[key]bool{}
	for _, r := range rs {
		if k := (key{r.Tool, r.Test}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	header := false
	for _, k := range keys {
		rep, repOK := find(rs, targetReplicated, k.tool, k.test)
		sta, staOK := find(rs, targetStandalone, k.tool, k.test)
		mc, mcOK := find(rs, targetMemcached, k.tool, k.test)
		ratio, delta := "-", "-"
		if repOK && mcOK {
			ratio = strconv.FormatFloat(rep.Ops/mc.Ops, 'f', 3, 64)
		}
		if repOK && staOK && rep.Lat && sta.Lat {
			delta = strconv.FormatFloat(rep.P50us-sta.P50us, 'f', 1, 64)
		}
		if ratio == "-" && delta == "-" {
			continue
		}
		if !header {
			fmt.Fprintf(w, "%-10s %-10s %16s %16s\n", "tool", "test", "ops_rep/memcd", "p50_rep-sta_us")
			header = true
		}
		fmt.Fprintf(w, "%-10s %-10s %16s %16s\n", k.tool, k.test, ratio, delta)
	}
}

// Summary is a target's two headline numbers.
type Summary struct {
	Ops   float64 // mean of memcslap's set and get rates (text protocol)
	OpsOK bool
	P50us float64 // mean of the puts-only and gets-only medians
	P50OK bool
}

// Summarize computes target's Summary. Each number is a mean over a set
// and a get, so that it stands for the read/write mix without favouring
// either; it is missing unless both ran.
func Summarize(rs []Result, target string) Summary {
	var s Summary
	set, setOK := find(rs, target, toolMemcslap, "set")
	get, getOK := find(rs, target, toolMemcslap, "get")
	if setOK && getOK {
		s.Ops, s.OpsOK = (set.Ops+get.Ops)/2, true
	}
	puts, putsOK := find(rs, target, toolPuts, "set")
	gets, getsOK := find(rs, target, toolGets, "get")
	if putsOK && getsOK {
		s.P50us, s.P50OK = (puts.P50us+gets.P50us)/2, true
	}
	return s
}

// num formats a headline number; one that is missing reads "n/a".
func num(ok bool, v float64, prec int) string {
	if !ok {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// FormatSummary writes the standalone line, the comparison lines (when
// both sides ran) and, last, the headline line.
func FormatSummary(w io.Writer, rs []Result) {
	rep, sta, mc := Summarize(rs, targetReplicated), Summarize(rs, targetStandalone), Summarize(rs, targetMemcached)
	fmt.Fprintf(w, "bench-memcached standalone_ops=%s standalone_p50_us=%s\n", num(sta.OpsOK, sta.Ops, 0), num(sta.P50OK, sta.P50us, 1))
	if rep.OpsOK && mc.OpsOK || rep.P50OK && mc.P50OK {
		fmt.Fprintf(w, "bench-memcached ratio replicated/memcached ops=%s p50=%s\n",
			num(rep.OpsOK && mc.OpsOK, rep.Ops/mc.Ops, 3), num(rep.P50OK && mc.P50OK, rep.P50us/mc.P50us, 3))
	}
	if rep.P50OK && sta.P50OK {
		fmt.Fprintf(w, "bench-memcached replicated-standalone p50_us=%.1f\n", rep.P50us-sta.P50us)
	}
	fmt.Fprintf(w, "bench-memcached replicated_ops=%s memcached_ops=%s ratio=%s replicated_p50_us=%s standalone_p50_us=%s memcached_p50_us=%s\n",
		num(rep.OpsOK, rep.Ops, 0), num(mc.OpsOK, mc.Ops, 0), num(rep.OpsOK && mc.OpsOK, rep.Ops/mc.Ops, 3),
		num(rep.P50OK, rep.P50us, 1), num(sta.P50OK, sta.P50us, 1), num(mc.P50OK, mc.P50us, 1))
}
