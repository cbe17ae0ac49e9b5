// SPDX-License-Identifier: Apache-2.0
/*
 * zm_policy_xdp: the L4 policy fast path at XDP on the node's uplinks. A bare plaintext SYN
 * from another node to an enrolled pod that a DROP rule denies (lib/policy.h) is dropped
 * before the stack allocates an skb for it; everything else passes to the stack, where tc
 * zm_capture makes every other decision (and enforces the same rules again, so a packet XDP
 * passes by mistake is still judged). Attached in generic or native mode, or not at all, by
 * `zmeshctl datapath load --xdp`; native mode is meant for physical NICs (bpf/README.md: on a
 * veth it costs the peer its TSO).
 *
 * Mirrors zm_capture's SYN path up to the 15006 decision: a source address that is an
 * enrolled pod (spoofed on an uplink), node addresses, non-enrolled destinations, ztunnel's
 * ports (15008 among them) and packets of existing sockets all pass untouched here.
 *
 * Counts only what it drops (drop_policy_xdp and the policy's xdp_drops): tc counts every
 * packet XDP passes, so counting passes here would count them twice.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse_xdp.h"
#include "lib/policy.h"

/* A socket of this netns owns the 4-tuple (not a listener): tc assigns it, not our call. */
static __always_inline bool zm_xdp_has_conn(struct xdp_md *ctx, struct zm_pkt *pkt)
{
	struct bpf_sock *sk;
	bool conn;

	if (pkt->tuple_len == sizeof(pkt->tuple.ipv4))
		sk = bpf_skc_lookup_tcp(ctx, &pkt->tuple, sizeof(pkt->tuple.ipv4),
					BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_skc_lookup_tcp(ctx, &pkt->tuple, sizeof(pkt->tuple.ipv6),
					BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return false;
	conn = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return conn;
}

/* The worker: returns -ZM_REASON_DROP_POLICY (with *policy) or a pass reason. */
static __always_inline int zm_policy_xdp_run(struct xdp_md *ctx, struct zm_pkt *pkt, __u32 *policy)
{
	/* Pass: only a connection's first packet is judged; the rest is tc's. */
	if (!zm_is_bare_syn(pkt))
		return -ZM_REASON_PASS_NOT_SYN;
	/*
	 * Pass: an enrolled source on an uplink is a spoof, which tc drops and counts as
	 * drop_spoofed; policy must not claim it under a policy name.
	 */
	if (zm_workload_get(&pkt->src))
		return -ZM_REASON_PASS_NOT_ENROLLED;
	/* Pass (fail open by design): node addresses and exclusions are never ours. */
	if (bpf_map_lookup_elem(&ZM_MAP_BYPASS, &pkt->dst))
		return -ZM_REASON_PASS_BYPASS;
	/* Pass: policy applies only to enrolled destinations. */
	if (!zm_workload_get(&pkt->dst))
		return -ZM_REASON_PASS_NOT_ENROLLED;
	/* Pass: 15008 is HBONE (has identity), ztunnel's other ports are never captured. */
	if (zm_is_ztunnel_port(pkt->dport))
		return -ZM_REASON_PASS_ZTUNNEL_PORT;
	/* Pass: a SYN for a connection that already exists (retransmit, reuse) is tc's. */
	if (zm_xdp_has_conn(ctx, pkt))
		return -ZM_REASON_ESTABLISHED;
	/* Drop (fail closed, by policy): see zm_capture_syn; plaintext has no identity. */
	return zm_policy_check(&pkt->src, &pkt->dst, pkt->dport, policy);
}

/* The one verdict place: drops are counted, passes are left to tc to count. */
static __always_inline int zm_policy_xdp_verdict(int ret, __u32 policy)
{
	if (ret != -ZM_REASON_DROP_POLICY)
		return XDP_PASS;
	zm_stats_inc(ZM_REASON_DROP_POLICY_XDP);
	zm_policy_count(policy, true);
	return XDP_DROP;
}

SEC("xdp")
int zm_policy_xdp(struct xdp_md *ctx)
{
	struct zm_pkt pkt = {};
	__u32 policy = 0;
	int ret;

	ret = zm_parse_xdp(ctx, &pkt);
	if (!ret)
		ret = zm_policy_xdp_run(ctx, &pkt, &policy);
	return zm_policy_xdp_verdict(ret, policy);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
