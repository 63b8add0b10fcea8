// SPDX-License-Identifier: MIT
/*
 * Prometheus text exposition (format 0.0.4) of the statistics.  Counters
 * here are totals since start: "cachefsctl stats --reset" does not touch
 * them, as Prometheus expects counters never to go down.
 */
#include <event2/buffer.h>
#include <inttypes.h>
#include <string.h>

#include "changes.h"
#include "ctl_int.h"
#include "mirror.h"
#include "rdma.h"
#include "trace.h"

#ifndef CACHEFS_VERSION
#define CACHEFS_VERSION "unknown"
#endif

static void head(struct evbuffer *out, const char *name, const char *type,
		 const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

static void gauge(struct evbuffer *out, const char *name, const char *help,
		  double v)
{
	head(out, name, "gauge", help);
	evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

static void counter(struct evbuffer *out, const char *name, const char *help,
		    uint64_t v)
{
	head(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v);
}

/*
 * One series per tier, counters per op too (reads are the only op the
 * tiers serve yet).
 */
static void tier_series(struct evbuffer *out, struct cache *cache,
			const char *name, const char *type, bool per_op,
			const char *help,
			uint64_t (*value)(const struct cache_tier_stats *))
{
	head(out, name, type, help);
	for (int k = 0; k < cache_tiers(cache); k++) {
		struct cache_tier_stats ts;

		cache_get_tier_stats(cache, k, &ts);
		evbuffer_add_printf(out, "%s{tier=\"%s\"%s} %" PRIu64 "\n",
				    name, ts.name,
				    per_op ? ",op=\"read\"" : "", value(&ts));
	}
}

static uint64_t t_hits(const struct cache_tier_stats *t) { return t->hits; }
static uint64_t t_misses(const struct cache_tier_stats *t) { return t->misses; }
static uint64_t t_stale(const struct cache_tier_stats *t) { return t->stale; }
static uint64_t t_evictions(const struct cache_tier_stats *t)
{
	return t->tier.evictions;
}
static uint64_t t_bytes(const struct cache_tier_stats *t)
{
	return t->tier.bytes;
}
static uint64_t t_entries(const struct cache_tier_stats *t)
{
	return t->tier.entries;
}

static uint64_t t_errors(const struct cache_tier_stats *t)
{
	return t->tier.errors;
}
static uint64_t t_too_big(const struct cache_tier_stats *t)
{
	return t->tier.too_big + t->tier.key_too_long;
}
static uint64_t t_down(const struct cache_tier_stats *t)
{
	return t->tier.down;
}
static uint64_t t_servers_down(const struct cache_tier_stats *t)
{
	return t->tier.servers_down;
}

static void cache_metrics(struct evbuffer *out, struct cache *cache)
{
	struct cache_stats cs;

	tier_series(out, cache, "cachefs_cache_hits_total", "counter", true,
		    "reads served by a cache tier", t_hits);
	tier_series(out, cache, "cachefs_cache_misses_total", "counter", true,
		    "reads a cache tier could not serve", t_misses);
	tier_series(out, cache, "cachefs_cache_stale_total", "counter", true,
		    "misses where the tier held an older version", t_stale);
	tier_series(out, cache, "cachefs_cache_evictions_total", "counter",
		    false, "values evicted to stay within the budget",
		    t_evictions);
	tier_series(out, cache, "cachefs_cache_bytes", "gauge", false,
		    "bytes a cache tier holds", t_bytes);
	tier_series(out, cache, "cachefs_cache_entries", "gauge", false,
		    "values a cache tier holds", t_entries);
	tier_series(out, cache, "cachefs_cache_errors_total", "counter",
		    false, "requests a cache tier failed or timed out",
		    t_errors);
	tier_series(out, cache, "cachefs_cache_refused_total", "counter",
		    false, "values a tier did not take: too big, or a key too "
		    "long", t_too_big);
	tier_series(out, cache, "cachefs_cache_down", "gauge", false,
		    "1 while a tier (or one of its servers) is skipped for "
		    "failing", t_down);
	tier_series(out, cache, "cachefs_cache_servers_down", "gauge", false,
		    "servers of a shared tier skipped for failing",
		    t_servers_down);
	cache_get_stats(cache, &cs);
	counter(out, "cachefs_cache_fills_total",
		"files read whole from the backend into the tiers", cs.fills);
	counter(out, "cachefs_cache_skipped_total",
		"reads of files over max_cached_file", cs.skipped);
}

static void op_counter(struct evbuffer *out, const struct stats *s,
		       const char *name, const char *help, size_t offset)
{
	head(out, name, "counter", help);
	for (int k = 0; k < OP__COUNT; k++)
		evbuffer_add_printf(out, "%s{op=\"%s\"} %" PRIu64 "\n", name,
				    fs_op_names[k],
				    *(const uint64_t *)((const char *)&s->op[k] +
							offset));
}

static void latency(struct evbuffer *out, const struct stats *s)
{
	const char *name = "cachefs_op_duration_seconds";

	head(out, name, "histogram",
	     "time from receiving a FUSE request to answering it");
	for (int k = 0; k < OP__COUNT; k++) {
		const struct op_stats *o = &s->op[k];
		uint64_t cum = 0;

		for (unsigned b = 0; b < STATS_LAT_BUCKETS - 1; b++) {
			cum += o->lat[b];
			evbuffer_add_printf(
				out, "%s_bucket{op=\"%s\",le=\"%g\"} %" PRIu64 "\n",
				name, fs_op_names[k],
				(double)stats_lat_bound_us(b) / 1e6, cum);
		}
		evbuffer_add_printf(out,
				    "%s_bucket{op=\"%s\",le=\"+Inf\"} %" PRIu64
				    "\n%s_sum{op=\"%s\"} %.9f\n"
				    "%s_count{op=\"%s\"} %" PRIu64 "\n",
				    name, fs_op_names[k], o->count, name,
				    fs_op_names[k], (double)o->ns / 1e9, name,
				    fs_op_names[k], o->count);
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

/* One series per mirror, from its status object. */
static void mirror_series(struct evbuffer *out, json_t *all, const char *name,
			  const char *type, const char *help, const char *key)
{
	json_t *m;
	size_t k;

	head(out, name, type, help);
	json_array_foreach(all, k, m)
		evbuffer_add_printf(
			out, "%s{mirror=\"%s\"} %lld\n", name,
			json_string_value(json_object_get(m, "name")),
			(long long)json_integer_value(json_object_get(m, key)));
}

static void mirror_metrics(struct evbuffer *out, struct ctl *c)
{
	json_t *all, *m;
	size_t k;
	int r;

	all = mirrors_status(c->p.fs->mirrors, NULL, &r);
	if (!all)
		return;
	mirror_series(out, all, "cachefs_mirror_lag_records", "gauge",
		      "journal records a mirror has not replayed yet",
		      "lag_records");
	mirror_series(out, all, "cachefs_mirror_lag_bytes", "gauge",
		      "bytes of journal records a mirror has not replayed yet",
		      "lag_bytes");
	mirror_series(out, all, "cachefs_mirror_files_total", "counter",
		      "files uploaded to a mirror", "files");
	mirror_series(out, all, "cachefs_mirror_bytes_total", "counter",
		      "bytes uploaded to a mirror", "bytes");
	mirror_series(out, all, "cachefs_mirror_retries_total", "counter",
		      "times a mirror's stream failed and was retried",
		      "retries");
	mirror_series(out, all, "cachefs_mirror_conflicts_total", "counter",
		      "changes a mirror lacked the source of (changed "
		      "behind cachefs)",
		      "conflicts");
	head(out, "cachefs_mirror_up", "gauge",
	     "1 while a mirror is replaying (ok or catching up)");
	json_array_foreach(all, k, m) {
		const char *st = json_string_value(json_object_get(m, "state"));

		evbuffer_add_printf(
			out, "cachefs_mirror_up{mirror=\"%s\"} %d\n",
			json_string_value(json_object_get(m, "name")),
			!strcmp(st, "ok") || !strcmp(st, "catching up"));
	}
	json_decref(all);
}

enum cursor_field { LAG_RECORDS, LAG_BYTES, LAG_SECONDS };

/* One gauge of every cursor of the journal. */
static void cursor_series(struct evbuffer *out, const struct ctl_cursor *cur,
			  int n, const char *name, const char *help,
			  enum cursor_field f)
{
	head(out, name, "gauge", help);
	for (int k = 0; k < n; k++) {
		evbuffer_add_printf(out, "%s{cursor=\"%s\"} ", name,
				    cur[k].name);
		if (f == LAG_SECONDS)
			evbuffer_add_printf(out, "%.3f\n", cur[k].lag_seconds);
		else
			evbuffer_add_printf(out, "%" PRIu64 "\n",
					    f == LAG_RECORDS ? cur[k].lag_records
							     : cur[k].lag_bytes);
	}
}

static void journal_metrics(struct evbuffer *out, struct ctl *c)
{
	struct ctl_cursor cur[64];
	struct changes_stats cs;
	int n;

	changes_get_stats(c->p.fs->changes, &cs);
	gauge(out, "cachefs_journal_bytes", "bytes of journal segments",
	      (double)cs.j.bytes);
	gauge(out, "cachefs_journal_max_bytes", "journal_max; 0: none",
	      (double)cs.j.max_bytes);
	gauge(out, "cachefs_journal_oldest_seq",
	      "sequence number of the oldest record kept",
	      (double)cs.j.oldest_seq);
	gauge(out, "cachefs_journal_newest_seq",
	      "sequence number of the newest record", (double)cs.j.newest_seq);
	counter(out, "cachefs_journal_records_total",
		"records appended since the mount", cs.j.appended);
	counter(out, "cachefs_journal_coalesced_total",
		"data changes that took the newest record's place",
		cs.j.coalesced);
	counter(out, "cachefs_journal_syncs_total", "fdatasyncs of the journal",
		cs.j.syncs);
	counter(out, "cachefs_journal_refused_total",
		"changes refused: the journal was full or had failed",
		cs.refused);
	counter(out, "cachefs_journal_unrecorded_total",
		"changes made that the journal could not record",
		cs.unrecorded);
	gauge(out, "cachefs_journal_full",
	      "1 while changes are refused for want of room", cs.full);
	gauge(out, "cachefs_journal_alarm",
	      "1 while cursors hold the journal past 90% of journal_max",
	      cs.alarm);
	n = ctl_cursors(c, cur, 64);
	cursor_series(out, cur, n, "cachefs_journal_cursor_lag_records",
		      "records a cursor has not acked", LAG_RECORDS);
	cursor_series(out, cur, n, "cachefs_journal_cursor_lag_bytes",
		      "bytes of journal records a cursor has not acked",
		      LAG_BYTES);
	cursor_series(out, cur, n, "cachefs_journal_cursor_lag_seconds",
		      "age of the oldest record a cursor has not acked",
		      LAG_SECONDS);
}

void metrics_render(struct ctl *c, struct evbuffer *out)
{
	struct inode_table_stats it;
	struct proc_figures pf;
	struct stats s;
	bool any = false;

	stats_sum(&s, false);
	inode_table_get_stats(c->p.fs->itab, &it);
	proc_figures_get(&pf);

	op_counter(out, &s, "cachefs_ops_total", "FUSE requests answered",
		   offsetof(struct op_stats, count));
	op_counter(out, &s, "cachefs_op_errors_total",
		   "FUSE requests answered with an error",
		   offsetof(struct op_stats, errors));
	op_counter(out, &s, "cachefs_op_bytes_total",
		   "bytes read (as asked by the kernel) and written",
		   offsetof(struct op_stats, bytes));
	latency(out, &s);

	head(out, "cachefs_errors_total", "counter",
	     "error replies by errno name");
	for (int e = 1; e < STATS_ERRNO_MAX; e++) {
		const char *n = strerrorname_np(e);

		if (s.err[e] && n) {
			evbuffer_add_printf(out,
					    "cachefs_errors_total{errno=\"%s\"}"
					    " %" PRIu64 "\n",
					    n, s.err[e]);
			any = true;
		}
	}
	if (!any || s.err[0])
		evbuffer_add_printf(out,
				    "cachefs_errors_total{errno=\"other\"} "
				    "%" PRIu64 "\n",
				    s.err[0]);

	for (int k = 0; k < STAT__COUNT; k++) {
		char name[96];

		snprintf(name, sizeof(name), "cachefs_%s_total",
			 stats_counters[k].name);
		head(out, name, "counter", stats_counters[k].help);
		evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
				    *(const uint64_t *)((const char *)&s +
							stats_counters[k]
								.offset));
	}
	counter(out, "cachefs_fd_cache_hits_total",
		"backend descriptors found open", it.fd_hits);
	counter(out, "cachefs_fd_cache_misses_total",
		"backend descriptors reopened from a file handle",
		it.fd_misses);
	counter(out, "cachefs_fd_cache_evictions_total",
		"backend descriptors closed to stay within fd_cache",
		it.fd_evictions);
	if (c->p.fs->cache)
		cache_metrics(out, c->p.fs->cache);
	if (c->p.fs->notify) {
		struct notify_stats ns;

		notify_get_stats(c->p.fs->notify, &ns);
		counter(out, "cachefs_notify_sent_total",
			"change datagrams handed to the kernel", ns.sent);
		counter(out, "cachefs_notify_errors_total",
			"change datagrams that could not be sent", ns.errors);
		counter(out, "cachefs_notify_too_long_total",
			"changes whose datagram would be too long", ns.too_long);
	}
	if (c->p.fs->changes)
		journal_metrics(out, c);
	if (c->p.fs->mirrors)
		mirror_metrics(out, c);
	if (c->p.fs->rdma) {
		struct rdma_status rs;

		rdma_get_status(c->p.fs->rdma, &rs);
		gauge(out, "cachefs_rdma_clients",
		      "RDMA clients connected, authenticated or not",
		      (double)rs.clients);
		gauge(out, "cachefs_rdma_authenticated_clients",
		      "RDMA clients authenticated", (double)rs.authenticated);
		gauge(out, "cachefs_rdma_requests_in_flight",
		      "RDMA requests not answered yet", (double)rs.requests);
		gauge(out, "cachefs_rdma_bytes_in_flight",
		      "bytes of RDMA reads not answered yet", (double)rs.bytes);
		gauge(out, "cachefs_rdma_handles",
		      "files open for RDMA clients", (double)rs.handles);
		gauge(out, "cachefs_rdma_memory_bytes",
		      "buffers of the RDMA server", (double)rs.memory);
	}
	if (c->p.fs->data) {
		struct datafd_stats ds;

		datafd_get_stats(c->p.fs->data, &ds);
		gauge(out, "cachefs_data_fds_open",
		      "shared data descriptors open (no_open)", ds.open);
		gauge(out, "cachefs_data_fds_writable",
		      "shared data descriptors open read-write", ds.writable);
		gauge(out, "cachefs_data_fds_kept",
		      "data descriptors held for unlinked files", ds.kept);
		counter(out, "cachefs_data_fds_hits_total",
			"data descriptors found open", ds.hits);
		counter(out, "cachefs_data_fds_misses_total",
			"data descriptors opened", ds.misses);
		counter(out, "cachefs_data_fds_evictions_total",
			"data descriptors closed to stay within the cache",
			ds.evictions);
		counter(out, "cachefs_data_fds_expired_total",
			"writable data descriptors closed after a second idle",
			ds.expired);
	}

	gauge(out, "cachefs_inodes", "inodes the kernel knows", it.inodes);
	gauge(out, "cachefs_table_bytes",
	      "memory of the inode table: inodes, handles, names",
	      (double)inode_table_bytes(c->p.fs->itab));
	gauge(out, "cachefs_names",
	      "directory entries the kernel may cache, positive and negative",
	      (double)inode_table_names(c->p.fs->itab));
	gauge(out, "cachefs_fd_cache_open", "backend descriptors open",
	      it.fds_cached + it.fds_pinned);
	gauge(out, "cachefs_open_files", "files open through the mount",
	      __atomic_load_n(&c->p.fs->open_files, __ATOMIC_RELAXED));
	gauge(out, "cachefs_open_dirs", "directories open through the mount",
	      __atomic_load_n(&c->p.fs->open_dirs, __ATOMIC_RELAXED));
	gauge(out, "cachefs_cache_enabled", "1 when kernel caching is on",
	      __atomic_load_n(&c->cfg->cache, __ATOMIC_RELAXED));
	gauge(out, "cachefs_trace_enabled", "1 while the trace records",
	      trace_enabled());
	gauge(out, "cachefs_ctl_clients", "control clients connected",
	      c->clients);
	gauge(out, "cachefs_uptime_seconds", "seconds since the mount",
	      (double)(stats_now_ns() - c->started_ns) / 1e9);
	gauge(out, "cachefs_process_resident_memory_bytes",
	      "resident memory of the daemon", (double)pf.rss_bytes);
	gauge(out, "cachefs_process_open_fds", "descriptors the daemon holds",
	      (double)pf.fds);
	gauge(out, "cachefs_process_threads", "threads of the daemon",
	      (double)pf.threads);
	head(out, "cachefs_info", "gauge", "the mount; always 1");
	evbuffer_add_printf(out, "cachefs_info{backend=\"");
	label_value(out, c->p.backend);
	evbuffer_add_printf(out, "\",mountpoint=\"");
	label_value(out, c->p.mountpoint);
	evbuffer_add_printf(out, "\",version=\"%s\"} 1\n", CACHEFS_VERSION);
}
