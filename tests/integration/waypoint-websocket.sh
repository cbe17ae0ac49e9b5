#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# WebSocket through the waypoint: the Upgrade request is routed and authorized like any
# HTTP/1.1 request (VirtualService by path, AuthorizationPolicy 403), and once the endpoint
# answers 101 the stream is relayed both ways unchanged (Debian's python3-websockets on both
# ends: many messages, a 2 MB binary message, then a clean close). Other Upgrade kinds are
# refused with 400; plain requests on the same service keep working.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
/usr/bin/python3 -c 'import websockets' 2>/dev/null || t_fatal "python3-websockets missing (apt-get install python3-websockets)"

k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/ws-echo.yaml
k8s_waypoint
k8s_routes tests/data/l7/ws-routes.yaml
k8s_start
k8s_serve ws 8080 chat-v1 chat-v2 -- /usr/bin/python3 tests/tools/ws-echo.py serve
U=ws://$(k8s_vip chat):8080
ws() { h_exec "$(k8s_pod sleep)" timeout 20 /usr/bin/python3 tests/tools/ws-echo.py call "$@" 2>&1; }

out=$(ws "$U/room" hello 3 2000000)
t_is "$(grep -c '^chat-v1-0: hello$' <<<"$out")" 3 "three text messages echoed by v1 over one WebSocket"
t_like "$out" "binary 2000000 ok" "a 2 MB binary message came back intact"
t_like "$(ws "$U/v2/room" hi)" "^chat-v2-0: hi$" "VirtualService routes the Upgrade request by path (/v2/ to v2)"
out=$(ws "$U/admin/x" hi)
t_like "$out" "HTTP 403" "AuthorizationPolicy denies the Upgrade request (403)"
log=$(cat "$K8S_DIR/wp.log")
t_like "$log" "scope=access msg=http src.principal=cluster.local/ns/default/sa/sleep src.workload=sleep-0 method=GET path=/room .*route=default upstream=.*\(chat-v1-0\) status=101 " "access log: the Upgrade request answered 101"
t_like "$log" "path=/admin/x .*status=403 flags=RBAC" "the denied one logged with 403 RBAC"
t_like "$(k8s_curl sleep -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: h2c' -H 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA' "http://$(k8s_vip chat):8080/x")" "^400$" "an h2c Upgrade is refused with 400"
t_like "$(k8s_metrics)" 'destination_workload="chat-v1-0".*response_code="101",response_flags="-"\} 1' "metrics count the 101"
t_done
