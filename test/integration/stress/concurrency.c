// SPDX-License-Identifier: MIT
/*
 * concurrency [-s SEED] [-n ITERATIONS] DIR
 *
 * Namespace races.  In a fresh work directory under DIR:
 *
 * 1. NCHILD processes each make ITERATIONS random calls on the same three
 *    directories and their subdirectories: exclusive creates (unique and
 *    shared names) followed by one write of a self-describing pattern,
 *    renames within and across directories (over existing names too),
 *    links, unlinks, mkdir, rmdir and directory renames, readdir, stat and
 *    reads.  A call may fail only with an error the race itself explains
 *    (ENOENT, EEXIST, ENOTEMPTY); any other error, or content that is not
 *    a prefix of a valid pattern, fails the test.
 *
 * 2. NTHREADS threads stat, open and read a fixed set of files while one
 *    more thread renames them back and forth and exchanges them.
 *
 * 3. The tree is walked through DIR and, when CACHEFS_BACKEND is set,
 *    through the backend: both must hold the same names, types, sizes,
 *    link counts, hard-link groups and bytes, and every file must be one
 *    complete pattern, whose header names its writer.
 *
 * Names: files are sNN (shared by all) or uC.N (unique to writer C);
 * directories are the fixed top-level dN and their subdirectories DN.
 * Directories never move below depth two, so a rename can never put one
 * inside itself.  Exit status: 0 pass, 1 failure, 2 bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "stress.h"

#define NCHILD 6
#define NTOP 3	   /* d0..d2, never removed */
#define NSUB 4	   /* D0..D3 below each top directory */
#define NSHARED 16 /* s00..s15 */
#define RING 64	   /* names a child remembers */
#define NTHREADS 8
#define NTFILES 8
#define DEFAULT_ITERS 5000

#define MAGIC 0x54534643u /* "CFST" */
#define MAXBODY 16384
#define MAXFILE (sizeof(struct hdr) + MAXBODY)
#define TWRITER 1000 /* writer ids of the thread phase's files */

/* Every file starts with this; the rest is pat_byte(). */
struct hdr {
	uint32_t magic;
	uint32_t writer;
	uint32_t serial;
	uint32_t len; /* of the whole file */
};

static uint64_t seed;

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "concurrency: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (seed %llu)\n", (unsigned long long)seed);
	exit(1);
}

static unsigned char pat_byte(uint32_t writer, uint32_t serial, size_t p)
{
	return (unsigned char)((p * 131u) ^ (writer * 17u) ^ (serial * 7u) ^
			       (p >> 8));
}

/* A complete file of len bytes from writer: header, then the pattern. */
static void make_content(unsigned char *buf, uint32_t writer, uint32_t serial,
			 uint32_t len)
{
	struct hdr h = { MAGIC, writer, serial, len };

	memcpy(buf, &h, sizeof(h));
	for (size_t p = sizeof(h); p < len; p++)
		buf[p] = pat_byte(writer, serial, p);
}

static bool writer_valid(uint32_t w)
{
	return (w >= 1 && w <= NCHILD) ||
	       (w >= TWRITER && w < TWRITER + NTFILES);
}

/*
 * NULL if buf[0..n) is a prefix of a valid file (the whole of it when
 * full), else what is wrong.  *h gets the header when n covers it.
 */
static const char *check_content(const unsigned char *buf, size_t n, bool full,
				 struct hdr *h)
{
	static const uint32_t magic = MAGIC;
	static char why[128];

	memset(h, 0, sizeof(*h));
	if (n < sizeof(*h)) {
		if (memcmp(buf, &magic, n < 4 ? n : 4) != 0)
			return "bad magic in a short read";
		return full ? "file shorter than its header" : NULL;
	}
	memcpy(h, buf, sizeof(*h));
	if (h->magic != MAGIC)
		return "bad magic";
	if (!writer_valid(h->writer))
		return "bad writer id";
	if (h->len < sizeof(*h) || h->len > MAXFILE)
		return "bad length in header";
	if (n > h->len)
		return "file longer than its header says";
	if (full && n != h->len)
		return "file shorter than its header says";
	for (size_t p = sizeof(*h); p < n; p++) {
		if (buf[p] != pat_byte(h->writer, h->serial, p)) {
			snprintf(why, sizeof(why),
				 "byte %zu is 0x%02x, expected 0x%02x", p,
				 buf[p], pat_byte(h->writer, h->serial, p));
			return why;
		}
	}
	return NULL;
}

