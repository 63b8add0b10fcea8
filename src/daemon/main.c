// SPDX-License-Identifier: MIT
/*
 * cachefs: start-up order, command line, signals and shutdown.
 *
 *   parse options -> open backend -> inode table -> FUSE session -> mount
 *   -> daemonize -> serve -> unmount
 *
 * The backend directory is opened before mounting, so cachefs can be
 * mounted over its own backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "changes.h"
#include "config.h"
#include "creds.h"
#include "ctl.h"
#include "fs.h"
#include "inode.h"
#include "log.h"
#include "lookahead.h"
#include "mirror.h"
#include "notify.h"
#include "peers.h"
#include "rdma.h"
#include "revalidate.h"
#include "tier_memcached.h"
#include "trace.h"

#ifndef CACHEFS_VERSION
#define CACHEFS_VERSION "unknown"
#endif

/*
 * Mount options that are handed to the kernel (via libfuse), and options
 * that mount(8) and fstab use but that mean nothing to cachefs.
 */
static const char *const kernel_opts[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions",
	"ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"async", "sync", "dirsync", "atime", "noatime", "relatime",
	"norelatime", "strictatime", "nostrictatime", "lazytime",
	"nolazytime", "max_read", "blksize", "fsname", "subtype", "context",
	"fscontext", "defcontext", "rootcontext", NULL,
};
static const char *const ignored_opts[] = {
	"defaults", "_netdev", "nofail", "auto", "noauto", "user", "nouser",
	"users", "owner", "group", "comment", "nonempty",
	/* set by libfuse itself; mount(8) repeats them on remount */
	"user_id", "group_id", "rootmode", NULL,
};

/* Per-mount flags that "mount -o remount" may change. */
static const struct {
	const char *name;
	unsigned long flag;
	bool set;
} mount_flags[] = {
	{ "ro", MS_RDONLY, true },	  { "rw", MS_RDONLY, false },
	{ "nosuid", MS_NOSUID, true },	  { "suid", MS_NOSUID, false },
	{ "nodev", MS_NODEV, true },	  { "dev", MS_NODEV, false },
	{ "noexec", MS_NOEXEC, true },	  { "exec", MS_NOEXEC, false },
	{ "noatime", MS_NOATIME, true },  { "atime", MS_NOATIME, false },
	{ "relatime", MS_RELATIME, true }, { "norelatime", MS_RELATIME, false },
};

struct cmdline {
	const char *backend;
	const char *mountpoint;
	bool foreground;
	bool debug;
	bool single_thread;
	bool fsname_given;
	bool noatime;
	bool remount;
	unsigned long flags_set, flags_clear; /* from mount_flags */
	struct config *cfg;
	char *kernel_opts; /* comma-separated, escaped for libfuse */
};

static bool in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cachefs BACKEND MOUNTPOINT [-o OPTION[,OPTION...]] "
		"[-f] [-d] [-s]\n"
		"       mount -t fuse.cachefs BACKEND MOUNTPOINT "
		"[-o OPTION[,...]]\n"
		"\n"
		"Mount the directory BACKEND at MOUNTPOINT through cachefs.\n"
		"\n"
		"  -f             stay in the foreground, log to stderr\n"
		"  -d             debug: foreground, log every request\n"
		"  -s             serve requests from a single thread\n"
		"  -o OPTIONS     comma-separated mount options (below)\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n"
		"\n"
		"cachefs options:\n");
	config_print_help(out);
	fprintf(out, "\nKernel mount options passed through:\n   ");
	for (int i = 0; kernel_opts[i]; i++)
		fprintf(out, " %s", kernel_opts[i]);
	fprintf(out, "\nIgnored (for fstab and mount(8)):\n   ");
	for (int i = 0; ignored_opts[i]; i++)
		fprintf(out, " %s", ignored_opts[i]);
	fprintf(out, ", x-*\n\nSee cachefs(8).\n");
}

/* Append name[=value] to a libfuse option string, escaping commas. */
static int add_kernel_opt(char **opts, const char *name, const char *value)
{
	char buf[PATH_MAX * 2 + 64];

	if (value)
		snprintf(buf, sizeof(buf), "%s=%s", name, value);
	else
		snprintf(buf, sizeof(buf), "%s", name);
	return fuse_opt_add_opt_escaped(opts, buf) < 0 ? -ENOMEM : 0;
}

