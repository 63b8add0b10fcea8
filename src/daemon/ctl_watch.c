// SPDX-License-Identifier: MIT
/*
 * The "watch" stream of the control socket (protocol in ctl_proto.h):
 * a client's journal iterator, pumped into its output buffer while the
 * client reads, and woken by the appending threads.
 *
 * A client that stops reading stops being pumped: it only falls behind
 * in the journal, which holds what it has not read (its cursor, if it
 * has one, keeps the records from being trimmed).  So any number of
 * watchers costs the daemon a buffer each, never a queue.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "ctl_int.h"
#include "ctl_proto.h"

#define PUMP_BATCH 512 /* records per client per turn of the loop */

struct watch {
	struct journal_iter *it;
	uint64_t next;	     /* the next seq the client expects */
	char *prefix;	     /* only paths at or below it; NULL: all */
	size_t prefix_len;
	bool follow;
	uint64_t end;	     /* without follow: the last seq to send */
	bool ended;	     /* "end" sent; the stream stays for acks */
	char cursor[JOURNAL_CURSOR_NAME_MAX + 1]; /* "" for none */
};

static struct journal *journal_of(struct ctl *c)
{
	return changes_journal(c->p.fs->changes);
}

static void wake(void *arg);

void ctl_watch_free(struct ctl *c, struct client *cl)
{
	struct watch *w = cl->watch;

	if (!w)
		return;
	journal_iter_close(w->it);
	free(w->prefix);
	free(w);
	cl->watch = NULL;
	if (--c->nwatches == 0)
		changes_unlisten(c->p.fs->changes, wake, c);
}

static bool path_matches(const struct watch *w, const char *path)
{
	return path && !strncmp(path, w->prefix, w->prefix_len) &&
	       (path[w->prefix_len] == '/' || path[w->prefix_len] == '\0' ||
		w->prefix_len == 1);
}

static bool wanted(const struct watch *w, const struct journal_record *r)
{
	return !w->prefix || path_matches(w, r->path) ||
	       path_matches(w, r->path2);
}

static const char *class_name(enum journal_class k)
{
	switch (k) {
	case JOURNAL_CLASS_ENTRY:
		return "entry";
	case JOURNAL_CLASS_DATA:
		return "data";
	case JOURNAL_CLASS_METADATA:
		return "metadata";
	default:
		return "none";
	}
}

static void put_line(struct client *cl, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s) {
		bufferevent_write(cl->bev, s, strlen(s));
		bufferevent_write(cl->bev, "\n", 1);
	}
	free(s);
	json_decref(j);
}

static void put_event(struct client *cl, const struct journal_record *r)
{
	static const char hex[] = "0123456789abcdef";
	char h[2 * JOURNAL_HANDLE_MAX + 1];
	const unsigned char *b = r->handle;
	json_t *j;

	j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "seq",
		      (json_int_t)r->seq, "time_ns", (json_int_t)r->time_ns,
		      "op", journal_op_name(r->op), "class",
		      class_name(journal_op_class(r->op)), "path", r->path,
		      "dev", (json_int_t)r->dev, "ino", (json_int_t)r->ino,
		      "gen", (json_int_t)r->gen);
	if (j && r->path2)
		json_object_set_new(j, "path2", json_string(r->path2));
	if (j && r->handle_len) {
		for (size_t k = 0; k < r->handle_len; k++) {
			h[2 * k] = hex[b[k] >> 4];
			h[2 * k + 1] = hex[b[k] & 15];
		}
		h[2 * r->handle_len] = '\0';
		json_object_set_new(j, "handle", json_string(h));
	}
	put_line(cl, j);
}

static void put_gap(struct client *cl, uint64_t from, uint64_t to)
{
	stats_inc(watch_gaps);
	put_line(cl, json_pack("{s:{s:I, s:I}}", "gap", "from",
			       (json_int_t)from, "to", (json_int_t)to));
}

/* (Re)open the iterator at w->next, past a gap if the journal lost it. */
static int watch_seek(struct ctl *c, struct client *cl)
{
	struct watch *w = cl->watch;
	struct journal_stats st;
	int r;

	journal_iter_close(w->it);
	w->it = NULL;
	r = journal_iter_open(journal_of(c), w->next, &w->it);
	if (r != -ERANGE)
		return r;
	journal_get_stats(journal_of(c), &st);
	put_gap(cl, w->next, st.oldest_seq - 1);
	w->next = st.oldest_seq;
	return journal_iter_open(journal_of(c), w->next, &w->it);
}

/*
 * Send what the client may take now: 1 when there is more to send at
 * once, 0 when it is waiting (for the client or for new records), or
 * negative when the stream is over (the client is closing).
 */
