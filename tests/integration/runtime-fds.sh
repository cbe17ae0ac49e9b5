#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The runtime out of file descriptors (lib/rt accept back-off): a ztunnel whose RLIMIT_NOFILE
# is lowered (prlimit) to what it already holds cannot accept another connection. It must
# keep serving the connection it already relays, not spin on its readable listeners (CPU
# time stays low), log the failure at most once a second, and accept again once descriptors
# are free. One node, two pods, same-node path (spliced: each connection holds 6 fds).
#
#   n1a 198.18.1.11 (HBONE, client) --+
#                                     + n1: ztunnel --workers 1 (15001/15006/15008)
#   n1b 198.18.1.12 (HBONE, echo 7777 banner, 7778 plain) --+
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
command -v prlimit >/dev/null || t_fatal "prlimit not installed (util-linux)"
command -v python3 >/dev/null || t_fatal "python3 not installed"

m_init 2 2 # node n2 only provides the wire the datapath needs as uplink
m_config_hbone n1a n1b
m_node_start n1 --workers 1
m_echo_serve n1b
m_ztunnel_wait n1
PID=${M_ZT_PID[n1]}
LOG=$H_STATE/zt-n1.log
sleep 0.5 # enrollment follows readiness

t_like "$(h_exec n1a "$ECHO" send "$(h_ip4 n1b)" 7777 --data hi --timeout 3 2>&1 | head -1)" \
	"198\.18\.1\.11" "n1a -> n1b through ztunnel (the server sees the client's address)"

# A long-lived connection that exchanges a line every 100 ms and counts the echoes.
cat >"$H_STATE/hold.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7778), timeout=5)
f = open(sys.argv[2], "w")
n = 0
end = time.time() + float(sys.argv[3])
while time.time() < end:
    s.sendall(b"ping %d\n" % n)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            raise SystemExit("closed")
        got += chunk
    n += 1
    f.seek(0); f.write("%d\n" % n); f.flush()
    time.sleep(0.1)
PY
h_bg n1a python3 "$H_STATE/hold.py" "$(h_ip4 n1b)" "$H_STATE/hold.count" 20
HOLD=$H_LAST_PID
count() { # echoes the held connection has seen so far
	local n
	n=$(cat "$H_STATE/hold.count" 2>/dev/null)
	echo "${n:-0}"
}
m_wait_for 5 eval '[ "$(count)" -ge 3 ]' || t_fatal "the long-lived connection did not start"
sleep 0.3

fds() { ls "/proc/$PID/fd" | wc -l; }
# The lowest descriptor number not in use: a soft limit there leaves nothing to allocate
# (descriptors above it stay open and usable; the kernel only refuses new ones).
first_free() { ls "/proc/$PID/fd" | sort -n | awk '$1 != NR - 1 { print NR - 1; f = 1; exit } END { if (!f) print NR }'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; } # clock ticks, user + system
orig=$(prlimit --pid "$PID" --nofile --output SOFT,HARD --noheadings | awk '{ print $1 ":" $2 }')
t_diag "ztunnel holds $(fds) descriptors, limit $orig"
# Nothing left (the soft limit only: the hard one stays, so it can be raised back).
hard=${orig#*:}
prlimit --pid "$PID" --nofile="$(first_free):$hard" || t_fatal "prlimit failed"
lines0=$(grep -c 'accept on .* failed' "$LOG")
c0=$(count)
cpu0=$(cpu)
t0=$(date +%s.%N)
# New connections pile up in the listen backlog; their clients give up after 3 s.
for i in $(seq 20); do
	h_bg n1a bash -c "exec '$ECHO' send $(h_ip4 n1b) 7777 --data x$i --timeout 3 >/dev/null 2>&1"
done
sleep 3
cpu1=$(cpu)
t1=$(date +%s.%N)
c1=$(count)
lines=$(($(grep -c 'accept on .* failed' "$LOG") - lines0))
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", b - a + 0.999 }')
t_diag "over ${secs} s out of descriptors: $((c1 - c0)) echoes on the held connection, $((cpu1 - cpu0)) CPU ticks, $lines log lines"
t_ok "$([ $((c1 - c0)) -ge 10 ]; echo $?)" "the existing connection kept being served ($((c1 - c0)) echoes in ~3 s)"
t_ok "$([ "$lines" -ge 1 ] && [ "$lines" -le $((secs + 1)) ]; echo $?)" \
	"the failure is logged, at most once a second ($lines lines in ${secs} s)"
# A ztunnel spinning on its listener burns a whole CPU (~100 ticks a second).
t_ok "$([ $((cpu1 - cpu0)) -lt $((secs * 50)) ]; echo $?)" \
	"no busy loop: $((cpu1 - cpu0)) CPU ticks in ${secs} s"
t_like "$(grep -m1 'accept on .* failed' "$LOG")" 'scope=rt msg="accept on outbound .*: Too many open files; pausing this listener' \
	"the line says what failed and what happens"

# Descriptors back: accepting again within the back-off (at most 1 s).
prlimit --pid "$PID" --nofile="$orig" || t_fatal "prlimit restore failed"
ok=0
for i in $(seq 30); do
	out=$(h_exec n1a "$ECHO" send "$(h_ip4 n1b)" 7777 --data after --timeout 2 2>&1 | head -1)
	[[ $out =~ 198\.18\.1\.11 ]] && ok=1 && break
	sleep 0.2
done
t_is "$ok" 1 "new connections are accepted again once descriptors are free"
t_like "$(cat "$LOG")" 'msg="accepting on outbound .* again"' "and that is logged once"
t_ok "$(kill -0 "$HOLD" 2>/dev/null; echo $?)" "the long-lived connection is still open"
t_ok "$([ "$(count)" -gt "$c1" ]; echo $?)" "and still echoing ($(count) lines)"
# Out of descriptors ztunnel cannot even read its datapath: it said it was not ready, and is
# again on its next health check (every --poll-ms, 1 s by default).
is_ready() { [ "$(h_exec n1 curl -s -m 2 http://127.0.0.1:15021/healthz/ready)" = ready ]; }
m_wait_for 5 is_ready
t_ok $? "ztunnel ready again once descriptors are free"
t_done
