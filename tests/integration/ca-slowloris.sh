#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zmesh-ca bounded against slow and idle peers (issue 15): its deadlines (handshake, whole
# request, idle), the eviction of slow connections when every slot is taken, and the per-peer
# cap. Slow peers are tests/tools/ca-slowpeer.py (asyncio, no zmesh code); real CSR round trips
# are tests/tools/ca_grpc_client.py (python3-grpcio), as in ca-service.sh.
#
#   node n1 (netns): zmesh-ca 0.0.0.0:15012 (metrics 15014), --max-conns 64, 16 per peer,
#     handshake 2 s, request 3 s, idle 2 s
#     slow peers in n1 itself, from 127.0.0.2 ... 127.0.0.21 (10 sockets per address per mode)
#   pod n1a 198.18.1.11 --veth--> 198.18.1.1:15012   a flood of 100 sockets from one address
#   pod n1b 198.18.1.12 --veth--> 198.18.1.1:15012   the node: real CSRs (node cert CN=n1)
#
# Modes of the slow peers: silent (connect, nothing), hello (a ClientHello trickled a byte
# every 0.5 s), tls-idle (handshake done, then nothing), request (a CreateCertificate whose
# body is trickled a byte every 0.5 s, never ended).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/harness.sh
BUILD=${BUILD:-build}
CA=$BUILD/bin/zmesh-ca
CTL=$BUILD/bin/zmeshctl
PY=/usr/bin/python3
CLI=tests/tools/ca_grpc_client.py
SLOW=tests/tools/ca-slowpeer.py
[ -x "$CA" ] || t_fatal "$CA not built (run make)"
$PY -c 'import grpc, google.protobuf, h2' 2>/dev/null ||
	t_fatal "python3-grpcio, python3-protobuf and python3-h2 are needed (scripts/install-deps.sh)"
h_init
h_topology 1 2

TD=cluster.local
A=spiffe://$TD/ns/default/sa/sa-a
"$CTL" ca init --dir "$H_STATE/ca" --trust-domain $TD >/dev/null || t_fatal "zmeshctl ca init failed"
"$CA" issue-node --dir "$H_STATE/ca" --out "$H_STATE/n1" --node n1 >/dev/null ||
	t_fatal "issue-node failed"
printf 'workloads:\n- {uid: a, name: a, namespace: default, serviceAccount: sa-a, workloadIps: [198.18.1.11], node: n1}\n' \
	>"$H_STATE/cfg.yaml"
NODE=$H_STATE/n1
LOG=$H_STATE/ca.log

# Bad values are refused with the option and the value named.
for bad in "--handshake-timeout-ms 5" "--request-timeout-ms soon" "--idle-timeout-ms -1" \
	"--max-conns-per-peer 0" "--metrics-port 70000"; do
	out=$("$CA" --dir "$H_STATE/ca" --config "$H_STATE/cfg.yaml" $bad 2>&1)
	st=$?
	t_like "$st $out" "^2 zmesh-ca: ${bad%% *}: \"${bad#* }\" is not a whole number" "zmesh-ca $bad: usage error naming it"
done

h_bg n1 "$CA" --dir "$H_STATE/ca" --config "$H_STATE/cfg.yaml" --listen 0.0.0.0:15012 \
	--max-conns 64 --max-conns-per-peer 16 --handshake-timeout-ms 2000 --request-timeout-ms 3000 \
	--idle-timeout-ms 2000 --metrics-port 15014 --workers 2 2>"$LOG"
CA_PID=$H_LAST_PID
h_wait_port n1 15012 && h_wait_port n1 15014 || t_fatal "zmesh-ca did not start: $(cat "$LOG")"

