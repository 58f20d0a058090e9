//go:build rdma && cgo

package ibv

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// An endpoint is what a peer needs to connect an RC QP to ours. Version 1,
// big-endian, endpointLen bytes:
//
//	0  magic "gmIB"
//	4  version (1)
//	5  link layer of the port (IBV_LINK_LAYER_*)
//	6  active MTU of the port (enum ibv_mtu)
//	7  reserved, 0
//	8  QP number (24 bits used)
//	12 initial packet sequence number (24 bits used)
//	16 LID (InfiniBand)
//	18 GID (RoCE; on InfiniBand the port's GID 0, informational)
const (
	endpointVersion = 1
	endpointLen     = 34
)

var endpointMagic = [4]byte{'g', 'm', 'I', 'B'}

type endpoint struct {
	linkLayer uint8
	mtu       uint8
	qpn       uint32
	psn       uint32
	lid       uint16
	gid       [16]byte
}

func (e endpoint) encode() []byte {
	b := make([]byte, endpointLen)
	copy(b, endpointMagic[:])
	b[4] = endpointVersion
	b[5] = e.linkLayer
	b[6] = e.mtu
	binary.BigEndian.PutUint32(b[8:], e.qpn)
	binary.BigEndian.PutUint32(b[12:], e.psn)
	binary.BigEndian.PutUint16(b[16:], e.lid)
	copy(b[18:], e.gid[:])
	return b
}

// decodeEndpoint parses and sanity-checks an endpoint; every failure wraps
// verbs.ErrBadEndpoint.
func decodeEndpoint(b []byte) (endpoint, error) {
	bad := func(format string, args ...any) (endpoint, error) {
		return endpoint{}, fmt.Errorf("ibv: endpoint: %s: %w", fmt.Sprintf(format, args...), verbs.ErrBadEndpoint)
	}
	if len(b) < 5 || [4]byte(b[:4]) != endpointMagic {
		return bad("not an ibv endpoint (%d bytes)", len(b))
	}
	if b[4] != endpointVersion {
		return bad("version %d, want %d", b[4], endpointVersion)
	}
	if len(b) != endpointLen {
		return bad("%d bytes, want %d", len(b), endpointLen)
	}
	e := endpoint{
		linkLayer: b[5],
		mtu:       b[6],
		qpn:       binary.BigEndian.Uint32(b[8:]),
		psn:       binary.BigEndian.Uint32(b[12:]),
		lid:       binary.BigEndian.Uint16(b[16:]),
		gid:       [16]byte(b[18:34]),
	}
	switch {
	case b[7] != 0:
		return bad("reserved byte %#x", b[7])
	case e.linkLayer != linkLayerInfiniBand && e.linkLayer != linkLayerEthernet:
		return bad("link layer %d", e.linkLayer)
	case e.mtu < mtu256 || e.mtu > mtu4096:
		return bad("MTU code %d", e.mtu)
	case e.qpn == 0 || e.qpn > 0xffffff:
		return bad("QP number %#x", e.qpn)
	case e.psn > 0xffffff:
		return bad("PSN %#x", e.psn)
	case e.linkLayer == linkLayerInfiniBand && e.lid == 0:
		return bad("InfiniBand endpoint without a LID")
	case e.linkLayer == linkLayerEthernet && e.gid == [16]byte{}:
		return bad("RoCE endpoint without a GID")
	}
	return e, nil
}

// retryParams are the RC QP's transport retry settings.
type retryParams struct {
	timeout  uint8 // local ACK timeout: 4.096 µs × 2^timeout
	retryCnt uint8 // retransmissions before IBV_WC_RETRY_EXC_ERR
	rnrRetry uint8 // receiver-not-ready retries; no SENDs are used, 7 would mean forever
}

// retryFor derives retry settings so that a request to a dead peer fails
// within d. The IBA lets the ACK timer fire anywhere between one and four
// times its nominal value, and the request is sent retryCnt+1 times, so the
// worst case is 4 × (retryCnt+1) × 4.096 µs × 2^timeout. As many retries as
// fit (up to the maximum of 7) are kept, to ride out packet loss on RoCE.
func retryFor(d time.Duration) retryParams {
	const unit = 4096 * time.Nanosecond
	for retries := 7; retries >= 0; retries-- {
		perTry := d / time.Duration(4*(retries+1))
		t := 0
		for t < 31 && unit<<(t+1) <= perTry {
			t++
		}
		// timeout 0 means wait forever: never use it.
		if t >= 1 {
			return retryParams{timeout: uint8(t), retryCnt: uint8(retries), rnrRetry: uint8(min(retries, 6))}
		}
	}
	return retryParams{timeout: 1}
}
