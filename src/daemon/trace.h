/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_TRACE_H
#define CACHEFS_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "stats.h"

/*
 * The operation trace (I/O log): when on, every operation is recorded
 * into a bounded in-memory ring and, if a trace file is set, appended to
 * it as one line.  When off, the cost to an operation is one relaxed load
 * (trace_enabled()).
 */

#define TRACE_RING 4096 /* records kept in memory */

struct trace_rec {
	uint64_t seq;	      /* 1, 2, ... since the daemon started */
	struct timespec time; /* CLOCK_REALTIME at the reply */
	pid_t pid;
	char comm[16];	      /* process name */
	enum fs_op op;
	char *path;	      /* mount-relative; "a -> b" for rename, link */
	uint64_t size;
	int64_t offset;	      /* -1 when the op has none */
	int result;	      /* 0 or a negative errno */
	uint64_t ns;	      /* latency */
};

extern bool trace_active; /* use trace_enabled() */

static inline bool trace_enabled(void)
{
	return __atomic_load_n(&trace_active, __ATOMIC_RELAXED);
}

/*
 * Turn the trace on, keeping only operations of process pid (0: all) on
 * paths at or below prefix (NULL: all).  Turning it on again replaces the
 * filter; the ring keeps its records.
 */
int trace_on(pid_t pid, const char *prefix);
void trace_off(void);

/* The current filter; *prefix is a copy the caller frees. */
bool trace_get_filter(pid_t *pid, char **prefix);

/* Whether an operation by pid should be traced (before its path is known). */
bool trace_wants_pid(pid_t pid);

/* Record an operation; takes ownership of rec->path, assigns rec->seq. */
void trace_record(struct trace_rec *rec);

/*
 * Set the trace file (NULL: none), opened for appending.  Returns 0 or a
 * negative errno; the previous file stays in use on failure.
 */
int trace_set_file(const char *path);

/* Reopen the trace file under its name, for log rotation. */
int trace_reopen(void);

/* The sequence number of the newest record (0: none yet). */
uint64_t trace_last_seq(void);

/*
 * Call fn for the records with seq > since, oldest first, at most max of
 * them, under the trace lock (fn must not call back into the trace).
 * *lost counts the records after since that the ring no longer holds.
 * Returns the sequence number to pass as since next time.
 */
uint64_t trace_foreach(uint64_t since, unsigned max, uint64_t *lost,
		       void (*fn)(const struct trace_rec *rec, void *arg),
		       void *arg);

/*
 * Format rec as one line of text (no '\n'), as "cachefsctl trace show"
 * prints it:
 *   TIME SEQ PID COMM OP PATH size=N off=N res=0|ERRNAME LATENCYus
 * Returns the length.
 */
int trace_format(const struct trace_rec *rec, char *buf, size_t len);

/* Free the ring and close the file. */
void trace_shutdown(void);

#endif
