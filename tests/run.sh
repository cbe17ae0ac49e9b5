#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs every test tier and prints one closing line "N passed, N failed".
# Usage: tests/run.sh [unit|bpf|integration|samples|conformance ...]
#        (default: unit, bpf, integration)
#
# The samples tier (make test-samples) is the acceptance corpus, run on demand: the loader
# checks (tests/samples/) and every integration test marked "# corpus: istio-samples", on the
# samples tree ISTIO_SAMPLES names (an Istio release's samples/; tests/lib/samples.sh). It
# refuses to start without a usable ISTIO_SAMPLES. The conformance tier (make
# test-conformance) runs tests/conformance/*.sh on Istio's own L7 cases, read by path from
# ISTIO_CONFORMANCE (tests/lib/conformance.sh), and refuses to start without them. The other
# tiers read only the repository.
#
# Each test is a program printing TAP. A test point counts as passed only on "ok" without a
# SKIP or TODO directive; "not ok", a "Bail out!", a missing or wrong plan, a non-zero exit, a
# crash or a timeout each count as failed, so a test that cannot run never passes by being
# skipped. Leftovers of earlier killed runs are removed first (tests/lib/cleanup-stale.sh).
# Logs: $BUILD/test-logs/<tier>/<name>.log.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD ZMESH_ROOT=$PWD
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(unit bpf integration)
timeout_s=${ZMESH_TEST_TIMEOUT:-300}
total_pass=0
total_fail=0
logdir=$BUILD/test-logs

for tier in "${tiers[@]}"; do
	[ "$tier" = conformance ] || continue
	. tests/lib/conformance.sh
	conformance_dir >/dev/null || exit 2
done
for tier in "${tiers[@]}"; do
	[ "$tier" = samples ] || continue
	if [ -z "${ISTIO_SAMPLES:-}" ]; then
		echo "tests/run.sh: the samples tier needs ISTIO_SAMPLES=DIR (the samples/ directory of an Istio release)" >&2
		exit 2
	fi
	. tests/lib/samples.sh
	samples_dir >/dev/null || exit 2
done

if ! scripts/check-prereqs.sh run; then
	echo "0 passed, 1 failed"
	exit 1
fi
tests/lib/cleanup-stale.sh

list_tests() {
	case "$1" in
	unit) ls "$BUILD"/tests/unit/test_* tests/unit/test_*.sh tests/samples/*.sh 2>/dev/null |
		grep -v '\.d$' ;;
	bpf) ls "$BUILD"/tests/bpf/test_* 2>/dev/null | grep -v '\.d$' ;;
	integration) ls tests/integration/*.sh 2>/dev/null ;;
	samples)
		ls tests/samples/*.sh 2>/dev/null
		grep -lx '# corpus: istio-samples.*' tests/integration/*.sh
		;;
	conformance) ls tests/conformance/*.sh 2>/dev/null ;;
	*) echo "tests/run.sh: unknown tier '$1' (want unit, bpf, integration, samples or conformance)" >&2; return 1 ;;
	esac
}

# run_one TIER PATH: runs one TAP program, adds its counts to the totals.
run_one() {
	local tier=$1 t=$2 name log rc pass fail plan points
	name=$(basename "$t")
	log=$logdir/$tier/$name.log
	mkdir -p "$logdir/$tier"
	timeout --foreground -k 10 "$timeout_s" "$t" >"$log" 2>&1 </dev/null
	rc=$?
	pass=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	# SKIP/TODO points are not passes.
	skip=$(grep -cE '^ok [0-9]+.*# *(SKIP|TODO)' "$log" | tr -d ' ')
	pass=$((pass - skip))
	fail=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	fail=$((fail + skip))
	points=$((pass + fail))
	plan=$(grep -oE '^1\.\.[0-9]+' "$log" | tail -1 | cut -d. -f3)
	local why=""
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		why="timed out after ${timeout_s}s"
	elif grep -q '^Bail out!' "$log"; then
		why=$(grep -m1 '^Bail out!' "$log")
	elif [ -z "$plan" ]; then
		why="no TAP plan (crashed or did not run?)"
	elif [ "$plan" != "$points" ]; then
		why="planned $plan test points, saw $points"
	elif [ "$plan" = 0 ]; then
		why="ran no test points"
	elif [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
		why="exit status $rc"
	fi
	if [ -n "$why" ]; then
		fail=$((fail + 1))
	fi
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	if [ "$fail" = 0 ]; then
		printf '%-13s %-40s ok (%d)\n' "$tier" "$name" "$pass"
	else
		printf '%-13s %-40s FAILED (%d passed, %d failed%s) log: %s\n' "$tier" "$name" \
			"$pass" "$fail" "${why:+; $why}" "$log"
		grep -E '^not ok|^#' "$log" | head -40 | sed 's/^/    /'
	fi
}

for tier in "${tiers[@]}"; do
	tests=$(list_tests "$tier") || { total_fail=$((total_fail + 1)); continue; }
	if [ -z "$tests" ]; then
		echo "$tier: no tests found (was 'make' run?)"
		total_fail=$((total_fail + 1))
		continue
	fi
	for t in $tests; do
		run_one "$tier" "$t"
	done
done

echo "${total_pass} passed, ${total_fail} failed"
[ "$total_fail" = 0 ]
