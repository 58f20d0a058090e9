package memcache

import (
	"sort"
	"syscall"
	"unsafe"
)

// arena holds item values outside Go's heap, in slab classes carved from
// 2 MiB pages of memory mapped with transparent huge pages asked for, as
// memcached's slab allocator keeps them. The heap would hand a growing
// store fresh 4 KiB pages one at a time, and a first touch of a page
// costs microseconds on a virtual machine: a third of a set's time here.
// A huge page costs one fault per 2 MiB.
//
// Chunks are reused within their class (a freed chunk goes to its class's
// free list); the arena grows up to a cap and then leaves values to the
// heap, so fragmentation between classes cannot grow it without bound.
// Values larger than the largest class live on the heap too, and free
// ignores heap memory. The arena is the store's, used under its lock;
// nothing outside the lock may keep a value (readers copy it out). A store
// uses one only when asked (Store.UseHugePages): the many short-lived
// stores of an embedded server's tests are better off on the heap.
type arena struct {
	sizes   []int         // chunk size of each class, ascending
	free    [][][]byte    // per class, freed chunks
	page    [][]byte      // per class, the rest of its current page
	regions []arenaRegion // mapped memory
	next    uintptr       // next free page offset in the last region
	pages   int           // pages handed to classes
	maxPage int           // cap on pages
}

type arenaRegion struct {
	mem  []byte
	base uintptr
}

const (
	arenaPage      = 2 << 20  // a huge page
	arenaRegionMin = 4 << 20  // the first mapping; each next one doubles
	arenaRegionMax = 64 << 20 // up to this
	arenaMinChunk  = 64
	arenaMaxChunk  = arenaPage / 2
	arenaGrowthPct = 125
)

// newArena returns an arena for a store of maxBytes: it may grow to half
// as much again, plus a page per class, before values go to the heap.
func newArena(maxBytes int64) *arena {
	a := &arena{}
	for s := arenaMinChunk; s < arenaMaxChunk; s = (s*arenaGrowthPct/100 + 7) &^ 7 {
		a.sizes = append(a.sizes, s)
	}
	a.sizes = append(a.sizes, arenaMaxChunk)
	a.free = make([][][]byte, len(a.sizes))
	a.page = make([][]byte, len(a.sizes))
	a.maxPage = int(maxBytes*3/2/arenaPage) + len(a.sizes)
	return a
}

// class returns the class whose chunks hold n bytes, or -1.
func (a *arena) class(n int) int {
	c := sort.SearchInts(a.sizes, n)
	if c == len(a.sizes) {
		return -1
	}
	return c
}

// alloc returns n bytes (len n, cap the chunk's size), from the arena when
// it can, else from the heap.
func (a *arena) alloc(n int) []byte {
	c := a.class(n)
	if c < 0 {
		return make([]byte, n)
	}
	if fl := a.free[c]; len(fl) > 0 {
		b := fl[len(fl)-1]
		fl[len(fl)-1] = nil
		a.free[c] = fl[:len(fl)-1]
		return b[:n]
	}
	size := a.sizes[c]
	if len(a.page[c]) < size {
		p := a.newPage()
		if p == nil {
			return make([]byte, n)
		}
		a.page[c] = p
	}
	b := a.page[c][:n:size]
	a.page[c] = a.page[c][size:]
	return b
}

// newPage carves a page from the mapped regions, mapping more if needed;
// nil past the cap or when the system refuses.
func (a *arena) newPage() []byte {
	if a.pages >= a.maxPage {
		return nil
	}
	if len(a.regions) == 0 || int(a.next) == len(a.regions[len(a.regions)-1].mem) {
		size := min(arenaRegionMax, arenaRegionMin<<len(a.regions))
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return nil
		}
		_ = syscall.Madvise(mem, 14) // MADV_HUGEPAGE; a hint, refused harmlessly
		a.regions = append(a.regions, arenaRegion{mem: mem, base: uintptr(unsafe.Pointer(&mem[0]))})
		a.next = 0
	}
	r := a.regions[len(a.regions)-1]
	p := r.mem[a.next : a.next+arenaPage : a.next+arenaPage]
	a.next += arenaPage
	a.pages++
	return p
}

// owns reports whether b is arena memory.
func (a *arena) owns(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for _, r := range a.regions {
		if p >= r.base && p < r.base+uintptr(len(r.mem)) {
			return true
		}
	}
	return false
}

// release gives b's chunk back to its class; heap memory is left to the
// garbage collector.
func (a *arena) release(b []byte) {
	if !a.owns(b) {
		return
	}
	c := a.class(cap(b))
	a.free[c] = append(a.free[c], b[:0])
}

// reset makes every page free again, for a store emptied whole (flush_all,
// Restore): no value of before may be used after it.
func (a *arena) reset() {
	for c := range a.free {
		clear(a.free[c])
		a.free[c] = a.free[c][:0]
		a.page[c] = nil
	}
	a.unmap()
}

// unmap gives every region back to the system; values of before must not
// be used after it.
func (a *arena) unmap() {
	for _, r := range a.regions {
		_ = syscall.Munmap(r.mem)
	}
	a.regions, a.next, a.pages = nil, 0, 0
}
