// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

START_TEST(test_defaults_parse)
{
	struct config cfg;

	config_defaults(&cfg);
	ck_assert_double_eq(cfg.attr_timeout, 3600);
	ck_assert_double_eq(cfg.revalidate, 1.0);
	ck_assert(cfg.file_handles);
	ck_assert_uint_eq(cfg.threads, 32);
	ck_assert_int_eq(cfg.log_level, LOGL_NOTICE);
}
END_TEST

START_TEST(test_every_option_has_help_and_default)
{
	struct config cfg;
	char err[256], buf[64];

	for (const struct option_def *od = config_options; od->name; od++) {
		ck_assert_msg(od->help && *od->help, "%s: no help", od->name);
		ck_assert_ptr_eq(config_find(od->name), od);
		/* A formatted value parses back to itself. */
		config_defaults(&cfg);
		config_format(&cfg, od, buf, sizeof(buf));
		ck_assert_int_eq(config_set(&cfg, od, buf, err, sizeof(err)),
				 0);
	}
	ck_assert_ptr_null(config_find("no_such_option"));
}
END_TEST

static int set(struct config *cfg, const char *name, const char *value,
	       char *err)
{
	const struct option_def *od = config_find(name);

	ck_assert_ptr_nonnull(od);
	return config_set(cfg, od, value, err, 256);
}

START_TEST(test_durations)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(set(&cfg, "attr_timeout", "250ms", err), 0);
	ck_assert_double_eq_tol(cfg.attr_timeout, 0.25, 1e-9);
	ck_assert_int_eq(set(&cfg, "attr_timeout", "2h", err), 0);
	ck_assert_double_eq(cfg.attr_timeout, 7200);
	ck_assert_int_eq(set(&cfg, "attr_timeout", "1.5", err), 0);
	ck_assert_double_eq(cfg.attr_timeout, 1.5);
	ck_assert_int_eq(set(&cfg, "attr_timeout", "0", err), 0);
	ck_assert_double_eq(cfg.attr_timeout, 0);

	const char *bad[] = { "", "-1", "1x", "abc", "nan", "inf", "1s2" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		ck_assert_int_eq(set(&cfg, "attr_timeout", bad[k], err),
				 -EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "attr_timeout"));
	}
	ck_assert_int_eq(set(&cfg, "attr_timeout", NULL, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
}
END_TEST

START_TEST(test_sizes)
{
	const struct option_def *od = config_find("cache_size");
	struct config cfg;
	char err[256], buf[64];

	config_defaults(&cfg);
	ck_assert_uint_eq(cfg.cache_size, 256u << 20);
	ck_assert_uint_eq(cfg.max_cached_file, 1u << 20);
	ck_assert_int_eq(set(&cfg, "cache_size", "4096", err), 0);
	ck_assert_uint_eq(cfg.cache_size, 4096);
	ck_assert_int_eq(set(&cfg, "cache_size", "512k", err), 0);
	ck_assert_uint_eq(cfg.cache_size, 512u << 10);
	ck_assert_int_eq(set(&cfg, "cache_size", "2GiB", err), 0);
	ck_assert_uint_eq(cfg.cache_size, 2ull << 30);
	ck_assert_int_eq(set(&cfg, "cache_size", "1T", err), 0);
	ck_assert_uint_eq(cfg.cache_size, 1ull << 40);
	config_format(&cfg, od, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1T");
	ck_assert_int_eq(set(&cfg, "cache_size", "1025", err), 0);
	config_format(&cfg, od, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1025");

	const char *bad[] = { "", "-1", "1X", "1.5M", "M", "1MM", "1Mx",
			      "99999999999999999999", "17179869184T" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		err[0] = '\0';
		ck_assert_msg(set(&cfg, "cache_size", bad[k], err) == -EINVAL,
			      "%s accepted", bad[k]);
		ck_assert_ptr_nonnull(strstr(err, "is not a size"));
	}
}
END_TEST

START_TEST(test_bools_uints_enums)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(set(&cfg, "splice", "off", err), 0);
	ck_assert(!cfg.splice);
	ck_assert_int_eq(set(&cfg, "splice", NULL, err), 0);
	ck_assert(cfg.splice);
	ck_assert_int_eq(set(&cfg, "splice", "maybe", err), -EINVAL);

	ck_assert_int_eq(set(&cfg, "threads", "4", err), 0);
	ck_assert_uint_eq(cfg.threads, 4);
	ck_assert_int_eq(set(&cfg, "threads", "-4", err), -EINVAL);
	ck_assert_int_eq(set(&cfg, "threads", "4k", err), -EINVAL);
	ck_assert_int_eq(set(&cfg, "threads", "99999999999", err), -EINVAL);

	ck_assert_int_eq(set(&cfg, "log_level", "debug", err), 0);
	ck_assert_int_eq(cfg.log_level, LOGL_DEBUG);
	ck_assert_int_eq(set(&cfg, "log_level", "loud", err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "error, warning"));
}
END_TEST

struct seen {
	char names[8][64];
	char values[8][64];
	int n;
};

static int collect(const char *name, const char *value, void *arg)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 8);
	snprintf(s->names[s->n], 64, "%s", name);
	snprintf(s->values[s->n], 64, "%s", value ? value : "(null)");
	s->n++;
	return 0;
}