metric() { # metric NAME: a zmesh-ca series' value (0 when absent)
	h_exec n1 curl -s -m 2 http://127.0.0.1:15014/metrics |
		awk -v n="$1" 'index($0, n) == 1 { v = $NF } END { print v + 0 }'
}
csr() { # csr: one CreateCertificate round trip from pod n1b, as node n1
	h_exec n1b $PY $CLI get --id $A --impersonate $A --addr 198.18.1.1:15012 --timeout 10 \
		--roots "$NODE/ca-cert.pem" --cert "$NODE/node-cert.pem" --key "$NODE/node-key.pem" 2>&1
}
SRC=$(seq -s, -f '127.0.0.%g' 2 21)
slow() { # slow MODE COUNT [ARGS...]: slow peers in n1 from $SRC; status in $H_STATE/st-MODE
	local mode=$1 count=$2
	shift 2
	h_bg n1 $PY $SLOW --addr 127.0.0.1:15012 --mode "$mode" --count "$count" --from "$SRC" \
		--interval 0.5 --status "$H_STATE/st-$mode" --roots "$NODE/ca-cert.pem" \
		--cert "$NODE/node-cert.pem" --key "$NODE/node-key.pem" "$@" >/dev/null 2>&1
	SLOW_PIDS="$SLOW_PIDS $H_LAST_PID"
}
stat_of() { # stat_of MODE FIELD
	sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$H_STATE/st-$1" 2>/dev/null
}
slow_stop() {
	local p
	for p in $SLOW_PIDS; do h_stop "$p"; done
	SLOW_PIDS=
}
SLOW_PIDS=

t_like "$(csr)" "^OK 2 .*URI:$A\$" "node n1 gets $A from zmesh-ca (no load)"

# 1. Deadlines, with slots to spare (40 slow sockets, no reconnect): trickled bytes do not
# move them. Before issue 15, a byte every 0.5 s kept a connection open forever.
for m in silent hello tls-idle request; do slow $m 10; done
for _ in $(seq 80); do
	n=0
	for m in silent hello tls-idle request; do n=$((n + $(stat_of $m closed || echo 0))); done
	[ "$n" -ge 40 ] && break
	sleep 0.1
done
for m in silent hello tls-idle request; do
	t_is "$(stat_of $m connects)/$(stat_of $m closed)" "10/10" "$m: all 10 connected and were closed by zmesh-ca"
done
# (A tls-idle or request peer too slow to finish its handshake in 2 s on a loaded machine
# would count as a handshake timeout instead: hence the sum.)
hs=$(metric 'zmesh_ca_connections_dropped_total{reason="handshake_timeout"}')
idle=$(metric 'zmesh_ca_connections_dropped_total{reason="idle_timeout"}')
req=$(metric 'zmesh_ca_connections_dropped_total{reason="request_timeout"}')
t_is "$((hs + idle + req))" 40 "every one of the 40 closed by a deadline ($hs handshake, $idle idle, $req request)"
t_ok "$([ "$hs" -ge 20 ]; echo $?)" "the 20 silent and trickled-ClientHello handshakes closed at the 2 s handshake deadline"
t_ok "$([ "$idle" -ge 1 ]; echo $?)" "idle TLS connections closed at the 2 s idle deadline"
t_ok "$([ "$req" -ge 1 ]; echo $?)" "trickled requests closed at the 3 s request deadline (the whole request, not per read)"
t_like "$(cat "$LOG")" "dropped 127\.0\.0\.[0-9]+:[0-9]+ \(handshake_timeout\): TLS handshake not finished within 2000 ms" \
	"the handshake deadline is logged"
t_like "$(cat "$LOG")" "dropped 127\.0\.0\.[0-9]+:[0-9]+ \(request_timeout\): request not answered within 3000 ms of its start \(caller spiffe://$TD/ns/istio-system/sa/ztunnel" \
	"the request deadline is logged with the caller"
t_like "$(cat "$LOG")" "\(idle_timeout\): no request within 2000 ms" "the idle deadline is logged"
slow_stop
sleep 0.3
t_is "$(metric zmesh_ca_connections_open)" 0 "no connection left open"

# 2. 200 slow sockets that reconnect at once when closed, from 20 addresses (10 per address
# per mode, under the per-peer cap): every one of the 64 slots is always taken by a slow peer,
# and the node still gets its certificates.
t0=$(date +%s)
for m in silent hello tls-idle request; do slow $m 50 --reconnect 0.5; done
# (Evictions of another worker's connections close them in that worker's next loop batch, so
# the count may pass 64 by the evictions in flight.)
full() { [ "$(metric zmesh_ca_connections_open)" -ge 64 ]; }
for _ in $(seq 100); do full && break; sleep 0.1; done
t_run "200 slow sockets hold all 64 slots" -- full
ok=0
for i in 1 2 3 4 5 6; do
	out=$(csr)
	case $out in OK\ 2*) ok=$((ok + 1)) ;; *) t_diag "round trip $i: $out" ;; esac
