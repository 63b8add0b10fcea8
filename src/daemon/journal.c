// SPDX-License-Identifier: MIT
/*
 * The change journal's storage (see journal.h for the record layout).
 *
 * Appends are written under j->lock, so records land in a segment in
 * sequence order, each with one write(2).  Durability is a watermark:
 * synced_seq, the highest record a completed fdatasync covers.  An
 * appender that needs its record durable waits until synced_seq reaches
 * it; the first waiter while no fdatasync runs becomes the syncer and
 * covers everything written so far, so concurrent appenders share one
 * fdatasync.  A segment is only switched while no fdatasync runs, after
 * one of its own, so the syncer's descriptor stays the active segment's.
 */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0xC7
#define FORMAT 1
#define FLAG_PATH2 0x01

#define DEFAULT_SEGMENT_BYTES (64ULL << 20)

#define SEG_NAME_LEN 24 /* 20 digits and ".seg" */
#define CURSOR_SUFFIX ".cursor"
#define TMP_SUFFIX ".tmp"

/* ---- CRC32C ---------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- records --------------------------------------------------------- */

static const struct {
	const char *name;
	enum journal_class class;
} ops[JOURNAL_OP__END] = {
	[JOURNAL_OP_CREATE] = { "create", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_MKDIR] = { "mkdir", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_MKNOD] = { "mknod", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_SYMLINK] = { "symlink", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_LINK] = { "link", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_UNLINK] = { "unlink", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_RMDIR] = { "rmdir", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_RENAME] = { "rename", JOURNAL_CLASS_ENTRY },
	[JOURNAL_OP_WRITE] = { "write", JOURNAL_CLASS_DATA },
	[JOURNAL_OP_TRUNCATE] = { "truncate", JOURNAL_CLASS_DATA },
	[JOURNAL_OP_FALLOCATE] = { "fallocate", JOURNAL_CLASS_DATA },
	[JOURNAL_OP_COPY_FILE_RANGE] = { "copy_file_range",
					 JOURNAL_CLASS_DATA },
	[JOURNAL_OP_CHMOD] = { "chmod", JOURNAL_CLASS_METADATA },
	[JOURNAL_OP_CHOWN] = { "chown", JOURNAL_CLASS_METADATA },
	[JOURNAL_OP_UTIMENS] = { "utimens", JOURNAL_CLASS_METADATA },
	[JOURNAL_OP_SETXATTR] = { "setxattr", JOURNAL_CLASS_METADATA },
	[JOURNAL_OP_REMOVEXATTR] = { "removexattr", JOURNAL_CLASS_METADATA },
	[JOURNAL_OP_EXCHANGE] = { "exchange", JOURNAL_CLASS_ENTRY },
};

static bool op_valid(unsigned op)
{
	return op > 0 && op < JOURNAL_OP__END;
}

const char *journal_op_name(enum journal_op op)
{
	return op_valid(op) ? ops[op].name : "unknown";
}

enum journal_class journal_op_class(enum journal_op op)
{
	return op_valid(op) ? ops[op].class : JOURNAL_CLASS_NONE;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const unsigned char *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The encoded size of r, or negative errno if it cannot be encoded. */
static int record_size(const struct journal_record *r, size_t *plen,
		       size_t *p2len)
{
	size_t n;

	if (!op_valid(r->op) || !r->path ||
	    r->handle_len > JOURNAL_HANDLE_MAX || (r->handle_len && !r->handle))
		return -EINVAL;
	*plen = strnlen(r->path, PATH_MAX);
	*p2len = r->path2 ? strnlen(r->path2, PATH_MAX) : 0;
	if (*plen == PATH_MAX || *p2len == PATH_MAX)
		return -ENAMETOOLONG;
	n = JOURNAL_RECORD_HEAD + r->handle_len + *plen + 1;
	if (r->path2)
		n += *p2len + 1;
	return (int)n;
}

int journal_record_encode(const struct journal_record *r, void *buf, size_t cap)
{
	unsigned char *p = buf;
	size_t plen, p2len, off;
	int n = record_size(r, &plen, &p2len);

	if (n < 0)
		return n;
	if ((size_t)n > cap)
		return -ENOBUFS;
	p[0] = MAGIC;
	p[1] = FORMAT;
	put16(p + 2, (uint16_t)n);
	put16(p + 4, (uint16_t)~n);
	p[10] = (unsigned char)r->op;
	p[11] = r->path2 ? FLAG_PATH2 : 0;
	put64(p + 12, r->seq);
	put64(p + 20, r->time_ns);
	put64(p + 28, r->dev);
	put64(p + 36, r->ino);
	put64(p + 44, r->gen);
	put16(p + 52, (uint16_t)plen);
	put16(p + 54, (uint16_t)p2len);
	p[56] = (unsigned char)r->handle_len;
	off = JOURNAL_RECORD_HEAD;
	if (r->handle_len)
		memcpy(p + off, r->handle, r->handle_len);
	off += r->handle_len;
	memcpy(p + off, r->path, plen + 1);
	off += plen + 1;
	if (r->path2)
		memcpy(p + off, r->path2, p2len + 1);
	put32(p + 6, journal_crc32c(0, p + 10, (size_t)n - 10));
	return n;
}

/* A path of len bytes and a NUL at p, with no NUL inside. */
static bool path_ok(const unsigned char *p, size_t len)
{
	return p[len] == '\0' && !memchr(p, '\0', len);
}

int journal_record_decode(const void *buf, size_t len,
			  struct journal_record *out)
{
	const unsigned char *p = buf;
	size_t n, plen, p2len, hlen, off;

