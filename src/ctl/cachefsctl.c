// SPDX-License-Identifier: MIT
/*
 * cachefsctl: a thin client of the cachefs control socket.
 *
 * Each subcommand turns its arguments into one request (see
 * src/shared/ctl_proto.h) and prints the answer for people, or as JSON;
 * watch follows the change stream (through libcachefs), and changes
 * crawls the backend for what a gap in that stream hides.
 * Exit status: 0 ok, 1 the daemon reported a failure, 2 usage error,
 * 3 the daemon cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cachefs/events.h"
#include "ctl_proto.h"
#include "timespec_parse.h"

#ifndef CACHEFS_VERSION
#define CACHEFS_VERSION "unknown"
#endif

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

#define MAX_MOUNTS 256

/* A connection to one daemon. */
struct conn {
	char mountpoint[PATH_MAX]; /* "" when reached by -s */
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	char *buf; /* bytes read but not yet returned as a line */
	size_t len, cap;
};

static struct {
	const char *mount;  /* -m */
	const char *socket; /* -s */
	bool json;	    /* -j, --json */
	int timeout_ms;	    /* -t */
} opt = { .timeout_ms = 10000 };

static volatile sig_atomic_t interrupted;

static void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cachefsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see cachefsctl help)\n", stderr);
	exit(EXIT_USAGE);
}

/* --- talking to a daemon ------------------------------------------------ */

static const char *conn_name(const struct conn *c)
{
	return c->mountpoint[0] ? c->mountpoint : c->socket;
}

/* Connect; on failure print why and return -1. */
static int conn_open(struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fprintf(stderr, "cachefsctl: socket: %s\n", strerror(errno));
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->socket);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		fprintf(stderr,
			"cachefsctl: cannot reach the cachefs daemon of %s "
			"at %s: %s%s\n",
			conn_name(c), c->socket, strerror(e),
			e == ENOENT || e == ECONNREFUSED
				? " (is it running?)"
			: e == EACCES ? " (root or the ctl_group only)"
				      : "");
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, opt.timeout_ms);
	while (r < 0 && errno == EINTR && !interrupted);
	return r;
}

/* Read one line; returns its length (without '\n') or -1. */
static ssize_t conn_readline(struct conn *c, char **line)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		ssize_t n;

		if (nl) {
			*line = c->buf;
			*nl = '\0';
			return nl - c->buf;
		}
		if (c->cap - c->len < 65536) {
			char *b = realloc(c->buf, c->cap + 65536);

			if (!b)
				return -1;
			c->buf = b;
			c->cap += 65536;
		}
		if (wait_fd(c->fd, POLLIN) <= 0) {
			if (!interrupted)
				fprintf(stderr,
					"cachefsctl: no answer from the cachefs "
					"daemon of %s within %g s\n",
					conn_name(c), opt.timeout_ms / 1000.0);
			return -1;
		}
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n <= 0) {
			fprintf(stderr,
				"cachefsctl: the cachefs daemon of %s closed "
				"the connection\n",
				conn_name(c));
			return -1;
		}
		c->len += (size_t)n;
	}
}

/* Drop the line last returned by conn_readline. */
static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n + 1, c->len - n - 1);
	c->len -= n + 1;
}

/*
 * Send cmd with args (stolen; may be NULL) and wait for the answer.
 * Returns EXIT_OK with *data, EXIT_FAILED (message printed) or
 * EXIT_UNREACHABLE.
 */
static int call(struct conn *c, const char *cmd, json_t *args, json_t **data)
{
	char *req = ctl_request_encode(cmd, args), *line, err[1024];
	size_t off = 0, len;
	ssize_t n;
	int r;

	*data = NULL;
	if (!req) {
		fprintf(stderr, "cachefsctl: out of memory\n");
		return EXIT_FAILED;
	}
	len = strlen(req);
	while (off < len) {
		if (wait_fd(c->fd, POLLOUT) <= 0) {
			free(req);
			fprintf(stderr, "cachefsctl: %s: daemon not reading\n",
				conn_name(c));
			return EXIT_UNREACHABLE;
		}
		n = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			fprintf(stderr, "cachefsctl: %s: %s\n", conn_name(c),
				strerror(errno));
			free(req);
			return EXIT_UNREACHABLE;
		}
		off += (size_t)n;
	}
	free(req);
	n = conn_readline(c, &line);
	if (n < 0)
		return EXIT_UNREACHABLE;
	r = ctl_response_parse(line, (size_t)n, data, err, sizeof(err));
	conn_consume(c, (size_t)n);
	if (r < 0) {
		fprintf(stderr, "cachefsctl: %s: %s\n", conn_name(c), err);
		return EXIT_UNREACHABLE;
	}
	if (r > 0) {
		fprintf(stderr, "cachefsctl: %s: %s\n", conn_name(c), err);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* --- finding daemons --------------------------------------------------- */

/* Undo the octal escapes (\040) of /proc/self/mountinfo in place. */
static void unescape_octal(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* Mount points of every fuse.cachefs mount, in mount order. */
static int find_mounts(char mounts[][PATH_MAX], int max)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int n = 0;

	if (!f)
		return 0;
	while (n < max && getline(&line, &cap, f) > 0) {
		char *fields[5], *sep, *type, *save = NULL, *p = line;
		int k;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		type = strtok_r(sep + 3, " ", &save);
		if (!type || strcmp(type, "fuse.cachefs") != 0)
			continue;
		for (k = 0; k < 5 && (fields[k] = strtok_r(p, " ", &save));
		     k++)
			p = NULL;
		if (k < 5)
			continue;
		unescape_octal(fields[4]);
		snprintf(mounts[n++], PATH_MAX, "%s", fields[4]);
	}
	free(line);
	fclose(f);
	return n;
}

/* An absolute path without ".", ".." or repeated slashes, lexically. */
static void normalize(const char *in, char *out, size_t len)
{
	char tmp[PATH_MAX * 2], *save = NULL, *part;
	size_t n = 0;

	if (in[0] == '/' || !getcwd(tmp, sizeof(tmp)))
		snprintf(tmp, sizeof(tmp), "%s", in);
	else
		snprintf(tmp + strlen(tmp), sizeof(tmp) - strlen(tmp), "/%s",
			 in);
	out[0] = '\0';
	for (part = strtok_r(tmp, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (strcmp(part, ".") == 0)
			continue;
		if (strcmp(part, "..") == 0) {
			char *slash = strrchr(out, '/');

			n = slash ? (size_t)(slash - out) : 0;
			out[n] = '\0';
			continue;
		}
		n += (size_t)snprintf(out + n, len - n, "/%s", part);
		if (n >= len)
			n = len - 1;
	}
	if (!out[0])
		snprintf(out, len, "/");
}

static void conn_for_mount(struct conn *c, const char *mountpoint)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	snprintf(c->mountpoint, sizeof(c->mountpoint), "%.*s",
		 (int)sizeof(c->mountpoint) - 1, mountpoint);
	if (ctl_socket_path(mountpoint, c->socket, sizeof(c->socket)) < 0)
		c->socket[0] = '\0';
}

/*
 * The daemons a command addresses: the one chosen with -s or -m, or
 * every mounted cachefs (all) or the only one (!all).  Exits on error.
 */
static int target_conns(struct conn *conns, bool all)
{
	static char mounts[MAX_MOUNTS][PATH_MAX];
	char want[PATH_MAX], real[PATH_MAX];
	int n;

	if (opt.socket) {
		memset(conns, 0, sizeof(*conns));
		conns->fd = -1;
		if (strlen(opt.socket) >= sizeof(conns->socket))
			usage_error("socket path too long: %s", opt.socket);
		snprintf(conns->socket, sizeof(conns->socket), "%s",
			 opt.socket);
		return 1;
	}
	n = find_mounts(mounts, MAX_MOUNTS);
	if (opt.mount) {
		normalize(opt.mount, want, sizeof(want));
		for (int k = n - 1; k >= 0; k--) {
			if (strcmp(mounts[k], want) == 0) {
				conn_for_mount(conns, mounts[k]);
				return 1;
			}
		}
		if (realpath(opt.mount, real)) {
			for (int k = n - 1; k >= 0; k--) {
				if (strcmp(mounts[k], real) == 0) {
					conn_for_mount(conns, mounts[k]);
					return 1;
				}
			}
		}
		fprintf(stderr, "cachefsctl: %s is not a cachefs mount point\n",
			opt.mount);
		exit(EXIT_UNREACHABLE);
	}
	if (n == 0) {
		fprintf(stderr, "cachefsctl: no cachefs mounts found "
				"(use -s SOCKET for a daemon elsewhere)\n");
		exit(EXIT_UNREACHABLE);
	}
	if (!all && n > 1) {
		fprintf(stderr,
			"cachefsctl: %d cachefs mounts; choose one with -m "
			"MOUNTPOINT:\n",
			n);
		for (int k = 0; k < n; k++)
			fprintf(stderr, "  %s\n", mounts[k]);
		exit(EXIT_USAGE);
	}
	for (int k = 0; k < n; k++)
		conn_for_mount(&conns[k], mounts[k]);
	return n;
}

/* Run one request against the single target daemon. */
static int call_one(const char *cmd, json_t *args, json_t **data,
		    struct conn *c)
{
	int r;

	target_conns(c, false);
	if (conn_open(c) < 0) {
		json_decref(args);
		return EXIT_UNREACHABLE;
	}
	r = call(c, cmd, args, data);
	return r;
}

/* The exit status for several daemons: unreachable beats failed beats ok. */
static int worse(int a, int b)
{
	return a == EXIT_UNREACHABLE || b == EXIT_UNREACHABLE ? EXIT_UNREACHABLE
	       : a == EXIT_FAILED || b == EXIT_FAILED	    ? EXIT_FAILED
							    : EXIT_OK;
}

/* --- printing ------------------------------------------------------------ */

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9) |
					JSON_ENCODE_ANY);

	if (s)
		puts(s);
	free(s);
}

/*
 * The answers of commands that address every mount: with --json, one
 * object for a daemon chosen with -m or -s, else an array.  Frees all.
 */
