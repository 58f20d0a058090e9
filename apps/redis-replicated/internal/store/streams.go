package store

import (
	"bytes"
	"math"
	"sort"
	"strconv"
)

// Streams (Redis 7.0). A stream keeps its entries the way Redis lays them
// out: a sequence of nodes (Redis's listpacks, keyed in a radix tree by
// their first, "master", ID), each holding up to 100 entries, deleted ones
// included as tombstones. The layout is observable: approximate trimming
// (MAXLEN ~, MINID ~) removes whole nodes only, XINFO STREAM reports the
// radix tree's size, and a node is closed by the byte size of its listpack
// as well as its entry count, so the nodes record what Redis's listpacks
// would weigh (see lpIntBytes). Lookups are a binary search over nodes and
// then inside one node; appending is O(1) amortized; XDEL marks a tombstone
// and drops a node when its last live entry goes.

// streamID is an entry ID, ms-seq.
type streamID struct{ ms, seq uint64 }

var (
	streamMinID = streamID{}
	streamMaxID = streamID{math.MaxUint64, math.MaxUint64}
)

func (a streamID) cmp(b streamID) int {
	switch {
	case a.ms < b.ms:
		return -1
	case a.ms > b.ms:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

func (a streamID) less(b streamID) bool { return a.cmp(b) < 0 }
func (a streamID) isZero() bool         { return a.ms == 0 && a.seq == 0 }

// incr is the next ID; false when a is the maximum.
func (a streamID) incr() (streamID, bool) {
	switch {
	case a.seq < math.MaxUint64:
		return streamID{a.ms, a.seq + 1}, true
	case a.ms < math.MaxUint64:
		return streamID{a.ms + 1, 0}, true
	}
	return a, false
}

// decr is the previous ID; false when a is 0-0.
func (a streamID) decr() (streamID, bool) {
	switch {
	case a.seq > 0:
		return streamID{a.ms, a.seq - 1}, true
	case a.ms > 0:
		return streamID{a.ms - 1, math.MaxUint64}, true
	}
	return a, false
}

// appendText appends a as "ms-seq".
func (a streamID) appendText(dst []byte) []byte {
	dst = strconv.AppendUint(dst, a.ms, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, a.seq, 10)
}

func (a streamID) String() string { return string(a.appendText(nil)) }

// key is a as Redis's radix tree keys it: 128 bits, big endian.
func (a streamID) key() [16]byte {
	var k [16]byte
	for i := 0; i < 8; i++ {
		k[i] = byte(a.ms >> (56 - 8*i))
		k[8+i] = byte(a.seq >> (56 - 8*i))
	}
	return k
}

// streamEntry is one entry; fields alternate field, value.
type streamEntry struct {
	id      streamID
	fields  [][]byte
	deleted bool
}

// streamNode is one of Redis's listpacks: entries in ID order, the first
// one's fields as the master fields, live and deleted counts, and the
// listpack's byte size less its two counters (which change size as they
// grow, so they are weighed when asked).
type streamNode struct {
	master       streamID
	masterFields [][]byte
	entries      []streamEntry
	live, dead   int
	bytes        int
}

// lpBytes is the node's listpack size as Redis computes it.
func (n *streamNode) lpBytes() int {
	return n.bytes + lpIntBytes(int64(n.live)) + lpIntBytes(int64(n.dead))
}

// streamValue is a stream: its nodes, the counters Redis keeps, and the
// consumer groups by name.
type streamValue struct {
	nodes        []*streamNode
	length       int
	lastID       streamID
	maxDeletedID streamID
	entriesAdded uint64
	groups       []*streamGroup
}

func newStream() *streamValue { return &streamValue{} }

// lpIntBytes is the listpack size of an integer element (encoding plus
// its one-byte back length).
func lpIntBytes(v int64) int {
	switch {
	case v >= 0 && v <= 127:
		return 2
	case v >= -4096 && v <= 4095:
		return 3
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return 4
	case v >= -1<<23 && v < 1<<23:
		return 5
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return 6
	}
	return 10
}

// lpStrBytes is the listpack size of a string element: an integer's when
// it reads as one, as listpacks store those as integers.
func lpStrBytes(b []byte) int {
	if v, ok := collInt(b); ok {
		return lpIntBytes(v)
	}
	n := len(b)
	var enc int
	switch {
	case n < 64:
		enc = 1 + n
	case n < 4096:
		enc = 2 + n
	default:
		enc = 5 + n
	}
	switch {
	case enc <= 127:
		return enc + 1
	case enc < 16383:
		return enc + 2
	case enc < 2097151:
		return enc + 3
	case enc < 268435455:
		return enc + 4
	}
	return enc + 5
}

// sameFields reports whether fields (field, value, ...) name exactly the
// master fields, in order.
func sameFields(master, fields [][]byte) bool {
	if len(master)*2 != len(fields) {
		return false
	}
	for i, f := range master {
		if !bytes.Equal(f, fields[2*i]) {
			return false
		}
	}
	return true
}

// newStreamNode opens a node for its first entry: the listpack header and
// end, the master entry (counts aside) and the zero terminator.
func newStreamNode(id streamID, fields [][]byte) *streamNode {
	n := &streamNode{master: id}
	n.bytes = 7 + lpIntBytes(int64(len(fields)/2)) + lpIntBytes(0)
	for i := 0; i < len(fields); i += 2 {
		n.masterFields = append(n.masterFields, fields[i])
		n.bytes += lpStrBytes(fields[i])
	}
	return n
}

// entryBytes is what an entry adds to its node's listpack.
func (n *streamNode) entryBytes(id streamID, fields [][]byte) int {
	nf := len(fields) / 2
	same := sameFields(n.masterFields, fields)
	sz := lpIntBytes(0) + lpIntBytes(int64(id.ms-n.master.ms)) + lpIntBytes(int64(id.seq-n.master.seq))
	count := nf + 3
	if !same {
		sz += lpIntBytes(int64(nf))
		count += nf + 1
	}
	for i := 0; i < len(fields); i += 2 {
		if !same {
			sz += lpStrBytes(fields[i])
		}
		sz += lpStrBytes(fields[i+1])
	}
	return sz + lpIntBytes(int64(count))
}

// tail is the last node or nil.
func (s *streamValue) tail() *streamNode {
	if len(s.nodes) == 0 {
		return nil
	}
	return s.nodes[len(s.nodes)-1]
}

// appendEntry adds an entry with an ID greater than lastID, opening a new
// node when the tail one is full as Redis judges it.
// Limits of 0 do not limit, as in Redis.
func (s *streamValue) appendEntry(id streamID, fields [][]byte, maxBytes, maxEntries int64) {
	n := s.tail()
	if n != nil {
		total := 0
		for _, f := range fields {
			total += len(f)
		}
		if maxBytes > 0 && int64(n.lpBytes()+total) >= maxBytes ||
			maxEntries > 0 && int64(n.live+n.dead) >= maxEntries {
			n = nil
		}
	}
	if n == nil {
		n = newStreamNode(id, fields)
		s.nodes = append(s.nodes, n)
	}
	n.bytes += n.entryBytes(id, fields)
	n.entries = append(n.entries, streamEntry{id: id, fields: fields})
	n.live++
	s.length++
	s.entriesAdded++
	s.lastID = id
}

// nodeFor is the index of the last node whose master ID is <= id, or 0
// (where Redis's iterator seeks).
func (s *streamValue) nodeFor(id streamID) int {
	i := sort.Search(len(s.nodes), func(i int) bool { return id.less(s.nodes[i].master) })
	if i > 0 {
		i--
	}
	return i
}

// streamPos is an entry's position: node and index in it.
type streamPos struct{ node, idx int }

// seekFirst is the position of the first entry (tombstones included) with
// an ID >= id; node == len(nodes) when there is none.
func (s *streamValue) seekFirst(id streamID) streamPos {
	for ni := s.nodeFor(id); ni < len(s.nodes); ni++ {
		es := s.nodes[ni].entries
		j := sort.Search(len(es), func(j int) bool { return !es[j].id.less(id) })
		if j < len(es) {
			return streamPos{ni, j}
		}
	}
	return streamPos{len(s.nodes), 0}
}

// seekLast is the position of the last entry with an ID <= id; node -1
// when there is none.
func (s *streamValue) seekLast(id streamID) streamPos {
	if len(s.nodes) == 0 {
		return streamPos{-1, 0}
	}
	ni := s.nodeFor(id)
	es := s.nodes[ni].entries
	j := sort.Search(len(es), func(j int) bool { return id.less(es[j].id) }) - 1
	if j >= 0 {
		return streamPos{ni, j}
	}
	if ni == 0 {
		return streamPos{-1, 0}
	}
	return streamPos{ni - 1, len(s.nodes[ni-1].entries) - 1}
}

// forward calls fn on every live entry with start <= id <= end in order
// until fn returns false.
func (s *streamValue) forward(start, end streamID, fn func(*streamEntry) bool) {
	p := s.seekFirst(start)
	for ni := p.node; ni < len(s.nodes); ni++ {
		es := s.nodes[ni].entries
		j := 0
		if ni == p.node {
			j = p.idx
		}
		for ; j < len(es); j++ {
			e := &es[j]
			if end.less(e.id) {
				return
			}
			if !e.deleted && !fn(e) {
				return
			}
		}
	}
}

// backward calls fn on every live entry with start <= id <= end in
// reverse order until fn returns false.
func (s *streamValue) backward(start, end streamID, fn func(*streamEntry) bool) {
	p := s.seekLast(end)
	for ni := p.node; ni >= 0; ni-- {
		es := s.nodes[ni].entries
		j := len(es) - 1
		if ni == p.node {
			j = p.idx
		}
		for ; j >= 0; j-- {
			e := &es[j]
			if e.id.less(start) {
				return
			}
			if !e.deleted && !fn(e) {
				return
			}
		}
	}
}

// find returns the live entry with id, or nil.
func (s *streamValue) find(id streamID) *streamEntry {
	if len(s.nodes) == 0 {
		return nil
	}
	es := s.nodes[s.nodeFor(id)].entries
	j := sort.Search(len(es), func(j int) bool { return !es[j].id.less(id) })
	if j < len(es) && es[j].id == id && !es[j].deleted {
		return &es[j]
	}
	return nil
}

// firstID is the first live entry's ID (Redis's first_id), 0-0 if none.
func (s *streamValue) firstID() streamID {
	var id streamID
	s.forward(streamMinID, streamMaxID, func(e *streamEntry) bool { id = e.id; return false })
	return id
}

// lastLiveID is the last live entry's ID, 0-0 if none.
func (s *streamValue) lastLiveID() streamID {
	var id streamID
	s.backward(streamMinID, streamMaxID, func(e *streamEntry) bool { id = e.id; return false })
	return id
}

// remove deletes the live entry id: a tombstone, and its node goes when
// it held the last live entry. It reports whether there was one.
func (s *streamValue) remove(id streamID) bool {
	if len(s.nodes) == 0 {
		return false
	}
	ni := s.nodeFor(id)
	n := s.nodes[ni]
	j := sort.Search(len(n.entries), func(j int) bool { return !n.entries[j].id.less(id) })
	if j == len(n.entries) || n.entries[j].id != id || n.entries[j].deleted {
		return false
	}
	n.entries[j].deleted = true // its fields stay, as in Redis's listpack (DUMP writes them)
	n.live--
	n.dead++
	s.length--
	if n.live == 0 {
		s.dropNode(ni)
	}
	return true
}

// dropNode removes node i.
func (s *streamValue) dropNode(i int) {
	if i == 0 {
		s.nodes[0] = nil
		s.nodes = s.nodes[1:]
		return
	}
	copy(s.nodes[i:], s.nodes[i+1:])
	s.nodes[len(s.nodes)-1] = nil
	s.nodes = s.nodes[:len(s.nodes)-1]
}

// trimArgs is XADD's and XTRIM's trimming: by MAXLEN or MINID, exact or
// approximate, with a limit on the entries removed (0: none).
type trimArgs struct {
	strategy int // trimNone, trimMaxLen, trimMinID
	approx   bool
	limit    int64
	// defaultLimit: ~ without LIMIT, whose limit follows the store's
	// stream-node-max-entries (withDefaultLimit).
	defaultLimit bool
	maxLen       int64
	minID        streamID
}

const (
	trimNone = iota
	trimMaxLen
	trimMinID
)

// trim removes entries from the head as Redis's streamTrim does: whole
// nodes while they fit, then (exact trimming only) entries inside the
// first node that must keep some. It returns how many went.
func (s *streamValue) trim(a *trimArgs) int64 {
	if a.strategy == trimNone {
		return 0
	}
	var deleted int64
	for len(s.nodes) > 0 {
		if a.strategy == trimMaxLen && int64(s.length) <= a.maxLen {
			break
		}
		n := s.nodes[0]
		if a.limit != 0 && deleted+int64(n.live) > a.limit {
			break
		}
		var whole bool
		if a.strategy == trimMaxLen {
			whole = int64(s.length-n.live) >= a.maxLen
		} else {
			whole = n.entries[len(n.entries)-1].id.less(a.minID)
		}
		if whole {
			s.length -= n.live
			deleted += int64(n.live)
			s.dropNode(0)
			continue
		}
		if a.approx {
			break
		}
		deleted += s.trimInside(n, a)
		break
	}
	return deleted
}

// trimInside marks entries of the head node deleted until the trim is
// satisfied; the node stays even if nothing live is left in it, as in
// Redis.
func (s *streamValue) trimInside(n *streamNode, a *trimArgs) int64 {
	var deleted int64
	for j := range n.entries {
		e := &n.entries[j]
		if a.strategy == trimMaxLen && int64(s.length) <= a.maxLen {
			break
		}
		if a.strategy == trimMinID && !e.id.less(a.minID) {
			break
		}
		if !e.deleted {
			e.deleted = true
			n.live--
			n.dead++
			s.length--
			deleted++
		}
	}
	return deleted
}

// raxNodes is the number of nodes of the radix tree Redis would hold for
// the stream's node keys: Redis's rax keeps itself compressed, so the
// count depends on the set of keys only. A rax node sits at the root, at
// every prefix where keys branch, at every key's end, and at the start of
// every compressed run of more than zero bytes between those.
func (s *streamValue) raxNodes() int {
	keys := make([][16]byte, len(s.nodes))
	for i, n := range s.nodes {
		keys[i] = n.master.key()
	}
	if len(keys) == 0 {
		return 1
	}
	depth := commonPrefix(keys)
	count := 0
	if depth > 0 {
		count++ // the root, compressed down to the first branch or key
	}
	return count + raxSubtree(keys, depth)
}

// commonPrefix is the length of the prefix all of keys (sorted) share; 16
// for a single key.
func commonPrefix(keys [][16]byte) int {
	a, b := keys[0], keys[len(keys)-1]
	i := 0
	for i < 16 && a[i] == b[i] {
		i++
	}
	return i
}

// raxSubtree counts the rax nodes of keys (sorted, sharing depth bytes,
// branching at depth unless there is one key): the branch node and, per
// child, a compressed node when the child's own branch is deeper than the
// next byte, and the child's subtree.
func raxSubtree(keys [][16]byte, depth int) int {
	if len(keys) == 1 {
		return 1
	}
	count := 1
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi][depth] == keys[lo][depth] {
			hi++
		}
		child := keys[lo:hi]
		d := commonPrefix(child)
		if d > depth+1 {
			count++
		}
		count += raxSubtree(child, d)
		lo = hi
	}
	return count
}
