// SPDX-License-Identifier: MIT
/*
 * The control commands: one table, one function per command.  Commands
 * run on the control thread; arguments are checked with json_unpack in
 * strict mode, so an unknown or mistyped argument is an error, not
 * ignored.  A subsystem adds its commands here and its figures to status.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changes.h"
#include "ctl_int.h"
#include "log.h"
#include "mirror.h"
#include "rdma.h"
#include "trace.h"

#ifndef CACHEFS_VERSION
#define CACHEFS_VERSION "unknown"
#endif

#define TRACE_SHOW_MAX 1000 /* records per trace.show answer */

/*
 * Check args against a json_unpack format, strictly: an unknown or
 * mistyped argument is an error.  Returns 0 or -EINVAL with err filled.
 */
static int unpack(json_t *args, char *err, size_t errlen, const char *fmt,
		  ...)
{
	json_error_t je;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_vunpack_ex(args, &je, JSON_STRICT, fmt, ap);
	va_end(ap);
	if (r < 0) {
		snprintf(err, errlen, "bad arguments: %s", je.text);
		return -EINVAL;
	}
	return 0;
}

static const char *errno_name(int e)
{
	const char *n = e ? strerrorname_np(e) : NULL;

	return n ? n : "other";
}

void proc_figures_get(struct proc_figures *pf)
{
	unsigned long long size, rss;
	char line[256];
	FILE *f;
	DIR *d;

	memset(pf, 0, sizeof(*pf));
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) == 2)
			pf->rss_bytes = rss * (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	f = fopen("/proc/self/status", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "Threads: %" SCNu64, &pf->threads) ==
			    1)
				break;
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;

		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				pf->fds++;
		closedir(d);
		pf->fds--; /* the one reading the directory */
	}
}

static json_t *config_json(const struct config *cfg,
			   const struct option_def *od)
{
	char value[512], dflt[512], err[128];
	struct config d = { 0 };

	config_format(cfg, od, value, sizeof(value));
	/* the default spelt as values are ("50ms" is "0.05s") */
	if (config_set(&d, od, od->def, err, sizeof(err)) == 0)
		config_format(&d, od, dflt, sizeof(dflt));
	else
		snprintf(dflt, sizeof(dflt), "%s", od->def);
	config_free(&d);
	return json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", od->name,
			 "value", value, "default", dflt, "runtime",
			 (od->flags & OPT_RUNTIME) != 0, "help", od->help);
}

static json_t *options_json(const struct config *cfg)
{
	json_t *o = json_object();
	char value[512];

	for (const struct option_def *od = config_options; o && od->name;
	     od++) {
		config_format(cfg, od, value, sizeof(value));
		json_object_set_new(o, od->name, json_string(value));
	}
	return o;
}

/* The upper latency bound, in microseconds, under which a fraction q fell. */
static uint64_t quantile_us(const struct op_stats *o, double q)
{
	uint64_t seen = 0, want = (uint64_t)((double)o->count * q);

	if (!o->count)
		return 0;
	for (unsigned k = 0; k < STATS_LAT_BUCKETS; k++) {
		seen += o->lat[k];
		if (seen > want || seen == o->count)
			return k < STATS_LAT_BUCKETS - 1
				       ? stats_lat_bound_us(k)
				       : stats_lat_bound_us(k - 1) * 2;
	}
	return 0;
}

static json_t *op_json(const struct op_stats *o)
{
	json_t *hist = json_array();

	for (unsigned k = 0; hist && k < STATS_LAT_BUCKETS; k++) {
		if (!o->lat[k])
			continue;
		json_array_append_new(
			hist, json_pack("{s:o, s:I}", "le_us",
					k < STATS_LAT_BUCKETS - 1
						? json_integer((json_int_t)
							stats_lat_bound_us(k))
						: json_null(),
					"count", (json_int_t)o->lat[k]));
	}
	return json_pack("{s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:o}", "count",
			 (json_int_t)o->count, "errors", (json_int_t)o->errors,
			 "bytes", (json_int_t)o->bytes, "avg_us",
			 o->count ? (double)o->ns / 1e3 / (double)o->count : 0.0,
			 "p50_us", (json_int_t)quantile_us(o, 0.5), "p90_us",
			 (json_int_t)quantile_us(o, 0.9), "p99_us",
			 (json_int_t)quantile_us(o, 0.99), "histogram", hist);
}

static json_t *process_json(void)
{
	struct proc_figures pf;

	proc_figures_get(&pf);
	return json_pack("{s:I, s:I, s:I}", "rss_bytes",
			 (json_int_t)pf.rss_bytes, "fds", (json_int_t)pf.fds,
			 "threads", (json_int_t)pf.threads);
}

