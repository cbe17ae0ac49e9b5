#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# PeerAuthentication DISABLE, end to end: a mesh source sends plaintext to a destination whose
# effective mode is DISABLE (Istio ambient), straight to the pod's ip:port instead of HBONE to
# 15008; the destination node captures it to its ztunnel's 15006, which accepts it unless
# STRICT applies. Policies are Istio YAML as users write it (tests/data/peerauth/), given with
# --policy and reloaded without a restart.
#
#   n1a 198.18.1.11 shop/client (HBONE)    --+                    +-- n2a 198.18.2.11 legacy/db
#                                            | n1 ===wire0=== n2 |   (HBONE, app=db) :7777 :7778
#   n1b 198.18.1.12 outside (TCP, no mesh) --+   tcpdump here    +-- n2b 198.18.2.12 shop/web
#                                                                    (HBONE) :7777
#
# legacy-disable.yaml: namespace legacy DISABLE, workload app=db port 7778 STRICT (its own
# mode UNSET, so 7777 inherits DISABLE); shop has no PeerAuthentication (PERMISSIVE).
# Checks, each with a packet capture of n1's wire0 taken for that one flow:
#   n1a -> n2a:7777 succeeds, its payload is on the wire in cleartext, no 15008 packet;
#   access logs (via=tcp_mtls_disabled on n1, inbound_plain on n2) and metrics
#   (connection_security_policy="unknown", as the reference ztunnel labels plaintext);
#   n1a -> n2a:7778 (port-level STRICT) goes over HBONE: payload not visible, 15008 only;
#   n1a -> n2b:7777 (PERMISSIVE) still mTLS; a non-mesh n1b reaches n2a:7777 but not 7778
#   (kernel fast-path rule named after the port-level policy); reload to STRICT switches
#   n1a -> n2a:7777 to HBONE and refuses n1b, reload back to DISABLE returns to plaintext,
#   same ztunnel processes; a mode typo (DISALBE) is refused with FILE:LINE by --check and
#   by a reload, which keeps the previous policies.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
DATA=tests/data/peerauth
m_need tcpdump jq curl

m_init 2 2
{
	echo "workloads:"
	m_workload -4 n1a shop client HBONE "labels: {app: client}"
	m_workload -4 n1b outside legacy TCP "labels: {app: outside}"
	m_workload -4 n2a legacy db HBONE "labels: {app: db}"
	m_workload -4 n2b shop web HBONE "labels: {app: web}"
} | m_config_write
N2A=$(h_ip4 n2a)
N2B=$(h_ip4 n2b)
# set_policy FILE: install FILE as the --policy file (atomically), wait for both reloads.
reloads() { cat "$H_STATE"/zt-n*.log | grep -c "policy files reloaded"; }
set_policy() {
	local before
	before=$(reloads)
	m_policy_write <"$1"
	m_wait_for 5 eval '[ "$(reloads)" -ge $((before + 2)) ]' ||
		t_diag "set_policy $1: both ztunnels did not log a reload"
	sleep 0.3
}
m_policy_write <"$DATA/legacy-disable.yaml"
m_ca_init

# --pool-idle-ms 300: an idle HBONE connection is gone before the next capture starts, so
# "no 15008 packet" speaks about the flow under test only.
for n in n1 n2; do
	m_node_start $n --ca-dir "$M_CA" --policy "$M_POL" --poll-ms 100 --pool-idle-ms 300
done
m_echo_serve n2a n2b
m_ztunnel_wait n1 n2
sleep 0.5

send() { # send POD DST_IP PORT DATA: prints what the client saw (the echo of DATA)
	h_exec "$1" "$ECHO" send "$2" "$3" --data "$4" --timeout 3 2>&1 | tr '\n' ' '
}
# The capture of one flow: no pooled HBONE connection may be left from an earlier one.
no_hbone() { [ -z "$(h_exec n1 ss -Htn state established '( dport = :15008 )')" ]; }
CAP= CAP_PID=
cap_start() { # cap_start NAME
	m_wait_for 5 no_hbone || t_diag "an HBONE connection is still open before capture $1"
	CAP=$H_STATE/$1.pcap
	h_bg n1 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$CAP" tcp 2>/dev/null
	CAP_PID=$H_LAST_PID
	m_wait_for 5 test -e "$CAP"
	sleep 0.8 # tcpdump needs a moment after opening the file before it captures
}
cap_stop() { sleep 0.3; h_stop "$CAP_PID"; }
flow() { # flow NAME DST_IP PORT MARK: n1a sends MARK to DST_IP:PORT, captured as NAME; sets out
	cap_start "$1"
	out=$(send n1a "$2" "$3" "$4")
	cap_stop
}
pkts() { tcpdump -nn -r "$CAP" "$1" 2>/dev/null | wc -l; } # pkts FILTER: packets in $CAP
in_clear() { grep -aqF "$1" "$CAP"; }
log_n1() { cat "$H_STATE/zt-n1.log"; }
log_n2() { cat "$H_STATE/zt-n2.log"; }

