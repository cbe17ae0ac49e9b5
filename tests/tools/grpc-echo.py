#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A gRPC echo server for the netns tests (Debian's python3-grpcio, no generated code).

usage: grpc-echo.py PORT POD_NAME

Service echo.Echo, messages are raw bytes:
  Say, Shout, Secret  unary: answers "pod=POD method=M bytes=N md=k:v,..." (N request bytes,
                      md the request's x-* metadata), padded to the size asked for by
                      metadata x-reply-size; each call is logged on stdout as
                      "call METHOD X-CASE"
  Fail                unary: fails with NOT_FOUND "no such thing"
  Sleep               unary: answers like Say after x-sleep-ms milliseconds
  Stream              server streaming: x-count messages (default 3), "pod=POD i=I"
"""
import sys
import time
from concurrent import futures

import grpc

PORT, POD = int(sys.argv[1]), sys.argv[2]


def _md(ctx):
    return dict((k, v) for k, v in ctx.invocation_metadata())


def _log(method, ctx):
    print("call %s %s" % (method, _md(ctx).get("x-case", "-")), flush=True)


def _answer(method, log=True):
    def fn(req, ctx):
        md = _md(ctx)
        if log:
            _log(method, ctx)
        xs = ",".join("%s:%s" % (k, v) for k, v in sorted(md.items()) if k.startswith("x-"))
        out = ("pod=%s method=%s bytes=%d md=%s" % (POD, method, len(req), xs)).encode()
        size = int(md.get("x-reply-size", "0"))
        return out + b"." * max(0, size - len(out))
    return fn


def sleep(req, ctx):
    _log("Sleep", ctx)
    time.sleep(int(_md(ctx).get("x-sleep-ms", "0")) / 1000.0)
    return _answer("Sleep", log=False)(req, ctx)


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def stream(req, ctx):
    for i in range(int(_md(ctx).get("x-count", "3"))):
        yield ("pod=%s i=%d" % (POD, i)).encode()


handlers = {m: grpc.unary_unary_rpc_method_handler(_answer(m)) for m in ("Say", "Shout", "Secret")}
handlers["Fail"] = grpc.unary_unary_rpc_method_handler(fail)
handlers["Sleep"] = grpc.unary_unary_rpc_method_handler(sleep)
handlers["Stream"] = grpc.unary_stream_rpc_method_handler(stream)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                     options=[("grpc.max_receive_message_length", 16 << 20),
                              ("grpc.max_send_message_length", 16 << 20)])
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
server.add_insecure_port("[::]:%d" % PORT)
server.start()
print("grpc-echo %s listening on %d" % (POD, PORT), flush=True)
server.wait_for_termination()
