#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make bench: the performance protocol of DESIGN.md section 7. Two nodes with two pods each
# (tests/lib/harness.sh); the client is pod n1a, the cross-node server n2a, the same-node
# server n1b. Scenarios:
#   direct, direct-same   pod to pod, nothing in between (the baselines)
#   relay                 one plaintext userspace hop (haproxy mode tcp in node n1)
#   stunnel               stunnel client in n1 + stunnel server in n2, mutual TLS 1.3, P-256
#   haproxy-mtls          haproxy in n1 + haproxy in n2, mutual TLS 1.3, P-256
#   zmesh-cross           n1a -> n2a captured by the zmesh datapath through both ztunnels
#   zmesh-same            n1a -> n1b through node n1's ztunnel
# Figures: iperf3 throughput (1 and 4 streams), open-loop request/response latency at 1000
# and 5000 req/s with 1 KiB responses, new connections/s (tests/tools/zm-rr), CPU seconds of
# the proxy processes per GiB and per 1,000 requests, their RSS idle and under load, and the
# one-core AES-128-GCM ceiling (openssl speed). Each figure is repeated (3 times; QUICK=1: 2,
# shorter runs), unpinned and pinned (client + proxy A on CPU 0, proxy B + server on CPU 1;
# QUICK=1: unpinned only). scripts/bench-report.py turns the samples into
# build/bench/results.json and results.md (printed at the end); a scenario or figure that
# could not be measured is printed as failed with its reason, never left out.
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
ZTUNNEL=$BUILD/bin/ztunnel
# Extra ztunnel flags (certificates, log level...) until its command line settles.
ZTUNNEL_ARGS=${ZTUNNEL_ARGS:-}

if [ "$QUICK" = 1 ]; then
	REPS=2 T_IPERF=1 T_RR=1 T_CONN=1 PLACEMENTS="unpinned"
else
	REPS=3 T_IPERF=3 T_RR=3 T_CONN=2 PLACEMENTS="unpinned pinned"
fi
REPS=${BENCH_REPS:-$REPS}
PLACEMENTS=${BENCH_PLACEMENTS:-$PLACEMENTS}

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { printf 'bench: %s\n' "$*" >&2; }

[ -x "$PY" ] || die "$PY not found (Debian package python3)"
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
# proxies: reuse TIME_WAIT ports (our namespaces only) instead of running out of them.
for ns in n1 n2 n1a n1b n2a n2b; do
	ip netns exec "$(h_ns "$ns")" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="10000 65000" >/dev/null
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
RSS_PID=
rss_watch_start() { # rss_watch_start FILE PID...: peak RSS of the trees into FILE, every 0.2 s
	local f=$1
	shift
	(
		max=0
		while :; do
			r=$(rss_kib "$@")
			[ "$r" -gt "$max" ] && max=$r && echo "$max" >"$f"
			sleep 0.2
		done
	) &
	RSS_PID=$!
}
rss_watch_stop() {
	[ -n "$RSS_PID" ] && kill "$RSS_PID" 2>/dev/null && wait "$RSS_PID" 2>/dev/null
	RSS_PID=
}
ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", t / hz }'; }

# --- placement: pinned runs put the client and proxy A on CPU 0, proxy B and server on 1 ----

PLACE=unpinned
pin() { # pin CPU: the command prefix that places a process in the current placement
	[ "$PLACE" = pinned ] && echo "taskset -c $1"
}

# --- figures -------------------------------------------------------------------------------

