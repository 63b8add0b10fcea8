// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* A UDP socket on 127.0.0.1 (port chosen by the kernel), its spec in spec. */
static int listener(char *spec, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct timeval tv = { .tv_sec = 2 };
	int rcvbuf = 4 << 20;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	snprintf(spec, len, "127.0.0.1:%u", ntohs(sa.sin_port));
	return fd;
}

static struct notify *open_notify(const char *spec)
{
	struct notify *n = NULL;
	char err[256] = "";

	ck_assert_msg(notify_new(spec, &n, err, sizeof(err)) == 0, "%s: %s",
		      spec, err);
	ck_assert_ptr_nonnull(n);
	return n;
}

/*
 * Receive one datagram; check its timestamp ("<sec>.<6 digits> ", within
 * a few seconds of now) and that the rest is want, byte for byte.
 */
static void expect(int fd, const char *want)
{
	static char buf[NOTIFY_DGRAM_MAX + 1];
	ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);
	char *dot, *space;
	long long sec;

	ck_assert_msg(len > 0, "no datagram for %.60s: %s", want,
		      strerror(errno));
	buf[len] = '\0';
	ck_assert_uint_eq(strlen(buf), (size_t)len); /* no NUL inside */
	sec = strtoll(buf, &dot, 10);
	ck_assert_int_eq(*dot, '.');
	space = dot + 1 + strspn(dot + 1, "0123456789");
	ck_assert_int_eq(space - dot - 1, 6);
	ck_assert_int_eq(*space, ' ');
	ck_assert(llabs(sec - (long long)time(NULL)) <= 5);
	ck_assert_uint_eq(strlen(space + 1), strlen(want));
	ck_assert_str_eq(space + 1, want);
}

