package memcache

// The memcached binary protocol, as memcached 1.6.18 speaks it.
//
// A request is a 24-byte header (magic 0x80, opcode, key length, extras
// length, data type, vbucket, total body length, opaque, CAS) followed by
// the body: extras, key, value. A response has the same header with magic
// 0x81, a status where the request had its vbucket, and the request's
// opcode and opaque.
//
// BinaryParser reads requests into the same Command the text parser fills,
// with the Op of the matching text command, so that the Store, IsWrite and
// AppendRequest serve both protocols; Store.Exec answers in the command's
// protocol. Where the protocols differ, the command carries the binary
// meaning:
//
//   - Set, Add and Replace with a nonzero CAS store only over an item with
//     that CAS value (a Set keeps Op OpSet: memcached drops the old item of
//     any Set that is too large). Append, Prepend and Delete compare a
//     nonzero CAS too;
//   - Increment and Decrement create a missing item holding Initial, unless
//     Exptime is 0xffffffff, and compare a nonzero CAS;
//   - Get, GetK and GAT answer a hit with the item's flags, CAS value and
//     (GetK, GATK) its key; Touch answers with the flags alone;
//   - the quiet variants (GetQ, SetQ, ...) set NoReply: they are not
//     answered on success, nor, for GetQ, GetKQ, GATQ and GATKQ, on a miss,
//     but errors are always answered;
//   - exptimes are unsigned 32-bit numbers, so never negative.
//
// Version, Stat and Quit are the server's to answer (AppendBinaryVersion,
// AppendBinaryStats, AppendBinaryQuit); NoOp is answered by Store.Exec. A
// server detects the protocol of a connection with DetectProto.
// memcached 1.6 does not implement Verbosity nor, without SASL, the SASL
// commands: like every unknown opcode they are answered Unknown command.
//
// Differences from memcached 1.6.18:
//
//   - an unknown command's body is skipped as its header says; memcached
//     skips as many bytes again as its extras and key, from the next
//     request, and loses its place in the stream;
//   - a request whose key is longer than 250 bytes, or whose lengths do not
//     add up, is answered as memcached answers it, and the connection
//     closed, without waiting for its extras and key to arrive;
//   - a store with an exptime already past (an absolute time) answers CAS
//     0: nothing was stored, where memcached gives the dead item a CAS
//     value;
//   - Stat groups memcached knows (settings, items, slabs, ...) list
//     nothing, as in the text protocol.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// Opcode is a binary-protocol command code.
type Opcode uint8

// The binary opcodes memcached 1.6 implements (SASL aside), and Verbosity,
// which it answers as unknown.
const (
	OpcodeGet        Opcode = 0x00
	OpcodeSet        Opcode = 0x01
	OpcodeAdd        Opcode = 0x02
	OpcodeReplace    Opcode = 0x03
	OpcodeDelete     Opcode = 0x04
	OpcodeIncrement  Opcode = 0x05
	OpcodeDecrement  Opcode = 0x06
	OpcodeQuit       Opcode = 0x07
	OpcodeFlush      Opcode = 0x08
	OpcodeGetQ       Opcode = 0x09
	OpcodeNoOp       Opcode = 0x0a
	OpcodeVersion    Opcode = 0x0b
	OpcodeGetK       Opcode = 0x0c
	OpcodeGetKQ      Opcode = 0x0d
	OpcodeAppend     Opcode = 0x0e
	OpcodePrepend    Opcode = 0x0f
	OpcodeStat       Opcode = 0x10
	OpcodeSetQ       Opcode = 0x11
	OpcodeAddQ       Opcode = 0x12
	OpcodeReplaceQ   Opcode = 0x13
	OpcodeDeleteQ    Opcode = 0x14
	OpcodeIncrementQ Opcode = 0x15
	OpcodeDecrementQ Opcode = 0x16
	OpcodeQuitQ      Opcode = 0x17
	OpcodeFlushQ     Opcode = 0x18
	OpcodeAppendQ    Opcode = 0x19
	OpcodePrependQ   Opcode = 0x1a
	OpcodeVerbosity  Opcode = 0x1b
	OpcodeTouch      Opcode = 0x1c
	OpcodeGAT        Opcode = 0x1d
	OpcodeGATQ       Opcode = 0x1e
	OpcodeGATK       Opcode = 0x23
	OpcodeGATKQ      Opcode = 0x24
)

