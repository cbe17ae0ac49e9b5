#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The conformance tier: Istio's own L7 cases, read by path from ISTIO_CONFORMANCE
# (tests/lib/conformance.sh) and applied to the waypoint as written, each checked for the
# outcome Istio expects (stated in the header of each file: which suite and lines it comes
# from, and what Istio's test checks). The applications are Istio's echo apps and bookinfo's
# reviews and ratings in our own manifests (tests/data/l7/istio-echo.yaml: a is the client;
# b, c, d, h echo services on ports 80 and 85); the waypoint is attached by its Gateway and the
# namespace label; ztunnel-policies.yaml, the workload half, goes to every ztunnel. HTTP cases
# run over HTTP/1.1 and HTTP/2 (h2c); a case passes when all its checks do, and the last line
# counts the cases that pass.
#
#   n1, n2: a, b-v1, b-v2, c, d, h, l4-*, reviews-v1..3, ratings-v1     n3: the waypoint
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
. tests/lib/conformance.sh
D=$(conformance_dir 2>&1) || t_fatal "$D"
command -v curl >/dev/null || t_fatal "curl not installed"
curl --version | grep -q HTTP2 || t_fatal "curl without HTTP/2"
t_diag "corpus: $D"

k8s_init 3 2
k8s_apply tests/data/l7/istio-echo.yaml
k8s_waypoint
k8s_ztunnel_policy "$D/ztunnel-policies.yaml"
k8s_start
B=$(k8s_vip b)
C=$(k8s_vip c)
H=$(k8s_vip h)
REV=$(k8s_vip reviews):9080

call() {
	local p=$1
	shift
	if [ "$p" = h2 ]; then k8s_curl a -m 12 --http2-prior-knowledge "$@"; else k8s_curl a -m 12 "$@"; fi
}
code() { call "$1" -o /dev/null -w '%{http_code}' "${@:2}"; }
pods() { # pods PROTO N URL [args]: the pods answering N calls, sorted unique
	local p=$1 n=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do call "$p" "$@" | sed -n 's/^pod=//p'; done | sort -u | tr '\n' ' '
}

# A case passes when every one of its checks does.
CASES=0
PASSED=0
FAILED_CASES=""
case_begin() {
	CASE_NAME=$1
	CASE_FAIL=$T_FAILED
	CASES=$((CASES + 1))
	k8s_routes "$D/$1.yaml"
}
case_end() {
	if [ "$T_FAILED" = "$CASE_FAIL" ]; then
		PASSED=$((PASSED + 1))
	else
		FAILED_CASES="$FAILED_CASES $CASE_NAME"
	fi
}

case_begin c01-header-routing
for P in h1 h2; do
	t_is "$(pods $P 5 "http://$B/")" "b-v1-0 " "c01 $P: 5 calls without the header all answered by v1"
	t_is "$(pods $P 5 "http://$B/" -H 'user: istio-custom-user')" "b-v2-0 " "c01 $P: 5 calls as istio-custom-user all by v2"
done
case_end

case_begin c02-weird-header
for P in h1 h2; do
	t_is "$(code $P "http://$B/")" 404 "c02 $P: without the header 404"
	t_is "$(code $P -H "a!#\$%&'*+-.^_\`|~z: why" "http://$B/")" 200 "c02 $P: with it 200"
done
case_end

case_begin c03-pseudo-header
for P in h1 h2; do
	t_is "$(code $P -X POST "http://$B/")" 404 "c03 $P: POST 404"
	t_is "$(code $P "http://$B/")" 200 "c03 $P: GET 200"
done
case_end

without() { # without CASE WANT-jason WANT-other-or-empty WANT-absent OTHER-ARGS
	local P
	for P in h1 h2; do
		t_is "$(code $P -H 'end-user: jason' "http://$B/foo")" "$2" "$1 $P: end-user jason $2"
		t_is "$(code $P "${@:5}" "http://$B/foo")" "$3" "$1 $P: $5 $3"
		t_is "$(code $P "http://$B/foo")" "$4" "$1 $P: no end-user $4"
	done
}
case_begin c04-without-headers
without c04 200 403 403 -H 'end-user: not-jason'
case_end
case_begin c05-without-headers-present
without c05 200 200 403 -H 'end-user;'
case_end
case_begin c06-without-headers-any
without c06 200 200 200 -H 'end-user;'
case_end

