#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The images and the manifests for real, with podman (rootful, CNI network backend, runc)
# inside two harness nodes: `make image`'s archives are loaded, the zmesh-ca Deployment's and
# the zmesh-node DaemonSet's pod templates run under `podman kube play` on the node's host
# network (their init steps chain zmesh-cni into the node's conflist, issue the node
# certificate and load the datapath; ztunnel gets its certificates from zmesh-ca), and
# workload containers that podman starts afterwards on the chained network are meshed and
# reach each other over mTLS HBONE.
#
#   podman n1 (nsenter --net)                        podman n2
#   +-- node n1 ---------------------------+         +-- node n2 -----------------------+
#   | pod zmesh-ca      (host net, :15012) |         |                                  |
#   | pod zmesh-node-n1 (host net): ztunnel|==wire0==| pod zmesh-node-n2: ztunnel       |
#   | container a1 --network zmt (ptp +    |         | container b1 --network zmt       |
#   |   zmesh-cni) 198.18.1.20-99          |         |   198.18.2.20-99                 |
#   +--------------------------------------+         +----------------------------------+
#
# Everything podman has is private to the run: storage (vfs), run root, containers.conf,
# the CNI config directory (the node's, under the state dir) and the CNI bin directory. The
# pod templates get only the changes tests/lib/k8s-pod.py lists (harness paths, podman 4.3
# gaps). podman passes CNI_ARGS with K8S_POD_NAME only, so the install step chains the
# entry with defaultNamespace "podman" and the mesh config names the containers there.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/cni.sh
m_need tcpdump podman buildah skopeo runc nsenter catatonit
c_init 2
PM=$H_STATE/podman
IMG=$H_STATE/images
PY=/usr/bin/python3

pm() { # pm NODE ARGS...: podman of node NODE, in its network namespace (nsenter keeps /sys)
	local node=$1
	shift
	CONTAINERS_CONF=$PM/$node.conf CONTAINERS_REGISTRIES_CONF=/dev/null \
		nsenter --net="/var/run/netns/$(h_ns "$node")" podman --root "$PM/$node/root" \
		--runroot "$PM/$node/run" --storage-driver vfs "$@"
}
# runc (cgroupfs manager) makes libpod_parent in every cgroup hierarchy; remove it again
# when this run made it and nothing else uses it (rmdir fails on a non-empty cgroup).
pm_parents=$(ls -d /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent 2>/dev/null)
pm_cleanup() {
	local n d
	for n in n1 n2; do
		[ -d "$PM/$n" ] || continue
		pm $n pod rm -af -t 2 >/dev/null 2>&1
		pm $n rm -af -t 2 >/dev/null 2>&1
	done
	if [ -z "$pm_parents" ]; then
		for d in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent; do
			[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	fi
	h_cleanup
}
trap pm_cleanup EXIT

for n in n1 n2; do
	mkdir -p "$PM/$n/tmp"
	cat >"$PM/$n.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]
log_driver = "k8s-file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$C_BIN"]
network_config_dir = "$H_STATE/cni/$n/net.d"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/$n/events.log"
tmp_dir = "$PM/$n/tmp"
volume_path = "$PM/$n/volumes"
EOF
done

# 1. The images, as `make image` writes them.
out=$(scripts/image.sh "$IMG" 2>&1) || t_fatal "scripts/image.sh failed: $out"
t_diag "image sizes (compressed archives): $(echo "$out" | awk '{printf "%s %s; ", $1, $3}')"
for i in zmesh-node zmesh-waypoint zmesh-ca; do
	js=$(skopeo inspect "oci-archive:$IMG/$i.tar" 2>&1)
	t_like "$(jq -r '.Labels["org.opencontainers.image.version"] + " " + .Labels["org.opencontainers.image.revision"]' <<<"$js")" \
		'^0\.1\.0 [0-9a-f]{40}' "skopeo inspect oci-archive: $i carries version and revision labels"
	t_is "$(jq '.Layers | length' <<<"$js")" "1" "$i is one layer FROM scratch"