/* Read a whole file (at most MAXFILE + 1 bytes) from fd. */
static ssize_t read_all(int fd, unsigned char *buf)
{
	size_t n = 0;
	ssize_t r;

	while (n <= MAXFILE) {
		r = read(fd, buf + n, MAXFILE + 1 - n);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* Part 1: the forked children. */

enum cop {
	C_CREATE,
	C_RENAME,
	C_LINK,
	C_UNLINK,
	C_MKDIR,
	C_RMDIR,
	C_RENAME_DIR,
	C_READDIR,
	C_STAT,
	C_READ,
	C_FDOPS,
	C_COUNT
};

static const char *const cop_names[C_COUNT] = {
	[C_CREATE] = "create",
	[C_RENAME] = "rename",
	[C_LINK] = "link",
	[C_UNLINK] = "unlink",
	[C_MKDIR] = "mkdir",
	[C_RMDIR] = "rmdir",
	[C_RENAME_DIR] = "rename-dir",
	[C_READDIR] = "readdir",
	[C_STAT] = "stat",
	[C_READ] = "read",
	[C_FDOPS] = "fd-ops",
};

static const unsigned cop_weights[C_COUNT] = {
	[C_CREATE] = 20, [C_RENAME] = 14, [C_LINK] = 7,	      [C_UNLINK] = 10,
	[C_MKDIR] = 5,	 [C_RMDIR] = 4,	  [C_RENAME_DIR] = 3, [C_READDIR] = 8,
	[C_STAT] = 14,	 [C_READ] = 12,	  [C_FDOPS] = 6,
};

#define NAME_LEN 48
#define DIR_LEN 16 /* "dN/DN" */
#define CLOG 16	   /* operations a failing child prints */

struct child {
	uint32_t id;
	struct rng rng;
	uint32_t serial;     /* of the last file written */
	unsigned long names; /* unique names made */
	char ring[RING][NAME_LEN];
	unsigned nring;
	char log[CLOG][2 * NAME_LEN + 32];
	unsigned long nlog;
	unsigned long calls[C_COUNT], errors[C_COUNT];
	unsigned char buf[MAXFILE + 1];
};

static void child_fail(struct child *c, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

static void child_fail(struct child *c, const char *fmt, ...)
{
	unsigned long k = c->nlog > CLOG ? c->nlog - CLOG : 0;
	va_list ap;

	fprintf(stderr, "concurrency: child %u: FAIL: ", c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (seed %llu)\nchild %u's last operations:\n",
		(unsigned long long)seed, c->id);
	for (; k < c->nlog; k++)
		fprintf(stderr, "  %s\n", c->log[k % CLOG]);
	exit(1);
}

static void child_log(struct child *c, enum cop op, const char *a,
		      const char *b)
{
	snprintf(c->log[c->nlog++ % CLOG], sizeof(c->log[0]), "%-10s %s%s%s",
		 cop_names[op], a, b ? " -> " : "", b ? b : "");
	c->calls[op]++;
}

/* A failure the race explains, or a test failure. */
static void child_check(struct child *c, enum cop op, int r, const char *what,
			const int *allowed)
{
	int e = errno;

	if (r >= 0)
		return;
	for (; *allowed; allowed++) {
		if (*allowed == e) {
			c->errors[op]++;
			return;
		}
	}
	child_fail(c, "%s %s: unexpected error %s", cop_names[op], what,
		   strerror(e));
}

static const int ok_enoent[] = { ENOENT, 0 };
static const int ok_eexist[] = { EEXIST, 0 };
static const int ok_create[] = { EEXIST, ENOENT, 0 };
static const int ok_rmdir[] = { ENOENT, ENOTEMPTY, EEXIST, 0 };

static void remember(struct child *c, const char *path)
{
	snprintf(c->ring[c->nring++ % RING], NAME_LEN, "%s", path);
}

static void random_dir(struct child *c, char *buf)
{
	unsigned top = (unsigned)rng_below(&c->rng, NTOP);

	if (rng_pct(&c->rng, 50))
		snprintf(buf, DIR_LEN, "d%u", top);
	else
		snprintf(buf, DIR_LEN, "d%u/D%u", top,
			 (unsigned)rng_below(&c->rng, NSUB));
}

static void sub_dir(struct child *c, char *buf)
{
	snprintf(buf, DIR_LEN, "d%u/D%u", (unsigned)rng_below(&c->rng, NTOP),
		 (unsigned)rng_below(&c->rng, NSUB));
}

/* A name for a new file: shared (maybe existing) or unique to c. */
static void new_file_path(struct child *c, char *buf)
{
	char dir[DIR_LEN];

	random_dir(c, dir);
	if (rng_pct(&c->rng, 40))
		snprintf(buf, NAME_LEN, "%s/s%02u", dir,
			 (unsigned)rng_below(&c->rng, NSHARED));
	else
		snprintf(buf, NAME_LEN, "%s/u%u.%lu", dir, c->id, c->names++);
}

/* A file name likely to exist. */
static void some_file_path(struct child *c, char *buf)
{
	char dir[DIR_LEN];

	if (c->nring && rng_pct(&c->rng, 60)) {
		unsigned n = c->nring < RING ? c->nring : RING;

		memcpy(buf, c->ring[rng_below(&c->rng, n)], NAME_LEN);
		return;
	}
	random_dir(c, dir);
	snprintf(buf, NAME_LEN, "%s/s%02u", dir,
		 (unsigned)rng_below(&c->rng, NSHARED));
}

static void c_create(struct child *c)
{
	char path[NAME_LEN];
	uint32_t len;
	ssize_t n;
	int fd;

	new_file_path(c, path);
	child_log(c, C_CREATE, path, NULL);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	child_check(c, C_CREATE, fd, path, ok_create);
	if (fd < 0)
		return;
	len = (uint32_t)(sizeof(struct hdr) + rng_below(&c->rng, MAXBODY + 1));
	make_content(c->buf, c->id, ++c->serial, len);
	n = pwrite(fd, c->buf, len, 0);
	if (n != (ssize_t)len)
		child_fail(c, "write %s: %s", path,
			   n < 0 ? strerror(errno) : "short write");
	if (close(fd) < 0)
		child_fail(c, "close %s: %s", path, strerror(errno));
	remember(c, path);
}

static void c_rename(struct child *c)
{
	char from[NAME_LEN], to[NAME_LEN];

	some_file_path(c, from);
	new_file_path(c, to);
	child_log(c, C_RENAME, from, to);
	if (rename(from, to) == 0)
		remember(c, to);
	else
		child_check(c, C_RENAME, -1, from, ok_enoent);
}

static void c_link(struct child *c)
{
	char from[NAME_LEN], to[NAME_LEN];

	some_file_path(c, from);
	new_file_path(c, to);
	child_log(c, C_LINK, from, to);
	if (link(from, to) == 0)
		remember(c, to);
	else
		child_check(c, C_LINK, -1, from, ok_create);
}

static void c_unlink(struct child *c)
{
	char path[NAME_LEN];

	some_file_path(c, path);
	child_log(c, C_UNLINK, path, NULL);
	child_check(c, C_UNLINK, unlink(path), path, ok_enoent);
}

static void c_mkdir(struct child *c)
{
	char path[DIR_LEN];

	sub_dir(c, path);
	child_log(c, C_MKDIR, path, NULL);
	child_check(c, C_MKDIR, mkdir(path, 0755), path, ok_eexist);
}

/* Half the time, empty the directory first, racing with its fillers. */
static void c_rmdir(struct child *c)
{
	char path[DIR_LEN];
	struct dirent *de;
	DIR *dp;

	sub_dir(c, path);
	child_log(c, C_RMDIR, path, NULL);
	if (rng_pct(&c->rng, 50) && (dp = opendir(path))) {
		while ((errno = 0, de = readdir(dp))) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(dp), de->d_name, 0) < 0 &&
			    errno != ENOENT)
				child_fail(c, "unlink %s/%s: %s", path,
					   de->d_name, strerror(errno));
		}
		if (errno)
			child_fail(c, "readdir %s: %s", path, strerror(errno));
		closedir(dp);
	}
	child_check(c, C_RMDIR, rmdir(path), path, ok_rmdir);
}

