// SPDX-License-Identifier: Apache-2.0
/*
 * What the plugin learns about a pod from the kernel rather than from prevResult: the
 * host-side end of its veth (prevResult's interface list cannot tell a bridge from a veth, so
 * we ask: the pod interface's IFLA_LINK is the peer's index in our namespace, and that
 * interface's IFLA_LINK must point back) and the cgroup of a process already inside the pod's
 * network namespace. The plugin is single-threaded, so setns() into the pod and back is safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/errf.h"
#include "common/netns.h"
#include "cni.h"

static int cni_link_attr(const struct nlattr *attr, void *data)
{
	int *link = data;

	if (mnl_attr_get_type(attr) == IFLA_LINK && !mnl_attr_validate(attr, MNL_TYPE_U32))
		*link = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int cni_link_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), cni_link_attr, data);
}

/* IFLA_LINK of interface ifindex in the calling thread's namespace; 0 none, -errno. */
static int cni_link_of(int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned int seq = (unsigned int)time(NULL), portid;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	int link = 0, r = 0;
	ssize_t n;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = ifindex;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, portid, cni_link_cb, &link) < 0)
		r = -errno;
out:
	mnl_socket_close(nl);
	return r ? r : link;
}

int cni_host_veth(const char *netns, const char *ifname, char out[IF_NAMESIZE], char *err,
		  size_t len)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), pod_if, peer, back, r;

	if (self < 0)
		return zm_errf(err, len, -errno, "opening our network namespace: %s",
			       strerror(errno));
	r = zm_netns_enter(netns, err, len);
	if (r) {
		close(self);
		return r == -ENOENT ? -ENOENT : r;
	}
	pod_if = (int)if_nametoindex(ifname);
	peer = pod_if ? cni_link_of(pod_if) : -ENOENT;
	/* Back home whatever happened: everything after this runs in the node namespace. */
	if (setns(self, CLONE_NEWNET) < 0) {
		r = -errno;
		close(self);
		return zm_errf(err, len, r, "returning to our network namespace: %s", strerror(-r));
	}
	close(self);
	if (peer <= 0)
		return zm_errf(err, len, peer ? peer : -ENODEV, "%s in %s: %s", ifname, netns,
			       peer == -ENOENT || !pod_if ? "no such interface"
							  : "not one end of a veth pair");
	back = if_indextoname((unsigned int)peer, out) ? cni_link_of(peer) : -ENODEV;
	if (back != pod_if)
		return zm_errf(err, len, -ENODEV,
			       "the peer of %s in %s (index %d) is not in this namespace", ifname,
			       netns, peer);
	return 0;
}

/* The "0::PATH" line of /proc/PID/cgroup into out; "" when absent. */
static void cni_cgroup_of(const char *pid, char *out, size_t len)
{
	char path[300], line[1024];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%s/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* The root cgroup is nobody's pod: never hand it to the datapath. */
		if (strcmp(line + 3, "/") && strlen(line + 3) < len)
			snprintf(out, len, "%s", line + 3);
		break;
	}
	fclose(f);
}

void cni_pod_cgroup(const char *netns, char *out, size_t len)
{
	char path[300];
	struct stat want, st;
	struct dirent *d;
	DIR *dir;

	out[0] = '\0';
	if (stat(netns, &want) || !(dir = opendir("/proc")))
		return;
	while (!out[0] && (d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", d->d_name);
		if (stat(path, &st) || st.st_ino != want.st_ino || st.st_dev != want.st_dev)
			continue;
		cni_cgroup_of(d->d_name, out, len);
	}
	closedir(dir);
}
