// SPDX-License-Identifier: MIT
/*
 * Peer invalidation over UDP (see peers.h).
 *
 * Worker threads add changed paths to a pending set and, when it was
 * empty, activate an event of the control loop, which sends the set as
 * soon as it runs: the latency is one loop wake-up, and a burst of
 * changes goes out in few datagrams.
 */
#include "peers.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uthash.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"

#define MAC_LEN 32
#define DGRAM_MAX 60000
#define PENDING_MAX 100000 /* beyond: send a flush-everything instead */
#define MAX_PEERS 64

struct pending {
	UT_hash_handle hh;
	char path[];
};

struct sender {
	UT_hash_handle hh;
	char id[17];
	uint64_t seq; /* last seen */
};

struct peers {
	struct cfs *fs;
	unsigned char secret[256];
	size_t secret_len;
	char id[17];
	uint64_t seq; /* last sent; loop thread */
	int rx_fd, tx_fd;
	struct sockaddr_storage to[MAX_PEERS];
	socklen_t to_len[MAX_PEERS];
	int npeers;
	struct event *rx_ev, *flush_ev;
	struct sender *senders; /* loop thread */

	pthread_mutex_t lock;
	struct pending *pending; /* protected by lock */
	size_t npending;	 /* protected by lock */
	bool overflow;		 /* protected by lock */
};

static int resolve(const char *spec, const char *def_host,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256], port[32];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai;
	int r;

	if (!colon) {
		snprintf(host, sizeof(host), "%s", def_host);
		snprintf(port, sizeof(port), "%s", spec);
	} else {
		int n = (int)(colon - spec);

		if (spec[0] == '[' && n > 1 && spec[n - 1] == ']')
			snprintf(host, sizeof(host), "%.*s", n - 2, spec + 1);
		else
			snprintf(host, sizeof(host), "%.*s", n, spec);
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int read_secret(struct peers *p, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return log_error_errno(errno, "peer_secret_file %s", path);
	n = read(fd, p->secret, sizeof(p->secret));
	close(fd);
	while (n > 0 && (p->secret[n - 1] == '\n' || p->secret[n - 1] == '\r'))
		n--;
	if (n < 8) {
		log_error("peer_secret_file %s: a secret of at least 8 bytes "
			  "is needed",
			  path);
		return -EINVAL;
	}
	p->secret_len = (size_t)n;
	return 0;
}

static int sockaddr_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	return getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 ? ss.ss_family
								  : -1;
}

/* An IPv4 peer, as the dual-stack sending socket addresses it. */
static void map_v4(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in v4;
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };

	if (ss->ss_family != AF_INET)
		return;
	memcpy(&v4, ss, sizeof(v4));
	v6.sin6_port = v4.sin_port;
	v6.sin6_addr.s6_addr[10] = 0xff;
	v6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
	memcpy(ss, &v6, sizeof(v6));
	*len = sizeof(v6);
}

int peers_new(struct cfs *fs, struct peers **out)
{
	const struct config *cfg = fs->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned char rnd[8];
	struct peers *p;
	char *list, *save = NULL, *tok;
	int r;

	*out = NULL;
	if (!cfg->listen && !cfg->peers)
		return 0;
	if (!cfg->peer_secret_file) {
		log_error("listen= and peers= need peer_secret_file=");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fs = fs;
	p->rx_fd = p->tx_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	r = read_secret(p, cfg->peer_secret_file);
	if (r < 0)
		goto out_free;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = log_error_errno(-EIO, "no random bytes for the peer id");
		goto out_free;
	}
	for (int k = 0; k < 8; k++)
		snprintf(p->id + 2 * k, 3, "%02x", rnd[k]);
	if (cfg->listen) {
		if (resolve(cfg->listen, "127.0.0.1", &ss, &sl) < 0) {
			log_error("listen=%s: not an address", cfg->listen);
			r = -EINVAL;
			goto out_free;
		}
		p->rx_fd = socket(ss.ss_family,
				  SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (p->rx_fd < 0 || bind(p->rx_fd, (struct sockaddr *)&ss, sl) < 0) {
			r = log_error_errno(errno, "listen=%s", cfg->listen);
			goto out_free;
		}
	}
	list = cfg->peers ? strdup(cfg->peers) : NULL;
	for (tok = list ? strtok_r(list, ",;", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",;", &save)) {
		if (p->npeers == MAX_PEERS ||
		    resolve(tok, "127.0.0.1", &p->to[p->npeers],
			    &p->to_len[p->npeers]) < 0) {
			log_error("peers: bad or too many peers at '%s'", tok);
			free(list);
			r = -EINVAL;
			goto out_free;
		}
		p->npeers++;
	}
	free(list);
	p->tx_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			  0);
	if (p->tx_fd < 0) /* no IPv6: IPv4 peers only */
		p->tx_fd = socket(AF_INET,
				  SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->tx_fd < 0) {
		r = log_error_errno(errno, "peer socket");
		goto out_free;
	}
	if (sockaddr_family(p->tx_fd) == AF_INET6)
		for (int k = 0; k < p->npeers; k++)
			map_v4(&p->to[k], &p->to_len[k]);
	*out = p;
	return 0;

out_free:
	peers_free(p);
	return r;
}

