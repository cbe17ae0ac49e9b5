#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A harness run killed with SIGKILL (no trap runs) leaves its namespaces, cgroup, bpffs and
# processes behind; tests/lib/cleanup-stale.sh, which every `make test` runs first, must
# remove exactly those and leave a live run alone.
#
#   victim run (killed -9):  zmt-<id>-n1, zmt-<id>-n1a + a sleeping process in n1a
#   live run (this test):    zmt-<id2>-n1
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/harness.sh
h_init
h_node n1 # a live run, which the stale cleanup must not touch

info=$(mktemp)
bash -c '
	. tests/lib/harness.sh
	h_init
	h_node n1
	h_pod n1 n1a
	h_bg n1a sleep 600
	echo "$H_STATE $H_PFX $H_CGROUP $H_BPFFS $H_LAST_PID" >"$1"
	exec sleep 600 # the victim itself: killing it leaves no helper of ours holding stdout
' victim "$info" &
victim=$!
for _ in $(seq 50); do [ -s "$info" ] && break; sleep 0.1; done
read -r vstate vpfx vcg vbpffs vsleep <"$info"
rm -f "$info"
[ -n "${vpfx:-}" ] || t_fatal "victim run did not start"
kill -KILL "$victim"
wait "$victim" 2>/dev/null

t_is "$(ip netns list | grep -c "^$vpfx-")" "2" "killed run left its 2 namespaces behind"
t_ok "$([ -n "$(h__starttime "$vsleep")" ]; echo $?)" "killed run left its pod process behind"

tests/lib/cleanup-stale.sh 2>/dev/null
t_is "$(ip netns list | grep -c "^$vpfx-")" "0" "stale namespaces removed"
t_ok "$([ ! -e "$vcg" ]; echo $?)" "stale cgroup removed"
t_ok "$(! grep -q " $vbpffs " /proc/mounts; echo $?)" "stale bpffs unmounted"
t_ok "$([ ! -e "$vstate" ]; echo $?)" "stale state directory removed"
t_is "$(h__starttime "$vsleep")" "" "stale pod process killed (by its recorded PID)"
t_is "$(ip netns list | grep -c "^$H_PFX-")" "1" "the live run's namespace is untouched"
t_ok "$([ -d "$H_STATE" ]; echo $?)" "the live run's state is untouched"
t_done
