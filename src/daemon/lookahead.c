// SPDX-License-Identifier: MIT
/*
 * The look-ahead (see lookahead.h).
 *
 * The listings are made by reader processes, not by threads of the
 * daemon.  A thread of a FUSE daemon waiting for its own mount cannot
 * be killed: once a worker has taken the request, the kernel waits for
 * the answer uninterruptibly, and the connection ends only when the last
 * thread has let go of /dev/fuse.  A daemon killed (SIGKILL, the OOM
 * killer) while a listing of its own was under way would hang for good,
 * with its mount.  A reader is another process holding no descriptor of
 * the daemon's: the daemon's death ends the connection, which ends the
 * reader's listing, and the reader dies with it (PR_SET_PDEATHSIG).
 *
 * A reader is this program executed again, so that ps(1) and pgrep(1)
 * tell it from the daemon ("cachefs-ahead --lookahead-reader PID") and
 * it shares no memory with it.  Each daemon thread owns one reader and
 * sends it one request at a time over a socket pair: the directory's
 * path through the mount, its inode number, and the getdents64 size; the
 * answer is the number of entries or a negative errno.
 */
#include "lookahead.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
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

/* A request to a reader. */
struct listing_req {
	uint64_t ino;  /* what the directory must be on the mount */
	uint32_t size; /* for getdents64 */
	char path[PATH_MAX];
};

struct reader {
	struct lookahead *la;
	pid_t pid; /* 0: none */
	int sock;  /* -1: none */
	pthread_t thread;
	bool started;
};

struct lookahead {
	struct cfs *fs;
	struct reader readers[LOOKAHEAD_THREADS];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inode *stack[LOOKAHEAD_DEPTH]; /* protected by lock */
	unsigned n;			      /* protected by lock */
	bool stop;			      /* protected by lock */
	bool warned;			      /* atomic */
};

void lookahead_note(struct lookahead *la, struct inode *dir)
{
	struct inode *dropped = NULL;
	int r;

	if (!la ||
	    !__atomic_load_n(&la->fs->cfg->lookahead, __ATOMIC_RELAXED) ||
	    !fs_entries_cached(la->fs))
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
static long count_entries(const char *buf, long n)
{
	long entries = 0;

	for (long off = 0; off < n;) {
		const struct dirent64 *e = (const void *)(buf + off);

		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
		off += e->d_reclen;
	}
	return entries;
}

/*
 * In a reader: list req's directory; the entries read, or a negative
 * errno.  Anything but the directory asked for (the mount covered by
 * another, the directory renamed meanwhile) is not read.
 */
static long list_one(const struct listing_req *req, char *buf)
{
	struct statfs sfs;
	struct stat st;
	long n;
	int fd;

	fd = open(req->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC ||
	    fstat(fd, &st) < 0 || st.st_ino != req->ino) {
		close(fd);
		return -ESTALE;
	}
	n = syscall(SYS_getdents64, fd, buf, req->size);
	n = n < 0 ? -errno : count_entries(buf, n);
	close(fd);
	return n;
}

/* A reader: answer requests on descriptor 3 until the daemon is gone. */
_Noreturn void lookahead_reader_main(const char *daemon_pid)
{
	static struct listing_req req;
	static char buf[LOOKAHEAD_BUF];
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;
	ssize_t got;
	long r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (pid_t)strtol(daemon_pid, NULL, 10))
		_exit(0); /* the daemon is gone already */
	prctl(PR_SET_NAME, "cachefs-ahead"); /* not "exe" */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;) {
		got = recv(3, &req, sizeof(req), 0);
		if (got <= 0)
			_exit(0);
		if ((size_t)got <= offsetof(struct listing_req, path) ||
		    req.size > sizeof(buf) ||
		    memchr(req.path, '\0',
			   (size_t)got - offsetof(struct listing_req, path)) ==
			    NULL)
			r = -EINVAL;
		else
			r = list_one(&req, buf);
		if (send(3, &r, sizeof(r), 0) != sizeof(r))
			_exit(0);
	}
}

/*
 * Start a reader on a new socket pair: this program again, with only its
 * socket (as 3) and the standard descriptors, not /dev/fuse, whose last
 * holder ends the connection.  Between fork and exec, only
 * async-signal-safe calls.
 */
