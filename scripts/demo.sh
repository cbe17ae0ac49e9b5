#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make demo: a two-node zmesh in network namespaces, narrated. A dev CA, the BPF datapath and
# one ztunnel per node; pods are enrolled by their ztunnel from its config file. Traffic goes
# same-node (spliced, no TLS) and cross-node (mTLS HBONE), then the demo shows what zmeshctl,
# ztunnel's metrics and a packet capture on the wire between the nodes say about it.
# Everything it creates is removed when it ends (or on Ctrl-C). Safe on any machine: only
# namespaces it creates, only 198.18.0.0/15 and 2001:2::/48 addresses. Takes ~10 s.
#
#   n1a 198.18.1.11 sa=sleep   --+                        +-- n2a 198.18.2.11 sa=httpbin
#   n1b 198.18.1.12 sa=curl    --+ n1 ===== wire0 ===== n2 +-- n2b 198.18.2.12 sa=web
#        ztunnel n1                                              ztunnel n2
set -u # not -e: every step checks itself and the demo explains what failed
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/lib/harness.sh
ECHO=$BUILD/tests/tools/zm-echo
ZT=$BUILD/bin/ztunnel
ZMESHCTL=$BUILD/bin/zmeshctl
for b in "$ECHO" "$ZT" "$ZMESHCTL"; do
	[ -x "$b" ] || { echo "demo: $b is missing: run make first" >&2; exit 1; }
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
zm() {
	local node=$1
	shift
	"$ZMESHCTL" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$H_BPFFS/$node" "$@"
}
fail() {
	echo "demo: $*" >&2
	for n in n1 n2; do
		[ -s "$H_STATE/ztunnel-$n.log" ] && sed "s/^/  ztunnel $n: /" "$H_STATE/ztunnel-$n.log" | tail -5 >&2
	done
	exit 1
}
sa_of() { case $1 in n1a) echo sleep ;; n1b) echo curl ;; n2a) echo httpbin ;; n2b) echo web ;; esac; }

h_init
say "Two nodes with two pods each (namespaces prefixed $H_PFX-)"
h_topology 2 2
CFG=$H_STATE/ztunnel.yaml
{
	echo "workloads:"
	for p in n1a n1b n2a n2b; do
		echo "- {uid: Kubernetes//Pod/demo/$p, name: $p, namespace: demo, serviceAccount: $(sa_of $p), protocol: HBONE, node: $(h_pod_node $p), workloadIps: [\"$(h_ip4 $p)\", \"$(h_ip6 $p)\"]}"
	done
} >"$CFG"
echo "ztunnel config (the reference's local config format): $CFG"
sed 's/^/    /' "$CFG"

say "A dev CA: every workload gets an ECDSA certificate with its SPIFFE id"
run "$ZMESHCTL" ca init --dir "$H_STATE/ca" || fail "zmeshctl ca init failed"

say "Per node: the BPF datapath (no iptables) and a ztunnel that enrolls its node's pods"
for n in n1 n2; do
	mkdir -p "$H_BPFFS/$n"
	run zm "$n" datapath load --uplink wire0 >/dev/null || fail "datapath load on $n failed"
	printf '$ ztunnel --config %s --node %s --ca-dir %s  (in node %s)\n' "$CFG" "$n" \
		"$H_STATE/ca" "$n"
	h_bg "$n" "$ZT" --config "$CFG" --node "$n" --netns "/var/run/netns/$(h_ns "$n")" \
		--pin-dir "$H_BPFFS/$n" --ca-dir "$H_STATE/ca" 2>"$H_STATE/ztunnel-$n.log"
done
for p in n1a n1b n2a n2b; do
	h_bg "$p" "$ECHO" serve --port 8080 --banner
	h_bg "$p" "$ECHO" serve --port 8081
done
for n in n1 n2; do
	h_wait_port "$n" 15008 10 || fail "ztunnel on $n did not start"
	for i in $(seq 100); do
		[ "$(h_exec "$n" curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" = ready ] && break
		sleep 0.1
	done
done
for p in n1a n1b n2a n2b; do h_wait_port "$p" 8081 || fail "echo server in $p did not start"; done
for i in $(seq 50); do # enrollment follows readiness
	[ "$(zm n2 -j workload list 2>/dev/null | grep -o '"veth-n2[ab]"' | wc -l)" -ge 4 ] && break
	sleep 0.1
