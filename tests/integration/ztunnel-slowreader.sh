#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Slow readers must not make ztunnel buffer (issue 15; istio/istio#59887 reports tens of MB
# for Istio): a server pushes as fast as it can (it would send 1 GiB per connection) to clients
# that read 64 KiB/s or nothing at all, across nodes (HBONE) and on one node (spliced), while
# ztunnel's RSS is sampled every 0.2 s.
#
#   n1a 198.18.1.11 (4 slow readers) --+                     +-- n2a 198.18.2.11 (push 9100)
#   n1b 198.18.1.12 (push 9100) -------+ n1 ===wire0=== n2 --+-- n2b
#
# The bound, per slow connection, from the HBONE windows (userspace/lib/hbone/README.md and
# hbone.h): the reader's ztunnel holds at most what the stream window lets the peer send
# unread (HB_STREAM_WINDOW, 4 MiB: WINDOW_UPDATEs follow what the client takes); the
# sender's ztunnel holds the stream's send queue (HB_SEND_BUFFER, 256 KiB; it reads its socket
# straight into it, no buffer of its own); TLS records and HTTP/2 frames add well under 1 MiB.
# So 5 MiB per connection on either side, plus 8 MiB for the allocator and the first use of
# code paths.
# Spliced same-node connections hold their bytes in kernel pipes and socket buffers, not in
# ztunnel's memory: 8 MiB in all. Without flow control the push would fill GiBs in seconds.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
CONNS=$BUILD/tests/tools/zm-conns
m_need "$CONNS"
N=${SLOW_N:-4}
SECS=8
MIB=1024 # KiB

# ASan keeps freed memory in its quarantine (256 MiB by default), so under the sanitizer build
# RSS would measure the sanitizer: the daemons started here run without a quarantine.
if ldd "$BUILD/bin/ztunnel" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=quarantine_size_mb=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
m_init 2 2
m_config_hbone n1a n1b n2a n2b
m_ca_init
for n in n1 n2; do m_node_start $n --ca-dir "$M_CA" --log-level access:warn; done
for p in n1b n2a; do h_bg $p "$CONNS" push --port 9100 2>"$H_STATE/push-$p.log"; done
for p in n1b n2a; do h_wait_port $p 9100 || t_fatal "zm-conns push in $p did not start"; done
m_ztunnel_wait n1 n2
sleep 0.5 # enrollment follows readiness

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# sample PID FILE: the largest RSS (KiB) seen every 0.2 s, until FILE.stop exists.
sample() {
	local max=0 r
	while [ ! -e "$2.stop" ]; do
		r=$(rss "$1")
		[ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" >"$2"
		sleep 0.2
	done
}
# slow_run NAME DST: N readers in n1a (half reading nothing, half 64 KiB/s) for SECS seconds
# against DST:9100, both ztunnels sampled; prints the bytes each reader got.
slow_run() {
	local name=$1 dst=$2 i pids=() readers=() z
	for z in n1 n2; do
		rss "${M_ZT_PID[$z]}" >"$H_STATE/$name.base.$z"
		sample "${M_ZT_PID[$z]}" "$H_STATE/$name.max.$z" &
		pids+=($!)
	done
	for ((i = 0; i < N; i++)); do
		h_exec n1a "$CONNS" slowread "$dst" 9100 --rate $((i % 2 * 65536)) --seconds $SECS \
			>"$H_STATE/$name.read.$i" 2>&1 &
		readers+=($!)
	done
	wait "${readers[@]}"
	for z in n1 n2; do touch "$H_STATE/$name.max.$z.stop"; done
	wait "${pids[@]}"
	cat "$H_STATE/$name".read.*
}
grew() { # grew NAME NODE: KiB the RSS of NODE's ztunnel rose during run NAME
	echo $(($(cat "$H_STATE/$1.max.$2") - $(cat "$H_STATE/$1.base.$2")))
}

# (a) Across nodes, over HBONE.
out=$(slow_run hbone "$(h_ip4 n2a)")
t_like "$(echo $out)" "^(read=[0-9]+ ?){$N}$" "$N slow readers over HBONE ran (${out//$'\n'/ })"
got=$(echo "$out" | sed -n 's/read=//p' | sort -n | tail -1)
t_ok "$([ "$got" -gt 100000 ]; echo $?)" "the 64 KiB/s readers got their bytes ($got)"
bound=$((N * 5 * MIB + 8 * MIB))
for z in n1 n2; do
	g=$(grew hbone $z)
	t_ok "$([ "$g" -le "$bound" ]; echo $?)" \
		"ztunnel $z RSS rose $g KiB with $N slow HBONE readers (bound $bound KiB: $N x (4 MiB stream window + 1 MiB) + 8 MiB)"
done

# (b) On one node, spliced.
out=$(slow_run splice "$(h_ip4 n1b)")
t_like "$(echo $out)" "^(read=[0-9]+ ?){$N}$" "$N slow readers on one node ran (${out//$'\n'/ })"
g=$(grew splice n1)
t_ok "$([ "$g" -le $((8 * MIB)) ]; echo $?)" \
	"ztunnel n1 RSS rose $g KiB with $N slow spliced readers (bound 8 MiB: bytes wait in kernel pipes)"
# What the servers wrote (each connection would take 1 GiB or more): backpressure reached them.
# (Each pushing process prints its count when its connection ends.)
for p in n2a n1b; do
	m_wait_for 5 eval '[ "$(grep -c written "$H_STATE/push-$p.log")" -ge $N ]'
	w=$(awk '/written/ { s += $3 } END { print s + 0 }' "$H_STATE/push-$p.log")
	t_ok "$([ "$w" -le $((N * 64 << 20)) ]; echo $?)" \
		"the server in $p was held back: $((w >> 20)) MiB written for $N connections (at most 64 MiB each)"
done
for z in n1 n2; do t_run "ztunnel $z still running" -- kill -0 "${M_ZT_PID[$z]}"; done
t_diag "ztunnel RSS (KiB): n1 $(rss "${M_ZT_PID[n1]}"), n2 $(rss "${M_ZT_PID[n2]}")"
t_done
