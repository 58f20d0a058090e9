//go:build linux

package shm

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/verbs"
)

// providerName is the name the provider registers under.
const providerName = "shm"

func init() { verbs.Register(providerName, open) }

const (
	// maxNameLen keeps the directory name "gomu-"+name within NAME_MAX.
	maxNameLen = 200
	// qpSlots is the number of QPs a device can have open at once.
	qpSlots = 4096
	// headerSize is the header page of QP table and MR files.
	headerSize   = 4096
	qpTableMagic = 0x676f_6d75_5154_0001 // "gomuQT", layout version 1
)

// qpTableHeader is the first page of a node's QP table file. It is written
// once at Open, before any endpoint naming the node can exist, so peers read
// it with plain loads.
type qpTableHeader struct {
	magic uint64
	node  uint64
	pid   uint64
	slots uint64
}

type device struct {
	name   string
	dir    string
	fabric uint64 // hash of dir, carried in endpoints
	opts   verbs.Options
	node   uint64
	pid    int

	lockFD  int
	qpPath  string
	qpTable []byte // our QP table mapping
	watch   *watcher

	mu        sync.Mutex
	closed    bool
	pds       map[*pd]struct{}
	cqs       map[*cq]struct{}
	keys      map[uint32]struct{} // lkeys and rkeys in use
	freeSlots []uint32
	nextSlot  uint32
	nextPD    uint32
	peers     map[uint64]*peer
}

// open opens a device on the fabric called name, creating the fabric if it
// is the first.
func open(name string, opts verbs.Options) (verbs.Device, error) {
	opts = opts.WithDefaults()
	if name == "" {
		name = "default"
	}
	if len(name) > maxNameLen || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("shm: device name %q: must be at most %d bytes without '/': %w",
			name, maxNameLen, verbs.ErrInvalidArgument)
	}
	base, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("shm: base directory %q: %w", opts.Dir, err)
	}
	dir := filepath.Join(base, "gomu-"+name)
	h := fnv.New64a()
	h.Write([]byte(dir))
	d := &device{
		name:   name,
		dir:    dir,
		fabric: h.Sum64(),
		opts:   opts,
		pid:    os.Getpid(),
		lockFD: -1,
		pds:    map[*pd]struct{}{},
		cqs:    map[*cq]struct{}{},
		keys:   map[uint32]struct{}{},
		peers:  map[uint64]*peer{},
	}
	for d.node == 0 {
		d.node = rand.Uint64()
	}
	if err := d.init(); err != nil {
		d.cleanup()
		return nil, err
	}
	return d, nil
}

func (d *device) init() error {
	fd, err := createLock(d.dir, d.node)
	if err != nil {
		return err
	}
	d.lockFD = fd
	reclaim(d.dir, d.node)
	sweep(filepath.Dir(d.dir), d.dir)

	d.qpPath = nodeFile(d.dir, d.node, ".qp")
	mem, err := createMapped(d.qpPath, headerSize+qpSlots*slotSize)
	if err != nil {
		return err
	}
	d.qpTable = mem
	hdr := (*qpTableHeader)(unsafe.Pointer(&mem[0]))
	hdr.node = d.node
	hdr.pid = uint64(d.pid)
	hdr.slots = qpSlots
	hdr.magic = qpTableMagic

	w, err := newWatcher(d.opts.RetryTimeout / 4)
	if err != nil {
		return fmt.Errorf("shm: device %s: %w", d.dir, err)
	}
	d.watch = w
	return nil
}

// cleanup releases what init and the device acquired; files go before the
// lock, which tells reclaimers that the node is gone.
func (d *device) cleanup() {
	if d.watch != nil {
		d.watch.stop()
	}
	d.mu.Lock()
	peers := d.peers
	d.peers = map[uint64]*peer{}
	d.mu.Unlock()
	for _, p := range peers {
		p.unmap()
	}
	if d.qpTable != nil {
		unix.Munmap(d.qpTable)
		d.qpTable = nil
	}
	if d.qpPath != "" {
		os.Remove(d.qpPath)
	}
	if d.lockFD >= 0 {
		os.Remove(nodeFile(d.dir, d.node, ".lock"))
		unix.Close(d.lockFD)
		d.lockFD = -1
	}
	// Our own leftovers are gone; take dead nodes' with us so that the
	// directory disappears once the last live node leaves.
	reclaim(d.dir, d.node)
	os.Remove(d.dir)
}

func (d *device) Provider() string { return providerName }
func (d *device) Name() string     { return d.name }

func (d *device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("shm: close device %s: %w", d.name, verbs.ErrClosed)
	}
	d.closed = true
	pds := slices.Collect(maps.Keys(d.pds))
	cqs := slices.Collect(maps.Keys(d.cqs))
	d.mu.Unlock()

	for _, p := range pds {
		p.close(false)
	}
	for _, c := range cqs {
		c.Close()
	}
	d.cleanup()
	return nil
}

func (d *device) AllocPD() (verbs.PD, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("shm: alloc pd: device %s: %w", d.name, verbs.ErrClosed)
	}
	d.nextPD++
	p := &pd{dev: d, id: d.nextPD, mrs: map[*mr]struct{}{}, qps: map[*qp]struct{}{}}
	d.pds[p] = struct{}{}
	return p, nil
}

func (d *device) CreateCQ(depth int) (verbs.CQ, error) {
	if depth <= 0 || depth > maxCQDepth {
		return nil, fmt.Errorf("shm: create cq of depth %d (want 1..%d): %w", depth, maxCQDepth, verbs.ErrInvalidArgument)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("shm: create cq: device %s: %w", d.name, verbs.ErrClosed)
	}
	c := newCQ(d, depth)
	d.cqs[c] = struct{}{}
	return c, nil
}

// newKey returns a fresh nonzero key, unique among the device's keys and
// random so that a peer cannot guess one it was not given. d.mu is held.
func (d *device) newKey() uint32 {
	for {
		k := rand.Uint32()
		if _, dup := d.keys[k]; k != 0 && !dup {
			d.keys[k] = struct{}{}
			return k
		}
	}
}

// slotAt returns control block i of a QP table mapping.
func slotAt(table []byte, i uint32) *slot {
	return (*slot)(unsafe.Pointer(&table[headerSize+uintptr(i)*slotSize]))
}

// allocSlot reserves a QP table slot; d.mu is held.
func (d *device) allocSlot() (uint32, bool) {
	if n := len(d.freeSlots); n > 0 {
		i := d.freeSlots[n-1]
		d.freeSlots = d.freeSlots[:n-1]
		return i, true
	}
	if d.nextSlot == qpSlots {
		return 0, false
	}
	d.nextSlot++
	return d.nextSlot - 1, true
}

// errIs reports whether err is errno e, for errors from x/sys/unix.
func errIs(err error, e unix.Errno) bool { return errors.Is(err, e) }
