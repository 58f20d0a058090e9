package store

import (
	"math"
	"math/bits"
)

// ztree is the ordered half of a sorted set: a B+tree of entries ordered by
// (score, member bytes), Redis's order, in which every inner node knows how
// many entries each child subtree holds and the smallest of them. That makes
// insert, delete, rank, select-by-rank and the bounds of a score range
// O(log n); the leaves are linked both ways, so a range is walked in either
// direction from its first entry at O(1) a step.
//
// The tree holds scores and the dict's entry indexes, no member: a member
// is read from the dict (d) where scores are equal, and nothing the tree
// holds is a pointer but its links.
//
// Nothing a client or a snapshot sees depends on the tree's shape (which
// depends on the order of past inserts and deletes, and differs after a
// restore): lookups are exact, and searches by a predicate that might not
// be monotone over the order (BYLEX on members of different scores) go by
// rank, in O(log² n) (see searchRank).
type ztree struct {
	root *znode
	n    int
	d    *zdict
}

// zentry is one member of a sorted set and its score.
type zentry struct {
	member string
	score  float64
}

// zless orders entries as Redis does: by score, then by member bytes.
func zless(a zentry, score float64, member string) bool {
	return a.score < score || (a.score == score && a.member < member)
}

const (
	// zLeafMax and zInnerMax bound a node's entries and children; a node
	// other than the root holds at least a quarter of that. Wide nodes
	// keep a 10 000-member set two levels deep, so rank and select touch
	// few cache lines; a leaf's insert shifts at most 1.5 KiB.
	zLeafMax  = 128
	zInnerMax = 64
	zLeafMin  = zLeafMax / 4
	zInnerMin = zInnerMax / 4
)

// znode is a leaf or an inner node. Both keep, in order, scores and idx:
// a leaf its entries (scores and dict entry indexes), an inner node the
// smallest entry under each child. An inner node's kids and counts (the
// entries under each child, apart so that the sums of rank and select read
// few cache lines) go with them; a leaf's neighbours are prev and next.
type znode struct {
	keys       []uint64
	idx        []uint32
	kids       []*znode
	counts     []int
	prev, next *znode
	leaf       bool
}

// newLeaf returns a leaf of n entries with room for c.
func newLeaf(n, c int) *znode {
	return &znode{leaf: true, keys: make([]uint64, n, c), idx: make([]uint32, n, c)}
}

// newInner returns an inner node of n children, with room for zInnerMax.
func newInner(n int) *znode {
	return &znode{keys: make([]uint64, n, zInnerMax), idx: make([]uint32, n, zInnerMax),
		kids: make([]*znode, n, zInnerMax), counts: make([]int, n, zInnerMax)}
}

// entry is entry i of leaf x.
func (t *ztree) entry(x *znode, i int) zentry {
	return zentry{member: t.d.member(x.idx[i]), score: zscore(x.keys[i])}
}

// insertAt inserts (key, idx) as x's i-th; x has room or grows.
func (x *znode) insertAt(i int, key uint64, idx uint32) {
	if len(x.keys) == cap(x.keys) {
		c := min(max(4, 2*len(x.keys)), zLeafMax)
		x.keys = append(make([]uint64, 0, c), x.keys...)
		x.idx = append(make([]uint32, 0, c), x.idx...)
	}
	x.keys = append(x.keys, 0)
	copy(x.keys[i+1:], x.keys[i:])
	x.keys[i] = key
	x.idx = append(x.idx, 0)
	copy(x.idx[i+1:], x.idx[i:])
	x.idx[i] = idx
}

// deleteAt removes x's i-th entry (or child).
func (x *znode) deleteAt(i int) {
	copy(x.keys[i:], x.keys[i+1:])
	x.keys = x.keys[:len(x.keys)-1]
	copy(x.idx[i:], x.idx[i+1:])
	x.idx = x.idx[:len(x.idx)-1]
	if !x.leaf {
		copy(x.kids[i:], x.kids[i+1:])
		x.kids[len(x.kids)-1] = nil
		x.kids = x.kids[:len(x.kids)-1]
		copy(x.counts[i:], x.counts[i+1:])
		x.counts = x.counts[:len(x.counts)-1]
	}
}

