// SPDX-License-Identifier: Apache-2.0
/*
 * Our tc filter at clsact ingress: one filter per interface at ZM_TC_PRIORITY/ZM_TC_HANDLE.
 * We create the clsact qdisc when it is missing and never remove it: bpf_tc_hook_destroy()
 * deletes the whole qdisc with every other program's filters, and an empty clsact costs
 * nothing, so leaving it is the only choice that cannot hurt a neighbour. Attaching always
 * uses BPF_TC_F_REPLACE so a reload swaps the program atomically (no window without capture).
 */
#include "internal.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

static void dp_tc_hook_init(struct bpf_tc_hook *hook, int ifindex)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = BPF_TC_INGRESS;
}

static void dp_tc_ifname(int ifindex, char *buf)
{
	if (!if_indextoname((unsigned int)ifindex, buf))
		strcpy(buf, "?");
}

int dp_tc_attach(struct zm_dp *dp, int ifindex, int prog_fd)
{
	char ifname[IF_NAMESIZE];
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE,
		    .handle = ZM_TC_HANDLE, .priority = ZM_TC_PRIORITY);
	int err;

	dp_tc_hook_init(&hook, ifindex);
	dp_tc_ifname(ifindex, ifname);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return dp_errf(dp, err, "creating the clsact qdisc on %s failed: %s", ifname,
			       strerror(-err));
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return dp_errf(dp, err,
			       "attaching the capture filter to %s ingress (prio %u handle "
			       "0x%x) failed: %s",
			       ifname, ZM_TC_PRIORITY, ZM_TC_HANDLE, strerror(-err));
	return 0;
}

int dp_tc_detach(struct zm_dp *dp, int ifindex)
{
	char ifname[IF_NAMESIZE];
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZM_TC_HANDLE, .priority = ZM_TC_PRIORITY);
	int err;

	dp_tc_hook_init(&hook, ifindex);
	err = bpf_tc_detach(&hook, &opts);
	/* Gone already (interface deleted, qdisc removed by someone): the goal is reached. */
	if (err == -ENOENT || err == -EINVAL || err == -ENODEV)
		return 0;
	if (err) {
		dp_tc_ifname(ifindex, ifname);
		return dp_errf(dp, err, "detaching the capture filter from %s failed: %s", ifname,
			       strerror(-err));
	}
	return 0;
}

int dp_tc_query(int ifindex, __u32 *prog_id)
{
	struct bpf_tc_hook hook;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZM_TC_HANDLE, .priority = ZM_TC_PRIORITY);
	int err;

	dp_tc_hook_init(&hook, ifindex);
	err = bpf_tc_query(&hook, &opts);
	if (err || !opts.prog_id)
		return -ENOENT;
	*prog_id = opts.prog_id;
	return 0;
}

int dp_tc_scan(struct zm_dp_iface *out, size_t max)
{
	struct if_nameindex *ifs, *i;
	size_t n = 0;
	__u32 id;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index && n < max; i++) {
		if (dp_tc_query((int)i->if_index, &id))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].ifname, sizeof(out[n].ifname), "%s", i->if_name);
		out[n].ifindex = (int)i->if_index;
		out[n].prog_id = id;
		n++;
	}
	if_freenameindex(ifs);
	return (int)n;
}