# measure PLACEMENT SCENARIO REP HOST IPERF_PORT RR_PORT [PROXY PID...]: every per-scenario
# figure once; CPU and RSS only when the scenario has proxy processes.
measure() {
	local pl=$1 sc=$2 rep=$3 host=$4 iport=$5 rport=$6
	shift 6
	local pids=("$@") raw="$OUT/raw/$pl-$sc-$rep" f n out c0 c1 cpu_io=0 bytes=0 cpu_rr=0 reqs=0
	local rate
	[ ${#pids[@]} -gt 0 ] && sample "$pl" "$sc" rss_idle_mib "$rep" \
		"$(awk -v k="$(rss_kib "${pids[@]}")" 'BEGIN { printf "%.2f", k / 1024 }')"
	[ ${#pids[@]} -gt 0 ] && rss_watch_start "$raw.rss" "${pids[@]}"
	for n in 1 4; do
		f=tput_${n}_gbps
		if out=$(missing iperf3); then
			fail "$pl" "$sc" "$f" "$rep" "$out"
			continue
		fi
		c0=$(cpu_ticks "${pids[@]}")
		# shellcheck disable=SC2046
		h_exec n1a timeout $((T_IPERF + 20)) $(pin 0) iperf3 -c "$host" -p "$iport" \
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
		f=rr$((rate / 1000))k
		c0=$(cpu_ticks "${pids[@]}")
		# shellcheck disable=SC2046
		h_exec n1a timeout $((T_RR + 20)) $(pin 0) "$RR" client "$host" "$rport" \
			--rate "$rate" --duration "$T_RR" >"$raw.$f.json" 2>"$raw.$f.err"
		c1=$(cpu_ticks "${pids[@]}")
		if out=$(report parse-rr "$raw.$f.json" 2>&1); then
			set -- $out
			sample "$pl" "$sc" "${f}_p50_us" "$rep" "$1"
			sample "$pl" "$sc" "${f}_p90_us" "$rep" "$2"
			sample "$pl" "$sc" "${f}_p99_us" "$rep" "$3"
			[ "$rate" = 5000 ] && sample "$pl" "$sc" rr5k_rps "$rep" "$6"
			cpu_rr=$((cpu_rr + c1 - c0))
			reqs=$((reqs + $4))
		else
			out="$out $(why "$raw.$f.err")"
			for n in p50_us p90_us p99_us; do fail "$pl" "$sc" "${f}_$n" "$rep" "$out"; done
			[ "$rate" = 5000 ] && fail "$pl" "$sc" rr5k_rps "$rep" "$out"
		fi
	done
	# shellcheck disable=SC2046
	h_exec n1a timeout $((T_CONN + 20)) $(pin 0) "$RR" connect "$host" "$rport" \
		--duration "$T_CONN" >"$raw.conn.json" 2>"$raw.conn.err"
	if out=$(report parse-connect "$raw.conn.json" 2>&1); then
		set -- $out
		sample "$pl" "$sc" conn_per_s "$rep" "$1"
	else
		fail "$pl" "$sc" conn_per_s "$rep" "$out $(why "$raw.conn.err")"
	fi
	[ ${#pids[@]} -gt 0 ] || return 0
	rss_watch_stop
	if [ -s "$raw.rss" ]; then
		sample "$pl" "$sc" rss_load_mib "$rep" \
			"$(awk -v k="$(cat "$raw.rss")" 'BEGIN { printf "%.2f", k / 1024 }')"
	else
		fail "$pl" "$sc" rss_load_mib "$rep" "no RSS sample"
	fi
	if [ "$bytes" -gt 0 ]; then
		sample_ratio "$pl" "$sc" cpu_s_per_gib "$rep" "$(ticks_to_s "$cpu_io")" \
			"$(awk -v b="$bytes" 'BEGIN { printf "%.6f", b / 1073741824 }')"
	else
		fail "$pl" "$sc" cpu_s_per_gib "$rep" "no throughput sample"
	fi
	if [ "$reqs" -gt 0 ]; then
		sample_ratio "$pl" "$sc" cpu_ms_per_1k_req "$rep" \
			"$(ticks_to_s $((cpu_rr * 1000)))" \
			"$(awk -v r="$reqs" 'BEGIN { printf "%.3f", r / 1000 }')"
	else
		fail "$pl" "$sc" cpu_ms_per_1k_req "$rep" "no request/response sample"
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

SERVER_PIDS=()
start_servers() {
	local p
	SERVER_PIDS=()
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
	if m=$(missing haproxy); then SC_FAIL[relay]=$m; else start_relay; fi
	if m=$(missing stunnel4 openssl); then
		SC_FAIL[stunnel]=$m
	elif [ -z "$CERTS_OK" ]; then
		SC_FAIL[stunnel]="certificates: $CERTS_ERR"
	else
		start_stunnel
	fi
	if m=$(missing haproxy openssl); then
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
	for sc in relay stunnel haproxy-mtls; do
		[ -n "${SC_FAIL[$sc]:-}" ] && fail_all "$PLACE" "$sc" "${SC_FAIL[$sc]}"
	done
	for ((rep = 1; rep <= REPS; rep++)); do
		log "$PLACE: baselines, repetition $rep/$REPS"
		measure "$PLACE" direct "$rep" "$SRV" 5201 8080
		measure "$PLACE" direct-same "$rep" "$SRV_SAME" 5201 8080
		# shellcheck disable=SC2086
		[ -z "${SC_FAIL[relay]:-}" ] &&
			measure "$PLACE" relay "$rep" "$GW1" 15201 18080 ${SC_PIDS[relay]}
		# shellcheck disable=SC2086
		[ -z "${SC_FAIL[stunnel]:-}" ] &&
			measure "$PLACE" stunnel "$rep" "$GW1" 25201 28080 ${SC_PIDS[stunnel]}
		# shellcheck disable=SC2086
		[ -z "${SC_FAIL[haproxy-mtls]:-}" ] &&
			measure "$PLACE" haproxy-mtls "$rep" "$GW1" 35201 38080 ${SC_PIDS[haproxy-mtls]}
	done
	for sc in relay stunnel haproxy-mtls; do
		# shellcheck disable=SC2086
		[ -n "${SC_PIDS[$sc]:-}" ] && stop_pids ${SC_PIDS[$sc]}
	done
}

# --- zmesh ----------------------------------------------------------------------------------

zm() { # zm NODE ARGS...: zmeshctl against a node namespace and its pin directory
	local node=$1
	shift
	"$ZMESHCTL" --netns "/var/run/netns/$(h_ns "$node")" --pin-dir "$(h_pin_dir "$node")" "$@"
}

# zmesh_config FILE: the local config listing the bench pods as HBONE workloads.
zmesh_config() {
	local p sa
	{
		echo "workloads:"
		for p in n1a n1b n2a n2b; do
			case $p in n1a) sa=client ;; *) sa=server ;; esac
			cat <<-EOF
				- uid: Kubernetes//Pod/bench/$p
				  name: $p
				  namespace: bench
				  serviceAccount: $sa
				  workloadIps: ["$(h_ip4 $p)", "$(h_ip6 $p)"]
				  protocol: HBONE
				  node: $(h_pod_node $p)
				  trustDomain: cluster.local
			EOF
		done
	} >"$1"
}

ZM_PIDS=() ZM_LOADED=() ZM_ERR=
listening() { ip netns exec "$(h_ns "$1")" ss -Hltn "sport = :$2" 2>/dev/null | grep -q .; }
# zmesh_setup: datapath on both nodes, pods enrolled, one ztunnel per node. Returns 1 with the
# reason in ZM_ERR when the mesh cannot run. Not in a subshell: it records the PIDs it starts.
zmesh_setup() {
	local d=$H_STATE/zmesh n cpu p log st i
	ZM_PIDS=() ZM_LOADED=()
	[ -x "$ZMESHCTL" ] || { ZM_ERR="zmeshctl not built"; return 1; }
	[ -x "$ZTUNNEL" ] || { ZM_ERR="ztunnel not available (not built)"; return 1; }
	mkdir -p "$d"
	if [ ! -f "$d/ca/ca-cert.pem" ]; then
		"$ZMESHCTL" ca init --dir "$d/ca" --trust-domain cluster.local >"$d/ca.log" 2>&1 ||
			{ ZM_ERR="zmeshctl ca init: $(why "$d/ca.log" $?)"; return 1; }
	fi
	zmesh_config "$d/config.yaml"
	for n in n1 n2; do
		log="$OUT/logs/zmeshctl-$n-$PLACE.log"
		zm "$n" datapath load --uplink wire0 >>"$log" 2>&1 ||
			{ ZM_ERR="datapath load on $n: $(why "$log" $?)"; return 1; }
		ZM_LOADED+=("$n")
		zm "$n" datapath attach "veth-${n}a" "veth-${n}b" >>"$log" 2>&1 ||
			{ ZM_ERR="datapath attach on $n: $(why "$log" $?)"; return 1; }
	done
	for p in n1a n1b n2a; do
		n=$(h_pod_node "$p")
		log="$OUT/logs/zmeshctl-$n-$PLACE.log"
		zm "$n" enroll --ip "$(h_ip4 "$p")" --ip "$(h_ip6 "$p")" --veth "$(h_veth "$p")" \
			--name "$p" --namespace bench --cgroup "$(h_cgroup "$p")" \
			--service-account "$([ "$p" = n1a ] && echo client || echo server)" \
			>>"$log" 2>&1 || { ZM_ERR="enroll $p: $(why "$log" $?)"; return 1; }
	done
	for n in n2 n1; do
		cpu=$([ "$n" = n1 ] && echo 0 || echo 1)
		log="$OUT/logs/ztunnel-$n-$PLACE.log"
		# shellcheck disable=SC2046,SC2086
		h_bg "$n" $(pin "$cpu") "$ZTUNNEL" --config "$d/config.yaml" --node "$n" \
			--pin-dir "$(h_pin_dir "$n")" $ZTUNNEL_ARGS >"$log" 2>&1
		ZM_PIDS+=("$H_LAST_PID")
	done
	# Up when both nodes listen on 15008 and n1 on 15001; a ztunnel that exits says why.
	for ((i = 0; i < 100; i++)); do
		for p in "${ZM_PIDS[@]}"; do
			if [ -z "$(h__starttime "$p")" ]; then
				wait "$p" 2>/dev/null
				st=$?
				ZM_ERR="ztunnel not available (exit $st, see $OUT/logs)"
				return 1
			fi
		done
		listening n1 15001 && listening n1 15008 && listening n2 15008 &&
			return 0
		sleep 0.05
	done
	ZM_ERR="ztunnel not available (no listeners on 15001/15008 after 5 s)"
	return 1
}

zmesh_teardown() {
	local n
	stop_pids "${ZM_PIDS[@]}"
	for n in "${ZM_LOADED[@]}"; do
		zm "$n" datapath unload >>"$OUT/logs/zmeshctl-$n-$PLACE.log" 2>&1 ||
			log "datapath unload on $n failed (the namespaces go anyway)"
	done
	ZM_PIDS=() ZM_LOADED=()
}

# captured NODE: outbound connections the datapath handed to ztunnel so far, so a mesh
# figure is never a direct figure in disguise.
captured() {
	zm "$1" stats 2>/dev/null | awk '$1 == "captured_outbound" { s += $2 } END { print s + 0 }'
}

run_zmesh() {
	local rep c0
	if ! zmesh_setup; then
		fail_all "$PLACE" zmesh-cross "$ZM_ERR"
		fail_all "$PLACE" zmesh-same "$ZM_ERR"
		zmesh_teardown
		return
	fi
	c0=$(captured n1)
	for ((rep = 1; rep <= REPS; rep++)); do
		log "$PLACE: zmesh, repetition $rep/$REPS"
		measure "$PLACE" zmesh-cross "$rep" "$SRV" 5201 8080 "${ZM_PIDS[@]}"
		measure "$PLACE" zmesh-same "$rep" "$SRV_SAME" 5201 8080 "${ZM_PIDS[1]}"
	done
	if [ "$(captured n1)" = "$c0" ]; then
		fail_all "$PLACE" zmesh-cross "traffic was not captured (zmeshctl stats unchanged)"
		fail_all "$PLACE" zmesh-same "traffic was not captured (zmeshctl stats unchanged)"
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

log "crypto ceiling (openssl speed, CPU 0)"
crypto_ceiling
for PLACE in $PLACEMENTS; do
	if [ "$PLACE" = pinned ] && [ -n "${MISSING[taskset]:-}" ]; then
		for sc in direct direct-same relay stunnel haproxy-mtls zmesh-cross zmesh-same; do
			fail_all pinned "$sc" "${MISSING[taskset]}"
		done
		continue
	fi
	log "$PLACE: starting servers and baseline proxies"
	start_servers
	start_baselines
	run_baselines
	run_zmesh
	stop_pids "${SERVER_PIDS[@]}"
done

ELAPSED=$(($(date +%s) - T0))
cat >"$OUT/meta.json" <<EOF
{"quick": $([ "$QUICK" = 1 ] && echo true || echo false), "repetitions": $REPS,
 "placements": "$PLACEMENTS", "scenarios": ["direct", "direct-same", "relay", "stunnel",
 "haproxy-mtls", "zmesh-cross", "zmesh-same"], "iperf_s": $T_IPERF, "rr_s": $T_RR, "connect_s": $T_CONN,
 "elapsed_s": $ELAPSED, "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "kernel": "$(uname -r)",
 "cpus": $(nproc), "cpu_model": "$(json_str "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)")"}
EOF
echo
$REPORT report "$SAMPLES" "$OUT/results.json" "$OUT/results.md" "$OUT/meta.json" ||
	die "report failed (samples kept in $SAMPLES)"
echo
log "done in ${ELAPSED}s: $OUT/results.md, $OUT/results.json (raw outputs in $OUT/raw)"
