/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CTL_INT_H
#define CACHEFS_CTL_INT_H

/* Internals shared by ctl.c, ctl_cmds.c and metrics.c. */

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include "ctl.h"
#include "notify.h"
#include "stats.h"

#define CTL_MAX_CLIENTS 64
#define CTL_RATE_SAMPLES 11 /* one a second: ops/s over the last 10 s */

struct event_base;
struct evconnlistener;
struct evhttp;
struct event;
struct bufferevent;
struct watch;
struct ctl_request;

#define OUT_PAUSE (1u << 20)   /* stop reading a client with this queued */
#define OUT_RESUME (256u << 10) /* and read again below this */

struct client {
	struct ctl *c;
	struct bufferevent *bev;
	bool closing; /* answer queued, close once it is written */
	bool eof;     /* the client sent all it will send */
	struct watch *watch; /* a watch stream; NULL: requests */
	struct client *next, **pprev; /* in c->client_list */
};

struct ctl {
	struct ctl_params p;
	struct config *cfg;
	time_t started;	     /* wall clock */
	uint64_t started_ns; /* monotonic */

	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char link_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int metrics_fd;
	char metrics_addr[80]; /* as bound, e.g. "127.0.0.1:9100" */

	/* Everything below belongs to the loop thread once started. */
	struct event_base *base;
	struct evconnlistener *listener;
	struct evhttp *http;
	struct event *sighup, *tick;
	pthread_t thread;
	bool running;
	bool own_socket; /* bound by us: ours to remove */
	struct client *client_list;
	unsigned clients;
	struct {
		uint64_t ops, ns;
	} rate[CTL_RATE_SAMPLES]; /* ring, rate_next is the oldest */
	unsigned rate_next, rate_count;
	struct event *watch_ev; /* pumps the watch streams */
	bool watch_woken;	/* atomic: watch_ev is active already */
	unsigned nwatches;	/* streams; told of appends while > 0 */
	struct inode_table_stats fd_base; /* at the last stats reset */
	struct notify_stats notify_base; /* the same for notify */
};

/* A command: fills *out (may stay NULL) or returns a negative errno. */
struct ctl_command {
	const char *name;
	int (*run)(struct ctl *c, json_t *args, json_t **out, char *err,
		   size_t errlen);
	const char *args; /* synopsis of the arguments, for help */
	const char *help;
};

extern const struct ctl_command ctl_commands[];
const struct ctl_command *ctl_command_find(const char *name);

/* Operations per second over the sampled window, from *now. */
double ctl_ops_rate(const struct ctl *c, const struct stats *now);

/* Process figures from /proc/self. */
struct proc_figures {
	uint64_t rss_bytes;
	uint64_t fds;
	uint64_t threads;
};
void proc_figures_get(struct proc_figures *pf);

/* Reopen the log and trace files; logs what fails. */
int ctl_reopen_logs(struct ctl *c, char *err, size_t errlen);

/* Queue a final answer (or none) and close once it is written. */
void ctl_client_close(struct client *cl, const char *line);

/* The watch stream (ctl_watch.c). */
int ctl_watch_setup(struct ctl *c);
void ctl_watch_teardown(struct ctl *c);
/* Answer a watch request and start streaming: the answer is queued. */
char *ctl_watch_start(struct ctl *c, struct client *cl, json_t *args);
/* A request on a watch stream: the answer to queue. */
char *ctl_watch_request(struct ctl *c, struct client *cl,
			const struct ctl_request *req);
/* Send a watcher what it may take now. */
void ctl_watch_pump(struct ctl *c, struct client *cl);
void ctl_watch_free(struct ctl *c, struct client *cl);

/* The journal's cursors, with how far behind they are. */
struct ctl_cursor {
	char name[65];
	uint64_t acked;
	uint64_t lag_records;
	uint64_t lag_bytes;
	double lag_seconds;
};
int ctl_cursors(struct ctl *c, struct ctl_cursor *out, size_t max);
json_t *ctl_cursors_json(struct ctl *c);
/* The journal in status and stats. */
json_t *ctl_journal_json(struct ctl *c);

struct evbuffer;
/* Render every metric in Prometheus text format (version 0.0.4). */
void metrics_render(struct ctl *c, struct evbuffer *out);

#endif
