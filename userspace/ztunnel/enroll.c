// SPDX-License-Identifier: Apache-2.0
/*
 * Auto-enrollment: every workload of this node with protocol HBONE is enrolled in the BPF
 * datapath (zm_dp_enroll), on the host-side veth that the node's routing table uses for its
 * address (RTM_GETROUTE), and unenrolled when it leaves the config. TCP-protocol workloads are
 * not captured: the mesh reaches them in plain TCP and they reach mesh pods through 15006,
 * which needs the capture filter on their veths too, so those veths get it (zm_dp_attach:
 * what a CNI plugin would do for every pod), without enrollment.
 *
 * The datapath itself is loaded by `zmeshctl datapath load` (it owns the uplink choice and
 * the policy route); when it is not loaded yet the ztunnel says so and retries every second,
 * so start order does not matter. Entries of this node left in the maps by an earlier ztunnel
 * and absent from the config are removed on the first sync of a complete model (with istiod
 * or the Kubernetes API as the source: once it answered). Pods announced by the CNI plugin
 * (agent.h) are enrolled on the veth and cgroup it reported rather than the routed interface
 * (behind a bridge the route names the bridge). Runs on the control thread and on the CNI
 * thread, one sync at a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "obs/log.h"
#include "datapath/datapath.h"
#include "agent.h"
#include "zt.h"

#define ZT_MAX_ENROLLED 4096

static struct zm_addr zt_enrolled[ZT_MAX_ENROLLED];
static size_t zt_n_enrolled;
static bool zt_enroll_reconciled;
static pthread_mutex_t zt_enroll_lock = PTHREAD_MUTEX_INITIALIZER; /* for zt_enroll_dump */
static pthread_mutex_t zt_enroll_sync_lock = PTHREAD_MUTEX_INITIALIZER;
static char zt_enroll_err[ZM_DP_ERR_LEN + 64]; /* the last failure, under zt_enroll_lock */

static void zt_enroll_note(const char *what, const char *why)
{
	pthread_mutex_lock(&zt_enroll_lock);
	snprintf(zt_enroll_err, sizeof(zt_enroll_err), "%s%s", what, why);
	pthread_mutex_unlock(&zt_enroll_lock);
}

static int zt_route_cb_attr(const struct nlattr *attr, void *data)
{
	unsigned int *oif = data;

	if (mnl_attr_get_type(attr) == RTA_OIF && !mnl_attr_validate(attr, MNL_TYPE_U32))
		*oif = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int zt_route_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct rtmsg), zt_route_cb_attr, data);
}

/* The interface the node routes a to (the pod's host-side veth). 0 or -errno. */
static int zt_route_oif(const struct zm_addr *a, char ifname[IF_NAMESIZE])
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned int seq = (unsigned int)time(NULL), portid, oif = 0;
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	ssize_t n;
	int r = -EIO;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = a->family == ZM_AF_INET ? AF_INET : AF_INET6;
	rtm->rtm_dst_len = a->family == ZM_AF_INET ? 32 : 128;
	mnl_attr_put(nlh, RTA_DST, a->family == ZM_AF_INET ? 4 : 16, a->addr);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, portid, zt_route_cb, &oif) < 0) {
		r = -errno;
		goto out;
	}
	r = oif && if_indextoname(oif, ifname) ? 0 : -ENODEV;
out:
	mnl_socket_close(nl);
	return r;
}

