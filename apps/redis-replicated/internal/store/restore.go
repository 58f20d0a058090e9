package store

// RESTORE: reading a DUMP payload (dump.go describes the format) back into
// a value. Every encoding Redis 7.0 writes or still loads is read: strings
// (verbatim, integer, LZF), LIST, QUICKLIST (ziplist nodes) and QUICKLIST_2,
// LIST_ZIPLIST, SET and SET_INTSET, ZSET, ZSET_2, ZSET_ZIPLIST and
// ZSET_LISTPACK, HASH, HASH_ZIPMAP, HASH_ZIPLIST and HASH_LISTPACK,
// STREAM_LISTPACKS and STREAM_LISTPACKS_2 (stream_dump.go).
// Anything else, a truncated or inconsistent encoding, an empty collection,
// a duplicate field or member, or a NaN score is "Bad data format" (Redis
// rejects most of these only when sanitize-dump-payload is on; it may crash
// on the rest).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Errors RESTORE replies with, worded as Redis 7.0's.
const (
	errBusyKey        = "BUSYKEY Target key name already exists."
	errBadTTL         = "ERR Invalid TTL value, must be >= 0"
	errBadIdleTime    = "ERR Invalid IDLETIME value, must be >= 0"
	errBadFreq        = "ERR Invalid FREQ value, must be >= 0 and <= 255"
	errDumpChecksum   = "ERR DUMP payload version or checksum are wrong"
	errBadDataFormat  = "ERR Bad data format"
	maxRestoreAllocMB = 512 // bound on a single decompressed string
)

// errTruncated is a payload that ends inside a value.
var errTruncated = errors.New("payload truncated")

// restoreOptions are RESTORE's options after the serialized value.
type restoreOptions struct {
	replace, absTTL bool
	idle, freq      int64 // -1: not given
}

// parseRestoreOptions parses args[4:] as Redis does: IDLETIME and FREQ
// exclude each other (the second is a syntax error), values are checked as
// they are met.
func parseRestoreOptions(args [][]byte) (restoreOptions, string) {
	o := restoreOptions{idle: -1, freq: -1}
	for j := 4; j < len(args); j++ {
		more := len(args) - j - 1
		a := args[j]
		switch {
		case collFold(a, "replace"):
			o.replace = true
		case collFold(a, "absttl"):
			o.absTTL = true
		case collFold(a, "idletime") && more >= 1 && o.freq == -1:
			n, ok := collInt(args[j+1])
			if !ok {
				return o, errNotInt
			}
			if n < 0 {
				return o, errBadIdleTime
			}
			o.idle = n
			j++
		case collFold(a, "freq") && more >= 1 && o.idle == -1:
			n, ok := collInt(args[j+1])
			if !ok {
				return o, errNotInt
			}
			if n < 0 || n > 255 {
				return o, errBadFreq
			}
			o.freq = n
			j++
		default:
			return o, errSyntax
		}
	}
	return o, ""
}

// cmdRestore is RESTORE key ttl serialized-value [REPLACE] [ABSTTL]
// [IDLETIME seconds] [FREQ frequency]. IDLETIME and FREQ set the node's
// access data (access.go) as Redis's do. A TTL already in the past (against the Env's clock) leaves
// no key, after deleting the old one under REPLACE, and still replies OK.
func cmdRestore(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	opts, msg := parseRestoreOptions(args)
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	key := args[1]
	if !opts.replace && s.lookupWrite(e, key) != nil {
		return resp.AppendError(dst, errBusyKey)
	}
	ttl, ok := collInt(args[2])
	if !ok {
		return resp.AppendError(dst, errNotInt)
	}
	if ttl < 0 {
		return resp.AppendError(dst, errBadTTL)
	}
	if !verifyDumpPayload(args[3]) {
		return resp.AppendError(dst, errDumpChecksum)
	}
	v, err := loadPayload(args[3])
	if err != nil {
		return resp.AppendError(dst, errBadDataFormat)
	}
	deleted := opts.replace && s.remove(key)
	if ttl != 0 && !opts.absTTL {
		ttl += e.NowMs
	}
	if ttl != 0 && ttl <= e.NowMs {
		if deleted {
			s.notify(e, notifyGeneric, "del", key)
		}
		return resp.AppendOK(dst) // already expired: Redis adds nothing
	}
	v.expireAt = ttl
	s.loadedEncoding(v, args[3][0])
	s.put(key, v)
	if e.Access != nil {
		e.Access.restored(v, opts.idle, opts.freq, e.NowMs)
	}
	s.notify(e, notifyGeneric, "restore", key)
	return resp.AppendOK(dst)
}

// loadedEncoding gives v, just read from a payload of RDB type typ, the
// encoding Redis gives a value it loads: the payload's, converted where
// the store's thresholds say (reencode).
func (s *Store) loadedEncoding(v *value, typ byte) {
	switch v.kind {
	case kindHash:
		// A zipmap is judged as a table is: by its count and its longest
		// field or value (a ziplist or listpack by its count only).
		v.hash.table = typ == rdbTypeHash || typ == rdbTypeHashZipmap
	case kindZSet:
		v.zset.skiplist = typ == rdbTypeZSet || typ == rdbTypeZSet2
	}
	s.reencode(v)
}

