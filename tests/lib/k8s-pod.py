#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# A workload's pod template from our Kubernetes manifests, as a Pod that `podman kube play`
# runs inside a harness node, for tests/integration/k8s-podman.sh. Only what cannot exist
# in the harness is changed, each change on a line of its own below:
#   - hostPath volumes point at the test's own directories (never the machine's /sys/fs/bpf,
#     /etc/cni/net.d, /opt/cni/bin, /var/run/zmesh): MAP is "HOSTPATH=DIR,...";
#   - Secret and ConfigMap volumes become hostPath directories holding their files, SECRETS
#     "NAME=DIR,..." (podman would need `podman secret`, and `kube play --configmap` copies a
#     ConfigMap once where the kubelet keeps the files current, which the tests rely on);
#   - the CNI socket the install step writes into the node's conflist (--socket) is a host
#     path, so it moves with its hostPath volume;
#   - the CNI install step gets --default-namespace podman: podman names a container's
#     sandbox with K8S_POD_NAME only, where the kubelet also passes K8S_POD_NAMESPACE;
#   - env from the field spec.nodeName gets the node's name (podman 4.3 rejects that field);
#   - "$(VAR)" in command and args is expanded from the container's env, as the kubelet does
#     (podman 4.3 passes it on literally);
#   - restartPolicy OnFailure instead of a DaemonSet's Always: podman 4.3 also restarts init
#     containers that finished under Always, so the pod never gets past them;
#   - containerPorts are dropped: podman 4.3 makes them port mappings, which it refuses on the
#     host network (Kubernetes treats them as documentation there);
#   - pods that are not hostNetwork get it (no pod network or Service in the harness for
#     zmesh-ca) and "--ca-addr HOST:PORT" replaces the Service name (no cluster DNS);
#   - there is no Kubernetes API server either: "--kube" (ztunnel, zmesh-ca) becomes
#     "--config /etc/zmesh/config/ztunnel.yaml" with the zmesh-config ConfigMap mounted there,
#     and the projected service account token volume (kube-api-access) is dropped
#     (tests/integration/ztunnel-kube.sh shows the API source against a stand-in server).
#
#   k8s-pod.py FILE KIND/NAME POD_NAME NODE MAP SECRETS CA_ADDR
import sys

import yaml

path, which, pod_name, node, maps, secrets, ca_addr = sys.argv[1:8]
kind, name = which.split("/")
hostmap = dict(kv.split("=", 1) for kv in maps.split(",") if kv)
secretmap = dict(kv.split("=", 1) for kv in secrets.split(",") if kv)
doc = next(d for d in yaml.safe_load_all(open(path))
           if d and d["kind"] == kind and d["metadata"]["name"] == name)
tmpl = doc["spec"]["template"]
spec = tmpl["spec"]
dropped = {v["name"] for v in spec.get("volumes", []) if "projected" in v}
spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in dropped]
for c in spec.get("initContainers", []) + spec.get("containers", []):
    c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["name"] not in dropped]
    if "--kube" in (c.get("args") or []):
        i = c["args"].index("--kube")
        c["args"][i:i + 1] = ["--config", "/etc/zmesh/config/ztunnel.yaml"]
        c["volumeMounts"].append({"name": "kube-config", "mountPath": "/etc/zmesh/config",
                                  "readOnly": True})
        if not any(v["name"] == "kube-config" for v in spec["volumes"]):
            spec["volumes"].append({"name": "kube-config", "configMap": {"name": "zmesh-config"}})
for v in spec.get("volumes", []):
    if "hostPath" in v:
        v["hostPath"]["path"] = hostmap[v["hostPath"]["path"]]
        v["hostPath"].pop("type", None)
    elif "secret" in v:
        v["hostPath"] = {"path": secretmap[v.pop("secret")["secretName"]]}
    elif "configMap" in v:
        v["hostPath"] = {"path": secretmap[v.pop("configMap")["name"]]}
for c in spec.get("initContainers", []) + spec.get("containers", []):
    c.pop("ports", None)
    for e in c.get("env", []):
        ref = (e.get("valueFrom") or {}).get("fieldRef") or {}
        if ref.get("fieldPath") == "spec.nodeName":
            e.pop("valueFrom")
            e["value"] = node
    env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    for args in (c.get("args") or [], c.get("command") or []):
        for i, a in enumerate(args):
            for k, v in env.items():
                args[i] = args[i].replace("$(%s)" % k, v)
        for i, a in enumerate(args[:-1]):
            if a == "--ca-addr":
                args[i + 1] = ca_addr
        if args[:2] == ["/usr/bin/zmesh-cni", "install"]:
            args += ["--default-namespace", "podman"]
        for i, a in enumerate(args[:-1]):
            if a == "--socket":
                for host, mapped in hostmap.items():
                    if args[i + 1].startswith(host + "/"):
                        args[i + 1] = mapped + args[i + 1][len(host):]
spec["hostNetwork"] = True
spec["restartPolicy"] = "OnFailure"
# Not a Kubernetes node: no priority classes, no service account tokens to mount.
spec.pop("priorityClassName", None)
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": pod_name, "labels": tmpl["metadata"].get("labels", {})},
       "spec": spec}
yaml.safe_dump(pod, sys.stdout, sort_keys=False)
