// SPDX-License-Identifier: MIT
/*
 * posix DIRECTORY -- POSIX file system semantics, checked through DIRECTORY
 * (a cachefs mount, or any plain directory for reference).  Run as root.
 *
 * Each test works in its own scratch directory (see util.h).  Checks that
 * need an unprivileged caller fork a child running as uid/gid 60001 (see
 * fork_as(): on a mount without allow_other, only its fsuid/fsgid).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define NOBODY_ID 60001

static const struct user nobody = { NOBODY_ID, NOBODY_ID, 0, { 0 } };

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static struct timespec now_coarse(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts;
}

static struct timespec now_fine(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

/* before <= t <= after */
static void expect_between(struct timespec t, struct timespec before,
			   struct timespec after)
{
	ck_assert_msg(!ts_after(before, t) && !ts_after(t, after),
		      "time %lld.%09ld not within %lld.%09ld .. %lld.%09ld",
		      (long long)t.tv_sec, t.tv_nsec, (long long)before.tv_sec,
		      before.tv_nsec, (long long)after.tv_sec, after.tv_nsec);
}

static void put_pattern(const char *path, size_t len, unsigned seed)
{
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)(seed + k * 31 + (k >> 8));
	put_file(path, buf, len, 0644);
	free(buf);
}

/* ---- stat ---------------------------------------------------------- */

START_TEST(test_stat_kinds)
{
	struct stat st, lst, fst, dst;
	int fd;

	SCRATCH();
	put_str("f", "hello");
	CK_SYS(mkdir("d", 0750));
	CK_SYS(symlink("f", "l"));

	st = stat_ok("f");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_gt(st.st_blksize, 0);

	dst = stat_ok("d");
	ck_assert(S_ISDIR(dst.st_mode));
	ck_assert_int_eq(dst.st_mode & 07777, 0750);
	ck_assert_int_eq(dst.st_nlink, 2);

	/* lstat sees the link itself, stat its target */
	lst = lstat_ok("l");
	ck_assert(S_ISLNK(lst.st_mode));
	ck_assert_int_eq(lst.st_size, 1);
	ck_assert_uint_ne(lst.st_ino, st.st_ino);
	st = stat_ok("l");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_ino, stat_ok("f").st_ino);

	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(fstat(fd, &fst));
	CK_SYS(close(fd));
	ck_assert_uint_eq(fst.st_ino, st.st_ino);
	ck_assert_uint_eq(fst.st_dev, st.st_dev);
	ck_assert_int_eq(fst.st_size, 5);

	/* the scratch directory counts its subdirectory */
	ck_assert_int_eq(stat_ok(".").st_nlink, 3);
	/* the same inode number on every lookup */
	ck_assert_uint_eq(stat_ok("d").st_ino, dst.st_ino);
	ck_assert_uint_eq(stat_ok("d/..").st_ino, stat_ok(".").st_ino);
}
END_TEST

/* ---- chmod, chown, truncate, utimensat ------------------------------ */

START_TEST(test_chmod)
{
	int fd;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(chmod("f", 0600));
	expect_mode("f", 0600);
	CK_SYS(chmod("f", 07755));
	expect_mode("f", 07755);
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(fchmod(fd, 0401));
	CK_SYS(close(fd));
	expect_mode("f", 0401);
	CK_SYS(mkdir("d", 0700));
	CK_SYS(chmod("d", 03775));
	expect_mode("d", 03775);
	ck_assert(S_ISDIR(stat_ok("d").st_mode));
	/* chmod through a symlink changes the target */
	CK_SYS(symlink("f", "l"));
	CK_SYS(chmod("l", 0640));
	expect_mode("f", 0640);
	ck_assert(S_ISLNK(lstat_ok("l").st_mode));
}
END_TEST

START_TEST(test_chown)
{
	struct stat st;
	int fd;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(chown("f", 1234, 5678));
	expect_owner("f", 1234, 5678);
	/* -1 leaves that id alone */
	CK_SYS(chown("f", (uid_t)-1, 4321));
	expect_owner("f", 1234, 4321);
	CK_SYS(chown("f", 2345, (gid_t)-1));
	expect_owner("f", 2345, 4321);

	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(fchown(fd, 3456, 6543));
	CK_SYS(fstat(fd, &st));
	CK_SYS(close(fd));
	ck_assert_int_eq(st.st_uid, 3456);
	ck_assert_int_eq(st.st_gid, 6543);
	expect_owner("f", 3456, 6543);

	/* lchown changes the link, chown its target */
	CK_SYS(symlink("f", "l"));
	CK_SYS(lchown("l", 111, 222));
	expect_owner("l", 111, 222);
	expect_owner("f", 3456, 6543);
	CK_SYS(chown("l", 333, 444));
	expect_owner("f", 333, 444);
	expect_owner("l", 111, 222);

	/* a change of owner clears set-user-ID, even by root */
	CK_SYS(chmod("f", 06755));
	CK_SYS(chown("f", 0, 0));
	expect_mode("f", 0755);
}
END_TEST

START_TEST(test_truncate)
{
	char buf[64];
	struct stat st;
	int fd;

	SCRATCH();
	put_str("f", "0123456789");
	CK_SYS(truncate("f", 4));
	ck_assert_int_eq(stat_ok("f").st_size, 4);
	expect_str("f", "0123");
	/* growing reads back as zeros */
	CK_SYS(truncate("f", 8));
	fd = CK_SYS(open("f", O_RDWR));
	ck_assert_int_eq(CK_SYS(read(fd, buf, sizeof(buf))), 8);
	ck_assert_int_eq(memcmp(buf, "0123\0\0\0\0", 8), 0);
	CK_SYS(ftruncate(fd, 2));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 2);
	CK_SYS(ftruncate(fd, 1 << 20));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 4, (1 << 20) - 4)), 4);
	ck_assert_int_eq(memcmp(buf, "\0\0\0\0", 4), 0);
	CK_SYS(close(fd));
	ck_assert_int_eq(stat_ok(bpath("f")).st_size, 1 << 20);
	CK_SYS_ERR(truncate("f", -1), EINVAL);
	CK_SYS(mkdir("d", 0755));
	CK_SYS_ERR(truncate("d", 0), EISDIR);
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS_ERR(ftruncate(fd, 0), EINVAL);
	CK_SYS(close(fd));
}
END_TEST

START_TEST(test_utimens)
{
	struct timespec ts[2], before, after;
	struct stat st, old;
	int fd;

	SCRATCH();
	put_str("f", "x");

	/* nanosecond timestamps, in the past and in the future */
	ts[0] = (struct timespec){ 1000000000, 123456789 };
	ts[1] = (struct timespec){ 4000000000LL, 987654321 };
	CK_SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = stat_ok("f");
	ck_assert(ts_eq(st.st_atim, ts[0]));
	ck_assert(ts_eq(st.st_mtim, ts[1]));
	st = stat_ok(bpath("f"));
	ck_assert(ts_eq(st.st_atim, ts[0]));
	ck_assert(ts_eq(st.st_mtim, ts[1]));

	/* UTIME_OMIT leaves one alone */
	ts[0] = (struct timespec){ 1500000000, 1 };
	ts[1].tv_nsec = UTIME_OMIT;
	CK_SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = stat_ok("f");
	ck_assert(ts_eq(st.st_atim, ts[0]));
	ck_assert(ts_eq(st.st_mtim,
			((struct timespec){ 4000000000LL, 987654321 })));
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1] = (struct timespec){ 1600000000, 999999999 };
	CK_SYS(utimensat(AT_FDCWD, "f", ts, 0));
	st = stat_ok("f");
	ck_assert(ts_eq(st.st_atim, ((struct timespec){ 1500000000, 1 })));
	ck_assert(ts_eq(st.st_mtim, ts[1]));

	/* UTIME_NOW sets the current time */
	old = st;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_NOW;
	before = now_coarse();
	CK_SYS(utimensat(AT_FDCWD, "f", ts, 0));
	after = now_fine();
	st = stat_ok("f");
	ck_assert(ts_eq(st.st_atim, old.st_atim));
	expect_between(st.st_mtim, before, after);

	/* NULL: both now, through a descriptor */
	fd = CK_SYS(open("f", O_RDONLY));
	before = now_coarse();
	CK_SYS(futimens(fd, NULL));
	after = now_fine();
	CK_SYS(fstat(fd, &st));
	CK_SYS(close(fd));
	expect_between(st.st_atim, before, after);
	expect_between(st.st_mtim, before, after);

	/* AT_SYMLINK_NOFOLLOW sets the link's own times */
	CK_SYS(symlink("f", "l"));
	old = stat_ok("f");
	ts[0] = (struct timespec){ 1100000000, 5 };
	ts[1] = (struct timespec){ 1200000000, 6 };
	CK_SYS(utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW));
	st = lstat_ok("l");
	ck_assert(ts_eq(st.st_atim, ts[0]));
	ck_assert(ts_eq(st.st_mtim, ts[1]));
	ck_assert(ts_eq(stat_ok("f").st_mtim, old.st_mtim));

	/* a write moves mtime and ctime forward */
	old = stat_ok("f");
	sleep_ms(20);
	put_str("f", "yy");
	st = stat_ok("f");
	ck_assert(ts_after(st.st_mtim, old.st_mtim));
	ck_assert(ts_after(st.st_ctim, old.st_ctim));
}
END_TEST

