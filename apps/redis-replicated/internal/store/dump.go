package store

// DUMP and RESTORE speak Redis 7.0's serialization format: one value as an
// RDB object (its type byte, then its RDB encoding), the RDB version as two
// little-endian bytes (10 for 7.0) and the CRC-64 of all that, little-endian
// (crc64.go). DUMP writes the encoding Redis 7.0 writes for a value in the
// encoding OBJECT ENCODING reports (encodingOf):
//
//   - strings: as integers when they read as one that fits in 32 bits, LZF
//     compressed (lzf.go) when longer than 20 bytes and compression saves
//     at least 4 bytes, else verbatim;
//   - lists: QUICKLIST_2, listpack nodes filled as RPUSH fills them (8 kB
//     per node, list-max-listpack-size -2); Redis's node boundaries depend
//     on the list's history, so a list built with LPUSH or LINSERT may split
//     differently in Redis (the payloads then differ, the values do not);
//   - hashes and sorted sets: a listpack (fields in insertion order, members
//     in score order) or the plain HASH / ZSET_2 encodings; a hash table's
//     order is Redis's hash order, which is not imitated;
//   - sets: an intset (of the narrowest width holding every member: Redis
//     never narrows one after deletions) or the plain SET encoding.
//
//   - streams: STREAM_LISTPACKS_2, each node's listpack as Redis lays it
//     out (stream_dump.go).
//
// RESTORE (restore.go) reads every encoding Redis 7.0 writes or still
// loads.

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// RDB object types (Redis 7.0's rdb.h).
const (
	rdbTypeString         = 0
	rdbTypeList           = 1
	rdbTypeSet            = 2
	rdbTypeZSet           = 3
	rdbTypeHash           = 4
	rdbTypeZSet2          = 5
	rdbTypeHashZipmap     = 9
	rdbTypeListZiplist    = 10
	rdbTypeSetIntset      = 11
	rdbTypeZSetZiplist    = 12
	rdbTypeHashZiplist    = 13
	rdbTypeListQuicklist  = 14
	rdbTypeStreamListpack = 15
	rdbTypeHashListpack   = 16
	rdbTypeZSetListpack   = 17
	rdbTypeListQuicklist2 = 18
)

// rdbVersion is Redis 7.0's RDB_VERSION: DUMP stamps it, RESTORE refuses
// newer payloads.
const rdbVersion = 10

// RDB length and string encodings.
const (
	rdbLen6     = 0    // 00xxxxxx
	rdbLen14    = 1    // 01xxxxxx xxxxxxxx
	rdbLen32    = 0x80 // then 4 bytes big-endian
	rdbLen64    = 0x81 // then 8 bytes big-endian
	rdbEncInt8  = 0xc0
	rdbEncInt16 = 0xc1
	rdbEncInt32 = 0xc2
	rdbEncLZF   = 0xc3
)

// Quicklist node containers in QUICKLIST_2.
const (
	quicklistPlain  = 1
	quicklistPacked = 2
)

// listpack / quicklist limits of Redis 7.0's defaults.
const (
	quicklistNodeMaxBytes = 8192 // list-max-listpack-size -2
	rdbCompressMinLen     = 20   // strings longer than this are tried with LZF
)

