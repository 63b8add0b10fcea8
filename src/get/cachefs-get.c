// SPDX-License-Identifier: MIT
/*
 * cachefs-get: copy a file from a remote cachefs over RDMA (libcachefs),
 * or measure how fast it comes (--bench).
 *
 *	cachefs-get [OPTIONS] HOST:PORT PATH [OUT]
 *
 * Reads go in flight --depth at a time, --block bytes each, into one
 * registered buffer (no copy on this side); completed blocks are written
 * out in order.  See cachefs-get(1).
 */
#include <cachefs/client.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CACHEFS_VERSION
#define CACHEFS_VERSION "unknown"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define SECRET_MAX 256
#define DEPTH_MAX 1024

static struct {
	const char *provider;
	const char *secret_file;
	size_t block;
	unsigned depth;
	int timeout_ms;
	bool busy_poll;
	bool quiet;
	bool bench;
	unsigned repeat;
	uint64_t length; /* UINT64_MAX: the whole file */
} opt = {
	.block = 1 << 20,
	.depth = 16,
	.repeat = 3,
	.length = UINT64_MAX,
};

static const char *address, *path;
static volatile sig_atomic_t interrupted;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cachefs-get [OPTIONS] HOST:PORT PATH [OUT]\n"
		"       cachefs-get --bench [OPTIONS] HOST:PORT PATH\n"
		"\n"
		"Copy PATH, relative to the root of a cachefs mounted with "
		"-o rdma=PORT\n"
		"at HOST, to OUT (standard output if absent or -), over "
		"RDMA.\n"
		"\n"
		"  -p, --provider NAME     libfabric provider (default: "
		"verbs, then tcp)\n"
		"  -s, --secret-file FILE  the mount's rdma_secret_file\n"
		"  -b, --block SIZE        bytes per read (default 1M; K, M "
		"suffixes)\n"
		"  -d, --depth N           reads in flight (default 16)\n"
		"  -l, --length SIZE       only the first SIZE bytes\n"
		"  -t, --timeout SECONDS   give up on a silent server (default "
		"5)\n"
		"      --busy-poll         poll for completions instead of "
		"sleeping\n"
		"  -q, --quiet             no progress bar\n"
		"      --bench             read, discard, and print the "
		"bandwidth\n"
		"  -r, --repeat N          --bench: runs, the median printed "
		"(default 3)\n"
		"  -h, --help              this help\n"
		"  -V, --version           the version\n"
		"\n"
		"Exit status: 0 done, 1 failed, 2 usage error.  See "
		"cachefs-get(1).\n");
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "cachefs-get: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see cachefs-get --help)\n");
	exit(EXIT_USAGE);
}

/* Bytes, with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMG";
	const char *u;
	char *end;
	unsigned long long n;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end && (u = strchr(units, toupper((unsigned char)*end)))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || n > UINT64_MAX >> shift)
		return false;
	*out = n << shift;
	return true;
}

static unsigned parse_uint(const char *s, const char *what, unsigned max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || *s < '0' || *s > '9' || n < 1 || n > max)
		usage_error(what, s);
	return (unsigned)n;
}

static void parse_args(int argc, char **argv)
{
	enum { O_BENCH = 256, O_BUSY };
	static const struct option lo[] = {
		{ "provider", required_argument, 0, 'p' },
		{ "secret-file", required_argument, 0, 's' },
		{ "block", required_argument, 0, 'b' },
		{ "depth", required_argument, 0, 'd' },
		{ "length", required_argument, 0, 'l' },
		{ "timeout", required_argument, 0, 't' },
		{ "busy-poll", no_argument, 0, O_BUSY },
		{ "quiet", no_argument, 0, 'q' },
		{ "bench", no_argument, 0, O_BENCH },
		{ "repeat", required_argument, 0, 'r' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0 },
	};
	uint64_t v;
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":p:s:b:d:l:t:qr:hV", lo, NULL)) !=
	       -1) {
		switch (o) {
		case 'p':
			opt.provider = optarg;
			break;
		case 's':
			opt.secret_file = optarg;
			break;
		case 'b':
			if (!parse_size(optarg, &v) || !v || v > (1u << 30))
				usage_error("bad block size '%s'", optarg);
			opt.block = (size_t)v;
			break;
		case 'd':
			opt.depth =
				parse_uint(optarg, "bad depth '%s'", DEPTH_MAX);
			break;
		case 'l':
			if (!parse_size(optarg, &opt.length))
				usage_error("bad length '%s'", optarg);
			break;
		case 't':
			opt.timeout_ms =
				(int)parse_uint(optarg, "bad timeout '%s'",
						86400) *
				1000;
			break;
		case O_BUSY:
			opt.busy_poll = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case O_BENCH:
			opt.bench = true;
			break;
		case 'r':
			opt.repeat =
				parse_uint(optarg, "bad repeat '%s'", 1000);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("cachefs-get %s\n", CACHEFS_VERSION);
			exit(0);
		case ':':
			usage_error("option '%s' needs a value",
				    argv[optind - 1]);
			break;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind < 2 || argc - optind > (opt.bench ? 2 : 3)) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
	address = argv[optind];
	path = argv[optind + 1];
}

/* The secret, as the daemon reads rdma_secret_file. */
static size_t read_secret(const char *file, unsigned char *buf)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "cachefs-get: %s: %s\n", file, strerror(errno));
		exit(EXIT_FAIL);
	}
	n = read(fd, buf, SECRET_MAX);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n <= 0) {
		fprintf(stderr, "cachefs-get: %s: %s\n", file,
			n < 0 ? strerror(errno) : "empty");
		exit(EXIT_FAIL);
	}
	return (size_t)n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *buf, size_t len, double b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

