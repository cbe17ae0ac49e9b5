#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel plain paths: two nodes, each with the datapath loaded and a ztunnel (no CA, so no
# HBONE here; see ztunnel-hbone.sh). n1a, n1b and n2a speak HBONE and are enrolled by their
# ztunnel automatically; n2b is a plain TCP workload (not captured).
#
#   n1a 198.18.1.11  (HBONE) --+                          +-- n2a 198.18.2.11 (HBONE)
#   n1b 198.18.1.12  (HBONE) --+ n1 ==== wire0 ====== n2 +-- n2b 198.18.2.12 (TCP)
#        ztunnel n1 (15001/15006/15008, 15020)    ztunnel n2; echo server on n2's 198.18.0.2
#   service echo.ns.svc.cluster.local VIP 198.18.100.1 / 2001:2:0:100::1 port 80 -> 7777,
#   endpoints n1b and n2b. (IPv6: 2001:2:0:<node>::<11|12>, VIP 2001:2:0:100::1)
#
# Paths: same node n1a -> n1b (spliced, source kept), cross node n1a -> n2b (plain TCP,
# source kept), VIP -> endpoint, unknown destination (n2's node address) passed through,
# inbound plaintext n2b -> n1a through 15006; 4 MB bulk with checksums both families; access
# log lines, metrics counters, auto-enrollment seen by `zmeshctl -j workload list`, and a
# config reload in the middle of a transfer that leaves the transfer intact.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh

m_init 2 2

write_config() { # write_config [EXTRA_WORKLOAD_NAME]
	local p
	{
		echo "workloads:"
		for p in n1a n1b n2a n2b; do
			echo "- uid: Kubernetes//Pod/ns/$p"
			echo "  name: $p"
			echo "  namespace: ns"
			echo "  serviceAccount: sa-$p"
			echo "  workloadIps: [\"$(h_ip4 $p)\", \"$(h_ip6 $p)\"]"
			echo "  node: $(h_pod_node $p)"
			if [ "$p" = n2b ]; then echo "  protocol: TCP"; else echo "  protocol: HBONE"; fi
			case $p in n1b | n2b) echo "  services: {\"ns/echo.ns.svc.cluster.local\": {80: 7777, 81: 7778}}" ;; esac
		done
		if [ -n "${1:-}" ]; then
			echo "- {uid: Kubernetes//Pod/ns/$1, name: $1, namespace: ns, workloadIps: [\"198.18.9.9\"], node: n9}"
		fi
		echo "services:"
		echo "- name: echo"
		echo "  namespace: ns"
		echo "  hostname: echo.ns.svc.cluster.local"
		echo "  vips: [\"/198.18.100.1\", \"/2001:2:0:100::1\"]"
		echo "  ports: {80: 7777, 81: 7778}"
	} | m_config_write
}
write_config

t_run "ztunnel --check accepts the test config" -- "$ZT" --check --config "$M_CFG"
printf 'workloads:\n- name: x\n  bogus: 1\n' >"$H_STATE/bad.yaml"
out=$("$ZT" --check --config "$H_STATE/bad.yaml" 2>&1)
t_like "$out" "bad.yaml:[0-9]+: " "ztunnel --check names FILE:LINE of a broken config"

for n in n1 n2; do m_node_start $n --poll-ms 200; done
m_echo_serve n1a n1b n2a n2b
h_bg n2 "$ECHO" serve --port 7777 --banner
h_wait_port n2 7777 || t_fatal "echo server in n2 did not start"
m_ztunnel_wait n1 n2

ready=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15021/healthz/ready)
t_is "$ready" "ready" "ztunnel n1 reports ready on 15021"

# Auto-enrollment: the HBONE workloads of each node, nothing else.
for i in $(seq 50); do
	wl=$(m_zctl n1 -j workload list)
	[ "$(echo "$wl" | grep -o '"veth-n1[ab]"' | wc -l)" -ge 4 ] && break
	sleep 0.1
