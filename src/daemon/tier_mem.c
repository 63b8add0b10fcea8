// SPDX-License-Identifier: MIT
/*
 * The in-process cache tier: a hash table of values with one LRU list,
 * bounded in bytes.  An entry and its key and value are one allocation,
 * and all of it counts against the budget.
 */
#include "tier.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

struct mem_entry {
	UT_hash_handle hh;
	struct mem_entry *prev, *next; /* LRU: head least recently used */
	struct tier_version ver;
	size_t len;	/* of the value, which follows the key */
	size_t keylen;	/* kind byte + path */
	char key[];
};

struct tier_mem {
	struct tier tier;
	pthread_mutex_t lock;
	uint64_t budget;

	/* protected by lock */
	struct mem_entry *hash;
	struct mem_entry *lru; /* utlist: head least recently used */
	struct tier_stats st;
};

static struct tier_mem *mem_of(struct tier *t)
{
	return (struct tier_mem *)t;
}

/* malloc's header and rounding, and a share of the hash buckets */
#define ALLOC_OVERHEAD 24

static size_t entry_bytes(const struct mem_entry *e)
{
	return sizeof(*e) + e->keylen + e->len + ALLOC_OVERHEAD;
}

/* Caller holds m->lock. */
static void do_delete(struct tier_mem *m, struct mem_entry *e)
{
	HASH_DEL(m->hash, e);
	DL_DELETE(m->lru, e);
	m->st.entries--;
	m->st.bytes -= entry_bytes(e);
	free(e);
}

/* The hash key of a value: a kind byte, then the tier key. */
static size_t make_key(char *key, size_t cap, enum tier_kind kind,
		       const char *key_str)
{
	size_t n = strlen(key_str);

	if (n + 1 > cap)
		return 0;
	key[0] = (char)('0' + kind);
	memcpy(key + 1, key_str, n);
	return n + 1;
}

#define KEY_MAX 4097 /* PATH_MAX and the kind byte */

static struct mem_entry *do_find(struct tier_mem *m, enum tier_kind kind,
				 const char *key_str)
{
	char key[KEY_MAX];
	struct mem_entry *e;
	size_t n = make_key(key, sizeof(key), kind, key_str);

	if (!n)
		return NULL;
	HASH_FIND(hh, m->hash, key, n, e);
	return e;
}

static ssize_t mem_get(struct tier *t, enum tier_kind kind, const char *key_str,
		       struct tier_version *ver, void *buf, size_t size,
		       uint64_t off)
{
	struct tier_mem *m = mem_of(t);
	struct mem_entry *e;
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	e = do_find(m, kind, key_str);
	if (!e) {
		m->st.misses++;
		pthread_mutex_unlock(&m->lock);
		return -ENOENT;
	}
	m->st.hits++;
	DL_DELETE(m->lru, e);
	DL_APPEND(m->lru, e);
	*ver = e->ver;
	if (off < e->len) {
		n = e->len - off < size ? e->len - off : size;
		memcpy(buf, e->key + e->keylen + off, n);
	}
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)n;
}

static int mem_put(struct tier *t, enum tier_kind kind, const char *key_str,
		   const struct tier_version *ver, const void *val, size_t len)
{
	struct tier_mem *m = mem_of(t);
	struct mem_entry *e, *old;
	char key[KEY_MAX];
	size_t keylen = make_key(key, sizeof(key), kind, key_str);

	if (!keylen)
		return -ENAMETOOLONG;
	if (sizeof(*e) + keylen + len + ALLOC_OVERHEAD > m->budget)
		return -EFBIG;
	e = malloc(sizeof(*e) + keylen + len);
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->ver = *ver;
	e->len = len;
	e->keylen = keylen;
	memcpy(e->key, key, keylen);
	memcpy(e->key + keylen, val, len);

	pthread_mutex_lock(&m->lock);
	HASH_FIND(hh, m->hash, key, keylen, old);
	if (old)
		do_delete(m, old);
	while (m->lru && m->st.bytes + entry_bytes(e) > m->budget) {
		do_delete(m, m->lru);
		m->st.evictions++;
	}
	HASH_ADD_KEYPTR(hh, m->hash, e->key, keylen, e);
	DL_APPEND(m->lru, e);
	m->st.entries++;
	m->st.bytes += entry_bytes(e);
	m->st.stores++;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_forget(struct tier *t, const char *key_str)
{
	struct tier_mem *m = mem_of(t);

	pthread_mutex_lock(&m->lock);
	for (int k = 0; k < TIER__KINDS; k++) {
		struct mem_entry *e = do_find(m, (enum tier_kind)k, key_str);

		if (e)
			do_delete(m, e);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_clear(struct tier *t)
{
	struct tier_mem *m = mem_of(t);

	pthread_mutex_lock(&m->lock);
	while (m->lru)
		do_delete(m, m->lru);
	pthread_mutex_unlock(&m->lock);
}

static void mem_get_stats(struct tier *t, struct tier_stats *st)
{
	struct tier_mem *m = mem_of(t);

	pthread_mutex_lock(&m->lock);
	*st = m->st;
	st->budget = m->budget;
	pthread_mutex_unlock(&m->lock);
}

static void mem_set_budget(struct tier *t, uint64_t budget)
{
	struct tier_mem *m = mem_of(t);

	pthread_mutex_lock(&m->lock);
	m->budget = budget;
	while (m->lru && m->st.bytes > m->budget) {
		do_delete(m, m->lru);
		m->st.evictions++;
	}
	pthread_mutex_unlock(&m->lock);
}

static void mem_free(struct tier *t)
{
	struct tier_mem *m = mem_of(t);

	if (!m)
		return;
	mem_clear(t);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct tier_ops mem_ops = {
	.name = "memory",
	.by_path = false,
	.get = mem_get,
	.put = mem_put,
	.forget = mem_forget,
	.clear = mem_clear,
	.get_stats = mem_get_stats,
	.set_budget = mem_set_budget,
	.free = mem_free,
};

struct tier *tier_mem_new(uint64_t budget)
{
	struct tier_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->tier.ops = &mem_ops;
	pthread_mutex_init(&m->lock, NULL);
	m->budget = budget;
	return &m->tier;
}
