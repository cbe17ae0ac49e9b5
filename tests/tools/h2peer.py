#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# An independent HBONE peer (Debian's python3-h2 + the ssl module) for
# tests/integration/hbone-interop.sh: checks DESIGN.md section 3 from the other side.
#
#   h2peer.py client --port P --ca CA --cert C --key K --expect-id SPIFFE
#       TLS 1.3 + ALPN h2 + mTLS to our HBONE server on 127.0.0.1:P; checks its SETTINGS and
#       identity, CONNECT + 200 + echo + half-close, RST_STREAM(CONNECT_ERROR) mapping, 503,
#       and 400 for GET and for a hostname authority.
#   h2peer.py server --port-file F --ca CA --cert C --key K --expect-id SPIFFE --streams N
#       HBONE server on 127.0.0.1 (port written to F) for our client: checks no SNI, ALPN h2,
#       TLS 1.3, the client identity, and each CONNECT's headers; answers 200 and echoes
#       (authority port 9: 503). Exits after N streams.
#
# Output: one "PASS <what>" or "FAIL <what>: <detail>" line per check (the shell makes TAP).
import argparse
import re
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")
failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print(f"PASS {what}", flush=True)
    else:
        failures += 1
        print(f"FAIL {what}: {detail}", flush=True)
    return cond


def uri_sans(cert):
    return [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]


