#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# waypoint: Istio's VirtualService semantics, from Istio's own expectations, over HTTP/1.1 and
# HTTP/2 (h2c with prior knowledge). Each case's routes are written here in our own words
# after a case of istio/istio tests/integration/pilot/common/routing.go (virtualServiceCases)
# or tests/integration/ambient/baseline_test.go, named in a comment at the case, and checked
# as Istio checks it (status, Location, the request the endpoint saw, response fields). The
# applications are Istio's echo apps in our manifests (tests/data/l7/istio-echo.yaml): a is
# the client, b (v1, v2), c and h are echo services on ports 80 and 85; the waypoint is
# attached by its Gateway and the namespace's istio.io/use-waypoint label.
#
#   n1, n2: the echo pods (a, b-v1, b-v2, c, h, ...)   n3: the waypoint
#   a --VIP:80/85--> ztunnel ==HBONE==> waypoint ==HBONE==> ztunnel --> echo pod
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
command -v curl >/dev/null || t_fatal "curl not installed"
curl --version | grep -q HTTP2 || t_fatal "curl without HTTP/2"

k8s_init 3 2
k8s_apply tests/data/l7/istio-echo.yaml
k8s_waypoint
k8s_start
B=$(k8s_vip b)
C=$(k8s_vip c)
H=$(k8s_vip h)
CASE=$K8S_DIR/case.yaml

# call PROTO CURL-ARGS...: curl from a, over HTTP/1.1 (h1) or h2c with prior knowledge (h2).
call() {
	local p=$1
	shift
	if [ "$p" = h2 ]; then k8s_curl a -m 10 --http2-prior-knowledge "$@"; else k8s_curl a -m 10 "$@"; fi
}
code() { call "$1" -o /dev/null -w '%{http_code}' "${@:2}"; }
vs() { # vs HOST-OF-SERVICE: a VirtualService from stdin applied to the waypoint
	cat >"$CASE"
	k8s_routes "$CASE"
}

# routing.go "added header", "set header", "set authority header"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - route: [{destination: {host: b}}]
    headers:
      request:
        add: {istio-custom-header: user-defined-value}
        set: {x-custom: some-value, ':authority': my-custom-authority}
YAML
for P in h1 h2; do
	out=$(call $P "http://$B/added")
	t_like "$out" "header=istio-custom-header: user-defined-value" "$P: headers.request.add reaches the endpoint"
	t_like "$out" "header=x-custom: some-value" "$P: headers.request.set"
	t_like "$out" "header=host: my-custom-authority" "$P: :authority set rewrites the authority"
done

# routing.go "set host header in destination", "set host header in route and destination"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{uri: {prefix: /dest}}]
    route:
    - destination: {host: b}
      headers: {request: {set: {Host: dest-authority}}}
  - match: [{uri: {prefix: /both}}]
    route:
    - destination: {host: b}
      headers: {request: {set: {Host: dest-authority}}}
    headers: {request: {set: {':authority': route-authority}}}
  - match: [{uri: {prefix: /multi}}]
    route:
    - destination: {host: b}
      headers: {request: {set: {Host: dest-authority}}}
      weight: 50
    - destination: {host: b}
      weight: 50
    headers: {request: {set: {':authority': route-authority}}}
  - route:
    - destination: {host: b}
      headers: {request: {set: {Host: dest-authority}}}
      weight: 50
    - destination: {host: b}
      headers: {request: {set: {Host: dest-authority}}}
      weight: 50
YAML
for P in h1 h2; do
	t_like "$(call $P "http://$B/dest")" "header=host: dest-authority" "$P: Host set in the destination"
	t_like "$(call $P "http://$B/both")" "header=host: route-authority" "$P: the route's :authority wins over the destination's"
	t_like "$(call $P "http://$B/multi")" "header=host: route-authority" "$P: ... with several destinations too"
	t_like "$(call $P "http://$B/other")" "header=host: dest-authority" "$P: every destination sets Host"
done

# routing.go "redirect", "redirect prefix_rewrite"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{uri: {exact: /foo}}]
    redirect: {uri: /new/path}
  - match: [{uri: {prefix: /pre/}}]
    redirect: {prefixRewrite: /new/}
  - match: [{uri: {prefix: /new/}}]
    route: [{destination: {host: b}}]
