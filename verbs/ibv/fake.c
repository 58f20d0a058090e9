//go:build rdma && ibvfake && cgo

// An in-process software double of the libibverbs subset the ibv provider
// uses, compiled instead of linking libibverbs under the ibvfake build tag so
// that the provider's real cgo code path runs in CI without a NIC.
//
// It compiles against the installed <infiniband/verbs.h> and implements what
// that header's inline functions and macros actually call:
//
//   ibv_get_device_list, ibv_free_device_list, ibv_get_device_name,
//   ibv_open_device, ibv_close_device, ibv_query_device, ibv_query_gid,
//   verbs_context.query_port, ibv_query_port (behind the ibv_query_port macro)
//   ibv_alloc_pd, ibv_dealloc_pd,
//   ibv_reg_mr_iova2, ibv_reg_mr       (behind the ibv_reg_mr macro)
//   ibv_dereg_mr, ibv_create_cq, ibv_destroy_cq,
//   ibv_context_ops.poll_cq            (behind the ibv_poll_cq inline)
//   ibv_create_qp, ibv_modify_qp, ibv_query_qp, ibv_destroy_qp,
//   ibv_context_ops.post_send          (behind the ibv_post_send inline)
//
// The fabric is the process: every opened context sees every QP, found by
// number through a global table. Two devices exist, "fakeib0" (InfiniBand,
// addressed by LID) and "fakeroce0" (Ethernet, addressed by GID), so both of
// the provider's addressing paths are exercised. A WRITE or READ is executed
// synchronously inside post_send, under the one global lock that
// modify_qp also takes: an access change therefore fences every request,
// which is the revoke fence the provider promises.
//
// Like a NIC, the fake is strict where the provider could be wrong: it
// enforces the QP state machine and the attribute masks of each transition,
// send-queue depth (slots retire when poll_cq returns the completion), CQ
// overrun, and checks the address vector of every request against the
// destination port, so a provider bug shows up as a failed test rather than
// as a surprise on real hardware. As on a NIC, a responder that refuses a
// request for its rkey, bounds or access moves its own QP to ERROR too.

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

enum {
	FAKE_NDEV = 2,
	FAKE_MAX_QP_WR = 16384,
	FAKE_MAX_CQE = 1 << 22,
	FAKE_MAX_SGE = 4,
	FAKE_MAX_INLINE = 512,
	FAKE_MAX_RD_ATOM = 16,
	FAKE_NGID = 2,
	FAKE_MAX_QPN = 0xffffff,
};
#define FAKE_MAX_MR_SIZE (1ULL << 40)
#define FAKE_MAX_MSG_SZ (1U << 31)

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;

struct fake_dev {
	struct ibv_device dev; // handed out by ibv_get_device_list
	uint8_t link_layer;
	uint16_t lid;
	enum ibv_mtu mtu;
	union ibv_gid gid[FAKE_NGID];
};

static struct fake_dev fake_devs[FAKE_NDEV];
static int fake_ndev = FAKE_NDEV;
static int fake_inited;
static uint32_t fake_pd_handles;

struct fake_ctx {
	struct verbs_context vctx; // verbs_get_ctx finds it from &vctx.context
	struct fake_dev *fdev;
	int nobj; // live PDs and CQs: closing a busy context fails
};

struct fake_pd {
	struct ibv_pd pd;
	int users; // MRs and QPs
};

struct fake_mr {
	struct ibv_mr mr;
	uint64_t iova;
	unsigned int access;
	uint32_t idx;
};

struct fake_cqe {
	struct ibv_wc wc;
	uint64_t seq; // the QP's send-queue sequence number of the request
};

struct fake_cq {
	struct ibv_cq cq;
	struct fake_cqe *ring;
	int cap, head, n;
	int overrun;
	int users; // QPs
};

struct fake_qp {
	struct ibv_qp qp;
	struct ibv_qp_cap cap;
	struct fake_ctx *ctx;
	uint32_t idx;
	unsigned int access;
	struct ibv_ah_attr ah;
	enum ibv_mtu path_mtu;
	uint32_t dest_qpn, rq_psn, sq_psn;
	uint8_t timeout, retry_cnt, rnr_retry, max_rd_atomic, max_dest_rd_atomic;
	uint64_t posted, retired; // send-queue occupancy is posted - retired
};

// MRs are found by key: key = idx << 8 | a random byte, as NICs do, with
// idx an index into mrs. Freed indices are reused, with a new random byte.
static struct fake_mr **mrs;
static uint32_t mrs_cap;
static uint32_t *mr_free;
static uint32_t mr_nfree, mr_next = 1;

// QPs are found by number: qpn = qpn_base + idx. Numbers are never reused,
// so a stale peer can never reach a newer QP by accident.
static struct fake_qp **qps;
static uint32_t qps_cap, qp_next, qpn_base;

