#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/bench-report.py on fixed inputs: the parsers of iperf3, zm-rr and openssl speed
# output, and the report's arithmetic (min/median/max, ratio to the baseline's median in the
# same placement, num/den samples, failed and n/a cells, a scenario-wide failure winning over
# its values, nothing dropped). No timing is measured or asserted. TAP output.
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

printf '{"placement": "x"}\n' >"$D/bad.jsonl"
out=$($R report "$D/bad.jsonl" "$D/o.json" "$D/o.md" 2>&1)
t_is "$?:$out" "1:bench-report: $D/bad.jsonl:1: missing 'scenario'" "malformed samples are refused with file and line"
t_done