YAML
# follow P URL: the redirect's Location requested in turn (curl 7.88's -L does not reuse an
# h2c prior-knowledge connection for it), printing "STATUS LOCATION" then the answer.
follow() {
	local l
	l=$(call "$1" -s -o /dev/null -w '%{http_code} %{redirect_url}' "$2")
	echo "$l"
	call "$1" -w 'final=%{http_code}' "${l#* }"
}
for P in h1 h2; do
	out=$(follow $P "http://$B/foo?key=value")
	t_like "$out" "^301 http://$B/new/path\?key=value" "$P: redirect uri: 301 to /new/path?key=value"
	t_like "$out" "request=GET /new/path\?key=value " "$P: followed, the endpoint saw /new/path?key=value"
	t_like "$out" "final=200" "$P: ... answered 200"
	t_like "$(follow $P "http://$B/pre/bar")" "request=GET /new/bar " "$P: redirect prefixRewrite /pre/ -> /new/"
done

# routing.go "redirect port and scheme", "redirect request port" (ports 80 and 85)
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{uri: {exact: /https}}]
    redirect: {derivePort: FROM_REQUEST_PORT, scheme: https}
  - match: [{uri: {exact: /foo}}]
    redirect: {derivePort: FROM_REQUEST_PORT}
YAML
loc() { call "$1" -s -o /dev/null -w '%{http_code} %{redirect_url}' "${@:2}"; }
for P in h1 h2; do
	t_is "$(loc $P -H 'Host: b' "http://$B:80/https")" "301 https://b:80/https" "$P: scheme https, request port 80 kept"
	t_is "$(loc $P -H 'Host: b' "http://$B:80/foo")" "301 http://b/foo" "$P: port 80, Host b: no :80"
	t_is "$(loc $P -H 'Host: b:80' "http://$B:80/foo")" "301 http://b:80/foo" "$P: port 80, Host b:80 kept"
	t_is "$(loc $P -H 'Host: b' "http://$B:85/foo")" "301 http://b:85/foo" "$P: port 85 added"
	t_is "$(loc $P -H 'Host: b:85' "http://$B:85/foo")" "301 http://b:85/foo" "$P: port 85, Host b:85"
done

# routing.go "weird header matches", "pseudo header matches", "rewrite uri", "rewrite authority"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{uri: {prefix: /weird}, headers: {"a!#$%&'*+-.^_`|~z": {exact: why}}}]
    route: [{destination: {host: b}}]
  - match: [{uri: {prefix: /pseudo}, headers: {':method': {exact: GET}}}]
    route: [{destination: {host: b}}]
  - match: [{uri: {exact: /foo}}]
    rewrite: {uri: /new/path}
    route: [{destination: {host: b}}]
  - match: [{uri: {exact: /auth}}]
    rewrite: {authority: new-authority}
    route: [{destination: {host: b}}]
  - match: [{uri: {prefix: /longrw/}}]
    rewrite: {uri: /r/}
    route: [{destination: {host: b}}]
YAML
tail=$(printf "%06000d" 0 | tr 0 p)
for P in h1 h2; do
	t_is "$(call $P "http://$B/longrw/$tail" | sed -n 's/^target_len=//p')" 6003 \
		"$P: a 6,000-byte path rewritten (prefix /longrw/ -> /r/) reaches the endpoint whole"
	t_is "$(code $P "http://$B/weird")" 404 "$P: weird header absent: no route, 404"
	t_is "$(code $P -H "a!#\$%&'*+-.^_\`|~z: why" "http://$B/weird")" 200 "$P: weird header present: 200"
	t_is "$(code $P -X POST "http://$B/pseudo")" 404 "$P: :method GET does not match a POST"
	t_is "$(code $P "http://$B/pseudo")" 200 "$P: :method GET matches a GET"
	t_like "$(call $P "http://$B/foo?key=value#hash")" "request=GET /new/path\?key=value " "$P: rewrite uri keeps the query"
	t_like "$(call $P "http://$B/auth")" "header=host: new-authority" "$P: rewrite authority"
done

# routing.go "cors"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - corsPolicy:
      allowOrigins: [{exact: cors.com}]
      allowMethods: [POST, GET]
      allowCredentials: false
      allowHeaders: [X-Foo-Bar, X-Foo-Baz]
      maxAge: 24h
    route: [{destination: {host: b}}]
