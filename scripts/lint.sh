#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make lint: clang-format (the repo's .clang-format) over every C source and header, and
# bash -n over every shell script. Prints the files that differ; exits 1 if any do.
set -u
cd "$(dirname "$0")/.."
rc=0
command -v clang-format >/dev/null || { echo "lint: clang-format not found (Debian package clang-format)" >&2; exit 1; }
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find bpf include userspace tests -name '*.[ch]'); do
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "lint: $f is not clang-formatted (clang-format -i $f)"
		rc=1
	fi
done
for f in $(git ls-files '*.sh' .ci/run 2>/dev/null); do
	bash -n "$f" || { echo "lint: $f: syntax error"; rc=1; }
done
exit $rc
