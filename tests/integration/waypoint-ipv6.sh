#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The waypoint over IPv6, and mirror copies that never end. Bookinfo, sleep and grpc-echo on
# the k8s harness in dual stack (k8s_dualstack): every service has an IPv4 and an IPv6 VIP,
# every pod both addresses, and the services' waypoint is addressed by its IPv6 address.
#
#   n1: details-v1-0 .11, reviews-v1-0 .12, reviews-v3-0 .13, sleep-0 .14, grpc-echo-v2-0 .15
#   n2: ratings-v1-0 .11, reviews-v2-0 .12, productpage-v1-0 .13, grpc-echo-v1-0 .14
#   n3: waypoint .11      (pod n<i> .N = 198.18.<i>.N and 2001:2:0:<i>::N)
#   services: VIPs 198.18.250.N and 2001:2:0:250::N (reviews 3, grpc-echo 6)
#
#   sleep [2001:2:0:1::14] --[2001:2:0:250::3]:9080--> ztunnel n1 ==HBONE over IPv6,
#     :authority [2001:2:0:250::3]:9080==> waypoint [2001:2:0:3::11]:15008 ==HBONE over IPv6,
#     :authority [2001:2:0:2::12]:9080==> ztunnel n2 --> reviews-v2-0 [2001:2:0:2::12]:9080
#
# Checks: HTTP/1.1 (curl -g) and gRPC (grpc-call.py, target [v6]:50051) over IPv6 VIPs are
# routed by the VirtualService (header end-user, gRPC method), authorized, and reach the
# endpoint's IPv6 address (a dual-stack endpoint is dialed in the client's family; IPv4 clients
# still get IPv4); non-HTTP bytes are relayed; the access log brackets IPv6 authorities and
# upstreams. Mirroring: the copy goes out over IPv6 with Host "[v6]:9080-shadow"; copies to a
# mirror that stalls (x-echo-delay) are reset at the route timeout, and at most WP_SHADOW_MAX
# (64) are in flight per worker: more are dropped and logged.
# corpus: istio-samples (make test-samples runs it on Istio's bookinfo too)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples bookinfo/platform/kube/bookinfo.yaml
command -v curl >/dev/null || t_fatal "curl not installed"
/usr/bin/python3 -c 'import grpc' 2>/dev/null || t_fatal "python3-grpcio missing (apt-get install python3-grpcio)"

k8s_init 3 2
k8s_dualstack
k8s_apply "$S/bookinfo/platform/kube/bookinfo.yaml" "$S/sleep/sleep.yaml" tests/data/l7/grpc-echo.yaml
k8s_waypoint
cat >"$K8S_DIR/reviews-v6.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews, subset: v2}
  - name: mirror
    match:
    - headers: {x-case: {exact: mirror}}
    route:
    - destination: {host: reviews, subset: v1}
    timeout: 6s
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 100.0}
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
YAML
k8s_routes "$K8S_DIR/reviews-v6.yaml" "$S/bookinfo/networking/destination-rule-all.yaml" \
	tests/data/l7/grpc-routes.yaml
k8s_start
k8s_serve grpc 50051 grpc-echo-v1 grpc-echo-v2 -- /usr/bin/python3 tests/tools/grpc-echo.py
V6=$(k8s_vip6 reviews)
G6=$(k8s_vip6 grpc-echo)
SLEEP6=$(h_ip6 "$(k8s_pod sleep)")
WP6=$(h_ip6 wp)
t_like "$V6" "^2001:2:0:250::[0-9]+$" "dual stack: reviews has an IPv6 VIP ($V6) besides $(k8s_vip reviews)"
t_like "$(grep -F 'name: sleep-0,' "$K8S_DIR/mesh.yaml")" "workloadIps: \[$(h_ip4 "$(k8s_pod sleep)"), '$SLEEP6'\]" "workloads carry both addresses, IPv4 first"
esc() { sed 's/[].[]/\\&/g' <<<"$1"; } # a literal for t_like
REV6="http://[$V6]:9080"

# HTTP/1.1 over IPv6: routed by header, the Host the client sent kept.
out=$(k8s_curl sleep -g -H 'end-user: jason' "$REV6/v6/jason")
t_like "$out" "^pod=reviews-v2-0" "IPv6 VIP: end-user jason routed to reviews-v2"
t_like "$out" "header=host: $(esc "[$V6]:9080")" "the endpoint sees the bracketed Host"
t_is "$(k8s_pods_of 6 sleep "$REV6/v6/other" -g | sort -u | tr '\n' ' ')" "reviews-v1-0 " "IPv6 VIP: other requests routed to reviews-v1"
out=$(k8s_curl sleep -g -H 'end-user: jason' "$REV6/ka/1" "$REV6/ka/2" "$REV6/ka/3" | grep -c '^pod=reviews-v2-0')
t_is "$out" 3 "three keep-alive requests on one IPv6 connection, each routed"
out=$(k8s_curl sleep -g -d 'ipv6-body' "$REV6/post")
t_like "$out" "body_bytes=9" "POST body forwarded over IPv6"
t_like "$(k8s_curl sleep "http://$(k8s_vip reviews):9080/v4" -H 'end-user: jason')" "^pod=reviews-v2-0" "the IPv4 VIP still routes in dual stack"

