// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

static int parse(const char *s, struct ctl_request *req, char *err)
{
	return ctl_request_parse(s, strlen(s), req, err, 256);
}

START_TEST(test_requests)
{
	struct ctl_request req;
	char err[256];

	ck_assert_int_eq(parse("{\"cmd\":\"status\"}", &req, err), 0);
	ck_assert_str_eq(req.cmd, "status");
	ck_assert(json_is_object(req.args));
	ck_assert_uint_eq(json_object_size(req.args), 0);
	ctl_request_clear(&req);

	ck_assert_int_eq(parse(" {\"args\":{\"reset\":true},\"cmd\":\"stats\"}\r",
			       &req, err), 0);
	ck_assert(json_is_true(json_object_get(req.args, "reset")));
	ctl_request_clear(&req);

	ck_assert_int_eq(parse("status", &req, err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "malformed request"));
	ck_assert_int_eq(parse("{\"cmd\":\"Status\"}", &req, err), -EINVAL);
	ck_assert_int_eq(parse("{\"cmd\":\"\"}", &req, err), -EINVAL);
	ck_assert_int_eq(parse("{\"cmd\":\"a\",\"args\":1}", &req, err),
			 -EINVAL);
	ck_assert_int_eq(parse("{\"cmd\":\"a\",\"x\":1}", &req, err), -EINVAL);
	ck_assert_int_eq(parse("{\"cmd\":\"a\",\"cmd\":\"b\"}", &req, err),
			 -EINVAL);
	ck_assert_int_eq(parse("[\"cmd\"]", &req, err), -EINVAL);
	ck_assert_int_eq(parse("{\"cmd\":\"0123456789012345678901234567890123\"}",
			       &req, err), -EINVAL);
}
END_TEST

START_TEST(test_too_long)
{
	size_t n = CTL_LINE_MAX + 1;
	char *big = malloc(n), err[256];
	struct ctl_request req;

	memset(big, ' ', n);
	ck_assert_int_eq(ctl_request_parse(big, n, &req, err, sizeof(err)),
			 -E2BIG);
	free(big);
}
END_TEST

START_TEST(test_round_trip)
{
	char *line = ctl_request_encode("trace.on",
					json_pack("{s:i, s:s}", "pid", 7,
						  "path", "/a b"));
	struct ctl_request req;
	json_t *data;
	char err[256];

	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(line[strlen(line) - 1], '\n');
	ck_assert_int_eq(ctl_request_parse(line, strlen(line) - 1, &req, err,
					   sizeof(err)),
			 0);
	ck_assert_str_eq(req.cmd, "trace.on");
	ck_assert_int_eq(json_integer_value(json_object_get(req.args, "pid")),
			 7);
	ctl_request_clear(&req);
	free(line);

	line = ctl_response_ok(json_pack("{s:f}", "x", 1.5));
	ck_assert_int_eq(ctl_response_parse(line, strlen(line), &data, err,
					    sizeof(err)),
			 0);
	ck_assert(json_number_value(json_object_get(data, "x")) == 1.5);
	json_decref(data);
	free(line);

	line = ctl_response_error("no option 'x'");
	ck_assert_int_eq(ctl_response_parse(line, strlen(line), &data, err,
					    sizeof(err)),
			 1);
	ck_assert_str_eq(err, "no option 'x'");
	free(line);
	ck_assert_int_eq(ctl_response_parse("{}", 2, &data, err, sizeof(err)),
			 -EPROTO);
}
END_TEST

/* The socket names match systemd-escape --path. */
START_TEST(test_socket_path)
{
	static const struct {
		const char *mnt, *sock;
	} cases[] = {
		{ "/", "/run/cachefs/-.sock" },
		{ "/var/www", "/run/cachefs/var-www.sock" },
		{ "/var//www/", "/run/cachefs/var-www.sock" },
		{ "/srv/my-site", "/run/cachefs/srv-my\\x2dsite.sock" },
		{ "/srv/a b", "/run/cachefs/srv-a\\x20b.sock" },
		{ "/srv/.hidden", "/run/cachefs/srv-.hidden.sock" },
		{ "/.x", "/run/cachefs/\\x2ex.sock" },
	};
	char buf[256], longmnt[300];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		ck_assert_int_eq(ctl_socket_path(cases[k].mnt, buf,
						 sizeof(buf)),
				 0);
		ck_assert_str_eq(buf, cases[k].sock);
	}
	/* too long for a socket address: a hashed name, still unique */
	memset(longmnt, 'a', sizeof(longmnt));
	longmnt[0] = '/';
	longmnt[sizeof(longmnt) - 1] = '\0';
	ck_assert_int_eq(ctl_socket_path(longmnt, buf, sizeof(buf)), 0);
	ck_assert_ptr_nonnull(strstr(buf, "/run/cachefs/mnt-"));
	ck_assert_uint_lt(strlen(buf), 108);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl_proto");
	TCase *tc = tcase_create("ctl_proto");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_socket_path);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
