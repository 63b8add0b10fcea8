// SPDX-License-Identifier: MIT
/*
 * Per-thread statistics, summed on demand (see stats.h).
 *
 * Each thread that counts gets a struct stats of its own, linked into a
 * list on first use.  Only the owning thread writes it, with relaxed
 * atomic stores, so a reader summing under the list lock sees every
 * counter whole, if slightly behind.  When a thread exits, its counts are
 * folded into "retired" so that nothing counted is lost.
 */
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const fs_op_names[OP__COUNT] = {
#define X(name) [OP_##name] = #name,
	FS_OPS(X)
#undef X
};

const struct stats_counter_def stats_counters[STAT__COUNT] = {
#define X(name, h) [STAT_##name] = { #name, h, offsetof(struct stats, name) },
	STATS_COUNTERS(X)
#undef X
};

struct thread_stats {
	struct stats s;
	struct thread_stats *next, **pprev; /* protected by list_lock */
};

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_stats *threads;  /* protected by list_lock */
static struct stats retired;	      /* protected by list_lock */
static struct stats baseline;	      /* protected by list_lock */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread struct thread_stats *self;

#define NWORDS (sizeof(struct stats) / sizeof(uint64_t))

static void fold(uint64_t *dst, const uint64_t *src, int sign)
{
	for (size_t k = 0; k < NWORDS; k++)
		dst[k] += (uint64_t)sign *
			  __atomic_load_n(&src[k], __ATOMIC_RELAXED);
}

static void thread_exit(void *arg)
{
	struct thread_stats *ts = arg;

	pthread_mutex_lock(&list_lock);
	fold((uint64_t *)&retired, (uint64_t *)&ts->s, 1);
	*ts->pprev = ts->next;
	if (ts->next)
		ts->next->pprev = ts->pprev;
	pthread_mutex_unlock(&list_lock);
	free(ts);
}

static void make_key(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

/* This thread's counters, or NULL if they cannot be allocated. */
static struct stats *mine(void)
{
	struct thread_stats *ts = self;

	if (ts)
		return &ts->s;
	pthread_once(&key_once, make_key);
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return NULL;
	pthread_mutex_lock(&list_lock);
	ts->next = threads;
	ts->pprev = &threads;
	if (threads)
		threads->pprev = &ts->next;
	threads = ts;
	pthread_mutex_unlock(&list_lock);
	pthread_setspecific(exit_key, ts);
	self = ts;
	return &ts->s;
}

/* Owner-only increment: no other thread writes *p. */
static inline void bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

uint64_t stats_lat_bound_us(unsigned k)
{
	return k < STATS_LAT_BUCKETS - 1 ? (uint64_t)1 << k : 0;
}

static unsigned lat_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned k;

	if (us == 0)
		return 0;
	/* smallest k with us < 2^k */
	k = 64 - (unsigned)__builtin_clzll(us);
	return k < STATS_LAT_BUCKETS - 1 ? k : STATS_LAT_BUCKETS - 1;
}

void stats_op(enum fs_op op, int err, uint64_t bytes, uint64_t ns)
{
	struct stats *s = mine();
	struct op_stats *o;

	if (!s)
		return;
	o = &s->op[op];
	bump(&o->count, 1);
	bump(&o->ns, ns);
	bump(&o->lat[lat_bucket(ns)], 1);
	if (bytes)
		bump(&o->bytes, bytes);
	if (err) {
		bump(&o->errors, 1);
		bump(&s->err[err > 0 && err < STATS_ERRNO_MAX ? err : 0], 1);
	}
}

void stats_add(enum stats_counter c, uint64_t n)
{
	struct stats *s = mine();

	if (s)
		bump((uint64_t *)((char *)s + stats_counters[c].offset), n);
}

void stats_sum(struct stats *out, bool since_reset)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&list_lock);
	fold((uint64_t *)out, (uint64_t *)&retired, 1);
	for (struct thread_stats *ts = threads; ts; ts = ts->next)
		fold((uint64_t *)out, (uint64_t *)&ts->s, 1);
	if (since_reset)
		fold((uint64_t *)out, (uint64_t *)&baseline, -1);
	pthread_mutex_unlock(&list_lock);
}

void stats_reset(void)
{
	struct stats now;

	stats_sum(&now, false);
	pthread_mutex_lock(&list_lock);
	baseline = now;
	pthread_mutex_unlock(&list_lock);
}

uint64_t stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
