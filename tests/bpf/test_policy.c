// SPDX-License-Identifier: Apache-2.0
/*
 * BPF tier for the L4 policy fast path: tc zm_capture's DROP_POLICY branch and the XDP
 * program zm_policy_xdp, driven through the real library. The test enters private network
 * and mount namespaces, mounts a bpffs of its own, loads the datapath there with
 * zm_dp_load(--xdp generic on lo), enrolls two pods on lo and installs rules with
 * zm_dp_policy_replace(); then every fixture packet runs once through the pinned programs
 * with bpf_prog_test_run_opts(), asserting the verdict, the one zm_stats reason that moved
 * and the per-policy counters read back with zm_dp_policy_stats().
 *
 * tc under test_run cannot bpf_sk_assign() (see test_capture.c), so a SYN that goes on to the
 * 15006 listener shows as TC_ACT_SHOT + drop_assign_failed: that is "not dropped by policy,
 * steered to ztunnel". XDP test_run is the real thing: XDP_DROP / XDP_PASS as on a NIC.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include "common/addr.h"
#include "datapath/datapath.h"
#include "../lib/lo_up.h"
#include "../lib/tap.h"

#define POD_B4	  "198.18.1.2" /* enrolled destination */
#define POD_B6	  "2001:2::1:2"
#define POD_E4	  "198.18.1.3"	 /* enrolled, no rules */
#define DENIED4	  "198.18.9.7"	 /* inside the denied 198.18.9.0/24 */
#define EXCEPT4	  "198.18.9.200" /* inside the DEFER exception 198.18.9.128/25 */
#define ALLOWED4  "198.18.2.3"
#define DENIED6	  "2001:2::9:7"
#define ALLOWED6  "2001:2::2:3"
#define ENROLLED4 "198.18.1.1" /* an enrolled source: outbound capture, never policy */

#define POL_NET	 "ns1/deny-net"	 /* any port from 198.18.9.0/24, minus .128/25 */
#define POL_PORT "ns1/deny-9090" /* port 9090 from anywhere */
#define POL_V6	 "ns1/deny-v6"

#define XDP_SHOT (-1000 - XDP_DROP) /* fixture verdicts for the XDP table */
#define XDP_OK	 (-1000 - XDP_PASS)

struct fixture {
	const char *name;
	const char *src, *dst;
	uint16_t dport;
	uint8_t flags;
	int want_ret;	      /* TC_ACT_* or XDP_* as above */
	int want_reason;      /* zm_stats reason that moves by one, -1: none */
	const char *want_pol; /* policy whose counter moves by one, NULL: none */
};

#define SYN TH_SYN
#define ACK TH_ACK

