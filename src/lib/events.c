// SPDX-License-Identifier: MIT
/*
 * libcachefs: the subscriber's side of the control protocol's "watch"
 * stream (see include/cachefs/events.h, and src/shared/ctl_proto.h for
 * the protocol).
 *
 * A subscription is one connection.  Bytes read land in rbuf; the line
 * taken for an event is copied out (cur), so that the pointers handed to
 * the caller survive later reads into rbuf, and its JSON (cur_json) is
 * kept until the next read.  While an ack waits for its answer, the
 * stream lines that come first are queued, in order, for later reads.
 *
 * Everything from the daemon is checked before use: it may be broken, or
 * not a cachefs daemon at all.
 */
#include "cachefs/events.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "deadline.h"
#include "hex.h"

#define DEFAULT_TIMEOUT_MS 10000
#define READ_CHUNK 65536
/* What an ack may queue before its answer: as the daemon would buffer. */
#define QUEUE_MAX ((size_t)64 << 20)
#define OP_NAME_MAX 32

#if JSON_INTEGER_IS_LONG_LONG
#define JINT_MIN LLONG_MIN
#define JINT_MAX LLONG_MAX
#else
#define JINT_MIN LONG_MIN
#define JINT_MAX LONG_MAX
#endif

struct line {
	struct line *next;
	size_t len;
	char text[]; /* NUL-terminated */
};

struct cachefs_events {
	int fd;
	int timeout_ms; /* for answers; -1: for ever */
	uint64_t first, oldest, newest;
	char *cursor; /* NULL without one */

	char *rbuf; /* rbuf[rpos, rlen) is read but not taken */
	size_t rpos, rlen, rcap;
	size_t rscan; /* rbuf[rpos, rscan) is known to hold no '\n' */

	struct line *qhead, **qtail; /* stream lines read by an ack */
	size_t qbytes;

	struct line *cur; /* the line of the event last returned */
	json_t *cur_json;
	unsigned char handle[CACHEFS_EVENTS_HANDLE_MAX];

	int err;    /* final error, returned once the queue is empty */
	bool ended; /* an END event was returned */
	char msg[256];
};

