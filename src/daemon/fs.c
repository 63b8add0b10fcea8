// SPDX-License-Identifier: MIT
/*
 * FUSE low-level operations: an inode-based passthrough to the backend.
 *
 * Every backend access is relative to a descriptor of the inode or of its
 * parent (*at() system calls); no path is ever rebuilt.  Symlinks are
 * handed to the kernel, never followed here, and names are resolved one
 * component at a time below the backend root, so nothing outside the
 * backend is reachable.
 *
 * Contract: helpers return 0 or a negative errno; each op function replies
 * exactly once.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "creds.h"
#include "changes.h"
#include "listing.h"
#include "lookahead.h"
#include "log.h"
#include "notify.h"
#include "peers.h"
#include "stats.h"
#include "trace.h"

#define PROC_FD_PATH_MAX 32

static struct cfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct inode *inode_of(struct cfs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return inode_root(fs->itab);
	return (struct inode *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct cfs *fs, struct inode *i)
{
	if (i == inode_root(fs->itab))
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)i;
}

fuse_ino_t fs_ino_of(struct cfs *fs, struct inode *i)
{
	return ino_of(fs, i);
}

static void proc_fd_path(char *buf, int fd)
{
	snprintf(buf, PROC_FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

/*
 * Accounting.  Every op calls op_begin() first; the reply helpers below
 * call op_end() just before answering, so the counters already include an
 * operation when the application's system call returns (reads excepted:
 * their data moves during the reply, and their latency includes it).
 */
struct op_ctx {
	struct cfs *fs;
	enum fs_op op;
	uint64_t t0;
	bool trace;	   /* record this op in the trace */
	pid_t pid;	   /* only when tracing */
	fuse_ino_t ino;	   /* the inode, or the parent of name */
	const char *name;  /* NULL when the op names no entry */
	fuse_ino_t ino2;   /* rename, link, copy_file_range: the target */
	const char *name2;
	uint64_t size;
	int64_t off;
};

static __thread struct op_ctx op;

static void op_begin(fuse_req_t req, enum fs_op o, fuse_ino_t ino,
		     const char *name)
{
	op.fs = fs_of(req);
	op.op = o;
	op.ino = ino;
	op.name = name;
	op.ino2 = 0;
	op.name2 = NULL;
	op.size = 0;
	op.off = -1;
	op.trace = false;
	if (trace_enabled()) {
		op.pid = fuse_req_ctx(req)->pid;
		op.trace = trace_wants_pid(op.pid);
	}
	op.t0 = stats_now_ns();
}

static void op_io(uint64_t size, int64_t off)
{
	op.size = size;
	op.off = off;
}

static void op_target(fuse_ino_t ino, const char *name)
{
	op.ino2 = ino;
	op.name2 = name;
}

/* Whether fd, whose /proc link reads link, has no name any more. */
static bool unlinked(int fd, const char *link, size_t len)
{
	static const char mark[] = " (deleted)";
	struct stat st;

	return len >= sizeof(mark) - 1 &&
	       !strcmp(link + len - (sizeof(mark) - 1), mark) &&
	       fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/*
 * The mount-relative path of ino, or of name in directory ino; NULL if
 * it has none (unlinked).
 */
static char *node_path(struct cfs *fs, fuse_ino_t ino, const char *name)
{
	char proc[PROC_FD_PATH_MAX], buf[PATH_MAX];
	struct inode *i = inode_of(fs, ino);
	const char *rel = buf;
	char *path;
	ssize_t n;
	int fd;

	fd = inode_fd_get(fs->itab, i);
	if (fd < 0)
		return NULL;
	proc_fd_path(proc, fd);
	n = readlink(proc, buf, sizeof(buf) - 1);
	if (n >= 0) {
		buf[n] = '\0';
		if (!name && unlinked(fd, buf, (size_t)n))
			n = -1;
	}
	inode_fd_put(fs->itab, i);
	if (n < 0)
		return NULL;
	if (fs->backend_len > 1 &&
	    strncmp(buf, fs->backend, fs->backend_len) == 0 &&
	    (buf[fs->backend_len] == '/' || buf[fs->backend_len] == '\0'))
		rel = buf[fs->backend_len] ? buf + fs->backend_len : "/";
	if (!name)
		return strdup(rel);
	if (asprintf(&path, "%s%s%s", rel, strcmp(rel, "/") ? "/" : "",
		     name) < 0)
		return NULL;
	return path;
}

char *fs_node_path(struct cfs *fs, struct inode *i)
{
	return node_path(fs, ino_of(fs, i), NULL);
}

/* name in directory ino changed: so did the directory's listing. */
static void peer_dir(struct cfs *fs, fuse_ino_t ino, const char *name)
{
	char *path;

	if (name && (path = node_path(fs, ino, NULL))) {
		peers_changed(fs->peers, path);
		free(path);
	}
}

/* Whether a tier keyed by path (memcached) is in use. */
static bool shared(const struct cfs *fs)
{
	return fs->cache && cache_needs_path(fs->cache);
}

/* Files a shared tier may hold: web servers serve them to anyone. */
static bool shareable(mode_t mode)
{
	return S_ISREG(mode) && (mode & S_IROTH);
}

/*
 * path changed through this mount, or on the backend: a shared tier's
 * value for it goes before the change is reported done.  A tier that
 * cannot reach its server now makes sure the value goes when it can.
 */
static void shared_forget_path(struct cfs *fs, const char *path)
{
	if (cache_forget_path(fs->cache, path) < 0)
		stats_inc(shared_forget_deferred);
}

void fs_shared_forget(struct cfs *fs, struct inode *i, const char *name)
{
	char *path;

	if (!shared(fs) || !(path = node_path(fs, ino_of(fs, i), name)))
		return;
	shared_forget_path(fs, path);
	free(path);
}

/*
 * A value was stored for path in a shared tier, read from ino while its
 * generation was gen: if a write through this mount landed meanwhile,
 * whose forget the value may have missed, it goes.
 */
static void shared_recheck(struct cfs *fs, fuse_ino_t ino, uint64_t gen,
			   const char *path)
{
	struct tier_version now;

	if (inode_version(fs->itab, inode_of(fs, ino), &now) && now.gen != gen)
		shared_forget_path(fs, path);
}

/*
 * ino was written through this mount (marked by note_change()) and is
 * being closed, or was renamed: store its bytes in the tiers, so that a
 * web server reading a shared tier has them when close(2) returns.
 */
static void shared_store(struct cfs *fs, fuse_ino_t ino, int fd)
{
	struct inode *i = inode_of(fs, ino);
	struct tier_version v;
	struct datafd *ref = NULL;
	char *path;

	if (!shareable(inode_mode(fs->itab, i)) ||
	    !inode_version(fs->itab, i, &v) ||
	    !(path = node_path(fs, ino, NULL)))
		return;
	if (fd < 0 && fs->no_open)
		fd = datafd_get(fs->data, i, false, &ref);
	if (fd < 0)
		fd = -1;
	if (fd >= 0 && cache_store(fs->cache, path, fd, v.gen, false) == 0) {
		stats_inc(shared_stores);
		shared_recheck(fs, ino, v.gen, path);
	}
	if (ref)
		datafd_put(fs->data, ref);
	free(path);
}

/* A set of journal ops, as note_change() takes them. */
#define J(op) (1u << JOURNAL_OP_##op)

/* The one data op in jops, or 0. */
static enum journal_op single_data_op(unsigned jops)
{
	enum journal_op jop;

	if (!jops || (jops & (jops - 1)))
		return 0;
	jop = (enum journal_op)__builtin_ctz(jops);
	return journal_op_class(jop) == JOURNAL_CLASS_DATA ? jop : 0;
}

/*
 * The journal's record of a change to subject (NULL: not known), each
 * of jops in turn, at path (NULL: it has none any more) and path2.
 */
static void journal_change(struct cfs *fs, unsigned jops,
			   struct inode *subject, const char *path,
			   bool two, const char *path2)
{
	unsigned char handle[JOURNAL_HANDLE_MAX];
	struct journal_record r = { .path = path ? path : "" };

	if (two)
		r.path2 = path2 ? path2 : "";
	if (subject)
		r.handle_len = inode_identity(subject, &r.dev, &r.ino, handle,
					      sizeof(handle));
	r.handle = r.handle_len ? handle : NULL;
	for (int k = 1; k < JOURNAL_OP__END; k++) {
		if (!(jops & 1u << k))
			continue;
		r.op = (enum journal_op)k;
		changes_record(fs->changes, &r);
	}
}

/*
 * Whether the journal's newest record says already that subject's data
 * changed, as jops (one data op) would say again.
 */
static bool journal_coalesced(struct cfs *fs, unsigned jops,
			      struct inode *subject)
{
	unsigned char handle[JOURNAL_HANDLE_MAX];
	struct journal_record r = { .path = "" };

	r.op = single_data_op(jops);
	if (!r.op)
		return false;
	inode_identity(subject, &r.dev, &r.ino, handle, sizeof(handle));
	return changes_coalesce(fs->changes, &r);
}

/*
 * A change through this mount, to ino or to name in directory ino (and
 * so to the directory's listing), and for rename and link to a second
 * place: record it in the journal as each of jops (J(...)) happening to
 * subject (NULL: ino itself when name is NULL, else not known), and
 * tell the shared tiers, the peers and the notify listener.  Before the
 * reply: a change the application was told of is in the journal.
 */
static void note_change(struct cfs *fs, unsigned jops, fuse_ino_t ino,
			const char *name, fuse_ino_t ino2, const char *name2,
			struct inode *subject)
{
	bool data = !name && S_ISREG(inode_type(inode_of(fs, ino)));
	bool journal = fs->changes != NULL;
	char *path, *path2 = NULL;

	/*
	 * Values taken from ino before are not its own any more; and the
	 * change (to it, or to the directory's entries) is the kernel's own:
	 * the revalidator must not report it back.
	 */
	/* (a directory's entries are its data: its listing is kept too) */
	inode_changed_here(fs->itab, inode_of(fs, ino));
	if (ino2)
		inode_changed_here(fs->itab, inode_of(fs, ino2));
	inode_refresh(fs->itab, inode_of(fs, ino));
	if (ino2)
		inode_refresh(fs->itab, inode_of(fs, ino2));
	if (!subject && !name)
		subject = inode_of(fs, ino);
	/* runs of writes need no path while nobody has read the first */
	if (journal && !name && !ino2 && journal_coalesced(fs, jops, subject))
		journal = false;
	if (!journal && !fs->peers && !fs->notify && !shared(fs))
		return;
	path = node_path(fs, ino, name);
	if (ino2)
		path2 = node_path(fs, ino2, name2);
	if (journal)
		journal_change(fs, jops, subject, path, ino2 != 0, path2);
	if (shared(fs)) {
		/* its bytes go to the shared tiers again once it is closed */
		if (data)
			inode_mark(fs->itab, inode_of(fs, ino), true);
		if (path && (name || data))
			shared_forget_path(fs, path);
		if (path2)
			shared_forget_path(fs, path2);
	}
	if (!fs->peers && !fs->notify)
		goto out;
	if (!path || (ino2 && !path2))
		goto out;
	/* the notify names are the FUSE ops', setattr's by what it did */
	for (int k = 1; fs->notify && k < JOURNAL_OP__END; k++)
		if (jops & 1u << k)
			notify_send(fs->notify,
				    op.op == OP_setattr
					    ? journal_op_name((enum journal_op)k)
					    : fs_op_names[op.op],
				    path, path2);
	if (fs->peers) {
		peers_changed(fs->peers, path);
		if (path2)
			peers_changed(fs->peers, path2);
		peer_dir(fs, ino, name);
		peer_dir(fs, ino2, name2);
	}
out:
	free(path);
	free(path2);
}

/*
 * Whether a change may be made: the journal can record it.  Before the
 * backend is touched; the error to reply with, or 0.
 */
static int admit(struct cfs *fs)
{
	return fs->changes ? changes_admit(fs->changes) : 0;
}

static void op_trace(int err, uint64_t ns)
{
	struct trace_rec rec = {
		.pid = op.pid,
		.op = op.op,
		.size = op.size,
		.offset = op.off,
		.result = -err,
		.ns = ns,
	};
	static __thread pid_t comm_pid;
	static __thread char comm[16];
	char *a = NULL, *b = NULL;

	if (comm_pid != op.pid) {
		char p[32];
		FILE *f;

		snprintf(p, sizeof(p), "/proc/%d/comm", (int)op.pid);
		comm[0] = '\0';
		f = fopen(p, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		comm_pid = op.pid;
	}
	memcpy(rec.comm, comm, sizeof(comm));
	if (op.ino)
		a = node_path(op.fs, op.ino, op.name);
	if (op.ino2)
		b = node_path(op.fs, op.ino2, op.name2);
	if (b) {
		if (asprintf(&rec.path, "%s -> %s", a ? a : "?", b) < 0)
			rec.path = NULL;
		free(a);
		free(b);
	} else {
		rec.path = a;
	}
	clock_gettime(CLOCK_REALTIME, &rec.time);
	trace_record(&rec);
}

/* Errors that say the backend itself is failing, not the request. */
static bool backend_down(int err)
{
	return err == EIO || err == ETIMEDOUT || err == ESTALE ||
	       err == ENOTCONN;
}

/*
 * The backend failed a request: the mount is degraded until it answers
 * again (fs_probe_backend()).
 */
static void backend_failed(struct cfs *fs)
{
	__atomic_add_fetch(&fs->backend_failures, 1, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&fs->degraded, true, __ATOMIC_RELAXED))
		log_warning("backend %s is failing; the mount is degraded",
			    fs->backend);
}

/* err: 0 or a positive errno, as the application will see it. */
static void op_end(int err, uint64_t bytes)
{
	uint64_t ns = stats_now_ns() - op.t0;

	stats_op(op.op, err, bytes, ns);
	if (op.trace)
		op_trace(err, ns);
}

/* The replies: account, then answer. */
static void reply_err(fuse_req_t req, int err)
{
	if (backend_down(err))
		backend_failed(op.fs);
	op_end(err, 0);
	fuse_reply_err(req, err);
}

static void reply_none(fuse_req_t req)
{
	op_end(0, 0);
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, const struct stat *st, double timeout)
{
	op_end(0, 0);
	fuse_reply_attr(req, st, timeout);
}

static void reply_readlink(fuse_req_t req, const char *link)
{
	op_end(0, 0);
	fuse_reply_readlink(req, link);
}

static int reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	op_end(0, 0);
	return fuse_reply_open(req, fi);
}