static const struct fixture tc_fixtures[] = {
    {"tc: SYN from denied CIDR -> shot under the policy", DENIED4, POD_B4, 8080, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_POLICY, POL_NET},
    {"tc: SYN from allowed source -> 15006 path", ALLOWED4, POD_B4, 8080, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: SYN from the DEFER exception -> 15006 path", EXCEPT4, POD_B4, 8080, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: SYN from denied CIDR to 15008 -> HBONE path, never policy", DENIED4, POD_B4, 15008, SYN,
     TC_ACT_SHOT, ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: SYN from denied CIDR to 15021 -> not captured", DENIED4, POD_B4, 15021, SYN,
     TC_ACT_UNSPEC, ZM_REASON_PASS_ZTUNNEL_PORT, NULL},
    {"tc: port rule: SYN to 9090 from anywhere -> shot", ALLOWED4, POD_B4, 9090, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_POLICY, POL_PORT},
    {"tc: port rule shadows any-port: denied CIDR to 9090 counts there", DENIED4, POD_B4, 9090, SYN,
     TC_ACT_SHOT, ZM_REASON_DROP_POLICY, POL_PORT},
    {"tc: port rule does not apply to 9091", ALLOWED4, POD_B4, 9091, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: other enrolled pod has no rules", DENIED4, POD_E4, 8080, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: ACK from denied CIDR is not a SYN", DENIED4, POD_B4, 8080, ACK, TC_ACT_UNSPEC,
     ZM_REASON_PASS_NOT_SYN, NULL},
    {"tc: enrolled source goes outbound, not to policy", ENROLLED4, POD_B4, 8080, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
    {"tc: v6 SYN from denied prefix -> shot", DENIED6, POD_B6, 443, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_POLICY, POL_V6},
    {"tc: v6 SYN from allowed source -> 15006 path", ALLOWED6, POD_B6, 443, SYN, TC_ACT_SHOT,
     ZM_REASON_DROP_ASSIGN_FAILED, NULL},
};

static const struct fixture xdp_fixtures[] = {
    {"xdp: SYN from denied CIDR -> XDP_DROP", DENIED4, POD_B4, 8080, SYN, XDP_SHOT,
     ZM_REASON_DROP_POLICY_XDP, POL_NET},
    {"xdp: SYN from allowed source -> XDP_PASS", ALLOWED4, POD_B4, 8080, SYN, XDP_OK, -1, NULL},
    {"xdp: SYN from the DEFER exception -> XDP_PASS", EXCEPT4, POD_B4, 8080, SYN, XDP_OK, -1, NULL},
    {"xdp: denied CIDR to 15008 -> XDP_PASS", DENIED4, POD_B4, 15008, SYN, XDP_OK, -1, NULL},
    {"xdp: port rule -> XDP_DROP", ALLOWED4, POD_B4, 9090, SYN, XDP_SHOT, ZM_REASON_DROP_POLICY_XDP,
     POL_PORT},
    {"xdp: ACK from denied CIDR -> XDP_PASS", DENIED4, POD_B4, 8080, ACK, XDP_OK, -1, NULL},
    {"xdp: enrolled (spoofed) source -> XDP_PASS, left to tc", ENROLLED4, POD_B4, 8080, SYN, XDP_OK,
     -1, NULL},
    {"xdp: v6 denied prefix -> XDP_DROP", DENIED6, POD_B6, 443, SYN, XDP_SHOT,
     ZM_REASON_DROP_POLICY_XDP, POL_V6},
    {"xdp: v6 allowed -> XDP_PASS", ALLOWED6, POD_B6, 443, SYN, XDP_OK, -1, NULL},
};

static struct zm_dp dp;
static char bpffs[] = "/tmp/zmh-test-policy-XXXXXX";

static size_t build_packet(const struct fixture *f, uint8_t *buf)
{
	struct ethhdr eth = {.h_dest = {2, 0, 0, 0, 0, 2}, .h_source = {2, 0, 0, 0, 0, 1}};
	struct tcphdr th = {0};
	bool v6 = strchr(f->dst, ':');
	size_t l3;

	th.source = htons(40000);
	th.dest = htons(f->dport);
	th.seq = htonl(1000);
	th.ack_seq = (f->flags & TH_ACK) ? htonl(2000) : 0;
	th.doff = 5;
	th.window = htons(65535);
	eth.h_proto = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
	memcpy(buf, &eth, sizeof(eth));
	if (v6) {
		struct ip6_hdr ip6 = {0};

		ip6.ip6_vfc = 6 << 4;
		ip6.ip6_hlim = 64;
		ip6.ip6_nxt = IPPROTO_TCP;
		ip6.ip6_plen = htons(sizeof(th));
		inet_pton(AF_INET6, f->src, &ip6.ip6_src);
		inet_pton(AF_INET6, f->dst, &ip6.ip6_dst);
		memcpy(buf + sizeof(eth), &ip6, sizeof(ip6));
		l3 = sizeof(ip6);
	} else {
		struct iphdr ip = {.version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_TCP};

		ip.tot_len = htons(sizeof(ip) + sizeof(th));
		inet_pton(AF_INET, f->src, &ip.saddr);
		inet_pton(AF_INET, f->dst, &ip.daddr);
		memcpy(buf + sizeof(eth), &ip, sizeof(ip));
		l3 = sizeof(ip);
	}
	memcpy(buf + sizeof(eth) + l3, &th, sizeof(th));
	buf[sizeof(eth) + l3 + 13] = f->flags;
	return sizeof(eth) + l3 + sizeof(th);
}

/* ---- environment ------------------------------------------------------------------------ */

static int env_enter(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS))
		return -errno;
	/* Private mounts, so our bpffs never shows outside this process. */
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) || !mkdtemp(bpffs) ||
	    mount("bpf", bpffs, "bpf", 0, NULL))
		return -errno;
	return test_lo_up();
}

