#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Bad input at ztunnel's 15008 and in its config: each is refused with a logged reason, none
# crashes ztunnel or disturbs other connections. The peers are tests/tools/h2peer.py
# (python3-h2 + Python's ssl) in pod n2b; n2 runs no datapath and no ztunnel.
#
#   n1a 198.18.1.11 (HBONE, enrolled) --+                    +-- n2a
#   n1b 198.18.1.12 (HBONE, enrolled) --+ n1 ==== wire0 == n2 +-- n2b 198.18.2.12: bad peers
#
# Handshake refusals: a certificate from an untrusted CA, an expired one, one of another trust
# domain signed by our CA, none at all. Then oversized request headers, a peer that stalls in
# the handshake (closed after the 10 s handshake timeout while others are served), garbage
# after the HTTP/2 preface, a flood of 300 streams at once, 5000 streams opened and cancelled
# at once (rapid reset); a config that fails to parse
# (the previous one stays in force). A connection opened before all this is served after it.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need_h2peer

m_init 2 2
LOG=$H_STATE/zt-n1.log
m_config_hbone n1a n1b n2a n2b
m_ca_init
m_ca_init "$H_STATE/other-ca"
GOOD=spiffe://cluster.local/ns/ns/sa/sa-n2b
issue() { # issue NAME CA_DIR ID [LIFETIME]
	"$CERT" --ca-dir "$2" --id "$3" --cert "$H_STATE/$1.pem" --key "$H_STATE/$1.key" \
		--lifetime "${4:-3600}" || t_fatal "issuing certificate $1 failed"
}
issue good "$M_CA" "$GOOD"
issue untrusted "$H_STATE/other-ca" "$GOOD"
issue expired "$M_CA" "$GOOD" -100
issue wrongtd "$M_CA" spiffe://other.example/ns/ns/sa/sa-n2b

m_node_start n1 --ca-dir "$M_CA" --poll-ms 200
m_echo_serve n1a n1b
m_ztunnel_wait n1
sleep 0.3 # enrollment follows readiness

peer() { # peer MODE CERT_NAME ARGS...: h2peer in n2b against n1a:15008
	local mode=$1 cert=$2
	shift 2
	timeout 40 ip netns exec "$(h_ns n2b)" $PY $PEER "$mode" --host 198.18.1.11 \
		--ca "$M_CA/ca-cert.pem" --cert "$H_STATE/$cert.pem" --key "$H_STATE/$cert.key" "$@" 2>&1
}
# new_log_lines N: the log lines after the first N
lines() { wc -l <"$LOG"; }
since() { tail -n +"$(($1 + 1))" "$LOG"; }

# Opened first, used last: a good connection must outlive everything below.
rm -f "$H_STATE/go"
peer client good --wait-file "$H_STATE/go" \
	--req "CONNECT|198.18.1.11:7777|200|early-bird|early-bird" >"$H_STATE/early.out" &
early=$!
# A peer that stalls inside the TLS handshake.
peer stall good --seconds 25 >"$H_STATE/stall.out" &
stall=$!
stall_t0=$(date +%s)
sleep 0.5

out=$(peer handshake good)
t_is "$out" "ACCEPTED" "a certificate from our CA in our trust domain is accepted"
for bad in untrusted expired wrongtd nocert; do
	n=$(lines)
	if [ $bad = nocert ]; then out=$(peer handshake good --no-cert); else out=$(peer handshake $bad); fi
	t_like "$out" "^REFUSED" "handshake with a peer certificate that is $bad: refused"
	sleep 0.2
	why=$(since "$n" | grep "inbound HBONE connection from 198\.18\.2\.12:[0-9]* ended")
	t_like "$why" "ended: .+" "  logged with a reason"
	t_diag "  ${why#*ended: }"
done
t_like "$(grep 'from 198.18.2.12' "$LOG" | grep -i -c 'verif\|certificate\|trust\|expired')" "^[4-9]" \
	"  the reasons name the certificate check"

