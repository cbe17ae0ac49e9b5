#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""WebSocket echo server and client for the netns tests (Debian's python3-websockets).

usage: ws-echo.py serve PORT POD_NAME
       ws-echo.py call URL MESSAGE [COUNT] [SIZE]

The server answers each text message with "POD_NAME: MESSAGE" and each binary one with its
bytes reversed. The client connects, sends MESSAGE COUNT times (default 1) and prints each
answer on a line, then sends one binary message of SIZE bytes (when given) and prints
"binary SIZE ok" when the reversed bytes came back intact.
"""
import asyncio
import sys

import websockets


async def serve(port, pod):
    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg[::-1] if isinstance(msg, bytes) else "%s: %s" % (pod, msg))
    async with websockets.serve(echo, None, port, max_size=None):  # every family
        print("ws-echo %s listening on %d" % (pod, port), flush=True)
        await asyncio.Future()


async def call(url, msg, count, size):
    async with websockets.connect(url, max_size=None, open_timeout=5) as ws:
        for _ in range(count):
            await ws.send(msg)
            print(await asyncio.wait_for(ws.recv(), 5), flush=True)
        if size:
            data = bytes(i % 251 for i in range(size))
            await ws.send(data)
            back = await asyncio.wait_for(ws.recv(), 10)
            print("binary %d %s" % (size, "ok" if back == data[::-1] else "CORRUPT"), flush=True)


if sys.argv[1] == "serve":
    asyncio.run(serve(int(sys.argv[2]), sys.argv[3]))
else:
    asyncio.run(call(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1,
                     int(sys.argv[5]) if len(sys.argv) > 5 else 0))
