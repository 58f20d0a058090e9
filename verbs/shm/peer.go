//go:build linux

package shm

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

// peer is another node of the fabric (possibly this one) that some of our
// QPs are connected to: its QP table, the MRs of it we have touched, and
// whether it is dead. Connections share it; the last one to go unmaps it.
type peer struct {
	node uint64
	pid  int
	lock string // the node's lock file, for probing

	// dead is set once the peer's process is known to be gone; the hot
	// path reads it before touching the peer's memory.
	dead atomic.Bool

	table []byte // the peer's QP table; nil if it was gone at connect
	slots uint32
	refs  int // connections using it, under device.mu

	mu      sync.Mutex
	mrs     map[uint32]*remoteMR
	retired []*remoteMR // invalidated mappings, still referenced by caches
}

// remoteMR is a peer's MR mapped into this process. Everything but the
// header's valid flag is immutable and copied out at map time.
type remoteMR struct {
	mem    []byte // the whole file
	data   []byte // the registered memory
	hdr    *mrHeader
	base   uint64 // the owner's address of data[0]
	pd     uint32
	access verbs.Access
}

// acquirePeer returns the peer for node with a reference taken, mapping its
// QP table and starting to watch its process if this is the first
// connection to it. A node that is gone yields a peer marked dead.
func (d *device) acquirePeer(node uint64) (*peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, verbs.ErrClosed
	}
	if p := d.peers[node]; p != nil {
		p.refs++
		return p, nil
	}
	p := &peer{node: node, lock: nodeFile(d.dir, node, ".lock"), mrs: map[uint32]*remoteMR{}, refs: 1}
	table, err := mapFile(nodeFile(d.dir, node, ".qp"))
	if err != nil {
		return nil, err
	}
	if table == nil {
		p.dead.Store(true)
		d.peers[node] = p
		return p, nil
	}
	hdr := (*qpTableHeader)(unsafe.Pointer(&table[0]))
	if hdr.magic != qpTableMagic || hdr.node != node || uint64(len(table)) < headerSize+hdr.slots*slotSize {
		unix.Munmap(table)
		return nil, fmt.Errorf("shm: QP table of node %016x: bad header: %w", node, verbs.ErrBadEndpoint)
	}
	p.table, p.slots, p.pid = table, uint32(hdr.slots), int(hdr.pid)

	if node != d.node {
		// Open the pidfd before probing the lock: if the lock is held
		// after the pidfd exists, the pidfd names the node's process
		// and not a later owner of a reused pid.
		pidfd := -1
		if p.pid != d.pid {
			if fd, err := unix.PidfdOpen(p.pid, 0); err == nil {
				pidfd = fd
			}
		}
		if dead, _ := lockFree(p.lock); dead {
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
			p.dead.Store(true)
		} else if p.pid != d.pid {
			if err := d.watch.add(p, pidfd); err != nil {
				unix.Close(pidfd)
				unix.Munmap(table)
				return nil, err
			}
		}
	}
	d.peers[node] = p
	return p, nil
}

// releasePeer drops a reference taken by acquirePeer.
func (d *device) releasePeer(p *peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p.refs--
	if p.refs > 0 || d.peers[p.node] != p {
		return
	}
	delete(d.peers, p.node)
	d.watch.remove(p)
	p.unmap()
}

// slot returns the control block of the peer's QP num, or nil if num is out
// of range.
func (p *peer) slot(num uint32) *slot {
	if num == 0 || num > p.slots {
		return nil
	}
	return slotAt(p.table, num-1)
}

// mapMR returns the peer's MR with the given rkey, mapping it on first use;
// nil means no such valid MR.
func (p *peer) mapMR(dir string, rkey uint32) *remoteMR {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.mrs[rkey]; m != nil {
		if m.hdr.valid.Load() != 0 {
			return m
		}
		delete(p.mrs, rkey)
		p.retired = append(p.retired, m)
	}
	if p.table == nil {
		return nil
	}
	mem, err := mapFile(nodeFile(dir, p.node, mrSuffix(rkey)))
	if err != nil || mem == nil {
		return nil
	}
	hdr := (*mrHeader)(unsafe.Pointer(&mem[0]))
	if hdr.magic != mrMagic || hdr.rkey != rkey || hdr.valid.Load() == 0 ||
		uint64(len(mem)) < headerSize+hdr.length {
		unix.Munmap(mem)
		return nil
	}
	m := &remoteMR{
		mem:    mem,
		data:   mem[headerSize : headerSize+hdr.length],
		hdr:    hdr,
		base:   hdr.base,
		pd:     hdr.pd,
		access: verbs.Access(hdr.access),
	}
	p.mrs[rkey] = m
	return m
}

