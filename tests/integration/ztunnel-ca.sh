#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel with certificates from the CA service: zmesh-ca runs in node n1's namespace on
# 198.18.0.1:15012 and both ztunnels use --ca-addr (20 s workload certificates, requested
# through the CSR's validity). Cross-node HBONE traffic n1a <-> n2a uses the CA's certificates
# (serials from `zmeshctl cert list` are the ones a TLS client sees on 15008).
#
#   n1a 198.18.1.11 (HBONE, srv/client) -- n1 [zmesh-ca] ==wire0== n2 -- n2a 198.18.2.11 (HBONE)
#                                                                   \-- n2b 198.18.2.12 (plain)
#
# Checks: cert list (text and -j); rotation during a 24 s transfer (no reset, new serial on
# new connections); CA down: cached certificates keep serving, state fetch-failed, recovery
# with new serials when the CA returns; root rotation during traffic (bundle old+new reloaded
# without restart, node certificate and CA switched, then the old root removed) with no
# connection refused; PeerAuthentication STRICT / PERMISSIVE / port-level override as Istio
# YAML (plaintext from n2b refused or accepted, mTLS always accepted).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
CA=$BUILD/bin/zmesh-ca
m_need "$CA" iperf3 openssl python3

m_init 2 2
TD=cluster.local
CA_ADDR=198.18.0.1:15012
{
	echo "workloads:"
	m_workload -4 n1a srv client HBONE "labels: {app: server}"
	m_workload -4 n2a srv server HBONE "labels: {app: server}"
	m_workload -4 n2b legacy legacy TCP "labels: {app: legacy}"
} | m_config_write
ID_N1A=spiffe://$TD/ns/srv/sa/client
ID_N2A=spiffe://$TD/ns/srv/sa/server

m_ca_init "$H_STATE/ca1" --trust-domain $TD
m_ca_init "$H_STATE/ca2" --trust-domain $TD
for n in n1 n2; do
	"$CA" issue-node --dir "$H_STATE/ca1" --out "$H_STATE/$n" --node $n >/dev/null ||
		t_fatal "issue-node $n failed"
done

CA_PID=
ca_start() { # ca_start CADIR LOG
	h_bg n1 "$CA" --dir "$1" --config "$M_CFG" --listen $CA_ADDR --max-ttl 86400 2>>"$2"
	CA_PID=$H_LAST_PID
	h_wait_port n1 15012 || t_fatal "zmesh-ca did not start: $(cat "$2")"
}
ca_start "$H_STATE/ca1" "$H_STATE/ca1.log"

export ZM_CERT_LIFETIME=20
for n in n1 n2; do
	m_node_start $n --ca-addr $CA_ADDR --ca-dir "$H_STATE/$n" --policy "$M_POL" --poll-ms 200
done
unset ZM_CERT_LIFETIME
m_echo_serve n1a n2a
h_bg n2a iperf3 -s -p 5201 >/dev/null
m_ztunnel_wait n1 n2
h_wait_port n2a 5201 || t_fatal "iperf3 server did not start"
sleep 0.5

send() { # send POD DST_POD PORT: prints what the client saw
	h_exec "$1" "$ECHO" send "$(h_ip4 "$2")" "$3" --data "hi-$1" --timeout 3 2>&1 | tr '\n' ' '
}
# cert_field NODE IDENTITY FIELD: one field of `zmeshctl cert list -j` on NODE
cert_field() {
	"$ZCTL" --netns "$(h_ns "$1")" cert list -j 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["identity"] == sys.argv[1]:
        print(c.get(sys.argv[2], ""))' "$2" "$3"
}
# served_serial: the serial of the certificate n2's ztunnel presents for n2a on 15008
served_serial() {
	h_exec n1 openssl s_client -connect "$(h_ip4 n2a):15008" -alpn h2 </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//' | tr 'A-F' 'a-f' |
		sed 's/^0*//'
}
norm() { echo "$1" | tr 'A-F' 'a-f' | sed 's/^0*//'; }