static void c_rename_dir(struct child *c)
{
	char from[DIR_LEN], to[DIR_LEN];

	sub_dir(c, from);
	sub_dir(c, to);
	child_log(c, C_RENAME_DIR, from, to);
	child_check(c, C_RENAME_DIR, rename(from, to), from, ok_rmdir);
}

/* Is name a valid entry of dir (a top directory iff top)? */
static bool name_valid(const char *name, bool top, unsigned char *type)
{
	unsigned a, b;
	char end;

	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		*type = DT_DIR;
		return true;
	}
	*type = DT_REG;
	if (sscanf(name, "s%2u%c", &a, &end) == 1)
		return a < NSHARED && strlen(name) == 3;
	if (sscanf(name, "u%u.%u%c", &a, &b, &end) == 2)
		return a >= 1 && a <= NCHILD;
	*type = DT_DIR;
	if (top && sscanf(name, "D%u%c", &a, &end) == 1)
		return a < NSUB && strlen(name) == 2;
	return false;
}

static void c_readdir(struct child *c)
{
	char dir[DIR_LEN], path[NAME_LEN];
	struct dirent *de;
	unsigned char type;
	DIR *dp;
	bool top;

	random_dir(c, dir);
	top = !strchr(dir, '/');
	child_log(c, C_READDIR, dir, NULL);
	dp = opendir(dir);
	if (!dp) {
		child_check(c, C_READDIR, -1, dir, ok_enoent);
		return;
	}
	for (;;) {
		errno = 0;
		de = readdir(dp);
		if (!de)
			break;
		if (!name_valid(de->d_name, top, &type))
			child_fail(c, "readdir %s: unexpected name '%s'", dir,
				   de->d_name);
		if (de->d_type != DT_UNKNOWN && de->d_type != type)
			child_fail(c, "readdir %s: '%s' has type %u", dir,
				   de->d_name, de->d_type);
		if (type == DT_REG && rng_pct(&c->rng, 10) &&
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
			    (int)sizeof(path))
			remember(c, path);
	}
	if (errno)
		child_fail(c, "readdir %s: %s", dir, strerror(errno));
	closedir(dp);
}

