package tcp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

// mr is registered memory: an anonymous private mapping, off the Go heap.
//
// The soft NIC touches the mapping from its own goroutines (a target
// applying a WRITE, a sender streaming a payload, a receiver landing READ
// data) while the application may Close the MR. Instead of making Close
// wait for them, the mapping is reference counted: the registration holds
// one reference, every user pins one, and whoever drops the last reference
// unmaps. Close therefore never blocks, and a pinned mapping stays valid.
type mr struct {
	pd     *pd
	buf    []byte
	size   int
	addr   uint64
	lkey   uint32
	rkey   uint32
	access verbs.Access

	refs   atomic.Int64
	closed atomic.Bool
}

func newMR(p *pd, size int, access verbs.Access) (*mr, error) {
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("tcp: alloc mr: mmap %d bytes: %w", size, err)
	}
	m := &mr{
		pd:     p,
		buf:    buf,
		size:   size,
		addr:   uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf)))),
		access: access,
	}
	m.refs.Store(1)
	return m, nil
}

// pin takes a reference for a user of the memory. It fails once the MR is
// closed (even if the mapping lives on for earlier users).
func (m *mr) pin() bool {
	for {
		r := m.refs.Load()
		if r <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(r, r+1) {
			break
		}
	}
	if m.closed.Load() {
		m.unpin()
		return false
	}
	return true
}

// ref takes one more reference for a caller that already holds one; it
// cannot fail.
func (m *mr) ref() { m.refs.Add(1) }

func (m *mr) unpin() {
	if m.refs.Add(-1) == 0 {
		// Nobody can reach the mapping any more: pin refuses at zero.
		unix.Munmap(m.buf)
	}
}

// Bytes returns the memory, or nil once the MR is closed.
func (m *mr) Bytes() []byte {
	if m.closed.Load() {
		return nil
	}
	return m.buf
}

func (m *mr) Addr() uint64             { return m.addr }
func (m *mr) LKey() uint32             { return m.lkey }
func (m *mr) RKey() uint32             { return m.rkey }
func (m *mr) Remote() verbs.Remote     { return verbs.Remote{Addr: m.addr, RKey: m.rkey} }
func (m *mr) Access() verbs.Access     { return m.access }
func (m *mr) contains(off, n int) bool { return off >= 0 && n >= 0 && off <= m.size-n }

// Close deregisters the MR: its rkey stops resolving at once, so no new
// remote access starts. The memory is unmapped when the last in-flight use
// ends.
func (m *mr) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("tcp: close mr (rkey %#x): %w", m.rkey, verbs.ErrClosed)
	}
	d := m.pd.dev
	d.mu.Lock()
	delete(d.mrs, m.rkey)
	delete(d.keys, m.rkey)
	delete(d.keys, m.lkey)
	d.mu.Unlock()
	m.unpin()
	return nil
}