START_TEST(test_readlink)
{
	char buf[PATH_MAX];
	const char *target = "some/where/../over the rainbow";

	SCRATCH();
	CK_SYS(symlink(target, "l"));
	ck_assert_int_eq(CK_SYS(readlink("l", buf, sizeof(buf))),
			 (long)strlen(target));
	ck_assert_int_eq(memcmp(buf, target, strlen(target)), 0);
	/* a short buffer truncates silently */
	ck_assert_int_eq(CK_SYS(readlink("l", buf, 4)), 4);
	ck_assert_int_eq(memcmp(buf, "some", 4), 0);
	ck_assert_int_eq(CK_SYS(readlinkat(AT_FDCWD, "l", buf, sizeof(buf))),
			 (long)strlen(target));
	/* the backend holds the same text */
	ck_assert_int_eq(CK_SYS(readlink(bpath("l"), buf, sizeof(buf))),
			 (long)strlen(target));
	ck_assert_int_eq(memcmp(buf, target, strlen(target)), 0);
	put_str("f", "x");
	CK_SYS_ERR(readlink("f", buf, sizeof(buf)), EINVAL);
	CK_SYS_ERR(readlink("none", buf, sizeof(buf)), ENOENT);
	/* dangling links are fine to read, not to follow */
	CK_SYS(symlink("none", "dangling"));
	ck_assert_int_eq(CK_SYS(readlink("dangling", buf, sizeof(buf))), 4);
	expect_enoent("dangling/x");
	CK_SYS_ERR(open("dangling", O_RDONLY), ENOENT);
}
END_TEST

/* ---- creating and removing names ----------------------------------- */

START_TEST(test_mknod)
{
	char buf[16];
	struct stat st;
	pid_t pid;
	int fd;

	SCRATCH();
	CK_SYS(mknod("reg", S_IFREG | 0640, 0));
	st = stat_ok("reg");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, 0);
	CK_SYS(mknod("fifo", S_IFIFO | 0600, 0));
	ck_assert(S_ISFIFO(stat_ok("fifo").st_mode));
	ck_assert(S_ISFIFO(lstat_ok(bpath("fifo")).st_mode));
	CK_SYS(mkfifo("fifo2", 0644));
	expect_mode("fifo2", 0644);
	CK_SYS(mknod("chr", S_IFCHR | 0600, makedev(1, 3)));
	st = stat_ok("chr");
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_uint_eq(st.st_rdev, makedev(1, 3));
	ck_assert_uint_eq(lstat_ok(bpath("chr")).st_rdev, makedev(1, 3));
	CK_SYS(mknod("sock", S_IFSOCK | 0600, 0));
	ck_assert(S_ISSOCK(stat_ok("sock").st_mode));
	CK_SYS_ERR(mknod("fifo", S_IFIFO | 0600, 0), EEXIST);

	/* data passes through a fifo on the mount */
	pid = fork_child();
	if (pid == 0) {
		fd = CK_SYS(open("fifo", O_WRONLY));
		ck_assert_int_eq(CK_SYS(write(fd, "through", 7)), 7);
		CK_SYS(close(fd));
		child_exit();
	}
	fd = CK_SYS(open("fifo", O_RDONLY));
	ck_assert_int_eq(CK_SYS(read(fd, buf, sizeof(buf))), 7);
	ck_assert_int_eq(memcmp(buf, "through", 7), 0);
	ck_assert_int_eq(CK_SYS(read(fd, buf, sizeof(buf))), 0);
	CK_SYS(close(fd));
	wait_ok(pid);
	/* a fifo holds no data of its own */
	ck_assert_int_eq(stat_ok("fifo").st_size, 0);
}
END_TEST

START_TEST(test_mkdir_rmdir)
{
	struct stat st;

	SCRATCH();
	CK_SYS(mkdir("d", 0755));
	CK_SYS(mkdir("d/e", 0700));
	st = stat_ok("d");
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 3);
	expect_mode("d/e", 0700);
	CK_SYS_ERR(mkdir("d", 0755), EEXIST);
	CK_SYS_ERR(mkdir("x/y", 0755), ENOENT);
	CK_SYS_ERR(rmdir("d"), ENOTEMPTY);
	CK_SYS(rmdir("d/e"));
	ck_assert_int_eq(stat_ok("d").st_nlink, 2);
	expect_enoent("d/e");
	expect_enoent(bpath("d/e"));
	CK_SYS(rmdir("d"));
	expect_enoent("d");
	CK_SYS_ERR(rmdir("d"), ENOENT);
	put_str("f", "x");
	CK_SYS_ERR(rmdir("f"), ENOTDIR);
	CK_SYS_ERR(mkdir("f/sub", 0755), ENOTDIR);
	/* the name is free again at once */
	CK_SYS(mkdir("d", 0711));
	expect_mode("d", 0711);
}
END_TEST

START_TEST(test_unlink)
{
	SCRATCH();
	put_str("f", "x");
	CK_SYS(unlink("f"));
	expect_enoent("f");
	expect_enoent(bpath("f"));
	CK_SYS_ERR(unlink("f"), ENOENT);
	CK_SYS(mkdir("d", 0755));
	CK_SYS_ERR(unlink("d"), EISDIR);
	/* unlinking a symlink leaves its target */
	put_str("t", "target");
	CK_SYS(symlink("t", "l"));
	CK_SYS(unlink("l"));
	expect_enoent("l");
	expect_str("t", "target");
	/* a new file under the old name is a new file */
	put_str("f", "new");
	expect_str("f", "new");
	CK_SYS(unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
	expect_enoent("d");
}
END_TEST

START_TEST(test_symlink)
{
	char buf[PATH_MAX];
	int fd;

	SCRATCH();
	CK_SYS(mkdir("d", 0755));
	put_str("d/f", "in d");
	CK_SYS(symlink("d/f", "rel"));
	expect_str("rel", "in d");
	CK_SYS(symlink("d", "dl"));
	expect_str("dl/f", "in d");
	/* relative targets resolve from the link's directory */
	CK_SYS(symlink("../d/f", "d/up"));
	expect_str("d/up", "in d");
	/* absolute targets are resolved by the caller, from its root */
	CK_SYS(symlink(mpath("d/f"), "abs"));
	expect_str("abs", "in d");
	CK_SYS(symlink("/dev/null", "devnull"));
	fd = CK_SYS(open("devnull", O_WRONLY));
	ck_assert_int_eq(CK_SYS(write(fd, "x", 1)), 1);
	CK_SYS(close(fd));
	ck_assert(S_ISCHR(stat_ok("devnull").st_mode));
	CK_SYS_ERR(symlink("x", "rel"), EEXIST);
	CK_SYS_ERR(symlink("x", "d"), EEXIST);
	/* creating through a dangling link creates its target */
	CK_SYS(symlink("made", "dangling"));
	fd = CK_SYS(open("dangling", O_WRONLY | O_CREAT, 0644));
	CK_SYS(close(fd));
	ck_assert(S_ISREG(lstat_ok("made").st_mode));
	/* a long target */
	memset(buf, 'a', 4000);
	buf[4000] = '\0';
	CK_SYS(symlink(buf, "long"));
	ck_assert_int_eq(lstat_ok("long").st_size, 4000);
}
END_TEST

/* ---- rename -------------------------------------------------------- */

START_TEST(test_rename_basic)
{
	struct stat st, old;

	SCRATCH();
	put_str("a", "A");
	old = stat_ok("a");
	CK_SYS(rename("a", "b"));
	expect_enoent("a");
	expect_enoent(bpath("a"));
	expect_str("b", "A");
	st = stat_ok("b");
	ck_assert_uint_eq(st.st_ino, old.st_ino);
	ck_assert_uint_eq(stat_ok(bpath("b")).st_size, 1);

	/* over an existing file */
	put_str("c", "CCC");
	CK_SYS(rename("b", "c"));
	expect_enoent("b");
	expect_str("c", "A");
	ck_assert_uint_eq(stat_ok("c").st_ino, old.st_ino);
	expect_str(bpath("c"), "A");

	/* across directories, file and directory */
	CK_SYS(mkdir("d1", 0755));
	CK_SYS(mkdir("d2", 0755));
	CK_SYS(rename("c", "d1/c"));
	expect_str("d1/c", "A");
	CK_SYS(mkdir("d1/sub", 0755));
	put_str("d1/sub/f", "deep");
	CK_SYS(rename("d1/sub", "d2/sub"));
	expect_str("d2/sub/f", "deep");
	expect_enoent("d1/sub");
	ck_assert_int_eq(stat_ok("d1").st_nlink, 2);
	ck_assert_int_eq(stat_ok("d2").st_nlink, 3);
	ck_assert_uint_eq(stat_ok("d2/sub/..").st_ino, stat_ok("d2").st_ino);

	/* a directory over an empty directory */
	CK_SYS(mkdir("empty", 0700));
	CK_SYS(rename("d2/sub", "empty"));
	expect_str("empty/f", "deep");
	expect_mode("empty", 0755);
	ck_assert_int_eq(stat_ok("d2").st_nlink, 2);

	/* a directory over a non-empty one, a file, and the reverse */
	CK_SYS(mkdir("full", 0755));
	put_str("full/x", "x");
	CK_SYS_ERR(rename("empty", "full"), ENOTEMPTY);
	put_str("file", "f");
	CK_SYS_ERR(rename("empty", "file"), ENOTDIR);
	CK_SYS_ERR(rename("file", "full"), EISDIR);
	/* into its own subdirectory */
	CK_SYS(mkdir("full/in", 0755));
	CK_SYS_ERR(rename("full", "full/in/full"), EINVAL);
	CK_SYS_ERR(rename("none", "x"), ENOENT);
	CK_SYS_ERR(rename("file", "none/x"), ENOENT);
	expect_str("file", "f");
	expect_str("full/x", "x");
}
END_TEST

START_TEST(test_rename_self)
{
	SCRATCH();
	put_str("a", "A");
	CK_SYS(rename("a", "a"));
	expect_str("a", "A");
	CK_SYS(mkdir("d", 0755));
	CK_SYS(rename("d", "d"));
	ck_assert(S_ISDIR(stat_ok("d").st_mode));
	CK_SYS(rename("a", "./a"));
	expect_str("a", "A");
	/* two links to one file: rename does nothing at all */
	CK_SYS(link("a", "b"));
	CK_SYS(rename("a", "b"));
	expect_str("a", "A");
	expect_str("b", "A");
	ck_assert_int_eq(stat_ok("a").st_nlink, 2);
}
END_TEST

START_TEST(test_rename_flags)
{
	SCRATCH();
	put_str("a", "A");
	put_str("b", "B");
	CK_SYS_ERR(renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE),
		   EEXIST);
	expect_str("a", "A");
	expect_str("b", "B");
	CK_SYS(renameat2(AT_FDCWD, "a", AT_FDCWD, "c", RENAME_NOREPLACE));
	expect_enoent("a");
	expect_str("c", "A");

	/* exchange two files */
	CK_SYS(renameat2(AT_FDCWD, "b", AT_FDCWD, "c", RENAME_EXCHANGE));
	expect_str("b", "A");
	expect_str("c", "B");
	expect_str(bpath("b"), "A");
	expect_str(bpath("c"), "B");

	/* exchange a file and a directory in different directories */
	CK_SYS(mkdir("d", 0755));
	CK_SYS(mkdir("d/sub", 0700));
	put_str("d/sub/in", "in");
	CK_SYS(renameat2(AT_FDCWD, "b", AT_FDCWD, "d/sub", RENAME_EXCHANGE));
	expect_str("b/in", "in");
	expect_str("d/sub", "A");
	ck_assert(S_ISDIR(stat_ok("b").st_mode));
	ck_assert(S_ISREG(stat_ok("d/sub").st_mode));
	ck_assert_int_eq(stat_ok("d").st_nlink, 2);
	ck_assert_uint_eq(stat_ok("b/..").st_ino, stat_ok(".").st_ino);
	CK_SYS_ERR(renameat2(AT_FDCWD, "b", AT_FDCWD, "none", RENAME_EXCHANGE),
		   ENOENT);
	CK_SYS_ERR(renameat2(AT_FDCWD, "b", AT_FDCWD, "c",
			     RENAME_EXCHANGE | RENAME_NOREPLACE),
		   EINVAL);
}
END_TEST