// unmap releases every mapping of the peer; no connection uses it any more.
func (p *peer) unmap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.mrs {
		unix.Munmap(m.mem)
	}
	for _, m := range p.retired {
		unix.Munmap(m.mem)
	}
	p.mrs, p.retired = nil, nil
	if p.table != nil {
		unix.Munmap(p.table)
		p.table = nil
	}
}

// watcher notices the death of peer processes: one goroutine per device
// blocks in epoll_wait on the peers' pidfds (a pidfd becomes readable when
// its process exits) and sets their dead flags. Peers whose pidfd could not
// be opened are probed through their lock files every probeEvery instead.
type watcher struct {
	epfd, evfd int
	probeEvery time.Duration
	done       chan struct{}

	mu       sync.Mutex
	stopping bool
	next     uint64 // last token handed out; token 0 is the eventfd
	tokens   map[uint64]*peer
	pidfds   map[*peer]watched
	probes   map[*peer]struct{}
}

type watched struct {
	token uint64
	fd    int
}

func newWatcher(probeEvery time.Duration) (*watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	if probeEvery < time.Millisecond {
		probeEvery = time.Millisecond
	}
	w := &watcher{
		epfd:       epfd,
		evfd:       evfd,
		probeEvery: probeEvery,
		done:       make(chan struct{}),
		tokens:     map[uint64]*peer{},
		pidfds:     map[*peer]watched{},
		probes:     map[*peer]struct{}{},
	}
	go w.loop()
	return w, nil
}

// add starts watching p through pidfd, or by probing if pidfd is -1.
func (w *watcher) add(p *peer, pidfd int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pidfd < 0 {
		w.probes[p] = struct{}{}
		w.wake() // the loop must start using a timeout
		return nil
	}
	w.next++
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(w.next)), Pad: int32(uint32(w.next >> 32))}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, pidfd, &ev); err != nil {
		return fmt.Errorf("shm: watch pid %d: epoll_ctl: %w", p.pid, err)
	}
	w.tokens[w.next] = p
	w.pidfds[p] = watched{token: w.next, fd: pidfd}
	return nil
}

// remove stops watching p.
func (w *watcher) remove(p *peer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetLocked(p)
}

func (w *watcher) forgetLocked(p *peer) {
	delete(w.probes, p)
	if x, ok := w.pidfds[p]; ok {
		// Closing the only descriptor of the pidfd removes it from the
		// epoll set; an event already fetched for its token is
		// ignored, as the token is never reused.
		unix.Close(x.fd)
		delete(w.pidfds, p)
		delete(w.tokens, x.token)
	}
}

func (w *watcher) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.evfd, one[:])
}

func (w *watcher) loop() {
	defer close(w.done)
	var events [16]unix.EpollEvent
	for {
		w.mu.Lock()
		timeout := -1
		if len(w.probes) > 0 {
			timeout = int(w.probeEvery / time.Millisecond)
		}
		stopping := w.stopping
		w.mu.Unlock()
		if stopping {
			return
		}
		n, err := unix.EpollWait(w.epfd, events[:], timeout)
		if err != nil && err != unix.EINTR {
			return // EBADF or EINVAL: nothing sensible is left to do
		}
		w.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if token == 0 {
				var buf [8]byte
				unix.Read(w.evfd, buf[:])
				continue
			}
			if p := w.tokens[token]; p != nil {
				p.dead.Store(true)
				w.forgetLocked(p)
			}
		}
		for p := range w.probes {
			if dead, _ := lockFree(p.lock); dead {
				p.dead.Store(true)
				delete(w.probes, p)
			}
		}
		w.mu.Unlock()
	}
}

// stop ends the goroutine and closes every descriptor.
func (w *watcher) stop() {
	w.mu.Lock()
	w.stopping = true
	w.wake()
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	for p := range w.pidfds {
		w.forgetLocked(p)
	}
	w.mu.Unlock()
	unix.Close(w.epfd)
	unix.Close(w.evfd)
}
