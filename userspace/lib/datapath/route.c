// SPDX-License-Identifier: Apache-2.0
/*
 * The policy route of bpf/README.md, through rtnetlink (libmnl), never by running ip:
 *   ip rule add fwmark ZM_MARK/ZM_MARK_MASK lookup ZM_ROUTE_TABLE pref ZM_RULE_PRIORITY
 *   ip route add local 0.0.0.0/0 dev lo table ZM_ROUTE_TABLE      (and the ::/0 twins)
 * Without it a SYN the capture program assigned to a ztunnel socket is dropped by the
 * forwarding path. Adds use NLM_F_EXCL so the kernel reports an existing rule (a rule added
 * without it is duplicated) and EEXIST counts as success; deletes accept "not there".
 */
#include "internal.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Room for every FRA_* and RTA_* attribute type this code reads. */
#define DP_TB_MAX 64

struct dp_nl {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
};

static int dp_nl_open(struct zm_dp *dp, struct dp_nl *nl)
{
	nl->sock = mnl_socket_open(NETLINK_ROUTE);
	if (!nl->sock)
		return dp_errf(dp, -errno, "opening an rtnetlink socket failed: %s",
			       strerror(errno));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(nl->sock);
		return dp_errf(dp, err, "binding an rtnetlink socket failed: %s", strerror(-err));
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned int)time(NULL);
	return 0;
}

/* Send one request and run cb over the answer (a dump or an ack). Returns 0 or -errno. */
static int dp_nl_talk(struct dp_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;
	int ret;

	nlh->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

static struct nlmsghdr *dp_rule_msg(char *buf, __u16 type, __u16 flags, __u8 family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = ZM_ROUTE_TABLE < 256 ? ZM_ROUTE_TABLE : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_TABLE, ZM_ROUTE_TABLE);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, ZM_RULE_PRIORITY);
	mnl_attr_put_u32(nlh, FRA_FWMARK, ZM_MARK);
	mnl_attr_put_u32(nlh, FRA_FWMASK, ZM_MARK_MASK);
	return nlh;
}

static struct nlmsghdr *dp_route_msg(char *buf, __u16 type, __u16 flags, __u8 family, __u32 lo)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = ZM_ROUTE_TABLE < 256 ? ZM_ROUTE_TABLE : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, ZM_ROUTE_TABLE);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
	return nlh;
}

static const char *dp_family_name(__u8 family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

int dp_route_add(struct zm_dp *dp)
{
	static const __u8 families[] = {AF_INET, AF_INET6};
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned int lo = if_nametoindex("lo");
	struct dp_nl nl;
	int err = 0;

	if (!lo)
		return dp_errf(dp, -ENODEV, "the node namespace has no lo interface");
	err = dp_nl_open(dp, &nl);
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(families) && !err; i++) {
		__u8 fam = families[i];

		err = dp_nl_talk(
		    &nl, dp_rule_msg(buf, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, fam),
		    NULL, NULL);
		if (err && err != -EEXIST) {
			dp_errf(dp, err, "adding the %s rule fwmark 0x%x/0x%x lookup %u failed: %s",
				dp_family_name(fam), ZM_MARK, ZM_MARK_MASK, ZM_ROUTE_TABLE,
				strerror(-err));
			break;
		}
		err = dp_nl_talk(
		    &nl,
		    dp_route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, fam, lo),
		    NULL, NULL);
		if (err && err != -EEXIST) {
			dp_errf(dp, err, "adding the %s local default route to table %u failed: %s",
				dp_family_name(fam), ZM_ROUTE_TABLE, strerror(-err));
			break;
		}
		err = 0;
	}
	mnl_socket_close(nl.sock);
	return err;
}