/* ---- hard links ---------------------------------------------------- */

START_TEST(test_link)
{
	struct stat st, old;

	SCRATCH();
	put_str("a", "A");
	old = stat_ok("a");
	sleep_ms(30);
	CK_SYS(link("a", "b"));
	st = stat_ok("a");
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_msg(ts_after(st.st_ctim, old.st_ctim),
		      "link did not change the source's ctime");
	ck_assert_int_eq(stat_ok("b").st_nlink, 2);
	ck_assert_uint_eq(stat_ok("b").st_ino, st.st_ino);
	ck_assert_int_eq(stat_ok(bpath("a")).st_nlink, 2);
	ck_assert_uint_eq(stat_ok(bpath("b")).st_ino,
			  stat_ok(bpath("a")).st_ino);

	/* one inode: a write through one name is read through the other */
	put_str("b", "BB");
	expect_str("a", "BB");
	CK_SYS(mkdir("d", 0755));
	CK_SYS(link("a", "d/c"));
	ck_assert_int_eq(stat_ok("b").st_nlink, 3);

	CK_SYS(unlink("a"));
	ck_assert_int_eq(stat_ok("b").st_nlink, 2);
	ck_assert_int_eq(stat_ok("d/c").st_nlink, 2);

	/* rename over one link drops the count of the others */
	put_str("x", "X");
	CK_SYS(rename("x", "b"));
	ck_assert_int_eq(stat_ok("d/c").st_nlink, 1);
	ck_assert_int_eq(stat_ok("b").st_nlink, 1);
	expect_str("d/c", "BB");

	CK_SYS_ERR(link("d/c", "b"), EEXIST);
	CK_SYS_ERR(link("none", "n"), ENOENT);
	CK_SYS_ERR(link("d", "d2"), EPERM);

	/* link of a symlink links the symlink itself */
	CK_SYS(symlink("b", "l"));
	CK_SYS(link("l", "l2"));
	ck_assert(S_ISLNK(lstat_ok("l2").st_mode));
	ck_assert_int_eq(lstat_ok("l").st_nlink, 2);
	/* ... unless AT_SYMLINK_FOLLOW */
	CK_SYS(linkat(AT_FDCWD, "l", AT_FDCWD, "l3", AT_SYMLINK_FOLLOW));
	ck_assert(S_ISREG(lstat_ok("l3").st_mode));
	ck_assert_int_eq(stat_ok("b").st_nlink, 2);
}
END_TEST

/* ---- open and I/O ------------------------------------------------- */

START_TEST(test_open_flags)
{
	char buf[64];
	struct stat st;
	int fd;

	SCRATCH();
	fd = CK_SYS(open("f", O_WRONLY | O_CREAT | O_EXCL, 0640));
	ck_assert_int_eq(CK_SYS(write(fd, "first", 5)), 5);
	CK_SYS(close(fd));
	expect_mode("f", 0640);
	CK_SYS_ERR(open("f", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	/* O_EXCL does not follow a symlink, even a dangling one */
	CK_SYS(symlink("none", "dangling"));
	CK_SYS_ERR(open("dangling", O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
	expect_enoent("none");
	/* O_CREAT on an existing file keeps it and its mode */
	fd = CK_SYS(open("f", O_RDWR | O_CREAT, 0600));
	CK_SYS(close(fd));
	expect_mode("f", 0640);
	expect_str("f", "first");

	/* O_TRUNC */
	fd = CK_SYS(open("f", O_RDWR | O_TRUNC));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(stat_ok(bpath("f")).st_size, 0);
	ck_assert_int_eq(CK_SYS(write(fd, "0123456789", 10)), 10);
	CK_SYS(close(fd));
	/* O_CREAT | O_TRUNC on an existing file truncates it */
	fd = CK_SYS(open("f", O_WRONLY | O_TRUNC | O_CREAT, 0644));
	CK_SYS(close(fd));
	ck_assert_int_eq(stat_ok("f").st_size, 0);

	/* O_APPEND writes at the end whatever the offset */
	put_str("f", "abc");
	fd = CK_SYS(open("f", O_RDWR | O_APPEND));
	CK_SYS(lseek(fd, 0, SEEK_SET));
	ck_assert_int_eq(CK_SYS(write(fd, "def", 3)), 3);
	ck_assert_int_eq(CK_SYS(lseek(fd, 0, SEEK_CUR)), 6);
	CK_SYS(lseek(fd, 1, SEEK_SET));
	ck_assert_int_eq(CK_SYS(write(fd, "g", 1)), 1);
	CK_SYS(close(fd));
	expect_str("f", "abcdefg");
	expect_str(bpath("f"), "abcdefg");

	/* descriptors are only good for what they were opened for */
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS_ERR(write(fd, "x", 1), EBADF);
	CK_SYS(close(fd));
	fd = CK_SYS(open("f", O_WRONLY));
	CK_SYS_ERR(read(fd, buf, 1), EBADF);
	CK_SYS(close(fd));
	CK_SYS_ERR(close(fd), EBADF);
	CK_SYS_ERR(fstat(fd, &st), EBADF);
	CK_SYS_ERR(read(fd, buf, 1), EBADF);
	CK_SYS(mkdir("d", 0755));
	CK_SYS_ERR(open("d", O_WRONLY), EISDIR);
	CK_SYS_ERR(open("d", O_RDWR | O_CREAT, 0644), EISDIR);
	CK_SYS_ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	CK_SYS_ERR(open("f/x", O_RDONLY), ENOTDIR);
	CK_SYS_ERR(open("none", O_RDONLY), ENOENT);
	CK_SYS_ERR(open("none/x", O_RDONLY | O_CREAT, 0644), ENOENT);
	fd = CK_SYS(open("d", O_RDONLY | O_DIRECTORY));
	CK_SYS_ERR(read(fd, buf, 1), EISDIR);
	CK_SYS(close(fd));
}
END_TEST

START_TEST(test_read_write)
{
	const size_t big = 3 << 20;
	char buf[64], *a, *b;
	int fd;

	SCRATCH();
	fd = CK_SYS(open("f", O_RDWR | O_CREAT, 0644));
	ck_assert_int_eq(CK_SYS(write(fd, "hello world", 11)), 11);
	ck_assert_int_eq(CK_SYS(lseek(fd, 0, SEEK_CUR)), 11);
	/* pread and pwrite leave the offset alone */
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 5, 6)), 5);
	ck_assert_int_eq(memcmp(buf, "world", 5), 0);
	ck_assert_int_eq(CK_SYS(pwrite(fd, "W", 1, 6)), 1);
	ck_assert_int_eq(CK_SYS(lseek(fd, 0, SEEK_CUR)), 11);
	/* at the end of file, read returns 0 */
	ck_assert_int_eq(CK_SYS(read(fd, buf, sizeof(buf))), 0);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 4, 100)), 0);
	/* a write past the end leaves a hole of zeros */
	ck_assert_int_eq(CK_SYS(pwrite(fd, "end", 3, 20)), 3);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, sizeof(buf), 0)), 23);
	ck_assert_int_eq(memcmp(buf, "hello World\0\0\0\0\0\0\0\0\0end", 23),
			 0);
	CK_SYS(lseek(fd, 0, SEEK_SET));
	ck_assert_int_eq(CK_SYS(read(fd, buf, 5)), 5);
	ck_assert_int_eq(CK_SYS(read(fd, buf + 5, 6)), 6);
	ck_assert_int_eq(memcmp(buf, "hello World", 11), 0);
	CK_SYS(close(fd));
	ck_assert_int_eq(stat_ok(bpath("f")).st_size, 23);

	/* large transfers, in both directions, match the backend */
	a = malloc(big);
	b = malloc(big);
	ck_assert(a && b);
	for (size_t k = 0; k < big; k++)
		a[k] = (char)(k * 7 + (k >> 12));
	put_file("big", a, big, 0644);
	fd = CK_SYS(open(bpath("big"), O_RDONLY));
	ck_assert_int_eq(CK_SYS(pread(fd, b, big, 0)), (long)big);
	CK_SYS(close(fd));
	ck_assert_int_eq(memcmp(a, b, big), 0);
	memset(b, 0, big);
	fd = CK_SYS(open("big", O_RDONLY));
	for (size_t done = 0; done < big;) {
		ssize_t n = CK_SYS(read(fd, b + done, big - done));

		ck_assert_int_gt(n, 0);
		done += (size_t)n;
	}
	CK_SYS(close(fd));
	ck_assert_int_eq(memcmp(a, b, big), 0);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_o_direct)
{
	const size_t len = 256 << 10;
	char *a, *b;
	int fd;

	SCRATCH();
	ck_assert_int_eq(posix_memalign((void **)&a, 4096, len), 0);
	ck_assert_int_eq(posix_memalign((void **)&b, 4096, len), 0);
	for (size_t k = 0; k < len; k++)
		a[k] = (char)(k ^ (k >> 9));
	fd = CK_SYS(open("f", O_RDWR | O_CREAT | O_DIRECT, 0644));
	ck_assert_int_ne(CK_SYS(fcntl(fd, F_GETFL)) & O_DIRECT, 0);
	ck_assert_int_eq(CK_SYS(pwrite(fd, a, len, 0)), (long)len);
	ck_assert_int_eq(CK_SYS(pwrite(fd, a, 4096, len + 8192)), 4096);
	ck_assert_int_eq(CK_SYS(pread(fd, b, len, 0)), (long)len);
	ck_assert_int_eq(memcmp(a, b, len), 0);
	ck_assert_int_eq(CK_SYS(pread(fd, b, 3 * 4096, len)), 3 * 4096);
	ck_assert_int_eq(b[0], 0);
	ck_assert_int_eq(b[8191], 0);
	ck_assert_int_eq(memcmp(b + 8192, a, 4096), 0);
	CK_SYS(close(fd));
	ck_assert_int_eq(stat_ok("f").st_size, (long)len + 3 * 4096);

	/* buffered readers see what direct writers wrote, and back */
	fd = CK_SYS(open(bpath("f"), O_RDONLY));
	ck_assert_int_eq(CK_SYS(pread(fd, b, len, 0)), (long)len);
	CK_SYS(close(fd));
	ck_assert_int_eq(memcmp(a, b, len), 0);
	put_pattern("g", len, 5);
	fd = CK_SYS(open("g", O_RDONLY | O_DIRECT));
	ck_assert_int_eq(CK_SYS(pread(fd, b, len, 0)), (long)len);
	CK_SYS(close(fd));
	fd = CK_SYS(open("g", O_RDONLY));
	ck_assert_int_eq(CK_SYS(pread(fd, a, len, 0)), (long)len);
	CK_SYS(close(fd));
	ck_assert_int_eq(memcmp(a, b, len), 0);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_fsync)
{
	int fd;

	SCRATCH();
	fd = CK_SYS(open("f", O_RDWR | O_CREAT, 0644));
	ck_assert_int_eq(CK_SYS(write(fd, "data", 4)), 4);
	ck_assert_int_eq(CK_SYS(fsync(fd)), 0);
	ck_assert_int_eq(CK_SYS(pwrite(fd, "more", 4, 4)), 4);
	ck_assert_int_eq(CK_SYS(fdatasync(fd)), 0);
	expect_str(bpath("f"), "datamore");
	CK_SYS(close(fd));
	fd = CK_SYS(open("f", O_RDONLY));
	ck_assert_int_eq(CK_SYS(fsync(fd)), 0);
	CK_SYS(close(fd));
	/* on a directory */
	CK_SYS(mkdir("d", 0755));
	fd = CK_SYS(open("d", O_RDONLY | O_DIRECTORY));
	ck_assert_int_eq(CK_SYS(fsync(fd)), 0);
	ck_assert_int_eq(CK_SYS(fdatasync(fd)), 0);
	CK_SYS(close(fd));
	fd = CK_SYS(open(".", O_RDONLY | O_DIRECTORY));
	ck_assert_int_eq(CK_SYS(fsync(fd)), 0);
	CK_SYS(close(fd));
	CK_SYS_ERR(fsync(fd), EBADF);
}
END_TEST