/* ztunnel's 15006 and 15008 stand-ins, both families, so captured SYNs find a listener. */
static int listeners_open(void)
{
	static const uint16_t ports[] = {15001, 15006, 15008};
	int one = 1;

	for (int v6 = 0; v6 < 2; v6++) {
		for (size_t i = 0; i < 3; i++) {
			struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
						  .sin6_port = htons(ports[i])};
			struct sockaddr_in s4 = {.sin_family = AF_INET,
						 .sin_port = htons(ports[i])};
			int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (fd < 0 ||
			    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
			    setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
				       v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one, sizeof(one)) ||
			    bind(fd, v6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
				 v6 ? sizeof(s6) : sizeof(s4)) ||
			    listen(fd, 16))
				return -errno;
		}
	}
	return 0;
}

static int enroll(const char *addr)
{
	struct zm_dp_enroll e = {.n_addrs = 1, .veth = "lo", .hbone = true};

	if (zm_addr_parse(addr, &e.addrs[0]))
		return -EINVAL;
	snprintf(e.info.name, sizeof(e.info.name), "pod-%s", addr);
	return zm_dp_enroll(&dp, &e);
}

static struct zm_dp_policy_rule rule(const char *pol, const char *dst, uint16_t port,
				     const char *src, bool defer)
{
	struct zm_dp_policy_rule r = {.dst_port = port, .defer = defer};

	snprintf(r.policy, sizeof(r.policy), "%s", pol);
	zm_addr_parse(dst, &r.dst);
	if (src)
		zm_cidr_parse(src, false, &r.src, &r.src_prefix);
	return r;
}

static int rules_install(void)
{
	struct zm_dp_policy_rule rules[] = {
	    rule(POL_NET, POD_B4, 0, "198.18.9.0/24", false),
	    rule(POL_NET, POD_B4, 0, "198.18.9.128/25", true),
	    rule(POL_PORT, POD_B4, 9090, NULL, false),
	    rule(POL_V6, POD_B6, 0, "2001:2::9:0/112", false),
	};

	return zm_dp_policy_replace(&dp, rules, sizeof(rules) / sizeof(rules[0]));
}

/* ---- running fixtures ------------------------------------------------------------------- */

static __u64 pol_drops(const char *name)
{
	static struct zm_dp_policy_stat st[ZM_MAX_POLICIES];
	size_t n = 0;

	if (zm_dp_policy_stats(&dp, st, ZM_MAX_POLICIES, &n))
		return ~0ull;
	for (size_t i = 0; i < n && i < ZM_MAX_POLICIES; i++)
		if (!strcmp(st[i].policy, name))
			return st[i].tc_drops + st[i].xdp_drops;
	return 0;
}

static int prog_fd(const char *pin)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dp.pin_dir, pin);
	return bpf_obj_get(path);
}

static void fixture_check(int fd, bool xdp, const struct fixture *f)
{
	static const char *const pols[] = {POL_NET, POL_PORT, POL_V6};
	__u64 before[ZM_REASON_MAX], after[ZM_REASON_MAX], pb[3], pa[3];
	struct __sk_buff skb = {0};
	uint8_t buf[128] = {0};
	int moved = -1, n_moved = 0, want = f->want_ret;
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = buf, .repeat = 1);

	if (!xdp) {
		t.ctx_in = &skb;
		t.ctx_size_in = sizeof(skb);
	} else {
		want = -(want + 1000);
	}
	t.data_size_in = build_packet(f, buf);
	for (int i = 0; i < 3; i++)
		pb[i] = pol_drops(pols[i]);
	zm_dp_stats_read(&dp, before);
	if (!is_int(bpf_prog_test_run_opts(fd, &t) ? -errno : 0, 0, "%s: test_run", f->name))
		return;
	zm_dp_stats_read(&dp, after);
	for (int r = 0; r < ZM_REASON_MAX; r++) {
		if (after[r] != before[r]) {
			n_moved++;
			moved = after[r] - before[r] == 1 ? r : -2;
		}
	}
	is_int((int)t.retval, want, "%s: verdict", f->name);
	is_int(n_moved > 1 ? -2 : moved, f->want_reason, "%s: zm_stats reason", f->name);
	for (int i = 0; i < 3; i++) {
		pa[i] = pol_drops(pols[i]);
		is_int((int)(pa[i] - pb[i]), f->want_pol && !strcmp(f->want_pol, pols[i]),
		       "%s: %s counter", f->name, pols[i]);
	}
}

