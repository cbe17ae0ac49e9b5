#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make bench: the performance protocol of scripts/README.md. Two nodes with two pods each
# (tests/lib/harness.sh); the client is pod n1a, the cross-node server n2a, the same-node
# server n1b. Scenarios:
#   direct, direct-same   pod to pod, nothing in between (the baselines)
#   relay                 one plaintext userspace hop (haproxy mode tcp in node n1)
#   relay2                two plaintext hops, haproxy in n1 -> haproxy in n2: what any pair
#                         of proxies costs before TLS (the floor of a two-node tunnel)
#   stunnel               stunnel client in n1 + stunnel server in n2, mutual TLS 1.3, P-256
#   haproxy-mtls          haproxy in n1 + haproxy in n2, mutual TLS 1.3, P-256
#   zmesh-cross           n1a -> n2a captured by the zmesh datapath through both ztunnels
#                         (mutual TLS HBONE between the nodes)
#   zmesh-same            n1a -> n1b through node n1's ztunnel
#   zmesh-pol10/-pol1000  zmesh-cross with 10 / 1,000 Istio AuthorizationPolicies (ALLOW, all
#                         letting the client through) loaded: connection rate and time only
#   zmesh-scale           a config of 50,000 workloads and 10,000 services swapped in: the
#                         time both ztunnels take to load and apply it, the RSS it adds, and
#                         the connection figures with it in force
#   zmesh-waypoint        n1a -> service VIP -> ztunnel n1 -> waypoint (pod n2b) -> ztunnel
#                         n2 -> n2a: request/response, maximum rate and connection figures,
#                         the waypoint's own CPU and RSS beside the ztunnels'; compared with
#                         zmesh-cross (the same load through the ztunnels only) and direct
#   zmesh-idle10k         ztunnel RSS per idle tunnelled connection (10,000 held n1a -> n2a)
# Figures: iperf3 throughput (1 and 4 streams), open-loop request/response latency at 1000
# and 5000 req/s with 1 KiB responses, new connections/s and each connection's connect-to-
# answer time (tests/tools/zm-rr), CPU seconds of the proxy processes per GiB and per 1,000
# requests, their RSS idle and under load, and the one-core AES-128-GCM ceiling (openssl
# speed). direct, zmesh-cross and zmesh-waypoint also measure the highest request rate over
# LOAD_CONNS keep-alive connections (zm-rr load, closed loop) and the requests each CPU-second
# served: of the whole path (client, server and proxies) and of the proxies alone. Each
# figure is repeated (3 times; QUICK=1: 2, shorter runs), unpinned and pinned (client +
# proxy A on CPU 0, proxy B + server on CPU 1; QUICK=1: unpinned only); the policy, waypoint
# and idle scenarios run in the first placement only (time budget; the idle one once).
# scripts/bench-report.py turns the samples into build/bench/results.json and results.md
# (printed at the end); a scenario or figure that could not be measured is printed as failed
# with its reason, never left out.
# BENCH_ONLY="SCENARIO..." runs only the named scenarios ("zmesh": all zmesh ones, "crypto":
# the openssl ceiling), e.g. BENCH_ONLY="direct zmesh-cross zmesh-waypoint" for the waypoint
# comparison. In the first placement, perf profiles of both ztunnels go to
# build/bench/profile-zt-*.txt (BENCH_PROFILE=0: none). For A/B runs: BENCH_ZTUNNEL (another
# ztunnel build), BENCH_IPERF_ARGS (extra iperf3 client arguments, e.g. "-b 2000M"),
# BENCH_REPS, BENCH_PLACEMENTS. The report ends with issue 18's goals table.
# All traffic stays inside the harness's namespaces; configs, certificates and pid files live
# in the run's state directory and go with it.
set -u # not -e: every step reports its own failure into the results
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
OUT=$BUILD/bench
PY=/usr/bin/python3
REPORT="$PY scripts/bench-report.py"
report() { $REPORT "$@" 2>&1 | sed "s/^bench-report: //"; return "${PIPESTATUS[0]}"; }
RR=$BUILD/tests/tools/zm-rr
ZMESHCTL=$BUILD/bin/zmeshctl
ZTUNNEL=${BENCH_ZTUNNEL:-$BUILD/bin/ztunnel} # BENCH_ZTUNNEL: another build, for A/B runs
WAYPOINT=$BUILD/bin/waypoint
# Extra ztunnel flags (certificates, log level...) until its command line settles.
ZTUNNEL_ARGS=${ZTUNNEL_ARGS:-}

if [ "$QUICK" = 1 ]; then
	REPS=2 T_IPERF=1 T_RR=1 T_CONN=1 PLACEMENTS="unpinned"
else
	REPS=3 T_IPERF=3 T_RR=3 T_CONN=2 PLACEMENTS="unpinned pinned"
fi
REPS=${BENCH_REPS:-$REPS}
PLACEMENTS=${BENCH_PLACEMENTS:-$PLACEMENTS}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
LOAD_CONNS=${BENCH_LOAD_CONNS:-16} # keep-alive connections of the maximum-rate figure
BENCH_ONLY=${BENCH_ONLY:-}         # scenarios to run (see above); empty: all of them

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { printf 'bench: %s\n' "$*" >&2; }
want() { # want SCENARIO: whether this run measures it (BENCH_ONLY)
	[ -z "$BENCH_ONLY" ] && return 0
	case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac
	[[ $1 == zmesh-* && " $BENCH_ONLY " == *" zmesh "* ]]
}

[ -x "$PY" ] || die "$PY not found (Debian package python3)"
ALL_SCENARIOS="direct direct-same relay relay2 stunnel haproxy-mtls zmesh-cross zmesh-same"
ALL_SCENARIOS+=" zmesh-pol10 zmesh-pol1000 zmesh-scale zmesh-waypoint"
ALL_SCENARIOS+=" zmesh-idle$((IDLE_CONNS / 1000))k"
for sc in $BENCH_ONLY; do
	case " $ALL_SCENARIOS zmesh crypto " in
	*" $sc "*) ;;
	*) die "BENCH_ONLY: unknown scenario '$sc' (known: $ALL_SCENARIOS zmesh crypto)" ;;
	esac
done
[ -x "$RR" ] || die "$RR is missing: run make first"
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"

# Tools by name, with the Debian package that provides them. A missing one fails only the
# scenarios and figures that need it.
declare -A MISSING=()
for t in iperf3:iperf3 stunnel4:stunnel4 haproxy:haproxy openssl:openssl taskset:util-linux; do
	command -v "${t%%:*}" >/dev/null || MISSING[${t%%:*}]="missing ${t%%:*} (Debian package ${t#*:})"
done
for t in "${!MISSING[@]}"; do log "${MISSING[$t]}"; done
missing() { # missing TOOL...: prints the first missing tool's message, true if any
	local t
	for t in "$@"; do
		[ -n "${MISSING[$t]:-}" ] && { echo "${MISSING[$t]}"; return 0; }
	done
	return 1
}

rm -rf "$OUT"
mkdir -p "$OUT/raw" "$OUT/logs" || die "cannot create $OUT"
SAMPLES=$OUT/samples.jsonl
: >"$SAMPLES"
T0=$(date +%s)

. tests/lib/harness.sh
h_init
h_topology 2 2
# Connection-rate runs open tens of thousands of connections a minute from the same pod and
# proxies: reuse TIME_WAIT ports (our namespaces only) instead of running out of them. The
# range starts above ztunnel's ports (15000-15021): the baseline proxies' outgoing
# connections from local port 15006 left TIME_WAIT sockets there, and ztunnel's listener
# then failed with "port 15006 failed: Address already in use".
for ns in n1 n2 n1a n1b n2a n2b; do
	ip netns exec "$(h_ns "$ns")" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="16000 65000" >/dev/null
done
CLK_TCK=$(getconf CLK_TCK)
SRV=$(h_ip4 n2a)      # cross-node server
SRV_SAME=$(h_ip4 n1b) # same-node server
GW1=198.18.1.1        # node n1's address on its pod veths (where the n1-side proxies listen)
WIRE2=$(h_node_ip4 n2)