/* ---- directories --------------------------------------------------- */

#define NDIRENT 1000

/* Read the rest of dp; each of f0..f999 must come exactly once. */
static int read_names(DIR *dp, unsigned char *seen, bool *dots)
{
	struct dirent *de;
	int n = 0;

	while ((errno = 0, de = readdir(dp))) {
		int k;
		char end;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			if (dots)
				*dots = true;
			continue;
		}
		ck_assert_msg(sscanf(de->d_name, "f%d%c", &k, &end) == 1 &&
				      k >= 0 && k < NDIRENT,
			      "unexpected entry '%s'", de->d_name);
		ck_assert_msg(!seen[k], "entry '%s' seen twice", de->d_name);
		ck_assert_msg(de->d_type == DT_REG || de->d_type == DT_UNKNOWN,
			      "entry '%s' has type %d", de->d_name, de->d_type);
		seen[k] = 1;
		n++;
	}
	ck_assert_int_eq(errno, 0);
	return n;
}

START_TEST(test_readdir)
{
	unsigned char seen[NDIRENT];
	char name[32], again[NAME_MAX + 1];
	struct dirent *de;
	bool dots = false;
	long pos;
	DIR *dp;
	int n, k;

	SCRATCH();
	CK_SYS(mkdir("d", 0755));
	for (k = 0; k < NDIRENT; k++) {
		snprintf(name, sizeof(name), "d/f%d", k);
		int fd = CK_SYS(open(name, O_WRONLY | O_CREAT, 0644));

		CK_SYS(close(fd));
	}
	dp = opendir("d");
	ck_assert_ptr_nonnull(dp);
	memset(seen, 0, sizeof(seen));
	n = read_names(dp, seen, &dots);
	ck_assert_int_eq(n, NDIRENT);
	ck_assert(dots);

	/* rewinddir starts over and finds everything again */
	rewinddir(dp);
	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(read_names(dp, seen, NULL), NDIRENT);

	/* telldir/seekdir return to an entry in the middle */
	rewinddir(dp);
	for (k = 0; k < NDIRENT / 2; k++)
		ck_assert_ptr_nonnull(readdir(dp));
	pos = CK_SYS(telldir(dp));
	de = readdir(dp);
	ck_assert_ptr_nonnull(de);
	snprintf(again, sizeof(again), "%s", de->d_name);
	for (k = 0; k < 100; k++)
		ck_assert_ptr_nonnull(readdir(dp));
	seekdir(dp, pos);
	de = readdir(dp);
	ck_assert_ptr_nonnull(de);
	ck_assert_str_eq(de->d_name, again);
	/* what follows is what follows that entry in a plain reading */
	memset(seen, 0, sizeof(seen));
	n = read_names(dp, seen, NULL);
	ck_assert_int_gt(n, NDIRENT / 2 - 100);
	rewinddir(dp);
	for (k = 0; k <= NDIRENT / 2; k++)
		ck_assert_ptr_nonnull(readdir(dp));
	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(read_names(dp, seen, NULL), n);
	CK_SYS(closedir(dp));

	/* entries removed are gone from a fresh listing */
	for (k = 0; k < NDIRENT; k += 2) {
		snprintf(name, sizeof(name), "d/f%d", k);
		CK_SYS(unlink(name));
	}
	dp = opendir("d");
	ck_assert_ptr_nonnull(dp);
	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(read_names(dp, seen, NULL), NDIRENT / 2);
	for (k = 0; k < NDIRENT; k++)
		ck_assert_int_eq(seen[k], k % 2);
	CK_SYS(closedir(dp));

	/* an empty directory lists only . and .. */
	CK_SYS(mkdir("e", 0755));
	dp = opendir("e");
	ck_assert_ptr_nonnull(dp);
	dots = false;
	ck_assert_int_eq(read_names(dp, seen, &dots), 0);
	ck_assert(dots);
	CK_SYS(closedir(dp));
	ck_assert_ptr_null(opendir("none"));
	ck_assert_int_eq(errno, ENOENT);
	put_str("f", "x");
	ck_assert_ptr_null(opendir("f"));
	ck_assert_int_eq(errno, ENOTDIR);
}
END_TEST

START_TEST(test_statvfs)
{
	struct statvfs sv, bsv, fsv;
	int fd;

	SCRATCH();
	CK_SYS(statvfs(".", &sv));
	ck_assert_uint_gt(sv.f_bsize, 0);
	ck_assert_uint_gt(sv.f_blocks, 0);
	ck_assert_uint_le(sv.f_bfree, sv.f_blocks);
	ck_assert_uint_le(sv.f_bavail, sv.f_bfree);
	ck_assert_uint_gt(sv.f_files, 0);
	ck_assert_uint_eq(sv.f_namemax, 255);
	/* the numbers are the backend's */
	CK_SYS(statvfs(bpath("."), &bsv));
	ck_assert_uint_eq(sv.f_blocks * sv.f_frsize,
			  bsv.f_blocks * bsv.f_frsize);
	ck_assert_uint_eq(sv.f_files, bsv.f_files);
	put_str("f", "x");
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(fstatvfs(fd, &fsv));
	CK_SYS(close(fd));
	ck_assert_uint_eq(fsv.f_blocks, sv.f_blocks);
	CK_SYS_ERR(statvfs("none", &sv), ENOENT);
}
END_TEST

/* ---- extended attributes ----------------------------------------- */

/* Does the NUL-separated list hold name? */
static bool list_has(const char *list, ssize_t len, const char *name)
{
	for (const char *p = list; p < list + len; p += strlen(p) + 1)
		if (!strcmp(p, name))
			return true;
	return false;
}

