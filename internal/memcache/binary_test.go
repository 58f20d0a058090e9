package memcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

// bReq is a binary request of a test; "$" in key stands for a prefix
// unique to the run.
type bReq struct {
	op     Opcode
	key    string
	ext    []byte
	val    string
	cas    uint64
	opaque uint32
	// raw, when set, is sent instead (no "$" substitution).
	raw []byte
}

func (r bReq) encode(prefix string) []byte {
	if r.raw != nil {
		return r.raw
	}
	key := strings.ReplaceAll(r.key, "$", prefix)
	b := make([]byte, binaryHeaderLen, binaryHeaderLen+len(r.ext)+len(key)+len(r.val))
	b[0] = binaryReqMagic
	b[1] = byte(r.op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(r.ext))
	binary.BigEndian.PutUint32(b[8:], uint32(len(r.ext)+len(key)+len(r.val)))
	binary.BigEndian.PutUint32(b[12:], r.opaque)
	binary.BigEndian.PutUint64(b[16:], r.cas)
	b = append(b, r.ext...)
	b = append(b, key...)
	return append(b, r.val...)
}

// bResp is an expected response. A nil body means the status's text for
// an error, nothing for success.
type bResp struct {
	op     Opcode
	status BinaryStatus
	ext    []byte
	key    string
	val    string
	cas    uint64
	opaque uint32
}

func (r bResp) encode(prefix string) []byte {
	key := strings.ReplaceAll(r.key, "$", prefix)
	val := strings.ReplaceAll(r.val, "$", prefix)
	b := make([]byte, binaryHeaderLen)
	b[0] = binaryRespMagic
	b[1] = byte(r.op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(r.ext))
	binary.BigEndian.PutUint16(b[6:], uint16(r.status))
	binary.BigEndian.PutUint32(b[8:], uint32(len(r.ext)+len(key)+len(val)))
	binary.BigEndian.PutUint32(b[12:], r.opaque)
	binary.BigEndian.PutUint64(b[16:], r.cas)
	b = append(b, r.ext...)
	b = append(b, key...)
	return append(b, val...)
}

