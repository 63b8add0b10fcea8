// SPDX-License-Identifier: MIT
/*
 * integrity [-s SEED] [-n OPS] DIR
 *
 * A data-integrity exerciser in the spirit of fsx.  A few files in DIR are
 * each shadowed by an in-memory model of their contents; random writes,
 * reads, mmap reads, truncations, fallocate calls (plain, keep-size and
 * hole punching), fsyncs and reopens are applied to both, and every read
 * is compared with the model.  The run is made twice: once through
 * buffered descriptors, once with O_DIRECT writes and reads (aligned to
 * 4 KiB) mixed with buffered and mmap access to the same files, which the
 * kernel keeps coherent.
 *
 * After each pass every file is checked whole through a fresh descriptor,
 * and, when CACHEFS_BACKEND is set (with-mount sets it), straight from the
 * backend directory, which must hold exactly the same bytes.
 *
 * The seed is printed; -s SEED replays a run.  On the first mismatch the
 * tail of the operation log, the offset and the expected and actual bytes
 * are printed and the exit status is 1.  Exit status 2: bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stress.h"

#define NFILES 4
#define MAXLEN (1u << 20) /* every file stays below this size */
#define MAXIO (128u << 10)
#define SMALLIO 4096u
#define ALIGN 4096u /* O_DIRECT offsets, lengths and buffers */
#define LOGLEN 32   /* operations shown on failure */
#define DEFAULT_OPS 40000

enum op_kind {
	OP_WRITE,
	OP_READ,
	OP_MMAP_READ,
	OP_TRUNCATE,
	OP_FALLOC,
	OP_FALLOC_KEEP,
	OP_PUNCH,
	OP_FSYNC,
	OP_REOPEN,
	OP_STAT,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	[OP_WRITE] = "write",	      [OP_READ] = "read",
	[OP_MMAP_READ] = "mmap-read", [OP_TRUNCATE] = "truncate",
	[OP_FALLOC] = "fallocate",    [OP_FALLOC_KEEP] = "falloc-keep",
	[OP_PUNCH] = "punch-hole",    [OP_FSYNC] = "fsync",
	[OP_REOPEN] = "reopen",	      [OP_STAT] = "stat",
};

static const unsigned op_weights[OP_COUNT] = {
	[OP_WRITE] = 30,   [OP_READ] = 25,  [OP_MMAP_READ] = 10,
	[OP_TRUNCATE] = 8, [OP_FALLOC] = 4, [OP_FALLOC_KEEP] = 3,
	[OP_PUNCH] = 5,	   [OP_FSYNC] = 2,  [OP_REOPEN] = 3,
	[OP_STAT] = 5,
};

/* How an operation reached the file. */
enum via {
	VIA_DIRECT = 'd', /* the O_DIRECT descriptor */
	VIA_BUF = 'b',	  /* a buffered descriptor */
	VIA_MMAP = 'm',
	VIA_PATH = 'p',
};

struct tfile {
	char name[32];
	char path[PATH_MAX];
	char bpath[PATH_MAX]; /* the backend's copy, or "" */
	int fd;		      /* O_DIRECT in the direct pass, else buffered */
	int bfd;	      /* a second, always buffered descriptor */
	unsigned char *model; /* MAXLEN bytes, all zero from size on */
	size_t size;
};

struct log_entry {
	unsigned long opno;
	int file;
	enum op_kind op;
	char via;
	const char *note;
	uint64_t off, len;
	size_t size_after;
};

static struct {
	uint64_t seed, ops;
	struct rng rng;
	const char *pass;
	bool direct;
	unsigned long opno;
	struct log_entry log[LOGLEN];
	unsigned long nlog;
	unsigned char *wbuf, *rbuf;
	bool no_falloc[OP_COUNT]; /* mode reported EOPNOTSUPP */
	unsigned long counts[OP_COUNT];
	size_t pagesize;
} g;

