// SPDX-License-Identifier: MIT
/*
 * The mirror engine: the journal replayed to remote trees, one ordered,
 * pipelined stream per mirror (see mirror.h, and mirror_target.h for
 * what a target does).
 *
 * Each mirror runs in a thread of its own, on its own event loop:
 *
 *	journal record ──▶ steps (from the backend's current state)
 *	     ──▶ queue ──▶ in flight (up to the target's depth, none on a
 *	         path related to another one's) ──▶ done ──▶ cursor
 *
 * Steps start strictly in journal order; a step waits while an earlier
 * one on the same path, a parent or a child is in flight, and never
 * overtakes it.  A record is done once all its steps are, and the cursor
 * ("mirror.NAME") is acked up to the first record not done.
 *
 * Any failure stops the stream: what was in flight is dropped, the
 * target reconnects after a backoff (1 s doubling to 5 min), and replay
 * starts again after the cursor.  Every step takes the backend's state
 * as it is then, so doing one again is harmless.
 *
 * Directories' mtimes change on the remote as entries come and go: the
 * directories touched are noted, and their mtimes set from the backend
 * when the stream catches up (or every second while it does not).
 */
#include "mirror.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "changes.h"
#include "fs.h"
#include "journal.h"
#include "log.h"
#include "mirror_path.h"
#include "mirror_target.h"

#define MIRRORS_MAX 16
#define NAME_MAX_LEN 32
#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 300
#define ACK_EVERY_NS 200000000ull	/* persist the cursor at most 5/s */
#define DIRTY_FLUSH 256			/* directories, or each second */
#define MIRRORS_FILE "mirrors"		/* in state_dir: added at run time */
#define RATE_SAMPLES 11			/* throughput over the last 10 s */
#define READ_AHEAD 64			/* steps queued before they start */
#define SESSIONS_MAX 16			/* targets made from one URL */
#define DEPTH_MAX 128			/* steps in flight over all of them */

enum step_kind {
	STEP_PUT,
	STEP_MKDIR,
	STEP_SYMLINK,
	STEP_LINK,
	STEP_REMOVE,
	STEP_RMDIR,
	STEP_RENAME,
	STEP_SETATTR,
	STEP_VERIFY, /* resync: compare a file's content with the remote's */
};

static const char *const step_names[] = {
	[STEP_PUT] = "put",	    [STEP_MKDIR] = "mkdir",
	[STEP_SYMLINK] = "symlink", [STEP_LINK] = "link",
	[STEP_REMOVE] = "remove",   [STEP_RMDIR] = "rmdir",
	[STEP_RENAME] = "rename",   [STEP_SETATTR] = "setattr",
	[STEP_VERIFY] = "compare",
};

struct rec;

struct step {
	struct mirror *m;
	struct rec *rec; /* the record it is part of */
	enum step_kind kind;
	char *path, *path2;
	bool dir;
	int fd; /* PUT, VERIFY: the backend file */
	uint64_t size;
	uint64_t got;  /* VERIFY: bytes of the remote's compared */
	bool differs;  /* VERIFY: a byte differed, or the remote's is longer */
	struct timespec ctime; /* PUT: the file's, as fd was opened */
	struct mirror_attr attr;
	char *target; /* SYMLINK */
	/* the file's identity, to fall back from a failed RENAME or LINK */
	unsigned char handle[JOURNAL_HANDLE_MAX];
	size_t handle_len;
	uint64_t dev, ino;
	unsigned epoch; /* the stream it was started in */
	unsigned ti;	/* the target (session) it runs on */
	struct step *next;
};

/* A record being replayed: done when all its steps are. */
struct rec {
	uint64_t seq;
	unsigned pending;
	struct rec *next;
};

/* Resync: a directory to compare, or a remote tree to delete. */
struct frame {
	enum { F_COMPARE, F_DELETE, F_REPLACE } kind;
	bool fresh;  /* F_COMPARE: made by this resync, so empty */
	bool listed; /* F_DELETE: its entries are being removed */
	struct frame *next; /* the stack */
	char path[];
};

/* Resync: one entry of a remote listing. */
struct rentry {
	UT_hash_handle hh;
	char type;
	uint64_t size;
	struct mirror_attr attr;
	bool seen; /* the backend has it too */
	char name[];
};

struct dirty {
	UT_hash_handle hh;
	char path[]; /* a directory whose mtime the remote changed */
};

/*
 * A path whose record needed no step: its file was gone from there when
 * the record was read (renamed or removed since).  A rename or link
 * from it that finds nothing on the remote is then no conflict.
 */
struct absent {
	UT_hash_handle hh;
	char path[];
};
#define ABSENT_MAX 65536

enum mirror_state {
	MS_CONNECTING,
	MS_OK,	       /* replaying; caught up or catching up */
	MS_FAILING,    /* waiting to retry */
	MS_PAUSED,
	MS_RESYNCING,
	MS_STOPPED,    /* conflict with mirror_conflict=stop */
};

static const char *const state_names[] = {
	[MS_CONNECTING] = "connecting", [MS_OK] = "ok",
	[MS_FAILING] = "failing",	[MS_PAUSED] = "paused",
	[MS_RESYNCING] = "resyncing",	[MS_STOPPED] = "stopped",
};

struct mirror {
	struct mirrors *ms;
	char name[NAME_MAX_LEN + 1];
	char cursor[NAME_MAX_LEN + 8]; /* "mirror.NAME" */
	char *url;
	bool runtime; /* added with cachefsctl: kept in MIRRORS_FILE */
	bool listening; /* told of appends */
	const struct mirror_target_ops *ops;
	/* the targets made from the URL, and the steps each runs */
	struct mirror_target *t[SESSIONS_MAX];
	unsigned nt, t_inflight[SESSIONS_MAX];
	unsigned connecting; /* targets whose connect() has not answered */

	pthread_t thread;
	bool running;
	struct event_base *base;
	struct event *wake;   /* from other threads: look at requests */
	struct event *timer;  /* each second: flushes, ack, alert */
	struct event *retry;  /* the next connection attempt */
	struct event *kick;   /* records were appended */
	bool kicked;	      /* atomic: kick is active already */

	/* the loop thread's own */
	struct journal_iter *it;
	uint64_t next_seq;	/* the next record to read */
	struct step *queue, **queue_tail; /* not started yet */
	unsigned nqueued;
	unsigned inflight, depth;
	struct step *flying[256]; /* in flight; NULL slots free */
	struct rec *recs, **recs_tail; /* records not done, in order */
	struct dirty *dirty;
	unsigned ndirty;
	struct absent *absent; /* since the reader last caught up */
	unsigned nabsent;
	uint64_t dirty_since_ns;
	unsigned epoch;		/* bumped when a stream is torn down */
	unsigned backoff_s;
	uint64_t acked_saved;	/* the cursor as persisted */
	uint64_t ack_saved_ns;
	bool alerted;
	pid_t alert_pid;	/* mirror_alert running; 0: none */
	uint64_t max_started;	/* the latest record a step was started of */
	int hw_fd;		/* where it is kept */
	uint64_t replay_hw;	/* records up to it may have been replayed */
	bool failing;		/* a stream_stop() is on its way */
	int fail_err;
	struct frame *frames;	/* resync: directories still to do */
	struct rentry *remote;	/* resync: the listing being compared */
	struct rec *resync_rec; /* resync: what its steps count under */
	bool listing;		/* resync: a list() is in flight */
	bool resync_content;	/* resync: files compared byte for byte */

	/* shared: protected by lock */
	pthread_mutex_t lock;
	enum mirror_state state;
	char error[256];	/* the last failure */
	uint64_t failing_since_ns; /* CLOCK_REALTIME; 0: not failing */
	uint64_t acked;		/* every record up to it is on the remote */
	uint64_t conflicts, steps_done, bytes_done, files_done, retries;
	uint64_t skipped;	/* records the remote cannot represent */
	uint64_t resync_files, resync_uploaded, resync_removed;
	uint64_t resync_checked; /* files whose content was compared */
	uint64_t resyncs;	/* done, since the mount */
	struct {
		uint64_t ns, files, bytes;
	} rate[RATE_SAMPLES];	/* each second; rate_next is the oldest */
	unsigned rate_next;
	bool req_retry, req_pause, req_resume, req_resync, req_stop;
	bool req_content; /* with req_resync: compare content too */
};

struct mirrors {
	struct cfs *fs;
	int root_fd; /* the backend root, for handles and paths */
	struct mirror *m[MIRRORS_MAX];
	unsigned n;
	bool started;
	pthread_mutex_t lock; /* the list, against control requests */
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct journal *journal_of(struct mirror *m)
{
	return changes_journal(m->ms->fs->changes);
}

/* ---- paths ---------------------------------------------------------- */

static bool step_related(const struct step *s, const struct step *o)
{
	return mirror_path_related(s->path, o->path) ||
	       (s->path2 && mirror_path_related(s->path2, o->path)) ||
	       (o->path2 && mirror_path_related(s->path, o->path2)) ||
	       (s->path2 && o->path2 && mirror_path_related(s->path2, o->path2));
}

/* ---- the backend's current state --------------------------------- */

/*
 * Open the file a record names: by its handle, else by its path if that
 * still leads to the same inode.  flags: O_PATH, or O_RDONLY for a
 * regular file's content.  Negative errno; -ESTALE/-ENOENT: it is gone.
 */
static int open_current(struct mirror *m, const unsigned char *handle,
			size_t handle_len, uint64_t dev, uint64_t ino,
			const char *path, int flags)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[JOURNAL_HANDLE_MAX];
	} h;
	struct stat st;
	int fd, type;

	if (handle_len > sizeof(type)) {
		memcpy(&type, handle, sizeof(type));
		h.fh.handle_type = type;
		h.fh.handle_bytes = (unsigned)(handle_len - sizeof(type));
		memcpy(h.fh.f_handle, handle + sizeof(type),
		       h.fh.handle_bytes);
		fd = open_by_handle_at(m->ms->root_fd, &h.fh,
				       flags | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 || (errno != EOPNOTSUPP && errno != EPERM &&
				errno != EBADF))
			return fd >= 0 ? fd : -errno;
	}
	if (!mirror_path_ok(path))
		return -ENOENT;
	fd = openat(m->ms->root_fd, path[1] ? path + 1 : ".",
		    flags | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (ino && (st.st_ino != ino ||
					   st.st_dev != (dev_t)dev))) {
		close(fd);
		return -ENOENT; /* another file has the name now */
	}
	return fd;
}

