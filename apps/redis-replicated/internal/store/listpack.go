package store

// Listpacks, ziplists, intsets and zipmaps: the compact blobs Redis stores
// small collections in and writes to RDB as they are. Writing is needed
// for listpacks and intsets only (what Redis 7.0 writes); reading for all
// four (what Redis 7.0 still loads). Readers check every length against the
// blob, since a RESTORE payload is untrusted input.

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// errBadBlob is a malformed listpack, ziplist, intset or zipmap.
var errBadBlob = errors.New("malformed encoded collection")

// listpack header: total bytes (uint32) and element count (uint16, 65535
// when it does not fit); the blob ends with 0xff.
const (
	listpackHeaderSize = 6
	listpackEnd        = 0xff
	listpackCountMax   = 65535
)

// buildListpack encodes elems as a listpack, each element as an integer
// when it is the canonical text of one, as Redis's lpAppend decides.
func buildListpack(elems [][]byte) []byte {
	size := listpackHeaderSize + 1
	for _, x := range elems {
		size += listpackEntrySize(x)
	}
	lp := make([]byte, listpackHeaderSize, size)
	binary.LittleEndian.PutUint32(lp, uint32(size))
	binary.LittleEndian.PutUint16(lp[4:], uint16(min(len(elems), listpackCountMax)))
	for _, x := range elems {
		lp = appendListpackEntry(lp, x)
	}
	return append(lp, listpackEnd)
}

// listpackEntrySize is the bytes x takes in a listpack.
func listpackEntrySize(x []byte) int {
	n := len(appendListpackEncoding(make([]byte, 0, 16), x, false))
	if _, isInt := collInt(x); !isInt {
		n += len(x)
	}
	return n + listpackBacklenSize(n)
}

// appendListpackEntry appends x's entry: encoding, data, back length.
func appendListpackEntry(lp, x []byte) []byte {
	start := len(lp)
	lp = appendListpackEncoding(lp, x, true)
	return appendListpackBacklen(lp, len(lp)-start)
}

// appendListpackEncoding appends x's encoding byte(s) and, when data is
// set or x is an integer, its data.
func appendListpackEncoding(lp, x []byte, data bool) []byte {
	if v, ok := collInt(x); ok {
		return appendListpackInt(lp, v)
	}
	n := len(x)
	switch {
	case n < 64:
		lp = append(lp, 0x80|byte(n))
	case n < 4096:
		lp = append(lp, 0xe0|byte(n>>8), byte(n))
	default:
		lp = binary.LittleEndian.AppendUint32(append(lp, 0xf0), uint32(n))
	}
	if data {
		lp = append(lp, x...)
	}
	return lp
}

// appendListpackInt appends v in the narrowest listpack integer encoding.
func appendListpackInt(lp []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 127:
		return append(lp, byte(v))
	case v >= -4096 && v <= 4095:
		u := uint64(v) & (1<<13 - 1)
		return append(lp, 0xc0|byte(u>>8), byte(u))
	case v >= -32768 && v <= 32767:
		return binary.LittleEndian.AppendUint16(append(lp, 0xf1), uint16(v))
	case v >= -8388608 && v <= 8388607:
		return append(lp, 0xf2, byte(v), byte(v>>8), byte(v>>16))
	case v >= -2147483648 && v <= 2147483647:
		return binary.LittleEndian.AppendUint32(append(lp, 0xf3), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(lp, 0xf4), uint64(v))
}

// listpackBacklenSize is how many bytes the back length l takes.
func listpackBacklenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// appendListpackBacklen appends l, an entry's length, as the entry's back
// length: 7 bits a byte, most significant first, every byte but the first
// with its high bit set (so it reads backwards from the entry's end).
func appendListpackBacklen(lp []byte, l int) []byte {
	k := listpackBacklenSize(l)
	for i := k - 1; i >= 0; i-- {
		b := byte(l>>(7*i)) & 127
		if i != k-1 {
			b |= 128
		}
		lp = append(lp, b)
	}
	return lp
}