static void print_log(void)
{
	unsigned long k = g.nlog > LOGLEN ? g.nlog - LOGLEN : 0;

	fprintf(stderr, "last %lu operations (seed %llu, %s pass):\n",
		g.nlog - k, (unsigned long long)g.seed, g.pass);
	for (; k < g.nlog; k++) {
		const struct log_entry *e = &g.log[k % LOGLEN];

		fprintf(stderr,
			"  #%-6lu f%d %-11s via %c off %8llu (0x%06llx) "
			"len %7llu%s%s -> size %zu\n",
			e->opno, e->file, op_names[e->op], e->via,
			(unsigned long long)e->off, (unsigned long long)e->off,
			(unsigned long long)e->len, e->note ? " " : "",
			e->note ? e->note : "", e->size_after);
	}
}

static void fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "integrity: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_log();
	fprintf(stderr, "replay with: integrity -s %llu -n %llu DIR\n",
		(unsigned long long)g.seed, (unsigned long long)g.ops);
	exit(1);
}

static struct log_entry *log_op(int file, enum op_kind op, char via,
				uint64_t off, uint64_t len)
{
	struct log_entry *e = &g.log[g.nlog++ % LOGLEN];

	*e = (struct log_entry){ .opno = g.opno,
				 .file = file,
				 .op = op,
				 .via = via,
				 .off = off,
				 .len = len };
	g.counts[op]++;
	return e;
}

static void dump_bytes(const char *label, const unsigned char *p, size_t n)
{
	fprintf(stderr, "  %-8s", label);
	for (size_t k = 0; k < n; k++)
		fprintf(stderr, " %02x", p[k]);
	fputc('\n', stderr);
}

/* Show what the backend holds at off, to tell stale caches from lost data. */
static void dump_backend(const struct tfile *f, uint64_t off, size_t n)
{
	unsigned char buf[16];
	ssize_t r = -1;
	int fd;

	if (!f->bpath[0])
		return;
	fd = open(f->bpath, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = pread(fd, buf, n, (off_t)off);
		close(fd);
	}
	if (r < 0)
		fprintf(stderr, "  backend: %s\n", strerror(errno));
	else
		dump_bytes("backend", buf, (size_t)r);
}

/* got[0..len) was read from file offset off; it must match the model. */
static void compare(const struct tfile *f, const char *what, uint64_t off,
		    const unsigned char *got, size_t len)
{
	const unsigned char *exp = f->model + off;
	size_t first, last, bad = 0, n;

	if (memcmp(got, exp, len) == 0)
		return;
	for (first = 0; got[first] == exp[first]; first++)
		;
	for (last = len - 1; got[last] == exp[last]; last--)
		;
	for (size_t k = first; k <= last; k++)
		bad += got[k] != exp[k];
	fprintf(stderr,
		"integrity: %s: %s of %zu bytes at %llu: first mismatch at "
		"offset %llu (0x%llx), last at %llu; %zu bytes differ; "
		"file size %zu\n",
		f->name, what, len, (unsigned long long)off,
		(unsigned long long)(off + first),
		(unsigned long long)(off + first),
		(unsigned long long)(off + last), bad, f->size);
	n = len - first < 16 ? len - first : 16;
	dump_bytes("expected", exp + first, n);
	dump_bytes("got", got + first, n);
	dump_backend(f, off + first, n);
	fail("%s: data mismatch at offset %llu", f->name,
	     (unsigned long long)(off + first));
}

static int open_file(const struct tfile *f, bool direct, int extra)
{
	int flags = O_RDWR | O_CLOEXEC | extra | (direct ? O_DIRECT : 0);
	int fd = open(f->path, flags, 0644);

	if (fd < 0)
		fail("%s: open%s: %s", f->path, direct ? " O_DIRECT" : "",
		     strerror(errno));
	return fd;
}

static void model_resize(struct tfile *f, size_t size)
{
	if (size < f->size)
		memset(f->model + size, 0, f->size - size);
	f->size = size;
}

