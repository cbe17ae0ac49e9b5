/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket lookup and assignment for tc programs: find a socket in the netns of the device the
 * program runs on (BPF_F_CURRENT_NETNS) and hand the packet to it with bpf_sk_assign(), the
 * transparent-proxy technique that needs no iptables TPROXY rule. Every reference taken by a
 * lookup is released on every path before returning; the verifier refuses the program
 * otherwise. bpf_sk_assign() only works at tc ingress (elsewhere it returns -EOPNOTSUPP).
 *
 * Helpers return 0 when they did nothing, or -ZM_REASON_* for the outcome.
 */
#ifndef ZM_BPF_SK_H
#define ZM_BPF_SK_H

#include "lib/common.h"
#include "lib/parse.h"

/*
 * Look up @tuple, whose family the caller knows. The tuple size is what selects IPv4 or
 * IPv6 in the kernel, so it must be sizeof(tuple->ipv4) / sizeof(tuple->ipv6), never
 * sizeof(*tuple); the two calls keep the size a verifier-visible constant.
 */
static __always_inline struct bpf_sock *zm_skc_lookup(struct __sk_buff *skb,
						      struct bpf_sock_tuple *tuple, bool ipv4)
{
	if (ipv4)
		return bpf_skc_lookup_tcp(skb, tuple, sizeof(tuple->ipv4), BPF_F_CURRENT_NETNS, 0);
	return bpf_skc_lookup_tcp(skb, tuple, sizeof(tuple->ipv6), BPF_F_CURRENT_NETNS, 0);
}

static __always_inline bool zm_pkt_is_ipv4(const struct zm_pkt *pkt)
{
	return pkt->src.family == ZM_AF_INET;
}

/*
 * Hand a packet of an existing connection (established, SYN-sent, request or time-wait
 * socket) to its socket. This is what brings replies back to ztunnel's sockets whose local
 * address is a pod's, which the routing table alone would forward away. A listener is not
 * a connection: it is released and 0 returned, so the SYN logic decides.
 * Returns 0 (no connection), -ZM_REASON_ESTABLISHED, or -ZM_REASON_DROP_ASSIGN_FAILED.
 */
static __always_inline int zm_sk_assign_established(struct __sk_buff *skb, struct zm_pkt *pkt)
{
	struct bpf_sock *sk;
	long err;

	sk = zm_skc_lookup(skb, &pkt->tuple, zm_pkt_is_ipv4(pkt));
	if (!sk)
		return 0;
	if (sk->state == BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return 0;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	/*
	 * Fail closed: the socket exists but is going away (unhashed, refcount zero) or we are
	 * not at ingress. Delivering the packet by routing instead could forward a reply meant
	 * for ztunnel straight to the pod; TCP retransmits if the socket was merely racing.
	 */
	if (err)
		return -ZM_REASON_DROP_ASSIGN_FAILED;
	return -ZM_REASON_ESTABLISHED;
}

/*
 * Steer a bare SYN to the listener on @port in this netns. The lookup keeps the packet's
 * addresses and source port and swaps only the destination port, so a listener bound to
 * 0.0.0.0 or :: (IP_TRANSPARENT, so it may accept for non-local destinations) matches any
 * original destination; the accepted socket's getsockname() is then that destination.
 * Returns @reason on success, -ZM_REASON_DROP_NO_LISTENER or -ZM_REASON_DROP_ASSIGN_FAILED.
 */
static __always_inline int zm_sk_assign_listener(struct __sk_buff *skb, const struct zm_pkt *pkt,
						 __u16 port, int reason)
{
	struct bpf_sock_tuple tuple = pkt->tuple;
	bool ipv4 = zm_pkt_is_ipv4(pkt);
	struct bpf_sock *sk;
	long err;

	if (ipv4)
		tuple.ipv4.dport = bpf_htons(port);
	else
		tuple.ipv6.dport = bpf_htons(port);

	sk = zm_skc_lookup(skb, &tuple, ipv4);
	if (!sk)
		return -ZM_REASON_DROP_NO_LISTENER;
	/* An exact 4-tuple match on the ztunnel port would be a connection, not our listener. */
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return -ZM_REASON_DROP_NO_LISTENER;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return -ZM_REASON_DROP_ASSIGN_FAILED;
	return -reason;
}

#endif
