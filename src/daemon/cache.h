/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CACHE_H
#define CACHEFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tier.h"

/*
 * The cache layer between the FUSE operations and the tiers: it asks the
 * tiers in order, serves a value only while its version is still the
 * object's, fills the tiers from the backend on a miss, and counts hits
 * and misses per tier and per kind.
 *
 * Only what the kernel does not keep comes here: the kernel answers warm
 * stats, lookups, listings and reads itself, and the daemon sees a read
 * only when the kernel dropped the file's pages (memory pressure, or a
 * change found by the revalidator).
 */

#define CACHE_TIERS_MAX 4

struct cache;

struct cache_tier_stats {
	const char *name;
	struct tier_stats tier; /* the tier's own */
	uint64_t hits, misses, stale; /* stale: held, but an old version */
};

struct cache_stats {
	uint64_t fills;	       /* values read from the backend and stored */
	uint64_t skipped;      /* reads of files over max_cached_file */
	uint64_t unsettled;    /* fills not stored: the file changed meanwhile */
	uint64_t offline_hits; /* served while the backend failed */
	/* names missing, in the shared tiers */
	uint64_t missing_hits, missing_misses, missing_stores;
	/* directory listings, in the tiers of this process */
	uint64_t listing_hits, listing_misses, listing_stores;
};

int cache_new(struct cache **out);
/*
 * Takes t over; tiers are asked in the order they were added.  t holds
 * files up to max_file bytes.
 */
int cache_add_tier(struct cache *c, struct tier *t, uint64_t max_file);
void cache_free(struct cache *c);

/* Whether some tier keys values by path (so callers must give one). */
bool cache_needs_path(const struct cache *c);

/* Whether a file of size bytes is small enough for a tier. */
bool cache_takes(const struct cache *c, uint64_t size);

/* Whether a file of this version is small enough for a tier (counted). */
bool cache_wants(struct cache *c, const struct tier_version *v);

/*
 * Read size bytes at off of a file, whose version is *v, into buf: from
 * the first tier that holds that version, else from fd (the whole file,
 * which then fills every tier), or, with fd < 0, -ENOENT.  path is the
 * file's path in the mount, for the tiers keyed by path
 * (cache_needs_path()); NULL keeps the file out of them (a file not
 * everyone may read).  Returns the bytes read or a negative errno from
 * the backend.
 */
ssize_t cache_read(struct cache *c, const struct tier_version *v,
		   const char *path, int fd, void *buf, size_t size,
		   uint64_t off);

/* The second half of cache_read(): from fd, filling every tier. */
ssize_t cache_fill(struct cache *c, const struct tier_version *v,
		   const char *path, int fd, void *buf, size_t size,
		   uint64_t off);

/*
 * Store the whole file open at fd in every tier that takes it (path as
 * for cache_read()), or with shared_only in the tiers keyed by path, its
 * version as the backend has it with this mount's generation gen: after
 * a write, so that a shared tier has the new bytes.  Returns 0; -EFBIG
 * when the file is over a limit; -EBUSY when it changed while being
 * read (nothing stored); a shared tier's error; or the backend's.
 */
int cache_store(struct cache *c, const char *path, int fd, uint64_t gen,
		bool shared_only);

/*
 * Forget path in the tiers keyed by path, before a change to it returns.
 * Returns 0, or a negative errno when a tier could not now (it then
 * makes sure the value is never served; see tier.h).
 */
int cache_forget_path(struct cache *c, const char *path);

/*
 * The backend failed: read from any version of the file (v->dev, v->ino)
 * the tiers still hold.  Returns the bytes read or -ENOENT.
 */
ssize_t cache_read_offline(struct cache *c, const struct tier_version *v,
			   const char *path, void *buf, size_t size,
			   uint64_t off);

/*
 * What the shared tiers know of path, a name in a directory now at
 * version dir, asked in one request of each:
 *
 *	CACHE_NAME_MISSING  a host found it missing from the directory as
 *	                    it is now (a directory's version changes with
 *	                    every entry made in it);
 *	CACHE_NAME_FOUND    a host stored its bytes; *ver is their version;
 *	CACHE_NAME_UNKNOWN  neither.
 *
 * And remember path missing from dir at that version, for other hosts.
 */
enum cache_name {
	CACHE_NAME_UNKNOWN,
	CACHE_NAME_MISSING,
	CACHE_NAME_FOUND,
};

enum cache_name cache_name(struct cache *c, const char *path,
			   const struct tier_version *dir,
			   struct tier_version *ver);
void cache_note_missing(struct cache *c, const char *path,
			const struct tier_version *dir);

/*
 * A directory's listing (listing.h) while its version is *v: a copy in
 * *out, of *len bytes, for the caller to free; -ENOENT when no tier of
 * this process holds that version.  And store one.
 */
int cache_get_listing(struct cache *c, const struct tier_version *v,
		      char **out, size_t *len);
void cache_put_listing(struct cache *c, const struct tier_version *v,
		       const void *list, size_t len);

/* Forget everything. */
void cache_clear(struct cache *c);

/* The in-process (first) tier's budget, in bytes. */
void cache_set_budget(struct cache *c, uint64_t budget);

int cache_tiers(const struct cache *c);
void cache_get_tier_stats(struct cache *c, int k, struct cache_tier_stats *st);
void cache_get_stats(struct cache *c, struct cache_stats *st);

#endif
