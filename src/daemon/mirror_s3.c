// SPDX-License-Identifier: MIT
/*
 * The S3 mirror target (see mirror_target.h): a bucket and a key prefix,
 * spoken to over HTTP by libcurl's multi interface on the mirror's event
 * loop.
 *
 * Keys.  Path P is the key PREFIX P without its leading "/", PREFIX being
 * "" or "some/prefix/".  A directory is a marker object "KEY/" with an
 * empty body, so that empty directories and their attributes survive; a
 * symlink is an object whose body is its target.  Every object carries
 * the attributes as user metadata:
 *
 *	x-amz-meta-mode		octal permission bits: "644"
 *	x-amz-meta-mtime	"SECONDS.NANOSECONDS"
 *	x-amz-meta-cachefs-type	"symlink", on symlinks only
 *
 * Signing.  curl signs each request (CURLOPT_AWS_SIGV4), taking its path
 * and query as they are sent for the canonical request, so both are built
 * here already canonical: keys percent-encoded but for unreserved bytes
 * and "/", query parameters sorted, each with its "=".  The payload's
 * SHA-256 always goes in x-amz-content-sha256, which curl signs as it is:
 * without it curl would sign the hash of an empty body for a streamed
 * upload.  A file streams from the caller's descriptor, hashed first in a
 * pass of its own; above MULTIPART_OVER it goes in parts, each hashed
 * just before it is sent.
 *
 * Steps.  Each op is a step of one or more requests, a few in flight at
 * once; curl keeps the connections alive in its multi handle, DEPTH of
 * them to the endpoint at most, and queues what is over.  Completions
 * (and a listing's entries) are never called from curl's callbacks: a
 * step that is done is queued, and an event of its own calls them, so
 * never from inside the call that started the step, and a completion may
 * destroy the target.
 *
 * S3 has no rename: a file moves by CopyObject and DeleteObject, and a
 * directory by copying every key of a page of its listing, then deleting
 * them, page after page, so that a move cut short is finished by doing
 * it again.  CopyObject and CompleteMultipartUpload may fail after
 * answering 200 (they answer before the work is done): the XML tells.
 */
#include "mirror_target.h"
#include "hex.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <utlist.h>

#define DEPTH 32	  /* steps the engine keeps in flight; connections */
#define PARTS_IN_FLIGHT 4 /* of one multipart upload */
#define MULTIPART_OVER (16ULL << 20)
#define COPY_MAX (5ULL << 30) /* S3 copies an object in one request */
#define PART_MIN (8ULL << 20)
#define PARTS_MAX 10000	     /* S3's limit */
#define ANSWER_MAX (8 << 20) /* a page of 1000 keys of 1 KiB fits */
#define MSG_MAX 256
#define SCRATCH_SIZE (256 << 10)
#define CONNECT_TIMEOUT_S 15L
#define STALL_S 60L /* without a byte either way: the connection hangs */
#define RETRIES 2   /* of an answer "try again": 5xx, SlowDown */
#define RETRY_MS 100
#define SHA256_HEX 65
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct buf {
	char *p; /* NUL-terminated */
	size_t len, cap;
};

/* What an answer's headers tell of its object. */
struct meta {
	struct mirror_attr attr; /* zero without cachefs metadata */
	char type;		 /* 'f', 'l' or '?' */
	char *etag;
	struct curl_slist *keep; /* Content-Type and such, to copy over */
};

/* A key of a listing's page. */
struct item {
	char *key;
	char type; /* 'f', 'l', 'd' or '?' */
	bool gone; /* vanished since the listing */
	uint64_t size;
	struct mirror_attr attr;
};

struct step;
struct req;
typedef void (*req_done_fn)(struct req *r, int err);

/* One HTTP request. */
struct req {
	struct mirror_target *t;
	struct step *s; /* NULL: nobody waits for it (an abort) */
	struct req *prev, *next;
	req_done_fn done;
	CURL *easy;
	const char *method;
	char *what; /* the key, for messages */
	char *url;
	struct curl_slist *headers;
	char sha[SHA256_HEX];
	bool may_fail_late; /* an error may come with 200 */
	bool stream;	    /* a GET's body goes to its step's data() */
	uint64_t got;	    /* ... so far */
	unsigned idx;	    /* the step's item or part */
	unsigned tries;
	struct event *retry; /* sends it again */

	/* the body sent: from fd, or mem when fd < 0 */
	int fd;
	char *mem;
	uint64_t off, len, pos;
	int read_err;

	/* the answer */
	long status;
	struct buf answer;
	struct meta meta;
	char code[64]; /* S3's error code */
	char msg[MSG_MAX];
	char curl_err[CURL_ERROR_SIZE];
};

struct step {
	struct mirror_target *t;
	struct step *prev, *next;   /* t->steps */
	struct step *rprev, *rnext; /* t->ready */
	bool queued;
	void (*deliver)(struct step *s); /* when queued: else complete */
	mirror_done_fn done;
	mirror_entry_fn each;
	mirror_data_fn data; /* read */
	bool stop;	     /* read: data() had enough */
	void *arg;
	int err;
	char msg[MSG_MAX];
	unsigned inflight;

	char *key, *key2;
	struct mirror_attr attr;
	bool tried_marker; /* setattr: the directory's too */

	/* put: the file, and its multipart upload */
	int fd;
	uint64_t size, part_size;
	char *upload_id;
	char **etags;
	unsigned nparts;

	/* a page of a listing, or the parts; next to start, settled done */
	struct item *items;
	unsigned nitems, started, settled;
	bool deleting; /* rename: the page is copied */
	bool later;    /* not the first page */
	char *token;   /* of the next page */
};

/* A socket curl wants watched. */
struct sock {
	struct sock *prev, *next;
	struct event *ev;
};

struct mirror_target {
	struct event_base *base;
	CURLM *multi;
	struct event *timer; /* curl's timeout */
	struct event *wake;  /* calls the completions of t->ready */
	struct step *steps;  /* started, not completed */
	struct step *ready;
	struct step *spare;  /* freed steps, for the next ones */
	unsigned nspare;
	struct req *reqs; /* in curl */
	struct sock *socks;
	CURL *idle[DEPTH]; /* handles to reuse */
	unsigned nidle;
	bool dispatching, dead;
	unsigned char *scratch;

	char *endpoint;	  /* scheme://host[:port] */
	char *bucket_url; /* what "/KEY" follows */
	char *root_url;	  /* the bucket's own */
	char *bucket;
	char *prefix; /* "" or "a/b/" */
	char *sigv4;  /* "aws:amz:REGION:s3" */
	char *key_id, *secret, *token;
	uint64_t copy_max; /* the largest object a copy moves */
};

/* ---- strings --------------------------------------------------------- */

static int buf_reserve(struct buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->len + n < b->cap)
		return 0;
	while (cap <= b->len + n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const void *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

static int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/*
 * Appends s percent-encoded the way SigV4 canonicalizes it: every byte
 * but the unreserved ones, and but "/" in a key.
 */
static int buf_enc(struct buf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };
		int r = unreserved(c) || (keep_slash && c == '/')
				? buf_add(b, s, 1)
				: buf_add(b, e, 3);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Adds name=value to a query; callers add them in sorted order. */
static int query_add(struct buf *q, const char *name, const char *value)
{
	if (q->len && buf_str(q, "&") < 0)
		return -ENOMEM;
	if (buf_enc(q, name, false) < 0 || buf_str(q, "=") < 0 ||
	    buf_enc(q, value, false) < 0)
		return -ENOMEM;
	return 0;
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
	char *s = malloc(na + nb + nc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	memcpy(s + na + nb, c, nc + 1);
	return s;
}

/* A message fit for one line of "cachefsctl mirror status". */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static void hex_of(const unsigned char *md, char hex[SHA256_HEX])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void sha256_hex(const void *p, size_t n, char hex[SHA256_HEX])
{
	unsigned char md[32];

	EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
	hex_of(md, hex);
}

/* ---- S3's XML -------------------------------------------------------- */

struct span {
	const char *p;
	size_t n;
};

static bool name_ends(char c)
{
	return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' ||
	       c == '\n';
}

/*
 * The content of the next element named tag in in, from *pos on, and
 * *pos past it.  S3's answers have no comments nor CDATA, and nest no
 * element in one of its own name.
 */
static bool xml_next(const struct span *in, size_t *pos, const char *tag,
		     struct span *el)
{
	size_t tl = strlen(tag), i = *pos, open, gt, k;
	const char *p = in->p, *lt, *end;

	for (;; i = open) {
		if (i >= in->n || !(lt = memchr(p + i, '<', in->n - i)))
			return false;
		open = (size_t)(lt - p) + 1;
		if (in->n - open > tl && !memcmp(p + open, tag, tl) &&
		    name_ends(p[open + tl]))
			break;
	}
	end = memchr(p + open, '>', in->n - open);
	if (!end)
		return false;
	gt = (size_t)(end - p);
	if (p[gt - 1] == '/') {
		*el = (struct span){ p + gt + 1, 0 };
		*pos = gt + 1;
		return true;
	}
	for (i = gt + 1; (lt = memmem(p + i, in->n - i, "</", 2)); i = k) {
		k = (size_t)(lt - p) + 2;
		if (in->n - k > tl && !memcmp(p + k, tag, tl) &&
		    p[k + tl] == '>') {
			*el = (struct span){ p + gt + 1,
					     (size_t)(lt - p) - gt - 1 };
			*pos = k + tl + 1;
			return true;
		}
	}
	return false;
}

static bool xml_child(const struct span *in, const char *tag, struct span *el)
{
	size_t pos = 0;

	return xml_next(in, &pos, tag, el);
}

static size_t utf8_put(char *o, unsigned long c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3f));
	o[2] = (char)(0x80 | (c >> 6 & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Decodes one reference at s (after its "&", n bytes to ";"). */
static size_t entity(const char *s, size_t n, char *o)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "lt", '<' },
		      { "gt", '>' },
		      { "amp", '&' },
		      { "quot", '"' },
		      { "apos", '\'' } };
	unsigned long c = 0;
	size_t i = 1;
	int base = 10;

	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++)
		if (strlen(named[k].name) == n && !memcmp(s, named[k].name, n))
			return utf8_put(o, (unsigned char)named[k].c);
	if (n < 2 || s[0] != '#')
		return 0;
	if (s[1] == 'x') {
		base = 16;
		i = 2;
	}
	if (i == n)
		return 0;
	for (; i < n; i++) {
		char d = s[i];
		int v = d >= '0' && d <= '9'		     ? d - '0'
			: base == 16 && d >= 'a' && d <= 'f' ? d - 'a' + 10
			: base == 16 && d >= 'A' && d <= 'F' ? d - 'A' + 10
							     : -1;

		if (v < 0 || c > 0x10ffff)
			return 0;
		c = c * (unsigned long)base + (unsigned long)v;
	}
	if (!c || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return utf8_put(o, c);
}

