#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# L4 authorization of same-node connections. A connection between two pods of one node never
# reaches that node's inbound paths (15008, 15006): ztunnel dials the destination pod itself.
# The policy must still be the destination's, decided with the source pod's identity.
#
#   n1a 198.18.1.11 srv/client (HBONE) --+
#   n1b 198.18.1.12 bad-ns/other (HBONE) +-- n1: both serve nothing; n1c srv/server serves
#   n1c 198.18.1.13 srv/server (HBONE) --+
#
# Checks: allowed by principal (n1a), denied for another principal (n1b: reset, access log
# outcome=denied naming the policy, DENY metric series), PeerAuthentication STRICT does not
# refuse same-node mesh traffic (it has an identity), a policy applied while a same-node
# connection is open closes it, and the IPv6 path is decided the same way.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh

m_init 2 3 # n2 only gives n1 its uplink
{
	echo "workloads:"
	m_workload n1a srv client HBONE "labels: {app: client}"
	m_workload n1b bad-ns other HBONE "labels: {app: other}"
	m_workload n1c srv server HBONE "labels: {app: server}"
} | m_config_write
m_ca_init
m_node_start n1 --ca-dir "$M_CA" --policy "$M_POL" --no-fastpath --poll-ms 100
m_echo_serve n1c
m_ztunnel_wait n1

send() { # send POD DST_POD PORT [FAMILY]: prints what the client saw
	h_exec "$1" "$ECHO" send "$(h_ip"${4:-4}" "$2")" "$3" --data "hi-$1" --timeout 3 2>&1 | tr '\n' ' '
}

t_like "$(send n1a n1c 7777)" "hi-n1a" "no policy: n1a -> n1c (same node) allowed"
t_like "$(send n1b n1c 7777)" "hi-n1b" "no policy: n1b -> n1c allowed"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=open dir=outbound via=local src.addr=198\.18\.1\.12:[0-9]+ .*dst.addr=198\.18\.1\.13:7777" "same-node connections go through ztunnel (via=local)"

m_policy_set "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: srv}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/srv/sa/client]}}]"
t_like "$(send n1a n1c 7777)" "hi-n1a" "ALLOW by principal: srv/client allowed on the same node"
out=$(send n1b n1c 7777)
t_ok "$(! grep -q hi-n1b <<<"$out"; echo $?)" "ALLOW by principal: bad-ns/other refused on the same node ($out)"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=local src.addr=198\.18\.1\.12:[0-9]+ src.workload=bad-ns/n1b src.identity=spiffe://cluster.local/ns/bad-ns/sa/other .*outcome=denied reason=\".*srv/allow-client" "access log: outcome=denied naming the policy"
t_like "$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)" 'istio_tcp_connections_closed_total\{.*source_workload="n1b",.*response_flags="DENY"' "metrics: the refusal counted in a DENY series"
out=$(send n1b n1c 7777 6)
t_ok "$(! grep -q hi-n1b <<<"$out"; echo $?)" "IPv6: bad-ns/other refused on the same node too"
t_like "$(send n1a n1c 7777 6)" "hi-n1a" "IPv6: srv/client allowed"

m_policy_set "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: srv}
spec:
  mtls: {mode: STRICT}"
t_like "$(send n1b n1c 7777)" "hi-n1b" "STRICT: same-node mesh traffic carries an identity, allowed"

# A deny applied while a same-node connection is open closes it.
h_exec n1b /usr/bin/python3 -c '
import socket, sys, time
s = socket.create_connection(("198.18.1.13", 7778), timeout=2)
s.sendall(b"x"); s.recv(1); print("open", flush=True)
s.settimeout(10)
try:
    d = s.recv(1)
    print("closed" if not d else "data")
except (ConnectionResetError, socket.timeout) as e:
    print("closed" if isinstance(e, ConnectionResetError) else "timeout")
' >"$H_STATE/live.out" 2>&1 &
live=$!
for i in $(seq 30); do grep -q open "$H_STATE/live.out" && break; sleep 0.1; done
t_like "$(cat "$H_STATE/live.out")" "open" "live same-node connection n1b -> n1c:7778 established"
m_policy_set "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-bad-ns, namespace: srv}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules:
  - from: [{source: {namespaces: [bad-ns]}}]"
wait "$live"
t_like "$(cat "$H_STATE/live.out")" "closed" "the new DENY closed the live same-node connection"
t_like "$(cat "$H_STATE/zt-n1.log")" "via=local .*outcome=denied reason=\".*policy changed: .*srv/deny-bad-ns" "logged as closed by the policy change"
t_like "$(send n1a n1c 7777)" "hi-n1a" "srv/client still allowed"
t_done
