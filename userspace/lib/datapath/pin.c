// SPDX-License-Identifier: Apache-2.0
/*
 * The pin directory: where maps (pinned by name by libbpf), programs and sockops cgroup links
 * live so the datapath survives the process that loaded it. Owns the bpffs check, the
 * exclusive flock that serialises loads, unloads and enrollments (readers take none), opening
 * pinned maps with a size check, and reading the zm_meta ABI record.
 */
#include "internal.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

int dp_errf(struct zm_dp *dp, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dp->err, sizeof(dp->err), fmt, ap);
	va_end(ap);
	return err;
}

void zm_dp_init(struct zm_dp *dp, const char *pin_dir)
{
	memset(dp, 0, sizeof(*dp));
	dp->lock_fd = -1;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s",
		 pin_dir && *pin_dir ? pin_dir : ZM_PIN_DIR_DEFAULT);
	/* "a/b/" and "a/b" must name the same pins: libbpf joins with '/'. */
	for (size_t n = strlen(dp->pin_dir); n > 1 && dp->pin_dir[n - 1] == '/'; n--)
		dp->pin_dir[n - 1] = '\0';
}

void zm_dp_close(struct zm_dp *dp)
{
	dp_unlock(dp);
}

int dp_pin_path(struct zm_dp *dp, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", dp->pin_dir, name);

	if (n < 0 || (size_t)n >= len)
		return dp_errf(dp, -ENAMETOOLONG, "pin path %s/%s is too long", dp->pin_dir, name);
	return 0;
}

/*
 * Walk up from the pin directory to the first path that exists and require it to be on
 * bpffs: pinning into a plain directory fails with a confusing EPERM deep inside libbpf.
 */
static int dp_pin_dir_check(struct zm_dp *dp)
{
	char path[ZM_DP_PATH_MAX];
	struct statfs sfs;
	char *slash;

	if (strlen(dp->pin_dir) >= sizeof(path) - 32 || dp->pin_dir[0] != '/')
		return dp_errf(dp, -EINVAL,
			       "pin directory %s must be an absolute path under %d chars",
			       dp->pin_dir, (int)sizeof(path) - 32);
	strcpy(path, dp->pin_dir);
	while (statfs(path, &sfs) < 0) {
		if (errno != ENOENT)
			return dp_errf(dp, -errno, "statfs(%s) failed: %s", path, strerror(errno));
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			strcpy(path, "/");
		else
			*slash = '\0';
	}
	if ((unsigned long)sfs.f_type != BPF_FS_MAGIC)
		return dp_errf(dp, -ENODEV,
			       "%s is not on a bpf filesystem, so %s cannot hold pins: mount one "
			       "first (mount -t bpf bpf %s)",
			       path, dp->pin_dir, strcmp(path, "/") ? path : "/sys/fs/bpf");
	return 0;
}

static int dp_mkdir_p(struct zm_dp *dp)
{
	char path[ZM_DP_PATH_MAX];

	strcpy(path, dp->pin_dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return dp_errf(dp, -errno, "mkdir(%s) failed: %s", path, strerror(errno));
		*p = c;
		if (!c)
			return 0;
	}
}

int dp_lock(struct zm_dp *dp)
{
	int err, fd;

	if (dp->lock_fd >= 0)
		return 0;
	err = dp_pin_dir_check(dp);
	if (err)
		return err;
	err = dp_mkdir_p(dp);
	if (err)
		return err;
	fd = open(dp->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return dp_errf(dp, -errno, "open(%s) failed: %s", dp->pin_dir, strerror(errno));
	/* Blocking: a concurrent load finishes in well under a second. */
	if (flock(fd, LOCK_EX) < 0) {
		err = -errno;
		close(fd);
		return dp_errf(dp, err, "flock(%s) failed: %s", dp->pin_dir, strerror(-err));
	}
	dp->lock_fd = fd;
	return 0;
}

void dp_unlock(struct zm_dp *dp)
{
	if (dp->lock_fd < 0)
		return;
	flock(dp->lock_fd, LOCK_UN);
	close(dp->lock_fd);
	dp->lock_fd = -1;
}

int dp_map_open(struct zm_dp *dp, const char *name, __u32 key_size, __u32 value_size)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[ZM_DP_PATH_MAX + 32];
	int fd, err;

	err = dp_pin_path(dp, name, path, sizeof(path));
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return dp_errf(dp, err,
				       "map %s is not pinned in %s: is the datapath loaded "
				       "(zmeshctl datapath load)?",
				       name, dp->pin_dir);
		return dp_errf(dp, err, "opening pinned map %s failed: %s", path, strerror(-err));
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		err = -errno;
		close(fd);
		return dp_errf(dp, err, "%s is not a BPF map: %s", path, strerror(-err));
	}
	if ((key_size && info.key_size != key_size) ||
	    (value_size && info.value_size != value_size)) {
		close(fd);
		return dp_errf(dp, -EPROTO,
			       "pinned map %s has key/value size %u/%u, this build "
			       "expects %u/%u: ABI mismatch",
			       path, info.key_size, info.value_size, key_size, value_size);
	}
	return fd;
}

int zm_dp_check(struct zm_dp *dp)
{
	return dp_abi_check(dp, false);
}

int dp_abi_check(struct zm_dp *dp, bool reading)
{
	struct zm_meta meta;
	int err = dp_meta_read(dp, &meta);

	if (err || meta.abi_version == ZM_ABI_VERSION || (reading && dp->force))
		return err;
	return dp_errf(dp, -EPROTO,
		       "the datapath pinned in %s has ABI version %u, this build has %u: its maps "
		       "may not mean what this build %s; use the matching zmeshctl, or unload and "
		       "load it again%s",
		       dp->pin_dir, meta.abi_version, ZM_ABI_VERSION,
		       reading ? "would print" : "would write",
		       reading ? " (--force reads it anyway)" : "");
}

int dp_meta_read(struct zm_dp *dp, struct zm_meta *meta)
{
	__u32 key = 0;
	int fd, err = 0;

	memset(meta, 0, sizeof(*meta));
	fd = dp_map_open(dp, ZM_STR(ZM_MAP_META), sizeof(key), sizeof(*meta));
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &key, meta) < 0)
		err = dp_errf(dp, -errno, "reading %s/%s failed: %s", dp->pin_dir,
			      ZM_STR(ZM_MAP_META), strerror(errno));
	close(fd);
	return err;
}
