/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_EVENTS_H
#define CACHEFS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * libcachefs: subscribe to the changes made through a cachefs mount.
 *
 * A subscription is one connection to the mount's control socket that
 * asked the daemon to "watch": it then gets every change recorded in the
 * mount's journal, in order, from a sequence number on.  With a cursor
 * (a name the daemon keeps on disk), the journal keeps what the cursor
 * has not acknowledged, and a later subscription with the same cursor
 * resumes after the last record acknowledged.  See libcachefs(3).
 *
 * Errors are negative errno values; a message for the last one is kept
 * (cachefs_events_error(), or the err buffer of cachefs_events_open()).
 *
 * A subscription is not thread-safe: use it from one thread at a time.
 * Distinct subscriptions are independent; the library has no global
 * state, installs no signal handlers and never raises SIGPIPE.
 */

/* The longest line accepted from the daemon, without its newline. */
#define CACHEFS_EVENTS_LINE_MAX (1024 * 1024)
/* The longest backend file handle, in bytes. */
#define CACHEFS_EVENTS_HANDLE_MAX 128
/* The longest cursor name; a name is 1 to 64 of [A-Za-z0-9_.-]. */
#define CACHEFS_EVENTS_CURSOR_MAX 64

struct cachefs_events;

/* What to subscribe to.  All zero (or a NULL pointer) is the defaults. */
struct cachefs_events_opts {
	/*
	 * The first sequence number wanted.  0: after the cursor's last
	 * acknowledged record when the cursor exists, else with the next
	 * change to come.
	 */
	uint64_t since;
	/*
	 * A persistent cursor, made if missing (acknowledged up to since - 1,
	 * or up to the newest record), or NULL for none.  Needed by
	 * cachefs_events_ack().
	 */
	const char *cursor;
	/*
	 * Only changes to this path or below it, relative to the mount and
	 * starting with "/" (a rename matches by either name), or NULL for
	 * every change.
	 */
	const char *path;
	/*
	 * End at the newest record as the daemon answers (a
	 * CACHEFS_EVENT_END event), instead of waiting for more changes.
	 */
	bool no_follow;
	/*
	 * How long cachefs_events_open() and cachefs_events_ack() wait for
	 * the daemon's answer, in milliseconds: 0 for 10 seconds, -1 for
	 * ever.
	 */
	int timeout_ms;
};

enum cachefs_event_type {
	CACHEFS_EVENT_CHANGE = 1, /* one change: seq, op, path... */
	CACHEFS_EVENT_GAP = 2,	  /* records lost: gap_from .. gap_to */
	CACHEFS_EVENT_END = 3,	  /* no_follow: every record up to seq sent */
};

enum cachefs_event_class {
	CACHEFS_CLASS_OTHER = 0,    /* a class this library does not know */
	CACHEFS_CLASS_ENTRY = 1,    /* names in a directory changed */
	CACHEFS_CLASS_DATA = 2,	    /* a file's content changed */
	CACHEFS_CLASS_METADATA = 3, /* a file's attributes changed */
};

/*
 * One event.  Its pointers are valid until the next cachefs_events_read()
 * (or cachefs_events_run() callback return) or cachefs_events_close() on
 * the subscription; cachefs_events_ack() leaves them alone.
 */
struct cachefs_event {
	enum cachefs_event_type type;
	/*
	 * CHANGE: the record's sequence number (1, 2, ...).  GAP: gap_to.
	 * END: the newest record at the time of the request (0 when the
	 * journal was empty); every record up to it was sent.  In each
	 * case, what cachefs_events_ack() takes once the event is handled.
	 */
	uint64_t seq;
	/* CHANGE: when the change was made, in ns since the epoch (UTC). */
	int64_t time_ns;
	/*
	 * CHANGE: the operation: create, mkdir, mknod, symlink, link,
	 * unlink, rmdir, rename, exchange, write, truncate, fallocate,
	 * copy_file_range, chmod, chown, utimens, setxattr, removexattr, or
	 * one a newer daemon adds.  NULL for GAP and END.
	 */
	const char *op;
	enum cachefs_event_class cls;
	/* CHANGE: the path changed, relative to the mount, with a "/" first. */
	const char *path;
	/* The new name of rename, exchange and link; NULL for the others. */
	const char *path2;
	/* CHANGE: the backend file's device, inode number and generation. */
	uint64_t dev, ino, gen;
	/* CHANGE: the backend's file handle, or NULL and 0 without one. */
	const unsigned char *handle;
	size_t handle_len;
	/* GAP: the records gap_from .. gap_to (inclusive) are lost. */
	uint64_t gap_from, gap_to;
	/*
	 * The event as the daemon sent it: one JSON object, without the
	 * newline, NUL-terminated; it may hold members this library does not
	 * know yet.
	 */
	const char *raw;
	size_t raw_len;
};

