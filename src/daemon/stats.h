/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_STATS_H
#define CACHEFS_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Statistics: every FUSE operation and every counted event is declared
 * once, in the lists below.  Counters live per thread, are written only
 * by their own thread (no atomic read-modify-write, no shared cache line)
 * and are summed on demand, the way memcached keeps its thread stats.
 */

/* Every FUSE operation cachefs serves, in the order the tables print. */
#define FS_OPS(X)                                                          \
	X(lookup) X(forget) X(getattr) X(setattr) X(readlink) X(mknod)      \
	X(mkdir) X(symlink) X(link) X(unlink) X(rmdir) X(rename) X(open)    \
	X(create) X(read) X(write) X(flush) X(release) X(fsync) X(opendir) \
	X(readdir) X(readdirplus) X(releasedir) X(fsyncdir) X(statfs)       \
	X(getxattr) X(listxattr) X(setxattr) X(removexattr) X(access)       \
	X(fallocate) X(copy_file_range) X(lseek)

enum fs_op {
#define X(name) OP_##name,
	FS_OPS(X)
#undef X
	OP__COUNT
};

extern const char *const fs_op_names[OP__COUNT];

/*
 * Counted events that are not FUSE operations: name and help text.  Later
 * subsystems add their counters here.
 */
#define STATS_COUNTERS(X)                                                  \
	X(ctl_connections, "control socket connections accepted")          \
	X(ctl_requests, "control requests answered")                       \
	X(ctl_bad_requests, "malformed, oversized or unknown control "     \
			    "requests")                                    \
	X(ctl_failed_requests, "control requests that failed")             \
	X(ctl_dropped_clients, "control clients dropped: too many, too "   \
			       "slow to read, or cut off mid-request")     \
	X(metrics_requests, "HTTP requests to the metrics endpoint")       \
	X(trace_records, "operations recorded by the trace")               \
	X(trace_file_errors, "trace records that could not be written "    \
			     "to the trace file")                          \
	X(log_reopens, "times the log and trace files were reopened")      \
	X(revalidate_passes, "passes of the revalidator over the inodes") \
	X(revalidated_inodes, "inodes compared with the backend")          \
	X(revalidated_by_name, "of those, files compared through a name "  \
			       "in their directory, not opened")           \
	X(inval_inode, "inodes whose cached attributes and pages the "    \
		       "kernel was told to drop")                         \
	X(inval_entry, "names the kernel was told to forget")               \
	X(watch_streams, "watch streams started")                           \
	X(watch_events, "events sent to watch streams")                     \
	X(watch_gaps, "gaps reported to watch streams")                     \
	X(peer_sent, "change datagrams sent to peers")                     \
	X(peer_send_errors, "change datagrams that could not be sent")     \
	X(peer_received, "authentic change datagrams received")            \
	X(peer_bad, "datagrams dropped: bad HMAC, malformed or our own")   \
	X(peer_gaps, "lost datagrams detected (cache flushed)")            \
	X(peer_paths, "paths invalidated for peers")                       \
	X(offline_served, "requests answered from the cache while the "     \
			  "backend failed (offline)")                      \
	X(lookup_memory, "lookups answered from the inode table, "         \
			 "without the backend")                            \
	X(lookup_memory_missing, "of those, names remembered missing")    \
	X(lookahead_dirs, "directories read through the mount ahead of "  \
			  "the kernel's lookups")                         \
	X(lookahead_entries, "entries those readings returned")           \
	X(lookahead_dropped, "directories dropped from the look-ahead "   \
			     "before it reached them")                    \
	X(lookahead_failed, "look-ahead readings that failed (a directory "\
			    "gone or renamed meanwhile)")                 \
	X(lookahead_full, "lookups whose directory was not read ahead: "  \
			  "the inode table had made the kernel forget "   \
			  "names within the last 10 s")                   \
	X(readdir_memory, "directories opened with their listing in "      \
			  "memory: read without the backend")              \
	X(lookup_shared_missing, "lookups answered missing by a shared "   \
				 "tier (memcached), without the backend") \
	X(lookup_shared_current, "lookups whose attributes, as the "       \
				 "backend's client held them, a shared "  \
				 "tier showed current: not asked again")  \
	X(shared_forget_deferred, "changed paths a shared tier could not "  \
				  "forget at once (it will when its "   \
				  "server answers)")                    \
	X(shared_stores, "files stored in the shared tiers when closed "   \
			 "after a write, or renamed")                      \
	X(rdma_hellos, "RDMA clients that said hello")                     \
	X(rdma_authenticated, "RDMA clients that proved the secret")       \
	X(rdma_auth_failures, "RDMA clients refused: wrong secret")        \
	X(rdma_requests, "RDMA requests answered")                         \
	X(rdma_bytes, "bytes read for RDMA clients")                       \
	X(rdma_tier_reads, "RDMA reads answered from a cache tier")        \
	X(rdma_errors, "RDMA requests answered with the backend's error "  \
		       "(no such file, no permission, ...)")              \
	X(rdma_escapes, "RDMA paths refused for leaving the tree")         \
	X(rdma_bad_messages, "RDMA messages refused or dropped: "          \
			     "malformed, another protocol or version, or " \
			     "from no session")                          \
	X(rdma_unauthenticated, "RDMA requests before authentication")     \
	X(rdma_bad_requests, "RDMA reads refused: a bad length or offset") \
	X(rdma_bad_handles, "RDMA requests naming no open handle")         \
	X(rdma_over_limit, "RDMA requests refused: a per-client limit "    \
			   "reached")                                      \
	X(rdma_transfer_errors, "RDMA sends and writes that failed "       \
				"(client gone, bad key)")                \
	X(rdma_dropped, "RDMA clients dropped: misbehaving, gone, silent " \
			"or too many")