	/* Each byte the CRC does not cover is refused as soon as it is in. */
	if ((len > 0 && p[0] != MAGIC) || (len > 1 && p[1] != FORMAT))
		return -EBADMSG;
	if (len < 6)
		return -EAGAIN;
	n = get16(p + 2);
	if ((uint16_t)~n != get16(p + 4) || n < JOURNAL_RECORD_HEAD + 1 ||
	    n > JOURNAL_RECORD_MAX)
		return -EBADMSG;
	if (len < n)
		return -EAGAIN;
	if (get32(p + 6) != journal_crc32c(0, p + 10, n - 10))
		return -EBADMSG;

	/* Whole and as written: a lie here is a bug in the writer. */
	if (!op_valid(p[10]) || (p[11] & ~FLAG_PATH2))
		return -EBADMSG;
	plen = get16(p + 52);
	p2len = get16(p + 54);
	hlen = p[56];
	if (plen >= PATH_MAX || p2len >= PATH_MAX ||
	    hlen > JOURNAL_HANDLE_MAX || (!(p[11] & FLAG_PATH2) && p2len))
		return -EBADMSG;
	if (JOURNAL_RECORD_HEAD + hlen + plen + 1 +
		    (p[11] & FLAG_PATH2 ? p2len + 1 : 0) !=
	    n)
		return -EBADMSG;
	off = JOURNAL_RECORD_HEAD + hlen;
	if (!path_ok(p + off, plen) ||
	    ((p[11] & FLAG_PATH2) && !path_ok(p + off + plen + 1, p2len)))
		return -EBADMSG;

	memset(out, 0, sizeof(*out));
	out->op = (enum journal_op)p[10];
	out->seq = get64(p + 12);
	out->time_ns = get64(p + 20);
	out->dev = get64(p + 28);
	out->ino = get64(p + 36);
	out->gen = get64(p + 44);
	out->handle_len = hlen;
	out->handle = hlen ? p + JOURNAL_RECORD_HEAD : NULL;
	out->path = (const char *)p + off;
	if (p[11] & FLAG_PATH2)
		out->path2 = (const char *)p + off + plen + 1;
	return (int)n;
}

/* ---- the journal ----------------------------------------------------- */

struct segment {
	uint64_t first_seq; /* its name; its records are all at or above */
	uint64_t bytes;	    /* whole records written (recovered) */
};

struct cursor {
	char name[JOURNAL_CURSOR_NAME_MAX + 1];
	uint64_t acked;
};

struct journal {
	int dirfd; /* holds the flock that keeps a second opener out */
	struct journal_cfg cfg;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* synced_seq, syncing or failed changed */
	/* protected by lock */
	struct segment *segs; /* by first_seq; the last is active */
	size_t nseg, segcap;
	int fd;		   /* the active segment, for appending */
	uint64_t bytes;	   /* sum of segs[].bytes */
	uint64_t next_seq; /* the next record's */
	uint64_t synced_seq;
	bool syncing;	       /* a thread is in fdatasync(fd) */
	int failed;	       /* negative errno: every append fails */
	struct journal_stats st;
	/* the newest record, for journal_append_coalesce() */
	enum journal_op last_op;
	uint64_t last_dev, last_ino, last_gen, last_time_ns;
	/* atomic: the highest seq any iterator has returned */
	uint64_t read_seq;

