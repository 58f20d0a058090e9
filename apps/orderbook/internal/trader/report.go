package trader

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// TimelineHeader is the timeline CSV's first line.
const TimelineHeader = "send_unix_ns,latency_ns,trader,op,status,attempts"

// WriteTimeline writes samples as CSV (TimelineHeader), in send order.
func WriteTimeline(w io.Writer, samples []Sample) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(TimelineHeader + "\n")
	var b []byte
	for _, s := range samples {
		b = strconv.AppendInt(b[:0], s.Send, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, s.Latency, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(s.Trader), 10)
		b = append(b, ',')
		b = append(b, s.Kind.String()...)
		b = append(b, ',')
		b = append(b, s.Status.String()...)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(s.Attempts), 10)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteTimelineFile writes the timeline to path.
func WriteTimelineFile(path string, samples []Sample) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	if err := WriteTimeline(f, samples); err != nil {
		f.Close()
		return fmt.Errorf("timeline: write %s: %w", path, err)
	}
	return f.Close()
}

// ReadTimeline reads what WriteTimeline wrote.
func ReadTimeline(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = 6
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	if strings.Join(head, ",") != TimelineHeader {
		return nil, fmt.Errorf("timeline: header %q, want %q", strings.Join(head, ","), TimelineHeader)
	}
	var out []Sample
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		var s Sample
		var e [4]error
		s.Send, e[0] = strconv.ParseInt(rec[0], 10, 64)
		s.Latency, e[1] = strconv.ParseInt(rec[1], 10, 64)
		tr, e2 := strconv.ParseUint(rec[2], 10, 16)
		e[2] = e2
		at, e3 := strconv.ParseUint(rec[5], 10, 16)
		e[3] = e3
		for _, err := range e {
			if err != nil {
				line, _ := cr.FieldPos(0)
				return nil, fmt.Errorf("timeline: line %d: %w", line, err)
			}
		}
		s.Trader, s.Attempts = uint16(tr), uint16(at)
		k, ok := kindByName(rec[3])
		if !ok {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("timeline: line %d: unknown op %q", line, rec[3])
		}
		s.Kind = k
		s.Status, ok = outcomeByName(rec[4])
		if !ok {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("timeline: line %d: unknown status %q", line, rec[4])
		}
		out = append(out, s)
	}
}

func outcomeByName(s string) (Outcome, bool) {
	if s == "error" {
		return OutcomeError, true
	}
	for o := Outcome(0); o < 16; o++ {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// Print writes the run's summary: percentiles, throughput, counts by kind
// and status, the clients' leader-following counts, and the check.
func (r *Report) Print(w io.Writer) {
	l := r.Latency
	fmt.Fprintf(w, "orders: %d in %v, %.0f orders/s\n", r.Orders, r.Elapsed().Round(time.Millisecond), r.Throughput())
	if r.Dropped > 0 {
		fmt.Fprintf(w, "samples: kept %d of %d (raise --keep): percentiles and timeline cover the kept ones\n", len(r.Samples), r.Orders)
	}
	fmt.Fprintf(w, "latency: p50=%s p99=%s p99.9=%s max=%s\n",
		us(l.Percentile(50)), us(l.Percentile(99)), us(l.Percentile(99.9)), us(l.Percentile(100)))
	var b strings.Builder
	for k, n := range r.ByKind {
		if n > 0 {
			fmt.Fprintf(&b, " %s=%d", Kind(k), n)
		}
	}
	fmt.Fprintf(w, "by op:%s\n", b.String())
	b.Reset()
	for s, n := range r.ByStatus {
		if n > 0 {
			fmt.Fprintf(&b, " %s=%d", Outcome(s), n)
		}
	}
	fmt.Fprintf(w, "by status:%s\n", b.String())
	st := r.Stats
	fmt.Fprintf(w, "client: requests=%d attempts=%d redirects=%d timeouts=%d retries=%d reconnects=%d\n",
		st.Requests, st.Attempts, st.Redirects, st.Timeouts, st.Retries, st.Reconnects)
	fmt.Fprintln(w, r.Check.String())
}

// us formats ns as µs with one decimal.
func us(ns int64) string { return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64) + "µs" }
