#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The L4 policy fast path end to end: DROP rules set with `zmeshctl policy set` make the kernel
# drop plaintext SYNs to an enrolled pod at tc (pod veths) and at XDP (uplink, generic and
# native), count them per policy, and leave everything else alone. zm-testlistener stands in
# for ztunnel in n1: a SYN that reaches it comes back as "port=15006 ...", one the kernel drops
# times out.
#
#   n1a 198.18.1.11 (enrolled) --+                      +-- n2a 198.18.2.11 (allowed)
#   n1b 198.18.1.12 (denied) ----+ n1 ==== wire0 ==== n2 +-- n2b 198.18.2.12 (denied on 7777)
#   datapath loaded in n1 only (uplink wire0); every pod: zm-echo on 7777 and 7778
#   policies: demo/deny-n1b   dst n1a, any port, src n1b/32
#             demo/deny-n2b   dst n1a, port 7777, src n2b/32
#             demo/deny-v6    dst n1a (v6), any port, src n1b (v6)/128
# Native XDP on wire0 (a veth here) is exercised for coverage only: it is meant for physical
# NICs (bpf/README.md).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need "$LISTENER"

m_init 2 2

zm() { m_zctl n1 "$@"; }
send() { h_exec "$1" "$ECHO" send "$2" "$3" --data "x" --timeout 2 2>&1 | head -1; }
pol() { zm -j policy list | jq ".policies[] | select(.policy == \"$1\") | .$2"; }
reason() { zm -j stats | jq ".[] | select(.reason == \"$1\") | .packets"; }
xdp_of() { zm -j datapath status | jq -r '.interfaces[] | select(.ifname == "wire0") | .xdp_mode'; }

m_echo_serve n1a n1b n2a n2b

out=$(zm -j datapath load --uplink wire0 --xdp generic 2>&1)
t_is "$(echo "$out" | jq -r '[.xdp_mode, .xdp_attached] | join(" ")')" "generic 1" \
	"datapath load --xdp generic attaches XDP to wire0" || t_diag "$out"
t_run "attach n1's pod veths" -- zm datapath attach veth-n1a veth-n1b
t_run "enroll n1a" -- zm enroll --ip "$(h_ip4 n1a)" --ip "$(h_ip6 n1a)" --veth veth-n1a \
	--name n1a --namespace demo --service-account a
h_bg n1 "$LISTENER" --echo
h_wait_port n1 15006 || t_fatal "test listener did not start"

A4=$(h_ip4 n1a) A6=$(h_ip6 n1a) B4=$(h_ip4 n1b) B6=$(h_ip6 n1b) C4=$(h_ip4 n2a) D4=$(h_ip4 n2b)
t_like "$(send n1b "$A4" 7777)" "^port=15006 " "before rules: n1b -> n1a:7777 reaches the 15006 listener"

cat >"$H_STATE/rules.json" <<JSON
{"rules": [
 {"policy": "demo/deny-n1b", "dst": "$A4", "src": "$B4/32"},
 {"policy": "demo/deny-n2b", "dst": "$A4", "dst_port": 7777, "src": "$D4"},
 {"policy": "demo/deny-v6", "dst": "$A6", "src": "$B6/128", "action": "drop"}
]}
JSON
out=$(zm -j policy set --file "$H_STATE/rules.json" 2>&1)
t_is "$(echo "$out" | jq -r '[.rules, .policies] | join(" ")')" "3 3" "policy set: 3 rules of 3 policies" ||
	t_diag "$out"
t_is "$(zm -j policy list | jq -r '[.policies[].policy] | join(",")')" \
	"demo/deny-n1b,demo/deny-n2b,demo/deny-v6" "policy list names the policies"
t_like "$(zm policy list)" "demo/deny-n2b +1 +0 +0" "policy list human output: rules and counters"

# tc on the pod veth.
drop0=$(reason drop_policy)
t_like "$(send n1b "$A4" 7777)" "timed out|refused|failed" "denied n1b -> n1a:7777 fails"
t_like "$(send n1b "$A6" 7777)" "timed out|refused|failed" \
	"denied n1b -> n1a:7777 over IPv6 fails"
