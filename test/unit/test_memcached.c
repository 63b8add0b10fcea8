// SPDX-License-Identifier: MIT
/*
 * The memcached tier: nginx's keys and server choice, computed here
 * independently of the tier and of libmemcached; then the tier against
 * real memcached servers on 127.0.0.1 (started here, on free ports):
 * values and versions, limits, forget, and a server that dies, comes back
 * and must first be told what was forgotten meanwhile.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <libmemcached/memcached.h>

#include "tier.h"
#include "tier_memcached.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define PREFIX "cfs:"

/* ---- keys ---- */

/*
 * nginx 1.22 (and master) src/core/ngx_string.c, ngx_escape_uri(), the
 * table "static uint32_t memcached[]" for NGX_ESCAPE_MEMCACHED, commented
 * there as: " ", "%", %00-%1F.  Bit c % 32 of word c / 32 set means byte c
 * goes out as '%' and two upper-case hex digits.
 */
static const uint32_t ngx_escape_memcached[8] = {
	0xffffffff, /* 1111 1111 1111 1111  1111 1111 1111 1111 */
	0x00000021, /* 0000 0000 0000 0000  0000 0000 0010 0001 */
	0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
};

static bool ngx_escapes(unsigned c)
{
	return ngx_escape_memcached[c >> 5] & (1U << (c & 0x1f));
}

START_TEST(test_key_every_byte)
{
	/* what the table says, in words: the table is read right */
	for (unsigned c = 0; c < 256; c++)
		ck_assert_int_eq(ngx_escapes(c),
				 c < 0x20 || c == ' ' || c == '%');

	/* a path can hold every byte but NUL; PREFIX "/" c "x" */
	for (unsigned c = 1; c < 256; c++) {
		char path[4] = { '/', (char)c, 'x', 0 }, want[16], got[16];

		if (ngx_escapes(c))
			snprintf(want, sizeof(want), PREFIX "/%%%02Xx", c);
		else
			snprintf(want, sizeof(want), PREFIX "/%cx", (char)c);
		ck_assert_int_eq(
			tier_memcached_key(PREFIX, path, got, sizeof(got)),
			(int)strlen(want));
		ck_assert_str_eq(got, want);
	}
}
END_TEST

START_TEST(test_key_cases)
{
	char out[300], path[300], want[300];

	ck_assert_int_eq(
		tier_memcached_key(PREFIX, "/dir/a b%.txt", out, sizeof(out)),
		(int)strlen(PREFIX "/dir/a%20b%25.txt"));
	ck_assert_str_eq(out, PREFIX "/dir/a%20b%25.txt");
	/* already-escaped-looking names are escaped again, as nginx does */
	tier_memcached_key(PREFIX, "/%20", out, sizeof(out));
	ck_assert_str_eq(out, PREFIX "/%2520");
	/* UTF-8 (and 0x7f, '+', '#', '?') go as they are */
	tier_memcached_key(PREFIX, "/été/日本 語.txt", out, sizeof(out));
	ck_assert_str_eq(out, PREFIX "/été/日本%20語.txt");
	tier_memcached_key(PREFIX, "/a+b#c?d\x7f\t\n", out, sizeof(out));
	ck_assert_str_eq(out, PREFIX "/a+b#c?d\x7f%09%0A");
	/* the prefix is escaped like the rest; none is fine */
	tier_memcached_key("my site:", "/x", out, sizeof(out));
	ck_assert_str_eq(out, "my%20site:/x");
	ck_assert_int_eq(tier_memcached_key(NULL, "/x", out, sizeof(out)), 2);
	ck_assert_str_eq(out, "/x");
	ck_assert_int_eq(tier_memcached_key("", "/x", out, sizeof(out)), 2);

	/* exactly 250 bytes, then 251: refused, never truncated */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[250 - 4] = '\0';
	ck_assert_int_eq(tier_memcached_key(PREFIX, path, out, sizeof(out)),
			 250);
	ck_assert_int_eq(strlen(out), 250);
	path[250 - 4] = 'a';
	path[251 - 4] = '\0';
	strcpy(out, "untouched");
	ck_assert_int_eq(tier_memcached_key(PREFIX, path, out, sizeof(out)),
			 -ENAMETOOLONG);
	ck_assert_str_eq(out, "untouched");
	/* an escape ending at the limit, then one straddling it */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[243] = ' ';
	path[244] = '\0'; /* 4 + 243 + "%20" */
	ck_assert_int_eq(tier_memcached_key(PREFIX, path, out, sizeof(out)),
			 250);
	ck_assert_str_eq(out + 247, "%20");
	path[243] = 'a';
	path[244] = ' ';
	path[245] = '\0'; /* 4 + 244 + "%20" */
	ck_assert_int_eq(tier_memcached_key(PREFIX, path, out, sizeof(out)),
			 -ENAMETOOLONG);
	/* a long prefix counts; a short buffer says so */
	memset(want, 'p', 249);
	want[249] = '\0';
	ck_assert_int_eq(tier_memcached_key(want, "/", out, sizeof(out)), 250);
	ck_assert_int_eq(tier_memcached_key(want, "/x", out, sizeof(out)),
			 -ENAMETOOLONG);
	ck_assert_int_eq(tier_memcached_key(PREFIX, "/abc", out, 8), -ENOBUFS);
	ck_assert_int_eq(tier_memcached_key(PREFIX, "/abc", out, 9), 8);
}
END_TEST

