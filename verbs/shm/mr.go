//go:build linux

package shm

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

const (
	// maxMRSize bounds AllocMR well above any memory a host has, to tell
	// nonsense sizes apart from an honest lack of memory.
	maxMRSize = 1 << 40
	mrMagic   = 0x676f_6d75_4d52_0001 // "gomuMR", layout version 1
)

// mrHeader is the first page of an MR file. The owner fills it before
// setting valid; peers copy the immutable fields when they map the file and
// load valid on every access.
type mrHeader struct {
	magic  uint64
	valid  atomic.Uint32 // cleared by deregistration
	pd     uint32
	access uint32
	rkey   uint32
	base   uint64 // the owner's address of the first byte
	length uint64
}

type pd struct {
	dev *device
	id  uint32 // unique within the device; compared with the QP slots' PD

	// Under dev.mu.
	closed bool
	mrs    map[*mr]struct{}
	qps    map[*qp]struct{}
}

// AllocMR creates the MR's file, maps it and publishes its header.
func (p *pd) AllocMR(size int, access verbs.Access) (verbs.MR, error) {
	if size <= 0 || size > maxMRSize {
		return nil, fmt.Errorf("shm: alloc mr of %d bytes (want 1..%d): %w", size, int64(maxMRSize), verbs.ErrInvalidArgument)
	}
	if access&^verbs.AccessAll != 0 {
		return nil, fmt.Errorf("shm: alloc mr with access %v: %w", access, verbs.ErrInvalidArgument)
	}
	d := p.dev
	d.mu.Lock()
	if d.closed || p.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("shm: alloc mr: pd %d: %w", p.id, verbs.ErrClosed)
	}
	lkey, rkey := d.newKey(), d.newKey()
	d.mu.Unlock()

	path := nodeFile(d.dir, d.node, mrSuffix(rkey))
	mem, err := createMapped(path, headerSize+size)
	if err != nil {
		d.mu.Lock()
		delete(d.keys, lkey)
		delete(d.keys, rkey)
		d.mu.Unlock()
		return nil, fmt.Errorf("shm: alloc mr of %d bytes: %w", size, err)
	}
	m := &mr{
		pd:     p,
		mem:    mem,
		buf:    mem[headerSize : headerSize+size : headerSize+size],
		size:   size,
		path:   path,
		lkey:   lkey,
		rkey:   rkey,
		access: access,
	}
	m.addr = uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	m.hdr = (*mrHeader)(unsafe.Pointer(&mem[0]))
	m.hdr.magic = mrMagic
	m.hdr.pd = p.id
	m.hdr.access = uint32(access)
	m.hdr.rkey = rkey
	m.hdr.base = m.addr
	m.hdr.length = uint64(size)
	m.hdr.valid.Store(1)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || p.closed {
		m.release()
		return nil, fmt.Errorf("shm: alloc mr: pd %d: %w", p.id, verbs.ErrClosed)
	}
	p.mrs[m] = struct{}{}
	return m, nil
}

func (p *pd) Close() error { return p.close(true) }

// close closes the PD and the MRs and QPs still open in it; drain says
// whether QPs wait for in-flight writes into them (not when the whole
// device goes).
func (p *pd) close(drain bool) error {
	d := p.dev
	d.mu.Lock()
	if p.closed {
		d.mu.Unlock()
		return fmt.Errorf("shm: close pd %d: %w", p.id, verbs.ErrClosed)
	}
	p.closed = true
	qps := slices.Collect(maps.Keys(p.qps))
	mrs := slices.Collect(maps.Keys(p.mrs))
	delete(d.pds, p)
	d.mu.Unlock()

	for _, q := range qps {
		q.close(drain)
	}
	for _, m := range mrs {
		m.Close()
	}
	return nil
}

type mr struct {
	pd     *pd
	mem    []byte // the whole mapping, header included
	buf    []byte // the registered memory
	size   int    // len(buf), kept after Close for the post-time bounds check
	hdr    *mrHeader
	path   string
	addr   uint64
	lkey   uint32
	rkey   uint32
	access verbs.Access

	// closed is set by Close; posts read it to refuse a deregistered
	// local buffer.
	closed atomic.Bool
}

func (m *mr) Bytes() []byte {
	if m.closed.Load() {
		return nil
	}
	return m.buf
}

func (m *mr) Addr() uint64         { return m.addr }
func (m *mr) LKey() uint32         { return m.lkey }
func (m *mr) RKey() uint32         { return m.rkey }
func (m *mr) Remote() verbs.Remote { return verbs.Remote{Addr: m.addr, RKey: m.rkey} }

// Close deregisters the MR: peers see the header invalid from now on (a
// peer that mapped the file keeps its pages, so a write racing with
// deregistration lands in memory nobody reads, never in freed memory).
func (m *mr) Close() error {
	d := m.pd.dev
	d.mu.Lock()
	if m.closed.Load() {
		d.mu.Unlock()
		return fmt.Errorf("shm: close mr rkey %#x: %w", m.rkey, verbs.ErrClosed)
	}
	m.closed.Store(true)
	delete(m.pd.mrs, m)
	delete(d.keys, m.lkey)
	delete(d.keys, m.rkey)
	d.mu.Unlock()
	m.release()
	return nil
}

func (m *mr) release() {
	m.hdr.valid.Store(0)
	os.Remove(m.path)
	// Fields keep their values: a post that loses a race with Close
	// reads closed, never a half-cleared MR.
	unix.Munmap(m.mem)
}
