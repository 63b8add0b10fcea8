// SPDX-License-Identifier: MIT
/*
 * Conformance of a mirror target (mirror_target.h) against a real server.
 *
 *   mirror_target_check [--bench N] [--outage] URL DIR
 *   mirror_target_check --bench-only N URL DIR
 *   mirror_target_check --reject URL
 *   mirror_target_check --bad-url URL
 *
 * DIR is the target's root seen locally (the directory an SFTP server on
 * loopback serves), empty at the start.  Every op runs on a libevent loop
 * with up to depth() steps in flight, started from completions as the
 * mirror engine does; a model of what the tree should hold follows every
 * step that succeeded, and after each batch the model and DIR must agree
 * both ways: content, type, mode, mtime to the second, link targets, and
 * nothing more (no temporary left behind).  Completions must come once,
 * and never from inside the call that started the step.
 *
 * --bench N times N puts of 1 KiB with depth() steps in flight (after
 * the rest; --bench-only: alone).
 *
 * --outage: mid-run, prints "kill" and waits for a line on stdin (the
 * server is killed meanwhile): the steps in flight must fail with a
 * connection error, files being replaced must hold the old bytes or the
 * new, never part, and connect() must fail while the server is away.
 * Then "revive", a line on stdin, and connect() must work again.
 *
 * --reject: connect() must fail with -EKEYREJECTED; its message is
 * printed.  --bad-url: create() must fail with -EINVAL; ditto.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mirror_target.h"

#define PATH_BUF 512
#define MODEL_MAX 1024
#define T0 1600000000 /* mtimes: some past second */
#define BIG (5 << 20)

static struct event_base *base;
static const struct mirror_target_ops *ops;
static struct mirror_target *tgt;
static const char *url, *root;
static bool in_call; /* in a call into the target */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	va_list ap;

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CALL(expr)                                                             \
	do {                                                                   \
		in_call = true;                                                \
		expr;                                                          \
		in_call = false;                                               \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool conn_error(int err)
{
	return err == -ECONNRESET || err == -ETIMEDOUT ||
	       err == -EHOSTUNREACH || err == -ECONNREFUSED || err == -EIO;
}

/* ---- file contents -------------------------------------------------- */

/* Bytes to put: in memory to compare, in a memfd for the target. */
struct blob {
	struct blob *next;
	unsigned char *data;
	size_t size;
	int fd;
};

static struct blob *blobs;

static struct blob *blob_new(size_t size, uint32_t seed)
{
	struct blob *b = calloc(1, sizeof(*b));
	uint32_t x = seed * 2654435761U + 1;

	if (!b || !(b->data = malloc(size + 1)))
		die("out of memory");
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b->data[i] = (unsigned char)x;
	}
	b->size = size;
	b->fd = memfd_create("blob", MFD_CLOEXEC);
	if (b->fd < 0 || (size && write(b->fd, b->data, size) != (ssize_t)size))
		die("memfd: %s", strerror(errno));
	b->next = blobs;
	blobs = b;
	return b;
}

static void blobs_free(void)
{
	struct blob *b;

	while ((b = blobs)) {
		blobs = b->next;
		close(b->fd);
		free(b->data);
		free(b);
	}
}

/* ---- the model: what the tree should hold --------------------------- */

struct node {
	char path[PATH_BUF];
	char type; /* 'f', 'd', 'l' */
	const struct blob *blob;
	mode_t mode;
	time_t mtime;
	bool mtime_known; /* not for a directory whose entries changed */
	bool opaque;	  /* a directory whose entries are not modelled */
	char target[PATH_BUF];
};

static struct node model[MODEL_MAX];
static size_t nmodel;

static struct node *find(const char *path)
{
	for (size_t i = 0; i < nmodel; i++)
		if (!strcmp(model[i].path, path))
			return &model[i];
	return NULL;
}

/* The directory holding path changed: its mtime is the server's now. */
static void touch_parent(const char *path)
{
	char dir[PATH_BUF];
	struct node *n;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	n = find(dir);
	if (n)
		n->mtime_known = false;
}

static struct node *set(const char *path, char type)
{
	struct node *n = find(path);