static void attr_of(const struct stat *st, struct mirror_attr *a)
{
	a->mode = st->st_mode & 07777;
	a->mtime = st->st_mtim;
}

/* ---- steps and records ------------------------------------------- */

static struct step *step_new(struct mirror *m, enum step_kind kind,
			     const char *path, const char *path2)
{
	struct step *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->m = m;
	s->kind = kind;
	s->fd = -1;
	s->path = strdup(path);
	s->path2 = path2 ? strdup(path2) : NULL;
	if (!s->path || (path2 && !s->path2)) {
		free(s->path);
		free(s->path2);
		free(s);
		return NULL;
	}
	return s;
}

static void step_free(struct step *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s->path2);
	free(s->target);
	free(s);
}

static struct rec *rec_new(struct mirror *m, uint64_t seq)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->seq = seq;
	*m->recs_tail = r;
	m->recs_tail = &r->next;
	return r;
}

static void enqueue(struct mirror *m, struct rec *r, struct step *s)
{
	s->rec = r;
	r->pending++;
	*m->queue_tail = s;
	m->queue_tail = &s->next;
	m->nqueued++;
}

/* Put s first in the queue: it stands in for the step that failed. */
static void enqueue_front(struct mirror *m, struct rec *r, struct step *s)
{
	s->rec = r;
	r->pending++;
	s->next = m->queue;
	if (!m->queue)
		m->queue_tail = &s->next;
	m->queue = s;
	m->nqueued++;
}

static void note_dirty(struct mirror *m, const char *path)
{
	char parent[PATH_MAX];
	struct dirty *d;
	size_t n;

	mirror_path_parent(path, parent, sizeof(parent));
	HASH_FIND_STR(m->dirty, parent, d);
	if (d)
		return;
	n = strlen(parent) + 1;
	d = malloc(sizeof(*d) + n);
	if (!d)
		return; /* its mtime is set at the next resync */
	memcpy(d->path, parent, n);
	HASH_ADD_STR(m->dirty, path, d);
	if (!m->ndirty++)
		m->dirty_since_ns = now_ns(CLOCK_MONOTONIC);
}

/* A PUT of the regular file fd (open for reading) at path. */
static void absent_clear(struct mirror *m)
{
	struct absent *a, *tmp;

	HASH_ITER(hh, m->absent, a, tmp) {
		HASH_DEL(m->absent, a);
		free(a);
	}
	m->nabsent = 0;
}

/* path's record needed no step: nothing was sent there. */
static void note_absent(struct mirror *m, const char *path)
{
	size_t n = strlen(path) + 1;
	struct absent *a;

	HASH_FIND_STR(m->absent, path, a);
	if (a)
		return;
	if (m->nabsent >= ABSENT_MAX)
		absent_clear(m); /* a conflict may be counted that was none */
	a = malloc(sizeof(*a) + n);
	if (!a)
		return;
	memcpy(a->path, path, n);
	HASH_ADD_STR(m->absent, path, a);
	m->nabsent++;
}

/* Whether path's record needed no step since the reader caught up. */
static bool was_absent(struct mirror *m, const char *path)
{
	struct absent *a;

	HASH_FIND_STR(m->absent, path, a);
	return a != NULL;
}

static struct step *put_step(struct mirror *m, const char *path, int fd,
			     const struct stat *st)
{
	struct step *s = step_new(m, STEP_PUT, path, NULL);

	if (!s) {
		close(fd);
		return NULL;
	}
	s->fd = fd;
	s->size = (uint64_t)st->st_size;
	s->ctime = st->st_ctim;
	s->ino = st->st_ino;
	attr_of(st, &s->attr);
	return s;
}

/*
 * The step that makes path on the remote what the open file fd (O_PATH)
 * is on the backend now: a PUT, a MKDIR or a SYMLINK; NULL for what the
 * remote cannot hold (devices, fifos, sockets: counted as skipped).
 * Takes fd.
 */
static struct step *make_step(struct mirror *m, const char *path, int fd)
{
	char target[PATH_MAX + 1];
	struct step *s = NULL;
	struct stat st;
	ssize_t n;
	int rfd;

	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	if (S_ISREG(st.st_mode)) {
		char proc[64];

		/* reopen for reading: an O_PATH descriptor has no data */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		rfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOATIME);
		if (rfd < 0)
			rfd = open(proc, O_RDONLY | O_CLOEXEC);
		close(fd);
		if (rfd < 0 || fstat(rfd, &st) < 0) {
			if (rfd >= 0)
				close(rfd);
			return NULL;
		}
		return put_step(m, path, rfd, &st);
	}
	if (S_ISDIR(st.st_mode)) {
		s = step_new(m, STEP_MKDIR, path, NULL);
		if (s)
			attr_of(&st, &s->attr);
	} else if (S_ISLNK(st.st_mode)) {
		n = readlinkat(fd, "", target, sizeof(target) - 1);
		if (n >= 0 && (s = step_new(m, STEP_SYMLINK, path, NULL))) {
			target[n] = '\0';
			s->target = strdup(target);
			if (!s->target) {
				step_free(s);
				s = NULL;
			}
		}
	} else {
		pthread_mutex_lock(&m->lock);
		m->skipped++;
		pthread_mutex_unlock(&m->lock);
	}
	close(fd);
	return s;
}