static int pump(struct ctl *c, struct client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	struct watch *w = cl->watch;
	struct journal_record r;
	int n;

	for (int k = 0; k < PUMP_BATCH; k++) {
		if (evbuffer_get_length(out) >= OUT_PAUSE)
			return 0;
		if (!w->follow && w->next > w->end)
			goto end;
		n = journal_iter_next(w->it, &r);
		if (n == -ERANGE) { /* trimmed under it */
			n = watch_seek(c, cl);
			if (n < 0)
				goto fail;
			continue;
		}
		if (n < 0)
			goto fail;
		if (n == 0) {
			if (!w->follow)
				goto end;
			return 0;
		}
		if (r.seq > w->next) /* damaged records were skipped */
			put_gap(cl, w->next, r.seq - 1);
		w->next = r.seq + 1;
		if (!w->follow && r.seq > w->end)
			goto end;
		if (wanted(w, &r)) {
			put_event(cl, &r);
			stats_inc(watch_events);
		}
	}
	return 1;

end:
	put_line(cl, json_pack("{s:I}", "end", (json_int_t)w->end));
	w->ended = true;
	/* with a cursor, the client may yet ack what it was sent */
	if (!w->cursor[0])
		ctl_client_close(cl, NULL);
	return -1;
fail:
	ctl_client_close(cl, NULL);
	return -1;
}

void ctl_watch_pump(struct ctl *c, struct client *cl)
{
	if (cl->watch && !cl->closing && !cl->watch->ended && pump(c, cl) > 0)
		event_active(c->watch_ev, 0, 0); /* the rest after others */
}

/* New records, or a pump left unfinished: every watcher gets a turn. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;
	struct client *cl, *next;

	(void)fd;
	(void)what;
	__atomic_store_n(&c->watch_woken, false, __ATOMIC_RELAXED);
	for (cl = c->client_list; cl; cl = next) {
		next = cl->next; /* a pump may free cl */
		ctl_watch_pump(c, cl);
	}
}

/* From the appending threads: cheap, and once until the loop runs. */
static void wake(void *arg)
{
	struct ctl *c = arg;

	if (!__atomic_exchange_n(&c->watch_woken, true, __ATOMIC_RELAXED))
		event_active(c->watch_ev, 0, 0);
}

int ctl_watch_setup(struct ctl *c)
{
	if (!c->p.fs->changes)
		return 0;
	c->watch_ev = event_new(c->base, -1, 0, on_watch, c);
	if (!c->watch_ev)
		return -ENOMEM;
	return 0;
}

void ctl_watch_teardown(struct ctl *c)
{
	if (c->p.fs->changes)
		changes_unlisten(c->p.fs->changes, wake, c);
	if (c->watch_ev)
		event_free(c->watch_ev);
}

static char *answer_error(const char *fmt, const char *arg)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg);
	return ctl_response_error(msg);
}

/* A "path" argument: absolute, without trailing slashes. */
static char *clean_prefix(const char *path, size_t *len)
{
	size_t n = strlen(path);

	if (path[0] != '/')
		return NULL;
	while (n > 1 && path[n - 1] == '/')
		n--;
	*len = n;
	return strndup(path, n);
}

char *ctl_watch_start(struct ctl *c, struct client *cl, json_t *args)
{
	struct journal *j;
	struct journal_stats st;
	struct watch *w;
	json_error_t je;
	json_int_t since = 0;
	const char *cursor = NULL, *path = NULL;
	int follow = 1, r;
	uint64_t acked;
	char msg[256];

	if (!c->p.fs->changes)
		return ctl_response_error("the journal is off (journal=off): "
					  "there is nothing to watch");
	if (json_unpack_ex(args, &je, JSON_STRICT, "{s?I, s?s, s?s, s?b}",
			   "since", &since, "cursor", &cursor, "path", &path,
			   "follow", &follow) < 0)
		return answer_error("bad arguments: %s", je.text);
	if (since < 0)
		return ctl_response_error("since must be 0 or more");
	j = journal_of(c);
	w = calloc(1, sizeof(*w));
	if (!w)
		return ctl_response_error("out of memory");
	w->follow = follow;
	if (path && !(w->prefix = clean_prefix(path, &w->prefix_len))) {
		free(w);
		return ctl_response_error("path must start with /");
	}
	journal_get_stats(j, &st);
	w->end = st.newest_seq;
	w->next = since ? (uint64_t)since : st.newest_seq + 1;
	if (cursor) {
		snprintf(w->cursor, sizeof(w->cursor), "%s", cursor);
		r = journal_cursor_get(j, cursor, &acked);
		if (r == 0 && !since)
			w->next = acked + 1;
		else if (r == -ENOENT)
			r = journal_cursor_set(j, cursor, w->next - 1);
		if (r < 0) {
			free(w->prefix);
			free(w);
			if (r == -EINVAL)
				return answer_error(
					"bad cursor name '%s': 1 to 64 of "
					"A-Z a-z 0-9 _ . -",
					cursor);
			if (r == -ENOSPC)
				return ctl_response_error("too many cursors");
			snprintf(msg, sizeof(msg), "cursor %s: %s", cursor,
				 strerror(-r));
			return ctl_response_error(msg);
		}
	}
	cl->watch = w;
	if (c->nwatches++ == 0 &&
	    changes_listen(c->p.fs->changes, wake, c) < 0) {
		ctl_watch_free(c, cl);
		return ctl_response_error("too many listeners of the journal");
	}
	/* the answer first; a gap, if any, is the stream's first line */
	{
		json_t *d = json_pack("{s:I, s:I, s:I, s:s?}", "from",
				      (json_int_t)w->next, "oldest",
				      (json_int_t)st.oldest_seq, "newest",
				      (json_int_t)st.newest_seq, "cursor",
				      cursor);
		char *a = ctl_response_ok(d);

		if (a)
			bufferevent_write(cl->bev, a, strlen(a));
		free(a);
	}
	stats_inc(watch_streams);
	r = watch_seek(c, cl);
	if (r < 0) {
		ctl_client_close(cl, NULL);
		return NULL;
	}
	ctl_watch_pump(c, cl);
	return NULL;
}

