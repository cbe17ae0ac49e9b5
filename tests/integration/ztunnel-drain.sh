#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# SIGTERM drains instead of cutting: ztunnel turns unready, stops accepting (a new connection is
# refused at once by the datapath, not left hanging), sends GOAWAYs, keeps relaying what is
# established and exits when the last connection closes, or when --drain-timeout passes (one
# log line saying what was cut). A second SIGTERM cuts at once. Without --drain-timeout the
# reference's rule applies: CONNECTION_TERMINATION_DEADLINE, else TERMINATION_GRACE_PERIOD_SECONDS
# less 5 s, else 5 s.
#
#   n1a 198.18.1.11 -- n1 ===== wire0 ===== n2 -- n2a 198.18.2.11   (HBONE, echo on 7777/7778)
#   a checked stream n1a -> n2a (tests/tools/zm-stream) through n1's ztunnel while it drains
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
STREAM=$BUILD/tests/tools/zm-stream
m_need "$STREAM" curl

m_init 2 1
m_config_hbone n1a n2a
m_ca_init
m_node_start n2 --ca-dir "$M_CA"
m_datapath_load n1
m_ztunnel_start n1 --ca-dir "$M_CA" --drain-timeout 30
m_ztunnel_wait n1 n2
m_echo_serve n1a n2a
ZPID=${M_ZT_PID[n1]}
B=$(h_ip4 n2a)

# 1. A drain that finishes: the stream ends by itself, then ztunnel exits.
h_exec n1a "$STREAM" "$B" 7778 --seconds 6 --rate 256 >"$H_STATE/s1.out" 2>&1 &
S1=$!
sleep 1.5
kill -TERM "$ZPID"
m_wait_for 5 grep -q "draining (SIGTERM): no longer accepting; 1 connections .* 30 s to finish" \
	"$H_STATE/zt-n1.log"
t_ok $? "SIGTERM: ztunnel drains with the --drain-timeout it was given"
t_is "$(h_exec n1 curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" \
	503 "draining: readiness says 503"
t_like "$(h_exec n1a "$ECHO" send "$B" 7777 --data x --timeout 5 2>&1 | head -1)" \
	"Connection refused" "draining: a new connection is refused at once, not left hanging"
t_ok "$(kill -0 "$ZPID" 2>/dev/null; echo $?)" "draining: ztunnel still runs for the open stream"
wait "$S1"
t_like "$(cat "$H_STATE/s1.out")" "^stream ok" "the open stream finished whole ($(cat "$H_STATE/s1.out"))"
m_wait_for 5 bash -c "! kill -0 $ZPID 2>/dev/null"
t_ok $? "ztunnel exited once the stream closed"
t_like "$(cat "$H_STATE/zt-n1.log")" "drained: every connection closed after [0-9]+ ms" "and said so"

# 2. A drain that times out: the stream outlives --drain-timeout and is cut, with one line.
m_ztunnel_start n1 --ca-dir "$M_CA" --drain-timeout 2
m_ztunnel_wait n1
ZPID=${M_ZT_PID[n1]}
h_exec n1a "$STREAM" "$B" 7778 --seconds 20 --rate 256 --stall-ms 3000 >"$H_STATE/s2.out" 2>&1 &
S2=$!
sleep 1.5
kill -TERM "$ZPID"
m_wait_for 8 bash -c "! kill -0 $ZPID 2>/dev/null"
t_ok $? "--drain-timeout 2: ztunnel exits although a connection is open"
t_like "$(cat "$H_STATE/zt-n1.log")" "drain timeout after [0-9]+ ms: cutting 1 connections and [0-9]+ HBONE connections still open" \
	"one line says what was cut"
wait "$S2"
t_like "$(cat "$H_STATE/s2.out")" "^stream FAILED" "the cut stream saw it ($(cat "$H_STATE/s2.out"))"

# 3. The default deadline follows Kubernetes' grace period; a second SIGTERM cuts at once.
h_bg n1 env TERMINATION_GRACE_PERIOD_SECONDS=9 "$ZT" --config "$M_CFG" --node n1 \
	--netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)" --ca-dir "$M_CA" \
	2>"$H_STATE/zt-n1-3.log"
M_ZT_PID[n1]=$H_LAST_PID
m_ztunnel_wait n1
h_exec n1a "$STREAM" "$B" 7778 --seconds 20 --rate 256 --stall-ms 3000 >"$H_STATE/s3.out" 2>&1 &
S3=$!
sleep 1.5
kill -TERM "${M_ZT_PID[n1]}"
m_wait_for 5 grep -q "draining (SIGTERM).* 4 s to finish" "$H_STATE/zt-n1-3.log"
t_ok $? "TERMINATION_GRACE_PERIOD_SECONDS=9: a 4 s drain (5 s below the grace period)"
kill -TERM "${M_ZT_PID[n1]}"
m_wait_for 3 bash -c "! kill -0 ${M_ZT_PID[n1]} 2>/dev/null"
t_ok $? "a second SIGTERM stops it at once"
t_like "$(cat "$H_STATE/zt-n1-3.log")" "second SIGTERM while draining: cutting 1 connections" \
	"saying what it cut"
wait "$S3"
t_done
