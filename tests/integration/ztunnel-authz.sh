#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel L4 authorization (userspace/lib/rbac/README.md) with Istio AuthorizationPolicy and
# PeerAuthentication files (--policy, reloaded when they change), enforced by the destination
# ztunnel: 401 per CONNECT on 15008, a reset on 15006.
#
#   n1a 198.18.1.11 client-ns/client (HBONE) --+                 +-- n2a 198.18.2.11 srv/server
#   n1b 198.18.1.12 bad-ns/other     (HBONE) --+ n1 === wire0 == n2 +-- n2b 198.18.2.12 legacy (TCP)
#   n1a also serves (srv/server labels): n2b -> n1a:7777 is plaintext, through n1's 15006.
#
# Checks: allow by principal (n1b refused, 401 in n1's log, DENY series on n2), a workload's
# labels changing under a selector policy (decided through the rebuilt policy index), deny by
# namespace, ipBlocks + ports, a deny applied while a connection is open closes it, dry-run only
# logs, an L7-attribute policy denies, plaintext is reset by STRICT, a broken file keeps the
# previous policies.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh

m_init 2 2
config() { # config N2A_APP: the workloads, n2a labelled app=N2A_APP
	{
		echo "workloads:"
		m_workload -4 n1a srv client HBONE "labels: {app: server}"
		m_workload -4 n1b bad-ns other HBONE "labels: {app: other}"
		m_workload -4 n2a srv server HBONE "labels: {app: $1}"
		m_workload -4 n2b legacy legacy TCP "labels: {app: legacy}"
	} | m_config_write
}
config server
# n1a's identity is srv/client: a principal distinct from n2a's own.
m_ca_init

# --no-fastpath: this test checks ztunnel's own verdicts (401, resets, logs); the kernel drops
# of the same policies are ztunnel-fastpath.sh's subject.
for n in n1 n2; do
	m_node_start $n --ca-dir "$M_CA" --policy "$M_POL" --no-fastpath --poll-ms 100
done
m_echo_serve n1a n2a
m_ztunnel_wait n1 n2
sleep 0.3

send() { # send POD DST_POD PORT: prints what the client saw
	h_exec "$1" "$ECHO" send "$(h_ip4 "$2")" "$3" --data "hi-$1" --timeout 3 2>&1 | tr '\n' ' '
}
HDR='apiVersion: security.istio.io/v1
kind: AuthorizationPolicy'
DENY_BAD="$HDR
metadata: {name: deny-bad, namespace: srv}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: [bad-ns]}}]"

out=$(send n1a n2a 7777)
t_like "$out" "hi-n1a" "no policy: n1a -> n2a allowed"

# 1. allow by principal
m_policy_set "$HDR
metadata: {name: allow-client, namespace: srv}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/srv/sa/client]}}]"
t_like "$(send n1a n2a 7777)" "hi-n1a" "allow-by-principal: srv/client allowed"
out=$(send n1b n2a 7777)
t_ok "$(! echo "$out" | grep -q hi-n1b; echo $?)" "allow-by-principal: bad-ns/other refused ($out)"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=access msg=close dir=inbound via=hbone src.addr=198\.18\.1\.12:[0-9]+ .*outcome=denied reason=\"denied by an authorization policy: 401 no allow policy matched \(1 apply: srv/allow-client\)" "n2 access log: 401, names the policy"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone src.addr=198\.18\.1\.12:[0-9]+ .*outcome=hbone_refused reason=\"[^\"]*status 401" "n1 (client side) logs the 401"
m2=$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics)
t_like "$m2" 'istio_tcp_connections_closed_total\{reporter="destination",source_workload="n1b",.*connection_security_policy="mutual_tls",request_protocol="tcp",response_flags="DENY"\} [1-9]' "n2 metrics: closed with response_flags=DENY"
# plaintext to a selected workload: no identity, so the allow policy refuses it with a reset
out=$(send n2b n1a 7777)
t_like "$out" "reset|Connection reset|failed" "plaintext n2b -> n1a:7777 reset by 15006 ($out)"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=inbound_plain via=tcp src.addr=198\.18\.2\.12:[0-9]+ .*outcome=denied" "n1 access log: inbound_plain denied"

# 1b. a workload's labels change: the policies its new labels select are the ones that apply,
# and back again; ztunnel's policy index follows the new config (its decisions stay indexed)
indexed() { # indexed NODE: zmesh_authz_decisions_total{path="indexed"} on NODE
	h_exec "$1" curl -s -m 2 http://127.0.0.1:15020/metrics |
		sed -n 's/^zmesh_authz_decisions_total{path="indexed"} \([0-9]*\)$/\1/p'
}
i0=$(indexed n2)
config other
sleep 1.5
t_like "$(send n1b n2a 7777)" "hi-n1b" "labels changed to app=other: allow-client no longer applies, n1b allowed"
config server
sleep 1.5
out=$(send n1b n2a 7777)
t_ok "$(! echo "$out" | grep -q hi-n1b; echo $?)" "labels back to app=server: n1b refused again ($out)"
t_like "$(send n1a n2a 7777)" "hi-n1a" "labels back to app=server: srv/client still allowed"
i1=$(indexed n2)
[ "$((${i1:-0} - ${i0:-0}))" -ge 3 ]
t_ok $? "n2 decided all three through the rebuilt policy index (indexed decisions ${i0:-none} -> ${i1:-none})"

