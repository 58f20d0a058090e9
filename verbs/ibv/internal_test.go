//go:build rdma && cgo

package ibv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

func TestEndpointRoundTrip(t *testing.T) {
	for _, e := range []endpoint{
		{linkLayer: linkLayerInfiniBand, mtu: mtu4096, qpn: 0x123456, psn: 0xabcdef, lid: 0x11},
		{linkLayer: linkLayerEthernet, mtu: mtu256, qpn: 1, psn: 0, gid: [16]byte{10: 0xff, 11: 0xff, 12: 192, 15: 10}},
	} {
		b := e.encode()
		if len(b) != endpointLen || !bytes.HasPrefix(b, endpointMagic[:]) || b[4] != endpointVersion {
			t.Fatalf("encode(%+v) = %x", e, b)
		}
		got, err := decodeEndpoint(b)
		if err != nil || got != e {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", e, got, err)
		}
	}
}

func TestDecodeEndpointRejects(t *testing.T) {
	good := endpoint{linkLayer: linkLayerInfiniBand, mtu: mtu4096, qpn: 7, psn: 9, lid: 3}.encode()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"short magic", good[:3]},
		{"other magic", edit(func(b []byte) []byte { b[0] = 's'; return b })},
		{"future version", edit(func(b []byte) []byte { b[4] = 2; return b })},
		{"truncated", good[:endpointLen-1]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"reserved set", edit(func(b []byte) []byte { b[7] = 1; return b })},
		{"unknown link layer", edit(func(b []byte) []byte { b[5] = 9; return b })},
		{"MTU 0", edit(func(b []byte) []byte { b[6] = 0; return b })},
		{"MTU 6", edit(func(b []byte) []byte { b[6] = 6; return b })},
		{"QP 0", edit(func(b []byte) []byte { clear(b[8:12]); return b })},
		{"QP over 24 bits", edit(func(b []byte) []byte { b[8] = 1; return b })},
		{"PSN over 24 bits", edit(func(b []byte) []byte { b[12] = 1; return b })},
		{"IB without LID", edit(func(b []byte) []byte { clear(b[16:18]); return b })},
		{"RoCE without GID", edit(func(b []byte) []byte { b[5] = linkLayerEthernet; return b })},
	} {
		if _, err := decodeEndpoint(tc.b); !errors.Is(err, verbs.ErrBadEndpoint) {
			t.Errorf("%s: decode = %v, want ErrBadEndpoint", tc.name, err)
		}
	}
}

func TestRetryFor(t *testing.T) {
	const unit = 4096 * time.Nanosecond
	worst := func(r retryParams) time.Duration {
		return 4 * time.Duration(r.retryCnt+1) * (unit << r.timeout)
	}
	for _, tc := range []struct {
		d       time.Duration
		timeout uint8
		retries uint8
	}{
		{100 * time.Millisecond, 9, 7},
		{200 * time.Millisecond, 10, 7},
		{time.Second, 12, 7},
		{100 * time.Microsecond, 1, 2},
		{time.Microsecond, 1, 0},  // below the hardware's resolution
		{1000 * time.Hour, 31, 7}, // the longest the field holds
	} {
		r := retryFor(tc.d)
		if r.timeout != tc.timeout || r.retryCnt != tc.retries {
			t.Errorf("retryFor(%v) = timeout %d retries %d, want %d and %d", tc.d, r.timeout, r.retryCnt, tc.timeout, tc.retries)
		}
		if r.timeout < 1 || r.timeout > 31 || r.retryCnt > 7 || r.rnrRetry > 6 {
			t.Errorf("retryFor(%v) = %+v: out of range", tc.d, r)
		}
		if tc.d >= 8*unit*4 && worst(r) > tc.d {
			t.Errorf("retryFor(%v) = %+v: worst case %v over the bound", tc.d, r, worst(r))
		}
	}
}

