package lincheck

import (
	"math/rand/v2"
	"time"
)

// ReadRouter picks the replica for each read, as a client with several
// replicas to read from would: at random, but not from a replica that
// lately failed a read (no answer, or a refusal) or answered one far
// slower than the client's reads have been. Such a replica is shunned for
// a while (Shun, doubled for each shun in a row up to 8 times, jittered by
// ±25 %, so that clients that failed together do not come back together),
// and read again once that passes. A replica that stops answering would
// otherwise hold every client that picks it for a whole timeout, and one
// starved of CPU every client that reads there. lincheck's clients and
// etcd's client in the fault runner share it, so that both stores are
// judged with one client policy. A ReadRouter is used by one goroutine.
type ReadRouter struct {
	rng     *rand.Rand
	base    time.Duration
	shunned []time.Time     // per replica: reads avoid it until then
	shunFor []time.Duration // per replica: its last shun, doubled on the next
	typical time.Duration   // moving average of normal reads' latency
}

// A read answered this many times slower than the client's reads have
// lately been (and slower than slowReadFloor) marks its replica slow.
const (
	slowReadFactor = 8
	slowReadFloor  = 2 * time.Millisecond
)

// NewReadRouter routes reads among n replicas; shun is the first shun (0:
// 1 s; negative: never shun).
func NewReadRouter(n int, shun time.Duration, rng *rand.Rand) *ReadRouter {
	if shun == 0 {
		shun = time.Second
	}
	return &ReadRouter{rng: rng, base: shun, shunned: make([]time.Time, n), shunFor: make([]time.Duration, n)}
}

// Pick is the replica for the next read: a random one among those not
// shunned (among all when every one is).
func (r *ReadRouter) Pick() int {
	now := time.Now()
	n, pick := 0, -1
	for i, until := range r.shunned {
		if now.Before(until) {
			continue
		}
		// Reservoir sampling: each eligible replica with probability 1/n.
		if n++; r.rng.IntN(n) == 0 {
			pick = i
		}
	}
	if pick < 0 {
		pick = r.rng.IntN(len(r.shunned))
	}
	return pick
}

// Failed shuns replica at after a read there got no answer or a refusal.
func (r *ReadRouter) Failed(at int) {
	if r.base <= 0 {
		return
	}
	d := min(max(2*r.shunFor[at], r.base), 8*r.base)
	r.shunFor[at] = d
	jittered := time.Duration(float64(d) * (0.75 + 0.5*r.rng.Float64()))
	r.shunned[at] = time.Now().Add(jittered)
}

// Answered notes a read replica at answered in took: a slow one shuns the
// replica, a normal one lets its next shun start over.
func (r *ReadRouter) Answered(at int, took time.Duration) {
	typical := r.typical
	if typical == 0 {
		typical = took
	}
	// The average follows normal reads only, so that a slow replica
	// does not teach the client that slow is normal.
	if took > slowReadFloor && took > slowReadFactor*typical {
		r.Failed(at)
		return
	}
	r.typical = typical + (took-typical)/10
	r.Reset(at)
}

// Reset notes that replica at answered something other than a read: its
// next shun starts over.
func (r *ReadRouter) Reset(at int) { r.shunFor[at] = 0 }
