package store

import (
	"bufio"
	"encoding/binary"
)

// A stream's snapshot payload (kind tag kindStream; integers unsigned
// varints unless noted, IDs as ms then seq):
//
//	last ID, max deleted ID, entries added
//	n nodes, each: master ID, listpack bytes (less the two counters),
//	  n master fields, the fields,
//	  n entries, each: ID, a byte (0 live, 1 deleted, 2 deleted with its
//	  fields kept) and, for 0 and 2, n fields (field and value counted
//	  apart) and the fields
//	n groups (in name order), each: name, last ID, entries read (signed),
//	  n consumers (in name order), each: name, seen time (signed);
//	  n pending entries (in ID order), each: ID, delivery time (signed),
//	  delivery count (signed), the consumer's index + 1
//
// The node layout is part of the state (it decides approximate trims and
// XINFO's radix tree sizes), so it is kept exactly.

func encodeStream(w *bufio.Writer, st *streamValue) {
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	sv := func(x int64) { w.Write(binary.AppendVarint(tmp[:0], x)) }
	id := func(x streamID) { uv(x.ms); uv(x.seq) }
	bs := func(b []byte) { uv(uint64(len(b))); w.Write(b) }
	str := func(b string) { uv(uint64(len(b))); w.WriteString(b) }
	id(st.lastID)
	id(st.maxDeletedID)
	uv(st.entriesAdded)
	uv(uint64(len(st.nodes)))
	for _, n := range st.nodes {
		id(n.master)
		uv(uint64(n.bytes))
		uv(uint64(len(n.masterFields)))
		for _, f := range n.masterFields {
			bs(f)
		}
		uv(uint64(len(n.entries)))
		for _, en := range n.entries {
			id(en.id)
			switch {
			case en.deleted && en.fields == nil:
				w.WriteByte(1)
				continue
			case en.deleted:
				w.WriteByte(2) // a tombstone keeps its fields for DUMP
			default:
				w.WriteByte(0)
			}
			uv(uint64(len(en.fields)))
			for _, f := range en.fields {
				bs(f)
			}
		}
	}
	uv(uint64(len(st.groups)))
	for _, g := range st.groups {
		str(g.name)
		id(g.lastID)
		sv(g.entriesRead)
		uv(uint64(len(g.consumers)))
		index := make(map[*streamConsumer]uint64, len(g.consumers))
		for i, c := range g.consumers {
			str(c.name)
			sv(c.seenTime)
			index[c] = uint64(i + 1)
		}
		uv(uint64(len(g.pending)))
		for _, pe := range g.pending {
			id(pe.id)
			sv(pe.deliveryTime)
			sv(pe.deliveryCount)
			uv(index[pe.consumer])
		}
	}
}

// sv reads a signed varint.
func (d *snapReader) sv() int64 {
	if d.err != nil {
		return 0
	}
	x, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail("varint: %v", err)
	}
	return x
}

// size reads a count that may be zero, bounded so that a corrupt one
// cannot allocate the world.
func (d *snapReader) size(limit uint64) int {
	n := d.uv()
	if d.err == nil && n > limit {
		d.fail("count %d", n)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *snapReader) streamID() streamID { return streamID{d.uv(), d.uv()} }

func decodeStream(d *snapReader) *streamValue {
	st := newStream()
	st.lastID = d.streamID()
	st.maxDeletedID = d.streamID()
	st.entriesAdded = d.uv()
	nodes := d.size(1 << 40)
	var prev streamID
	for i := 0; i < nodes && d.err == nil; i++ {
		n := &streamNode{master: d.streamID(), bytes: d.size(1 << 40)}
		for j, nf := 0, d.size(1<<31); j < nf && d.err == nil; j++ {
			n.masterFields = append(n.masterFields, d.bytes())
		}
		ne := d.size(1 << 31)
		if ne == 0 {
			d.fail("empty stream node")
		}
		for j := 0; j < ne && d.err == nil; j++ {
			en := streamEntry{id: d.streamID()}
			flag := d.byte1()
			switch flag {
			case 0:
			case 1, 2:
				en.deleted = true
			default:
				d.fail("stream entry flag %d", flag)
			}
			if (i > 0 || j > 0) && !prev.less(en.id) || j == 0 && en.id != n.master {
				d.fail("stream entries out of order at %s", en.id)
			}
			prev = en.id
			if flag != 1 {
				nf := d.size(1 << 31)
				for k := 0; k < nf && d.err == nil; k++ {
					en.fields = append(en.fields, d.bytes())
				}
			}
			if en.deleted {
				n.dead++
			} else {
				n.live++
			}
			n.entries = append(n.entries, en)
		}
		st.length += n.live
		st.nodes = append(st.nodes, n)
	}
	groups := d.size(1 << 31)
	for i := 0; i < groups && d.err == nil; i++ {
		g := decodeGroup(d)
		if i > 0 && st.groups[i-1].name >= g.name {
			d.fail("stream groups out of order at %q", g.name)
		}
		st.groups = append(st.groups, g)
	}
	return st
}

func decodeGroup(d *snapReader) *streamGroup {
	g := &streamGroup{name: string(d.bytes()), lastID: d.streamID(), entriesRead: d.sv()}
	nc := d.size(1 << 31)
	for i := 0; i < nc && d.err == nil; i++ {
		c := &streamConsumer{name: string(d.bytes()), seenTime: d.sv()}
		if i > 0 && g.consumers[i-1].name >= c.name {
			d.fail("stream consumers out of order at %q", c.name)
		}
		g.consumers = append(g.consumers, c)
	}
	np := d.size(1 << 40)
	for i := 0; i < np && d.err == nil; i++ {
		pe := &pendingEntry{id: d.streamID(), deliveryTime: d.sv(), deliveryCount: d.sv()}
		ci := d.size(uint64(len(g.consumers)))
		if i > 0 && !g.pending[i-1].id.less(pe.id) {
			d.fail("stream PEL out of order at %s", pe.id)
		}
		if ci == 0 && d.err == nil {
			d.fail("pending entry %s without a consumer", pe.id)
		}
		if d.err != nil {
			break
		}
		pe.consumer = g.consumers[ci-1]
		pe.consumer.pending = append(pe.consumer.pending, pe)
		g.pending = append(g.pending, pe)
	}
	return g
}
