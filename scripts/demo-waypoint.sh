#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The second scene of make demo: bookinfo through a waypoint, narrated. The harness turns
# bookinfo's Deployments and Services (tests/data/samples, our bookinfo-style application in
# Istio's formats; Istio's own samples with ISTIO_SAMPLES=DIR) into pods on three nodes
# (each runs a small echo server answering with its pod name), writes the matching zmesh
# config, and starts ztunnel on every node and a waypoint, attached the Istio way: its
# Gateway (class istio-waypoint) and the namespace labelled istio.io/use-waypoint. Then
# bookinfo's VirtualService and DestinationRule files steer traffic to reviews, an L7
# AuthorizationPolicy refuses writes, and the waypoint's access log and Istio metrics show
# what happened. Everything is removed on exit. Takes ~10 s.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/lib/k8s.sh
NET=$K8S_SAMPLES/bookinfo/networking
k8s_need_samples bookinfo/platform/kube/bookinfo.yaml sleep/sleep.yaml

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
tally() { sort | uniq -c | sort -k2 | awk '{printf "    %-14s %s\n", $2, $1}'; }

say "bookinfo through a waypoint ($K8S_SAMPLES): three nodes, its Deployments as pods"
k8s_init 3 2
k8s_apply "$K8S_SAMPLES/bookinfo/platform/kube/bookinfo.yaml" "$K8S_SAMPLES/sleep/sleep.yaml"
GW=tests/data/l7/waypoint-gateway.yaml
echo "the waypoint, as istioctl waypoint apply --enroll-namespace makes it:"
grep -v '^#' "$GW" | sed 's/^/    /'
k8s_apply "$GW"
k8s_waypoint
k8s_routes "$NET/destination-rule-all.yaml" "$NET/virtual-service-reviews-test-v2.yaml"
k8s_start
awk '{printf "    %-22s node %s  labels %s\n", $3, $2, $6}' "$K8S_DIR/pods"
REV=http://$(k8s_vip reviews):9080
echo "services have VIPs; reviews is $REV; every service of the labelled namespace goes through the waypoint"

say "virtual-service-reviews-test-v2.yaml: user jason goes to reviews v2, everybody else to v1"
echo "10 requests from sleep without the header, answered by:"
k8s_pods_of 10 sleep "$REV/reviews/0" | tally
echo "10 requests with 'end-user: jason', answered by:"
k8s_pods_of 10 sleep "$REV/reviews/0" -H 'end-user: jason' | tally

say "virtual-service-reviews-50-v3.yaml, applied live: half to v1, half to v3"
k8s_routes "$NET/destination-rule-all.yaml" "$NET/virtual-service-reviews-50-v3.yaml"
echo "40 requests, answered by:"
k8s_pods_of 40 sleep "$REV/reviews/0" | tally

say "An L7 AuthorizationPolicy on reviews: reads only"
cat >"$K8S_DIR/read-only.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-read-only}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET, HEAD]}}]}]
YAML
sed 's/^/    /' "$K8S_DIR/read-only.yaml"
k8s_routes "$NET/destination-rule-all.yaml" "$NET/virtual-service-reviews-50-v3.yaml" \
	"$K8S_DIR/read-only.yaml"
printf '$ curl %s/reviews/0             -> ' "$REV"
k8s_curl sleep -o /dev/null -w '%{http_code}\n' "$REV/reviews/0"
printf '$ curl -X POST %s/reviews/0     -> ' "$REV"
k8s_curl sleep -X POST -w ' (%{http_code})\n' "$REV/reviews/0"

say "The waypoint's access log (one line per request) and Istio metrics on its :15020"
grep 'scope=access msg=http' "$K8S_DIR/wp.log" | tail -3 |
	sed -E 's/.*(src.principal=[^ ]+).*( method=[^ ]+ path=[^ ]+).*( upstream=[^ ]+ status=[0-9]+ flags=[^ ]+).*( duration_ms=[0-9]+).*/    \1\2\3\4/'
k8s_metrics | grep '^istio_requests_total' |
	sed -E 's/.*destination_workload="([^"]+)".*response_code="([0-9]+)",response_flags="([^"]+)"\} ([0-9]+)/    \1 \2 \3: \4 requests/' |
	sort
say "Done: the bookinfo namespaces and processes are removed on exit"