	pthread_mutex_t cursor_lock; /* taken before lock, never after */
	/* protected by cursor_lock */
	struct cursor cursors[JOURNAL_CURSORS_MAX];
	size_t ncursors;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void seg_name(char *buf, uint64_t first_seq)
{
	snprintf(buf, SEG_NAME_LEN + 1, "%020" PRIu64 ".seg", first_seq);
}

static bool parse_seg_name(const char *name, uint64_t *first_seq)
{
	uint64_t v = 0;

	if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0)
		return false;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*first_seq = v;
	return v > 0;
}

static void jlog(struct journal *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void jlog(struct journal *j, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!j->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j->cfg.log(j->cfg.log_arg, msg);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int sync_dir(struct journal *j)
{
	if (j->cfg.sync == JOURNAL_SYNC_NEVER)
		return 0;
	return fsync(j->dirfd) < 0 ? -errno : 0;
}

static int seg_push(struct journal *j, uint64_t first_seq, uint64_t bytes)
{
	if (j->nseg == j->segcap) {
		size_t cap = j->segcap ? j->segcap * 2 : 16;
		struct segment *s = realloc(j->segs, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		j->segs = s;
		j->segcap = cap;
	}
	j->segs[j->nseg].first_seq = first_seq;
	j->segs[j->nseg].bytes = bytes;
	j->nseg++;
	j->bytes += bytes;
	return 0;
}

/* Create the segment for records from first_seq on and make it active. */
static int do_new_segment(struct journal *j, uint64_t first_seq)
{
	char name[SEG_NAME_LEN + 1];
	int fd, r;

	seg_name(name, first_seq);
	fd = openat(j->dirfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = seg_push(j, first_seq, 0);
	if (r == 0)
		r = sync_dir(j);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool cursor_name_ok(const char *name)
{
	size_t n = strnlen(name, JOURNAL_CURSOR_NAME_MAX + 1);

	if (n == 0 || n > JOURNAL_CURSOR_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* Load the cursor file "name.cursor": 0, or negative errno. */
static int load_cursor(struct journal *j, const char *file, char *err,
		       size_t errlen)
{
	size_t n = strlen(file) - strlen(CURSOR_SUFFIX);
	char buf[32], *end;
	struct cursor *c;
	ssize_t len;
	int fd;

	if (n > JOURNAL_CURSOR_NAME_MAX)
		return 0; /* not one of ours */
	if (j->ncursors == JOURNAL_CURSORS_MAX) {
		snprintf(err, errlen, "more than %d cursors",
			 JOURNAL_CURSORS_MAX);
		return -ENOSPC;
	}
	c = &j->cursors[j->ncursors];
	memcpy(c->name, file, n);
	c->name[n] = '\0';
	if (!cursor_name_ok(c->name))
		return 0;
	fd = openat(j->dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -errno;
	}
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len > 0)
		buf[len] = '\0';
	errno = 0;
	/* Never guess: a cursor read wrong could let trim drop records. */
	if (len < 2 || buf[0] < '0' || buf[0] > '9' ||
	    (c->acked = strtoull(buf, &end, 10), errno) || strcmp(end, "\n")) {
		snprintf(err, errlen, "%s: not a cursor", file);
		return -EBADMSG;
	}
	j->ncursors++;
	return 0;
}

/*
 * Scan segment s (with nothing valid past a torn tail when last): count
 * its damage, cut a torn tail off the last, and raise *next_seq past
 * every record found.  A record counts when it decodes and its sequence
 * number is at least the one expected, so a stale copy is damage too.
 */
static int recover_segment(struct journal *j, struct segment *s, bool last,
			   uint64_t *next_seq, char *err, size_t errlen)
{
	char name[SEG_NAME_LEN + 1];
	uint64_t expect = s->first_seq > *next_seq ? s->first_seq : *next_seq;
	struct journal_record rec;
	size_t off = 0, size;
	unsigned char *map = NULL;
	struct stat st;
	int fd, r = 0;

	seg_name(name, s->first_seq);
	fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		goto out;
	}
	size = (size_t)st.st_size;
	if (size) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			r = -errno;
			snprintf(err, errlen, "%s: mmap: %s", name,
				 strerror(errno));
			goto out;
		}
	}
	while (off < size) {
		int n = journal_record_decode(map + off, size - off, &rec);
		size_t p;

		if (n > 0 && rec.seq >= expect) {
			expect = rec.seq + 1;
			off += (size_t)n;
			continue;
		}
		/* Resynchronise on the next whole record, if any. */
		for (p = off + 1; p < size; p++) {
			if (map[p] == MAGIC &&
			    journal_record_decode(map + p, size - p, &rec) >
				    0 &&
			    rec.seq >= expect)
				break;
		}
		if (p < size) {
			j->st.corrupt_skipped++;
			jlog(j,
			     "journal: %s: %zu damaged bytes at offset %zu"
			     " skipped (records after seq %" PRIu64 ")",
			     name, p - off, off, expect - 1);
			off = p;
			continue;
		}
		if (last) {
			if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0) {
				r = -errno;
				snprintf(err, errlen, "%s: truncate: %s", name,
					 strerror(errno));
				goto out;
			}
			j->st.torn_truncated++;
			jlog(j,
			     "journal: %s: torn tail of %zu bytes at offset"
			     " %zu cut off",
			     name, size - off, off);
		} else {
			j->st.corrupt_skipped++;
			jlog(j,
			     "journal: %s: %zu damaged bytes at the end"
			     " (offset %zu) skipped",
			     name, size - off, off);
			off = size;
		}
		break;
	}
	s->bytes = off;
	*next_seq = expect;
out:
	if (map)
		munmap(map, size);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Read the directory: segments into j, cursors, stale temporaries gone. */
static int scan_dir(struct journal *j, uint64_t **firsts, size_t *n, char *err,
		    size_t errlen)
{
	size_t cap = 0;
	struct dirent *de;
	uint64_t seq;
	DIR *d;
	int fd, r = 0;

	*firsts = NULL;
	*n = 0;
	fd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		r = -errno;
		snprintf(err, errlen, "reading the directory: %s",
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (r == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (parse_seg_name(de->d_name, &seq)) {
			if (*n == cap) {
				uint64_t *f;

				cap = cap ? cap * 2 : 64;
				f = realloc(*firsts, cap * sizeof(*f));
				if (!f) {
					r = -ENOMEM;
					break;
				}
				*firsts = f;
			}
			(*firsts)[(*n)++] = seq;
		} else if (len > strlen(TMP_SUFFIX) &&
			   !strcmp(de->d_name + len - strlen(TMP_SUFFIX),
				   TMP_SUFFIX)) {
			/* a cursor_set() that never got to its rename */
			unlinkat(j->dirfd, de->d_name, 0);
		} else if (len > strlen(CURSOR_SUFFIX) &&
			   !strcmp(de->d_name + len - strlen(CURSOR_SUFFIX),
				   CURSOR_SUFFIX)) {
			r = load_cursor(j, de->d_name, err, errlen);
		}
	}
	closedir(d);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (r == 0 && *n)
		qsort(*firsts, *n, sizeof(**firsts), cmp_u64);
	return r;
}

static int recover(struct journal *j, char *err, size_t errlen)
{
	uint64_t *firsts, next = 1;
	size_t n;
	int r = scan_dir(j, &firsts, &n, err, errlen);

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct segment s = { .first_seq = firsts[i] };

		r = recover_segment(j, &s, i == n - 1, &next, err, errlen);
		if (r == 0)
			r = seg_push(j, s.first_seq, s.bytes);
	}
	free(firsts);
	if (r < 0)
		return r;
	j->next_seq = next;

	/*
	 * Append to the last segment, unless it is empty under another
	 * name than the next record's (its records were all torn).
	 */
	if (j->nseg) {
		struct segment *s = &j->segs[j->nseg - 1];
		char name[SEG_NAME_LEN + 1];

		seg_name(name, s->first_seq);
		if (s->bytes == 0 && s->first_seq != next) {
			if (unlinkat(j->dirfd, name, 0) < 0)
				goto fail;
			j->nseg--;
		} else {
			j->fd = openat(j->dirfd, name,
				       O_WRONLY | O_APPEND | O_CLOEXEC);
			if (j->fd < 0)
				goto fail;
			return 0;
		}
	}
	r = do_new_segment(j, next);
	if (r < 0)
		snprintf(err, errlen, "creating a segment: %s", strerror(-r));
	return r;

fail:
	r = -errno;
	snprintf(err, errlen, "last segment: %s", strerror(errno));
	return r;
}

int journal_open(const char *dir, const struct journal_cfg *cfg,
		 struct journal **out, char *err, size_t errlen)
{
	struct journal *j;
	int r;

	*out = NULL;
	if (!errlen)
		err = NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (cfg)
		j->cfg = *cfg;
	if (!j->cfg.segment_bytes)
		j->cfg.segment_bytes = DEFAULT_SEGMENT_BYTES;
	if (j->cfg.sync > JOURNAL_SYNC_NEVER) {
		snprintf(err, errlen, "unknown sync mode %d", j->cfg.sync);
		free(j);
		return -EINVAL;
	}
	j->fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	pthread_mutex_init(&j->cursor_lock, NULL);

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
		goto fail;
	}
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(j->dirfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "%s: %s", dir,
			 r == -EBUSY ? "open in another journal"
				     : strerror(errno));
		goto fail_close;
	}
	r = recover(j, err, errlen);
	if (r < 0)
		goto fail_close;
	j->synced_seq = j->next_seq - 1;
	*out = j;
	return 0;

fail_close:
	if (j->fd >= 0)
		close(j->fd);
	close(j->dirfd);
fail:
	free(j->segs);
	pthread_mutex_destroy(&j->cursor_lock);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
	return r;
}

/*
 * Wait until a fdatasync covers seq, or become the one that issues it:
 * group commit with no delay.  While one thread is in fdatasync, others
 * append and wait; the next fdatasync, issued as soon as that one ends,
 * covers all of them.  Caller holds j->lock.
 */
static int do_wait_synced(struct journal *j, uint64_t seq)
{
	while (j->synced_seq < seq) {
		uint64_t target;
		int fd, r;

		if (j->failed)
			return j->failed;
		if (j->syncing) {
			pthread_cond_wait(&j->cond, &j->lock);
			continue;
		}
		j->syncing = true;
		target = j->next_seq - 1;
		fd = j->fd;
		pthread_mutex_unlock(&j->lock);
		r = fdatasync(fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&j->lock);
		j->syncing = false;
		j->st.syncs++;
		/* Never retried: the kernel may have dropped the pages. */
		if (r < 0 && !j->failed)
			j->failed = r;
		else if (r == 0 && target > j->synced_seq)
			j->synced_seq = target;
		pthread_cond_broadcast(&j->cond);
	}
	return 0;
}

/*
 * Switch to a new segment for records from j->next_seq on, once the old
 * one is durable (its appenders wait on synced_seq, which only the
 * active segment's fdatasync advances).  Caller holds j->lock, and no
 * fdatasync runs.
 */
static int do_rotate(struct journal *j)
{
	if (j->cfg.sync != JOURNAL_SYNC_NEVER) {
		if (fdatasync(j->fd) < 0)
			return -errno;
		j->st.syncs++;
		j->synced_seq = j->next_seq - 1;
		pthread_cond_broadcast(&j->cond);
	}
	return do_new_segment(j, j->next_seq);
}

/* Caller holds j->lock: whether r may take the newest record's place. */
static bool do_coalesces(struct journal *j, const struct journal_record *r)
{
	uint64_t newest = j->next_seq - 1;

	return journal_op_class(r->op) == JOURNAL_CLASS_DATA &&
	       j->last_op == r->op && j->last_dev == r->dev &&
	       j->last_ino == r->ino && j->last_gen == r->gen &&
	       newest > __atomic_load_n(&j->read_seq, __ATOMIC_ACQUIRE);
}

/* Caller holds j->lock: r takes the newest record's place. */
static int do_take_newest(struct journal *j, struct journal_record *r)
{
	r->seq = j->next_seq - 1;
	r->time_ns = j->last_time_ns;
	j->st.coalesced++;
	return j->cfg.sync == JOURNAL_SYNC_ALWAYS ? do_wait_synced(j, r->seq)
						  : 0;
}

static int append(struct journal *j, struct journal_record *r, bool coalesce)
{
	unsigned char buf[JOURNAL_RECORD_MAX];
	size_t plen, p2len;
	struct segment *s;
	int n, e;

	n = record_size(r, &plen, &p2len);
	if (n < 0)
		return n;
	pthread_mutex_lock(&j->lock);
	if (coalesce && !j->failed && do_coalesces(j, r)) {
		e = do_take_newest(j, r);
		goto out;
	}
	for (;;) {
		if (j->failed) {
			e = j->failed;
			goto out;
		}
		if (j->cfg.max_bytes &&
		    j->bytes + (uint64_t)n > j->cfg.max_bytes) {
			e = -ENOSPC;
			goto out;
		}
		s = &j->segs[j->nseg - 1];
		if (s->bytes == 0 ||
		    s->bytes + (uint64_t)n <= j->cfg.segment_bytes)
			break;
		if (j->syncing) {
			pthread_cond_wait(&j->cond, &j->lock);
			continue;
		}
		e = do_rotate(j);
		if (e < 0)
			goto fail;
	}
	r->seq = j->next_seq;
	r->time_ns = now_ns(CLOCK_REALTIME);
	n = journal_record_encode(r, buf, sizeof(buf));
	e = write_all(j->fd, buf, (size_t)n);
	if (e < 0) {
		/* Best effort; recovery cuts a torn tail off anyway. */
		if (ftruncate(j->fd, (off_t)s->bytes) < 0)
			jlog(j, "journal: cutting a failed write off: %s",
			     strerror(errno));
		goto fail;
	}
	j->next_seq++;
	s->bytes += (uint64_t)n;
	j->bytes += (uint64_t)n;
	j->st.appended++;
	j->last_op = r->op;
	j->last_dev = r->dev;
	j->last_ino = r->ino;
	j->last_gen = r->gen;
	j->last_time_ns = r->time_ns;
	e = j->cfg.sync == JOURNAL_SYNC_ALWAYS ? do_wait_synced(j, r->seq) : 0;
	goto out;

fail:
	j->failed = e;
	pthread_cond_broadcast(&j->cond);
out:
	pthread_mutex_unlock(&j->lock);
	return e;
}

int journal_append(struct journal *j, struct journal_record *r)
{
	return append(j, r, false);
}

int journal_append_coalesce(struct journal *j, struct journal_record *r)
{
	return append(j, r, true);
}

int journal_coalesce(struct journal *j, struct journal_record *r)
{
	int e = 0;

	pthread_mutex_lock(&j->lock);
	if (j->failed) {
		e = j->failed;
	} else if (do_coalesces(j, r)) {
		e = do_take_newest(j, r);
		if (e == 0)
			e = 1;
	}
	pthread_mutex_unlock(&j->lock);
	return e;
}

int journal_sync(struct journal *j)
{
	int r;

	pthread_mutex_lock(&j->lock);
	r = j->failed ? j->failed : do_wait_synced(j, j->next_seq - 1);
	pthread_mutex_unlock(&j->lock);
	return r;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->cfg.sync != JOURNAL_SYNC_NEVER)
		journal_sync(j);
	close(j->fd);
	close(j->dirfd); /* and the flock with it */
	free(j->segs);
	pthread_mutex_destroy(&j->cursor_lock);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

void journal_get_stats(struct journal *j, struct journal_stats *st)
{
	pthread_mutex_lock(&j->lock);
	*st = j->st;
	st->bytes = j->bytes;
	st->max_bytes = j->cfg.max_bytes;
	st->oldest_seq = j->segs[0].first_seq;
	st->newest_seq = j->next_seq - 1;
	st->segments = j->nseg;
	st->near_full = j->cfg.max_bytes &&
			j->bytes >= j->cfg.max_bytes - j->cfg.max_bytes / 10;
	pthread_mutex_unlock(&j->lock);
}


/* ---- cursors and trimming -------------------------------------------- */

/* Caller holds j->cursor_lock. */
static struct cursor *do_find_cursor(struct journal *j, const char *name)
{
	for (size_t i = 0; i < j->ncursors; i++)
		if (!strcmp(j->cursors[i].name, name))
			return &j->cursors[i];
	return NULL;
}

int journal_cursor_set(struct journal *j, const char *name, uint64_t acked_seq)
{
	char file[JOURNAL_CURSOR_NAME_MAX + sizeof(CURSOR_SUFFIX)];
	char tmp[sizeof(file) + sizeof(TMP_SUFFIX)];
	char buf[32];
	struct cursor *c;
	int fd, len, r;

	if (!cursor_name_ok(name))
		return -EINVAL;
	snprintf(file, sizeof(file), "%s" CURSOR_SUFFIX, name);
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, file);
	len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", acked_seq);

	pthread_mutex_lock(&j->cursor_lock);
	c = do_find_cursor(j, name);
	if (!c && j->ncursors == JOURNAL_CURSORS_MAX) {
		r = -ENOSPC;
		goto out;
	}
	/* Old or new, never half: a temporary, made durable, renamed. */
	fd = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, buf, (size_t)len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && renameat(j->dirfd, tmp, j->dirfd, file) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(j->dirfd, tmp, 0);
		goto out;
	}
	r = fsync(j->dirfd) < 0 ? -errno : 0;
	if (r == 0) {
		if (!c) {
			c = &j->cursors[j->ncursors++];
			strcpy(c->name, name);
		}
		c->acked = acked_seq;
	}
out:
	pthread_mutex_unlock(&j->cursor_lock);
	return r;
}