func u32b(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// setExt is the extras of Set, Add and Replace.
func setExt(flags, exptime uint32) []byte { return append(u32b(flags), u32b(exptime)...) }

// arExt is the extras of Increment and Decrement.
func arExt(delta, initial uint64, exptime uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return binary.BigEndian.AppendUint32(b, exptime)
}

func be64(v uint64) string { return string(binary.BigEndian.AppendUint64(nil, v)) }

// errResp is the response to a failed request.
func errResp(op Opcode, st BinaryStatus, opaque uint32) bResp {
	return bResp{op: op, status: st, val: st.String(), opaque: opaque}
}

type binCase struct {
	name  string
	in    []bReq
	want  []bResp
	close bool // the server closes the connection after want
	real  bool // real memcached 1.6.18 answers the same, CAS values aside
}

const syncOpaque = 0xfeedface

var bigValue = strings.Repeat("x", DefaultMaxValueLen+1)

var binCases = []binCase{
	{name: "set get getk", real: true,
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(5, 0), val: "hello", opaque: 1},
			{op: OpcodeGet, key: "$k", opaque: 2},
			{op: OpcodeGetK, key: "$k", opaque: 3},
			{op: OpcodeGetQ, key: "$k", opaque: 4},
			{op: OpcodeGetKQ, key: "$k", opaque: 5},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			{op: OpcodeGet, ext: u32b(5), val: "hello", opaque: 2, cas: 1},
			{op: OpcodeGetK, ext: u32b(5), key: "$k", val: "hello", opaque: 3, cas: 1},
			{op: OpcodeGetQ, ext: u32b(5), val: "hello", opaque: 4, cas: 1},
			{op: OpcodeGetKQ, ext: u32b(5), key: "$k", val: "hello", opaque: 5, cas: 1},
		}},
	{name: "misses", real: true,
		in: []bReq{
			{op: OpcodeGet, key: "$m", opaque: 1},
			{op: OpcodeGetK, key: "$m", opaque: 2},
			{op: OpcodeGetQ, key: "$m", opaque: 3},
			{op: OpcodeGetKQ, key: "$m", opaque: 4},
			{op: OpcodeTouch, key: "$m", ext: u32b(10), opaque: 5},
			{op: OpcodeGAT, key: "$m", ext: u32b(10), opaque: 6},
			{op: OpcodeGATK, key: "$m", ext: u32b(10), opaque: 7},
			{op: OpcodeGATQ, key: "$m", ext: u32b(10), opaque: 8},
			{op: OpcodeGATKQ, key: "$m", ext: u32b(10), opaque: 9},
		},
		want: []bResp{
			errResp(OpcodeGet, BinaryKeyNotFound, 1),
			{op: OpcodeGetK, status: BinaryKeyNotFound, key: "$m", opaque: 2},
			errResp(OpcodeTouch, BinaryKeyNotFound, 5),
			errResp(OpcodeGAT, BinaryKeyNotFound, 6),
			{op: OpcodeGATK, status: BinaryKeyNotFound, key: "$m", opaque: 7},
		}},
	{name: "touch gat", real: true,
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(7, 0), val: "v", opaque: 1},
			{op: OpcodeTouch, key: "$k", ext: u32b(100), opaque: 2},
			{op: OpcodeGAT, key: "$k", ext: u32b(100), opaque: 3},
			{op: OpcodeGATQ, key: "$k", ext: u32b(100), opaque: 4},
			{op: OpcodeGATK, key: "$k", ext: u32b(100), opaque: 5},
			{op: OpcodeGATKQ, key: "$k", ext: u32b(100), opaque: 6},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			{op: OpcodeTouch, ext: u32b(7), opaque: 2, cas: 1},
			{op: OpcodeGAT, ext: u32b(7), val: "v", opaque: 3, cas: 1},
			{op: OpcodeGATQ, ext: u32b(7), val: "v", opaque: 4, cas: 1},
			{op: OpcodeGATK, ext: u32b(7), key: "$k", val: "v", opaque: 5, cas: 1},
			{op: OpcodeGATKQ, ext: u32b(7), key: "$k", val: "v", opaque: 6, cas: 1},
		}},
	{name: "add replace", real: true,
		in: []bReq{
			{op: OpcodeReplace, key: "$k", ext: setExt(0, 0), val: "r", opaque: 1},
			{op: OpcodeAdd, key: "$k", ext: setExt(0, 0), val: "a", opaque: 2},
			{op: OpcodeAdd, key: "$k", ext: setExt(0, 0), val: "b", opaque: 3},
			{op: OpcodeAddQ, key: "$k", ext: setExt(0, 0), val: "b", opaque: 4},
			{op: OpcodeReplaceQ, key: "$k", ext: setExt(3, 0), val: "c", opaque: 5},
			{op: OpcodeReplaceQ, key: "$n", ext: setExt(3, 0), val: "c", opaque: 6},
			{op: OpcodeAddQ, key: "$n", ext: setExt(0, 0), val: "d", opaque: 7},
			{op: OpcodeGet, key: "$k", opaque: 8},
		},
		want: []bResp{
			errResp(OpcodeReplace, BinaryKeyNotFound, 1),
			{op: OpcodeAdd, opaque: 2, cas: 1},
			errResp(OpcodeAdd, BinaryKeyExists, 3),
			errResp(OpcodeAddQ, BinaryKeyExists, 4),
			errResp(OpcodeReplaceQ, BinaryKeyNotFound, 6),
			{op: OpcodeGet, ext: u32b(3), val: "c", opaque: 8, cas: 2},
		}},
	{name: "cas", real: true,
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", cas: 99, opaque: 1},
			{op: OpcodeAdd, key: "$k", ext: setExt(0, 0), val: "a", cas: 99, opaque: 2},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 3},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "b", cas: 1 << 40, opaque: 4},
			{op: OpcodeAdd, key: "$k", ext: setExt(0, 0), val: "b", cas: 1 << 40, opaque: 5},
			{op: OpcodeAppend, key: "$k", val: "b", cas: 1 << 40, opaque: 6},
			{op: OpcodeAppend, key: "$n", val: "b", cas: 1 << 40, opaque: 7},
			{op: OpcodeDelete, key: "$k", cas: 1 << 40, opaque: 8},
			{op: OpcodeIncrement, key: "$k", ext: arExt(1, 0, 0), cas: 1 << 40, opaque: 9},
		},
		want: []bResp{
			errResp(OpcodeSet, BinaryKeyNotFound, 1),
			errResp(OpcodeAdd, BinaryKeyNotFound, 2),
			{op: OpcodeSet, opaque: 3, cas: 1},
			errResp(OpcodeSet, BinaryKeyExists, 4),
			errResp(OpcodeAdd, BinaryKeyExists, 5),
			errResp(OpcodeAppend, BinaryKeyExists, 6),
			errResp(OpcodeAppend, BinaryItemNotStored, 7),
			errResp(OpcodeDelete, BinaryKeyExists, 8),
			errResp(OpcodeIncrement, BinaryKeyExists, 9),
		}},
	{name: "cas match", // the CAS values are the embedded server's
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "1", opaque: 1},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "2", cas: 1, opaque: 2},
			{op: OpcodeAppend, key: "$k", val: "3", cas: 2, opaque: 3},
			{op: OpcodeIncrement, key: "$k", ext: arExt(1, 0, 0), cas: 3, opaque: 4},
			{op: OpcodeReplace, key: "$k", ext: setExt(0, 0), val: "5", cas: 4, opaque: 5},
			{op: OpcodeDelete, key: "$k", cas: 5, opaque: 6},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			{op: OpcodeSet, opaque: 2, cas: 2},
			{op: OpcodeAppend, opaque: 3, cas: 3},
			{op: OpcodeIncrement, val: be64(24), opaque: 4, cas: 4},
			{op: OpcodeReplace, opaque: 5, cas: 5},
			{op: OpcodeDelete, opaque: 6},
		}},
	{name: "append prepend", real: true,
		in: []bReq{
			{op: OpcodeAppend, key: "$k", val: "z", opaque: 1},
			{op: OpcodeSet, key: "$k", ext: setExt(3, 0), val: "m", opaque: 2},
			{op: OpcodeAppend, key: "$k", val: "z", opaque: 3},
			{op: OpcodePrependQ, key: "$k", val: "a", opaque: 4},
			{op: OpcodeAppendQ, key: "$n", val: "a", opaque: 5},
			{op: OpcodeGet, key: "$k", opaque: 6},
		},
		want: []bResp{
			errResp(OpcodeAppend, BinaryItemNotStored, 1),
			{op: OpcodeSet, opaque: 2, cas: 1},
			{op: OpcodeAppend, opaque: 3, cas: 2},
			errResp(OpcodeAppendQ, BinaryItemNotStored, 5),
			{op: OpcodeGet, ext: u32b(3), val: "amz", opaque: 6, cas: 3},
		}},
	{name: "delete", real: true,
		in: []bReq{
			{op: OpcodeDelete, key: "$k", opaque: 1},
			{op: OpcodeDeleteQ, key: "$k", opaque: 2},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 3},
			{op: OpcodeDelete, key: "$k", opaque: 4},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 5},
			{op: OpcodeDeleteQ, key: "$k", opaque: 6},
			{op: OpcodeGet, key: "$k", opaque: 7},
		},
		want: []bResp{
			errResp(OpcodeDelete, BinaryKeyNotFound, 1),
			errResp(OpcodeDeleteQ, BinaryKeyNotFound, 2),
			{op: OpcodeSet, opaque: 3, cas: 1},
			{op: OpcodeDelete, opaque: 4},
			{op: OpcodeSet, opaque: 5, cas: 2},
			errResp(OpcodeGet, BinaryKeyNotFound, 7),
		}},
	{name: "incr decr", real: true,
		in: []bReq{
			{op: OpcodeIncrement, key: "$n", ext: arExt(1, 10, 0xffffffff), opaque: 1},
			{op: OpcodeIncrement, key: "$n", ext: arExt(1, 10, 0), opaque: 2},
			{op: OpcodeIncrement, key: "$n", ext: arExt(5, 10, 0), opaque: 3},
			{op: OpcodeDecrement, key: "$n", ext: arExt(100, 10, 0), opaque: 4},
			{op: OpcodeGet, key: "$n", opaque: 5},
			{op: OpcodeIncrementQ, key: "$n", ext: arExt(1<<62, 0, 0), opaque: 6},
			{op: OpcodeDecrementQ, key: "$m", ext: arExt(1, 7, 0xffffffff), opaque: 7},
			{op: OpcodeDecrementQ, key: "$m", ext: arExt(1, 7, 0), opaque: 8},
			{op: OpcodeDecrement, key: "$n", ext: arExt(1<<63, 0, 0), opaque: 9},
			{op: OpcodeGet, key: "$m", opaque: 10},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "x1", opaque: 11},
			{op: OpcodeIncrement, key: "$k", ext: arExt(1, 0, 0), opaque: 12},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), opaque: 13},
			{op: OpcodeDecrementQ, key: "$k", ext: arExt(1, 0, 0), cas: 1 << 40, opaque: 14},
		},
		want: []bResp{
			errResp(OpcodeIncrement, BinaryKeyNotFound, 1),
			{op: OpcodeIncrement, val: be64(10), opaque: 2, cas: 1},
			{op: OpcodeIncrement, val: be64(15), opaque: 3, cas: 2},
			{op: OpcodeDecrement, val: be64(0), opaque: 4, cas: 3},
			{op: OpcodeGet, ext: u32b(0), val: "0 ", opaque: 5, cas: 3}, // rewritten in place
			errResp(OpcodeDecrementQ, BinaryKeyNotFound, 7),
			{op: OpcodeDecrement, val: be64(0), opaque: 9, cas: 6},
			{op: OpcodeGet, ext: u32b(0), val: "7", opaque: 10, cas: 5},
			{op: OpcodeSet, opaque: 11, cas: 7},
			errResp(OpcodeIncrement, BinaryNonNumeric, 12),
			{op: OpcodeSet, opaque: 13, cas: 8},
			errResp(OpcodeDecrementQ, BinaryNonNumeric, 14), // before the CAS
		}},
	{name: "incr wraps around", // memcached 1.6.18 may refuse counters of 2^63 or more (see counterMax)
		in: []bReq{
			{op: OpcodeIncrement, key: "$n", ext: arExt(5, 1<<64-1, 0), opaque: 1},
			{op: OpcodeIncrement, key: "$n", ext: arExt(2, 0, 0), opaque: 2},
			{op: OpcodeGet, key: "$n", opaque: 3},
		},
		want: []bResp{
			{op: OpcodeIncrement, val: be64(1<<64 - 1), opaque: 1, cas: 1},
			{op: OpcodeIncrement, val: be64(1), opaque: 2, cas: 2},
			{op: OpcodeGet, ext: u32b(0), val: "1" + strings.Repeat(" ", 19), opaque: 3, cas: 2},
		}},
	{name: "flush", // not against the shared memcached
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 1},
			{op: OpcodeFlush, opaque: 2},
			{op: OpcodeGet, key: "$k", opaque: 3},
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 4},
			{op: OpcodeFlushQ, ext: u32b(0), opaque: 5},
			{op: OpcodeGet, key: "$k", opaque: 6},
			{op: OpcodeFlush, ext: u32b(1000), opaque: 7},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			{op: OpcodeFlush, opaque: 2},
			errResp(OpcodeGet, BinaryKeyNotFound, 3),
			{op: OpcodeSet, opaque: 4, cas: 2},
			errResp(OpcodeGet, BinaryKeyNotFound, 6),
			{op: OpcodeFlush, opaque: 7},
		}},
	{name: "noop version", real: true,
		in:   []bReq{{op: OpcodeNoOp, opaque: 1}, {op: OpcodeVersion, opaque: 2}},
		want: []bResp{{op: OpcodeNoOp, opaque: 1}, {op: OpcodeVersion, val: "1.6.0-gomu", opaque: 2}}},
	{name: "stats groups", real: true,
		in: []bReq{
			{op: OpcodeStat, key: "bogus", opaque: 1},
			{op: OpcodeStat, key: "detail", opaque: 2},
			{op: OpcodeStat, key: "reset", opaque: 3},
			{op: OpcodeStat, key: "detail off", opaque: 4},
		},
		want: []bResp{
			errResp(OpcodeStat, BinaryKeyNotFound, 1),
			errResp(OpcodeStat, BinaryKeyNotFound, 2),
			{op: OpcodeStat, opaque: 3},
			{op: OpcodeStat, opaque: 4},
		}},
	{name: "unknown opcodes", real: true,
		in: []bReq{
			{op: 0x30, opaque: 1},
			{op: 0x25, val: "body", opaque: 2},
			{op: 0x20, opaque: 3},                          // SASL list mechanisms
			{op: 0x21, key: "PLAIN", val: "xx", opaque: 4}, // SASL auth
			{op: 0xff, opaque: 5},
		},
		want: []bResp{
			errResp(0x30, BinaryUnknownCommand, 1),
			errResp(0x25, BinaryUnknownCommand, 2),
			errResp(0x20, BinaryUnknownCommand, 3),
			errResp(0x21, BinaryUnknownCommand, 4),
			errResp(0xff, BinaryUnknownCommand, 5),
		}},
	{name: "verbosity is unknown", // memcached also skips 4 bytes of the next request
		in:   []bReq{{op: OpcodeVerbosity, ext: u32b(1), opaque: 1}},
		want: []bResp{errResp(OpcodeVerbosity, BinaryUnknownCommand, 1)}},
	{name: "too large", real: true,
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "v", opaque: 1},
			{op: OpcodeAdd, key: "$k", ext: setExt(0, 0), val: bigValue, opaque: 2},
			{op: OpcodeAppendQ, key: "$k", val: bigValue, opaque: 3},
			{op: OpcodeGet, key: "$k", opaque: 4},
			{op: OpcodeSetQ, key: "$k", ext: setExt(0, 0), val: bigValue, opaque: 5},
			{op: OpcodeGet, key: "$k", opaque: 6},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			errResp(OpcodeAdd, BinaryValueTooLarge, 2),
			errResp(OpcodeAppendQ, BinaryValueTooLarge, 3),
			{op: OpcodeGet, ext: u32b(0), val: "v", opaque: 4, cas: 1},
			errResp(OpcodeSetQ, BinaryValueTooLarge, 5), // and the item is gone
			errResp(OpcodeGet, BinaryKeyNotFound, 6),
		}},
	{name: "key of 250 bytes", real: true,
		in:   []bReq{{op: OpcodeGet, key: strings.Repeat("k", 250), opaque: 1}},
		want: []bResp{errResp(OpcodeGet, BinaryKeyNotFound, 1)}},
	{name: "key of 251 bytes", real: true, close: true,
		in:   []bReq{{op: OpcodeGet, key: strings.Repeat("k", 251), opaque: 1}, {op: OpcodeNoOp}},
		want: []bResp{errResp(OpcodeGet, BinaryInvalidArguments, 1)}},
	{name: "key longer than body", real: true, close: true,
		in: []bReq{{raw: func() []byte {
			b := bReq{op: OpcodeGet, key: "abcde", opaque: 1}.encode("")
			binary.BigEndian.PutUint32(b[8:], 1)
			return b[:25]
		}()}, {op: OpcodeNoOp}},
		want: []bResp{errResp(OpcodeGet, BinaryUnknownCommand, 1)}},
	{name: "bad magic later", real: true, close: true,
		in: []bReq{{op: OpcodeNoOp, opaque: 1}, {raw: func() []byte {
			b := bReq{op: OpcodeNoOp, opaque: 2}.encode("")
			b[0] = 0x81
			return b
		}()}, {op: OpcodeNoOp, opaque: 3}},
		want: []bResp{{op: OpcodeNoOp, opaque: 1}}},
	{name: "quit", real: true, close: true,
		in:   []bReq{{op: OpcodeSet, key: "$k", ext: setExt(0, 0), val: "a", opaque: 1}, {op: OpcodeQuit, opaque: 2}, {op: OpcodeNoOp}},
		want: []bResp{{op: OpcodeSet, opaque: 1, cas: 1}, {op: OpcodeQuit, opaque: 2}}},
	{name: "quitq", real: true, close: true,
		in:   []bReq{{op: OpcodeSetQ, key: "$k", ext: setExt(0, 0), val: "a", opaque: 1}, {op: OpcodeQuitQ, opaque: 2}, {op: OpcodeNoOp}},
		want: nil},
	{name: "touch body longer than its extras and key", real: true,
		// The rest of the body is read as the next request: here a NoOp.
		in: []bReq{
			{op: OpcodeSet, key: "$k", ext: setExt(1, 0), val: "a", opaque: 1},
			{op: OpcodeTouch, key: "$k", ext: u32b(0), val: string(bReq{op: OpcodeNoOp, opaque: 3}.encode("")), opaque: 2},
		},
		want: []bResp{
			{op: OpcodeSet, opaque: 1, cas: 1},
			{op: OpcodeTouch, ext: u32b(1), opaque: 2, cas: 1},
			{op: OpcodeNoOp, opaque: 3},
		}},
	{name: "datatype and vbucket ignored", real: true,
		in: []bReq{{raw: func() []byte {
			b := bReq{op: OpcodeNoOp, opaque: 1}.encode("")
			b[5], b[6], b[7] = 1, 2, 3
			return b
		}()}},
		want: []bResp{{op: OpcodeNoOp, opaque: 1}}},
}