# Non-HTTP bytes inside the tunnel: relayed to an endpoint as TCP.
out=$(h_exec "$(k8s_pod sleep)" bash -c "exec 3<>/dev/tcp/$V6/9080; printf '\x16\x03\x01not-http-v6\r\n\r\n' >&3; timeout 3 cat <&3" | tr -d '\0' | tr '\r\n' '  ')
t_like "$out" "pod=reviews-v[123]-0 +request=.*not-http-v6" "IPv6: non-HTTP bytes relayed unchanged"

# gRPC over IPv6: the client dials [v6]:50051, routed by method and authorized.
call() { h_exec "$(k8s_pod sleep)" timeout 30 /usr/bin/python3 tests/tools/grpc-call.py "[$G6]:50051" "$@" 2>&1; }
out=$(call Say -n 3)
t_is "$(grep -c '^OK pod=grpc-echo-v1-0 method=Say' <<<"$out")" 3 "gRPC over IPv6: Say answered by v1, 3 calls on one channel"
t_like "$(call Shout)" "^OK pod=grpc-echo-v2-0 method=Shout" "gRPC over IPv6: Shout routed by method to v2"
t_is "$(call Secret)" "PERMISSION_DENIED RBAC: access denied" "gRPC over IPv6: Secret denied by the AuthorizationPolicy"
t_like "$(call Stream --stream --md x-count=3)" "^OK pod=grpc-echo-v1-0 i=0\|.*i=2$" "gRPC over IPv6: server streaming"

# Every hop was IPv6, and the logs bracket the addresses.
sleep 0.3
log=$(cat "$K8S_DIR/wp.log")
t_like "$log" "scope=access msg=http src.principal=cluster.local/ns/default/sa/sleep src.workload=sleep-0 method=GET path=/v6/jason authority=$(esc "[$V6]:9080") dst.service=reviews.default.svc.cluster.local route=jason upstream=$(esc "[$(h_ip6 "$(k8s_pod reviews-v2)")]:9080")\(reviews-v2-0\) status=200" "access log: bracketed IPv6 authority and upstream (HTTP/1.1)"
t_like "$log" "scope=access msg=http .* method=POST path=/echo.Echo/Shout authority=$(esc "[$G6]:50051") .*upstream=$(esc "[$(h_ip6 "$(k8s_pod grpc-echo-v2)")]:50051")\(grpc-echo-v2-0\) status=200 .*protocol=HTTP/2 grpc_status=0" "access log: bracketed IPv6 authority and upstream (gRPC)"
t_like "$log" "scope=access msg=http .* path=/v4 authority=$(esc "$(k8s_vip reviews)"):9080 .*upstream=$(esc "$(h_ip4 "$(k8s_pod reviews-v2)")"):9080\(reviews-v2-0\)" "an IPv4 client's request goes to the endpoint's IPv4 address"
t_like "$log" "scope=access msg=tcp src.principal=cluster.local/ns/default/sa/sleep authority=$(esc "[$V6]:9080") upstream=\[2001:2:0:[12]::1[23]\]:9080\(reviews-v[123]-0\)" "access log: the TCP relay, bracketed"
t_like "$(cat "$K8S_DIR/zt-n1.log")" "scope=access msg=open dir=outbound via=hbone src.addr=$(esc "[$SLEEP6]"):[0-9]+ .*dst.addr=$(esc "[$V6]:9080") dst.service=reviews.default.svc.cluster.local dst.workload=default/waypoint .*upstream=$(esc "[$WP6]:15008")" "ztunnel n1: sleep to the IPv6 VIP, tunnelled to the waypoint's IPv6 address"
t_like "$(cat "$K8S_DIR/zt-n2.log")" "scope=access msg=open dir=inbound via=hbone src.addr=$(esc "[$WP6]"):[0-9]+ src.workload=default/waypoint .*dst.addr=$(esc "[$(h_ip6 "$(k8s_pod reviews-v2)")]:9080")" "ztunnel n2: the waypoint's tunnel to reviews-v2 arrived over IPv6"
t_like "$(k8s_metrics)" 'destination_workload="reviews-v2-0".*request_protocol="http",response_code="200",response_flags="-"\} [1-9]' "metrics count the IPv6 requests"

