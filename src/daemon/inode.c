// SPDX-License-Identifier: MIT
/*
 * Inode table and bounded O_PATH descriptor cache.
 *
 * Locking: one mutex, t->lock, protects the hash table, every inode's
 * lookup count, descriptor, user count and LRU links.  System calls are
 * made outside it.
 */
#include "inode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "stats.h"

#define MAX_MOUNTS 64
#define EVICT_BATCH 16 /* descriptors closed per eviction pass */

struct inode_key {
	uint64_t dev;
	uint64_t ino;
	uint64_t superseded; /* 0 while current; see inode_lookup() */
};

/*
 * A name the kernel may hold a dentry for, in a directory: what it was
 * told the name leads to (0: nothing, a negative entry; INO_UNKNOWN:
 * check at the next pass).
 */
struct dname {
	uint64_t ino;
	UT_hash_handle hh;
	bool stale; /* invalidated: ask the backend (unless it failed) */
	char name[];
};

/*
 * The attributes the kernel was last given, to notice changes by (the
 * fields up to ctime) and to answer lookups from (all of them).
 */
struct snap {
	uint64_t ino, size, nlink;
	uint32_t mode, uid, gid;
	struct timespec mtime, ctime;
	/* not compared: they change without the object changing */
	struct timespec atime;
	uint64_t blocks, rdev;
	uint32_t blksize;
};

struct inode {
	struct inode_key key; /* immutable */
	mode_t type;	      /* S_IFMT bits, immutable */
	int mnt;	      /* index into t->mounts, immutable; -1: none */
	struct file_handle *fh; /* immutable; NULL: descriptor pinned */

	/* protected by t->lock */
	uint64_t nlookup;
	unsigned pins;	   /* the revalidator's; freed only when 0 */
	bool retained;	   /* forgotten by the kernel, kept (t->retained) */
	bool gone;	   /* not to be kept: free with the last reference */
	bool marked;	   /* the caller's; see inode_mark() */
	bool listing;	   /* directories: claimed for a look-ahead */
	struct inode *ret_prev, *ret_next;
	struct inode *all_prev, *all_next; /* every inode, oldest first */
	bool snap_valid;
	struct snap snap;
	uint64_t gen;	   /* changes made through this mount */
	struct dname *names;	      /* directories: names the kernel has */
	bool names_valid;	      /* names checked at names_stamp */
	struct timespec names_stamp;  /* the directory's ctime then */
	int fd;		   /* O_PATH descriptor or -1 */
	unsigned fd_users; /* borrowers of fd; never evicted while > 0 */
	bool pinned;	   /* fd is never closed before the inode is freed */
	uint32_t verified_pass; /* protected by t->lock; see check_files() */
	struct inode *lru_prev, *lru_next; /* when fd >= 0 && !fd_users */
	UT_hash_handle hh;
};

struct mount_ref {
	int mount_id;
	int fd; /* O_PATH descriptor on that mount, for open_by_handle_at */
};

struct inode_table {
	pthread_mutex_t lock;
	struct inode *root;
	bool use_handles; /* immutable after inode_table_new() */
	unsigned fd_cache_max;

	/* protected by lock */
	struct inode *hash;
	struct inode *lru; /* utlist: head least recently used */
	struct inode *all_head, *all_tail; /* every inode, for revalidation */
	struct inode *retained;		   /* utlist: oldest first */
	uint64_t nretained;
	bool retain;			   /* keep what the kernel forgets */
	bool distrusted;   /* no lookups from memory until a full pass */
	uint64_t distrust_gen;
	uint64_t names;			   /* dname entries */
	uint64_t bytes;			   /* inodes, handles and names */
	uint64_t names_max;		   /* trimmed back to by revalidation */
	uint64_t bytes_max;		   /* the same for bytes */
	unsigned fds_cached;		   /* evictable or borrowed fds */
	unsigned fds_pinned;
	uint64_t inodes, fd_hits, fd_misses, fd_evictions;
	struct mount_ref mounts[MAX_MOUNTS];
	int nmounts;
	void (*on_forget)(void *arg, struct inode *i); /* set before use */
	void *on_forget_arg;
	void (*on_over)(void *arg);	   /* protected by lock */
	void *on_over_arg;
	bool over_told;	   /* on_over ran since the last trim */
	uint64_t trimmed_ns; /* CLOCK_MONOTONIC of the last trim */
	uint64_t names_trimmed_ns; /* of the last that forgot names */
	uint32_t pass;	   /* revalidation passes started */
	uint64_t by_name;  /* files a pass checked through a name */
};

static void lru_unlink(struct inode_table *t, struct inode *i)
{
	DL_DELETE2(t->lru, i, lru_prev, lru_next);
}

static void lru_append(struct inode_table *t, struct inode *i)
{
	DL_APPEND2(t->lru, i, lru_prev, lru_next);
}

/*
 * Detach up to n least recently used descriptors; the caller closes the
 * returned descriptors after dropping the lock.  Caller holds t->lock.
 */
static int do_evict(struct inode_table *t, unsigned n, int *fds)
{
	int k = 0;

	if (n > EVICT_BATCH)
		n = EVICT_BATCH;
	while ((unsigned)k < n && t->lru) {
		struct inode *i = t->lru;

		lru_unlink(t, i);
		fds[k++] = i->fd;
		i->fd = -1;
		t->fds_cached--;
		t->fd_evictions++;
	}
	return k;
}

/* Evict down to the cache's bound.  Caller holds t->lock. */
static int do_trim(struct inode_table *t, int *fds)
{
	if (t->fds_cached <= t->fd_cache_max)
		return 0;
	return do_evict(t, t->fds_cached - t->fd_cache_max, fds);
}

static void close_all(const int *fds, int n)
{
	for (int k = 0; k < n; k++)
		close(fds[k]);
}

/*
 * Install fd as i's descriptor with one borrower.  If i already got one
 * meanwhile, *spare is set to fd for the caller to close.  Caller holds
 * t->lock.
 */
static int do_install_fd(struct inode_table *t, struct inode *i, int fd,
			 int *spare)
{
	*spare = -1;
	if (i->fd >= 0) {
		*spare = fd;
		if (!i->fd_users && !i->pinned)
			lru_unlink(t, i);
		i->fd_users++;
		return i->fd;
	}
	i->fd = fd;
	i->fd_users = 1;
	if (i->pinned)
		t->fds_pinned++;
	else
		t->fds_cached++;
	return fd;
}

