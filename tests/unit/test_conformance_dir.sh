#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Finding the Istio conformance corpus (tests/lib/conformance.sh): ISTIO_CONFORMANCE names a
# directory holding every case file the conformance tier reads; unset, missing, or without
# one of those files is one line naming the path and the file expected, exit 2, and
# tests/run.sh conformance then runs nothing (never a silent skip counted as a pass).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/conformance.sh
tmp=$(mktemp -d /tmp/zmesh-conformance.XXXXXX) || t_fatal "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

for f in $CONFORMANCE_FILES; do : >"$tmp/$f"; done
t_is "$(ISTIO_CONFORMANCE=$tmp tests/lib/conformance.sh check)" "$tmp" "a directory with every case file is taken"
out=$(ISTIO_CONFORMANCE= tests/lib/conformance.sh check 2>&1)
t_is "$?" 2 "unset: exit 2"
t_like "$out" "^ISTIO_CONFORMANCE is not set .*c01-header-routing.yaml" "unset: one line naming what is wanted"
out=$(ISTIO_CONFORMANCE=$tmp/missing tests/lib/conformance.sh check 2>&1)
t_is "$?" 2 "a missing directory: exit 2"
t_like "$out" "^ISTIO_CONFORMANCE=$tmp/missing: no such directory .*c01-header-routing.yaml" \
	"a missing directory: the line names the path and the file expected"
t_is "$(wc -l <<<"$out")" 1 "a missing directory: one line"
rm "$tmp/c12-cors.yaml"
out=$(ISTIO_CONFORMANCE=$tmp tests/lib/conformance.sh check 2>&1)
t_is "$?" 2 "a case file missing: exit 2"
t_like "$out" "^ISTIO_CONFORMANCE=$tmp: $tmp/c12-cors.yaml not found" "a case file missing: named"
out=$(BUILD=/nonexistent ISTIO_CONFORMANCE=$tmp tests/run.sh conformance 2>&1)
t_is "$?" 2 "tests/run.sh conformance refuses to start on a wrong directory"
t_like "$out" "c12-cors.yaml not found" "with that one line"
t_ok "$(grep -q 'passed' <<<"$out"; [ $? = 1 ]; echo $?)" "and runs nothing (no pass count)"
t_done
