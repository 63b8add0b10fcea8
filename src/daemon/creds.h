/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CREDS_H
#define CACHEFS_CREDS_H

#include <fuse_lowlevel.h>

/*
 * Acting as the caller.  The kernel checks permissions itself
 * (default_permissions), with the caller's full credentials, before a
 * request reaches cachefs.  Operations that create an object additionally
 * run on the worker thread with the caller's fsuid, fsgid and
 * supplementary groups, so the backend assigns ownership, applies setgid
 * directories and charges quota exactly as it would for the caller.
 *
 * The switch is per thread: setfsuid/setfsgid and the raw setgroups system
 * call (glibc's setgroups() would change every thread of the process).
 */

/* Call once at start-up; acting as the caller needs root. */
void creds_init(void);

/*
 * With CREDS_UMASK the thread also takes the caller's umask: when the
 * kernel enforces POSIX ACLs it leaves the umask to the file system, and
 * the backend applies it unless the parent has a default ACL.  The thread
 * gets a private umask (unshare(CLONE_FS)) the first time.
 */
#define CREDS_UMASK 0x1

/* Switch the current thread to req's caller.  Returns 0 or -errno. */
int creds_enter(fuse_req_t req, unsigned flags);

/* Switch the current thread back to the daemon's own credentials. */
void creds_leave(void);

/*
 * Switch the current thread for good to uid, gid and ngroups
 * supplementary groups: a thread that acts for clients who are no local
 * user (the RDMA server's).  Without root (creds_init()), the thread
 * keeps the daemon's identity, which is all it could have.  Returns 0 or
 * -errno.
 */
int creds_become(uid_t uid, gid_t gid, const gid_t *groups, int ngroups);

#endif
