// SPDX-License-Identifier: MIT
/*
 * The look-ahead threads (see lookahead.h).
 */
#include "lookahead.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "inode.h"
#include "log.h"
#include "stats.h"

/*
 * Directories waiting, newest on top.  One the application left this
 * many directories ago is not worth the backend's time any more.
 */
#define LOOKAHEAD_DEPTH 32
/*
 * Listings at once.  Each waits for a worker's READDIRPLUS, most of it
 * for the backend: a first pass over 1,000 directories (README) took
 * 0.55 s with one, 0.48 s with two, 0.39 s with four and 0.42 s with
 * eight, on 2 cores.
 */
#define LOOKAHEAD_THREADS 4
/*
 * One getdents64 call: the kernel asks one READDIRPLUS for as many bytes
 * as it may return (at least a page).  Further calls would come as plain
 * READDIRs, which bring no entries, unless the application looked a name
 * up there meanwhile.  So the buffer is sized for the entries wanted: the
 * attributes and a name of up to 40 bytes each, up to 64 KiB.
 */
#define LOOKAHEAD_BUF (64 * 1024)
#define PLUS_ENTRY FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + 40)

struct lookahead {
	struct cfs *fs;
	pthread_t thread[LOOKAHEAD_THREADS];
	int threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inode *stack[LOOKAHEAD_DEPTH]; /* protected by lock */
	unsigned n;			      /* protected by lock */
	bool stop;			      /* protected by lock */
	bool warned;			      /* atomic */
};

/* Whether the kernel keeps entries at all now (a run-time setting). */
static bool kernel_caches(struct cfs *fs)
{
	double t;

	__atomic_load(&fs->cfg->entry_timeout, &t, __ATOMIC_RELAXED);
	return __atomic_load_n(&fs->cfg->cache, __ATOMIC_RELAXED) && t > 0;
}

void lookahead_note(struct lookahead *la, struct inode *dir)
{
	struct inode *dropped = NULL;
	int r;

	if (!la ||
	    !__atomic_load_n(&la->fs->cfg->lookahead, __ATOMIC_RELAXED) ||
	    !kernel_caches(la->fs))
		return;
	r = inode_lookahead_claim(la->fs->itab, dir);
	if (r == -ENOSPC)
		stats_inc(lookahead_full);
	if (r <= 0)
		return;
	pthread_mutex_lock(&la->lock);
	if (la->n == LOOKAHEAD_DEPTH) {
		dropped = la->stack[0];
		memmove(la->stack, la->stack + 1,
			(LOOKAHEAD_DEPTH - 1) * sizeof(*la->stack));
		la->n--;
	}
	la->stack[la->n++] = dir;
	pthread_cond_signal(&la->cond);
	pthread_mutex_unlock(&la->lock);
	if (dropped) {
		stats_inc(lookahead_dropped);
		inode_lookahead_release(la->fs->itab, dropped, true);
	}
}

/* Entries (but . and ..) in n bytes of getdents64 output. */
static unsigned count_entries(const char *buf, long n)
{
	unsigned entries = 0;

	for (long off = 0; off < n;) {
		const struct dirent64 *e = (const void *)(buf + off);

		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
		off += e->d_reclen;
	}
	return entries;
}

/*
 * Open dir through the mount: its path as the backend has it now, under
 * the mount point.  Anything else found there (the mount covered by
 * another, the directory renamed meanwhile) is not read.
 */
static int open_through_mount(struct cfs *fs, struct inode *dir)
{
	char *rel = fs_node_path(fs, dir), *path;
	uint64_t dev, ino;
	struct statfs sfs;
	struct stat st;
	int fd;

	if (!rel)
		return -ENOENT;
	if (asprintf(&path, "%s%s",
		     strcmp(fs->mountpoint, "/") ? fs->mountpoint : "",
		     rel) < 0) {
		free(rel);
		return -ENOMEM;
	}
	free(rel);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	inode_identity(dir, &dev, &ino, NULL, 0);
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC ||
	    fstat(fd, &st) < 0 || st.st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Read about the first max entries of dir through the mount. */
static void look_ahead(struct lookahead *la, struct inode *dir, char *buf)
{
	unsigned max =
		__atomic_load_n(&la->fs->cfg->lookahead, __ATOMIC_RELAXED);
	size_t size;
	long n;
	int fd;

	if (!max || !kernel_caches(la->fs))
		return;
	fd = open_through_mount(la->fs, dir);
	if (fd < 0) {
		stats_inc(lookahead_failed);
		if (fd != -ENOENT &&
		    !__atomic_exchange_n(&la->warned, true, __ATOMIC_RELAXED))
			log_warning("look-ahead: cannot read a directory "
				    "through %s (%s); counted in "
				    "lookahead_failed from now on",
				    la->fs->mountpoint, strerror(-fd));
		return;
	}
	size = max < LOOKAHEAD_BUF / PLUS_ENTRY ? max * PLUS_ENTRY
						: LOOKAHEAD_BUF;
	n = getdents64(fd, buf, size);
	close(fd);
	if (n < 0) {
		stats_inc(lookahead_failed);
		return;
	}
	stats_inc(lookahead_dirs);
	stats_add(STAT_lookahead_entries, count_entries(buf, n));
}

static void *run(void *arg)
{
	struct lookahead *la = arg;
	struct inode *dir;
	char buf[LOOKAHEAD_BUF];

	pthread_mutex_lock(&la->lock);
	for (;;) {
		while (!la->stop && !la->n)
			pthread_cond_wait(&la->cond, &la->lock);
		if (la->stop)
			break;
		dir = la->stack[--la->n];
		pthread_mutex_unlock(&la->lock);
		look_ahead(la, dir, buf);
		inode_lookahead_release(la->fs->itab, dir, false);
		pthread_mutex_lock(&la->lock);
	}
	while (la->n) { /* never read */
		dir = la->stack[--la->n];
		pthread_mutex_unlock(&la->lock);
		inode_lookahead_release(la->fs->itab, dir, true);
		pthread_mutex_lock(&la->lock);
	}
	pthread_mutex_unlock(&la->lock);
	return NULL;
}

int lookahead_start(struct cfs *fs, struct lookahead **out)
{
	struct lookahead *la = calloc(1, sizeof(*la));
	int e;

	if (!la)
		return -ENOMEM;
	la->fs = fs;
	pthread_mutex_init(&la->lock, NULL);
	pthread_cond_init(&la->cond, NULL);
	for (; la->threads < LOOKAHEAD_THREADS; la->threads++) {
		e = pthread_create(&la->thread[la->threads], NULL, run, la);
		if (e) {
			lookahead_stop(la);
			return -e;
		}
	}
	*out = la;
	return 0;
}

void lookahead_stop(struct lookahead *la)
{
	if (!la)
		return;
	pthread_mutex_lock(&la->lock);
	la->stop = true;
	pthread_cond_broadcast(&la->cond);
	pthread_mutex_unlock(&la->lock);
	for (int k = 0; k < la->threads; k++)
		pthread_join(la->thread[k], NULL);
	pthread_cond_destroy(&la->cond);
	pthread_mutex_destroy(&la->lock);
	free(la);
}
