// SPDX-License-Identifier: MIT
/*
 * multiuser DIRECTORY -- permissions and ownership between users, checked
 * through DIRECTORY (a cachefs mount with allow_other, or any plain
 * directory for reference).  Run as root.
 *
 * Two unprivileged users act in forked children: A (uid/gid 60001, also
 * in group 60010) and B (uid/gid 60002).  Root prepares each scratch
 * directory (see util.h) and checks the outcome, through the mount and in
 * the backend.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define UID_A 60001
#define UID_B 60002
#define GID_SHARED 60010 /* A's supplementary group */

static const struct user user_a = { UID_A, UID_A, 1, { GID_SHARED } };
static const struct user user_b = { UID_B, UID_B, 0, { 0 } };

/* A directory owned by uid:gid with the given mode, made by root. */
static void make_dir(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	CK_SYS(mkdir(path, 0700));
	CK_SYS(chown(path, uid, gid));
	CK_SYS(chmod(path, mode));
}

START_TEST(test_private_files)
{
	pid_t pid;

	SCRATCH();
	make_dir("a", UID_A, UID_A, 0755);
	pid = fork_as(&user_a);
	if (pid == 0) {
		umask(022);
		put_file("a/secret", "a's", 3, 0600);
		put_file("a/public", "all", 3, 0644);
		CK_SYS(mkdir("a/closed", 0700));
		put_str("a/closed/f", "x");
		CK_SYS(mkdir("a/open", 0755));
		put_str("a/open/f", "x");
		child_exit();
	}
	wait_ok(pid);
	expect_mode("a/secret", 0600);
	expect_owner("a/secret", UID_A, UID_A);

	pid = fork_as(&user_b);
	if (pid == 0) {
		struct stat st;
		DIR *dp;
		int fd;

		CK_SYS_ERR(open("a/secret", O_RDONLY), EACCES);
		CK_SYS_ERR(open("a/secret", O_WRONLY), EACCES);
		CK_SYS_ERR(open("a/secret", O_RDWR | O_APPEND), EACCES);
		CK_SYS_ERR(truncate("a/secret", 0), EACCES);
		CK_SYS_ERR(open("a/public", O_WRONLY), EACCES);
		expect_str("a/public", "all");
		/* a 0700 directory can be neither listed nor entered */
		dp = opendir("a/closed");
		ck_assert_ptr_null(dp);
		ck_assert_int_eq(errno, EACCES);
		CK_SYS_ERR(stat("a/closed/f", &st), EACCES);
		CK_SYS_ERR(open("a/closed/f", O_RDONLY), EACCES);
		CK_SYS_ERR(chdir("a/closed"), EACCES);
		CK_SYS(stat("a/closed", &st));
		dp = opendir("a/open");
		ck_assert_ptr_nonnull(dp);
		CK_SYS(closedir(dp));
		expect_str("a/open/f", "x");
		/* nor written into, when it is not B's */
		CK_SYS_ERR(open("a/new", O_WRONLY | O_CREAT, 0644), EACCES);
		CK_SYS_ERR(unlink("a/public"), EACCES);
		fd = open("a/secret", O_PATH);
		ck_assert_int_ge(fd, 0);
		CK_SYS(close(fd));
		child_exit();
	}
	wait_ok(pid);
	expect_str("a/secret", "a's");
	expect_str("a/public", "all");
	expect_enoent("a/new");
}
END_TEST

