/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, opened with dlopen() when the first Kubernetes client starts instead of being a
 * link-time dependency. libcurl.so.4 brings about 20 libraries (GnuTLS through librtmp,
 * Kerberos, LDAP, libssh2...) whose relocations and constructors cost every process that maps
 * them ~4 MiB of RSS at start (measured on Debian 12: a program linked with our libraries
 * starts at 8.0 MiB with libcurl, 4.1 MiB without), while a daemon fed by a file or by xDS
 * never makes an HTTP request through it. Only lib/kube calls libcurl, always through
 * zm_curl, after zm_curl_open() succeeded.
 */
#ifndef ZMESH_KUBE_LIBCURL_H
#define ZMESH_KUBE_LIBCURL_H

#include <curl/curl.h>
#include <stddef.h>

/* The libcurl functions lib/kube calls, each with the prototype of <curl/curl.h>. */
struct zm_curl_api {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_easy_escape) *easy_escape;
	__typeof__(curl_free) *free;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_multi_init) *multi_init;
	__typeof__(curl_multi_setopt) *multi_setopt;
	__typeof__(curl_multi_add_handle) *multi_add_handle;
	__typeof__(curl_multi_remove_handle) *multi_remove_handle;
	__typeof__(curl_multi_poll) *multi_poll;
	__typeof__(curl_multi_perform) *multi_perform;
	__typeof__(curl_multi_info_read) *multi_info_read;
	__typeof__(curl_multi_cleanup) *multi_cleanup;
};

/* Filled by zm_curl_open(); read-only afterwards. */
extern struct zm_curl_api zm_curl;

/*
 * Loads libcurl.so.4 and resolves every function of struct zm_curl_api, once per process
 * (thread-safe; later calls return the first outcome), then runs curl_global_init().
 * Returns 0, or -ENOENT with the loader's reason in err (library missing, symbol absent),
 * or -EIO when curl_global_init() fails. libcurl is never unloaded.
 */
int zm_curl_open(char *err, size_t len);

#endif
