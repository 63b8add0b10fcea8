// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the control protocol (src/shared/ctl_proto.c).
 *
 * Every input is fed, as one line, to ctl_request_parse() and
 * ctl_response_parse(); the sanitizers catch memory errors, leaks and
 * undefined behaviour.  Three properties are checked, abort()ing if broken:
 *
 *  - a request that parses survives ctl_request_encode() and a second
 *    ctl_request_parse() with the same cmd and a json_equal() args object
 *    (or, when the encoded line exceeds CTL_LINE_MAX, is refused -E2BIG);
 *  - ctl_socket_path() of "/" + the input (up to its first NUL) is
 *    "/run/cachefs/<name>.sock" and fits in sockaddr_un's sun_path;
 *  - ctl_response_parse() returns a reference exactly when it returns 0.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "ctl_proto.h"

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void check_roundtrip(const struct ctl_request *req)
{
	struct ctl_request again;
	char err[256], *line;
	size_t len;
	int r;

	line = ctl_request_encode(req->cmd, json_incref(req->args));
	if (!line)
		abort();
	len = strlen(line);
	if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
		abort();
	r = ctl_request_parse(line, len - 1, &again, err, sizeof(err));
	if (len - 1 > CTL_LINE_MAX) {
		if (r != -E2BIG)
			abort();
	} else {
		if (r != 0 || strcmp(again.cmd, req->cmd) != 0 ||
		    !json_equal(again.args, req->args))
			abort();
		ctl_request_clear(&again);
	}
	free(line);
}

static void check_socket_path(const uint8_t *data, size_t size)
{
	const size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path);
	char *mnt, buf[256];

	mnt = malloc(size + 2);
	if (!mnt)
		abort();
	mnt[0] = '/';
	memcpy(mnt + 1, data, size);
	mnt[size + 1] = '\0';
	if (ctl_socket_path(mnt, buf, sizeof(buf)) == 0 &&
	    (strncmp(buf, CTL_SOCKET_DIR "/", strlen(CTL_SOCKET_DIR "/")) ||
	     !has_suffix(buf, ".sock") || strlen(buf) >= sun_max))
		abort();
	free(mnt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct ctl_request req;
	json_t *resp;
	char err[256];

	if (ctl_request_parse(buf, size, &req, err, sizeof(err)) == 0) {
		check_roundtrip(&req);
		ctl_request_clear(&req);
	}
	/* *resp is a new reference exactly when the response parses. */
	if ((ctl_response_parse(buf, size, &resp, err, sizeof(err)) == 0) !=
	    (resp != NULL))
		abort();
	json_decref(resp);
	check_socket_path(data, size);
	return 0;
}
