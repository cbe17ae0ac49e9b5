#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel with the Kubernetes API as its only source: a stand-in API server (HTTPS, a bearer
# token, list and watch with resourceVersions, bookmarks and 410 Gone) drives two nodes'
# ztunnels, and pods are made as a kubelet makes them (the Pod object, then its sandbox by
# Debian's ptp + host-local with zmesh-cni chained, then its status). No config file anywhere.
#
#   client-0 (demo, sa client)           web-6f7c9-* (demo, sa web, Deployment "web")
#   ext-0 (other: never in the mesh)     Service demo/web 198.18.250.10:80 -> "http" (7777)
#   198.18.1.20-99 (host-local)          198.18.2.20-99
#   +----- node n1 -----------------+         +----- node n2 ----------------+
#   | API server 198.18.0.1:6443    |==wire0==| ztunnel --kube (in-cluster:  |
#   | ztunnel --kubeconfig          |         |  KUBERNETES_SERVICE_HOST, SA |
#   +-------------------------------+         |  token and CA directory)     |
#                                             +------------------------------+
#
# Checks: ztunnel is ready once everything is listed, with PeerAuthentications forbidden by
# RBAC (a 403 named in the log, the rest served); zmesh-ca --kubeconfig issues a node only
# the identities of the pods running on it; the CNI accepts a Deployment's pod by the
# namespace's label; labelling namespace demo istio.io/dataplane-mode=ambient meshes its pods
# (enrolled; client -> web is HBONE on the wire, no payload in the clear) and removing the
# label unmeshes them (plaintext again); the Service's VIP balances over the Deployment's
# pods and follows scaling up and down; a deleted pod is unenrolled; an AuthorizationPolicy
# created through the API denies live and its deletion allows again; the API server
# restarted with its history compacted (410) is listed again while traffic keeps flowing, and
# a pod it cannot tell about meanwhile is not started;
# garbage in a watch, a silent watch, an expired token (401) and a malformed object are each
# named in the log and survived, and later changes still apply.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/kube.sh
HTTPECHO=$BUILD/tests/tools/zm-httpecho
m_need tcpdump "$HTTPECHO"
k_init 2
export ZMESH_KUBE_STALL_MS=4000 ZMESH_KUBE_BACKOFF_MAX_MS=1000 ZMESH_KUBE_BUILD_MS=50
VIP=198.18.250.10
MARK=ZMESH-KUBE-PLAINTEXT-MARKER-16

# 1. The cluster before zmesh: namespaces, a Service, pods (not yet made by CNI).
k_api_start
k_ns demo
k_ns other
k_put services demo web "{\"metadata\":{\"name\":\"web\",\"namespace\":\"demo\"},\"spec\":{
  \"clusterIP\":\"$VIP\",\"clusterIPs\":[\"$VIP\"],\"selector\":{\"app\":\"web\"},
  \"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":\"http\"}]}}"
k_pod_new client-0 n1 demo '{"app":"client"}' client
k_pod_new ext-0 n1 other '{"app":"ext"}' ext
for p in web-6f7c9-q2x7a web-6f7c9-k8m4b; do
	k_pod_new $p n2 demo '{"app":"web","pod-template-hash":"6f7c9"}' web web-6f7c9
done
k_ctl forbid '{"resource":"peerauthentications"}'

# 2. zmesh: CNI chained, datapaths, CA, ztunnels from the API.
k_zmesh_up n1 n2
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=kube msg=\"workloads from the Kubernetes API at https://198.18.0.1:6443" \
	"n1 takes its model from the API (kubeconfig)"
t_like "$(cat "$H_STATE/zt-n2.log")" "scope=kube msg=\"peerauthentications: 403 Forbidden: RBAC does not let" \
	"a resource RBAC forbids is named, and ztunnel is ready without it"
t_is "$(h_exec n2 curl -s http://127.0.0.1:15000/config_dump | jq -r .kubernetes.resources.pods.state)" "watching" \
	"n2 (in-cluster settings) lists and watches pods"

for p in client-0:n1 ext-0:n1 web-6f7c9-q2x7a:n2 web-6f7c9-k8m4b:n2; do
	out=$(k_pod_run "${p%:*}" "${p#*:}" "$(case ${p%:*} in ext*) echo other ;; *) echo demo ;; esac)")
	t_ok $? "CNI ADD of ${p%:*} on ${p#*:} (generated name, decided by the API's model)" || echo "# $out"
