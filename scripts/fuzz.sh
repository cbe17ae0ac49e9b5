#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make fuzz: runs every libFuzzer target given on the command line for FUZZ_SECONDS (default
# 60) each, seeded from tests/data/<subject>/ (fuzz_config -> tests/data/config), from every
# directory listed in tests/fuzz/<target>.seeds (one per line, to reuse fixtures kept
# elsewhere), and with tests/fuzz/<target>.dict when present. Findings land in
# build/fuzz/findings/<target>/.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
rc=0
for bin in "$@"; do
	name=$(basename "$bin")
	subject=${name#fuzz_}
	corpus=build/fuzz/corpus/$name
	findings=build/fuzz/findings/$name
	mkdir -p "$corpus" "$findings"
	[ -d "tests/data/$subject" ] && cp -n tests/data/"$subject"/* "$corpus"/ 2>/dev/null
	if [ -f "tests/fuzz/$name.seeds" ]; then
		while IFS= read -r dir; do
			[ -n "$dir" ] && [ -d "$dir" ] && cp -n "$dir"/* "$corpus"/ 2>/dev/null
		done <"tests/fuzz/$name.seeds"
	fi
	dict=()
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	echo "fuzz: $name for ${secs}s (corpus $corpus)"
	"$bin" -max_total_time="$secs" -artifact_prefix="$findings/" "${dict[@]}" "$corpus" \
		>"build/fuzz/$name.log" 2>&1 || { echo "fuzz: $name found a problem, see build/fuzz/$name.log and $findings"; rc=1; }
	tail -1 "build/fuzz/$name.log"
done
exit $rc
