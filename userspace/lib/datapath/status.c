// SPDX-License-Identifier: Apache-2.0
/*
 * Unload and status of the datapath. Unload removes, in this order, our tc filters (found by
 * our priority and handle on every interface of the node namespace), our XDP policy program
 * (found by name on every interface), the sockops cgroup
 * links, the policy route and every pin; it works whatever ABI version is pinned, because
 * unloading an old datapath is the way to migrate. The pin directory itself stays: removing
 * it under a loader that waits on its flock would make that loader pin into a dead directory.
 */
#include "internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int dp_pins_remove(struct zm_dp *dp)
{
	char path[ZM_DP_PATH_MAX + 300];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(dp->pin_dir);
	if (!d)
		return errno == ENOENT ? 0
				       : dp_errf(dp, -errno, "opendir(%s) failed: %s", dp->pin_dir,
						 strerror(errno));
	/* Links first: unpinning a link detaches it from its cgroup. */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(d);
		while ((de = readdir(d))) {
			bool link = !strncmp(de->d_name, "link_", 5);

			if (de->d_name[0] == '.' || de->d_type == DT_DIR || link != (pass == 0))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, de->d_name);
			if (unlink(path) < 0 && errno != ENOENT && !err)
				err = dp_errf(dp, -errno, "removing pin %s failed: %s", path,
					      strerror(errno));
		}
	}
	closedir(d);
	return err;
}

int dp_teardown_locked(struct zm_dp *dp)
{
	static struct zm_dp_iface ifs[ZM_DP_MAX_IFACES];
	int cnt, err, first = 0;

	cnt = dp_tc_scan(ifs, ZM_DP_MAX_IFACES);
	for (int i = 0; i < cnt; i++) {
		err = dp_tc_detach(dp, ifs[i].ifindex);
		first = first ?: err;
	}
	cnt = dp_xdp_scan(ifs, ZM_DP_MAX_IFACES);
	for (int i = 0; i < cnt; i++) {
		err = dp_xdp_detach(dp, ifs[i].ifindex);
		first = first ?: err;
	}
	err = dp_pins_remove(dp);
	first = first ?: err;
	err = dp_route_del(dp);
	first = first ?: err;
	return first;
}

static bool dp_pin_exists(struct zm_dp *dp, const char *name)
{
	char path[ZM_DP_PATH_MAX + 32];
	struct stat st;

	return !dp_pin_path(dp, name, path, sizeof(path)) && !stat(path, &st);
}

int zm_dp_unload(struct zm_dp *dp)
{
	struct stat st;
	int err;

	if (stat(dp->pin_dir, &st) < 0 ||
	    (!dp_pin_exists(dp, ZM_STR(ZM_MAP_META)) && !dp_pin_exists(dp, ZM_PIN_PROG_CAPTURE))) {
		/* Say "bpffs is not mounted" rather than "nothing loaded" when that is why. */
		err = dp_lock(dp);
		if (err)
			return err;
		dp_unlock(dp);
		return dp_errf(dp, -ENOENT, "nothing is loaded in %s: no %s or %s pin", dp->pin_dir,
			       ZM_STR(ZM_MAP_META), ZM_PIN_PROG_CAPTURE);
	}
	err = dp_lock(dp);
	if (err)
		return err;
	err = dp_teardown_locked(dp);
	dp_unlock(dp);
	return err;
}

static void dp_pin_describe(struct zm_dp *dp, struct zm_dp_pin *p)
{
	char path[ZM_DP_PATH_MAX + 300];
	const char *t = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, p->name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	if (!strcmp(p->kind, "map")) {
		struct bpf_map_info mi = {};
		__u32 len = sizeof(mi);

		if (!bpf_obj_get_info_by_fd(fd, &mi, &len)) {
			p->id = mi.id;
			p->key_size = mi.key_size;
			p->value_size = mi.value_size;
			p->max_entries = mi.max_entries;
			t = libbpf_bpf_map_type_str(mi.type);
		}
	} else if (!strcmp(p->kind, "prog")) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);

		if (!bpf_obj_get_info_by_fd(fd, &pi, &len)) {
			p->id = pi.id;
			t = libbpf_bpf_prog_type_str(pi.type);
		}
	} else if (!strcmp(p->kind, "link")) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);

		if (!bpf_obj_get_info_by_fd(fd, &li, &len)) {
			p->id = li.id;
			t = libbpf_bpf_link_type_str(li.type);
		}
	}
	snprintf(p->type, sizeof(p->type), "%s", t ?: "?");
	close(fd);
}

static void dp_pins_list(struct zm_dp *dp, struct zm_dp_status *st)
{
	struct dirent *de;
	DIR *d;

	d = opendir(dp->pin_dir);
	if (!d)
		return;
	while ((de = readdir(d)) && st->n_pins < ZM_DP_MAX_PINS) {
		struct zm_dp_pin *p = &st->pins[st->n_pins];

		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len >= sizeof(p->name))
			continue; /* not a name we ever pin */
		memset(p, 0, sizeof(*p));
		memcpy(p->name, de->d_name, len + 1);
		snprintf(p->kind, sizeof(p->kind), "%s",
			 !strncmp(p->name, "zm_", 3)	 ? "map"
			 : !strncmp(p->name, "prog_", 5) ? "prog"
			 : !strncmp(p->name, "link_", 5) ? "link"
							 : "other");
		dp_pin_describe(dp, p);
		st->n_pins++;
	}
	closedir(d);
}

/* Fill the XDP mode of interfaces with our tc filter; add those with only our XDP program. */
static void dp_status_add_xdp(struct zm_dp_status *st)
{
	static struct zm_dp_iface xs[ZM_DP_MAX_IFACES];
	int cnt = dp_xdp_scan(xs, ZM_DP_MAX_IFACES);
	size_t j;

	for (int i = 0; i < cnt; i++) {
		for (j = 0; j < st->n_ifaces; j++)
			if (st->ifaces[j].ifindex == xs[i].ifindex)
				break;
		if (j == st->n_ifaces) {
			if (j == ZM_DP_MAX_IFACES)
				continue;
			st->ifaces[st->n_ifaces++] = xs[i];
			continue;
		}
		st->ifaces[j].xdp = xs[i].xdp;
		st->ifaces[j].xdp_prog_id = xs[i].xdp_prog_id;
	}
}

int zm_dp_status(struct zm_dp *dp, struct zm_dp_status *st)
{
	struct zm_meta meta;
	int err, cnt;

	memset(st, 0, sizeof(*st));
	err = dp_meta_read(dp, &meta);
	if (!err) {
		st->loaded = true;
		st->abi_version = meta.abi_version;
		st->loaded_at = meta.loaded_at;
	} else if (err != -ENOENT && err != -EPROTO) {
		return err;
	} else if (err == -EPROTO) {
		st->loaded = true; /* something is pinned, just not our layout */
	}
	dp->err[0] = '\0';
	dp_pins_list(dp, st);
	cnt = dp_tc_scan(st->ifaces, ZM_DP_MAX_IFACES);
	if (cnt < 0)
		return dp_errf(dp, cnt, "listing interfaces failed: %s", strerror(-cnt));
	st->n_ifaces = (size_t)cnt;
	dp_status_add_xdp(st);
	return dp_route_query(dp, &st->route);
}
