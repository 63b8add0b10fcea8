// SPDX-License-Identifier: MIT
/*
 * libcachefs's change events against a fake daemon: a thread that takes
 * one connection on a Unix socket in a temporary directory and plays a
 * script.  Also the TIME parser of "cachefsctl changes --since".
 */
#include <cachefs/events.h>

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "timespec_parse.h"

/* --- the fake daemon ----------------------------------------------------- */

#define MAX_REQ 8

struct fake {
	char dir[64], path[108];
	int lfd;
	pthread_t thread;
	void (*script)(struct fake *f, int fd);
	const char *answer; /* to the watch request; NULL: ANSWER */
	const char *line;   /* for scripts that send one given line */
	char req[MAX_REQ][4096]; /* the request lines received */
	int nreq;
	int wake[2]; /* the test writes a byte to let a script go on */
};

#define ANSWER                                                                 \
	"{\"ok\":true,\"data\":{\"from\":120,\"oldest\":1,\"newest\":130}}"
#define ANSWER_CURSOR                                                         \
	"{\"ok\":true,\"data\":{\"from\":120,\"oldest\":1,\"newest\":130,"    \
	"\"cursor\":\"backup\"}}"
/* A small valid event: seq n, on /fn. */
#define EV(n)                                                                 \
	"{\"seq\":" #n ",\"time_ns\":1795000000000000000,\"op\":\"write\","   \
	"\"class\":\"data\",\"path\":\"/f" #n "\",\"dev\":1,\"ino\":" #n      \
	",\"gen\":0}\n"
#define ACK_OK "{\"ok\":true,\"data\":{\"acked\":1}}\n"

static void srv_send(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return; /* the client went away: fine */
		s += n;
		len -= (size_t)n;
	}
}

static void srv_puts(int fd, const char *s)
{
	srv_send(fd, s, strlen(s));
}

/* Read one request line into f->req; false at EOF. */
static bool srv_line(struct fake *f, int fd)
{
	char *b = f->req[f->nreq < MAX_REQ ? f->nreq : MAX_REQ - 1];
	size_t n = 0;

	while (n < sizeof(f->req[0]) - 1 && read(fd, b + n, 1) == 1) {
		if (b[n] == '\n') {
			b[n] = '\0';
			f->nreq++;
			return true;
		}
		n++;
	}
	b[n] = '\0';
	return false;
}

static void srv_wait_eof(int fd)
{
	char b[4096];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* Take the watch request and answer it. */
static void srv_watch(struct fake *f, int fd)
{
	srv_line(f, fd);
	srv_puts(fd, f->answer ? f->answer : ANSWER);
	srv_puts(fd, "\n");
}

static void srv_wait_wake(struct fake *f)
{
	char c;

	(void)read(f->wake[0], &c, 1);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);

	if (fd >= 0) {
		f->script(f, fd);
		close(fd);
	}
	return NULL;
}

static struct fake *fake_new(void (*script)(struct fake *f, int fd))
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	ck_assert_ptr_nonnull(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_events.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(pipe(f->wake), 0);
	f->script = script;
	return f;
}

static void fake_go(struct fake *f)
{
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static struct fake *fake_start(void (*script)(struct fake *f, int fd))
{
	struct fake *f = fake_new(script);

	fake_go(f);
	return f;
}

/* Wait for the script to end (a script waiting to be woken is let go). */
static void fake_stop(struct fake *f)
{
	close(f->wake[1]);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->wake[0]);
	unlink(f->path);
	rmdir(f->dir);
}

static void fake_end(struct fake *f)
{
	fake_stop(f);
	free(f);
}

static void fake_wake(struct fake *f)
{
	ck_assert_int_eq(write(f->wake[1], "x", 1), 1);
}

static struct cachefs_events *open_ok(struct fake *f,
				      const struct cachefs_events_opts *o)
{
	struct cachefs_events *e = NULL;
	char err[256] = "";
	int r = cachefs_events_open(f->path, o, &e, err, sizeof(err));

	ck_assert_msg(r == 0, "open: %d %s", r, err);
	ck_assert_ptr_nonnull(e);
	return e;
}

/* The request line k as JSON. */
static json_t *request(struct fake *f, int k)
{
	json_t *j;

	ck_assert_int_gt(f->nreq, k);
	j = json_loads(f->req[k], 0, NULL);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* --- scripts ------------------------------------------------------------- */

static void script_idle(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_wait_eof(fd);
}

static void script_one_line(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, f->line);
	srv_wait_eof(fd);
}

static void script_answer_only(struct fake *f, int fd)
{
	srv_line(f, fd);
	srv_puts(fd, f->line);
	srv_wait_eof(fd);
}

static void script_hangup(struct fake *f, int fd)
{
	srv_line(f, fd);
}