// insertKid inserts child c, holding n entries, as x's i-th.
func (x *znode) insertKid(i int, c *znode, n int) {
	x.insertAt(i, c.keys[0], c.idx[0])
	x.kids = append(x.kids, nil)
	copy(x.kids[i+1:], x.kids[i:])
	x.kids[i] = c
	x.counts = append(x.counts, 0)
	copy(x.counts[i+1:], x.counts[i:])
	x.counts[i] = n
}

// appendFrom appends y's entries (or children) [lo, hi) to x.
func (x *znode) appendFrom(y *znode, lo, hi int) {
	x.keys = append(x.keys, y.keys[lo:hi]...)
	x.idx = append(x.idx, y.idx[lo:hi]...)
	if !x.leaf {
		x.kids = append(x.kids, y.kids[lo:hi]...)
		x.counts = append(x.counts, y.counts[lo:hi]...)
	}
}

// truncate keeps x's first n entries (or children).
func (x *znode) truncate(n int) {
	x.keys = x.keys[:n]
	x.idx = x.idx[:n]
	if !x.leaf {
		clear(x.kids[n:])
		x.kids = x.kids[:n]
		x.counts = x.counts[:n]
	}
}

// dropFront removes x's first k entries (or children).
func (x *znode) dropFront(k int) {
	n := len(x.keys) - k
	copy(x.keys, x.keys[k:])
	copy(x.idx, x.idx[k:])
	if !x.leaf {
		copy(x.kids, x.kids[k:])
		copy(x.counts, x.counts[k:])
	}
	x.truncate(n)
}

// prependFrom inserts y's entries (or children) [lo, hi) in front of x's.
func (x *znode) prependFrom(y *znode, lo, hi int) {
	k := hi - lo
	n := len(x.keys)
	x.keys = append(x.keys, y.keys[lo:hi]...)
	copy(x.keys[k:], x.keys[:n])
	copy(x.keys, y.keys[lo:hi])
	x.idx = append(x.idx, y.idx[lo:hi]...)
	copy(x.idx[k:], x.idx[:n])
	copy(x.idx, y.idx[lo:hi])
	if !x.leaf {
		x.kids = append(x.kids, y.kids[lo:hi]...)
		copy(x.kids[k:], x.kids[:n])
		copy(x.kids, y.kids[lo:hi])
		x.counts = append(x.counts, y.counts[lo:hi]...)
		copy(x.counts[k:], x.counts[:n])
		copy(x.counts, y.counts[lo:hi])
	}
}

// count is the number of entries under x.
func (x *znode) count() int {
	if x.leaf {
		return len(x.keys)
	}
	n := 0
	for _, c := range x.counts {
		n += c
	}
	return n
}

// ztarget is what a search looks for: an entry's key and member, and its
// dict entry index when the search is for an entry the tree holds (else
// zNoIdx). The index finds the entry without reading a member where no
// other entry has its score.
type ztarget struct {
	key    uint64
	member string
	idx    uint32
}

const zNoIdx = ^uint32(0)

