#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Where the Istio conformance corpus is: a directory of Istio's own L7 cases (VirtualService,
# DestinationRule, AuthorizationPolicy files lifted from Istio's test suites, each with the
# outcome Istio expects in its header), read by path by the conformance tier
# (make test-conformance ISTIO_CONFORMANCE=DIR, tests/conformance/), never copied into the
# repository.
#
#   conformance_dir   prints the corpus directory, ISTIO_CONFORMANCE; unset, missing or
#                     without the expected files: one line on stderr naming the path and the
#                     file expected there, and status 1 (never a silent skip)

CONFORMANCE_MARK=c01-header-routing.yaml
CONFORMANCE_FILES="c01-header-routing.yaml c02-weird-header.yaml c03-pseudo-header.yaml
c04-without-headers.yaml c05-without-headers-present.yaml c06-without-headers-any.yaml
c07-redirect.yaml c08-redirect-request-port.yaml c09-redirect-prefix-rewrite.yaml
c10-rewrite-uri.yaml c11-header-operations.yaml c12-cors.yaml c13-fault-abort.yaml
c14-catch-all.yaml c15-split-80-20.yaml c16a-ratings-delay.yaml c16b-reviews-timeout.yaml
c17-retry-conditions.yaml c18-authz-l7.yaml ztunnel-policies.yaml"

conformance_dir() {
	local d=${ISTIO_CONFORMANCE:-} f
	if [ -z "$d" ]; then
		echo "ISTIO_CONFORMANCE is not set (want the directory of Istio's conformance cases, holding $CONFORMANCE_MARK)" >&2
		return 1
	fi
	if [ ! -d "$d" ]; then
		echo "ISTIO_CONFORMANCE=$d: no such directory (want the directory of Istio's conformance cases, holding $CONFORMANCE_MARK)" >&2
		return 1
	fi
	for f in $CONFORMANCE_FILES; do
		if [ ! -f "$d/$f" ]; then
			echo "ISTIO_CONFORMANCE=$d: $d/$f not found (want the directory of Istio's conformance cases, holding $CONFORMANCE_MARK)" >&2
			return 1
		fi
	done
	(cd "$d" && pwd)
}

# Run as a program ("tests/lib/conformance.sh check"): print the directory or fail, for make.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ "${1:-}" = check ] || { echo "usage: $0 check" >&2; exit 2; }
	conformance_dir || exit 2
fi
