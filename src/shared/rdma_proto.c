// SPDX-License-Identifier: MIT
/*
 * The RDMA read protocol's encoders and decoders (see rdma_proto.h).
 *
 * Decoding walks a cursor that knows how many bytes are left: every take
 * checks first, and a message is taken only when its length field, the
 * bytes received and what its op consumed all agree.
 */
#include "rdma_proto.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const uint8_t magic[4] = { 'C', 'F', 'R', 'D' };

/* --- writing -------------------------------------------------------------- */

struct wr {
	uint8_t *p, *end;
	bool full;
};

static void put(struct wr *w, const void *src, size_t n)
{
	if (w->full || (size_t)(w->end - w->p) < n) {
		w->full = true;
		return;
	}
	if (n)
		memcpy(w->p, src, n);
	w->p += n;
}

/* little-endian on the wire */
static void put_u16(struct wr *w, uint16_t v)
{
	v = htole16(v);
	put(w, &v, 2);
}

static void put_u32(struct wr *w, uint32_t v)
{
	v = htole32(v);
	put(w, &v, 4);
}

static void put_u64(struct wr *w, uint64_t v)
{
	v = htole64(v);
	put(w, &v, 8);
}

static void put_stat(struct wr *w, const struct rdma_stat *st)
{
	put_u64(w, st->size);
	put_u64(w, st->ino);
	put_u64(w, st->nlink);
	put_u64(w, st->blocks);
	put_u32(w, st->mode);
	put_u32(w, st->uid);
	put_u32(w, st->gid);
	put_u32(w, st->blksize);
	put_u64(w, (uint64_t)st->atime_ns);
	put_u64(w, (uint64_t)st->mtime_ns);
	put_u64(w, (uint64_t)st->ctime_ns);
}

/* --- reading -------------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
	bool short_;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	const uint8_t *at = r->p;

	if (r->short_ || (size_t)(r->end - r->p) < n) {
		r->short_ = true;
		return NULL;
	}
	r->p += n;
	return at;
}

static void get(struct rd *r, void *dst, size_t n)
{
	const uint8_t *at = take(r, n);

	if (at)
		memcpy(dst, at, n);
	else
		memset(dst, 0, n);
}

/* 0 past the end (get() zeroes), which the caller finds short */
static uint16_t get_u16(struct rd *r)
{
	uint16_t v;

	get(r, &v, 2);
	return le16toh(v);
}

static uint32_t get_u32(struct rd *r)
{
	uint32_t v;

	get(r, &v, 4);
	return le32toh(v);
}

static uint64_t get_u64(struct rd *r)
{
	uint64_t v;

	get(r, &v, 8);
	return le64toh(v);
}

static void get_stat(struct rd *r, struct rdma_stat *st)
{
	st->size = get_u64(r);
	st->ino = get_u64(r);
	st->nlink = get_u64(r);
	st->blocks = get_u64(r);
	st->mode = get_u32(r);
	st->uid = get_u32(r);
	st->gid = get_u32(r);
	st->blksize = get_u32(r);
	st->atime_ns = (int64_t)get_u64(r);
	st->mtime_ns = (int64_t)get_u64(r);
	st->ctime_ns = (int64_t)get_u64(r);
}

/* --- ops ------------------------------------------------------------------ */

/* The flags an op may carry. */
static uint16_t flags_allowed(uint8_t op)
{
	switch (op) {
	case RDMA_CHALLENGE:
		return RDMA_F_NO_SECRET;
	case RDMA_WELCOME:
		return RDMA_F_CQ_DATA;
	case RDMA_READ:
	case RDMA_READ | RDMA_REPLY:
		return RDMA_F_RMA;
	default:
		return 0;
	}
}

static bool is_request(uint8_t op)
{
	switch (op) {
	case RDMA_HELLO:
	case RDMA_AUTH:
	case RDMA_STAT:
	case RDMA_OPEN:
	case RDMA_READ:
	case RDMA_CLOSE:
	case RDMA_BYE:
		return true;
	default:
		return false;
	}
}

