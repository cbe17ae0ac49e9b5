#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# HTTP/2 cleartext with prior knowledge (how gRPC clients talk) through the waypoint, against
# a bare python3-h2 server that serves one connection at a time: the waypoint recognizes the
# HTTP/2 connection preface and proxies each request stream (curl's, then three multiplexed
# on one connection), ending its upstream session when the client's connection ends. gRPC
# itself is tested in waypoint-grpc.sh.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/k8s.sh
S=$K8S_SAMPLES
k8s_need_samples sleep/sleep.yaml
/usr/bin/python3 -c 'import h2' 2>/dev/null || t_fatal "python3-h2 missing (apt-get install python3-h2)"
curl --version | grep -q HTTP2 || t_fatal "curl without HTTP/2"

k8s_init 3 2
k8s_apply "$S/sleep/sleep.yaml" tests/data/l7/h2c-echo.yaml
k8s_waypoint
k8s_start
SRV=$(k8s_pod grpc-echo)
cat >"$K8S_DIR/h2srv.py" <<'PY'
import socket, sys
import h2.config, h2.connection, h2.events
ls = socket.socket(socket.AF_INET6)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("::", int(sys.argv[1])))
ls.listen(16)
while True:
    c, _ = ls.accept()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    c.sendall(conn.data_to_send())
    heads = {}
    while True:
        data = c.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                heads[ev.stream_id] = dict((k.decode() if isinstance(k, bytes) else k,
                                            v.decode() if isinstance(v, bytes) else v)
                                           for k, v in ev.headers)
            if isinstance(ev, h2.events.StreamEnded):
                h = heads.pop(ev.stream_id, {})
                body = ("h2c-echo path=%s authority=%s\n" % (h.get(":path"), h.get(":authority"))).encode()
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-length", str(len(body)))])
                conn.send_data(ev.stream_id, body, end_stream=True)
        c.sendall(conn.data_to_send())
    c.close()
PY
h_bg "$SRV" /usr/bin/python3 "$K8S_DIR/h2srv.py" 50051 2>"$K8S_DIR/h2srv.log"
h_wait_port "$SRV" 50051 || t_fatal "h2c server did not start: $(cat "$K8S_DIR/h2srv.log")"
URL=http://$(k8s_vip grpc-echo):50051

out=$(k8s_curl sleep --http2-prior-knowledge "$URL/echo.Echo/Say")
t_like "$out" "^h2c-echo path=/echo.Echo/Say" "h2c prior knowledge through the waypoint reaches the h2c server"
# Several streams on one connection (python3-h2 client: curl 7.88 does not reuse h2c).
cat >"$K8S_DIR/h2cli.py" <<'PY'
import socket, sys
import h2.config, h2.connection, h2.events
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=5)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
ids = []
for p in sys.argv[3:]:
    sid = conn.get_next_available_stream_id()
    ids.append(sid)
    conn.send_headers(sid, [(":method", "POST"), (":path", p), (":scheme", "http"),
                            (":authority", "%s:%d" % (host, port)),
                            ("content-type", "application/grpc")], end_stream=True)
s.sendall(conn.data_to_send())
bodies, done = {}, set()
while len(done) < len(ids):
    data = s.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.DataReceived):
            bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        if isinstance(ev, h2.events.StreamEnded):
            done.add(ev.stream_id)
    s.sendall(conn.data_to_send())
for sid in ids:
    sys.stdout.write(bodies.get(sid, b"(none)\n").decode())
PY
out=$(h_exec "$(k8s_pod sleep)" timeout 10 /usr/bin/python3 "$K8S_DIR/h2cli.py" "$(k8s_vip grpc-echo)" 50051 /pkg.Svc/A /pkg.Svc/B /pkg.Svc/C)
t_is "$(grep -c '^h2c-echo' <<<"$out")" 3 "three h2 streams (gRPC-style POSTs) on one connection all answered"
t_like "$(sed -n 3p <<<"$out")" "path=/pkg.Svc/C" "each stream answered with its own path"
t_like "$(cat "$K8S_DIR/wp.log")" "scope=access msg=http src.principal=cluster.local/ns/default/sa/sleep src.workload=sleep-0 method=POST path=/pkg.Svc/C authority=198\.18\.250\.[0-9]+:50051 .*upstream=.*\(grpc-echo-0\) status=200 .* protocol=HTTP/2" "each HTTP/2 request logged on its own"
t_like "$(k8s_metrics)" 'zmesh_waypoint_streams_total\{protocol="http2"\} 2' "two HTTP/2 client connections counted"
t_like "$(k8s_metrics)" 'request_protocol="grpc",response_code="200",response_flags="-"\} 3' "the three application/grpc POSTs counted as grpc requests"

# Bad input: a request with more headers than the waypoint takes (WP_H2_MAX_HEADERS, 100) is
# refused with RST_STREAM and logged; another stream on the same connection is still served.
cat >"$K8S_DIR/h2big.py" <<'PY'
import socket, sys
import h2.config, h2.connection, h2.events
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=5)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
base = [(":method", "GET"), (":scheme", "http"), (":authority", "%s:%d" % (host, port))]
conn.send_headers(1, base + [(":path", "/big")] + [("x-h%d" % i, "v") for i in range(150)],
                  end_stream=True)
conn.send_headers(3, base + [(":path", "/small")], end_stream=True)
s.sendall(conn.data_to_send())
seen = {}
while len(seen) < 2:
    data = s.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.StreamReset):
            seen[ev.stream_id] = "reset"
        elif isinstance(ev, h2.events.ResponseReceived):
            seen[ev.stream_id] = "status=" + dict(ev.headers)[b":status"].decode()
    s.sendall(conn.data_to_send())
print("big %s small %s" % (seen.get(1, "none"), seen.get(3, "none")))
PY
out=$(h_exec "$(k8s_pod sleep)" timeout 10 /usr/bin/python3 "$K8S_DIR/h2big.py" "$(k8s_vip grpc-echo)" 50051 2>&1)
t_is "$out" "big reset small status=200" "150 request headers: that stream reset, the other on the connection answered"
t_like "$(cat "$K8S_DIR/wp.log")" "h2 request from cluster.local/ns/default/sa/sleep: more than 100 headers or 65536 bytes, stream refused" "the refusal is logged"
t_done