	if (!n) {
		if (nmodel == MODEL_MAX)
			die("model full");
		n = &model[nmodel++];
		snprintf(n->path, sizeof(n->path), "%s", path);
	}
	n->type = type;
	n->mtime_known = true;
	touch_parent(path);
	return n;
}

static void unset(const char *path)
{
	struct node *n = find(path);

	if (n) {
		*n = model[--nmodel];
		touch_parent(path);
	}
}

static bool below(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	return !strncmp(path, dir, len) && path[len] == '/';
}

static void move(const char *from, const char *to)
{
	char p[PATH_BUF];

	unset(to);
	for (size_t i = 0; i < nmodel; i++) {
		if (strcmp(model[i].path, from) && !below(model[i].path, from))
			continue;
		if (snprintf(p, sizeof(p), "%s%s", to,
			     model[i].path + strlen(from)) >= (int)sizeof(p))
			die("%s: too long", to);
		memcpy(model[i].path, p, sizeof(p));
	}
	touch_parent(from);
	touch_parent(to);
}

static void local(const char *path, char *buf)
{
	snprintf(buf, PATH_BUF * 2, "%s%s", root, path);
}

static void check_node(const struct node *n)
{
	char lp[PATH_BUF * 2], target[PATH_BUF];
	unsigned char *got;
	struct stat st;
	ssize_t len;
	int fd;

	local(n->path, lp);
	if (lstat(lp, &st) < 0)
		die("%s: %s", n->path, strerror(errno));
	if (n->type == 'l') {
		if (!S_ISLNK(st.st_mode))
			die("%s: not a symlink", n->path);
		len = readlink(lp, target, sizeof(target) - 1);
		if (len < 0)
			die("readlink %s: %s", n->path, strerror(errno));
		target[len] = '\0';
		if (strcmp(target, n->target))
			die("%s: points to '%s', not '%s'", n->path, target,
			    n->target);
		return;
	}
	if (n->type == 'd' ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		die("%s: not a %s", n->path,
		    n->type == 'd' ? "directory" : "file");
	if ((st.st_mode & 07777) != n->mode)
		die("%s: mode %04o, not %04o", n->path,
		    (unsigned)(st.st_mode & 07777), (unsigned)n->mode);
	if (n->mtime_known && st.st_mtim.tv_sec != n->mtime)
		die("%s: mtime %lld, not %lld", n->path,
		    (long long)st.st_mtim.tv_sec, (long long)n->mtime);
	if (n->type == 'd')
		return;
	if ((size_t)st.st_size != n->blob->size)
		die("%s: %lld bytes, not %zu", n->path, (long long)st.st_size,
		    n->blob->size);
	got = malloc(n->blob->size + 1);
	fd = open(lp, O_RDONLY);
	if (!got || fd < 0)
		die("%s: %s", n->path, strerror(errno));
	len = read(fd, got, n->blob->size + 1);
	close(fd);
	if (len != (ssize_t)n->blob->size ||
	    memcmp(got, n->blob->data, n->blob->size))
		die("%s: other bytes", n->path);
	free(got);
}

/* Every entry below dir (a local path of rel) is in the model. */
static void check_extra(const char *rel)
{
	char lp[PATH_BUF * 2], sub[PATH_BUF * 2];
	const struct node *n;
	struct dirent *e;
	DIR *d;

	local(rel, lp);
	d = opendir(lp);
	if (!d)
		die("opendir %s: %s", lp, strerror(errno));
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
		n = find(sub);
		if (!n)
			die("%s: on the server, not expected", sub);
		if (n->type == 'd' && !n->opaque)
			check_extra(sub);
	}
	closedir(d);
}

static void check_model(void)
{
	for (size_t i = 0; i < nmodel; i++)
		check_node(&model[i]);
	check_extra("");
}

/* ---- jobs: steps run depth() at a time ------------------------------ */

enum kind {
	PUT, MKDIR, SYMLINK, LINK, REMOVE, RMDIR, RENAME, SETATTR, LIST, READ
};

#define WANT_CONN 1 /* any connection error */

struct entry {
	char name[256];
	char type;
	uint64_t size;
	struct mirror_attr attr;
};

