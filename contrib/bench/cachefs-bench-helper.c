/*
 * cachefs-bench-helper: the tight syscall loops behind contrib/bench/cachefs-bench.
 * Compiled on the fly by the script (cc -O2); not part of the cachefs build.
 *
 *   gen     ROOT NFILES NDIRS BIGBYTES SEED   create ROOT/tree/... and ROOT/big.bin,
 *                                             print the file list (relative to ROOT)
 *   stat    ROOT LIST PASSES          stat() + access(R_OK) of every file
 *   missing ROOT LIST PASSES          stat() of "<file>.missing", expects ENOENT
 *   read    ROOT LIST PASSES [BUFSZ]  open + read to EOF + close of every file
 *   list    ROOT LIST PASSES          opendir + readdir to the end + closedir of
 *                                     every directory of LIST; BYTES: the entries
 *   create  DIR N SIZE THREADS        THREADS threads together create N new files
 *                                     DIR/t<thread>-<k>: open(O_CREAT|O_WRONLY|
 *                                     O_TRUNC) + write SIZE bytes + close each
 *                                     (used by contrib/bench/journal-bench)
 *
 * The timing modes print "SECONDS BYTES" (BYTES: data read, 0 otherwise) on stdout.
 * Needs -pthread on glibc before 2.34 (the create mode's threads).
 * Any unexpected result is an error: message on stderr, exit status 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
	fprintf(stderr, "cachefs-bench-helper: %s %s: %s\n", what, path ? path : "",
		strerror(errno));
	exit(1);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a given seed */
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *buf, size_t len, const char *path)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write", path);
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* ---- tree generation --------------------------------------------------- */

static const char *dir_words[] = {
	"app", "src", "vendor", "lib", "includes", "modules", "themes", "assets",
	"css", "js", "images", "templates", "cache", "lang", "plugins", "core",
	"admin", "public", "config", "views", "controllers", "models", "helpers",
	"widgets", "blocks", "forms", "api", "util", "components", "layouts",
};
static const char *file_words[] = {
	"index", "class", "functions", "bootstrap", "autoload", "controller",
	"model", "view", "helper", "style", "main", "app", "jquery", "theme",
	"widget", "form", "router", "request", "response", "session", "cache",
	"config", "template", "logo", "icon", "sprite", "header", "footer",
	"menu", "admin", "plugin", "module", "loader", "validator", "mailer",
};
/* extension, cumulative weight out of 100 */
static const struct { const char *ext; int cum; } exts[] = {
	{ ".php", 55 }, { ".inc.php", 62 }, { ".js", 75 }, { ".css", 84 },
	{ ".png", 93 }, { ".html", 97 }, { ".json", 100 },
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define POOL 65536
static char text_pool[POOL + 32768], bin_pool[POOL + 32768];

static void fill_pools(void)
{
	static const char *toks[] = {
		"<?php ", "function ", "return ", "$this->", "array(", "); ",
		"if (", ") {\n", "}\n", "echo ", "'", "\"", "public ", "static ",
		"namespace ", "use ", "class ", "extends ", "foreach (", " as ",
		"$value", "$key", " => ", "null", "true", "false", "\n\t", "// ",
		"var ", "const ", "color: #", "margin: 0;", "{ ", " }", ".", "_",
	};
	size_t i = 0;
	while (i < sizeof(text_pool)) {
		const char *t = toks[rnd_below(NELEM(toks))];
		size_t l = strlen(t);
		if (i + l > sizeof(text_pool))
			l = sizeof(text_pool) - i;
		memcpy(text_pool + i, t, l);
		i += l;
		/* some identifier-ish noise */
		if (i < sizeof(text_pool) && rnd_below(3) == 0)
			text_pool[i++] = (char)('a' + rnd_below(26));
	}
	for (i = 0; i < sizeof(bin_pool); i += 8) {
		uint64_t v = rnd();
		memcpy(bin_pool + i, &v, 8);
	}
	memcpy(bin_pool, "\x89PNG\r\n\x1a\n", 8);
}

struct dir {
	char *path;
	int depth;
};

static int cmd_gen(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: gen ROOT NFILES NDIRS BIGBYTES SEED\n");
		return 2;
	}
	const char *root = argv[2];
	long nfiles = atol(argv[3]), ndirs = atol(argv[4]);
	unsigned long long bigbytes = strtoull(argv[5], NULL, 10);
	rng_state = strtoull(argv[6], NULL, 10) * 2654435761ULL + 0x9E3779B97F4A7C15ULL;
	if (nfiles < 1 || ndirs < 1) {
		fprintf(stderr, "gen: need at least one file and one directory\n");
		return 2;
	}
	if (chdir(root) < 0)
		die("chdir", root);
	umask(022);
	fill_pools();

	struct dir *dirs = calloc((size_t)ndirs, sizeof(*dirs));
	if (!dirs)
		die("calloc", NULL);
	dirs[0].path = strdup("tree");
	dirs[0].depth = 0;
	if (mkdir("tree", 0755) < 0)
		die("mkdir", "tree");
	for (long i = 1; i < ndirs; i++) {
		/* parent: an earlier directory less than 5 levels deep; favour recent
		 * ones a little so some branches go deep and wide */
		long p;
		do {
			p = rnd_below(3) == 0 ? i - 1 - (long)rnd_below(i < 8 ? i : 8)
					      : (long)rnd_below(i);
		} while (dirs[p].depth >= 5);
		char name[4096];
		snprintf(name, sizeof(name), "%s/%s%ld", dirs[p].path,
			 dir_words[rnd_below(NELEM(dir_words))], i);
		if (mkdir(name, 0755) < 0)
			die("mkdir", name);
		dirs[i].path = strdup(name);
		dirs[i].depth = dirs[p].depth + 1;
	}

	for (long j = 0; j < nfiles; j++) {
		/* the first ndirs files put one file in every directory */
		long d = j < ndirs ? j : (long)rnd_below(ndirs);
		int r = (int)rnd_below(100);
		size_t e = 0;
		while (r >= exts[e].cum)
			e++;
		char name[4096];
		snprintf(name, sizeof(name), "%s/%s%ld%s", dirs[d].path,
			 file_words[rnd_below(NELEM(file_words))], j, exts[e].ext);
		size_t size = 1024 + rnd_below(20 * 1024 - 1024 + 1);
		size_t off = rnd_below(POOL);
		const char *src = strcmp(exts[e].ext, ".png") ? text_pool : bin_pool;
		if (src == bin_pool)
			off = 0;
		int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", name);
		write_all(fd, src + off, size, name);
		if (close(fd) < 0)
			die("close", name);
		printf("%s\n", name);
	}

	if (bigbytes > 0) {
		size_t chunk = 1 << 20;
		char *buf = malloc(chunk);
		if (!buf)
			die("malloc", NULL);
		int fd = open("big.bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", "big.bin");
		while (bigbytes > 0) {
			size_t n = bigbytes < chunk ? (size_t)bigbytes : chunk;
			for (size_t i = 0; i < n; i += 8) {
				uint64_t v = rnd();
				memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
			}
			write_all(fd, buf, n, "big.bin");
			bigbytes -= n;
		}
		if (fsync(fd) < 0 || close(fd) < 0)
			die("fsync/close", "big.bin");
		free(buf);
	}
	if (fflush(stdout) != 0)
		die("write", "file list");
	return 0;
}