# --- samples -------------------------------------------------------------------------------

json_str() { # json_str TEXT: TEXT as a JSON string body (one line, quotes escaped)
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '%s' "$s" | tr -d '\000-\037' | cut -c1-160
}
sample() { # sample PLACEMENT SCENARIO FIGURE REP VALUE
	printf '{"placement": "%s", "scenario": "%s", "figure": "%s", "rep": %s, "value": %s}\n' \
		"$1" "$2" "$3" "$4" "$5" >>"$SAMPLES"
}
sample_ratio() { # sample_ratio PLACEMENT SCENARIO FIGURE REP NUM DEN (value = NUM / DEN)
	printf '{"placement": "%s", "scenario": "%s", "figure": "%s", "rep": %s, "num": %s, "den": %s}\n' \
		"$1" "$2" "$3" "$4" "$5" "$6" >>"$SAMPLES"
}
fail() { # fail PLACEMENT SCENARIO FIGURE REP REASON
	printf '{"placement": "%s", "scenario": "%s", "figure": "%s", "rep": %s, "failed": "%s"}\n' \
		"$1" "$2" "$3" "$4" "$(json_str "$5")" >>"$SAMPLES"
}
fail_all() { # fail_all PLACEMENT SCENARIO REASON: the whole scenario could not run
	log "$2 ($1): failed: $3"
	printf '{"placement": "%s", "scenario": "%s", "figure": "*", "failed": "%s"}\n' \
		"$1" "$2" "$(json_str "$3")" >>"$SAMPLES"
}
why() { # why FILE [FALLBACK]: the most telling line of a tool's error output
	local l
	l=$(grep -m1 -iE 'alert|error|fatal|fail|refused|reset|not ' "$1" 2>/dev/null)
	[ -n "$l" ] || l=$(grep -v '^\s*$' "$1" 2>/dev/null | grep -ivE '^(warning|\[notice\])' | head -1)
	echo "${l:-${2:-}}"
}

# --- processes: CPU and memory of a scenario's proxies -------------------------------------

