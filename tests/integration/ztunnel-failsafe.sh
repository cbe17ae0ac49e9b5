#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fail-safe config and readiness that tells the truth.
#  - A config file truncated to 0 bytes (what an editor or a ConfigMap update can leave for a
#    moment) is refused, the previous config stays, the pods stay enrolled, and tcpdump on the
#    wire shows their traffic still tunnelled (no plaintext). So is a file that would unenroll
#    every mesh workload of the node without saying so; `workloads: []` is obeyed. Refusals
#    are logged and counted (zmesh_config_refused_total{reason}).
#  - /healthz/ready is 503, with one log line saying why, while the datapath is pinned with
#    another ABI version or missing, and 200 again once it is back.
#  - A connection made to ztunnel's capture port itself (from the node, which the datapath
#    does not see; pods are refused by the datapath, see capture.sh) is refused, not proxied
#    back to the same port.
#
#   n1a 198.18.1.11 -- n1 === wire0 (tcpdump) === n2 -- n2a 198.18.2.11   (HBONE, echo 7777)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need tcpdump jq curl

m_init 2 1
m_config_hbone n1a n2a
GOOD=$H_STATE/good.yaml
cp "$M_CFG" "$GOOD"
m_ca_init
for n in n1 n2; do m_node_start $n --ca-dir "$M_CA" --poll-ms 100; done
m_ztunnel_wait n1 n2
m_echo_serve n1a n2a
N2A=$(h_ip4 n2a)
ZLOG=$H_STATE/zt-n1.log

CAP=
cap_flow() { # cap_flow NAME MARK: n1a sends MARK to n2a:7778 under tcpdump on wire0; sets out
	CAP=$H_STATE/$1.pcap
	h_bg n1 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$CAP" tcp 2>/dev/null
	local cpid=$H_LAST_PID
	m_wait_for 5 test -e "$CAP"
	sleep 0.8 # tcpdump needs a moment after opening the file before it captures
	out=$(h_exec n1a "$ECHO" send "$N2A" 7778 --data "$2" --timeout 5 2>&1)
	sleep 0.3
	h_stop "$cpid"
}
enrolled() { m_zctl n1 -j workload list | jq -r '[.[].name] | unique | join(",")'; }
refused() { # refused REASON: zmesh_config_refused_total of that reason on n1
	h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics |
		sed -n "s/^zmesh_config_refused_total{reason=\"$1\"} \([0-9]*\)$/\1/p"
}
ready() { h_exec n1 curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready; }
# For m_wait_for, which runs its command again each time (a $(...) in its arguments would not).
is_ready() { [ "$(ready)" = "$1" ]; }
is_enrolled() { [ "$(enrolled)" = "$1" ]; }

t_is "$(enrolled)" "n1a" "n1a is enrolled"

# 1. The file truncated to zero bytes, in place.
: >"$M_CFG"
m_wait_for 5 grep -q "the config is empty" "$ZLOG"
t_ok $? "a zero-byte config is refused: $(grep -m1 -o 'the config is empty[^"]*' "$ZLOG")"
t_is "$(refused invalid)" 1 "counted: zmesh_config_refused_total{reason=\"invalid\"} 1"
t_is "$(enrolled)" "n1a" "n1a stays enrolled"
MARK=ZMESH-FAILSAFE-SECRET-1
cap_flow empty "$MARK"
t_like "$out" "$MARK" "n1a still reaches n2a"
t_ok "$(grep -aqF "$MARK" "$CAP"; [ $? = 1 ]; echo $?)" "the payload is not on the wire in plaintext"
t_like "$(tcpdump -nn -r "$CAP" 'tcp port 15008' 2>/dev/null | wc -l)" '^[1-9]' \
	"the flow crossed as HBONE (15008)"

# 2. A config that silently lost this node's workloads.
m_workload n2a ns sa-n2a HBONE | { echo "workloads:"; cat; } | m_config_write
m_wait_for 5 grep -q "would unenroll every mesh workload of node n1" "$ZLOG"
t_ok $? "a config dropping every mesh workload of n1 is refused, naming the node"
t_is "$(refused unenroll_all)" 1 "counted: zmesh_config_refused_total{reason=\"unenroll_all\"} 1"
t_is "$(enrolled)" "n1a" "n1a stays enrolled"

# 3. Saying it explicitly is obeyed.
echo "workloads: []" | m_config_write
m_wait_for 5 is_enrolled ""
t_ok $? "workloads: [] is obeyed: n1a unenrolled"
m_config_write <"$GOOD"
m_wait_for 5 is_enrolled n1a
t_ok $? "the good config enrolls n1a again"
m_wait_for 5 is_ready 200
t_ok $? "ready"

# 4. Readiness follows the datapath.
bpftool map update pinned "$(h_pin_dir n1)/zm_meta" key 0 0 0 0 value 99 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ||
	t_diag "bpftool could not edit zm_meta"
m_wait_for 5 is_ready 503
t_ok $? "a datapath of another ABI version: not ready"
t_like "$(cat "$ZLOG")" "not ready: datapath: .*ABI version 99, this build has [0-9]+" \
	"one line says why, both versions named"
abi=$(sed -n 's/^#define ZM_ABI_VERSION \([0-9]*\).*/\1/p' include/zmesh/abi.h)
bpftool map update pinned "$(h_pin_dir n1)/zm_meta" key 0 0 0 0 value "$abi" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
m_wait_for 5 is_ready 200
t_ok $? "our ABI again: ready again"
t_like "$(cat "$ZLOG")" "ready again" "and says so"
m_zctl n1 datapath unload >/dev/null
m_wait_for 5 is_ready 503
t_ok $? "no datapath at all: not ready"
m_datapath_load n1
m_wait_for 5 is_ready 200
t_ok $? "the datapath loaded again: the pods enrolled again and ready"
t_is "$(enrolled)" "n1a" "n1a enrolled in the new datapath"

out=$(h_exec n1 "$ECHO" send 198.18.0.1 15001 --data loop --timeout 3 2>&1)
t_ok "$(grep -q loop <<<"$out"; [ $? = 1 ]; echo $?)" "the node dialling its own 15001 gets nothing proxied ($out)"
m_wait_for 5 grep -q "outcome=proxy_port" "$ZLOG"
t_ok $? "ztunnel refused it (outcome=proxy_port), no dial to itself"
t_done
