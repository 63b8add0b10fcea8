/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_CONFIG_H
#define CACHEFS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Every cachefs option is declared once, in the table in config.c: its
 * name, type, default, whether it may change while mounted, and its help
 * text.  Parsing of -o, --help and the man page check all follow from that
 * table, so an option cannot exist without documentation.
 */

enum log_level {
	LOGL_ERROR,
	LOGL_WARNING,
	LOGL_NOTICE,
	LOGL_INFO,
	LOGL_DEBUG,
};

struct config {
	/* kernel cache */
	double entry_timeout;	 /* seconds */
	double attr_timeout;	 /* seconds */
	double negative_timeout; /* seconds; 0 disables negative entries */

	/* backend access */
	bool file_handles;     /* use name_to_handle_at/open_by_handle_at */
	unsigned fd_cache;     /* O_PATH descriptors kept open; 0 = auto */
	bool no_open;	       /* no OPEN/FLUSH/RELEASE for files */
	bool no_opendir;       /* no OPENDIR/RELEASEDIR */
	bool write_only_direct; /* write-only opens bypass the page cache */
	bool splice;	       /* zero-copy reads and writes */
	bool acl;	       /* kernel enforces the backend's POSIX ACLs */

	/* session loop */
	unsigned threads;      /* max worker threads; 1 = single-threaded */
	unsigned idle_threads; /* worker threads kept when idle */
	bool clone_fd;	       /* one /dev/fuse descriptor per thread */

	/* kernel cache, at run time */
	bool cache;	   /* off: every request goes to the backend */
	uint64_t cache_size;	  /* bytes of the in-process tier; 0: none */
	uint64_t max_cached_file; /* bytes; larger files are not cached */
	char *memcached;	  /* the shared tier's servers; "" or NULL: none */
	char *memcached_prefix;	  /* of every key */
	uint64_t memcached_max_file; /* bytes */
	double memcached_timeout;    /* seconds */
	double memcached_ttl;	     /* seconds; 0: no expiry */
	bool offline;		  /* serve from the cache when the backend fails */
	double revalidate; /* seconds between checks of the backend; 0: off */
	unsigned max_names; /* names remembered for the kernel; 0: no bound */
	unsigned lookahead; /* entries of a directory read ahead; 0: off */

	/* control and observability; strings are NULL when unset */
	char *ctl_socket; /* default: ctl_socket_path() of the mount point */
	char *ctl_group;  /* group allowed to use the control socket */
	char *metrics;	  /* [ADDR:]PORT of the Prometheus endpoint */
	char *trace_file; /* append the operation trace here */

	/* peer invalidation */
	char *listen;		/* [ADDR:]PORT for peers' datagrams */
	char *peers;		/* HOST:PORT,... to tell of changes */
	char *peer_secret_file; /* the shared HMAC key */
	char *notify;		/* HOST:PORT for libiorouter datagrams */

	/* the change journal */
	bool journal;		   /* record changes through the mount */
	char *state_dir;	   /* NULL: /var/lib/cachefs/<mount name> */
	int journal_sync;	   /* always, interval, never */
	double journal_sync_interval; /* seconds */
	uint64_t journal_max;	   /* bytes; 0: unbounded */
	int journal_full;	   /* fail, drop */

	/* mirrors */
	char *mirror;		   /* NAME=URL lines ('\n'-separated) */
	int mirror_conflict;	   /* overwrite, stop */
	char *mirror_alert;	   /* a shell command; NULL: none */
	double mirror_alert_after; /* seconds */

	/* RDMA reads for remote clients; strings are NULL when unset */
	char *rdma;		    /* [ADDR:]PORT to serve on; NULL: off */
	char *rdma_provider;	    /* libfabric provider; NULL: the best */
	char *rdma_secret_file;	    /* the secret clients must prove */
	char *rdma_user;	    /* the identity reads act as */
	int rdma_completion;	    /* enum rdma_completion */
	unsigned rdma_max_requests; /* per client, in flight */
	uint64_t rdma_max_memory;   /* per client: bytes of reads in flight */

	/* logging */
	int log_level;	/* enum log_level */
	char *log_file; /* log here instead of stderr/syslog */
};

enum rdma_completion {
	RDMA_COMPLETION_AUTO,	  /* CQ data where the provider has it */
	RDMA_COMPLETION_CQ_DATA,  /* the write carries it: no reply */
	RDMA_COMPLETION_DELIVERY, /* FI_DELIVERY_COMPLETE, then a reply */
};

enum opt_type {
	OPT_BOOL,
	OPT_UINT,
	OPT_SIZE,     /* uint64_t bytes; accepts K, M, G, T suffixes */
	OPT_DURATION, /* double seconds; accepts ms, s, m, h suffixes */
	OPT_ENUM,     /* int index into choices[] */
	OPT_STRING,   /* char *, malloc'd; NULL when empty */
};

#define OPT_RUNTIME 0x1 /* may be changed while mounted */
#define OPT_REPEAT 0x2	/* OPT_STRING: each one given adds a line */

struct option_def {
	const char *name;
	enum opt_type type;
	size_t offset; /* into struct config */
	const char *def;
	unsigned flags;
	const char *const *choices; /* OPT_ENUM: NULL-terminated */
	const char *meta;	    /* OPT_STRING: what the value is, for help */
	const char *help;
};

extern const struct option_def config_options[];

/* Fill cfg with the defaults of every option. */
void config_defaults(struct config *cfg);

/* Free the strings of cfg. */
void config_free(struct config *cfg);

/* Find an option by name, NULL if none. */
const struct option_def *config_find(const char *name);

/*
 * Parse value for option od into cfg.  value may be NULL when the option
 * was given without "=value" (allowed for booleans only).  Returns 0 or
 * -EINVAL, with a one-line reason in err.
 */
int config_set(struct config *cfg, const struct option_def *od,
	       const char *value, char *err, size_t errlen);

/*
 * Change a run-time option of the live configuration, which other threads
 * read without a lock: the new value is parsed aside and stored with one
 * atomic store, so a reader sees the old or the new value, never a mix.
 * Strings are replaced likewise and the old one freed, so only the
 * thread that changes options may read string options.  Returns 0,
 * -EINVAL (bad value) or -EPERM (not changeable at run time), with a
 * reason in err.
 */
int config_set_live(struct config *cfg, const struct option_def *od,
		    const char *value, char *err, size_t errlen);

/* Format the current value of od in cfg ("" for an unset string). */
void config_format(const struct config *cfg, const struct option_def *od,
		   char *buf, size_t len);

/* Print the option table, one option per paragraph, for --help. */
void config_print_help(FILE *out);

/*
 * Split a -o option string at unescaped commas.  Calls fn for each option
 * with the name and the value (NULL if there was no '='), both unescaped.
 * Stops and returns the first non-zero value fn returns.  Returns -ENOMEM
 * on allocation failure.
 */
int config_split_opts(const char *opts,
		      int (*fn)(const char *name, const char *value, void *arg),
		      void *arg);

#endif