/*
 * Subscribe.  where is the mount point of a cachefs (its control socket
 * is found as cachefsctl(8) finds it) or the path of a control socket.
 * Sends the watch request and waits for the daemon's answer.  Returns 0
 * with *out, or a negative errno with a message in err (when err is not
 * NULL and errlen > 0):
 *
 *	-EINVAL		bad options, or the daemon refused the request (err
 *			says why)
 *	-ENOENT, -ECONNREFUSED
 *			no daemon listens there
 *	-EACCES		the socket may not be used
 *	-ENOTSOCK	where is neither a directory nor a socket
 *	-ENAMETOOLONG	the socket path does not fit a socket address
 *	-ETIMEDOUT	no answer within opts->timeout_ms
 *	-EPROTO		the answer is malformed
 *	-EPIPE, -ECONNRESET
 *			the daemon closed the connection
 *	-ENOMEM
 */
int cachefs_events_open(const char *where,
			const struct cachefs_events_opts *opts,
			struct cachefs_events **out, char *err, size_t errlen);

/* From the daemon's answer: the first sequence number of the stream. */
uint64_t cachefs_events_first(const struct cachefs_events *e);
/* The oldest record the journal held (0 when it held none). */
uint64_t cachefs_events_oldest(const struct cachefs_events *e);
/* The newest record (0 when there was none yet). */
uint64_t cachefs_events_newest(const struct cachefs_events *e);
/* The cursor's name, or NULL without one. */
const char *cachefs_events_cursor(const struct cachefs_events *e);

/*
 * Read the next event, waiting at most timeout_ms milliseconds (0: do not
 * wait; -1: wait for ever).  Returns 1 with *ev, 0 when none came in
 * time, or a negative errno:
 *
 *	-EINTR		a signal interrupted the wait; nothing was lost,
 *			call again
 *	-EPIPE, -ECONNRESET
 *			the daemon closed the connection (it stopped, or
 *			dropped this client); also every read after an END
 *			event
 *	-EPROTO		the daemon sent something malformed: a line longer
 *			than CACHEFS_EVENTS_LINE_MAX, bad JSON, a missing
 *			member or one of the wrong type or range, a handle
 *			that is not hex or longer than
 *			CACHEFS_EVENTS_HANDLE_MAX bytes, an answer nobody
 *			asked for
 *	-ENOMEM
 *
 * Errors other than -EINTR and -ENOMEM are final: events already queued
 * (by cachefs_events_ack()) are still handed out first, then every later
 * call returns the same error.  Close the subscription and, to go on,
 * open a new one (with a cursor, it resumes after the last record
 * acknowledged).
 */
int cachefs_events_read(struct cachefs_events *e, struct cachefs_event *ev,
			int timeout_ms);

/*
 * Read events and call cb for each, waiting as long as it takes, until cb
 * returns non-zero (then that value is returned: make it positive to
 * tell it from the library's errors), after an END event (0), or on an
 * error from cachefs_events_read(), -EINTR included.  cb may call
 * cachefs_events_ack().
 */
int cachefs_events_run(struct cachefs_events *e,
		       int (*cb)(const struct cachefs_event *ev, void *arg),
		       void *arg);

/*
 * Acknowledge every record up to seq for the cursor: the daemon makes it
 * durable before it answers, and the journal may then drop those records.
 * Waits for the answer (opts->timeout_ms; signals do not interrupt it);
 * events that arrive meanwhile are kept, in order, for later reads.
 * Returns 0, or a negative errno: -EINVAL without a cursor, for seq over
 * INT64_MAX, or when the daemon refuses, as for a record this stream has
 * not sent yet (cachefs_events_error() says why; the subscription goes
 * on), -ETIMEDOUT, -ENOBUFS (more than 64 MiB of events came before the
 * answer), or a final error as for cachefs_events_read().  The daemon
 * closes a no_follow stream after its END event: an ack after it fails
 * (-EPIPE, -ECONNRESET); ack on a new subscription with the cursor and
 * since = seq + 1 instead.
 */
int cachefs_events_ack(struct cachefs_events *e, uint64_t seq);

/*
 * The connection, for poll(2) (POLLIN) or an event loop: read and write
 * it only through this library.  It being readable does not mean a whole
 * event is there (cachefs_events_read() with timeout 0 then returns 0),
 * and events may be buffered while it is not readable: after
 * cachefs_events_ack() or a read that received more than one event.  So
 * read while cachefs_events_pending() before waiting on it.
 */
int cachefs_events_fd(const struct cachefs_events *e);

/* Whether cachefs_events_read() would return at once (event or error). */
bool cachefs_events_pending(const struct cachefs_events *e);

/* The message of the last error on e ("" before any). */
const char *cachefs_events_error(const struct cachefs_events *e);

/* Close the connection and free e (NULL is fine). */
void cachefs_events_close(struct cachefs_events *e);

#ifdef __cplusplus
}
#endif

#endif