// verifyDumpPayload checks p's footer: an RDB version Redis 7.0 reads and
// the CRC-64 of everything before the checksum.
func verifyDumpPayload(p []byte) bool {
	if len(p) < 10 {
		return false
	}
	footer := p[len(p)-10:]
	return binary.LittleEndian.Uint16(footer) <= rdbVersion &&
		crc64Update(0, p[:len(p)-8]) == binary.LittleEndian.Uint64(footer[2:])
}

// loadPayload decodes the RDB object (a type byte and its encoding) at the
// start of a verified payload. Like Redis it reads from the whole payload,
// so an object may run into the footer, and it ignores bytes left over.
func loadPayload(body []byte) (*value, error) {
	// The value keeps slices of the payload: a copy of its own, not the
	// caller's argument buffer.
	r := &rdbReader{p: bytes.Clone(body)}
	typ := r.byte1()
	if r.err != nil {
		return nil, r.err
	}
	v, err := loadObject(r, typ)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return nil, fmt.Errorf("rdb type %d: %w", typ, err)
	}
	return v, nil
}

// loadObject decodes a value of RDB type typ.
func loadObject(r *rdbReader, typ byte) (*value, error) {
	switch typ {
	case rdbTypeString:
		s := r.str()
		return &value{kind: kindString, str: s}, r.err
	case rdbTypeList:
		return listFrom(r.strings(r.length()))
	case rdbTypeListZiplist:
		return listFrom(r.blob(parseZiplist))
	case rdbTypeListQuicklist, rdbTypeListQuicklist2:
		return loadQuicklist(r, typ == rdbTypeListQuicklist2)
	case rdbTypeSet:
		return setFrom(r.strings(r.length()))
	case rdbTypeSetIntset:
		return setFrom(r.blob(parseIntset))
	case rdbTypeHash:
		return hashFrom(r.strings(2 * r.length()))
	case rdbTypeHashZipmap:
		return hashFrom(r.blob(parseZipmap))
	case rdbTypeHashZiplist:
		return hashFrom(r.blob(parseZiplist))
	case rdbTypeHashListpack:
		return hashFrom(r.blob(parseListpack))
	case rdbTypeZSet, rdbTypeZSet2:
		return loadZSet(r, typ == rdbTypeZSet2)
	case rdbTypeZSetZiplist:
		return zsetFromPairs(r.blob(parseZiplist))
	case rdbTypeZSetListpack:
		return zsetFromPairs(r.blob(parseListpack))
	case rdbTypeStreamListpack, rdbTypeStreamListpack2:
		return loadStream(r, typ == rdbTypeStreamListpack2)
	}
	return nil, fmt.Errorf("unsupported rdb type %d", typ)
}

// loadQuicklist reads a QUICKLIST (ziplist nodes) or QUICKLIST_2 (packed
// listpack or plain single-element nodes); empty nodes are skipped, as
// Redis skips them.
func loadQuicklist(r *rdbReader, v2 bool) (*value, error) {
	n := r.length()
	var elems [][]byte
	for i := uint64(0); i < n && r.err == nil; i++ {
		if !v2 {
			es, err := r.blob(parseZiplist)
			if err != nil {
				return nil, err
			}
			elems = append(elems, es...)
			continue
		}
		switch container := r.length(); container {
		case quicklistPlain:
			elems = append(elems, r.str())
		case quicklistPacked:
			es, err := r.blob(parseListpack)
			if err != nil {
				return nil, err
			}
			elems = append(elems, es...)
		default:
			return nil, fmt.Errorf("quicklist container %d", container)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return listFrom(elems, nil)
}

// loadZSet reads ZSET (scores as text) or ZSET_2 (binary doubles).
func loadZSet(r *rdbReader, binaryScores bool) (*value, error) {
	n := r.length()
	if r.err != nil {
		return nil, r.err
	}
	pairs := make([][]byte, 0, 2*min(n, uint64(len(r.p))))
	for i := uint64(0); i < n && r.err == nil; i++ {
		m := r.str()
		var d float64
		if binaryScores {
			d = math.Float64frombits(binary.LittleEndian.Uint64(r.take(8)))
		} else {
			d = r.textDouble()
		}
		if r.err != nil {
			break
		}
		if math.IsNaN(d) {
			return nil, errors.New("NaN score")
		}
		pairs = append(pairs, m, formatScore(nil, d))
	}
	if r.err != nil {
		return nil, r.err
	}
	return zsetFromPairs(pairs, nil)
}

// listFrom builds a list of elems.
func listFrom(elems [][]byte, err error) (*value, error) {
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, errors.New("empty list")
	}
	return &value{kind: kindList, list: &listValue{items: elems}}, nil
}

// setFrom builds a set of members, encoded as Redis encodes a loaded set:
// an intset when all are integers and there are few enough.
func setFrom(members [][]byte, err error) (*value, error) {
	if err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, errors.New("empty set")
	}
	st := newResultSet()
	for _, m := range members {
		if !st.add(m) {
			return nil, fmt.Errorf("duplicate set member %q", m)
		}
	}
	return &value{kind: kindSet, set: st}, nil
}