done
t_is "$(skopeo inspect --config oci-archive:"$IMG/zmesh-waypoint.tar" | jq -r .config.User)" "65532:65532" "the waypoint image runs as a non-root user"
t_is "$(skopeo inspect --config oci-archive:"$IMG/zmesh-node.tar" | jq -r '.config.Entrypoint[0]')" "/usr/bin/ztunnel" "zmesh-node's entrypoint is ztunnel"
layer=$(tar -xOf "$IMG/zmesh-node.tar" index.json | jq -r '.manifests[0].digest' | cut -d: -f2)
layer=$(tar -xOf "$IMG/zmesh-node.tar" "blobs/sha256/$layer" | jq -r '.layers[0].digest' | cut -d: -f2)
t_is "$(tar -xOf "$IMG/zmesh-node.tar" "blobs/sha256/$layer" | tar -tzf - | grep -E '^(\./)?usr/(bin|lib/zmesh/bpf)/.' | sed 's|^\./||' | sort | tr '\n' ' ')" \
	"usr/bin/zmesh-cni usr/bin/zmeshctl usr/bin/ztunnel usr/lib/zmesh/bpf/capture.bpf.o usr/lib/zmesh/bpf/policy_xdp.bpf.o usr/lib/zmesh/bpf/sockops.bpf.o " \
	"zmesh-node holds exactly our binaries and BPF objects (plus their libraries)"
for n in n1 n2; do
	for i in zmesh-node zmesh-ca; do
		pm $n load -q -i "$IMG/$i.tar" >/dev/null 2>&1 || t_fatal "podman load of $i on $n failed"
	done
done
t_like "$(pm n1 images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')" "localhost/zmesh-ca:0.1.0 localhost/zmesh-node:0.1.0" "podman load accepts the archives"
for b in ztunnel zmeshctl zmesh-cni; do
	out=$(pm n1 run --rm --network none --entrypoint /usr/bin/$b localhost/zmesh-node:0.1.0 --help 2>&1 | head -1)
	t_like "$out" "^(usage|Usage|zmeshctl)" "$b runs inside the image (every library it loads is there)"
done

# 2. The manifests, with the uplink of this harness set in the one settings place.
ZMESH_UPLINK=wire0 scripts/deploy/render.sh "$H_STATE/k8s" || t_fatal "render.sh failed"
m_ca_init
# The ConfigMaps' files, where the pods' volumes find them (k8s-pod.py); the mesh config
# names the three workload containers (podman namespace, addresses from the CNI).
$PY - "$H_STATE/k8s/10-config.yaml" "$H_STATE/cm" <<'EOF'
import os, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["metadata"]["name"] == "zmesh-config":
        d["data"]["ztunnel.yaml"] = "workloads:\n" + "".join(
            "- {uid: %s, name: %s, namespace: podman, serviceAccount: sa-%s, protocol: HBONE,"
            " workloadIps: []}\n" % (p, p, p) for p in ("a1", "a2", "b1"))
    os.makedirs("%s/%s" % (sys.argv[2], d["metadata"]["name"]))
    for k, v in d["data"].items():
        open("%s/%s/%s" % (sys.argv[2], d["metadata"]["name"], k), "w").write(v)
EOF
CMS=zmesh-config=$H_STATE/cm/zmesh-config,zmesh-policies=$H_STATE/cm/zmesh-policies
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
$PY tests/lib/k8s-pod.py "$H_STATE/k8s/20-zmesh-ca.yaml" Deployment/zmesh-ca zmesh-ca n1 "" \
	"zmesh-ca=$M_CA,$CMS" "" >"$H_STATE/pod-ca.yaml" || t_fatal "zmesh-ca pod template"
out=$(pm n1 kube play "$H_STATE/pod-ca.yaml" 2>&1)
t_ok $? "podman kube play runs zmesh-ca's pod template on n1" || echo "# $out"
h_wait_port n1 15012 10 || t_fatal "zmesh-ca does not listen: $(pm n1 logs zmesh-ca-zmesh-ca 2>&1 | tail -5)"
for n in n1 n2; do
	mkdir -p "$(h_pin_dir $n)"
	$PY tests/lib/k8s-pod.py "$H_STATE/k8s/30-zmesh-node.yaml" DaemonSet/zmesh-node "zmesh-node-$n" $n \
		"/sys/fs/bpf=$(h_pin_dir $n),/sys/fs/cgroup=$cg2,/opt/cni/bin=$C_BIN,/etc/cni/net.d=$H_STATE/cni/$n/net.d,/var/run/zmesh=${C_RUN[$n]}" \
		"zmesh-ca=$M_CA,$CMS" 198.18.0.1:15012 >"$H_STATE/pod-$n.yaml" || t_fatal "zmesh-node pod template"
	out=$(pm $n kube play "$H_STATE/pod-$n.yaml" 2>&1)
	t_ok $? "podman kube play runs the zmesh-node DaemonSet's pod template on $n" || echo "# $out"