int journal_cursor_get(struct journal *j, const char *name, uint64_t *seq)
{
	struct cursor *c;
	int r = -ENOENT;

	if (!cursor_name_ok(name))
		return -EINVAL;
	pthread_mutex_lock(&j->cursor_lock);
	c = do_find_cursor(j, name);
	if (c) {
		*seq = c->acked;
		r = 0;
	}
	pthread_mutex_unlock(&j->cursor_lock);
	return r;
}

int journal_cursor_remove(struct journal *j, const char *name)
{
	char file[JOURNAL_CURSOR_NAME_MAX + sizeof(CURSOR_SUFFIX)];
	struct cursor *c;
	int r = -ENOENT;

	if (!cursor_name_ok(name))
		return -EINVAL;
	snprintf(file, sizeof(file), "%s" CURSOR_SUFFIX, name);
	pthread_mutex_lock(&j->cursor_lock);
	c = do_find_cursor(j, name);
	if (c) {
		r = 0;
		if (unlinkat(j->dirfd, file, 0) < 0 || fsync(j->dirfd) < 0)
			r = -errno;
		if (r == 0)
			*c = j->cursors[--j->ncursors];
	}
	pthread_mutex_unlock(&j->cursor_lock);
	return r;
}

int journal_trim(struct journal *j)
{
	char name[SEG_NAME_LEN + 1];
	uint64_t min = UINT64_MAX;
	int r = 0, removed = 0;

	pthread_mutex_lock(&j->cursor_lock);
	for (size_t i = 0; i < j->ncursors; i++)
		if (j->cursors[i].acked < min)
			min = j->cursors[i].acked;
	if (!j->ncursors)
		goto out;
	pthread_mutex_lock(&j->lock);
	/* Everything in segs[0] is below the next segment's first_seq. */
	while (j->nseg > 1 && j->segs[1].first_seq - 1 <= min) {
		seg_name(name, j->segs[0].first_seq);
		if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
		j->bytes -= j->segs[0].bytes;
		memmove(&j->segs[0], &j->segs[1],
			(j->nseg - 1) * sizeof(j->segs[0]));
		j->nseg--;
		removed++;
	}
	pthread_mutex_unlock(&j->lock);
	if (removed && fsync(j->dirfd) < 0 && r == 0)
		r = -errno;
out:
	pthread_mutex_unlock(&j->cursor_lock);
	return r < 0 ? r : removed;
}

