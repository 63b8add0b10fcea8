// SPDX-License-Identifier: MIT
/*
 * The inode table over a real scratch directory: identity of lookups,
 * forget, the bounded descriptor cache and refusal of "." and "..".
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inode.h"

static char dir[] = "/tmp/cachefs-unit.XXXXXX";
static struct inode_table *t;

static void make_tree(int nfiles)
{
	char path[256];

	for (int k = 0; k < nfiles; k++) {
		snprintf(path, sizeof(path), "%s/f%04d", dir, k);
		int fd = open(path, O_CREAT | O_WRONLY, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, path, strlen(path)),
				 (ssize_t)strlen(path));
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/link", dir);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
}

static void setup_table(unsigned fd_cache, bool handles)
{
	int root;

	strcpy(dir, "/tmp/cachefs-unit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_tree(64);
	root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root, 0);
	ck_assert_int_eq(inode_table_new(root, fd_cache, handles, &t), 0);
}

static void setup(void)
{
	setup_table(8, true);
}

static void setup_pinned(void)
{
	setup_table(8, false);
}

static void teardown(void)
{
	char cmd[300];

	inode_table_free(t);
	t = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_lookup_identity)
{
	struct inode *a, *b;
	struct stat st, st2, ref;
	char path[256];

	ck_assert_int_eq(
		inode_lookup(t, inode_root(t), "f0001", NULL, &st, &a), 0);
	ck_assert_int_eq(
		inode_lookup(t, inode_root(t), "f0001", NULL, &st2, &b), 0);
	ck_assert_ptr_eq(a, b);
	snprintf(path, sizeof(path), "%s/f0001", dir);
	ck_assert_int_eq(lstat(path, &ref), 0);
	ck_assert_uint_eq(st.st_ino, ref.st_ino);
	ck_assert(S_ISREG(inode_type(a)));

	struct inode_table_stats s;
	inode_table_get_stats(t, &s);
	ck_assert_uint_eq(s.inodes, 2); /* root and f0001 */
	inode_forget(t, a, 2);
	inode_table_get_stats(t, &s);
	ck_assert_uint_eq(s.inodes, 1);
}
END_TEST