static uint64_t total_ops(const struct stats *s, uint64_t *errors)
{
	uint64_t n = 0;

	*errors = 0;
	for (int k = 0; k < OP__COUNT; k++) {
		n += s->op[k].count;
		*errors += s->op[k].errors;
	}
	return n;
}

static double ratio(uint64_t hits, uint64_t misses)
{
	return hits + misses ? (double)hits / (double)(hits + misses) : 0;
}

/* One cache tier: its own figures and how the cache layer fared in it. */
static json_t *tier_json(const struct cache_tier_stats *ts)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f,"
			 " s:I, s:I, s:I, s:I, s:b, s:I, s:I}",
			 "name", ts->name, "budget",
			 (json_int_t)ts->tier.budget, "bytes",
			 (json_int_t)ts->tier.bytes, "entries",
			 (json_int_t)ts->tier.entries, "stores",
			 (json_int_t)ts->tier.stores, "evictions",
			 (json_int_t)ts->tier.evictions, "hits",
			 (json_int_t)ts->hits, "misses",
			 (json_int_t)ts->misses, "stale",
			 (json_int_t)ts->stale, "hit_ratio",
			 ratio(ts->hits, ts->misses), "errors",
			 (json_int_t)ts->tier.errors, "too_big",
			 (json_int_t)ts->tier.too_big, "key_too_long",
			 (json_int_t)ts->tier.key_too_long, "deletes",
			 (json_int_t)ts->tier.deletes, "down", ts->tier.down,
			 "servers", (json_int_t)ts->tier.servers,
			 "servers_down", (json_int_t)ts->tier.servers_down);
}

/* Whether a cache tier is being skipped for failing. */
static bool tier_down(struct cfs *fs)
{
	for (int k = 0; fs->cache && k < cache_tiers(fs->cache); k++) {
		struct cache_tier_stats ts;

		cache_get_tier_stats(fs->cache, k, &ts);
		if (ts.tier.down)
			return true;
	}
	return false;
}

/*
 * The cache: the kernel's (always first; no figures of its own) and the
 * tiers behind it.  The hit ratio is the first tier's: how often a read
 * that reached the daemon did not reach the backend.
 */
static json_t *cache_json(struct cfs *fs)
{
	json_t *tiers = json_array(), *hit = json_null();
	struct cache_stats cs = { 0 };
	char names[64] = "kernel";

	if (fs->cache) {
		cache_get_stats(fs->cache, &cs);
		for (int k = 0; k < cache_tiers(fs->cache); k++) {
			struct cache_tier_stats ts;

			cache_get_tier_stats(fs->cache, k, &ts);
			json_array_append_new(tiers, tier_json(&ts));
			snprintf(names + strlen(names),
				 sizeof(names) - strlen(names), ", %s",
				 ts.name);
			if (k == 0 && ts.hits + ts.misses) {
				json_decref(hit);
				hit = json_real(ratio(ts.hits, ts.misses));
			}
		}
	}
	return json_pack("{s:b, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			 " s:o}",
			 "enabled",
			 __atomic_load_n(&fs->cfg->cache, __ATOMIC_RELAXED),
			 "tier", names, "hit_ratio", hit, "max_cached_file",
			 (json_int_t)fs->cfg->max_cached_file, "fills",
			 (json_int_t)cs.fills, "skipped",
			 (json_int_t)cs.skipped, "unsettled",
			 (json_int_t)cs.unsettled, "offline_hits",
			 (json_int_t)cs.offline_hits, "missing_hits",
			 (json_int_t)cs.missing_hits, "missing_stores",
			 (json_int_t)cs.missing_stores, "tiers", tiers);
}

/*
 * The daemon's memory for caching: the tiers' bytes within their budget,
 * and the inode table, which grows with the inodes the kernel holds.
 */
static json_t *memory_json(struct cfs *fs, uint64_t inodes)
{
	uint64_t table = inode_table_bytes(fs->itab), bytes = 0, budget = 0;

	if (fs->cache && cache_tiers(fs->cache)) {
		struct cache_tier_stats ts;

		cache_get_tier_stats(fs->cache, 0, &ts);
		bytes = ts.tier.bytes;
		budget = ts.tier.budget;
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "budget",
			 (json_int_t)fs->cfg->cache_size, "cache_bytes",
			 (json_int_t)bytes, "cache_budget", (json_int_t)budget,
			 "table_bytes", (json_int_t)table, "table_budget",
			 (json_int_t)(fs->cfg->cache_size
					      ? FS_TABLE_SHARE(fs->cfg->cache_size)
					      : 0),
			 "table_per_inode",
			 (json_int_t)(inodes ? table / inodes : 0));
}

