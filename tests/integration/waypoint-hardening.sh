#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# waypoint: HTTP/1 hardening, as Envoy does it. Raw requests from a client pod, through its
# ztunnel and the waypoint, to a backend that logs every request it receives. Every form two
# HTTP/1 parsers could frame differently is refused before any byte reaches the backend:
# CL.TE and TE.CL (a request smuggled behind them never arrives), whitespace between a field
# name and its colon (the "Content-Length : 46" that a lenient parser frames and forwards),
# obs-fold, bare LF, control bytes, conflicting lengths, a Transfer-Encoding other than
# chunked (501), a second Host; each gets its status, a log line, and the connection is
# closed. Fields the Connection header nominates are removed; forwarded fields are written
# anew from the parsed form. The 32 KiB head limit holds exactly (431 one byte over). A head
# still incomplete after the request-head timeout is answered 408 and closed, a connection
# idle past the idle timeout is closed, and another client's requests go on meanwhile.
#
#   n1: sleep (client), client2        n2: backend (zm-httpecho --log)
#   n3: waypoint, --request-head-timeout 2s --idle-timeout 3s
#   sleep --VIP:8080--> ztunnel n1 ==HBONE==> waypoint ==HBONE==> ztunnel n2 --> backend
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
command -v curl >/dev/null || t_fatal "curl not installed"

k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/hardening-app.yaml
k8s_waypoint
K8S_WP_ARGS=(--request-head-timeout 2s --idle-timeout 3s)
k8s_start
VIP=$(k8s_vip backend)
BLOG=$K8S_DIR/echo-$(k8s_pod backend).log
WPLOG=$K8S_DIR/wp.log
CLIENT=$(k8s_pod sleep)

# raw BYTES [SECONDS]: send BYTES (printf %b escapes) on one connection from sleep, print
# what comes back, then "rc=0" when the waypoint closed the connection (EOF) or "rc=124"
# when it was still open after SECONDS (default 5).
raw() {
	h_exec "$CLIENT" bash -c 'exec 3<>"/dev/tcp/$1/8080" || exit 9
printf "%b" "$2" >&3
timeout "$3" cat <&3
echo "rc=$?"' _ "$VIP" "$1" "${2:-5}" 2>&1 | tr -d '\r'
}
seen() { grep -c -- "$1" "$BLOG"; } # seen REGEX: requests of the backend's log matching
refusals() { grep -c "http/1 request from cluster.local/ns/default/sa/sleep .* refused: $1" "$WPLOG"; }

t_like "$(k8s_curl sleep "http://$VIP:8080/hello")" "^pod=backend-0" "a well-formed request reaches the backend"

# refused CASE REGEX-OF-REASON STATUS BYTES: the status, the close, the log line.
refused() {
	local name=$1 why=$2 code=$3 bytes=$4 out n
	n=$(refusals "$why")
	out=$(raw "$bytes")
	t_like "$out" "^HTTP/1.1 $code " "$name: answered $code"
	t_like "$out" "rc=0$" "$name: the connection is closed"
	sleep 0.2
	t_is "$(refusals "$why")" "$((n + 1))" "$name: one log line"
}

refused "CL.TE" "both Content-Length and Transfer-Encoding, 400" 400 \
	'POST /clte HTTP/1.1\r\nHost: backend\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nHost: backend\r\n\r\n'
refused "TE.CL" "both Content-Length and Transfer-Encoding, 400" 400 \
	'POST /tecl HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\nContent-Length: 46\r\n\r\n0\r\n\r\nGET /smuggled-tecl HTTP/1.1\r\nHost: backend\r\n\r\n'
refused "whitespace before the colon" "invalid header name .whitespace before the colon" 400 \
	'POST /ws HTTP/1.1\r\nHost: backend\r\nContent-Length : 46\r\n\r\nGET /smuggled-ws HTTP/1.1\r\nHost: backend\r\n\r\n'
refused "obs-fold" "obsolete line folding, 400" 400 \
	'GET /fold HTTP/1.1\r\nHost: backend\r\nX-A: 1\r\n Content-Length: 31\r\n\r\nGET /smuggled-fold HTTP/1.1\r\n\r\n'
refused "duplicate Host" "missing or repeated Host, 400" 400 \
	'GET /dup HTTP/1.1\r\nHost: backend\r\nHost: evil.example\r\n\r\n'
refused "conflicting Content-Length" "invalid or conflicting Content-Length, 400" 400 \
	'POST /cl2 HTTP/1.1\r\nHost: backend\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'
refused "Transfer-Encoding gzip, chunked" "Transfer-Encoding other than chunked, 501" 501 \
	'POST /te HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'
refused "bare LF line ends" "line not ended by CRLF, 400" 400 \
	'GET /lf HTTP/1.1\nHost: backend\n\n'