done
C=$(c_ip client-0) W1=$(c_ip web-6f7c9-q2x7a) W2=$(c_ip web-6f7c9-k8m4b) E=$(c_ip ext-0)
for p in web-6f7c9-q2x7a web-6f7c9-k8m4b; do
	c_bg $p "$HTTPECHO" --port 7777 --name $p >/dev/null 2>&1
	c_bg $p "$ECHO" serve --port 7778 --banner >/dev/null 2>&1
done
for p in web-6f7c9-q2x7a web-6f7c9-k8m4b; do
	m_wait_for 5 c_exec $p ss -Hltn "sport = :7778" | grep -q . 2>/dev/null
done

enrolled() { m_zctl "$1" -j workload list | jq -r '[.[].address] | sort | join(",")'; }
wl_proto() { # wl_proto NODE NAME: the protocol of NAME in NODE's model
	h_exec "$1" curl -s http://127.0.0.1:15000/config_dump |
		jq -r --arg n "$2" '.workloads[] | select(.name == $n) | .protocol'
}
capture() { # capture NAME: tcpdump on n2's wire into $H_STATE/NAME.pcap until stop_capture
	h_bg n2 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$H_STATE/$1.pcap" tcp 2>/dev/null
	CAP=$H_LAST_PID
	sleep 1
}
stop_capture() {
	sleep 0.5
	h_stop "$CAP"
	sleep 0.2
}
on_wire() { tcpdump -nn -r "$H_STATE/$1.pcap" "tcp port $2" 2>/dev/null | wc -l; }

# zmesh-ca --kubeconfig: a node gets an identity only while a pod of that account runs on it.
"$BUILD/bin/zmesh-ca" issue-node --dir "$M_CA" --out "$H_STATE/n1-id" --node n1 >/dev/null ||
	t_fatal "zmesh-ca issue-node failed"
h_bg n1 "$BUILD/bin/zmesh-ca" --dir "$M_CA" --kubeconfig "$K_DIR/kubeconfig" --listen 127.0.0.1:15012 \
	2>"$H_STATE/ca.log"
h_wait_port n1 15012 10 || t_fatal "zmesh-ca did not start: $(cat "$H_STATE/ca.log")"
ca_get() { # ca_get SA: ask zmesh-ca for spiffe://cluster.local/ns/demo/sa/SA as node n1
	h_exec n1 /usr/bin/python3 tests/tools/ca_grpc_client.py get --id "spiffe://cluster.local/ns/demo/sa/$1" \
		--addr 127.0.0.1:15012 --roots "$H_STATE/n1-id/ca-cert.pem" --cert "$H_STATE/n1-id/node-cert.pem" \
		--key "$H_STATE/n1-id/node-key.pem" 2>/dev/null
}
t_like "$(ca_get client)" "^OK 2" "zmesh-ca (Kubernetes API) gives n1 the identity of its pod client-0"
t_like "$(ca_get web)" "^ERROR PERMISSION_DENIED" "and refuses n1 the web identity: its pods run on n2"

# 3. Not labelled yet: nothing enrolled, traffic in the clear.
t_is "$(enrolled n1)" "" "before the label nothing is enrolled on n1"
t_is "$(wl_proto n1 client-0)" "TCP" "client-0 is a plain TCP workload in n1's model"
capture plain
out=$(c_exec client-0 "$ECHO" send "$W1" 7778 --data "$MARK" 2>&1 | tr '\n' ' ')
stop_capture
t_like "$out" "^peer=$C:[0-9]+ .*$MARK" "client-0 -> web pod directly"
t_ok "$([ "$(on_wire plain 7778)" -gt 0 ] && grep -aq "$MARK" "$H_STATE/plain.pcap"; echo $?)" \
	"unmeshed: the app port and the payload are on the wire"