static void script_events(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd,
		 "{\"seq\":121,\"time_ns\":1795000000123456789,"
		 "\"op\":\"rename\",\"class\":\"entry\",\"path\":\"/site/a\","
		 "\"path2\":\"/site/b\",\"dev\":2049,\"ino\":1234,\"gen\":7,"
		 "\"handle\":\"0100000002000000ABcd\"}\n"
		 "{\"seq\":122,\"time_ns\":1795000000200000000,"
		 "\"op\":\"chmod\",\"class\":\"metadata\","
		 "\"path\":\"/site/b\",\"dev\":-1,\"ino\":9223372036854775807,"
		 "\"gen\":0,\"extra\":[1,2]}\n"
		 "{\"seq\":123,\"time_ns\":0,\"op\":\"frobnicate\","
		 "\"class\":\"someday\",\"path\":\"/\",\"path2\":null,"
		 "\"handle\":null,\"dev\":0,\"ino\":0,\"gen\":0}\n"
		 "{\"gap\":{\"from\":124,\"to\":140}}\n"
		 "{\"end\":141}\n");
	srv_wait_eof(fd);
}

/* --- the request, the answer --------------------------------------------- */

START_TEST(test_request_args)
{
	struct cachefs_events_opts o = { .since = 120,
					 .cursor = "backup",
					 .path = "/site",
					 .no_follow = true };
	struct fake *f = fake_new(script_idle);
	struct cachefs_events *e;
	json_t *req, *want;

	f->answer = ANSWER_CURSOR;
	fake_go(f);
	e = open_ok(f, &o);
	ck_assert_uint_eq(cachefs_events_first(e), 120);
	ck_assert_uint_eq(cachefs_events_oldest(e), 1);
	ck_assert_uint_eq(cachefs_events_newest(e), 130);
	ck_assert_str_eq(cachefs_events_cursor(e), "backup");
	ck_assert_str_eq(cachefs_events_error(e), "");
	ck_assert_int_ge(cachefs_events_fd(e), 0);
	ck_assert(!cachefs_events_pending(e));
	cachefs_events_close(e);
	fake_stop(f);

	req = request(f, 0);
	want = json_pack("{s:s, s:{s:i, s:s, s:s, s:b}}", "cmd", "watch",
			 "args", "since", 120, "cursor", "backup", "path",
			 "/site", "follow", 0);
	ck_assert_msg(json_equal(req, want), "sent %s", f->req[0]);
	json_decref(req);
	json_decref(want);
	free(f);
}
END_TEST

/* Defaults send no arguments at all: the daemon's defaults apply. */
START_TEST(test_request_defaults)
{
	struct fake *f = fake_start(script_idle);
	struct cachefs_events *e = open_ok(f, NULL);
	json_t *req;

	ck_assert_ptr_null(cachefs_events_cursor(e));
	cachefs_events_close(e);
	fake_stop(f);
	req = request(f, 0);
	ck_assert_str_eq(json_string_value(json_object_get(req, "cmd")),
			 "watch");
	ck_assert_uint_eq(json_object_size(json_object_get(req, "args")), 0);
	json_decref(req);
	free(f);
}
END_TEST

START_TEST(test_bad_answers)
{
	static const struct {
		const char *line;
		int err;
		const char *msg;
	} cases[] = {
		{ "{\"ok\":false,\"error\":\"unknown cursor\"}\n", -EINVAL,
		  "unknown cursor" },
		{ "garbage\n", -EPROTO, NULL },
		{ "{\"seq\":1}\n", -EPROTO, NULL },
		{ "{\"ok\":true,\"data\":null}\n", -EPROTO, NULL },
		{ "{\"ok\":true,\"data\":{\"from\":1,\"oldest\":1}}\n", -EPROTO,
		  "newest" },
		{ "{\"ok\":true,\"data\":{\"from\":-1,\"oldest\":1,"
		  "\"newest\":1}}\n",
		  -EPROTO, NULL },
		{ "{\"ok\":true,\"data\":{\"from\":\"1\",\"oldest\":1,"
		  "\"newest\":1}}\n",
		  -EPROTO, NULL },
		{ "{\"ok\":true,\"data\":{\"from\":1,\"oldest\":1,"
		  "\"newest\":1,\"cursor\":7}}\n",
		  -EPROTO, NULL },
		{ "", -EPIPE, NULL }, /* closed without answering */
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fake *f = fake_new(cases[k].line[0] ? script_answer_only
							   : script_hangup);
		struct cachefs_events *e = (void *)1;
		char err[256] = "";
		int r;

		f->line = cases[k].line;
		fake_go(f);
		r = cachefs_events_open(f->path, NULL, &e, err, sizeof(err));
		ck_assert_msg(r == cases[k].err, "case %zu: %d (%s)", k, r,
			      err);
		ck_assert_ptr_null(e);
		ck_assert_str_ne(err, "");
		if (cases[k].msg)
			ck_assert_ptr_nonnull(strstr(err, cases[k].msg));
		fake_end(f);
	}
}
END_TEST

