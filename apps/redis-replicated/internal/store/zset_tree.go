package store

import (
	"bytes"
	"math"
)

// ztree is the ordered half of a sorted set: a B+tree of entries ordered by
// (score, member bytes), Redis's order, in which every inner node knows how
// many entries each child subtree holds and the smallest of them. That makes
// insert, delete, rank, select-by-rank and the bounds of a score range
// O(log n); the leaves are linked both ways, so a range is walked in either
// direction from its first entry at O(1) a step.
//
// Nothing a client or a snapshot sees depends on the tree's shape (which
// depends on the order of past inserts and deletes, and differs after a
// restore): lookups are exact, and searches by a predicate that might not
// be monotone over the order (BYLEX on members of different scores) go by
// rank, in O(log² n) (see searchRank).
type ztree struct {
	root *znode
	n    int
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
	// few cache lines; a leaf's insert shifts at most 1 KiB of scores.
	// (ord holds a leaf's indexes in bytes: zLeafMax <= 256.)
	zLeafMax  = 128
	zInnerMax = 64
	zLeafMin  = zLeafMax / 4
	zInnerMin = zInnerMax / 4
)

// znode is a leaf (entries, neighbours) or an inner node (children).
//
// A leaf keeps its entries' scores in order, its members in no particular
// order and their order in ord (ord[i] is the index in members of the i-th
// entry). An insert shifts floats and bytes only: shifting strings would
// make the garbage collector's write barrier run on every pointer moved.
// The search reads the scores, which lie together, and a member only where
// scores are equal.
type znode struct {
	scores     []float64
	ord        []uint8
	members    []string
	kids       []zchild
	counts     []int // counts[i]: the entries under kids[i]
	prev, next *znode
	leaf       bool
}

// identity is the ord of a leaf whose members are in order.
var identity = func() (id [256]uint8) {
	for i := range id {
		id[i] = uint8(i)
	}
	return id
}()

// get is a leaf's i-th entry in order.
func (x *znode) get(i int) zentry { return zentry{member: x.members[x.ord[i]], score: x.scores[i]} }

// sorted returns a leaf's entries in order.
func (x *znode) sorted() []zentry {
	out := make([]zentry, len(x.ord))
	for i := range x.ord {
		out[i] = x.get(i)
	}
	return out
}

// setSorted makes a leaf hold ents, which are in order.
func (x *znode) setSorted(ents []zentry) {
	x.alloc(len(ents), max(len(ents), min(2*len(ents), zLeafMax)))
	for i, e := range ents {
		x.members[i], x.scores[i] = e.member, e.score
	}
	copy(x.ord, identity[:len(ents)])
}

// alloc gives a leaf new arrays of n entries and room for c.
func (x *znode) alloc(n, c int) {
	x.scores = make([]float64, n, c)
	x.ord = make([]uint8, n, c)
	x.members = make([]string, n, c)
}

// leafInsert inserts e as a leaf's i-th entry in order; the leaf is not
// full.
func (x *znode) leafInsert(i int, e zentry) {
	k := len(x.members)
	if k == cap(x.members) {
		scores, ord, members := x.scores, x.ord, x.members
		x.alloc(k, min(max(4, 2*k), zLeafMax))
		copy(x.scores, scores)
		copy(x.ord, ord)
		copy(x.members, members)
	}
	x.members = append(x.members, e.member)
	x.scores = append(x.scores, 0)
	copy(x.scores[i+1:], x.scores[i:])
	x.scores[i] = e.score
	x.ord = append(x.ord, 0)
	copy(x.ord[i+1:], x.ord[i:])
	x.ord[i] = uint8(k)
}

// leafDelete removes a leaf's i-th entry in order and returns it.
func (x *znode) leafDelete(i int) zentry {
	e := x.get(i)
	k := x.ord[i]
	copy(x.ord[i:], x.ord[i+1:])
	x.ord = x.ord[:len(x.ord)-1]
	copy(x.scores[i:], x.scores[i+1:])
	x.scores = x.scores[:len(x.scores)-1]
	last := len(x.members) - 1
	if int(k) != last {
		x.members[k] = x.members[last]
		x.ord[bytes.IndexByte(x.ord, uint8(last))] = k
	}
	x.members[last] = ""
	x.members = x.members[:last]
	return e
}