static void print_answers(json_t *all)
{
	if (opt.json)
		print_json(opt.mount || opt.socket ? json_array_get(all, 0)
						   : all);
	json_decref(all);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static double jnum(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static void print_bytes(uint64_t b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	printf(u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void print_duration(json_int_t s)
{
	if (s >= 86400)
		printf("%lldd %02lldh %02lldm", s / 86400, s % 86400 / 3600,
		       s % 3600 / 60);
	else if (s >= 3600)
		printf("%lldh %02lldm %02llds", s / 3600, s % 3600 / 60,
		       s % 60);
	else if (s >= 60)
		printf("%lldm %02llds", s / 60, s % 60);
	else
		printf("%llds", s);
}

/* Options that differ from their defaults, as name=value. */
static void print_options(json_t *options, json_t *defaults)
{
	const char *name;
	json_t *v;
	bool any = false;

	json_object_foreach(options, name, v) {
		json_t *d = json_object_get(defaults, name);

		if (d && json_equal(v, d))
			continue;
		printf("%s%s=%s", any ? "," : "", name, json_string_value(v));
		any = true;
	}
	if (!any)
		printf("(defaults)");
}

/* The default of every option, from config.get. */
static json_t *option_defaults(struct conn *c)
{
	json_t *list, *d = json_object(), *o;
	size_t k;

	if (call(c, "config.get", NULL, &list) != EXIT_OK)
		return d;
	json_array_foreach(list, k, o)
		json_object_set_new(d, jstr(o, "name"),
				    json_string(jstr(o, "default")));
	json_decref(list);
	return d;
}

/* The journal line of status, and one per cursor. */
static void print_journal(json_t *j)
{
	json_t *cur;
	size_t k;

	if (!json_is_object(j))
		return;
	printf("  %-12s ", "journal");
	if (!json_is_true(json_object_get(j, "on"))) {
		printf("off\n");
		return;
	}
	print_bytes((uint64_t)jint(j, "bytes"));
	if (jint(j, "max")) {
		printf(" of ");
		print_bytes((uint64_t)jint(j, "max"));
	}
	printf(", records %lld-%lld, sync %s, in %s\n", jint(j, "oldest"),
	       jint(j, "newest"), jstr(j, "sync"), jstr(j, "dir"));
	if (json_is_string(json_object_get(j, "failed")))
		printf("  %-12s FAILED: %s; changes are refused\n", "",
		       jstr(j, "failed"));
	else if (json_is_true(json_object_get(j, "full")))
		printf("  %-12s FULL: changes are refused (ENOSPC) until a "
		       "cursor acks or is removed\n",
		       "");
	else if (json_is_true(json_object_get(j, "alarm")))
		printf("  %-12s ALARM: cursors hold it past 90%% of "
		       "journal_max (journal_full=%s)\n",
		       "", jstr(j, "full_policy"));
	if (jint(j, "torn_truncated") || jint(j, "corrupt_skipped") ||
	    jint(j, "unrecorded"))
		printf("  %-12s recovered: %lld torn tail%s cut, %lld damaged "
		       "stretch%s skipped; %lld change%s not recorded\n",
		       "", jint(j, "torn_truncated"),
		       jint(j, "torn_truncated") == 1 ? "" : "s",
		       jint(j, "corrupt_skipped"),
		       jint(j, "corrupt_skipped") == 1 ? "" : "es",
		       jint(j, "unrecorded"),
		       jint(j, "unrecorded") == 1 ? "" : "s");
	json_array_foreach(json_object_get(j, "cursors"), k, cur) {
		printf("  %-12s cursor %s: acked %lld, %lld behind (", "",
		       jstr(cur, "name"), jint(cur, "acked"),
		       jint(cur, "lag_records"));
		print_bytes((uint64_t)jint(cur, "lag_bytes"));
		printf(", %.1f s)\n", jnum(cur, "lag_seconds"));
	}
}

/* The RDMA server's line of status. */
static void print_rdma(json_t *r)
{
	if (!json_is_object(r))
		return;
	printf("  %-12s %s (%s), %lld client%s (%lld authenticated), "
	       "%lld request%s in flight, ",
	       "rdma", jstr(r, "address"), jstr(r, "provider"),
	       jint(r, "clients"), jint(r, "clients") == 1 ? "" : "s",
	       jint(r, "authenticated"), jint(r, "requests_in_flight"),
	       jint(r, "requests_in_flight") == 1 ? "" : "s");
	print_bytes((uint64_t)jint(r, "bytes"));
	printf(" served, %lld error%s (%lld failed authentication)\n",
	       jint(r, "errors"), jint(r, "errors") == 1 ? "" : "s",
	       jint(r, "auth_failures"));
}

static void print_status(json_t *s, json_t *defaults)
{
	json_t *cache = json_object_get(s, "cache");
	json_t *fdc = json_object_get(s, "fd_cache");
	json_t *dfd = json_object_get(s, "data_fds");
	json_t *mem = json_object_get(s, "memory");
	json_t *proc = json_object_get(s, "process");
	json_t *trace = json_object_get(s, "trace");
	json_t *errors = json_object_get(s, "errors");
	json_t *hit = json_object_get(cache, "hit_ratio");
	json_t *o;
	size_t k;

	printf("%s: %s\n", jstr(s, "mountpoint"), jstr(s, "state"));
	printf("  %-12s %s\n", "backend", jstr(s, "backend"));
	printf("  %-12s %lld (cachefs %s)\n", "pid", jint(s, "pid"),
	       jstr(s, "version"));
	printf("  %-12s ", "uptime");
	print_duration(jint(s, "uptime"));
	printf("\n  %-12s ", "options");
	print_options(json_object_get(s, "options"), defaults);
	printf("; kernel: %s\n", jstr(s, "kernel_options"));
	printf("  %-12s %.1f/s over the last 10 s, %lld in all\n", "ops",
	       jnum(json_object_get(s, "ops"), "per_second"),
	       jint(json_object_get(s, "ops"), "total"));
	printf("  %-12s %lld (ENOENT %lld)\n", "errors", jint(errors, "total"),
	       jint(errors, "ENOENT"));
	printf("  %-12s %s, tier %s, hit ratio ", "cache",
	       json_is_true(json_object_get(cache, "enabled")) ? "on" : "off",
	       jstr(cache, "tier"));
	if (json_is_number(hit))
		printf("%.1f%%", json_number_value(hit) * 100);
	else if (json_array_size(json_object_get(cache, "tiers")))
		printf("n/a (no read reached the daemon yet)");
	else
		printf("n/a (no cachefs cache tier)");
	printf(", files up to ");
	print_bytes((uint64_t)jint(cache, "max_cached_file"));
	printf("\n");
	json_array_foreach(json_object_get(cache, "tiers"), k, o) {
		long long servers = jint(o, "servers"),
			  down = jint(o, "servers_down");
		char state[96] = "up";

		if (strcmp(jstr(o, "name"), "memory") == 0)
			continue; /* its line is below */
		if (servers > 1 && down && down < servers)
			snprintf(state, sizeof(state),
				 "degraded (%lld of %lld servers down)", down,
				 servers);
		else if (json_is_true(json_object_get(o, "down")))
			strcpy(state, "down");
		printf("  %-12s %s, %lld hits, %lld misses, %lld stored, "
		       "%lld deleted, %lld errors, %lld too big, %lld keys "
		       "too long\n",
		       jstr(o, "name"), state, jint(o, "hits"), jint(o, "misses"), jint(o, "stores"),
		       jint(o, "deletes"), jint(o, "errors"),
		       jint(o, "too_big"), jint(o, "key_too_long"));
	}
	printf("  %-12s budget ", "memory");
	print_bytes((uint64_t)jint(mem, "budget"));
	printf(": cache ");
	print_bytes((uint64_t)jint(mem, "cache_bytes"));
	printf(" of ");
	print_bytes((uint64_t)jint(mem, "cache_budget"));
	printf(", inode table ");
	print_bytes((uint64_t)jint(mem, "table_bytes"));
	printf(" (");
	print_bytes((uint64_t)jint(mem, "table_per_inode"));
	printf(" per inode)\n");
	printf("  %-12s %lld open (limit %lld), hit ratio %.1f%%\n",
	       "descriptors", jint(fdc, "open"), jint(fdc, "limit"),
	       jnum(fdc, "hit_ratio") * 100);
	if (json_is_object(dfd)) {
		printf("  %-12s %lld directories; files: by the kernel "
		       "(no_open)\n",
		       "open", jint(s, "open_dirs"));
		printf("  %-12s %lld shared (%lld read-write, %lld of "
		       "unlinked files; limit %lld), hit ratio %.1f%%\n",
		       "data fds", jint(dfd, "open"), jint(dfd, "writable"),
		       jint(dfd, "kept"), jint(dfd, "limit"),
		       jnum(dfd, "hit_ratio") * 100);
	} else {
		printf("  %-12s %lld files, %lld directories\n", "open",
		       jint(s, "open_files"), jint(s, "open_dirs"));
	}
	printf("  %-12s %lld (%lld kept after the kernel forgot them), "
	       "%lld names (revalidated every %s; last pass %.1f ms), ",
	       "inodes", jint(s, "inodes"), jint(s, "inodes_retained"),
	       jint(s, "names"),
	       jstr(json_object_get(s, "options"), "revalidate"),
	       jnum(json_object_get(s, "revalidate"), "last_pass_ms"));
	print_bytes((uint64_t)jint(s, "table_bytes"));
	printf("\n");
	printf("  %-12s rss ", "process");
	print_bytes((uint64_t)jint(proc, "rss_bytes"));
	printf(", %lld fds, %lld threads\n", jint(proc, "fds"),
	       jint(proc, "threads"));
	print_journal(json_object_get(s, "journal"));
	{
		json_t *m;
		size_t i;

		json_array_foreach(json_object_get(s, "mirrors"), i, m) {
			printf("  %-12s %s: %s", i ? "" : "mirrors",
			       jstr(m, "name"), jstr(m, "state"));
			if (jint(m, "lag_records"))
				printf(", %lld records behind",
				       jint(m, "lag_records"));
			if (json_is_string(json_object_get(m, "error")))
				printf(" (%s)", jstr(m, "error"));
			printf("\n");
		}
	}
	print_rdma(json_object_get(s, "rdma"));
	printf("  %-12s ", "trace");
	if (json_is_true(json_object_get(trace, "on"))) {
		printf("on");
		if (jint(trace, "pid"))
			printf(", pid %lld", jint(trace, "pid"));
		if (json_is_string(json_object_get(trace, "path")))
			printf(", below %s", jstr(trace, "path"));
		printf("\n");
	} else {
		printf("off\n");
	}
	printf("  %-12s %s (%lld client%s)", "control", jstr(s, "socket"),
	       jint(s, "ctl_clients"), jint(s, "ctl_clients") == 1 ? "" : "s");
	if (json_is_string(json_object_get(s, "metrics")))
		printf(", metrics http://%s/metrics", jstr(s, "metrics"));
	printf("\n");
}

/* --- commands ------------------------------------------------------------ */

/* Parse the options of a subcommand: only --json, and those in longopts. */
static int sub_getopt(int argc, char **argv, const struct option *longopts,
		      const char *cmd)
{
	int o;

	opterr = 0;
	o = getopt_long(argc, argv, "+:jn:f", longopts, NULL);
	if (o == '?')
		usage_error("%s: unknown option '%s'", cmd, argv[optind - 1]);
	if (o == ':')
		usage_error("%s: option '%s' needs a value", cmd,
			    argv[optind - 1]);
	return o;
}

static void no_more_args(int argc, char **argv, const char *cmd)
{
	if (optind < argc)
		usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
}

static int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, 0, 'j' },
					    { 0 } };
	static struct conn conns[MAX_MOUNTS];
	json_t *all = json_array();
	int n, o, ret = EXIT_OK;

	while ((o = sub_getopt(argc, argv, lo, "status")) != -1)
		if (o == 'j')
			opt.json = true;
		else
			usage_error("status: unknown option");
	no_more_args(argc, argv, "status");
	n = target_conns(conns, true);
	for (int k = 0; k < n; k++) {
		json_t *data, *defaults;
		int r;

		if (conn_open(&conns[k]) < 0) {
			ret = worse(ret, EXIT_UNREACHABLE);
			continue;
		}
		r = call(&conns[k], "status", NULL, &data);
		if (r != EXIT_OK) {
			ret = worse(ret, r);
			conn_close(&conns[k]);
			continue;
		}
		if (opt.json) {
			json_array_append(all, data);
		} else {
			defaults = option_defaults(&conns[k]);
			if (k)
				printf("\n");
			print_status(data, defaults);
			json_decref(defaults);
		}
		json_decref(data);
		conn_close(&conns[k]);
	}
	print_answers(all);
	return ret;
}

static void print_stats(json_t *d)
{
	json_t *ops = json_object_get(d, "ops"), *o, *h, *b;
	const char *name;
	size_t k;

	printf("# ops\n%-16s %10s %8s %12s %10s %8s %8s %8s\n", "op", "count",
	       "errors", "bytes", "avg_us", "p50_us", "p90_us", "p99_us");
	json_object_foreach(ops, name, o) {
		if (!jint(o, "count"))
			continue;
		printf("%-16s %10lld %8lld %12lld %10.1f %8lld %8lld %8lld\n",
		       name, jint(o, "count"), jint(o, "errors"),
		       jint(o, "bytes"), jnum(o, "avg_us"), jint(o, "p50_us"),
		       jint(o, "p90_us"), jint(o, "p99_us"));
	}
	printf("\n# latency histograms (count of ops under each bound, us)\n");
	json_object_foreach(ops, name, o) {
		h = json_object_get(o, "histogram");
		if (!json_array_size(h))
			continue;
		printf("%-16s", name);
		json_array_foreach(h, k, b) {
			if (json_is_null(json_object_get(b, "le_us")))
				printf(" inf:%lld", jint(b, "count"));
			else
				printf(" %lld:%lld", jint(b, "le_us"),
				       jint(b, "count"));
		}
		printf("\n");
	}
	printf("\n# errors\n");
	json_object_foreach(json_object_get(d, "errors"), name, o)
		printf("%s: %lld\n", name, json_integer_value(o));
	printf("\n# counters\n");
	json_object_foreach(json_object_get(d, "counters"), name, o)
		printf("%s: %lld\n", name, json_integer_value(o));
	printf("\n# cache tiers (since the mount)\n%-10s %10s %10s %8s %10s "
	       "%12s %12s\n", "tier", "hits", "misses", "stale", "evictions",
	       "bytes", "budget");
	json_array_foreach(json_object_get(json_object_get(d, "cache"), "tiers"),
			   k, o)
		printf("%-10s %10lld %10lld %8lld %10lld %12lld %12lld\n",
		       jstr(o, "name"), jint(o, "hits"), jint(o, "misses"),
		       jint(o, "stale"), jint(o, "evictions"), jint(o, "bytes"),
		       jint(o, "budget"));
	printf("\n# process\n");
	json_object_foreach(json_object_get(d, "process"), name, o)
		printf("%s: %lld\n", name, json_integer_value(o));
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, 0, 'j' },
					    { "reset", no_argument, 0, 'r' },
					    { 0 } };
	struct conn c;
	json_t *data;
	bool reset = false;
	int o, r;

	while ((o = sub_getopt(argc, argv, lo, "stats")) != -1) {
		if (o == 'j')
			opt.json = true;
		else if (o == 'r')
			reset = true;
		else
			usage_error("stats: unknown option");
	}
	no_more_args(argc, argv, "stats");
	r = call_one("stats", reset ? json_pack("{s:b}", "reset", 1) : NULL,
		     &data, &c);
	if (r == EXIT_OK) {
		if (opt.json)
			print_json(data);
		else
			print_stats(data);
	}
	json_decref(data);
	conn_close(&c);
	return r;
}