// BinaryStatus is the status of a binary response.
type BinaryStatus uint16

// The statuses this package answers with.
const (
	BinaryNoError          BinaryStatus = 0x0000
	BinaryKeyNotFound      BinaryStatus = 0x0001
	BinaryKeyExists        BinaryStatus = 0x0002
	BinaryValueTooLarge    BinaryStatus = 0x0003
	BinaryInvalidArguments BinaryStatus = 0x0004
	BinaryItemNotStored    BinaryStatus = 0x0005
	BinaryNonNumeric       BinaryStatus = 0x0006
	BinaryUnknownCommand   BinaryStatus = 0x0081
	BinaryOutOfMemory      BinaryStatus = 0x0082
	BinaryTemporaryFailure BinaryStatus = 0x0086
)

// String returns the body memcached sends with the status.
func (s BinaryStatus) String() string {
	switch s {
	case BinaryNoError:
		return ""
	case BinaryKeyNotFound:
		return "Not found"
	case BinaryKeyExists:
		return "Data exists for key."
	case BinaryValueTooLarge:
		return "Too large."
	case BinaryInvalidArguments:
		return "Invalid arguments"
	case BinaryItemNotStored:
		return "Not stored."
	case BinaryNonNumeric:
		return "Non-numeric server-side value for incr or decr"
	case BinaryUnknownCommand:
		return "Unknown command"
	case BinaryOutOfMemory:
		return "Out of memory"
	case BinaryTemporaryFailure:
		return "Temporary failure"
	}
	return "BinaryStatus(0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

const (
	binaryReqMagic  = 0x80
	binaryRespMagic = 0x81
	binaryHeaderLen = 24
	// binaryNoCreate as an incr/decr expiration: do not create a missing
	// item.
	binaryNoCreate = 0xffffffff
)

// Errors only the binary parser returns. They close the connection, as
// memcached closes it; AppendCommandError renders them.
var (
	// ErrBinaryBadMagic: a request that does not start with 0x80. There is
	// no reply.
	ErrBinaryBadMagic = newProtocolError(KindClient, "binary request with bad magic", true)
	// ErrBinaryBadLength: key and extras longer than the body. Answered
	// Unknown command.
	ErrBinaryBadLength = newProtocolError(KindClient, "binary key and extras longer than the body", true)
	// ErrBinaryInvalid: a key over 250 bytes, or extras, key or value
	// lengths wrong for the opcode. Answered Invalid arguments.
	ErrBinaryInvalid = newProtocolError(KindClient, "binary invalid arguments", true)
)

// opcodeInfo describes an opcode the parser knows.
type opcodeInfo struct {
	known bool
	op    Op
	base  Opcode // the opcode without its quiet flag
	quiet bool
}

var opcodes = func() (t [256]opcodeInfo) {
	add := func(op Op, base, quiet Opcode) {
		t[base] = opcodeInfo{known: true, op: op, base: base}
		if quiet != base {
			t[quiet] = opcodeInfo{known: true, op: op, base: base, quiet: true}
		}
	}
	add(OpGet, OpcodeGet, OpcodeGetQ)
	add(OpGet, OpcodeGetK, OpcodeGetKQ)
	add(OpSet, OpcodeSet, OpcodeSetQ)
	add(OpAdd, OpcodeAdd, OpcodeAddQ)
	add(OpReplace, OpcodeReplace, OpcodeReplaceQ)
	add(OpAppend, OpcodeAppend, OpcodeAppendQ)
	add(OpPrepend, OpcodePrepend, OpcodePrependQ)
	add(OpDelete, OpcodeDelete, OpcodeDeleteQ)
	add(OpIncr, OpcodeIncrement, OpcodeIncrementQ)
	add(OpDecr, OpcodeDecrement, OpcodeDecrementQ)
	add(OpQuit, OpcodeQuit, OpcodeQuitQ)
	add(OpFlushAll, OpcodeFlush, OpcodeFlushQ)
	add(OpNone, OpcodeNoOp, OpcodeNoOp)
	add(OpVersion, OpcodeVersion, OpcodeVersion)
	add(OpStats, OpcodeStat, OpcodeStat)
	add(OpTouch, OpcodeTouch, OpcodeTouch)
	add(OpGat, OpcodeGAT, OpcodeGATQ)
	add(OpGat, OpcodeGATK, OpcodeGATKQ)
	return t
}()

// base returns the command's opcode without its quiet flag.
func (c *Command) base() Opcode { return opcodes[c.Opcode].base }

// validBinary applies memcached's checks of the lengths for each opcode.
func validBinary(base Opcode, keyLen, extLen int, bodyLen int64) bool {
	k, e := int64(keyLen), int64(extLen)
	switch base {
	case OpcodeVersion, OpcodeNoOp, OpcodeQuit:
		return e == 0 && k == 0 && bodyLen == 0
	case OpcodeFlush:
		return k == 0 && bodyLen == e && (e == 0 || e == 4)
	case OpcodeSet, OpcodeAdd, OpcodeReplace:
		return e == 8 && k != 0 && bodyLen >= k+8
	case OpcodeGet, OpcodeGetK:
		return e == 0 && bodyLen == k && k > 0
	case OpcodeDelete:
		return k > 0 && e == 0 && bodyLen == k
	case OpcodeIncrement, OpcodeDecrement:
		return k > 0 && e == 20 && bodyLen == k+20
	case OpcodeAppend, OpcodePrepend:
		return k > 0 && e == 0
	case OpcodeStat:
		return e == 0
	case OpcodeTouch, OpcodeGAT, OpcodeGATK:
		return e == 4 && k != 0
	}
	return false
}

// CommandParser reads commands of one protocol; Parser and BinaryParser
// are the two.
type CommandParser interface {
	Parse(cmd *Command) error
}

// NewProtoParser returns the parser of proto reading from r.
func NewProtoParser(proto Proto, r *bufio.Reader, lim Limits) CommandParser {
	if proto == ProtoBinary {
		return NewBinaryParser(r, lim)
	}
	return NewParser(r, lim)
}

// DetectProto tells a connection's protocol from its first byte, as
// memcached does: 0x80, the binary request magic, means binary, anything
// else text. It waits for the byte and does not consume it; its error is
// the reader's.
func DetectProto(br *bufio.Reader) (Proto, error) {
	b, err := br.Peek(1)
	if err != nil {
		return ProtoText, err
	}
	if b[0] == binaryReqMagic {
		return ProtoBinary, nil
	}
	return ProtoText, nil
}

// BinaryParser reads binary-protocol requests from a buffered reader. Like
// Parser it allocates only while a Command's buffers grow, to the largest
// value seen at most, and Limits.MaxValueLen bounds values. A request holds
// at most a 24-byte header, 255 bytes of extras, a 250-byte key and its
// value: MaxLineLen does not apply.
type BinaryParser struct {
	r   *bufio.Reader
	lim Limits
}

// NewBinaryParser returns a parser reading from r with the given limits.
func NewBinaryParser(r *bufio.Reader, lim Limits) *BinaryParser {
	return &BinaryParser{r: r, lim: lim.withDefaults()}
}

// Limits returns the parser's limits, defaults filled in.
func (p *BinaryParser) Limits() Limits { return p.lim }

// Reset makes the parser read from r, keeping its limits.
func (p *BinaryParser) Reset(r *bufio.Reader) { p.r = r }

// Parse reads the next request into cmd, with cmd.Proto ProtoBinary.
//
// Errors are as Parser.Parse's: a *ProtocolError has a reply, which
// AppendCommandError renders in the binary protocol, and once cmd.Opcode
// and cmd.Opaque are set, as they are for every *ProtocolError, the
// response can be addressed. The reader is then where memcached would be:
//
//   - ErrUnknownCommand: an opcode memcached does not implement; its body
//     was skipped;
//   - ErrTooLarge: a value over MaxValueLen, skipped; cmd.Op and cmd.Keys
//     are set, and memcached drops the existing item of a Set (quiet or
//     not, CAS or not) that was too large;
//   - ErrBinaryBadMagic, ErrBinaryBadLength, ErrBinaryInvalid: Close is
//     set, the connection cannot go on.
//
// Touch, GAT and Stat requests may carry a body longer than their extras
// and key: memcached leaves the rest in the stream, to be read as the next
// request, and so does Parse.
func (p *BinaryParser) Parse(cmd *Command) error {
	cmd.reset()
	cmd.Proto = ProtoBinary
	const maxHead = binaryHeaderLen + 255 + MaxKeyLen
	if cap(cmd.line) < maxHead {
		cmd.line = make([]byte, 0, maxHead)
	}
	hdr := cmd.line[:binaryHeaderLen]
	if _, err := io.ReadFull(p.r, hdr); err != nil {
		return err // io.EOF between requests, io.ErrUnexpectedEOF within
	}
	cmd.line = hdr
	cmd.Opcode = Opcode(hdr[1])
	cmd.Opaque = binary.BigEndian.Uint32(hdr[12:])
	if hdr[0] != binaryReqMagic {
		return ErrBinaryBadMagic
	}
	keyLen := int(binary.BigEndian.Uint16(hdr[2:]))
	extLen := int(hdr[4])
	bodyLen := int64(binary.BigEndian.Uint32(hdr[8:]))
	cmd.CAS = binary.BigEndian.Uint64(hdr[16:])
	if int64(keyLen+extLen) > bodyLen {
		return ErrBinaryBadLength
	}
	if keyLen > MaxKeyLen {
		return ErrBinaryInvalid
	}
	info := opcodes[cmd.Opcode]
	if !info.known {
		if err := discard(p.r, bodyLen); err != nil {
			return err
		}
		return ErrUnknownCommand
	}
	if !validBinary(info.base, keyLen, extLen, bodyLen) {
		return ErrBinaryInvalid
	}
	head := cmd.line[:binaryHeaderLen+extLen+keyLen]
	if _, err := io.ReadFull(p.r, head[binaryHeaderLen:]); err != nil {
		return unexpected(err)
	}
	cmd.line = head
	ext := head[binaryHeaderLen : binaryHeaderLen+extLen]
	if keyLen > 0 {
		cmd.Keys = append(cmd.Keys, head[binaryHeaderLen+extLen:])
	}
	cmd.Op = info.op
	cmd.NoReply = info.quiet
	switch info.base {
	case OpcodeSet, OpcodeAdd, OpcodeReplace:
		cmd.Flags = binary.BigEndian.Uint32(ext)
		cmd.Exptime = int64(binary.BigEndian.Uint32(ext[4:]))
	case OpcodeTouch, OpcodeGAT, OpcodeGATK:
		cmd.Exptime = int64(binary.BigEndian.Uint32(ext))
	case OpcodeFlush:
		if extLen == 4 {
			cmd.Exptime = int64(binary.BigEndian.Uint32(ext))
		}
	case OpcodeIncrement, OpcodeDecrement:
		cmd.Delta = binary.BigEndian.Uint64(ext)
		cmd.Initial = binary.BigEndian.Uint64(ext[8:])
		cmd.Exptime = int64(binary.BigEndian.Uint32(ext[16:]))
	}
	if !cmd.Op.IsStorage() {
		return nil
	}
	size := bodyLen - int64(extLen+keyLen)
	if size > int64(p.lim.MaxValueLen) {
		if err := discard(p.r, size); err != nil {
			return err
		}
		return ErrTooLarge
	}
	need := int(size)
	if cap(cmd.val) < need {
		cmd.val = make([]byte, need, max(need, min(2*cap(cmd.val), p.lim.MaxValueLen)))
	}
	cmd.Value = cmd.val[:need]
	if _, err := io.ReadFull(p.r, cmd.Value); err != nil {
		cmd.Value = nil
		return unexpected(err)
	}
	return nil
}

// discard skips n bytes of r.
func discard(r *bufio.Reader, n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		if _, err := r.Discard(k); err != nil {
			return unexpected(err)
		}
		n -= int64(k)
	}
	return nil
}