START_TEST(test_xattr)
{
	char buf[256], list[1024];
	ssize_t n;
	int fd;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(setxattr("f", "user.one", "value1", 6, 0));
	CK_SYS(setxattr("f", "user.two", "", 0, 0));
	ck_assert_int_eq(CK_SYS(getxattr("f", "user.one", buf, sizeof(buf))),
			 6);
	ck_assert_int_eq(memcmp(buf, "value1", 6), 0);
	ck_assert_int_eq(CK_SYS(getxattr("f", "user.two", buf, sizeof(buf))),
			 0);
	/* size 0 asks for the size */
	ck_assert_int_eq(CK_SYS(getxattr("f", "user.one", NULL, 0)), 6);
	CK_SYS_ERR(getxattr("f", "user.one", buf, 3), ERANGE);
	CK_SYS_ERR(getxattr("f", "user.none", buf, sizeof(buf)), ENODATA);
	/* the backend file holds it */
	ck_assert_int_eq(
		CK_SYS(getxattr(bpath("f"), "user.one", buf, sizeof(buf))), 6);

	/* XATTR_CREATE and XATTR_REPLACE */
	CK_SYS_ERR(setxattr("f", "user.one", "v", 1, XATTR_CREATE), EEXIST);
	CK_SYS_ERR(setxattr("f", "user.new", "v", 1, XATTR_REPLACE), ENODATA);
	CK_SYS(setxattr("f", "user.one", "longer value", 12, XATTR_REPLACE));
	ck_assert_int_eq(CK_SYS(getxattr("f", "user.one", buf, sizeof(buf))),
			 12);
	ck_assert_int_eq(memcmp(buf, "longer value", 12), 0);
	CK_SYS(setxattr("f", "user.three", "3", 1, XATTR_CREATE));

	n = CK_SYS(listxattr("f", list, sizeof(list)));
	ck_assert(list_has(list, n, "user.one"));
	ck_assert(list_has(list, n, "user.two"));
	ck_assert(list_has(list, n, "user.three"));
	ck_assert_int_eq(CK_SYS(listxattr("f", NULL, 0)), n);
	CK_SYS_ERR(listxattr("f", list, 1), ERANGE);

	CK_SYS(removexattr("f", "user.two"));
	CK_SYS_ERR(removexattr("f", "user.two"), ENODATA);
	CK_SYS_ERR(getxattr("f", "user.two", buf, sizeof(buf)), ENODATA);
	n = CK_SYS(listxattr("f", list, sizeof(list)));
	ck_assert(!list_has(list, n, "user.two"));
	ck_assert(list_has(list, n, "user.one"));
	CK_SYS_ERR(getxattr(bpath("f"), "user.two", buf, sizeof(buf)), ENODATA);

	/* through descriptors, and on directories */
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(fsetxattr(fd, "user.fd", "F", 1, 0));
	ck_assert_int_eq(CK_SYS(fgetxattr(fd, "user.fd", buf, sizeof(buf))), 1);
	CK_SYS(fremovexattr(fd, "user.fd"));
	CK_SYS(close(fd));
	CK_SYS(mkdir("d", 0755));
	CK_SYS(setxattr("d", "user.dir", "D", 1, 0));
	ck_assert_int_eq(CK_SYS(getxattr("d", "user.dir", buf, sizeof(buf))),
			 1);
	CK_SYS_ERR(getxattr("none", "user.one", buf, sizeof(buf)), ENOENT);
	/* a value larger than 64 KiB is refused */
	{
		static char huge[65537];

		CK_SYS_ERR(setxattr("f", "user.huge", huge, sizeof(huge), 0),
			   E2BIG);
	}
	/* a larger value than a small buffer's worth is stored whole */
	memset(list, 'v', sizeof(list));
	CK_SYS(setxattr("f", "user.big", list, sizeof(list), 0));
	ck_assert_int_eq(CK_SYS(getxattr("f", "user.big", NULL, 0)),
			 (long)sizeof(list));
	/* user.* attributes are for files and directories only */
	CK_SYS(symlink("f", "l"));
	CK_SYS_ERR(lsetxattr("l", "user.one", "1", 1, 0), EPERM);
	CK_SYS_ERR(lgetxattr("l", "user.one", buf, sizeof(buf)), ENODATA);
	/* through the link, the target's */
	ck_assert_int_eq(CK_SYS(getxattr("l", "user.one", buf, sizeof(buf))),
			 12);
	CK_SYS(mkfifo("p", 0644));
	CK_SYS_ERR(setxattr("p", "user.one", "1", 1, 0), EPERM);
	/* trusted.* is root's */
	CK_SYS(setxattr("f", "trusted.t", "T", 1, 0));
	ck_assert_int_eq(CK_SYS(getxattr("f", "trusted.t", buf, sizeof(buf))),
			 1);
	ck_assert_int_eq(
		CK_SYS(getxattr(bpath("f"), "trusted.t", buf, sizeof(buf))), 1);
	/* ... and may be set on a symlink itself */
	CK_SYS(lsetxattr("l", "trusted.l", "L", 1, 0));
	ck_assert_int_eq(CK_SYS(lgetxattr("l", "trusted.l", buf, sizeof(buf))),
			 1);
	ck_assert_int_eq(buf[0], 'L');
	n = CK_SYS(llistxattr("l", list, sizeof(list)));
	ck_assert(list_has(list, n, "trusted.l"));
	ck_assert_int_eq(
		CK_SYS(lgetxattr(bpath("l"), "trusted.l", buf, sizeof(buf))),
		1);
	CK_SYS_ERR(getxattr("f", "trusted.l", buf, sizeof(buf)), ENODATA);
	CK_SYS(lremovexattr("l", "trusted.l"));
	CK_SYS_ERR(lgetxattr("l", "trusted.l", buf, sizeof(buf)), ENODATA);
}
END_TEST

/* Attributes of fifos, sockets and devices, which are never opened. */
START_TEST(test_special_attr)
{
	const char *names[] = { "fifo", "sock", "chr" };
	struct timespec ts[2] = { { 1300000000, 42 }, { 1400000000, 43 } };
	struct stat st;

	SCRATCH();
	CK_SYS(mkfifo("fifo", 0600));
	CK_SYS(mknod("sock", S_IFSOCK | 0600, 0));
	CK_SYS(mknod("chr", S_IFCHR | 0600, makedev(1, 3)));
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const char *n = names[k];

		CK_SYS(chmod(n, 0654));
		expect_mode(n, 0654);
		CK_SYS(chown(n, 4321, 1234));
		expect_owner(n, 4321, 1234);
		CK_SYS(utimensat(AT_FDCWD, n, ts, 0));
		st = stat_ok(n);
		ck_assert(ts_eq(st.st_atim, ts[0]));
		ck_assert(ts_eq(st.st_mtim, ts[1]));
		st = lstat_ok(bpath(n));
		ck_assert(ts_eq(st.st_mtim, ts[1]));
		CK_SYS_ERR(truncate(n, 0), EINVAL);
	}
	ck_assert_uint_eq(stat_ok("chr").st_rdev, makedev(1, 3));
	CK_SYS(rename("fifo", "fifo2"));
	ck_assert(S_ISFIFO(stat_ok("fifo2").st_mode));
	CK_SYS(link("sock", "sock2"));
	ck_assert_int_eq(stat_ok("sock").st_nlink, 2);
}
END_TEST

/* ---- access -------------------------------------------------------- */

START_TEST(test_access)
{
	pid_t pid;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(chmod("f", 0644));
	CK_SYS(access("f", F_OK));
	CK_SYS(access("f", R_OK | W_OK));
	/* root needs some execute bit to execute */
	CK_SYS_ERR(access("f", X_OK), EACCES);
	CK_SYS(chmod("f", 0001));
	CK_SYS(access("f", X_OK));
	CK_SYS(access("f", R_OK | W_OK | X_OK));
	CK_SYS(chmod("f", 0000));
	CK_SYS(access("f", R_OK | W_OK));
	CK_SYS_ERR(access("none", F_OK), ENOENT);
	CK_SYS_ERR(access("f/x", F_OK), ENOTDIR);
	CK_SYS(faccessat(AT_FDCWD, "f", R_OK, AT_EACCESS));
	CK_SYS(symlink("none", "dangling"));
	CK_SYS_ERR(faccessat(AT_FDCWD, "dangling", F_OK, 0), ENOENT);
	CK_SYS(faccessat(AT_FDCWD, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
	CK_SYS(chmod("f", 0640));
	put_str("pub", "x");
	CK_SYS(chmod("pub", 0604));
	CK_SYS(mkdir("d", 0755));

	/*
	 * access() checks as the real user, faccessat(AT_EACCESS) as the
	 * effective one: with an fsuid-only identity, only the latter.
	 */
	pid = fork_as(&nobody);
	if (pid == 0) {
		if (!test_fsuid_only) {
			CK_SYS_ERR(access("f", R_OK), EACCES);
			CK_SYS(access("pub", R_OK));
			CK_SYS_ERR(access("pub", W_OK), EACCES);
		}
		CK_SYS_ERR(faccessat(AT_FDCWD, "f", R_OK, AT_EACCESS), EACCES);
		CK_SYS(faccessat(AT_FDCWD, "f", F_OK, AT_EACCESS));
		CK_SYS(faccessat(AT_FDCWD, "pub", R_OK, AT_EACCESS));
		CK_SYS_ERR(faccessat(AT_FDCWD, "pub", W_OK, AT_EACCESS),
			   EACCES);
		CK_SYS_ERR(faccessat(AT_FDCWD, "pub", X_OK, AT_EACCESS),
			   EACCES);
		CK_SYS(faccessat(AT_FDCWD, "d", R_OK | X_OK, AT_EACCESS));
		CK_SYS_ERR(faccessat(AT_FDCWD, "d", W_OK, AT_EACCESS), EACCES);
		child_exit();
	}
	wait_ok(pid);
}
END_TEST

/* ---- fallocate, copy_file_range, SEEK_DATA ------------------------- */

START_TEST(test_fallocate)
{
	char buf[8192], zero[8192];
	struct stat st, old;
	int fd;

	SCRATCH();
	memset(zero, 0, sizeof(zero));
	fd = CK_SYS(open("f", O_RDWR | O_CREAT, 0644));
	/* mode 0 allocates and extends */
	CK_SYS(fallocate(fd, 0, 0, 1 << 20));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_ge(st.st_blocks * 512, 1 << 20);
	ck_assert_int_eq(stat_ok(bpath("f")).st_size, 1 << 20);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, sizeof(buf), 4096)),
			 (long)sizeof(buf));
	ck_assert_int_eq(memcmp(buf, zero, sizeof(buf)), 0);

	/* KEEP_SIZE allocates past the end without moving it */
	old = st;
	CK_SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_ge(st.st_blocks, old.st_blocks + (1 << 20) / 512);

	/* punching a hole zeroes the range and frees its blocks */
	memset(buf, 'x', sizeof(buf));
	for (off_t off = 0; off < (1 << 20); off += sizeof(buf))
		ck_assert_int_eq(CK_SYS(pwrite(fd, buf, sizeof(buf), off)),
				 (long)sizeof(buf));
	CK_SYS(fstat(fd, &old));
	CK_SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536,
			 262144));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 1 << 20);
	ck_assert_int_le(st.st_blocks, old.st_blocks - 262144 / 512);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, sizeof(buf), 65536)),
			 (long)sizeof(buf));
	ck_assert_int_eq(memcmp(buf, zero, sizeof(buf)), 0);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 1, 65535)), 1);
	ck_assert_int_eq(buf[0], 'x');
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 1, 65536 + 262144)), 1);
	ck_assert_int_eq(buf[0], 'x');
	/* hole punching needs KEEP_SIZE */
	CK_SYS_ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);
	CK_SYS(close(fd));
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS_ERR(fallocate(fd, 0, 0, 4096), EBADF);
	CK_SYS(close(fd));
}
END_TEST

