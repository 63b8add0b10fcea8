// SPDX-License-Identifier: MIT
/*
 * The RDMA server from a client's side, for rdma.sh:
 *
 *	rdma_check ADDR SECRET_FILE|- COMMAND [ARGS]
 *
 *	reads PATH LOCAL	reads at unaligned offsets, across the end and
 *				past it, in every buffer mode (inline, bounce,
 *				registered per read, registered region), one
 *				at a time and in flight together: the bytes
 *				must be LOCAL's
 *	expect PATH ERRNO	opening PATH fails with ERRNO (a name:
 *				EACCES, ENOENT, ...)
 *	stat PATH TYPE		PATH is a TYPE (file or dir); prints its
 *				size
 *	auth-fail		connecting fails with EACCES
 *	hold PATH		connect, open, say "ready", wait to be killed
 *	hostile PATH		raw protocol: garbage, requests before
 *				authentication, a wrong MAC, bad handles,
 *				lengths and offsets, malformed and
 *				oversized messages, a bad remote key
 *	burst PATH		raw protocol: 100 reads of 1 MiB at once,
 *				past the mount's rdma_max_requests: some
 *				must be refused EBUSY, the rest served
 *
 * Exits 0 when every check holds, 1 (with a message) on the first that
 * does not, 2 on a usage error.
 */
#include <cachefs/client.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rdma_proto.h"

static const char *addr;
static unsigned char secret[256];
static size_t secret_len;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rdma_check: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static struct cachefs_client *connect_with(bool register_buffers,
					   bool busy_poll)
{
	struct cachefs_client_opts o = {
		.secret = secret_len ? secret : NULL,
		.secret_len = secret_len,
		.register_buffers = register_buffers,
		.busy_poll = busy_poll,
		.provider = "tcp",
	};
	struct cachefs_client *c;
	char err[256];
	int r = cachefs_client_connect(addr, &o, &c, err, sizeof(err));

	if (r < 0)
		die("connect %s: %s (%d)", addr, err, r);
	return c;
}

static int errno_of(const char *name)
{
	static const struct {
		const char *name;
		int e;
	} names[] = { { "EACCES", EACCES }, { "ENOENT", ENOENT },
		      { "EISDIR", EISDIR }, { "EINVAL", EINVAL },
		      { "ELOOP", ELOOP },   { "ENOTDIR", ENOTDIR },
		      { "EBADF", EBADF },   { "EPERM", EPERM } };

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (strcmp(names[k].name, name) == 0)
			return names[k].e;
	die("unknown errno name %s", name);
	return 0;
}

/* --- reads ---------------------------------------------------------------- */

static uint8_t *local;
static size_t local_len;

static void load_local(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", path, strerror(errno));
	local_len = (size_t)st.st_size;
	local = malloc(local_len + 1);
	if (!local || pread(fd, local, local_len, 0) != (ssize_t)local_len)
		die("%s: cannot read it", path);
	close(fd);
}

/* What a read of len at off must return. */
static size_t expected(uint64_t off, size_t len)
{
	if (off >= local_len)
		return 0;
	return local_len - off < len ? local_len - off : len;
}

static void check_bytes(const uint8_t *buf, ssize_t got, uint64_t off,
			size_t len, const char *how)
{
	size_t want = expected(off, len);

	if (got < 0)
		die("%s read of %zu at %" PRIu64 ": %s", how, len, off,
		    strerror((int)-got));
	if ((size_t)got != want)
		die("%s read of %zu at %" PRIu64 ": %zd bytes, not %zu", how,
		    len, off, got, want);
	if (want && memcmp(buf, local + off, want) != 0)
		die("%s read of %zu at %" PRIu64 ": the bytes differ", how, len,
		    off);
}

