/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_LISTING_H
#define CACHEFS_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A directory listing as the backend gave it, in one buffer a cache
 * tier can hold: for each entry its name, inode number, type (DT_*) and
 * the offset (d_off) that continues after it.  Served from memory with
 * the backend's own offsets, a listing continues exactly where one read
 * from the backend would, whichever the kernel's cached pages came from.
 */

struct listing_builder {
	char *buf;
	size_t len, cap, max;
	bool failed; /* over max, or out of memory: nothing to keep */
};

/* An empty listing of at most max bytes. */
void listing_init(struct listing_builder *b, size_t max);
void listing_add(struct listing_builder *b, const char *name, uint64_t ino,
		 unsigned char type, int64_t off);
void listing_free(struct listing_builder *b);

struct listing_entry {
	const char *name;
	uint64_t ino;
	unsigned char type;
	int64_t off;
};

/*
 * The entry at byte position *pos of a listing of len bytes, moving *pos
 * past it.  False at the end, or where the listing is malformed.
 */
bool listing_next(const char *list, size_t len, size_t *pos,
		  struct listing_entry *e);

/*
 * The position of the entry after the one whose offset is off (0: the
 * first entry).  False when no entry has that offset.
 */
bool listing_seek(const char *list, size_t len, int64_t off, size_t *pos);

#endif
