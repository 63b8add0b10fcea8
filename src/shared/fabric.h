/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_FABRIC_H
#define CACHEFS_FABRIC_H

#include <rdma/fabric.h>
#include <stddef.h>

/*
 * libfabric, loaded when first needed (dlopen) instead of linked.
 *
 * Debian's libfabric links its providers' libraries, and one of them
 * (PSM's libinfinipath) installs handlers for SIGINT, SIGTERM, SIGSEGV,
 * SIGBUS, SIGILL and SIGABRT as it is loaded, unconditionally: linked,
 * it would take SIGTERM and SIGINT from libfuse (libfuse leaves a signal
 * that has a handler alone, and the daemon would exit without
 * unmounting) and SIGSEGV from the sanitizers, in every program that
 * links libcachefs, RDMA or not.  fabric_load() saves the disposition of
 * every signal, loads libfabric, and puts them back.
 *
 * Only the few libfabric functions that are not inline in its headers
 * are called through here; everything else goes through the objects'
 * operation tables, as libfabric's headers have it.
 */

/*
 * Load libfabric (once; any thread).  Returns 0, or -ENOENT (with a
 * message in err when err is not NULL) when libfabric.so.1 cannot be
 * loaded.
 */
int fabric_load(char *err, size_t errlen);

/* libfabric's own, once fabric_load() succeeded. */
extern int (*fabric_getinfo)(uint32_t version, const char *node,
			     const char *service, uint64_t flags,
			     const struct fi_info *hints,
			     struct fi_info **info);
extern void (*fabric_freeinfo)(struct fi_info *info);
extern struct fi_info *(*fabric_dupinfo)(const struct fi_info *info);
extern int (*fabric_open)(struct fi_fabric_attr *attr,
			  struct fid_fabric **fabric, void *context);
extern const char *(*fabric_strerror)(int errnum);

/*
 * Hints for a reliable datagram endpoint (FI_EP_RDM) of provider prov,
 * with caps, mode and threading, accepting every memory registration
 * mode cachefs's server and client handle; fabric_freeinfo() it.  NULL
 * when out of memory.  fabric_load() must have succeeded.
 */
struct fi_info *fabric_rdm_hints(const char *prov, uint64_t caps,
				 uint64_t mode, enum fi_threading threading);

#endif
