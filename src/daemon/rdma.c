// SPDX-License-Identifier: MIT
/*
 * The RDMA read server (see rdma.h; the protocol is in
 * src/shared/rdma_proto.h).
 *
 * Threads.  One progress thread owns the fabric once started: it reads
 * the completion queue, decodes requests, keeps every client's state,
 * and posts replies and RMA writes; nothing else touches a client.
 * RDMA_IO_THREADS threads do what may block -- resolving and opening
 * paths, reading the backend or a shared tier -- acting as rdma_user, and
 * hand each request back through the done list and an eventfd.  A read
 * whose bytes are in memory (the in-process tier, or the page cache with
 * RWF_NOWAIT) is served by the progress thread at once, without the
 * hand-off; a large one goes to an I/O thread all the same, so that its
 * copy and the progress thread's sends share the cores.
 *
 * A read's bytes go into a registered buffer (rdma_buf.h), then to the
 * client in one operation: inline in the reply up to MAX_INLINE, else one
 * RMA write into the client's buffer that completes it by carrying
 * remote CQ data (or, where the provider has none or rdma_completion says
 * so, a write with FI_DELIVERY_COMPLETE followed by the reply).  So the
 * client sees a read complete only once its bytes landed.  CQ data is
 * the faster: no round trip more, and no reply to send.
 *
 * Bounds.  Per client: rdma_max_requests requests and rdma_max_memory
 * bytes of reads in flight (over them, ERROR -EBUSY), MAX_HANDLES open
 * files (-EMFILE), and OPS_SLACK operations of any kind beyond the
 * requests (replies and refusals the provider has not sent yet: a client
 * that sends without reading what it is sent is dropped).  In all:
 * MAX_CLIENTS clients, of which MAX_PENDING not yet authenticated (the
 * oldest goes for a new one), and buffers up to POOL_CLIENTS times
 * rdma_max_memory (reads wait for one beyond).  A client that breaks the
 * protocol is answered ERROR when it can be, and dropped: it leaves the
 * address vector and everything it had is freed once the provider gave
 * back its buffers.  A client that goes silent is found out by PING: once
 * its connection is gone, the send fails, or the provider refuses it for
 * RETRY_NS (it tries to connect again).
 */
#include "rdma.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#include "creds.h"
#include "fabric.h"
#include "log.h"
#include "rdma_buf.h"
#include "rdma_proto.h"
#include "stats.h"

#define FI_API FI_VERSION(1, 11)
#define NS 1000000000ull

#define MAX_READ (4u << 20)   /* bytes of one read */
#define MAX_INLINE (8u << 10) /* data bytes of an inline reply */
#define FAST_MAX (128u << 10) /* reads the progress thread may do */
#define MAX_HANDLES 256	      /* open files per client */
#define MAX_CLIENTS 256
#define MAX_PENDING 16	     /* clients not yet authenticated */
#define OPS_SLACK 256	     /* operations per client beyond requests */
#define PENDING_NS (10 * NS) /* to authenticate in */
#define PING_NS (2 * NS)     /* idle this long: make sure it is there */
#define RETRY_NS (3 * NS)    /* a send the provider keeps refusing */
#define STUCK_NS (30 * NS)   /* a dropped client's transfers, at most */
#define TRIM_NS (10 * NS)    /* idle buffers go after this unused */
#define RDMA_IO_THREADS 4
#define RX_BUFS 256  /* receives posted */
#define RX_SIZE 4160 /* >= RDMA_REQUEST_MAX */
#define CQ_BATCH 32
#define POOL_CLIENTS 4 /* buffers: rdma_max_memory times this */
#define SECRET_MAX 256
#define GROUPS_MAX 256

/* The providers tried without rdma_provider, best first. */
static const char *const providers[] = { "verbs;ofi_rxm", "tcp;ofi_rxm" };

/* What a completion's context is: each starts with struct rdma_ctx. */
enum ctx_kind { CTX_RX, CTX_OP };

struct rdma_ctx {
	struct fi_context2 fi; /* the provider's; first */
	enum ctx_kind kind;
};

struct rdma_rx {
	struct rdma_ctx c;
	struct rdma_buf *buf;
	struct rdma_rx *next; /* to post again */
};

/* A file a client opened; progress thread only. */
struct rdma_handle {
	int fd;
	unsigned refs; /* the client's table and each read in flight */
	char *shared;  /* its name in the shared tiers, or NULL */
};

/* What an operation's completion means. */
enum stage {
	ST_NONE,
	ST_IO,	       /* with an I/O thread */
	ST_SEND,       /* a message: done when sent */
	ST_WRITE_DATA, /* a read's bytes, with CQ data: done when written */
	ST_WRITE_DC,   /* a read's bytes: the reply follows once delivered */
};

/* A request, from its arrival to its last completion. */
struct srv_op {
	struct rdma_ctx c;
	struct rdma_client *cl;
	struct srv_op *next;		    /* in one queue at a time */
	struct srv_op *all_prev, *all_next; /* every op, for the end */
	enum stage stage;
	bool counted;	   /* in cl->requests and cl->bytes */
	bool answer;	   /* what is posted answers the request */
	uint64_t since_ns; /* queued for a retry since */

	uint8_t req; /* the request's op (0: a PING) */
	uint32_t tag;
	/* READ */
	struct rdma_handle *h;
	uint32_t length;
	uint64_t offset, raddr, rkey;
	bool rma;     /* the client gave a buffer */
	bool in_line; /* the bytes go in the reply */
	/* STAT, OPEN: the path; their results */
	char *path;
	struct stat st;
	int fd;
	char *shared;
	/* the I/O's result: bytes or a negative errno */
	ssize_t result;
	bool tier;

	struct rdma_buf *buf; /* the read's bytes (inline: the reply) */
	struct rdma_buf *msg; /* the message to send */
	size_t msg_len;
};

struct rdma_client {
	fi_addr_t addr;
	UT_hash_handle hh;	     /* by addr */
	uint8_t name[RDMA_ADDR_MAX]; /* its fabric address */
	size_t name_len;
	uint64_t session;
	uint8_t cnonce[RDMA_NONCE_LEN], snonce[RDMA_NONCE_LEN];
	bool authed;
	bool dead;    /* dropped: freed once ops is 0 */
	bool removed; /* out of the address vector */
	uint64_t born_ns, active_ns, dead_ns, ping_ns;
	unsigned ops;	   /* operations alive */
	unsigned requests; /* requests not answered */
	uint64_t bytes;	   /* bytes of reads not answered */
	unsigned opening;  /* opens with an I/O thread */
	unsigned nhandles;
	struct rdma_handle *handles[MAX_HANDLES];
};

struct rdma_server {
	struct cfs *fs;
	unsigned max_requests;
	uint64_t max_memory;

	/* from the options, before start */
	char host[256], port[32];
	char option[300]; /* -o rdma as given, for messages */
	uint8_t secret[SECRET_MAX];
	size_t secret_len; /* 0: no secret */
	uid_t uid;
	gid_t gid;
	gid_t groups[GROUPS_MAX];
	int ngroups;
	struct fi_info *info; /* the provider's */

