#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel against an HBONE stack we did not write (tests/tools/h2peer.py: Debian's
# python3-h2 + Python's ssl), both directions, with certificates from our dev CA; then every
# HBONE status code of ztunnel's 15008 and the release of an idle pooled connection.
#
#   n1a 198.18.1.11 (HBONE, enrolled) --+                    +-- n2a 198.18.2.11: h2peer server
#   n1b 198.18.1.12 (HBONE, enrolled) --+ n1 ==== wire0 == n2 +-- n2b 198.18.2.12: h2peer
#        datapath + ztunnel on n1 only                            client (TCP workload)
#   (IPv6: 2001:2:0:<node>::<11|12>). n2 has no datapath and no ztunnel: the python peers
#   are the far side.
#
# (a) python client in n2b -> n1a:15008 (captured to ztunnel n1): TLS 1.3, ALPN h2, AES-GCM,
#     n1a's certificate chosen by the arrival address, SETTINGS, CONNECT podIP:port -> 200
#     after the dial, the app sees n2b's address, half-close answered; both families.
# (b) n1a -> n2a:7777 through ztunnel n1's outbound to the python server on n2a:15008: no SNI,
#     TLS 1.3, ALPN h2, n1a's identity, CONNECT without :scheme/:path, authority podIP:port,
#     forwarded for="n1a:port", baggage, traceparent; echo and 4 MB bulk both families; the
#     server's 503 reaches the client as a refused connection.
# (c) status codes at 15008: 400 (GET, hostname authority, missing port, authority of another
#     workload), 401 (a Deny policy on the port), 503 (dial failure; no such local workload
#     after a reload).
# (d) --pool-idle-ms 1500: the pooled connection to n2a is released when idle and a new one
#     is made for the next connection (admin /config_dump and metrics show the pool size).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need_h2peer

id_of() { echo "spiffe://cluster.local/ns/ns/sa/sa-$1"; }

m_init 2 2
write_config() { # write_config [POD_TO_LEAVE_OUT]
	local p proto
	{
		echo "workloads:"
		for p in n1a n1b n2a n2b; do
			[ "$p" = "${1:-}" ] && continue
			proto=HBONE
			[ "$p" = n2b ] && proto=TCP
			m_workload $p ns sa-$p $proto
		done
		# For the 401: nothing may reach port 7780 of a pod in namespace ns.
		echo "policies:"
		echo "- {name: deny-7780, namespace: ns, scope: Namespace, action: Deny, rules: [[[{destinationPorts: [7780]}]]]}"
	} | m_config_write
}
write_config
m_ca_init
for p in n2a n2b; do
	"$CERT" --ca-dir "$M_CA" --id "$(id_of $p)" --cert "$H_STATE/$p.pem" --key "$H_STATE/$p.key" ||
		t_fatal "issuing a certificate for $p failed"
done

m_datapath_load n1
# Enrolled by hand (--no-enroll): the reload in (c) must not unenroll n1a under a live
# connection.
for p in n1a n1b; do m_enroll n1 $p ns sa-$p; done
m_ztunnel_start n1 --ca-dir "$M_CA" --no-enroll --poll-ms 200 --pool-idle-ms 1500
m_echo_serve n1a n1b
h_bg n2a $PY $PEER server --port 15008 --ca "$M_CA/ca-cert.pem" --cert "$H_STATE/n2a.pem" \
	--key "$H_STATE/n2a.key" --expect-id "$(id_of n1a)" \
	--authority-re '(198\.18\.2\.11|\[2001:2:0:2::11\]):(7777|7778|9)' \
	--forwarded-re 'for="(198\.18\.1\.11|\[2001:2:0:1::11\]):[0-9]+"' >"$H_STATE/server.out" 2>&1
SRV_PID=$H_LAST_PID
m_ztunnel_wait n1
h_wait_port n2a 15008 || t_fatal "python HBONE server did not start: $(cat "$H_STATE/server.out")"

pyclient() { # pyclient FAMILY ARGS...: the python client in n2b against n1a:15008
	local fam=$1
	shift
	timeout 30 ip netns exec "$(h_ns n2b)" $PY $PEER client --host "$(h_ip$fam n1a)" \
		--ca "$M_CA/ca-cert.pem" --cert "$H_STATE/n2b.pem" --key "$H_STATE/n2b.key" "$@" 2>&1
}

# ---- (a) python h2 client -> ztunnel's 15008 ----
pyclient 4 --contract --expect-id "$(id_of n1a)" \
	--req "CONNECT|198.18.1.11:7777|200|hello-from-h2|^peer=198\.18\.2\.12:[0-9]+ local=198\.18\.1\.11:7777.hello-from-h2\$" \
	>"$H_STATE/a4.out"
t_ok $? "IPv4: python h2 client against ztunnel 15008 ran clean"
p_tap "py-client v4" <"$H_STATE/a4.out"
pyclient 6 --expect-id "$(id_of n1a)" --contract \
	--req "CONNECT|[2001:2:0:1::11]:7777|200|hello-v6|^peer=\[?2001:2:0:2::12\]?:[0-9]+ .*hello-v6\$" \
	>"$H_STATE/a6.out"
t_ok $? "IPv6: python h2 client against ztunnel 15008 ran clean"
p_tap "py-client v6" <"$H_STATE/a6.out"
sleep 0.2
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=inbound via=hbone src.addr=198\.18\.2\.12:[0-9]+ src.workload=ns/n2b src.identity=$(id_of n2b) dst.addr=198\.18\.1\.11:7777 .*outcome=ok" \
	"ztunnel logs the python client's verified identity and the kept source address"

