#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# waypoint: L7 routing of a service that has a waypoint. The client's connection to the
# service VIP is captured by ztunnel n1, tunnelled over HBONE to the waypoint pod on n2
# (authority = the original VIP:port), where the waypoint parses HTTP/1.1, applies the Istio
# resources and tunnels each request over HBONE to the chosen reviews pod back on n1.
#
#   n1a 198.18.1.11 client (HBONE)        n2a 198.18.2.11 waypoint (own identity
#   n1b 198.18.1.12 reviews-v1 (HBONE)        spiffe://cluster.local/ns/wp/sa/waypoint,
#   n1c 198.18.1.13 reviews-v2 (HBONE)        plain pod: not captured, listens on 15008)
#   n1d 198.18.1.14 reviews-v3 (HBONE)
#   service reviews.default.svc.cluster.local VIP 198.19.0.10:9080, waypoint 198.18.2.11
#   n1a --VIP--> ztunnel n1 ==HBONE==> waypoint n2a ==HBONE==> ztunnel n1 15008 --> n1b/c/d
#
# corpus: istio-samples (make test-samples runs it on Istio's files too)
# Checks (bookinfo's routing YAML, tests/data/samples or ISTIO_SAMPLES): header routing (end-user: jason -> v2, others v1),
# a 50/50 v1/v3 split after a live config reload (each side 25..75 of 100), a broken update
# keeps the previous config, fault abort 503, L7 authz GET allowed / POST 403, keep-alive
# requests over one client connection, plain TCP bytes relayed unchanged, metrics.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/harness.sh
BUILD=${BUILD:-build}
. tests/lib/samples.sh
SAMPLES=$(samples_dir 2>&1) || t_fatal "$SAMPLES"
SAMPLES=$SAMPLES/bookinfo/networking
ECHO=$BUILD/tests/tools/zm-echo
HECHO=$BUILD/tests/tools/zm-httpecho
ZT=$BUILD/bin/ztunnel
WP=$BUILD/bin/waypoint
ZCTL=$BUILD/bin/zmeshctl
for b in "$ECHO" "$HECHO" "$ZT" "$WP" "$ZCTL"; do [ -x "$b" ] || t_fatal "$b not built (run make)"; done
why=$(samples_need "$SAMPLES" virtual-service-reviews-test-v2.yaml virtual-service-reviews-50-v3.yaml \
	destination-rule-all.yaml 2>&1) || t_fatal "$why"
command -v curl >/dev/null || t_fatal "curl not installed"

