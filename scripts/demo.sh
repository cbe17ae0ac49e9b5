#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make demo: a two-node zmesh in network namespaces, narrated. Everything it creates is
# removed when it ends (or on Ctrl-C). Safe on any machine: only namespaces it creates, only
# 198.18.0.0/15 and 2001:2::/48 addresses.
#
#   n1a 198.18.1.11 (enrolled) --+                      +-- n2a 198.18.2.11 (enrolled)
#   n1b 198.18.1.12 ------------+ n1 ==== wire0 ==== n2 +-- n2b 198.18.2.12
#
# Scene 1: plain pod-to-pod traffic through the harness (what the network looks like).
# Scene 2: the BPF datapath captures enrolled pods' connections without iptables and hands
#          them to the node's transparent listener with the original destination intact.
#          (ztunnel itself is not in this demo yet: zm-testlistener stands in for it.)
set -u # not -e: the harness library checks its own steps
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/lib/harness.sh
ECHO=$BUILD/tests/tools/zm-echo
LISTENER=$BUILD/tests/tools/zm-testlistener
ZMESHCTL=$BUILD/bin/zmeshctl
for b in "$ECHO" "$LISTENER" "$ZMESHCTL"; do
	[ -x "$b" ] || { echo "demo: $b is missing: run make first" >&2; exit 1; }
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
zm() {
	local node=$1
	shift
	"$ZMESHCTL" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$H_BPFFS/$node" "$@"
}

h_init
say "Building 2 nodes with 2 pods each (namespaces prefixed $H_PFX-)"
h_topology 2 2
for p in n1a n1b n2a n2b; do h_bg "$p" "$ECHO" serve --port 8080 --banner; done
for p in n1a n1b n2a n2b; do h_wait_port "$p" 8080; done

say "Scene 1: pod n1a -> pod n2a, nothing in between; the server prints who it sees"
h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 8080 --data "hello over IPv4"$'\n'
h_exec n1a "$ECHO" send "$(h_ip6 n2a)" 8080 --data "hello over IPv6"$'\n'

say "Scene 2: load the zmesh datapath on both nodes and enroll n1a and n2a"
for n in n1 n2; do
	mkdir -p "$H_BPFFS/$n"
	run zm "$n" datapath load --uplink wire0
	run zm "$n" datapath attach "veth-${n}a" "veth-${n}b"
done
run zm n1 enroll --ip "$(h_ip4 n1a)" --ip "$(h_ip6 n1a)" --veth veth-n1a --name n1a \
	--namespace demo --service-account sleep --cgroup "$(h_cgroup n1a)"
run zm n2 enroll --ip "$(h_ip4 n2a)" --ip "$(h_ip6 n2a)" --veth veth-n2a --name n2a \
	--namespace demo --service-account httpbin --cgroup "$(h_cgroup n2a)"
run zm n1 workload list

say "The node's transparent listener (ztunnel's ports 15001/15006/15008) reports what it receives"
h_bg n1 "$LISTENER" >/dev/null
h_bg n2 "$LISTENER" >/dev/null
h_wait_port n1 15001
h_wait_port n2 15008
echo "n1a -> n2a:8080 (enrolled source: captured on n1 to 15001, original destination kept):"
h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 8080 --data x
echo "n1b -> n1a:8080 (non-mesh client to an enrolled pod: captured to 15006):"
h_exec n1b "$ECHO" send "$(h_ip4 n1a)" 8080 --data x
echo "n2b -> n1a:15008 over the wire (HBONE port: captured to 15008):"
h_exec n2b "$ECHO" send "$(h_ip6 n1a)" 15008 --data x
echo "n1b -> n2b:8080 (neither end enrolled: untouched):"
h_exec n1b "$ECHO" send "$(h_ip4 n2b)" 8080 --data "x"$'\n'

say "What the datapath counted, and no iptables anywhere"
run zm n1 stats
run zm n1 conn list
printf '$ iptables-save | grep -c -- -A   (in node n1): '
h_exec n1 iptables-save 2>/dev/null | grep -c -- '-A' || true

say "Unloading removes only what zmesh added"
run zm n1 datapath unload
run zm n2 datapath unload
say "Done: the namespaces are removed on exit"