done
for n in n1 n2; do
	m_wait_for 20 test -S "${C_RUN[$n]}/cni.sock" ||
		t_fatal "ztunnel on $n did not come up: $(pm $n logs zmesh-node-$n-ztunnel 2>&1 | tail -5)"
	t_is "$(h_exec $n curl -s -m 2 http://127.0.0.1:15021/healthz/ready)" "ready" "ztunnel in the zmesh-node pod on $n is ready on 15021"
	t_is "$(jq -r '[.plugins[].type] | join(",")' "$(c_conflist $n)")" "ptp,zmesh-cni" "the pod's init step chained zmesh-cni into $n's conflist"
done
t_like "$(pm n1 logs zmesh-node-n1-ztunnel 2>&1)" "certificates from the CA at 198\.18\.0\.1:15012" "ztunnel takes its certificates from the zmesh-ca pod"
st=$("$ZCTL" --netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)/zmesh" -j datapath status)
t_like "$st" '"loaded": *true' "the init step loaded the datapath into the node's bpffs"
t_like "$st" '"wire0"' "with the uplink from settings.env (wire0)"

# 3. Workload containers started by podman on the chained network.
t_is "$(jq -r '.plugins[-1].defaultNamespace' "$(c_conflist n1)")" "podman" "the entry names podman's namespace (podman passes no K8S_POD_NAMESPACE)"
root=$H_STATE/echo-root
mkdir -p "$root/usr/bin" "$root/proc" "$root/dev" "$root/sys" "$root/tmp" "$root/etc"
cp "$ECHO" "$root/usr/bin/"
for lib in $(ldd "$ECHO" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'); do
	mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
done
run_wl() { # run_wl NODE NAME: a zm-echo container on the node's chained CNI network
	local sandbox
	pm "$1" run -d --name "$2" --network zmt --rootfs "$root" /usr/bin/zm-echo serve --port 7777 --banner >/dev/null 2>"$H_STATE/run-$2.err" ||
		return 1
	sandbox=$(pm "$1" inspect "$2" --format '{{.NetworkSettings.SandboxKey}}')
	# podman's sandbox namespaces live in /run/netns: the cleanup removes them even after a kill.
	[ -n "$sandbox" ] && h__record netns "$(basename "$sandbox")"
	return 0
}
run_wl n1 a1
t_ok $? "podman runs container a1 on n1's chained network" || echo "# $(cat "$H_STATE/run-a1.err")"
run_wl n1 a2
t_ok $? "and a2 on n1's" || echo "# $(cat "$H_STATE/run-a2.err")"
run_wl n2 b1
t_ok $? "and b1 on n2's" || echo "# $(cat "$H_STATE/run-b1.err")"
ipof() { pm "$1" inspect "$2" --format '{{.NetworkSettings.Networks.zmt.IPAddress}}'; }
A1=$(ipof n1 a1) A2=$(ipof n1 a2) B1=$(ipof n2 b1)
wl=$("$ZCTL" --netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)/zmesh" -j workload list)
t_is "$(jq -r --arg a "$A1" '.[] | select(.address == $a) | .identity' <<<"$wl")" "spiffe://cluster.local/ns/podman/sa/sa-a1" \
	"the ztunnel in the zmesh-node pod enrolled a1 ($A1) with its identity"
# The control plane's part: publish the addresses (the next issue's Kubernetes API source),
# replacing the file by rename as the kubelet does on a ConfigMap change.
cfg=$H_STATE/cm/zmesh-config/ztunnel.yaml
sed -e "s/name: a1, \(.*\)workloadIps: \[\]/name: a1, \1workloadIps: [$A1]/" \
	-e "s/name: a2, \(.*\)workloadIps: \[\]/name: a2, \1workloadIps: [$A2]/" \
	-e "s/name: b1, \(.*\)workloadIps: \[\]/name: b1, \1workloadIps: [$B1]/" "$cfg" >"$cfg.new" && mv "$cfg.new" "$cfg"
for n in n1 n2; do
	m_wait_for 10 sh -c "ip netns exec $(h_ns $n) curl -s -m 1 http://127.0.0.1:15000/config_dump | grep -q '\"$B1\"'" ||
		t_diag "ztunnel on $n did not reload the config"
done

MARK=ZMESH-PODMAN-PLAINTEXT-MARKER
h_bg n2 tcpdump --immediate-mode -Z root -i wire0 -U -s 0 -w "$H_STATE/wire.pcap" tcp 2>/dev/null
dump=$H_LAST_PID
sleep 1
out=$(pm n1 exec a1 /usr/bin/zm-echo send "$B1" 7777 --data "$MARK" 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$A1:[0-9]+ .*$MARK" "container a1 (n1) -> b1 (n2) through the zmesh-node pods"
sleep 0.5
h_stop "$dump"
sleep 0.2
t_ok "$([ "$(tcpdump -nn -r "$H_STATE/wire.pcap" 'tcp port 15008' 2>/dev/null | wc -l)" -gt 0 ]; echo $?)" "the wire carries HBONE (15008)"
t_ok "$(! grep -aq "$MARK" "$H_STATE/wire.pcap"; echo $?)" "the payload is not on the wire in plaintext"
t_like "$(pm n1 logs zmesh-node-n1-ztunnel 2>&1)" "scope=access msg=close dir=outbound via=hbone src.addr=$A1:[0-9]+ src.workload=podman/a1 src.identity=spiffe://cluster.local/ns/podman/sa/sa-a1 .*dst.identity=spiffe://cluster.local/ns/podman/sa/sa-b1 .*outcome=ok" \
	"ztunnel's access log: mTLS HBONE with both identities (certificates from zmesh-ca)"
out=$(pm n1 exec a1 /usr/bin/zm-echo send "$A2" 7777 --data same-node 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$A1:[0-9]+ .*same-node" "a1 -> a2 on the same node"

# 4. A new zmesh-node pod on n1 (what a rolling update does): the init steps find their work
# done (conflist unchanged, the pinned datapath adopted) and the new ztunnel enrolls the
# containers that kept running.
sum=$(sha256sum "$(c_conflist n1)")
maps() { "$ZCTL" --netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)/zmesh" -j datapath status | jq -c '[.pins[] | select(.kind == "map") | .id]'; }
before=$(maps)
out=$(pm n1 kube play --replace "$H_STATE/pod-n1.yaml" 2>&1)
t_ok $? "podman kube play --replace: a new zmesh-node pod on n1" || echo "# $out"
m_wait_for 20 test -S "${C_RUN[n1]}/cni.sock" || t_fatal "the new ztunnel on n1 did not come up"
t_is "$(sha256sum "$(c_conflist n1)")" "$sum" "its install step leaves the chained conflist as it was"
t_is "$(maps)" "$before" "its datapath step adopts the pinned datapath (same maps)"
wl=$("$ZCTL" --netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)/zmesh" -j workload list)
t_is "$(jq -r '[.[].address] | sort | join(",")' <<<"$wl")" "$(printf '%s\n' "$A1" "$A2" | sort | paste -sd,)" \
	"the new ztunnel enrolled the containers already running"
out=$(pm n2 exec b1 /usr/bin/zm-echo send "$A2" 7777 --data after-update 2>&1 | tr '\n' ' ')
t_like "$out" "^peer=$B1:[0-9]+ .*after-update" "b1 (n2) -> a2 (n1) through the new pod"

# 5. Container removal is a CNI DEL: the enrollment goes with it.
pm n1 rm -f -t 2 a1 >/dev/null 2>&1
wl=$("$ZCTL" --netns "/var/run/netns/$(h_ns n1)" --pin-dir "$(h_pin_dir n1)/zmesh" -j workload list)
t_is "$(jq -r --arg a "$A1" '[.[] | select(.address == $a)] | length' <<<"$wl")" "0" "removing container a1 unenrolls it"
t_done
