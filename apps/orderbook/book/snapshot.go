package book

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A book's snapshot is, with varints throughout:
//
//	"OBK1" depthLevels capacity marketPrice lastSeq count
//	count × (id side flags price stop qty open seq)
//
// with the orders in Each's order. Equal books (same orders in the same
// places, same market price and arrival counter) give equal bytes.
const bookMagic = "OBK1"

// ErrSnapshot is wrapped by every error of Restore and RestoreMarket.
var ErrSnapshot = errors.New("book: bad snapshot")

// AppendSnapshot appends the book's snapshot to dst.
func (b *Book) AppendSnapshot(dst []byte) []byte {
	dst = append(dst, bookMagic...)
	dst = binary.AppendUvarint(dst, uint64(b.cfg.DepthLevels))
	dst = binary.AppendUvarint(dst, uint64(b.cfg.Capacity))
	dst = binary.AppendVarint(dst, int64(b.mp))
	dst = binary.AppendUvarint(dst, b.seq)
	dst = binary.AppendUvarint(dst, uint64(b.ids.n))
	b.each(func(n *node) {
		dst = binary.AppendUvarint(dst, uint64(n.id))
		dst = append(dst, byte(n.side), byte(n.flags))
		dst = binary.AppendVarint(dst, int64(n.price))
		dst = binary.AppendVarint(dst, int64(n.stop))
		dst = binary.AppendVarint(dst, int64(n.qty))
		dst = binary.AppendVarint(dst, int64(n.open))
		dst = binary.AppendUvarint(dst, n.seq)
	})
	return dst
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrSnapshot, what)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or malformed " + what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated or malformed " + what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated " + what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Restore reads a book written by AppendSnapshot from the start of data and
// returns it with the bytes that follow it.
func Restore(data []byte) (*Book, []byte, error) {
	r := &reader{b: data}
	if string(r.bytes(len(bookMagic), "magic")) != bookMagic {
		return nil, nil, fmt.Errorf("%w: no %s magic", ErrSnapshot, bookMagic)
	}
	depth := r.uvarint("depth levels")
	capacity := r.uvarint("capacity")
	mp := r.varint("market price")
	seq := r.uvarint("arrival counter")
	count := r.uvarint("order count")
	if r.err != nil {
		return nil, nil, r.err
	}
	const limit = 1 << 30
	if depth == 0 || depth > limit || capacity == 0 || capacity > limit || mp < 0 || count > uint64(len(r.b)) {
		return nil, nil, fmt.Errorf("%w: header out of range (depth %d, capacity %d, market price %d, %d orders)",
			ErrSnapshot, depth, capacity, mp, count)
	}
	b := New(Config{DepthLevels: int(depth), Capacity: max(int(capacity), int(count)), MarketPrice: Price(mp)})
	b.cfg.Capacity = int(capacity)
	b.seq = seq
	for i := uint64(0); i < count; i++ {
		id := OrderID(r.uvarint("order id"))
		sf := r.bytes(2, "side and flags")
		price := Price(r.varint("price"))
		stop := Price(r.varint("stop"))
		qty := Qty(r.varint("quantity"))
		open := Qty(r.varint("open quantity"))
		oseq := r.uvarint("arrival number")
		if r.err != nil {
			return nil, nil, r.err
		}
		side, flags := Side(sf[0]), Flags(sf[1])
		o := Order{ID: id, Side: side, Price: price, Stop: stop, Qty: qty, Flags: flags}
		switch {
		case b.check(o) != ReasonNone:
			return nil, nil, fmt.Errorf("%w: order %d: %v", ErrSnapshot, id, b.check(o))
		case open <= 0 || open > qty || oseq == 0 || oseq > seq:
			return nil, nil, fmt.Errorf("%w: order %d: open %d of %d, arrival %d of %d", ErrSnapshot, id, open, qty, oseq, seq)
		case stop == 0 && (price == 0 || flags&IOC != 0):
			return nil, nil, fmt.Errorf("%w: order %d: a market or IOC order cannot rest", ErrSnapshot, id)
		}
		ni := b.newNode()
		b.nodes[ni] = node{id: id, price: price, stop: stop, qty: qty, open: open, seq: oseq, side: side, flags: flags}
		b.ids.put(id, ni)
		if stop != 0 {
			b.park(ni)
		} else {
			b.rest(ni)
		}
	}
	return b, r.b, nil
}