static void zt_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* Enroll one workload's addresses (grouped by veth). Returns addresses that failed. */
static int zt_enroll_wl(struct zm_dp *dp, const struct zm_cfg_workload *wl, struct zm_addr *ok,
			size_t *n_ok)
{
	char ifname[IF_NAMESIZE], a[ZM_ADDR_STRLEN], cgroup[ZT_AGENT_CG_LEN + 256];
	struct zm_dp_enroll e;
	int failed = 0, r;
	size_t i;

	for (i = 0; i < wl->n_ips; i++) {
		memset(&e, 0, sizeof(e));
		cgroup[0] = '\0';
		r = zt_agent_lookup_addr(&wl->ips[i].addr, ifname, cgroup, sizeof(cgroup))
			? 0
			: zt_route_oif(&wl->ips[i].addr, ifname);
		if (r) {
			obs_log(OBS_WARN, "enroll", "enroll %s/%s: no route to %s: %s",
				wl->namespace, wl->name,
				zm_addr_format(&wl->ips[i].addr, a, sizeof(a)), strerror(-r));
			zt_enroll_note("no route to the address: ", strerror(-r));
			failed++;
			continue;
		}
		e.addrs[0] = wl->ips[i].addr;
		e.n_addrs = 1;
		e.veth = ifname;
		e.cgroup_path = cgroup[0] ? cgroup : NULL;
		e.hbone = true;
		zt_copy(e.info.name, sizeof(e.info.name), wl->name);
		zt_copy(e.info.namespace, sizeof(e.info.namespace), wl->namespace);
		zt_copy(e.info.service_account, sizeof(e.info.service_account),
			wl->service_account);
		zt_copy(e.info.trust_domain, sizeof(e.info.trust_domain), wl->trust_domain);
		zt_copy(e.info.node, sizeof(e.info.node), wl->node);
		r = zm_dp_enroll(dp, &e);
		if (r) {
			obs_log(OBS_WARN, "enroll", "enroll %s on %s: %s",
				zm_addr_format(&e.addrs[0], a, sizeof(a)), ifname, dp->err);
			zt_enroll_note("", dp->err);
			failed++;
			continue;
		}
		if (*n_ok < ZT_MAX_ENROLLED)
			ok[(*n_ok)++] = e.addrs[0];
	}
	return failed;
}

/*
 * Attach the capture filter to a non-enrolled local workload's veth, so its connections to
 * enrolled pods (same node: no uplink on the way) are captured to 15006/15008. Idempotent.
 */
static void zt_attach_wl(struct zm_dp *dp, const struct zm_cfg_workload *wl)
{
	char ifname[IF_NAMESIZE], prev[IF_NAMESIZE] = "";
	size_t i;
	int r;

	for (i = 0; i < wl->n_ips; i++) {
		if (zt_route_oif(&wl->ips[i].addr, ifname) || !strcmp(ifname, prev))
			continue; /* no local route: not on a veth of this node */
		r = zm_dp_attach(dp, ifname);
		/* -ENOENT: datapath not loaded yet, which the enrollment path reports. */
		if (r && r != -ENOENT)
			obs_log(OBS_WARN, "enroll", "attaching capture to %s of %s/%s: %s", ifname,
				wl->namespace, wl->name, dp->err);
		memcpy(prev, ifname, sizeof(prev));
	}
}

static bool zt_addr_in(const struct zm_addr *a, const struct zm_addr *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (zm_addr_equal(a, &v[i]))
			return true;
	return false;
}

struct zt_stale {
	const char *node;
	const struct zm_addr *keep;
	size_t n_keep;
	struct zm_addr out[256];
	size_t n_out;
};

static int zt_stale_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
		       void *ctx)
{
	const struct zm_workload_info *info = values;
	struct zt_stale *st = ctx;

	(void)mi;
	if (!strcmp(info->node, st->node) && !zt_addr_in(key, st->keep, st->n_keep) &&
	    st->n_out < 256)
		memcpy(&st->out[st->n_out++], key, sizeof(struct zm_addr));
	return 0;
}

