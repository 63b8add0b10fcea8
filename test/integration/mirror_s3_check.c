// SPDX-License-Identifier: MIT
/*
 * The S3 mirror target against a real S3 server (s3rver, see s3rver.sh),
 * driven as the mirror engine drives it: steps kept depth() at a time on
 * a libevent loop, new ones started from completions.  What it did is
 * checked through the target's own list() and through plain GETs signed
 * here, apart from the target.
 *
 *   mirror_s3_check ops ENDPOINT BUCKET DIR      every op, and errors
 *   mirror_s3_check outage ENDPOINT BUCKET DIR   with mirror-s3.sh: the
 *	server is stopped, then killed under steps in flight, restarted
 *   mirror_s3_check bench ENDPOINT BUCKET DIR N  N puts of 1 KiB
 *
 * DIR is scratch space (files to put, credentials).  The account is
 * s3rver's: S3RVER/S3RVER.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/evp.h>

#include "mirror_target.h"

#define KEY_ID "S3RVER"
#define SECRET "S3RVER"
#define WRONG_SECRET "Wr0ngSecretThatMustNotShow"
#define PREFIX "mirror/pre fix"
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define BIG_SIZE 20000000 /* three parts: 8 + 8 + 4 MB */
#define MANY 1100	  /* over a page of a listing */
#define DEEP 1050	  /* keys moved by one rename: two pages */
#define DEADLINE_S 240

static const struct mirror_target_ops *ops = &mirror_s3_ops;
static struct event_base *base;
static const char *endpoint, *bucket, *dir;
static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);   \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			failures++;                                            \
		}                                                              \
	} while (0)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- files to put ---------------------------------------------------- */

/* A file of size pseudo-random bytes (from seed) in DIR, opened. */
static int make_file(const char *name, size_t size, uint32_t seed)
{
	char path[4096];
	unsigned char *p = malloc(size ? size : 1);
	uint32_t x = seed ? seed : 1;
	int fd;

	if (!p)
		die("out of memory");
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, p, size) != (ssize_t)size)
		die("%s: %s", path, strerror(errno));
	free(p);
	return fd;
}

static void sha256_fd(int fd, size_t size, unsigned char md[32])
{
	unsigned char *p = malloc(size ? size : 1);

	if (!p || pread(fd, p, size, 0) != (ssize_t)size)
		die("reading back: %s", strerror(errno));
	EVP_Digest(p, size, md, NULL, EVP_sha256(), NULL);
	free(p);
}

