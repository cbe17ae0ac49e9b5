#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Kubernetes manifests (scripts/deploy/kubernetes/) a user applies with `kubectl apply -f`:
# they are what scripts/deploy/render.sh makes of settings.env (so image names and the trust
# domain live in one place); every document conforms strictly to the Kubernetes API types
# (tests/tools/k8s-schema.py over python3-kubernetes' models; a misspelled field, a wrong type
# or an unknown enum value fails, shown on broken copies); the configs they carry pass
# `ztunnel --check` / `waypoint --check`; and the zmesh-node DaemonSet says what the issue
# asks: host network, only BPF/NET_ADMIN/SYS_ADMIN (and DAC_OVERRIDE for the CNI files),
# the hostPath mounts, NODE_NAME from spec.nodeName, readiness on 15021, no preStop and no
# containerPorts, and a surge rolling update (the new pod takes the old one's sockets over). `kubectl apply --dry-run=client` needs an API server for discovery even in
# client mode, so it cannot run offline and is not part of this test.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
PY=/usr/bin/python3
K=scripts/deploy/kubernetes
$PY -c 'import kubernetes, yaml' 2>/dev/null ||
	t_fatal "python3-kubernetes and python3-yaml are needed (scripts/install-deps.sh)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scripts/deploy/render.sh "$tmp/r" || t_fatal "render.sh failed"
t_run "the committed manifests are render.sh's output of settings.env" -- diff -r "$tmp/r" "$K"
ZMESH_IMAGE_PREFIX=registry.example/zmesh ZMESH_TRUST_DOMAIN=prod.example \
	scripts/deploy/render.sh "$tmp/r2" >/dev/null
t_is "$(grep -rho 'image: [^ ]*' "$tmp/r2" | sort -u | tr '\n' ' ')" \
	"image: registry.example/zmesh/zmesh-ca:0.1.0 image: registry.example/zmesh/zmesh-node:0.1.0 image: registry.example/zmesh/zmesh-waypoint:0.1.0 " \
	"one setting moves every image"
t_like "$(grep -rh 'prod.example' "$tmp/r2" | wc -l)" '^[3-9]' "and one the trust domain"

files=$(find "$K" -name '*.yaml' | sort)
while IFS= read -r line; do
	case $line in
	"ok "*) t_ok 0 "${line#ok * - }" ;;
	"not ok "*) t_ok 1 "${line#not ok * - }" ;;
	esac
done < <($PY tests/tools/k8s-schema.py $files)

# The checker must not be vacuous: broken copies fail.
ds=$K/30-zmesh-node.yaml
sed 's/failureThreshold: 2/failureTreshold: 2/' "$ds" >"$tmp/typo.yaml"
sed 's/periodSeconds: 5/periodSeconds: "5"/' "$ds" >"$tmp/type.yaml"
sed 's/type: RollingUpdate/type: Rolling/' "$ds" >"$tmp/enum.yaml"
sed 's/^  selector:$/  selectr:/' "$ds" >"$tmp/required.yaml"
for f in typo type enum required; do
	out=$($PY tests/tools/k8s-schema.py "$tmp/$f.yaml")
	t_like "$out" "^not ok" "a broken DaemonSet ($f) is refused: $(echo "$out" | sed -n 's/.*: //p' | head -1)"
done

# The configs the ConfigMaps carry are valid for the programs that read them.
$PY - "$K/10-config.yaml" "$tmp" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    for k, v in (d.get("data") or {}).items():
        open("%s/%s" % (sys.argv[2], k), "w").write(v)
EOF
t_run "zmesh-config and zmesh-policies pass ztunnel --check" -- \
	"$BUILD/bin/ztunnel" --check --config "$tmp/ztunnel.yaml" --policy "$tmp/policies.yaml"
t_run "zmesh-waypoint-routes pass waypoint --check" -- \
	"$BUILD/bin/waypoint" --check --config "$tmp/routes.yaml" --mesh-config "$tmp/ztunnel.yaml"

# The DaemonSet's pod template, field by field.
$PY - "$ds" >"$tmp/ds.txt" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d["spec"]
p = s["template"]["spec"]
zt = p["containers"][0]
caps = set()
for c in p["initContainers"] + p["containers"]:
    caps |= set(c["securityContext"]["capabilities"].get("add", []))
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], c["name"]
    assert c["securityContext"].get("privileged") is not True, c["name"]
