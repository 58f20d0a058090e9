package faulty

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// ErrInjected is wrapped by every error a Fail rule makes a call return, next
// to the error the rule names, so a test can tell injected errors from real
// ones.
var ErrInjected = errors.New("faulty: injected")

type actionKind uint8

const (
	actFail actionKind = iota + 1
	actComplete
	actHold
	actDelay
	actTear
)

// Action is what a rule does to the operations it fires on.
type Action struct {
	kind   actionKind
	err    error         // actFail
	status verbs.Status  // actComplete, actTear
	delay  time.Duration // actDelay
	prefix int           // actTear
	heal   time.Duration // the rule removes itself after heal (Partition)
}

// Fail makes the call return an error wrapping err and ErrInjected, without
// reaching the inner provider: a post that is refused synchronously (err
// verbs.ErrQueueFull, say), or a SetAccess that fails (verbs.ErrFenceTimeout,
// so that the caller's Reset fallback runs; the access is left unchanged).
// It is the only action that applies to SetAccess.
func Fail(err error) Action {
	if err == nil {
		err = ErrInjected
	}
	return Action{kind: actFail, err: err}
}

// Complete makes a post not execute and complete with status, signaled or
// not. An error status also moves the QP to StateError, so later posts
// complete with StatusFlushError until Reset and Connect. StatusSuccess makes
// a NIC that acknowledges a request it never executed.
func Complete(status verbs.Status) Action { return Action{kind: actComplete, status: status} }

// Hold lets a post execute but withholds its completion, and every later
// completion of its QP, until Rule.Release (or Rule.Remove).
func Hold() Action { return Action{kind: actHold} }

// Delay lets a post execute but withholds its completion, and every later
// completion of its QP, for d (or until Rule.Release). The bytes of a WRITE
// land at once; only their acknowledgement is late.
func Delay(d time.Duration) Action { return Action{kind: actDelay, delay: d} }

// Tear makes a WRITE land only its first prefix bytes (contract item 6: a
// reader may see a torn write) and complete with status: StatusSuccess
// reports every byte moved; an error status moves the QP to StateError as
// Complete does.
func Tear(prefix int, status verbs.Status) Action {
	return Action{kind: actTear, prefix: max(prefix, 0), status: status}
}

// Partition cuts the link: every post completes with StatusRetryExceeded
// without executing, moving the QP to StateError, as if the peer stopped
// answering. The rule removes itself after heal (0 means only Rule.Heal
// ends it); then Reset and Connect make the QP work again.
func Partition(heal time.Duration) Action {
	return Action{kind: actComplete, status: verbs.StatusRetryExceeded, heal: heal}
}

// applies says whether the action can act on a call of kind k; a rule is
// only asked about (and its stateful predicates only count) such calls.
func (a Action) applies(k OpKind) bool {
	switch a.kind {
	case actFail:
		return true
	case actTear:
		return k == Write
	}
	return k == Write || k == Read
}

func (a Action) String() string {
	switch a.kind {
	case actFail:
		return fmt.Sprintf("fail(%v)", a.err)
	case actComplete:
		if a.heal > 0 {
			return fmt.Sprintf("complete(%v, heal %v)", a.status, a.heal)
		}
		return fmt.Sprintf("complete(%v)", a.status)
	case actHold:
		return "hold"
	case actDelay:
		return fmt.Sprintf("delay(%v)", a.delay)
	case actTear:
		return fmt.Sprintf("tear(%d, %v)", a.prefix, a.status)
	}
	return "none"
}

// Rule is an installed fault. Its methods are safe for concurrent use.
type Rule struct {
	id    int
	dev   *Device
	pred  Predicate
	act   Action
	fired atomic.Int64

	// Completions withheld by Hold and Delay get increasing tickets;
	// those with a ticket up to released are let go.
	tickets  atomic.Uint64
	released atomic.Uint64

	removed atomic.Bool
	timer   *time.Timer // Partition's heal; set before the rule is published
}

// Fired is how many operations the rule has fired on.
func (r *Rule) Fired() int { return int(r.fired.Load()) }

// Release lets go of every completion the rule is holding or delaying now;
// they show in Poll, in order, behind whatever their QP completed before
// them. The rule stays installed and withholds later ones.
func (r *Rule) Release() { r.released.Store(r.tickets.Load()) }

// Remove uninstalls the rule and releases what it withholds. Removing twice
// does nothing.
func (r *Rule) Remove() { r.dev.remove(r) }

// Heal ends a Partition; it is Remove, named for what it means to the test.
func (r *Rule) Heal() { r.Remove() }

func (r *Rule) String() string {
	return fmt.Sprintf("rule #%d (%s: %v)", r.id, describe(r.pred), r.act)
}

// ticket registers one more withheld completion.
func (r *Rule) ticket() uint64 { return r.tickets.Add(1) }

// letGo says whether the completion with ticket t may show. A removed rule
// withholds nothing, not even what a post that matched it just before the
// removal ticketed after Remove's release.
func (r *Rule) letGo(t uint64) bool { return r.released.Load() >= t || r.removed.Load() }

// Inject installs a rule: from now on, the first installed rule whose action
// applies to an operation and whose predicate matches it fires. A nil
// predicate matches every operation the action applies to.
func (d *Device) Inject(p Predicate, a Action) *Rule {
	d.ruleMu.Lock()
	defer d.ruleMu.Unlock()
	d.nextRule++
	r := &Rule{id: d.nextRule, dev: d, pred: p, act: a}
	if a.heal > 0 {
		r.timer = time.AfterFunc(a.heal, r.Remove)
	}
	var next []*Rule
	if cur := d.rules.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, r)
	d.rules.Store(&next)
	d.hot.Add(1)
	return r
}

func (d *Device) remove(r *Rule) {
	d.ruleMu.Lock()
	defer d.ruleMu.Unlock()
	if r.removed.Swap(true) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	cur := *d.rules.Load()
	next := slices.DeleteFunc(slices.Clone(cur), func(x *Rule) bool { return x == r })
	d.rules.Store(&next)
	d.hot.Add(-1)
	r.Release()
}

// anyRules says whether a rule is installed.
func (d *Device) anyRules() bool {
	rs := d.rules.Load()
	return rs != nil && len(*rs) > 0
}

// match returns the rule that fires on op, counting the firing, or nil.
func (d *Device) match(op Op) *Rule {
	rs := d.rules.Load()
	if rs == nil {
		return nil
	}
	for _, r := range *rs {
		if !r.act.applies(op.Kind) {
			continue
		}
		if r.pred == nil || r.pred.Match(op) {
			r.fired.Add(1)
			return r
		}
	}
	return nil
}

// failure is the error a Fail rule makes op return.
func (r *Rule) failure(op Op) error {
	if op.Kind == SetAccess {
		return fmt.Errorf("faulty: SetAccess on qp %d (%v): %w: %w", op.QPNum, r, ErrInjected, r.act.err)
	}
	return fmt.Errorf("faulty: %v wr %d on qp %d (%v): %w: %w", op.Kind, op.WRID, op.QPNum, r, ErrInjected, r.act.err)
}