static int64_t ns_of(struct timespec ts)
{
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * A version said to be current spares asking the backend only when the
 * attributes at hand show it; the attributes are the backend's always.
 */
START_TEST(test_lookup_hint)
{
	struct tier_version v;
	struct stat ref, st;
	struct inode *i;
	char path[256];

	snprintf(path, sizeof(path), "%s/f0003", dir);
	ck_assert_int_eq(lstat(path, &ref), 0);
	v = (struct tier_version){ .ino = ref.st_ino,
				   .size = (uint64_t)ref.st_size,
				   .mtime_ns = ns_of(ref.st_mtim),
				   .ctime_ns = ns_of(ref.st_ctim) };
	ck_assert_int_eq(inode_lookup(t, inode_root(t), "f0003", &v, &st, &i),
			 1);
	ck_assert_uint_eq(st.st_dev, ref.st_dev);
	ck_assert_uint_eq(st.st_ino, ref.st_ino);
	ck_assert_uint_eq(st.st_mode, ref.st_mode);
	ck_assert_uint_eq(st.st_nlink, ref.st_nlink);
	ck_assert_uint_eq(st.st_uid, ref.st_uid);
	ck_assert_uint_eq(st.st_gid, ref.st_gid);
	ck_assert_int_eq(st.st_size, ref.st_size);
	ck_assert_int_eq(st.st_blocks, ref.st_blocks);
	ck_assert_int_eq(ns_of(st.st_mtim), ns_of(ref.st_mtim));
	ck_assert_int_eq(ns_of(st.st_ctim), ns_of(ref.st_ctim));
	/* any field off: the backend is asked, and its answer is taken */
	for (int k = 0; k < 4; k++) {
		struct tier_version w = v;

		w.ino += k == 0;
		w.size += k == 1;
		w.mtime_ns += k == 2;
		w.ctime_ns += k == 3;
		ck_assert_int_eq(
			inode_lookup(t, inode_root(t), "f0003", &w, &st, &i),
			0);
		ck_assert_uint_eq(st.st_ino, ref.st_ino);
		ck_assert_int_eq(st.st_size, ref.st_size);
	}
	inode_forget(t, i, 5);
	ck_assert_int_eq(inode_lookup(t, inode_root(t), "nope", &v, &st, &i),
			 -ENOENT);
}
END_TEST

START_TEST(test_lookup_errors)
{
	struct inode *i;
	struct stat st;

	ck_assert_int_eq(inode_lookup(t, inode_root(t), "nope", NULL, &st, &i),
			 -ENOENT);
	ck_assert_int_eq(inode_lookup(t, inode_root(t), "..", NULL, &st, &i),
			 -EINVAL);
	ck_assert_int_eq(inode_lookup(t, inode_root(t), ".", NULL, &st, &i),
			 -EINVAL);
}
END_TEST

START_TEST(test_symlink_not_followed)
{
	struct inode *i;
	struct stat st;
	char target[64];
	int fd;
	ssize_t n;

	ck_assert_int_eq(inode_lookup(t, inode_root(t), "link", NULL, &st, &i), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert(S_ISLNK(inode_type(i)));
	fd = inode_fd_get(t, i);
	ck_assert_int_ge(fd, 0);
	n = readlinkat(fd, "", target, sizeof(target) - 1);
	ck_assert_int_eq(n, strlen("/etc/passwd"));
	inode_fd_put(t, i);
}
END_TEST

START_TEST(test_fd_cache_bounded)
{
	struct inode *ino[64];
	struct inode_table_stats s;
	struct stat st;
	char name[16], buf[128];

	for (int k = 0; k < 64; k++) {
		snprintf(name, sizeof(name), "f%04d", k);
		ck_assert_int_eq(inode_lookup(t, inode_root(t), name, NULL, &st,
					      &ino[k]),
				 0);
		inode_table_get_stats(t, &s);
		ck_assert_uint_le(s.fds_cached, 8);
	}
	/* Every inode is still usable: evicted ones reopen by handle. */
	for (int k = 0; k < 64; k++) {
		int fd = inode_open(t, ino[k], O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		ck_assert_int_gt(n, 0);
		buf[n] = '\0';
		snprintf(name, sizeof(name), "/f%04d", k);
		ck_assert_ptr_nonnull(strstr(buf, name));
		close(fd);

		fd = inode_fd_get(t, ino[k]);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
		inode_fd_put(t, ino[k]);
	}
	inode_table_get_stats(t, &s);
	ck_assert_uint_le(s.fds_cached, 8);
	ck_assert_uint_gt(s.fd_evictions, 0);
	ck_assert_uint_gt(s.fd_misses, 0);
	for (int k = 0; k < 64; k++)
		inode_forget(t, ino[k], 1);
	inode_table_get_stats(t, &s);
	ck_assert_uint_eq(s.inodes, 1);
	ck_assert_uint_eq(s.fds_cached, 0);
}
END_TEST

START_TEST(test_borrowed_fd_survives_eviction)
{
	struct inode *held, *other;
	struct stat st;
	char name[16];
	int fd;

	ck_assert_int_eq(inode_lookup(t, inode_root(t), "f0000", NULL, &st, &held),
			 0);
	fd = inode_fd_get(t, held);
	ck_assert_int_ge(fd, 0);
	for (int k = 1; k < 40; k++) {
		snprintf(name, sizeof(name), "f%04d", k);
		ck_assert_int_eq(inode_lookup(t, inode_root(t), name, NULL, &st,
					      &other),
				 0);
	}
	/* Still the same open descriptor of f0000. */
	ck_assert_int_eq(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
	struct stat ref;
	char path[256];
	snprintf(path, sizeof(path), "%s/f0000", dir);
	ck_assert_int_eq(stat(path, &ref), 0);
	ck_assert_uint_eq(st.st_ino, ref.st_ino);
	inode_fd_put(t, held);
}
END_TEST

START_TEST(test_replaced_name_is_new_inode)
{
	struct inode *a, *b;
	struct stat st;
	char path[256];

	ck_assert_int_eq(inode_lookup(t, inode_root(t), "f0002", NULL, &st, &a), 0);
	snprintf(path, sizeof(path), "%s/f0002", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(inode_lookup(t, inode_root(t), "f0002", NULL, &st, &b), 0);
	ck_assert(S_ISDIR(inode_type(b)));
	ck_assert(S_ISREG(inode_type(a)));
	if (a != b) {
		inode_forget(t, a, 1);
		inode_forget(t, b, 1);
	}
}
END_TEST

START_TEST(test_pinned_mode)
{
	struct inode *i;
	struct inode_table_stats s;
	struct stat st;
	char name[16];

	ck_assert(!inode_table_uses_handles(t));
	for (int k = 0; k < 20; k++) {
		snprintf(name, sizeof(name), "f%04d", k);
		ck_assert_int_eq(inode_lookup(t, inode_root(t), name, NULL, &st, &i),
				 0);
		int fd = inode_open(t, i, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	inode_table_get_stats(t, &s);
	ck_assert_uint_eq(s.fds_pinned, 21); /* every inode and the root */
	ck_assert_uint_eq(s.fds_cached, 0);
}
END_TEST

struct changes {
	int inodes;
	int entries;
	char last[64];
};

static void count_inode(void *arg, struct inode *i)
{
	(void)i;
	((struct changes *)arg)->inodes++;
}

static void count_entry(void *arg, struct inode *d, const char *name)
{
	struct changes *c = arg;

	(void)d;
	c->entries++;
	snprintf(c->last, sizeof(c->last), "%s", name);
}

static const struct inode_change_ops counting = {
	.inode_changed = count_inode,
	.entry_changed = count_entry,
	.name_trimmed = count_entry,
};

/* Only what differs from what the kernel was told is reported. */
START_TEST(test_revalidate_reports_changes)
{
	struct inode *root = inode_root(t), *f;
	struct changes c = { 0 };
	const bool stop = false;
	char path[256];
	struct stat st;

	ck_assert_int_eq(inode_lookup(t, root, "f0001", NULL, &st, &f), 0);
	inode_note_attr(t, f, &st);
	inode_note_name(t, root, "f0001", st.st_ino);
	inode_note_name(t, root, "missing", 0);
	/* first pass: the root's names are checked once, nothing changed */
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_int_eq(c.inodes, 0);
	ck_assert_int_eq(c.entries, 0);

	snprintf(path, sizeof(path), "%s/f0001", dir);
	ck_assert_int_eq(truncate(path, 3), 0);
	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_ge(creat(path, 0644), 0);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_int_eq(c.inodes, 1); /* f0001; the root's were never noted */
	ck_assert_int_eq(c.entries, 1);
	ck_assert_str_eq(c.last, "missing");
	ck_assert_uint_eq(inode_table_names(t), 1); /* the changed one dropped */

	/* reported once: the snapshot follows the backend */
	memset(&c, 0, sizeof(c));
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_int_eq(c.inodes, 0);

	/* a name replaced by another file */
	snprintf(path, sizeof(path), "%s/f0001", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_ge(creat(path, 0600), 0);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_int_eq(c.entries, 1);
	ck_assert_str_eq(c.last, "f0001");
	inode_forget(t, f, 1);
}
END_TEST

static uint64_t by_name(void)
{
	struct inode_table_stats st;

	inode_table_get_stats(t, &st);
	return st.checked_by_name;
}

/*
 * A file named in a directory is checked through that name when it is
 * as the kernel was told; a changed one still by its own check, which
 * reports it.
 */
START_TEST(test_revalidate_through_names)
{
	struct inode *root = inode_root(t), *f, *g;
	struct changes c = { 0 };
	const bool stop = false;
	char path[256];
	struct stat st;

	ck_assert_int_eq(inode_lookup(t, root, "f0001", NULL, &st, &f), 0);
	ck_assert_int_eq(inode_note_entry(t, root, "f0001", f, &st), 0);
	ck_assert_int_eq(inode_lookup(t, root, "f0002", NULL, &st, &g), 0);
	inode_note_attr(t, g, &st); /* known, but by no name */
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_uint_eq(by_name(), 1); /* f0001, not f0002 */
	ck_assert_int_eq(c.inodes, 0);

	snprintf(path, sizeof(path), "%s/f0001", dir);
	ck_assert_int_eq(truncate(path, 1), 0);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_int_eq(c.inodes, 1); /* reported by its own check */
	ck_assert_uint_eq(by_name(), 1);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_uint_eq(by_name(), 2); /* as told again */
	ck_assert_int_eq(c.inodes, 1);

	/* another file at the name: left to the old one's own check */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_ge(creat(path, 0644), 0);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_uint_eq(by_name(), 2);
	ck_assert_int_ge(c.inodes, 2);
	inode_forget(t, f, 1);
	inode_forget(t, g, 1);
}
END_TEST

/* Over max_names, names are dropped, and the kernel is told of each. */
START_TEST(test_names_bounded)
{
	struct inode *root = inode_root(t);
	struct changes c = { 0 };
	const bool stop = false;
	uint64_t before = inode_table_bytes(t);
	char name[32];

	for (int k = 0; k < 100; k++) {
		snprintf(name, sizeof(name), "missing%d", k);
		ck_assert_int_eq(inode_note_name(t, root, name, 0), 0);
	}
	ck_assert_uint_eq(inode_table_names(t), 100);
	ck_assert_uint_gt(inode_table_bytes(t), before + 100 * 8);
	inode_table_set_names_max(t, 50);
	inode_revalidate(t, &counting, &c, &stop);
	ck_assert_uint_le(inode_table_names(t), 45);
	ck_assert_int_eq(c.entries, 100); /* the root's, all of them */
	ck_assert_uint_eq(inode_table_bytes(t), before);
}
END_TEST

/*
 * A directory is claimed for the look-ahead once while the kernel holds
 * it, again once the kernel forgot it or a claim was dropped, and never
 * when it is not a directory or not held.  The claim pins it.  Once a
 * trim had to forget names, nothing is claimed.
 */
START_TEST(test_lookahead_claim)
{
	struct inode *root = inode_root(t), *sub, *file;
	struct changes c = { 0 };
	struct stat st;
	char name[32];

	ck_assert_int_eq(inode_lookup(t, root, "sub", NULL, &st, &sub), 0);
	ck_assert_int_eq(inode_lookup(t, root, "f0002", NULL, &st, &file), 0);
	ck_assert_int_eq(inode_lookahead_claim(t, file), 0);
	inode_forget(t, file, 1);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 1);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 0);
	/* done: not again while the kernel holds it */
	inode_lookahead_release(t, sub, false);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 0);
	/* the kernel forgets it, looks it up again: claimable */
	inode_forget(t, sub, 1);
	ck_assert_int_eq(inode_lookup(t, root, "sub", NULL, &st, &sub), 0);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 1);
	/* dropped before it was read: claimable at once */
	inode_lookahead_release(t, sub, true);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 1);
	/* forgotten while claimed: the pin keeps it (ASan would tell) */
	inode_forget(t, sub, 1);
	ck_assert_int_eq(inode_lookahead_claim(t, sub), 0);
	ck_assert_int_eq(inode_type(sub), S_IFDIR);
	inode_lookahead_release(t, sub, false);

	/* a trim that forgets names stops the look-ahead for a while */
	for (int k = 0; k < 100; k++) {
		snprintf(name, sizeof(name), "missing%d", k);
		ck_assert_int_eq(inode_note_name(t, root, name, 0), 0);
	}
	inode_table_trim(t, &counting, &c); /* within the bounds: nothing */
	ck_assert_int_eq(c.entries, 0);
	inode_table_set_names_max(t, 50);
	inode_table_trim(t, &counting, &c);
	ck_assert_int_gt(c.entries, 0);
	ck_assert_int_eq(inode_lookahead_claim(t, root), -ENOSPC);
}
END_TEST

static void count_over(void *arg)
{
	(*(int *)arg)++;
}

/*
 * Growing past a bound asks for a trim once; a trim answers it, and the
 * next growth past the bound asks again.
 */
START_TEST(test_over_asks_for_trim)
{
	struct inode *root = inode_root(t), *f;
	struct changes c = { 0 };
	struct stat st;
	char name[32];
	int asked = 0;

	inode_table_on_over(t, count_over, &asked);
	inode_table_set_names_max(t, 10);
	for (int k = 0; k < 10; k++) {
		snprintf(name, sizeof(name), "missing%d", k);
		ck_assert_int_eq(inode_note_name(t, root, name, 0), 0);
	}
	ck_assert_int_eq(asked, 0);
	for (int k = 10; k < 20; k++) {
		snprintf(name, sizeof(name), "missing%d", k);
		ck_assert_int_eq(inode_note_name(t, root, name, 0), 0);
		ck_assert_int_eq(asked, 1); /* once, from the 11th on */
	}
	inode_table_trim(t, &counting, &c);
	ck_assert_uint_le(inode_table_names(t), 9);
	ck_assert_int_eq(c.entries, 20);
	for (int k = 20; k < 31; k++) {
		snprintf(name, sizeof(name), "missing%d", k);
		ck_assert_int_eq(inode_note_name(t, root, name, 0), 0);
	}
	ck_assert_int_eq(asked, 2);

	/* a lookup past the byte bound asks too */
	inode_table_set_names_max(t, 0);
	inode_table_trim(t, &counting, &c);
	inode_table_set_bytes_max(t, inode_table_bytes(t) + 1);
	ck_assert_int_eq(inode_lookup(t, root, "f0002", NULL, &st, &f), 0);
	ck_assert_int_eq(asked, 3);
	inode_forget(t, f, 1);

	/* and nothing is asked once the callback is gone */
	inode_table_on_over(t, NULL, NULL);
	inode_table_trim(t, &counting, &c);
	ck_assert_int_eq(inode_lookup(t, root, "f0003", NULL, &st, &f), 0);
	ck_assert_int_eq(asked, 3);
	inode_forget(t, f, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inode");
	TCase *tc = tcase_create("handles");
	TCase *tp = tcase_create("pinned");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lookup_identity);
	tcase_add_test(tc, test_lookup_errors);
	tcase_add_test(tc, test_lookup_hint);
	tcase_add_test(tc, test_symlink_not_followed);
	tcase_add_test(tc, test_fd_cache_bounded);
	tcase_add_test(tc, test_borrowed_fd_survives_eviction);
	tcase_add_test(tc, test_replaced_name_is_new_inode);
	tcase_add_test(tc, test_revalidate_reports_changes);
	tcase_add_test(tc, test_revalidate_through_names);
	tcase_add_test(tc, test_names_bounded);
	tcase_add_test(tc, test_over_asks_for_trim);
	tcase_add_test(tc, test_lookahead_claim);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tp, setup_pinned, teardown);
	tcase_add_test(tp, test_pinned_mode);
	suite_add_tcase(s, tp);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
