// SPDX-License-Identifier: MIT
/*
 * Registered buffers in size classes (see rdma_buf.h).
 */
#include "rdma_buf.h"

#include <errno.h>
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CLASS 8	       /* 256 bytes */
#define SLAB_SIZE (256u << 10) /* small buffers are cut from these */
#define PAGE 4096

struct slab {
	struct slab *next;
	void *data;
	struct fid_mr *mr;
	struct rdma_buf *bufs; /* the buffers cut from it */
};

struct rdma_pool {
	struct fid_domain *domain;
	struct fid_ep *ep;
	bool reg;	      /* register (FI_MR_LOCAL) */
	bool bind;	      /* bind to the endpoint (FI_MR_ENDPOINT) */
	uint64_t next_key;    /* keys we choose must be unique */
	uint64_t cap;	      /* large buffers, in bytes */
	uint64_t large;	      /* bytes of large buffers allocated */
	uint64_t idle;	      /* of those, on the free lists */
	uint64_t slabs;	      /* bytes of slabs */
	uint64_t allocs;      /* large buffers allocated, ever */
	uint64_t allocs_seen; /* at the last rdma_pool_trim() */
	struct rdma_buf *free[RDMA_BUF_MAX_CLASS + 1];
	struct slab *slab_list;
};

int rdma_pool_new(struct fid_domain *domain, struct fid_ep *ep,
		  uint64_t mr_mode, uint64_t cap, struct rdma_pool **out)
{
	struct rdma_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->domain = domain;
	p->ep = ep;
	p->reg = mr_mode & FI_MR_LOCAL;
	p->bind = mr_mode & FI_MR_ENDPOINT;
	p->cap = cap;
	*out = p;
	return 0;
}

/* Register len bytes at data for local use; 0 or a negative errno. */
static int reg(struct rdma_pool *p, void *data, size_t len, struct fid_mr **mr)
{
	int r;

	*mr = NULL;
	if (!p->reg)
		return 0;
	r = fi_mr_reg(p->domain, data, len,
		      FI_SEND | FI_RECV | FI_READ | FI_WRITE, 0, p->next_key++,
		      0, mr, NULL);
	if (r == 0 && p->bind &&
	    ((r = fi_mr_bind(*mr, &p->ep->fid, 0)) != 0 ||
	     (r = fi_mr_enable(*mr)) != 0)) {
		fi_close(&(*mr)->fid);
		*mr = NULL;
	}
	return r < 0 ? r : r > 0 ? -r : 0;
}

static unsigned class_of(size_t size)
{
	unsigned k = MIN_CLASS;

	while (k <= RDMA_BUF_MAX_CLASS && ((size_t)1 << k) < size)
		k++;
	return k;
}

/* A new slab cut into buffers of class k, onto the free list. */
static int add_slab(struct rdma_pool *p, unsigned k)
{
	size_t size = (size_t)1 << k, n = SLAB_SIZE / size;
	struct slab *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s || !(s->data = aligned_alloc(PAGE, SLAB_SIZE)) ||
	    !(s->bufs = calloc(n, sizeof(*s->bufs))))
		goto fail;
	r = reg(p, s->data, SLAB_SIZE, &s->mr);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct rdma_buf *b = &s->bufs[i];

		b->data = (char *)s->data + i * size;
		b->size = size;
		b->mr = s->mr;
		b->desc = s->mr ? fi_mr_desc(s->mr) : NULL;
		b->cls = k;
		b->next = p->free[k];
		p->free[k] = b;
	}
	s->next = p->slab_list;
	p->slab_list = s;
	p->slabs += SLAB_SIZE;
	return 0;

fail:
	if (s) {
		free(s->bufs);
		free(s->data);
	}
	free(s);
	return r;
}

static void free_large(struct rdma_pool *p, struct rdma_buf *b);

/* Free idle large buffers, the largest first, until len more fit. */
static void free_idle(struct rdma_pool *p, size_t len)
{
	for (unsigned k = RDMA_BUF_MAX_CLASS;
	     k > RDMA_BUF_SLAB_CLASS && p->large + len > p->cap; k--) {
		while (p->free[k] && p->large + len > p->cap) {
			struct rdma_buf *b = p->free[k];

			p->free[k] = b->next;
			p->idle -= b->size;
			free_large(p, b);
		}
	}
}

struct rdma_buf *rdma_buf_get(struct rdma_pool *p, size_t size)
{
	unsigned k = class_of(size);
	struct rdma_buf *b;

	if (k > RDMA_BUF_MAX_CLASS)
		return NULL;
	if (!p->free[k]) {
		if (k <= RDMA_BUF_SLAB_CLASS) {
			if (add_slab(p, k) < 0)
				return NULL;
		} else {
			size_t len = (size_t)1 << k;

			if (p->large + len > p->cap)
				free_idle(p, len);
			if (p->large + len > p->cap)
				return NULL;
			b = calloc(1, sizeof(*b));
			if (!b || !(b->data = aligned_alloc(PAGE, len)) ||
			    reg(p, b->data, len, &b->mr) < 0) {
				if (b)
					free(b->data);
				free(b);
				return NULL;
			}
			b->size = len;
			b->cls = k;
			b->desc = b->mr ? fi_mr_desc(b->mr) : NULL;
			p->large += len;
			p->allocs++;
			return b;
		}
	}
	b = p->free[k];
	p->free[k] = b->next;
	b->next = NULL;
	if (k > RDMA_BUF_SLAB_CLASS)
		p->idle -= b->size;
	return b;
}

static void free_large(struct rdma_pool *p, struct rdma_buf *b)
{
	if (b->mr)
		fi_close(&b->mr->fid);
	p->large -= b->size;
	free(b->data);
	free(b);
}

void rdma_buf_put(struct rdma_pool *p, struct rdma_buf *b)
{
	if (!b)
		return;
	if (b->cls > RDMA_BUF_SLAB_CLASS)
		p->idle += b->size;
	b->next = p->free[b->cls];
	p->free[b->cls] = b;
}

void rdma_pool_trim(struct rdma_pool *p)
{
	if (p->allocs == p->allocs_seen)
		free_idle(p, p->cap); /* every idle one */
	p->allocs_seen = p->allocs;
}

uint64_t rdma_pool_bytes(const struct rdma_pool *p)
{
	return p ? p->large + p->slabs : 0;
}

void rdma_pool_free(struct rdma_pool *p)
{
	struct rdma_buf *b, *next;
	struct slab *s, *snext;

	if (!p)
		return;
	for (unsigned k = RDMA_BUF_SLAB_CLASS + 1; k <= RDMA_BUF_MAX_CLASS;
	     k++) {
		for (b = p->free[k]; b; b = next) {
			next = b->next;
			free_large(p, b);
		}
	}
	for (s = p->slab_list; s; s = snext) {
		snext = s->next;
		if (s->mr)
			fi_close(&s->mr->fid);
		free(s->bufs);
		free(s->data);
		free(s);
	}
	free(p);
}
