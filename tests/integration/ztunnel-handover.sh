#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Upgrading ztunnel drops no connection: a second ztunnel started on node n1 takes the running
# one's listening sockets over RUN_DIR/ztunnel.handover (SCM_RIGHTS) and serves on them; the
# old one stops accepting, sends GOAWAYs and keeps relaying every established connection until
# it closes, then exits. Long-lived checked streams (tests/tools/zm-stream: every byte echoed
# and compared) cross the hand-over in each of ztunnel's paths, with zero bytes lost and no
# reset. Then the bad inputs: a path that is not a socket, a socket that is not ours, two
# ztunnels started at once on one node, a malformed --drain-timeout.
#
#   n1a 198.18.1.11 --+                        +-- n2a 198.18.2.11
#   n1b 198.18.1.12 --+ n1 ===== wire0 ===== n2 +-- n2b 198.18.2.12   (all HBONE, echo on 7778)
#   stream A: n1a -> n2a  outbound HBONE through n1's ztunnel (old, then new)
#   stream B: n1a -> n1b  same node, spliced by n1's ztunnel
#   stream C: n2b -> n1b  inbound HBONE on n1's 15008
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
STREAM=$BUILD/tests/tools/zm-stream
m_need "$STREAM" curl python3

m_init 2 2
m_config_hbone n1a n1b n2a n2b
m_ca_init
for n in n1 n2; do
	mkdir -p "$H_STATE/run-$n"
	m_node_start $n --ca-dir "$M_CA" --run-dir "$H_STATE/run-$n" --poll-ms 200
done
m_ztunnel_wait n1 n2
m_echo_serve n1a n1b n2a n2b
OLD=${M_ZT_PID[n1]}
HO=$H_STATE/run-n1/ztunnel.handover
t_ok "$([ -S "$HO" ]; echo $?)" "the serving ztunnel answers hand-overs on RUN_DIR/ztunnel.handover"

stream() { # stream NAME FROM TO: a 12 s checked stream at 256 KB/s in the background
	h_exec "$2" "$STREAM" "$3" 7778 --seconds 12 --rate 256 >"$H_STATE/stream-$1.out" 2>&1 &
	eval "SPID_$1=$!"
}
stream A n1a "$(h_ip4 n2a)"
stream B n1a "$(h_ip4 n1b)"
stream C n2b "$(h_ip4 n1b)"
sleep 3

# The upgrade: a new ztunnel on n1 with the same options.
h_bg n1 "$ZT" --config "$M_CFG" --node n1 --netns "/var/run/netns/$(h_ns n1)" \
	--pin-dir "$(h_pin_dir n1)" --ca-dir "$M_CA" --run-dir "$H_STATE/run-n1" --poll-ms 200 \
	2>"$H_STATE/zt-n1-new.log"
NEW=$H_LAST_PID
m_wait_for 10 grep -q "handed over to pid $NEW" "$H_STATE/zt-n1.log"
t_ok $? "the old ztunnel handed its sockets to the new one (pid $NEW)"
t_like "$(cat "$H_STATE/zt-n1-new.log")" "taking over from the ztunnel running as pid $OLD" \
	"the new ztunnel says whom it took over from"
t_like "$(cat "$H_STATE/zt-n1.log")" "draining \(handed over to a newer ztunnel\): no longer accepting" \
	"the old one drains without a deadline"
M_ZT_PID[n1]=$NEW
m_ztunnel_wait n1
t_ok "$(kill -0 "$OLD" 2>/dev/null; echo $?)" "the old ztunnel still runs: it relays the streams"

# New connections go to the new process, old ones stay with the old.
t_like "$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data x --timeout 5 2>&1 | head -1)" \
	"^peer=198\.18\.1\.11:" "a new connection after the hand-over is served"
m_wait_for 5 grep -q "scope=access msg=open dir=outbound via=hbone.*dst.addr=198.18.2.11:7777" \
	"$H_STATE/zt-n1-new.log"
t_ok $? "by the new ztunnel"

for s in A B C; do
	eval "wait \$SPID_$s"
	t_like "$(cat "$H_STATE/stream-$s.out")" "^stream ok sent=[0-9]+ echoed=[0-9]+" \
		"stream $s crossed the hand-over: every byte echoed, no reset ($(cat "$H_STATE/stream-$s.out"))"
done
m_wait_for 10 bash -c "! kill -0 $OLD 2>/dev/null"
t_ok $? "the old ztunnel exited once its connections closed"
t_like "$(cat "$H_STATE/zt-n1.log")" "drained: every connection closed after [0-9]+ ms" \
	"and said so"
t_like "$(m_zctl n1 -j stats | jq -r '.[] | select(.packets > 0) | .reason' | tr '\n' ' ')" \
	"captured_outbound" "the datapath kept capturing"
t_is "$(m_zctl n1 -j stats | jq '[.[] | select(.reason | test("no_listener")) | .packets] | add')" 0 \
	"no SYN met a moment without a listener (refused/drop_no_listener 0)"
t_is "$(h_exec n1 curl -s -m 2 http://127.0.0.1:15021/healthz/ready)" "ready" \
	"readiness answered by the new ztunnel"

# ---- bad input: the running ztunnel keeps serving through all of it ----
zt_try() { # zt_try HANDOVER_PATH [ARGS...]: a ztunnel start that must fail at once
	local p=$1
	shift
	timeout 10 "$ZT" --config "$M_CFG" --node n1 --netns "/var/run/netns/$(h_ns n1)" \
		--pin-dir "$(h_pin_dir n1)" --ca-dir "$M_CA" --handover "$p" "$@" 2>&1
	echo "exit=$?"
}
: >"$H_STATE/not-a-socket"
out=$(zt_try "$H_STATE/not-a-socket")
t_like "$out" "not-a-socket exists and is not a socket: refusing to replace it" \
	"a hand-over path that is not a socket is refused by name"
t_like "$out" "exit=1" "and ztunnel exits 1"
python3 - "$H_STATE/stranger.sock" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.recv(256); c.send(b"HTTP/1.1 400 Bad Request"); c.close()
PY
STRANGER=$!
m_wait_for 5 test -S "$H_STATE/stranger.sock"
out=$(zt_try "$H_STATE/stranger.sock")
t_like "$out" "stranger.sock is not a zmesh hand-over socket \(it answered \\\\?\"HTTP/1.1 400" \
	"a socket that is not ours is refused, with what it answered"
wait "$STRANGER" 2>/dev/null
# Two ztunnels at once: the lock is held (as by a ztunnel starting) but nobody answers.
flock "$H_STATE/twin.handover.lock" sleep 30 &
TWIN=$!
m_wait_for 5 bash -c "flock -n '$H_STATE/twin.handover.lock' true; [ \$? = 1 ]"
out=$(zt_try "$H_STATE/twin.handover")
t_like "$out" "holds .*twin.handover.lock but does not answer on .*twin.handover: two ztunnels on one node" \
	"two ztunnels started at once: the second is refused, naming the lock"
kill "$TWIN" 2>/dev/null
wait "$TWIN" 2>/dev/null
out=$(zt_try none --drain-timeout abc)
t_like "$out" "--drain-timeout: \"abc\" is not a whole number from 0 to 86400" \
	"a malformed --drain-timeout is named"
t_like "$out" "exit=2" "and is a usage error"
t_like "$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data x --timeout 5 2>&1 | head -1)" \
	"^peer=198\.18\.1\.11:" "the running ztunnel kept serving through the refused starts"
t_done