static void reads(const char *path, const char *localpath)
{
	static const size_t lens[] = { 1,    100,   4095,    4097,   8191,
				       8193, 65537, 1000003, 5 << 20 };
	struct cachefs_client_mr *mr;
	struct cachefs_client *c;
	struct stat st;
	uint8_t *buf, *region;
	size_t cap = 6 << 20;
	int fh;

	load_local(localpath);
	buf = malloc(cap);
	region = aligned_alloc(4096, cap);
	if (!buf || !region)
		die("out of memory");
	for (int mode = 0; mode < 4; mode++) {
		const char *how[] = { "bounce", "register_buffers",
				      "registered region", "busy-poll" };

		c = connect_with(mode == 1, mode == 3);
		fh = cachefs_client_open(c, path, &st);
		if (fh < 0)
			die("open %s: %s", path, cachefs_client_error(c));
		if ((size_t)st.st_size != local_len)
			die("open %s: size %lld, not %zu", path,
			    (long long)st.st_size, local_len);
		if (mode == 2 &&
		    cachefs_client_register(c, region, cap, &mr) < 0)
			die("register: %s", cachefs_client_error(c));
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			/* unaligned, across the end, at it, past it */
			uint64_t offs[] = { 0,
					    1,
					    4093,
					    65535 + 7,
					    local_len > lens[k]
						    ? local_len - lens[k] / 2
						    : 3,
					    local_len,
					    local_len + 12345 };

			for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]);
			     j++) {
				uint8_t *b = mode == 2 ? region + 3 : buf;
				size_t len = lens[k] < cap - 3 ? lens[k] : 0;
				ssize_t n = cachefs_client_pread(c, fh, b, len,
								 offs[j]);

				check_bytes(b, n, offs[j], len, how[mode]);
			}
		}
		/* in flight together, completing in any order */
		{
			struct cachefs_client_completion done[64];
			size_t part = 300007, taken = 0, sent = 0;
			unsigned parts = (unsigned)(cap / part) - 1;

			while (taken < parts) {
				while (sent < parts &&
				       cachefs_client_submit(
					       c, fh, buf + sent * part, part,
					       7 + sent * part,
					       (void *)(uintptr_t)sent) == 0)
					sent++;
				int n = cachefs_client_complete(c, done, 64,
								-1);

				if (n <= 0)
					die("complete: %s",
					    cachefs_client_error(c));
				for (int i = 0; i < n; i++) {
					size_t p = (uintptr_t)done[i].user;

					check_bytes(buf + p * part,
						    done[i].result,
						    7 + p * part, part,
						    "submitted");
				}
				taken += (size_t)n;
			}
		}
		if (cachefs_client_close(c, fh) < 0)
			die("close: %s", cachefs_client_error(c));
		if (cachefs_client_pread(c, fh, buf, 10, 0) != -EBADF)
			die("a read of a closed handle did not fail EBADF");
		if (mode == 2 && cachefs_client_deregister(c, mr) < 0)
			die("deregister: %s", cachefs_client_error(c));
		cachefs_client_disconnect(c);
	}
	free(buf);
	free(region);
	free(local);
}

/* --- the raw protocol ----------------------------------------------------- */

struct raw {
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_cq *cq;
	struct fid_av *av;
	struct fid_ep *ep;
	struct fi_info *info;
	fi_addr_t server;
	struct fi_context2 rxc[16], txc;
	uint8_t rx[16][RDMA_HDR_LEN + RDMA_INLINE_LIMIT];
	uint8_t tx[16384];
	uint8_t name[RDMA_ADDR_MAX];
	size_t name_len;
	uint8_t cnonce[RDMA_NONCE_LEN];
	struct rdma_msg challenge;
	uint8_t got[RDMA_HDR_LEN + RDMA_INLINE_LIMIT];
};