env = {e["name"]: e for e in zt["env"]}
mounts = {v["hostPath"]["path"] for v in p["volumes"] if "hostPath" in v}
vols = {v["name"] for v in p["volumes"]}
used = {m["name"] for c in p["initContainers"] + p["containers"] for m in c["volumeMounts"]}
print("hostNetwork", p["hostNetwork"])
print("caps", ",".join(sorted(caps)))
print("hostPaths", ",".join(sorted(mounts)))
print("mounts-declared", used <= vols, "volumes-used", vols <= used)
print("nodename", env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"])
print("ready", zt["readinessProbe"]["httpGet"]["port"], zt["readinessProbe"]["httpGet"]["path"])
print("prestop", "lifecycle" in zt, p["terminationGracePeriodSeconds"])
print("ports", "ports" in zt)
ru = s["updateStrategy"]["rollingUpdate"]
print("update", s["updateStrategy"]["type"], ru["maxSurge"], ru["maxUnavailable"])
print("selector", all(p and s["template"]["metadata"]["labels"].get(k) == v for k, v in s["selector"]["matchLabels"].items()))
print("init", ",".join(c["name"] for c in p["initContainers"]))
print("source", "--kube" in zt["args"] and "--config" not in zt["args"], env.get("TRUST_DOMAIN", {}).get("value"))
tok = {v["name"] for v in p["volumes"] if "projected" in v}
print("token", p.get("automountServiceAccountToken"),
      ",".join(c["name"] for c in p["initContainers"] + p["containers"]
               if any(m["name"] in tok for m in c["volumeMounts"])),
      ",".join(m["mountPath"] for m in zt["volumeMounts"] if m["name"] in tok))
EOF
t_ok $? "the DaemonSet's pod template reads back"
g() { sed -n "s/^$1 //p" "$tmp/ds.txt"; }
t_is "$(g hostNetwork)" "True" "zmesh-node runs in the node's network namespace"
t_is "$(g caps)" "BPF,DAC_OVERRIDE,NET_ADMIN,SYS_ADMIN" "only BPF, NET_ADMIN, SYS_ADMIN (+ DAC_OVERRIDE for the CNI files), no privileged container"
t_is "$(g hostPaths)" "/etc/cni/net.d,/opt/cni/bin,/sys/fs/bpf,/sys/fs/cgroup,/var/run/zmesh" "hostPath mounts: bpffs, cgroup root, CNI bin and net.d, /var/run/zmesh"
t_is "$(g mounts-declared)" "True volumes-used True" "every mount has a volume and every volume is mounted"
t_is "$(g nodename)" "spec.nodeName" "NODE_NAME comes from spec.nodeName"
t_is "$(g ready)" "15021 /healthz/ready" "readiness on 15021 /healthz/ready"
t_is "$(g prestop)" "False 3600" "no preStop (SIGTERM drains); an hour to drain after an upgrade"
t_is "$(g ports)" "False" "no containerPorts (hostPorts would keep the surge pod off the node)"
t_is "$(g update)" "RollingUpdate 1 0" "rolling update with surge: the new pod takes the sockets over"
t_is "$(g selector)" "True" "the selector matches the pod template"
t_is "$(g init)" "install-cni,node-cert,load-datapath" "init: chain the CNI, node certificate, load or adopt the datapath"
t_is "$(g source)" "True cluster.local" "ztunnel takes its model from the Kubernetes API (--kube), in the trust domain"
t_is "$(g token)" "False ztunnel /var/run/secrets/kubernetes.io/serviceaccount" \
	"only the ztunnel container mounts a (projected) service account token, where --kube looks"

# The waypoint Deployment: its model from the API, a projected token only it mounts.
$PY - "$K/40-waypoint.yaml" >"$tmp/wp.txt" <<'EOF'
import sys, yaml
d = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "Deployment")
p = d["spec"]["template"]["spec"]
c = p["containers"][0]
tok = {v["name"] for v in p["volumes"] if "projected" in v}
print("source", "--kube" in c["args"], "--mesh-config" in c["args"], "--config" in c["args"])
print("token", p.get("automountServiceAccountToken"),
      ",".join(m["mountPath"] for m in c["volumeMounts"] if m["name"] in tok))
EOF
t_is "$(sed -n 's/^source //p' "$tmp/wp.txt")" "True False True" \
	"the waypoint reads the API (--kube) instead of --mesh-config, its routes file beside"
t_is "$(sed -n 's/^token //p' "$tmp/wp.txt")" "False /var/run/secrets/kubernetes.io/serviceaccount" \
	"and mounts a projected token where --kube looks"

# RBAC: read-only, exactly what the API sources use.
$PY - "$K/05-rbac.yaml" "$K/00-namespace.yaml" >"$tmp/rbac.txt" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] == "ClusterRole":
        for r in d["rules"]:
            print(d["metadata"]["name"], ",".join(r["apiGroups"]) or "core",
                  ",".join(sorted(r["resources"])), ",".join(sorted(r["verbs"])))
    else:
        s = d["subjects"][0]
        print("binding", d["metadata"]["name"], d["roleRef"]["name"], s["kind"], s["name"])
print("automount", sorted({d["metadata"]["name"]: d.get("automountServiceAccountToken")
                           for d in yaml.safe_load_all(open(sys.argv[2]))
                           if d["kind"] == "ServiceAccount"}.items()))
EOF
t_is "$(cat "$tmp/rbac.txt")" "zmesh-node core namespaces,pods get,list,watch
zmesh-node core services list,watch
zmesh-node discovery.k8s.io endpointslices list,watch
zmesh-node security.istio.io authorizationpolicies,peerauthentications list,watch
binding zmesh-node zmesh-node ServiceAccount zmesh-node
zmesh-ca core namespaces,pods list,watch
binding zmesh-ca zmesh-ca ServiceAccount zmesh-ca
zmesh-waypoint core namespaces,pods,services list,watch
zmesh-waypoint discovery.k8s.io endpointslices list,watch
zmesh-waypoint networking.istio.io destinationrules,virtualservices list,watch
zmesh-waypoint security.istio.io authorizationpolicies list,watch
zmesh-waypoint gateway.networking.k8s.io gateways,grpcroutes,httproutes list,watch
binding zmesh-waypoint zmesh-waypoint ServiceAccount zmesh-waypoint
automount [('zmesh-ca', False), ('zmesh-node', False), ('zmesh-waypoint', False)]" \
	"ClusterRoles: get/list/watch only, on exactly the resources the API sources read; no account automounts a token"
t_done
