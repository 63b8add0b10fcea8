/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_JOURNAL_H
#define CACHEFS_JOURNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A durable change journal: an append-only sequence of records, one per
 * change made through the mount, each with a sequence number one above
 * the one before.  Consumers read it with iterators and keep their
 * position in named cursors; segments every cursor has passed can be
 * trimmed.  This file is the storage layer only: it knows nothing of
 * FUSE, and it never logs (recovery reports through cfg->log).
 *
 * On disk, a directory of segment files, each named by the sequence
 * number of its first record ("%020llu.seg"), holding records back to
 * back, and one file per cursor ("NAME.cursor", the acked sequence
 * number in decimal and a newline).  A record, little-endian:
 *
 *	off  size  field
 *	  0     1  magic 0xC7
 *	  1     1  format 1
 *	  2     2  len: the whole record's size in bytes
 *	  4     2  len ^ 0xffff
 *	  6     4  CRC32C (Castagnoli) of bytes 10 .. len-1
 *	 10     1  op (enum journal_op)
 *	 11     1  flags: bit 0 set when there is a second path; others 0
 *	 12     8  seq
 *	 20     8  time_ns (CLOCK_REALTIME)
 *	 28     8  dev
 *	 36     8  ino
 *	 44     8  gen
 *	 52     2  path_len (the NUL not counted)
 *	 54     2  path2_len (0 without a second path)
 *	 56     1  handle_len (0 .. JOURNAL_HANDLE_MAX)
 *	 57        handle, then path and its NUL, then path2 and its NUL
 *
 * The four header bytes the CRC cannot cover (it would have to cover
 * the length it is computed over) are each checked on their own: the
 * length is stored twice so that a damaged length is -EBADMSG at once,
 * never taken for a record still being written.
 */

#define JOURNAL_HANDLE_MAX 128
/* Paths are C strings shorter than PATH_MAX. */
#define JOURNAL_RECORD_HEAD 57
#define JOURNAL_RECORD_MAX                                                     \
	(JOURNAL_RECORD_HEAD + JOURNAL_HANDLE_MAX + 2 * PATH_MAX)

/* Values are the on-disk op byte: never renumber, only add. */
enum journal_op {
	JOURNAL_OP_CREATE = 1,
	JOURNAL_OP_MKDIR = 2,
	JOURNAL_OP_MKNOD = 3,
	JOURNAL_OP_SYMLINK = 4,
	JOURNAL_OP_LINK = 5,
	JOURNAL_OP_UNLINK = 6,
	JOURNAL_OP_RMDIR = 7,
	JOURNAL_OP_RENAME = 8,
	JOURNAL_OP_WRITE = 9,
	JOURNAL_OP_TRUNCATE = 10,
	JOURNAL_OP_FALLOCATE = 11,
	JOURNAL_OP_COPY_FILE_RANGE = 12,
	JOURNAL_OP_CHMOD = 13,
	JOURNAL_OP_CHOWN = 14,
	JOURNAL_OP_UTIMENS = 15,
	JOURNAL_OP_SETXATTR = 16,
	JOURNAL_OP_REMOVEXATTR = 17,
	JOURNAL_OP_EXCHANGE = 18, /* rename(RENAME_EXCHANGE): path <-> path2 */
	JOURNAL_OP__END /* one past the last */
};

enum journal_class {
	JOURNAL_CLASS_NONE,	/* not an op */
	JOURNAL_CLASS_ENTRY,	/* names in a directory changed */
	JOURNAL_CLASS_DATA,	/* a file's content changed */
	JOURNAL_CLASS_METADATA, /* a file's attributes changed */
};

/* "create", "copy_file_range", ...; "unknown" for anything else. */
const char *journal_op_name(enum journal_op op);
enum journal_class journal_op_class(enum journal_op op);

/*
 * One record.  To append, fill op, the identity and the paths (seq and
 * time_ns are assigned); a decoded record's pointers point into the
 * buffer it was decoded from.
 */
struct journal_record {
	uint64_t seq;
	uint64_t time_ns;
	enum journal_op op;
	uint64_t dev, ino, gen;
	const void *handle; /* an opaque file handle, or NULL */
	size_t handle_len;  /* at most JOURNAL_HANDLE_MAX */
	const char *path;   /* never NULL */
	const char *path2;  /* the second path (rename, link...), or NULL */
};

/* CRC32C (Castagnoli, reflected), continuing from crc (0 to start). */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Encode r into buf: the record's size, or -ENOBUFS when cap is too
 * small, -EINVAL for an unknown op, a handle over JOURNAL_HANDLE_MAX or
 * a NULL path, -ENAMETOOLONG for a path of PATH_MAX bytes or more.
 */
int journal_record_encode(const struct journal_record *r, void *buf,
			  size_t cap);

/*
 * Decode the record at the start of buf: the bytes it takes, -EAGAIN when
 * buf holds only the start of a record that may yet be whole (every
 * proper prefix of a record is -EAGAIN), -EBADMSG when it is not a
 * record.  Reads nothing past len, whatever buf holds.
 */
int journal_record_decode(const void *buf, size_t len,
			  struct journal_record *out);

enum journal_sync {
	/*
	 * fdatasync before journal_append() returns; appenders that come
	 * while one fdatasync runs share the next one (group commit).
	 */
	JOURNAL_SYNC_ALWAYS,
	/*
	 * journal_append() returns once the record is written (a crash of
	 * the process loses nothing); the caller runs journal_sync() every
	 * so often, which bounds what a crash of the machine may lose.
	 * Segments are synced as they are closed.
	 */
	JOURNAL_SYNC_INTERVAL,
	/* never: a crash of the machine may lose what the kernel held */
	JOURNAL_SYNC_NEVER,
};

