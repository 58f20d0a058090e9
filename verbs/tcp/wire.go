package tcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// Wire format. Everything is little endian and fixed size except an
// endpoint's address and the payloads, whose lengths are checked against
// limits before anything is read or allocated.
//
// Endpoint (opaque bytes handed to Connect):
//
//	0  magic "gmtc"      4
//	4  version           1
//	5  QP number         4
//	9  generation        4   bumped by Reset
//	13 device nonce      8   random per Open: a restarted process differs
//	21 address length    1   1..255
//	22 listen address    n   host:port the device accepts on
//
// A connection starts with a hello from the initiator and a reply:
//
//	hello (48 bytes): magic, version, 3 zero bytes,
//	  target QP number u32, target generation u32, target nonce u64,
//	  initiator QP number u32, initiator generation u32, initiator nonce u64,
//	  initiator's retry timeout in ns u64 (how long the target may hold a
//	  request for a QP the application has not connected yet)
//	reply (8 bytes): magic, version, status u8, 2 zero bytes
//
// Then the initiator sends requests and the target answers each with an ack,
// in order:
//
//	request (32 bytes): op u8 (1 WRITE, 2 READ), 3 zero bytes, length u32,
//	  sequence u64, remote address u64, rkey u32, 4 zero bytes;
//	  a WRITE is followed by length payload bytes
//	ack (16 bytes): sequence u64, status u8 (a verbs.Status: success,
//	  remote access error or retry exceeded; or 0xff, a progress note),
//	  3 zero bytes, length u32; a successful READ's ack is followed by
//	  length data bytes, every other ack has length 0
//
// A progress note says "still landing request seq": the target sends one
// after every progressEvery bytes of a long WRITE, so that the initiator's
// retry timer sees a slow but live target drain its socket buffers.
const (
	magic       = "gmtc"
	wireVersion = 1

	epFixedLen    = 22
	maxAddrLen    = 255
	helloLen      = 48
	helloReplyLen = 8
	reqLen        = 32
	ackLen        = 16

	wireWrite = 1
	wireRead  = 2

	// statusProgress is the ack status of a progress note; it is never a
	// completion status.
	statusProgress verbs.Status = 0xff
	progressEvery               = 1 << 20

	// maxTargetWait caps the hold time an initiator may ask for in its
	// hello, so a hostile peer cannot park a target goroutine for long.
	maxTargetWait = time.Minute
)

var le = binary.LittleEndian

// endpoint names one incarnation of a QP: a device (address and nonce),
// a QP number in it and the QP's generation.
type endpoint struct {
	addr  string
	qpn   uint32
	gen   uint32
	nonce uint64
}

// sameQP reports whether e and o name the same QP incarnation. The
// address is only for dialing: the nonce already identifies the device.
func (e endpoint) sameQP(o endpoint) bool {
	return e.nonce == o.nonce && e.qpn == o.qpn && e.gen == o.gen
}

func (e endpoint) marshal() []byte {
	b := make([]byte, epFixedLen+len(e.addr))
	copy(b, magic)
	b[4] = wireVersion
	le.PutUint32(b[5:], e.qpn)
	le.PutUint32(b[9:], e.gen)
	le.PutUint64(b[13:], e.nonce)
	b[21] = byte(len(e.addr))
	copy(b[epFixedLen:], e.addr)
	return b
}

// parseEndpoint decodes and validates an endpoint. Its errors describe what
// is wrong; callers wrap them with verbs.ErrBadEndpoint.
func parseEndpoint(b []byte) (endpoint, error) {
	if len(b) < epFixedLen {
		return endpoint{}, fmt.Errorf("%d bytes, want at least %d", len(b), epFixedLen)
	}
	if string(b[:4]) != magic {
		return endpoint{}, fmt.Errorf("magic %q is not a tcp endpoint", b[:4])
	}
	if b[4] != wireVersion {
		return endpoint{}, fmt.Errorf("version %d, want %d", b[4], wireVersion)
	}
	n := int(b[21])
	if n == 0 || len(b) != epFixedLen+n {
		return endpoint{}, fmt.Errorf("address length %d does not match %d bytes", n, len(b))
	}
	e := endpoint{
		qpn:   le.Uint32(b[5:]),
		gen:   le.Uint32(b[9:]),
		nonce: le.Uint64(b[13:]),
		addr:  string(b[epFixedLen:]),
	}
	if e.qpn == 0 || e.nonce == 0 {
		return endpoint{}, fmt.Errorf("zero QP number or device nonce")
	}
	if _, _, err := net.SplitHostPort(e.addr); err != nil {
		return endpoint{}, fmt.Errorf("address %q: %v", e.addr, err)
	}
	return e, nil
}