/* Change datagrams (-o notify). */
static json_t *notify_json(const char *target, struct notify *n)
{
	struct notify_stats ns;

	notify_get_stats(n, &ns);
	return json_pack("{s:s, s:I, s:I, s:I, s:s?}", "target", target,
			 "sent", (json_int_t)ns.sent, "errors",
			 (json_int_t)ns.errors, "too_long",
			 (json_int_t)ns.too_long, "last_error",
			 ns.last_errno ? strerror(ns.last_errno) : NULL);
}

/* The shared data descriptors of no_open. */
static json_t *data_fds_json(struct cfs *fs)
{
	struct datafd_stats ds;

	datafd_get_stats(fs->data, &ds);
	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "open",
			 (json_int_t)ds.open, "writable",
			 (json_int_t)ds.writable, "kept", (json_int_t)ds.kept,
			 "limit", (json_int_t)(fs->cfg->fd_cache / 2),
			 "hit_ratio", ratio(ds.hits, ds.misses), "evictions",
			 (json_int_t)ds.evictions, "expired",
			 (json_int_t)ds.expired);
}

/*
 * The RDMA server: who is connected and what is in flight now, and its
 * counters since the mount (s).
 */
static json_t *rdma_json(struct rdma_server *r, const struct stats *s)
{
	struct rdma_status st;
	uint64_t errors = s->rdma_errors + s->rdma_escapes +
			  s->rdma_bad_messages + s->rdma_unauthenticated +
			  s->rdma_bad_requests + s->rdma_bad_handles +
			  s->rdma_over_limit + s->rdma_transfer_errors +
			  s->rdma_auth_failures;

	rdma_get_status(r, &st);
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			 " s:I, s:I, s:I, s:I}",
			 "address", st.address, "provider", st.provider,
			 "completion", st.completion, "clients",
			 (json_int_t)st.clients, "authenticated",
			 (json_int_t)st.authenticated, "requests_in_flight",
			 (json_int_t)st.requests, "bytes_in_flight",
			 (json_int_t)st.bytes, "handles",
			 (json_int_t)st.handles, "memory",
			 (json_int_t)st.memory, "requests",
			 (json_int_t)s->rdma_requests, "bytes",
			 (json_int_t)s->rdma_bytes, "errors",
			 (json_int_t)errors, "auth_failures",
			 (json_int_t)s->rdma_auth_failures, "dropped",
			 (json_int_t)s->rdma_dropped);
}

/* Changes are refused: the journal is full or failed. */
static bool journal_down(struct cfs *fs)
{
	struct changes_stats cs;

	if (!fs->changes)
		return false;
	changes_get_stats(fs->changes, &cs);
	return cs.full || cs.failed;
}