// binaryIsWrite: gets, NoOp and the server's commands are reads; everything
// else may change the store (GAT and Touch change expirations).
func (c *Command) binaryIsWrite() bool {
	switch c.Op {
	case OpGet, OpNone, OpVersion, OpStats, OpQuit:
		return false
	}
	return true
}

// appendBinaryRequest appends the request as a packet that parses to the
// same command: as received, except that the body length counts only the
// extras, key and value parsed (Touch, GAT and Stat may have claimed more).
func (c *Command) appendBinaryRequest(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, c.line...)
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(c.line)-binaryHeaderLen+len(c.Value)))
	return append(dst, c.Value...)
}

// appendBinaryHeader appends a response header.
func appendBinaryHeader(out []byte, cmd *Command, status BinaryStatus, keyLen, extLen, bodyLen int, cas uint64) []byte {
	out = append(out, binaryRespMagic, byte(cmd.Opcode))
	out = binary.BigEndian.AppendUint16(out, uint16(keyLen))
	out = append(out, byte(extLen), 0)
	out = binary.BigEndian.AppendUint16(out, uint16(status))
	out = binary.BigEndian.AppendUint32(out, uint32(bodyLen))
	out = binary.BigEndian.AppendUint32(out, cmd.Opaque)
	return binary.BigEndian.AppendUint64(out, cas)
}

