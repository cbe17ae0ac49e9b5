#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Slow readers must not make the waypoint (or the ztunnels around it) buffer (issue 15;
# istio/istio#59887 reports tens of MB for Istio): servers answer with endless bodies as fast
# as they are let, over HTTP/1.1 (Content-Length 1 GiB) and HTTP/2 (DATA as flow control
# allows), to clients that read 64 KiB/s or nothing at all, while the RSS of the waypoint and
# of every ztunnel is sampled every 0.2 s.
#
#   node n1: sleep-0 (clients), bulk-h2-0 (tools/h2bulk.py serve 8081)
#   node n2: bulk-h1-0 (zm-conns push --http 8080)
#   node n3: wp (the waypoint of both services)
#   sleep --VIP--> ztunnel n1 ==HBONE==> waypoint ==HBONE==> ztunnel n1/n2 --> bulk pod
#
# Clients per protocol: 4 at once. HTTP/1.1 (zm-conns slowread --http): two never read, two
# read 64 KiB/s. HTTP/2 (h2bulk.py read): two never read the socket (TCP pushes back), two
# read it but send WINDOW_UPDATEs for only 64 KiB/s (HTTP/2 flow control pushes back).
#
# The bound per slow connection, from the documented windows (userspace/lib/hbone/README.md,
# hbone.h, waypoint/wp.h): the waypoint may hold what its upstream HBONE stream lets the pod's
# ztunnel send unread (HB_STREAM_WINDOW, 4 MiB), what it took from that stream into its queue
# towards the client (it takes a whole delivery while the queue is under WP_IN_HIGH, 256 KiB,
# so up to one more stream window) and the client-side stream's send queue (HB_SEND_BUFFER,
# 256 KiB); HTTP/2 adds the upstream session's stream window (1 MiB, WP_H2_WINDOW), inside the
# HBONE window it rides on. 9 MiB per connection, plus 8 MiB for the allocator and the first
# use of code paths. Each ztunnel: 5 MiB per connection (4 MiB stream window + buffers) +
# 8 MiB, as in ztunnel-slowreader.sh. (Every HBONE connection also caps what its streams hold
# together at its 16 MiB connection window.) Without flow control the servers would push GiBs.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
CONNS=$BUILD/tests/tools/zm-conns
[ -x "$CONNS" ] || t_fatal "$CONNS not built (run make)"
/usr/bin/python3 -c 'import h2' 2>/dev/null || t_fatal "python3-h2 missing (apt-get install python3-h2)"
N=${SLOW_N:-4}
SECS=8
MIB=1024 # KiB

# ASan keeps freed memory in its quarantine (256 MiB by default), so under the sanitizer build
# RSS would measure the sanitizer: the daemons started here run without a quarantine.
if ldd "$BUILD/bin/ztunnel" 2>/dev/null | grep -q libasan; then
	export ASAN_OPTIONS=quarantine_size_mb=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/bulk.yaml