/* The text of an element, decoded (never longer); NULL if malformed. */
static char *xml_text(const struct span *el)
{
	char *out = malloc(el->n + 1), *o = out;
	const char *p = el->p, *end = el->p + el->n;

	if (!out)
		return NULL;
	while (p < end) {
		const char *semi;
		size_t k;

		if (*p != '&') {
			*o++ = *p++;
			continue;
		}
		semi = memchr(p, ';', (size_t)(end - p));
		k = semi && semi - p <= 10
			    ? entity(p + 1, (size_t)(semi - p - 1), o)
			    : 0;
		if (!k) {
			free(out);
			return NULL;
		}
		o += k;
		p = semi + 1;
	}
	*o = '\0';
	return out;
}

/* Appends s with XML's special characters escaped. */
static int buf_xml(struct buf *b, const char *s)
{
	for (; *s; s++) {
		const char *e = *s == '&'   ? "&amp;"
				: *s == '<' ? "&lt;"
				: *s == '>' ? "&gt;"
					    : NULL;
		int r = e ? buf_str(b, e) : buf_add(b, s, 1);

		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- metadata -------------------------------------------------------- */

static bool parse_mode(const char *s, mode_t *mode)
{
	char *end;
	unsigned long v = strtoul(s, &end, 8);

	if (end == s || *end || v > 07777)
		return false;
	*mode = (mode_t)v;
	return true;
}

static bool parse_mtime(const char *s, struct timespec *ts)
{
	char *end;
	long long sec = strtoll(s, &end, 10);
	long nsec = 0;
	int digits = 0;

	if (end == s)
		return false;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9' && digits < 9; end++) {
			nsec = nsec * 10 + (*end - '0');
			digits++;
		}
		if (!digits)
			return false;
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	if (*end)
		return false;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec;
	return true;
}

/* The object headers that CopyObject REPLACE would drop but for us. */
static bool kept_header(const char *name)
{
	static const char *const kept[] = {
		"Cache-Control",    "Content-Disposition", "Content-Encoding",
		"Content-Language", "Content-Type",	   "Expires",
	};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (!strcasecmp(name, kept[i]))
			return true;
	return false;
}

static void meta_free(struct meta *m)
{
	free(m->etag);
	curl_slist_free_all(m->keep);
	*m = (struct meta){ .type = 'f' };
}

/* Takes in header name: value; -ENOMEM. */
static int meta_header(struct meta *m, const char *name, const char *value)
{
	struct curl_slist *l;
	char line[1024];

	if (!strcasecmp(name, "ETag")) {
		free(m->etag);
		m->etag = strdup(value);
		return m->etag ? 0 : -ENOMEM;
	}
	if (!strcasecmp(name, "x-amz-meta-mode")) {
		if (!parse_mode(value, &m->attr.mode))
			m->attr.mode = 0;
	} else if (!strcasecmp(name, "x-amz-meta-mtime")) {
		if (!parse_mtime(value, &m->attr.mtime))
			m->attr.mtime = (struct timespec){ 0 };
	} else if (!strcasecmp(name, "x-amz-meta-cachefs-type")) {
		m->type = !strcmp(value, "symlink") ? 'l' : '?';
	} else if (kept_header(name) &&
		   snprintf(line, sizeof(line), "%s: %s", name, value) <
			   (int)sizeof(line)) {
		l = curl_slist_append(m->keep, line);
		if (!l)
			return -ENOMEM;
		m->keep = l;
	}
	return 0;
}

/* ---- steps ----------------------------------------------------------- */

static void req_drop(struct req *r);
static void step_free(struct step *s);

/*
 * A step.  A failure to allocate one could only be reported by calling
 * back from inside the call, which the contract forbids: steps come
 * from a spare list filled at create() with twice the depth the engine
 * keeps in flight, and go back to it, so that none is allocated then.
 */
#define SPARE_MAX (2 * DEPTH)

static struct step *step_new(struct mirror_target *t, mirror_done_fn done,
			     void *arg)
{
	struct step *s = t->spare;

	if (s) {
		t->spare = s->next;
		t->nspare--;
		memset(s, 0, sizeof(*s));
	} else if (!(s = calloc(1, sizeof(*s)))) {
		abort(); /* more in flight than the engine ever starts */
	}
	s->t = t;
	s->done = done;
	s->arg = arg;
	s->fd = -1;
	DL_APPEND(t->steps, s);
	return s;
}

/* The wake event calls it (or s->deliver) back soon. */
static void step_queue(struct step *s)
{
	struct mirror_target *t = s->t;

	if (s->queued)
		return;
	s->queued = true;
	DL_APPEND2(t->ready, s, rprev, rnext);
	event_active(t->wake, EV_TIMEOUT, 0);
}

static void step_finish(struct step *s)
{
	s->deliver = NULL;
	step_queue(s);
}

static void abort_upload(struct step *s);

/*
 * s failed (the first failure counts): its other requests are dropped,
 * and its completion queued.
 */
static void step_fail(struct step *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void step_fail(struct step *s, int err, const char *fmt, ...)
{
	struct req *r, *tmp;
	va_list ap;

	if (s->err)
		return;
	s->err = err;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	one_line(s->msg);
	for (r = s->t->reqs; r; r = tmp) {
		tmp = r->next;
		if (r->s == s)
			req_drop(r);
	}
	if (s->upload_id)
		abort_upload(s);
	step_finish(s);
}

static void step_oom(struct step *s)
{
	step_fail(s, -ENOMEM, "out of memory");
}

/* Calls s's completion and frees it; its requests are all done. */
static void step_complete(struct step *s)
{
	struct mirror_target *t = s->t;

	DL_DELETE(t->steps, s);
	s->done(s->arg, s->err, s->err ? s->msg : NULL);
	step_free(s);
}

static void free_items(struct step *s)
{
	for (unsigned i = 0; i < s->nitems; i++)
		free(s->items[i].key);
	free(s->items);
	s->items = NULL;
	s->nitems = s->started = s->settled = 0;
}

static void step_free(struct step *s)
{
	free_items(s);
	for (unsigned i = 0; s->etags && i < s->nparts; i++)
		free(s->etags[i]);
	free(s->etags);
	free(s->upload_id);
	free(s->token);
	free(s->key);
	free(s->key2);
	if (s->t && s->t->nspare < SPARE_MAX && !s->t->dead) {
		s->next = s->t->spare;
		s->t->spare = s;
		s->t->nspare++;
		return;
	}
	free(s);
}

static void target_free(struct mirror_target *t);

/*
 * Calls what is ready.  A completion may destroy the target: then
 * nothing more is called, and the target goes once the loop is out.
 */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct mirror_target *t = arg;

	t->dispatching = true;
	while (t->ready && !t->dead) {
		struct step *s = t->ready;
		void (*deliver)(struct step *) = s->deliver;

		DL_DELETE2(t->ready, s, rprev, rnext);
		s->queued = false;
		s->deliver = NULL;
		if (deliver && !s->err)
			deliver(s);
		else
			step_complete(s);
	}
	t->dispatching = false;
	if (t->dead)
		target_free(t);
}

/* ---- requests -------------------------------------------------------- */

static void req_free(struct req *r)
{
	struct mirror_target *t = r->t;

	if (r->easy) {
		if (t->nidle < DEPTH)
			t->idle[t->nidle++] = r->easy;
		else
			curl_easy_cleanup(r->easy);
	}
	if (r->retry)
		event_free(r->retry);
	curl_slist_free_all(r->headers);
	buf_free(&r->answer);
	meta_free(&r->meta);
	free(r->mem);
	free(r->what);
	free(r->url);
	free(r);
}

/*
 * Takes r out of curl (if there: not while it waits to retry) and frees
 * it, without a word to anyone.
 */
static void req_drop(struct req *r)
{
	struct mirror_target *t = r->t;

	curl_multi_remove_handle(t->multi, r->easy);
	DL_DELETE(t->reqs, r);
	if (r->s)
		r->s->inflight--;
	req_free(r);
}

/*
 * A request for method on key (NULL: the bucket) with a query (NULL:
 * none), done() once answered; NULL without memory.
 */
static struct req *req_new(struct mirror_target *t, struct step *s,
			   const char *method, const char *key,
			   const char *query, req_done_fn done)
{
	struct req *r = calloc(1, sizeof(*r));
	struct buf url = { 0 };
	int e;

	if (!r)
		return NULL;
	r->t = t;
	r->s = s;
	r->method = method;
	r->done = done;
	r->fd = -1;
	r->meta.type = 'f';
	memcpy(r->sha, EMPTY_SHA256, SHA256_HEX);
	r->what = strdup(key ? key : t->bucket);
	if (key)
		e = buf_str(&url, t->bucket_url) || buf_str(&url, "/") ||
		    buf_enc(&url, key, true);
	else
		e = buf_str(&url, t->root_url);
	if (!e && query)
		e = buf_str(&url, "?") || buf_str(&url, query);
	r->url = url.p;
	if (e || !r->what) {
		req_free(r);
		return NULL;
	}
	return r;
}

static int req_header(struct req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int req_header(struct req *r, const char *fmt, ...)
{
	struct curl_slist *l = NULL;
	char *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	l = curl_slist_append(r->headers, line);
	free(line);
	if (!l)
		return -ENOMEM;
	r->headers = l;
	return 0;
}

static int req_attr(struct req *r, const struct mirror_attr *a)
{
	if (req_header(r, "x-amz-meta-mode: %o", (unsigned)(a->mode & 07777)) ||
	    req_header(r, "x-amz-meta-mtime: %lld.%09ld",
		       (long long)a->mtime.tv_sec, a->mtime.tv_nsec))
		return -ENOMEM;
	return 0;
}

/* The body is a copy of p. */
static int req_body_mem(struct req *r, const void *p, size_t n)
{
	r->mem = malloc(n ? n : 1);
	if (!r->mem)
		return -ENOMEM;
	memcpy(r->mem, p, n);
	r->len = n;
	sha256_hex(p, n, r->sha);
	return 0;
}

/*
 * The body is len bytes of fd from off, hashed now; a read error or a
 * file shorter than said is an error with r->msg.
 */
static int req_body_fd(struct req *r, int fd, uint64_t off, uint64_t len)
{
	unsigned char *buf = r->t->scratch, md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t at = off, left = len;
	int err = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while (left && !err) {
		size_t want = left < SCRATCH_SIZE ? (size_t)left : SCRATCH_SIZE;
		ssize_t n = pread(fd, buf, want, (off_t)at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			snprintf(r->msg, sizeof(r->msg), "reading %s: %s",
				 r->what, strerror(errno));
		} else if (n == 0) {
			err = -EAGAIN;
			snprintf(r->msg, sizeof(r->msg),
				 "%s shrank while it was read", r->what);
		} else {
			EVP_DigestUpdate(ctx, buf, (size_t)n);
			at += (uint64_t)n;
			left -= (uint64_t)n;
		}
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	if (err)
		return err;
	hex_of(md, r->sha);
	r->fd = fd;
	r->off = off;
	r->len = len;
	return 0;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t want = size * nmemb;
	ssize_t n;

	if (want > r->len - r->pos)
		want = (size_t)(r->len - r->pos);
	if (!want)
		return 0;
	if (r->fd < 0) {
		memcpy(dst, r->mem + r->pos, want);
		r->pos += want;
		return want;
	}
	do
		n = pread(r->fd, dst, want, (off_t)(r->off + r->pos));
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		r->read_err = n < 0 ? -errno : -EAGAIN;
		return CURL_READFUNC_ABORT;
	}
	r->pos += (uint64_t)n;
	return (size_t)n;
}

/* curl rewinds to send again on a fresh connection. */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct req *r = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->len)
		return CURL_SEEKFUNC_FAIL;
	r->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;

	if (r->answer.len + n > ANSWER_MAX || buf_add(&r->answer, p, n) < 0)
		return 0;
	return n;
}