YAML
for P in h1 h2; do
	out=$(call $P -s -D - -o /dev/null -X OPTIONS -H 'Origin: cors.com' -H 'Access-Control-Request-Method: DELETE' "http://$B/" | tr -d '\r')
	t_like "$out" "^HTTP/[0-9.]+ 200" "$P: cors preflight answered 200"
	t_like "$out" "access-control-allow-origin: cors.com" "$P: preflight allow-origin"
	t_like "$out" "access-control-allow-methods: POST,GET" "$P: preflight allow-methods"
	t_like "$out" "access-control-allow-headers: X-Foo-Bar,X-Foo-Baz" "$P: preflight allow-headers"
	t_like "$out" "access-control-max-age: 86400" "$P: preflight max-age"
	out=$(call $P -s -D - -o /dev/null -H 'Origin: cors.com' "http://$B/" | tr -d '\r')
	t_like "$out" "access-control-allow-origin: cors.com" "$P: GET with the origin: allow-origin on the answer"
	out=$(call $P -s -D - -o /dev/null "http://$B/" | tr -d '\r')
	t_ok "$(grep -qi access-control-allow-origin <<<"$out"; [ $? = 1 ]; echo $?)" "$P: GET without an origin: none"
done

# routing.go "retry conditions" (and, from Envoy's retry-on semantics: 503s retried)
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c}
spec:
  hosts: [c]
  http:
  - route: [{destination: {host: c}}]
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream,reset-before-request
      retryRemoteLocalities: true
YAML
for P in h1 h2; do
	t_is "$(code $P "http://$C/ok")" 200 "$P: retry conditions accepted, a call answers 200"
	t_is "$(code $P -H "x-echo-key: retry-$P" -H 'x-echo-fail: 2' "http://$C/r")" 200 "$P: two 503s retried (gateway-error), the third try answers"
done

# routing.go "fault abort", "fault abort gRPC", "catch all route short circuit the other routes"
vs <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{uri: {regex: '/grpc.*'}}]
    route: [{destination: {host: b}}]
    fault: {abort: {percentage: {value: 100}, grpcStatus: UNAVAILABLE}}
  - match: [{uri: {regex: '.*'}}]
    route: [{destination: {host: b}}]
    fault: {abort: {percentage: {value: 100}, httpStatus: 418}}
  - route: [{destination: {host: b}}]
YAML
for P in h1 h2; do
	t_is "$(code $P "http://$B/anything")" 418 "$P: the catch-all regex route comes first: 418"
done
out=$(call h2 -s -D - -o /dev/null -X POST -H 'content-type: application/grpc' -H 'te: trailers' "http://$B/grpc.Svc/M" | tr -d '\r')
t_like "$out" "grpc-status: 14" "h2: fault abort grpcStatus UNAVAILABLE: grpc-status 14"

# routing.go "without headers" (three policies, three requests each)
without() {
	vs <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b]
  http:
  - match: [{withoutHeaders: {end-user: $1}}]
    route: [{destination: {host: b}}]
    fault: {abort: {percentage: {value: 100}, httpStatus: 403}}
  - route: [{destination: {host: b}}]
YAML
}
without '{exact: jason}'
for P in h1 h2; do
	t_is "$(code $P -H 'end-user: jason' "http://$B/foo")" 200 "$P: withoutHeaders exact jason: jason 200"
	t_is "$(code $P -H 'end-user: not-jason' "http://$B/foo")" 403 "$P: ... another user 403"
	t_is "$(code $P "http://$B/foo")" 403 "$P: ... no header 403 (a missing header is matched as empty)"
done
without '{regex: "*"}'
for P in h1 h2; do
	t_is "$(code $P -H 'end-user: jason' "http://$B/foo")" 200 "$P: withoutHeaders regex '*' (present): jason 200"
	t_is "$(code $P -H 'end-user;' "http://$B/foo")" 200 "$P: ... present and empty 200"
	t_is "$(code $P "http://$B/foo")" 403 "$P: ... absent 403"
done
without '{regex: ".*"}'
for P in h1 h2; do
	t_is "$(code $P -H 'end-user: jason' "http://$B/foo")" 200 "$P: withoutHeaders regex .*: jason 200"
	t_is "$(code $P -H 'end-user;' "http://$B/foo")" 200 "$P: ... empty 200"
	t_is "$(code $P "http://$B/foo")" 200 "$P: ... absent 200"
done