struct job {
	enum kind kind;
	char path[PATH_BUF], path2[PATH_BUF];
	const struct blob *blob;
	struct mirror_attr a;
	bool dir;
	int want; /* 0, a negative errno, or WANT_CONN */
	/* list */
	struct entry *entries;
	size_t nentries;
	size_t stop_after; /* each() stops the listing after so many */
	/* read: bytes each() got, and how many calls */
	uint64_t got;
	size_t chunks;
	/* the outcome */
	unsigned calls;
	int err;
	char msg[600];
};

static struct job *jobs;
static size_t njobs, started, running;
static bool stop_starting;
/* called at each completion, before more are started */
static void (*on_completion)(struct job *j);

static void job_done(void *arg, int err, const char *msg);

static int list_each(void *arg, const struct mirror_entry *e)
{
	struct job *j = arg;
	struct entry *en;

	if (in_call)
		die("list %s: an entry inside the call", j->path);
	if (j->calls)
		die("list %s: an entry after its completion", j->path);
	en = realloc(j->entries, (j->nentries + 1) * sizeof(*en));
	if (!en)
		die("out of memory");
	j->entries = en;
	en += j->nentries++;
	snprintf(en->name, sizeof(en->name), "%s", e->name);
	en->type = e->type;
	en->size = e->size;
	en->attr = e->attr;
	return j->stop_after && j->nentries >= j->stop_after;
}

/* A read's bytes: the model's, at the offset given, each byte once. */
static int read_each(void *arg, uint64_t off, const void *buf, size_t len)
{
	struct job *j = arg;

	if (in_call)
		die("read %s: bytes inside the call", j->path);
	if (j->calls)
		die("read %s: bytes after its completion", j->path);
	if (!len || off > j->blob->size || len > j->blob->size - off)
		die("read %s: %zu bytes at %llu of %zu", j->path, len,
		    (unsigned long long)off, j->blob->size);
	if (memcmp(buf, j->blob->data + off, len))
		die("read %s: wrong bytes at %llu", j->path,
		    (unsigned long long)off);
	j->got += len;
	j->chunks++;
	return j->stop_after && j->chunks >= j->stop_after;
}

static void job_start(struct job *j)
{
	switch (j->kind) {
	case PUT:
		CALL(ops->put(tgt, j->path, j->blob->fd, j->blob->size, &j->a,
			      job_done, j));
		break;
	case MKDIR:
		CALL(ops->mkdir(tgt, j->path, &j->a, job_done, j));
		break;
	case SYMLINK:
		CALL(ops->symlink(tgt, j->path, j->path2, job_done, j));
		break;
	case LINK:
		CALL(ops->link(tgt, j->path, j->path2, job_done, j));
		break;
	case REMOVE:
		CALL(ops->remove(tgt, j->path, job_done, j));
		break;
	case RMDIR:
		CALL(ops->rmdir(tgt, j->path, job_done, j));
		break;
	case RENAME:
		CALL(ops->rename(tgt, j->path, j->path2, j->dir, job_done, j));
		break;
	case SETATTR:
		CALL(ops->setattr(tgt, j->path, &j->a, job_done, j));
		break;
	case LIST:
		CALL(ops->list(tgt, j->path, list_each, job_done, j));
		break;
	case READ:
		CALL(ops->read(tgt, j->path, read_each, job_done, j));
		break;
	}
}

static void fill(void)
{
	unsigned depth = ops->depth(tgt);

	while (!stop_starting && running < depth && started < njobs) {
		running++;
		job_start(&jobs[started++]);
	}
}

static void job_done(void *arg, int err, const char *msg)
{
	struct job *j = arg;

	if (in_call)
		die("%s: completed inside the call that started it", j->path);
	if (j->calls++)
		die("%s: completed twice", j->path);
	if (err && (!msg || !msg[0]))
		die("%s: error %d without a message", j->path, err);
	j->err = err;
	snprintf(j->msg, sizeof(j->msg), "%s", err ? msg : "");
	running--;
	if (on_completion)
		on_completion(j);
	fill();
}