// zchild is an inner node's view of one child: the child and the smallest
// entry under it. How many entries that holds is in counts, apart, so
// that the sums of rank and select read a few cache lines.
type zchild struct {
	node *znode
	min  zentry
}

// newInner returns an inner node of n children, with room for zInnerMax.
func newInner(n int) *znode {
	return &znode{kids: make([]zchild, n, zInnerMax), counts: make([]int, n, zInnerMax)}
}

// insertKid inserts child c, holding n entries, as x's i-th.
func (x *znode) insertKid(i int, c zchild, n int) {
	x.kids = append(x.kids, zchild{})
	copy(x.kids[i+1:], x.kids[i:])
	x.kids[i] = c
	x.counts = append(x.counts, 0)
	copy(x.counts[i+1:], x.counts[i:])
	x.counts[i] = n
}

// removeKid removes x's i-th child.
func (x *znode) removeKid(i int) {
	copy(x.kids[i:], x.kids[i+1:])
	x.kids[len(x.kids)-1] = zchild{}
	x.kids = x.kids[:len(x.kids)-1]
	copy(x.counts[i:], x.counts[i+1:])
	x.counts = x.counts[:len(x.counts)-1]
}

// truncKids keeps x's first n children.
func (x *znode) truncKids(n int) {
	clear(x.kids[n:])
	x.kids = x.kids[:n]
	x.counts = x.counts[:n]
}

func (x *znode) min() zentry {
	if x.leaf {
		return x.get(0)
	}
	return x.kids[0].min
}

// size is the number of entries (leaf) or children (inner node).
func (x *znode) size() int {
	if x.leaf {
		return len(x.scores)
	}
	return len(x.kids)
}

// count is the number of entries under x.
func (x *znode) count() int {
	if x.leaf {
		return len(x.scores)
	}
	n := 0
	for _, c := range x.counts {
		n += c
	}
	return n
}

