#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Concurrent connections through ztunnel (issue 15): 10,000 cross-node connections over HBONE
# and as many same-node (spliced) connections as the descriptor limit allows at 2 fds each,
# every one carrying a payload of its own that is echoed and checked byte for byte, twice,
# with all of them held open in between. Each ztunnel starts with RLIMIT_NOFILE 1024:20000
# (prlimit, for that process only) and must raise its soft limit to the hard one itself.
# Load: tests/tools/zm-conns (one epoll loop per side).
#
#   n1a 198.18.1.11 (zm-conns client) --+                     +-- n2a 198.18.2.11 (echo 9000)
#   n1b 198.18.1.12 (echo 9000)  -------+ n1 ===wire0=== n2 --+-- n2b 198.18.2.12
#        ztunnel n1 (nofile 1024:20000)         ztunnel n2 (nofile 1024:20000)
#   cross node: n1a -> n2a:9000, 10,000 connections, 100 streams per pooled HBONE connection
#   same node:  n1a -> n1b:9000, (20,000 - fds ztunnel n1 holds - 200) / 2 connections
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
CONNS=$BUILD/tests/tools/zm-conns
m_need "$CONNS" prlimit
HARD=20000
CROSS=10000

m_init 2 2
m_config_hbone n1a n1b n2a n2b
m_ca_init
for n in n1 n2; do
	m_datapath_load $n
	# m_ztunnel_start's command, under prlimit: ztunnel gets a soft limit of 1024.
	h_bg $n prlimit --nofile=1024:$HARD -- "$ZT" --config "$M_CFG" --node $n \
		--netns "/var/run/netns/$(h_ns $n)" --pin-dir "$(h_pin_dir $n)" --ca-dir "$M_CA" \
		--log-level access:warn 2>"$H_STATE/zt-$n.log"
	M_ZT_PID[$n]=$H_LAST_PID
done
for p in n1b n2a; do h_bg $p "$CONNS" serve --port 9000; done
for p in n1b n2a; do h_wait_port $p 9000 || t_fatal "zm-conns serve in $p did not start"; done
m_ztunnel_wait n1 n2
sleep 0.5 # enrollment follows readiness

for n in n1 n2; do
	t_like "$(grep '^Max open files' /proc/${M_ZT_PID[$n]}/limits)" "Max open files +$HARD +$HARD " \
		"ztunnel $n raised its soft RLIMIT_NOFILE from 1024 to the hard limit $HARD"
done

fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# run_load NAME DST N: zm-conns client in n1a, N connections to DST:9000 held 3 s; while they
# are held, ztunnel n1's and n2's fds and RSS go to $H_STATE/NAME.fds.nN / NAME.rss.nN.
run_load() {
	local name=$1 dst=$2 n=$3 st=$H_STATE/$1.status pid i z
	rm -f "$st"
	h_bg n1a "$CONNS" client "$dst" 9000 -n "$n" --hold 3 --timeout 90 --status "$st" \
		>"$H_STATE/$name.out" 2>&1
	pid=$H_LAST_PID
	for ((i = 0; i < 1200; i++)); do
		grep -q '^holding' "$st" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1
	for z in n1 n2; do
		fds "${M_ZT_PID[$z]}" >"$H_STATE/$name.fds.$z"
		rss "${M_ZT_PID[$z]}" >"$H_STATE/$name.rss.$z"
	done
	wait "$pid"
	cat "$H_STATE/$name.out"
}

base1=$(fds "${M_ZT_PID[n1]}")
base2=$(fds "${M_ZT_PID[n2]}")
rss1=$(rss "${M_ZT_PID[n1]}")
t_diag "idle: ztunnel n1 $base1 fds, RSS $rss1 KiB; ztunnel n2 $base2 fds"

# Cross node: 10,000 HBONE streams.
out=$(run_load cross "$(h_ip4 n2a)" $CROSS)
t_like "$out" "^connections=$CROSS connected=$CROSS failed=0 verified=$CROSS round1=$CROSS round2=$CROSS closed_early=0 " \
	"$CROSS concurrent cross-node connections over HBONE: each payload echoed intact, twice, none dropped while held"
f1=$(cat "$H_STATE/cross.fds.n1")
f2=$(cat "$H_STATE/cross.fds.n2")
t_diag "cross node, $CROSS held: ztunnel n1 $f1 fds, RSS $(cat "$H_STATE/cross.rss.n1") KiB;" \
	"ztunnel n2 $f2 fds, RSS $(cat "$H_STATE/cross.rss.n2") KiB"
# One socket per connection on each side plus the pooled HBONE connections (100 streams each).
t_ok "$([ $((f1 - base1)) -ge $CROSS ] && [ $((f1 - base1)) -le $((CROSS + CROSS / 50 + 50)) ]; echo $?)" \
	"ztunnel n1 holds one fd per connection plus the HBONE pool ($((f1 - base1)) for $CROSS)"
t_ok "$([ $((f2 - base2)) -ge $CROSS ] && [ $((f2 - base2)) -le $((CROSS + CROSS / 50 + 50)) ]; echo $?)" \
	"ztunnel n2 holds one fd per connection plus the HBONE pool ($((f2 - base2)) for $CROSS)"
m_wait_for 20 eval '[ "$(fds "${M_ZT_PID[n2]}")" -le $((base2 + 200)) ]'
t_ok $? "ztunnel n2 released the connections' descriptors once they closed"

# Same node: as many as 2 fds each allow under the hard limit, with 200 to spare.
m_wait_for 20 eval '[ "$(fds "${M_ZT_PID[n1]}")" -le $((base1 + 200)) ]'
now1=$(fds "${M_ZT_PID[n1]}")
SAME=$(((HARD - now1 - 200) / 2))
t_diag "same node: ztunnel n1 holds $now1 fds (pooled HBONE connections stay until idle), so $SAME connections"
out=$(run_load same "$(h_ip4 n1b)" $SAME)
t_like "$out" "^connections=$SAME connected=$SAME failed=0 verified=$SAME round1=$SAME round2=$SAME closed_early=0 " \
	"$SAME concurrent same-node (spliced) connections: each payload echoed intact, twice, none dropped while held"
f1=$(cat "$H_STATE/same.fds.n1")
t_diag "same node, $SAME held: ztunnel n1 $f1 fds, RSS $(cat "$H_STATE/same.rss.n1") KiB"
t_ok "$([ $((f1 - now1)) -le $((2 * SAME + 50)) ]; echo $?)" \
	"2 fds per same-node connection ($((f1 - now1)) for $SAME: no pipes held by idle relays)"
t_ok "$([ "$f1" -le $HARD ]; echo $?)" "within the limit: $f1 of $HARD"
t_run "ztunnel n1 still running" -- kill -0 "${M_ZT_PID[n1]}"
t_run "ztunnel n2 still running" -- kill -0 "${M_ZT_PID[n2]}"
t_like "$(h_exec n1a "$CONNS" client "$(h_ip4 n2a)" 9000 -n 10)" "verified=10 " "new connections work afterwards"
t_done
