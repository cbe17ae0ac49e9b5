#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Two nodes' ztunnels configured only by a control plane speaking istiod's delta ADS
# (tests/tools/xds_cp.py, a python3-grpcio server whose messages come from our own .proto
# files): no config file at all.
#
#   n1a 198.18.1.11 ns/sa-n1a (HBONE) --+                          +-- n2a 198.18.2.11 ns/sa-n2a (HBONE)
#   n1b 198.18.1.12 ns/sa-n1b (HBONE) --+ n1 ==== wire0 ==== n2 ---+-- n2b 198.18.2.12 ns/sa-n2b (HBONE)
#                                        198.18.0.1      198.18.0.2
#   control plane: in n1's namespace on 198.18.0.1:15012 (TLS, istiod.istio-system.svc, signed
#   by the mesh CA); service svc.ns.svc.cluster.local VIP 198.19.0.10:80 -> n2a:7777.
#   certificates: n1 from the dev CA directory; n2 the way istiod's CA is asked, from zmesh-ca
#   --tokens on 198.18.0.1:15013 (Bearer token, no node certificate, ImpersonatedIdentity).
#
# Checks: Bearer token, clusterid and node id reach the control plane; every response ACKed;
# pods enrolled and traffic flowing (direct and through the VIP); a policy pushed live denies
# and closes an open connection; a workload removed is unenrolled; a malformed resource is
# NACKed by name and field while the rest of the push applies; the control plane restarted:
# traffic flows meanwhile, ztunnel reconnects and resubscribes with its versions; a dropped
# stream, a stalled one, an oversized message and garbage each end in a logged reconnect.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh

PY=/usr/bin/python3
CP=tests/tools/xds_cp.py
$PY -c 'import grpc, google.protobuf, yaml' 2>/dev/null ||
	t_fatal "python3-grpcio, python3-protobuf and python3-yaml are needed (scripts/install-deps.sh)"
m_need protoc-c openssl
m_init 2 2
m_ca_init
CPADDR=$(h_node_ip4 n1):15012
CPSOCK=$H_STATE/cp.sock
CPLOG=$H_STATE/cp-requests.jsonl
TOKEN=$H_STATE/istio-token
echo "test-token-$$" >"$TOKEN"

# istiod's serving certificate: DNS SAN istiod.istio-system.svc, signed by the mesh root.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=istiod \
	-keyout "$H_STATE/cp-key.pem" -out "$H_STATE/cp.csr" 2>/dev/null || t_fatal "openssl req"
printf 'subjectAltName=DNS:istiod.istio-system.svc,URI:spiffe://cluster.local/ns/istio-system/sa/istiod\n' >"$H_STATE/cp.ext"
openssl x509 -req -in "$H_STATE/cp.csr" -CA "$M_CA/ca-cert.pem" -CAkey "$M_CA/ca-key.pem" \
	-CAcreateserial -days 1 -extfile "$H_STATE/cp.ext" -out "$H_STATE/cp-cert.pem" 2>/dev/null ||
	t_fatal "openssl x509"

scenario() { # scenario FILE [extra YAML lines for the workloads list...]: the base mesh
	local f=$1 p
	shift
	{
		echo "workloads:"
		for p in n1a n1b n2a n2b; do
			echo "- {uid: Kubernetes//Pod/ns/$p, name: $p, namespace: ns, serviceAccount: sa-$p,"
			echo "   node: $(h_pod_node $p), protocol: HBONE, addresses: [$(h_ip4 $p)]"
			[ $p = n2a ] && echo "   , services: {ns/svc.ns.svc.cluster.local: {80: 7777}}"
			echo "  }"
		done
		printf '%s\n' "$@"
		echo "services:"
		echo "- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [198.19.0.10], ports: {80: 7777}}"
	} >"$f"
}