static int cmd_config(int argc, char **argv)
{
	const char *verb = optind < argc ? argv[optind++] : NULL;
	struct conn c;
	json_t *data, *args = NULL, *o;
	size_t k;
	int r;

	if (!verb)
		usage_error("config: say get or set");
	if (strcmp(verb, "get") == 0) {
		if (argc - optind > 1)
			usage_error("config get: one option name at most");
		if (optind < argc)
			args = json_pack("{s:s}", "name", argv[optind]);
		r = call_one("config.get", args, &data, &c);
		if (r == EXIT_OK && opt.json) {
			print_json(data);
		} else if (r == EXIT_OK && args) {
			printf("%s\n", jstr(json_array_get(data, 0), "value"));
		} else if (r == EXIT_OK) {
			printf("%-18s %-24s %-10s %s\n", "OPTION", "VALUE",
			       "DEFAULT", "RUN TIME");
			json_array_foreach(data, k, o)
				printf("%-18s %-24s %-10s %s\n",
				       jstr(o, "name"), jstr(o, "value"),
				       jstr(o, "default"),
				       json_is_true(json_object_get(o,
								    "runtime"))
					       ? "changeable"
					       : "-");
		}
	} else if (strcmp(verb, "set") == 0) {
		const char *value;
		char abs[PATH_MAX * 2], cwd[PATH_MAX];

		if (argc - optind != 2)
			usage_error("config set: needs NAME VALUE");
		value = argv[optind + 1];
		/* A file named relative to here, not to the daemon's / */
		if (strcmp(argv[optind], "trace_file") == 0 && value[0] &&
		    value[0] != '/' && getcwd(cwd, sizeof(cwd))) {
			snprintf(abs, sizeof(abs), "%s/%s", cwd, value);
			value = abs;
		}
		r = call_one("config.set",
			     json_pack("{s:s, s:s}", "name", argv[optind],
				       "value", value),
			     &data, &c);
		if (r == EXIT_OK && opt.json)
			print_json(data);
		else if (r == EXIT_OK)
			printf("%s = %s\n", argv[optind],
			       jstr(json_array_get(data, 0), "value"));
	} else {
		usage_error("config: unknown verb '%s' (get or set)", verb);
	}
	json_decref(data);
	conn_close(&c);
	return r;
}

static void print_record(json_t *rec)
{
	printf("%s %lld %lld %s %s %s size=%lld off=%lld res=%s %.1fus\n",
	       jstr(rec, "time"), jint(rec, "seq"), jint(rec, "pid"),
	       jstr(rec, "comm")[0] ? jstr(rec, "comm") : "-",
	       jstr(rec, "op"),
	       json_is_string(json_object_get(rec, "path")) ? jstr(rec, "path")
							    : "-",
	       jint(rec, "size"), jint(rec, "offset"),
	       jint(rec, "result") ? jstr(rec, "error") : "0",
	       jnum(rec, "latency_us"));
}

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int trace_show(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "follow", no_argument, 0, 'f' },
		{ "count", required_argument, 0, 'n' },
		{ 0 },
	};
	struct conn c;
	json_t *data, *recs, *rec;
	json_int_t since = -1, max = 100;
	bool follow = false;
	char *end;
	size_t k;
	int o, r;

	while ((o = sub_getopt(argc, argv, lo, "trace show")) != -1) {
		if (o == 'j') {
			opt.json = true;
		} else if (o == 'f') {
			follow = true;
		} else if (o == 'n') {
			max = strtoll(optarg, &end, 10);
			if (*end || max < 1 || max > 1000)
				usage_error("trace show: -n wants 1 to 1000");
		} else {
			usage_error("trace show: unknown option");
		}
	}
	no_more_args(argc, argv, "trace show");
	r = call_one("trace.show",
		     json_pack("{s:I, s:I}", "since", since, "max", max), &data,
		     &c);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (r == EXIT_OK) {
		recs = json_object_get(data, "records");
		if (jint(data, "lost"))
			fprintf(stderr,
				"cachefsctl: %lld trace records were "
				"overwritten before they could be shown\n",
				jint(data, "lost"));
		json_array_foreach(recs, k, rec) {
			if (opt.json) {
				char *s = json_dumps(rec, JSON_COMPACT |
							  JSON_REAL_PRECISION(9));

				if (s)
					puts(s);
				free(s);
			} else {
				print_record(rec);
			}
		}
		fflush(stdout);
		if (!follow || interrupted)
			break;
		since = jint(data, "next");
		if (json_array_size(recs) < (size_t)max) {
			struct timespec ts = { 0, 200 * 1000000 };

			nanosleep(&ts, NULL); /* poll: a few times a second */
		}
		if (interrupted)
			break;
		json_decref(data);
		r = call(&c, "trace.show",
			 json_pack("{s:I, s:I}", "since", since, "max", 1000),
			 &data);
		max = 1000;
		if (interrupted) /* while waiting for an answer */
			r = EXIT_OK;
	}
	json_decref(data);
	conn_close(&c);
	return r;
}

