package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/internal/latency"
)

// LeasePlan is the lease workload of a leasing service on a replicated
// store: N clients, two per application id, each asking again and again
// for its application's lease for TTL, with a Timeout per request.
type LeasePlan struct {
	Duration time.Duration // per client count (default 5 s)
	TTL      time.Duration // the lease asked for (default 3 s)
	Timeout  time.Duration // one request's bound (default 1 s)
	Think    time.Duration // a client's pause between requests (default 100 ms)
}

func (p LeasePlan) withDefaults() LeasePlan {
	if p.Duration <= 0 {
		p.Duration = 5 * time.Second
	}
	if p.TTL <= 0 {
		p.TTL = 3 * time.Second
	}
	if p.Timeout <= 0 {
		p.Timeout = time.Second
	}
	if p.Think <= 0 {
		p.Think = 100 * time.Millisecond
	}
	return p
}

// LeasePoint is the lease workload's result at one client count.
type LeasePoint struct {
	System               string
	Clients              int
	Granted, Rejected    int
	Timeouts, Errors     int
	GrantP50, GrantP99   time.Duration
	RejectP50, RejectP99 time.Duration
	// Overlaps counts pairs of grants to different holders of one
	// application that the store must have made less than TTL apart:
	// two holders at once. It must be 0.
	Overlaps int
	// FirstErr is one error other than a timeout, to say what failed.
	FirstErr error
}

func (p LeasePoint) String() string {
	s := fmt.Sprintf("%-6s clients=%-3d granted=%d (p50 %v p99 %v) rejected=%d (p50 %v p99 %v) timeouts=%d errors=%d overlaps=%d",
		p.System, p.Clients, p.Granted, p.GrantP50.Round(time.Microsecond), p.GrantP99.Round(time.Microsecond),
		p.Rejected, p.RejectP50.Round(time.Microsecond), p.RejectP99.Round(time.Microsecond), p.Timeouts, p.Errors, p.Overlaps)
	if p.FirstErr != nil {
		s += fmt.Sprintf(" (first error: %v)", p.FirstErr)
	}
	return s
}

type grant struct {
	holder       string
	sent, answer time.Time
}

// RunLease runs the lease workload with n clients on a started System.
func RunLease(ctx context.Context, sys System, n int, plan LeasePlan, run string) LeasePoint {
	plan = plan.withDefaults()
	pt := LeasePoint{System: sys.Name(), Clients: n}
	granted, rejected := latency.New(10*time.Second, 0), latency.New(10*time.Second, 0)
	var mu sync.Mutex
	grants := map[string][]grant{}
	ctx, cancel := context.WithTimeout(ctx, plan.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := sys.Lease(c)
			defer l.Close()
			app := fmt.Sprintf("%s-n%d-app%d", run, n, c/2)
			holder := fmt.Sprintf("client%d", c)
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(context.Background(), plan.Timeout)
				sent := time.Now()
				ok, err := l.Acquire(rctx, app, holder, plan.TTL)
				took := time.Since(sent)
				rcancel()
				mu.Lock()
				switch {
				case err != nil && (errors.Is(err, context.DeadlineExceeded) || took >= plan.Timeout):
					pt.Timeouts++
				case err != nil:
					pt.Errors++
					if pt.FirstErr == nil {
						pt.FirstErr = err
					}
				case ok:
					pt.Granted++
					granted.Record(took)
					grants[app] = append(grants[app], grant{holder, sent, sent.Add(took)})
				default:
					pt.Rejected++
					rejected.Record(took)
				}
				mu.Unlock()
				sleep(ctx, plan.Think)
			}
		}()
	}
	wg.Wait()
	if granted.Count() > 0 {
		pt.GrantP50, pt.GrantP99 = time.Duration(granted.Percentile(50)), time.Duration(granted.Percentile(99))
	}
	if rejected.Count() > 0 {
		pt.RejectP50, pt.RejectP99 = time.Duration(rejected.Percentile(50)), time.Duration(rejected.Percentile(99))
	}
	for _, gs := range grants {
		for i := range gs {
			for j := i + 1; j < len(gs); j++ {
				a, b := gs[i], gs[j]
				if a.holder == b.holder {
					continue
				}
				// Each grant took effect between its send and its answer:
				// at most this far apart.
				apart := max(a.answer.Sub(b.sent), b.answer.Sub(a.sent))
				if apart < plan.TTL {
					pt.Overlaps++
				}
			}
		}
	}
	return pt
}
