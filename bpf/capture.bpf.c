// SPDX-License-Identifier: Apache-2.0
/*
 * zm_capture: the tc program that captures enrolled pods' TCP for the node's ztunnel without
 * iptables. Attached at clsact ingress (priority ZM_TC_PRIORITY, handle ZM_TC_HANDLE) of every
 * pod's host-side veth, enrolled or not (traffic leaving pods) and of the node's Ethernet uplinks
 * (traffic from other nodes), in the node's network namespace, where ztunnel listens.
 *
 * Per TCP packet: an enrolled source address seen on the wrong interface is dropped; packets
 * to node addresses pass; a packet of an existing connection in this netns is assigned to its
 * socket (replies to ztunnel's sockets that use pod addresses); a bare SYN is steered with
 * bpf_sk_assign() to ztunnel's transparent listener: 15001 from an enrolled pod, 15008 or 15006 to
 * one. Claimed packets get the ZM_MARK bit so the node's policy route (fwmark -> local table)
 * delivers them locally. A SYN that must be captured while ztunnel has no listener, or that
 * targets a node address's capture port, is answered with a RST (lib/reset.h). Everything we do not
 * claim returns TC_ACT_UNSPEC, so a CNI filter behind ours still sees it; we never return TC_ACT_OK
 * for a packet we did not assign.
 *
 * A plaintext SYN bound for 15006 that an L4 policy rule denies (lib/policy.h) is dropped
 * here instead, and counted under its policy.
 *
 * Assumes: Ethernet framing (see lib/parse.h), maps filled by zmeshctl (lib/maps.h).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/reset.h"
#include "lib/sk.h"

/*
 * Settings, fixed at load time by the loader through the skeleton's rodata.
 *
 * zm_cfg_fail_open: what to do with a SYN we must capture when ztunnel has no listener
 * (restart, crash). false (default): refuse it with a RST sent back to the client (fail
 * closed: a refused connection is better than plaintext escaping the mesh, and a fast
 * refusal better than a client hanging in SYN-SENT until its own timeout); counted as
 * refused_no_listener. true: let it continue uncaptured; counted as drop_no_listener so the
 * operator sees it.
 */
const volatile bool zm_cfg_fail_open = false;

/*
 * zm_cfg_mark / zm_cfg_mark_mask: the mark set on claimed packets (bits of mask cleared, then
 * mark set; other bits of skb->mark kept for the CNI). Must equal the node's
 * `ip rule fwmark MARK/MASK`; change both when ZM_MARK collides with a CNI's marks.
 */
const volatile __u32 zm_cfg_mark = ZM_MARK;
const volatile __u32 zm_cfg_mark_mask = ZM_MARK_MASK;

/*
 * Decide where a bare SYN goes. @src_wl is the enrolled source workload (already checked
 * to have arrived on its own veth) or NULL. Returns -ZM_REASON_*; *policy is set for
 * DROP_POLICY.
 */
static __always_inline int zm_capture_syn(struct __sk_buff *skb, const struct zm_pkt *pkt,
					  const struct zm_workload *src_wl, __u32 *policy)
{
	bool dst_enrolled = zm_workload_get(&pkt->dst) != NULL;
	int ret;

	/*
	 * HBONE to an enrolled pod of this node goes to ztunnel's 15008 whoever sends it, an
	 * enrolled pod included (a waypoint dialing a same-node endpoint): the destination
	 * pod has no 15008 of its own, and there is no uplink on the way to capture it later.
	 */
	if (dst_enrolled && pkt->dport == ZM_PORT_HBONE)
		return zm_sk_assign_listener(skb, pkt, ZM_PORT_HBONE, ZM_REASON_CAPTURED_HBONE);

	if (src_wl) {
		/*
		 * Pass: an enrolled pod dialing a ztunnel port speaks HBONE or talks to the
		 * control plane itself; redirecting it to 15001 would tunnel a tunnel.
		 */
		if (zm_is_ztunnel_port(pkt->dport))
			return -ZM_REASON_PASS_ZTUNNEL_PORT;
		return zm_sk_assign_listener(skb, pkt, ZM_PORT_OUTBOUND,
					     ZM_REASON_CAPTURED_OUTBOUND);
	}

	if (dst_enrolled) {
		/* Pass: ztunnel's other ports are never captured, as the issue specifies. */
		if (zm_is_ztunnel_port(pkt->dport))
			return -ZM_REASON_PASS_ZTUNNEL_PORT;
		/*
		 * Drop (fail closed, by policy): plaintext has no identity, so a rule that
		 * denies it by address and port is final; ztunnel would refuse it at 15006.
		 */
		ret = zm_policy_check(&pkt->src, &pkt->dst, pkt->dport, policy);
		if (ret)
			return ret;
		return zm_sk_assign_listener(skb, pkt, ZM_PORT_INBOUND_PLAIN,
					     ZM_REASON_CAPTURED_PLAIN);
	}

	/* Pass (fail open by design): neither end is ours, e.g. a non-enrolled pod's traffic. */
	return -ZM_REASON_PASS_NOT_ENROLLED;
}