/* ---- configuration ---- */

static int new_tier(const char *servers, const char *prefix, uint64_t max_file,
		    struct tier **t, char *err, size_t errlen)
{
	struct tier_memcached_cfg cfg = {
		.servers = servers,
		.prefix = prefix,
		.max_file = max_file,
		.timeout_ms = 250,
	};

	return tier_memcached_new(&cfg, t, err, errlen);
}

static unsigned servers_of(struct tier *t)
{
	struct tier_memcached_stats st;

	tier_memcached_get_stats(t, &st);
	return st.servers;
}

START_TEST(test_config)
{
	static const struct {
		const char *servers;
		unsigned n;
	} good[] = {
		{ "127.0.0.1", 1 },
		{ "127.0.0.1:11211, 127.0.0.1:11212", 2 },
		{ "[::1]:11211,[::1],localhost:5", 3 },
		{ "--SERVER=127.0.0.1:11211 --SERVER=127.0.0.1:11212", 2 },
		/* overridden: the distribution must be nginx's */
		{ "--SERVER=127.0.0.1:1 --DISTRIBUTION=consistent --HASH=MD5",
		  1 },
	};
	static const char *const bad[] = {
		"",
		",",
		" , ",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:12x",
		":11211",
		"::1",
		"::1:11211",
		"[::1",
		"[::1]x",
		"[]:1",
		"a:1,,b:2",
		"a:1,",
		"--SERVER=",
		"--BOGUS-OPTION=1",
		"--CONNECT-TIMEOUT=10",
		"--NAMESPACE=foo --SERVER=127.0.0.1",
		"--SORT-HOSTS --SERVER=127.0.0.1:1",
	};
	char err[256];
	struct tier *t;

	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
		ck_assert_msg(new_tier(good[k].servers, PREFIX, 0, &t, err,
				       sizeof(err)) == 0,
			      "%s: %s", good[k].servers, err);
		ck_assert_uint_eq(servers_of(t), good[k].n);
		ck_assert_str_eq(t->ops->name, "memcached");
		ck_assert(t->ops->by_path);
		t->ops->free(t);
	}
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		t = NULL;
		ck_assert_msg(new_tier(bad[k], PREFIX, 0, &t, err,
				       sizeof(err)) == -EINVAL,
			      "accepted \"%s\"", bad[k]);
		ck_assert_ptr_null(t);
		ck_assert_msg(strncmp(err, "memcached: ", 11) == 0,
			      "\"%s\": message \"%s\"", bad[k], err);
	}
	ck_assert_int_eq(new_tier(NULL, PREFIX, 0, &t, err, sizeof(err)),
			 -EINVAL);
	ck_assert_int_eq(
		new_tier("127.0.0.1", "a\x7f", 0, &t, err, sizeof(err)),
		-EINVAL);
	memset(err, 'p', 248);
	err[248] = '\0';
	ck_assert_int_eq(new_tier("127.0.0.1", err, 0, &t, NULL, 0), -EINVAL);
}
END_TEST

/* ---- distribution ---- */

/* nginx's "hash $memcached_key" (ngx_http_upstream_get_hash_peer()) */
static unsigned nginx_pick(const char *key, size_t len, unsigned n)
{
	uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)key, (uInt)len);

	return ((crc >> 16) & 0x7fff) % n;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* A random path: '/', then bytes of any value but NUL and 0x7f. */
static void rnd_path(char *path, size_t maxlen)
{
	size_t len = 1 + rnd() % (maxlen - 1);

	path[0] = '/';
	for (size_t k = 1; k < len; k++) {
		unsigned c = 1 + (unsigned)(rnd() % 255);

		path[k] = (char)(c == 0x7f ? ' ' : c);
	}
	path[len] = '\0';
}

START_TEST(test_distribution)
{
	for (unsigned n = 2; n <= 5; n++) {
		for (int form = 0; form < 2; form++) {
			char servers[256] = "", key[300], path[64], err[256];
			struct tier *t;
			size_t len = 0;

			for (unsigned s = 0; s < n; s++) {
				if (form)
					len += (size_t)snprintf(
						servers + len,
						sizeof(servers) - len,
						"--SERVER=127.0.0.1:%u ",
						1 + s);
				else
					len += (size_t)snprintf(
						servers + len,
						sizeof(servers) - len,
						"%s127.0.0.1:%u", s ? "," : "",
						1 + s);
			}
			if (form)
				strcat(servers, "--DISTRIBUTION=consistent "
						"--HASH=MD5");
			ck_assert_msg(new_tier(servers, PREFIX, 0, &t, err,
					       sizeof(err)) == 0,
				      "%s", err);
			for (int k = 0; k < 5000; k++) {
				rnd_path(path, sizeof(path));
				snprintf(key, sizeof(key), PREFIX "%s", path);
				ck_assert_int_eq(
					tier_memcached_server_of(t, path),
					(int)nginx_pick(key, strlen(key), n));
			}
			t->ops->free(t);
		}
	}
}
END_TEST

/* ---- live servers ---- */