START_TEST(test_bad_opts)
{
	struct cachefs_events_opts bad[] = {
		{ .cursor = "" },
		{ .cursor = "no spaces" },
		{ .cursor = "a/b" },
		{ .cursor = "0123456789012345678901234567890123456789012345678"
			    "901234567890123456789" },
		{ .path = "site" },
		{ .path = "/\xff" },
		{ .since = (uint64_t)INT64_MAX + 1 },
		{ .timeout_ms = -2 },
	};
	struct cachefs_events *e;
	char err[256];

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		ck_assert_int_eq(cachefs_events_open("/nonexistent", &bad[k],
						     &e, err, sizeof(err)),
				 -EINVAL);
		ck_assert_str_ne(err, "");
	}
	ck_assert_int_eq(cachefs_events_open(NULL, NULL, &e, NULL, 0), -EINVAL);
	ck_assert_int_eq(cachefs_events_open("/x", NULL, NULL, err, 5),
			 -EINVAL);
	ck_assert_uint_le(strlen(err), 4);
}
END_TEST

/* Where there is no daemon: a missing socket, a dead one, a directory. */
START_TEST(test_no_daemon)
{
	struct fake *f = fake_new(NULL);
	struct cachefs_events *e;
	char err[256], file[128];
	FILE *fp;

	ck_assert_int_eq(cachefs_events_open("/nonexistent/ctl.sock", NULL, &e,
					     err, sizeof(err)),
			 -ENOENT);
	close(f->lfd); /* the socket file stays, nobody listens */
	f->lfd = -1;
	ck_assert_int_eq(cachefs_events_open(f->path, NULL, &e, err,
					     sizeof(err)),
			 -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err, f->path));
	/* a directory: the socket of the mount there, which is not there */
	ck_assert_int_eq(cachefs_events_open(f->dir, NULL, &e, err,
					     sizeof(err)),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/run/cachefs/tmp-test_events."));
	snprintf(file, sizeof(file), "%s/file", f->dir);
	fp = fopen(file, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	ck_assert_int_eq(cachefs_events_open(file, NULL, &e, err, sizeof(err)),
			 -ENOTSOCK);
	unlink(file);
	unlink(f->path);
	rmdir(f->dir);
	close(f->wake[0]);
	close(f->wake[1]);
	free(f);
}
END_TEST

START_TEST(test_open_timeout)
{
	struct cachefs_events_opts o = { .timeout_ms = 100 };
	struct fake *f = fake_new(script_answer_only);
	struct cachefs_events *e;
	char err[256];

	f->line = ""; /* read the request, answer nothing */
	fake_go(f);
	ck_assert_int_eq(cachefs_events_open(f->path, &o, &e, err, sizeof(err)),
			 -ETIMEDOUT);
	fake_end(f);
}
END_TEST

/* --- events -------------------------------------------------------------- */

START_TEST(test_decode)
{
	static const unsigned char handle[] = { 1, 0, 0, 0, 2, 0, 0, 0, 0xab,
						0xcd };
	struct fake *f = fake_start(script_events);
	struct cachefs_events *e = open_ok(f, NULL);
	struct cachefs_event ev;

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_CHANGE);
	ck_assert_uint_eq(ev.seq, 121);
	ck_assert(ev.time_ns == 1795000000123456789LL);
	ck_assert_str_eq(ev.op, "rename");
	ck_assert_int_eq(ev.cls, CACHEFS_CLASS_ENTRY);
	ck_assert_str_eq(ev.path, "/site/a");
	ck_assert_str_eq(ev.path2, "/site/b");
	ck_assert_uint_eq(ev.dev, 2049);
	ck_assert_uint_eq(ev.ino, 1234);
	ck_assert_uint_eq(ev.gen, 7);
	ck_assert_uint_eq(ev.handle_len, sizeof(handle));
	ck_assert_mem_eq(ev.handle, handle, sizeof(handle));
	ck_assert_uint_eq(ev.gap_from, 0);
	ck_assert_uint_eq(ev.gap_to, 0);
	ck_assert_ptr_nonnull(strstr(ev.raw, "\"seq\":121"));
	ck_assert_uint_eq(strlen(ev.raw), ev.raw_len);
	ck_assert_int_eq(ev.raw[0], '{');
	ck_assert_int_eq(ev.raw[ev.raw_len - 1], '}');

	/* without path2 and handle; unsigned numbers sent as signed ones */
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_CHANGE);
	ck_assert_uint_eq(ev.seq, 122);
	ck_assert(ev.time_ns == 1795000000200000000LL);
	ck_assert_str_eq(ev.op, "chmod");
	ck_assert_int_eq(ev.cls, CACHEFS_CLASS_METADATA);
	ck_assert_str_eq(ev.path, "/site/b");
	ck_assert_ptr_null(ev.path2);
	ck_assert_ptr_null(ev.handle);
	ck_assert_uint_eq(ev.handle_len, 0);
	ck_assert(ev.dev == UINT64_MAX);
	ck_assert(ev.ino == (uint64_t)INT64_MAX);
	ck_assert_ptr_nonnull(strstr(ev.raw, "\"extra\":[1,2]"));

	/* an op and a class from a newer daemon; nulls for absent */
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 123);
	ck_assert(ev.time_ns == 0);
	ck_assert_str_eq(ev.op, "frobnicate");
	ck_assert_int_eq(ev.cls, CACHEFS_CLASS_OTHER);
	ck_assert_str_eq(ev.path, "/");
	ck_assert_ptr_null(ev.path2);
	ck_assert_ptr_null(ev.handle);

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_GAP);
	ck_assert_uint_eq(ev.gap_from, 124);
	ck_assert_uint_eq(ev.gap_to, 140);
	ck_assert_uint_eq(ev.seq, 140);
	ck_assert_ptr_null(ev.op);
	ck_assert_ptr_null(ev.path);
	ck_assert_str_eq(ev.raw, "{\"gap\":{\"from\":124,\"to\":140}}");

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_END);
	ck_assert_uint_eq(ev.seq, 141);
	ck_assert_ptr_null(ev.path);

	/* after the end: -EPIPE, every time, at once */
	ck_assert(cachefs_events_pending(e));
	ck_assert_int_eq(cachefs_events_read(e, &ev, -1), -EPIPE);
	ck_assert_int_eq(cachefs_events_read(e, &ev, -1), -EPIPE);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