static bool same_put(const struct step *a, const struct step *b)
{
	return a->kind == STEP_PUT && b->kind == STEP_PUT &&
	       !strcmp(a->path, b->path) && a->ino == b->ino &&
	       a->size == b->size &&
	       a->attr.mtime.tv_sec == b->attr.mtime.tv_sec &&
	       a->attr.mtime.tv_nsec == b->attr.mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/*
 * Whether an upload of the same file in the same state (inode, size,
 * mtime, ctime) at the same path is queued or in flight: a create and
 * the write right after it are read once the write is done.
 */
static bool put_pending(struct mirror *m, const struct step *s)
{
	for (const struct step *q = m->queue; q; q = q->next)
		if (same_put(q, s))
			return true;
	for (unsigned k = 0; k < m->depth; k++)
		if (m->flying[k] && same_put(m->flying[k], s))
			return true;
	return false;
}

static void set_identity(struct step *s, const struct journal_record *r)
{
	memcpy(s->handle, r->handle, r->handle_len);
	s->handle_len = r->handle_len;
	s->dev = r->dev;
	s->ino = r->ino;
}

/*
 * The steps of one journal record, queued under a new rec.  Returns 0,
 * or -ENOMEM.  A record naming a file that is gone from the backend
 * needs no step: a later record removes or renames it.
 */
static uint64_t copy_max(struct mirror *m);

static int record_steps(struct mirror *m, const struct journal_record *r)
{
	struct rec *rec = rec_new(m, r->seq);
	struct step *s = NULL;
	enum journal_class cls = journal_op_class(r->op);
	struct stat st;
	int fd;

	if (!rec)
		return -ENOMEM;
	if (!mirror_path_ok(r->path) || (r->path2 && !mirror_path_ok(r->path2)))
		return 0; /* no name any more: nothing to replay */
	switch (r->op) {
	case JOURNAL_OP_UNLINK:
		s = step_new(m, STEP_REMOVE, r->path, NULL);
		break;
	case JOURNAL_OP_RMDIR:
		s = step_new(m, STEP_RMDIR, r->path, NULL);
		break;
	case JOURNAL_OP_RENAME:
	case JOURNAL_OP_LINK:
		s = step_new(m, r->op == JOURNAL_OP_LINK ? STEP_LINK
							  : STEP_RENAME,
			     r->path, r->path2);
		if (!s)
			break;
		set_identity(s, r);
		fd = open_current(m, r->handle, r->handle_len, r->dev, r->ino,
				  r->path2, O_PATH);
		if (fd < 0)
			break;
		s->dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
		/*
		 * Over what the remote copies, a file goes again, at its new
		 * name, and a renamed one is removed at its old.
		 */
		if (S_ISREG(st.st_mode) && copy_max(m) &&
		    (uint64_t)st.st_size > copy_max(m)) {
			struct step *put = make_step(m, r->path2, fd);

			if (r->op == JOURNAL_OP_RENAME) {
				s->kind = STEP_REMOVE;
				free(s->path2);
				s->path2 = NULL;
				if (put)
					enqueue(m, rec, put);
				enqueue(m, rec, s);
			} else {
				step_free(s);
				if (put)
					enqueue(m, rec, put);
			}
			note_dirty(m, r->path);
			note_dirty(m, r->path2);
			return 0;
		}
		/*
		 * Without a handle, the data records before it found no file
		 * at the old name: the content goes again, at the new one.
		 */
		if (!r->handle_len && S_ISREG(st.st_mode)) {
			struct step *put = make_step(m, r->path2, fd);

			enqueue(m, rec, s);
			note_dirty(m, s->path);
			note_dirty(m, s->path2);
			if (put)
				enqueue(m, rec, put);
			return 0;
		}
		close(fd);
		break;
	case JOURNAL_OP_EXCHANGE: {
		/* a rename each way, through a name of its own */
		char tmp[PATH_MAX];
		struct step *a, *b, *c;

		snprintf(tmp, sizeof(tmp), "%s.cachefs-exchange-%" PRIu64,
			 r->path, r->seq);
		a = step_new(m, STEP_RENAME, r->path, tmp);
		b = step_new(m, STEP_RENAME, r->path2, r->path);
		c = step_new(m, STEP_RENAME, tmp, r->path2);
		if (!a || !b || !c) {
			if (a)
				step_free(a);
			if (b)
				step_free(b);
			if (c)
				step_free(c);
			return -ENOMEM;
		}
		/* both may be directories; the target moves what it finds */
		a->dir = b->dir = c->dir = true;
		enqueue(m, rec, a);
		enqueue(m, rec, b);
		enqueue(m, rec, c);
		note_dirty(m, r->path);
		note_dirty(m, r->path2);
		return 0;
	}
	case JOURNAL_OP_SETXATTR:
	case JOURNAL_OP_REMOVEXATTR:
	case JOURNAL_OP_MKNOD:
		pthread_mutex_lock(&m->lock);
		m->skipped++;
		pthread_mutex_unlock(&m->lock);
		return 0;
	default:
		/* create, mkdir, symlink, data and metadata: as it is now */
		fd = open_current(m, r->handle, r->handle_len, r->dev, r->ino,
				  r->path, O_PATH);
		if (fd < 0) {
			note_absent(m, r->path);
			return 0;
		}
		if (cls == JOURNAL_CLASS_METADATA &&
		    fstat(fd, &st) == 0 && !S_ISLNK(st.st_mode)) {
			close(fd);
			s = step_new(m, STEP_SETATTR, r->path, NULL);
			if (s)
				attr_of(&st, &s->attr);
			break;
		}
		s = make_step(m, r->path, fd);
		if (!s)
			return 0;
		if (s->kind == STEP_PUT && put_pending(m, s)) {
			step_free(s); /* that upload has this content already */
			return 0;
		}
		break;
	}
	if (!s)
		return -ENOMEM;
	enqueue(m, rec, s);
	note_dirty(m, s->path);
	if (s->path2)
		note_dirty(m, s->path2);
	return 0;
}

/* The directories noted dirty get their backend mtimes, as a record. */
static int flush_dirty(struct mirror *m)
{
	struct dirty *d, *tmp;
	struct rec *rec;
	struct stat st;
	struct step *s;

	if (!m->dirty)
		return 0;
	/* after the records before it; done with the last of them */
	rec = rec_new(m, m->next_seq - 1);
	if (!rec)
		return -ENOMEM;
	HASH_ITER(hh, m->dirty, d, tmp) {
		HASH_DEL(m->dirty, d);
		if (fstatat(m->ms->root_fd, d->path[1] ? d->path + 1 : ".",
			    &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) &&
		    (s = step_new(m, STEP_SETATTR, d->path, NULL))) {
			attr_of(&st, &s->attr);
			s->dir = true;
			enqueue(m, rec, s);
		}
		free(d);
	}
	m->ndirty = 0;
	return 0;
}

/* ---- the stream ---------------------------------------------------- */

static void pump(struct mirror *m);
static void pop_frame(struct mirror *m);
static void free_remote(struct mirror *m);
static bool resync_marked(struct mirror *m, bool *content);
static void stream_fail(struct mirror *m, int err, const char *what,
			const char *msg);
static void stream_stop(struct mirror *m, int err, const char *what,
			const char *msg, bool retry);

static void set_state(struct mirror *m, enum mirror_state st)
{
	pthread_mutex_lock(&m->lock);
	m->state = st;
	if (st == MS_OK) {
		m->failing_since_ns = 0;
		m->error[0] = '\0';
	}
	pthread_mutex_unlock(&m->lock);
}

static enum mirror_state get_state(struct mirror *m)
{
	enum mirror_state st;

	pthread_mutex_lock(&m->lock);
	st = m->state;
	pthread_mutex_unlock(&m->lock);
	return st;
}

/* Persist the cursor: now, or when due. */
static void save_ack(struct mirror *m, bool now)
{
	uint64_t acked, t = now_ns(CLOCK_MONOTONIC);
	int r;

	pthread_mutex_lock(&m->lock);
	acked = m->acked;
	pthread_mutex_unlock(&m->lock);
	if (acked == m->acked_saved ||
	    (!now && t - m->ack_saved_ns < ACK_EVERY_NS))
		return;
	r = journal_cursor_set(journal_of(m), m->cursor, acked);
	if (r < 0) {
		log_error_errno(r, "mirror %s: cannot save its cursor",
				m->name);
		return;
	}
	m->acked_saved = acked;
	m->ack_saved_ns = t;
	changes_make_room(m->ms->fs->changes); /* segments it held may go */
}

/*
 * Records whose steps are all done, from the oldest: acked.  A record
 * shares its number with the directory flush after it: acked once both
 * are done.
 */
static void advance(struct mirror *m)
{
	struct rec *r;
	uint64_t acked = 0;

	while ((r = m->recs) && r->pending == 0) {
		m->recs = r->next;
		if (!m->recs)
			m->recs_tail = &m->recs;
		if (!m->recs || m->recs->seq != r->seq)
			acked = r->seq;
		free(r);
	}
	if (acked) {
		pthread_mutex_lock(&m->lock);
		if (acked > m->acked)
			m->acked = acked;
		pthread_mutex_unlock(&m->lock);
		save_ack(m, false);
	}
}

static void flying_remove(struct mirror *m, struct step *s)
{
	if (s->epoch == m->epoch && m->t_inflight[s->ti])
		m->t_inflight[s->ti]--;
	for (unsigned k = 0; k < m->depth; k++)
		if (m->flying[k] == s) {
			m->flying[k] = NULL;
			break;
		}
	m->inflight--;
}

static bool blocked(struct mirror *m, const struct step *s)
{
	for (unsigned k = 0; k < m->depth; k++)
		if (m->flying[k] && step_related(m->flying[k], s))
			return true;
	return false;
}

/*
 * Instead of a RENAME or LINK, send what the backend has at its new path
 * (first in the queue, under its record); a directory's content comes
 * with a resync.
 */
static void send_again(struct mirror *m, struct step *s)
{
	struct step *f;
	int fd;

	fd = open_current(m, s->handle, s->handle_len, s->dev, s->ino,
			  s->path2, O_PATH);
	if (fd < 0) {
		note_absent(m, s->path2); /* gone from there too: nothing */
		return;
	}
	f = make_step(m, s->path2, fd);
	if (f)
		enqueue_front(m, s->rec, f);
	if (f && f->kind == STEP_MKDIR) {
		pthread_mutex_lock(&m->lock);
		m->req_resync = true;
		pthread_mutex_unlock(&m->lock);
		event_active(m->wake, 0, 0);
	}
}

/* The largest file the remote renames or links without it being sent. */
static uint64_t copy_max(struct mirror *m)
{
	return m->ops->copy_max && m->nt ? m->ops->copy_max(m->t[0]) : 0;
}

/*
 * A RENAME or LINK whose source the remote lacks: upload instead.  A
 * record replayed again after a failure or a crash may find its rename
 * done already: that is no conflict.
 */
static bool fall_back(struct mirror *m, struct step *s)
{
	/* replayed before a failure or crash, or never sent: no conflict */
	bool again = s->rec->seq <= m->replay_hw || was_absent(m, s->path);

	if (!again) {
		pthread_mutex_lock(&m->lock);
		m->conflicts++;
		pthread_mutex_unlock(&m->lock);
		log_warning("mirror %s: %s %s -> %s: not on the mirror "
			    "(changed behind cachefs?)%s",
			    m->name, step_names[s->kind], s->path, s->path2,
			    m->ms->fs->cfg->mirror_conflict == 1
				    ? "; stopping (mirror_conflict=stop)"
				    : "; uploading what the backend has");
		if (m->ms->fs->cfg->mirror_conflict == 1)
			return false;
	}
	send_again(m, s);
	return true;
}

/*
 * The latest record a step was started of, kept on disk too
 * ("mirror.NAME.hw", rewritten in place; the page cache outlives a
 * crash of the daemon), so that after a crash the records that may have
 * been replayed already are known.
 */
static void hw_path(struct mirror *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s/mirror.%s.hw", changes_dir(m->ms->fs->changes),
		 m->name);
}