struct mcd {
	pid_t pid;
	int port;
};

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void mcd_kill(struct mcd *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
	}
	d->pid = 0;
}

/*
 * memcached on 127.0.0.1:d->port (a free one if 0), answering when this
 * returns; item_max: its -I, or 0.
 */
static void mcd_start(struct mcd *d, unsigned item_max)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		bool fixed = d->port != 0;
		char port[16], item[16], chunk[32];
		double deadline;

		if (!fixed)
			d->port = free_port();
		snprintf(port, sizeof(port), "%d", d->port);
		d->pid = fork();
		ck_assert_int_ge(d->pid, 0);
		if (d->pid == 0) {
			static const char *const base[] = {
				MEMCACHED_BIN, "-l", "127.0.0.1", "-U", "0",
				"-m",	       "64", "-t",	  "2",
			};
			const char *argv[24];
			int argc = (int)(sizeof(base) / sizeof(base[0]));
			int null = open("/dev/null", O_RDWR);

			memcpy(argv, base, sizeof(base));
			argv[argc++] = "-p";
			argv[argc++] = port;
			/* never outlive the test, even when it fails */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (geteuid() == 0) {
				argv[argc++] = "-u";
				argv[argc++] = "root";
			}
			if (item_max) {
				/* no chunk larger than an item */
				snprintf(item, sizeof(item), "%u", item_max);
				snprintf(chunk, sizeof(chunk),
					 "slab_chunk_max=%u", item_max / 2);
				argv[argc++] = "-I";
				argv[argc++] = item;
				argv[argc++] = "-o";
				argv[argc++] = chunk;
			}
			argv[argc] = NULL;
			dup2(null, 1);
			dup2(null, 2);
			execv(MEMCACHED_BIN, (char *const *)argv);
			_exit(127);
		}
		deadline = now_s() + 5;
		while (now_s() < deadline) {
			if (port_open(d->port))
				return;
			if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
				/* the port was taken meanwhile? */
				d->pid = 0;
				break;
			}
			pause_ms(5);
		}
		mcd_kill(d);
		if (!fixed)
			d->port = 0;
	}
	ck_abort_msg("memcached did not start on port %d", d->port);
}

/* A plain client of one server, as a test sees it. */
static memcached_st *raw_client(int port)
{
	memcached_st *mc = memcached_create(NULL);

	ck_assert_ptr_nonnull(mc);
	ck_assert_int_eq(memcached_server_add(mc, "127.0.0.1", (in_port_t)port),
			 MEMCACHED_SUCCESS);
	return mc;
}

/* The value of key on the server at port (NULL: none), malloc'd. */
static char *raw_get(int port, const char *key, size_t *len, uint32_t *flags)
{
	memcached_st *mc = raw_client(port);
	memcached_return_t rc;
	uint32_t f = 0;
	size_t n = 0;
	char *val = memcached_get(mc, key, strlen(key), &n, &f, &rc);

	ck_assert_msg(val || rc == MEMCACHED_NOTFOUND, "get %s: %s", key,
		      memcached_strerror(mc, rc));
	memcached_free(mc);
	if (len)
		*len = n;
	if (flags)
		*flags = f;
	return val;
}

static bool raw_has(int port, const char *key)
{
	char *val = raw_get(port, key, NULL, NULL);

	free(val);
	return val != NULL;
}

static void raw_set(int port, const char *key, const void *val, size_t len)
{
	memcached_st *mc = raw_client(port);

	ck_assert_int_eq(memcached_set(mc, key, strlen(key), val, len, 0, 0),
			 MEMCACHED_SUCCESS);
	memcached_free(mc);
}

/* nginx's key of path, and the tier's version key of it */
static const char *data_key(const char *path)
{
	static char key[300];

	ck_assert_int_gt(tier_memcached_key(PREFIX, path, key, sizeof(key)), 0);
	return key;
}

static const char *meta_key(const char *path)
{
	static char key[300 + sizeof(PREFIX "#v")];
	char esc[300];

	ck_assert_int_gt(tier_memcached_key(NULL, path, esc, sizeof(esc)), 0);
	snprintf(key, sizeof(key), PREFIX "#v%s", esc);
	return key;
}

static struct tier *ttl_tier(const struct mcd *d, uint64_t max_file,
			     unsigned ttl_s)
{
	struct tier_memcached_cfg cfg = {
		.prefix = PREFIX,
		.max_file = max_file,
		.timeout_ms = 250,
		.ttl_s = ttl_s,
	};
	char servers[64], err[256];
	struct tier *t;

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", d->port);
	cfg.servers = servers;
	ck_assert_msg(tier_memcached_new(&cfg, &t, err, sizeof(err)) == 0, "%s",
		      err);
	return t;
}

static struct tier *live_tier(const struct mcd *d, uint64_t max_file)
{
	return ttl_tier(d, max_file, 0);
}

static struct tier_stats stats(struct tier *t)
{
	struct tier_stats st;

	t->ops->get_stats(t, &st);
	return st;
}

static struct tier_memcached_stats mstats(struct tier *t)
{
	struct tier_memcached_stats st;

	tier_memcached_get_stats(t, &st);
	return st;
}