char *ctl_watch_request(struct ctl *c, struct client *cl,
			const struct ctl_request *req)
{
	struct watch *w = cl->watch;
	json_error_t je;
	json_int_t seq;
	int r;

	if (strcmp(req->cmd, "ack") != 0)
		return answer_error("'%s' on a watch stream: only ack is "
				    "taken here",
				    req->cmd);
	if (json_unpack_ex(req->args, &je, JSON_STRICT, "{s:I}", "seq",
			   &seq) < 0)
		return answer_error("bad arguments: %s", je.text);
	if (!w->cursor[0])
		return ctl_response_error("this stream has no cursor to ack");
	if (seq < 0 || (uint64_t)seq >= w->next)
		return ctl_response_error("ack of a record not sent yet");
	r = journal_cursor_set(journal_of(c), w->cursor, (uint64_t)seq);
	if (r < 0)
		return answer_error("cannot save the cursor: %s",
				    strerror(-r));
	changes_make_room(c->p.fs->changes);
	return ctl_response_ok(json_pack("{s:I}", "acked", seq));
}

/* ---- the journal in status, stats, metrics ---------------------------- */

int ctl_cursors(struct ctl *c, struct ctl_cursor *out, size_t max)
{
	struct journal_cursor_info ci[JOURNAL_CURSORS_MAX];
	struct journal_stats st;
	struct journal *j;
	size_t n;

	if (!c->p.fs->changes)
		return 0;
	j = journal_of(c);
	journal_get_stats(j, &st);
	n = journal_cursor_list(j, ci, JOURNAL_CURSORS_MAX);
	if (n > max)
		n = max;
	for (size_t k = 0; k < n; k++) {
		_Static_assert(sizeof(out[k].name) == sizeof(ci[k].name),
			       "cursor names");
		memcpy(out[k].name, ci[k].name, sizeof(out[k].name));
		out[k].acked = ci[k].acked;
		out[k].lag_records = st.newest_seq > ci[k].acked
					     ? st.newest_seq - ci[k].acked
					     : 0;
		out[k].lag_seconds = 0;
		out[k].lag_bytes = 0;
		if (out[k].lag_records) {
			struct journal_lag lag;

			journal_lag(j, ci[k].acked, &lag);
			out[k].lag_seconds = lag.seconds;
			out[k].lag_bytes = lag.bytes;
		}
	}
	return (int)n;
}

json_t *ctl_cursors_json(struct ctl *c)
{
	struct ctl_cursor cur[JOURNAL_CURSORS_MAX];
	int n = ctl_cursors(c, cur, JOURNAL_CURSORS_MAX);
	json_t *a = json_array();

	for (int k = 0; a && k < n; k++)
		json_array_append_new(
			a, json_pack("{s:s, s:I, s:I, s:I, s:f}", "name",
				     cur[k].name, "acked",
				     (json_int_t)cur[k].acked, "lag_records",
				     (json_int_t)cur[k].lag_records,
				     "lag_bytes", (json_int_t)cur[k].lag_bytes,
				     "lag_seconds", cur[k].lag_seconds));
	return a;
}

json_t *ctl_journal_json(struct ctl *c)
{
	struct changes_stats cs;
	char sync[16];
	json_t *j;

	if (!c->p.fs->changes)
		return json_pack("{s:b}", "on", 0);
	changes_get_stats(c->p.fs->changes, &cs);
	config_format(c->cfg, config_find("journal_sync"), sync, sizeof(sync));
	j = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:s, s:s?, s:o}",
		      "on", 1, "dir", changes_dir(c->p.fs->changes), "sync",
		      sync,
		      "bytes", (json_int_t)cs.j.bytes, "max",
		      (json_int_t)cs.j.max_bytes, "segments",
		      (json_int_t)cs.j.segments, "oldest",
		      (json_int_t)cs.j.oldest_seq, "newest",
		      (json_int_t)cs.j.newest_seq, "appended",
		      (json_int_t)cs.j.appended, "coalesced",
		      (json_int_t)cs.j.coalesced, "syncs",
		      (json_int_t)cs.j.syncs, "refused", (json_int_t)cs.refused,
		      "unrecorded", (json_int_t)cs.unrecorded, "torn_truncated",
		      (json_int_t)cs.j.torn_truncated, "corrupt_skipped",
		      (json_int_t)cs.j.corrupt_skipped, "full", cs.full,
		      "alarm", cs.alarm, "full_policy", cs.policy, "failed",
		      cs.failed ? strerror(-cs.failed) : NULL, "cursors",
		      ctl_cursors_json(c));
	return j;
}
