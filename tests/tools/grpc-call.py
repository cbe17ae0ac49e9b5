#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A gRPC client for the netns tests (Debian's python3-grpcio, no generated code).

usage: grpc-call.py HOST:PORT METHOD [-n CALLS] [--md K=V]... [--size BYTES] [--stream] [--time]

Calls /echo.Echo/METHOD CALLS times on one channel (one HTTP/2 connection) with a request of
BYTES bytes and prints one line per call: "OK <answer>" (for --stream, the answers joined by
"|"), or "<STATUS_CODE> <details>" when the call failed. Long answers are cut to 200 bytes,
with their length. --time adds a line "ms=N" after each: how long the call itself took
(the channel is connected first, so start-up time is not counted).
"""
import argparse
import sys
import time

import grpc

ap = argparse.ArgumentParser()
ap.add_argument("target")
ap.add_argument("method")
ap.add_argument("-n", type=int, default=1)
ap.add_argument("--md", action="append", default=[])
ap.add_argument("--size", type=int, default=0)
ap.add_argument("--stream", action="store_true")
ap.add_argument("--timeout", type=float, default=5)
ap.add_argument("--time", action="store_true")
a = ap.parse_args()

md = [tuple(x.split("=", 1)) for x in a.md]
opts = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20),
        ("grpc.enable_retries", 0)]
with grpc.insecure_channel(a.target, options=opts) as ch:
    path = "/echo.Echo/" + a.method
    call = ch.unary_stream(path) if a.stream else ch.unary_unary(path)
    try:
        grpc.channel_ready_future(ch).result(timeout=a.timeout)
    except grpc.FutureTimeoutError:
        print("UNAVAILABLE channel not ready")
        sys.exit(0)
    for _ in range(a.n):
        t0 = time.monotonic()
        try:
            res = call(b"x" * a.size, metadata=md, timeout=a.timeout)
            out = b"|".join(res) if a.stream else res
            text = out[:200].decode(errors="replace")
            if len(out) > 200:
                text += " (%d bytes)" % len(out)
            print("OK " + text)
        except grpc.RpcError as e:
            print("%s %s" % (e.code().name, e.details()))
        if a.time:
            print("ms=%d" % ((time.monotonic() - t0) * 1000))
        sys.stdout.flush()