static int reply_create(fuse_req_t req, const struct fuse_entry_param *e,
			const struct fuse_file_info *fi)
{
	op_end(0, 0);
	return fuse_reply_create(req, e, fi);
}

/* The data moves while replying, so this one accounts afterwards. */
static void reply_data(fuse_req_t req, struct fuse_bufvec *buf,
		       enum fuse_buf_copy_flags flags)
{
	size_t size = fuse_buf_size(buf);

	fuse_reply_data(req, buf, flags);
	op_end(0, size);
}

static void reply_write(fuse_req_t req, size_t n)
{
	op_end(0, n);
	fuse_reply_write(req, n);
}

static void reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	op_end(0, 0);
	fuse_reply_buf(req, buf, size);
}

static void reply_statfs(fuse_req_t req, const struct statvfs *sv)
{
	op_end(0, 0);
	fuse_reply_statfs(req, sv);
}

static void reply_xattr(fuse_req_t req, size_t size)
{
	op_end(0, 0);
	fuse_reply_xattr(req, size);
}

static void reply_lseek(fuse_req_t req, off_t off)
{
	op_end(0, 0);
	fuse_reply_lseek(req, off);
}

/* Open files and directories, for status. */
static void count_open(uint64_t *counter, int n)
{
	__atomic_add_fetch(counter, (uint64_t)(int64_t)n, __ATOMIC_RELAXED);
}

static int neg_errno(int r)
{
	return r < 0 ? -errno : r;
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/*
 * err (negative) came from the backend: whether to answer from the cache
 * instead, which the offline option allows for a failing backend.
 */
static bool offline(struct cfs *fs, int err)
{
	return err < 0 && backend_down(-err) &&
	       __atomic_load_n(&fs->cfg->offline, __ATOMIC_RELAXED);
}

void fs_balance_memory(struct cfs *fs)
{
	uint64_t *trimmed_at = &fs->table_trimmed_at;
	uint64_t budget = fs->cfg->cache_size, table;

	if (!fs->cache)
		return;
	table = inode_table_bytes(fs->itab);
	cache_set_budget(fs->cache,
			 budget - (table < FS_TABLE_SHARE(budget)
					   ? table
					   : FS_TABLE_SHARE(budget)));
	/* give what the table freed back to the system, not to malloc */
	if (table + (4u << 20) < *trimmed_at)
		malloc_trim(0);
	if (table + (4u << 20) < *trimmed_at || table > *trimmed_at)
		*trimmed_at = table;
}

void fs_probe_backend(struct cfs *fs)
{
	struct inode *root = inode_root(fs->itab);
	struct stat st;
	int fd;

	if (!__atomic_load_n(&fs->degraded, __ATOMIC_RELAXED))
		return;
	fd = inode_fd_get(fs->itab, root);
	if (fd < 0)
		return;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) == 0) {
		__atomic_store_n(&fs->degraded, false, __ATOMIC_RELAXED);
		log_notice("backend %s answers again", fs->backend);
	}
	inode_fd_put(fs->itab, root);
}

static bool caching(struct cfs *fs)
{
	return __atomic_load_n(&fs->cfg->cache, __ATOMIC_RELAXED);
}

/*
 * A kernel cache timeout (a run-time option, so read atomically); zero
 * while caching is off.
 */
static double timeout(struct cfs *fs, const double *option)
{
	double t;

	if (!__atomic_load_n(&fs->cfg->cache, __ATOMIC_RELAXED))
		return 0;
	__atomic_load(option, &t, __ATOMIC_RELAXED);
	return t;
}

bool fs_entries_cached(struct cfs *fs)
{
	return timeout(fs, &fs->cfg->entry_timeout) > 0;
}

/*
 * Look name up in the backend (after a change through this mount, or for
 * the kernel's lookup when memory does not know it).
 */
static int do_lookup(struct cfs *fs, fuse_ino_t parent, const char *name,
		     const struct tier_version *hint,
		     struct fuse_entry_param *e)
{
	struct inode *i;
	int r;

	memset(e, 0, sizeof(*e));
	r = inode_lookup(fs->itab, inode_of(fs, parent), name, hint, &e->attr,
			 &i);
	if (r < 0)
		return r;
	if (r > 0)
		stats_inc(lookup_shared_current);
	/* what the kernel is about to be told, for the revalidator */
	inode_note_entry(fs->itab, inode_of(fs, parent), name, i, &e->attr);
	e->ino = ino_of(fs, i);
	e->attr_timeout = timeout(fs, &fs->cfg->attr_timeout);
	e->entry_timeout = timeout(fs, &fs->cfg->entry_timeout);
	return 0;
}

/*
 * The kernel's lookup.  What the table remembers is as fresh as what the
 * kernel caches (the revalidator keeps both): a name the kernel forgot
 * is answered from memory, found or missing.  Returns -ENODATA when
 * memory does not know.
 */
static int lookup_memory(struct cfs *fs, fuse_ino_t parent, const char *name,
			 struct fuse_entry_param *e)
{
	struct inode *i;
	int r;

	if (!caching(fs))
		return -ENODATA;
	memset(e, 0, sizeof(*e));
	r = inode_lookup_cached(fs->itab, inode_of(fs, parent), name, false,
				&e->attr, &i);
	if (r == -ENODATA || r == -EINVAL)
		return -ENODATA;
	stats_inc(lookup_memory);
	if (r < 0) {
		stats_inc(lookup_memory_missing);
		return r;
	}
	e->ino = ino_of(fs, i);
	e->attr_timeout = timeout(fs, &fs->cfg->attr_timeout);
	e->entry_timeout = timeout(fs, &fs->cfg->entry_timeout);
	return 0;
}

/* Reply with an entry; if the kernel no longer wants it, undo the lookup. */
static void reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	struct cfs *fs = fs_of(req);

	op_end(e->ino ? 0 : ENOENT, 0);
	if (fuse_reply_entry(req, e) == -ENOENT && e->ino)
		inode_forget(fs->itab, inode_of(fs, e->ino), 1);
}

static int streams_new(struct cfs *fs);

static void cfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cfs *fs = userdata;
	const unsigned splice = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;

	if (fs->cfg->splice)
		conn->want |= conn->capable & splice;
	else
		conn->want &= ~(splice | FUSE_CAP_SPLICE_READ);
	conn->want |= conn->capable &
		      (FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS |
		       FUSE_CAP_ASYNC_DIO | FUSE_CAP_ASYNC_READ);
	/*
	 * The kernel keeps symlink targets in its page cache, and drops a
	 * file's cached pages when fresh attributes show a new mtime or
	 * size; the revalidator triggers both for changes on the backend.
	 */
	conn->want |= conn->capable &
		      (FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_AUTO_INVAL_DATA);
	/* Writes are sent through to the backend as they happen. */
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_EXPORT_SUPPORT);
	/* Locks stay local to this host's kernel (see cachefs(8)). */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/*
	 * With no_open the kernel checks permissions at open(2) itself
	 * (default_permissions) and sends neither OPEN, FLUSH nor RELEASE;
	 * it truncates for O_TRUNC through setattr, as it must, since no
	 * OPEN carries the flag.
	 */
	if (fs->data && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)) {
		conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
		fs->no_open = true;
	}
	/*
	 * With no_opendir the kernel checks permissions at opendir itself
	 * and keeps listings across opens; a READDIR comes without a handle
	 * (dir_streams).
	 */
	if (fs->cfg->no_opendir &&
	    (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) &&
	    streams_new(fs) == 0) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		fs->no_opendir = true;
	}
	/* The kernel clears setuid bits itself, through setattr. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/*
	 * With ACLs the backend applies the caller's umask (creating
	 * threads take it on), and only where no default ACL says otherwise.
	 */
	if (fs->cfg->acl && (conn->capable & FUSE_CAP_POSIX_ACL) &&
	    (conn->capable & FUSE_CAP_DONT_MASK)) {
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
		fs->acl = true;
	}
}

