#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One observability layer for both daemons (lib/obs): Istio's standard labels on the ztunnels'
# istio_tcp_* and the waypoint's istio_requests_*, checked against the list taken from Istio's
# documentation (tests/data/istio/standard-metrics-labels.txt); process_* and the
# certificate-expiry gauge; the Prometheus content type; readiness answering while 100 idle
# sockets sit on the metrics port; /logging reading and changing levels at run time; logfmt and
# JSON lines; bad input (unknown level or scope, bad --log-format, malformed and slowloris
# admin requests) refused with a clear error while the daemons keep serving; one version.
#
#   n1a 198.18.1.11 client (HBONE) --+                            +-- n2a 198.18.2.11 waypoint
#   n1b 198.18.1.12 reviews-v3 ------+ n1 ====== wire0 ====== n2 +   (15008; admin 15000,
#        ztunnel n1 (logfmt)                 ztunnel n2 (--log-format json)  metrics 15020,
#                                                                     ready 15021; JSON logs)
#   service reviews.default.svc.cluster.local VIP 198.19.0.10:9080 -> n1b:9080, waypoint n2a.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/harness.sh
BUILD=${BUILD:-build}
. tests/lib/samples.sh
SAMPLES=$(samples_dir 2>&1) || t_fatal "$SAMPLES"
SAMPLES=$SAMPLES/bookinfo/networking
HECHO=$BUILD/tests/tools/zm-httpecho
ZT=$BUILD/bin/ztunnel
WP=$BUILD/bin/waypoint
ZCTL=$BUILD/bin/zmeshctl
ZCA=$BUILD/bin/zmesh-ca
LABELS=tests/data/istio/standard-metrics-labels.txt
for b in "$HECHO" "$ZT" "$WP" "$ZCTL" "$ZCA"; do [ -x "$b" ] || t_fatal "$b not built (run make)"; done
why=$(samples_need "$SAMPLES" virtual-service-reviews-v3.yaml 2>&1) || t_fatal "$why"
for c in curl python3; do command -v $c >/dev/null || t_fatal "$c not installed"; done