static int cmd_status(struct ctl *c, json_t *args, json_t **out, char *err,
		      size_t errlen)
{
	struct inode_table_stats it;
	struct stats s;
	uint64_t ops, errors;
	pid_t tpid;
	char *tpath;
	bool ton;

	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	stats_sum(&s, false);
	ops = total_ops(&s, &errors);
	inode_table_get_stats(c->p.fs->itab, &it);
	ton = trace_get_filter(&tpid, &tpath);
	*out = json_pack(
		"{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:o, s:s,"
		" s:{s:I, s:f}, s:{s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I,"
		" s:o,"
		" s:{s:I, s:I, s:f},"
		" s:o, s:{s:b, s:i, s:s?}, s:s?, s:s, s:I}",
		"state",
		__atomic_load_n(&c->p.fs->degraded, __ATOMIC_RELAXED) ||
				tier_down(c->p.fs) || journal_down(c->p.fs) ||
				mirrors_failing(c->p.fs->mirrors)
			? "degraded"
			: "ok",
		"backend", c->p.backend, "mountpoint",
		c->p.mountpoint, "pid", (int)getpid(), "version",
		CACHEFS_VERSION, "started", (json_int_t)c->started, "uptime",
		(json_int_t)((stats_now_ns() - c->started_ns) / 1000000000u),
		"options", options_json(c->cfg), "kernel_options",
		c->p.kernel_opts,
		"ops", "total", (json_int_t)ops, "per_second",
		ctl_ops_rate(c, &s),
		"errors", "total", (json_int_t)errors, "ENOENT",
		(json_int_t)s.err[ENOENT],
		"open_files",
		(json_int_t)__atomic_load_n(&c->p.fs->open_files,
					    __ATOMIC_RELAXED),
		"open_dirs",
		(json_int_t)__atomic_load_n(&c->p.fs->open_dirs,
					    __ATOMIC_RELAXED),
		"inodes", (json_int_t)it.inodes, "inodes_retained",
		(json_int_t)it.retained, "names",
		(json_int_t)inode_table_names(c->p.fs->itab), "table_bytes",
		(json_int_t)inode_table_bytes(c->p.fs->itab),
		"cache", cache_json(c->p.fs),
		"fd_cache", "open", (json_int_t)(it.fds_cached + it.fds_pinned),
		"limit", (json_int_t)c->cfg->fd_cache, "hit_ratio",
		ratio(it.fd_hits, it.fd_misses),
		"process", process_json(),
		"trace", "on", ton, "pid", (int)tpid, "path", tpath,
		"metrics", c->metrics_addr[0] ? c->metrics_addr : NULL,
		"socket", c->socket_path, "ctl_clients",
		(json_int_t)c->clients);
	free(tpath);
	if (*out && c->p.fs->data)
		json_object_set_new(*out, "data_fds", data_fds_json(c->p.fs));
	if (*out)
		json_object_set_new(*out, "memory",
				    memory_json(c->p.fs, it.inodes));
	if (*out)
		json_object_set_new(
			*out, "revalidate",
			json_pack("{s:f, s:I}", "last_pass_ms",
				  (double)__atomic_load_n(&c->p.fs->reval_pass_ns,
							  __ATOMIC_RELAXED) /
					  1e6,
				  "last_pass_inodes",
				  (json_int_t)__atomic_load_n(
					  &c->p.fs->reval_pass_inodes,
					  __ATOMIC_RELAXED)));
	if (*out)
		json_object_set_new(
			*out, "backend_failures",
			json_integer((json_int_t)__atomic_load_n(
				&c->p.fs->backend_failures, __ATOMIC_RELAXED)));
	if (*out && c->p.fs->notify)
		json_object_set_new(*out, "notify", notify_json(c->cfg->notify,
							       c->p.fs->notify));
	if (*out)
		json_object_set_new(*out, "journal", ctl_journal_json(c));
	if (*out && c->p.fs->mirrors) {
		int r;

		json_object_set_new(*out, "mirrors",
				    mirrors_status(c->p.fs->mirrors, NULL, &r));
	}
	if (*out && c->p.fs->rdma)
		json_object_set_new(*out, "rdma", rdma_json(c->p.fs->rdma, &s));
	return *out ? 0 : -ENOMEM;
}

/* A counter kept outside stats.c, as counted since the last reset. */
static void since(json_t *counters, const char *name, uint64_t now,
		  uint64_t base)
{
	json_object_set_new(counters, name,
			    json_integer((json_int_t)(now - base)));
}

static int cmd_stats(struct ctl *c, json_t *args, json_t **out, char *err,
		     size_t errlen)
{
	struct inode_table_stats it, base = c->fd_base;
	struct notify_stats ns, nbase = c->notify_base;
	struct stats s;
	json_t *ops, *errs, *counters;
	int reset = 0;

	if (unpack(args, err, errlen, "{s?b}", "reset", &reset) < 0)
		return -EINVAL;
	stats_sum(&s, true);
	inode_table_get_stats(c->p.fs->itab, &it);
	notify_get_stats(c->p.fs->notify, &ns);
	if (reset) {
		stats_reset();
		c->fd_base = it;
		c->notify_base = ns;
	}
	ops = json_object();
	errs = json_object();
	counters = json_object();
	if (!ops || !errs || !counters)
		goto out_nomem;
	for (int k = 0; k < OP__COUNT; k++)
		json_object_set_new(ops, fs_op_names[k], op_json(&s.op[k]));
	for (int e = 0; e < STATS_ERRNO_MAX; e++) {
		json_t *prev;

		if (!s.err[e])
			continue;
		prev = json_object_get(errs, errno_name(e));
		json_object_set_new(errs, errno_name(e),
				    json_integer((json_int_t)s.err[e] +
						 json_integer_value(prev)));
	}
	for (int k = 0; k < STAT__COUNT; k++)
		json_object_set_new(
			counters, stats_counters[k].name,
			json_integer((json_int_t) * (uint64_t *)((char *)&s +
					stats_counters[k].offset)));
	/* the bases as they were before this request's reset */
	since(counters, "fd_cache_hits", it.fd_hits, base.fd_hits);
	since(counters, "fd_cache_misses", it.fd_misses, base.fd_misses);
	since(counters, "fd_cache_evictions", it.fd_evictions,
	      base.fd_evictions);
	if (c->p.fs->notify) {
		since(counters, "notify_sent", ns.sent, nbase.sent);
		since(counters, "notify_errors", ns.errors, nbase.errors);
		since(counters, "notify_too_long", ns.too_long, nbase.too_long);
	}
	*out = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "ops", ops,
			 "errors", errs, "counters", counters, "cache",
			 cache_json(c->p.fs), "journal", ctl_journal_json(c),
			 "process", process_json(), "reset", reset);
	return *out ? 0 : -ENOMEM;