/* The model after a step that succeeded. */
static void apply(const struct job *j)
{
	struct node *n, *old;

	switch (j->kind) {
	case PUT:
		n = set(j->path, 'f');
		n->blob = j->blob;
		n->mode = j->a.mode;
		n->mtime = j->a.mtime.tv_sec;
		break;
	case MKDIR:
	case SETATTR:
		n = find(j->path);
		if (!n)
			n = set(j->path, 'd');
		n->mode = j->a.mode;
		n->mtime = j->a.mtime.tv_sec;
		n->mtime_known = true;
		break;
	case SYMLINK:
		n = set(j->path, 'l');
		snprintf(n->target, sizeof(n->target), "%s", j->path2);
		break;
	case LINK:
		n = set(j->path2, 'f');
		old = find(j->path);
		n->blob = old->blob;
		n->mode = old->mode;
		n->mtime = old->mtime;
		break;
	case REMOVE:
	case RMDIR:
		unset(j->path);
		break;
	case RENAME:
		move(j->path, j->path2);
		break;
	case LIST:
	case READ:
		break;
	}
}

static void check_listing(const struct job *j);
static void check_jobs(struct job *js, size_t n, bool modelled);

/* Runs n jobs to their completions, depth() at a time. */
static void run_jobs(struct job *js, size_t n)
{
	jobs = js;
	njobs = n;
	started = running = 0;
	stop_starting = false;
	fill();
	while (running)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			die("event loop");
}

/* Each job's outcome is the one wanted; the model follows (if modelled). */
static void check_jobs(struct job *js, size_t n, bool modelled)
{
	for (size_t i = 0; i < n; i++) {
		struct job *j = &js[i];

		if (j->want == WANT_CONN ? !conn_error(j->err)
					 : j->err != j->want)
			die("%s: %d (%s), not %d", j->path, j->err, j->msg,
			    j->want);
		if (!j->err && modelled)
			apply(j);
		if (j->kind == LIST && !j->err)
			check_listing(j);
		if (j->kind == READ && !j->err && !j->stop_after &&
		    j->got != j->blob->size)
			die("read %s: %llu bytes of %zu", j->path,
			    (unsigned long long)j->got, j->blob->size);
		free(j->entries);
		j->entries = NULL;
	}
}

/* A listing against lstat() of the same directory here. */
static void check_listing(const struct job *j)
{
	char lp[PATH_BUF * 2], sub[PATH_BUF * 3];
	struct dirent *de;
	struct stat st;
	size_t here = 0;
	DIR *d;

	local(strcmp(j->path, "/") ? j->path : "", lp);
	for (size_t i = 0; i < j->nentries; i++) {
		const struct entry *e = &j->entries[i];
		char type;

		snprintf(sub, sizeof(sub), "%s/%s", lp, e->name);
		if (lstat(sub, &st) < 0)
			die("list %s: %s: %s", j->path, e->name,
			    strerror(errno));
		type = S_ISREG(st.st_mode)   ? 'f'
		       : S_ISDIR(st.st_mode) ? 'd'
		       : S_ISLNK(st.st_mode) ? 'l'
					     : '?';
		for (size_t k = 0; k < i; k++)
			if (!strcmp(j->entries[k].name, e->name))
				die("list %s: %s twice", j->path, e->name);
		if (e->type != type || e->attr.mode != (st.st_mode & 07777) ||
		    e->attr.mtime.tv_sec != st.st_mtim.tv_sec ||
		    (type == 'f' && e->size != (uint64_t)st.st_size))
			die("list %s: %s: %c %04o %lld %llu, here %c %04o "
			    "%lld %lld",
			    j->path, e->name, e->type, (unsigned)e->attr.mode,
			    (long long)e->attr.mtime.tv_sec,
			    (unsigned long long)e->size, type,
			    (unsigned)(st.st_mode & 07777),
			    (long long)st.st_mtim.tv_sec,
			    (long long)st.st_size);
	}
	d = opendir(lp);
	if (!d)
		die("opendir %s: %s", lp, strerror(errno));
	while ((de = readdir(d)))
		here += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	if (j->stop_after ? j->nentries != j->stop_after : j->nentries != here)
		die("list %s: %zu entries, %zu here (stop after %zu)", j->path,
		    j->nentries, here, j->stop_after);
}

/* ---- building jobs -------------------------------------------------- */

static struct job *batch;
static size_t nbatch, batch_cap;

