/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_LIB_DEADLINE_H
#define CACHEFS_LIB_DEADLINE_H

/* Deadlines in milliseconds of CLOCK_MONOTONIC, for poll() timeouts. */

#include <limits.h>
#include <stdint.h>
#include <time.h>

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline timeout_ms from now; -1 (a negative timeout_ms): none. */
static inline int64_t deadline_in(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Milliseconds left until deadline (-1: for ever), 0 once passed. */
static inline int left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

#endif
