# SPDX-License-Identifier: Apache-2.0
#
# The foreign HBONE peer (tests/tools/h2peer.py: Debian's python3-h2 and Python's ssl) as the
# shell tests run it. Sources tests/lib/tap.sh unless it is loaded (a second load would reset
# its counters).
#
# API:
#   p_need                   bail out unless PY imports h2 and ssl
#   p_tap PREFIX < LINES     TAP from the peer's output: "PASS what" is ok, "FAIL what: why"
#                            is not ok, both named "PREFIX: what"; other lines are diagnostics
#
# Variables set when sourced: PY (/usr/bin/python3, Debian's: it has python3-h2, which the
# python3 first in PATH may lack); PEER (tests/tools/h2peer.py, relative to the repository).

declare -F t_ok >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

PY=/usr/bin/python3
PEER=tests/tools/h2peer.py

p_need() {
	"$PY" -c 'import h2, ssl' 2>/dev/null ||
		t_fatal "$PY lacks h2 (apt-get install python3-h2)"
}

p_tap() {
	local line
	while IFS= read -r line; do
		case $line in
		PASS\ *) t_ok 0 "$1: ${line#PASS }" ;;
		FAIL\ *) t_ok 1 "$1: ${line#FAIL }" ;;
		*) t_diag "$line" ;;
		esac
	done
}
