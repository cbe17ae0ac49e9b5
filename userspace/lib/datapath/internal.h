/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the files of userspace/lib/datapath and by nothing else: error
 * formatting, the pin directory (bpffs check, lock, paths, opening pinned maps), our tc
 * filter, the policy route and the node-address bypass entries.
 */
#ifndef ZMESH_DATAPATH_INTERNAL_H
#define ZMESH_DATAPATH_INTERNAL_H

#include "datapath/datapath.h"

/* Record a message in dp->err and return err (a negative errno), for "return dp_errf(...)". */
int dp_errf(struct zm_dp *dp, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* dp->pin_dir + "/" + name into buf; -ENAMETOOLONG when it does not fit. */
int dp_pin_path(struct zm_dp *dp, const char *name, char *buf, size_t len);

/* Refuse a pin directory outside bpffs, then create it (mkdir -p) and flock it exclusively. */
int dp_lock(struct zm_dp *dp);
void dp_unlock(struct zm_dp *dp);

/*
 * Open the pinned map name and check its key and value sizes (0 skips a check). Returns an fd
 * or -errno (-ENOENT: not pinned) with dp->err set.
 */
int dp_map_open(struct zm_dp *dp, const char *name, __u32 key_size, __u32 value_size);

/* Read zm_meta: 0 and *meta, -ENOENT when not pinned, other -errno when unreadable. */
int dp_meta_read(struct zm_dp *dp, struct zm_meta *meta);
/*
 * 0 when the pinned datapath has our ZM_ABI_VERSION, or when @reading and dp->force is set;
 * else -EPROTO with a message naming both versions (what to do: the matching zmeshctl, or
 * unload and load again).
 */
int dp_abi_check(struct zm_dp *dp, bool reading);

/* Remove tc filters, sockops links, the route and every pin; best effort, first error kept. */
int dp_teardown_locked(struct zm_dp *dp);

/* Our tc filter (clsact ingress, ZM_TC_PRIORITY/ZM_TC_HANDLE) on one interface. */
int dp_tc_attach(struct zm_dp *dp, int ifindex, int prog_fd);
int dp_tc_detach(struct zm_dp *dp, int ifindex);
/* 0 and *prog_id when our filter is present, -ENOENT when not. */
int dp_tc_query(int ifindex, __u32 *prog_id);

/* Every interface of the current namespace that carries our filter; returns the count. */
int dp_tc_scan(struct zm_dp_iface *out, size_t max);

/* Who holds XDP on an interface: the ids per mode and whether one is our policy program. */
struct dp_xdp_state {
	__u32 drv_id, skb_id;	  /* 0 when the mode is free */
	enum zm_dp_xdp_mode ours; /* mode of our program, OFF when neither is ours */
	__u32 ours_id;
};

/* XDP policy program (xdp.c): attach replaces ours only, detach removes ours only. */
int dp_xdp_query(int ifindex, struct dp_xdp_state *st);
int dp_xdp_attach(struct zm_dp *dp, int ifindex, int prog_fd, enum zm_dp_xdp_mode mode);
int dp_xdp_detach(struct zm_dp *dp, int ifindex);
/* Every interface with our XDP program (xdp, xdp_prog_id set); returns the count. */
int dp_xdp_scan(struct zm_dp_iface *out, size_t max);

/* The bpf/README.md policy rule and local route, both families; add and del are idempotent. */
int dp_route_add(struct zm_dp *dp);
int dp_route_del(struct zm_dp *dp);
int dp_route_query(struct zm_dp *dp, struct zm_dp_route_state *st);

/* Put every address of the namespace into zm_bypass as ZM_BYPASS_NODE_ADDR; drop stale ones. */
int dp_node_addrs_sync(struct zm_dp *dp, int bypass_fd, unsigned int *n_addrs);

#endif