/* Every one of these lines, as the first event, is -EPROTO, for good. */
START_TEST(test_malformed_events)
{
	static const char *const lines[] = {
		"not json",
		"[1,2]",
		"\"seq\"",
		"{}",
		"{\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1}",
		"{\"seq\":\"1\",\"time_ns\":1,\"op\":\"write\","
		"\"class\":\"data\",\"path\":\"/a\",\"dev\":1,\"ino\":1,"
		"\"gen\":0}",
		"{\"seq\":1.5,\"time_ns\":1,\"op\":\"write\","
		"\"class\":\"data\",\"path\":\"/a\",\"dev\":1,\"ino\":1,"
		"\"gen\":0}",
		"{\"seq\":0,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":-5,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":99999999999999999999,\"time_ns\":1,\"op\":\"write\","
		"\"class\":\"data\",\"path\":\"/a\",\"dev\":1,\"ino\":1,"
		"\"gen\":0}",
		"{\"seq\":1,\"time_ns\":-1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"Write!\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":3,"
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":3,\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"a\",\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"path2\":\"b\",\"dev\":1,\"ino\":1,"
		"\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"path2\":[],\"dev\":1,\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":\"1\",\"ino\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"gen\":0}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0,"
		"\"handle\":\"abc\"}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0,"
		"\"handle\":\"0g\"}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0,\"handle\":12}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0,"
		"\"handle\":\" 1\"}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\",\"dev\":1,\"ino\":1,\"gen\":0,\"seq\":2}",
		"{\"seq\":1,\"gap\":{\"from\":1,\"to\":2}}",
		"{\"gap\":{\"from\":3,\"to\":2}}",
		"{\"gap\":{\"from\":1}}",
		"{\"gap\":[1,2]}",
		"{\"gap\":{\"from\":-1,\"to\":2}}",
		"{\"end\":-1}",
		"{\"end\":\"5\"}",
		"{\"end\":null}",
		"{\"ok\":true,\"data\":{\"acked\":1}}",
		"{\"ok\":false,\"error\":\"x\"}",
		"{\"seq\":1,\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		"\"path\":\"/a\\u0000b\",\"dev\":1,\"ino\":1,\"gen\":0}",
	};
	char handle[2 * CACHEFS_EVENTS_HANDLE_MAX + 300];
	char *line;

	for (size_t k = 0; k <= sizeof(lines) / sizeof(lines[0]); k++) {
		struct fake *f = fake_new(script_one_line);
		struct cachefs_events *e;
		struct cachefs_event ev;
		int r;

		if (k < sizeof(lines) / sizeof(lines[0])) {
			if (asprintf(&line, "%s\n", lines[k]) < 0)
				ck_abort();
		} else { /* a handle one byte too long */
			memset(handle, 'a', sizeof(handle));
			handle[2 * CACHEFS_EVENTS_HANDLE_MAX + 2] = '\0';
			if (asprintf(&line,
				     "{\"seq\":1,\"time_ns\":1,"
				     "\"op\":\"write\",\"class\":\"data\","
				     "\"path\":\"/a\",\"dev\":1,\"ino\":1,"
				     "\"gen\":0,\"handle\":\"%s\"}\n",
				     handle) < 0)
				ck_abort();
		}
		f->line = line;
		fake_go(f);
		e = open_ok(f, NULL);
		r = cachefs_events_read(e, &ev, 1000);
		ck_assert_msg(r == -EPROTO, "line %zu: %d for %s", k, r, line);
		ck_assert_str_ne(cachefs_events_error(e), "");
		ck_assert(cachefs_events_pending(e));
		ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPROTO);
		cachefs_events_close(e);
		fake_end(f);
		free(line);
	}
}
END_TEST

