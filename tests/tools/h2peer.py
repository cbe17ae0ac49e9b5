#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# A foreign HBONE peer, built on Debian's python3-h2 and Python's ssl module (an HTTP/2 and
# TLS stack we did not write), for tests/integration/hbone-interop.sh (against lib/hbone's
# hbone-echo) and the ztunnel netns tests (against ztunnel's 15008 and outbound). Every check
# prints one line, "PASS <what>" or "FAIL <what>: <detail>"; the shell turns them into TAP
# (tests/lib/peers.sh). Exit status 1 when a check failed.
#
#   h2peer.py client --host IP [--port 15008] --ca CA --cert C --key K [--expect-id ID]
#        [--contract] [--req 'METHOD|AUTHORITY|STATUS[|DATA[|ECHO_RE]]' ...] [--pad N]
#        [--wait-file F]
#       One TLS 1.3 + h2 connection; --contract checks TLS version, ALPN, suite, the server's
#       URI SAN and SETTINGS; then each --req in turn on that connection: sends the request
#       (CONNECT with forwarded/baggage/traceparent, or any other method), checks the status,
#       and for a 200 sends DATA, half-closes and checks that the echo matches ECHO_RE (the
#       far end answers after our END_STREAM). --pad adds a header of N bytes to every
#       request; --wait-file waits for F to exist before the requests.
#   h2peer.py echo-client --host IP --port P --ca CA --cert C --key K --expect-id ID
#       The checks against hbone-echo's server: --contract, then CONNECT 200 with its 16 MiB
#       connection window, echo after half-close, 5 MiB through flow control, an upstream
#       reset (authority port 10) as RST_STREAM(CONNECT_ERROR), 503 for a dial failure
#       (port 9), 400 for GET and for a hostname authority.
#   h2peer.py handshake --host IP ... [--no-cert]
#       Prints "ACCEPTED" once the server's SETTINGS arrive, or "REFUSED <reason>".
#   h2peer.py stall --host IP [--port 15008] --seconds S
#       TCP connect, send half a ClientHello, then nothing; prints "closed after N s" or
#       "open after S s".
#   h2peer.py garbage --host IP ...     TLS ok, then the h2 preface and garbage frames;
#       prints "closed" when the server drops the connection within 5 s, else "open".
#   h2peer.py flood --host IP ... [--streams N] --authority A [--rst]
#       N (default 300) CONNECTs at once, beyond the server's stream limit; with --rst each is
#       cancelled right after it is opened ("rapid reset"); prints "ok=<200s> refused=<resets>
#       goaway=<0|1> closed=<0|1>".
#   h2peer.py server [--listen IP] [--port P] [--port-file F] --ca CA --cert C --key K
#        --expect-id ID [--authority-re RE] [--forwarded-re RE] [--streams N]
#       HBONE server for an HBONE client: checks no SNI, TLS 1.3, ALPN h2, the suite, the
#       client's URI SAN and every CONNECT's headers; authority port 9 gets 503, others 200
#       and an echo (END_STREAM answered with END_STREAM). --port 0 picks a free port, written
#       to F. Without --streams: a thread per connection, until killed; with it: one connection
#       at a time, exits after N streams (a 20 s wait for a connection is a failure).
import argparse
import os
import re
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")
AES_GCM = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384")
failures = 0
out_lock = threading.Lock()


def check(cond, what, detail=""):
    global failures
    with out_lock:
        if cond:
            print(f"PASS {what}", flush=True)
        else:
            failures += 1
            print(f"FAIL {what}: {detail}", flush=True)
    return cond


def uri_sans(cert):
    return [v for k, v in (cert or {}).get("subjectAltName", ()) if k == "URI"]


