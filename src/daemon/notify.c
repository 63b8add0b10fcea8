// SPDX-License-Identifier: MIT
/*
 * Change notifications in libiorouter's format (see notify.h).
 *
 * libiorouter (https://github.com/v92/libiorouter) is an LD_PRELOAD
 * library for PHP hosting on NFS.  Its LOGSEND macro (libiorouter.h at
 * commit 2db3366, March 2015, the last with the UDP sender) formats
 *
 *	"%ld.%ld " fmt "\n", tv_sec, tv_usec, ...
 *
 * with fmt "HIT unlink %s", "HIT rename %s %s" and so on (iohooks.c), and
 * sends it with sendto() to 127.0.0.1:12345 (socket_init() in
 * libiorouter.c).  Its listener, python/deloader.py, splits a datagram at
 * its first three spaces into timestamp, state (CALL, HIT, MISS, FAIL),
 * operation and path.  cachefs writes the same fields, with two changes
 * such a listener does not notice: the microseconds have their 6 digits
 * (libiorouter writes 5 us as ".5"), and bytes that would break the line
 * or its fields are %-escaped (libiorouter writes them raw).
 *
 * The operation names cachefs sends are its FUSE operations' (stats.h):
 * write, create, mknod, mkdir, symlink (path: the new link), link and
 * rename (source, then destination), unlink, rmdir, setxattr,
 * removexattr, fallocate, copy_file_range (path: the destination); a
 * setattr is named after what it changed: chmod, chown, truncate,
 * utimens.  Where libiorouter has the operation, the name is the same.
 *
 * One connected socket serves every thread: a datagram goes out whole in
 * one send(), so concurrent sends do not mix.  With the listener down,
 * the kernel reports the ICMP port unreachable of one datagram as
 * ECONNREFUSED on a later send, which is then counted as an error.
 */
#include "notify.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STATE "HIT"
#define STACK_BUF 4096 /* larger datagrams are built on the heap */

struct notify {
	int fd;
	char *prefix; /* escaped; "" for none */
	size_t prefix_len;

	uint64_t sent, errors, too_long; /* __atomic, relaxed */
	int last_errno;
};

/* Whether byte c is written %XX. */
static bool needs_escape(unsigned char c)
{
	return c <= ' ' || c == 0x7f || c == '%';
}

static size_t escaped_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += needs_escape((unsigned char)*s) ? 3 : 1;
	return n;
}

/* Write s escaped at p (escaped_len(s) bytes, no NUL); returns the end. */
static char *escape(char *p, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (needs_escape(c)) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	return p;
}

static void set_err(char *err, size_t errlen, const char *spec,
		    const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "notify=%s: %s", spec, what);
}

/*
 * Split spec into host and port, checking both.  Returns NULL or what is
 * wrong; *numeric is set for a bracketed host.
 */
static const char *split_spec(const char *spec, char *host, size_t hostlen,
			      char *port, size_t portlen, bool *numeric)
{
	const char *colon, *h = spec;
	size_t n;
	unsigned long v;
	char *end;

	*numeric = false;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close)
			return "missing ']' after the IPv6 address";
		if (close[1] != ':')
			return "missing port: expected [IPV6]:PORT";
		h = spec + 1;
		n = (size_t)(close - h);
		colon = close + 1;
		*numeric = true;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return "missing port: expected HOST:PORT or "
			       "[IPV6]:PORT";
		n = (size_t)(colon - spec);
		if (memchr(spec, ':', n))
			return "an IPv6 address needs brackets: [IPV6]:PORT";
	}
	if (n == 0)
		return "missing host: expected HOST:PORT or [IPV6]:PORT";
	if (n >= hostlen)
		return "host name too long";
	memcpy(host, h, n);
	host[n] = '\0';

	if (!colon[1])
		return "missing port: expected HOST:PORT or [IPV6]:PORT";
	if (strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return "the port is not a number";
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || v < 1 || v > 65535)
		return "the port is out of range (1-65535)";
	snprintf(port, portlen, "%lu", v);
	return NULL;
}

