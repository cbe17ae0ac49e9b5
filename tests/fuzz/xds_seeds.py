#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Writes the seed corpus of fuzz_xds (tests/data/xds/) with python3-protobuf, from message
# classes made from our own .proto files (as tests/tools/xds_cp.py does): DeltaDiscoveryResponses
# of workloads, services and policies, removals, and bad resources, several per seed joined
# by "\n--\n" (the target's separator). Run from the repo root:
#   /usr/bin/python3 tests/fuzz/xds_seeds.py
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import xds_cp  # noqa: E402

OUT = "tests/data/xds"
SC = {
    "workloads": [
        {"uid": "Kubernetes//Pod/ns/a", "name": "a", "namespace": "ns", "node": "n1",
         "protocol": "HBONE", "addresses": ["198.18.1.11", "2001:2:0:1::11"],
         "services": {"ns/svc.ns.svc.cluster.local": {80: 8080}},
         "authorizationPolicies": ["ns/p"],
         "waypoint": {"service": "ns/wp.ns.svc.cluster.local"}},
        {"uid": "Kubernetes//Pod/ns/b", "name": "b", "namespace": "ns", "node": "n2",
         "addresses": ["198.18.2.11"]},
    ],
    "services": [
        {"name": "svc", "namespace": "ns", "hostname": "svc.ns.svc.cluster.local",
         "vips": ["198.19.0.10"], "ports": {80: 8080}},
        {"name": "wp", "namespace": "ns", "hostname": "wp.ns.svc.cluster.local",
         "vips": ["198.19.0.11"], "ports": {15008: 15008}},
    ],
    "policies": [
        {"name": "p", "namespace": "ns", "scope": "WORKLOAD_SELECTOR", "action": "ALLOW",
         "rules": [[{"principals": ["cluster.local/ns/ns/sa/*"], "sourceIps": ["198.18.0.0/16"],
                     "destinationPorts": [8080]}]]},
        {"name": "strict", "namespace": "istio-system", "scope": "GLOBAL", "action": "DENY",
         "rules": [[{"notPrincipals": ["*"]}]]},
    ],
}


def main():
    xds_cp.M = xds_cp.load_messages()
    cp = xds_cp.ControlPlane({}, os.devnull)
    res = xds_cp.build_resources(SC)
    addr = {n: b for n, (t, b) in res.items() if t == xds_cp.ADDR}
    authz = {n: b for n, (t, b) in res.items() if t == xds_cp.AUTHZ}
    bad = dict(xds_cp.build_resources({"workloads": [
        {"uid": "bad", "namespace": "ns", "rawAddress": "c61203"},
        {"uid": "dup", "namespace": "ns", "addresses": ["198.18.1.11"]}]}))
    seeds = {
        "push": [cp.response(xds_cp.ADDR, addr, []), cp.response(xds_cp.AUTHZ, authz, [])],
        "remove": [cp.response(xds_cp.ADDR, addr, []),
                   cp.response(xds_cp.ADDR, {}, ["ns/wp.ns.svc.cluster.local",
                                                 "Kubernetes//Pod/ns/b"])],
        "bad": [cp.response(xds_cp.ADDR, addr, []),
                cp.response(xds_cp.ADDR, {n: b for n, (t, b) in bad.items()}, [])],
    }
    os.makedirs(OUT, exist_ok=True)
    for name, msgs in seeds.items():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(b"\n--\n".join(m.SerializeToString() for m in msgs))


if __name__ == "__main__":
    main()