static struct job *add(enum kind kind, const char *path, const char *path2,
		       int want)
{
	struct job *j;

	if (nbatch == batch_cap) {
		batch_cap = batch_cap ? batch_cap * 2 : 64;
		batch = realloc(batch, batch_cap * sizeof(*batch));
		if (!batch)
			die("out of memory");
	}
	j = &batch[nbatch++];
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	snprintf(j->path, sizeof(j->path), "%s", path);
	if (path2)
		snprintf(j->path2, sizeof(j->path2), "%s", path2);
	j->want = want;
	return j;
}

static struct mirror_attr attr(mode_t mode, time_t mtime)
{
	return (struct mirror_attr){
		.mode = mode, .mtime = { .tv_sec = mtime, .tv_nsec = 123456789 }
	};
}

static void put(const char *path, size_t size, uint32_t seed, mode_t mode,
		time_t mtime)
{
	struct job *j = add(PUT, path, NULL, 0);

	j->blob = blob_new(size, seed);
	j->a = attr(mode, mtime);
}

static void mkdir_(const char *path, mode_t mode, time_t mtime)
{
	add(MKDIR, path, NULL, 0)->a = attr(mode, mtime);
}

static void setattr(const char *path, mode_t mode, time_t mtime)
{
	add(SETATTR, path, NULL, 0)->a = attr(mode, mtime);
}

static void run_batch(const char *what)
{
	double t0 = now_s();

	run_jobs(batch, nbatch);
	check_jobs(batch, nbatch, true);
	check_model();
	printf("ok: %s: %zu steps, %.3f s\n", what, nbatch, now_s() - t0);
	fflush(stdout);
	nbatch = 0;
}

static void on_connect(void *arg, int err, const char *msg)
{
	struct job *j = arg;

	if (in_call)
		die("connect: completed inside the call");
	if (j->calls++)
		die("connect: completed twice");
	j->err = err;
	snprintf(j->msg, sizeof(j->msg), "%s", err ? msg : "");
}

static int do_connect(char *msg, size_t len)
{
	struct job j = { .calls = 0 };

	CALL(ops->connect(tgt, on_connect, &j));
	while (!j.calls)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			die("event loop");
	snprintf(msg, len, "%s", j.msg);
	return j.err;
}

static void connect_or_die(void)
{
	char msg[600];
	int err = do_connect(msg, sizeof(msg));

	if (err)
		die("connect %s: %d: %s", url, err, msg);
}

/* ---- the suite ------------------------------------------------------ */