// invalidCases each send one request that memcached refuses with Invalid
// arguments, closing the connection.
var invalidCases = []bReq{
	{op: OpcodeGet, key: "k", ext: u32b(1)},
	{op: OpcodeGet},
	{op: OpcodeGetQ, key: "k", val: "v"},
	{op: OpcodeSet, key: "k", ext: u32b(1)},
	{op: OpcodeSet, ext: setExt(0, 0), val: "v"},
	{op: OpcodeAdd, key: "k", val: "v"},
	{op: OpcodeAppend, val: "v"},
	{op: OpcodeAppend, key: "k", ext: u32b(1)},
	{op: OpcodeDelete, key: "k", ext: u32b(1)},
	{op: OpcodeDelete, key: "k", val: "v"},
	{op: OpcodeIncrement, key: "k", ext: u32b(1)},
	{op: OpcodeDecrement, key: "k", ext: arExt(1, 1, 1), val: "x"},
	{op: OpcodeIncrement, ext: arExt(1, 1, 1)},
	{op: OpcodeNoOp, val: "x"},
	{op: OpcodeVersion, key: "k"},
	{op: OpcodeQuit, ext: u32b(1)},
	{op: OpcodeFlush, ext: []byte{0, 0}},
	{op: OpcodeFlush, key: "k"},
	{op: OpcodeFlush, ext: u32b(1), val: "x"},
	{op: OpcodeStat, ext: u32b(1)},
	{op: OpcodeTouch, key: "k"},
	{op: OpcodeGAT, ext: u32b(1)},
	{op: OpcodeGATKQ, key: "k", ext: setExt(0, 0)},
}

