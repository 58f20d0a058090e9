package faulty

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
)

// OpKind is the kind of call a rule is asked about.
type OpKind uint8

const (
	Write     OpKind = iota + 1 // QP.PostWrite
	Read                        // QP.PostRead
	SetAccess                   // QP.SetAccess
)

func (k OpKind) String() string {
	switch k {
	case Write:
		return "WRITE"
	case Read:
		return "READ"
	case SetAccess:
		return "SetAccess"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op describes one call that rules are asked about.
type Op struct {
	Kind   OpKind
	QPNum  uint32 // the local QP
	Label  string // set with Device.Label; "" if none
	Peer   []byte // the endpoint the QP was last connected to; nil before
	WRID   uint64 // posts only
	Length int    // posts only
}

// Predicate selects the operations a rule fires on. Match may be called from
// several goroutines at once (posts on QPs of different CQs, SetAccess), so
// stateful predicates synchronize themselves.
type Predicate interface {
	Match(op Op) bool
}

// PredicateFunc adapts a function to Predicate.
type PredicateFunc func(op Op) bool

func (f PredicateFunc) Match(op Op) bool { return f(op) }

type kindPred OpKind

func (k kindPred) Match(op Op) bool { return op.Kind == OpKind(k) }
func (k kindPred) String() string   { return OpKind(k).String() }

// Kind matches operations of kind k.
func Kind(k OpKind) Predicate { return kindPred(k) }

type qpNumPred uint32

func (n qpNumPred) Match(op Op) bool { return op.QPNum == uint32(n) }
func (n qpNumPred) String() string   { return fmt.Sprintf("qp %d", uint32(n)) }

// QPNum matches operations on the local QP numbered n.
func QPNum(n uint32) Predicate { return qpNumPred(n) }

type labelPred string

func (l labelPred) Match(op Op) bool { return op.Label == string(l) }
func (l labelPred) String() string   { return fmt.Sprintf("label %q", string(l)) }

// Label matches operations on QPs labelled l with Device.Label.
func Label(l string) Predicate { return labelPred(l) }

type peerPred []byte

func (p peerPred) Match(op Op) bool { return op.Peer != nil && bytes.Equal(op.Peer, p) }
func (p peerPred) String() string   { return fmt.Sprintf("peer %x", []byte(p)) }

// Peer matches operations on QPs connected to the given peer endpoint (what
// the peer's QP.Endpoint returned).
func Peer(endpoint []byte) Predicate { return peerPred(bytes.Clone(endpoint)) }

type andPred []Predicate

func (a andPred) Match(op Op) bool {
	for _, p := range a {
		if !p.Match(op) {
			return false
		}
	}
	return true
}

func (a andPred) String() string {
	parts := make([]string, len(a))
	for i, p := range a {
		parts[i] = describe(p)
	}
	return strings.Join(parts, " && ")
}

// And matches operations every predicate matches. It asks them in order and
// stops at the first that does not match, so stateful predicates (OnIndex,
// EveryNth, Probability) count only the operations that got to them: put
// them last, as in And(Kind(Write), Label("x"), OnIndex(2)) for "the third
// WRITE on the QP labelled x".
func And(ps ...Predicate) Predicate { return andPred(ps) }

type onIndex struct {
	want int64
	seen atomic.Int64
}

func (o *onIndex) Match(Op) bool  { return o.seen.Add(1)-1 == o.want }
func (o *onIndex) String() string { return fmt.Sprintf("index %d", o.want) }

// OnIndex matches the i-th operation it is asked about, counting from 0, and
// no other: OnIndex(2) is the third.
func OnIndex(i int) Predicate { return &onIndex{want: int64(i)} }

type everyNth struct {
	n    int64
	seen atomic.Int64
}

func (e *everyNth) Match(Op) bool  { return e.seen.Add(1)%e.n == 0 }
func (e *everyNth) String() string { return fmt.Sprintf("every %d", e.n) }

// EveryNth matches the n-th operation it is asked about, then the 2n-th, and
// so on. n < 1 is taken as 1.
func EveryNth(n int) Predicate { return &everyNth{n: int64(max(n, 1))} }

type probability struct {
	p   float64
	mu  sync.Mutex
	rng *rand.Rand
}

func (r *probability) Match(Op) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.Float64() < r.p
}

func (r *probability) String() string { return fmt.Sprintf("p=%g", r.p) }

// Probability matches each operation it is asked about with probability p,
// drawn from a generator seeded with seed, so a run with the same seed and
// the same sequence of operations fires on the same ones.
func Probability(p float64, seed uint64) Predicate {
	return &probability{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// describe names a predicate for error messages and Rule.String.
func describe(p Predicate) string {
	if p == nil {
		return "any"
	}
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", p)
}
