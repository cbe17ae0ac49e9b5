#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The waypoint with the Kubernetes API as its only source: the stand-in API server
# (tests/tools/kube-apiserver.py) drives two ztunnels (--kube) and a waypoint pod
# (--kubeconfig); pods are made by CNI as in ztunnel-kube.sh. No config file anywhere.
#
#   client-0 (demo, sa client)             reviews-v1-0, reviews-v2-0 (demo, sa reviews,
#   198.18.1.20-99 (host-local)              labels version v1 / v2; httpecho on "http" 7777)
#                                          waypoint-0 (wp, sa waypoint: not in the mesh,
#                                            listens on 15008, its Gateway wp/waypoint)
#   Service demo/reviews 198.18.250.20:9080 (istio.io/use-waypoint: waypoint in wp)
#   Service wp/waypoint  198.18.250.30:15008
#   +----- node n1 -----------------+         +----- node n2 ----------------------+
#   | API server 198.18.0.1:6443    |==wire0==| ztunnel --kube, the reviews pods,  |
#   | ztunnel --kubeconfig, client  |         | the waypoint pod (--kubeconfig)    |
#   +-------------------------------+         +------------------------------------+
#   client-0 --VIP--> ztunnel n1 ==HBONE==> waypoint-0 ==HBONE==> ztunnel n2 --> reviews-*
#
# Checks: the waypoint is not ready while the API server is away and ready after the first
# list; a CRD RBAC forbids (grpcroutes) is named once and the rest served; the labelled
# service routes through the waypoint (its access log) over both versions; a VirtualService
# created through the API routes end-user: jason to v2 and the rest to v1 live; a malformed
# update of it is named by object and field and the previous routes stay; deleting it
# reverts to both versions; an AuthorizationPolicy with targetRefs to the waypoint's Gateway
# denies POST live (403) and its deletion allows again; scaling reviews up and down changes
# where requests go.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/kube.sh
HTTPECHO=$BUILD/tests/tools/zm-httpecho
WP=$BUILD/bin/waypoint
m_need "$HTTPECHO" "$WP"
k_init 2
export ZMESH_KUBE_STALL_MS=4000 ZMESH_KUBE_BACKOFF_MAX_MS=1000 ZMESH_KUBE_BUILD_MS=50
VIP=198.18.250.20
WVIP=198.18.250.30

# 1. The cluster: namespaces, Services, pods, the waypoint's Gateway, a DestinationRule.
k_api_start
k_ns demo '{"istio.io/dataplane-mode":"ambient"}'
k_ns wp
k_put services demo reviews "{\"metadata\":{\"name\":\"reviews\",\"namespace\":\"demo\",
  \"labels\":{\"istio.io/use-waypoint\":\"waypoint\",\"istio.io/use-waypoint-namespace\":\"wp\"}},
  \"spec\":{\"clusterIP\":\"$VIP\",\"clusterIPs\":[\"$VIP\"],\"selector\":{\"app\":\"reviews\"},
  \"ports\":[{\"name\":\"http\",\"port\":9080,\"targetPort\":\"http\"}]}}"
k_put services wp waypoint "{\"metadata\":{\"name\":\"waypoint\",\"namespace\":\"wp\"},
  \"spec\":{\"clusterIP\":\"$WVIP\",\"clusterIPs\":[\"$WVIP\"],\"selector\":{\"app\":\"waypoint\"},
  \"ports\":[{\"name\":\"mesh\",\"port\":15008,\"targetPort\":15008}]}}"
k_put gateways wp waypoint '{"metadata":{"name":"waypoint","namespace":"wp"},
  "spec":{"gatewayClassName":"istio-waypoint","listeners":[{"name":"mesh","port":15008,"protocol":"HBONE"}]}}'
k_put destinationrules demo reviews '{"metadata":{"name":"reviews","namespace":"demo"},
  "spec":{"host":"reviews","subsets":[{"name":"v1","labels":{"version":"v1"}},{"name":"v2","labels":{"version":"v2"}}]}}'
k_pod_new client-0 n1 demo '{"app":"client"}' client
k_pod_new reviews-v1-0 n2 demo '{"app":"reviews","version":"v1"}' reviews
k_pod_new reviews-v2-0 n2 demo '{"app":"reviews","version":"v2"}' reviews
k_pod_new waypoint-0 n2 wp '{"app":"waypoint"}' waypoint

# 2. zmesh: CNI chained, datapaths, CA, ztunnels from the API, the pods.
k_zmesh_up n1 n2
for p in client-0:n1:demo reviews-v1-0:n2:demo reviews-v2-0:n2:demo waypoint-0:n2:wp; do
	IFS=: read -r name node ns <<<"$p"
	out=$(k_pod_run "$name" "$node" "$ns") || t_fatal "CNI ADD of $name on $node failed: $out"
done
for p in reviews-v1-0 reviews-v2-0; do
	c_bg $p "$HTTPECHO" --port 7777 --name $p >/dev/null 2>&1
	m_wait_for 5 c_exec $p ss -Hltn "sport = :7777" | grep -q . 2>/dev/null
done