	/* the fabric: the progress thread's once started */
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_av *av;
	struct fid_cq *cq;
	struct fid_ep *ep;
	int cq_fd;	/* to poll; -1: fi_cq_sread() and fi_cq_signal() */
	int efd;	/* eventfd: I/O results, stop */
	bool cq_data;	/* RMA reads complete by remote CQ data */
	size_t addrlen; /* of fabric addresses */
	struct rdma_pool *pool;
	struct rdma_rx rx[RX_BUFS];
	struct rdma_rx *rx_retry; /* receives to post again */
	struct rdma_client *clients;
	unsigned nclients, npending, nauthed;	 /* live, not dropped */
	struct srv_op *all;			 /* every op */
	struct srv_op *retry_head, **retry_tail; /* posts refused for now */
	struct srv_op *mem_head, **mem_tail;	 /* reads waiting for buffers */
	uint64_t sweep_ns, trim_ns;
	pthread_t progress;
	bool started;
	bool stop; /* atomic */

	/* the I/O threads */
	pthread_t io[RDMA_IO_THREADS];
	int nio;
	pthread_mutex_t io_lock;
	pthread_cond_t io_cond;
	struct srv_op *io_head, **io_tail;     /* protected by io_lock */
	struct srv_op *done_head, **done_tail; /* protected by io_lock */
	bool io_stop;			       /* protected by io_lock */
	bool io_creds_failed;		       /* atomic */

	/* status: set at start, or stored by the progress thread */
	char address[96];
	char provider[64];
	uint64_t st_clients, st_authed, st_requests, st_bytes, st_handles;
	uint64_t st_memory;
};

static uint64_t now_ns(void)
{
	return stats_now_ns();
}

static void gauge_set(uint64_t *g, uint64_t v)
{
	__atomic_store_n(g, v, __ATOMIC_RELAXED);
}

static void gauge_add(uint64_t *g, int64_t d)
{
	__atomic_add_fetch(g, (uint64_t)d, __ATOMIC_RELAXED);
}

static void gauges_clients(struct rdma_server *s)
{
	gauge_set(&s->st_clients, s->nclients);
	gauge_set(&s->st_authed, s->nauthed);
}

/* libfabric's negative values are negative errnos too. */
static int fi_err(ssize_t r)
{
	return r < 0 ? (int)r : 0;
}

/* --- options -------------------------------------------------------------- */

/* "PORT", ":PORT", "HOST:PORT" or "[V6]:PORT"; the host is 127.0.0.1 else. */
static int split_addr(const char *spec, char *host, size_t hlen, char *port,
		      size_t plen)
{
	const char *colon = strrchr(spec, ':');
	const char *p = colon ? colon + 1 : spec;
	char *end;
	unsigned long n;

	if (!*p || strspn(p, "0123456789") != strlen(p))
		return -EINVAL;
	errno = 0;
	n = strtoul(p, &end, 10);
	if (errno || n > 65535)
		return -EINVAL;
	snprintf(port, plen, "%lu", n);
	if (!colon || colon == spec) {
		snprintf(host, hlen, "127.0.0.1");
	} else {
		int len = (int)(colon - spec);

		if (spec[0] == '[' && len > 2 && spec[len - 1] == ']')
			snprintf(host, hlen, "%.*s", len - 2, spec + 1);
		else if (memchr(spec, ':', (size_t)len))
			return -EINVAL; /* IPv6 needs its brackets */
		else
			snprintf(host, hlen, "%.*s", len, spec);
	}
	return 0;
}

static bool sockaddr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127;
	}
	return false;
}

/* Whether every address host names is a loopback one. */
static int host_loopback(const char *host, bool *loopback)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;

	if (getaddrinfo(host, NULL, &hints, &ai))
		return -EINVAL;
	*loopback = true;
	for (a = ai; a; a = a->ai_next)
		if (!sockaddr_loopback(a->ai_addr))
			*loopback = false;
	freeaddrinfo(ai);
	return 0;
}

/* As peer_secret_file: at least 8 bytes, a final newline not counted. */
static int read_secret(struct rdma_server *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return log_error_errno(errno, "rdma_secret_file %s", path);
	n = read(fd, s->secret, sizeof(s->secret));
	close(fd);
	if (n < 0)
		return log_error_errno(errno, "rdma_secret_file %s", path);
	while (n > 0 && (s->secret[n - 1] == '\n' || s->secret[n - 1] == '\r'))
		n--;
	if (n < 8) {
		log_error("rdma_secret_file %s: a secret of at least 8 bytes "
			  "is needed",
			  path);
		return -EINVAL;
	}
	s->secret_len = (size_t)n;
	return 0;
}

static int find_user(struct rdma_server *s, const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = GROUPS_MAX;

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		log_error("rdma_user=%s: no such user", name);
		return -EINVAL;
	}
	s->uid = pw.pw_uid;
	s->gid = pw.pw_gid;
	if (getgrouplist(name, pw.pw_gid, s->groups, &n) < 0)
		n = GROUPS_MAX; /* more: the first ones */
	s->ngroups = n;
	return 0;
}

static struct fi_info *hints_for(const char *prov)
{
	return fabric_rdm_hints(prov, FI_MSG | FI_RMA | FI_SOURCE,
				FI_CONTEXT | FI_CONTEXT2, FI_THREAD_SAFE);
}

/* The provider: rdma_provider, or the first of providers[] that works. */
static int find_provider(struct rdma_server *s, const char *want)
{
	const char *const *list = want ? &want : providers;
	size_t n = want ? 1 : sizeof(providers) / sizeof(providers[0]);
	char tried[256] = "";
	int r = -ENODATA;

	for (size_t k = 0; k < n; k++) {
		struct fi_info *h = hints_for(list[k]);

		if (!h)
			return -ENOMEM;
		r = fabric_getinfo(FI_API, s->host, s->port, FI_SOURCE, h,
				   &s->info);
		fabric_freeinfo(h);
		if (r == 0)
			return 0;
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried),
			 "%s%s: %s", k ? "; " : "", list[k],
			 fabric_strerror(-r));
	}
	log_error("rdma=%s: no libfabric provider serves it (%s)", s->option,
		  tried);
	return r < 0 ? r : -ENODATA;
}

/*
 * With the tcp provider, a port in use is found at mount time, before
 * the endpoint is opened (after daemonizing).
 */
static int probe_port(struct rdma_server *s)
{
	const char *prov = s->info->fabric_attr->prov_name;
	const struct sockaddr *sa = s->info->src_addr;
	int fd, one = 1, r = 0;

	if (strncmp(prov, "tcp", 3) != 0 || !sa ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    strcmp(s->port, "0") == 0)
		return 0;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, (socklen_t)s->info->src_addrlen) < 0)
		r = log_error_errno(errno, "rdma=%s", s->option);
	close(fd);
	return r;
}

