/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Common prelude of every zmesh BPF object: kernel types from build/vmlinux.h, the libbpf
 * helper headers, the shared ABI (include/zmesh/) and the few uapi constants that vmlinux.h
 * cannot carry because the kernel defines them as macros (tc verdicts, ethertypes, header
 * flags). BPF side only; userspace includes the uapi headers instead.
 */
#ifndef ZM_BPF_COMMON_H
#define ZM_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "zmesh/abi.h"

/* tc verdicts (include/uapi/linux/pkt_cls.h). */
#define TC_ACT_UNSPEC	(-1) /* not ours: continue with the next filter on the hook */
#define TC_ACT_OK	0    /* claimed: stop classifying, deliver */
#define TC_ACT_SHOT	2    /* drop */
#define TC_ACT_REDIRECT 7    /* what bpf_redirect() returns: sent where it says */

#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD

#define ZM_IP_MF     0x2000
#define ZM_IP_OFFSET 0x1fff

/* IPv6 next-header values of the extension headers we step over or refuse. */
#define ZM_NEXTHDR_HOP	    0
#define ZM_NEXTHDR_ROUTING  43
#define ZM_NEXTHDR_FRAGMENT 44
#define ZM_NEXTHDR_AUTH	    51
#define ZM_NEXTHDR_DEST	    60

/* TCP flag bits in byte 13 of the TCP header. */
#define ZM_TCP_FIN 0x01
#define ZM_TCP_SYN 0x02
#define ZM_TCP_RST 0x04
#define ZM_TCP_ACK 0x10

/* errno values used by helpers' callers (vmlinux.h has no macros). */
#define ENOENT	     2
#define ENOMEM	     12
#define EAFNOSUPPORT 97

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#endif