/* A handle of exactly CACHEFS_EVENTS_HANDLE_MAX bytes is fine. */
START_TEST(test_longest_handle)
{
	char hex[2 * CACHEFS_EVENTS_HANDLE_MAX + 1], *line;
	struct fake *f = fake_new(script_one_line);
	struct cachefs_events *e;
	struct cachefs_event ev;

	for (int k = 0; k < CACHEFS_EVENTS_HANDLE_MAX; k++)
		snprintf(hex + 2 * k, 3, "%02x", k);
	ck_assert_int_ge(asprintf(&line,
				  "{\"seq\":1,\"time_ns\":1,\"op\":\"write\","
				  "\"class\":\"data\",\"path\":\"/a\","
				  "\"dev\":1,\"ino\":1,\"gen\":0,"
				  "\"handle\":\"%s\"}\n",
				  hex),
			 0);
	f->line = line;
	fake_go(f);
	e = open_ok(f, NULL);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.handle_len, CACHEFS_EVENTS_HANDLE_MAX);
	for (int k = 0; k < CACHEFS_EVENTS_HANDLE_MAX; k++)
		ck_assert_uint_eq(ev.handle[k], k);
	cachefs_events_close(e);
	fake_end(f);
	free(line);
}
END_TEST

/* An event line of n bytes (without its '\n'), its path padding it out. */
static char *event_of_length(size_t n)
{
	static const char head[] = "{\"seq\":1,\"time_ns\":1,\"op\":\"write\","
				   "\"class\":\"data\",\"dev\":1,\"ino\":1,"
				   "\"gen\":0,\"path\":\"/";
	static const char tail[] = "\"}\n";
	size_t h = sizeof(head) - 1, t = sizeof(tail) - 1;
	char *s = malloc(n + 2);

	ck_assert_ptr_nonnull(s);
	memcpy(s, head, h);
	memset(s + h, 'x', n + 1 - h - t);
	memcpy(s + n + 1 - t, tail, t + 1);
	ck_assert_uint_eq(strlen(s), n + 1);
	return s;
}

START_TEST(test_line_limit)
{
	struct fake *f;
	struct cachefs_events *e;
	struct cachefs_event ev;
	char *line;

	/* the longest line taken */
	line = event_of_length(CACHEFS_EVENTS_LINE_MAX);
	f = fake_new(script_one_line);
	f->line = line;
	fake_go(f);
	e = open_ok(f, NULL);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), 1);
	ck_assert_uint_eq(ev.raw_len, CACHEFS_EVENTS_LINE_MAX);
	ck_assert_int_eq(ev.path[0], '/');
	ck_assert_uint_gt(strlen(ev.path), CACHEFS_EVENTS_LINE_MAX - 200);
	cachefs_events_close(e);
	fake_end(f);
	free(line);

	/* one byte more */
	line = event_of_length(CACHEFS_EVENTS_LINE_MAX + 1);
	f = fake_new(script_one_line);
	f->line = line;
	fake_go(f);
	e = open_ok(f, NULL);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), -EPROTO);
	ck_assert_ptr_nonnull(strstr(cachefs_events_error(e), "longer"));
	cachefs_events_close(e);
	fake_end(f);
	free(line);

	/* no newline at all, and more to come: caught at the limit */
	line = malloc(4 * CACHEFS_EVENTS_LINE_MAX + 1);
	ck_assert_ptr_nonnull(line);
	memset(line, 'y', 4 * CACHEFS_EVENTS_LINE_MAX);
	line[4 * CACHEFS_EVENTS_LINE_MAX] = '\0';
	f = fake_new(script_one_line);
	f->line = line;
	fake_go(f);
	e = open_ok(f, NULL);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), -EPROTO);
	cachefs_events_close(e);
	fake_end(f);
	free(line);
}
END_TEST

static void script_close_early(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1) "{\"seq\":2,\"time_ns\":1,"); /* cut short */
}

START_TEST(test_daemon_closes)
{
	struct fake *f = fake_start(script_close_early);
	struct cachefs_events *e = open_ok(f, NULL);
	struct cachefs_event ev;

	fake_end(f); /* the script is over: the connection is closed */
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 1);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPIPE);
	ck_assert_ptr_nonnull(strstr(cachefs_events_error(e), "closed"));
	ck_assert(cachefs_events_pending(e));
	ck_assert_int_eq(cachefs_events_read(e, &ev, -1), -EPIPE);
	cachefs_events_close(e);
}
END_TEST

