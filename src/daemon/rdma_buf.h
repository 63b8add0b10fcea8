/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_RDMA_BUF_H
#define CACHEFS_RDMA_BUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Buffers for the RDMA server's messages and RMA writes, registered with
 * the domain when the provider asks for it (FI_MR_LOCAL), in power-of-two
 * size classes so that a buffer, once registered, is used again.
 *
 * Small classes (up to RDMA_BUF_SLAB_CLASS) are cut from slabs registered
 * once and kept; large ones are allocated one by one and count against
 * the pool's cap: a get beyond it frees idle ones of other sizes, or
 * fails (the caller waits for a put).  Idle large buffers are kept for
 * the next reads, until rdma_pool_trim() finds the pool needed none
 * since its last call.  Not thread-safe: the RDMA progress thread alone
 * uses a pool.
 */

struct fid_domain;
struct fid_ep;
struct rdma_pool;

struct rdma_buf {
	void *data;
	size_t size; /* at least what was asked */
	void *desc;  /* for the data transfer calls; NULL: not registered */
	/* the pool's */
	struct fid_mr *mr;
	unsigned cls;
	struct rdma_buf *next;
};

#define RDMA_BUF_SLAB_CLASS 15 /* 32 KiB */

/*
 * A pool for domain (with ep, for providers that bind memory to
 * endpoints, FI_MR_ENDPOINT), registering as mr_mode (the domain's) asks;
 * large buffers up to cap bytes in all.  Returns 0 or a negative errno.
 */
int rdma_pool_new(struct fid_domain *domain, struct fid_ep *ep,
		  uint64_t mr_mode, uint64_t cap, struct rdma_pool **out);

/* Close the registrations and free every buffer (all put back or not). */
void rdma_pool_free(struct rdma_pool *p);

/*
 * A buffer of at least size bytes (at most 1 << RDMA_BUF_MAX_CLASS), or
 * NULL: over the cap, or out of memory.
 */
#define RDMA_BUF_MAX_CLASS 22 /* 4 MiB */
struct rdma_buf *rdma_buf_get(struct rdma_pool *p, size_t size);
void rdma_buf_put(struct rdma_pool *p, struct rdma_buf *b);

/*
 * Call now and then (every few seconds): frees the idle large buffers
 * when no new one was needed since the last call.
 */
void rdma_pool_trim(struct rdma_pool *p);

/* Bytes allocated (slabs and large buffers, idle or not). */
uint64_t rdma_pool_bytes(const struct rdma_pool *p);

#endif
