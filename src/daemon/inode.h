/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_INODE_H
#define CACHEFS_INODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tier.h"

/*
 * The inode table maps backend inodes (device, inode number) to the
 * objects whose addresses are handed to the kernel as FUSE node ids.
 *
 * An inode is not tied to an open descriptor.  Each one remembers a file
 * handle (name_to_handle_at); an O_PATH descriptor for it is opened on
 * demand with open_by_handle_at and kept in a bounded LRU cache.  So a tree
 * with many more inodes than the process may hold descriptors can be
 * walked, read and written.  Only where the backend cannot produce handles
 * (or the daemon lacks CAP_DAC_READ_SEARCH) is the descriptor pinned for
 * the inode's lifetime, as in libfuse's passthrough examples.
 *
 * With retention on (inode_table_set_retain()), an inode the kernel
 * forgets stays in the table, with its attributes and, for a directory,
 * the names it remembers: a later lookup of it, or of a name remembered
 * missing, is answered from memory (inode_lookup_cached()), kept as fresh
 * as the kernel's own caches by the revalidator, which goes on checking
 * it.  Kept inodes are the first to go when the table is over its bounds.
 */

struct inode;
struct inode_table;

struct inode_table_stats {
	uint64_t inodes;      /* inodes in the table, retained ones too */
	uint64_t retained;    /* of those, forgotten by the kernel */
	uint64_t fds_cached;  /* O_PATH descriptors open in the cache */
	uint64_t fds_pinned;  /* descriptors that cannot be evicted */
	uint64_t fd_hits;     /* descriptor found open */
	uint64_t fd_misses;   /* descriptor reopened from a handle */
	uint64_t fd_evictions;
	uint64_t checked_by_name; /* files revalidated through a name */
};

/*
 * Create a table rooted at the backend directory root_fd (an O_PATH
 * descriptor the table takes over).  fd_cache bounds the descriptors kept
 * open.  With use_handles false, or when the backend does not support
 * handles, every inode pins its descriptor.
 */
int inode_table_new(int root_fd, unsigned fd_cache, bool use_handles,
		    struct inode_table **out);
void inode_table_free(struct inode_table *t);

bool inode_table_uses_handles(const struct inode_table *t);

/*
 * fn(arg, i) runs when the kernel has forgotten i, as it is freed or
 * retained, without the table's lock, so that state kept elsewhere for
 * the kernel's use of i (its open data descriptor) goes.  It may run
 * more than once for one inode.  Set before the table is shared.
 */
void inode_table_on_forget(struct inode_table *t,
			   void (*fn)(void *arg, struct inode *i), void *arg);

/* Keep inodes the kernel forgets (only where the backend has handles). */
void inode_table_set_retain(struct inode_table *t, bool retain);

/*
 * Lookups from memory are not to be trusted (a change may have been
 * missed, e.g. a lost peer datagram) until the revalidator has compared
 * every inode and name with the backend, starting after this call.
 */
void inode_table_distrust(struct inode_table *t);
bool inode_table_trusted(struct inode_table *t);
void inode_table_get_stats(struct inode_table *t,
			   struct inode_table_stats *st);

/*
 * Call fn for every inode (root included) under the table lock; fn must
 * not call back into the table.
 */
void inode_table_foreach(struct inode_table *t,
			 void (*fn)(struct inode *i, void *arg), void *arg);

struct inode *inode_root(struct inode_table *t);

/*
 * Look name up in directory parent without following a final symlink.
 * On success the inode's lookup count is raised by one, *st holds its
 * attributes and *out the inode.  "." and ".." are refused with -EINVAL:
 * the kernel resolves them itself, and the daemon must never step above
 * the backend root.
 *
 * hint, if not NULL: the version (inode number, size, times; dev and gen
 * unused) another host saw current.  When the attributes the backend's
 * client holds already show it, they are taken without asking the
 * backend again (no round trip on NFS or FUSE backends).  Returns 1 when
 * they were, 0 when the backend was asked, or a negative errno.
 */
int inode_lookup(struct inode_table *t, struct inode *parent,
		 const char *name, const struct tier_version *hint,
		 struct stat *st, struct inode **out);

/*
 * Drop n lookup references; when none remain the inode is retained or
 * freed.
 */
