#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 cleartext bulk peers for the slow-reader tests (tests/integration/
waypoint-slowreader.sh): a server that answers every request with an endless body sent as
fast as HTTP/2 flow control allows, and a client that reads it slowly. python3-h2 only, no
zmesh code.

  h2bulk.py serve PORT
      one thread per connection; every request gets 200 and DATA frames until the stream or
      the connection ends; "sent N" is printed per stream when it ends.
  h2bulk.py read HOST PORT --mode noread|slow [--rate BYTES_PER_S] [--seconds S]
      prior-knowledge h2c, one GET; noread: never reads the socket again (TCP pushes back);
      slow: reads the socket but acknowledges DATA (WINDOW_UPDATE) only at --rate, so HTTP/2
      flow control pushes back. Prints "read=N" (bytes of body received) after S seconds.
"""
import argparse
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

CHUNK = bytes(range(256)) * 64  # 16 KiB


def serve_conn(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sent = {}
    try:
        while True:
            # Send what the windows allow, then wait for the peer (WINDOW_UPDATE, requests).
            for sid in list(sent):
                while True:
                    try:
                        n = min(conn.local_flow_control_window(sid),
                                conn.max_outbound_frame_size, len(CHUNK))
                    except (h2.exceptions.StreamClosedError, KeyError):
                        print("sent %d" % sent.pop(sid), flush=True)
                        break
                    if n <= 0:
                        break
                    conn.send_data(sid, CHUNK[:n])
                    sent[sid] += n
                    sock.sendall(conn.data_to_send())
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    conn.send_headers(ev.stream_id, [(":status", "200"),
                                                     ("content-type", "application/octet-stream")])
                    sent[ev.stream_id] = 0
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id in sent:
                    print("sent %d" % sent.pop(ev.stream_id), flush=True)
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        pass
    for n in sent.values():
        print("sent %d" % n, flush=True)
    sock.close()


def serve(port):
    ls = socket.socket(socket.AF_INET6)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c,), daemon=True).start()


def read(host, port, mode, rate, seconds):
    s = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", "/big"), (":scheme", "http"),
                            (":authority", "%s:%d" % (host, port))], end_stream=True)
    s.sendall(conn.data_to_send())
    got = acked = 0
    start = time.monotonic()
    if mode == "noread":
        time.sleep(seconds)
    else:
        s.settimeout(0.05)
        unacked = 0
        while time.monotonic() - start < seconds:
            try:
                data = s.recv(65536)
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived):
                        got += len(ev.data)
                        unacked += ev.flow_controlled_length
            except socket.timeout:
                pass
            # Acknowledge only what the rate allows by now: the window opens that slowly.
            allowed = int(rate * (time.monotonic() - start)) - acked
            n = min(unacked, max(allowed, 0))
            if n > 0:
                conn.acknowledge_received_data(n, sid)
                acked += n
                unacked -= n
            out = conn.data_to_send()
            if out:
                s.sendall(out)
    print("read=%d" % got, flush=True)
    s.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("port", type=int)
    rp = sub.add_parser("read")
    rp.add_argument("host")
    rp.add_argument("port", type=int)
    rp.add_argument("--mode", choices=["noread", "slow"], required=True)
    rp.add_argument("--rate", type=float, default=65536)
    rp.add_argument("--seconds", type=float, default=8)
    a = p.parse_args()
    if a.cmd == "serve":
        serve(a.port)
    else:
        read(a.host, a.port, a.mode, a.rate, a.seconds)
    sys.exit(0)
