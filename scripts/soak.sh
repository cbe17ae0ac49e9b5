#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make soak: about ten minutes of mixed traffic through a two-node mesh while the operator's
# faults happen one after the other, and per fault what was lost. Traffic, all checked:
#   bulk  long streams (tests/tools/zm-stream: every byte echoed and compared), IPv4 and IPv6,
#         cross-node HBONE n1a -> n2a, same-node splice n1a -> n1b, inbound HBONE n2b -> n1b
#   rr    a new connection per request (churn), n1a -> n2a over IPv4 and IPv6, ~15 a second
#   bulk-wp, rr-wp  the same through the waypoint (in n2c) of service wpsvc (VIP 198.19.0.20,
#         endpoint n2a): n1a -> ztunnel n1 => waypoint => ztunnel n2 -> n2a
# Faults (each in its own window; certificates live 30 s, so rotations run all along):
#   ztunnel upgrades on n1 and n2 and a waypoint upgrade (hand-over), a zmesh-ca restart,
#   policy churn, config churn (promised: nothing lost), then SIGKILL of n1's ztunnel and a
#   restart (not promised: what it carried is cut; reported, and traffic must come back).
# Output: TAP, a table of faults with connections and bytes lost, and "N passed, N failed".
# SOAK_WINDOW=S sets each fault window (default 60 s); the run is about 10 x that.
# Everything lives in the harness's namespaces on 198.18.0.0/15 and 2001:2::/48 and is
# removed on exit.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/lib/mesh.sh
CA=$BUILD/bin/zmesh-ca
WP=$BUILD/bin/waypoint
STREAM=$BUILD/tests/tools/zm-stream
m_need "$CA" "$WP" "$STREAM" python3 curl
WINDOW=${SOAK_WINDOW:-60}

m_init 2 3
CA_ADDR=198.18.0.1:15012
WPVIP=198.19.0.20
# The config: the workloads (n2a also behind wpsvc), then the services; config churn adds a
# workload between the two.
WL=$H_STATE/workloads.yaml
SVC=$H_STATE/services.yaml
{
	echo "workloads:"
	for p in n1a n1b n2b; do m_workload "$p" ns "sa-$p" HBONE; done
	m_workload n2a ns sa-n2a HBONE "services: {ns/wpsvc.ns.svc.cluster.local: {7777: 7777, 7778: 7778}}"
	echo "- {uid: Kubernetes//Pod/ns/waypoint, name: waypoint, namespace: ns, serviceAccount: waypoint, protocol: TCP, node: n2, workloadIps: [\"$(h_ip4 n2c)\"]}"
} >"$WL"
echo "services:
- {name: wpsvc, namespace: ns, hostname: wpsvc.ns.svc.cluster.local, vips: [\"/$WPVIP\"], ports: {7777: 7777, 7778: 7778}, waypoint: {destination: \"/$(h_ip4 n2c)\", hboneMtlsPort: 15008}}" >"$SVC"
GOOD=$H_STATE/good.yaml
cat "$WL" "$SVC" >"$GOOD"
m_config_write <"$GOOD"
: >"$M_POL"
m_ca_init
for n in n1 n2; do
	"$CA" issue-node --dir "$M_CA" --out "$H_STATE/$n" --node $n >/dev/null ||
		t_fatal "issue-node $n failed"
	mkdir -p "$H_STATE/run-$n"
done
ca_start() {
	h_bg n1 "$CA" --dir "$M_CA" --config "$M_CFG" --listen $CA_ADDR --max-ttl 86400 \
		2>>"$H_STATE/ca.log"
	CA_PID=$H_LAST_PID
	h_wait_port n1 15012 || t_fatal "zmesh-ca did not start: $(cat "$H_STATE/ca.log")"
}
ca_start
ZT_LOGN=0
zt_start() { # zt_start NODE: a ztunnel (hand-over from the running one, if any)
	ZT_LOGN=$((ZT_LOGN + 1))
	h_bg "$1" env ZM_CERT_LIFETIME=30 "$ZT" --config "$M_CFG" --node "$1" \
		--netns "/var/run/netns/$(h_ns "$1")" --pin-dir "$(h_pin_dir "$1")" \
		--ca-addr $CA_ADDR --ca-dir "$H_STATE/$1" --policy "$M_POL" --poll-ms 200 \
		--run-dir "$H_STATE/run-$1" 2>"$H_STATE/zt-$1-$ZT_LOGN.log"
	M_ZT_PID[$1]=$H_LAST_PID
	ZT_LOG[$1]=$H_STATE/zt-$1-$ZT_LOGN.log
}
declare -A ZT_LOG=()
for n in n1 n2; do
	m_datapath_load $n
	zt_start $n
done
m_ztunnel_wait n1 n2
m_echo_serve n1a n1b n2a n2b
echo "# no routes: the waypoint relays wpsvc's TCP as the service" >"$H_STATE/routes.yaml"
WP_LOGN=0
wp_start() { # wp_start: a waypoint in n2c (hand-over from the running one, if any)
	WP_LOGN=$((WP_LOGN + 1))
	h_bg n2c "$WP" --config "$H_STATE/routes.yaml" --mesh-config "$M_CFG" \
		--identity spiffe://cluster.local/ns/ns/sa/waypoint --ca-dir "$M_CA" \
		--netns "/var/run/netns/$(h_ns n2c)" --handover "$H_STATE/wp.handover" \
		2>"$H_STATE/wp-$WP_LOGN.log"
	WP_PID=$H_LAST_PID
}
wp_start
m_wait_for 10 bash -c "[ \"\$(ip netns exec $(h_ns n2c) curl -s -m 1 http://127.0.0.1:15021/healthz/ready)\" = ready ]" ||
	t_fatal "waypoint not ready: $(cat "$H_STATE/wp-1.log")"

# ---- traffic: every event a line "START_MS END_MS KIND ok|fail BYTES WHY" in $EV ----
EV=$H_STATE/events
STOP=$H_STATE/stop
: >"$EV"
now_ms() { date +%s%3N; }
drive_streams() { # KIND POD DST
	local s e out
	while [ ! -e "$STOP" ]; do
		s=$(now_ms)
		out=$(h_exec "$2" "$STREAM" "$3" 7778 --seconds 15 --rate 256 --stall-ms 10000 2>&1)
		e=$(now_ms)
		case $out in
		"stream ok"*) echo "$s $e $1 ok ${out#*sent=}" ;;
		*)
			echo "$s $e $1 fail 0 $out"
			sleep 0.2 # a refused connect is immediate: do not spin
			;;
		esac >>"$EV"
	done
}
drive_rr() { # KIND POD DST
	local s e out
	while [ ! -e "$STOP" ]; do
		s=$(now_ms)
		out=$(h_exec "$2" "$ECHO" send "$3" 7777 --data soak --timeout 5 2>&1 | tr '\n' ' ')
		e=$(now_ms)
		case $out in
		*soak*) echo "$s $e $1 ok 4" ;;
		*) echo "$s $e $1 fail 0 $out" ;;
		esac >>"$EV"
		sleep 0.1
	done
}
DRIVERS=()
drive_streams bulk4 n1a "$(h_ip4 n2a)" & DRIVERS+=($!)
drive_streams bulk6 n1a "$(h_ip6 n2a)" & DRIVERS+=($!)
drive_streams same n1a "$(h_ip4 n1b)" & DRIVERS+=($!)
drive_streams inbound n2b "$(h_ip4 n1b)" & DRIVERS+=($!)
drive_rr rr4 n1a "$(h_ip4 n2a)" & DRIVERS+=($!)
drive_rr rr6 n1a "$(h_ip6 n2a)" & DRIVERS+=($!)
drive_streams bulk-wp n1a $WPVIP & DRIVERS+=($!)
drive_rr rr-wp n1a $WPVIP & DRIVERS+=($!)

