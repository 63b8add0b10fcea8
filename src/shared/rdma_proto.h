/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_RDMA_PROTO_H
#define CACHEFS_RDMA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The RDMA read protocol, shared by the daemon's server (rdma.c) and the
 * client library (libcachefs, client.c).  This comment is its reference.
 *
 * Transport.  libfabric reliable datagram endpoints (FI_EP_RDM) with
 * FI_MSG and FI_RMA: requests and small replies are messages; the bytes
 * of a large read are written by the server, with RMA, straight into a
 * buffer the client registered.  Every message is one libfabric message:
 * a fixed header, then the op's payload.  All integers are little-endian
 * and unaligned; there is no padding.
 *
 *	off  size
 *	0    4    magic, the bytes "CFRD"
 *	4    1    version, RDMA_PROTO_VERSION
 *	5    1    op (below)
 *	6    2    flags, per op; bits not defined for the op must be 0
 *	8    4    length of the whole message, header included
 *	12   4    tag: chosen by the client per request, echoed in the reply
 *	16   4    status: 0, or in a reply a negative errno (signed)
 *	20   4    reserved, 0
 *
 * A message whose length field is not the number of bytes received, that
 * has bytes left over or too few for its op, an unknown op, a reserved
 * field or flag set, or a status in a request, is malformed.  The
 * decoders below check all of it and never read past the bytes given.
 *
 * Ops, client to server (requests) and server to client (replies):
 *
 *	HELLO      c->s  u16 address length (1..RDMA_ADDR_MAX), the client's
 *	                 fabric address as fi_getname() gives it, then a
 *	                 32-byte client nonce
 *	CHALLENGE  s->c  32-byte server nonce, u64 session id; flag
 *	                 RDMA_F_NO_SECRET when the server has no secret
 *	AUTH       c->s  32-byte MAC (rdma_mac(), RDMA_MAC_AUTH)
 *	WELCOME    s->c  u32 largest inline reply (data bytes, at most
 *	                 RDMA_INLINE_LIMIT, so that a client can post its
 *	                 receives before it knows), u32 largest
 *	                 read, u32 most requests in flight, u32 most open
 *	                 handles, u64 most bytes of reads in flight, then a
 *	                 32-byte MAC (RDMA_MAC_WELCOME; zeros without a
 *	                 secret); flag RDMA_F_CQ_DATA (below)
 *	STAT       c->s  u16 path length (1..RDMA_PATH_MAX), the path
 *	STAT|REPLY s->c  the attributes (struct rdma_stat, 72 bytes: u64
 *	                 size, ino, nlink, blocks; u32 mode, uid, gid,
 *	                 blksize; s64 atime, mtime, ctime in ns)
 *	OPEN       c->s  as STAT; regular files only, for reading
 *	OPEN|REPLY s->c  u32 handle, then the attributes as for STAT
 *	READ       c->s  u32 handle, u32 length (0..largest read), u64
 *	                 offset (at most INT64_MAX, and offset + length
 *	                 too), u64 remote address, u64 remote key; flag
 *	                 RDMA_F_RMA when the client registered a buffer
 *	                 there for the bytes (address and key 0 otherwise)
 *	READ|REPLY s->c  without RDMA_F_RMA: the bytes read, inline (the
 *	                 payload is the data, at most RDMA_INLINE_LIMIT
 *	                 bytes); with RDMA_F_RMA: u32 bytes
 *	                 written into the client's buffer
 *	CLOSE      c->s  u32 handle
 *	CLOSE|REPLY s->c empty
 *	BYE        c->s  empty; the server forgets the client, no reply
 *	PING       s->c  empty; tells an idle client's liveness, no reply
 *	ERROR      s->c  empty, status < 0: the request tagged failed
 *
 * A session.  The client sends HELLO; the server answers CHALLENGE with
 * a fresh nonce and session id; the client proves it knows the shared
 * secret with AUTH, an HMAC-SHA256 keyed with the secret over a string
 * that says what it proves, both nonces, the session id and the client's
 * address (rdma_mac()); the server checks it in constant time and
 * answers WELCOME, with its limits and its own MAC over the same fields
 * (so the client knows it talks to a server with the secret), or ERROR
 * -EACCES and forgets the client.  Anything but AUTH before WELCOME gets
 * ERROR -EACCES and the same.  A server without a secret (loopback only)
 * says so in CHALLENGE and takes any AUTH.
 *
 * Requests.  A client keeps at most "most requests in flight" requests
 * unanswered and "most bytes" of reads in flight; paths are relative to
 * the mount's root (no leading '/', no NUL) and may not leave it.  A
 * read returns fewer bytes than asked only at the end of the file.  Up
 * to the inline size, or without RDMA_F_RMA, the bytes come in the
 * reply.  Otherwise the server writes them with RMA into the client's
 * buffer and the read completes only once they landed: with
 * RDMA_F_CQ_DATA (WELCOME), by the write itself carrying remote CQ data
 * (rdma_cq_data(): the tag and the byte count), without any reply
 * message; else by a READ|REPLY with RDMA_F_RMA that the server sends
 * once the write completed with FI_DELIVERY_COMPLETE.  A read of 0
 * bytes, and every failure, is answered with a message.
 *
 * Errors.  A request that fails is answered ERROR with its tag and a
 * negative errno: -ENOENT, -EACCES (no permission, or the path leaves
 * the tree), -EISDIR or -EINVAL (not a regular file), -EBADF (unknown
 * handle), -EINVAL (bad length or offset), -EBUSY (a limit reached),
 * -EMFILE (too many handles), -ENAMETOOLONG, or the backend's error.  A
 * malformed message, an unknown op or a request before authentication
 * gets ERROR (tag as received, when there was a header) and the
 * server forgets the client.
 */

