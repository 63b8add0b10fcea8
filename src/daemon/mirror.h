/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_MIRROR_H
#define CACHEFS_MIRROR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Mirrors: the journal replayed, asynchronously and in order, to remote
 * trees (mirror_target.h: SFTP, S3).  Each mirror has its own thread
 * and event loop, its own journal cursor ("mirror.NAME"), acked only
 * once the remote has done every step up to it, and its own state:
 * a mirror that fails is retried with backoff and never holds up the
 * mount or the other mirrors.
 *
 * A record is replayed from the backend's current state of the file it
 * names (by file handle): data records upload the file's content as it
 * is now, so repeated writes coalesce and every step is safe to repeat
 * after a crash.  Renames are renames, of whole directories too.
 */

struct cfs;
struct mirrors;

/*
 * Set up the mirrors of -o mirror= (NAME=URL;NAME=URL...) and those
 * added at run time (kept in state_dir), without starting them.  Logs
 * and returns a negative errno for a bad definition.
 */
int mirrors_new(struct cfs *fs, struct mirrors **out);
/* Start their threads; after daemonizing. */
int mirrors_start(struct mirrors *ms);
void mirrors_free(struct mirrors *ms); /* stops them; NULL-safe */

/* Control (cachefsctl mirror ...): 0 or negative errno, err filled. */
int mirrors_add(struct mirrors *ms, const char *name, const char *url,
		char *err, size_t errlen);
int mirrors_remove(struct mirrors *ms, const char *name, char *err,
		   size_t errlen);
enum mirror_action {
	MIRROR_RETRY,  /* reconnect now, without waiting for the backoff */
	MIRROR_PAUSE,  /* stop replaying (the cursor holds the journal) */
	MIRROR_RESUME,
	MIRROR_RESYNC, /* compare the whole tree, then go on replaying */
	MIRROR_RESYNC_CONTENT, /* ... the files' content too */
};
int mirrors_act(struct mirrors *ms, const char *name, enum mirror_action a,
		char *err, size_t errlen);
/*
 * The status of one mirror (name) or of all (NULL): an array of objects
 * with name, url, state, last error, lag, throughput...; NULL and -ENOENT
 * in *r for an unknown name.
 */
json_t *mirrors_status(struct mirrors *ms, const char *name, int *r);
/* Whether any mirror is failing, for the mount's state. */
bool mirrors_failing(struct mirrors *ms);

#endif
