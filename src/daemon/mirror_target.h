/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_MIRROR_TARGET_H
#define CACHEFS_MIRROR_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/*
 * A mirror target: one remote tree (an SFTP directory, an S3 bucket and
 * prefix) that the mirror engine (mirror.c) replays the journal to.  The
 * engine decides what to do and in what order; a target only knows how
 * to do each step on its remote, asynchronously, many at a time.
 *
 * Threads: a target belongs to one mirror's event loop (a libevent base
 * run by one thread).  Every call below is made from that thread, and
 * every completion is called from it too, never from inside the call
 * that started the step (so that the engine may start steps from a
 * completion without recursion).  destroy() may be called from inside a
 * completion or a list callback.  A step started while the target is
 * not connected fails, asynchronously, with -ECONNRESET.
 *
 * Paths are relative to the mirror's root, start with "/" and have no
 * "." or ".." components nor empty ones: "/site/index.php".  The root
 * itself is "/".
 *
 * Steps in flight at once are independent: the engine never starts a
 * step on a path while another step on that path, an ancestor or a
 * descendant of it is in flight.  A target may run them in any order.
 *
 * Completions get 0 (and a NULL message), or a negative errno and a
 * one-line message (for "cachefsctl mirror status").  The engine falls
 * back on some; any other stops the mirror's stream, which starts again
 * from its cursor after a backoff:
 *	-ENOENT		what the step needs is not on the remote: a
 *			rename's or link's source (the engine uploads the
 *			target instead), a setattr's path (it makes it)
 *	-ENOTSUP	the remote cannot do this: skipped and counted
 *	-EACCES, -EPERM	refused by the remote
 *	-EEXIST, -ENOTDIR, -ENOTEMPTY  a path of another type is in the way
 *	-EAGAIN		the file changed while it was being sent
 *	-EFBIG		a rename or link met a file over copy_max(): the
 *			engine sends it again instead
 *	-EIO		the remote failed this step (S3: a 5xx once the
 *			target's own retries are spent)
 *	-ECONNRESET, -ETIMEDOUT, -EHOSTUNREACH, -ECONNREFUSED
 *			the connection failed: every step in flight fails
 *	-EKEYREJECTED	a human must act: authentication, the host key,
 *			credentials, the region, the clock, a certificate
 *			(retried only after the longest backoff)
 */

struct event_base;
struct mirror_target;

typedef void (*mirror_done_fn)(void *arg, int err, const char *msg);

/* The attributes a replayed file or directory gets on the remote. */
struct mirror_attr {
	mode_t mode; /* permission bits (07777) */
	struct timespec mtime;
};

/* One entry of a remote listing, for resync. */
struct mirror_entry {
	const char *name; /* in its directory, no "/" */
	char type;	  /* 'f' file, 'd' directory, 'l' symlink, '?' */
	uint64_t size;
	struct mirror_attr attr; /* as the remote keeps them */
};
/* Called for each entry; a non-zero return stops the listing. */
typedef int (*mirror_entry_fn)(void *arg, const struct mirror_entry *e);
/* Called with bytes of a remote file; a non-zero return stops reading. */
typedef int (*mirror_data_fn)(void *arg, uint64_t off, const void *buf,
			      size_t len);

struct mirror_target_ops {
	const char *scheme; /* "sftp", "s3" */

	/*
	 * Parse url (scheme://...) and prepare, without any I/O: a bad URL
	 * or a missing credentials file is -EINVAL with a message.
	 */
	int (*create)(const char *url, struct event_base *base,
		      struct mirror_target **out, char *err, size_t errlen);
	/* Close the connection; completions in flight are not called. */
	void (*destroy)(struct mirror_target *t);

	/*
	 * Connect and authenticate (and make sure the root exists).  Once
	 * done with 0, steps may be started; after a connection failure,
	 * connect again.
	 */
	void (*connect)(struct mirror_target *t, mirror_done_fn done,
			void *arg);
	/* How many steps the target wants in flight (its pipeline depth). */
	unsigned (*depth)(struct mirror_target *t);
	/*
	 * How many targets the engine makes from the URL (each its own
	 * connection) and spreads the steps over; NULL: one.  Steps in
	 * flight on different ones are independent, as on one; a step
	 * starts only after the steps it depends on completed, on
	 * whichever.
	 */
	unsigned (*sessions)(struct mirror_target *t);
	/*
	 * The largest file rename() and link() move without sending it
	 * again (S3 copies an object in one request up to 5 GiB); NULL or 0:
	 * any.  The engine sends bigger files again itself, and a rename
	 * or link that meets one anyway (a directory's, or a file that
	 * grew) fails with -EFBIG, which it falls back from the same way.
	 */
	uint64_t (*copy_max)(struct mirror_target *t);

	/*
	 * Make path a regular file with size bytes read from fd (pread from
	 * offset 0; fd stays the caller's until done), mode and mtime
	 * a, replacing what was there, atomically: readers of the remote
	 * see the old file or the new one, never part of it (SFTP: a
	 * temporary name, made durable, then renamed; an S3 PUT is atomic).
	 * The parent directory exists (on S3: nothing to exist).
	 */
	void (*put)(struct mirror_target *t, const char *path, int fd,
		    uint64_t size, const struct mirror_attr *a,
		    mirror_done_fn done, void *arg);
	/*
	 * Make directory path (its parent exists) with the attributes a;
	 * one there already is 0, and gets them.
	 */
	void (*mkdir)(struct mirror_target *t, const char *path,
		      const struct mirror_attr *a, mirror_done_fn done,
		      void *arg);
	/* Make path a symlink to target, replacing what was there. */
	void (*symlink)(struct mirror_target *t, const char *path,
			const char *target, mirror_done_fn done, void *arg);
	/*
	 * Make newpath another name of the file at oldpath (S3: a copy),
	 * replacing what was there; -ENOENT without oldpath.
	 */
	void (*link)(struct mirror_target *t, const char *oldpath,
		     const char *newpath, mirror_done_fn done, void *arg);
	/* Remove the file or symlink at path; none there is 0. */
	void (*remove)(struct mirror_target *t, const char *path,
		       mirror_done_fn done, void *arg);
	/* Remove the empty directory path; none there is 0. */
	void (*rmdir)(struct mirror_target *t, const char *path,
		      mirror_done_fn done, void *arg);
	/*
	 * Rename from to to, replacing a file (or an empty directory) at
	 * to, like rename(2); dir says from is a directory, and its whole
	 * tree moves (S3: copy + delete of every key below, safe to repeat
	 * after a failure half way).  -ENOENT when from is not there.
	 */
	void (*rename)(struct mirror_target *t, const char *from,
		       const char *to, bool dir, mirror_done_fn done,
		       void *arg);
	/* Set the mode and mtime of path (S3: of its object's metadata). */
	void (*setattr)(struct mirror_target *t, const char *path,
			const struct mirror_attr *a, mirror_done_fn done,
			void *arg);
	/*
	 * List directory dir: each(arg, entry) for every entry but . and
	 * .. (in batches, as the remote answers), then done, also when
	 * each() stopped it.  -ENOENT when dir is not there.
	 */
	void (*list)(struct mirror_target *t, const char *dir,
		     mirror_entry_fn each, mirror_done_fn done, void *arg);
	/*
	 * Read the regular file at path, for a resync that compares
	 * content: each(arg, off, buf, len) for every byte of it, each byte
	 * once, in any order, then done, also when each() stopped it.
	 * -ENOENT when path is not there (or is not a file).  NULL: the
	 * target cannot, and resyncs compare by size and mtime only.
	 */
	void (*read)(struct mirror_target *t, const char *path,
		     mirror_data_fn each, mirror_done_fn done, void *arg);
};

extern const struct mirror_target_ops mirror_sftp_ops;
extern const struct mirror_target_ops mirror_s3_ops;

/* The ops for url's scheme, or NULL. */
const struct mirror_target_ops *mirror_target_ops_for(const char *url);

#endif