static void assert_same_version(const struct tier_version *a,
				const struct tier_version *b)
{
	ck_assert_uint_eq(a->dev, 0);
	ck_assert_uint_eq(a->gen, 0);
	ck_assert_uint_eq(a->ino, b->ino);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_int_eq(a->mtime_ns, b->mtime_ns);
	ck_assert_int_eq(a->ctime_ns, b->ctime_ns);
}

START_TEST(test_live_round_trip)
{
	static const char *const paths[] = { "/dir/a b%.txt",
					     "/été/日本 語.txt", "/x" };
	const struct tier_version v = { .dev = 9,
					.ino = 77,
					.size = 11,
					.mtime_ns = 1700000000123456789LL,
					.ctime_ns = -5,
					.gen = 3 };
	struct tier_version got, empty = v;
	struct mcd d = { 0 };
	struct tier *t;
	struct tier_stats st;
	char buf[32];
	uint32_t flags = 1;
	size_t len;
	char *raw;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		const char *p = paths[k];

		ck_assert_int_eq(t->ops->get(t, TIER_DATA, p, &got, buf, 32, 0),
				 -ENOENT);
		ck_assert_int_eq(
			t->ops->put(t, TIER_DATA, p, &v, "hello world", 11), 0);
		memset(&got, 0xff, sizeof(got));
		ck_assert_int_eq(t->ops->get(t, TIER_DATA, p, &got, buf, 32, 0),
				 11);
		ck_assert(memcmp(buf, "hello world", 11) == 0);
		assert_same_version(&got, &v);
		/* ranges */
		ck_assert_int_eq(t->ops->get(t, TIER_DATA, p, &got, buf, 5, 6),
				 5);
		ck_assert(memcmp(buf, "world", 5) == 0);
		ck_assert_int_eq(t->ops->get(t, TIER_DATA, p, &got, buf, 2, 3),
				 2);
		ck_assert(memcmp(buf, "lo", 2) == 0);
		ck_assert_int_eq(
			t->ops->get(t, TIER_DATA, p, &got, buf, 32, 11), 0);
		ck_assert_int_eq(
			t->ops->get(t, TIER_DATA, p, &got, buf, 32, 1000), 0);
		/* what nginx gets: the bytes, flags 0, under its own
		 * key */
		raw = raw_get(d.port, data_key(p), &len, &flags);
		ck_assert_ptr_nonnull(raw);
		ck_assert_uint_eq(len, 11);
		ck_assert(memcmp(raw, "hello world", 11) == 0);
		ck_assert_uint_eq(flags, 0);
		free(raw);
		raw = raw_get(d.port, meta_key(p), &len, NULL);
		ck_assert_ptr_nonnull(raw);
		ck_assert(strncmp(raw, "1 77 11 1700000000123456789 -5 ", 31) ==
			  0);
		free(raw);
	}
	/* other kinds: not stored */
	ck_assert_int_eq(t->ops->get(t, TIER__KINDS, "/x", &got, buf, 32, 0),
			 -ENOENT);
	/* an empty file */
	empty.size = 0;
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/empty", &empty, "", 0), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/empty", &got, buf, 32, 0),
			 0);
	assert_same_version(&got, &empty);
	/* not a path in the mount */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "x", &v, "hello world", 11),
			 -EINVAL);

	st = stats(t);
	ck_assert_uint_eq(st.stores, 4);
	ck_assert_uint_eq(st.hits, 3 * 5 + 1);
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert(!st.down);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.budget, 0);
	ck_assert_uint_eq(mstats(t).item_max, 1024 * 1024 - 512);
	t->ops->clear(t); /* nothing: the servers are shared */
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/x", &got, buf, 32, 0), 11);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

START_TEST(test_live_versions)
{
	const struct tier_version v1 = { .ino = 5, .size = 3, .mtime_ns = 1 },
				  v2 = { .ino = 5,
					 .size = 4,
					 .mtime_ns = 2,
					 .ctime_ns = 2 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	char buf[16];

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/v", &v1, "old", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/v", &got, buf, 16, 0), 3);
	assert_same_version(&got, &v1);
	/* the cache layer decides v1 is stale; the tier returns it
	 * exactly */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/v", &v2, "newr", 4), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/v", &got, buf, 16, 0), 4);
	assert_same_version(&got, &v2);
	ck_assert(memcmp(buf, "newr", 4) == 0);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

START_TEST(test_live_unpaired)
{
	const struct tier_version v = { .ino = 1, .size = 3 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	char buf[16], meta[128];
	memcached_st *mc;
	char *raw;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	/* data without a version: a miss */
	raw_set(d.port, data_key("/lone"), "abc", 3);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	/* stored properly, then the data replaced behind its back
	 * (another writer's bytes of the same size): a miss, never
	 * those bytes */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/lone", &v, "abc", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 3);
	raw_set(d.port, data_key("/lone"), "xyz", 3);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	/* other sizes, versions, garbage */
	raw_set(d.port, data_key("/lone"), "abcd", 4);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	raw = raw_get(d.port, meta_key("/lone"), NULL, NULL);
	ck_assert_ptr_nonnull(raw);
	raw_set(d.port, data_key("/lone"), "abc", 3);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 3);
	snprintf(meta, sizeof(meta), "2%s", raw + 1);
	raw_set(d.port, meta_key("/lone"), meta, strlen(meta));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	snprintf(meta, sizeof(meta), "%s ", raw);
	raw_set(d.port, meta_key("/lone"), meta, strlen(meta));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	raw_set(d.port, meta_key("/lone"), "garbage", 7);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	/* a version without data */
	raw_set(d.port, meta_key("/lone"), raw, strlen(raw));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 3);
	mc = raw_client(d.port);
	ck_assert_int_eq(memcached_delete(mc, data_key("/lone"),
					  strlen(data_key("/lone")), 0),
			 MEMCACHED_SUCCESS);
	memcached_free(mc);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/lone", &got, buf, 16, 0),
			 -ENOENT);
	free(raw);
	ck_assert_uint_eq(stats(t).errors, 0);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

