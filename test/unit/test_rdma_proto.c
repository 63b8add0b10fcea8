// SPDX-License-Identifier: MIT
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdma_proto.h"

static const uint8_t addr[16] = { 2, 0, 0x1d, 0x2f, 127, 0, 0, 1 };

/* One message of every op, each field set to something not zero. */
static size_t all_ops(struct rdma_msg *out)
{
	static const char path[] = "dir/file.bin";
	struct rdma_msg m[] = {
		{ .op = RDMA_HELLO,
		  .tag = 1,
		  .hello = { .addr = addr, .addr_len = sizeof(addr) } },
		{ .op = RDMA_CHALLENGE,
		  .flags = RDMA_F_NO_SECRET,
		  .tag = 1,
		  .challenge = { .session = 0x0123456789abcdefull } },
		{ .op = RDMA_AUTH, .tag = 2 },
		{ .op = RDMA_WELCOME,
		  .flags = RDMA_F_CQ_DATA,
		  .tag = 2,
		  .welcome = { .max_inline = 8192,
			       .max_read = 4 << 20,
			       .max_requests = 64,
			       .max_handles = 256,
			       .max_memory = 1ull << 33 } },
		{ .op = RDMA_STAT,
		  .tag = 3,
		  .path = { .path = path, .len = sizeof(path) - 1 } },
		{ .op = RDMA_STAT | RDMA_REPLY,
		  .tag = 3,
		  .stat = { .size = 1ull << 40,
			    .ino = 77,
			    .nlink = 2,
			    .blocks = 9,
			    .mode = 0100644,
			    .uid = 1000,
			    .gid = 100,
			    .blksize = 4096,
			    .atime_ns = -5,
			    .mtime_ns = 1700000000123456789LL,
			    .ctime_ns = 1 } },
		{ .op = RDMA_OPEN,
		  .tag = 4,
		  .path = { .path = path, .len = sizeof(path) - 1 } },
		{ .op = RDMA_OPEN | RDMA_REPLY,
		  .tag = 4,
		  .open = { .handle = 7,
			    .st = { .size = 12, .mode = 0100600 } } },
		{ .op = RDMA_READ,
		  .flags = RDMA_F_RMA,
		  .tag = 0xfffffffe,
		  .read = { .handle = 7,
			    .length = 1 << 20,
			    .offset = INT64_MAX - (1 << 20),
			    .raddr = 0x7f0012345000ull,
			    .rkey = 0xdeadbeefcafeull } },
		{ .op = RDMA_READ,
		  .tag = 6,
		  .read = { .handle = 1, .length = 5 } },
		{ .op = RDMA_READ | RDMA_REPLY,
		  .tag = 6,
		  .read_reply = { .data = (const uint8_t *)"hello",
				  .count = 5 } },
		{ .op = RDMA_READ | RDMA_REPLY,
		  .flags = RDMA_F_RMA,
		  .tag = 5,
		  .read_reply = { .count = 1 << 20 } },
		{ .op = RDMA_CLOSE, .tag = 8, .close = { .handle = 7 } },
		{ .op = RDMA_CLOSE | RDMA_REPLY, .tag = 8 },
		{ .op = RDMA_BYE, .tag = 9 },
		{ .op = RDMA_PING },
		{ .op = RDMA_ERROR, .tag = 10, .status = -ENOENT },
	};
	size_t n = sizeof(m) / sizeof(m[0]);

	memset(m[0].hello.nonce, 0xa5, RDMA_NONCE_LEN);
	memset(m[1].challenge.nonce, 0x5a, RDMA_NONCE_LEN);
	memset(m[2].auth.mac, 0x11, RDMA_MAC_LEN);
	memset(m[3].welcome.mac, 0x22, RDMA_MAC_LEN);
	memcpy(out, m, sizeof(m));
	return n;
}

static bool request_op(uint8_t op)
{
	return op == RDMA_HELLO || op == RDMA_AUTH || op == RDMA_STAT ||
	       op == RDMA_OPEN || op == RDMA_READ || op == RDMA_CLOSE ||
	       op == RDMA_BYE;
}