static void write_text(const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

/* ---- the target ------------------------------------------------------ */

static bool in_call; /* inside a call to the target */

static struct mirror_target *create(const char *url, int want, char *err,
				    size_t errlen)
{
	struct mirror_target *t = NULL;
	int r = ops->create(url, base, &t, err, errlen);

	CHECK(r == want, "create %s: %d (%s), not %d", url, r, err, want);
	CHECK(!strstr(err, WRONG_SECRET), "create: the secret shows: %s", err);
	return r == 0 ? t : NULL;
}

/* s3://BUCKET/PREFIX?endpoint=...&credentials=DIR/CREDS[&more] */
static char *url_of(const char *bkt, const char *creds, const char *more)
{
	char *u;

	if (asprintf(&u,
		     "s3://%s/%s?endpoint=%s&region=us-east-1"
		     "&credentials=%s/%s%s",
		     bkt, "mirror/pre%20fix", endpoint, dir, creds, more) < 0)
		die("out of memory");
	return u;
}

struct result {
	bool done;
	int err;
	char msg[512];
};

static void result_done(void *arg, int err, const char *msg)
{
	struct result *res = arg;

	CHECK(!in_call, "a completion from inside the call that started it");
	res->done = true;
	res->err = err;
	snprintf(res->msg, sizeof(res->msg), "%s", msg ? msg : "");
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	die("no answer within %d s", DEADLINE_S);
}

/* Runs the loop until *flag. */
static void run_until(const bool *flag)
{
	struct timeval tv = { DEADLINE_S, 0 };
	struct event *ev = evtimer_new(base, timeout_cb, NULL);

	evtimer_add(ev, &tv);
	while (!*flag)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			die("event loop");
	event_free(ev);
}

/* Runs the loop for ms. */
static void run_for(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static int do_connect(struct mirror_target *t, char *msg, size_t len)
{
	struct result res = { 0 };

	in_call = true;
	ops->connect(t, result_done, &res);
	in_call = false;
	run_until(&res.done);
	snprintf(msg, len, "%s", res.msg);
	return res.err;
}

/* ---- steps, depth() at a time ---------------------------------------- */

enum kind { PUT, MKDIR, SYMLINK, LINK, REMOVE, RMDIR, RENAME, SETATTR };

struct job {
	enum kind kind;
	char path[256], path2[256];
	int fd;
	uint64_t size;
	struct mirror_attr a;
	bool dir;
	int want; /* 0 or an errno; CONN: a connection error */
	int err;
	char msg[256];
};

#define CONN 1
#define MAX_JOBS 16384

static struct mirror_target *T;
static struct job jobs[MAX_JOBS];
static unsigned njobs, started, finished, inflight, most_inflight;
static bool all_done;

static struct job *job(enum kind kind, const char *path, int want)
{
	struct job *j = &jobs[njobs++];

	if (njobs > MAX_JOBS)
		die("too many jobs");
	*j = (struct job){ .kind = kind, .fd = -1, .want = want };
	snprintf(j->path, sizeof(j->path), "%s", path);
	return j;
}

static struct job *put(const char *path, int fd, uint64_t size, mode_t mode,
		       time_t sec, long nsec)
{
	struct job *j = job(PUT, path, 0);

	j->fd = fd;
	j->size = size;
	j->a = (struct mirror_attr){ mode, { sec, nsec } };
	return j;
}

static struct job *mkdir_job(const char *path, mode_t mode, time_t sec)
{
	struct job *j = job(MKDIR, path, 0);

	j->a = (struct mirror_attr){ mode, { sec, 0 } };
	return j;
}

static struct job *job2(enum kind kind, const char *path, const char *path2,
			int want)
{
	struct job *j = job(kind, path, want);

	snprintf(j->path2, sizeof(j->path2), "%s", path2);
	return j;
}

static bool is_conn_error(int err)
{
	return err == -ECONNRESET || err == -ECONNREFUSED ||
	       err == -ETIMEDOUT || err == -EHOSTUNREACH || err == -EIO;
}

static const char *const kind_names[] = { "put",    "mkdir",  "symlink",
					  "link",   "remove", "rmdir",
					  "rename", "setattr" };

static void pump(void);

static void job_done(void *arg, int err, const char *msg)
{
	struct job *j = arg;

	CHECK(!in_call, "a completion from inside the call that started it");
	j->err = err;
	snprintf(j->msg, sizeof(j->msg), "%s", msg ? msg : "");
	if (j->want == CONN)
		CHECK(is_conn_error(err) && msg && *msg,
		      "%s %s: %d (%s), not a connection error",
		      kind_names[j->kind], j->path, err, j->msg);
	else
		CHECK(err == -j->want, "%s %s: %d (%s), not %d",
		      kind_names[j->kind], j->path, err, j->msg, -j->want);
	CHECK(!err || (msg && *msg && !strchr(msg, '\n')),
	      "%s %s: no one-line message", kind_names[j->kind], j->path);
	inflight--;
	finished++;
	pump();
}

static void start(struct job *j)
{
	in_call = true;
	switch (j->kind) {
	case PUT:
		ops->put(T, j->path, j->fd, j->size, &j->a, job_done, j);
		break;
	case MKDIR:
		ops->mkdir(T, j->path, &j->a, job_done, j);
		break;
	case SYMLINK:
		ops->symlink(T, j->path, j->path2, job_done, j);
		break;
	case LINK:
		ops->link(T, j->path, j->path2, job_done, j);
		break;
	case REMOVE:
		ops->remove(T, j->path, job_done, j);
		break;
	case RMDIR:
		ops->rmdir(T, j->path, job_done, j);
		break;
	case RENAME:
		ops->rename(T, j->path, j->path2, j->dir, job_done, j);
		break;
	case SETATTR:
		ops->setattr(T, j->path, &j->a, job_done, j);
		break;
	}
	in_call = false;
}

static void pump(void)
{
	unsigned depth = ops->depth(T);

	while (inflight < depth && started < njobs) {
		inflight++;
		if (inflight > most_inflight)
			most_inflight = inflight;
		start(&jobs[started++]);
	}
	all_done = finished == njobs;
}

/* Runs the jobs queued since the last batch, depth() at a time. */
static void batch(void)
{
	all_done = false;
	pump();
	run_until(&all_done);
	njobs = started = finished = 0;
}

/* ---- listings ----------------------------------------------------------- */

struct seen {
	char name[256];
	char type;
	uint64_t size;
	struct mirror_attr a;
};

struct listing {
	bool done;
	int err;
	char msg[256];
	unsigned n, stop_after;
	struct seen e[MANY + 16];
};

static int on_entry(void *arg, const struct mirror_entry *e)
{
	struct listing *l = arg;

	CHECK(!in_call, "an entry from inside list()");
	if (l->n < sizeof(l->e) / sizeof(l->e[0])) {
		snprintf(l->e[l->n].name, sizeof(l->e[0].name), "%s", e->name);
		l->e[l->n].type = e->type;
		l->e[l->n].size = e->size;
		l->e[l->n].a = e->attr;
	}
	l->n++;
	return l->stop_after && l->n == l->stop_after;
}

static void on_listed(void *arg, int err, const char *msg)
{
	struct listing *l = arg;

	l->done = true;
	l->err = err;
	snprintf(l->msg, sizeof(l->msg), "%s", msg ? msg : "");
}

static struct listing *list(const char *path, unsigned stop_after)
{
	struct listing *l = calloc(1, sizeof(*l));

	if (!l)
		die("out of memory");
	l->stop_after = stop_after;
	in_call = true;
	ops->list(T, path, on_entry, on_listed, l);
	in_call = false;
	run_until(&l->done);
	return l;
}

/* A read back: its bytes against fd's. */
struct readback {
	int fd;
	uint64_t size, got;
	unsigned chunks, stop_after;
	bool done, bad;
	int err;
	char msg[512];
};

static int on_data(void *arg, uint64_t off, const void *buf, size_t len)
{
	struct readback *rb = arg;
	unsigned char mine[65536];

	CHECK(!in_call, "bytes from inside read()");
	CHECK(!rb->done, "bytes after read()'s completion");
	if (!len || off > rb->size || len > rb->size - off) {
		rb->bad = true;
		return 1;
	}
	for (size_t k = 0; k < len; k += sizeof(mine)) {
		size_t n = len - k < sizeof(mine) ? len - k : sizeof(mine);

		if (pread(rb->fd, mine, n, (off_t)(off + k)) != (ssize_t)n ||
		    memcmp(mine, (const char *)buf + k, n))
			rb->bad = true;
	}
	rb->got += len;
	rb->chunks++;
	return rb->stop_after && rb->chunks >= rb->stop_after;
}

static void on_read(void *arg, int err, const char *msg)
{
	struct readback *rb = arg;

	rb->done = true;
	rb->err = err;
	snprintf(rb->msg, sizeof(rb->msg), "%s", msg ? msg : "");
}

/* Read path back; it must hold size bytes of fd (or be missing: want). */
static void read_back(const char *path, int fd, uint64_t size,
		      unsigned stop_after, int want)
{
	struct readback rb = { .fd = fd, .size = size,
			       .stop_after = stop_after };

	in_call = true;
	ops->read(T, path, on_data, on_read, &rb);
	in_call = false;
	run_until(&rb.done);
	CHECK(rb.err == want, "read %s: %d (%s), not %d", path, rb.err,
	      rb.msg, want);
	CHECK(!rb.bad, "read %s: wrong bytes", path);
	CHECK(want || (stop_after ? rb.chunks == stop_after : rb.got == size),
	      "read %s: %llu bytes of %llu in %u chunks", path,
	      (unsigned long long)rb.got, (unsigned long long)size,
	      rb.chunks);
}

/* name's entry in l, of type. */
static const struct seen *find(const struct listing *l, const char *name,
			       char type)
{
	for (unsigned i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].name, name)) {
			CHECK(l->e[i].type == type, "%s: type %c, not %c", name,
			      l->e[i].type, type);
			return &l->e[i];
		}
	CHECK(false, "no entry %s", name);
	return NULL;
}

