# SPDX-License-Identifier: Apache-2.0
#
# netns harness: every "node" and "pod" is a network namespace this run creates. Sourced by
# the integration tests, the demo and the benchmarks (bash). Everything it makes is recorded
# in a per-run state directory and removed by h_cleanup, which runs on exit, failure and
# Ctrl-C; tests/lib/cleanup-stale.sh removes the leftovers of runs killed with -9.
#
# Topology of h_topology 2 2 (names carry the per-run prefix zmt-<id>-):
#
#   pod n1a 198.18.1.11        pod n1b 198.18.1.12   pod n2a 198.18.2.11    pod n2b 198.18.2.12
#      2001:2:0:1::11             2001:2:0:1::12        2001:2:0:2::11         2001:2:0:2::12
#        eth0                       eth0                  eth0                   eth0
#         |                          |                     |                      |
#      veth-n1a                   veth-n1b              veth-n2a               veth-n2b
#      (198.18.1.1/32, 2001:2:0:1::1/128 on each)      (198.18.2.1/32, 2001:2:0:2::1/128)
#   +-------- node n1 --------------------+          +-------- node n2 -----------------+
#   |  wire0 198.18.0.1/24 2001:2:0:ff::1 |==========| wire0 198.18.0.2/24 2001:2:0:ff::2 |
#   +-------------------------------------+          +----------------------------------+
#
# Node i owns 198.18.i.0/24 and 2001:2:0:i::/64 for its pods (routes /32 and /128 per pod
# veth, as a CNI would); nodes route each other's pod ranges over the wire. With more than
# two nodes the wires meet on a bridge in a "switch" namespace. Pods may each get a cgroup v2
# (under a harness-owned parent) so cgroup BPF programs can attach to them.
#
# API (all names are short: node "n1", pod "n1a"):
#   h_init                      start a run: state dir, private bpffs, trap for cleanup
#   h_topology NODES PODS       NODES nodes with PODS pods each (pods named n<i>a, n<i>b, ...)
#   h_node NAME / h_pod NODE NAME / h_wire_all      the pieces h_topology uses
#   h_ns NAME                   the namespace name of a node or pod
#   h_ip4 POD / h_ip6 POD       a pod's addresses; h_node_ip4 NODE / h_node_ip6 NODE
#   h_veth POD                  the pod's host-side interface (inside its node namespace)
#   h_cgroup POD                the pod's cgroup v2 directory
#   h_exec NAME CMD...          run CMD in the namespace (pods: inside their cgroup)
#   h_bg NAME CMD...            same, in the background; PID recorded, in $H_LAST_PID
#   h_pin_dir NODE              a per-node bpffs pin directory on the private bpffs
#   h_cleanup                   remove everything (also runs automatically)
#
# Variables: H_ID (run id), H_PFX (name prefix), H_STATE (state dir), H_BPFFS (private bpffs).

. "$(dirname "${BASH_SOURCE[0]}")/cleanup.sh"

H_STATE_ROOT=${ZMESH_STATE_ROOT:-/run/zmesh-test}

h_die() {
	echo "harness: $*" >&2
	exit 1
}

h__record() { echo "$2" >>"$H_STATE/$1"; }

h_init() {
	[ "$(id -u)" = 0 ] || h_die "must run as root (network namespaces, BPF)"
	command -v ip >/dev/null || h_die "ip (iproute2) not found: run scripts/install-deps.sh"
	H_ID=$(printf '%05x' $(((RANDOM << 8 ^ RANDOM ^ $$) & 0xfffff)))
	H_PFX="zmt-$H_ID"
	H_STATE="$H_STATE_ROOT/$H_ID"
	mkdir -p "$H_STATE" || h_die "cannot create state dir $H_STATE"
	echo "$$ $(h__starttime $$)" >"$H_STATE/owner"
	: >"$H_STATE/netns"
	: >"$H_STATE/pids"
	H_NODES=()
	trap 'h_cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	h__cgroup_init
	H_BPFFS="$H_STATE/bpffs"
	mkdir -p "$H_BPFFS"
	mount -t bpf bpf "$H_BPFFS" || h_die "cannot mount a private bpffs at $H_BPFFS"
	h__record mounts "$H_BPFFS"
	export H_ID H_PFX H_STATE H_BPFFS
}