# 1. DISABLE: plaintext from the mesh source, straight to the pod's own port.
MARK=ZMESH-PEERAUTH-PLAIN-7777
flow disable "$N2A" 7777 "$MARK"
t_like "$out" "$MARK" "DISABLE: n1a -> n2a:7777 succeeds"
in_clear "$MARK"
t_ok $? "DISABLE: the payload is on the wire in cleartext (tcpdump on wire0)"
t_is "$(pkts 'tcp port 15008')" 0 "DISABLE: no HBONE (15008) packet for that flow"
t_like "$(pkts "tcp and dst host $N2A and dst port 7777")" '^[1-9]' \
	"DISABLE: the wire carries TCP to $N2A:7777 itself"
t_like "$(log_n1)" "scope=access msg=close dir=outbound via=tcp_mtls_disabled src.addr=198\.18\.1\.11:[0-9]+ .*dst.addr=$N2A:7777 .*upstream=$N2A:7777 .*outcome=ok" \
	"n1 access log: outbound marked via=tcp_mtls_disabled, upstream the pod itself"
t_diag "n1: $(log_n1 | grep -m1 'scope=access msg=close dir=outbound via=tcp_mtls_disabled' | cut -d' ' -f3-)"
t_like "$(log_n2)" "scope=access msg=close dir=inbound_plain via=tcp src.addr=198\.18\.1\.11:[0-9]+ .*dst.addr=$N2A:7777 .*outcome=ok" \
	"n2 access log: accepted on 15006 (inbound plaintext)"
