# SPDX-License-Identifier: Apache-2.0
#
# Pods made by CNI plugins, as a container runtime makes them, on the netns harness: each
# node gets its own CNI config and bin directories under the run's state dir (never the
# machine's /etc/cni/net.d or /opt/cni/bin), a primary config of Debian's ptp plugin with
# host-local IPAM over the node's pod range, and zmesh-cni chained after it by
# `zmesh-cni install`. A pod is a network namespace plus a cgroup under the harness's parent
# and a "pause" process inside both (what a sandbox is), networked by tests/tools/cni-run.py
# running the node's conflist with the CNI_* environment. Sources tests/lib/mesh.sh.
#
#   c_init NODES                 m_init NODES 0 (wired nodes, no harness pods) and the CNI
#                                directories; node i's pods get 198.18.i.20-99 (ptp, host-local)
#   c_install NODE [ARGS...]     zmesh-cni install into NODE's directories (ARGS passed on)
#   c_conflist NODE              the config file a runtime would use on NODE
#   c_pod NODE NAME              a sandbox: netns $H_PFX-NAME, cgroup, pause process
#   c_cni CMD NODE NAME NS [ARGS] run the conflist's CMD for pod NAME of namespace NS;
#                                stdout: the result or the error object; exit status the
#                                runtime's
#   c_ip NAME                    the pod's IPv4 address from its cached ADD result
#   c_bg NAME CMD...             CMD inside the pod (netns and cgroup), in the background
#   c_exec NAME CMD...           the same in the foreground
#   c_ztunnel_start NODE [ARGS]  ztunnel on NODE like m_ztunnel_start, with --run-dir
#                                $H_STATE/run-NODE, started outside `ip netns exec` (it enters
#                                the node with --netns itself) so that it sees the cgroup v2
#                                mount, which ip netns exec's fresh /sys hides
#
# Variables: CNI (the zmesh-cni binary), C_BIN (the CNI bin directory, shared by the nodes),
# C_RUN[NODE] (the node's run directory: cni.sock, pods.json).

. "$(dirname "${BASH_SOURCE[0]}")/mesh.sh"

CNI=$BUILD/bin/zmesh-cni
C_DEB=/usr/lib/cni
declare -gA C_RUN=()

c_init() {
	local i n
	m_need "$CNI" "$ECHO" "$ZT" "$ZCTL" jq
	for n in ptp host-local; do
		[ -x "$C_DEB/$n" ] || t_fatal "$C_DEB/$n missing (Debian package containernetworking-plugins)"
	done
	m_init "$1" 0
	C_BIN=$H_STATE/cni/bin
	mkdir -p "$C_BIN"
	ln -s "$C_DEB/ptp" "$C_DEB/host-local" "$C_DEB/loopback" "$C_BIN/"
	for ((i = 1; i <= $1; i++)); do
		mkdir -p "$H_STATE/cni/n$i/net.d" "$H_STATE/cni/n$i/ipam" "$H_STATE/run-n$i"
		C_RUN[n$i]=$H_STATE/run-n$i
		cat >"$H_STATE/cni/n$i/net.d/10-zmt.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "zmt",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "$H_STATE/cni/n$i/ipam",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "198.18.$i.0/24", "rangeStart": "198.18.$i.20",
                     "rangeEnd": "198.18.$i.99", "gateway": "198.18.$i.1"}]]
      }
    }
  ]
}
EOF
	done
}

c_install() {
	local node=$1
	shift
	"$CNI" install --cni-bin-dir "$C_BIN" --cni-conf-dir "$H_STATE/cni/$node/net.d" \
		--socket "${C_RUN[$node]}/cni.sock" "$@"
}

c_conflist() {
	ls "$H_STATE/cni/$1/net.d/"*.conflist "$H_STATE/cni/$1/net.d/"*.conf 2>/dev/null | sort | head -1
}

c_pod() {
	local node=$1 name=$2 ns cg
	ns=$(h_ns "$name")
	ip netns add "$ns" || t_fatal "ip netns add $ns failed"
	h__record netns "$ns"
	echo "$node" >"$H_STATE/cpod-$name"
	cg=$(h_cgroup "$name")
	mkdir "$cg" || t_fatal "cannot create cgroup $cg"
	c_bg "$name" sleep 100000
}

c_cni() {
	local cmd=$1 node=$2 name=$3 podns=$4 extra=${5:-}
	h_exec "$node" /usr/bin/python3 tests/tools/cni-run.py "$cmd" "$(c_conflist "$node")" \
		"ctr-$name" "/var/run/netns/$(h_ns "$name")" eth0 \
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=$podns;K8S_POD_NAME=$name;K8S_POD_UID=uid-$name$extra" \
		"$C_BIN" "$H_STATE/cni/$node/cache" 2>>"$H_STATE/cni-$name.stderr"
}

c_ip() {
	local node
	node=$(cat "$H_STATE/cpod-$1")
	jq -r '.ips[0].address' "$H_STATE/cni/$node/cache/ctr-$1.json" 2>/dev/null | cut -d/ -f1
}

c_bg() {
	local name=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' \
		"$(h_cgroup "$name")" "$(h_ns "$name")" "$@" &
	H_LAST_PID=$!
	echo "$H_LAST_PID $(h__starttime "$H_LAST_PID")" >>"$H_STATE/pids"
}

c_exec() {
	local name=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' \
		"$(h_cgroup "$name")" "$(h_ns "$name")" "$@"
}

c_ztunnel_start() {
	local node=$1
	shift
	"$ZT" --config "$M_CFG" --node "$node" --netns "/var/run/netns/$(h_ns "$node")" \
		--pin-dir "$(h_pin_dir "$node")" --run-dir "${C_RUN[$node]}" "$@" \
		2>"$H_STATE/zt-$node.log" &
	M_ZT_PID[$node]=$!
	echo "$! $(h__starttime $!)" >>"$H_STATE/pids"
}