static uint32_t fake_rand32(void)
{
	uint32_t r;
	if (getrandom(&r, sizeof r, 0) != sizeof r) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() * 2654435761u;
	}
	return r;
}

static void fake_set_name(struct ibv_device *d, const char *name, const char *uverbs)
{
	strncpy(d->name, name, sizeof d->name - 1);
	strncpy(d->dev_name, uverbs, sizeof d->dev_name - 1);
	strncpy(d->dev_path, "/sys/class/infiniband_verbs/", sizeof d->dev_path - 1);
	strncat(d->dev_path, uverbs, sizeof d->dev_path - strlen(d->dev_path) - 1);
	strncpy(d->ibdev_path, "/sys/class/infiniband/", sizeof d->ibdev_path - 1);
	strncat(d->ibdev_path, name, sizeof d->ibdev_path - strlen(d->ibdev_path) - 1);
	d->node_type = IBV_NODE_CA;
	d->transport_type = IBV_TRANSPORT_IB;
}

static void fake_init_locked(void)
{
	if (fake_inited)
		return;
	fake_inited = 1;
	qpn_base = 0x100 + (fake_rand32() & 0x3fff);

	struct fake_dev *ib = &fake_devs[0];
	fake_set_name(&ib->dev, "fakeib0", "uverbs0");
	ib->link_layer = IBV_LINK_LAYER_INFINIBAND;
	ib->lid = 0x11;
	ib->mtu = IBV_MTU_4096;
	static const uint8_t ibgid[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
					  0x00, 0x02, 0xc9, 0x03, 0x00, 0x0f, 0xa0, 0x01};
	memcpy(ib->gid[0].raw, ibgid, 16);

	struct fake_dev *roce = &fake_devs[1];
	fake_set_name(&roce->dev, "fakeroce0", "uverbs1");
	roce->link_layer = IBV_LINK_LAYER_ETHERNET;
	roce->lid = 0;
	roce->mtu = IBV_MTU_1024;
	// Index 0: link-local RoCE v1 GID from the MAC; index 1: RoCE v2
	// IPv4-mapped 192.0.2.10.
	static const uint8_t rocegid0[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
					     0x02, 0x00, 0x5e, 0xff, 0xfe, 0x00, 0x53, 0x0a};
	static const uint8_t rocegid1[16] = {0, 0, 0, 0, 0, 0, 0, 0,
					     0, 0, 0xff, 0xff, 192, 0, 2, 10};
	memcpy(roce->gid[0].raw, rocegid0, 16);
	memcpy(roce->gid[1].raw, rocegid1, 16);
}

// gomu_fake_set_ndevices makes the fake report only the first n devices
// (0: none), for tests of the no-device path. It returns the previous count.
int gomu_fake_set_ndevices(int n)
{
	pthread_mutex_lock(&fake_mu);
	int old = fake_ndev;
	fake_ndev = n < 0 ? 0 : n > FAKE_NDEV ? FAKE_NDEV : n;
	pthread_mutex_unlock(&fake_mu);
	return old;
}

// fake_ctx_of finds the fake context around an ibv_context, which is the
// last member of its verbs_context.
static struct fake_ctx *fake_ctx_of(struct ibv_context *ctx)
{
	return (struct fake_ctx *)((uint8_t *)ctx - offsetof(struct fake_ctx, vctx.context));
}

static struct fake_dev *fake_dev_of(struct ibv_context *ctx)
{
	return fake_ctx_of(ctx)->fdev;
}

// ---- devices ----

struct ibv_device **ibv_get_device_list(int *num_devices)
{
	pthread_mutex_lock(&fake_mu);
	fake_init_locked();
	int n = fake_ndev;
	pthread_mutex_unlock(&fake_mu);

	struct ibv_device **list = calloc((size_t)n + 1, sizeof *list);
	if (!list) {
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < n; i++)
		list[i] = &fake_devs[i].dev;
	if (num_devices)
		*num_devices = n;
	return list;
}

void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

const char *ibv_get_device_name(struct ibv_device *device)
{
	return device->name;
}

static int fake_query_port(struct ibv_context *ctx, uint8_t port_num,
			   struct ibv_port_attr *attr, size_t attr_len);
static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad_wr);
static int fake_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);

struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	struct fake_dev *fdev = NULL;
	for (int i = 0; i < FAKE_NDEV; i++)
		if (device == &fake_devs[i].dev)
			fdev = &fake_devs[i];
	if (!fdev) {
		errno = ENODEV;
		return NULL;
	}
	struct fake_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->fdev = fdev;
	c->vctx.sz = sizeof(struct verbs_context);
	c->vctx.query_port = fake_query_port;
	struct ibv_context *ctx = &c->vctx.context;
	ctx->device = device;
	ctx->cmd_fd = -1;
	ctx->async_fd = -1;
	ctx->num_comp_vectors = 1;
	ctx->abi_compat = __VERBS_ABI_IS_EXTENDED;
	ctx->ops.post_send = fake_post_send;
	ctx->ops.poll_cq = fake_poll_cq;
	pthread_mutex_init(&ctx->mutex, NULL);
	return ctx;
}

int ibv_close_device(struct ibv_context *ctx)
{
	struct fake_ctx *c = fake_ctx_of(ctx);
	pthread_mutex_lock(&fake_mu);
	int busy = c->nobj > 0;
	pthread_mutex_unlock(&fake_mu);
	// The kernel would clean up after us; the fake refuses, so that the
	// provider's own cleanup is what gets tested.
	if (busy)
		return EBUSY;
	pthread_mutex_destroy(&ctx->mutex);
	free(c);
	return 0;
}

int ibv_query_device(struct ibv_context *ctx, struct ibv_device_attr *attr)
{
	(void)ctx;
	memset(attr, 0, sizeof *attr);
	strcpy(attr->fw_ver, "0.0.0-fake");
	attr->max_mr_size = FAKE_MAX_MR_SIZE;
	attr->page_size_cap = 0xfffff000;
	attr->max_qp = 1 << 16;
	attr->max_qp_wr = FAKE_MAX_QP_WR;
	attr->max_sge = FAKE_MAX_SGE;
	attr->max_sge_rd = FAKE_MAX_SGE;
	attr->max_cq = 1 << 16;
	attr->max_cqe = FAKE_MAX_CQE;
	attr->max_mr = 1 << 20;
	attr->max_pd = 1 << 16;
	attr->max_qp_rd_atom = FAKE_MAX_RD_ATOM;
	attr->max_qp_init_rd_atom = FAKE_MAX_RD_ATOM;
	attr->max_res_rd_atom = FAKE_MAX_RD_ATOM << 16;
	attr->max_pkeys = 1;
	attr->phys_port_cnt = 1;
	return 0;
}

static int fake_query_port(struct ibv_context *ctx, uint8_t port_num,
			   struct ibv_port_attr *attr, size_t attr_len)
{
	if (port_num != 1)
		return EINVAL;
	struct fake_dev *d = fake_dev_of(ctx);
	memset(attr, 0, attr_len);
	attr->state = IBV_PORT_ACTIVE;
	attr->max_mtu = d->mtu;
	attr->active_mtu = d->mtu;
	attr->gid_tbl_len = FAKE_NGID;
	attr->max_msg_sz = FAKE_MAX_MSG_SZ;
	attr->pkey_tbl_len = 1;
	attr->lid = d->lid;
	attr->sm_lid = d->lid ? 1 : 0;
	attr->link_layer = d->link_layer;
	return 0;
}

// The exported ibv_query_port, which the ___ibv_query_port inline calls
// only for contexts without a verbs_context. The fake's contexts have one,
// but the inline still references the symbol. The old port attribute layout
// ends at link_layer.
int (ibv_query_port)(struct ibv_context *ctx, uint8_t port_num, struct _compat_ibv_port_attr *attr)
{
	return fake_query_port(ctx, port_num, (struct ibv_port_attr *)attr,
			       offsetof(struct ibv_port_attr, link_layer) + 1);
}

int ibv_query_gid(struct ibv_context *ctx, uint8_t port_num, int index, union ibv_gid *gid)
{
	if (port_num != 1 || index < 0 || index >= FAKE_NGID) {
		errno = EINVAL;
		return -1;
	}
	*gid = fake_dev_of(ctx)->gid[index];
	return 0;
}

// ---- protection domains and memory regions ----

struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
	struct fake_pd *p = calloc(1, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->pd.context = ctx;
	pthread_mutex_lock(&fake_mu);
	p->pd.handle = ++fake_pd_handles;
	fake_ctx_of(ctx)->nobj++;
	pthread_mutex_unlock(&fake_mu);
	return &p->pd;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	struct fake_pd *p = (struct fake_pd *)pd;
	pthread_mutex_lock(&fake_mu);
	if (p->users > 0) {
		pthread_mutex_unlock(&fake_mu);
		return EBUSY;
	}
	fake_ctx_of(pd->context)->nobj--;
	pthread_mutex_unlock(&fake_mu);
	free(p);
	return 0;
}

static struct fake_mr *mr_lookup_locked(uint32_t key)
{
	uint32_t idx = key >> 8;
	if (idx == 0 || idx >= mrs_cap || !mrs[idx] || mrs[idx]->mr.lkey != key)
		return NULL;
	return mrs[idx];
}