func init() {
	for i, r := range invalidCases {
		r.opaque = uint32(100 + i)
		binCases = append(binCases, binCase{
			name: fmt.Sprintf("invalid %#02x %d", byte(r.op), i), real: true, close: true,
			in:   []bReq{r, {op: OpcodeNoOp}},
			want: []bResp{errResp(r.op, BinaryInvalidArguments, r.opaque)},
		})
	}
}

func TestBinaryEmbedded(t *testing.T) {
	t.Parallel()
	for _, tc := range binCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ListenAndServe("127.0.0.1:0", Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			runBinCase(t, s.Addr(), tc, false)
		})
	}
}

// TestBinaryMemcached checks the same table against a real memcached.
func TestBinaryMemcached(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	addr := memcachedtest.Addr(t)
	for _, tc := range binCases {
		if tc.real {
			t.Run(tc.name, func(t *testing.T) { runBinCase(t, addr, tc, true) })
		}
	}
}

// runBinCase sends the requests, then (unless the case closes) a NoOp whose
// response marks the end, and compares what comes back: byte for byte, or
// against a real memcached with CAS values numbered in order of appearance
// and the version text dropped.
func runBinCase(t *testing.T, addr string, tc binCase, real bool) {
	t.Helper()
	prefix := fmt.Sprintf("b%x-", rand.Uint64())
	var in, want []byte
	for _, r := range tc.in {
		in = append(in, r.encode(prefix)...)
	}
	for _, r := range tc.want {
		want = append(want, r.encode(prefix)...)
	}
	if !tc.close {
		in = append(in, bReq{op: OpcodeNoOp, opaque: syncOpaque}.encode("")...)
		want = append(want, bResp{op: OpcodeNoOp, opaque: syncOpaque}.encode("")...)
	}
	got := exchange(t, addr, in, tc.close)
	if real {
		got, want = normalizeBinary(t, got), normalizeBinary(t, want)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", dumpPackets(got), dumpPackets(want))
	}
}