static uint64_t hw_load(struct mirror *m)
{
	char path[PATH_MAX], buf[32];
	ssize_t n;

	hw_path(m, path, sizeof(path));
	m->hw_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (m->hw_fd < 0) {
		log_warning("mirror %s: cannot open %s: %s", m->name, path,
			    strerror(errno));
		return 0;
	}
	n = pread(m->hw_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return strtoull(buf, NULL, 10);
}

static void hw_note(struct mirror *m, uint64_t seq)
{
	char buf[24];

	if (seq <= m->max_started)
		return;
	m->max_started = seq;
	snprintf(buf, sizeof(buf), "%020" PRIu64 "\n", seq);
	if (m->hw_fd >= 0 && pwrite(m->hw_fd, buf, 21, 0) != 21)
		log_warning("mirror %s: cannot note record %" PRIu64
			    " started",
			    m->name, seq);
}

static void resync_count(struct mirror *m, uint64_t *counter);
static void resync_put(struct mirror *m, const char *path);

/* VERIFY: bytes of the remote's copy, against the backend's. */
static int verify_data(void *arg, uint64_t off, const void *buf, size_t len)
{
	struct step *s = arg;
	const unsigned char *want = buf;
	unsigned char mine[16384];
	size_t done = 0;
	ssize_t n;

	if (off > s->size || len > s->size - off) {
		s->differs = true; /* longer on the remote */
		return 1;
	}
	while (done < len) {
		size_t k = len - done < sizeof(mine) ? len - done
						     : sizeof(mine);

		n = pread(s->fd, mine, k, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || memcmp(mine, want + done, (size_t)n)) {
			s->differs = true;
			return 1;
		}
		done += (size_t)n;
	}
	s->got += len;
	return 0;
}

static void step_done(void *arg, int err, const char *msg)
{
	struct step *s = arg;
	struct mirror *m = s->m;
	bool stale = s->epoch != m->epoch;

	log_debug("mirror %s: done %s %s: %d", m->name, step_names[s->kind],
		  s->path, err);

	flying_remove(m, s);
	if (stale || m->failing) { /* its stream is being torn down */
		step_free(s);
		return;
	}
	if (err == -ENOTSUP) {
		pthread_mutex_lock(&m->lock);
		m->skipped++;
		pthread_mutex_unlock(&m->lock);
		err = 0;
	}
	if (err == -ENOENT && s->kind == STEP_SETATTR) {
		/* not there (an S3 root has no marker yet): made as it is */
		int fd = openat(m->ms->root_fd, s->path[1] ? s->path + 1 : ".",
				O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct step *f = fd >= 0 ? make_step(m, s->path, fd) : NULL;

		if (f)
			enqueue_front(m, s->rec, f);
		err = 0;
	}
	if (s->kind == STEP_VERIFY && (err == 0 || err == -ENOENT)) {
		resync_count(m, &m->resync_checked);
		if (err || s->differs || s->got != s->size) {
			log_info("mirror %s: resync: %s differs", m->name,
				 s->path);
			resync_put(m, s->path);
		}
		err = 0;
	}
	if (err == -EFBIG && (s->kind == STEP_RENAME || s->kind == STEP_LINK)) {
		/* too big for the remote to copy: sent again instead */
		log_notice("mirror %s: %s %s -> %s: %s; sending it again",
			   m->name, step_names[s->kind], s->path, s->path2,
			   msg ? msg : strerror(-err));
		if (s->kind == STEP_RENAME) {
			struct step *rm = step_new(m, s->dir ? STEP_RMDIR
							     : STEP_REMOVE,
						   s->path, NULL);

			if (rm && s->dir)
				step_free(rm); /* the resync removes the rest */
			else if (rm)
				enqueue_front(m, s->rec, rm);
		}
		send_again(m, s);
		err = 0;
	}
	if (err == -ENOENT && (s->kind == STEP_RENAME || s->kind == STEP_LINK)) {
		if (fall_back(m, s)) {
			err = 0;
		} else {
			stream_stop(m, -ENOENT, step_names[s->kind],
				    "the source is not on the mirror "
				    "(mirror_conflict=stop; resync it)",
				    false);
			step_free(s);
			return;
		}
	}
	if (err < 0) {
		char what[PATH_MAX + 16];

		snprintf(what, sizeof(what), "%s %s", step_names[s->kind],
			 s->path);
		stream_fail(m, err, what, msg);
		step_free(s);
		return;
	}
	pthread_mutex_lock(&m->lock);
	m->steps_done++;
	if (s->kind == STEP_PUT) {
		m->files_done++;
		m->bytes_done += s->size;
	}
	pthread_mutex_unlock(&m->lock);
	s->rec->pending--;
	step_free(s);
	pump(m); /* and advance(), once it has seen whether it caught up */
}

static void step_start(struct mirror *m, struct step *s)
{
	const struct mirror_target_ops *o = m->ops;
	struct mirror_target *t;

	/* on the target with the fewest steps in flight */
	s->ti = 0;
	for (unsigned i = 1; i < m->nt; i++)
		if (m->t_inflight[i] < m->t_inflight[s->ti])
			s->ti = i;
	m->t_inflight[s->ti]++;
	t = m->t[s->ti];
	for (unsigned k = 0; k < m->depth; k++)
		if (!m->flying[k]) {
			m->flying[k] = s;
			break;
		}
	m->inflight++;
	s->epoch = m->epoch;
	log_debug("mirror %s: start %s %s%s%s size %llu seq %llu", m->name,
		  step_names[s->kind], s->path, s->path2 ? " -> " : "",
		  s->path2 ? s->path2 : "", (unsigned long long)s->size,
		  (unsigned long long)s->rec->seq);
	hw_note(m, s->rec->seq);
	switch (s->kind) {
	case STEP_PUT:
		o->put(t, s->path, s->fd, s->size, &s->attr, step_done, s);
		break;
	case STEP_MKDIR:
		o->mkdir(t, s->path, &s->attr, step_done, s);
		break;
	case STEP_SYMLINK:
		o->symlink(t, s->path, s->target, step_done, s);
		break;
	case STEP_LINK:
		o->link(t, s->path, s->path2, step_done, s);
		break;
	case STEP_REMOVE:
		o->remove(t, s->path, step_done, s);
		break;
	case STEP_RMDIR:
		o->rmdir(t, s->path, step_done, s);
		break;
	case STEP_RENAME:
		o->rename(t, s->path, s->path2, s->dir, step_done, s);
		break;
	case STEP_SETATTR:
		o->setattr(t, s->path, &s->attr, step_done, s);
		break;
	case STEP_VERIFY:
		o->read(t, s->path, verify_data, step_done, s);
		break;
	}
}

/* Read the next record into steps: 1, 0 at the end, negative errno. */
static int read_record(struct mirror *m)
{
	struct journal_record r;
	int n;

	n = journal_iter_next(m->it, &r);
	if (n <= 0)
		return n == -ERANGE ? -ESPIPE : n; /* trimmed under it */
	if (r.seq != m->next_seq)
		return -ESPIPE; /* damaged records were skipped: a gap */
	m->next_seq = r.seq + 1;
	/* a rename or removal of a directory: its mtimes first */
	if ((r.op == JOURNAL_OP_RENAME || r.op == JOURNAL_OP_RMDIR ||
	     r.op == JOURNAL_OP_EXCHANGE) &&
	    flush_dirty(m) < 0)
		return -ENOMEM;
	n = record_steps(m, &r);
	return n < 0 ? n : 1;
}

static void resync_next(struct mirror *m);

static int resync_request(struct mirror *m, bool content);

/*
 * The first queued step that may start: related to no step in flight,
 * nor to any queued before it (which it must not overtake).  *link is
 * where it is linked from.
 */
static struct step *startable(struct mirror *m, struct step ***link)
{
	struct step **pp = &m->queue, *s, *q;

	for (s = m->queue; s; pp = &s->next, s = s->next) {
		if (blocked(m, s))
			continue;
		for (q = m->queue; q != s && !step_related(q, s); q = q->next)
			;
		if (q == s) {
			*link = pp;
			return s;
		}
	}
	return NULL;
}

/*
 * Start what may start now, reading records (or, resyncing, comparing
 * directories) up to READ_AHEAD steps ahead, so that a step waiting for
 * one on its path does not hold up the ones after it that are free to
 * go.
 */
static void pump(struct mirror *m)
{
	enum mirror_state state = get_state(m);
	struct step *s, **pp;
	unsigned before;
	int n;

	if (state != MS_OK && state != MS_RESYNCING)
		return;
	for (;;) {
		while (m->nqueued < READ_AHEAD && !m->failing) {
			if (state == MS_RESYNCING) {
				before = m->nqueued;
				resync_next(m);
				if (m->nqueued == before)
					break;
				continue;
			}
			if (!m->it)
				break;
			n = read_record(m);
			if (n == 0) {
				/* caught up: the directories, then wait */
				if (!m->queue && !m->inflight)
					absent_clear(m);
				if (!m->ndirty)
					break;
				n = flush_dirty(m);
				if (n == 0)
					continue;
			}
			if (n == -ESPIPE) {
				resync_request(m, false);
				stream_fail(m, n, "journal",
					    "records this mirror had not "
					    "replayed are gone: resyncing");
				return;
			}
			if (n < 0) {
				stream_fail(m, n, "journal", strerror(-n));
				return;
			}
		}
		if (m->failing || m->inflight >= m->depth)
			break;
		s = startable(m, &pp);
		if (!s)
			break;
		*pp = s->next;
		if (m->queue_tail == &s->next)
			m->queue_tail = pp;
		s->next = NULL;
		m->nqueued--;
		step_start(m, s);
	}
	advance(m);
}

/* ---- failure, connection, backoff ---------------------------------- */

static void free_steps(struct step *s)
{
	while (s) {
		struct step *next = s->next;

		step_free(s);
		s = next;
	}
}

/* Drop the stream: the target, what is queued and in flight. */
static void stream_drop(struct mirror *m)
{
	struct dirty *d, *tmp;

	m->epoch++;
	for (unsigned i = 0; i < m->nt; i++) {
		m->ops->destroy(m->t[i]); /* calls no completion */
		m->t[i] = NULL;
		m->t_inflight[i] = 0;
	}
	m->nt = 0;
	m->connecting = 0;
	for (unsigned k = 0; k < m->depth; k++)
		if (m->flying[k]) {
			step_free(m->flying[k]);
			m->flying[k] = NULL;
		}
	m->inflight = 0;
	free_steps(m->queue);
	m->queue = NULL;
	m->queue_tail = &m->queue;
	m->nqueued = 0;
	while (m->recs) {
		struct rec *r = m->recs;

		m->recs = r->next;
		free(r);
	}
	m->recs_tail = &m->recs;
	HASH_ITER(hh, m->dirty, d, tmp) {
		HASH_DEL(m->dirty, d);
		free(d);
	}
	m->ndirty = 0;
	absent_clear(m);
	journal_iter_close(m->it);
	m->it = NULL;
	while (m->frames)
		pop_frame(m);
	free_remote(m);
	m->listing = false;
	m->resync_rec = NULL;
	save_ack(m, true);
}

/* Connect again in seconds. */
static void schedule(struct mirror *m, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	event_add(m->retry, &tv);
}

/*
 * The stream is torn down from the loop, never from inside one of the
 * target's completions (the target must not be destroyed under itself).
 */
static void on_fail(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	stream_drop(m);
	m->failing = false;
	if (get_state(m) != MS_FAILING)
		return; /* stopped or paused: until told otherwise */
	/* a rejected key or host key waits for a human: the longest wait */
	schedule(m, m->fail_err == -EKEYREJECTED ? BACKOFF_MAX_S
						  : m->backoff_s);
	m->backoff_s = m->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S
							: m->backoff_s * 2;
}

/*
 * Stop the stream after a failure (the first one counts): state failing
 * (or stopped, without retry), the error kept for status.
 */
static void stream_stop(struct mirror *m, int err, const char *what,
			const char *msg, bool retry)
{
	const struct timeval now = { 0, 0 };
	bool first;

	if (m->failing)
		return;
	m->failing = true;
	m->fail_err = err;
	pthread_mutex_lock(&m->lock);
	first = !m->failing_since_ns;
	if (first)
		m->failing_since_ns = now_ns(CLOCK_REALTIME);
	snprintf(m->error, sizeof(m->error), "%s: %s", what,
		 msg && *msg ? msg : strerror(-err));
	m->state = retry ? MS_FAILING : MS_STOPPED;
	m->retries++;
	pthread_mutex_unlock(&m->lock);
	if (first || err == -EKEYREJECTED || !retry)
		log_error("mirror %s: %s: %s%s", m->name, what,
			  msg && *msg ? msg : strerror(-err),
			  retry ? "; retrying" : "; stopped");
	event_base_once(m->base, -1, EV_TIMEOUT, on_fail, m, &now);
}

static void stream_fail(struct mirror *m, int err, const char *what,
			const char *msg)
{
	stream_stop(m, err, what, msg, true);
}

static void resync_start(struct mirror *m);

/* Connected: replay from the cursor (or resync). */
static void start_stream(struct mirror *m)
{
	uint64_t from;
	bool content;
	int r;

	m->depth = 0;
	for (unsigned i = 0; i < m->nt; i++)
		m->depth += m->ops->depth(m->t[i]);
	if (m->depth > DEPTH_MAX)
		m->depth = DEPTH_MAX;
	if (!m->depth)
		m->depth = 1;
	pthread_mutex_lock(&m->lock);
	from = m->acked + 1;
	pthread_mutex_unlock(&m->lock);
	if (resync_marked(m, &content)) {
		resync_start(m);
		return;
	}
	r = journal_iter_open(journal_of(m), from, &m->it);
	if (r == -ERANGE) {
		log_warning("mirror %s: the journal no longer holds what it "
			    "had not replayed (from %" PRIu64 "): resyncing",
			    m->name, from);
		resync_start(m);
		return;
	}
	if (r < 0) {
		stream_fail(m, r, "journal", strerror(-r));
		return;
	}
	m->next_seq = from;
	m->backoff_s = BACKOFF_MIN_S;
	if (m->max_started > m->replay_hw)
		m->replay_hw = m->max_started;
	if (get_state(m) != MS_OK)
		log_notice("mirror %s: replaying from record %" PRIu64,
			   m->name, from);
	set_state(m, MS_OK);
	pump(m);
}

/* One target's connect() answered; the stream starts once all did. */
static void connected(void *arg, int err, const char *msg)
{
	struct mirror *m = arg;

	if (m->failing || !m->connecting)
		return; /* the stream is being torn down */
	if (err < 0) {
		stream_fail(m, err, "connect", msg);
		return;
	}
	if (--m->connecting == 0)
		start_stream(m);
}

static void reconnect(struct mirror *m)
{
	char err[256];
	int r;

	unsigned n = 1;

	stream_drop(m);
	set_state(m, get_state(m) == MS_FAILING ? MS_FAILING : MS_CONNECTING);
	for (unsigned i = 0; i < n; i++) {
		r = m->ops->create(m->url, m->base, &m->t[i], err,
				   sizeof(err));
		if (r < 0) {
			stream_fail(m, r, "url", err);
			return;
		}
		m->nt++;
		if (i == 0 && m->ops->sessions)
			n = m->ops->sessions(m->t[0]);
		if (n > SESSIONS_MAX)
			n = SESSIONS_MAX;
	}
	/* connected() goes on once all of them are */
	m->connecting = n;
	for (unsigned i = 0; i < n; i++)
		m->ops->connect(m->t[i], connected, m);
}

/* ---- resync: the whole tree compared ------------------------------- */

/*
 * A resync is marked on disk while it runs, so that one cut short by a
 * crash starts again: the cursor was set to where it began.
 */
static void mark_path(struct mirror *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s/mirror.%s.resync",
		 changes_dir(m->ms->fs->changes), m->name);
}

#define MARK_CONTENT "content\n" /* the mark's text: compare content */

/* Whether a resync is marked; *content whether it compares content. */
static bool resync_marked(struct mirror *m, bool *content)
{
	char path[PATH_MAX], text[sizeof(MARK_CONTENT)] = "";
	ssize_t n;
	int fd;

	*content = false;
	mark_path(m, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	*content = n > 0 && !strcmp(text, MARK_CONTENT);
	close(fd);
	return true;
}

static int resync_mark(struct mirror *m, bool on, bool content)
{
	char path[PATH_MAX];
	ssize_t want = content ? (ssize_t)strlen(MARK_CONTENT) : 0;
	int fd, r = 0;

	mark_path(m, path, sizeof(path));
	if (!on)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if ((want && write(fd, MARK_CONTENT, (size_t)want) != want) ||
	    fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

static bool push_frame(struct mirror *m, int kind, const char *path,
		       bool fresh)
{
	size_t n = strlen(path) + 1;
	struct frame *f = calloc(1, sizeof(*f) + n);

	if (!f)
		return false;
	f->kind = kind;
	f->fresh = fresh;
	memcpy(f->path, path, n);
	f->next = m->frames;
	m->frames = f;
	return true;
}

/* Unlink the top frame, and return it (the caller frees it). */
static struct frame *take_frame(struct mirror *m)
{
	struct frame *f = m->frames;

	m->frames = f->next;
	f->next = NULL;
	return f;
}

static void pop_frame(struct mirror *m)
{
	free(take_frame(m));
}

static void free_remote(struct mirror *m)
{
	struct rentry *e, *tmp;

	HASH_ITER(hh, m->remote, e, tmp) {
		HASH_DEL(m->remote, e);
		free(e);
	}
}

static int on_entry(void *arg, const struct mirror_entry *me)
{
	struct mirror *m = arg;
	size_t n = strlen(me->name) + 1;
	struct rentry *e = calloc(1, sizeof(*e) + n);

	if (!e)
		return -ENOMEM;
	memcpy(e->name, me->name, n);
	e->type = me->type;
	e->size = me->size;
	e->attr = me->attr;
	HASH_ADD_STR(m->remote, name, e);
	return 0;
}

static void resync_enqueue(struct mirror *m, struct step *s)
{
	if (!s)
		return;
	enqueue(m, m->resync_rec, s);
	note_dirty(m, s->path);
}

static void resync_count(struct mirror *m, uint64_t *counter)
{
	pthread_mutex_lock(&m->lock);
	(*counter)++;
	pthread_mutex_unlock(&m->lock);
}

/* Make the remote entry name in dir what the backend has at path. */
static void resync_put(struct mirror *m, const char *path)
{
	int fd = openat(m->ms->root_fd, path + 1,
			O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		resync_enqueue(m, make_step(m, path, fd));
		resync_count(m, &m->resync_uploaded);
	}
}

/* Compare the content of the file at path with the remote's. */
static void resync_verify(struct mirror *m, const char *path)
{
	struct step *s;
	struct stat st;
	int fd = openat(m->ms->root_fd, path + 1,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return; /* gone meanwhile: its record will say */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    !(s = step_new(m, STEP_VERIFY, path, NULL))) {
		close(fd);
		return;
	}
	s->fd = fd;
	s->size = (uint64_t)st.st_size;
	resync_enqueue(m, s);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec; /* SFTP keeps whole seconds */
}

/* One local entry against the remote listing. */
static void resync_entry(struct mirror *m, struct frame *f, int dfd,
			 const char *name)
{
	char path[PATH_MAX];
	struct rentry *e;
	struct stat st;
	char want;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* gone meanwhile: its record will say */
	want = S_ISREG(st.st_mode)   ? 'f'
	       : S_ISDIR(st.st_mode) ? 'd'
	       : S_ISLNK(st.st_mode) ? 'l'
				     : 0;
	if (!want)
		return;
	mirror_path_child(f->path, name, path, sizeof(path));
	HASH_FIND_STR(m->remote, name, e);
	if (e)
		e->seen = true;
	resync_count(m, &m->resync_files);
	if (e && e->type != want) {
		/* another type there: removed first, then made anew */
		if (e->type == 'd') {
			push_frame(m, F_REPLACE, path, false);
			push_frame(m, F_DELETE, path, false);
			return;
		}
		resync_enqueue(m, step_new(m, STEP_REMOVE, path, NULL));
		e = NULL;
	}
	if (want == 'd') {
		if (!e) {
			resync_put(m, path);
		} else if (e->attr.mode != (st.st_mode & 07777) ||
			   !same_time(&e->attr.mtime, &st.st_mtim)) {
			struct step *s = step_new(m, STEP_SETATTR, path,
						  NULL);

			if (s) {
				attr_of(&st, &s->attr);
				s->dir = true;
				resync_enqueue(m, s);
			}
		}
		push_frame(m, F_COMPARE, path, !e);
		return;
	}
	if (e && e->size == (uint64_t)st.st_size &&
	    (want == 'l' || (e->attr.mode == (st.st_mode & 07777) &&
			     same_time(&e->attr.mtime, &st.st_mtim)))) {
		if (want == 'f' && m->resync_content)
			resync_verify(m, path);
		return;
	}
	resync_put(m, path);
}

static void remove_remote(struct mirror *m, struct frame *f,
			  bool unseen_only);

/* Compare directory f->path, its remote listing in m->remote. */
static void resync_compare(struct mirror *m, struct frame *f)
{
	struct dirent *de;
	DIR *d;
	int dfd;

	dfd = openat(m->ms->root_fd, f->path[1] ? f->path + 1 : ".",
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		free_remote(m);
		return; /* gone from the backend meanwhile */
	}
	/* frames pushed by the entries are done before the next sibling */
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			resync_entry(m, f, dirfd(d), de->d_name);
	closedir(d);
	/* what the backend does not have goes */
	remove_remote(m, f, true);
}

/*
 * The entries of the listing in m->remote (those the backend does not
 * have, with unseen_only) go: files now, directories as frames of their
 * own, deleted below first.
 */
static void remove_remote(struct mirror *m, struct frame *f, bool unseen_only)
{
	char path[PATH_MAX];
	struct rentry *e, *tmp;

	HASH_ITER(hh, m->remote, e, tmp) {
		if (unseen_only && e->seen)
			continue;
		mirror_path_child(f->path, e->name, path, sizeof(path));
		if (e->type == 'd') {
			push_frame(m, F_DELETE, path, false);
		} else {
			resync_enqueue(m, step_new(m, STEP_REMOVE, path, NULL));
			resync_count(m, &m->resync_removed);
		}
	}
	free_remote(m);
}

/* A remote tree to delete, listed: its files now, its directories next. */
static void resync_delete(struct mirror *m, struct frame *f)
{
	f->listed = true;
	remove_remote(m, f, false);
}

static void listed(void *arg, int err, const char *msg)
{
	struct mirror *m = arg;
	struct frame *f = m->frames;

	m->listing = false;
	if (err == -ENOENT) {
		err = 0; /* nothing there: everything to upload */
		free_remote(m);
	}
	if (err < 0) {
		char what[PATH_MAX + 16];

		snprintf(what, sizeof(what), "resync: list %s", f->path);
		stream_fail(m, err, what, msg);
		return;
	}
	if (f->kind == F_DELETE) {
		resync_delete(m, f);
	} else {
		take_frame(m); /* its subdirectories go on top */
		resync_compare(m, f);
		free(f);
	}
	pump(m);
}

static void resync_replay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_stream(arg); /* replay from the cursor on */
}

/* The resync is done: replay goes on, from the loop. */
static void resync_done(struct mirror *m)
{
	const struct timeval now = { 0, 0 };
	int r;

	m->resync_rec->pending--; /* its own hold */
	m->resync_rec = NULL;
	advance(m);
	r = resync_mark(m, false, false);
	if (r < 0)
		log_error_errno(r, "mirror %s: resync mark", m->name);
	pthread_mutex_lock(&m->lock);
	m->resyncs++;
	log_notice("mirror %s: resync done: %" PRIu64 " entries compared (%"
		   PRIu64 " by content), %" PRIu64 " uploaded, %" PRIu64
		   " removed",
		   m->name, m->resync_files, m->resync_checked,
		   m->resync_uploaded, m->resync_removed);
	pthread_mutex_unlock(&m->lock);
	event_base_once(m->base, -1, EV_TIMEOUT, resync_replay, m, &now);
}

/* Take the next directory, once the stream has room for its steps. */
static void resync_next(struct mirror *m)
{
	struct frame *f;

	while (!m->listing && (f = m->frames)) {
		if (m->queue)
			return; /* let the queue drain a little first */
		if (f->kind == F_REPLACE) {
			resync_put(m, f->path);
			pop_frame(m);
			continue;
		}
		if (f->kind == F_DELETE && f->listed) {
			resync_enqueue(m, step_new(m, STEP_RMDIR, f->path,
						   NULL));
			pop_frame(m);
			continue;
		}
		if (f->kind == F_COMPARE && f->fresh) {
			take_frame(m);
			resync_compare(m, f);
			free(f);
			continue;
		}
		m->listing = true;
		m->ops->list(m->t[0], f->path, on_entry, listed, m);
		return;
	}
	if (!m->listing && !m->frames && !m->queue && m->resync_rec) {
		/* the last steps: the directories' mtimes */
		if (m->ndirty) {
			flush_dirty(m);
			return;
		}
		if (!m->inflight)
			resync_done(m);
	}
}

/*
 * A resync from now on (also after a restart): marked on disk, and the
 * cursor moved to the newest record, where replay goes on after it.
 */
static int resync_request(struct mirror *m, bool content)
{
	struct journal_stats js;
	int r = resync_mark(m, true, content);

	if (r < 0)
		return log_error_errno(r, "mirror %s: resync mark", m->name);
	journal_get_stats(journal_of(m), &js);
	pthread_mutex_lock(&m->lock);
	m->acked = js.newest_seq;
	pthread_mutex_unlock(&m->lock);
	save_ack(m, true);
	return 0;
}

static void resync_start(struct mirror *m)
{
	struct journal_stats st;
	bool content, again = resync_marked(m, &content);
	int r;

	journal_get_stats(journal_of(m), &st);
	/* replay goes on after what the journal holds now */
	if (!again) {
		pthread_mutex_lock(&m->lock);
		m->acked = st.newest_seq;
		pthread_mutex_unlock(&m->lock);
		r = resync_mark(m, true, false);
		if (r < 0) {
			stream_fail(m, r, "resync", "cannot mark it on disk");
			return;
		}
		save_ack(m, true);
	}
	pthread_mutex_lock(&m->lock);
	m->resync_files = m->resync_uploaded = m->resync_removed = 0;
	m->resync_checked = 0;
	m->state = MS_RESYNCING;
	m->req_resync = false;
	pthread_mutex_unlock(&m->lock);
	/* a target that cannot read back compares by size and mtime */
	m->resync_content = content && m->ops->read;
	log_notice("mirror %s: a resync of the whole tree%s%s", m->name,
		   m->resync_content ? ", comparing content" : "",
		   again ? " (new, after a gap, or cut short before)" : "");
	m->next_seq = m->acked_saved + 1;
	m->resync_rec = rec_new(m, m->acked_saved);
	if (!m->resync_rec || !push_frame(m, F_COMPARE, "/", false)) {
		stream_fail(m, -ENOMEM, "resync", NULL);
		return;
	}
	m->resync_rec->pending++; /* held until the resync is done */
	pump(m);
}

/* ---- the loop: requests, timer, alerts ----------------------------- */

/*
 * mirror_alert runs once a failure has lasted mirror_alert_after, with
 * the mirror's name and error in its environment.  posix_spawn, not
 * fork: the daemon has threads.
 */
static void maybe_alert(struct mirror *m)
{
	const struct config *cfg = m->ms->fs->cfg;
	char error[sizeof(m->error)], *name_env = NULL, *error_env = NULL;
	char *argv[] = { "sh", "-c", cfg->mirror_alert, NULL };
	char **envp;
	uint64_t since;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&m->lock);
	since = m->failing_since_ns;
	snprintf(error, sizeof(error), "%s", m->error);
	pthread_mutex_unlock(&m->lock);
	if (!since) {
		m->alerted = false;
		return;
	}
	if (m->alerted || !cfg->mirror_alert || m->alert_pid > 0 ||
	    (double)(now_ns(CLOCK_REALTIME) - since) / 1e9 <
		    cfg->mirror_alert_after)
		return;
	m->alerted = true;
	log_warning("mirror %s: failing for over %.0f s: running mirror_alert",
		    m->name, cfg->mirror_alert_after);
	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp || asprintf(&name_env, "CACHEFS_MIRROR=%s", m->name) < 0 ||
	    asprintf(&error_env, "CACHEFS_MIRROR_ERROR=%s", error) < 0) {
		log_error("mirror %s: mirror_alert: out of memory", m->name);
		goto out;
	}
	memcpy(envp, environ, n * sizeof(*envp));
	envp[n] = name_env;
	envp[n + 1] = error_env;
	r = posix_spawn(&m->alert_pid, "/bin/sh", NULL, NULL, argv, envp);
	if (r) {
		m->alert_pid = 0;
		log_error_errno(-r, "mirror %s: cannot run mirror_alert",
				m->name);
	}
out:
	free(name_env);
	free(error_env);
	free(envp);
}

/* The alert command, once it has finished. */
static void reap(struct mirror *m)
{
	if (m->alert_pid > 0 && waitpid(m->alert_pid, NULL, WNOHANG) != 0)
		m->alert_pid = 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	if (get_state(m) == MS_FAILING)
		reconnect(m);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	reap(m);
	maybe_alert(m);
	pthread_mutex_lock(&m->lock);
	m->rate[m->rate_next].ns = now_ns(CLOCK_MONOTONIC);
	m->rate[m->rate_next].files = m->files_done;
	m->rate[m->rate_next].bytes = m->bytes_done;
	m->rate_next = (m->rate_next + 1) % RATE_SAMPLES;
	pthread_mutex_unlock(&m->lock);
	if (get_state(m) != MS_OK)
		return;
	/* directories' mtimes while the stream is not caught up */
	if (m->ndirty &&
	    (m->ndirty >= DIRTY_FLUSH ||
	     now_ns(CLOCK_MONOTONIC) - m->dirty_since_ns > 1000000000u))
		flush_dirty(m);
	pump(m);
	save_ack(m, true);
}

/* Requests from the control thread. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;
	bool retry, pause, resume, resync, content, stop;
	enum mirror_state st;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&m->lock);
	retry = m->req_retry;
	pause = m->req_pause;
	resume = m->req_resume;
	resync = m->req_resync;
	content = m->req_content;
	m->req_content = false;
	stop = m->req_stop;
	m->req_retry = m->req_pause = m->req_resume = false;
	st = m->state;
	pthread_mutex_unlock(&m->lock);
	if (stop) {
		stream_drop(m);
		event_base_loopbreak(m->base);
		return;
	}
	if (pause) {
		stream_drop(m);
		set_state(m, MS_PAUSED);
		log_notice("mirror %s: paused", m->name);
		return;
	}
	if (resync)
		resync_request(m, content);
	if ((resume && st == MS_PAUSED) || retry || resync ||
	    (resume && st == MS_STOPPED)) {
		if (resume)
			log_notice("mirror %s: resumed", m->name);
		m->backoff_s = BACKOFF_MIN_S;
		set_state(m, MS_CONNECTING);
		reconnect(m);
	}
}

static void *mirror_thread(void *arg)
{
	struct mirror *m = arg;

	const struct timeval second = { 1, 0 };

	event_add(m->timer, &second);
	reconnect(m);
	event_base_dispatch(m->base);
	stream_drop(m);
	return NULL;
}

/* ---- the set of mirrors -------------------------------------------- */

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= NAME_MAX_LEN &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_-") == n;
}

