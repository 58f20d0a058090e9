package store

import "sort"

// Consumer groups: a group's last delivered ID and read counter, its
// pending entries list (PEL: delivered, not yet acknowledged) and its
// consumers, each with its own view of the PEL. Groups and consumers are
// kept sorted by name (Redis's radix trees list them so), PELs by ID.

// entriesReadInvalid is Redis's SCG_INVALID_ENTRIES_READ.
const entriesReadInvalid = -1

// pendingEntry is one delivered, unacknowledged entry (Redis's NACK).
type pendingEntry struct {
	id            streamID
	deliveryTime  int64
	deliveryCount int64
	consumer      *streamConsumer
}

// pel is a pending entries list sorted by ID. New deliveries come in ID
// order, so inserting is an append in the common case; an entry claimed
// from another consumer lands where its ID belongs, shifting the newer
// ones (O(n) for a claim of an old entry into a long list).
type pel []*pendingEntry

// search is the index of the first entry with an ID >= id.
func (p pel) search(id streamID) int {
	return sort.Search(len(p), func(i int) bool { return !p[i].id.less(id) })
}

func (p pel) find(id streamID) *pendingEntry {
	if i := p.search(id); i < len(p) && p[i].id == id {
		return p[i]
	}
	return nil
}

func (p *pel) insert(pe *pendingEntry) {
	i := p.search(pe.id)
	*p = append(*p, nil)
	copy((*p)[i+1:], (*p)[i:])
	(*p)[i] = pe
}

// delete removes id, shifting the shorter side: acknowledging the oldest
// entry first, the usual order, costs O(1).
func (p *pel) delete(id streamID) {
	i := p.search(id)
	if i == len(*p) || (*p)[i].id != id {
		return
	}
	if i < len(*p)/2 {
		copy((*p)[1:i+1], (*p)[:i])
		(*p)[0] = nil
		*p = (*p)[1:]
		return
	}
	copy((*p)[i:], (*p)[i+1:])
	(*p)[len(*p)-1] = nil
	*p = (*p)[:len(*p)-1]
}

type streamConsumer struct {
	name     string
	seenTime int64
	pending  pel
}

type streamGroup struct {
	name        string
	lastID      streamID
	entriesRead int64
	pending     pel
	consumers   []*streamConsumer
}

// group returns the group named name, or nil.
func (st *streamValue) group(name []byte) *streamGroup {
	i := sort.Search(len(st.groups), func(i int) bool { return st.groups[i].name >= string(name) })
	if i < len(st.groups) && st.groups[i].name == string(name) {
		return st.groups[i]
	}
	return nil
}

// addGroup creates a group; false if one by that name exists.
func (st *streamValue) addGroup(name []byte, last streamID, entriesRead int64) bool {
	i := sort.Search(len(st.groups), func(i int) bool { return st.groups[i].name >= string(name) })
	if i < len(st.groups) && st.groups[i].name == string(name) {
		return false
	}
	g := &streamGroup{name: string(name), lastID: last, entriesRead: entriesRead}
	st.groups = append(st.groups, nil)
	copy(st.groups[i+1:], st.groups[i:])
	st.groups[i] = g
	return true
}

func (st *streamValue) deleteGroup(name []byte) bool {
	i := sort.Search(len(st.groups), func(i int) bool { return st.groups[i].name >= string(name) })
	if i < len(st.groups) && st.groups[i].name == string(name) {
		st.groups = append(st.groups[:i], st.groups[i+1:]...)
		return true
	}
	return false
}

func (g *streamGroup) consumerIndex(name []byte) int {
	return sort.Search(len(g.consumers), func(i int) bool { return g.consumers[i].name >= string(name) })
}

// consumer returns the consumer named name, or nil.
func (g *streamGroup) consumer(name []byte) *streamConsumer {
	if i := g.consumerIndex(name); i < len(g.consumers) && g.consumers[i].name == string(name) {
		return g.consumers[i]
	}
	return nil
}

// addConsumer creates a consumer seen at now; nil if it exists.
func (g *streamGroup) addConsumer(name []byte, now int64) *streamConsumer {
	i := g.consumerIndex(name)
	if i < len(g.consumers) && g.consumers[i].name == string(name) {
		return nil
	}
	c := &streamConsumer{name: string(name), seenTime: now}
	g.consumers = append(g.consumers, nil)
	copy(g.consumers[i+1:], g.consumers[i:])
	g.consumers[i] = c
	return c
}

// touchConsumer looks a consumer up as Redis's default lookup does,
// refreshing its seen time, and creates it when missing (created).
func (g *streamGroup) touchConsumer(name []byte, now int64) (c *streamConsumer, created bool) {
	if c := g.consumer(name); c != nil {
		c.seenTime = now
		return c, false
	}
	return g.addConsumer(name, now), true
}

