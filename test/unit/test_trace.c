// SPDX-License-Identifier: MIT
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

static void record(pid_t pid, const char *path, enum fs_op op)
{
	struct trace_rec r = { .pid = pid, .op = op, .offset = -1 };

	r.path = path ? strdup(path) : NULL;
	clock_gettime(CLOCK_REALTIME, &r.time);
	trace_record(&r);
}

struct seen {
	unsigned n;
	uint64_t first, last;
	char paths[8][64];
};

static void collect(const struct trace_rec *r, void *arg)
{
	struct seen *s = arg;

	if (!s->n)
		s->first = r->seq;
	s->last = r->seq;
	if (s->n < 8)
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s",
			 r->path ? r->path : "-");
	s->n++;
}

START_TEST(test_prefix_filter)
{
	struct seen s = { 0 };
	uint64_t lost, since = trace_last_seq();

	ck_assert_int_eq(trace_on(0, "/www/"), 0); /* trailing / ignored */
	record(1, "/www", OP_getattr);
	record(1, "/www/a.php", OP_open);
	record(1, "/wwwx/b", OP_open);
	record(1, "/other", OP_open);
	record(1, "/www -> /old", OP_rename);
	trace_foreach(since, 100, &lost, collect, &s);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_str_eq(s.paths[0], "/www");
	ck_assert_str_eq(s.paths[1], "/www/a.php");
	ck_assert_str_eq(s.paths[2], "/www -> /old");
	ck_assert_uint_eq(lost, 0);
	trace_off();
	ck_assert(!trace_enabled());
}
END_TEST

START_TEST(test_pid_filter)
{
	struct seen s = { 0 };
	uint64_t lost, since = trace_last_seq();
	pid_t pid;
	char *prefix;

	ck_assert_int_eq(trace_on(42, NULL), 0);
	ck_assert(trace_wants_pid(42));
	ck_assert(!trace_wants_pid(43));
	ck_assert(trace_get_filter(&pid, &prefix));
	ck_assert_int_eq(pid, 42);
	ck_assert_ptr_null(prefix);
	record(42, "/a", OP_read);
	record(43, "/b", OP_read);
	trace_foreach(since, 100, &lost, collect, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.paths[0], "/a");
	trace_off();
}
END_TEST

/* The ring keeps the newest TRACE_RING records and says how many it lost. */
START_TEST(test_ring_wraps)
{
	struct seen s = { 0 };
	uint64_t lost, next, since = trace_last_seq();

	trace_on(0, NULL);
	for (int k = 0; k < TRACE_RING + 10; k++)
		record(7, "/x", OP_lookup);
	next = trace_foreach(since, TRACE_RING + 100, &lost, collect, &s);
	ck_assert_uint_eq(lost, 10);
	ck_assert_uint_eq(s.n, TRACE_RING);
	ck_assert_uint_eq(s.first, since + 11);
	ck_assert_uint_eq(next, since + TRACE_RING + 10);
	ck_assert_uint_eq(next, trace_last_seq());
	/* paging with max */
	memset(&s, 0, sizeof(s));
	next = trace_foreach(next - 5, 3, &lost, collect, &s);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(next, trace_last_seq() - 2);
	trace_off();
}
END_TEST

START_TEST(test_file_and_reopen)
{
	char dir[] = "/tmp/cachefs-unit.XXXXXX", path[128], moved[128];
	char line[512];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/trace", dir);
	snprintf(moved, sizeof(moved), "%s/trace.1", dir);
	ck_assert_int_eq(trace_set_file(path), 0);
	trace_on(0, NULL);
	record(5, "/first", OP_read);
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(trace_reopen(), 0);
	record(5, "/second", OP_write);
	trace_off();
	ck_assert_int_eq(trace_set_file(NULL), 0);

	f = fopen(moved, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_ptr_nonnull(strstr(line, " 5 - read /first size=0 off=-1 res=0 "));
	ck_assert_ptr_null(fgets(line, sizeof(line), f));
	fclose(f);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_ptr_nonnull(strstr(line, " write /second "));
	fclose(f);
	unlink(path);
	unlink(moved);
	rmdir(dir);
	ck_assert_int_lt(trace_set_file("/nonexistent/dir/trace"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("trace");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_prefix_filter);
	tcase_add_test(tc, test_pid_filter);
	tcase_add_test(tc, test_ring_wraps);
	tcase_add_test(tc, test_file_and_reopen);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	trace_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
