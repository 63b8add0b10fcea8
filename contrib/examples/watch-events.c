// SPDX-License-Identifier: MIT
/*
 * watch-events: print the changes made through a cachefs mount, one per
 * line, and with a cursor acknowledge them once printed, so that the next
 * run starts after the last one printed.
 *
 *	watch-events MOUNTPOINT|SOCKET [CURSOR]
 *
 * Build it on its own with
 *
 *	cc -o watch-events watch-events.c \
 *		$(pkg-config --cflags --libs libcachefs)
 */
#include <cachefs/events.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_event(const struct cachefs_event *ev, void *arg)
{
	struct cachefs_events *e = arg;
	int r;

	switch (ev->type) {
	case CACHEFS_EVENT_CHANGE:
		printf("%" PRIu64 " %s %s%s%s\n", ev->seq, ev->op, ev->path,
		       ev->path2 ? " -> " : "", ev->path2 ? ev->path2 : "");
		break;
	case CACHEFS_EVENT_GAP:
		/* Those changes must be found another way. */
		printf("lost %" PRIu64 "-%" PRIu64
		       ": see cachefsctl changes --since\n",
		       ev->gap_from, ev->gap_to);
		break;
	case CACHEFS_EVENT_END:
		return 0;
	}
	/*
	 * Acknowledge what is printed, and only that: the journal may drop
	 * what was acknowledged.  Once per batch, when nothing more is
	 * buffered, since the daemon syncs its cursor for each ack.
	 */
	if (!cachefs_events_cursor(e) || cachefs_events_pending(e))
		return 0;
	if (fflush(stdout) != 0)
		return 1;
	r = cachefs_events_ack(e, ev->seq);
	if (r < 0) {
		fprintf(stderr, "watch-events: ack: %s\n",
			cachefs_events_error(e));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cachefs_events_opts opts = { 0 };
	struct cachefs_events *e;
	char err[256];
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: watch-events MOUNTPOINT|SOCKET "
				"[CURSOR]\n");
		return 2;
	}
	opts.cursor = argc > 2 ? argv[2] : NULL;
	r = cachefs_events_open(argv[1], &opts, &e, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "watch-events: %s: %s\n", argv[1], err);
		return 1;
	}
	fprintf(stderr,
		"watch-events: from %" PRIu64 " (journal: %" PRIu64
		" to %" PRIu64 ")\n",
		cachefs_events_first(e), cachefs_events_oldest(e),
		cachefs_events_newest(e));
	r = cachefs_events_run(e, print_event, e);
	if (r < 0)
		fprintf(stderr, "watch-events: %s\n", cachefs_events_error(e));
	cachefs_events_close(e);
	return r == 0 ? 0 : 1;
}