/* Replacement: kept names keep slot and counters, dropped names go, bad input changes nothing. */
static void replace_check(void)
{
	static struct zm_dp_policy_rule live[16];
	static struct zm_dp_policy_stat st[ZM_MAX_POLICIES];
	struct zm_dp_policy_rule bad = rule(POL_NET, POD_B4, 0, "198.18.9.0/24", false);
	struct zm_dp_policy_rule keep = rule(POL_PORT, POD_B4, 9090, NULL, false);
	__u64 serial0 = 0, serial1 = 0, port_drops = pol_drops(POL_PORT);
	size_t n = 0;

	zm_dp_policy_list(&dp, live, 16, &n, &serial0);
	is_int((int)n, 4, "list: four live rules");
	bad.src_prefix = 33;
	is_int(zm_dp_policy_replace(&dp, &bad, 1), -EINVAL, "a /33 source prefix is refused");
	zm_dp_policy_list(&dp, live, 16, &n, &serial1);
	ok(n == 4 && serial1 == serial0, "refused replacement left the live set alone");

	is_int(zm_dp_policy_replace(&dp, &keep, 1), 0, "replace with one rule");
	zm_dp_policy_list(&dp, live, 16, &n, &serial1);
	ok(n == 1 && serial1 == serial0 + 1, "one live rule, serial bumped");
	ok(n == 1 && !strcmp(live[0].policy, POL_PORT) && live[0].dst_port == 9090 &&
	       live[0].src_prefix == 0 && !live[0].defer,
	   "the live rule reads back as given");
	is_int((int)pol_drops(POL_PORT), (int)port_drops, "kept policy kept its counters");
	zm_dp_policy_stats(&dp, st, ZM_MAX_POLICIES, &n);
	ok(n == 1 && !strcmp(st[0].policy, POL_PORT) && st[0].n_rules == 1,
	   "removed policies are gone from the stats");
	is_int(zm_dp_policy_replace(&dp, NULL, 0), 0, "clear the rule set");
	zm_dp_policy_list(&dp, live, 16, &n, NULL);
	is_int((int)n, 0, "no live rules");
}

int main(void)
{
	struct zm_dp_load_opts lo = {
	    .uplinks = (const char *[]){"lo"}, .n_uplinks = 1, .xdp = ZM_DP_XDP_GENERIC};
	struct zm_dp_load_result res;
	int err, tc_fd, xdp_fd;
	char pindir[64];
	__u32 id = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		tap_bail("test_policy needs root (netns, bpffs, BPF)");
	err = env_enter();
	if (err)
		tap_bail("private netns + bpffs: %s", strerror(-err));
	zm_dp_set_debug(getenv("ZM_TEST_DEBUG") != NULL);
	/* A subdirectory, as in production: a fresh bpffs root holds the kernel's *.debug files. */
	snprintf(pindir, sizeof(pindir), "%s/zmesh", bpffs);
	zm_dp_init(&dp, pindir);
	err = zm_dp_load(&dp, &lo, &res);
	if (err)
		tap_bail("zm_dp_load: %s", dp.err);
	ok(res.n_xdp == 1, "XDP policy program attached to lo in generic mode");
	ok(!bpf_xdp_query_id(1, XDP_FLAGS_SKB_MODE, &id) && id, "lo has an XDP program (id %u)",
	   id);
	err = enroll(POD_B4) ?: enroll(POD_B6) ?: enroll(POD_E4) ?: enroll(ENROLLED4) ?:
	      listeners_open() ?: rules_install();
	if (err)
		tap_bail("setup: %s (%s)", strerror(-err), dp.err);
	tc_fd = prog_fd(ZM_PIN_PROG_CAPTURE);
	xdp_fd = prog_fd(ZM_PIN_PROG_POLICY_XDP);
	if (tc_fd < 0 || xdp_fd < 0)
		tap_bail("pinned programs missing");
	for (size_t i = 0; i < sizeof(tc_fixtures) / sizeof(tc_fixtures[0]); i++)
		fixture_check(tc_fd, false, &tc_fixtures[i]);
	for (size_t i = 0; i < sizeof(xdp_fixtures) / sizeof(xdp_fixtures[0]); i++)
		fixture_check(xdp_fd, true, &xdp_fixtures[i]);
	replace_check();
	close(tc_fd);
	close(xdp_fd);

	is_int(zm_dp_unload(&dp), 0, "unload %s", dp.err);
	id = 0;
	ok(!bpf_xdp_query_id(1, XDP_FLAGS_SKB_MODE, &id) && !id, "unload detached XDP from lo");
	zm_dp_close(&dp);
	rmdir(pindir);
	umount(bpffs);
	rmdir(bpffs);
	return tap_done();
}
