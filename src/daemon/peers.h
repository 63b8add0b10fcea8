/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_PEERS_H
#define CACHEFS_PEERS_H

#include "fs.h"

/*
 * Peer invalidation: cachefs instances over the same backend (one per web
 * host) tell each other which paths changed through them, over UDP, so a
 * peer's kernel forgets them at once rather than at its next
 * revalidation.
 *
 * A datagram is a 32-byte HMAC-SHA256, keyed with the shared secret, of
 * the rest, which is one JSON object:
 *
 *	{"v": 1, "id": "<sender, 16 hex digits>", "seq": N,
 *	 "paths": ["/changed", "/dir/of/changed", ...]}
 *
 * Paths are relative to the mount.  seq counts 1, 2, ... per sender id (a
 * new id each start).  A receiver that sees a sequence number jump (a
 * datagram lost) makes its kernel forget everything it caches of the
 * mount: it must not serve what it missed.  Datagrams that fail the HMAC
 * or do not parse are counted and dropped.
 */

struct peers;
struct event_base;

/*
 * From -o listen, peers and peer_secret_file: bind and read the secret
 * (before daemonizing).  *out stays NULL when neither listen nor peers
 * is set.  Logs what fails.
 */
int peers_new(struct cfs *fs, struct peers **out);

/* Serve on base (the control loop). */
int peers_start(struct peers *p, struct event_base *base);

/* Leave the loop (before it is freed). */
void peers_stop(struct peers *p);

/* path (mount-relative) changed through this mount; any thread. */
void peers_changed(struct peers *p, const char *path);

void peers_free(struct peers *p);

#endif