h_init
h_topology 2 4
VIP=198.19.0.10
CFG=$H_STATE/mesh.yaml
cat >"$CFG" <<YAML
workloads:
- {uid: Kubernetes//Pod/default/client, name: client, namespace: default, serviceAccount: sleep, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1a)"]}
- {uid: Kubernetes//Pod/default/reviews-v1, name: reviews-v1, namespace: default, serviceAccount: bookinfo-reviews, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1b)"], services: {default/reviews.default.svc.cluster.local: {9080: 9080}}, labels: {app: reviews, version: v1}}
- {uid: Kubernetes//Pod/default/reviews-v2, name: reviews-v2, namespace: default, serviceAccount: bookinfo-reviews, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1c)"], services: {default/reviews.default.svc.cluster.local: {9080: 9080}}, labels: {app: reviews, version: v2}}
- {uid: Kubernetes//Pod/default/reviews-v3, name: reviews-v3, namespace: default, serviceAccount: bookinfo-reviews, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1d)"], services: {default/reviews.default.svc.cluster.local: {9080: 9080}}, labels: {app: reviews, version: v3}}
- {uid: Kubernetes//Pod/wp/waypoint, name: waypoint, namespace: wp, serviceAccount: waypoint, protocol: TCP, node: n2, workloadIps: ["$(h_ip4 n2a)"]}
services:
- {name: reviews, namespace: default, hostname: reviews.default.svc.cluster.local, vips: ["/$VIP"], ports: {9080: 9080}, waypoint: {destination: "/$(h_ip4 n2a)", hboneMtlsPort: 15008}}
YAML
"$ZCTL" ca init --dir "$H_STATE/ca" >/dev/null || t_fatal "zmeshctl ca init failed"
ROUTES=$H_STATE/routes.yaml
cp "$SAMPLES/virtual-service-reviews-test-v2.yaml" "$ROUTES"

for n in n1 n2; do
	"$ZCTL" --netns "$(h_ns $n)" --pin-dir "$(h_pin_dir $n)" datapath load --uplink wire0 \
		>/dev/null || t_fatal "datapath load on $n failed"
	h_bg $n "$ZT" --config "$CFG" --node $n --netns "/var/run/netns/$(h_ns $n)" \
		--pin-dir "$(h_pin_dir $n)" --ca-dir "$H_STATE/ca" 2>"$H_STATE/zt-$n.log"
done
h_bg n2a "$WP" --config "$ROUTES" --config "$SAMPLES/destination-rule-all.yaml" \
	--mesh-config "$CFG" --identity spiffe://cluster.local/ns/wp/sa/waypoint \
	--ca-dir "$H_STATE/ca" --netns "/var/run/netns/$(h_ns n2a)" 2>"$H_STATE/wp.log"
h_bg n1b "$HECHO" --port 9080 --name reviews-v1
h_bg n1c "$HECHO" --port 9080 --name reviews-v2
h_bg n1d "$HECHO" --port 9080 --name reviews-v3
for n in n1 n2; do
	h_wait_port $n 15008 || t_fatal "ztunnel on $n did not start: $(cat "$H_STATE/zt-$n.log")"
done
h_wait_port n2a 15008 || t_fatal "waypoint did not start: $(cat "$H_STATE/wp.log")"
for p in n1b n1c n1d; do h_wait_port $p 9080 || t_fatal "http echo in $p did not start"; done
for i in $(seq 50); do
	[ "$(h_exec n2a curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" = ready ] && break
	sleep 0.1
done
t_is "$(h_exec n2a curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" ready "waypoint ready on 15021"
sleep 0.5 # enrollment happens right after ztunnel readiness

get() { # get [curl args...] PATH -> body (or status with -o /dev/null -w)
	h_exec n1a curl -s -m 5 "$@"
}
pods_of() { # pods_of N [curl args]: the pod names answering N requests
	local n=$1 i
	shift
	for i in $(seq "$n"); do get "$@" "http://$VIP:9080/reviews/$i" | sed -n 's/^pod=//p'; done
}

out=$(get -H 'end-user: jason' "http://$VIP:9080/reviews/0")
t_like "$out" "^pod=reviews-v2" "end-user: jason reaches reviews-v2 through the waypoint"
t_like "$out" "request=GET /reviews/0 HTTP/1.1" "the endpoint sees the request line"
t_like "$out" "header=host: $VIP:9080" "and the client's Host header"
t_is "$(pods_of 10 -H 'end-user: jason' | sort -u | tr '\n' ' ')" "reviews-v2 " "10 requests as jason: all to v2"
t_is "$(pods_of 10 | sort -u | tr '\n' ' ')" "reviews-v1 " "10 requests without end-user: all to v1"
t_is "$(pods_of 5 -H 'end-user: bob' | sort -u | tr '\n' ' ')" "reviews-v1 " "end-user: bob -> v1"

# Keep-alive: several requests on one client connection, each routed on its own.
out=$(h_exec n1a curl -s -m 5 -H 'end-user: jason' "http://$VIP:9080/a" "http://$VIP:9080/b" "http://$VIP:9080/c" | grep -c '^pod=reviews-v2')
t_is "$out" 3 "three keep-alive requests on one connection all answered"
# ... and the waypoint kept its upstream connection for the next request (Envoy's connection
# pool): the endpoint saw them as requests 1, 2 and 3 of one connection, not three connections.
out=$(h_exec n1a curl -s -m 5 -H 'end-user: jason' "http://$VIP:9080/d" "http://$VIP:9080/e" "http://$VIP:9080/f" | sed -n 's/^conn_req=//p' | tr '\n' ' ')
t_like "$out" "^([0-9]+) $(($(cut -d' ' -f1 <<<"${out:-0}") + 1)) $(($(cut -d' ' -f1 <<<"${out:-0}") + 2)) $" \
	"the waypoint reuses its upstream connection for the next keep-alive request"

# Fields and a path longer than any fixed buffer go through whole, both ways (HTTP/1 on both
# legs): a 5,000-byte request field, a 6,000-byte path, a 3,000-byte response field.
long=$(printf "%05000d" 0 | tr 0 a)
big=$(printf "%03000d" 0 | tr 0 b)
lpath=/long/$(printf "%05994d" 0 | tr 0 p)
out=$(h_exec n1a curl -s -m 5 -D - -H "x-long: $long" -H "x-echo-resp-header: x-big: $big" \
	"http://$VIP:9080$lpath" | tr -d '\r')
t_like "$(head -1 <<<"$out")" "^HTTP/1.1 200" "a 6,000-byte path and a 5,000-byte field: answered 200"
t_is "$(grep -c "^request=GET ${lpath:0:1000}" <<<"$out")" 1 "the endpoint got the request line"
t_is "$(sed -n 's/^target_len=//p' <<<"$out")" 6000 "with the whole 6,000-byte path"
t_is "$(grep -cx "header=x-long: $long" <<<"$out")" 1 "the endpoint got the 5,000-byte field whole"
t_is "$(grep -cx "x-big: $big" <<<"$out")" 1 "the client got the 3,000-byte response field whole"

# Weighted split after a live reload (mtime poll): bookinfo's 50/50 v1/v3.
cp "$SAMPLES/virtual-service-reviews-50-v3.yaml" "$ROUTES"
for i in $(seq 40); do grep -q "config reloaded" "$H_STATE/wp.log" && break; sleep 0.1; done
t_like "$(cat "$H_STATE/wp.log")" "config reloaded: 1 VirtualService, 4 DestinationRule" "waypoint reloaded the changed VirtualService"
res=$(pods_of 100)
v1=$(grep -c '^reviews-v1$' <<<"$res")
v3=$(grep -c '^reviews-v3$' <<<"$res")
t_diag "50/50 split over 100 requests: v1=$v1 v3=$v3"
t_ok "$([ "$v1" -ge 25 ] && [ "$v1" -le 75 ] && [ $((v1 + v3)) = 100 ]; echo $?)" "50/50 weighted split: v1=$v1 v3=$v3 (each 25..75, none elsewhere)"

# A broken update is refused and the previous config stays in service.
printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n' >"$ROUTES"
for i in $(seq 40); do grep -q "reload refused" "$H_STATE/wp.log" && break; sleep 0.1; done
t_like "$(cat "$H_STATE/wp.log")" "routes.yaml:8: spec.http\[0\].route\[0\].destination: subset v9" "broken update refused with FILE:LINE: field: problem"
res=$(pods_of 20 | sort -u | tr '\n' ' ')
t_like "$res" "reviews-v1 .*reviews-v3|reviews-v3 .*reviews-v1" "previous 50/50 config still serves ($res)"

# Fault abort and L7 authorization.
cp tests/data/l7/waypoint-fault-authz.yaml "$ROUTES"
for i in $(seq 40); do [ "$(grep -c "config reloaded" "$H_STATE/wp.log")" -ge 2 ] && break; sleep 0.1; done
code=$(get -o /dev/null -w '%{http_code}' -H 'x-test: abort' "http://$VIP:9080/x")
t_is "$code" 503 "fault abort: x-test: abort answered 503 by the waypoint"
t_is "$(get -H 'x-test: abort' "http://$VIP:9080/x")" "fault filter abort" "abort body"
hdrs=$(get -D - -o /dev/null "http://$VIP:9080/ok")
t_like "$hdrs" "HTTP/1.1 200" "GET allowed by the AuthorizationPolicy"
t_like "$hdrs" "x-waypoint: zmesh" "response header set by the route"
code=$(get -o /dev/null -w '%{http_code}' -X POST -d 'payload' "http://$VIP:9080/x")
t_is "$code" 403 "POST denied by L7 authz with 403"
t_is "$(get -X POST -d 'payload' "http://$VIP:9080/x")" "RBAC: access denied" "403 body is RBAC: access denied"

# Malformed requests: 400 and close.
out=$(h_exec n1a bash -c "exec 3<>/dev/tcp/$VIP/9080; printf 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' >&3; timeout 5 cat <&3" | head -1)
t_like "$out" "HTTP/1.1 400" "conflicting Content-Length answered 400"
out=$(h_exec n1a bash -c "exec 3<>/dev/tcp/$VIP/9080; printf 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' >&3; timeout 5 cat <&3" | head -1)
t_like "$out" "HTTP/1.1 400" "Content-Length with Transfer-Encoding answered 400"

# Plain TCP inside the tunnel: bytes that are not HTTP go to an endpoint unchanged.
out=$(h_exec n1a bash -c "exec 3<>/dev/tcp/$VIP/9080; printf '\x16\x03\x01hello-not-http\r\n\r\n' >&3; timeout 3 cat <&3" | tr -d '\0' | tr '\r\n' '  ')
t_like "$out" "pod=reviews-v[123] +request=.*hello-not-http" "non-HTTP bytes relayed unchanged as TCP to an endpoint"

m=$(h_exec n2a curl -s -m 2 http://127.0.0.1:15020/metrics)
t_like "$m" 'istio_requests_total\{reporter="waypoint",source_workload="client",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",.*destination_workload="reviews-v2",.*destination_service="reviews.default.svc.cluster.local",.*response_code="200"' "metrics: requests to reviews-v2 by the client's principal"
t_like "$m" 'response_code="403",response_flags="RBAC"\} [1-9]' "metrics: the 403 denials"
t_like "$(cat "$H_STATE/zt-n1.log")" "dst.identity=spiffe://cluster.local/ns/wp/sa/waypoint" "ztunnel n1 tunnelled to the waypoint's identity"
t_done
