//go:build rdma && cgo

package ibv

// This file is the only one that speaks C. libibverbs' hot entry points
// (ibv_post_send, ibv_poll_cq) are static inline functions and others
// (ibv_reg_mr, ibv_query_port) are macros, which cgo cannot call, so every
// call goes through a small static helper below. The helpers take and
// return plain values: work requests and attribute structs are built on the
// C stack, and no Go pointer is ever handed to, or kept by, C.

/*
#cgo !ibvfake LDFLAGS: -libverbs
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <infiniband/verbs.h>

typedef struct {
	int err;
	uint64_t max_mr_size;
	int max_qp_wr, max_cqe, max_qp_rd_atom, max_qp_init_rd_atom, phys_port_cnt;
} gomu_dev_attr;

static gomu_dev_attr gomu_query_device(struct ibv_context *ctx) {
	struct ibv_device_attr a;
	gomu_dev_attr r;
	memset(&r, 0, sizeof r);
	r.err = ibv_query_device(ctx, &a);
	if (r.err)
		return r;
	r.max_mr_size = a.max_mr_size;
	r.max_qp_wr = a.max_qp_wr;
	r.max_cqe = a.max_cqe;
	r.max_qp_rd_atom = a.max_qp_rd_atom;
	r.max_qp_init_rd_atom = a.max_qp_init_rd_atom;
	r.phys_port_cnt = a.phys_port_cnt;
	return r;
}

typedef struct {
	int err, state, active_mtu, link_layer, gid_tbl_len;
	uint16_t lid;
	uint32_t max_msg_sz;
} gomu_port_attr;

static gomu_port_attr gomu_query_port(struct ibv_context *ctx, uint8_t port) {
	struct ibv_port_attr a;
	gomu_port_attr r;
	memset(&r, 0, sizeof r);
	r.err = ibv_query_port(ctx, port, &a); // a macro over ___ibv_query_port
	if (r.err)
		return r;
	r.state = a.state;
	r.active_mtu = a.active_mtu;
	r.link_layer = a.link_layer;
	r.gid_tbl_len = a.gid_tbl_len;
	r.lid = a.lid;
	r.max_msg_sz = a.max_msg_sz;
	return r;
}

typedef struct {
	uint8_t raw[16];
} gomu_gid;

typedef struct {
	int err;
	gomu_gid gid;
} gomu_gid_result;

static gomu_gid_result gomu_query_gid(struct ibv_context *ctx, uint8_t port, int index) {
	union ibv_gid g;
	gomu_gid_result r;
	memset(&r, 0, sizeof r);
	errno = 0;
	if (ibv_query_gid(ctx, port, index, &g)) {
		r.err = errno ? errno : EINVAL;
		return r;
	}
	memcpy(r.gid.raw, g.raw, 16);
	return r;
}

typedef struct {
	struct ibv_mr *mr;
	int err;
	uint32_t lkey, rkey;
} gomu_mr_result;

static gomu_mr_result gomu_reg_mr(struct ibv_pd *pd, uintptr_t addr, size_t len, unsigned int access) {
	gomu_mr_result r;
	memset(&r, 0, sizeof r);
	errno = 0;
	// access is not a compile-time constant, so the ibv_reg_mr macro
	// resolves to ibv_reg_mr_iova2 with iova = addr.
	r.mr = ibv_reg_mr(pd, (void *)addr, len, access);
	if (!r.mr) {
		r.err = errno ? errno : EINVAL;
		return r;
	}
	r.lkey = r.mr->lkey;
	r.rkey = r.mr->rkey;
	return r;
}

typedef struct {
	struct ibv_cq *cq;
	int err;
} gomu_cq_result;

static gomu_cq_result gomu_create_cq(struct ibv_context *ctx, int cqe) {
	gomu_cq_result r;
	errno = 0;
	r.cq = ibv_create_cq(ctx, cqe, NULL, NULL, 0);
	r.err = r.cq ? 0 : (errno ? errno : EINVAL);
	return r;
}

typedef struct {
	struct ibv_qp *qp;
	int err;
	uint32_t qp_num, max_send_wr, max_inline;
} gomu_qp_result;

static gomu_qp_result gomu_create_qp(struct ibv_pd *pd, struct ibv_cq *cq, uint32_t max_send_wr,
				     uint32_t max_inline) {
	struct ibv_qp_init_attr a;
	gomu_qp_result r;
	memset(&a, 0, sizeof a);
	memset(&r, 0, sizeof r);
	a.send_cq = cq;
	// No receive is ever posted, but providers want a receive CQ and a
	// receive queue of at least one entry.
	a.recv_cq = cq;
	a.qp_type = IBV_QPT_RC;
	a.sq_sig_all = 0;
	a.cap.max_send_wr = max_send_wr;
	a.cap.max_recv_wr = 1;
	a.cap.max_send_sge = 1;
	a.cap.max_recv_sge = 1;
	a.cap.max_inline_data = max_inline;
	errno = 0;
	r.qp = ibv_create_qp(pd, &a);
	if (!r.qp) {
		r.err = errno ? errno : EINVAL;
		return r;
	}
	r.qp_num = r.qp->qp_num;
	r.max_send_wr = a.cap.max_send_wr;     // what was granted
	r.max_inline = a.cap.max_inline_data; // idem
	return r;
}

static int gomu_qp_to_init(struct ibv_qp *qp, uint8_t port, unsigned int access) {
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = port;
	a.qp_access_flags = access;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

static int gomu_qp_to_rtr(struct ibv_qp *qp, uint8_t port, uint32_t dest_qpn, uint32_t rq_psn, int mtu,
			  uint16_t dlid, int is_global, gomu_gid dgid, uint8_t sgid_index,
			  uint8_t max_dest_rd_atomic) {
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = mtu;
	a.dest_qp_num = dest_qpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = max_dest_rd_atomic;
	a.min_rnr_timer = 12; // 0.64 ms; no SENDs are used, so never waited for
	a.ah_attr.dlid = dlid;
	a.ah_attr.port_num = port;
	if (is_global) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, dgid.raw, 16);
		a.ah_attr.grh.sgid_index = sgid_index;
		a.ah_attr.grh.hop_limit = 64; // RoCE v2 may be routed
	}
	return ibv_modify_qp(qp, &a,
			     IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				     IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
}

static int gomu_qp_to_rts(struct ibv_qp *qp, uint32_t sq_psn, uint8_t timeout, uint8_t retry_cnt,
			  uint8_t rnr_retry, uint8_t max_rd_atomic) {
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	a.timeout = timeout;
	a.retry_cnt = retry_cnt;
	a.rnr_retry = rnr_retry;
	a.max_rd_atomic = max_rd_atomic;
	return ibv_modify_qp(qp, &a,
			     IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

// gomu_qp_set_access changes the peer's rights without a state transition
// (RTS to RTS).
static int gomu_qp_set_access(struct ibv_qp *qp, unsigned int access) {
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_access_flags = access;
	return ibv_modify_qp(qp, &a, IBV_QP_ACCESS_FLAGS);
}

static int gomu_qp_reset(struct ibv_qp *qp) {
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RESET;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

// gomu_qp_state returns the QP's current state, or -errno.
static int gomu_qp_state(struct ibv_qp *qp) {
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;
	int err = ibv_query_qp(qp, &a, IBV_QP_STATE, &ia);
	return err ? -err : (int)a.qp_state;
}

// gomu_post posts one RDMA WRITE or READ built on the C stack. A zero
// length is posted without a scatter/gather entry: some NICs read a zero
// sge length as 2 GiB.
static int gomu_post(struct ibv_qp *qp, uint64_t wr_id, int opcode, uint64_t laddr, uint32_t len,
		     uint32_t lkey, uint64_t raddr, uint32_t rkey, unsigned int flags) {
	struct ibv_sge sge = {.addr = laddr, .length = len, .lkey = lkey};
	struct ibv_send_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wr_id;
	if (len > 0) {
		wr.sg_list = &sge;
		wr.num_sge = 1;
	}
	wr.opcode = opcode;
	wr.send_flags = flags;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(qp, &wr, &bad);
}

static int gomu_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc) {
	return ibv_poll_cq(cq, n, wc);
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/gomu-rdma/gomu/verbs"
)

// Handles to libibverbs objects. They are C pointers, kept in Go structs
// and passed back to C; C never sees a Go pointer.
type (
	ctxHandle = *C.struct_ibv_context
	pdHandle  = *C.struct_ibv_pd
	mrHandle  = *C.struct_ibv_mr
	cqHandle  = *C.struct_ibv_cq
	qpHandle  = *C.struct_ibv_qp
)

// Values of libibverbs enums the provider needs outside this file.
const (
	linkLayerInfiniBand = C.IBV_LINK_LAYER_INFINIBAND
	linkLayerEthernet   = C.IBV_LINK_LAYER_ETHERNET
	portActive          = C.IBV_PORT_ACTIVE
	portActiveDefer     = C.IBV_PORT_ACTIVE_DEFER

	mtu256  = C.IBV_MTU_256
	mtu4096 = C.IBV_MTU_4096

	accessLocalWrite  = C.IBV_ACCESS_LOCAL_WRITE
	accessRemoteWrite = C.IBV_ACCESS_REMOTE_WRITE
	accessRemoteRead  = C.IBV_ACCESS_REMOTE_READ

	sendSignaled = C.IBV_SEND_SIGNALED
	sendInline   = C.IBV_SEND_INLINE

	wrRDMAWrite = C.IBV_WR_RDMA_WRITE
	wrRDMARead  = C.IBV_WR_RDMA_READ
)

// errnoErr turns a libibverbs return code (a positive errno) into an error.
func errnoErr(rc C.int) error {
	if rc < 0 {
		rc = -rc
	}
	return syscall.Errno(rc)
}

// listDevices returns the RDMA devices present. The list must be released
// with freeDevices once the wanted device is open.
func listDevices() ([]*C.struct_ibv_device, **C.struct_ibv_device, error) {
	var n C.int
	list, err := C.ibv_get_device_list(&n)
	if list == nil {
		// ENOSYS: no kernel RDMA support at all. Either way there is
		// no device to use.
		return nil, nil, err
	}
	return unsafe.Slice(list, int(n)), list, nil
}

func freeDevices(list **C.struct_ibv_device) {
	if list != nil {
		C.ibv_free_device_list(list)
	}
}

func deviceName(d *C.struct_ibv_device) string { return C.GoString(C.ibv_get_device_name(d)) }

func openDevice(d *C.struct_ibv_device) (ctxHandle, error) {
	ctx, err := C.ibv_open_device(d)
	if ctx == nil {
		return nil, err
	}
	return ctx, nil
}

func closeDevice(ctx ctxHandle) error {
	if rc := C.ibv_close_device(ctx); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

// deviceAttr is the part of ibv_device_attr the provider uses.
type deviceAttr struct {
	maxMRSize       uint64
	maxQPWR         int
	maxCQE          int
	maxQPRdAtom     int
	maxQPInitRdAtom int
	physPortCnt     int
}

func queryDevice(ctx ctxHandle) (deviceAttr, error) {
	r := C.gomu_query_device(ctx)
	if r.err != 0 {
		return deviceAttr{}, errnoErr(r.err)
	}
	return deviceAttr{
		maxMRSize:       uint64(r.max_mr_size),
		maxQPWR:         int(r.max_qp_wr),
		maxCQE:          int(r.max_cqe),
		maxQPRdAtom:     int(r.max_qp_rd_atom),
		maxQPInitRdAtom: int(r.max_qp_init_rd_atom),
		physPortCnt:     int(r.phys_port_cnt),
	}, nil
}

// portAttr is the part of ibv_port_attr the provider uses.
type portAttr struct {
	state      int
	activeMTU  int
	linkLayer  int
	gidTblLen  int
	lid        uint16
	maxMsgSize uint32
}

func queryPort(ctx ctxHandle, port uint8) (portAttr, error) {
	r := C.gomu_query_port(ctx, C.uint8_t(port))
	if r.err != 0 {
		return portAttr{}, errnoErr(r.err)
	}
	return portAttr{
		state:      int(r.state),
		activeMTU:  int(r.active_mtu),
		linkLayer:  int(r.link_layer),
		gidTblLen:  int(r.gid_tbl_len),
		lid:        uint16(r.lid),
		maxMsgSize: uint32(r.max_msg_sz),
	}, nil
}

func queryGID(ctx ctxHandle, port uint8, index int) ([16]byte, error) {
	var gid [16]byte
	r := C.gomu_query_gid(ctx, C.uint8_t(port), C.int(index))
	if r.err != 0 {
		return gid, errnoErr(r.err)
	}
	for i := range gid {
		gid[i] = byte(r.gid.raw[i])
	}
	return gid, nil
}

func allocPD(ctx ctxHandle) (pdHandle, error) {
	pd, err := C.ibv_alloc_pd(ctx)
	if pd == nil {
		if err == nil {
			err = syscall.ENOMEM
		}
		return nil, err
	}
	return pd, nil
}

func deallocPD(pd pdHandle) error {
	if rc := C.ibv_dealloc_pd(pd); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

// regMR registers length bytes at addr, which must not be Go memory.
func regMR(pd pdHandle, addr uintptr, length int, access uint32) (mrHandle, uint32, uint32, error) {
	r := C.gomu_reg_mr(pd, C.uintptr_t(addr), C.size_t(length), C.uint(access))
	if r.err != 0 {
		return nil, 0, 0, errnoErr(r.err)
	}
	return r.mr, uint32(r.lkey), uint32(r.rkey), nil
}

func deregMR(mr mrHandle) error {
	if rc := C.ibv_dereg_mr(mr); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

func createCQ(ctx ctxHandle, cqe int) (cqHandle, error) {
	r := C.gomu_create_cq(ctx, C.int(cqe))
	if r.err != 0 {
		return nil, errnoErr(r.err)
	}
	return r.cq, nil
}

func destroyCQ(cq cqHandle) error {
	if rc := C.ibv_destroy_cq(cq); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

// createQP makes an RC QP; it reports the QP number and the send-queue
// depth and inline size the device granted (at least what was asked).
func createQP(pd pdHandle, cq cqHandle, maxSendWR, maxInline int) (qp qpHandle, num uint32, grantedWR, grantedInline int, err error) {
	r := C.gomu_create_qp(pd, cq, C.uint32_t(maxSendWR), C.uint32_t(maxInline))
	if r.err != 0 {
		return nil, 0, 0, 0, errnoErr(r.err)
	}
	return r.qp, uint32(r.qp_num), int(r.max_send_wr), int(r.max_inline), nil
}

func destroyQP(qp qpHandle) error {
	if rc := C.ibv_destroy_qp(qp); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

func qpToInit(qp qpHandle, port uint8, access uint32) error {
	if rc := C.gomu_qp_to_init(qp, C.uint8_t(port), C.uint(access)); rc != 0 {
		return fmt.Errorf("RESET→INIT: %w", errnoErr(rc))
	}
	return nil
}

// rtrAttr is what moving to RTR needs to know about the path to the peer.
type rtrAttr struct {
	port          uint8
	destQPN       uint32
	rqPSN         uint32
	mtu           int
	dlid          uint16
	global        bool // use a GRH: RoCE always, InfiniBand never here
	dgid          [16]byte
	sgidIndex     uint8
	maxDestRdAtom uint8
}

func qpToRTR(qp qpHandle, a rtrAttr) error {
	var gid C.gomu_gid
	for i, b := range a.dgid {
		gid.raw[i] = C.uint8_t(b)
	}
	global := C.int(0)
	if a.global {
		global = 1
	}
	rc := C.gomu_qp_to_rtr(qp, C.uint8_t(a.port), C.uint32_t(a.destQPN), C.uint32_t(a.rqPSN), C.int(a.mtu),
		C.uint16_t(a.dlid), global, gid, C.uint8_t(a.sgidIndex), C.uint8_t(a.maxDestRdAtom))
	if rc != 0 {
		return fmt.Errorf("INIT→RTR: %w", errnoErr(rc))
	}
	return nil
}

func qpToRTS(qp qpHandle, sqPSN uint32, r retryParams, maxRdAtom uint8) error {
	rc := C.gomu_qp_to_rts(qp, C.uint32_t(sqPSN), C.uint8_t(r.timeout), C.uint8_t(r.retryCnt),
		C.uint8_t(r.rnrRetry), C.uint8_t(maxRdAtom))
	if rc != 0 {
		return fmt.Errorf("RTR→RTS: %w", errnoErr(rc))
	}
	return nil
}

func qpSetAccess(qp qpHandle, access uint32) error {
	if rc := C.gomu_qp_set_access(qp, C.uint(access)); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

func qpReset(qp qpHandle) error {
	if rc := C.gomu_qp_reset(qp); rc != 0 {
		return errnoErr(rc)
	}
	return nil
}

// qpState asks the device for the QP's state: a QP moves to ERROR on the
// NIC, without the provider being told.
func qpState(qp qpHandle) (verbs.QPState, error) {
	s := C.gomu_qp_state(qp)
	if s < 0 {
		return verbs.StateError, errnoErr(s)
	}
	switch s {
	case C.IBV_QPS_RESET:
		return verbs.StateReset, nil
	case C.IBV_QPS_INIT:
		return verbs.StateInit, nil
	case C.IBV_QPS_RTR:
		return verbs.StateRTR, nil
	case C.IBV_QPS_RTS, C.IBV_QPS_SQD:
		return verbs.StateRTS, nil
	}
	return verbs.StateError, nil // ERR, SQE, UNKNOWN
}

// postSend posts one WRITE or READ; it returns the provider's errno.
func postSend(qp qpHandle, wrID uint64, opcode int, laddr uint64, length uint32, lkey uint32, raddr uint64, rkey uint32, flags uint32) syscall.Errno {
	return syscall.Errno(C.gomu_post(qp, C.uint64_t(wrID), C.int(opcode), C.uint64_t(laddr), C.uint32_t(length),
		C.uint32_t(lkey), C.uint64_t(raddr), C.uint32_t(rkey), C.uint(flags)))
}

// wcArray is a caller-owned C array of work completions that ibv_poll_cq
// fills. It lives in C memory, so polling passes no Go pointer to C.
type wcArray struct {
	p *C.struct_ibv_wc
	n int
}

func newWCArray(n int) wcArray {
	p := (*C.struct_ibv_wc)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.struct_ibv_wc{}))))
	return wcArray{p: p, n: n}
}

func (a *wcArray) free() {
	if a.p != nil {
		C.free(unsafe.Pointer(a.p))
		a.p, a.n = nil, 0
	}
}

// poll fills up to n entries of a and returns how many.
func (a *wcArray) poll(cq cqHandle, n int) (int, error) {
	got := C.gomu_poll_cq(cq, C.int(min(n, a.n)), a.p)
	if got < 0 {
		// Providers return -1 or -errno; either way the CQ is broken
		// (overrun), which the accounting is there to prevent.
		return 0, fmt.Errorf("ibv_poll_cq: %w", errnoErr(got))
	}
	return int(got), nil
}

// at returns what the provider reads of the i-th completion. The opcode and
// byte count of a failed completion are undefined, so they are not read.
func (a *wcArray) at(i int) (wrID uint64, qpNum uint32, status verbs.Status) {
	wc := &unsafe.Slice(a.p, a.n)[i]
	return uint64(wc.wr_id), uint32(wc.qp_num), mapStatus(uint32(wc.status))
}

// mapStatus maps enum ibv_wc_status onto verbs.Status.
func mapStatus(s uint32) verbs.Status {
	switch s {
	case C.IBV_WC_SUCCESS:
		return verbs.StatusSuccess
	case C.IBV_WC_LOC_PROT_ERR, C.IBV_WC_LOC_ACCESS_ERR:
		return verbs.StatusLocalProtectionError
	case C.IBV_WC_REM_ACCESS_ERR:
		return verbs.StatusRemoteAccessError
	case C.IBV_WC_WR_FLUSH_ERR:
		return verbs.StatusFlushError
	case C.IBV_WC_RETRY_EXC_ERR, C.IBV_WC_RNR_RETRY_EXC_ERR, C.IBV_WC_RESP_TIMEOUT_ERR:
		return verbs.StatusRetryExceeded
	case C.IBV_WC_REM_INV_REQ_ERR, C.IBV_WC_REM_INV_RD_REQ_ERR:
		return verbs.StatusRemoteInvalidRequest
	}
	return verbs.StatusGeneralError
}