START_TEST(test_live_too_big)
{
	enum { BIG = 100 * 1024, FITS = 60 * 1024 };
	struct tier_version v = { .ino = 1, .size = BIG }, got;
	char *val = calloc(1, BIG), buf[16];
	struct mcd d = { 0 };
	struct tier *t;

	mcd_start(&d, 64 * 1024);
	t = live_tier(&d, 0);
	/* the first request learns the servers' limit */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/big", &v, val, BIG),
			 -EFBIG);
	ck_assert_uint_eq(mstats(t).item_max, 64 * 1024 - 512);
	ck_assert_uint_eq(stats(t).too_big, 1);
	ck_assert(!raw_has(d.port, data_key("/big")));
	v.size = FITS;
	memset(val, 'f', FITS);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/fits", &v, val, FITS), 0);
	ck_assert_int_eq(
		t->ops->get(t, TIER_DATA, "/fits", &got, buf, 16, FITS - 4), 4);
	ck_assert(memcmp(buf, "ffff", 4) == 0);
	/* grown too big: what was there goes too, nginx must not serve
	 * it */
	v.size = BIG;
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/fits", &v, val, BIG),
			 -EFBIG);
	ck_assert(!raw_has(d.port, data_key("/fits")));
	ck_assert(!raw_has(d.port, meta_key("/fits")));
	ck_assert_uint_eq(stats(t).too_big, 2);
	ck_assert_uint_eq(stats(t).errors, 0);
	t->ops->free(t);

	/* the tier's own limit */
	t = live_tier(&d, 1000);
	v.size = 1001;
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/mid", &v, val, 1001),
			 -EFBIG);
	v.size = 1000;
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/mid", &v, val, 1000), 0);
	ck_assert_uint_eq(stats(t).too_big, 1);
	t->ops->free(t);
	free(val);
	mcd_kill(&d);
}
END_TEST

START_TEST(test_live_key_too_long)
{
	const struct tier_version v = { .ino = 1, .size = 1 };
	char path[300], buf[4];
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	/* the version key is 2 longer than nginx's: PREFIX "#v" path */
	memset(path, 'k', sizeof(path));
	path[0] = '/';
	path[250 - 4 - 2] = '\0';
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, path, &v, "x", 1), 0);
	ck_assert_int_eq(strlen(meta_key(path)), 250);
	ck_assert(raw_has(d.port, meta_key(path)));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, path, &got, buf, 4, 0), 1);
	path[250 - 4 - 2] = 'k';
	path[250 - 4 - 1] = '\0';
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, path, &v, "x", 1),
			 -ENAMETOOLONG);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, path, &got, buf, 4, 0),
			 -ENOENT);
	ck_assert_int_eq(t->ops->forget(t, path), 0);
	/* a byte libmemcached cannot read back in a key */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/del\x7f", &v, "x", 1),
			 -ENAMETOOLONG);
	ck_assert_uint_eq(stats(t).key_too_long, 2);
	ck_assert_uint_eq(stats(t).stores, 1);
	ck_assert_uint_eq(stats(t).errors, 0);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

START_TEST(test_live_forget)
{
	const struct tier_version v = { .ino = 1, .size = 2 };
	const char *p = "/gone with%the wind";
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	char buf[4];

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, p, &v, "hi", 2), 0);
	ck_assert(raw_has(d.port, data_key(p)));
	ck_assert(raw_has(d.port, meta_key(p)));
	ck_assert_int_eq(t->ops->forget(t, p), 0);
	ck_assert(!raw_has(d.port, data_key(p)));
	ck_assert(!raw_has(d.port, meta_key(p)));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, p, &got, buf, 4, 0),
			 -ENOENT);
	ck_assert_uint_eq(stats(t).deletes, 1);
	ck_assert_int_eq(t->ops->forget(t, p), 0); /* nothing there */
	ck_assert_uint_eq(stats(t).deletes, 1);
	ck_assert_int_eq(t->ops->forget(t, "not/a/path"), 0);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

/* Values expire after ttl_s; past 30 days memcached wants a Unix time.
 */
START_TEST(test_live_ttl)
{
	const struct tier_version v = { .ino = 1, .size = 1 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	double start;
	char buf[4];

	mcd_start(&d, 0);
	t = ttl_tier(&d, 0, 60 * 24 * 3600);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/long", &v, "l", 1), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/long", &got, buf, 4, 0),
			 1);
	t->ops->free(t);

	t = ttl_tier(&d, 0, 1);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/short", &v, "s", 1), 0);
	start = now_s();
	while (raw_has(d.port, data_key("/short")) ||
	       raw_has(d.port, meta_key("/short"))) {
		ck_assert_double_lt(now_s() - start, 4);
		pause_ms(50);
	}
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/short", &got, buf, 4, 0),
			 -ENOENT);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

