// SPDX-License-Identifier: Apache-2.0
/*
 * Enrollment of pod addresses: our tc filter on the pod's host-side veth, one zm_workloads
 * entry (what the capture program reads) and one zm_wl_info entry (what zmeshctl prints) per
 * address, and optionally a sockops link on the pod's cgroup, pinned as
 * ZM_PIN_LINK_SOCKOPS_FMT. All checks run before the first change, so a refused enrollment
 * leaves the datapath exactly as it was. Runs under the pin directory lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include "common/addr.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

struct dp_maps {
	int wl;	  /* zm_workloads */
	int info; /* zm_wl_info */
};

static void dp_maps_close(struct dp_maps *m)
{
	if (m->wl >= 0)
		close(m->wl);
	if (m->info >= 0)
		close(m->info);
}

/* Lock-holder's view of a loaded datapath of our ABI, with both workload maps open. */
static int dp_maps_open(struct zm_dp *dp, struct dp_maps *m)
{
	int err;

	m->wl = m->info = -1;
	err = dp_abi_check(dp, false);
	if (err)
		return err;
	m->wl = dp_map_open(dp, ZM_STR(ZM_MAP_WORKLOADS), sizeof(struct zm_addr),
			    sizeof(struct zm_workload));
	if (m->wl < 0)
		return m->wl;
	m->info = dp_map_open(dp, ZM_STR(ZM_MAP_WL_INFO), sizeof(struct zm_addr),
			      sizeof(struct zm_workload_info));
	if (m->info < 0)
		return m->info;
	return 0;
}