static bool is_reply(uint8_t op)
{
	switch (op) {
	case RDMA_CHALLENGE:
	case RDMA_WELCOME:
	case RDMA_STAT | RDMA_REPLY:
	case RDMA_OPEN | RDMA_REPLY:
	case RDMA_READ | RDMA_REPLY:
	case RDMA_CLOSE | RDMA_REPLY:
	case RDMA_PING:
	case RDMA_ERROR:
		return true;
	default:
		return false;
	}
}

/* A path as the protocol takes it: 1..RDMA_PATH_MAX bytes, no NUL. */
static bool path_ok(const char *path, size_t len)
{
	return len >= 1 && len <= RDMA_PATH_MAX && !memchr(path, '\0', len);
}

static bool read_ok(uint32_t length, uint64_t offset)
{
	return offset <= INT64_MAX && length <= INT64_MAX - offset;
}

int rdma_encode(const struct rdma_msg *m, void *buf, size_t cap)
{
	struct wr w = { .p = buf, .end = (uint8_t *)buf + cap };
	uint8_t *start = buf;

	if ((m->flags & ~flags_allowed(m->op)) ||
	    !(is_request(m->op) || is_reply(m->op)) ||
	    (is_request(m->op) && m->status) ||
	    (m->op == RDMA_ERROR && m->status >= 0))
		return -EINVAL;
	put(&w, magic, 4);
	put(&w, (uint8_t[]){ RDMA_PROTO_VERSION, m->op }, 2);
	put_u16(&w, m->flags);
	put_u32(&w, 0); /* the length, below */
	put_u32(&w, m->tag);
	put_u32(&w, (uint32_t)m->status);
	put_u32(&w, 0);

	switch (m->op) {
	case RDMA_HELLO:
		if (!m->hello.addr_len || m->hello.addr_len > RDMA_ADDR_MAX)
			return -EINVAL;
		put_u16(&w, m->hello.addr_len);
		put(&w, m->hello.addr, m->hello.addr_len);
		put(&w, m->hello.nonce, RDMA_NONCE_LEN);
		break;
	case RDMA_CHALLENGE:
		put(&w, m->challenge.nonce, RDMA_NONCE_LEN);
		put_u64(&w, m->challenge.session);
		break;
	case RDMA_AUTH:
		put(&w, m->auth.mac, RDMA_MAC_LEN);
		break;
	case RDMA_WELCOME:
		if (m->welcome.max_inline > RDMA_INLINE_LIMIT)
			return -EINVAL;
		put_u32(&w, m->welcome.max_inline);
		put_u32(&w, m->welcome.max_read);
		put_u32(&w, m->welcome.max_requests);
		put_u32(&w, m->welcome.max_handles);
		put_u64(&w, m->welcome.max_memory);
		put(&w, m->welcome.mac, RDMA_MAC_LEN);
		break;
	case RDMA_STAT:
	case RDMA_OPEN:
		if (!path_ok(m->path.path, m->path.len))
			return -EINVAL;
		put_u16(&w, m->path.len);
		put(&w, m->path.path, m->path.len);
		break;
	case RDMA_STAT | RDMA_REPLY:
		put_stat(&w, &m->stat);
		break;
	case RDMA_OPEN | RDMA_REPLY:
		put_u32(&w, m->open.handle);
		put_stat(&w, &m->open.st);
		break;
	case RDMA_READ:
		if (!read_ok(m->read.length, m->read.offset) ||
		    (!(m->flags & RDMA_F_RMA) &&
		     (m->read.raddr || m->read.rkey)))
			return -EINVAL;
		put_u32(&w, m->read.handle);
		put_u32(&w, m->read.length);
		put_u64(&w, m->read.offset);
		put_u64(&w, m->read.raddr);
		put_u64(&w, m->read.rkey);
		break;
	case RDMA_READ | RDMA_REPLY:
		if (!(m->flags & RDMA_F_RMA) &&
		    m->read_reply.count > RDMA_INLINE_LIMIT)
			return -EINVAL;
		if (m->flags & RDMA_F_RMA) {
			put_u32(&w, m->read_reply.count);
		} else if (m->read_reply.data != start + RDMA_HDR_LEN &&
			   m->read_reply.data) {
			put(&w, m->read_reply.data, m->read_reply.count);
		} else if ((size_t)(w.end - w.p) >= m->read_reply.count) {
			w.p += m->read_reply.count; /* already in place */
		} else {
			w.full = true;
		}
		break;
	case RDMA_CLOSE:
		put_u32(&w, m->close.handle);
		break;
	default: /* CLOSE|REPLY, BYE, PING, ERROR: no payload */
		break;
	}
	if (w.full || w.p - start > INT_MAX)
		return -EMSGSIZE;
	start[8] = (uint8_t)(w.p - start);
	start[9] = (uint8_t)((w.p - start) >> 8);
	start[10] = (uint8_t)((w.p - start) >> 16);
	start[11] = (uint8_t)((w.p - start) >> 24);
	return (int)(w.p - start);
}

