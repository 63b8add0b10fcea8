/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_LOG_H
#define CACHEFS_LOG_H

#include <errno.h>
#include <stdbool.h>

#include "config.h"

/*
 * Daemon logging: stderr in the foreground, syslog once daemonized.  Only
 * top-level daemon code logs; modules return negative errno values.
 */

void log_init(const char *ident, int level);
void log_set_level(int level);
void log_to_syslog(void); /* after daemonizing */
bool log_enabled(int level);

/*
 * Log to the file at path (appending), instead of stderr or syslog.
 * log_reopen() reopens it under the same name, for log rotation.
 */
int log_to_file(const char *path);
int log_reopen(void);
bool log_has_file(void);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOGL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOGL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_enabled(LOGL_DEBUG))             \
			log_msg(LOGL_DEBUG, __VA_ARGS__); \
	} while (0)

/*
 * Log a failure with its errno and return the negative errno, so that a
 * caller can write "return log_error_errno(r, ...);" in one statement.
 */
#define log_error_errno(r, fmt, ...) \
	log_errno(LOGL_ERROR, r, fmt, ##__VA_ARGS__)
#define log_warning_errno(r, fmt, ...) \
	log_errno(LOGL_WARNING, r, fmt, ##__VA_ARGS__)
int log_errno(int level, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