# 1. Certificates from the CA, listed by zmeshctl.
t_like "$(send n1a n2a 7777)" "hi-n1a" "n1a -> n2a through HBONE with CA-issued certificates"
S1_N2A=$(cert_field n2 $ID_N2A serial)
S1_N1A=$(cert_field n1 $ID_N1A serial)
t_like "$S1_N2A" '^[0-9a-f]{16,}$' "cert list -j on n2 shows n2a's serial ($S1_N2A)"
t_like "$S1_N1A" '^[0-9a-f]{16,}$' "cert list -j on n1 shows n1a's serial ($S1_N1A)"
t_like "$(grep -i "issued.*identity=$ID_N2A" "$H_STATE/ca1.log")" "." "zmesh-ca logged n2a's issuance"
t_is "$(served_serial)" "$(norm "$S1_N2A")" "n2's 15008 presents the listed serial for n2a"
t_is "$(cert_field n2 $ID_N2A state)" valid "state valid"
txt=$("$ZCTL" --netns "$(h_ns n2)" cert list 2>&1)
t_like "$txt" "IDENTITY +STATE +SERIAL .*ISSUER" "cert list: table header"
t_like "$txt" "$ID_N2A +(valid|rotating) +$S1_N2A .*zmesh dev CA" "cert list: n2a's row"
t_like "$("$ZCTL" --netns "$(h_ns n2)" cert list --admin 127.0.0.1:1 2>&1)" \
	"cannot reach the ztunnel admin endpoint" "cert list: unreachable admin is a clear error"
grep -q 'PRIVATE KEY' "$H_STATE"/zt-n*.log "$H_STATE/ca1.log" &&
	t_ok 1 "no key material in the logs" || t_ok 0 "no key material in the logs"
t_is "$(stat -c %a "$H_STATE/n1/node-key.pem")" 600 "node key on disk is mode 0600"

# 2. Rotation (20 s lifetime: at 10 s) during a 24 s transfer.
out=$(h_exec n1a iperf3 -c "$(h_ip4 n2a)" -p 5201 -t 24 -b 20M 2>&1)
rc=$?
t_ok $rc "24 s transfer across a rotation completed without reset"
t_like "$out" "iperf Done" "iperf3 finished normally"
S2_N2A=$(cert_field n2 $ID_N2A serial)
t_ok "$([ -n "$S2_N2A" ] && [ "$S2_N2A" != "$S1_N2A" ]; echo $?)" "n2a rotated: $S1_N2A -> $S2_N2A"
t_like "$(cat "$H_STATE/zt-n2.log")" "rotated $ID_N2A" "ztunnel n2 logged the rotation"
S_NOW=$(cert_field n2 $ID_N2A serial)
t_is "$(served_serial)" "$(norm "$S_NOW")" "a new connection is served the new serial"
t_like "$(send n1a n2a 7777)" "hi-n1a" "new connection after rotation"

# 3. CA down: cached certificates keep serving; recovery when it returns.
h_stop "$CA_PID"
S_DOWN=$(cert_field n2 $ID_N2A serial)
failing() { [ "$(cert_field n2 $ID_N2A state)" = fetch-failed ]; }
m_wait_for 15 failing
t_ok $? "CA down: n2a's state becomes fetch-failed at its rotation point"
t_like "$(cert_field n2 $ID_N2A error)" "." "the last error is listed"
t_ok "$(($(cert_field n2 $ID_N2A not_after) > $(date +%s) ? 0 : 1))" "the cached certificate is still valid"
t_like "$(send n1a n2a 7777)" "hi-n1a" "CA down: new connections still served with the cached certificates"
ca_start "$H_STATE/ca1" "$H_STATE/ca1.log"
recovered() {
	local s
	s=$(cert_field n2 $ID_N2A serial)
	[ -n "$s" ] && [ "$s" != "$S_DOWN" ] && [ "$(cert_field n2 $ID_N2A state)" = valid ]
}
m_wait_for 15 recovered
t_ok $? "CA back: n2a fetched a new certificate ($(cert_field n2 $ID_N2A serial))"
t_like "$(send n1a n2a 7777)" "hi-n1a" "traffic after the CA returned"

# 4. Root rotation during traffic.
FAILS=$H_STATE/loop-fails
: >"$FAILS"
(
	while [ ! -e "$H_STATE/loop-stop" ]; do
		o=$(send n1a n2a 7777)
		case "$o" in *hi-n1a*) ;; *) echo "$(date +%T) $o" >>"$FAILS" ;; esac
		sleep 0.2
	done
) &
LOOP=$!
h_bg n1a iperf3 -c "$(h_ip4 n2a)" -p 5201 -t 40 -b 10M --logfile "$H_STATE/iperf-root.log"
IPERF=$H_LAST_PID
sleep 1
bundle() { # bundle FILES...: install the concatenation as both nodes' ca-cert.pem
	for n in n1 n2; do
		cat "$@" >"$H_STATE/$n/ca-cert.pem.tmp" && mv "$H_STATE/$n/ca-cert.pem.tmp" "$H_STATE/$n/ca-cert.pem"
	done
}
bundle "$H_STATE/ca1/ca-cert.pem" "$H_STATE/ca2/ca-cert.pem"
reloaded() { grep -q "reloaded: $1 roots\?" "$H_STATE/zt-n1.log" && grep -q "reloaded: $1 roots\?" "$H_STATE/zt-n2.log"; }
m_wait_for 5 reloaded 2
t_ok $? "bundle old+new reloaded by both ztunnels without restart"
sleep 2
# The CA switches to the new root; nodes get node certificates from it.
h_stop "$CA_PID"
ca_start "$H_STATE/ca2" "$H_STATE/ca2.log"
for n in n1 n2; do
	"$CA" issue-node --dir "$H_STATE/ca2" --out "$H_STATE/$n-new" --node $n >/dev/null ||
		t_fatal "issue-node $n (new root) failed"
	cp -p "$H_STATE/$n-new/node-key.pem" "$H_STATE/$n/node-key.pem.tmp"
	cp -p "$H_STATE/$n-new/node-cert.pem" "$H_STATE/$n/node-cert.pem.tmp"
	mv "$H_STATE/$n/node-key.pem.tmp" "$H_STATE/$n/node-key.pem"
	mv "$H_STATE/$n/node-cert.pem.tmp" "$H_STATE/$n/node-cert.pem"