static void c_stat(struct child *c)
{
	char path[NAME_LEN];
	struct stat st;
	bool dir = rng_pct(&c->rng, 20);

	if (dir)
		sub_dir(c, path);
	else
		some_file_path(c, path);
	child_log(c, C_STAT, path, NULL);
	if (lstat(path, &st) < 0) {
		child_check(c, C_STAT, -1, path, ok_enoent);
		return;
	}
	/* A link count may drop to 0 when a removal races the lookup. */
	if (dir ? !S_ISDIR(st.st_mode) || st.st_nlink == 1
		: !S_ISREG(st.st_mode) || (size_t)st.st_size > MAXFILE)
		child_fail(c, "stat %s: mode 0%o, %lu links, size %lld", path,
			   (unsigned)st.st_mode, (unsigned long)st.st_nlink,
			   (long long)st.st_size);
}

static void c_read(struct child *c)
{
	char path[NAME_LEN];
	const char *why;
	struct hdr h;
	ssize_t n;
	int fd;

	some_file_path(c, path);
	child_log(c, C_READ, path, NULL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		child_check(c, C_READ, -1, path, ok_enoent);
		return;
	}
	n = read_all(fd, c->buf);
	if (n < 0)
		child_fail(c, "read %s: %s", path, strerror(errno));
	/* Its writer may still be writing it: a prefix is fine. */
	why = check_content(c->buf, (size_t)n, false, &h);
	if (why)
		child_fail(c, "read %s: %zd bytes: %s (writer %u serial %u)",
			   path, n, why, h.writer, h.serial);
	if (close(fd) < 0)
		child_fail(c, "close %s: %s", path, strerror(errno));
}

/*
 * Calls on an open descriptor whose name may be unlinked or renamed
 * meanwhile: none of them may fail.
 */
