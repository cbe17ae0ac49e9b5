#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zmesh-cni as a container runtime runs it: Debian's ptp + host-local make the pods from a
# conflist that `zmesh-cni install` chained zmesh-cni into; the plugin hands each pod to its
# node's ztunnel, whose config names the mesh pods without addresses (workloadIps: []).
#
#   sandbox a1, a2, c1 (n1)        sandbox b1 (n2)           early (n1, before ztunnel)
#   198.18.1.20-99 (host-local)    198.18.2.20-99
#        veth (ptp)                     veth (ptp)
#   +----- node n1 ---------+         +----- node n2 ---------+
#   | ztunnel --run-dir     |==wire0==| ztunnel --run-dir     |
#   | run-n1/cni.sock       |         | run-n2/cni.sock       |
#   +-----------------------+         +-----------------------+
#   config: demo/a1, demo/a2, demo/b1, demo/early (HBONE, no addresses); c1 is not in it.
#
# Checks: install chains zmesh-cni last (a .conf becomes a .conflist) and a second install
# changes nothing; an ADD before ztunnel is up fails with code 11 and the pod never gets a
# network; ADD prints ptp's result unchanged and enrolls a1 (its veth, cgroup, identity);
# cross-node a1 -> b1 is HBONE on the wire with no plaintext once the control plane (here:
# the test) publishes the addresses; same-node a1 -> a2 is spliced; c1 is left alone; CHECK
# passes; a restarted ztunnel enrolls the pods already running; DEL unenrolls; bad input gets
# the CNI error object and a non-zero exit with nothing enrolled; uninstall removes the entry.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/cni.sh
m_need tcpdump
c_init 2

# 1. Install: n1's primary config is a single-plugin .conf, n2's a conflist.
f=$H_STATE/cni/n1/net.d/10-zmt.conflist
jq '.plugins[0] + {cniVersion: .cniVersion, name: .name}' "$f" >"${f%list}" && rm "$f"
out=$(c_install n1 --agent-wait 2 --exclude-namespaces kube-system,zmesh-system 2>&1)
t_like "$out" "chained into .*/10-zmt.conflist" "install chains zmesh-cni into n1's config"
t_ok "$([ ! -e "${f%list}" ] && [ -e "$f" ]; echo $?)" "the .conf became a .conflist"
t_is "$(jq -r '[.plugins[].type] | join(",")' "$f")" "ptp,zmesh-cni" "zmesh-cni is the last plugin, ptp kept"
t_is "$(jq -r '.plugins[1].excludeNamespaces | join(",")' "$f")" "kube-system,zmesh-system" "its entry carries the install options"
t_ok "$([ -x "$C_BIN/zmesh-cni" ]; echo $?)" "the plugin binary is in the CNI bin directory"
sum=$(sha256sum "$f")
out=$(c_install n1 --agent-wait 2 --exclude-namespaces kube-system,zmesh-system 2>&1)
t_like "$out" "already chains zmesh-cni" "a second install says the config has it"
t_is "$(sha256sum "$f")" "$sum" "and leaves the file unchanged"
c_install n2 --agent-wait 2 >/dev/null 2>&1 || t_fatal "install on n2 failed"