static int cmd_trace(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pid", required_argument, 0, 'p' },
		{ "path", required_argument, 0, 'P' },
		{ "json", no_argument, 0, 'j' },
		{ 0 },
	};
	const char *verb = optind < argc ? argv[optind++] : NULL;
	struct conn c;
	json_t *data, *args;
	char *end;
	long pid = 0;
	const char *path = NULL;
	int o, r;

	if (!verb)
		usage_error("trace: say on, off or show");
	if (strcmp(verb, "show") == 0)
		return trace_show(argc, argv);
	if (strcmp(verb, "on") == 0) {
		while ((o = sub_getopt(argc, argv, lo, "trace on")) != -1) {
			if (o == 'p') {
				pid = strtol(optarg, &end, 10);
				if (*end || pid <= 0)
					usage_error("trace on: bad pid '%s'",
						    optarg);
			} else if (o == 'P') {
				path = optarg;
				if (path[0] != '/')
					usage_error("trace on: --path is "
						    "relative to the mount and "
						    "starts with /");
			} else if (o == 'j') {
				opt.json = true;
			} else {
				usage_error("trace on: unknown option");
			}
		}
		no_more_args(argc, argv, "trace on");
		args = json_pack("{s:I}", "pid", (json_int_t)pid);
		if (path)
			json_object_set_new(args, "path", json_string(path));
		r = call_one("trace.on", args, &data, &c);
	} else if (strcmp(verb, "off") == 0) {
		no_more_args(argc, argv, "trace off");
		r = call_one("trace.off", NULL, &data, &c);
	} else {
		usage_error("trace: unknown verb '%s' (on, off or show)", verb);
	}
	if (r == EXIT_OK && opt.json) {
		print_json(data);
	} else if (r == EXIT_OK) {
		printf("trace %s", json_is_true(json_object_get(data, "on"))
					   ? "on"
					   : "off");
		if (jint(data, "pid"))
			printf(", pid %lld", jint(data, "pid"));
		if (json_is_string(json_object_get(data, "path")))
			printf(", below %s", jstr(data, "path"));
		printf("\n");
	}
	json_decref(data);
	conn_close(&c);
	return r;
}

static int cmd_log(int argc, char **argv)
{
	static struct conn conns[MAX_MOUNTS];
	const char *verb = optind < argc ? argv[optind++] : NULL;
	json_t *all = json_array();
	int n, ret = EXIT_OK;

	if (!verb || strcmp(verb, "reopen") != 0)
		usage_error("log: the only verb is reopen");
	no_more_args(argc, argv, "log reopen");
	n = target_conns(conns, true);
	for (int k = 0; k < n; k++) {
		json_t *data;
		int r = EXIT_UNREACHABLE;

		if (conn_open(&conns[k]) == 0)
			r = call(&conns[k], "log.reopen", NULL, &data);
		if (r == EXIT_OK) {
			if (!opt.json)
				printf("%s: log reopened\n",
				       conn_name(&conns[k]));
			json_object_set_new(data, "mountpoint",
					    json_string(conns[k].mountpoint));
			json_array_append_new(all, data);
		}
		ret = worse(ret, r);
		conn_close(&conns[k]);
	}
	print_answers(all);
	return ret;
}

static int cmd_cache(int argc, char **argv)
{
	const char *verb = optind < argc ? argv[optind++] : NULL;
	struct conn c;
	json_t *data;
	int r;

	if (!verb || (strcmp(verb, "on") != 0 && strcmp(verb, "off") != 0))
		usage_error("cache: say on or off");
	no_more_args(argc, argv, "cache");
	r = call_one(strcmp(verb, "on") == 0 ? "cache.on" : "cache.off", NULL,
		     &data, &c);
	if (r == EXIT_OK && opt.json)
		print_json(data);
	else if (r == EXIT_OK)
		printf("cache %s\n",
		       json_is_true(json_object_get(data, "enabled")) ? "on"
								      : "off");
	json_decref(data);
	conn_close(&c);
	return r;
}

static int cmd_call(int argc, char **argv)
{
	struct conn c;
	json_t *data, *args = NULL;
	json_error_t je;
	int r;

	if (argc - optind < 1 || argc - optind > 2)
		usage_error("call: needs COMMAND [JSON-ARGS]");
	if (optind + 1 < argc) {
		args = json_loads(argv[optind + 1], 0, &je);
		if (!json_is_object(args))
			usage_error("call: arguments must be a JSON object%s%s",
				    args ? "" : ": ", args ? "" : je.text);
	}
	r = call_one(argv[optind], args, &data, &c);
	if (r == EXIT_OK)
		print_json(data);
	json_decref(data);
	conn_close(&c);
	return r;
}

/*
 * The cachefs mount that holds path (a file system path; with -m, only
 * that one) into c, and the path relative to it into rel: false when
 * no mount holds it.
 */
static bool find_mount_of(const char *path, struct conn *c, char *rel,
			  size_t len)
{
	static char mounts[MAX_MOUNTS][PATH_MAX];
	char abs[PATH_MAX], want[PATH_MAX] = "";
	size_t best = 0;
	int n;

	if (opt.mount)
		normalize(opt.mount, want, sizeof(want));
	normalize(path, abs, sizeof(abs));
	n = find_mounts(mounts, MAX_MOUNTS);
	for (int k = 0; k < n; k++) {
		size_t m = strlen(mounts[k]);
		bool under = strcmp(mounts[k], "/") == 0 ||
			     (strncmp(abs, mounts[k], m) == 0 &&
			      (abs[m] == '/' || abs[m] == '\0'));

		if (under && (m >= best || strcmp(mounts[k], "/") == 0) &&
		    (!want[0] || strcmp(want, mounts[k]) == 0)) {
			best = strcmp(mounts[k], "/") == 0 ? 1 : m;
			conn_for_mount(c, mounts[k]);
			snprintf(rel, len, "%s",
				 strcmp(mounts[k], "/") == 0 ? abs
				 : abs[m]		      ? abs + m
							      : "/");
		}
	}
	return best != 0;
}

/*
 * The cachefs mount that holds path (a file system path) and the path
 * relative to it; with -s, path is taken as relative to the mount.
 * Exits on error.
 */
static void locate(const char *path, struct conn *c, char *rel, size_t len)
{
	char want[PATH_MAX] = "";

	if (opt.socket) {
		if (path[0] != '/')
			usage_error("with -s, PATH is relative to the mount "
				    "and starts with /");
		target_conns(c, false);
		normalize(path, rel, len);
		return;
	}
	if (!find_mount_of(path, c, rel, len)) {
		if (opt.mount)
			normalize(opt.mount, want, sizeof(want));
		fprintf(stderr, "cachefsctl: %s is not in a cachefs mount%s%s\n",
			path, want[0] ? " at " : "", want);
		exit(EXIT_UNREACHABLE);
	}
}

static int cmd_invalidate(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recursive", no_argument, 0, 'r' },
		{ 0 },
	};
	char rel[PATH_MAX];
	struct conn c;
	json_t *data;
	bool recursive = false;
	int o, r;

	while ((o = getopt_long(argc, argv, "+r", lo, NULL)) != -1) {
		if (o == 'r')
			recursive = true;
		else
			usage_error("invalidate: unknown option '%s'",
				    argv[optind - 1]);
	}
	if (argc - optind != 1)
		usage_error("invalidate: needs one PATH");
	locate(argv[optind], &c, rel, sizeof(rel));
	if (conn_open(&c) < 0)
		return EXIT_UNREACHABLE;
	r = call(&c, "invalidate",
		 json_pack("{s:s, s:b}", "path", rel, "recursive", recursive),
		 &data);
	if (r == EXIT_OK && opt.json)
		print_json(data);
	else if (r == EXIT_OK)
		printf("%s%s: %lld names and %lld inodes invalidated\n",
		       c.mountpoint, strcmp(rel, "/") ? rel : "",
		       jint(data, "names"), jint(data, "inodes"));
	json_decref(data);
	conn_close(&c);
	return r;
}

/*
 * What preload does: walk the tree through the mount and have the daemon
 * store each regular file from the backend in the shared tiers.
 */
#define PRELOAD_REASONS 16

static struct {
	struct conn *c;
	char base[PATH_MAX]; /* the walk's root: absolute, and in the mount */
	size_t base_len;
	char rel[PATH_MAX];
	bool recursive, tty, failed;
	uint64_t files, stored, bytes, skipped;
	struct {
		char *why;
		uint64_t n;
	} reasons[PRELOAD_REASONS];
	int nreasons;
	struct timespec last;
} pre;

static void preload_count(const char *why)
{
	int k;

	for (k = 0; k < pre.nreasons; k++)
		if (strcmp(pre.reasons[k].why, why) == 0)
			break;
	if (k == pre.nreasons) {
		if (k == PRELOAD_REASONS)
			k--; /* the last one counts the rest */
		else if ((pre.reasons[k].why = strdup(why)))
			pre.nreasons++;
		else
			return;
	}
	pre.reasons[k].n++;
}

/* Whether a progress line is due: the final one, or every 100 ms. */
static bool progress_due(struct timespec *last, bool final)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && (now.tv_sec - last->tv_sec) * 1000000000L +
				      (now.tv_nsec - last->tv_nsec) <
			      100000000L)
		return false;
	*last = now;
	return true;
}

static void preload_progress(bool final)
{
	if (!progress_due(&pre.last, final))
		return;
	fprintf(stderr, "\rpreload: %" PRIu64 " files, %" PRIu64
			" stored, %.1f MiB%s",
		pre.files, pre.stored, (double)pre.bytes / 1048576,
		final ? "\n" : "");
}

static int preload_one(const char *path, const struct stat *st, int type,
		       struct FTW *ftw)
{
	const char *below = path + pre.base_len;
	char rel[PATH_MAX];
	json_t *data;