static void c_fdops(struct child *c)
{
	char path[NAME_LEN], value[16];
	const char *why;
	struct stat st;
	struct hdr h;
	ssize_t n;
	int fd;

	some_file_path(c, path);
	child_log(c, C_FDOPS, path, NULL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		child_check(c, C_FDOPS, -1, path, ok_enoent);
		return;
	}
	sched_yield();
	if (fstat(fd, &st) < 0)
		child_fail(c, "fstat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		child_fail(c, "fstat %s: mode 0%o", path, (unsigned)st.st_mode);
	if (fchmod(fd, rng_pct(&c->rng, 50) ? 0644 : 0640) < 0)
		child_fail(c, "fchmod %s: %s", path, strerror(errno));
	if (futimens(fd, NULL) < 0)
		child_fail(c, "futimens %s: %s", path, strerror(errno));
	snprintf(value, sizeof(value), "%u", c->id);
	if (fsetxattr(fd, "user.cfs", value, strlen(value), 0) < 0 &&
	    errno != ENOTSUP)
		child_fail(c, "fsetxattr %s: %s", path, strerror(errno));
	n = fgetxattr(fd, "user.cfs", value, sizeof(value));
	if (n < 0 && errno != ENOTSUP && errno != ENODATA)
		child_fail(c, "fgetxattr %s: %s", path, strerror(errno));
	n = read_all(fd, c->buf);
	if (n < 0)
		child_fail(c, "read %s: %s", path, strerror(errno));
	why = check_content(c->buf, (size_t)n, false, &h);
	if (why)
		child_fail(c, "read %s: %zd bytes: %s (writer %u serial %u)",
			   path, n, why, h.writer, h.serial);
	if (close(fd) < 0)
		child_fail(c, "close %s: %s", path, strerror(errno));
}

static enum cop pick_cop(struct child *c)
{
	unsigned total = 0, r;
	int op;

	for (op = 0; op < C_COUNT; op++)
		total += cop_weights[op];
	r = (unsigned)rng_below(&c->rng, total);
	for (op = 0; r >= cop_weights[op]; op++)
		r -= cop_weights[op];
	return (enum cop)op;
}

static void (*const cop_fns[C_COUNT])(struct child *) = {
	[C_CREATE] = c_create,
	[C_RENAME] = c_rename,
	[C_LINK] = c_link,
	[C_UNLINK] = c_unlink,
	[C_MKDIR] = c_mkdir,
	[C_RMDIR] = c_rmdir,
	[C_RENAME_DIR] = c_rename_dir,
	[C_READDIR] = c_readdir,
	[C_STAT] = c_stat,
	[C_READ] = c_read,
	[C_FDOPS] = c_fdops,
};

static void run_child(uint32_t id, unsigned long iters, int report)
{
	struct child *c = calloc(1, sizeof(*c));
	char line[512];
	int n = 0;

	if (!c)
		die("out of memory");
	c->id = id;
	c->rng.s = seed * 7919 + id;
	for (unsigned long i = 0; i < iters; i++)
		cop_fns[pick_cop(c)](c);
	/* One line of call and race-error counts back to the parent. */
	for (int op = 0; op < C_COUNT; op++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%lu %lu ",
			      c->calls[op], c->errors[op]);
	line[n - 1] = '\n';
	if (write(report, line, (size_t)n) != n)
		die("child %u: report: %s", id, strerror(errno));
	free(c);
}

static void run_children(unsigned long iters)
{
	unsigned long calls[C_COUNT] = { 0 }, errors[C_COUNT] = { 0 };
	int fds[2], status, failed = 0;
	char buf[NCHILD * 512];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		die("pipe: %s", strerror(errno));
	for (uint32_t id = 1; id <= NCHILD; id++) {
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			close(fds[0]);
			run_child(id, iters, fds[1]);
			_exit(0);
		}
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	buf[got] = '\0';
	while ((pid = wait(&status)) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	if (failed)
		die("%d of %d children failed", failed, NCHILD);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *p = line;

		for (int op = 0; op < C_COUNT; op++) {
			calls[op] += strtoul(p, &p, 10);
			errors[op] += strtoul(p, &p, 10);
		}
	}
	printf("concurrency: %d children x %lu calls (calls/race errors):",
	       NCHILD, iters);
	for (int op = 0; op < C_COUNT; op++)
		printf(" %s %lu/%lu", cop_names[op], calls[op], errors[op]);
	printf("\n");
}

/* Part 2: readers against a renamer. */

struct tstate {
	unsigned long iters;
	uint32_t sizes[NTFILES];
	bool no_exchange;
	unsigned long tcalls, tenoent;
	pthread_mutex_t lock; /* protects tcalls, tenoent */
};

static void tfile_path(char *buf, bool b, unsigned k)
{
	snprintf(buf, NAME_LEN, "t/%c%u", b ? 'b' : 'a', k);
}

static bool size_known(const struct tstate *ts, off_t size)
{
	for (int k = 0; k < NTFILES; k++) {
		if (ts->sizes[k] == size)
			return true;
	}
	return false;
}

struct reader {
	struct tstate *ts;
	unsigned id;
	pthread_t thread;
	char fail[256];
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct tstate *ts = rd->ts;
	unsigned char *buf = malloc(MAXFILE + 1);
	unsigned long enoent = 0;
	struct rng rng = { seed * 104729 + rd->id };
	char path[NAME_LEN];
	const char *why;
	struct stat st;
	struct hdr h;
	ssize_t n;
	int fd;

	if (!buf) {
		snprintf(rd->fail, sizeof(rd->fail), "out of memory");
		return NULL;
	}
	for (unsigned long i = 0; i < ts->iters && !rd->fail[0]; i++) {
		tfile_path(path, rng_pct(&rng, 50),
			   (unsigned)rng_below(&rng, NTFILES));
		if (rng_pct(&rng, 40)) {
			if (stat(path, &st) < 0) {
				if (errno != ENOENT)
					snprintf(rd->fail, sizeof(rd->fail),
						 "stat %s: %s", path,
						 strerror(errno));
				enoent++;
			} else if (!S_ISREG(st.st_mode) ||
				   !size_known(ts, st.st_size) ||
				   st.st_nlink != 1) {
				snprintf(rd->fail, sizeof(rd->fail),
					 "stat %s: mode 0%o, size %lld, "
					 "%lu links",
					 path, (unsigned)st.st_mode,
					 (long long)st.st_size,
					 (unsigned long)st.st_nlink);
			}
			continue;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT)
				snprintf(rd->fail, sizeof(rd->fail),
					 "open %s: %s", path, strerror(errno));
			enoent++;
			continue;
		}
		if (rng_pct(&rng, 20))
			sched_yield(); /* let the renamer move it */
		if (fstat(fd, &st) < 0) {
			snprintf(rd->fail, sizeof(rd->fail), "fstat %s: %s",
				 path, strerror(errno));
		} else if ((n = read_all(fd, buf)) < 0) {
			snprintf(rd->fail, sizeof(rd->fail), "read %s: %s",
				 path, strerror(errno));
		} else if ((why = check_content(buf, (size_t)n, true, &h))) {
			snprintf(rd->fail, sizeof(rd->fail),
				 "read %s: %zd bytes: %s", path, n, why);
		} else if (st.st_size != n || h.writer < TWRITER) {
			snprintf(rd->fail, sizeof(rd->fail),
				 "read %s: %zd bytes from writer %u, fstat "
				 "size %lld",
				 path, n, h.writer, (long long)st.st_size);
		}
		close(fd);
	}
	pthread_mutex_lock(&ts->lock);
	ts->tcalls += ts->iters;
	ts->tenoent += enoent;
	pthread_mutex_unlock(&ts->lock);
	free(buf);
	return NULL;
}

