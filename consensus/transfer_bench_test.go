package consensus

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// blob is a state machine with a large state: a fixed block of bytes and a
// count of the commands applied. Its snapshot is the block and the count.
type blob struct {
	data []byte
	n    atomic.Uint64
}

func (b *blob) Apply(uint64, []byte) []byte { b.n.Add(1); return okResult }

func (b *blob) Snapshot(w io.Writer) error {
	if _, err := w.Write(b.data); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, b.n.Load())
}

func (b *blob) Restore(r io.Reader) error {
	if _, err := io.ReadFull(r, b.data); err != nil {
		return err
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return err
	}
	b.n.Store(n)
	return nil
}

// BenchmarkStateTransfer measures a state transfer of a 64 MiB state on
// shm: a follower is paused while the leader laps its ring, then resumed;
// it reports the transfer's throughput (MB/s, from the offer to the end of
// Restore) and the leader's Propose p50/p99 (one proposer, 64 B commands)
// while the transfer runs beside the same in steady state before it
// (p99-ratio). Run with -benchtime=1x; each iteration is one transfer.
func BenchmarkStateTransfer(b *testing.B) {
	const state = 64 << 20
	c := startClusterSM(b, 3, func(cfg *Config) { cfg.RingSize = 1 << 20 },
		func() StateMachine { return &blob{data: make([]byte, state)} })
	lead := c.waitLeader()
	slow := c.follower(lead)
	cmd := make([]byte, 64)
	propose := func(h *hdrhistogram.Histogram, until func() bool) {
		for !until() {
			t := time.Now()
			if _, err := lead.Propose(context.Background(), cmd); err != nil {
				b.Fatal(err)
			}
			h.RecordValue(int64(time.Since(t)))
		}
	}
	var mbps, ratio []float64
	for i := 0; i < b.N; i++ {
		steady := hdrhistogram.New(1, int64(10*time.Second), 3)
		n := 0
		propose(steady, func() bool { n++; return n > 20000 })
		slow.Pause()
		// Lap the 1 MiB ring: 128-byte entries, 8192 a lap.
		n = 0
		propose(hdrhistogram.New(1, int64(10*time.Second), 3), func() bool { n++; return n > 3*8192 })
		before := slow.Stats().Transfers
		during := hdrhistogram.New(1, int64(10*time.Second), 3)
		var done atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(hang)
			for !(slow.Stats().Transfers > before && !slow.CatchingUp()) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			done.Store(true)
		}()
		slow.Resume()
		propose(during, done.Load)
		wg.Wait()
		st := slow.Stats()
		if st.Transfers == before {
			b.Fatalf("no state transfer within %v: %+v", hang, st)
		}
		mbps = append(mbps, float64(st.LastTransferBytes)/st.LastTransfer.Seconds()/1e6)
		ratio = append(ratio, float64(during.ValueAtQuantile(99))/float64(steady.ValueAtQuantile(99)))
		b.Logf("transfer %d: %d bytes in %v (%.0f MB/s); Propose p50/p99 steady %v/%v, during %v/%v (%d proposals)",
			i, st.LastTransferBytes, st.LastTransfer.Round(time.Microsecond), mbps[len(mbps)-1],
			time.Duration(steady.ValueAtQuantile(50)), time.Duration(steady.ValueAtQuantile(99)),
			time.Duration(during.ValueAtQuantile(50)), time.Duration(during.ValueAtQuantile(99)), during.TotalCount())
	}
	b.ReportMetric(mean(mbps), "MB/s")
	b.ReportMetric(mean(ratio), "p99-ratio")
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
