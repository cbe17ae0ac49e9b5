# SPDX-License-Identifier: Apache-2.0
#
# A stand-in Kubernetes API server (tests/tools/kube-apiserver.py) on the netns harness, and
# kubectl-like helpers, for tests of ztunnel's Kubernetes source. The server runs in node n1's
# namespace on its wire address (198.18.0.1:6443, HTTPS with a test CA and a bearer token), so
# every node's ztunnel reaches it as a real one. Sources tests/lib/cni.sh (pods are made by
# CNI plugins, as a kubelet would: the Pod object first, then the sandbox, then its status).
#
#   k_init NODES                 c_init NODES, a CA and server certificate, the token, a service
#                                account directory (token, ca.crt) and a kubeconfig for ztunnel
#   k_api_start [ARGS...]        the API server (ARGS: --restart-gap N, --forbid RES...), waits for its port
#   k_api_stop                   stop it (its state file stays for the next start)
#   k_req METHOD PATH [JSON]     one request (curl from n1); prints the answer
#   k_put RES NS NAME JSON       create or replace an object (NS "" for namespaces)
#   k_delete RES NS NAME         delete one
#   k_patch RES NS NAME JQ       GET, apply the jq filter, PUT back
#   k_ctl WHAT [JSON]            a test control of the server (compact, garbage, stall, ...)
#   k_ns NAME [LABELS_JSON]      a Namespace
#   k_pod_new NAME NODE NS LABELS_JSON SA [OWNER_RS]
#                                a pending Pod bound to NODE (container port "http" 7777)
#   k_pod_run NAME NODE NS       its sandbox made by CNI (ADD), then Running and Ready with
#                                the address the CNI gave it; fails with the ADD's output
#   k_ztunnel_start NODE [ARGS]  ztunnel on NODE with the API as source (n1: --kubeconfig,
#                                others: in-cluster environment and --kube-sa-dir)
#   k_zmesh_up NODES...          zmesh on each node: zmesh-cni chained, the datapath, a CA
#                                (M_CA), ztunnel from the API; waits until they are ready
#
# Variables: K_API (https://198.18.0.1:6443), K_DIR ($H_STATE/kube: certs, token, state).

. "$(dirname "${BASH_SOURCE[0]}")/cni.sh"

K_PY=/usr/bin/python3

k_init() {
	m_need openssl jq curl
	c_init "$1"
	K_DIR=$H_STATE/kube
	K_API=https://198.18.0.1:6443
	mkdir -p "$K_DIR/sa"
	(
		cd "$K_DIR" &&
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
				-subj /CN=zmt-kube-ca -keyout ca.key -out ca.crt &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj /CN=kubernetes -keyout server.key -out server.csr &&
			printf 'subjectAltName=IP:198.18.0.1,DNS:kubernetes.default.svc\n' >ext.cnf &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-days 2 -extfile ext.cnf -out server.crt
	) >/dev/null 2>&1 || t_fatal "making the API server's certificates failed"
	echo "token-one" >"$K_DIR/server-token"
	cp "$K_DIR/server-token" "$K_DIR/sa/token"
	cp "$K_DIR/server-token" "$K_DIR/kc-token"
	cp "$K_DIR/ca.crt" "$K_DIR/sa/ca.crt"
	cat >"$K_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: zmt
clusters:
- name: zmt
  cluster: {server: "$K_API", certificate-authority: ca.crt}
users:
- name: ztunnel
  user: {tokenFile: kc-token}
contexts:
- name: zmt
  context: {cluster: zmt, user: ztunnel}
EOF
}

k_api_start() {
	h_bg n1 "$K_PY" tests/tools/kube-apiserver.py --listen 198.18.0.1:6443 \
		--cert "$K_DIR/server.crt" --key "$K_DIR/server.key" \
		--token-file "$K_DIR/server-token" --state "$K_DIR/state.json" "$@" \
		>>"$H_STATE/apiserver.log" 2>&1
	K_API_PID=$H_LAST_PID
	h_wait_port n1 6443 10 || t_fatal "the API server did not start: $(cat "$H_STATE/apiserver.log")"
}

k_api_stop() {
	h_stop "$K_API_PID"
}

