/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CLIENT_H
#define CACHEFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * libcachefs: read files from a remote cachefs over RDMA (libfabric),
 * from a mount started with -o rdma.  See libcachefs(3).
 *
 * A connection authenticates with the mount's secret, then stats, opens
 * and reads files by path, relative to the mount's root.  Small reads
 * come back in the server's reply; larger ones are written by the server
 * straight into a registered buffer: one the caller registered
 * (cachefs_client_register()), the caller's own buffer registered for
 * that read (register_buffers), or the library's bounce buffer, copied
 * from.  Several reads may be in flight: cachefs_client_submit() and
 * cachefs_client_complete().
 *
 * Errors are negative errno values; a message for the last one is kept
 * (cachefs_client_error(), or the err buffer of cachefs_client_connect()).
 *
 * A connection is not thread-safe: use it from one thread at a time (one
 * connection per thread is the simple way).  Distinct connections are
 * independent; the library has no global state and installs no signal
 * handlers.
 */

struct cachefs_client;
struct cachefs_client_mr;

/* How to connect.  All zero (or a NULL pointer) is the defaults. */
struct cachefs_client_opts {
	/*
	 * The libfabric provider, e.g. "tcp" or "verbs", or NULL for the
	 * first of "verbs;ofi_rxm" and "tcp;ofi_rxm" that reaches the
	 * server.  The server's rdma_provider must be the same.
	 */
	const char *provider;
	/* The mount's secret (rdma_secret_file), or NULL for none. */
	const void *secret;
	size_t secret_len;
	/*
	 * How long to wait for the server: to connect and authenticate, for
	 * each request of the synchronous calls, and without any completion
	 * in cachefs_client_complete(), in milliseconds: 0 for 5 seconds,
	 * -1 for ever.  A connection that timed out is broken.
	 */
	int timeout_ms;
	/*
	 * Wait by polling the completion queue, a core busy, for the lowest
	 * latency; else sleep in the provider (fi_cq_sread()).
	 */
	bool busy_poll;
	/*
	 * Register the caller's buffer for each read the server writes,
	 * instead of copying from the library's registered bounce buffer.
	 * Cheap where registering is (tcp), dear where it pins memory
	 * (verbs); buffers registered with cachefs_client_register() are
	 * used directly in any case.
	 */
	bool register_buffers;
	/* Most requests in flight: 0 for as many as the server allows. */
	unsigned max_requests;
};

/*
 * Connect to the cachefs at address, "HOST:PORT" ("[V6]:PORT" for an IPv6
 * address), and authenticate.  Returns 0 with *out, or a negative errno
 * with a one-line message in err (when err is not NULL and errlen > 0):
 *
 *	-EINVAL		a bad address or option
 *	-ENODATA	no provider reaches the address
 *	-EACCES		the secret is wrong, or the server could not
 *			prove it knows it (or has none while one was
 *			given)
 *	-ETIMEDOUT	no answer in time
 *	-ECONNREFUSED, -ECONNRESET, -EPROTO
 *			no server there, it went away, or it is no cachefs
 */
int cachefs_client_connect(const char *address,
			   const struct cachefs_client_opts *opts,
			   struct cachefs_client **out, char *err,
			   size_t errlen);

/*
 * Say goodbye and free the connection; reads in flight are abandoned.
 * Registrations still made are closed too.  NULL-safe.
 */
void cachefs_client_disconnect(struct cachefs_client *c);

/* The provider in use, e.g. "tcp;ofi_rxm". */
const char *cachefs_client_provider(const struct cachefs_client *c);

/* A message for the last error of c. */
const char *cachefs_client_error(const struct cachefs_client *c);

/* The largest read the server takes, in bytes (cachefs_client_submit()). */
size_t cachefs_client_max_read(const struct cachefs_client *c);

/* The most requests in flight. */
unsigned cachefs_client_max_requests(const struct cachefs_client *c);

/*
 * The attributes of path, relative to the mount's root (no leading '/';
 * symlinks are followed while they stay in the tree), as the server's
 * rdma_user sees them.  Returns 0 or a negative errno: -ENOENT, -EACCES
 * (no permission, or the path leaves the tree), -ENAMETOOLONG, ...
 */
int cachefs_client_stat(struct cachefs_client *c, const char *path,
			struct stat *st);

/*
 * Open the regular file at path for reading; its attributes in *st
 * unless st is NULL.  Returns a handle (>= 0) or a negative errno: as
 * cachefs_client_stat(), -EISDIR, -EINVAL (not a regular file), -EMFILE
 * (too many open).
 */
int cachefs_client_open(struct cachefs_client *c, const char *path,
			struct stat *st);

/* Close a handle: 0 or a negative errno (-EBADF). */
int cachefs_client_close(struct cachefs_client *c, int fh);

/*
 * Read up to len bytes at off into buf, as pread(2): fewer only at the
 * end of the file.  A large read is split and its parts go in flight
 * together.  Returns the bytes read or a negative errno.
 */
ssize_t cachefs_client_pread(struct cachefs_client *c, int fh, void *buf,
			     size_t len, uint64_t off);

/*
 * Register len bytes at buf for the server to write into: reads into
 * them need no copy.  Returns 0 with *out, or a negative errno.
 */
int cachefs_client_register(struct cachefs_client *c, void *buf, size_t len,
			    struct cachefs_client_mr **out);

/*
 * Close a registration.  Returns 0, or -EBUSY while a read into it is
 * in flight.  NULL-safe.
 */
int cachefs_client_deregister(struct cachefs_client *c,
			      struct cachefs_client_mr *mr);

/* A read done: what cachefs_client_submit() was given, and its result. */
struct cachefs_client_completion {
	void *user;
	ssize_t result; /* bytes read (fewer only at the end), or -errno */
};

/*
 * Start a read of len bytes (at most cachefs_client_max_read()) at off
 * into buf, which must stay valid until its completion is taken; user
 * comes back with the completion.  Returns 0, -EAGAIN when
 * cachefs_client_max_requests() reads are in flight (take completions
 * first), or another negative errno.
 */
int cachefs_client_submit(struct cachefs_client *c, int fh, void *buf,
			  size_t len, uint64_t off, void *user);

/*
 * Take up to max completions of submitted reads, in the order they came,
 * into done.  Waits at most timeout_ms milliseconds for the first (0: not
 * at all); -1 waits until one comes, or fails with -ETIMEDOUT after the
 * connection's timeout without any.  Returns how many were taken (0:
 * none in time, or none in flight), or a negative errno when the
 * connection broke (reads in flight then complete with the error).
 */
int cachefs_client_complete(struct cachefs_client *c,
			    struct cachefs_client_completion *done,
			    unsigned max, int timeout_ms);

/* Reads submitted whose completion was not taken yet. */
unsigned cachefs_client_in_flight(const struct cachefs_client *c);

#ifdef __cplusplus
}
#endif

#endif