// leafPos is the position in order of a leaf's first entry not below
// (score, member): where it is or would go.
func (x *znode) leafPos(score float64, member string) int {
	i := scoresBelow(x.scores, score)
	if i == len(x.scores) || x.scores[i] != score {
		return i
	}
	// Equal scores from i on: their members decide.
	lo, hi := i, len(x.scores)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.scores[m] == score && x.members[x.ord[m]] < member {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// scoresBelow is the number of leading elements of scores (in order) below
// score. The search has no branch on the data, which random scores make
// unpredictable, but a conditional move.
func scoresBelow(scores []float64, score float64) int {
	base, n := 0, len(scores)
	if n == 0 {
		return 0
	}
	for n > 1 {
		half := n >> 1
		if scores[base+half-1] < score {
			base += half
		}
		n -= half
	}
	if scores[base] < score {
		base++
	}
	return base
}

// childFor is the index of the child of inner node x whose range holds
// (score, member): the last whose smallest entry is not above it, or 0.
func (x *znode) childFor(score float64, member string) int {
	lo, hi := 1, len(x.kids)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s := x.kids[m].min.score; s < score || s == score && x.kids[m].min.member <= member {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// insert adds e, which must not be in the tree.
func (t *ztree) insert(e zentry) {
	t.n++
	if t.root == nil {
		t.root = &znode{leaf: true}
		t.root.alloc(1, 2)
		t.root.members[0], t.root.scores[0] = e.member, e.score
		return
	}
	right, rn := t.root.insert(e)
	if right != nil {
		left := t.root
		t.root = newInner(2)
		t.root.kids[0] = zchild{node: left, min: left.min()}
		t.root.kids[1] = zchild{node: right, min: right.min()}
		t.root.counts[0], t.root.counts[1] = t.n-rn, rn
	}
}

// insert adds e under x. When x had to split it returns its new right
// sibling and the number of entries that holds.
func (x *znode) insert(e zentry) (*znode, int) {
	if x.leaf {
		i := x.leafPos(e.score, e.member)
		if len(x.scores) < zLeafMax {
			x.leafInsert(i, e)
			return nil, 0
		}
		// Split: the upper half moves to a new right sibling, the lower
		// half's members are put in order in place.
		var all [zLeafMax]zentry
		for j := range x.ord {
			all[j] = x.get(j)
		}
		h := zLeafMax / 2
		right := &znode{leaf: true}
		right.setSorted(all[h:])
		for j := range h {
			x.members[j] = all[j].member
		}
		clear(x.members[h:])
		x.members = x.members[:h]
		x.scores = x.scores[:h]
		x.ord = x.ord[:h]
		copy(x.ord, identity[:h])
		right.prev, right.next = x, x.next
		if x.next != nil {
			x.next.prev = right
		}
		x.next = right
		if i <= h {
			x.leafInsert(i, e)
		} else {
			right.leafInsert(i-h, e)
		}
		return right, len(right.scores)
	}
	i := x.childFor(e.score, e.member)
	c := &x.kids[i]
	right, rn := c.node.insert(e)
	x.counts[i]++
	if zless(e, c.min.score, c.min.member) {
		c.min = e
	}
	if right == nil {
		return nil, 0
	}
	x.counts[i] -= rn
	nc := zchild{node: right, min: right.min()}
	if len(x.kids) < zInnerMax {
		x.insertKid(i+1, nc, rn)
		return nil, 0
	}
	h := zInnerMax / 2
	sib := newInner(zInnerMax - h)
	copy(sib.kids, x.kids[h:])
	copy(sib.counts, x.counts[h:])
	x.truncKids(h)
	if i+1 <= h {
		x.insertKid(i+1, nc, rn)
	} else {
		sib.insertKid(i+1-h, nc, rn)
	}
	return sib, sib.count()
}

// delete removes the entry (score, member) and returns it as the tree held
// it; ok is false when there is none.
func (t *ztree) delete(score float64, member string) (e zentry, ok bool) {
	if t.root == nil {
		return zentry{}, false
	}
	e, ok = t.root.delete(score, member)
	if !ok {
		return zentry{}, false
	}
	t.n--
	for !t.root.leaf && len(t.root.kids) == 1 {
		t.root = t.root.kids[0].node
	}
	if t.root.leaf && len(t.root.scores) == 0 {
		t.root = nil
	}
	return e, true
}

func (x *znode) delete(score float64, member string) (zentry, bool) {
	if x.leaf {
		i := x.leafPos(score, member)
		if i == len(x.ord) || x.get(i).score != score || x.get(i).member != member {
			return zentry{}, false
		}
		return x.leafDelete(i), true
	}
	i := x.childFor(score, member)
	c := &x.kids[i]
	e, ok := c.node.delete(score, member)
	if !ok {
		return zentry{}, false
	}
	x.counts[i]--
	if x.counts[i] > 0 {
		c.min = c.node.min()
	}
	x.rebalance(i)
	return e, true
}

// rebalance restores the fill of child i of x after a delete: an underfull
// child is merged with a neighbour, or takes entries from it.
func (x *znode) rebalance(i int) {
	c := x.kids[i].node
	lim := zInnerMin
	if c.leaf {
		lim = zLeafMin
	}
	if c.size() >= lim || len(x.kids) < 2 {
		return
	}
	l := i
	if i == len(x.kids)-1 {
		l = i - 1
	}
	r := l + 1
	a, b := x.kids[l].node, x.kids[r].node
	if a.leaf {
		total := len(a.scores) + len(b.scores)
		all := append(a.sorted(), b.sorted()...)
		if total <= zLeafMax {
			a.setSorted(all)
			a.next = b.next
			if b.next != nil {
				b.next.prev = a
			}
			x.counts[l] += x.counts[r]
			x.kids[l].min = a.min()
			x.removeKid(r)
			return
		}
		a.setSorted(all[:total/2])
		b.setSorted(all[total/2:])
		x.counts[l], x.counts[r] = len(a.scores), len(b.scores)
		x.kids[l].min, x.kids[r].min = a.min(), b.min()
		return
	}
	switch total := len(a.kids) + len(b.kids); {
	case total <= zInnerMax:
		a.kids = append(a.kids, b.kids...)
		a.counts = append(a.counts, b.counts...)
		x.counts[l] += x.counts[r]
		x.kids[l].min = a.min()
		x.removeKid(r)
		return
	case len(a.kids) < total/2:
		k := total/2 - len(a.kids)
		a.kids = append(a.kids, b.kids[:k]...)
		a.counts = append(a.counts, b.counts[:k]...)
		copy(b.kids, b.kids[k:])
		copy(b.counts, b.counts[k:])
		b.truncKids(len(b.kids) - k)
	default:
		k := len(a.kids) - total/2
		b.kids = b.kids[:len(b.kids)+k]
		copy(b.kids[k:], b.kids)
		copy(b.kids, a.kids[len(a.kids)-k:])
		b.counts = b.counts[:len(b.counts)+k]
		copy(b.counts[k:], b.counts)
		copy(b.counts, a.counts[len(a.counts)-k:])
		a.truncKids(len(a.kids) - k)
	}
	an := a.count()
	x.counts[r] = x.counts[l] + x.counts[r] - an
	x.counts[l] = an
	x.kids[l].min, x.kids[r].min = a.min(), b.min()
}

// rank is the 0-based position of (score, member), or -1.
func (t *ztree) rank(score float64, member string) int {
	x := t.root
	if x == nil {
		return -1
	}
	r := 0
	for !x.leaf {
		i := x.childFor(score, member)
		for _, c := range x.counts[:i] {
			r += c
		}
		x = x.kids[i].node
	}
	i := x.leafPos(score, member)
	if i == len(x.ord) || x.get(i).score != score || x.get(i).member != member {
		return -1
	}
	return r + i
}

// zcursor points at one entry of a tree; leaf is nil past either end.
type zcursor struct {
	leaf *znode
	i    int
}

func (c *zcursor) entry() zentry { return c.leaf.get(c.i) }

func (c *zcursor) next() {
	c.i++
	if c.i == len(c.leaf.scores) {
		c.leaf, c.i = c.leaf.next, 0
	}
}

func (c *zcursor) prev() {
	c.i--
	if c.i < 0 {
		c.leaf = c.leaf.prev
		if c.leaf != nil {
			c.i = len(c.leaf.scores) - 1
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
		x = x.kids[i].node
	}
	return zcursor{leaf: x, i: r}
}

// countBefore is the number of leading entries for which in is false; in
// must be monotone over the order (false, then true).
func (t *ztree) countBefore(in func(zentry) bool) int {
	x := t.root
	if x == nil {
		return 0
	}
	r := 0
	for !x.leaf {
		lo, hi := 0, len(x.kids)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if in(x.kids[m].min) {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if lo == 0 {
			return r
		}
		for _, c := range x.counts[:lo-1] {
			r += c
		}
		x = x.kids[lo-1].node
	}
	lo, hi := 0, len(x.ord)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if in(x.get(m)) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return r + lo
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
	before := func(s float64) bool { return s < x || orEqual && s == x }
	n := t.root
	switch {
	case n == nil:
		return 0, zcursor{}
	case x == math.Inf(1) && orEqual:
		return t.n, zcursor{} // the common bound "+inf": no search
	}
	r := 0
	for !n.leaf {
		lo, hi := 1, len(n.kids)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if before(n.kids[m].min.score) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		for _, c := range n.counts[:lo-1] {
			r += c
		}
		n = n.kids[lo-1].node
	}
	i := scoresBelow(n.scores, x)
	for orEqual && i < len(n.scores) && n.scores[i] == x {
		i++
	}
	c := zcursor{leaf: n, i: i}
	if i == len(n.scores) {
		c = zcursor{leaf: n.next}
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

// buildZTree returns a tree of ents, which must be sorted and distinct.
func buildZTree(ents []zentry) ztree {
	n := len(ents)
	if n == 0 {
		return ztree{}
	}
	k := (n + zLeafMax*3/4 - 1) / (zLeafMax * 3 / 4)
	level, counts := make([]zchild, k), make([]int, k)
	var prev *znode
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		leaf := &znode{leaf: true}
		leaf.setSorted(ents[lo:hi])
		leaf.prev = prev
		if prev != nil {
			prev.next = leaf
		}
		prev = leaf
		level[i], counts[i] = zchild{node: leaf, min: leaf.get(0)}, hi-lo
	}
	for len(level) > 1 {
		m := len(level)
		k := (m + zInnerMax*3/4 - 1) / (zInnerMax * 3 / 4)
		up, upCounts := make([]zchild, k), make([]int, k)
		for i := range k {
			lo, hi := i*m/k, (i+1)*m/k
			x := newInner(hi - lo)
			copy(x.kids, level[lo:hi])
			copy(x.counts, counts[lo:hi])
			up[i], upCounts[i] = zchild{node: x, min: x.kids[0].min}, x.count()
		}
		level, counts = up, upCounts
	}
	return ztree{root: level[0].node, n: n}
}
