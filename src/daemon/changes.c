// SPDX-License-Identifier: MIT
/*
 * The change log of a mount: the journal, its room, and who is told.
 * See changes.h for the policy.
 */
#include "changes.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ctl_proto.h"
#include "log.h"

#define STATE_ROOT "/var/lib/cachefs"
#define SEGMENT_MAX (64ull << 20)
#define SEGMENT_MIN (16ull << 10)
#define JOURNAL_MAX_MIN (256ull << 10)
/*
 * Changes are refused this far below journal_max, so that the ones
 * admitted meanwhile (one per thread, each at most JOURNAL_RECORD_MAX)
 * still fit.
 */
#define HEADROOM (1ull << 20)

enum full_policy { FULL_FAIL, FULL_DROP };
static const char *const policy_names[] = { "fail", "drop" };

struct changes {
	struct journal *j;
	char dir[PATH_MAX];
	enum full_policy policy;
	uint64_t max;		/* journal_max; 0: unbounded */
	uint64_t near;		/* 90% of it: make room from here */
	uint64_t headroom;	/* refuse changes this far below max */

	pthread_mutex_t room_lock; /* one room maker at a time */
	bool full;	    /* atomic: changes are refused */
	bool alarm;	    /* atomic: cursors hold it past near */
	int failed;	    /* atomic: the journal's error */
	uint64_t refused;   /* atomic */
	uint64_t unrecorded; /* atomic */

	uint64_t interval_ns; /* journal_sync=interval: how often */
	pthread_t flusher;
	bool flushing;	      /* the flusher runs */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;	      /* protected by stop_lock */

	pthread_mutex_t listen_lock;
	unsigned nlisteners; /* atomic: skip the lock when 0 */
	struct {
		void (*fn)(void *arg);
		void *arg;
	} listeners[CHANGES_LISTENERS];
};

static void changes_free(struct changes *ch);

static void journal_log(void *arg, const char *msg)
{
	(void)arg;
	log_warning("%s", msg);
}