/* A random byte range inside [0, MAXLEN); aligned for O_DIRECT. */
static void pick_range(const struct tfile *f, bool aligned, uint64_t *off,
		       uint64_t *len)
{
	uint64_t maxio = rng_pct(&g.rng, 50) ? SMALLIO : MAXIO;
	uint64_t o, l;

	if (rng_pct(&g.rng, 45))
		o = rng_below(&g.rng, f->size + 1); /* within the data */
	else if (rng_pct(&g.rng, 30))
		o = f->size + rng_below(&g.rng, 4 * SMALLIO); /* near EOF */
	else
		o = rng_below(&g.rng, MAXLEN);
	if (o >= MAXLEN)
		o = rng_below(&g.rng, MAXLEN);
	l = 1 + rng_below(&g.rng, maxio);
	if (aligned) {
		o &= ~(uint64_t)(ALIGN - 1);
		l = (l + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	}
	if (o + l > MAXLEN)
		l = MAXLEN - o;
	*off = o;
	*len = l;
}

/*
 * A buffered descriptor: either one in the buffered pass, the second one
 * in the direct pass.
 */
static int buffered_fd(const struct tfile *f)
{
	return g.direct || rng_pct(&g.rng, 50) ? f->bfd : f->fd;
}

static void do_write(struct tfile *f, int k)
{
	bool direct = g.direct && rng_pct(&g.rng, 85);
	int fd = direct ? f->fd : buffered_fd(f);
	struct log_entry *e;
	uint64_t off, len;
	ssize_t n;

	pick_range(f, direct, &off, &len);
	e = log_op(k, OP_WRITE, direct ? VIA_DIRECT : VIA_BUF, off, len);
	rng_fill(&g.rng, g.wbuf, len);
	n = pwrite(fd, g.wbuf, len, (off_t)off);
	if (n < 0)
		fail("%s: pwrite(%llu, %llu): %s", f->name,
		     (unsigned long long)off, (unsigned long long)len,
		     strerror(errno));
	if ((uint64_t)n != len)
		fail("%s: short pwrite at %llu: %zd of %llu bytes", f->name,
		     (unsigned long long)off, n, (unsigned long long)len);
	memcpy(f->model + off, g.wbuf, len);
	if (off + len > f->size)
		f->size = off + len;
	e->size_after = f->size;
}

static void do_read(struct tfile *f, int k)
{
	bool direct = g.direct && rng_pct(&g.rng, 60);
	int fd = direct ? f->fd : buffered_fd(f);
	struct log_entry *e;
	uint64_t off, len, want;
	ssize_t n;

	pick_range(f, direct, &off, &len);
	e = log_op(k, OP_READ, direct ? VIA_DIRECT : VIA_BUF, off, len);
	e->size_after = f->size;
	/* Any leftover bytes from an earlier read must not pass for data. */
	memset(g.rbuf, 0xa5, len);
	n = pread(fd, g.rbuf, len, (off_t)off);
	if (n < 0)
		fail("%s: pread(%llu, %llu): %s", f->name,
		     (unsigned long long)off, (unsigned long long)len,
		     strerror(errno));
	want = off >= f->size ? 0 : f->size - off;
	if (want > len)
		want = len;
	if ((uint64_t)n != want)
		fail("%s: pread at %llu of %llu bytes returned %zd, expected "
		     "%llu (file size %zu)",
		     f->name, (unsigned long long)off, (unsigned long long)len,
		     n, (unsigned long long)want, f->size);
	compare(f, "pread", off, g.rbuf, (size_t)n);
}

static void do_mmap_read(struct tfile *f, int k)
{
	int fd = rng_pct(&g.rng, 50) ? f->fd : f->bfd;
	struct log_entry *e;
	uint64_t off, len, maplen;
	void *p;

	if (f->size == 0) {
		e = log_op(k, OP_MMAP_READ, VIA_MMAP, 0, 0);
		e->note = "(empty, skipped)";
		return;
	}
	off = rng_below(&g.rng, f->size) & ~(uint64_t)(g.pagesize - 1);
	len = f->size - off;
	if (len > MAXIO)
		len = MAXIO;
	if (rng_pct(&g.rng, 60))
		len = 1 + rng_below(&g.rng, len);
	/*
	 * A mapping that reaches EOF covers the whole last page, whose part
	 * past EOF must read as zeros.
	 */
	maplen = len;
	if (off + len == f->size)
		maplen = (len + g.pagesize - 1) & ~(uint64_t)(g.pagesize - 1);
	e = log_op(k, OP_MMAP_READ, VIA_MMAP, off, maplen);
	e->size_after = f->size;
	p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, (off_t)off);
	if (p == MAP_FAILED)
		fail("%s: mmap(%llu, %llu): %s", f->name,
		     (unsigned long long)off, (unsigned long long)maplen,
		     strerror(errno));
	compare(f, "mmap read", off, p, maplen);
	if (munmap(p, maplen) < 0)
		fail("%s: munmap: %s", f->name, strerror(errno));
}