#define CK(x)                                                                  \
	do {                                                                   \
		int _r = (int)(x);                                             \
		if (_r < 0)                                                    \
			die("%s: %s", #x, fi_strerror(-_r));                   \
	} while (0)

static void raw_open(struct raw *w)
{
	struct fi_info *h = fi_allocinfo();
	struct fi_cq_attr cq = { .format = FI_CQ_FORMAT_DATA, .size = 1024 };
	struct fi_av_attr av = { .type = FI_AV_UNSPEC };
	char host[64], port[16];
	const char *colon = strrchr(addr, ':');

	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	snprintf(port, sizeof(port), "%s", colon + 1);
	memset(w, 0, sizeof(*w));
	h->caps = FI_MSG | FI_RMA;
	h->ep_attr->type = FI_EP_RDM;
	h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				  FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	h->fabric_attr->prov_name = strdup("tcp;ofi_rxm");
	CK(fi_getinfo(FI_VERSION(1, 11), host, port, 0, h, &w->info));
	fi_freeinfo(h);
	if (w->info->domain_attr->mr_mode & FI_MR_LOCAL)
		die("the raw client does not register (FI_MR_LOCAL)");
	CK(fi_fabric(w->info->fabric_attr, &w->fabric, NULL));
	CK(fi_domain(w->fabric, w->info, &w->domain, NULL));
	CK(fi_cq_open(w->domain, &cq, &w->cq, NULL));
	CK(fi_av_open(w->domain, &av, &w->av, NULL));
	CK(fi_endpoint(w->domain, w->info, &w->ep, NULL));
	CK(fi_ep_bind(w->ep, &w->av->fid, 0));
	CK(fi_ep_bind(w->ep, &w->cq->fid, FI_TRANSMIT | FI_RECV));
	CK(fi_enable(w->ep));
	if (fi_av_insert(w->av, w->info->dest_addr, 1, &w->server, 0, NULL) !=
	    1)
		die("av insert");
	w->name_len = sizeof(w->name);
	CK(fi_getname(&w->ep->fid, w->name, &w->name_len));
	for (int k = 0; k < 16; k++)
		CK(fi_recv(w->ep, w->rx[k], sizeof(w->rx[k]), NULL,
			   FI_ADDR_UNSPEC, &w->rxc[k]));
}

static void raw_close(struct raw *w)
{
	fi_close(&w->ep->fid);
	fi_close(&w->av->fid);
	fi_close(&w->cq->fid);
	fi_close(&w->domain->fid);
	fi_close(&w->fabric->fid);
	fi_freeinfo(w->info);
}

static int64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait up to timeout_ms for a message (copied to w->got: its length) or
 * for the send in flight to complete (*sent).  Returns the length, 0 on
 * a send completion, -ETIMEDOUT, or a negative errno of a failure.
 */
static ssize_t raw_event(struct raw *w, int timeout_ms, bool *sent)
{
	int64_t end = ms() + timeout_ms;

	while (ms() < end) {
		struct fi_cq_data_entry e;
		ssize_t n = fi_cq_read(w->cq, &e, 1);

		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee = { 0 };

			fi_cq_readerr(w->cq, &ee, 0);
			return -ee.err;
		}
		if (n != 1)
			continue;
		if (e.op_context == &w->txc) {
			*sent = true;
			return 0;
		}
		if (e.flags & FI_RECV) {
			struct fi_context2 *c = e.op_context;
			int k = (int)(c - w->rxc);

			memcpy(w->got, w->rx[k], e.len);
			CK(fi_recv(w->ep, w->rx[k], sizeof(w->rx[k]), NULL,
				   FI_ADDR_UNSPEC, &w->rxc[k]));
			return (ssize_t)e.len;
		}
	}
	return -ETIMEDOUT;
}

static void raw_send(struct raw *w, const void *buf, size_t len)
{
	bool sent = false;
	int64_t end = ms() + 5000;
	ssize_t r;

	memcpy(w->tx, buf, len);
	while ((r = fi_send(w->ep, w->tx, len, NULL, w->server, &w->txc)) ==
	       -FI_EAGAIN) {
		struct fi_cq_data_entry e;

		if (ms() > end)
			die("send: the provider keeps refusing");
		fi_cq_read(w->cq, &e, 0);
	}
	CK(r);
	while (!sent) {
		r = raw_event(w, 5000, &sent);
		if (r > 0)
			die("a message came before the send completed");
		if (r < 0)
			die("send: %s", strerror((int)-r));
	}
}

static void raw_msg(struct raw *w, struct rdma_msg *m)
{
	uint8_t buf[RDMA_REQUEST_MAX];
	int n = rdma_encode(m, buf, sizeof(buf));

	if (n < 0)
		die("encode %s: %s", rdma_op_name(m->op), strerror(-n));
	raw_send(w, buf, (size_t)n);
}

/* The next reply, decoded, or -ETIMEDOUT. */
static int raw_reply(struct raw *w, struct rdma_msg *m, int timeout_ms)
{
	bool sent = false;
	ssize_t n = raw_event(w, timeout_ms, &sent);

	if (n <= 0)
		return n == 0 ? -EAGAIN : (int)n;
	if (rdma_decode_reply(w->got, (size_t)n, m) < 0)
		die("a malformed reply from the server");
	return 0;
}

