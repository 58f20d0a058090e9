package trader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/latency"
)

// Session is one trader's connection to the exchange: *client.Client, or
// a twin in tests.
type Session interface {
	// Do sends req until it has a final answer (see client.Client.Do).
	Do(req *wire.Request) (wire.Result, []byte, error)
	Trader() uint64
	Stats() client.Stats
	Close() error
}

// Dialer opens trader i's session.
type Dialer func(ctx context.Context, i int) (Session, error)

// Config configures a run.
type Config struct {
	// Traders is how many traders run, each its own goroutine and
	// session, one order outstanding each (Mu's TRADERS_NUM).
	Traders int
	// Orders is the total of orders over all traders, split evenly; 0
	// runs for Duration instead.
	Orders int
	// Duration bounds the run when Orders is 0.
	Duration time.Duration
	// Mix, Symbols and Seed shape the flow (see Gen).
	Mix     Mix
	Symbols []string
	Seed    uint64
	// Check reads, at the end, what the exchange applied for every
	// trader and compares it with what the trader was answered.
	Check bool
	// Keep bounds the per-order samples kept for the timeline and the
	// percentiles (default 4 Mi); a longer run drops the rest, and says so.
	Keep int
	// Dial opens the traders' sessions.
	Dial Dialer
	// Progress, if set, gets a line a second while the run goes.
	Progress io.Writer
	// OnStart, if set, is called once every session is open, just before
	// the traders start: with the instant they start.
	OnStart func(time.Time)
}

// Outcome is a sample's status: a wire.Status, or OutcomeError when the
// request ended in an error (a malformed request, or the run ended while
// it was still being resent).
type Outcome uint8

// OutcomeError is an order that got no final answer.
const OutcomeError Outcome = 255

func (o Outcome) String() string {
	if o == OutcomeError {
		return "error"
	}
	return wire.Status(o).String()
}

// Sample is one order: when it was first sent, how long until its final
// answer (resends through leader changes included), who sent it, what it
// was and how it ended.
type Sample struct {
	Send     int64 // unix ns
	Latency  int64 // ns
	Trader   uint16
	Kind     Kind
	Status   Outcome
	Attempts uint16 // sends it took (saturating)
}

// CheckResult is the end-of-run comparison of what the traders were
// answered with what the exchange applied.
type CheckResult struct {
	Ran        bool
	Traders    int
	Acked      uint64 // requests answered ok or rejected (applied, either way)
	Applied    uint64 // what the exchange says it applied for the traders
	Lost       uint64 // acked but not applied
	Doubled    uint64 // applied beyond what was acked
	Mismatched int    // traders whose counts agree but whose id sums do not
	Unresolved uint64 // requests the run ended on without a final answer
	Problems   []string
}

// OK reports that nothing was lost, doubled or left unresolved.
func (c CheckResult) OK() bool {
	return c.Lost == 0 && c.Doubled == 0 && c.Mismatched == 0 && c.Unresolved == 0 && len(c.Problems) == 0
}

func (c CheckResult) String() string {
	if !c.Ran {
		return "check: off"
	}
	s := fmt.Sprintf("check: traders=%d acked=%d applied=%d lost=%d doubled=%d", c.Traders, c.Acked, c.Applied, c.Lost, c.Doubled)
	if c.Mismatched > 0 {
		s += fmt.Sprintf(" mismatched=%d", c.Mismatched)
	}
	if c.Unresolved > 0 {
		s += fmt.Sprintf(" unresolved=%d", c.Unresolved)
	}
	if len(c.Problems) > 0 {
		// Traders whose state could not be read: counted nowhere else.
		s += fmt.Sprintf(" unreadable=%d", len(c.Problems))
	}
	return s
}

// Report is what a run measured.
type Report struct {
	Start, End time.Time
	Orders     int64 // orders completed (samples kept or not)
	Dropped    int64 // completed orders beyond Keep, not in Samples
	Samples    []Sample
	ByKind     [numKinds]int64
	ByStatus   [256]int64 // by Outcome
	Stats      client.Stats
	Latency    *latency.Recorder // every kept sample, in send order
	Check      CheckResult
}

// Elapsed is the run's length.
func (r *Report) Elapsed() time.Duration { return r.End.Sub(r.Start) }