func init() {
	register(
		&Command{Name: "dump", Arity: 2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Returns a serialized version of the value stored at the specified key.", run: cmdDump},
		&Command{Name: "restore", Arity: -4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Creates a key using the provided serialized value, previously obtained using DUMP.", run: cmdRestore},
	)
}

func cmdDump(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	v := s.lookup(e, args[1])
	if v == nil {
		return resp.AppendNull(dst)
	}
	p, ok := dumpPayload(v)
	if !ok {
		return resp.AppendError(dst, "ERR gomu: DUMP of a "+v.kind.String()+" is not supported yet")
	}
	return resp.AppendBulk(dst, p)
}

// dumpPayload is v's DUMP payload; false for a kind without a
// serialization.
func dumpPayload(v *value) ([]byte, bool) {
	typ, body, ok := dumpObject(v)
	if !ok {
		return nil, false
	}
	p := make([]byte, 0, 1+len(body)+10)
	p = append(p, typ)
	p = append(p, body...)
	return AppendDumpFooter(p), true
}

// dumpObject is v's RDB type and encoding; false for a kind without a
// serialization.
func dumpObject(v *value) (typ byte, body []byte, ok bool) {
	switch v.kind {
	case kindString:
		return rdbTypeString, appendRDBString(nil, v.str), true
	case kindList:
		return rdbTypeListQuicklist2, dumpList(v.list), true
	case kindSet:
		if v.set.intset {
			return rdbTypeSetIntset, appendRDBString(nil, buildIntset(v.set.members)), true
		}
		return rdbTypeSet, dumpSet(v.set), true
	case kindHash:
		if encodingOf(v) == "listpack" {
			return rdbTypeHashListpack, appendRDBString(nil, hashListpack(v.hash)), true
		}
		return rdbTypeHash, dumpHash(v.hash), true
	case kindZSet:
		if encodingOf(v) == "listpack" {
			return rdbTypeZSetListpack, appendRDBString(nil, zsetListpack(v.zset)), true
		}
		return rdbTypeZSet2, dumpZSet(v.zset), true
	case kindStream:
		return rdbTypeStreamListpack2, dumpStream(v.stream), true
	}
	return 0, nil, false
}

// appendRDBLen appends n in RDB's length encoding.
func appendRDBLen(dst []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(dst, byte(n))
	case n < 1<<14:
		return append(dst, byte(n>>8)|rdbLen14<<6, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, rdbLen32), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, rdbLen64), n)
}

// appendRDBString appends s as Redis's rdbSaveRawString does: an integer
// encoding when s (at most 11 bytes) is the canonical text of a 32-bit
// integer, LZF when s is longer than 20 bytes and shrinks by 4 or more,
// else its length and bytes.
func appendRDBString(dst, s []byte) []byte {
	if len(s) <= 11 {
		if n, ok := collInt(s); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return appendRDBInt(dst, n)
		}
	}
	if len(s) > rdbCompressMinLen {
		if c := lzfCompress(s, len(s)-4); c != nil {
			dst = append(dst, rdbEncLZF)
			dst = appendRDBLen(dst, uint64(len(c)))
			dst = appendRDBLen(dst, uint64(len(s)))
			return append(dst, c...)
		}
	}
	dst = appendRDBLen(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendRDBInt appends n, which fits in 32 bits, in the narrowest of RDB's
// integer string encodings.
func appendRDBInt(dst []byte, n int64) []byte {
	switch {
	case n >= math.MinInt8 && n <= math.MaxInt8:
		return append(dst, rdbEncInt8, byte(n))
	case n >= math.MinInt16 && n <= math.MaxInt16:
		return binary.LittleEndian.AppendUint16(append(dst, rdbEncInt16), uint16(n))
	}
	return binary.LittleEndian.AppendUint32(append(dst, rdbEncInt32), uint32(n))
}

// dumpList encodes l as QUICKLIST_2: packed nodes cut where RPUSH would
// start a new node.
func dumpList(l *listValue) []byte {
	elems := l.elems()
	var bounds [][2]int
	eachQuicklistNode(elems, func(start, end, _ int) { bounds = append(bounds, [2]int{start, end}) })
	body := appendRDBLen(nil, uint64(len(bounds)))
	for _, b := range bounds {
		body = appendRDBLen(body, quicklistPacked)
		body = appendRDBString(body, buildListpack(elems[b[0]:b[1]]))
	}
	return body
}

// eachQuicklistNode calls fn with the bounds of each node (elems[start:end])
// and its listpack's size, for the nodes Redis 7.0's quicklist makes when
// elems are pushed at the tail one by one: an element joins the tail node
// while the node's listpack plus the element plus Redis's estimate of its
// entry overhead stays within 8 kB.
func eachQuicklistNode(elems [][]byte, fn func(start, end, size int)) {
	start, size := 0, 0 // the tail node's first element and listpack bytes
	for i, x := range elems {
		if i > start && size+len(x)+quicklistEntryOverhead(len(x)) <= quicklistNodeMaxBytes {
			size += listpackEntrySize(x)
			continue
		}
		if i > start {
			fn(start, i, size)
		}
		start, size = i, listpackHeaderSize+1+listpackEntrySize(x)
	}
	if len(elems) > start {
		fn(start, len(elems), size)
	}
}

// quicklistEntryOverhead is the overhead Redis 7.0.15's
// _quicklistNodeAllowInsert adds to an element's length when it estimates
// the node's growth (SIZE_ESTIMATE_OVERHEAD: an overestimate).
func quicklistEntryOverhead(int) int { return 8 }

// buildIntset encodes members, all canonical integers, as an intset: its
// width (2, 4 or 8 bytes, the narrowest that holds all), its length and
// the values in ascending order, little-endian.
func buildIntset(members []string) []byte {
	vals := make([]int64, len(members))
	width := 2
	for i, m := range members {
		n, _ := collInt([]byte(m))
		vals[i] = n
		switch {
		case n < math.MinInt32 || n > math.MaxInt32:
			width = 8
		case (n < math.MinInt16 || n > math.MaxInt16) && width < 4:
			width = 4
		}
	}
	slices.Sort(vals)
	b := binary.LittleEndian.AppendUint32(nil, uint32(width))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vals)))
	for _, n := range vals {
		switch width {
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(n))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
		default:
			b = binary.LittleEndian.AppendUint64(b, uint64(n))
		}
	}
	return b
}

