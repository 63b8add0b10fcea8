/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_TIER_MEMCACHED_H
#define CACHEFS_TIER_MEMCACHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier.h"

/*
 * The memcached tier: a shared tier (by_path) that nginx can serve from
 * directly.  A file's bytes are stored, unmodified and with flags 0, under
 * the key nginx's memcached module asks for when the site has
 *
 *	set $memcached_key "PREFIX$uri";
 *	upstream { hash $memcached_key; server A; server B; ... }
 *
 * (contrib/nginx/cachefs.conf), on the server nginx picks for it.  The
 * value's version lives beside it under a key nginx never asks for.
 */

/* memcached's limit on a key, in bytes */
#define TIER_MEMCACHED_KEY_MAX 250

struct tier_memcached_cfg {
	/*
	 * "HOST:PORT[,HOST:PORT...]" (IPv6 as [::1]:11211, port 11211 when
	 * left out), or a libmemcached configuration string ("--SERVER=...
	 * --SERVER=...").  nginx's upstream must list the same servers in
	 * the same order.  What decides where a key goes, the protocol and
	 * the timeouts are this tier's whatever the string says; --NAMESPACE,
	 * --SORT-HOSTS and --USE-UDP are refused.
	 */
	const char *servers;
	/* of every key, as in nginx's $memcached_key; NULL: "" */
	const char *prefix;
	uint64_t max_file;   /* larger values are not stored; 0: no limit */
	unsigned timeout_ms; /* connect, poll, send, receive; 0: 50; <= 60 s */
	/*
	 * Seconds the servers keep a value (0: until evicted): the bound on
	 * how long nginx serves a file changed where no cachefs sees it.
	 */
	unsigned ttl_s;
};

/*
 * A new memcached tier in *out; 0, or a negative errno with a message in
 * err (-EINVAL: cfg is wrong).  It connects on first use, not here.
 */
int tier_memcached_new(const struct tier_memcached_cfg *cfg, struct tier **out,
		       char *err, size_t errlen);

/*
 * The key nginx sends memcached for path when $memcached_key is
 * prefix + path: ngx_escape_uri(NGX_ESCAPE_MEMCACHED) of both, so ' ',
 * '%' and bytes below 0x20 become "%XX".  Writes it NUL-terminated to
 * out and returns its length; -ENAMETOOLONG when it would be longer than
 * TIER_MEMCACHED_KEY_MAX (never truncated), -ENOBUFS when out is short.
 */
int tier_memcached_key(const char *prefix, const char *path, char *out,
		       size_t outlen);

/*
 * The position, in cfg->servers' order, of the server that holds path's
 * values (the one nginx asks); a negative errno for a path with no keys.
 */
int tier_memcached_server_of(struct tier *t, const char *path);

/* What only this tier counts; t must be a memcached tier. */
struct tier_memcached_stats {
	uint64_t pending;  /* deletes waiting for their servers to answer */
	bool overflow;	   /* more waited: a flush_all is waiting instead */
	uint64_t flushes;  /* flush_all sent when too many were waiting */
	uint64_t item_max; /* smallest server limit known; 0: none known */
	unsigned servers;
	unsigned servers_down; /* being skipped until they answer again */
};

void tier_memcached_get_stats(struct tier *t, struct tier_memcached_stats *st);

#endif
