/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_TIER_H
#define CACHEFS_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A cache tier: a store of what cachefs learnt from the backend.  A tier
 * in this process keys a value by the object's identity on the backend
 * (device and inode number, so renames and hard links need nothing); a
 * shared one, by the path in the mount ("/dir/file"), which other hosts
 * and web servers can name too.  Tiers are stores, not judges: each value
 * comes with
 * the version of the object it was taken from, and the cache layer
 * (cache.h) serves a value only while that version is still the
 * object's, so a tier can never make the daemon serve stale data; at
 * worst it misses.
 *
 * Tiers: "memory" (tier_mem.c), in this process, always first.  A shared
 * one (memcached) plugs in behind it with the same table.
 */

/*
 * What an object was when a value was taken from it.  A shared tier
 * (by_path) is written by every host, whose device numbers and change
 * counts differ, and whose inode numbers may too (FUSE backends): there
 * only size, mtime_ns and ctime_ns count, and a shared tier may return
 * dev and gen as 0.
 */
struct tier_version {
	uint64_t dev, ino;  /* backend device and inode number */
	uint64_t size;
	int64_t mtime_ns, ctime_ns;
	uint64_t gen;	    /* changes through this mount; see inode.h */
};

enum tier_kind {
	TIER_DATA, /* the bytes of a small regular file */
	/*
	 * A name that did not exist: no bytes; the version is its
	 * directory's when it was looked up, so the value holds only while
	 * the directory is unchanged.  Only shared tiers keep these, and
	 * give them back through TIER_NAME.
	 */
	TIER_MISSING,
	/*
	 * What a shared tier knows of a name, asked in one request: buf
	 * (size at least sizeof(struct tier_name)) receives a struct
	 * tier_name; 0 when something is known.  Never stored as such.
	 */
	TIER_NAME,
	/*
	 * A directory's listing (listing.h), after its length (8 bytes);
	 * the version is the directory's.  Only tiers in this process.
	 */
	TIER_LISTING,
	TIER__KINDS
};

/* The answer to a TIER_NAME get. */
struct tier_name {
	bool missing;		 /* stored as TIER_MISSING */
	struct tier_version dir; /* then: the directory's version */
	bool found;		 /* a file's bytes were stored (TIER_DATA) */
	struct tier_version ver; /* then: the file's version with them */
};

struct tier_stats {
	uint64_t hits, misses, stores, evictions;
	uint64_t entries, bytes; /* held now; 0 where the tier cannot tell */
	uint64_t budget;	 /* bytes; 0: not bounded here */
	uint64_t errors;	 /* requests the tier failed (or timed out) */
	uint64_t too_big;	 /* values not stored: over the tier's limit */
	uint64_t key_too_long;	 /* values not stored: key over the limit */
	uint64_t deletes;	 /* values removed on request (forget) */
	bool down;		 /* skipped (in part) until it answers again */
	unsigned servers;	 /* of a shared tier; 0 in this process */
	unsigned servers_down;	 /* of them, skipped until they answer */
};

struct tier;

struct tier_ops {
	const char *name;
	bool by_path; /* keys are paths in the mount; else identities */
	/*
	 * Copy up to size bytes of key's value, from offset off, into buf,
	 * and its version into *ver.  Returns the bytes copied (0 at or past
	 * the end), -ENOENT when the tier holds no such value, or another
	 * negative errno when the tier itself failed.
	 */
	ssize_t (*get)(struct tier *t, enum tier_kind kind, const char *key,
		       struct tier_version *ver, void *buf, size_t size,
		       uint64_t off);
	/* Store a value (replacing any); 0 or a negative errno. */
	int (*put)(struct tier *t, enum tier_kind kind, const char *key,
		   const struct tier_version *ver, const void *val,
		   size_t len);
	/*
	 * Forget every value of key (all kinds); 0, or a negative errno
	 * when the tier could not (a shared tier then makes sure, e.g. by
	 * retrying when its server answers again, that the value is never
	 * served).
	 */
	int (*forget)(struct tier *t, const char *key);
	/*
	 * Forget everything this process stored.  A shared tier, which
	 * every writer keeps current, may do nothing.
	 */
	void (*clear)(struct tier *t);
	void (*get_stats)(struct tier *t, struct tier_stats *st);
	/* A new budget in bytes (0: unbounded), evicting down to it. */
	void (*set_budget)(struct tier *t, uint64_t budget);
	void (*free)(struct tier *t);
};

/* Every tier starts with this. */
struct tier {
	const struct tier_ops *ops;
};

/* The in-process tier: LRU within budget bytes (values, keys, overhead). */
struct tier *tier_mem_new(uint64_t budget);

#endif