/* Each value on the one server nginx would ask, both forms of servers.
 */
START_TEST(test_live_placement)
{
	enum { N = 3 };
	struct mcd d[N] = { { 0 } };
	int form = _i;
	char servers[256] = "", path[40], key[300], err[256];
	const struct tier_version v = { .ino = 1, .size = 1 };
	unsigned used[N] = { 0 };
	struct tier *t;
	size_t len = 0;

	for (int s = 0; s < N; s++) {
		mcd_start(&d[s], 0);
		len += (size_t)snprintf(
			servers + len, sizeof(servers) - len,
			form ? "--SERVER=127.0.0.1:%d "
			     : (s ? ",127.0.0.1:%d" : "127.0.0.1:%d"),
			d[s].port);
	}
	ck_assert_msg(new_tier(servers, PREFIX, 0, &t, err, sizeof(err)) == 0,
		      "%s", err);
	for (int k = 0; k < 60; k++) {
		unsigned want;

		snprintf(path, sizeof(path), "/d %d/f%d%%.html", k % 7, k);
		snprintf(key, sizeof(key), PREFIX "%s", path);
		want = nginx_pick(key, strlen(key), N);
		used[want]++;
		ck_assert_int_eq(tier_memcached_server_of(t, path), (int)want);
		ck_assert_int_eq(t->ops->put(t, TIER_DATA, path, &v, "x", 1),
				 0);
		for (unsigned s = 0; s < N; s++) {
			ck_assert_int_eq(raw_has(d[s].port, data_key(path)),
					 s == want);
			ck_assert_int_eq(raw_has(d[s].port, meta_key(path)),
					 s == want);
		}
	}
	for (unsigned s = 0; s < N; s++)
		ck_assert_uint_gt(used[s], 0);
	t->ops->free(t);
	for (int s = 0; s < N; s++)
		mcd_kill(&d[s]);
}
END_TEST

/* Poll with requests until the tier is up again; how long it took. */
static double wait_up(struct tier *t, double limit)
{
	double start = now_s();
	struct tier_version got;
	char buf[4];

	while (now_s() - start < limit) {
		t->ops->get(t, TIER_DATA, "/poll", &got, buf, 4, 0);
		if (!stats(t).down)
			return now_s() - start;
		pause_ms(20);
	}
	ck_abort_msg("the tier did not come back in %.0f s", limit);
	return limit;
}

START_TEST(test_live_down_and_back)
{
	const struct tier_version v = { .ino = 1, .size = 3 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	double t0, failed_at;
	char buf[4];
	int r;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/a", &v, "aaa", 3), 0);
	mcd_kill(&d);

	/* the first request finds out, fast */
	t0 = now_s();
	r = (int)t->ops->get(t, TIER_DATA, "/a", &got, buf, 4, 0);
	failed_at = now_s();
	ck_assert_msg(r == -EIO || r == -EAGAIN, "get: %d", r);
	ck_assert_double_lt(failed_at - t0, 0.25);
	ck_assert(stats(t).down);
	ck_assert_uint_eq(stats(t).errors, 1);
	/* then every request is skipped, faster */
	for (int k = 0; k < 20; k++) {
		t0 = now_s();
		ck_assert_int_eq(
			t->ops->get(t, TIER_DATA, "/a", &got, buf, 4, 0),
			-EAGAIN);
		ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/a", &v, "aaa", 3),
				 -EAGAIN);
		ck_assert_double_lt(now_s() - t0, 0.05);
	}
	ck_assert_uint_eq(stats(t).errors, 1);
	/* a forget cannot be delivered: it waits */
	ck_assert_int_eq(t->ops->forget(t, "/stale one"), -EAGAIN);
	ck_assert_uint_eq(mstats(t).pending, 1);

	/* back, empty but for what nginx would wrongly serve */
	mcd_start(&d, 0);
	raw_set(d.port, data_key("/stale one"), "old", 3);
	raw_set(d.port, meta_key("/stale one"), "1 1 3 0 0 0", 11);
	if (now_s() - failed_at < 0.9) /* before the deadline: skipped */
		ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/stale one", &got,
					     buf, 4, 0),
				 -EAGAIN);
	wait_up(t, 5);
	/* not before the deadline, 1 s after the failure */
	ck_assert_double_ge(now_s() - failed_at, 0.95);
	/* the delete went before anything else */
	ck_assert(!raw_has(d.port, data_key("/stale one")));
	ck_assert(!raw_has(d.port, meta_key("/stale one")));
	ck_assert_uint_eq(mstats(t).pending, 0);
	ck_assert_uint_eq(stats(t).deletes, 1);
	ck_assert_uint_eq(stats(t).errors, 1);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/a", &v, "aaa", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/a", &got, buf, 4, 0), 3);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