# ---- (b) ztunnel's outbound -> python h2 server on n2a:15008 ----
for fam in 4 6; do
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7777 --data "to-python-v$fam" 2>&1)
	t_is "$out" "to-python-v$fam" "IPv$fam n1a -> n2a: echoed by the python HBONE server"
	out=$(h_exec n1a "$ECHO" send "$(h_ip$fam n2a)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "IPv$fam 4 MB through ztunnel's outbound and the python server"
done
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 9 --data x 2>&1)
t_ok $((!$?)) "the python server's 503 reaches the client as a failed connection"
sleep 0.2
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:9 .*outcome=hbone_refused reason=\"[^\"]*status 503" \
	"ztunnel logs the 503 from the python server"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone src.addr=198\.18\.1\.11:[0-9]+ .*dst.identity=$(id_of n2a) upstream=198\.18\.2\.11:15008 bytes_sent=4000000 bytes_recv=4000000 .*outcome=ok" \
	"ztunnel logs the 4 MB outbound transfer with the python server's identity"

# ---- (c) status codes at 15008 ----
pyclient 4 --req "GET|198.18.1.11:7777|400" --req "CONNECT|example.com:80|400" \
	--req "CONNECT|198.18.1.11|400" --req "CONNECT|[198.18.1.11]:7777|400" \
	--req "CONNECT|198.18.1.12:7777|400" --req "CONNECT|198.18.1.11:7999|503" \
	--req "CONNECT|198.18.1.11:7780|401" \
	--req "CONNECT|198.18.1.11:7777|200|still-serving|still-serving" >"$H_STATE/c.out"
t_ok $? "status codes: one connection, each bad request answered, the next still served"
p_tap "status" <"$H_STATE/c.out"
sleep 0.2
log=$(cat "$H_STATE/zt-n1.log")
t_like "$log" "scope=access msg=close dir=inbound via=hbone src.addr=198\.18\.2\.12:[0-9]+ .*dst.addr=198\.18\.1\.12:7777 .*outcome=bad_request reason=\"[^\"]*400 authority is not the address the connection arrived on" \
	"400 for another workload's authority is logged with its reason"
t_like "$log" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.1\.11:7999 .*outcome=dial_failed reason=\"upstream connect failed: 198\.18\.1\.11:7999: Connection refused" \
	"503 for a failed dial is logged with its reason"
# 503 no such local workload: the connection is up, then n1a leaves the config.
reloads_reach() { [ "$(grep -c 'reloaded (generation' "$H_STATE/zt-n1.log")" -ge "$1" ]; }
rm -f "$H_STATE/go"
pyclient 4 --wait-file "$H_STATE/go" --req "CONNECT|198.18.1.11:7777|503" >"$H_STATE/c2.out" &
cpid=$!
sleep 0.5
write_config n1a
m_wait_for 5 reloads_reach 1
touch "$H_STATE/go"
wait $cpid
t_ok $? "503 when the authority's workload is no longer on this node (after a reload)"
p_tap "no workload" <"$H_STATE/c2.out"
sleep 0.2
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.1\.11:7777 .*outcome=no_local_workload reason=\"[^\"]*503" \
	"503 for a missing local workload is logged with its reason"
write_config
m_wait_for 5 reloads_reach 2
t_like "$log" "scope=access msg=close dir=inbound via=hbone .*dst.addr=198\.18\.1\.11:7780 .*outcome=denied reason=\"[^\"]*401 .*ns/deny-7780" \
	"401 for a policy deny is logged naming the policy"

# ---- (d) pool idle release ----
pool() { h_exec n1 curl -s -m 2 http://127.0.0.1:15000/config_dump | tr -d ' \n' |
	sed -n 's/.*"pool_connections":\([0-9]*\).*/\1/p'; }
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data idle-test 2>&1)
t_is "$out" "idle-test" "a connection through the pool"
t_ok "$([ "$(pool)" -ge 1 ]; echo $?)" "right after it the pool holds a connection ($(pool))"
sleep 3
t_is "$(pool)" "0" "after 1.5 s idle (--pool-idle-ms 1500) the pooled connection is released"
t_like "$(cat "$H_STATE/zt-n1.log")" "HBONE connection .*198\.18\.2\.11.*idle for 1500 ms: released" "the release is logged"
t_like "$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)" "zmesh_hbone_pool_connections 0" \
	"metrics gauge zmesh_hbone_pool_connections is 0"
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data after-idle 2>&1)
t_is "$out" "after-idle" "the next connection makes a new pooled connection and works"
t_is "$(pool)" "1" "the pool holds it"

# The python server's view of every connection ztunnel made to it.
h_stop "$SRV_PID"
sleep 0.2
t_ok "$(grep -c '^PASS' "$H_STATE/server.out" | awk '{print ($1 >= 40) ? 0 : 1}')" \
	"the python server ran its checks on every connection ($(grep -c '^PASS' "$H_STATE/server.out") passed)"
p_tap "py-server" < <(grep -v "^#" "$H_STATE/server.out" | sort -u)
t_ok "$(kill -0 "${M_ZT_PID[n1]}" 2>/dev/null; echo $?)" "ztunnel n1 is still running"
t_done
