// SPDX-License-Identifier: MIT
/*
 * The revalidator thread (see revalidate.h).
 */
#include "revalidate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats.h"

/*
 * A writable data descriptor unused this long is closed, so that a
 * network backend writes the file back and shows it to other clients.
 */
#define DATA_IDLE_NS 1000000000u

struct revalidator {
	struct cfs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled to stop */
	volatile bool stop;  /* protected by lock; read unlocked by passes */
};

static void inode_changed(void *arg, struct inode *i)
{
	struct cfs *fs = arg;

	stats_inc(inval_inode);
	fuse_lowlevel_notify_inval_inode(fs->se, fs_ino_of(fs, i), 0, 0);
}

static void entry_changed(void *arg, struct inode *dir, const char *name)
{
	struct cfs *fs = arg;

	stats_inc(inval_entry);
	fuse_lowlevel_notify_inval_entry(fs->se, fs_ino_of(fs, dir), name,
					 strlen(name));
}

static const struct inode_change_ops notify_kernel = {
	.inode_changed = inode_changed,
	.entry_changed = entry_changed,
};

static double interval_of(struct cfs *fs)
{
	double t;

	__atomic_load(&fs->cfg->revalidate, &t, __ATOMIC_RELAXED);
	return t;
}

/*
 * One pass over every inode.  Its length is part of the staleness bound
 * (the interval is counted from the end of a pass), so status shows it.
 */
static void pass(struct cfs *fs, const volatile bool *stop)
{
	uint64_t t0 = stats_now_ns();
	unsigned n;

	n = inode_revalidate(fs->itab, &notify_kernel, fs, stop);
	stats_add(STAT_revalidated_inodes, n);
	stats_inc(revalidate_passes);
	__atomic_store_n(&fs->reval_pass_ns, stats_now_ns() - t0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&fs->reval_pass_inodes, n, __ATOMIC_RELAXED);
}

static void *run(void *arg)
{
	struct revalidator *r = arg;
	struct timespec until;
	double t;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		t = interval_of(r->fs);
		clock_gettime(CLOCK_MONOTONIC, &until);
		/* off (0): look again for a new setting once a second */
		t = t > 0 ? t : 1;
		until.tv_sec += (time_t)t;
		until.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!r->stop &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &until) !=
			       ETIMEDOUT)
			;
		if (r->fs->data)
			datafd_expire(r->fs->data, DATA_IDLE_NS);
		fs_probe_backend(r->fs);
		fs_balance_memory(r->fs);
		if (r->stop || interval_of(r->fs) <= 0)
			continue;
		pthread_mutex_unlock(&r->lock);
		pass(r->fs, &r->stop);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int revalidator_start(struct cfs *fs, struct revalidator **out)
{
	struct revalidator *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int e;

	if (!r)
		return -ENOMEM;
	r->fs = fs;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	e = pthread_create(&r->thread, NULL, run, r);
	if (e) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -e;
	}
	*out = r;
	return 0;
}

void revalidator_stop(struct revalidator *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
