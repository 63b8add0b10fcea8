// SPDX-License-Identifier: MIT
#include "log.h"

#include <fuse_log.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static const char *log_ident = "cachefs";
static atomic_int log_level = LOGL_NOTICE;
static atomic_bool log_syslog;

static const int syslog_prio[] = {
	[LOGL_ERROR] = LOG_ERR,	  [LOGL_WARNING] = LOG_WARNING,
	[LOGL_NOTICE] = LOG_NOTICE, [LOGL_INFO] = LOG_INFO,
	[LOGL_DEBUG] = LOG_DEBUG,
};

static void vlog(int level, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	if (atomic_load(&log_syslog)) {
		vsyslog(syslog_prio[level], fmt, ap);
		return;
	}
	/* One write per message so concurrent threads do not interleave. */
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: ", log_ident);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);

	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (len == 0 || line[len - 1] != '\n')
		line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int log_errno(int level, int r, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (r > 0)
		r = -r;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "%s: %s", msg, strerror(-r));
	return r;
}

bool log_enabled(int level)
{
	return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* libfuse's own messages go through the same levels and destination. */
static void fuse_log_cb(enum fuse_log_level level, const char *fmt,
			va_list ap)
{
	int l = level <= FUSE_LOG_ERR	   ? LOGL_ERROR
		: level == FUSE_LOG_WARNING ? LOGL_WARNING
		: level == FUSE_LOG_NOTICE  ? LOGL_NOTICE
		: level == FUSE_LOG_INFO    ? LOGL_INFO
					    : LOGL_DEBUG;
	vlog(l, fmt, ap);
}

void log_init(const char *ident, int level)
{
	log_ident = ident;
	log_set_level(level);
	fuse_set_log_func(fuse_log_cb);
}

void log_set_level(int level)
{
	atomic_store(&log_level, level);
}

void log_to_syslog(void)
{
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&log_syslog, true);
}