static int fail(struct cachefs_events *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keep a message for err and return it. */
static int fail(struct cachefs_events *e, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return err;
}

/* An error after which the stream cannot be trusted to go on. */
static int fail_final(struct cachefs_events *e, int err)
{
	if (err < 0 && err != -EINTR && err != -ENOMEM && !e->err)
		e->err = err;
	return err;
}


/* --- bytes in and out ---------------------------------------------------- */

/*
 * Wait up to deadline for the fd to be ready: 1, 0 on timeout, -EINTR.
 * Polls at least once, so that a passed deadline still takes what is
 * there.
 */
static int wait_fd(struct cachefs_events *e, short events, int64_t deadline)
{
	struct pollfd p = { .fd = e->fd, .events = events };
	int r = poll(&p, 1, left_ms(deadline));

	if (r < 0)
		return errno == EINTR
			       ? -EINTR
			       : fail(e, -errno, "poll: %s", strerror(errno));
	return r;
}

static int send_all(struct cachefs_events *e, const char *buf, size_t len,
		    int64_t deadline)
{
	size_t off = 0;
	ssize_t n;
	int r;

	while (off < len) {
		r = wait_fd(e, POLLOUT, deadline);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (r == 0)
			return fail(e, -ETIMEDOUT,
				    "the cachefs daemon is not reading");
		n = send(e->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return fail(e, -errno, "send: %s", strerror(errno));
		off += (size_t)n;
	}
	return 0;
}

/* Make room for READ_CHUNK more bytes at rbuf + rlen. */
static int make_room(struct cachefs_events *e)
{
	size_t cap;
	char *b;

	if (e->rpos) {
		memmove(e->rbuf, e->rbuf + e->rpos, e->rlen - e->rpos);
		e->rlen -= e->rpos;
		e->rscan -= e->rpos;
		e->rpos = 0;
	}
	if (e->rcap - e->rlen >= READ_CHUNK)
		return 0;
	cap = e->rlen + READ_CHUNK;
	b = realloc(e->rbuf, cap);
	if (!b)
		return fail(e, -ENOMEM, "out of memory");
	e->rbuf = b;
	e->rcap = cap;
	return 0;
}

/* Read what comes, waiting up to deadline: 1, 0 on timeout, or -errno. */
static int fill(struct cachefs_events *e, int64_t deadline)
{
	ssize_t n;
	int r;

	r = make_room(e);
	if (r < 0)
		return r;
	r = wait_fd(e, POLLIN, deadline);
	if (r <= 0)
		return r;
	n = read(e->fd, e->rbuf + e->rlen, e->rcap - e->rlen);
	if (n < 0 && errno == EINTR)
		return -EINTR;
	if (n < 0 && errno == EAGAIN)
		return 1; /* woken for nothing: wait again */
	if (n < 0)
		return fail(e, -errno, "read: %s", strerror(errno));
	if (n == 0)
		return fail(e, -EPIPE,
			    "the cachefs daemon closed the connection");
	e->rlen += (size_t)n;
	return 1;
}

/* The length of the complete line at rbuf + rpos, or -1 when none yet. */
static ssize_t find_line(struct cachefs_events *e)
{
	char *nl = memchr(e->rbuf + e->rscan, '\n', e->rlen - e->rscan);

	if (!nl) {
		e->rscan = e->rlen;
		return -1;
	}
	return nl - (e->rbuf + e->rpos);
}

/*
 * Wait up to deadline for a whole line at rbuf + rpos: 1 with its length
 * (without the '\n') in *len, 0 on timeout, or negative errno.
 */
static int next_line(struct cachefs_events *e, int64_t deadline, size_t *len)
{
	ssize_t n;
	int r;

	for (;;) {
		n = e->rbuf ? find_line(e) : -1;
		if (n > CACHEFS_EVENTS_LINE_MAX ||
		    (n < 0 && e->rlen - e->rpos > CACHEFS_EVENTS_LINE_MAX))
			return fail(e, -EPROTO,
				    "the cachefs daemon sent a line longer "
				    "than %d bytes",
				    CACHEFS_EVENTS_LINE_MAX);
		if (n >= 0) {
			*len = (size_t)n;
			return 1;
		}
		r = fill(e, deadline);
		if (r <= 0)
			return r;
	}
}

/* Copy out the line of len bytes at rbuf + rpos, and drop it from rbuf. */
static struct line *take_line(struct cachefs_events *e, size_t len)
{
	struct line *l = malloc(sizeof(*l) + len + 1);

	if (!l) {
		fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	l->next = NULL;
	l->len = len;
	memcpy(l->text, e->rbuf + e->rpos, len);
	l->text[len] = '\0';
	e->rpos += len + 1;
	e->rscan = e->rpos;
	return l;
}

static void drop_line(struct cachefs_events *e, size_t len)
{
	e->rpos += len + 1;
	e->rscan = e->rpos;
}

/* --- decoding ------------------------------------------------------------ */

/* o[key] as an integer in [min, max]. */
static int need_int(struct cachefs_events *e, json_t *o, const char *what,
		    const char *key, json_int_t min, json_int_t max,
		    json_int_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return fail(e, -EPROTO, "%s without \"%s\"", what, key);
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return fail(e, -EPROTO, "%s with a bad \"%s\"", what, key);
	*out = json_integer_value(v);
	return 0;
}

static int need_u64(struct cachefs_events *e, json_t *o, const char *what,
		    const char *key, json_int_t min, uint64_t *out)
{
	json_int_t v = 0;
	int r = need_int(e, o, what, key, min, JINT_MAX, &v);

	*out = (uint64_t)v;
	return r;
}

/*
 * o[key] as a path relative to the mount; NULL when optional and missing
 * or null.
 */
static int need_path(struct cachefs_events *e, json_t *o, const char *key,
		     bool optional, const char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (optional && (!v || json_is_null(v)))
		return 0;
	if (!v)
		return fail(e, -EPROTO, "event without \"%s\"", key);
	if (!json_is_string(v) || json_string_value(v)[0] != '/')
		return fail(e, -EPROTO, "event with a bad \"%s\"", key);
	*out = json_string_value(v);
	return 0;
}

static int need_op(struct cachefs_events *e, json_t *o, const char **out)
{
	const char *s = json_string_value(json_object_get(o, "op"));
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return fail(e, -EPROTO, "event without \"op\"");
	if (n == 0 || n > OP_NAME_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return fail(e, -EPROTO, "event with a bad \"op\"");
	*out = s;
	return 0;
}

static int need_class(struct cachefs_events *e, json_t *o,
		      enum cachefs_event_class *out)
{
	static const char *const names[] = {
		[CACHEFS_CLASS_ENTRY] = "entry",
		[CACHEFS_CLASS_DATA] = "data",
		[CACHEFS_CLASS_METADATA] = "metadata",
	};
	const char *s = json_string_value(json_object_get(o, "class"));

	if (!s)
		return fail(e, -EPROTO, "event without \"class\"");
	*out = CACHEFS_CLASS_OTHER; /* a newer daemon's: not an error */
	for (size_t k = 1; k < sizeof(names) / sizeof(names[0]); k++)
		if (strcmp(s, names[k]) == 0)
			*out = (enum cachefs_event_class)k;
	return 0;
}

/* The optional "handle", hex, into e->handle. */
static int need_handle(struct cachefs_events *e, json_t *o,
		       struct cachefs_event *ev)
{
	json_t *v = json_object_get(o, "handle");
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;

	if (!v || json_is_null(v))
		return 0;
	if (!s || n % 2 || n / 2 > CACHEFS_EVENTS_HANDLE_MAX)
		return fail(e, -EPROTO, "event with a bad \"handle\"");
	for (size_t k = 0; k < n; k += 2) {
		int hi = hex_digit(s[k]), lo = hex_digit(s[k + 1]);

		if (hi < 0 || lo < 0)
			return fail(e, -EPROTO, "event with a bad \"handle\"");
		e->handle[k / 2] = (unsigned char)(hi << 4 | lo);
	}
	if (n) {
		ev->handle = e->handle;
		ev->handle_len = n / 2;
	}
	return 0;
}

/*
 * dev, ino and gen are unsigned 64-bit numbers that JSON carries as
 * signed ones: values from 2^63 on come negative, and are taken back.
 */
static int need_id(struct cachefs_events *e, json_t *o, const char *key,
		   uint64_t *out)
{
	json_int_t v = 0;
	int r = need_int(e, o, "event", key, JINT_MIN, JINT_MAX, &v);

	*out = (uint64_t)v;
	return r;
}

static int decode_change(struct cachefs_events *e, json_t *o,
			 struct cachefs_event *ev)
{
	json_int_t t = 0;
	int r;

	ev->type = CACHEFS_EVENT_CHANGE;
	r = need_u64(e, o, "event", "seq", 1, &ev->seq);
	if (!r)
		r = need_int(e, o, "event", "time_ns", 0, JINT_MAX, &t);
	if (!r)
		r = need_op(e, o, &ev->op);
	if (!r)
		r = need_class(e, o, &ev->cls);
	if (!r)
		r = need_path(e, o, "path", false, &ev->path);
	if (!r)
		r = need_path(e, o, "path2", true, &ev->path2);
	if (!r)
		r = need_id(e, o, "dev", &ev->dev);
	if (!r)
		r = need_id(e, o, "ino", &ev->ino);
	if (!r)
		r = need_id(e, o, "gen", &ev->gen);
	if (!r)
		r = need_handle(e, o, ev);
	ev->time_ns = (int64_t)t;
	return r;
}

static int decode_gap(struct cachefs_events *e, json_t *o,
		      struct cachefs_event *ev)
{
	json_t *g = json_object_get(o, "gap");
	int r;

	ev->type = CACHEFS_EVENT_GAP;
	if (!json_is_object(g))
		return fail(e, -EPROTO, "gap that is not an object");
	r = need_u64(e, g, "gap", "from", 0, &ev->gap_from);
	if (!r)
		r = need_u64(e, g, "gap", "to", 0, &ev->gap_to);
	if (!r && ev->gap_from > ev->gap_to)
		r = fail(e, -EPROTO, "gap that ends before it starts");
	ev->seq = ev->gap_to;
	return r;
}

/* Decode the line in e->cur into ev. */
static int decode(struct cachefs_events *e, struct cachefs_event *ev)
{
	json_error_t je;
	json_t *o;
	int kinds;

	memset(ev, 0, sizeof(*ev));
	o = json_loadb(e->cur->text, e->cur->len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return fail(e, -EPROTO, "malformed event from the daemon: %s",
			    je.text);
	e->cur_json = o;
	if (!json_is_object(o))
		return fail(e, -EPROTO, "event that is not a JSON object");
	kinds = !!json_object_get(o, "seq") + !!json_object_get(o, "gap") +
		!!json_object_get(o, "end") + !!json_object_get(o, "ok");
	if (kinds != 1 || json_object_get(o, "ok"))
		return fail(e, -EPROTO,
			    json_object_get(o, "ok")
				    ? "an answer to no request"
				    : "a line that is not one event");
	ev->raw = e->cur->text;
	ev->raw_len = e->cur->len;
	if (json_object_get(o, "seq"))
		return decode_change(e, o, ev);
	if (json_object_get(o, "gap"))
		return decode_gap(e, o, ev);
	ev->type = CACHEFS_EVENT_END;
	return need_u64(e, o, "end", "end", 0, &ev->seq);
}

/* --- opening ------------------------------------------------------------- */

static bool valid_cursor(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CACHEFS_EVENTS_CURSOR_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == n;
}

static bool utf8_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static int check_opts(struct cachefs_events *e,
		      const struct cachefs_events_opts *o)
{
	if (o->since > (uint64_t)JINT_MAX)
		return fail(e, -EINVAL, "since is too large");
	if (o->cursor && !valid_cursor(o->cursor))
		return fail(e, -EINVAL,
			    "a cursor name is 1 to %d of A-Z, a-z, 0-9, _, . "
			    "and -",
			    CACHEFS_EVENTS_CURSOR_MAX);
	if (o->path && (o->path[0] != '/' || strlen(o->path) >= PATH_MAX))
		return fail(e, -EINVAL,
			    "the path is relative to the mount and starts "
			    "with /");
	/* JSON carries UTF-8 only */
	if (o->path && !utf8_ok(o->path))
		return fail(e, -EINVAL, "the path is not UTF-8");
	if (o->timeout_ms < -1)
		return fail(e, -EINVAL, "bad timeout");
	return 0;
}

/* The control socket of where: itself, or that of the mount there. */
static int socket_of(struct cachefs_events *e, const char *where, char *buf,
		     size_t len)
{
	char real[PATH_MAX];
	struct stat st;

	if (stat(where, &st) < 0)
		return fail(e, -errno, "%s: %s", where, strerror(errno));
	if (S_ISSOCK(st.st_mode)) {
		if (strlen(where) >= len)
			return fail(e, -ENAMETOOLONG,
				    "%s: too long for a socket address", where);
		snprintf(buf, len, "%s", where);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return fail(e, -ENOTSOCK,
			    "%s: neither a mount point nor a socket", where);
	if (!realpath(where, real))
		return fail(e, -errno, "%s: %s", where, strerror(errno));
	if (ctl_socket_path(real, buf, len) < 0)
		return fail(e, -ENAMETOOLONG,
			    "%s: socket path too long for a socket address",
			    real);
	return 0;
}

static int connect_to(struct cachefs_events *e, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->fd < 0)
		return fail(e, -errno, "socket: %s", strerror(errno));
	if (connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(e, -errno,
			    "cannot reach the cachefs daemon at %s: %s", path,
			    strerror(errno));
	/* Never block in read() or send(): poll() does the waiting. */
	if (fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) | O_NONBLOCK) < 0)
		return fail(e, -errno, "fcntl: %s", strerror(errno));
	return 0;
}

static json_t *watch_args(const struct cachefs_events_opts *o)
{
	json_t *args = json_object();
	int r = 0;

	if (!args)
		return NULL;
	if (o->since)
		r |= json_object_set_new(args, "since",
					 json_integer((json_int_t)o->since));
	if (o->cursor)
		r |= json_object_set_new(args, "cursor",
					 json_string(o->cursor));
	if (o->path)
		r |= json_object_set_new(args, "path", json_string(o->path));
	if (o->no_follow)
		r |= json_object_set_new(args, "follow", json_false());
	if (r) {
		json_decref(args);
		return NULL;
	}
	return args;
}

/* Wait up to deadline for the next line, through signals. */
static int await_line(struct cachefs_events *e, int64_t deadline, size_t *len)
{
	int r;

	do
		r = next_line(e, deadline, len);
	while (r == -EINTR);
	if (r == 0)
		return fail(e, -ETIMEDOUT, "no answer from the cachefs daemon");
	return r < 0 ? r : 0;
}

/* Send req (a line from ctl_request_encode(), freed). */
static int send_request(struct cachefs_events *e, char *req, int64_t deadline)
{
	int r;

	if (!req)
		return fail(e, -ENOMEM, "out of memory");
	r = send_all(e, req, strlen(req), deadline);
	free(req);
	return r;
}

/* The data of the watch answer: from, oldest, newest, cursor. */
static int take_answer(struct cachefs_events *e, json_t *d)
{
	json_t *cursor = json_object_get(d, "cursor");
	int r;

	if (!json_is_object(d))
		return fail(e, -EPROTO, "malformed answer to watch");
	r = need_u64(e, d, "answer", "from", 0, &e->first);
	if (!r)
		r = need_u64(e, d, "answer", "oldest", 0, &e->oldest);
	if (!r)
		r = need_u64(e, d, "answer", "newest", 0, &e->newest);
	if (r)
		return r;
	if (cursor && !json_is_null(cursor) &&
	    (!json_is_string(cursor) ||
	     !valid_cursor(json_string_value(cursor))))
		return fail(e, -EPROTO, "answer with a bad \"cursor\"");
	if (json_is_string(cursor) &&
	    (!e->cursor || strcmp(e->cursor, json_string_value(cursor)))) {
		free(e->cursor);
		e->cursor = strdup(json_string_value(cursor));
		if (!e->cursor)
			return fail(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Parse an answer line: 0, -EINVAL (refused), -EPROTO. */
static int parse_answer(struct cachefs_events *e, const char *line, size_t len,
			json_t **data)
{
	int r = ctl_response_parse(line, len, data, e->msg, sizeof(e->msg));

	return r == 1 ? -EINVAL : r;
}

static int subscribe(struct cachefs_events *e, const char *where,
		     const struct cachefs_events_opts *o)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int64_t deadline = deadline_in(e->timeout_ms);
	json_t *args, *data;
	size_t len;
	int r;

	r = socket_of(e, where, path, sizeof(path));
	if (!r)
		r = connect_to(e, path);
	if (r)
		return r;
	args = watch_args(o);
	if (!args)
		return fail(e, -ENOMEM, "out of memory");
	r = send_request(e, ctl_request_encode("watch", args), deadline);
	if (!r)
		r = await_line(e, deadline, &len);
	if (r)
		return r;
	r = parse_answer(e, e->rbuf + e->rpos, len, &data);
	drop_line(e, len);
	if (r)
		return r;
	r = take_answer(e, data);
	json_decref(data);
	return r;
}

int cachefs_events_open(const char *where,
			const struct cachefs_events_opts *opts,
			struct cachefs_events **out, char *err, size_t errlen)
{
	static const struct cachefs_events_opts defaults;
	const struct cachefs_events_opts *o = opts ? opts : &defaults;
	struct cachefs_events *e;
	int r;

	if (out)
		*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->fd = -1;
	e->qtail = &e->qhead;
	e->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	if (!where || !out)
		r = fail(e, -EINVAL, "no mount point or socket given");
	else
		r = check_opts(e, o);
	if (!r && o->cursor && !(e->cursor = strdup(o->cursor)))
		r = fail(e, -ENOMEM, "out of memory");
	if (!r)
		r = subscribe(e, where, o);
	if (r) {
		if (err && errlen)
			snprintf(err, errlen, "%s", e->msg);
		cachefs_events_close(e);
		return r;
	}
	e->msg[0] = '\0';
	*out = e;
	return 0;
}

uint64_t cachefs_events_first(const struct cachefs_events *e)
{
	return e->first;
}

uint64_t cachefs_events_oldest(const struct cachefs_events *e)
{
	return e->oldest;
}

uint64_t cachefs_events_newest(const struct cachefs_events *e)
{
	return e->newest;
}

const char *cachefs_events_cursor(const struct cachefs_events *e)
{
	return e->cursor;
}

/* --- reading ------------------------------------------------------------- */

static void drop_current(struct cachefs_events *e)
{
	json_decref(e->cur_json);
	e->cur_json = NULL;
	free(e->cur);
	e->cur = NULL;
}

/* The next line of the stream, queued or read, into e->cur. */
static int next_event_line(struct cachefs_events *e, int timeout_ms)
{
	size_t len;
	int r;

	if (e->qhead) {
		e->cur = e->qhead;
		e->qhead = e->cur->next;
		if (!e->qhead)
			e->qtail = &e->qhead;
		e->qbytes -= e->cur->len;
		return 1;
	}
	if (e->err)
		return e->err;
	r = next_line(e, deadline_in(timeout_ms), &len);
	if (r <= 0)
		return r;
	e->cur = take_line(e, len);
	return e->cur ? 1 : -ENOMEM;
}

int cachefs_events_read(struct cachefs_events *e, struct cachefs_event *ev,
			int timeout_ms)
{
	int r;

	if (!e || !ev || timeout_ms < -1)
		return -EINVAL;
	drop_current(e);
	if (e->ended)
		return fail_final(e, fail(e, -EPIPE, "the stream ended"));
	r = next_event_line(e, timeout_ms);
	if (r <= 0)
		return fail_final(e, r);
	r = decode(e, ev);
	if (r < 0) {
		memset(ev, 0, sizeof(*ev));
		return fail_final(e, r);
	}
	if (ev->type == CACHEFS_EVENT_END)
		e->ended = true;
	return 1;
}

int cachefs_events_run(struct cachefs_events *e,
		       int (*cb)(const struct cachefs_event *ev, void *arg),
		       void *arg)
{
	struct cachefs_event ev;
	int r;

	if (!e || !cb)
		return -EINVAL;
	for (;;) {
		r = cachefs_events_read(e, &ev, -1);
		if (r < 0)
			return r;
		r = cb(&ev, arg);
		if (r)
			return r;
		if (ev.type == CACHEFS_EVENT_END)
			return 0;
	}
}

/* --- acking -------------------------------------------------------------- */

/* Whether the line of len bytes at rbuf + rpos is an answer. */
static int is_answer(struct cachefs_events *e, size_t len)
{
	json_t *o = json_loadb(e->rbuf + e->rpos, len, 0, NULL);
	int r = json_is_object(o) && json_object_get(o, "ok");

	json_decref(o);
	return r;
}

/* Queue the stream line of len bytes at rbuf + rpos for later reads. */
static int queue_line(struct cachefs_events *e, size_t len)
{
	struct line *l;

	if (e->qbytes + len > QUEUE_MAX)
		return fail(e, -ENOBUFS,
			    "more than %zu MiB of events came before the "
			    "answer to an ack",
			    QUEUE_MAX >> 20);
	l = take_line(e, len);
	if (!l)
		return -ENOMEM;
	*e->qtail = l;
	e->qtail = &l->next;
	e->qbytes += len;
	return 0;
}

/* Wait for the answer to an ack, queueing the events before it. */
static int ack_answer(struct cachefs_events *e, int64_t deadline)
{
	json_t *data;
	size_t len;
	int r;

	for (;;) {
		r = await_line(e, deadline, &len);
		if (r < 0)
			return r;
		if (is_answer(e, len))
			break;
		r = queue_line(e, len);
		if (r < 0)
			return r;
	}
	r = parse_answer(e, e->rbuf + e->rpos, len, &data);
	drop_line(e, len);
	json_decref(data);
	return r;
}

int cachefs_events_ack(struct cachefs_events *e, uint64_t seq)
{
	int64_t deadline;
	char *req;
	int r;

	if (!e)
		return -EINVAL;
	if (!e->cursor)
		return fail(e, -EINVAL, "ack needs a cursor");
	if (seq > (uint64_t)JINT_MAX)
		return fail(e, -EINVAL, "bad sequence number to ack");
	if (e->err)
		return e->err;
	req = ctl_request_encode("ack",
				 json_pack("{s:I}", "seq", (json_int_t)seq));
	if (!req)
		return fail(e, -ENOMEM, "out of memory");
	deadline = deadline_in(e->timeout_ms);
	r = send_request(e, req, deadline);
	if (!r)
		r = ack_answer(e, deadline);
	/*
	 * A refusal leaves the stream as it was.  Anything else may leave
	 * the request or its answer half way, and the stream out of step.
	 */
	if (r && r != -EINVAL && !e->err)
		e->err = r;
	return r;
}

/* --- the rest ------------------------------------------------------------ */

int cachefs_events_fd(const struct cachefs_events *e)
{
	return e->fd;
}

bool cachefs_events_pending(const struct cachefs_events *e)
{
	size_t n = e->rlen - e->rpos;

	return e->qhead || e->err || e->ended || n > CACHEFS_EVENTS_LINE_MAX ||
	       (n && memchr(e->rbuf + e->rpos, '\n', n));
}

const char *cachefs_events_error(const struct cachefs_events *e)
{
	return e ? e->msg : "";
}

void cachefs_events_close(struct cachefs_events *e)
{
	struct line *l;

	if (!e)
		return;
	if (e->fd >= 0)
		close(e->fd);
	drop_current(e);
	while ((l = e->qhead)) {
		e->qhead = l->next;
		free(l);
	}
	free(e->rbuf);
	free(e->cursor);
	free(e);
}
