#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs, from Debian packages only, everything zmesh needs to build, test, benchmark and
# run its demo. Idempotent: packages already present are left as they are. Must run as root.
# Usage (as root): ./scripts/install-deps.sh [--no-demo]
#   The README's first command: installs, builds and runs the demo (make demo) unless
#   --no-demo is given (CI uses --no-demo and then runs make test).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: must run as root (try: sudo $0)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "install-deps.sh: apt-get not found: zmesh installs its dependencies from Debian packages (Debian 12 or newer)" >&2
	exit 1
fi

packages=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libssl-dev libnghttp2-dev libyaml-dev libjson-c-dev libmnl-dev libpcre2-dev
	libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev
	libclang-rt-14-dev
	# tests and harness
	iproute2 iptables nftables perl procps psmisc tcpdump jq curl openssl
	python3 python3-h2 python3-grpcio python3-protobuf python3-yaml python3-websockets
	# Kubernetes: images (make image), the CNI plugin's tests, the manifests' schema test
	buildah podman skopeo runc conmon catatonit containernetworking-plugins python3-kubernetes
	# benchmarks
	iperf3 stunnel4 haproxy wrk linux-perf
	# lint
	clang-format
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "install-deps.sh: all packages present"
fi

cd "$(dirname "$0")/.."
scripts/check-prereqs.sh run
if [ "${1:-}" != --no-demo ]; then
	make
	make demo
fi