static void suite(void)
{
	char p[PATH_BUF], q[PATH_BUF];
	static const size_t sizes[] = {
		0, 1, 100, 4095, 4096, 32767, 32768, 32769, 65536 + 7, 200000
	};
	static const mode_t modes[] = { 0644, 0600, 0640, 0755, 0444, 0751 };

	if (ops->depth(tgt) < 1)
		die("depth() is 0");

	mkdir_("/d1", 0755, T0 + 1);
	mkdir_("/d2", 0750, T0 + 2);
	mkdir_("/tree", 0755, T0 + 3);
	mkdir_("/files", 0755, T0 + 4);
	mkdir_("/links", 0711, T0 + 5);
	run_batch("mkdir");

	mkdir_("/tree/a", 0755, T0 + 6);
	mkdir_("/tree/b", 0700, T0 + 7);
	mkdir_("/d1", 0700, T0 + 8); /* there already: takes the attributes */
	run_batch("mkdir in directories, and over one");

	for (unsigned i = 0; i < 100; i++) {
		snprintf(p, sizeof(p), "/files/f%03u", i);
		put(p, sizes[i % 10] + i, i, modes[i % 6], T0 + 100 + i);
	}
	put("/files/empty", 0, 7, 0600, T0 + 9);
	put("/files/big1", BIG + 123, 1, 0644, T0 + 10);
	put("/files/big2", 3 << 20, 2, 0640, T0 + 11);
	put("/files/big3", (7 << 20) + 1, 3, 0600, T0 + 12);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "/tree/%c/f%u", "ab"[i % 2], i);
		put(p, 1000 * i + 5, 50 + i, 0644, T0 + 20 + i);
	}
	put("/d2/over", 70000, 60, 0644, T0 + 30);
	put("/links/file", 10, 61, 0644, T0 + 31);
	put("/links/tofile", 11, 62, 0644, T0 + 32);
	run_batch("put: small, empty and large files");

	put("/d2/over", 5000, 70, 0604, T0 + 40);
	add(SYMLINK, "/links/new", "file", 0);
	add(SYMLINK, "/links/tofile", "../files/f001", 0); /* over a file */
	add(LINK, "/links/file", "/links/hard", 0);
	add(LINK, "/files/f002", "/files/f003", 0); /* over a file */
	add(LINK, "/files/nothing", "/files/nothing.link", -ENOENT);
	add(RENAME, "/files/f004", "/files/f005", 0); /* over a file */
	add(RENAME, "/files/nothing2", "/files/nothing3", -ENOENT);
	setattr("/files/f006", 0400, T0 + 41);
	setattr("/d1", 0751, T0 + 42);
	add(REMOVE, "/files/f007", NULL, 0);
	add(REMOVE, "/files/nothing4", NULL, 0);
	add(RMDIR, "/nodir", NULL, 0);
	mkdir_("/empty", 0755, T0 + 43);
	mkdir_("/e1", 0755, T0 + 44);
	run_batch("put over a file, symlink, link, rename, setattr, remove");

	add(SYMLINK, "/links/new", "other", 0); /* over a symlink */
	add(RENAME, "/tree", "/tree2", 0)->dir = true;
	add(RENAME, "/d1", "/e1", 0)->dir = true; /* over an empty one */
	add(RMDIR, "/empty", NULL, 0);
	add(REMOVE, "/links/tofile", NULL, 0); /* the symlink, not f001 */
	run_batch("symlink over a symlink, rename trees, rmdir");

	add(LIST, "/", NULL, 0);
	add(LIST, "/files", NULL, 0); /* over 100: several READDIRs */
	add(LIST, "/tree2/a", NULL, 0);
	add(LIST, "/links", NULL, 0);
	add(LIST, "/nodir", NULL, -ENOENT);
	add(LIST, "/files", NULL, 0)->stop_after = 5;
	run_batch("list");

	/* read back: as put, whatever the size; stopped; missing */
	for (unsigned i = 0; i < 100; i += 3) {
		snprintf(p, sizeof(p), "/files/f%03u", i);
		if (find(p))
			add(READ, p, NULL, 0)->blob = find(p)->blob;
	}
	add(READ, "/files/big3", NULL, 0)->blob = find("/files/big3")->blob;
	add(READ, "/files/empty", NULL, 0)->blob = find("/files/empty")->blob;
	add(READ, "/files/big2", NULL, 0)->blob = find("/files/big2")->blob;
	batch[nbatch - 1].stop_after = 1;
	add(READ, "/files/nothing", NULL, -ENOENT);
	run_batch("read back");

	/* names the model cannot guess: spaces, UTF-8, a long one */
	memcpy(q, "/files/", 7);
	memset(q + 7, 'n', 240);
	q[247] = '\0';
	put(q, 10, 80, 0644, T0 + 50);
	put("/files/with space", 10, 81, 0644, T0 + 51);
	put("/files/ünï €", 10, 82, 0644, T0 + 52);
	run_batch("odd names");
}

/* Completions in flight at destroy() must never come. */
static int late_calls;
static bool destroy_in_completion;

static void late(void *arg, int err, const char *msg)
{
	if (late_calls++ == 0 && destroy_in_completion)
		ops->destroy(tgt);
}

static void check_destroy(void)
{
	char err[600], p[PATH_BUF];
	struct blob *b = blob_new(100000, 90);
	struct mirror_attr a = attr(0644, T0);
	struct timeval tv = { .tv_usec = 300000 };

	/* with steps in flight, outside any completion */
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "/files/late%d", i);
		CALL(ops->put(tgt, p, b->fd, b->size, &a, late, NULL));
	}
	CALL(ops->destroy(tgt));
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	if (late_calls)
		die("a completion after destroy()");

	/* from inside the first completion */
	if (ops->create(url, base, &tgt, err, sizeof(err)))
		die("create %s: %s", url, err);
	connect_or_die();
	destroy_in_completion = true;
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "/files/late%d", i);
		CALL(ops->put(tgt, p, b->fd, b->size, &a, late, NULL));
	}
	while (!late_calls)
		event_base_loop(base, EVLOOP_ONCE);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	if (late_calls != 1)
		die("%d completions after destroy()", late_calls - 1);
	tgt = NULL;
	printf("ok: destroy drops completions in flight\n");
}