/* ---- plain signed requests ------------------------------------------- */

struct got {
	long status;
	char *body;
	size_t len;
	char mode[32], mtime[64], type[32], ctype[128];
};

static size_t got_body(char *p, size_t size, size_t n, void *arg)
{
	struct got *g = arg;
	char *b = realloc(g->body, g->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + g->len, p, size * n);
	g->body = b;
	g->len += size * n;
	b[g->len] = '\0';
	return size * n;
}

static void header_value(const char *line, size_t n, const char *name,
			 char *out, size_t cap)
{
	size_t k = strlen(name);

	if (n <= k + 1 || strncasecmp(line, name, k) || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n && *line == ' ') {
		line++;
		n--;
	}
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		n--;
	snprintf(out, cap, "%.*s", (int)n, line);
}

static size_t got_header(char *line, size_t size, size_t n, void *arg)
{
	struct got *g = arg;

	n *= size;
	header_value(line, n, "x-amz-meta-mode", g->mode, sizeof(g->mode));
	header_value(line, n, "x-amz-meta-mtime", g->mtime, sizeof(g->mtime));
	header_value(line, n, "x-amz-meta-cachefs-type", g->type,
		     sizeof(g->type));
	header_value(line, n, "content-type", g->ctype, sizeof(g->ctype));
	return n;
}

/* The URL of PREFIX/path's key, encoded as S3 wants it. */
static char *key_url(const char *path)
{
	char key[1024], *url, *p;
	size_t n;

	snprintf(key, sizeof(key), "%s%s", PREFIX, path);
	n = strlen(endpoint) + strlen(bucket) + 3 * strlen(key) + 3;
	url = malloc(n);
	if (!url)
		die("out of memory");
	p = url + sprintf(url, "%s/%s/", endpoint, bucket);
	for (const unsigned char *k = (const unsigned char *)key; *k; k++)
		if ((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		    (*k >= '0' && *k <= '9') || strchr("-._~/", *k))
			*p++ = (char)*k;
		else
			p += sprintf(p, "%%%02X", *k);
	*p = '\0';
	return url;
}

/*
 * method PREFIX/path (a directory's marker: path ends with "/"), signed
 * here; a PUT sends body with content type ctype.
 */
static struct got request(const char *method, const char *path,
			  const char *body, const char *ctype)
{
	struct got g = { 0 };
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	char *url = key_url(path), hdr[256], hex[65];
	unsigned char md[32];

	EVP_Digest(body ? body : "", body ? strlen(body) : 0, md, NULL,
		   EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hex);
	h = curl_slist_append(h, hdr);
	if (ctype) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	curl_easy_setopt(e, CURLOPT_USERPWD, KEY_ID ":" SECRET);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, got_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, got_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &g);
	if (curl_easy_perform(e) != CURLE_OK)
		die("%s %s: no answer", method, url);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &g.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(url);
	return g;
}