int rdma_new(struct cfs *fs, struct rdma_server **out)
{
	const struct config *cfg = fs->cfg;
	struct rdma_server *s;
	bool loopback;
	int r = -EINVAL;

	*out = NULL;
	if (!cfg->rdma)
		return 0;
	if (cfg->rdma_max_requests < 1 || cfg->rdma_max_requests > 1024) {
		log_error("rdma_max_requests=%u: between 1 and 1024, please",
			  cfg->rdma_max_requests);
		return -EINVAL;
	}
	if (cfg->rdma_max_memory < MAX_READ ||
	    cfg->rdma_max_memory > (1ull << 30)) {
		log_error("rdma_max_memory=%llu: between 4M and 1G, please",
			  (unsigned long long)cfg->rdma_max_memory);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fs = fs;
	s->cq_fd = s->efd = -1;
	s->max_requests = cfg->rdma_max_requests;
	s->max_memory = cfg->rdma_max_memory;
	pthread_mutex_init(&s->io_lock, NULL);
	pthread_cond_init(&s->io_cond, NULL);
	s->io_tail = &s->io_head;
	s->done_tail = &s->done_head;
	s->retry_tail = &s->retry_head;
	s->mem_tail = &s->mem_head;
	snprintf(s->option, sizeof(s->option), "%s", cfg->rdma);
	if (split_addr(cfg->rdma, s->host, sizeof(s->host), s->port,
		       sizeof(s->port)) < 0 ||
	    host_loopback(s->host, &loopback) < 0) {
		log_error("rdma=%s: not an address ([ADDR:]PORT)", cfg->rdma);
		goto fail;
	}
	if (cfg->rdma_secret_file) {
		r = read_secret(s, cfg->rdma_secret_file);
		if (r < 0)
			goto fail;
	} else if (!loopback) {
		log_error("rdma=%s is not a loopback address: clients there "
			  "must prove a secret, set rdma_secret_file",
			  cfg->rdma);
		r = -EINVAL;
		goto fail;
	}
	r = find_user(s, cfg->rdma_user ? cfg->rdma_user : "nobody");
	if (r < 0)
		goto fail;
	{
		char why[300];

		r = fabric_load(why, sizeof(why));
		if (r < 0) {
			log_error("rdma=%s: %s", cfg->rdma, why);
			goto fail;
		}
	}
	r = find_provider(s, cfg->rdma_provider);
	if (r < 0)
		goto fail;
	if (cfg->rdma_completion == RDMA_COMPLETION_CQ_DATA &&
	    s->info->domain_attr->cq_data_size < 8) {
		log_error("rdma_completion=cq_data: the %s provider carries "
			  "%zu bytes of CQ data, 8 are needed",
			  s->info->fabric_attr->prov_name,
			  s->info->domain_attr->cq_data_size);
		r = -EINVAL;
		goto fail;
	}
	/* what the provider will bind, which is what counts */
	if (!s->secret_len && (!s->info->src_addr ||
			       (s->info->addr_format != FI_SOCKADDR_IN &&
				s->info->addr_format != FI_SOCKADDR_IN6) ||
			       !sockaddr_loopback(s->info->src_addr))) {
		log_error("rdma=%s: the %s provider binds no loopback address: "
			  "clients there must prove a secret, set "
			  "rdma_secret_file",
			  cfg->rdma, s->info->fabric_attr->prov_name);
		r = -EINVAL;
		goto fail;
	}
	r = probe_port(s);
	if (r < 0)
		goto fail;
	*out = s;
	return 0;

fail:
	rdma_free(s);
	return r;
}

/* --- buffers and messages ------------------------------------------------- */

static struct srv_op *op_new(struct rdma_server *s, struct rdma_client *cl,
			     uint8_t req, uint32_t tag)
{
	struct srv_op *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->c.kind = CTX_OP;
	o->cl = cl;
	o->req = req;
	o->tag = tag;
	o->fd = -1;
	o->all_next = s->all;
	if (s->all)
		s->all->all_prev = o;
	s->all = o;
	cl->ops++;
	return o;
}

static void client_free(struct rdma_server *s, struct rdma_client *cl);

static void handle_unref(struct rdma_handle *h)
{
	if (!h || --h->refs)
		return;
	close(h->fd);
	free(h->shared);
	free(h);
}

/* A request answered (or given up): the client may send another. */
static void uncount(struct rdma_server *s, struct srv_op *o)
{
	if (!o->counted)
		return;
	o->counted = false;
	o->cl->requests--;
	o->cl->bytes -= o->length;
	gauge_add(&s->st_requests, -1);
	gauge_add(&s->st_bytes, -(int64_t)o->length);
}

static void op_free(struct rdma_server *s, struct srv_op *o)
{
	struct rdma_client *cl = o->cl;

	uncount(s, o);
	rdma_buf_put(s->pool, o->buf);
	rdma_buf_put(s->pool, o->msg);
	handle_unref(o->h);
	if (o->fd >= 0)
		close(o->fd);
	free(o->path);
	free(o->shared);
	if (o->all_prev)
		o->all_prev->all_next = o->all_next;
	else
		s->all = o->all_next;
	if (o->all_next)
		o->all_next->all_prev = o->all_prev;
	free(o);
	if (--cl->ops == 0 && cl->dead)
		client_free(s, cl);
}

static void queue(struct srv_op ***tail, struct srv_op *o)
{
	o->next = NULL;
	**tail = o;
	*tail = &o->next;
}

static struct srv_op *dequeue(struct srv_op **head, struct srv_op ***tail)
{
	struct srv_op *o = *head;

	if (o) {
		*head = o->next;
		if (!*head)
			*tail = head;
		o->next = NULL;
	}
	return o;
}

static void client_drop(struct rdma_server *s, struct rdma_client *cl,
			bool misbehaved);

/*
 * Post what o's stage says.  On success the request is answered if this
 * is its answer; a provider that is busy gets it again later (the retry
 * queue: returns false); a failure drops the client.
 */
static bool post(struct rdma_server *s, struct srv_op *o)
{
	struct rdma_client *cl = o->cl;
	ssize_t r;

	switch (o->stage) {
	case ST_SEND:
		r = fi_send(s->ep, o->msg->data, o->msg_len, o->msg->desc,
			    cl->addr, o);
		break;
	case ST_WRITE_DATA:
		r = fi_writedata(s->ep, o->buf->data, (size_t)o->result,
				 o->buf->desc,
				 rdma_cq_data(o->tag, (uint32_t)o->result),
				 cl->addr, o->raddr, o->rkey, o);
		break;
	case ST_WRITE_DC: {
		struct iovec iov = { o->buf->data, (size_t)o->result };
		void *desc = o->buf->desc;
		struct fi_rma_iov rma = { .addr = o->raddr,
					  .len = (size_t)o->result,
					  .key = o->rkey };
		struct fi_msg_rma msg = { .msg_iov = &iov,
					  .desc = &desc,
					  .iov_count = 1,
					  .addr = cl->addr,
					  .rma_iov = &rma,
					  .rma_iov_count = 1,
					  .context = o };

		r = fi_writemsg(s->ep, &msg,
				FI_DELIVERY_COMPLETE | FI_COMPLETION);
		break;
	}
	default:
		r = -FI_EINVAL;
		break;
	}
	if (r == -FI_EAGAIN) {
		if (!o->since_ns)
			o->since_ns = now_ns();
		queue(&s->retry_tail, o);
		return false;
	}
	o->since_ns = 0;
	if (r < 0) {
		stats_inc(rdma_transfer_errors);
		log_info("rdma: %s to a client failed: %s",
			 o->stage == ST_SEND ? "a send" : "a write",
			 fabric_strerror((int)-r));
		client_drop(s, cl, true);
		op_free(s, o);
		return true;
	}
	if (o->answer) {
		uncount(s, o);
		if (o->req)
			stats_inc(rdma_requests);
	}
	return true;
}

/* Send the message m for o, as its answer (answer) or not. */
static void send_msg(struct rdma_server *s, struct srv_op *o,
		     const struct rdma_msg *m, size_t extra, bool answer)
{
	int n;

	if (!o->msg)
		o->msg = rdma_buf_get(s->pool, RDMA_HDR_LEN + 128 + extra);
	n = o->msg ? rdma_encode(m, o->msg->data, o->msg->size) : -ENOMEM;
	if (n < 0) {
		/* cannot happen but for memory: the client hears nothing */
		log_warning_errno(n, "rdma: cannot make a %s reply",
				  rdma_op_name(m->op));
		client_drop(s, o->cl, false);
		op_free(s, o);
		return;
	}
	o->msg_len = (size_t)n;
	o->stage = ST_SEND;
	o->answer = answer;
	post(s, o);
}

/* Answer o's request with ERROR err. */
static void answer_error(struct rdma_server *s, struct srv_op *o, int err)
{
	struct rdma_msg m = { .op = RDMA_ERROR, .tag = o->tag, .status = err };

	rdma_buf_put(s->pool, o->buf);
	o->buf = NULL;
	send_msg(s, o, &m, 0, true);
}

/*
 * Answer ERROR err to a request that will not be served (a limit, a bad
 * argument), without taking it in; and with drop, forget the client (it
 * broke the protocol) once the answer is sent.
 */
static void refuse(struct rdma_server *s, struct rdma_client *cl, uint32_t tag,
		   int err, bool drop)
{
	struct srv_op *o;

	/* a client that does not read its replies gets no more */
	if (cl->ops >= s->max_requests + OPS_SLACK) {
		stats_inc(rdma_over_limit);
		client_drop(s, cl, true);
		return;
	}
	o = op_new(s, cl, RDMA_ERROR, tag);
	if (!o) {
		client_drop(s, cl, false);
		return;
	}
	if (drop) /* o keeps cl until it is sent */
		client_drop(s, cl, true);
	answer_error(s, o, err);
}

/* --- clients -------------------------------------------------------------- */

static void client_free(struct rdma_server *s, struct rdma_client *cl)
{
	HASH_DEL(s->clients, cl);
	if (!cl->removed)
		fi_av_remove(s->av, &cl->addr, 1, 0);
	free(cl);
}

/*
 * Forget cl: its handles close (reads in flight keep theirs), and it is
 * freed once the provider gave back what it holds of it.  Messages from
 * it meanwhile are dropped.
 */
static void client_drop(struct rdma_server *s, struct rdma_client *cl,
			bool misbehaved)
{
	if (cl->dead)
		return;
	cl->dead = true;
	cl->dead_ns = now_ns();
	if (misbehaved)
		stats_inc(rdma_dropped);
	for (unsigned k = 0; k < MAX_HANDLES; k++) {
		if (cl->handles[k]) {
			handle_unref(cl->handles[k]);
			cl->handles[k] = NULL;
			gauge_add(&s->st_handles, -1);
		}
	}
	cl->nhandles = 0;
	s->nclients--;
	if (cl->authed)
		s->nauthed--;
	else
		s->npending--;
	gauges_clients(s);
	if (cl->ops == 0)
		client_free(s, cl);
}

static void on_hello(struct rdma_server *s, const struct rdma_msg *m)
{
	struct rdma_client *cl, *c, *tmp, *oldest = NULL;
	struct rdma_msg ch = { .op = RDMA_CHALLENGE };
	struct srv_op *o;
	fi_addr_t addr;

	stats_inc(rdma_hellos);
	if (m->hello.addr_len != s->addrlen || s->nclients >= MAX_CLIENTS) {
		if (m->hello.addr_len != s->addrlen)
			stats_inc(rdma_bad_messages);
		else
			stats_inc(rdma_dropped);
		return;
	}
	if (s->npending >= MAX_PENDING) {
		HASH_ITER(hh, s->clients, c, tmp) {
			if (!c->dead && !c->authed &&
			    (!oldest || c->born_ns < oldest->born_ns))
				oldest = c;
		}
		if (oldest)
			client_drop(s, oldest, true);
	}
	if (fi_av_insert(s->av, m->hello.addr, 1, &addr, 0, NULL) != 1) {
		stats_inc(rdma_bad_messages);
		return;
	}
	HASH_FIND(hh, s->clients, &addr, sizeof(addr), cl);
	if (cl) {
		/*
		 * Another client's address, said by someone else (the
		 * message came from an address not in the vector): theirs
		 * stays.
		 */
		stats_inc(rdma_bad_messages);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl || RAND_bytes(cl->snonce, RDMA_NONCE_LEN) != 1 ||
	    RAND_bytes((uint8_t *)&cl->session, sizeof(cl->session)) != 1) {
		free(cl);
		fi_av_remove(s->av, &addr, 1, 0);
		return;
	}
	cl->addr = addr;
	memcpy(cl->name, m->hello.addr, m->hello.addr_len);
	cl->name_len = m->hello.addr_len;
	memcpy(cl->cnonce, m->hello.nonce, RDMA_NONCE_LEN);
	cl->born_ns = cl->active_ns = now_ns();
	HASH_ADD(hh, s->clients, addr, sizeof(cl->addr), cl);
	s->nclients++;
	s->npending++;
	gauges_clients(s);

	memcpy(ch.challenge.nonce, cl->snonce, RDMA_NONCE_LEN);
	ch.challenge.session = cl->session;
	ch.tag = m->tag;
	if (!s->secret_len)
		ch.flags = RDMA_F_NO_SECRET;
	o = op_new(s, cl, 0, m->tag);
	if (!o) {
		client_drop(s, cl, false);
		return;
	}
	send_msg(s, o, &ch, 0, false);
}

static void on_auth(struct rdma_server *s, struct rdma_client *cl,
		    const struct rdma_msg *m)
{
	struct rdma_msg w = {
		.op = RDMA_WELCOME,
		.tag = m->tag,
		.flags = s->cq_data ? RDMA_F_CQ_DATA : 0,
		.welcome = { .max_inline = MAX_INLINE,
			     .max_read = MAX_READ,
			     .max_requests = s->max_requests,
			     .max_handles = MAX_HANDLES,
			     .max_memory = s->max_memory },
	};
	uint8_t want[RDMA_MAC_LEN];
	struct srv_op *o;

	if (s->secret_len && (rdma_mac(RDMA_MAC_AUTH, s->secret, s->secret_len,
				       cl->cnonce, cl->snonce, cl->session,
				       cl->name, cl->name_len, want) < 0 ||
			      !rdma_mac_equal(want, m->auth.mac))) {
		char name[128] = "?";
		size_t len = sizeof(name);

		stats_inc(rdma_auth_failures);
		fi_av_straddr(s->av, cl->name, name, &len);
		log_info("rdma: client %s refused: wrong secret", name);
		refuse(s, cl, m->tag, -EACCES, true);
		return;
	}
	if (s->secret_len &&
	    rdma_mac(RDMA_MAC_WELCOME, s->secret, s->secret_len, cl->cnonce,
		     cl->snonce, cl->session, cl->name, cl->name_len,
		     w.welcome.mac) < 0) {
		refuse(s, cl, m->tag, -EIO, true);
		return;
	}
	cl->authed = true;
	s->npending--;
	s->nauthed++;
	gauges_clients(s);
	stats_inc(rdma_authenticated);
	o = op_new(s, cl, 0, m->tag);
	if (!o) {
		client_drop(s, cl, false);
		return;
	}
	send_msg(s, o, &w, 0, false);
}

/* Take a request in: it counts against the client's limits until answered. */
static struct srv_op *accept_request(struct rdma_server *s,
				     struct rdma_client *cl,
				     const struct rdma_msg *m, uint32_t length)
{
	struct srv_op *o = op_new(s, cl, m->op, m->tag);

	if (!o) {
		refuse(s, cl, m->tag, -ENOMEM, false);
		return NULL;
	}
	o->counted = true;
	o->length = length;
	cl->requests++;
	cl->bytes += length;
	gauge_add(&s->st_requests, 1);
	gauge_add(&s->st_bytes, length);
	return o;
}

/* --- the I/O threads ------------------------------------------------------ */

static void io_submit(struct rdma_server *s, struct srv_op *o)
{
	o->stage = ST_IO;
	pthread_mutex_lock(&s->io_lock);
	queue(&s->io_tail, o);
	pthread_cond_signal(&s->io_cond);
	pthread_mutex_unlock(&s->io_lock);
}

/* Reopen the file of an O_PATH descriptor for reading, as this thread. */
static int reopen(int pfd)
{
	char proc[32];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static void io_path(struct rdma_server *s, struct srv_op *o)
{
	bool plain;
	int pfd, fd;

	pfd = fs_resolve(s->fs, o->path, &plain);
	if (pfd < 0) {
		o->result = pfd;
		return;
	}
	if (fstat(pfd, &o->st) < 0)
		o->result = -errno;
	else if (o->req == RDMA_STAT)
		o->result = 0;
	else if (S_ISDIR(o->st.st_mode))
		o->result = -EISDIR;
	else if (!S_ISREG(o->st.st_mode))
		o->result = -EINVAL;
	else if ((fd = reopen(pfd)) < 0)
		o->result = fd;
	else {
		o->fd = fd;
		o->result = 0;
		o->shared =
			fs_shared_path(s->fs, o->path, plain, o->st.st_mode);
	}
	close(pfd);
}

static void *io_main(void *arg)
{
	struct rdma_server *s = arg;
	struct srv_op *o;
	bool ok, wake;
	int r;

	/* not a local user: the kernel's checks decide, as for rdma_user */
	r = creds_become(s->uid, s->gid, s->groups, s->ngroups);
	ok = r == 0;
	if (!ok &&
	    !__atomic_exchange_n(&s->io_creds_failed, true, __ATOMIC_RELAXED))
		log_error_errno(r, "rdma: cannot act as rdma_user; refusing "
				   "every request");
	for (;;) {
		pthread_mutex_lock(&s->io_lock);
		while (!s->io_head && !s->io_stop)
			pthread_cond_wait(&s->io_cond, &s->io_lock);
		/* at the end, what is queued is freed with the server */
		o = s->io_stop ? NULL : dequeue(&s->io_head, &s->io_tail);
		pthread_mutex_unlock(&s->io_lock);
		if (!o)
			break;
		if (!ok) {
			o->result = -EACCES;
		} else if (o->req == RDMA_READ) {
			void *data = (char *)o->buf->data +
				     (o->in_line ? RDMA_HDR_LEN : 0);

			o->result =
				fs_read_fd(s->fs, o->h->fd, o->h->shared, data,
					   o->length, o->offset, 0, &o->tier);
		} else {
			io_path(s, o);
		}
		pthread_mutex_lock(&s->io_lock);
		wake = !s->done_head;
		queue(&s->done_tail, o);
		pthread_mutex_unlock(&s->io_lock);
		if (wake && s->cq_fd >= 0)
			eventfd_write(s->efd, 1);
		else if (wake)
			fi_cq_signal(s->cq);
	}
	return NULL;
}

/* --- requests ------------------------------------------------------------- */

static void fill_stat(struct rdma_stat *r, const struct stat *st)
{
	r->size = (uint64_t)st->st_size;
	r->ino = st->st_ino;
	r->nlink = st->st_nlink;
	r->blocks = (uint64_t)st->st_blocks;
	r->mode = st->st_mode;
	r->uid = st->st_uid;
	r->gid = st->st_gid;
	r->blksize = (uint32_t)st->st_blksize;
	r->atime_ns = st->st_atim.tv_sec * 1000000000LL + st->st_atim.tv_nsec;
	r->mtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	r->ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

/* A backend error for a client: counted, and what a client may know. */
static int client_error(int err)
{
	if (err == -EXDEV) { /* the path leaves the tree */
		stats_inc(rdma_escapes);
		return -EACCES;
	}
	stats_inc(rdma_errors);
	return err;
}

/* A STAT or OPEN is back from its I/O thread. */
static void path_done(struct rdma_server *s, struct srv_op *o)
{
	struct rdma_client *cl = o->cl;
	struct rdma_msg m = { .op = o->req | RDMA_REPLY, .tag = o->tag };
	struct rdma_handle *h;
	unsigned k;

	if (o->req == RDMA_OPEN)
		cl->opening--;
	if (o->result < 0) {
		answer_error(s, o, client_error((int)o->result));
		return;
	}
	if (o->req == RDMA_STAT) {
		fill_stat(&m.stat, &o->st);
		send_msg(s, o, &m, RDMA_STAT_LEN, true);
		return;
	}
	for (k = 0; k < MAX_HANDLES && cl->handles[k]; k++)
		;
	h = k < MAX_HANDLES ? calloc(1, sizeof(*h)) : NULL;
	if (!h) {
		stats_inc(rdma_over_limit);
		answer_error(s, o, k < MAX_HANDLES ? -ENOMEM : -EMFILE);
		return;
	}
	h->fd = o->fd;
	h->shared = o->shared;
	h->refs = 1;
	o->fd = -1;
	o->shared = NULL;
	cl->handles[k] = h;
	cl->nhandles++;
	gauge_add(&s->st_handles, 1);
	m.open.handle = k;
	fill_stat(&m.open.st, &o->st);
	send_msg(s, o, &m, 4 + RDMA_STAT_LEN, true);
}

/* A read's bytes are in o->buf (o->result of them), or it failed. */
static void read_done(struct rdma_server *s, struct srv_op *o)
{
	ssize_t n = o->result;

	if (n < 0) {
		answer_error(s, o, client_error((int)n));
		return;
	}
	stats_add(STAT_rdma_bytes, (uint64_t)n);
	if (o->tier)
		stats_inc(rdma_tier_reads);
	if (o->in_line || n == 0) {
		struct rdma_msg m = { .op = RDMA_READ | RDMA_REPLY,
				      .tag = o->tag,
				      .read_reply = { .count = (uint32_t)n } };

		/* the bytes are in place after the header (none at EOF) */
		o->msg = o->buf;
		o->buf = NULL;
		send_msg(s, o, &m, 0, true);
		return;
	}
	o->stage = s->cq_data ? ST_WRITE_DATA : ST_WRITE_DC;
	o->answer = s->cq_data;
	post(s, o);
}

/*
 * Find memory for a read and do it, at once when its bytes are in
 * memory, else with an I/O thread.  Returns false when no memory is free:
 * the caller queues it.
 */
static bool start_read(struct rdma_server *s, struct srv_op *o)
{
	size_t size = o->in_line ? RDMA_HDR_LEN + o->length : o->length;
	void *data;

	o->buf = rdma_buf_get(s->pool, size);
	if (!o->buf)
		return false;
	data = (char *)o->buf->data + (o->in_line ? RDMA_HDR_LEN : 0);
	if (o->length <= FAST_MAX) {
		o->result = fs_read_fd(s->fs, o->h->fd, o->h->shared, data,
				       o->length, o->offset, FS_READ_NOWAIT,
				       &o->tier);
		if (o->result != -EAGAIN) {
			read_done(s, o);
			return true;
		}
	}
	io_submit(s, o);
	return true;
}

static struct rdma_handle *handle_of(struct rdma_client *cl, uint32_t k)
{
	return k < MAX_HANDLES ? cl->handles[k] : NULL;
}

static void on_read(struct rdma_server *s, struct rdma_client *cl,
		    const struct rdma_msg *m)
{
	struct rdma_handle *h = handle_of(cl, m->read.handle);
	uint32_t len = m->read.length;
	bool rma = m->flags & RDMA_F_RMA;
	struct srv_op *o;

	if (!h) {
		stats_inc(rdma_bad_handles);
		refuse(s, cl, m->tag, -EBADF, false);
		return;
	}
	if (len > MAX_READ || (len > MAX_INLINE && !rma)) {
		stats_inc(rdma_bad_requests);
		refuse(s, cl, m->tag, -EINVAL, false);
		return;
	}
	if (cl->bytes + len > s->max_memory) {
		stats_inc(rdma_over_limit);
		refuse(s, cl, m->tag, -EBUSY, false);
		return;
	}
	o = accept_request(s, cl, m, len);
	if (!o)
		return;
	o->h = h;
	h->refs++;
	o->offset = m->read.offset;
	o->raddr = m->read.raddr;
	o->rkey = m->read.rkey;
	o->rma = rma;
	o->in_line = !rma || len <= MAX_INLINE;
	if (len == 0) {
		o->result = 0;
		read_done(s, o);
	} else if (s->mem_head || !start_read(s, o)) {
		queue(&s->mem_tail, o); /* in turn, after the others */
	}
}

static void on_path(struct rdma_server *s, struct rdma_client *cl,
		    const struct rdma_msg *m)
{
	struct srv_op *o;

	if (m->op == RDMA_OPEN && cl->nhandles + cl->opening >= MAX_HANDLES) {
		stats_inc(rdma_over_limit);
		refuse(s, cl, m->tag, -EMFILE, false);
		return;
	}
	o = accept_request(s, cl, m, 0);
	if (!o)
		return;
	o->path = strndup(m->path.path, m->path.len);
	if (!o->path) {
		answer_error(s, o, -ENOMEM);
		return;
	}
	if (m->op == RDMA_OPEN)
		cl->opening++;
	io_submit(s, o);
}

static void on_close(struct rdma_server *s, struct rdma_client *cl,
		     const struct rdma_msg *m)
{
	struct rdma_handle *h = handle_of(cl, m->close.handle);
	struct rdma_msg r = { .op = RDMA_CLOSE | RDMA_REPLY, .tag = m->tag };
	struct srv_op *o;

	if (!h) {
		stats_inc(rdma_bad_handles);
		refuse(s, cl, m->tag, -EBADF, false);
		return;
	}
	o = accept_request(s, cl, m, 0);
	if (!o)
		return;
	cl->handles[m->close.handle] = NULL;
	cl->nhandles--;
	gauge_add(&s->st_handles, -1);
	handle_unref(h);
	send_msg(s, o, &r, 0, true);
}

static void dispatch(struct rdma_server *s, struct rdma_client *cl,
		     const struct rdma_msg *m)
{
	if (m->op == RDMA_BYE) {
		client_drop(s, cl, false);
		return;
	}
	if (m->op == RDMA_HELLO || (m->op == RDMA_AUTH && cl->authed)) {
		stats_inc(rdma_bad_messages);
		refuse(s, cl, m->tag, -EPROTO, true);
		return;
	}
	if (m->op == RDMA_AUTH) {
		on_auth(s, cl, m);
		return;
	}
	if (!cl->authed) {
		stats_inc(rdma_unauthenticated);
		refuse(s, cl, m->tag, -EACCES, true);
		return;
	}
	if (cl->ops >= s->max_requests + OPS_SLACK) {
		/* it sends without reading what it is sent */
		stats_inc(rdma_over_limit);
		client_drop(s, cl, true);
		return;
	}
	if (cl->requests >= s->max_requests) {
		stats_inc(rdma_over_limit);
		refuse(s, cl, m->tag, -EBUSY, false);
		return;
	}
	switch (m->op) {
	case RDMA_READ:
		on_read(s, cl, m);
		break;
	case RDMA_STAT:
	case RDMA_OPEN:
		on_path(s, cl, m);
		break;
	case RDMA_CLOSE:
		on_close(s, cl, m);
		break;
	}
}

/* --- the progress thread -------------------------------------------------- */

static void post_rx(struct rdma_server *s, struct rdma_rx *rx)
{
	ssize_t r = fi_recv(s->ep, rx->buf->data, RX_SIZE, rx->buf->desc,
			    FI_ADDR_UNSPEC, rx);

	if (r == -FI_EAGAIN) {
		rx->next = s->rx_retry;
		s->rx_retry = rx;
	} else if (r < 0) {
		log_warning("rdma: cannot post a receive: %s",
			    fabric_strerror((int)-r));
	}
}

static void on_recv(struct rdma_server *s, struct rdma_rx *rx, size_t len,
		    fi_addr_t src)
{
	struct rdma_client *cl = NULL;
	struct rdma_msg m;
	int r;

	if (src != FI_ADDR_NOTAVAIL)
		HASH_FIND(hh, s->clients, &src, sizeof(src), cl);
	r = rdma_decode_request(rx->buf->data, len, &m);
	if (!cl) {
		/* a stranger may only say hello */
		if (r == 0 && m.op == RDMA_HELLO && src == FI_ADDR_NOTAVAIL)
			on_hello(s, &m);
		else
			stats_inc(rdma_bad_messages);
	} else if (cl->dead) {
		/* dropped: what it still says is not heard */
	} else if (r < 0) {
		stats_inc(rdma_bad_messages);
		refuse(s, cl, m.tag, r == -EBADMSG ? -EBADMSG : -EPROTO, true);
	} else {
		cl->active_ns = now_ns();
		dispatch(s, cl, &m);
	}
	post_rx(s, rx);
}

/* An operation of o completed. */
static void on_done(struct rdma_server *s, struct srv_op *o)
{
	if (o->stage == ST_WRITE_DC && !o->cl->dead) {
		struct rdma_msg m = { .op = RDMA_READ | RDMA_REPLY,
				      .flags = RDMA_F_RMA,
				      .tag = o->tag,
				      .read_reply = {
					      .count = (uint32_t)o->result } };

		rdma_buf_put(s->pool, o->buf);
		o->buf = NULL;
		send_msg(s, o, &m, 0, true);
		return;
	}
	op_free(s, o);
}

static void on_cq_error(struct rdma_server *s)
{
	struct fi_cq_err_entry e = { 0 };
	struct rdma_ctx *c;

	if (fi_cq_readerr(s->cq, &e, 0) != 1)
		return;
	c = e.op_context;
	if (!c)
		return;
	if (c->kind == CTX_RX) {
		/* too long for a request (or cancelled, at the end) */
		if (e.err != FI_ECANCELED) {
			stats_inc(rdma_bad_messages);
			post_rx(s, (struct rdma_rx *)c);
		}
		return;
	}
	if (e.err != FI_ECANCELED) {
		struct srv_op *o = (struct srv_op *)c;
		char why[128];

		stats_inc(rdma_transfer_errors);
		log_info("rdma: a transfer to a client failed: %s",
			 fi_cq_strerror(s->cq, e.prov_errno, e.err_data, why,
					sizeof(why)));
		client_drop(s, o->cl, !o->cl->dead);
	}
	op_free(s, (struct srv_op *)c);
}

/* Results of the I/O threads; returns whether there were any. */
static bool take_done(struct rdma_server *s)
{
	struct srv_op *list, *o;

	pthread_mutex_lock(&s->io_lock);
	list = s->done_head;
	s->done_head = NULL;
	s->done_tail = &s->done_head;
	pthread_mutex_unlock(&s->io_lock);
	if (!list)
		return false;
	while ((o = list)) {
		list = o->next;
		o->next = NULL;
		o->stage = ST_NONE;
		if (o->cl->dead) {
			if (o->req == RDMA_OPEN)
				o->cl->opening--;
			op_free(s, o);
		} else if (o->req == RDMA_READ) {
			read_done(s, o);
		} else {
			path_done(s, o);
		}
	}
	return true;
}

/* Posts the provider refused for now, and reads waiting for memory. */
static bool retry(struct rdma_server *s)
{
	struct srv_op *list = s->retry_head, *o;
	bool progress = false;

	s->retry_head = NULL;
	s->retry_tail = &s->retry_head;
	while ((o = list)) {
		list = o->next;
		o->next = NULL;
		if (o->cl->dead)
			op_free(s, o);
		else
			progress |= post(s, o);
	}
	while (s->rx_retry) {
		struct rdma_rx *rx = s->rx_retry;

		s->rx_retry = rx->next;
		post_rx(s, rx);
	}
	while ((o = dequeue(&s->mem_head, &s->mem_tail))) {
		if (o->cl->dead) {
			op_free(s, o);
		} else if (!start_read(s, o)) {
			/* still none: first in line again */
			o->next = s->mem_head;
			if (!s->mem_head)
				s->mem_tail = &o->next;
			s->mem_head = o;
			break;
		}
		progress = true;
	}
	return progress;
}

/*
 * Once a second: clients that do not authenticate in time go; idle ones
 * get a PING, whose send fails once they are gone; a post refused too
 * long drops its client; a dropped client whose transfers never end is
 * taken out of the address vector, which ends them.
 */
static void sweep(struct rdma_server *s, uint64_t now)
{
	struct rdma_client *cl, *tmp;
	struct srv_op *o;

	if (now >= s->trim_ns) {
		rdma_pool_trim(s->pool);
		s->trim_ns = now + TRIM_NS;
	}
	gauge_set(&s->st_memory, rdma_pool_bytes(s->pool));
	for (o = s->retry_head; o; o = o->next)
		if (now - o->since_ns > RETRY_NS)
			client_drop(s, o->cl, true);
	HASH_ITER(hh, s->clients, cl, tmp) {
		if (cl->dead) {
			if (!cl->removed && now - cl->dead_ns > STUCK_NS) {
				fi_av_remove(s->av, &cl->addr, 1, 0);
				cl->removed = true;
			}
			continue;
		}
		if (!cl->authed && now - cl->born_ns > PENDING_NS) {
			client_drop(s, cl, true);
			continue;
		}
		if (cl->authed && !cl->ops && now - cl->active_ns > PING_NS &&
		    now - cl->ping_ns > PING_NS) {
			struct rdma_msg m = { .op = RDMA_PING };

			o = op_new(s, cl, 0, 0);
			if (!o)
				continue;
			cl->ping_ns = now;
			send_msg(s, o, &m, 0, false);
		}
	}
}

/* Sleep until the CQ or an I/O thread has something, or timeout_ms. */
static void wait_events(struct rdma_server *s, int timeout_ms)
{
	struct fid *f = &s->cq->fid;
	struct pollfd p[2] = { { .fd = s->cq_fd, .events = POLLIN },
			       { .fd = s->efd, .events = POLLIN } };
	int r = fi_trywait(s->fabric, &f, 1);
	eventfd_t v;

	if (r == -FI_EAGAIN)
		return; /* something to read first */
	if (r != FI_SUCCESS && timeout_ms > 1)
		timeout_ms = 1; /* cannot tell: look again soon */
	if (poll(p, 2, timeout_ms) > 0 && p[1].revents)
		eventfd_read(s->efd, &v);
}

static void handle_entries(struct rdma_server *s,
			   const struct fi_cq_data_entry *ev,
			   const fi_addr_t *src, ssize_t n)
{
	for (ssize_t k = 0; k < n; k++) {
		struct rdma_ctx *c = ev[k].op_context;

		if (c->kind == CTX_RX)
			on_recv(s, (struct rdma_rx *)c, ev[k].len, src[k]);
		else
			on_done(s, (struct srv_op *)c);
	}
}

static void *progress_main(void *arg)
{
	struct rdma_server *s = arg;
	struct fi_cq_data_entry ev[CQ_BATCH];
	fi_addr_t src[CQ_BATCH];

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now;
		ssize_t n = fi_cq_readfrom(s->cq, ev, CQ_BATCH, src);
		bool busy = n > 0;
		int timeout;

		if (n > 0)
			handle_entries(s, ev, src, n);
		else if (n == -FI_EAVAIL)
			on_cq_error(s);
		busy |= n == -FI_EAVAIL;
		busy |= take_done(s);
		if (s->retry_head || s->rx_retry || s->mem_head)
			busy |= retry(s);
		now = now_ns();
		if (now >= s->sweep_ns) {
			sweep(s, now);
			s->sweep_ns = now + NS;
		}
		if (busy)
			continue;
		/* a refused post is tried again soon; else up to the sweep */
		timeout = s->retry_head || s->rx_retry
				  ? 1
				  : (int)((s->sweep_ns - now) / 1000000 + 1);
		if (s->cq_fd >= 0) {
			wait_events(s, timeout);
		} else {
			n = fi_cq_sreadfrom(s->cq, ev, CQ_BATCH, src, NULL,
					    timeout);
			if (n > 0)
				handle_entries(s, ev, src, n);
			else if (n == -FI_EAVAIL)
				on_cq_error(s);
		}
	}
	return NULL;
}

/* --- start and stop ------------------------------------------------------- */

static void format_address(struct rdma_server *s)
{
	struct sockaddr_storage ss;
	size_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN], serv[16];

	if (fi_getname(&s->ep->fid, &ss, &len) != 0)
		return;
	s->addrlen = len;
	if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
	    getnameinfo((struct sockaddr *)&ss, (socklen_t)len, host,
			sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		snprintf(s->address, sizeof(s->address),
			 ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
			 serv);
	} else {
		len = sizeof(s->address);
		fi_av_straddr(s->av, &ss, s->address, &len);
	}
}

static int open_cq(struct rdma_server *s)
{
	struct fi_cq_attr attr = { .format = FI_CQ_FORMAT_DATA,
				   .size = 16384,
				   .wait_obj = FI_WAIT_FD };
	int r;

	r = fi_cq_open(s->domain, &attr, &s->cq, NULL);
	if (r == 0 && fi_control(&s->cq->fid, FI_GETWAIT, &s->cq_fd) == 0)
		return 0;
	if (r == 0)
		fi_close(&s->cq->fid);
	/* no descriptor to poll: sleep in the provider, woken by signal */
	s->cq_fd = -1;
	attr.wait_obj = FI_WAIT_UNSPEC;
	return fi_cq_open(s->domain, &attr, &s->cq, NULL);
}

static int open_fabric(struct rdma_server *s)
{
	struct fi_info *fi = s->info;
	struct fi_av_attr av = { .type = FI_AV_UNSPEC };
	int r;

	if ((r = fabric_open(fi->fabric_attr, &s->fabric, NULL)) ||
	    (r = fi_domain(s->fabric, fi, &s->domain, NULL)) ||
	    (r = open_cq(s)) ||
	    (r = fi_av_open(s->domain, &av, &s->av, NULL)) ||
	    (r = fi_endpoint(s->domain, fi, &s->ep, NULL)) ||
	    (r = fi_ep_bind(s->ep, &s->av->fid, 0)) ||
	    (r = fi_ep_bind(s->ep, &s->cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (r = fi_enable(s->ep)))
		return fi_err(r) ? r : -EIO;
	s->cq_data = fi->domain_attr->cq_data_size >= 8 &&
		     s->fs->cfg->rdma_completion != RDMA_COMPLETION_DELIVERY;
	snprintf(s->provider, sizeof(s->provider), "%s",
		 fi->fabric_attr->prov_name);
	format_address(s);
	r = rdma_pool_new(s->domain, s->ep, fi->domain_attr->mr_mode,
			  POOL_CLIENTS * s->max_memory, &s->pool);
	if (r < 0)
		return r;
	for (int k = 0; k < RX_BUFS; k++) {
		s->rx[k].c.kind = CTX_RX;
		s->rx[k].buf = rdma_buf_get(s->pool, RX_SIZE);
		if (!s->rx[k].buf)
			return -ENOMEM;
		r = fi_err(fi_recv(s->ep, s->rx[k].buf->data, RX_SIZE,
				   s->rx[k].buf->desc, FI_ADDR_UNSPEC,
				   &s->rx[k]));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Start a thread with every signal blocked: they are the main thread's. */
static int spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

int rdma_start(struct rdma_server *s)
{
	int r;

	if (!s)
		return 0;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0)
		return log_error_errno(errno, "rdma: eventfd");
	r = open_fabric(s);
	if (r < 0)
		return log_error_errno(r,
				       "rdma=%s: cannot open the %s "
				       "endpoint",
				       s->option,
				       s->info->fabric_attr->prov_name);
	for (s->nio = 0; s->nio < RDMA_IO_THREADS; s->nio++) {
		r = spawn(&s->io[s->nio], io_main, s);
		if (r < 0)
			return log_error_errno(r, "rdma: I/O thread");
	}
	r = spawn(&s->progress, progress_main, s);
	if (r < 0)
		return log_error_errno(r, "rdma: progress thread");
	s->started = true;
	log_notice("rdma: serving reads on %s (%s, %s)%s", s->address,
		   s->provider, s->cq_data ? "CQ data" : "delivery complete",
		   s->secret_len ? "" : ", no secret");
	return 0;
}

static void close_fid(void *fidp)
{
	struct fid **f = fidp;

	if (*f)
		fi_close(*f);
	*f = NULL;
}

void rdma_free(struct rdma_server *s)
{
	struct rdma_client *cl, *tmp;
	struct srv_op *o;

	if (!s)
		return;
	if (s->started) {
		__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
		if (s->cq_fd >= 0)
			eventfd_write(s->efd, 1);
		else
			fi_cq_signal(s->cq);
		pthread_join(s->progress, NULL);
	}
	pthread_mutex_lock(&s->io_lock);
	s->io_stop = true;
	pthread_cond_broadcast(&s->io_cond);
	pthread_mutex_unlock(&s->io_lock);
	for (int k = 0; k < s->nio; k++)
		pthread_join(s->io[k], NULL);
	/* the provider lets go of every buffer */
	close_fid(&s->ep);
	/* the queued ops are in s->all too: free them all from there */
	while ((o = s->all)) {
		o->cl->dead = false; /* freed below, not by op_free() */
		op_free(s, o);
	}
	HASH_ITER(hh, s->clients, cl, tmp) {
		for (unsigned k = 0; k < MAX_HANDLES; k++)
			handle_unref(cl->handles[k]);
		HASH_DEL(s->clients, cl);
		free(cl);
	}
	for (int k = 0; k < RX_BUFS; k++)
		rdma_buf_put(s->pool, s->rx[k].buf);
	rdma_pool_free(s->pool);
	close_fid(&s->av);
	close_fid(&s->cq);
	close_fid(&s->domain);
	close_fid(&s->fabric);
	if (s->info)
		fabric_freeinfo(s->info); /* loaded, as there is an info */
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->io_lock);
	pthread_cond_destroy(&s->io_cond);
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s);
}

void rdma_get_status(struct rdma_server *s, struct rdma_status *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->address, sizeof(st->address), "%s", s->address);
	snprintf(st->provider, sizeof(st->provider), "%s", s->provider);
	st->completion = s->cq_data ? "cq_data" : "delivery_complete";
	st->clients = __atomic_load_n(&s->st_clients, __ATOMIC_RELAXED);
	st->authenticated = __atomic_load_n(&s->st_authed, __ATOMIC_RELAXED);
	st->requests = __atomic_load_n(&s->st_requests, __ATOMIC_RELAXED);
	st->bytes = __atomic_load_n(&s->st_bytes, __ATOMIC_RELAXED);
	st->handles = __atomic_load_n(&s->st_handles, __ATOMIC_RELAXED);
	st->memory = __atomic_load_n(&s->st_memory, __ATOMIC_RELAXED);
}
