// SPDX-License-Identifier: MIT
/*
 * The cache layer (see cache.h).
 *
 * A fill stores what it read under the version the file had before the
 * read started, as far as changes through this mount go (v->gen, taken
 * by the caller before reading), and as the backend has it after the
 * read: a write that lands meanwhile raises the inode's generation after
 * it reaches the backend, so the value stored can never pass for the new
 * content.
 *
 * A shared tier (by_path: memcached) is written by every host over the
 * same backend, and read by web servers: it gets only files anyone may
 * read (the caller says so), and its versions leave out what differs
 * between hosts (device numbers, this mount's generation).  A value found
 * there is copied into the tiers before it.
 */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tier_counters {
	uint64_t hits, misses, stale; /* atomic */
};

struct cache {
	struct tier *tiers[CACHE_TIERS_MAX];
	uint64_t max_file[CACHE_TIERS_MAX]; /* the largest value each takes */
	struct tier_counters count[CACHE_TIERS_MAX];
	int ntiers;
	uint64_t max_any; /* over all tiers */
	struct cache_stats st; /* atomic */
};

static void inc(uint64_t *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

int cache_new(struct cache **out)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	*out = c;
	return 0;
}

int cache_add_tier(struct cache *c, struct tier *t, uint64_t max_file)
{
	if (c->ntiers == CACHE_TIERS_MAX) {
		t->ops->free(t);
		return -ENOSPC;
	}
	c->max_file[c->ntiers] = max_file;
	c->tiers[c->ntiers++] = t;
	if (max_file > c->max_any)
		c->max_any = max_file;
	return 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (int k = 0; k < c->ntiers; k++)
		c->tiers[k]->ops->free(c->tiers[k]);
	free(c);
}

bool cache_needs_path(const struct cache *c)
{
	for (int k = 0; k < c->ntiers; k++)
		if (c->tiers[k]->ops->by_path)
			return true;
	return false;
}

#define ID_KEY_MAX 48

/* The key of the object of v, or path, as tier t keys values. */
static const char *key_of(const struct tier *t, const struct tier_version *v,
			  const char *path, char *id)
{
	if (t->ops->by_path)
		return path;
	snprintf(id, ID_KEY_MAX, "%llx:%llx", (unsigned long long)v->dev,
		 (unsigned long long)v->ino);
	return id;
}

bool cache_takes(const struct cache *c, uint64_t size)
{
	return size <= c->max_any;
}

bool cache_wants(struct cache *c, const struct tier_version *v)
{
	if (v->size <= c->max_any)
		return true;
	inc(&c->st.skipped);
	return false;
}

static bool same_version(const struct tier_version *a,
			 const struct tier_version *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
	       a->gen == b->gen;
}

/*
 * What every host sees alike.  Not the inode number: a FUSE backend
 * (sshfs) numbers its nodes afresh once it forgot them.  Another file at
 * the same path has another change time (set when it got there).
 */