out_nomem:
	json_decref(ops);
	json_decref(errs);
	json_decref(counters);
	return -ENOMEM;
}

static int cmd_config_get(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	const char *name = NULL;
	const struct option_def *od;

	if (unpack(args, err, errlen, "{s?s}", "name", &name) < 0)
		return -EINVAL;
	if (name) {
		od = config_find(name);
		if (!od) {
			snprintf(err, errlen, "no option '%s'", name);
			return -ENOENT;
		}
		*out = json_pack("[o]", config_json(c->cfg, od));
		return *out ? 0 : -ENOMEM;
	}
	*out = json_array();
	for (od = config_options; *out && od->name; od++)
		json_array_append_new(*out, config_json(c->cfg, od));
	return *out ? 0 : -ENOMEM;
}

static int cmd_config_set(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	const char *name, *value;
	const struct option_def *od;
	int r;

	if (unpack(args, err, errlen, "{s:s, s:s}", "name", &name, "value",
		   &value) < 0)
		return -EINVAL;
	od = config_find(name);
	if (!od) {
		snprintf(err, errlen, "no option '%s'", name);
		return -ENOENT;
	}
	/* Options whose change acts at once. */
	if (strcmp(name, "trace_file") == 0 && value[0] && value[0] != '/') {
		snprintf(err, errlen, "trace_file must be an absolute path");
		return -EINVAL;
	}
	if (strcmp(name, "trace_file") == 0 && (od->flags & OPT_RUNTIME)) {
		r = trace_set_file(value[0] ? value : NULL);
		if (r < 0) {
			snprintf(err, errlen, "cannot open trace file '%s': %s",
				 value, strerror(-r));
			return r;
		}
	}
	r = config_set_live(c->cfg, od, value, err, errlen);
	if (r < 0)
		return r;
	if (strcmp(name, "log_level") == 0)
		log_set_level(c->cfg->log_level);
	if (strcmp(name, "cache") == 0 && !c->cfg->cache) {
		unsigned names, inodes;

		/* names too: every one the kernel may hold is known */
		fs_invalidate(c->p.fs, "/", true, &names, &inodes);
		fs_forget_kernel_cache(c->p.fs);
	}
	log_notice("option %s set to %s", name, value);
	*out = json_pack("[o]", config_json(c->cfg, od));
	return *out ? 0 : -ENOMEM;
}

static int set_cache(struct ctl *c, json_t *args, json_t **out, char *err,
		     size_t errlen, const char *value)
{
	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	args = json_pack("{s:s, s:s}", "name", "cache", "value", value);
	if (!args)
		return -ENOMEM;
	cmd_config_set(c, args, out, err, errlen);
	json_decref(args);
	json_decref(*out);
	*out = json_pack("{s:b}", "enabled", c->cfg->cache);
	return *out ? 0 : -ENOMEM;
}

static int cmd_cache_on(struct ctl *c, json_t *args, json_t **out, char *err,
			size_t errlen)
{
	return set_cache(c, args, out, err, errlen, "on");
}

static int cmd_cache_off(struct ctl *c, json_t *args, json_t **out,
			 char *err, size_t errlen)
{
	return set_cache(c, args, out, err, errlen, "off");
}

static int cmd_invalidate(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	const char *path;
	int recursive = 0, r;
	unsigned names, inodes;

	if (unpack(args, err, errlen, "{s:s, s?b}", "path", &path,
		   "recursive", &recursive) < 0)
		return -EINVAL;
	if (path[0] != '/') {
		snprintf(err, errlen,
			 "path '%s' must start with / (relative to the mount)",
			 path);
		return -EINVAL;
	}
	r = fs_invalidate(c->p.fs, path, recursive, &names, &inodes);
	if (r == -EINVAL) {
		snprintf(err, errlen, "path '%s': no . or .. components",
			 path);
		return r;
	}
	if (r < 0)
		return r;
	*out = json_pack("{s:i, s:i}", "names", (int)names, "inodes",
			 (int)inodes);
	return *out ? 0 : -ENOMEM;
}

static json_t *trace_filter_json(void)
{
	pid_t pid;
	char *path;
	bool on = trace_get_filter(&pid, &path);
	json_t *j = json_pack("{s:b, s:i, s:s?}", "on", on, "pid", (int)pid,
			      "path", path);

	free(path);
	return j;
}

