#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Kubernetes manifests -> harness pods and zmesh config, for tests/lib/k8s.sh. Reads the
# Deployment, Service and ServiceAccount objects of the applied files (other kinds are
# ignored, like a cluster without their controllers would) and prints either the pods to make
# or the mesh config for them. The output depends only on the files and their order, so
# applying one more file later only appends pods: earlier pods keep their names and nodes.
#
#   k8s.py pods NODES FILE...            one line per pod: HNAME NODE POD NS SA LABELS PORTS ARGS
#   k8s.py mesh STATE VIPBASE FILE...    zmesh config YAML (pod IPs from STATE/ips)
#
# NODES is "n1,n2"; pods go round-robin over them. LABELS is "k=v,k=v", PORTS "9080,80" (the
# container ports plus the target ports of the services selecting the pod), ARGS extra
# zm-httpecho arguments from the pod annotation zmesh.test/echo-args (a test's broken
# endpoint: "--status 503"; "none": no echo, the test runs its own server). In ARGS,
# "{vip:SERVICE}" becomes that service's VIP (a pod that calls another service).
# Waypoints are attached the Istio way: a Gateway of gatewayClassName istio-waypoint (its
# istio.io/waypoint-for label: service, the default, workload, all or none) is the waypoint
# that a STATE/waypoint file "HNAME IP NODE [IP6]" runs; the istio.io/use-waypoint label
# (istio.io/use-waypoint-namespace for another namespace's) on a Service, a Deployment's pod
# template or a Namespace attaches it, the object's own label first, "none" opting out.
# Dual stack (a STATE/ipv6 file holding an IPv6 VIP prefix, "2001:2:0:250::"): every service
# also gets the IPv6 VIP PREFIX<N> after its IPv4 one, every workload its IPv6 address (STATE/ips
# "HNAME IP4 POD IP6") after its IPv4 one, and the services' waypoint is addressed by its IPv6
# address, so a request over IPv6 stays IPv6 on every hop.
import re
import sys

import yaml

MAX_REPLICAS = 8


