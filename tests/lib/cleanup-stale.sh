#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Removes what earlier harness runs left behind when they were killed before their own
# cleanup ran (kill -9, a crashed runner, a lost machine). A run is stale when the process
# recorded as its owner is gone; live runs are never touched.
set -u
. "$(dirname "$0")/cleanup.sh"
root=${ZMESH_STATE_ROOT:-/run/zmesh-test}
[ -d "$root" ] || exit 0
for dir in "$root"/*/; do
	[ -d "$dir" ] || continue
	dir=${dir%/}
	read -r pid st <"$dir/owner" 2>/dev/null || { h__cleanup_state "$dir"; continue; }
	if [ "$(h__starttime "$pid")" != "$st" ]; then
		echo "cleanup-stale: removing leftovers of run $(basename "$dir") (owner $pid gone)" >&2
		h__cleanup_state "$dir"
	fi
done
exit 0