static int take_opt(const char *name, const char *value, void *arg)
{
	struct cmdline *cl = arg;
	const struct option_def *od = config_find(name);
	char err[256];

	if (od) {
		if (config_set(cl->cfg, od, value, err, sizeof(err)) < 0) {
			fprintf(stderr, "cachefs: %s\n", err);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "debug") == 0) {
		cl->debug = true;
		return 0;
	}
	if (strcmp(name, "remount") == 0) {
		cl->remount = true;
		return 0;
	}
	for (size_t k = 0; k < sizeof(mount_flags) / sizeof(mount_flags[0]);
	     k++) {
		if (strcmp(name, mount_flags[k].name) != 0)
			continue;
		if (mount_flags[k].set)
			cl->flags_set |= mount_flags[k].flag;
		else
			cl->flags_clear |= mount_flags[k].flag;
	}
	if (in_list(kernel_opts, name)) {
		if (strcmp(name, "fsname") == 0)
			cl->fsname_given = true;
		if (strcmp(name, "noatime") == 0 || strcmp(name, "atime") == 0 ||
		    strcmp(name, "relatime") == 0 ||
		    strcmp(name, "strictatime") == 0)
			cl->noatime = strcmp(name, "noatime") == 0;
		return add_kernel_opt(&cl->kernel_opts, name, value);
	}
	if (in_list(ignored_opts, name) || strncmp(name, "x-", 2) == 0)
		return 0;
	fprintf(stderr,
		"cachefs: unknown option '%s' (see cachefs --help)\n", name);
	return -EINVAL;
}

/* Returns 0 to run, 1 to exit successfully, -1 on a usage error. */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	for (int k = 1; k < argc; k++) {
		const char *a = argv[k];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("cachefs %s (libfuse %s)\n", CACHEFS_VERSION,
			       fuse_pkgversion());
			return 1;
		} else if (strcmp(a, "-f") == 0) {
			cl->foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			cl->debug = true;
		} else if (strcmp(a, "-s") == 0) {
			cl->single_thread = true;
		} else if (strncmp(a, "-o", 2) == 0) {
			const char *opts = a[2] ? a + 2 : argv[++k];

			if (!opts) {
				fprintf(stderr, "cachefs: -o needs options\n");
				return -1;
			}
			if (config_split_opts(opts, take_opt, cl) < 0)
				return -1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr,
				"cachefs: unknown flag '%s' (see cachefs "
				"--help)\n",
				a);
			return -1;
		} else if (!cl->backend) {
			cl->backend = a;
		} else if (!cl->mountpoint) {
			cl->mountpoint = a;
		} else {
			fprintf(stderr, "cachefs: unexpected argument '%s'\n",
				a);
			return -1;
		}
	}
	if (!cl->backend || !cl->mountpoint) {
		fprintf(stderr, "cachefs: %s\n",
			cl->backend ? "no mount point given"
				    : "no backend directory given");
		usage(stderr);
		return -1;
	}
	if (cl->debug) {
		cl->foreground = true;
		cl->cfg->log_level = LOGL_DEBUG;
	}
	return 0;
}

static bool is_cachefs_mount(const char *mnt)
{
	char line[PATH_MAX * 2 + 256], dir[PATH_MAX], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %4095s %63s", dir, type) == 2 &&
		    strcmp(dir, mnt) == 0 && strcmp(type, "fuse.cachefs") == 0)
			found = true;
	fclose(f);
	return found;
}

/*
 * "mount -o remount,OPTS": change the per-mount flags of a running mount
 * (ro/rw, nosuid, nodev, noexec, atime flags).  The serving daemon keeps
 * its other options.
 */