m1=$(h_exec n1 curl -s -m 2 http://127.0.0.1:15020/metrics)
m2=$(h_exec n2 curl -s -m 2 http://127.0.0.1:15020/metrics)
t_like "$m1" 'istio_tcp_connections_opened_total\{reporter="source",source_workload="n1a",.*destination_workload="n2a".*connection_security_policy="unknown"[^}]*\} [1-9]' \
	"n1 metrics: the outbound series is not mutual_tls"
t_like "$m2" 'istio_tcp_received_bytes_total\{reporter="destination",source_workload="n1a",.*destination_workload="n2a".*connection_security_policy="unknown"[^}]*\} [1-9]' \
	"n2 metrics: inbound bytes counted as plaintext"

# 2. Port-level STRICT on the same pod: HBONE.
MARK=ZMESH-PEERAUTH-STRICT-7778
flow strict-port "$N2A" 7778 "$MARK"
t_like "$out" "$MARK" "port-level STRICT: n1a -> n2a:7778 succeeds"
in_clear "$MARK"
t_ok $((!$?)) "port-level STRICT: the payload is not visible on the wire"
t_like "$(pkts 'tcp port 15008')" '^[1-9]' "port-level STRICT: the flow went over HBONE (15008)"
t_is "$(pkts 'tcp port 7778')" 0 "port-level STRICT: nothing to port 7778 on the wire"
t_like "$(log_n1)" "scope=access msg=close dir=outbound via=hbone src.addr=198\.18\.1\.11:[0-9]+ .*dst.addr=$N2A:7778 .*upstream=$N2A:15008 .*outcome=ok" \
	"n1 access log: via=hbone to $N2A:15008"

# 3. A destination left at PERMISSIVE still gets mTLS.
MARK=ZMESH-PEERAUTH-PERMISSIVE
flow permissive "$N2B" 7777 "$MARK"
t_like "$out" "$MARK" "PERMISSIVE: n1a -> n2b:7777 succeeds"
in_clear "$MARK"
t_ok $((!$?)) "PERMISSIVE: the payload is not visible on the wire"
t_like "$(pkts 'tcp port 15008')" '^[1-9]' "PERMISSIVE: HBONE (15008)"
t_is "$(pkts "tcp and host $N2B and port 7777")" 0 "PERMISSIVE: no plain TCP to $N2B:7777"

# 4. The destination side: plaintext from outside the mesh is taken where DISABLE applies and
# refused on the STRICT port (a kernel drop rule named after the port-level policy).
t_like "$(send n1b "$N2A" 7777 hi-outside)" "hi-outside" "non-mesh n1b -> n2a:7777 (DISABLE) accepted"
out=$(send n1b "$N2A" 7778 hi-admin)
t_ok "$(echo "$out" | grep -q hi-admin; echo $((!$?)))" "non-mesh n1b -> n2a:7778 (STRICT port) refused ($out)"
rules=$(m_zctl n2 -j policy list 2>&1)
t_is "$(echo "$rules" | jq -r '[.policies[] | select(.n_rules > 0) | .policy as $p | .rules[] | "\($p) \(.dst) \(.dst_port)"] | join(";")')" \
	"legacy/db-admin-port $N2A 7778" "zmeshctl policy list -j on n2: one drop rule, the STRICT port"

# 5. Reload: the namespace goes STRICT; same processes, the next connection is HBONE.
set_policy "$DATA/legacy-strict.yaml"
MARK=ZMESH-PEERAUTH-RELOADED-STRICT
flow reload-strict "$N2A" 7777 "$MARK"
t_like "$out" "$MARK" "reloaded STRICT: n1a -> n2a:7777 succeeds"
in_clear "$MARK"
t_ok $((!$?)) "reloaded STRICT: the payload is no longer visible"
t_like "$(pkts 'tcp port 15008')" '^[1-9]' "reloaded STRICT: HBONE (15008)"
t_is "$(pkts 'tcp port 7777')" 0 "reloaded STRICT: no plain TCP to 7777"
out=$(send n1b "$N2A" 7777 hi-outside)
t_ok "$(echo "$out" | grep -q hi-outside; echo $((!$?)))" "reloaded STRICT: non-mesh n1b now refused ($out)"

set_policy "$DATA/legacy-disable.yaml"
MARK=ZMESH-PEERAUTH-BACK-TO-DISABLE
flow reload-disable "$N2A" 7777 "$MARK"
t_like "$out" "$MARK" "reloaded DISABLE: n1a -> n2a:7777 succeeds"
in_clear "$MARK"
t_ok $? "reloaded DISABLE: the payload is in cleartext again"
t_is "$(pkts 'tcp port 15008')" 0 "reloaded DISABLE: no 15008 packet"
alive=0
for p in "${M_ZT_PID[@]}"; do kill -0 "$p" 2>/dev/null || alive=1; done
t_ok $alive "both ztunnels kept running through the reloads (no restart)"

# 6. A mode typo: refused with the file, line and field, and a live reload keeps the old set.
out=$("$ZT" --check --config "$M_CFG" --policy "$DATA/disalbe.yaml" 2>&1)
rc=$?
t_is "$rc" 1 "ztunnel --check refuses mode DISALBE"
t_like "$out" "^$DATA/disalbe\.yaml:10: spec\.mtls\.mode: unknown value \"DISALBE\" \(want UNSET, DISABLE, PERMISSIVE or STRICT\)" \
	"  with FILE:LINE and the field named"
m_policy_write <"$DATA/disalbe.yaml"
m_wait_for 5 eval 'log_n1 | grep -q "reloading policy files failed"'
t_like "$(log_n1)" "reloading policy files failed, keeping the previous policies:.*" \
	"reload of the typo: logged, previous policies kept"
t_like "$(log_n1)" "$M_POL:10: spec\.mtls\.mode: unknown value [\\]?\"DISALBE[\\]?\"" "  the log names FILE:LINE and the field"
before=$(log_n1 | grep -c "via=tcp_mtls_disabled .*dst.addr=$N2A:7777 .*outcome=ok")
t_like "$(send n1a "$N2A" 7777 still-plain)" "still-plain" "after the refused reload: n1a -> n2a:7777 works"
sleep 0.3
t_is "$(log_n1 | grep -c "via=tcp_mtls_disabled .*dst.addr=$N2A:7777 .*outcome=ok")" $((before + 1)) \
	"  still plaintext under the kept DISABLE policy"

# With a SANITIZE=1 build (BUILD=build-san) a report lands in the ztunnel logs; stopping the
# ztunnels here lets the exit-time leak check speak too.
for p in "${M_ZT_PID[@]}"; do h_stop "$p"; done
san=$(grep -h -A3 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$H_STATE"/zt-n*.log | head -20)
t_is "$san" "" "no sanitizer report in the ztunnel logs"
t_done