static uint32_t mr_alloc_idx_locked(void)
{
	if (mr_nfree > 0)
		return mr_free[--mr_nfree];
	if (mr_next >= (1u << 24))
		return 0;
	if (mr_next >= mrs_cap) {
		uint32_t ncap = mrs_cap ? mrs_cap * 2 : 64;
		struct fake_mr **n = realloc(mrs, ncap * sizeof *n);
		uint32_t *f = realloc(mr_free, ncap * sizeof *f);
		if (f)
			mr_free = f;
		if (!n || !f) {
			if (n)
				mrs = n;
			return 0;
		}
		memset(n + mrs_cap, 0, (ncap - mrs_cap) * sizeof *n);
		mrs = n;
		mrs_cap = ncap;
	}
	return mr_next++;
}

static const unsigned int fake_mr_access_ok = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					      IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t iova, unsigned int access)
{
	// As the kernel: remote write or atomic needs local write too.
	if (!addr || length == 0 || length > FAKE_MAX_MR_SIZE || (access & ~fake_mr_access_ok) ||
	    ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	     !(access & IBV_ACCESS_LOCAL_WRITE))) {
		errno = EINVAL;
		return NULL;
	}
	struct fake_mr *m = calloc(1, sizeof *m);
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&fake_mu);
	uint32_t idx = mr_alloc_idx_locked();
	if (idx == 0) {
		pthread_mutex_unlock(&fake_mu);
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	uint32_t key = idx << 8 | (fake_rand32() & 0xff);
	m->mr.context = pd->context;
	m->mr.pd = pd;
	m->mr.addr = addr;
	m->mr.length = length;
	m->mr.handle = idx;
	m->mr.lkey = key;
	m->mr.rkey = key;
	m->iova = iova;
	m->access = access;
	m->idx = idx;
	mrs[idx] = m;
	((struct fake_pd *)pd)->users++;
	pthread_mutex_unlock(&fake_mu);
	return &m->mr;
}

// The exported ibv_reg_mr, which the ibv_reg_mr macro calls when the access
// flags are a compile-time constant without optional bits. The parentheses
// keep the macro from expanding.
struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, (unsigned int)access);
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct fake_mr *m = (struct fake_mr *)mr;
	pthread_mutex_lock(&fake_mu);
	mrs[m->idx] = NULL;
	mr_free[mr_nfree++] = m->idx;
	((struct fake_pd *)mr->pd)->users--;
	pthread_mutex_unlock(&fake_mu);
	free(m);
	return 0;
}

// ---- completion queues ----

struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe, void *cq_context,
			     struct ibv_comp_channel *channel, int comp_vector)
{
	if (cqe < 1 || cqe > FAKE_MAX_CQE || channel || comp_vector != 0) {
		errno = EINVAL;
		return NULL;
	}
	struct fake_cq *c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->ring = calloc((size_t)cqe, sizeof *c->ring);
	if (!c->ring) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->cap = cqe;
	c->cq.context = ctx;
	c->cq.cq_context = cq_context;
	c->cq.cqe = cqe;
	pthread_mutex_init(&c->cq.mutex, NULL);
	pthread_cond_init(&c->cq.cond, NULL);
	pthread_mutex_lock(&fake_mu);
	fake_ctx_of(ctx)->nobj++;
	pthread_mutex_unlock(&fake_mu);
	return &c->cq;
}

int ibv_destroy_cq(struct ibv_cq *cq)
{
	struct fake_cq *c = (struct fake_cq *)cq;
	pthread_mutex_lock(&fake_mu);
	if (c->users > 0) {
		pthread_mutex_unlock(&fake_mu);
		return EBUSY;
	}
	fake_ctx_of(cq->context)->nobj--;
	pthread_mutex_unlock(&fake_mu);
	pthread_mutex_destroy(&cq->mutex);
	pthread_cond_destroy(&cq->cond);
	free(c->ring);
	free(c);
	return 0;
}

static void cq_push_locked(struct fake_cq *c, const struct ibv_wc *wc, uint64_t seq)
{
	if (c->n == c->cap) {
		// A NIC raises IBV_EVENT_CQ_ERR and the completion is lost;
		// poll_cq reports the overrun from now on.
		c->overrun = 1;
		return;
	}
	struct fake_cqe *e = &c->ring[(c->head + c->n) % c->cap];
	e->wc = *wc;
	e->seq = seq;
	c->n++;
}

// cq_clean_locked removes the completions of QP qpn, as providers do when a
// QP is reset or destroyed.
static void cq_clean_locked(struct fake_cq *c, uint32_t qpn)
{
	int kept = 0;
	for (int i = 0; i < c->n; i++) {
		struct fake_cqe e = c->ring[(c->head + i) % c->cap];
		if (e.wc.qp_num != qpn)
			c->ring[(c->head + kept++) % c->cap] = e;
	}
	c->n = kept;
}