/* A server restarted between two requests: one error, then business. */
START_TEST(test_live_restart)
{
	const struct tier_version v = { .ino = 1, .size = 3 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	char buf[4];
	int r;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/r", &v, "rrr", 3), 0);
	mcd_kill(&d);
	mcd_start(&d, 0); /* same port; the connection is dead */
	r = t->ops->put(t, TIER_DATA, "/r", &v, "rrr", 3);
	ck_assert_msg(r == -EIO || r == -EAGAIN, "put: %d", r);
	ck_assert_uint_eq(stats(t).errors, 1);
	ck_assert(stats(t).down);
	wait_up(t, 5);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/r", &v, "rrr", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "/r", &got, buf, 4, 0), 3);
	ck_assert_uint_eq(stats(t).errors, 1);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

/* More forgets wait than are kept: the servers are flushed instead. */
START_TEST(test_live_overflow)
{
	const struct tier_version v = { .ino = 1, .size = 3 };
	struct tier_version got;
	struct mcd d = { 0 };
	struct tier *t;
	char path[32], buf[4];

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "/a", &v, "aaa", 3), 0);
	mcd_kill(&d);
	ck_assert_int_lt(t->ops->get(t, TIER_DATA, "/a", &got, buf, 4, 0), 0);
	for (int k = 0; k <= 4096; k++) {
		snprintf(path, sizeof(path), "/f%d", k);
		ck_assert_int_eq(t->ops->forget(t, path), -EAGAIN);
	}
	ck_assert(mstats(t).overflow);
	ck_assert_int_eq(t->ops->forget(t, "/after"), -EAGAIN);

	mcd_start(&d, 0);
	raw_set(d.port, data_key("/f7"), "old", 3);
	raw_set(d.port, data_key("/other"), "old", 3);
	wait_up(t, 5);
	ck_assert_uint_eq(mstats(t).flushes, 1);
	ck_assert(!mstats(t).overflow);
	ck_assert_uint_eq(mstats(t).pending, 0);
	ck_assert(!raw_has(d.port, data_key("/f7")));
	ck_assert(!raw_has(d.port, data_key("/other")));
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

/* A path whose values live on server want of t's. */
static void path_on(struct tier *t, unsigned want, const char *stem,
		    char *path, size_t size)
{
	for (int k = 0; k < 1000; k++) {
		snprintf(path, size, "/%s%d", stem, k);
		if (tier_memcached_server_of(t, path) == (int)want)
			return;
	}
	ck_abort_msg("no path on server %u", want);
}

/*
 * One server of two down: its keys are skipped and its deletes wait,
 * while the other goes on serving; when it answers again, it is flushed
 * if too many waited, and the other's values are untouched.
 */
START_TEST(test_live_one_of_two_down)
{
	const struct tier_version v = { .ino = 1, .size = 3 };
	struct tier_version got;
	struct mcd d[2] = { { 0 }, { 0 } };
	char servers[64], err[256], up[32], down[32], gone[32], path[32];
	char buf[4];
	struct tier *t;
	uint64_t errors;
	int r;

	mcd_start(&d[0], 0);
	mcd_start(&d[1], 0);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d,127.0.0.1:%d",
		 d[0].port, d[1].port);
	ck_assert_msg(new_tier(servers, PREFIX, 0, &t, err, sizeof(err)) == 0,
		      "%s", err);
	path_on(t, 0, "up", up, sizeof(up));
	path_on(t, 1, "down", down, sizeof(down));
	path_on(t, 1, "gone", gone, sizeof(gone));
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, up, &v, "uuu", 3), 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, down, &v, "ddd", 3), 0);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, gone, &v, "ggg", 3), 0);
	ck_assert_uint_eq(stats(t).servers, 2);
	ck_assert_uint_eq(stats(t).servers_down, 0);

	mcd_kill(&d[1]);
	r = (int)t->ops->get(t, TIER_DATA, down, &got, buf, 4, 0);
	ck_assert_msg(r == -EIO || r == -EAGAIN, "get: %d", r);
	ck_assert(stats(t).down);
	ck_assert_uint_eq(stats(t).servers_down, 1);
	errors = stats(t).errors;
	/* the other server serves on, the dead one is skipped */
	for (int k = 0; k < 20; k++) {
		ck_assert_int_eq(t->ops->get(t, TIER_DATA, up, &got, buf, 4, 0),
				 3);
		ck_assert_int_eq(
			t->ops->get(t, TIER_DATA, down, &got, buf, 4, 0),
			-EAGAIN);
	}
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, up, &v, "UUU", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, up, &got, buf, 4, 0), 3);
	ck_assert(memcmp(buf, "UUU", 3) == 0);
	ck_assert_uint_eq(stats(t).errors, errors);
	/* deletes: delivered to the live one, waiting for the dead one */
	ck_assert_int_eq(t->ops->forget(t, up), 0);
	ck_assert(!raw_has(d[0].port, data_key(up)));
	ck_assert_int_eq(t->ops->forget(t, gone), -EAGAIN);
	ck_assert_uint_eq(mstats(t).pending, 1);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, up, &v, "uuu", 3), 0);

	/* back on its port, still holding what must not be served */
	mcd_start(&d[1], 0);
	raw_set(d[1].port, data_key(gone), "ggg", 3);
	raw_set(d[1].port, data_key(down), "ddd", 3);
	raw_set(d[1].port, meta_key(down), "1 1 3 0 0 0", 11);
	{
		double start = now_s();

		/* requests for the other server's keys probe it too */
		while (stats(t).servers_down && now_s() - start < 5) {
			ck_assert_int_eq(
				t->ops->get(t, TIER_DATA, up, &got, buf, 4, 0),
				3);
			pause_ms(20);
		}
	}
	ck_assert_uint_eq(stats(t).servers_down, 0);
	ck_assert(!stats(t).down);
	ck_assert_uint_eq(mstats(t).pending, 0);
	ck_assert(!raw_has(d[1].port, data_key(gone)));
	ck_assert(raw_has(d[1].port, data_key(down)));

	/* too many deletes wait: only the dead server is flushed */
	mcd_kill(&d[1]);
	ck_assert_int_lt(t->ops->get(t, TIER_DATA, down, &got, buf, 4, 0), 0);
	for (int k = 0, n = 0; n <= 4096; k++) {
		snprintf(path, sizeof(path), "/f%d", k);
		if (tier_memcached_server_of(t, path) != 1)
			continue;
		ck_assert_int_eq(t->ops->forget(t, path), -EAGAIN);
		n++;
	}
	ck_assert(mstats(t).overflow);
	ck_assert_uint_eq(mstats(t).pending, 0);
	mcd_start(&d[1], 0);
	raw_set(d[1].port, data_key(down), "ddd", 3);
	{
		double start = now_s();

		while (stats(t).servers_down && now_s() - start < 5) {
			t->ops->get(t, TIER_DATA, down, &got, buf, 4, 0);
			pause_ms(20);
		}
	}
	ck_assert_uint_eq(stats(t).servers_down, 0);
	ck_assert_uint_eq(mstats(t).flushes, 1);
	ck_assert(!raw_has(d[1].port, data_key(down)));
	ck_assert(raw_has(d[0].port, data_key(up)));
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, up, &got, buf, 4, 0), 3);
	t->ops->free(t);
	mcd_kill(&d[0]);
	mcd_kill(&d[1]);
}
END_TEST