static void expect_error(struct raw *w, int err, const char *what)
{
	struct rdma_msg m;
	int r = raw_reply(w, &m, 5000);

	if (r < 0)
		die("%s: no reply (%s)", what, strerror(-r));
	if (m.op != RDMA_ERROR || m.status != -err)
		die("%s: %s %d, not ERROR %d", what, rdma_op_name(m.op),
		    m.status, -err);
}

static void expect_silence(struct raw *w, const char *what)
{
	struct rdma_msg m;
	int r = raw_reply(w, &m, 300);

	if (r == 0)
		die("%s: the server answered %s", what, rdma_op_name(m.op));
}

static void hello(struct raw *w)
{
	struct rdma_msg m = { .op = RDMA_HELLO, .tag = 1 };

	RAND_bytes(w->cnonce, RDMA_NONCE_LEN);
	m.hello.addr = w->name;
	m.hello.addr_len = (uint16_t)w->name_len;
	memcpy(m.hello.nonce, w->cnonce, RDMA_NONCE_LEN);
	raw_msg(w, &m);
	if (raw_reply(w, &w->challenge, 5000) < 0 ||
	    w->challenge.op != RDMA_CHALLENGE)
		die("hello: no challenge");
}

static void auth(struct raw *w, bool right)
{
	struct rdma_msg m = { .op = RDMA_AUTH, .tag = 2 };

	rdma_mac(RDMA_MAC_AUTH, secret, secret_len, w->cnonce,
		 w->challenge.challenge.nonce, w->challenge.challenge.session,
		 w->name, w->name_len, m.auth.mac);
	if (!right)
		m.auth.mac[0] ^= 1;
	raw_msg(w, &m);
}

static void welcome(struct raw *w)
{
	struct rdma_msg m;

	hello(w);
	auth(w, true);
	if (raw_reply(w, &m, 5000) < 0 || m.op != RDMA_WELCOME)
		die("auth: no welcome");
}