// exchange writes in and reads until the sync NoOp's response or, when the
// server is to close, the end of the connection.
func exchange(t *testing.T, addr string, in []byte, closes bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(in)
		werr <- err
	}()
	br := bufio.NewReader(c)
	var got []byte
	for {
		p, err := readPacket(br)
		if err != nil {
			if !closes || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after %d bytes: read: %v", len(got), err)
			}
			break
		}
		got = append(got, p...)
		if !closes && p[1] == byte(OpcodeNoOp) && binary.BigEndian.Uint32(p[12:]) == syncOpaque {
			break
		}
	}
	if err := <-werr; err != nil && !closes {
		t.Fatalf("write: %v", err)
	}
	return got
}

func readPacket(br *bufio.Reader) ([]byte, error) {
	p := make([]byte, binaryHeaderLen)
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(p[8:])
	if n > 16<<20 {
		return nil, fmt.Errorf("response body of %d bytes: %x", n, p)
	}
	p = append(p, make([]byte, n)...)
	if _, err := io.ReadFull(br, p[binaryHeaderLen:]); err != nil {
		return nil, err
	}
	return p, nil
}

// normalizeBinary numbers CAS values in order of first appearance, drops
// the body of Version responses and the statistics of a Stat list (keeping
// its end).
func normalizeBinary(t *testing.T, b []byte) []byte {
	t.Helper()
	cas := map[uint64]uint64{0: 0}
	var out []byte
	for len(b) > 0 {
		if len(b) < binaryHeaderLen {
			t.Fatalf("truncated packet %x", b)
		}
		n := binaryHeaderLen + int(binary.BigEndian.Uint32(b[8:]))
		p := append([]byte(nil), b[:n]...)
		b = b[n:]
		if Opcode(p[1]) == OpcodeStat && binary.BigEndian.Uint16(p[2:]) > 0 {
			continue
		}
		if Opcode(p[1]) == OpcodeVersion {
			p = p[:binaryHeaderLen]
			binary.BigEndian.PutUint32(p[8:], 0)
		}
		c := binary.BigEndian.Uint64(p[16:])
		if _, ok := cas[c]; !ok {
			cas[c] = uint64(len(cas))
		}
		binary.BigEndian.PutUint64(p[16:], cas[c])
		out = append(out, p...)
	}
	return out
}