# Mirroring over IPv6: the answer comes from v1, v3 gets a copy marked -shadow.
V1LOG=$K8S_DIR/echo-$(k8s_pod reviews-v1).log
V3LOG=$K8S_DIR/echo-$(k8s_pod reviews-v3).log
V3=$(k8s_pod reviews-v3)
seen() { grep -c "^seen .* $1 HTTP" "$2"; } # seen PATH LOG: requests for PATH the pod saw
# Connections to reviews-v3's 9080 (ss's default states: not listening, closed or time-wait).
# A copy's request ends with our half-close, so a stalled copy's sits in CLOSE-WAIT until reset.
conns() { h_exec "$V3" ss -Htn '( sport = :9080 )' | wc -l; }
t_like "$(k8s_curl sleep -g -H 'x-case: mirror' "$REV6/mirror-v6")" "^pod=reviews-v1-0" "mirror: the answer comes from the primary"
for i in $(seq 30); do [ "$(seen /mirror-v6 "$V3LOG")" -ge 1 ] && break; sleep 0.1; done
t_like "$(grep /mirror-v6 "$V3LOG")" "host=$(esc "[$V6]:9080")-shadow" "mirror: reviews-v3 got the copy, Host marked -shadow"
for i in $(seq 30); do [ "$(conns)" = 0 ] && break; sleep 0.1; done
t_is "$(conns)" 0 "mirror: the answered copy's stream is closed"

# A stalled mirror. x-echo-slow N delays only the first N requests of a key per pod: 70
# quick requests make reviews-v1 (the primary) skip the delay, reviews-v3 (the mirror) does not.
# The 70 requests share one connection, so one waypoint worker, whose cap of 64 copies in
# flight is reached while the first copies wait for the route timeout (6 s).
K=(-g -H 'x-echo-key: stall' -H 'x-echo-slow: 70')
urls() { local i; for ((i = 0; i < 70; i++)); do echo "$REV6/$1/$i"; done; }
k8s_curl sleep "${K[@]}" -H 'x-echo-delay: 1' $(urls warm) >/dev/null
t_is "$(seen '/warm/[0-9]*' "$V1LOG")" 70 "70 warm-up requests on reviews-v1"
n_reset=$(grep -c "mirror copy to .* still open after" "$K8S_DIR/wp.log")
t0=$(date +%s%N)
codes=$(k8s_curl sleep -w '\ncode=%{http_code}\n' "${K[@]}" -H 'x-echo-delay: 15000' -H 'x-case: mirror' $(urls stall) |
	sed -n 's/^code=//p' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
ms=$((($(date +%s%N) - t0) / 1000000))
t_is "$codes" "200:70 " "70 mirrored requests on one connection all answered by the primary"
t_ok "$([ "$ms" -lt 5000 ]; echo $?)" "without waiting for the stalled mirror ($ms ms)"
for i in $(seq 30); do [ "$(seen '/stall/[0-9]*' "$V3LOG")" -ge 64 ] && break; sleep 0.1; done
sleep 0.3
t_is "$(seen '/stall/[0-9]*' "$V3LOG")" 64 "the stalled mirror got 64 copies (WP_SHADOW_MAX per worker)"
t_is "$(conns)" 64 "64 copies held open by the stalled mirror"
t_like "$(cat "$K8S_DIR/wp.log")" "mirror to reviews.default.svc.cluster.local: 64 copies in flight on this worker, copy dropped \(1 dropped so far\)" "the dropped copies are logged"
t_is "$(grep -c "copy dropped" "$K8S_DIR/wp.log")" 1 "one log line for the burst of drops"
for i in $(seq 100); do [ "$(conns)" = 0 ] && break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
t_is "$(conns)" 0 "the stalled copies' streams were closed"
t_ok "$([ "$ms" -lt 14000 ]; echo $?)" "before the mirror's 15 s stall ended ($ms ms)"
resets=$(grep "mirror copy to $(esc "[$(h_ip6 "$V3")]:9080") still open after" "$K8S_DIR/wp.log" | tail -n +$((n_reset + 1)))
t_is "$(wc -l <<<"$resets")" 64 "each reset copy logged with the mirror's bracketed address"
t_is "$(grep -oE 'after [0-9]+ ms' <<<"$resets" | awk '{ print ($2 >= 6000 && $2 < 6600) ? "6s" : $2 }' | sort -u | tr '\n' ' ')" "6s " "each reset at the route timeout (6 s)"
t_like "$(k8s_curl sleep -g -H 'x-case: mirror' "$REV6/after-stall")" "^pod=reviews-v1-0" "mirroring goes on after the resets"
for i in $(seq 30); do [ "$(seen /after-stall "$V3LOG")" -ge 1 ] && break; sleep 0.1; done
t_is "$(seen /after-stall "$V3LOG")" 1 "and the next copy reaches the mirror"
t_done
