/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CTL_PROTO_H
#define CACHEFS_CTL_PROTO_H

#include <jansson.h>
#include <stddef.h>

/*
 * The control protocol, shared by the daemon and cachefsctl.
 *
 * A client connects to the mount's Unix socket and sends requests, one
 * JSON object per line:
 *
 *	{"cmd": "stats", "args": {"reset": true}}
 *
 * "args" is optional; no other member is allowed.  The daemon answers each
 * request, in order, with one line:
 *
 *	{"ok": true, "data": ...}
 *	{"ok": false, "error": "one-line message"}
 *
 * A request is at most CTL_LINE_MAX bytes without its '\n'; a longer one
 * is refused and the connection closed.  Answers may be longer.  A client
 * may send several requests before reading, and may shut down its sending
 * side: it still gets every answer.  Nothing here logs; errors are
 * returned with a one-line reason.
 */

#define CTL_LINE_MAX 65536
#define CTL_CMD_MAX 32
#define CTL_SOCKET_DIR "/run/cachefs"

struct ctl_request {
	json_t *root;	 /* owns cmd and args */
	const char *cmd; /* [a-z0-9.-]+, at most CTL_CMD_MAX bytes */
	json_t *args;	 /* an object, empty when the request had none */
};

/*
 * Parse one request line (without its '\n').  Returns 0, or -EINVAL /
 * -E2BIG with a reason in err; req needs ctl_request_clear() only after
 * success.
 */
int ctl_request_parse(const char *buf, size_t len, struct ctl_request *req,
		      char *err, size_t errlen);
void ctl_request_clear(struct ctl_request *req);

/*
 * Encode a response line, '\n'-terminated, into a malloc'd string (NULL
 * when out of memory).  ctl_response_ok steals the reference to data
 * (which may be NULL for no data).
 */
char *ctl_response_ok(json_t *data);
char *ctl_response_error(const char *msg);

/* Encode a request line, '\n'-terminated; steals args (may be NULL). */
char *ctl_request_encode(const char *cmd, json_t *args);

/*
 * Parse one response line.  Returns 0 with *data set (a new reference,
 * JSON null when the daemon sent none), 1 when the daemon reported a
 * failure (its message in err), or -EPROTO for a malformed response.
 */
int ctl_response_parse(const char *buf, size_t len, json_t **data, char *err,
		       size_t errlen);

/*
 * The default control socket of the cachefs mounted at mountpoint (an
 * absolute, canonical path): CTL_SOCKET_DIR/<escaped mountpoint>.sock,
 * escaped like systemd-escape --path, or a hashed name when that would
 * not fit in a socket address.  Returns 0 or -ENAMETOOLONG.
 */
int ctl_socket_path(const char *mountpoint, char *buf, size_t len);

#endif
