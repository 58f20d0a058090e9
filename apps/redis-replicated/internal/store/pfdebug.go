package store

import (
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// PFDEBUG and PFSELFTEST, the HyperLogLog debugging commands Redis's test
// suite runs. PFDEBUG is a write, as in Redis: GETREG and TODENSE turn a
// sparse HLL dense.
func init() {
	register(
		&Command{Name: "pfdebug", Arity: 3, Flags: Write | DenyOOM, FirstKey: 2, LastKey: 2, Step: 1,
			Group: "hyperloglog", Summary: "Internal commands for debugging HyperLogLog values", run: cmdPFDebug},
		&Command{Name: "pfselftest", Arity: 1, Group: "hyperloglog",
			Summary: "An internal command for testing HyperLogLog values", run: cmdPFSelfTest},
	)
}

func cmdPFDebug(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	sub := strings.ToLower(string(args[1]))
	v, errMsg := s.hllOf(e, args[2], true)
	switch {
	case errMsg != "":
		return resp.AppendError(dst, errMsg)
	case v == nil:
		return resp.AppendError(dst, "ERR The specified key does not exist")
	}
	v.strEnc = strRaw // Redis unshares the string first: raw
	toDense := func() (converted, ok bool) {
		if v.str[4] == hllDense {
			return false, true
		}
		d, ok := hllSparseToDense(v.str)
		if ok {
			v.str = d
		}
		return ok, ok
	}
	switch sub {
	case "getreg":
		if _, ok := toDense(); !ok {
			return resp.AppendError(dst, errInvalidHLL)
		}
		dst = resp.AppendArrayLen(dst, hllRegisters)
		for i := range hllRegisters {
			dst = resp.AppendInt(dst, int64(hllDenseGet(v.str[hllHdrSize:], i)))
		}
		return dst
	case "decode":
		if v.str[4] != hllSparse {
			return resp.AppendError(dst, "ERR HLL encoding is not sparse")
		}
		return resp.AppendBulkString(dst, hllDecode(v.str))
	case "encoding":
		if v.str[4] == hllSparse {
			return resp.AppendSimple(dst, "sparse")
		}
		return resp.AppendSimple(dst, "dense")
	case "todense":
		converted, ok := toDense()
		if !ok {
			return resp.AppendError(dst, errInvalidHLL)
		}
		if converted {
			return resp.AppendInt(dst, 1)
		}
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendError(dst, "ERR Unknown PFDEBUG subcommand '"+string(args[1])+"'")
}

// hllDecode lists a sparse HLL's opcodes as PFDEBUG DECODE does.
func hllDecode(h []byte) string {
	var b strings.Builder
	for p := hllHdrSize; p < len(h); {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		switch op := h[p]; {
		case hllIsZero(op):
			b.WriteString("z:" + strconv.Itoa(int(op&0x3f)+1))
			p++
		case hllIsXZero(op):
			b.WriteString("Z:" + strconv.Itoa(hllXZeroLen(h, p)))
			p += 2
		default:
			b.WriteString("v:" + strconv.Itoa(hllValValue(op)) + "," + strconv.Itoa(hllValLen(op)))
			p++
		}
	}
	return b.String()
}

// cmdPFSelfTest: Redis's PFSELFTEST checks its register and estimator
// code against itself; this store's are checked by its tests.
func cmdPFSelfTest(_ *Store, _ *Env, dst []byte, _ [][]byte) []byte {
	return resp.AppendOK(dst)
}