static struct fake_qp *qp_lookup_locked(uint32_t qpn)
{
	if (qpn < qpn_base || qpn - qpn_base >= qp_next)
		return NULL;
	return qps[qpn - qpn_base];
}

static int fake_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc)
{
	struct fake_cq *c = (struct fake_cq *)cq;
	if (num_entries < 0)
		return -EINVAL;
	pthread_mutex_lock(&fake_mu);
	if (c->overrun) {
		pthread_mutex_unlock(&fake_mu);
		return -EOVERFLOW;
	}
	int n = 0;
	for (; n < num_entries && c->n > 0; n++) {
		struct fake_cqe *e = &c->ring[c->head];
		wc[n] = e->wc;
		// Polling a completion retires its send-queue slot and those of
		// the unsignaled requests before it.
		struct fake_qp *q = qp_lookup_locked(e->wc.qp_num);
		if (q && e->seq + 1 > q->retired)
			q->retired = e->seq + 1;
		c->head = (c->head + 1) % c->cap;
		c->n--;
	}
	pthread_mutex_unlock(&fake_mu);
	return n;
}

// ---- queue pairs ----

struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_cap *cap = &attr->cap;
	if (attr->qp_type != IBV_QPT_RC || !attr->send_cq || !attr->recv_cq || attr->srq ||
	    attr->send_cq->context != pd->context || attr->recv_cq->context != pd->context ||
	    cap->max_send_wr < 1 || cap->max_send_wr > FAKE_MAX_QP_WR ||
	    cap->max_recv_wr > FAKE_MAX_QP_WR || cap->max_send_sge > FAKE_MAX_SGE ||
	    cap->max_recv_sge > FAKE_MAX_SGE || cap->max_inline_data > FAKE_MAX_INLINE) {
		errno = EINVAL;
		return NULL;
	}
	struct fake_qp *q = calloc(1, sizeof *q);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&fake_mu);
	fake_init_locked();
	if (qpn_base + qp_next > FAKE_MAX_QPN) {
		pthread_mutex_unlock(&fake_mu);
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	if (qp_next >= qps_cap) {
		uint32_t ncap = qps_cap ? qps_cap * 2 : 64;
		struct fake_qp **n = realloc(qps, ncap * sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&fake_mu);
			free(q);
			errno = ENOMEM;
			return NULL;
		}
		qps = n;
		qps_cap = ncap;
	}
	q->idx = qp_next++;
	qps[q->idx] = q;
	q->ctx = fake_ctx_of(pd->context);
	q->cap = *cap;
	q->qp.context = pd->context;
	q->qp.qp_context = attr->qp_context;
	q->qp.pd = pd;
	q->qp.send_cq = attr->send_cq;
	q->qp.recv_cq = attr->recv_cq;
	q->qp.handle = q->idx;
	q->qp.qp_num = qpn_base + q->idx;
	q->qp.state = IBV_QPS_RESET;
	q->qp.qp_type = IBV_QPT_RC;
	pthread_mutex_init(&q->qp.mutex, NULL);
	pthread_cond_init(&q->qp.cond, NULL);
	((struct fake_pd *)pd)->users++;
	((struct fake_cq *)attr->send_cq)->users++;
	((struct fake_cq *)attr->recv_cq)->users++;
	pthread_mutex_unlock(&fake_mu);
	return &q->qp;
}

static void qp_clean_locked(struct fake_qp *q)
{
	cq_clean_locked((struct fake_cq *)q->qp.send_cq, q->qp.qp_num);
	if (q->qp.recv_cq != q->qp.send_cq)
		cq_clean_locked((struct fake_cq *)q->qp.recv_cq, q->qp.qp_num);
	q->posted = q->retired = 0;
}

int ibv_destroy_qp(struct ibv_qp *qp)
{
	struct fake_qp *q = (struct fake_qp *)qp;
	pthread_mutex_lock(&fake_mu);
	qps[q->idx] = NULL;
	qp_clean_locked(q);
	((struct fake_pd *)qp->pd)->users--;
	((struct fake_cq *)qp->send_cq)->users--;
	((struct fake_cq *)qp->recv_cq)->users--;
	pthread_mutex_unlock(&fake_mu);
	pthread_mutex_destroy(&qp->mutex);
	pthread_cond_destroy(&qp->cond);
	free(q);
	return 0;
}

// Attribute masks of the transitions an RC QP takes (IBA table 91, as the
// kernel's ib_modify_qp_is_ok enforces them).
struct fake_transition {
	enum ibv_qp_state from, to;
	int req, opt;
};