#define RDMA_PROTO_VERSION 1
#define RDMA_HDR_LEN 24
#define RDMA_NONCE_LEN 32
#define RDMA_MAC_LEN 32
#define RDMA_ADDR_MAX 128  /* bytes of a fabric address */
#define RDMA_PATH_MAX 4095 /* bytes of a path */
#define RDMA_STAT_LEN 72
#define RDMA_INLINE_LIMIT 16384 /* the most data bytes a reply carries */

/* The longest message a client sends: HELLO, or a request with a path. */
#define RDMA_REQUEST_MAX (RDMA_HDR_LEN + 2 + RDMA_PATH_MAX)

enum rdma_op {
	RDMA_HELLO = 1,
	RDMA_CHALLENGE = 2,
	RDMA_AUTH = 3,
	RDMA_WELCOME = 4,
	RDMA_STAT = 5,
	RDMA_OPEN = 6,
	RDMA_READ = 7,
	RDMA_CLOSE = 8,
	RDMA_BYE = 9,
	RDMA_PING = 10,
	RDMA_ERROR = 11,
	RDMA_REPLY = 0x80, /* with STAT, OPEN, READ, CLOSE: the reply */
};

/* Flags, per op. */
#define RDMA_F_NO_SECRET 0x1 /* CHALLENGE: the server takes any AUTH */
#define RDMA_F_CQ_DATA 0x1   /* WELCOME: RMA reads complete by CQ data */
#define RDMA_F_RMA 0x1	     /* READ, READ|REPLY: the bytes go by RMA */

struct rdma_stat {
	uint64_t size, ino, nlink, blocks;
	uint32_t mode, uid, gid, blksize;
	int64_t atime_ns, mtime_ns, ctime_ns;
};

/*
 * A message, decoded or to encode.  Pointers of a decoded message point
 * into the bytes it was decoded from.
 */
struct rdma_msg {
	uint8_t op;
	uint16_t flags;
	uint32_t tag;
	int32_t status;
	union {
		struct {
			const uint8_t *addr;
			uint16_t addr_len;
			uint8_t nonce[RDMA_NONCE_LEN];
		} hello;
		struct {
			uint8_t nonce[RDMA_NONCE_LEN];
			uint64_t session;
		} challenge;
		struct {
			uint8_t mac[RDMA_MAC_LEN];
		} auth;
		struct {
			uint32_t max_inline, max_read, max_requests;
			uint32_t max_handles;
			uint64_t max_memory;
			uint8_t mac[RDMA_MAC_LEN];
		} welcome;
		struct {
			const char *path; /* not NUL-terminated */
			uint16_t len;
		} path;		       /* STAT, OPEN */
		struct rdma_stat stat; /* STAT|REPLY */
		struct {
			uint32_t handle;
			struct rdma_stat st;
		} open; /* OPEN|REPLY */
		struct {
			uint32_t handle;
			uint32_t length;
			uint64_t offset;
			uint64_t raddr, rkey;
		} read;
		struct {
			/*
			 * Inline: count bytes at data.  Encoding copies them
			 * unless data is already where they go (buf +
			 * RDMA_HDR_LEN), or NULL (the caller puts them there).
			 * With RDMA_F_RMA: count only.
			 */
			const uint8_t *data;
			uint32_t count;
		} read_reply;
		struct {
			uint32_t handle;
		} close; /* CLOSE */
	};
};

/*
 * Encode m into buf, at most cap bytes.  Returns the message's length,
 * -EMSGSIZE when it does not fit, or -EINVAL when m is not a message a
 * decoder would take (a field out of range, a flag not defined).
 */
int rdma_encode(const struct rdma_msg *m, void *buf, size_t cap);

/*
 * Decode len bytes: requests (the ops a client sends), or replies (the
 * ops a server sends).  Returns 0, -EPROTO (not this protocol: magic),
 * -EPROTONOSUPPORT (another version), or -EBADMSG (malformed, the op
 * unknown or not of that direction).  With -EBADMSG after a valid
 * header, m->op and m->tag hold what the header said; else they are 0.
 */
int rdma_decode_request(const void *buf, size_t len, struct rdma_msg *m);
int rdma_decode_reply(const void *buf, size_t len, struct rdma_msg *m);

/*
 * The remote CQ data of an RMA-written read: the request's tag in the
 * high half, the bytes written in the low one.
 */
static inline uint64_t rdma_cq_data(uint32_t tag, uint32_t count)
{
	return (uint64_t)tag << 32 | count;
}

/* What a MAC proves, part of what it covers. */
enum rdma_mac_role {
	RDMA_MAC_AUTH,	  /* the client knows the secret */
	RDMA_MAC_WELCOME, /* the server does */
};

/*
 * HMAC-SHA256, keyed with secret, over a string naming role and the
 * protocol version, the client's then the server's nonce, the session id
 * and the client's address (each field with its length fixed, or given).
 * Returns 0, or -EIO when the MAC could not be computed (out is then not
 * to be compared with anything).
 */
int rdma_mac(enum rdma_mac_role role, const void *secret, size_t secret_len,
	     const uint8_t cnonce[RDMA_NONCE_LEN],
	     const uint8_t snonce[RDMA_NONCE_LEN], uint64_t session,
	     const void *addr, size_t addr_len, uint8_t out[RDMA_MAC_LEN]);

/* Whether two MACs are equal, in time independent of where they differ. */
bool rdma_mac_equal(const uint8_t a[RDMA_MAC_LEN],
		    const uint8_t b[RDMA_MAC_LEN]);

/* The name of op (for messages and logs), "?" for an unknown one. */
const char *rdma_op_name(uint8_t op);

#endif