static void script_later(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_wait_wake(f);
	srv_puts(fd, EV(1));
	srv_wait_wake(f);
	srv_puts(fd, "{\"seq\":2,");
	srv_wait_wake(f);
	srv_puts(fd, "\"time_ns\":1,\"op\":\"write\",\"class\":\"data\","
		     "\"path\":\"/b\",\"dev\":1,\"ino\":1,\"gen\":0}\n");
	srv_wait_eof(fd);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

START_TEST(test_timeout)
{
	struct fake *f = fake_start(script_later);
	struct cachefs_events *e = open_ok(f, NULL);
	struct pollfd p = { .fd = cachefs_events_fd(e), .events = POLLIN };
	struct cachefs_event ev;
	struct timespec t0;

	ck_assert_int_eq(cachefs_events_read(e, &ev, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 100), 0);
	ck_assert_int_ge(elapsed_ms(&t0), 90);
	ck_assert(!cachefs_events_pending(e));

	fake_wake(f);
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(cachefs_events_read(e, &ev, -1), 1);
	ck_assert_uint_eq(ev.seq, 1);

	/* half a line: the fd is readable, but no event yet */
	fake_wake(f);
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 50), 0);
	ck_assert(!cachefs_events_pending(e));
	fake_wake(f);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), 1);
	ck_assert_uint_eq(ev.seq, 2);
	ck_assert_str_eq(ev.path, "/b");
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

static void on_signal(int sig)
{
	(void)sig;
}

static void *signal_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000000 };

	nanosleep(&ts, NULL);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

START_TEST(test_eintr)
{
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART */
	struct fake *f = fake_start(script_later);
	struct cachefs_events *e = open_ok(f, NULL);
	struct cachefs_event ev;
	pthread_t self = pthread_self(), t;

	sigaction(SIGUSR1, &sa, NULL);
	ck_assert_int_eq(pthread_create(&t, NULL, signal_later, &self), 0);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), -EINTR);
	pthread_join(t, NULL);
	/* nothing lost, nothing broken */
	fake_wake(f);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 5000), 1);
	ck_assert_uint_eq(ev.seq, 1);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

static void script_batch(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1) EV(2) EV(3) EV(4) EV(5) "{\"end\":5}\n");
	srv_wait_eof(fd);
}

static int count_until(const struct cachefs_event *ev, void *arg)
{
	int *n = arg;

	(*n)++;
	return ev->type == CACHEFS_EVENT_CHANGE && ev->seq == 3 ? 7 : 0;
}

static int count(const struct cachefs_event *ev, void *arg)
{
	int *n = arg;

	(*n)++;
	return 0;
}

START_TEST(test_run)
{
	struct fake *f = fake_start(script_batch);
	struct cachefs_events *e = open_ok(f, NULL);
	struct cachefs_event ev;
	int n = 0;

	ck_assert_int_eq(cachefs_events_run(e, count_until, &n), 7);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 4);
	n = 0;
	ck_assert_int_eq(cachefs_events_run(e, count, &n), 0);
	ck_assert_int_eq(n, 2); /* 5 and the end */
	ck_assert_int_eq(cachefs_events_run(e, count, &n), -EPIPE);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(cachefs_events_run(e, NULL, &n), -EINVAL);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

/* --- acks ---------------------------------------------------------------- */

static void script_ack(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1) EV(2) EV(3));
	srv_line(f, fd); /* ack 1 */
	srv_puts(fd, EV(4) EV(5) ACK_OK EV(6));
	srv_line(f, fd); /* ack 99, refused */
	srv_puts(fd, EV(7) "{\"ok\":false,\"error\":\"not sent yet\"}\n" EV(8));
	srv_line(f, fd); /* ack 8 */
	srv_puts(fd, ACK_OK);
	srv_wait_eof(fd);
}

