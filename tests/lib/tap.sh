# SPDX-License-Identifier: Apache-2.0
#
# TAP for the shell tiers. t_ok/t_is print one test point each; t_done prints the plan and
# sets the exit status. t_fatal marks a failure that makes the rest of the test meaningless
# and stops (cleanup still runs through the harness trap).

T_N=0
T_FAILED=0

t_ok() { # t_ok STATUS NAME...
	local st=$1
	shift
	T_N=$((T_N + 1))
	if [ "$st" = 0 ]; then
		echo "ok $T_N - $*"
	else
		echo "not ok $T_N - $*"
		T_FAILED=$((T_FAILED + 1))
	fi
	return "$st"
}

t_run() { # t_run NAME -- CMD...: passes when CMD exits 0; shows its output otherwise
	local name=$1 out st
	shift
	[ "$1" = -- ] && shift
	out=$("$@" 2>&1)
	st=$?
	t_ok "$st" "$name" || printf '%s\n' "$out" | head -20 | sed 's/^/#   /'
	return "$st"
}

t_is() { # t_is GOT WANT NAME...
	local got=$1 want=$2
	shift 2
	if [ "$got" = "$want" ]; then
		t_ok 0 "$@"
	else
		t_ok 1 "$@"
		echo "#   got:  '$got'"
		echo "#   want: '$want'"
		return 1
	fi
}

t_like() { # t_like GOT REGEX NAME...
	local got=$1 re=$2
	shift 2
	if printf '%s' "$got" | grep -Eq -- "$re"; then
		t_ok 0 "$@"
	else
		t_ok 1 "$@"
		echo "#   got:  '$(printf '%s' "$got" | head -5)'"
		echo "#   want match: /$re/"
		return 1
	fi
}

t_diag() { echo "# $*"; }

t_fatal() {
	echo "Bail out! $*"
	exit 1
}

t_done() {
	# The harness's last checks (sanitizer reports), when the test runs under it.
	if declare -F h_final_checks >/dev/null; then h_final_checks; fi
	echo "1..$T_N"
	[ "$T_FAILED" = 0 ]
}
