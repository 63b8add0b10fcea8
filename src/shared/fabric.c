// SPDX-License-Identifier: MIT
/*
 * libfabric, loaded with its signal handlers undone (see fabric.h).
 */
#include "fabric.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define LIBFABRIC "libfabric.so.1"

int (*fabric_getinfo)(uint32_t version, const char *node, const char *service,
		      uint64_t flags, const struct fi_info *hints,
		      struct fi_info **info);
void (*fabric_freeinfo)(struct fi_info *info);
struct fi_info *(*fabric_dupinfo)(const struct fi_info *info);
int (*fabric_open)(struct fi_fabric_attr *attr, struct fid_fabric **fabric,
		   void *context);
const char *(*fabric_strerror)(int errnum);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256]; /* empty once loaded */

static void load(void)
{
	static struct sigaction saved[NSIG];
	void *lib;

	for (int s = 1; s < NSIG; s++)
		sigaction(s, NULL, &saved[s]);
	lib = dlopen(LIBFABRIC, RTLD_NOW | RTLD_LOCAL);
	/* what the libraries it pulled in changed goes back */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &saved[s], NULL);
	if (!lib) {
		snprintf(failure, sizeof(failure), "cannot load %s: %s",
			 LIBFABRIC, dlerror());
		return;
	}
	*(void **)&fabric_getinfo = dlsym(lib, "fi_getinfo");
	*(void **)&fabric_freeinfo = dlsym(lib, "fi_freeinfo");
	*(void **)&fabric_dupinfo = dlsym(lib, "fi_dupinfo");
	*(void **)&fabric_open = dlsym(lib, "fi_fabric");
	*(void **)&fabric_strerror = dlsym(lib, "fi_strerror");
	if (!fabric_getinfo || !fabric_freeinfo || !fabric_dupinfo ||
	    !fabric_open || !fabric_strerror)
		snprintf(failure, sizeof(failure), "%s: a function is missing",
			 LIBFABRIC);
	/* kept loaded: providers keep threads and state of their own */
}

struct fi_info *fabric_rdm_hints(const char *prov, uint64_t caps,
				 uint64_t mode, enum fi_threading threading)
{
	struct fi_info *h = fabric_dupinfo(NULL);

	if (!h)
		return NULL;
	h->caps = caps;
	h->mode = mode;
	h->ep_attr->type = FI_EP_RDM;
	h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				  FI_MR_ALLOCATED | FI_MR_PROV_KEY |
				  FI_MR_ENDPOINT;
	h->domain_attr->threading = threading;
	h->fabric_attr->prov_name = strdup(prov);
	if (!h->fabric_attr->prov_name) {
		fabric_freeinfo(h);
		return NULL;
	}
	return h;
}

int fabric_load(char *err, size_t errlen)
{
	pthread_once(&once, load);
	if (!failure[0])
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s", failure);
	return -ENOENT;
}