static const struct fake_transition fake_transitions[] = {
	{IBV_QPS_RESET, IBV_QPS_INIT, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, 0},
	{IBV_QPS_INIT, IBV_QPS_INIT, 0, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS},
	{IBV_QPS_INIT, IBV_QPS_RTR,
	 IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		 IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
	 IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX},
	{IBV_QPS_RTR, IBV_QPS_RTS,
	 IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC,
	 IBV_QP_CUR_STATE | IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS | IBV_QP_MIN_RNR_TIMER |
		 IBV_QP_PATH_MIG_STATE},
	{IBV_QPS_RTS, IBV_QPS_RTS, 0,
	 IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS | IBV_QP_ALT_PATH | IBV_QP_PATH_MIG_STATE |
		 IBV_QP_MIN_RNR_TIMER},
};

static int fake_check_av_locked(struct fake_qp *q, const struct ibv_ah_attr *ah)
{
	struct fake_dev *d = q->ctx->fdev;
	if (ah->port_num != 1)
		return EINVAL;
	if (d->link_layer == IBV_LINK_LAYER_ETHERNET) {
		// RoCE has no LIDs: the GRH is mandatory.
		static const uint8_t zero[16];
		if (!ah->is_global || ah->grh.sgid_index >= FAKE_NGID || ah->grh.hop_limit == 0 ||
		    memcmp(ah->grh.dgid.raw, zero, 16) == 0)
			return EINVAL;
		return 0;
	}
	if (ah->dlid == 0)
		return EINVAL;
	if (ah->is_global && ah->grh.sgid_index >= FAKE_NGID)
		return EINVAL;
	return 0;
}

int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	struct fake_qp *q = (struct fake_qp *)qp;
	pthread_mutex_lock(&fake_mu);
	enum ibv_qp_state cur = qp->state;
	enum ibv_qp_state next = (mask & IBV_QP_STATE) ? attr->qp_state : cur;
	int rest = mask & ~IBV_QP_STATE;
	int ok = 0;
	if ((mask & IBV_QP_CUR_STATE) && attr->cur_qp_state != cur)
		goto einval;
	if (next == IBV_QPS_RESET || next == IBV_QPS_ERR) {
		ok = (mask & IBV_QP_STATE) && (rest & ~IBV_QP_CUR_STATE) == 0;
	} else {
		for (size_t i = 0; i < sizeof fake_transitions / sizeof fake_transitions[0]; i++) {
			const struct fake_transition *t = &fake_transitions[i];
			if (t->from == cur && t->to == next && (rest & t->req) == t->req &&
			    (rest & ~(t->req | t->opt)) == 0)
				ok = 1;
		}
	}
	if (!ok)
		goto einval;

	// Validate every value before changing anything.
	if ((mask & IBV_QP_PORT) && attr->port_num != 1)
		goto einval;
	if ((mask & IBV_QP_PKEY_INDEX) && attr->pkey_index != 0)
		goto einval;
	if ((mask & IBV_QP_ACCESS_FLAGS) &&
	    (attr->qp_access_flags & ~(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				       IBV_ACCESS_REMOTE_ATOMIC)))
		goto einval;
	if ((mask & IBV_QP_PATH_MTU) &&
	    (attr->path_mtu < IBV_MTU_256 || attr->path_mtu > q->ctx->fdev->mtu))
		goto einval;
	if ((mask & IBV_QP_AV) && fake_check_av_locked(q, &attr->ah_attr))
		goto einval;
	if ((mask & IBV_QP_DEST_QPN) && (attr->dest_qp_num == 0 || attr->dest_qp_num > FAKE_MAX_QPN))
		goto einval;
	if ((mask & IBV_QP_RQ_PSN) && attr->rq_psn > 0xffffff)
		goto einval;
	if ((mask & IBV_QP_SQ_PSN) && attr->sq_psn > 0xffffff)
		goto einval;
	if ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) && attr->max_dest_rd_atomic > FAKE_MAX_RD_ATOM)
		goto einval;
	if ((mask & IBV_QP_MAX_QP_RD_ATOMIC) && attr->max_rd_atomic > FAKE_MAX_RD_ATOM)
		goto einval;
	if ((mask & IBV_QP_TIMEOUT) && attr->timeout > 31)
		goto einval;
	if ((mask & IBV_QP_RETRY_CNT) && attr->retry_cnt > 7)
		goto einval;
	if ((mask & IBV_QP_RNR_RETRY) && attr->rnr_retry > 7)
		goto einval;
	if ((mask & IBV_QP_MIN_RNR_TIMER) && attr->min_rnr_timer > 31)
		goto einval;

	if (mask & IBV_QP_ACCESS_FLAGS)
		q->access = attr->qp_access_flags;
	if (mask & IBV_QP_AV)
		q->ah = attr->ah_attr;
	if (mask & IBV_QP_PATH_MTU)
		q->path_mtu = attr->path_mtu;
	if (mask & IBV_QP_DEST_QPN)
		q->dest_qpn = attr->dest_qp_num;
	if (mask & IBV_QP_RQ_PSN)
		q->rq_psn = attr->rq_psn;
	if (mask & IBV_QP_SQ_PSN)
		q->sq_psn = attr->sq_psn;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		q->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		q->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IBV_QP_TIMEOUT)
		q->timeout = attr->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		q->retry_cnt = attr->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		q->rnr_retry = attr->rnr_retry;
	if (next == IBV_QPS_RESET) {
		// Back to a blank QP: forget the peer, drop queued work and
		// the completions it produced (as mlx5 does).
		q->access = 0;
		q->dest_qpn = 0;
		memset(&q->ah, 0, sizeof q->ah);
		qp_clean_locked(q);
	}
	qp->state = next; // libibverbs tracks the state in the ibv_qp
	pthread_mutex_unlock(&fake_mu);
	return 0;