START_TEST(test_ack_keeps_events)
{
	struct cachefs_events_opts o = { .cursor = "backup" };
	struct fake *f = fake_new(script_ack);
	struct cachefs_events *e;
	struct cachefs_event ev;
	const char *path;
	json_t *req;

	f->answer = ANSWER_CURSOR;
	fake_go(f);
	e = open_ok(f, &o);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 1);
	path = ev.path;
	ck_assert_int_eq(cachefs_events_ack(e, 1), 0);
	/* the event read before the ack is still whole */
	ck_assert_str_eq(path, "/f1");
	ck_assert_uint_eq(ev.seq, 1);
	ck_assert(cachefs_events_pending(e));
	for (uint64_t k = 2; k <= 6; k++) {
		ck_assert(cachefs_events_pending(e));
		ck_assert_int_eq(cachefs_events_read(e, &ev, 0), 1);
		ck_assert_uint_eq(ev.seq, k);
	}
	ck_assert_int_eq(cachefs_events_ack(e, 99), -EINVAL);
	ck_assert_str_eq(cachefs_events_error(e), "not sent yet");
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 7);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 8);
	ck_assert_int_eq(cachefs_events_ack(e, 8), 0);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 0), 0);
	cachefs_events_close(e);
	fake_stop(f);

	ck_assert_int_eq(f->nreq, 4);
	req = request(f, 1);
	ck_assert_str_eq(json_string_value(json_object_get(req, "cmd")), "ack");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(req, "args"), "seq")),
			 1);
	ck_assert_uint_eq(json_object_size(req), 2);
	json_decref(req);
	req = request(f, 3);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(req, "args"), "seq")),
			 8);
	json_decref(req);
	free(f);
}
END_TEST

START_TEST(test_ack_needs_cursor)
{
	struct fake *f = fake_start(script_batch);
	struct cachefs_events *e = open_ok(f, NULL);
	struct cachefs_events_opts o = { .cursor = "c" };

	ck_assert_int_eq(cachefs_events_ack(e, 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cachefs_events_error(e), "cursor"));
	cachefs_events_close(e);
	fake_stop(f);
	ck_assert_int_eq(f->nreq, 1); /* the watch only: nothing sent */
	free(f);

	f = fake_start(script_idle);
	e = open_ok(f, &o);
	ck_assert_int_eq(cachefs_events_ack(e, (uint64_t)INT64_MAX + 1),
			 -EINVAL);
	cachefs_events_close(e);
	fake_stop(f);
	ck_assert_int_eq(f->nreq, 1);
	free(f);
}
END_TEST

static void script_close_in_ack(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1) EV(2));
	srv_line(f, fd);
	srv_puts(fd, EV(3) "{\"end\":3}\n");
}

/* The daemon goes before answering: the events it sent are not lost. */
START_TEST(test_ack_daemon_closes)
{
	struct cachefs_events_opts o = { .cursor = "c" };
	struct fake *f = fake_start(script_close_in_ack);
	struct cachefs_events *e = open_ok(f, &o);
	struct cachefs_event ev;

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(cachefs_events_ack(e, 1), -EPIPE);
	ck_assert_int_eq(cachefs_events_ack(e, 1), -EPIPE);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 2);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 3);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_END);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPIPE);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

static void script_ack_after_end(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1) "{\"end\":1}\n");
	srv_line(f, fd);
	srv_puts(fd, ACK_OK);
	srv_wait_eof(fd);
}

START_TEST(test_ack_after_end)
{
	struct cachefs_events_opts o = { .cursor = "c", .no_follow = true };
	struct fake *f = fake_start(script_ack_after_end);
	struct cachefs_events *e = open_ok(f, &o);
	struct cachefs_event ev;

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(ev.type, CACHEFS_EVENT_END);
	ck_assert_int_eq(cachefs_events_ack(e, ev.seq), 0);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPIPE);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

static void script_no_ack_answer(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_puts(fd, EV(1));
	srv_line(f, fd);
	srv_puts(fd, EV(2));
	srv_wait_eof(fd);
}

START_TEST(test_ack_timeout)
{
	struct cachefs_events_opts o = { .cursor = "c", .timeout_ms = 100 };
	struct fake *f = fake_start(script_no_ack_answer);
	struct cachefs_events *e = open_ok(f, &o);
	struct cachefs_event ev;

	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_int_eq(cachefs_events_ack(e, 1), -ETIMEDOUT);
	/* the answer may yet come: the stream is out of step for good */
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 2);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -ETIMEDOUT);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

static void script_garbage_in_ack(struct fake *f, int fd)
{
	srv_watch(f, fd);
	srv_line(f, fd);
	srv_puts(fd, EV(1) "}{\n" ACK_OK);
	srv_wait_eof(fd);
}

START_TEST(test_ack_garbage)
{
	struct cachefs_events_opts o = { .cursor = "c" };
	struct fake *f = fake_start(script_garbage_in_ack);
	struct cachefs_events *e = open_ok(f, &o);
	struct cachefs_event ev;

	/* the garbage is taken for part of the stream, so the answer is
	 * still found; reading then stops at the garbage */
	ck_assert_int_eq(cachefs_events_ack(e, 1), 0);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), 1);
	ck_assert_uint_eq(ev.seq, 1);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPROTO);
	ck_assert_int_eq(cachefs_events_read(e, &ev, 1000), -EPROTO);
	ck_assert_int_eq(cachefs_events_ack(e, 1), -EPROTO);
	cachefs_events_close(e);
	fake_end(f);
}
END_TEST

/* --- the TIME of changes --since ----------------------------------------- */