/* A GET's body, as it comes; an error's is kept for answer_error(). */
static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 || !r->s)
		return on_write(p, size, nmemb, arg);
	if (r->s->stop || r->s->data(r->s->arg, r->got, p, n)) {
		r->s->stop = true;
		return 0; /* ends the transfer */
	}
	r->got += n;
	return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb, k;
	char name[64], value[1024];
	const char *colon = memchr(line, ':', n), *v;

	if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
		/* a new answer: "100 Continue" was not the last */
		meta_free(&r->meta);
		return n;
	}
	if (!colon || (size_t)(colon - line) >= sizeof(name))
		return n;
	memcpy(name, line, (size_t)(colon - line));
	name[colon - line] = '\0';
	for (v = colon + 1; v < line + n && (*v == ' ' || *v == '\t'); v++)
		;
	k = (size_t)(line + n - v);
	while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
		k--;
	if (k >= sizeof(value))
		return n;
	memcpy(value, v, k);
	value[k] = '\0';
	return meta_header(&r->meta, name, value) < 0 ? 0 : n;
}

static int errno_of_curl(struct req *r, CURLcode rc)
{
	long os = 0;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
		if (os == EHOSTUNREACH || os == ENETUNREACH)
			return -EHOSTUNREACH;
		return os == ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return -EKEYREJECTED; /* the server's certificate */
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_READ_ERROR:
		return r->read_err ? r->read_err : -EIO;
	case CURLE_WRITE_ERROR:
		return -EPROTO; /* an answer over ANSWER_MAX */
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -ECONNRESET;
	}
}

static const struct {
	const char *code;
	int err;
} s3_errors[] = {
	{ "NoSuchKey", -ENOENT },
	{ "NoSuchBucket", -ENOENT },
	{ "NoSuchUpload", -ENOENT },
	{ "AccessDenied", -EACCES },
	{ "AllAccessDisabled", -EACCES },
	{ "AccountProblem", -EACCES },
	{ "InvalidAccessKeyId", -EKEYREJECTED },
	{ "SignatureDoesNotMatch", -EKEYREJECTED },
	{ "InvalidToken", -EKEYREJECTED },
	{ "ExpiredToken", -EKEYREJECTED },
	{ "TokenRefreshRequired", -EKEYREJECTED },
	/* the region is wrong, or the clock: a human must act too */
	{ "AuthorizationHeaderMalformed", -EKEYREJECTED },
	{ "PermanentRedirect", -EKEYREJECTED },
	{ "RequestTimeTooSkewed", -EKEYREJECTED },
	{ "SlowDown", -EIO },
	{ "InternalError", -EIO },
	{ "ServiceUnavailable", -EIO },
	{ "RequestTimeout", -ETIMEDOUT },
	/* the file changed while it was sent */
	{ "XAmzContentSHA256Mismatch", -EAGAIN },
	{ "BadDigest", -EAGAIN },
	{ "IncompleteBody", -EAGAIN },
	{ "EntityTooLarge", -EFBIG },
	{ "KeyTooLongError", -ENAMETOOLONG },
	{ "NotImplemented", -ENOTSUP },
};

static int errno_of_s3(const char *code, long status)
{
	for (size_t i = 0; i < sizeof(s3_errors) / sizeof(s3_errors[0]); i++)
		if (!strcmp(code, s3_errors[i].code))
			return s3_errors[i].err;
	switch (status) {
	case 401:
	case 301: /* HEAD of a bucket in another region */
		return -EKEYREJECTED;
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
	case 501:
		return -ENOTSUP;
	case 408:
		return -ETIMEDOUT;
	case 429:
		return -EIO;
	default:
		return status >= 500 ? -EIO : -EPERM;
	}
}

/*
 * The error in an S3 answer: 0, or a negative errno with r->code and
 * r->msg set.
 */
