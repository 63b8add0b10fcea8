// SPDX-License-Identifier: MIT
/*
 * The change journal's storage: record encoding, segments, recovery from
 * torn tails and damage, cursors, trimming, bounds, group commit, and
 * acknowledged records surviving a kill.  Each test has its own
 * directory under $TMPDIR.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"

/* ---- helpers --------------------------------------------------------- */

struct tmp {
	char top[256];
	char dir[300]; /* the journal's, inside top, made by journal_open */
};

static void tmp_make(struct tmp *t)
{
	const char *base = getenv("TMPDIR");

	snprintf(t->top, sizeof(t->top), "%s/cachefs-test-journal.XXXXXX",
		 base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t->top));
	snprintf(t->dir, sizeof(t->dir), "%s/j", t->top);
}

static void tmp_remove(struct tmp *t)
{
	struct dirent *de;
	DIR *d = opendir(t->dir);

	if (d) {
		int fd = dirfd(d);

		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(fd, de->d_name, 0);
		closedir(d);
		rmdir(t->dir);
	}
	ck_assert_int_eq(rmdir(t->top), 0);
}

/* The name of the idx-th segment file in order; how many there are. */
static int seg_file(const struct tmp *t, int idx, char *path, size_t cap)
{
	struct dirent **names;
	int n = scandir(t->dir, &names, NULL, alphasort), count = 0;

	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);

		if (len > 4 && !strcmp(names[i]->d_name + len - 4, ".seg")) {
			if (count == idx)
				snprintf(path, cap, "%s/%s", t->dir,
					 names[i]->d_name);
			count++;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

static const unsigned char HANDLE[JOURNAL_HANDLE_MAX] = { 1, 2, 3, 0, 5 };

/* The i-th test record: every op in turn, some with two paths. */
static void make_record(struct journal_record *r, uint64_t i, char *p1,
			char *p2)
{
	memset(r, 0, sizeof(*r));
	r->op = (enum journal_op)(1 + i % (JOURNAL_OP__END - 1));
	r->dev = 1000 + i;
	r->ino = 2000 + i;
	r->gen = i * 3;
	sprintf(p1, "/dir/file-%llu", (unsigned long long)i);
	r->path = p1;
	if (i % 3 == 0) {
		sprintf(p2, "/other/name-%llu", (unsigned long long)i);
		r->path2 = p2;
	}
	if (i % 5 == 0) {
		r->handle = HANDLE;
		r->handle_len = 8 + i % 100;
	}
}

/* r is what make_record(i) gave, as appended. */
static void check_record(const struct journal_record *r, uint64_t i)
{
	struct journal_record want;
	char p1[64], p2[64];

	make_record(&want, i, p1, p2);
	ck_assert_int_eq(r->op, want.op);
	ck_assert_uint_eq(r->dev, want.dev);
	ck_assert_uint_eq(r->ino, want.ino);
	ck_assert_uint_eq(r->gen, want.gen);
	ck_assert_str_eq(r->path, want.path);
	if (want.path2)
		ck_assert_str_eq(r->path2, want.path2);
	else
		ck_assert_ptr_null(r->path2);
	ck_assert_uint_eq(r->handle_len, want.handle_len);
	if (want.handle_len)
		ck_assert(memcmp(r->handle, HANDLE, want.handle_len) == 0);
}

/* Append make_record(first .. last); their seqs must be the same. */
static void append_range(struct journal *j, uint64_t first, uint64_t last)
{
	struct journal_record r;
	char p1[64], p2[64];

	for (uint64_t i = first; i <= last; i++) {
		make_record(&r, i, p1, p2);
		ck_assert_int_eq(journal_append(j, &r), 0);
		ck_assert_uint_eq(r.seq, i);
		ck_assert_uint_gt(r.time_ns, 0);
	}
}

/*
 * Read from from_seq to the end, checking each record against
 * make_record(seq), seqs increasing; every seq from from_seq to last is
 * expected but skip.  The iterator's corrupt count.
 */
static uint64_t check_range(struct journal *j, uint64_t from_seq, uint64_t last,
			    uint64_t skip)
{
	struct journal_iter *it;
	struct journal_record r;
	uint64_t want = from_seq, corrupt;
	int n;

	ck_assert_int_eq(journal_iter_open(j, from_seq, &it), 0);
	while ((n = journal_iter_next(it, &r)) == 1) {
		if (want == skip)
			want++;
		ck_assert_uint_eq(r.seq, want);
		check_record(&r, r.seq);
		want++;
	}
	ck_assert_int_eq(n, 0);
	if (want == skip)
		want++;
	ck_assert_uint_eq(want, last + 1);
	corrupt = journal_iter_corrupt(it);
	journal_iter_close(it);
	return corrupt;
}

static struct journal *open_ok(const struct tmp *t,
			       const struct journal_cfg *cfg)
{
	struct journal *j;
	char err[256] = "";
	int r = journal_open(t->dir, cfg, &j, err, sizeof(err));

	ck_assert_msg(r == 0, "journal_open: %d: %s", r, err);
	return j;
}

/* ---- records ----------------------------------------------------------- */

START_TEST(test_crc32c)
{
	ck_assert_uint_eq(journal_crc32c(0, "123456789", 9), 0xE3069283);
	/* continuing gives the same as all at once */
	ck_assert_uint_eq(
		journal_crc32c(journal_crc32c(0, "1234", 4), "56789", 5),
		0xE3069283);
	ck_assert_uint_eq(journal_crc32c(0, "", 0), 0);
}
END_TEST

START_TEST(test_record_roundtrip)
{
	static const char *const classes[] = { "none", "entry", "data",
					       "metadata" };
	unsigned char buf[JOURNAL_RECORD_MAX];
	unsigned char handle[JOURNAL_HANDLE_MAX];
	char *longpath = malloc(PATH_MAX + 1);
	struct journal_record r, d;

	for (int i = 0; i < JOURNAL_HANDLE_MAX; i++)
		handle[i] = (unsigned char)(i * 7);
	for (int op = 1; op < JOURNAL_OP__END; op++) {
		ck_assert_str_ne(journal_op_name(op), "unknown");
		ck_assert_int_ne(journal_op_class(op), JOURNAL_CLASS_NONE);
		for (int v = 0; v < 3; v++) {
			int n;

			memset(&r, 0, sizeof(r));
			r.op = op;
			r.seq = UINT64_MAX - (uint64_t)op;
			r.time_ns = 1234567890123456789ULL;
			r.dev = 1;
			r.ino = (uint64_t)1 << 63;
			r.gen = 42;
			r.path = "/a/b";
			if (v >= 1)
				r.path2 = "/c/d/e";
			if (v == 2) {
				r.handle = handle;
				r.handle_len = sizeof(handle);
			}
			n = journal_record_encode(&r, buf, sizeof(buf));
			ck_assert_int_gt(n, 0);
			ck_assert_int_eq(
				journal_record_decode(buf, (size_t)n, &d), n);
			/* trailing bytes are the next record's business */
			ck_assert_int_eq(
				journal_record_decode(buf, sizeof(buf), &d), n);
			ck_assert_int_eq(d.op, op);
			ck_assert_uint_eq(d.seq, r.seq);
			ck_assert_uint_eq(d.time_ns, r.time_ns);
			ck_assert_uint_eq(d.dev, 1);
			ck_assert_uint_eq(d.ino, r.ino);
			ck_assert_uint_eq(d.gen, 42);
			ck_assert_str_eq(d.path, "/a/b");
			if (v >= 1)
				ck_assert_str_eq(d.path2, "/c/d/e");
			else
				ck_assert_ptr_null(d.path2);
			ck_assert_uint_eq(d.handle_len, v == 2 ? 128 : 0);
			if (v == 2)
				ck_assert(memcmp(d.handle, handle, 128) == 0);
		}
	}
	ck_assert_str_eq(journal_op_name(JOURNAL_OP_COPY_FILE_RANGE),
			 "copy_file_range");
	ck_assert_str_eq(classes[journal_op_class(JOURNAL_OP_RENAME)], "entry");
	ck_assert_str_eq(classes[journal_op_class(JOURNAL_OP_FALLOCATE)],
			 "data");
	ck_assert_str_eq(classes[journal_op_class(JOURNAL_OP_SETXATTR)],
			 "metadata");
	ck_assert_str_eq(journal_op_name(0), "unknown");
	ck_assert_int_eq(journal_op_class(JOURNAL_OP__END), JOURNAL_CLASS_NONE);

	/* what cannot be encoded */
	memset(&r, 0, sizeof(r));
	r.op = JOURNAL_OP__END;
	r.path = "/x";
	ck_assert_int_eq(journal_record_encode(&r, buf, sizeof(buf)), -EINVAL);
	r.op = JOURNAL_OP_WRITE;
	r.path = NULL;
	ck_assert_int_eq(journal_record_encode(&r, buf, sizeof(buf)), -EINVAL);
	r.path = "/x";
	r.handle = handle;
	r.handle_len = JOURNAL_HANDLE_MAX + 1;
	ck_assert_int_eq(journal_record_encode(&r, buf, sizeof(buf)), -EINVAL);
	r.handle_len = 0;
	ck_assert_int_eq(journal_record_encode(&r, buf, 10), -ENOBUFS);
	memset(longpath, 'x', PATH_MAX);
	longpath[PATH_MAX] = '\0';
	r.path2 = longpath;
	ck_assert_int_eq(journal_record_encode(&r, buf, sizeof(buf)),
			 -ENAMETOOLONG);
	/* the longest record there is */
	longpath[PATH_MAX - 1] = '\0';
	r.path = longpath;
	r.handle_len = JOURNAL_HANDLE_MAX;
	ck_assert_int_eq(journal_record_encode(&r, buf, sizeof(buf)),
			 JOURNAL_RECORD_MAX);
	ck_assert_int_eq(journal_record_decode(buf, sizeof(buf), &d),
			 JOURNAL_RECORD_MAX);
	ck_assert_uint_eq(strlen(d.path2), PATH_MAX - 1);
	free(longpath);
}
END_TEST

/*
 * Every byte of a record is checked: the CRC covers bytes 10 on, and
 * each of the ten before it is checked on its own (magic, format, the
 * length against its complement, the CRC against the rest), so there is
 * no byte whose change goes unnoticed.
 */
START_TEST(test_record_prefix_and_damage)
{
	unsigned char buf[512], bad[512];
	struct journal_record r, d;
	int n;

	memset(&r, 0, sizeof(r));
	r.op = JOURNAL_OP_RENAME;
	r.seq = 77;
	r.path = "/from/here";
	r.path2 = "/to/there";
	r.handle = HANDLE;
	r.handle_len = 20;
	n = journal_record_encode(&r, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	for (int len = 0; len < n; len++)
		ck_assert_msg(journal_record_decode(buf, (size_t)len, &d) ==
				      -EAGAIN,
			      "prefix of %d bytes", len);
	for (int i = 0; i < n; i++) {
		for (int x = 1; x < 256; x++) {
			memcpy(bad, buf, (size_t)n);
			bad[i] ^= (unsigned char)x;
			ck_assert_msg(journal_record_decode(bad, (size_t)n,
							    &d) == -EBADMSG,
				      "byte %d ^ %#x", i, x);
		}
	}
	/* a bad magic is known at once, even without the rest */
	ck_assert_int_eq(journal_record_decode("x", 1, &d), -EBADMSG);
}
END_TEST

/* ---- segments, reading, recovery --------------------------------------- */

START_TEST(test_many_segments)
{
	struct journal_cfg cfg = { .segment_bytes = 64 * 1024,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_stats st;
	struct journal *j;
	struct tmp t;
	char path[512];

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 10000);
	ck_assert_uint_eq(check_range(j, 1, 10000, 0), 0);
	journal_close(j);

	j = open_ok(&t, &cfg);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.newest_seq, 10000);
	ck_assert_uint_eq(st.oldest_seq, 1);
	ck_assert_uint_ge(st.segments, 5);
	ck_assert_uint_eq(st.segments, (uint64_t)seg_file(&t, 0, path, 512));
	ck_assert_uint_eq(st.torn_truncated, 0);
	ck_assert_uint_eq(st.corrupt_skipped, 0);
	ck_assert_uint_eq(check_range(j, 1, 10000, 0), 0);
	ck_assert_uint_eq(check_range(j, 5001, 10000, 0), 0);
	ck_assert_uint_eq(check_range(j, 10000, 10000, 0), 0);
	/* past the end: nothing yet, then what comes */
	{
		struct journal_iter *it;
		struct journal_record r;

		ck_assert_int_eq(journal_iter_open(j, 10001, &it), 0);
		ck_assert_int_eq(journal_iter_next(it, &r), 0);
		append_range(j, 10001, 10002);
		ck_assert_int_eq(journal_iter_next(it, &r), 1);
		ck_assert_uint_eq(r.seq, 10001);
		ck_assert_int_eq(journal_iter_next(it, &r), 1);
		ck_assert_int_eq(journal_iter_next(it, &r), 0);
		journal_iter_close(it);
	}
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_torn_tail)
{
	struct journal_cfg cfg = { .segment_bytes = 4096,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_stats st;
	struct journal *j;
	char path[512];
	struct tmp t;
	int n;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 100);
	journal_close(j);
	n = seg_file(&t, 0, path, sizeof(path));
	ck_assert_int_gt(n, 1);
	seg_file(&t, n - 1, path, sizeof(path));
	{
		struct stat sb;

		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_int_eq(truncate(path, sb.st_size - 3), 0);
	}
	j = open_ok(&t, &cfg);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.torn_truncated, 1);
	ck_assert_uint_eq(st.corrupt_skipped, 0);
	ck_assert_uint_eq(st.newest_seq, 99);
	append_range(j, 100, 101);
	ck_assert_uint_eq(check_range(j, 1, 101, 0), 0);
	journal_close(j);

	/* cut for good: a second open finds nothing to do */
	j = open_ok(&t, &cfg);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.torn_truncated, 0);
	ck_assert_uint_eq(st.newest_seq, 101);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_garbage_tail)
{
	/* starts like a record: magic, format, a length and its complement */
	static const unsigned char junk[] = "\xC7\x01\x40\x00\xbf\xffgarbage";
	struct journal_cfg cfg = { .sync = JOURNAL_SYNC_NEVER };
	struct journal_stats st;
	struct journal *j;
	char path[512];
	struct tmp t;
	int fd;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 50);
	journal_close(j);
	ck_assert_int_eq(seg_file(&t, 0, path, sizeof(path)), 1);
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	j = open_ok(&t, &cfg);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.torn_truncated, 1);
	ck_assert_uint_eq(st.corrupt_skipped, 0);
	ck_assert_uint_eq(st.newest_seq, 50);
	append_range(j, 51, 51);
	ck_assert_uint_eq(check_range(j, 1, 51, 0), 0);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