proc_tree() { # proc_tree PID...: the PIDs and all their live descendants
	local p
	for p in "$@"; do
		[ -d "/proc/$p" ] || continue
		echo "$p"
		# shellcheck disable=SC2046
		proc_tree $(cat /proc/"$p"/task/*/children 2>/dev/null)
	done
}
cpu_ticks() { # cpu_ticks PID...: utime+stime (+ reaped children's) of the trees, in ticks
	local p s sum=0
	for p in $(proc_tree "$@"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s
		sum=$((sum + ${12} + ${13} + ${14} + ${15}))
	done
	echo "$sum"
}
rss_kib() { # rss_kib PID...: summed VmRSS of the trees
	local p r sum=0
	for p in $(proc_tree "$@"); do
		r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${r:-0}))
	done
	echo "$sum"
}
RSS_PIDS=()
rss_watch_start() { # rss_watch_start FILE PID...: peak RSS of the trees into FILE, every 0.2 s
	local f=$1
	shift
	(
		max=0
		while kill -0 $$ 2>/dev/null; do # ends with the script, even if it dies mid-figure
			r=$(rss_kib "$@")
			[ "$r" -gt "$max" ] && max=$r && echo "$max" >"$f"
			sleep 0.2
		done
	) &
	RSS_PIDS+=($!)
}
rss_watch_stop() { # stops every watcher rss_watch_start started
	local p
	for p in "${RSS_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	RSS_PIDS=()
}
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", t / hz }'; }

# --- placement: pinned runs put the client and proxy A on CPU 0, proxy B and server on 1 ----

PLACE=unpinned
pin() { # pin CPU: the command prefix that places a process in the current placement
	[ "$PLACE" = pinned ] && echo "taskset -c $1"
}

# --- figures -------------------------------------------------------------------------------

# measure PLACEMENT SCENARIO REP HOST IPERF_PORT RR_PORT [PROXY PID...]: every per-scenario
# figure in FIGS (default: iperf rr conn; "max" adds the maximum-rate figures) once; CPU and
# RSS only when the scenario has proxy processes. GROUP_ZT / GROUP_WP (PIDs, normally empty)
# name the ztunnels / the waypoint among the proxies: their CPU per 1,000 requests (and the
# waypoint's RSS and requests per CPU-second) are then also reported on their own.
FIGS="iperf rr conn"
GROUP_ZT='' GROUP_WP=''
has() { case " $FIGS " in *" $1 "*) return 0 ;; esac; return 1; }
measure() {
	local pl=$1 sc=$2 rep=$3 host=$4 iport=$5 rport=$6
	shift 6
	local pids=("$@") raw="$OUT/raw/$pl-$sc-$rep" f n out c0 c1 cpu_io=0 bytes=0 cpu_rr=0 reqs=0
	local rate z0 z1 w0 w1 cpu_zt=0 cpu_wp=0 g
	[ ${#pids[@]} -gt 0 ] &&
		sample "$pl" "$sc" rss_idle_mib "$rep" "$(kib_to_mib "$(rss_kib "${pids[@]}")")"
	# shellcheck disable=SC2086
	[ -n "$GROUP_WP" ] &&
		sample "$pl" "$sc" wp_rss_idle_mib "$rep" "$(kib_to_mib "$(rss_kib $GROUP_WP)")"
	[ ${#pids[@]} -gt 0 ] && rss_watch_start "$raw.rss" "${pids[@]}"
	# shellcheck disable=SC2086
	[ -n "$GROUP_WP" ] && rss_watch_start "$raw.wp.rss" $GROUP_WP
	for n in 1 4; do
		has iperf || break
		f=tput_${n}_gbps
		if out=$(missing iperf3); then
			fail "$pl" "$sc" "$f" "$rep" "$out"
			continue
		fi
		c0=$(cpu_ticks "${pids[@]}")
		# shellcheck disable=SC2046
		h_exec n1a timeout $((T_IPERF + 20)) $(pin 0) iperf3 -c "$host" -p "$iport" ${BENCH_IPERF_ARGS:-} \
			-t "$T_IPERF" -P "$n" -J >"$raw.iperf$n.json" 2>"$raw.iperf$n.err"
		c1=$(cpu_ticks "${pids[@]}")
		if out=$(report parse-iperf "$raw.iperf$n.json" 2>&1); then
			set -- $out
			sample "$pl" "$sc" "$f" "$rep" "$1"
			cpu_io=$((cpu_io + c1 - c0))
			bytes=$((bytes + $2))
		else
			fail "$pl" "$sc" "$f" "$rep" "$out"
		fi
	done
	for rate in 1000 5000; do
		has rr || break
		f=rr$((rate / 1000))k
		# shellcheck disable=SC2086
		c0=$(cpu_ticks "${pids[@]}") z0=$(cpu_ticks $GROUP_ZT) w0=$(cpu_ticks $GROUP_WP)
		# shellcheck disable=SC2046
		h_exec n1a timeout $((T_RR + 20)) $(pin 0) "$RR" client "$host" "$rport" \
			--rate "$rate" --duration "$T_RR" >"$raw.$f.json" 2>"$raw.$f.err"
		# shellcheck disable=SC2086
		c1=$(cpu_ticks "${pids[@]}") z1=$(cpu_ticks $GROUP_ZT) w1=$(cpu_ticks $GROUP_WP)
		if out=$(report parse-rr "$raw.$f.json" 2>&1); then
			set -- $out
			sample "$pl" "$sc" "${f}_p50_us" "$rep" "$1"
			sample "$pl" "$sc" "${f}_p90_us" "$rep" "$2"
			sample "$pl" "$sc" "${f}_p99_us" "$rep" "$3"
			[ "$rate" = 5000 ] && sample "$pl" "$sc" rr5k_rps "$rep" "$6"
			cpu_rr=$((cpu_rr + c1 - c0))
			cpu_zt=$((cpu_zt + z1 - z0))
			cpu_wp=$((cpu_wp + w1 - w0))
			reqs=$((reqs + $4))
		else
			out="$out $(why "$raw.$f.err")"
			for n in p50_us p90_us p99_us; do fail "$pl" "$sc" "${f}_$n" "$rep" "$out"; done
			[ "$rate" = 5000 ] && fail "$pl" "$sc" rr5k_rps "$rep" "$out"
		fi
	done
	has max && measure_max "$pl" "$sc" "$rep" "$host" "$rport" "${pids[@]}"
	has conn && measure_conn "$pl" "$sc" "$rep" "$host" "$rport"
	[ ${#pids[@]} -gt 0 ] || return 0
	rss_watch_stop
	for g in rss_load_mib:rss wp_rss_load_mib:wp.rss; do
		[ "${g%%:*}" = wp_rss_load_mib ] && [ -z "$GROUP_WP" ] && continue
		if [ -s "$raw.${g#*:}" ]; then
			sample "$pl" "$sc" "${g%%:*}" "$rep" "$(kib_to_mib "$(cat "$raw.${g#*:}")")"
		else
			fail "$pl" "$sc" "${g%%:*}" "$rep" "no RSS sample"
		fi
	done
	if ! has iperf; then
		:
	elif [ "$bytes" -gt 0 ]; then
		sample_ratio "$pl" "$sc" cpu_s_per_gib "$rep" "$(ticks_to_s "$cpu_io")" \
			"$(awk -v b="$bytes" 'BEGIN { printf "%.6f", b / 1073741824 }')"
	else
		fail "$pl" "$sc" cpu_s_per_gib "$rep" "no throughput sample"
	fi
	if has rr; then
		per_1k "$pl" "$sc" "$rep" cpu_ms_per_1k_req "$cpu_rr" "$reqs"
		[ -n "$GROUP_ZT" ] &&
			per_1k "$pl" "$sc" "$rep" cpu_ms_per_1k_req_zt "$cpu_zt" "$reqs"
		[ -n "$GROUP_WP" ] &&
			per_1k "$pl" "$sc" "$rep" cpu_ms_per_1k_req_wp "$cpu_wp" "$reqs"
	fi
	return 0
}

# per_1k PLACEMENT SCENARIO REP FIGURE TICKS REQUESTS: CPU milliseconds per 1,000 requests.
per_1k() {
	if [ "$6" -gt 0 ]; then
		sample_ratio "$1" "$2" "$4" "$3" "$(ticks_to_s $(($5 * 1000)))" \
			"$(awk -v r="$6" 'BEGIN { printf "%.3f", r / 1000 }')"
	else
		fail "$1" "$2" "$4" "$3" "no request/response sample"
	fi
}

# measure_max PLACEMENT SCENARIO REP HOST PORT [PROXY PID...]: the highest request rate over
# LOAD_CONNS keep-alive connections (zm-rr load, closed loop, 1 KiB answers) and the requests
# served per CPU-second: of the whole path (the client's own CPU, as zm-rr reports it, plus
# the servers' and the proxies'), of the proxies, and of the waypoint (GROUP_WP) alone.
measure_max() {
	local pl=$1 sc=$2 rep=$3 host=$4 port=$5 raw="$OUT/raw/$1-$2-$3" out f
	shift 5
	local pids=("$@") c0 c1 s0 s1 w0 w1 reqs cli proxy_s
	# shellcheck disable=SC2086
	c0=$(cpu_ticks "${pids[@]}") s0=$(cpu_ticks $RR_SERVER_PIDS) w0=$(cpu_ticks $GROUP_WP)
	# shellcheck disable=SC2046
	h_exec n1a timeout $((T_RR + 20)) $(pin 0) "$RR" load "$host" "$port" \
		--duration "$T_RR" --conns "$LOAD_CONNS" >"$raw.max.json" 2>"$raw.max.err"
	# shellcheck disable=SC2086
	c1=$(cpu_ticks "${pids[@]}") s1=$(cpu_ticks $RR_SERVER_PIDS) w1=$(cpu_ticks $GROUP_WP)
	if ! out=$(report parse-load "$raw.max.json" 2>&1); then
		out="$out $(why "$raw.max.err")"
		for f in max_rps rps_per_core rps_per_core_proxy rps_per_core_wp; do
			[ "$f" = rps_per_core_proxy ] && [ ${#pids[@]} = 0 ] && continue
			[ "$f" = rps_per_core_wp ] && [ -z "$GROUP_WP" ] && continue
			fail "$pl" "$sc" "$f" "$rep" "$out"
		done
		return
	fi
	# shellcheck disable=SC2086
	set -- $out
	reqs=$2 cli=$6
	sample "$pl" "$sc" max_rps "$rep" "$1"
	proxy_s=$(ticks_to_s $((c1 - c0)))
	sample_ratio "$pl" "$sc" rps_per_core "$rep" "$reqs" \
		"$(awk -v c="$cli" -v s="$(ticks_to_s $((s1 - s0)))" -v p="$proxy_s" \
			'BEGIN { printf "%.4f", c + s + p }')"
	[ ${#pids[@]} -gt 0 ] &&
		sample_ratio "$pl" "$sc" rps_per_core_proxy "$rep" "$reqs" "$proxy_s"
	[ -n "$GROUP_WP" ] && sample_ratio "$pl" "$sc" rps_per_core_wp "$rep" "$reqs" \
		"$(ticks_to_s $((w1 - w0)))"
	return 0
}

# measure_conn PLACEMENT SCENARIO REP HOST PORT: new connections/s and each connection's
# connect-to-answer time (zm-rr connect, closed loop).
measure_conn() {
	local pl=$1 sc=$2 rep=$3 raw="$OUT/raw/$1-$2-$3" out f
	# shellcheck disable=SC2046
	h_exec n1a timeout $((T_CONN + 20)) $(pin 0) "$RR" connect "$4" "$5" \
		--duration "$T_CONN" >"$raw.conn.json" 2>"$raw.conn.err"
	if out=$(report parse-connect "$raw.conn.json" 2>&1); then
		set -- $out
		sample "$pl" "$sc" conn_per_s "$rep" "$1"
		sample "$pl" "$sc" conn_p50_us "$rep" "$4"
		sample "$pl" "$sc" conn_p99_us "$rep" "$6"
	else
		out="$out $(why "$raw.conn.err")"
		for f in conn_per_s conn_p50_us conn_p99_us; do fail "$pl" "$sc" "$f" "$rep" "$out"; done
	fi
}

crypto_ceiling() {
	local rep out
	for ((rep = 1; rep <= REPS; rep++)); do
		if out=$(missing openssl taskset); then
			fail - crypto aes128gcm_16k_Bps "$rep" "$out"
			continue
		fi
		h_exec n1 taskset -c 0 openssl speed -mr -evp aes-128-gcm -seconds 2 -bytes 16384 \
			>"$OUT/raw/speed-$rep.txt" 2>"$OUT/raw/speed-$rep.err"
		if out=$(report parse-speed "$OUT/raw/speed-$rep.txt" 2>&1); then
			sample - crypto aes128gcm_16k_Bps "$rep" "$out"
		else
			fail - crypto aes128gcm_16k_Bps "$rep" "$out"
		fi
	done
}

# --- servers and baseline proxies -----------------------------------------------------------

SERVER_PIDS=() RR_SERVER_PIDS='' # all servers; the zm-rr ones (their CPU: measure_max)
start_servers() {
	local p
	SERVER_PIDS=() RR_SERVER_PIDS=''
	for p in n2a n1b; do
		if [ -z "${MISSING[iperf3]:-}" ]; then
			# shellcheck disable=SC2046
			h_bg "$p" $(pin 1) iperf3 -s -p 5201 >"$OUT/logs/iperf3-$p-$PLACE.log" 2>&1
			SERVER_PIDS+=("$H_LAST_PID")
		fi
		# shellcheck disable=SC2046
		h_bg "$p" $(pin 1) "$RR" server --port 8080 --size 1024 \
			>"$OUT/logs/zm-rr-$p-$PLACE.log" 2>&1
		SERVER_PIDS+=("$H_LAST_PID")
		RR_SERVER_PIDS+=" $H_LAST_PID"
	done
	for p in n2a n1b; do
		h_wait_port "$p" 8080 || log "zm-rr server in $p did not start"
		[ -n "${MISSING[iperf3]:-}" ] || h_wait_port "$p" 5201 || log "iperf3 -s in $p did not start"
	done
}
stop_pids() {
	local p
	for p in "$@"; do h_stop "$p"; done
}

# make_certs DIR: a P-256 CA, a server certificate (server.bench) and a client certificate
# (client.bench), each also as cert+key PEM for haproxy.
make_certs() {
	local d=$1 n
	mkdir -p "$d" && chmod 700 "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=zmesh-bench-ca -keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
		2>>"$d/openssl.log" || return 1
	for n in server client; do
		printf 'subjectAltName=DNS:%s.bench\nextendedKeyUsage=%sAuth\n' "$n" "$n" >"$d/$n.ext"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=$n.bench" -keyout "$d/$n.key" -out "$d/$n.csr" 2>>"$d/openssl.log" &&
			openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
				-CAcreateserial -days 2 -extfile "$d/$n.ext" -out "$d/$n.pem" \
				2>>"$d/openssl.log" || return 1
		cat "$d/$n.pem" "$d/$n.key" >"$d/$n-full.pem"
	done
}

# start_proxy NAME NODE CPU PORT CMD...: starts one proxy process in a node namespace and
# waits for PORT; sets PROXY_PID. Returns 1 (with the reason in PROXY_ERR) if it did not start.
PROXY_PID= PROXY_ERR=
start_proxy() {
	local name=$1 node=$2 cpu=$3 port=$4 log
	shift 4
	log="$OUT/logs/$name-$PLACE.log"
	# shellcheck disable=SC2046
	h_bg "$node" $(pin "$cpu") "$@" >"$log" 2>&1
	PROXY_PID=$H_LAST_PID
	if h_wait_port "$node" "$port" 5 && [ -d "/proc/$PROXY_PID" ]; then
		return 0
	fi
	PROXY_ERR="$name did not start: $(why "$log" "?")"
	return 1
}

haproxy_conf() { # haproxy_conf FILE, body on stdin after a common head
	{
		printf 'global\n\tmaxconn 4000\n\tpidfile %s.pid\n' "$1"
		printf '\tssl-default-bind-options ssl-min-ver TLSv1.3\n'
		printf '\tssl-default-server-options ssl-min-ver TLSv1.3\n'
		printf 'defaults\n\tmode tcp\n\ttimeout connect 5s\n'
		printf '\ttimeout client 60s\n\ttimeout server 60s\n'
		cat
	} >"$1"
}

# Per scenario: the PIDs of its proxies, or the reason it cannot run in this placement.
declare -A SC_PIDS=() SC_FAIL=()

start_relay() {
	local c=$H_STATE/bench/relay.cfg
	haproxy_conf "$c" <<-EOF
		listen iperf
		$(printf '\t')bind $GW1:15201
		$(printf '\t')server s $SRV:5201
		listen rr
		$(printf '\t')bind $GW1:18080
		$(printf '\t')server s $SRV:8080
	EOF
	if start_proxy relay n1 0 18080 haproxy -db -f "$c"; then
		SC_PIDS[relay]=$PROXY_PID
	else
		SC_FAIL[relay]=$PROXY_ERR
	fi
}

start_relay2() {
	local c1=$H_STATE/bench/relay2-n1.cfg c2=$H_STATE/bench/relay2-n2.cfg t p2
	t=$(printf '\t')
	haproxy_conf "$c1" <<-EOF
		listen iperf
		${t}bind $GW1:45201
		${t}server s $WIRE2:45443
		listen rr
		${t}bind $GW1:48080
		${t}server s $WIRE2:48444
	EOF
	haproxy_conf "$c2" <<-EOF
		listen iperf
		${t}bind $WIRE2:45443
		${t}server s $SRV:5201
		listen rr
		${t}bind $WIRE2:48444
		${t}server s $SRV:8080
	EOF
	if start_proxy relay2-n2 n2 1 48444 haproxy -db -f "$c2"; then
		p2=$PROXY_PID
		if start_proxy relay2-n1 n1 0 48080 haproxy -db -f "$c1"; then
			SC_PIDS[relay2]="$PROXY_PID $p2"
			return
		fi
		h_stop "$p2"
	fi
	SC_FAIL[relay2]=$PROXY_ERR
}

start_stunnel() {
	local d=$H_STATE/bench cs=$H_STATE/bench/stunnel-n1.conf ss=$H_STATE/bench/stunnel-n2.conf
	local a b common="sslVersionMin = TLSv1.3
CAfile = $d/certs/ca.pem
verifyChain = yes"
	{
		printf 'foreground = yes\npid = %s/stunnel-n1.pid\nsyslog = no\ndebug = 3\n' "$d"
		for a in 25201:25443 28080:28444; do
			printf '[c%s]\nclient = yes\naccept = %s:%s\nconnect = %s:%s\n' \
				"${a%%:*}" "$GW1" "${a%%:*}" "$WIRE2" "${a#*:}"
			printf 'cert = %s/certs/client.pem\nkey = %s/certs/client.key\n' "$d" "$d"
			printf 'checkHost = server.bench\n%s\n' "$common"
		done
	} >"$cs"
	{
		printf 'foreground = yes\npid = %s/stunnel-n2.pid\nsyslog = no\ndebug = 3\n' "$d"
		for b in 25443:5201 28444:8080; do
			printf '[s%s]\naccept = %s:%s\nconnect = %s:%s\n' \
				"${b%%:*}" "$WIRE2" "${b%%:*}" "$SRV" "${b#*:}"
			printf 'cert = %s/certs/server.pem\nkey = %s/certs/server.key\n' "$d" "$d"
			printf 'requireCert = yes\n%s\n' "$common"
		done
	} >"$ss"
	local p1 p2
	if start_proxy stunnel-n2 n2 1 28444 stunnel4 "$ss"; then
		p2=$PROXY_PID
		if start_proxy stunnel-n1 n1 0 28080 stunnel4 "$cs"; then
			p1=$PROXY_PID
			SC_PIDS[stunnel]="$p1 $p2"
			return
		fi
		h_stop "$p2"
	fi
	SC_FAIL[stunnel]=$PROXY_ERR
}

start_haproxy_mtls() {
	local d=$H_STATE/bench c1=$H_STATE/bench/haproxy-n1.cfg c2=$H_STATE/bench/haproxy-n2.cfg
	local tls="ca-file $d/certs/ca.pem verify required" t
	t=$(printf '\t')
	haproxy_conf "$c1" <<-EOF
		listen iperf
		${t}bind $GW1:35201
		${t}server s $WIRE2:35443 ssl crt $d/certs/client-full.pem $tls verifyhost server.bench sni str(server.bench)
		listen rr
		${t}bind $GW1:38080
		${t}server s $WIRE2:38443 ssl crt $d/certs/client-full.pem $tls verifyhost server.bench sni str(server.bench)
	EOF
	haproxy_conf "$c2" <<-EOF
		listen iperf
		${t}bind $WIRE2:35443 ssl crt $d/certs/server-full.pem $tls
		${t}server s $SRV:5201
		listen rr
		${t}bind $WIRE2:38443 ssl crt $d/certs/server-full.pem $tls
		${t}server s $SRV:8080
	EOF
	local p2
	if start_proxy haproxy-n2 n2 1 38443 haproxy -db -f "$c2"; then
		p2=$PROXY_PID
		if start_proxy haproxy-n1 n1 0 38080 haproxy -db -f "$c1"; then
			SC_PIDS[haproxy-mtls]="$PROXY_PID $p2"
			return
		fi
		h_stop "$p2"
	fi
	SC_FAIL[haproxy-mtls]=$PROXY_ERR
}

start_baselines() {
	local m
	SC_PIDS=() SC_FAIL=()
	mkdir -p "$H_STATE/bench"
	if ! want relay; then
		:
	elif m=$(missing haproxy); then
		SC_FAIL[relay]=$m
	else
		start_relay
	fi
	if ! want relay2; then
		:
	elif m=$(missing haproxy); then
		SC_FAIL[relay2]=$m
	else
		start_relay2
	fi
	if ! want stunnel; then
		:
	elif m=$(missing stunnel4 openssl); then
		SC_FAIL[stunnel]=$m
	elif [ -z "$CERTS_OK" ]; then
		SC_FAIL[stunnel]="certificates: $CERTS_ERR"
	else
		start_stunnel
	fi
	if ! want haproxy-mtls; then
		:
	elif m=$(missing haproxy openssl); then
		SC_FAIL[haproxy-mtls]=$m
	elif [ -z "$CERTS_OK" ]; then
		SC_FAIL[haproxy-mtls]="certificates: $CERTS_ERR"
	else
		start_haproxy_mtls
	fi
}

# run_baselines: every baseline scenario, repetitions interleaved across scenarios so a slow
# drift of the machine spreads over all of them instead of biasing one.
run_baselines() {
	local rep sc
	for sc in relay relay2 stunnel haproxy-mtls; do
		[ -n "${SC_FAIL[$sc]:-}" ] && fail_all "$PLACE" "$sc" "${SC_FAIL[$sc]}"
	done
	for ((rep = 1; rep <= REPS; rep++)); do
		log "$PLACE: baselines, repetition $rep/$REPS"
		want direct &&
			FIGS="iperf rr max conn" measure "$PLACE" direct "$rep" "$SRV" 5201 8080
		want direct-same && measure "$PLACE" direct-same "$rep" "$SRV_SAME" 5201 8080
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[relay]:-}" ] &&
			measure "$PLACE" relay "$rep" "$GW1" 15201 18080 ${SC_PIDS[relay]}
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[relay2]:-}" ] &&
			measure "$PLACE" relay2 "$rep" "$GW1" 45201 48080 ${SC_PIDS[relay2]}
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[stunnel]:-}" ] &&
			measure "$PLACE" stunnel "$rep" "$GW1" 25201 28080 ${SC_PIDS[stunnel]}
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[haproxy-mtls]:-}" ] &&
			measure "$PLACE" haproxy-mtls "$rep" "$GW1" 35201 38080 ${SC_PIDS[haproxy-mtls]}
	done
	for sc in relay relay2 stunnel haproxy-mtls; do
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[$sc]:-}" ] && stop_pids ${SC_PIDS[$sc]}
	done
}

# --- zmesh ----------------------------------------------------------------------------------
# Set up as tests/integration/ztunnel-hbone.sh does: a dev CA, `zmeshctl datapath load` per
# node and one ztunnel per node with --config/--node/--netns/--pin-dir/--ca-dir. ztunnel
# enrolls its node's HBONE workloads itself (a manual `zmeshctl enroll` on top of that
# conflicts with it). The same mesh, started once per placement, serves every zmesh scenario:
# the policy scenarios swap the --policy file (reloaded by polling), the waypoint scenario
# adds a waypoint pod, the idle-connection scenario holds 10,000 tunnelled connections.

VIP=198.19.0.10 # service "rr" (endpoint n2a:8080) whose traffic goes through the waypoint
WP_ID=spiffe://cluster.local/ns/bench/sa/waypoint

zm() { # zm NODE ARGS...: zmeshctl against a node namespace and its pin directory
	local node=$1
	shift
	"$ZMESHCTL" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$(h_pin_dir "$node")" "$@"
}

# zmesh_config FILE: the local config: n1a (client), n1b and n2a (servers) are HBONE
# workloads; n2b is the waypoint pod (plain TCP, not captured); service rr has the waypoint.
zmesh_config() {
	local p
	{
		echo "workloads:"
		for p in n1a n1b n2a; do
			printf -- '- {uid: Kubernetes//Pod/bench/%s, name: %s, namespace: bench, ' "$p" "$p"
			printf 'serviceAccount: %s, protocol: HBONE, node: %s, ' \
				"$([ "$p" = n1a ] && echo client || echo server)" "$(h_pod_node "$p")"
			printf 'workloadIps: ["%s", "%s"], labels: {app: %s}' "$(h_ip4 "$p")" \
				"$(h_ip6 "$p")" "$([ "$p" = n1a ] && echo client || echo server)"
			[ "$p" = n2a ] && printf ', services: {bench/rr.bench.svc.cluster.local: {8080: 8080}}'
			echo "}"
		done
		printf -- '- {uid: Kubernetes//Pod/bench/waypoint, name: waypoint, namespace: bench, '
		printf 'serviceAccount: waypoint, protocol: TCP, node: n2, workloadIps: ["%s"]}\n' \
			"$(h_ip4 n2b)"
		echo "services:"
		printf -- '- {name: rr, namespace: bench, hostname: rr.bench.svc.cluster.local, '
		printf 'vips: ["/%s"], ports: {8080: 8080}, ' "$VIP"
		printf 'waypoint: {destination: "/%s", hboneMtlsPort: 15008}}\n' "$(h_ip4 n2b)"
	} >"$1"
}

# policy_file FILE N: N AuthorizationPolicies (ALLOW) on the servers, every one of which lets
# the bench client's principal through to 5201 and 8080 (each also names another principal,
# so no two are alike), for the cost of evaluating them on every new connection.
policy_file() {
	local i
	for ((i = 1; i <= $2; i++)); do
		cat <<-EOF
			apiVersion: security.istio.io/v1
			kind: AuthorizationPolicy
			metadata: {name: bench-allow-$i, namespace: bench}
			spec:
			  selector: {matchLabels: {app: server}}
			  action: ALLOW
			  rules:
			  - from:
			    - source: {principals: ["cluster.local/ns/other-$i/sa/client", "cluster.local/ns/bench/sa/client"]}
			    to:
			    - operation: {ports: ["5201", "8080", "8090"]}
			---
		EOF
	done >"$1.tmp" && mv "$1.tmp" "$1"
}

ZM_PIDS=() ZM_LOADED=() ZM_ERR='' ZM_POL=''
listening() { ip netns exec "$(h_ns "$1")" ss -Hltn "sport = :$2" 2>/dev/null | grep -q .; }
ready() { [ "$(h_exec "$1" curl -s -m 1 "http://127.0.0.1:15021/healthz/ready")" = ready ]; }
enrolled() { # enrolled NODE VETH...: the datapath knows every one of these pod veths
	local w v
	w=$(zm "$1" -j workload list 2>/dev/null)
	shift
	for v in "$@"; do grep -q "\"$v\"" <<<"$w" || return 1; done
}
# zmesh_setup: datapath and one ztunnel per node, pods enrolled by ztunnel. Returns 1 with the
# reason in ZM_ERR when the mesh cannot run. Not in a subshell: it records the PIDs it starts.
zmesh_setup() {
	local d=$H_STATE/zmesh n cpu p log st i
	ZM_PIDS=() ZM_LOADED=()
	[ -x "$ZMESHCTL" ] || { ZM_ERR="zmeshctl not built"; return 1; }
	[ -x "$ZTUNNEL" ] || { ZM_ERR="ztunnel not available (not built)"; return 1; }
	command -v curl >/dev/null || { ZM_ERR="curl missing (Debian package curl)"; return 1; }
	mkdir -p "$d"
	if [ ! -f "$d/ca/ca-cert.pem" ]; then
		"$ZMESHCTL" ca init --dir "$d/ca" >"$d/ca.log" 2>&1 ||
			{ ZM_ERR="zmeshctl ca init: $(why "$d/ca.log" $?)"; return 1; }
	fi
	zmesh_config "$d/config.yaml"
	ZM_POL=$d/policy.yaml
	: >"$ZM_POL"
	for n in n1 n2; do
		log="$OUT/logs/zmeshctl-$n-$PLACE.log"
		ZM_LOADED+=("$n") # before: a load that fails half way is unloaded too
		zm "$n" datapath load --uplink wire0 >>"$log" 2>&1 ||
			{ ZM_ERR="datapath load on $n: $(why "$log" $?)"; return 1; }
	done
	for n in n1 n2; do
		cpu=$([ "$n" = n1 ] && echo 0 || echo 1)
		log="$OUT/logs/ztunnel-$n-$PLACE.log"
		# shellcheck disable=SC2046,SC2086
		h_bg "$n" $(pin "$cpu") "$ZTUNNEL" --config "$d/config.yaml" --node "$n" \
			--netns "/var/run/netns/$(h_ns "$n")" --pin-dir "$(h_pin_dir "$n")" \
			--ca-dir "$d/ca" --policy "$ZM_POL" --poll-ms 200 $ZTUNNEL_ARGS >"$log" 2>&1
		ZM_PIDS+=("$H_LAST_PID")
	done
	# Up when both listen on 15001/15006/15008, say ready, and enrolled their pods; a ztunnel
	# that exits says why.
	for ((i = 0; i < 100; i++)); do
		for p in "${ZM_PIDS[@]}"; do
			if [ -z "$(h__starttime "$p")" ]; then
				wait "$p" 2>/dev/null
				st=$?
				n=$([ "$p" = "${ZM_PIDS[0]}" ] && echo n1 || echo n2)
				ZM_ERR="ztunnel on $n exited ($st): $(why "$OUT/logs/ztunnel-$n-$PLACE.log" "?")"
				return 1
			fi
		done
		if listening n1 15001 && listening n1 15006 && listening n1 15008 &&
			listening n2 15008 && ready n1 && ready n2 &&
			enrolled n1 veth-n1a veth-n1b && enrolled n2 veth-n2a; then
			return 0
		fi
		sleep 0.1
	done
	ZM_ERR="ztunnel not ready or pods not enrolled after 10 s (see $OUT/logs)"
	return 1
}

zmesh_teardown() {
	local n p
	stop_pids "${ZM_PIDS[@]}"
	# Reap them: the next placement's ztunnels bind the same ports in the same namespaces.
	for p in "${ZM_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${ZM_LOADED[@]}"; do
		zm "$n" datapath unload >>"$OUT/logs/zmeshctl-$n-$PLACE.log" 2>&1 ||
			log "datapath unload on $n failed (the namespaces go anyway)"
	done
	ZM_PIDS=() ZM_LOADED=()
}

# captured NODE [COUNTER]: connections the datapath handed to ztunnel so far (default
# captured_outbound), so a mesh figure is never a direct figure in disguise.
captured() {
	zm "$1" stats 2>/dev/null |
		awk -v c="${2:-captured_outbound}" '$1 == c { s += $2 } END { print s + 0 }'
}

# set_policies N: N policies in force on both ztunnels (0 = none). Waits for the reload.
set_policies() {
	local n1 n2 i l1=$OUT/logs/ztunnel-n1-$PLACE.log l2=$OUT/logs/ztunnel-n2-$PLACE.log
	n1=$(grep -c "policy files reloaded" "$l1")
	n2=$(grep -c "policy files reloaded" "$l2")
	if [ "$1" = 0 ]; then : >"$ZM_POL"; else policy_file "$ZM_POL" "$1"; fi
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c "policy files reloaded" "$l1")" -gt "$n1" ] &&
			[ "$(grep -c "policy files reloaded" "$l2")" -gt "$n2" ] && return 0
		sleep 0.1
	done
	return 1
}

run_policies() {
	local n rep sc c0 d0
	for n in 10 1000; do
		sc=zmesh-pol$n
		want "$sc" || continue
		if ! set_policies "$n"; then
			fail_all "$PLACE" "$sc" "ztunnel did not reload $n policies: $(why "$OUT/logs/ztunnel-n2-$PLACE.log" "?")"
			continue
		fi
		c0=$(captured n1)
		d0=$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics | grep -c 'response_flags="DENY"')
		FIGS="conn"
		for ((rep = 1; rep <= REPS; rep++)); do
			log "$PLACE: $n policies, repetition $rep/$REPS"
			measure "$PLACE" "$sc" "$rep" "$SRV" 5201 8080 "${ZM_PIDS[@]}"
		done
		# Where the ztunnels' CPU goes per new connection with the policies loaded.
		[ "$n" = 1000 ] && [ "${BENCH_PROFILE:-1}" = 1 ] &&
			profile "zt-conn-pol$n" "${ZM_PIDS[@]}" -- h_exec n1a timeout $((T_CONN + 20)) \
				"$RR" connect "$SRV" 8080 --duration "$T_CONN"
		FIGS="iperf rr conn"
		if [ "$(captured n1)" = "$c0" ]; then
			fail_all "$PLACE" "$sc" "traffic was not captured (zmeshctl stats unchanged)"
		elif [ "$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics | grep -c 'response_flags="DENY"')" != "$d0" ]; then
			fail_all "$PLACE" "$sc" "connections were denied (DENY series on n2): the policies are wrong"
		fi
	done
	set_policies 0 || log "ztunnel did not reload the empty policy file"
}

# scale_config SMALL OUT: the bench's config (SMALL, zmesh_config) plus SCALE_WL workloads on
# other nodes and SCALE_SVC services of SCALE_WL / SCALE_SVC endpoints each, none of them
# receiving traffic (IPv6 addresses of 2001:2:0:5::/64 and VIPs of 2001:2:0:6::/64): what a
# large cluster's config costs to load, hold and route against.
SCALE_WL=${BENCH_SCALE_WORKLOADS:-50000} SCALE_SVC=${BENCH_SCALE_SERVICES:-10000}
scale_config() {
	$PY - "$1" "$2" "$SCALE_WL" "$SCALE_SVC" <<-'EOF'
		import sys
		small, out, nwl, nsvc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
		lines = open(small).read().splitlines()
		cut = lines.index("services:")
		wl = ["- {uid: Kubernetes//Pod/scale/w%d, name: w%d, namespace: scale, "
		      "serviceAccount: sa%d, protocol: HBONE, node: far%d, "
		      'workloadIps: ["2001:2:0:5::%x"], '
		      "services: {scale/s%d.scale.svc.cluster.local: {80: 8080}}}"
		      % (i, i, i % 100, i % 500, i + 1, i % nsvc) for i in range(nwl)]
		svc = ["- {name: s%d, namespace: scale, hostname: s%d.scale.svc.cluster.local, "
		       'vips: ["/2001:2:0:6::%x"], ports: {80: 8080}}' % (j, j, j + 1)
		       for j in range(nsvc)]
		with open(out, "w") as f:
		    f.write("\n".join(lines[:cut] + wl + lines[cut:] + svc) + "\n")
	EOF
}

# set_config FILE: FILE becomes both ztunnels' config (renamed over it: they poll its mtime);
# waits for both to say it is applied and prints the larger "applied in" time in ms.
set_config() {
	local l1=$OUT/logs/ztunnel-n1-$PLACE.log l2=$OUT/logs/ztunnel-n2-$PLACE.log n1 n2 i
	n1=$(grep -c " applied in " "$l1") n2=$(grep -c " applied in " "$l2")
	mv "$1" "$H_STATE/zmesh/config.yaml" || return 1
	for ((i = 0; i < 600; i++)); do
		if [ "$(grep -c " applied in " "$l1")" -gt "$n1" ] &&
			[ "$(grep -c " applied in " "$l2")" -gt "$n2" ]; then
			cat "$l1" "$l2" | sed -n 's/.* applied in \([0-9]*\) ms.*/\1/p' |
				tail -n +"$((n1 + n2 + 1))" | sort -n | tail -1
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# run_scale: the scale scenario. The ztunnels' RSS before, the time both take to load and
# apply a config of SCALE_WL workloads and SCALE_SVC services (their own log line), the RSS
# that config added, then the connection figures with it in force (against zmesh-cross's,
# measured with the small config); the small config is put back afterwards.
run_scale() {
	local sc=zmesh-scale d=$H_STATE/zmesh rep b a ms c0
	if ! scale_config "$d/config.yaml" "$d/config-scale.yaml" 2>"$OUT/logs/scale-gen.log"; then
		fail_all "$PLACE" $sc "generating the config: $(why "$OUT/logs/scale-gen.log" "?")"
		return
	fi
	b=$(rss_kib "${ZM_PIDS[@]}")
	log "$PLACE: scale, $SCALE_WL workloads and $SCALE_SVC services"
	if ! ms=$(set_config "$d/config-scale.yaml"); then
		fail_all "$PLACE" $sc "ztunnel did not apply the config in 60 s: $(why "$OUT/logs/ztunnel-n1-$PLACE.log" "?")"
	else
		sleep 1
		a=$(rss_kib "${ZM_PIDS[@]}")
		sample "$PLACE" $sc scale_load_s 1 "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
		sample "$PLACE" $sc scale_rss_added_mib 1 "$(kib_to_mib $((a - b)))"
		c0=$(captured n1)
		FIGS="conn"
		for ((rep = 1; rep <= REPS; rep++)); do
			measure "$PLACE" $sc "$rep" "$SRV" 5201 8080 "${ZM_PIDS[@]}"
		done
		FIGS="iperf rr conn"
		[ "$(captured n1)" = "$c0" ] &&
			fail_all "$PLACE" $sc "traffic was not captured (zmeshctl stats unchanged)"
	fi
	zmesh_config "$d/config-small.yaml"
	set_config "$d/config-small.yaml" >/dev/null || log "ztunnel did not take the small config back"
}

run_waypoint() {
	local d=$H_STATE/zmesh sc=zmesh-waypoint rep wp i c0 log=$OUT/logs/waypoint-$PLACE.log
	[ -x "$WAYPOINT" ] || { fail_all "$PLACE" $sc "waypoint not built"; return; }
	cat >"$d/routes.yaml" <<-EOF
		apiVersion: networking.istio.io/v1
		kind: VirtualService
		metadata: {name: rr, namespace: bench}
		spec:
		  hosts: [rr.bench.svc.cluster.local]
		  http:
		  - route:
		    - destination: {host: rr.bench.svc.cluster.local}
	EOF
	# shellcheck disable=SC2046
	h_bg n2b $(pin 1) "$WAYPOINT" --config "$d/routes.yaml" --mesh-config "$d/config.yaml" \
		--identity "$WP_ID" --ca-dir "$d/ca" --netns "/var/run/netns/$(h_ns n2b)" >"$log" 2>&1
	wp=$H_LAST_PID
	for ((i = 0; i < 100; i++)); do
		listening n2b 15008 && ready n2b && break
		sleep 0.1
	done
	if ! ready n2b; then
		fail_all "$PLACE" $sc "waypoint did not start: $(why "$log" "?")"
		h_stop "$wp"
		return
	fi
	c0=$(grep -c "dst.identity=$WP_ID" "$OUT/logs/ztunnel-n1-$PLACE.log")
	for ((rep = 1; rep <= REPS; rep++)); do
		log "$PLACE: waypoint, repetition $rep/$REPS"
		FIGS="rr max conn" GROUP_ZT="${ZM_PIDS[*]}" GROUP_WP=$wp \
			measure "$PLACE" $sc "$rep" "$VIP" 0 8080 "${ZM_PIDS[@]}" "$wp"
	done
	[ "$(grep -c "dst.identity=$WP_ID" "$OUT/logs/ztunnel-n1-$PLACE.log")" -gt "$c0" ] ||
		fail_all "$PLACE" $sc "ztunnel n1 never tunnelled to the waypoint (access log)"
	# Where the waypoint's CPU goes at 1,000 req/s and at the closed-loop maximum (for the
	# waypoint's own work, issue 14's; measured here, changed there).
	if [ "${BENCH_PROFILE:-1}" = 1 ]; then
		profile wp-rr1k "$wp" -- h_exec n1a timeout $((T_RR + 20)) "$RR" client "$VIP" 8080 \
			--rate 1000 --duration "$T_RR"
		profile wp-max "$wp" -- h_exec n1a timeout $((T_RR + 20)) "$RR" load "$VIP" 8080 \
			--duration "$T_RR" --conns "$LOAD_CONNS"
	fi
	h_stop "$wp"
	wait "$wp" 2>/dev/null
}

# run_idle: ztunnel RSS on both nodes before and while n1a holds IDLE_CONNS idle connections
# through the mesh to a holding server in n2a; the difference per connection. File
# descriptor limits are raised to the hard limit for the client and server only (this machine
# caps it at 20000 even for root; ztunnel needs one fd per connection per node, so
# IDLE_CONNS must stay well under the limit ztunnel inherits: checked below).
run_idle() {
	local sc=zmesh-idle$((IDLE_CONNS / 1000))k srv cli i b1 b2 a1 a2 held out
	local res=$OUT/raw/$PLACE-idle.json
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 1000)) ]; then
		fail_all "$PLACE" "$sc" "not run: ulimit -n $(ulimit -n) is too low for $IDLE_CONNS connections"
		return
	fi
	h_bg n2a bash -c "ulimit -n \$(ulimit -Hn) && exec \"\$0\" server --port 8090 --size 16" \
		"$RR" >"$OUT/logs/zm-rr-hold-$PLACE.log" 2>&1
	srv=$H_LAST_PID
	h_wait_port n2a 8090 || { fail_all "$PLACE" "$sc" "holding server did not start"; h_stop "$srv"; return; }
	# Idle: quiet for two of lib/rt's trim periods (RT_HSET_TRIM_MS), so buffers a busy
	# worker kept from the scenarios before are given back, as on an idle node.
	sleep 5
	b1=$(rss_kib "${ZM_PIDS[0]}") b2=$(rss_kib "${ZM_PIDS[1]}")
	for i in 0 1; do # where an idle ztunnel's RSS is: KiB per mapping, largest first
		awk '/^[0-9a-f]+-[0-9a-f]+ / { m = $6 ? $6 : "[anon]" } /^Rss:/ { r[m] += $2 }
			END { for (m in r) if (r[m]) print r[m], m }' "/proc/${ZM_PIDS[$i]}/smaps" |
			sort -rn >"$OUT/raw/$PLACE-idle-rss-n$((i + 1)).txt" 2>/dev/null
	done
	h_bg n1a bash -c "ulimit -n \$(ulimit -Hn) && exec \"\$0\" hold $SRV 8090 --conns $IDLE_CONNS --seconds 300" \
		"$RR" >"$res" 2>"$res.err"
	cli=$H_LAST_PID
	for ((i = 0; i < 1200; i++)); do
		[ -s "$res" ] && break
		[ -d "/proc/$cli" ] || break
		sleep 0.1
	done
	sleep 1
	a1=$(rss_kib "${ZM_PIDS[0]}") a2=$(rss_kib "${ZM_PIDS[1]}")
	held=$(sed -n 's/.*"held": \([0-9]*\).*/\1/p' "$res")
	if [ "${held:-0}" -lt "$IDLE_CONNS" ]; then
		out="held ${held:-0} of $IDLE_CONNS connections: $(why "$res.err" "$(cat "$res")")"
		fail_all "$PLACE" "$sc" "$out"
	else
		sample "$PLACE" "$sc" idle_conns 1 "$held"
		sample "$PLACE" "$sc" rss_idle_mib 1 "$(awk -v k=$((b1 + b2)) 'BEGIN { printf "%.2f", k / 1024 }')"
		sample "$PLACE" "$sc" rss_held_mib 1 "$(awk -v k=$((a1 + a2)) 'BEGIN { printf "%.2f", k / 1024 }')"
		sample "$PLACE" "$sc" zt_rss_idle_mib 1 "$(kib_to_mib $((b1 > b2 ? b1 : b2)))"
		sample_ratio "$PLACE" "$sc" rss_per_conn_n1_b 1 $(((a1 - b1) * 1024)) "$held"
		sample_ratio "$PLACE" "$sc" rss_per_conn_n2_b 1 $(((a2 - b2) * 1024)) "$held"
	fi
	h_stop "$cli"
	h_stop "$srv"
	wait "$cli" "$srv" 2>/dev/null
}

