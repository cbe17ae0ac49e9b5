// SPDX-License-Identifier: Apache-2.0
/*
 * Our XDP policy program (zm_policy_xdp) on node uplinks, through the netlink XDP API
 * (bpf_xdp_attach), so the attachment outlives the loader like the tc filter does; the program
 * itself is pinned as ZM_PIN_PROG_POLICY_XDP. An interface has one XDP program per mode and
 * the kernel refuses generic and native at once, so we own the slot only when the program in
 * it is ours (recognized by its name, ZM_XDP_PROG_NAME): someone else's program is never
 * replaced or detached, and every replace or detach names the program it expects
 * (XDP_FLAGS_REPLACE + old_prog_fd), so a racing change by someone else makes ours fail
 * instead of clobbering theirs.
 */
#include "internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const dp_xdp_mode_names[] = {
    [ZM_DP_XDP_OFF] = "off",
    [ZM_DP_XDP_GENERIC] = "generic",
    [ZM_DP_XDP_NATIVE] = "native",
};

const char *zm_dp_xdp_mode_name(enum zm_dp_xdp_mode mode)
{
	return (unsigned int)mode <= ZM_DP_XDP_NATIVE ? dp_xdp_mode_names[mode] : "?";
}

int zm_dp_xdp_mode_parse(const char *s, enum zm_dp_xdp_mode *mode)
{
	for (unsigned int m = ZM_DP_XDP_OFF; m <= ZM_DP_XDP_NATIVE; m++) {
		if (!strcmp(s, dp_xdp_mode_names[m])) {
			*mode = (enum zm_dp_xdp_mode)m;
			return 0;
		}
	}
	return -EINVAL;
}

static __u32 dp_xdp_flags(enum zm_dp_xdp_mode mode)
{
	return mode == ZM_DP_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
}

/* An fd on program id when it is ours (by name), else -1. */
static int dp_xdp_prog_ours(__u32 id)
{
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(pi);
	int fd;

	if (!id)
		return -1;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &pi, &len) || strcmp(pi.name, ZM_XDP_PROG_NAME)) {
		close(fd);
		return -1;
	}
	return fd;
}

int dp_xdp_query(int ifindex, struct dp_xdp_state *st)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int fd, err;

	memset(st, 0, sizeof(*st));
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err)
		return err;
	st->drv_id = q.drv_prog_id;
	st->skb_id = q.skb_prog_id;
	fd = dp_xdp_prog_ours(q.drv_prog_id);
	if (fd >= 0) {
		close(fd);
		st->ours = ZM_DP_XDP_NATIVE;
		st->ours_id = q.drv_prog_id;
		return 0;
	}
	fd = dp_xdp_prog_ours(q.skb_prog_id);
	if (fd >= 0) {
		close(fd);
		st->ours = ZM_DP_XDP_GENERIC;
		st->ours_id = q.skb_prog_id;
	}
	return 0;
}

/* Detach our program from one interface, naming it so nobody else's goes. */
int dp_xdp_detach(struct zm_dp *dp, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	char ifname[IF_NAMESIZE] = "?";
	struct dp_xdp_state st;
	int err;

	if (dp_xdp_query(ifindex, &st) || st.ours == ZM_DP_XDP_OFF)
		return 0; /* interface gone or nothing of ours: the goal is reached */
	ao.old_prog_fd = bpf_prog_get_fd_by_id(st.ours_id);
	if (ao.old_prog_fd < 0)
		return 0; /* replaced and freed since the query */
	err = bpf_xdp_detach(ifindex, dp_xdp_flags(st.ours) | XDP_FLAGS_REPLACE, &ao);
	close(ao.old_prog_fd);
	if (err && err != -EEXIST && err != -ENODEV) {
		if_indextoname((unsigned int)ifindex, ifname);
		return dp_errf(dp, err, "detaching the XDP policy program from %s failed: %s",
			       ifname, strerror(-err));
	}
	return 0;
}

/*
 * Attach prog_fd in mode on one interface: replace ours in the same mode atomically, move
 * ours from the other mode (a short window without XDP, during which tc still enforces),
 * refuse when another program holds XDP on the interface.
 */
int dp_xdp_attach(struct zm_dp *dp, int ifindex, int prog_fd, enum zm_dp_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	char ifname[IF_NAMESIZE] = "?";
	struct dp_xdp_state st;
	__u32 flags = dp_xdp_flags(mode);
	int err;

	if_indextoname((unsigned int)ifindex, ifname);
	err = dp_xdp_query(ifindex, &st);
	if (err)
		return dp_errf(dp, err, "querying XDP on %s failed: %s", ifname, strerror(-err));
	if (st.ours != ZM_DP_XDP_OFF && st.ours != mode) {
		err = dp_xdp_detach(dp, ifindex) ?: dp_xdp_query(ifindex, &st);
		if (err)
			return err;
	}
	if (st.ours == ZM_DP_XDP_OFF && (st.drv_id || st.skb_id))
		return dp_errf(dp, -EBUSY,
			       "%s already runs another XDP program (id %u): not replacing it; "
			       "load with --xdp off or remove that program",
			       ifname, st.drv_id ?: st.skb_id);
	if (st.ours == mode) {
		ao.old_prog_fd = bpf_prog_get_fd_by_id(st.ours_id);
		if (ao.old_prog_fd < 0)
			return dp_errf(dp, -errno, "opening our XDP program on %s failed: %s",
				       ifname, strerror(errno));
		err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_REPLACE, &ao);
		close(ao.old_prog_fd);
	} else {
		err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	}
	if (err)
		return dp_errf(dp, err,
			       "attaching the XDP policy program to %s (%s mode) failed: %s",
			       ifname, zm_dp_xdp_mode_name(mode), strerror(-err));
	return 0;
}

int dp_xdp_scan(struct zm_dp_iface *out, size_t max)
{
	struct if_nameindex *ifs, *i;
	struct dp_xdp_state st;
	size_t n = 0;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index && n < max; i++) {
		if (dp_xdp_query((int)i->if_index, &st) || st.ours == ZM_DP_XDP_OFF)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].ifname, sizeof(out[n].ifname), "%s", i->if_name);
		out[n].ifindex = (int)i->if_index;
		out[n].xdp = st.ours;
		out[n].xdp_prog_id = st.ours_id;
		n++;
	}
	if_freenameindex(ifs);
	return (int)n;
}