int changes_default_dir(const char *mountpoint, char *buf, size_t len)
{
	char sock[PATH_MAX];
	const char *name;
	size_t n;
	int r;

	/* the mount's name: its control socket's, without the .sock */
	r = ctl_socket_path(mountpoint, sock, sizeof(sock));
	if (r < 0)
		return r;
	name = strrchr(sock, '/') + 1;
	n = strlen(name) - strlen(".sock");
	if ((size_t)snprintf(buf, len, STATE_ROOT "/%.*s", (int)n, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* mkdir -p of the directories above path (mode 0755). */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static enum journal_sync sync_mode(int v)
{
	switch (v) {
	case 0:
		return JOURNAL_SYNC_ALWAYS;
	case 2:
		return JOURNAL_SYNC_NEVER;
	default:
		return JOURNAL_SYNC_INTERVAL;
	}
}

int changes_open(const struct config *cfg, const char *mountpoint,
		 struct changes **out)
{
	struct journal_cfg jc = { 0 };
	struct changes *ch;
	char err[512];
	int r;

	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return log_error_errno(-ENOMEM, "journal");
	pthread_mutex_init(&ch->room_lock, NULL);
	pthread_mutex_init(&ch->listen_lock, NULL);
	pthread_mutex_init(&ch->stop_lock, NULL);
	pthread_cond_init(&ch->stop_cond, NULL);
	if (cfg->state_dir) {
		snprintf(ch->dir, sizeof(ch->dir), "%s", cfg->state_dir);
		r = make_parents(ch->dir);
		if (r < 0) {
			log_error_errno(r, "cannot create the parents of "
					   "state_dir %s",
					ch->dir);
			goto fail;
		}
	} else {
		r = changes_default_dir(mountpoint, ch->dir, sizeof(ch->dir));
		if (r < 0) {
			log_error_errno(r, "no state directory name for %s",
					mountpoint);
			goto fail;
		}
		if (mkdir(STATE_ROOT, 0755) < 0 && errno != EEXIST) {
			r = log_error_errno(errno, "cannot create %s",
					    STATE_ROOT);
			goto fail;
		}
	}
	ch->policy = cfg->journal_full == 1 ? FULL_DROP : FULL_FAIL;
	ch->max = cfg->journal_max;
	if (ch->max && ch->max < JOURNAL_MAX_MIN) {
		log_error("journal_max=%llu is below the least, 256K",
			  (unsigned long long)ch->max);
		r = -EINVAL;
		goto fail;
	}
	ch->near = ch->max - ch->max / 10;
	ch->headroom = ch->max / 20 < HEADROOM ? ch->max / 20 : HEADROOM;
	/* several segments to a journal, so that room comes in steps */
	jc.segment_bytes = SEGMENT_MAX;
	if (ch->max && ch->max / 8 < jc.segment_bytes)
		jc.segment_bytes =
			ch->max / 8 > SEGMENT_MIN ? ch->max / 8 : SEGMENT_MIN;
	jc.max_bytes = ch->max;
	jc.sync = sync_mode(cfg->journal_sync);
	if (jc.sync == JOURNAL_SYNC_INTERVAL)
		ch->interval_ns =
			(uint64_t)(cfg->journal_sync_interval * 1e9);
	if (jc.sync == JOURNAL_SYNC_INTERVAL && !ch->interval_ns) {
		log_error("journal_sync_interval must be more than 0");
		r = -EINVAL;
		goto fail;
	}
	jc.log = journal_log;
	r = journal_open(ch->dir, &jc, &ch->j, err, sizeof(err));
	if (r < 0) {
		if (r == -EBUSY)
			log_error("journal %s is in use by another cachefs; "
				  "choose another with -o state_dir=DIR",
				  ch->dir);
		else
			log_error("cannot open the journal: %s", err);
		goto fail;
	}
	changes_make_room(ch);
	*out = ch;
	return 0;

fail:
	changes_free(ch);
	return r;
}

static void changes_free(struct changes *ch)
{
	pthread_cond_destroy(&ch->stop_cond);
	pthread_mutex_destroy(&ch->stop_lock);
	pthread_mutex_destroy(&ch->room_lock);
	pthread_mutex_destroy(&ch->listen_lock);
	free(ch);
}

/* journal_sync=interval: one fdatasync per interval, when there is news. */
static void *flusher(void *arg)
{
	struct changes *ch = arg;
	struct timespec due;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &due);
	pthread_mutex_lock(&ch->stop_lock);
	while (!ch->stop) {
		due.tv_nsec += (long)(ch->interval_ns % 1000000000u);
		due.tv_sec += (time_t)(ch->interval_ns / 1000000000u) +
			      due.tv_nsec / 1000000000;
		due.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&ch->stop_cond, &ch->stop_lock, &due);
		pthread_mutex_unlock(&ch->stop_lock);
		r = journal_sync(ch->j);
		if (r < 0 && !__atomic_exchange_n(&ch->failed, r,
						  __ATOMIC_RELAXED))
			log_error_errno(r, "journal %s failed; changes "
					   "through the mount are refused "
					   "from now on",
					ch->dir);
		pthread_mutex_lock(&ch->stop_lock);
		clock_gettime(CLOCK_MONOTONIC, &due);
	}
	pthread_mutex_unlock(&ch->stop_lock);
	return NULL;
}

int changes_start(struct changes *ch)
{
	pthread_condattr_t ca;
	int r;

	if (!ch || !ch->interval_ns)
		return 0;
	/* the flusher's deadlines are monotonic */
	pthread_cond_destroy(&ch->stop_cond);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ch->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&ch->flusher, NULL, flusher, ch);
	if (r)
		return log_error_errno(-r, "journal flusher thread");
	ch->flushing = true;
	return 0;
}

void changes_close(struct changes *ch)
{
	if (!ch)
		return;
	if (ch->flushing) {
		pthread_mutex_lock(&ch->stop_lock);
		ch->stop = true;
		pthread_cond_signal(&ch->stop_cond);
		pthread_mutex_unlock(&ch->stop_lock);
		pthread_join(ch->flusher, NULL);
	}
	journal_close(ch->j); /* syncs what the flusher had not */
	changes_free(ch);
}

struct journal *changes_journal(struct changes *ch)
{
	return ch->j;
}

const char *changes_dir(const struct changes *ch)
{
	return ch->dir;
}

int changes_admit(struct changes *ch)
{
	int failed = __atomic_load_n(&ch->failed, __ATOMIC_RELAXED);

	if (!failed && !__atomic_load_n(&ch->full, __ATOMIC_RELAXED))
		return 0;
	__atomic_add_fetch(&ch->refused, 1, __ATOMIC_RELAXED);
	return failed ? failed : -ENOSPC;
}

