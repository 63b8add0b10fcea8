// SPDX-License-Identifier: MIT
/*
 * The operation trace: a bounded ring of records plus an optional file
 * (see trace.h).
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool trace_active;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_rec ring[TRACE_RING]; /* protected by lock */
static uint64_t last_seq;		  /* protected by lock */
static pid_t filter_pid;		  /* protected by lock */
static char *filter_prefix;		  /* protected by lock */
static size_t filter_len;		  /* protected by lock */
static char *file_path;			  /* protected by lock */
static int file_fd = -1;		  /* protected by lock */

int trace_on(pid_t pid, const char *prefix)
{
	char *p = NULL;
	size_t n = 0;

	if (prefix) {
		n = strlen(prefix);
		while (n > 1 && prefix[n - 1] == '/')
			n--;
		p = strndup(prefix, n);
		if (!p)
			return -ENOMEM;
		if (strcmp(p, "/") == 0) {
			free(p);
			p = NULL;
			n = 0;
		}
	}
	pthread_mutex_lock(&lock);
	free(filter_prefix);
	filter_prefix = p;
	filter_len = n;
	filter_pid = pid;
	pthread_mutex_unlock(&lock);
	__atomic_store_n(&trace_active, true, __ATOMIC_RELAXED);
	return 0;
}

void trace_off(void)
{
	__atomic_store_n(&trace_active, false, __ATOMIC_RELAXED);
}

bool trace_get_filter(pid_t *pid, char **prefix)
{
	pthread_mutex_lock(&lock);
	*pid = filter_pid;
	*prefix = filter_prefix ? strdup(filter_prefix) : NULL;
	pthread_mutex_unlock(&lock);
	return trace_enabled();
}

bool trace_wants_pid(pid_t pid)
{
	pid_t want;

	pthread_mutex_lock(&lock);
	want = filter_pid;
	pthread_mutex_unlock(&lock);
	return !want || want == pid;
}

/* path is at or below the prefix: "/a" matches "/a" and "/a/b", not "/ab" */
static bool do_path_matches(const char *path)
{
	if (!filter_prefix)
		return true;
	return path && strncmp(path, filter_prefix, filter_len) == 0 &&
	       (path[filter_len] == '\0' || path[filter_len] == '/' ||
		path[filter_len] == ' ');
}

int trace_format(const struct trace_rec *r, char *buf, size_t len)
{
	const char *res = r->result ? strerrorname_np(-r->result) : "0";
	struct tm tm;
	char when[32];
	int n;

	localtime_r(&r->time.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf, len,
		     "%s.%06ld %" PRIu64 " %d %s %s %s size=%" PRIu64
		     " off=%" PRId64 " res=%s %.1fus",
		     when, r->time.tv_nsec / 1000, r->seq, (int)r->pid,
		     r->comm[0] ? r->comm : "-", fs_op_names[r->op],
		     r->path ? r->path : "-", r->size, r->offset,
		     res ? res : "other", (double)r->ns / 1e3);
	return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
}

/* Append rec to the trace file; caller holds lock. */
static void do_write_file(const struct trace_rec *rec)
{
	char line[8192];
	int n;

	if (file_fd < 0)
		return;
	n = trace_format(rec, line, sizeof(line) - 1);
	line[n++] = '\n';
	if (write(file_fd, line, (size_t)n) != n)
		stats_inc(trace_file_errors);
}

void trace_record(struct trace_rec *rec)
{
	struct trace_rec *slot;

	pthread_mutex_lock(&lock);
	if (!do_path_matches(rec->path) ||
	    (filter_pid && rec->pid != filter_pid)) {
		pthread_mutex_unlock(&lock);
		free(rec->path);
		return;
	}
	rec->seq = ++last_seq;
	slot = &ring[rec->seq % TRACE_RING];
	free(slot->path);
	*slot = *rec;
	do_write_file(slot);
	pthread_mutex_unlock(&lock);
	stats_inc(trace_records);
}

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	return fd < 0 ? -errno : fd;
}

int trace_set_file(const char *path)
{
	char *p = NULL;
	int fd = -1;

	if (path) {
		p = strdup(path);
		if (!p)
			return -ENOMEM;
		fd = open_file(path);
		if (fd < 0) {
			free(p);
			return fd;
		}
	}
	pthread_mutex_lock(&lock);
	if (file_fd >= 0)
		close(file_fd);
	free(file_path);
	file_fd = fd;
	file_path = p;
	pthread_mutex_unlock(&lock);
	return 0;
}

int trace_reopen(void)
{
	int fd, r = 0;

	pthread_mutex_lock(&lock);
	if (file_path) {
		fd = open_file(file_path);
		if (fd < 0) {
			r = fd;
		} else {
			close(file_fd);
			file_fd = fd;
		}
	}
	pthread_mutex_unlock(&lock);
	return r;
}

uint64_t trace_last_seq(void)
{
	uint64_t last;

	pthread_mutex_lock(&lock);
	last = last_seq;
	pthread_mutex_unlock(&lock);
	return last;
}

uint64_t trace_foreach(uint64_t since, unsigned max, uint64_t *lost,
		       void (*fn)(const struct trace_rec *rec, void *arg),
		       void *arg)
{
	uint64_t first, seq;

	pthread_mutex_lock(&lock);
	first = last_seq > TRACE_RING ? last_seq - TRACE_RING + 1 : 1;
	*lost = since + 1 < first ? first - since - 1 : 0;
	seq = since + 1 > first ? since + 1 : first;
	for (; seq <= last_seq && max; seq++, max--)
		fn(&ring[seq % TRACE_RING], arg);
	pthread_mutex_unlock(&lock);
	return seq - 1 > since ? seq - 1 : since;
}

void trace_shutdown(void)
{
	trace_off();
	pthread_mutex_lock(&lock);
	for (size_t k = 0; k < TRACE_RING; k++) {
		free(ring[k].path);
		ring[k].path = NULL;
	}
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	free(file_path);
	file_path = NULL;
	free(filter_prefix);
	filter_prefix = NULL;
	pthread_mutex_unlock(&lock);
}