// dumpSet encodes a hash-table set: its size and members (in slice order:
// Redis's would be its hash order).
func dumpSet(st *setValue) []byte {
	body := appendRDBLen(nil, uint64(st.len()))
	for _, m := range st.members {
		body = appendRDBString(body, []byte(m))
	}
	return body
}

// dumpHash encodes a hash-table hash: its size, then fields and values.
func dumpHash(h *hashValue) []byte {
	body := appendRDBLen(nil, uint64(h.len()))
	h.each(func(en *hashEntry) {
		body = appendRDBString(body, []byte(en.field))
		body = appendRDBString(body, en.val)
	})
	return body
}

// hashListpack is h as a listpack of field, value, field, value …
func hashListpack(h *hashValue) []byte {
	elems := make([][]byte, 0, 2*h.len())
	h.each(func(en *hashEntry) { elems = append(elems, []byte(en.field), en.val) })
	return buildListpack(elems)
}

// dumpZSet encodes a skiplist sorted set as ZSET_2: its size, then members
// from the highest to the lowest (so that loading inserts each at the
// head), each with its score as a binary little-endian double.
func dumpZSet(z *zsetValue) []byte {
	ents := make([]zentry, 0, z.len())
	z.each(func(en zentry) { ents = append(ents, en) })
	body := appendRDBLen(nil, uint64(len(ents)))
	for i := len(ents) - 1; i >= 0; i-- {
		body = appendRDBString(body, []byte(ents[i].member))
		body = binary.LittleEndian.AppendUint64(body, math.Float64bits(ents[i].score))
	}
	return body
}

// zsetListpack is z as a listpack of member, score, … in score order, each
// score written as Redis's d2string writes it.
func zsetListpack(z *zsetValue) []byte {
	elems := make([][]byte, 0, 2*z.len())
	z.each(func(en zentry) { elems = append(elems, []byte(en.member), d2string(nil, en.score)) })
	return buildListpack(elems)
}

// d2string appends d as Redis's d2string: integral values within ±2^52 as
// integers, others as "%.17g", infinities as "inf" and "-inf".
func d2string(dst []byte, d float64) []byte {
	switch {
	case math.IsInf(d, 0):
		return formatScore(dst, d)
	case d == 0:
		if math.Signbit(d) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	case d > -4503599627370495 && d < 4503599627370496 && d == math.Trunc(d):
		return strconv.AppendInt(dst, int64(d), 10)
	}
	return formatScore(dst, d)
}