# 2. deny by namespace
m_policy_set "$DENY_BAD"
t_like "$(send n1a n2a 7777)" "hi-n1a" "deny-by-namespace: srv allowed"
t_ok "$(! send n1b n2a 7777 | grep -q hi-n1b; echo $?)" "deny-by-namespace: bad-ns refused"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "outcome=denied reason=\"denied by an authorization policy: 401 denied by AuthorizationPolicy srv/deny-bad" "n2 names srv/deny-bad"

# 3. ipBlocks and ports
m_policy_set "$HDR
metadata: {name: deny-ip-port, namespace: srv}
spec:
  action: DENY
  rules:
  - from: [{source: {ipBlocks: [\"$(h_ip4 n1a)/32\"]}}]
    to: [{operation: {ports: [\"7778\"]}}]"
t_like "$(send n1a n2a 7777)" "hi-n1a" "ipBlocks+ports: n1a to 7777 allowed"
t_ok "$(! send n1a n2a 7778 | grep -q hi-n1a; echo $?)" "ipBlocks+ports: n1a to 7778 refused"
t_like "$(send n1b n2a 7778)" "hi-n1b" "ipBlocks+ports: n1b to 7778 allowed"

# 4. a policy applied while a connection is open closes it
m_policy_set ""
h_exec n1b python3 -c '
import socket, sys, time
s = socket.create_connection(("'"$(h_ip4 n2a)"'", 7778), timeout=20)
s.sendall(b"x"); s.recv(1); t = time.time()
print("open", flush=True)
try:
    r = s.recv(1)
    print("closed eof after %.1fs" % (time.time() - t))
except Exception as e:
    print("closed %s after %.1fs" % (type(e).__name__, time.time() - t))
' >"$H_STATE/live.out" 2>&1 &
live=$!
for i in $(seq 30); do grep -q open "$H_STATE/live.out" && break; sleep 0.1; done
t_like "$(cat "$H_STATE/live.out")" "open" "live connection n1b -> n2a:7778 established"
m_policy_set "$DENY_BAD"
sleep 1
wait "$live"
t_like "$(cat "$H_STATE/live.out")" "closed" "the policy update closed the live connection ($(tail -1 "$H_STATE/live.out"))"
t_like "$(cat "$H_STATE/zt-n2.log")" "outcome=denied reason=\"denied by an authorization policy: policy changed: denied by AuthorizationPolicy srv/deny-bad" "n2 logs the re-check close"

# 5. dry-run only logs
m_policy_set "$HDR
metadata: {name: dry, namespace: srv, annotations: {istio.io/dry-run: \"true\"}}
spec: {action: DENY, rules: [{}]}"
t_like "$(send n1a n2a 7777)" "hi-n1a" "dry-run DENY: traffic still flows"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=authz msg=dry-run .*dst.workload=srv/n2a enforced=allow reason=\".*with dry-run policies: deny \(denied by AuthorizationPolicy srv/dry\)" "dry-run verdict logged"

# 6. L7 attributes without a waypoint deny
m_policy_set "$HDR
metadata: {name: l7, namespace: srv}
spec:
  selector: {matchLabels: {app: server}}
  rules:
  - to: [{operation: {methods: [GET]}}]"
t_ok "$(! send n1a n2a 7777 | grep -q hi-n1a; echo $?)" "L7-attribute policy denies"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n2.log")" "uses the L7 attribute to.operation.methods but workload srv/n2a has no waypoint" "reason names the L7 attribute"

# 7. STRICT resets plaintext, mTLS still flows; a broken file keeps it in force
m_policy_set "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: srv}
spec: {mtls: {mode: STRICT}}"
out=$(send n2b n1a 7777)
t_ok "$(! echo "$out" | grep -q hi-n2b; echo $?)" "STRICT: plaintext n2b -> n1a reset"
t_like "$(send n2a n1a 7777)" "hi-n2a" "STRICT: mTLS n2a -> n1a allowed"
m_policy_set "kind: AuthorizationPolicy
this is: [not valid"
t_like "$(cat "$H_STATE/zt-n1.log")" "reloading policy files failed, keeping the previous policies" "broken file: logged, previous kept"
t_ok "$(! send n2b n1a 7777 | grep -q hi-n2b; echo $?)" "broken file: STRICT still enforced"
t_done
