#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Cluster state and churn for scripts/bench-kube.sh (python3 stdlib only).

  bench-kube.py state FILE PODS SERVICES NODES
      writes a state file for tests/tools/kube-apiserver.py: PODS pods spread over NODES
      nodes (n1 is the node under test), 20 namespaces (even ones labelled
      istio.io/dataplane-mode=ambient), SERVICES services without selector, each with an
      EndpointSlice naming 2 or 3 of the pods (as the controller would).
  bench-kube.py churn URL CAFILE TOKEN RATE SECONDS PODS SERVICES
      RATE pod changes a second for SECONDS over one keep-alive HTTPS connection: each change
      flips a pod's readiness and rewrites its service's EndpointSlice (what a rollout does),
      so every pod change is two API events. Prints the rate achieved.
"""
import http.client
import json
import ssl
import sys
import time
import urllib.parse

NS = 20


def pod_ip(i):  # 198.18.0.0/16: the benchmarking range, never routed anywhere here
    return "198.18.%d.%d" % ((i // 256) % 256, i % 256)


def pod(i, nodes, ready=True):
    ns = "ns%d" % (i % NS)
    return {"metadata": {"name": "app%d-7d9f8-p%d" % (i % 500, i), "namespace": ns,
                         "uid": "u%d" % i, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app": "app%d" % (i % 500), "version": "v1",
                                    "pod-template-hash": "7d9f8"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "app%d-7d9f8" % (i % 500),
                                              "controller": True}]},
            "spec": {"nodeName": "n%d" % (1 + i % nodes), "serviceAccountName": "sa%d" % (i % 500)},
            "status": {"phase": "Running", "podIPs": [{"ip": pod_ip(i)}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def members(s, pods):
    n = 2 + s % 2
    return [(s * 3 + k) % pods for k in range(n)]


def eslice(s, pods, nodes, ready=None):
    ns = "ns%d" % (s % NS)
    eps = []
    for i in members(s, pods):
        p = pod(i, nodes)
        r = True if ready is None or ready[0] != i else ready[1]
        eps.append({"addresses": [pod_ip(i)], "conditions": {"ready": r, "serving": r},
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": {"kind": "Pod", "namespace": p["metadata"]["namespace"],
                                  "name": p["metadata"]["name"]}})
    return {"metadata": {"name": "svc%d-bench" % s, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": "svc%d" % s}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps}


def state(path, pods, services, nodes):
    objs = {"namespaces": [{"metadata": {"name": "ns%d" % n, "labels":
                                         {"istio.io/dataplane-mode": "ambient"} if n % 2 == 0 else {}}}
                           for n in range(NS)],
            "pods": [pod(i, nodes) for i in range(pods)],
            "services": [{"metadata": {"name": "svc%d" % s, "namespace": "ns%d" % (s % NS)},
                          "spec": {"clusterIP": "198.19.%d.%d" % (200 + s // 256, s % 256),
                                   "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
                         for s in range(services)],
            "endpointslices": [eslice(s, pods, nodes) for s in range(services)],
            "authorizationpolicies": [], "peerauthentications": []}
    json.dump({"rv": 1, "objs": objs}, open(path, "w"))


def churn(url, ca, token, rate, secs, pods, services, nodes=50):
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    t0 = time.time()
    n = 0
    while time.time() - t0 < secs:
        s = n % services
        i = members(s, pods)[n % 2]
        ready = (n // services) % 2 == 1  # flip readiness round by round
        p = pod(i, nodes, ready)
        for path, body in (("/api/v1/namespaces/%s/pods/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]), p),
                           ("/apis/discovery.k8s.io/v1/namespaces/ns%d/endpointslices/svc%d-bench" % (s % NS, s),
                            eslice(s, pods, nodes, (i, ready)))):
            conn.request("PUT", path, json.dumps(body), hdr)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                sys.exit("churn: PUT %s: %d" % (path, r.status))
        n += 1
        ahead = n / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print("churn: %d pod changes in %.1f s (%.1f/s)" % (n, time.time() - t0, n / (time.time() - t0)))


if __name__ == "__main__":
    if sys.argv[1] == "state":
        state(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "churn":
        churn(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6]),
              int(sys.argv[7]), int(sys.argv[8]))
    else:
        sys.exit(__doc__)
