#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A test control plane: istiod's delta ADS for ztunnels, from a scenario file.

serve: a gRPC server over TLS (python3-grpcio) for
  /envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources
  with the message classes made at start from the repository's own .proto files
  (userspace/lib/xds/proto, compiled by protoc-c into a descriptor set, loaded with
  python3-protobuf), serving istio.workload.Address and istio.security.Authorization
  resources described by a YAML scenario. Every request received is logged as one JSON line
  (stream, type_url, nonce, error_detail, initial_resource_versions, node id, headers).
ctl SOCK CMD: push FILE (send the difference to every stream, as istiod does on a change),
  drop (end every stream with UNAVAILABLE), oversize BYTES (send a response that large),
  garbage (send bytes that are no DeltaDiscoveryResponse).

Scenario YAML:
  workloads: [{uid, name, namespace, serviceAccount, addresses: [ip], node, protocol: HBONE|TCP,
               services: {"ns/host": {80: 8080}}, authorizationPolicies: [ns/name],
               waypoint: {service: ns/host | address: ip}, rawAddress: HEX, tunnelProtocol: N}]
  services:  [{name, namespace, hostname, vips: [ip], ports: {80: 8080}, waypoint: ...}]
  policies:  [{name, namespace, scope: GLOBAL|NAMESPACE|WORKLOAD_SELECTOR, action: ALLOW|DENY,
               dryRun, rules: [[{namespaces, notNamespaces, principals, notPrincipals,
               sourceIps, destinationPorts, ...}]]}]   strings: "x", "prefix*", "*suffix", "*"
