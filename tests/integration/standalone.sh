#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The repository stands alone: a clone of HEAD in an empty temporary directory, with nothing
# beside it, names no file outside itself, builds, and passes its unit tier (which reads the
# project's own inputs: tests/data/samples, tests/data/config/localhost.yaml). Also refused:
# the environment variable earlier tests used to find outside inputs. .ci/ may name the
# acceptance corpus CI runs on demand, so it is the one place left out of the search.
#
# Outside a git checkout (an exported tree) the same checks run on a copy of the working tree
# without build output.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
root=$PWD
tmp=$(mktemp -d /tmp/zmesh-standalone.XXXXXX) || t_fatal "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
clone=$tmp/zmesh

if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	t_run "git clone of HEAD into an empty directory" -- git clone -q --no-hardlinks "$root" "$clone"
	files() { git -C "$clone" ls-files -- . ':!.ci'; }
else
	t_diag "not a git checkout: checking a copy of the working tree"
	mkdir -p "$clone"
	tar -C "$root" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$clone" -xf -
	t_ok "$?" "copy of the tree into an empty directory"
	files() { (cd "$clone" && find . -path ./.ci -prune -o -type f -print | sed 's|^\./||'); }
fi
[ -f "$clone/Makefile" ] || t_fatal "no Makefile in $clone"
t_ok "$([ ! -e "$tmp/shared" ]; echo $?)" "nothing beside the clone ($tmp holds only zmesh/)"

# The patterns are assembled from pieces so this file does not match them itself.
up='\.\.' shared=shared
outside="$up/$shared|ZMESH_${shared^^}_DIR"
hits=$(cd "$clone" && files | xargs -d '\n' grep -nE -- "$outside" 2>/dev/null)
t_is "$hits" "" "no tracked file (outside .ci/) names the directory beside the checkout, or its variable"
notes="DESIGN""\.md|STYLE""\.md"
hits=$(cd "$clone" && files | xargs -d '\n' grep -nE -- "$notes" 2>/dev/null)
t_is "$hits" "" "no tracked file sends readers to design notes the repository does not hold"
for doc in $(cd "$clone" && grep -oE '\]\(([^)#]+)\)' README.md | sed -E 's/^\]\(|\)$//g' | grep -v '://' | sort -u); do
	t_ok "$([ -e "$clone/$doc" ]; echo $?)" "README links to $doc, which the clone has"
done

# A plain build, whatever the outer run is (make SANITIZE=1 test passes SANITIZE and BUILD down).
t_run "make in the clone builds everything" -- env -u MAKEFLAGS -u MAKELEVEL -u BUILD -u SANITIZE make -C "$clone" -j2
out=$(cd "$clone" && env -u ISTIO_SAMPLES -u ZTUNNEL_EXAMPLES BUILD=build tests/run.sh unit 2>&1)
st=$?
t_ok "$st" "the clone's unit tier passes on its own inputs ($(tail -1 <<<"$out"))" ||
	grep -E 'FAILED|^ +not ok' <<<"$out" | head -20 | sed 's/^/#   /'
t_like "$(tail -1 <<<"$out")" "^[1-9][0-9]* passed, 0 failed$" "and ends with N passed, 0 failed"
t_done
