package store

// DUMP and RESTORE of streams, in Redis 7.0's STREAM_LISTPACKS_2 encoding
// (RESTORE also reads 6.2's STREAM_LISTPACKS):
//
//	n nodes, each: its master ID as a 16-byte string (the radix tree key:
//	  ms and seq big-endian), its listpack as a string (LZF'd when that
//	  pays, as any string)
//	length, last ID (ms, seq), first ID, max deleted ID, entries added
//	  (7.0 only: first ID to entries added)
//	n groups (in name order), each: name, last ID, entries read (7.0
//	  only; -1 as a 64-bit length), the PEL: n, then per entry its raw
//	  16-byte ID, delivery time (8 bytes little-endian) and delivery count,
//	  then n consumers (in name order), each: name, seen time (8 bytes),
//	  n and the raw IDs of its pending entries
//
// A node's listpack is the node as Redis lays it out: the master entry
// (live count, deleted count, n master fields, the fields, a 0), then per
// entry its flags (1 deleted, 2 same fields as the master), its ID as the
// difference from the master's (ms, seq), then either the values (same
// fields) or n fields and the field/value pairs, then the entry's element
// count. Deleted entries keep their fields (Redis only flags them), which
// is why streamValue's tombstones keep theirs.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Stream RDB types and entry flags (Redis 7.0's rdb.h and stream.h).
const (
	rdbTypeStreamListpack2 = 19

	streamFlagDeleted    = 1
	streamFlagSameFields = 2
)

// dumpStream encodes st as STREAM_LISTPACKS_2.
func dumpStream(st *streamValue) []byte {
	body := appendRDBLen(nil, uint64(len(st.nodes)))
	for _, n := range st.nodes {
		key := n.master.key()
		body = appendRDBString(body, key[:])
		body = appendRDBString(body, streamNodeListpack(n))
	}
	body = appendRDBLen(body, uint64(st.length))
	body = appendRDBID(body, st.lastID)
	body = appendRDBID(body, st.firstID())
	body = appendRDBID(body, st.maxDeletedID)
	body = appendRDBLen(body, st.entriesAdded)
	body = appendRDBLen(body, uint64(len(st.groups)))
	for _, g := range st.groups {
		body = appendRDBString(body, []byte(g.name))
		body = appendRDBID(body, g.lastID)
		body = appendRDBLen(body, uint64(g.entriesRead)) // -1 wraps, as in Redis
		body = appendRDBLen(body, uint64(len(g.pending)))
		for _, pe := range g.pending {
			key := pe.id.key()
			body = append(body, key[:]...)
			body = binary.LittleEndian.AppendUint64(body, uint64(pe.deliveryTime))
			body = appendRDBLen(body, uint64(pe.deliveryCount))
		}
		body = appendRDBLen(body, uint64(len(g.consumers)))
		for _, c := range g.consumers {
			body = appendRDBString(body, []byte(c.name))
			body = binary.LittleEndian.AppendUint64(body, uint64(c.seenTime))
			body = appendRDBLen(body, uint64(len(c.pending)))
			for _, pe := range c.pending {
				key := pe.id.key()
				body = append(body, key[:]...)
			}
		}
	}
	return body
}

func appendRDBID(dst []byte, id streamID) []byte {
	return appendRDBLen(appendRDBLen(dst, id.ms), id.seq)
}

// streamNodeListpack is n's listpack as Redis holds it.
func streamNodeListpack(n *streamNode) []byte {
	num := func(v int64) []byte { return strconv.AppendInt(nil, v, 10) }
	elems := [][]byte{num(int64(n.live)), num(int64(n.dead)), num(int64(len(n.masterFields)))}
	elems = append(elems, n.masterFields...)
	elems = append(elems, num(0))
	for i := range n.entries {
		en := &n.entries[i]
		same := sameFields(n.masterFields, en.fields)
		flags := int64(0)
		if en.deleted {
			flags |= streamFlagDeleted
		}
		if same {
			flags |= streamFlagSameFields
		}
		// The differences are taken modulo 2^64 and stored as signed
		// integers, as Redis's lpAppendInteger(id.seq - master.seq) does.
		elems = append(elems, num(flags), num(int64(en.id.ms-n.master.ms)), num(int64(en.id.seq-n.master.seq)))
		nf := len(en.fields) / 2
		count := nf + 3
		if !same {
			elems = append(elems, num(int64(nf)))
			count += nf + 1
		}
		for j := 0; j+1 < len(en.fields); j += 2 {
			if !same {
				elems = append(elems, en.fields[j])
			}
			elems = append(elems, en.fields[j+1])
		}
		elems = append(elems, num(int64(count)))
	}
	return buildListpack(elems)
}