static int cmp_cursor(const void *a, const void *b)
{
	return strcmp(((const struct journal_cursor_info *)a)->name,
		      ((const struct journal_cursor_info *)b)->name);
}

size_t journal_cursor_list(struct journal *j, struct journal_cursor_info *out,
			   size_t max)
{
	size_t n, k;

	pthread_mutex_lock(&j->cursor_lock);
	n = j->ncursors;
	for (k = 0; k < n && k < max; k++) {
		snprintf(out[k].name, sizeof(out[k].name), "%s",
			 j->cursors[k].name);
		out[k].acked = j->cursors[k].acked;
	}
	pthread_mutex_unlock(&j->cursor_lock);
	qsort(out, k, sizeof(*out), cmp_cursor);
	return n;
}

int journal_drop_oldest(struct journal *j)
{
	char name[SEG_NAME_LEN + 1];
	int r = 0;

	pthread_mutex_lock(&j->lock);
	if (j->nseg > 1) {
		seg_name(name, j->segs[0].first_seq);
		if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
			r = -errno;
		} else {
			j->bytes -= j->segs[0].bytes;
			memmove(&j->segs[0], &j->segs[1],
				(j->nseg - 1) * sizeof(j->segs[0]));
			j->nseg--;
			j->st.dropped++;
			r = 1;
		}
	}
	pthread_mutex_unlock(&j->lock);
	if (r == 1 && fsync(j->dirfd) < 0)
		r = -errno;
	return r;
}