refused "a control byte in a value" "invalid byte in a header value, 400" 400 \
	'GET /ctl HTTP/1.1\r\nHost: backend\r\nX-A: a\001b\r\n\r\n'
refused "a malformed chunked body" "malformed chunked body, 400" 400 \
	'POST /chunk HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'
sleep 0.3
t_is "$(seen 'smuggled')" 0 "nothing smuggled reached the backend"
t_is "$(seen ' /\(clte\|tecl\|ws\|fold\|dup\|cl2\|te\|lf\|ctl\) ')" 0 "no refused request reached the backend"

# What is forwarded is written from the parsed form: Connection and what it nominates (and
# Keep-Alive) are dropped, names lower-cased, values trimmed.
out=$(raw 'GET /hop HTTP/1.1\r\nHost: backend\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: s3cret\r\nX-Kept:    kept value   \r\n\r\n' 2)
t_like "$out" "^HTTP/1.1 200 " "a request with Connection-nominated fields is served"
t_like "$out" "header=x-kept: kept value" "an end-to-end field arrives, re-serialized (lower case, trimmed)"
t_ok "$(grep -qi 'x-secret\|keep-alive\|header=connection' <<<"$out"; [ $? = 1 ]; echo $?)" "X-Secret (nominated by Connection), Keep-Alive and Connection never reach the backend"

# The 32 KiB head limit, exactly: a head of 32768 bytes is served, one of 32769 is refused 431.
pre='GET /exact HTTP/1.1\r\nHost: backend\r\nx-pad: ' # 43 bytes once escapes are bytes
pad=$(head -c $((32768 - 43 - 4)) /dev/zero | tr '\0' a)
head32="$pre$pad\\r\\n\\r\\n"
t_is "$(printf '%b' "$head32" | wc -c)" 32768 "the test's head is 32768 bytes"
t_like "$(raw "$head32" 2)" "^HTTP/1.1 200 " "a 32768-byte head is served"
refused "a 32769-byte head" "head larger than the limit, 431" 431 "${head32/x-pad: /x-pad: a}"
many='GET /many HTTP/1.1\r\nHost: backend\r\n'
for i in $(seq 100); do many+="x-h$i: v\\r\\n"; done
refused "101 fields" "too many header fields, 431" 431 "$many\\r\\n"

# A slow head: 408 after the request-head timeout (2 s), the connection closed; another
# client's request meanwhile is answered at once.
n=$(grep -c "refused: request header timeout, 408" "$WPLOG")
t0=$(date +%s%N)
raw 'GET /slow HTTP/1.1\r\nHost: backend\r\nX-Slow: ' 8 >"$K8S_DIR/slow.out" &
slow=$!
sleep 0.5
t_like "$(k8s_curl client2 -m 3 "http://$VIP:8080/meanwhile")" "^pod=backend-0" "another client is served while one holds a slow head"
wait "$slow"
ms=$((($(date +%s%N) - t0) / 1000000))
t_like "$(cat "$K8S_DIR/slow.out")" "^HTTP/1.1 408 " "the slow head is answered 408"
t_like "$(cat "$K8S_DIR/slow.out")" "rc=0$" "and its connection closed"
t_ok "$([ "$ms" -ge 1500 ] && [ "$ms" -lt 7500 ]; echo $?)" "after the request-head timeout, not before ($ms ms)"
t_is "$(grep -c "refused: request header timeout, 408" "$WPLOG")" "$((n + 1))" "the slow head is logged"
t_is "$(seen '/slow')" 0 "the slow request never reached the backend"

# Idle connections: one that says nothing, and one after a complete keep-alive request.
t0=$(date +%s%N)
out=$(raw '' 10)
ms=$((($(date +%s%N) - t0) / 1000000))
t_like "$out" "rc=0$" "a connection that sends nothing is closed"
t_ok "$([ "$ms" -ge 2500 ] && [ "$ms" -lt 9500 ]; echo $?)" "after the idle timeout ($ms ms)"
t0=$(date +%s%N)
out=$(raw 'GET /ka HTTP/1.1\r\nHost: backend\r\n\r\n' 10)
ms=$((($(date +%s%N) - t0) / 1000000))
t_like "$out" "^HTTP/1.1 200 " "a keep-alive request is answered"
t_like "$out" "rc=0$" "then its idle connection is closed"
t_ok "$([ "$ms" -ge 2500 ] && [ "$ms" -lt 9500 ]; echo $?)" "after the idle timeout ($ms ms)"
t_like "$(cat "$WPLOG")" "http/1 connection from cluster.local/ns/default/sa/sleep .* idle for 3000 ms, closing" "the idle close is logged"
t_like "$(k8s_curl sleep "http://$VIP:8080/after")" "^pod=backend-0" "the waypoint serves on afterwards"
t_done