static void expect_nothing(int fd)
{
	char buf[64];

	ck_assert_int_lt(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
	ck_assert_int_eq(errno, EAGAIN);
}

START_TEST(test_format)
{
	char spec[64];
	int fd = listener(spec, sizeof(spec));
	struct notify *n = open_notify(spec);
	struct notify_stats st;

	notify_send(n, "write", "/index.php", NULL);
	expect(fd, "HIT write /index.php\n");
	notify_send(n, "mkdir", "/", NULL);
	expect(fd, "HIT mkdir /\n");
	notify_send(n, "rename", "/a/old", "/b/new");
	expect(fd, "HIT rename /a/old /b/new\n");
	notify_send(n, "link", "/my file.txt", "/100% done");
	expect(fd, "HIT link /my%20file.txt /100%25%20done\n");
	notify_send(n, "create", "/line\nbreak\r\tand\x01\x1f\x7f", NULL);
	expect(fd, "HIT create /line%0Abreak%0D%09and%01%1F%7F\n");
	/* UTF-8 (and any other byte from 0x80 up) goes as it is */
	notify_send(n, "unlink", "/čaj/日本語 ü", NULL);
	expect(fd, "HIT unlink /čaj/日本語%20ü\n");
	notify_send(n, "rename", "/über dir/x", "/%41");
	expect(fd, "HIT rename /über%20dir/x /%2541\n");
	notify_send(n, "copy_file_range", "/dst", NULL);
	expect(fd, "HIT copy_file_range /dst\n");

	/* notify_send() does not send without op or path */
	notify_send(n, NULL, "/x", NULL);
	notify_send(n, "write", NULL, NULL);
	expect_nothing(fd);

	notify_get_stats(n, &st);
	ck_assert_uint_eq(st.sent, 8);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert_uint_eq(st.too_long, 0);
	ck_assert_int_eq(st.last_errno, 0);
	notify_free(n);
	close(fd);
}
END_TEST

START_TEST(test_prefix)
{
	char spec[64];
	int fd = listener(spec, sizeof(spec));
	struct notify *n = open_notify(spec);

	ck_assert_int_eq(notify_set_prefix(n, "/srv/web 1"), 0);
	notify_send(n, "chmod", "/a", NULL);
	expect(fd, "HIT chmod /srv/web%201/a\n");
	notify_send(n, "rename", "/a", "/b");
	expect(fd, "HIT rename /srv/web%201/a /srv/web%201/b\n");
	ck_assert_int_eq(notify_set_prefix(n, NULL), 0);
	notify_send(n, "chown", "/a", NULL);
	expect(fd, "HIT chown /a\n");
	notify_free(n);
	close(fd);
}
END_TEST

START_TEST(test_long_paths)
{
	size_t big = 2 * 4096; /* two PATH_MAX paths, every byte escaped */
	char spec[64], *a = malloc(big + 1), *b = malloc(big + 1);
	char *want = malloc(6 * big + 32), *p;
	int fd = listener(spec, sizeof(spec));
	struct notify *n = open_notify(spec);
	struct notify_stats st;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(want);
	a[0] = b[0] = '/';
	memset(a + 1, ' ', big - 1);
	memset(b + 1, '%', big - 1);
	a[big] = b[big] = '\0';
	p = want + sprintf(want, "HIT rename /");
	for (size_t k = 1; k < big; k++)
		p += sprintf(p, "%%20");
	p += sprintf(p, " /");
	for (size_t k = 1; k < big; k++)
		p += sprintf(p, "%%25");
	sprintf(p, "\n");
	notify_send(n, "rename", a, b);
	expect(fd, want);

	/* over NOTIFY_DGRAM_MAX: counted, not sent */
	free(a);
	a = malloc(NOTIFY_DGRAM_MAX + 1);
	ck_assert_ptr_nonnull(a);
	a[0] = '/';
	memset(a + 1, 'x', NOTIFY_DGRAM_MAX - 1);
	a[NOTIFY_DGRAM_MAX] = '\0';
	notify_send(n, "write", a, NULL);
	a[NOTIFY_DGRAM_MAX / 3] = '\0'; /* fits, but for its escaping */
	memset(a + 1, '\n', NOTIFY_DGRAM_MAX / 3 - 1);
	notify_send(n, "write", "/short", a);
	expect_nothing(fd);
	notify_get_stats(n, &st);
	ck_assert_uint_eq(st.sent, 1);
	ck_assert_uint_eq(st.too_long, 2);
	ck_assert_uint_eq(st.errors, 0);

	notify_free(n);
	close(fd);
	free(a);
	free(b);
	free(want);
}
END_TEST

static void expect_bad(const char *spec, const char *msg)
{
	struct notify *n = (struct notify *)1;
	char err[256] = "";

	ck_assert_msg(notify_new(spec, &n, err, sizeof(err)) < 0, "%s", spec);
	ck_assert_ptr_null(n);
	ck_assert_msg(strstr(err, msg), "%s: '%s' lacks '%s'", spec, err, msg);
	if (spec)
		ck_assert_msg(strstr(err, spec), "%s: '%s'", spec, err);
}

START_TEST(test_bad_specs)
{
	struct notify *n = NULL;

	expect_bad(NULL, "empty");
	expect_bad("", "empty");
	expect_bad("127.0.0.1", "missing port");
	expect_bad("localhost", "missing port");
	expect_bad("127.0.0.1:", "missing port");
	expect_bad(":12345", "missing host");
	expect_bad("[]:12345", "missing host");
	expect_bad("127.0.0.1:0", "out of range");
	expect_bad("127.0.0.1:65536", "out of range");
	expect_bad("127.0.0.1:99999999999999999999999", "out of range");
	expect_bad("127.0.0.1:12x", "not a number");
	expect_bad("127.0.0.1:-1", "not a number");
	expect_bad("127.0.0.1: 1", "not a number");
	expect_bad("::1:12345", "brackets");
	expect_bad("[::1", "missing ']'");
	expect_bad("[::1]", "missing port");
	expect_bad("[::1]12345", "missing port");
	expect_bad("[::1]:", "missing port");
	expect_bad("[not an address]:12345", "cannot resolve");
	/* .invalid never resolves (RFC 6761) */
	expect_bad("no-such-host.invalid:12345", "cannot resolve");

	/* no message asked for */
	ck_assert_int_eq(notify_new("nope", &n, NULL, 0), -EINVAL);
	ck_assert_ptr_null(n);

	/* names resolve, ports may have leading zeros */
	n = open_notify("localhost:012345");
	notify_free(n);
	notify_free(NULL);
}
END_TEST

START_TEST(test_ipv6)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t sl = sizeof(sa);
	struct timeval tv = { .tv_sec = 2 };
	struct notify *n;
	char spec[64];
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return; /* no IPv6 loopback here */
	}
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(spec, sizeof(spec), "[::1]:%u", ntohs(sa.sin6_port));
	n = open_notify(spec);
	notify_send(n, "rmdir", "/d", NULL);
	expect(fd, "HIT rmdir /d\n");
	notify_free(n);
	close(fd);
}
END_TEST