bool journal_has_cursors(struct journal *j)
{
	bool any;

	pthread_mutex_lock(&j->cursor_lock);
	any = j->ncursors > 0;
	pthread_mutex_unlock(&j->cursor_lock);
	return any;
}

/* ---- reading ----------------------------------------------------------- */

#define ITER_BUF (64 * 1024 + JOURNAL_RECORD_MAX)

struct journal_iter {
	struct journal *j;
	uint64_t next_seq;  /* records below are skipped */
	uint64_t seg_first; /* the segment fd reads; 0 before the first */
	int fd;
	uint64_t buf_off; /* the segment offset of buf[0] */
	size_t pos, len;  /* decoded up to pos of the len bytes in buf */
	bool damaged;	  /* pos is in a damaged stretch */
	uint64_t corrupt; /* damaged stretches skipped */
	uint64_t rec_off; /* the segment offset of the record returned */
	unsigned char buf[ITER_BUF];
};

int journal_iter_open(struct journal *j, uint64_t from_seq,
		      struct journal_iter **out)
{
	struct journal_iter *it;
	bool gap;

	*out = NULL;
	pthread_mutex_lock(&j->lock);
	gap = from_seq < j->segs[0].first_seq;
	pthread_mutex_unlock(&j->lock);
	if (gap)
		return -ERANGE;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->j = j;
	it->next_seq = from_seq;
	it->fd = -1;
	*out = it;
	return 0;
}