func dumpPackets(b []byte) string {
	var sb strings.Builder
	for len(b) >= binaryHeaderLen {
		n := min(len(b), binaryHeaderLen+int(binary.BigEndian.Uint32(b[8:])))
		p := b[:n]
		b = b[n:]
		fmt.Fprintf(&sb, "  op=%#02x key=%d ext=%d status=%#04x body=%d opaque=%#x cas=%d %.80q\n",
			p[1], binary.BigEndian.Uint16(p[2:]), p[4], binary.BigEndian.Uint16(p[6:]),
			binary.BigEndian.Uint32(p[8:]), binary.BigEndian.Uint32(p[12:]), binary.BigEndian.Uint64(p[16:]), p[binaryHeaderLen:])
	}
	if len(b) > 0 {
		fmt.Fprintf(&sb, "  rest %x\n", b)
	}
	return sb.String()
}

// TestBinaryWire pins the bytes of a few exchanges, independently of the
// test encoders above.
func TestBinaryWire(t *testing.T) {
	s := startServer(t, Config{})
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	in := unhex("80 01 0001 08 00 0000 0000000b 00000011 0000000000000000 000000ff 00000000 6b 6869" + // Set k=hi flags 255
		"80 0c 0001 00 00 0000 00000001 00000012 0000000000000000 6b" + // GetK k
		"80 05 0001 14 00 0000 00000015 00000013 0000000000000000 0000000000000001 0000000000000000 ffffffff 6b" + // Incr k: non-numeric
		"80 0a 0000 00 00 0000 00000000 feedface 0000000000000000") // NoOp
	want := unhex("81 01 0000 00 00 0000 00000000 00000011 0000000000000001" +
		"81 0c 0001 04 00 0000 00000007 00000012 0000000000000001 000000ff 6b 6869" +
		"81 05 0000 00 00 0006 0000002e 00000013 0000000000000000" + hex.EncodeToString([]byte("Non-numeric server-side value for incr or decr")) +
		"81 0a 0000 00 00 0000 00000000 feedface 0000000000000000")
	if got := exchange(t, s.Addr(), in, false); !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", dumpPackets(got), dumpPackets(want))
	}
}

func TestBinaryStat(t *testing.T) {
	s := startServer(t, Config{})
	in := append(bReq{op: OpcodeSet, key: "k", ext: setExt(0, 0), val: "v"}.encode(""), bReq{op: OpcodeStat, opaque: 7}.encode("")...)
	in = append(in, bReq{op: OpcodeNoOp, opaque: syncOpaque}.encode("")...)
	got := exchange(t, s.Addr(), in, false)
	var names []string
	stats := map[string]string{}
	for b := got[binaryHeaderLen:]; len(b) > 0; {
		n := binaryHeaderLen + int(binary.BigEndian.Uint32(b[8:]))
		p := b[:n]
		b = b[n:]
		if Opcode(p[1]) != OpcodeStat {
			continue
		}
		if binary.BigEndian.Uint32(p[12:]) != 7 || binary.BigEndian.Uint16(p[6:]) != 0 {
			t.Fatalf("stat packet %x", p)
		}
		kl := int(binary.BigEndian.Uint16(p[2:]))
		name := string(p[binaryHeaderLen : binaryHeaderLen+kl])
		names = append(names, name)
		stats[name] = string(p[binaryHeaderLen+kl:])
	}
	if len(names) == 0 || names[len(names)-1] != "" {
		t.Fatalf("no end of list: %q", names)
	}
	// The same list, in the same order, as the text protocol's.
	text := GeneralStats(nil, time.Now(), s.serverStats(), s.store.Stats())
	if len(names) != len(text)/2+1 {
		t.Fatalf("%d binary stats, %d text ones", len(names)-1, len(text)/2)
	}
	for i := 0; i < len(text); i += 2 {
		if names[i/2] != text[i] {
			t.Fatalf("stat %d: %q, text has %q", i/2, names[i/2], text[i])
		}
	}
	if stats["cmd_set"] != "1" || stats["curr_items"] != "1" || stats["version"] != "1.6.0-gomu" {
		t.Errorf("stats: %v", stats)
	}
}

