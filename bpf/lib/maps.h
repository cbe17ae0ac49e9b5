/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one definition of every zmesh map, included by every BPF object (capture.bpf.c,
 * sockops.bpf.c). All maps are pinned by name (LIBBPF_PIN_BY_NAME): the loader opens each
 * object with bpf_object_open_opts.pin_root_path set to the pin directory, so whichever object
 * loads first creates a map and pins it, and the other reuses the pin. libbpf reuses a pin
 * only when type, key size, value size, max_entries and flags all match, which is why the
 * definitions live here once: two objects that disagree would fail to load instead of
 * silently sharing a misread map. Names, sizes and layouts come from include/zmesh/abi.h.
 *
 * Note for test loaders: with pinning set and no pin_root_path, libbpf pins under
 * /sys/fs/bpf; a loader that wants private maps clears the pin path of every map
 * (bpf_map__set_pin_path(map, NULL)) before load.
 */
#ifndef ZM_BPF_MAPS_H
#define ZM_BPF_MAPS_H

#include "lib/common.h"

/* One entry: the ABI version of whoever created the pins (written by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_META SEC(".maps");

/* Enrolled local pod addresses: read by tc capture (source/destination) and sockops. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_WORKLOADS);
	__type(key, struct zm_addr);
	__type(value, struct zm_workload);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_WORKLOADS SEC(".maps");

/* Userspace-only descriptions; defined here so it is created and pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_WORKLOADS);
	__type(key, struct zm_addr);
	__type(value, struct zm_workload_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_WL_INFO SEC(".maps");

/* Destinations never captured: node addresses and operator exclusions. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_BYPASS);
	__type(key, struct zm_addr);
	__type(value, __u32); /* enum zm_bypass_kind */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_BYPASS SEC(".maps");

/* Packets per reason (enum zm_reason), per CPU: summed by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZM_REASON_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_STATS SEC(".maps");

/* Per-connection telemetry of enrolled pods, kept after close until the LRU ages it out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZM_MAX_CONNS);
	__type(key, struct zm_flow);
	__type(value, struct zm_conn_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_CONNS SEC(".maps");

/* The live generation of the policy rules (written by userspace with one update). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_pol_gen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_POL_GEN SEC(".maps");

/* Policy DROP/DEFER rules of both generations, longest source prefix first. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * ZM_MAX_POL_RULES);
	__type(key, struct zm_pol_key);
	__type(value, struct zm_pol_value);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required by the LPM trie */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_POL_RULES SEC(".maps");

/* Drops per policy index, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZM_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct zm_pol_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_POL_STATS SEC(".maps");

/* Userspace-only: policy index -> name; defined here so it is created and pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ZM_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct zm_pol_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ZM_MAP_POL_NAMES SEC(".maps");

/* Count one packet under @reason. Per-CPU slot, so a plain increment is race free. */
static __always_inline void zm_stats_inc(__u32 reason)
{
	__u64 *cnt;

	if (reason >= ZM_REASON_MAX)
		reason = ZM_REASON_NONE;
	cnt = bpf_map_lookup_elem(&ZM_MAP_STATS, &reason);
	if (cnt)
		*cnt += 1;
}

/*
 * The enrolled workload at @addr, or NULL. Entries without ZM_WL_F_CAPTURE are known to
 * userspace but not captured, so the datapath treats them as not enrolled.
 */
static __always_inline struct zm_workload *zm_workload_get(const struct zm_addr *addr)
{
	struct zm_workload *wl;

	wl = bpf_map_lookup_elem(&ZM_MAP_WORKLOADS, addr);
	if (wl && (wl->flags & ZM_WL_F_CAPTURE))
		return wl;
	return NULL;
}

#endif