void journal_iter_close(struct journal_iter *it)
{
	if (!it)
		return;
	if (it->fd >= 0)
		close(it->fd);
	free(it);
}

uint64_t journal_iter_corrupt(const struct journal_iter *it)
{
	return it->corrupt;
}

/*
 * Open the segment after the current one (the first: the one holding
 * next_seq).  1, 0 when there is none yet, -ERANGE when it was trimmed.
 */
static int iter_next_segment(struct journal_iter *it)
{
	struct journal *j = it->j;
	char name[SEG_NAME_LEN + 1];
	uint64_t first = 0;
	size_t i;

	pthread_mutex_lock(&j->lock);
	if (it->seg_first == 0) {
		if (it->next_seq < j->segs[0].first_seq) {
			pthread_mutex_unlock(&j->lock);
			return -ERANGE;
		}
		for (i = 0; i < j->nseg; i++)
			if (j->segs[i].first_seq <= it->next_seq)
				first = j->segs[i].first_seq;
	} else {
		for (i = 0; i < j->nseg; i++)
			if (j->segs[i].first_seq > it->seg_first) {
				first = j->segs[i].first_seq;
				break;
			}
	}
	pthread_mutex_unlock(&j->lock);
	if (!first)
		return 0;
	seg_name(name, first);
	it->fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (it->fd < 0)
		return errno == ENOENT ? -ERANGE : -errno;
	it->seg_first = first;
	it->buf_off = 0;
	it->pos = it->len = 0;
	it->damaged = false;
	return 1;
}