static uint32_t raw_open_file(struct raw *w, const char *path)
{
	struct rdma_msg m = { .op = RDMA_OPEN, .tag = 3 };

	m.path.path = path;
	m.path.len = (uint16_t)strlen(path);
	raw_msg(w, &m);
	if (raw_reply(w, &m, 5000) < 0 || m.op != (RDMA_OPEN | RDMA_REPLY))
		die("open %s: no handle", path);
	return m.open.handle;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int k = 0; k < n; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static void hostile(const char *path)
{
	struct raw w;
	struct rdma_msg m;
	uint8_t buf[9000];
	uint32_t fh;
	int n;

	/* a stranger: garbage, and a request without hello, get nothing */
	raw_open(&w);
	RAND_bytes(buf, 200);
	raw_send(&w, buf, 200);
	expect_silence(&w, "garbage from a stranger");
	m = (struct rdma_msg){ .op = RDMA_STAT, .tag = 9 };
	m.path.path = path;
	m.path.len = (uint16_t)strlen(path);
	raw_msg(&w, &m);
	expect_silence(&w, "a request from a stranger");
	/* a request after hello, before auth: refused, and forgotten */
	hello(&w);
	raw_msg(&w, &m);
	expect_error(&w, EACCES, "a request before auth");
	auth(&w, true);
	expect_silence(&w, "auth after being dropped");
	raw_close(&w);

	/* a wrong MAC */
	raw_open(&w);
	hello(&w);
	auth(&w, false);
	expect_error(&w, EACCES, "a wrong MAC");
	raw_close(&w);

	/* after auth: bad handles, lengths, then a malformed message */
	raw_open(&w);
	welcome(&w);
	m = (struct rdma_msg){ .op = RDMA_READ, .tag = 10 };
	m.read.handle = 77;
	m.read.length = 10;
	raw_msg(&w, &m);
	expect_error(&w, EBADF, "a read of no handle");
	m = (struct rdma_msg){ .op = RDMA_CLOSE, .tag = 11 };
	m.close.handle = 1u << 31;
	raw_msg(&w, &m);
	expect_error(&w, EBADF, "a close of no handle");
	fh = raw_open_file(&w, path);
	m = (struct rdma_msg){ .op = RDMA_READ, .tag = 12 };
	m.read.handle = fh;
	m.read.length = 1u << 30;
	m.flags = RDMA_F_RMA;
	raw_msg(&w, &m);
	expect_error(&w, EINVAL, "a read over the largest");
	m.read.length = 100000; /* too much to come inline */
	m.flags = 0;
	raw_msg(&w, &m);
	expect_error(&w, EINVAL, "a large read without a buffer");
	m.read.length = 100;
	m.read.offset = INT64_MAX - 100;
	raw_msg(&w, &m);
	if (raw_reply(&w, &m, 5000) < 0 || m.op != (RDMA_READ | RDMA_REPLY) ||
	    m.read_reply.count != 0)
		die("a read far past the end did not return 0 bytes");
	/* offset past INT64_MAX: malformed, so refused and dropped */
	n = rdma_encode(
		&(struct rdma_msg){ .op = RDMA_READ,
				    .tag = 13,
				    .read = { .handle = fh, .length = 1 } },
		buf, sizeof(buf));
	put_le(buf + RDMA_HDR_LEN + 8, UINT64_MAX, 8);
	raw_send(&w, buf, (size_t)n);
	expect_error(&w, EBADMSG, "an offset out of range");
	expect_silence(&w, "after a malformed request");
	raw_close(&w);

	/* wrong magic, a short header, a length that lies, an unknown op */
	for (int k = 0; k < 4; k++) {
		raw_open(&w);
		welcome(&w);
		m = (struct rdma_msg){ .op = RDMA_CLOSE, .tag = 20 };
		n = rdma_encode(&m, buf, sizeof(buf));
		if (k == 0)
			buf[0] = 'X';
		if (k == 1)
			n = 10;
		if (k == 2)
			put_le(buf + 8, 1000, 4);
		if (k == 3)
			buf[5] = 99;
		raw_send(&w, buf, (size_t)n);
		expect_error(&w, k == 0 ? EPROTO : EBADMSG,
			     "a malformed "
			     "message");
		raw_close(&w);
	}

	/* longer than any request: dropped; the session goes on */
	raw_open(&w);
	welcome(&w);
	memset(buf, 0, sizeof(buf));
	raw_send(&w, buf, sizeof(buf));
	expect_silence(&w, "an oversized message");
	fh = raw_open_file(&w, path); /* still served */
	/* a key that is no registration's: nothing lands, nothing breaks */
	m = (struct rdma_msg){
		.op = RDMA_READ,
		.flags = RDMA_F_RMA,
		.tag = 30,
		.read = { .handle = fh, .length = 100000, .rkey = 0xbad }
	};
	raw_msg(&w, &m);
	expect_silence(&w, "a read into a bad key");
	raw_close(&w);
}

/*
 * A burst of large reads past the requests (and bytes) in flight a
 * client may have: some are refused EBUSY, the rest served.  The
 * requests go out without waiting: sends, replies and writes are
 * counted as they complete.
 */
struct burst {
	struct raw *w;
	int sent, served, busy;
};

/* Take one completion, if any. */
static void burst_event(struct burst *b)
{
	struct raw *w = b->w;
	struct fi_cq_data_entry e;
	struct rdma_msg m;
	ssize_t n = fi_cq_read(w->cq, &e, 1);

	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry ee = { 0 };

		fi_cq_readerr(w->cq, &ee, 0);
		die("the burst: %s", fi_strerror(ee.err));
	}
	if (n != 1)
		return;
	if (e.flags & FI_REMOTE_CQ_DATA) {
		b->served++;
	} else if (e.flags & FI_RECV) {
		struct fi_context2 *c = e.op_context;
		int k = (int)(c - w->rxc);

		if (rdma_decode_reply(w->rx[k], e.len, &m) < 0)
			die("the burst: a malformed reply");
		CK(fi_recv(w->ep, w->rx[k], sizeof(w->rx[k]), NULL,
			   FI_ADDR_UNSPEC, &w->rxc[k]));
		if (m.op == RDMA_ERROR && m.status == -EBUSY)
			b->busy++;
		else if (m.op == (RDMA_READ | RDMA_REPLY))
			b->served++;
		else if (m.op != RDMA_PING)
			die("the burst: %s %d", rdma_op_name(m.op), m.status);
	} else {
		b->sent++;
	}
}