static int remount(const struct cmdline *cl)
{
	static const struct {
		unsigned long st, ms;
	} keep[] = {
		{ ST_RDONLY, MS_RDONLY }, { ST_NOSUID, MS_NOSUID },
		{ ST_NODEV, MS_NODEV },	  { ST_NOEXEC, MS_NOEXEC },
		{ ST_NOATIME, MS_NOATIME }, { ST_RELATIME, MS_RELATIME },
		{ ST_NODIRATIME, MS_NODIRATIME },
	};
	char mnt[PATH_MAX];
	struct statvfs sv;
	unsigned long flags = 0;

	if (!realpath(cl->mountpoint, mnt) || !is_cachefs_mount(mnt)) {
		fprintf(stderr, "cachefs: remount: %s is not a cachefs mount\n",
			cl->mountpoint);
		return 1;
	}
	if (statvfs(mnt, &sv) < 0) {
		log_error_errno(errno, "remount: cannot stat %s", mnt);
		return 1;
	}
	for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
		if (sv.f_flag & keep[k].st)
			flags |= keep[k].ms;
	flags = (flags | cl->flags_set) & ~cl->flags_clear;
	if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
		log_error_errno(errno, "remount of %s failed", mnt);
		return 1;
	}
	return 0;
}

static rlim_t raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

/*
 * O_PATH descriptors cached by default: a quarter of the open-file limit,
 * at most 512.  Names are looked up in few directories at a time, and the
 * kernel answers for everything it caches, so a larger cache buys little
 * and shows as hundreds of thousands of open files on a big tree.
 */
static unsigned auto_fd_cache(rlim_t nofile)
{
	rlim_t n = nofile / 4;

	return n < 16 ? 16 : n > 512 ? 512 : (unsigned)n;
}

/* The shared tier, behind the in-process one. */
static int start_memcached(struct cfs *fs)
{
	const struct config *cfg = fs->cfg;
	struct tier_memcached_cfg mc = {
		.servers = cfg->memcached,
		.prefix = cfg->memcached_prefix,
		.max_file = cfg->memcached_max_file,
		.timeout_ms = (unsigned)(cfg->memcached_timeout * 1000 + 0.5),
		.ttl_s = (unsigned)(cfg->memcached_ttl + 0.5),
	};
	char err[256], *servers;
	struct tier *t;
	int r;

	if (!mc.timeout_ms)
		mc.timeout_ms = 1;
	/* ";" separates servers where a comma would end the option */
	servers = strdup(cfg->memcached);
	if (!servers)
		return -ENOMEM;
	if (strncmp(servers, "--", 2) != 0)
		for (char *p = servers; (p = strchr(p, ';')); p++)
			*p = ',';
	mc.servers = servers;
	r = tier_memcached_new(&mc, &t, err, sizeof(err));
	free(servers);
	if (r < 0) {
		log_error("memcached=%s: %s", cfg->memcached, err);
		return r;
	}
	return cache_add_tier(fs->cache, t, cfg->memcached_max_file);
}

/* The cache tiers: memory first, then memcached. */
static int start_cache(struct cfs *fs)
{
	struct tier *mem;
	int r;

	r = cache_new(&fs->cache);
	if (r < 0)
		goto fail;
	if (fs->cfg->cache_size) {
		mem = tier_mem_new(fs->cfg->cache_size);
		r = mem ? cache_add_tier(fs->cache, mem,
					 fs->cfg->max_cached_file)
			: -ENOMEM;
		if (r < 0)
			goto fail;
	}
	if (fs->cfg->memcached && fs->cfg->memcached[0] &&
	    (r = start_memcached(fs)) < 0)
		return r; /* said why */
	return 0;
fail:
	log_error_errno(r, "cannot set up the cache");
	return r;
}

/* The kernel forgot an inode: its data descriptor goes. */
static void drop_data(void *arg, struct inode *i)
{
	struct cfs *fs = arg;

	datafd_drop(fs->data, i);
}

/*
 * Change datagrams name paths as the applications see them, under the
 * mount point, as libiorouter does for the paths it is given.
 */
static int start_notify(struct cfs *fs, const char *mountpoint)
{
	char err[256];
	int r;

	r = notify_new(fs->cfg->notify, &fs->notify, err, sizeof(err));
	if (r == 0 && strcmp(mountpoint, "/") != 0)
		r = notify_set_prefix(fs->notify, mountpoint);
	if (r < 0)
		log_error("%s", r == -ENOMEM ? "out of memory" : err);
	return r;
}