static int decode(const void *buf, size_t len, struct rdma_msg *m, bool request)
{
	return request ? rdma_decode_request(buf, len, m)
		       : rdma_decode_reply(buf, len, m);
}

START_TEST(test_round_trip)
{
	struct rdma_msg in[32], out;
	uint8_t buf[RDMA_REQUEST_MAX];
	size_t n = all_ops(in);

	for (size_t k = 0; k < n; k++) {
		const struct rdma_msg *m = &in[k];
		bool req = request_op(m->op);
		int len = rdma_encode(m, buf, sizeof(buf));

		ck_assert_msg(len >= RDMA_HDR_LEN, "%s: %d",
			      rdma_op_name(m->op), len);
		ck_assert_int_eq(decode(buf, (size_t)len, &out, req), 0);
		ck_assert_uint_eq(out.op, m->op);
		ck_assert_uint_eq(out.flags, m->flags);
		ck_assert_uint_eq(out.tag, m->tag);
		ck_assert_int_eq(out.status, m->status);
		/* the other direction does not take it */
		ck_assert_int_eq(decode(buf, (size_t)len, &out, !req),
				 -EBADMSG);
		decode(buf, (size_t)len, &out, req);
		switch (m->op) {
		case RDMA_HELLO:
			ck_assert_uint_eq(out.hello.addr_len, sizeof(addr));
			ck_assert_mem_eq(out.hello.addr, addr, sizeof(addr));
			ck_assert_mem_eq(out.hello.nonce, m->hello.nonce,
					 RDMA_NONCE_LEN);
			break;
		case RDMA_CHALLENGE:
			ck_assert_mem_eq(&out.challenge, &m->challenge,
					 sizeof(out.challenge));
			break;
		case RDMA_AUTH:
			ck_assert_mem_eq(out.auth.mac, m->auth.mac,
					 RDMA_MAC_LEN);
			break;
		case RDMA_WELCOME:
			ck_assert_mem_eq(&out.welcome, &m->welcome,
					 sizeof(out.welcome));
			break;
		case RDMA_STAT:
		case RDMA_OPEN:
			ck_assert_uint_eq(out.path.len, m->path.len);
			ck_assert_mem_eq(out.path.path, m->path.path,
					 m->path.len);
			break;
		case RDMA_STAT | RDMA_REPLY:
			ck_assert_mem_eq(&out.stat, &m->stat, sizeof(out.stat));
			break;
		case RDMA_OPEN | RDMA_REPLY:
			ck_assert_uint_eq(out.open.handle, m->open.handle);
			ck_assert_mem_eq(&out.open.st, &m->open.st,
					 sizeof(out.open.st));
			break;
		case RDMA_READ:
			ck_assert_mem_eq(&out.read, &m->read, sizeof(out.read));
			break;
		case RDMA_READ | RDMA_REPLY:
			ck_assert_uint_eq(out.read_reply.count,
					  m->read_reply.count);
			if (!(m->flags & RDMA_F_RMA))
				ck_assert_mem_eq(out.read_reply.data, "hello",
						 5);
			break;
		case RDMA_CLOSE:
			ck_assert_uint_eq(out.close.handle, m->close.handle);
			break;
		}
	}
}
END_TEST

/* Every proper prefix is refused, and so is one byte more. */
START_TEST(test_truncated_and_oversized)
{
	struct rdma_msg in[32], out;
	uint8_t buf[RDMA_REQUEST_MAX + 1];
	size_t n = all_ops(in);

	for (size_t k = 0; k < n; k++) {
		bool req = request_op(in[k].op);
		int len = rdma_encode(&in[k], buf, sizeof(buf) - 1);

		ck_assert_int_gt(len, 0);
		for (int cut = 0; cut < len; cut++) {
			int r = decode(buf, (size_t)cut, &out, req);

			ck_assert_msg(r < 0, "%s cut to %d: %d",
				      rdma_op_name(in[k].op), cut, r);
		}
		/* a byte more than the length field says */
		buf[len] = 0;
		ck_assert_int_lt(decode(buf, (size_t)len + 1, &out, req), 0);
		/* fixed-size messages cannot grow with the length field */
		if (in[k].op != (RDMA_READ | RDMA_REPLY)) {
			buf[8]++;
			ck_assert_int_eq(
				decode(buf, (size_t)len + 1, &out, req),
				-EBADMSG);
			buf[8]--;
		}
		/* a buffer too small to encode into */
		ck_assert_int_eq(rdma_encode(&in[k], buf, (size_t)len - 1),
				 -EMSGSIZE);
	}
}
END_TEST

