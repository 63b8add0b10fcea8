// SPDX-License-Identifier: MIT
#include "stress.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rng_fill(struct rng *r, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len >= 8) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, len);
	}
}

uint64_t seed_from_clock(void)
{
	struct timespec ts;
	struct rng r;

	clock_gettime(CLOCK_REALTIME, &ts);
	r.s = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	r.s ^= (uint64_t)getpid() << 32;
	/* Keep seeds short enough to retype. */
	return rng_next(&r) % 1000000000ULL;
}

int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -1;
	return 0;
}

char *backend_dir(const char *dir)
{
	const char *backend = getenv("CACHEFS_BACKEND");
	const char *mnt = getenv("CACHEFS_MNT");
	char rdir[PATH_MAX], rmnt[PATH_MAX], *out;
	size_t n;

	if (!backend || !*backend)
		return NULL;
	if (!mnt || !*mnt)
		return strdup(backend);
	if (!realpath(dir, rdir) || !realpath(mnt, rmnt)) {
		perror("realpath");
		exit(2);
	}
	n = strlen(rmnt);
	if (strncmp(rdir, rmnt, n) != 0 || (rdir[n] != '/' && rdir[n])) {
		fprintf(stderr, "%s is not under CACHEFS_MNT=%s\n", rdir, rmnt);
		exit(2);
	}
	if (asprintf(&out, "%s%s", backend, rdir + n) < 0) {
		perror("asprintf");
		exit(2);
	}
	return out;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