def tls_ctx(args, server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # let the peer prove it picks 1.3
    if not getattr(args, "no_cert", False):
        ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # identities are URI SANs, checked by the callers
    ctx.set_alpn_protocols(["h2"])
    return ctx


def h2conn(client):
    # h2 4.1 wants :path on CONNECT (RFC 9113 8.5 forbids it): header validation off.
    cfg = h2.config.H2Configuration(client_side=client, header_encoding="utf-8",
                                    validate_outbound_headers=False,
                                    validate_inbound_headers=False)
    return h2.connection.H2Connection(config=cfg)


def tcp_connect(args):
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.connect((args.host, args.port))
    return raw


def tls_connect(args):
    return tls_ctx(args, server=False).wrap_socket(tcp_connect(args), server_hostname=None)


def request_headers(method, authority, pad):
    h = [(":method", method), (":authority", authority)]
    if method != "CONNECT":
        h += [(":scheme", "https"), (":path", "/")]
    h += [("forwarded", 'for="192.0.2.1:40000"'),
          ("baggage", "k8s.namespace.name=py,k8s.pod.name=peer"),
          ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    if pad:
        h.append(("x-pad", "p" * pad))
    return h


class Client:
    def __init__(self, tls):
        self.sock = tls
        self.conn = h2conn(True)
        self.conn.initiate_connection()
        self.flush()
        self.settings = {}
        self.streams = {}  # stream id -> state: status, body, ended, reset

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def events(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        evs = self.conn.receive_data(data)
        for ev in evs:
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                for k, v in ev.changed_settings.items():
                    self.settings[k] = v.new_value
            elif isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()
        return evs

    def wait_settings(self):
        while h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS not in self.settings:
            self.events()

    def open(self, method, authority, pad=0):
        """Send one request's headers (END_STREAM unless CONNECT); its stream id."""
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "body": b"", "ended": False, "reset": None}
        self.conn.send_headers(sid, request_headers(method, authority, pad),
                               end_stream=method != "CONNECT")
        self.flush()
        return sid

    def step(self):
        """Read once; record what arrived for the streams we opened."""
        for ev in self.events():
            st = self.streams.get(getattr(ev, "stream_id", None))
            if st is None:
                continue
            if isinstance(ev, h2.events.ResponseReceived):
                st["status"] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                st["body"] += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                st["reset"] = int(ev.error_code)

    def until(self, sid, stop):
        """Read until stop(state of stream sid) is true; that state."""
        while not stop(self.streams[sid]):
            self.step()
        return self.streams[sid]

    def answered(self, sid):
        return self.until(sid, lambda s: s["status"] is not None or s["reset"] is not None)

    def finished(self, sid):
        return self.until(sid, lambda s: s["ended"] or s["reset"] is not None)

    def close(self):
        self.conn.close_connection()
        self.flush()
        self.sock.close()


def contract(args, tls, cl):
    check(tls.version() == "TLSv1.3", "server speaks TLS 1.3", tls.version())
    check(tls.selected_alpn_protocol() == "h2", "server selected ALPN h2",
          tls.selected_alpn_protocol())
    check(tls.cipher()[0] in AES_GCM, "AES-GCM suite", tls.cipher()[0])
    if args.expect_id:
        sans = uri_sans(tls.getpeercert())
        check(sans == [args.expect_id], "server certificate's only URI SAN is " +
              args.expect_id, sans)
    cl.wait_settings()
    s = cl.settings
    check(s.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE) == 4 << 20,
          "server SETTINGS stream window 4 MiB", s)
    check(s.get(h2.settings.SettingCodes.MAX_FRAME_SIZE) == 1 << 20,
          "server SETTINGS max frame 1 MiB", s)
    check(s.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS) == 100,
          "server SETTINGS 100 streams", s)
    check(s.get(h2.settings.SettingCodes.ENABLE_PUSH, 0) == 0, "server SETTINGS push off", s)


def one_request(cl, spec, pad):
    parts = spec.split("|")
    method, authority, want = parts[0], parts[1], int(parts[2])
    data = parts[3].encode() if len(parts) > 3 else b""
    echo_re = parts[4] if len(parts) > 4 else None
    what = f"{method} {authority}"
    sid = cl.open(method, authority, pad)
    st = cl.answered(sid)
    if not check(st["status"] == want, f"{what}: status {want}", st):
        return
    if want != 200:
        st = cl.finished(sid)
        check(st["ended"] or st["reset"] is not None, f"{what}: stream ends after {want}", st)
        return
    cl.conn.send_data(sid, data, end_stream=True)  # half-close our side
    cl.flush()
    st = cl.finished(sid)
    body = st["body"].decode(errors="replace")
    if echo_re:
        check(re.search(echo_re, body, re.S) is not None,
              f"{what}: answer after our END_STREAM matches /{echo_re}/", body)
    check(st["ended"] and st["reset"] is None,
          f"{what}: the server ends the stream with END_STREAM", st)


def run_client(args):
    tls = tls_connect(args)
    cl = Client(tls)
    if args.contract:
        contract(args, tls, cl)
    else:
        cl.wait_settings()
    if args.wait_file:
        for _ in range(200):
            if os.path.exists(args.wait_file):
                break
            time.sleep(0.05)
    for spec in args.req or []:
        one_request(cl, spec, args.pad)
    cl.close()