// deleteConsumer removes a consumer and its pending entries; it returns
// how many it had.
func (g *streamGroup) deleteConsumer(name []byte) int {
	i := g.consumerIndex(name)
	if i == len(g.consumers) || g.consumers[i].name != string(name) {
		return 0
	}
	c := g.consumers[i]
	for _, pe := range c.pending {
		g.pending.delete(pe.id)
	}
	g.consumers = append(g.consumers[:i], g.consumers[i+1:]...)
	return len(c.pending)
}

// ack removes id from the group's PEL and its consumer's.
func (g *streamGroup) ack(id streamID) bool {
	pe := g.pending.find(id)
	if pe == nil {
		return false
	}
	g.pending.delete(id)
	if pe.consumer != nil {
		pe.consumer.pending.delete(id)
	}
	return true
}

// moveTo gives a pending entry to c.
func (pe *pendingEntry) moveTo(c *streamConsumer) {
	if pe.consumer == c {
		return
	}
	if pe.consumer != nil {
		pe.consumer.pending.delete(pe.id)
	}
	c.pending.insert(pe)
	pe.consumer = c
}

// rangeHasTombstones is Redis's streamRangeHasTombstones: whether the
// last deleted ID may lie in [start, end].
func (st *streamValue) rangeHasTombstones(start, end streamID) bool {
	if st.length == 0 || st.maxDeletedID.isZero() {
		return false
	}
	if st.maxDeletedID.less(st.firstID()) {
		return false
	}
	return start.cmp(st.maxDeletedID) <= 0 && st.maxDeletedID.cmp(end) <= 0
}

// estimateEntriesRead is Redis's streamEstimateDistanceFromFirstEverEntry:
// the logical read counter of id, or entriesReadInvalid if it cannot be
// known.
func (st *streamValue) estimateEntriesRead(id streamID) int64 {
	if st.entriesAdded == 0 {
		return 0
	}
	added := int64(st.entriesAdded)
	if st.length == 0 && id.cmp(st.lastID) < 1 {
		return added
	}
	switch c := id.cmp(st.lastID); {
	case c == 0:
		return added
	case c > 0:
		return entriesReadInvalid
	}
	first := st.firstID()
	if st.maxDeletedID.isZero() || st.maxDeletedID.less(first) {
		switch c := id.cmp(first); {
		case c < 0:
			return added - int64(st.length)
		case c == 0:
			return added - int64(st.length) + 1
		}
	}
	return entriesReadInvalid
}

// lag is a group's lag as XINFO reports it; ok false for the null reply.
func (st *streamValue) lag(g *streamGroup) (int64, bool) {
	if st.entriesAdded == 0 {
		return 0, true
	}
	if g.entriesRead != entriesReadInvalid && !st.rangeHasTombstones(g.lastID, streamMaxID) {
		return int64(st.entriesAdded) - g.entriesRead, true
	}
	if read := st.estimateEntriesRead(g.lastID); read != entriesReadInvalid {
		return int64(st.entriesAdded) - read, true
	}
	return 0, false
}

// deliver records that the group delivered en: the last delivered ID and
// read counter advance as in Redis's streamReplyWithRange.
func (st *streamValue) deliver(g *streamGroup, id streamID) {
	if !g.lastID.less(id) {
		return
	}
	if g.entriesRead != entriesReadInvalid && !st.rangeHasTombstones(id, streamMaxID) {
		g.entriesRead++
	} else if st.entriesAdded != 0 {
		g.entriesRead = st.estimateEntriesRead(id)
	}
	g.lastID = id
}

// clone is a deep copy of the stream (entries' bytes are never mutated
// in place, so they are shared).
func (st *streamValue) clone() *streamValue {
	c := *st
	c.nodes = make([]*streamNode, len(st.nodes))
	for i, n := range st.nodes {
		cn := *n
		cn.entries = append([]streamEntry(nil), n.entries...)
		c.nodes[i] = &cn
	}
	c.groups = make([]*streamGroup, len(st.groups))
	for i, g := range st.groups {
		c.groups[i] = g.clone()
	}
	return &c
}

func (g *streamGroup) clone() *streamGroup {
	c := &streamGroup{name: g.name, lastID: g.lastID, entriesRead: g.entriesRead}
	byName := make(map[*streamConsumer]*streamConsumer, len(g.consumers))
	for _, oc := range g.consumers {
		nc := &streamConsumer{name: oc.name, seenTime: oc.seenTime}
		byName[oc] = nc
		c.consumers = append(c.consumers, nc)
	}
	for _, pe := range g.pending {
		npe := &pendingEntry{id: pe.id, deliveryTime: pe.deliveryTime, deliveryCount: pe.deliveryCount,
			consumer: byName[pe.consumer]}
		c.pending = append(c.pending, npe)
		if npe.consumer != nil {
			npe.consumer.pending = append(npe.consumer.pending, npe)
		}
	}
	return c
}