static void mac(const struct peers *p, const void *buf, size_t len,
		unsigned char out[MAC_LEN])
{
	unsigned int n = MAC_LEN;

	HMAC(EVP_sha256(), p->secret, (int)p->secret_len, buf, len, out, &n);
}

/* Send one datagram with paths (a JSON array, stolen). */
static void send_paths(struct peers *p, json_t *paths)
{
	unsigned char dgram[DGRAM_MAX + MAC_LEN];
	json_t *msg;
	char *body;
	size_t len;

	msg = json_pack("{s:i, s:s, s:I, s:o}", "v", 1, "id", p->id, "seq",
			(json_int_t)++p->seq, "paths", paths);
	body = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!body)
		return;
	len = strlen(body);
	if (len > DGRAM_MAX) { /* escaping made it too long: say "everything" */
		free(body);
		--p->seq;
		send_paths(p, json_pack("[s]", "/**"));
		return;
	}
	memcpy(dgram + MAC_LEN, body, len);
	free(body);
	mac(p, dgram + MAC_LEN, len, dgram);
	for (int k = 0; k < p->npeers; k++) {
		if (sendto(p->tx_fd, dgram, len + MAC_LEN, 0,
			   (struct sockaddr *)&p->to[k], p->to_len[k]) < 0)
			stats_inc(peer_send_errors);
		else
			stats_inc(peer_sent);
	}
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct peers *p = arg;
	struct pending *set, *e, *tmp;
	json_t *paths;
	size_t bytes = 0;
	bool overflow;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->lock);
	set = p->pending;
	overflow = p->overflow;
	p->pending = NULL;
	p->npending = 0;
	p->overflow = false;
	pthread_mutex_unlock(&p->lock);

	paths = json_array();
	if (overflow) /* too many: everything */
		json_array_append_new(paths, json_string("/**"));
	HASH_ITER(hh, set, e, tmp) {
		size_t n = strlen(e->path) + 4;

		if (bytes + n > DGRAM_MAX - 200 && json_array_size(paths)) {
			send_paths(p, paths);
			paths = json_array();
			bytes = 0;
		}
		if (!overflow)
			json_array_append_new(paths, json_string(e->path));
		bytes += n;
		HASH_DEL(set, e);
		free(e);
	}
	if (json_array_size(paths))
		send_paths(p, paths);
	else
		json_decref(paths);
}