done
[ "$ok" = 6 ] || grep '198\.18\.1\.12' "$LOG" | tail -5 | sed 's/^/# /'
t_is "$ok" 6 "6 of 6 CSR round trips from the node succeed while 200 slow sockets sit on zmesh-ca"
n=0
for m in silent hello tls-idle request; do n=$((n + $(stat_of $m open || echo 0))); done
t_diag "slow sockets open now: $n; connects so far: $(cat "$H_STATE"/st-* | sed -n 's/.*connects=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')"
ev=$(metric 'zmesh_ca_connections_dropped_total{reason="evicted"}')
t_ok "$([ "$ev" -gt 64 ]; echo $?)" "slow connections were evicted to make room ($ev evictions)"
t_is "$(metric 'zmesh_ca_connections_dropped_total{reason="max_conns"}')" 0 \
	"no connection refused for lack of a slot (some connection was always evictable)"
t_like "$(cat "$LOG")" "\(evicted\): all 64 connection slots taken: this connection \((in its TLS handshake|idle) for [0-9]+ ms; [0-9]+ open from its address\) made room for" \
	"an eviction is logged"
rss=$(awk '/^VmRSS/ { print $2 }' /proc/$CA_PID/status)
fds=$(ls /proc/$CA_PID/fd | wc -l)
t_diag "zmesh-ca under the slowloris: $(metric zmesh_ca_connections_open) connections, RSS ${rss} KiB, ${fds} fds"
slow_stop
secs=$(($(date +%s) - t0 + 1))
lines=$(grep -c '(evicted)' "$LOG")
t_ok "$([ "$lines" -le $((secs + 1)) ]; echo $?)" \
	"eviction lines are rate-limited: $lines lines in ${secs} s for $(metric 'zmesh_ca_connections_dropped_total{reason="evicted"}') evictions"
sleep 0.5
t_like "$(csr)" "^OK 2" "zmesh-ca serves normally once the slow peers are gone"

# 3. The per-peer cap: a flood of 100 sockets from one address (pod n1a) gets 16 of them; the
# node at another address is still served meanwhile.
pl0=$(metric 'zmesh_ca_connections_dropped_total{reason="peer_limit"}')
h_bg n1a $PY $SLOW --addr 198.18.1.1:15012 --mode silent --count 100 --status "$H_STATE/st-flood" >/dev/null 2>&1
FLOOD=$H_LAST_PID
for _ in $(seq 50); do [ "$(stat_of flood closed)" = 84 ] && break; sleep 0.1; done
t_is "$(stat_of flood open)/$(stat_of flood closed)" "16/84" "a flood of 100 from 198.18.1.11: 16 held, 84 refused at once"
t_like "$(csr)" "^OK 2" "the node at 198.18.1.12 is served during the flood"
pl=$(metric 'zmesh_ca_connections_dropped_total{reason="peer_limit"}')
t_is "$((pl - pl0))" 84 "zmesh_ca_connections_dropped_total{reason=\"peer_limit\"} counts the 84"
t_like "$(cat "$LOG")" "dropped 198\.18\.1\.11:[0-9]+ \(peer_limit\): 16 connections from 198\.18\.1\.11 are open already \(--max-conns-per-peer\)" \
	"the per-peer refusal is logged"
h_stop "$FLOOD"

# 4. Bad input: not TLS at all; zmesh-ca closes it and keeps serving.
out=$(h_exec n1b timeout 5 bash -c 'trap "" PIPE; exec 3<>/dev/tcp/198.18.1.1/15012 &&
	printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&3; cat <&3 2>/dev/null | wc -c')
t_is "$out" 0 "HTTP/1 instead of TLS: closed without an answer"
t_like "$(cat "$LOG")" "refused from 198\.18\.1\.12:[0-9]+: TLS handshake failed" "and logged"
t_like "$(csr)" "^OK 2" "zmesh-ca still serves"
t_run "zmesh-ca still running" -- kill -0 "$CA_PID"
t_diag "metrics: $(h_exec n1 curl -s -m 2 http://127.0.0.1:15014/metrics | grep '^zmesh_ca' | tr '\n' ' ')"
t_done
