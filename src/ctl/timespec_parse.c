// SPDX-License-Identifier: MIT
/*
 * The TIME of "cachefsctl changes --since" (see timespec_parse.h).
 */
#include "timespec_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Far enough for any file time, near enough never to overflow below. */
#define SECONDS_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/* Exactly n digits at *p, as a number; *p moves past them. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int k = 0; k < n; k++) {
		if ((*p)[k] < '0' || (*p)[k] > '9')
			return false;
		v = v * 10 + ((*p)[k] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* One or more digits at *p, up to SECONDS_MAX. */
static bool number(const char **p, long long *out)
{
	long long v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (*s - '0');
		if (v > SECONDS_MAX)
			return false;
	}
	*p = s;
	*out = v;
	return true;
}

/* An optional ".digits" at *p, as nanoseconds (digits past 9 dropped). */
static bool fraction(const char **p, long *ns)
{
	const char *s = *p;
	long v = 0;
	int n = 0;

	*ns = 0;
	if (*s != '.')
		return true;
	for (s++; *s >= '0' && *s <= '9'; s++, n++)
		if (n < 9)
			v = v * 10 + (*s - '0');
	if (n == 0)
		return false;
	for (; n < 9; n++)
		v *= 10;
	*p = s;
	*ns = v;
	return true;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* "Z", "+HH:MM", "+HHMM", "+HH" (or "-"), or nothing: seconds east. */
static bool zone(const char *s, long *east)
{
	int h, m = 0, sign;

	*east = 0;
	if (!*s || ((*s == 'Z' || *s == 'z') && !s[1]))
		return true;
	if (*s != '+' && *s != '-')
		return false;
	sign = *s++ == '-' ? -1 : 1;
	if (!digits(&s, 2, &h) || h > 23)
		return false;
	if (*s == ':' && !s[1])
		return false;
	if (*s == ':')
		s++;
	if (*s && (!digits(&s, 2, &m) || m > 59))
		return false;
	if (*s)
		return false;
	*east = sign * (h * 3600L + m * 60L);
	return true;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][zone] */
static int parse_iso(const char *s, struct timespec *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0;
	long ns = 0, east;
	time_t t;

	if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) ||
	    *s++ != '-' || !digits(&s, 2, &d))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
			return -EINVAL;
		if (*s == ':') {
			s++;
			if (!digits(&s, 2, &sec) || !fraction(&s, &ns))
				return -EINVAL;
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
	}
	if (!zone(s, &east))
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec; /* a leap second, 60, is the next minute's 0 */
	t = timegm(&tm);
	out->tv_sec = t - east;
	out->tv_nsec = ns;
	return 0;
}

/* N followed by s, m, h, d or w: that long before now. */
static int parse_age(const char *s, const struct timespec *now,
		     struct timespec *out)
{
	static const struct {
		char unit;
		long long seconds;
	} units[] = { { 's', 1 },
		      { 'm', 60 },
		      { 'h', 3600 },
		      { 'd', 86400 },
		      { 'w', 7 * 86400 } };
	long long n;

	if (!number(&s, &n) || !s[0] || s[1])
		return -EINVAL;
	for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
		if (units[k].unit != s[0])
			continue;
		if (n > SECONDS_MAX / units[k].seconds)
			return -EINVAL;
		out->tv_sec = now->tv_sec - (time_t)(n * units[k].seconds);
		out->tv_nsec = now->tv_nsec;
		return 0;
	}
	return -EINVAL;
}

/* [@]SECONDS[.frac] */
static int parse_epoch(const char *s, struct timespec *out)
{
	long long sec;
	long ns;

	if (*s == '@')
		s++;
	if (!number(&s, &sec) || !fraction(&s, &ns) || *s)
		return -EINVAL;
	out->tv_sec = (time_t)sec;
	out->tv_nsec = ns;
	return 0;
}

int timespec_parse(const char *s, const struct timespec *now,
		   struct timespec *out)
{
	size_t n = strspn(s, "0123456789");

	if (s[0] == '@' || (n && (!s[n] || s[n] == '.')))
		return parse_epoch(s, out);
	if (n == 4 && s[4] == '-')
		return parse_iso(s, out);
	if (n)
		return parse_age(s, now, out);
	return -EINVAL;
}