static bool same_shared(const struct tier_version *a,
			const struct tier_version *b)
{
	return a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

static bool holds(const struct tier *t, const struct tier_version *held,
		  const struct tier_version *v)
{
	return t->ops->by_path ? same_shared(held, v) : same_version(held, v);
}

/* Whether tier k may hold a file of size bytes (path: NULL if not shared). */
static bool takes(const struct cache *c, int k, uint64_t size,
		  const char *path)
{
	return size <= c->max_file[k] && (!c->tiers[k]->ops->by_path || path);
}

/*
 * Store a whole file in the tiers before tier end (only those keyed by
 * path with shared_only).  Returns 0, or the first shared tier's error
 * (-EFBIG: over its limit).
 */
static int put_all(struct cache *c, int end, const struct tier_version *v,
		   const char *path, const void *val, size_t len,
		   bool shared_only)
{
	char id[ID_KEY_MAX];
	int r = 0;

	for (int k = 0; k < end; k++) {
		struct tier *t = c->tiers[k];
		int e;

		if (shared_only && !t->ops->by_path)
			continue;
		if (!takes(c, k, len, path)) {
			if (t->ops->by_path && path && r == 0)
				r = -EFBIG;
			continue;
		}
		e = t->ops->put(t, TIER_DATA, key_of(t, v, path, id), v, val,
				len);
		if (e < 0 && t->ops->by_path && r == 0)
			r = e;
	}
	return r;
}

static void version_of(struct tier_version *v, const struct stat *st,
		       uint64_t gen)
{
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->size = (uint64_t)st->st_size;
	v->mtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	v->ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	v->gen = gen;
}

/*
 * The whole file, into a new buffer of *len bytes, with its version as
 * the backend has it after the read; *settled is false when it changed
 * while being read.  Returns 0 or a negative errno.
 */
static int read_whole(int fd, uint64_t gen, void **out, size_t *len,
		      struct tier_version *v, bool *settled)
{
	struct stat before, after;
	struct tier_version vb;
	size_t got = 0, cap;
	char *buf;

	if (fstat(fd, &before) < 0)
		return -errno;
	cap = (size_t)before.st_size + 1; /* one more: notice growth */
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	while (got < cap) {
		ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);

		if (n < 0) {
			int e = errno;

			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (fstat(fd, &after) < 0) {
		int e = errno;

		free(buf);
		return -e;
	}
	version_of(&vb, &before, gen);
	version_of(v, &after, gen);
	*settled = same_version(&vb, v) && got == (size_t)after.st_size;
	*out = buf;
	*len = got;
	return 0;
}

static size_t copy_range(void *dst, const char *src, size_t len, size_t size,
			 uint64_t off)
{
	size_t n;

	if (off >= len)
		return 0;
	n = len - off < size ? len - off : size;
	memcpy(dst, src + off, n);
	return n;
}

/*
 * Ask tier k for v's value: the range into buf, or, for a tier after the
 * first, the whole value, which the tiers before it then get too.
 * Returns the bytes copied, or a negative errno on a miss.
 */
static ssize_t get_from(struct cache *c, int k, const struct tier_version *v,
			const char *path, void *buf, size_t size, uint64_t off)
{
	struct tier *t = c->tiers[k];
	struct tier_version held;
	char id[ID_KEY_MAX];
	const char *key = key_of(t, v, path, id);
	char *whole = NULL;
	ssize_t got;

	if (k == 0) {
		got = t->ops->get(t, TIER_DATA, key, &held, buf, size, off);
	} else {
		whole = malloc(v->size ? v->size : 1);
		if (!whole)
			return -ENOMEM;
		got = t->ops->get(t, TIER_DATA, key, &held, whole, v->size, 0);
	}
	if (got >= 0 && holds(t, &held, v) && (!whole || got == (ssize_t)v->size)) {
		inc(&c->count[k].hits);
		if (whole) {
			put_all(c, k, v, path, whole, v->size, false);
			got = (ssize_t)copy_range(buf, whole, v->size, size,
						  off);
		}
		free(whole);
		return got;
	}
	free(whole);
	inc(&c->count[k].misses);
	if (got >= 0) {
		inc(&c->count[k].stale);
		t->ops->forget(t, key);
	}
	return -ENOENT;
}

ssize_t cache_read(struct cache *c, const struct tier_version *v,
		   const char *path, int fd, void *buf, size_t size,
		   uint64_t off)
{
	for (int k = 0; k < c->ntiers; k++) {
		ssize_t got;

		if (!takes(c, k, v->size, path))
			continue;
		got = get_from(c, k, v, path, buf, size, off);
		if (got >= 0)
			return got;
	}
	if (fd < 0)
		return -ENOENT;
	return cache_fill(c, v, path, fd, buf, size, off);
}

ssize_t cache_fill(struct cache *c, const struct tier_version *v,
		   const char *path, int fd, void *buf, size_t size,
		   uint64_t off)
{
	struct tier_version now;
	void *whole = NULL;
	size_t len = 0, n;
	bool settled = false;
	int r;

	r = read_whole(fd, v->gen, &whole, &len, &now, &settled);
	if (r < 0)
		return r;
	if (settled) {
		put_all(c, c->ntiers, &now, path, whole, len, false);
		inc(&c->st.fills);
	} else {
		inc(&c->st.unsettled);
	}
	n = copy_range(buf, whole, len, size, off);
	free(whole);
	return (ssize_t)n;
}

int cache_store(struct cache *c, const char *path, int fd, uint64_t gen,
		bool shared_only)
{
	struct tier_version now;
	void *whole = NULL;
	size_t len = 0;
	bool settled = false;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > c->max_any) {
		inc(&c->st.skipped);
		return -EFBIG;
	}
	r = read_whole(fd, gen, &whole, &len, &now, &settled);
	if (r < 0)
		return r;
	if (settled) {
		r = put_all(c, c->ntiers, &now, path, whole, len, shared_only);
		inc(&c->st.fills);
	} else {
		inc(&c->st.unsettled);
		r = -EBUSY;
	}
	free(whole);
	return r;
}

int cache_forget_path(struct cache *c, const char *path)
{
	int r = 0;

	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];
		int e;

		if (!t->ops->by_path)
			continue;
		e = t->ops->forget(t, path);
		if (e < 0 && r == 0)
			r = e;
	}
	return r;
}

