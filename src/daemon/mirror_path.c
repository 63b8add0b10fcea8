// SPDX-License-Identifier: MIT
/* The paths of a mirror: see mirror_path.h. */
#include "mirror_path.h"

#include <stdio.h>
#include <string.h>

/* Whether a and b are the same path, or one is below the other. */
bool mirror_path_related(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	if (la == 1 || lb == 1) /* the root: related to everything */
		return true;
	if (strncmp(a, b, n) != 0)
		return false;
	return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

/* The parent directory of path ("/" for "/a"), into buf. */
void mirror_path_parent(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash != path ? (size_t)(slash - path) : 1;

	snprintf(buf, len, "%.*s", (int)n, path);
}

/*
 * Whether path is one the mirror can take: "/" and components that are
 * neither empty, ".", nor "..".  The journal's paths are, unless the
 * file had no name left ("") or the record was damaged.
 */
bool mirror_path_ok(const char *path)
{
	const char *p = path;

	if (p[0] != '/')
		return false;
	if (!p[1])
		return true;
	while (*p == '/') {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		p = e;
	}
	return *p == '\0';
}

void mirror_path_child(const char *dir, const char *name, char *buf,
		       size_t len)
{
	snprintf(buf, len, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
}
