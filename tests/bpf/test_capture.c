// SPDX-License-Identifier: Apache-2.0
/*
 * BPF tier for zm_capture (bpf/capture.bpf.c): a table of packets built here, each run once
 * through the verified program with bpf_prog_test_run_opts(), asserting the tc verdict and
 * that exactly one zm_stats counter moved, the expected reason's, by one.
 *
 * Runs as root in a network namespace of its own (unshare(CLONE_NEWNET), lo up), so the
 * listeners it opens (IP_TRANSPARENT, 0.0.0.0 / ::, ports 15001/15006/15008) and a loopback
 * TCP connection are what the program's socket lookups find, and nothing touches the root
 * namespace. Maps are private: pin paths are cleared before load, nothing is pinned.
 *
 * bpf_sk_assign() under BPF_PROG_TEST_RUN: the helper refuses any skb that is not at tc
 * ingress (skb->tc_at_ingress), and bpf_prog_test_run_skb() never sets that bit, so every
 * assignment fails there with -EOPNOTSUPP. The program then reports drop_assign_failed,
 * which it only reaches after finding the socket it meant to assign to. The fixtures
 * therefore assert TC_ACT_SHOT + drop_assign_failed for "would be captured/assigned", and
 * prove which listener was chosen by rows where only the other listeners exist
 * (refused_no_listener: answered with a RST, whose bytes are checked). test_run_probe_assign()
 * checks that premise at run time: if a future kernel lets test_run assign, the captured rows
 * switch to TC_ACT_OK + the captured_* reason (and the mark). Real assignment is proven by the
 * netns integration tier.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#include "common/addr.h"
#include "zmesh/abi.h"
#include "../lib/lo_up.h"
#include "../lib/tap.h"

/* Addresses (benchmarking ranges only) and their roles in the maps. */
#define POD_A4	      "198.18.1.1" /* enrolled, on "its veth" = lo (ifindex 1) */
#define POD_B4	      "198.18.1.2" /* enrolled destination */
#define POD_S4	      "198.18.1.9" /* enrolled, veth ifindex 999: seen on lo = spoofed */
#define POD_C4	      "198.18.2.3" /* not enrolled */
#define NODE4	      "198.18.0.1" /* node address: bypass */
#define POD_A6	      "2001:2::1:1"
#define POD_B6	      "2001:2::1:2"
#define POD_S6	      "2001:2::1:9"
#define POD_C6	      "2001:2::2:3"
#define NODE6	      "2001:2::1"
#define LO_IFINDEX    1
#define OTHER_IFINDEX 999

enum shape {
	SH_TCP,
	SH_UDP,
	SH_ARP,
	SH_SHORT_ETH,	/* 10 bytes: less than an Ethernet header */
	SH_SHORT_IP,	/* Ethernet + part of the IP header */
	SH_BAD_IHL,	/* IPv4 ihl 4 */
	SH_BIG_IHL,	/* IPv4 ihl 15: TCP would start beyond the frame */
	SH_BAD_VERSION, /* IPv4 ethertype, version nibble 6 */
	SH_SHORT_TCP,	/* IP + 10 bytes of TCP */
	SH_BAD_DOFF,	/* TCP data offset 3 */
	SH_IP_OPTIONS,	/* IPv4 ihl 6 (4 bytes of NOP options) */
	SH_FRAG,	/* IPv4 MF set / IPv6 fragment header */
	SH_V6_HOPOPTS,	/* IPv6 hop-by-hop header before TCP */
	SH_ESTAB,	/* addresses/ports of the loopback connection, filled at run time */
	SH_SYN_OPTS,	/* TCP data offset 8: MSS, SACK permitted, window scale */
	SH_SYN_DATA,	/* 10 bytes of payload behind the TCP header (Fast Open) */
};

/* Listener sets a row needs: bit per ztunnel port, opened in both families. */
#define L_OUT	(1u << 0)
#define L_PLAIN (1u << 1)
#define L_HBONE (1u << 2)
#define L_ALL	(L_OUT | L_PLAIN | L_HBONE)

/*
 * Expected outcomes besides a TC_ACT_* verdict: ASSIGN is a capture or assignment (see the
 * file comment); REFUSED is a frame bpf_prog_test_run_opts() itself rejects with -EINVAL
 * before the program runs (shorter than Ethernet, or an IP ethertype with less than the
 * IP header behind it, on this kernel), so the program's own bounds checks are asserted on
 * the shortest frames test_run accepts (TCP header truncated, ihl beyond the frame).
 */
#define ASSIGN	(-100)
#define REFUSED (-200)
#define RESET	(-300) /* TC_ACT_REDIRECT, and the frame is the SYN's RST|ACK answer */

