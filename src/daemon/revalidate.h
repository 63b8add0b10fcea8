/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_REVALIDATE_H
#define CACHEFS_REVALIDATE_H

#include "fs.h"

/*
 * The revalidator: a thread that, every -o revalidate interval, compares
 * what the kernel was told (inode_revalidate()) with the backend and
 * tells the kernel to forget what changed there behind the mount's back,
 * so staleness is bounded by the interval (plus one pass) without a
 * round trip on the application's calls.
 */

struct revalidator;

/* Start after the mount is up (and the daemon detached). */
int revalidator_start(struct cfs *fs, struct revalidator **out);

/* Stop and free (NULL-safe). */
void revalidator_stop(struct revalidator *r);

#endif
