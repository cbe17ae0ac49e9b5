#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Upgrading the waypoint in place drops no connection (issue 15): a second waypoint started
# with the same --handover PATH takes the running one's listening sockets (SCM_RIGHTS,
# lib/rt/handover) and serves on them; the old one stops accepting, sends GOAWAY on its HBONE
# connections, ends its idle HTTP/1 connections, answers the request in flight on a busy one
# with "connection: close", and keeps relaying every established stream until it closes, then
# exits. A checked TCP stream (tests/tools/zm-stream) through the waypoint crosses the
# hand-over with every byte echoed, and a keep-alive HTTP client sending 5 requests a second
# gets every answer. Then SIGTERM: the drain ends at --drain-timeout with one line saying what
# was cut. Then the bad inputs.
#
#   node n1: sleep-0 (the client)        node n2: stream-0 (HTTP on 8080, TCP echo on 7778)
#   node n3: wp (the waypoint of "stream", --handover RUN/wp.handover)
#   sleep --VIP--> ztunnel n1 ==HBONE==> waypoint ==HBONE==> ztunnel n2 --> stream-0
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
ECHO=$BUILD/tests/tools/zm-echo
HECHO=$BUILD/tests/tools/zm-httpecho
STREAM=$BUILD/tests/tools/zm-stream
for b in "$ECHO" "$HECHO" "$STREAM"; do [ -x "$b" ] || t_fatal "$b not built (run make)"; done

k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/stream-echo.yaml
k8s_waypoint
HO=$K8S_DIR/wp.handover
K8S_WP_ARGS=(--handover "$HO" --workers 2)
k8s_start
OLD=$K8S_WP_PID
SRV=$(k8s_pod stream)
h_bg "$SRV" "$ECHO" serve --port 7778
h_bg "$SRV" "$HECHO" --port 8080 --name stream-0
h_wait_port "$SRV" 7778 && h_wait_port "$SRV" 8080 || t_fatal "servers in $SRV did not start"
VIP=$(k8s_vip stream)
CLI=$(k8s_pod sleep)
t_ok "$([ -S "$HO" ]; echo $?)" "the serving waypoint answers hand-overs on --handover PATH"