static void log_count(void *arg, const char *msg)
{
	ck_assert_ptr_nonnull(strstr(msg, "journal: "));
	(*(int *)arg)++;
}

START_TEST(test_mid_corruption)
{
	int logged = 0;
	struct journal_cfg cfg = { .segment_bytes = 4096,
				   .sync = JOURNAL_SYNC_NEVER,
				   .log = log_count,
				   .log_arg = &logged };
	unsigned char buf[8192];
	struct journal_record r;
	struct journal_stats st;
	struct journal *j;
	size_t off = 0, offs[200];
	int fd, n, count = 0;
	uint64_t victim;
	char path[512];
	ssize_t len;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 300);
	journal_close(j);

	/* the middle record of the second segment */
	ck_assert_int_ge(seg_file(&t, 1, path, sizeof(path)), 3);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	len = read(fd, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	while ((n = journal_record_decode(buf + off, (size_t)len - off, &r)) >
	       0) {
		offs[count++] = off;
		off += (size_t)n;
	}
	ck_assert_uint_eq(off, (size_t)len);
	ck_assert_int_ge(count, 3);
	off = offs[count / 2];
	ck_assert_int_gt(
		journal_record_decode(buf + off, (size_t)len - off, &r), 0);
	victim = r.seq;
	buf[off + JOURNAL_RECORD_HEAD + 1 + r.handle_len] ^= 0x20;
	ck_assert_int_eq(pwrite(fd, buf + off, 100, (off_t)off), 100);
	close(fd);

	j = open_ok(&t, &cfg);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.corrupt_skipped, 1);
	ck_assert_uint_eq(st.torn_truncated, 0);
	ck_assert_uint_eq(st.newest_seq, 300);
	ck_assert_int_eq(logged, 1);
	ck_assert_uint_eq(check_range(j, 1, 300, victim), 1);
	append_range(j, 301, 301);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* ---- cursors, trimming, bounds ----------------------------------------- */

