/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_MIRROR_PATH_H
#define CACHEFS_MIRROR_PATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Paths as the mirror engine sees them: relative to the mirror's root,
 * starting with "/" ("/" itself is the root).
 */

/*
 * Whether path is one a mirror can take: "/" and components that are
 * neither empty, ".", nor "..".
 */
bool mirror_path_ok(const char *path);

/*
 * Whether a and b are the same path, or one is below the other (the
 * root is related to every path): steps on related paths never run at
 * the same time.
 */
bool mirror_path_related(const char *a, const char *b);

/* The parent directory of path ("/" for "/a" and for "/"), into buf. */
void mirror_path_parent(const char *path, char *buf, size_t len);

/* name in directory dir ("/" + name for the root), into buf. */
void mirror_path_child(const char *dir, const char *name, char *buf,
		       size_t len);

#endif