einval:
	pthread_mutex_unlock(&fake_mu);
	return EINVAL;
}

int ibv_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask,
		 struct ibv_qp_init_attr *init_attr)
{
	(void)mask;
	struct fake_qp *q = (struct fake_qp *)qp;
	pthread_mutex_lock(&fake_mu);
	memset(attr, 0, sizeof *attr);
	attr->qp_state = qp->state;
	attr->cur_qp_state = qp->state;
	attr->path_mtu = q->path_mtu;
	attr->rq_psn = q->rq_psn;
	attr->sq_psn = q->sq_psn;
	attr->dest_qp_num = q->dest_qpn;
	attr->qp_access_flags = q->access;
	attr->cap = q->cap;
	attr->ah_attr = q->ah;
	attr->max_rd_atomic = q->max_rd_atomic;
	attr->max_dest_rd_atomic = q->max_dest_rd_atomic;
	attr->port_num = 1;
	attr->timeout = q->timeout;
	attr->retry_cnt = q->retry_cnt;
	attr->rnr_retry = q->rnr_retry;
	if (init_attr) {
		memset(init_attr, 0, sizeof *init_attr);
		init_attr->qp_context = qp->qp_context;
		init_attr->send_cq = qp->send_cq;
		init_attr->recv_cq = qp->recv_cq;
		init_attr->cap = q->cap;
		init_attr->qp_type = qp->qp_type;
	}
	pthread_mutex_unlock(&fake_mu);
	return 0;
}

// ---- data path ----

// fake_reaches_locked reports whether requests from q arrive at dst: the
// address vector q was given at RTR must name dst's port, and dst must be
// connected back to q. Otherwise packets go nowhere and the sender's
// retries run out.
static int fake_reaches_locked(struct fake_qp *q, struct fake_qp *dst)
{
	struct fake_dev *sd = q->ctx->fdev, *dd = dst->ctx->fdev;
	if (dst->qp.state != IBV_QPS_RTR && dst->qp.state != IBV_QPS_RTS)
		return 0;
	if (dst->dest_qpn != q->qp.qp_num)
		return 0;
	if (sd->link_layer != dd->link_layer)
		return 0;
	if (dd->link_layer == IBV_LINK_LAYER_INFINIBAND)
		return q->ah.dlid == dd->lid;
	for (int i = 0; i < FAKE_NGID; i++)
		if (memcmp(q->ah.grh.dgid.raw, dd->gid[i].raw, 16) == 0)
			return 1;
	return 0;
}

// fake_local_locked resolves the local scatter/gather entry of a request:
// the lkey must name an MR of the QP's PD that covers the range (and allows
// local write when the NIC writes it, for READ).
static void *fake_local_locked(struct fake_qp *q, const struct ibv_sge *sge, int need_write)
{
	struct fake_mr *m = mr_lookup_locked(sge->lkey);
	if (!m || m->mr.pd != q->qp.pd)
		return NULL;
	if (need_write && !(m->access & IBV_ACCESS_LOCAL_WRITE))
		return NULL;
	if (sge->addr < m->iova || sge->length > m->mr.length ||
	    sge->addr - m->iova > m->mr.length - sge->length)
		return NULL;
	return (uint8_t *)m->mr.addr + (sge->addr - m->iova);
}

// fake_remote_locked resolves the remote range of a request at the
// responder dst, with the checks a responder makes.
static void *fake_remote_locked(struct fake_qp *dst, uint64_t addr, uint32_t rkey, uint64_t len,
				unsigned int right)
{
	struct fake_mr *m = mr_lookup_locked(rkey);
	if (!m || m->mr.pd != dst->qp.pd || !(m->access & right) || !(dst->access & right))
		return NULL;
	if (addr < m->iova || len > m->mr.length || addr - m->iova > m->mr.length - len)
		return NULL;
	return (uint8_t *)m->mr.addr + (addr - m->iova);
}

