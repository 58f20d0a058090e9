package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Captured from libmemcached-tools 1.1.4's memcslap against memcached
// 1.6.18 and memcached-replicated on this machine.
const (
	memcslapSet = `Time to generate      20000 test keys:                0.164 seconds.
Time to start             1 threads:                  0.000 seconds.
--------------------------------------------------------------------
Time to set           20000 keys by    1 threads:     0.740 seconds.
--------------------------------------------------------------------
Time total:                                           0.904 seconds.
`
	memcslapGet = `Time to generate      10000 test keys:                0.073 seconds.
Time to set           10000 keys:                     1.008 seconds.
Time to start             1 threads:                  0.000 seconds.
--------------------------------------------------------------------
Time to get           10000 keys by    1 threads:     0.625 seconds.
--------------------------------------------------------------------
Time total:                                           1.688 seconds.
`
	// Four threads, some gets missing (64 MiB of memcached evicted them).
	memcslapGet4 = `Time to generate      20000 test keys:                0.143 seconds.
Time to set           20000 keys:                     0.575 seconds.
Time to start             4 threads:                  0.001 seconds.
--------------------------------------------------------------------
Time to get           78407 keys by    4 threads:     1.323 seconds.
--------------------------------------------------------------------
Time total:                                           2.043 seconds.
`
	// Nothing listening: exit status 0, the error on stderr only.
	memcslapRefused = `Time to generate        100 test keys:                0.001 seconds.
Time to start             1 threads:                  0.000 seconds.
--------------------------------------------------------------------
Time to set               0 keys by    1 threads:     0.001 seconds.
--------------------------------------------------------------------
Time total:                                           0.002 seconds.
`
	memcslapRefusedErr = `Fatal error for key 'ge1y15flNlsgsrhx776MA8CfIcbamooWWGWpoyeSO': (0x5555da8fd280) CONNECTION FAILURE(Connection refused),  host: 127.0.0.1:1 -> ./src/libmemcached/io.cc:145
`
	// A server dropping binary requests: the initial load failed at once.
	memcslapBinaryDropped = `Time to generate      10000 test keys:                0.074 seconds.
Time to set               0 keys:                     5.002 seconds.
Time to start             1 threads:                  0.000 seconds.
--------------------------------------------------------------------
Time to get               0 keys by    1 threads:    50.010 seconds.
--------------------------------------------------------------------
Time total:                                          55.086 seconds.
`
)

func TestParseMemcslap(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		n         int
		want      MemcslapRun
		ops       float64
		misses    int
		err       string
	}{
		{"set", memcslapSet, 20000, MemcslapRun{Test: "set", Keys: 20000, Threads: 1, Seconds: 0.740, Loaded: -1}, 20000 / 0.740, 0, ""},
		{"get", memcslapGet, 10000, MemcslapRun{Test: "get", Keys: 10000, Threads: 1, Seconds: 0.625, Loaded: 10000}, 16000, 0, ""},
		{"get 4 threads", memcslapGet4, 20000, MemcslapRun{Test: "get", Keys: 78407, Threads: 4, Seconds: 1.323, Loaded: 20000}, 80000 / 1.323, 1593, ""},
		{"refused", memcslapRefused, 100, MemcslapRun{Test: "set", Keys: 0, Threads: 1, Seconds: 0.001, Loaded: -1}, 0, 0, "stored 0 of 100 keys"},
		{"binary dropped", memcslapBinaryDropped, 10000, MemcslapRun{Test: "get", Keys: 0, Threads: 1, Seconds: 50.010, Loaded: 0}, 0, 0, "initial load stored 0 of 10000"},
		{"zero time", strings.Replace(memcslapSet, "0.740", "0.000", 1), 20000, MemcslapRun{Test: "set", Keys: 20000, Threads: 1, Loaded: -1}, 0, 0, "too short to time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseMemcslap(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if r != tc.want {
				t.Fatalf("parsed %+v, want %+v", r, tc.want)
			}
			ops, misses, err := r.Rate(tc.n)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Rate: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || math.Abs(ops-tc.ops) > 1e-6 || misses != tc.misses {
				t.Fatalf("Rate = %v, %d, %v; want %v, %d", ops, misses, err, tc.ops, tc.misses)
			}
		})
	}
	for name, in := range map[string]string{
		"empty":      "",
		"help":       "memslap v1.1 (libmemcached v1.1.4)\n\n\tGenerate load against a cluster of memcached servers.\n",
		"two tests":  memcslapSet + memcslapSet,
		"bad number": strings.Replace(memcslapSet, "0.740 seconds", "0.7.4 seconds", 1),
	} {
		if r, err := ParseMemcslap(in); err == nil {
			t.Errorf("%s: parsed as %+v", name, r)
		}
	}
}

