/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network namespaces by name or path. Our tools enter the node namespace with setns()
 * themselves instead of running under `ip netns exec`, which remounts /sys and so hides the
 * bpffs pins. setns() changes only the calling thread: call zm_netns_enter() first thing in
 * main(), before any thread or socket exists.
 */
#ifndef ZMESH_COMMON_NETNS_H
#define ZMESH_COMMON_NETNS_H

#include <stddef.h>

/*
 * A bare name (no '/') means /var/run/netns/NAME (what `ip netns add` creates); anything with
 * a '/' is taken as a path (/proc/PID/ns/net). Returns 0 or -ENAMETOOLONG/-EINVAL.
 */
int zm_netns_resolve(const char *name_or_path, char *path, size_t len);

/* 0 when path names a network namespace, else -errno with a sentence in err. */
int zm_netns_check(const char *path, char *err, size_t err_len);

/* Move the calling thread into the namespace. 0 or -errno with a sentence in err. */
int zm_netns_enter(const char *name_or_path, char *err, size_t err_len);

#endif