// fake_execute_locked carries out one RDMA WRITE or READ and returns its
// completion status.
static enum ibv_wc_status fake_execute_locked(struct fake_qp *q, struct ibv_send_wr *wr,
					      uint64_t *len_out)
{
	int is_read = wr->opcode == IBV_WR_RDMA_READ;
	int inl = (wr->send_flags & IBV_SEND_INLINE) != 0;
	uint64_t len = 0;
	void *local[FAKE_MAX_SGE];
	for (int i = 0; i < wr->num_sge; i++) {
		len += wr->sg_list[i].length;
		if (inl) {
			local[i] = (void *)(uintptr_t)wr->sg_list[i].addr;
			continue;
		}
		local[i] = fake_local_locked(q, &wr->sg_list[i], is_read);
		if (!local[i])
			return IBV_WC_LOC_PROT_ERR;
	}
	*len_out = len;
	if (len > FAKE_MAX_MSG_SZ)
		return IBV_WC_LOC_LEN_ERR;

	struct fake_qp *dst = qp_lookup_locked(q->dest_qpn);
	if (!dst || !fake_reaches_locked(q, dst))
		return IBV_WC_RETRY_EXC_ERR;
	if (len == 0)
		return IBV_WC_SUCCESS; // zero-length requests carry no rkey check
	uint8_t *remote = fake_remote_locked(dst, wr->wr.rdma.remote_addr, wr->wr.rdma.rkey, len,
					     is_read ? IBV_ACCESS_REMOTE_READ : IBV_ACCESS_REMOTE_WRITE);
	if (!remote) {
		// A class C responder error (IBA 9.9.3.1): the responder NAKs
		// and its own QP goes to the error state too, as rxe does.
		dst->qp.state = IBV_QPS_ERR;
		return IBV_WC_REM_ACCESS_ERR;
	}
	for (int i = 0; i < wr->num_sge; i++) {
		uint32_t n = wr->sg_list[i].length;
		// Loopback may overlap source and destination.
		if (is_read)
			memmove(local[i], remote, n);
		else
			memmove(remote, local[i], n);
		remote += n;
	}
	return IBV_WC_SUCCESS;
}

static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr)
{
	struct fake_qp *q = (struct fake_qp *)qp;
	int rc = 0;
	pthread_mutex_lock(&fake_mu);
	for (; wr; wr = wr->next) {
		int is_read = wr->opcode == IBV_WR_RDMA_READ;
		// Immediate errors, as a provider returns them: nothing is
		// queued and no completion is made.
		if (qp->state == IBV_QPS_RESET || qp->state == IBV_QPS_INIT ||
		    qp->state == IBV_QPS_RTR || (wr->opcode != IBV_WR_RDMA_WRITE && !is_read) ||
		    wr->num_sge < 0 || (uint32_t)wr->num_sge > q->cap.max_send_sge ||
		    (wr->num_sge > 0 && !wr->sg_list)) {
			rc = EINVAL;
			break;
		}
		if (wr->send_flags & IBV_SEND_INLINE) {
			uint64_t inline_len = 0;
			for (int i = 0; i < wr->num_sge; i++)
				inline_len += wr->sg_list[i].length;
			if (is_read || inline_len > q->cap.max_inline_data) {
				rc = EINVAL;
				break;
			}
		}
		if (q->posted - q->retired >= q->cap.max_send_wr) {
			rc = ENOMEM;
			break;
		}
		uint64_t seq = q->posted++;
		struct ibv_wc wc = {
			.wr_id = wr->wr_id,
			.opcode = is_read ? IBV_WC_RDMA_READ : IBV_WC_RDMA_WRITE,
			.qp_num = qp->qp_num,
		};
		if (qp->state == IBV_QPS_ERR) {
			wc.status = IBV_WC_WR_FLUSH_ERR;
		} else {
			uint64_t len = 0;
			wc.status = fake_execute_locked(q, wr, &len);
			wc.byte_len = (uint32_t)len;
			if (wc.status != IBV_WC_SUCCESS)
				qp->state = IBV_QPS_ERR;
		}
		// Errors always complete; successes only when signaled.
		if (wc.status != IBV_WC_SUCCESS || (wr->send_flags & IBV_SEND_SIGNALED))
			cq_push_locked((struct fake_cq *)qp->send_cq, &wc, seq);
	}
	pthread_mutex_unlock(&fake_mu);
	if (rc)
		*bad_wr = wr;
	return rc;
}