/* cgroup v2 id of a directory (the kernfs node id the BPF helpers report), 0 on error. */
static int dp_cgroup_open(struct zm_dp *dp, const char *path, int *fd, __u64 *id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = {.fh.handle_bytes = sizeof(__u64)};
	struct statfs sfs;
	int mount_id;

	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return dp_errf(dp, -errno, "cgroup %s: %s", path, strerror(errno));
	if (fstatfs(*fd, &sfs) < 0 || (unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC)
		return dp_errf(dp, -EINVAL, "%s is not a cgroup v2 directory", path);
	if (name_to_handle_at(*fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return dp_errf(dp, -errno, "reading the id of cgroup %s failed: %s", path,
			       strerror(errno));
	memcpy(id, h.fh.f_handle, sizeof(*id));
	/* The root cgroup (id 1) would capture telemetry of every socket on the machine. */
	if (*id == 1)
		return dp_errf(dp, -EPERM, "refusing to attach sockops to the root cgroup %s",
			       path);
	return 0;
}

/* Attach sockops to the cgroup and pin the link, unless a pinned link already exists. */
static int dp_sockops_link(struct zm_dp *dp, int cg_fd, __u64 cg_id)
{
	char name[64], path[ZM_DP_PATH_MAX + 64];
	struct stat st;
	int prog, link, err = 0;

	snprintf(name, sizeof(name), ZM_PIN_LINK_SOCKOPS_FMT, (unsigned long long)cg_id);
	err = dp_pin_path(dp, name, path, sizeof(path));
	if (err || !stat(path, &st))
		return err;
	err = dp_pin_path(dp, ZM_PIN_PROG_SOCKOPS, path, sizeof(path));
	if (err)
		return err;
	prog = bpf_obj_get(path);
	if (prog < 0)
		return dp_errf(dp, -errno, "opening %s failed: %s", path, strerror(errno));
	link = bpf_link_create(prog, cg_fd, BPF_CGROUP_SOCK_OPS, NULL);
	if (link < 0) {
		err = dp_errf(dp, -errno, "attaching sockops to cgroup %llu failed: %s",
			      (unsigned long long)cg_id, strerror(errno));
		goto out;
	}
	dp_pin_path(dp, name, path, sizeof(path));
	if (bpf_obj_pin(link, path) < 0)
		err = dp_errf(dp, -errno, "pinning %s failed: %s", path, strerror(errno));
	close(link);
out:
	close(prog);
	return err;
}

static int dp_tc_attach_pinned(struct zm_dp *dp, int ifindex)
{
	char path[ZM_DP_PATH_MAX + 32];
	int prog, err;

	err = dp_pin_path(dp, ZM_PIN_PROG_CAPTURE, path, sizeof(path));
	if (err)
		return err;
	prog = bpf_obj_get(path);
	if (prog < 0)
		return dp_errf(dp, -errno, "opening %s failed: %s", path, strerror(errno));
	err = dp_tc_attach(dp, ifindex, prog);
	close(prog);
	return err;
}

/* Refuse addresses enrolled on another interface; reports the holder by name. */
static int dp_enroll_check(struct zm_dp *dp, struct dp_maps *m, const struct zm_dp_enroll *e,
			   int ifindex)
{
	struct zm_workload_info info;
	struct zm_workload wl;
	char a[ZM_ADDR_STRLEN];

	for (size_t i = 0; i < e->n_addrs; i++) {
		if (e->addrs[i].family != ZM_AF_INET && e->addrs[i].family != ZM_AF_INET6)
			return dp_errf(dp, -EINVAL, "address %zu has no family", i);
		if (bpf_map_lookup_elem(m->wl, &e->addrs[i], &wl) || wl.ifindex == (__u32)ifindex)
			continue;
		memset(&info, 0, sizeof(info));
		bpf_map_lookup_elem(m->info, &e->addrs[i], &info);
		return dp_errf(dp, -EEXIST,
			       "%s is already enrolled on %s (pod %s/%s); unenroll it "
			       "first",
			       zm_addr_format(&e->addrs[i], a, sizeof(a)),
			       info.veth[0] ? info.veth : "another interface",
			       info.namespace[0] ? info.namespace : "-",
			       info.name[0] ? info.name : "-");
	}
	return 0;
}

static int dp_enroll_write(struct zm_dp *dp, struct dp_maps *m, const struct zm_dp_enroll *e,
			   int ifindex, __u64 cg_id)
{
	struct zm_workload wl = {.ifindex = (__u32)ifindex,
				 .cgroup_id = cg_id,
				 .flags = ZM_WL_F_CAPTURE | (e->hbone ? ZM_WL_F_HBONE : 0)};
	struct zm_workload_info info = e->info;
	char a[ZM_ADDR_STRLEN];

	snprintf(info.veth, sizeof(info.veth), "%s", e->veth);
	info.enrolled_at = (__u64)time(NULL);
	for (size_t i = 0; i < e->n_addrs; i++) {
		/* Info first: the capture program acts on zm_workloads, which must be complete. */
		if (bpf_map_update_elem(m->info, &e->addrs[i], &info, BPF_ANY) ||
		    bpf_map_update_elem(m->wl, &e->addrs[i], &wl, BPF_ANY))
			return dp_errf(dp, -errno, "writing %s to the workload maps failed: %s",
				       zm_addr_format(&e->addrs[i], a, sizeof(a)), strerror(errno));
	}
	return 0;
}

int zm_dp_enroll(struct zm_dp *dp, const struct zm_dp_enroll *e)
{
	struct dp_maps m = {-1, -1};
	int ifindex, cg_fd = -1, err;
	__u64 cg_id = 0;

	if (!e->n_addrs || e->n_addrs > ZM_DP_MAX_ADDRS || !e->veth)
		return dp_errf(dp, -EINVAL, "enroll needs 1 to %d addresses and a veth",
			       ZM_DP_MAX_ADDRS);
	ifindex = (int)if_nametoindex(e->veth);
	if (!ifindex)
		return dp_errf(dp, -ENODEV, "interface %s does not exist in the node namespace",
			       e->veth);
	if (e->cgroup_path) {
		err = dp_cgroup_open(dp, e->cgroup_path, &cg_fd, &cg_id);
		if (err)
			goto out;
	}
	err = dp_lock(dp);
	if (err)
		goto out;
	err = dp_maps_open(dp, &m) ?: dp_enroll_check(dp, &m, e, ifindex);
	if (err)
		goto unlock;
	err = dp_tc_attach_pinned(dp, ifindex);
	if (err)
		goto unlock;
	if (cg_fd >= 0)
		err = dp_sockops_link(dp, cg_fd, cg_id);
	if (!err)
		err = dp_enroll_write(dp, &m, e, ifindex, cg_id);
	/*
	 * Refused half-way: the filter stays on the veth. It belongs on every pod's veth
	 * whether or not the pod is enrolled (it captures traffic *to* enrolled pods), and
	 * passes everything else on unchanged.
	 */
unlock:
	dp_maps_close(&m);
	dp_unlock(dp);
out:
	if (cg_fd >= 0)
		close(cg_fd);
	return err;
}

/* Does any enrolled address still use this ifindex or cgroup id (0 matches nothing)? */
static bool dp_wl_in_use(int wl_fd, __u32 ifindex, __u64 cg_id)
{
	struct zm_addr key, next;
	struct zm_workload wl;
	void *prev = NULL;

	while (!bpf_map_get_next_key(wl_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(wl_fd, &key, &wl))
			continue;
		if ((ifindex && wl.ifindex == ifindex) || (cg_id && wl.cgroup_id == cg_id))
			return true;
	}
	return false;
}

/*
 * Undo one address; release the cgroup link once nobody uses it. The veth keeps our filter:
 * the pod may still open connections to enrolled pods, which must be captured (15006).
 */
static void dp_unenroll_one(struct zm_dp *dp, struct dp_maps *m, const struct zm_addr *a,
			    const struct zm_workload *wl)
{
	char name[64], path[ZM_DP_PATH_MAX + 64];

	bpf_map_delete_elem(m->wl, a);
	bpf_map_delete_elem(m->info, a);
	if (wl->cgroup_id && !dp_wl_in_use(m->wl, 0, wl->cgroup_id)) {
		snprintf(name, sizeof(name), ZM_PIN_LINK_SOCKOPS_FMT,
			 (unsigned long long)wl->cgroup_id);
		if (!dp_pin_path(dp, name, path, sizeof(path)))
			unlink(path);
	}
}

static int dp_unenroll_locked(struct zm_dp *dp, struct dp_maps *m, const struct zm_addr *addr,
			      const char *veth, unsigned int *n)
{
	struct zm_workload_info info;
	struct zm_addr key, next;
	struct zm_workload wl;
	__u32 ifindex = veth ? if_nametoindex(veth) : 0;
	void *prev = NULL;

	if (addr) {
		if (bpf_map_lookup_elem(m->wl, addr, &wl))
			return -ENOENT;
		dp_unenroll_one(dp, m, addr, &wl);
		(*n)++;
		return 0;
	}
	/* Match the veth by index, or by name when the pod (and its veth) is already gone. */
	while (!bpf_map_get_next_key(m->wl, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->wl, &key, &wl))
			continue;
		memset(&info, 0, sizeof(info));
		bpf_map_lookup_elem(m->info, &key, &info);
		if ((!ifindex || wl.ifindex != ifindex) &&
		    strncmp(info.veth, veth, sizeof(info.veth)))
			continue;
		dp_unenroll_one(dp, m, &key, &wl);
		(*n)++;
		prev = NULL; /* the walk restarts after a delete */
	}
	return *n ? 0 : -ENOENT;
}

int zm_dp_unenroll(struct zm_dp *dp, const struct zm_addr *addr, const char *veth,
		   unsigned int *n_removed)
{
	struct dp_maps m = {-1, -1};
	char a[ZM_ADDR_STRLEN];
	int err;

	*n_removed = 0;
	if (!addr == !veth)
		return dp_errf(dp, -EINVAL, "unenroll takes an address or a veth, not both");
	err = dp_lock(dp);
	if (err)
		return err;
	err = dp_maps_open(dp, &m);
	if (!err) {
		dp->err[0] = '\0';
		err = dp_unenroll_locked(dp, &m, addr, veth, n_removed);
		if (err == -ENOENT)
			dp_errf(dp, err, "%s%s is not enrolled", addr ? "" : "no address on ",
				addr ? zm_addr_format(addr, a, sizeof(a)) : veth);
		else if (!err && dp->err[0])
			err = -EIO; /* a detach failed: the message says which */
	}
	dp_maps_close(&m);
	dp_unlock(dp);
	return err;
}

/* Attach or detach our filter on one interface of the node, under the lock. */
static int dp_iface_op(struct zm_dp *dp, const char *ifname, bool attach)
{
	struct dp_maps m = {-1, -1};
	int ifindex = ifname ? (int)if_nametoindex(ifname) : 0, err;

	if (!ifindex)
		return dp_errf(dp, -ENODEV, "interface %s does not exist in the node namespace",
			       ifname ? ifname : "(none)");
	err = dp_lock(dp);
	if (err)
		return err;
	dp->err[0] = '\0';
	err = dp_maps_open(dp, &m); /* refuses when nothing (or another ABI) is loaded */
	if (!err)
		err = attach ? dp_tc_attach_pinned(dp, ifindex) : dp_tc_detach(dp, ifindex);
	dp_maps_close(&m);
	dp_unlock(dp);
	return err;
}

int zm_dp_attach(struct zm_dp *dp, const char *ifname)
{
	return dp_iface_op(dp, ifname, true);
}

int zm_dp_detach(struct zm_dp *dp, const char *ifname)
{
	return dp_iface_op(dp, ifname, false);
}