/* ---- timed loops ------------------------------------------------------- */

static char **load_list(const char *root, const char *list, const char *suffix, size_t *count)
{
	FILE *f = fopen(list, "r");
	if (!f)
		die("open", list);
	size_t cap = 1024, n = 0;
	char **v = malloc(cap * sizeof(*v));
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		if (!v || asprintf(&v[n], "%s/%s%s", root, line, suffix) < 0)
			die("alloc", NULL);
		n++;
	}
	free(line);
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "cachefs-bench-helper: empty list %s\n", list);
		exit(1);
	}
	*count = n;
	return v;
}

static int cmd_timed(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s ROOT LIST PASSES [BUFSZ]\n", argv[1]);
		return 2;
	}
	const char *mode = argv[1];
	int passes = atoi(argv[4]);
	size_t bufsz = argc > 5 ? strtoul(argv[5], NULL, 10) : 65536;
	int m_stat = !strcmp(mode, "stat"), m_missing = !strcmp(mode, "missing"),
	    m_read = !strcmp(mode, "read"), m_list = !strcmp(mode, "list");
	if (!(m_stat || m_missing || m_read || m_list) || passes < 1 ||
	    bufsz < 512) {
		fprintf(stderr, "cachefs-bench-helper: bad arguments\n");
		return 2;
	}
	size_t n;
	char **paths = load_list(argv[2], argv[3], m_missing ? ".missing" : "", &n);
	char *buf = NULL;
	if (m_read && posix_memalign((void **)&buf, 4096, bufsz) != 0)
		die("alloc", NULL);
	unsigned long long bytes = 0;
	struct stat st;

	double t0 = now();
	for (int p = 0; p < passes; p++) {
		for (size_t i = 0; i < n; i++) {
			const char *path = paths[i];
			if (m_stat) {
				if (stat(path, &st) < 0)
					die("stat", path);
				if (access(path, R_OK) < 0)
					die("access", path);
			} else if (m_list) {
				DIR *dp = opendir(path);
				if (!dp)
					die("opendir", path);
				errno = 0;
				while (readdir(dp))
					bytes++;
				if (errno)
					die("readdir", path);
				if (closedir(dp) < 0)
					die("closedir", path);
			} else if (m_missing) {
				if (stat(path, &st) == 0) {
					errno = EEXIST;
					die("stat (expected ENOENT)", path);
				}
				if (errno != ENOENT)
					die("stat (expected ENOENT)", path);
			} else {
				int fd = open(path, O_RDONLY | O_CLOEXEC);
				if (fd < 0)
					die("open", path);
				for (;;) {
					ssize_t r = read(fd, buf, bufsz);
					if (r < 0) {
						if (errno == EINTR)
							continue;
						die("read", path);
					}
					if (r == 0)
						break;
					bytes += (unsigned long long)r;
				}
				if (close(fd) < 0)
					die("close", path);
			}
		}
	}
	double t1 = now();
	printf("%.6f %llu\n", t1 - t0, bytes);
	return 0;
}