int dp_route_del(struct zm_dp *dp)
{
	static const __u8 families[] = {AF_INET, AF_INET6};
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned int lo = if_nametoindex("lo");
	struct dp_nl nl;
	int err, first = 0;

	err = dp_nl_open(dp, &nl);
	if (err)
		return err;
	/* Try everything even after a failure: leave as little behind as possible. */
	for (size_t i = 0; i < sizeof(families); i++) {
		__u8 fam = families[i];

		err = dp_nl_talk(&nl, dp_rule_msg(buf, RTM_DELRULE, NLM_F_ACK, fam), NULL, NULL);
		if (err && err != -ENOENT && !first)
			first = dp_errf(dp, err, "deleting the %s capture rule failed: %s",
					dp_family_name(fam), strerror(-err));
		err = dp_nl_talk(&nl, dp_route_msg(buf, RTM_DELROUTE, NLM_F_ACK, fam, lo), NULL,
				 NULL);
		if (err && err != -ESRCH && err != -ENOENT && !first)
			first = dp_errf(dp, err, "deleting the %s route of table %u failed: %s",
					dp_family_name(fam), ZM_ROUTE_TABLE, strerror(-err));
	}
	mnl_socket_close(nl.sock);
	return first;
}

static int dp_attr_u32(const struct nlattr *tb_attr, __u32 *out)
{
	if (!tb_attr || mnl_attr_validate(tb_attr, MNL_TYPE_U32) < 0)
		return -1;
	*out = mnl_attr_get_u32(tb_attr);
	return 0;
}

static int dp_collect_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type >= 0 && type < DP_TB_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int dp_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[DP_TB_MAX] = {};
	__u32 mark = 0, mask = 0, prio = 0, table = frh->table;
	bool *found = data;

	mnl_attr_parse(nlh, sizeof(*frh), dp_collect_attr, tb);
	dp_attr_u32(tb[FRA_TABLE], &table);
	if (!dp_attr_u32(tb[FRA_FWMARK], &mark) && !dp_attr_u32(tb[FRA_FWMASK], &mask) &&
	    !dp_attr_u32(tb[FRA_PRIORITY], &prio) && mark == ZM_MARK && mask == ZM_MARK_MASK &&
	    prio == ZM_RULE_PRIORITY && table == ZM_ROUTE_TABLE && frh->action == FR_ACT_TO_TBL)
		*found = true;
	return MNL_CB_OK;
}

static int dp_route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[DP_TB_MAX] = {};
	__u32 table = rtm->rtm_table;
	bool *found = data;

	mnl_attr_parse(nlh, sizeof(*rtm), dp_collect_attr, tb);
	dp_attr_u32(tb[RTA_TABLE], &table);
	if (table == ZM_ROUTE_TABLE && rtm->rtm_type == RTN_LOCAL && rtm->rtm_dst_len == 0)
		*found = true;
	return MNL_CB_OK;
}

static int dp_dump(struct dp_nl *nl, __u16 type, __u8 family, mnl_cb_t cb, bool *found)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	/* rtmsg and fib_rule_hdr both start with the family byte and are the same size. */
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	*found = false;
	return dp_nl_talk(nl, nlh, cb, found);
}

int dp_route_query(struct zm_dp *dp, struct zm_dp_route_state *st)
{
	struct dp_nl nl;
	int err;

	memset(st, 0, sizeof(*st));
	err = dp_nl_open(dp, &nl);
	if (err)
		return err;
	err = dp_dump(&nl, RTM_GETRULE, AF_INET, dp_rule_cb, &st->rule4) ?:
	      dp_dump(&nl, RTM_GETROUTE, AF_INET, dp_route_cb, &st->route4) ?:
	      dp_dump(&nl, RTM_GETRULE, AF_INET6, dp_rule_cb, &st->rule6) ?:
	      dp_dump(&nl, RTM_GETROUTE, AF_INET6, dp_route_cb, &st->route6);
	mnl_socket_close(nl.sock);
	if (err)
		return dp_errf(dp, err, "dumping rules and routes failed: %s", strerror(-err));
	return 0;
}
