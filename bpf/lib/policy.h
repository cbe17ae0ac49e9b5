/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The L4 policy fast path shared by tc zm_capture and XDP zm_policy_xdp: decide whether a bare
 * plaintext SYN to an enrolled pod is denied by a rule userspace compiled from the policies
 * (include/zmesh/abi.h, struct zm_pol_key), and count a drop under its policy. Callers have
 * already established that the SYN would go to ztunnel's 15006 (destination enrolled, source
 * not, port not one of ztunnel's), so 15008 and mesh traffic never reach this lookup.
 *
 * Userspace keeps the whole decision; this only spares ztunnel (and, at XDP, the stack) the
 * connections whose verdict is already certain from addresses and ports.
 */
#ifndef ZM_BPF_POLICY_H
#define ZM_BPF_POLICY_H

#include "lib/common.h"
#include "lib/maps.h"

/* Longest-prefix lookup of @src under (gen, dst, @port) for one port value (0 = any). */
static __always_inline struct zm_pol_value *zm_policy_lookup(struct zm_pol_key *key, __u16 port)
{
	key->dport = bpf_htons(port);
	return bpf_map_lookup_elem(&ZM_MAP_POL_RULES, key);
}

/*
 * Returns -ZM_REASON_DROP_POLICY with *policy set when a DROP rule decides the SYN from @src
 * to @dst:@dport, else 0. The port-specific entry, when there is one, shadows the any-port
 * ones (see zm_dp_policy_rule in datapath.h).
 */
static __always_inline int zm_policy_check(const struct zm_addr *src, const struct zm_addr *dst,
					   __u16 dport, __u32 *policy)
{
	struct zm_pol_value *val;
	struct zm_pol_key key = {};
	struct zm_pol_gen *gen;
	__u32 zero = 0;

	gen = bpf_map_lookup_elem(&ZM_MAP_POL_GEN, &zero);
	/* Pass (fail open to ztunnel): no rule set loaded yet; ztunnel evaluates everything. */
	if (!gen || !gen->n_rules)
		return 0;
	key.gen = (__u8)(gen->gen & 1);
	key.family = dst->family;
	__builtin_memcpy(key.dst, dst->addr, sizeof(key.dst));
	__builtin_memcpy(key.src, src->addr, sizeof(key.src));
	key.prefixlen = ZM_POL_KEY_FIXED_BITS + (dst->family == ZM_AF_INET ? 32 : 128);

	val = zm_policy_lookup(&key, dport);
	if (!val)
		val = zm_policy_lookup(&key, 0);
	/*
	 * Pass (fail open to ztunnel): no rule, a DEFER exception, or a value we do not know.
	 * Passing only means ztunnel's full evaluation decides at 15006, never that the
	 * connection is allowed without it.
	 */
	if (!val || val->action != ZM_POL_DROP || val->policy >= ZM_MAX_POLICIES)
		return 0;
	*policy = val->policy;
	return -ZM_REASON_DROP_POLICY;
}

/* Count one dropped SYN under @policy. Per-CPU slot, so plain increments are race free. */
static __always_inline void zm_policy_count(__u32 policy, bool xdp)
{
	struct zm_pol_counters *c;

	c = bpf_map_lookup_elem(&ZM_MAP_POL_STATS, &policy);
	if (!c)
		return;
	if (xdp)
		c->xdp_drops += 1;
	else
		c->tc_drops += 1;
}

#endif