START_TEST(test_ownership)
{
	pid_t pid;

	SCRATCH();
	CK_SYS(chmod(".", 0777));
	pid = fork_as(&user_a);
	if (pid == 0) {
		int fd;

		umask(022);
		put_str("file", "a");
		fd = CK_SYS(open("excl", O_WRONLY | O_CREAT | O_EXCL, 0600));
		CK_SYS(close(fd));
		CK_SYS(mkdir("dir", 0755));
		put_str("dir/inner", "a");
		CK_SYS(symlink("file", "link"));
		CK_SYS(mkfifo("fifo", 0644));
		CK_SYS(mknod("node", S_IFREG | 0644, 0));
		CK_SYS(link("file", "hard"));
		CK_SYS(rename("excl", "renamed"));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("file", UID_A, UID_A);
	expect_owner("renamed", UID_A, UID_A);
	expect_owner("dir", UID_A, UID_A);
	expect_owner("dir/inner", UID_A, UID_A);
	expect_owner("link", UID_A, UID_A);
	expect_owner("fifo", UID_A, UID_A);
	expect_owner("node", UID_A, UID_A);
	expect_owner("hard", UID_A, UID_A);
	ck_assert(S_ISLNK(lstat_ok(bpath("link")).st_mode));
	ck_assert(S_ISFIFO(lstat_ok(bpath("fifo")).st_mode));
	ck_assert(S_ISDIR(lstat_ok(bpath("dir")).st_mode));
	ck_assert_int_eq(stat_ok("file").st_nlink, 2);

	/* and B's are B's, side by side */
	pid = fork_as(&user_b);
	if (pid == 0) {
		put_str("bfile", "b");
		CK_SYS(mkdir("bdir", 0700));
		CK_SYS(symlink("bfile", "blink"));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("bfile", UID_B, UID_B);
	expect_owner("bdir", UID_B, UID_B);
	expect_owner("blink", UID_B, UID_B);
}
END_TEST

START_TEST(test_setgid_dir)
{
	pid_t pid;

	SCRATCH();
	make_dir("sgid", 0, GID_SHARED, 02777);
	pid = fork_as(&user_a);
	if (pid == 0) {
		int fd;

		umask(022);
		put_str("sgid/f", "a");
		CK_SYS(mkdir("sgid/sub", 0755));
		put_str("sgid/sub/g", "a");
		CK_SYS(mkdir("sgid/sub/deeper", 0700));
		CK_SYS(symlink("f", "sgid/l"));
		CK_SYS(mkfifo("sgid/p", 0600));
		/* A belongs to the group: an explicit setgid bit is kept */
		fd = CK_SYS(open("sgid/keep", O_WRONLY | O_CREAT, 02755));
		CK_SYS(close(fd));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("sgid/f", UID_A, GID_SHARED);
	expect_owner("sgid/sub", UID_A, GID_SHARED);
	expect_owner("sgid/sub/g", UID_A, GID_SHARED);
	expect_owner("sgid/sub/deeper", UID_A, GID_SHARED);
	expect_owner("sgid/l", UID_A, GID_SHARED);
	expect_owner("sgid/p", UID_A, GID_SHARED);
	/* subdirectories inherit the setgid bit, files do not get it */
	expect_mode("sgid/sub", 02755);
	expect_mode("sgid/sub/deeper", 02700);
	expect_mode("sgid/f", 0644);
	expect_mode("sgid/keep", 02755);

	/* B is not in the group: the setgid bit it asks for is dropped */
	pid = fork_as(&user_b);
	if (pid == 0) {
		int fd;

		umask(022);
		fd = CK_SYS(open("sgid/bfile", O_WRONLY | O_CREAT, 02755));
		CK_SYS(close(fd));
		CK_SYS(mkdir("sgid/bdir", 0755));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("sgid/bfile", UID_B, GID_SHARED);
	expect_mode("sgid/bfile", 0755);
	expect_owner("sgid/bdir", UID_B, GID_SHARED);
	expect_mode("sgid/bdir", 02755);

	/* without the setgid bit, the creator's group is used */
	CK_SYS(mkdir("plain", 0777));
	CK_SYS(chown("plain", 0, GID_SHARED));
	CK_SYS(chmod("plain", 0777));
	pid = fork_as(&user_a);
	if (pid == 0) {
		put_str("plain/f", "a");
		CK_SYS(mkdir("plain/d", 0755));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("plain/f", UID_A, UID_A);
	expect_owner("plain/d", UID_A, UID_A);
	expect_mode("plain/d", 0755);
}
END_TEST

START_TEST(test_supplementary_group)
{
	pid_t pid;

	SCRATCH();
	/* writable, readable only through group GID_SHARED */
	make_dir("shared", 0, GID_SHARED, 0770);
	put_str("shared/readme", "group only");
	CK_SYS(chown("shared/readme", 0, GID_SHARED));
	CK_SYS(chmod("shared/readme", 0640));
	put_str("groupfile", "group only");
	CK_SYS(chown("groupfile", 0, GID_SHARED));
	CK_SYS(chmod("groupfile", 0660));

	pid = fork_as(&user_a);
	if (pid == 0) {
		int fd;

		umask(022);
		put_str("shared/a", "made by a");
		CK_SYS(mkdir("shared/adir", 0755));
		CK_SYS(symlink("a", "shared/alink"));
		CK_SYS(rename("shared/a", "shared/a2"));
		expect_str("shared/readme", "group only");
		fd = CK_SYS(open("groupfile", O_WRONLY | O_APPEND));
		ck_assert_int_eq(CK_SYS(write(fd, "+a", 2)), 2);
		CK_SYS(close(fd));
		CK_SYS(unlink("shared/alink"));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("shared/a2", UID_A, UID_A);
	expect_owner("shared/adir", UID_A, UID_A);
	expect_enoent("shared/alink");
	expect_str("shared/a2", "made by a");
	expect_str("groupfile", "group only+a");

	pid = fork_as(&user_b);
	if (pid == 0) {
		struct stat st;

		CK_SYS_ERR(open("shared/b", O_WRONLY | O_CREAT, 0644), EACCES);
		CK_SYS_ERR(stat("shared/a2", &st), EACCES);
		CK_SYS_ERR(open("groupfile", O_RDONLY), EACCES);
		child_exit();
	}
	wait_ok(pid);
	expect_enoent("shared/b");
}
END_TEST

START_TEST(test_chown_chmod)
{
	pid_t pid;

	SCRATCH();
	CK_SYS(chmod(".", 0777));
	pid = fork_as(&user_b);
	if (pid == 0) {
		put_str("bfile", "b");
		CK_SYS(chmod("bfile", 0666));
		child_exit();
	}
	wait_ok(pid);

	pid = fork_as(&user_a);
	if (pid == 0) {
		const struct timespec now[2] = { { 0, UTIME_NOW },
						 { 0, UTIME_NOW } };
		const struct timespec past[2] = { { 1000, 1 }, { 2000, 2 } };
		int fd;

		put_str("afile", "a");
		/* giving a file away is for root only */
		CK_SYS_ERR(chown("afile", UID_B, (gid_t)-1), EPERM);
		CK_SYS_ERR(chown("afile", UID_B, UID_B), EPERM);
		CK_SYS_ERR(lchown("afile", UID_B, (gid_t)-1), EPERM);
		/* only to a group A belongs to */
		CK_SYS_ERR(chown("afile", (uid_t)-1, UID_B), EPERM);
		CK_SYS(chown("afile", (uid_t)-1, GID_SHARED));
		CK_SYS(chown("afile", UID_A, UID_A));
		fd = CK_SYS(open("afile", O_RDONLY));
		CK_SYS(fchown(fd, (uid_t)-1, GID_SHARED));
		CK_SYS_ERR(fchown(fd, UID_B, (gid_t)-1), EPERM);
		CK_SYS(close(fd));
		/* B's file: neither chmod nor chown, though writable */
		CK_SYS_ERR(chmod("bfile", 0600), EPERM);
		CK_SYS_ERR(chown("bfile", UID_A, (gid_t)-1), EPERM);
		CK_SYS_ERR(chown("bfile", (uid_t)-1, GID_SHARED), EPERM);
		fd = CK_SYS(open("bfile", O_RDWR));
		CK_SYS_ERR(fchmod(fd, 0600), EPERM);
		CK_SYS(close(fd));
		/* write access allows "now" as times, only the owner others */
		CK_SYS(utimensat(AT_FDCWD, "bfile", NULL, 0));
		CK_SYS(utimensat(AT_FDCWD, "bfile", now, 0));
		CK_SYS_ERR(utimensat(AT_FDCWD, "bfile", past, 0), EPERM);
		CK_SYS(utimensat(AT_FDCWD, "afile", past, 0));
		/* but its own, even to 0 */
		CK_SYS(chmod("afile", 0000));
		CK_SYS(chmod("afile", 0640));
		child_exit();
	}
	wait_ok(pid);
	expect_owner("afile", UID_A, GID_SHARED);
	expect_mode("afile", 0640);
	ck_assert_int_eq(stat_ok(bpath("afile")).st_mtim.tv_sec, 2000);
	ck_assert_int_eq(stat_ok("afile").st_mtim.tv_nsec, 2);
	ck_assert_int_gt(stat_ok("bfile").st_mtim.tv_sec, 2000);
	expect_owner("bfile", UID_B, UID_B);
	expect_mode("bfile", 0666);
}
END_TEST

START_TEST(test_sticky)
{
	pid_t pid;

	SCRATCH();
	make_dir("tmp", 0, 0, 01777);
	pid = fork_as(&user_a);
	if (pid == 0) {
		put_str("tmp/afile", "a");
		CK_SYS(chmod("tmp/afile", 0666));
		CK_SYS(mkdir("tmp/adir", 0777));
		child_exit();
	}
	wait_ok(pid);

	pid = fork_as(&user_b);
	if (pid == 0) {
		int fd;

		CK_SYS_ERR(unlink("tmp/afile"), EPERM);
		CK_SYS_ERR(rmdir("tmp/adir"), EPERM);
		CK_SYS_ERR(rename("tmp/afile", "tmp/bname"), EPERM);
		put_str("tmp/bfile", "b");
		CK_SYS_ERR(rename("tmp/bfile", "tmp/afile"), EPERM);
		/* writable, so B may still change its contents */
		fd = CK_SYS(open("tmp/afile", O_WRONLY | O_APPEND));
		ck_assert_int_eq(CK_SYS(write(fd, "b", 1)), 1);
		CK_SYS(close(fd));
		/* and B's own files are B's to remove */
		CK_SYS(rename("tmp/bfile", "tmp/bfile2"));
		CK_SYS(unlink("tmp/bfile2"));
		child_exit();
	}
	wait_ok(pid);
	expect_str("tmp/afile", "ab");
	ck_assert(S_ISDIR(stat_ok("tmp/adir").st_mode));
	expect_enoent("tmp/bfile2");

	/* the owner of the file may */
	pid = fork_as(&user_a);
	if (pid == 0) {
		CK_SYS(unlink("tmp/afile"));
		CK_SYS(rmdir("tmp/adir"));
		child_exit();
	}
	wait_ok(pid);
	expect_enoent("tmp/afile");
	expect_enoent(bpath("tmp/afile"));
}
END_TEST

START_TEST(test_umask)
{
	pid_t pid;

	SCRATCH();
	CK_SYS(chmod(".", 0777));
	pid = fork_as(&user_a);
	if (pid == 0) {
		int fd;

		umask(027);
		fd = CK_SYS(open("f", O_WRONLY | O_CREAT, 0666));
		CK_SYS(close(fd));
		CK_SYS(mkdir("d", 0777));
		CK_SYS(mknod("n", S_IFREG | 0666, 0));
		CK_SYS(mkfifo("p", 0666));
		umask(0);
		fd = CK_SYS(open("g", O_WRONLY | O_CREAT, 0666));
		CK_SYS(close(fd));
		umask(0777);
		fd = CK_SYS(open("h", O_WRONLY | O_CREAT, 0666));
		CK_SYS(close(fd));
		/* chmod is not masked */
		CK_SYS(chmod("h", 0666));
		child_exit();
	}
	wait_ok(pid);
	expect_mode("f", 0640);
	expect_mode("d", 0750);
	expect_mode("n", 0640);
	expect_mode("p", 0640);
	expect_mode("g", 0666);
	expect_mode("h", 0666);
}
END_TEST

START_TEST(test_setuid_write)
{
	pid_t pid;

	SCRATCH();
	CK_SYS(chmod(".", 0777));
	pid = fork_as(&user_a);
	if (pid == 0) {
		struct stat st;
		int fd;

		put_str("suid", "#!");
		CK_SYS(chmod("suid", 04755));
		put_str("both", "#!");
		CK_SYS(chmod("both", 06755));
		/* setgid without group execute is a lock mark: kept */
		put_str("sgid", "#!");
		CK_SYS(chmod("sgid", 02644));

		fd = CK_SYS(open("suid", O_WRONLY | O_APPEND));
		ck_assert_int_eq(CK_SYS(write(fd, "x", 1)), 1);
		CK_SYS(fstat(fd, &st));
		ck_assert_int_eq(st.st_mode & 07777, 0755);
		CK_SYS(close(fd));
		fd = CK_SYS(open("both", O_WRONLY));
		ck_assert_int_eq(CK_SYS(pwrite(fd, "y", 1, 10)), 1);
		CK_SYS(close(fd));
		fd = CK_SYS(open("sgid", O_WRONLY));
		ck_assert_int_eq(CK_SYS(write(fd, "z", 1)), 1);
		CK_SYS(close(fd));
		/* a truncation by the owner clears it too */
		CK_SYS(chmod("suid", 04755));
		CK_SYS(truncate("suid", 1));
		child_exit();
	}
	wait_ok(pid);
	expect_mode("suid", 0755);
	expect_mode("both", 0755);
	expect_mode("sgid", 02644);
	ck_assert_int_eq(stat_ok("suid").st_size, 1);
	ck_assert_int_eq(stat_ok("both").st_size, 11);

	/* root's writes keep it */
	CK_SYS(chmod("suid", 04755));
	put_str("suid", "root");
	expect_mode("suid", 04755);
}
END_TEST

static Suite *multiuser_suite(void)
{
	Suite *s = suite_create("multiuser");
	TCase *tc;

	tc = tcase_scratch(s, "users");
	tcase_add_test(tc, test_private_files);
	tcase_add_test(tc, test_ownership);
	tcase_add_test(tc, test_setgid_dir);
	tcase_add_test(tc, test_supplementary_group);
	tcase_add_test(tc, test_chown_chmod);
	tcase_add_test(tc, test_sticky);
	tcase_add_test(tc, test_umask);
	tcase_add_test(tc, test_setuid_write);
	return s;
}

int main(int argc, char **argv)
{
	return run_suite(multiuser_suite(), argc, argv);
}