static int cmd_trace_on(struct ctl *c, json_t *args, json_t **out, char *err,
			size_t errlen)
{
	const char *path = NULL;
	json_int_t pid = 0;
	int r;

	(void)c;
	if (unpack(args, err, errlen, "{s?I, s?s}", "pid", &pid, "path",
		   &path) < 0)
		return -EINVAL;
	if (pid < 0 || pid > 0x3fffffff) {
		snprintf(err, errlen, "bad pid %" JSON_INTEGER_FORMAT, pid);
		return -EINVAL;
	}
	if (path && path[0] != '/') {
		snprintf(err, errlen,
			 "path '%s' must start with / (relative to the mount)",
			 path);
		return -EINVAL;
	}
	r = trace_on((pid_t)pid, path);
	if (r < 0)
		return r;
	*out = trace_filter_json();
	return *out ? 0 : -ENOMEM;
}

static int cmd_trace_off(struct ctl *c, json_t *args, json_t **out,
			 char *err, size_t errlen)
{
	(void)c;
	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	trace_off();
	*out = trace_filter_json();
	return *out ? 0 : -ENOMEM;
}

static void add_record(const struct trace_rec *r, void *arg)
{
	char when[40], frac[24];
	struct tm tm;

	localtime_r(&r->time.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), ".%06ld", r->time.tv_nsec / 1000);
	strncat(when, frac, sizeof(when) - strlen(when) - 1);
	json_array_append_new(
		arg,
		json_pack("{s:I, s:s, s:i, s:s, s:s, s:s?, s:I, s:I, s:i,"
			  " s:s, s:f}",
			  "seq", (json_int_t)r->seq, "time", when, "pid",
			  (int)r->pid, "comm", r->comm, "op",
			  fs_op_names[r->op], "path", r->path, "size",
			  (json_int_t)r->size, "offset", (json_int_t)r->offset,
			  "result", r->result, "error",
			  r->result ? errno_name(-r->result) : "",
			  "latency_us", (double)r->ns / 1e3));
}

static int cmd_trace_show(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	json_int_t since = -1, max = 100;
	uint64_t last, next, lost;
	json_t *recs;

	(void)c;
	if (unpack(args, err, errlen, "{s?I, s?I}", "since", &since, "max",
		   &max) < 0)
		return -EINVAL;
	if (max < 1 || max > TRACE_SHOW_MAX) {
		snprintf(err, errlen, "max must be 1 to %d", TRACE_SHOW_MAX);
		return -EINVAL;
	}
	last = trace_last_seq();
	if (since < 0) /* the newest max records */
		since = last > (uint64_t)max ? (json_int_t)(last - max) : 0;
	recs = json_array();
	if (!recs)
		return -ENOMEM;
	next = trace_foreach((uint64_t)since, (unsigned)max, &lost,
			     add_record, recs);
	*out = json_pack("{s:o, s:I, s:I, s:b}", "records", recs, "next",
			 (json_int_t)next, "lost", (json_int_t)lost, "on",
			 trace_enabled());
	return *out ? 0 : -ENOMEM;
}

static int cmd_log_reopen(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	int r;

	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	r = ctl_reopen_logs(c, err, errlen);
	if (r < 0)
		return r;
	*out = json_pack("{s:s?, s:s?}", "log_file", c->cfg->log_file,
			 "trace_file", c->cfg->trace_file);
	return *out ? 0 : -ENOMEM;
}

static int cmd_help(struct ctl *c, json_t *args, json_t **out, char *err,
		    size_t errlen)
{
	(void)c;
	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	*out = json_array();
	for (const struct ctl_command *k = ctl_commands; *out && k->name; k++)
		json_array_append_new(*out,
				      json_pack("{s:s, s:s, s:s}", "name",
						k->name, "args", k->args,
						"help", k->help));
	return *out ? 0 : -ENOMEM;
}

/* Why a file was not preloaded, as the summary counts it. */
static const char *preload_reason(int r)
{
	switch (r) {
	case -EFBIG: return "too big";
	case -EPERM: return "not readable by others";
	case -ENAMETOOLONG: return "key too long";
	case -EAGAIN: return "memcached down";
	case -EBUSY: return "changed while read";
	case -ENOENT: return "gone";
	case -EACCES: return "through a symlink or another file system";
	default: return NULL;
	}
}