ssize_t cache_read_offline(struct cache *c, const struct tier_version *v,
			   const char *path, void *buf, size_t size,
			   uint64_t off)
{
	struct tier_version held;
	char id[ID_KEY_MAX];

	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];
		ssize_t got;

		if (!takes(c, k, 0, path))
			continue;
		got = t->ops->get(t, TIER_DATA, key_of(t, v, path, id), &held,
				  buf, size, off);
		/* any version of the same file (a path names one) */
		if (got >= 0 && (t->ops->by_path ||
				 (held.ino == v->ino && held.dev == v->dev))) {
			inc(&c->st.offline_hits);
			return got;
		}
	}
	return -ENOENT;
}

int cache_get_listing(struct cache *c, const struct tier_version *v,
		      char **out, size_t *len)
{
	struct tier_version held;
	char id[ID_KEY_MAX];

	*out = NULL;
	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];
		const char *key = key_of(t, v, NULL, id);
		uint64_t n;
		char *buf;

		if (t->ops->by_path ||
		    t->ops->get(t, TIER_LISTING, key, &held, &n, 8, 0) != 8 ||
		    !same_version(&held, v) || n > c->max_file[k])
			continue;
		buf = malloc(n ? n : 1);
		if (!buf)
			return -ENOMEM;
		if (t->ops->get(t, TIER_LISTING, key, &held, buf, n, 8) ==
			    (ssize_t)n &&
		    same_version(&held, v)) {
			inc(&c->st.listing_hits);
			*out = buf;
			*len = n;
			return 0;
		}
		free(buf);
	}
	inc(&c->st.listing_misses);
	return -ENOENT;
}

void cache_put_listing(struct cache *c, const struct tier_version *v,
		       const void *list, size_t len)
{
	char id[ID_KEY_MAX], *val = malloc(len + 8);
	uint64_t n = len;

	if (!val)
		return;
	memcpy(val, &n, 8);
	memcpy(val + 8, list, len);
	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];

		if (!t->ops->by_path && len + 8 <= c->max_file[k] &&
		    t->ops->put(t, TIER_LISTING, key_of(t, v, NULL, id), v, val,
				len + 8) == 0)
			inc(&c->st.listing_stores);
	}
	free(val);
}

enum cache_name cache_name(struct cache *c, const char *path,
			   const struct tier_version *dir,
			   struct tier_version *ver)
{
	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];
		struct tier_name n;

		if (!t->ops->by_path ||
		    t->ops->get(t, TIER_NAME, path, NULL, &n, sizeof(n), 0) < 0)
			continue;
		if (n.missing && same_shared(&n.dir, dir)) {
			inc(&c->st.missing_hits);
			return CACHE_NAME_MISSING;
		}
		if (n.found) {
			inc(&c->st.missing_misses);
			*ver = n.ver;
			return CACHE_NAME_FOUND;
		}
	}
	inc(&c->st.missing_misses);
	return CACHE_NAME_UNKNOWN;
}

void cache_note_missing(struct cache *c, const char *path,
			const struct tier_version *dir)
{
	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];

		if (t->ops->by_path &&
		    t->ops->put(t, TIER_MISSING, path, dir, "", 0) == 0)
			inc(&c->st.missing_stores);
	}
}

void cache_clear(struct cache *c)
{
	for (int k = 0; k < c->ntiers; k++)
		c->tiers[k]->ops->clear(c->tiers[k]);
}

void cache_set_budget(struct cache *c, uint64_t budget)
{
	if (c->ntiers)
		c->tiers[0]->ops->set_budget(c->tiers[0], budget);
}

int cache_tiers(const struct cache *c)
{
	return c->ntiers;
}

void cache_get_tier_stats(struct cache *c, int k, struct cache_tier_stats *st)
{
	struct tier *t = c->tiers[k];

	st->name = t->ops->name;
	t->ops->get_stats(t, &st->tier);
	st->hits = load(&c->count[k].hits);
	st->misses = load(&c->count[k].misses);
	st->stale = load(&c->count[k].stale);
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	st->fills = load(&c->st.fills);
	st->skipped = load(&c->st.skipped);
	st->unsettled = load(&c->st.unsettled);
	st->offline_hits = load(&c->st.offline_hits);
	st->missing_hits = load(&c->st.missing_hits);
	st->missing_misses = load(&c->st.missing_misses);
	st->missing_stores = load(&c->st.missing_stores);
	st->listing_hits = load(&c->st.listing_hits);
	st->listing_misses = load(&c->st.listing_misses);
	st->listing_stores = load(&c->st.listing_stores);
}
