// SPDX-License-Identifier: MIT
/*
 * libcachefs: the client of the RDMA read protocol (see
 * include/cachefs/client.h, and src/shared/rdma_proto.h for the
 * protocol).
 *
 * A connection has its own fabric, domain, completion queue, address
 * vector and endpoint; progress is made by the calls that wait, on the
 * caller's thread.  Requests live in slots, as many as requests may be in
 * flight; a request's tag is its slot's index and a generation count, so
 * that a reply for a slot given up is known as stale.  A slot is done
 * when its reply came and its send completed (the send's buffer is the
 * slot's); a submitted read then joins the completion list, a
 * synchronous call takes it itself.
 *
 * Everything from the server is checked before use: a reply for no slot
 * in flight, a count over what was asked, a malformed message, break the
 * connection.  A broken connection (the server gone, a timeout) closes
 * its endpoint at once, so that nothing more lands in the caller's
 * buffers, and fails every request in flight.
 */
#include "cachefs/client.h"

#include <errno.h>
#include <limits.h>
#include <openssl/rand.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fabric.h"
#include "rdma_proto.h"
#include "deadline.h"

#define FI_API FI_VERSION(1, 11)
#define DEFAULT_TIMEOUT_MS 5000
#define TX_SIZE 64 /* a request without a path */
#define RX_SIZE (RDMA_HDR_LEN + RDMA_INLINE_LIMIT)
#define RX_FIRST 8     /* receives for the handshake */
#define SLOTS_MAX 1024 /* the server's limit is lower */
#define CQ_BATCH 32
#define BOUNCE_MIN (64u << 10) /* bounce buffers grow from this */
#define PAGE 4096

static const char *const providers[] = { "verbs;ofi_rxm", "tcp;ofi_rxm" };

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
	struct fi_context2 fi; /* the request's send; first */
	uint16_t index, gen;
	enum slot_state state;
	bool sync;     /* a synchronous call takes it, not complete() */
	bool sent;     /* its send completed */
	bool answered; /* its reply came */
	uint8_t op;
	void *user;
	/* a read */
	uint8_t *buf;
	size_t len;
	struct cachefs_client_mr *mr; /* the caller's, holding buf */
	struct fid_mr *tmp_mr;	      /* buf, registered for this read */
	bool bounced;		      /* written into the bounce buffer */
	uint8_t *bounce;	      /* registered, grown on demand */
	size_t bounce_len;
	struct fid_mr *bounce_mr;
	/* the result */
	ssize_t result;
	struct rdma_msg reply; /* STAT, OPEN (no pointers kept) */
	struct slot *next;     /* in the completion list */
};

struct rx {
	struct fi_context2 fi; /* first */
	uint8_t *buf;
	void *desc;
};

struct cachefs_client_mr {
	struct cachefs_client_mr *next;
	uint8_t *base;
	size_t len;
	struct fid_mr *mr;
	unsigned users; /* reads in flight into it */
};

struct cachefs_client {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_cq *cq;
	struct fid_av *av;
	struct fid_ep *ep;
	fi_addr_t server;
	uint64_t mr_mode;
	uint64_t next_key; /* without FI_MR_PROV_KEY keys are ours */
	int timeout_ms;	   /* -1: for ever */
	bool busy_poll;
	bool register_buffers;
	int broken; /* 0, or the error every call now gets */

	/* the server's limits */
	uint32_t max_inline, max_read;
	uint64_t max_memory;
	bool cq_data;

	/* receives: a few for the handshake, the rest once the limits known */
	struct rx_block {
		struct rx *rx;
		unsigned n;
		uint8_t *mem;
		struct fid_mr *mr;
	} rxb[2];

	/* requests */
	struct slot *slots;
	unsigned nslots, busy;
	uint8_t *tx_mem; /* TX_SIZE per slot, and one for paths */
	struct fid_mr *tx_mr;
	uint8_t *path_tx; /* RDMA_REQUEST_MAX bytes */
	uint64_t bytes;	  /* of reads in flight */
	struct slot *done_head, **done_tail;
	unsigned submitted; /* submitted reads not taken */

	struct cachefs_client_mr *mrs;
	char provider[64];
	char msg[256];
};