struct worker {
	struct tier *t;
	int id;
	int served;
};

/* A value's bytes follow from its version, so a hit can be checked. */
static void fill(char *buf, size_t len, uint64_t ino)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('a' + (ino + k) % 26);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	char val[2048], buf[2048], want[2048], path[16];

	for (int k = 0; k < 400; k++) {
		int f = (int)((unsigned)(k * 7 + w->id) % 16);
		struct tier_version v = { .ino = (uint64_t)(k % 5),
					  .size = 100 + (uint64_t)f * 100 },
				    got;
		ssize_t n;

		snprintf(path, sizeof(path), "/f%d", f);
		switch (k % 3) {
		case 0:
			fill(val, v.size, v.ino);
			w->t->ops->put(w->t, TIER_DATA, path, &v, val, v.size);
			break;
		case 1:
			n = w->t->ops->get(w->t, TIER_DATA, path, &got, buf,
					   sizeof(buf), 0);
			if (n >= 0) {
				ck_assert_uint_eq((uint64_t)n, got.size);
				fill(want, got.size, got.ino);
				ck_assert(memcmp(buf, want, got.size) == 0);
				w->served++;
			}
			break;
		default:
			if (k % 9 == 2)
				w->t->ops->forget(w->t, path);
		}
	}
	return NULL;
}

START_TEST(test_live_threads)
{
	enum { N = 8 };
	struct worker w[N];
	pthread_t th[N];
	struct mcd d = { 0 };
	struct tier *t;
	int served = 0;

	mcd_start(&d, 0);
	t = live_tier(&d, 0);
	for (int k = 0; k < N; k++) {
		w[k] = (struct worker){ .t = t, .id = k };
		ck_assert_int_eq(pthread_create(&th[k], NULL, work, &w[k]), 0);
	}
	for (int k = 0; k < N; k++) {
		pthread_join(th[k], NULL);
		served += w[k].served;
	}
	ck_assert_int_gt(served, 0);
	ck_assert_uint_eq(stats(t).errors, 0);
	ck_assert(!stats(t).down);
	t->ops->free(t);
	mcd_kill(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memcached");
	TCase *tc = tcase_create("keys");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_key_every_byte);
	tcase_add_test(tc, test_key_cases);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_distribution);
	suite_add_tcase(s, tc);

	if (access(MEMCACHED_BIN, X_OK) == 0) {
		tc = tcase_create("live");
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_live_round_trip);
		tcase_add_test(tc, test_live_versions);
		tcase_add_test(tc, test_live_unpaired);
		tcase_add_test(tc, test_live_too_big);
		tcase_add_test(tc, test_live_key_too_long);
		tcase_add_test(tc, test_live_forget);
		tcase_add_test(tc, test_live_ttl);
		tcase_add_loop_test(tc, test_live_placement, 0, 2);
		tcase_add_test(tc, test_live_down_and_back);
		tcase_add_test(tc, test_live_restart);
		tcase_add_test(tc, test_live_overflow);
		tcase_add_test(tc, test_live_one_of_two_down);
		tcase_add_test(tc, test_live_threads);
		suite_add_tcase(s, tc);
	} else {
		printf("SKIP live tests: no %s (Debian: apt-get "
		       "install "
		       "memcached)\n",
		       MEMCACHED_BIN);
	}

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
