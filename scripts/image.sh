#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make image: the OCI images of zmesh, built with buildah FROM scratch (no base image, nothing
# pulled) and written as OCI archives that `podman load`, `skopeo inspect oci-archive:` and
# `skopeo copy` (to a registry) accept. Each image holds exactly our binaries, the shared
# libraries they load (resolved with ldd on this machine, plus the dynamic loader) or open at
# run time (libcurl and its own), an /etc/passwd with root and the non-root user zmesh
# (65532), and OCI labels (version, source revision). Must run as root (buildah mounts); its
# storage is private and thrown away.
#
#   zmesh-node      ztunnel (entrypoint), zmeshctl, zmesh-cni, the BPF objects
#                   (/usr/lib/zmesh/bpf; the binaries embed them too); runs as root: it
#                   loads BPF, enters network namespaces, binds IP_TRANSPARENT sockets
#   zmesh-waypoint  waypoint; user zmesh
#   zmesh-ca        zmesh-ca; user zmesh
#
# Usage: scripts/image.sh [OUT_DIR]   (default $BUILD/images; BUILD default build)
# Prints one line per image: name, archive, size.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${1:-$BUILD/images}
VERSION=$(sed -n 's/^ZMESH_VERSION := //p' Makefile)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || REVISION="$REVISION-dirty"
SOURCE=https://github.com/zmesh/zmesh

die() {
	echo "image.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (buildah mounts the image root)"
command -v buildah >/dev/null || die "buildah not found: run scripts/install-deps.sh"
for b in ztunnel zmeshctl zmesh-cni waypoint zmesh-ca; do
	[ -x "$BUILD/bin/$b" ] || die "$BUILD/bin/$b not built (run make)"
done
[ -n "$VERSION" ] || die "no ZMESH_VERSION in the Makefile"

mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-image.XXXXXX")
ctr=""
cleanup() {
	[ -z "$ctr" ] || bah rm "$ctr" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
# Private storage: nothing lands in the machine's /var/lib/containers.
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }

# Libraries the daemons open with dlopen() when they need them, which ldd cannot see:
# libcurl for the Kubernetes API (userspace/lib/kube/libcurl.h). Every image's daemon can
# read the API, so every image gets them.
DLOPENED="libcurl.so.4"
dlopen_paths=()
for so in $DLOPENED; do
	p=$(realpath -s "$(${CC:-cc} -print-file-name="$so")")
	[ "${p#/}" != "$p" ] && [ -e "$p" ] || die "$so not found (Debian package libcurl4)"
	dlopen_paths+=("$p")
done

# stage_libs DIR FILE: every library FILE loads, at the paths the loader looks for them.
stage_libs() {
	local dir=$1 lib
	for lib in $(ldd "$2" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'); do
		[ -e "$dir$lib" ] && continue
		mkdir -p "$dir$(dirname "$lib")"
		cp -L "$lib" "$dir$lib"
	done
}

# stage DIR BIN...: BINs, the libraries they load and those they open (DLOPENED).
stage() {
	local dir=$1 b p
	shift
	mkdir -p "$dir/usr/bin" "$dir/etc" "$dir/tmp"
	chmod 1777 "$dir/tmp"
	for b in "$@"; do
		install -m 0755 "$BUILD/bin/$b" "$dir/usr/bin/$b"
		stage_libs "$dir" "$BUILD/bin/$b"
	done
	for p in "${dlopen_paths[@]}"; do
		mkdir -p "$dir$(dirname "$p")"
		[ -e "$dir$p" ] || cp -L "$p" "$dir$p"
		stage_libs "$dir" "$p"
	done
	printf 'root:x:0:0:root:/:/sbin/nologin\nzmesh:x:65532:65532:zmesh:/:/sbin/nologin\n' \
		>"$dir/etc/passwd"
	printf 'root:x:0:\nzmesh:x:65532:\n' >"$dir/etc/group"
}

# build NAME USER ENTRYPOINT DESCRIPTION: the staged $work/NAME as image NAME:VERSION.
build() {
	local name=$1 user=$2 entry=$3 desc=$4 img
	ctr=$(bah from --name "zmesh-build-$name" scratch)
	bah copy "$ctr" "$work/$name/" / >/dev/null
	bah config --user "$user" --entrypoint "[\"$entry\"]" --cmd '[]' --workingdir / \
		--env PATH=/usr/bin \
		--label org.opencontainers.image.title="$name" \
		--label org.opencontainers.image.description="$desc" \
		--label org.opencontainers.image.version="$VERSION" \
		--label org.opencontainers.image.revision="$REVISION" \
		--label org.opencontainers.image.source="$SOURCE" \
		--label org.opencontainers.image.licenses=Apache-2.0 \
		--port 15008 --port 15020 --port 15021 "$ctr"
	img=$(bah commit --quiet --rm --format oci "$ctr" "localhost/$name:$VERSION")
	ctr=""
	rm -f "$OUT/$name.tar"
	bah push --quiet "$img" "oci-archive:$OUT/$name.tar:localhost/$name:$VERSION"
	printf '%-15s %s %s\n' "$name" "$OUT/$name.tar" "$(du -h "$OUT/$name.tar" | cut -f1)"
}

stage "$work/zmesh-node" ztunnel zmeshctl zmesh-cni
mkdir -p "$work/zmesh-node/usr/lib/zmesh/bpf" "$work/zmesh-node/var/run/zmesh"
install -m 0644 "$BUILD"/bpf/*.bpf.o "$work/zmesh-node/usr/lib/zmesh/bpf/"
stage "$work/zmesh-waypoint" waypoint
stage "$work/zmesh-ca" zmesh-ca

build zmesh-node 0:0 /usr/bin/ztunnel "zmesh node agent: ztunnel, zmeshctl, zmesh-cni, BPF datapath"
build zmesh-waypoint 65532:65532 /usr/bin/waypoint "zmesh waypoint: L7 policy and routing over HBONE"
build zmesh-ca 65532:65532 /usr/bin/zmesh-ca "zmesh-ca: workload certificates for ztunnels"