	if (!pre.recursive && ftw->level > 1)
		return 0;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	pre.files++;
	snprintf(rel, sizeof(rel), "%s%s",
		 strcmp(pre.rel, "/") || !*below ? pre.rel : "", below);
	if (call(pre.c, "preload", json_pack("{s:s}", "path", rel), &data) !=
	    EXIT_OK) {
		pre.failed = true;
		return 1; /* the daemon said why; stop */
	}
	if (json_is_true(json_object_get(data, "stored"))) {
		pre.stored++;
		pre.bytes += (uint64_t)jint(data, "bytes");
	} else {
		pre.skipped++;
		preload_count(jstr(data, "reason"));
	}
	json_decref(data);
	if (pre.tty)
		preload_progress(false);
	return 0;
}

static int cmd_preload(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recursive", no_argument, 0, 'r' },
		{ 0 },
	};
	struct conn c;
	int o, r;

	while ((o = getopt_long(argc, argv, "+r", lo, NULL)) != -1) {
		if (o == 'r')
			pre.recursive = true;
		else
			usage_error("preload: unknown option '%s'",
				    argv[optind - 1]);
	}
	if (argc - optind != 1)
		usage_error("preload: needs one PATH");
	if (opt.socket)
		usage_error("preload walks the mount: use -m, not -s");
	locate(argv[optind], &c, pre.rel, sizeof(pre.rel));
	normalize(argv[optind], pre.base, sizeof(pre.base));
	pre.base_len = strlen(pre.base);
	if (conn_open(&c) < 0)
		return EXIT_UNREACHABLE;
	pre.c = &c;
	pre.tty = isatty(STDERR_FILENO);
	r = nftw(pre.base, preload_one, 64, FTW_PHYS | FTW_MOUNT);
	if (r < 0) {
		fprintf(stderr, "cachefsctl: preload %s: %s\n", argv[optind],
			strerror(errno));
		conn_close(&c);
		return EXIT_FAILED;
	}
	if (pre.tty)
		preload_progress(true);
	if (opt.json) {
		json_t *why = json_object();

		for (int k = 0; k < pre.nreasons; k++)
			json_object_set_new(why, pre.reasons[k].why,
					    json_integer((json_int_t)
							 pre.reasons[k].n));
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:o}", "files",
				      (json_int_t)pre.files, "stored",
				      (json_int_t)pre.stored, "bytes",
				      (json_int_t)pre.bytes, "skipped",
				      (json_int_t)pre.skipped, "reasons", why);

		print_json(j);
		json_decref(j);
	} else if (!pre.failed) {
		printf("preload: %" PRIu64 " files: %" PRIu64 " stored (",
		       pre.files, pre.stored);
		print_bytes(pre.bytes);
		printf(")");
		for (int k = 0; k < pre.nreasons; k++)
			printf(", %" PRIu64 " %s", pre.reasons[k].n,
			       pre.reasons[k].why);
		printf("\n");
	}
	for (int k = 0; k < pre.nreasons; k++)
		free(pre.reasons[k].why);
	conn_close(&c);
	return pre.failed ? EXIT_FAILED : EXIT_OK;
}

/* What warm does: read through the mount what the kernel should keep. */
static struct {
	uint64_t files, dirs, other, bytes, skipped, errors;
	off_t max_size;
	int root_level;
	bool recursive, tty;
	struct timespec last;
} warm;

static void warm_progress(bool final)
{
	if (!progress_due(&warm.last, final))
		return;
	fprintf(stderr, "\rwarm: %" PRIu64 " files, %" PRIu64
			" directories, %.1f MiB read%s",
		warm.files, warm.dirs, (double)warm.bytes / 1048576,
		final ? "\n" : "");
}

static int warm_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	static char buf[1 << 16];
	ssize_t n;
	int fd;

	if (!warm.recursive && ftw->level > 1)
		return 0;
	if (type == FTW_D) {
		warm.dirs++;
	} else if (type == FTW_F && S_ISREG(st->st_mode)) {
		warm.files++;
		if (st->st_size > warm.max_size) {
			warm.skipped++;
		} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			warm.errors++;
		} else {
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				warm.bytes += (uint64_t)n;
			if (n < 0)
				warm.errors++;
			close(fd);
		}
	} else if (type == FTW_SL) {
		char target[PATH_MAX];

		warm.other++;
		if (readlink(path, target, sizeof(target)) < 0)
			warm.errors++;
	} else if (type == FTW_DNR || type == FTW_NS) {
		warm.errors++;
	} else {
		warm.other++;
	}
	if (warm.tty)
		warm_progress(false);
	return 0;
}

static int cmd_warm(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recursive", no_argument, 0, 'r' },
		{ "max-size", required_argument, 0, 'S' },
		{ 0 },
	};
	char rel[PATH_MAX];
	struct conn c;
	char *end;
	int o;

	warm.max_size = 1 << 20;
	while ((o = getopt_long(argc, argv, "+rS:", lo, NULL)) != -1) {
		if (o == 'r') {
			warm.recursive = true;
		} else if (o == 'S') {
			warm.max_size = strtoll(optarg, &end, 10);
			if (*end || warm.max_size < 0)
				usage_error("warm: bad --max-size '%s'",
					    optarg);
		} else {
			usage_error("warm: unknown option '%s'",
				    argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		usage_error("warm: needs one PATH");
	if (opt.socket)
		usage_error("warm reads through the mount: use -m, not -s");
	locate(argv[optind], &c, rel, sizeof(rel)); /* must be in a mount */
	warm.tty = isatty(STDERR_FILENO);
	/* the walk stays on the mount: FTW_MOUNT */
	if (nftw(argv[optind], warm_one, 64, FTW_PHYS | FTW_MOUNT) < 0) {
		fprintf(stderr, "cachefsctl: warm %s: %s\n", argv[optind],
			strerror(errno));
		return EXIT_FAILED;
	}
	if (warm.tty)
		warm_progress(true);
	if (opt.json) {
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
				      "files", (json_int_t)warm.files, "dirs",
				      (json_int_t)warm.dirs, "other",
				      (json_int_t)warm.other, "bytes",
				      (json_int_t)warm.bytes, "skipped",
				      (json_int_t)warm.skipped, "errors",
				      (json_int_t)warm.errors);
		print_json(j);
		json_decref(j);
	} else {
		printf("warmed %s: %" PRIu64 " files (%.1f MiB read, %" PRIu64
		       " larger than %lld bytes not read), %" PRIu64
		       " directories, %" PRIu64 " others, %" PRIu64
		       " errors\n",
		       argv[optind], warm.files, (double)warm.bytes / 1048576,
		       warm.skipped, (long long)warm.max_size, warm.dirs,
		       warm.other, warm.errors);
	}
	return warm.errors ? EXIT_FAILED : EXIT_OK;
}

/* --- watch --------------------------------------------------------------- */

/* ns since the epoch as 2026-11-22T11:38:22.123456Z, or to the second. */
static void format_utc(int64_t ns, bool micro, char *buf, size_t len)
{
	int64_t frac = ns % 1000000000;
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;
	size_t n;

	if (frac < 0) { /* before 1970: round towards the past */
		frac += 1000000000;
		sec--;
	}
	if (!gmtime_r(&sec, &tm)) {
		snprintf(buf, len, "@%lld", (long long)sec);
		return;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(buf + n, len - n, ".%06ldZ", (long)(frac / 1000));
	else
		snprintf(buf + n, len - n, "Z");
}

/* A path for people: one line, whatever bytes the name holds. */
static void print_escaped(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* What watch has printed and acked. */
static struct {
	struct cachefs_events *e;
	const char *name; /* of the daemon, for messages */
	const char *socket, *cursor;
	uint64_t done;	 /* every record up to it is printed (or skipped) */
	uint64_t acked;	 /* and up to it acked */
	int64_t last_ns; /* the time of the last change printed; 0: none */
	struct timespec last_ack;
} ws;

static void watch_print(const struct cachefs_event *ev)
{
	char t[64];

	if (opt.json) {
		/* as the daemon sent it: members this version does not know */
		printf("%.*s\n", (int)ev->raw_len, ev->raw);
		return;
	}
	if (ev->type == CACHEFS_EVENT_CHANGE) {
		format_utc(ev->time_ns, true, t, sizeof(t));
		printf("%" PRIu64 "  %s  %s  ", ev->seq, t, ev->op);
		print_escaped(ev->path);
		if (ev->path2) {
			printf(" -> ");
			print_escaped(ev->path2);
		}
		printf("\n");
	} else if (ev->type == CACHEFS_EVENT_GAP) {
		/* the last change before the gap bounds what it hides */
		if (ws.last_ns)
			format_utc(ws.last_ns, false, t, sizeof(t));
		else
			snprintf(t, sizeof(t), "TIME");
		printf("gap: records %" PRIu64 "-%" PRIu64
		       " are no longer in the journal; use: cachefsctl "
		       "changes --since %s\n",
		       ev->gap_from, ev->gap_to, t);
	}
}

/* Report a failure of the library: the exit status it means. */
static int watch_failed(int r, const char *what)
{
	if (r == -EINVAL) {
		fprintf(stderr, "cachefsctl: %s: %s%s\n", ws.name, what,
			cachefs_events_error(ws.e));
		return EXIT_FAILED;
	}
	fprintf(stderr, "cachefsctl: %s: %s%s\n", ws.name, what,
		r == -EPIPE || r == -ECONNRESET
			? "the cachefs daemon closed the connection"
			: cachefs_events_error(ws.e));
	return EXIT_UNREACHABLE;
}

enum ack_when {
	ACK_DUE,       /* if 100 ms passed since the last one */
	ACK_NOW,       /* the stream is idle */
	ACK_LAST,      /* on the way out */
};

/*
 * With a cursor, ack what is printed, once it is out (flushed without
 * error).  Returns an exit status, or -1 when standard output is gone.
 */
static int watch_ack(enum ack_when when)
{
	int r;

	if (!ws.cursor || ws.done <= ws.acked)
		return EXIT_OK;
	if (!progress_due(&ws.last_ack, when != ACK_DUE))
		return EXIT_OK;
	if (fflush(stdout) != 0)
		return -1;
	r = cachefs_events_ack(ws.e, ws.done);
	if (r == 0) {
		ws.acked = ws.done;
		return EXIT_OK;
	}
	if (r != -EPIPE && r != -ECONNRESET)
		return watch_failed(r, "ack: ");
	/* the end of the stream may be queued yet: the reads will tell */
	return when == ACK_LAST ? watch_failed(r, "ack: ") : EXIT_OK;
}

/* Standard output failed: a reader that went away is no error. */
static int stdout_failed(void)
{
	if (errno == EPIPE)
		return EXIT_OK;
	fprintf(stderr, "cachefsctl: standard output: %s\n", strerror(errno));
	return EXIT_FAILED;
}

/* Read, print and ack until the end, a signal, or an error. */
static int watch_loop(void)
{
	struct cachefs_event ev;
	bool ended = false;
	int r, wait_ms;

	for (;;) {
		/* out before waiting: a pipe gets each batch at once */
		if (!cachefs_events_pending(ws.e) && fflush(stdout) != 0)
			return stdout_failed();
		if (interrupted)
			break;
		/* wake to ack what waits, and to see a signal come late */
		wait_ms = ws.cursor && ws.done > ws.acked ? 100 : 1000;
		r = cachefs_events_read(ws.e, &ev, wait_ms);
		if (r == -EINTR || r == 0) {
			r = watch_ack(ACK_NOW);
			if (r)
				return r < 0 ? stdout_failed() : r;
			continue;
		}
		if (r < 0)
			return watch_failed(r, "");
		watch_print(&ev);
		if (ev.type == CACHEFS_EVENT_CHANGE)
			ws.last_ns = ev.time_ns;
		if (ev.seq > ws.done)
			ws.done = ev.seq;
		ended = ev.type == CACHEFS_EVENT_END;
		if (ended)
			break;
		r = watch_ack(ACK_DUE);
		if (r)
			return r < 0 ? stdout_failed() : r;
	}
	if (fflush(stdout) != 0)
		return stdout_failed();
	r = watch_ack(ACK_LAST);
	return r < 0 ? stdout_failed() : r;
}

static bool valid_cursor_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CACHEFS_EVENTS_CURSOR_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == n;
}

static void watch_options(int argc, char **argv, struct cachefs_events_opts *o)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "path", required_argument, 0, 'P' },
		{ "since", required_argument, 0, 'S' },
		{ "cursor", required_argument, 0, 'C' },
		{ "no-follow", no_argument, 0, 'N' },
		{ 0 },
	};
	unsigned long long since;
	char *end;
	int c;

	while ((c = sub_getopt(argc, argv, lo, "watch")) != -1) {
		if (c == 'j') {
			opt.json = true;
		} else if (c == 'P') {
			o->path = optarg;
			if (o->path[0] != '/')
				usage_error("watch: --path is relative to the "
					    "mount and starts with /");
		} else if (c == 'S') {
			errno = 0;
			since = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || since < 1 || since > INT64_MAX)
				usage_error("watch: --since wants a sequence "
					    "number, 1 or more");
			o->since = since;
		} else if (c == 'C') {
			o->cursor = optarg;
			if (!valid_cursor_name(optarg))
				usage_error("watch: a cursor name is 1 to %d "
					    "of A-Z, a-z, 0-9, _, . and -",
					    CACHEFS_EVENTS_CURSOR_MAX);
		} else if (c == 'N') {
			o->no_follow = true;
		} else {
			usage_error("watch: unknown option '%s'",
				    argv[optind - 1]);
		}
	}
	no_more_args(argc, argv, "watch");
}

