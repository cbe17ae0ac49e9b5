/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath library: the only userspace code that opens BPF skeletons or calls libbpf. It
 * loads the capture (tc) and sockops programs, pins maps, programs and cgroup links under one
 * bpffs directory so the datapath outlives whoever loaded it, attaches and detaches only our
 * own tc filter (ZM_TC_PRIORITY/ZM_TC_HANDLE at clsact ingress), installs the policy route of
 * bpf/README.md through rtnetlink, and enrolls pod addresses. Every call runs in the
 * network namespace of the calling thread (enter the node namespace first, zm_netns_enter()).
 *
 * Every function returns 0 or -errno and, on failure, leaves one human-readable sentence in
 * dp->err naming the object and the consequence. Nothing here exits or prints.
 */
#ifndef ZMESH_DATAPATH_H
#define ZMESH_DATAPATH_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "zmesh/abi.h"

#define ZM_DP_PATH_MAX	 256
#define ZM_DP_ERR_LEN	 512
#define ZM_DP_MAX_ADDRS	 16  /* addresses per enroll call */
#define ZM_DP_MAX_PINS	 64  /* entries zm_dp_status() reports */
#define ZM_DP_MAX_IFACES 256 /* interfaces zm_dp_status() reports */

/* A handle on one pin directory. Plain struct: init it, use it, zm_dp_close() it. */
struct zm_dp {
	char pin_dir[ZM_DP_PATH_MAX];
	int lock_fd;		 /* the pin directory while we hold its flock, else -1 */
	char err[ZM_DP_ERR_LEN]; /* last error, "" when none */
	/*
	 * Readers (map walks, stats, policy listings) refuse a datapath pinned by another ABI
	 * version, naming both versions, unless this is set: its maps may not mean what this
	 * build would print. Writers refuse it always.
	 */
	bool force;
};

/* pin_dir NULL or "" selects ZM_PIN_DIR_DEFAULT. Never fails; a too-long path fails later. */
void zm_dp_init(struct zm_dp *dp, const char *pin_dir);
/*
 * A datapath of our ABI is pinned and usable for writes: 0, or -errno with dp->err saying why
 * (nothing pinned, bpffs missing, another ABI version: both named). Reads only zm_meta.
 */
int zm_dp_check(struct zm_dp *dp);
void zm_dp_close(struct zm_dp *dp);

/*
 * XDP policy program on the uplinks. NATIVE is for physical NICs (driver mode): on a veth it
 * works but turns TSO off on the peer (bpf/README.md), so veths want GENERIC or OFF (tc already
 * enforces the same rules there).
 */
enum zm_dp_xdp_mode {
	ZM_DP_XDP_OFF = 0, /* no XDP program; one of ours left on an uplink is detached */
	ZM_DP_XDP_GENERIC, /* XDP_FLAGS_SKB_MODE */
	ZM_DP_XDP_NATIVE,  /* XDP_FLAGS_DRV_MODE */
};

struct zm_dp_load_opts {
	const char *const *uplinks; /* interfaces of the node to capture at ingress too */
	size_t n_uplinks;
	bool fail_open; /* capture program passes instead of dropping when ztunnel is absent */
	enum zm_dp_xdp_mode xdp; /* policy XDP program on the uplinks (default OFF) */
};

struct zm_dp_load_result {
	bool reused;		   /* pins of the same ABI existed: maps (and flows) kept */
	unsigned int n_attached;   /* interfaces whose tc filter was installed or replaced */
	unsigned int n_links;	   /* sockops cgroup links moved to the new program */
	unsigned int n_node_addrs; /* node addresses written to zm_bypass */
	unsigned int n_xdp;	   /* uplinks whose XDP policy program was attached or replaced */
};

/*
 * Load or reload the datapath. Takes the pin directory lock. Pins absent: fresh install.
 * zm_meta with our ZM_ABI_VERSION: reuse every pinned map, load new programs, replace the tc
 * filter on every interface that has ours (BPF_TC_F_REPLACE, same prio/handle) and move the
 * sockops links to the new program. Another ABI version: -EPROTO, nothing touched.
 */
int zm_dp_load(struct zm_dp *dp, const struct zm_dp_load_opts *opts, struct zm_dp_load_result *res);

/*
 * Remove everything zm_dp_load() and zm_dp_enroll() created: our tc filters, sockops links,
 * the policy route, every pin. -ENOENT with a message when nothing is loaded.
 */
