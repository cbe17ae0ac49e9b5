#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# gRPC through the waypoint, with real gRPC on both ends (Debian's python3-grpcio: the
# client tests/tools/grpc-call.py in the sleep pod, the server tests/tools/grpc-echo.py in two
# versions of grpc-echo). The waypoint proxies each call as its own HTTP/2 request, so
# VirtualService routes gRPC by method (the path is /package.Service/Method) and by metadata
# (headers), AuthorizationPolicy denies a method with gRPC's PERMISSION_DENIED, fault aborts
# and timeouts answer as gRPC (UNAVAILABLE, DEADLINE_EXCEEDED), the server's own status
# (grpc-status in trailers) reaches the client, server streaming and large messages pass
# with flow control, many calls share one connection, and metrics say request_protocol="grpc"
# with grpc_response_status.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
/usr/bin/python3 -c 'import grpc' 2>/dev/null || t_fatal "python3-grpcio missing (apt-get install python3-grpcio)"

k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/grpc-echo.yaml
k8s_waypoint
k8s_routes tests/data/l7/grpc-routes.yaml
k8s_start
k8s_serve grpc 50051 grpc-echo-v1 grpc-echo-v2 -- /usr/bin/python3 tests/tools/grpc-echo.py
T=$(k8s_vip grpc-echo):50051
call() { h_exec "$(k8s_pod sleep)" timeout 30 /usr/bin/python3 tests/tools/grpc-call.py "$T" "$@" 2>&1; }

# Routing by method and by metadata.
out=$(call Say -n 4)
t_is "$(grep -c '^OK pod=grpc-echo-v1-0 method=Say' <<<"$out")" 4 "Say (default route) answered by v1, 4 calls on one channel"
out=$(call Shout)
t_like "$out" "^OK pod=grpc-echo-v2-0 method=Shout" "Shout routed by method to v2"
t_like "$out" "md=.*x-routed:shout" "the route's request header reached the server as metadata"
t_like "$(call Say --md x-canary=yes)" "^OK pod=grpc-echo-v2-0 method=Say" "metadata x-canary: yes routes Say to v2"

# Mirroring: answers come from v1, v2 sees each call as a copy (":authority" ...-shadow).
out=$(call Say -n 3 --md x-case=mirror)
t_is "$(grep -c '^OK pod=grpc-echo-v1-0 method=Say' <<<"$out")" 3 "mirror: the answers come from v1"
for i in $(seq 30); do [ "$(grep -c '^call Say mirror' "$K8S_DIR/grpc-grpc-echo-v2.log")" -ge 2 ] && break; sleep 0.1; done
t_ok "$([ "$(grep -c '^call Say mirror' "$K8S_DIR/grpc-grpc-echo-v2.log")" -ge 2 ]; echo $?)" "mirror: v2 received the copies ($(grep -c '^call Say mirror' "$K8S_DIR/grpc-grpc-echo-v2.log") of 3; one still in flight when the client closed may be cut)"
t_is "$(grep -c '^call Say mirror' "$K8S_DIR/grpc-grpc-echo-v1.log")" 3 "mirror: v1 saw each call once"

# Authorization by method: gRPC's PERMISSION_DENIED with Istio's message.
t_is "$(call Secret)" "PERMISSION_DENIED RBAC: access denied" "Secret denied by AuthorizationPolicy (paths) as PERMISSION_DENIED"
t_like "$(call Say)" "^OK " "other methods still allowed"

