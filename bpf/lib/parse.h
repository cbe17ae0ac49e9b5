/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing for the tc capture program: Ethernet, IPv4 (options allowed) or IPv6 (a few
 * extension headers stepped over), then the first 20 bytes of TCP. Headers are copied with
 * bpf_skb_load_bytes() rather than read through direct packet access: it works the same on
 * linear and paged skbs (GRO packets from a NIC may keep headers in fragments) without
 * bpf_skb_pull_data(), which would unclone and linearize packets we mostly do not even claim.
 *
 * Assumes skb->data points at an Ethernet header, which holds at tc ingress of veths and
 * Ethernet NICs; L3 devices (wireguard, tun) are not supported attach points.
 */
#ifndef ZM_BPF_PARSE_H
#define ZM_BPF_PARSE_H

#include "lib/common.h"

/* What the capture worker needs to know about one TCP packet. */
struct zm_pkt {
	struct bpf_sock_tuple tuple; /* saddr, daddr, sport, dport as on the wire */
	__u32 tuple_len;	     /* sizeof(tuple.ipv4) or sizeof(tuple.ipv6): selects family */
	struct zm_addr src;	     /* map keys, pad zeroed */
	struct zm_addr dst;
	__u16 dport; /* host order, for comparisons */
	__u8 tcp_flags;
	__u8 pad;
	__u32 l4off; /* offset of the TCP header in the frame (tc parser only; XDP leaves 0) */
};

/* ztunnel's own ports: a connection to them is already mesh traffic or control plane. */
static __always_inline bool zm_is_ztunnel_port(__u16 port)
{
	return port == ZM_PORT_OUTBOUND || port == ZM_PORT_INBOUND_PLAIN || port == ZM_PORT_HBONE ||
	       port == ZM_PORT_ADMIN || port == ZM_PORT_METRICS || port == ZM_PORT_READY;
}

/* A bare SYN opens a connection: SYN without ACK (SYN-ACK is a reply) and without RST. */
static __always_inline bool zm_is_bare_syn(const struct zm_pkt *pkt)
{
	return (pkt->tcp_flags & (ZM_TCP_SYN | ZM_TCP_ACK | ZM_TCP_RST)) == ZM_TCP_SYN;
}

/* IPv6 extension headers we step over before giving up: enough for hop-by-hop + dest opts. */
#define ZM_IPV6_MAX_EXTHDRS 4

static __always_inline int zm_parse_ipv4(struct __sk_buff *skb, struct zm_pkt *pkt, __u32 *l4off)
{
	struct iphdr iph;
	__u32 ihl;

	/* Short IPv4 header: the kernel's ip_rcv() drops it with its own counter. */
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &iph, sizeof(iph)))
		return -ZM_REASON_PASS_MALFORMED;
	ihl = (*(__u8 *)&iph) & 0x0f;
	if (((*(__u8 *)&iph) >> 4) != 4 || ihl < 5)
		return -ZM_REASON_PASS_MALFORMED;
	/* Any fragment, first included: ports are missing or unreliable, leave it to the stack. */
	if (iph.frag_off & bpf_htons(ZM_IP_MF | ZM_IP_OFFSET))
		return -ZM_REASON_PASS_FRAGMENT;
	if (iph.protocol != IPPROTO_TCP)
		return -ZM_REASON_PASS_NOT_TCP;

	pkt->tuple.ipv4.saddr = iph.saddr;
	pkt->tuple.ipv4.daddr = iph.daddr;
	pkt->tuple_len = sizeof(pkt->tuple.ipv4);
	pkt->src.family = ZM_AF_INET;
	pkt->src.addr[0] = iph.saddr;
	pkt->dst.family = ZM_AF_INET;
	pkt->dst.addr[0] = iph.daddr;
	*l4off = sizeof(struct ethhdr) + ihl * 4;
	return 0;
}