static struct got get(const char *path)
{
	return request("GET", path, NULL, NULL);
}

static void got_free(struct got *g)
{
	free(g->body);
}

/* PREFIX/path holds the size bytes of fd, with mode and mtime. */
static void check_object(const char *path, int fd, size_t size,
			 const char *mode, const char *mtime)
{
	struct got g = get(path);
	unsigned char want[32], have[32];

	CHECK(g.status == 200, "GET %s: HTTP %ld", path, g.status);
	CHECK(g.len == size, "GET %s: %zu bytes, not %zu", path, g.len, size);
	sha256_fd(fd, size, want);
	EVP_Digest(g.body ? g.body : "", g.len, have, NULL, EVP_sha256(), NULL);
	CHECK(!memcmp(want, have, 32), "GET %s: other bytes", path);
	CHECK(!strcmp(g.mode, mode), "GET %s: mode %s, not %s", path, g.mode,
	      mode);
	if (mtime)
		CHECK(!strcmp(g.mtime, mtime), "GET %s: mtime %s, not %s", path,
		      g.mtime, mtime);
	got_free(&g);
}

static void check_gone(const char *path)
{
	struct got g = get(path);

	CHECK(g.status == 404, "GET %s: HTTP %ld, not 404", path, g.status);
	got_free(&g);
}

/* ---- ops ----------------------------------------------------------------- */

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0)
		die("a free port: %s", strerror(errno));
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

/*
 * A fake S3: answers the first fails requests (all: -1) with status and
 * body, then 200.
 */
struct fake {
	int fails;
	int status;
	const char *body;
	unsigned requests;
};

static void fake_answer(struct evhttp_request *req, void *arg)
{
	struct fake *f = arg;
	struct evbuffer *b = evbuffer_new();
	bool fail = f->fails < 0 || (int)++f->requests <= f->fails;

	if (f->fails < 0)
		f->requests++;
	evhttp_add_header(evhttp_request_get_output_headers(req), "ETag",
			  "\"0123\"");
	evbuffer_add_printf(b, "%s", fail ? f->body : "");
	evhttp_send_reply(req, fail ? f->status : 200, "", b);
	evbuffer_free(b);
}

static int fake_step(struct fake *f, bool link, int fails, int status,
		     const char *code)
{
	struct mirror_target *t;
	struct mirror_attr a = { 0644, { 1, 0 } };
	struct result res = { 0 };
	char err[512], body[256], *u;
	int fd = make_file("fake", 100, 6);
	struct evhttp *http = evhttp_new(base);
	int port = free_port();

	if (!http || evhttp_bind_socket(http, "127.0.0.1", (uint16_t)port))
		die("evhttp on port %d", port);
	evhttp_set_gencb(http, fake_answer, f);
	snprintf(body, sizeof(body),
		 "<?xml version=\"1.0\"?>\n<Error><Code>%s</Code>"
		 "<Message>as told</Message></Error>",
		 code);
	*f = (struct fake){ fails, status, body, 0 };
	if (asprintf(&u,
		     "s3://b-fake?endpoint=http://127.0.0.1:%d"
		     "&credentials=%s/creds",
		     port, dir) < 0)
		die("out of memory");
	t = create(u, 0, err, sizeof(err));
	if (!t)
		die("create: %s", err);
	if (link)
		ops->link(t, "/a", "/b", result_done, &res);
	else
		ops->put(t, "/a", fd, 100, &a, result_done, &res);
	run_until(&res.done);
	CHECK(!res.err || strstr(res.msg, code), "fake %s: %s", code, res.msg);
	ops->destroy(t);
	evhttp_free(http);
	free(u);
	close(fd);
	return res.err;
}

/*
 * S3's "try again" (5xx, SlowDown) is tried again, twice; an error in a
 * 200 (as CopyObject may answer) is an error.
 */
static void check_retries(void)
{
	struct fake f;
	int r;

	r = fake_step(&f, false, 2, 500, "InternalError");
	CHECK(r == 0 && f.requests == 3, "500 twice: %d after %u", r,
	      f.requests);
	r = fake_step(&f, false, 1, 503, "SlowDown");
	CHECK(r == 0 && f.requests == 2, "SlowDown: %d after %u", r,
	      f.requests);
	r = fake_step(&f, false, -1, 500, "InternalError");
	CHECK(r == -EIO && f.requests == 3, "500 always: %d after %u", r,
	      f.requests);
	r = fake_step(&f, true, -1, 200, "AccessDenied");
	CHECK(r == -EACCES && f.requests == 1, "an error in a 200: %d, %u", r,
	      f.requests);
	r = fake_step(&f, true, 1, 200, "InternalError");
	CHECK(r == 0 && f.requests == 2, "a 500 in a 200: %d after %u", r,
	      f.requests);
}