static void burst(const char *path)
{
	enum { N = 100 };
	static uint8_t tx[N][64];
	static struct fi_context2 ctx[N];
	struct raw w;
	struct burst b = { .w = &w };
	struct fid_mr *mr;
	uint8_t *region = aligned_alloc(4096, 1 << 20);
	uint32_t fh;
	int64_t end;

	raw_open(&w);
	welcome(&w);
	fh = raw_open_file(&w, path);
	CK(fi_mr_reg(w.domain, region, 1 << 20, FI_REMOTE_WRITE, 0, 42, 0, &mr,
		     NULL));
	for (int k = 0; k < N; k++) {
		struct rdma_msg m = { .op = RDMA_READ,
				      .flags = RDMA_F_RMA,
				      .tag = 100 + k };
		int n;
		ssize_t r;

		m.read.handle = fh;
		m.read.length = 1 << 20;
		m.read.offset = (uint64_t)k << 20;
		/* the region's address, or an offset into it */
		m.read.raddr = w.info->domain_attr->mr_mode & FI_MR_VIRT_ADDR
				       ? (uint64_t)(uintptr_t)region
				       : 0;
		m.read.rkey = fi_mr_key(mr);
		n = rdma_encode(&m, tx[k], sizeof(tx[k]));
		end = ms() + 5000;
		while ((r = fi_send(w.ep, tx[k], (size_t)n, NULL, w.server,
				    &ctx[k])) == -FI_EAGAIN) {
			if (ms() > end)
				die("the burst: the provider keeps refusing");
			burst_event(&b);
		}
		CK(r);
	}
	end = ms() + 10000;
	while ((b.sent < N || b.served + b.busy < N) && ms() < end)
		burst_event(&b);
	if (b.sent < N || b.served + b.busy < N)
		die("the burst: %d sent, %d answers of %d", b.sent,
		    b.served + b.busy, N);
	if (!b.busy || !b.served)
		die("the burst: %d served, %d refused EBUSY", b.served, b.busy);
	printf("burst: %d served, %d refused EBUSY\n", b.served, b.busy);
	fi_close(&mr->fid);
	raw_close(&w);
	free(region);
}

/* --- main ----------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: rdma_check ADDR SECRET_FILE|- COMMAND ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct cachefs_client *c;
	struct stat st;
	char err[256];
	int r;

	if (argc < 4)
		usage();
	addr = argv[1];
	if (strcmp(argv[2], "-") != 0) {
		int fd = open(argv[2], O_RDONLY);
		ssize_t n = fd < 0 ? -1 : read(fd, secret, sizeof(secret));

		if (n < 0)
			die("%s: %s", argv[2], strerror(errno));
		while (n > 0 && secret[n - 1] == '\n')
			n--;
		secret_len = (size_t)n;
		close(fd);
	}
	if (!strcmp(argv[3], "reads") && argc == 6) {
		reads(argv[4], argv[5]);
	} else if (!strcmp(argv[3], "expect") && argc == 6) {
		c = connect_with(false, false);
		r = cachefs_client_open(c, argv[4], NULL);
		if (r != -errno_of(argv[5]))
			die("open %s: %d (%s), not %s", argv[4], r,
			    r < 0 ? strerror(-r) : "a handle", argv[5]);
		cachefs_client_disconnect(c);
	} else if (!strcmp(argv[3], "stat") && argc == 6) {
		c = connect_with(false, false);
		r = cachefs_client_stat(c, argv[4], &st);
		if (r < 0)
			die("stat %s: %s", argv[4], cachefs_client_error(c));
		if (strcmp(argv[5], S_ISDIR(st.st_mode) ? "dir" : "file"))
			die("stat %s: not a %s", argv[4], argv[5]);
		printf("%lld\n", (long long)st.st_size);
		cachefs_client_disconnect(c);
	} else if (!strcmp(argv[3], "auth-fail") && argc == 4) {
		struct cachefs_client_opts o = { .secret = secret,
						 .secret_len = secret_len };

		r = cachefs_client_connect(addr, &o, &c, err, sizeof(err));
		if (r != -EACCES)
			die("connect with a wrong secret: %d (%s)", r,
			    r ? err : "connected");
		printf("%s\n", err);
	} else if (!strcmp(argv[3], "hold") && argc == 5) {
		c = connect_with(false, false);
		if (cachefs_client_open(c, argv[4], NULL) < 0)
			die("open %s: %s", argv[4], cachefs_client_error(c));
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	} else if (!strcmp(argv[3], "hostile") && argc == 5) {
		hostile(argv[4]);
	} else if (!strcmp(argv[3], "burst") && argc == 5) {
		burst(argv[4]);
	} else {
		usage();
	}
	return 0;
}
