/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing for the XDP policy program: Ethernet, IPv4 (options allowed) or IPv6 without
 * extension headers, then the fixed TCP header, read by direct packet access (an XDP frame's
 * first buffer is linear and holds the headers of anything a NIC delivers). Fills the same
 * struct zm_pkt as the tc parser (lib/parse.h) so the policy lookup is shared.
 *
 * Anything this parser does not understand (VLAN tags, IPv6 extension headers, fragments)
 * passes: the tc program behind XDP on the same uplink parses it fully and enforces the same
 * rules, so XDP only ever has to be right about what it drops.
 */
#ifndef ZM_BPF_PARSE_XDP_H
#define ZM_BPF_PARSE_XDP_H

#include "lib/common.h"
#include "lib/parse.h"

static __always_inline int zm_parse_xdp_ipv4(void *l3, void *end, struct zm_pkt *pkt, void **l4)
{
	struct iphdr *iph = l3;
	__u32 ihl;

	if ((void *)(iph + 1) > end)
		return -ZM_REASON_PASS_MALFORMED;
	ihl = (*(__u8 *)iph) & 0x0f;
	if (((*(__u8 *)iph) >> 4) != 4 || ihl < 5)
		return -ZM_REASON_PASS_MALFORMED;
	if (iph->frag_off & bpf_htons(ZM_IP_MF | ZM_IP_OFFSET))
		return -ZM_REASON_PASS_FRAGMENT;
	if (iph->protocol != IPPROTO_TCP)
		return -ZM_REASON_PASS_NOT_TCP;
	pkt->tuple.ipv4.saddr = iph->saddr;
	pkt->tuple.ipv4.daddr = iph->daddr;
	pkt->tuple_len = sizeof(pkt->tuple.ipv4);
	pkt->src.family = ZM_AF_INET;
	pkt->src.addr[0] = iph->saddr;
	pkt->dst.family = ZM_AF_INET;
	pkt->dst.addr[0] = iph->daddr;
	*l4 = l3 + ihl * 4;
	return 0;
}

static __always_inline int zm_parse_xdp_ipv6(void *l3, void *end, struct zm_pkt *pkt, void **l4)
{
	struct ipv6hdr *ip6h = l3;

	if ((void *)(ip6h + 1) > end)
		return -ZM_REASON_PASS_MALFORMED;
	if (((*(__u8 *)ip6h) >> 4) != 6)
		return -ZM_REASON_PASS_MALFORMED;
	/* Extension headers (and fragments) pass to tc, which walks them. */
	if (ip6h->nexthdr != IPPROTO_TCP)
		return -ZM_REASON_PASS_NOT_TCP;
	__builtin_memcpy(pkt->tuple.ipv6.saddr, &ip6h->saddr, 16);
	__builtin_memcpy(pkt->tuple.ipv6.daddr, &ip6h->daddr, 16);
	pkt->tuple_len = sizeof(pkt->tuple.ipv6);
	pkt->src.family = ZM_AF_INET6;
	__builtin_memcpy(pkt->src.addr, &ip6h->saddr, 16);
	pkt->dst.family = ZM_AF_INET6;
	__builtin_memcpy(pkt->dst.addr, &ip6h->daddr, 16);
	*l4 = ip6h + 1;
	return 0;
}

/* Fill @pkt (zeroed by the caller) from @ctx: 0 for a TCP packet, else a pass reason. */
static __always_inline int zm_parse_xdp(struct xdp_md *ctx, struct zm_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 *th = NULL;
	int err;

	if ((void *)(eth + 1) > end)
		return -ZM_REASON_PASS_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		err = zm_parse_xdp_ipv4(eth + 1, end, pkt, (void **)&th);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		err = zm_parse_xdp_ipv6(eth + 1, end, pkt, (void **)&th);
	else
		err = -ZM_REASON_PASS_NOT_TCP;
	if (err)
		return err;
	if ((void *)(th + 20) > end)
		return -ZM_REASON_PASS_MALFORMED;
	return zm_parse_tcp(pkt, th);
}

#endif