done
t_like "$wl" "198\.18\.1\.11" "n1a auto-enrolled on n1 (zmeshctl -j workload list)"
t_like "$wl" "2001:2:0:1::12" "n1b auto-enrolled on n1 with its IPv6 address"
wl2=$(m_zctl n2 -j workload list)
t_like "$wl2" "198\.18\.2\.11" "n2a auto-enrolled on n2"
t_ok "$(! echo "$wl2" | grep -q '198\.18\.2\.12'; echo $?)" "n2b (protocol TCP) is not enrolled"

metric() { # metric NODE NAME: sum of a counter over all series
	h_exec "$1" curl -s -m 2 http://127.0.0.1:15020/metrics |
		awk -v n="$2" 'index($0, n "{") == 1 { s += $NF } END { print s + 0 }'
}
opened0=$(metric n1 istio_tcp_connections_opened_total)

banner() { # banner FROM DST PORT: the peer address the server reports
	h_exec "$1" "$ECHO" send "$2" "$3" --data "hello-$1" 2>&1 | tr '\n' ' '
}
for fam in 4 6; do
	src=$(h_ip$fam n1a)
	out=$(banner n1a "$(h_ip$fam n1b)" 7777)
	t_like "$out" "^peer=\[?$src\]?:[0-9]+ .*hello-n1a" "IPv$fam same node n1a -> n1b through ztunnel, server sees $src"
	out=$(banner n1a "$(h_ip$fam n2b)" 7777)
	t_like "$out" "^peer=\[?$src\]?:[0-9]+ .*hello-n1a" "IPv$fam cross node n1a -> n2b (plain TCP), server sees $src"
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n1b)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam same node 4 MB echoed intact"
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2b)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam cross node 4 MB echoed intact"
	out=$(banner n2b "$(h_ip$fam n1a)" 7777)
	t_like "$out" "^peer=\[?$(h_ip$fam n2b)\]?:[0-9]+ .*hello-n2b" "IPv$fam inbound plaintext n2b -> n1a via 15006 keeps $(h_ip$fam n2b)"
	out=$(h_exec n2b "$ECHO" send "$(h_ip$fam n1b)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam inbound plaintext 4 MB echoed intact"
	# Same node: n2b's veth got the capture filter from ztunnel n2 (no enrollment), so its
	# connection to enrolled n2a goes through n2's 15006 too.
	out=$(banner n2b "$(h_ip$fam n2a)" 7777)
	t_like "$out" "^peer=\[?$(h_ip$fam n2b)\]?:[0-9]+ .*hello-n2b" "IPv$fam same-node plaintext n2b -> n2a keeps $(h_ip$fam n2b)"
done
vip4=198.18.100.1
vip6=2001:2:0:100::1
for fam in 4 6; do
	eval vip=\$vip$fam
	out=$(banner n1a "$vip" 80)
	t_like "$out" "^peer=\[?$(h_ip$fam n1a)\]?:[0-9]+ local=\[?($(h_ip$fam n1b)|$(h_ip$fam n2b))\]?:7777" "IPv$fam VIP $vip:80 -> an endpoint's 7777"
	out=$(h_exec n1a "$ECHO" send "$vip" 81 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam VIP 4 MB echoed intact"
done
seen=""
for i in $(seq 12); do seen="$seen $(banner n1a $vip4 80 | grep -o 'local=[0-9.]*')"; done
t_like "$seen" "local=198.18.1.12" "VIP spreads to endpoint n1b"
t_like "$seen" "local=198.18.2.12" "VIP spreads to endpoint n2b"
out=$(banner n1a 198.18.0.2 7777)
t_like "$out" "^peer=198\.18\.1\.11:[0-9]+ .*hello-n1a" "unknown destination (n2's node address) passed through, source kept"

sleep 0.3
log1=$(cat "$H_STATE/zt-n1.log")
t_like "$log1" "scope=access msg=open dir=outbound via=local src.addr=198\.18\.1\.11:[0-9]+ src.workload=ns/n1a src.identity=spiffe://cluster.local/ns/ns/sa/sa-n1a dst.addr=198\.18\.1\.12:7777" "access log: open line of a same-node connection"
t_like "$log1" "scope=access msg=close dir=outbound via=local .* bytes_sent=4000000 bytes_recv=4000000 duration_ms=[0-9]+ outcome=ok" "access log: close line with bytes both ways and outcome"
t_like "$log1" "scope=access msg=close dir=outbound via=tcp .*dst.addr=\[2001:2:0:2::12\]:7778" "access log: IPv6 cross-node plain connection"
t_like "$log1" "scope=access msg=open dir=outbound via=local .*dst.addr=198\.18\.100\.1:80 dst.service=echo.ns.svc.cluster.local" "access log: VIP connection names the service"
t_like "$log1" "scope=access msg=close dir=outbound via=passthrough .*dst.addr=198\.18\.0\.2:7777" "access log: passthrough"
t_like "$log1" "scope=access msg=close dir=inbound_plain via=tcp src.addr=198\.18\.2\.12:[0-9]+ .*outcome=ok" "access log: inbound plaintext on n1"
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound_plain via=tcp src.addr=198\.18\.2\.12:[0-9]+ .*dst.addr=198\.18\.2\.11:7777.*outcome=ok" \
	"access log: same-node plaintext n2b -> n2a went through n2's 15006"
opened1=$(metric n1 istio_tcp_connections_opened_total)
t_ok "$([ "$opened1" -ge $((opened0 + 20)) ]; echo $?)" "istio_tcp_connections_opened_total rose ($opened0 -> $opened1)"
recv=$(metric n1 istio_tcp_received_bytes_total)
t_ok "$([ "$recv" -ge 24000000 ]; echo $?)" "istio_tcp_received_bytes_total counts the bulk transfers ($recv)"
m=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)
t_like "$m" 'istio_tcp_connections_closed_total\{reporter="source",source_workload="n1a",source_workload_namespace="ns",source_principal="spiffe://cluster.local/ns/ns/sa/sa-n1a",source_app="n1a",source_version="latest",source_canonical_service="n1a",source_canonical_revision="latest",source_cluster="Kubernetes",destination_workload="n1b"' "metrics carry Istio's labels"
st=$(m_zctl n1 -j stats)
t_like "$st" '"captured_outbound"' "zmeshctl -j stats shows captured_outbound"
dump=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15000/config_dump | tr -d ' \n')
t_like "$dump" '"enrolled":\["198.18.1.11","2001:2:0:1::11","198.18.1.12","2001:2:0:1::12"\]' "admin /config_dump lists what ztunnel enrolled"

