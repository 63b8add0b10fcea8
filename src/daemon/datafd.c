// SPDX-License-Identifier: MIT
/*
 * The data descriptor cache (see datafd.h).
 *
 * An entry lives while it is in the hash table (cached) or borrowed.
 * Replacing an inode's read-only descriptor by a read-write one, evicting
 * and dropping take the entry out of the table; its descriptor is closed
 * by whoever leaves it last unborrowed, always outside the lock, since
 * closing a file on a network backend may write it back.
 */
#include "datafd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#define CLOSE_BATCH 32 /* descriptors closed per pass outside the lock */

struct datafd {
	struct inode *inode; /* the key */
	int fd;
	bool rw;     /* opened O_RDWR */
	bool kept;   /* the file lost its names: never evicted */
	bool hashed; /* in the table; else closed when no longer borrowed */
	unsigned users;
	uint64_t used; /* CLOCK_MONOTONIC ns when last given back */
	struct datafd *prev, *next; /* LRU: hashed, unborrowed, not kept */
	UT_hash_handle hh;
};

struct datafd_cache {
	pthread_mutex_t lock;
	struct inode_table *itab;
	unsigned max;
	int open_flags;

	/* protected by lock */
	struct datafd *hash;
	struct datafd *lru; /* utlist: head least recently used */
	unsigned cached; /* hashed and not kept */
	uint64_t open, writable, kept;
	uint64_t hits, misses, evictions, expired;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool in_lru(const struct datafd *e)
{
	return e->hashed && !e->users && !e->kept;
}

/* A list of entries to close once the lock is dropped. */
struct doomed {
	struct datafd *e[CLOSE_BATCH];
	int n;
};

static void do_forget_entry(struct datafd_cache *c, struct datafd *e)
{
	c->open--;
	if (e->rw)
		c->writable--;
	if (e->kept)
		c->kept--;
}

/*
 * Take e out of the table; if no one borrows it, move it to *d for
 * closing.  Caller holds c->lock and has room in *d when e is unborrowed.
 */
static void do_unhash(struct datafd_cache *c, struct datafd *e,
		      struct doomed *d)
{
	if (in_lru(e))
		DL_DELETE(c->lru, e);
	HASH_DEL(c->hash, e);
	e->hashed = false;
	if (!e->kept)
		c->cached--;
	if (!e->users) {
		do_forget_entry(c, e);
		d->e[d->n++] = e;
	}
}

static void close_doomed(struct doomed *d)
{
	for (int k = 0; k < d->n; k++) {
		close(d->e[k]->fd);
		free(d->e[k]);
	}
	d->n = 0;
}

/* Evict down to the bound, a batch at a time.  Caller holds c->lock. */
static void do_trim(struct datafd_cache *c, struct doomed *d)
{
	while (c->cached > c->max && c->lru && d->n < CLOSE_BATCH) {
		do_unhash(c, c->lru, d);
		c->evictions++;
	}
}

int datafd_cache_new(struct inode_table *t, unsigned max, int open_flags,
		     struct datafd_cache **out)
{
	struct datafd_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->itab = t;
	c->max = max ? max : 1;
	c->open_flags = open_flags;
	*out = c;
	return 0;
}

void datafd_cache_free(struct datafd_cache *c)
{
	struct datafd *e, *tmp;

	if (!c)
		return;
	HASH_ITER(hh, c->hash, e, tmp)
	{
		HASH_DEL(c->hash, e);
		close(e->fd);
		free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct datafd *do_find(struct datafd_cache *c, struct inode *i)
{
	struct datafd *e;

	HASH_FIND_PTR(c->hash, &i, e);
	return e;
}

static void do_borrow(struct datafd_cache *c, struct datafd *e)
{
	if (in_lru(e))
		DL_DELETE(c->lru, e);
	e->users++;
}

int datafd_get(struct datafd_cache *c, struct inode *i, bool write,
	       struct datafd **ref)
{
	struct doomed d = { .n = 0 };
	struct datafd *e, *old;
	int fd;

	pthread_mutex_lock(&c->lock);
	e = do_find(c, i);
	if (e && (e->rw || !write)) {
		do_borrow(c, e);
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		*ref = e;
		return e->fd;
	}
	c->misses++;
	pthread_mutex_unlock(&c->lock);

	fd = inode_open(c->itab, i,
			(write ? O_RDWR : O_RDONLY) | c->open_flags);
	if (fd < 0)
		return fd;
	e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	e->inode = i;
	e->fd = fd;
	e->rw = write;
	e->users = 1;
	e->hashed = true;

	pthread_mutex_lock(&c->lock);
	old = do_find(c, i);
	if (old && (old->rw || !write)) {
		/* another thread was quicker */
		do_borrow(c, old);
		pthread_mutex_unlock(&c->lock);
		close(fd);
		free(e);
		*ref = old;
		return old->fd;
	}
	if (old) { /* a read-only descriptor, superseded */
		e->kept = old->kept;
		do_unhash(c, old, &d);
	}
	HASH_ADD_PTR(c->hash, inode, e);
	c->open++;
	if (write)
		c->writable++;
	if (e->kept)
		c->kept++;
	else
		c->cached++;
	do_trim(c, &d);
	pthread_mutex_unlock(&c->lock);
	close_doomed(&d);
	*ref = e;
	return fd;
}

void datafd_install(struct datafd_cache *c, struct inode *i, int fd)
{
	struct doomed d = { .n = 0 };
	struct datafd *e = calloc(1, sizeof(*e));

	if (!e) {
		close(fd);
		return;
	}
	e->inode = i;
	e->fd = fd;
	e->rw = true;
	e->hashed = true;
	e->used = now_ns();
	pthread_mutex_lock(&c->lock);
	if (do_find(c, i)) {
		pthread_mutex_unlock(&c->lock);
		close(fd);
		free(e);
		return;
	}
	HASH_ADD_PTR(c->hash, inode, e);
	c->open++;
	c->writable++;
	c->cached++;
	DL_APPEND(c->lru, e);
	do_trim(c, &d);
	pthread_mutex_unlock(&c->lock);
	close_doomed(&d);
}

void datafd_put(struct datafd_cache *c, struct datafd *e)
{
	struct doomed d = { .n = 0 };

	pthread_mutex_lock(&c->lock);
	e->used = now_ns();
	if (--e->users == 0) {
		if (!e->hashed) {
			do_forget_entry(c, e);
			d.e[d.n++] = e;
		} else if (!e->kept) {
			DL_APPEND(c->lru, e);
			do_trim(c, &d);
		}
	}
	pthread_mutex_unlock(&c->lock);
	close_doomed(&d);
}

int datafd_keep(struct datafd_cache *c, struct inode *i)
{
	struct datafd *e;
	int fd;

	/* read-write if the file allows it, so later writes need no reopen */
	fd = datafd_get(c, i, true, &e);
	if (fd < 0)
		fd = datafd_get(c, i, false, &e);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&c->lock);
	if (e->hashed && !e->kept) {
		e->kept = true;
		c->kept++;
		c->cached--;
	}
	pthread_mutex_unlock(&c->lock);
	datafd_put(c, e);
	return 0;
}

void datafd_drop(struct datafd_cache *c, struct inode *i)
{
	struct doomed d = { .n = 0 };
	struct datafd *e;

	pthread_mutex_lock(&c->lock);
	e = do_find(c, i);
	if (e)
		do_unhash(c, e, &d);
	pthread_mutex_unlock(&c->lock);
	close_doomed(&d);
}

unsigned datafd_expire(struct datafd_cache *c, uint64_t idle_ns)
{
	struct doomed d;
	unsigned n = 0;
	uint64_t now = now_ns();

	int batch;

	do {
		struct datafd *e, *next;

		d.n = 0;
		pthread_mutex_lock(&c->lock);
		for (e = c->lru; e && d.n < CLOSE_BATCH; e = next) {
			next = e->next;
			if (now - e->used < idle_ns)
				break; /* the rest were used later */
			if (e->rw) {
				do_unhash(c, e, &d);
				c->expired++;
			}
		}
		pthread_mutex_unlock(&c->lock);
		batch = d.n;
		n += (unsigned)batch;
		close_doomed(&d);
	} while (batch == CLOSE_BATCH);
	return n;
}

void datafd_get_stats(struct datafd_cache *c, struct datafd_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->open = c->open;
	st->writable = c->writable;
	st->kept = c->kept;
	st->hits = c->hits;
	st->misses = c->misses;
	st->evictions = c->evictions;
	st->expired = c->expired;
	pthread_mutex_unlock(&c->lock);
}