/* Caller holds room_lock. */
static void set_full(struct changes *ch, bool full)
{
	if (full == __atomic_load_n(&ch->full, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&ch->full, full, __ATOMIC_RELAXED);
	if (full)
		log_error("journal %s is full (journal_max); changes through "
			  "the mount fail with ENOSPC until its consumers "
			  "catch up (cachefsctl cursor list) or "
			  "journal_full=drop",
			  ch->dir);
	else
		log_notice("journal %s has room again", ch->dir);
}

/* Caller holds room_lock. */
static void set_alarm(struct changes *ch, bool alarm)
{
	if (alarm == __atomic_load_n(&ch->alarm, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&ch->alarm, alarm, __ATOMIC_RELAXED);
	if (alarm)
		log_warning("journal %s is over 90%% of journal_max: its "
			    "cursors have not acked what it holds",
			    ch->dir);
}

/* Remove the oldest segment, saying so when a cursor loses records. */
static bool drop_oldest(struct changes *ch, bool cursors)
{
	int r = journal_drop_oldest(ch->j);

	if (r < 0)
		log_error_errno(r, "journal %s: cannot remove a segment",
				ch->dir);
	else if (r > 0 && cursors)
		log_warning("journal %s is full: dropped its oldest segment; "
			    "cursors behind it will find a gap",
			    ch->dir);
	return r > 0;
}

void changes_make_room(struct changes *ch)
{
	struct journal_stats st;
	bool cursors;

	pthread_mutex_lock(&ch->room_lock);
	if (journal_trim(ch->j) < 0)
		log_warning("journal %s: cannot trim", ch->dir);
	journal_get_stats(ch->j, &st);
	if (!ch->max)
		goto out;
	cursors = journal_has_cursors(ch->j);
	/* nobody to keep records for: a window of the newest */
	while (!cursors && st.bytes >= ch->near && drop_oldest(ch, false))
		journal_get_stats(ch->j, &st);
	if (ch->policy == FULL_DROP)
		while (st.bytes + ch->headroom >= ch->max && drop_oldest(ch, true))
			journal_get_stats(ch->j, &st);
	set_alarm(ch, cursors && st.bytes >= ch->near);
	set_full(ch, st.bytes + ch->headroom >= ch->max);
out:
	pthread_mutex_unlock(&ch->room_lock);
}

void changes_record(struct changes *ch, struct journal_record *r)
{
	struct journal_stats st;
	int e;

	e = journal_append(ch->j, r);
	if (e == -ENOSPC) {
		/* admitted before it filled: room, or the policy's answer */
		changes_make_room(ch);
		e = journal_append(ch->j, r);
	}
	if (e < 0) {
		__atomic_add_fetch(&ch->unrecorded, 1, __ATOMIC_RELAXED);
		if (e != -ENOSPC &&
		    !__atomic_exchange_n(&ch->failed, e, __ATOMIC_RELAXED))
			log_error_errno(e, "journal %s failed; changes through "
					   "the mount are refused from now on",
					ch->dir);
		log_error("journal %s: a change was made but not recorded: "
			  "%s %s%s%s",
			  ch->dir, journal_op_name(r->op), r->path,
			  r->path2 ? " -> " : "", r->path2 ? r->path2 : "");
		return;
	}
	if (__atomic_load_n(&ch->nlisteners, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&ch->listen_lock);
		for (int k = 0; k < CHANGES_LISTENERS; k++)
			if (ch->listeners[k].fn)
				ch->listeners[k].fn(ch->listeners[k].arg);
		pthread_mutex_unlock(&ch->listen_lock);
	}
	if (ch->max) {
		journal_get_stats(ch->j, &st);
		if (st.bytes >= ch->near)
			changes_make_room(ch);
	}
}

bool changes_coalesce(struct changes *ch, struct journal_record *r)
{
	/* on an error, changes_record() finds it again, and says so */
	return journal_coalesce(ch->j, r) == 1;
}

int changes_listen(struct changes *ch, void (*fn)(void *arg), void *arg)
{
	int r = -ENOSPC;

	pthread_mutex_lock(&ch->listen_lock);
	for (int k = 0; k < CHANGES_LISTENERS; k++)
		if (!ch->listeners[k].fn) {
			ch->listeners[k].fn = fn;
			ch->listeners[k].arg = arg;
			__atomic_add_fetch(&ch->nlisteners, 1, __ATOMIC_RELEASE);
			r = 0;
			break;
		}
	pthread_mutex_unlock(&ch->listen_lock);
	return r;
}

void changes_unlisten(struct changes *ch, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&ch->listen_lock);
	for (int k = 0; k < CHANGES_LISTENERS; k++)
		if (ch->listeners[k].fn == fn && ch->listeners[k].arg == arg) {
			ch->listeners[k].fn = NULL;
			__atomic_sub_fetch(&ch->nlisteners, 1, __ATOMIC_RELEASE);
		}
	pthread_mutex_unlock(&ch->listen_lock);
}

void changes_get_stats(struct changes *ch, struct changes_stats *st)
{
	struct journal_cursor_info none;

	journal_get_stats(ch->j, &st->j);
	st->refused = __atomic_load_n(&ch->refused, __ATOMIC_RELAXED);
	st->unrecorded = __atomic_load_n(&ch->unrecorded, __ATOMIC_RELAXED);
	st->cursors = journal_cursor_list(ch->j, &none, 0);
	st->full = __atomic_load_n(&ch->full, __ATOMIC_RELAXED);
	st->alarm = __atomic_load_n(&ch->alarm, __ATOMIC_RELAXED);
	st->failed = __atomic_load_n(&ch->failed, __ATOMIC_RELAXED);
	st->policy = policy_names[ch->policy];
}
