#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# HBONE interop against an independent implementation: Debian's python3-h2 + Python's ssl
# (tests/tools/h2peer.py, always /usr/bin/python3) talks to lib/hbone + lib/tls
# (tests/tools/hbone-echo) in both directions, over real TLS 1.3 with mTLS certificates
# from a dev CA. Loopback only; every process started here is killed by PID.
#
#   (a) h2peer.py echo-client --TLS/h2-->  hbone-echo server  127.0.0.1:<free port>
#   (b) hbone-echo client     --TLS/h2-->  h2peer.py server   127.0.0.1:<free port>
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/peers.sh
BUILD=${BUILD:-build}
ECHO=$BUILD/tests/tools/hbone-echo
SRV_ID=spiffe://cluster.local/ns/server-ns/sa/echo
CLI_ID=spiffe://cluster.local/ns/client-ns/sa/sleep
tmp=$(mktemp -d /tmp/zmh-hbone-interop.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$ECHO" ] || t_fatal "$ECHO missing (run make)"
p_need

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

t_run "dev CA" -- "$ECHO" ca-init --ca-dir "$tmp/ca"
t_run "python client cert" -- "$ECHO" cert --ca-dir "$tmp/ca" --id "$CLI_ID" \
	--cert "$tmp/cli.pem" --key "$tmp/cli.key"
t_run "python server cert" -- "$ECHO" cert --ca-dir "$tmp/ca" --id "$SRV_ID" \
	--cert "$tmp/srv.pem" --key "$tmp/srv.key"

# (a) python client -> our server
port=$(free_port)
"$ECHO" server --ca-dir "$tmp/ca" --id "$SRV_ID" --port "$port" >"$tmp/srv.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/srv.log" 2>/dev/null && break; sleep 0.1; done
t_like "$(cat "$tmp/srv.log")" "listening 127.0.0.1:$port" "hbone-echo server listening"
timeout 60 $PY "$PEER" echo-client --host 127.0.0.1 --port "$port" --ca "$tmp/ca/ca-cert.pem" \
	--cert "$tmp/cli.pem" --key "$tmp/cli.key" --expect-id "$SRV_ID" >"$tmp/a.out" 2>&1
t_ok $? "python h2 client run against lib/hbone server"
p_tap "py-client" <"$tmp/a.out"
t_like "$(cat "$tmp/srv.log")" "request authority=127.0.0.1:8080 forwarded=for=\"192.0.2.1:40000\" .*peer=$CLI_ID" \
	"our server saw the python client's CONNECT headers and identity"

# (b) our client -> python server
"$PY" "$PEER" server --listen 127.0.0.1 --port 0 --port-file "$tmp/port" \
	--ca "$tmp/ca/ca-cert.pem" --cert "$tmp/srv.pem" --key "$tmp/srv.key" --expect-id "$CLI_ID" \
	--authority-re '127\.0\.0\.1:[0-9]+' --forwarded-re 'for="127\.0\.0\.1:[0-9]+"(;host=[\w.-]+)?' \
	--streams 2 >"$tmp/b.out" 2>&1 &
ppid=$!
pids+=($ppid)
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
pport=$(cat "$tmp/port" 2>/dev/null)
[ -n "$pport" ] || t_fatal "python server did not start: $(cat "$tmp/b.out")"
out=$(timeout 20 "$ECHO" client --ca-dir "$tmp/ca" --id "$CLI_ID" --expect "$SRV_ID" \
	--port "$pport" --authority 127.0.0.1:8080 --send "bytes from lib/hbone" 2>&1)
t_ok $? "lib/hbone client: CONNECT 200, echo, END_STREAM both ways"
t_like "$out" "status=200" "  status 200"
t_like "$out" "echo=bytes from lib/hbone" "  echo intact"
t_like "$out" "server=$SRV_ID" "  client verified the python server's identity"
out=$(timeout 20 "$ECHO" client --ca-dir "$tmp/ca" --id spiffe://cluster.local/ns/x/sa/y \
	--expect spiffe://cluster.local/ns/other/sa/z --port "$pport" --authority 127.0.0.1:8080 2>&1)
t_ok $((!$?)) "lib/hbone client refuses a server with an unexpected identity"
t_like "$out" "connection closed: -[0-9]+ TLS handshake failed" "  as a TLS handshake failure"
out=$(timeout 20 "$ECHO" client --ca-dir "$tmp/ca" --id "$CLI_ID" --expect "$SRV_ID" \
	--port "$pport" --authority 127.0.0.1:9 --status 503 2>&1)
t_ok $? "lib/hbone client sees the python server's 503"
wait "$ppid"
t_ok $? "python h2 server checks all passed"
p_tap "py-server" <"$tmp/b.out"
t_done