// parseListpack returns the elements of lp (integers as their decimal
// text).
func parseListpack(lp []byte) ([][]byte, error) {
	if len(lp) < listpackHeaderSize+1 || int(binary.LittleEndian.Uint32(lp)) != len(lp) || lp[len(lp)-1] != listpackEnd {
		return nil, errBadBlob
	}
	count := int(binary.LittleEndian.Uint16(lp[4:]))
	var out [][]byte
	p := lp[listpackHeaderSize : len(lp)-1]
	for len(p) > 0 {
		x, n, err := listpackEntry(p)
		if err != nil {
			return nil, err
		}
		k := listpackBacklenSize(n)
		if n+k > len(p) || !validBacklen(p[n:n+k], n) {
			return nil, errBadBlob
		}
		out = append(out, x)
		p = p[n+k:]
	}
	if count != listpackCountMax && count != len(out) {
		return nil, errBadBlob
	}
	return out, nil
}

// validBacklen reports whether b is the back length of an entry of n
// bytes, as Redis's lpValidateNext requires (its encoding is canonical).
func validBacklen(b []byte, n int) bool {
	var buf [5]byte
	return string(appendListpackBacklen(buf[:0], n)) == string(b)
}

// listpackEntry decodes the entry at the start of p: its element and the
// length of its encoding and data (the back length follows).
func listpackEntry(p []byte) (x []byte, n int, err error) {
	b := p[0]
	need := func(k int) bool { return len(p) >= k }
	intOf := func(v int64, k int) ([]byte, int, error) { return strconv.AppendInt(nil, v, 10), k, nil }
	switch {
	case b&0x80 == 0:
		return intOf(int64(b), 1)
	case b&0xc0 == 0x80:
		l := int(b & 0x3f)
		if !need(1 + l) {
			return nil, 0, errBadBlob
		}
		return p[1 : 1+l], 1 + l, nil
	case b&0xe0 == 0xc0:
		if !need(2) {
			return nil, 0, errBadBlob
		}
		u := int64(b&0x1f)<<8 | int64(p[1])
		if u >= 1<<12 {
			u -= 1 << 13
		}
		return intOf(u, 2)
	case b&0xf0 == 0xe0:
		if !need(2) {
			return nil, 0, errBadBlob
		}
		l := int(b&0x0f)<<8 | int(p[1])
		if !need(2 + l) {
			return nil, 0, errBadBlob
		}
		return p[2 : 2+l], 2 + l, nil
	}
	switch b {
	case 0xf0:
		if !need(5) {
			return nil, 0, errBadBlob
		}
		l := int(binary.LittleEndian.Uint32(p[1:]))
		if l > len(p)-5 {
			return nil, 0, errBadBlob
		}
		return p[5 : 5+l], 5 + l, nil
	case 0xf1:
		if need(3) {
			return intOf(int64(int16(binary.LittleEndian.Uint16(p[1:]))), 3)
		}
	case 0xf2:
		if need(4) {
			return intOf(int64(int32(uint32(p[1])<<8|uint32(p[2])<<16|uint32(p[3])<<24)>>8), 4)
		}
	case 0xf3:
		if need(5) {
			return intOf(int64(int32(binary.LittleEndian.Uint32(p[1:]))), 5)
		}
	case 0xf4:
		if need(9) {
			return intOf(int64(binary.LittleEndian.Uint64(p[1:])), 9)
		}
	}
	return nil, 0, errBadBlob
}

// parseZiplist returns the elements of a ziplist: zlbytes and zltail
// (uint32), zllen (uint16), then entries of previous-entry length, encoding
// and data, then 0xff.
func parseZiplist(zl []byte) ([][]byte, error) {
	const header = 10
	if len(zl) < header+1 || int(binary.LittleEndian.Uint32(zl)) != len(zl) || zl[len(zl)-1] != 0xff {
		return nil, errBadBlob
	}
	count := int(binary.LittleEndian.Uint16(zl[8:]))
	var out [][]byte
	p := zl[header : len(zl)-1]
	for len(p) > 0 {
		skip := 1 // the previous entry's length
		if p[0] == 0xfe {
			skip = 5
		} else if p[0] == 0xff {
			return nil, errBadBlob
		}
		if len(p) <= skip {
			return nil, errBadBlob
		}
		x, n, err := ziplistEntry(p[skip:])
		if err != nil {
			return nil, err
		}
		out = append(out, x)
		p = p[skip+n:]
	}
	if count != 0xffff && count != len(out) {
		return nil, errBadBlob
	}
	return out, nil
}

