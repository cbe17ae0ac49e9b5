#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# waypoint: Gateway API HTTPRoute and GRPCRoute attached to a Service (GAMMA), over HTTP/1.1
# and HTTP/2. The routes are written here in our own words after the mesh conformance tests
# of kubernetes-sigs/gateway-api conformance/tests/mesh/ (each case names its source), and
# checked as those tests check them: the backend that answers, the request it saw, response
# fields, redirects' status and Location. Then Istio's precedence: an HTTPRoute for a service
# wins over its VirtualService. Applications: tests/data/l7/gamma-echo.yaml (a consumer, the
# "echo" Service in front of echo-v1 and echo-v2).
#
#   n1, n2: consumer, echo-v1, echo-v2      n3: the waypoint
#   consumer --echo VIP:80--> ztunnel ==HBONE==> waypoint ==HBONE==> echo-v1 / echo-v2
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
command -v curl >/dev/null || t_fatal "curl not installed"
curl --version | grep -q HTTP2 || t_fatal "curl without HTTP/2"

k8s_init 3 2
k8s_apply tests/data/l7/gamma-echo.yaml
k8s_waypoint
k8s_start
E=http://$(k8s_vip echo):80
CASE=$K8S_DIR/case.yaml
call() {
	local p=$1
	shift
	if [ "$p" = h2 ]; then k8s_curl consumer -m 10 --http2-prior-knowledge "$@"; else k8s_curl consumer -m 10 "$@"; fi
}
backend() { call "$@" | sed -n 's/^pod=//p'; }
route() { # route: an HTTPRoute (from stdin) attached to the echo Service
	cat >"$CASE"
	k8s_routes "$CASE"
}
PARENT='parentRefs: [{group: "", kind: Service, name: echo, port: 80}]'

# mesh/httproute-matching (MeshHTTPRouteMatching)
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matching}
spec:
  $PARENT
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
YAML
for P in h1 h2; do
	t_is "$(backend $P "$E/")" echo-v1-0 "$P: matching: / -> v1"
	t_is "$(backend $P "$E/example")" echo-v1-0 "$P: matching: /example -> v1"
	t_is "$(backend $P -H 'Version: one' "$E/")" echo-v1-0 "$P: matching: version one -> v1"
	t_is "$(backend $P "$E/v2")" echo-v2-0 "$P: matching: /v2 -> v2"
	t_is "$(backend $P "$E/v2/example")" echo-v2-0 "$P: matching: /v2/example -> v2"
	t_is "$(backend $P -H 'Version: two' "$E/")" echo-v2-0 "$P: matching: version two -> v2"
	t_is "$(backend $P "$E/v2/")" echo-v2-0 "$P: matching: /v2/ -> v2"
	t_is "$(backend $P "$E/v2example")" echo-v1-0 "$P: matching: /v2example is not in the /v2 segment"
	t_is "$(backend $P "$E/foo/v2/example")" echo-v1-0 "$P: matching: /foo/v2/example -> v1"
done

# mesh/httproute-query-param-matching (MeshHTTPRouteQueryParamMatching), and method matching
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: query}
spec:
  $PARENT
  rules:
  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /m}}]
    backendRefs: [{name: echo-v1, port: 8080}]
YAML
for P in h1 h2; do
	t_is "$(backend $P "$E/?animal=whale")" echo-v1-0 "$P: query animal=whale -> v1"
	t_is "$(backend $P "$E/?animal=dolphin")" echo-v2-0 "$P: query animal=dolphin -> v2"
	t_is "$(call $P -o /dev/null -w '%{http_code}' "$E/?animal=shark")" 404 "$P: query animal=shark: no route, 404"
	t_is "$(backend $P -X POST "$E/m")" echo-v2-0 "$P: method POST -> v2 (a method match ranks first)"
	t_is "$(backend $P "$E/m")" echo-v1-0 "$P: method GET -> v1"
done

# mesh/httproute-request-header-modifier, and a ResponseHeaderModifier
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: headers}
spec:
  $PARENT
  rules:
  - matches: [{path: {value: /mod}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: add-appends-values}]
        remove: [X-Header-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Resp-Set, value: from-route}]
        remove: [X-Pod]
    backendRefs: [{name: echo-v1, port: 8080}]
YAML
for P in h1 h2; do
	out=$(call $P -D "$K8S_DIR/h.$P" -H 'X-Header-Set: some-other-value' -H 'X-Header-Add: existing' -H 'X-Header-Remove: val' "$E/mod")
	resp=$(tr -d '\r' <"$K8S_DIR/h.$P")
	t_like "$out" "header=x-header-set: set-overwrites-values" "$P: RequestHeaderModifier set overwrites"
	t_is "$(grep -c '^header=x-header-add: ' <<<"$out")" 2 "$P: add appends (two fields)"
	t_ok "$(grep -qi 'x-header-remove' <<<"$out"; [ $? = 1 ]; echo $?)" "$P: remove"
	t_like "$resp" "x-resp-set: from-route" "$P: ResponseHeaderModifier set"
	t_ok "$(grep -qi '^x-pod:' <<<"$resp"; [ $? = 1 ]; echo $?)" "$P: ResponseHeaderModifier remove"
done

# mesh/httproute-redirect-{scheme,host-and-status,path,port}, httproute-30{3,7,8}-redirect
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: redirects}
spec:
  $PARENT
  rules:
  - matches: [{path: {value: /scheme}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
  - matches: [{path: {value: /host-and-status}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, statusCode: 301}}]
  - matches: [{path: {value: /full}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
  - matches: [{path: {value: /prefix}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /two}}}]
  - matches: [{path: {value: /port}}]
    filters: [{type: RequestRedirect, requestRedirect: {port: 8083}}]
  - matches: [{path: {value: /r303}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 303}}]
  - matches: [{path: {value: /r307}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]
  - matches: [{path: {value: /r308}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 308}}]