static int answer_error(struct req *r)
{
	struct span body = { r->answer.p, r->answer.len }, err, el;
	char *code = NULL, *text = NULL;
	int e;

	if (!body.p)
		body.p = "";
	if (!xml_child(&body, "Error", &err)) {
		if (r->status >= 200 && r->status < 300)
			return 0;
	} else {
		if (xml_child(&err, "Code", &el))
			code = xml_text(&el);
		if (xml_child(&err, "Message", &el))
			text = xml_text(&el);
	}
	snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
	e = errno_of_s3(r->code, r->status);
	/* a copy of an object over 5 GiB: the engine sends it instead */
	if (r->may_fail_late && code && !strcmp(code, "InvalidRequest") &&
	    text && strstr(text, "copy source is larger"))
		e = -EFBIG;
	if (code)
		snprintf(r->msg, sizeof(r->msg), "%s %s: S3 %s: %s", r->method,
			 r->what, code, text ? text : "");
	else
		snprintf(r->msg, sizeof(r->msg), "%s %s: HTTP %ld", r->method,
			 r->what, r->status);
	free(code);
	free(text);
	return e;
}

static void req_finish(struct req *r, CURLcode rc);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct req *r = arg;

	if (curl_multi_add_handle(r->t->multi, r->easy) != CURLM_OK)
		req_finish(r, CURLE_OUT_OF_MEMORY);
}

/*
 * S3 asks to be asked again now and then (a 500, SlowDown): r goes again
 * after a while, from the start of its body.  0, or r is not to retry.
 */
static int req_retry(struct req *r)
{
	struct mirror_target *t = r->t;
	struct timeval tv = { 0, (RETRY_MS * 1000) << (2 * r->tries) };

	if (r->tries == RETRIES)
		return -EIO;
	if (!r->retry && !(r->retry = evtimer_new(t->base, on_retry, r)))
		return -ENOMEM;
	if (evtimer_add(r->retry, &tv) < 0)
		return -ENOMEM;
	r->tries++;
	buf_free(&r->answer);
	meta_free(&r->meta);
	r->pos = 0;
	r->code[0] = r->msg[0] = r->curl_err[0] = '\0';
	DL_APPEND(t->reqs, r);
	if (r->s)
		r->s->inflight++;
	return 0;
}

/* curl is done with r: its handler learns how it went. */
static void req_finish(struct req *r, CURLcode rc)
{
	struct mirror_target *t = r->t;
	int err = 0;

	curl_multi_remove_handle(t->multi, r->easy);
	DL_DELETE(t->reqs, r);
	if (r->s)
		r->s->inflight--;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (rc != CURLE_OK) {
		err = errno_of_curl(r, rc);
		snprintf(r->msg, sizeof(r->msg), "%s %s: %.200s", r->method,
			 r->what,
			 r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc));
	} else if (r->status >= 300 || r->may_fail_late) {
		err = answer_error(r);
		if (err == -EIO && req_retry(r) == 0)
			return;
	}
	one_line(r->msg);
	if (r->done)
		r->done(r, err);
	req_free(r);
}

static CURL *easy_get(struct mirror_target *t)
{
	CURL *e;

	if (!t->nidle)
		return curl_easy_init();
	e = t->idle[--t->nidle];
	curl_easy_reset(e);
	return e;
}

/* Hands r to curl, or frees it: 0 or a negative errno. */
static int req_start(struct req *r)
{
	struct mirror_target *t = r->t;
	bool put = !strcmp(r->method, "PUT"), post = !strcmp(r->method, "POST");
	CURL *e;
	int err;

	err = req_header(r, "x-amz-content-sha256: %s", r->sha);
	if (!err && t->token)
		err = req_header(r, "x-amz-security-token: %s", t->token);
	if (err || !(r->easy = easy_get(t))) {
		req_free(r);
		return err ? err : -ENOMEM;
	}
	e = r->easy;
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, t->sigv4);
	curl_easy_setopt(e, CURLOPT_USERNAME, t->key_id);
	curl_easy_setopt(e, CURLOPT_PASSWORD, t->secret);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, STALL_S);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION,
			 r->stream ? on_data : on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (put || post) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, r);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
	}
	if (post || !strcmp(r->method, "DELETE")) /* a POST without a form */
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	else if (!strcmp(r->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (curl_multi_add_handle(t->multi, e) != CURLM_OK) {
		req_free(r);
		return -ENOMEM;
	}
	DL_APPEND(t->reqs, r);
	if (r->s)
		r->s->inflight++;
	return 0;
}

/*
 * Starts r for its step, unless building it failed (err, r NULL): then
 * the step fails.
 */
static void submit(struct step *s, struct req *r, int err)
{
	if (!r) {
		step_oom(s);
		return;
	}
	if (err) {
		char msg[MSG_MAX];

		if (r->msg[0])
			snprintf(msg, sizeof(msg), "%s", r->msg);
		else
			snprintf(msg, sizeof(msg), "%s %s: %s", r->method,
				 r->what, strerror(-err));
		req_free(r);
		step_fail(s, err, "%s", msg);
		return;
	}
	err = req_start(r);
	if (err)
		step_fail(s, err, "starting a request: %s", strerror(-err));
}

/* The step is done when this request is. */
static void last_done(struct req *r, int err)
{
	if (err)
		step_fail(r->s, err, "%s", r->msg);
	else
		step_finish(r->s);
}

/* ... and a missing object is as good as a deleted one. */
static void delete_done(struct req *r, int err)
{
	last_done(r, err == -ENOENT ? 0 : err);
}

/* ---- curl on libevent ------------------------------------------------ */

static void drain(struct mirror_target *t)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(t->multi, &left))) {
		CURLcode rc = m->data.result;
		struct req *r;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&r);
		req_finish(r, rc);
	}
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct mirror_target *t = arg;
	int running, action = (what & EV_READ ? CURL_CSELECT_IN : 0) |
			      (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(t->multi, fd, action, &running);
	drain(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mirror_target *t = arg;
	int running;

	curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(t);
}

static void sock_free(struct mirror_target *t, struct sock *k)
{
	DL_DELETE(t->socks, k);
	event_free(k->ev);
	free(k);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl waits for. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg,
			  void *sockp)
{
	struct mirror_target *t = arg;
	struct sock *k = sockp;
	short events = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (k)
			sock_free(t, k);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k ||
		    !(k->ev = event_new(t->base, fd, events, on_sock, t))) {
			free(k);
			return -1;
		}
		DL_APPEND(t->socks, k);
		curl_multi_assign(t->multi, fd, k);
	} else {
		event_del(k->ev);
		event_assign(k->ev, t->base, fd, events, on_sock, t);
	}
	return event_add(k->ev, NULL) < 0 ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION */
static int on_curl_timer(CURLM *multi, long ms, void *arg)
{
	struct mirror_target *t = arg;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms < 0)
		return event_del(t->timer);
	return event_add(t->timer, &tv);
}

/* ---- keys ------------------------------------------------------------ */

/* The key of the object at path. */
static char *file_key(const struct mirror_target *t, const char *path)
{
	return join(t->prefix, path + 1, "");
}

/* The key of directory path's marker: "" for the bucket's root. */
static char *dir_key(const struct mirror_target *t, const char *path)
{
	return path[1] ? join(t->prefix, path + 1, "/") : strdup(t->prefix);
}

/* x-amz-copy-source of key: the bucket and key, encoded. */
static int req_copy_source(struct req *r, const char *key)
{
	struct buf src = { 0 };
	int e = -ENOMEM;

	if (!buf_enc(&src, r->t->bucket, false) && !buf_str(&src, "/") &&
	    !buf_enc(&src, key, true))
		e = req_header(r, "x-amz-copy-source: /%s", src.p);
	buf_free(&src);
	r->may_fail_late = true;
	return e;
}

/* Copies key from to key to, with its metadata. */
static void copy_object(struct step *s, const char *from, const char *to,
			unsigned idx, req_done_fn done)
{
	struct req *r = req_new(s->t, s, "PUT", to, NULL, done);

	if (r)
		r->idx = idx;
	submit(s, r, r ? req_copy_source(r, from) : 0);
}

static void delete_object(struct step *s, const char *key, unsigned idx,
			  req_done_fn done)
{
	struct req *r = req_new(s->t, s, "DELETE", key, NULL, done);

	if (r)
		r->idx = idx;
	submit(s, r, 0);
}

/* ---- connect --------------------------------------------------------- */

static void connected(struct req *r, int err)
{
	struct mirror_target *t = r->t;
	struct step *s = r->s;

	if (err == -EACCES || r->status == 401 || r->status == 403)
		err = -EKEYREJECTED;
	if (err == -EKEYREJECTED)
		step_fail(s, err,
			  "S3 at %s refused access key %s to bucket %s: %s",
			  t->endpoint, t->key_id, t->bucket,
			  r->code[0] ? r->code : r->msg);
	else if (err == -ENOENT)
		step_fail(s, err, "S3 at %s has no bucket %s (%s)", t->endpoint,
			  t->bucket, r->code[0] ? r->code : r->msg);
	else
		last_done(r, err);
}

