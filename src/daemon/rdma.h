/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_RDMA_H
#define CACHEFS_RDMA_H

#include <stdint.h>

#include "fs.h"

/*
 * The RDMA read server: clients on the fabric (libcachefs, cachefs-get)
 * stat, open and read files of the mount without mounting it, over
 * libfabric (the protocol is in src/shared/rdma_proto.h).  Off unless
 * -o rdma is given.
 *
 * Clients are not local users: everything they do acts as rdma_user
 * (nobody by default), so the backend's own permission checks decide
 * what they may read, and paths are confined to the tree exactly like the
 * mount (fs_resolve()).  Reads come from the cache tiers when the data is
 * there, else from the backend.  A client must prove it knows the secret
 * of rdma_secret_file before any request is served; without one, the
 * server only listens on a loopback address.
 */

struct rdma_server;

/* What status shows; counters are in stats.h (rdma_*). */
struct rdma_status {
	char address[96];	/* as bound, e.g. "127.0.0.1:7471" */
	char provider[64];	/* e.g. "tcp;ofi_rxm" */
	const char *completion; /* how RMA reads complete: cq_data, ... */
	uint64_t clients;	/* connected, authenticated or not */
	uint64_t authenticated;
	uint64_t requests; /* in flight */
	uint64_t bytes;	   /* of reads in flight */
	uint64_t handles;  /* files open for clients */
	uint64_t memory;   /* bytes of the server's buffers */
};

/*
 * From the rdma* options: check them, read the secret, look the user up
 * and find the provider (before daemonizing, so that a mistake is told
 * at mount time).  *out stays NULL without -o rdma.  Logs what fails and
 * returns a negative errno.
 */
int rdma_new(struct cfs *fs, struct rdma_server **out);

/*
 * Open the endpoint and serve, from threads of its own: after
 * daemonizing.  Logs what fails.
 */
int rdma_start(struct rdma_server *s);

/* Stop serving, forget every client, free s (NULL-safe). */
void rdma_free(struct rdma_server *s);

/* The server's figures; any thread. */
void rdma_get_status(struct rdma_server *s, struct rdma_status *st);

#endif