# ---- faults: FAULTS holds "NAME START_MS END_MS PROMISED" ----
FAULTS=$H_STATE/faults
: >"$FAULTS"
fault() { # fault NAME PROMISED CMD...: run CMD as the fault, then let traffic settle
	local name=$1 promised=$2 s
	shift 2
	s=$(now_ms)
	t_diag "fault $name ($(date +%T))"
	"$@"
	sleep "$WINDOW"
	echo "$name $s $(now_ms) $promised" >>"$FAULTS"
}
upgrade() { # upgrade NODE: hand-over to a new ztunnel, the old one drains and exits
	local old=${M_ZT_PID[$1]}
	zt_start "$1"
	m_wait_for 15 grep -q "handed over to pid ${M_ZT_PID[$1]}" "$H_STATE"/zt-"$1"-*.log ||
		t_diag "no hand-over line on $1"
	m_ztunnel_wait "$1"
	UPGRADED+=("$old")
}
wp_upgrade() { # the same with the waypoint
	local old=$WP_PID
	wp_start
	m_wait_for 15 grep -q "handed over to pid $WP_PID" "$H_STATE"/wp-*.log ||
		t_diag "no hand-over line from the waypoint"
	UPGRADED+=("$old")
}
ca_restart() {
	h_stop "$CA_PID"
	sleep 3
	ca_start
}
policy_churn() { # allow-all and an unrelated deny, flipping every 2 s in the background
	(for i in $(seq 1 $((WINDOW / 2))); do
		if ((i % 2)); then
			printf '%s\n' "apiVersion: security.istio.io/v1" "kind: AuthorizationPolicy" \
				"metadata: {name: no-9999, namespace: ns}" \
				"spec: {action: DENY, rules: [{to: [{operation: {ports: [\"9999\"]}}]}]}"
		else
			echo "# empty"
		fi | m_policy_write
		sleep 2
	done) &
}
config_churn() { # an extra workload on n2 comes and goes every 2 s
	(for i in $(seq 1 $((WINDOW / 2))); do
		if ((i % 2)); then
			{ cat "$WL"; echo "- {uid: Kubernetes//Pod/ns/extra, name: extra, namespace: ns, protocol: TCP, node: n2, workloadIps: [198.18.2.99]}"; cat "$SVC"; } | m_config_write
		else
			m_config_write <"$GOOD"
		fi
		sleep 2
	done) &
}
kill9() { # SIGKILL n1's ztunnel, restart it 3 s later (a fresh start: nothing to take over)
	kill -KILL "${M_ZT_PID[n1]}"
	sleep 3
	zt_start n1
	m_ztunnel_wait n1
}
UPGRADED=()
sleep 10 # traffic first
fault "ztunnel-upgrade-n1" yes upgrade n1
fault "ztunnel-upgrade-n2" yes upgrade n2
fault "waypoint-upgrade" yes wp_upgrade
fault "zmesh-ca-restart" yes ca_restart
fault "policy-churn" yes policy_churn
fault "config-churn" yes config_churn
fault "ztunnel-sigkill-n1" no kill9
touch "$STOP"
for p in "${DRIVERS[@]}"; do wait "$p"; done
for p in "${UPGRADED[@]}"; do
	m_wait_for 20 bash -c "! kill -0 $p 2>/dev/null" || t_diag "old process $p still draining"
