#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# TCP half-close and reset through the mesh, same node (spliced) and cross node (HBONE), in
# both directions (tests/tools/zt-tcpprobe.py at both ends):
#   - the client half-closes: the server sees EOF and its answer still reaches the client;
#   - the server half-closes first: the client sees EOF and can still send;
#   - the server resets: the client sees a reset, not a clean EOF;
#   - the client resets: the server sees a reset, not a clean EOF.
#
#   n1a 198.18.1.11 --+                          +-- n2a 198.18.2.11
#   n1b 198.18.1.12 --+ n1 ====== wire0 ====== n2 +-- n2b 198.18.2.12     (all HBONE, enrolled)
#   client n1a; servers on n1b (same node: splice) and n2a (cross node: HBONE, mTLS)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
PROBE=tests/tools/zt-tcpprobe.py

m_init 2 2
m_config_hbone n1a n1b n2a n2b
m_ca_init
for n in n1 n2; do m_node_start $n --ca-dir "$M_CA"; done
for p in n1b n2a; do
	h_bg $p $PY $PROBE serve --port 9001 --mode drain
	h_bg $p $PY $PROBE serve --port 9002 --mode reset
	h_bg $p $PY $PROBE serve --port 9003 --mode watch >"$H_STATE/watch-$p.out"
	h_bg $p $PY $PROBE serve --port 9004 --mode first >"$H_STATE/first-$p.out"
done
m_ztunnel_wait n1 n2
for p in n1b n2a; do
	for port in 9001 9002 9003 9004; do
		h_wait_port $p $port || t_fatal "probe server $port in $p did not start"
	done
done
sleep 0.3 # enrollment follows readiness

probe() { timeout 30 ip netns exec "$(h_ns n1a)" $PY $PROBE "$@" 2>&1; }
last_line() { # last_line FILE REGEX: the file's last line once it matches (3 s at most)
	local i
	for i in $(seq 30); do
		tail -1 "$1" | grep -Eq "$2" && break
		sleep 0.1
	done
	tail -1 "$1"
}

for case in "same-node n1b" "cross-node n2a"; do
	set -- $case
	what=$1 srv=$2
	for fam in 4 6; do
		ip=$(h_ip$fam $srv)
		out=$(probe halfclose "$ip" 9001 --bytes 300000)
		t_is "$out" "got 300000 bytes" "$what IPv$fam: client half-closes, server sees EOF and its answer still arrives"
	done
	ip=$(h_ip4 $srv)
	out=$(probe listen-first "$ip" 9004 --bytes 70000)
	t_is "$out" "server first" "$what: server half-closes first, the client reads it to EOF"
	t_is "$(last_line "$H_STATE/first-$srv.out" "^client eof 70000")" "client eof 70000" "$what: ... and the client's 70000 bytes still reach the server"
	out=$(probe expect-reset "$ip" 9002)
	t_is "$out" "reset" "$what: server resets, the client sees a reset (not a clean EOF)"
	out=$(probe reset "$ip" 9003)
	t_like "$(last_line "$H_STATE/watch-$srv.out" "^client")" "^client reset" "$what: client resets, the server sees a reset (not a clean EOF)"
done
sleep 0.3
log1=$(cat "$H_STATE/zt-n1.log")
t_like "$log1" "scope=access msg=close dir=outbound via=local .*dst.addr=198\.18\.1\.12:9002 .*outcome=upstream_reset" "n1 logs the same-node server reset as upstream_reset"
t_like "$log1" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:9002 .*outcome=upstream_reset" "n1 logs the cross-node server reset as upstream_reset"
t_like "$log1" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:9003 .*outcome=downstream_reset" "n1 logs the cross-node client reset as downstream_reset"
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.2\.11:9002 .*outcome=upstream_reset" "n2 logs the server reset of the inbound tunnel"
t_done
