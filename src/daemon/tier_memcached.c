// SPDX-License-Identifier: MIT
/*
 * The memcached tier (see tier_memcached.h).
 *
 * Keys.  The value of path P lives under two keys, on one server:
 *
 *	data  esc(PREFIX P)           the file's bytes, flags 0: nginx's
 *	meta  esc(PREFIX) "#v" esc(P) "1 ino size mtime_ns ctime_ns sum"
 *	missing  esc(PREFIX) "#n" esc(P)  "1 ino size mtime_ns ctime_ns 0",
 *	                              the directory's version when P was
 *	                              not there
 *
 * esc() is nginx's ngx_escape_uri(NGX_ESCAPE_MEMCACHED).  nginx asks for
 * PREFIX$uri and $uri always starts with "/", so it never asks for a meta
 * key.  The server is picked from PREFIX P unescaped, the group key of
 * libmemcached's *_by_key calls, the way nginx's "hash $memcached_key"
 * picks it: ((crc32(key) >> 16) & 0x7fff) % servers, which is
 * libmemcached's CRC hash with MODULA distribution.  Both keys being on
 * one server, one round trip gets both.
 *
 * Pairs.  put() writes data, then meta; forget() deletes meta, then data.
 * meta's sum is a hash of the data, and get() serves a value only when
 * both keys are there and the data has meta's size and sum.  So however
 * two writers (or a writer and a forget) interleave, a reader gets bytes
 * under the version they were stored with, or a miss: never one writer's
 * bytes under another's version.  nginx reads the data key alone and gets
 * whichever bytes were set last.  A writer that read a file before it
 * changed and stores after the change's forget leaves the old bytes there
 * until a cachefs reading the file sees the old version in meta and
 * replaces both; closing that would take conditional writes on the
 * server, which memcached's text protocol has none of that fit.
 *
 * Failure, server by server.  Any error but a miss marks the server that
 * gave it down: requests for its keys are skipped (-EAGAIN) until a
 * deadline, 1 s and then doubling up to 30 s, while the other servers go
 * on serving theirs.  Then one request probes the server ("stats
 * settings", which also tells its largest item) over a connection of its
 * own, delivers the deletes that waited for it, and only then is the
 * server up again.  A forget() that cannot be delivered waits in the
 * server's bounded list; when the list overflows the probe flushes that
 * server instead: a lost delete would let nginx serve bytes the file no
 * longer has.  Keys never move to another server (no auto-eject): nginx
 * would not look for them there.
 */
#include "tier_memcached.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmemcached/memcached.h>
#include <libmemcached/util.h>

#define KEY_MAX TIER_MEMCACHED_KEY_MAX
#define KEY_BUF (KEY_MAX + 1)
#define DEFAULT_PORT 11211
#define DEFAULT_TIMEOUT_MS 50
#define MAX_TIMEOUT_MS 60000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define PENDING_MAX 4096 /* deletes waiting; more: flush_all */
#define POOL_MAX 64	 /* connections; FUSE runs fewer workers */
#define ITEM_SLACK 512	 /* memcached's item header, key, CAS, "\r\n" */
#define META_VERSION 1
#define META_MAX 128

struct counters {
	uint64_t hits, misses, stores, errors, too_big, key_too_long, deletes;
};

/* One server's health, and the deletes that wait for it. */
struct server {
	/* this server alone, for probes and flushes: the prober's only */
	memcached_st *alone;
	uint64_t item_max; /* atomic: largest value it takes; 0: not known */

	/* protected by the tier's lock */
	bool need_probe;  /* serve no request before a probe succeeds */
	bool probing;	  /* a request is probing */
	bool down;	  /* failed, and no probe succeeded since */
	int64_t retry_ns; /* CLOCK_MONOTONIC; no probe before */
	unsigned backoff_ms;
	char **pending; /* paths whose values must be deleted first */
	unsigned npending;
	bool overflow; /* some were dropped: flush_all first */
};

struct tier_memcached {
	struct tier tier;
	memcached_st *master;	 /* the configuration; only cloned */
	memcached_pool_st *pool; /* of clones, one request each at a time */
	char *prefix;
	size_t prefix_len;
	char eprefix[KEY_BUF]; /* the prefix, escaped */
	size_t eprefix_len;
	uint64_t max_file;
	unsigned ttl_s;
	unsigned servers;

	struct counters c; /* atomic */
	/*
	 * atomic: raised at each failure.  A connection last used before is
	 * closed before its next request, so that one reset (a restarted
	 * server) costs one failure, not one for each connection in the pool.
	 */
	uint64_t gen;

	struct server *srv; /* servers of them, in nginx's order */
	pthread_mutex_t lock;
	uint64_t flushes; /* protected by lock */
	unsigned unwell;  /* servers that need a probe; written under lock */
};

static struct tier_memcached *mc_of(struct tier *t)
{
	return (struct tier_memcached *)t;
}

static void count(uint64_t *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * nginx's NGX_ESCAPE_MEMCACHED table (src/core/ngx_string.c,
 * ngx_escape_uri()): a set bit escapes the byte.  That is " ", "%" and
 * 0x00-0x1f, and nothing else: not 0x7f, not the bytes of UTF-8.
 */
static const uint32_t escape_map[8] = {
	0xffffffff, 0x00000021, 0, 0, 0, 0, 0, 0,
};

