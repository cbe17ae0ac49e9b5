# SPDX-License-Identifier: Apache-2.0
#
# Removal of everything one harness run created, driven only by that run's state directory
# (never by name patterns or process names): processes by recorded PID (checked against their
# recorded start time, so a recycled PID is never killed), processes inside the run's own
# network namespaces, the namespaces, the run's cgroups, and its private bpffs mount.
# Sourced by tests/lib/harness.sh and tests/lib/cleanup-stale.sh.

# h__starttime PID: field 22 of /proc/PID/stat (clock ticks since boot), empty if the process
# is gone or a zombie (dead, waiting for a parent that may never reap it: on some machines
# PID 1 does not reap orphans).
h__starttime() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	# after "comm) " the fields start at 3: state is $1 here, starttime (22) is ${20}
	set -- $s
	[ "$1" = Z ] || echo "${20}"
}

# h__kill_pid PID STARTTIME: TERM, short wait, then KILL; only if it is still that process.
h__kill_pid() {
	local pid=$1 st=$2 i
	[ -n "$pid" ] || return 0
	[ "$(h__starttime "$pid")" = "$st" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(h__starttime "$pid")" = "$st" ] || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

# h__stop_procs DIR: stop every process the run of DIR started: the recorded PIDs, then what
# is still inside its namespaces or pod cgroups. The namespaces and cgroups stay.
h__stop_procs() {
	local dir=$1 pid st ns cg p
	if [ -f "$dir/pids" ]; then
		while read -r pid st; do h__kill_pid "$pid" "$st"; done <"$dir/pids"
	fi
	if [ -f "$dir/netns" ]; then
		while read -r ns; do
			for p in $(ip netns pids "$ns" 2>/dev/null); do
				h__kill_pid "$p" "$(h__starttime "$p")"
			done
		done <"$dir/netns"
	fi
	cg=$(cat "$dir/cgroup" 2>/dev/null)
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		for p in $(cat "$cg"/*/cgroup.procs "$cg"/cgroup.procs 2>/dev/null); do
			h__kill_pid "$p" "$(h__starttime "$p")"
		done
	fi
}

# h__cleanup_state DIR: undo everything recorded in DIR, then remove DIR.
h__cleanup_state() {
	local dir=$1 ns cg m
	[ -d "$dir" ] || return 0
	h__stop_procs "$dir"
	if [ -f "$dir/netns" ]; then
		while read -r ns; do
			ip netns del "$ns" 2>/dev/null
		done <"$dir/netns"
	fi
	if [ -f "$dir/cgroup" ]; then
		cg=$(cat "$dir/cgroup")
		if [ -n "$cg" ] && [ -d "$cg" ]; then
			find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
		fi
	fi
	if [ -f "$dir/mounts" ]; then
		# Innermost first.
		tac "$dir/mounts" | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	fi
	rm -rf "$dir"
}