/* create() refuses what it cannot use, saying why, without a word of I/O. */
static void check_create_errors(void)
{
	char err[512], *u;

	u = url_of(bucket, "creds", "&bogus=1");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "bogus"), "unknown option: %s", err);
	free(u);
	u = url_of(bucket, "no-such-file", "");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "no-such-file"), "missing credentials: %s", err);
	free(u);
	u = url_of(bucket, "incomplete", "");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "aws_secret_access_key"), "incomplete: %s", err);
	free(u);
	u = url_of(bucket, "creds", "&copy_max=0");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "copy_max"), "copy_max=0: %s", err);
	free(u);
	u = url_of(bucket, "creds", "&copy_max=6000000000");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "copy_max"), "copy_max over 5 GiB: %s", err);
	free(u);
	u = url_of(bucket, "creds", "&profile=nobody");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "nobody"), "missing profile: %s", err);
	free(u);
	create("s3://b?region=us-east-1", -EINVAL, err, sizeof(err));
	create("sftp://host/x", -EINVAL, err, sizeof(err));
}

/* Bad keys, a missing bucket, nobody listening: connect() says which. */
static void check_connect_errors(void)
{
	struct mirror_target *t;
	char err[512], msg[512], *u;
	int r;

	u = url_of(bucket, "creds", "&profile=wrongsecret");
	t = create(u, 0, err, sizeof(err));
	r = t ? do_connect(t, msg, sizeof(msg)) : 0;
	CHECK(r == -EKEYREJECTED, "wrong secret: %d (%s)", r, msg);
	CHECK(strstr(msg, "SignatureDoesNotMatch") && strstr(msg, endpoint) &&
		      strstr(msg, bucket),
	      "wrong secret, unclear: %s", msg);
	CHECK(!strstr(msg, WRONG_SECRET), "the secret shows: %s", msg);
	ops->destroy(t);
	free(u);

	u = url_of(bucket, "creds", "&profile=wrongkey");
	t = create(u, 0, err, sizeof(err));
	r = t ? do_connect(t, msg, sizeof(msg)) : 0;
	CHECK(r == -EKEYREJECTED && strstr(msg, "InvalidAccessKeyId"),
	      "wrong key: %d (%s)", r, msg);
	ops->destroy(t);
	free(u);

	u = url_of("no-such-bucket", "creds", "");
	t = create(u, 0, err, sizeof(err));
	r = t ? do_connect(t, msg, sizeof(msg)) : 0;
	CHECK(r == -ENOENT && strstr(msg, "no-such-bucket"),
	      "missing bucket: %d (%s)", r, msg);
	ops->destroy(t);
	free(u);

	if (asprintf(&u,
		     "s3://%s?endpoint=http://127.0.0.1:%d"
		     "&credentials=%s/creds",
		     bucket, free_port(), dir) < 0)
		die("out of memory");
	t = create(u, 0, err, sizeof(err));
	r = t ? do_connect(t, msg, sizeof(msg)) : 0;
	CHECK(r == -ECONNREFUSED && *msg, "nobody there: %d (%s)", r, msg);
	ops->destroy(t);
	free(u);
}

/* The environment's keys (and a session token) do as well as a file. */
static void check_env_credentials(void)
{
	struct mirror_target *t;
	char err[512], msg[512], *u;
	int r;

	if (asprintf(&u, "s3://%s/env?endpoint=%s", bucket, endpoint) < 0)
		die("out of memory");
	setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	setenv("AWS_SESSION_TOKEN", "a-session-token", 1);
	t = create(u, 0, err, sizeof(err));
	r = t ? do_connect(t, msg, sizeof(msg)) : 0;
	CHECK(r == 0, "credentials from the environment: %d (%s)", r, msg);
	ops->destroy(t);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	create(u, -EINVAL, err, sizeof(err));
	CHECK(strstr(err, "AWS_ACCESS_KEY_ID"), "no credentials: %s", err);
	free(u);
}

static void write_credentials(void)
{
	write_text("creds", "# s3rver's account\n"
			    "[default]\n"
			    "aws_access_key_id = " KEY_ID "\n"
			    "aws_secret_access_key = " SECRET "\n"
			    "\n[profile wrongsecret]\n"
			    "aws_access_key_id=" KEY_ID "\n"
			    "aws_secret_access_key=" WRONG_SECRET "\n"
			    "[wrongkey]\n"
			    "aws_access_key_id = NOBODY\n"
			    "aws_secret_access_key = " SECRET "\n");
	write_text("incomplete", "[default]\naws_access_key_id = " KEY_ID "\n");
}

