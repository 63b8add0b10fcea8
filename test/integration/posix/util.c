// SPDX-License-Identifier: MIT
#include "util.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_root;
const char *test_backend;
bool test_fsuid_only;

static char scratch_name[NAME_MAX + 1]; /* "" when no scratch directory */

const char *errname(int err)
{
	const char *s = err ? strerrorname_np(err) : "no error";

	return s ? s : "unknown errno";
}

void scratch(const char *name)
{
	char path[PATH_MAX];

	snprintf(scratch_name, sizeof(scratch_name), "%s", name);
	snprintf(path, sizeof(path), "%s/%s", test_root, name);
	ck_assert_msg(rm_rf(path) == 0, "cannot clear %s: %s", path,
		      errname(errno));
	umask(022);
	CK_SYS(mkdir(path, 0755));
	CK_SYS(chmod(path, 0755)); /* in case the root directory is setgid */
	CK_SYS(chdir(path));
}

/* Checked teardown: removing whatever the test made must work too. */
void scratch_teardown(void)
{
	char path[PATH_MAX];

	if (!scratch_name[0])
		return;
	snprintf(path, sizeof(path), "%s/%s", test_root, scratch_name);
	CK_SYS(chdir(test_root));
	ck_assert_msg(rm_rf(path) == 0, "cannot remove %s: %s", path,
		      errname(errno));
}

/* The backend path of rel (relative to the scratch directory). */
const char *bpath(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s/%s", test_backend, scratch_name, rel);
	return b;
}

/* The absolute path of rel (relative to the scratch directory). */
const char *mpath(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s/%s", test_root, scratch_name, rel);
	return b;
}

pid_t fork_child(void)
{
	pid_t pid = check_fork();

	ck_assert_msg(pid >= 0, "fork: %s", errname(errno));
	return pid;
}

/*
 * Fork; the child (return 0) runs as u, with no capabilities left.
 *
 * When only the mounting user may enter the tree, the child keeps its
 * real, effective and saved ids but takes u's file system ids and groups:
 * the kernel then checks permissions, and FUSE sends requests, as u, and
 * changing the fsuid from 0 drops every capability that overrides file
 * permissions (capabilities(7)).
 */
pid_t fork_as(const struct user *u)
{
	pid_t pid = fork_child();

	if (pid != 0)
		return pid;
	CK_SYS(setgroups(u->ngroups, u->groups));
	if (test_fsuid_only) {
		setfsgid(u->gid);
		setfsuid(u->uid);
		ck_assert_int_eq(setfsgid(-1), u->gid);
		ck_assert_int_eq(setfsuid(-1), u->uid);
	} else {
		CK_SYS(setresgid(u->gid, u->gid, u->gid));
		CK_SYS(setresuid(u->uid, u->uid, u->uid));
		ck_assert_int_eq(geteuid(), u->uid);
	}
	return 0;
}

/* The end of a forked child whose checks all passed. */
void child_exit(void)
{
	_exit(0);
}

/* Wait for a child from fork_child()/fork_as(); it must exit 0. */
void wait_ok(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child %d failed (status %#x)", (int)pid, status);
}

void put_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = CK_SYS(open(path, O_WRONLY | O_CREAT | O_TRUNC, mode));

	ck_assert_int_eq(CK_SYS(write(fd, data, len)), (long)len);
	CK_SYS(close(fd));
}

void put_str(const char *path, const char *s)
{
	put_file(path, s, strlen(s), 0644);
}

void expect_str(const char *path, const char *s)
{
	char buf[4096];
	int fd = CK_SYS(open(path, O_RDONLY));
	ssize_t n = CK_SYS(read(fd, buf, sizeof(buf) - 1));

	CK_SYS(close(fd));
	buf[n] = '\0';
	ck_assert_str_eq(buf, s);
}

struct stat lstat_ok(const char *path)
{
	struct stat st;

	CK_SYS(lstat(path, &st));
	return st;
}

struct stat stat_ok(const char *path)
{
	struct stat st;

	CK_SYS(stat(path, &st));
	return st;
}

void expect_enoent(const char *path)
{
	struct stat st;

	CK_SYS_ERR(lstat(path, &st), ENOENT);
}

/* Ownership of rel, as seen through the mount and in the backend. */
void expect_owner(const char *rel, uid_t uid, gid_t gid)
{
	struct stat st = lstat_ok(rel), bst = lstat_ok(bpath(rel));

	ck_assert_msg(st.st_uid == uid && st.st_gid == gid,
		      "%s owned by %u:%u, expected %u:%u", rel, st.st_uid,
		      st.st_gid, uid, gid);
	ck_assert_msg(bst.st_uid == uid && bst.st_gid == gid,
		      "backend %s owned by %u:%u, expected %u:%u", rel,
		      bst.st_uid, bst.st_gid, uid, gid);
}

/* Permission bits (07777) of rel, through the mount and in the backend. */
void expect_mode(const char *rel, mode_t mode)
{
	struct stat st = lstat_ok(rel), bst = lstat_ok(bpath(rel));

	ck_assert_msg((st.st_mode & 07777) == mode,
		      "%s has mode %04o, not %04o", rel, st.st_mode & 07777,
		      mode);
	ck_assert_msg((bst.st_mode & 07777) == mode,
		      "backend %s has mode %04o, not %04o", rel,
		      bst.st_mode & 07777, mode);
}

bool ts_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec ||
	       (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/* Lets the coarse file system clock tick between two timestamps. */
void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove a tree (not following symlinks); 0 if gone or never there. */
int rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	return nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* A test case whose tests each get a scratch directory, removed after. */
TCase *tcase_scratch(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, NULL, scratch_teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

/* Can an unprivileged user reach the directory under test at all? */
static bool others_may_enter(void)
{
	struct stat st;
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 ||
		    setresgid(60001, 60001, 60001) < 0 ||
		    setresuid(60001, 60001, 60001) < 0)
			_exit(2);
		_exit(stat(test_root, &st) < 0 && errno == EACCES);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) > 1) {
		fprintf(stderr, "cannot probe %s as uid 60001\n", test_root);
		exit(2);
	}
	return WEXITSTATUS(status) == 0;
}

int run_suite(Suite *s, int argc, char **argv)
{
	static char root[PATH_MAX], backend[PATH_MAX];
	const char *b = getenv("CACHEFS_BACKEND");
	struct stat st;
	SRunner *sr;
	int failed;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
		return 2;
	}
	if (!realpath(argv[1], root) || stat(root, &st) < 0) {
		perror(argv[1]);
		return 2;
	}
	if (!(st.st_mode & S_IXOTH)) {
		fprintf(stderr, "%s: must be searchable by all (chmod 755)\n",
			root);
		return 2;
	}
	if (b && *b && !realpath(b, backend)) {
		perror(b);
		return 2;
	}
	test_root = root;
	test_backend = b && *b ? backend : root;
	test_fsuid_only = !others_may_enter();
	if (test_fsuid_only)
		printf("%s: only its owner may enter; other users are "
		       "emulated by fsuid\n",
		       root);

	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
