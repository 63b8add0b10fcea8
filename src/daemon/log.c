// SPDX-License-Identifier: MIT
#include "log.h"

#include <fuse_log.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "cachefs";
static atomic_int log_level = LOGL_NOTICE;
static atomic_bool log_syslog;
static atomic_int log_fd = -1; /* log file; replaced in place by dup2 */
static char *log_path;	       /* only the control thread reopens */

static const int syslog_prio[] = {
	[LOGL_ERROR] = LOG_ERR,	  [LOGL_WARNING] = LOG_WARNING,
	[LOGL_NOTICE] = LOG_NOTICE, [LOGL_INFO] = LOG_INFO,
	[LOGL_DEBUG] = LOG_DEBUG,
};

static void vlog(int level, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	int fd = atomic_load(&log_fd);

	if (fd < 0 && atomic_load(&log_syslog)) {
		vsyslog(syslog_prio[level], fmt, ap);
		return;
	}
	/* One write per message so concurrent threads do not interleave. */
	char line[1024];
	int n;

	if (fd >= 0) {
		struct timeval tv;
		struct tm tm;
		char when[32];

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ld %s[%d]: ", when,
			     (long)tv.tv_usec / 1000, log_ident, (int)getpid());
	} else {
		n = snprintf(line, sizeof(line), "%s: ", log_ident);
	}
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);

	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (len == 0 || line[len - 1] != '\n')
		line[len++] = '\n';
	if (fd >= 0) {
		if (write(fd, line, len) < 0) {
			/* nowhere better to say so */
		}
	} else {
		fwrite(line, 1, len, stderr);
	}
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

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int log_to_file(const char *path)
{
	int fd = open_log(path);
	char *p;

	if (fd < 0)
		return fd;
	p = strdup(path);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	free(log_path);
	log_path = p;
	fd = atomic_exchange(&log_fd, fd);
	if (fd >= 0)
		close(fd);
	return 0;
}

int log_reopen(void)
{
	int fd, old = atomic_load(&log_fd);

	if (!log_path || old < 0)
		return 0;
	fd = open_log(log_path);
	if (fd < 0)
		return fd;
	/* dup3 swaps the file under concurrent writers atomically */
	if (dup3(fd, old, O_CLOEXEC) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

bool log_has_file(void)
{
	return atomic_load(&log_fd) >= 0;
}