static struct mirror_target *connect_main(void)
{
	struct mirror_target *t;
	char err[512], msg[512], *u = url_of(bucket, "creds", "");
	int r;

	t = create(u, 0, err, sizeof(err));
	if (!t)
		die("create: %s", err);
	r = do_connect(t, msg, sizeof(msg));
	if (r)
		die("connect: %d (%s)", r, msg);
	free(u);
	return t;
}

/* Completions in flight at destroy() are not called, even from one. */
static unsigned dropped_calls;

static void count_done(void *arg, int err, const char *msg)
{
	dropped_calls++;
	if (arg)
		ops->destroy(arg);
}

static void check_destroy(int fd)
{
	struct mirror_attr a = { 0644, { 1, 0 } };
	struct mirror_target *t = connect_main();

	for (int i = 0; i < 8; i++)
		ops->put(t, "/dropped", fd, 1024, &a, count_done, NULL);
	run_for(5);
	ops->destroy(t);
	dropped_calls = 0;
	run_for(200);
	CHECK(dropped_calls == 0, "%u completions after destroy()",
	      dropped_calls);

	/* the first completion destroys it: no more are called */
	t = connect_main();
	for (int i = 0; i < 8; i++)
		ops->mkdir(t, "/dropped-dir", &a, count_done, t);
	run_for(500);
	CHECK(dropped_calls == 1, "%u completions, destroy()ed in the first",
	      dropped_calls);
}