/* Credentials for creating an object as the caller. */
static int creds_enter_create(fuse_req_t req)
{
	return creds_enter(req, fs_of(req)->acl ? CREDS_UMASK : 0);
}

/*
 * The backend failed a lookup with err: answer from what the inode table
 * remembers, if it does.
 */
static int lookup_offline(struct cfs *fs, fuse_ino_t parent, const char *name,
			  int err, struct fuse_entry_param *e)
{
	struct inode *i;
	int r;

	backend_failed(fs);
	memset(e, 0, sizeof(*e));
	r = inode_lookup_cached(fs->itab, inode_of(fs, parent), name, true,
				&e->attr, &i);
	if (r == -ENODATA)
		return err;
	stats_inc(offline_served);
	if (r < 0)
		return r;
	e->ino = ino_of(fs, i);
	e->attr_timeout = timeout(fs, &fs->cfg->attr_timeout);
	e->entry_timeout = timeout(fs, &fs->cfg->entry_timeout);
	return 0;
}

/*
 * Whether times (ns) are over two seconds old: an entry made in a
 * directory within the same clock tick as the one before might not move
 * them, so only then does its version tell that nothing changed.
 */
static bool settled_ns(int64_t mtime_ns, int64_t ctime_ns)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec - mtime_ns / 1000000000 >= 2 &&
	       now.tv_sec - ctime_ns / 1000000000 >= 2;
}

/*
 * Look name up in the backend; with a shared tier, first ask it what
 * other hosts know of the name: missing from the directory as it is now
 * (-ENOENT without the backend), or the version of its bytes, which
 * spares asking the backend for attributes its client already holds in
 * that version.  Tell it when the backend has not the name, with the
 * directory's version.
 */
static int lookup_shared(struct cfs *fs, fuse_ino_t parent, const char *name,
			 struct fuse_entry_param *e)
{
	struct tier_version dir, ver, *hint = NULL;
	char *path = NULL;
	int r;

	if (shared(fs) && caching(fs) &&
	    inode_version(fs->itab, inode_of(fs, parent), &dir))
		path = node_path(fs, parent, name);
	if (path && inode_table_trusted(fs->itab)) {
		switch (cache_name(fs->cache, path, &dir, &ver)) {
		case CACHE_NAME_MISSING:
			stats_inc(lookup_shared_missing);
			free(path);
			return -ENOENT;
		case CACHE_NAME_FOUND:
			hint = &ver;
			break;
		case CACHE_NAME_UNKNOWN:
			break;
		}
	}
	r = do_lookup(fs, parent, name, hint, e);
	if (r == -ENOENT && path && settled_ns(dir.mtime_ns, dir.ctime_ns))
		cache_note_missing(fs->cache, path, &dir);
	free(path);
	return r;
}

static void cfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs *fs = fs_of(req);
	struct fuse_entry_param e;
	int r;

	op_begin(req, OP_lookup, parent, name);
	/* "." and ".." come only to exported mounts; inode_lookup refuses them. */
	r = lookup_memory(fs, parent, name, &e);
	if (r == -ENODATA)
		r = lookup_shared(fs, parent, name, &e);
	if (offline(fs, r))
		r = lookup_offline(fs, parent, name, r, &e);
	if (r == 0) /* the other names here are likely asked next */
		lookahead_note(fs->lookahead, inode_of(fs, parent));
	if (r == -ENOENT && timeout(fs, &fs->cfg->negative_timeout) > 0) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = timeout(fs, &fs->cfg->negative_timeout);
		inode_note_name(fs->itab, inode_of(fs, parent), name, 0);
		reply_entry(req, &e);
	} else if (r < 0) {
		reply_err(req, -r);
	} else {
		reply_entry(req, &e);
	}
}

static void cfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct cfs *fs = fs_of(req);

	op_begin(req, OP_forget, 0, NULL);
	inode_forget(fs->itab, inode_of(fs, ino), nlookup);
	reply_none(req);
}

static void cfs_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	struct cfs *fs = fs_of(req);

	op_begin(req, OP_forget, 0, NULL);
	for (size_t k = 0; k < count; k++)
		inode_forget(fs->itab, inode_of(fs, forgets[k].ino),
			     forgets[k].nlookup);
	reply_none(req);
}

/*
 * A file handle (fi->fh): the backend descriptor of the open (none with
 * no_open) in the low 32 bits, and FH_DIRECT when the kernel sends its
 * writes around the page cache (write_only_direct).
 */
#define FH_DIRECT (UINT64_C(1) << 32)

static int fh_fd(const struct fuse_file_info *fi)
{
	return (int)(uint32_t)fi->fh;
}

/*
 * A write-only open of a regular file writes around the kernel's page
 * cache (FOPEN_DIRECT_IO): nothing reads through it, nor can it be
 * mapped, and a cached write(2) costs two round trips, as the kernel
 * first asks for security.capability (FUSE sets no SB_NOSEC) to see
 * whether the write must drop it; the backend, written as the caller,
 * drops setuid bits and capabilities by its own rules.
 */
static void direct_if_write_only(struct cfs *fs, struct fuse_file_info *fi)
{
	if (fs->cfg->write_only_direct && (fi->flags & O_ACCMODE) == O_WRONLY) {
		fi->direct_io = 1;
		fi->fh |= FH_DIRECT;
	}
}

/* The descriptor of an open regular file, or -1. */
static int open_fd(struct cfs *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi && !fs->no_open && S_ISREG(inode_type(inode_of(fs, ino))))
		return fh_fd(fi);
	return -1;
}

/*
 * The backend descriptor for the data of regular file ino: the open
 * file's own or, with no_open, the inode's shared one (read-write when
 * write is true).  Hand *ref back to data_put().  Returns the descriptor
 * or a negative errno.
 */
static int data_get(struct cfs *fs, fuse_ino_t ino, struct fuse_file_info *fi,
		    bool write, struct datafd **ref)
{
	*ref = NULL;
	if (!fs->no_open)
		return fh_fd(fi);
	return datafd_get(fs->data, inode_of(fs, ino), write, ref);
}

static void data_put(struct cfs *fs, struct datafd *ref)
{
	if (ref)
		datafd_put(fs->data, ref);
}

/*
 * The inode name in dir leads to, about to be unlinked or replaced,
 * pinned (inode_unpin() it), or NULL when the table holds none.  With
 * no_open, a regular file the kernel knows may be open while its last
 * name goes: a descriptor is held so that the backend keeps the file
 * for the reads and writes still to come, until the kernel forgets it.
 */
static struct inode *pin_victim(struct cfs *fs, struct inode *dir,
				const char *name)
{
	struct inode *i;

	if (inode_find_name(fs->itab, dir, name, &i) != 0)
		return NULL;
	/* only the kernel can hold the file open */
	if (fs->no_open && S_ISREG(inode_type(i)) && inode_known(fs->itab, i))
		datafd_keep(fs->data, i);
	return i;
}

/* The victim lost a link, or its last one: refreshed, and not kept. */
static void victim_done(struct cfs *fs, struct inode *victim)
{
	inode_refresh(fs->itab, victim);
	inode_drop(fs->itab, victim);
}

static int do_getattr(struct cfs *fs, fuse_ino_t ino, int ofd,
		      struct stat *st)
{
	struct inode *i = inode_of(fs, ino);
	int fd, r;

	if (ofd >= 0)
		return neg_errno(fstat(ofd, st));
	fd = inode_fd_get(fs->itab, i);
	if (fd < 0)
		return fd;
	r = neg_errno(fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	inode_fd_put(fs->itab, i);
	return r;
}

static void cfs_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct stat st;
	int r;

	op_begin(req, OP_getattr, ino, NULL);
	r = do_getattr(fs, ino, open_fd(fs, ino, fi), &st);
	if (r == 0) {
		inode_note_attr(fs->itab, inode_of(fs, ino), &st);
	} else if (offline(fs, r) &&
		   inode_cached_stat(fs->itab, inode_of(fs, ino), &st)) {
		backend_failed(fs);
		stats_inc(offline_served);
		r = 0;
	}
	if (r < 0)
		reply_err(req, -r);
	else
		reply_attr(req, &st, timeout(fs, &fs->cfg->attr_timeout));
}

static struct timespec utime_of(int valid, int set, int now,
				struct timespec ts)
{
	if (!(valid & set))
		return (struct timespec){ .tv_nsec = UTIME_OMIT };
	if (valid & now)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	return ts;
}