/* The progress bar, on a terminal, at most ten times a second. */
static void show_progress(uint64_t done, uint64_t total, double t0, bool final)
{
	static double last;
	double t = now_s(), rate;
	char a[32], b[32];
	int width = 30, fill;

	if (opt.quiet || !isatty(STDERR_FILENO) || (!final && t - last < 0.1))
		return;
	last = t;
	rate = t > t0 ? (double)done / (t - t0) / 1e6 : 0;
	fill = total ? (int)((double)done / (double)total * width) : width;
	human(a, sizeof(a), (double)done);
	human(b, sizeof(b), (double)total);
	fprintf(stderr, "\r[%-*.*s] %5.1f%%  %s of %s  %.1f MB/s ", width, fill,
		"##############################",
		total ? 100.0 * (double)done / (double)total : 100.0, a, b,
		rate);
	if (final)
		fputc('\n', stderr);
}

static int die(struct cachefs_client *c, const char *what, int r)
{
	fprintf(stderr, "cachefs-get: %s: %s\n", what,
		c ? cachefs_client_error(c) : strerror(-r));
	return EXIT_FAIL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read [0, size) of fh, depth blocks in flight, handing each to out (in
 * order) unless out is -1.  Returns the bytes read (fewer at a premature
 * end of the file) or a negative errno; *wfail tells a write failed.
 */
static int64_t transfer(struct cachefs_client *c, int fh, uint8_t *arena,
			uint64_t size, int out, bool *wfail)
{
	size_t block = opt.block;
	unsigned depth = opt.depth;
	uint64_t nblocks = (size + block - 1) / block, sub = 0, wr = 0;
	ssize_t got[DEPTH_MAX];
	bool ready[DEPTH_MAX] = { false };
	struct cachefs_client_completion done[DEPTH_MAX];
	uint64_t bytes = 0, end = nblocks;
	double t0 = now_s();
	int n, r;

	*wfail = false;
	while (wr < end) {
		while (sub < end && sub - wr < depth) {
			uint64_t off = sub * block;
			size_t len = size - off < block ? (size_t)(size - off)
							: block;

			r = cachefs_client_submit(
				c, fh, arena + (sub % depth) * block, len, off,
				(void *)(uintptr_t)sub);
			if (r == -EAGAIN)
				break;
			if (r < 0)
				return r;
			sub++;
		}
		n = cachefs_client_complete(c, done, DEPTH_MAX, -1);
		if (n < 0)
			return n;
		for (int k = 0; k < n; k++) {
			uint64_t b = (uint64_t)(uintptr_t)done[k].user;

			if (done[k].result < 0)
				return done[k].result;
			got[b % depth] = done[k].result;
			ready[b % depth] = true;
		}
		while (wr < end && ready[wr % depth]) {
			uint64_t off = wr * block;
			size_t want = size - off < block ? (size_t)(size - off)
							 : block;
			ssize_t g = got[wr % depth];

			ready[wr % depth] = false;
			if (out >= 0 &&
			    write_all(out, arena + (wr % depth) * block,
				      (size_t)g) < 0) {
				*wfail = true;
				return -errno;
			}
			bytes += (uint64_t)g;
			wr++;
			if ((size_t)g < want) /* the file got shorter */
				end = wr;
		}
		show_progress(bytes, size, t0, false);
		if (interrupted)
			return -EINTR;
	}
	/* what is still in flight past a premature end */
	while (cachefs_client_in_flight(c) &&
	       cachefs_client_complete(c, done, DEPTH_MAX, -1) > 0)
		;
	show_progress(bytes, size, t0, true);
	return (int64_t)bytes;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(struct cachefs_client *c, int fh, uint8_t *arena,
		 uint64_t size)
{
	double *mbs = calloc(opt.repeat, sizeof(*mbs));
	bool wfail;

	if (!mbs)
		return die(NULL, "bench", -ENOMEM);
	opt.quiet = true;
	for (unsigned k = 0; k < opt.repeat; k++) {
		double t0 = now_s(), t;
		int64_t n = transfer(c, fh, arena, size, -1, &wfail);

		t = now_s() - t0;
		if (n < 0) {
			free(mbs);
			return die(c, path, (int)n);
		}
		mbs[k] = t > 0 ? (double)n / t / 1e6 : 0;
	}
	qsort(mbs, opt.repeat, sizeof(*mbs), cmp_double);
	printf("%s: %" PRIu64 " bytes, block %zu, depth %u, %s: %.1f MB/s "
	       "(median of %u; %.1f to %.1f)\n",
	       path, size, opt.block, opt.depth, cachefs_client_provider(c),
	       mbs[opt.repeat / 2], opt.repeat, mbs[0], mbs[opt.repeat - 1]);
	free(mbs);
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int main(int argc, char **argv)
{
	unsigned char secret[SECRET_MAX];
	struct cachefs_client_opts co = { 0 };
	struct cachefs_client *c = NULL;
	struct cachefs_client_mr *mr = NULL;
	const char *outpath;
	uint8_t *arena = NULL;
	struct stat st;
	char err[256];
	uint64_t size;
	int64_t n;
	int fh, out = STDOUT_FILENO, r, ret = EXIT_FAIL;
	bool wfail;

	parse_args(argc, argv);
	outpath = optind + 2 < argc ? argv[optind + 2] : "-";
	co.provider = opt.provider;
	co.timeout_ms = opt.timeout_ms;
	co.busy_poll = opt.busy_poll;
	if (opt.secret_file) {
		co.secret = secret;
		co.secret_len = read_secret(opt.secret_file, secret);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	r = cachefs_client_connect(address, &co, &c, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "cachefs-get: %s: %s\n", address, err);
		return EXIT_FAIL;
	}
	if (opt.block > cachefs_client_max_read(c))
		opt.block = cachefs_client_max_read(c);
	if (opt.depth > cachefs_client_max_requests(c))
		opt.depth = cachefs_client_max_requests(c);
	fh = cachefs_client_open(c, path, &st);
	if (fh < 0) {
		fprintf(stderr, "cachefs-get: %s: %s%s\n", path,
			cachefs_client_error(c),
			fh == -EACCES && path[0] == '/'
				? " (paths are relative to the mount's root)"
				: "");
		goto out;
	}
	size = (uint64_t)st.st_size < opt.length ? (uint64_t)st.st_size
						 : opt.length;
	arena = aligned_alloc(4096, ((size_t)opt.depth * opt.block + 4095) /
					    4096 * 4096);
	if (!arena) {
		die(NULL, "memory", -ENOMEM);
		goto out;
	}
	r = cachefs_client_register(c, arena, (size_t)opt.depth * opt.block,
				    &mr);
	if (r < 0) {
		die(c, "register", r);
		goto out;
	}
	if (opt.bench) {
		ret = bench(c, fh, arena, size) ? EXIT_FAIL : 0;
		goto out;
	}
	if (strcmp(outpath, "-") != 0) {
		out = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			   0666);
		if (out < 0) {
			fprintf(stderr, "cachefs-get: %s: %s\n", outpath,
				strerror(errno));
			goto out;
		}
	}
	n = transfer(c, fh, arena, size, out, &wfail);
	if (n < 0 && wfail)
		fprintf(stderr, "cachefs-get: %s: %s\n", outpath,
			strerror((int)-n));
	else if (n == -EINTR && interrupted)
		fprintf(stderr, "cachefs-get: interrupted\n");
	else if (n < 0)
		die(c, path, (int)n);
	else
		ret = 0;
	if (out != STDOUT_FILENO && close(out) < 0 && ret == 0) {
		fprintf(stderr, "cachefs-get: %s: %s\n", outpath,
			strerror(errno));
		ret = EXIT_FAIL;
	}
out:
	cachefs_client_deregister(c, mr);
	cachefs_client_disconnect(c);
	free(arena);
	return ret;
}