static __always_inline int zm_parse_ipv6(struct __sk_buff *skb, struct zm_pkt *pkt, __u32 *l4off)
{
	struct ipv6hdr ip6h;
	__u32 off = sizeof(struct ethhdr) + sizeof(ip6h);
	__u8 nexthdr;
	__u8 ext[2]; /* next header, length */
	int i;

	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &ip6h, sizeof(ip6h)))
		return -ZM_REASON_PASS_MALFORMED;
	if (((*(__u8 *)&ip6h) >> 4) != 6)
		return -ZM_REASON_PASS_MALFORMED;

	nexthdr = ip6h.nexthdr;
	for (i = 0; i < ZM_IPV6_MAX_EXTHDRS; i++) {
		if (nexthdr == ZM_NEXTHDR_FRAGMENT)
			return -ZM_REASON_PASS_FRAGMENT;
		if (nexthdr != ZM_NEXTHDR_HOP && nexthdr != ZM_NEXTHDR_ROUTING &&
		    nexthdr != ZM_NEXTHDR_DEST && nexthdr != ZM_NEXTHDR_AUTH)
			break;
		if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)))
			return -ZM_REASON_PASS_MALFORMED;
		/* AH counts its length in 4-octet units minus 2, the others in 8 minus 1. */
		if (nexthdr == ZM_NEXTHDR_AUTH)
			off += ((__u32)ext[1] + 2) * 4;
		else
			off += ((__u32)ext[1] + 1) * 8;
		nexthdr = ext[0];
	}
	/*
	 * Not TCP, or more extension headers than we walk: either way not a packet we can
	 * classify, so it continues untouched (fail open; the pods' TCP never carries a chain
	 * this long).
	 */
	if (nexthdr != IPPROTO_TCP)
		return -ZM_REASON_PASS_NOT_TCP;

	__builtin_memcpy(pkt->tuple.ipv6.saddr, &ip6h.saddr, 16);
	__builtin_memcpy(pkt->tuple.ipv6.daddr, &ip6h.daddr, 16);
	pkt->tuple_len = sizeof(pkt->tuple.ipv6);
	pkt->src.family = ZM_AF_INET6;
	__builtin_memcpy(pkt->src.addr, &ip6h.saddr, 16);
	pkt->dst.family = ZM_AF_INET6;
	__builtin_memcpy(pkt->dst.addr, &ip6h.daddr, 16);
	*l4off = off;
	return 0;
}

/*
 * Fill @pkt (which the caller zeroed) from @skb. Returns 0 for a TCP packet, else the
 * pass reason: PASS_NOT_TCP (not IP, or not TCP), PASS_FRAGMENT, PASS_MALFORMED.
 */
/*
 * The TCP header's first 20 bytes th (from the skb or, bounds-checked, the packet): ports into
 * the tuple, the destination port, the flags. Both parsers (tc, XDP) end here.
 */
static __always_inline int zm_parse_tcp(struct zm_pkt *pkt, const __u8 *th)
{
	if ((th[12] >> 4) < 5) /* data offset below the fixed header */
		return -ZM_REASON_PASS_MALFORMED;
	if (pkt->tuple_len == sizeof(pkt->tuple.ipv4)) {
		__builtin_memcpy(&pkt->tuple.ipv4.sport, &th[0], 2);
		__builtin_memcpy(&pkt->tuple.ipv4.dport, &th[2], 2);
		pkt->dport = bpf_ntohs(pkt->tuple.ipv4.dport);
	} else {
		__builtin_memcpy(&pkt->tuple.ipv6.sport, &th[0], 2);
		__builtin_memcpy(&pkt->tuple.ipv6.dport, &th[2], 2);
		pkt->dport = bpf_ntohs(pkt->tuple.ipv6.dport);
	}
	pkt->tcp_flags = th[13];
	return 0;
}

static __always_inline int zm_parse(struct __sk_buff *skb, struct zm_pkt *pkt)
{
	struct ethhdr eth;
	__u8 th[20]; /* fixed TCP header: ports, seq, ack, offset, flags */
	__u32 l4off = 0;
	int err;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return -ZM_REASON_PASS_MALFORMED;
	if (eth.h_proto == bpf_htons(ETH_P_IP))
		err = zm_parse_ipv4(skb, pkt, &l4off);
	else if (eth.h_proto == bpf_htons(ETH_P_IPV6))
		err = zm_parse_ipv6(skb, pkt, &l4off);
	else
		err = -ZM_REASON_PASS_NOT_TCP; /* ARP, VLAN-in-band, ...: never ours */
	if (err)
		return err;

	if (bpf_skb_load_bytes(skb, l4off, th, sizeof(th)))
		return -ZM_REASON_PASS_MALFORMED;
	pkt->l4off = l4off;
	return zm_parse_tcp(pkt, th);
}

#endif