static int do_setattr(struct inode *i, int fd, int ofd, const struct stat *a,
		      int valid)
{
	char proc[PROC_FD_PATH_MAX];
	int r;

	proc_fd_path(proc, fd);
	if (valid & FUSE_SET_ATTR_MODE) {
		r = ofd >= 0 ? fchmod(ofd, a->st_mode)
			     : fchmodat(AT_FDCWD, proc, a->st_mode, 0);
		if (r < 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = valid & FUSE_SET_ATTR_UID ? a->st_uid : (uid_t)-1;
		gid_t gid = valid & FUSE_SET_ATTR_GID ? a->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		r = ofd >= 0 ? ftruncate(ofd, a->st_size)
			     : truncate(proc, a->st_size);
		if (r < 0)
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = {
			utime_of(valid, FUSE_SET_ATTR_ATIME,
				 FUSE_SET_ATTR_ATIME_NOW, a->st_atim),
			utime_of(valid, FUSE_SET_ATTR_MTIME,
				 FUSE_SET_ATTR_MTIME_NOW, a->st_mtim),
		};

		if (ofd >= 0)
			r = futimens(ofd, ts);
		else if (S_ISLNK(inode_type(i)))
			r = utimensat(fd, "", ts, AT_EMPTY_PATH);
		else
			r = utimensat(AT_FDCWD, proc, ts, 0);
		if (r < 0)
			return -errno;
	}
	return 0;
}

/* What a setattr changed (new times come with a truncation). */
static unsigned setattr_ops(int valid)
{
	unsigned jops = 0;

	if (valid & FUSE_SET_ATTR_SIZE)
		jops |= J(TRUNCATE);
	if (valid & FUSE_SET_ATTR_MODE)
		jops |= J(CHMOD);
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		jops |= J(CHOWN);
	if (!jops)
		jops = J(UTIMENS);
	return jops;
}

static void cfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			int valid, struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	int ofd = open_fd(fs, ino, fi);
	struct stat st;
	int fd, r;

	op_begin(req, OP_setattr, ino, NULL);
	if (valid & FUSE_SET_ATTR_SIZE)
		op_io(attr->st_size, -1);
	r = admit(fs);
	fd = r < 0 ? r : inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	r = do_setattr(i, fd, ofd, attr, valid);
	if (r == 0)
		r = neg_errno(fstatat(fd, "", &st,
				      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	inode_fd_put(fs->itab, i);
	if (r == 0) {
		inode_note_attr(fs->itab, i, &st);
		note_change(fs, setattr_ops(valid), ino, NULL, 0, NULL, NULL);
	}
	if (r < 0)
		reply_err(req, -r);
	else
		reply_attr(req, &st, timeout(fs, &fs->cfg->attr_timeout));
}

static void cfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd;

	op_begin(req, OP_readlink, ino, NULL);
	fd = inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	if (n < 0)
		n = -errno;
	else if ((size_t)n == sizeof(buf))
		n = -ENAMETOOLONG;
	inode_fd_put(fs->itab, i);
	if (n < 0) {
		reply_err(req, (int)-n);
		return;
	}
	buf[n] = '\0';
	reply_readlink(req, buf);
}

/*
 * Create a node in parent as the caller (mknod, mkdir, symlink), then
 * look it up.
 */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev, const char *link)
{
	struct cfs *fs = fs_of(req);
	struct inode *dir = inode_of(fs, parent);
	struct fuse_entry_param e;
	unsigned jops;
	int pfd, r;

	r = admit(fs);
	pfd = r < 0 ? r : inode_fd_get(fs->itab, dir);
	if (pfd < 0) {
		reply_err(req, -pfd);
		return;
	}
	r = creds_enter_create(req);
	if (r == 0) {
		if (link)
			r = symlinkat(link, pfd, name);
		else if (S_ISDIR(mode))
			r = mkdirat(pfd, name, mode);
		else
			r = mknodat(pfd, name, mode, rdev);
		r = neg_errno(r);
		creds_leave();
	}
	inode_fd_put(fs->itab, dir);
	if (r == 0) {
		jops = link		? J(SYMLINK)
		       : S_ISDIR(mode) ? J(MKDIR)
		       : S_ISREG(mode) ? J(CREATE)
				       : J(MKNOD);
		r = do_lookup(fs, parent, name, NULL, &e);
		note_change(fs, jops, parent, name, 0, NULL,
			    r == 0 ? inode_of(fs, e.ino) : NULL);
	}
	if (r < 0)
		reply_err(req, -r);
	else
		reply_entry(req, &e);
}

static void cfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev)
{
	op_begin(req, OP_mknod, parent, name);
	make_node(req, parent, name, mode, rdev, NULL);
}

static void cfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode)
{
	op_begin(req, OP_mkdir, parent, name);
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

static void cfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			const char *name)
{
	op_begin(req, OP_symlink, parent, name);
	make_node(req, parent, name, S_IFLNK, 0, link);
}

static void cfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		     const char *newname)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino), *dir = inode_of(fs, newparent);
	struct fuse_entry_param e;
	int fd, pfd, r;

	op_begin(req, OP_link, ino, NULL);
	op_target(newparent, newname);
	r = admit(fs);
	fd = r < 0 ? r : inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	pfd = inode_fd_get(fs->itab, dir);
	r = pfd < 0 ? pfd
		    : neg_errno(linkat(fd, "", pfd, newname, AT_EMPTY_PATH));
	if (pfd >= 0)
		inode_fd_put(fs->itab, dir);
	inode_fd_put(fs->itab, i);
	if (r == 0) {
		/* the new name, and the inode's link count */
		note_change(fs, J(LINK), ino, NULL, newparent, newname, i);
		r = do_lookup(fs, newparent, newname, NULL, &e);
	}
	if (r < 0)
		reply_err(req, -r);
	else
		reply_entry(req, &e);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 int flags)
{
	struct cfs *fs = fs_of(req);
	struct inode *dir = inode_of(fs, parent), *victim;
	int pfd, r;

	r = admit(fs);
	pfd = r < 0 ? r : inode_fd_get(fs->itab, dir);
	if (pfd < 0) {
		reply_err(req, -pfd);
		return;
	}
	victim = pin_victim(fs, dir, name);
	r = neg_errno(unlinkat(pfd, name, flags));
	inode_fd_put(fs->itab, dir);
	if (r == 0) {
		inode_note_name(fs->itab, dir, name, 0);
		note_change(fs, flags & AT_REMOVEDIR ? J(RMDIR) : J(UNLINK),
			    parent, name, 0, NULL, victim);
		if (victim)
			victim_done(fs, victim);
	}
	if (victim)
		inode_unpin(fs->itab, victim);
	reply_err(req, -r);
}

static void cfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_begin(req, OP_unlink, parent, name);
	remove_entry(req, parent, name, 0);
}

static void cfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_begin(req, OP_rmdir, parent, name);
	remove_entry(req, parent, name, AT_REMOVEDIR);
}

/*
 * The inode now at name in dir was moved there through this mount, as
 * the kernel knows: remember where the name leads, and the inode as it
 * is (a rename moves its change time), like note_change() does.
 */
static void refresh_name(struct cfs *fs, struct inode *dir, const char *name)
{
	struct tier_version v;
	struct inode *i;

	if (inode_find_name(fs->itab, dir, name, &i) != 0)
		return;
	inode_refresh(fs->itab, i);
	if (inode_version(fs->itab, i, &v))
		inode_note_name(fs->itab, dir, name, v.ino);
	inode_unpin(fs->itab, i);
}

#define SHARED_TREE_DEPTH 256

/*
 * A directory moved from old to new (mount paths), now open at fd: the
 * shared tiers forget every file below it under both names, the old one
 * served no more, the new one possibly stale from before.
 */
static void shared_forget_tree(struct cfs *fs, int fd, const char *old,
			       const char *new, unsigned depth)
{
	struct dirent *e;
	DIR *d;

	if (depth > SHARED_TREE_DEPTH || !(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		char *o = NULL, *n = NULL;
		unsigned char type = e->d_type;
		struct stat st;

		if (is_dot_or_dotdot(e->d_name))
			continue;
		if (type == DT_UNKNOWN &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			type = IFTODT(st.st_mode);
		if ((type != DT_DIR && type != DT_REG) ||
		    asprintf(&o, "%s/%s", old, e->d_name) < 0)
			continue;
		if (asprintf(&n, "%s/%s", new, e->d_name) < 0) {
			free(o);
			continue;
		}
		if (type == DT_REG) {
			shared_forget_path(fs, o);
			shared_forget_path(fs, n);
		} else {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC);

			if (sub >= 0)
				shared_forget_tree(fs, sub, o, n, depth + 1);
		}
		free(o);
		free(n);
	}
	closedir(d);
}

/*
 * name in dir dino was moved to newname in ndino (both already forgotten
 * by note_change()): a file's bytes are stored under its new name, a
 * directory's files are forgotten under both.
 */
static void shared_moved(struct cfs *fs, fuse_ino_t dino, const char *name,
			 fuse_ino_t ndino, const char *newname)
{
	char *old = node_path(fs, dino, name), *new = NULL;
	struct inode *i;
	int fd;

	if (!old || inode_find_name(fs->itab, inode_of(fs, ndino), newname,
				    &i) != 0) {
		free(old);
		return;
	}
	if (S_ISREG(inode_type(i))) {
		shared_store(fs, ino_of(fs, i), -1);
	} else if (S_ISDIR(inode_type(i)) &&
		   (new = node_path(fs, ndino, newname))) {
		fd = inode_open(fs->itab, i, O_RDONLY | O_DIRECTORY);
		if (fd >= 0)
			shared_forget_tree(fs, fd, old, new, 0);
	}
	inode_unpin(fs->itab, i);
	free(old);
	free(new);
}

static void cfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname,
		       unsigned int flags)
{
	struct cfs *fs = fs_of(req);
	struct inode *od = inode_of(fs, parent), *nd = inode_of(fs, newparent);
	struct inode *victim = NULL, *moved = NULL;
	int ofd, nfd, r;

	op_begin(req, OP_rename, parent, name);
	op_target(newparent, newname);
	r = admit(fs);
	ofd = r < 0 ? r : inode_fd_get(fs->itab, od);
	if (ofd < 0) {
		reply_err(req, -ofd);
		return;
	}
	if (inode_find_name(fs->itab, od, name, &moved) != 0)
		moved = NULL;
	nfd = inode_fd_get(fs->itab, nd);
	if (nfd >= 0 && !(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)))
		victim = pin_victim(fs, nd, newname);
	r = nfd < 0 ? nfd
		    : neg_errno(renameat2(ofd, name, nfd, newname, flags));
	if (nfd >= 0)
		inode_fd_put(fs->itab, nd);
	inode_fd_put(fs->itab, od);
	if (r == 0) { /* the kernel moves its entries itself */
		inode_note_name(fs->itab, od, name,
				flags & RENAME_EXCHANGE ? INODE_INO_UNKNOWN
							: 0);
		inode_note_name(fs->itab, nd, newname, INODE_INO_UNKNOWN);
		note_change(fs,
			    flags & RENAME_EXCHANGE ? J(EXCHANGE) : J(RENAME),
			    parent, name, newparent, newname, moved);
		/* the moved inodes' change times are this mount's doing too */
		refresh_name(fs, nd, newname);
		if (flags & RENAME_EXCHANGE)
			refresh_name(fs, od, name);
		if (shared(fs)) {
			shared_moved(fs, parent, name, newparent, newname);
			if (flags & RENAME_EXCHANGE)
				shared_moved(fs, newparent, newname, parent,
					     name);
		}
		if (victim) /* replaced */
			victim_done(fs, victim);
	}
	if (victim)
		inode_unpin(fs->itab, victim);
	if (moved)
		inode_unpin(fs->itab, moved);
	reply_err(req, -r);
}

/*
 * O_DIRECT is the kernel's business; the backend sees buffered I/O.  On a
 * noatime mount, reading through cachefs must not touch the backend's
 * access times either.
 */
static int backend_flags(struct cfs *fs, int flags)
{
	flags &= ~(O_DIRECT | O_NOCTTY);
	return fs->noatime ? flags | O_NOATIME : flags;
}

