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
 *
 * Watching changes.  A "watch" request turns its connection into a
 * stream of the changes made through the mount, read from the journal:
 *
 *	{"cmd": "watch", "args": {"since": 120, "cursor": "backup",
 *				  "path": "/site", "follow": true}}
 *
 * All arguments are optional.  "since" is the first sequence number
 * wanted; without it, the stream starts after the cursor's acked record
 * when "cursor" names a known cursor, else with the next change to come.
 * "cursor" names a persistent cursor (1 to 64 of [A-Za-z0-9_.-]), made
 * if missing (acked at since - 1, or at the newest record): the journal
 * keeps every record the cursor has not acked.  "path" keeps only events
 * whose path or path2 is that path or below it.  "follow": false ends the
 * stream at the newest record as the request is answered (default true).
 *
 * The answer comes first:
 *
 *	{"ok": true, "data": {"from": 120, "oldest": 1, "newest": 130,
 *			      "cursor": "backup"}}
 *
 * then, in order, one line per event, each one of:
 *
 *	{"seq": 121, "time_ns": 1795000000123456789, "op": "rename",
 *	 "class": "entry", "path": "/site/a", "path2": "/site/b",
 *	 "dev": 2049, "ino": 1234, "gen": 0, "handle": "0100000002000000"}
 *	{"gap": {"from": 100, "to": 119}}
 *	{"end": 130}
 *
 * An event: "path2" only for rename, exchange and link (the new name);
 * "handle" (the backend's file handle, hex) only where the backend has
 * them.  "op" is a journal op name (create, mkdir, mknod, symlink, link,
 * unlink, rmdir, rename, exchange, write, truncate, fallocate,
 * copy_file_range, chmod, chown, utimens, setxattr, removexattr) and
 * "class" its class (entry, data, metadata).  A "gap" says the records
 * from .. to (inclusive) are no longer in the journal, or were damaged:
 * what changed then must be found another way (cachefsctl changes
 * --since).  "end" (only without follow) says every record up to that
 * number was sent; the daemon then closes the connection, or, on a stream
 * with a cursor, leaves it open for acks until the client closes it.
 *
 * On a watch connection the one request taken is "ack", for a stream
 * with a cursor: {"cmd": "ack", "args": {"seq": 125}} makes the cursor
 * durable at 125 (every record up to it is done with) before answering
 * {"ok": true, "data": {"acked": 125}}.  Answers are interleaved with
 * events: a line with "ok" is an answer, one with "seq", "gap" or "end"
 * is part of the stream.  A client that does not read is not sent more:
 * it falls behind in the journal, never makes the daemon buffer.
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
