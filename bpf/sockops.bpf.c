// SPDX-License-Identifier: Apache-2.0
/*
 * zm_sockops: per-connection TCP telemetry (RTT, retransmits, state, bytes, cwnd) of enrolled
 * pods. Attached (BPF_CGROUP_SOCK_OPS) to each enrolled pod's cgroup v2 directory, so it sees
 * the pod's own sockets, whose local address is the pod's. When a connection of an address
 * in zm_workloads (with ZM_WL_F_CAPTURE) becomes established, it asks the kernel for RTT,
 * retransmit and state-change callbacks on that socket only and keeps a struct zm_conn_stats
 * per struct zm_flow in zm_conns. The entry stays after close with state TCP_CLOSE so
 * `zmeshctl` can show recently closed connections; zm_conns is an LRU, which ages it out.
 *
 * Assumes: maps from lib/maps.h (shared with zm_capture through pinning). Never changes a
 * socket's behaviour: it only reads, and always returns 1 (sockops "ok").
 */
#include "lib/common.h"
#include "lib/maps.h"

#define ZM_AF_INET_SK  2
#define ZM_AF_INET6_SK 10

#define ZM_SOCKOPS_CB_FLAGS                                                                        \
	(BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG)

/* True for ::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 peer. */
static __always_inline bool zm_ipv6_is_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

/*
 * Fill @flow from the socket's addresses (local = the pod). v4-mapped IPv6 addresses are
 * folded to IPv4 so the key matches zm_workloads entries. Returns 0 or -EAFNOSUPPORT.
 */
static __always_inline int zm_flow_from_skops(const struct bpf_sock_ops *skops,
					      struct zm_flow *flow)
{
	__u32 lip[4], rip[4];

	flow->local_port = bpf_htons((__u16)skops->local_port);
	/* remote_port holds the port in network order in its upper 16 bits on this ABI. */
	flow->remote_port = bpf_htons((__u16)bpf_ntohl(skops->remote_port));

	if (skops->family == ZM_AF_INET_SK) {
		flow->local.family = ZM_AF_INET;
		flow->local.addr[0] = skops->local_ip4;
		flow->remote.family = ZM_AF_INET;
		flow->remote.addr[0] = skops->remote_ip4;
		return 0;
	}
	if (skops->family != ZM_AF_INET6_SK)
		return -EAFNOSUPPORT;

	/* Field by field: the context only allows 4-byte loads of these arrays. */
	lip[0] = skops->local_ip6[0];
	lip[1] = skops->local_ip6[1];
	lip[2] = skops->local_ip6[2];
	lip[3] = skops->local_ip6[3];
	rip[0] = skops->remote_ip6[0];
	rip[1] = skops->remote_ip6[1];
	rip[2] = skops->remote_ip6[2];
	rip[3] = skops->remote_ip6[3];
	if (zm_ipv6_is_v4mapped(lip)) {
		flow->local.family = ZM_AF_INET;
		flow->local.addr[0] = lip[3];
		flow->remote.family = ZM_AF_INET;
		flow->remote.addr[0] = rip[3];
		return 0;
	}
	flow->local.family = ZM_AF_INET6;
	__builtin_memcpy(flow->local.addr, lip, sizeof(lip));
	flow->remote.family = ZM_AF_INET6;
	__builtin_memcpy(flow->remote.addr, rip, sizeof(rip));
	return 0;
}

/*
 * Create or refresh the flow's entry from the socket's current counters. @state is the
 * state to record (a state change callback runs before the kernel stores the new state).
 */
static __always_inline int zm_conn_record(const struct bpf_sock_ops *skops,
					  const struct zm_flow *flow, __u32 state)
{
	struct zm_conn_stats fresh = {}, *cs;
	__u64 now = bpf_ktime_get_ns();

	cs = bpf_map_lookup_elem(&ZM_MAP_CONNS, flow);
	if (!cs) {
		fresh.first_seen_ns = now;
		/* -EEXIST is fine: an earlier callback of the same flow won the insert */
		bpf_map_update_elem(&ZM_MAP_CONNS, flow, &fresh, BPF_NOEXIST);
		cs = bpf_map_lookup_elem(&ZM_MAP_CONNS, flow);
		if (!cs)
			return -ENOMEM;
	}
	/*
	 * Plain stores: only this socket's callbacks write its entry, and the kernel runs
	 * them under the socket lock; a reader may see a mix of two samples, never garbage.
	 */
	cs->last_seen_ns = now;
	cs->state = state;
	/* The tcp_sock fields read 0 on a request or time-wait socket: keep the last values. */
	if (skops->is_fullsock) {
		cs->srtt_us = skops->srtt_us >> 3; /* the kernel keeps 8 x smoothed RTT */
		cs->total_retrans = skops->total_retrans;
		cs->snd_cwnd = skops->snd_cwnd;
		cs->bytes_acked = skops->bytes_acked;
		cs->bytes_received = skops->bytes_received;
	}
	return 0;
}

/* The worker. Returns 0 or -errno; errors only mean a missed sample. */
static __always_inline int zm_sockops_run(struct bpf_sock_ops *skops)
{
	struct zm_flow flow = {};
	__u32 op = skops->op;
	int err;

	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_RTT_CB && op != BPF_SOCK_OPS_RETRANS_CB &&
	    op != BPF_SOCK_OPS_STATE_CB)
		return 0;

	err = zm_flow_from_skops(skops, &flow);
	if (err)
		return err;

	switch (op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* Only enrolled pods pay for the per-ACK RTT callbacks. */
		if (!zm_workload_get(&flow.local))
			return 0;
		bpf_sock_ops_cb_flags_set(skops,
					  skops->bpf_sock_ops_cb_flags | ZM_SOCKOPS_CB_FLAGS);
		return zm_conn_record(skops, &flow, BPF_TCP_ESTABLISHED);
	case BPF_SOCK_OPS_STATE_CB:
		/* args[0] = old state, args[1] = new state (not yet stored in the socket) */
		return zm_conn_record(skops, &flow, skops->args[1]);
	default: /* RTT_CB, RETRANS_CB: callbacks enabled above, so the flow is enrolled */
		return zm_conn_record(skops, &flow, skops->state);
	}
}

SEC("sockops")
int zm_sockops(struct bpf_sock_ops *skops)
{
	zm_sockops_run(skops);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