static void do_truncate(struct tfile *f, int k)
{
	int fd = rng_pct(&g.rng, 50) ? f->fd : f->bfd;
	struct log_entry *e;
	uint64_t size;

	if (rng_pct(&g.rng, 50))
		size = rng_below(&g.rng, f->size + 1); /* down */
	else if (rng_pct(&g.rng, 70))
		size = f->size + rng_below(&g.rng, 16 * SMALLIO); /* up */
	else
		size = rng_below(&g.rng, MAXLEN + 1);
	if (size > MAXLEN)
		size = MAXLEN;
	if (g.direct && rng_pct(&g.rng, 50))
		size &= ~(uint64_t)(ALIGN - 1);
	e = log_op(k, OP_TRUNCATE,
		   fd == f->fd && g.direct ? VIA_DIRECT : VIA_BUF, size, 0);
	if (ftruncate(fd, (off_t)size) < 0)
		fail("%s: ftruncate(%llu): %s", f->name,
		     (unsigned long long)size, strerror(errno));
	model_resize(f, size);
	e->size_after = f->size;
}

static void do_fallocate(struct tfile *f, int k, enum op_kind op)
{
	static const int modes[OP_COUNT] = {
		[OP_FALLOC_KEEP] = FALLOC_FL_KEEP_SIZE,
		[OP_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	};
	int fd = rng_pct(&g.rng, 50) ? f->fd : f->bfd;
	struct log_entry *e;
	uint64_t off, len;

	pick_range(f, g.direct && rng_pct(&g.rng, 50), &off, &len);
	e = log_op(k, op, fd == f->fd && g.direct ? VIA_DIRECT : VIA_BUF, off,
		   len);
	if (g.no_falloc[op]) {
		e->note = "(unsupported, skipped)";
		e->size_after = f->size;
		return;
	}
	if (fallocate(fd, modes[op], (off_t)off, (off_t)len) < 0) {
		if (errno == EOPNOTSUPP) {
			fprintf(stderr,
				"integrity: note: %s not supported "
				"here; skipping it\n",
				op_names[op]);
			g.no_falloc[op] = true;
			e->size_after = f->size;
			return;
		}
		fail("%s: %s(%llu, %llu): %s", f->name, op_names[op],
		     (unsigned long long)off, (unsigned long long)len,
		     strerror(errno));
	}
	if (op == OP_FALLOC && off + len > f->size)
		f->size = off + len; /* new bytes read as zeros */
	if (op == OP_PUNCH && off < f->size) {
		uint64_t end = off + len < f->size ? off + len : f->size;

		memset(f->model + off, 0, end - off);
	}
	e->size_after = f->size;
}

static void do_fsync(struct tfile *f, int k)
{
	int fd = rng_pct(&g.rng, 50) ? f->fd : f->bfd;
	bool data = rng_pct(&g.rng, 50);
	struct log_entry *e = log_op(k, OP_FSYNC, VIA_BUF, 0, 0);

	e->note = data ? "(fdatasync)" : "(fsync)";
	e->size_after = f->size;
	if ((data ? fdatasync(fd) : fsync(fd)) < 0)
		fail("%s: %s: %s", f->name, data ? "fdatasync" : "fsync",
		     strerror(errno));
}

static void do_reopen(struct tfile *f, int k)
{
	bool trunc = rng_pct(&g.rng, 10);
	struct log_entry *e = log_op(k, OP_REOPEN, VIA_PATH, 0, 0);

	e->note = trunc ? "(O_TRUNC)" : NULL;
	if (close(f->fd) < 0 || close(f->bfd) < 0)
		fail("%s: close: %s", f->name, strerror(errno));
	f->fd = open_file(f, g.direct, trunc ? O_TRUNC : 0);
	f->bfd = open_file(f, false, 0);
	if (trunc)
		model_resize(f, 0);
	e->size_after = f->size;
}

static void check_size(const struct tfile *f, const char *how,
		       const struct stat *st)
{
	if ((uint64_t)st->st_size != f->size)
		fail("%s: %s reports size %lld, expected %zu", f->name, how,
		     (long long)st->st_size, f->size);
	if (!S_ISREG(st->st_mode))
		fail("%s: %s reports mode 0%o", f->name, how,
		     (unsigned)st->st_mode);
}

static void do_stat(struct tfile *f, int k)
{
	struct log_entry *e = log_op(k, OP_STAT, VIA_PATH, 0, 0);
	struct stat st;

	e->size_after = f->size;
	if (fstat(f->fd, &st) < 0)
		fail("%s: fstat: %s", f->name, strerror(errno));
	check_size(f, "fstat", &st);
	if (fstat(f->bfd, &st) < 0)
		fail("%s: fstat: %s", f->name, strerror(errno));
	check_size(f, "fstat (buffered descriptor)", &st);
	if (stat(f->path, &st) < 0)
		fail("%s: stat: %s", f->name, strerror(errno));
	check_size(f, "stat", &st);
}

static enum op_kind pick_op(void)
{
	unsigned total = 0, r;
	int op;

	for (op = 0; op < OP_COUNT; op++)
		total += op_weights[op];
	r = (unsigned)rng_below(&g.rng, total);
	for (op = 0; r >= op_weights[op]; op++)
		r -= op_weights[op];
	return (enum op_kind)op;
}

static void do_op(struct tfile *files)
{
	int k = (int)rng_below(&g.rng, NFILES);
	struct tfile *f = &files[k];
	enum op_kind op = pick_op();

	switch (op) {
	case OP_WRITE:
		do_write(f, k);
		break;
	case OP_READ:
		do_read(f, k);
		break;
	case OP_MMAP_READ:
		do_mmap_read(f, k);
		break;
	case OP_TRUNCATE:
		do_truncate(f, k);
		break;
	case OP_FALLOC:
	case OP_FALLOC_KEEP:
	case OP_PUNCH:
		do_fallocate(f, k, op);
		break;
	case OP_FSYNC:
		do_fsync(f, k);
		break;
	case OP_REOPEN:
		do_reopen(f, k);
		break;
	case OP_STAT:
	case OP_COUNT:
		do_stat(f, k);
		break;
	}
}

/* Read path whole through a new descriptor; it must equal f's model. */
static void verify_whole(const struct tfile *f, const char *path,
			 const char *how)
{
	struct stat st;
	char what[64];
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("%s: %s: open %s: %s", f->name, how, path,
		     strerror(errno));
	if (fstat(fd, &st) < 0)
		fail("%s: %s: fstat: %s", f->name, how, strerror(errno));
	check_size(f, how, &st);
	snprintf(what, sizeof(what), "read (%s)", how);
	for (;;) {
		n = pread(fd, g.rbuf, MAXIO, (off_t)off);
		if (n < 0)
			fail("%s: %s: pread at %zu: %s", f->name, how, off,
			     strerror(errno));
		if (n == 0)
			break;
		if (off + (size_t)n > f->size)
			fail("%s: %s: %zd bytes read at %zu, past the expected "
			     "size %zu",
			     f->name, how, n, off, f->size);
		compare(f, what, off, g.rbuf, (size_t)n);
		off += (size_t)n;
	}
	if (off != f->size)
		fail("%s: %s: read %zu bytes, expected %zu", f->name, how, off,
		     f->size);
	close(fd);
}

static void run_pass(const char *dir, const char *bdir, bool direct,
		     unsigned long nops)
{
	struct tfile files[NFILES];
	int k;

	g.pass = direct ? "O_DIRECT" : "buffered";
	g.direct = direct;
	g.rng.s = g.seed ^ (direct ? 0x5eedd1ec7ULL : 0);
	for (k = 0; k < NFILES; k++) {
		struct tfile *f = &files[k];

		snprintf(f->name, sizeof(f->name), "integrity.%s.%d",
			 direct ? "direct" : "buffered", k);
		if (snprintf(f->path, sizeof(f->path), "%s/%s", dir, f->name) >=
			    (int)sizeof(f->path) ||
		    snprintf(f->bpath, sizeof(f->bpath), "%s%s%s",
			     bdir ? bdir : "", bdir ? "/" : "",
			     bdir ? f->name : "") >= (int)sizeof(f->bpath))
			fail("%s: path too long", dir);
		f->model = calloc(1, MAXLEN);
		if (!f->model)
			fail("out of memory");
		f->size = 0;
		f->fd = open_file(f, direct, O_CREAT | O_TRUNC);
		f->bfd = open_file(f, false, 0);
	}
	for (unsigned long i = 0; i < nops; i++, g.opno++)
		do_op(files);
	for (k = 0; k < NFILES; k++) {
		if (close(files[k].fd) < 0 || close(files[k].bfd) < 0)
			fail("%s: close: %s", files[k].name, strerror(errno));
	}
	for (k = 0; k < NFILES; k++) {
		verify_whole(&files[k], files[k].path, "fresh open");
		if (bdir)
			verify_whole(&files[k], files[k].bpath, "backend");
	}
	for (k = 0; k < NFILES; k++) {
		if (unlink(files[k].path) < 0)
			fail("%s: unlink: %s", files[k].name, strerror(errno));
		free(files[k].model);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: integrity [-s SEED] [-n OPS] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double t0;
	char *bdir;
	int c;

	g.seed = seed_from_clock();
	g.ops = DEFAULT_OPS;
	while ((c = getopt(argc, argv, "s:n:")) != -1) {
		switch (c) {
		case 's':
			if (parse_u64(optarg, &g.seed) < 0)
				usage();
			break;
		case 'n':
			if (parse_u64(optarg, &g.ops) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	g.pagesize = (size_t)sysconf(_SC_PAGESIZE);
	if (posix_memalign((void **)&g.wbuf, ALIGN, MAXIO) ||
	    posix_memalign((void **)&g.rbuf, ALIGN, MAXIO))
		fail("out of memory");
	bdir = backend_dir(argv[optind]);
	printf("integrity: seed %llu, %llu operations, %d files in %s%s%s\n",
	       (unsigned long long)g.seed, (unsigned long long)g.ops, NFILES,
	       argv[optind], bdir ? ", backend " : "", bdir ? bdir : "");
	t0 = now_seconds();
	run_pass(argv[optind], bdir, false, (unsigned long)(g.ops - g.ops / 2));
	printf("integrity: buffered pass done, %.1f s\n", now_seconds() - t0);
	run_pass(argv[optind], bdir, true, (unsigned long)(g.ops / 2));
	printf("integrity: O_DIRECT pass done, %.1f s\n", now_seconds() - t0);
	printf("integrity: ok:");
	for (int op = 0; op < OP_COUNT; op++)
		printf(" %s %lu", op_names[op], g.counts[op]);
	printf("\n");
	free(bdir);
	free(g.wbuf);
	free(g.rbuf);
	return 0;
}
