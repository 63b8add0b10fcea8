/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the stress exercisers: a seeded PRNG, option parsing
 * and the mapping from a directory under the mount to its backend twin.
 */
#ifndef CACHEFS_STRESS_H
#define CACHEFS_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: small, fast, and every seed gives a full-period stream. */
struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

/* True with probability pct/100. */
static inline bool rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

void rng_fill(struct rng *r, void *buf, size_t len);

/* A seed that differs from run to run. */
uint64_t seed_from_clock(void);

/* Parse a decimal (or 0x hexadecimal) unsigned number; -1 if malformed. */
int parse_u64(const char *s, uint64_t *v);

/*
 * The backend directory that holds what dir shows, from CACHEFS_BACKEND
 * and CACHEFS_MNT (set by with-mount); dir must lie under CACHEFS_MNT, or
 * be the mount itself when CACHEFS_MNT is unset.  Returns a malloc()ed
 * path, or NULL when CACHEFS_BACKEND is unset; exits on a bad setup.
 */
char *backend_dir(const char *dir);

/* Seconds on the monotonic clock. */
double now_seconds(void);

#endif