/* The renamer: the only thread that changes t/, so it knows its state. */
static void rename_loop(struct tstate *ts, bool *in_b)
{
	struct rng rng = { seed * 31337 };
	char from[NAME_LEN], to[NAME_LEN];
	unsigned long moves = 0, swaps = 0;

	for (unsigned long i = 0; i < 2 * ts->iters; i++) {
		unsigned j = (unsigned)rng_below(&rng, NTFILES);
		unsigned k = (unsigned)rng_below(&rng, NTFILES);

		tfile_path(from, in_b[j], j);
		if (!ts->no_exchange && j != k && rng_pct(&rng, 40)) {
			/* The two names swap files; both stay occupied. */
			tfile_path(to, in_b[k], k);
			if (renameat2(AT_FDCWD, from, AT_FDCWD, to,
				      RENAME_EXCHANGE) == 0) {
				swaps++;
				continue;
			}
			if (errno != EINVAL)
				die("exchange %s %s: %s", from, to,
				    strerror(errno));
			printf("concurrency: note: RENAME_EXCHANGE not "
			       "supported here\n");
			ts->no_exchange = true;
		}
		tfile_path(to, !in_b[j], j);
		if (rename(from, to) < 0)
			die("rename %s %s: %s", from, to, strerror(errno));
		in_b[j] = !in_b[j];
		moves++;
	}
	printf("concurrency: renamer: %lu renames, %lu exchanges\n", moves,
	       swaps);
}

