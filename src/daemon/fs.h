/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_FS_H
#define CACHEFS_FS_H

#include <fuse_lowlevel.h>

#include "cache.h"
#include "config.h"
#include "datafd.h"
#include "inode.h"

/*
 * The FUSE operations: the one layer that turns the negative errno values
 * of the modules below into replies, exactly one reply per request.
 */

struct cfs {
	struct config *cfg;
	struct inode_table *itab;
	struct fuse_session *se;
	const char *backend; /* canonical path, for the trace */
	const char *mountpoint; /* canonical path, for the look-ahead */
	size_t backend_len;
	bool noatime; /* mounted noatime: reads leave backend atimes alone */
	bool acl;     /* the kernel enforces POSIX ACLs; set by init */
	struct peers *peers; /* NULL: no peers */
	struct notify *notify; /* NULL: no change datagrams */
	struct datafd_cache *data; /* shared data descriptors, for no_open */
	struct cache *cache; /* the cache tiers; NULL: none */
	struct changes *changes; /* the journal; NULL: off */
	struct mirrors *mirrors; /* NULL: none (journal off) */
	struct rdma_server *rdma; /* NULL: no RDMA reads (-o rdma) */
	struct lookahead *lookahead; /* NULL: none */
	bool degraded;	     /* atomic: the backend is failing */
	uint64_t backend_failures; /* atomic: requests it failed */
	uint64_t reval_pass_ns;	   /* atomic: the revalidator's last pass */
	uint64_t reval_pass_inodes; /* atomic: inodes it checked */
	uint64_t table_trimmed_at;  /* fs_balance_memory()'s own */
	bool no_open; /* the kernel sends no OPEN/FLUSH/RELEASE; set by init */
	bool no_opendir; /* nor OPENDIR/RELEASEDIR; set by init */
	struct dir_streams *streams; /* no_opendir: listings being read */
	uint64_t open_files; /* atomic */
	uint64_t open_dirs;  /* atomic: directory streams held */
};

extern const struct fuse_lowlevel_ops cfs_ops;

/*
 * Make the kernel, the cache tiers and the inode table forget what they
 * hold of path (relative to the mount, "/" for the root), and with
 * recursive of everything below it: the next access asks the backend.
 * Not from a FUSE request.  Counts the names and inodes invalidated into
 * *names and *inodes.  Returns 0 or a negative errno (-EINVAL for "."
 * or ".." components).
 */
int fs_invalidate(struct cfs *fs, const char *path, bool recursive,
		  unsigned *names, unsigned *inodes);

/*
 * With no_opendir: close the directory streams kept between READDIRs
 * (see fs.c) that went unused for idle_ns.
 */
void fs_expire_dir_streams(struct cfs *fs, uint64_t idle_ns);

/* Whether the kernel keeps entries now (cache on, entry_timeout > 0). */
bool fs_entries_cached(struct cfs *fs);

/* The mount-relative path ("/dir") of i; NULL if it has none. */
char *fs_node_path(struct cfs *fs, struct inode *i);

/* The FUSE node id of i. */
fuse_ino_t fs_ino_of(struct cfs *fs, struct inode *i);

/*
 * Shared cache tiers (keyed by path) forget the value of name in
 * directory i, or of i itself with name NULL: it changed on the backend.
 */
void fs_shared_forget(struct cfs *fs, struct inode *i, const char *name);

/*
 * Store the file at path (relative to the mount, "/dir/file") in the
 * shared tiers from the backend, and its size in *bytes.  Not from a
 * FUSE request.  Returns 0; -ENOTSUP without a shared tier; -EINVAL for
 * a path with . or .. or empty components, or not a regular file;
 * -EACCES for a path through a symlink or another file system; -EPERM
 * for a file not everyone may read; -EFBIG over a size limit; -EBUSY if
 * it changed while being read; a tier's or the backend's error.
 */
int fs_preload(struct cfs *fs, const char *path, uint64_t *bytes);

/*
 * For readers outside the mount (the RDMA server), acting as whom the
 * calling thread acts as.  fs_resolve() opens path, relative to the
 * mount's root ("dir/file"), confined like the mount: below the backend
 * root, on its file system, without magic links; symlinks inside the
 * tree are followed.  Returns an O_PATH descriptor the caller owns, with
 * *plain telling whether no symlink was on the way; -EXDEV for a path
 * that leaves the tree (an absolute one, "..", a symlink that points
 * out, another file system); or the backend's error.
 */
int fs_resolve(struct cfs *fs, const char *path, bool *plain);

/*
 * The name the shared tiers know the file at path (as fs_resolve() took
 * it) by, "/dir/file", when they may hold it, as fs_preload() decides:
 * a shared tier is in use, the path is plain and clean, and the file
 * regular and readable by everyone.  NULL otherwise (or out of memory):
 * the file stays out of them.  The caller frees it.
 */
char *fs_shared_path(struct cfs *fs, const char *path, bool plain,
		     mode_t mode);

/*
 * Read size bytes at off of the file open at fd (shared_path from
 * fs_shared_path()) into buf: from the cache tiers when one holds the
 * file as it is now, else from fd, filling the tiers when the file is
 * small enough, as FUSE reads do.  Returns fewer bytes than size only at
 * the end of the file; *tier tells whether a tier answered.  With
 * FS_READ_NOWAIT nothing may block: only the in-process tier and the
 * page cache (RWF_NOWAIT) are read, and -EAGAIN says to try again
 * without it.  Returns the bytes read or a negative errno.
 */
#define FS_READ_NOWAIT 0x1
ssize_t fs_read_fd(struct cfs *fs, int fd, const char *shared_path,
		   void *buf, size_t size, uint64_t off, unsigned flags,
		   bool *tier);

/*
 * Drop the kernel's cached attributes and pages of every inode it knows
 * (names expire after entry_timeout).  Not from a FUSE request.  Returns
 * the number of inodes invalidated or a negative errno.
 */
int fs_forget_kernel_cache(struct cfs *fs);

/*
 * cache_size bounds what the daemon holds for caching: the inode table
 * may take up to three quarters of it (beyond, revalidation makes the
 * kernel forget names), the in-process tier the rest.  Rebalances the
 * tier's share; from the revalidator.
 */
#define FS_TABLE_SHARE(budget) ((budget) / 4 * 3)
void fs_balance_memory(struct cfs *fs);

/* Whether the backend root answers again; clears fs->degraded if so. */
void fs_probe_backend(struct cfs *fs);

#endif
