// SPDX-License-Identifier: MIT
/*
 * The control socket server: one libevent loop in its own thread serves
 * cachefsctl clients, the metrics endpoint, SIGHUP and a once-a-second
 * sample of the operation rate.
 *
 * Per client: requests are read a line at a time, at most CTL_LINE_MAX
 * bytes buffered; answers are queued in the client's output buffer, and a
 * client that does not read them is not read from either (so it cannot
 * make the daemon buffer without bound).  Nothing a client does can block
 * the loop.
 */
#include "ctl.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_int.h"
#include "ctl_proto.h"
#include "log.h"
#include "peers.h"
#include "stats.h"
#include "trace.h"

#define OUT_MAX (64u << 20)    /* drop a client whose answers exceed this */

static void client_free(struct client *cl)
{
	ctl_watch_free(cl->c, cl);
	*cl->pprev = cl->next;
	if (cl->next)
		cl->next->pprev = cl->pprev;
	cl->c->clients--;
	bufferevent_free(cl->bev);
	free(cl);
}

void ctl_client_close(struct client *cl, const char *line)
{
	if (line)
		bufferevent_write(cl->bev, line, strlen(line));
	cl->closing = true;
	bufferevent_disable(cl->bev, EV_READ);
	bufferevent_setwatermark(cl->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
		client_free(cl);
}

/*
 * The answer to one request line, or NULL when the client is closing or
 * its answer was queued already (watch).
 */
static char *run_request(struct client *cl, const char *buf, size_t len)
{
	struct ctl *c = cl->c;
	struct ctl_request req;
	const struct ctl_command *cmd;
	json_t *out = NULL;
	char err[512], *answer;
	int r;

	r = ctl_request_parse(buf, len, &req, err, sizeof(err));
	if (r < 0) {
		stats_inc(ctl_bad_requests);
		return ctl_response_error(err);
	}
	/* a watch turns the connection into a stream; acks come on it */
	if (cl->watch || !strcmp(req.cmd, "watch")) {
		stats_inc(ctl_requests);
		answer = cl->watch ? ctl_watch_request(c, cl, &req)
				   : ctl_watch_start(c, cl, req.args);
		ctl_request_clear(&req);
		return answer;
	}
	cmd = ctl_command_find(req.cmd);
	if (!cmd) {
		stats_inc(ctl_bad_requests);
		snprintf(err, sizeof(err),
			 "unknown command '%s' (try \"help\")", req.cmd);
		ctl_request_clear(&req);
		return ctl_response_error(err);
	}
	err[0] = '\0';
	r = cmd->run(c, req.args, &out, err, sizeof(err));
	ctl_request_clear(&req);
	stats_inc(ctl_requests);
	if (r < 0) {
		json_decref(out);
		stats_inc(ctl_failed_requests);
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-r));
		return ctl_response_error(err);
	}
	return ctl_response_ok(out);
}

/* Refuse an oversized request: answer, count, and close. */
static void refuse_oversized(struct client *cl)
{
	char *msg = ctl_response_error("request longer than 65536 bytes; "
				       "closing the connection");

	stats_inc(ctl_bad_requests);
	stats_inc(ctl_dropped_clients);
	ctl_client_close(cl, msg);
	free(msg);
}