int notify_new(const char *spec, struct notify **out, char *err,
	       size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
				  .ai_flags = AI_NUMERICSERV },
			*res, *ai;
	char host[NI_MAXHOST], port[8], msg[512];
	const char *bad;
	struct notify *n;
	bool numeric;
	int r, fd = -1;

	*out = NULL;
	if (!spec || !*spec) {
		set_err(err, errlen, "", "empty: expected HOST:PORT or "
					 "[IPV6]:PORT");
		return -EINVAL;
	}
	bad = split_spec(spec, host, sizeof(host), port, sizeof(port),
			 &numeric);
	if (bad) {
		set_err(err, errlen, spec, bad);
		return -EINVAL;
	}
	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST;
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		int e = r == EAI_SYSTEM ? errno : 0;

		/* the reason fits; a long host name is cut short */
		snprintf(msg, sizeof(msg), "cannot resolve '%.255s': %s", host,
			 e ? strerror(e) : gai_strerror(r));
		set_err(err, errlen, spec, msg);
		if (r == EAI_MEMORY)
			return -ENOMEM;
		return e ? -e : -EINVAL;
	}
	r = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		r = -errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "cannot connect a UDP socket: %s",
			 strerror(-r));
		set_err(err, errlen, spec, msg);
		return r;
	}

	n = calloc(1, sizeof(*n));
	if (!n || !(n->prefix = strdup(""))) {
		free(n);
		close(fd);
		set_err(err, errlen, spec, strerror(ENOMEM));
		return -ENOMEM;
	}
	n->fd = fd;
	*out = n;
	return 0;
}

int notify_set_prefix(struct notify *n, const char *prefix)
{
	char *p;

	if (!prefix)
		prefix = "";
	p = malloc(escaped_len(prefix) + 1);
	if (!p)
		return -ENOMEM;
	*escape(p, prefix) = '\0';
	free(n->prefix);
	n->prefix = p;
	n->prefix_len = strlen(p);
	return 0;
}

void notify_send(struct notify *n, const char *op, const char *path,
		 const char *path2)
{
	char stack[STACK_BUF], ts[48], *buf = stack, *p;
	struct timespec now;
	size_t len;
	ssize_t r;
	int tslen;

	if (!n || !op || !path)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	tslen = snprintf(ts, sizeof(ts), "%lld.%06ld " STATE " ",
			 (long long)now.tv_sec, now.tv_nsec / 1000);

	/* Each part is below its own string's length times 3: no overflow. */
	len = (size_t)tslen + escaped_len(op) + 1 + n->prefix_len +
	      escaped_len(path) + 1;
	if (path2)
		len += 1 + n->prefix_len + escaped_len(path2);
	if (len > NOTIFY_DGRAM_MAX) {
		__atomic_add_fetch(&n->too_long, 1, __ATOMIC_RELAXED);
		return;
	}
	if (len > sizeof(stack)) {
		buf = malloc(len);
		if (!buf) {
			__atomic_add_fetch(&n->errors, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&n->last_errno, ENOMEM,
					 __ATOMIC_RELAXED);
			return;
		}
	}

	p = buf;
	memcpy(p, ts, (size_t)tslen);
	p += tslen;
	p = escape(p, op);
	*p++ = ' ';
	memcpy(p, n->prefix, n->prefix_len);
	p = escape(p + n->prefix_len, path);
	if (path2) {
		*p++ = ' ';
		memcpy(p, n->prefix, n->prefix_len);
		p = escape(p + n->prefix_len, path2);
	}
	*p++ = '\n';

	do
		r = send(n->fd, buf, (size_t)(p - buf),
			 MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		__atomic_add_fetch(&n->errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&n->last_errno, errno, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&n->sent, 1, __ATOMIC_RELAXED);
	}
	if (buf != stack)
		free(buf);
}

void notify_get_stats(struct notify *n, struct notify_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!n)
		return;
	st->sent = __atomic_load_n(&n->sent, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&n->errors, __ATOMIC_RELAXED);
	st->too_long = __atomic_load_n(&n->too_long, __ATOMIC_RELAXED);
	st->last_errno = __atomic_load_n(&n->last_errno, __ATOMIC_RELAXED);
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	close(n->fd);
	free(n->prefix);
	free(n);
}
