#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# zmeshctl's command line, bpftool's conventions, without touching the system: every command
# here either needs nothing (version, help) or is pointed at a pin directory that does not
# exist, so reaching the command shows as its "not loaded" error (exit 1) and a dispatch
# failure as a usage error (exit 2). OBJECT COMMAND, old spellings as aliases, unique-prefix
# matching, help per object, -j compact and -p pretty JSON, short usage on a usage error,
# errors naming the bad word, and the bash completion reading the command table. TAP output.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
Z=$BUILD/bin/zmeshctl
[ -x "$Z" ] || t_fatal "$Z not built (run make)"
NOPIN=/nonexistent/zmesh-test-pins
run() { # run ARGS...: "EXIT|output" (stdout and stderr, lines joined by ~)
	local out rc
	out=$("$Z" "$@" 2>&1)
	rc=$?
	printf '%s|%s' "$rc" "$out" | tr '\n' '~'
}

t_like "$(run version)" '^0\|zmeshctl \(zmesh\) [0-9.]+ \(revision [^)]+\), datapath ABI [0-9]+$' "version"
t_like "$(run v)" '^0\|zmeshctl \(zmesh\)' "v: a unique prefix of version"
t_like "$(run --version)" '^0\|zmeshctl \(zmesh\)' "--version"
t_like "$(run -j version)" '^0\|\{"version":"[0-9.]+","revision":"[^"]+","abi_version":[0-9]+\}$' "-j: compact JSON"
t_like "$(run -p version)" '^0\|\{~  "version": "[0-9.]+",~  "revision":' "-p: indented JSON"

# Dispatch reaches the command (the missing pin directory is its error, exit 1).
for words in "map list" "m l" "ma li" "workload list" "w l" "stats show" "st sh" "stats" \
	"conn list" "co l" "policy list" "p l" "po li"; do
	out=$(run $words --pin-dir $NOPIN)
	t_like "$out" "^1\|zmeshctl: error: .*$NOPIN|^1\|zmeshctl: error: .*(not loaded|No such)" "zmeshctl $words reaches its command"
done
t_like "$(run -j m l --pin-dir $NOPIN)" '^1\|\{"error":' "-j errors are JSON too"
t_like "$(run enroll --pin-dir $NOPIN)" "^2\|zmeshctl: error: enroll needs --ip and --veth" \
	"old spelling enroll still works (its own usage error)"
t_like "$(run workload enroll --pin-dir $NOPIN)" "^2\|zmeshctl: error: enroll needs --ip and --veth" \
	"workload enroll: the same command"
t_like "$(run unenroll --pin-dir $NOPIN)" "^2\|zmeshctl: error: .*(--ip|--veth)" "old spelling unenroll still works"

# Usage errors: exit 2, the bad word named, a short usage.
out=$(run c l)
t_like "$out" '^2\|zmeshctl: error: ambiguous object "c": conn, ca, cert' "c is ambiguous: the candidates named"
out=$(run frob)
t_like "$out" '^2\|zmeshctl: error: unknown object "frob"' "unknown object named"
t_ok "$([ "$(tr '~' '\n' <<<"$out" | wc -l)" -le 5 ]; echo $?)" "... with a short usage, not the manual"
t_like "$(run map frob)" '^2\|zmeshctl: error: unknown command "map frob" \(zmeshctl map help\)' "unknown command named"
t_like "$(run po s --file /nonexistent/rules.json --pin-dir $NOPIN)" '^1\|zmeshctl: error: ' \
	"po s: policy set, the only s (an error, not a usage error)"
t_like "$(run map list --frob)" '^2\|zmeshctl: error: unknown option --frob' "unknown option named"
t_like "$(run map dump)" '^2\|' "map dump without NAME: usage error"
t_like "$(run map)" '^2\|zmeshctl: map needs a command:~  zmeshctl map list' \
	"an object without a command lists its commands"
t_like "$(run)" '^2\|Usage: zmeshctl \[OPTIONS\] OBJECT COMMAND' "no arguments: short usage"

# Help.
t_like "$(run map help)" '^0\|  zmeshctl map list ~		the datapath.s maps~  zmeshctl map dump NAME' \
	"map help: its commands with what they do"
t_like "$(run help)" '^0\|Usage: zmeshctl .*zmeshctl workload enroll .*zmeshctl version.*unique prefix' "help: every command"
t_like "$(run help commands)" '^0\|datapath load~.*~map dump~.*~version$' \
	"help commands: the table, for completion"

# Bash completion against this binary.
comp() { # comp WORDS...: the completions of the last word
	bash -c '
source scripts/completion/zmeshctl.bash
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_zmeshctl
printf "%s\n" "${COMPREPLY[@]}"' _ "$Z" "$@" | sort | tr '\n' ' '
}
t_is "$(comp '')" "ca cert conn datapath help map policy stats version workload " "completion: objects"
t_is "$(comp map '')" "dump help list " "completion: map's commands"
t_is "$(comp workload e)" "enroll " "completion: workload e -> enroll"
t_like "$(comp map list --p)" "--pin-dir --pretty" "completion: global options"
t_like "$(comp datapath load --x)" "--xdp" "completion: a command's own options"
t_done