START_TEST(test_split_opts)
{
	struct seen s = { .n = 0 };

	ck_assert_int_eq(config_split_opts("a,b=1,,fsname=x\\,y,c=d=e,"
					   "k\\=v",
					   collect, &s),
			 0);
	ck_assert_int_eq(s.n, 5);
	ck_assert_str_eq(s.names[0], "a");
	ck_assert_str_eq(s.values[0], "(null)");
	ck_assert_str_eq(s.names[1], "b");
	ck_assert_str_eq(s.values[1], "1");
	ck_assert_str_eq(s.names[2], "fsname");
	ck_assert_str_eq(s.values[2], "x,y");
	ck_assert_str_eq(s.names[3], "c");
	ck_assert_str_eq(s.values[3], "d=e");
	ck_assert_str_eq(s.names[4], "k=v");
	ck_assert_str_eq(s.values[4], "(null)");
}
END_TEST

static int stop_at_b(const char *name, const char *value, void *arg)
{
	(void)value;
	++*(int *)arg;
	return strcmp(name, "b") == 0 ? -EINVAL : 0;
}

START_TEST(test_split_opts_stops)
{
	int calls = 0;

	ck_assert_int_eq(config_split_opts("a,b,c", stop_at_b, &calls),
			 -EINVAL);
	ck_assert_int_eq(calls, 2);
}
END_TEST

START_TEST(test_set_live)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set_live(&cfg, config_find("attr_timeout"),
					 "5m", err, sizeof(err)),
			 0);
	ck_assert_double_eq(cfg.attr_timeout, 300);
	ck_assert_int_eq(config_set_live(&cfg, config_find("threads"), "4",
					 err, sizeof(err)),
			 -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "cannot be changed while mounted"));
	ck_assert_uint_eq(cfg.threads, 32);
	ck_assert_int_eq(config_set_live(&cfg, config_find("attr_timeout"),
					 "soon", err, sizeof(err)),
			 -EINVAL);
	ck_assert_double_eq(cfg.attr_timeout, 300);
	ck_assert_int_eq(config_set_live(&cfg, config_find("trace_file"),
					 "/tmp/t", err, sizeof(err)),
			 0);
	ck_assert_str_eq(cfg.trace_file, "/tmp/t");
	ck_assert_int_eq(config_set_live(&cfg, config_find("trace_file"), "",
					 err, sizeof(err)),
			 0);
	ck_assert_ptr_null(cfg.trace_file);
	ck_assert_int_eq(config_set_live(&cfg, config_find("cache"), "off",
					 err, sizeof(err)),
			 0);
	ck_assert(!cfg.cache);
	config_free(&cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_defaults_parse);
	tcase_add_test(tc, test_set_live);
	tcase_add_test(tc, test_every_option_has_help_and_default);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_bools_uints_enums);
	tcase_add_test(tc, test_split_opts);
	tcase_add_test(tc, test_split_opts_stops);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