/* The payload of m's op, from r; false when it is not well formed. */
static bool decode_payload(struct rd *r, struct rdma_msg *m)
{
	const uint8_t *at;

	switch (m->op) {
	case RDMA_HELLO:
		m->hello.addr_len = get_u16(r);
		m->hello.addr = take(r, m->hello.addr_len);
		get(r, m->hello.nonce, RDMA_NONCE_LEN);
		return m->hello.addr_len && m->hello.addr_len <= RDMA_ADDR_MAX;
	case RDMA_CHALLENGE:
		get(r, m->challenge.nonce, RDMA_NONCE_LEN);
		m->challenge.session = get_u64(r);
		return true;
	case RDMA_AUTH:
		get(r, m->auth.mac, RDMA_MAC_LEN);
		return true;
	case RDMA_WELCOME:
		m->welcome.max_inline = get_u32(r);
		m->welcome.max_read = get_u32(r);
		m->welcome.max_requests = get_u32(r);
		m->welcome.max_handles = get_u32(r);
		m->welcome.max_memory = get_u64(r);
		get(r, m->welcome.mac, RDMA_MAC_LEN);
		return m->welcome.max_inline <= RDMA_INLINE_LIMIT;
	case RDMA_STAT:
	case RDMA_OPEN:
		m->path.len = get_u16(r);
		m->path.path = (const char *)take(r, m->path.len);
		return m->path.path && path_ok(m->path.path, m->path.len);
	case RDMA_STAT | RDMA_REPLY:
		get_stat(r, &m->stat);
		return true;
	case RDMA_OPEN | RDMA_REPLY:
		m->open.handle = get_u32(r);
		get_stat(r, &m->open.st);
		return true;
	case RDMA_READ:
		m->read.handle = get_u32(r);
		m->read.length = get_u32(r);
		m->read.offset = get_u64(r);
		m->read.raddr = get_u64(r);
		m->read.rkey = get_u64(r);
		return read_ok(m->read.length, m->read.offset) &&
		       ((m->flags & RDMA_F_RMA) ||
			(!m->read.raddr && !m->read.rkey));
	case RDMA_READ | RDMA_REPLY:
		if (m->flags & RDMA_F_RMA) {
			m->read_reply.data = NULL;
			m->read_reply.count = get_u32(r);
		} else {
			/* the rest, bounded by the 32-bit length field */
			m->read_reply.count = (uint32_t)(r->end - r->p);
			at = take(r, m->read_reply.count);
			m->read_reply.data = at;
		}
		return m->read_reply.count <= RDMA_INLINE_LIMIT ||
		       (m->flags & RDMA_F_RMA);
	case RDMA_CLOSE:
		m->close.handle = get_u32(r);
		return true;
	case RDMA_ERROR:
		return m->status < 0;
	default: /* CLOSE|REPLY, BYE, PING */
		return true;
	}
}