cat >"$M_CFG" <<EOF
workloads:
- {uid: Kubernetes//Pod/demo/a1, name: a1, namespace: demo, serviceAccount: sa-a, protocol: HBONE, workloadIps: []}
- {uid: Kubernetes//Pod/demo/a2, name: a2, namespace: demo, serviceAccount: sa-a2, protocol: HBONE, workloadIps: []}
- {uid: Kubernetes//Pod/demo/b1, name: b1, namespace: demo, serviceAccount: sa-b, protocol: HBONE, workloadIps: []}
- {uid: Kubernetes//Pod/demo/early, name: early, namespace: demo, protocol: HBONE, workloadIps: []}
EOF

# 2. A pod added before ztunnel is up is not started (Istio's choice: no pod outside its mesh).
c_pod n1 early
out=$(c_cni ADD n1 early demo)
rc=$?
t_ok "$([ "$rc" != 0 ]; echo $?)" "ADD before ztunnel is up fails (exit $rc)"
t_is "$(jq -r '.code' <<<"$out")" "11" "with CNI error code 11 (try again later)"
t_like "$(jq -r '.msg + " " + .details' <<<"$out")" "not ready.*cni.sock" "naming the missing ztunnel socket"
c_cni DEL n1 early demo >/dev/null
t_ok $? "the runtime's clean-up DEL succeeds without ztunnel"
t_is "$(ip -n "$(h_ns early)" -o -4 addr show dev eth0 2>/dev/null | wc -l)" "0" "the early pod has no network after the failed ADD"

# 3. The mesh: datapaths, CA, ztunnels with a run directory.
m_ca_init
for n in n1 n2; do
	m_datapath_load $n
	c_ztunnel_start $n --ca-dir "$M_CA" --poll-ms 200
done
m_ztunnel_wait n1 n2
m_wait_for 5 test -S "${C_RUN[n1]}/cni.sock" || t_fatal "no cni.sock on n1: $(cat "$H_STATE/zt-n1.log")"
t_is "$(stat -c %a "${C_RUN[n1]}/cni.sock")" "600" "cni.sock is root-only (0600)"

for p in a1:n1 a2:n1 c1:n1 b1:n2; do
	c_pod "${p#*:}" "${p%:*}"
	out=$(c_cni ADD "${p#*:}" "${p%:*}" demo)
	t_ok $? "ADD ${p%:*} on ${p#*:} succeeds" || echo "# $out $(cat "$H_STATE/cni-${p%:*}.stderr")"
done
node_cache=$H_STATE/cni/n1/cache
t_is "$(jq -S . "$node_cache/ctr-a1.json")" "$(jq -S '.cniVersion = "1.0.0"' "$node_cache/ctr-a1.ptp.json")" \
	"ADD's result is ptp's prevResult unchanged"
A1=$(c_ip a1) A2=$(c_ip a2) C1=$(c_ip c1) B1=$(c_ip b1)
t_like "$A1 $A2 $C1 $B1" "^198\.18\.1\.[0-9]+ 198\.18\.1\.[0-9]+ 198\.18\.1\.[0-9]+ 198\.18\.2\.[0-9]+$" "pods got host-local addresses ($A1 $A2 $C1 $B1)"
wl=$(m_zctl n1 -j workload list)
t_is "$(jq -r '[.[].address] | sort | join(",")' <<<"$wl")" "$(printf '%s\n' "$A1" "$A2" | sort | paste -sd,)" \
	"n1 enrolled a1 and a2 from the CNI, not c1"
veth=$(h_exec n1 ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | while read -r v; do
	h_exec n1 ip -4 route show dev "$v" 2>/dev/null | grep -q "^$A1 " && echo "$v"; done)
t_is "$(jq -r --arg a "$A1" '.[] | select(.address == $a) | .veth + " " + .identity' <<<"$wl")" \
	"$veth spiffe://cluster.local/ns/demo/sa/sa-a" "a1 enrolled on its ptp veth with its identity"
t_like "$(jq -c . "${C_RUN[n1]}/pods.json")" "\"name\":\"a1\".*\"cgroup\":\"/[^\"]+/a1\"" "pods.json records a1 with its cgroup"
t_ok "$(jq -e --arg a "$A1" '.[] | select(.address == $a) | .cgroup_id > 1' <<<"$wl" >/dev/null; echo $?)" \
	"a1 is enrolled with its sandbox's cgroup (sockops telemetry), found by the plugin"
t_like "$(m_zctl n1 -j datapath status)" "\"$veth\"" "the capture filter is on a1's veth"

# 4. The control plane publishes the addresses (the Kubernetes API will, later issue).
sed -e "s/name: a1,\(.*\)workloadIps: \[\]/name: a1,\1workloadIps: [$A1]/" \
	-e "s/name: a2,\(.*\)workloadIps: \[\]/name: a2,\1workloadIps: [$A2]/" \
	-e "s/name: b1,\(.*\)workloadIps: \[\]/name: b1,\1workloadIps: [$B1]/" "$M_CFG" | m_config_write
sleep 1
t_is "$(m_zctl n1 -j workload list | jq length)" "2" "publishing the addresses does not enroll anything twice"
for p in a1 a2 b1 c1; do
	c_bg $p "$ECHO" serve --port 7777 --banner
done
for p in a1 a2 b1 c1; do
	m_wait_for 5 c_exec $p ss -Hltn "sport = :7777" | grep -q . 2>/dev/null
done
sleep 0.5

MARK=ZMESH-CNI-PLAINTEXT-MARKER-42
h_bg n2 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$H_STATE/wire.pcap" tcp 2>/dev/null
dump=$H_LAST_PID
sleep 1
out=$(c_exec a1 "$ECHO" send "$B1" 7777 --data "$MARK" 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$A1:[0-9]+ .*$MARK" "a1 (n1) -> b1 (n2) through zmesh, b1 sees a1's address"
sleep 0.5
h_stop "$dump"
sleep 0.2
t_ok "$([ "$(tcpdump -nn -r "$H_STATE/wire.pcap" 'tcp port 15008' 2>/dev/null | wc -l)" -gt 0 ]; echo $?)" "the wire carries HBONE (15008)"
t_is "$(tcpdump -nn -r "$H_STATE/wire.pcap" 'tcp port 7777' 2>/dev/null | wc -l)" "0" "the app port never appears on the wire"
t_ok "$(! grep -aq "$MARK" "$H_STATE/wire.pcap"; echo $?)" "the payload is not on the wire in plaintext"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone src.addr=$A1:[0-9]+ src.workload=demo/a1 src.identity=spiffe://cluster.local/ns/demo/sa/sa-a .*dst.identity=spiffe://cluster.local/ns/demo/sa/sa-b" \
	"n1 logs a1 -> b1 as mTLS HBONE with both identities"

out=$(c_exec a1 "$ECHO" send "$A2" 7777 --data same-node 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$A1:[0-9]+ .*same-node" "a1 -> a2 on the same node"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=local src.addr=$A1:[0-9]+ .*dst.addr=$A2:7777" "same-node traffic is spliced (via=local)"

out=$(c_exec c1 "$ECHO" send "$B1" 7777 --data left-alone 2>&1 | tr '\n' ' ')
t_like "$out" "left-alone" "the unselected pod c1 still reaches b1"
t_ok "$(! grep -q "dir=outbound .*src.addr=$C1:" "$H_STATE/zt-n1.log"; echo $?)" "c1's own connections are not redirected to ztunnel"

# 5. CHECK, restart, DEL.
c_cni CHECK n1 a1 demo >/dev/null
t_ok $? "CHECK of a1 passes"
c_cni CHECK n1 c1 demo >/dev/null
t_ok $? "CHECK of c1 (not in the mesh) passes"
h_stop "${M_ZT_PID[n1]}"
t_ok "$([ ! -e "${C_RUN[n1]}/cni.sock" ]; echo $?)" "a stopped ztunnel removes its socket"
c_ztunnel_start n1 --ca-dir "$M_CA" --poll-ms 200
m_ztunnel_wait n1
sleep 0.5
t_is "$(m_zctl n1 -j workload list | jq -r '[.[].address] | sort | join(",")')" "$(printf '%s\n' "$A1" "$A2" | sort | paste -sd,)" \
	"a restarted ztunnel enrolls the pods already running (pods.json)"
out=$(c_exec b1 "$ECHO" send "$A2" 7777 --data after-restart 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$B1:[0-9]+ .*after-restart" "b1 -> a2 after the restart"

c_cni DEL n1 a1 demo >/dev/null
t_ok $? "DEL of a1 succeeds"
t_is "$(m_zctl n1 -j workload list | jq -r '[.[].address] | join(",")')" "$A2" "DEL removed a1's enrollment, a2 stays"
t_ok "$(! grep -q '"a1"' "${C_RUN[n1]}/pods.json"; echo $?)" "and a1 from pods.json"
c_cni DEL n1 a1 demo >/dev/null
t_ok $? "a second DEL is fine (idempotent)"
out=$(h_exec n1 env CNI_COMMAND=CHECK CNI_CONTAINERID=ctr-a1 CNI_NETNS="/var/run/netns/$(h_ns a1)" \
	CNI_IFNAME=eth0 CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a1" "$C_BIN/zmesh-cni" \
	<<<"$(jq -c --argjson p "$(cat "$node_cache/ctr-a1.ptp.json")" '.plugins[1] + {cniVersion: "1.0.0", name: "zmt", prevResult: $p}' "$f")" 2>/dev/null)
t_ok "$([ $? != 0 ] && [ "$(jq -r .code <<<"$out")" = 100 ]; echo $?)" "CHECK of a deleted pod fails: ztunnel no longer knows it"

# 6. Bad input: the CNI error object, non-zero exit, nothing enrolled.
plug() { # plug STDIN CMD NETNS: zmesh-cni alone, as a runtime would run it
	h_exec n1 env CNI_COMMAND="$2" CNI_CONTAINERID=ctr-bad CNI_NETNS="$3" CNI_IFNAME=eth0 \
		CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=bad" CNI_PATH="$C_BIN" \
		"$C_BIN/zmesh-cni" <<<"$1" 2>/dev/null
}
c_pod n1 bad
good=$(jq -c '.plugins[1] + {cniVersion: "1.0.0", name: "zmt"}' "$(c_conflist n1)")
prev=$(jq -c . "$node_cache/ctr-a2.ptp.json")
for tc in "garbage|not json at all|ADD|/var/run/netns/$(h_ns bad)|6" \
	"no prevResult|$good|ADD|/var/run/netns/$(h_ns bad)|7" \
	"unknown cniVersion|$(jq -c '.cniVersion = "7.0.0"' <<<"$good")|ADD|/var/run/netns/$(h_ns bad)|1" \
	"missing netns|$(jq -c --argjson p "$prev" '.prevResult = $p' <<<"$good")|ADD|/var/run/netns/zmt-none|3" \
	"unknown command|$good|FROB|/var/run/netns/$(h_ns bad)|4" \
	"truncated JSON|{\"cniVersion\": \"1.0.0\", \"prevResult\": {|ADD|/var/run/netns/$(h_ns bad)|6"; do
	IFS='|' read -r name input cmd ns code <<<"$tc"
	out=$(plug "$input" "$cmd" "$ns")
	rc=$?
	t_ok "$([ "$rc" != 0 ] && jq -e --argjson c "$code" '.code == $c and (.msg | length > 0) and has("details")' <<<"$out" >/dev/null; echo $?)" \
		"$name: error object with code $code, exit $rc" || echo "#   $out"
done
t_is "$(m_zctl n1 -j workload list | jq -r '[.[].address] | join(",")')" "$A2" "bad input enrolled nothing"
t_ok "$(kill -0 "${M_ZT_PID[n1]}"; echo $?)" "ztunnel is still running"

# 7. Uninstall.
"$CNI" uninstall --cni-bin-dir "$C_BIN" --cni-conf-dir "$H_STATE/cni/n1/net.d" >/dev/null
t_is "$(jq -r '[.plugins[].type] | join(",")' "$f")" "ptp" "uninstall removes the zmesh-cni entry, ptp stays"
t_ok "$([ ! -e "$C_BIN/zmesh-cni" ]; echo $?)" "and the plugin binary"
t_done