START_TEST(test_copy_file_range)
{
	const size_t len = 200000;
	char *a, *b;
	loff_t in = 1000, out = 0;
	int src, dst;

	SCRATCH();
	put_pattern("src", len, 9);
	a = malloc(len);
	b = malloc(len);
	ck_assert(a && b);
	src = CK_SYS(open("src", O_RDONLY));
	ck_assert_int_eq(CK_SYS(pread(src, a, len, 0)), (long)len);
	dst = CK_SYS(open("dst", O_RDWR | O_CREAT, 0644));
	for (size_t done = 0; done < len - 1000;) {
		ssize_t n = CK_SYS(copy_file_range(src, &in, dst, &out,
						   len - 1000 - done, 0));

		ck_assert_int_gt(n, 0);
		done += (size_t)n;
	}
	ck_assert_int_eq(in, (loff_t)len);
	ck_assert_int_eq(out, (loff_t)len - 1000);
	/* the file offsets do not move when offsets are given */
	ck_assert_int_eq(CK_SYS(lseek(src, 0, SEEK_CUR)), 0);
	ck_assert_int_eq(CK_SYS(lseek(dst, 0, SEEK_CUR)), 0);
	ck_assert_int_eq(CK_SYS(pread(dst, b, len, 0)), (long)len - 1000);
	ck_assert_int_eq(memcmp(a + 1000, b, len - 1000), 0);
	/* at the end of the source, nothing is copied */
	ck_assert_int_eq(CK_SYS(copy_file_range(src, &in, dst, &out, 10, 0)),
			 0);
	/* without offsets, the descriptors' offsets are used and moved */
	CK_SYS(lseek(src, 10, SEEK_SET));
	CK_SYS(lseek(dst, 0, SEEK_END));
	ck_assert_int_eq(CK_SYS(copy_file_range(src, NULL, dst, NULL, 5, 0)),
			 5);
	ck_assert_int_eq(CK_SYS(lseek(src, 0, SEEK_CUR)), 15);
	ck_assert_int_eq(CK_SYS(pread(dst, b, 5, (off_t)len - 1000)), 5);
	ck_assert_int_eq(memcmp(a + 10, b, 5), 0);
	CK_SYS_ERR(copy_file_range(dst, NULL, src, NULL, 5, 0), EBADF);
	CK_SYS(close(src));
	CK_SYS(close(dst));
	ck_assert_int_eq(stat_ok(bpath("dst")).st_size, (long)len - 995);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_seek_data_hole)
{
	const off_t mib = 1 << 20;
	char buf[4096];
	int fd;

	SCRATCH();
	memset(buf, 'd', sizeof(buf));
	fd = CK_SYS(open("f", O_RDWR | O_CREAT, 0644));
	/* hole, data at 1 MiB, hole, data at 3 MiB, end at 4 MiB */
	ck_assert_int_eq(CK_SYS(pwrite(fd, buf, sizeof(buf), mib)), 4096);
	ck_assert_int_eq(CK_SYS(pwrite(fd, buf, sizeof(buf), 3 * mib)), 4096);
	CK_SYS(ftruncate(fd, 4 * mib));
	CK_SYS(fsync(fd));
	ck_assert_int_eq(CK_SYS(lseek(fd, 0, SEEK_DATA)), mib);
	ck_assert_int_eq(CK_SYS(lseek(fd, 0, SEEK_HOLE)), 0);
	ck_assert_int_eq(CK_SYS(lseek(fd, mib, SEEK_HOLE)), mib + 4096);
	ck_assert_int_eq(CK_SYS(lseek(fd, mib + 100, SEEK_DATA)), mib + 100);
	ck_assert_int_eq(CK_SYS(lseek(fd, mib + 4096, SEEK_DATA)), 3 * mib);
	ck_assert_int_eq(CK_SYS(lseek(fd, 3 * mib, SEEK_HOLE)), 3 * mib + 4096);
	/* the tail is a hole up to the end of file, past it nothing */
	CK_SYS_ERR(lseek(fd, 3 * mib + 4096, SEEK_DATA), ENXIO);
	ck_assert_int_eq(CK_SYS(lseek(fd, 3 * mib + 8192, SEEK_HOLE)),
			 3 * mib + 8192);
	CK_SYS_ERR(lseek(fd, 4 * mib, SEEK_HOLE), ENXIO);
	CK_SYS_ERR(lseek(fd, 5 * mib, SEEK_DATA), ENXIO);
	CK_SYS(close(fd));
}
END_TEST

/* ---- locks between processes -------------------------------------- */

START_TEST(test_flock)
{
	pid_t pid;
	int fd;

	SCRATCH();
	put_str("f", "x");
	fd = CK_SYS(open("f", O_RDWR));
	CK_SYS(flock(fd, LOCK_EX));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDONLY));

		CK_SYS_ERR(flock(cfd, LOCK_EX | LOCK_NB), EWOULDBLOCK);
		CK_SYS_ERR(flock(cfd, LOCK_SH | LOCK_NB), EWOULDBLOCK);
		child_exit();
	}
	wait_ok(pid);

	/* shared locks share, and exclude an exclusive one */
	CK_SYS(flock(fd, LOCK_SH));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDONLY));
		int cfd2 = CK_SYS(open("f", O_RDONLY));

		CK_SYS(flock(cfd, LOCK_SH | LOCK_NB));
		CK_SYS_ERR(flock(cfd2, LOCK_EX | LOCK_NB), EWOULDBLOCK);
		child_exit();
	}
	wait_ok(pid);

	/* closing the descriptor releases the lock */
	CK_SYS(flock(fd, LOCK_EX));
	CK_SYS(close(fd));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDONLY));

		CK_SYS(flock(cfd, LOCK_EX | LOCK_NB));
		child_exit();
	}
	wait_ok(pid);
}
END_TEST

START_TEST(test_fcntl_lock)
{
	struct flock fl;
	pid_t pid, me = getpid();
	int fd, fd2;

	SCRATCH();
	put_str("f", "0123456789");
	fd = CK_SYS(open("f", O_RDWR));
	fl = (struct flock){ .l_type = F_WRLCK,
			     .l_whence = SEEK_SET,
			     .l_start = 2,
			     .l_len = 4 };
	CK_SYS(fcntl(fd, F_SETLK, &fl));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDWR));
		struct flock c;

		/* a conflicting lock is refused, and the holder named */
		c = (struct flock){ .l_type = F_RDLCK,
				    .l_whence = SEEK_SET,
				    .l_start = 0,
				    .l_len = 3 };
		ck_assert_msg(fcntl(cfd, F_SETLK, &c) == -1 &&
				      (errno == EAGAIN || errno == EACCES),
			      "conflicting F_SETLK: %s", errname(errno));
		c = (struct flock){ .l_type = F_WRLCK,
				    .l_whence = SEEK_SET,
				    .l_start = 0,
				    .l_len = 0 };
		CK_SYS(fcntl(cfd, F_GETLK, &c));
		ck_assert_int_eq(c.l_type, F_WRLCK);
		ck_assert_int_eq(c.l_pid, me);
		ck_assert_int_eq(c.l_start, 2);
		ck_assert_int_eq(c.l_len, 4);
		/* a range that does not overlap is free */
		c = (struct flock){ .l_type = F_WRLCK,
				    .l_whence = SEEK_SET,
				    .l_start = 6,
				    .l_len = 4 };
		CK_SYS(fcntl(cfd, F_GETLK, &c));
		ck_assert_int_eq(c.l_type, F_UNLCK);
		CK_SYS(fcntl(cfd, F_SETLK, &c));
		child_exit();
	}
	wait_ok(pid);

	/* read locks are shared */
	fl.l_type = F_RDLCK;
	CK_SYS(fcntl(fd, F_SETLK, &fl));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDONLY));
		struct flock c = { .l_type = F_RDLCK,
				   .l_whence = SEEK_SET,
				   .l_start = 0,
				   .l_len = 0 };

		CK_SYS(fcntl(cfd, F_SETLK, &c));
		c.l_type = F_WRLCK;
		CK_SYS(fcntl(cfd, F_GETLK, &c));
		ck_assert_int_eq(c.l_type, F_RDLCK);
		ck_assert_int_eq(c.l_pid, me);
		child_exit();
	}
	wait_ok(pid);

	/* closing any descriptor of the file drops the process's locks */
	fd2 = CK_SYS(open("f", O_RDONLY));
	CK_SYS(close(fd2));
	pid = fork_child();
	if (pid == 0) {
		int cfd = CK_SYS(open("f", O_RDWR));
		struct flock c = { .l_type = F_WRLCK,
				   .l_whence = SEEK_SET,
				   .l_start = 0,
				   .l_len = 0 };

		CK_SYS(fcntl(cfd, F_SETLK, &c));
		child_exit();
	}
	wait_ok(pid);
	CK_SYS(close(fd));
}
END_TEST