# Reload mid-transfer: the established connection must not notice.
h_exec n1a "$ECHO" send "$(h_ip4 n2b)" 7778 --bytes 300000000 >"$H_STATE/bulk.out" 2>&1 &
bulk=$!
sleep 0.3
write_config extra
kill -HUP "${M_ZT_PID[n1]}"
wait $bulk
t_is "$(cat "$H_STATE/bulk.out")" "echo ok 300000000" "300 MB transfer survives a config reload (SIGHUP + file change)"
sleep 0.5
t_like "$(cat "$H_STATE/zt-n1.log")" "reloaded \(generation [2-9]" "ztunnel n1 logged the reload"
dump=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15000/config_dump | tr -d ' \n')
t_like "$dump" '"name":"extra"' "the new config is live after the reload"
out=$(banner n1a "$(h_ip4 n1b)" 7777)
t_like "$out" "^peer=198\.18\.1\.11:" "new connections work after the reload"

h_exec n1 curl -s -m 2 http://127.0.0.1:15000/quitquitquit >/dev/null
for i in $(seq 40); do kill -0 "${M_ZT_PID[n1]}" 2>/dev/null || break; sleep 0.05; done
t_ok "$(! kill -0 "${M_ZT_PID[n1]}" 2>/dev/null; echo $?)" "/quitquitquit stops ztunnel n1"
t_done