static int decode(const void *buf, size_t len, struct rdma_msg *m,
		  bool (*direction)(uint8_t op))
{
	struct rd r = { .p = buf, .end = (const uint8_t *)buf + len };
	const uint8_t *b = buf;
	uint32_t length;

	memset(m, 0, sizeof(*m));
	if (len < 4 || memcmp(b, magic, 4) != 0)
		return -EPROTO;
	if (len < 5 || b[4] != RDMA_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (len < RDMA_HDR_LEN)
		return -EBADMSG;
	take(&r, 6);
	m->op = b[5];
	m->flags = get_u16(&r);
	length = get_u32(&r);
	m->tag = get_u32(&r);
	m->status = (int32_t)get_u32(&r);
	if (get_u32(&r) != 0 || length != len || !direction(m->op) ||
	    (m->flags & ~flags_allowed(m->op)) ||
	    (direction == is_request && m->status) || (m->status > 0) ||
	    (m->status && m->op != RDMA_ERROR))
		goto bad;
	if (!decode_payload(&r, m) || r.short_ || r.p != r.end)
		goto bad;
	return 0;

bad : {
	uint8_t op = m->op;
	uint32_t tag = m->tag;

	memset(m, 0, sizeof(*m));
	m->op = op;
	m->tag = tag;
}
	return -EBADMSG;
}

int rdma_decode_request(const void *buf, size_t len, struct rdma_msg *m)
{
	return decode(buf, len, m, is_request);
}

int rdma_decode_reply(const void *buf, size_t len, struct rdma_msg *m)
{
	return decode(buf, len, m, is_reply);
}

/* --- authentication ------------------------------------------------------- */

int rdma_mac(enum rdma_mac_role role, const void *secret, size_t secret_len,
	     const uint8_t cnonce[RDMA_NONCE_LEN],
	     const uint8_t snonce[RDMA_NONCE_LEN], uint64_t session,
	     const void *addr, size_t addr_len, uint8_t out[RDMA_MAC_LEN])
{
	/* NUL-terminated: no role's string is a prefix of another's */
	static const char *const what[] = {
		[RDMA_MAC_AUTH] = "cachefs rdma v1: client knows the secret",
		[RDMA_MAC_WELCOME] = "cachefs rdma v1: server knows the secret",
	};
	uint8_t text[64 + 2 * RDMA_NONCE_LEN + 8 + 2 + RDMA_ADDR_MAX];
	struct wr w = { .p = text, .end = text + sizeof(text) };
	unsigned int n = RDMA_MAC_LEN;

	if (secret_len > INT_MAX || addr_len > RDMA_ADDR_MAX)
		return -EINVAL;
	put(&w, what[role], strlen(what[role]) + 1);
	put(&w, cnonce, RDMA_NONCE_LEN);
	put(&w, snonce, RDMA_NONCE_LEN);
	put_u64(&w, session);
	put_u16(&w, (uint16_t)addr_len);
	put(&w, addr, addr_len);
	if (w.full || !HMAC(EVP_sha256(), secret, (int)secret_len, text,
			    (size_t)(w.p - text), out, &n))
		return -EIO;
	return 0;
}

bool rdma_mac_equal(const uint8_t a[RDMA_MAC_LEN],
		    const uint8_t b[RDMA_MAC_LEN])
{
	return CRYPTO_memcmp(a, b, RDMA_MAC_LEN) == 0;
}

const char *rdma_op_name(uint8_t op)
{
	static const char *const names[] = {
		[RDMA_HELLO] = "hello", [RDMA_CHALLENGE] = "challenge",
		[RDMA_AUTH] = "auth",	[RDMA_WELCOME] = "welcome",
		[RDMA_STAT] = "stat",	[RDMA_OPEN] = "open",
		[RDMA_READ] = "read",	[RDMA_CLOSE] = "close",
		[RDMA_BYE] = "bye",	[RDMA_PING] = "ping",
		[RDMA_ERROR] = "error",
	};
	uint8_t base = op & (uint8_t)~RDMA_REPLY;

	if (base >= sizeof(names) / sizeof(names[0]) || !names[base])
		return "?";
	return names[base];
}