static void ops_test(void)
{
	int small = make_file("small", 1024, 1),
	    empty = make_file("empty", 0, 2);
	int big = make_file("big", BIG_SIZE, 3),
	    over1 = make_file("o1", 3000, 4);
	int over2 = make_file("o2", 5000, 5);
	struct listing *l;
	struct got g;
	char path[256];
	struct job *j;
	double t0;

	write_credentials();
	check_create_errors();
	check_connect_errors();
	check_env_credentials();
	check_retries();
	T = connect_main();

	/* directories first: no step runs beside one on an ancestor */
	mkdir_job("/tree", 0755, 1000);
	mkdir_job("/many", 0755, 1000);
	mkdir_job("/dir", 0755, 1000);
	mkdir_job("/emptydir", 0750, 1600000000);
	mkdir_job("/", 0755, 1000); /* the root: always there */
	batch();
	mkdir_job("/tree/sub", 0711, 1001);
	batch();
	mkdir_job("/tree/sub/deep", 0700, 1002);
	batch();

	t0 = now_s();
	put("/small.txt", small, 1024, 0644, 1700000000, 123456789);
	put("/empty", empty, 0, 0640, 1700000001, 0);
	put("/big.bin", big, BIG_SIZE, 0600, 1700000002, 5);
	put("/over", over1, 3000, 0644, 1700000003, 0);
	put("/odd name ü+%.txt", small, 1024, 0644, 1700000004, 0);
	/* s3rver escapes "&" twice in listings: only where none is listed */
	put("/dir/a&b", small, 1024, 0644, 1700000004, 0);
	put("/dir/a", small, 1024, 0604, 1700000005, 0);
	put("/half/a", small, 1024, 0644, 1700000006, 0);
	put("/half/b", small, 1024, 0644, 1700000006, 0);
	put("/half2/a", small, 1024, 0644, 1700000006, 0);
	job2(SYMLINK, "/link", "small.txt", 0);
	job(REMOVE, "/nothing", 0);
	job(RMDIR, "/nodir", 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/many/f%04d", i);
		put(path, small, 1024, 0644, 1700000100 + i, 0);
	}
	for (int i = 0; i < DEEP; i++) {
		snprintf(path, sizeof(path), "/tree/sub/deep/f%04d", i);
		put(path, small, 1024, 0600, 1700000200, 0);
	}
	batch();
	printf("put %d files (one of 20 MB) in %.2f s, %u in flight at most\n",
	       MANY + DEEP + 10, now_s() - t0, most_inflight);
	CHECK(most_inflight == ops->depth(T), "%u in flight, depth is %u",
	      most_inflight, ops->depth(T));
	read_back("/small.txt", small, 1024, 0, 0);
	read_back("/empty", empty, 0, 0, 0);
	read_back("/big.bin", big, BIG_SIZE, 0, 0);
	read_back("/big.bin", big, BIG_SIZE, 1, 0);
	read_back("/nothing", -1, 0, 0, -ENOENT);

	g = request("PUT", "/typed.css", "p { }", "text/css");
	CHECK(g.status == 200, "PUT typed.css: HTTP %ld", g.status);
	got_free(&g);

	put("/over", over2, 5000, 0644, 1700000300, 0);
	job2(LINK, "/small.txt", "/hard", 0);
	job2(LINK, "/missing", "/x", ENOENT);
	job2(RENAME, "/dir/a", "/dir/b", 0);
	j = job2(RENAME, "/tree", "/moved", 0);
	j->dir = true;
	j = job2(RENAME, "/nothere", "/y", ENOENT);
	j->dir = true;
	job2(RENAME, "/nofile", "/z", ENOENT);
	/* as if a move of /half had stopped half way */
	j = job2(RENAME, "/half", "/half2", 0);
	j->dir = true;
	j = job(SETATTR, "/small.txt", 0);
	j->a = (struct mirror_attr){ 0600, { 1700000400, 999999999 } };
	j = job(SETATTR, "/emptydir", 0);
	j->a = (struct mirror_attr){ 0700, { 1700000401, 1 } };
	j = job(SETATTR, "/link", 0);
	j->a = (struct mirror_attr){ 0777, { 1700000402, 0 } };
	j = job(SETATTR, "/typed.css", 0);
	j->a = (struct mirror_attr){ 0444, { 1700000403, 0 } };
	job(SETATTR, "/nope", ENOENT);
	job(REMOVE, "/empty", 0);
	batch();
	j = mkdir_job("/emptydir", 0700, 1700000401); /* there already */
	j->a.mtime.tv_nsec = 1;
	job(REMOVE, "/empty", 0); /* gone already */
	job(RMDIR, "/dir/nosuch", 0);
	batch();

	/* the objects, as a plain client sees them */
	check_object("/small.txt", small, 1024, "600", "1700000400.999999999");
	check_object("/big.bin", big, BIG_SIZE, "600", "1700000002.000000005");
	check_object("/over", over2, 5000, "644", "1700000300.000000000");
	check_object("/odd name ü+%.txt", small, 1024, "644", NULL);
	check_object("/dir/a&b", small, 1024, "644", NULL);
	check_object("/hard", small, 1024, "644", NULL);
	check_object("/dir/b", small, 1024, "604", "1700000005.000000000");
	check_object("/moved/sub/deep/f0000", small, 1024, "600", NULL);
	check_object("/moved/sub/deep/f1049", small, 1024, "600", NULL);
	check_object("/half2/b", small, 1024, "644", NULL);
	check_gone("/dir/a");
	check_gone("/tree/");
	check_gone("/tree/sub/deep/f0000");
	check_gone("/tree/sub/deep/f1049");
	check_gone("/half/a");
	check_gone("/empty");
	g = get("/link");
	CHECK(g.status == 200 && g.body && !strcmp(g.body, "small.txt") &&
		      !strcmp(g.type, "symlink") && !strcmp(g.mode, "777") &&
		      !strcmp(g.mtime, "1700000402.000000000"),
	      "symlink: HTTP %ld, %s, type %s mode %s mtime %s", g.status,
	      g.body ? g.body : "", g.type, g.mode, g.mtime);
	got_free(&g);
	g = get("/typed.css");
	CHECK(!strcmp(g.ctype, "text/css") && !strcmp(g.mode, "444"),
	      "setattr lost the type: %s, mode %s", g.ctype, g.mode);
	got_free(&g);
	g = get("/emptydir/");
	CHECK(g.status == 200 && g.len == 0 && !strcmp(g.mode, "700") &&
		      !strcmp(g.mtime, "1700000401.000000001"),
	      "emptydir's marker: HTTP %ld, mode %s mtime %s", g.status, g.mode,
	      g.mtime);
	got_free(&g);
	g = get("/moved/sub/");
	CHECK(g.status == 200 && !strcmp(g.mode, "711"),
	      "moved/sub's marker: HTTP %ld, mode %s", g.status, g.mode);
	got_free(&g);

	/* the same through list() */
	l = list("/", 0);
	CHECK(l->err == 0, "list /: %d (%s)", l->err, l->msg);
	{
		const struct seen *e;

		e = find(l, "small.txt", 'f');
		CHECK(!e || (e->size == 1024 && e->a.mode == 0600 &&
			     e->a.mtime.tv_sec == 1700000400 &&
			     e->a.mtime.tv_nsec == 999999999),
		      "small.txt listed wrong");
		e = find(l, "big.bin", 'f');
		CHECK(!e || e->size == BIG_SIZE, "big.bin listed wrong");
		e = find(l, "link", 'l');
		CHECK(!e || (e->a.mode == 0777 && e->size == 9),
		      "link listed wrong");
		e = find(l, "emptydir", 'd');
		CHECK(!e || (e->a.mode == 0700 &&
			     e->a.mtime.tv_sec == 1700000401),
		      "emptydir listed wrong");
		e = find(l, "moved", 'd');
		CHECK(!e || e->a.mode == 0755, "moved listed wrong");
		find(l, "typed.css", 'f');
		find(l, "odd name ü+%.txt", 'f');
		find(l, "many", 'd');
		find(l, "dir", 'd');
		find(l, "half2", 'd');
		find(l, "hard", 'f');
		find(l, "over", 'f');
		CHECK(l->n == 12, "list /: %u entries, not 12", l->n);
	}
	free(l);
	l = list("/many", 0);
	CHECK(l->err == 0 && l->n == MANY, "list /many: %d, %u entries", l->err,
	      l->n);
	CHECK(l->n < MANY || (l->e[7].a.mtime.tv_sec == 1700000107 &&
			      l->e[7].a.mode == 0644),
	      "list /many: f0007 listed wrong");
	free(l);
	l = list("/moved/sub/deep", 0);
	CHECK(l->err == 0 && l->n == DEEP, "list moved/sub/deep: %d, %u",
	      l->err, l->n);
	free(l);
	l = list("/half", 0);
	CHECK(l->err == -ENOENT, "list /half: %d, %u", l->err, l->n);
	free(l);
	l = list("/emptydir", 0);
	CHECK(l->err == 0 && l->n == 0, "list /emptydir: %d, %u", l->err, l->n);
	free(l);
	l = list("/many", 3);
	CHECK(l->err == 0 && l->n == 3, "stopped listing: %d, %u", l->err,
	      l->n);
	free(l);
	l = list("/nothere", 0);
	CHECK(l->err == -ENOENT && *l->msg, "list /nothere: %d", l->err);
	free(l);

	/* no DELETE without a key: rmdir of a directory with keys below */
	job(RMDIR, "/moved", 0);
	batch();
	l = list("/moved", 0);
	CHECK(l->err == 0 && l->n == 1, "list /moved without its marker: %d",
	      l->err);
	free(l);

	ops->destroy(T);
	check_destroy(small);
	close(small);
	close(empty);
	close(big);
	close(over1);
	close(over2);
}