// TestBinaryParseRoundTrip: what AppendRequest gives back parses to the
// same command, and requests parse to the Ops the store expects.
func TestBinaryParseRoundTrip(t *testing.T) {
	reqs := []struct {
		r     bReq
		op    Op
		write bool
	}{
		{bReq{op: OpcodeGet, key: "k"}, OpGet, false},
		{bReq{op: OpcodeGetKQ, key: "k"}, OpGet, false},
		{bReq{op: OpcodeSetQ, key: "k", ext: setExt(3, 100), val: "value", cas: 9}, OpSet, true},
		{bReq{op: OpcodeAdd, key: "k", ext: setExt(3, 100), val: ""}, OpAdd, true},
		{bReq{op: OpcodeReplaceQ, key: "k", ext: setExt(3, 100), val: "v"}, OpReplace, true},
		{bReq{op: OpcodeAppend, key: "k", val: "v"}, OpAppend, true},
		{bReq{op: OpcodePrependQ, key: "k", val: "v"}, OpPrepend, true},
		{bReq{op: OpcodeDeleteQ, key: "k", cas: 4}, OpDelete, true},
		{bReq{op: OpcodeIncrement, key: "k", ext: arExt(5, 6, 7)}, OpIncr, true},
		{bReq{op: OpcodeDecrementQ, key: "k", ext: arExt(5, 6, 0xffffffff)}, OpDecr, true},
		{bReq{op: OpcodeFlushQ, ext: u32b(5)}, OpFlushAll, true},
		{bReq{op: OpcodeFlush}, OpFlushAll, true},
		{bReq{op: OpcodeTouch, key: "k", ext: u32b(5), val: "xyz"}, OpTouch, true},
		{bReq{op: OpcodeGATKQ, key: "k", ext: u32b(5)}, OpGat, true},
		{bReq{op: OpcodeNoOp}, OpNone, false},
		{bReq{op: OpcodeVersion}, OpVersion, false},
		{bReq{op: OpcodeStat, key: "items"}, OpStats, false},
		{bReq{op: OpcodeQuitQ}, OpQuit, false},
	}
	for _, tc := range reqs {
		raw := tc.r.encode("")
		if tc.op == OpTouch {
			raw = raw[:len(raw)-3] // the extra body stays in the stream
		}
		var cmd, again Command
		p := NewBinaryParser(bufio.NewReader(bytes.NewReader(raw)), Limits{})
		if err := p.Parse(&cmd); err != nil {
			t.Fatalf("%#02x: %v", byte(tc.r.op), err)
		}
		if cmd.Op != tc.op || cmd.IsWrite() != tc.write || cmd.Proto != ProtoBinary || cmd.Opcode != tc.r.op {
			t.Errorf("%#02x: op %v write %v, want %v %v", byte(tc.r.op), cmd.Op, cmd.IsWrite(), tc.op, tc.write)
		}
		req := cmd.AppendRequest(nil)
		if tc.op != OpTouch && !bytes.Equal(req, raw) {
			t.Errorf("%#02x: request %x, sent %x", byte(tc.r.op), req, raw)
		}
		p = NewBinaryParser(bufio.NewReader(bytes.NewReader(req)), Limits{})
		if err := p.Parse(&again); err != nil {
			t.Fatalf("%#02x again: %v", byte(tc.r.op), err)
		}
		if fmt.Sprint(again.Op, again.Keys, again.Flags, again.Exptime, again.CAS, again.Delta, again.Initial, string(again.Value), again.NoReply, again.Opcode) !=
			fmt.Sprint(cmd.Op, cmd.Keys, cmd.Flags, cmd.Exptime, cmd.CAS, cmd.Delta, cmd.Initial, string(cmd.Value), cmd.NoReply, cmd.Opcode) {
			t.Errorf("%#02x: reparsed %+v, was %+v", byte(tc.r.op), again, cmd)
		}
		if err := p.Parse(&again); err != io.EOF {
			t.Errorf("%#02x: after the request: %v", byte(tc.r.op), err)
		}
	}
}