int zt_enroll_sync(struct zt *zt, const struct zt_snap *s)
{
	static struct zm_addr want[ZT_MAX_ENROLLED];
	size_t n_want = 0, i;
	struct zm_dp dp;
	unsigned int nr;
	int failed = 0;

	if (zt->opts.no_enroll)
		return 0;
	pthread_mutex_lock(&zt_enroll_sync_lock);
	zm_dp_init(&dp, zt->opts.pin_dir);
	zt_agent_attach_pending(&dp);
	for (i = 0; i < s->cfg->n_workloads; i++) {
		const struct zm_cfg_workload *wl = &s->cfg->workloads[i];

		if (strcmp(wl->node, zt->opts.node) || wl->network_mode != ZM_CFG_NETMODE_STANDARD)
			continue;
		if (wl->protocol == ZM_CFG_PROTO_HBONE)
			failed += zt_enroll_wl(&dp, wl, want, &n_want);
		else
			zt_attach_wl(&dp, wl);
	}
	for (i = 0; i < zt_n_enrolled; i++)
		if (!zt_addr_in(&zt_enrolled[i], want, n_want))
			zm_dp_unenroll(&dp, &zt_enrolled[i], NULL, &nr);
	/* Stale entries go only once the model is complete: before istiod's (or the API
	 * server's) first answer the model is empty, and a restarted ztunnel would unenroll
	 * every pod its predecessor enrolled, leaving their traffic uncaptured meanwhile. */
	if (!zt_enroll_reconciled && !failed && zt_xds_synced() && zt_kube_synced()) {
		struct zt_stale st = {.node = zt->opts.node, .keep = want, .n_keep = n_want};

		if (!zm_dp_map_walk(&dp, ZM_STR(ZM_MAP_WL_INFO), zt_stale_cb, &st, NULL)) {
			for (i = 0; i < st.n_out; i++)
				zm_dp_unenroll(&dp, &st.out[i], NULL, &nr);
			zt_enroll_reconciled = true;
		}
	}
	pthread_mutex_lock(&zt_enroll_lock);
	memcpy(zt_enrolled, want, n_want * sizeof(want[0]));
	zt_n_enrolled = n_want;
	pthread_mutex_unlock(&zt_enroll_lock);
	zm_dp_close(&dp);
	pthread_mutex_unlock(&zt_enroll_sync_lock);
	return failed;
}

bool zt_enroll_has(const struct zm_addr *addr)
{
	bool has;

	pthread_mutex_lock(&zt_enroll_lock);
	has = zt_addr_in(addr, zt_enrolled, zt_n_enrolled);
	pthread_mutex_unlock(&zt_enroll_lock);
	return has;
}

void zt_enroll_last_error(char *buf, size_t len)
{
	pthread_mutex_lock(&zt_enroll_lock);
	snprintf(buf, len, "%s", zt_enroll_err[0] ? zt_enroll_err : "unknown error");
	pthread_mutex_unlock(&zt_enroll_lock);
}

char *zt_enroll_dump(void)
{
	char *buf = NULL, a[ZM_ADDR_STRLEN];
	size_t len, i;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fputc('[', f);
	pthread_mutex_lock(&zt_enroll_lock);
	for (i = 0; i < zt_n_enrolled; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", zm_addr_format(&zt_enrolled[i], a, sizeof(a)));
	pthread_mutex_unlock(&zt_enroll_lock);
	fputc(']', f);
	fclose(f);
	return buf;
}

struct zt_present {
	const struct zm_addr *want;
	bool *seen;
	size_t n;
};

static int zt_present_cb(const void *key, const void *values, const struct zm_dp_map_info *mi,
			 void *ctx)
{
	struct zt_present *p = ctx;
	size_t i;

	(void)values;
	(void)mi;
	for (i = 0; i < p->n; i++)
		if (!memcmp(key, &p->want[i], sizeof(p->want[i])))
			p->seen[i] = true;
	return 0;
}

int zt_enroll_missing(struct zt *zt, char *why, size_t len)
{
	static struct zm_addr want[ZT_MAX_ENROLLED];
	static bool seen[ZT_MAX_ENROLLED];
	struct zt_present p = {.want = want, .seen = seen};
	char a[ZM_ADDR_STRLEN];
	struct zm_dp dp;
	size_t i;
	int missing = 0, r;

	if (zt->opts.no_enroll)
		return 0;
	pthread_mutex_lock(&zt_enroll_lock);
	p.n = zt_n_enrolled;
	memcpy(want, zt_enrolled, p.n * sizeof(want[0]));
	pthread_mutex_unlock(&zt_enroll_lock);
	memset(seen, 0, p.n * sizeof(seen[0]));
	zm_dp_init(&dp, zt->opts.pin_dir);
	r = zm_dp_map_walk(&dp, ZM_STR(ZM_MAP_WORKLOADS), zt_present_cb, &p, NULL);
	zm_dp_close(&dp);
	if (r)
		return 0; /* the datapath check reports that */
	for (i = 0; i < p.n; i++) {
		if (seen[i])
			continue;
		if (!missing)
			snprintf(why, len, "%s is enrolled by us but missing from the datapath",
				 zm_addr_format(&want[i], a, sizeof(a)));
		missing++;
	}
	return missing;
}
