/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CHANGES_H
#define CACHEFS_CHANGES_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "journal.h"

/*
 * The change log of a mount: every change made through it is appended to
 * the journal (journal.c) before the application's call returns, and
 * read back by subscribers (the control socket's "watch", mirrors).
 *
 * A change is admitted first (changes_admit(), before the backend is
 * touched) and recorded once done (changes_record()).  What cannot be
 * recorded is refused rather than done unrecorded: once the journal is
 * full (journal_full=fail) or has failed, changes fail with ENOSPC or
 * the journal's error.  A change done while the journal failed under it
 * is logged and counted as unrecorded.
 *
 * Room: segments every cursor has acked are trimmed; without cursors the
 * journal is a window of the newest changes, the oldest segments going
 * at 90% of journal_max.  With cursors holding it past 90%, status
 * raises an alarm; at journal_max, journal_full says what gives way:
 * "fail" refuses changes until a consumer catches up (or its cursor is
 * removed), "drop" drops the oldest segment, and the consumers behind
 * find a gap.
 */

struct changes;

/*
 * Open the journal of the mount at mountpoint (canonical), under
 * cfg->state_dir or /var/lib/cachefs/<mount name>.  Logs and returns a
 * negative errno on failure.
 */
int changes_open(const struct config *cfg, const char *mountpoint,
		 struct changes **out);
/*
 * Start the thread that syncs the journal every journal_sync_interval
 * (journal_sync=interval); after daemonizing.  Logs what fails.
 */
int changes_start(struct changes *ch);
void changes_close(struct changes *ch); /* NULL-safe */

/* The journal, for readers. */
struct journal *changes_journal(struct changes *ch);
const char *changes_dir(const struct changes *ch);

/* Whether a change may be made now: 0, -ENOSPC or the journal's error. */
int changes_admit(struct changes *ch);

/* Record a change that was made (seq and time are set in r). */
void changes_record(struct changes *ch, struct journal_record *r);
/*
 * Whether the data change r (its op and identity set, no paths needed)
 * is recorded already by the newest record, which nobody has read yet:
 * runs of writes to one file take one record.
 */
bool changes_coalesce(struct changes *ch, struct journal_record *r);

/*
 * Make room as the policy says, and update the admit state: after an
 * ack or a cursor's removal, and from changes_record() when near full.
 */
void changes_make_room(struct changes *ch);

/*
 * fn(arg) runs after every append (mirrors, and the control socket's
 * watch streams, waiting for records), from the appending thread, under
 * a lock: it must be quick, must not block and must not call back.
 * -ENOSPC beyond CHANGES_LISTENERS: each mirror (at most 16) and the
 * control socket while it has watchers.
 */
#define CHANGES_LISTENERS (16 + 1)
int changes_listen(struct changes *ch, void (*fn)(void *arg), void *arg);
void changes_unlisten(struct changes *ch, void (*fn)(void *arg), void *arg);

struct changes_stats {
	struct journal_stats j;
	uint64_t refused;     /* changes refused: journal full or failed */
	uint64_t unrecorded;  /* changes made that the journal lost */
	uint64_t cursors;
	bool full;	      /* changes are being refused */
	bool alarm;	      /* cursors hold the journal past 90% */
	int failed;	      /* negative errno: the journal failed */
	const char *policy;   /* journal_full */
};
void changes_get_stats(struct changes *ch, struct changes_stats *st);

/* The default state directory of the mount at mountpoint. */
int changes_default_dir(const char *mountpoint, char *buf, size_t len);

#endif