/* ---- mmap ---------------------------------------------------------- */

START_TEST(test_mmap)
{
	const size_t len = 3 * 4096 + 100;
	char *p, *q, buf[64];
	int fd;

	SCRATCH();
	put_pattern("f", len, 3);
	fd = CK_SYS(open("f", O_RDWR));
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	q = malloc(len);
	ck_assert_int_eq(CK_SYS(pread(fd, q, len, 0)), (long)len);
	ck_assert_int_eq(memcmp(p, q, len), 0);
	CK_SYS(munmap(p, len));

	/* a shared writable mapping writes the file */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	memcpy(p + 4090, "mapped write", 12);
	memcpy(p + len - 4, "END!", 4);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 12, 4090)), 12);
	ck_assert_int_eq(memcmp(buf, "mapped write", 12), 0);
	CK_SYS(msync(p, len, MS_SYNC));
	CK_SYS(munmap(p, len));
	CK_SYS(close(fd));
	fd = CK_SYS(open("f", O_RDONLY));
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 12, 4090)), 12);
	ck_assert_int_eq(memcmp(buf, "mapped write", 12), 0);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 4, len - 4)), 4);
	ck_assert_int_eq(memcmp(buf, "END!", 4), 0);
	ck_assert_int_eq(stat_ok("f").st_size, (long)len);
	/* ... and, once synced, the backend file */
	{
		int bfd = CK_SYS(open(bpath("f"), O_RDONLY));

		ck_assert_int_eq(CK_SYS(pread(bfd, buf, 12, 4090)), 12);
		ck_assert_int_eq(memcmp(buf, "mapped write", 12), 0);
		CK_SYS(close(bfd));
	}

	/* a private mapping's writes stay private */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	memcpy(p, "private", 7);
	CK_SYS(munmap(p, len));
	ck_assert_int_eq(CK_SYS(pread(fd, buf, 7, 0)), 7);
	ck_assert_int_ne(memcmp(buf, "private", 7), 0);
	/* no shared writable mapping of a read-only descriptor */
	ck_assert_ptr_eq(mmap(NULL, len, PROT_WRITE, MAP_SHARED, fd, 0),
			 MAP_FAILED);
	ck_assert_int_eq(errno, EACCES);
	CK_SYS(close(fd));
	free(q);
}
END_TEST

/* ---- a file unlinked while open ------------------------------------ */

START_TEST(test_unlinked_open)
{
	char buf[64];
	struct stat st;
	int fd, fd2;

	SCRATCH();
	put_str("f", "still here");
	fd = CK_SYS(open("f", O_RDWR));
	fd2 = CK_SYS(open("f", O_RDONLY));
	CK_SYS(unlink("f"));
	expect_enoent("f");
	expect_enoent(bpath("f"));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, 10);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, sizeof(buf), 0)), 10);
	ck_assert_int_eq(memcmp(buf, "still here", 10), 0);
	ck_assert_int_eq(CK_SYS(pwrite(fd, " and there", 10, 10)), 10);
	ck_assert_int_eq(CK_SYS(pread(fd2, buf, sizeof(buf), 0)), 20);
	ck_assert_int_eq(memcmp(buf, "still here and there", 20), 0);
	CK_SYS(fstat(fd2, &st));
	ck_assert_int_eq(st.st_size, 20);
	ck_assert_int_eq(st.st_nlink, 0);
	CK_SYS(ftruncate(fd, 5));
	CK_SYS(fchmod(fd, 0600));
	CK_SYS(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	CK_SYS(fsync(fd));
	/* the name can be used again, for another file */
	put_str("f", "new");
	CK_SYS(fstat(fd, &st));
	ck_assert_uint_ne(st.st_ino, stat_ok("f").st_ino);
	ck_assert_int_eq(CK_SYS(pread(fd, buf, sizeof(buf), 0)), 5);
	CK_SYS(close(fd));
	CK_SYS(close(fd2));
	expect_str("f", "new");

	/* likewise a directory removed while open lists nothing */
	CK_SYS(mkdir("d", 0755));
	{
		int dfd = CK_SYS(open("d", O_RDONLY | O_DIRECTORY));

		CK_SYS(rmdir("d"));
		CK_SYS(fstat(dfd, &st));
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_int_eq(st.st_nlink, 0);
		CK_SYS_ERR(openat(dfd, "x", O_RDWR | O_CREAT, 0644), ENOENT);
		CK_SYS(close(dfd));
	}
}
END_TEST

/* ---- errors ------------------------------------------------------- */

