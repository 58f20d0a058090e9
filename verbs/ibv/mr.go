//go:build rdma && cgo

package ibv

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

// mr is registered memory: an anonymous mapping, never Go heap memory, so
// neither the garbage collector nor the NIC moves anything under the other.
type mr struct {
	pd      *pd
	h       mrHandle
	mapping []byte // the whole mapping, page-rounded
	buf     []byte // the registered size
	addr    uint64 // virtual address of buf[0], which is also its iova
	lkey    uint32
	rkey    uint32
	// closed is read by Post without the device lock, to refuse a closed
	// local MR instead of letting an inline post read unmapped memory.
	closed atomic.Bool
}

// AllocMR maps size bytes of zeroed memory and registers them.
func (p *pd) AllocMR(size int, access verbs.Access) (verbs.MR, error) {
	limit := min(p.dev.attr.maxMRSize, maxMRBytes)
	if size <= 0 || uint64(size) > limit {
		return nil, fmt.Errorf("ibv: mr size %d not in [1, %d]: %w", size, limit, verbs.ErrInvalidArgument)
	}
	if access&^verbs.AccessAll != 0 {
		return nil, fmt.Errorf("ibv: mr access %v: %w", access, verbs.ErrInvalidArgument)
	}
	p.dev.mu.Lock()
	defer p.dev.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("ibv: alloc mr: %w", verbs.ErrClosed)
	}
	page := unix.Getpagesize()
	mapping, err := unix.Mmap(-1, 0, (size+page-1)/page*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("ibv: alloc mr of %d bytes: mmap: %w", size, err)
	}
	addr := uintptr(unsafe.Pointer(&mapping[0]))
	h, lkey, rkey, err := regMR(p.h, addr, size, mrAccess(access))
	if err != nil {
		unix.Munmap(mapping)
		hint := ""
		if errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EPERM) {
			hint = " (registered memory is pinned: is the locked-memory limit, ulimit -l, too low?)"
		}
		return nil, fmt.Errorf("ibv: register mr of %d bytes (access %v)%s: %w", size, access, hint, err)
	}
	m := &mr{pd: p, h: h, mapping: mapping, buf: mapping[:size:size], addr: uint64(addr), lkey: lkey, rkey: rkey}
	p.mrs[m] = struct{}{}
	return m, nil
}

// mrAccess maps verbs rights onto an MR's IBV_ACCESS flags. The IBA
// requires local write wherever remote write is granted, so it is added.
func mrAccess(a verbs.Access) uint32 {
	var f uint32
	if a&verbs.AccessLocalWrite != 0 {
		f |= accessLocalWrite
	}
	if a&verbs.AccessRemoteWrite != 0 {
		f |= accessRemoteWrite | accessLocalWrite
	}
	if a&verbs.AccessRemoteRead != 0 {
		f |= accessRemoteRead
	}
	return f
}

func (m *mr) Bytes() []byte        { return m.buf }
func (m *mr) Addr() uint64         { return m.addr }
func (m *mr) LKey() uint32         { return m.lkey }
func (m *mr) RKey() uint32         { return m.rkey }
func (m *mr) Remote() verbs.Remote { return verbs.Remote{Addr: m.addr, RKey: m.rkey} }

// Close deregisters and unmaps the memory; Bytes must not be used after.
func (m *mr) Close() error {
	m.pd.dev.mu.Lock()
	defer m.pd.dev.mu.Unlock()
	if m.closed.Load() {
		return fmt.Errorf("ibv: close mr: %w", verbs.ErrClosed)
	}
	return m.closeLocked()
}

func (m *mr) closeLocked() error {
	m.closed.Store(true)
	delete(m.pd.mrs, m)
	// Deregister first: once it returns, the NIC no longer touches the
	// memory and it can go.
	if err := deregMR(m.h); err != nil {
		// Still registered: leaking the mapping is safer than letting
		// the NIC write into whatever is mapped there next.
		return fmt.Errorf("ibv: deregister mr: %w", err)
	}
	if err := unix.Munmap(m.mapping); err != nil {
		return fmt.Errorf("ibv: unmap mr: %w", err)
	}
	return nil
}
