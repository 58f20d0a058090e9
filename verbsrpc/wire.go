package verbsrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"unsafe"

	"github.com/gomu-rdma/gomu/verbs"
)

// trailerLen is the size of the trailer that ends every slot:
//
//	+0  len  u32  payload bytes
//	+4  crc  u32  CRC-32C of payload, len, id and seq
//	+8  id   u64  request number (a response carries its request's)
//	+16 seq  u64  message number + 1, the word readers poll
const trailerLen = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// slotSize is the size of one ring slot for payloads of up to maxMsg bytes:
// a multiple of 8, so that every slot's seq word is 8-aligned.
func slotSize(maxMsg int) int { return (maxMsg+7)&^7 + trailerLen }

// seal writes the trailer of an n-byte message whose payload already sits
// right before the trailer of slot, and returns the payload's offset in
// slot: one WRITE of slot[off:] carries the whole message.
func seal(slot []byte, n int, id, seq uint64) int {
	t := slot[len(slot)-trailerLen:]
	binary.LittleEndian.PutUint32(t[0:], uint32(n))
	binary.LittleEndian.PutUint64(t[8:], id)
	binary.LittleEndian.PutUint64(t[16:], seq)
	off := len(slot) - trailerLen - n
	binary.LittleEndian.PutUint32(t[4:], checksum(slot[off:off+n], t))
	return off
}

func checksum(payload, trailer []byte) uint32 {
	c := crc32.Update(0, castagnoli, payload)
	c = crc32.Update(c, castagnoli, trailer[0:4])
	return crc32.Update(c, castagnoli, trailer[8:24])
}

// seqWord is the seq word of slot, for atomic loads.
func seqWord(slot []byte) *uint64 {
	return (*uint64)(unsafe.Pointer(&slot[len(slot)-8]))
}

// arrived reports whether slot's seq word says message seq has (at least
// partly) landed. It is the cheap test a poll loop runs on every pass.
func arrived(slot []byte, seq uint64) bool {
	return atomic.LoadUint64(seqWord(slot)) == seq
}

// check validates the message seq in slot once arrived says its seq word
// has landed, and returns its payload (aliasing slot) and id. ok is false
// while the message is incomplete: a WRITE of more than 8 bytes is not
// atomic to a poller (verbs contract, item 6), so the seq word may land
// before the rest; the caller polls again. Including seq in the CRC keeps
// an earlier lap's message, complete and self-consistent, from passing for
// the new one while only the seq word has landed.
func check(slot []byte, maxMsg int, seq uint64) (payload []byte, id uint64, ok bool) {
	t := slot[len(slot)-trailerLen:]
	n := int(binary.LittleEndian.Uint32(t[0:]))
	if n > maxMsg || binary.LittleEndian.Uint64(t[16:]) != seq {
		return nil, 0, false
	}
	off := len(slot) - trailerLen - n
	if checksum(slot[off:off+n], t) != binary.LittleEndian.Uint32(t[4:]) {
		return nil, 0, false
	}
	return slot[off : off+n], binary.LittleEndian.Uint64(t[8:]), true
}

// Handshake and service records. Each starts with wireMagic and a version
// byte; integers are little-endian.
const (
	wireMagic   = "gomu-verbsrpc"
	wireVersion = 1
	ctlLen      = 64 // the server's control area, one cache line
	// closeBit marks the control word of a client that closed.
	closeBit = 1 << 63
)

var errMalformed = errors.New("verbsrpc: malformed handshake record")

type wbuf []byte

func (b wbuf) u32(v uint32) wbuf { return binary.LittleEndian.AppendUint32(b, v) }
func (b wbuf) u64(v uint64) wbuf { return binary.LittleEndian.AppendUint64(b, v) }
func (b wbuf) remote(r verbs.Remote) wbuf {
	return b.u64(r.Addr).u32(r.RKey)
}

func header() wbuf { return append(wbuf(wireMagic), wireVersion) }

// rbuf reads what wbuf wrote; a short read sets bad.
type rbuf struct {
	b   []byte
	bad bool
}

func (r *rbuf) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *rbuf) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *rbuf) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }
func (r *rbuf) remote() verbs.Remote {
	return verbs.Remote{Addr: r.u64(), RKey: r.u32()}
}

func openRecord(what string, b []byte) (*rbuf, error) {
	h := header()
	if len(b) < len(h) || string(b[:len(wireMagic)]) != wireMagic {
		return nil, fmt.Errorf("%w: %s of %d bytes does not start with %q", errMalformed, what, len(b), wireMagic)
	}
	if v := b[len(wireMagic)]; v != wireVersion {
		return nil, fmt.Errorf("%w: %s of version %d, this build speaks version %d", errMalformed, what, v, wireVersion)
	}
	return &rbuf{b: b[len(h):]}, nil
}

// service is what a server publishes under "rpc/<Name>": its limits.
type service struct{ slots, maxMsg int }

func (s service) encode() []byte { return header().u32(uint32(s.slots)).u32(uint32(s.maxMsg)) }

func decodeService(b []byte) (service, error) {
	r, err := openRecord("service record", b)
	if err != nil {
		return service{}, err
	}
	s := service{slots: int(r.u32()), maxMsg: int(r.u32())}
	if r.bad || len(r.b) != 0 {
		return service{}, fmt.Errorf("%w: service record of %d bytes", errMalformed, len(b))
	}
	return s, nil
}

// hello is the client's question: its ring geometry, its response ring
// and its QP endpoint.
type hello struct {
	slots, maxMsg int
	respRing      verbs.Remote
	endpoint      []byte
}

func (h hello) encode() []byte {
	b := header().u32(uint32(h.slots)).u32(uint32(h.maxMsg)).remote(h.respRing)
	return append(b, h.endpoint...)
}

func decodeHello(b []byte) (hello, error) {
	r, err := openRecord("client hello", b)
	if err != nil {
		return hello{}, err
	}
	h := hello{slots: int(r.u32()), maxMsg: int(r.u32()), respRing: r.remote()}
	if r.bad || len(r.b) == 0 {
		return hello{}, fmt.Errorf("%w: client hello of %d bytes", errMalformed, len(b))
	}
	h.endpoint = r.b
	return h, nil
}

// welcome is the server's answer: either a refusal in words, or the
// connection id, its request ring, its control area and its QP endpoint.
type welcome struct {
	refused  string
	conn     uint64
	reqRing  verbs.Remote
	ctl      verbs.Remote
	endpoint []byte
}

func (w welcome) encode() []byte {
	if w.refused != "" {
		return append(append(header(), 1), w.refused...)
	}
	b := append(header(), 0).u64(w.conn).remote(w.reqRing).remote(w.ctl)
	return append(b, w.endpoint...)
}

func decodeWelcome(b []byte) (welcome, error) {
	r, err := openRecord("server answer", b)
	if err != nil {
		return welcome{}, err
	}
	switch r.take(1)[0] {
	case 0:
	case 1:
		return welcome{refused: string(r.b)}, nil
	default:
		return welcome{}, fmt.Errorf("%w: server answer with unknown status", errMalformed)
	}
	w := welcome{conn: r.u64(), reqRing: r.remote(), ctl: r.remote()}
	if r.bad || len(r.b) == 0 {
		return welcome{}, fmt.Errorf("%w: server answer of %d bytes", errMalformed, len(b))
	}
	w.endpoint = r.b
	return w, nil
}