done
run zm n1 workload list

say "Traffic: every pod's echo server first prints the client address it sees"
MARK=ZMESH-DEMO-SECRET-PAYLOAD
h_bg n1 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$H_STATE/wire.pcap" tcp 2>/dev/null
dump_pid=$H_LAST_PID
sleep 1 # tcpdump needs a moment before it captures
echo "same node, n1a -> n1b (spliced by ztunnel n1, no TLS needed inside the node):"
h_exec n1a "$ECHO" send "$(h_ip4 n1b)" 8080 --data "hello n1b"$'\n' || fail "same-node traffic failed"
echo "cross node, n1a -> n2a over IPv4 and IPv6 (mTLS HBONE from ztunnel n1 to ztunnel n2):"
h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 8080 --data "$MARK over IPv4"$'\n' || fail "cross-node IPv4 failed"
h_exec n1a "$ECHO" send "$(h_ip6 n2a)" 8080 --data "$MARK over IPv6"$'\n' || fail "cross-node IPv6 failed"
echo "cross node, n2b -> n1b, 10 MB checked end to end:"
h_exec n2b "$ECHO" send "$(h_ip4 n1b)" 8081 --bytes 10000000 || fail "bulk transfer failed"
sleep 0.5
h_stop "$dump_pid"

say "What went over the wire between the nodes (tcpdump on n1's wire0)"
pcap=$H_STATE/wire.pcap
echo "TCP packets per direction (source > destination, port last):"
tcpdump -nn -r "$pcap" 2>/dev/null | awk '{print $3, $4, $5}' | sed 's/:$//' | sort | uniq -c |
	sort -rn | sed 's/^/    /'
n15008=$(tcpdump -nn -r "$pcap" 'tcp port 15008' 2>/dev/null | wc -l)
nother=$(tcpdump -nn -r "$pcap" 'tcp and not port 15008' 2>/dev/null | wc -l)
napp=$(tcpdump -nn -r "$pcap" 'tcp[((tcp[12:1] & 0xf0) >> 2):2] = 0x1703' 2>/dev/null | wc -l)
echo "packets to or from port 15008 (HBONE): $n15008; any other TCP port: $nother"
echo "packets starting a TLS 1.3 application-data record (17 03 03): $napp"
echo "one of them, as bytes on the wire:"
tcpdump -nn -r "$pcap" -X -c 1 'tcp port 15008 and tcp[((tcp[12:1] & 0xf0) >> 2):2] = 0x1703' \
	2>/dev/null | sed -n '2,6p' | sed 's/^/    /'
if grep -aq "$MARK" "$pcap"; then
	fail "the payload marker $MARK is on the wire in plaintext"
fi
echo "the payload \"$MARK\" sent by n1a: not found anywhere in the capture (encrypted)"
[ "$n15008" -gt 0 ] && [ "$nother" = 0 ] || fail "unexpected traffic on the wire"

say "Who talked to whom: the verified certificate identities (TLS 1.3 encrypts certificates,"
echo "so they come from ztunnel's access log, not the capture)"
grep -h "access close dir=inbound via=hbone" "$H_STATE"/ztunnel-n*.log |
	sed -E 's/.* src.addr=([^ ]+) .*src.identity=([^ ]+) dst.addr=([^ ]+) .*dst.identity=([^ ]+) .*bytes_sent=([0-9]+) bytes_recv=([0-9]+).*outcome=([a-z_]+).*/    \1 (\2) -> \3 (\4) \6 B in, \5 B back, \7/' |
	sed 's/spiffe:\/\///g'

say "ztunnel n2's metrics (Istio's istio_tcp_* on :15020/metrics)"
printf '$ curl -s http://127.0.0.1:15020/metrics   (in node n2)\n'
h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics | grep -E '^istio_tcp_(received|connections_opened)' |
	sed -E 's/,(source_workload_namespace|destination_workload_namespace|destination_service|request_protocol|response_flags)="[^"]*"//g' |
	sed 's/^/    /'

say "What the datapath counted on node n2 (zmeshctl)"
printf '$ zmeshctl stats   (in node n2, rows that are not 0)\n'
zm n2 stats | awk 'NR == 1 || ($2 != 0 && $1 != "?")'
say "Done: the namespaces, BPF programs and processes are removed on exit"