/*
 * Appends esc(s) to out (KEY_BUF bytes, pos of them used); the new length,
 * or -ENAMETOOLONG past KEY_MAX.
 */
static int escape_to(char *out, int pos, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];

		if (!(escape_map[c >> 5] & (1U << (c & 0x1f)))) {
			if (pos + 1 > KEY_MAX)
				return -ENAMETOOLONG;
			out[pos++] = (char)c;
			continue;
		}
		if (pos + 3 > KEY_MAX)
			return -ENAMETOOLONG;
		out[pos++] = '%';
		out[pos++] = hex[c >> 4];
		out[pos++] = hex[c & 0xf];
	}
	return pos;
}

int tier_memcached_key(const char *prefix, const char *path, char *out,
		       size_t outlen)
{
	char key[KEY_BUF];
	int n = 0;

	if (prefix)
		n = escape_to(key, 0, prefix, strlen(prefix));
	if (n >= 0)
		n = escape_to(key, n, path, strlen(path));
	if (n < 0)
		return n;
	if ((size_t)n >= outlen)
		return -ENOBUFS;
	memcpy(out, key, (size_t)n);
	out[n] = '\0';
	return n;
}

struct mc_keys {
	char data[KEY_BUF], meta[KEY_BUF], missing[KEY_BUF];
	char group[KEY_BUF]; /* unescaped: only hashed, never sent */
	size_t data_len, meta_len, missing_len, group_len;
	unsigned server; /* the one that holds them, picked from group */
};

/*
 * path's keys.  -EINVAL: not a path in the mount; -ENAMETOOLONG: a key
 * would be over memcached's limit; -EILSEQ: path has a byte 0x7f, which
 * nginx sends as it is but libmemcached cannot read back (it ends a key
 * in a reply at a control character).  Such paths have no values here.
 */
static int make_keys(const struct tier_memcached *m, const char *path,
		     struct mc_keys *k)
{
	size_t plen = strlen(path), ep = m->eprefix_len;
	int n;

	if (path[0] != '/')
		return -EINVAL;
	if (memchr(path, 0x7f, plen))
		return -EILSEQ;
	memcpy(k->data, m->eprefix, ep);
	n = escape_to(k->data, (int)ep, path, plen);
	if (n < 0)
		return n;
	k->data_len = (size_t)n;
	k->meta_len = k->data_len + 2;
	if (k->meta_len > KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(k->meta, m->eprefix, ep);
	memcpy(k->meta + ep, "#v", 2);
	memcpy(k->meta + ep + 2, k->data + ep, k->data_len - ep);
	k->missing_len = k->meta_len;
	memcpy(k->missing, k->meta, k->meta_len);
	k->missing[ep + 1] = 'n';
	/* escaping never shortens, so this fits where the data key did */
	k->group_len = m->prefix_len + plen;
	memcpy(k->group, m->prefix, m->prefix_len);
	memcpy(k->group + m->prefix_len, path, plen);
	k->server = memcached_generate_hash(m->master, k->group, k->group_len);
	return 0;
}

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/*
 * A hash of a value's bytes (xxHash64's round and finish, one lane), so
 * that meta names the bytes it was stored with.  Little-endian words:
 * hosts of either byte order share the servers.
 */
static uint64_t value_sum(const void *val, size_t len)
{
	const uint64_t p1 = 0x9e3779b185ebca87ULL, p2 = 0xc2b2ae3d27d4eb4fULL,
		       p3 = 0x165667b19e3779f9ULL;
	const unsigned char *p = val;
	uint64_t h = p3 ^ len, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = rotl64(h + le64toh(w) * p2, 31) * p1;
	}
	for (; len; p++, len--)
		h = rotl64(h ^ (*p * p3), 11) * p1;
	h ^= h >> 33;
	h *= p2;
	h ^= h >> 29;
	h *= p3;
	h ^= h >> 32;
	return h;
}

static int format_meta(char *buf, size_t cap, const struct tier_version *v,
		       uint64_t sum)
{
	return snprintf(buf, cap,
			"%d %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64
			" %016" PRIx64,
			META_VERSION, v->ino, v->size, v->mtime_ns, v->ctime_ns,
			sum);
}

static bool parse_meta(const char *val, size_t len, struct tier_version *v,
		       uint64_t *sum)
{
	char buf[META_MAX];
	int version, end = -1;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, val, len);
	buf[len] = '\0';
	memset(v, 0, sizeof(*v)); /* dev and gen are not shared */
	if (sscanf(buf,
		   "%d %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNx64
		   "%n",
		   &version, &v->ino, &v->size, &v->mtime_ns, &v->ctime_ns, sum,
		   &end) != 6)
		return false;
	return version == META_VERSION && end == (int)len;
}

static int errno_of(memcached_return_t rc)
{
	return rc == MEMCACHED_TIMEOUT ? -ETIMEDOUT : -EIO;
}

/* A connection, fresh if the servers failed since its last request. */
static memcached_st *conn_get(struct tier_memcached *m)
{
	/* waits only when all POOL_MAX are busy, a second at most */
	struct timespec wait = { .tv_sec = 1 };
	memcached_return_t rc;
	memcached_st *mc = memcached_pool_fetch(m->pool, &wait, &rc);
	uintptr_t gen;

	if (!mc)
		return NULL;
	gen = (uintptr_t)__atomic_load_n(&m->gen, __ATOMIC_ACQUIRE);
	if ((uintptr_t)memcached_get_user_data(mc) != gen) {
		memcached_quit(mc);
		memcached_set_user_data(mc, (void *)gen);
	}
	return mc;
}