static void cfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	bool truncates;
	int fd;

	op_begin(req, OP_open, ino, NULL);
	if (fs->no_open) {
		/* the kernel takes this as "opens need no daemon", for good */
		op_end(0, 0);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* the open truncates on the backend: a change like any other */
	truncates = (fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE);
	fd = truncates ? admit(fs) : 0;
	if (fd == 0)
		fd = inode_open(fs->itab, inode_of(fs, ino),
				backend_flags(fs, fi->flags));
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	if (truncates)
		note_change(fs, J(TRUNCATE), ino, NULL, 0, NULL, NULL);
	fi->fh = fd;
	fi->keep_cache = caching(fs);
	direct_if_write_only(fs, fi);
	/*
	 * Nothing to write back from a read-only open: its close(2) need
	 * not wait for a FLUSH round trip (RELEASE is sent asynchronously).
	 */
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
	count_open(&fs->open_files, 1);
	if (reply_open(req, fi) == -ENOENT) {
		close(fd);
		count_open(&fs->open_files, -1);
	}
}

/*
 * The flags to create a file with.  With no_open it becomes the file's
 * shared descriptor: read-write, and appending or syncing only per write.
 */
static int create_flags(struct cfs *fs, int flags)
{
	flags = backend_flags(fs, flags) | O_CREAT | O_CLOEXEC;
	if (fs->no_open)
		flags = (flags & ~(O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC)) |
			O_RDWR;
	return flags;
}

static void cfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct inode *dir = inode_of(fs, parent);
	struct fuse_entry_param e;
	int pfd, fd = -1, r;

	op_begin(req, OP_create, parent, name);
	r = admit(fs);
	pfd = r < 0 ? r : inode_fd_get(fs->itab, dir);
	if (pfd < 0) {
		reply_err(req, -pfd);
		return;
	}
	r = creds_enter_create(req);
	if (r == 0) {
		fd = openat(pfd, name, create_flags(fs, fi->flags), mode);
		if (fd < 0 && errno == EACCES && fs->no_open)
			/* it existed, and not readable: write-only */
			fd = openat(pfd, name,
				    backend_flags(fs, fi->flags) | O_CREAT |
					    O_CLOEXEC,
				    mode);
		r = neg_errno(fd);
		creds_leave();
	}
	inode_fd_put(fs->itab, dir);
	if (r < 0) {
		reply_err(req, -r);
		return;
	}
	r = do_lookup(fs, parent, name, NULL, &e);
	note_change(fs, J(CREATE), parent, name, 0, NULL,
		    r == 0 ? inode_of(fs, e.ino) : NULL);
	if (r < 0) {
		close(fd);
		reply_err(req, -r);
		return;
	}
	fi->keep_cache = caching(fs);
	if (fs->no_open) {
		/* the file's shared descriptor, if it is read-write */
		if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR)
			datafd_install(fs->data, inode_of(fs, e.ino), fd);
		else
			close(fd);
		fi->fh = 0;
		direct_if_write_only(fs, fi);
		reply_create(req, &e, fi);
		return;
	}
	fi->fh = fd;
	direct_if_write_only(fs, fi);
	count_open(&fs->open_files, 1);
	if (reply_create(req, &e, fi) == -ENOENT) {
		close(fd);
		count_open(&fs->open_files, -1);
		inode_forget(fs->itab, inode_of(fs, e.ino), 1);
	}
}

/*
 * A read the cache tiers may answer: the file's version as the table
 * knows it, a buffer for the reply, and the file's path for the shared
 * tiers (NULL: not shared), each taken once for both tries of a read.
 */
struct tier_read {
	bool known;		/* v is the file's version */
	struct tier_version v;
	char *buf;
	char *path;
	bool ready;		/* buf and path set up */
};

static bool tier_read_prepare(struct cfs *fs, fuse_ino_t ino, size_t size,
			      struct tier_read *r)
{
	if (r->ready)
		return true;
	r->buf = malloc(size ? size : 1);
	if (!r->buf)
		return false;
	if (shared(fs) && shareable(inode_mode(fs->itab, inode_of(fs, ino))))
		r->path = node_path(fs, ino, NULL);
	r->ready = true;
	return true;
}

static void tier_read_done(struct tier_read *r)
{
	free(r->buf);
	free(r->path);
}

/*
 * Reply to a read from the tiers, if one holds the file as it is: true,
 * else false without replying.
 */
static bool read_held(fuse_req_t req, struct cfs *fs, fuse_ino_t ino,
		      struct tier_read *r, size_t size, off_t off)
{
	ssize_t n;

	if (!caching(fs) || !r->known || !cache_takes(fs->cache, r->v.size) ||
	    !tier_read_prepare(fs, ino, size, r))
		return false; /* read_cached() counts it skipped */
	n = cache_read(fs->cache, &r->v, r->path, -1, r->buf, size,
		       (uint64_t)off);
	if (n >= 0)
		reply_buf(req, r->buf, (size_t)n);
	return n >= 0;
}

/*
 * A read of a small file the tiers did not hold (read_held()): from fd,
 * filling them; with offline on, also when the backend failed, fd or the
 * fill giving a negative errno then.  Returns false, without replying,
 * when the read is not for the cache: a large file, or a failed backend
 * and nothing cached.
 */
static bool read_cached(fuse_req_t req, struct cfs *fs, fuse_ino_t ino,
			struct tier_read *r, int fd, size_t size, off_t off)
{
	ssize_t n = fd;

	if (!r->known)
		return false;
	if (fd >= 0 ? !caching(fs) || !cache_wants(fs->cache, &r->v)
		    : !offline(fs, fd))
		return false;
	if (!tier_read_prepare(fs, ino, size, r))
		return false;
	if (fd >= 0)
		n = cache_fill(fs->cache, &r->v, r->path, fd, r->buf, size,
			       (uint64_t)off);
	if (fd >= 0 && r->path)
		shared_recheck(fs, ino, r->v.gen, r->path);
	if (offline(fs, (int)n)) {
		ssize_t held = cache_read_offline(fs->cache, &r->v, r->path,
						  r->buf, size, (uint64_t)off);

		backend_failed(fs);
		if (held >= 0) {
			stats_inc(offline_served);
			n = held;
		}
	}
	if (n >= 0)
		reply_buf(req, r->buf, (size_t)n);
	else if (fd >= 0) /* the fill failed */
		reply_err(req, (int)-n);
	return n >= 0 || fd >= 0;
}

static void cfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct cfs *fs = fs_of(req);
	struct tier_read r = { 0 };
	struct datafd *ref = NULL;
	int fd;

	op_begin(req, OP_read, ino, NULL);
	op_io(size, off);
	if (fs->cache)
		r.known = inode_version(fs->itab, inode_of(fs, ino), &r.v);
	/* what a tier holds needs no backend descriptor */
	if (fs->cache && read_held(req, fs, ino, &r, size, off))
		goto out;
	fd = data_get(fs, ino, fi, false, &ref);
	if (fs->cache && read_cached(req, fs, ino, &r, fd, size, off))
		goto out;
	if (fd < 0) {
		reply_err(req, -fd);
		goto out;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	reply_data(req, &buf, fs->cfg->splice ? FUSE_BUF_SPLICE_MOVE : 0);
out:
	data_put(fs, ref);
	tier_read_done(&r);
}

/*
 * A write to a shared descriptor that must append or sync: the open
 * file's flags come with each write and apply to it alone.
 */
static ssize_t write_flagged(int fd, struct fuse_bufvec *in, off_t off,
			     int flags)
{
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	struct iovec iov;
	ssize_t n;
	int rwf = 0;

	if (flags & O_APPEND)
		rwf |= RWF_APPEND;
	if ((flags & O_SYNC) == O_SYNC)
		rwf |= RWF_SYNC;
	else if (flags & O_DSYNC)
		rwf |= RWF_DSYNC;
	mem.buf[0].mem = malloc(size ? size : 1);
	if (!mem.buf[0].mem)
		return -ENOMEM;
	n = fuse_buf_copy(&mem, in, 0);
	if (n >= 0) {
		iov.iov_base = mem.buf[0].mem;
		iov.iov_len = (size_t)n;
		n = pwritev2(fd, &iov, 1, rwf & RWF_APPEND ? -1 : off, rwf);
		if (n < 0)
			n = -errno;
	}
	free(mem.buf[0].mem);
	return n;
}

static void cfs_write_buf(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_bufvec *in, off_t off,
			  struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	struct cfs *fs = fs_of(req);
	struct datafd *ref;
	ssize_t n;
	int fd;

	op_begin(req, OP_write, ino, NULL);
	op_io(fuse_buf_size(in), off);
	fd = admit(fs);
	if (fd == 0)
		fd = data_get(fs, ino, fi, true, &ref);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	if (fs->no_open && (fi->flags & (O_APPEND | O_SYNC | O_DSYNC))) {
		n = write_flagged(fd, in, off, fi->flags);
	} else {
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = fd;
		out.buf[0].pos = off;
		n = fuse_buf_copy(&out, in, 0);
	}
	data_put(fs, ref);
	if (n > 0) {
		note_change(fs, J(WRITE), ino, NULL, 0, NULL, NULL);
		/*
		 * Another open may hold the pages this write went around.
		 * Invalidating them takes no inode lock: safe in a request.
		 */
		if (fi->fh & FH_DIRECT)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, off, n);
	}
	if (n < 0)
		reply_err(req, (int)-n);
	else
		reply_write(req, (size_t)n);
}

static void cfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	int fd, r;

	op_begin(req, OP_flush, ino, NULL);
	/* a file written through the mount goes to the shared tiers */
	if (shared(fs) && inode_mark(fs->itab, inode_of(fs, ino), false))
		shared_store(fs, ino, fs->no_open ? -1 : fh_fd(fi));
	if (fs->no_open) {
		if (shared(fs)) { /* flushes stay: closes store */
			reply_err(req, 0);
			return;
		}
		/* no flushes then, for good: close(2) stays in the kernel */
		op_end(0, 0);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/*
	 * Closing a duplicate makes a network backend (NFS) write back and
	 * report errors at close(2), as it would without cachefs.
	 */
	fd = dup(fh_fd(fi));
	r = fd < 0 ? -errno : neg_errno(close(fd));
	reply_err(req, -r);
}

static void cfs_release(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	op_begin(req, OP_release, ino, NULL);
	if (!fs_of(req)->no_open) { /* else only for a create: fh is 0 */
		close(fh_fd(fi));
		count_open(&fs_of(req)->open_files, -1);
	}
	reply_err(req, 0);
}

static void cfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		      struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct datafd *ref;
	int fd, r;

	op_begin(req, OP_fsync, ino, NULL);
	fd = data_get(fs, ino, fi, false, &ref);
	r = fd < 0 ? fd : neg_errno(datasync ? fdatasync(fd) : fsync(fd));
	data_put(fs, ref);
	reply_err(req, -r);
}