func TestErrorLines(t *testing.T) {
	if first, n := errorLines(memcslapRefusedErr + memcslapRefusedErr); n != 2 || !strings.HasPrefix(first, "Fatal error for key") {
		t.Errorf("errorLines = %q, %d", first, n)
	}
	if _, n := errorLines("\n"); n != 0 {
		t.Errorf("empty stderr has %d errors", n)
	}
}

// Captured from memcaslap (memaslap 1.0) with memcaslapConfig against
// memcached 1.6.18, and with 1 KiB values against a full 64 MiB one.
const (
	memcaslapOK = `servers: 127.0.0.1:22311
threads count: 1
concurrency: 16
run time: 3s
windows size: 10k
set proportion: set_prop=0.10
get proportion: get_prop=0.90
cmd_get: 153190
cmd_set: 17030
get_misses: 0
written_bytes: 4442595
read_bytes: 10552252
object_bytes: 817440

Run time: 3.0s Ops: 170220 TPS: 56735 Net_rate: 4.8M/s
`
	memcaslapFull = `servers: 127.0.0.1:22311
threads count: 1
concurrency: 16
run time: 3s
windows size: 10k
set proportion: set_prop=0.10
get proportion: get_prop=0.90
<15 SERVER_ERROR out of memory storing object
<7 SERVER_ERROR out of memory storing object
<20 SERVER_ERROR out of memory storing object
cmd_get: 216971
cmd_set: 24214
get_misses: 163015
written_bytes: 41940215
read_bytes: 60888958
object_bytes: 26344832

Run time: 3.0s Ops: 241185 TPS: 80387 Net_rate: 32.7M/s
`
	// Nothing listening: exit status 1 after the settings.
	memcaslapRefused = `servers: 127.0.0.1:1
threads count: 1
concurrency: 16
run time: 2s
windows size: 10k
set proportion: set_prop=0.10
get proportion: get_prop=0.90
`
)