// AppendBinaryStatus appends a response to cmd without extras or key, with
// msg as its body, or the status's own text (memcached's) if msg is empty:
// an error, such as Not found for a Stat group the server does not know.
func AppendBinaryStatus(out []byte, cmd *Command, status BinaryStatus, msg string) []byte {
	if msg == "" {
		msg = status.String()
	}
	out = appendBinaryHeader(out, cmd, status, 0, 0, len(msg), 0)
	return append(out, msg...)
}

// appendBinaryOK appends an empty success, unless the command is quiet.
func appendBinaryOK(out []byte, cmd *Command, cas uint64) []byte {
	if cmd.NoReply {
		return out
	}
	return appendBinaryHeader(out, cmd, BinaryNoError, 0, 0, 0, cas)
}

func appendBinaryError(out []byte, cmd *Command, err error) []byte {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		return appendBinaryFailure(out, cmd, err.Error())
	}
	status := BinaryInvalidArguments
	switch pe {
	case ErrBinaryBadMagic:
		return out
	case ErrUnknownCommand, ErrBinaryBadLength:
		status = BinaryUnknownCommand
	case ErrTooLarge:
		status = BinaryValueTooLarge
	case ErrNonNumeric:
		status = BinaryNonNumeric
	case ErrOutOfMemory:
		status = BinaryOutOfMemory
	}
	return AppendBinaryStatus(out, cmd, status, "")
}

