#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Stops early, naming what is missing and how to get it, before a build or a test run fails
# somewhere deep inside. Usage: check-prereqs.sh build | run
#   build: compilers, bpftool and the -dev packages
#   run:   additionally root, kernel BTF, cgroup v2 and the tools the tests drive
set -u
mode=${1:-build}
missing=()
hint="run, as root: ./scripts/install-deps.sh"

need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("command '$1' (Debian package $2)"); }
# Headers live in /usr/include or its multiarch directory (libcurl's do).
need_hdr() {
	[ -e "/usr/include/$1" ] || compgen -G "/usr/include/*/$1" >/dev/null ||
		missing+=("header <$1> (Debian package $2)")
}

need_cmd clang clang
need_cmd bpftool bpftool
need_cmd gcc gcc
need_cmd pkg-config pkg-config
need_hdr bpf/libbpf.h libbpf-dev
need_hdr gelf.h libelf-dev
need_hdr zlib.h zlib1g-dev
need_hdr openssl/ssl.h libssl-dev
need_hdr nghttp2/nghttp2.h libnghttp2-dev
need_hdr yaml.h libyaml-dev
need_hdr json-c/json.h libjson-c-dev
need_hdr curl/curl.h libcurl4-openssl-dev
need_hdr libmnl/libmnl.h libmnl-dev
need_hdr pcre2.h libpcre2-dev
need_hdr protobuf-c/protobuf-c.h libprotobuf-c-dev
need_cmd protoc-c protobuf-c-compiler

if [ ! -r /sys/kernel/btf/vmlinux ]; then
	missing+=("kernel BTF (/sys/kernel/btf/vmlinux): boot a kernel built with CONFIG_DEBUG_INFO_BTF=y")
	hint="$hint; a BTF-enabled kernel is needed"
fi

if [ "$mode" = run ]; then
	[ "$(id -u)" = 0 ] || missing+=("root: the tests create network namespaces and load BPF (run as root or with sudo)")
	grep -q '^[^ ]* [^ ]* cgroup2 ' /proc/mounts || [ -e /sys/fs/cgroup/cgroup.controllers ] ||
		missing+=("cgroup v2: mount it (mount -t cgroup2 none /sys/fs/cgroup/unified) or boot with systemd.unified_cgroup_hierarchy=1")
	need_cmd ip iproute2
	need_cmd tc iproute2
	need_cmd prove perl
	need_cmd iperf3 iperf3
	need_cmd tcpdump tcpdump
	need_cmd jq jq
	need_cmd curl curl
	[ -x /usr/bin/python3 ] || missing+=("/usr/bin/python3 (Debian package python3)")
	/usr/bin/python3 -c 'import kubernetes' 2>/dev/null ||
		missing+=("python module kubernetes (Debian package python3-kubernetes)")
	[ -x /usr/lib/cni/ptp ] || missing+=("/usr/lib/cni/ptp (Debian package containernetworking-plugins)")
	need_cmd buildah buildah
	need_cmd podman podman
	need_cmd skopeo skopeo
	need_cmd runc runc
	need_cmd catatonit catatonit
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "zmesh: missing prerequisites:" >&2
	printf '  - %s\n' "${missing[@]}" >&2
	echo "$hint" >&2
	exit 1
fi