h_init
h_topology 2 2
VIP=198.19.0.10
CFG=$H_STATE/mesh.yaml
cat >"$CFG" <<YAML
workloads:
- {uid: Kubernetes//Pod/default/client, name: client, namespace: default, serviceAccount: sleep, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1a)"], labels: {app: sleep}}
- {uid: Kubernetes//Pod/default/reviews-v3, name: reviews-v3, namespace: default, serviceAccount: bookinfo-reviews, protocol: HBONE, node: n1, workloadIps: ["$(h_ip4 n1b)"], services: {default/reviews.default.svc.cluster.local: {9080: 9080}}, labels: {app: reviews, version: v3}}
- {uid: Kubernetes//Pod/wp/waypoint, name: waypoint, namespace: wp, serviceAccount: waypoint, protocol: TCP, node: n2, workloadIps: ["$(h_ip4 n2a)"]}
services:
- {name: reviews, namespace: default, hostname: reviews.default.svc.cluster.local, vips: ["/$VIP"], ports: {9080: 9080}, waypoint: {destination: "/$(h_ip4 n2a)", hboneMtlsPort: 15008}}
YAML
"$ZCTL" ca init --dir "$H_STATE/ca" >/dev/null || t_fatal "zmeshctl ca init failed"
for n in n1 n2; do
	fmt=logfmt
	[ $n = n2 ] && fmt=json
	"$ZCTL" --netns "$(h_ns $n)" --pin-dir "$(h_pin_dir $n)" datapath load --uplink wire0 \
		>/dev/null || t_fatal "datapath load on $n failed"
	h_bg $n "$ZT" --config "$CFG" --node $n --netns "/var/run/netns/$(h_ns $n)" \
		--pin-dir "$(h_pin_dir $n)" --ca-dir "$H_STATE/ca" --log-format $fmt \
		2>"$H_STATE/zt-$n.log"
done
h_bg n2a "$WP" --config "$SAMPLES/virtual-service-reviews-v3.yaml" \
	--config "$SAMPLES/destination-rule-reviews.yaml" \
	--mesh-config "$CFG" --identity spiffe://cluster.local/ns/wp/sa/waypoint \
	--ca-dir "$H_STATE/ca" --netns "/var/run/netns/$(h_ns n2a)" --log-format json \
	2>"$H_STATE/wp.log"
WP_PID=$H_LAST_PID
h_bg n1b "$HECHO" --port 9080 --name reviews-v3
ready() { h_exec "$1" curl -s -m 1 http://127.0.0.1:15021/healthz/ready; }
for i in $(seq 100); do
	[ "$(ready n1)" = ready ] && [ "$(ready n2)" = ready ] && [ "$(ready n2a)" = ready ] && break
	sleep 0.1
done
[ "$(ready n2a)" = ready ] || t_fatal "waypoint not ready: $(cat "$H_STATE/wp.log")"
[ "$(ready n1)" = ready ] || t_fatal "ztunnel n1 not ready: $(cat "$H_STATE/zt-n1.log")"
h_wait_port n1b 9080 || t_fatal "http echo in n1b did not start"
sleep 0.5 # enrollment happens right after ztunnel readiness

for i in $(seq 5); do h_exec n1a curl -s -m 5 -o /dev/null "http://$VIP:9080/r/$i"; done
t_like "$(h_exec n1a curl -s -m 5 "http://$VIP:9080/once")" "pod=reviews-v3" \
	"traffic flows client -> ztunnel n1 -> waypoint -> ztunnel n1 -> reviews-v3"

# ---- Istio's label set, against the documented list ----
want() { # want SET...: the label names of those sets, sorted
	awk -v sets=" $* " '!/^#/ && NF == 2 && index(sets, " " $1 " ") { print $2 }' "$LABELS" |
		sort
}
have() { # have METRICS NAME [MATCH]: the label names of NAME's first series (with MATCH)
	grep "^$2{" <<<"$1" | grep -m1 -- "${3:-}" | sed 's/^[^{]*{//; s/}[^}]*$//' |
		grep -o '[a-z_]*="' | tr -d '="' | sort
}
check_labels() { # check_labels METRICS NAME SETS WHO [MATCH [EXTRA]]
	local got exp
	got=$(have "$1" "$2" "${5:-}")
	exp=$({ want $3; [ -z "${6:-}" ] || echo "$6"; } | sort)
	t_is "$(diff <(echo "$exp") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')" "" \
		"$4: $2 carries exactly Istio's $(echo "$exp" | wc -l) labels ($3)"
}
m1=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)
m2=$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics)
mw=$(h_exec n2a curl -s -m 2 http://127.0.0.1:15020/metrics)
t_is "$(want common | wc -l)" 23 "the documented list: 23 labels on every traffic metric"
for m in istio_tcp_connections_opened_total istio_tcp_connections_closed_total \
	istio_tcp_sent_bytes_total istio_tcp_received_bytes_total; do
	check_labels "$m1" $m common "ztunnel n1 (reporter source)"
done
# The waypoint's tunnels to reviews-v3 arrive at ztunnel n1's 15008: the inbound series.
check_labels "$m1" istio_tcp_received_bytes_total common "ztunnel n1 (reporter destination)" \
	'reporter="destination"'
for m in istio_requests_total istio_request_duration_milliseconds_count \
	istio_request_bytes_sum istio_response_bytes_count; do
	check_labels "$mw" $m "common http" "waypoint"
done
check_labels "$mw" istio_request_duration_milliseconds_bucket "common http" "waypoint" "" le
t_like "$m1" 'istio_tcp_connections_opened_total\{reporter="source",source_workload="client",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_app="sleep",source_version="latest",source_canonical_service="sleep",source_canonical_revision="latest",source_cluster="Kubernetes",destination_workload="waypoint",.*destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",.*connection_security_policy="mutual_tls",request_protocol="tcp",response_flags="-"\} [1-9]' \
	"ztunnel: canonical service from the app label, revision latest, cluster Kubernetes, the service named"
t_like "$mw" 'istio_requests_total\{reporter="waypoint",source_workload="client",.*destination_workload="reviews-v3",destination_workload_namespace="default",destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",destination_app="reviews",destination_version="v3",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_canonical_service="reviews",destination_canonical_revision="v3",destination_cluster="Kubernetes",.*request_protocol="http",response_code="200",response_flags="-"\} [1-9]' \
	"waypoint: app, version and canonical revision from the pod's labels"
for who in n1 n2a; do
	m=$m1
	[ $who = n2a ] && m=$mw
	for p in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
		process_max_fds process_start_time_seconds; do
		t_like "$(tr '\n' '~' <<<"$m")" "# TYPE $p (counter|gauge)~$p [0-9.e+]+~" "$who: $p"
	done
	t_like "$m" "istio_cert_expiry_seconds\{identity=\"spiffe://cluster.local/ns/[a-z]+/sa/[a-z]+\"\} [0-9.e+]+" \
		"$who: istio_cert_expiry_seconds per identity"
	t_like "$m" "istio_build\{component=\"(ztunnel|waypoint)\",tag=\"[0-9]" "$who: istio_build carries the version"
done
t_like "$(tr '\n' '~' <<<"$m1")" "# HELP istio_tcp_sent_bytes_total [^~]+~# TYPE istio_tcp_sent_bytes_total counter~" \
	"HELP and TYPE lines"
ct=$(h_exec n1 curl -s -m 2 -o /dev/null -w '%{content_type}' http://127.0.0.1:15020/stats/prometheus)
t_is "$ct" "text/plain; version=0.0.4; charset=utf-8" "Prometheus text format content type"

# ---- readiness while 100 idle sockets sit on the metrics port ----
idle() { # idle NS: 100 connections to 15020 that send nothing, held 4 s
	h_bg "$1" python3 -c '
import socket, time
s = [socket.create_connection(("127.0.0.1", 15020)) for _ in range(100)]
print("held", len(s), flush=True)
time.sleep(4)'
}
for who in n1 n2a; do
	idle $who
	sleep 0.5
	r=$(h_exec $who curl -s -m 3 -o /dev/null -w '%{http_code} %{time_total}' \
		http://127.0.0.1:15021/healthz/ready)
	t_diag "$who: readiness with 100 idle metrics clients: $r (code, seconds)"
	t_like "$r" "^200 " "$who: readiness answers 200 while 100 idle sockets sit on 15020"
	# Kubelet's probe timeout is 1 s; the answer takes milliseconds (generous bound: noise).
	t_ok "$(awk -v t="${r#* }" 'BEGIN { exit !(t < 1.0) }'; echo $?)" \
		"$who: ... well within 1 s (${r#* } s)"
	t_like "$(h_exec $who curl -s -m 2 http://127.0.0.1:15020/metrics | head -1)" "^# HELP" \
		"$who: metrics still served meanwhile"
done

# ---- /logging ----
adm() { # adm NS METHOD PATH: "CODE body" from the admin port
	h_exec "$1" curl -s -m 3 -X "$2" -w '\n%{http_code}' "http://127.0.0.1:15000$3" |
		tr '\n' ' '
}
t_like "$(adm n1 GET /logging)" "ztunnel: info access: info hbone: info .* 200" \
	"ztunnel /logging lists every scope's level"
t_like "$(adm n2a GET /logging)" "waypoint: info access: info .*http: info .* 200" \
	"waypoint /logging on its admin port 15000"
t_like "$(adm n1 POST '/logging?level=nosuch:debug')" 'unknown scope "nosuch" .*400' \
	"unknown scope: 400 naming it"
t_like "$(adm n1 POST '/logging?level=loud')" 'unknown level "loud" .*400' \
	"unknown level: 400 naming it"
t_like "$(adm n1 GET '/logging?level=debug')" "needs POST .*405" "changing a level needs POST"
t_like "$(adm n1 POST '/logging?lvl=debug')" "unknown parameter .*400" "unknown parameter: 400"
dbg() { grep -c 'level=debug' "$H_STATE/zt-n1.log"; }
d0=$(dbg)
h_exec n1a curl -s -m 5 -o /dev/null "http://$VIP:9080/quiet"
t_is "$(dbg)" "$d0" "at info: no debug lines"
t_like "$(adm n1 POST '/logging?level=debug')" "ztunnel: debug access: debug .* 200" \
	"POST /logging?level=debug sets every scope"
h_exec n1a curl -s -m 5 -o /dev/null "http://$VIP:9080/loud"
ready n1 >/dev/null
sleep 0.2
t_like "$(grep 'level=debug' "$H_STATE/zt-n1.log")" 'scope=ztunnel msg="route 198\.18\.1\.11:[0-9]+ -> 198\.19\.0\.10:9080' \
	"at debug: the route decision is logged"
t_like "$(grep 'level=debug' "$H_STATE/zt-n1.log")" 'scope=admin msg="GET /healthz/ready: 200' \
	"at debug: admin requests are logged"
t_like "$(adm n1 POST '/logging?level=info,hbone:debug')" "hbone: debug .*200" "per-scope levels"
t_like "$(adm n1 POST '/logging?level=info')" "hbone: info .*200" "back to info"
d1=$(dbg)
h_exec n1a curl -s -m 5 -o /dev/null "http://$VIP:9080/quiet-again"
t_is "$(dbg)" "$d1" "back at info: no debug lines"
t_like "$(adm n2a POST '/logging?level=http:debug')" "http: debug .*200" "waypoint: http:debug"
h_exec n1a curl -s -m 5 -o /dev/null "http://$VIP:9080/wp-debug"
sleep 0.2
t_like "$(grep '"level":"debug"' "$H_STATE/wp.log")" '"scope":"http","msg":"GET /wp-debug from cluster.local/ns/default/sa/sleep: route' \
	"waypoint at http:debug logs its route choice (JSON)"

# ---- log formats: every line ----
t_is "$(grep -cv '^time=[0-9T:.-]*Z level=[a-z]* scope=[a-z-]* msg=' "$H_STATE/zt-n1.log")" 0 \
	"ztunnel n1: every line is logfmt with an RFC 3339 time ($(wc -l <"$H_STATE/zt-n1.log") lines)"
for f in zt-n2 wp; do
	bad=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    n += not ("time" in o and o["time"].endswith("Z") and "level" in o and "scope" in o and "msg" in o)
print(n)' "$H_STATE/$f.log" 2>&1)
	t_is "$bad" 0 "$f: every line is a JSON object with time, level, scope, msg"
done
t_like "$(grep '"scope":"access"' "$H_STATE/wp.log" | head -1)" '"msg":"http","src.principal":"cluster.local/ns/default/sa/sleep"' \
	"waypoint JSON access record with its fields"

# ---- bad input on the admin ports: answered, never hanging, the daemon keeps serving ----
raw() { # raw NS PORT DATA: the first line of the answer
	h_exec "$1" bash -c "exec 3<>/dev/tcp/127.0.0.1/$2; printf '$3' >&3; timeout 7 head -1 <&3"
}
for who in n1 n2a; do
	t_like "$(raw $who 15000 'garbage\r\n\r\n')" "400 Bad Request" "$who: garbage: 400"
	t_like "$(raw $who 15000 '\x16\x03\x01\x02\x00\x01\r\n\r\n')" "400 Bad Request" "$who: TLS on the admin port: 400"
	t_like "$(raw $who 15021 'GET /healthz/ready HTTP/2.0\r\n\r\n')" "505" "$who: HTTP/2.0 request line: 505"
	t_like "$(raw $who 15020 'DELETE /metrics HTTP/1.1\r\n\r\n')" "405 Method Not Allowed" "$who: DELETE /metrics: 405"
	t_like "$(raw $who 15020 'GET /nope HTTP/1.1\r\n\r\n')" "404 Not Found" "$who: unknown path: 404"
	t_like "$(raw $who 15020 "GET /metrics HTTP/1.1\\\\r\\\\nX: $(head -c 9000 /dev/zero | tr '\0' a)\\\\r\\\\n\\\\r\\\\n")" \
		"431" "$who: a 9 KB header: 431"
	# Slowloris: half a request line, then nothing; readiness meanwhile, a 408 at its deadline.
	h_bg $who bash -c "exec 3<>/dev/tcp/127.0.0.1/15021; printf 'GET /healthz/re' >&3; timeout 8 head -1 <&3 >'$H_STATE/slow-$who'"
	sleep 0.3
	t_is "$(ready $who)" ready "$who: readiness answered while a slowloris client holds 15021"
done
sleep 6
for who in n1 n2a; do
	t_like "$(cat "$H_STATE/slow-$who")" "408 Request Timeout" "$who: the slowloris client got a 408 at its 5 s deadline"
	t_is "$(ready $who)" ready "$who: still ready after all that"
done
t_run "waypoint still running" -- kill -0 "$WP_PID"
t_like "$(h_exec n1a curl -s -m 5 "http://$VIP:9080/after")" "pod=reviews-v3" "traffic still flows"

# ---- bad command lines: the error names the value ----
out=$("$ZT" --config "$CFG" --node n1 --log-format xml 2>&1)
t_is "$?" 2 "ztunnel --log-format xml: usage error (exit 2)"
t_like "$out" '--log-format: "xml" is not logfmt or json' "... naming the value"
t_is "$(wc -l <<<"$out")" 3 "... and a short usage, not the manual"
t_like "$("$ZT" --config "$CFG" --node n1 --workers abc 2>&1)" '--workers: "abc" is not a whole number from 1 to 64' \
	"ztunnel --workers abc names the value"
t_like "$("$ZT" --config "$CFG" --node n1 --log-level nosuch:info 2>&1)" 'log-level: unknown scope "nosuch"' \
	"ztunnel --log-level with an unknown scope"
t_like "$("$WP" --mesh-config "$CFG" --check --log-format yaml 2>&1)" '--log-format: "yaml"' \
	"waypoint --log-format yaml names the value"
t_like "$("$WP" --mesh-config "$CFG" --check --port 0x10 2>&1)" '--port: "0x10" is not a whole number' \
	"waypoint --port 0x10 names the value"
t_like "$("$ZCA" --dir x --config y --max-conns many 2>&1)" '--max-conns: "many"' \
	"zmesh-ca --max-conns many names the value"
t_like "$("$ZCA" --dir x --config y --bogus 2>&1)" 'unknown option --bogus' "zmesh-ca names an unknown option"

# ---- one version ----
v=$("$ZT" --version)
t_like "$v" '^ztunnel \(zmesh\) [0-9]+\.[0-9]+\.[0-9]+ \(revision [0-9a-z-]+\)$' "ztunnel --version with the source revision"
for b in "$WP" "$ZCA" "$ZCTL"; do
	t_is "$("$b" --version | sed 's/^[a-z-]* //; s/, datapath ABI .*//')" "${v#ztunnel }" \
		"$(basename "$b") --version: the same version and revision"
done
t_is "$("$ZCTL" version | sed 's/, datapath ABI .*//')" "zmeshctl ${v#ztunnel }" "zmeshctl version"
t_like "$("$ZCTL" -j version)" '^\{"version":"[0-9.]+","revision":"[^"]+","abi_version":[0-9]+\}$' \
	"zmeshctl -j version: compact JSON"
t_done
