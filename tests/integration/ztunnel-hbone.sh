#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel HBONE: cross-node traffic between HBONE workloads goes through mutual TLS + HTTP/2
# CONNECT on 15008, with the source pod's SPIFFE certificate from a shared dev CA.
#
#   n1a 198.18.1.11 (HBONE) --+                            +-- n2a 198.18.2.11 (HBONE)
#   n1b 198.18.1.12 (HBONE) --+ n1 ===== wire0 ======== n2 +-- n2b 198.18.2.12 (HBONE)
#        ztunnel n1 --(mTLS HBONE, source 198.18.1.11)--> n2a:15008 (ztunnel n2) --> n2a:7777
#   (IPv6: 2001:2:0:<node>::<11|12>); dev CA in the run's state dir (zmeshctl ca init)
#
# Checks: echo and 4 MB bulk both families through HBONE with the client address kept; a
# capture on n2's wire0 shows TLS on 15008 and neither the payload marker nor the app port;
# 100 concurrent connections share a few pooled TLS connections; a CONNECT to a closed port
# is answered 503 (seen in both access logs); access log and metrics carry mTLS identities.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need tcpdump
m_init 2 2
m_config_hbone n1a n1b n2a n2b
m_ca_init
for n in n1 n2; do m_node_start $n --ca-dir "$M_CA"; done
m_echo_serve n1a n1b n2a n2b
m_ztunnel_wait n1 n2
sleep 0.3 # enrollment happens right after readiness

for fam in 4 6; do
	src=$(h_ip$fam n1a)
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7777 --data "hello-hbone" 2>&1 | tr '\n' ' ')
	t_like "$out" "^peer=\[?$src\]?:[0-9]+ .*hello-hbone" "IPv$fam n1a -> n2a through HBONE, server sees $src"
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam 4 MB echoed intact through HBONE"
	out=$(h_exec n2b "$ECHO" send "$(h_ip$fam n1b)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam reverse direction n2b -> n1b 4 MB intact"
done

# What the wire sees: TLS to 15008 only, never the payload.
MARK=ZMESH-PLAINTEXT-MARKER-0123456789
h_bg n2 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$H_STATE/wire.pcap" tcp 2>/dev/null
dump_pid=$H_LAST_PID
sleep 1
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data "$MARK$MARK" 2>&1 | tr '\n' ' ')
t_like "$out" "$MARK" "marker echoed through HBONE while capturing on n2's wire0"
sleep 0.5
h_stop "$dump_pid"
sleep 0.2
n15008=$(tcpdump -nn -r "$H_STATE/wire.pcap" 'tcp port 15008' 2>/dev/null | wc -l)
n7777=$(tcpdump -nn -r "$H_STATE/wire.pcap" 'tcp port 7777' 2>/dev/null | wc -l)
t_ok "$([ "$n15008" -gt 0 ]; echo $?)" "the wire carries port 15008 ($n15008 packets)"
t_is "$n7777" "0" "the app port 7777 never appears on the wire"
t_ok "$(! grep -aq "$MARK" "$H_STATE/wire.pcap"; echo $?)" "the payload marker is not on the wire in plaintext"
tls=$(tcpdump -nn -r "$H_STATE/wire.pcap" -X 'tcp port 15008 and tcp[((tcp[12:1] & 0xf0) >> 2):2] = 0x1703' 2>/dev/null | grep -c '^[0-9]')
t_ok "$([ "$tls" -gt 0 ]; echo $?)" "TLS application-data records on 15008 ($tls)"

# 100 concurrent connections share pooled TLS connections.
pids=()
for i in $(seq 100); do
	h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7778 --bytes 200000 >"$H_STATE/c$i.out" 2>&1 &
	pids+=($!)
done
fails=0
for pid in "${pids[@]}"; do wait "$pid" || fails=$((fails + 1)); done
okc=$(cat "$H_STATE"/c*.out | grep -c "echo ok 200000")
t_is "$okc" "100" "100 concurrent connections echoed intact ($fails failed)"
ntls=$(h_exec n1 ss -Htn state established "dst 198.18.2.11:15008" | wc -l)
t_ok "$([ "$ntls" -ge 1 ] && [ "$ntls" -le 4 ]; echo $?)" "they used $ntls pooled TLS connection(s) from n1a to n2a:15008 (at most 4)"

# A CONNECT to a port nobody listens on: 503 from n2, the client sees its connection fail.
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7999 --data x 2>&1)
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.2\.11:7999 .*outcome=dial_failed" "n2 logs the failed dial of an inbound CONNECT"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone .*outcome=hbone_refused reason=\"[^\"]*status 503" "n1 logs the 503 answer"

log1=$(cat "$H_STATE/zt-n1.log")
log2=$(cat "$H_STATE/zt-n2.log")
t_like "$log1" "scope=access msg=close dir=outbound via=hbone src.addr=198\.18\.1\.11:[0-9]+ src.workload=ns/n1a src.identity=spiffe://cluster.local/ns/ns/sa/sa-n1a dst.addr=198\.18\.2\.11:7778 .*dst.identity=spiffe://cluster.local/ns/ns/sa/sa-n2a upstream=198\.18\.2\.11:15008 bytes_sent=4000000 bytes_recv=4000000 .*outcome=ok" "n1 access log: outbound HBONE with identities and bytes"
t_like "$log2" "scope=access msg=close dir=inbound via=hbone src.addr=198\.18\.1\.11:[0-9]+ src.workload=ns/n1a src.identity=spiffe://cluster.local/ns/ns/sa/sa-n1a dst.addr=198\.18\.2\.11:7778 .*outcome=ok" "n2 access log: inbound HBONE with the verified peer identity"
m1=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)
m2=$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics)
t_like "$m1" 'istio_tcp_connections_opened_total\{reporter="source",source_workload="n1a",.*destination_workload="n2a".*connection_security_policy="mutual_tls",request_protocol="tcp",response_flags="-"\} [0-9]+' "n1 metrics: outbound mutual_tls series"
t_like "$m2" 'istio_tcp_received_bytes_total\{reporter="destination",source_workload="n1a",.*source_principal="spiffe://cluster.local/ns/ns/sa/sa-n1a".*connection_security_policy="mutual_tls",request_protocol="tcp",response_flags="-"\} [1-9][0-9]+' "n2 metrics: inbound bytes with the peer principal"
st=$(m_zctl n2 -j stats)
t_like "$st" '"captured_inbound_hbone"' "zmeshctl -j stats on n2 counts captured_inbound_hbone"
t_done