# 3. The waypoint: not ready without the API server, ready after its first list.
ready() { c_exec waypoint-0 curl -s -m 1 http://127.0.0.1:15021/healthz/ready 2>/dev/null; }
c_exec waypoint-0 ip link set lo up
k_api_stop
c_bg waypoint-0 "$WP" --kubeconfig "$K_DIR/kubeconfig" \
	--identity spiffe://cluster.local/ns/wp/sa/waypoint --ca-dir "$M_CA" 2>>"$H_STATE/wp.log"
WP_PID=$H_LAST_PID
sleep 2
t_ok "$(kill -0 $WP_PID && [ "$(ready)" != ready ]; echo $?)" \
	"the waypoint runs but is not ready while the API server is away"
k_api_start --forbid grpcroutes
m_wait_for 15 test "$(ready)" = ready || true
t_is "$(ready)" ready "ready (15021) once everything is listed"
t_like "$(cat "$H_STATE/wp.log")" "scope=kube msg=\"mesh and L7 resources from the Kubernetes API at https://198.18.0.1:6443" \
	"the waypoint takes its model from the API"
t_like "$(cat "$H_STATE/wp.log")" "grpcroutes: 403 Forbidden: RBAC does not let this service account list and watch it \(see the zmesh-waypoint ClusterRole\)" \
	"a CRD RBAC forbids is named, and the waypoint is ready without it"
t_is "$(grep -c "grpcroutes: 403" "$H_STATE/wp.log")" 1 "once"
dump=$(c_exec waypoint-0 curl -s http://127.0.0.1:15000/config_dump)
t_is "$(jq -r '[.destination_rules, (.workloads > 3), .kubernetes.resources.virtualservices.state] | join(",")' <<<"$dump")" \
	"1,true,watching" "config_dump: the DestinationRule from the API, the cluster's pods, virtualservices watched"

get() { c_exec client-0 curl -s -m 5 "$@"; }
pods_of() { # pods_of N [curl args]: the distinct pods answering N requests to the VIP
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do get "$@" "http://$VIP:9080/r/$i" | grep -o 'reviews-v[0-9]-[0-9]' | head -1; done |
		sort -u | paste -sd,
}

# 4. The labelled service goes through the waypoint.
sleep 0.5
t_is "$(pods_of 16)" "reviews-v1-0,reviews-v2-0" "the VIP balances over both versions"
t_like "$(cat "$H_STATE/wp.log")" "scope=access .*authority=$VIP:9080" "through the waypoint (its access log)"

# 5. A VirtualService through the API changes routing live; a malformed update keeps it.
VS='{"metadata":{"name":"reviews","namespace":"demo"},"spec":{"hosts":["reviews"],"http":[
  {"match":[{"headers":{"end-user":{"exact":"jason"}}}],"route":[{"destination":{"host":"reviews","subset":"v2"}}]},
  {"route":[{"destination":{"host":"reviews","subset":"v1"}}]}]}}'
k_put virtualservices demo reviews "$VS"
routed() { [ "$(pods_of 4)" = reviews-v1-0 ]; }
m_wait_for 5 routed || true
t_is "$(pods_of 10)" "reviews-v1-0" "VirtualService created: requests without end-user all to v1"
t_is "$(pods_of 10 -H 'end-user: jason')" "reviews-v2-0" "and end-user: jason all to v2"
k_patch virtualservices demo reviews '.spec.http[1].route[0].weight = "lots"'
m_wait_for 5 grep -q "VirtualService demo/reviews:1: spec.http\[1\].route\[0\].weight" "$H_STATE/wp.log" || true
t_like "$(cat "$H_STATE/wp.log")" "VirtualService demo/reviews:1: spec.http\[1\].route\[0\].weight: want an integer" \
	"a malformed update is named by object and field"
t_like "$(cat "$H_STATE/wp.log")" "VirtualService demo/reviews: its previous version is kept until it is fixed" \
	"and its previous version kept"
t_is "$(pods_of 10 -H 'end-user: jason'),$(pods_of 10)" "reviews-v2-0,reviews-v1-0" "the previous routes stay"
k_delete virtualservices demo reviews
both() { [ "$(pods_of 8)" = reviews-v1-0,reviews-v2-0 ]; }
m_wait_for 5 both || true
t_is "$(pods_of 16)" "reviews-v1-0,reviews-v2-0" "deleting it reverts to both versions"

# 6. An AuthorizationPolicy bound to the waypoint's Gateway denies live.
AP='{"metadata":{"name":"no-post","namespace":"wp"},"spec":{"targetRefs":[{"kind":"Gateway",
  "group":"gateway.networking.k8s.io","name":"waypoint"}],"action":"DENY",
  "rules":[{"to":[{"operation":{"methods":["POST"]}}]}]}}'
code() { get -o /dev/null -w '%{http_code}' "$@" "http://$VIP:9080/r"; }
k_put authorizationpolicies wp no-post "$AP"
m_wait_for 5 test "$(code -X POST)" = 403 || true
t_is "$(code -X POST),$(code)" "403,200" "AuthorizationPolicy with targetRefs: POST denied (403), GET allowed"
k_delete authorizationpolicies wp no-post
m_wait_for 5 test "$(code -X POST)" = 200 || true
t_is "$(code -X POST)" 200 "deleting it allows POST again"

# 7. Scaling endpoints changes where requests go.
k_pod_new reviews-v1-1 n2 demo '{"app":"reviews","version":"v1"}' reviews
out=$(k_pod_run reviews-v1-1 n2 demo) || echo "# $out"
c_bg reviews-v1-1 "$HTTPECHO" --port 7777 --name reviews-v1-1 >/dev/null 2>&1
m_wait_for 5 c_exec reviews-v1-1 ss -Hltn "sport = :7777" | grep -q . 2>/dev/null
three() { pods_of 12 | grep -q v1-1; }
m_wait_for 10 three || true
t_is "$(pods_of 30)" "reviews-v1-0,reviews-v1-1,reviews-v2-0" "scale up: the new pod gets requests"
k_delete pods demo reviews-v2-0
c_cni DEL n2 reviews-v2-0 demo >/dev/null
gone() { ! pods_of 8 | grep -q v2; }
m_wait_for 10 gone || true
t_is "$(pods_of 16)" "reviews-v1-0,reviews-v1-1" "scale down: the deleted pod gets none"
t_ok "$(kill -0 $WP_PID; echo $?)" "the waypoint still runs"
t_done
