#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# --hbone-early-data (off by default): ztunnel n1 sends a client's first bytes right behind
# the CONNECT, before the 200; ztunnel n2 (default) waits for the 200 as Istio's does.
#
#   n1a 198.18.1.11 (HBONE) --+                            +-- n2a 198.18.2.11 (HBONE)
#   n1b 198.18.1.12 (HBONE) --+ n1 ===== wire0 ======== n2 +-- n2b 198.18.2.12 (HBONE)
#        ztunnel n1 --hbone-early-data          ztunnel n2 (default: no early data)
#   (IPv6: 2001:2:0:<node>::<11|12>); a Deny policy on port 7780 of namespace ns.
#
# Checks: with early data, echo (the client's bytes and its half-close may both precede the
# 200) and 4 MB bulk arrive intact, both families; a CONNECT answered 503 (closed port) or 401
# (Deny policy) fails the client's connection as without early data, the early bytes having
# left n1 (bytes_recv=1 in n1's access log) and reached no upstream; without the option the
# client's bytes wait for the 200 (n2's refused outbound connection read none of them).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_init 2 2
{
	echo "workloads:"
	for p in n1a n1b n2a n2b; do m_workload $p ns sa-$p HBONE; done
	echo "policies:"
	echo "- {name: deny-7780, namespace: ns, scope: Namespace, action: Deny, rules: [[[{destinationPorts: [7780]}]]]}"
} | m_config_write
m_ca_init
m_node_start n1 --ca-dir "$M_CA" --hbone-early-data
m_node_start n2 --ca-dir "$M_CA"
m_echo_serve n1a n1b n2a n2b
m_ztunnel_wait n1 n2
sleep 0.3 # enrollment happens right after readiness

for fam in 4 6; do
	src=$(h_ip$fam n1a)
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7777 --data "early-v$fam" 2>&1 | tr '\n' ' ')
	t_like "$out" "^peer=\[?$src\]?:[0-9]+ .*early-v$fam" "IPv$fam n1a -> n2a with early data: echoed, server sees $src"
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam 4 MB echoed intact with early data"
done

# refused PORT DATA CODE: n1a's connection to n2a:PORT is refused with CODE. The answer comes
# back within a round trip, so on a loaded machine it can beat the client's byte (sent right
# after connect() returns) to n1: up to five tries for one where n1 read the byte first.
# Without early data (n2, below) no try ever reads one.
refused() {
	local port=$1 data=$2 code=$3 fails=0 try
	for try in 1 2 3 4 5; do
		h_exec n1a "$ECHO" send "$(h_ip4 n2a)" "$port" --data "$data" >/dev/null 2>&1 ||
			fails=$((fails + 1))
		sleep 0.3
		grep -q "msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:$port .*bytes_recv=1 " \
			"$H_STATE/zt-n1.log" && break
	done
	t_is "$fails" "$try" "$code with early data: the client's connection fails (each of $try tries)"
	t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:$port .*bytes_recv=1 .*outcome=hbone_refused reason=\"[^\"]*status $code" \
		"n1 read the early byte and logs the $code"
}

# 503: nobody listens on 7999 in n2a.
refused 7999 x 503
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.2\.11:7999 .*bytes_sent=0 .*outcome=dial_failed" \
	"n2 delivered nothing for the failed dial"

# 401: the Deny policy on 7780 (checked before any dial).
refused 7780 y 401
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.2\.11:7780 .*bytes_sent=0 .*outcome=denied" \
	"n2 denied the CONNECT and delivered nothing"

# Default (n2): the client's bytes wait for the answer, so a refused CONNECT read none.
h_exec n2a "$ECHO" send "$(h_ip4 n1b)" 7780 --data z >/dev/null 2>&1
t_ok $((!$?)) "401 without early data: the client's connection fails"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.1\.12:7780 .*bytes_recv=0 .*outcome=hbone_refused reason=\"[^\"]*status 401" \
	"n2 (no --hbone-early-data) sent nothing before the 401"

for n in n1 n2; do t_run "ztunnel $n still running" -- kill -0 "${M_ZT_PID[$n]}"; done
t_done