func TestMapStatus(t *testing.T) {
	// Numbers are enum ibv_wc_status, which is ABI.
	for _, tc := range []struct {
		wc   uint32
		want verbs.Status
	}{
		{0, verbs.StatusSuccess},               // IBV_WC_SUCCESS
		{1, verbs.StatusGeneralError},          // IBV_WC_LOC_LEN_ERR
		{4, verbs.StatusLocalProtectionError},  // IBV_WC_LOC_PROT_ERR
		{5, verbs.StatusFlushError},            // IBV_WC_WR_FLUSH_ERR
		{8, verbs.StatusLocalProtectionError},  // IBV_WC_LOC_ACCESS_ERR
		{9, verbs.StatusRemoteInvalidRequest},  // IBV_WC_REM_INV_REQ_ERR
		{10, verbs.StatusRemoteAccessError},    // IBV_WC_REM_ACCESS_ERR
		{11, verbs.StatusGeneralError},         // IBV_WC_REM_OP_ERR
		{12, verbs.StatusRetryExceeded},        // IBV_WC_RETRY_EXC_ERR
		{13, verbs.StatusRetryExceeded},        // IBV_WC_RNR_RETRY_EXC_ERR
		{15, verbs.StatusRemoteInvalidRequest}, // IBV_WC_REM_INV_RD_REQ_ERR
		{20, verbs.StatusRetryExceeded},        // IBV_WC_RESP_TIMEOUT_ERR
		{21, verbs.StatusGeneralError},         // IBV_WC_GENERAL_ERR
		{999, verbs.StatusGeneralError},
	} {
		if got := mapStatus(tc.wc); got != tc.want {
			t.Errorf("mapStatus(%d) = %v, want %v", tc.wc, got, tc.want)
		}
	}
}

// TestCompletionAccounting drives the send-queue and CQ bookkeeping by hand:
// which completions retire which requests, and that completions of requests
// dropped by a reset are ignored.
func TestCompletionAccounting(t *testing.T) {
	c := &cq{depth: 8}
	q := &qp{cq: c, num: 42, ring: make([]wrInfo, 4), state: verbs.StateRTS}
	post := func(wrID uint64) uint64 {
		t.Helper()
		if q.head-q.tail >= uint64(len(q.ring)) || !c.reserve() {
			t.Fatalf("post of wr %d refused: head %d tail %d reserved %d", wrID, q.head, q.tail, c.reserved.Load())
		}
		seq := q.head
		q.ring[seq%4] = wrInfo{wrID: wrID, length: uint32(wrID * 10), op: verbs.OpWrite}
		q.head++
		return seq
	}
	check := func(tail uint64, reserved int64) {
		t.Helper()
		if q.tail != tail || c.reserved.Load() != reserved {
			t.Fatalf("tail %d reserved %d, want %d and %d", q.tail, c.reserved.Load(), tail, reserved)
		}
	}

	// Three unsignaled requests and a signaled one: its completion
	// retires all four.
	for wr := uint64(1); wr <= 4; wr++ {
		post(wr)
	}
	if q.head-q.tail < uint64(len(q.ring)) {
		t.Fatal("send queue of 4 not full after 4 posts")
	}
	var got verbs.Completion
	if !q.complete(3, verbs.StatusSuccess, &got) {
		t.Fatal("completion of seq 3 ignored")
	}
	want := verbs.Completion{WRID: 4, QPNum: 42, Bytes: 40, Status: verbs.StatusSuccess, Op: verbs.OpWrite}
	if got != want {
		t.Fatalf("completion %+v, want %+v", got, want)
	}
	check(4, 0)

	// An error, then a flush: one completion each.
	post(5)
	post(6)
	if !q.complete(4, verbs.StatusRemoteAccessError, &got) || got.WRID != 5 {
		t.Fatalf("error completion: %+v", got)
	}
	check(5, 1)
	if !q.complete(5, verbs.StatusFlushError, &got) || got.WRID != 6 || got.Status != verbs.StatusFlushError {
		t.Fatalf("flush completion: %+v", got)
	}
	check(6, 0)

	// Reset drops what is outstanding; its late completions are stale.
	post(7)
	post(8)
	q.dropOutstandingLocked()
	check(8, 0)
	for _, seq := range []uint64{6, 7, 8, 100} {
		if q.complete(seq, verbs.StatusSuccess, &got) {
			t.Fatalf("stale or unknown seq %d completed as %+v", seq, got)
		}
	}
	check(8, 0)

	// The CQ's reservations bound posts across QPs.
	for range 8 {
		if !c.reserve() {
			t.Fatal("CQ of 8 refused a reservation")
		}
	}
	if c.reserve() {
		t.Fatal("CQ of 8 took a 9th reservation")
	}
}
