/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every verdict of the capture datapath has one reason code. The X-macro list below is the
 * only place they are defined: it gives the enum used by the BPF programs (workers return
 * 0 or -ZM_REASON_*), the index of the per-CPU counter array zm_stats, and the names that
 * zmeshctl and the metrics print. Append only: the numbers are part of the pinned ABI.
 *
 * X(enum suffix, printable name, one-line meaning)
 */
#ifndef ZMESH_REASONS_H
#define ZMESH_REASONS_H

#define ZM_REASONS(X)                                                                              \
	X(NONE, "none", "no verdict (reserved)")                                                   \
	X(CAPTURED_OUTBOUND, "captured_outbound", "SYN from an enrolled pod sent to 15001")        \
	X(CAPTURED_HBONE, "captured_inbound_hbone", "SYN to an enrolled pod's 15008")              \
	X(CAPTURED_PLAIN, "captured_inbound_plain", "SYN to an enrolled pod sent to 15006")        \
	X(ESTABLISHED, "established", "packet of a ztunnel-owned connection assigned")             \
	X(PASS_NOT_TCP, "pass_not_tcp", "not TCP: not ours")                                       \
	X(PASS_NOT_ENROLLED, "pass_not_enrolled", "neither end is an enrolled pod")                \
	X(PASS_NOT_SYN, "pass_not_syn", "mid-flow packet of a flow we do not own")                 \
	X(PASS_BYPASS, "pass_bypass", "destination is a node address or excluded")                 \
	X(PASS_ZTUNNEL_PORT, "pass_ztunnel_port", "destination port is one of ztunnel's")          \
	X(PASS_FRAGMENT, "pass_fragment", "IP fragment: no ports to look at")                      \
	X(DROP_NO_LISTENER, "drop_no_listener", "ztunnel is not listening: fail closed")           \
	X(DROP_ASSIGN_FAILED, "drop_assign_failed", "bpf_sk_assign refused the socket")            \
	X(DROP_SPOOFED, "drop_spoofed", "enrolled source address on the wrong veth")               \
	X(PASS_MALFORMED, "pass_malformed", "truncated or malformed header: left to kernel")       \
	X(DROP_POLICY, "drop_policy", "plaintext SYN denied by an L4 policy rule at tc")           \
	X(DROP_POLICY_XDP, "drop_policy_xdp", "plaintext SYN denied by an L4 policy rule at XDP")  \
	X(REFUSED_NO_LISTENER, "refused_no_listener",                                              \
	  "ztunnel is not listening: SYN answered with RST (fail closed, fast)")                   \
	X(REFUSED_PROXY_PORT, "refused_proxy_port",                                                \
	  "SYN to a node address on a capture port (15001/15006): answered with RST")

enum zm_reason {
#define ZM_REASON_ENUM(name, str, help) ZM_REASON_##name,
	ZM_REASONS(ZM_REASON_ENUM)
#undef ZM_REASON_ENUM
	    ZM_REASON_MAX
};

#endif
