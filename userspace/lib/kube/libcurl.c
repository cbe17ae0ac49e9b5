// SPDX-License-Identifier: Apache-2.0
/*
 * Opens libcurl on demand (why: libcurl.h) and fills zm_curl from it. The first caller does
 * the work under pthread_once; its outcome, message included, is what every caller gets.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "common/errf.h"
#include "kube/libcurl.h"

#define ZM_CURL_SONAME "libcurl.so.4"

struct zm_curl_api zm_curl;

static pthread_once_t zm_curl_once = PTHREAD_ONCE_INIT;
static int zm_curl_ret;
static char zm_curl_err[512];

/* One symbol into *slot; 0 or -ENOENT with the reason in zm_curl_err. */
static int zm_curl_sym(void *lib, const char *name, void *slot)
{
	void *p = dlsym(lib, name);

	if (!p) {
		snprintf(zm_curl_err, sizeof(zm_curl_err), "%s has no %s: %s", ZM_CURL_SONAME, name,
			 dlerror());
		return -ENOENT;
	}
	/* POSIX (dlsym) guarantees a data pointer can carry a function's address. */
	*(void **)slot = p;
	return 0;
}

static void zm_curl_load(void)
{
	static const struct {
		const char *name;
		size_t off;
	} syms[] = {
#define ZM_CURL_SYM(f) {"curl_" #f, offsetof(struct zm_curl_api, f)}
	    ZM_CURL_SYM(global_init),
	    ZM_CURL_SYM(easy_init),
	    ZM_CURL_SYM(easy_setopt),
	    ZM_CURL_SYM(easy_getinfo),
	    ZM_CURL_SYM(easy_perform),
	    ZM_CURL_SYM(easy_cleanup),
	    ZM_CURL_SYM(easy_strerror),
	    ZM_CURL_SYM(easy_escape),
	    ZM_CURL_SYM(free),
	    ZM_CURL_SYM(slist_append),
	    ZM_CURL_SYM(slist_free_all),
	    ZM_CURL_SYM(multi_init),
	    ZM_CURL_SYM(multi_setopt),
	    ZM_CURL_SYM(multi_add_handle),
	    ZM_CURL_SYM(multi_remove_handle),
	    ZM_CURL_SYM(multi_poll),
	    ZM_CURL_SYM(multi_perform),
	    ZM_CURL_SYM(multi_info_read),
	    ZM_CURL_SYM(multi_cleanup),
#undef ZM_CURL_SYM
	};
	struct zm_curl_api api;
	void *lib = dlopen(ZM_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	size_t i;

	if (!lib) {
		snprintf(zm_curl_err, sizeof(zm_curl_err),
			 "the Kubernetes API needs %s (Debian package libcurl4): %s",
			 ZM_CURL_SONAME, dlerror());
		zm_curl_ret = -ENOENT;
		return;
	}
	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		zm_curl_ret = zm_curl_sym(lib, syms[i].name, (char *)&api + syms[i].off);
		if (zm_curl_ret)
			return; /* lib stays loaded: a half-resolved table is never published */
	}
	if (api.global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(zm_curl_err, sizeof(zm_curl_err), "libcurl would not initialise");
		zm_curl_ret = -EIO;
		return;
	}
	zm_curl = api;
}

int zm_curl_open(char *err, size_t len)
{
	pthread_once(&zm_curl_once, zm_curl_load);
	if (zm_curl_ret)
		return zm_errf(err, len, zm_curl_ret, "%s", zm_curl_err);
	return 0;
}