// Throughput is orders completed per second.
func (r *Report) Throughput() float64 {
	if s := r.Elapsed().Seconds(); s > 0 {
		return float64(r.Orders) / s
	}
	return 0
}

// MaxLatency is the longest a sample waited for (the histogram's max).
const MaxLatency = time.Minute

// DefaultKeep is Config.Keep's default.
const DefaultKeep = 4 << 20

func (c *Config) check() error {
	switch {
	case c.Traders < 1 || c.Traders > 1<<15:
		return fmt.Errorf("traders %d: want 1 to %d", c.Traders, 1<<15)
	case c.Orders < 0:
		return fmt.Errorf("orders %d is negative", c.Orders)
	case c.Orders == 0 && c.Duration <= 0:
		return errors.New("neither an order count nor a duration")
	case c.Orders > 0 && c.Orders < c.Traders:
		return fmt.Errorf("%d orders for %d traders: want at least one each", c.Orders, c.Traders)
	case c.Mix.total() == 0:
		return errors.New("the mix weighs nothing")
	case len(c.Symbols) == 0:
		return errors.New("no symbols")
	case c.Dial == nil:
		return errors.New("no dialer")
	}
	if c.Keep <= 0 {
		c.Keep = DefaultKeep
	}
	return nil
}

// trader is one goroutine's state.
type trader struct {
	index   int
	sess    Session
	gen     *Gen
	quota   int // orders to send; 0: until the deadline
	samples []Sample
	dropped int64
	// What the exchange must have applied for this trader: every request
	// answered ok or rejected, once.
	acked, idSum, high uint64
	unresolved         uint64
	byKind             [numKinds]int64
	byStatus           [256]int64
	req                wire.Request
}

// Run runs the traders until they have sent cfg.Orders or cfg.Duration has
// passed (or ctx ends), then, with cfg.Check, checks the exchange. A run
// that ends with requests unanswered or a check that fails still returns
// its Report, with the error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("trader: %w", err)
	}
	mkt := NewMarket(cfg.Symbols)
	ts := make([]*trader, cfg.Traders)
	defer func() {
		for _, t := range ts {
			if t != nil && t.sess != nil {
				t.sess.Close()
			}
		}
	}()
	for i := range ts {
		sess, err := cfg.Dial(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("trader %d: %w", i+1, err)
		}
		t := &trader{index: i, sess: sess, gen: NewGen(mkt, cfg.Mix, cfg.Seed, i)}
		keep := cfg.Keep / cfg.Traders
		if cfg.Orders > 0 {
			t.quota = cfg.Orders / cfg.Traders
			if i < cfg.Orders%cfg.Traders {
				t.quota++
			}
			keep = min(keep, t.quota)
		}
		t.samples = make([]Sample, 0, max(keep, 1))
		ts[i] = t
	}

	var done atomic.Int64
	stopProgress := cluster.ReportProgressOf(cfg.Progress, &done, cfg.Orders, "orders")
	start := time.Now()
	var deadline time.Time
	if cfg.Orders == 0 {
		deadline = start.Add(cfg.Duration)
	}
	if cfg.OnStart != nil {
		cfg.OnStart(start)
	}
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.run(ctx, deadline, &done)
		}()
	}
	wg.Wait()
	end := time.Now()
	stopProgress()

	r := &Report{Start: start, End: end}
	for _, t := range ts {
		r.Samples = append(r.Samples, t.samples...)
		r.Dropped += t.dropped
		r.Orders += int64(len(t.samples)) + t.dropped
		for k := range r.ByKind {
			r.ByKind[k] += t.byKind[k]
		}
		for s := range r.ByStatus {
			r.ByStatus[s] += t.byStatus[s]
		}
		st := t.sess.Stats()
		r.Stats.Requests += st.Requests
		r.Stats.Attempts += st.Attempts
		r.Stats.Redirects += st.Redirects
		r.Stats.Timeouts += st.Timeouts
		r.Stats.Retries += st.Retries
		r.Stats.Reconnects += st.Reconnects
		r.Check.Unresolved += t.unresolved
	}
	slices.SortFunc(r.Samples, func(a, b Sample) int {
		switch {
		case a.Send < b.Send:
			return -1
		case a.Send > b.Send:
			return 1
		}
		return int(a.Trader) - int(b.Trader)
	})
	r.Latency = latency.New(MaxLatency, len(r.Samples))
	for _, s := range r.Samples {
		r.Latency.Record(time.Duration(s.Latency))
	}
	var err error
	if cfg.Check {
		err = checkAll(ctx, ts, &r.Check)
	}
	if r.Check.Unresolved > 0 {
		err = errors.Join(err, fmt.Errorf("trader: %d requests were still unanswered when the run ended", r.Check.Unresolved))
	}
	return r, err
}

