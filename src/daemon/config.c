// SPDX-License-Identifier: MIT
/*
 * The option table: the one place where a cachefs option is declared.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const journal_syncs[] = { "always", "interval", "never",
						   NULL };
static const char *const journal_fulls[] = { "fail", "drop", NULL };
static const char *const mirror_conflicts[] = { "overwrite", "stop", NULL };
static const char *const rdma_completions[] = { "auto", "cq_data",
						"delivery", NULL };
static const char *const log_levels[] = { "error", "warning", "notice",
					  "info", "debug", NULL };

#define OFF(field) offsetof(struct config, field)

const struct option_def config_options[] = {
	{
		.name = "entry_timeout",
		.type = OPT_DURATION,
		.offset = OFF(entry_timeout),
		.def = "1h",
		.flags = OPT_RUNTIME,
		.help = "how long the kernel may trust a name lookup",
	},
	{
		.name = "attr_timeout",
		.type = OPT_DURATION,
		.offset = OFF(attr_timeout),
		.def = "1h",
		.flags = OPT_RUNTIME,
		.help = "how long the kernel may trust file attributes",
	},
	{
		.name = "negative_timeout",
		.type = OPT_DURATION,
		.offset = OFF(negative_timeout),
		.def = "1h",
		.flags = OPT_RUNTIME,
		.help = "how long the kernel may remember that a name does "
			"not exist (0 disables)",
	},
	{
		.name = "file_handles",
		.type = OPT_BOOL,
		.offset = OFF(file_handles),
		.def = "on",
		.help = "identify backend inodes by file handle so that open "
			"descriptors stay bounded; off pins one descriptor per "
			"inode",
	},
	{
		.name = "fd_cache",
		.type = OPT_UINT,
		.offset = OFF(fd_cache),
		.def = "0",
		.help = "backend O_PATH descriptors kept open for fast access "
			"(0: a quarter of the open-file limit)",
	},
	{
		.name = "no_open",
		.type = OPT_BOOL,
		.offset = OFF(no_open),
		.def = "on",
		.help = "the kernel opens and closes files without asking the "
			"daemon; reads and writes share one backend descriptor "
			"per file",
	},
	{
		.name = "no_opendir",
		.type = OPT_BOOL,
		.offset = OFF(no_opendir),
		.def = "on",
		.help = "the kernel opens and closes directories without "
			"asking the daemon; a listing it no longer caches is "
			"read from the backend, or from memory",
	},
	{
		.name = "write_only_direct",
		.type = OPT_BOOL,
		.offset = OFF(write_only_direct),
		.def = "on",
		.help = "files opened write-only by a create, or by any open "
			"with no_open off, write around the kernel's page "
			"cache: one round trip per write instead of two",
	},
	{
		.name = "splice",
		.type = OPT_BOOL,
		.offset = OFF(splice),
		.def = "on",
		.help = "move file data between the backend and the kernel "
			"with splice(2) instead of copying it",
	},
	{
		.name = "acl",
		.type = OPT_BOOL,
		.offset = OFF(acl),
		.def = "on",
		.help = "enforce the POSIX ACLs stored on the backend, as the "
			"backend itself would",
	},
	{
		.name = "threads",
		.type = OPT_UINT,
		.offset = OFF(threads),
		.def = "32",
		.help = "most worker threads serving requests (1: "
			"single-threaded)",
	},
	{
		.name = "idle_threads",
		.type = OPT_UINT,
		.offset = OFF(idle_threads),
		.def = "8",
		.help = "worker threads kept waiting when the mount is idle",
	},
	{
		.name = "clone_fd",
		.type = OPT_BOOL,
		.offset = OFF(clone_fd),
		.def = "on",
		.help = "give every worker thread its own /dev/fuse descriptor",
	},
	{
		.name = "cache",
		.type = OPT_BOOL,
		.offset = OFF(cache),
		.def = "on",
		.flags = OPT_RUNTIME,
		.help = "let the kernel cache names and attributes; off sends "
			"every request to the backend",
	},
	{
		.name = "cache_size",
		.type = OPT_SIZE,
		.offset = OFF(cache_size),
		.def = "256M",
		.help = "memory for the in-process cache of small files' "
			"bytes (K, M, G suffixes; 0 disables it)",
	},
	{
		.name = "max_cached_file",
		.type = OPT_SIZE,
		.offset = OFF(max_cached_file),
		.def = "1M",
		.help = "largest file whose bytes the in-process cache keeps",
	},
	{
		.name = "memcached",
		.type = OPT_STRING,
		.offset = OFF(memcached),
		.def = "",
		.meta = "HOST:PORT;...",
		.help = "keep small files in this memcached pool too, under "
			"keys nginx's memcached_pass can serve (or a "
			"libmemcached configuration string, --SERVER=...)",
	},
	{
		.name = "memcached_prefix",
		.type = OPT_STRING,
		.offset = OFF(memcached_prefix),
		.def = "",
		.meta = "STRING",
		.help = "what every memcached key starts with (nginx: "
			"$memcached_key \"STRING$uri\")",
	},
	{
		.name = "memcached_max_file",
		.type = OPT_SIZE,
		.offset = OFF(memcached_max_file),
		.def = "1M",
		.help = "largest file kept in memcached (the server's item "
			"size limit applies too)",
	},
	{
		.name = "memcached_timeout",
		.type = OPT_DURATION,
		.offset = OFF(memcached_timeout),
		.def = "50ms",
		.help = "how long a memcached request may take before the "
			"pool is skipped (and retried later)",
	},
	{
		.name = "memcached_ttl",
		.type = OPT_DURATION,
		.offset = OFF(memcached_ttl),
		.def = "1h",
		.help = "how long memcached keeps a file: the bound on "
			"serving a file changed on the backend directly that "
			"no cachefs mount remembers (0: until evicted)",
	},
	{
		.name = "offline",
		.type = OPT_BOOL,
		.offset = OFF(offline),
		.def = "off",
		.flags = OPT_RUNTIME,
		.help = "when the backend fails (EIO, ETIMEDOUT, ESTALE, "
			"ENOTCONN), answer lookups, attributes and reads from "
			"what is cached",
	},
	{
		.name = "revalidate",
		.type = OPT_DURATION,
		.offset = OFF(revalidate),
		.def = "1s",
		.flags = OPT_RUNTIME,
		.help = "how often what the kernel caches is compared with the "
			"backend, so that changes made there show within this "
			"bound (0 disables)",
	},
	{
		.name = "max_names",
		.type = OPT_UINT,
		.offset = OFF(max_names),
		.def = "1000000",
		.help = "most directory entries (missing names included) "
			"remembered for the kernel; beyond it the oldest "
			"directories' entries are dropped from the kernel too "
			"(0: no bound)",
	},
	{
		.name = "lookahead",
		.type = OPT_UINT,
		.offset = OFF(lookahead),
		.def = "128",
		.flags = OPT_RUNTIME,
		.help = "once the kernel looked up a name in a directory, read "
			"up to this many entries of the directory through the "
			"mount in the background, so that the kernel holds "
			"entries for its other names (0 disables)",
	},
	{
		.name = "listen",
		.type = OPT_STRING,
		.offset = OFF(listen),
		.def = "",
		.meta = "[ADDR:]PORT",
		.help = "receive peers' change datagrams here (UDP, 127.0.0.1 "
			"unless ADDR is given)",
	},
	{
		.name = "peers",
		.type = OPT_STRING,
		.offset = OFF(peers),
		.def = "",
		.meta = "HOST:PORT[;HOST:PORT...]",
		.help = "tell these cachefs peers over the same backend what "
			"changed through this mount (separated by ; or by "
			"commas escaped as \\,)",
	},
	{
		.name = "peer_secret_file",
		.type = OPT_STRING,
		.offset = OFF(peer_secret_file),
		.def = "",
		.meta = "PATH",
		.help = "the secret shared by the peers, which authenticates "
			"their datagrams (needed with listen and peers)",
	},
	{
		.name = "notify",
		.type = OPT_STRING,
		.offset = OFF(notify),
		.def = "",
		.meta = "HOST:PORT",
		.help = "send one UDP datagram per change, in libiorouter's "
			"format (its listeners use 127.0.0.1:12345)",
	},
	{
		.name = "journal",
		.type = OPT_BOOL,
		.offset = OFF(journal),
		.def = "on",
		.help = "record every change made through the mount in a "
			"durable journal under state_dir, before the call "
			"returns (what watch, the events API and mirrors read)",
	},
	{
		.name = "state_dir",
		.type = OPT_STRING,
		.offset = OFF(state_dir),
		.def = "",
		.meta = "DIR",
		.help = "where the journal and its cursors are kept (default: "
			"/var/lib/cachefs/<escaped mount point>)",
	},
	{
		.name = "journal_sync",
		.type = OPT_ENUM,
		.offset = OFF(journal_sync),
		.def = "interval",
		.choices = journal_syncs,
		.help = "when a change's record is made durable before the "
			"call returns: always (fdatasync per change), interval "
			"(one fdatasync covers the changes of "
			"journal_sync_interval) or never (a crash of the "
			"machine may lose records; a crash of cachefs does "
			"not)",
	},
	{
		.name = "journal_sync_interval",
		.type = OPT_DURATION,
		.offset = OFF(journal_sync_interval),
		.def = "20ms",
		.help = "how long a change may wait for the fdatasync that "
			"covers others too, with journal_sync=interval",
	},
	{
		.name = "journal_max",
		.type = OPT_SIZE,
		.offset = OFF(journal_max),
		.def = "1G",
		.help = "bound on the journal's size (at least 256K; 0: none); "
			"status raises an alarm at 90% when cursors hold it",
	},
	{
		.name = "journal_full",
		.type = OPT_ENUM,
		.offset = OFF(journal_full),
		.def = "fail",
		.choices = journal_fulls,
		.help = "what gives way when cursors hold a full journal: fail "
			"(changes fail with ENOSPC until a consumer catches "
			"up) or drop (the oldest records go, and consumers "
			"behind them get a gap)",
	},
	{
		.name = "mirror",
		.type = OPT_STRING,
		.offset = OFF(mirror),
		.def = "",
		.flags = OPT_REPEAT,
		.meta = "NAME=URL",
		.help = "replay the journal to this mirror, "
			"sftp://USER@HOST[:PORT]/PATH?identity=FILE&"
			"known_hosts=FILE or s3://BUCKET[/PREFIX]?endpoint=URL&"
			"region=REGION&credentials=FILE (repeatable)",
	},
	{
		.name = "mirror_conflict",
		.type = OPT_ENUM,
		.offset = OFF(mirror_conflict),
		.def = "overwrite",
		.flags = OPT_RUNTIME,
		.choices = mirror_conflicts,
		.help = "when a mirror was changed behind cachefs (a rename "
			"finds no source): overwrite (upload what the backend "
			"has, and report it) or stop (the mirror stops until "
			"resynced)",
	},
	{
		.name = "mirror_alert",
		.type = OPT_STRING,
		.offset = OFF(mirror_alert),
		.def = "",
		.meta = "COMMAND",
		.help = "run this shell command when a mirror has been failing "
			"for mirror_alert_after (CACHEFS_MIRROR and "
			"CACHEFS_MIRROR_ERROR in its environment)",
	},
	{
		.name = "mirror_alert_after",
		.type = OPT_DURATION,
		.offset = OFF(mirror_alert_after),
		.def = "5m",
		.flags = OPT_RUNTIME,
		.help = "how long a mirror fails before mirror_alert runs",
	},
	{
		.name = "rdma",
		.type = OPT_STRING,
		.offset = OFF(rdma),
		.def = "",
		.meta = "[ADDR:]PORT",
		.help = "serve reads to remote clients (cachefs-get, "
			"libcachefs) over RDMA on this port, of 127.0.0.1 "
			"unless ADDR is given; another address needs "
			"rdma_secret_file (default: off)",
	},
	{
		.name = "rdma_provider",
		.type = OPT_STRING,
		.offset = OFF(rdma_provider),
		.def = "",
		.meta = "NAME",
		.help = "the libfabric provider for rdma, e.g. verbs or tcp "
			"(default: the first of verbs;ofi_rxm and tcp;ofi_rxm "
			"that works)",
	},
	{
		.name = "rdma_secret_file",
		.type = OPT_STRING,
		.offset = OFF(rdma_secret_file),
		.def = "",
		.meta = "PATH",
		.help = "the secret RDMA clients must prove they know before "
			"any request (at least 8 bytes)",
	},
	{
		.name = "rdma_user",
		.type = OPT_STRING,
		.offset = OFF(rdma_user),
		.def = "",
		.meta = "USER",
		.help = "RDMA clients read as this user, with its groups: "
			"they see what it may read (default: nobody)",
	},
	{
		.name = "rdma_completion",
		.type = OPT_ENUM,
		.offset = OFF(rdma_completion),
		.def = "auto",
		.choices = rdma_completions,
		.help = "how an RMA-written read tells the client its bytes "
			"landed: cq_data (the write carries the request's tag "
			"as remote CQ data), delivery (the reply follows the "
			"write's FI_DELIVERY_COMPLETE, a round trip more) or "
			"auto (cq_data where the provider has it)",
	},
	{
		.name = "rdma_max_requests",
		.type = OPT_UINT,
		.offset = OFF(rdma_max_requests),
		.def = "64",
		.help = "requests an RDMA client may have in flight (1 to "
			"1024)",
	},
	{
		.name = "rdma_max_memory",
		.type = OPT_SIZE,
		.offset = OFF(rdma_max_memory),
		.def = "64M",
		.help = "bytes of reads an RDMA client may have in flight (4M "
			"to 1G); the server's buffers for all clients are "
			"bounded by four times this",
	},
	{
		.name = "ctl_socket",
		.type = OPT_STRING,
		.offset = OFF(ctl_socket),
		.def = "",
		.meta = "PATH",
		.help = "control socket for cachefsctl (default: "
			"/run/cachefs/<escaped mount point>.sock)",
	},
	{
		.name = "ctl_group",
		.type = OPT_STRING,
		.offset = OFF(ctl_group),
		.def = "",
		.meta = "GROUP",
		.help = "group allowed to use the control socket (default: "
			"root only)",
	},
	{
		.name = "metrics",
		.type = OPT_STRING,
		.offset = OFF(metrics),
		.def = "",
		.meta = "[ADDR:]PORT",
		.help = "serve Prometheus metrics over HTTP at /metrics, on "
			"127.0.0.1 unless ADDR is given (default: off)",
	},
	{
		.name = "trace_file",
		.type = OPT_STRING,
		.offset = OFF(trace_file),
		.def = "",
		.flags = OPT_RUNTIME,
		.meta = "PATH",
		.help = "also append the operation trace, while it is on, to "
			"this file",
	},
	{
		.name = "log_level",
		.type = OPT_ENUM,
		.offset = OFF(log_level),
		.def = "notice",
		.flags = OPT_RUNTIME,
		.choices = log_levels,
		.help = "least important messages logged: error, warning, "
			"notice, info or debug",
	},
	{
		.name = "log_file",
		.type = OPT_STRING,
		.offset = OFF(log_file),
		.def = "",
		.meta = "PATH",
		.help = "log to this file instead of standard error or syslog; "
			"reopened by \"cachefsctl log reopen\" and SIGHUP",
	},
	{ .name = NULL },
};

const struct option_def *config_find(const char *name)
{
	for (const struct option_def *od = config_options; od->name; od++)
		if (strcmp(od->name, name) == 0)
			return od;
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1", NULL };
	static const char *const no[] = { "off", "no", "false", "0", NULL };

	for (int i = 0; yes[i]; i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
	for (int i = 0; no[i]; i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	return -EINVAL;
}

static int parse_uint(const char *v, unsigned *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n > UINT_MAX)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Bytes, with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *v, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long n;
	const char *u;
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		if (end[1] && strcmp(end + 1, "iB") != 0 &&
		    strcmp(end + 1, "B") != 0)
			return -EINVAL;
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		for (long k = 0; k <= u - units; k++) {
			if (n > UINT64_MAX / 1024)
				return -EINVAL;
			n *= 1024;
		}
	}
	*out = n;
	return 0;
}

static int parse_duration(const char *v, double *out)
{
	static const struct {
		const char *suffix;
		double scale;
	} units[] = { { "", 1 },     { "s", 1 },      { "ms", 1e-3 },
		      { "us", 1e-6 }, { "m", 60 },     { "min", 60 },
		      { "h", 3600 },  { "d", 86400 } };
	char *end;
	double d;

	if ((*v < '0' || *v > '9') && *v != '.')
		return -EINVAL;
	errno = 0;
	d = strtod(v, &end);
	if (errno || !isfinite(d) || d < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			*out = d * units[i].scale;
			return 0;
		}
	}
	return -EINVAL;
}

int config_set(struct config *cfg, const struct option_def *od,
	       const char *value, char *err, size_t errlen)
{
	void *field = (char *)cfg + od->offset;
	int r = -EINVAL;

	if (!value) {
		if (od->type != OPT_BOOL) {
			snprintf(err, errlen, "option '%s' needs a value",
				 od->name);
			return -EINVAL;
		}
		value = "on";
	}

	switch (od->type) {
	case OPT_BOOL:
		r = parse_bool(value, field);
		if (r < 0)
			snprintf(err, errlen,
				 "option '%s': '%s' is not on or off",
				 od->name, value);
		break;
	case OPT_UINT:
		r = parse_uint(value, field);
		if (r < 0)
			snprintf(err, errlen,
				 "option '%s': '%s' is not a non-negative "
				 "integer",
				 od->name, value);
		break;
	case OPT_SIZE:
		r = parse_size(value, field);
		if (r < 0)
			snprintf(err, errlen,
				 "option '%s': '%s' is not a size "
				 "(examples: 4096, 512K, 256M, 1G)",
				 od->name, value);
		break;
	case OPT_DURATION:
		r = parse_duration(value, field);
		if (r < 0)
			snprintf(err, errlen,
				 "option '%s': '%s' is not a duration "
				 "(examples: 1.5, 200ms, 10s, 5m, 1h)",
				 od->name, value);
		break;
	case OPT_STRING: {
		char *old = *(char **)field, *dup = NULL;

		if ((od->flags & OPT_REPEAT) && old && value[0]) {
			if (asprintf(&dup, "%s\n%s", old, value) < 0)
				dup = NULL;
		} else if (value[0]) {
			dup = strdup(value);
		}
		if (value[0] && !dup) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case OPT_ENUM:
		for (int i = 0; od->choices[i]; i++) {
			if (strcmp(value, od->choices[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		snprintf(err, errlen, "option '%s': '%s' is not one of",
			 od->name, value);
		for (int i = 0; od->choices[i]; i++) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, "%s %s", i ? "," : "",
				 od->choices[i]);
		}
		break;
	}
	return r;
}

/* The shortest exact form: 1048576 as 1M. */
static void format_size(char *buf, size_t len, uint64_t n)
{
	static const char units[] = "KMGT";
	int k = -1;

	while (k < 3 && n && n % 1024 == 0) {
		n /= 1024;
		k++;
	}
	if (k < 0)
		snprintf(buf, len, "%llu", (unsigned long long)n);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)n, units[k]);
}