/* Lists nothing: that the bucket is there, and we may list it. */
static void s3_connect(struct mirror_target *t, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);
	struct buf q = { 0 };

	if (query_add(&q, "list-type", "2") < 0 ||
	    query_add(&q, "max-keys", "0") < 0 ||
	    query_add(&q, "prefix", t->prefix) < 0)
		step_oom(s);
	else
		submit(s, req_new(t, s, "GET", NULL, q.p, connected), 0);
	buf_free(&q);
}

static unsigned s3_depth(struct mirror_target *t)
{
	return DEPTH;
}

/* ---- put ------------------------------------------------------------- */

static void mp_pump(struct step *s);

static void abort_upload(struct step *s)
{
	struct buf q = { 0 };
	struct req *r = NULL;

	if (query_add(&q, "uploadId", s->upload_id) == 0)
		r = req_new(s->t, NULL, "DELETE", s->key, q.p, NULL);
	buf_free(&q);
	/* best effort: a bucket lifecycle rule sweeps what is left */
	if (r)
		req_start(r);
}

static void mp_started(struct req *r, int err)
{
	struct step *s = r->s;
	struct span body = { r->answer.p, r->answer.len }, el;

	if (err) {
		step_fail(s, err, "%s", r->msg);
		return;
	}
	if (!body.p || !xml_child(&body, "UploadId", &el) ||
	    !(s->upload_id = xml_text(&el)) || !s->upload_id[0]) {
		step_fail(s, -EPROTO, "POST %s: no UploadId in S3's answer",
			  r->what);
		return;
	}
	mp_pump(s);
}

static void mp_part_done(struct req *r, int err)
{
	struct step *s = r->s;

	if (!err && !r->meta.etag) {
		err = -EPROTO;
		snprintf(r->msg, sizeof(r->msg), "PUT %s: no ETag for part %u",
			 r->what, r->idx + 1);
	}
	if (err) {
		step_fail(s, err, "%s", r->msg);
		return;
	}
	s->etags[r->idx] = r->meta.etag;
	r->meta.etag = NULL;
	s->settled++;
	mp_pump(s);
}

static void mp_completed(struct req *r, int err)
{
	struct step *s = r->s;

	if (!err) {
		free(s->upload_id);
		s->upload_id = NULL;
	}
	last_done(r, err);
}

static void mp_complete(struct step *s)
{
	struct buf q = { 0 }, xml = { 0 };
	struct req *r = NULL;
	bool oom = query_add(&q, "uploadId", s->upload_id) ||
		   buf_str(&xml, "<CompleteMultipartUpload>");

	for (unsigned i = 0; !oom && i < s->nparts; i++)
		oom = buf_printf(&xml,
				 "<Part><PartNumber>%u</PartNumber><ETag>",
				 i + 1) ||
		      buf_xml(&xml, s->etags[i]) ||
		      buf_str(&xml, "</ETag></Part>");
	if (!oom && !buf_str(&xml, "</CompleteMultipartUpload>"))
		r = req_new(s->t, s, "POST", s->key, q.p, mp_completed);
	if (r) {
		r->may_fail_late = true;
		oom = req_header(r, "Content-Type: application/xml") ||
		      req_body_mem(r, xml.p, xml.len);
	}
	buf_free(&q);
	buf_free(&xml);
	submit(s, r, oom ? -ENOMEM : 0);
}

static void mp_part(struct step *s, unsigned i)
{
	uint64_t off = (uint64_t)i * s->part_size;
	uint64_t len =
		s->size - off < s->part_size ? s->size - off : s->part_size;
	struct buf q = { 0 };
	struct req *r = NULL;
	char num[16];
	int e;

	snprintf(num, sizeof(num), "%u", i + 1);
	if (query_add(&q, "partNumber", num) == 0 &&
	    query_add(&q, "uploadId", s->upload_id) == 0)
		r = req_new(s->t, s, "PUT", s->key, q.p, mp_part_done);
	buf_free(&q);
	if (!r) {
		step_oom(s);
		return;
	}
	r->idx = i;
	e = req_body_fd(r, s->fd, off, len);
	submit(s, r, e);
}

/* Starts parts while there is room, and completes after the last. */
static void mp_pump(struct step *s)
{
	while (!s->err && s->inflight < PARTS_IN_FLIGHT &&
	       s->started < s->nparts)
		mp_part(s, s->started++);
	if (!s->err && s->settled == s->nparts)
		mp_complete(s);
}

static void mp_start(struct step *s)
{
	struct req *r;
	int e = 0;

	/* parts of PART_MIN, or larger to stay within PARTS_MAX */
	s->part_size = (s->size + PARTS_MAX - 1) / PARTS_MAX;
	s->part_size = (s->part_size + (1 << 20) - 1) & ~((1ULL << 20) - 1);
	if (s->part_size < PART_MIN)
		s->part_size = PART_MIN;
	s->nparts = (unsigned)((s->size + s->part_size - 1) / s->part_size);
	s->etags = calloc(s->nparts, sizeof(*s->etags));
	/* "uploads=", canonical: curl signs the query as it is sent */
	r = s->etags ? req_new(s->t, s, "POST", s->key, "uploads=", mp_started)
		     : NULL;
	if (!r) {
		step_oom(s);
		return;
	}
	/* the object's headers go with the start */
	if (req_attr(r, &s->attr) ||
	    req_header(r, "Content-Type: binary/octet-stream"))
		e = -ENOMEM;
	submit(s, r, e);
}

static void s3_put(struct mirror_target *t, const char *path, int fd,
		   uint64_t size, const struct mirror_attr *a,
		   mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);
	struct req *r;
	int e = 0;

	s->key = file_key(t, path);
	s->fd = fd;
	s->size = size;
	s->attr = *a;
	if (!s->key) {
		step_oom(s);
		return;
	}
	if (size > MULTIPART_OVER) {
		mp_start(s);
		return;
	}
	r = req_new(t, s, "PUT", s->key, NULL, last_done);
	if (r)
		e = req_attr(r, a);
	if (r && !e)
		e = req_body_fd(r, fd, 0, size);
	submit(s, r, e);
}

/* ---- mkdir, symlink, link, remove, rmdir ----------------------------- */

static void s3_mkdir(struct mirror_target *t, const char *path,
		     const struct mirror_attr *a, mirror_done_fn done,
		     void *arg)
{
	struct step *s = step_new(t, done, arg);
	struct req *r;

	s->key = dir_key(t, path);
	if (!s->key) {
		step_oom(s);
		return;
	}
	if (!s->key[0]) { /* the bucket's root is always there */
		step_finish(s);
		return;
	}
	r = req_new(t, s, "PUT", s->key, NULL, last_done);
	submit(s, r, r ? req_attr(r, a) : 0);
}

static void s3_symlink(struct mirror_target *t, const char *path,
		       const char *target, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);
	struct mirror_attr a = { .mode = 0777 };
	struct req *r;
	int e = 0;

	clock_gettime(CLOCK_REALTIME, &a.mtime);
	s->key = file_key(t, path);
	r = s->key ? req_new(t, s, "PUT", s->key, NULL, last_done) : NULL;
	if (r && (req_attr(r, &a) ||
		  req_header(r, "x-amz-meta-cachefs-type: symlink") ||
		  req_body_mem(r, target, strlen(target))))
		e = -ENOMEM;
	submit(s, r, e);
}

static void s3_link(struct mirror_target *t, const char *oldpath,
		    const char *newpath, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);

	s->key = file_key(t, oldpath);
	s->key2 = file_key(t, newpath);
	if (!s->key || !s->key2)
		step_oom(s);
	else
		copy_object(s, s->key, s->key2, 0, last_done);
}

static void remove_key(struct step *s, char *key)
{
	s->key = key;
	if (!key)
		step_oom(s);
	else if (!key[0])
		step_finish(s); /* the bucket's root: nothing to remove */
	else
		delete_object(s, key, 0, delete_done);
}

static void s3_remove(struct mirror_target *t, const char *path,
		      mirror_done_fn done, void *arg)
{
	remove_key(step_new(t, done, arg), file_key(t, path));
}

/* S3 has no directories: keys may well remain below. */
static void s3_rmdir(struct mirror_target *t, const char *path,
		     mirror_done_fn done, void *arg)
{
	remove_key(step_new(t, done, arg), dir_key(t, path));
}

/* ---- read ------------------------------------------------------------ */

static void read_done(struct req *r, int err)
{
	if (r->s->stop) /* data() stopped it: not a failure */
		err = 0;
	last_done(r, err);
}

