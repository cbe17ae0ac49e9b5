#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Writes the seed corpus of fuzz_hbone_session (tests/data/hbone_session/) with Debian's
# python3-h2, an independent HTTP/2 implementation: each seed is the two control bytes the
# target reads (role/mode, chunk size) and then what a peer would send. Server-role seeds
# leave out the client preface (the target adds it). Run from the repo root:
#   /usr/bin/python3 tests/fuzz/hbone_session_seeds.py
import os

import h2.config
import h2.connection
import h2.errors
import h2.settings

OUT = "tests/data/hbone_session"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def client(validate=False):
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                    validate_outbound_headers=validate,
                                    normalize_outbound_headers=validate)
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    return c


def connect(c, sid, authority="10.0.0.1:80", end=False, extra=()):
    hdrs = [(":method", "CONNECT"), (":authority", authority)] + list(extra)
    c.send_headers(sid, hdrs, end_stream=end)


def server_bytes(build):
    c = client()
    build(c)
    out = c.data_to_send()
    assert out.startswith(PREFACE)
    return out[len(PREFACE):]


def seeds_server():
    yield "connect-echo", lambda c: (connect(c, 1, extra=[
        ("forwarded", 'for="10.0.0.9:40000"'), ("baggage", "k8s.namespace.name=ns"),
        ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-00")]),
        c.send_data(1, b"hello tunnel"), c.end_stream(1))
    yield "connect-v6", lambda c: (connect(c, 1, "[2001:2::1]:443"), c.send_data(1, b"x" * 3000))
    yield "connect-reset", lambda c: (connect(c, 1), c.send_data(1, b"abc"),
                                      c.reset_stream(1, h2.errors.ErrorCodes.CONNECT_ERROR))
    yield "many-streams", lambda c: [connect(c, i, end=(i % 3 == 0)) for i in range(1, 40, 2)]
    yield "ping-window-goaway", lambda c: (c.ping(b"12345678"), connect(c, 1),
                                           c.increment_flow_control_window(65535),
                                           c.increment_flow_control_window(100, 1),
                                           c.close_connection())
    yield "settings", lambda c: (c.update_settings({
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1,
        h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384}), connect(c, 1),
        c.send_data(1, b"y" * 100))


def seeds_server_invalid():
    def get(c):
        c.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":path", "/"),
                           (":authority", "10.0.0.1:80")], end_stream=True)
    yield "get", get
    yield "hostname", lambda c: connect(c, 1, "example.com:80")
    yield "no-port", lambda c: connect(c, 1, "10.0.0.1")


def seeds_client():
    """Server side answers to the client's CONNECT on stream 1."""
    def answer(status, body=b"", end=False, reset=None):
        cli = client()
        connect(cli, 1)
        srv = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_inbound_headers=False))
        srv.initiate_connection()
        srv.receive_data(cli.data_to_send())
        srv.send_headers(1, [(":status", str(status))], end_stream=end and not body)
        if body:
            srv.send_data(1, body, end_stream=end)
        if reset is not None:
            srv.reset_stream(1, reset)
        return srv.data_to_send()
    yield "resp-200-echo", answer(200, b"pong" * 10, end=True)
    yield "resp-503", answer(503, end=True)
    yield "resp-200-reset", answer(200, b"z", reset=h2.errors.ErrorCodes.CONNECT_ERROR)


def main():
    os.makedirs(OUT, exist_ok=True)
    for mode in (0, 1):
        for name, build in seeds_server():
            with open(f"{OUT}/srv-{name}-m{mode}", "wb") as f:
                f.write(bytes([mode << 1, 0 if mode == 0 else 4]) + server_bytes(build))
    for name, build in seeds_server_invalid():
        with open(f"{OUT}/srv-{name}", "wb") as f:
            f.write(bytes([0, 0]) + server_bytes(lambda c: build(c)))
    for name, data in seeds_client():
        with open(f"{OUT}/cli-{name}", "wb") as f:
            f.write(bytes([1, 0]) + data)


if __name__ == "__main__":
    main()