# 4. Label the namespace: its pods join the mesh, without a restart.
k_patch namespaces "" demo '.metadata.labels["istio.io/dataplane-mode"] = "ambient"'
m_wait_for 5 test "$(enrolled n1)" = "$C" || true
t_is "$(enrolled n1)" "$C" "labelling namespace demo enrolls client-0 on n1 (not ext-0)"
m_wait_for 5 test "$(enrolled n2)" = "$(printf '%s\n' "$W1" "$W2" | sort | paste -sd,)" || true
t_is "$(enrolled n2)" "$(printf '%s\n' "$W1" "$W2" | sort | paste -sd,)" "and both web pods on n2"
capture mesh
out=$(c_exec client-0 "$ECHO" send "$W1" 7778 --data "$MARK" 2>&1 | tr '\n' ' ')
stop_capture
t_like "$out" "^peer=$C:[0-9]+ .*$MARK" "client-0 -> web pod through zmesh, the server sees client-0"
t_ok "$([ "$(on_wire mesh 15008)" -gt 0 ]; echo $?)" "the wire carries HBONE (15008)"
t_is "$(on_wire mesh 7778)" "0" "the app port never appears on the wire"
t_ok "$(! grep -aq "$MARK" "$H_STATE/mesh.pcap"; echo $?)" "the payload is not on the wire in plaintext"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=outbound via=hbone src.addr=$C:[0-9]+ src.workload=demo/client-0 src.identity=spiffe://cluster.local/ns/demo/sa/client .*dst.identity=spiffe://cluster.local/ns/demo/sa/web" \
	"identities from spec.serviceAccountName on both ends"

# 5. The Service balances over the Deployment's pods and follows scaling.
pods_seen() { # pods_seen N: the pod names answering N requests to the VIP
	local i
	for ((i = 0; i < $1; i++)); do
		c_exec client-0 curl -s -m 5 "http://$VIP/" | grep -o 'web-6f7c9-[a-z0-9]*' | head -1
	done | sort -u | paste -sd,
}
t_is "$(pods_seen 16)" "web-6f7c9-k8m4b,web-6f7c9-q2x7a" "the VIP balances over both web pods"
k_pod_new web-6f7c9-z9p3c n2 demo '{"app":"web","pod-template-hash":"6f7c9"}' web web-6f7c9
out=$(k_pod_run web-6f7c9-z9p3c n2 demo)
t_ok $? "scale up: a third pod made by CNI" || echo "# $out"
W3=$(c_ip web-6f7c9-z9p3c)
c_bg web-6f7c9-z9p3c "$HTTPECHO" --port 7777 --name web-6f7c9-z9p3c >/dev/null 2>&1
m_wait_for 5 c_exec web-6f7c9-z9p3c ss -Hltn "sport = :7777" | grep -q . 2>/dev/null
sees_new() { pods_seen 6 | grep -q z9p3c; }
m_wait_for 10 sees_new || true
t_is "$(pods_seen 24)" "web-6f7c9-k8m4b,web-6f7c9-q2x7a,web-6f7c9-z9p3c" "the new pod is balanced over"
k_delete pods demo web-6f7c9-q2x7a
c_cni DEL n2 web-6f7c9-q2x7a demo >/dev/null
m_wait_for 5 test "$(enrolled n2)" = "$(printf '%s\n' "$W2" "$W3" | sort | paste -sd,)" || true
t_is "$(enrolled n2)" "$(printf '%s\n' "$W2" "$W3" | sort | paste -sd,)" "scale down: the deleted pod is unenrolled"
t_is "$(pods_seen 16)" "web-6f7c9-k8m4b,web-6f7c9-z9p3c" "and no longer balanced over"

# 6. An AuthorizationPolicy through the API denies live; deleting it allows again.
AP='{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny-client","namespace":"demo"},
  "spec":{"selector":{"matchLabels":{"app":"web"}},"action":"DENY",
  "rules":[{"from":[{"source":{"principals":["cluster.local/ns/demo/sa/client"]}}]}]}}'
k_put authorizationpolicies demo deny-client "$AP"
denied() { ! c_exec client-0 curl -s -m 3 "http://$VIP/" | grep -q web-6f7c9; }
allowed() { c_exec client-0 curl -s -m 3 "http://$VIP/" | grep -q web-6f7c9; }
m_wait_for 5 denied || true
t_ok "$(denied; echo $?)" "an AuthorizationPolicy created through the API denies client -> web"
t_like "$(cat "$H_STATE/zt-n2.log")" "demo/deny-client" "the destination names the policy"
k_delete authorizationpolicies demo deny-client
m_wait_for 5 allowed || true
t_like "$(c_exec client-0 curl -s -m 5 "http://$VIP/")" "web-6f7c9" "deleting it allows again"

# 7. The API server restarts with its history compacted: re-listed, no traffic lost.
k_api_stop
lost=0
for i in 1 2 3 4 5 6; do
	c_exec client-0 curl -s -m 5 "http://$VIP/" | grep -q web-6f7c9 || lost=$((lost + 1))
	sleep 0.3
