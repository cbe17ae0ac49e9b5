#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What following a cluster through the Kubernetes API costs ztunnel (ztunnel --kubeconfig
# against tests/tools/kube-apiserver.py, both in one harness namespace on its loopback; no
# datapath, no traffic: this measures the API source alone). Scenarios (PODS pods over 50
# nodes, SERVICES services with an EndpointSlice each, 20 namespaces half of them ambient):
#   empty      the baseline: no object at all
#   cluster    5,000 pods and 2,000 services, then RATE pod changes a second for SECONDS
#              (each a pod's readiness and its service's EndpointSlice: two API events)
#   large      50,000 pods and 2,000 services (what a 50,000-workload model adds)
# Figures per scenario: time from start to ready (everything listed), RSS when ready, and for
# the churn: pod changes a second achieved, ztunnel's CPU share, peak RSS (VmHWM), and the
# model's convergence (from the first change after a model to the next model in force, as
# ztunnel's /config_dump reports it: count, p50, p99, max). Results: build/bench/kube.txt.
# Not a test: nothing is asserted. Usage: scripts/bench-kube.sh [RATE] [SECONDS]
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RATE=${1:-100}
SECS=${2:-30}
. tests/lib/tap.sh
. tests/lib/harness.sh
ZT=$BUILD/bin/ztunnel
[ -x "$ZT" ] || { echo "bench-kube: $ZT not built (run make)" >&2; exit 1; }
out=$BUILD/bench/kube.txt
mkdir -p "$BUILD/bench"
h_init
h_node n1
ip -n "$(h_ns n1)" link set lo up
D=$H_STATE/kube
mkdir -p "$D"
(
	cd "$D" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj /CN=bench-ca -keyout ca.key -out ca.crt &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=k \
			-keyout s.key -out s.csr &&
		printf 'subjectAltName=IP:127.0.0.1\n' >ext &&
		openssl x509 -req -in s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile ext -out s.crt
) >/dev/null 2>&1 || { echo "bench-kube: certificates failed" >&2; exit 1; }
echo bench-token >"$D/token"
cat >"$D/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: b
clusters: [{name: b, cluster: {server: "https://127.0.0.1:6443", certificate-authority: ca.crt}}]
users: [{name: b, user: {tokenFile: token}}]
contexts: [{name: b, context: {cluster: b, user: b}}]
KC

rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
dump() { h_exec n1 curl -s -m 5 http://127.0.0.1:15000/config_dump | jq -c "$1"; }

# scenario NAME PODS SERVICES CHURN
scenario() {
	local name=$1 pods=$2 svcs=$3 churn=$4 api zt t0 ready c0 c1 line
	/usr/bin/python3 scripts/bench-kube.py state "$D/state.json" "$pods" "$svcs" 50
	h_bg n1 /usr/bin/python3 tests/tools/kube-apiserver.py --listen 127.0.0.1:6443 \
		--cert "$D/s.crt" --key "$D/s.key" --token-file "$D/token" --state "$D/state.json" \
		--no-save >"$H_STATE/api-$name.log" 2>&1
	api=$H_LAST_PID
	h_wait_port n1 6443 60 || { echo "bench-kube: API server did not start" >&2; exit 1; }
	t0=$(date +%s%N)
	h_bg n1 "$ZT" --kubeconfig "$D/kubeconfig" --node n1 --no-enroll --no-fastpath --workers 1 \
		2>"$H_STATE/zt-$name.log"
	zt=$H_LAST_PID
	for ((i = 0; i < 6000; i++)); do
		[ "$(h_exec n1 curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" = ready ] && break
		sleep 0.05
	done
	ready=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN {printf "%.2f", (a - b) / 1e9}')
	sleep 2
	line="$name: $pods pods, $svcs services: ready after $ready s (ztunnel CPU $(awk -v c="$(cpu "$zt")" \
		-v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", c / t}') s), RSS $(rss "$zt") MiB"
	line="$line, model $(dump '[(.workloads | length), (.services | length)]' | tr -d '[]') workloads,services"
	if [ "$churn" = 1 ]; then
		c0=$(cpu "$zt")
		line="$line; $(h_exec n1 /usr/bin/python3 scripts/bench-kube.py churn https://127.0.0.1:6443 \
			"$D/ca.crt" bench-token "$RATE" "$SECS" "$pods" "$svcs" 2>&1 | tr -d '\n')"
		c1=$(cpu "$zt")
		sleep 1
		line="$line, ztunnel CPU $(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" -v s="$SECS" \
			'BEGIN {printf "%.1f", c / t * 100 / s}')% of a core"
		line="$line, peak RSS $(hwm "$zt") MiB, convergence $(dump .kubernetes.convergence_ms)"
		line="$line, builds $(dump .kubernetes.builds) (last $(dump .kubernetes.last_build_us) us)"
	fi
	echo "$line" | tee -a "$out"
	h_stop "$zt"
	h_stop "$api"
}

echo "# bench-kube $(date -u +%FT%TZ) rate=$RATE/s for ${SECS}s, $(nproc) CPUs" | tee -a "$out"
scenario empty 0 0 0
scenario cluster 5000 2000 1
scenario large 50000 2000 0
