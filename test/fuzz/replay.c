// SPDX-License-Identifier: MIT
/*
 * Run a fuzz target over stored inputs without libFuzzer, so that the
 * corpus is a regression test in every build (sanitized ones included):
 *
 *	replay DIR|FILE...
 *
 * Every regular file of each DIR (in name order) and every FILE is passed
 * to LLVMFuzzerTestOneInput() in a buffer of exactly its size, its name
 * printed on stderr first.  Exits 1 when an argument cannot be read or a
 * DIR holds no input.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Run one input; returns 0, or -1 (with a message) if unreadable. */
static int run_file(int dirfd, const char *name, const char *shown)
{
	struct stat st;
	uint8_t *data;
	ssize_t r = 0;
	size_t off = 0;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	/* Exactly size bytes (at least 1 for malloc), for overflow checks. */
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data)
		goto fail;
	while (off < (size_t)st.st_size) {
		r = read(fd, data + off, (size_t)st.st_size - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	if (r < 0) {
		free(data);
		goto fail;
	}
	close(fd);
	/* Named first, so that a crash report follows its input's name. */
	fprintf(stderr, "%s\n", shown);
	LLVMFuzzerTestOneInput(data, off);
	free(data);
	return 0;

fail:
	fprintf(stderr, "replay: %s: %s\n", shown, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int is_regular(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, 0) == 0 && S_ISREG(st.st_mode);
}

/* Run every regular file of dir; returns how many, or -1. */
static int run_dir(const char *dir)
{
	struct dirent **names;
	char shown[4096];
	int dirfd, n, i, count = 0, failed = 0;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = dirfd < 0 ? -1 : scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		if (dirfd >= 0)
			close(dirfd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!failed && is_regular(dirfd, names[i]->d_name)) {
			snprintf(shown, sizeof(shown), "%s/%s", dir,
				 names[i]->d_name);
			failed = run_file(dirfd, names[i]->d_name, shown) < 0;
			count++;
		}
		free(names[i]);
	}
	free(names);
	close(dirfd);
	if (!failed && count == 0)
		fprintf(stderr, "replay: %s: no inputs\n", dir);
	return failed || count == 0 ? -1 : count;
}

int main(int argc, char **argv)
{
	struct stat st;
	int i, n, total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode))
			n = run_file(AT_FDCWD, argv[i], argv[i]) < 0 ? -1 : 1;
		else
			n = run_dir(argv[i]);
		if (n < 0)
			return 1;
		printf("%s: %d inputs\n", argv[i], n);
		total += n;
	}
	printf("replayed %d inputs\n", total);
	return 0;
}
