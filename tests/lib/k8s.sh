# SPDX-License-Identifier: Apache-2.0
#
# Kubernetes manifests on the netns harness: a test says which Deployment / Service YAML it
# wants (tests/data/samples, or Istio's own samples), and every pod becomes a harness pod
# running zm-httpecho on its ports, answering with its pod name, labels and the request it saw; the zmesh config
# (workloads with labels and serviceAccount, services with VIPs 198.18.250.N) is generated to
# match, and ztunnel runs on every node with a waypoint for the services. Sources
# tests/lib/tap.sh and tests/lib/harness.sh (whose API it uses, never its internals).
#
#   k8s_need_samples FILE...        bail out unless each FILE exists under K8S_SAMPLES, the
#                                   samples tree of tests/lib/samples.sh (tests/data/samples,
#                                   or Istio's published samples with ISTIO_SAMPLES=DIR)
#   k8s_init NODES [PODNODES]       h_init, NODES wired nodes, a CA; pods go round-robin on the
#                                   first PODNODES nodes (default all), the waypoint on the last
#   k8s_dualstack                   (before k8s_start) services also get an IPv6 VIP
#                                   2001:2:0:250::N, workloads their IPv6 address, and the
#                                   waypoint is reached on its IPv6 address (k8s.py)
#   k8s_apply FILE...               the Deployments/Services of FILE become pods (before k8s_start);
#                                   Namespaces and istio-waypoint Gateways count for attachment
#   k8s_waypoint [NODE]             the waypoint pod (default: on the last node), attached the
#                                   Istio way: by the applied files' Gateway of class
#                                   istio-waypoint and istio.io/use-waypoint labels, or, when
#                                   they have none, by what `istioctl waypoint apply
#                                   --enroll-namespace` makes (Gateway default/waypoint and the
#                                   default Namespace labelled to use it: every service)
#   k8s_routes FILE...              Istio resources for the waypoint (live: waits for reload)
#   k8s_ztunnel_policy FILE...      (before k8s_start) ztunnel --policy files (Istio
#                                   AuthorizationPolicy / PeerAuthentication YAML)
#   K8S_WP_ARGS=(...)               (before k8s_start) more waypoint arguments
#   k8s_waypoint_run LOG            start another waypoint process (K8S_WP_PID: its pid)
#   k8s_start                       datapaths, ztunnels, waypoint; waits until all are ready
#   k8s_pod NAME                    harness pod of a k8s pod ("reviews-v1-0") or deployment
#   k8s_vip SERVICE                 a service's VIP; k8s_vip6 SERVICE its IPv6 VIP (dual stack)
#   k8s_curl DEPLOYMENT ARGS...     curl -s -m 10 ARGS from that deployment's first pod
#   k8s_serve LOG PORT DEPLOY... -- CMD...
#                                   in each DEPLOY's pod (annotation echo-args "none") run
#                                   CMD PORT POD_NAME, output to $K8S_DIR/LOG-DEPLOY.log;
#                                   returns once all listen on PORT
#   k8s_pods_of N DEPLOYMENT URL [curl args]   the pod names answering N requests
#
# Files: $K8S_DIR/mesh.yaml (zmesh config), routes.yaml, pods, wp.log, zt-NODE.log,
# echo-HNAME.log (one "seen POD REQUEST host=HOST" line per request the pod answered).
# Needs /usr/bin/python3 with python3-yaml (Debian package python3-yaml).

K8S_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$K8S_LIB/tap.sh"
. "$K8S_LIB/harness.sh"
. "$K8S_LIB/samples.sh"
K8S_SAMPLES=$(samples_dir 2>&1) || t_fatal "$K8S_SAMPLES"

k8s_need_samples() {
	local why
	why=$(samples_need "$K8S_SAMPLES" "$@" 2>&1) || t_fatal "$why"
}
K8S_PY=${K8S_PY:-/usr/bin/python3}
K8S_VIPBASE=198.18.250
K8S_VIP6BASE=2001:2:0:250::
BUILD=${BUILD:-build}

k8s_init() {
	local i
	"$K8S_PY" -c 'import yaml' 2>/dev/null || t_fatal "python3-yaml missing (apt-get install python3-yaml)"
	for b in zm-httpecho; do
		[ -x "$BUILD/tests/tools/$b" ] || t_fatal "$BUILD/tests/tools/$b not built (run make)"
	done
	for b in ztunnel waypoint zmeshctl; do
		[ -x "$BUILD/bin/$b" ] || t_fatal "$BUILD/bin/$b not built (run make)"
	done
	h_init
	for ((i = 1; i <= $1; i++)); do h_node "n$i"; done
	h_wire_all
	K8S_DIR=$H_STATE/k8s
	mkdir -p "$K8S_DIR"
	: >"$K8S_DIR/files"
	: >"$K8S_DIR/ips"
	: >"$K8S_DIR/pods"
	: >"$K8S_DIR/routes.yaml"
	K8S_NODES=$(seq -s, -f 'n%g' 1 "$1")
	seq -s, -f 'n%g' 1 "${2:-$1}" >"$K8S_DIR/nodes"
	"$BUILD/bin/zmeshctl" ca init --dir "$K8S_DIR/ca" >/dev/null || t_fatal "zmeshctl ca init failed"
}