static struct mirror *find(struct mirrors *ms, const char *name)
{
	for (unsigned k = 0; k < ms->n; k++)
		if (!strcmp(ms->m[k]->name, name))
			return ms->m[k];
	return NULL;
}

static void kick(void *arg);

static void mirror_free(struct mirror *m)
{
	if (!m)
		return;
	if (m->listening)
		changes_unlisten(m->ms->fs->changes, kick, m);
	if (m->running) {
		pthread_mutex_lock(&m->lock);
		m->req_stop = true;
		pthread_mutex_unlock(&m->lock);
		event_active(m->wake, 0, 0);
		pthread_join(m->thread, NULL);
	}
	if (m->wake)
		event_free(m->wake);
	if (m->timer)
		event_free(m->timer);
	if (m->retry)
		event_free(m->retry);
	if (m->kick)
		event_free(m->kick);
	if (m->base)
		event_base_free(m->base);
	if (m->hw_fd >= 0)
		close(m->hw_fd);
	pthread_mutex_destroy(&m->lock);
	free(m->url);
	free(m);
}

/* A mirror, checked but not started: -EINVAL with err for a bad one. */
static int mirror_make(struct mirrors *ms, const char *name, const char *url,
		       struct mirror **out, char *err, size_t errlen)
{
	struct event_base *probe_base;
	struct mirror_target *probe;
	struct mirror *m;
	uint64_t acked;
	int r;