START_TEST(test_header)
{
	struct rdma_msg m = { .op = RDMA_CLOSE, .tag = 3, .close = { 1 } };
	uint8_t buf[64];
	int len = rdma_encode(&m, buf, sizeof(buf));

	ck_assert_int_eq(len, RDMA_HDR_LEN + 4);
	ck_assert_mem_eq(buf, "CFRD", 4);
	ck_assert_uint_eq(buf[4], RDMA_PROTO_VERSION);
	ck_assert_uint_eq(buf[8], (unsigned)len);

	buf[0] = 'X';
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m), -EPROTO);
	ck_assert_int_eq(rdma_decode_request(buf, 3, &m), -EPROTO);
	buf[0] = 'C';
	buf[4] = RDMA_PROTO_VERSION + 1;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m),
			 -EPROTONOSUPPORT);
	buf[4] = RDMA_PROTO_VERSION;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m), 0);

	/* flags not defined for the op, the reserved word, a status */
	buf[6] = 1;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m), -EBADMSG);
	ck_assert_uint_eq(m.op, RDMA_CLOSE); /* the header, for an error */
	ck_assert_uint_eq(m.tag, 3);
	buf[6] = 0;
	buf[23] = 1;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m), -EBADMSG);
	buf[23] = 0;
	buf[16] = 0xfe; /* status -2 in a request */
	buf[17] = buf[18] = buf[19] = 0xff;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &m), -EBADMSG);
	memset(buf + 16, 0, 4);
	/* unknown ops */
	for (int op = 0; op < 256; op++) {
		buf[5] = (uint8_t)op;
		if (!request_op((uint8_t)op))
			ck_assert_int_eq(
				rdma_decode_request(buf, (size_t)len, &m),
				-EBADMSG);
	}
	ck_assert_str_eq(rdma_op_name(RDMA_READ | RDMA_REPLY), "read");
	ck_assert_str_eq(rdma_op_name(200), "?");
}
END_TEST

START_TEST(test_fields)
{
	struct rdma_msg m = { .op = RDMA_OPEN }, out;
	char path[RDMA_PATH_MAX + 2];
	uint8_t buf[RDMA_REQUEST_MAX + 64];
	int len;

	memset(path, 'a', sizeof(path));
	/* paths: 1..RDMA_PATH_MAX bytes, no NUL */
	m.path.path = path;
	m.path.len = RDMA_PATH_MAX;
	len = rdma_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(len, RDMA_REQUEST_MAX);
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &out), 0);
	m.path.len = RDMA_PATH_MAX + 1;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.path.len = 0;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	path[2] = '\0';
	m.path.len = 5;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* a NUL slipped in on the wire */
	path[2] = 'a';
	len = rdma_encode(&m, buf, sizeof(buf));
	buf[RDMA_HDR_LEN + 2 + 2] = '\0';
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &out), -EBADMSG);
	/* a path length over what is there */
	len = rdma_encode(&m, buf, sizeof(buf));
	buf[RDMA_HDR_LEN] = 200;
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &out), -EBADMSG);

	/* reads: offsets past INT64_MAX, or that overflow with the length */
	m = (struct rdma_msg){ .op = RDMA_READ,
			       .read = { .length = 10,
					 .offset = INT64_MAX - 10 } };
	ck_assert_int_gt(rdma_encode(&m, buf, sizeof(buf)), 0);
	m.read.offset = INT64_MAX - 9;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.read.offset = 0;
	len = rdma_encode(&m, buf, sizeof(buf));
	memset(buf + RDMA_HDR_LEN + 8, 0xff, 8);
	ck_assert_int_eq(rdma_decode_request(buf, (size_t)len, &out), -EBADMSG);
	/* a remote buffer without RDMA_F_RMA */
	m.read.rkey = 5;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.flags = RDMA_F_RMA;
	ck_assert_int_gt(rdma_encode(&m, buf, sizeof(buf)), 0);

	/* HELLO: the address 1..RDMA_ADDR_MAX bytes */
	m = (struct rdma_msg){ .op = RDMA_HELLO,
			       .hello = { .addr = addr, .addr_len = 0 } };
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.hello.addr_len = RDMA_ADDR_MAX + 1;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);

	/* ERROR needs a negative status; inline data its limit */
	m = (struct rdma_msg){ .op = RDMA_ERROR };
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.status = 5;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = (struct rdma_msg){ .op = RDMA_READ | RDMA_REPLY,
			       .read_reply = { .count = RDMA_INLINE_LIMIT +
							1 } };
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = (struct rdma_msg){ .op = RDMA_WELCOME,
			       .welcome = { .max_inline =
						    RDMA_INLINE_LIMIT + 1 } };
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = (struct rdma_msg){ .op = RDMA_STAT,
			       .status = -1,
			       .path = { .path = "a", .len = 1 } };
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EINVAL);

	/* the CQ data of a write */
	ck_assert_uint_eq(rdma_cq_data(0x12345678, 0x9abcdef0),
			  0x123456789abcdef0ull);
}
END_TEST