static int watch_open(const struct cachefs_events_opts *o)
{
	char err[512];
	int r;

	r = cachefs_events_open(ws.socket, o, &ws.e, err, sizeof(err));
	if (r == 0)
		return EXIT_OK;
	if (r == -ETIMEDOUT)
		fprintf(stderr,
			"cachefsctl: no answer from the cachefs daemon of %s "
			"within %g s\n",
			ws.name, opt.timeout_ms / 1000.0);
	else if (r == -ENOENT || r == -ECONNREFUSED || r == -EACCES)
		fprintf(stderr,
			"cachefsctl: cannot reach the cachefs daemon of %s at "
			"%s: %s%s\n",
			ws.name, ws.socket, strerror(-r),
			r == -EACCES ? " (root or the ctl_group only)"
				     : " (is it running?)");
	else
		fprintf(stderr, "cachefsctl: %s: %s\n", ws.name, err);
	return r == -EINVAL ? EXIT_FAILED : EXIT_UNREACHABLE;
}

static int cmd_watch(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigint,
				/* a second signal stops a hung ack */
				.sa_flags = (int)SA_RESETHAND };
	struct cachefs_events_opts o = { .timeout_ms = opt.timeout_ms };
	struct conn c;
	int r;

	watch_options(argc, argv, &o);
	target_conns(&c, false);
	ws.name = conn_name(&c);
	ws.socket = c.socket;
	ws.cursor = o.cursor;
	r = watch_open(&o);
	if (r)
		return r;
	/* nothing before the stream's first record is for us to ack */
	if (cachefs_events_first(ws.e) > 1)
		ws.acked = ws.done = cachefs_events_first(ws.e) - 1;
	clock_gettime(CLOCK_MONOTONIC, &ws.last_ack);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = watch_loop();
	cachefs_events_close(ws.e);
	return r;
}

/* --- changes ------------------------------------------------------------- */

static struct {
	struct timespec since;
	dev_t dev;	    /* the backend's file system */
	char rel[PATH_MAX]; /* the crawl's root, relative to the mount */
	size_t root_len;    /* of its path in the backend */
	bool nul;
	int out_errno; /* standard output failed: stop */
	uint64_t entries, changed, errors;
} chg;

static bool at_or_after(const struct timespec *t, const struct timespec *ref)
{
	return t->tv_sec > ref->tv_sec ||
	       (t->tv_sec == ref->tv_sec && t->tv_nsec >= ref->tv_nsec);
}

static const char *type_name(mode_t mode)
{
	return S_ISREG(mode)   ? "file"
	       : S_ISDIR(mode) ? "dir"
	       : S_ISLNK(mode) ? "symlink"
			       : "other";
}

static json_int_t ns_of(const struct timespec *t)
{
	return (json_int_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* The path in the mount of what is below the crawl's root. */
static void mount_path(const char *below, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s",
		 strcmp(chg.rel, "/") || !*below ? chg.rel : "", below);
}

/* What could not be read or printed: said, and counted. */
static void changes_error(const char *path, const char *why)
{
	fprintf(stderr, "cachefsctl: changes: %s: %s\n", path, why);
	chg.errors++;
}

/* Print one changed entry; below is its path under the crawl's root. */
static void changes_print(const char *below, const struct stat *st)
{
	char path[PATH_MAX * 2];
	json_t *j;
	char *s;

	mount_path(below, path, sizeof(path));
	if (chg.nul) {
		if (fputs(path, stdout) == EOF || putchar('\0') == EOF)
			chg.out_errno = errno;
		return;
	}
	if (!opt.json) {
		if (puts(path) == EOF)
			chg.out_errno = errno;
		return;
	}
	j = json_pack("{s:s, s:s, s:I, s:I}", "path", path, "type",
		      type_name(st->st_mode), "mtime_ns", ns_of(&st->st_mtim),
		      "ctime_ns", ns_of(&st->st_ctim));
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s && puts(s) == EOF)
		chg.out_errno = errno;
	else if (!s) /* JSON strings are UTF-8 */
		changes_error(path, "not UTF-8: left out (use -0)");
	free(s);
	json_decref(j);
}

static int by_name(const FTSENT **a, const FTSENT **b)
{
	return strcmp((*a)->fts_name, (*b)->fts_name);
}

/* One entry of the crawl. */
static void changes_one(FTS *fts, FTSENT *ent)
{
	const struct stat *st = ent->fts_statp;
	char path[PATH_MAX * 2];

	switch (ent->fts_info) {
	case FTS_DP: /* the way back up */
	case FTS_DC: /* a cycle: bind mounts */
		return;
	case FTS_DNR:
	case FTS_NS:
	case FTS_ERR:
		/* gone during the crawl: nothing to say of it here */
		if (ent->fts_errno != ENOENT || ent->fts_level == 0) {
			mount_path(ent->fts_path + chg.root_len, path,
				   sizeof(path));
			changes_error(path, strerror(ent->fts_errno));
		}
		return;
	}
	if (st->st_dev != chg.dev) {
		/* another file system mounted in the backend */
		if (ent->fts_level == 0)
			changes_error(chg.rel, "on another file system than "
					       "the backend: not crawled");
		fts_set(fts, ent, FTS_SKIP);
		return;
	}
	chg.entries++;
	if (at_or_after(&st->st_mtim, &chg.since) ||
	    at_or_after(&st->st_ctim, &chg.since)) {
		chg.changed++;
		changes_print(ent->fts_path + chg.root_len, st);
	}
}

static int changes_walk(const char *root)
{
	char *paths[] = { (char *)root, NULL };
	FTSENT *ent;
	FTS *fts;

	/* physical: symbolic links are entries, never followed */
	fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, by_name);
	if (!fts) {
		fprintf(stderr, "cachefsctl: changes: %s: %s\n", root,
			strerror(errno));
		return EXIT_FAILED;
	}
	errno = 0;
	while (!chg.out_errno && (ent = fts_read(fts)))
		changes_one(fts, ent);
	if (errno && !chg.out_errno) {
		fprintf(stderr, "cachefsctl: changes: %s: %s\n", root,
			strerror(errno));
		chg.errors++;
	}
	fts_close(fts);
	return EXIT_OK;
}

/*
 * The crawl's root, backend + rel, checked to be in the backend: a
 * symbolic link on the way could lead anywhere.
 */
static int changes_root(const char *backend, char *root, size_t len)
{
	char path[PATH_MAX * 2], real[PATH_MAX], *slash;
	size_t n = strlen(backend);

	if (strcmp(chg.rel, "/") == 0) {
		snprintf(root, len, "%s", backend);
		return 0;
	}
	snprintf(path, sizeof(path), "%s%s", backend, chg.rel);
	slash = strrchr(path, '/');
	*slash = '\0';
	if (!realpath(path, real)) {
		fprintf(stderr, "cachefsctl: changes: %s%s: %s\n", backend,
			chg.rel, strerror(errno));
		return -1;
	}
	if (strncmp(real, backend, n) != 0 ||
	    (real[n] != '/' && real[n] != '\0')) {
		fprintf(stderr,
			"cachefsctl: changes: %s leads out of the backend "
			"(%s) through a symbolic link\n",
			chg.rel, backend);
		return -1;
	}
	snprintf(root, len, "%s/%s", real, slash + 1);
	return 0;
}