/*
 * Answer the complete requests buffered, in order, while the client reads
 * its answers; once it has sent everything (eof), close after the last
 * answer is written.
 */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line, *answer;
	size_t n;

	while (!cl->closing && evbuffer_get_length(out) < OUT_PAUSE &&
	       (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF))) {
		if (n > CTL_LINE_MAX) {
			free(line);
			refuse_oversized(cl);
			return;
		}
		answer = run_request(cl, line, n);
		free(line);
		if (!answer) {
			if (!cl->watch && !cl->closing)
				ctl_client_close(cl, NULL);
			if (!cl->watch)
				return;
			continue;
		}
		if (evbuffer_get_length(out) + strlen(answer) > OUT_MAX) {
			free(answer);
			stats_inc(ctl_dropped_clients);
			ctl_client_close(cl, NULL);
			return;
		}
		bufferevent_write(bev, answer, strlen(answer));
		free(answer);
	}
	if (cl->closing)
		return;
	if (evbuffer_get_length(out) >= OUT_PAUSE) {
		/* Not reading its answers: stop reading its requests. */
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (evbuffer_get_length(in) > CTL_LINE_MAX) {
		refuse_oversized(cl);
		return;
	}
	if (cl->eof && !cl->watch) {
		if (evbuffer_get_length(in)) /* cut off mid-request */
			stats_inc(ctl_dropped_clients);
		ctl_client_close(cl, NULL);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;
	size_t queued = evbuffer_get_length(bufferevent_get_output(bev));

	if (cl->closing) {
		if (queued == 0)
			client_free(cl);
		return;
	}
	if (queued <= OUT_RESUME &&
	    (cl->eof || !(bufferevent_get_enabled(bev) & EV_READ))) {
		if (!cl->eof)
			bufferevent_enable(bev, EV_READ);
		on_read(bev, cl); /* requests may be waiting in the buffer */
	}
	if (queued <= OUT_RESUME && cl->watch && !cl->closing)
		ctl_watch_pump(cl->c, cl); /* it read: it may take more */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	if (what & BEV_EVENT_ERROR) {
		/* Gone before reading its answers. */
		if (evbuffer_get_length(bufferevent_get_output(bev)))
			stats_inc(ctl_dropped_clients);
		client_free(cl);
	} else if ((what & BEV_EVENT_EOF) && !cl->closing) {
		/* Half-closed: it still gets the answers to what it sent. */
		cl->eof = true;
		bufferevent_disable(bev, EV_READ);
		on_read(bev, cl);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct ctl *c = arg;
	struct client *cl;
	struct bufferevent *bev;

	(void)l;
	(void)sa;
	(void)salen;
	stats_inc(ctl_connections);
	if (c->clients >= CTL_MAX_CLIENTS || !(cl = calloc(1, sizeof(*cl)))) {
		char *msg = ctl_response_error("too many control clients");

		stats_inc(ctl_dropped_clients);
		if (msg && write(fd, msg, strlen(msg)) < 0) {
			/* the client is told if it can be */
		}
		free(msg);
		close(fd);
		return;
	}
	bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		free(cl);
		close(fd);
		return;
	}
	cl->c = c;
	cl->bev = bev;
	cl->next = c->client_list;
	cl->pprev = &c->client_list;
	if (cl->next)
		cl->next->pprev = &cl->next;
	c->client_list = cl;
	c->clients++;
	/* Read no more than one whole request ahead. */
	bufferevent_setwatermark(bev, EV_READ, 0, CTL_LINE_MAX + 2);
	bufferevent_setwatermark(bev, EV_WRITE, OUT_RESUME, 0);
	bufferevent_setcb(bev, on_read, on_write, on_event, cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int ctl_reopen_logs(struct ctl *c, char *err, size_t errlen)
{
	int r, t;

	(void)c;
	stats_inc(log_reopens);
	r = log_reopen();
	if (r < 0)
		log_error_errno(r, "cannot reopen the log file");
	t = trace_reopen();
	if (t < 0)
		log_error_errno(t, "cannot reopen the trace file");
	if (r < 0 || t < 0) {
		snprintf(err, errlen, "cannot reopen the %s file: %s",
			 r < 0 ? "log" : "trace", strerror(r < 0 ? -r : -t));
		return r < 0 ? r : t;
	}
	log_info("log and trace files reopened");
	return 0;
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	char err[256];

	(void)sig;
	(void)what;
	ctl_reopen_logs(arg, err, sizeof(err));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;
	struct stats s;
	uint64_t ops = 0;

	(void)fd;
	(void)what;
	stats_sum(&s, false);
	for (int k = 0; k < OP__COUNT; k++)
		ops += s.op[k].count;
	c->rate[c->rate_next].ops = ops;
	c->rate[c->rate_next].ns = stats_now_ns();
	c->rate_next = (c->rate_next + 1) % CTL_RATE_SAMPLES;
	if (c->rate_count < CTL_RATE_SAMPLES)
		c->rate_count++;
}

double ctl_ops_rate(const struct ctl *c, const struct stats *now)
{
	unsigned oldest = c->rate_count < CTL_RATE_SAMPLES ? 0 : c->rate_next;
	uint64_t ops = 0, ns = stats_now_ns();

	for (int k = 0; k < OP__COUNT; k++)
		ops += now->op[k].count;
	if (c->rate_count == 0)
		return 0;
	/* Over at least a second, so a fresh mount does not spike. */
	return (double)(ops - c->rate[oldest].ops) * 1e9 /
	       (double)(ns - c->rate[oldest].ns > 1000000000u
				? ns - c->rate[oldest].ns
				: 1000000000u);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = evbuffer_new();

	stats_inc(metrics_requests);
	if (!out) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(arg, out);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

static void on_http_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	stats_inc(metrics_requests);
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
}

/* Is a live daemon answering at path? */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096], *end;
	unsigned long n;

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res) {
		*gid = res->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(name, &end, 10);
	if (*name && !*end && !errno && n < (gid_t)-1) {
		*gid = (gid_t)n;
		return 0;
	}
	return -ENOENT;
}

static int bind_control(struct ctl *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *custom = c->cfg->ctl_socket;
	char def[sizeof(sa.sun_path)];
	gid_t gid = 0;
	mode_t old;
	int fd, r;

	r = ctl_socket_path(c->p.mountpoint, def, sizeof(def));
	if (r < 0)
		return log_error_errno(r, "no control socket name for %s",
				       c->p.mountpoint);
	if (custom && strlen(custom) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "ctl_socket '%s'",
				       custom);
	if (c->cfg->ctl_group && lookup_group(c->cfg->ctl_group, &gid) < 0)
		return log_error_errno(-ENOENT, "ctl_group: no group '%s'",
				       c->cfg->ctl_group);
	snprintf(c->socket_path, sizeof(c->socket_path), "%s",
		 custom ? custom : def);
	if (mkdir(CTL_SOCKET_DIR, 0755) < 0 && errno != EEXIST && !custom)
		return log_error_errno(errno, "cannot create %s",
				       CTL_SOCKET_DIR);
	if (socket_alive(c->socket_path)) {
		log_error("control socket %s is in use by another cachefs; "
			  "choose another with -o ctl_socket=PATH",
			  c->socket_path);
		return -EADDRINUSE;
	}
	unlink(c->socket_path); /* left by a daemon that died */

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "cannot create control socket");
	strcpy(sa.sun_path, c->socket_path);
	old = umask(0177); /* never reachable by others, not even briefly */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = log_error_errno(errno, "cannot bind control socket %s",
				    c->socket_path);
		goto out_close;
	}
	if (c->cfg->ctl_group &&
	    (chown(c->socket_path, 0, gid) < 0 ||
	     chmod(c->socket_path, 0660) < 0)) {
		r = log_error_errno(errno, "cannot open %s to group %s",
				    c->socket_path, c->cfg->ctl_group);
		goto out_unlink;
	}
	if (listen(fd, 16) < 0) {
		r = log_error_errno(errno, "cannot listen on %s",
				    c->socket_path);
		goto out_unlink;
	}
	c->own_socket = true;
	/* cachefsctl -m finds a custom socket through the default name. */
	if (custom && strcmp(custom, def) != 0) {
		unlink(def);
		if (symlink(custom, def) == 0)
			snprintf(c->link_path, sizeof(c->link_path), "%s",
				 def);
		else
			log_warning("cannot link %s to %s; use cachefsctl "
				    "-s %s",
				    def, custom, custom);
	}
	c->listen_fd = fd;
	return 0;