/* All zero (or a NULL cfg) is the defaults. */
struct journal_cfg {
	uint64_t segment_bytes; /* 0: 64 MiB */
	uint64_t max_bytes;	/* of all segments; 0: unbounded */
	enum journal_sync sync;
	/* Told what recovery found and did (torn tails, corruption). */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
};

struct journal_stats {
	uint64_t bytes;	     /* of all segments */
	uint64_t max_bytes;  /* 0: unbounded */
	uint64_t oldest_seq; /* the first a new iterator can start at */
	uint64_t newest_seq; /* the last appended; 0 before any */
	uint64_t segments;
	uint64_t appended;	  /* records, since journal_open() */
	uint64_t coalesced;	  /* appends that took the newest record's */
	uint64_t dropped;	  /* segments dropped by journal_drop_oldest() */
	uint64_t syncs;		  /* fdatasync()s of segments */
	uint64_t torn_truncated;  /* torn tails cut off at open */
	uint64_t corrupt_skipped; /* damaged stretches skipped at open */
	bool near_full;		  /* bytes >= 90% of max_bytes */
};

struct journal;
struct journal_iter;

/*
 * Open (creating it, mode 0700, if missing) the journal in dir, which no
 * other journal_open() may hold open: recover every segment, then
 * position for appending after the highest sequence number found.
 * Negative errno with a message in err (if errlen) on failure; -EBUSY
 * when dir is open already.
 */
int journal_open(const char *dir, const struct journal_cfg *cfg,
		 struct journal **out, char *err, size_t errlen);
/* Syncs (unless JOURNAL_SYNC_NEVER) and frees; iterators closed first. */
void journal_close(struct journal *j);

/*
 * Append r, setting r->seq and r->time_ns, durable as cfg->sync says on
 * return.  Safe from many threads.  -ENOSPC when max_bytes would be
 * passed (nothing written; the caller decides what gives way); after an
 * I/O error that error, from then on, for every append.
 */
int journal_append(struct journal *j, struct journal_record *r);
/*
 * Like journal_append(), except that when the newest record is a data
 * record with r's op, dev, ino and gen that no iterator has returned yet,
 * nothing is written: r takes that record's seq and time (it already
 * says the file's data changed, and nobody has acted on it), and waits
 * only until that record is durable.  For runs of writes to one file.
 */
int journal_append_coalesce(struct journal *j, struct journal_record *r);
/*
 * Only the coalescing half: 1 when r took the newest record's place (as
 * above), 0 when it cannot (nothing was written), or negative errno.
 * Lets a caller skip working out a record's paths for nothing.
 */
int journal_coalesce(struct journal *j, struct journal_record *r);
/* fdatasync everything appended so far, now.  0 or negative errno. */
int journal_sync(struct journal *j);

/*
 * Read records from from_seq on (in order; numbers recovery skipped are
 * missing): -ERANGE when from_seq is older than the oldest record kept,
 * a gap the consumer must handle.  journal_iter_next() gives 1 and a
 * record valid until the next call, 0 at the current end (call again
 * later for more), or negative errno (-ERANGE: trimmed under the
 * iterator).  Damaged records are skipped, and counted by
 * journal_iter_corrupt().
 */
int journal_iter_open(struct journal *j, uint64_t from_seq,
		      struct journal_iter **out);
int journal_iter_next(struct journal_iter *it, struct journal_record *out);
uint64_t journal_iter_corrupt(const struct journal_iter *it);
void journal_iter_close(struct journal_iter *it);

/*
 * Named consumer positions, persisted before return: a name is 1 to 64
 * of [A-Za-z0-9_.-] (else -EINVAL), acked_seq the last record the
 * consumer is done with.  get and remove: -ENOENT for an unknown name.
 * At most JOURNAL_CURSORS_MAX cursors (-ENOSPC).
 */
#define JOURNAL_CURSOR_NAME_MAX 64
#define JOURNAL_CURSORS_MAX 64
int journal_cursor_set(struct journal *j, const char *name, uint64_t acked_seq);
int journal_cursor_get(struct journal *j, const char *name, uint64_t *seq);
int journal_cursor_remove(struct journal *j, const char *name);

struct journal_cursor_info {
	char name[JOURNAL_CURSOR_NAME_MAX + 1];
	uint64_t acked;
};
/* Up to max cursors into out, by name: how many there are in all. */
size_t journal_cursor_list(struct journal *j, struct journal_cursor_info *out,
			   size_t max);

/*
 * Remove the oldest segments whose every record is at or below every
 * cursor's acked_seq, never the one being appended to: how many were
 * removed, or negative errno.  Without cursors nothing is removed: no
 * consumer has said what it is done with, and one that has not yet
 * registered must still find every record (bound the journal with
 * max_bytes instead).
 */
int journal_trim(struct journal *j);

/*
 * Remove the oldest segment whatever the cursors say (never the one
 * being appended to): 1 when one was removed, 0 when there is only the
 * active one, or negative errno.  What a cursor had not acked is lost
 * to it: its readers find the gap (-ERANGE).
 */
int journal_drop_oldest(struct journal *j);

/* Whether any cursor exists. */
bool journal_has_cursors(struct journal *j);

void journal_get_stats(struct journal *j, struct journal_stats *st);

/*
 * How far behind a consumer that has done seq is: how long ago
 * (seconds, CLOCK_REALTIME) the first record after seq was made, and
 * how many bytes of records the journal holds from that one on; both 0
 * when there is none.  Reads the journal up to that record; hands
 * nothing to a reader (coalescing goes on).
 */
struct journal_lag {
	double seconds;
	uint64_t bytes;
};
void journal_lag(struct journal *j, uint64_t seq, struct journal_lag *out);

#endif