k_req() {
	local method=$1 path=$2
	h_exec n1 curl -s -m 10 --cacert "$K_DIR/ca.crt" -X "$method" \
		-H "Authorization: Bearer $(cat "$K_DIR/server-token")" \
		-H "Content-Type: application/json" ${3:+--data-binary "$3"} "$K_API$path"
}

# k__path RES NS NAME: an object's path
k__path() {
	local pre=/api/v1
	case $1 in
	endpointslices) pre=/apis/discovery.k8s.io/v1 ;;
	authorizationpolicies | peerauthentications) pre=/apis/security.istio.io/v1 ;;
	virtualservices | destinationrules) pre=/apis/networking.istio.io/v1 ;;
	httproutes | grpcroutes | gateways) pre=/apis/gateway.networking.k8s.io/v1 ;;
	esac
	if [ -z "$2" ]; then echo "$pre/$1/$3"; else echo "$pre/namespaces/$2/$1/$3"; fi
}

k_put() { k_req PUT "$(k__path "$1" "$2" "$3")" "$4" >/dev/null; }
k_delete() { k_req DELETE "$(k__path "$1" "$2" "$3")" >/dev/null; }

k_patch() {
	local o
	o=$(k_req GET "$(k__path "$1" "$2" "$3")") || return 1
	k_put "$1" "$2" "$3" "$(jq -c "$4" <<<"$o")"
}

k_ctl() {
	local body=${2:-}
	[ -n "$body" ] || body='{}'
	k_req POST "/zmt/$1" "$body" >/dev/null
}

k_ns() {
	local labels=${2:-}
	[ -n "$labels" ] || labels='{}'
	k_put namespaces "" "$1" "{\"metadata\":{\"name\":\"$1\",\"labels\":$labels}}"
}

k_pod_new() {
	local name=$1 node=$2 ns=$3 labels=$4 sa=$5 rs=${6:-} owner=""
	[ -z "$rs" ] || owner=",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"$rs\",\"uid\":\"rs-$rs\",\"controller\":true}]"
	k_put pods "$ns" "$name" "{\"metadata\":{\"name\":\"$name\",\"namespace\":\"$ns\",\"labels\":$labels$owner},
	  \"spec\":{\"nodeName\":\"$node\",\"serviceAccountName\":\"$sa\",\"containers\":[{\"name\":\"app\",
	  \"image\":\"zm-httpecho\",\"ports\":[{\"name\":\"http\",\"containerPort\":7777}]}]},
	  \"status\":{\"phase\":\"Pending\"}}"
}

k_pod_run() {
	local name=$1 node=$2 ns=$3 out ip
	c_pod "$node" "$name" >/dev/null 2>&1 </dev/null
	out=$(c_cni ADD "$node" "$name" "$ns") || { echo "$out"; return 1; }
	ip=$(c_ip "$name")
	k_patch pods "$ns" "$name" ".status = {phase: \"Running\", podIP: \"$ip\", podIPs: [{ip: \"$ip\"}],
	  conditions: [{type: \"Ready\", status: \"True\"}]}"
}

k_ztunnel_start() {
	local node=$1 src
	shift
	if [ "$node" = n1 ]; then
		src=(--kubeconfig "$K_DIR/kubeconfig")
	else
		src=(--kube --kube-sa-dir "$K_DIR/sa")
	fi
	KUBERNETES_SERVICE_HOST=198.18.0.1 KUBERNETES_SERVICE_PORT=6443 \
		"$ZT" "${src[@]}" --node "$node" --netns "/var/run/netns/$(h_ns "$node")" \
		--pin-dir "$(h_pin_dir "$node")" --run-dir "${C_RUN[$node]}" "$@" \
		2>>"$H_STATE/zt-$node.log" &
	M_ZT_PID[$node]=$!
	echo "$! $(h__starttime $!)" >>"$H_STATE/pids"
}

k_zmesh_up() {
	local n
	for n in "$@"; do
		c_install "$n" --agent-wait 2 >/dev/null 2>&1 || t_fatal "zmesh-cni install on $n failed"
		m_datapath_load "$n"
	done
	m_ca_init
	for n in "$@"; do k_ztunnel_start "$n" --ca-dir "$M_CA" --poll-ms 100; done
	m_ztunnel_wait "$@"
}