/* A GET, its body streamed to each(). */
static void s3_read(struct mirror_target *t, const char *path,
		    mirror_data_fn each, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);
	struct req *r;

	s->data = each;
	s->key = file_key(t, path);
	if (!s->key) {
		step_oom(s);
		return;
	}
	if (!path[1]) {
		step_fail(s, -ENOENT, "the bucket's root is not a file");
		return;
	}
	r = req_new(t, s, "GET", s->key, NULL, read_done);
	if (r)
		r->stream = true;
	submit(s, r, 0);
}

/* ---- listings -------------------------------------------------------- */

static int add_item(struct step *s, const struct span *el, char type,
		    uint64_t size)
{
	struct item *items =
		realloc(s->items, (s->nitems + 1) * sizeof(*items));
	char *key = xml_text(el);

	if (items)
		s->items = items;
	if (!items || !key) {
		free(key);
		return items ? -EPROTO : -ENOMEM;
	}
	s->items[s->nitems++] = (struct item){ key, type, false, size, { 0 } };
	return 0;
}

/*
 * Takes a ListObjectsV2 page into s->items (objects, then the common
 * prefixes) and s->token; 0 or a negative errno.
 */
static int take_page(struct step *s, const struct buf *answer)
{
	struct span body = { answer->p ? answer->p : "", answer->len }, el, k;
	size_t pos = 0;
	int e = 0;

	free_items(s);
	free(s->token);
	s->token = NULL;
	while (!e && xml_next(&body, &pos, "Contents", &el)) {
		struct span size;
		uint64_t n = 0;

		if (!xml_child(&el, "Key", &k))
			return -EPROTO;
		if (xml_child(&el, "Size", &size))
			n = strtoull(size.p, NULL, 10);
		e = add_item(s, &k, 'f', n);
	}
	for (pos = 0; !e && xml_next(&body, &pos, "CommonPrefixes", &el);)
		e = xml_child(&el, "Prefix", &k) ? add_item(s, &k, 'd', 0)
						 : -EPROTO;
	if (!e && xml_child(&body, "IsTruncated", &el) && el.n == 4 &&
	    !memcmp(el.p, "true", 4)) {
		if (!xml_child(&body, "NextContinuationToken", &el))
			return -EPROTO;
		s->token = xml_text(&el);
		e = s->token && s->token[0] ? 0 : -EPROTO;
	}
	return e;
}

/* Asks for the next page of the keys below s->key. */
static void list_page(struct step *s, bool delimiter, req_done_fn done)
{
	struct buf q = { 0 };
	bool oom = s->token && query_add(&q, "continuation-token", s->token);

	oom = oom || (delimiter && query_add(&q, "delimiter", "/")) ||
	      query_add(&q, "list-type", "2") ||
	      query_add(&q, "prefix", s->key);
	submit(s, oom ? NULL : req_new(s->t, s, "GET", NULL, q.p, done), 0);
	buf_free(&q);
}

/* A page came: 0 to go on with it, or the step failed. */
static int page_came(struct req *r, int err)
{
	struct step *s = r->s;

	if (!err)
		err = take_page(s, &r->answer);
	if (err == -EPROTO)
		snprintf(r->msg, sizeof(r->msg),
			 "GET %s: a listing S3 answered is malformed", r->what);
	if (err)
		step_fail(s, err, "%s", r->msg);
	return err;
}

/* ---- rename ---------------------------------------------------------- */

static void mv_pump(struct step *s);

static void mv_listed(struct req *r, int err)
{
	struct step *s = r->s;

	if (page_came(r, err))
		return;
	if (!s->later && !s->nitems) {
		step_fail(s, -ENOENT, "nothing below %s", s->key);
		return;
	}
	s->later = true;
	s->deleting = false;
	mv_pump(s);
}

static void mv_settled(struct req *r, int err)
{
	struct step *s = r->s;

	if (err == -ENOENT) /* gone meanwhile: nothing to move */
		s->items[r->idx].gone = true;
	else if (err) {
		step_fail(s, err, "%s", r->msg);
		return;
	}
	s->settled++;
	mv_pump(s);
}

/*
 * Copies every key of the page below s->key2, then deletes them, then
 * goes on with the next page.
 */
static void mv_pump(struct step *s)
{
	size_t from = strlen(s->key);

	while (!s->err && s->inflight < DEPTH && s->started < s->nitems) {
		struct item *it = &s->items[s->started];
		unsigned i = s->started++;
		char *to;

		if (it->gone) {
			s->settled++;
		} else if (!s->deleting && it->size > s->t->copy_max) {
			step_fail(s, -EFBIG,
				  "%s: %llu bytes, over what the mirror copies "
				  "(copy_max=%llu)",
				  it->key, (unsigned long long)it->size,
				  (unsigned long long)s->t->copy_max);
		} else if (s->deleting) {
			delete_object(s, it->key, i, mv_settled);
		} else if ((to = join(s->key2, it->key + from, ""))) {
			copy_object(s, it->key, to, i, mv_settled);
			free(to);
		} else {
			step_oom(s);
		}
	}
	if (s->err || s->settled < s->nitems)
		return;
	if (!s->deleting) {
		s->deleting = true;
		s->started = s->settled = 0;
		mv_pump(s);
	} else if (s->token) {
		list_page(s, false, mv_listed);
	} else {
		step_finish(s);
	}
}

static void renamed_file(struct req *r, int err)
{
	struct step *s = r->s;

	if (err)
		step_fail(s, err, "%s", r->msg);
	else
		delete_object(s, s->key, 0, delete_done);
}

static void s3_rename(struct mirror_target *t, const char *from, const char *to,
		      bool dir, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);

	if (!from[1] || !to[1]) {
		step_fail(s, -EINVAL, "cannot rename the root");
		return;
	}
	s->key = dir ? dir_key(t, from) : file_key(t, from);
	s->key2 = dir ? dir_key(t, to) : file_key(t, to);
	if (!s->key || !s->key2)
		step_oom(s);
	else if (dir)
		list_page(s, false, mv_listed);
	else
		copy_object(s, s->key, s->key2, 0, renamed_file);
}

/* ---- setattr --------------------------------------------------------- */

static void sa_found(struct req *r, int err)
{
	struct step *s = r->s;
	struct req *c;
	struct curl_slist *h;

	if (err == -ENOENT && !s->tried_marker) {
		char *marker = join(s->key, "/", "");

		/* not a file: a directory's marker, then */
		free(s->key);
		s->key = marker;
		s->tried_marker = true;
		submit(s,
		       marker ? req_new(s->t, s, "HEAD", marker, NULL, sa_found)
			      : NULL,
		       0);
		return;
	}
	if (err) {
		step_fail(s, err, "%s", r->msg);
		return;
	}
	c = req_new(s->t, s, "PUT", s->key, NULL, last_done);
	if (c && (req_copy_source(c, s->key) ||
		  req_header(c, "x-amz-metadata-directive: REPLACE") ||
		  req_attr(c, &s->attr)))
		err = -ENOMEM;
	for (h = r->meta.keep; c && !err && h; h = h->next)
		err = req_header(c, "%s", h->data);
	if (c && !err && r->meta.type == 'l')
		err = req_header(c, "x-amz-meta-cachefs-type: symlink");
	submit(s, c, err);
}

/* Copies the object onto itself with new metadata, keeping the rest. */
static void s3_setattr(struct mirror_target *t, const char *path,
		       const struct mirror_attr *a, mirror_done_fn done,
		       void *arg)
{
	struct step *s = step_new(t, done, arg);

	s->attr = *a;
	s->key = path[1] ? file_key(t, path) : dir_key(t, path);
	s->tried_marker = !path[1];
	if (!s->key)
		step_oom(s);
	else if (!s->key[0])
		step_fail(s, -ENOTSUP, "the bucket's root has no attributes");
	else
		submit(s, req_new(t, s, "HEAD", s->key, NULL, sa_found), 0);
}

/* ---- list ------------------------------------------------------------ */

static void ls_pump(struct step *s);
static void ls_listed(struct req *r, int err);

static void ls_deliver(struct step *s)
{
	struct mirror_target *t = s->t;
	size_t skip = strlen(s->key);

	for (unsigned i = 0; i < s->nitems; i++) {
		struct item *it = &s->items[i];
		char *name = it->key + skip;
		size_t n = strlen(name);
		struct mirror_entry e = {
			.name = name,
			.type = it->type,
			.size = it->size,
			.attr = it->attr,
		};

		if (it->gone)
			continue;
		if (it->type == 'd')
			name[--n] = '\0'; /* its "/" */
		if (s->each(s->arg, &e)) {
			if (!t->dead)
				step_complete(s);
			return;
		}
		if (t->dead)
			return;
	}
	if (s->token)
		list_page(s, true, ls_listed);
	else
		step_complete(s);
}

/*
 * Keeps what names an entry: not the directory's own marker, nor keys
 * with an empty name in it ("a//b"), which no path has.
 */
