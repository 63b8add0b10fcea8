// SPDX-License-Identifier: MIT
/*
 * The in-process tier (budget, LRU, ranges) and the cache layer above it
 * (versions decide what is served; fills from a real file).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "listing.h"
#include "tier.h"

static const struct tier_version V1 = { .dev = 1, .ino = 7, .size = 5 };

START_TEST(test_mem_get_put_range)
{
	struct tier *t = tier_mem_new(1 << 20);
	struct tier_version v;
	struct tier_stats st;
	char buf[16];

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 0),
			 -ENOENT);
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "k", &V1, "hello", 5), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 0), 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	ck_assert_uint_eq(v.ino, 7);
	/* a range, and past the end */
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 2, 3), 2);
	ck_assert(memcmp(buf, "lo", 2) == 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 5), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 99), 0);
	/* replace, then forget */
	ck_assert_int_eq(t->ops->put(t, TIER_DATA, "k", &V1, "bye", 3), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 0), 3);
	t->ops->get_stats(t, &st);
	ck_assert_uint_eq(st.entries, 1);
	t->ops->forget(t, "k");
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "k", &v, buf, 16, 0),
			 -ENOENT);
	t->ops->get_stats(t, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.hits, 5);
	ck_assert_uint_eq(st.misses, 2);
	t->ops->free(t);
}
END_TEST

