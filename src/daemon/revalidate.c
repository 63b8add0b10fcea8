// SPDX-License-Identifier: MIT
/*
 * The revalidator thread (see revalidate.h).
 */
#include "revalidate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "stats.h"

/*
 * A writable data descriptor unused this long is closed, so that a
 * network backend writes the file back and shows it to other clients.
 */
#define DATA_IDLE_NS 1000000000u
/* A directory listing stopped halfway holds its descriptor this long. */
#define DIR_IDLE_NS 1000000000u
#define HOUSEKEEPING_NS 1000000000u /* expiry, backend probe, memory */

struct revalidator {
	struct cfs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled to stop, or on a kick */
	volatile bool stop;  /* protected by lock; read unlocked by passes */
	bool kicked;	     /* protected by lock: the table wants a trim */
};

/*
 * The inode table grew past its bounds: trim now rather than at the next
 * second.  Runs under the table's lock, which the thread never holds
 * while it holds r->lock.
 */
static void kick(void *arg)
{
	struct revalidator *r = arg;

	pthread_mutex_lock(&r->lock);
	r->kicked = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void inode_changed(void *arg, struct inode *i)
{
	struct cfs *fs = arg;

	stats_inc(inval_inode);
	fuse_lowlevel_notify_inval_inode(fs->se, fs_ino_of(fs, i), 0, 0);
	if (S_ISREG(inode_type(i)))
		fs_shared_forget(fs, i, NULL);
}

static void name_trimmed(void *arg, struct inode *dir, const char *name)
{
	struct cfs *fs = arg;

	stats_inc(inval_entry);
	fuse_lowlevel_notify_inval_entry(fs->se, fs_ino_of(fs, dir), name,
					 strlen(name));
}

/* A change on the backend: shared tiers forget the path too. */
static void entry_changed(void *arg, struct inode *dir, const char *name)
{
	struct cfs *fs = arg;

	name_trimmed(arg, dir, name);
	fs_shared_forget(fs, dir, name);
}

static const struct inode_change_ops notify_kernel = {
	.inode_changed = inode_changed,
	.entry_changed = entry_changed,
	.name_trimmed = name_trimmed,
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
	struct inode_table_stats before, after;
	uint64_t t0 = stats_now_ns();
	unsigned n;

	inode_table_get_stats(fs->itab, &before);
	n = inode_revalidate(fs->itab, &notify_kernel, fs, stop);
	inode_table_get_stats(fs->itab, &after);
	stats_add(STAT_revalidated_inodes, n);
	stats_add(STAT_revalidated_by_name,
		  after.checked_by_name - before.checked_by_name);
	stats_inc(revalidate_passes);
	__atomic_store_n(&fs->reval_pass_ns, stats_now_ns() - t0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&fs->reval_pass_inodes, n, __ATOMIC_RELAXED);
}

/* Wait until ns (CLOCK_MONOTONIC), a stop or a kick; caller holds r->lock. */
static void wait_until(struct revalidator *r, uint64_t ns)
{
	struct timespec until = {
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};

	if (!r->stop)
		pthread_cond_timedwait(&r->cond, &r->lock, &until);
}

/* Every second, and on a kick: expiry, the backend probe, memory. */
static void chores(struct cfs *fs)
{
	if (fs->data)
		datafd_expire(fs->data, DATA_IDLE_NS);
	fs_expire_dir_streams(fs, DIR_IDLE_NS);
	fs_probe_backend(fs);
	inode_table_trim(fs->itab, &notify_kernel, fs);
	fs_balance_memory(fs);
}

/* CPU time of the calling thread, ns. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Chores every second, and as soon as the inode table outgrows its
 * bounds (but INODE_TRIM_SPACING_NS apart); a pass every revalidate
 * interval, counted from the end of the last one, and never sooner than
 * the CPU time that pass took: on a tree so large that checking it
 * outlasts the interval, the revalidator keeps to half a core, and the
 * bound grows to about twice a pass (status shows how long one takes).
 * Time spent waiting (a slow backend, the kernel dropping pages) does
 * not count.
 */
static void *run(void *arg)
{
	struct revalidator *r = arg;
	uint64_t next_pass = 0, chores_at = stats_now_ns(), due, now, t0,
		 busy;
	double t;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		now = stats_now_ns();
		t = interval_of(r->fs);
		if (t > 0 && !next_pass)
			next_pass = now + (uint64_t)(t * 1e9);
		due = chores_at + (r->kicked ? INODE_TRIM_SPACING_NS
					      : HOUSEKEEPING_NS);
		if (next_pass && next_pass < due)
			due = next_pass;
		if (now < due) {
			wait_until(r, due);
			continue; /* a stop, a kick, or the time: look again */
		}
		r->kicked = false;
		pthread_mutex_unlock(&r->lock);
		chores(r->fs);
		chores_at = stats_now_ns();
		t = interval_of(r->fs);
		if (t <= 0)
			next_pass = 0;
		if (next_pass && chores_at >= next_pass) {
			t0 = cpu_ns();
			pass(r->fs, &r->stop);
			busy = cpu_ns() - t0;
			now = stats_now_ns();
			next_pass = now + ((uint64_t)(t * 1e9) > busy
						   ? (uint64_t)(t * 1e9)
						   : busy);
		}
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
	inode_table_on_over(fs->itab, kick, r);
	*out = r;
	return 0;
}

void revalidator_stop(struct revalidator *r)
{
	if (!r)
		return;
	inode_table_on_over(r->fs->itab, NULL, NULL);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