# Through the waypoint before anything happens.
t_like "$(k8s_curl sleep "http://$VIP:8080/before")" "^pod=stream-0" "HTTP through the waypoint"
m_wait_for() { # m_wait_for SECONDS CMD...
	local t=$1 i
	shift
	for ((i = 0; i < t * 10; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
h_exec "$CLI" "$STREAM" "$VIP" 7778 --seconds 10 --rate 256 >"$K8S_DIR/stream-a.out" 2>&1 &
SA=$!
# 40 requests on one keep-alive connection, 5 a second: some before, some during, some after.
URLS=()
for i in $(seq 40); do URLS+=(-o /dev/null "http://$VIP:8080/ka/$i"); done
h_exec "$CLI" curl -s -m 30 --rate 5/s -w '%{http_code} %{num_connects}\n' \
	"${URLS[@]}" >"$K8S_DIR/ka.out" 2>&1 &
SK=$!
sleep 3

# The upgrade: a new waypoint with the same options.
k8s_waypoint_run "$K8S_DIR/wp-new.log"
NEW=$K8S_WP_PID
m_wait_for 10 grep -q "handed over to pid $NEW" "$K8S_DIR/wp.log"
t_ok $? "the old waypoint handed its sockets to the new one (pid $NEW)"
t_like "$(cat "$K8S_DIR/wp-new.log")" "taking over from the waypoint running as pid $OLD" \
	"the new waypoint says whom it took over from"
t_like "$(cat "$K8S_DIR/wp.log")" "draining \(handed over to a newer waypoint\): no longer accepting; [0-9]+ HBONE connections from clients left, no deadline" \
	"the old one drains without a deadline"
t_ok "$(kill -0 "$OLD" 2>/dev/null; echo $?)" "the old waypoint still runs: it relays the stream"
t_like "$(k8s_curl sleep "http://$VIP:8080/after")" "^pod=stream-0" "a new request after the hand-over is answered"
m_wait_for 5 grep -q "path=/after .*status=200" "$K8S_DIR/wp-new.log"
t_ok $? "by the new waypoint"

wait "$SA"
t_like "$(cat "$K8S_DIR/stream-a.out")" "^stream ok sent=[0-9]+ echoed=[0-9]+" \
	"the TCP stream crossed the hand-over: every byte echoed, no reset ($(cat "$K8S_DIR/stream-a.out"))"
wait "$SK"
t_is "$(awk '{print $1}' "$K8S_DIR/ka.out" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" "200:40 " \
	"every keep-alive request was answered across the hand-over"
t_ok "$([ "$(awk '{s += $2} END {print s}' "$K8S_DIR/ka.out")" -ge 2 ]; echo $?)" \
	"the client reconnected once the old waypoint closed its connection ($(awk '{s += $2} END {print s}' "$K8S_DIR/ka.out") connects)"
t_like "$(cat "$K8S_DIR/wp.log")" "path=/ka/.*status=200" "the old waypoint answered the first ones"
t_like "$(cat "$K8S_DIR/wp-new.log")" "path=/ka/.*status=200" "the new waypoint the later ones"
m_wait_for 10 bash -c "! kill -0 $OLD 2>/dev/null"
t_ok $? "the old waypoint exited once its connections closed"
t_like "$(cat "$K8S_DIR/wp.log")" "drained: every connection closed after [0-9]+ ms" "and said so"
t_is "$(h_exec wp curl -s -m 2 http://127.0.0.1:15021/healthz/ready)" "ready" \
	"readiness answered by the new waypoint (its admin ports were handed over too)"

# SIGTERM with --drain-timeout: the stream is cut at the deadline, with one line saying so.
K8S_WP_ARGS+=(--drain-timeout 3)
k8s_waypoint_run "$K8S_DIR/wp-3.log" # a third, taking over
THIRD=$K8S_WP_PID
m_wait_for 10 grep -q "handed over to pid $THIRD" "$K8S_DIR/wp-new.log"
t_ok $? "a second hand-over in a row works"
m_wait_for 10 bash -c "! kill -0 $NEW 2>/dev/null"
t_ok $? "the idle previous waypoint exits at once"
h_exec "$CLI" "$STREAM" "$VIP" 7778 --seconds 12 --rate 64 >"$K8S_DIR/stream-b.out" 2>&1 &
SB=$!
sleep 1.5
kill -TERM "$THIRD"
m_wait_for 5 grep -q "draining (SIGTERM): no longer accepting; 1 HBONE connections from clients left, 3 s to finish" \
	"$K8S_DIR/wp-3.log"
t_ok $? "SIGTERM drains for --drain-timeout: $(grep -o 'draining (SIGTERM).*' "$K8S_DIR/wp-3.log")"
t_is "$(h_exec wp curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" 503 \
	"not ready while draining"
m_wait_for 8 bash -c "! kill -0 $THIRD 2>/dev/null"
t_ok $? "the waypoint exits at the deadline although the stream is open"
t_like "$(cat "$K8S_DIR/wp-3.log")" "drain timeout after [0-9]+ ms: cutting 1 HBONE connections from clients still open" \
	"one line says what was cut"
wait "$SB"
t_like "$(cat "$K8S_DIR/stream-b.out")" "^stream FAILED" "the cut stream saw it"

# ---- bad input ----
wp_try() { # wp_try ARGS...: a waypoint start that must fail at once
	timeout 10 ip netns exec "$(h_ns wp)" "$BUILD/bin/waypoint" --config "$K8S_DIR/routes.yaml" \
		--mesh-config "$K8S_DIR/mesh.yaml" --identity spiffe://cluster.local/ns/default/sa/waypoint \
		--ca-dir "$K8S_DIR/ca" "$@" 2>&1
	echo "exit=$?"
}
out=$(wp_try --drain-timeout abc)
t_like "$out" "--drain-timeout: \"abc\" is not a whole number from 0 to 86400" "a malformed --drain-timeout is named"
t_like "$out" "exit=2" "and is a usage error"
: >"$K8S_DIR/not-a-socket"
out=$(wp_try --handover "$K8S_DIR/not-a-socket")
t_like "$out" "not-a-socket exists and is not a socket: refusing to replace it" \
	"a hand-over path that is not a socket is refused by name"
t_like "$out" "exit=1" "and the waypoint exits 1"
flock "$K8S_DIR/twin.handover.lock" sleep 30 &
TWIN=$!
m_wait_for 5 bash -c "flock -n '$K8S_DIR/twin.handover.lock' true; [ \$? = 1 ]"
out=$(wp_try --handover "$K8S_DIR/twin.handover")
t_like "$out" "holds .*twin.handover.lock but does not answer on .*twin.handover: two waypoints" \
	"two waypoints started at once: the second is refused, naming the lock"
kill "$TWIN" 2>/dev/null
wait "$TWIN" 2>/dev/null
t_done