def tls_ctx(args, server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # identities are URI SANs, checked below
    ctx.set_alpn_protocols(["h2"])
    return ctx


class Peer:
    def __init__(self, sock, client):
        # h2 4.1 insists on :path even for CONNECT (RFC 9113 8.5 forbids it there), so its
        # header validation is off; the checks below look at the headers themselves.
        cfg = h2.config.H2Configuration(client_side=client, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.sock = sock
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.remote_settings = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def events(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("peer closed")
        evs = self.conn.receive_data(data)
        for ev in evs:
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                for k, v in ev.changed_settings.items():
                    self.remote_settings[k] = v.new_value
            if isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()
        return evs

    def request(self, headers, body=None, end=False):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    def run_stream(self, sid):
        """Collect (status, body, ended, reset_code) for one stream until it finishes."""
        status, body, ended, reset = None, b"", False, None
        while not ended and reset is None:
            for ev in self.events():
                if getattr(ev, "stream_id", None) != sid:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
                elif isinstance(ev, h2.events.StreamReset):
                    reset = int(ev.error_code)
        return status, body, ended, reset


def connect_headers(authority):
    return [(":method", "CONNECT"), (":authority", authority),
            ("forwarded", 'for="127.0.0.1:40000"'),
            ("baggage", "k8s.namespace.name=py,k8s.pod.name=peer"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]


def run_client(args):
    ctx = tls_ctx(args, server=False)
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname=None)
    check(tls.version() == "TLSv1.3", "server speaks TLS 1.3", tls.version())
    check(tls.selected_alpn_protocol() == "h2", "server selected ALPN h2",
          tls.selected_alpn_protocol())
    check(tls.cipher()[0] in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"),
          "AES-GCM suite", tls.cipher()[0])
    sans = uri_sans(tls.getpeercert())
    check(sans == [args.expect_id], "server certificate URI SAN is its identity", sans)
    p = Peer(tls, client=True)
    while h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS not in p.remote_settings:
        p.events()
    rs = p.remote_settings
    check(rs.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE) == 4 << 20,
          "server SETTINGS stream window 4 MiB", rs)
    check(rs.get(h2.settings.SettingCodes.MAX_FRAME_SIZE) == 1 << 20,
          "server SETTINGS max frame 1 MiB", rs)
    check(rs.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS) == 100,
          "server SETTINGS 100 streams", rs)

    sid = p.request(connect_headers("127.0.0.1:8080"))
    status = None
    while status is None:
        for ev in p.events():
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                status = int(dict(ev.headers)[":status"])
    check(status == 200, "CONNECT answered 200", status)
    # The server granted its 16 MiB connection window with a WINDOW_UPDATE on stream 0.
    check(p.conn.outbound_flow_control_window >= (16 << 20) - 65535,
          "server connection window 16 MiB", p.conn.outbound_flow_control_window)
    p.conn.send_data(sid, b"hello over hbone", end_stream=True)  # half-close our side
    p.flush()
    _, body, ended, reset = p.run_stream(sid)
    check(body == b"hello over hbone", "echo after our END_STREAM (half-close)", body)
    check(ended and reset is None, "server answers END_STREAM with END_STREAM", (ended, reset))

    big = bytes(range(256)) * 4096 * 5  # 5 MiB: beyond one stream window
    sid = p.request(connect_headers("127.0.0.1:8081"))
    sent = 0
    body = b""
    ended = False
    while not ended:
        window = min(p.conn.local_flow_control_window(sid), p.conn.max_outbound_frame_size)
        if sent < len(big) and window > 0:
            n = min(window, len(big) - sent)
            p.conn.send_data(sid, big[sent:sent + n], end_stream=sent + n == len(big))
            sent += n
            p.flush()
            continue
        for ev in p.events():
            if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                body += ev.data
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                ended = True
    check(body == big, "5 MiB echoed intact through flow control", len(body))

    sid = p.request(connect_headers("127.0.0.1:10"))
    status, _, _, reset = p.run_stream(sid)
    check(status == 200 and reset == 0xA, "upstream reset -> RST_STREAM(CONNECT_ERROR)",
          (status, reset))
    sid = p.request(connect_headers("127.0.0.1:9"))
    status, _, _, _ = p.run_stream(sid)
    check(status == 503, "dial failure -> 503", status)
    sid = p.request([(":method", "GET"), (":scheme", "https"), (":path", "/"),
                     (":authority", "127.0.0.1:8080")], end=True)
    status, _, _, _ = p.run_stream(sid)
    check(status == 400, "GET -> 400", status)
    sid = p.request(connect_headers("example.com:80"))
    status, _, _, _ = p.run_stream(sid)
    check(status == 400, "hostname authority -> 400", status)
    p.conn.close_connection()
    p.flush()
    tls.close()


def run_server(args):
    ctx = tls_ctx(args, server=True)
    sni = []
    ctx.sni_callback = lambda s, name, c: sni.append(name)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(20)
    with open(args.port_file, "w") as f:
        f.write(f"{lsock.getsockname()[1]}\n")
    done = 0
    while done < args.streams:
        raw, _ = lsock.accept()
        raw.settimeout(10)
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print(f"# handshake refused by the client: {e!r}", flush=True)
            sni.clear()
            raw.close()
            continue
        check(sni == [None], "client sends no SNI", sni)
        sni.clear()
        check(tls.version() == "TLSv1.3", "client speaks TLS 1.3", tls.version())
        check(tls.selected_alpn_protocol() == "h2", "client offers ALPN h2",
              tls.selected_alpn_protocol())
        sans = uri_sans(tls.getpeercert())
        check(sans == [args.expect_id], "client certificate URI SAN is its identity", sans)
        p = Peer(tls, client=False)
        try:
            done += serve(p)
        except EOFError:
            pass
        tls.close()


def serve(p):
    streams = 0
    while True:
        for ev in p.events():
            if isinstance(ev, h2.events.RequestReceived):
                streams += 1
                h = dict(ev.headers)
                check(h.get(":method") == "CONNECT", "method CONNECT", h)
                check(":scheme" not in h and ":path" not in h, "no :scheme/:path", h)
                check(re.fullmatch(r"127\.0\.0\.1:\d+", h.get(":authority", "")) is not None,
                      "authority ip:port", h.get(":authority"))
                check(re.fullmatch(r'for="127\.0\.0\.1:\d+"(;host=[\w.-]+)?',
                                   h.get("forwarded", "")) is not None,
                      "forwarded for=\"ip:port\"", h.get("forwarded"))
                check("k8s.namespace.name=" in h.get("baggage", ""), "baggage present",
                      h.get("baggage"))
                check(TRACEPARENT.match(h.get("traceparent", "")) is not None,
                      "traceparent 00-<32>-<16>-00", h.get("traceparent"))
                port = int(h.get(":authority", ":0").rsplit(":", 1)[1])
                if port == 9:
                    p.conn.send_headers(ev.stream_id, [(":status", "503")], end_stream=True)
                else:
                    p.conn.send_headers(ev.stream_id, [(":status", "200")])
            elif isinstance(ev, h2.events.DataReceived):
                try:
                    p.conn.send_data(ev.stream_id, ev.data)
                except h2.exceptions.ProtocolError:  # a GOAWAY later in this batch
                    pass
            elif isinstance(ev, h2.events.StreamEnded):
                try:
                    p.conn.end_stream(ev.stream_id)
                except h2.exceptions.ProtocolError:  # already ended (503) or GOAWAY
                    pass
            elif isinstance(ev, h2.events.ConnectionTerminated):
                p.flush()
                return streams
        p.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["client", "server"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--port-file")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--expect-id", required=True)
    ap.add_argument("--streams", type=int, default=1)
    args = ap.parse_args()
    try:
        run_client(args) if args.mode == "client" else run_server(args)
    except Exception as e:  # any crash is a failed check, never a silent pass
        check(False, f"{args.mode} ran to the end", repr(e))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