// run is one trader's loop: one order outstanding, resent until it has a
// final answer.
func (t *trader) run(ctx context.Context, deadline time.Time, done *atomic.Int64) {
	for n := 0; t.quota == 0 || n < t.quota; n++ {
		if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return
		}
		k := t.gen.Next(&t.req)
		t.order(ctx, k)
		done.Add(1)
	}
}

// order sends the request Next made, until its final answer, and records
// it.
func (t *trader) order(ctx context.Context, k Kind) {
	attempts0 := t.sess.Stats().Attempts
	send := time.Now()
	var (
		res wire.Result
		err error
	)
	for {
		res, _, err = t.sess.Do(&t.req)
		if err == nil || ctx.Err() != nil || res.Status == wire.StatusBadRequest {
			break
		}
		// Gave up (no replica answered in time), or an answer that made
		// no sense: whether it was applied is unknown. The same ClOrd
		// again settles it: the exchange applies a request at most once.
	}
	lat := time.Since(send)
	out := Outcome(res.Status)
	switch {
	case err != nil && res.Status != wire.StatusBadRequest:
		// The run ended while this request was unresolved.
		out = OutcomeError
		t.unresolved++
	case err != nil:
		out = OutcomeError
	case res.Status == wire.StatusOK || res.Status == wire.StatusRejected:
		t.acked++
		t.idSum += wire.Mix(t.req.ClOrd)
		t.high = max(t.high, t.req.ClOrd)
		t.gen.Done(k, &t.req, &res)
	default:
		// StatusTooOld: with one request in flight it cannot happen;
		// whether it was applied cannot be told, so the check will say.
		t.unresolved++
	}
	t.byKind[k]++
	t.byStatus[out]++
	attempts := min(t.sess.Stats().Attempts-attempts0, 65535)
	if len(t.samples) < cap(t.samples) {
		t.samples = append(t.samples, Sample{Send: send.UnixNano(), Latency: int64(lat), Trader: uint16(t.index + 1),
			Kind: k, Status: out, Attempts: uint16(attempts)})
	} else {
		t.dropped++
	}
}

// checkAll reads every trader's state from the exchange and compares.
func checkAll(ctx context.Context, ts []*trader, c *CheckResult) error {
	c.Ran, c.Traders = true, len(ts)
	var errs []error
	for _, t := range ts {
		st, err := readState(ctx, t.sess)
		if err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("trader %d: %v", t.index+1, err))
			errs = append(errs, fmt.Errorf("trader %d: read its state: %w", t.index+1, err))
			continue
		}
		c.Acked += t.acked
		c.Applied += st.Applied
		switch {
		case st.Applied < t.acked:
			c.Lost += t.acked - st.Applied
		case st.Applied > t.acked:
			c.Doubled += st.Applied - t.acked
		case st.IDSum != t.idSum:
			c.Mismatched++
		}
		if st.Applied != t.acked || st.IDSum != t.idSum || st.High != t.high {
			errs = append(errs, fmt.Errorf("trader %d (id %#x): answered %d requests (id sum %#x, highest %d), the exchange applied %d (id sum %#x, highest %d)",
				t.index+1, t.sess.Trader(), t.acked, t.idSum, t.high, st.Applied, st.IDSum, st.High))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("trader: check failed: %w", errors.Join(errs...))
	}
	return nil
}

// readState reads what the exchange applied for the session's trader,
// retrying while no replica answers, until ctx ends.
func readState(ctx context.Context, s Session) (wire.TraderState, error) {
	var st wire.TraderState
	for {
		req := wire.Request{Op: wire.OpTrader}
		res, body, err := s.Do(&req)
		if err == nil {
			if res.Status != wire.StatusOK {
				return st, fmt.Errorf("trader read answered %v", res.Status)
			}
			return st, wire.DecodeTrader(body, &st)
		}
		if ctx.Err() != nil || res.Status == wire.StatusBadRequest {
			return st, err
		}
	}
}