static void ls_filter(struct step *s, bool *marker)
{
	size_t skip = strlen(s->key);
	unsigned n = 0;

	for (unsigned i = 0; i < s->nitems; i++) {
		struct item *it = &s->items[i];
		const char *name = it->key + skip;
		size_t len = strlen(name);

		if (!*name)
			*marker = true;
		if (strncmp(it->key, s->key, skip) || !len ||
		    (it->type == 'd' && len == 1) ||
		    (it->type != 'd' && strchr(name, '/'))) {
			free(it->key);
			continue;
		}
		s->items[n++] = *it;
	}
	s->nitems = n;
}

static void ls_listed(struct req *r, int err)
{
	struct step *s = r->s;
	bool marker = false;

	if (page_came(r, err))
		return;
	ls_filter(s, &marker);
	/* the root is there, even empty and without a marker */
	if (!s->later && !s->nitems && !marker &&
	    strcmp(s->key, s->t->prefix)) {
		step_fail(s, -ENOENT, "nothing below %s", s->key);
		return;
	}
	s->later = true;
	ls_pump(s);
}

static void ls_headed(struct req *r, int err)
{
	struct step *s = r->s;
	struct item *it = &s->items[r->idx];

	if (!err) {
		it->attr = r->meta.attr;
		if (it->type != 'd')
			it->type = r->meta.type;
	} else if (err == -ENOENT) {
		/* a directory without a marker, or a file deleted since */
		it->gone = it->type != 'd';
	} else {
		step_fail(s, err, "%s", r->msg);
		return;
	}
	s->settled++;
	ls_pump(s);
}

/* HEADs every entry of the page for its metadata, then delivers it. */
static void ls_pump(struct step *s)
{
	while (!s->err && s->inflight < DEPTH && s->started < s->nitems) {
		struct req *r =
			req_new(s->t, s, "HEAD", s->items[s->started].key, NULL,
				ls_headed);

		if (r)
			r->idx = s->started;
		s->started++;
		submit(s, r, 0);
	}
	if (!s->err && s->settled == s->nitems) {
		s->deliver = ls_deliver;
		step_queue(s);
	}
}

static void s3_list(struct mirror_target *t, const char *dir,
		    mirror_entry_fn each, mirror_done_fn done, void *arg)
{
	struct step *s = step_new(t, done, arg);

	s->each = each;
	s->key = dir_key(t, dir);
	if (!s->key)
		step_oom(s);
	else
		list_page(s, true, ls_listed);
}

/* ---- create, destroy ------------------------------------------------- */

/* What the URL's query says; NULL where it says nothing. */
struct options {
	char *endpoint, *region, *credentials, *profile, *copy_max;
};

static void options_free(struct options *o)
{
	free(o->endpoint);
	free(o->region);
	free(o->credentials);
	free(o->profile);
	free(o->copy_max);
}

/* n bytes of s, %XX decoded; NULL on a bad escape or without memory. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	for (size_t i = 0; out && i < n; i++) {
		int hi = i + 2 < n + 1 ? hex_digit(s[i + 1]) : -1;
		int lo = i + 2 < n + 1 ? hex_digit(s[i + 2]) : -1;

		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	if (out)
		*o = '\0';
	return out;
}

/* Takes one name=value of the URL's query into o. */
static int take_option(struct options *o, const char *s, size_t n, char *err,
		       size_t errlen)
{
	static const char *const names[] = { "endpoint", "region",
					     "credentials", "profile",
					     "copy_max" };
	char **slots[] = { &o->endpoint, &o->region, &o->credentials,
			   &o->profile, &o->copy_max };
	const char *eq = memchr(s, '=', n);
	size_t k = eq ? (size_t)(eq - s) : n;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) != k || memcmp(s, names[i], k))
			continue;
		if (!eq || eq + 1 == s + n) {
			snprintf(err, errlen, "S3 URL: %s= needs a value",
				 names[i]);
			return -EINVAL;
		}
		if (*slots[i]) {
			snprintf(err, errlen, "S3 URL: %s= given twice",
				 names[i]);
			return -EINVAL;
		}
		*slots[i] = pct_decode(eq + 1, (size_t)(s + n - eq - 1));
		if (!*slots[i]) {
			snprintf(err, errlen,
				 "S3 URL: bad %%-escape in %s=", names[i]);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen,
		 "S3 URL: unknown option '%.*s' (endpoint, region, "
		 "credentials, profile, copy_max)",
		 (int)(k < 64 ? k : 64), s);
	return -EINVAL;
}

static int parse_query(struct options *o, const char *q, char *err,
		       size_t errlen)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		int r = n ? take_option(o, q, n, err, errlen) : 0;

		if (r < 0)
			return r;
		q += n;
		if (*q)
			q++;
	}
	return 0;
}

static bool bucket_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (; *b; b++)
		if (!unreserved((unsigned char)*b) || *b == '~')
			return false;
	return true;
}

/* The URL's path as a key prefix: "" or "a/b/". */
static int take_prefix(struct mirror_target *t, const char *path, char *err,
		       size_t errlen)
{
	const char *p = path + strspn(path, "/");
	size_t n = strlen(p);

	while (n && p[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n;) {
		size_t seg = strcspn(p + i, "/");

		if (seg > n - i)
			seg = n - i;
		if (!seg || (seg == 1 && p[i] == '.') ||
		    (seg == 2 && !memcmp(p + i, "..", 2))) {
			snprintf(err, errlen,
				 "S3 URL: the prefix '%s' has an empty, . or "
				 ".. component",
				 path);
			return -EINVAL;
		}
		i += seg + 1;
	}
	t->prefix = malloc(n + 2);
	if (!t->prefix)
		return -ENOMEM;
	memcpy(t->prefix, p, n);
	strcpy(t->prefix + n, n ? "/" : "");
	return 0;
}

static bool url_has(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	CURLUcode rc = curl_url_get(u, part, &v, 0);

	curl_free(v);
	return rc == CURLUE_OK;
}

/* s3://BUCKET[/PREFIX]?OPTIONS: the bucket, prefix and options. */
static int parse_url(struct mirror_target *t, const char *url,
		     struct options *o, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL;
	CURLU *u = curl_url();
	CURLUcode rc;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK) {
		snprintf(err, errlen, "bad S3 URL: %s", curl_url_strerror(rc));
		goto out;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE);
	if (!scheme || strcasecmp(scheme, "s3") || !host || !path) {
		snprintf(err, errlen, "not an s3://BUCKET[/PREFIX] URL");
		goto out;
	}
	if (url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_PORT) ||
	    url_has(u, CURLUPART_FRAGMENT)) {
		snprintf(err, errlen,
			 "S3 URL: no user, port nor fragment in "
			 "s3://BUCKET[/PREFIX]?OPTIONS");
		goto out;
	}
	if (!bucket_ok(host)) {
		snprintf(err, errlen, "S3 URL: '%s' is not a bucket name",
			 host);
		goto out;
	}
	t->bucket = strdup(host);
	r = t->bucket ? take_prefix(t, path, err, errlen) : -ENOMEM;
	if (r == 0 && curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK)
		r = parse_query(o, query, err, errlen);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return r;
}

/* endpoint= or AWS_ENDPOINT_URL: http(s)://HOST[:PORT], no more. */
static int parse_endpoint(struct mirror_target *t, const char *ep, char *err,
			  size_t errlen)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLU *u = curl_url();
	struct buf b = { 0 };
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
	    strcmp(path, "/") || url_has(u, CURLUPART_QUERY) ||
	    url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_FRAGMENT)) {
		snprintf(err, errlen,
			 "S3 endpoint '%s' is not http(s)://HOST[:PORT]", ep);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	r = buf_printf(&b, "%s://%s%s%s", scheme, host, port ? ":" : "",
		       port ? port : "");
	t->endpoint = b.p;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return r;
}

/* Where keys go: ENDPOINT/BUCKET, or BUCKET.s3.REGION.amazonaws.com. */
static int make_urls(struct mirror_target *t, const char *endpoint,
		     const char *region, char *err, size_t errlen)
{
	struct buf b = { 0 }, root = { 0 };
	int r;

	if (endpoint) {
		r = parse_endpoint(t, endpoint, err, errlen);
		if (r < 0)
			return r;
	} else if (buf_printf(&b, "https://s3.%s.amazonaws.com", region) < 0) {
		return -ENOMEM;
	} else {
		t->endpoint = b.p;
		b = (struct buf){ 0 };
	}
	/* a dot in a bucket's name would not match AWS's certificate */
	if (endpoint || strchr(t->bucket, '.'))
		r = buf_printf(&b, "%s/%s", t->endpoint, t->bucket);
	else
		r = buf_printf(&b, "https://%s.s3.%s.amazonaws.com", t->bucket,
			       region);
	t->bucket_url = b.p;
	if (r == 0)
		r = buf_printf(&root, "%s%s", t->bucket_url,
			       endpoint || strchr(t->bucket, '.') ? "" : "/");
	t->root_url = root.p;
	return r;
}