done
# A pod the model does not know yet, while the API cannot be asked: not started (try again).
c_pod n1 ghost-0 >/dev/null 2>&1 </dev/null
out=$(c_cni ADD n1 ghost-0 demo)
t_ok "$([ $? != 0 ] && jq -e '.msg + .details | test("Kubernetes API cannot tell")' <<<"$out" >/dev/null; echo $?)" \
	"an unknown pod's ADD while the API server is away fails (the kubelet retries): never outside its mesh"
k_api_start --restart-gap 1000
c_cni DEL n1 ghost-0 demo >/dev/null
for i in 1 2 3 4 5 6 7 8; do
	c_exec client-0 curl -s -m 5 "http://$VIP/" | grep -q web-6f7c9 || lost=$((lost + 1))
	sleep 0.3
done
m_wait_for 10 grep -q "too old (410 Gone): listing again" "$H_STATE/zt-n2.log" || true
t_like "$(cat "$H_STATE/zt-n2.log")" "pods: resourceVersion [0-9]+ is too old \(410 Gone\): listing again" \
	"after the restart the old resourceVersion gets 410 and ztunnel lists again"
t_is "$lost" "0" "no request was lost while the API server was away and re-listed"
k_put authorizationpolicies demo deny-client "$AP"
m_wait_for 5 denied || true
t_ok "$(denied; echo $?)" "a policy created after the restart applies (the watch goes on)"
k_delete authorizationpolicies demo deny-client

# 8. Bad input: garbage, a silent watch, an expired token, a malformed object.
k_ctl garbage '{"resource":"pods"}'
k_patch pods demo client-0 '.metadata.labels.touch = "1"'
m_wait_for 5 grep -q "watch of pods: not a watch event" "$H_STATE/zt-n1.log" || true
t_like "$(cat "$H_STATE/zt-n1.log")" "watch of pods: not a watch event .*the stream is broken" \
	"garbage in a watch is named and the watch restarted"
k_ctl stall '{"resource":"services"}'
m_wait_for 10 grep -q "services: the watch sent nothing for 4000 ms" "$H_STATE/zt-n1.log" || true
t_like "$(cat "$H_STATE/zt-n1.log")" "services: the watch sent nothing for 4000 ms \(not even a bookmark\)" \
	"a stalled watch is noticed and watched again"
k_ctl unstall '{"resource":"services"}'
k_ctl token '{"token":"token-two"}'
m_wait_for 5 grep -q "401 Unauthorized" "$H_STATE/zt-n2.log" || true
t_like "$(cat "$H_STATE/zt-n2.log")" "401 Unauthorized: the token was refused" "an expired token (401) is said"
echo token-two >"$K_DIR/sa/token.new" && mv "$K_DIR/sa/token.new" "$K_DIR/sa/token"
echo token-two >"$K_DIR/kc-token.new" && mv "$K_DIR/kc-token.new" "$K_DIR/kc-token"
k_put pods demo broken-0 '{"metadata":{"name":"broken-0","namespace":"demo"},"spec":{"nodeName":"n1",
  "serviceAccountName":["x"]},"status":{"podIPs":[{"ip":"198.18.1.300"}]}}'
m_wait_for 10 grep -q "Pod demo/broken-0: status.podIPs\[0\].ip" "$H_STATE/zt-n1.log" || true
t_like "$(cat "$H_STATE/zt-n1.log")" "Pod demo/broken-0: status.podIPs\[0\].ip: \\\\\"198.18.1.300\\\\\" is not an IP address" \
	"a malformed object is named with its field (after the rotated token was read)"
t_like "$(cat "$H_STATE/zt-n1.log")" "Pod demo/broken-0: spec.serviceAccountName: not a string" "each bad field"

# 9. Removing the label unmeshes the namespace.
k_patch namespaces "" demo 'del(.metadata.labels["istio.io/dataplane-mode"])'
m_wait_for 5 test "$(enrolled n1),$(enrolled n2)" = "," || true
t_is "$(enrolled n1),$(enrolled n2)" "," "removing the label unenrolls demo's pods on both nodes"
capture unlabelled
out=$(c_exec client-0 "$ECHO" send "$W2" 7778 --data "$MARK" 2>&1 | tr '\n' ' ')
stop_capture
t_like "$out" "$MARK" "client-0 -> web still works"
t_ok "$([ "$(on_wire unlabelled 7778)" -gt 0 ] && grep -aq "$MARK" "$H_STATE/unlabelled.pcap"; echo $?)" \
	"in the clear again once unmeshed"
t_ok "$(kill -0 "${M_ZT_PID[n1]}" && kill -0 "${M_ZT_PID[n2]}"; echo $?)" "both ztunnels still run"
t_done