YAML
loc() { call "$1" -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: echo' "${@:2}"; }
for P in h1 h2; do
	t_is "$(loc $P "$E/scheme")" "302 https://echo/scheme" "$P: redirect scheme https (302 by default, the scheme's port)"
	t_is "$(loc $P "$E/host-and-status")" "301 http://example.org/host-and-status" "$P: redirect hostname, 301"
	t_is "$(loc $P "$E/full/x")" "302 http://echo/one" "$P: redirect ReplaceFullPath"
	t_is "$(loc $P "$E/prefix/x")" "302 http://echo/two/x" "$P: redirect ReplacePrefixMatch"
	t_is "$(loc $P "$E/port")" "302 http://echo:8083/port" "$P: redirect port 8083"
	t_is "$(loc $P "$E/r303")" "303 http://echo/r303" "$P: redirect 303"
	t_is "$(loc $P "$E/r307")" "307 http://echo/r307" "$P: redirect 307"
	t_is "$(loc $P "$E/r308")" "308 http://echo/r308" "$P: redirect 308"
done

# mesh/httproute-rewrite-path (MeshHTTPRouteRewritePath), and a hostname rewrite
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rewrite}
spec:
  $PARENT
  rules:
  - matches: [{path: {value: /prefix/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {value: /strip-prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {value: /full/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {value: /host}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example}}]
    backendRefs: [{name: echo-v1, port: 8080}]
YAML
for P in h1 h2; do
	t_like "$(call $P "$E/prefix/one/two")" "request=GET /one/two " "$P: rewrite /prefix/one/two -> /one/two"
	t_like "$(call $P "$E/strip-prefix/three")" "request=GET /three " "$P: rewrite /strip-prefix/three -> /three"
	t_like "$(call $P "$E/strip-prefix")" "request=GET / " "$P: rewrite /strip-prefix -> /"
	t_like "$(call $P "$E/full/one/two")" "request=GET /one " "$P: rewrite ReplaceFullPath -> /one"
	t_like "$(call $P "$E/host")" "header=host: rewritten.example" "$P: rewrite hostname"
done

# mesh/httproute-weight (MeshHTTPRouteWeight): 70/30 over 100 requests (binomial, ~5 sd)
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: weight}
spec:
  $PARENT
  rules:
  - backendRefs: [{name: echo-v1, port: 8080, weight: 70}, {name: echo-v2, port: 8080, weight: 30}]
YAML
res=$(for i in $(seq 100); do backend h1 "$E/w"; done)
v1=$(grep -c echo-v1-0 <<<"$res")
t_ok "$([ "$v1" -ge 47 ] && [ "$v1" -le 93 ] && [ "$(wc -l <<<"$res")" = 100 ]; echo $?)" "weights 70/30: v1 $v1 of 100 (47..93)"

# timeouts.request (504 "upstream request timeout"), RequestMirror, no backend: 500
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: misc}
spec:
  $PARENT
  rules:
  - matches: [{path: {value: /slow}}]
    timeouts: {request: 500ms}
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {value: /mirror}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo-v2, port: 8080}}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {value: /none}}]
    backendRefs: [{name: echo-v1, port: 8080, weight: 0}]
YAML
V2LOG=$K8S_DIR/echo-$(k8s_pod echo-v2).log
for P in h1 h2; do
	t_is "$(call $P -o /dev/null -w '%{http_code}' -H 'x-echo-delay: 3000' "$E/slow")" 504 "$P: timeouts.request 500ms: 504"
	t_is "$(backend $P "$E/mirror/$P")" echo-v1-0 "$P: RequestMirror: answered by echo-v1"
	for i in $(seq 30); do grep -q "mirror/$P" "$V2LOG" && break; sleep 0.1; done
	t_like "$(grep "mirror/$P" "$V2LOG")" "host=.*-shadow" "$P: ... and echo-v2 got the copy"
	t_is "$(call $P -o /dev/null -w '%{http_code}' "$E/none")" 500 "$P: no backend with weight: 500"
done

# mesh/grpcroute-request-header-modifier: a GRPCRoute on /Service/Method (h2)
route <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc}
spec:
  $PARENT
  rules:
  - matches: [{method: {service: grpc.Echo, method: Say}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-grpc-route, value: say}]}
    backendRefs: [{name: echo-v2, port: 8080}]
YAML
out=$(call h2 -X POST -H 'content-type: application/grpc' "$E/grpc.Echo/Say")
t_like "$out" "^pod=echo-v2-0" "h2: GRPCRoute method match routes /grpc.Echo/Say"
t_like "$out" "header=x-grpc-route: say" "h2: GRPCRoute RequestHeaderModifier"
t_like "$(call h2 -s -D - -o /dev/null -X POST -H 'content-type: application/grpc' "$E/grpc.Echo/Other" | tr -d '\r')" "grpc-status: 12" "h2: no GRPCRoute rule: gRPC UNIMPLEMENTED (Envoy's 404)"

# Istio's precedence: the HTTPRoute wins over a VirtualService for the same service.
cat >"$CASE" <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http: [{route: [{destination: {host: echo-v2, port: {number: 8080}}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo}
spec:
  $PARENT
  rules: [{backendRefs: [{name: echo-v1, port: 8080}]}]
YAML
k8s_routes "$CASE"
t_is "$(for i in 1 2 3 4 5; do backend h1 "$E/p"; done | sort -u | tr '\n' ' ')" "echo-v1-0 " "an HTTPRoute takes precedence over the service's VirtualService"
t_done