"""
import argparse
import hashlib
import ipaddress
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time

PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
ADDR = "type.googleapis.com/istio.workload.Address"
AUTHZ = "type.googleapis.com/istio.security.Authorization"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "userspace/lib/xds/proto")


def load_messages():
    """Message classes from our own .proto files (no generated code kept anywhere)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    protos = []
    for d, _, files in os.walk(PROTO_DIR):
        protos += [os.path.relpath(os.path.join(d, f), PROTO_DIR) for f in files
                   if f.endswith(".proto")]
    with tempfile.NamedTemporaryFile(suffix=".desc") as out:
        subprocess.run(["protoc-c", "--proto_path=" + PROTO_DIR, "--include_imports",
                        "--descriptor_set_out=" + out.name] + sorted(protos), check=True)
        fds = descriptor_pb2.FileDescriptorSet.FromString(open(out.name, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    fac = message_factory.MessageFactory(pool)
    get = lambda n: fac.GetPrototype(pool.FindMessageTypeByName(n))
    return {n.split(".")[-1]: get(n) for n in [
        "envoy.service.discovery.v3.DeltaDiscoveryRequest",
        "envoy.service.discovery.v3.DeltaDiscoveryResponse",
        "istio.workload.Address", "istio.security.Authorization"]}


M = None


def ip_bytes(s):
    return ipaddress.ip_address(s).packed


def gateway(g, msg):
    if "service" in g:
        ns, host = g["service"].split("/", 1)
        msg.hostname.namespace = ns
        msg.hostname.hostname = host
    else:
        msg.address.address = ip_bytes(g["address"])
    msg.hbone_mtls_port = g.get("port", 15008)


def str_matches(field, vals):
    for v in vals:
        m = field.add()
        if v == "*":
            m.presence.SetInParent()
        elif v.endswith("*"):
            m.prefix = v[:-1]
        elif v.startswith("*"):
            m.suffix = v[1:]
        else:
            m.exact = v


def build_resources(sc):
    """name -> (type_url, serialized bytes)"""
    out = {}
    for w in sc.get("workloads") or []:
        a = M["Address"]()
        x = a.workload
        x.uid = w["uid"]
        x.name = w.get("name", "")
        x.namespace = w.get("namespace", "")
        x.service_account = w.get("serviceAccount", "")
        x.node = w.get("node", "")
        x.tunnel_protocol = w.get("tunnelProtocol", 1 if w.get("protocol") == "HBONE" else 0)
        for ip in w.get("addresses", []):
            x.addresses.append(ip_bytes(ip))
        if "rawAddress" in w:
            x.addresses.append(bytes.fromhex(w["rawAddress"]))
        for key, ports in (w.get("services") or {}).items():
            pl = x.services[key]
            for sp, tp in ports.items():
                p = pl.ports.add()
                p.service_port, p.target_port = int(sp), int(tp)
        x.authorization_policies.extend(w.get("authorizationPolicies", []))
        if "waypoint" in w:
            gateway(w["waypoint"], x.waypoint)
        out[w.get("resourceName", w["uid"])] = (ADDR, a.SerializeToString())
    for s in sc.get("services") or []:
        a = M["Address"]()
        x = a.service
        x.name, x.namespace, x.hostname = s["name"], s["namespace"], s["hostname"]
        for ip in s.get("vips", []):
            v = x.addresses.add()
            v.address = ip_bytes(ip)
        for sp, tp in (s.get("ports") or {}).items():
            p = x.ports.add()
            p.service_port, p.target_port = int(sp), int(tp)
        if "waypoint" in s:
            gateway(s["waypoint"], x.waypoint)
        out["%s/%s" % (s["namespace"], s["hostname"])] = (ADDR, a.SerializeToString())
    for p in sc.get("policies") or []:
        a = M["Authorization"]()
        a.name, a.namespace = p["name"], p["namespace"]
        a.scope = {"GLOBAL": 0, "NAMESPACE": 1, "WORKLOAD_SELECTOR": 2}[p.get("scope", "NAMESPACE")]
        a.action = {"ALLOW": 0, "DENY": 1}.get(p.get("action", "ALLOW"), p.get("action"))
        a.dry_run = bool(p.get("dryRun", False))
        for rule in p.get("rules", []):
            r = a.rules.add()
            for clause in rule:
                c = r.clauses.add()
                m = c.matches.add()
                for k in ("namespaces", "notNamespaces", "principals", "notPrincipals"):
                    snake = {"notNamespaces": "not_namespaces",
                             "notPrincipals": "not_principals"}.get(k, k)
                    str_matches(getattr(m, snake), clause.get(k, []))
                for k, snake in (("sourceIps", "source_ips"),
                                 ("destinationIps", "destination_ips")):
                    for cidr in clause.get(k, []):
                        n = ipaddress.ip_network(cidr, strict=False)
                        e = getattr(m, snake).add()
                        e.address, e.length = n.network_address.packed, n.prefixlen
                m.destination_ports.extend(clause.get("destinationPorts", []))
                m.not_destination_ports.extend(clause.get("notDestinationPorts", []))
        out["%s/%s" % (p["namespace"], p["name"])] = (AUTHZ, a.SerializeToString())
    return out


def version(b):
    return hashlib.sha256(b).hexdigest()[:12]


class ControlPlane:
    def __init__(self, scenario, log):
        self.lock = threading.Lock()
        self.res = build_resources(scenario)
        self.streams = {}
        self.next_stream = 0
        self.nonce = 0
        self.log = open(log, "a", buffering=1)

    def record(self, **kw):
        self.log.write(json.dumps(kw, sort_keys=True) + "\n")

    def response(self, type_url, upd, removed):
        rs = M["DeltaDiscoveryResponse"]()
        rs.type_url = type_url
        with self.lock:
            self.nonce += 1
            rs.nonce = "n%d" % self.nonce
        rs.system_version_info = "sys-%d" % self.nonce
        for name, b in sorted(upd.items()):
            r = rs.resources.add()
            r.name, r.version = name, version(b)
            r.resource.type_url = type_url
            r.resource.value = b
        rs.removed_resources.extend(sorted(removed))
        return rs

    def initial(self, q, rq):
        """First request of a type on a stream: what the client lacks, and removals of what
        it holds that no longer exists."""
        t = rq.type_url
        held = dict(rq.initial_resource_versions)
        with self.lock:
            mine = {n: b for n, (tu, b) in self.res.items() if tu == t}
        upd = {n: b for n, b in mine.items() if held.get(n) != version(b)}
        gone = [n for n in held if n not in mine]
        q.put(self.response(t, upd, gone).SerializeToString())

    def push(self, scenario):
        new = build_resources(scenario)
        with self.lock:
            old, self.res = self.res, new
            qs = list(self.streams.values())
        for t in (ADDR, AUTHZ):
            upd = {n: b for n, (tu, b) in new.items() if tu == t and old.get(n, (0, 0))[1] != b}
            gone = [n for n, (tu, _) in old.items() if tu == t and n not in new]
            if upd or gone:
                for q in qs:
                    q.put(self.response(t, upd, gone).SerializeToString())

    def broadcast(self, item):
        with self.lock:
            qs = list(self.streams.values())
        for q in qs:
            q.put(item)

    def serve_stream(self, it, ctx):
        q = queue.Queue()
        with self.lock:
            sid = self.next_stream
            self.next_stream += 1
            self.streams[sid] = q
        md = dict(ctx.invocation_metadata())
        seen = set()

        def reader():
            try:
                for rq in it:
                    self.record(stream=sid, type_url=rq.type_url, nonce=rq.response_nonce,
                                error=rq.error_detail.message if rq.HasField("error_detail")
                                else None,
                                initial=dict(rq.initial_resource_versions),
                                node=rq.node.id if rq.HasField("node") else None,
                                authorization=md.get("authorization"),
                                clusterid=md.get("clusterid"))
                    if rq.type_url not in seen:
                        seen.add(rq.type_url)
                        self.initial(q, rq)
            except Exception:  # the stream ended
                pass
            q.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if item == "drop":
                    ctx.abort(__import__("grpc").StatusCode.UNAVAILABLE, "dropped by the test")
                yield item
        finally:
            with self.lock:
                self.streams.pop(sid, None)


def control_loop(cp, path, yaml):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    while True:
        c, _ = s.accept()
        with c:
            cmd = c.makefile().readline().split()
            try:
                if cmd[0] == "push":
                    cp.push(yaml.safe_load(open(cmd[1])))
                elif cmd[0] == "drop":
                    cp.broadcast("drop")
                elif cmd[0] == "oversize":
                    rs = cp.response(ADDR, {"huge": b"\x0a" + b"\x00" * int(cmd[1])}, [])
                    cp.broadcast(rs.SerializeToString())
                elif cmd[0] == "garbage":
                    cp.broadcast(b"\x0a\xff\xff\xff\xff\x0f\x00\x00")
                c.sendall(b"ok\n")
            except Exception as e:  # report, keep serving
                c.sendall(("error %s\n" % e).encode())


def cmd_serve(a):
    global M
    import grpc
    import yaml
    from concurrent import futures

    M = load_messages()
    cp = ControlPlane(yaml.safe_load(open(a.scenario)) or {}, a.log)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_send_message_length", 512 << 20),
                                  # the test's ztunnels PING every second of silence
                                  ("grpc.http2.min_ping_interval_without_data_ms", 100),
                                  ("grpc.http2.max_ping_strikes", 0)])
    handler = grpc.stream_stream_rpc_method_handler(
        cp.serve_stream, request_deserializer=M["DeltaDiscoveryRequest"].FromString,
        response_serializer=lambda b: b)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        {"DeltaAggregatedResources": handler}),))
    creds = grpc.ssl_server_credentials([(open(a.key, "rb").read(), open(a.cert, "rb").read())])
    server.add_secure_port(a.listen, creds)
    server.start()
    threading.Thread(target=control_loop, args=(cp, a.control, yaml), daemon=True).start()
    print("xds_cp: serving on %s" % a.listen, flush=True)
    server.wait_for_termination()


def cmd_ctl(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.sock)
    s.sendall((" ".join(a.args) + "\n").encode())
    ans = s.makefile().readline().strip()
    print(ans)
    return 0 if ans == "ok" else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--scenario", required=True)
    s.add_argument("--control", required=True)
    s.add_argument("--log", required=True)
    c = sub.add_parser("ctl")
    c.add_argument("sock")
    c.add_argument("args", nargs="+")
    a = p.parse_args()
    return cmd_serve(a) if a.cmd == "serve" else cmd_ctl(a)


if __name__ == "__main__":
    sys.exit(main())