struct fixture {
	const char *name;
	int v6;
	enum shape shape;
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t flags;
	unsigned int listeners;
	int want_ret;	 /* TC_ACT_*, or ASSIGN */
	int want_reason; /* enum zm_reason; for ASSIGN the reason when assignment works */
};

#define SYN    TH_SYN
#define SYNACK (TH_SYN | TH_ACK)
#define ACK    TH_ACK

static const struct fixture fixtures[] = {
    /* outbound capture */
    {"v4 SYN from enrolled pod on its veth -> 15001", 0, SH_TCP, POD_A4, POD_C4, 40000, 80, SYN,
     L_ALL, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    {"v4 SYN from enrolled pod, only 15001 listening", 0, SH_TCP, POD_A4, POD_C4, 40000, 80, SYN,
     L_OUT, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    {"v4 SYN from enrolled pod, no 15001 listener: refused with RST", 0, SH_TCP, POD_A4, POD_C4,
     40000, 80, SYN, L_PLAIN | L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v4 SYN with options, no 15001 listener: RST, options NOPed", 0, SH_SYN_OPTS, POD_A4, POD_C4,
     40001, 80, SYN, L_PLAIN | L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v4 SYN with data (Fast Open), no 15001 listener: dropped", 0, SH_SYN_DATA, POD_A4, POD_C4,
     40002, 80, SYN, L_PLAIN | L_HBONE, TC_ACT_SHOT, ZM_REASON_DROP_NO_LISTENER},
    {"v4 SYN from enrolled pod to enrolled pod -> 15001", 0, SH_TCP, POD_A4, POD_B4, 40000, 8080,
     SYN, L_OUT, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    {"v4 SYN from enrolled pod to port 15008: not captured", 0, SH_TCP, POD_A4, POD_C4, 40000,
     15008, SYN, L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_ZTUNNEL_PORT},
    /* a same-node waypoint (enrolled or not) dialing an enrolled endpoint's HBONE port */
    {"v4 SYN from enrolled pod to enrolled pod's 15008 -> 15008", 0, SH_TCP, POD_A4, POD_B4, 40000,
     15008, SYN, L_ALL, ASSIGN, ZM_REASON_CAPTURED_HBONE},
    {"v4 SYN from enrolled pod to port 15021: not captured", 0, SH_TCP, POD_A4, POD_C4, 40000,
     15021, SYN, L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_ZTUNNEL_PORT},
    {"v4 SYN from enrolled pod to node address: bypass", 0, SH_TCP, POD_A4, NODE4, 40000, 10250,
     SYN, L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    /* a node address's capture ports are refused (a loop through ztunnel otherwise) */
    {"v4 SYN from enrolled pod to node:15001: RST", 0, SH_TCP, POD_A4, NODE4, 40000, 15001, SYN,
     L_ALL, RESET, ZM_REASON_REFUSED_PROXY_PORT},
    {"v4 SYN from non-enrolled pod to node:15006: RST", 0, SH_TCP, POD_C4, NODE4, 40000, 15006, SYN,
     L_ALL, RESET, ZM_REASON_REFUSED_PROXY_PORT},
    {"v4 SYN to node:15008: bypass", 0, SH_TCP, POD_A4, NODE4, 40000, 15008, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v4 SYN to node:15020 (metrics scrape): bypass", 0, SH_TCP, POD_C4, NODE4, 40000, 15020, SYN,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v4 ACK to node:15001: bypass", 0, SH_TCP, POD_A4, NODE4, 40000, 15001, ACK, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v4 SYN from enrolled address on the wrong veth: spoofed", 0, SH_TCP, POD_S4, POD_C4, 40000,
     80, SYN, L_ALL, TC_ACT_SHOT, ZM_REASON_DROP_SPOOFED},
    {"v4 ACK from enrolled address on the wrong veth: spoofed", 0, SH_TCP, POD_S4, POD_C4, 40000,
     80, ACK, L_ALL, TC_ACT_SHOT, ZM_REASON_DROP_SPOOFED},
    {"v4 SYN with IP options from enrolled pod -> 15001", 0, SH_IP_OPTIONS, POD_A4, POD_C4, 40000,
     80, SYN, L_OUT, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    /* inbound capture */
    {"v4 SYN to enrolled pod on 15008 -> 15008", 0, SH_TCP, POD_C4, POD_B4, 40000, 15008, SYN,
     L_ALL, ASSIGN, ZM_REASON_CAPTURED_HBONE},
    {"v4 SYN to enrolled pod on 15008, only 15006 listening: RST", 0, SH_TCP, POD_C4, POD_B4, 40000,
     15008, SYN, L_PLAIN, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v4 SYN to enrolled pod on 15008, only 15008 listening", 0, SH_TCP, POD_C4, POD_B4, 40000,
     15008, SYN, L_HBONE, ASSIGN, ZM_REASON_CAPTURED_HBONE},
    {"v4 SYN to enrolled pod on 8080 -> 15006", 0, SH_TCP, POD_C4, POD_B4, 40000, 8080, SYN, L_ALL,
     ASSIGN, ZM_REASON_CAPTURED_PLAIN},
    {"v4 SYN to enrolled pod on 8080, only 15006 listening", 0, SH_TCP, POD_C4, POD_B4, 40000, 8080,
     SYN, L_PLAIN, ASSIGN, ZM_REASON_CAPTURED_PLAIN},
    {"v4 SYN to enrolled pod on 8080, only 15008 listening: RST", 0, SH_TCP, POD_C4, POD_B4, 40000,
     8080, SYN, L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v4 SYN to enrolled pod on 15020: not captured", 0, SH_TCP, POD_C4, POD_B4, 40000, 15020, SYN,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_ZTUNNEL_PORT},
    /* not ours */
    {"v4 SYN between non-enrolled pods", 0, SH_TCP, POD_C4, "198.18.2.4", 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_ENROLLED},
    {"v4 SYN from node to non-enrolled pod", 0, SH_TCP, NODE4, POD_C4, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_ENROLLED},
    {"v4 SYN from non-enrolled pod to node: bypass", 0, SH_TCP, POD_C4, NODE4, 40000, 22, SYN,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    /* node traffic passes before the socket lookup, so a CNI filter behind us sees it */
    {"v4 ACK to node address: bypass, never assigned", 0, SH_TCP, POD_A4, NODE4, 40000, 22, ACK,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v6 ACK to node address: bypass, never assigned", 1, SH_TCP, POD_A6, NODE6, 40000, 22, ACK,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v4 ACK of unknown flow from enrolled pod", 0, SH_TCP, POD_A4, POD_C4, 40000, 80, ACK, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_SYN},
    {"v4 SYN-ACK of unknown flow to enrolled pod", 0, SH_TCP, POD_C4, POD_B4, 80, 40000, SYNACK,
     L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_SYN},
    {"v4 ACK of local loopback connection -> its socket", 0, SH_ESTAB, NULL, NULL, 0, 0, ACK, L_ALL,
     ASSIGN, ZM_REASON_ESTABLISHED},
    {"v4 UDP from enrolled pod", 0, SH_UDP, POD_A4, POD_C4, 40000, 53, 0, L_ALL, TC_ACT_UNSPEC,
     ZM_REASON_PASS_NOT_TCP},
    {"ARP", 0, SH_ARP, NULL, NULL, 0, 0, 0, L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_TCP},
    {"v4 fragment from enrolled pod", 0, SH_FRAG, POD_A4, POD_C4, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_FRAGMENT},
    /* malformed: left to the kernel */
    {"v4 truncated IP header", 0, SH_SHORT_IP, POD_A4, POD_C4, 40000, 80, SYN, L_ALL, REFUSED, 0},
    {"v4 ihl 15 beyond the frame", 0, SH_BIG_IHL, POD_A4, POD_C4, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_MALFORMED},
    {"frame shorter than Ethernet", 0, SH_SHORT_ETH, NULL, NULL, 0, 0, 0, L_ALL, REFUSED, 0},
    {"v4 ihl 4", 0, SH_BAD_IHL, POD_A4, POD_C4, 40000, 80, SYN, L_ALL, TC_ACT_UNSPEC,
     ZM_REASON_PASS_MALFORMED},
    {"v4 ethertype with version 6", 0, SH_BAD_VERSION, POD_A4, POD_C4, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_MALFORMED},
    {"v4 truncated TCP header", 0, SH_SHORT_TCP, POD_A4, POD_C4, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_MALFORMED},
    {"v4 TCP data offset 3", 0, SH_BAD_DOFF, POD_A4, POD_C4, 40000, 80, SYN, L_ALL, TC_ACT_UNSPEC,
     ZM_REASON_PASS_MALFORMED},
    /* IPv6 */
    {"v6 SYN from enrolled pod on its veth -> 15001", 1, SH_TCP, POD_A6, POD_C6, 40000, 80, SYN,
     L_ALL, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    {"v6 SYN from enrolled pod, no 15001 listener: refused with RST", 1, SH_TCP, POD_A6, POD_C6,
     40000, 80, SYN, L_PLAIN | L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v6 SYN with options, no 15001 listener: RST, options NOPed", 1, SH_SYN_OPTS, POD_A6, POD_C6,
     40001, 80, SYN, L_PLAIN | L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v6 SYN from enrolled address on the wrong veth: spoofed", 1, SH_TCP, POD_S6, POD_C6, 40000,
     80, SYN, L_ALL, TC_ACT_SHOT, ZM_REASON_DROP_SPOOFED},
    {"v6 SYN with hop-by-hop header from enrolled pod -> 15001", 1, SH_V6_HOPOPTS, POD_A6, POD_C6,
     40000, 80, SYN, L_OUT, ASSIGN, ZM_REASON_CAPTURED_OUTBOUND},
    {"v6 SYN to enrolled pod on 15008 -> 15008", 1, SH_TCP, POD_C6, POD_B6, 40000, 15008, SYN,
     L_HBONE, ASSIGN, ZM_REASON_CAPTURED_HBONE},
    {"v6 SYN to enrolled pod on 15008, only 15006 listening: RST", 1, SH_TCP, POD_C6, POD_B6, 40000,
     15008, SYN, L_PLAIN, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v6 SYN to enrolled pod on 8080 -> 15006", 1, SH_TCP, POD_C6, POD_B6, 40000, 8080, SYN,
     L_PLAIN, ASSIGN, ZM_REASON_CAPTURED_PLAIN},
    {"v6 SYN to enrolled pod on 8080, only 15008 listening: RST", 1, SH_TCP, POD_C6, POD_B6, 40000,
     8080, SYN, L_HBONE, RESET, ZM_REASON_REFUSED_NO_LISTENER},
    {"v6 SYN between non-enrolled pods", 1, SH_TCP, POD_C6, "2001:2::2:4", 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_ENROLLED},
    {"v6 SYN from enrolled pod to node address: bypass", 1, SH_TCP, POD_A6, NODE6, 40000, 10250,
     SYN, L_ALL, TC_ACT_UNSPEC, ZM_REASON_PASS_BYPASS},
    {"v6 SYN from enrolled pod to node:15001: RST", 1, SH_TCP, POD_A6, NODE6, 40000, 15001, SYN,
     L_ALL, RESET, ZM_REASON_REFUSED_PROXY_PORT},
    {"v6 ACK of unknown flow from enrolled pod", 1, SH_TCP, POD_A6, POD_C6, 40000, 80, ACK, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_NOT_SYN},
    {"v6 ACK of local loopback connection -> its socket", 1, SH_ESTAB, NULL, NULL, 0, 0, ACK, L_ALL,
     ASSIGN, ZM_REASON_ESTABLISHED},
    {"v6 UDP from enrolled pod", 1, SH_UDP, POD_A6, POD_C6, 40000, 53, 0, L_ALL, TC_ACT_UNSPEC,
     ZM_REASON_PASS_NOT_TCP},
    {"v6 fragment header", 1, SH_FRAG, POD_A6, POD_C6, 40000, 80, SYN, L_ALL, TC_ACT_UNSPEC,
     ZM_REASON_PASS_FRAGMENT},
    {"v6 truncated IP header", 1, SH_SHORT_IP, POD_A6, POD_C6, 40000, 80, SYN, L_ALL, REFUSED, 0},
    {"v6 truncated TCP header", 1, SH_SHORT_TCP, POD_A6, POD_C6, 40000, 80, SYN, L_ALL,
     TC_ACT_UNSPEC, ZM_REASON_PASS_MALFORMED},
};

/* The loopback connection SH_ESTAB rows address: packets travel server -> client. */
struct estab {
	int lfd, cfd, afd;
	char addr[INET6_ADDRSTRLEN];
	uint16_t server_port, client_port;
};

static struct estab estab4, estab6;
static int listen_fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
static const uint16_t listen_ports[3] = {15001, 15006, 15008};
static bool assign_works;

/* ---- packets ---------------------------------------------------------------------------- */

#define SYN_SEQ 1000

static size_t put_tcp(uint8_t *p, const struct fixture *f, uint16_t sport, uint16_t dport)
{
	/* MSS 1460, SACK permitted, NOP, window scale 7, NOP NOP: 12 bytes */
	static const uint8_t opts[] = {2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1};
	struct tcphdr th = {0};

	th.source = htons(sport);
	th.dest = htons(dport);
	th.seq = htonl(SYN_SEQ);
	th.ack_seq = (f->flags & TH_ACK) ? htonl(2000) : 0;
	th.doff = f->shape == SH_BAD_DOFF ? 3 : f->shape == SH_SYN_OPTS ? 8 : 5;
	th.window = htons(65535);
	memcpy(p, &th, sizeof(th));
	p[13] = f->flags;
	if (f->shape == SH_SYN_OPTS) {
		memcpy(p + sizeof(th), opts, sizeof(opts));
		return sizeof(th) + sizeof(opts);
	}
	if (f->shape == SH_SYN_DATA) {
		memset(p + sizeof(th), 'x', 10);
		return sizeof(th) + 10;
	}
	return sizeof(th);
}

/* One's-complement sum of @len bytes, added to @sum (not folded). */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * The TCP checksum of the segment at @l4 (length @l4len) of an IPv4 or IPv6 packet at @ip,
 * over the pseudo-header: 0xffff folded when the segment's own checksum field is right.
 */
static uint16_t tcp_csum_sum(const uint8_t *ip, int v6, const uint8_t *l4, size_t l4len)
{
	uint8_t len_proto[4] = {0, IPPROTO_TCP, (uint8_t)(l4len >> 8), (uint8_t)l4len};
	uint32_t sum = v6 ? csum_add(0, ip + 8, 32) : csum_add(0, ip + 12, 8);

	sum = csum_add(sum, len_proto, 4);
	return csum_fold(csum_add(sum, l4, l4len));
}

/* Fill in correct IPv4 header and TCP checksums of a TCP frame of @len bytes. */
static void csum_fill(uint8_t *frame, size_t len, int v6)
{
	uint8_t *ip = frame + sizeof(struct ethhdr);
	size_t ihl = v6 ? 40 : (size_t)(ip[0] & 0x0f) * 4;
	uint8_t *l4 = ip + ihl;
	uint16_t c;

	if (!v6) {
		ip[10] = ip[11] = 0;
		c = (uint16_t)~csum_fold(csum_add(0, ip, ihl));
		ip[10] = c >> 8, ip[11] = c & 0xff;
	}
	l4[16] = l4[17] = 0;
	c = (uint16_t)~tcp_csum_sum(ip, v6, l4, len - (size_t)(l4 - frame));
	l4[16] = c >> 8, l4[17] = c & 0xff;
}

static size_t put_udp(uint8_t *p, uint16_t sport, uint16_t dport)
{
	uint16_t h[4] = {htons(sport), htons(dport), htons(8), 0};

	memcpy(p, h, sizeof(h));
	return sizeof(h);
}

static size_t build_v4(uint8_t *p, const struct fixture *f, const char *src, const char *dst,
		       uint16_t sport, uint16_t dport)
{
	struct iphdr ip = {0};
	size_t ihl = f->shape == SH_IP_OPTIONS ? 24 : 20, l4;

	ip.version = f->shape == SH_BAD_VERSION ? 6 : 4;
	ip.ihl = f->shape == SH_BAD_IHL ? 4 : f->shape == SH_BIG_IHL ? 15 : ihl / 4;
	ip.ttl = 64;
	ip.protocol = f->shape == SH_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	ip.frag_off = f->shape == SH_FRAG ? htons(IP_MF) : htons(IP_DF);
	inet_pton(AF_INET, src, &ip.saddr);
	inet_pton(AF_INET, dst, &ip.daddr);
	memcpy(p, &ip, sizeof(ip));
	if (ihl > 20)
		memset(p + 20, IPOPT_NOP, ihl - 20);
	if (f->shape == SH_SHORT_IP)
		return 12;
	l4 =
	    f->shape == SH_UDP ? put_udp(p + ihl, sport, dport) : put_tcp(p + ihl, f, sport, dport);
	if (f->shape == SH_SHORT_TCP)
		l4 = 10;
	ip.tot_len = htons(ihl + l4);
	memcpy(p, &ip, sizeof(ip)); /* p is not 4-byte aligned behind Ethernet */
	return ihl + l4;
}

static size_t build_v6(uint8_t *p, const struct fixture *f, const char *src, const char *dst,
		       uint16_t sport, uint16_t dport)
{
	struct ip6_hdr ip6 = {0};
	size_t off = sizeof(ip6), l4;
	uint8_t proto = f->shape == SH_UDP ? IPPROTO_UDP : IPPROTO_TCP;

	ip6.ip6_vfc = 6 << 4;
	ip6.ip6_hlim = 64;
	inet_pton(AF_INET6, src, &ip6.ip6_src);
	inet_pton(AF_INET6, dst, &ip6.ip6_dst);
	if (f->shape == SH_FRAG || f->shape == SH_V6_HOPOPTS) {
		/* 8-byte extension header: next header, length 0, then padding / frag fields */
		ip6.ip6_nxt = f->shape == SH_FRAG ? IPPROTO_FRAGMENT : IPPROTO_HOPOPTS;
		memset(p + off, 0, 8);
		p[off] = proto;
		if (f->shape == SH_V6_HOPOPTS)
			p[off + 2] = 1, p[off + 3] = 4; /* PadN covering the 6 option bytes */
		off += 8;
	} else {
		ip6.ip6_nxt = proto;
	}
	memcpy(p, &ip6, sizeof(ip6));
	if (f->shape == SH_SHORT_IP)
		return 20;
	l4 = proto == IPPROTO_UDP ? put_udp(p + off, sport, dport)
				  : put_tcp(p + off, f, sport, dport);
	if (f->shape == SH_SHORT_TCP)
		l4 = 10;
	ip6.ip6_plen = htons(off - sizeof(ip6) + l4);
	memcpy(p, &ip6, sizeof(ip6)); /* p is not 4-byte aligned behind Ethernet */
	return off + l4;
}

/* Build the fixture's frame into buf; returns its length. */
static size_t build_packet(const struct fixture *f, uint8_t *buf)
{
	struct ethhdr eth = {.h_dest = {2, 0, 0, 0, 0, 2}, .h_source = {2, 0, 0, 0, 0, 1}};
	const char *src = f->src, *dst = f->dst;
	uint16_t sport = f->sport, dport = f->dport;
	size_t len;

	if (f->shape == SH_ESTAB) {
		const struct estab *e = f->v6 ? &estab6 : &estab4;

		src = dst = e->addr;
		sport = e->server_port;
		dport = e->client_port;
	}
	if (f->shape == SH_SHORT_ETH)
		return 10;
	if (f->shape == SH_ARP) {
		eth.h_proto = htons(ETH_P_ARP);
		memcpy(buf, &eth, sizeof(eth));
		memset(buf + sizeof(eth), 0, 28);
		return sizeof(eth) + 28;
	}
	eth.h_proto = htons(f->v6 ? ETH_P_IPV6 : ETH_P_IP);
	memcpy(buf, &eth, sizeof(eth));
	if (f->v6)
		len = sizeof(eth) + build_v6(buf + sizeof(eth), f, src, dst, sport, dport);
	else
		len = sizeof(eth) + build_v4(buf + sizeof(eth), f, src, dst, sport, dport);
	/* Right checksums where the program may rewrite the packet (it updates them). */
	if (f->shape == SH_TCP || f->shape == SH_SYN_OPTS || f->shape == SH_SYN_DATA)
		csum_fill(buf, len, f->v6);
	return len;
}

/* ---- namespace, sockets, maps ----------------------------------------------------------- */

static int netns_enter(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	return test_lo_up();
}

static socklen_t sockaddr_fill(struct sockaddr_storage *ss, int v6, const char *addr, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, addr, &s4->sin_addr);
	return sizeof(*s4);
}

/* A listener like ztunnel's: IP_TRANSPARENT, wildcard address, one family only. */
static int listener_open(int v6, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_fill(&ss, v6, v6 ? "::" : "0.0.0.0", port);
	int one = 1, fd;

	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
		: setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Open or close listeners so exactly the ports in mask listen, in both families. */
static int listeners_sync(unsigned int mask)
{
	for (int i = 0; i < 3; i++) {
		for (int v6 = 0; v6 < 2; v6++) {
			int *fd = &listen_fds[i][v6];

			if ((mask & (1u << i)) && *fd < 0) {
				*fd = listener_open(v6, listen_ports[i]);
				if (*fd < 0)
					return *fd;
			} else if (!(mask & (1u << i)) && *fd >= 0) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	return 0;
}

static uint16_t sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A real TCP connection over lo: its client socket is what SH_ESTAB packets belong to. */
static int estab_open(struct estab *e, int v6)
{
	struct sockaddr_storage ss;
	socklen_t len;

	strcpy(e->addr, v6 ? "::1" : "127.0.0.1");
	len = sockaddr_fill(&ss, v6, e->addr, 0);
	e->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	e->cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->lfd < 0 || e->cfd < 0 || bind(e->lfd, (struct sockaddr *)&ss, len) ||
	    listen(e->lfd, 1))
		return -errno;
	e->server_port = sock_port(e->lfd);
	len = sockaddr_fill(&ss, v6, e->addr, e->server_port);
	if (connect(e->cfd, (struct sockaddr *)&ss, len))
		return -errno;
	e->afd = accept(e->lfd, NULL, NULL);
	if (e->afd < 0)
		return -errno;
	e->client_port = sock_port(e->cfd);
	return 0;
}

static int map_put_addr(int fd, const char *text, const void *val)
{
	struct zm_addr key;

	if (zm_addr_parse(text, &key))
		return -EINVAL;
	return bpf_map_update_elem(fd, &key, val, BPF_NOEXIST) ? -errno : 0;
}

static int maps_fill(struct capture_bpf *skel)
{
	int wl = bpf_map__fd(skel->maps.zm_workloads), by = bpf_map__fd(skel->maps.zm_bypass);
	struct zm_workload on_lo = {.ifindex = LO_IFINDEX, .flags = ZM_WL_F_CAPTURE};
	struct zm_workload elsewhere = {.ifindex = OTHER_IFINDEX, .flags = ZM_WL_F_CAPTURE};
	__u32 node = ZM_BYPASS_NODE_ADDR;
	int err = 0;

	err = err ?: map_put_addr(wl, POD_A4, &on_lo);
	err = err ?: map_put_addr(wl, POD_B4, &on_lo);
	err = err ?: map_put_addr(wl, POD_S4, &elsewhere);
	err = err ?: map_put_addr(wl, POD_A6, &on_lo);
	err = err ?: map_put_addr(wl, POD_B6, &on_lo);
	err = err ?: map_put_addr(wl, POD_S6, &elsewhere);
	err = err ?: map_put_addr(by, NODE4, &node);
	err = err ?: map_put_addr(by, NODE6, &node);
	return err;
}

/* Sum the per-CPU counters of every reason into out[ZM_REASON_MAX]. */
static int stats_read(struct capture_bpf *skel, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(skel->maps.zm_stats);
	uint64_t vals[ncpu > 0 ? ncpu : 1];

	if (ncpu <= 0)
		return -EINVAL;
	for (__u32 r = 0; r < ZM_REASON_MAX; r++) {
		if (bpf_map_lookup_elem(fd, &r, vals))
			return -errno;
		out[r] = 0;
		for (int c = 0; c < ncpu; c++)
			out[r] += vals[c];
	}
	return 0;
}

/* Load zm_capture with private (unpinned) maps and the given fail-open setting. */
static struct capture_bpf *skel_load(bool fail_open)
{
	struct capture_bpf *skel;
	struct bpf_map *map;

	skel = capture_bpf__open();
	if (!skel)
		return NULL;
	bpf_object__for_each_map (map, skel->obj)
		bpf_map__set_pin_path(map, NULL);
	skel->rodata->zm_cfg_fail_open = fail_open;
	if (capture_bpf__load(skel) || maps_fill(skel)) {
		capture_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* ---- running fixtures ------------------------------------------------------------------- */

struct outcome {
	int err;    /* bpf_prog_test_run_opts() */
	int retval; /* program's verdict */
	int reason; /* the one counter that moved, -1 if none or several */
	__u32 mark; /* skb->mark after the run (started as MARK_IN) */
	uint8_t in[256], out[256];
	uint32_t in_len, out_len; /* the frame given, and the frame as the program left it */
};

#define MARK_IN 0x10001u

static struct outcome fixture_run(struct capture_bpf *skel, const struct fixture *f)
{
	uint64_t before[ZM_REASON_MAX], after[ZM_REASON_MAX];
	struct __sk_buff ctx = {.mark = MARK_IN}, ctx_out = {0};
	struct outcome o = {.reason = -1};
	int moved = 0;

	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = o.in, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .ctx_out = &ctx_out,
		    .ctx_size_out = sizeof(ctx_out), .data_out = o.out,
		    .data_size_out = sizeof(o.out), .repeat = 1);
	o.in_len = topts.data_size_in = build_packet(f, o.in);

	if (listeners_sync(f->listeners) || stats_read(skel, before)) {
		o.err = -EIO;
		return o;
	}
	o.err =
	    bpf_prog_test_run_opts(bpf_program__fd(skel->progs.zm_capture), &topts) ? -errno : 0;
	o.retval = (int)topts.retval;
	o.mark = ctx_out.mark;
	o.out_len = topts.data_size_out;
	if (stats_read(skel, after))
		o.err = -EIO;
	for (int r = 0; r < ZM_REASON_MAX; r++) {
		if (after[r] == before[r])
			continue;
		moved++;
		o.reason = after[r] - before[r] == 1 ? r : -1;
	}
	if (moved != 1)
		o.reason = -1;
	return o;
}

/*
 * The frame a refusal leaves: the SYN turned into its RST|ACK answer, as the client's stack
 * must accept it (RFC 9293): addresses and ports swapped, sequence 0, acknowledging the SYN,
 * no options left but NOPs, both checksums right, the length unchanged.
 */
static void reset_check(const struct fixture *f, const struct outcome *o)
{
	const uint8_t *in = o->in, *out = o->out;
	size_t ihl = f->v6 ? 40 : 20, l4 = sizeof(struct ethhdr) + ihl,
	       doff = (in[l4 + 12] >> 4) * 4;
	size_t alen = f->v6 ? 16 : 4, aoff = sizeof(struct ethhdr) + (f->v6 ? 8 : 12);
	uint32_t seq, ack;
	bool nops = true;

	is_int(o->out_len, o->in_len, "%s: RST frame as long as the SYN", f->name);
	ok(!memcmp(out, in + 6, 6) && !memcmp(out + 6, in, 6), "%s: MACs swapped", f->name);
	ok(!memcmp(out + aoff, in + aoff + alen, alen) &&
	       !memcmp(out + aoff + alen, in + aoff, alen),
	   "%s: addresses swapped", f->name);
	ok(!memcmp(out + l4, in + l4 + 2, 2) && !memcmp(out + l4 + 2, in + l4, 2),
	   "%s: ports swapped", f->name);
	memcpy(&seq, out + l4 + 4, 4);
	memcpy(&ack, out + l4 + 8, 4);
	ok(ntohl(seq) == 0 && ntohl(ack) == SYN_SEQ + 1, "%s: seq 0, ack = SYN seq + 1 (%u, %u)",
	   f->name, ntohl(seq), ntohl(ack));
	is_int(out[l4 + 13], TH_RST | TH_ACK, "%s: flags RST|ACK", f->name);
	is_int(out[l4 + 12] >> 4, in[l4 + 12] >> 4, "%s: data offset kept", f->name);
	for (size_t i = 20; i < doff; i++)
		nops = nops && out[l4 + i] == 1;
	ok(nops, "%s: options replaced by NOPs", f->name);
	if (!f->v6)
		is_int(csum_fold(csum_add(0, out + sizeof(struct ethhdr), ihl)), 0xffff,
		       "%s: IPv4 header checksum right", f->name);
	is_int(tcp_csum_sum(out + sizeof(struct ethhdr), f->v6, out + l4, o->out_len - l4), 0xffff,
	       "%s: TCP checksum right", f->name);
}

static void fixture_check(struct capture_bpf *skel, const struct fixture *f)
{
	int want_ret = f->want_ret, want_reason = f->want_reason;
	struct outcome o = fixture_run(skel, f);

	if (want_ret == REFUSED) {
		is_int(o.err, -EINVAL, "%s: refused by test_run before the program", f->name);
		return;
	}
	if (want_ret == ASSIGN && !assign_works) {
		want_ret = TC_ACT_SHOT;
		want_reason = ZM_REASON_DROP_ASSIGN_FAILED;
	} else if (want_ret == ASSIGN) {
		want_ret = TC_ACT_OK;
	} else if (want_ret == RESET) {
		want_ret = TC_ACT_REDIRECT;
	}
	if (!is_int(o.err, 0, "%s: test_run", f->name))
		return;
	is_int(o.retval, want_ret, "%s: verdict", f->name);
	is_int(o.reason, want_reason, "%s: one count of reason %d", f->name, want_reason);
	if (want_ret == TC_ACT_OK)
		is_int(o.mark, (MARK_IN & ~ZM_MARK_MASK) | ZM_MARK, "%s: mark", f->name);
	else
		is_int(o.mark, MARK_IN, "%s: mark untouched", f->name);
	if (f->want_ret == RESET)
		reset_check(f, &o);
}

/*
 * Establish whether bpf_sk_assign() can succeed under test_run on this kernel (see the file
 * comment) by running the first outbound-capture fixture: the only two acceptable outcomes
 * are "assigned" and "found the listener, assignment refused".
 */
static void assign_probe(struct capture_bpf *skel)
{
	struct outcome o = fixture_run(skel, &fixtures[0]);

	assign_works =
	    o.err == 0 && o.retval == TC_ACT_OK && o.reason == ZM_REASON_CAPTURED_OUTBOUND;
	ok(o.err == 0 && (assign_works ||
			  (o.retval == TC_ACT_SHOT && o.reason == ZM_REASON_DROP_ASSIGN_FAILED)),
	   "probe: listener found under test_run (retval %d reason %d)", o.retval, o.reason);
	printf("# bpf_sk_assign under BPF_PROG_TEST_RUN: %s\n",
	       assign_works ? "succeeds" : "refused (skb not at tc ingress), as expected");
}

/* zm_cfg_fail_open: a missing listener is counted but the SYN continues uncaptured. */
static void fail_open_check(void)
{
	struct capture_bpf *skel = skel_load(true);
	const struct fixture *f = &fixtures[2]; /* v4 SYN from enrolled pod, no 15001 */

	if (f->want_reason != ZM_REASON_REFUSED_NO_LISTENER)
		tap_bail("fixtures[2] is no longer the missing-listener row");
	struct outcome o;

	if (!ok(skel, "fail-open instance loads"))
		return;
	o = fixture_run(skel, f);
	is_int(o.retval, TC_ACT_UNSPEC, "fail open: SYN without listener continues");
	is_int(o.reason, ZM_REASON_DROP_NO_LISTENER, "fail open: still counted");
	capture_bpf__destroy(skel);
}

int main(void)
{
	struct capture_bpf *skel;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		tap_bail("test_capture needs root (netns, BPF, IP_TRANSPARENT)");
	err = netns_enter();
	if (err)
		tap_bail("cannot enter a private network namespace: %s", strerror(-err));
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

	skel = skel_load(false);
	if (!skel)
		tap_bail("zm_capture failed to load or its maps to fill: %s", strerror(errno));
	ok(1, "zm_capture passes the verifier");
	if (estab_open(&estab4, 0) || estab_open(&estab6, 1))
		tap_bail("loopback connections: %s", strerror(errno));

	assign_probe(skel);
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		fixture_check(skel, &fixtures[i]);
	fail_open_check();

	listeners_sync(0);
	capture_bpf__destroy(skel);
	/* The netns, its sockets and the private maps go away with this process. */
	return tap_done();
}