void config_format(const struct config *cfg, const struct option_def *od,
		   char *buf, size_t len)
{
	const void *field = (const char *)cfg + od->offset;

	switch (od->type) {
	case OPT_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "on" : "off");
		break;
	case OPT_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)field);
		break;
	case OPT_SIZE:
		format_size(buf, len, *(const uint64_t *)field);
		break;
	case OPT_DURATION:
		snprintf(buf, len, "%gs", *(const double *)field);
		break;
	case OPT_ENUM:
		snprintf(buf, len, "%s", od->choices[*(const int *)field]);
		break;
	case OPT_STRING:
		snprintf(buf, len, "%s",
			 *(char *const *)field ? *(char *const *)field : "");
		break;
	}
}

int config_set_live(struct config *cfg, const struct option_def *od,
		    const char *value, char *err, size_t errlen)
{
	void *field = (char *)cfg + od->offset;
	struct config aside = { 0 };
	void *src = (char *)&aside + od->offset;
	int r;

	if (!(od->flags & OPT_RUNTIME)) {
		snprintf(err, errlen,
			 "option '%s' cannot be changed while mounted",
			 od->name);
		return -EPERM;
	}
	r = config_set(&aside, od, value, err, errlen);
	if (r < 0)
		return r;
	switch (od->type) {
	case OPT_BOOL:
		__atomic_store_n((bool *)field, *(bool *)src,
				 __ATOMIC_RELAXED);
		break;
	case OPT_UINT:
		__atomic_store_n((unsigned *)field, *(unsigned *)src,
				 __ATOMIC_RELAXED);
		break;
	case OPT_SIZE:
		__atomic_store_n((uint64_t *)field, *(uint64_t *)src,
				 __ATOMIC_RELAXED);
		break;
	case OPT_DURATION:
		__atomic_store((double *)field, (double *)src,
			       __ATOMIC_RELAXED);
		break;
	case OPT_ENUM:
		__atomic_store_n((int *)field, *(int *)src, __ATOMIC_RELAXED);
		break;
	case OPT_STRING:
		free(__atomic_exchange_n((char **)field, *(char **)src,
					 __ATOMIC_RELAXED));
		break;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	for (const struct option_def *od = config_options; od->name; od++) {
		if (od->type == OPT_STRING) {
			char **field = (char **)((char *)cfg + od->offset);

			free(*field);
			*field = NULL;
		}
	}
}

void config_defaults(struct config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (const struct option_def *od = config_options; od->name; od++) {
		/* The defaults are part of the table; they always parse. */
		if (config_set(cfg, od, od->def, err, sizeof(err)) < 0)
			abort();
	}
}

void config_print_help(FILE *out)
{
	for (const struct option_def *od = config_options; od->name; od++) {
		fprintf(out, "    -o %s=%s%s\n", od->name,
			od->type == OPT_BOOL	     ? "on|off"
			: od->type == OPT_UINT	     ? "N"
			: od->type == OPT_SIZE	     ? "SIZE"
			: od->type == OPT_DURATION ? "DURATION"
			: od->type == OPT_STRING   ? od->meta
						     : "NAME",
			od->flags & OPT_RUNTIME ? "  (changeable at run time)"
						: "");
		if (od->def[0])
			fprintf(out, "        %s (default: %s)\n", od->help,
				od->def);
		else
			fprintf(out, "        %s\n", od->help);
	}
}

int config_split_opts(const char *opts,
		      int (*fn)(const char *name, const char *value, void *arg),
		      void *arg)
{
	size_t len = strlen(opts);
	char *buf = malloc(len + 1);
	const char *p = opts;
	int r = 0;

	if (!buf)
		return -ENOMEM;

	while (*p && r == 0) {
		char *q = buf;
		char *value = NULL;

		for (; *p && *p != ','; p++) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '=' && !value) {
				*q++ = '\0';
				value = q;
				continue;
			}
			*q++ = *p;
		}
		*q = '\0';
		if (*p == ',')
			p++;
		if (buf[0] || value)
			r = fn(buf, value, arg);
	}
	free(buf);
	return r;
}