static int serve(struct fuse_session *se, const struct cmdline *cl)
{
	struct fuse_loop_config *lc;
	int r;

	if (cl->single_thread || cl->cfg->threads <= 1)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, cl->cfg->clone_fd);
	fuse_loop_cfg_set_max_threads(lc, cl->cfg->threads);
	fuse_loop_cfg_set_idle_threads(lc, cl->cfg->idle_threads);
	r = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return r;
}

/*
 * The daemon changes to / when it detaches: make a relative path option
 * absolute now.
 */
static int absolute_option(char **opt)
{
	char cwd[PATH_MAX], *abs;

	if (!*opt || (*opt)[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) ||
	    asprintf(&abs, "%s/%s", cwd, *opt) < 0)
		return -errno;
	free(*opt);
	*opt = abs;
	return 0;
}

/* Open the log and trace files now, so that a bad path fails the mount. */
static int open_files(struct config *cfg)
{
	int r, fd;

	if ((r = absolute_option(&cfg->log_file)) < 0 ||
	    (r = absolute_option(&cfg->trace_file)) < 0 ||
	    (r = absolute_option(&cfg->ctl_socket)) < 0)
		return log_error_errno(r, "cannot resolve a relative path");
	if (cfg->log_file) {
		fd = open(cfg->log_file,
			  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return log_error_errno(errno, "cannot open log file %s",
					       cfg->log_file);
		close(fd);
	}
	if (cfg->trace_file) {
		r = trace_set_file(cfg->trace_file);
		if (r < 0)
			return log_error_errno(r, "cannot open trace file %s",
					       cfg->trace_file);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct cmdline cl = { .cfg = &cfg };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct cfs fs = { .cfg = &cfg };
	struct ctl *ctl = NULL;
	struct revalidator *rv = NULL;
	char backend[PATH_MAX], mountpoint[PATH_MAX];
	rlim_t nofile;
	int root_fd, r, ret = 1;

	if (argc == 3 && strcmp(argv[1], LOOKAHEAD_READER_ARG) == 0)
		lookahead_reader_main(argv[2]); /* a look-ahead reader */
	config_defaults(&cfg);
	r = parse_cmdline(argc, argv, &cl);
	if (r != 0) {
		free(cl.kernel_opts);
		config_free(&cfg);
		return r > 0 ? 0 : 2;
	}
	log_init("cachefs", cfg.log_level);
	if (cl.remount) {
		free(cl.kernel_opts);
		config_free(&cfg);
		return remount(&cl);
	}

	root_fd = open(cl.backend, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 || !realpath(cl.backend, backend)) {
		log_error_errno(errno, "cannot open backend directory '%s'",
				cl.backend);
		goto out_opts;
	}

	if (!realpath(cl.mountpoint, mountpoint)) {
		log_error_errno(errno, "bad mount point '%s'", cl.mountpoint);
		close(root_fd);
		goto out_opts;
	}
	fs.backend = backend;
	fs.mountpoint = mountpoint;
	fs.backend_len = strlen(backend);
	if (open_files(&cfg) < 0) {
		close(root_fd);
		goto out_opts;
	}
	nofile = raise_nofile_limit();
	if (!cfg.fd_cache)
		cfg.fd_cache = auto_fd_cache(nofile);
	r = inode_table_new(root_fd, cfg.fd_cache, cfg.file_handles, &fs.itab);
	if (r < 0) {
		log_error_errno(r, "cannot use backend directory '%s'",
				backend);
		close(root_fd);
		goto out_opts;
	}
	inode_table_set_names_max(fs.itab, cfg.max_names);
	if (cfg.no_open) {
		/* half again the O_PATH cache: few files are read at a time */
		r = datafd_cache_new(fs.itab, cfg.fd_cache / 2,
				     cl.noatime ? O_NOATIME : 0, &fs.data);
		if (r < 0) {
			log_error_errno(r, "cannot set up data descriptors");
			goto out_itab;
		}
		inode_table_on_forget(fs.itab, drop_data, &fs);
	}
	if ((cfg.cache_size || (cfg.memcached && cfg.memcached[0])) &&
	    start_cache(&fs) < 0)
		goto out_itab;
	if (cfg.cache_size) {
		inode_table_set_bytes_max(fs.itab,
					  FS_TABLE_SHARE(cfg.cache_size));
		/* within the budget, lookups outlive the kernel's entries */
		inode_table_set_retain(fs.itab, true);
	}
	/* few arenas: freed table memory can go back to the system */
	mallopt(M_ARENA_MAX, 4);
	if (!inode_table_uses_handles(fs.itab))
		log_warning("backend '%s': no file handles; holding one "
			    "descriptor per inode (limit %llu)",
			    backend, (unsigned long long)nofile);

	fs.noatime = cl.noatime;
	creds_init();
	umask(0); /* the kernel already applied the caller's umask */

	if (fuse_opt_add_arg(&args, argv[0]) < 0 ||
	    (cl.debug && fuse_opt_add_arg(&args, "-d") < 0) ||
	    (!cl.fsname_given && add_kernel_opt(&cl.kernel_opts, "fsname",
						backend) < 0) ||
	    add_kernel_opt(&cl.kernel_opts, "subtype", "cachefs") < 0 ||
	    add_kernel_opt(&cl.kernel_opts, "default_permissions", NULL) < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, cl.kernel_opts) < 0) {
		log_error("out of memory");
		goto out_itab;
	}

	fs.se = fuse_session_new(&args, &cfs_ops, sizeof(cfs_ops), &fs);
	if (!fs.se)
		goto out_itab;
	if (fuse_set_signal_handlers(fs.se) < 0)
		goto out_session;
	if (cfg.journal &&
	    ((r = absolute_option(&cfg.state_dir)) < 0 ||
	     changes_open(&cfg, mountpoint, &fs.changes) < 0)) {
		if (r < 0)
			log_error_errno(r, "cannot resolve state_dir");
		goto out_signals;
	}
	if (mirrors_new(&fs, &fs.mirrors) < 0)
		goto out_signals;
	if (peers_new(&fs, &fs.peers) < 0)
		goto out_signals;
	if (cfg.notify && start_notify(&fs, mountpoint) < 0)
		goto out_peers;
	if (rdma_new(&fs, &fs.rdma) < 0)
		goto out_peers;
	if (ctl_new(&(struct ctl_params){ .fs = &fs,
					  .backend = backend,
					  .mountpoint = mountpoint,
					  .kernel_opts = cl.kernel_opts },
		    &ctl) < 0)
		goto out_peers;
	if (fuse_session_mount(fs.se, mountpoint) < 0)
		goto out_ctl;
	if (fuse_daemonize(cl.foreground) < 0)
		goto out_unmount;
	if (!cl.foreground)
		log_to_syslog();
	if (cfg.log_file && (r = log_to_file(cfg.log_file)) < 0)
		log_error_errno(r, "cannot open log file %s", cfg.log_file);
	if (rdma_start(fs.rdma) < 0 || ctl_start(ctl) < 0 ||
	    changes_start(fs.changes) < 0 || mirrors_start(fs.mirrors) < 0)
		goto out_unmount;
	r = revalidator_start(&fs, &rv);
	if (r < 0) {
		log_error_errno(r, "cannot start the revalidator");
		goto out_unmount;
	}
	r = lookahead_start(&fs, &fs.lookahead);
	if (r < 0) {
		log_error_errno(r, "cannot start the look-ahead");
		goto out_unmount;
	}
	log_notice("serving %s at %s", backend, mountpoint);

	r = serve(fs.se, &cl);
	ret = r < 0 ? 1 : 0;
	log_notice("%s unmounted%s", mountpoint,
		   ret ? " after an error" : "");

out_unmount:
	revalidator_stop(rv);
	fuse_session_unmount(fs.se);
	/* listings under way failed with the connection */
	lookahead_stop(fs.lookahead);
out_ctl:
	ctl_free(ctl); /* before the RDMA server, whose status it shows */
out_peers:
	rdma_free(fs.rdma);
	notify_free(fs.notify);
	peers_free(fs.peers);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_itab:
	mirrors_free(fs.mirrors); /* before the journal they read */
	changes_close(fs.changes);
	inode_table_free(fs.itab);
	datafd_cache_free(fs.data);
	cache_free(fs.cache);
out_opts:
	trace_shutdown();
	fuse_opt_free_args(&args);
	free(cl.kernel_opts);
	config_free(&cfg);
	return ret;
}