case_begin c07-redirect
for P in h1 h2; do
	l=$(call $P -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://$B/foo?key=value")
	t_is "$l" "301 http://$B/new/path?key=value" "c07 $P: /foo?key=value redirected to /new/path?key=value"
	out=$(call $P -w 'final=%{http_code}' "${l#* }" | tr '\n' ' ')
	t_like "$out" "request=GET /new/path\?key=value .*final=200" "c07 $P: following it ends 200 at /new/path?key=value"
done
case_end

case_begin c08-redirect-request-port
loc() { call "$1" -s -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: $2" "http://$B:$3/foo"; }
for P in h1 h2; do
	t_is "$(loc $P b 80)" "301 http://b/foo" "c08 $P: port 80, Host b"
	t_is "$(loc $P b:80 80)" "301 http://b:80/foo" "c08 $P: port 80, Host b:80"
	t_is "$(loc $P b 85)" "301 http://b:85/foo" "c08 $P: port 85, Host b"
	t_is "$(loc $P b:85 85)" "301 http://b:85/foo" "c08 $P: port 85, Host b:85"
done
case_end

case_begin c09-redirect-prefix-rewrite
for P in h1 h2; do
	l=$(call $P -s -o /dev/null -w '%{redirect_url}' "http://$B/foo/bar")
	out=$(call $P -w 'final=%{http_code}' "$l" | tr '\n' ' ')
	t_like "$out" "request=GET /new/bar .*final=200" "c09 $P: /foo/bar ends 200 at /new/bar"
done
case_end

case_begin c10-rewrite-uri
for P in h1 h2; do
	out=$(call $P -w 'final=%{http_code}' "http://$B/foo?key=value#hash" | tr '\n' ' ')
	t_like "$out" "request=GET /new/path\?key=value .*final=200" "c10 $P: the endpoint saw /new/path?key=value, 200"
done
case_end

case_begin c11-header-operations
for P in h1 h2; do
	out=$(call $P -D "$K8S_DIR/c11.$P" -H 'x-req-remove: 1' -H 'x-route-req-remove: 1' \
		-H 'x-echo-resp-header: x-resp-set: app' -H 'x-echo-resp-header: x-resp-remove: 1' \
		-H 'x-echo-resp-header: x-route-resp-remove: 1' "http://$H/")
	resp=$(tr -d '\r' <"$K8S_DIR/c11.$P")
	for h in "x-req-set: v1" "x-req-add: v2" "x-route-req-set: v1" "x-route-req-add: v2" "host: foo.extsvc.com"; do
		t_like "$out" "header=$h" "c11 $P: the request carries $h"
	done
	t_ok "$(grep -q 'x-req-remove\|x-route-req-remove' <<<"$out"; [ $? = 1 ]; echo $?)" "c11 $P: and lost x-req-remove, x-route-req-remove"
	for h in "x-resp-set: v1" "x-resp-add: v2" "x-route-resp-set: v1" "x-route-resp-add: v2"; do
		t_like "$resp" "^$h" "c11 $P: the response carries $h"
	done
	t_ok "$(grep -q 'x-resp-set: app\|x-resp-remove\|x-route-resp-remove' <<<"$resp"; [ $? = 1 ]; echo $?)" "c11 $P: the app's x-resp-set replaced, x-resp-remove and x-route-resp-remove gone"
done
case_end

case_begin c12-cors
for P in h1 h2; do
	out=$(call $P -s -D - -o /dev/null -X OPTIONS -H 'Origin: cors.com' -H 'Access-Control-Request-Method: DELETE' "http://$B/" | tr -d '\r')
	t_like "$out" "^HTTP/[0-9.]+ 200" "c12 $P: preflight 200"
	for h in "access-control-allow-origin: cors.com" "access-control-allow-methods: POST,GET" "access-control-allow-headers: X-Foo-Bar,X-Foo-Baz" "access-control-max-age: 86400"; do
		t_like "$out" "$h" "c12 $P: preflight $h"
	done
	t_like "$(call $P -s -D - -o /dev/null -H 'Origin: cors.com' "http://$B/" | tr -d '\r' | tr '\n' ' ')" "^HTTP/[0-9.]+ 200 .*access-control-allow-origin: cors.com" "c12 $P: GET with Origin cors.com: 200 with allow-origin"
	t_ok "$(call $P -s -D - -o /dev/null "http://$B/" | grep -qi 'access-control-allow-origin'; [ $? = 1 ]; echo $?)" "c12 $P: GET without Origin: none"
done
case_end

case_begin c13-fault-abort
for P in h1 h2; do t_is "$(code $P "http://$B/")" 418 "c13 $P: 418"; done
case_end

case_begin c14-catch-all
for P in h1 h2; do t_is "$(code $P "http://$B/anything")" 418 "c14 $P: the catch-all regex route short-circuits: 418"; done
case_end

case_begin c15-split-80-20
res=$(for i in $(seq 200); do call h1 "http://$REV/r" | sed -n 's/^pod=//p'; done)
v1=$(grep -c '^reviews-v1-0$' <<<"$res")
v2=$(grep -c '^reviews-v2-0$' <<<"$res")
t_diag "c15: v1=$v1 v2=$v2 of 200"
t_ok "$([ "$v1" -ge 140 ] && [ "$v1" -le 180 ] && [ $((v1 + v2)) = 200 ]; echo $?)" "c15 h1: of 200 requests 140..180 reach v1 ($v1), the rest v2 ($v2)"
case_end

case_begin c16a-ratings-delay
for P in h1 h2; do
	t0=$(date +%s%N)
	out=$(call $P -w 'final=%{http_code}' "http://$REV/reviews/0" | tr '\n' ' ')
	ms=$((($(date +%s%N) - t0) / 1000000))
	t_like "$out" "^pod=reviews-v2-0.*call=200.*final=200" "c16a $P: reviews v2 answers, its call to ratings succeeded"
	t_ok "$([ "$ms" -ge 1900 ]; echo $?)" "c16a $P: after about 2 s ($ms ms)"
done
case_end

case_begin c16b-reviews-timeout
for P in h1 h2; do
	t0=$(date +%s%N)
	out=$(call $P -w ' final=%{http_code}' "http://$REV/reviews/0")
	ms=$((($(date +%s%N) - t0) / 1000000))
	t_is "$out" "upstream request timeout final=504" "c16b $P: 504 upstream request timeout"
	t_ok "$([ "$ms" -ge 400 ] && [ "$ms" -lt 1900 ]; echo $?)" "c16b $P: after 0.5 s, not the 2 s delay ($ms ms)"
done
case_end

case_begin c17-retry-conditions
for P in h1 h2; do
	t_is "$(code $P "http://$C/")" 200 "c17 $P: accepted; a call answers 200"
	t_is "$(code $P -H "x-echo-key: c17-$P" -H 'x-echo-fail: 2' "http://$C/r")" 200 "c17 $P: two 503s retried (gateway-error), 200 on the third try"
done
case_end

case_begin c18-authz-l7
for P in h1 h2; do
	t_is "$(code $P "http://$C/deny")" 403 "c18 $P: GET /deny 403"
	t_is "$(code $P "http://$C/allowed")" 200 "c18 $P: GET /allowed 200"
	t_is "$(code $P "http://$C/denied-identity")" 403 "c18 $P: GET /denied-identity 403"
	t_is "$(code $P "http://$C/allowed-identity")" 200 "c18 $P: GET /allowed-identity 200"
	t_is "$(code $P -X POST "http://$C/explicit-deny")" 403 "c18 $P: POST /explicit-deny 403"
	t_is "$(code $P "http://$C/allowed-wildcardtest")" 200 "c18 $P: GET /allowed-wildcardtest 200"
	t_is "$(code $P -H 'x-test-header: match' "http://$C/headers")" 200 "c18 $P: /headers, x-test-header match 200"
	t_is "$(code $P -H 'x-test-header: do-not-match' "http://$C/headers")" 403 "c18 $P: /headers, do-not-match 403"
done
case_end

# ztunnel-policies.yaml: the workload halves (given to ztunnel, never to the waypoint).
CASES=$((CASES + 1))
CASE_NAME=ztunnel-policies
CASE_FAIL=$T_FAILED
t_is "$(code h1 "http://$(k8s_vip l4-allow)/")" 200 "ztunnel: a -> l4-allow connects (policy-l4-allow)"
t_is "$(code h1 "http://$(k8s_vip l4-deny)/")" 000 "ztunnel: a -> l4-deny is reset (policy-l4-deny)"
t_is "$(code h1 "http://$(k8s_vip l4-l7)/")" 000 "ztunnel: a -> l4-l7 denied (an ALLOW with L7 attributes, no waypoint)"
t_is "$(code h1 "http://$(k8s_vip d)/allowed")" 200 "ztunnel: the waypoint still reaches d (deny-policy-d has only L7 attributes: no effect)"
t_is "$(code h1 "http://$C/allowed")" 200 "ztunnel: the waypoint reaches c (policy-c allows only it)"
case_end

t_diag "Istio cases passing: $PASSED of $CASES${FAILED_CASES:+ (failing:$FAILED_CASES)}"
t_ok "$([ "$PASSED" = "$CASES" ]; echo $?)" "every Istio case passes ($PASSED of $CASES)"
t_done