int zm_dp_unload(struct zm_dp *dp);

/* One entry of the pin directory. */
struct zm_dp_pin {
	char name[64];
	char kind[8];	   /* "map", "prog", "link" or "other" */
	__u32 id;	   /* kernel object id, 0 when it could not be opened */
	char type[24];	   /* map or program type name as libbpf spells it */
	__u32 key_size;	   /* maps only */
	__u32 value_size;  /* maps only */
	__u32 max_entries; /* maps only */
};

/* An interface of the node namespace that carries our tc filter. */
struct zm_dp_iface {
	char ifname[ZM_IFNAME_LEN];
	int ifindex;
	__u32 prog_id;		 /* our tc filter's program, 0 when absent */
	enum zm_dp_xdp_mode xdp; /* our XDP program's mode, OFF when absent */
	__u32 xdp_prog_id;
};

struct zm_dp_route_state {
	bool rule4, route4, rule6, route6;
};

struct zm_dp_status {
	bool loaded;	   /* zm_meta is pinned */
	__u32 abi_version; /* from zm_meta, 0 when not loaded */
	__u64 loaded_at;
	struct zm_dp_pin pins[ZM_DP_MAX_PINS];
	size_t n_pins;
	struct zm_dp_iface ifaces[ZM_DP_MAX_IFACES];
	size_t n_ifaces;
	struct zm_dp_route_state route;
};

/* Read-only view; takes no lock. Succeeds (loaded = false) when nothing is pinned. */
int zm_dp_status(struct zm_dp *dp, struct zm_dp_status *st);

struct zm_dp_enroll {
	struct zm_addr addrs[ZM_DP_MAX_ADDRS];
	size_t n_addrs;
	const char *veth;	      /* host-side interface in the node namespace */
	const char *cgroup_path;      /* pod cgroup v2 directory for sockops, NULL for none */
	bool hbone;		      /* the pod speaks HBONE (ZM_WL_F_HBONE) */
	struct zm_workload_info info; /* identity fields; veth, enrolled_at set by the library */
};

/*
 * Enroll a pod's addresses. Refuses (nothing changed): datapath not loaded, unknown veth, an
 * address already enrolled on another veth (-EEXIST), a cgroup path that is not a cgroup v2
 * directory. Enrolling an address again on the same veth updates it.
 */
int zm_dp_enroll(struct zm_dp *dp, const struct zm_dp_enroll *e);

/*
 * Unenroll one address (addr != NULL) or every address of a veth (veth != NULL). Detaches a
 * sockops link when no enrolled address uses its cgroup any more. The veth keeps its tc
 * filter (see zm_dp_attach). *n_removed counts addresses removed; -ENOENT when none.
 */
int zm_dp_unenroll(struct zm_dp *dp, const struct zm_addr *addr, const char *veth,
		   unsigned int *n_removed);

/*
 * Attach our capture filter at clsact ingress of a node interface (idempotent: replaces our
 * own filter in place), or detach it. Every pod's host-side veth needs it, enrolled or not:
 * a non-enrolled pod's connections to an enrolled pod are captured there (to 15006). A CNI
 * plugin calls attach when it creates a pod's veth. Refused when the datapath is not loaded.
 */
int zm_dp_attach(struct zm_dp *dp, const char *ifname);
int zm_dp_detach(struct zm_dp *dp, const char *ifname);

/* Properties of a pinned map, for generic dumps. */
struct zm_dp_map_info {
	__u32 type; /* enum bpf_map_type */
	__u32 key_size;
	__u32 value_size; /* per CPU for per-CPU maps */
	__u32 max_entries;
	__u32 id;
	unsigned int n_values; /* values per key the walk hands over: nr of CPUs or 1 */
};

/*
 * Walk the map pinned as name: cb(key, values, ctx) for every key; values holds n_values
 * values, each rounded up to 8 bytes for per-CPU maps. A negative return from cb stops the
 * walk and is returned. -ENOENT when the map is not pinned.
 */
typedef int (*zm_dp_map_cb)(const void *key, const void *values, const struct zm_dp_map_info *mi,
			    void *ctx);
int zm_dp_map_walk(struct zm_dp *dp, const char *name, zm_dp_map_cb cb, void *ctx,
		   struct zm_dp_map_info *mi);

