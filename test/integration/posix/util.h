/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the POSIX and multi-user suites (Check, fork mode).
 *
 * Every test begins with SCRATCH(): it gets a fresh directory named after
 * the test under the directory under test and is chdir'ed into it, so a
 * test uses relative paths and sees no other test's files.  The same
 * relative path under the backend (env CACHEFS_BACKEND, or the directory
 * under test itself when run on a plain file system) is bpath(rel).
 *
 * What the file system under test must do is what ext4 does: both suites
 * pass on a plain ext4 directory, run as root.
 */
#ifndef CACHEFS_TEST_POSIX_UTIL_H
#define CACHEFS_TEST_POSIX_UTIL_H

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

extern const char *test_root;	 /* the directory under test (argv[1]) */
extern const char *test_backend; /* where its files really live */
/*
 * Only the user who mounted the tree may enter it (a FUSE mount without
 * allow_other): fork_as() then changes the file system identity only.
 */
extern bool test_fsuid_only;

/* A system call that must succeed; evaluates to its result. */
#define CK_SYS(expr)                                                           \
	({                                                                     \
		errno = 0;                                                     \
		long _ck_r = (long)(expr);                                     \
		int _ck_e = errno;                                             \
		ck_assert_msg(_ck_r >= 0, "%s failed: %s", #expr,              \
			      errname(_ck_e));                                 \
		_ck_r;                                                         \
	})

/* A system call that must fail with -1 and errno err. */
#define CK_SYS_ERR(expr, err)                                                  \
	do {                                                                   \
		errno = 0;                                                     \
		long _ck_r = (long)(expr);                                     \
		int _ck_e = errno;                                             \
		ck_assert_msg(_ck_r == -1 && _ck_e == (err),                   \
			      "%s: expected %s, got %ld (%s)", #expr,          \
			      errname(err), _ck_r,                             \
			      _ck_r == -1 ? errname(_ck_e) : "success");       \
	} while (0)

#define SCRATCH() scratch(__func__)

/* A caller identity for a forked child: uid, gid and supplementary groups. */
struct user {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[4];
};

const char *errname(int err);

void scratch(const char *name);
void scratch_teardown(void);
const char *bpath(const char *rel);
const char *mpath(const char *rel);

pid_t fork_child(void);
pid_t fork_as(const struct user *u);
void wait_ok(pid_t pid);
void child_exit(void) __attribute__((noreturn));

void put_file(const char *path, const void *data, size_t len, mode_t mode);
void put_str(const char *path, const char *s);
void expect_str(const char *path, const char *s);
struct stat lstat_ok(const char *path);
struct stat stat_ok(const char *path);
void expect_enoent(const char *path);
void expect_owner(const char *path, uid_t uid, gid_t gid);
void expect_mode(const char *path, mode_t mode);
bool ts_after(struct timespec a, struct timespec b);
void sleep_ms(long ms);
int rm_rf(const char *path);

TCase *tcase_scratch(Suite *s, const char *name);
int run_suite(Suite *s, int argc, char **argv);

#endif