static void conn_put(struct tier_memcached *m, memcached_st *mc)
{
	memcached_pool_release(m->pool, mc);
}

/* Caller holds m->lock. */
static void need_probe(struct tier_memcached *m, struct server *sv, bool need)
{
	if (sv->need_probe != need)
		__atomic_store_n(&m->unwell, m->unwell + (need ? 1 : -1),
				 __ATOMIC_RELAXED);
	sv->need_probe = need;
}

/* Caller holds m->lock. */
static void do_drop_pending(struct server *sv)
{
	while (sv->npending)
		free(sv->pending[--sv->npending]);
}

/*
 * Remember that path's values must go before server s serves again, and
 * make its next request probe (and so deliver them) even if it was
 * marked up meanwhile.
 */
static void pend(struct tier_memcached *m, unsigned s, const char *path)
{
	struct server *sv = &m->srv[s];

	pthread_mutex_lock(&m->lock);
	if (!sv->overflow) {
		char *p = sv->npending < PENDING_MAX ? strdup(path) : NULL;

		if (p) {
			sv->pending[sv->npending++] = p;
		} else {
			/* a flush_all will do for all of them */
			do_drop_pending(sv);
			sv->overflow = true;
		}
	}
	if (!sv->need_probe) {
		need_probe(m, sv, true);
		sv->retry_ns = 0;
	}
	pthread_mutex_unlock(&m->lock);
}

/*
 * A request to server s failed: count it, and skip the server for a
 * while.  probe: it was the probe, so the wait doubles.
 */
static void fail(struct tier_memcached *m, unsigned s, bool probe)
{
	struct server *sv = &m->srv[s];

	count(&m->c.errors);
	/* a probe used the server's own connection; the pool's are not hurt */
	if (!probe)
		__atomic_add_fetch(&m->gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&m->lock);
	if (!sv->down)
		sv->backoff_ms = BACKOFF_MIN_MS;
	else if (probe)
		sv->backoff_ms = sv->backoff_ms * 2 < BACKOFF_MAX_MS
					 ? sv->backoff_ms * 2
					 : BACKOFF_MAX_MS;
	/* else: a request sent before it went down; keep the deadline */
	if (!sv->down || probe)
		sv->retry_ns = now_ns() + sv->backoff_ms * 1000000LL;
	if (probe)
		sv->probing = false;
	need_probe(m, sv, true);
	sv->down = true;
	pthread_mutex_unlock(&m->lock);
}

struct settings {
	uint64_t item_max;
	unsigned answered;
};

static memcached_return_t settings_stat(const memcached_instance_st *server,
					const char *key, size_t key_length,
					const char *value, size_t value_length,
					void *context)
{
	static const char name[] = "item_size_max";
	struct settings *s = context;
	char buf[24], *end;
	unsigned long long v;

	(void)server;
	if (key_length != sizeof(name) - 1 || memcmp(key, name, key_length))
		return MEMCACHED_SUCCESS;
	if (!value_length || value_length >= sizeof(buf))
		return MEMCACHED_SUCCESS;
	memcpy(buf, value, value_length);
	buf[value_length] = '\0';
	v = strtoull(buf, &end, 10);
	if (*end || v <= ITEM_SLACK)
		return MEMCACHED_SUCCESS;
	s->answered++;
	s->item_max = v - ITEM_SLACK;
	return MEMCACHED_SUCCESS;
}

/*
 * The server's settings: its answer is the probe's sign of life, and its
 * item_size_max bounds what is worth sending it.
 */
static int learn_settings(struct server *sv)
{
	struct settings st = { 0 };
	memcached_return_t rc;

	rc = memcached_stat_execute(sv->alone, "settings", settings_stat, &st);
	if (memcached_failed(rc) || st.answered != 1)
		return -EIO;
	__atomic_store_n(&sv->item_max, st.item_max, __ATOMIC_RELAXED);
	return 0;
}

/* Deletes k's meta key, then its data key; 0 or a negative errno. */
static int delete_keys(struct tier_memcached *m, memcached_st *mc,
		       const struct mc_keys *k)
{
	memcached_return_t rm, rd;

	rm = memcached_delete_by_key(mc, k->group, k->group_len, k->meta,
				     k->meta_len, 0);
	if (rm != MEMCACHED_SUCCESS && rm != MEMCACHED_NOTFOUND)
		return errno_of(rm);
	rd = memcached_delete_by_key(mc, k->group, k->group_len, k->data,
				     k->data_len, 0);
	if (rd != MEMCACHED_SUCCESS && rd != MEMCACHED_NOTFOUND)
		return errno_of(rd);
	if (rm == MEMCACHED_SUCCESS || rd == MEMCACHED_SUCCESS)
		count(&m->c.deletes);
	return 0;
}

/*
 * The probe of server s, over its own connection, fresh: it answers, then
 * what waited for it is delivered, and it is up only once nothing waits.
 * 0 or a negative errno.
 */