k8s_waypoint
k8s_start
CLI=$(k8s_pod sleep)
h_bg "$(k8s_pod bulk-h1)" "$CONNS" push --port 8080 --http 2>"$K8S_DIR/push-h1.log"
h_bg "$(k8s_pod bulk-h2)" /usr/bin/python3 tests/tools/h2bulk.py serve 8081 >"$K8S_DIR/push-h2.log" 2>&1
h_wait_port "$(k8s_pod bulk-h1)" 8080 || t_fatal "zm-conns push did not start"
h_wait_port "$(k8s_pod bulk-h2)" 8081 || t_fatal "h2bulk.py serve did not start: $(cat "$K8S_DIR/push-h2.log")"
WP_PID=$(ip netns pids "$(h_ns wp)" | head -1)
declare -A ZPID
for n in n1 n2 n3; do ZPID[$n]=$(ip netns pids "$(h_ns $n)" | head -1); done
[ -n "$WP_PID" ] && [ -n "${ZPID[n1]}" ] || t_fatal "waypoint or ztunnel not found"

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
sample() { # sample PID FILE: the largest RSS (KiB) seen every 0.2 s, until FILE.stop exists
	local max=0 r
	while [ ! -e "$2.stop" ]; do
		r=$(rss "$1")
		[ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" >"$2"
		sleep 0.2
	done
}
# slow_run NAME: N clients "client_NAME I" (I: 0..N-1) for SECS seconds, the waypoint and the
# ztunnels sampled; prints what each client read.
slow_run() {
	local name=$1 i p samplers=() readers=()
	for p in wp n1 n2 n3; do
		local pid=$WP_PID
		[ "$p" = wp ] || pid=${ZPID[$p]}
		rss "$pid" >"$K8S_DIR/$name.base.$p"
		sample "$pid" "$K8S_DIR/$name.max.$p" &
		samplers+=($!)
	done
	for ((i = 0; i < N; i++)); do
		"client_$name" "$i" >"$K8S_DIR/$name.read.$i" 2>&1 &
		readers+=($!)
	done
	wait "${readers[@]}"
	for p in wp n1 n2 n3; do touch "$K8S_DIR/$name.max.$p.stop"; done
	wait "${samplers[@]}"
	cat "$K8S_DIR/$name".read.*
}
grew() { echo $(($(cat "$K8S_DIR/$1.max.$2") - $(cat "$K8S_DIR/$1.base.$2"))); }
check() { # check NAME PROTO: the RSS bounds after run NAME
	local wpb=$((N * 9 * MIB + 8 * MIB)) ztb=$((N * 5 * MIB + 8 * MIB)) g n
	g=$(grew "$1" wp)
	t_ok "$([ "$g" -le $wpb ]; echo $?)" \
		"$2: waypoint RSS rose $g KiB with $N slow readers (bound $wpb KiB: $N x 9 MiB + 8 MiB)"
	for n in n1 n2 n3; do
		g=$(grew "$1" $n)
		t_ok "$([ "$g" -le $ztb ]; echo $?)" \
			"$2: ztunnel $n RSS rose $g KiB (bound $ztb KiB: $N x 5 MiB + 8 MiB)"
	done
}

# HTTP/1.1: a 1 GiB Content-Length body.
client_h1() {
	h_exec "$CLI" "$CONNS" slowread "$(k8s_vip bulk-h1)" 8080 --http --seconds $SECS \
		--rate $(($1 % 2 * 65536))
}
out=$(slow_run h1)
t_like "$(echo $out)" "^(read=[0-9]+ ?){$N}$" "HTTP/1.1: $N slow readers ran (${out//$'\n'/ })"
got=$(echo "$out" | sed -n 's/read=//p' | sort -n | tail -1)
t_ok "$([ "$got" -gt 100000 ]; echo $?)" "HTTP/1.1: the 64 KiB/s readers got the body through the waypoint ($got bytes)"
check h1 HTTP/1.1

# HTTP/2 (h2c, prior knowledge): TCP backpressure and HTTP/2 flow control.
client_h2() {
	local m=noread
	[ $(($1 % 2)) = 1 ] && m=slow
	h_exec "$CLI" /usr/bin/python3 tests/tools/h2bulk.py read "$(k8s_vip bulk-h2)" 8081 \
		--mode $m --rate 65536 --seconds $SECS
}
out=$(slow_run h2)
t_like "$(echo $out)" "^(read=[0-9]+ ?){$N}$" "HTTP/2: $N slow readers ran (${out//$'\n'/ })"
got=$(echo "$out" | sed -n 's/read=//p' | sort -n | tail -1)
t_ok "$([ "$got" -gt 100000 ]; echo $?)" "HTTP/2: the window-paced readers got the body through the waypoint ($got bytes)"
check h2 HTTP/2
# What the servers wrote (each connection would take 1 GiB or more): backpressure reached them.
# (Each pushing connection prints its count when it ends.)
for _ in $(seq 50); do
	[ "$(grep -c written "$K8S_DIR/push-h1.log")" -ge $N ] &&
		[ "$(grep -c '^sent' "$K8S_DIR/push-h2.log")" -ge $N ] && break
	sleep 0.1
done
w1=$(awk '/written/ { s += $3 } END { print s + 0 }' "$K8S_DIR/push-h1.log")
w2=$(awk '/^sent/ { s += $2 } END { print s + 0 }' "$K8S_DIR/push-h2.log")
t_diag "servers wrote: HTTP/1.1 $((w1 >> 20)) MiB, HTTP/2 $((w2 >> 20)) MiB, for $N connections each"
t_ok "$([ "$w1" -le $((N * 64 << 20)) ] && [ "$w2" -le $((N * 64 << 20)) ]; echo $?)" \
	"the servers were held back: at most 64 MiB written per connection"
t_run "waypoint still running" -- kill -0 "$WP_PID"
t_diag "RSS now (KiB): waypoint $(rss "$WP_PID"), ztunnel n1 $(rss "${ZPID[n1]}"), n2 $(rss "${ZPID[n2]}"), n3 $(rss "${ZPID[n3]}")"
t_done
