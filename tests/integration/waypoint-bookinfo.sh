#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# waypoint with the bookinfo application (tests/data/samples, or Istio's own sample as written
# with ISTIO_SAMPLES): tests/lib/k8s.sh turns bookinfo.yaml, bookinfo-versions.yaml and
# sleep.yaml into harness pods (each a zm-httpecho answering with its pod name and labels)
# spread over two nodes, with a waypoint on a third node for every
# service (same-node pod -> HBONE pod does not work in the datapath yet), and the
# bookinfo networking files are applied to it unchanged: all traffic to v1, header routing
# for end-user jason, weighted splits 50/50 and 90/10 (checked within stated binomial
# tolerances), ratings fault delay (7 s) and abort (500).
# corpus: istio-samples (make test-samples runs it on Istio's bookinfo too)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
NET=$S/bookinfo/networking
k8s_need_samples bookinfo/platform/kube/bookinfo.yaml
command -v curl >/dev/null || t_fatal "curl not installed"

k8s_init 3 2
k8s_apply "$S/bookinfo/platform/kube/bookinfo.yaml" "$S/bookinfo/platform/kube/bookinfo-versions.yaml" \
	"$S/sleep/sleep.yaml"
k8s_waypoint
k8s_routes "$NET/virtual-service-all-v1.yaml" "$NET/destination-rule-all.yaml"
k8s_start
t_is "$(wc -l <"$K8S_DIR/pods")" 7 "k8s_apply made 7 pods (6 bookinfo deployments + sleep)"
t_like "$(cat "$K8S_DIR/mesh.yaml")" "name: reviews-v2-0, namespace: default, serviceAccount: bookinfo-reviews, .*labels: \{app: reviews, version: v2\}" "mesh config: workload with serviceAccount and labels"
REV=http://reviews:9080
REV=http://$(k8s_vip reviews):9080
RAT=http://$(k8s_vip ratings):9080
t_like "$REV" "^http://198\.18\.250\.[0-9]+:9080$" "reviews has a VIP in 198.18.250.0/24 ($REV)"

out=$(k8s_curl sleep "$REV/reviews/0")
t_like "$out" "^pod=reviews-v1-0" "all-v1: reviews answered by reviews-v1-0"
t_like "$out" "label=version=v1" "the pod reports its labels"
t_like "$out" "request=GET /reviews/0 HTTP/1.1" "and the request it saw"
t_is "$(k8s_pods_of 10 sleep "$REV/r" | sort -u | tr '\n' ' ')" "reviews-v1-0 " "all-v1: 10 requests to reviews all reach v1"
t_is "$(k8s_pods_of 5 sleep "http://$(k8s_vip productpage):9080/productpage" | sort -u | tr '\n' ' ')" "productpage-v1-0 " "all-v1: productpage reaches v1"

k8s_routes "$NET/virtual-service-reviews-test-v2.yaml" "$NET/destination-rule-all.yaml"
t_is "$(k8s_pods_of 10 sleep "$REV/r" -H 'end-user: jason' | sort -u | tr '\n' ' ')" "reviews-v2-0 " "test-v2: end-user jason -> v2 (10 of 10)"
t_is "$(k8s_pods_of 10 sleep "$REV/r" | sort -u | tr '\n' ' ')" "reviews-v1-0 " "test-v2: everyone else -> v1"

# Weighted splits: N requests, binomial(N, p). Bounds are about 4 standard deviations, so
# a correct split fails with probability below 1e-4.
split_check() { # split_check FILE N VER_A EXPECT_A VER_B LO HI
	local res a b
	k8s_routes "$1" "$NET/destination-rule-all.yaml"
	res=$(k8s_pods_of "$2" sleep "$REV/r")
	a=$(grep -c "^reviews-$3-0$" <<<"$res")
	b=$(grep -c "^reviews-$5-0$" <<<"$res")
	t_diag "$(basename "$1"): $3=$a $5=$b of $2 (expected $3 about $4)"
	t_ok "$([ "$a" -ge "$6" ] && [ "$a" -le "$7" ] && [ $((a + b)) = "$2" ]; echo $?)" \
		"$(basename "$1"): $3=$a of $2 within $6..$7, the rest $5"
}
split_check "$NET/virtual-service-reviews-50-v3.yaml" 200 v1 100 v3 72 128
split_check "$NET/virtual-service-reviews-90-10.yaml" 200 v1 180 v2 163 197

k8s_routes "$NET/virtual-service-ratings-test-delay.yaml" "$NET/destination-rule-all.yaml"
t0=$(date +%s%N)
out=$(k8s_curl sleep -m 20 -H 'end-user: jason' "$RAT/ratings/0")
ms=$((($(date +%s%N) - t0) / 1000000))
t_like "$out" "^pod=ratings-v1-0" "test-delay: jason still answered by ratings-v1"
t_ok "$([ "$ms" -ge 7000 ]; echo $?)" "test-delay: jason's request took >= 7000 ms ($ms ms)"
t0=$(date +%s%N)
out=$(k8s_curl sleep "$RAT/ratings/0")
ms=$((($(date +%s%N) - t0) / 1000000))
t_ok "$([ "$ms" -lt 7000 ]; echo $?)" "test-delay: others not delayed ($ms ms)"

k8s_routes "$NET/virtual-service-ratings-test-abort.yaml" "$NET/destination-rule-all.yaml"
t_is "$(k8s_curl sleep -o /dev/null -w '%{http_code}' -H 'end-user: jason' "$RAT/ratings/0")" 500 "test-abort: jason gets 500"
t_is "$(k8s_curl sleep -o /dev/null -w '%{http_code}' "$RAT/ratings/0")" 200 "test-abort: others 200"
t_like "$(k8s_metrics)" 'destination_service="ratings.default.svc.cluster.local".*response_code="500",response_flags="FI"' "metrics count the injected 500s"
t_done