// below is the number of x's leading entries (a leaf's, or an inner
// node's children's smallest) ordered before tg, or, orEqual, not after
// it.
func (t *ztree) below(x *znode, tg ztarget, orEqual bool) int {
	i := keysBelow(x.keys, tg.key)
	if i == len(x.keys) || x.keys[i] != tg.key {
		return i
	}
	if x.idx[i] == tg.idx { // the entry itself, the first of its score
		if orEqual {
			return i + 1
		}
		return i
	}
	// Equal scores from i on: their members decide.
	lo, hi := i, len(x.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.keys[m] != tg.key {
			hi = m
			continue
		}
		// (strings.Compare would make member escape.)
		if mm := t.d.member(x.idx[m]); mm < tg.member || orEqual && mm == tg.member {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// holds reports whether leaf x's i-th entry is tg's.
func (t *ztree) holds(x *znode, i int, tg ztarget) bool {
	if i == len(x.keys) || x.keys[i] != tg.key {
		return false
	}
	if tg.idx != zNoIdx {
		return x.idx[i] == tg.idx
	}
	return t.d.member(x.idx[i]) == tg.member
}

// keysBelow is the number of leading elements of keys (in order) below
// key. It counts rather than bisects: the blocks of 32 whose last element
// is below (all of theirs are), then in the block after those, the blocks
// of 8, then the elements. The loads of a stage do not wait on one
// another, so a node's cache lines are fetched together rather than one
// bisection step after another; and the counting (of a subtraction's
// borrows) has no branch on the data, which random scores make
// unpredictable.
func keysBelow(keys []uint64, key uint64) int {
	var n uint64
	for j := 31; j < len(keys); j += 32 {
		_, below := bits.Sub64(keys[j], key, 0)
		n += below
	}
	i := int(n) * 32
	n = 0
	for j := i + 7; j < min(i+32, len(keys)); j += 8 {
		_, below := bits.Sub64(keys[j], key, 0)
		n += below
	}
	i += int(n) * 8
	n = 0
	for _, k := range keys[i:min(i+8, len(keys))] {
		_, below := bits.Sub64(k, key, 0)
		n += below
	}
	return i + int(n)
}

// zkey maps a score (not NaN) to a key of the same order, the tree's: its
// bits, the sign flipped and a negative's others too, so that keys
// compare as integers. A score of -0 is taken as 0.
func zkey(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	u := math.Float64bits(f)
	return u ^ (uint64(int64(u)>>63) | 1<<63)
}

// zscore is the score of key k.
func zscore(k uint64) float64 {
	return math.Float64frombits(k ^ (uint64(int64(^k)>>63) | 1<<63))
}

// childFor is the index of the child of inner node x whose range holds
// (score, member): the last whose smallest entry is not above it, or 0.
func (t *ztree) childFor(x *znode, tg ztarget) int {
	return max(t.below(x, tg, true)-1, 0)
}

// insert adds entry idx of the dict, which must not be in the tree.
func (t *ztree) insert(idx uint32) {
	t.n++
	key := zkey(t.d.ent(idx).score)
	if t.root == nil {
		t.root = newLeaf(1, 2)
		t.root.keys[0], t.root.idx[0] = key, idx
		return
	}
	right, rn := t.insertUnder(t.root, ztarget{key: key, member: t.d.member(idx), idx: idx})
	if right != nil {
		left := t.root
		t.root = newInner(0)
		t.root.insertKid(0, left, t.n-rn)
		t.root.insertKid(1, right, rn)
	}
}

// insertUnder adds (key, member) of entry idx under x. When x had to
// split it returns its new right sibling and the number of entries that
// holds.
func (t *ztree) insertUnder(x *znode, tg ztarget) (*znode, int) {
	if x.leaf {
		i := t.below(x, tg, false)
		if len(x.keys) < zLeafMax {
			x.insertAt(i, tg.key, tg.idx)
			return nil, 0
		}
		// Split: the upper half moves to a new right sibling.
		h := zLeafMax / 2
		right := newLeaf(0, zLeafMax)
		right.appendFrom(x, h, len(x.keys))
		x.truncate(h)
		right.prev, right.next = x, x.next
		if x.next != nil {
			x.next.prev = right
		}
		x.next = right
		if i <= h {
			x.insertAt(i, tg.key, tg.idx)
		} else {
			right.insertAt(i-h, tg.key, tg.idx)
		}
		return right, len(right.keys)
	}
	i := t.childFor(x, tg)
	c := x.kids[i]
	right, rn := t.insertUnder(c, tg)
	x.counts[i]++
	x.keys[i], x.idx[i] = c.keys[0], c.idx[0]
	if right == nil {
		return nil, 0
	}
	x.counts[i] -= rn
	if len(x.kids) < zInnerMax {
		x.insertKid(i+1, right, rn)
		return nil, 0
	}
	h := zInnerMax / 2
	sib := newInner(0)
	sib.appendFrom(x, h, len(x.kids))
	x.truncate(h)
	if i+1 <= h {
		x.insertKid(i+1, right, rn)
	} else {
		sib.insertKid(i+1-h, right, rn)
	}
	return sib, sib.count()
}

// delete removes dict entry idx (its score and member unchanged since it
// was inserted); it reports whether the tree held it.
func (t *ztree) delete(idx uint32) bool {
	if t.root == nil {
		return false
	}
	tg := ztarget{key: zkey(t.d.ent(idx).score), member: t.d.member(idx), idx: idx}
	if !t.deleteUnder(t.root, tg) {
		return false
	}
	t.n--
	for !t.root.leaf && len(t.root.kids) == 1 {
		t.root = t.root.kids[0]
	}
	if t.root.leaf && len(t.root.keys) == 0 {
		t.root = nil
	}
	return true
}

func (t *ztree) deleteUnder(x *znode, tg ztarget) bool {
	if x.leaf {
		i := t.below(x, tg, false)
		if !t.holds(x, i, tg) {
			return false
		}
		x.deleteAt(i)
		return true
	}
	i := t.childFor(x, tg)
	c := x.kids[i]
	if !t.deleteUnder(c, tg) {
		return false
	}
	x.counts[i]--
	if x.counts[i] > 0 {
		x.keys[i], x.idx[i] = c.keys[0], c.idx[0]
	}
	x.rebalance(i)
	return true
}

// rebalance restores the fill of child i of x after a delete: an underfull
// child is merged with a neighbour, or takes entries from it.
func (x *znode) rebalance(i int) {
	c := x.kids[i]
	lim := zInnerMin
	if c.leaf {
		lim = zLeafMin
	}
	if len(c.keys) >= lim || len(x.kids) < 2 {
		return
	}
	l := i
	if i == len(x.kids)-1 {
		l = i - 1
	}
	r := l + 1
	a, b := x.kids[l], x.kids[r]
	limit := zInnerMax
	if a.leaf {
		limit = zLeafMax
	}
	total := len(a.keys) + len(b.keys)
	if total <= limit {
		a.appendFrom(b, 0, len(b.keys))
		if a.leaf {
			a.next = b.next
			if b.next != nil {
				b.next.prev = a
			}
		}
		x.counts[l] += x.counts[r]
		x.deleteAt(r)
		x.keys[l], x.idx[l] = a.keys[0], a.idx[0] // a may have been empty
		return
	}
	if len(a.keys) < total/2 {
		k := total/2 - len(a.keys)
		a.appendFrom(b, 0, k)
		b.dropFront(k)
	} else {
		k := len(a.keys) - total/2
		b.prependFrom(a, len(a.keys)-k, len(a.keys))
		a.truncate(len(a.keys) - k)
	}
	an := a.count()
	x.counts[r] = x.counts[l] + x.counts[r] - an
	x.counts[l] = an
	x.keys[l], x.idx[l] = a.keys[0], a.idx[0]
	x.keys[r], x.idx[r] = b.keys[0], b.idx[0]
}

// rank is the 0-based position of (score, member), or -1.
func (t *ztree) rank(score float64, member string) int {
	return t.rankOf(ztarget{key: zkey(score), member: member, idx: zNoIdx})
}

// rankOfIdx is the 0-based position of dict entry idx, which the tree holds.
func (t *ztree) rankOfIdx(idx uint32) int {
	return t.rankOf(ztarget{key: zkey(t.d.ent(idx).score), member: t.d.member(idx), idx: idx})
}

func (t *ztree) rankOf(tg ztarget) int {
	x := t.root
	if x == nil {
		return -1
	}
	r := 0
	for !x.leaf {
		i := t.childFor(x, tg)
		for _, c := range x.counts[:i] {
			r += c
		}
		x = x.kids[i]
	}
	i := t.below(x, tg, false)
	if !t.holds(x, i, tg) {
		return -1
	}
	return r + i
}

// zcursor points at one entry of a tree; leaf is nil past either end.
type zcursor struct {
	leaf *znode
	i    int
	d    *zdict
}

func (c *zcursor) entry() zentry {
	return zentry{member: c.d.member(c.leaf.idx[c.i]), score: zscore(c.leaf.keys[c.i])}
}

func (c *zcursor) next() {
	c.i++
	if c.i == len(c.leaf.keys) {
		c.leaf, c.i = c.leaf.next, 0
	}
}

func (c *zcursor) prev() {
	c.i--
	if c.i < 0 {
		c.leaf = c.leaf.prev
		if c.leaf != nil {
			c.i = len(c.leaf.keys) - 1
		}
	}
}

// at returns a cursor on the entry of rank r (0 <= r < t.n).
func (t *ztree) at(r int) zcursor {
	x := t.root
	for !x.leaf {
		i := 0
		for r >= x.counts[i] {
			r -= x.counts[i]
			i++
		}
		x = x.kids[i]
	}
	return zcursor{leaf: x, i: r, d: t.d}
}

// first is the leftmost leaf, or nil.
func (t *ztree) first() *znode {
	x := t.root
	for x != nil && !x.leaf {
		x = x.kids[0]
	}
	return x
}

// countBefore is the number of leading entries for which in is false; in
// must be monotone over the order (false, then true).
func (t *ztree) countBefore(in func(zentry) bool) int {
	x := t.root
	if x == nil {
		return 0
	}
	r := 0
	for {
		lo, hi := 0, len(x.keys)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if in(t.entry(x, m)) {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if x.leaf {
			return r + lo
		}
		if lo == 0 {
			return r
		}
		for _, c := range x.counts[:lo-1] {
			r += c
		}
		x = x.kids[lo-1]
	}
}

// scoreRank is the number of entries of score below x or, orEqual, not
// above x: countBefore for a score bound, without a call per comparison.
func (t *ztree) scoreRank(x float64, orEqual bool) int {
	r, _ := t.scoreSeek(x, orEqual)
	return r
}

// scoreSeek is scoreRank and a cursor on the entry of that rank (a nil
// leaf past the last), so that a range read needs no second descent.
func (t *ztree) scoreSeek(x float64, orEqual bool) (int, zcursor) {
	n := t.root
	switch {
	case n == nil:
		return 0, zcursor{d: t.d}
	case x == math.Inf(1) && orEqual:
		return t.n, zcursor{d: t.d} // the common bound "+inf": no search
	}
	k := zkey(x)
	if orEqual {
		k++ // not above x: below the next key (x is not +inf)
	}
	r := 0
	for !n.leaf {
		// The children whose smallest key is below the bound, but the
		// first: the last of them holds the bound's rank.
		c := keysBelow(n.keys[1:], k)
		for _, cnt := range n.counts[:c] {
			r += cnt
		}
		n = n.kids[c]
	}
	i := keysBelow(n.keys, k)
	c := zcursor{leaf: n, i: i, d: t.d}
	if i == len(n.keys) {
		c = zcursor{leaf: n.next, d: t.d}
	}
	return r + i, c
}

// searchRank is countBefore for a predicate that may not be monotone: when
// it is not, the answer is a binary search over ranks, which depends on
// the entries alone and not on the tree's shape.
func (t *ztree) searchRank(in func(zentry) bool) int {
	lo, hi := 0, t.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		c := t.at(m)
		if in(c.entry()) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// each yields the dict entry indexes of the tree in order.
func (t *ztree) each(yield func(uint32) bool) {
	for x := t.first(); x != nil; x = x.next {
		for _, i := range x.idx {
			if !yield(i) {
				return
			}
		}
	}
}

// renumber makes the tree follow a compaction of its dict (see
// zdict.compact).
func (t *ztree) renumber(renum []uint32) {
	var walk func(x *znode)
	walk = func(x *znode) {
		for i, k := range x.idx {
			x.idx[i] = renum[k]
		}
		for _, c := range x.kids {
			walk(c)
		}
	}
	if t.root != nil {
		walk(t.root)
	}
}

// buildZTree returns a tree over d's entries 0 to n-1, which must be in
// order.
func buildZTree(d *zdict, n int) ztree {
	if n == 0 {
		return ztree{d: d}
	}
	k := (n + zLeafMax*3/4 - 1) / (zLeafMax * 3 / 4)
	level := make([]*znode, k)
	counts := make([]int, k)
	var prev *znode
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		leaf := newLeaf(hi-lo, max(hi-lo, min(2*(hi-lo), zLeafMax)))
		for j := lo; j < hi; j++ {
			leaf.keys[j-lo], leaf.idx[j-lo] = zkey(d.ent(uint32(j)).score), uint32(j)
		}
		leaf.prev = prev
		if prev != nil {
			prev.next = leaf
		}
		prev = leaf
		level[i], counts[i] = leaf, hi-lo
	}
	for len(level) > 1 {
		m := len(level)
		k := (m + zInnerMax*3/4 - 1) / (zInnerMax * 3 / 4)
		up, upCounts := make([]*znode, k), make([]int, k)
		for i := range k {
			lo, hi := i*m/k, (i+1)*m/k
			x := newInner(0)
			for j := lo; j < hi; j++ {
				x.insertKid(j-lo, level[j], counts[j])
			}
			up[i], upCounts[i] = x, x.count()
		}
		level, counts = up, upCounts
	}
	return ztree{root: level[0], n: n, d: d}
}