# profile NAME PID... -- CMD...: CMD (a load) while `perf record -g` samples the PIDs (software
# clock: this machine has no hardware counters), then CMD again under `perf trace -s` (system
# calls by thread). The top of both goes to $OUT/profile-NAME.txt: CPU by shared object, the
# symbols above 0.7%, and each thread's most frequent system calls. Evidence for where the
# proxies' CPU goes; never a figure. Skipped with a note when perf is missing.
profile() {
	local name=$1 pids='' perf_pid data=$OUT/raw/$1.perf.data txt=$OUT/profile-$1.txt
	shift
	while [ "$1" != -- ]; do pids+=${pids:+,}$1 && shift; done
	shift
	if ! command -v perf >/dev/null; then
		echo "perf missing (Debian package linux-perf): no profile" >"$txt"
		return 0
	fi
	perf record -q -e cpu-clock -F 999 -g -p "$pids" -o "$data" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 0.3
	"$@" >/dev/null 2>&1
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
	perf trace -s -p "$pids" -o "$OUT/raw/$name.trace.txt" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 0.3
	"$@" >/dev/null 2>&1
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
	{
		echo "# $name: perf record -e cpu-clock -g -p $pids"
		echo "## CPU by shared object"
		perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null |
			grep -v '^#' | grep -v '^$' | head -8
		echo "## symbols >= 0.7%"
		perf report -i "$data" --stdio --no-children --sort dso,sym -g none \
			--percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
		echo "## system calls (perf trace -s, the same load again): calls per thread"
		awk '/events,/ { print } / (calls|---)/ { next }
			$2 ~ /^[0-9]+$/ && NF >= 8 { if (++n[t] <= 6) print }
			/events,/ { t++ }' "$OUT/raw/$name.trace.txt" 2>/dev/null
	} >"$txt"
}