/* An open directory: a stream and where the kernel last left it. */
/*
 * An open directory: read from the backend (dp), or from a listing kept
 * in memory (list).  A listing read from the backend from start to end
 * without a seek is recorded, and kept if the directory did not change
 * meanwhile.
 */
struct dir_handle {
	DIR *dp;	      /* NULL: served from list */
	off_t offset;
	struct dirent *entry; /* read but not yet returned, or NULL */
	char *list;
	size_t list_len, pos, next_pos;
	bool have;	      /* cur: read from list but not yet returned */
	struct listing_entry cur;
	bool recording;
	struct listing_builder rec;
	struct tier_version v0; /* the directory's, when opened */
};

static struct dir_handle *dir_of(struct fuse_file_info *fi)
{
	return (struct dir_handle *)(uintptr_t)fi->fh;
}

static void dir_free(struct dir_handle *d)
{
	if (d->dp)
		closedir(d->dp);
	free(d->list);
	listing_free(&d->rec);
	free(d);
}

/*
 * The listing of directory ino from memory, if a tier holds it for the
 * directory as it is (as far as the revalidator and this mount know).
 */
static bool listing_from_memory(struct cfs *fs, fuse_ino_t ino,
				struct dir_handle *d)
{
	struct tier_version v;

	return fs->cache && caching(fs) && inode_table_trusted(fs->itab) &&
	       inode_version(fs->itab, inode_of(fs, ino), &v) &&
	       cache_get_listing(fs->cache, &v, &d->list, &d->list_len) == 0;
}

/*
 * Directory ino is opened for reading from the backend: its version as
 * the table has it, in *v, to keep the listing under if that is still
 * the backend's once it was read whole (listing_done()).  False when
 * not worth recording: a directory changed within the last two seconds.
 */
static bool listing_start(struct cfs *fs, fuse_ino_t ino,
			  struct tier_version *v)
{
	return fs->cache && caching(fs) &&
	       inode_version(fs->itab, inode_of(fs, ino), v) &&
	       settled_ns(v->mtime_ns, v->ctime_ns);
}

/*
 * The whole listing was read from the backend: keep it if the directory
 * is still as it was when opened, for the table (changes through this
 * mount included) and for the backend.
 */
static void listing_done(struct cfs *fs, fuse_ino_t ino, struct dir_handle *d)
{
	const struct tier_version *v = &d->v0;
	struct tier_version now;
	struct stat st;

	if (d->recording && !d->rec.failed &&
	    inode_version(fs->itab, inode_of(fs, ino), &now) &&
	    !memcmp(&now, v, sizeof(now)) && fstat(dirfd(d->dp), &st) == 0 &&
	    (uint64_t)st.st_dev == v->dev && st.st_ino == v->ino &&
	    (uint64_t)st.st_size == v->size &&
	    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec ==
		    v->mtime_ns &&
	    st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec ==
		    v->ctime_ns)
		cache_put_listing(fs->cache, v, d->rec.buf, d->rec.len);
	d->recording = false;
	listing_free(&d->rec);
}

/*
 * The next entry of d, read but not returned yet, in *e: true, or false
 * at the end (*r 0) or on an error (*r a negative errno).
 */
static bool dir_peek(struct dir_handle *d, struct listing_entry *e, int *r)
{
	*r = 0;
	if (!d->dp) {
		if (!d->have) {
			d->next_pos = d->pos;
			if (!listing_next(d->list, d->list_len, &d->next_pos,
					  &d->cur))
				return false;
			d->have = true;
		}
		*e = d->cur;
		return true;
	}
	if (!d->entry) {
		errno = 0;
		d->entry = readdir(d->dp);
		if (!d->entry) {
			*r = -errno;
			return false;
		}
	}
	e->name = d->entry->d_name;
	e->ino = d->entry->d_ino;
	e->type = d->entry->d_type;
	e->off = d->entry->d_off;
	return true;
}

/* The entry dir_peek() gave was returned (or skipped, with record off). */
static void dir_take(struct dir_handle *d, const struct listing_entry *e,
		     bool record)
{
	if (!d->dp) {
		d->pos = d->next_pos;
		d->have = false;
	} else {
		if (!record)
			d->recording = false;
		if (d->recording)
			listing_add(&d->rec, e->name, e->ino, e->type, e->off);
		d->entry = NULL;
	}
	d->offset = e->off;
}

static void dir_seek(struct dir_handle *d, off_t offset)
{
	if (!d->dp) {
		if (!listing_seek(d->list, d->list_len, offset, &d->pos))
			d->pos = d->list_len; /* an offset it never gave */
		d->have = false;
	} else {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->recording = false; /* only a read from start to end */
	}
	d->offset = offset;
}

/*
 * A stream over directory ino: its listing from memory, or the backend's
 * directory opened, recording the listing for the cache tiers when worth
 * it.  Returns 0 or a negative errno.
 */
static int dir_open(struct cfs *fs, fuse_ino_t ino, struct dir_handle **out)
{
	struct dir_handle *d = calloc(1, sizeof(*d));
	int fd;

	if (!d)
		return -ENOMEM;
	if (listing_from_memory(fs, ino, d)) {
		stats_inc(readdir_memory);
		goto opened;
	}
	fd = inode_open(fs->itab, inode_of(fs, ino),
			backend_flags(fs, O_RDONLY | O_DIRECTORY));
	if (fd < 0) {
		free(d);
		return fd;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		int r = -errno;

		close(fd);
		free(d);
		return r;
	}
	if (listing_start(fs, ino, &d->v0)) {
		d->recording = true;
		listing_init(&d->rec, fs->cfg->max_cached_file);
	}
opened:
	count_open(&fs->open_dirs, 1);
	*out = d;
	return 0;
}

static void dir_close(struct cfs *fs, struct dir_handle *d)
{
	count_open(&fs->open_dirs, -1);
	dir_free(d);
}

/*
 * With no_opendir the kernel sends READDIR with no handle: a directory
 * read in several requests continues the stream the last one left at
 * that offset, kept here.  A few suffice: the kernel fills its cache of
 * a listing once, and then asks nothing more.  The least recently used
 * goes when a new one needs room, and any left unused for a second (a
 * reader that stopped halfway) goes with the revalidator's chores.
 */
#define DIR_STREAMS 16

struct dir_streams {
	pthread_mutex_t lock;
	struct {
		fuse_ino_t ino;	  /* 0: free */
		struct dir_handle *d;
		uint64_t used_ns; /* stats_now_ns() when put */
	} s[DIR_STREAMS];
};

/* The stream in slot k, the slot freed; caller holds st->lock. */
static struct dir_handle *slot_take(struct dir_streams *st, int k)
{
	struct dir_handle *d = st->s[k].d;

	st->s[k].ino = 0;
	st->s[k].d = NULL;
	return d;
}

/*
 * The stream of ino left at offset, taken out of the set, or NULL.  A
 * read from offset 0 is a new listing: the streams of older ones go.
 * Streams only save opening the directory again; a fresh one seeks to
 * any offset a listing gave.
 */
static struct dir_handle *streams_take(struct cfs *fs, fuse_ino_t ino,
				       off_t offset)
{
	struct dir_streams *st = fs->streams;
	struct dir_handle *d = NULL, *old[DIR_STREAMS];
	int n = 0, found = -1;

	pthread_mutex_lock(&st->lock);
	for (int k = 0; k < DIR_STREAMS; k++) {
		if (st->s[k].ino != ino)
			continue;
		if (offset == 0)
			old[n++] = slot_take(st, k);
		else if (st->s[k].d->offset == offset &&
			 (found < 0 ||
			  st->s[k].used_ns > st->s[found].used_ns))
			found = k; /* the latest reader's */
	}
	if (found >= 0)
		d = slot_take(st, found);
	pthread_mutex_unlock(&st->lock);
	while (n > 0)
		dir_close(fs, old[--n]);
	return d;
}

/* Keep d, which has more to give, for the next READDIR of ino. */
static void streams_put(struct cfs *fs, fuse_ino_t ino, struct dir_handle *d)
{
	struct dir_streams *st = fs->streams;
	struct dir_handle *old;
	int k, lru = 0;

	pthread_mutex_lock(&st->lock);
	for (k = 0; k < DIR_STREAMS && st->s[k].ino; k++)
		if (st->s[k].used_ns < st->s[lru].used_ns)
			lru = k;
	if (k == DIR_STREAMS)
		k = lru;
	old = st->s[k].d;
	st->s[k].ino = ino;
	st->s[k].d = d;
	st->s[k].used_ns = stats_now_ns();
	pthread_mutex_unlock(&st->lock);
	if (old)
		dir_close(fs, old);
}

void fs_expire_dir_streams(struct cfs *fs, uint64_t idle_ns)
{
	/* set by INIT, which may come after the revalidator started */
	struct dir_streams *st = __atomic_load_n(&fs->streams,
						 __ATOMIC_ACQUIRE);
	struct dir_handle *old[DIR_STREAMS];
	uint64_t now = stats_now_ns();
	int n = 0;

	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	for (int k = 0; k < DIR_STREAMS; k++) {
		if (st->s[k].ino && now - st->s[k].used_ns >= idle_ns)
			old[n++] = slot_take(st, k);
	}
	pthread_mutex_unlock(&st->lock);
	while (n > 0)
		dir_close(fs, old[--n]);
}

static int streams_new(struct cfs *fs)
{
	struct dir_streams *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	__atomic_store_n(&fs->streams, st, __ATOMIC_RELEASE);
	return 0;
}

static void streams_free(struct cfs *fs)
{
	if (!fs->streams)
		return;
	for (int k = 0; k < DIR_STREAMS; k++)
		if (fs->streams->s[k].d)
			dir_close(fs, fs->streams->s[k].d);
	pthread_mutex_destroy(&fs->streams->lock);
	free(fs->streams);
	fs->streams = NULL;
}