static int cmd_preload(struct ctl *c, json_t *args, json_t **out, char *err,
		       size_t errlen)
{
	const char *path, *why;
	uint64_t bytes;
	int r;

	if (unpack(args, err, errlen, "{s:s}", "path", &path) < 0)
		return -EINVAL;
	r = fs_preload(c->p.fs, path, &bytes);
	if (r == -ENOTSUP) {
		snprintf(err, errlen, "no shared cache tier (-o memcached=)");
		return r;
	}
	if (r == -EINVAL) {
		snprintf(err, errlen,
			 "path '%s': not a regular file, or not /-separated "
			 "names without . and ..",
			 path);
		return r;
	}
	why = preload_reason(r);
	if (r < 0 && !why)
		why = strerror(-r);
	*out = json_pack("{s:b, s:I, s:s?}", "stored", r == 0, "bytes",
			 (json_int_t)bytes, "reason", r < 0 ? why : NULL);
	return *out ? 0 : -ENOMEM;
}

static int cmd_cursor_list(struct ctl *c, json_t *args, json_t **out,
			   char *err, size_t errlen)
{
	if (unpack(args, err, errlen, "{}") < 0)
		return -EINVAL;
	if (!c->p.fs->changes) {
		snprintf(err, errlen, "the journal is off (journal=off)");
		return -ENOTSUP;
	}
	*out = json_pack("{s:o}", "cursors", ctl_cursors_json(c));
	return *out ? 0 : -ENOMEM;
}

static int cmd_cursor_remove(struct ctl *c, json_t *args, json_t **out,
			     char *err, size_t errlen)
{
	const char *name;
	int r;

	if (unpack(args, err, errlen, "{s:s}", "name", &name) < 0)
		return -EINVAL;
	if (!c->p.fs->changes) {
		snprintf(err, errlen, "the journal is off (journal=off)");
		return -ENOTSUP;
	}
	r = journal_cursor_remove(changes_journal(c->p.fs->changes), name);
	if (r == -ENOENT || r == -EINVAL) {
		snprintf(err, errlen, "no cursor '%s'", name);
		return r;
	}
	if (r < 0)
		return r;
	log_notice("journal cursor %s removed", name);
	/* what only it held may go now */
	changes_make_room(c->p.fs->changes);
	*out = NULL;
	return 0;
}

static int no_mirrors(struct ctl *c, char *err, size_t errlen)
{
	if (c->p.fs->mirrors)
		return 0;
	snprintf(err, errlen, "mirrors need the journal (journal=on)");
	return -ENOTSUP;
}

static int cmd_mirror_status(struct ctl *c, json_t *args, json_t **out,
			     char *err, size_t errlen)
{
	const char *name = NULL;
	struct journal_stats js;
	json_t *a;
	int r;

	if (unpack(args, err, errlen, "{s?s}", "name", &name) < 0)
		return -EINVAL;
	if ((r = no_mirrors(c, err, errlen)) < 0)
		return r;
	a = mirrors_status(c->p.fs->mirrors, name, &r);
	if (r == -ENOENT) {
		snprintf(err, errlen, "no mirror '%s'", name);
		return r;
	}
	journal_get_stats(changes_journal(c->p.fs->changes), &js);
	*out = json_pack("{s:o, s:I}", "mirrors", a, "newest",
			 (json_int_t)js.newest_seq);
	return *out ? 0 : -ENOMEM;
}

static int cmd_mirror_add(struct ctl *c, json_t *args, json_t **out,
			  char *err, size_t errlen)
{
	const char *name, *url;
	int r;

	if (unpack(args, err, errlen, "{s:s, s:s}", "name", &name, "url",
		   &url) < 0)
		return -EINVAL;
	if ((r = no_mirrors(c, err, errlen)) < 0)
		return r;
	*out = NULL;
	return mirrors_add(c->p.fs->mirrors, name, url, err, errlen);
}

static int cmd_mirror_remove(struct ctl *c, json_t *args, json_t **out,
			     char *err, size_t errlen)
{
	const char *name;
	int r;

	if (unpack(args, err, errlen, "{s:s}", "name", &name) < 0)
		return -EINVAL;
	if ((r = no_mirrors(c, err, errlen)) < 0)
		return r;
	*out = NULL;
	return mirrors_remove(c->p.fs->mirrors, name, err, errlen);
}

/* {name} (a resync also {content?}): action a on that mirror. */
static int mirror_act(struct ctl *c, json_t *args, json_t **out, char *err,
		      size_t errlen, enum mirror_action a)
{
	const char *name;
	int content = 0, r;

	r = a == MIRROR_RESYNC ? unpack(args, err, errlen, "{s:s, s?:b}",
					"name", &name, "content", &content)
			       : unpack(args, err, errlen, "{s:s}", "name",
					&name);
	if (r < 0)
		return -EINVAL;
	if ((r = no_mirrors(c, err, errlen)) < 0)
		return r;
	*out = NULL;
	return mirrors_act(c->p.fs->mirrors, name,
			   content ? MIRROR_RESYNC_CONTENT : a, err, errlen);
}