/*
 * L4 policy fast path (userspace/lib/rbac/README.md, plaintext only). The RBAC compiler turns the
 * part of the policies whose verdict is certain without identity into these rules; the kernel drops
 * a bare plaintext SYN (to an enrolled pod, any port but ztunnel's; 15008 is never looked at) that
 * matches a DROP rule and counts it under rule.policy. Anything that matches nothing, or a
 * DEFER rule, goes on to ztunnel's 15006 as before, where the full evaluation happens.
 *
 * Matching: dst equals the SYN's destination (an enrolled workload address, family taken from
 * it); src/src_prefix contains its source (src_prefix 0 = any source); dst_port equals its
 * port (0 = any port). Among matches, a rule with the exact port beats every any-port rule;
 * among those, the longest src_prefix wins. So a DEFER rule carves an exception out of a
 * wider DROP (e.g. "drop all but 198.18.1.0/24"); a compiler emitting a port-specific DEFER
 * must also emit, for that port, the DROPs that still apply there. Two rules with the same
 * (dst, dst_port, src/src_prefix): DROP wins over DEFER, then the first one given.
 */
struct zm_dp_policy_rule {
	char policy[ZM_POLICY_NAME_LEN]; /* "namespace/name"; counters are kept per name */
	struct zm_addr dst;		 /* enrolled destination workload address (exact) */
	struct zm_addr src;		 /* source prefix; family ignored when src_prefix is 0 */
	unsigned int src_prefix;	 /* 0..32 / 0..128; 0 = any source */
	__u16 dst_port;			 /* host byte order; 0 = any port */
	bool defer;			 /* false: DROP; true: exception, leave to ztunnel */
};

/*
 * Replace the whole rule set (n = 0 clears it). Takes the pin directory lock. Builds the new
 * generation beside the live one, flips zm_pol_gen, then removes the old generation: packets
 * see the old set or the new one, never a mix. Policy names present before keep their index
 * and counters; names that disappear are released (their counters with them). -EINVAL (bad
 * prefix, family mismatch, empty name), -E2BIG (more than ZM_MAX_POL_RULES rules or
 * ZM_MAX_POLICIES names), -ENOENT (datapath not loaded): live set unchanged.
 */
int zm_dp_policy_replace(struct zm_dp *dp, const struct zm_dp_policy_rule *rules, size_t n);

/* One policy of the live set with its drop counters, summed over CPUs. */
struct zm_dp_policy_stat {
	char policy[ZM_POLICY_NAME_LEN];
	__u32 index; /* slot in zm_pol_stats / zm_pol_names */
	__u32 n_rules;
	__u64 tc_drops;
	__u64 xdp_drops;
};

/*
 * Policies with a slot, sorted by name. Up to max into out; *n is the total (may exceed max).
 * No lock. -ENOENT when the datapath is not loaded.
 */
int zm_dp_policy_stats(struct zm_dp *dp, struct zm_dp_policy_stat *out, size_t max, size_t *n);

/*
 * The live rules in the order of the trie walk (grouped by destination). Same out/max/n
 * contract as zm_dp_policy_stats. *serial (may be NULL): replacements so far.
 */
int zm_dp_policy_list(struct zm_dp *dp, struct zm_dp_policy_rule *out, size_t max, size_t *n,
		      __u64 *serial);

/* "off", "generic", "native"; parse returns -EINVAL for anything else. */
const char *zm_dp_xdp_mode_name(enum zm_dp_xdp_mode mode);
int zm_dp_xdp_mode_parse(const char *s, enum zm_dp_xdp_mode *mode);

/* Per-reason packet counters of zm_stats, summed over CPUs. */
int zm_dp_stats_read(struct zm_dp *dp, __u64 counters[ZM_REASON_MAX]);

/* Printable reason name / one-line help for a ZM_REASON_* number ("?" when unknown). */
const char *zm_dp_reason_name(unsigned int reason);
const char *zm_dp_reason_help(unsigned int reason);

/*
 * libbpf's own messages (verifier logs, netlink errors) go to stderr when on, nowhere when
 * off. Off by default would hide verifier logs from daemons, so callers choose: zmeshctl -d.
 */
void zm_dp_set_debug(bool on);

/* Map type name ("hash", "percpu_array", ...) for printing, never NULL. */
const char *zm_dp_map_type_name(__u32 type);

#endif