static bool region_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-'))
			return false;
	return true;
}

/* Frees a string that held a secret, wiping it first. */
static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* A value fit for a header: no control characters. */
static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Takes one "key = value" of the profile. */
static int take_credential(struct mirror_target *t, char *line)
{
	char *eq = strchr(line, '='), *key, *value, **slot;

	if (!eq)
		return 0;
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!strcmp(key, "aws_access_key_id"))
		slot = &t->key_id;
	else if (!strcmp(key, "aws_secret_access_key"))
		slot = &t->secret;
	else if (!strcmp(key, "aws_session_token"))
		slot = &t->token;
	else
		return 0;
	free_secret(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

/*
 * The profile's keys from an AWS shared credentials file: INI, sections
 * [NAME] (or [profile NAME], as in AWS's config file).
 */
static int load_credentials(struct mirror_target *t, const char *file,
			    const char *profile, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	bool in = false, found = false;
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f) {
		snprintf(err, errlen, "cannot read S3 credentials %s: %s", file,
			 strerror(errno));
		return -EINVAL;
	}
	while (r == 0 && getline(&line, &cap, f) > 0) {
		char *l = trim(line), *end;

		if (*l != '[') {
			if (in && *l != '#' && *l != ';')
				r = take_credential(t, l);
			continue;
		}
		end = strchr(l, ']');
		if (end)
			*end = '\0';
		l = trim(l + 1);
		if (!strncmp(l, "profile ", 8))
			l = trim(l + 8);
		in = !strcmp(l, profile);
		found = found || in;
	}
	if (r == 0 && ferror(f)) {
		snprintf(err, errlen, "cannot read S3 credentials %s: %s", file,
			 strerror(errno));
		r = -EINVAL;
	}
	if (line)
		OPENSSL_cleanse(line, cap);
	free(line);
	fclose(f);
	if (r == 0 && !found) {
		snprintf(err, errlen, "S3 credentials %s: no profile [%s]",
			 file, profile);
		r = -EINVAL;
	} else if (r == 0 && (!t->key_id || !t->key_id[0])) {
		snprintf(err, errlen,
			 "S3 credentials %s: [%s] has no aws_access_key_id",
			 file, profile);
		r = -EINVAL;
	} else if (r == 0 && (!t->secret || !t->secret[0])) {
		snprintf(err, errlen,
			 "S3 credentials %s: [%s] has no "
			 "aws_secret_access_key",
			 file, profile);
		r = -EINVAL;
	}
	return r;
}

static int env_credentials(struct mirror_target *t, char *err, size_t errlen)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");

	if (!id || !*id || !secret || !*secret) {
		snprintf(err, errlen,
			 "no S3 credentials: give credentials=FILE, or set "
			 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
		return -EINVAL;
	}
	t->key_id = strdup(id);
	t->secret = strdup(secret);
	if (token && *token)
		t->token = strdup(token);
	if (!t->key_id || !t->secret || (token && *token && !t->token))
		return -ENOMEM;
	return 0;
}

static int take_credentials(struct mirror_target *t, const struct options *o,
			    char *err, size_t errlen)
{
	int r;

	if (o->credentials)
		r = load_credentials(t, o->credentials,
				     o->profile ? o->profile : "default", err,
				     errlen);
	else if (o->profile) {
		snprintf(err, errlen, "S3 URL: profile= without credentials=");
		return -EINVAL;
	} else
		r = env_credentials(t, err, errlen);
	if (r == 0 && (!header_safe(t->key_id) || !header_safe(t->secret) ||
		       (t->token && !header_safe(t->token)))) {
		snprintf(err, errlen, "S3 credentials: control characters");
		r = -EINVAL;
	}
	return r;
}

static const char *first_env(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (v && *v)
		return v;
	v = getenv(b);
	return v && *v ? v : NULL;
}

static int setup_loop(struct mirror_target *t, struct event_base *base)
{
	t->base = base;
	t->multi = curl_multi_init();
	t->timer = evtimer_new(base, on_timer, t);
	t->wake = event_new(base, -1, 0, on_wake, t);
	t->scratch = malloc(SCRATCH_SIZE);
	if (!t->multi || !t->timer || !t->wake || !t->scratch)
		return -ENOMEM;
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
	curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)DEPTH);
	curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)DEPTH);
	return 0;
}

static void target_free(struct mirror_target *t)
{
	struct step *s;

	while (t->reqs)
		req_drop(t->reqs);
	t->dead = true; /* steps are freed, not kept */
	while ((s = t->steps)) {
		DL_DELETE(t->steps, s);
		step_free(s);
	}
	while ((s = t->spare)) {
		t->spare = s->next;
		free(s);
	}
	while (t->nidle)
		curl_easy_cleanup(t->idle[--t->nidle]);
	/* closing its connections, curl lets go of their sockets */
	if (t->multi)
		curl_multi_cleanup(t->multi);
	while (t->socks)
		sock_free(t, t->socks);
	if (t->timer)
		event_free(t->timer);
	if (t->wake)
		event_free(t->wake);
	free(t->scratch);
	free(t->endpoint);
	free(t->bucket_url);
	free(t->root_url);
	free(t->bucket);
	free(t->prefix);
	free(t->sigv4);
	free(t->key_id);
	free_secret(t->secret);
	free_secret(t->token);
	free(t);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/*
 * s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&credentials=FILE
 * [&profile=NAME].  What the URL leaves out comes from the environment:
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (else AWS itself,
 * https://s3.REGION.amazonaws.com), AWS_REGION or AWS_DEFAULT_REGION
 * (else us-east-1), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN.  An endpoint other than AWS's gets path-style URLs:
 * ENDPOINT/BUCKET/KEY.
 */
static int s3_create(const char *url, struct event_base *base,
		     struct mirror_target **out, char *err, size_t errlen)
{
	struct mirror_target *t = calloc(1, sizeof(*t));
	struct options o = { 0 };
	const char *region, *endpoint;
	struct buf sig = { 0 };
	int r;

	pthread_once(&curl_once, curl_init);
	if (!t || curl_init_rc != CURLE_OK) {
		free(t);
		snprintf(err, errlen, "cannot set up libcurl");
		return -ENOMEM;
	}
	r = parse_url(t, url, &o, err, errlen);
	region = o.region ? o.region
			  : first_env("AWS_REGION", "AWS_DEFAULT_REGION");
	if (!region)
		region = "us-east-1";
	endpoint = o.endpoint ? o.endpoint
			      : first_env("AWS_ENDPOINT_URL_S3",
					  "AWS_ENDPOINT_URL");
	if (r == 0 && !region_ok(region)) {
		snprintf(err, errlen, "S3: '%s' is not a region", region);
		r = -EINVAL;
	}
	t->copy_max = COPY_MAX;
	if (r == 0 && o.copy_max) {
		char *end;

		errno = 0;
		t->copy_max = strtoull(o.copy_max, &end, 10);
		if (errno || *end || o.copy_max[0] < '0' ||
		    o.copy_max[0] > '9' || !t->copy_max ||
		    t->copy_max > COPY_MAX) {
			snprintf(err, errlen,
				 "S3 URL: copy_max is a number of bytes from "
				 "1 to %llu",
				 (unsigned long long)COPY_MAX);
			r = -EINVAL;
		}
	}
	if (r == 0)
		r = take_credentials(t, &o, err, errlen);
	if (r == 0)
		r = make_urls(t, endpoint, region, err, errlen);
	if (r == 0) {
		r = buf_printf(&sig, "aws:amz:%s:s3", region);
		t->sigv4 = sig.p;
	}
	if (r == 0)
		r = setup_loop(t, base);
	while (r == 0 && t->nspare < SPARE_MAX) {
		struct step *sp = calloc(1, sizeof(*sp));

		if (!sp) {
			r = -ENOMEM;
			break;
		}
		sp->next = t->spare;
		t->spare = sp;
		t->nspare++;
	}
	options_free(&o);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (r < 0) {
		target_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* From inside a completion, the target goes once the completion is out. */
static uint64_t s3_copy_max(struct mirror_target *t)
{
	return t->copy_max;
}

static void s3_destroy(struct mirror_target *t)
{
	if (!t)
		return;
	if (t->dispatching)
		t->dead = true;
	else
		target_free(t);
}

const struct mirror_target_ops mirror_s3_ops = {
	.scheme = "s3",
	.create = s3_create,
	.destroy = s3_destroy,
	.connect = s3_connect,
	.depth = s3_depth,
	.put = s3_put,
	.mkdir = s3_mkdir,
	.symlink = s3_symlink,
	.link = s3_link,
	.remove = s3_remove,
	.rmdir = s3_rmdir,
	.rename = s3_rename,
	.setattr = s3_setattr,
	.list = s3_list,
	.read = s3_read,
	.copy_max = s3_copy_max,
};
