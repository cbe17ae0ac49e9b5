#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/bench-report.py on fixed inputs: the parsers of iperf3, zm-rr and openssl speed
# output, and the report's arithmetic (min/median/max, ratio to the baseline's median in the
# same placement, num/den samples, failed and n/a cells, a scenario-wide failure winning over
# its values, nothing dropped), and the waypoint's table against ztunnel only and direct
# (ratios, added microseconds). No timing is measured or asserted. TAP output.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
PY=/usr/bin/python3
R="$PY scripts/bench-report.py"
[ -x "$PY" ] || t_fatal "$PY not found (Debian package python3)"
D=$(mktemp -d /tmp/zm-bench-report.XXXXXX) || t_fatal "mktemp failed"
trap 'rm -rf "$D"' EXIT

# --- parsers -------------------------------------------------------------------------------

cat >"$D/iperf.json" <<'EOF'
{"start": {}, "intervals": [],
 "end": {"sum_sent": {"bytes": 2000000000, "bits_per_second": 5.4e9},
         "sum_received": {"bytes": 1999000000, "bits_per_second": 5.33e9}}}
EOF
t_is "$($R parse-iperf "$D/iperf.json" 2>&1)" "5.3300 1999000000" "parse-iperf: receiver Gbit/s and bytes"
echo '{"start": {}, "end": {}, "error": "unable to connect to server: Connection refused"}' >"$D/iperf-err.json"
out=$($R parse-iperf "$D/iperf-err.json" 2>&1)
t_is "$?" 1 "parse-iperf fails on an iperf3 error"
t_like "$out" "Connection refused" "parse-iperf: the iperf3 error is the reason"
: >"$D/empty.json"
$R parse-iperf "$D/empty.json" >/dev/null 2>&1
t_is $? 1 "parse-iperf: empty output is a failure"

echo '{"rate": 1000, "requests": 3000, "errors": 0, "achieved_rps": 1000.2, "p50_us": 40, "p90_us": 201, "p99_us": 1718, "max_us": 4670}' >"$D/rr.json"
t_is "$($R parse-rr "$D/rr.json")" "40 201 1718 3000 0 1000.2" "parse-rr: percentiles, count, errors, rate"
echo '{"rate": 1000, "requests": 2900, "errors": 100, "achieved_rps": 966.0, "p50_us": 40, "p90_us": 201, "p99_us": 1718, "max_us": 4670}' >"$D/rr-lossy.json"
out=$($R parse-rr "$D/rr-lossy.json" 2>&1)
t_is "$?:$out" "1:bench-report: zm-rr: 100 of 3000 requests failed" "parse-rr: more than 1% errors fails"
echo '{"rate": 1000, "requests": 0, "errors": 1000, "achieved_rps": 0, "p50_us": -1, "p90_us": -1, "p99_us": -1, "max_us": -1}' >"$D/rr-none.json"
$R parse-rr "$D/rr-none.json" >/dev/null 2>&1
t_is $? 1 "parse-rr: no completed request fails"

echo '{"connections": 12000, "errors": 3, "conn_per_s": 5999.5}' >"$D/conn.json"
t_is "$($R parse-connect "$D/conn.json")" "5999.5 12000 3 -1 -1 -1" "parse-connect: older output without times"
echo '{"connections": 12000, "errors": 3, "conn_per_s": 5999.5, "conn_p50_us": 150, "conn_p90_us": 300, "conn_p99_us": 2000}' >"$D/conn2.json"
t_is "$($R parse-connect "$D/conn2.json")" "5999.5 12000 3 150 300 2000" "parse-connect: rate, count, errors, connection-time percentiles"
echo '{"connections": 10, "errors": 3347, "conn_per_s": 5.0, "conn_p50_us": 1, "conn_p90_us": 1, "conn_p99_us": 1}' >"$D/conn3.json"
out=$($R parse-connect "$D/conn3.json" 2>&1)
t_is "$?:$out" "1:bench-report: zm-rr connect: 3347 of 3357 connections failed" "parse-connect: more than 1% failed connections fails"

