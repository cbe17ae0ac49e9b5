#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Writes the Kubernetes manifests from scripts/deploy/templates/**/*.yaml with the values of
# scripts/deploy/settings.env (or of environment variables of the same names) filled in for
# the @NAME@ placeholders. Usage: scripts/deploy/render.sh [OUT_DIR]
# (default scripts/deploy/kubernetes, the committed copy; `make test` checks it is current).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/kubernetes}
vars=(ZMESH_IMAGE_PREFIX ZMESH_VERSION ZMESH_TRUST_DOMAIN ZMESH_NAMESPACE ZMESH_UPLINK
	ZMESH_UPGRADE_DRAIN_SECONDS)
declare -A val
while IFS='=' read -r k v; do
	case $k in ZMESH_*) val[$k]=$v ;; esac
done <"$here/settings.env"
for k in "${vars[@]}"; do
	[ -n "${!k:-}" ] && val[$k]=${!k}
	[ -n "${val[$k]:-}" ] || { echo "render.sh: $k has no value" >&2; exit 1; }
	case ${val[$k]} in *[!A-Za-z0-9._/:,-]*) echo "render.sh: $k=${val[$k]}: unexpected characters" >&2; exit 1 ;; esac
done
args=()
for k in "${vars[@]}"; do args+=(-e "s|@$k@|${val[$k]}|g"); done
(cd "$here/templates" && find . -name '*.yaml' | sort) | while read -r t; do
	dst=$out/${t#./}
	mkdir -p "$(dirname "$dst")"
	sed "${args[@]}" "$here/templates/$t" >"$dst.tmp"
	if grep -n '@ZMESH_[A-Z_]*@' "$dst.tmp" >&2; then
		echo "render.sh: unknown placeholder in templates/$t" >&2
		rm -f "$dst.tmp"
		exit 1
	fi
	mv "$dst.tmp" "$dst"
done