func appendBinaryFailure(out []byte, cmd *Command, msg string) []byte {
	if msg == "" {
		msg = BinaryTemporaryFailure.String()
	}
	return AppendBinaryStatus(out, cmd, BinaryTemporaryFailure, msg)
}

// execBinary runs a binary command; the lock is held, exclusively for a
// write. Statistics are counted as memcached counts them for the binary
// protocol.
func (s *Store) execBinary(out []byte, cmd *Command, now int64) []byte {
	key := cmd.Key()
	switch cmd.Op {
	case OpGet, OpGat:
		var it *item
		if cmd.Op == OpGat {
			it = s.binaryTouch(key, cmd.Exptime, now)
		} else {
			it = s.get(key, now)
		}
		base := cmd.base()
		withKey := base == OpcodeGetK || base == OpcodeGATK
		if it == nil {
			switch {
			case cmd.NoReply:
				return out
			case withKey:
				out = appendBinaryHeader(out, cmd, BinaryKeyNotFound, len(key), 0, len(key), 0)
				return append(out, key...)
			}
			return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
		}
		// A hit is answered even when quiet.
		keyLen := 0
		if withKey {
			keyLen = len(key)
		}
		out = appendBinaryHeader(out, cmd, BinaryNoError, keyLen, 4, 4+keyLen+len(it.value), it.cas)
		out = binary.BigEndian.AppendUint32(out, it.flags)
		out = append(out, key[:keyLen]...)
		return append(out, it.value...)
	case OpTouch:
		it := s.binaryTouch(key, cmd.Exptime, now)
		if it == nil {
			return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
		}
		out = appendBinaryHeader(out, cmd, BinaryNoError, 0, 4, 4, it.cas)
		return binary.BigEndian.AppendUint32(out, it.flags)
	case OpSet, OpAdd, OpReplace, OpAppend, OpPrepend:
		return s.binaryStore(out, cmd, now)
	case OpDelete:
		it := s.lookup(key, now)
		switch {
		case it == nil:
			s.stats.deleteMisses.Add(1)
			return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
		case cmd.CAS != 0 && cmd.CAS != it.cas:
			return AppendBinaryStatus(out, cmd, BinaryKeyExists, "")
		}
		s.remove(it)
		s.stats.deleteHits.Add(1)
		return appendBinaryOK(out, cmd, 0)
	case OpIncr, OpDecr:
		return s.binaryArith(out, cmd, now)
	case OpFlushAll:
		s.flushAll(cmd.Exptime, now)
		return appendBinaryOK(out, cmd, 0)
	case OpNone: // NoOp
		return appendBinaryOK(out, cmd, 0)
	}
	// Version, Stat and Quit are the server's.
	return out
}