# A cgroup v2 parent owned by this run. On a hybrid host cgroup2 lives at a non-default
# mount point; with no cgroup2 mounted at all, mount a private instance.
h__cgroup_init() {
	local mnt
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	if [ -z "$mnt" ]; then
		mnt="$H_STATE/cgroup2"
		mkdir -p "$mnt"
		mount -t cgroup2 none "$mnt" || h_die "no cgroup v2: cannot mount cgroup2 (kernel without CONFIG_CGROUPS?)"
		h__record mounts "$mnt"
	fi
	H_CGROUP="$mnt/zmesh-test-$H_ID"
	mkdir "$H_CGROUP" || h_die "cannot create cgroup $H_CGROUP"
	echo "$H_CGROUP" >"$H_STATE/cgroup"
}

h_ns() { echo "$H_PFX-$1"; }

# h__idx NODE: the node's index (n1 -> 1), from the order nodes were made.
h__idx() { cat "$H_STATE/node-$1" 2>/dev/null || h_die "unknown node '$1'"; }

h_node_ip4() { echo "198.18.0.$(h__idx "$1")"; }
h_node_ip6() { echo "2001:2:0:ff::$(h__idx "$1")"; }

h_node() {
	local name=$1 ns idx
	ns=$(h_ns "$name")
	idx=$((${#H_NODES[@]} + 1))
	[ "$idx" -le 200 ] || h_die "at most 200 nodes"
	ip netns add "$ns" || h_die "ip netns add $ns failed"
	h__record netns "$ns"
	echo "$idx" >"$H_STATE/node-$name"
	H_NODES+=("$name")
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 >/dev/null
}

# h_wire_all: joins every node's wire0; two nodes get one veth pair, more get a bridge.
h_wire_all() {
	local n=${#H_NODES[@]} i j ns sw
	[ "$n" -ge 2 ] || return 0
	if [ "$n" = 2 ]; then
		ip -n "$(h_ns "${H_NODES[0]}")" link add wire0 type veth peer name wire0 \
			netns "$(h_ns "${H_NODES[1]}")" || h_die "cannot create the wire"
	else
		sw=$(h_ns switch)
		ip netns add "$sw" && h__record netns "$sw"
		ip -n "$sw" link add br0 type bridge && ip -n "$sw" link set br0 up
		for ((i = 0; i < n; i++)); do
			ip -n "$sw" link add "port$i" type veth peer name wire0 \
				netns "$(h_ns "${H_NODES[i]}")" || h_die "cannot wire node ${H_NODES[i]}"
			ip -n "$sw" link set "port$i" master br0 up
		done
	fi
	for ((i = 0; i < n; i++)); do
		ns=$(h_ns "${H_NODES[i]}")
		ip -n "$ns" addr add "198.18.0.$((i + 1))/24" dev wire0
		ip -n "$ns" addr add "2001:2:0:ff::$((i + 1))/64" dev wire0 nodad
		ip -n "$ns" link set wire0 up
		for ((j = 0; j < n; j++)); do
			[ "$i" = "$j" ] && continue
			ip -n "$ns" route add "198.18.$((j + 1)).0/24" via "198.18.0.$((j + 1))"
			ip -n "$ns" -6 route add "2001:2:0:$((j + 1))::/64" via "2001:2:0:ff::$((j + 1))"
		done
	done
}

h_pod() {
	local node=$1 name=$2 idx ns nns veth n
	idx=$(h__idx "$node")
	[ ${#name} -le 10 ] || h_die "pod name '$name' longer than 10 characters"
	ns=$(h_ns "$name")
	nns=$(h_ns "$node")
	veth="veth-$name"
	n=$(($(ls "$H_STATE" | grep -c "^pod-.*@$node\$") + 11))
	[ "$n" -le 250 ] || h_die "at most 240 pods per node"
	ip netns add "$ns" || h_die "ip netns add $ns failed"
	h__record netns "$ns"
	ip -n "$nns" link add "$veth" type veth peer name eth0 netns "$ns" ||
		h_die "cannot create veth for pod $name"
	echo "198.18.$idx.$n 2001:2:0:$idx::$n $node $veth" >"$H_STATE/pod-$name@$node"
	ln -s "pod-$name@$node" "$H_STATE/pod-$name"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0 >/dev/null
	ip -n "$ns" addr add "198.18.$idx.$n/32" dev eth0
	ip -n "$ns" addr add "2001:2:0:$idx::$n/128" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add "198.18.$idx.1" dev eth0 scope link
	ip -n "$ns" route add default via "198.18.$idx.1" dev eth0
	ip -n "$ns" -6 route add "2001:2:0:$idx::1" dev eth0
	ip -n "$ns" -6 route add default via "2001:2:0:$idx::1" dev eth0
	ip -n "$nns" addr add "198.18.$idx.1/32" dev "$veth"
	ip -n "$nns" addr add "2001:2:0:$idx::1/128" dev "$veth" nodad
	ip -n "$nns" link set "$veth" up
	ip -n "$nns" route add "198.18.$idx.$n/32" dev "$veth"
	ip -n "$nns" -6 route add "2001:2:0:$idx::$n/128" dev "$veth"
	mkdir "$H_CGROUP/$name" || h_die "cannot create cgroup for pod $name"
}

h_topology() {
	local nodes=$1 pods=$2 i j letters=abcdefghijklmnopqrstuvwxyz
	for ((i = 1; i <= nodes; i++)); do h_node "n$i"; done
	h_wire_all
	for ((i = 1; i <= nodes; i++)); do
		for ((j = 0; j < pods; j++)); do h_pod "n$i" "n$i${letters:j:1}"; done
	done
}

h__pod_field() {
	local f i=$2
	f=$(cat "$H_STATE/pod-$1" 2>/dev/null) || h_die "unknown pod '$1'"
	set -- $f
	echo "${!i}"
}
h_ip4() { h__pod_field "$1" 1; }
h_ip6() { h__pod_field "$1" 2; }
h_pod_node() { h__pod_field "$1" 3; }
h_veth() { h__pod_field "$1" 4; }
h_cgroup() { echo "$H_CGROUP/$1"; }
h_is_pod() { [ -e "$H_STATE/pod-$1" ]; }

h_pin_dir() {
	mkdir -p "$H_BPFFS/$1"
	echo "$H_BPFFS/$1"
}

h_exec() {
	local name=$1 ns
	shift
	ns=$(h_ns "$name")
	if h_is_pod "$name"; then
		# Join the cgroup before entering the namespace: ip netns exec remounts /sys, which
		# hides the cgroup2 mount on hosts where it lives under /sys/fs/cgroup/unified.
		sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' \
			"$(h_cgroup "$name")" "$ns" "$@"
	else
		ip netns exec "$ns" "$@"
	fi
}

h_bg() {
	local name=$1 ns
	shift
	ns=$(h_ns "$name")
	# ip netns exec and sh's exec replace themselves, so $! is the program's own PID.
	if h_is_pod "$name"; then
		sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' \
			"$(h_cgroup "$name")" "$ns" "$@" &
	else
		ip netns exec "$ns" "$@" &
	fi
	H_LAST_PID=$!
	echo "$H_LAST_PID $(h__starttime "$H_LAST_PID")" >>"$H_STATE/pids"
}

# h_stop PID: stop one process this run started (TERM, then KILL).
h_stop() { h__kill_pid "$1" "$(h__starttime "$1")"; }

# h_wait_port NAME PORT [SECONDS]: wait until something listens on PORT in the namespace.
h_wait_port() {
	local ns i
	ns=$(h_ns "$1")
	for ((i = 0; i < ${3:-5} * 20; i++)); do
		ip netns exec "$ns" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# h_sanitized: whether this run's daemons are the sanitizer build (make SANITIZE=1).
h_sanitized() { grep -qa __asan_init "${BUILD:-build}/bin/ztunnel" 2>/dev/null; }

# h_final_checks: called by t_done before the plan. Under the sanitizer build it stops every
# process the run started, so reports written at exit (leaks, a crash while stopping) land in
# their logs, and fails one test point if any log under $H_STATE holds a sanitizer report: an
# abort already fails a check, but a leak or a fault on SIGTERM would pass unseen otherwise.
h_final_checks() {
	local re='ERROR: (Address|Leak)Sanitizer|runtime error:' hits
	[ -n "${H_STATE:-}" ] && [ -d "$H_STATE" ] && h_sanitized || return 0
	h__stop_procs "$H_STATE"
	hits=$(grep -rlE --include='*.log' "$re" "$H_STATE" 2>/dev/null)
	t_is "$hits" "" "no sanitizer report in the logs of this run's processes" && return 0
	for f in $hits; do
		echo "# $f:"
		grep -hE -A8 "$re" "$f" | head -24 | sed 's/^/#   /'
	done
	return 1
}

h_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "${H_STATE:-}" ] && h__cleanup_state "$H_STATE"
	H_STATE=
	return $rc
}
