// SPDX-License-Identifier: MIT
#include "creds.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 256 /* more are read from the caller but ignored */

static bool creds_enabled;	/* immutable after creds_init() */
static gid_t daemon_groups[MAX_GROUPS];
static int daemon_ngroups;

void creds_init(void)
{
	creds_enabled = geteuid() == 0;
	daemon_ngroups = getgroups(MAX_GROUPS, daemon_groups);
	if (daemon_ngroups < 0)
		daemon_ngroups = 0;
}

static __thread bool thread_own_fs;	 /* umask private to this thread */
static __thread bool thread_umask_set; /* creds_leave() must reset it */
static __thread bool thread_as_caller; /* creds_leave() must switch back */

static int thread_setgroups(size_t n, const gid_t *list)
{
	return syscall(SYS_setgroups, n, list) < 0 ? -errno : 0;
}

int creds_enter(fuse_req_t req, unsigned flags)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[MAX_GROUPS];
	int n, r;

	if (flags & CREDS_UMASK) {
		if (!thread_own_fs) {
			if (unshare(CLONE_FS) < 0)
				return -errno;
			thread_own_fs = true;
		}
		umask(ctx->umask);
		thread_umask_set = true;
	}
	if (!creds_enabled || (ctx->uid == 0 && ctx->gid == 0))
		return 0;

	/*
	 * The caller's groups come from /proc; if the caller is gone or
	 * the list cannot be read, it acts with its primary group only,
	 * which can only grant less.
	 */
	n = fuse_req_getgroups(req, MAX_GROUPS, groups);
	if (n < 0)
		n = 0;
	if (n > MAX_GROUPS)
		n = MAX_GROUPS;
	thread_as_caller = true;
	r = thread_setgroups(n, groups);
	if (r < 0)
		return r;
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	/* setfsuid reports no error; read the value back to be sure. */
	if ((uid_t)setfsuid(-1) != ctx->uid || (gid_t)setfsgid(-1) != ctx->gid) {
		creds_leave();
		return -EPERM;
	}
	return 0;
}

void creds_leave(void)
{
	if (thread_umask_set) {
		umask(0);
		thread_umask_set = false;
	}
	/* nothing was switched for a root caller, or without root */
	if (!thread_as_caller)
		return;
	setfsuid(0);
	setfsgid(0);
	thread_setgroups(daemon_ngroups, daemon_groups);
	thread_as_caller = false;
}

int creds_become(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	int r;

	if (!creds_enabled)
		return 0;
	if (ngroups > MAX_GROUPS)
		ngroups = MAX_GROUPS;
	r = thread_setgroups((size_t)(ngroups > 0 ? ngroups : 0), groups);
	if (r < 0)
		return r;
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid(-1) != uid || (gid_t)setfsgid(-1) != gid)
		return -EPERM;
	return 0;
}
