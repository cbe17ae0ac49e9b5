#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The harness itself: pod-to-pod TCP on one node and across nodes, IPv4 and IPv6, with no
# zmesh component in the path; then cleanup leaves no namespace, cgroup, pin or process.
#
#   n1a 198.18.1.11 ---+                       +--- n2a 198.18.2.11
#   n1b 198.18.1.12 ---+ n1 ==== wire0 ==== n2 +--- n2b 198.18.2.12
#   (and 2001:2:0:<node>::<11|12>)
#
# Every pod runs zm-echo with --banner; a client checks the server saw its real address.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/cleanup.sh # h__starttime
BUILD=${BUILD:-build}
ECHO=$BUILD/tests/tools/zm-echo
[ -x "$ECHO" ] || t_fatal "$ECHO not built (run make)"

# The topology lives in a subshell so that its cleanup (the EXIT trap) has run when the
# leftover checks below look at the machine.
state_file=$(mktemp)
(
	. tests/lib/harness.sh
	h_init
	h_topology 2 2
	echo "$H_STATE $H_PFX $H_CGROUP $H_BPFFS" >"$state_file"
	for p in n1a n1b n2a n2b; do
		h_bg "$p" "$ECHO" serve --port 7777 --banner
		echo "$H_LAST_PID $(h__starttime "$H_LAST_PID")" >>"$state_file.pids"
		h_bg "$p" "$ECHO" serve --port 7778
		echo "$H_LAST_PID $(h__starttime "$H_LAST_PID")" >>"$state_file.pids"
	done
	mkdir -p "$(h_pin_dir n1)/probe" # something on the private bpffs for the cleanup check
	for p in n1a n1b n2a n2b; do h_wait_port "$p" 7777 || t_fatal "echo server in $p did not start"; done

	check() { # check FROM TO FAMILY WHAT
		local from=$1 to=$2 fam=$3 what=$4 dst src out
		dst=$(h_ip"$fam" "$to")
		src=$(h_ip"$fam" "$from")
		out=$(h_exec "$from" "$ECHO" send "$dst" 7777 --data "ping-$from" 2>&1 | tr '\n' ' ')
		t_like "$out" "^peer=\[?$src\]?:[0-9]+ .*ping-$from" "$what IPv$fam $from -> $to: server sees $src"
	}
	check n1a n1b 4 "same node"
	check n1a n2a 4 "cross node"
	check n2b n1b 4 "cross node (reverse)"
	check n1a n1b 6 "same node"
	check n1a n2a 6 "cross node"
	check n2b n1b 6 "cross node (reverse)"
	out=$(h_exec n1a "$ECHO" send "$(h_ip4 n2b)" 7778 --bytes 4000000 2>&1)
	t_is "$out" "echo ok 4000000" "4 MB echoed intact across nodes"
	out=$(h_exec n1a cat /proc/self/cgroup)
	t_like "$out" "zmesh-test-$H_ID/n1a\$" "pod processes run in the pod's cgroup"
	t_is "$(h_exec n1 ip route get "$(h_ip4 n2a)" | head -1 | awk '{print $3}')" "198.18.0.2" \
		"node n1 routes n2's pods over the wire"
	echo "$T_N $T_FAILED" >"$state_file.counts"
)
read -r T_N T_FAILED <"$state_file.counts" 2>/dev/null || t_fatal "topology part did not finish"
read -r state pfx cg bpffs <"$state_file"
left=0
while read -r pid st; do
	[ "$(h__starttime "$pid")" = "$st" ] && left=$((left + 1))
done <"$state_file.pids"
rm -f "$state_file" "$state_file.counts" "$state_file.pids"

t_is "$(ip netns list | grep -c "^$pfx-")" "0" "no namespace of the run is left"
t_ok "$([ ! -e "$cg" ]; echo $?)" "the run's cgroup $cg is removed"
t_ok "$(! grep -q " $bpffs " /proc/mounts; echo $?)" "the private bpffs is unmounted"
t_ok "$([ ! -e "$state" ]; echo $?)" "the state directory is removed"
t_is "$left" "0" "none of the 8 servers the run started is left running (checked by PID)"
t_done