START_TEST(test_eloop)
{
	char buf[16];
	struct stat st;
	int fd;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(symlink("f", "l"));
	CK_SYS_ERR(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
	CK_SYS_ERR(open("l", O_WRONLY | O_CREAT | O_NOFOLLOW, 0644), ELOOP);
	/* O_NOFOLLOW on what is not a symlink opens it */
	fd = CK_SYS(open("f", O_RDONLY | O_NOFOLLOW));
	CK_SYS(close(fd));
	fd = CK_SYS(open("f", O_WRONLY | O_CREAT | O_NOFOLLOW, 0644));
	CK_SYS(close(fd));
	fd = CK_SYS(open(".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
	CK_SYS(close(fd));
	/* O_NOFOLLOW only concerns the last component */
	CK_SYS(mkdir("d", 0755));
	put_str("d/g", "g");
	CK_SYS(symlink("d", "dl"));
	fd = CK_SYS(open("dl/g", O_RDONLY | O_NOFOLLOW));
	CK_SYS(close(fd));
	/* O_PATH | O_NOFOLLOW opens the link itself */
	fd = CK_SYS(open("l", O_PATH | O_NOFOLLOW));
	CK_SYS(fstat(fd, &st));
	ck_assert(S_ISLNK(st.st_mode));
	CK_SYS(close(fd));

	/* loops */
	CK_SYS(symlink("self", "self"));
	CK_SYS(symlink("b", "a"));
	CK_SYS(symlink("a", "b"));
	CK_SYS_ERR(stat("self", &st), ELOOP);
	CK_SYS_ERR(stat("a", &st), ELOOP);
	CK_SYS_ERR(open("b", O_RDONLY), ELOOP);
	CK_SYS_ERR(open("a", O_WRONLY | O_CREAT, 0644), ELOOP);
	CK_SYS_ERR(stat("a/x", &st), ELOOP);
	CK_SYS_ERR(chmod("a", 0644), ELOOP);
	ck_assert(S_ISLNK(lstat_ok("a").st_mode));
	ck_assert_int_eq(CK_SYS(readlink("a", buf, sizeof(buf))), 1);
	CK_SYS(unlink("a"));
	CK_SYS_ERR(stat("b", &st), ENOENT);
}
END_TEST

START_TEST(test_enametoolong)
{
	char name[258], path[300];
	struct stat st;
	int fd;

	SCRATCH();
	memset(name, 'n', 256);
	name[256] = '\0';
	CK_SYS_ERR(open(name, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	CK_SYS_ERR(mkdir(name, 0755), ENAMETOOLONG);
	CK_SYS_ERR(stat(name, &st), ENAMETOOLONG);
	CK_SYS_ERR(symlink("x", name), ENAMETOOLONG);
	CK_SYS_ERR(mknod(name, S_IFIFO | 0644, 0), ENAMETOOLONG);
	put_str("f", "x");
	CK_SYS_ERR(rename("f", name), ENAMETOOLONG);
	CK_SYS_ERR(link("f", name), ENAMETOOLONG);
	CK_SYS(mkdir("d", 0755));
	snprintf(path, sizeof(path), "d/%s", name);
	CK_SYS_ERR(open(path, O_RDONLY), ENAMETOOLONG);
	/* 255 bytes is fine */
	name[255] = '\0';
	fd = CK_SYS(open(name, O_WRONLY | O_CREAT, 0644));
	CK_SYS(close(fd));
	ck_assert(S_ISREG(stat_ok(name).st_mode));
	ck_assert(S_ISREG(stat_ok(bpath(name)).st_mode));
	snprintf(path, sizeof(path), "d/%s", name);
	CK_SYS(rename(name, path));
	ck_assert(S_ISREG(stat_ok(path).st_mode));
	CK_SYS(unlink(path));
	expect_enoent(path);
}
END_TEST

START_TEST(test_errors)
{
	struct stat st;
	char buf[8];
	int fd;

	SCRATCH();
	put_str("f", "x");
	CK_SYS(mkdir("d", 0755));
	put_str("d/in", "x");
	/* ENOENT */
	CK_SYS_ERR(stat("none", &st), ENOENT);
	CK_SYS_ERR(stat("none/x", &st), ENOENT);
	CK_SYS_ERR(chmod("none", 0644), ENOENT);
	CK_SYS_ERR(chown("none", 0, 0), ENOENT);
	CK_SYS_ERR(truncate("none", 0), ENOENT);
	CK_SYS_ERR(unlink("d/none"), ENOENT);
	CK_SYS_ERR(rmdir("none"), ENOENT);
	CK_SYS_ERR(link("none", "x"), ENOENT);
	CK_SYS_ERR(symlink("x", "none/x"), ENOENT);
	CK_SYS_ERR(readlink("none", buf, sizeof(buf)), ENOENT);
	CK_SYS_ERR(utimensat(AT_FDCWD, "none", NULL, 0), ENOENT);
	/* EEXIST */
	CK_SYS_ERR(mkdir("f", 0755), EEXIST);
	CK_SYS_ERR(mkdir("d", 0755), EEXIST);
	CK_SYS_ERR(mknod("f", S_IFREG | 0644, 0), EEXIST);
	CK_SYS_ERR(link("f", "d"), EEXIST);
	CK_SYS_ERR(symlink("f", "f"), EEXIST);
	CK_SYS_ERR(open("d", O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	/* ENOTEMPTY */
	CK_SYS_ERR(rmdir("d"), ENOTEMPTY);
	CK_SYS(mkdir("e", 0755));
	CK_SYS(mkdir("e/sub", 0755));
	CK_SYS_ERR(rename("e", "d"), ENOTEMPTY);
	/* ENOTDIR */
	CK_SYS_ERR(stat("f/x", &st), ENOTDIR);
	CK_SYS_ERR(mkdir("f/x", 0755), ENOTDIR);
	CK_SYS_ERR(rmdir("f"), ENOTDIR);
	CK_SYS_ERR(rename("d", "f"), ENOTDIR);
	CK_SYS_ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	CK_SYS_ERR(unlinkat(AT_FDCWD, "f", AT_REMOVEDIR), ENOTDIR);
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS_ERR(openat(fd, "x", O_RDONLY), ENOTDIR);
	CK_SYS(close(fd));
	/* EISDIR */
	CK_SYS_ERR(open("d", O_WRONLY), EISDIR);
	CK_SYS_ERR(open("d", O_RDWR), EISDIR);
	CK_SYS_ERR(unlink("d"), EISDIR);
	CK_SYS_ERR(rename("f", "d"), EISDIR);
	CK_SYS_ERR(truncate("d", 0), EISDIR);
	/* EINVAL */
	CK_SYS_ERR(rename("d", "d/in2"), EINVAL);
	CK_SYS(mkdir("d/sub", 0755));
	CK_SYS_ERR(rename("d", "d/sub/d"), EINVAL);
	CK_SYS_ERR(rmdir("d/sub/."), EINVAL);
	CK_SYS_ERR(readlink("f", buf, sizeof(buf)), EINVAL);
	/* EBADF */
	CK_SYS_ERR(fchmod(-1, 0644), EBADF);
	CK_SYS_ERR(fstat(1000, &st), EBADF);
	fd = CK_SYS(open("f", O_RDONLY));
	CK_SYS(close(fd));
	CK_SYS_ERR(pread(fd, buf, 1, 0), EBADF);
	CK_SYS_ERR(fsync(fd), EBADF);
	/* EPERM for root: hard links to directories */
	CK_SYS_ERR(link("d", "dlink"), EPERM);
	/* nothing was changed by all these */
	expect_str("f", "x");
	expect_str("d/in", "x");
	ck_assert(S_ISDIR(stat_ok("e/sub").st_mode));
}
END_TEST

/* ---- an unprivileged caller ---------------------------------------- */

START_TEST(test_unprivileged)
{
	struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
	pid_t pid;

	SCRATCH();
	put_str("secret", "root only");
	CK_SYS(chmod("secret", 0600));
	put_str("readable", "r");
	CK_SYS(mkdir("private", 0700));
	put_str("private/x", "x");
	CK_SYS(mkdir("tmp", 0755));
	CK_SYS(chmod("tmp", 01777));
	put_str("tmp/rootfile", "mine");
	CK_SYS(chmod("tmp/rootfile", 0666));
	CK_SYS(mkdir("ro", 0755));

	pid = fork_as(&nobody);
	if (pid == 0) {
		struct stat st;
		int fd;

		CK_SYS_ERR(open("secret", O_RDONLY), EACCES);
		CK_SYS_ERR(open("secret", O_WRONLY), EACCES);
		CK_SYS_ERR(open("readable", O_WRONLY), EACCES);
		CK_SYS_ERR(open("readable", O_RDWR | O_TRUNC), EACCES);
		CK_SYS_ERR(truncate("readable", 0), EACCES);
		fd = CK_SYS(open("readable", O_RDONLY));
		CK_SYS(close(fd));
		CK_SYS_ERR(stat("private/x", &st), EACCES);
		CK_SYS(stat("private", &st));
		ck_assert_ptr_null(opendir("private"));
		ck_assert_int_eq(errno, EACCES);
		CK_SYS_ERR(open("ro/new", O_WRONLY | O_CREAT, 0644), EACCES);
		CK_SYS_ERR(mkdir("ro/new", 0755), EACCES);
		CK_SYS_ERR(unlink("readable"), EACCES);
		CK_SYS_ERR(rename("readable", "ro/r"), EACCES);
		CK_SYS_ERR(setxattr("readable", "user.x", "1", 1, 0), EACCES);
		/* only the owner may change what the owner decides */
		CK_SYS_ERR(chmod("secret", 0666), EPERM);
		CK_SYS_ERR(chmod("readable", 0666), EPERM);
		CK_SYS_ERR(chown("readable", NOBODY_ID, NOBODY_ID), EPERM);
		CK_SYS_ERR(chown("readable", (uid_t)-1, NOBODY_ID), EPERM);
		CK_SYS_ERR(utimensat(AT_FDCWD, "readable", ts, 0), EPERM);
		CK_SYS_ERR(utimensat(AT_FDCWD, "readable", NULL, 0), EACCES);
		CK_SYS_ERR(mknod("tmp/dev", S_IFCHR | 0600, makedev(1, 3)),
			   EPERM);
		/* a sticky directory protects other users' files */
		CK_SYS_ERR(unlink("tmp/rootfile"), EPERM);
		CK_SYS_ERR(rename("tmp/rootfile", "tmp/other"), EPERM);
		fd = CK_SYS(open("tmp/rootfile", O_WRONLY | O_APPEND));
		ck_assert_int_eq(CK_SYS(write(fd, "+", 1)), 1);
		CK_SYS(close(fd));
		/* but not one's own */
		put_str("tmp/mine", "nobody");
		expect_owner("tmp/mine", NOBODY_ID, NOBODY_ID);
		CK_SYS(chmod("tmp/mine", 0600));
		CK_SYS(rename("tmp/mine", "tmp/mine2"));
		CK_SYS(unlink("tmp/mine2"));
		child_exit();
	}
	wait_ok(pid);
	expect_str("secret", "root only");
	expect_str("tmp/rootfile", "mine+");
	expect_mode("secret", 0600);
	expect_mode("readable", 0644);
	expect_enoent("tmp/mine2");
}
END_TEST

/* ---- confinement --------------------------------------------------- */

/*
 * A symlink in the backend that points above the backend root names, in
 * the backend, a file next to the backend.  Through the mount the kernel
 * resolves it from the mount's side; chrooted into the mount, ".." at the
 * root stays at the root, so the link dangles there.  A file system that
 * followed the link itself would reach the file outside.
 */
START_TEST(test_confinement)
{
	char outside[PATH_MAX], target[NAME_MAX + 1], text[PATH_MAX];
	pid_t pid;

	SCRATCH();
	snprintf(target, sizeof(target), "cachefs-posix-outside.%d",
		 (int)getpid());
	snprintf(outside, sizeof(outside), "%s/../%s", test_backend, target);
	snprintf(text, sizeof(text), "../../%s", target);
	CK_SYS(symlink(text, bpath("link")));
	put_str(outside, "outside");
	/* in the backend, the link reaches the file */
	expect_str(bpath("link"), "outside");

	pid = fork_child();
	if (pid == 0) {
		char buf[PATH_MAX];
		struct stat st;
		ssize_t n;

		CK_SYS(chroot(test_root));
		CK_SYS_ERR(open("link", O_RDONLY), ENOENT);
		CK_SYS_ERR(stat("link", &st), ENOENT);
		CK_SYS_ERR(access("link", F_OK), ENOENT);
		ck_assert(S_ISLNK(lstat_ok("link").st_mode));
		n = CK_SYS(readlink("link", buf, sizeof(buf) - 1));
		buf[n] = '\0';
		ck_assert_str_eq(buf, text);
		child_exit();
	}
	unlink(outside);
	wait_ok(pid);
	expect_enoent(outside);
}
END_TEST

static Suite *posix_suite(void)
{
	Suite *s = suite_create("posix");
	TCase *tc;

	tc = tcase_scratch(s, "attr");
	tcase_add_test(tc, test_stat_kinds);
	tcase_add_test(tc, test_chmod);
	tcase_add_test(tc, test_chown);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_utimens);
	tcase_add_test(tc, test_readlink);

	tc = tcase_scratch(s, "names");
	tcase_add_test(tc, test_mknod);
	tcase_add_test(tc, test_special_attr);
	tcase_add_test(tc, test_mkdir_rmdir);
	tcase_add_test(tc, test_unlink);
	tcase_add_test(tc, test_symlink);
	tcase_add_test(tc, test_rename_basic);
	tcase_add_test(tc, test_rename_self);
	tcase_add_test(tc, test_rename_flags);
	tcase_add_test(tc, test_link);

	tc = tcase_scratch(s, "io");
	tcase_add_test(tc, test_open_flags);
	tcase_add_test(tc, test_read_write);
	tcase_add_test(tc, test_o_direct);
	tcase_add_test(tc, test_fsync);
	tcase_add_test(tc, test_readdir);
	tcase_add_test(tc, test_statvfs);
	tcase_add_test(tc, test_xattr);
	tcase_add_test(tc, test_access);
	tcase_add_test(tc, test_fallocate);
	tcase_add_test(tc, test_copy_file_range);
	tcase_add_test(tc, test_seek_data_hole);
	tcase_add_test(tc, test_flock);
	tcase_add_test(tc, test_fcntl_lock);
	tcase_add_test(tc, test_mmap);
	tcase_add_test(tc, test_unlinked_open);

	tc = tcase_scratch(s, "errors");
	tcase_add_test(tc, test_eloop);
	tcase_add_test(tc, test_enametoolong);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_unprivileged);
	tcase_add_test(tc, test_confinement);
	return s;
}

int main(int argc, char **argv)
{
	return run_suite(posix_suite(), argc, argv);
}