# Oversized request headers (a 100 kB header): refused, the connection or stream ends.
n=$(lines)
out=$(peer client good --pad 100000 --req "CONNECT|198.18.1.11:7777|200|x|x")
t_ok "$([ $? != 0 ]; echo $?)" "a CONNECT with 100 kB of headers is not served"
t_diag "  peer: $(echo "$out" | grep FAIL | head -2 | tr '\n' ' ')"
sleep 0.2
t_like "$(since "$n")" "inbound HBONE connection from 198\.18\.2\.12:[0-9]+ ended: .+" "  logged with a reason"

# Garbage after the preface.
n=$(lines)
out=$(peer garbage good)
t_is "$out" "closed" "garbage frames after the HTTP/2 preface: connection closed"
sleep 0.2
t_like "$(since "$n")" "inbound HBONE connection from 198\.18\.2\.12:[0-9]+ ended: .+" "  logged with a reason"

# A flood of streams opened at once (more than SETTINGS_MAX_CONCURRENT_STREAMS).
out=$(peer flood good --streams 300 --authority 198.18.1.11:7777)
ok=$(echo "$out" | sed -n 's/^ok=\([0-9]*\) .*/\1/p')
t_diag "flood: $out"
t_ok "$([ -n "$ok" ] && [ "$ok" -le 100 ]; echo $?)" "300 streams at once: at most 100 served (${ok:-?})"
t_like "$out" "refused=[1-9]|goaway=1|closed=1" "  the rest refused or the connection closed"
n=$(lines)
out=$(peer flood good --streams 5000 --rst --authority 198.18.1.11:7777)
t_diag "rapid reset: $out"
t_like "$out" "goaway=1|closed=1" "5000 streams opened and cancelled at once (rapid reset): connection closed"
sleep 0.2
t_like "$(since "$n")" "inbound HBONE connection from 198\.18\.2\.12:[0-9]+ ended: .+" "  logged with a reason"

# Others are served all along.
out=$(peer client good --req "CONNECT|198.18.1.11:7777|200|fresh|fresh")
t_ok $? "a fresh connection is served after the bad peers"
out=$(h_exec n1a "$ECHO" send "$(h_ip4 n1b)" 7777 --data same-node 2>&1)
t_like "$out" "same-node" "same-node traffic through ztunnel still flows"

# A config that fails to parse: the previous one stays in force.
gen() { h_exec n1 curl -s -m 2 http://127.0.0.1:15000/config_dump | tr -d ' \n' |
	sed -n 's/.*"generation":\([0-9]*\).*/\1/p'; }
g0=$(gen)
n=$(lines)
printf 'workloads:\n- name: broken\n  bogusField: 1\n' | m_config_write
sleep 0.8
kill -HUP "${M_ZT_PID[n1]}"
sleep 0.3
t_like "$(since "$n")" "reloading .*ztunnel.yaml failed, keeping the previous config" "a config that fails to parse is refused with a logged reason"
t_like "$(since "$n")" "ztunnel.yaml:[0-9]+: " "  naming FILE:LINE"
t_is "$(gen)" "$g0" "  the previous config stays in force (generation $g0)"
out=$(peer client good --req "CONNECT|198.18.1.11:7777|200|after-bad-config|after-bad-config")
t_ok $? "  and keeps serving"
m_config_hbone n1a n1b n2a n2b
sleep 0.6
t_ok "$([ "$(gen)" -gt "$g0" ]; echo $?)" "a good config is taken again after the broken one"

touch "$H_STATE/go"
wait $early
t_ok $? "the connection opened before the bad peers is served after them"
wait $stall
out=$(cat "$H_STATE/stall.out")
t_like "$out" "^closed after (9|1[0-3]) s" "a peer stalling in the TLS handshake is dropped by the 10 s handshake timeout"
t_like "$(cat "$LOG")" "inbound HBONE connection from 198\.18\.2\.12:[0-9]+ ended: .*(time|handshake)" "  logged with a reason"
t_ok "$(kill -0 "${M_ZT_PID[n1]}" 2>/dev/null; echo $?)" "ztunnel survived every bad peer"
t_done