def send_bulk(cl, sid, data):
    """Send data (END_STREAM with its last byte) as the windows allow; the stream's state
    once the far end has ended or reset it."""
    st = cl.streams[sid]
    sent = 0
    while not st["ended"] and st["reset"] is None:
        window = min(cl.conn.local_flow_control_window(sid), cl.conn.max_outbound_frame_size)
        if sent < len(data) and window > 0:
            n = min(window, len(data) - sent)
            cl.conn.send_data(sid, data[sent:sent + n], end_stream=sent + n == len(data))
            sent += n
            cl.flush()
        else:
            cl.step()
    return st


def run_echo_client(args):
    tls = tls_connect(args)
    cl = Client(tls)
    contract(args, tls, cl)
    sid = cl.open("CONNECT", "127.0.0.1:8080")
    check(cl.answered(sid)["status"] == 200, "CONNECT answered 200", cl.streams[sid])
    # The server granted its 16 MiB connection window with a WINDOW_UPDATE on stream 0.
    check(cl.conn.outbound_flow_control_window >= (16 << 20) - 65535,
          "server connection window 16 MiB", cl.conn.outbound_flow_control_window)
    cl.conn.send_data(sid, b"hello over hbone", end_stream=True)  # half-close our side
    cl.flush()
    st = cl.finished(sid)
    check(st["body"] == b"hello over hbone", "echo after our END_STREAM (half-close)",
          st["body"])
    check(st["ended"] and st["reset"] is None, "server answers END_STREAM with END_STREAM", st)

    big = bytes(range(256)) * 4096 * 5  # 5 MiB: beyond one stream window
    st = send_bulk(cl, cl.open("CONNECT", "127.0.0.1:8081"), big)
    check(st["body"] == big, "5 MiB echoed intact through flow control", len(st["body"]))

    st = cl.finished(cl.open("CONNECT", "127.0.0.1:10"))
    check(st["status"] == 200 and st["reset"] == 0xA,
          "upstream reset -> RST_STREAM(CONNECT_ERROR)", st)
    st = cl.finished(cl.open("CONNECT", "127.0.0.1:9"))
    check(st["status"] == 503, "dial failure -> 503", st)
    st = cl.finished(cl.open("GET", "127.0.0.1:8080"))
    check(st["status"] == 400, "GET -> 400", st)
    st = cl.finished(cl.open("CONNECT", "example.com:80"))
    check(st["status"] == 400, "hostname authority -> 400", st)
    cl.close()


def run_handshake(args):
    try:
        tls = tls_connect(args)
        cl = Client(tls)
        cl.wait_settings()  # TLS 1.3: a refused client certificate shows up here
        print("ACCEPTED", flush=True)
        tls.close()
    except (ssl.SSLError, OSError, EOFError) as e:
        print(f"REFUSED {e!r}", flush=True)


def run_stall(args):
    s = tcp_connect(args)
    s.sendall(bytes.fromhex("160301020001"))  # a ClientHello record header and one byte
    start = time.monotonic()
    s.settimeout(args.seconds)
    try:
        data = s.recv(4096)
        while data:
            data = s.recv(4096)
        print(f"closed after {time.monotonic() - start:.0f} s", flush=True)
    except ConnectionResetError:
        print(f"closed after {time.monotonic() - start:.0f} s", flush=True)
    except socket.timeout:
        print(f"open after {args.seconds} s", flush=True)


def run_garbage(args):
    tls = tls_connect(args)
    try:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(range(256)) * 16)
        tls.settimeout(5)
        while tls.recv(65536):
            pass
        print("closed", flush=True)
    except socket.timeout:
        print("open", flush=True)
    except OSError:  # reset, TLS alert or EOF: the server dropped us
        print("closed", flush=True)


def run_flood(args):
    tls = tls_connect(args)
    cl = Client(tls)
    # Sent before the server's SETTINGS arrive, so h2 does not hold us to its stream limit.
    ok = refused = goaway = closed = 0
    try:
        for i in range(args.streams or 300):
            sid = cl.conn.get_next_available_stream_id()
            cl.conn.send_headers(sid, request_headers("CONNECT", args.authority, 0))
            if args.rst:
                cl.conn.reset_stream(sid, 8)
            if i % 50 == 49:
                cl.flush()
        cl.flush()
    except OSError:  # the server already dropped us (ssl.SSLError is an OSError)
        print(f"ok={ok} refused={refused} goaway={goaway} closed=1", flush=True)
        return
    tls.settimeout(5)
    try:
        while True:
            for ev in cl.events():
                if isinstance(ev, h2.events.ResponseReceived):
                    ok += dict(ev.headers)[":status"] == "200"
                elif isinstance(ev, h2.events.StreamReset):
                    refused += 1
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = 1
    except (socket.timeout, h2.exceptions.ProtocolError):
        pass
    except (EOFError, OSError):  # after socket.timeout, which is an OSError too
        closed = 1
    print(f"ok={ok} refused={refused} goaway={goaway} closed={closed}", flush=True)


