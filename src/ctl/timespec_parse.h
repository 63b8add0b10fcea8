/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_TIMESPEC_PARSE_H
#define CACHEFS_TIMESPEC_PARSE_H

#include <time.h>

/*
 * The TIME of "cachefsctl changes --since", one of:
 *
 *	1795000000, @1795000000.5	seconds since the epoch
 *	2026-11-22T10:00:00Z		ISO 8601; also with a space for the T,
 *					without seconds or the time of day,
 *					with a fraction of a second, and with
 *					+HH:MM, +HHMM or +HH for the Z; no
 *					zone at all is UTC too
 *	90s, 15m, 2h, 3d, 1w		that long before now
 *
 * Returns 0 with *out, or -EINVAL.
 */
int timespec_parse(const char *s, const struct timespec *now,
		   struct timespec *out);

#endif
