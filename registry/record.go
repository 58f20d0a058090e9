package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The value formats; see the package doc.
const (
	formatVersion = 1

	kindAnnounce = 'A'
	kindPublish  = 'P'
	kindBarrier  = 'B'

	headerLen   = 14 // version, kind, id, incarnation
	announceLen = headerLen + 8 + 1
	publishHdr  = headerLen + 8
	barrierHdr  = headerLen + 2
	barrierElem = 4 + 8

	stateLive     = 1
	stateDeparted = 2

	// maxSeen bounds a barrier entry's list; ids go up to MaxID but a
	// barrier of more participants than this is a mistake.
	maxSeen = 1024
)

// ErrMalformedValue is wrapped by every *ValueError.
var ErrMalformedValue = errors.New("malformed registry value")

// ValueError reports a value that does not parse as the record its key
// should hold.
type ValueError struct {
	Key    string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("registry: malformed value under key %q: %s", e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrMalformedValue) true.
func (e *ValueError) Is(target error) bool { return target == ErrMalformedValue }

func putHeader(b []byte, kind byte, p Peer) []byte {
	b = append(b, formatVersion, kind)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.ID))
	return binary.LittleEndian.AppendUint64(b, p.Incarnation)
}

// checkHeader validates version, kind and id of a record read under key and
// returns its incarnation.
func checkHeader(key string, b []byte, kind byte, id int) (uint64, error) {
	bad := func(format string, args ...any) (uint64, error) {
		return 0, &ValueError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < headerLen {
		return bad("%d bytes, shorter than the %d-byte header", len(b), headerLen)
	}
	if b[0] != formatVersion {
		return bad("format version %d, this build reads version %d", b[0], formatVersion)
	}
	if b[1] != kind {
		return bad("record kind %q, want %q", b[1], kind)
	}
	if got := binary.LittleEndian.Uint32(b[2:]); int64(got) != int64(id) {
		return bad("record of replica %d under the key of replica %d", got, id)
	}
	inc := binary.LittleEndian.Uint64(b[6:])
	if inc == 0 {
		return bad("incarnation 0")
	}
	return inc, nil
}

// announceRec is the value of an announce key.
type announceRec struct {
	inc      uint64
	unixNano int64
	departed bool
}

func encodeAnnounce(p Peer, unixNano int64, departed bool) []byte {
	b := putHeader(make([]byte, 0, announceLen), kindAnnounce, p)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano))
	state := byte(stateLive)
	if departed {
		state = stateDeparted
	}
	return append(b, state)
}

func decodeAnnounce(key string, id int, b []byte) (announceRec, error) {
	inc, err := checkHeader(key, b, kindAnnounce, id)
	if err != nil {
		return announceRec{}, err
	}
	if len(b) != announceLen {
		return announceRec{}, &ValueError{Key: key, Reason: fmt.Sprintf("announce record of %d bytes, want %d", len(b), announceLen)}
	}
	a := announceRec{inc: inc, unixNano: int64(binary.LittleEndian.Uint64(b[headerLen:]))}
	switch b[announceLen-1] {
	case stateLive:
	case stateDeparted:
		a.departed = true
	default:
		return announceRec{}, &ValueError{Key: key, Reason: fmt.Sprintf("unknown announce state %d", b[announceLen-1])}
	}
	return a, nil
}

func encodePublish(p Peer, unixNano int64, value []byte) []byte {
	b := putHeader(make([]byte, 0, publishHdr+len(value)), kindPublish, p)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano))
	return append(b, value...)
}

// decodePublish checks a published record against the peer its key names
// and returns its time and value (aliasing b).
func decodePublish(key string, p Peer, b []byte) (int64, []byte, error) {
	inc, err := checkHeader(key, b, kindPublish, p.ID)
	if err != nil {
		return 0, nil, err
	}
	if inc != p.Incarnation {
		return 0, nil, &ValueError{Key: key, Reason: fmt.Sprintf("record of incarnation %016x under the key of incarnation %016x", inc, p.Incarnation)}
	}
	if len(b) < publishHdr {
		return 0, nil, &ValueError{Key: key, Reason: fmt.Sprintf("published record of %d bytes, shorter than its %d-byte header", len(b), publishHdr)}
	}
	return int64(binary.LittleEndian.Uint64(b[headerLen:])), b[publishHdr:], nil
}

// barrierRec is a barrier entry: who wrote it and whom it has seen.
type barrierRec struct {
	inc  uint64
	seen []Peer // sorted by id
}

func (e barrierRec) acknowledges(p Peer) bool {
	return slices.Contains(e.seen, p)
}

func encodeBarrier(p Peer, seen []Peer) []byte {
	b := putHeader(make([]byte, 0, barrierHdr+barrierElem*len(seen)), kindBarrier, p)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(seen)))
	for _, s := range seen {
		b = binary.LittleEndian.AppendUint32(b, uint32(s.ID))
		b = binary.LittleEndian.AppendUint64(b, s.Incarnation)
	}
	return b
}

func decodeBarrier(key string, id int, b []byte) (barrierRec, error) {
	inc, err := checkHeader(key, b, kindBarrier, id)
	if err != nil {
		return barrierRec{}, err
	}
	if len(b) < barrierHdr {
		return barrierRec{}, &ValueError{Key: key, Reason: fmt.Sprintf("barrier entry of %d bytes, shorter than its %d-byte header", len(b), barrierHdr)}
	}
	n := int(binary.LittleEndian.Uint16(b[headerLen:]))
	if n > maxSeen || len(b) != barrierHdr+barrierElem*n {
		return barrierRec{}, &ValueError{Key: key, Reason: fmt.Sprintf("barrier entry of %d bytes cannot list %d participants", len(b), n)}
	}
	rec := barrierRec{inc: inc, seen: make([]Peer, n)}
	for i := range n {
		o := barrierHdr + barrierElem*i
		rec.seen[i] = Peer{
			ID:          int(binary.LittleEndian.Uint32(b[o:])),
			Incarnation: binary.LittleEndian.Uint64(b[o+4:]),
		}
	}
	return rec, nil
}