START_TEST(test_mem_budget_lru)
{
	enum { VAL = 1000, BUDGET = 10 * 1024 };
	struct tier *t = tier_mem_new(BUDGET);
	char val[VAL], key[16], buf[4];
	struct tier_version v;
	struct tier_stats st;

	memset(val, 'x', sizeof(val));
	for (int k = 0; k < 100; k++) {
		snprintf(key, sizeof(key), "f%d", k);
		ck_assert_int_eq(t->ops->put(t, TIER_DATA, key, &V1, val, VAL),
				 0);
		/* f0 stays the most recently used */
		ck_assert_int_ge(t->ops->get(t, TIER_DATA, "f0", &v, buf, 4, 0),
				 0);
		t->ops->get_stats(t, &st);
		ck_assert_uint_le(st.bytes, BUDGET);
	}
	t->ops->get_stats(t, &st);
	ck_assert_uint_gt(st.evictions, 80);
	ck_assert_uint_ge(st.entries, 5);
	ck_assert_int_ge(t->ops->get(t, TIER_DATA, "f0", &v, buf, 4, 0), 0);
	ck_assert_int_eq(t->ops->get(t, TIER_DATA, "f1", &v, buf, 4, 0),
			 -ENOENT);
	ck_assert_int_ge(t->ops->get(t, TIER_DATA, "f99", &v, buf, 4, 0), 0);
	/* larger than the whole budget: refused, nothing evicted */
	{
		char *big = calloc(1, BUDGET);

		ck_assert_int_eq(t->ops->put(t, TIER_DATA, "big", &V1, big,
					     BUDGET),
				 -EFBIG);
		free(big);
	}
	ck_assert_int_ge(t->ops->get(t, TIER_DATA, "f99", &v, buf, 4, 0), 0);
	t->ops->clear(t);
	t->ops->get_stats(t, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	t->ops->free(t);
}
END_TEST

/* A file with content, and its version as the cache layer takes it. */
static int make_file(const char *content, struct tier_version *v,
		     uint64_t gen)
{
	char path[] = "/tmp/cachefs-test-cache.XXXXXX";
	struct stat st;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	ck_assert_int_eq(fstat(fd, &st), 0);
	v->dev = st.st_dev;
	v->ino = st.st_ino;
	v->size = (uint64_t)st.st_size;
	v->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	v->ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	v->gen = gen;
	return fd;
}

START_TEST(test_cache_versions)
{
	struct cache_tier_stats ts;
	struct cache_stats cs;
	struct tier_version v, newer;
	struct cache *c;
	char buf[64];
	int fd;

	ck_assert_int_eq(cache_new(&c), 0);
	ck_assert_int_eq(cache_add_tier(c, tier_mem_new(1 << 20), 1024), 0);
	ck_assert(!cache_needs_path(c));
	fd = make_file("first content", &v, 3);
	ck_assert(cache_wants(c, &v));

	/* a miss fills, the next read hits, in range */
	ck_assert_int_eq(cache_read(c, &v, NULL, fd, buf, 5, 0), 5);
	ck_assert(memcmp(buf, "first", 5) == 0);
	ck_assert_int_eq(cache_read(c, &v, NULL, fd, buf, 64, 6), 7);
	ck_assert(memcmp(buf, "content", 7) == 0);
	cache_get_tier_stats(c, 0, &ts);
	ck_assert_uint_eq(ts.misses, 1);
	ck_assert_uint_eq(ts.hits, 1);

	/* the file changes; a hit now would be stale */
	ck_assert_int_eq(pwrite(fd, "FIRST", 5, 0), 5);
	newer = v;
	newer.gen = 4; /* as after a write through the mount */
	ck_assert_int_eq(cache_read(c, &newer, NULL, fd, buf, 5, 0), 5);
	ck_assert(memcmp(buf, "FIRST", 5) == 0);
	cache_get_tier_stats(c, 0, &ts);
	ck_assert_uint_eq(ts.stale, 1);

	/* offline: any version of the same inode will do */
	ck_assert_int_eq(cache_read_offline(c, &v, NULL, buf, 5, 0), 5);
	ck_assert(memcmp(buf, "FIRST", 5) == 0);
	newer.ino++;
	ck_assert_int_eq(cache_read_offline(c, &newer, NULL, buf, 5, 0),
			 -ENOENT);

	/* too big to cache: counted, refused */
	v.size = 4096;
	ck_assert(!cache_wants(c, &v));
	cache_get_stats(c, &cs);
	ck_assert_uint_eq(cs.skipped, 1);
	ck_assert_uint_eq(cs.fills, 2);
	ck_assert_uint_eq(cs.offline_hits, 1);

	/* a failing backend: the error, nothing stored */
	ck_assert_int_eq(cache_fill(c, &newer, NULL, -1, buf, 5, 0), -EBADF);
	newer.gen++; /* held by no tier: without a descriptor, a miss */
	ck_assert_int_eq(cache_read(c, &newer, NULL, -1, buf, 5, 0), -ENOENT);
	cache_clear(c);
	cache_get_tier_stats(c, 0, &ts);
	ck_assert_uint_eq(ts.tier.entries, 0);
	close(fd);
	cache_free(c);
}
END_TEST

/* A tier keyed by path, as a shared one (memcached) is: a memory tier. */
static struct tier_ops shared_ops;

static void shared_clear(struct tier *t)
{
	(void)t; /* every writer keeps a shared tier current */
}

static struct tier *shared_tier(void)
{
	struct tier *t = tier_mem_new(1 << 20);

	shared_ops = *t->ops;
	shared_ops.name = "shared";
	shared_ops.by_path = true;
	shared_ops.clear = shared_clear;
	t->ops = &shared_ops;
	return t;
}

START_TEST(test_cache_shared_tier)
{
	struct cache_tier_stats l1, l2;
	struct tier_version v, other_host;
	struct cache *c;
	char buf[64];
	int fd;

	ck_assert_int_eq(cache_new(&c), 0);
	ck_assert_int_eq(cache_add_tier(c, tier_mem_new(1 << 20), 4), 0);
	ck_assert_int_eq(cache_add_tier(c, shared_tier(), 1024), 0);
	ck_assert(cache_needs_path(c));
	fd = make_file("shared bytes", &v, 1);
	/* over the first tier's limit, within the second's */
	ck_assert(cache_wants(c, &v));
	ck_assert_int_eq(cache_read(c, &v, "/a", fd, buf, 6, 0), 6);
	cache_get_tier_stats(c, 1, &l2);
	ck_assert_uint_eq(l2.tier.entries, 1);
	cache_get_tier_stats(c, 0, &l1);
	ck_assert_uint_eq(l1.tier.entries, 0);

	/* another host's view: other device, other generation; same file */
	other_host = v;
	other_host.dev++;
	other_host.gen = 99;
	ck_assert_int_eq(cache_read(c, &other_host, "/a", -1, buf, 64, 7), 5);
	ck_assert(memcmp(buf, "bytes", 5) == 0);
	cache_get_tier_stats(c, 1, &l2);
	ck_assert_uint_eq(l2.hits, 1);

	/* without a path (not for everyone's eyes) it stays out */
	ck_assert_int_eq(cache_forget_path(c, "/a"), 0);
	ck_assert_int_eq(cache_read(c, &v, NULL, fd, buf, 6, 0), 6);
	cache_get_tier_stats(c, 1, &l2);
	ck_assert_uint_eq(l2.tier.entries, 0);

	/* a store after a write fills it; the old version is a miss */
	ck_assert_int_eq(pwrite(fd, "SHARED bytes!", 13, 0), 13);
	ck_assert_int_eq(cache_store(c, "/a", fd, 2, false), 0);
	cache_get_tier_stats(c, 1, &l2);
	ck_assert_uint_eq(l2.tier.entries, 1);
	ck_assert_int_eq(cache_read(c, &v, "/a", fd, buf, 64, 0), 13);
	ck_assert(memcmp(buf, "SHARED bytes!", 13) == 0);
	cache_get_tier_stats(c, 1, &l2);
	ck_assert_uint_ge(l2.stale, 1);
	cache_free(c);
	close(fd);
}
END_TEST

START_TEST(test_cache_promotes)
{
	struct cache_tier_stats l1;
	struct tier_version v;
	struct cache *c;
	char buf[64];
	int fd;

	ck_assert_int_eq(cache_new(&c), 0);
	ck_assert_int_eq(cache_add_tier(c, tier_mem_new(1 << 20), 1024), 0);
	ck_assert_int_eq(cache_add_tier(c, shared_tier(), 1024), 0);
	fd = make_file("promote me", &v, 1);
	ck_assert_int_eq(cache_store(c, "/p", fd, 1, false), 0);
	cache_clear(c); /* the memory tier only */
	v.dev++; /* this host's view of the file: the second tier hits */
	ck_assert_int_eq(cache_read(c, &v, "/p", -1, buf, 7, 0), 7);
	ck_assert(memcmp(buf, "promote", 7) == 0);
	cache_get_tier_stats(c, 0, &l1);
	ck_assert_uint_eq(l1.tier.entries, 1); /* copied into the first */
	ck_assert_int_eq(cache_read(c, &v, "/p", -1, buf, 64, 8), 2);
	cache_get_tier_stats(c, 0, &l1);
	ck_assert_uint_eq(l1.hits, 1);
	cache_free(c);
	close(fd);
}
END_TEST

START_TEST(test_listing_format)
{
	struct listing_builder b;
	struct listing_entry e;
	size_t pos = 0;
	char *copy;

	listing_init(&b, 1 << 16);
	listing_add(&b, ".", 2, DT_DIR, 10);
	listing_add(&b, "..", 1, DT_DIR, 20);
	listing_add(&b, "a b%c", 77, DT_REG, 30);
	listing_add(&b, "ünï", 78, DT_LNK, 40);
	ck_assert(!b.failed);
	/* a copy, as a tier gives it back */
	copy = malloc(b.len);
	memcpy(copy, b.buf, b.len);
	ck_assert(listing_next(copy, b.len, &pos, &e));
	ck_assert_str_eq(e.name, ".");
	ck_assert(listing_next(copy, b.len, &pos, &e));
	ck_assert(listing_next(copy, b.len, &pos, &e));
	ck_assert_str_eq(e.name, "a b%c");
	ck_assert_uint_eq(e.ino, 77);
	ck_assert_int_eq(e.type, DT_REG);
	ck_assert_int_eq(e.off, 30);
	ck_assert(listing_next(copy, b.len, &pos, &e));
	ck_assert_str_eq(e.name, "ünï");
	ck_assert(!listing_next(copy, b.len, &pos, &e));

	/* continuing after an offset the backend gave */
	ck_assert(listing_seek(copy, b.len, 20, &pos));
	ck_assert(listing_next(copy, b.len, &pos, &e));
	ck_assert_str_eq(e.name, "a b%c");
	ck_assert(listing_seek(copy, b.len, 0, &pos));
	ck_assert_uint_eq(pos, 0);
	ck_assert(!listing_seek(copy, b.len, 25, &pos));

	/* a torn copy ends where its last whole entry does */
	pos = 0;
	ck_assert(listing_next(copy, b.len - 2, &pos, &e));
	ck_assert(listing_next(copy, b.len - 2, &pos, &e));
	ck_assert(listing_next(copy, b.len - 2, &pos, &e));
	ck_assert(!listing_next(copy, b.len - 2, &pos, &e));
	free(copy);
	listing_free(&b);

	/* kept in the memory tier under the directory's version */
	{
		struct tier_version dir = { .dev = 1, .ino = 2, .size = 4096,
					    .mtime_ns = 5, .ctime_ns = 6,
					    .gen = 7 };
		struct cache *c;
		char *got;
		size_t len;

		listing_init(&b, 1 << 16);
		listing_add(&b, "kept", 9, DT_REG, 99);
		ck_assert_int_eq(cache_new(&c), 0);
		ck_assert_int_eq(cache_add_tier(c, tier_mem_new(1 << 20),
						1 << 16), 0);
		cache_put_listing(c, &dir, b.buf, b.len);
		ck_assert_int_eq(cache_get_listing(c, &dir, &got, &len), 0);
		ck_assert_uint_eq(len, b.len);
		ck_assert(memcmp(got, b.buf, len) == 0);
		free(got);
		dir.gen++; /* an entry made through the mount */
		ck_assert_int_eq(cache_get_listing(c, &dir, &got, &len),
				 -ENOENT);
		ck_assert_ptr_null(got);
		cache_free(c);
		listing_free(&b);
	}

	/* over its bound: nothing to keep */
	listing_init(&b, 40);
	listing_add(&b, "first", 1, DT_REG, 1);
	listing_add(&b, "second-and-too-long", 2, DT_REG, 2);
	ck_assert(b.failed);
	listing_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_mem_get_put_range);
	tcase_add_test(tc, test_mem_budget_lru);
	tcase_add_test(tc, test_cache_versions);
	tcase_add_test(tc, test_cache_shared_tier);
	tcase_add_test(tc, test_cache_promotes);
	tcase_add_test(tc, test_listing_format);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