# The server's own status, faults and timeouts.
t_is "$(call Fail)" "NOT_FOUND no such thing" "the server's grpc-status (trailers) reaches the client"
t_is "$(call AbortMe)" "UNAVAILABLE fault filter abort" "fault abort 503 becomes UNAVAILABLE"
out=$(call Slow --time)
t_like "$out" "^OK pod=grpc-echo-v1-0 method=Say" "fault delay, then the call rewritten from Slow to Say"
ms=$(sed -n 's/^ms=//p' <<<"$out")
t_ok "$([ "${ms:-0}" -ge 1000 ]; echo $?)" "the 1s delay was applied ($ms ms)"
out=$(call Sleep --md x-sleep-ms=3000 --time)
t_is "$(head -1 <<<"$out")" "DEADLINE_EXCEEDED upstream request timeout" "route timeout 500ms on a 3s call becomes DEADLINE_EXCEEDED"
ms=$(sed -n 's/^ms=//p' <<<"$out")
t_ok "$([ "${ms:-0}" -ge 500 ] && [ "$ms" -lt 2500 ]; echo $?)" "answered at the route timeout, not the server's 3s ($ms ms)"
t_like "$(call Sleep --md x-sleep-ms=100)" "^OK pod=grpc-echo-v1-0 method=Sleep" "a call within the timeout is answered"
out=$(call Sleep --md x-sleep-ms=2000 --md x-case=retry --time)
t_is "$(head -1 <<<"$out")" "DEADLINE_EXCEEDED upstream request timeout" "perTryTimeout 300ms x 3 attempts on a 2s call: DEADLINE_EXCEEDED"
ms=$(sed -n 's/^ms=//p' <<<"$out")
t_ok "$([ "${ms:-0}" -ge 900 ] && [ "$ms" -lt 1900 ]; echo $?)" "answered after three per-try timeouts ($ms ms)"
t_is "$(grep -c '^call Sleep retry' "$K8S_DIR/grpc-grpc-echo-v1.log")" 3 "the server saw the call three times (two retries)"

# Streaming and large messages (flow control both ways).
out=$(call Stream --stream --md x-count=5)
t_is "$out" "OK pod=grpc-echo-v1-0 i=0|pod=grpc-echo-v1-0 i=1|pod=grpc-echo-v1-0 i=2|pod=grpc-echo-v1-0 i=3|pod=grpc-echo-v1-0 i=4" "server streaming: five messages then OK"
out=$(call Say --size 3000000 --md x-reply-size=5000000)
t_like "$out" "^OK pod=grpc-echo-v1-0 method=Say bytes=3000000 .*\(5000000 bytes\)$" "3 MB request and 5 MB response through 1 MiB windows"
out=$(call Say -n 200)
t_is "$(grep -c '^OK pod=grpc-echo-v1-0' <<<"$out")" 200 "200 calls on one channel all answered"

# Logs and metrics.
log=$(cat "$K8S_DIR/wp.log")
t_like "$log" "scope=access msg=http src.principal=cluster.local/ns/default/sa/sleep src.workload=sleep-0 method=POST path=/echo.Echo/Shout .*route=shout-to-v2 upstream=.*\(grpc-echo-v2-0\) status=200 .*protocol=HTTP/2 grpc_status=0" "access log: method path, route, upstream, grpc_status"
m=$(k8s_metrics)
t_like "$m" 'destination_workload="grpc-echo-v2-0".*grpc_response_status="0",request_protocol="grpc",response_code="200",response_flags="-"\} [1-9]' "istio_requests_total with request_protocol grpc"
t_like "$m" 'grpc_response_status="5",request_protocol="grpc",response_code="200"' "grpc_response_status 5 (NOT_FOUND) counted"
t_like "$m" 'grpc_response_status="7",request_protocol="grpc",response_code="200",response_flags="RBAC"\} 1' "denied call counted with grpc status 7 and flag RBAC"
t_like "$m" 'grpc_response_status="4",request_protocol="grpc",response_code="200",response_flags="UT"\} 1' "timeout counted with grpc status 4 and flag UT"

# A broken client: a DATA frame where SETTINGS must come is a connection error; the waypoint goes on.
h_exec "$(k8s_pod sleep)" timeout 5 bash -c "exec 3<>/dev/tcp/${T%:*}/50051; printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x00\x00\x00\x00\x00\x00DATA' >&3; cat <&3 >/dev/null" 2>/dev/null
t_like "$(cat "$K8S_DIR/wp.log")" "scope=h2 msg=\"h2 from cluster.local/ns/default/sa/sleep \(198\.18\.250\.[0-9]+:50051\): .*SETTINGS" "a malformed HTTP/2 frame is logged and the connection closed"
t_like "$(call Say)" "^OK pod=grpc-echo-v1-0" "and other calls are not disturbed"
t_done
