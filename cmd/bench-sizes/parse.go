package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// LatResult is what main-st-lat's leader printed.
type LatResult struct {
	Transport string
	N         int64 // commands timed
	P50, P90  int64 // ns
	P99, P999 int64
	Max       int64
	Rate      float64 // commands/s of the latency run
}

// TputResult is what main-st's leader printed.
type TputResult struct {
	Commands  int64
	Elapsed   int64 // ns
	Rate      float64
	Transport string
	Replicas  int
}

var (
	// latSummaryRE is main-st-lat's last line (internal/latency's Summary).
	latSummaryRE = regexp.MustCompile(`(?m)^main-st-lat transport=(\w+) payload=\d+ outstanding=\d+ n=(\d+) p50=(\d+)ns p90=(\d+)ns p99=(\d+)ns p99\.9=(\d+)ns max=(\d+)ns\s*$`)
	// latRateRE is main-st-lat's line before it.
	latRateRE = regexp.MustCompile(`(?m)^main-st-lat: \d+ commands of \d+ B in \S+ s: (\d+(?:\.\d+)?) commands/s`)
	// receivedRE is Mu's line, main-st's first.
	receivedRE = regexp.MustCompile(`(?m)^Received (\d+) in (\d+) ns\s*$`)
	// tputRE is main-st's human line.
	tputRE = regexp.MustCompile(`(?m)^main-st: \d+ commands of \d+ B in \S+ s: (\d+(?:\.\d+)?) commands/s, \S+ MB/s \((\w+), (\d+) replicas, \d+ outstanding\)`)
)

// parseLat reads main-st-lat's output: the percentile line is required,
// the rate line optional.
func parseLat(out []byte) (LatResult, error) {
	var r LatResult
	m := latSummaryRE.FindAllSubmatch(out, -1)
	if m == nil {
		return r, errors.New("no percentile line (main-st-lat transport=… p50=…) in its output")
	}
	last := m[len(m)-1]
	r.Transport = string(last[1])
	vals := []*int64{&r.N, &r.P50, &r.P90, &r.P99, &r.P999, &r.Max}
	for i, v := range vals {
		var err error
		if *v, err = strconv.ParseInt(string(last[i+2]), 10, 64); err != nil {
			return r, fmt.Errorf("percentile line: %w", err)
		}
	}
	if r.N == 0 {
		return r, errors.New("percentile line: n=0")
	}
	if m := latRateRE.FindSubmatch(out); m != nil {
		r.Rate, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r, nil
}

// parseTput reads main-st's output. Mu's Received line gives the rate
// exactly; the human line names the transport and the size.
func parseTput(out []byte) (TputResult, error) {
	var r TputResult
	m := receivedRE.FindSubmatch(out)
	if m == nil {
		return r, errors.New("no \"Received <n> in <ns> ns\" line in its output")
	}
	r.Commands, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.Elapsed, _ = strconv.ParseInt(string(m[2]), 10, 64)
	if r.Commands <= 0 || r.Elapsed <= 0 {
		return r, fmt.Errorf("bad Received line %q", m[0])
	}
	r.Rate = float64(r.Commands) / (float64(r.Elapsed) / 1e9)
	if m := tputRE.FindSubmatch(out); m != nil {
		r.Transport = string(m[2])
		r.Replicas, _ = strconv.Atoi(string(m[3]))
	}
	return r, nil
}