echo '{"conns": 16, "requests": 60000, "errors": 2, "rps": 19999.9, "p50_us": 700, "p90_us": 1000, "p99_us": 2500, "max_us": 5000, "seconds": 3.000, "cpu_s": 0.412}' >"$D/load.json"
t_is "$($R parse-load "$D/load.json")" "19999.9 60000 2 700 2500 0.412" \
	"parse-load: rate, count, errors, p50, p99, client CPU seconds"
echo '{"conns": 16, "requests": 0, "errors": 16, "rps": 0.0, "p50_us": -1, "p90_us": -1, "p99_us": -1, "max_us": -1, "seconds": 0.000, "cpu_s": 0.001}' >"$D/load-none.json"
out=$($R parse-load "$D/load-none.json" 2>&1)
t_is "$?:$out" "1:bench-report: zm-rr load completed no requests (16 errors)" "parse-load: no completed request fails"
out=$($R parse-load "$D/conn2.json" 2>&1)
t_is "$?:$out" "1:bench-report: $D/conn2.json: not zm-rr load output" "parse-load: another tool's output is refused"

printf '+DT:AES-128-GCM:2:16384\n+R:60000:AES-128-GCM:2.000000\n+H:16384\n+F:25:AES-128-GCM:5972738048.00\n' >"$D/speed.txt"
t_is "$($R parse-speed "$D/speed.txt")" "5972738048" "parse-speed: bytes/s of the 16 KiB column"

# --- report --------------------------------------------------------------------------------

s() { printf '{"placement": "%s", "scenario": "%s", "figure": "%s", "rep": %s, "value": %s}\n' "$@"; }
{
	s unpinned direct tput_1_gbps 1 16
	s unpinned direct tput_1_gbps 2 14
	s unpinned direct tput_1_gbps 3 15
	s unpinned stunnel tput_1_gbps 1 4
	s unpinned stunnel tput_1_gbps 2 3
	s unpinned stunnel tput_1_gbps 3 5
	s pinned direct tput_1_gbps 1 10
	s pinned direct tput_1_gbps 2 12
	s pinned stunnel tput_1_gbps 1 5
	s pinned stunnel tput_1_gbps 2 6
	s unpinned direct rr1k_p99_us 1 100
	s unpinned direct rr1k_p99_us 2 200
	s unpinned stunnel rr1k_p99_us 1 300
	echo '{"placement": "unpinned", "scenario": "stunnel", "figure": "rr1k_p99_us", "rep": 2, "failed": "zm-rr: 50 of 1000 requests failed"}'
	echo '{"placement": "unpinned", "scenario": "stunnel", "figure": "cpu_s_per_gib", "rep": 1, "num": 3, "den": 2}'
	echo '{"placement": "unpinned", "scenario": "stunnel", "figure": "cpu_s_per_gib", "rep": 2, "num": 1, "den": 0}'
	echo '{"placement": "unpinned", "scenario": "stunnel", "figure": "conn_per_s", "rep": 1, "failed": "connect: refused \"quoted\""}'
	echo '{"placement": "unpinned", "scenario": "zmesh-cross", "figure": "*", "failed": "ztunnel not available (exit 2)"}'
	echo '{"placement": "unpinned", "scenario": "zmesh-same", "figure": "tput_1_gbps", "rep": 1, "value": 9}'
	echo '{"placement": "unpinned", "scenario": "zmesh-same", "figure": "*", "failed": "traffic was not captured"}'
	s unpinned zmesh-idle10k idle_conns 1 10000
	echo '{"placement": "unpinned", "scenario": "zmesh-idle10k", "figure": "rss_per_conn_n1_b", "rep": 1, "num": 106569728, "den": 10000}'
	s unpinned zmesh-pol10 conn_per_s 1 900
	s - crypto aes128gcm_16k_Bps 1 5000000000
	s - crypto aes128gcm_16k_Bps 2 6000000000
} >"$D/samples.jsonl"
echo '{"quick": true, "repetitions": 3}' >"$D/meta.json"
md=$($R report "$D/samples.jsonl" "$D/results.json" "$D/results.md" "$D/meta.json")
t_is $? 0 "report runs"
t_is "$md" "$(cat "$D/results.md")" "report prints the markdown it writes"