// loadStream reads a STREAM_LISTPACKS (v2 false: Redis 6.2's, without the
// first ID, max deleted ID, entries added and groups' entries read, which
// are derived as Redis 7.0 derives them) or STREAM_LISTPACKS_2 value, and
// checks it is consistent enough for the store's invariants: nodes and
// entries in ID order, each node's first entry at its key, the length the
// live entries', every pending entry owned by exactly one consumer.
func loadStream(r *rdbReader, v2 bool) (*value, error) {
	st := newStream()
	nodes := r.length()
	if r.err == nil && nodes > uint64(len(r.p)) {
		return nil, errTruncated
	}
	var prev streamID
	for i := uint64(0); i < nodes && r.err == nil; i++ {
		key := r.str()
		lp := r.str()
		if r.err != nil {
			break
		}
		if len(key) != 16 {
			return nil, errors.New("stream node key is not an ID")
		}
		master := streamID{binary.BigEndian.Uint64(key), binary.BigEndian.Uint64(key[8:])}
		n, err := parseStreamNode(master, lp)
		if err != nil {
			return nil, fmt.Errorf("stream node %s: %w", master, err)
		}
		if i > 0 && !prev.less(master) {
			return nil, fmt.Errorf("stream node %s out of order", master)
		}
		prev = n.entries[len(n.entries)-1].id
		st.nodes = append(st.nodes, n)
		st.length += n.live
	}
	length := r.length()
	st.lastID = streamID{r.length(), r.length()}
	if v2 {
		// The first ID: Redis keeps it, the store derives it from the
		// nodes (they agree for every payload Redis writes).
		r.length()
		r.length()
		st.maxDeletedID = streamID{r.length(), r.length()}
		st.entriesAdded = r.length()
	} else {
		st.entriesAdded = uint64(st.length)
	}
	if r.err != nil {
		return nil, r.err
	}
	if length != uint64(st.length) {
		return nil, fmt.Errorf("stream length %d, %d live entries", length, st.length)
	}
	if len(st.nodes) > 0 && st.lastID.less(prev) {
		return nil, fmt.Errorf("stream last ID %s before entry %s", st.lastID, prev)
	}
	groups := r.length()
	for i := uint64(0); i < groups && r.err == nil; i++ {
		if err := loadStreamGroup(r, st, v2); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return &value{kind: kindStream, stream: st}, nil
}

// loadStreamGroup reads one consumer group into st.
func loadStreamGroup(r *rdbReader, st *streamValue, v2 bool) error {
	name := r.str()
	last := streamID{r.length(), r.length()}
	read := int64(entriesReadInvalid)
	if v2 {
		read = int64(r.length())
	}
	if r.err != nil {
		return r.err
	}
	if !v2 {
		read = st.estimateEntriesRead(last)
	}
	if !st.addGroup(name, last, read) {
		return fmt.Errorf("duplicate stream group %q", name)
	}
	g := st.group(name)
	npel := r.length()
	if r.err == nil && npel > uint64(len(r.p))/16 {
		return errTruncated
	}
	for i := uint64(0); i < npel && r.err == nil; i++ {
		pe := &pendingEntry{id: r.rawStreamID()}
		pe.deliveryTime = int64(binary.LittleEndian.Uint64(r.take(8)))
		pe.deliveryCount = int64(r.length())
		if r.err != nil {
			break
		}
		if g.pending.find(pe.id) != nil {
			return fmt.Errorf("duplicate pending entry %s", pe.id)
		}
		g.pending.insert(pe)
	}
	nc := r.length()
	for i := uint64(0); i < nc && r.err == nil; i++ {
		c := g.addConsumer(r.str(), 0)
		if r.err != nil {
			break
		}
		if c == nil {
			return errors.New("duplicate stream consumer")
		}
		c.seenTime = int64(binary.LittleEndian.Uint64(r.take(8)))
		n := r.length()
		if r.err == nil && n > uint64(len(r.p))/16 {
			return errTruncated
		}
		for j := uint64(0); j < n && r.err == nil; j++ {
			id := r.rawStreamID()
			pe := g.pending.find(id)
			if r.err != nil {
				break
			}
			if pe == nil || pe.consumer != nil {
				return fmt.Errorf("consumer entry %s not in the group's PEL or owned twice", id)
			}
			pe.consumer = c
			c.pending.insert(pe)
		}
	}
	if r.err != nil {
		return r.err
	}
	for _, pe := range g.pending {
		if pe.consumer == nil {
			return fmt.Errorf("pending entry %s without a consumer", pe.id)
		}
	}
	return nil
}

// rawStreamID reads an ID as the PELs store it: 16 bytes, big-endian.
func (r *rdbReader) rawStreamID() streamID {
	b := r.take(16)
	if r.err != nil {
		return streamID{}
	}
	return streamID{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

// lpCursor walks a listpack's elements.
type lpCursor struct {
	elems [][]byte
	err   error
}

func (c *lpCursor) next() []byte {
	if c.err != nil {
		return nil
	}
	if len(c.elems) == 0 {
		c.err = errors.New("listpack ends inside an entry")
		return nil
	}
	x := c.elems[0]
	c.elems = c.elems[1:]
	return x
}

// int reads an integer element.
func (c *lpCursor) int() int64 {
	x := c.next()
	if c.err != nil {
		return 0
	}
	v, ok := collInt(x)
	if !ok {
		c.err = fmt.Errorf("listpack element %q is not an integer", x)
	}
	return v
}

// count reads an integer element that counts elements to come.
func (c *lpCursor) count() int {
	v := c.int()
	if c.err == nil && (v < 0 || v > int64(len(c.elems))) {
		c.err = fmt.Errorf("count %d beyond the listpack", v)
	}
	if c.err != nil {
		return 0
	}
	return int(v)
}

// parseStreamNode rebuilds a node keyed master from its listpack.
func parseStreamNode(master streamID, lp []byte) (*streamNode, error) {
	elems, err := parseListpack(lp)
	if err != nil {
		return nil, err
	}
	c := &lpCursor{elems: elems}
	live, dead := c.count(), c.count()
	n := &streamNode{master: master}
	for range c.count() {
		n.masterFields = append(n.masterFields, c.next())
	}
	if c.int() != 0 && c.err == nil {
		c.err = errors.New("no master entry terminator")
	}
	for i := 0; i < live+dead && c.err == nil; i++ {
		en, err := parseStreamEntry(c, n)
		if err != nil {
			return nil, err
		}
		if i == 0 && en.id != master || i > 0 && !n.entries[i-1].id.less(en.id) {
			return nil, fmt.Errorf("entry %s out of order", en.id)
		}
		if en.deleted {
			n.dead++
		} else {
			n.live++
		}
		n.entries = append(n.entries, en)
	}
	switch {
	case c.err != nil:
		return nil, c.err
	case len(c.elems) != 0:
		return nil, errors.New("elements after the last entry")
	case len(n.entries) == 0:
		return nil, errors.New("empty node")
	case n.live != live || n.dead != dead:
		return nil, fmt.Errorf("counts %d/%d, flags say %d/%d", live, dead, n.live, n.dead)
	}
	n.bytes = len(lp) - lpIntBytes(int64(live)) - lpIntBytes(int64(dead))
	return n, nil
}

// parseStreamEntry reads one entry of node n.
func parseStreamEntry(c *lpCursor, n *streamNode) (streamEntry, error) {
	flags := c.int()
	msDiff, seqDiff := c.int(), c.int()
	en := streamEntry{
		id:      streamID{n.master.ms + uint64(msDiff), n.master.seq + uint64(seqDiff)},
		deleted: flags&streamFlagDeleted != 0,
	}
	if c.err == nil && flags&^(streamFlagDeleted|streamFlagSameFields) != 0 {
		return en, fmt.Errorf("entry flags %d", flags)
	}
	var nf, count int
	if flags&streamFlagSameFields != 0 {
		nf = len(n.masterFields)
		count = nf + 3
		for _, f := range n.masterFields {
			en.fields = append(en.fields, f, c.next())
		}
	} else {
		nf = c.count()
		count = 2*nf + 4
		for range nf {
			en.fields = append(en.fields, c.next(), c.next())
		}
	}
	if got := c.int(); c.err == nil && got != int64(count) {
		return en, fmt.Errorf("entry %s element count %d, not %d", en.id, got, count)
	}
	return en, c.err
}
