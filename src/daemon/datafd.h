/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_DATAFD_H
#define CACHEFS_DATAFD_H

#include <stdbool.h>
#include <stdint.h>

#include "inode.h"

/*
 * Data descriptors: backend descriptors for reading and writing regular
 * files, one per inode, shared by every open of it and kept in a bounded
 * LRU cache.
 *
 * They replace per-open descriptors when the kernel does not send OPEN
 * and RELEASE (-o no_open): it checks permissions itself at open(2) and
 * keeps file pages across opens, so a warm open-read-close never reaches
 * the daemon.  A descriptor is opened read-only until something writes;
 * then read-write.  A writable descriptor idle for a while is closed
 * (datafd_expire), so a network backend sees the file closed, and so
 * written back, soon after the last write.
 */

struct datafd_cache;
struct datafd; /* one borrowed descriptor */

struct datafd_stats {
	uint64_t open;	    /* descriptors open */
	uint64_t writable;  /* of which read-write */
	uint64_t kept;	    /* of which held for unlinked files */
	uint64_t hits, misses, evictions, expired;
};

/* At most max descriptors are cached (kept ones come on top). */
int datafd_cache_new(struct inode_table *t, unsigned max, int open_flags,
		     struct datafd_cache **out);
void datafd_cache_free(struct datafd_cache *c);

/*
 * Borrow a descriptor of regular file i, read-write when write is true.
 * Returns it, with *ref to hand back to datafd_put(), or a negative errno.
 */
int datafd_get(struct datafd_cache *c, struct inode *i, bool write,
	       struct datafd **ref);
void datafd_put(struct datafd_cache *c, struct datafd *ref);

/*
 * Take over fd, a read-write descriptor of i just created, as its cached
 * descriptor (closed at once if i has one already).
 */
void datafd_install(struct datafd_cache *c, struct inode *i, int fd);

/*
 * i is about to lose its last name while the kernel may still have it
 * open: keep a descriptor, so the backend keeps the file, until
 * datafd_drop().  Returns 0 or a negative errno.
 */
int datafd_keep(struct datafd_cache *c, struct inode *i);

/* i is gone: close its descriptor (when no one borrows it). */
void datafd_drop(struct datafd_cache *c, struct inode *i);

/* Close writable descriptors unused for idle_ns; returns how many. */
unsigned datafd_expire(struct datafd_cache *c, uint64_t idle_ns);

void datafd_get_stats(struct datafd_cache *c, struct datafd_stats *st);

#endif