out_unlink:
	unlink(c->socket_path);
out_close:
	close(fd);
	return r;
}

static int bind_metrics(struct ctl *c)
{
	const char *spec = c->cfg->metrics;
	char host[64] = "127.0.0.1", port[16], addr[64];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *colon = strrchr(spec, ':');
	int fd, r, one = 1;

	if (colon) {
		size_t n = (size_t)(colon - spec);

		if (spec[0] == '[' && n > 1 && spec[n - 1] == ']')
			snprintf(host, sizeof(host), "%.*s", (int)n - 2,
				 spec + 1);
		else
			snprintf(host, sizeof(host), "%.*s", (int)n, spec);
		snprintf(port, sizeof(port), "%s", colon + 1);
	} else {
		snprintf(port, sizeof(port), "%s", spec);
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		log_error("metrics=%s: %s", spec, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0) {
		r = log_error_errno(errno, "metrics socket");
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		r = log_error_errno(errno, "cannot serve metrics on %s", spec);
		close(fd);
		goto out_free;
	}
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof(addr), port,
		    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->metrics_addr, sizeof(c->metrics_addr),
		 ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", addr, port);
	c->metrics_fd = fd;
	r = 0;
out_free:
	freeaddrinfo(ai);
	return r;
}

int ctl_new(const struct ctl_params *p, struct ctl **out)
{
	struct ctl *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return log_error_errno(-ENOMEM, "control");
	c->p = *p;
	c->cfg = p->fs->cfg;
	c->listen_fd = c->metrics_fd = -1;
	c->started = time(NULL);
	c->started_ns = stats_now_ns();
	r = bind_control(c);
	if (r == 0 && c->cfg->metrics)
		r = bind_metrics(c);
	if (r < 0) {
		ctl_free(c);
		return r;
	}
	*out = c;
	return 0;
}

static void *loop_thread(void *arg)
{
	struct ctl *c = arg;

	event_base_dispatch(c->base);
	return NULL;
}

int ctl_start(struct ctl *c)
{
	const struct timeval second = { 1, 0 };
	int r;

	if (evthread_use_pthreads() < 0)
		return log_error_errno(-ENOMEM, "libevent threads");
	c->base = event_base_new();
	if (!c->base)
		return log_error_errno(-ENOMEM, "event loop");
	c->listener = evconnlistener_new(c->base, on_accept, c,
					 LEV_OPT_CLOSE_ON_FREE, -1,
					 c->listen_fd);
	if (!c->listener)
		return log_error_errno(-ENOMEM, "control listener");
	c->listen_fd = -1; /* the listener owns it */
	c->sighup = evsignal_new(c->base, SIGHUP, on_sighup, c);
	c->tick = event_new(c->base, -1, EV_PERSIST, on_tick, c);
	if (!c->sighup || !c->tick || evsignal_add(c->sighup, NULL) < 0 ||
	    event_add(c->tick, &second) < 0)
		return log_error_errno(-ENOMEM, "control events");
	on_tick(-1, 0, c);
	if (c->metrics_fd >= 0) {
		c->http = evhttp_new(c->base);
		if (!c->http ||
		    !evhttp_accept_socket_with_handle(c->http, c->metrics_fd))
			return log_error_errno(-ENOMEM, "metrics endpoint");
		c->metrics_fd = -1; /* evhttp owns it */
		evhttp_set_allowed_methods(c->http,
					   EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
		evhttp_set_max_headers_size(c->http, 16384);
		evhttp_set_max_body_size(c->http, 0);
		evhttp_set_timeout(c->http, 10);
		evhttp_set_cb(c->http, "/metrics", on_metrics, c);
		evhttp_set_gencb(c->http, on_http_other, c);
	}
	if (c->p.fs->peers && peers_start(c->p.fs->peers, c->base) < 0)
		return log_error_errno(-ENOMEM, "peer events");
	if (ctl_watch_setup(c) < 0)
		return log_error_errno(-ENOMEM, "watch events");
	r = pthread_create(&c->thread, NULL, loop_thread, c);
	if (r)
		return log_error_errno(-r, "control thread");
	c->running = true;
	log_info("control socket %s%s%s", c->socket_path,
		 c->metrics_addr[0] ? ", metrics on " : "", c->metrics_addr);
	return 0;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	if (c->running) {
		event_base_loopbreak(c->base);
		pthread_join(c->thread, NULL);
	}
	while (c->client_list)
		client_free(c->client_list);
	ctl_watch_teardown(c);
	peers_stop(c->p.fs->peers);
	if (c->http)
		evhttp_free(c->http);
	if (c->listener)
		evconnlistener_free(c->listener);
	if (c->sighup)
		event_free(c->sighup);
	if (c->tick)
		event_free(c->tick);
	if (c->base)
		event_base_free(c->base);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->metrics_fd >= 0)
		close(c->metrics_fd);
	if (c->own_socket)
		unlink(c->socket_path);
	if (c->link_path[0]) {
		char target[sizeof(c->socket_path)];
		ssize_t n = readlink(c->link_path, target, sizeof(target) - 1);

		if (n > 0 && (target[n] = '\0', 1) &&
		    strcmp(target, c->socket_path) == 0)
			unlink(c->link_path);
	}
	free(c);
}