CP_PID=
cp_start() {
	h_bg n1 "$PY" "$CP" serve --listen "$CPADDR" --cert "$H_STATE/cp-cert.pem" \
		--key "$H_STATE/cp-key.pem" --scenario "$1" --control "$CPSOCK" --log "$CPLOG" \
		2>>"$H_STATE/cp.log" >>"$H_STATE/cp.log"
	CP_PID=$H_LAST_PID
	m_wait_for 20 grep -q "serving on" "$H_STATE/cp.log" || t_fatal "control plane did not start: $(cat "$H_STATE/cp.log")"
}
cp_ctl() { $PY "$CP" ctl "$CPSOCK" "$@"; }
dump() { h_exec "$1" curl -s -m 2 http://127.0.0.1:15000/config_dump; }
nworkloads() { dump "$1" | jq '.workloads | length'; }

zt_start() {
	local node=$1
	shift
	h_bg "$node" env INSTANCE_IP="$(h_node_ip4 "$node")" POD_NAME="ztunnel-$node" \
		POD_NAMESPACE=istio-system ZT_XDS_PING_MS=1000 ZT_XDS_PING_TIMEOUT_MS=3000 \
		ZT_XDS_MAX_MSG=1048576 \
		"$ZT" --xds-address "$CPADDR" --token-file "$TOKEN" --cluster-id Kubernetes \
		--node "$node" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$(h_pin_dir "$node")" \
		--poll-ms 100 "$@" 2>"$H_STATE/zt-$node.log"
	M_ZT_PID[$node]=$H_LAST_PID
}

scenario "$H_STATE/s1.yaml"
cp_start "$H_STATE/s1.yaml"
# zmesh-ca in istiod's form for n2: the token stands for node n2.
{
	echo "workloads:"
	m_workload -4 n2a ns sa-n2a HBONE
	m_workload -4 n2b ns sa-n2b HBONE
} >"$H_STATE/ca-mesh.yaml"
echo "test-token-$$ n2" >"$H_STATE/ca-tokens"
h_bg n1 "$BUILD/bin/zmesh-ca" --dir "$M_CA" --config "$H_STATE/ca-mesh.yaml" \
	--listen "$(h_node_ip4 n1):15013" --tokens "$H_STATE/ca-tokens" 2>"$H_STATE/ca.log"
m_wait_for 20 grep -q 'listening on' "$H_STATE/ca.log" || t_fatal "zmesh-ca did not start: $(cat "$H_STATE/ca.log")"
mkdir -p "$H_STATE/n2ca" && cp "$M_CA/ca-cert.pem" "$H_STATE/n2ca/"
m_datapath_load n1
zt_start n1 --ca-dir "$M_CA"
m_datapath_load n2
zt_start n2 --ca-dir "$H_STATE/n2ca" --ca-addr "$(h_node_ip4 n1):15013"
m_echo_serve n1b n2a n2b
m_ztunnel_wait n1 n2
m_wait_for 20 test "$(nworkloads n1)" = 4 || t_fatal "n1 never got 4 workloads: $(cat "$H_STATE/zt-n1.log")"
m_wait_for 20 test "$(nworkloads n2)" = 4 || t_fatal "n2 never got 4 workloads: $(cat "$H_STATE/zt-n2.log")"
t_ok 0 "both ztunnels configured from xDS alone (4 workloads, 1 service each)"

first=$(head -1 "$CPLOG")
t_like "$first" "\"authorization\": \"Bearer test-token-$$\"" "the control plane saw authorization: Bearer <token>"
t_like "$first" '"clusterid": "Kubernetes"' "... and the clusterid header"
t_like "$(grep -m1 '"node": "ztunnel~198.18.0.1' "$CPLOG")" 'ztunnel~198\.18\.0\.1~ztunnel-n1\.istio-system~istio-system\.svc\.cluster\.local' \
	"node id ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local"
acks() { grep -c '"error": null, "initial": {}, "node": null, "nonce": "n' "$CPLOG"; }
t_ok "$([ "$(acks)" -ge 4 ]; echo $?)" "every initial response ACKed by nonce ($(acks) ACKs)"
t_like "$(dump n1 | jq -c '.xds | {connected, a: .types["type.googleapis.com/istio.workload.Address"].resources}')" \
	'"connected":true,"a":5' "config_dump: xDS connected, 5 Address resources held"
t_like "$(dump n1 | jq -c '.workloads[0] | keys')" '"serviceAccount".*"trustDomain".*"workloadIps"' \
	"config_dump workloads carry the reference's field names"

send() { h_exec "$1" "$ECHO" send "$2" "$3" --data "hi-$1" --timeout 3 2>&1 | tr '\n' ' '; }
# n2 fetches its pods' certificates from zmesh-ca once it knows them.
m_wait_for 30 grep -q "fetched spiffe://cluster.local/ns/ns/sa/sa-n2a" "$H_STATE/zt-n2.log" ||
	t_fatal "n2 got no certificate for n2a: $(cat "$H_STATE/zt-n2.log")"
t_like "$(send n1a "$(h_ip4 n2a)" 7777)" "hi-n1a" "n1a -> n2a: traffic flows"
t_like "$(send n1a 198.19.0.10 80)" "hi-n1a" "n1a -> service VIP 198.19.0.10:80 reaches n2a:7777"
sleep 0.3
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone .*dst.addr=198\.18\.2\.11:7777" "n1 tunnelled it over HBONE"
t_like "$(cat "$H_STATE/zt-n2.log")" "certificates from the CA at .*15013 \(Bearer token" "n2 asks its CA with the Bearer token, no node certificate"
t_like "$(cat "$H_STATE/ca.log")" "issued from 198\.18\.0\.2:[0-9]+ caller=spiffe://cluster\.local/ns/istio-system/sa/ztunnel node=n2 identity=spiffe://cluster\.local/ns/ns/sa/sa-n2a" \
	"zmesh-ca issued n2a's certificate on n2's token (ImpersonatedIdentity)"
t_ok "$(grep -c "test-token-$$" "$H_STATE/ca.log" "$H_STATE/zt-n1.log" "$H_STATE/zt-n2.log" | grep -vc ':0$')" "the token is logged nowhere"
wl=$(m_zctl n1 -j workload list)
t_like "$wl" "$(h_ip4 n1a)" "n1a enrolled on n1 (zmeshctl workload list)"
t_like "$wl" "$(h_ip4 n1b)" "n1b enrolled on n1"

# A policy pushed live: deny ns/sa-n1b; its open connection to n2b is closed.
h_exec n1b "$PY" -c '
import socket, time
s = socket.create_connection(("'"$(h_ip4 n2b)"'", 7778), timeout=30)
s.sendall(b"x"); s.recv(1)
print("open", flush=True)
try:
    r = s.recv(1)
    print("closed eof")
except Exception as e:
    print("closed %s" % type(e).__name__)
' >"$H_STATE/live.out" 2>&1 &
live=$!
m_wait_for 10 grep -qs open "$H_STATE/live.out"
t_like "$(cat "$H_STATE/live.out")" "open" "live connection n1b -> n2b:7778 established"
scenario "$H_STATE/s2.yaml"
cat >>"$H_STATE/s2.yaml" <<'YAML'
policies:
- {name: deny-n1b, namespace: ns, scope: NAMESPACE, action: DENY,
   rules: [[{principals: [cluster.local/ns/ns/sa/sa-n1b]}]]}
YAML
t_is "$(cp_ctl push "$H_STATE/s2.yaml")" ok "control plane pushes the DENY policy"
wait "$live"
t_like "$(cat "$H_STATE/live.out")" "closed" "the pushed policy closed the live connection"
t_like "$(cat "$H_STATE/zt-n2.log")" "policy changed: denied by .*ns/deny-n1b" "n2 logs the re-check close naming the policy"
out=$(send n1b "$(h_ip4 n2b)" 7777)
t_ok "$(! echo "$out" | grep -q hi-n1b; echo $?)" "new connections from n1b are denied"
t_like "$(send n1a "$(h_ip4 n2b)" 7777)" "hi-n1a" "n1a is still allowed"

# A workload removed is unenrolled.
scenario "$H_STATE/s3.yaml"
sed -i '/n1b/,/^  }/d' "$H_STATE/s3.yaml"
t_is "$(cp_ctl push "$H_STATE/s3.yaml")" ok "control plane removes n1b (and the policy)"
m_wait_for 10 sh -c "! '$ZCTL' --netns /var/run/netns/$(h_ns n1) --pin-dir $(h_pin_dir n1) -j workload list | grep -q '$(h_ip4 n1b)'"
t_ok "$(m_zctl n1 -j workload list | grep -c "$(h_ip4 n1b)")" "n1b unenrolled from n1's datapath"
t_like "$(dump n1 | jq -c '[.workloads[].name]')" '^\["n1a","n2a","n2b"\]$' "n1 holds n1a, n2a, n2b"

# A malformed resource: NACKed by name and field, the rest of the push applied.
scenario "$H_STATE/s4.yaml" \
	'- {uid: bad, name: bad, namespace: ns, node: n2, protocol: HBONE, rawAddress: "c61203"}' \
	'- {uid: Kubernetes//Pod/ns/extra, name: extra, namespace: ns, serviceAccount: sa-n2b, node: n2, addresses: [198.18.2.99]}'
sed -i '/n1b/,/^  }/d' "$H_STATE/s4.yaml"
t_is "$(cp_ctl push "$H_STATE/s4.yaml")" ok "control plane pushes a malformed workload with a good one"
m_wait_for 10 grep -q '"error": "bad: addresses\[0\]: address of 3 bytes' "$CPLOG"
t_like "$(grep '"error": "bad' "$CPLOG" | tail -1)" '"error": "bad: addresses\[0\]: address of 3 bytes \(want 4 or 16\)"' \
	"NACK error_detail names the resource and field"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=xds msg=\"NACK: bad: addresses\\[0\\]" "ztunnel logs the NACK"
m_wait_for 10 sh -c "curl_out=\$(ip netns exec $(h_ns n1) curl -s -m 2 http://127.0.0.1:15000/config_dump); echo \"\$curl_out\" | grep -q '\"name\":\"extra\"\\|\"name\": \"extra\"'"
t_like "$(dump n1 | jq -c '[.workloads[].name]')" '"extra"' "the good workload of the same push applied"
t_like "$(dump n1 | jq -c '.xds.types["type.googleapis.com/istio.workload.Address"].nacks')" '^[1-9]' "config_dump counts the NACK"

# The control plane goes away: traffic keeps flowing on the last good config; it comes back
# and ztunnel resubscribes with the versions it holds.
kill "$CP_PID"
wait "$CP_PID" 2>/dev/null
m_wait_for 20 sh -c "ip netns exec $(h_ns n1) curl -s -m 2 http://127.0.0.1:15000/config_dump | jq -e '.xds.connected == false' >/dev/null"
t_like "$(dump n1 | jq -c '.xds.connected')" false "config_dump: disconnected"
t_like "$(send n1a "$(h_ip4 n2a)" 7777)" "hi-n1a" "control plane down: n1a -> n2a still flows"
t_like "$(send n1a 198.19.0.10 80)" "hi-n1a" "control plane down: the VIP still works"
streams_before=$(grep -c '"initial": {"' "$CPLOG")
cp_start "$H_STATE/s4.yaml"
m_wait_for 30 sh -c "[ \$(grep -c '\"initial\": {\"' '$CPLOG') -ge $((streams_before + 4)) ]"
t_like "$(grep '"initial": {"' "$CPLOG" | tail -4 | grep 'istio.workload.Address' | tail -1)" \
	'"Kubernetes//Pod/ns/n1a": "[0-9a-f]+"' "reconnected: initial_resource_versions name what ztunnel holds"
m_wait_for 20 sh -c "ip netns exec $(h_ns n1) curl -s -m 2 http://127.0.0.1:15000/config_dump | jq -e '.xds.connected' >/dev/null"
t_like "$(dump n1 | jq -c '.xds.connected')" true "config_dump: connected again"
t_like "$(send n1a "$(h_ip4 n2a)" 7777)" "hi-n1a" "after the restart: traffic flows"

# Streams that end badly: each is logged and followed by a reconnect.
reconnects() { grep -c 'stream to .* established' "$H_STATE/zt-n1.log"; }
r0=$(reconnects)
t_is "$(cp_ctl drop)" ok "control plane drops the streams"
m_wait_for 20 sh -c "[ \$(grep -c 'stream to .* established' '$H_STATE/zt-n1.log') -gt $r0 ]"
t_like "$(cat "$H_STATE/zt-n1.log")" "stream ended by the server: UNAVAILABLE: dropped by the test; keeping the last config" "dropped stream: logged, reconnected"
r0=$(reconnects)
t_is "$(cp_ctl oversize 2000000)" ok "control plane sends a 2 MB message (limit 1 MiB)"
m_wait_for 20 sh -c "[ \$(grep -c 'stream to .* established' '$H_STATE/zt-n1.log') -gt $r0 ]"
t_like "$(cat "$H_STATE/zt-n1.log")" "over the limit of 1048576 bytes" "oversized message: refused, logged, reconnected"
r0=$(reconnects)
t_is "$(cp_ctl garbage)" ok "control plane sends garbage"
m_wait_for 20 sh -c "[ \$(grep -c 'stream to .* established' '$H_STATE/zt-n1.log') -gt $r0 ]"
t_like "$(cat "$H_STATE/zt-n1.log")" "DeltaDiscoveryResponse that does not decode" "garbage: logged, reconnected"
kill -STOP "$CP_PID"
m_wait_for 30 grep -q "the server stalled" "$H_STATE/zt-n1.log"
kill -CONT "$CP_PID"
t_like "$(cat "$H_STATE/zt-n1.log")" "the server stalled: no answer to a PING" "stalled stream: noticed by PING, logged"
t_like "$(send n1a "$(h_ip4 n2a)" 7777)" "hi-n1a" "through all of it: traffic flows"
t_run "ztunnel n1 still running" -- kill -0 "${M_ZT_PID[n1]}"
t_run "ztunnel n2 still running" -- kill -0 "${M_ZT_PID[n2]}"

# A ztunnel (re)started while istiod does not answer holds an empty model: the pods its
# predecessor enrolled must stay captured until the first answer, not be unenrolled as stale.
kill -STOP "$CP_PID"
kill -TERM "${M_ZT_PID[n1]}"
m_wait_for 15 bash -c "! kill -0 ${M_ZT_PID[n1]} 2>/dev/null" || t_fatal "ztunnel n1 did not stop"
zt_start n1 --ca-dir "$M_CA"
m_wait_for 10 h_exec n1 curl -s -m 1 -o /dev/null http://127.0.0.1:15000/config_dump
sleep 1.5 # several enrollment polls (--poll-ms 100)
t_like "$(m_zctl n1 -j workload list)" "$(h_ip4 n1a)" \
	"istiod silent at start: n1a stays enrolled (no stale removal from an empty model)"
t_is "$(h_exec n1 curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" 503 \
	"and ztunnel is not ready"
kill -CONT "$CP_PID"
m_ztunnel_wait n1
t_like "$(send n1a "$(h_ip4 n2a)" 7777)" "hi-n1a" "istiod answers: traffic flows through the new ztunnel"
t_done