static int find_mount(struct inode_table *t, int mount_id, int fd)
{
	int idx = -1;

	pthread_mutex_lock(&t->lock);
	for (int k = 0; k < t->nmounts; k++) {
		if (t->mounts[k].mount_id == mount_id) {
			idx = k;
			goto out_unlock;
		}
	}
	if (t->nmounts < MAX_MOUNTS) {
		/*
		 * open_by_handle_at() wants a real descriptor, not O_PATH.
		 * The first object met on a mount is its root directory.
		 */
		int mfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (mfd >= 0) {
			idx = t->nmounts++;
			t->mounts[idx].mount_id = mount_id;
			t->mounts[idx].fd = mfd;
		}
	}
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return idx;
}

/*
 * Make the file handle of the object open at fd.  Returns NULL where the
 * backend has none to give; the inode then pins its descriptor.
 */
static struct file_handle *make_handle(struct inode_table *t, int fd,
				       int *mnt)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	struct file_handle *fh;
	int mount_id;

	*mnt = -1;
	if (!t->use_handles)
		return NULL;
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &u.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return NULL;
	*mnt = find_mount(t, mount_id, fd);
	if (*mnt < 0)
		return NULL;
	fh = malloc(sizeof(*fh) + u.fh.handle_bytes);
	if (fh)
		memcpy(fh, &u.fh, sizeof(*fh) + u.fh.handle_bytes);
	return fh;
}

/* caller holds t->lock */
static void do_all_append(struct inode_table *t, struct inode *i)
{
	i->all_prev = t->all_tail;
	i->all_next = NULL;
	if (t->all_tail)
		t->all_tail->all_next = i;
	else
		t->all_head = i;
	t->all_tail = i;
}

/* caller holds t->lock */
static void do_all_unlink(struct inode_table *t, struct inode *i)
{
	if (i->all_prev)
		i->all_prev->all_next = i->all_next;
	else
		t->all_head = i->all_next;
	if (i->all_next)
		i->all_next->all_prev = i->all_prev;
	else
		t->all_tail = i->all_prev;
}

/*
 * What one allocation costs beyond what was asked: malloc's header and
 * rounding, and a share of the hash table's buckets.
 */
#define ALLOC_OVERHEAD 24

static uint64_t inode_bytes(const struct inode *i)
{
	return sizeof(*i) + ALLOC_OVERHEAD +
	       (i->fh ? sizeof(*i->fh) + i->fh->handle_bytes + ALLOC_OVERHEAD
		      : 0);
}

static uint64_t dname_bytes(const struct dname *d)
{
	return sizeof(*d) + strlen(d->name) + 1 + ALLOC_OVERHEAD;
}

/* caller holds t->lock */
static void do_free_names(struct inode_table *t, struct inode *i)
{
	struct dname *d, *tmp;

	HASH_ITER(hh, i->names, d, tmp) {
		HASH_DEL(i->names, d);
		t->bytes -= dname_bytes(d);
		free(d);
		t->names--;
	}
}

static struct inode *inode_alloc(const struct stat *st)
{
	struct inode *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->key.dev = st->st_dev;
	i->key.ino = st->st_ino;
	i->type = st->st_mode & S_IFMT;
	i->fd = -1;
	i->mnt = -1;
	return i;
}

int inode_table_new(int root_fd, unsigned fd_cache, bool use_handles,
		    struct inode_table **out)
{
	struct inode_table *t;
	struct stat st;
	int r;