void inode_forget(struct inode_table *t, struct inode *i, uint64_t n);

/* Whether the kernel holds a lookup reference to i. */
bool inode_known(struct inode_table *t, struct inode *i);

/* One flag per inode for the caller's use: set or clear it, get the old. */
bool inode_mark(struct inode_table *t, struct inode *i, bool on);

/* i's mode as last seen (only the type if never seen). */
mode_t inode_mode(struct inode_table *t, struct inode *i);

/*
 * Never keep i after the kernel forgets it, nor answer a lookup of it
 * from memory unless offline; free it now if it is only retained.  The
 * caller's own pin (inode_find_name()) stays valid.
 */
void inode_drop(struct inode_table *t, struct inode *i);

/*
 * Borrow an O_PATH descriptor for i.  It stays valid until the matching
 * inode_fd_put().  Returns the descriptor or a negative errno (-ESTALE
 * when the backend inode no longer exists).
 */
int inode_fd_get(struct inode_table *t, struct inode *i);
void inode_fd_put(struct inode_table *t, struct inode *i);

/*
 * Open i with the given open(2) flags (no O_CREAT), by handle where
 * possible.  Returns a new descriptor the caller owns, or a negative errno.
 */
int inode_open(struct inode_table *t, struct inode *i, int flags);

mode_t inode_type(const struct inode *i); /* S_IFMT bits */

/*
 * The backend identity of i: its device and inode number, and its file
 * handle (the handle type, 4 bytes in host order, then the handle's
 * bytes) copied to handle: the handle's length, 0 when there is none or
 * it does not fit in cap.
 */
size_t inode_identity(const struct inode *i, uint64_t *dev, uint64_t *ino,
		      void *handle, size_t cap);

/*
 * Coherency.  The table remembers what the kernel was told: the
 * attributes of each inode (inode_note_attr, on every reply that carries
 * them) and, per directory, every name the kernel may hold an entry for
 * and the inode number it was told the name leads to, 0 for a negative
 * entry (inode_note_name).  inode_revalidate() compares that with the
 * backend and reports every difference, so the kernel can be told to
 * forget it.  Invariant: a name the kernel may cache is in the table.
 */
#define INODE_INO_UNKNOWN UINT64_MAX /* the name leads somewhere: recheck */

void inode_note_attr(struct inode_table *t, struct inode *i,
		     const struct stat *st);
int inode_note_name(struct inode_table *t, struct inode *dir,
		    const char *name, uint64_t ino);
/* Both, for an entry: name in dir leads to i, whose attributes are st. */
int inode_note_entry(struct inode_table *t, struct inode *dir,
		     const char *name, struct inode *i, const struct stat *st);

/*
 * What i is now, as far as this mount knows: its attributes as last
 * seen (by a reply or the revalidator) and the number of changes made
 * through this mount.  False until attributes were seen.
 */
bool inode_version(struct inode_table *t, struct inode *i,
		   struct tier_version *v);

/*
 * The number of changes made through this mount to the backend inode
 * (dev, ino), as inode_version() gives it; 0 when the table does not hold
 * it (nothing changed it through the mount since the kernel forgot it).
 * For readers that come without an inode: the RDMA server.
 */
uint64_t inode_gen(struct inode_table *t, uint64_t dev, uint64_t ino);

/*
 * A change through this mount reached the backend: values taken from i
 * before it are no longer i's.  Call after the change, before replying.
 */
void inode_changed_here(struct inode_table *t, struct inode *i);

/*
 * i was changed through this mount: take its attributes from the backend
 * as they are now, so that the revalidator does not report the change
 * the kernel made itself.
 */
void inode_refresh(struct inode_table *t, struct inode *i);

/*
 * For offline mode, when the backend fails: i's attributes as last seen
 * (atime as mtime, blocks from the size).  False if never seen.
 */
bool inode_cached_stat(struct inode_table *t, struct inode *i,
		       struct stat *st);

/*
 * Look name up in dir from what the table remembers, without the
 * backend: like inode_lookup(), or -ENOENT for a name remembered
 * missing, or -ENODATA when the table does not know (or, unless
 * offline, is not trusted: inode_table_distrust()).  With offline (the
 * backend failed), names and inodes invalidated since are good enough.
 */