static void cfs_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct dir_handle *d;
	int r;

	op_begin(req, OP_opendir, ino, NULL);
	/* the kernel opens directories itself from now on */
	if (fs->no_opendir) {
		reply_err(req, ENOSYS);
		return;
	}
	r = dir_open(fs, ino, &d);
	if (r < 0) {
		reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)d;
	/* listings stay in the kernel across opens, until invalidated */
	fi->cache_readdir = fi->keep_cache = caching(fs);
	if (reply_open(req, fi) == -ENOENT)
		dir_close(fs, d);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t offset, struct fuse_file_info *fi, bool plus)
{
	struct cfs *fs = fs_of(req);
	struct dir_handle *d = dir_of(fi);
	bool handleless = !d, ended = false; /* no_opendir */
	char *buf, *p;
	size_t rem = size;
	int r = 0;

	if (handleless && !(d = streams_take(fs, ino, offset)) &&
	    (r = dir_open(fs, ino, &d)) < 0) {
		reply_err(req, -r);
		return;
	}
	buf = p = malloc(size);
	if (!buf) {
		if (handleless)
			dir_close(fs, d);
		reply_err(req, ENOMEM);
		return;
	}
	if (offset != d->offset)
		dir_seek(d, offset);
	for (;;) {
		struct fuse_entry_param e;
		struct listing_entry le;
		const char *name;
		size_t entsize;
		off_t next;

		if (!dir_peek(d, &le, &r)) {
			if (r == 0 && d->dp)
				listing_done(fs, ino, d);
			ended = true;
			break;
		}
		name = le.name;
		next = le.off;
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = le.ino;
		e.attr.st_mode = DTTOIF(le.type);
		if (!plus) {
			entsize = fuse_add_direntry(req, p, rem, name, &e.attr,
						    next);
		} else {
			if (!is_dot_or_dotdot(name)) {
				uint64_t listed = le.ino;

				/* memory, if it agrees with the listing */
				r = lookup_memory(fs, ino, name, &e);
				if (r == 0 && e.attr.st_ino != listed)
					inode_forget(fs->itab,
						     inode_of(fs, e.ino), 1);
				if (r != 0 || e.attr.st_ino != listed)
					r = do_lookup(fs, ino, name, NULL, &e);
				if (r == -ENOENT) { /* raced with a removal */
					r = 0;
					dir_take(d, &le, false);
					continue;
				}
				if (r < 0)
					break;
			}
			entsize = fuse_add_direntry_plus(req, p, rem, name, &e,
							 next);
			if (entsize > rem && e.ino)
				inode_forget(fs->itab, inode_of(fs, e.ino), 1);
		}
		if (entsize > rem)
			break;
		p += entsize;
		rem -= entsize;
		dir_take(d, &le, true);
	}
	/* Entries already added are returned; an error waits for the next call. */
	if (r < 0 && rem == size)
		reply_err(req, -r);
	else
		reply_buf(req, buf, size - rem);
	free(buf);
	if (handleless) { /* keep what the next call wants */
		if (ended || r < 0)
			dir_close(fs, d);
		else
			streams_put(fs, ino, d);
	}
}

static void cfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t offset, struct fuse_file_info *fi)
{
	op_begin(req, OP_readdir, ino, NULL);
	op_io(size, offset);
	do_readdir(req, ino, size, offset, fi, false);
}

static void cfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t offset, struct fuse_file_info *fi)
{
	op_begin(req, OP_readdirplus, ino, NULL);
	op_io(size, offset);
	do_readdir(req, ino, size, offset, fi, true);
}

static void cfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct dir_handle *d = dir_of(fi);

	op_begin(req, OP_releasedir, ino, NULL);
	if (d)
		dir_close(fs_of(req), d);
	reply_err(req, 0);
}

static void cfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			 struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct dir_handle *d = dir_of(fi);
	int fd, r;

	op_begin(req, OP_fsyncdir, ino, NULL);
	fd = d && d->dp ? dirfd(d->dp)
		   : inode_open(fs->itab, inode_of(fs, ino),
				O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	r = neg_errno(datasync ? fdatasync(fd) : fsync(fd));
	if (!d || !d->dp)
		close(fd);
	reply_err(req, -r);
}

static void cfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	struct statvfs sv;
	int fd, r;

	op_begin(req, OP_statfs, ino, NULL);
	fd = inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	r = neg_errno(fstatvfs(fd, &sv));
	inode_fd_put(fs->itab, i);
	if (r < 0)
		reply_err(req, -r);
	else
		reply_statfs(req, &sv);
}

/*
 * Extended attributes go through /proc/self/fd/N, the one race-free way to
 * reach them from an O_PATH descriptor (f*xattr() refuse O_PATH).  The
 * magic link resolves to the object itself, a symlink included, so a
 * symlink's own attributes (trusted.*, security.*) work as on the backend.
 */
/* getxattr (name given) or listxattr (name NULL); size 0 asks the size. */
static void xattr_read(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	char proc[PROC_FD_PATH_MAX];
	char *buf = NULL;
	ssize_t n;
	int fd;

	if (size && !(buf = malloc(size))) {
		reply_err(req, ENOMEM);
		return;
	}
	fd = inode_fd_get(fs->itab, i);
	if (fd < 0) {
		n = fd;
	} else {
		proc_fd_path(proc, fd);
		n = name ? getxattr(proc, name, buf, size)
			 : listxattr(proc, buf, size);
		if (n < 0)
			n = -errno;
		inode_fd_put(fs->itab, i);
	}
	if (n < 0)
		reply_err(req, (int)-n);
	else if (size)
		reply_buf(req, buf, (size_t)n);
	else
		reply_xattr(req, (size_t)n);
	free(buf);
}

static void cfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	op_begin(req, OP_getxattr, ino, NULL);
	op_io(size, -1);
	xattr_read(req, ino, name, size);
}

static void cfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	op_begin(req, OP_listxattr, ino, NULL);
	op_io(size, -1);
	xattr_read(req, ino, NULL, size);
}

/* setxattr, or removexattr when value is NULL. */
static void xattr_write(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	char proc[PROC_FD_PATH_MAX];
	int fd, r;

	r = admit(fs);
	fd = r < 0 ? r : inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	proc_fd_path(proc, fd);
	/*
	 * As the caller: setting an access ACL clears the setgid bit when
	 * the caller is not in the file's group, and the backend decides
	 * that from the credentials it sees.
	 */
	r = creds_enter(req, 0);
	if (r == 0) {
		r = neg_errno(value ? setxattr(proc, name, value, size, flags)
				    : removexattr(proc, name));
		creds_leave();
	}
	inode_fd_put(fs->itab, i);
	if (r == 0)
		note_change(fs, value ? J(SETXATTR) : J(REMOVEXATTR), ino,
			    NULL, 0, NULL, NULL);
	reply_err(req, -r);
}

static void cfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 const char *value, size_t size, int flags)
{
	op_begin(req, OP_setxattr, ino, NULL);
	op_io(size, -1);
	/* An empty value may come as NULL; it is still a set. */
	xattr_write(req, ino, name, value ? value : "", size, flags);
}

static void cfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	op_begin(req, OP_removexattr, ino, NULL);
	xattr_write(req, ino, name, NULL, 0, 0);
}

/*
 * Only reached when the kernel does not check permissions itself; checks
 * as the caller against the backend.
 */
static void cfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct cfs *fs = fs_of(req);
	struct inode *i = inode_of(fs, ino);
	char proc[PROC_FD_PATH_MAX];
	int fd, r;

	op_begin(req, OP_access, ino, NULL);
	fd = inode_fd_get(fs->itab, i);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	proc_fd_path(proc, fd);
	r = creds_enter(req, 0);
	if (r == 0) {
		r = neg_errno(faccessat(AT_FDCWD, proc, mask, AT_EACCESS));
		creds_leave();
	}
	inode_fd_put(fs->itab, i);
	reply_err(req, -r);
}

/*
 * Data changes run as the caller, so the backend drops setuid and setgid
 * bits by its own rules (which are stricter than the kernel's FUSE
 * kill-priv request).  The kernel's cached mode must then follow:
 * invalidating attributes only takes no inode lock, so it is safe inside
 * a request.
 */
static bool has_privs(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID));
}

static void privs_changed(fuse_req_t req, fuse_ino_t ino)
{
	fuse_lowlevel_notify_inval_inode(fs_of(req)->se, ino, -1, 0);
}

static void cfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			  off_t offset, off_t length, struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct datafd *ref;
	bool privs;
	int fd, r;

	op_begin(req, OP_fallocate, ino, NULL);
	op_io((uint64_t)length, offset);
	fd = admit(fs);
	if (fd == 0)
		fd = data_get(fs, ino, fi, true, &ref);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	privs = has_privs(fd);
	r = creds_enter(req, 0);
	if (r == 0) {
		r = neg_errno(fallocate(fd, mode, offset, length));
		creds_leave();
	}
	data_put(fs, ref);
	if (r == 0 && privs)
		privs_changed(req, ino);
	if (r == 0)
		note_change(fs, J(FALLOCATE), ino, NULL, 0, NULL, NULL);
	reply_err(req, -r);
}

static void cfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				off_t off_in, struct fuse_file_info *fi_in,
				fuse_ino_t ino_out, off_t off_out,
				struct fuse_file_info *fi_out, size_t len,
				int flags)
{
	struct cfs *fs = fs_of(req);
	struct datafd *rin, *rout;
	int in, out;
	bool privs;
	ssize_t n;

	op_begin(req, OP_copy_file_range, ino_in, NULL);
	op_target(ino_out, NULL);
	op_io(len, off_in);
	out = admit(fs);
	if (out == 0)
		out = data_get(fs, ino_out, fi_out, true, &rout);
	if (out < 0) {
		reply_err(req, -out);
		return;
	}
	/* after the writer: for one file, both share its read-write one */
	in = data_get(fs, ino_in, fi_in, false, &rin);
	if (in < 0) {
		data_put(fs, rout);
		reply_err(req, -in);
		return;
	}
	privs = has_privs(out);
	n = creds_enter(req, 0);
	if (n == 0) {
		n = copy_file_range(in, &off_in, out, &off_out, len,
				    (unsigned)flags);
		if (n < 0)
			n = -errno;
		creds_leave();
	}
	data_put(fs, rin);
	data_put(fs, rout);
	if (n > 0 && privs)
		privs_changed(req, ino_out);
	if (n > 0)
		note_change(fs, J(COPY_FILE_RANGE), ino_out, NULL, 0, NULL,
			    NULL);
	if (n < 0)
		reply_err(req, (int)-n);
	else
		reply_write(req, (size_t)n);
}

static void cfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	struct cfs *fs = fs_of(req);
	struct datafd *ref;
	off_t r;
	int fd;

	op_begin(req, OP_lseek, ino, NULL);
	op_io(0, off);
	fd = data_get(fs, ino, fi, false, &ref);
	if (fd < 0) {
		reply_err(req, -fd);
		return;
	}
	/* SEEK_DATA/SEEK_HOLE: the position of a shared descriptor is moot */
	r = lseek(fd, off, whence);
	if (r < 0)
		r = -errno;
	data_put(fs, ref);
	if (r < 0)
		reply_err(req, (int)-r);
	else
		reply_lseek(req, r);
}

struct inval_batch {
	fuse_ino_t *ino;
	size_t n, cap;
};

static void collect_ino(struct inode *i, void *arg)
{
	struct inval_batch *b = arg;

	if (b->n < b->cap)
		b->ino[b->n++] = (fuse_ino_t)(uintptr_t)i;
}

