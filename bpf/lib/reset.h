/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refusing a connection from tc: turn a bare SYN, in place, into the RST|ACK its sender's
 * stack expects (RFC 9293: a reset for a segment without ACK carries sequence 0 and
 * acknowledges the SYN), then the caller sends it back out of the interface it came in on
 * with bpf_redirect(). The client's connect() fails at once with ECONNREFUSED instead of
 * retransmitting SYNs until its own timeout, and nothing reaches the destination.
 *
 * The rewrite never changes the packet's length or its IP headers' checksummed content:
 * addresses and ports are swapped (the checksums are sums, so they stay valid), TTL and IP
 * options stay as they are, TCP options become NOPs, and every changed TCP word goes through
 * bpf_l4_csum_replace(), which does the right thing for each checksum state (a complete
 * checksum is updated; a partial one, left to the veth's peer or the NIC, is not touched).
 * A SYN that carries data (TCP Fast Open) is not rewritten: the caller drops it instead.
 */
#ifndef ZM_BPF_RESET_H
#define ZM_BPF_RESET_H

#include "lib/common.h"
#include "lib/parse.h"

#define ZM_TCP_CSUM_OFF 16
#define ZM_TCP_NOPS	0x01010101u /* four TCP NOP options */

/* Replace the 4-byte TCP word at @woff (from the TCP header) and fix the TCP checksum. */
static __always_inline int zm_reset_word(struct __sk_buff *skb, __u32 l4off, __u32 woff,
					 __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, l4off + ZM_TCP_CSUM_OFF, from, to, sizeof(to)))
		return -1;
	return bpf_skb_store_bytes(skb, l4off + woff, &to, sizeof(to), 0) ? -1 : 0;
}

/* Swap two @len-byte fields at @a and @b of the frame (addresses, MACs). */
static __always_inline int zm_reset_swap(struct __sk_buff *skb, __u32 a, __u32 b, __u32 len)
{
	__u8 x[16], y[16];

	if (len > sizeof(x) || bpf_skb_load_bytes(skb, a, x, len) ||
	    bpf_skb_load_bytes(skb, b, y, len))
		return -1;
	if (bpf_skb_store_bytes(skb, a, y, len, 0) || bpf_skb_store_bytes(skb, b, x, len, 0))
		return -1;
	return 0;
}

/*
 * Rewrite the bare SYN @pkt (parsed by zm_parse()) into its RST|ACK answer. Returns 0 when
 * the frame now holds the answer, -1 when it could not be rewritten (data on the SYN, a
 * helper failure); the frame may then be half rewritten and must be dropped.
 */
static __always_inline int zm_reset_reply(struct __sk_buff *skb, const struct zm_pkt *pkt)
{
	__u32 l4 = pkt->l4off, i;
	__be32 w[5]; /* fixed TCP header as 32-bit words */
	__u32 doff, seq;

	if (!l4 || bpf_skb_load_bytes(skb, l4, w, sizeof(w)))
		return -1;
	doff = (((__u8 *)w)[12] >> 4) * 4;
	if (skb->len != l4 + doff)
		return -1;
	seq = bpf_ntohl(w[1]);

	/* Ethernet, then the IP addresses: sums over both ends are unchanged by a swap. */
	if (zm_reset_swap(skb, 0, 6, 6))
		return -1;
	if (pkt->tuple_len == sizeof(pkt->tuple.ipv4)) {
		if (zm_reset_swap(skb, sizeof(struct ethhdr) + 12, sizeof(struct ethhdr) + 16, 4))
			return -1;
	} else if (zm_reset_swap(skb, sizeof(struct ethhdr) + 8, sizeof(struct ethhdr) + 24, 16)) {
		return -1;
	}

	/* Ports swapped (checksum unchanged); seq 0; ack = the SYN's seq + 1; RST|ACK, window 0. */
	{
		__be32 ports = (w[0] << 16) | (w[0] >> 16);

		if (bpf_skb_store_bytes(skb, l4, &ports, sizeof(ports), 0))
			return -1;
	}
	if (zm_reset_word(skb, l4, 4, w[1], 0) ||
	    zm_reset_word(skb, l4, 8, w[2], bpf_htonl(seq + 1)))
		return -1;
	{
		__u8 b[4];

		__builtin_memcpy(b, &w[3], 4);
		b[1] = ZM_TCP_RST | ZM_TCP_ACK;
		b[2] = 0;
		b[3] = 0;
		if (zm_reset_word(skb, l4, 12, w[3], *(__be32 *)b))
			return -1;
	}
	/* Options (at most 40 bytes) become NOPs, word by word. */
	for (i = 20; i < 60; i += 4) {
		__be32 opt;

		if (i >= doff)
			break;
		if (bpf_skb_load_bytes(skb, l4 + i, &opt, sizeof(opt)) ||
		    zm_reset_word(skb, l4, i, opt, ZM_TCP_NOPS))
			return -1;
	}
	return 0;
}

#endif