/* Inline data encoded in place, after the header. */
START_TEST(test_in_place)
{
	uint8_t buf[RDMA_HDR_LEN + 16];
	struct rdma_msg m = { .op = RDMA_READ | RDMA_REPLY,
			      .read_reply = { .count = 16 } },
			out;

	memset(buf + RDMA_HDR_LEN, 'x', 16);
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), (int)sizeof(buf));
	ck_assert_int_eq(rdma_decode_reply(buf, sizeof(buf), &out), 0);
	ck_assert_uint_eq(out.read_reply.count, 16);
	ck_assert_ptr_eq(out.read_reply.data, buf + RDMA_HDR_LEN);
	m.read_reply.count = 17;
	ck_assert_int_eq(rdma_encode(&m, buf, sizeof(buf)), -EMSGSIZE);
}
END_TEST

START_TEST(test_mac)
{
	uint8_t c[RDMA_NONCE_LEN] = { 1 }, s[RDMA_NONCE_LEN] = { 2 };
	uint8_t a[RDMA_MAC_LEN], b[RDMA_MAC_LEN];
	const char *key = "the secret";

	ck_assert_int_eq(rdma_mac(RDMA_MAC_AUTH, key, 10, c, s, 7, addr,
				  sizeof(addr), a),
			 0);
	ck_assert_int_eq(rdma_mac(RDMA_MAC_AUTH, key, 10, c, s, 7, addr,
				  sizeof(addr), b),
			 0);
	ck_assert(rdma_mac_equal(a, b));
	/* every input counts: role, key, nonces, session, address */
	rdma_mac(RDMA_MAC_WELCOME, key, 10, c, s, 7, addr, sizeof(addr), b);
	ck_assert(!rdma_mac_equal(a, b));
	rdma_mac(RDMA_MAC_AUTH, key, 9, c, s, 7, addr, sizeof(addr), b);
	ck_assert(!rdma_mac_equal(a, b));
	rdma_mac(RDMA_MAC_AUTH, key, 10, s, c, 7, addr, sizeof(addr), b);
	ck_assert(!rdma_mac_equal(a, b));
	rdma_mac(RDMA_MAC_AUTH, key, 10, c, s, 8, addr, sizeof(addr), b);
	ck_assert(!rdma_mac_equal(a, b));
	rdma_mac(RDMA_MAC_AUTH, key, 10, c, s, 7, addr, sizeof(addr) - 1, b);
	ck_assert(!rdma_mac_equal(a, b));
	ck_assert_int_eq(rdma_mac(RDMA_MAC_AUTH, key, 10, c, s, 7, addr,
				  RDMA_ADDR_MAX + 1, b),
			 -EINVAL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rdma_proto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_truncated_and_oversized);
	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_in_place);
	tcase_add_test(tc, test_mac);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
