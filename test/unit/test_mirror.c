// SPDX-License-Identifier: MIT
/* The path rules the mirror engine orders its steps by. */
#include <check.h>
#include <stdlib.h>

#include "mirror_path.h"

START_TEST(test_ok)
{
	static const char *const good[] = { "/", "/a", "/a/b", "/.a",
					    "/a..", "/a/...", "/ a/b c" };
	static const char *const bad[] = { "", "a", "//", "/a/", "/a//b",
					   "/.", "/..", "/a/./b", "/a/../b",
					   "/a/..", "a/b" };

	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++)
		ck_assert_msg(mirror_path_ok(good[k]), "%s", good[k]);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		ck_assert_msg(!mirror_path_ok(bad[k]), "%s", bad[k]);
}
END_TEST

START_TEST(test_related)
{
	static const struct {
		const char *a, *b;
		bool related;
	} cases[] = {
		{ "/a", "/a", true },	     { "/a", "/a/b", true },
		{ "/a/b/c", "/a", true },    { "/", "/x/y", true },
		{ "/a", "/ab", false },	     { "/ab", "/a", false },
		{ "/a/b", "/a/c", false },   { "/a/b", "/ab/b", false },
		{ "/dir", "/dir2/x", false }, { "/x/y", "/", true },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		ck_assert_msg(mirror_path_related(cases[k].a, cases[k].b) ==
				      cases[k].related,
			      "%s %s", cases[k].a, cases[k].b);
		/* symmetric */
		ck_assert(mirror_path_related(cases[k].b, cases[k].a) ==
			  cases[k].related);
	}
}
END_TEST

START_TEST(test_parent_child)
{
	char buf[64];

	mirror_path_parent("/a", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/");
	mirror_path_parent("/a/b/c", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/a/b");
	mirror_path_parent("/", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/");
	mirror_path_child("/", "x", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/x");
	mirror_path_child("/a/b", "x y", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/a/b/x y");
	/* cut to the buffer, never past it */
	mirror_path_child("/a", "0123456789", buf, 8);
	ck_assert_str_eq(buf, "/a/0123");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mirror");
	TCase *tc = tcase_create("paths");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_ok);
	tcase_add_test(tc, test_related);
	tcase_add_test(tc, test_parent_child);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
