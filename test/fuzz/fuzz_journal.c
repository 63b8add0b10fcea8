// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the journal's record decoder (src/daemon/journal.c).
 *
 * The input is read as a segment would be at recovery: records back to
 * back, resynchronising a byte at a time after damage, stopping where a
 * record is cut short.  The sanitizers catch any read past the input;
 * three properties are checked, abort()ing if broken:
 *
 *  - a decoded record takes at least its header and at most the bytes
 *    there are, and its paths are C strings within them;
 *  - it encodes again to exactly the bytes it was decoded from (the
 *    encoding is canonical, so nothing the decoder accepts is ambiguous);
 *  - every proper prefix of it is -EAGAIN, never a record or -EBADMSG.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

static unsigned char again[JOURNAL_RECORD_MAX];

static void check_record(const uint8_t *p, size_t avail, int n,
			 const struct journal_record *r)
{
	struct journal_record d;

	if (n < JOURNAL_RECORD_HEAD + 1 || (size_t)n > avail)
		abort();
	if (r->path < (const char *)p ||
	    r->path + strlen(r->path) >= (const char *)p + n)
		abort();
	if (r->path2 && (r->path2 < (const char *)p ||
			 r->path2 + strlen(r->path2) >= (const char *)p + n))
		abort();
	if (journal_op_class(r->op) == JOURNAL_CLASS_NONE)
		abort();
	if (journal_record_encode(r, again, sizeof(again)) != n ||
	    memcmp(again, p, (size_t)n) != 0)
		abort();
	/* the shortest and longest proper prefixes */
	if (journal_record_decode(p, 0, &d) != -EAGAIN ||
	    journal_record_decode(p, 6, &d) != -EAGAIN ||
	    journal_record_decode(p, (size_t)n - 1, &d) != -EAGAIN)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_record r;
	size_t off = 0;

	while (off < size) {
		int n = journal_record_decode(data + off, size - off, &r);

		if (n == -EAGAIN)
			break;
		if (n == -EBADMSG) {
			off++;
			continue;
		}
		if (n <= 0)
			abort();
		check_record(data + off, size - off, n, &r);
		off += (size_t)n;
	}
	return 0;
}
