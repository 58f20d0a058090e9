// Package latency records latencies in an HdrHistogram and reports them the
// one way every gomu tool does: p50/p90/p99/p99.9/max in nanoseconds, an
// optional percentile file in HdrHistogram's text format, and optional raw
// dumps with one value in ns per line.
package latency

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Recorder accumulates latencies. Record does not allocate.
type Recorder struct {
	h *hdrhistogram.Histogram
	// raw keeps every value in order when a dump was asked for.
	raw []int64
}

// New returns a recorder for values from 1 ns to max with 3 significant
// digits. If keep > 0, the first keep values are also kept raw, in order,
// for WriteRaw.
func New(max time.Duration, keep int) *Recorder {
	r := &Recorder{h: hdrhistogram.New(1, int64(max), 3)}
	if keep > 0 {
		r.raw = make([]int64, 0, keep)
	}
	return r
}

// Record adds one value; values past the histogram's range are clamped to
// its maximum rather than lost.
func (r *Recorder) Record(d time.Duration) {
	ns := int64(d)
	if ns < 1 {
		ns = 1
	}
	if ns > r.h.HighestTrackableValue() {
		ns = r.h.HighestTrackableValue()
	}
	_ = r.h.RecordValue(ns)
	if len(r.raw) < cap(r.raw) {
		r.raw = append(r.raw, ns)
	}
}

// Count is the number of values recorded.
func (r *Recorder) Count() int64 { return r.h.TotalCount() }

// Percentile returns the value at percentile q (0..100) in ns.
func (r *Recorder) Percentile(q float64) int64 { return r.h.ValueAtQuantile(q) }

// Summary is the standard percentile line.
func (r *Recorder) Summary() string {
	return fmt.Sprintf("n=%d p50=%dns p90=%dns p99=%dns p99.9=%dns max=%dns",
		r.h.TotalCount(), r.h.ValueAtQuantile(50), r.h.ValueAtQuantile(90),
		r.h.ValueAtQuantile(99), r.h.ValueAtQuantile(99.9), r.h.Max())
}

// WriteHgrm writes the percentile distribution in HdrHistogram's text
// format, readable by its plotting tools.
func (r *Recorder) WriteHgrm(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if _, err := r.h.PercentilesPrint(f, 5, 1.0); err != nil {
		f.Close()
		return fmt.Errorf("latency: write %s: %w", path, err)
	}
	return f.Close()
}

// WriteRaw writes the kept values, one ns value per line, in record order.
func (r *Recorder) WriteRaw(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if err := writeLines(f, r.raw); err != nil {
		f.Close()
		return fmt.Errorf("latency: write %s: %w", path, err)
	}
	return f.Close()
}

func writeLines(w io.Writer, vals []int64) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf [24]byte
	for _, v := range vals {
		b := strconv.AppendInt(buf[:0], v, 10)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}
