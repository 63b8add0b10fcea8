/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_LOOKAHEAD_H
#define CACHEFS_LOOKAHEAD_H

#include "fs.h"

/*
 * The look-ahead: once the kernel has looked a name up in a directory,
 * the directory is read through the mount (about its first -o lookahead
 * entries), up to four directories at a time, by reader processes (see
 * lookahead.c).  The kernel asks for that listing with READDIRPLUS and
 * keeps an entry, with attributes, for every name in the answer, so
 * that the application's next lookups there never leave the kernel.  A
 * first pass over a tree then costs about one round trip per directory
 * rather than one per name.  FUSE has no way for a daemon to hand the
 * kernel entries it did not ask for; a listing it asks for is the way.
 *
 * Directories are taken newest first: the one the application is in now
 * comes before those it has left, and the oldest waiting are dropped.
 * A directory is read ahead once until the kernel forgets it.
 */

struct lookahead;

/* Start after the mount is up (and the daemon detached): the readers too. */
int lookahead_start(struct cfs *fs, struct lookahead **out);

/*
 * Stop and free (NULL-safe).  Only once the kernel's connection is gone
 * (fuse_session_unmount()): a listing under way waits for the daemon.
 */
void lookahead_stop(struct lookahead *la);

/*
 * A reader is this program run again (/proc/self/exe) as
 * "cachefs-ahead --lookahead-reader DAEMON-PID", its socket on
 * descriptor 3: main() hands it over to lookahead_reader_main().
 */
#define LOOKAHEAD_READER_ARG "--lookahead-reader"
_Noreturn void lookahead_reader_main(const char *daemon_pid);

/* The kernel looked up a name in dir and was told it exists. */
void lookahead_note(struct lookahead *la, struct inode *dir);

#endif
