package lincheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one client's connection to the store under test. The workload
// uses each Target from one goroutine.
type Target interface {
	// Prepare readies the Target for in before it is invoked, outside
	// any operation's interval: it waits out the back-off the last
	// attempt asked for, finds where to send in, and so on. It returns
	// early with ctx's error.
	Prepare(ctx context.Context, in Input) error
	// Do makes one attempt at in, with no retry: every attempt is an
	// operation of its own in the history.
	Do(in Input) Reply
	// Close releases the Target's connections.
	Close() error
}

// Workload is N clients running random operations on a few keys.
type Workload struct {
	// Clients is the number of concurrent clients (default 5).
	Clients int
	// Keys is the number of keys in use at a time (default 8): key i is a
	// register (SET, GET) when i%3 is 0, a counter (INCR, GET) when 1, a
	// log (APPEND of unique tokens, GET) when 2.
	Keys int
	// Ops is how many operations to record, maybe-applied writes included
	// (default 2000). Clients may overshoot by one each.
	Ops int
	// KeyOps is how many operations the clients start on a set of keys
	// before moving to fresh ones (default 1000), which keeps each key's
	// history, the unit porcupine searches, short.
	KeyOps int
	// ReadFraction is the share of reads (default 0.5).
	ReadFraction float64
	// ReadAfterWrite is the share of acknowledged writes the same client
	// follows at once with a read of the same key (default 0.3; negative:
	// none): with reads on a random replica, the probe most likely to
	// catch a replica that serves a state older than an acknowledged write.
	ReadAfterWrite float64
	// Prefix starts every key name (default "lin:").
	Prefix string
	// Seed seeds the clients' choices (0: random).
	Seed uint64
}

func (w Workload) withDefaults() Workload {
	if w.Clients <= 0 {
		w.Clients = 5
	}
	if w.Keys <= 0 {
		w.Keys = 8
	}
	if w.Ops <= 0 {
		w.Ops = 2000
	}
	if w.KeyOps <= 0 {
		w.KeyOps = 1000
	}
	if w.ReadFraction <= 0 || w.ReadFraction >= 1 {
		w.ReadFraction = 0.5
	}
	if w.ReadAfterWrite == 0 {
		w.ReadAfterWrite = 0.3
	}
	if w.Prefix == "" {
		w.Prefix = "lin:"
	}
	if w.Seed == 0 {
		w.Seed = rand.Uint64()
	}
	return w
}

// Run runs the clients until rec holds w.Ops operations or ctx ends, each
// with a Target from newTarget, and returns ctx's error if it ended first,
// or the first reply a Target found malformed (Reply.Err).
func (w Workload) Run(ctx context.Context, rec *Recorder, newTarget func(client int) Target) error {
	w = w.withDefaults()
	var (
		started atomic.Int64 // operations begun, for the key generation
		wg      sync.WaitGroup
		errOnce sync.Once
		bad     error
	)
	for c := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := newTarget(c)
			defer t.Close()
			rng := rand.New(rand.NewPCG(w.Seed, uint64(c)))
			var probe string // a key just written, to read at once
			for seq := 0; rec.Len() < w.Ops; seq++ {
				in := Input{Kind: Get, Key: probe}
				if probe == "" {
					in = w.next(rng, c, seq, started.Add(1)-1)
				}
				probe = ""
				if t.Prepare(ctx, in) != nil || ctx.Err() != nil {
					return
				}
				call := rec.Begin(c, in)
				rep := t.Do(in)
				call.End(rep)
				if in.Kind != Get && rep.Outcome == Done && rng.Float64() < w.ReadAfterWrite {
					probe = in.Key
				}
				if rep.Err != nil {
					errOnce.Do(func() { bad = fmt.Errorf("client %d: %v at %s: %w", c, in.Kind, rep.Where, rep.Err) })
				}
			}
		}()
	}
	wg.Wait()
	if bad != nil {
		return bad
	}
	if rec.Len() < w.Ops {
		return fmt.Errorf("lincheck: %d of %d operations recorded: %w", rec.Len(), w.Ops, ctx.Err())
	}
	return nil
}

// next picks client c's operation number seq, the n-th begun by anyone.
func (w Workload) next(rng *rand.Rand, c, seq int, n int64) Input {
	slot := rng.IntN(w.Keys)
	in := Input{Kind: Get, Key: fmt.Sprintf("%s%d.%d", w.Prefix, n/int64(w.KeyOps), slot)}
	if rng.Float64() < w.ReadFraction {
		return in
	}
	switch slot % 3 {
	case 0:
		in.Kind, in.Arg = Set, fmt.Sprintf("%d.%d", c, seq)
	case 1:
		in.Kind = Incr
	default:
		in.Kind, in.Arg = Append, fmt.Sprintf("%d.%d,", c, seq)
	}
	return in
}

// RunFaults runs w in the background and, on the calling goroutine, calls
// inject(i) for i from 1 to faults, each once rec holds i/(faults+1) of
// w.Ops: faults spread over the run by progress, not by the clock. It
// returns once the workload has, with its error. If inject does not return
// (a test's Fatal), the workload is stopped on the way out.
func (w Workload) RunFaults(ctx context.Context, rec *Recorder, newTarget func(client int) Target, faults int, inject func(i int)) error {
	w = w.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, rec, newTarget) }()
	finished := false
	defer func() {
		if !finished {
			cancel()
			<-done
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= faults; i++ {
		for rec.Len() < i*w.Ops/(faults+1) {
			select {
			case err := <-done:
				finished = true
				return err
			case <-tick.C:
			}
		}
		inject(i)
	}
	err := <-done
	finished = true
	return err
}