done
from_ca2() { # both identities hold a certificate the new CA issued
	local a b
	a=$(cert_field n1 $ID_N1A serial)
	b=$(cert_field n2 $ID_N2A serial)
	[ -n "$a" ] && [ -n "$b" ] && grep -qi "serial $a," "$H_STATE/ca2.log" &&
		grep -qi "serial $b," "$H_STATE/ca2.log"
}
m_wait_for 20 from_ca2
t_ok $? "node certificates reloaded: workload certificates now come from the new root"
sleep 2
bundle "$H_STATE/ca2/ca-cert.pem"
m_wait_for 5 reloaded 1
t_ok $? "old root removed from the bundle, reloaded without restart"
sleep 3
t_like "$(send n1a n2a 7777)" "hi-n1a" "new connection with only the new root trusted"
t_run "n2a's served certificate verifies against the new root alone" -- sh -c \
	"ip netns exec $(h_ns n1) openssl s_client -connect $(h_ip4 n2a):15008 -alpn h2 -showcerts </dev/null 2>/dev/null |
	 openssl x509 >$H_STATE/served.pem && openssl verify -CAfile $H_STATE/ca2/ca-cert.pem $H_STATE/served.pem"
touch "$H_STATE/loop-stop"
wait "$LOOP"
t_is "$(wc -l <"$FAILS")" 0 "no connection failed during the root rotation $(head -3 "$FAILS")"
wait "$IPERF"
t_ok $? "a transfer running through the whole root rotation was never reset"
t_like "$(cat "$H_STATE/iperf-root.log")" "iperf Done" "iperf3 (root rotation) finished normally"

# 5. PeerAuthentication, written as Istio users write it.
peer_auth() { # peer_auth NAME NAMESPACE MODE: a PeerAuthentication without a selector
	printf '%s\n' "apiVersion: security.istio.io/v1" "kind: PeerAuthentication" "metadata:" \
		"  name: $1" "  namespace: $2" "spec:" "  mtls:" "    mode: $3"
}
m_policy_set "$(peer_auth default istio-system STRICT)"
t_ok "$(! send n2b n1a 7777 | grep -q hi-n2b; echo $?)" "mesh-wide STRICT: plaintext n2b -> n1a refused"
t_like "$(send n2a n1a 7777)" "hi-n2a" "mesh-wide STRICT: mTLS n2a -> n1a accepted"
m_policy_set "$(peer_auth default istio-system PERMISSIVE)"
t_like "$(send n2b n1a 7777)" "hi-n2b" "mesh-wide PERMISSIVE: plaintext n2b -> n1a accepted"
t_like "$(send n2a n1a 7777)" "hi-n2a" "mesh-wide PERMISSIVE: mTLS n2a -> n1a accepted"
m_policy_set "$(peer_auth default srv STRICT)"
t_ok "$(! send n2b n1a 7777 | grep -q hi-n2b; echo $?)" "namespace STRICT: plaintext to srv refused"
t_like "$(send n2a n1a 7777)" "hi-n2a" "namespace STRICT: mTLS accepted"
m_policy_set "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: server
  namespace: srv
spec:
  selector:
    matchLabels:
      app: server
  mtls:
    mode: STRICT
  portLevelMtls:
    7778:
      mode: PERMISSIVE"
t_ok "$(! send n2b n1a 7777 | grep -q hi-n2b; echo $?)" "workload STRICT: plaintext to 7777 refused"
t_like "$(h_exec n2b "$ECHO" send "$(h_ip4 n1a)" 7778 --data hi-port --timeout 3 2>&1)" "hi-port" \
	"port-level PERMISSIVE: plaintext to 7778 accepted"
m_policy_set ""
t_like "$(send n2b n1a 7777)" "hi-n2b" "no PeerAuthentication: plaintext accepted (PERMISSIVE default)"
t_done
