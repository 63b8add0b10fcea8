/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_NOTIFY_H
#define CACHEFS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Change notifications (-o notify=HOST:PORT): one UDP datagram per
 * operation that changed data or metadata, in the format libiorouter
 * sends to 127.0.0.1:12345, so that its listeners (cache invalidators,
 * replication journals) can take cachefs as a source too.
 *
 * A datagram is one line:
 *
 *	<sec>.<usec> HIT <op> <path>[ <path2>]\n
 *
 * sec.usec is the CLOCK_REALTIME of the send, usec with 6 digits.  HIT
 * is libiorouter's "done, and it changed something" (cachefs only
 * notifies after a success).  op is the operation's name (see notify.c
 * for the ones cachefs uses).  path is the changed path, relative to the
 * mount with a leading '/', or under the prefix of notify_set_prefix();
 * path2 is the second path of rename and link (source first, as
 * libiorouter has it).  In op and paths, '%', space, control characters
 * (newline among them) and DEL are written %XX (two upper-case hex
 * digits); every other byte, UTF-8 included, as it is.
 *
 * Delivery is best-effort: a datagram that cannot be sent is counted and
 * dropped, and the caller never waits or fails for it.
 */

/* The longest datagram sent, the largest UDP payload over IPv4. */
#define NOTIFY_DGRAM_MAX 65507

struct notify;

struct notify_stats {
	uint64_t sent;	   /* datagrams handed to the kernel */
	uint64_t errors;   /* sends that failed (EAGAIN, ECONNREFUSED, ...) */
	uint64_t too_long; /* operations not sent: over NOTIFY_DGRAM_MAX */
	int last_errno;	   /* of the latest failed send; 0: none yet */
};

/*
 * Resolve spec, "HOST:PORT" or "[IPV6]:PORT" (HOST a name or a numeric
 * address), and connect a non-blocking UDP socket to it.  Returns 0, or a
 * negative errno with a message in err (if errlen) naming what is wrong.
 */
int notify_new(const char *spec, struct notify **out, char *err,
	       size_t errlen);

/*
 * Put prefix (say the mountpoint, for listeners that want absolute paths
 * as libiorouter sends them) before every path; NULL or "" for none.
 * Before the first notify_send() only: it is not synchronized with it.
 */
int notify_set_prefix(struct notify *n, const char *prefix);

/*
 * path (path2 too if not NULL) changed by op: send its datagram.  Never
 * blocks, never fails; any thread.  n may be NULL (notifications off).
 */
void notify_send(struct notify *n, const char *op, const char *path,
		 const char *path2);

/* The counters so far (all zero for n NULL). */
void notify_get_stats(struct notify *n, struct notify_stats *st);

/* After the last notify_send(). */
void notify_free(struct notify *n);

#endif