# run_profiles: where the two ztunnels spend their CPU under bulk throughput (iperf3, one
# stream) and under the request load (1,000 req/s and the closed-loop maximum), cross-node.
run_profiles() {
	[ "${BENCH_PROFILE:-1}" = 1 ] || return 0
	log "$PLACE: profiles of both ztunnels (perf record)"
	profile zt-iperf1 "${ZM_PIDS[@]}" -- h_exec n1a timeout $((T_IPERF + 20)) \
		iperf3 -c "$SRV" -p 5201 -t "$T_IPERF" -P 1
	profile zt-iperf4 "${ZM_PIDS[@]}" -- h_exec n1a timeout $((T_IPERF + 20)) \
		iperf3 -c "$SRV" -p 5201 -t "$T_IPERF" -P 4
	profile zt-rr1k "${ZM_PIDS[@]}" -- h_exec n1a timeout $((T_RR + 20)) "$RR" client \
		"$SRV" 8080 --rate 1000 --duration "$T_RR"
	profile zt-conn "${ZM_PIDS[@]}" -- h_exec n1a timeout $((T_CONN + 20)) "$RR" connect \
		"$SRV" 8080 --duration "$T_CONN"
}

run_zmesh() {
	local rep s0 sc
	[ -n "$ZM_SCENARIOS" ] || return 0
	if ! zmesh_setup; then
		for sc in $ZM_SCENARIOS; do fail_all "$PLACE" "$sc" "$ZM_ERR"; done
		zmesh_teardown
		return
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		want zmesh-cross || want zmesh-same || break
		log "$PLACE: zmesh, repetition $rep/$REPS"
		if want zmesh-cross; then
			s0=$(captured n1)
			# The ztunnel-only counterpart of zmesh-waypoint (same client, load, server).
			FIGS="iperf rr max conn" GROUP_ZT="${ZM_PIDS[*]}" \
				measure "$PLACE" zmesh-cross "$rep" "$SRV" 5201 8080 "${ZM_PIDS[@]}"
			[ "$(captured n1)" = "$s0" ] && fail_all "$PLACE" zmesh-cross \
				"traffic was not captured (zmeshctl stats unchanged)"
		fi
		if want zmesh-same; then
			s0=$(captured n1)
			measure "$PLACE" zmesh-same "$rep" "$SRV_SAME" 5201 8080 "${ZM_PIDS[0]}"
			[ "$(captured n1)" = "$s0" ] && fail_all "$PLACE" zmesh-same \
				"traffic was not captured (zmeshctl stats unchanged)"
		fi
	done
	# The extra scenarios run in the first placement only (time budget).
	if [ "$PLACE" = "${PLACEMENTS%% *}" ]; then
		want zmesh-cross && run_profiles
		want zmesh-pol10 || want zmesh-pol1000 && run_policies
		want zmesh-scale && run_scale
		want zmesh-waypoint && run_waypoint
		want "zmesh-idle$((IDLE_CONNS / 1000))k" && run_idle
	fi
	zmesh_teardown
}