START_TEST(test_cursors)
{
	static const char *const bad[] = { "",		"a/b",	     "a b",
					   "..\n",	"x\xc3\xa9", "tab\t",
					   "semi;colon" };
	char name[JOURNAL_CURSOR_NAME_MAX + 2];
	struct journal *j;
	uint64_t seq;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, NULL);
	ck_assert_int_eq(journal_cursor_get(j, "reader", &seq), -ENOENT);
	ck_assert_int_eq(journal_cursor_set(j, "reader", 5), 0);
	ck_assert_int_eq(journal_cursor_set(j, "reader", 6), 0);
	ck_assert_int_eq(journal_cursor_set(j, "A.b_c-9", 7), 0);
	ck_assert_int_eq(journal_cursor_set(j, "gone", 8), 0);
	ck_assert_int_eq(journal_cursor_remove(j, "gone"), 0);
	ck_assert_int_eq(journal_cursor_remove(j, "gone"), -ENOENT);
	memset(name, 'n', JOURNAL_CURSOR_NAME_MAX);
	name[JOURNAL_CURSOR_NAME_MAX] = '\0';
	ck_assert_int_eq(journal_cursor_set(j, name, UINT64_MAX), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(journal_cursor_set(j, bad[i], 1), -EINVAL);
		ck_assert_int_eq(journal_cursor_get(j, bad[i], &seq), -EINVAL);
		ck_assert_int_eq(journal_cursor_remove(j, bad[i]), -EINVAL);
	}
	name[JOURNAL_CURSOR_NAME_MAX] = 'n';
	name[JOURNAL_CURSOR_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(journal_cursor_set(j, name, 1), -EINVAL);
	name[JOURNAL_CURSOR_NAME_MAX] = '\0';
	journal_close(j);

	j = open_ok(&t, NULL);
	ck_assert_int_eq(journal_cursor_get(j, "reader", &seq), 0);
	ck_assert_uint_eq(seq, 6);
	ck_assert_int_eq(journal_cursor_get(j, "A.b_c-9", &seq), 0);
	ck_assert_uint_eq(seq, 7);
	ck_assert_int_eq(journal_cursor_get(j, name, &seq), 0);
	ck_assert_uint_eq(seq, UINT64_MAX);
	ck_assert_int_eq(journal_cursor_get(j, "gone", &seq), -ENOENT);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_trim)
{
	struct journal_cfg cfg = { .segment_bytes = 4096,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_stats st, before;
	struct journal_iter *it;
	struct journal *j;
	char path[512];
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 1000);
	/* no cursor: nobody said what they are done with */
	ck_assert_int_eq(journal_trim(j), 0);
	journal_get_stats(j, &before);
	ck_assert_uint_eq(before.oldest_seq, 1);

	ck_assert_int_eq(journal_cursor_set(j, "fast", 700), 0);
	ck_assert_int_eq(journal_cursor_set(j, "slow", 300), 0);
	ck_assert_int_gt(journal_trim(j), 0);
	journal_get_stats(j, &st);
	/* the segment holding 301 stays, the one before it went */
	ck_assert_uint_le(st.oldest_seq, 301);
	ck_assert_int_eq(journal_iter_open(j, st.oldest_seq - 1, &it), -ERANGE);
	ck_assert_ptr_null(it);
	ck_assert_int_eq(journal_iter_open(j, 1, &it), -ERANGE);
	ck_assert_uint_eq(st.segments, (uint64_t)seg_file(&t, 0, path, 512));
	ck_assert_uint_lt(st.bytes, before.bytes);
	ck_assert_uint_eq(check_range(j, 301, 1000, 0), 0);
	ck_assert_uint_eq(check_range(j, st.oldest_seq, 1000, 0), 0);
	ck_assert_int_eq(journal_trim(j), 0);

	/* the slow one goes: up to the fast one */
	ck_assert_int_eq(journal_cursor_remove(j, "slow"), 0);
	ck_assert_int_gt(journal_trim(j), 0);
	journal_get_stats(j, &st);
	ck_assert_uint_gt(st.oldest_seq, 301);
	ck_assert_uint_le(st.oldest_seq, 701);
	ck_assert_uint_eq(check_range(j, 701, 1000, 0), 0);

	/* all read: only the segment being appended to stays */
	ck_assert_int_eq(journal_cursor_set(j, "fast", 1000), 0);
	ck_assert_int_gt(journal_trim(j), 0);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_uint_eq(st.newest_seq, 1000);
	journal_close(j);

	/* and so it reopens */
	j = open_ok(&t, &cfg);
	journal_get_stats(j, &before);
	ck_assert_uint_eq(before.oldest_seq, st.oldest_seq);
	ck_assert_uint_eq(before.newest_seq, 1000);
	ck_assert_int_eq(journal_iter_open(j, 1, &it), -ERANGE);
	append_range(j, 1001, 1001);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_max_bytes)
{
	struct journal_cfg cfg = { .segment_bytes = 8192,
				   .max_bytes = 32768,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_record r;
	struct journal_stats st;
	struct journal *j;
	char p1[64], p2[64];
	uint64_t i;
	struct tmp t;
	int e = 0;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	for (i = 1; i < 100000; i++) {
		make_record(&r, i, p1, p2);
		e = journal_append(j, &r);
		if (e)
			break;
		journal_get_stats(j, &st);
		ck_assert_uint_le(st.bytes, cfg.max_bytes);
		ck_assert(st.near_full == (st.bytes * 10 >= cfg.max_bytes * 9));
	}
	ck_assert_int_eq(e, -ENOSPC);
	journal_get_stats(j, &st);
	ck_assert(st.near_full);
	ck_assert_uint_eq(st.max_bytes, cfg.max_bytes);
	ck_assert_uint_eq(st.newest_seq, i - 1);
	/* refused, not failed: room made, appends go on in sequence */
	ck_assert_int_eq(journal_append(j, &r), -ENOSPC);
	ck_assert_int_eq(journal_cursor_set(j, "c", i - 1), 0);
	ck_assert_int_gt(journal_trim(j), 0);
	journal_get_stats(j, &st);
	ck_assert(!st.near_full);
	append_range(j, i, i + 10);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* ---- concurrency and crashes ------------------------------------------- */

#define THREADS 8
#define PER_THREAD 2000

struct appender {
	struct journal *j;
	int id;
	uint64_t seqs[PER_THREAD];
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	struct journal_record r;
	char path[64];

	for (int k = 0; k < PER_THREAD; k++) {
		memset(&r, 0, sizeof(r));
		r.op = JOURNAL_OP_WRITE;
		r.ino = (uint64_t)a->id;
		r.gen = (uint64_t)k;
		snprintf(path, sizeof(path), "/t%d/%d", a->id, k);
		r.path = path;
		if (journal_append(a->j, &r) != 0)
			return "append failed";
		a->seqs[k] = r.seq;
	}
	return NULL;
}

START_TEST(test_concurrent_group_commit)
{
	struct journal_cfg cfg = { .segment_bytes = 256 * 1024,
				   .sync = JOURNAL_SYNC_ALWAYS };
	static struct appender a[THREADS];
	pthread_t th[THREADS];
	int next[THREADS] = { 0 };
	struct journal_iter *it;
	struct journal_record r;
	struct journal_stats st;
	struct journal *j;
	uint64_t want = 1;
	struct tmp t;
	void *ret;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	for (int i = 0; i < THREADS; i++) {
		a[i].j = j;
		a[i].id = i;
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, append_thread, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
		for (int k = 1; k < PER_THREAD; k++)
			ck_assert_uint_gt(a[i].seqs[k], a[i].seqs[k - 1]);
	}
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.appended, THREADS * PER_THREAD);
	ck_assert_uint_eq(st.newest_seq, THREADS * PER_THREAD);
	/* each record was covered by one, some shared by several */
	ck_assert_msg(st.syncs < st.appended, "%llu syncs",
		      (unsigned long long)st.syncs);
	ck_assert_uint_gt(st.syncs, 0);

	/* gap-free, and each thread's records in its order */
	ck_assert_int_eq(journal_iter_open(j, 1, &it), 0);
	while (journal_iter_next(it, &r) == 1) {
		ck_assert_uint_eq(r.seq, want++);
		ck_assert_uint_lt(r.ino, THREADS);
		ck_assert_uint_eq(r.gen, (uint64_t)next[r.ino]);
		ck_assert_uint_eq(a[r.ino].seqs[next[r.ino]], r.seq);
		next[r.ino]++;
	}
	ck_assert_uint_eq(want, THREADS * PER_THREAD + 1);
	journal_iter_close(it);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* Append until killed, writing each acknowledged seq to fd. */
static void __attribute__((noreturn)) crash_child(const char *dir, int fd)
{
	struct journal_cfg cfg = { .segment_bytes = 16384,
				   .sync = JOURNAL_SYNC_ALWAYS };
	struct journal_record r;
	struct journal *j;
	char p1[64], p2[64];

	if (journal_open(dir, &cfg, &j, NULL, 0) < 0)
		_exit(2);
	for (uint64_t i = 0;; i++) {
		make_record(&r, i, p1, p2);
		if (journal_append(j, &r) < 0 ||
		    write(fd, &r.seq, sizeof(r.seq)) != sizeof(r.seq))
			_exit(3);
	}
}

/* One data record for a run of writes, until someone reads it. */
START_TEST(test_coalesce)
{
	struct journal_cfg cfg = { .sync = JOURNAL_SYNC_NEVER };
	struct journal_record r = { .op = JOURNAL_OP_WRITE, .dev = 1,
				    .ino = 7, .path = "/f" };
	struct journal_record got;
	struct journal_iter *it;
	struct journal_stats st;
	struct journal *j;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	/* nothing to coalesce into yet */
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_uint_eq(r.seq, 1);
	for (int k = 0; k < 5; k++) {
		ck_assert_int_eq(journal_coalesce(j, &r), 1);
		ck_assert_uint_eq(r.seq, 1);
	}
	ck_assert_int_eq(journal_append_coalesce(j, &r), 0);
	ck_assert_uint_eq(r.seq, 1);
	/* another file, another op, a metadata op: new records */
	r.ino = 8;
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	ck_assert_int_eq(journal_append_coalesce(j, &r), 0);
	ck_assert_uint_eq(r.seq, 2);
	r.op = JOURNAL_OP_TRUNCATE;
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_uint_eq(r.seq, 3);
	r.op = JOURNAL_OP_CHMOD;
	ck_assert_int_eq(journal_append(j, &r), 0);
	r.op = JOURNAL_OP_CHMOD;
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	r.op = JOURNAL_OP_WRITE;
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_uint_eq(r.seq, 5);
	/* once read, the record is not changed behind the reader */
	ck_assert_int_eq(journal_iter_open(j, 1, &it), 0);
	while (journal_iter_next(it, &got) == 1)
		;
	ck_assert_uint_eq(got.seq, 5);
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	ck_assert_int_eq(journal_append_coalesce(j, &r), 0);
	ck_assert_uint_eq(r.seq, 6);
	ck_assert_int_eq(journal_iter_next(it, &got), 1);
	ck_assert_uint_eq(got.seq, 6);
	journal_iter_close(it);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.appended, 6);
	ck_assert_uint_eq(st.coalesced, 6);
	journal_close(j);

	/* nothing coalesces into a record from before a reopen */
	j = open_ok(&t, &cfg);
	ck_assert_int_eq(journal_coalesce(j, &r), 0);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* How far behind a consumer is, in bytes and seconds. */
START_TEST(test_lag)
{
	struct journal_cfg cfg = { .segment_bytes = 64 * 1024,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_record r = { .op = JOURNAL_OP_WRITE, .dev = 1,
				    .ino = 9, .path = "/g" };
	struct journal_record got;
	struct journal_iter *it;
	struct journal_stats st;
	struct journal_lag lag;
	struct journal *j;
	unsigned char buf[8192];
	uint64_t after = 0;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 5000);
	journal_get_stats(j, &st);
	ck_assert_uint_ge(st.segments, 3);
	/* nothing done: the whole journal; everything done: nothing */
	journal_lag(j, 0, &lag);
	ck_assert_uint_eq(lag.bytes, st.bytes);
	ck_assert(lag.seconds >= 0 && lag.seconds < 60);
	journal_lag(j, 5000, &lag);
	ck_assert_uint_eq(lag.bytes, 0);
	ck_assert(lag.seconds == 0);
	/* half way: the records after it, across segments */
	ck_assert_int_eq(journal_iter_open(j, 2501, &it), 0);
	while (journal_iter_next(it, &got) == 1) {
		int n = journal_record_encode(&got, buf, sizeof(buf));

		ck_assert_int_gt(n, 0);
		after += (uint64_t)n;
	}
	journal_iter_close(it);
	journal_lag(j, 2500, &lag);
	ck_assert_uint_eq(lag.bytes, after);
	/* looking does not hand the newest record to a reader */
	ck_assert_int_eq(journal_append(j, &r), 0);
	journal_lag(j, r.seq - 1, &lag);
	ck_assert_uint_gt(lag.bytes, 0);
	ck_assert_int_eq(journal_coalesce(j, &r), 1);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* Dropping the oldest segment whatever the cursors: a gap for them. */
START_TEST(test_drop_oldest)
{
	struct journal_cfg cfg = { .segment_bytes = 4096,
				   .sync = JOURNAL_SYNC_NEVER };
	struct journal_cursor_info ci[4];
	struct journal_stats st;
	struct journal_iter *it;
	struct journal *j;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	ck_assert(!journal_has_cursors(j));
	ck_assert_int_eq(journal_drop_oldest(j), 0); /* only the active one */
	append_range(j, 1, 300);
	ck_assert_int_eq(journal_cursor_set(j, "b", 10), 0);
	ck_assert_int_eq(journal_cursor_set(j, "a", 20), 0);
	ck_assert(journal_has_cursors(j));
	ck_assert_uint_eq(journal_cursor_list(j, ci, 4), 2);
	ck_assert_str_eq(ci[0].name, "a");
	ck_assert_uint_eq(ci[0].acked, 20);
	ck_assert_str_eq(ci[1].name, "b");
	ck_assert_uint_eq(ci[1].acked, 10);
	ck_assert_uint_eq(journal_cursor_list(j, ci, 1), 2);
	ck_assert_int_eq(journal_trim(j), 0); /* b holds the first */
	ck_assert_int_eq(journal_drop_oldest(j), 1);
	journal_get_stats(j, &st);
	ck_assert_uint_gt(st.oldest_seq, 11);
	ck_assert_uint_eq(st.dropped, 1);
	ck_assert_int_eq(journal_iter_open(j, 11, &it), -ERANGE);
	ck_assert_uint_eq(check_range(j, st.oldest_seq, 300, 0), 0);
	while (journal_drop_oldest(j) == 1)
		;
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.segments, 1);
	append_range(j, 301, 310);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

/* interval: appends do not wait for fdatasync; journal_sync() does it. */
START_TEST(test_sync_interval)
{
	struct journal_cfg cfg = { .sync = JOURNAL_SYNC_INTERVAL };
	struct journal_stats st;
	struct journal *j;
	struct tmp t;

	tmp_make(&t);
	j = open_ok(&t, &cfg);
	append_range(j, 1, 50);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.syncs, 0);
	ck_assert_int_eq(journal_sync(j), 0);
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.syncs, 1);
	ck_assert_int_eq(journal_sync(j), 0); /* nothing new: no sync */
	journal_get_stats(j, &st);
	ck_assert_uint_eq(st.syncs, 1);
	journal_close(j);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_crash_acknowledged_survive)
{
	uint64_t acked_max = 0;
	struct tmp t;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	tmp_make(&t);
	for (int round = 0; round < 5; round++) {
		struct journal_stats st;
		struct journal_iter *it;
		struct journal_record r;
		struct journal *j;
		int fds[2], status, target = 1 + rand() % 150, got = 0;
		uint64_t seq, want;
		pid_t pid;

		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(t.dir, fds[1]);
		}
		close(fds[1]);
		while (got < target &&
		       read(fds[0], &seq, sizeof(seq)) == sizeof(seq)) {
			ck_assert_uint_gt(seq, acked_max);
			acked_max = seq;
			got++;
		}
		ck_assert_int_eq(got, target);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		/* what was acknowledged before the kill counts too */
		while (read(fds[0], &seq, sizeof(seq)) == sizeof(seq))
			acked_max = seq;
		close(fds[0]);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status));

		j = open_ok(&t, NULL);
		journal_get_stats(j, &st);
		ck_assert_uint_le(st.torn_truncated, 1);
		ck_assert_uint_eq(st.corrupt_skipped, 0);
		ck_assert_uint_ge(st.newest_seq, acked_max);
		ck_assert_int_eq(journal_iter_open(j, 1, &it), 0);
		for (want = 1; journal_iter_next(it, &r) == 1; want++)
			ck_assert_uint_eq(r.seq, want);
		ck_assert_uint_eq(want - 1, st.newest_seq);
		journal_iter_close(it);
		acked_max = st.newest_seq;
		journal_close(j);
	}
	tmp_remove(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_record_roundtrip);
	tcase_add_test(tc, test_record_prefix_and_damage);
	tcase_add_test(tc, test_many_segments);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_garbage_tail);
	tcase_add_test(tc, test_mid_corruption);
	tcase_add_test(tc, test_cursors);
	tcase_add_test(tc, test_trim);
	tcase_add_test(tc, test_max_bytes);
	tcase_add_test(tc, test_concurrent_group_commit);
	tcase_add_test(tc, test_coalesce);
	tcase_add_test(tc, test_lag);
	tcase_add_test(tc, test_drop_oldest);
	tcase_add_test(tc, test_sync_interval);
	tcase_add_test(tc, test_crash_acknowledged_survive);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
