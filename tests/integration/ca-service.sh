#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zmesh-ca against an independent client (tests/tools/ca_grpc_client.py: python3-grpcio and
# python3-protobuf, no zmesh code). Loopback only, no namespaces: zmesh-ca listens on
# 127.0.0.1 with a port the kernel picks; only the PID started here is killed.
#
#   client (python, node cert CN=n1) --mTLS/h2/gRPC--> zmesh-ca 127.0.0.1:<port>
#   config: workload "a" (sa-a) on node n1, workload "b" (sa-b) on node n2
#
# Checks: n1 gets sa-a (leaf + root, SPIFFE SAN only); n1 is refused sa-b (PERMISSION_DENIED);
# every bad input is refused with its status and a log line, and zmesh-ca keeps serving.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
CA=$BUILD/bin/zmesh-ca
CTL=$BUILD/bin/zmeshctl
PY=/usr/bin/python3
CLI=tests/tools/ca_grpc_client.py
[ -x "$CA" ] || t_fatal "$CA not built (run make)"
$PY -c 'import grpc, google.protobuf, h2' 2>/dev/null ||
	t_fatal "python3-grpcio, python3-protobuf and python3-h2 are needed (scripts/install-deps.sh)"
tmp=$(mktemp -d /tmp/zm-ca-svc-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

TD=cluster.local
A=spiffe://$TD/ns/default/sa/sa-a
B=spiffe://$TD/ns/default/sa/sa-b
"$CTL" ca init --dir "$tmp/ca" --trust-domain $TD >/dev/null || t_fatal "zmeshctl ca init failed"
cat >"$tmp/cfg.yaml" <<YAML
workloads:
- {uid: a, name: a, namespace: default, serviceAccount: sa-a, workloadIps: [198.18.1.11], node: n1}
- {uid: b, name: b, namespace: default, serviceAccount: sa-b, workloadIps: [198.18.2.11], node: n2}
- {uid: c, name: c, namespace: default, serviceAccount: sa-c, workloadIps: []}
YAML

t_run "issue-node writes a node certificate" -- "$CA" issue-node --dir "$tmp/ca" --out "$tmp/n1" --node n1
t_is "$(stat -c %a "$tmp/n1/node-key.pem")" 600 "node key is mode 0600"
t_like "$(openssl x509 -in "$tmp/n1/node-cert.pem" -noout -subject -ext subjectAltName | tr -d "\n")" \
	"CN ?= ?n1.*URI:spiffe://$TD/ns/istio-system/sa/ztunnel" "node cert: CN=n1, node account SAN"
"$CTL" ca init --dir "$tmp/other" >/dev/null
"$CA" issue-node --dir "$tmp/other" --out "$tmp/foreign" --node n1 >/dev/null
"$CA" issue-node --dir "$tmp/ca" --out "$tmp/expired" --node n1 --lifetime -60 >/dev/null

"$CA" --dir "$tmp/ca" --config "$tmp/cfg.yaml" --listen 127.0.0.1:0 --max-ttl 86400 \
	2>"$tmp/ca.log" &
pid=$!
for _ in $(seq 50); do grep -q 'listening on' "$tmp/ca.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/ca.log")
[ -n "$port" ] || t_fatal "zmesh-ca did not start: $(cat "$tmp/ca.log")"
grep -q 'BEGIN.*PRIVATE KEY' "$tmp/ca.log" && t_fatal "key material in the log"

cli() { # cli CERTDIR ARGS...: a call as the node whose files are in CERTDIR
	local d=$1
	shift
	$PY $CLI "$@" --addr 127.0.0.1:$port --roots "$tmp/n1/ca-cert.pem" --cert "$d/node-cert.pem" \
		--key "$d/node-key.pem" 2>/dev/null
}
logged() { # logged REGEX: the CA logged a line matching REGEX
	grep -Eq "$1" "$tmp/ca.log"
}

out=$(cli "$tmp/n1" get --id $A --impersonate $A --validity 3600 --out "$tmp/a.pem")
t_like "$out" "^OK 2 .*critical URI:$A\$" "node n1 obtains $A (leaf + root, SPIFFE SAN only)"
t_run "issued leaf verifies against the root" -- openssl verify -CAfile "$tmp/ca/ca-cert.pem" "$tmp/a.pem"
t_like "$(openssl x509 -in "$tmp/a.pem" -noout -subject)" '^subject= ?$' "leaf subject is empty"
t_like "$(openssl x509 -in "$tmp/a.pem" -noout -text)" 'prime256v1|P-256' "leaf key is the CSR's P-256 key"
t_like "$(cli "$tmp/n1" get --id $A)" "^OK 2" "CSR SAN alone (no impersonation) also works"

out=$(cli "$tmp/n1" get --id $B --impersonate $B)
t_like "$out" "^ERROR PERMISSION_DENIED .*no workload with identity $B on node n1" \
	"n1 is refused $B (it runs on n2)"
t_run "refusal logged" -- logged "refused .*node=n1 identity=$B: PERMISSION_DENIED"
t_like "$(cli "$tmp/n1" get --id spiffe://$TD/ns/default/sa/sa-c)" "^OK 2" \
	"a workload placed on no node (a CNI-announced pod) may be issued to n1"