// ziplistEntry decodes an entry's encoding and data at the start of p.
func ziplistEntry(p []byte) (x []byte, n int, err error) {
	b := p[0]
	str := func(hdr, l int) ([]byte, int, error) {
		if l > len(p)-hdr {
			return nil, 0, errBadBlob
		}
		return p[hdr : hdr+l], hdr + l, nil
	}
	integer := func(k int, v func(d []byte) int64) ([]byte, int, error) {
		if len(p) < 1+k {
			return nil, 0, errBadBlob
		}
		return strconv.AppendInt(nil, v(p[1:1+k]), 10), 1 + k, nil
	}
	switch b >> 6 {
	case 0:
		return str(1, int(b&0x3f))
	case 1:
		if len(p) < 2 {
			return nil, 0, errBadBlob
		}
		return str(2, int(b&0x3f)<<8|int(p[1]))
	case 2:
		if b != 0x80 || len(p) < 5 {
			return nil, 0, errBadBlob
		}
		return str(5, int(binary.BigEndian.Uint32(p[1:])))
	}
	switch {
	case b == 0xc0:
		return integer(2, func(d []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(d))) })
	case b == 0xd0:
		return integer(4, func(d []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(d))) })
	case b == 0xe0:
		return integer(8, func(d []byte) int64 { return int64(binary.LittleEndian.Uint64(d)) })
	case b == 0xf0:
		return integer(3, func(d []byte) int64 {
			return int64(int32(uint32(d[0])<<8|uint32(d[1])<<16|uint32(d[2])<<24) >> 8)
		})
	case b == 0xfe:
		return integer(1, func(d []byte) int64 { return int64(int8(d[0])) })
	case b >= 0xf1 && b <= 0xfd:
		return strconv.AppendInt(nil, int64(b&0x0f)-1, 10), 1, nil
	}
	return nil, 0, errBadBlob
}

// parseIntset returns an intset's values as decimal text; they must be
// strictly ascending.
func parseIntset(is []byte) ([][]byte, error) {
	if len(is) < 8 {
		return nil, errBadBlob
	}
	width := int(binary.LittleEndian.Uint32(is))
	n := int(binary.LittleEndian.Uint32(is[4:]))
	if (width != 2 && width != 4 && width != 8) || n == 0 || len(is)-8 != n*width {
		return nil, errBadBlob
	}
	out := make([][]byte, 0, n)
	var prev int64
	for i := range n {
		d := is[8+i*width:]
		var v int64
		switch width {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(d)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d)))
		default:
			v = int64(binary.LittleEndian.Uint64(d))
		}
		if i > 0 && v <= prev {
			return nil, errBadBlob
		}
		prev = v
		out = append(out, strconv.AppendInt(nil, v, 10))
	}
	return out, nil
}

// parseZipmap returns a zipmap's fields and values alternately: a count
// byte, then per pair a length, the field, a length, a free-space byte,
// the value and that many unused bytes, then 0xff. Lengths are one byte
// below 254, else 254 and a little-endian uint32.
func parseZipmap(zm []byte) ([][]byte, error) {
	if len(zm) < 2 || zm[len(zm)-1] != 0xff {
		return nil, errBadBlob
	}
	p := zm[1 : len(zm)-1]
	length := func() (int, bool) {
		if len(p) == 0 {
			return 0, false
		}
		if p[0] < 254 {
			l := int(p[0])
			p = p[1:]
			return l, true
		}
		if p[0] != 254 || len(p) < 5 {
			return 0, false
		}
		l := int(binary.LittleEndian.Uint32(p[1:]))
		p = p[5:]
		return l, true
	}
	var out [][]byte
	for len(p) > 0 {
		fl, ok := length()
		if !ok || fl > len(p) {
			return nil, errBadBlob
		}
		field := p[:fl]
		p = p[fl:]
		vl, ok := length()
		if !ok || len(p) < 1 {
			return nil, errBadBlob
		}
		free := int(p[0])
		p = p[1:]
		if vl+free > len(p) {
			return nil, errBadBlob
		}
		out = append(out, field, p[:vl])
		p = p[vl+free:]
	}
	return out, nil
}