// hashFrom builds a hash of fields and values given alternately.
func hashFrom(kv [][]byte, err error) (*value, error) {
	if err != nil {
		return nil, err
	}
	if len(kv) == 0 || len(kv)%2 != 0 {
		return nil, errors.New("empty hash or field without value")
	}
	h := newHash()
	for i := 0; i < len(kv); i += 2 {
		if !h.set(kv[i], kv[i+1]) {
			return nil, fmt.Errorf("duplicate hash field %q", kv[i])
		}
	}
	return &value{kind: kindHash, hash: h}, nil
}

// zsetFromPairs builds a sorted set of members and scores (as text) given
// alternately.
func zsetFromPairs(ms [][]byte, err error) (*value, error) {
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 || len(ms)%2 != 0 {
		return nil, errors.New("empty sorted set or member without score")
	}
	z := newZSet()
	for i := 0; i < len(ms); i += 2 {
		d, ok, rangeErr := strtod(ms[i+1])
		if !ok || rangeErr && !math.IsInf(d, 0) || math.IsNaN(d) {
			return nil, fmt.Errorf("bad score %q", ms[i+1])
		}
		m := string(ms[i])
		if _, dup := z.scoreOf(m); dup {
			return nil, fmt.Errorf("duplicate sorted set member %q", m)
		}
		z.add(m, d)
	}
	return &value{kind: kindZSet, zset: z}, nil
}

// rdbReader decodes RDB encodings from a byte slice; the first error
// sticks and every later read returns zero values.
type rdbReader struct {
	p   []byte
	err error
}

func (r *rdbReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// take returns the next n bytes (zeros after an error).
func (r *rdbReader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.p)) {
		r.fail(errTruncated)
		return make([]byte, min(n, 8))
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *rdbReader) byte1() byte { return r.take(1)[0] }

// lengthOrEnc reads an RDB length; for the special string encodings
// (11xxxxxx) it returns the encoding in low 6 bits and enc true.
func (r *rdbReader) lengthOrEnc() (n uint64, enc bool) {
	b := r.byte1()
	switch b >> 6 {
	case rdbLen6:
		return uint64(b & 0x3f), false
	case rdbLen14:
		return uint64(b&0x3f)<<8 | uint64(r.byte1()), false
	case 3:
		return uint64(b & 0x3f), true
	}
	switch b {
	case rdbLen32:
		return uint64(binary.BigEndian.Uint32(r.take(4))), false
	case rdbLen64:
		return binary.BigEndian.Uint64(r.take(8)), false
	}
	r.fail(fmt.Errorf("bad length byte %#x", b))
	return 0, false
}

// length reads a plain RDB length.
func (r *rdbReader) length() uint64 {
	n, enc := r.lengthOrEnc()
	if enc {
		r.fail(errors.New("string encoding where a length belongs"))
		return 0
	}
	return n
}

// str reads an RDB string in any of its encodings.
func (r *rdbReader) str() []byte {
	n, enc := r.lengthOrEnc()
	if !enc {
		return r.take(n)
	}
	switch n | 0xc0 {
	case rdbEncInt8:
		return strconv.AppendInt(nil, int64(int8(r.byte1())), 10)
	case rdbEncInt16:
		return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(r.take(2)))), 10)
	case rdbEncInt32:
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(r.take(4)))), 10)
	case rdbEncLZF:
		clen := r.length()
		ulen := r.length()
		c := r.take(clen)
		if r.err != nil {
			return nil
		}
		// LZF expands at most 264 bytes from every 2 or 3 of input.
		if ulen > maxRestoreAllocMB<<20 || ulen > 132*clen+32 {
			r.fail(errors.New("implausible LZF length"))
			return nil
		}
		out, ok := lzfDecompress(c, int(ulen))
		if !ok {
			r.fail(errors.New("bad LZF data"))
		}
		return out
	}
	r.fail(fmt.Errorf("unknown string encoding %d", n))
	return nil
}

// strings reads n strings.
func (r *rdbReader) strings(n uint64) ([][]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if n > uint64(len(r.p)) { // every string takes at least a byte
		return nil, errTruncated
	}
	out := make([][]byte, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.str())
	}
	return out, r.err
}

// blob reads a string holding an encoded collection and parses it.
func (r *rdbReader) blob(parse func([]byte) ([][]byte, error)) ([][]byte, error) {
	b := r.str()
	if r.err != nil {
		return nil, r.err
	}
	return parse(b)
}

// textDouble reads ZSET's text score: a length byte (253 NaN, 254 +inf,
// 255 -inf) and that many characters.
func (r *rdbReader) textDouble() float64 {
	n := r.byte1()
	switch n {
	case 253:
		return math.NaN()
	case 254:
		return math.Inf(1)
	case 255:
		return math.Inf(-1)
	}
	b := r.take(uint64(n))
	d, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		r.fail(fmt.Errorf("bad score %q", b))
	}
	return d
}
