/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pinned ABI between the BPF datapath and userspace: map names, pin layout, map keys and
 * values, sizes and the ABI version. Compiled by clang -target bpf (after vmlinux.h) and by
 * the userspace compiler (after <linux/types.h>); nothing here may depend on either side.
 *
 * Rules: byte order lives in the type (__be32 addresses, __be16 ports), padding is explicit,
 * no bit-fields, every struct has its size and key offsets asserted below. Any change to a
 * layout, a map type or a map size bumps ZM_ABI_VERSION: a datapath pinned with another
 * version is refused by `zmeshctl datapath load` rather than silently misread.
 */
#ifndef ZMESH_ABI_H
#define ZMESH_ABI_H

#include "zmesh/ports.h"
#include "zmesh/reasons.h"

/* 2: L4 policy fast path maps (zm_pol_*); 3: reasons refused_no_listener, refused_proxy_port */
#define ZM_ABI_VERSION 3

#define ZM_STR_(x) #x
#define ZM_STR(x)  ZM_STR_(x)

/* Map names: at most 15 characters so `bpftool map show` prints them whole. */
#define ZM_MAP_META	 zm_meta      /* array[1] of struct zm_meta */
#define ZM_MAP_WORKLOADS zm_workloads /* hash zm_addr -> zm_workload (read by tc) */
#define ZM_MAP_WL_INFO	 zm_wl_info   /* hash zm_addr -> zm_workload_info (userspace only) */
#define ZM_MAP_BYPASS	 zm_bypass    /* hash zm_addr -> zm_bypass_kind: never captured */
#define ZM_MAP_STATS	 zm_stats     /* percpu array[ZM_REASON_MAX] of __u64 packets */
#define ZM_MAP_CONNS	 zm_conns     /* lru hash zm_flow -> zm_conn_stats (sockops) */
#define ZM_MAP_POL_GEN	 zm_pol_gen   /* array[1] of struct zm_pol_gen: the live rule set */
#define ZM_MAP_POL_RULES zm_pol_rules /* lpm trie zm_pol_key -> zm_pol_value (tc, xdp) */
#define ZM_MAP_POL_STATS zm_pol_stats /* percpu array[ZM_MAX_POLICIES] of zm_pol_counters */
#define ZM_MAP_POL_NAMES zm_pol_names /* array[ZM_MAX_POLICIES] of zm_pol_name (userspace) */

#define ZM_MAX_WORKLOADS 8192
#define ZM_MAX_BYPASS	 1024
#define ZM_MAX_CONNS	 65536
#define ZM_MAX_POLICIES	 1024 /* distinct policy names with fast-path rules */
#define ZM_MAX_POL_RULES 8192 /* rules per generation; the trie holds two generations */

/* Pin layout under the pin directory (default ZM_PIN_DIR_DEFAULT, overridable). */
#define ZM_PIN_DIR_DEFAULT	"/sys/fs/bpf/zmesh"
#define ZM_PIN_PROG_CAPTURE	"prog_capture"
#define ZM_PIN_PROG_SOCKOPS	"prog_sockops"
#define ZM_PIN_PROG_POLICY_XDP	"prog_policy_xdp"
#define ZM_XDP_PROG_NAME	"zm_policy_xdp"	    /* how unload recognizes our XDP program */
#define ZM_PIN_LINK_SOCKOPS_FMT "link_sockops_%llu" /* cgroup id */

/*
 * Our tc filter: clsact ingress, this priority and handle. Only a filter with exactly this
 * priority and handle is ever replaced or deleted by us; other filters on the same hook are
 * left alone and see every packet we do not claim (we return TC_ACT_UNSPEC for those).
 */
#define ZM_TC_PRIORITY 1
#define ZM_TC_HANDLE   0x7a6d

/* Address families as the kernel numbers them (AF_INET, AF_INET6) without socket headers. */
#define ZM_AF_INET  2
#define ZM_AF_INET6 10

/* An IPv4 or IPv6 address. IPv4 sits in addr[0]; the other words are zero. */
struct zm_addr {
	__u8 family; /* ZM_AF_INET or ZM_AF_INET6 */
	__u8 pad[3];
	__be32 addr[4];
};

enum zm_workload_flags {
	ZM_WL_F_CAPTURE = 1u << 0, /* redirect this pod's traffic through ztunnel */
	ZM_WL_F_HBONE = 1u << 1,   /* the workload speaks HBONE (protocol: HBONE) */
};

/* What the tc program knows of a local pod address. */
struct zm_workload {
	__u32 ifindex;	 /* host-side veth in the node namespace; SYNs from the address on any
			  * other interface are spoofed */
	__u32 flags;	 /* enum zm_workload_flags */
	__u64 cgroup_id; /* pod cgroup v2 id, 0 when unknown */
};

#define ZM_NAME_LEN   64
#define ZM_PATH_LEN   128
#define ZM_IFNAME_LEN 16

/* Userspace-only description of an enrolled address: what `zmeshctl workload list` prints. */
struct zm_workload_info {
	char name[ZM_NAME_LEN];
	char namespace[ZM_NAME_LEN];
	char service_account[ZM_NAME_LEN];
	char trust_domain[ZM_NAME_LEN];
	char node[ZM_NAME_LEN];
	char netns[ZM_PATH_LEN];  /* path of the pod's network namespace */
	char veth[ZM_IFNAME_LEN]; /* host-side interface name */
	__u64 enrolled_at;	  /* CLOCK_REALTIME seconds */
};

enum zm_bypass_kind {
	ZM_BYPASS_NODE_ADDR = 1, /* an address of the node itself (kubelet, host network) */
	ZM_BYPASS_USER = 2,	 /* excluded by the operator */
};

