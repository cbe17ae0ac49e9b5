# SPDX-License-Identifier: Apache-2.0
#
# Mesh start-up for the ztunnel integration tests (and the datapath tests, which use its
# zmeshctl and echo-server helpers without a ztunnel), on top of the netns harness: the ztunnel
# config file, the dev CA, per node the BPF datapath and a ztunnel, echo servers in pods, and
# the waits after which the mesh carries traffic. Sources tests/lib/tap.sh,
# tests/lib/harness.sh and tests/lib/peers.sh; what cannot be set up is a t_fatal bail-out
# naming what failed.
#
# A test of two nodes whose four pods all speak HBONE:
#
#   . tests/lib/mesh.sh
#   m_init 2 2
#   m_config_hbone n1a n1b n2a n2b
#   m_ca_init
#   for n in n1 n2; do m_node_start $n --ca-dir "$M_CA"; done
#   m_echo_serve n1a n1b n2a n2b
#   m_ztunnel_wait n1 n2
#
# API (nodes and pods as in harness.sh: "n1", "n1a"):
#   m_need FILE|COMMAND...          bail out unless each FILE (a path) is built and each COMMAND
#                                   (a bare name) is installed
#   m_need_h2peer                   bail out unless PEER can run (p_need) and CERT (which
#                                   issues the peers' certificates) is built
#   m_init NODES PODS               m_need ZT ZCTL ECHO, h_init, h_topology NODES PODS; an empty
#                                   M_POL
#   m_workload [-4] POD NS SA PROTOCOL [FIELD...]
#                                   print POD's workload as one flow-style item: uid, name,
#                                   namespace NS, serviceAccount SA, protocol, its node and both
#                                   addresses (-4: the IPv4 one only); each FIELD ("labels: {a:
#                                   b}") is appended inside the braces
#   m_config_write < YAML           replace M_CFG by rename, so a polling ztunnel never reads
#                                   half a file
#   m_policy_write < YAML           the same for M_POL (give the ztunnels --policy "$M_POL")
#   m_policy_set YAML               m_policy_write YAML, then 1.5 s for ztunnels polling every
#                                   100-200 ms (--poll-ms) to reload it
#   m_config_hbone POD...           M_CFG listing each POD as namespace ns, service account
#                                   sa-POD, protocol HBONE, both addresses
#   m_ca_init [DIR [ARGS...]]       zmeshctl ca init into DIR (default M_CA), ARGS passed on
#   m_zctl NODE ARGS...             zmeshctl in NODE's namespace and pin directory
#   m_datapath_load NODE [ARGS...]  datapath load --uplink wire0 ARGS on NODE
#   m_enroll NODE POD NS SA         enroll POD (both addresses, its veth) on NODE by hand
#   m_ztunnel_start NODE [ARGS...]  ztunnel on NODE with M_CFG and ARGS in the background; its
#                                   log is $H_STATE/zt-NODE.log, its PID ${M_ZT_PID[NODE]}
#   m_node_start NODE [ARGS...]     m_datapath_load NODE, then m_ztunnel_start NODE ARGS
#   m_ztunnel_wait NODE...          until each NODE's ztunnel answers ready on 15021: by then it
#                                   listens on 15001/15006/15008 and has enrolled its node's
#                                   HBONE pods; bails out with its log after 10 s
#   m_echo_serve POD...             zm-echo in each POD on 7777 (--banner: the first line names
#                                   the peer the server saw) and 7778 (plain echo); returns once
#                                   all of them listen
#   m_wait_for SECONDS CMD...       run CMD every 0.1 s until it succeeds; 1 if it did not
#                                   within about SECONDS
#
# Variables set when sourced: BUILD (default build); ZT, ZCTL, ECHO, CERT, LISTENER (the ztunnel,
# zmeshctl, zm-echo, zt-cert and zm-testlistener binaries: the last stands in for ztunnel in the
# datapath tests); PY and PEER (peers.sh). Set by m_init: M_CFG ($H_STATE/ztunnel.yaml), M_POL
# ($H_STATE/policy.yaml), M_CA ($H_STATE/ca). M_ZT_PID: node -> ztunnel PID.

. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
. "$(dirname "${BASH_SOURCE[0]}")/peers.sh"

BUILD=${BUILD:-build}
ZT=$BUILD/bin/ztunnel
ZCTL=$BUILD/bin/zmeshctl
ECHO=$BUILD/tests/tools/zm-echo
CERT=$BUILD/tests/tools/zt-cert
LISTENER=$BUILD/tests/tools/zm-testlistener
declare -gA M_ZT_PID=()