/* The worker: every TCP packet. Returns -ZM_REASON_* (never 0 for a parsed packet). */
static __always_inline int zm_capture_run(struct __sk_buff *skb, struct zm_pkt *pkt, __u32 *policy)
{
	struct zm_workload *src_wl;
	int ret;

	src_wl = zm_workload_get(&pkt->src);
	/*
	 * Drop (fail closed): an enrolled pod's address arriving on another pod's veth or on
	 * an uplink is someone impersonating that pod, for any packet, not only SYNs: it must
	 * neither open connections in its name nor inject into ztunnel's connections for it.
	 * ifindex 0 means userspace does not know the veth yet, so nothing to compare.
	 */
	if (src_wl && src_wl->ifindex && src_wl->ifindex != skb->ifindex)
		return -ZM_REASON_DROP_SPOOFED;

	/*
	 * Pass (fail open by design): node addresses and operator exclusions. Capturing
	 * kubelet or host-network traffic would break the node, and these peers have no
	 * workload identity to tunnel with anyway. Checked before the established lookup:
	 * the node's own sockets get their packets by plain routing, and a CNI filter behind
	 * ours must keep seeing the node's traffic; ztunnel's sockets use pod addresses.
	 */
	if (bpf_map_lookup_elem(&ZM_MAP_BYPASS, &pkt->dst)) {
		/*
		 * Refuse (fail closed): nobody connects to a node address's capture ports on
		 * purpose. ztunnel's wildcard listeners would accept it as a captured connection
		 * to the node itself and dial that, a loop that holds sockets in SYN-SENT. The
		 * node's other ports, 15008 and the admin/metrics/readiness ports included, pass.
		 */
		if (zm_is_bare_syn(pkt) &&
		    (pkt->dport == ZM_PORT_OUTBOUND || pkt->dport == ZM_PORT_INBOUND_PLAIN))
			return -ZM_REASON_REFUSED_PROXY_PORT;
		return -ZM_REASON_PASS_BYPASS;
	}

	ret = zm_sk_assign_established(skb, pkt);
	if (ret)
		return ret;

	/*
	 * Pass (fail open by design): a mid-flow packet of a connection no local socket owns
	 * is a flow we never captured (it predates enrollment, or is plain forwarding).
	 */
	if (!zm_is_bare_syn(pkt))
		return -ZM_REASON_PASS_NOT_SYN;

	return zm_capture_syn(skb, pkt, src_wl, policy);
}

/*
 * The one place a reason becomes a verdict and a counter. Captured and established packets
 * are claimed (TC_ACT_OK, marked); refusals are answered with a RST sent back out of the
 * interface the SYN came in on (TC_ACT_REDIRECT); drops are TC_ACT_SHOT except a missing
 * listener under zm_cfg_fail_open; everything else continues to the next filter
 * (TC_ACT_UNSPEC).
 */
static __always_inline int zm_capture_verdict(struct __sk_buff *skb, const struct zm_pkt *pkt,
					      int ret, __u32 policy)
{
	__u32 reason = ret < 0 ? (__u32)-ret : ZM_REASON_NONE;
	bool answered = false;

	if (reason == ZM_REASON_DROP_NO_LISTENER && !zm_cfg_fail_open)
		reason = ZM_REASON_REFUSED_NO_LISTENER;
	/*
	 * A SYN whose answer cannot be built (data on the SYN, a helper failure) is dropped
	 * instead (the frame may be half rewritten by then); a missing listener is then counted
	 * as the drop it is.
	 */
	if (reason == ZM_REASON_REFUSED_NO_LISTENER || reason == ZM_REASON_REFUSED_PROXY_PORT) {
		answered = !zm_reset_reply(skb, pkt);
		if (!answered && reason == ZM_REASON_REFUSED_NO_LISTENER)
			reason = ZM_REASON_DROP_NO_LISTENER;
	}
	zm_stats_inc(reason);
	switch (reason) {
	case ZM_REASON_CAPTURED_OUTBOUND:
	case ZM_REASON_CAPTURED_HBONE:
	case ZM_REASON_CAPTURED_PLAIN:
	case ZM_REASON_ESTABLISHED:
		skb->mark = (skb->mark & ~zm_cfg_mark_mask) | zm_cfg_mark;
		return TC_ACT_OK;
	case ZM_REASON_REFUSED_NO_LISTENER:
	case ZM_REASON_REFUSED_PROXY_PORT:
		return answered ? bpf_redirect(skb->ifindex, 0) : TC_ACT_SHOT;
	case ZM_REASON_DROP_NO_LISTENER:
		return zm_cfg_fail_open && !answered ? TC_ACT_UNSPEC : TC_ACT_SHOT;
	case ZM_REASON_DROP_POLICY:
		zm_policy_count(policy, false);
		return TC_ACT_SHOT;
	case ZM_REASON_DROP_ASSIGN_FAILED:
	case ZM_REASON_DROP_SPOOFED:
		return TC_ACT_SHOT;
	default:
		return TC_ACT_UNSPEC;
	}
}

SEC("tc")
int zm_capture(struct __sk_buff *skb)
{
	struct zm_pkt pkt = {};
	__u32 policy = 0;
	int ret;

	ret = zm_parse(skb, &pkt);
	if (!ret)
		ret = zm_capture_run(skb, &pkt, &policy);
	return zm_capture_verdict(skb, &pkt, ret, policy);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
