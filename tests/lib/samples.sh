#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Where the Kubernetes and Istio inputs of the bookinfo scenes come from. By default the
# project's own files, tests/data/samples/ (a bookinfo-style application and its routing, in
# Istio's formats under Istio's file names); with ISTIO_SAMPLES set, Istio's published samples
# as written, the acceptance corpus of `make test-samples` and `make demo ISTIO_SAMPLES=DIR`.
# Both trees have the same relative paths (bookinfo/platform/kube/bookinfo.yaml,
# bookinfo/networking/..., sleep/sleep.yaml), so a test names a file once for both.
#
#   samples_dir      prints the samples tree to use: tests/data/samples, or ISTIO_SAMPLES
#                    (the samples/ directory of an Istio release, or a directory holding one
#                    as samples/). A directory that is neither: one line on stderr naming the
#                    path and the file expected there, and status 1 (never a silent fallback).
#   samples_need DIR FILE...   status 1, with a line naming the first FILE missing in DIR

SAMPLES_OWN=$(cd "$(dirname "${BASH_SOURCE[0]}")/../data/samples" && pwd)
SAMPLES_MARK=bookinfo/platform/kube/bookinfo.yaml

samples_dir() {
	local d=${ISTIO_SAMPLES:-} c
	if [ -z "$d" ]; then
		echo "$SAMPLES_OWN"
		return 0
	fi
	if [ ! -d "$d" ]; then
		echo "ISTIO_SAMPLES=$d: no such directory (want the samples/ directory of an Istio release, holding $SAMPLES_MARK)" >&2
		return 1
	fi
	for c in "$d" "$d/samples"; do
		if [ -f "$c/$SAMPLES_MARK" ]; then
			(cd "$c" && pwd)
			return 0
		fi
	done
	echo "ISTIO_SAMPLES=$d: neither $d/$SAMPLES_MARK nor $d/samples/$SAMPLES_MARK exists (want the samples/ directory of an Istio release)" >&2
	return 1
}

samples_need() {
	local dir=$1 f
	shift
	for f in "$@"; do
		if [ ! -f "$dir/$f" ]; then
			echo "samples: $dir/$f not found (the samples tree lacks a file this test needs)" >&2
			return 1
		fi
	done
}

# Run as a program ("tests/lib/samples.sh check"): print the samples tree or fail, for make.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ "${1:-}" = check ] || { echo "usage: $0 check" >&2; exit 2; }
	samples_dir || exit 2
fi