int inode_lookup_cached(struct inode_table *t, struct inode *dir,
			const char *name, bool offline, struct stat *st,
			struct inode **out);

/* What name in dir leads to is to be asked of the backend again. */
void inode_distrust_name(struct inode_table *t, struct inode *dir,
			 const char *name);

struct inode_change_ops {
	/* i's attributes or data changed, or it is gone */
	void (*inode_changed)(void *arg, struct inode *i);
	/* name in dir now leads elsewhere, or nowhere, or somewhere */
	void (*entry_changed)(void *arg, struct inode *dir, const char *name);
	/* name in dir is forgotten to keep the table within its bounds */
	void (*name_trimmed)(void *arg, struct inode *dir, const char *name);
};

/*
 * Over the bounds (inode_table_set_names_max(), _bytes_max()): trim
 * names, telling ops, until a tenth below.  The kernel forgets the
 * inodes of the names trimmed a little later, and only then does the
 * table shrink: trims closer together than INODE_TRIM_SPACING_NS would
 * forget more than they need to.
 */
void inode_table_trim(struct inode_table *t,
		      const struct inode_change_ops *ops, void *arg);

#define INODE_TRIM_SPACING_NS 100000000u

/*
 * fn(arg) runs when the table grows past its bounds, once until the next
 * inode_table_trim(), with the table's lock held: it may only wake the
 * thread that trims (and must take no lock that is held around calls
 * into the table).  NULL stops it.
 */
void inode_table_on_over(struct inode_table *t, void (*fn)(void *arg),
			 void *arg);

/*
 * One pass over every inode, oldest first: called from one thread at a
 * time, without locks held; the callbacks run with the inode held, and no
 * lock.  A directory's names are checked only when its change time moved
 * since they were last checked.  It starts with inode_table_trim(), and
 * trims again on the way when the table asks (inode_table_on_over()).
 * Stops early when *stop becomes true.  Returns the number of inodes
 * checked.
 */
unsigned inode_revalidate(struct inode_table *t,
			  const struct inode_change_ops *ops, void *arg,
			  const volatile bool *stop);

/*
 * The inode the table holds for name in dir (as the backend has it now),
 * pinned until inode_unpin(); no lookup reference is taken.  Returns 0,
 * 1 when the table does not hold that inode, or a negative errno
 * (-ENOENT: no such name; -EINVAL: "." or "..").
 */
int inode_find_name(struct inode_table *t, struct inode *dir,
		    const char *name, struct inode **out);
void inode_unpin(struct inode_table *t, struct inode *i);

/* A copy of the names remembered in dir: n strings, all to be freed. */
int inode_names(struct inode_table *t, struct inode *dir, char ***out,
		size_t *n);

/* Names remembered for the kernel, over all directories. */
uint64_t inode_table_names(struct inode_table *t);

/*
 * At most max names (0: no bound): inode_revalidate() trims the names
 * back below it first, telling the kernel to forget each name trimmed.
 */
void inode_table_set_names_max(struct inode_table *t, uint64_t max);

/*
 * At most max bytes (inode_table_bytes(); 0: no bound): past it
 * inode_revalidate() trims names the same way, so that the kernel forgets
 * their inodes and the table frees them.
 */
void inode_table_set_bytes_max(struct inode_table *t, uint64_t max);

/* Memory held by the table: inodes, their handles and the names. */
uint64_t inode_table_bytes(struct inode_table *t);

/*
 * For the look-ahead (lookahead.h): 1, with dir pinned, when dir is a
 * directory the kernel holds that was not claimed since the kernel last
 * forgot it; inode_lookahead_release() unpins it, and with again lets
 * it be claimed again at once.  0 when not; -ENOSPC instead of 1 while
 * the table has had to make the kernel forget names within the last
 * INODE_LOOKAHEAD_QUIET_NS: what the kernel holds is over the bounds
 * already, and names read ahead would only push out names in use.
 */
int inode_lookahead_claim(struct inode_table *t, struct inode *dir);
#define INODE_LOOKAHEAD_QUIET_NS 10000000000u
void inode_lookahead_release(struct inode_table *t, struct inode *dir,
			     bool again);

#endif