# baseline_test.go TestTrafficSplit: header routing to subsets
cat >"$CASE" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: route}
spec:
  hosts: [b]
  http:
  - match: [{headers: {user: {exact: istio-custom-user}}}]
    route: [{destination: {host: b, subset: v2}}]
  - route: [{destination: {host: b, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: b
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
k8s_routes "$CASE"
for P in h1 h2; do
	t_is "$(for i in 1 2 3 4 5; do call $P "http://$B/split" | sed -n 's/^pod=//p'; done | sort -u | tr '\n' ' ')" "b-v1-0 " "$P: 5 calls without the header: all v1"
	t_is "$(for i in 1 2 3 4 5; do call $P -H 'user: istio-custom-user' "http://$B/split" | sed -n 's/^pod=//p'; done | sort -u | tr '\n' ' ')" "b-v2-0 " "$P: 5 calls as istio-custom-user: all v2"
done

# baseline_test.go TestAuthorizationL7: policies attached to the waypoint by targetRefs
cat >"$CASE" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-some}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules:
  - to: [{operation: {paths: [/allowed], methods: [GET]}}]
  - from: [{source: {principals: [cluster.local/ns/default/sa/a]}}]
    to: [{operation: {paths: [/allowed-identity], methods: [GET]}}]
  - from: [{source: {principals: [cluster.local/ns/default/sa/someone-else]}}]
    to: [{operation: {paths: [/denied-identity], methods: [GET]}}]
  - to: [{operation: {methods: [GET], paths: [/allowed-wildcard*]}}]
  - to: [{operation: {methods: [GET], paths: [/headers]}}]
    when: [{key: 'request.headers[x-test-header]', values: [match], notValues: [do-not-match]}]
  - to: [{operation: {methods: [POST]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-some}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: [/explicit-deny]}}]}]
YAML
k8s_routes "$CASE"
for P in h1 h2; do
	t_is "$(code $P "http://$C/deny")" 403 "$P: L7 authz: GET /deny 403"
	t_is "$(code $P "http://$C/allowed")" 200 "$P: GET /allowed 200"
	t_is "$(code $P "http://$C/denied-identity")" 403 "$P: GET /denied-identity 403"
	t_is "$(code $P "http://$C/allowed-identity")" 200 "$P: GET /allowed-identity 200"
	t_is "$(code $P -X POST "http://$C/explicit-deny")" 403 "$P: POST /explicit-deny 403 (DENY first)"
	t_is "$(code $P "http://$C/allowed-wildcardtest")" 200 "$P: GET /allowed-wildcard* 200"
	t_is "$(code $P -H 'x-test-header: match' "http://$C/headers")" 200 "$P: when header match 200"
	t_is "$(code $P -H 'x-test-header: do-not-match' "http://$C/headers")" 403 "$P: when header do-not-match 403"
done

# Istio's header operations for one destination (route_test.go's expectations): the route's
# and the destination's request and response operations, :authority from the route's set.
cat >"$CASE" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: h}
spec:
  hosts: [h]
  http:
  - route:
    - destination: {host: h}
      headers:
        request: {set: {x-d-set: d1, ':authority': d.example}, add: {x-d-add: d2}, remove: [x-d-remove]}
        response: {set: {x-d-resp: d3}, remove: [x-d-resp-remove]}
    headers:
      request: {set: {x-r-set: r1, ':authority': r.example}, add: {x-r-add: r2}, remove: [x-r-remove]}
      response: {set: {x-r-resp: r3}, add: {x-r-resp-add: r4}, remove: [x-r-resp-remove]}
YAML
k8s_routes "$CASE"
for P in h1 h2; do
	out=$(call $P -s -D "$K8S_DIR/hdr-$P" -H 'x-d-remove: 1' -H 'x-r-remove: 1' -H 'x-r-set: client' \
		-H 'x-echo-resp-header: x-d-resp-remove: 1' -H 'x-echo-resp-header: x-r-resp-remove: 1' \
		-H 'x-echo-resp-header: x-r-resp: app' "http://$H/ops")
	resp=$(tr -d '\r' <"$K8S_DIR/hdr-$P")
	t_like "$out" "header=host: r.example" "$P: the route's :authority wins"
	t_like "$out" "header=x-r-set: r1" "$P: the route's set replaces the client's value"
	t_like "$out" "header=x-r-add: r2" "$P: the route's add"
	t_like "$out" "header=x-d-set: d1" "$P: the destination's set"
	t_like "$out" "header=x-d-add: d2" "$P: the destination's add"
	t_ok "$(grep -q 'x-d-remove\|x-r-remove' <<<"$out"; [ $? = 1 ]; echo $?)" "$P: both removes"
	t_like "$resp" "x-r-resp: r3" "$P: response set (the app's value replaced)"
	t_ok "$(grep -q 'x-r-resp: app' <<<"$resp"; [ $? = 1 ]; echo $?)" "$P: ... and the app's value gone"
	t_like "$resp" "x-r-resp-add: r4" "$P: response add"
	t_like "$resp" "x-d-resp: d3" "$P: the destination's response set"
	t_ok "$(grep -q 'resp-remove' <<<"$resp"; [ $? = 1 ]; echo $?)" "$P: response removes"
done
t_done