/* The backend directory of the daemon, canonical: 0, or an exit status. */
static int changes_backend(struct conn *c, char backend[PATH_MAX])
{
	json_t *status;
	struct stat st;
	int r;

	if (conn_open(c) < 0)
		return EXIT_UNREACHABLE;
	r = call(c, "status", NULL, &status);
	conn_close(c);
	if (r != EXIT_OK)
		return r;
	if (!json_is_string(json_object_get(status, "backend"))) {
		fprintf(stderr, "cachefsctl: %s: no backend in the status\n",
			conn_name(c));
		json_decref(status);
		return EXIT_UNREACHABLE;
	}
	if (!realpath(jstr(status, "backend"), backend) ||
	    lstat(backend, &st) < 0) {
		fprintf(stderr, "cachefsctl: changes: backend %s: %s\n",
			jstr(status, "backend"), strerror(errno));
		json_decref(status);
		return EXIT_FAILED;
	}
	json_decref(status);
	if (strcmp(backend, "/") == 0)
		backend[0] = '\0'; /* so that backend + "/x" is "/x" */
	chg.dev = st.st_dev;
	return 0;
}

/*
 * The daemon and the path relative to its mount: PATH is a path in a
 * mount (with -m, that one), or else relative to the mount.
 */
static void changes_target(const char *path, struct conn *c)
{
	if (!path) {
		target_conns(c, false);
		snprintf(chg.rel, sizeof(chg.rel), "/");
	} else if (opt.socket ||
		   !find_mount_of(path, c, chg.rel, sizeof(chg.rel))) {
		if (path[0] != '/') {
			fprintf(stderr,
				"cachefsctl: %s is not in a cachefs mount\n",
				path);
			exit(EXIT_UNREACHABLE);
		}
		target_conns(c, false);
		normalize(path, chg.rel, sizeof(chg.rel));
	}
}

static void changes_options(int argc, char **argv, const char **since)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' },
		{ "since", required_argument, 0, 'S' },
		{ "null", no_argument, 0, '0' },
		{ 0 },
	};
	struct timespec now;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:0", lo, NULL)) != -1) {
		if (c == 'j')
			opt.json = true;
		else if (c == 'S')
			*since = optarg;
		else if (c == '0')
			chg.nul = true;
		else if (c == ':')
			usage_error("changes: option '%s' needs a value",
				    argv[optind - 1]);
		else
			usage_error("changes: unknown option '%s'",
				    argv[optind - 1]);
	}
	if (!*since)
		usage_error("changes: --since TIME is needed");
	clock_gettime(CLOCK_REALTIME, &now);
	if (timespec_parse(*since, &now, &chg.since) < 0)
		usage_error("changes: bad TIME '%s' (seconds since the epoch, "
			    "2026-11-22T10:00:00Z, or an age: 90s, 15m, 2h, "
			    "3d)",
			    *since);
	if (chg.nul && opt.json)
		usage_error("changes: -0 and --json exclude each other");
	if (argc - optind > 1)
		usage_error("changes: one PATH at most");
}

static int cmd_changes(int argc, char **argv)
{
	char backend[PATH_MAX], root[PATH_MAX * 2], t[64];
	const char *since = NULL;
	struct conn c;
	int r;

	changes_options(argc, argv, &since);
	changes_target(optind < argc ? argv[optind] : NULL, &c);
	r = changes_backend(&c, backend);
	if (r)
		return r;
	if (changes_root(backend, root, sizeof(root)) < 0)
		return EXIT_FAILED;
	chg.root_len = strlen(root);
	r = changes_walk(root);
	if (!chg.out_errno && fflush(stdout) != 0)
		chg.out_errno = errno;
	if (chg.out_errno) {
		errno = chg.out_errno;
		return stdout_failed();
	}
	if (isatty(STDOUT_FILENO)) {
		format_utc(ns_of(&chg.since), chg.since.tv_nsec != 0, t,
			   sizeof(t));
		fprintf(stderr,
			"changes: %" PRIu64 " of %" PRIu64
			" entries changed since %s; %" PRIu64 " errors\n",
			chg.changed, chg.entries, t, chg.errors);
	}
	return r ? r : chg.errors ? EXIT_FAILED : EXIT_OK;
}

/* --- cursor -------------------------------------------------------------- */

static void print_cursors(json_t *data)
{
	json_t *cur, *lag;
	size_t k;

	printf("%-24s %12s %12s %12s %10s\n", "CURSOR", "ACKED",
	       "LAG RECORDS", "LAG BYTES", "LAG");
	json_array_foreach(json_object_get(data, "cursors"), k, cur) {
		lag = json_object_get(cur, "lag_seconds");
		printf("%-24s %12lld %12lld %12lld ", jstr(cur, "name"),
		       jint(cur, "acked"), jint(cur, "lag_records"),
		       jint(cur, "lag_bytes"));
		if (json_is_number(lag) && jint(cur, "lag_records"))
			printf("%9.1fs\n", json_number_value(lag));
		else
			printf("%10s\n", "-");
	}
}

static int cmd_cursor(int argc, char **argv)
{
	const char *verb = optind < argc ? argv[optind++] : NULL;
	struct conn c;
	json_t *data;
	int r;

	if (!verb)
		usage_error("cursor: say list or remove");
	if (strcmp(verb, "list") == 0) {
		no_more_args(argc, argv, "cursor list");
		r = call_one("cursor.list", NULL, &data, &c);
		if (r == EXIT_OK && opt.json)
			print_json(data);
		else if (r == EXIT_OK)
			print_cursors(data);
	} else if (strcmp(verb, "remove") == 0) {
		if (argc - optind != 1)
			usage_error("cursor remove: needs one NAME");
		if (!valid_cursor_name(argv[optind]))
			usage_error("cursor remove: no cursor is named '%s'",
				    argv[optind]);
		r = call_one("cursor.remove",
			     json_pack("{s:s}", "name", argv[optind]), &data,
			     &c);
		if (r == EXIT_OK && opt.json)
			print_json(data);
		else if (r == EXIT_OK)
			printf("cursor %s removed\n", argv[optind]);
	} else {
		usage_error("cursor: unknown verb '%s' (list or remove)", verb);
	}
	json_decref(data);
	conn_close(&c);
	return r;
}

/* --- mirror ------------------------------------------------------------ */

static void print_mirror(json_t *m)
{
	json_t *rs = json_object_get(m, "resync");

	printf("%s: %s", jstr(m, "name"), jstr(m, "state"));
	if (jint(m, "lag_records")) {
		printf(", %lld records (", jint(m, "lag_records"));
		print_bytes((uint64_t)jint(m, "lag_bytes"));
		printf(", %.1f s) behind", jnum(m, "lag_seconds"));
	}
	if (jnum(m, "files_per_second") > 0) {
		printf(", %.0f files/s (", jnum(m, "files_per_second"));
		print_bytes((uint64_t)jnum(m, "bytes_per_second"));
		printf("/s)");
	}
	printf("\n  %-10s %s\n", "url", jstr(m, "url"));
	if (json_is_string(json_object_get(m, "error")))
		printf("  %-10s %s%s\n", "error", jstr(m, "error"),
		       jint(m, "failing_since") ? " (failing since " : "");
	if (json_is_string(json_object_get(m, "error")) &&
	    jint(m, "failing_since")) {
		time_t t = (time_t)jint(m, "failing_since");
		char buf[32];

		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("  %-10s %s\n", "since", buf);
	}
	printf("  %-10s record %lld; %lld files, ", "replayed",
	       jint(m, "acked"), jint(m, "files"));
	print_bytes((uint64_t)jint(m, "bytes"));
	printf(", %lld steps, %lld retries, %lld conflicts, %lld skipped\n",
	       jint(m, "steps"), jint(m, "retries"), jint(m, "conflicts"),
	       jint(m, "skipped"));
	if (jint(rs, "compared"))
		printf("  %-10s %lld compared (%lld by content), %lld "
		       "uploaded, %lld removed\n",
		       "resync", jint(rs, "compared"),
		       jint(rs, "content_compared"), jint(rs, "uploaded"),
		       jint(rs, "removed"));
}

/* One mirror's status object, or NULL (with a message) if there is none. */
static json_t *mirror_get(struct conn *c, const char *name, json_int_t *newest,
			  int *r)
{
	json_t *data, *m;

	*r = call(c, "mirror.status", json_pack("{s:s}", "name", name), &data);
	if (*r != EXIT_OK)
		return NULL;
	*newest = jint(data, "newest");
	m = json_incref(json_array_get(json_object_get(data, "mirrors"), 0));
	json_decref(data);
	return m;
}

/*
 * Wait until mirror name has replayed every record up to target (sync),
 * or has done more than resyncs resyncs (resyncs >= 0): 0 once it has, 1
 * on a timeout (an error shown), or an exit status.
 */
static int mirror_wait(struct conn *c, const char *name, json_int_t resyncs,
		       double timeout)
{
	struct timespec t0, now, last = { 0 };
	bool tty = isatty(STDERR_FILENO);
	json_int_t newest, target = -1;
	json_t *m;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		m = mirror_get(c, name, &newest, &r);
		if (!m)
			return r;
		if (target < 0)
			target = newest;
		if (tty && progress_due(&last, false)) {
			json_t *rs = json_object_get(m, "resync");

			fprintf(stderr, "\r%s: %s, record %lld of %lld; resync "
					"%lld compared, %lld uploaded, %lld "
					"removed   ",
				name, jstr(m, "state"), jint(m, "acked"),
				target, jint(rs, "compared"),
				jint(rs, "uploaded"), jint(rs, "removed"));
		}
		if (resyncs >= 0 ? jint(json_object_get(m, "resync"), "done") >
					   resyncs
				 : jint(m, "acked") >= target &&
					   (!strcmp(jstr(m, "state"), "ok") ||
					    !strcmp(jstr(m, "state"),
						    "catching up"))) {
			if (tty)
				fprintf(stderr, "\n");
			json_decref(m);
			return EXIT_OK;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (interrupted ||
		    (timeout > 0 && (double)(now.tv_sec - t0.tv_sec) +
						    (double)(now.tv_nsec -
							     t0.tv_nsec) /
							    1e9 >
					    timeout)) {
			fprintf(stderr,
				"%scachefsctl: mirror %s: %s at record %lld of "
				"%lld%s%s\n",
				tty ? "\n" : "", name,
				interrupted ? "interrupted" : "timed out",
				jint(m, "acked"), target,
				json_is_string(json_object_get(m, "error"))
					? "; last error: "
					: "",
				json_is_string(json_object_get(m, "error"))
					? jstr(m, "error")
					: "");
			json_decref(m);
			return EXIT_FAILED;
		}
		json_decref(m);
		poll(NULL, 0, 100);
	}
}

