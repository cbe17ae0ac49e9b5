// SPDX-License-Identifier: Apache-2.0
/*
 * Node addresses in zm_bypass. Traffic to the node itself (kubelet probes, host-network
 * pods, the ztunnel's own addresses) is never captured, so at every load we write each
 * address of the node namespace, on every interface and of both families, as
 * ZM_BYPASS_NODE_ADDR, and drop node entries for addresses that went away. Operator entries
 * (ZM_BYPASS_USER) are never touched.
 */
#include "internal.h"

#include "common/addr.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

static bool dp_addr_listed(const struct zm_addr *a, const struct zm_addr *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (zm_addr_equal(a, &list[i]))
			return true;
	return false;
}

/* Delete node-address entries that are not in list; the walk restarts after each delete. */
static void dp_node_addrs_prune(int fd, const struct zm_addr *list, size_t n)
{
	struct zm_addr key, next;
	__u32 kind;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &kind) || kind != ZM_BYPASS_NODE_ADDR)
			continue;
		if (dp_addr_listed(&key, list, n))
			continue;
		bpf_map_delete_elem(fd, &key);
		prev = NULL;
	}
}

int dp_node_addrs_sync(struct zm_dp *dp, int fd, unsigned int *n_addrs)
{
	struct zm_addr *list = NULL;
	struct ifaddrs *ifa, *i;
	__u32 kind = ZM_BYPASS_NODE_ADDR;
	size_t n = 0;
	int err = 0;

	*n_addrs = 0;
	if (getifaddrs(&ifa) < 0)
		return dp_errf(dp, -errno, "listing the node's addresses failed: %s",
			       strerror(errno));
	list = calloc(ZM_MAX_BYPASS, sizeof(*list));
	if (!list) {
		err = dp_errf(dp, -ENOMEM, "out of memory listing node addresses");
		goto out;
	}
	for (i = ifa; i && n < ZM_MAX_BYPASS; i = i->ifa_next) {
		struct zm_addr a;

		if (!i->ifa_addr || zm_addr_from_sockaddr(i->ifa_addr, &a, NULL))
			continue;
		if (dp_addr_listed(&a, list, n))
			continue;
		/* BPF_NOEXIST keeps an operator's ZM_BYPASS_USER entry for the same address. */
		if (bpf_map_update_elem(fd, &a, &kind, BPF_NOEXIST) && errno != EEXIST) {
			err = dp_errf(dp, -errno, "writing a node address to %s failed: %s",
				      ZM_STR(ZM_MAP_BYPASS), strerror(errno));
			goto out;
		}
		list[n++] = a;
	}
	dp_node_addrs_prune(fd, list, n);
	*n_addrs = (unsigned int)n;
out:
	free(list);
	freeifaddrs(ifa);
	return err;
}