static int fail(struct cachefs_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keep a message for err and return it. */
static int fail(struct cachefs_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return err;
}


/* --- registration --------------------------------------------------------- */

static int mr_reg(struct cachefs_client *c, void *buf, size_t len,
		  uint64_t access, struct fid_mr **mr)
{
	int r;

	r = fi_mr_reg(c->domain, buf, len, access, 0, c->next_key++, 0, mr,
		      NULL);
	if (r == 0 && (c->mr_mode & FI_MR_ENDPOINT) &&
	    ((r = fi_mr_bind(*mr, &c->ep->fid, 0)) != 0 ||
	     (r = fi_mr_enable(*mr)) != 0)) {
		fi_close(&(*mr)->fid);
		*mr = NULL;
	}
	if (r)
		*mr = NULL;
	return r > 0 ? -r : r;
}

/* Register for local use only when the provider wants it. */
static int local_reg(struct cachefs_client *c, void *buf, size_t len,
		     struct fid_mr **mr)
{
	*mr = NULL;
	if (!(c->mr_mode & FI_MR_LOCAL))
		return 0;
	return mr_reg(c, buf, len, FI_SEND | FI_RECV, mr);
}

static void *desc_of(struct fid_mr *mr)
{
	return mr ? fi_mr_desc(mr) : NULL;
}

static void close_mr(struct fid_mr **mr)
{
	if (*mr)
		fi_close(&(*mr)->fid);
	*mr = NULL;
}

/* Where the server writes at buf, within the registration mr of base. */
static void rma_target(struct cachefs_client *c, struct fid_mr *mr,
		       const uint8_t *base, const uint8_t *buf, uint64_t *raddr,
		       uint64_t *rkey)
{
	*raddr = c->mr_mode & FI_MR_VIRT_ADDR ? (uint64_t)(uintptr_t)buf
					      : (uint64_t)(buf - base);
	*rkey = fi_mr_key(mr);
}

int cachefs_client_register(struct cachefs_client *c, void *buf, size_t len,
			    struct cachefs_client_mr **out)
{
	struct cachefs_client_mr *m;
	int r;

	if (!buf || !len)
		return fail(c, -EINVAL, "nothing to register");
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(c, -ENOMEM, "out of memory");
	r = mr_reg(c, buf, len, FI_REMOTE_WRITE | FI_RECV | FI_SEND, &m->mr);
	if (r < 0) {
		free(m);
		return fail(c, r, "cannot register %zu bytes: %s", len,
			    fabric_strerror(-r));
	}
	m->base = buf;
	m->len = len;
	m->next = c->mrs;
	c->mrs = m;
	*out = m;
	return 0;
}

int cachefs_client_deregister(struct cachefs_client *c,
			      struct cachefs_client_mr *mr)
{
	struct cachefs_client_mr **p;

	if (!mr)
		return 0;
	if (mr->users)
		return fail(c, -EBUSY, "reads into the buffer are in flight");
	for (p = &c->mrs; *p; p = &(*p)->next) {
		if (*p == mr) {
			*p = mr->next;
			break;
		}
	}
	close_mr(&mr->mr);
	free(mr);
	return 0;
}

/* The caller's registration that holds len bytes at buf, or NULL. */
static struct cachefs_client_mr *mr_find(struct cachefs_client *c,
					 const uint8_t *buf, size_t len)
{
	for (struct cachefs_client_mr *m = c->mrs; m; m = m->next)
		if (buf >= m->base && len <= m->len &&
		    (size_t)(buf - m->base) <= m->len - len)
			return m;
	return NULL;
}

/* --- the connection breaks ------------------------------------------------ */

static void slot_finish(struct cachefs_client *c, struct slot *s);

/*
 * Something went wrong that leaves the connection unusable: close the
 * endpoint (nothing more lands in any buffer) and fail what is in
 * flight.  Returns err.
 */
static int broken(struct cachefs_client *c, int err)
{
	if (c->broken)
		return c->broken;
	c->broken = err;
	if (c->ep)
		fi_close(&c->ep->fid);
	c->ep = NULL;
	for (unsigned k = 0; k < c->nslots; k++) {
		struct slot *s = &c->slots[k];

		if (s->state != SLOT_BUSY)
			continue;
		s->result = err;
		s->sent = s->answered = true;
		slot_finish(c, s);
	}
	return err;
}

/* --- slots ---------------------------------------------------------------- */

static struct slot *slot_get(struct cachefs_client *c)
{
	for (unsigned k = 0; k < c->nslots; k++) {
		struct slot *s = &c->slots[k];

		if (s->state == SLOT_FREE) {
			s->state = SLOT_BUSY;
			s->gen++;
			s->sent = s->answered = s->sync = false;
			s->result = 0;
			s->mr = NULL;
			s->bounced = false;
			c->busy++;
			return s;
		}
	}
	return NULL;
}

static void slot_put(struct cachefs_client *c, struct slot *s)
{
	s->state = SLOT_FREE;
	c->busy--;
}

static uint32_t tag_of(const struct slot *s)
{
	return (uint32_t)s->gen << 16 | s->index;
}

/* The slot in flight a tag names, or NULL. */
static struct slot *slot_of(struct cachefs_client *c, uint32_t tag)
{
	uint16_t k = tag & 0xffff;

	if (k >= c->nslots || c->slots[k].gen != tag >> 16 ||
	    c->slots[k].state != SLOT_BUSY || c->slots[k].answered)
		return NULL;
	return &c->slots[k];
}

static uint8_t *tx_of(struct cachefs_client *c, const struct slot *s)
{
	return c->tx_mem + (size_t)s->index * TX_SIZE;
}

/*
 * The reply came and the send completed: a read gives back what it
 * held; a submitted one joins the completion list.
 */
static void slot_finish(struct cachefs_client *c, struct slot *s)
{
	if (!s->sent || !s->answered || s->state != SLOT_BUSY)
		return;
	if (s->op == RDMA_READ) {
		c->bytes -= s->len;
		if (s->mr)
			s->mr->users--;
		close_mr(&s->tmp_mr);
		if (s->bounced && s->result > 0)
			memcpy(s->buf, s->bounce, (size_t)s->result);
	}
	s->state = SLOT_DONE;
	if (!s->sync) {
		s->next = NULL;
		*c->done_tail = s;
		c->done_tail = &s->next;
	}
}

/* --- completions ---------------------------------------------------------- */

static int post_rx(struct cachefs_client *c, struct rx *rx)
{
	ssize_t r;

	if (!c->ep)
		return c->broken;
	r = fi_recv(c->ep, rx->buf, RX_SIZE, rx->desc, FI_ADDR_UNSPEC, rx);
	return r < 0 ? broken(c, (int)r) : 0;
}

/* A read of s completed with count bytes written where it asked. */
static int read_written(struct cachefs_client *c, struct slot *s,
			uint32_t count)
{
	if (s->op != RDMA_READ || count > s->len)
		return broken(c, fail(c, -EPROTO,
				      "the server wrote more than asked"));
	s->result = count;
	s->answered = true;
	slot_finish(c, s);
	return 0;
}

static int on_reply(struct cachefs_client *c, const uint8_t *buf, size_t len)
{
	struct rdma_msg m;
	struct slot *s;

	if (rdma_decode_reply(buf, len, &m) < 0)
		return broken(c, fail(c, -EPROTO,
				      "a malformed message from the server"));
	if (m.op == RDMA_PING)
		return 0;
	s = slot_of(c, m.tag);
	if (!s)
		return broken(c, fail(c, -EPROTO,
				      "a reply to no request from the server"));
	if (m.op == RDMA_ERROR) {
		s->result = m.status;
	} else if (m.op == (RDMA_READ | RDMA_REPLY)) {
		if (s->op != RDMA_READ || m.read_reply.count > s->len)
			return broken(c,
				      fail(c, -EPROTO,
					   "a read reply that does not fit"));
		if (m.flags & RDMA_F_RMA)
			return read_written(c, s, m.read_reply.count);
		if (m.read_reply.count)
			memcpy(s->buf, m.read_reply.data, m.read_reply.count);
		s->bounced = false; /* inline: already where it goes */
		s->result = m.read_reply.count;
	} else if ((m.op & ~RDMA_REPLY) == s->op ||
		   (m.op == RDMA_CHALLENGE && s->op == RDMA_HELLO) ||
		   (m.op == RDMA_WELCOME && s->op == RDMA_AUTH)) {
		s->reply = m; /* these carry no pointer into buf */
		s->result = 0;
	} else {
		return broken(c, fail(c, -EPROTO,
				      "a reply of the wrong kind from the "
				      "server"));
	}
	s->answered = true;
	slot_finish(c, s);
	return 0;
}

static int on_entry(struct cachefs_client *c, const struct fi_cq_data_entry *e)
{
	if (e->flags & FI_REMOTE_CQ_DATA) {
		struct slot *s = slot_of(c, (uint32_t)(e->data >> 32));
		int r;

		if (!s)
			return broken(c, fail(c, -EPROTO,
					      "a write for no read from the "
					      "server"));
		r = read_written(c, s, (uint32_t)e->data);
		/* with FI_RX_CQ_DATA the write took a receive */
		if (r == 0 && (e->flags & FI_RECV) && e->op_context)
			r = post_rx(c, e->op_context);
		return r;
	}
	if (e->flags & FI_RECV) {
		struct rx *rx = e->op_context;
		int r = on_reply(c, rx->buf, e->len);

		return r < 0 ? r : post_rx(c, rx);
	}
	if (e->op_context) { /* a request's send */
		struct slot *s = e->op_context;

		s->sent = true;
		slot_finish(c, s);
	}
	return 0;
}

static int on_cq_error(struct cachefs_client *c)
{
	struct fi_cq_err_entry e = { 0 };
	char why[128];

	if (fi_cq_readerr(c->cq, &e, 0) != 1)
		return 0;
	if (e.err == FI_ECANCELED)
		return 0;
	fail(c, -e.err, "the connection to the server failed: %s",
	     fi_cq_strerror(c->cq, e.prov_errno, e.err_data, why, sizeof(why)));
	return broken(c, e.err == FI_ETRUNC ? -EPROTO : -e.err);
}

/*
 * Make progress: read what completed, waiting up to timeout_ms (0: not
 * at all, -1: for ever) for something.  Returns the entries handled or a
 * negative errno.
 */
static int progress(struct cachefs_client *c, int timeout_ms)
{
	struct fi_cq_data_entry ev[CQ_BATCH];
	int64_t deadline = deadline_in(timeout_ms);
	ssize_t n;

	for (;;) {
		if (c->broken)
			return c->broken;
		if (c->busy_poll || timeout_ms == 0)
			n = fi_cq_read(c->cq, ev, CQ_BATCH);
		else
			n = fi_cq_sread(c->cq, ev, CQ_BATCH, NULL,
					left_ms(deadline));
		if (n > 0) {
			for (ssize_t k = 0; k < n; k++) {
				int r = on_entry(c, &ev[k]);

				if (r < 0)
					return r;
			}
			return (int)n;
		}
		if (n == -FI_EAVAIL) {
			int r = on_cq_error(c);

			if (r < 0)
				return r;
			continue;
		}
		if (n != -FI_EAGAIN && n != -FI_ETIMEDOUT && n != -FI_EINTR)
			return broken(c, fail(c, (int)n, "completion queue: %s",
					      fabric_strerror((int)-n)));
		if (timeout_ms == 0 || left_ms(deadline) == 0)
			return 0;
	}
}

/* Post s's request, of len bytes in its send buffer buf. */
static int send_request(struct cachefs_client *c, struct slot *s, uint8_t *buf,
			size_t len, void *desc, int64_t deadline)
{
	for (;;) {
		ssize_t r;

		if (c->broken)
			return c->broken;
		r = fi_send(c->ep, buf, len, desc, c->server, s);
		if (r == 0)
			return 0;
		if (r != -FI_EAGAIN)
			return broken(c, fail(c, (int)r,
					      "cannot send to the "
					      "server: %s",
					      fabric_strerror((int)-r)));
		/*
		 * Connecting, or the queue is full: progress, and a pause
		 * that spares the core while nobody answers.
		 */
		r = progress(c, c->busy_poll ? 0 : 1);
		if (r < 0)
			return (int)r;
		if (deadline >= 0 && now_ms() > deadline)
			return broken(c, fail(c, -ETIMEDOUT,
					      "no answer from the server (is "
					      "a cachefs with -o rdma "
					      "there?)"));
	}
}

/* Encode m for s and post it. */
static int request(struct cachefs_client *c, struct slot *s, struct rdma_msg *m,
		   int64_t deadline)
{
	bool path =
		m->op == RDMA_HELLO || m->op == RDMA_STAT || m->op == RDMA_OPEN;
	uint8_t *buf = path ? c->path_tx : tx_of(c, s);
	int n;

	m->tag = tag_of(s);
	s->op = m->op;
	n = rdma_encode(m, buf, path ? RDMA_REQUEST_MAX : TX_SIZE);
	if (n < 0)
		return fail(c, n, "cannot encode a %s request",
			    rdma_op_name(m->op));
	return send_request(c, s, buf, (size_t)n, desc_of(c->tx_mr), deadline);
}

/* Wait until s is done, up to deadline. */
static int wait_slot(struct cachefs_client *c, struct slot *s, int64_t deadline)
{
	while (s->state == SLOT_BUSY) {
		int r = progress(c, left_ms(deadline));

		if (r < 0 && s->state == SLOT_BUSY)
			return r;
		if (r == 0 && deadline >= 0 && now_ms() >= deadline &&
		    s->state == SLOT_BUSY)
			return broken(c, fail(c, -ETIMEDOUT,
					      "no answer from the server"));
	}
	return 0;
}

/*
 * A synchronous request: send m, wait for the answer (in *reply).
 * Returns the request's result (0 or a negative errno).
 */
static int call(struct cachefs_client *c, struct rdma_msg *m,
		struct rdma_msg *reply)
{
	int64_t deadline = deadline_in(c->timeout_ms);
	struct slot *s;
	int r;

	if (c->broken)
		return c->broken;
	/* a slot frees as completions come */
	while (!(s = slot_get(c))) {
		r = progress(c, left_ms(deadline));
		if (r < 0)
			return r;
		if (r == 0 && deadline >= 0 && now_ms() >= deadline)
			return broken(c, fail(c, -ETIMEDOUT,
					      "no answer from the server"));
	}
	s->sync = true;
	r = request(c, s, m, deadline);
	if (r == 0)
		r = wait_slot(c, s, deadline);
	if (s->state == SLOT_DONE) {
		r = (int)s->result;
		if (reply)
			*reply = s->reply;
		slot_put(c, s);
	} else if (r < 0 && !s->sent) {
		/* never sent: the slot is free again */
		slot_put(c, s);
	}
	return r;
}

/* --- connecting ----------------------------------------------------------- */

static struct fi_info *hints_for(const char *prov)
{
	return fabric_rdm_hints(prov, FI_MSG | FI_RMA,
				FI_CONTEXT | FI_CONTEXT2 | FI_RX_CQ_DATA,
				FI_THREAD_DOMAIN);
}

static void close_fabric(struct cachefs_client *c)
{
	struct fid **fids[] = { (struct fid **)&c->ep, (struct fid **)&c->av,
				(struct fid **)&c->cq,
				(struct fid **)&c->domain,
				(struct fid **)&c->fabric };

	/* the endpoint first: it holds the rest */
	if (c->ep)
		fi_close(&c->ep->fid);
	c->ep = NULL;
	for (struct cachefs_client_mr *m = c->mrs; m; m = m->next)
		close_mr(&m->mr);
	for (int k = 0; k < 2; k++)
		close_mr(&c->rxb[k].mr);
	close_mr(&c->tx_mr);
	for (unsigned k = 0; c->slots && k < SLOTS_MAX; k++) {
		close_mr(&c->slots[k].tmp_mr);
		close_mr(&c->slots[k].bounce_mr);
	}
	for (size_t k = 1; k < sizeof(fids) / sizeof(fids[0]); k++) {
		if (*fids[k])
			fi_close(*fids[k]);
		*fids[k] = NULL;
	}
	if (c->info)
		fabric_freeinfo(c->info);
	c->info = NULL;
}

static void free_buffers(struct cachefs_client *c)
{
	struct cachefs_client_mr *m;

	for (unsigned k = 0; c->slots && k < SLOTS_MAX; k++)
		free(c->slots[k].bounce);
	for (int k = 0; k < 2; k++) {
		free(c->rxb[k].rx);
		free(c->rxb[k].mem);
		c->rxb[k] = (struct rx_block){ 0 };
	}
	while ((m = c->mrs)) {
		c->mrs = m->next;
		free(m);
	}
	free(c->slots);
	free(c->tx_mem);
	c->slots = NULL;
	c->tx_mem = NULL;
	c->nslots = 0;
}

/* Open everything for provider prov to reach host:port. */
static int open_fabric(struct cachefs_client *c, const char *prov,
		       const char *host, const char *port)
{
	struct fi_info *h = hints_for(prov);
	struct fi_cq_attr cq = { .format = FI_CQ_FORMAT_DATA,
				 .size = 4 * SLOTS_MAX,
				 .wait_obj = c->busy_poll ? FI_WAIT_NONE
							  : FI_WAIT_UNSPEC };
	struct fi_av_attr av = { .type = FI_AV_UNSPEC, .count = 1 };
	int r;

	if (!h)
		return -ENOMEM;
	r = fabric_getinfo(FI_API, host, port, 0, h, &c->info);
	fabric_freeinfo(h);
	if (r)
		return r;
	if ((r = fabric_open(c->info->fabric_attr, &c->fabric, NULL)) ||
	    (r = fi_domain(c->fabric, c->info, &c->domain, NULL)) ||
	    (r = fi_cq_open(c->domain, &cq, &c->cq, NULL)) ||
	    (r = fi_av_open(c->domain, &av, &c->av, NULL)) ||
	    (r = fi_endpoint(c->domain, c->info, &c->ep, NULL)) ||
	    (r = fi_ep_bind(c->ep, &c->av->fid, 0)) ||
	    (r = fi_ep_bind(c->ep, &c->cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (r = fi_enable(c->ep)))
		return r > 0 ? -r : r;
	if (fi_av_insert(c->av, c->info->dest_addr, 1, &c->server, 0, NULL) !=
	    1)
		return -EINVAL;
	c->mr_mode = c->info->domain_attr->mr_mode;
	snprintf(c->provider, sizeof(c->provider), "%s",
		 c->info->fabric_attr->prov_name);
	return 0;
}

/* n more receives, posted. */
static int add_rx(struct cachefs_client *c, struct rx_block *b, unsigned n)
{
	size_t len = ((size_t)n * RX_SIZE + PAGE - 1) / PAGE * PAGE;
	int r;

	b->rx = calloc(n, sizeof(*b->rx));
	b->mem = aligned_alloc(PAGE, len);
	if (!b->rx || !b->mem)
		return -ENOMEM;
	b->n = n;
	r = local_reg(c, b->mem, len, &b->mr);
	if (r < 0)
		return r;
	for (unsigned k = 0; k < n; k++) {
		b->rx[k].buf = b->mem + (size_t)k * RX_SIZE;
		b->rx[k].desc = desc_of(b->mr);
		r = post_rx(c, &b->rx[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Slots and send buffers for the most requests there may be. */
static int setup_buffers(struct cachefs_client *c)
{
	size_t tx = (size_t)SLOTS_MAX * TX_SIZE + RDMA_REQUEST_MAX;
	int r;

	tx = (tx + PAGE - 1) / PAGE * PAGE;
	c->slots = calloc(SLOTS_MAX, sizeof(*c->slots));
	c->tx_mem = aligned_alloc(PAGE, tx);
	if (!c->slots || !c->tx_mem)
		return -ENOMEM;
	c->path_tx = c->tx_mem + (size_t)SLOTS_MAX * TX_SIZE;
	for (unsigned k = 0; k < SLOTS_MAX; k++)
		c->slots[k].index = (uint16_t)k;
	c->nslots = 1; /* the handshake's */
	r = local_reg(c, c->tx_mem, tx, &c->tx_mr);
	return r < 0 ? r : add_rx(c, &c->rxb[0], RX_FIRST);
}

/* HELLO, CHALLENGE, AUTH, WELCOME.  Returns the most requests, or -errno. */
static int handshake(struct cachefs_client *c, const void *secret,
		     size_t secret_len)
{
	uint8_t name[RDMA_ADDR_MAX], cnonce[RDMA_NONCE_LEN], mac[RDMA_MAC_LEN];
	size_t name_len = sizeof(name);
	struct rdma_msg m = { .op = RDMA_HELLO }, ch, w;
	int r;

	r = fi_getname(&c->ep->fid, name, &name_len);
	if (r || name_len > RDMA_ADDR_MAX)
		return fail(c, r ? r : -EINVAL, "cannot name the endpoint");
	if (RAND_bytes(cnonce, sizeof(cnonce)) != 1)
		return fail(c, -EIO, "no random bytes for a nonce");
	m.hello.addr = name;
	m.hello.addr_len = (uint16_t)name_len;
	memcpy(m.hello.nonce, cnonce, RDMA_NONCE_LEN);
	r = call(c, &m, &ch);
	if (r < 0)
		return c->broken ? r
				 : fail(c, r, "the server refused: %s",
					strerror(-r));
	if ((ch.flags & RDMA_F_NO_SECRET) && secret)
		return fail(c, -EACCES,
			    "the server has no secret, so it "
			    "cannot prove it knows this one");
	m = (struct rdma_msg){ .op = RDMA_AUTH };
	if (secret && rdma_mac(RDMA_MAC_AUTH, secret, secret_len, cnonce,
			       ch.challenge.nonce, ch.challenge.session, name,
			       name_len, m.auth.mac) < 0)
		return fail(c, -EIO, "cannot compute the MAC");
	r = call(c, &m, &w);
	if (r == -EACCES)
		return fail(c, r,
			    secret ? "authentication failed: wrong "
				     "secret"
				   : "authentication failed: the "
				     "server needs a secret");
	if (r < 0)
		return c->broken ? r
				 : fail(c, r, "the server refused: %s",
					strerror(-r));
	if (secret && (rdma_mac(RDMA_MAC_WELCOME, secret, secret_len, cnonce,
				ch.challenge.nonce, ch.challenge.session, name,
				name_len, mac) < 0 ||
		       !rdma_mac_equal(mac, w.welcome.mac)))
		return fail(c, -EACCES,
			    "the server did not prove it knows "
			    "the secret");
	if (!w.welcome.max_requests || !w.welcome.max_read ||
	    !w.welcome.max_memory || w.welcome.max_read > INT32_MAX)
		return fail(c, -EPROTO, "the server's limits make no sense");
	c->max_inline = w.welcome.max_inline;
	c->max_read = w.welcome.max_read;
	c->max_memory = w.welcome.max_memory;
	if (c->max_read > c->max_memory) /* or a read could never go */
		c->max_read = (uint32_t)c->max_memory;
	c->cq_data = w.flags & RDMA_F_CQ_DATA;
	return w.welcome.max_requests > SLOTS_MAX ? SLOTS_MAX
						  : (int)w.welcome.max_requests;
}

static int split_address(const char *address, char *host, size_t hlen,
			 char *port, size_t plen)
{
	const char *colon = address ? strrchr(address, ':') : NULL;
	int n;

	if (!colon || !colon[1] || colon == address || strlen(colon) > plen)
		return -EINVAL;
	n = (int)(colon - address);
	if (address[0] == '[' && n > 2 && address[n - 1] == ']')
		snprintf(host, hlen, "%.*s", n - 2, address + 1);
	else if (memchr(address, ':', (size_t)n))
		return -EINVAL;
	else
		snprintf(host, hlen, "%.*s", n, address);
	snprintf(port, plen, "%s", colon + 1);
	return strspn(port, "0123456789") == strlen(port) ? 0 : -EINVAL;
}

/* Connect with the provider prov; 0 or a negative errno, c->msg set. */
static int try_provider(struct cachefs_client *c, const char *prov,
			const char *host, const char *port,
			const struct cachefs_client_opts *o)
{
	unsigned want = o->max_requests ? o->max_requests : SLOTS_MAX;
	int r, n;

	r = open_fabric(c, prov, host, port);
	if (r < 0)
		return r == -FI_ENODATA
			       ? fail(c, -ENODATA,
				      "%s: no such provider here, or it "
				      "cannot reach %s:%s (see fi_info -p "
				      "'%s')",
				      prov, host, port, prov)
			       : fail(c, r, "%s: %s", prov,
				      fabric_strerror(-r));
	r = setup_buffers(c);
	if (r < 0)
		return fail(c, r, "cannot set up buffers: %s",
			    fabric_strerror(-r));
	n = handshake(c, o->secret, o->secret_len);
	if (n < 0)
		return n;
	if ((unsigned)n > want)
		n = (int)want;
	/* receives for every reply, and every write that may take one */
	r = add_rx(c, &c->rxb[1], 2 * (unsigned)n);
	if (r < 0)
		return fail(c, r, "cannot set up buffers: %s",
			    fabric_strerror(-r));
	c->nslots = (unsigned)n;
	return 0;
}

int cachefs_client_connect(const char *address,
			   const struct cachefs_client_opts *opts,
			   struct cachefs_client **out, char *err,
			   size_t errlen)
{
	static const struct cachefs_client_opts none;
	const struct cachefs_client_opts *o = opts ? opts : &none;
	const char *const *list = o->provider ? &o->provider : providers;
	size_t nprov =
		o->provider ? 1 : sizeof(providers) / sizeof(providers[0]);
	char host[256], port[16];
	struct cachefs_client *c;
	int r = -EINVAL;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->next_key = 1;
	c->done_tail = &c->done_head;
	r = fabric_load(c->msg, sizeof(c->msg));
	if (r < 0)
		goto fail;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	if (c->timeout_ms < 0)
		c->timeout_ms = -1;
	c->busy_poll = o->busy_poll;
	c->register_buffers = o->register_buffers;
	c->done_tail = &c->done_head;
	if (split_address(address, host, sizeof(host), port, sizeof(port)) <
	    0) {
		r = fail(c, -EINVAL, "%s: not HOST:PORT",
			 address ? address : "(null)");
		goto fail;
	}
	if (o->secret && !o->secret_len) {
		r = fail(c, -EINVAL, "an empty secret");
		goto fail;
	}
	for (size_t k = 0; k < nprov; k++) {
		r = try_provider(c, list[k], host, port, o);
		if (r == 0)
			break;
		close_fabric(c);
		free_buffers(c);
		/* a server answered and refused: no other provider helps */
		if (r != -ENODATA || k + 1 == nprov)
			goto fail;
		c->broken = 0;
		c->msg[0] = '\0';
	}
	*out = c;
	return 0;

fail:
	if (err && errlen)
		snprintf(err, errlen, "%s", c->msg[0] ? c->msg : strerror(-r));
	cachefs_client_disconnect(c);
	return r < 0 ? r : -EIO;
}

void cachefs_client_disconnect(struct cachefs_client *c)
{
	if (!c)
		return;
	if (c->ep && !c->broken && c->nslots) {
		/* goodbye, best effort and brief: the server would find out */
		struct rdma_msg m = { .op = RDMA_BYE };
		struct slot *s = slot_get(c);

		if (s && request(c, s, &m, deadline_in(100)) == 0) {
			int64_t deadline = deadline_in(100);

			while (!s->sent && !c->broken && left_ms(deadline) > 0)
				progress(c, left_ms(deadline));
		}
	}
	close_fabric(c);
	free_buffers(c);
	free(c);
}

const char *cachefs_client_provider(const struct cachefs_client *c)
{
	return c->provider;
}

const char *cachefs_client_error(const struct cachefs_client *c)
{
	return c->msg[0] ? c->msg : "no error";
}

size_t cachefs_client_max_read(const struct cachefs_client *c)
{
	return c->max_read;
}

unsigned cachefs_client_max_requests(const struct cachefs_client *c)
{
	return c->nslots;
}

/* --- files ---------------------------------------------------------------- */

static void to_stat(const struct rdma_stat *r, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_size = (off_t)r->size;
	st->st_ino = r->ino;
	st->st_nlink = r->nlink;
	st->st_blocks = (blkcnt_t)r->blocks;
	st->st_mode = r->mode;
	st->st_uid = r->uid;
	st->st_gid = r->gid;
	st->st_blksize = r->blksize;
	st->st_atim.tv_sec = r->atime_ns / 1000000000;
	st->st_atim.tv_nsec = r->atime_ns % 1000000000;
	st->st_mtim.tv_sec = r->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = r->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = r->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = r->ctime_ns % 1000000000;
}

static int path_msg(struct cachefs_client *c, uint8_t op, const char *path,
		    struct rdma_msg *m)
{
	size_t len = path ? strlen(path) : 0;

	if (!len)
		return fail(c, -EINVAL, "an empty path");
	if (len > RDMA_PATH_MAX)
		return fail(c, -ENAMETOOLONG, "%.40s...: too long", path);
	*m = (struct rdma_msg){
		.op = op, .path = { .path = path, .len = (uint16_t)len }
	};
	return 0;
}

int cachefs_client_stat(struct cachefs_client *c, const char *path,
			struct stat *st)
{
	struct rdma_msg m, reply;
	int r = path_msg(c, RDMA_STAT, path, &m);

	if (r == 0)
		r = call(c, &m, &reply);
	if (r < 0)
		return c->broken ? r : fail(c, r, "%s: %s", path, strerror(-r));
	if (st)
		to_stat(&reply.stat, st);
	return 0;
}

int cachefs_client_open(struct cachefs_client *c, const char *path,
			struct stat *st)
{
	struct rdma_msg m, reply;
	int r = path_msg(c, RDMA_OPEN, path, &m);

	if (r == 0)
		r = call(c, &m, &reply);
	if (r < 0)
		return c->broken ? r : fail(c, r, "%s: %s", path, strerror(-r));
	if (reply.open.handle > INT_MAX)
		return broken(c, fail(c, -EPROTO,
				      "a bad handle from the "
				      "server"));
	if (st)
		to_stat(&reply.open.st, st);
	return (int)reply.open.handle;
}

int cachefs_client_close(struct cachefs_client *c, int fh)
{
	struct rdma_msg m = { .op = RDMA_CLOSE, .close = { .handle = 0 } };
	int r;

	if (fh < 0)
		return fail(c, -EBADF, "a bad handle");
	m.close.handle = (uint32_t)fh;
	r = call(c, &m, NULL);
	return r < 0 && !c->broken ? fail(c, r, "close: %s", strerror(-r)) : r;
}

/* --- reads ---------------------------------------------------------------- */

/* A bounce buffer of at least len bytes for s, registered. */
static int bounce_for(struct cachefs_client *c, struct slot *s, size_t len)
{
	size_t size = BOUNCE_MIN;
	uint8_t *b;
	int r;

	if (s->bounce_len >= len)
		return 0;
	while (size < len)
		size *= 2;
	b = aligned_alloc(PAGE, size);
	if (!b)
		return -ENOMEM;
	close_mr(&s->bounce_mr);
	free(s->bounce);
	s->bounce = NULL;
	s->bounce_len = 0;
	r = mr_reg(c, b, size, FI_REMOTE_WRITE | FI_RECV, &s->bounce_mr);
	if (r < 0) {
		free(b);
		return r;
	}
	s->bounce = b;
	s->bounce_len = size;
	return 0;
}

/* Start a read into buf with slot s. */
static int start_read(struct cachefs_client *c, struct slot *s, int fh,
		      uint8_t *buf, size_t len, uint64_t off)
{
	struct rdma_msg m = { .op = RDMA_READ,
			      .read = { .handle = (uint32_t)fh,
					.length = (uint32_t)len,
					.offset = off } };
	int r = 0;

	s->op = RDMA_READ;
	s->buf = buf;
	s->len = len;
	if (len > c->max_inline) {
		/* the server writes it: into what is registered */
		m.flags = RDMA_F_RMA;
		s->mr = mr_find(c, buf, len);
		if (s->mr) {
			rma_target(c, s->mr->mr, s->mr->base, buf,
				   &m.read.raddr, &m.read.rkey);
		} else if (c->register_buffers &&
			   (r = mr_reg(c, buf, len, FI_REMOTE_WRITE,
				       &s->tmp_mr)) == 0) {
			rma_target(c, s->tmp_mr, buf, buf, &m.read.raddr,
				   &m.read.rkey);
		} else if ((r = bounce_for(c, s, len)) == 0) {
			s->bounced = true;
			rma_target(c, s->bounce_mr, s->bounce, s->bounce,
				   &m.read.raddr, &m.read.rkey);
		}
		if (r < 0)
			return fail(c, r, "cannot register a buffer: %s",
				    fabric_strerror(-r));
	}
	if (s->mr)
		s->mr->users++;
	c->bytes += len;
	r = request(c, s, &m, deadline_in(c->timeout_ms));
	if (r < 0 && !c->broken) {
		/* not sent: give back what it took */
		c->bytes -= len;
		if (s->mr)
			s->mr->users--;
		close_mr(&s->tmp_mr);
	}
	return r;
}

/* Whether a read of len bytes may go now (the server's limits). */
static bool room_for(const struct cachefs_client *c, size_t len)
{
	return c->busy < c->nslots && c->bytes + len <= c->max_memory;
}

int cachefs_client_submit(struct cachefs_client *c, int fh, void *buf,
			  size_t len, uint64_t off, void *user)
{
	struct slot *s;
	int r;

	if (c->broken)
		return c->broken;
	if (fh < 0 || !buf || len > c->max_read || off > INT64_MAX ||
	    len > INT64_MAX - off)
		return fail(c, fh < 0 ? -EBADF : -EINVAL,
			    "a bad read: %zu bytes at %llu", len,
			    (unsigned long long)off);
	if (!room_for(c, len))
		return -EAGAIN;
	s = slot_get(c);
	s->user = user;
	r = start_read(c, s, fh, buf, len, off);
	if (r < 0) {
		if (!c->broken)
			slot_put(c, s);
		return r;
	}
	c->submitted++;
	return 0;
}

int cachefs_client_complete(struct cachefs_client *c,
			    struct cachefs_client_completion *done,
			    unsigned max, int timeout_ms)
{
	int64_t deadline =
		deadline_in(timeout_ms < 0 ? c->timeout_ms : timeout_ms);
	unsigned n = 0;

	for (;;) {
		struct slot *s;
		int r;

		while (n < max && (s = c->done_head)) {
			c->done_head = s->next;
			if (!c->done_head)
				c->done_tail = &c->done_head;
			done[n].user = s->user;
			done[n].result = s->result;
			n++;
			c->submitted--;
			slot_put(c, s);
		}
		if (n || !max || !c->submitted)
			return (int)n;
		if (c->broken)
			return c->broken;
		r = progress(c, timeout_ms == 0 ? 0 : left_ms(deadline));
		if (r < 0 && !c->done_head)
			return r;
		if (r == 0 && !c->done_head && left_ms(deadline) == 0)
			return timeout_ms < 0
				       ? broken(c, fail(c, -ETIMEDOUT,
							"no answer from the "
							"server"))
				       : 0;
	}
}

unsigned cachefs_client_in_flight(const struct cachefs_client *c)
{
	return c->submitted;
}

/* Whether some slot's request is still in flight (not merely done). */
static bool any_busy(const struct cachefs_client *c)
{
	for (unsigned k = 0; k < c->nslots; k++)
		if (c->slots[k].state == SLOT_BUSY)
			return true;
	return false;
}

ssize_t cachefs_client_pread(struct cachefs_client *c, int fh, void *buf,
			     size_t len, uint64_t off)
{
	size_t chunk = c->max_read, nparts, next = 0, taken = 0;
	int64_t deadline = deadline_in(c->timeout_ms);
	struct slot **parts;
	ssize_t total = 0;
	bool eof = false;
	int err = 0, r;

	if (c->broken)
		return c->broken;
	if (fh < 0 || off > INT64_MAX || len > (size_t)(INT64_MAX - off) ||
	    (!buf && len))
		return fail(c, fh < 0 ? -EBADF : -EINVAL, "a bad read");
	if (!len)
		return 0;
	nparts = (len + chunk - 1) / chunk;
	parts = calloc(nparts, sizeof(*parts));
	if (!parts)
		return fail(c, -ENOMEM, "out of memory");
	/* the parts go as slots and memory allow, and are taken in order */
	while (taken < nparts && !err) {
		while (next < nparts && !eof) {
			size_t n =
				next + 1 < nparts ? chunk : len - next * chunk;
			struct slot *s;

			if (!room_for(c, n))
				break;
			s = slot_get(c);
			s->sync = true;
			r = start_read(c, s, fh, (uint8_t *)buf + next * chunk,
				       n, off + next * chunk);
			if (r < 0) {
				if (!c->broken)
					slot_put(c, s);
				err = r;
				break;
			}
			parts[next++] = s;
		}
		if (err)
			break;
		if (taken == next) {
			/* no room: submitted reads hold it */
			if (!any_busy(c)) {
				err = fail(c, -EAGAIN,
					   "every request is "
					   "taken: collect "
					   "completions first");
				break;
			}
			r = progress(c, left_ms(deadline));
			if (r < 0)
				err = r;
			else if (r == 0 && left_ms(deadline) == 0)
				err = broken(c, fail(c, -ETIMEDOUT,
						     "no answer from the "
						     "server"));
			continue;
		}
		r = wait_slot(c, parts[taken], deadline);
		if (r < 0 && parts[taken]->state != SLOT_DONE) {
			err = r;
			break;
		}
		deadline = deadline_in(c->timeout_ms);
		if (parts[taken]->result < 0 && !eof) {
			err = (int)parts[taken]->result;
		} else if (!eof) {
			total += parts[taken]->result;
			/* a short part is the end: the rest reads nothing */
			eof = (size_t)parts[taken]->result <
			      (taken + 1 < nparts ? chunk
						  : len - taken * chunk);
		}
		taken++;
		if (eof && taken == next)
			break;
	}
	/* what is still in flight is waited for: its buffer is the caller's */
	for (size_t j = 0; j < next; j++) {
		if (parts[j]->state == SLOT_BUSY)
			wait_slot(c, parts[j], deadline_in(c->timeout_ms));
		if (parts[j]->state == SLOT_DONE)
			slot_put(c, parts[j]);
	}
	free(parts);
	if (err)
		return c->broken ? c->broken
				 : fail(c, err, "read: %s", strerror(-err));
	return total;
}