	if (fstatat(root_fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->fd_cache_max = fd_cache ? fd_cache : 1;
	t->use_handles = use_handles;

	t->root = inode_alloc(&st);
	if (!t->root) {
		r = -ENOMEM;
		goto out_free;
	}
	/*
	 * Probe: handles are used only if the root has one and it can be
	 * opened again (open_by_handle_at needs CAP_DAC_READ_SEARCH).
	 */
	t->root->fh = make_handle(t, root_fd, &t->root->mnt);
	if (t->root->fh) {
		int fd = open_by_handle_at(t->mounts[t->root->mnt].fd,
					   t->root->fh, O_PATH);
		if (fd >= 0)
			close(fd);
		else
			t->use_handles = false;
	} else {
		t->use_handles = false;
	}
	if (!t->use_handles) {
		free(t->root->fh);
		t->root->fh = NULL;
	}
	t->root->nlookup = 1;
	t->root->fd = root_fd;
	t->root->pinned = true;
	t->fds_pinned = 1;
	HASH_ADD(hh, t->hash, key, sizeof(t->root->key), t->root);
	do_all_append(t, t->root);
	t->inodes = 1;
	t->bytes = inode_bytes(t->root);
	t->names_max = UINT64_MAX;
	t->bytes_max = UINT64_MAX;
	*out = t;
	return 0;

out_free:
	pthread_mutex_destroy(&t->lock);
	free(t);
	return r;
}

void inode_table_free(struct inode_table *t)
{
	struct inode *i, *tmp;

	if (!t)
		return;
	HASH_ITER(hh, t->hash, i, tmp)
	{
		HASH_DEL(t->hash, i);
		if (i->fd >= 0)
			close(i->fd);
		do_free_names(t, i);
		free(i->fh);
		free(i);
	}
	for (int k = 0; k < t->nmounts; k++)
		close(t->mounts[k].fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void inode_table_on_forget(struct inode_table *t,
			   void (*fn)(void *arg, struct inode *i), void *arg)
{
	t->on_forget = fn;
	t->on_forget_arg = arg;
}

void inode_table_on_over(struct inode_table *t, void (*fn)(void *arg),
			 void *arg)
{
	pthread_mutex_lock(&t->lock);
	t->on_over = fn;
	t->on_over_arg = arg;
	pthread_mutex_unlock(&t->lock);
}

static bool do_over(const struct inode_table *t, uint64_t gone, int slack);

/* The table grew: past its bounds, ask for a trim.  Caller holds t->lock. */
static void do_grew(struct inode_table *t)
{
	if (t->on_over && !t->over_told && do_over(t, 0, 0)) {
		t->over_told = true;
		t->on_over(t->on_over_arg);
	}
}

void inode_table_set_retain(struct inode_table *t, bool retain)
{
	pthread_mutex_lock(&t->lock);
	t->retain = retain && t->use_handles;
	pthread_mutex_unlock(&t->lock);
}

bool inode_table_uses_handles(const struct inode_table *t)
{
	return t->use_handles;
}

void inode_table_get_stats(struct inode_table *t,
			   struct inode_table_stats *st)
{
	pthread_mutex_lock(&t->lock);
	st->inodes = t->inodes;
	st->fds_cached = t->fds_cached;
	st->fds_pinned = t->fds_pinned;
	st->fd_hits = t->fd_hits;
	st->fd_misses = t->fd_misses;
	st->fd_evictions = t->fd_evictions;
	st->retained = t->nretained;
	st->checked_by_name = t->by_name;
	pthread_mutex_unlock(&t->lock);
}

void inode_table_foreach(struct inode_table *t,
			 void (*fn)(struct inode *i, void *arg), void *arg)
{
	struct inode *i, *tmp;

	pthread_mutex_lock(&t->lock);
	HASH_ITER(hh, t->hash, i, tmp)
		fn(i, arg);
	pthread_mutex_unlock(&t->lock);
}

struct inode *inode_root(struct inode_table *t)
{
	return t->root;
}

mode_t inode_type(const struct inode *i)
{
	return i->type;
}

size_t inode_identity(const struct inode *i, uint64_t *dev, uint64_t *ino,
		      void *handle, size_t cap)
{
	size_t n;

	*dev = i->key.dev;
	*ino = i->key.ino;
	if (!i->fh)
		return 0;
	n = sizeof(i->fh->handle_type) + i->fh->handle_bytes;
	if (n > cap)
		return 0;
	memcpy(handle, &i->fh->handle_type, sizeof(i->fh->handle_type));
	memcpy((char *)handle + sizeof(i->fh->handle_type), i->fh->f_handle,
	       i->fh->handle_bytes);
	return n;
}

int inode_fd_get(struct inode_table *t, struct inode *i)
{
	int evicted[EVICT_BATCH];
	int nevicted = 0, fd, spare, mfd;

	pthread_mutex_lock(&t->lock);
	if (i->fd >= 0) {
		if (!i->fd_users && !i->pinned)
			lru_unlink(t, i);
		i->fd_users++;
		t->fd_hits++;
		fd = i->fd;
		pthread_mutex_unlock(&t->lock);
		return fd;
	}
	t->fd_misses++;
	if (t->fds_cached >= t->fd_cache_max)
		nevicted = do_evict(t, t->fds_cached - t->fd_cache_max + 1,
				    evicted);
	mfd = t->mounts[i->mnt].fd;
	pthread_mutex_unlock(&t->lock);
	close_all(evicted, nevicted);

	/* An inode without a pinned fd always has a handle. */
	fd = open_by_handle_at(mfd, i->fh, O_PATH | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* Descriptors ran short: give back a batch and retry once. */
		pthread_mutex_lock(&t->lock);
		nevicted = do_evict(t, EVICT_BATCH, evicted);
		pthread_mutex_unlock(&t->lock);
		close_all(evicted, nevicted);
		fd = open_by_handle_at(mfd, i->fh, O_PATH | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;

	pthread_mutex_lock(&t->lock);
	fd = do_install_fd(t, i, fd, &spare);
	pthread_mutex_unlock(&t->lock);
	if (spare >= 0)
		close(spare);
	return fd;
}

void inode_fd_put(struct inode_table *t, struct inode *i)
{
	int evicted[EVICT_BATCH];
	int nevicted = 0;

	pthread_mutex_lock(&t->lock);
	if (--i->fd_users == 0 && !i->pinned) {
		lru_append(t, i);
		nevicted = do_trim(t, evicted);
	}
	pthread_mutex_unlock(&t->lock);
	close_all(evicted, nevicted);
}

int inode_open(struct inode_table *t, struct inode *i, int flags)
{
	char path[64];
	int fd, pfd;

	/*
	 * The kernel resolved the name already; O_NOFOLLOW would make the
	 * /proc/self/fd magic link itself count as a symlink.
	 */
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
	if (i->fh) {
		fd = open_by_handle_at(t->mounts[i->mnt].fd, i->fh,
				       flags | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	pfd = inode_fd_get(t, i);
	if (pfd < 0)
		return pfd;
	if (S_ISDIR(i->type)) {
		fd = openat(pfd, ".", flags | O_CLOEXEC);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
		fd = open(path, flags | O_CLOEXEC);
	}
	if (fd < 0)
		fd = -errno;
	inode_fd_put(t, i);
	return fd;
}

/*
 * Whether i, which neither the kernel nor the revalidator references any
 * more, is worth keeping for lookups from memory.  Caller holds t->lock.
 */
static bool do_retainable(const struct inode_table *t, const struct inode *i)
{
	return t->retain && !i->gone && i->fh && !i->pinned &&
	       i->snap_valid && !i->key.superseded;
}

/* caller holds t->lock */
static void do_unretain(struct inode_table *t, struct inode *i)
{
	if (!i->retained)
		return;
	DL_DELETE2(t->retained, i, ret_prev, ret_next);
	i->retained = false;
	t->nretained--;
}

/* A lookup reference for the kernel; caller holds t->lock. */
static void do_ref(struct inode_table *t, struct inode *i)
{
	do_unretain(t, i);
	i->nlookup++;
}

enum release {
	RELEASE_KEEP,	/* still referenced, or kept already */
	RELEASE_RETAIN, /* the kernel forgot it; kept from now on */
	RELEASE_FREE,	/* taken out of the table: free it */
};

/*
 * Once neither the kernel nor the revalidator holds i: keep it (retain)
 * or take it out of the table.  Caller holds t->lock; the caller passes
 * the result to release_done() after dropping it, with *fd, the
 * descriptor to close (or -1).
 */
static enum release do_release(struct inode_table *t, struct inode *i,
			       int *fd)
{
	*fd = -1;
	if (i == t->root || i->nlookup > 0 || i->pins > 0)
		return RELEASE_KEEP;
	if (do_retainable(t, i)) {
		if (i->retained)
			return RELEASE_KEEP;
		i->retained = true;
		DL_APPEND2(t->retained, i, ret_prev, ret_next);
		t->nretained++;
		/* descriptors follow the kernel's working set, not the table */
		if (i->fd >= 0 && !i->fd_users) {
			lru_unlink(t, i);
			t->fds_cached--;
			*fd = i->fd;
			i->fd = -1;
		}
		return RELEASE_RETAIN;
	}
	do_unretain(t, i);
	HASH_DEL(t->hash, i);
	do_all_unlink(t, i);
	do_free_names(t, i);
	t->inodes--;
	t->bytes -= inode_bytes(i);
	if (i->fd >= 0) {
		*fd = i->fd;
		if (i->pinned) {
			t->fds_pinned--;
		} else {
			if (!i->fd_users)
				lru_unlink(t, i);
			t->fds_cached--;
		}
	}
	return RELEASE_FREE;
}

/* The rest of do_release(), without t->lock. */
static void release_done(struct inode_table *t, struct inode *i,
			 enum release r, int fd)
{
	if (r == RELEASE_KEEP)
		return;
	if (fd >= 0)
		close(fd);
	if (t->on_forget)
		t->on_forget(t->on_forget_arg, i);
	if (r == RELEASE_FREE) {
		free(i->fh);
		free(i);
	}
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static bool same_handle(const struct file_handle *a,
			const struct file_handle *b)
{
	return a->handle_type == b->handle_type &&
	       a->handle_bytes == b->handle_bytes &&
	       memcmp(a->f_handle, b->f_handle, a->handle_bytes) == 0;
}

static bool same_object(const struct inode *i, const struct inode *fresh)
{
	if (i->type != fresh->type)
		return false;
	if (!i->fh || !fresh->fh)
		return true; /* no handles: the inode number is all we have */
	return same_handle(i->fh, fresh->fh);
}

static struct timespec ts_of(struct statx_timestamp t)
{
	return (struct timespec){ .tv_sec = t.tv_sec, .tv_nsec = t.tv_nsec };
}

static int64_t ns_of_statx(struct statx_timestamp t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * The attributes of fd, the object just opened at a name.  The backend's
 * client (NFS, FUSE) already holds them, from the walk to the name or
 * from before: taken as they are (no round trip) when they show the
 * version hint says is current, else asked of the backend.  hint only
 * decides whether to ask: every attribute is the backend's.  Returns 1
 * when the held ones were taken, 0, or a negative errno.
 */
static int stat_opened(int fd, const struct tier_version *hint,
		       struct stat *st)
{
	struct statx sx;

	if (hint &&
	    statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW |
		  AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) == 0 &&
	    (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS &&
	    sx.stx_ino == hint->ino && sx.stx_size == hint->size &&
	    ns_of_statx(sx.stx_mtime) == hint->mtime_ns &&
	    ns_of_statx(sx.stx_ctime) == hint->ctime_ns) {
		memset(st, 0, sizeof(*st));
		st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
		st->st_ino = sx.stx_ino;
		st->st_mode = sx.stx_mode;
		st->st_nlink = sx.stx_nlink;
		st->st_uid = sx.stx_uid;
		st->st_gid = sx.stx_gid;
		st->st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
		st->st_size = (off_t)sx.stx_size;
		st->st_blksize = sx.stx_blksize;
		st->st_blocks = (blkcnt_t)sx.stx_blocks;
		st->st_atim = ts_of(sx.stx_atime);
		st->st_mtim = ts_of(sx.stx_mtime);
		st->st_ctim = ts_of(sx.stx_ctime);
		return 1;
	}
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

int inode_lookup(struct inode_table *t, struct inode *parent,
		 const char *name, const struct tier_version *hint,
		 struct stat *st, struct inode **out)
{
	struct inode *i, *fresh, *old = NULL;
	enum release old_r = RELEASE_KEEP;
	int evicted[EVICT_BATCH];
	int pfd, fd, r, spare = -1, nevicted = 0, old_fd = -1, hinted;

	if (is_dot_or_dotdot(name))
		return -EINVAL;

	/*
	 * One walk of the name (a round trip on a network backend); the
	 * rest is asked of the descriptor it gives.
	 */
	pfd = inode_fd_get(t, parent);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	inode_fd_put(t, parent);
	if (r < 0)
		return r;
	r = stat_opened(fd, hint, st);
	if (r < 0)
		goto out_close;
	hinted = r;
	fresh = inode_alloc(st);
	if (!fresh) {
		r = -ENOMEM;
		goto out_close;
	}
	fresh->fh = make_handle(t, fd, &fresh->mnt);
	fresh->pinned = !fresh->fh;

	pthread_mutex_lock(&t->lock);
	HASH_FIND(hh, t->hash, &fresh->key, sizeof(fresh->key), i);
	if (i && same_object(i, fresh)) {
		do_ref(t, i);
		i->gone = false;
		if (i->fd < 0) { /* adopt the fresh descriptor */
			do_install_fd(t, i, fd, &spare);
			fd = -1;
			if (--i->fd_users == 0)
				lru_append(t, i);
			nevicted = do_trim(t, evicted);
		}
		pthread_mutex_unlock(&t->lock);
		close_all(evicted, nevicted);
		free(fresh->fh);
		free(fresh);
		goto out_found;
	}
	if (i) {
		/*
		 * The inode number was reused by a new object while the
		 * kernel still holds the old one: the old inode is re-keyed
		 * out of the way and lives on until its last forget.
		 */
		HASH_DEL(t->hash, i);
		i->key.superseded = (uintptr_t)i;
		HASH_ADD(hh, t->hash, key, sizeof(i->key), i);
		if (!i->nlookup) { /* kept only for lookups: it is not */
			i->gone = true;
			do_unretain(t, i);
			old_r = do_release(t, i, &old_fd);
			old = i;
		}
	}
	i = fresh;
	i->nlookup = 1;
	do_install_fd(t, i, fd, &spare);
	fd = -1;
	if (--i->fd_users == 0 && !i->pinned)
		lru_append(t, i);
	HASH_ADD(hh, t->hash, key, sizeof(i->key), i);
	do_all_append(t, i);
	t->inodes++;
	t->bytes += inode_bytes(i);
	do_grew(t);
	nevicted = do_trim(t, evicted);
	pthread_mutex_unlock(&t->lock);
	close_all(evicted, nevicted);
	if (old)
		release_done(t, old, old_r, old_fd);

out_found:
	*out = i;
	r = hinted;
out_close:
	if (spare >= 0)
		close(spare);
	if (fd >= 0)
		close(fd);
	return r;
}

void inode_forget(struct inode_table *t, struct inode *i, uint64_t n)
{
	enum release r;
	int fd;

	pthread_mutex_lock(&t->lock);
	if (n > i->nlookup)
		n = i->nlookup; /* a kernel bug if so; never underflow */
	if (i != t->root)
		i->nlookup -= n;
	if (!i->nlookup) /* the kernel's entries below went before it */
		i->listing = false;
	r = do_release(t, i, &fd);
	pthread_mutex_unlock(&t->lock);
	release_done(t, i, r, fd);
}

void inode_drop(struct inode_table *t, struct inode *i)
{
	enum release r;
	int fd;

	pthread_mutex_lock(&t->lock);
	i->gone = true;
	do_unretain(t, i);
	r = do_release(t, i, &fd);
	pthread_mutex_unlock(&t->lock);
	release_done(t, i, r, fd);
}

bool inode_mark(struct inode_table *t, struct inode *i, bool on)
{
	bool was;

	pthread_mutex_lock(&t->lock);
	was = i->marked;
	i->marked = on;
	pthread_mutex_unlock(&t->lock);
	return was;
}

mode_t inode_mode(struct inode_table *t, struct inode *i)
{
	mode_t mode;

	pthread_mutex_lock(&t->lock);
	mode = i->snap_valid ? (mode_t)i->snap.mode : i->type;
	pthread_mutex_unlock(&t->lock);
	return mode;
}

bool inode_known(struct inode_table *t, struct inode *i)
{
	bool known;

	pthread_mutex_lock(&t->lock);
	known = i->nlookup > 0;
	pthread_mutex_unlock(&t->lock);
	return known;
}

static void snap_of(struct snap *sn, const struct stat *st)
{
	sn->ino = st->st_ino;
	sn->size = (uint64_t)st->st_size;
	sn->nlink = st->st_nlink;
	sn->mode = st->st_mode;
	sn->uid = st->st_uid;
	sn->gid = st->st_gid;
	sn->mtime = st->st_mtim;
	sn->ctime = st->st_ctim;
	sn->atime = st->st_atim;
	sn->blocks = (uint64_t)st->st_blocks;
	sn->rdev = st->st_rdev;
	sn->blksize = (uint32_t)st->st_blksize;
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool same_snap(const struct snap *a, const struct snap *b)
{
	return a->ino == b->ino && a->size == b->size &&
	       a->nlink == b->nlink && a->mode == b->mode &&
	       a->uid == b->uid && a->gid == b->gid &&
	       same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime);
}

void inode_note_attr(struct inode_table *t, struct inode *i,
		     const struct stat *st)
{
	pthread_mutex_lock(&t->lock);
	snap_of(&i->snap, st);
	i->snap_valid = true;
	pthread_mutex_unlock(&t->lock);
}

static int64_t ns_of(struct timespec ts)
{
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool inode_version(struct inode_table *t, struct inode *i,
		   struct tier_version *v)
{
	bool valid;

	pthread_mutex_lock(&t->lock);
	valid = i->snap_valid;
	v->dev = i->key.dev;
	v->ino = i->snap.ino;
	v->size = i->snap.size;
	v->mtime_ns = ns_of(i->snap.mtime);
	v->ctime_ns = ns_of(i->snap.ctime);
	v->gen = i->gen;
	pthread_mutex_unlock(&t->lock);
	return valid;
}

uint64_t inode_gen(struct inode_table *t, uint64_t dev, uint64_t ino)
{
	struct inode_key key;
	struct inode *i;
	uint64_t gen;

	memset(&key, 0, sizeof(key));
	key.dev = dev;
	key.ino = ino;
	pthread_mutex_lock(&t->lock);
	HASH_FIND(hh, t->hash, &key, sizeof(key), i);
	gen = i ? i->gen : 0;
	pthread_mutex_unlock(&t->lock);
	return gen;
}

void inode_changed_here(struct inode_table *t, struct inode *i)
{
	pthread_mutex_lock(&t->lock);
	i->gen++;
	pthread_mutex_unlock(&t->lock);
}

/* Caller holds t->lock. */
static bool do_cached_stat(const struct inode *i, struct stat *st)
{
	if (!i->snap_valid)
		return false;
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)i->key.dev;
	st->st_ino = (ino_t)i->snap.ino;
	st->st_nlink = (nlink_t)i->snap.nlink;
	st->st_mode = (mode_t)i->snap.mode;
	st->st_uid = (uid_t)i->snap.uid;
	st->st_gid = (gid_t)i->snap.gid;
	st->st_size = (off_t)i->snap.size;
	st->st_rdev = (dev_t)i->snap.rdev;
	st->st_blksize = (blksize_t)i->snap.blksize;
	st->st_blocks = (blkcnt_t)i->snap.blocks;
	st->st_atim = i->snap.atime;
	st->st_mtim = i->snap.mtime;
	st->st_ctim = i->snap.ctime;
	return true;
}

bool inode_cached_stat(struct inode_table *t, struct inode *i,
		       struct stat *st)
{
	bool ok;

	pthread_mutex_lock(&t->lock);
	ok = do_cached_stat(i, st);
	pthread_mutex_unlock(&t->lock);
	return ok;
}

int inode_lookup_cached(struct inode_table *t, struct inode *dir,
			const char *name, bool offline, struct stat *st,
			struct inode **out)
{
	struct inode_key key = { .dev = dir->key.dev };
	struct dname *d;
	struct inode *i = NULL;
	int r = -ENODATA;

	if (is_dot_or_dotdot(name))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	HASH_FIND(hh, dir->names, name, strlen(name), d);
	if (t->distrusted && !offline) {
		r = -ENODATA;
	} else if (d && d->stale && !offline) {
		r = -ENODATA;
	} else if (d && d->ino == 0) {
		r = -ENOENT;
	} else if (d && d->ino != INODE_INO_UNKNOWN) {
		key.ino = d->ino;
		HASH_FIND(hh, t->hash, &key, sizeof(key), i);
		if (i && (!i->gone || offline) && do_cached_stat(i, st)) {
			do_ref(t, i);
			*out = i;
			r = 0;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* Remember name in dir as leading to ino; caller holds t->lock. */
static int do_note_name(struct inode_table *t, struct inode *dir,
			const char *name, uint64_t ino)
{
	size_t len = strlen(name);
	struct dname *d;

	HASH_FIND(hh, dir->names, name, len, d);
	if (!d) {
		d = malloc(sizeof(*d) + len + 1);
		if (!d)
			return -ENOMEM;
		memcpy(d->name, name, len + 1);
		HASH_ADD_KEYPTR(hh, dir->names, d->name, len, d);
		t->names++;
		t->bytes += dname_bytes(d);
		do_grew(t);
	}
	d->ino = ino;
	d->stale = false;
	return 0;
}

int inode_note_name(struct inode_table *t, struct inode *dir,
		    const char *name, uint64_t ino)
{
	int r;

	pthread_mutex_lock(&t->lock);
	r = do_note_name(t, dir, name, ino);
	pthread_mutex_unlock(&t->lock);
	return r;
}

int inode_note_entry(struct inode_table *t, struct inode *dir,
		     const char *name, struct inode *i, const struct stat *st)
{
	int r;

	pthread_mutex_lock(&t->lock);
	snap_of(&i->snap, st);
	i->snap_valid = true;
	r = do_note_name(t, dir, name, st->st_ino);
	pthread_mutex_unlock(&t->lock);
	return r;
}

/*
 * A time stamp this recent may not change again when the object does
 * (timestamps are as coarse as the kernel's tick): do not trust it.
 */
static bool settled(struct timespec ts)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - ts.tv_sec > 1;
}

struct name_check {
	uint64_t ino;
	char *name;
};

/*
 * A copy of dir's names and where they lead, in *n entries (each name to
 * be freed, then the array), only those leading to an inode with
 * positive; NULL when there are none or out of memory.  Caller holds
 * t->lock.
 */
static struct name_check *do_copy_checks(struct inode *dir, bool positive,
					 size_t *n)
{
	size_t cap = HASH_COUNT(dir->names);
	struct name_check *list = cap ? calloc(cap, sizeof(*list)) : NULL;
	struct dname *d, *tmp;

	*n = 0;
	if (!list)
		return NULL;
	HASH_ITER(hh, dir->names, d, tmp) {
		if (positive && (d->ino == 0 || d->ino == INODE_INO_UNKNOWN))
			continue;
		list[*n].ino = d->ino;
		list[*n].name = strdup(d->name);
		if (list[*n].name)
			(*n)++;
	}
	return list;
}

/*
 * Check the names of directory i (open at fd) against the backend;
 * report and forget those that changed.  Caller holds a pin on i.
 */
static void check_names(struct inode_table *t, struct inode *i, int fd,
			const struct stat *dst,
			const struct inode_change_ops *ops, void *arg)
{
	struct name_check *list;
	struct dname *d;
	struct stat st;
	bool oom;
	size_t n;

	pthread_mutex_lock(&t->lock);
	if (i->names_valid && same_time(i->names_stamp, dst->st_ctim)) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	list = do_copy_checks(i, false, &n);
	oom = !list && HASH_COUNT(i->names);
	pthread_mutex_unlock(&t->lock);
	if (oom)
		return; /* the next pass checks them */
	for (size_t k = 0; k < n; k++) {
		uint64_t now = fstatat(fd, list[k].name, &st,
				       AT_SYMLINK_NOFOLLOW) == 0
				       ? st.st_ino
				       : 0;

		if (now == list[k].ino)
			continue;
		ops->entry_changed(arg, i, list[k].name);
		pthread_mutex_lock(&t->lock);
		HASH_FIND(hh, i->names, list[k].name, strlen(list[k].name), d);
		if (d && d->ino == list[k].ino) {
			HASH_DEL(i->names, d);
			t->bytes -= dname_bytes(d);
			free(d);
			t->names--;
		}
		pthread_mutex_unlock(&t->lock);
	}
	for (size_t k = 0; k < n; k++)
		free(list[k].name);
	free(list);
	pthread_mutex_lock(&t->lock);
	i->names_valid = settled(dst->st_ctim) && settled(dst->st_mtim);
	i->names_stamp = dst->st_ctim;
	pthread_mutex_unlock(&t->lock);
}

/*
 * A descriptor of i for one look, without disturbing the cache: the
 * cached one if there is one (*owned false), else one opened from the
 * handle for the caller to close (*owned true), so that a pass over every
 * inode does not evict the descriptors the application's requests use.
 */
static int peek_fd(struct inode_table *t, struct inode *i, bool *owned)
{
	int fd;

	pthread_mutex_lock(&t->lock);
	if (i->fd >= 0) {
		if (!i->fd_users && !i->pinned)
			lru_unlink(t, i);
		i->fd_users++;
		fd = i->fd;
		pthread_mutex_unlock(&t->lock);
		*owned = false;
		return fd;
	}
	fd = t->mounts[i->mnt].fd;
	pthread_mutex_unlock(&t->lock);
	/* An inode without a descriptor always has a handle. */
	fd = open_by_handle_at(fd, i->fh, O_PATH | O_CLOEXEC);
	*owned = true;
	return fd < 0 ? -errno : fd;
}

static void unpeek_fd(struct inode_table *t, struct inode *i, int fd,
		      bool owned)
{
	if (owned)
		close(fd);
	else
		inode_fd_put(t, i);
}

void inode_refresh(struct inode_table *t, struct inode *i)
{
	struct stat st;
	bool owned;
	int fd;

	fd = peek_fd(t, i, &owned);
	if (fd < 0)
		return;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0) {
		pthread_mutex_lock(&t->lock);
		if (i->snap_valid)
			snap_of(&i->snap, &st);
		pthread_mutex_unlock(&t->lock);
	}
	unpeek_fd(t, i, fd, owned);
}

/*
 * Check the files named in directory dir (open at fd) through those
 * names, in the pass numbered pass: one fstatat each, where a file's own
 * check opens it by handle.  A file whose attributes match what the
 * kernel was told is checked for this pass; anything else (another
 * object at the name, a change, no such name) is left to its own check.
 * Directories come before their files in a pass, having been looked up
 * first.
 */
static void check_files(struct inode_table *t, struct inode *dir, int fd,
			uint32_t pass)
{
	struct name_check *list;
	struct stat st;
	size_t n;

	pthread_mutex_lock(&t->lock);
	list = do_copy_checks(dir, true, &n);
	pthread_mutex_unlock(&t->lock);
	if (!list)
		return;
	for (size_t k = 0; k < n; k++) {
		struct inode_key key = { 0 };
		struct snap now;
		struct inode *c;

		if (fstatat(fd, list[k].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_ino == list[k].ino && !S_ISDIR(st.st_mode)) {
			snap_of(&now, &st);
			key.dev = st.st_dev;
			key.ino = st.st_ino;
			pthread_mutex_lock(&t->lock);
			HASH_FIND(hh, t->hash, &key, sizeof(key), c);
			if (c && !S_ISDIR(c->type) && c->snap_valid &&
			    same_snap(&c->snap, &now) &&
			    c->verified_pass != pass) {
				c->verified_pass = pass;
				t->by_name++;
			}
			pthread_mutex_unlock(&t->lock);
		}
		free(list[k].name);
	}
	free(list);
}

/* Check one pinned inode against the backend, in the pass numbered pass. */
static void revalidate_one(struct inode_table *t, struct inode *i,
			   const struct inode_change_ops *ops, void *arg,
			   uint32_t pass)
{
	struct snap now;
	struct stat st;
	bool changed, owned, verified;
	int fd;

	pthread_mutex_lock(&t->lock);
	verified = i->verified_pass == pass; /* checked through its name */
	pthread_mutex_unlock(&t->lock);
	if (verified)
		return;
	fd = peek_fd(t, i, &owned);
	if (fd < 0) {
		if (fd == -ESTALE || fd == -ENOENT) {
			pthread_mutex_lock(&t->lock);
			i->gone = true; /* never kept, once the kernel forgets */
			pthread_mutex_unlock(&t->lock);
			ops->inode_changed(arg, i);
		}
		return;
	}
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		unpeek_fd(t, i, fd, owned);
		return;
	}
	snap_of(&now, &st);
	pthread_mutex_lock(&t->lock);
	changed = i->snap_valid && !same_snap(&i->snap, &now);
	if (changed)
		i->snap = now;
	pthread_mutex_unlock(&t->lock);
	if (changed)
		ops->inode_changed(arg, i);
	if (S_ISDIR(st.st_mode)) {
		check_names(t, i, fd, &st, ops, arg);
		check_files(t, i, fd, pass);
	}
	unpeek_fd(t, i, fd, owned);
}

/*
 * A copy of dir's names (n strings, each to be freed, then the array);
 * NULL when out of memory.  Caller holds t->lock.
 */
static char **do_copy_names(struct inode *dir, size_t *n)
{
	struct dname *d, *tmp;
	char **list = calloc(HASH_COUNT(dir->names) + 1, sizeof(*list));

	*n = 0;
	if (!list)
		return NULL;
	HASH_ITER(hh, dir->names, d, tmp) {
		if ((list[*n] = strdup(d->name)))
			(*n)++;
	}
	return list;
}

/* Pin the oldest inode, to walk the table from it without the lock. */
static struct inode *pin_first(struct inode_table *t)
{
	struct inode *i;

	pthread_mutex_lock(&t->lock);
	i = t->all_head;
	if (i)
		i->pins++;
	pthread_mutex_unlock(&t->lock);
	return i;
}

/*
 * Move the walk's pin from i to the inode after it (NULL at the end, or
 * with stop); i is freed if the pin was all that held it.
 */
static struct inode *pin_next(struct inode_table *t, struct inode *i,
			      bool stop)
{
	struct inode *next;
	enum release r;
	int fd;

	pthread_mutex_lock(&t->lock);
	next = stop ? NULL : i->all_next;
	if (next)
		next->pins++;
	i->pins--;
	r = do_release(t, i, &fd);
	pthread_mutex_unlock(&t->lock);
	release_done(t, i, r, fd);
	return next;
}

/*
 * Over names_max: forget every name of directories, oldest first, until
 * a tenth of the room is free, telling the kernel to forget each (so the
 * invariant holds).  Entries the kernel dropped on its own, which it never
 * reports, cannot pile up without bound this way.
 */
/*
 * Memory an inode holds, give or take its handle: what forgetting a name
 * is expected to free once the kernel forgets the inode too.
 */
#define INODE_BYTES_EST (sizeof(struct inode) + 32)

/*
 * Whether a name of dir leads to a directory the table holds: forgetting
 * it would make the kernel drop that directory's whole subtree.  Caller
 * holds t->lock.
 */
static bool do_has_subdirs(struct inode_table *t, const struct inode *dir)
{
	const struct dname *d, *tmp;
	struct inode_key key = { .dev = dir->key.dev };
	struct inode *i;

	HASH_ITER(hh, dir->names, d, tmp) {
		if (d->ino == 0 || d->ino == INODE_INO_UNKNOWN)
			continue;
		key.ino = d->ino;
		HASH_FIND(hh, t->hash, &key, sizeof(key), i);
		if (i && S_ISDIR(i->type))
			return true;
	}
	return false;
}

/* Names of dir that lead to an inode.  Caller holds t->lock. */
static uint64_t do_names_inodes(const struct inode *dir)
{
	const struct dname *d, *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, dir->names, d, tmp)
		n += d->ino != 0;
	return n;
}

/*
 * Whether the table holds more than its bounds allow, less a tenth of
 * each with slack > 0, once gone more bytes are freed.  Caller holds
 * t->lock.
 */
static bool do_over(const struct inode_table *t, uint64_t gone, int slack)
{
	uint64_t names = slack ? t->names_max - t->names_max / slack
			       : t->names_max;
	uint64_t bytes = slack ? t->bytes_max - t->bytes_max / slack
			       : t->bytes_max;

	return t->names > names ||
	       (t->bytes > gone ? t->bytes - gone : 0) > bytes;
}

/*
 * Forget names, oldest directories first, until the table is a tenth
 * below its bounds.  With leaves_only, only directories without
 * subdirectories the table holds, so that whole subtrees go only when
 * the leaves were not enough.  Returns whether it is still over.
 */
static bool trim_names(struct inode_table *t,
		       const struct inode_change_ops *ops, void *arg,
		       bool leaves_only)
{
	struct inode *i = pin_first(t);
	uint64_t gone = 0;
	bool done = false;

	while (i) {
		char **list = NULL;
		size_t n = 0;

		pthread_mutex_lock(&t->lock);
		done = !do_over(t, gone, 10);
		if (!done && i->names &&
		    !(leaves_only && do_has_subdirs(t, i))) {
			gone += do_names_inodes(i) * INODE_BYTES_EST;
			list = do_copy_names(i, &n);
			do_free_names(t, i);
			i->names_valid = false;
		}
		pthread_mutex_unlock(&t->lock);
		for (size_t k = 0; k < n; k++) {
			ops->name_trimmed(arg, i, list[k]);
			free(list[k]);
		}
		free(list);
		i = pin_next(t, i, done);
	}
	return !done;
}

void inode_table_set_bytes_max(struct inode_table *t, uint64_t max)
{
	pthread_mutex_lock(&t->lock);
	t->bytes_max = max ? max : UINT64_MAX;
	pthread_mutex_unlock(&t->lock);
}

void inode_table_set_names_max(struct inode_table *t, uint64_t max)
{
	pthread_mutex_lock(&t->lock);
	t->names_max = max ? max : UINT64_MAX;
	pthread_mutex_unlock(&t->lock);
}

uint64_t inode_table_bytes(struct inode_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->bytes;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/*
 * Free inodes kept after the kernel forgot them, least recently
 * forgotten first, until the table is a tenth below its bounds.
 * Returns whether it is still over.
 */
static bool evict_retained(struct inode_table *t)
{
	struct inode *batch[EVICT_BATCH];
	int fds[EVICT_BATCH];
	bool more, over;

	do {
		int n = 0;

		pthread_mutex_lock(&t->lock);
		while (n < EVICT_BATCH && t->retained && do_over(t, 0, 10)) {
			struct inode *i = t->retained;

			i->gone = true;
			do_unretain(t, i);
			if (do_release(t, i, &fds[n]) == RELEASE_FREE)
				batch[n++] = i;
		}
		more = n == EVICT_BATCH;
		over = do_over(t, 0, 0);
		pthread_mutex_unlock(&t->lock);
		for (int k = 0; k < n; k++)
			release_done(t, batch[k], RELEASE_FREE, fds[k]);
	} while (more);
	return over;
}

void inode_table_trim(struct inode_table *t,
		      const struct inode_change_ops *ops, void *arg)
{
	bool over;

	pthread_mutex_lock(&t->lock);
	over = do_over(t, 0, 0);
	t->over_told = false;
	t->trimmed_ns = stats_now_ns();
	pthread_mutex_unlock(&t->lock);
	if (!over || !evict_retained(t))
		return;
	/* what the kernel holds is over the bounds: names must go */
	pthread_mutex_lock(&t->lock);
	t->names_trimmed_ns = stats_now_ns();
	pthread_mutex_unlock(&t->lock);
	if (trim_names(t, ops, arg, true))
		trim_names(t, ops, arg, false);
}

void inode_table_distrust(struct inode_table *t)
{
	struct inode *i, *tmp;

	pthread_mutex_lock(&t->lock);
	t->distrusted = true;
	t->distrust_gen++;
	HASH_ITER(hh, t->hash, i, tmp)
		i->names_valid = false;
	pthread_mutex_unlock(&t->lock);
}

bool inode_table_trusted(struct inode_table *t)
{
	bool trusted;

	pthread_mutex_lock(&t->lock);
	trusted = !t->distrusted;
	pthread_mutex_unlock(&t->lock);
	return trusted;
}

void inode_distrust_name(struct inode_table *t, struct inode *dir,
			 const char *name)
{
	struct dname *d;

	pthread_mutex_lock(&t->lock);
	HASH_FIND(hh, dir->names, name, strlen(name), d);
	if (d)
		d->stale = true;
	pthread_mutex_unlock(&t->lock);
}

/* Whether the table asked for a trim and the last one is old enough. */
static bool trim_due(struct inode_table *t)
{
	bool due;

	pthread_mutex_lock(&t->lock);
	due = t->over_told &&
	      stats_now_ns() - t->trimmed_ns >= INODE_TRIM_SPACING_NS;
	pthread_mutex_unlock(&t->lock);
	return due;
}

unsigned inode_revalidate(struct inode_table *t,
			  const struct inode_change_ops *ops, void *arg,
			  const volatile bool *stop)
{
	struct inode *i;
	unsigned n = 0;
	uint64_t gen;
	uint32_t pass;

	inode_table_trim(t, ops, arg);
	pthread_mutex_lock(&t->lock);
	gen = t->distrust_gen;
	pass = ++t->pass;
	pthread_mutex_unlock(&t->lock);
	for (i = pin_first(t); i; i = pin_next(t, i, *stop)) {
		revalidate_one(t, i, ops, arg, pass);
		/* a long pass must not leave a growing table untrimmed */
		if (++n % 1024 == 0 && trim_due(t))
			inode_table_trim(t, ops, arg);
	}
	/* a whole pass since the last distrust: the table is the backend's */
	pthread_mutex_lock(&t->lock);
	if (!*stop && t->distrust_gen == gen)
		t->distrusted = false;
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint64_t inode_table_names(struct inode_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->names;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int inode_find_name(struct inode_table *t, struct inode *dir,
		    const char *name, struct inode **out)
{
	struct inode_key key;
	struct stat st;
	struct inode *i;
	int pfd, r;

	if (is_dot_or_dotdot(name))
		return -EINVAL;
	pfd = inode_fd_get(t, dir);
	if (pfd < 0)
		return pfd;
	r = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	inode_fd_put(t, dir);
	if (r < 0)
		return r;
	memset(&key, 0, sizeof(key));
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	pthread_mutex_lock(&t->lock);
	HASH_FIND(hh, t->hash, &key, sizeof(key), i);
	if (i && i->type == (st.st_mode & S_IFMT))
		i->pins++;
	else
		i = NULL;
	pthread_mutex_unlock(&t->lock);
	*out = i;
	return i ? 0 : 1;
}

void inode_unpin(struct inode_table *t, struct inode *i)
{
	enum release r;
	int fd;

	pthread_mutex_lock(&t->lock);
	i->pins--;
	r = do_release(t, i, &fd);
	pthread_mutex_unlock(&t->lock);
	release_done(t, i, r, fd);
}

int inode_names(struct inode_table *t, struct inode *dir, char ***out,
		size_t *n)
{
	pthread_mutex_lock(&t->lock);
	*out = do_copy_names(dir, n);
	pthread_mutex_unlock(&t->lock);
	return *out ? 0 : -ENOMEM;
}

int inode_lookahead_claim(struct inode_table *t, struct inode *dir)
{
	int r = 0;

	pthread_mutex_lock(&t->lock);
	if (S_ISDIR(dir->type) && dir->nlookup && !dir->listing) {
		if (t->names_trimmed_ns &&
		    stats_now_ns() - t->names_trimmed_ns <
			    INODE_LOOKAHEAD_QUIET_NS) {
			r = -ENOSPC;
		} else {
			dir->listing = true;
			dir->pins++;
			r = 1;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void inode_lookahead_release(struct inode_table *t, struct inode *dir,
			     bool again)
{
	enum release r;
	int fd;

	pthread_mutex_lock(&t->lock);
	if (again)
		dir->listing = false;
	dir->pins--;
	r = do_release(t, dir, &fd);
	pthread_mutex_unlock(&t->lock);
	release_done(t, dir, r, fd);
}