int fs_forget_kernel_cache(struct cfs *fs)
{
	struct inval_batch b = { 0 };
	struct inode_table_stats st;
	int n = 0;

	/*
	 * Node ids are collected under the table lock and invalidated
	 * outside it: the kernel may need a worker thread (which may need
	 * the table) to finish a request before it can drop a page.  A
	 * node forgotten in between costs the kernel a failed lookup.
	 */
	inode_table_get_stats(fs->itab, &st);
	b.cap = st.inodes + 1;
	b.ino = calloc(b.cap ? b.cap : 1, sizeof(*b.ino));
	if (!b.ino)
		return -ENOMEM;
	inode_table_foreach(fs->itab, collect_ino, &b);
	inode_table_distrust(fs->itab);
	if (fs->cache)
		cache_clear(fs->cache);
	for (size_t k = 0; k < b.n; k++) {
		fuse_ino_t ino = b.ino[k] == (fuse_ino_t)(uintptr_t)inode_root(
						      fs->itab)
					 ? FUSE_ROOT_ID
					 : b.ino[k];

		if (fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0) == 0)
			n++;
	}
	free(b.ino);
	return n;
}

/*
 * Make the kernel and the cache tiers forget what they hold of i's
 * attributes and data; count it into *inodes.
 */
static void inval_inode(struct cfs *fs, struct inode *i, unsigned *inodes)
{
	inode_changed_here(fs->itab, i);
	inode_drop(fs->itab, i); /* not kept for lookups from memory */
	/* (the kernel may have forgotten it with its entry: ENOENT) */
	fuse_lowlevel_notify_inval_inode(fs->se, ino_of(fs, i), 0, 0);
	(*inodes)++;
}

static void inval_tree(struct cfs *fs, struct inode *dir, unsigned depth,
		       unsigned *names, unsigned *inodes)
{
	char **list;
	size_t n;

	if (depth > 4096 || inode_names(fs->itab, dir, &list, &n) < 0)
		return;
	/*
	 * The directory's names first, then what they lead to: once any
	 * inode below shows fresh, no entry of the directory is stale.
	 */
	for (size_t k = 0; k < n; k++) {
		inode_distrust_name(fs->itab, dir, list[k]);
		fs_shared_forget(fs, dir, list[k]);
		if (fuse_lowlevel_notify_inval_entry(fs->se, ino_of(fs, dir),
						     list[k],
						     strlen(list[k])) == 0)
			(*names)++;
	}
	for (size_t k = 0; k < n; k++) {
		struct inode *child;

		if (inode_find_name(fs->itab, dir, list[k], &child) == 0) {
			if (S_ISDIR(inode_type(child)))
				inval_tree(fs, child, depth + 1, names, inodes);
			inval_inode(fs, child, inodes);
			inode_unpin(fs->itab, child);
		}
		free(list[k]);
	}
	free(list);
}

int fs_invalidate(struct cfs *fs, const char *path, bool recursive,
		  unsigned *names, unsigned *inodes)
{
	struct inode *dir = inode_root(fs->itab), *child = NULL;
	char *copy = strdup(path), *save = NULL, *part, *next;
	int r = 0;

	*names = *inodes = 0;
	if (!copy)
		return -ENOMEM;
	part = strtok_r(copy, "/", &save);
	if (!part) { /* the root */
		inval_inode(fs, dir, inodes);
		if (recursive)
			inval_tree(fs, dir, 0, names, inodes);
		free(copy);
		return 0;
	}
	for (; part; part = next) {
		next = strtok_r(NULL, "/", &save);
		if (is_dot_or_dotdot(part)) {
			if (dir != inode_root(fs->itab))
				inode_unpin(fs->itab, dir);
			r = -EINVAL;
			break;
		}
		r = inode_find_name(fs->itab, dir, part, &child);
		if (!next) { /* the last component */
			if (r == 0) {
				if (recursive && S_ISDIR(inode_type(child)))
					inval_tree(fs, child, 0, names, inodes);
				inval_inode(fs, child, inodes);
				inode_unpin(fs->itab, child);
			}
			/* the kernel's entry, also when the name is gone */
			inode_distrust_name(fs->itab, dir, part);
			fs_shared_forget(fs, dir, part);
			if (fuse_lowlevel_notify_inval_entry(
				    fs->se, ino_of(fs, dir), part,
				    strlen(part)) == 0)
				(*names)++;
		}
		if (dir != inode_root(fs->itab))
			inode_unpin(fs->itab, dir);
		if (r != 0 || !next) { /* done, or nothing cached below */
			/* a failing backend: the kernel's entry is gone still */
			if (r > 0 || r == -ENOENT || (!next && backend_down(-r)))
				r = 0;
			break;
		}
		dir = child;
	}
	free(copy);
	return r;
}

/*
 * Whether path is "/" and components that are neither empty, "." nor
 * "..": the one spelling of a file that web servers use for its key.
 */
static bool clean_path(const char *path)
{
	const char *p = path, *end;

	if (*p != '/' || !p[1])
		return false;
	while (*p == '/') {
		p++;
		end = strchrnul(p, '/');
		if (end == p || (end - p == 1 && p[0] == '.') ||
		    (end - p == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = end;
	}
	return true;
}

int fs_preload(struct cfs *fs, const char *path, uint64_t *bytes)
{
	/* confined like the mount: below the root, no symlinks, no .. */
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	struct inode *root = inode_root(fs->itab);
	const char *rel = path + 1;
	struct stat st;
	int rfd, fd, r;

	*bytes = 0;
	if (!shared(fs))
		return -ENOTSUP;
	if (!clean_path(path))
		return -EINVAL;
	rfd = inode_fd_get(fs->itab, root);
	if (rfd < 0)
		return rfd;
	fd = (int)syscall(SYS_openat2, rfd, rel, &how, sizeof(how));
	r = fd < 0 ? -errno : 0;
	inode_fd_put(fs->itab, root);
	if (r < 0)
		return r == -EXDEV || r == -ELOOP ? -EACCES : r;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (!shareable(st.st_mode))
		r = -EPERM;
	else
		r = cache_store(fs->cache, path, fd, 0, true);
	if (r == 0) {
		*bytes = (uint64_t)st.st_size;
		stats_inc(shared_stores);
	}
	close(fd);
	return r;
}

int fs_resolve(struct cfs *fs, const char *path, bool *plain)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	struct inode *root = inode_root(fs->itab);
	int rfd, fd;

	rfd = inode_fd_get(fs->itab, root);
	if (rfd < 0)
		return rfd;
	fd = (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
	*plain = fd >= 0;
	if (fd < 0 && errno == ELOOP) {
		/* a symlink on the way: followed, but only inside the tree */
		how.resolve &= ~(uint64_t)RESOLVE_NO_SYMLINKS;
		fd = (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
	}
	if (fd < 0)
		fd = -errno;
	inode_fd_put(fs->itab, root);
	return fd;
}

char *fs_shared_path(struct cfs *fs, const char *path, bool plain,
		     mode_t mode)
{
	char *key;

	if (!shared(fs) || !plain || !shareable(mode) ||
	    asprintf(&key, "/%s", path) < 0)
		return NULL;
	if (!clean_path(key)) {
		free(key);
		return NULL;
	}
	return key;
}

/* size bytes at off, fewer only at the end of the file. */
static ssize_t pread_full(int fd, void *buf, size_t size, uint64_t off,
			  int rwf)
{
	size_t got = 0;

	while (got < size) {
		struct iovec iov = { (char *)buf + got, size - got };
		ssize_t n = preadv2(fd, &iov, 1, (off_t)(off + got), rwf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && rwf && errno == EOPNOTSUPP)
			return -EAGAIN; /* the backend cannot say: ask it */
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t fs_read_fd(struct cfs *fs, int fd, const char *shared_path,
		   void *buf, size_t size, uint64_t off, unsigned flags,
		   bool *tier)
{
	bool nowait = flags & FS_READ_NOWAIT;
	struct tier_version v;
	struct stat st;
	ssize_t n;

	*tier = false;
	if (fs->cache && caching(fs)) {
		if (fstat(fd, &st) < 0)
			return -errno;
		v = (struct tier_version){
			.dev = st.st_dev,
			.ino = st.st_ino,
			.size = (uint64_t)st.st_size,
			.mtime_ns = st.st_mtim.tv_sec * 1000000000LL +
				    st.st_mtim.tv_nsec,
			.ctime_ns = st.st_ctim.tv_sec * 1000000000LL +
				    st.st_ctim.tv_nsec,
			.gen = inode_gen(fs->itab, st.st_dev, st.st_ino),
		};
		if (cache_takes(fs->cache, v.size)) {
			/* without a path, only the tiers of this process */
			n = cache_read(fs->cache, &v,
				       nowait ? NULL : shared_path, -1, buf,
				       size, off);
			if (n >= 0) {
				*tier = true;
				return n;
			}
			if (nowait)
				return -EAGAIN; /* a fill reads it all */
			if (cache_wants(fs->cache, &v)) {
				n = cache_fill(fs->cache, &v, shared_path, fd,
					       buf, size, off);
				/* a write landed meanwhile: shared_recheck() */
				if (n >= 0 && shared_path &&
				    inode_gen(fs->itab, v.dev, v.ino) != v.gen)
					shared_forget_path(fs, shared_path);
				return n;
			}
		}
	}
	return pread_full(fd, buf, size, off, nowait ? RWF_NOWAIT : 0);
}

static void cfs_destroy(void *userdata)
{
	streams_free(userdata);
}

const struct fuse_lowlevel_ops cfs_ops = {
	.init = cfs_init,
	.destroy = cfs_destroy,
	.lookup = cfs_lookup,
	.forget = cfs_forget,
	.forget_multi = cfs_forget_multi,
	.getattr = cfs_getattr,
	.setattr = cfs_setattr,
	.readlink = cfs_readlink,
	.mknod = cfs_mknod,
	.mkdir = cfs_mkdir,
	.symlink = cfs_symlink,
	.link = cfs_link,
	.unlink = cfs_unlink,
	.rmdir = cfs_rmdir,
	.rename = cfs_rename,
	.open = cfs_open,
	.create = cfs_create,
	.read = cfs_read,
	.write_buf = cfs_write_buf,
	.flush = cfs_flush,
	.release = cfs_release,
	.fsync = cfs_fsync,
	.opendir = cfs_opendir,
	.readdir = cfs_readdir,
	.readdirplus = cfs_readdirplus,
	.releasedir = cfs_releasedir,
	.fsyncdir = cfs_fsyncdir,
	.statfs = cfs_statfs,
	.getxattr = cfs_getxattr,
	.listxattr = cfs_listxattr,
	.setxattr = cfs_setxattr,
	.removexattr = cfs_removexattr,
	.access = cfs_access,
	.fallocate = cfs_fallocate,
	.copy_file_range = cfs_copy_file_range,
	.lseek = cfs_lseek,
};