/* ---- create: N files by THREADS threads ------------------------------- */

struct creator {
	pthread_t tid;
	int idx;
	long first, count;		/* this thread's share: t<idx>-<first..first+count-1> */
	const char *dir;
	const char *buf;
	size_t size;
};

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;
static int start_ready, start_go;

static void *creator_run(void *arg)
{
	struct creator *c = arg;
	char path[4096];

	/* every thread waits here, so that the clock starts with all of them ready */
	pthread_mutex_lock(&start_mu);
	start_ready++;
	pthread_cond_broadcast(&start_cv);
	while (!start_go)
		pthread_cond_wait(&start_cv, &start_mu);
	pthread_mutex_unlock(&start_mu);

	for (long k = c->first; k < c->first + c->count; k++) {
		snprintf(path, sizeof(path), "%s/t%d-%ld", c->dir, c->idx, k);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", path);
		write_all(fd, c->buf, c->size, path);
		if (close(fd) < 0)
			die("close", path);
	}
	return NULL;
}

static int cmd_create(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: create DIR N SIZE THREADS\n");
		return 2;
	}
	const char *dir = argv[2];
	long nfiles = atol(argv[3]);
	size_t size = strtoul(argv[4], NULL, 10);
	int nthreads = atoi(argv[5]);
	if (nfiles < 1 || nthreads < 1 || nthreads > 1024) {
		fprintf(stderr, "cachefs-bench-helper: bad arguments\n");
		return 2;
	}
	if (nthreads > nfiles)
		nthreads = (int)nfiles;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		die("malloc", NULL);
	rng_state = 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)('a' + rnd_below(26));

	struct creator *cs = calloc((size_t)nthreads, sizeof(*cs));
	if (!cs)
		die("calloc", NULL);
	long first = 0;
	for (int t = 0; t < nthreads; t++) {
		cs[t].idx = t;
		cs[t].first = first;
		cs[t].count = nfiles / nthreads + (t < nfiles % nthreads);
		first += cs[t].count;
		cs[t].dir = dir;
		cs[t].buf = buf;
		cs[t].size = size;
		errno = pthread_create(&cs[t].tid, NULL, creator_run, &cs[t]);
		if (errno != 0)
			die("pthread_create", NULL);
	}
	pthread_mutex_lock(&start_mu);
	while (start_ready < nthreads)
		pthread_cond_wait(&start_cv, &start_mu);
	double t0 = now();
	start_go = 1;
	pthread_cond_broadcast(&start_cv);
	pthread_mutex_unlock(&start_mu);
	for (int t = 0; t < nthreads; t++) {
		errno = pthread_join(cs[t].tid, NULL);
		if (errno != 0)
			die("pthread_join", NULL);
	}
	double t1 = now();
	printf("%.6f 0\n", t1 - t0);
	free(cs);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "gen"))
		return cmd_gen(argc, argv);
	if (argc >= 2 && (!strcmp(argv[1], "stat") || !strcmp(argv[1], "missing") ||
			  !strcmp(argv[1], "read") || !strcmp(argv[1], "list")))
		return cmd_timed(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return cmd_create(argc, argv);
	fprintf(stderr, "usage: cachefs-bench-helper gen|stat|missing|read|list|create ...\n");
	return 2;
}