func TestBinaryParseErrors(t *testing.T) {
	parse := func(b []byte, lim Limits) (*Command, error, *bufio.Reader) {
		br := bufio.NewReader(bytes.NewReader(b))
		var cmd Command
		err := NewBinaryParser(br, lim).Parse(&cmd)
		return &cmd, err, br
	}
	noop := bReq{op: OpcodeNoOp}.encode("")
	// Too large: skipped, Op and Keys set, the next request intact.
	set := bReq{op: OpcodeSetQ, key: "k", ext: setExt(0, 0), val: "12345", opaque: 9}.encode("")
	cmd, err, br := parse(append(set, noop...), Limits{MaxValueLen: 4})
	if err != ErrTooLarge || cmd.Op != OpSet || string(cmd.Key()) != "k" || cmd.Opaque != 9 {
		t.Fatalf("too large: %v %+v", err, cmd)
	}
	if br.Buffered() != len(noop) {
		t.Errorf("too large: %d bytes left", br.Buffered())
	}
	if got := AppendCommandError(nil, cmd, err); !bytes.Equal(got, errResp(OpcodeSetQ, BinaryValueTooLarge, 9).encode("")) {
		t.Errorf("too large reply %x", got)
	}
	// Unknown: the body skipped.
	cmd, err, br = parse(append(bReq{op: 0x40, key: "key", ext: u32b(1), val: "v"}.encode(""), noop...), Limits{})
	if err != ErrUnknownCommand || br.Buffered() != len(noop) {
		t.Errorf("unknown: %v, %d left", err, br.Buffered())
	}
	if got := AppendCommandError(nil, cmd, err); !bytes.Equal(got, errResp(0x40, BinaryUnknownCommand, 0).encode("")) {
		t.Errorf("unknown reply %x", got)
	}
	// Truncated requests.
	get := bReq{op: OpcodeGet, key: "key"}.encode("")
	for _, n := range []int{1, 23, 24, 26} {
		if _, err, _ := parse(get[:n], Limits{}); err != io.ErrUnexpectedEOF {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err, _ := parse(set[:len(set)-1], Limits{}); err != io.ErrUnexpectedEOF {
		t.Errorf("short value: %v", err)
	}
	if _, err, _ := parse(nil, Limits{}); err != io.EOF {
		t.Errorf("nothing: %v", err)
	}
	// Bad magic: no reply.
	bad := append([]byte{0x81}, noop[1:]...)
	cmd, err, _ = parse(bad, Limits{})
	if err != ErrBinaryBadMagic || !err.(*ProtocolError).Close || len(AppendCommandError(nil, cmd, err)) != 0 {
		t.Errorf("bad magic: %v", err)
	}
}

func TestBinaryFailure(t *testing.T) {
	cmd := &Command{Proto: ProtoBinary, Opcode: OpcodeSetQ, Opaque: 5, NoReply: true}
	msg := "gomu: not the leader leader=2 addr=127.0.0.1:11212"
	want := bResp{op: OpcodeSetQ, status: BinaryTemporaryFailure, val: msg, opaque: 5}.encode("")
	if got := AppendFailure(nil, cmd, msg); !bytes.Equal(got, want) {
		t.Errorf("failure %x, want %x", got, want)
	}
	want = bResp{op: OpcodeSetQ, status: BinaryTemporaryFailure, val: "boom", opaque: 5}.encode("")
	if got := AppendCommandError(nil, cmd, errors.New("boom")); !bytes.Equal(got, want) {
		t.Errorf("other error %x, want %x", got, want)
	}
	want = errResp(OpcodeSetQ, BinaryOutOfMemory, 5).encode("")
	if got := AppendCommandError(nil, cmd, ErrOutOfMemory); !bytes.Equal(got, want) {
		t.Errorf("out of memory %x, want %x", got, want)
	}
}

func TestBinaryOutOfMemory(t *testing.T) {
	st := NewStore(itemSize(1, 10), false)
	run := func(r bReq) []byte {
		var cmd Command
		if err := NewBinaryParser(bufio.NewReader(bytes.NewReader(r.encode(""))), Limits{}).Parse(&cmd); err != nil {
			t.Fatal(err)
		}
		return st.Exec(nil, &cmd, 1)
	}
	if got := run(bReq{op: OpcodeSet, key: "a", ext: setExt(0, 0), val: "0123456789"}); !bytes.Equal(got, bResp{op: OpcodeSet, cas: 1}.encode("")) {
		t.Fatalf("set: %x", got)
	}
	want := bResp{op: OpcodeSet, status: BinaryOutOfMemory, val: "Out of memory allocating item"}.encode("")
	if got := run(bReq{op: OpcodeSet, key: "b", ext: setExt(0, 0), val: "x"}); !bytes.Equal(got, want) {
		t.Errorf("set: %q", got)
	}
	want = bResp{op: OpcodeIncrement, status: BinaryOutOfMemory, val: "Out of memory allocating new item"}.encode("")
	if got := run(bReq{op: OpcodeIncrement, key: "c", ext: arExt(1, 1, 0)}); !bytes.Equal(got, want) {
		t.Errorf("incr: %q", got)
	}
}

// TestBinaryAllocs: parsing and answering allocate nothing once the
// command's buffers have grown.
func TestBinaryAllocs(t *testing.T) {
	var in []byte
	in = append(in, bReq{op: OpcodeSet, key: "key", ext: setExt(1, 0), val: "some value"}.encode("")...)
	in = append(in, bReq{op: OpcodeGetK, key: "key"}.encode("")...)
	in = append(in, bReq{op: OpcodeIncrement, key: "n", ext: arExt(1, 5, 0)}.encode("")...)
	in = append(in, bReq{op: OpcodeGetQ, key: "missing"}.encode("")...)
	st := NewStore(0, false)
	rd := bytes.NewReader(in)
	br := bufio.NewReader(rd)
	p := NewBinaryParser(br, Limits{})
	var cmd Command
	out := make([]byte, 0, 4096)
	var req []byte
	round := func() {
		rd.Reset(in)
		br.Reset(rd)
		for {
			if err := p.Parse(&cmd); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			req = cmd.AppendRequest(req[:0])
			out = st.Exec(out[:0], &cmd, 1)
		}
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Errorf("%v allocations per round", n)
	}
}

func TestDetectProto(t *testing.T) {
	for in, want := range map[string]Proto{"\x80": ProtoBinary, "get k\r\n": ProtoText, "\x81": ProtoText} {
		br := bufio.NewReader(strings.NewReader(in))
		if p, err := DetectProto(br); err != nil || p != want || br.Buffered() != len(in) {
			t.Errorf("%q: %v %v", in, p, err)
		}
	}
	if _, err := DetectProto(bufio.NewReader(strings.NewReader(""))); err != io.EOF {
		t.Errorf("empty: %v", err)
	}
}