static void run_threads(unsigned long iters)
{
	struct tstate ts = { .iters = iters };
	struct reader readers[NTHREADS];
	unsigned char *buf = malloc(MAXFILE + 1);
	bool in_b[NTFILES] = { false }, seen[NTFILES] = { false };
	char path[NAME_LEN];
	const char *why;
	struct hdr h;
	ssize_t n;
	int fd, r;

	if (!buf)
		die("out of memory");
	pthread_mutex_init(&ts.lock, NULL);
	if (mkdir("t", 0755) < 0)
		die("mkdir t: %s", strerror(errno));
	for (unsigned k = 0; k < NTFILES; k++) {
		ts.sizes[k] = (uint32_t)(sizeof(struct hdr) + 1000 * k + 123);
		make_content(buf, TWRITER + k, 0, ts.sizes[k]);
		tfile_path(path, false, k);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, ts.sizes[k]) != ts.sizes[k] ||
		    close(fd) < 0)
			die("create %s: %s", path, strerror(errno));
	}
	for (unsigned t = 0; t < NTHREADS; t++) {
		readers[t] = (struct reader){ .ts = &ts, .id = t };
		r = pthread_create(&readers[t].thread, NULL, reader_main,
				   &readers[t]);
		if (r)
			die("pthread_create: %s", strerror(r));
	}
	rename_loop(&ts, in_b);
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(readers[t].thread, NULL);
	for (unsigned t = 0; t < NTHREADS; t++) {
		if (readers[t].fail[0])
			die("reader %u: %s", t, readers[t].fail);
	}
	/* Each file is where the renamer left it, whole, exactly once. */
	for (unsigned k = 0; k < NTFILES; k++) {
		tfile_path(path, in_b[k], k);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open %s after the renames: %s", path,
			    strerror(errno));
		n = read_all(fd, buf);
		close(fd);
		why = n < 0 ? strerror(errno)
			    : check_content(buf, (size_t)n, true, &h);
		if (why || h.writer < TWRITER || seen[h.writer - TWRITER])
			die("%s after the renames: %s (writer %u)", path,
			    why ? why : "duplicate or foreign file", h.writer);
		seen[h.writer - TWRITER] = true;
		tfile_path(path, !in_b[k], k);
		if (access(path, F_OK) == 0 || errno != ENOENT)
			die("%s exists after the renames", path);
	}
	printf("concurrency: %d readers x %lu calls, %lu ENOENT\n", NTHREADS,
	       iters, ts.tenoent);
	pthread_mutex_destroy(&ts.lock);
	free(buf);
}

/* Part 3: the final walk. */

struct entry {
	char path[NAME_LEN];
	mode_t mode; /* type and permissions */
	off_t size;
	nlink_t nlink;
	ino_t ino;
};

struct tree {
	struct entry *v;
	size_t n, cap;
};

static void walk(const char *root, const char *rel, struct tree *t)
{
	char dir[PATH_MAX], path[NAME_LEN];
	struct dirent *de;
	struct stat st;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s%s%s", root, *rel ? "/" : "", rel);
	dp = opendir(dir);
	if (!dp)
		die("opendir %s: %s", dir, strerror(errno));
	while ((errno = 0, de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "",
			     de->d_name) >= (int)sizeof(path))
			die("%s/%s: name too long", dir, de->d_name);
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			die("stat %s/%s: %s", dir, de->d_name, strerror(errno));
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 256;
			t->v = realloc(t->v, t->cap * sizeof(*t->v));
			if (!t->v)
				die("out of memory");
		}
		t->v[t->n++] = (struct entry){ .mode = st.st_mode,
					       .size = st.st_size,
					       .nlink = st.st_nlink,
					       .ino = st.st_ino };
		memcpy(t->v[t->n - 1].path, path, sizeof(path));
		if (S_ISDIR(st.st_mode))
			walk(root, path, t);
	}
	if (errno)
		die("readdir %s: %s", dir, strerror(errno));
	closedir(dp);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path,
		      ((const struct entry *)b)->path);
}

static void read_file(const char *root, const char *rel, unsigned char *buf,
		      size_t size)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	n = read_all(fd, buf);
	if (n < 0)
		die("read %s: %s", path, strerror(errno));
	if ((size_t)n != size)
		die("read %s: %zd bytes, stat says %zu", path, n, size);
	close(fd);
}

/* Index of the first entry sharing e's inode: names a hard-link group. */
static size_t group_of(const struct tree *t, size_t e)
{
	size_t k = 0;

	while (t->v[k].ino != t->v[e].ino || t->v[k].mode != t->v[e].mode)
		k++;
	return k;
}