# --- the run --------------------------------------------------------------------------------

CERTS_OK= CERTS_ERR=
if [ -z "${MISSING[openssl]:-}" ]; then
	if make_certs "$H_STATE/bench/certs"; then
		CERTS_OK=1
	else
		CERTS_ERR=$(why "$H_STATE/bench/certs/openssl.log" "openssl failed")
	fi
fi

if want crypto; then
	log "crypto ceiling (openssl speed, CPU 0)"
	crypto_ceiling
fi
# The scenarios measured in every placement (the others: in the first one only).
MAIN_SCENARIOS=$(for sc in direct direct-same relay relay2 stunnel haproxy-mtls zmesh-cross zmesh-same; do
	want "$sc" && echo "$sc"
done)
for PLACE in $PLACEMENTS; do
	if [ "$PLACE" = pinned ] && [ -n "${MISSING[taskset]:-}" ]; then
		for sc in $MAIN_SCENARIOS; do fail_all pinned "$sc" "${MISSING[taskset]}"; done
		continue
	fi
	ZM_SCENARIOS=
	for sc in $ALL_SCENARIOS; do
		case $sc in
		zmesh-cross | zmesh-same) ;;
		zmesh-*) [ "$PLACE" = "${PLACEMENTS%% *}" ] || continue ;; # first placement only
		*) continue ;;
		esac
		want "$sc" && ZM_SCENARIOS+=" $sc"
	done
	log "$PLACE: starting servers and baseline proxies"
	start_servers
	start_baselines
	run_baselines
	run_zmesh
	stop_pids "${SERVER_PIDS[@]}"
done

ELAPSED=$(($(date +%s) - T0))
# shellcheck disable=SC2086
MAIN_JSON=$(printf '"%s", ' $MAIN_SCENARIOS | sed 's/, $//')
cat >"$OUT/meta.json" <<EOF
{"quick": $([ "$QUICK" = 1 ] && echo true || echo false), "repetitions": $REPS,
 "placements": "$PLACEMENTS", "scenarios": [$MAIN_JSON],
 "only": "$(json_str "$BENCH_ONLY")", "iperf_s": $T_IPERF, "rr_s": $T_RR, "connect_s": $T_CONN,
 "load_conns": $LOAD_CONNS,
 "elapsed_s": $ELAPSED, "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "kernel": "$(uname -r)",
 "cpus": $(nproc), "cpu_model": "$(json_str "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)")"}
EOF
echo
$REPORT report "$SAMPLES" "$OUT/results.json" "$OUT/results.md" "$OUT/meta.json" ||
	die "report failed (samples kept in $SAMPLES)"
echo
log "done in ${ELAPSED}s: $OUT/results.md, $OUT/results.json (raw outputs in $OUT/raw)"