# q EXPR: a value from results.json (Python expression over `r`).
q() { $PY -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$D/results.json" "$1"; }
U='r["placements"]["unpinned"]["table"]'
P='r["placements"]["pinned"]["table"]'
t_is "$(q "$U[\"direct\"][\"tput_1_gbps\"][\"min\"], $U[\"direct\"][\"tput_1_gbps\"][\"median\"], $U[\"direct\"][\"tput_1_gbps\"][\"max\"]")" \
	"(14.0, 15.0, 16.0)" "min/median/max of 3 samples"
t_is "$(q "$U[\"stunnel\"][\"tput_1_gbps\"][\"ratio\"]")" "0.2667" "ratio = median / baseline median (4/15)"
t_is "$(q "$U[\"direct\"][\"tput_1_gbps\"][\"ratio\"]")" "1.0" "the baseline's own ratio is 1"
t_is "$(q "$P[\"direct\"][\"tput_1_gbps\"][\"median\"], $P[\"stunnel\"][\"tput_1_gbps\"][\"ratio\"]")" \
	"(11.0, 0.5)" "median of 2 is their mean; ratio uses the same placement's baseline"
t_is "$(q "$U[\"stunnel\"][\"rr1k_p99_us\"][\"median\"], $U[\"stunnel\"][\"rr1k_p99_us\"][\"failed_reps\"], $U[\"stunnel\"][\"rr1k_p99_us\"][\"ratio\"]")" \
	"(300.0, 1, 2.0)" "a failed repetition is counted, the others still give a value"
t_is "$(q "$U[\"stunnel\"][\"cpu_s_per_gib\"][\"median\"], $U[\"stunnel\"][\"cpu_s_per_gib\"][\"failed_reps\"]")" \
	"(1.5, 1)" "num/den samples divide; a zero denominator is a failed repetition"
t_is "$(q "$U[\"stunnel\"][\"cpu_s_per_gib\"][\"ratio\"], $U[\"direct\"][\"cpu_s_per_gib\"].get(\"na\")")" \
	"(None, 'no proxy process')" "proxy-only figures are n/a for the baseline, so no ratio"
t_is "$(q "$U[\"stunnel\"][\"conn_per_s\"][\"failed\"]")" 'connect: refused "quoted"' \
	"a figure with only failures is failed with its reason"
t_is "$(q "$U[\"stunnel\"][\"tput_4_gbps\"][\"failed\"]")" "no sample" \
	"a figure never measured is failed ('no sample'), not dropped"
t_is "$(q "$U[\"zmesh-cross\"][\"tput_1_gbps\"][\"failed\"], $U[\"zmesh-cross\"][\"rss_load_mib\"][\"failed\"]")" \
	"('ztunnel not available (exit 2)', 'ztunnel not available (exit 2)')" \
	"a scenario-wide failure fails every figure of it"
t_is "$(q "$U[\"zmesh-same\"][\"tput_1_gbps\"][\"median\"], $U[\"zmesh-same\"][\"tput_1_gbps\"][\"failed\"]")" \
	"(None, 'traffic was not captured')" "a scenario-wide failure wins over its values"
t_is "$(q "r[\"placements\"][\"unpinned\"][\"scenarios\"]")" \
	"['direct', 'stunnel', 'zmesh-cross', 'zmesh-same', 'zmesh-pol10', 'zmesh-idle10k']" "scenarios in the fixed order, failed ones kept"
t_is "$(q "$U[\"zmesh-idle10k\"][\"rss_per_conn_n1_b\"][\"median\"], $U[\"zmesh-idle10k\"][\"idle_conns\"][\"median\"]")" \
	"(10656.9728, 10000.0)" "idle scenario: RSS bytes per connection (num/den) and connections held"
t_is "$(q "$U[\"zmesh-idle10k\"][\"tput_1_gbps\"][\"na\"], $U[\"zmesh-pol10\"][\"rr1k_p50_us\"][\"na\"], $U[\"zmesh-pol10\"][\"conn_p50_us\"][\"failed\"]")" \
	"('not measured in this scenario', 'not measured in this scenario', 'no sample')" \
	"figures a scenario does not measure are not measured, not failed; its own missing ones fail"
t_is "$(q "$U[\"direct\"][\"idle_conns\"][\"na\"], $U[\"stunnel\"][\"rss_per_conn_n2_b\"][\"na\"]")" \
	"('not measured in this scenario', 'not measured in this scenario')" "idle figures belong to the idle scenario only"
t_is "$(q "r[\"machine\"][\"aes128gcm_16k_Bps\"][\"median\"], r[\"meta\"][\"repetitions\"]")" \
	"(5500000000.0, 3)" "machine figures and run metadata"

t_like "$md" '\| throughput, 1 stream \(Gbit/s, higher\) +\| 15\.0 \[14\.0\.\.16\.0\] +\| 4\.00 \[3\.00\.\.5\.00\] x0\.27 ' \
	"markdown: median [min..max] and xratio"
t_like "$md" 'failed \[[0-9]+\]' "markdown: failed cells point to a note"
t_like "$md" '\[[0-9]+\] failed: ztunnel not available \(exit 2\)' "markdown: the note gives the reason"
t_like "$md" '\| 300 \[300\.\.300\] x2\.00 \(1 failed \[[0-9]+\]\)' "markdown: partial failures are shown"
t_like "$md" '\| ztunnel RSS per idle connection, node n1 \(bytes, lower\) +\| - +\| .*\| 10657 \[10657\.\.10657\] +\|' \
	"markdown: not-measured cells are '-', the idle figure in its own column"
t_is "$(grep -c 'ztunnel RSS per idle connection, node n1' <<<"$md")" 1 \
	"markdown: a row no scenario of a placement measures is left out of that placement's table"
t_like "$md" 'AES-128-GCM.*5500000000 .*\(44\.0 Gbit/s\)' "markdown: crypto ceiling in bytes/s and Gbit/s"

# --- the waypoint against ztunnel only and direct ----------------------------------------------

r() { printf '{"placement": "%s", "scenario": "%s", "figure": "%s", "rep": %s, "num": %s, "den": %s}\n' "$@"; }
{
	for i in 1 2; do
		s unpinned direct rr1k_p50_us "$i" 20
		s unpinned zmesh-cross rr1k_p50_us "$i" $((220 + i * 20))
		s unpinned zmesh-waypoint rr1k_p50_us "$i" 300
		s unpinned direct max_rps "$i" 100000
		s unpinned zmesh-cross max_rps "$i" 40000
		s unpinned zmesh-waypoint max_rps "$i" 20000
		r unpinned zmesh-cross rps_per_core_proxy "$i" 60000 2
		r unpinned zmesh-waypoint rps_per_core_proxy "$i" 60000 4
		r unpinned zmesh-waypoint rps_per_core_wp "$i" 60000 1.5
		r unpinned zmesh-cross cpu_ms_per_1k_req_zt "$i" 600 6
		r unpinned zmesh-waypoint cpu_ms_per_1k_req_zt "$i" 540 6
		r unpinned zmesh-waypoint cpu_ms_per_1k_req_wp "$i" 390 6
		s unpinned zmesh-waypoint wp_rss_load_mib "$i" 8.5
	done
	echo '{"placement": "unpinned", "scenario": "zmesh-waypoint", "figure": "conn_per_s", "rep": 1, "failed": "zm-rr connect completed no connections (5909 errors)"}'
	s pinned zmesh-waypoint rr1k_p50_us 1 250
} >"$D/wp.jsonl"
md=$($R report "$D/wp.jsonl" "$D/wp.json" "$D/wp.md" "$D/meta.json")
t_is $? 0 "report with a waypoint scenario runs"
wq() { $PY -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$D/wp.json" "$1"; }
row() { wq "[x for x in r[\"waypoint\"][\"$1\"] if x[\"figure\"] == \"$2\"][0]"; }
t_is "$(row unpinned rr1k_p50_us)" \
	"{'added_us_direct': 280.0, 'added_us_ztunnel_only': 50.0, 'figure': 'rr1k_p50_us', 'ratio_direct': 15.0, 'ratio_ztunnel_only': 1.2}" \
	"waypoint latency: ratio to ztunnel only and to direct, and the microseconds it adds"
t_is "$(row unpinned max_rps)" "{'figure': 'max_rps', 'ratio_direct': 0.2, 'ratio_ztunnel_only': 0.5}" \
	"waypoint max rate: ratios only (no added microseconds for a rate)"
t_is "$(row unpinned rps_per_core_proxy)" \
	"{'figure': 'rps_per_core_proxy', 'ratio_direct': None, 'ratio_ztunnel_only': 0.5}" \
	"requests per proxy CPU-second (num/den): against ztunnel only; direct has no proxy"
t_is "$(row unpinned cpu_ms_per_1k_req_zt)" \
	"{'figure': 'cpu_ms_per_1k_req_zt', 'ratio_direct': None, 'ratio_ztunnel_only': 0.9}" \
	"the ztunnels' CPU per 1k requests with and without the waypoint"
t_is "$(row unpinned rps_per_core_wp)" "{'figure': 'rps_per_core_wp', 'ratio_direct': None, 'ratio_ztunnel_only': None}" \
	"the waypoint's own figures have nothing to compare with"
t_is "$(wq "[x[\"figure\"] for x in r[\"waypoint\"][\"unpinned\"]]")" \
	"['rr1k_p50_us', 'rr1k_p99_us', 'rr5k_p50_us', 'rr5k_p99_us', 'max_rps', 'rps_per_core', 'rps_per_core_proxy', 'rps_per_core_wp', 'conn_per_s', 'conn_p50_us', 'conn_p99_us', 'cpu_ms_per_1k_req', 'cpu_ms_per_1k_req_zt', 'cpu_ms_per_1k_req_wp', 'rss_idle_mib', 'rss_load_mib', 'wp_rss_idle_mib', 'wp_rss_load_mib']" \
	"every waypoint figure has a row, unmeasured ones included (they show as failed)"
W='r["placements"]["unpinned"]["table"]'
t_is "$(wq "$W[\"zmesh-cross\"][\"rps_per_core_wp\"][\"na\"], $W[\"direct\"][\"rps_per_core_proxy\"][\"na\"], $W[\"zmesh-waypoint\"][\"conn_per_s\"][\"failed\"]")" \
	"('not measured in this scenario', 'no proxy process', 'zm-rr connect completed no connections (5909 errors)')" \
	"main table: waypoint-only figures are not measured elsewhere, proxy figures n/a for direct"
t_is "$(q "r[\"placements\"][\"unpinned\"][\"table\"][\"stunnel\"][\"max_rps\"][\"na\"], \"waypoint\" in r")" \
	"('not measured in this scenario', False)" \
	"max-rate figures belong to direct, ztunnel only and waypoint; no waypoint, no waypoint table"
t_like "$md" '## waypoint against ztunnel only and direct: unpinned' "markdown: the waypoint table has a heading per placement"
t_like "$md" '\| latency p50 @1000/s \(us, lower\) +\| 20\.0 \[20\.0\.\.20\.0\] +\| 250 \[240\.\.260\] +\| 300 \[300\.\.300\] +\| x1\.20 \(\+50 us\) +\| x15\.00 \(\+280 us\) +\|' \
	"markdown: direct, ztunnel only, waypoint, then both ratios with the added microseconds"
t_like "$md" '\| new connections/s \(conn/s, higher\) +\| failed \[1\] +\| failed \[1\] +\| failed \[2\] +\| - +\| - +\|' \
	"markdown: a waypoint figure that failed is shown failed, its ratios '-'"
t_like "$md" '\[2\] failed: zm-rr connect completed no connections \(5909 errors\)' \
	"markdown: the waypoint table's notes give the reasons"
t_like "$md" '\| latency p50 @1000/s \(us, lower\) +\| not run +\| not run +\| 250 \[250\.\.250\] +\| - +\| - +\|' \
	"markdown: a comparison scenario that did not run in the placement says so"

# --- issue 18's goals: ratios of medians in the same placement, values, maxima, met or not ---

{
	s unpinned haproxy-mtls tput_1_gbps 1 4
	s unpinned zmesh-cross tput_1_gbps 1 7
	s unpinned direct tput_1_gbps 1 20
	s pinned haproxy-mtls tput_1_gbps 1 5
	s pinned zmesh-cross tput_1_gbps 1 5
	r unpinned zmesh-cross cpu_s_per_gib 1 3 2
	s unpinned relay rr1k_p50_us 1 100
	s unpinned zmesh-cross rr1k_p50_us 1 115
	s unpinned zmesh-idle10k zt_rss_idle_mib 1 7.5
	r unpinned zmesh-idle10k rss_per_conn_n1_b 1 40960000 10000
	r unpinned zmesh-idle10k rss_per_conn_n2_b 1 30720000 10000
	s unpinned zmesh-cross conn_per_s 1 1000
	s unpinned zmesh-scale conn_per_s 1 850
	s unpinned zmesh-scale scale_load_s 1 1.5
	echo '{"placement": "unpinned", "scenario": "zmesh-scale", "figure": "scale_rss_added_mib", "rep": 1, "failed": "no RSS sample"}'
} >"$D/goals.jsonl"
md=$($R report "$D/goals.jsonl" "$D/goals.json" "$D/goals.md" "$D/meta.json")
t_is $? 0 "report with goals runs"
gq() { $PY -c 'import json, sys; r = json.load(open(sys.argv[1])); g = {x["id"]: x for x in r["goals"]}; print(eval(sys.argv[2]))' "$D/goals.json" "$1"; }
t_is "$(gq 'g["tput1_haproxy"]["placements"]["unpinned"]["value"], g["tput1_haproxy"]["placements"]["unpinned"]["met"], g["tput1_haproxy"]["placements"]["pinned"]["value"], g["tput1_haproxy"]["placements"]["pinned"]["met"]')" \
	"(1.75, True, 1.0, False)" "goal: ratio of two medians per placement, met at >= 1.5"
t_is "$(gq 'g["tput1_direct"]["placements"]["unpinned"]["value"], g["tput1_direct"]["placements"]["unpinned"]["met"]')" \
	"(0.35, False)" "goal: against direct, not met below 0.40"
t_is "$(gq 'g["tput1_direct"]["placements"]["pinned"]["value"], g["tput1_direct"]["placements"]["pinned"]["met"], g["tput1_direct"]["placements"]["pinned"]["missing"]')" \
	"(None, None, 'direct not run')" "goal: a missing comparison scenario leaves it unmeasured, with the reason"
t_is "$(gq 'g["cpu_gib"]["placements"]["unpinned"]["value"], g["cpu_gib"]["placements"]["unpinned"]["met"]')" \
	"(1.5, False)" "goal: a value (num/den sample) against a ceiling"
t_is "$(gq 'g["p50_relay"]["placements"]["unpinned"]["value"], g["p50_relay"]["placements"]["unpinned"]["met"]')" \
	"(1.15, True)" "goal: a ratio exactly at the ceiling is met"
t_is "$(gq 'g["rss_conn"]["placements"]["unpinned"]["value"], g["rss_conn"]["placements"]["unpinned"]["met"], g["rss_idle"]["placements"]["unpinned"]["met"]')" \
	"(4.0, True, True)" "goal: the larger node's bytes per idle connection, in KiB"
t_is "$(gq 'g["scale_conn"]["placements"]["unpinned"]["value"], g["scale_conn"]["placements"]["unpinned"]["met"], g["scale_load"]["placements"]["unpinned"]["met"]')" \
	"(0.85, False, True)" "goal: scale connection rate against the small config, load time"
t_is "$(gq 'g["scale_rss"]["placements"]["unpinned"]["value"], g["scale_rss"]["placements"]["unpinned"]["missing"]')" \
	"(None, 'zmesh-scale scale_rss_added_mib: no RSS sample')" "goal: a failed figure leaves it unmeasured, with the failure"
t_like "$md" '\| cross-node, 1 stream, against haproxy mTLS +\| >= 1\.50 +\| x1\.75 met +\| x1\.00 NOT met +\|' \
	"markdown: the goals table shows each placement's figure and whether it is met"
t_like "$md" '\| ztunnel CPU per GiB \(both nodes\) +\| <= 1\.20 s +\| 1\.50 s NOT met +\| not measured +\|' \
	"markdown: values carry their unit; a goal without its figures is not measured"

printf '{"placement": "x"}\n' >"$D/bad.jsonl"
out=$($R report "$D/bad.jsonl" "$D/o.json" "$D/o.md" 2>&1)
t_is "$?:$out" "1:bench-report: $D/bad.jsonl:1: missing 'scenario'" "malformed samples are refused with file and line"
t_done