def serve_conn(args, raw):
    """Serve one connection until the client closes it or sends GOAWAY; the number of
    requests it made (0 when the handshake failed)."""
    ctx = tls_ctx(args, server=True)  # per connection: the SNI callback records into sni
    sni = []
    ctx.sni_callback = lambda s, name, c: sni.append(name)
    raw.settimeout(30)
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        print(f"# handshake failed: {e!r}", flush=True)
        raw.close()
        return 0
    check(sni == [None], "client sends no SNI", sni)
    check(tls.version() == "TLSv1.3", "client speaks TLS 1.3", tls.version())
    check(tls.selected_alpn_protocol() == "h2", "client offers ALPN h2",
          tls.selected_alpn_protocol())
    check(tls.cipher()[0] in AES_GCM, "client negotiates an AES-GCM suite", tls.cipher()[0])
    sans = uri_sans(tls.getpeercert())
    check(sans == [args.expect_id], "client certificate's only URI SAN is " + args.expect_id,
          sans)
    conn = h2conn(False)
    conn.initiate_connection()
    requests = 0
    try:
        tls.sendall(conn.data_to_send())
        while True:
            data = tls.recv(65536)
            if not data:
                break
            events = conn.receive_data(data)
            for ev in events:
                requests += serve_event(args, conn, ev)
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
            if any(isinstance(ev, h2.events.ConnectionTerminated) for ev in events):
                break
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        pass
    finally:
        tls.close()
    return requests


def serve_event(args, conn, ev):
    """Answer one event; 1 for a new request, else 0."""
    if isinstance(ev, h2.events.RequestReceived):
        h = dict(ev.headers)
        check(h.get(":method") == "CONNECT", "method CONNECT", h)
        check(":scheme" not in h and ":path" not in h, "no :scheme or :path", h)
        check(re.fullmatch(args.authority_re, h.get(":authority", "")) is not None,
              f"authority matches /{args.authority_re}/", h.get(":authority"))
        check(re.fullmatch(args.forwarded_re, h.get("forwarded", "")) is not None,
              f"forwarded matches /{args.forwarded_re}/", h.get("forwarded"))
        bag = h.get("baggage", "")
        check("k8s.namespace.name=" in bag and ".name=" in bag.replace(
            "k8s.namespace.name=", ""), "baggage names namespace and workload", bag)
        check(TRACEPARENT.match(h.get("traceparent", "")) is not None,
              "traceparent 00-<32 hex>-<16 hex>-00", h.get("traceparent"))
        port = int(h.get(":authority", ":0").rsplit(":", 1)[1])
        status = "503" if port == 9 else "200"
        conn.send_headers(ev.stream_id, [(":status", status)], end_stream=status != "200")
        return 1
    try:
        if isinstance(ev, h2.events.DataReceived):
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            conn.send_data(ev.stream_id, ev.data)
        elif isinstance(ev, h2.events.StreamEnded):
            conn.end_stream(ev.stream_id)
    except h2.exceptions.ProtocolError:  # already ended (503), reset, or after a GOAWAY
        pass
    return 0


def run_server(args):
    fam = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((args.listen, args.port))
    ls.listen(16)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{ls.getsockname()[1]}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    print("# listening", flush=True)
    if args.streams is None:
        while True:
            raw, _ = ls.accept()
            threading.Thread(target=serve_conn, args=(args, raw), daemon=True).start()
    ls.settimeout(20)
    served = 0
    while served < args.streams:
        raw, _ = ls.accept()
        served += serve_conn(args, raw)


def main():
    modes = {"client": run_client, "echo-client": run_echo_client,
             "handshake": run_handshake, "stall": run_stall, "garbage": run_garbage,
             "flood": run_flood, "server": run_server}
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=list(modes))
    ap.add_argument("--host")
    ap.add_argument("--listen", default="::")
    ap.add_argument("--port", type=int, default=15008)
    ap.add_argument("--port-file")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--no-cert", action="store_true")
    ap.add_argument("--expect-id")
    ap.add_argument("--contract", action="store_true")
    ap.add_argument("--req", action="append")
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--wait-file")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--streams", type=int)
    ap.add_argument("--authority", default="")
    ap.add_argument("--rst", action="store_true")
    ap.add_argument("--authority-re", default=r".*")
    ap.add_argument("--forwarded-re", default=r".*")
    args = ap.parse_args()
    try:
        modes[args.mode](args)
    except Exception as e:  # a crash is a failed check, never a silent pass
        check(False, f"{args.mode} ran to the end", repr(e))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