	if (!name_ok(name)) {
		snprintf(err, errlen,
			 "bad mirror name '%s': 1 to %d of A-Z a-z 0-9 _ -",
			 name, NAME_MAX_LEN);
		return -EINVAL;
	}
	if (find(ms, name)) {
		snprintf(err, errlen, "there is a mirror %s already", name);
		return -EEXIST;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->hw_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	m->ms = ms;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->cursor, sizeof(m->cursor), "mirror.%s", name);
	m->url = strdup(url);
	m->ops = mirror_target_ops_for(url);
	m->queue_tail = &m->queue;
	m->recs_tail = &m->recs;
	m->backoff_s = BACKOFF_MIN_S;
	m->state = MS_CONNECTING;
	if (!m->url) {
		mirror_free(m);
		return -ENOMEM;
	}
	if (!m->ops) {
		snprintf(err, errlen,
			 "mirror %s: '%s' is not an sftp:// or s3:// URL",
			 name, url);
		mirror_free(m);
		return -EINVAL;
	}
	/* the URL is checked now, so that a mistake fails the mount */
	probe_base = event_base_new();
	r = probe_base ? m->ops->create(url, probe_base, &probe, err, errlen)
		       : -ENOMEM;
	if (r == 0)
		m->ops->destroy(probe);
	if (probe_base)
		event_base_free(probe_base);
	if (r < 0) {
		mirror_free(m);
		return r;
	}
	/* its place in the journal: where it left off, or from now on */
	r = journal_cursor_get(journal_of(m), m->cursor, &acked);
	if (r == -ENOENT) {
		struct journal_stats js;

		journal_get_stats(journal_of(m), &js);
		acked = js.newest_seq;
		r = journal_cursor_set(journal_of(m), m->cursor, acked);
		/* a new mirror starts with the whole tree */
		if (r == 0)
			r = resync_mark(m, true, false);
	}
	if (r < 0) {
		snprintf(err, errlen, "mirror %s: its journal cursor: %s", name,
			 strerror(-r));
		mirror_free(m);
		return r;
	}
	m->acked = m->acked_saved = acked;
	m->max_started = m->replay_hw = hw_load(m);
	*out = m;
	return 0;
}