// binaryTouch is Touch and GAT: memcached counts them as touches only.
func (s *Store) binaryTouch(key []byte, exptime, now int64) *item {
	s.stats.cmdTouch.Add(1)
	it := s.touchItem(key, exptime, now)
	if it == nil {
		s.stats.touchMisses.Add(1)
	} else {
		s.stats.touchHits.Add(1)
	}
	return it
}

// binaryStore runs Set, Add, Replace, Append and Prepend. A nonzero CAS
// turns the first three into a cas, and makes the other two compare.
func (s *Store) binaryStore(out []byte, cmd *Command, now int64) []byte {
	key := cmd.Key()
	c := *cmd
	if cmd.CAS != 0 {
		switch cmd.Op {
		case OpSet, OpAdd, OpReplace:
			c.Op = OpCas
		default:
			if old := s.lookup(key, now); old != nil && old.cas != cmd.CAS {
				s.stats.cmdSet.Add(1)
				return AppendBinaryStatus(out, cmd, BinaryKeyExists, "")
			}
		}
	}
	st, err := s.store(&c, now)
	if err != nil {
		if err == ErrOutOfMemory {
			return AppendBinaryStatus(out, cmd, BinaryOutOfMemory, "Out of memory allocating item")
		}
		return appendBinaryError(out, cmd, err)
	}
	switch st {
	case StatusStored:
		var cas uint64
		if it := s.m[string(key)]; it != nil {
			cas = it.cas
		}
		return appendBinaryOK(out, cmd, cas)
	case StatusExists:
		return AppendBinaryStatus(out, cmd, BinaryKeyExists, "")
	case StatusNotFound:
		return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
	}
	// Not stored: memcached tells why.
	switch cmd.Op {
	case OpAdd:
		return AppendBinaryStatus(out, cmd, BinaryKeyExists, "")
	case OpReplace:
		return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
	}
	return AppendBinaryStatus(out, cmd, BinaryItemNotStored, "")
}

