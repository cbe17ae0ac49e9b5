// SPDX-License-Identifier: Apache-2.0
/*
 * A stand-in for a CNI's own tc program (not part of zmesh): attached by the capture test at
 * clsact ingress with a lower priority than ours, it counts every packet it sees and accepts
 * it, as a CNI would. The test reads `seen` to prove that packets zmesh does not claim still
 * reach the next filter, and that unloading zmesh leaves this filter in place.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

__u64 seen;

SEC("tc")
int foreign_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&seen, 1);
	return 0; /* TC_ACT_OK */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