/* New records: a mirror that caught up replays them at once. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	(void)fd;
	(void)what;
	__atomic_store_n(&m->kicked, false, __ATOMIC_RELAXED);
	pump(m);
}

/* From the appending threads (changes_listen()): once until it runs. */
static void kick(void *arg)
{
	struct mirror *m = arg;

	if (!__atomic_exchange_n(&m->kicked, true, __ATOMIC_RELAXED))
		event_active(m->kick, 0, 0);
}

/* Its loop and thread: after daemonizing, with libevent's locking on. */
static int mirror_run(struct mirror *m)
{
	int r;

	m->base = event_base_new();
	m->wake = m->base ? event_new(m->base, -1, 0, on_wake, m) : NULL;
	m->timer = m->base ? event_new(m->base, -1, EV_PERSIST, on_timer, m)
			   : NULL;
	m->retry = m->base ? evtimer_new(m->base, on_retry, m) : NULL;
	m->kick = m->base ? event_new(m->base, -1, 0, on_kick, m) : NULL;
	if (!m->wake || !m->timer || !m->retry || !m->kick)
		return -ENOMEM;
	r = pthread_create(&m->thread, NULL, mirror_thread, m);
	if (r)
		return -r;
	m->running = true;
	r = changes_listen(m->ms->fs->changes, kick, m);
	if (r < 0)
		log_warning("mirror %s: replays new records each second only",
			    m->name);
	m->listening = r == 0;
	return 0;
}