m_need() {
	local x
	for x in "$@"; do
		case $x in
		*/*) [ -x "$x" ] || t_fatal "$x not built (run make)" ;;
		*) command -v "$x" >/dev/null || t_fatal "$x not installed (scripts/install-deps.sh)" ;;
		esac
	done
}

m_need_h2peer() {
	m_need "$CERT"
	p_need
}

m_init() {
	m_need "$ECHO" "$ZT" "$ZCTL"
	h_init
	h_topology "$1" "$2"
	M_CFG=$H_STATE/ztunnel.yaml
	M_POL=$H_STATE/policy.yaml
	M_CA=$H_STATE/ca
	: >"$M_POL"
}

m_workload() {
	local ips extra="" f v6=1
	if [ "$1" = -4 ]; then
		v6=
		shift
	fi
	local pod=$1 ns=$2 sa=$3 proto=$4
	shift 4
	ips="\"$(h_ip4 "$pod")\""
	[ -z "$v6" ] || ips="$ips, \"$(h_ip6 "$pod")\""
	for f in "$@"; do extra="$extra, $f"; done
	echo -n "- {uid: Kubernetes//Pod/$ns/$pod, name: $pod, namespace: $ns, serviceAccount: $sa, "
	echo "protocol: $proto, node: $(h_pod_node "$pod"), workloadIps: [$ips]$extra}"
}

# m__replace FILE < CONTENT: FILE replaced by rename, never seen half written
m__replace() {
	cat >"$1.tmp" && mv "$1.tmp" "$1" || t_fatal "cannot write $1"
}

m_config_write() { m__replace "$M_CFG"; }
m_policy_write() { m__replace "$M_POL"; }

m_policy_set() {
	printf '%s\n' "$1" | m_policy_write
	sleep 1.5
}

m_config_hbone() {
	local p
	{
		echo "workloads:"
		for p in "$@"; do m_workload "$p" ns "sa-$p" HBONE; done
	} | m_config_write
}

m_ca_init() {
	local dir=${1:-$M_CA}
	[ $# = 0 ] || shift
	"$ZCTL" ca init --dir "$dir" "$@" >/dev/null || t_fatal "zmeshctl ca init --dir $dir failed"
}

m_zctl() {
	local node=$1
	shift
	"$ZCTL" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$(h_pin_dir "$node")" "$@"
}

m_datapath_load() {
	local node=$1
	shift
	m_zctl "$node" datapath load --uplink wire0 "$@" >/dev/null ||
		t_fatal "datapath load on $node failed"
}

m_enroll() {
	m_zctl "$1" enroll --ip "$(h_ip4 "$2")" --ip "$(h_ip6 "$2")" --veth "$(h_veth "$2")" \
		--name "$2" --namespace "$3" --service-account "$4" >/dev/null ||
		t_fatal "enrolling $2 on $1 failed"
}

m_ztunnel_start() {
	local node=$1
	shift
	h_bg "$node" "$ZT" --config "$M_CFG" --node "$node" --netns "/var/run/netns/$(h_ns "$node")" \
		--pin-dir "$(h_pin_dir "$node")" "$@" 2>"$H_STATE/zt-$node.log"
	M_ZT_PID[$node]=$H_LAST_PID
}

m_node_start() {
	m_datapath_load "$1"
	m_ztunnel_start "$@"
}

m_ztunnel_wait() {
	local node i pid
	for node in "$@"; do
		pid=${M_ZT_PID[$node]:-}
		for ((i = 0; i < 100; i++)); do
			[ "$(h_exec "$node" curl -s -m 1 http://127.0.0.1:15021/healthz/ready)" = ready ] &&
				continue 2
			# A ztunnel that exited (bad flag, port in use) will never be ready.
			[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		t_fatal "ztunnel on $node is not ready: $(cat "$H_STATE/zt-$node.log")"
	done
}

m_echo_serve() {
	local p
	for p in "$@"; do
		h_bg "$p" "$ECHO" serve --port 7777 --banner
		h_bg "$p" "$ECHO" serve --port 7778
	done
	for p in "$@"; do
		h_wait_port "$p" 7777 && h_wait_port "$p" 7778 || t_fatal "echo server in $p did not start"
	done
}

m_wait_for() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
