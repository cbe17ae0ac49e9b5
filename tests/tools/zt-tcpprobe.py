#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# TCP edge cases for the ztunnel netns tests: half-close and reset, seen from both ends.
#
#   zt-tcpprobe.py serve --port P --mode drain|reset|watch|first
#       drain: read until EOF, then answer "got <n> bytes" and close (the answer only arrives
#              if the half-close travelled and the other direction stayed open);
#       reset: read the first bytes, then close with RST (SO_LINGER 0);
#       watch: read until EOF or error, print "client eof <n>" or "client reset <n>";
#       first: send "server first\n" and shutdown(SHUT_WR) at once, then watch.
#       Dual-stack, a thread per connection, runs until killed.
#   zt-tcpprobe.py halfclose HOST PORT --bytes N
#       send N bytes, shutdown(SHUT_WR), print everything read until EOF.
#   zt-tcpprobe.py expect-reset HOST PORT
#       send a line, then read: prints "reset" (ECONNRESET), "eof" (clean end) or "data".
#   zt-tcpprobe.py listen-first HOST PORT --bytes N
#       read until EOF (the server half-closed), then send N bytes, half-close, print what
#       was read.
#   zt-tcpprobe.py reset HOST PORT
#       send a line, wait 0.5 s, close with RST; prints "sent".
import socket
import struct
import sys
import threading
import time


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def handle(conn, mode):
    conn.settimeout(30)
    n = 0
    try:
        if mode == "reset":
            conn.recv(65536)
            time.sleep(0.2)
            rst_close(conn)
            return
        if mode == "first":
            conn.sendall(b"server first\n")
            conn.shutdown(socket.SHUT_WR)
        while True:
            data = conn.recv(65536)
            if not data:
                break
            n += len(data)
        if mode == "drain":
            conn.sendall(f"got {n} bytes\n".encode())
        else:
            print(f"client eof {n}", flush=True)
    except ConnectionResetError:
        if mode == "watch":
            print(f"client reset {n}", flush=True)
    except OSError as e:
        print(f"error {e!r}", flush=True)
    conn.close()


def serve(port, mode):
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", port))
    ls.listen(64)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=handle, args=(conn, mode), daemon=True).start()


def connect(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect((host, port))
    return s


def main():
    a = sys.argv[1:]
    if a and a[0] == "serve":
        serve(int(a[a.index("--port") + 1]), a[a.index("--mode") + 1])
    elif len(a) >= 3 and a[0] == "halfclose":
        n = int(a[a.index("--bytes") + 1]) if "--bytes" in a else 1000
        s = connect(a[1], int(a[2]))
        s.sendall(b"x" * n)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        print(out.decode(errors="replace").strip())
    elif len(a) >= 3 and a[0] == "listen-first":
        n = int(a[a.index("--bytes") + 1]) if "--bytes" in a else 1000
        s = connect(a[1], int(a[2]))
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.sendall(b"y" * n)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        s.close()
        print(out.decode(errors="replace").strip())
    elif len(a) >= 3 and a[0] == "expect-reset":
        s = connect(a[1], int(a[2]))
        s.sendall(b"hello\n")
        try:
            d = s.recv(65536)
            print("data" if d else "eof")
        except ConnectionResetError:
            print("reset")
    elif len(a) >= 3 and a[0] == "reset":
        s = connect(a[1], int(a[2]))
        s.sendall(b"hello\n")
        time.sleep(0.5)
        rst_close(s)
        print("sent")
    else:
        print(__doc__ or "usage: see the comment at the top", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