static void check_tree(const char *bdir)
{
	struct tree m = { 0 }, b = { 0 };
	unsigned char *mbuf = malloc(MAXFILE + 1), *bbuf = malloc(MAXFILE + 1);
	struct hdr *hdrs;
	size_t files = 0, dirs = 0;
	const char *why;

	if (!mbuf || !bbuf)
		die("out of memory");
	walk(".", "", &m);
	qsort(m.v, m.n, sizeof(*m.v), entry_cmp);
	if (bdir) {
		walk(bdir, "", &b);
		qsort(b.v, b.n, sizeof(*b.v), entry_cmp);
		for (size_t k = 0; k < m.n || k < b.n; k++) {
			const struct entry *x = k < m.n ? &m.v[k] : NULL;
			const struct entry *y = k < b.n ? &b.v[k] : NULL;

			if (!x || !y || strcmp(x->path, y->path))
				die("name sets differ: mount has %s, backend "
				    "has %s",
				    x ? x->path : "(end)",
				    y ? y->path : "(end)");
			if (x->mode != y->mode || x->nlink != y->nlink ||
			    (S_ISREG(x->mode) && x->size != y->size))
				die("%s: mount says mode 0%o, %lu links, size "
				    "%lld; backend 0%o, %lu links, size %lld",
				    x->path, (unsigned)x->mode,
				    (unsigned long)x->nlink, (long long)x->size,
				    (unsigned)y->mode, (unsigned long)y->nlink,
				    (long long)y->size);
			if (group_of(&m, k) != group_of(&b, k))
				die("%s: hard links differ: mount groups it "
				    "with %s, backend with %s",
				    x->path, m.v[group_of(&m, k)].path,
				    b.v[group_of(&b, k)].path);
		}
	}
	hdrs = calloc(m.n ? m.n : 1, sizeof(*hdrs));
	if (!hdrs)
		die("out of memory");
	for (size_t k = 0; k < m.n; k++) {
		const struct entry *e = &m.v[k];

		if (S_ISDIR(e->mode)) {
			dirs++;
			continue;
		}
		if (!S_ISREG(e->mode) || (size_t)e->size > MAXFILE)
			die("%s: mode 0%o, size %lld", e->path,
			    (unsigned)e->mode, (long long)e->size);
		files++;
		read_file(".", e->path, mbuf, (size_t)e->size);
		why = check_content(mbuf, (size_t)e->size, true, &hdrs[k]);
		if (why)
			die("%s: %s (writer %u serial %u)", e->path, why,
			    hdrs[k].writer, hdrs[k].serial);
		if (bdir) {
			read_file(bdir, e->path, bbuf, (size_t)e->size);
			if (memcmp(mbuf, bbuf, (size_t)e->size))
				die("%s: the mount and the backend hold "
				    "different bytes",
				    e->path);
		}
		/* One write made one file: equal headers mean one inode. */
		for (size_t j = 0; j < k; j++) {
			if (S_ISREG(m.v[j].mode) &&
			    hdrs[j].writer == hdrs[k].writer &&
			    hdrs[j].serial == hdrs[k].serial &&
			    m.v[j].ino != e->ino)
				die("%s and %s hold the same write but are "
				    "different files",
				    m.v[j].path, e->path);
		}
	}
	printf("concurrency: final tree: %zu files, %zu directories%s\n", files,
	       dirs, bdir ? ", identical in the backend" : "");
	free(hdrs);
	free(m.v);
	free(b.v);
	free(mbuf);
	free(bbuf);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		die("remove %s: %s", path, strerror(errno));
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: concurrency [-s SEED] [-n ITERATIONS] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t iters = DEFAULT_ITERS;
	char work[PATH_MAX], name[NAME_LEN], *bdir;
	double t0 = now_seconds();
	int c;

	seed = seed_from_clock();
	while ((c = getopt(argc, argv, "s:n:")) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, &seed) < 0)
				usage();
			break;
		case 'n':
			if (parse_u64(optarg, &iters) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (snprintf(work, sizeof(work), "%s/concurrency.%d", argv[optind],
		     (int)getpid()) >= (int)sizeof(work))
		die("%s: path too long", argv[optind]);
	if (mkdir(work, 0755) < 0)
		die("mkdir %s: %s", work, strerror(errno));
	bdir = backend_dir(work);
	printf("concurrency: seed %llu, work directory %s%s%s\n",
	       (unsigned long long)seed, work, bdir ? ", backend " : "",
	       bdir ? bdir : "");
	if (chdir(work) < 0)
		die("chdir %s: %s", work, strerror(errno));
	for (int k = 0; k < NTOP; k++) {
		snprintf(name, sizeof(name), "d%d", k);
		if (mkdir(name, 0755) < 0)
			die("mkdir %s: %s", name, strerror(errno));
	}
	run_children((unsigned long)iters);
	printf("concurrency: children done, %.1f s\n", now_seconds() - t0);
	check_tree(bdir);
	run_threads((unsigned long)iters);
	printf("concurrency: threads done, %.1f s\n", now_seconds() - t0);
	check_tree(bdir);
	if (chdir("/") < 0 ||
	    nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		die("cannot remove %s", work);
	printf("concurrency: ok, %.1f s\n", now_seconds() - t0);
	free(bdir);
	return 0;
}
