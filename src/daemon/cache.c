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
	struct tier_counters count[CACHE_TIERS_MAX];
	int ntiers;
	uint64_t max_file;
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

int cache_new(uint64_t max_file, struct cache **out)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->max_file = max_file;
	*out = c;
	return 0;
}

int cache_add_tier(struct cache *c, struct tier *t)
{
	if (c->ntiers == CACHE_TIERS_MAX) {
		t->ops->free(t);
		return -ENOSPC;
	}
	c->tiers[c->ntiers++] = t;
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

bool cache_wants(struct cache *c, const struct tier_version *v)
{
	if (v->size <= c->max_file)
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

ssize_t cache_read(struct cache *c, const struct tier_version *v,
		   const char *path, int fd, void *buf, size_t size,
		   uint64_t off)
{
	struct tier_version held, now;
	char id[ID_KEY_MAX];
	void *whole = NULL;
	size_t len = 0, n;
	bool settled = false;
	int r;

	for (int k = 0; k < c->ntiers; k++) {
		struct tier *t = c->tiers[k];
		const char *key = key_of(t, v, path, id);
		ssize_t got;

		got = t->ops->get(t, TIER_DATA, key, &held, buf, size, off);
		if (got >= 0 && same_version(&held, v)) {
			inc(&c->count[k].hits);
			return got;
		}
		inc(&c->count[k].misses);
		if (got >= 0) {
			inc(&c->count[k].stale);
			t->ops->forget(t, key);
		}
	}

	r = read_whole(fd, v->gen, &whole, &len, &now, &settled);
	if (r < 0)
		return r;
	if (settled) {
		for (int k = 0; k < c->ntiers; k++) {
			struct tier *t = c->tiers[k];

			t->ops->put(t, TIER_DATA, key_of(t, &now, path, id),
				    &now, whole, len);
		}
		inc(&c->st.fills);
	} else {
		inc(&c->st.unsettled);
	}
	n = copy_range(buf, whole, len, size, off);
	free(whole);
	return (ssize_t)n;
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

		if (t->ops->by_path && !path)
			continue;
		got = t->ops->get(t, TIER_DATA, key_of(t, v, path, id), &held,
				  buf, size, off);
		if (got >= 0 && held.dev == v->dev && held.ino == v->ino) {
			inc(&c->st.offline_hits);
			return got;
		}
	}
	return -ENOENT;
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
}