void peers_changed(struct peers *p, const char *path)
{
	size_t len = strlen(path);
	struct pending *e;
	bool wake;

	if (!p || !p->npeers)
		return;
	pthread_mutex_lock(&p->lock);
	wake = !p->pending && !p->overflow;
	HASH_FIND(hh, p->pending, path, len, e);
	if (!e && p->npending < PENDING_MAX && (e = malloc(sizeof(*e) + len + 1))) {
		memcpy(e->path, path, len + 1);
		HASH_ADD_KEYPTR(hh, p->pending, e->path, len, e);
		p->npending++;
	} else if (!e) {
		p->overflow = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (wake && p->flush_ev)
		event_active(p->flush_ev, EV_WRITE, 0);
}

/* Make the kernel forget one path, or everything (the path "/" "**"). */
static void apply(struct peers *p, const char *path)
{
	unsigned names, inodes;
	bool all = strcmp(path, "/**") == 0;

	if (path[0] != '/')
		return;
	fs_invalidate(p->fs, all ? "/" : path, all, &names, &inodes);
	stats_inc(peer_paths);
}

static void on_datagram(evutil_socket_t fd, short what, void *arg)
{
	struct peers *p = arg;
	unsigned char buf[DGRAM_MAX + MAC_LEN + 1], want[MAC_LEN];
	struct sender *s;
	const char *id;
	json_int_t seq;
	json_t *msg, *paths, *v;
	ssize_t n;
	size_t k;

	(void)what;
	while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) >= 0) {
		if (n <= MAC_LEN) {
			stats_inc(peer_bad);
			continue;
		}
		mac(p, buf + MAC_LEN, (size_t)n - MAC_LEN, want);
		if (CRYPTO_memcmp(want, buf, MAC_LEN) != 0) {
			stats_inc(peer_bad);
			continue;
		}
		msg = json_loadb((char *)buf + MAC_LEN, (size_t)n - MAC_LEN, 0,
				 NULL);
		if (!msg || json_unpack(msg, "{s:s, s:I, s:o}", "id", &id,
					"seq", &seq, "paths", &paths) < 0 ||
		    !json_is_array(paths) || strlen(id) != 16 ||
		    strcmp(id, p->id) == 0) {
			stats_inc(peer_bad);
			json_decref(msg);
			continue;
		}
		stats_inc(peer_received);
		HASH_FIND_STR(p->senders, id, s);
		if (!s && (s = calloc(1, sizeof(*s)))) {
			memcpy(s->id, id, 17);
			s->seq = (uint64_t)seq - 1; /* first contact */
			HASH_ADD_STR(p->senders, id, s);
		}
		if (s && (uint64_t)seq <= s->seq) { /* repeated: ignore */
			json_decref(msg);
			continue;
		}
		if (!s || (uint64_t)seq != s->seq + 1) {
			/* something was lost: forget everything */
			stats_inc(peer_gaps);
			log_notice("peer %s: datagrams lost (%" PRIu64
				   " after %" PRIu64 "); cache flushed",
				   id, (uint64_t)seq, s ? s->seq : 0);
			apply(p, "/**");
		} else {
			json_array_foreach(paths, k, v)
				if (json_is_string(v))
					apply(p, json_string_value(v));
		}
		if (s)
			s->seq = (uint64_t)seq;
		json_decref(msg);
	}
}

void peers_stop(struct peers *p)
{
	if (!p)
		return;
	if (p->rx_ev)
		event_free(p->rx_ev);
	if (p->flush_ev)
		event_free(p->flush_ev);
	p->rx_ev = p->flush_ev = NULL;
}

int peers_start(struct peers *p, struct event_base *base)
{
	p->flush_ev = event_new(base, -1, 0, on_flush, p);
	if (!p->flush_ev)
		return -ENOMEM;
	if (p->rx_fd >= 0) {
		p->rx_ev = event_new(base, p->rx_fd, EV_READ | EV_PERSIST,
				     on_datagram, p);
		if (!p->rx_ev || event_add(p->rx_ev, NULL) < 0)
			return -ENOMEM;
	}
	return 0;
}

void peers_free(struct peers *p)
{
	struct pending *e, *tmp;
	struct sender *s, *stmp;

	if (!p)
		return;
	peers_stop(p);
	if (p->rx_fd >= 0)
		close(p->rx_fd);
	if (p->tx_fd >= 0)
		close(p->tx_fd);
	HASH_ITER(hh, p->pending, e, tmp) {
		HASH_DEL(p->pending, e);
		free(e);
	}
	HASH_ITER(hh, p->senders, s, stmp) {
		HASH_DEL(p->senders, s);
		free(s);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}
