#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Slow and idle peers for zmesh-ca (tests/integration/ca-slowloris.sh): many sockets that
hold connections open without ever completing a request, the way a slowloris attacker or a
broken client would. Nothing here shares code with zmesh (asyncio, ssl, python3-h2).

  ca-slowpeer.py --addr HOST:PORT --mode MODE --count N [--from ADDR,...] [--interval S]
                 [--reconnect S] [--duration S] [--status FILE]
                 [--roots R --cert C --key K]          (modes that finish the TLS handshake)

MODE, per socket:
  silent    connect and send nothing
  hello     trickle a real TLS ClientHello one byte every --interval: never finishes
  tls-idle  finish the mutual-TLS handshake (ALPN h2), then send nothing
  request   TLS, the HTTP/2 preface and a CreateCertificate request's HEADERS, then trickle
            its body one byte every --interval, never ending it

Sockets bind their source addresses round-robin from --from. A socket the server closes is
counted and, with --reconnect S, opened again S seconds later. Every half second (and at the
end) --status gets one line: "open=N connects=N closed=N failed=N" (failed: connect or
handshake errors). Runs --duration seconds, or until SIGTERM (which exits at once, the
kernel closing the sockets), or without --reconnect until every socket is closed.
"""
import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys

PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate"


class Stats:
    def __init__(self):
        self.open = self.connects = self.closed = self.failed = 0

    def line(self):
        return "open=%d connects=%d closed=%d failed=%d" % (self.open, self.connects,
                                                            self.closed, self.failed)


def client_hello():
    """The bytes of a real TLS 1.3 ClientHello (ALPN h2), from a memory BIO."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_context(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(a.roots)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def request_head():
    """HTTP/2 preface, SETTINGS and the HEADERS of a CreateCertificate call (no END_STREAM)."""
    import h2.config
    import h2.connection
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":path", PATH),
                       (":authority", "istiod.istio-system.svc"),
                       ("content-type", "application/grpc"), ("te", "trailers")])
    return c.data_to_send()


async def hold(a, st, src, hello, ctx, head):
    """One socket's life: connect, misbehave per mode until the server closes it."""
    host, port = a.addr.rsplit(":", 1)
    host = host.strip("[]")
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(
            host, int(port), ssl=ctx, server_hostname="" if ctx else None,
            local_addr=(src, 0) if src else None), timeout=30)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        st.failed += 1
        return
    st.connects += 1
    st.open += 1
    try:
        if a.mode in ("silent", "tls-idle"):
            while await r.read(4096):
                pass
        elif a.mode == "hello":
            for i in range(len(hello)):
                w.write(hello[i:i + 1])
                await w.drain()
                try:
                    if not await asyncio.wait_for(r.read(4096), timeout=a.interval):
                        break
                except asyncio.TimeoutError:
                    pass
            while await r.read(4096):
                pass
        else:
            w.write(head)
            await w.drain()
            while True:
                try:
                    if not await asyncio.wait_for(r.read(4096), timeout=a.interval):
                        break
                except asyncio.TimeoutError:
                    pass
                # a DATA frame of one byte, never END_STREAM: the body never completes
                w.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00")
                await w.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        st.open -= 1
        st.closed += 1
        w.close()


async def peer(a, st, src, hello, ctx, head):
    while True:
        await hold(a, st, src, hello, ctx, head)
        if a.reconnect is None:
            return
        await asyncio.sleep(a.reconnect)


def write_status(a, st):
    if a.status:
        with open(a.status + ".tmp", "w") as f:
            f.write(st.line() + "\n")
        os.replace(a.status + ".tmp", a.status)


async def main(a):
    st = Stats()
    loop = asyncio.get_running_loop()
    def quit_now():
        write_status(a, st)
        os._exit(0)
    loop.add_signal_handler(signal.SIGTERM, quit_now)
    loop.add_signal_handler(signal.SIGINT, quit_now)
    srcs = a.src.split(",") if a.src else [None]
    hello = client_hello()
    ctx = tls_context(a) if a.mode in ("tls-idle", "request") else None
    head = request_head() if a.mode == "request" else b""
    tasks = [asyncio.ensure_future(peer(a, st, srcs[i % len(srcs)], hello, ctx, head))
             for i in range(a.count)]
    t = 0.0
    while (a.duration is None or t < a.duration) and not all(k.done() for k in tasks):
        write_status(a, st)
        await asyncio.sleep(0.5)
        t += 0.5
    write_status(a, st)
    for k in tasks:
        k.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(st.line())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", required=True)
    p.add_argument("--mode", required=True, choices=["silent", "hello", "tls-idle", "request"])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--from", dest="src")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--reconnect", type=float)
    p.add_argument("--duration", type=float)
    p.add_argument("--status")
    p.add_argument("--roots")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    if a.mode in ("tls-idle", "request") and not (a.roots and a.cert and a.key):
        p.error("--mode %s needs --roots, --cert and --key" % a.mode)
    asyncio.run(main(a))