done

# ---- the reckoning ----
python3 - "$EV" "$FAULTS" >"$H_STATE/report" <<'PY'
import sys
ev = [l.split(None, 5) for l in open(sys.argv[1]) if l.strip()]
faults = [l.split() for l in open(sys.argv[2]) if l.strip()]
def bytes_lost(x):
    """What a failed connection did not deliver: the bytes a stream sent and never got back
    ("stream FAILED at byte ECHOED sent=SENT: why"), a request's 4 bytes once it connected."""
    why = x[5] if len(x) > 5 else ""
    if not x[2].startswith(("bulk", "same", "inbound")):
        return 0 if "refused" in why or "timed out" in why else 4
    try:
        echoed = int(why.split("at byte ")[1].split()[0])
        sent = int(why.split("sent=")[1].split(":")[0])
    except (IndexError, ValueError):
        return 0
    return sent - echoed


print("%-22s %8s %6s %6s %10s %10s %s" % ("fault", "promise", "conns", "lost", "bytes ok",
                                           "bytes lost", "kinds lost"))
for name, s, e, promised in faults:
    s, e = int(s), int(e)
    # Crossed it: open at some point of the window. Lost in it: failed inside it (a stream
    # open across two windows is lost to the one it failed in).
    during = [x for x in ev if int(x[0]) < e and int(x[1]) > s]
    lost = [x for x in during if x[3] == "fail" and s <= int(x[1]) < e]
    nbytes = sum(int(x[4].split()[0]) for x in during if x[3] == "ok" and x[2].startswith(("bulk", "same", "inbound")))
    kinds = sorted({x[2] for x in lost})
    print("%-22s %8s %6d %6d %10d %10d %s" % (name, promised, len(during), len(lost), nbytes,
                                            sum(bytes_lost(x) for x in lost),
                                            ",".join(kinds) or "-"))
    for x in lost[:3]:
        print("#   %s %s" % (x[2], x[5].strip() if len(x) > 5 else ""))
print("all %d connections, %d failed" % (len(ev), sum(1 for x in ev if x[3] == "fail")))
PY
sed 's/^/# /' "$H_STATE/report"
while read -r name promise conns lost _ blost rest; do
	case $name in fault | all | \#*) continue ;; esac
	if [ "$promise" = yes ]; then
		t_is "$lost $blost" "0 0" "$name: no connection and no byte lost ($conns crossed it)"
	else
		t_diag "$name: $lost of $conns connections, $blost bytes lost (not promised: it carried them)"
		t_ok "$([ "$conns" -gt 0 ]; echo $?)" "$name: traffic went on around it"
	fi
done <"$H_STATE/report"
t_like "$(h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --data after --timeout 5 2>&1)" "after" \
	"the mesh serves after the soak"
t_like "$(grep -h 'scope=identity' "$H_STATE"/zt-n1-*.log | grep -c 'rotated\|renewed')" \
	'^([2-9]|[1-9][0-9]+)$' "certificates rotated during the soak (30 s lifetime)"
# Under the sanitizer build (make SANITIZE=1 soak) t_done fails on a report in any daemon's log
# (tests/lib/harness.sh h_final_checks), those of the processes that drained and exited included.
t_done
rc=$?
echo "$((T_N - T_FAILED)) passed, $T_FAILED failed"
exit "$rc"