type hello struct {
	target endpoint // addr unused
	init   endpoint // addr unused
	wait   time.Duration
}

func (h *hello) put(b []byte) {
	copy(b, magic)
	b[4] = wireVersion
	b[5], b[6], b[7] = 0, 0, 0
	le.PutUint32(b[8:], h.target.qpn)
	le.PutUint32(b[12:], h.target.gen)
	le.PutUint64(b[16:], h.target.nonce)
	le.PutUint32(b[24:], h.init.qpn)
	le.PutUint32(b[28:], h.init.gen)
	le.PutUint64(b[32:], h.init.nonce)
	le.PutUint64(b[40:], uint64(h.wait))
}

func parseHello(b []byte) (hello, error) {
	if string(b[:4]) != magic || b[4] != wireVersion || b[5]|b[6]|b[7] != 0 {
		return hello{}, fmt.Errorf("bad hello header % x", b[:8])
	}
	h := hello{
		target: endpoint{qpn: le.Uint32(b[8:]), gen: le.Uint32(b[12:]), nonce: le.Uint64(b[16:])},
		init:   endpoint{qpn: le.Uint32(b[24:]), gen: le.Uint32(b[28:]), nonce: le.Uint64(b[32:])},
	}
	w := le.Uint64(b[40:])
	if w > uint64(maxTargetWait) {
		w = uint64(maxTargetWait)
	}
	h.wait = time.Duration(w)
	return h, nil
}

func putHelloReply(b []byte, st verbs.Status) {
	copy(b, magic)
	b[4] = wireVersion
	b[5] = byte(st)
	b[6], b[7] = 0, 0
}

func parseHelloReply(b []byte) (verbs.Status, error) {
	if string(b[:4]) != magic || b[4] != wireVersion || b[6]|b[7] != 0 {
		return 0, fmt.Errorf("bad hello reply % x", b[:8])
	}
	st := verbs.Status(b[5])
	if st != verbs.StatusSuccess && st != verbs.StatusRetryExceeded {
		return 0, fmt.Errorf("bad hello reply status %d", b[5])
	}
	return st, nil
}

type reqHeader struct {
	op     uint8
	length uint32
	seq    uint64
	addr   uint64
	rkey   uint32
}

func (h *reqHeader) put(b []byte) {
	b[0] = h.op
	b[1], b[2], b[3] = 0, 0, 0
	le.PutUint32(b[4:], h.length)
	le.PutUint64(b[8:], h.seq)
	le.PutUint64(b[16:], h.addr)
	le.PutUint32(b[24:], h.rkey)
	le.PutUint32(b[28:], 0)
}

func parseReq(b []byte) (reqHeader, error) {
	h := reqHeader{
		op:     b[0],
		length: le.Uint32(b[4:]),
		seq:    le.Uint64(b[8:]),
		addr:   le.Uint64(b[16:]),
		rkey:   le.Uint32(b[24:]),
	}
	if h.op != wireWrite && h.op != wireRead {
		return h, fmt.Errorf("bad request op %d", h.op)
	}
	if b[1]|b[2]|b[3] != 0 || le.Uint32(b[28:]) != 0 {
		return h, fmt.Errorf("nonzero reserved bytes in request % x", b[:reqLen])
	}
	if h.length > verbs.MaxMessageSize {
		return h, fmt.Errorf("request length %d exceeds %d", h.length, verbs.MaxMessageSize)
	}
	return h, nil
}

type ackHeader struct {
	seq    uint64
	status verbs.Status
	length uint32
}

func (h *ackHeader) put(b []byte) {
	le.PutUint64(b, h.seq)
	b[8] = byte(h.status)
	b[9], b[10], b[11] = 0, 0, 0
	le.PutUint32(b[12:], h.length)
}

func parseAck(b []byte) (ackHeader, error) {
	h := ackHeader{
		seq:    le.Uint64(b),
		status: verbs.Status(b[8]),
		length: le.Uint32(b[12:]),
	}
	switch h.status {
	case verbs.StatusSuccess, verbs.StatusRemoteAccessError, verbs.StatusRetryExceeded, statusProgress:
	default:
		return h, fmt.Errorf("bad ack status %d", b[8])
	}
	if b[9]|b[10]|b[11] != 0 {
		return h, fmt.Errorf("nonzero reserved bytes in ack % x", b[:ackLen])
	}
	if h.length > verbs.MaxMessageSize {
		return h, fmt.Errorf("ack length %d exceeds %d", h.length, verbs.MaxMessageSize)
	}
	return h, nil
}