static int probe(struct tier_memcached *m, unsigned s)
{
	struct server *sv = &m->srv[s];
	int r;

	memcached_quit(sv->alone);
	r = learn_settings(sv);
	while (r == 0) {
		struct mc_keys k;
		char *path = NULL;
		bool flush = false;

		pthread_mutex_lock(&m->lock);
		if (sv->overflow) {
			flush = true;
			sv->overflow = false;
		} else if (sv->npending) {
			path = sv->pending[--sv->npending];
		} else {
			need_probe(m, sv, false);
			sv->down = sv->probing = false;
			sv->backoff_ms = BACKOFF_MIN_MS;
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		pthread_mutex_unlock(&m->lock);

		if (flush) {
			bool ok = memcached_flush(sv->alone, 0) ==
				  MEMCACHED_SUCCESS;

			pthread_mutex_lock(&m->lock);
			if (ok) {
				m->flushes++;
			} else {
				do_drop_pending(sv);
				sv->overflow = true;
				r = -EIO;
			}
			pthread_mutex_unlock(&m->lock);
			continue;
		}
		/* pend() takes only paths with keys, on this server */
		if (make_keys(m, path, &k) == 0)
			r = delete_keys(m, sv->alone, &k);
		if (r < 0)
			pend(m, s, path);
		free(path);
	}
	return r;
}

enum admit { ADMIT_GO, ADMIT_SKIP, ADMIT_PROBE };

static enum admit admit(struct tier_memcached *m, unsigned s)
{
	struct server *sv = &m->srv[s];
	enum admit a = ADMIT_GO;

	pthread_mutex_lock(&m->lock);
	if (sv->need_probe) {
		if (sv->probing || now_ns() < sv->retry_ns) {
			a = ADMIT_SKIP;
		} else {
			sv->probing = true;
			a = ADMIT_PROBE;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return a;
}

/*
 * Probes one server other than s whose probe is due, if there is one: a
 * server comes back, and gets the deletes that wait for it, even when no
 * request is for its keys.
 */
static void probe_other(struct tier_memcached *m, unsigned s)
{
	unsigned due = m->servers;

	if (!__atomic_load_n(&m->unwell, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&m->lock);
	for (unsigned o = 0; o < m->servers && due == m->servers; o++) {
		struct server *sv = &m->srv[o];

		if (o != s && sv->need_probe && !sv->probing &&
		    now_ns() >= sv->retry_ns) {
			sv->probing = true;
			due = o;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (due < m->servers && probe(m, due) < 0)
		fail(m, due, true);
}

/*
 * A connection in *mcp for one request for k's keys, when their server
 * is to be asked now (probing it first if due); -EAGAIN when it is
 * skipped.
 */
static int begin(struct tier_memcached *m, const struct mc_keys *k,
		 memcached_st **mcp)
{
	enum admit a;
	memcached_st *mc;

	probe_other(m, k->server);
	a = admit(m, k->server);

	if (a == ADMIT_SKIP)
		return -EAGAIN;
	if (a == ADMIT_PROBE && probe(m, k->server) < 0) {
		fail(m, k->server, true);
		return -EAGAIN;
	}
	mc = conn_get(m);
	if (!mc) {
		fail(m, k->server, false);
		return -EAGAIN;
	}
	*mcp = mc;
	return 0;
}

/*
 * The request for k's keys on mc is over; ok: it was answered (a miss is
 * an answer).
 */
static void end(struct tier_memcached *m, const struct mc_keys *k,
		memcached_st *mc, bool ok)
{
	conn_put(m, mc);
	if (!ok)
		fail(m, k->server, false);
}

/*
 * Asks k's server for two of k's keys, a and b, in one request: vals[0]
 * and vals[1] are their values, the caller's to free, or NULL when not
 * there.  0, -EAGAIN when the server is skipped, or its error.  (Not
 * memcached_fetch(): it takes an empty value for the end.)
 */
static int get_two(struct tier_memcached *m, const struct mc_keys *k,
		   const char *a, size_t a_len, const char *b, size_t b_len,
		   char *vals[2], size_t val_lens[2])
{
	const char *keys[2] = { a, b };
	const size_t lens[2] = { a_len, b_len };
	memcached_result_st res;
	memcached_return_t rc;
	memcached_st *mc;
	int r;

	vals[0] = vals[1] = NULL;
	r = begin(m, k, &mc);
	if (r < 0)
		return r;
	rc = memcached_mget_by_key(mc, k->group, k->group_len, keys, lens, 2);
	if (rc == MEMCACHED_SUCCESS && !memcached_result_create(mc, &res))
		rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
	if (rc != MEMCACHED_SUCCESS) {
		end(m, k, mc, false);
		return errno_of(rc);
	}
	while (memcached_fetch_result(mc, &res, &rc)) {
		const char *key = memcached_result_key_value(&res);
		size_t key_len = memcached_result_key_length(&res);
		size_t len = memcached_result_length(&res);
		size_t j = 0;

		while (j < 2 && (vals[j] || key_len != lens[j] ||
				 memcmp(key, keys[j], key_len)))
			j++;
		if (j == 2)
			continue;
		/* no copy of the value; an empty one has no buffer to take */
		vals[j] = len ? memcached_result_take_value(&res) : strdup("");
		val_lens[j] = len;
		if (!vals[j]) {
			rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
			break;
		}
	}
	memcached_result_free(&res);
	if (rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND)
		rc = MEMCACHED_SUCCESS;
	end(m, k, mc, rc == MEMCACHED_SUCCESS);
	if (rc == MEMCACHED_SUCCESS)
		return 0;
	free(vals[0]);
	free(vals[1]);
	vals[0] = vals[1] = NULL;
	return errno_of(rc);
}

/* memcached's exptime: seconds from now, or past 30 days a Unix time */
static time_t expiry(const struct tier_memcached *m)
{
	if (m->ttl_s <= 30 * 24 * 3600)
		return (time_t)m->ttl_s;
	return time(NULL) + (time_t)m->ttl_s;
}

/*
 * What is known of path (TIER_NAME), in one request: that it was found
 * missing, with its directory's version then (see TIER_MISSING), under
 * prefix#n/path; and its version and attributes, from the meta key of
 * its bytes.  Neither has bytes nginx could serve.  0, -ENOENT when
 * nothing is known, or the server's error.
 */
static ssize_t get_name(struct tier_memcached *m, const char *path,
			struct tier_name *name)
{
	size_t val_lens[2] = { 0, 0 };
	char *vals[2];
	struct mc_keys k;
	uint64_t sum;
	int r;

	memset(name, 0, sizeof(*name));
	if (make_keys(m, path, &k) < 0)
		return -ENOENT;
	r = get_two(m, &k, k.missing, k.missing_len, k.meta, k.meta_len, vals,
		    val_lens);
	if (r < 0)
		return r;
	name->missing = vals[0] && parse_meta(vals[0], val_lens[0],
					      &name->dir, &sum);
	name->found = vals[1] &&
		      parse_meta(vals[1], val_lens[1], &name->ver, &sum);
	free(vals[0]);
	free(vals[1]);
	return name->missing || name->found ? 0 : -ENOENT;
}

static int put_missing(struct tier_memcached *m, const char *path,
		       const struct tier_version *dir)
{
	char meta[META_MAX];
	struct mc_keys k;
	memcached_return_t rc;
	memcached_st *mc;
	int r, n;

	if (make_keys(m, path, &k) < 0)
		return -ENAMETOOLONG;
	r = begin(m, &k, &mc);
	if (r < 0)
		return r;
	n = format_meta(meta, sizeof(meta), dir, 0);
	rc = memcached_set_by_key(mc, k.group, k.group_len, k.missing,
				  k.missing_len, meta, (size_t)n, expiry(m), 0);
	end(m, &k, mc, rc == MEMCACHED_SUCCESS);
	return rc == MEMCACHED_SUCCESS ? 0 : errno_of(rc);
}

static ssize_t mc_get(struct tier *t, enum tier_kind kind, const char *path,
		      struct tier_version *ver, void *buf, size_t size,
		      uint64_t off)
{
	struct tier_memcached *m = mc_of(t);
	size_t val_lens[2] = { 0, 0 };
	char *vals[2];
	struct tier_name name;
	struct tier_version v;
	struct mc_keys k;
	uint64_t sum;
	ssize_t n;
	int r;

	if (kind == TIER_NAME) {
		if (size < sizeof(name))
			return -EINVAL;
		n = get_name(m, path, &name);
		memcpy(buf, &name, sizeof(name));
		return n;
	}
	if (kind != TIER_DATA)
		return -ENOENT;
	if (make_keys(m, path, &k) < 0) {
		count(&m->c.misses);
		return -ENOENT;
	}
	r = get_two(m, &k, k.meta, k.meta_len, k.data, k.data_len, vals,
		    val_lens);
	if (r < 0)
		return r;

	n = -ENOENT;
	if (vals[0] && vals[1] && parse_meta(vals[0], val_lens[0], &v, &sum) &&
	    v.size == val_lens[1] && value_sum(vals[1], val_lens[1]) == sum) {
		*ver = v;
		n = 0;
		if (off < val_lens[1]) {
			n = (ssize_t)(val_lens[1] - off < size
					      ? val_lens[1] - off
					      : size);
			memcpy(buf, vals[1] + off, (size_t)n);
		}
	}
	count(n < 0 ? &m->c.misses : &m->c.hits);
	free(vals[0]);
	free(vals[1]);
	return n;
}

/* Whether a value of len bytes is not to be sent to server s. */
static bool too_big(struct tier_memcached *m, unsigned s, size_t len)
{
	uint64_t item_max =
		__atomic_load_n(&m->srv[s].item_max, __ATOMIC_RELAXED);

	return (m->max_file && len > m->max_file) ||
	       (item_max && len > item_max);
}

/*
 * A value that is not stored leaves none under its key either: put() is
 * asked after a miss, so what is there is old, and nginx would serve it.
 * Best effort; a forget() is what guarantees it.
 */
static int refuse(struct tier_memcached *m, memcached_st *mc,
		  const struct mc_keys *k)
{
	int r = delete_keys(m, mc, k);

	end(m, k, mc, r == 0);
	count(&m->c.too_big);
	return -EFBIG;
}

static int mc_put(struct tier *t, enum tier_kind kind, const char *path,
		  const struct tier_version *ver, const void *val, size_t len)
{
	struct tier_memcached *m = mc_of(t);
	char meta[META_MAX];
	struct mc_keys k;
	memcached_return_t rc;
	memcached_st *mc;
	time_t exp;
	int r, n;

	if (kind == TIER_MISSING)
		return put_missing(m, path, ver);
	if (kind != TIER_DATA)
		return 0;
	r = make_keys(m, path, &k);
	if (r == -EINVAL)
		return r;
	if (r < 0) {
		count(&m->c.key_too_long);
		return -ENAMETOOLONG;
	}
	r = begin(m, &k, &mc);
	if (r < 0 && too_big(m, k.server, len)) {
		count(&m->c.too_big);
		return -EFBIG;
	}
	if (r < 0)
		return r;
	if (too_big(m, k.server, len))
		return refuse(m, mc, &k);

	n = format_meta(meta, sizeof(meta), ver, value_sum(val, len));
	exp = expiry(m);
	rc = memcached_set_by_key(mc, k.group, k.group_len, k.data, k.data_len,
				  val, len, exp, 0);
	/* a server with a smaller limit than it had; it dropped the data */
	if (rc == MEMCACHED_E2BIG)
		return refuse(m, mc, &k);
	if (rc == MEMCACHED_SUCCESS)
		rc = memcached_set_by_key(mc, k.group, k.group_len, k.meta,
					  k.meta_len, meta, (size_t)n, exp, 0);
	end(m, &k, mc, rc == MEMCACHED_SUCCESS);
	if (rc != MEMCACHED_SUCCESS)
		return errno_of(rc);
	count(&m->c.stores);
	return 0;
}

static int mc_forget(struct tier *t, const char *path)
{
	struct tier_memcached *m = mc_of(t);
	struct mc_keys k;
	memcached_st *mc;
	int r;

	if (make_keys(m, path, &k) < 0)
		return 0; /* nothing is ever stored under it */
	r = begin(m, &k, &mc);
	if (r == 0) {
		r = delete_keys(m, mc, &k);
		end(m, &k, mc, r == 0);
	}
	/*
	 * Skipped, or failed: nginx may still be reading from these servers
	 * (slow for us is not down for it), so once more, past the skipping,
	 * before the delete waits for the probe.
	 */
	if (r < 0 && (mc = conn_get(m))) {
		r = delete_keys(m, mc, &k);
		conn_put(m, mc);
	}
	if (r < 0) {
		pend(m, k.server, path);
		return -EAGAIN;
	}
	return 0;
}

/*
 * Nothing: every writer keeps the shared servers current (a changed file's
 * values are forgotten, a stale one is replaced by the next reader), so
 * flushing them is never needed for correctness, and would empty them for
 * every other host and nginx too.
 */
static void mc_clear(struct tier *t)
{
	(void)t;
}

static void mc_get_stats(struct tier *t, struct tier_stats *st)
{
	struct tier_memcached *m = mc_of(t);

	memset(st, 0, sizeof(*st)); /* entries, bytes, budget: not known */
	st->hits = load(&m->c.hits);
	st->misses = load(&m->c.misses);
	st->stores = load(&m->c.stores);
	st->errors = load(&m->c.errors);
	st->too_big = load(&m->c.too_big);
	st->key_too_long = load(&m->c.key_too_long);
	st->deletes = load(&m->c.deletes);
	st->servers = m->servers;
	pthread_mutex_lock(&m->lock);
	for (unsigned s = 0; s < m->servers; s++)
		st->servers_down += m->srv[s].down;
	pthread_mutex_unlock(&m->lock);
	st->down = st->servers_down > 0;
}

/* The servers' memory is theirs to manage. */
static void mc_set_budget(struct tier *t, uint64_t budget)
{
	(void)t;
	(void)budget;
}

static void mc_free(struct tier *t)
{
	struct tier_memcached *m = mc_of(t);

	if (!m)
		return;
	if (m->pool)
		memcached_pool_destroy(m->pool);
	for (unsigned s = 0; m->srv && s < m->servers; s++) {
		struct server *sv = &m->srv[s];

		memcached_free(sv->alone);
		if (sv->pending)
			do_drop_pending(sv);
		free(sv->pending);
	}
	free(m->srv);
	memcached_free(m->master);
	free(m->prefix);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct tier_ops memcached_ops = {
	.name = "memcached",
	.by_path = true,
	.get = mc_get,
	.put = mc_put,
	.forget = mc_forget,
	.clear = mc_clear,
	.get_stats = mc_get_stats,
	.set_budget = mc_set_budget,
	.free = mc_free,
};

void tier_memcached_get_stats(struct tier *t, struct tier_memcached_stats *st)
{
	struct tier_memcached *m = mc_of(t);

	memset(st, 0, sizeof(*st));
	st->servers = m->servers;
	pthread_mutex_lock(&m->lock);
	st->flushes = m->flushes;
	for (unsigned s = 0; s < m->servers; s++) {
		const struct server *sv = &m->srv[s];
		uint64_t item_max =
			__atomic_load_n(&sv->item_max, __ATOMIC_RELAXED);

		st->pending += sv->npending;
		st->overflow |= sv->overflow;
		st->servers_down += sv->down;
		if (item_max && (!st->item_max || item_max < st->item_max))
			st->item_max = item_max;
	}
	pthread_mutex_unlock(&m->lock);
}

int tier_memcached_server_of(struct tier *t, const char *path)
{
	struct tier_memcached *m = mc_of(t);
	struct mc_keys k;
	int r = make_keys(m, path, &k);

	return r < 0 ? r : (int)k.server;
}

static int fail_cfg(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_cfg(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The port of ":PORT" at s, up to end; 0 if it is not one. */
static unsigned parse_port(const char *s, const char *end)
{
	unsigned long port = 0;

	if (s == end || end - s > 5)
		return 0;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
		port = port * 10 + (unsigned long)(*s - '0');
	}
	return port <= 65535 ? (unsigned)port : 0;
}

/* Adds the servers of "HOST[:PORT][,HOST[:PORT]...]" to mc, in order. */
static int add_servers(memcached_st *mc, const char *list, char *err,
		       size_t errlen)
{
	const char *s = list;

	for (;;) {
		const char *end = strchrnul(s, ','), *e = end, *host, *host_end;
		const char *colon;
		unsigned port = DEFAULT_PORT;
		memcached_return_t rc;
		char name[256];

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e)
			return fail_cfg(err, errlen,
					"memcached: an empty server in \"%s\"",
					list);
		if (*s == '[') {
			host = s + 1;
			host_end = memchr(host, ']', (size_t)(e - host));
			if (!host_end)
				return fail_cfg(err, errlen,
						"memcached: no ']' in \"%.*s\"",
						(int)(e - s), s);
			colon = host_end + 1 < e ? host_end + 1 : NULL;
			if (colon && *colon != ':')
				return fail_cfg(err, errlen,
						"memcached: \"%.*s\": ':' "
						"expected after ']'",
						(int)(e - s), s);
		} else {
			host = s;
			colon = memchr(s, ':', (size_t)(e - s));
			host_end = colon ? colon : e;
			if (colon &&
			    memchr(colon + 1, ':', (size_t)(e - colon - 1)))
				return fail_cfg(err, errlen,
						"memcached: \"%.*s\": an IPv6 "
						"address goes in brackets, as "
						"in [::1]:11211",
						(int)(e - s), s);
		}
		if (colon && !(port = parse_port(colon + 1, e)))
			return fail_cfg(err, errlen,
					"memcached: \"%.*s\": a bad port",
					(int)(e - s), s);
		if (host_end == host || host_end - host >= (int)sizeof(name))
			return fail_cfg(err, errlen,
					"memcached: \"%.*s\": a bad host",
					(int)(e - s), s);
		memcpy(name, host, (size_t)(host_end - host));
		name[host_end - host] = '\0';
		rc = memcached_server_add(mc, name, (in_port_t)port);
		if (memcached_failed(rc))
			return fail_cfg(err, errlen, "memcached: \"%.*s\": %s",
					(int)(e - s), s,
					memcached_strerror(mc, rc));
		if (!*end)
			return 0;
		s = end + 1;
	}
}

/*
 * Refuses what a configuration string may set that would take the keys
 * away from where nginx looks for them.
 */
static int check_master(memcached_st *mc, const char *servers, char *err,
			size_t errlen)
{
	memcached_return_t rc;
	const char *ns;

	if (!memcached_server_count(mc))
		return fail_cfg(err, errlen, "memcached: no servers in \"%s\"",
				servers);
	if (memcached_behavior_get(mc, MEMCACHED_BEHAVIOR_USE_UDP))
		return fail_cfg(err, errlen,
				"memcached: --USE-UDP: nginx speaks TCP");
	if (memcached_behavior_get(mc, MEMCACHED_BEHAVIOR_SORT_HOSTS))
		return fail_cfg(
			err, errlen,
			"memcached: --SORT-HOSTS: the servers must stay "
			"in nginx's order");
	ns = memcached_callback_get(mc, MEMCACHED_CALLBACK_NAMESPACE, &rc);
	if (rc == MEMCACHED_SUCCESS && ns && *ns)
		return fail_cfg(err, errlen,
				"memcached: --NAMESPACE: nginx asks for keys "
				"without it; use the prefix");
	return 0;
}

/* What nginx needs of the keys, and short timeouts. */
static int set_behaviors(memcached_st *mc, unsigned timeout_ms, char *err,
			 size_t errlen)
{
	const struct {
		memcached_behavior_t flag;
		uint64_t value;
	} set[] = {
		{ MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0 }, /* nginx's */
		{ MEMCACHED_BEHAVIOR_NOREPLY, 0 },	   /* deletes answer */
		{ MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 0 },
		{ MEMCACHED_BEHAVIOR_VERIFY_KEY, 0 }, /* UTF-8 is fine */
		{ MEMCACHED_BEHAVIOR_SUPPORT_CAS, 0 },
		{ MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS, 0 },
		{ MEMCACHED_BEHAVIOR_HASH_WITH_PREFIX_KEY, 0 },
		{ MEMCACHED_BEHAVIOR_TCP_NODELAY, 1 },
		/* a key stays on its server, down or not */
		{ MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS, 0 },
		{ MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0 },
		/* seconds; this tier's backoff decides when to retry */
		{ MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0 },
		{ MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, timeout_ms },
		{ MEMCACHED_BEHAVIOR_POLL_TIMEOUT, timeout_ms },
		/* these two in microseconds */
		{ MEMCACHED_BEHAVIOR_SND_TIMEOUT, timeout_ms * 1000ULL },
		{ MEMCACHED_BEHAVIOR_RCV_TIMEOUT, timeout_ms * 1000ULL },
		/* nginx's "hash": ((crc32 >> 16) & 0x7fff) % servers */
		{ MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_CRC },
		{ MEMCACHED_BEHAVIOR_DISTRIBUTION,
		  MEMCACHED_DISTRIBUTION_MODULA },
	};

	for (size_t k = 0; k < sizeof(set) / sizeof(set[0]); k++) {
		memcached_return_t rc =
			memcached_behavior_set(mc, set[k].flag, set[k].value);

		if (memcached_failed(rc))
			return fail_cfg(
				err, errlen, "memcached: %s: %s",
				libmemcached_string_behavior(set[k].flag),
				memcached_strerror(mc, rc));
	}
	if (memcached_behavior_get(mc, MEMCACHED_BEHAVIOR_HASH) !=
		    MEMCACHED_HASH_CRC ||
	    memcached_behavior_get(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION) !=
		    MEMCACHED_DISTRIBUTION_MODULA)
		return fail_cfg(err, errlen,
				"memcached: cannot set nginx's distribution");
	return 0;
}

static memcached_st *new_master(const char *servers, char *err, size_t errlen,
				int *r)
{
	memcached_st *mc;

	if (strncmp(servers, "--", 2)) {
		mc = memcached_create(NULL);
		if (!mc) {
			*r = -ENOMEM;
			return NULL;
		}
		*r = add_servers(mc, servers, err, errlen);
	} else {
		size_t len = strlen(servers);
		char msg[256] = "";

		/* its parser takes no blank at the end */
		while (len && isspace((unsigned char)servers[len - 1]))
			len--;
		if (libmemcached_check_configuration(servers, len, msg,
						     sizeof(msg)) !=
		    MEMCACHED_SUCCESS) {
			*r = fail_cfg(err, errlen, "memcached: \"%s\": %s",
				      servers, msg);
			return NULL;
		}
		mc = memcached(servers, len);
		if (!mc) {
			*r = fail_cfg(err, errlen, "memcached: \"%s\": refused",
				      servers);
			return NULL;
		}
		*r = 0;
	}
	if (!*r)
		*r = check_master(mc, servers, err, errlen);
	if (*r) {
		memcached_free(mc);
		return NULL;
	}
	return mc;
}

/*
 * Each server's state, with a connection to it alone, set up as the
 * master's; the first request for its keys probes it.
 */
static int new_servers(struct tier_memcached *m, unsigned timeout_ms,
		       char *err, size_t errlen)
{
	m->srv = calloc(m->servers, sizeof(*m->srv));
	if (!m->srv)
		return -ENOMEM;
	for (unsigned s = 0; s < m->servers; s++) {
		const memcached_instance_st *in =
			memcached_server_instance_by_position(m->master, s);
		struct server *sv = &m->srv[s];
		const char *name = memcached_server_name(in);
		memcached_return_t rc;
		int r;

		need_probe(m, sv, true);
		sv->backoff_ms = BACKOFF_MIN_MS;
		sv->pending = calloc(PENDING_MAX, sizeof(*sv->pending));
		sv->alone = memcached_create(NULL);
		if (!sv->pending || !sv->alone)
			return -ENOMEM;
		if (!strcmp(memcached_server_type(in), "SOCKET"))
			rc = memcached_server_add_unix_socket(sv->alone, name);
		else
			rc = memcached_server_add(sv->alone, name,
						  memcached_server_port(in));
		if (memcached_failed(rc))
			return fail_cfg(err, errlen, "memcached: %s: %s", name,
					memcached_strerror(sv->alone, rc));
		r = set_behaviors(sv->alone, timeout_ms, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

int tier_memcached_new(const struct tier_memcached_cfg *cfg, struct tier **out,
		       char *err, size_t errlen)
{
	const char *prefix = cfg->prefix ? cfg->prefix : "";
	unsigned timeout_ms = cfg->timeout_ms;
	struct tier_memcached *m;
	int n, r;

	if (err && errlen)
		err[0] = '\0';
	if (!timeout_ms)
		timeout_ms = DEFAULT_TIMEOUT_MS;
	if (timeout_ms > MAX_TIMEOUT_MS)
		timeout_ms = MAX_TIMEOUT_MS;
	if (!cfg->servers || !*cfg->servers)
		return fail_cfg(err, errlen, "memcached: no servers");
	if (strchr(prefix, 0x7f))
		return fail_cfg(err, errlen,
				"memcached: the prefix has a byte 0x7f");
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->tier.ops = &memcached_ops;
	m->max_file = cfg->max_file;
	m->ttl_s = cfg->ttl_s;

	/* room for a meta key: "#v" and at least "/" */
	n = escape_to(m->eprefix, 0, prefix, strlen(prefix));
	if (n < 0 || n + 3 > KEY_MAX) {
		r = fail_cfg(err, errlen, "memcached: the prefix is too long");
		goto out_free;
	}
	m->eprefix_len = (size_t)n;
	m->prefix = strdup(prefix);
	m->prefix_len = strlen(prefix);
	r = -ENOMEM;
	if (!m->prefix)
		goto out_free;

	m->master = new_master(cfg->servers, err, errlen, &r);
	if (!m->master)
		goto out_free;
	r = set_behaviors(m->master, timeout_ms, err, errlen);
	if (r)
		goto out_free;
	m->servers = memcached_server_count(m->master);
	r = new_servers(m, timeout_ms, err, errlen);
	if (r)
		goto out_free;
	m->pool = memcached_pool_create(m->master, 1, POOL_MAX);
	r = -ENOMEM;
	if (!m->pool)
		goto out_free;
	*out = &m->tier;
	return 0;

out_free:
	mc_free(&m->tier);
	return r;
}