/* ---- outage ------------------------------------------------------------- */

static void expect_line(const char *want)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		die("no '%s' from the script", want);
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, want))
		die("'%s' from the script, not '%s'", line, want);
}

static void say(const char *what)
{
	printf("%s\n", what);
	fflush(stdout);
}

/*
 * With the script: steps go out to a stopped server, which is then
 * killed under them: they all fail as connection errors, and after a
 * restart a new connect() works.
 */
static void outage_test(void)
{
	int one = make_file("one", 1 << 20, 7), small = make_file("s", 1024, 8);
	char path[64];
	unsigned failed = 0;

	write_credentials();
	T = connect_main();
	put("/before", small, 1024, 0644, 1, 0);
	batch();
	say("ready");
	expect_line("stopped");
	for (int i = 0; i < 24; i++) {
		snprintf(path, sizeof(path), "/outage/f%d", i);
		put(path, i % 2 ? one : small, i % 2 ? 1 << 20 : 1024, 0644, 1,
		    0)
			->want = CONN;
	}
	job(REMOVE, "/before", CONN);
	all_done = false;
	pump();
	run_for(300); /* the requests are out */
	CHECK(inflight == njobs, "%u of %u steps done against a stopped server",
	      njobs - inflight, njobs);
	say("inflight");
	run_until(&all_done);
	for (unsigned i = 0; i < njobs; i++)
		failed += jobs[i].err != 0;
	printf("%u steps failed: %s\n", failed, jobs[0].msg);
	njobs = started = finished = 0;
	say("down");
	expect_line("restarted");
	{
		char msg[512];
		int r = do_connect(T, msg, sizeof(msg));

		CHECK(r == 0, "connect after the restart: %d (%s)", r, msg);
	}
	put("/after", small, 1024, 0644, 2, 0);
	batch();
	check_object("/after", small, 1024, "644", "2.000000000");
	check_object("/before", small, 1024, "644", "1.000000000");
	ops->destroy(T);
	close(one);
	close(small);
}

/* ---- bench ----------------------------------------------------------------
 */

static void bench(unsigned n)
{
	int small = make_file("small", 1024, 9);
	char path[64];
	double t0;

	if (n > MAX_JOBS)
		die("at most %d puts", MAX_JOBS);
	write_credentials();
	T = connect_main();
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/bench/f%06u", i);
		put(path, small, 1024, 0644, 1, 0);
	}
	t0 = now_s();
	batch();
	printf("%u puts of 1 KiB at depth %u: %.2f s, %.0f files/s\n", n,
	       ops->depth(T), now_s() - t0, n / (now_s() - t0));
	ops->destroy(T);
	close(small);
}

int main(int argc, char **argv)
{
	if (argc < 5)
		die("usage: %s ops|outage|bench ENDPOINT BUCKET DIR [N]",
		    argv[0]);
	endpoint = argv[2];
	bucket = argv[3];
	dir = argv[4];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	base = event_base_new();
	if (!base)
		die("event_base_new");
	if (!strcmp(argv[1], "ops"))
		ops_test();
	else if (!strcmp(argv[1], "outage"))
		outage_test();
	else if (!strcmp(argv[1], "bench") && argc > 5)
		bench((unsigned)strtoul(argv[5], NULL, 10));
	else
		die("no test %s", argv[1]);
	event_base_free(base);
	curl_global_cleanup();
	printf("%s: %d failed\n", argv[1], failures);
	return failures ? 1 : 0;
}
