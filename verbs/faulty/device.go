package faulty

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/verbs"
)

// Device wraps a verbs.Device; it is itself a verbs.Device. Its methods, and
// those of everything made from it, are safe for concurrent use as far as
// the inner provider's are.
type Device struct {
	inner verbs.Device

	// hot is the number of installed rules plus the number of QPs with
	// wrapper state (withheld completions, a rule-made error). While it
	// is zero, posts go straight to the inner QP: the one atomic load of
	// the fast path.
	hot atomic.Int64

	rules    atomic.Pointer[[]*Rule] // copy-on-write under ruleMu
	ruleMu   sync.Mutex
	nextRule int
}

// Wrap returns a device whose PDs, MRs, CQs and QPs wrap those of dev. With
// no rule installed it behaves exactly as dev does.
func Wrap(dev verbs.Device) *Device { return &Device{inner: dev} }

// Inner returns the wrapped device.
func (d *Device) Inner() verbs.Device { return d.inner }

// Provider is "faulty+" and the inner provider's name, the name Register
// makes it openable under.
func (d *Device) Provider() string { return prefix + d.inner.Provider() }

func (d *Device) Name() string { return d.inner.Name() }

func (d *Device) Close() error { return d.inner.Close() }

func (d *Device) AllocPD() (verbs.PD, error) {
	p, err := d.inner.AllocPD()
	if err != nil {
		return nil, err
	}
	return &pd{dev: d, inner: p}, nil
}

func (d *Device) CreateCQ(depth int) (verbs.CQ, error) {
	c, err := d.inner.CreateCQ(depth)
	if err != nil {
		return nil, err
	}
	return newCQ(d, c, depth), nil
}

// Label names qp for the Label predicate ("rep->2"); labelling again
// renames it. qp must come from d: anything else is a programming error, and
// Label panics.
func (d *Device) Label(target verbs.QP, label string) {
	q, ok := target.(*qp)
	if !ok || q == nil || q.dev != d {
		panic(fmt.Sprintf("faulty: Label(%T): not a QP of this device", target))
	}
	q.label.Store(&label)
}

// pd wraps a PD so that its MRs and QPs are wrapped too.
type pd struct {
	dev   *Device
	inner verbs.PD
}

func (p *pd) AllocMR(size int, access verbs.Access) (verbs.MR, error) {
	m, err := p.inner.AllocMR(size, access)
	if err != nil {
		return nil, err
	}
	return &mr{MR: m}, nil
}

func (p *pd) CreateQP(cfg verbs.QPConfig) (verbs.QP, error) {
	if cfg.SendCQ == nil {
		return nil, fmt.Errorf("faulty: create qp: nil SendCQ: %w", verbs.ErrInvalidArgument)
	}
	// The QP's completions must reach the wrapper's CQ, so a CQ of the
	// inner provider, or of another wrapper, will not do.
	c, ok := cfg.SendCQ.(*cq)
	if !ok || c == nil || c.dev != p.dev {
		return nil, fmt.Errorf("faulty: create qp: SendCQ %T is not a CQ of this device: %w", cfg.SendCQ, verbs.ErrForeignObject)
	}
	cfg.SendCQ = c.inner
	in, err := p.inner.CreateQP(cfg)
	if err != nil {
		return nil, err
	}
	q := newQP(p.dev, c, in)
	c.mu.Lock()
	c.qps[q.num] = q
	c.mu.Unlock()
	return q, nil
}

func (p *pd) Close() error { return p.inner.Close() }

// mr wraps an MR only so that wrapped QPs can tell theirs from others and
// hand the inner one to the inner provider, which checks ownership
// (ErrForeignObject); every method is the inner MR's.
type mr struct{ verbs.MR }

// innerMR unwraps m for the inner provider; anything else passes unchanged,
// for the inner provider to refuse.
func innerMR(m verbs.MR) verbs.MR {
	if w, ok := m.(*mr); ok {
		if w == nil {
			return nil
		}
		return w.MR
	}
	return m
}

const prefix = "faulty+"

var (
	registerMu sync.Mutex
	registered = map[string]bool{}
)

// Register makes "faulty+<inner>" a provider for verbs.Open: it opens a
// device of the inner provider and wraps it (type-assert to *Device to add
// rules). It returns that name; registering again just returns it. Tests
// that open devices by name, such as the conformance suite and the peer
// processes it starts, call it from init or TestMain.
func Register(inner string) string {
	name := prefix + inner
	registerMu.Lock()
	defer registerMu.Unlock()
	if !registered[name] {
		verbs.Register(name, func(device string, opts verbs.Options) (verbs.Device, error) {
			d, err := verbs.Open(inner, device, opts)
			if err != nil {
				return nil, fmt.Errorf("faulty: %w", err)
			}
			return Wrap(d), nil
		})
		registered[name] = true
	}
	return name
}