/*
 * Read more of the current segment, up to what the journal has written
 * whole (never a record being written).  The bytes read (0 at the
 * segment's current end), or negative errno; *last when it is the
 * segment being appended to.
 */
static ssize_t iter_fill(struct journal_iter *it, bool *last)
{
	struct journal *j = it->j;
	uint64_t limit = UINT64_MAX, at;
	size_t want;
	ssize_t r;

	*last = false;
	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->nseg; i++) {
		if (j->segs[i].first_seq == it->seg_first) {
			limit = j->segs[i].bytes;
			*last = i == j->nseg - 1;
			break;
		}
	}
	/* not found: trimmed under us, but whole, and the fd still reads */
	pthread_mutex_unlock(&j->lock);

	memmove(it->buf, it->buf + it->pos, it->len - it->pos);
	it->buf_off += it->pos;
	it->len -= it->pos;
	it->pos = 0;
	at = it->buf_off + it->len;
	want = sizeof(it->buf) - it->len;
	if (limit <= at)
		return 0;
	if (limit - at < want)
		want = (size_t)(limit - at);
	do
		r = pread(it->fd, it->buf + it->len, want, (off_t)at);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	it->len += (size_t)r;
	return r;
}

/* seq was handed to a reader: never coalesce into it. */
static void note_read(struct journal *j, uint64_t seq)
{
	uint64_t cur = __atomic_load_n(&j->read_seq, __ATOMIC_RELAXED);

	while (cur < seq &&
	       !__atomic_compare_exchange_n(&j->read_seq, &cur, seq, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

static int iter_next(struct journal_iter *it, struct journal_record *out,
		     bool peek);

int journal_iter_next(struct journal_iter *it, struct journal_record *out)
{
	return iter_next(it, out, false);
}

/* With peek, the record is not handed to a reader: it may coalesce. */
static int iter_next(struct journal_iter *it, struct journal_record *out,
		     bool peek)
{
	bool last;
	ssize_t r;
	int n;

	for (;;) {
		if (it->fd < 0) {
			n = iter_next_segment(it);
			if (n <= 0)
				return n;
		}
		if (it->pos < it->len) {
			n = journal_record_decode(it->buf + it->pos,
						  it->len - it->pos, out);
			if (n > 0 &&
			    (!it->damaged || out->seq >= it->next_seq)) {
				it->pos += (size_t)n;
				if (it->damaged)
					it->corrupt++;
				it->damaged = false;
				if (out->seq < it->next_seq)
					continue;
				it->rec_off = it->buf_off + it->pos - (size_t)n;
				it->next_seq = out->seq + 1;
				if (!peek)
					note_read(it->j, out->seq);
				return 1;
			}
			if (n != -EAGAIN) {
				/* Resynchronise, a byte at a time. */
				it->damaged = true;
				it->pos++;
				continue;
			}
		}
		r = iter_fill(it, &last);
		if (r < 0)
			return (int)r;
		if (r > 0)
			continue;
		if (last)
			return 0; /* leftovers are damage, or come later */
		/* A whole segment's end: what is left is damage. */
		if (it->damaged || it->pos < it->len)
			it->corrupt++;
		close(it->fd);
		it->fd = -1;
	}
}

void journal_lag(struct journal *j, uint64_t seq, struct journal_lag *out)
{
	struct journal_iter *it;
	struct journal_record r;

	out->seconds = 0;
	out->bytes = 0;
	if (journal_iter_open(j, seq + 1, &it) < 0)
		return;
	if (iter_next(it, &r, true) == 1) {
		out->seconds = ((double)now_ns(CLOCK_REALTIME) -
				(double)r.time_ns) / 1e9;
		if (out->seconds < 0)
			out->seconds = 0;
		pthread_mutex_lock(&j->lock);
		for (size_t i = 0; i < j->nseg; i++) {
			const struct segment *sg = &j->segs[i];

			if (sg->first_seq > it->seg_first)
				out->bytes += sg->bytes;
			else if (sg->first_seq == it->seg_first &&
				 sg->bytes > it->rec_off)
				out->bytes += sg->bytes - it->rec_off;
		}
		pthread_mutex_unlock(&j->lock);
	}
	journal_iter_close(it);
}