k8s__mesh() {
	local files
	mapfile -t files <"$K8S_DIR/files"
	"$K8S_PY" "$K8S_LIB/k8s.py" mesh "$K8S_DIR" "$K8S_VIPBASE" "${files[@]}" \
		>"$K8S_DIR/mesh.yaml.new" || t_fatal "k8s.py mesh failed"
	mv "$K8S_DIR/mesh.yaml.new" "$K8S_DIR/mesh.yaml"
}

k8s_apply() {
	local f files hname node name ns sa labels ports extra l args
	for f in "$@"; do
		[ -f "$f" ] || t_fatal "k8s_apply: no such file $f"
		realpath "$f" >>"$K8S_DIR/files"
	done
	mapfile -t files <"$K8S_DIR/files"
	"$K8S_PY" "$K8S_LIB/k8s.py" pods "$(cat "$K8S_DIR/nodes")" "${files[@]}" \
		>"$K8S_DIR/pods.new" || t_fatal "k8s.py pods failed on $*"
	while read -r hname node name ns sa labels ports extra; do
		grep -q "^$hname " "$K8S_DIR/ips" && continue
		h_pod "$node" "$hname"
		echo "$hname $(h_ip4 "$hname") $name $(h_ip6 "$hname")" >>"$K8S_DIR/ips"
		# echo-args "none": the test starts its own server in the pod.
		[ "$ports" = - ] || [ "$extra" = none ] && continue
		args=(--name "$name" --log)
		for l in ${labels//,/ }; do [ "$l" = - ] || args+=(--label "$l"); done
		for l in ${ports//,/ }; do args+=(--port "$l"); done
		args+=($extra) # word splitting intended: "--status 503"
		h_bg "$hname" "$BUILD/tests/tools/zm-httpecho" "${args[@]}" \
			>"$K8S_DIR/echo-$hname.log" 2>&1
	done <"$K8S_DIR/pods.new"
	mv "$K8S_DIR/pods.new" "$K8S_DIR/pods"
	k8s__mesh
}

k8s_dualstack() {
	echo "$K8S_VIP6BASE" >"$K8S_DIR/ipv6"
	[ -s "$K8S_DIR/files" ] && k8s__mesh
	return 0
}

k8s_waypoint() {
	local node=${1:-${K8S_NODES##*,}} files
	h_pod "$node" wp
	echo "wp $(h_ip4 wp) $node $(h_ip6 wp)" >"$K8S_DIR/waypoint"
	mapfile -t files <"$K8S_DIR/files"
	if [ ${#files[@]} = 0 ] || ! grep -qs 'gatewayClassName: *istio-waypoint' "${files[@]}"; then
		realpath "$K8S_LIB/../data/l7/waypoint-gateway.yaml" >>"$K8S_DIR/files"
	fi
	k8s__mesh
}

k8s_routes() {
	local f n
	n=$(grep -c "config reloaded" "$K8S_DIR/wp.log" 2>/dev/null)
	for f in "$@"; do
		[ -f "$f" ] || t_fatal "k8s_routes: no such file $f"
		cat "$f"
		echo "---"
	done >"$K8S_DIR/routes.yaml.new"
	mv "$K8S_DIR/routes.yaml.new" "$K8S_DIR/routes.yaml"
	[ -n "$n" ] || return 0 # not started yet: read at start
	for ((f = 0; f < 60; f++)); do
		[ "$(grep -c "config reloaded" "$K8S_DIR/wp.log")" -gt "$n" ] && return 0
		grep -q "reload refused" "$K8S_DIR/wp.log" && break
		sleep 0.1
	done
	t_fatal "waypoint did not reload $*: $(tail -5 "$K8S_DIR/wp.log")"
}

K8S_WP_ARGS=()
# k8s_waypoint_run LOG: start a waypoint process in the waypoint pod (k8s_start does; an
# upgrade test starts another), its stderr to LOG; K8S_WP_PID is its pid.
k8s_waypoint_run() {
	h_bg wp "$BUILD/bin/waypoint" --config "$K8S_DIR/routes.yaml" \
		--mesh-config "$K8S_DIR/mesh.yaml" \
		--identity spiffe://cluster.local/ns/default/sa/waypoint \
		--ca-dir "$K8S_DIR/ca" --netns "/var/run/netns/$(h_ns wp)" \
		"${K8S_WP_ARGS[@]}" 2>"$1"
	K8S_WP_PID=$H_LAST_PID
}
K8S_ZT_ARGS=()
k8s_ztunnel_policy() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || t_fatal "k8s_ztunnel_policy: no such file $f"
		K8S_ZT_ARGS+=(--policy "$f")
	done
}

k8s_start() {
	local n i hname node name ns sa labels ports
	for n in ${K8S_NODES//,/ }; do
		"$BUILD/bin/zmeshctl" --netns "$(h_ns "$n")" --pin-dir "$(h_pin_dir "$n")" \
			datapath load --uplink wire0 >/dev/null || t_fatal "datapath load on $n failed"
		h_bg "$n" "$BUILD/bin/ztunnel" --config "$K8S_DIR/mesh.yaml" --node "$n" \
			--netns "/var/run/netns/$(h_ns "$n")" --pin-dir "$(h_pin_dir "$n")" \
			--ca-dir "$K8S_DIR/ca" "${K8S_ZT_ARGS[@]}" 2>"$K8S_DIR/zt-$n.log"
	done
	[ -f "$K8S_DIR/waypoint" ] && k8s_waypoint_run "$K8S_DIR/wp.log"
	for n in ${K8S_NODES//,/ }; do
		h_wait_port "$n" 15008 10 || t_fatal "ztunnel on $n did not start: $(cat "$K8S_DIR/zt-$n.log")"
	done
	while read -r hname node name ns sa labels ports extra; do
		[ "$extra" = none ] && continue
		for i in ${ports//,/ }; do
			[ "$i" = - ] || h_wait_port "$hname" "$i" ||
				t_fatal "zm-httpecho of $name did not start: $(cat "$K8S_DIR/echo-$hname.log")"
		done
	done <"$K8S_DIR/pods"
	[ -f "$K8S_DIR/waypoint" ] || { sleep 0.5; return 0; }
	for ((i = 0; i < 100; i++)); do
		[ "$(h_exec wp curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" = ready ] && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || t_fatal "waypoint not ready: $(cat "$K8S_DIR/wp.log")"
	sleep 0.5 # enrollment happens right after ztunnel readiness
}

# k8s_pod NAME: exact pod name, or the first pod of deployment NAME.
k8s_pod() {
	local hname node name ns sa labels ports extra
	while read -r hname node name ns sa labels ports extra; do
		if [ "$name" = "$1" ] || [ "${name%-*}" = "$1" ]; then
			echo "$hname"
			return 0
		fi
	done <"$K8S_DIR/pods"
	t_fatal "k8s_pod: no pod $1"
}

k8s_vip() {
	awk -v h="$1.default.svc.cluster.local" '$0 ~ "hostname: " h "," {
		match($0, /vips: \[\/[0-9.]+/); print substr($0, RSTART + 8, RLENGTH - 8); exit }' \
		"$K8S_DIR/mesh.yaml"
}

k8s_vip6() {
	grep -F "hostname: $1.default.svc.cluster.local," "$K8S_DIR/mesh.yaml" |
		grep -oE "/$K8S_VIP6BASE[0-9]+" | head -1 | tr -d /
}

k8s_curl() {
	local from
	from=$(k8s_pod "$1")
	shift
	h_exec "$from" curl -s -m 10 "$@"
}

# k8s_pods_of N FROM URL [curl args]: pod names of N answers, one per line.
k8s_pods_of() {
	local n=$1 from=$2 url=$3 i
	shift 3
	for ((i = 0; i < n; i++)); do k8s_curl "$from" -m 5 "$@" "$url"; done | sed -n 's/^pod=//p'
}

k8s_serve() {
	local log=$1 port=$2 d p deps=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		deps+=("$1")
		shift
	done
	shift
	for d in "${deps[@]}"; do
		p=$(k8s_pod "$d")
		h_bg "$p" "$@" "$port" "$d-0" >"$K8S_DIR/$log-$d.log" 2>&1
	done
	for d in "${deps[@]}"; do
		h_wait_port "$(k8s_pod "$d")" "$port" ||
			t_fatal "$* did not start in $d: $(cat "$K8S_DIR/$log-$d.log")"
	done
}

# k8s_metrics: the waypoint's Prometheus text.
k8s_metrics() { h_exec wp curl -s -m 2 http://127.0.0.1:15020/metrics; }