static int cmd_mirror_retry(struct ctl *c, json_t *args, json_t **out,
			    char *err, size_t errlen)
{
	return mirror_act(c, args, out, err, errlen, MIRROR_RETRY);
}

static int cmd_mirror_pause(struct ctl *c, json_t *args, json_t **out,
			    char *err, size_t errlen)
{
	return mirror_act(c, args, out, err, errlen, MIRROR_PAUSE);
}

static int cmd_mirror_resume(struct ctl *c, json_t *args, json_t **out,
			     char *err, size_t errlen)
{
	return mirror_act(c, args, out, err, errlen, MIRROR_RESUME);
}

static int cmd_mirror_resync(struct ctl *c, json_t *args, json_t **out,
			     char *err, size_t errlen)
{
	return mirror_act(c, args, out, err, errlen, MIRROR_RESYNC);
}

/* Only in the table for help: run_request() streams watches itself. */
static int cmd_stream_only(struct ctl *c, json_t *args, json_t **out,
			   char *err, size_t errlen)
{
	(void)c;
	(void)args;
	(void)out;
	snprintf(err, errlen, "ack is taken only on a watch stream");
	return -EINVAL;
}

const struct ctl_command ctl_commands[] = {
	{ "help", cmd_help, "{}", "list the commands" },
	{ "status", cmd_status, "{}", "the mount at a glance" },
	{ "stats", cmd_stats, "{reset?: bool}",
	  "every counter and latency histogram since the last reset; "
	  "reset starts counting afresh after answering" },
	{ "config.get", cmd_config_get, "{name?: string}",
	  "options with their values" },
	{ "config.set", cmd_config_set, "{name: string, value: string}",
	  "change an option marked changeable at run time" },
	{ "cache.on", cmd_cache_on, "{}", "let the kernel cache again" },
	{ "cache.off", cmd_cache_off, "{}",
	  "send every request to the backend and drop the kernel's cached "
	  "attributes and pages" },
	{ "invalidate", cmd_invalidate, "{path: string, recursive?: bool}",
	  "make the kernel and the caches forget a path (and below)" },
	{ "preload", cmd_preload, "{path: string}",
	  "store one file from the backend in the shared tiers (memcached); "
	  "stored, bytes, and the reason when not" },
	{ "trace.on", cmd_trace_on, "{pid?: int, path?: string}",
	  "record operations, of one process or below one path" },
	{ "trace.off", cmd_trace_off, "{}", "stop recording operations" },
	{ "trace.show", cmd_trace_show, "{since?: int, max?: int}",
	  "recorded operations after sequence number since (default: the "
	  "newest max, 100)" },
	{ "log.reopen", cmd_log_reopen, "{}",
	  "reopen the log and trace files (as SIGHUP does)" },
	{ "watch", cmd_stream_only,
	  "{since?: int, cursor?: string, path?: string, follow?: bool}",
	  "turn the connection into a stream of the changes made through "
	  "the mount, from the journal (see cachefsctl(8))" },
	{ "ack", cmd_stream_only, "{seq: int}",
	  "on a watch stream with a cursor: the records up to seq are done "
	  "with" },
	{ "cursor.list", cmd_cursor_list, "{}",
	  "the journal's cursors, and how far behind each one is" },
	{ "cursor.remove", cmd_cursor_remove, "{name: string}",
	  "forget a cursor: the journal stops keeping records for it" },
	{ "mirror.status", cmd_mirror_status, "{name?: string}",
	  "the mirrors: state, last error, lag, what they replayed; and "
	  "the journal's newest record" },
	{ "mirror.add", cmd_mirror_add, "{name: string, url: string}",
	  "add a mirror (kept across mounts); it starts with a resync" },
	{ "mirror.remove", cmd_mirror_remove, "{name: string}",
	  "stop a mirror and forget it and its cursor" },
	{ "mirror.retry", cmd_mirror_retry, "{name: string}",
	  "reconnect a failing mirror now" },
	{ "mirror.pause", cmd_mirror_pause, "{name: string}",
	  "stop replaying to a mirror; its cursor holds the journal" },
	{ "mirror.resume", cmd_mirror_resume, "{name: string}",
	  "replay to a paused or stopped mirror again" },
	{ "mirror.resync", cmd_mirror_resync,
	  "{name: string, content?: bool}",
	  "compare the whole tree with the mirror (with content, each "
	  "file's bytes too), upload what differs, remove what the backend "
	  "lacks, then replay on" },
	{ NULL },
};

const struct ctl_command *ctl_command_find(const char *name)
{
	for (const struct ctl_command *k = ctl_commands; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}