t_like "$(pol demo/deny-n1b tc_drops)" '^[1-9]' "demo/deny-n1b tc_drops rose"
t_like "$(pol demo/deny-v6 tc_drops)" '^[1-9]' "demo/deny-v6 tc_drops rose"
t_ok "$([ "$(reason drop_policy)" -gt "$drop0" ]; echo $?)" "stats: drop_policy rose"
t_like "$(send n1b "$A4" 15008)" "^port=15008 " "denied n1b -> n1a:15008 (HBONE port) unaffected"
t_like "$(send n2a "$A4" 7777)" "^port=15006 orig_dst=$A4:7777 src=$C4:" \
	"allowed n2a -> n1a:7777 reaches the listener"

# XDP on the uplink, generic then native.
for mode in generic native; do
	out=$(zm -j datapath load --uplink wire0 --xdp $mode 2>&1)
	t_is "$(echo "$out" | jq -r '.reused')" "true" "reload with --xdp $mode reuses the datapath" ||
		t_diag "$out"
	t_is "$(xdp_of)" "$mode" "datapath status: XDP $mode on wire0"
	t_is "$(zm -j policy list | jq '.policies | length')" "3" "rules survived the reload ($mode)"
	x0=$(pol demo/deny-n2b xdp_drops) t0=$(pol demo/deny-n2b tc_drops)
	t_like "$(send n2b "$A4" 7777)" "timed out|refused|failed" "XDP $mode: denied n2b -> n1a:7777 fails"
	t_ok "$([ "$(pol demo/deny-n2b xdp_drops)" -gt "$x0" ]; echo $?)" \
		"XDP $mode: demo/deny-n2b xdp_drops rose ($x0 -> $(pol demo/deny-n2b xdp_drops))"
	t_is "$(pol demo/deny-n2b tc_drops)" "$t0" "XDP $mode: dropped before tc saw it"
	t_like "$(send n2b "$A4" 7778)" "^port=15006 orig_dst=$A4:7778" \
		"XDP $mode: n2b -> n1a on another port reaches the listener"
	t_like "$(send n2b "$A4" 15008)" "^port=15008 " "XDP $mode: n2b -> n1a:15008 unaffected"
done
t_like "$(reason drop_policy_xdp)" '^[1-9]' "stats: drop_policy_xdp counted"

out=$(zm -j datapath load --uplink wire0 --xdp off 2>&1)
t_is "$(xdp_of)" "off" "reload with --xdp off detaches XDP" || t_diag "$out"
t0=$(pol demo/deny-n2b tc_drops)
t_like "$(send n2b "$A4" 7777)" "timed out|refused|failed" "XDP off: tc still drops n2b -> n1a:7777"
t_ok "$([ "$(pol demo/deny-n2b tc_drops)" -gt "$t0" ]; echo $?)" "XDP off: counted at tc instead"

# Clearing the rules restores the plain path.
t_run "policy set with no rules clears the set" -- zm policy set
t_like "$(send n1b "$A4" 7777)" "^port=15006 " "after clearing: n1b -> n1a:7777 reaches the listener"
t_is "$(zm -j policy list | jq '.policies | length')" "0" "policy list is empty"
out=$(zm policy set --rule policy=x/y,dst=nonsense 2>&1); st=$?
t_like "$st:$out" "^2:.*dst" "a malformed --rule is a usage error"

# Unload removes XDP; an old ABI is refused.
zm datapath load --uplink wire0 --xdp generic >/dev/null 2>&1
t_is "$(xdp_of)" "generic" "XDP generic attached again"
t_run "datapath unload" -- zm datapath unload
t_ok "$(h_exec n1 ip link show wire0 | grep -q xdp; [ $? = 1 ]; echo $?)" "unload removed XDP from wire0"
zm datapath load --uplink wire0 >/dev/null 2>&1
bpftool map update pinned "$H_BPFFS/n1/zm_meta" key 0 0 0 0 value 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ||
	t_diag "bpftool could not edit zm_meta"
out=$(zm datapath load --uplink wire0 --xdp generic 2>&1); st=$?
abi=$(sed -n 's/^#define ZM_ABI_VERSION \([0-9]*\).*/\1/p' include/zmesh/abi.h)
t_like "$st:$out" "^1:.*ABI version 1 .*version $abi" "a datapath pinned with ABI 1 is refused (this build: $abi)"
t_run "unload the ABI-1 datapath" -- zm datapath unload
t_done