/* The mirrors added at run time, one "NAME URL" line each. */
static int save_runtime(struct mirrors *ms)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "%s/" MIRRORS_FILE,
		 changes_dir(ms->fs->changes));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (unsigned k = 0; k < ms->n; k++)
		if (ms->m[k]->runtime)
			fprintf(f, "%s %s\n", ms->m[k]->name, ms->m[k]->url);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		r = -errno;
	if (fclose(f) != 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

static int add(struct mirrors *ms, const char *name, const char *url,
	       bool runtime, char *err, size_t errlen)
{
	struct mirror *m;
	int r;

	if (ms->n == MIRRORS_MAX) {
		snprintf(err, errlen, "at most %d mirrors", MIRRORS_MAX);
		return -ENOSPC;
	}
	r = mirror_make(ms, name, url, &m, err, errlen);
	if (r < 0)
		return r;
	m->runtime = runtime;
	ms->m[ms->n++] = m;
	return 0;
}

/* -o mirror= lines "NAME=URL", and the run-time ones from state_dir. */
static int load(struct mirrors *ms)
{
	char err[512], path[PATH_MAX], *line = NULL, *list, *save, *def;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int r = 0;

	list = ms->fs->cfg->mirror ? strdup(ms->fs->cfg->mirror) : NULL;
	for (def = list ? strtok_r(list, "\n", &save) : NULL; def && !r;
	     def = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(def, '=');

		if (!eq) {
			log_error("mirror=%s: not NAME=URL", def);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		r = add(ms, def, eq + 1, false, err, sizeof(err));
		if (r < 0)
			log_error("%s", err);
	}
	free(list);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/" MIRRORS_FILE,
		 changes_dir(ms->fs->changes));
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : log_error_errno(-errno, "%s", path);
	while (!r && (n = getline(&line, &cap, f)) > 0) {
		char *sp = strchr(line, ' ');

		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (!sp) {
			log_error("%s: bad line '%s'", path, line);
			continue;
		}
		*sp = '\0';
		if (find(ms, line))
			continue; /* given with -o too */
		r = add(ms, line, sp + 1, true, err, sizeof(err));
		if (r < 0)
			log_error("%s (from %s)", err, path);
	}
	free(line);
	fclose(f);
	return r;
}

int mirrors_new(struct cfs *fs, struct mirrors **out)
{
	struct mirrors *ms;
	int r;

	*out = NULL;
	if (!fs->cfg->mirror && !fs->changes)
		return 0;
	if (fs->cfg->mirror && !fs->changes) {
		log_error("mirrors replay the journal: they need journal=on");
		return -EINVAL;
	}
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return log_error_errno(-ENOMEM, "mirrors");
	pthread_mutex_init(&ms->lock, NULL);
	ms->fs = fs;
	/* a real descriptor: open_by_handle_at() takes no O_PATH one */
	r = inode_fd_get(fs->itab, inode_root(fs->itab));
	ms->root_fd = r < 0 ? r
			    : openat(r, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r >= 0)
		inode_fd_put(fs->itab, inode_root(fs->itab));
	if (ms->root_fd < 0) {
		mirrors_free(ms);
		return log_error_errno(-EBADF, "mirrors: the backend root");
	}
	r = load(ms);
	if (r < 0) {
		mirrors_free(ms);
		return r;
	}
	*out = ms;
	return 0;
}

int mirrors_start(struct mirrors *ms)
{
	int r;

	if (!ms)
		return 0;
	if (evthread_use_pthreads() < 0)
		return log_error_errno(-ENOMEM, "libevent threads");
	pthread_mutex_lock(&ms->lock);
	ms->started = true;
	for (unsigned k = 0; k < ms->n; k++) {
		r = mirror_run(ms->m[k]);
		if (r < 0) {
			pthread_mutex_unlock(&ms->lock);
			return log_error_errno(r, "mirror %s: thread",
					       ms->m[k]->name);
		}
		log_info("mirror %s: %s", ms->m[k]->name, ms->m[k]->url);
	}
	pthread_mutex_unlock(&ms->lock);
	return 0;
}

void mirrors_free(struct mirrors *ms)
{
	if (!ms)
		return;
	for (unsigned k = 0; k < ms->n; k++)
		mirror_free(ms->m[k]);
	if (ms->root_fd >= 0)
		close(ms->root_fd);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

int mirrors_add(struct mirrors *ms, const char *name, const char *url,
		char *err, size_t errlen)
{
	struct mirror *m;
	int r;

	if (!ms) {
		snprintf(err, errlen, "mirrors need the journal (journal=on)");
		return -ENOTSUP;
	}
	pthread_mutex_lock(&ms->lock);
	r = add(ms, name, url, true, err, errlen);
	if (r == 0) {
		m = ms->m[ms->n - 1];
		r = save_runtime(ms);
		if (r < 0)
			snprintf(err, errlen, "cannot save the mirror list: %s",
				 strerror(-r));
		else if (ms->started && (r = mirror_run(m)) < 0)
			snprintf(err, errlen, "cannot start its thread");
		if (r < 0) {
			ms->n--;
			journal_cursor_remove(journal_of(m), m->cursor);
			resync_mark(m, false, false);
			mirror_free(m);
		} else {
			log_notice("mirror %s added: %s", name, url);
		}
	}
	pthread_mutex_unlock(&ms->lock);
	return r;
}

int mirrors_remove(struct mirrors *ms, const char *name, char *err,
		   size_t errlen)
{
	char cursor[sizeof(((struct mirror *)0)->cursor)], hw[PATH_MAX];
	struct mirror *m;
	bool runtime;
	unsigned k;
	int r;

	if (!ms) {
		snprintf(err, errlen, "no mirror '%s'", name);
		return -ENOENT;
	}
	pthread_mutex_lock(&ms->lock);
	m = find(ms, name);
	if (!m) {
		pthread_mutex_unlock(&ms->lock);
		snprintf(err, errlen, "no mirror '%s'", name);
		return -ENOENT;
	}
	for (k = 0; ms->m[k] != m; k++)
		;
	ms->m[k] = ms->m[--ms->n];
	runtime = m->runtime;
	snprintf(cursor, sizeof(cursor), "%s", m->cursor);
	resync_mark(m, false, false);
	hw_path(m, hw, sizeof(hw));
	mirror_free(m); /* stops it */
	unlink(hw);
	r = journal_cursor_remove(changes_journal(ms->fs->changes), cursor);
	if (runtime)
		save_runtime(ms);
	pthread_mutex_unlock(&ms->lock);
	if (r < 0 && r != -ENOENT)
		log_error_errno(r, "mirror %s: removing its cursor", name);
	log_notice("mirror %s removed%s", name,
		   runtime ? "" : " until the next mount (it is in -o mirror=)");
	/* what only it held may go now */
	changes_make_room(ms->fs->changes);
	return 0;
}

int mirrors_act(struct mirrors *ms, const char *name, enum mirror_action a,
		char *err, size_t errlen)
{
	struct mirror *m;

	pthread_mutex_lock(&ms->lock);
	m = find(ms, name);
	if (!m) {
		pthread_mutex_unlock(&ms->lock);
		snprintf(err, errlen, "no mirror '%s'", name);
		return -ENOENT;
	}
	pthread_mutex_lock(&m->lock);
	switch (a) {
	case MIRROR_RETRY:
		m->req_retry = true;
		break;
	case MIRROR_PAUSE:
		m->req_pause = true;
		break;
	case MIRROR_RESUME:
		m->req_resume = true;
		break;
	case MIRROR_RESYNC:
	case MIRROR_RESYNC_CONTENT:
		m->req_resync = true;
		m->req_content = a == MIRROR_RESYNC_CONTENT;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	if (m->running)
		event_active(m->wake, 0, 0);
	pthread_mutex_unlock(&ms->lock);
	return 0;
}

/* The status of one mirror. */
/* Files and bytes a second over the last samples (caller holds m->lock). */
static void do_rates(struct mirror *m, double *files, double *bytes)
{
	unsigned old = m->rate_next; /* the oldest sample */
	uint64_t dt = m->rate[old].ns ? now_ns(CLOCK_MONOTONIC) - m->rate[old].ns
				      : 0;

	*files = *bytes = 0;
	if (!dt)
		return;
	*files = (double)(m->files_done - m->rate[old].files) * 1e9 /
		 (double)dt;
	*bytes = (double)(m->bytes_done - m->rate[old].bytes) * 1e9 /
		 (double)dt;
}

static json_t *mirror_json(struct mirror *m, const struct journal_stats *js)
{
	struct journal_lag jl = { 0, 0 };
	uint64_t acked, lag;
	double files_s, bytes_s;
	json_t *j;

	pthread_mutex_lock(&m->lock);
	acked = m->acked;
	pthread_mutex_unlock(&m->lock);
	lag = js->newest_seq > acked ? js->newest_seq - acked : 0;
	if (lag) /* reads the journal: outside the lock */
		journal_lag(journal_of(m), acked, &jl);
	pthread_mutex_lock(&m->lock);
	do_rates(m, &files_s, &bytes_s);
	j = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:f, s:I, s:I, s:I,"
		      " s:f, s:f, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}",
		      "name", m->name, "url", m->url, "state",
		      m->state == MS_OK && lag ? "catching up"
					       : state_names[m->state],
		      "error", m->error[0] ? m->error : NULL, "acked",
		      (json_int_t)acked, "lag_records", (json_int_t)lag,
		      "lag_bytes", (json_int_t)jl.bytes, "lag_seconds",
		      jl.seconds, "failing_since",
		      (json_int_t)(m->failing_since_ns / 1000000000u), "files",
		      (json_int_t)m->files_done, "bytes",
		      (json_int_t)m->bytes_done, "files_per_second", files_s,
		      "bytes_per_second", bytes_s, "steps",
		      (json_int_t)m->steps_done, "retries",
		      (json_int_t)m->retries, "conflicts",
		      (json_int_t)m->conflicts, "skipped",
		      (json_int_t)m->skipped, "resync", "done",
		      (json_int_t)m->resyncs, "compared",
		      (json_int_t)m->resync_files, "uploaded",
		      (json_int_t)m->resync_uploaded, "removed",
		      (json_int_t)m->resync_removed, "content_compared",
		      (json_int_t)m->resync_checked);
	pthread_mutex_unlock(&m->lock);
	return j;
}

json_t *mirrors_status(struct mirrors *ms, const char *name, int *r)
{
	struct journal_stats js;
	json_t *a = json_array();

	*r = 0;
	if (!ms)
		return a;
	journal_get_stats(changes_journal(ms->fs->changes), &js);
	pthread_mutex_lock(&ms->lock);
	for (unsigned k = 0; a && k < ms->n; k++)
		if (!name || !strcmp(name, ms->m[k]->name))
			json_array_append_new(a, mirror_json(ms->m[k], &js));
	pthread_mutex_unlock(&ms->lock);
	if (a && name && !json_array_size(a)) {
		json_decref(a);
		*r = -ENOENT;
		return NULL;
	}
	return a;
}

bool mirrors_failing(struct mirrors *ms)
{
	bool any = false;

	if (!ms)
		return false;
	pthread_mutex_lock(&ms->lock);
	for (unsigned k = 0; k < ms->n; k++) {
		pthread_mutex_lock(&ms->m[k]->lock);
		any |= ms->m[k]->state == MS_FAILING ||
		       ms->m[k]->state == MS_STOPPED;
		pthread_mutex_unlock(&ms->m[k]->lock);
	}
	pthread_mutex_unlock(&ms->lock);
	return any;
}

const struct mirror_target_ops *mirror_target_ops_for(const char *url)
{
	if (!strncmp(url, "sftp://", 7))
		return &mirror_sftp_ops;
	if (!strncmp(url, "s3://", 5))
		return &mirror_s3_ops;
	return NULL;
}
