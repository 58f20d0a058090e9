//go:build rdma && cgo

package ibv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gomu-rdma/gomu/verbs"
)

const providerName = "ibv"

func init() { verbs.Register(providerName, open) }

// maxMRBytes caps AllocMR whatever the device claims (mlx5 reports 2^64-1):
// a larger size is a bug, not a request.
const maxMRBytes = 1 << 42

// maxRdAtom caps the outstanding READs per QP, in both directions.
const maxRdAtom = 16

// device is an opened port of an RDMA device (an ibv_context).
type device struct {
	name string
	port uint8
	ctx  ctxHandle
	attr deviceAttr

	linkLayer uint8
	mtu       uint8 // the port's active MTU (enum ibv_mtu)
	lid       uint16
	gid       [16]byte
	gidIndex  uint8
	maxMsg    uint32

	retry      retryParams
	rdAtom     uint8 // READs we answer at once (max_dest_rd_atomic)
	initRdAtom uint8 // READs we issue at once (max_rd_atomic)

	// mu guards the object tree: closed flags and the sets below, and
	// serialises creation and destruction of objects.
	mu     sync.Mutex
	closed bool
	pds    map[*pd]struct{}
	cqs    map[*cq]struct{}
}

// open is the provider's verbs.OpenFunc. name is "" (the first device),
// "<device>" or "<device>:<port>".
func open(name string, opts verbs.Options) (verbs.Device, error) {
	opts = opts.WithDefaults()
	port := opts.Port
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		p, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return nil, fmt.Errorf("ibv: device %q: port is not a number: %w", name, verbs.ErrInvalidArgument)
		}
		name, port = name[:i], p
	}
	if port < 1 || port > 255 {
		return nil, fmt.Errorf("ibv: port %d out of range: %w", port, verbs.ErrInvalidArgument)
	}
	if opts.GIDIndex < 0 || opts.GIDIndex > 255 {
		return nil, fmt.Errorf("ibv: GID index %d out of range: %w", opts.GIDIndex, verbs.ErrInvalidArgument)
	}

	devs, list, err := listDevices()
	defer freeDevices(list)
	if len(devs) == 0 {
		if err != nil {
			return nil, fmt.Errorf("ibv: no RDMA device found (%v); use --transport shm or tcp: %w", err, verbs.ErrNoDevice)
		}
		return nil, fmt.Errorf("ibv: no RDMA device found; use --transport shm or tcp: %w", verbs.ErrNoDevice)
	}
	chosen, names := -1, make([]string, len(devs))
	for i, dv := range devs {
		names[i] = deviceName(dv)
		if chosen < 0 && (name == "" || names[i] == name) {
			chosen = i
		}
	}
	if chosen < 0 {
		return nil, fmt.Errorf("ibv: device %q not found (have %s): %w", name, strings.Join(names, ", "), verbs.ErrNoDevice)
	}
	ctx, err := openDevice(devs[chosen])
	if err != nil {
		return nil, fmt.Errorf("ibv: open %s: %w", names[chosen], err)
	}
	d := &device{
		name:     names[chosen],
		port:     uint8(port),
		ctx:      ctx,
		gidIndex: uint8(opts.GIDIndex),
		retry:    retryFor(opts.RetryTimeout),
		pds:      map[*pd]struct{}{},
		cqs:      map[*cq]struct{}{},
	}
	if err := d.probe(); err != nil {
		closeDevice(ctx)
		return nil, err
	}
	return d, nil
}