static void bench(unsigned n)
{
	struct blob *b = blob_new(1024, 99);
	char name[64];
	double t0, dt;

	mkdir_("/bench", 0755, T0 + 60);
	run_batch("bench directory");
	find("/bench")->opaque = true;
	for (unsigned i = 0; i < n; i++) {
		struct job *j;

		snprintf(name, sizeof(name), "/bench/f%05u", i);
		j = add(PUT, name, NULL, 0);
		j->blob = b;
		j->a = attr(0644, T0 + 61);
	}
	t0 = now_s();
	run_jobs(batch, nbatch);
	dt = now_s() - t0;
	check_jobs(batch, nbatch, false);
	printf("bench: %u puts of 1 KiB, depth %u: %.2f s, %.0f files/s\n", n,
	       ops->depth(tgt), dt, n / dt);
	/* every one there and whole (the model is not burdened with them) */
	for (unsigned i = 0; i < n; i += n / 97 + 1) {
		struct node nd = { .type = 'f',
				   .blob = b,
				   .mode = 0644,
				   .mtime = T0 + 61,
				   .mtime_known = true };

		snprintf(nd.path, sizeof(nd.path), "/bench/f%05u", i);
		check_node(&nd);
	}
	nbatch = 0;
}

/* ---- outage --------------------------------------------------------- */

static void ask(const char *what)
{
	char line[64];

	printf("%s\n", what);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("no answer to '%s'", what);
}

static unsigned outage_ok;

static void kill_midway(struct job *j)
{
	if (!j->err && ++outage_ok == 8)
		ask("kill");
	if (conn_error(j->err))
		stop_starting = true; /* as the engine does: reconnect first */
}

/*
 * A put that failed with its connection: the file has the old bytes (or
 * is not there), or the new ones if only the answer was lost; never part.
 */
static void check_either(struct job *j)
{
	char lp[PATH_BUF * 2];
	struct node *old = find(j->path);
	struct node now = { .type = 'f',
			    .blob = j->blob,
			    .mode = j->a.mode,
			    .mtime = j->a.mtime.tv_sec,
			    .mtime_known = true };
	unsigned char *got;
	ssize_t len = -1;
	int fd;

	local(j->path, lp);
	fd = open(lp, O_RDONLY);
	if (fd < 0 && errno == ENOENT && !old)
		return;
	got = malloc(j->blob->size + 1);
	if (!got)
		die("out of memory");
	if (fd >= 0) {
		len = read(fd, got, j->blob->size + 1);
		close(fd);
	}
	if (len == (ssize_t)j->blob->size &&
	    !memcmp(got, j->blob->data, j->blob->size)) {
		snprintf(now.path, sizeof(now.path), "%s", j->path);
		check_node(&now);
		apply(j);
	} else if (old) {
		check_node(old);
	} else {
		die("%s: there after a failed put", j->path);
	}
	free(got);
}