static int reader_start(struct reader *rd)
{
	char pid[24],
		*argv[] = { "cachefs-ahead", LOOKAHEAD_READER_ARG, pid, NULL };
	int sv[2];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	rd->pid = fork();
	if (rd->pid < 0) {
		rd->pid = 0;
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (rd->pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 &&
		    dup2(sv[1], 3) == 3 &&
		    syscall(SYS_close_range, 4, ~0U, 0) == 0)
			execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(sv[1]);
	rd->sock = sv[0];
	return 0;
}

/* Ask rd's reader for a listing; the entries read, or a negative errno. */
static long ask(struct reader *rd, const struct listing_req *req)
{
	size_t len = offsetof(struct listing_req, path) + strlen(req->path) + 1;
	long r;

	if (send(rd->sock, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	if (recv(rd->sock, &r, sizeof(r), 0) != sizeof(r))
		return -EPIPE;
	return r;
}

/* Read about the first max entries of dir through the mount. */
static void look_ahead(struct lookahead *la, struct reader *rd,
		       struct inode *dir)
{
	unsigned max =
		__atomic_load_n(&la->fs->cfg->lookahead, __ATOMIC_RELAXED);
	struct listing_req req;
	uint64_t dev;
	char *rel;
	long r;
	int n;

	if (!max || !fs_entries_cached(la->fs))
		return;
	rel = fs_node_path(la->fs, dir);
	if (!rel) {
		stats_inc(lookahead_failed);
		return;
	}
	n = snprintf(req.path, sizeof(req.path), "%s%s",
		     strcmp(la->fs->mountpoint, "/") ? la->fs->mountpoint : "",
		     rel);
	free(rel);
	if (n < 0 || (size_t)n >= sizeof(req.path)) {
		stats_inc(lookahead_failed);
		return;
	}
	inode_identity(dir, &dev, &req.ino, NULL, 0);
	req.size = max < LOOKAHEAD_BUF / PLUS_ENTRY ? max * PLUS_ENTRY
						    : LOOKAHEAD_BUF;
	r = ask(rd, &req);
	if (r < 0) {
		stats_inc(lookahead_failed);
		if (r != -ENOENT &&
		    !__atomic_exchange_n(&la->warned, true, __ATOMIC_RELAXED))
			log_warning("look-ahead: cannot read a directory "
				    "through %s (%s); counted in "
				    "lookahead_failed from now on",
				    la->fs->mountpoint, strerror((int)-r));
		return;
	}
	stats_inc(lookahead_dirs);
	stats_add(STAT_lookahead_entries, (uint64_t)r);
}

/* A daemon thread: directories from the stack, listed by its reader. */
static void *run(void *arg)
{
	struct reader *rd = arg;
	struct lookahead *la = rd->la;
	struct inode *dir;

	pthread_mutex_lock(&la->lock);
	for (;;) {
		while (!la->stop && !la->n)
			pthread_cond_wait(&la->cond, &la->lock);
		if (la->stop)
			break;
		dir = la->stack[--la->n];
		pthread_mutex_unlock(&la->lock);
		look_ahead(la, rd, dir);
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
	int r = 0;

	if (!la)
		return -ENOMEM;
	la->fs = fs;
	pthread_mutex_init(&la->lock, NULL);
	pthread_cond_init(&la->cond, NULL);
	for (int k = 0; k < LOOKAHEAD_THREADS; k++) {
		la->readers[k].la = la;
		la->readers[k].sock = -1;
	}
	for (int k = 0; k < LOOKAHEAD_THREADS && r == 0; k++) {
		struct reader *rd = &la->readers[k];

		r = reader_start(rd);
		if (r == 0) {
			r = -pthread_create(&rd->thread, NULL, run, rd);
			rd->started = r == 0;
		}
	}
	if (r < 0) {
		lookahead_stop(la);
		return r;
	}
	*out = la;
	return 0;
}

/* Reap a reader: it exits once its socket closes (or with SIGKILL). */
static void reader_reap(struct reader *rd)
{
	struct timespec tick = { .tv_nsec = 10000000 };

	if (rd->sock >= 0)
		close(rd->sock);
	if (!rd->pid)
		return;
	for (int k = 0; k < 200; k++) { /* 2 s, then SIGKILL */
		if (waitpid(rd->pid, NULL, WNOHANG) != 0)
			return;
		if (k == 100)
			kill(rd->pid, SIGKILL);
		nanosleep(&tick, NULL);
	}
	log_warning("look-ahead: reader %d did not exit", (int)rd->pid);
}

void lookahead_stop(struct lookahead *la)
{
	if (!la)
		return;
	pthread_mutex_lock(&la->lock);
	la->stop = true;
	pthread_cond_broadcast(&la->cond);
	pthread_mutex_unlock(&la->lock);
	/* a thread waiting for its reader's answer gets an error now */
	for (int k = 0; k < LOOKAHEAD_THREADS; k++)
		if (la->readers[k].sock >= 0)
			shutdown(la->readers[k].sock, SHUT_RDWR);
	for (int k = 0; k < LOOKAHEAD_THREADS; k++)
		if (la->readers[k].started)
			pthread_join(la->readers[k].thread, NULL);
	for (int k = 0; k < LOOKAHEAD_THREADS; k++)
		reader_reap(&la->readers[k]);
	pthread_cond_destroy(&la->cond);
	pthread_mutex_destroy(&la->lock);
	free(la);
}