// probe reads the device's limits and the port's addressing.
func (d *device) probe() error {
	var err error
	if d.attr, err = queryDevice(d.ctx); err != nil {
		return fmt.Errorf("ibv: query %s: %w", d.name, err)
	}
	if int(d.port) > d.attr.physPortCnt {
		return fmt.Errorf("ibv: %s has %d port(s), not %d: %w", d.name, d.attr.physPortCnt, d.port, verbs.ErrInvalidArgument)
	}
	pa, err := queryPort(d.ctx, d.port)
	if err != nil {
		return fmt.Errorf("ibv: query %s port %d: %w", d.name, d.port, err)
	}
	if pa.state != portActive && pa.state != portActiveDefer {
		return fmt.Errorf("ibv: %s port %d is not active (state %d): %w", d.name, d.port, pa.state, verbs.ErrNoDevice)
	}
	d.mtu = uint8(pa.activeMTU)
	d.lid = pa.lid
	d.maxMsg = pa.maxMsgSize
	d.rdAtom = uint8(min(max(d.attr.maxQPRdAtom, 1), maxRdAtom))
	d.initRdAtom = uint8(min(max(d.attr.maxQPInitRdAtom, 1), maxRdAtom))
	switch pa.linkLayer {
	case linkLayerEthernet:
		// RoCE: peers are addressed by GID, and the index picks both
		// the address and the RoCE version (v1 or v2) of our packets.
		d.linkLayer = linkLayerEthernet
		if int(d.gidIndex) >= pa.gidTblLen {
			return fmt.Errorf("ibv: %s port %d: GID index %d beyond the table of %d: %w",
				d.name, d.port, d.gidIndex, pa.gidTblLen, verbs.ErrInvalidArgument)
		}
		if d.gid, err = queryGID(d.ctx, d.port, int(d.gidIndex)); err != nil {
			return fmt.Errorf("ibv: %s port %d: GID %d: %w", d.name, d.port, d.gidIndex, err)
		}
		if d.gid == [16]byte{} {
			return fmt.Errorf("ibv: %s port %d: GID index %d is empty (list them with show_gids): %w",
				d.name, d.port, d.gidIndex, verbs.ErrInvalidArgument)
		}
	default:
		// InfiniBand (older drivers report "unspecified"): peers are
		// addressed by LID within the subnet; GIDIndex is ignored.
		d.linkLayer = linkLayerInfiniBand
		if d.lid == 0 {
			return fmt.Errorf("ibv: %s port %d has no LID (is a subnet manager running?): %w", d.name, d.port, verbs.ErrNoDevice)
		}
		d.gid, _ = queryGID(d.ctx, d.port, 0) // informational only
	}
	return nil
}

func (d *device) Provider() string { return providerName }

// Name is the libibverbs device name, e.g. "mlx5_0".
func (d *device) Name() string { return d.name }

func (d *device) AllocPD() (verbs.PD, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("ibv: alloc pd on %s: %w", d.name, verbs.ErrClosed)
	}
	h, err := allocPD(d.ctx)
	if err != nil {
		return nil, fmt.Errorf("ibv: alloc pd on %s: %w", d.name, err)
	}
	p := &pd{dev: d, h: h, mrs: map[*mr]struct{}{}, qps: map[*qp]struct{}{}}
	d.pds[p] = struct{}{}
	return p, nil
}

// pollBatch bounds the completions one Poll takes from the device, and so
// the size of each CQ's C array.
const pollBatch = 64

func (d *device) CreateCQ(depth int) (verbs.CQ, error) {
	if depth <= 0 || depth > d.attr.maxCQE {
		return nil, fmt.Errorf("ibv: cq depth %d not in [1, %d]: %w", depth, d.attr.maxCQE, verbs.ErrInvalidArgument)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("ibv: create cq on %s: %w", d.name, verbs.ErrClosed)
	}
	// Twice the depth the accounting allows: providers that do not purge
	// a reset QP's completions from the CQ leave them there until polled,
	// and they must not overflow it.
	h, err := createCQ(d.ctx, min(2*depth, d.attr.maxCQE))
	if err != nil {
		return nil, fmt.Errorf("ibv: create cq of %d on %s: %w", depth, d.name, err)
	}
	c := &cq{dev: d, h: h, depth: int64(depth), wcs: newWCArray(min(depth, pollBatch)), qps: map[uint32]*qp{}}
	d.cqs[c] = struct{}{}
	return c, nil
}

// Close closes every object still open from the device, then the device.
func (d *device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("ibv: close %s: %w", d.name, verbs.ErrClosed)
	}
	d.closed = true
	var errs []error
	for p := range d.pds {
		errs = append(errs, p.closeLocked())
	}
	for c := range d.cqs {
		errs = append(errs, c.closeLocked())
	}
	if err := closeDevice(d.ctx); err != nil {
		errs = append(errs, fmt.Errorf("ibv: close %s: %w", d.name, err))
	}
	return errors.Join(errs...)
}

// pd is a protection domain.
type pd struct {
	dev    *device
	h      pdHandle
	closed bool // under dev.mu
	mrs    map[*mr]struct{}
	qps    map[*qp]struct{}
}

// Close closes the PD's QPs and MRs, then the PD.
func (p *pd) Close() error {
	p.dev.mu.Lock()
	defer p.dev.mu.Unlock()
	if p.closed {
		return fmt.Errorf("ibv: close pd: %w", verbs.ErrClosed)
	}
	return p.closeLocked()
}

func (p *pd) closeLocked() error {
	p.closed = true
	var errs []error
	for q := range p.qps {
		errs = append(errs, q.closeLocked())
	}
	for m := range p.mrs {
		errs = append(errs, m.closeLocked())
	}
	if err := deallocPD(p.h); err != nil {
		errs = append(errs, fmt.Errorf("ibv: dealloc pd: %w", err))
	}
	delete(p.dev.pds, p)
	return errors.Join(errs...)
}
