#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in Kubernetes API server for the tests (python3 stdlib only).

It serves what ztunnel's and the waypoint's Kubernetes sources use (the core kinds,
EndpointSlices, and the Istio and Gateway API CRDs: security.istio.io, networking.istio.io,
gateway.networking.k8s.io), the way the API documents it
(api-concepts: "Efficient detection of changes"): HTTPS with a bearer token; GET of a
collection as a List with metadata.resourceVersion, in pages (limit / continue); GET with
watch=1 from a resourceVersion as a chunked stream of {"type", "object"} lines (ADDED,
MODIFIED, DELETED, BOOKMARK with allowWatchBookmarks, ERROR with a 410 Status when the
history asked for is compacted), ended after timeoutSeconds; GET, POST, PUT and DELETE of
objects; fieldSelector=spec.nodeName=X on pods. It also plays the EndpointSlice controller:
every Service with a selector gets a slice "<service>-zmt" of the matching pods (ready, serving,
terminating conditions, named target ports resolved from the pods' container ports).

State persists in --state (objects and the resourceVersion counter); a restarted server
(--restart-gap N) moves the counter on by N with no history, as etcd compaction leaves it,
so a client watching from before the restart gets 410 and must list again.

Test controls, POST /zmt/<what> with a JSON body: compact {} (drop the history), garbage
{"resource"} (the next line of that resource's watches is not JSON), stall {"resource"}
(its watches go silent, bookmarks too, until unstall), forbid {"resource"} (403 on it), token {"token"}
(only that token is accepted from now; open watches are closed). GET /zmt/state: counts.

Usage: kube-apiserver.py --listen IP:PORT --cert PEM --key PEM --token-file F --state F
                         [--restart-gap N] [--forbid RESOURCE]...
"""
import argparse
import base64
import copy
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RES = {  # resource -> (api prefix, kind, namespaced)
    "pods": ("/api/v1", "Pod", True),
    "namespaces": ("/api/v1", "Namespace", False),
    "services": ("/api/v1", "Service", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "EndpointSlice", True),
    "authorizationpolicies": ("/apis/security.istio.io/v1", "AuthorizationPolicy", True),
    "peerauthentications": ("/apis/security.istio.io/v1", "PeerAuthentication", True),
    "virtualservices": ("/apis/networking.istio.io/v1", "VirtualService", True),
    "destinationrules": ("/apis/networking.istio.io/v1", "DestinationRule", True),
    "httproutes": ("/apis/gateway.networking.k8s.io/v1", "HTTPRoute", True),
    "grpcroutes": ("/apis/gateway.networking.k8s.io/v1", "GRPCRoute", True),
    "gateways": ("/apis/gateway.networking.k8s.io/v1", "Gateway", True),
}
HISTORY_MAX = 20000
API_VERSION = {prefix: prefix.split("/", 2)[-1] if prefix.startswith("/apis/") else "v1"
               for prefix, _, _ in RES.values()}


class Store:
    def __init__(self, path, gap):
        self.path = path
        self.lock = threading.Condition()
        self.objs = {r: {} for r in RES}  # resource -> {(ns, name): obj}
        self.rv = 1
        if path and os.path.exists(path):
            d = json.load(open(path))
            self.rv = d["rv"] + gap
            for r in RES:
                for o in d["objs"].get(r, []):
                    self.objs[r][(o["metadata"].get("namespace", ""), o["metadata"]["name"])] = o
        self.min_rv = self.rv  # history starts here: older watches get 410
        self.history = []  # (rv, resource, type, obj)
        self.faults = {"stall": set(), "forbid": set()}
        self.garbage = {r: 0 for r in RES}  # bumped by a control: each open watch sends one
        self.token_epoch = 0
        self.no_save = False

    def save(self):
        if not self.path or self.no_save:
            return
        tmp = self.path + ".tmp"
        json.dump({"rv": self.rv, "objs": {r: list(v.values()) for r, v in self.objs.items()}},
                  open(tmp, "w"))
        os.rename(tmp, self.path)

    def _event(self, res, typ, obj):
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, res, typ, obj))
        if len(self.history) > HISTORY_MAX:  # compaction, as etcd's: older watches get 410
            del self.history[:HISTORY_MAX // 2]
            self.min_rv = self.history[0][0] - 1
        return obj

    def put(self, res, obj):
        m = obj.setdefault("metadata", {})
        key = (m.get("namespace", "") if RES[res][2] else "", m["name"])
        old = self.objs[res].get(key)
        m.setdefault("uid", "uid-%s-%s-%s" % (res, key[0], key[1]))
        m.setdefault("creationTimestamp",
                     (old or {}).get("metadata", {}).get("creationTimestamp") or
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        obj = self._event(res, "MODIFIED" if old else "ADDED", obj)
        self.objs[res][key] = obj
        return obj

    def delete(self, res, key):
        old = self.objs[res].pop(key, None)
        if old is not None:
            self._event(res, "DELETED", old)
        return old

    def controller(self):
        """EndpointSlices of every Service with a selector, from the pods."""
        want = {}
        for (ns, name), svc in self.objs["services"].items():
            sel = svc.get("spec", {}).get("selector")
            if not sel:
                continue
            eps, ports = [], []
            for p in svc["spec"].get("ports", []):
                ports.append({"name": p.get("name", ""), "port": None,
                              "protocol": p.get("protocol", "TCP"), "_t": p.get("targetPort", p["port"])})
            for (pns, pname), pod in sorted(self.objs["pods"].items()):
                labels = pod["metadata"].get("labels", {})
                st = pod.get("status", {})
                if pns != ns or any(labels.get(k) != v for k, v in sel.items()) or not st.get("podIPs"):
                    continue
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in st.get("conditions", []))
                term = "deletionTimestamp" in pod["metadata"]
                eps.append({"addresses": [st["podIPs"][0]["ip"]],
                            "conditions": {"ready": ready and not term, "serving": ready,
                                           "terminating": term},
                            "nodeName": pod.get("spec", {}).get("nodeName"),
                            "targetRef": {"kind": "Pod", "namespace": pns, "name": pname}})
                for sp in ports:
                    t = sp["_t"]
                    if isinstance(t, str):
                        for c in pod.get("spec", {}).get("containers", []):
                            for cp in c.get("ports", []):
                                if cp.get("name") == t:
                                    t = cp["containerPort"]
                    if isinstance(t, int):
                        sp["port"] = t
            slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": name + "-zmt", "namespace": ns,
                                   "labels": {"kubernetes.io/service-name": name}},
                      "addressType": "IPv4", "endpoints": eps,
                      "ports": [{k: v for k, v in p.items() if k != "_t"} for p in ports]}
            want[(ns, name + "-zmt")] = slice_
        have = self.objs["endpointslices"]
        for key in [k for k in have if k[1].endswith("-zmt") and k not in want]:
            self.delete("endpointslices", key)
        for key, s in want.items():
            old = have.get(key)
            strip = lambda o: {k: v for k, v in o.items() if k != "metadata"}
            if not old or strip(old) != strip(s):
                self.put("endpointslices", s)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("apiserver: " + fmt % args + "\n")

    # -- plumbing
    def _send(self, code, body, ctype="application/json"):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code, reason, msg):
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "message": msg, "reason": reason, "code": code})

    def _auth(self):
        want = open(self.server.token_file).read().strip()
        if self.headers.get("Authorization") != "Bearer " + want:
            self._status(401, "Unauthorized", "Unauthorized")
            return False
        return True

    def _route(self):
        """(resource, namespace, name, query) of the request path, or None."""
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        for res, (prefix, _, namespaced) in RES.items():
            if not u.path.startswith(prefix + "/"):
                continue
            rest = u.path[len(prefix) + 1:].split("/")
            if res == "namespaces" and rest[0] == "namespaces":
                if len(rest) == 1:
                    return res, None, None, q
                if len(rest) == 2:
                    return res, "", rest[1], q
            if rest == [res]:
                return res, None, None, q
            if namespaced and len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == res:
                return res, rest[1], rest[3] if len(rest) > 3 else None, q
        return None

    def _body(self):
        n = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(n) or b"{}")

    # -- verbs
    def do_GET(self):
        if self.path == "/zmt/state":
            st = self.server.store
            with st.lock:
                return self._send(200, {"rv": st.rv, "min_rv": st.min_rv,
                                        "counts": {r: len(v) for r, v in st.objs.items()}})
        if not self._auth():
            return
        r = self._route()
        if not r:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        res, ns, name, q = r
        st = self.server.store
        if res in st.faults["forbid"]:
            return self._status(403, "Forbidden", '%s is forbidden: User "system:serviceaccount:'
                                'zmesh-system:zmesh-node" cannot list resource "%s"' % (res, res))
        if name is not None:
            with st.lock:
                o = st.objs[res].get((ns, name))
            if o is None:
                return self._status(404, "NotFound", '%s "%s" not found' % (res, name))
            return self._send(200, self._typed(res, o))
        if q.get("watch") in ("1", "true"):
            return self._watch(res, ns, q)
        return self._list(res, ns, q)

    def _typed(self, res, o):
        prefix, kind, _ = RES[res]
        o = copy.deepcopy(o)
        o["apiVersion"] = API_VERSION[prefix]
        o["kind"] = kind
        return o

    def _match(self, res, ns, q, o):
        if ns is not None and o["metadata"].get("namespace", "") != ns:
            return False
        fs = q.get("fieldSelector")
        if fs:
            k, _, v = fs.partition("=")
            if k == "spec.nodeName" and o.get("spec", {}).get("nodeName") != v:
                return False
        return True

    def _list(self, res, ns, q):
        st = self.server.store
        limit = int(q.get("limit", 0) or 0)
        start, rv = 0, None
        if q.get("continue"):
            rv, start = json.loads(base64.b64decode(q["continue"]))
            if rv < st.min_rv:
                return self._status(410, "Expired", "The provided continue parameter is too old")
        with st.lock:
            items = [o for k, o in sorted(st.objs[res].items()) if self._match(res, ns, q, o)]
            rv = rv or st.rv
        page = items[start:start + limit] if limit else items[start:]
        meta = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.b64encode(json.dumps([rv, start + limit]).encode()).decode()
        prefix, kind, _ = RES[res]
        self._send(200, {"kind": kind + "List", "apiVersion": API_VERSION[prefix],
                         "metadata": meta, "items": page})

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, res, ns, q):
        st = self.server.store
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            return self._status(400, "BadRequest", "bad resourceVersion")
        deadline = time.time() + int(q.get("timeoutSeconds", 300))
        bookmarks = q.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        epoch = st.token_epoch
        garbage_seen = st.garbage[res]
        try:
            if since and since < st.min_rv:
                self._chunk(json.dumps({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                    "reason": "Expired",
                    "message": "too old resource version: %d (%d)" % (since, st.min_rv)}}).encode() + b"\n")
                return self._chunk(b"")
            since = since or st.rv
            last_sent = time.time()
            while time.time() < deadline and epoch == st.token_epoch:
                with st.lock:
                    evs = [e for e in st.history if e[0] > since and e[1] == res]
                    if not evs:
                        st.lock.wait(0.2)
                        evs = [e for e in st.history if e[0] > since and e[1] == res]
                    head = st.rv  # every event of res up to head is in evs
                    stalled = res in st.faults["stall"]
                    garbage = st.garbage[res] != garbage_seen
                    garbage_seen = st.garbage[res]
                if stalled:
                    time.sleep(0.2)
                    continue
                if garbage:
                    self._chunk(b"}} this is not a watch event {{\n")
                for rv, _, typ, o in evs:
                    since = rv
                    if self._match(res, ns, q, o):
                        self._chunk(json.dumps({"type": typ, "object": self._typed(res, o)}).encode() + b"\n")
                        last_sent = time.time()
                if bookmarks and time.time() - last_sent >= self.server.bookmark_s:
                    # Only as far as what was looked at: a later event must not be skipped.
                    since = max(since, head)
                    prefix, kind, _ = RES[res]
                    self._chunk(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": API_VERSION[prefix],
                        "metadata": {"resourceVersion": str(since)}}}).encode() + b"\n")
                    last_sent = time.time()
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _write(self, method):
        st = self.server.store
        if self.path.startswith("/zmt/"):
            return self._control(self.path[5:], self._body())
        if not self._auth():
            return
        r = self._route()
        if not r:
            return self._status(404, "NotFound", "no such resource")
        res, ns, name, _ = r
        with st.lock:
            if method == "DELETE":
                o = st.delete(res, (ns or "", name))
                if o is None:
                    return self._status(404, "NotFound", '%s "%s" not found' % (res, name))
            else:
                o = self._body()
                if ns is not None and RES[res][2]:
                    o.setdefault("metadata", {})["namespace"] = ns
                o = st.put(res, o)
            st.controller()
            st.save()
            st.lock.notify_all()
        self._send(200, self._typed(res, o))

    def do_POST(self):
        self._write("POST")

    def do_PUT(self):
        self._write("PUT")

    def do_DELETE(self):
        self._write("DELETE")

    def _control(self, what, body):
        st = self.server.store
        with st.lock:
            if what == "compact":
                st.history = []
                st.min_rv = st.rv
            elif what == "garbage":
                st.garbage[body["resource"]] += 1
            elif what in ("stall", "forbid"):
                st.faults[what].add(body["resource"])
            elif what == "unstall":
                st.faults["stall"].discard(body["resource"])
            elif what == "allow":
                st.faults["forbid"].discard(body["resource"])
            elif what == "token":
                with open(self.server.token_file, "w") as f:
                    f.write(body["token"])
                st.token_epoch += 1
            else:
                return self._status(404, "NotFound", "no control " + what)
            st.lock.notify_all()
        self._send(200, {"ok": True})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--state")
    ap.add_argument("--restart-gap", type=int, default=0)
    ap.add_argument("--bookmark-s", type=float, default=1.0)
    ap.add_argument("--no-save", action="store_true", help="load --state, never write it (bench)")
    ap.add_argument("--forbid", action="append", default=[], metavar="RESOURCE",
                    help="answer 403 for RESOURCE from the start (as the forbid control)")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.store = Store(a.state, a.restart_gap)
    srv.store.no_save = a.no_save
    srv.store.faults["forbid"].update(a.forbid)
    srv.token_file = a.token_file
    srv.bookmark_s = a.bookmark_s
    srv.verbose = a.v
    print("apiserver: listening on %s (resourceVersion %d)" % (a.listen, srv.store.rv), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