START_TEST(test_time_parse)
{
	static const struct {
		const char *s;
		long long sec;
		long ns;
	} good[] = {
		{ "1795000000", 1795000000, 0 },
		{ "@1795000000", 1795000000, 0 },
		{ "@1795000000.5", 1795000000, 500000000 },
		{ "1795000000.000000001", 1795000000, 1 },
		{ "@1795000000.1234567891234", 1795000000, 123456789 },
		{ "0", 0, 0 },
		{ "2026-11-22T10:00:00Z", 1795341600, 0 },
		{ "2026-11-22T10:00:00z", 1795341600, 0 },
		{ "2026-11-22T10:00:00", 1795341600, 0 },
		{ "2026-11-22 10:00:00", 1795341600, 0 },
		{ "2026-11-22t10:00", 1795341600, 0 },
		{ "2026-11-22T10:00:00.25Z", 1795341600, 250000000 },
		{ "2026-11-22T12:00:00+02:00", 1795341600, 0 },
		{ "2026-11-22T12:30:00+0230", 1795341600, 0 },
		{ "2026-11-22T07:00:00-03", 1795341600, 0 },
		{ "2026-11-22", 1795305600, 0 },
		{ "2026-11-22Z", 1795305600, 0 },
		{ "2024-02-29", 1709164800, 0 },
		{ "2026-11-22T09:59:60Z", 1795341600, 0 },
		{ "1970-01-01T00:00:00Z", 0, 0 },
	};
	static const struct {
		const char *s;
		long long before;
	} ages[] = {
		{ "90s", 90 },	    { "15m", 900 },	  { "2h", 7200 },
		{ "3d", 259200 },   { "1w", 604800 },	  { "0s", 0 },
		{ "100000d", 8640000000LL },
	};
	static const char *const bad[] = {
		"",
		"abc",
		"@",
		"@.5",
		"1.",
		"1.x",
		"-5",
		"-5s",
		"+5",
		" 5",
		"5 ",
		"10x",
		"1h30m",
		"5S",
		"5ss",
		"s",
		"99999999999999999999",
		"999999999999999d",
		"2026-13-01",
		"2026-00-01",
		"2026-02-29",
		"2023-02-29",
		"2026-04-31",
		"2026-11-00",
		"2026-11-22T24:00",
		"2026-11-22T10:60",
		"2026-11-22T10:00:61",
		"2026-11-22T10",
		"2026-11-22T10:00:00Zjunk",
		"2026-11-22T10:00:00+25:00",
		"2026-11-22T10:00:00+02:",
		"2026-11-22T10:00:00+02:7",
		"2026-11-22T10:00:00.Z",
		"2026-11-22T10:00:00 Z",
		"2026-11-22X10:00",
		"2026-1-22",
		"26-11-22",
		"2026/11/22",
	};
	struct timespec now = { 1795000000, 123 }, t;

	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
		ck_assert_msg(timespec_parse(good[k].s, &now, &t) == 0, "%s",
			      good[k].s);
		ck_assert_msg(t.tv_sec == good[k].sec &&
				      t.tv_nsec == good[k].ns,
			      "%s: %lld.%09ld", good[k].s, (long long)t.tv_sec,
			      t.tv_nsec);
	}
	for (size_t k = 0; k < sizeof(ages) / sizeof(ages[0]); k++) {
		ck_assert_msg(timespec_parse(ages[k].s, &now, &t) == 0, "%s",
			      ages[k].s);
		ck_assert_msg(t.tv_sec == now.tv_sec - ages[k].before &&
				      t.tv_nsec == now.tv_nsec,
			      "%s", ages[k].s);
	}
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		ck_assert_msg(timespec_parse(bad[k], &now, &t) == -EINVAL,
			      "'%s' taken", bad[k]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("events");
	TCase *tt = tcase_create("time");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_request_args);
	tcase_add_test(tc, test_request_defaults);
	tcase_add_test(tc, test_bad_answers);
	tcase_add_test(tc, test_bad_opts);
	tcase_add_test(tc, test_no_daemon);
	tcase_add_test(tc, test_open_timeout);
	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_malformed_events);
	tcase_add_test(tc, test_longest_handle);
	tcase_add_test(tc, test_line_limit);
	tcase_add_test(tc, test_daemon_closes);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_eintr);
	tcase_add_test(tc, test_run);
	tcase_add_test(tc, test_ack_keeps_events);
	tcase_add_test(tc, test_ack_needs_cursor);
	tcase_add_test(tc, test_ack_daemon_closes);
	tcase_add_test(tc, test_ack_after_end);
	tcase_add_test(tc, test_ack_timeout);
	tcase_add_test(tc, test_ack_garbage);
	suite_add_tcase(s, tc);
	tcase_add_test(tt, test_time_parse);
	suite_add_tcase(s, tt);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