// binaryArith runs Increment and Decrement: the text protocol's arith, with
// a CAS to compare and a missing item created from Initial.
func (s *Store) binaryArith(out []byte, cmd *Command, now int64) []byte {
	key := cmd.Key()
	incr := cmd.Op == OpIncr
	old := s.lookup(key, now)
	if old == nil {
		if cmd.Exptime == binaryNoCreate {
			if incr {
				s.stats.incrMisses.Add(1)
			} else {
				s.stats.decrMisses.Add(1)
			}
			return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, "")
		}
		var buf [20]byte
		value := strconv.AppendUint(buf[:0], cmd.Initial, 10)
		it, err := s.put(key, nil, value, 0, ExpiryTime(cmd.Exptime, now), now)
		if err != nil {
			return AppendBinaryStatus(out, cmd, BinaryOutOfMemory, "Out of memory allocating new item")
		}
		return appendBinaryNumber(out, cmd, cmd.Initial, it.cas)
	}
	// memcached refuses an empty value before it compares CAS values.
	if len(old.value) > 0 && cmd.CAS != 0 && cmd.CAS != old.cas {
		return AppendBinaryStatus(out, cmd, BinaryKeyExists, "")
	}
	v, _, err := s.arith(key, incr, cmd.Delta, now)
	switch {
	case err == ErrOutOfMemory:
		return AppendBinaryStatus(out, cmd, BinaryOutOfMemory, "Out of memory incrementing value")
	case err != nil:
		return appendBinaryError(out, cmd, err)
	}
	var cas uint64
	if it := s.m[string(key)]; it != nil {
		cas = it.cas
	}
	return appendBinaryNumber(out, cmd, v, cas)
}

// appendBinaryNumber appends an incr/decr success: the new value.
func appendBinaryNumber(out []byte, cmd *Command, v, cas uint64) []byte {
	if cmd.NoReply {
		return out
	}
	out = appendBinaryHeader(out, cmd, BinaryNoError, 0, 0, 8, cas)
	return binary.BigEndian.AppendUint64(out, v)
}

// AppendBinaryVersion appends the response to a binary Version request,
// with v as its body.
func AppendBinaryVersion(out []byte, cmd *Command, v string) []byte {
	out = appendBinaryHeader(out, cmd, BinaryNoError, 0, 0, len(v), 0)
	return append(out, v...)
}

// AppendBinaryQuit appends the response to Quit, an empty success, or
// nothing to QuitQ. The server then closes the connection.
func AppendBinaryQuit(out []byte, cmd *Command) []byte { return appendBinaryOK(out, cmd, 0) }

// AppendBinaryStats appends a Stat response listing pairs (name, value,
// name, value, ...): a packet per statistic, its name as the key and its
// value as the rest of the body, then the empty packet that ends the list.
// GeneralStats gives the pairs of a Stat without a key.
func AppendBinaryStats(out []byte, cmd *Command, pairs ...string) []byte {
	for k := 0; k+1 < len(pairs); k += 2 {
		name, value := pairs[k], pairs[k+1]
		out = appendBinaryHeader(out, cmd, BinaryNoError, len(name), 0, len(name)+len(value), 0)
		out = append(out, name...)
		out = append(out, value...)
	}
	return appendBinaryHeader(out, cmd, BinaryNoError, 0, 0, 0, 0)
}
