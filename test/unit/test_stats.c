// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

START_TEST(test_names_complete)
{
	for (int k = 0; k < OP__COUNT; k++)
		ck_assert_msg(fs_op_names[k] && *fs_op_names[k], "op %d", k);
	for (int k = 0; k < STAT__COUNT; k++) {
		ck_assert(stats_counters[k].name && stats_counters[k].help);
		ck_assert_uint_lt(stats_counters[k].offset,
				  sizeof(struct stats));
	}
	ck_assert_str_eq(fs_op_names[OP_copy_file_range], "copy_file_range");
}
END_TEST

START_TEST(test_latency_buckets)
{
	struct stats s;

	stats_reset();
	stats_op(OP_getattr, 0, 0, 0);		    /* < 1 us */
	stats_op(OP_getattr, 0, 0, 999);	    /* < 1 us */
	stats_op(OP_getattr, 0, 0, 1000);	    /* 1 us: < 2 us */
	stats_op(OP_getattr, 0, 0, 3999);	    /* 3 us: < 4 us */
	stats_op(OP_getattr, 0, 0, 4000);	    /* 4 us: < 8 us */
	stats_op(OP_getattr, 0, 0, 100000000000ull); /* 100 s: the last */
	stats_sum(&s, true);
	ck_assert_uint_eq(s.op[OP_getattr].count, 6);
	ck_assert_uint_eq(s.op[OP_getattr].lat[0], 2);
	ck_assert_uint_eq(s.op[OP_getattr].lat[1], 1);
	ck_assert_uint_eq(s.op[OP_getattr].lat[2], 1);
	ck_assert_uint_eq(s.op[OP_getattr].lat[3], 1);
	ck_assert_uint_eq(s.op[OP_getattr].lat[STATS_LAT_BUCKETS - 1], 1);
	ck_assert_uint_eq(stats_lat_bound_us(0), 1);
	ck_assert_uint_eq(stats_lat_bound_us(3), 8);
	ck_assert_uint_eq(stats_lat_bound_us(STATS_LAT_BUCKETS - 1), 0);
}
END_TEST

START_TEST(test_errors_and_bytes)
{
	struct stats s;

	stats_reset();
	stats_op(OP_lookup, ENOENT, 0, 10);
	stats_op(OP_lookup, ENOENT, 0, 10);
	stats_op(OP_write, 0, 4096, 10);
	stats_op(OP_write, EIO, 0, 10);
	stats_op(OP_read, 100000, 0, 10); /* out of range: counted as 0 */
	stats_inc(ctl_requests);
	stats_add(STAT_ctl_requests, 2);
	stats_sum(&s, true);
	ck_assert_uint_eq(s.op[OP_lookup].errors, 2);
	ck_assert_uint_eq(s.err[ENOENT], 2);
	ck_assert_uint_eq(s.err[EIO], 1);
	ck_assert_uint_eq(s.err[0], 1);
	ck_assert_uint_eq(s.op[OP_write].bytes, 4096);
	ck_assert_uint_eq(s.op[OP_write].errors, 1);
	ck_assert_uint_eq(s.ctl_requests, 3);
}
END_TEST

#define NTHREADS 8
#define PER_THREAD 10000

static void *count_ops(void *arg)
{
	(void)arg;
	for (int k = 0; k < PER_THREAD; k++)
		stats_op(OP_access, 0, 1, 1);
	return NULL;
}

/* Threads that exit keep their counts; the sum sees every one. */
START_TEST(test_threads_summed)
{
	pthread_t t[NTHREADS];
	struct stats before, after, total;

	stats_sum(&before, false);
	for (int k = 0; k < NTHREADS; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, count_ops, NULL),
				 0);
	for (int k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	stats_sum(&after, false);
	ck_assert_uint_eq(after.op[OP_access].count -
				  before.op[OP_access].count,
			  NTHREADS * PER_THREAD);
	ck_assert_uint_eq(after.op[OP_access].bytes -
				  before.op[OP_access].bytes,
			  NTHREADS * PER_THREAD);
	/* reset changes the view since reset, not the totals */
	stats_reset();
	stats_sum(&total, false);
	ck_assert_uint_eq(total.op[OP_access].count,
			  after.op[OP_access].count);
	stats_sum(&total, true);
	ck_assert_uint_eq(total.op[OP_access].count, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_names_complete);
	tcase_add_test(tc, test_latency_buckets);
	tcase_add_test(tc, test_errors_and_bytes);
	tcase_add_test(tc, test_threads_summed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