START_TEST(test_nobody_listening)
{
	struct notify_stats st;
	struct notify *n;
	char spec[64];
	int fd = listener(spec, sizeof(spec));

	close(fd); /* the port is closed now */
	n = open_notify(spec);
	for (int k = 0; k < 100; k++) {
		notify_send(n, "write", "/f", NULL);
		notify_get_stats(n, &st);
		if (st.errors >= 2)
			break;
		usleep(1000);
	}
	notify_get_stats(n, &st);
	ck_assert_uint_ge(st.errors, 2);
	ck_assert_int_eq(st.last_errno, ECONNREFUSED);
	ck_assert_uint_ge(st.sent, 1);
	ck_assert_uint_eq(st.too_long, 0);
	notify_free(n);

	notify_get_stats(NULL, &st);
	ck_assert_uint_eq(st.sent + st.errors + st.too_long, 0);
	notify_send(NULL, "write", "/f", NULL);
}
END_TEST

#define NTHREADS 8
#define PER_THREAD 200

static struct notify *shared;

static void *sender(void *arg)
{
	char path[64];

	for (int k = 0; k < PER_THREAD; k++) {
		snprintf(path, sizeof(path), "/thread %ld/file %d",
			 (long)(intptr_t)arg, k);
		notify_send(shared, "write", path, k % 2 ? "/other" : NULL);
	}
	return NULL;
}

START_TEST(test_threads)
{
	static char seen[NTHREADS][PER_THREAD];
	pthread_t t[NTHREADS];
	struct notify_stats st;
	char spec[64], buf[256];
	int fd = listener(spec, sizeof(spec)), got = 0;
	struct timeval tv = { .tv_usec = 200000 };
	ssize_t len;

	shared = open_notify(spec);
	for (long k = 0; k < NTHREADS; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, sender,
						(void *)(intptr_t)k),
				 0);
	for (int k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	notify_get_stats(shared, &st);
	ck_assert_uint_eq(st.sent + st.errors, NTHREADS * PER_THREAD);

	/* every datagram that arrived is one whole, well-formed line */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while ((len = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		int th, file, n = 0;
		char *rest;

		buf[len] = '\0';
		rest = strstr(buf, " HIT write ");
		ck_assert_ptr_nonnull(rest);
		ck_assert_int_eq(sscanf(rest, " HIT write /thread%%20%d/file%%20%d%n",
					&th, &file, &n),
				 2);
		ck_assert(th >= 0 && th < NTHREADS);
		ck_assert(file >= 0 && file < PER_THREAD);
		ck_assert_str_eq(rest + n, file % 2 ? " /other\n" : "\n");
		ck_assert(!seen[th][file]);
		seen[th][file] = 1;
		got++;
	}
	ck_assert_int_gt(got, 0);
	ck_assert_int_le(got, (int)st.sent);
	notify_free(shared);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_prefix);
	tcase_add_test(tc, test_long_paths);
	tcase_add_test(tc, test_bad_specs);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_nobody_listening);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