static void outage(void)
{
	unsigned depth = ops->depth(tgt), failed = 0;
	struct blob *old = blob_new(3000, 100);
	char p[PATH_BUF], msg[600];
	struct job *js;
	size_t n, ran, left = 0;
	struct dirent *de;
	DIR *d;
	int err;

	mkdir_("/outage", 0755, T0 + 70);
	for (unsigned i = 0; i < depth; i++) {
		struct job *j;

		snprintf(p, sizeof(p), "/outage/keep%03u", i);
		j = add(PUT, p, NULL, 0);
		j->blob = old;
		j->a = attr(0644, T0 + 71);
	}
	run_batch("outage: files to replace");
	/* what a killed put leaves behind is the server's to keep */
	find("/outage")->opaque = true;

	/* replacing them, 1 MiB each: far more than in flight at once */
	for (unsigned i = 0; i < 3 * depth; i++) {
		snprintf(p, sizeof(p), "/outage/%s%03u",
			 i < depth ? "keep" : "new", i);
		put(p, 1 << 20, 200 + i, 0640, T0 + 72);
	}
	js = batch;
	n = nbatch;
	batch = NULL;
	nbatch = batch_cap = 0;
	on_completion = kill_midway;
	run_jobs(js, n);
	on_completion = NULL;
	ran = started;
	if (outage_ok < 8)
		die("the server was never killed");
	for (size_t i = 0; i < ran; i++) {
		struct job *j = &js[i];

		if (!j->err) {
			apply(j);
		} else if (!conn_error(j->err)) {
			die("%s: %d (%s), not a connection error", j->path,
			    j->err, j->msg);
		} else {
			failed++;
			check_either(j);
		}
	}
	if (!failed)
		die("no step failed when the server was killed");
	for (size_t i = 0; i < ran; i++)
		if (js[i].err)
			snprintf(msg, sizeof(msg), "%s", js[i].msg);
	printf("ok: outage: %u of %zu steps failed: %s\n", failed, ran, msg);

	/* away: connect() fails, and so do steps, from the loop */
	err = do_connect(msg, sizeof(msg));
	if (!conn_error(err))
		die("connect with the server away: %d (%s)", err, msg);
	printf("ok: connect while the server is away: %s\n", msg);
	add(REMOVE, "/outage/keep000", NULL, WANT_CONN);
	run_jobs(batch, nbatch);
	check_jobs(batch, nbatch, false);
	nbatch = 0;

	ask("revive");
	connect_or_die();
	for (size_t i = 0; i < n; i++) {
		struct node *nd = find(js[i].path);

		struct job *j;

		if (nd && nd->blob == js[i].blob)
			continue;
		j = add(PUT, js[i].path, NULL, 0);
		j->blob = js[i].blob;
		j->a = js[i].a;
	}
	free(js);
	run_batch("outage: reconnected, the rest redone");
	local("/outage", p);
	d = opendir(p);
	while (d && (de = readdir(d)))
		left += de->d_name[0] == '.' && strcmp(de->d_name, ".") &&
			strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	printf("ok: outage: %zu temporary files left by killed steps\n", left);
}

/* ---- main ----------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: mirror_target_check [--bench N] [--outage] URL DIR\n"
		"       mirror_target_check --bench-only N URL DIR\n"
		"       mirror_target_check --reject URL\n"
		"       mirror_target_check --bad-url URL\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool reject = false, bad_url = false, do_outage = false, only = false;
	unsigned nbench = 0;
	char err[600];
	int i, r;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if ((!strcmp(argv[i], "--bench") ||
		     (only = !strcmp(argv[i], "--bench-only"))) &&
		    i + 1 < argc)
			nbench = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--outage"))
			do_outage = true;
		else if (!strcmp(argv[i], "--reject"))
			reject = true;
		else if (!strcmp(argv[i], "--bad-url"))
			bad_url = true;
		else
			usage();
	}
	if (argc - i != (reject || bad_url ? 1 : 2))
		usage();
	url = argv[i];
	root = argv[i + 1];
	setvbuf(stdout, NULL, _IOLBF, 0); /* a pipe, read line by line */
	ops = mirror_target_ops_for(url);
	if (!ops)
		die("no target for %s", url);
	alarm(600);
	base = event_base_new();
	if (!base)
		die("event_base_new");

	r = ops->create(url, base, &tgt, err, sizeof(err));
	if (bad_url) {
		if (r != -EINVAL || !err[0])
			die("create %s: %d, not -EINVAL", url, r);
		printf("%s\n", err);
		event_base_free(base);
		return 0;
	}
	if (r)
		die("create %s: %d: %s", url, r, err);
	if (reject) {
		r = do_connect(err, sizeof(err));
		if (r != -EKEYREJECTED)
			die("connect %s: %d (%s), not -EKEYREJECTED", url, r,
			    err);
		printf("%s\n", err);
		ops->destroy(tgt);
		event_base_free(base);
		return 0;
	} else if (only) {
		connect_or_die();
		bench(nbench);
	} else {
		connect_or_die();
		suite();
		if (do_outage)
			outage();
		if (nbench)
			bench(nbench);
		check_destroy();
	}
	if (tgt)
		ops->destroy(tgt);
	event_base_free(base);
	blobs_free();
	free(batch);
	printf("ok: all\n");
	return 0;
}
