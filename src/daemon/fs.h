/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_FS_H
#define CACHEFS_FS_H

#include <fuse_lowlevel.h>

#include "config.h"
#include "inode.h"

/*
 * The FUSE operations: the one layer that turns the negative errno values
 * of the modules below into replies, exactly one reply per request.
 */

struct cfs {
	struct config *cfg;
	struct inode_table *itab;
	struct fuse_session *se;
	bool noatime; /* mounted noatime: reads leave backend atimes alone */
	bool acl;     /* the kernel enforces POSIX ACLs; set by init */
};

extern const struct fuse_lowlevel_ops cfs_ops;

#endif