/*
 * Latency histogram: bucket k (k < STATS_LAT_BUCKETS - 1) counts
 * operations that took less than 2^k microseconds and at least the bound
 * of bucket k - 1; the last bucket counts the rest.
 */
#define STATS_LAT_BUCKETS 24
#define STATS_ERRNO_MAX 256 /* errno values at or above are counted as 0 */

struct op_stats {
	uint64_t count;
	uint64_t errors;
	uint64_t bytes; /* read: bytes asked for; write: bytes written */
	uint64_t ns;	/* total latency */
	uint64_t lat[STATS_LAT_BUCKETS];
};

struct stats {
	struct op_stats op[OP__COUNT];
	uint64_t err[STATS_ERRNO_MAX]; /* error replies by errno */
#define X(name, help) uint64_t name;
	STATS_COUNTERS(X)
#undef X
};

enum stats_counter {
#define X(name, help) STAT_##name,
	STATS_COUNTERS(X)
#undef X
	STAT__COUNT
};

struct stats_counter_def {
	const char *name;
	const char *help;
	size_t offset; /* into struct stats */
};

extern const struct stats_counter_def stats_counters[STAT__COUNT];

/* Upper bound of latency bucket k in microseconds (0 for the last). */
uint64_t stats_lat_bound_us(unsigned k);

/* Record one operation: err is 0 or a positive errno. */
void stats_op(enum fs_op op, int err, uint64_t bytes, uint64_t ns);

/* Add n to a counter of STATS_COUNTERS. */
void stats_add(enum stats_counter c, uint64_t n);
#define stats_inc(c) stats_add(STAT_##c, 1)

/*
 * Sum every thread's counters into *out.  With since_reset, subtract what
 * had been counted at the last stats_reset().
 */
void stats_sum(struct stats *out, bool since_reset);

/* Start the since_reset view afresh; the totals keep counting. */
void stats_reset(void);

/* Monotonic nanoseconds, for latencies. */
uint64_t stats_now_ns(void);

#endif
