package tcp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// ProviderName is the name the provider registers under.
const ProviderName = "tcp"

// DefaultDevice is the listen address used for an empty device name.
const DefaultDevice = "127.0.0.1:0"

// Limits on what one device hands out. They only reject absurd requests.
const (
	maxMRSize    = 1 << 40 // 1 TiB of address space per MR
	maxCQDepth   = 1 << 22
	maxSendWR    = 1 << 16
	maxInlineCap = 64 << 10
)

func init() { verbs.Register(ProviderName, Open) }

// device is one soft NIC: a listener for the connections of peer QPs that
// target us, plus the objects made from it.
type device struct {
	name  string // the address peers dial, as advertised in endpoints
	opts  verbs.Options
	nonce uint64
	ln    *net.TCPListener

	closing atomic.Bool    // set first thing in Close; polled by waits
	wg      sync.WaitGroup // accept loop and target connections

	mu      sync.RWMutex
	closed  bool
	nextQPN uint32
	pds     map[*pd]struct{}
	cqs     map[*cq]struct{}
	qps     map[uint32]*qp
	mrs     map[uint32]*mr // by rkey
	keys    map[uint32]struct{}
	conns   map[*tconn]struct{}
}

// Open opens a soft-NIC device listening on the given address ("" means
// 127.0.0.1 on an ephemeral port). It is registered with verbs as "tcp";
// programs normally call verbs.Open("tcp", addr, opts).
//
// The listen address is what peers dial, so it must be an address they can
// reach: a wildcard host (":7000", "0.0.0.0:7000") is accepted but
// advertised as is, which only works for peers on the same host.
func Open(name string, opts verbs.Options) (verbs.Device, error) {
	opts = opts.WithDefaults()
	if name == "" {
		name = DefaultDevice
	}
	ln, err := net.Listen("tcp", name)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen: %w", err)
	}
	d := &device{
		name:    ln.Addr().String(),
		opts:    opts,
		nonce:   nonzero64(),
		ln:      ln.(*net.TCPListener),
		nextQPN: 1,
		pds:     map[*pd]struct{}{},
		cqs:     map[*cq]struct{}{},
		qps:     map[uint32]*qp{},
		mrs:     map[uint32]*mr{},
		keys:    map[uint32]struct{}{},
		conns:   map[*tconn]struct{}{},
	}
	d.wg.Add(1)
	go d.acceptLoop()
	return d, nil
}

func nonzero64() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

func (d *device) Provider() string { return ProviderName }
func (d *device) Name() string     { return d.name }

func (d *device) AllocPD() (verbs.PD, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("tcp: alloc pd on device %s: %w", d.name, verbs.ErrClosed)
	}
	p := &pd{dev: d}
	d.pds[p] = struct{}{}
	return p, nil
}

func (d *device) CreateCQ(depth int) (verbs.CQ, error) {
	if depth <= 0 || depth > maxCQDepth {
		return nil, fmt.Errorf("tcp: create cq of depth %d (want 1..%d): %w", depth, maxCQDepth, verbs.ErrInvalidArgument)
	}
	c := &cq{dev: d, ring: make([]verbs.Completion, depth)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("tcp: create cq on device %s: %w", d.name, verbs.ErrClosed)
	}
	d.cqs[c] = struct{}{}
	return c, nil
}

// Close stops the soft NIC and closes everything made from the device:
// QPs first (their initiator goroutines stop and outstanding requests are
// dropped), then target connections, then memory, CQs and PDs.
func (d *device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("tcp: close device %s: %w", d.name, verbs.ErrClosed)
	}
	d.closed = true
	d.closing.Store(true)
	qps := make([]*qp, 0, len(d.qps))
	for _, q := range d.qps {
		qps = append(qps, q)
	}
	conns := slices.Collect(maps.Keys(d.conns))
	d.mu.Unlock()

	d.ln.Close()
	for _, q := range qps {
		q.Close()
	}
	for _, c := range conns {
		c.conn.Close()
	}
	d.wg.Wait()

	d.mu.Lock()
	mrs := make([]*mr, 0, len(d.mrs))
	for _, m := range d.mrs {
		mrs = append(mrs, m)
	}
	cqs := slices.Collect(maps.Keys(d.cqs))
	pds := slices.Collect(maps.Keys(d.pds))
	d.mu.Unlock()
	for _, m := range mrs {
		m.Close()
	}
	for _, c := range cqs {
		c.Close()
	}
	for _, p := range pds {
		p.Close()
	}
	return nil
}

func (d *device) acceptLoop() {
	defer d.wg.Done()
	for {
		c, err := d.ln.AcceptTCP()
		if err != nil {
			if d.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			slog.Debug("tcp: accept", "device", d.name, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.SetNoDelay(true)
		tc := newTconn(d, c)
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			return
		}
		d.conns[tc] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go tc.serve()
	}
}

// newKeyLocked returns a random nonzero key not yet used as an lkey or
// rkey on this device, so that keys are unique and not guessable from one
// another.
func (d *device) newKeyLocked() uint32 {
	for {
		k := rand.Uint32()
		if _, dup := d.keys[k]; k != 0 && !dup {
			d.keys[k] = struct{}{}
			return k
		}
	}
}

// lookupMR returns the MR registered under rkey, pinned, or nil.
func (d *device) lookupMR(rkey uint32) *mr {
	d.mu.RLock()
	m := d.mrs[rkey]
	d.mu.RUnlock()
	if m == nil || !m.pin() {
		return nil
	}
	return m
}

func (d *device) lookupQP(num uint32) *qp {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.qps[num]
}

// pd is a protection domain. The device's maps hold its MRs and QPs; Close
// finds them there.
type pd struct {
	dev    *device
	closed bool // guarded by dev.mu
}

func (p *pd) AllocMR(size int, access verbs.Access) (verbs.MR, error) {
	d := p.dev
	if size <= 0 || size > maxMRSize {
		return nil, fmt.Errorf("tcp: alloc mr of %d bytes (want 1..%d): %w", size, maxMRSize, verbs.ErrInvalidArgument)
	}
	if access&^verbs.AccessAll != 0 {
		return nil, fmt.Errorf("tcp: alloc mr with access %v: %w", access, verbs.ErrInvalidArgument)
	}
	m, err := newMR(p, size, access)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed || p.closed {
		d.mu.Unlock()
		m.unpin()
		return nil, fmt.Errorf("tcp: alloc mr: %w", verbs.ErrClosed)
	}
	m.lkey = d.newKeyLocked()
	m.rkey = d.newKeyLocked()
	d.mrs[m.rkey] = m
	d.mu.Unlock()
	return m, nil
}

func (p *pd) CreateQP(cfg verbs.QPConfig) (verbs.QP, error) {
	return newQP(p, cfg)
}

// Close closes the PD and every MR and QP still open in it.
func (p *pd) Close() error {
	d := p.dev
	d.mu.Lock()
	if p.closed {
		d.mu.Unlock()
		return fmt.Errorf("tcp: close pd: %w", verbs.ErrClosed)
	}
	p.closed = true
	delete(d.pds, p)
	var qps []*qp
	for _, q := range d.qps {
		if q.pd == p {
			qps = append(qps, q)
		}
	}
	var mrs []*mr
	for _, m := range d.mrs {
		if m.pd == p {
			mrs = append(mrs, m)
		}
	}
	d.mu.Unlock()
	for _, q := range qps {
		q.Close()
	}
	for _, m := range mrs {
		m.Close()
	}
	return nil
}