struct zm_meta {
	__u32 abi_version; /* ZM_ABI_VERSION of whoever created the pins */
	__u32 pad;
	__u64 loaded_at; /* CLOCK_REALTIME seconds of the first load */
};

/* A TCP connection as the pod's socket sees it: local = the pod. */
struct zm_flow {
	struct zm_addr local;
	struct zm_addr remote;
	__be16 local_port;
	__be16 remote_port;
	__u32 pad;
};

/* Telemetry sockops keeps per connection of an enrolled pod. */
struct zm_conn_stats {
	__u64 first_seen_ns; /* bpf_ktime_get_ns() at first callback */
	__u64 last_seen_ns;
	__u64 bytes_acked;    /* tcp_sock bytes_acked at the last callback */
	__u64 bytes_received; /* tcp_sock bytes_received at the last callback */
	__u32 srtt_us;	      /* smoothed RTT in microseconds */
	__u32 total_retrans;  /* retransmitted segments */
	__u32 state;	      /* kernel TCP state (TCP_ESTABLISHED = 1, ...) */
	__u32 snd_cwnd;
};

/*
 * L4 policy fast path (userspace/lib/rbac/README.md, plaintext only): DROP rules for bare SYNs of
 * connections without identity whose verdict follows from addresses and ports alone. Looked
 * up by tc zm_capture (before steering a SYN to 15006) and XDP zm_policy_xdp (node uplink).
 *
 * The rules live in one LPM trie holding two generations; zm_pol_gen[0].gen names the live
 * one. Userspace fills the other generation, flips gen with one array update, then deletes
 * the old generation, so a packet sees either the whole old set or the whole new one.
 *
 * A lookup is (gen, family, dst, dport, src) with prefixlen = ZM_POL_KEY_FIXED_BITS + the
 * source bits: the fixed part matches exactly, the source by longest prefix. The datapath
 * looks up dport = the SYN's port first and, only when that finds nothing, dport = 0 (any
 * port): a port-specific entry shadows every any-port entry for that port.
 */
struct zm_pol_key {
	__u32 prefixlen; /* LPM trie: bits of what follows that must match */
	__u8 gen;	 /* 0 or 1 */
	__u8 family;	 /* ZM_AF_INET or ZM_AF_INET6 */
	__be16 dport;	 /* destination port, 0 = any */
	__be32 dst[4];	 /* the enrolled destination workload's address (exact) */
	__be32 src[4];	 /* source prefix, IPv4 in src[0] */
};

#define ZM_POL_KEY_FIXED_BITS ((1 + 1 + 2 + 16) * 8) /* gen, family, dport, dst */

enum zm_pol_action {
	ZM_POL_DROP = 1,  /* drop the SYN, count it under .policy */
	ZM_POL_DEFER = 2, /* an exception inside a wider DROP: leave it to ztunnel (15006) */
};

struct zm_pol_value {
	__u32 policy; /* index into zm_pol_stats / zm_pol_names */
	__u32 action; /* enum zm_pol_action; anything else passes (fail open to ztunnel) */
};

struct zm_pol_gen {
	__u32 gen;     /* live generation: 0 or 1 */
	__u32 n_rules; /* rules in the live generation */
	__u64 serial;  /* bumped by every replacement */
};

/* Drops per policy, per CPU. */
struct zm_pol_counters {
	__u64 tc_drops;	 /* dropped by zm_capture at tc */
	__u64 xdp_drops; /* dropped by zm_policy_xdp on an uplink */
};

#define ZM_POLICY_NAME_LEN 128

/* Userspace-only: what a policy index stands for. name[0] == 0: slot free. */
struct zm_pol_name {
	char name[ZM_POLICY_NAME_LEN]; /* "namespace/name" */
	__u32 n_rules;		       /* rules of this policy in the live generation */
	__u32 pad;
};

_Static_assert(sizeof(struct zm_addr) == 20, "zm_addr layout");
_Static_assert(__builtin_offsetof(struct zm_addr, addr) == 4, "zm_addr layout");
_Static_assert(sizeof(struct zm_workload) == 16, "zm_workload layout");
_Static_assert(__builtin_offsetof(struct zm_workload, cgroup_id) == 8, "zm_workload layout");
_Static_assert(sizeof(struct zm_workload_info) == 5 * 64 + 128 + 16 + 8, "zm_workload_info");
_Static_assert(sizeof(struct zm_meta) == 16, "zm_meta layout");
_Static_assert(sizeof(struct zm_flow) == 48, "zm_flow layout");
_Static_assert(__builtin_offsetof(struct zm_flow, local_port) == 40, "zm_flow layout");
_Static_assert(sizeof(struct zm_conn_stats) == 48, "zm_conn_stats layout");
_Static_assert(sizeof(struct zm_pol_key) == 40, "zm_pol_key layout");
_Static_assert(__builtin_offsetof(struct zm_pol_key, dst) == 8, "zm_pol_key layout");
_Static_assert(__builtin_offsetof(struct zm_pol_key, src) == 24, "zm_pol_key layout");
_Static_assert(ZM_POL_KEY_FIXED_BITS == (24 - 4) * 8, "zm_pol_key prefix");
_Static_assert(sizeof(struct zm_pol_value) == 8, "zm_pol_value layout");
_Static_assert(sizeof(struct zm_pol_gen) == 16, "zm_pol_gen layout");
_Static_assert(sizeof(struct zm_pol_counters) == 16, "zm_pol_counters layout");
_Static_assert(sizeof(struct zm_pol_name) == ZM_POLICY_NAME_LEN + 8, "zm_pol_name layout");

#endif