out=$(cli "$tmp/n1" get --id $A --impersonate $B)
t_like "$out" "^ERROR INVALID_ARGUMENT .*differs" "CSR SAN and ImpersonatedIdentity must agree"
out=$(cli "$tmp/n1" get --id spiffe://other.td/ns/default/sa/sa-a)
t_like "$out" "^ERROR PERMISSION_DENIED .*trust domain" "identity outside the trust domain refused"
out=$(cli "$tmp/n1" get --id $A --validity 999999)
t_like "$out" "^ERROR INVALID_ARGUMENT .*exceeds the maximum" "validity above --max-ttl refused"

echo "not a csr" >"$tmp/bad.csr"
t_like "$(cli "$tmp/n1" get --csr "$tmp/bad.csr")" "^ERROR INVALID_ARGUMENT CSR is not a PEM" "malformed CSR"
t_like "$(cli "$tmp/n1" get --id $A --csr-kind twosans)" "^ERROR INVALID_ARGUMENT CSR has 2 SANs" "CSR with two SANs"
t_like "$(cli "$tmp/n1" get --id $A --csr-kind nospiffe)" "^ERROR INVALID_ARGUMENT .*not a SPIFFE" "non-SPIFFE URI SAN"
t_like "$(cli "$tmp/n1" get --id $A --csr-kind dns)" "^ERROR INVALID_ARGUMENT .*not a URI" "DNS SAN"
t_like "$(cli "$tmp/n1" get --id $A --csr-kind rsa1024)" "^ERROR INVALID_ARGUMENT .*RSA-1024" "weak RSA key"
head -c 200000 /dev/urandom | base64 >"$tmp/big.csr"
t_like "$(cli "$tmp/n1" get --csr "$tmp/big.csr")" "^ERROR RESOURCE_EXHAUSTED" "oversized request"

out=$($PY $CLI get --id $A --addr 127.0.0.1:$port --roots "$tmp/n1/ca-cert.pem" 2>/dev/null)
t_like "$out" "^ERROR UNAVAILABLE" "no client certificate: TLS refuses"
t_run "logged: no certificate" -- logged "TLS handshake failed: peer did not return a certificate"
t_like "$(cli "$tmp/foreign" get --id $A)" "^ERROR UNAVAILABLE" "node certificate from another CA: TLS refuses"
t_run "logged: unknown issuer" -- logged "client certificate refused: unable to get local issuer"
t_like "$(cli "$tmp/expired" get --id $A)" "^ERROR UNAVAILABLE" "expired node certificate: TLS refuses"
t_run "logged: expired" -- logged "client certificate refused: certificate has expired"

for m in compressed:UNIMPLEMENTED truncated:INVALID_ARGUMENT twomsgs:INVALID_ARGUMENT \
	badproto:INVALID_ARGUMENT hugelen:RESOURCE_EXHAUSTED; do
	t_like "$(cli "$tmp/n1" raw --mode "${m%%:*}")" "^STATUS ${m#*:} " "garbage gRPC frame (${m%%:*}): ${m#*:}"
done
t_like "$(cli "$tmp/n1" raw --mode garbage-h2)" "^CLOSED" "garbage instead of HTTP/2: connection closed"
t_run "logged: HTTP/2 protocol error" -- logged "HTTP/2 protocol error"

t_like "$(cli "$tmp/n1" get --id $A)" "^OK 2" "zmesh-ca still serves after all that"
t_run "zmesh-ca still running" -- kill -0 "$pid"
t_ok "$(grep -c 'PRIVATE KEY' "$tmp/ca.log")" "no key material in the log"
kill "$pid" && wait "$pid" 2>/dev/null
pid=

# istiod's form: no client certificate, a Bearer token standing for a node, and the identity
# asked for in the ImpersonatedIdentity metadata.
echo "tok-n1-secret n1" >"$tmp/tokens"
"$CA" --dir "$tmp/ca" --config "$tmp/cfg.yaml" --listen 127.0.0.1:0 --tokens "$tmp/tokens" \
	2>"$tmp/ca.log" &
pid=$!
for _ in $(seq 50); do grep -q 'listening on' "$tmp/ca.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/ca.log")
[ -n "$port" ] || t_fatal "zmesh-ca --tokens did not start: $(cat "$tmp/ca.log")"
tcli() { $PY $CLI get --addr 127.0.0.1:$port --roots "$tmp/n1/ca-cert.pem" "$@" 2>/dev/null; }
t_like "$(tcli --id $A --impersonate $A --token tok-n1-secret)" "^OK 2 .*URI:$A\$" \
	"Bearer token of n1 + ImpersonatedIdentity: $A issued without a client certificate"
t_like "$(tcli --id $B --impersonate $B --token tok-n1-secret)" "^ERROR PERMISSION_DENIED" \
	"the token's node is authorized like its certificate would be ($B is on n2)"
t_like "$(tcli --id $A --impersonate $A --token wrong)" "^ERROR UNAUTHENTICATED" "unknown token refused"
t_like "$(tcli --id $A --impersonate $A)" "^ERROR UNAUTHENTICATED" "neither certificate nor token refused"
t_like "$(cli "$tmp/n1" get --id $A)" "^OK 2" "a node certificate still works with --tokens"
t_ok "$(grep -c 'tok-n1-secret' "$tmp/ca.log")" "the token is never logged"
t_done