static int cmd_mirror(int argc, char **argv)
{
	const char *verb = optind < argc ? argv[optind++] : NULL;
	const char *act = NULL;
	double timeout = 0;
	bool checksum = false;
	struct conn c;
	json_t *data = NULL, *args = NULL;
	size_t k;
	char *end;
	int r;

	if (!verb)
		usage_error("mirror: say status, add, remove, retry, pause, "
			    "resume, sync or resync");
	/* options anywhere after the verb: the arguments kept in order */
	for (int a = optind, w = optind; a <= argc; a++) {
		if (a < argc && !strcmp(argv[a], "--timeout")) {
			if (a + 1 >= argc)
				usage_error("mirror: --timeout needs SECONDS");
			timeout = strtod(argv[++a], &end);
			if (*end || !(timeout > 0))
				usage_error("mirror: bad --timeout '%s'",
					    argv[a]);
			continue;
		}
		if (a < argc && !strcmp(argv[a], "--checksum") &&
		    !strcmp(verb, "resync")) {
			checksum = true;
			continue;
		}
		if (a < argc && argv[a][0] == '-' && argv[a][1])
			usage_error("mirror: unknown option '%s'", argv[a]);
		argv[w++] = a < argc ? argv[a] : NULL;
		if (a == argc)
			argc = w - 1;
	}
	if (!strcmp(verb, "status")) {
		if (argc - optind > 1)
			usage_error("mirror status: at most one NAME");
		if (argc - optind == 1)
			args = json_pack("{s:s}", "name", argv[optind]);
		r = call_one("mirror.status", args, &data, &c);
		if (r == EXIT_OK && opt.json)
			print_json(data);
		else if (r == EXIT_OK) {
			json_t *m;

			json_array_foreach(json_object_get(data, "mirrors"), k,
					   m)
				print_mirror(m);
			if (!json_array_size(json_object_get(data, "mirrors")))
				printf("no mirrors\n");
		}
		goto out;
	}
	if (!strcmp(verb, "add")) {
		if (argc - optind != 2)
			usage_error("mirror add: needs NAME and URL");
		r = call_one("mirror.add",
			     json_pack("{s:s, s:s}", "name", argv[optind],
				       "url", argv[optind + 1]),
			     &data, &c);
		if (r == EXIT_OK)
			printf("mirror %s added; it starts with a resync\n",
			       argv[optind]);
		goto out;
	}
	if (argc - optind != 1)
		usage_error("mirror %s: needs one NAME", verb);
	if (!strcmp(verb, "remove"))
		act = "mirror.remove";
	else if (!strcmp(verb, "retry"))
		act = "mirror.retry";
	else if (!strcmp(verb, "pause"))
		act = "mirror.pause";
	else if (!strcmp(verb, "resume"))
		act = "mirror.resume";
	else if (!strcmp(verb, "resync"))
		act = "mirror.resync";
	else if (strcmp(verb, "sync") != 0)
		usage_error("mirror: unknown verb '%s'", verb);
	if (act) {
		json_int_t done = -1, newest;
		json_t *m;

		target_conns(&c, false);
		if (conn_open(&c) < 0)
			return EXIT_UNREACHABLE;
		/* a resync is done when the count of them goes up */
		if (!strcmp(verb, "resync")) {
			m = mirror_get(&c, argv[optind], &newest, &r);
			if (!m)
				goto out;
			done = jint(json_object_get(m, "resync"), "done");
			json_decref(m);
		}
		args = json_pack("{s:s}", "name", argv[optind]);
		if (args && checksum)
			json_object_set_new(args, "content", json_true());
		r = call(&c, act, args, &data);
		args = NULL;
		if (r == EXIT_OK && done >= 0) {
			signal(SIGINT, on_sigint);
			r = mirror_wait(&c, argv[optind], done, timeout);
		}
		if (r == EXIT_OK && !opt.json)
			printf("mirror %s: %s%s\n", argv[optind], verb,
			       strcmp(verb, "resync") ? "" : " done");
		goto out;
	}
	/* sync: wait for what the journal holds now */
	target_conns(&c, false);
	if (conn_open(&c) < 0)
		return EXIT_UNREACHABLE;
	signal(SIGINT, on_sigint);
	r = mirror_wait(&c, argv[optind], -1, timeout);
	if (r == EXIT_OK && !opt.json)
		printf("mirror %s: in sync\n", argv[optind]);
out:
	json_decref(data);
	conn_close(&c);
	return r;
}

static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
	const char *help;
} commands[] = {
	{ "status", cmd_status, "status [--json]",
	  "the mount at a glance; every cachefs mount unless -m or -s" },
	{ "stats", cmd_stats, "stats [--json] [--reset]",
	  "every counter and latency histogram; --reset starts afresh" },
	{ "config", cmd_config, "config get [NAME] | config set NAME VALUE",
	  "show options; change one marked changeable at run time" },
	{ "trace", cmd_trace,
	  "trace on [--pid PID] [--path PREFIX] | trace off | "
	  "trace show [--json] [--follow] [-n N]",
	  "record every operation; show the newest N (100), or follow" },
	{ "log", cmd_log, "log reopen",
	  "reopen the log and trace files (logrotate); every mount unless "
	  "-m or -s" },
	{ "cache", cmd_cache, "cache on|off",
	  "off: every request goes to the backend, and the kernel's cached "
	  "attributes and pages are dropped" },
	{ "invalidate", cmd_invalidate, "invalidate [-r] PATH",
	  "make the kernel and the caches forget PATH (a path in a "
	  "mount), and with -r of everything below" },
	{ "preload", cmd_preload, "preload [-r] PATH",
	  "store the files at or below PATH (one level, or all with -r) "
	  "from the backend in memcached, for nginx; a summary of what was "
	  "stored and what was not, and why" },
	{ "warm", cmd_warm, "warm [-r] [--max-size BYTES] PATH",
	  "read attributes, links and files up to 1 MiB below PATH through "
	  "the mount into the caches (one level, or all with -r)" },
	{ "watch", cmd_watch,
	  "watch [--json] [--path PREFIX] [--since SEQ] [--cursor NAME] "
	  "[--no-follow]",
	  "print the changes made through the mount as they come, from its "
	  "journal; with --cursor, resume where the last run stopped" },
	{ "changes", cmd_changes, "changes --since TIME [--json] [-0] [PATH]",
	  "list the files and directories of the backend below PATH changed "
	  "since TIME (what a gap in watch hides)" },
	{ "cursor", cmd_cursor, "cursor list | cursor remove NAME",
	  "the journal's cursors and how far behind they are; remove one" },
	{ "mirror", cmd_mirror,
	  "mirror status [NAME] | mirror add NAME URL | mirror remove NAME | "
	  "mirror retry|pause|resume NAME | mirror sync NAME [--timeout S] | "
	  "mirror resync NAME [--checksum] [--timeout S]",
	  "the mirrors the journal is replayed to; sync waits until a mirror "
	  "has every change made so far" },
	{ "call", cmd_call, "call COMMAND [JSON-ARGS]",
	  "send a raw protocol request, print the JSON answer" },
	{ "help", cmd_help, "help", "this list" },
	{ NULL },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cachefsctl [-m MOUNTPOINT | -s SOCKET] [-j] [-t SECONDS] "
		"COMMAND [ARGS]\n\n"
		"  -m, --mount MOUNTPOINT  the cachefs mounted there\n"
		"  -s, --socket SOCKET     the daemon at this control socket\n"
		"  -j, --json              print JSON\n"
		"  -t, --timeout SECONDS   wait this long for an answer (10)\n"
		"  -h, --help              this help\n"
		"  -V, --version           the version\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(out, "  %s\n      %s\n", c->synopsis, c->help);
	fprintf(out, "\nExit status: 0 ok, 1 failed, 2 usage error, 3 daemon "
		     "unreachable.  See cachefsctl(8).\n");
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mount", required_argument, 0, 'm' },
		{ "socket", required_argument, 0, 's' },
		{ "json", no_argument, 0, 'j' },
		{ "timeout", required_argument, 0, 't' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0 },
	};
	const struct command *cmd;
	double t;
	char *end;
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:m:s:jt:hV", lo, NULL)) != -1) {
		switch (o) {
		case 'm':
			opt.mount = optarg;
			break;
		case 's':
			opt.socket = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 't':
			t = strtod(optarg, &end);
			if (*end || !(t > 0) || t > 86400)
				usage_error("bad timeout '%s'", optarg);
			opt.timeout_ms = (int)ceil(t * 1000);
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("cachefsctl %s\n", CACHEFS_VERSION);
			return EXIT_OK;
		case ':':
			usage_error("option '%s' needs a value",
				    argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (opt.mount && opt.socket)
		usage_error("-m and -s exclude each other");
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (cmd = commands; cmd->name; cmd++)
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	if (!cmd->name)
		usage_error("unknown command '%s'", argv[optind]);
	optind++;
	/* --json (-j) is taken after the command too, by every command. */
	for (int k = optind, w = optind; k <= argc; k++) {
		if (k < argc && (strcmp(argv[k], "--json") == 0 ||
				 strcmp(argv[k], "-j") == 0)) {
			opt.json = true;
			continue;
		}
		argv[w++] = k < argc ? argv[k] : NULL;
		if (k == argc)
			argc = w - 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmd->run(argc, argv);
}
