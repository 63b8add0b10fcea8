// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the RDMA protocol's decoders (src/shared/rdma_proto.c):
 * the request decoder, which the daemon runs on whatever arrives from the
 * fabric, and the reply decoder of libcachefs.
 *
 * The input is one message.  The sanitizers catch any read past it;
 * three properties are checked, abort()ing if broken:
 *
 *  - pointers into a decoded message (a path, an address, inline data)
 *    lie within the input, with the lengths the message says;
 *  - it encodes again to exactly the input (the encoding is canonical, so
 *    nothing a decoder takes is ambiguous);
 *  - every proper prefix of it is refused.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "rdma_proto.h"

static uint8_t again[RDMA_HDR_LEN + RDMA_INLINE_LIMIT + 64];

static void within(const uint8_t *data, size_t size, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (len && (!b || b < data || b + len > data + size))
		abort();
}

static void check(const uint8_t *data, size_t size, const struct rdma_msg *m,
		  int (*decode)(const void *, size_t, struct rdma_msg *))
{
	struct rdma_msg d;
	int n;

	switch (m->op) {
	case RDMA_HELLO:
		if (!m->hello.addr_len || m->hello.addr_len > RDMA_ADDR_MAX)
			abort();
		within(data, size, m->hello.addr, m->hello.addr_len);
		break;
	case RDMA_STAT:
	case RDMA_OPEN:
		if (!m->path.len || m->path.len > RDMA_PATH_MAX ||
		    memchr(m->path.path, '\0', m->path.len))
			abort();
		within(data, size, m->path.path, m->path.len);
		break;
	case RDMA_READ | RDMA_REPLY:
		if (!(m->flags & RDMA_F_RMA))
			within(data, size, m->read_reply.data,
			       m->read_reply.count);
		break;
	}
	n = rdma_encode(m, again, sizeof(again));
	if (n < 0 || (size_t)n != size || memcmp(again, data, size) != 0)
		abort();
	if (decode(data, 0, &d) == 0 || decode(data, size / 2, &d) == 0 ||
	    decode(data, size - 1, &d) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdma_msg m;

	if (rdma_decode_request(data, size, &m) == 0)
		check(data, size, &m, rdma_decode_request);
	if (rdma_decode_reply(data, size, &m) == 0)
		check(data, size, &m, rdma_decode_reply);
	return 0;
}