def load(files):
    """Every document of every file, in order, skipping empty ones."""
    docs = []
    for f in files:
        with open(f) as fh:
            docs += [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
    return docs


def ns_of(obj):
    return (obj.get("metadata") or {}).get("namespace") or "default"


def services(docs):
    out = []
    for d in docs:
        if d.get("kind") != "Service":
            continue
        spec = d.get("spec") or {}
        ports = []
        for p in spec.get("ports") or []:
            ports.append((int(p["port"]), p.get("targetPort", p["port"]), p.get("name", "")))
        out.append({"name": d["metadata"]["name"], "ns": ns_of(d), "labels": labels_of(d),
                    "selector": spec.get("selector") or {}, "ports": ports})
    return out


WAYPOINT_CLASS = "istio-waypoint"


def labels_of(obj):
    return {k: str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


def gateways(docs):
    """The waypoints: {(ns, name): waypoint-for} of every istio-waypoint Gateway."""
    out = {}
    for d in docs:
        if d.get("kind") == "Gateway" and \
                (d.get("spec") or {}).get("gatewayClassName") == WAYPOINT_CLASS:
            out[(ns_of(d), d["metadata"]["name"])] = labels_of(d).get(
                "istio.io/waypoint-for", "service")
    return out


def namespace_labels(docs):
    return {d["metadata"]["name"]: labels_of(d) for d in docs if d.get("kind") == "Namespace"}


def use_waypoint(own, ns, ns_labels, gws, kind):
    """The waypoint (ns, name) an object of kind "service" or "workload" uses, or None."""
    for labels in (own, ns_labels.get(ns, {})):
        name = labels.get("istio.io/use-waypoint")
        if name is None:
            continue
        if name == "none":
            return None
        key = (labels.get("istio.io/use-waypoint-namespace", ns), name)
        return key if gws.get(key) in (kind, "all") else None
    return None


def selects(sel, labels):
    return bool(sel) and all(labels.get(k) == str(v) for k, v in sel.items())


def target_port(tp, named):
    """A Service targetPort: a number, or a container port's name."""
    if isinstance(tp, int) or str(tp).isdigit():
        return int(tp)
    return named.get(tp)


def pods(docs, nodes):
    svcs = services(docs)
    out = []
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        spec = d.get("spec") or {}
        tpl = spec.get("template") or {}
        labels = {k: str(v) for k, v in ((tpl.get("metadata") or {}).get("labels") or {}).items()}
        pspec = tpl.get("spec") or {}
        args = ((tpl.get("metadata") or {}).get("annotations") or {}).get(
            "zmesh.test/echo-args", "")
        args = re.sub(r"\{vip:([a-z0-9-]+)\}", lambda m: vip_of(docs, m.group(1), ns_of(d)), args)
        named, ports = {}, []
        for c in pspec.get("containers") or []:
            for p in c.get("ports") or []:
                ports.append(int(p["containerPort"]))
                if p.get("name"):
                    named[p["name"]] = int(p["containerPort"])
        for s in svcs:
            if s["ns"] == ns_of(d) and selects(s["selector"], labels):
                for _, tp, _ in s["ports"]:
                    t = target_port(tp, named)
                    if t:
                        ports.append(t)
        sa = pspec.get("serviceAccountName") or pspec.get("serviceAccount") or "default"
        for i in range(min(int(spec.get("replicas", 1)), MAX_REPLICAS)):
            n = len(out)
            out.append({"hname": "k%d" % (n + 1), "node": nodes[n % len(nodes)],
                        "name": "%s-%d" % (d["metadata"]["name"], i), "ns": ns_of(d),
                        "sa": sa, "labels": labels, "named": named, "args": args,
                        "ports": sorted(set(ports))})
    return out, svcs


def vip_of(docs, name, ns):
    """The VIP mesh() gives service name (the same numbering), for pods that call it."""
    for i, s in enumerate(services(docs)):
        if s["name"] == name and s["ns"] == ns:
            return "%s.%d" % (VIPBASE, i + 1)
    raise SystemExit("k8s.py: {vip:%s}: no such service in namespace %s" % (name, ns))


VIPBASE = "198.18.250"  # tests/lib/k8s.sh K8S_VIPBASE


def flow(d):
    """One-line YAML mapping."""
    return yaml.safe_dump(d, default_flow_style=True, width=100000, sort_keys=False).strip()


def mesh(docs, nodes, state, vipbase):
    ps, svcs = pods(docs, nodes)
    vip6 = None
    try:
        with open(state + "/ipv6") as fh:
            vip6 = fh.read().strip()
    except FileNotFoundError:
        pass
    ips = {}
    with open(state + "/ips") as fh:
        for line in fh:
            f = line.split()
            if len(f) >= 2:
                ips[f[0]] = [f[1]] + ([f[3]] if vip6 and len(f) >= 4 else [])
    wp = None
    try:
        with open(state + "/waypoint") as fh:
            wp = fh.read().split()
    except FileNotFoundError:
        pass
    wp_ips = (wp[1:2] + (wp[3:4] if vip6 else [])) if wp else []
    gws, nsl = gateways(docs), namespace_labels(docs)
    wp_key = next(iter(gws), None) if wp else None  # the harness runs one waypoint pod
    print("# generated by tests/lib/k8s.py from: " + " ".join(sys.argv[4:]))
    print("workloads:")
    for p in ps:
        if p["hname"] not in ips:
            continue
        wl = {"uid": "Kubernetes//Pod/%s/%s" % (p["ns"], p["name"]), "name": p["name"],
              "namespace": p["ns"], "serviceAccount": p["sa"], "protocol": "HBONE",
              "node": p["node"], "workloadIps": ips[p["hname"]]}
        sv = {}
        for s in svcs:
            if s["ns"] == p["ns"] and selects(s["selector"], p["labels"]):
                host = "%s.%s.svc.cluster.local" % (s["name"], s["ns"])
                sv["%s/%s" % (s["ns"], host)] = {
                    port: target_port(tp, p["named"]) or port for port, tp, _ in s["ports"]}
        if sv:
            wl["services"] = sv
        if p["labels"]:
            wl["labels"] = p["labels"]
        if wp_key and use_waypoint(p["labels"], p["ns"], nsl, gws, "workload") == wp_key:
            wl["waypoint"] = {"destination": "/" + wp_ips[-1], "hboneMtlsPort": 15008}
        print("- " + flow(wl))
    if wp:
        ns, name = wp_key or ("default", "waypoint")
        print("- " + flow({"uid": "Kubernetes//Pod/%s/%s" % (ns, name), "name": name,
                           "namespace": ns, "serviceAccount": name,
                           "protocol": "TCP", "node": wp[2], "workloadIps": wp_ips,
                           "labels": {"gateway.networking.k8s.io/gateway-name": name,
                                      "istio.io/gateway-name": name}}))
    print("services:")
    for i, s in enumerate(svcs):
        host = "%s.%s.svc.cluster.local" % (s["name"], s["ns"])
        vips = ["/%s.%d" % (vipbase, i + 1)] + (["/%s%d" % (vip6, i + 1)] if vip6 else [])
        sv = {"name": s["name"], "namespace": s["ns"], "hostname": host, "vips": vips,
              "ports": {port: port for port, _, _ in s["ports"]}}
        if wp_key and use_waypoint(s["labels"], s["ns"], nsl, gws, "service") == wp_key:
            sv["waypoint"] = {"destination": "/" + wp_ips[-1], "hboneMtlsPort": 15008}
        print("- " + flow(sv))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "pods":
        ps, _ = pods(load(sys.argv[3:]), sys.argv[2].split(","))
        for p in ps:
            print(p["hname"], p["node"], p["name"], p["ns"], p["sa"],
                  ",".join("%s=%s" % kv for kv in p["labels"].items()) or "-",
                  ",".join(str(x) for x in p["ports"]) or "-", p["args"])
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "mesh":
        nodes = open(sys.argv[2] + "/nodes").read().split(",")
        mesh(load(sys.argv[4:]), [n.strip() for n in nodes], sys.argv[2], sys.argv[3])
        return 0
    sys.stderr.write("usage: k8s.py pods NODES FILE... | mesh STATE VIPBASE FILE...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
