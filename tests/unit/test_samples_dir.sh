#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Choosing the samples corpus (tests/lib/samples.sh): by default the project's own
# tests/data/samples; ISTIO_SAMPLES=DIR takes an Istio release's samples/ tree or a directory
# holding one as samples/; a missing or wrong DIR is one line naming the path and the file
# expected, exit 2, and the samples tier of tests/run.sh then runs nothing (never a silent
# skip counted as a pass).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
tmp=$(mktemp -d /tmp/zmesh-samples.XXXXXX) || t_fatal "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
own=$PWD/tests/data/samples

t_is "$(ISTIO_SAMPLES= tests/lib/samples.sh check)" "$own" "default: the project's own tests/data/samples"
mkdir -p "$tmp/release/samples"
cp -r "$own/bookinfo" "$own/sleep" "$tmp/release/samples/"
t_is "$(ISTIO_SAMPLES=$tmp/release tests/lib/samples.sh check)" "$tmp/release/samples" \
	"a directory holding samples/ (a corpus checkout) resolves to its samples/"
t_is "$(ISTIO_SAMPLES=$tmp/release/samples tests/lib/samples.sh check)" "$tmp/release/samples" \
	"an Istio release's samples/ directory is taken as it is"

out=$(ISTIO_SAMPLES=$tmp/missing tests/lib/samples.sh check 2>&1)
t_is "$?" 2 "a missing directory: exit 2"
t_like "$out" "^ISTIO_SAMPLES=$tmp/missing: no such directory .*bookinfo/platform/kube/bookinfo.yaml" \
	"a missing directory: the line names the path and the file expected"
t_is "$(wc -l <<<"$out")" 1 "a missing directory: one line"
mkdir -p "$tmp/empty"
out=$(ISTIO_SAMPLES=$tmp/empty tests/lib/samples.sh check 2>&1)
t_is "$?" 2 "a directory without the samples: exit 2"
t_like "$out" "^ISTIO_SAMPLES=$tmp/empty: neither $tmp/empty/bookinfo/platform/kube/bookinfo.yaml nor" \
	"a directory without the samples: the line names both paths tried"

out=$(ISTIO_SAMPLES=$tmp/empty BUILD=${BUILD:-build} tests/run.sh samples 2>&1)
t_is "$?" 2 "tests/run.sh samples with a wrong ISTIO_SAMPLES: exit 2"
t_ok "$(grep -q 'passed' <<<"$out"; [ $? = 1 ]; echo $?)" "and no test ran (no summary line)"
out=$(env -u ISTIO_SAMPLES BUILD=${BUILD:-build} tests/run.sh samples 2>&1)
t_is "$?" 2 "tests/run.sh samples without ISTIO_SAMPLES: exit 2"
t_like "$out" "needs ISTIO_SAMPLES=DIR" "and says what it needs"
t_done
