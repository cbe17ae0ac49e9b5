// SPDX-License-Identifier: Apache-2.0
/*
 * Network namespace lookup and entry by setns(2). A namespace file is recognised by its
 * filesystem (nsfs) and, where the kernel supports NS_GET_NSTYPE, by its type, so a typo that
 * names an ordinary file or another kind of namespace is refused with a clear message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int zm_netns_resolve(const char *name_or_path, char *path, size_t len)
{
	int n;

	if (!name_or_path || !*name_or_path || !strcmp(name_or_path, ".") ||
	    !strcmp(name_or_path, ".."))
		return -EINVAL;
	if (strchr(name_or_path, '/'))
		n = snprintf(path, len, "%s", name_or_path);
	else
		n = snprintf(path, len, "/var/run/netns/%s", name_or_path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int zm_netns_open(const char *path, char *err, size_t err_len)
{
	struct statfs sfs;
	int fd, type, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		snprintf(err, err_len, "network namespace %s: %s", path, strerror(-e));
		return e;
	}
	if (fstatfs(fd, &sfs) < 0 || (unsigned long)sfs.f_type != NSFS_MAGIC) {
		close(fd);
		snprintf(err, err_len,
			 "%s is not a namespace file (expected /var/run/netns/NAME "
			 "or /proc/PID/ns/net)",
			 path);
		return -EINVAL;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type >= 0 && type != CLONE_NEWNET) {
		close(fd);
		snprintf(err, err_len, "%s is not a network namespace", path);
		return -EINVAL;
	}
	return fd;
}

int zm_netns_check(const char *path, char *err, size_t err_len)
{
	int fd = zm_netns_open(path, err, err_len);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int zm_netns_enter(const char *name_or_path, char *err, size_t err_len)
{
	char path[256];
	int fd, e;

	if (zm_netns_resolve(name_or_path, path, sizeof(path))) {
		snprintf(err, err_len, "bad network namespace name %s", name_or_path ?: "(null)");
		return -EINVAL;
	}
	fd = zm_netns_open(path, err, err_len);
	if (fd < 0)
		return fd;
	if (setns(fd, CLONE_NEWNET) < 0) {
		e = -errno;
		close(fd);
		snprintf(err, err_len, "setns(%s) failed: %s", path, strerror(-e));
		return e;
	}
	close(fd);
	return 0;
}
