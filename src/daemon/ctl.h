/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CTL_H
#define CACHEFS_CTL_H

#include "fs.h"

/*
 * The control plane: the control socket cachefsctl talks to, the
 * Prometheus endpoint and SIGHUP, all served by one libevent loop in a
 * thread of its own, so a slow or stuck client never holds up the
 * filesystem.  The protocol is in src/shared/ctl_proto.h, the commands
 * in ctl_cmds.c.
 */

struct ctl;

struct ctl_params {
	struct cfs *fs;
	const char *backend;	 /* canonical */
	const char *mountpoint;	 /* canonical */
	const char *kernel_opts; /* as handed to libfuse */
};

/*
 * Create the control socket (and the metrics socket, if configured)
 * without serving them yet: call before daemonizing, so that a mistake is
 * reported on the terminal.  Logs what fails and returns a negative errno.
 */
int ctl_new(const struct ctl_params *p, struct ctl **out);

/* Serve, from a new thread; after daemonizing. */
int ctl_start(struct ctl *c);

/* Stop serving, remove the socket and free c (NULL-safe). */
void ctl_free(struct ctl *c);

#endif
