// SPDX-License-Identifier: MIT
/*
 * Directory listings in one buffer (see listing.h).  An entry is its
 * inode number and offset (8 bytes each, host order: listings never
 * leave the process), its type (1 byte) and its name with its NUL.
 */
#include "listing.h"

#include <stdlib.h>
#include <string.h>

#define HEAD (8 + 8 + 1)

void listing_init(struct listing_builder *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void listing_add(struct listing_builder *b, const char *name, uint64_t ino,
		 unsigned char type, int64_t off)
{
	size_t n = HEAD + strlen(name) + 1;
	char *p;

	if (b->failed)
		return;
	if (b->len + n > b->max) {
		b->failed = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
	p = b->buf + b->len;
	memcpy(p, &ino, 8);
	memcpy(p + 8, &off, 8);
	p[16] = (char)type;
	memcpy(p + HEAD, name, n - HEAD);
	b->len += n;
}

void listing_free(struct listing_builder *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

bool listing_next(const char *list, size_t len, size_t *pos,
		  struct listing_entry *e)
{
	const char *p = list + *pos, *nul;

	if (*pos >= len || len - *pos < HEAD + 1)
		return false;
	nul = memchr(p + HEAD, '\0', len - *pos - HEAD);
	if (!nul)
		return false;
	memcpy(&e->ino, p, 8);
	memcpy(&e->off, p + 8, 8);
	e->type = (unsigned char)p[16];
	e->name = p + HEAD;
	*pos = (size_t)(nul + 1 - list);
	return true;
}

bool listing_seek(const char *list, size_t len, int64_t off, size_t *pos)
{
	struct listing_entry e;

	*pos = 0;
	if (off == 0)
		return true;
	while (listing_next(list, len, pos, &e))
		if (e.off == off)
			return true;
	return false;
}