func TestParseMemcaslap(t *testing.T) {
	r, err := ParseMemcaslap(memcaslapOK)
	if err != nil {
		t.Fatal(err)
	}
	if want := (MemcaslapRun{Seconds: 3, Ops: 170220, TPS: 56735, Gets: 153190, Sets: 17030}); r != want {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
	r, err = ParseMemcaslap(memcaslapFull)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 3 || r.FirstError != "<15 SERVER_ERROR out of memory storing object" || r.GetMisses != 163015 || r.TPS != 80387 {
		t.Fatalf("parsed %+v", r)
	}
	r, err = ParseMemcaslap("Server 127.0.0.1:5 disconnect\n" + memcaslapOK)
	if err != nil || r.Errors != 1 {
		t.Fatalf("disconnect: %+v, %v", r, err)
	}
	for name, in := range map[string]string{
		"empty":   "",
		"refused": memcaslapRefused,
		"no ops":  strings.Replace(memcaslapOK, "Ops: 170220 TPS: 56735", "Ops: 0 TPS: 0", 1),
		"bad get": strings.Replace(memcaslapOK, "cmd_get: 153190", "cmd_get: many", 1),
	} {
		if r, err := ParseMemcaslap(in); err == nil {
			t.Errorf("%s: parsed as %+v", name, r)
		}
	}
}

// Captured from memcached-puts-only against memcached 1.6.18.
const putsOnlyOut = `wrote 20000 latencies to /tmp/p.txt
memcached-puts-only: 20000 requests (SET, key 16 B, value 32 B) in 0.85 s: 23528 requests/s, 0 errors
memcached-puts-only: faults: 0 timeouts, 0 broken connections, 0 redirects, 0 TRYAGAINs, 0 reconnects; 0 requests retried; longest stall 4.124237ms (request 18486, 1 attempts); 1 replicas known, ended on 127.0.0.1:22311
memcached-puts-only key=16 value=32 n=20000 p50=35935ns p90=63327ns p99=84351ns p99.9=214527ns max=4124671ns
`

func TestParseLatency(t *testing.T) {
	r, err := ParseLatency("memcached-puts-only", putsOnlyOut)
	if err != nil {
		t.Fatal(err)
	}
	if want := (LatencyRun{N: 20000, Rate: 23528, P50: 35935, P90: 63327, P99: 84351, P999: 214527, Max: 4124671}); r != want {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
	for name, in := range map[string]string{
		"empty":       "",
		"other tool":  strings.ReplaceAll(putsOnlyOut, "puts-only", "gets-only"),
		"no summary":  strings.SplitAfterN(putsOnlyOut, "\n", 3)[0] + strings.SplitAfterN(putsOnlyOut, "\n", 3)[1],
		"no p99.9":    strings.Replace(putsOnlyOut, " p99.9=214527ns", "", 1),
		"not ns":      strings.Replace(putsOnlyOut, "p50=35935ns", "p50=36us", 1),
		"no rate":     strings.Replace(putsOnlyOut, "23528 requests/s", "fast", 1),
		"zero count":  strings.Replace(putsOnlyOut, "n=20000", "n=0", 1),
		"bad p50":     strings.Replace(putsOnlyOut, "p50=35935ns", "p50=x35935ns", 1),
		"error after": putsOnlyOut + "memcached-puts-only: 3 of 20000 requests got an error reply\n",
	} {
		if r, err := ParseLatency("memcached-puts-only", in); err == nil {
			t.Errorf("%s: parsed as %+v", name, r)
		}
	}
}

// results is one run of every tool against targets; the replicated
// target is half as fast with twice the latencies, the standalone one as
// fast as memcached.
func results(targets ...string) []Result {
	var rs []Result
	for _, tg := range targets {
		f := 1.0
		if tg == targetReplicated {
			f = 2
		}
		rs = append(rs,
			Result{Target: tg, Tool: toolMemcslap, Test: "set", Ops: 20000 / f},
			Result{Target: tg, Tool: toolMemcslap, Test: "get", Ops: 30000 / f},
			Result{Target: tg, Tool: toolMemcslap, Test: "bin-set", Ops: 21000 / f},
			Result{Target: tg, Tool: toolMemcaslap, Test: memcaslapTest, Ops: 56735 / f},
			Result{Target: tg, Tool: toolPuts, Test: "set", Ops: 23528 / f, Lat: true, P50us: 36 * f, P99us: 84.351 * f, P999us: 214.527 * f},
			Result{Target: tg, Tool: toolGets, Test: "get", Ops: 22900 / f, Lat: true, P50us: 38 * f, P99us: 99.967 * f, P999us: 279.039 * f},
		)
	}
	return rs
}

func TestFormat(t *testing.T) {
	var b strings.Builder
	rs := results(targetReplicated, targetStandalone, targetMemcached)
	rs[2].Err = errors.New("binary protocol: version: EOF") // replicated bin-set
	FormatTable(&b, rs)
	FormatComparison(&b, rs)
	FormatSummary(&b, rs)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1+18+1+5+4 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	for i, want := range map[int]string{
		0:  "target      tool       test              ops/s     p50_us     p99_us   p99.9_us",
		1:  "replicated  memcslap   set               10000          -          -          -",
		3:  "replicated  memcslap   bin-set          failed          -          -          -",
		5:  "replicated  puts-only  set               11764       72.0      168.7      429.1",
		12: "standalone  gets-only  get               22900       38.0      100.0      279.0",
		19: "tool       test          ops_rep/memcd   p50_rep-sta_us",
		20: "memcslap   set                   0.500                -",
		22: "memcaslap  get9:set1             0.500                -",
		23: "puts-only  set                   0.500             36.0",
		24: "gets-only  get                   0.500             38.0",
		// ops: mean of memcslap's set and get (25000); p50: mean of the
		// puts-only and gets-only medians (37 µs); replicated: half the
		// rate, twice the median.
		25: "bench-memcached standalone_ops=25000 standalone_p50_us=37.0",
		26: "bench-memcached ratio replicated/memcached ops=0.500 p50=2.000",
		27: "bench-memcached replicated-standalone p50_us=37.0",
		28: "bench-memcached replicated_ops=12500 memcached_ops=25000 ratio=0.500 replicated_p50_us=74.0 standalone_p50_us=37.0 memcached_p50_us=37.0",
	} {
		if lines[i] != want {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
	// The failed run has no comparison row.
	if strings.Contains(b.String(), "\nmemcslap   bin-set ") {
		t.Errorf("comparison of a failed run:\n%s", b.String())
	}

	b.Reset()
	rs = results(targetMemcached)
	FormatComparison(&b, rs)
	FormatSummary(&b, rs)
	if got, want := b.String(), "bench-memcached standalone_ops=n/a standalone_p50_us=n/a\n"+
		"bench-memcached replicated_ops=n/a memcached_ops=25000 ratio=n/a replicated_p50_us=n/a standalone_p50_us=n/a memcached_p50_us=37.0\n"; got != want {
		t.Errorf("memcached only:\n%s\nwant:\n%s", got, want)
	}

	// A failed get leaves ops missing, but not p50.
	b.Reset()
	rs = results(targetReplicated, targetMemcached)
	rs[1].Err = errors.New("failed")
	FormatSummary(&b, rs)
	if got, want := b.String(), "bench-memcached standalone_ops=n/a standalone_p50_us=n/a\n"+
		"bench-memcached ratio replicated/memcached ops=n/a p50=2.000\n"+
		"bench-memcached replicated_ops=n/a memcached_ops=25000 ratio=n/a replicated_p50_us=74.0 standalone_p50_us=n/a memcached_p50_us=37.0\n"; got != want {
		t.Errorf("failed get:\n%s\nwant:\n%s", got, want)
	}
}
