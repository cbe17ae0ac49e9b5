#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Acceptance of the loaders on a samples corpus, through the binaries a user runs. The corpus
# is the project's own tests/data/samples (in make test) or Istio's published samples as
# written (make test-samples ISTIO_SAMPLES=DIR, see tests/lib/samples.sh):
#   - every file of bookinfo/networking that holds only kinds the waypoint implements
#     (VirtualService, DestinationRule, AuthorizationPolicy) passes `waypoint --check` with
#     destination-rule-all.yaml; a file with any other kind (Gateway, ServiceEntry...) is
#     refused with FILE:LINE naming that kind, never half-loaded;
#   - bookinfo.yaml + bookinfo-versions.yaml + sleep.yaml give the seven pods the bookinfo
#     scenes rely on (tests/lib/k8s.py, as tests/lib/k8s.sh uses it), with their identities;
#     every other Deployment manifest of the corpus gives a pod per Deployment;
#   - every ztunnel local config passes `ztunnel --check`: tests/data/config/localhost.yaml,
#     or with ZTUNNEL_EXAMPLES=DIR every DIR/*.yaml (the reference ztunnel's examples/).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/samples.sh
BUILD=${BUILD:-build}
PY=/usr/bin/python3
WP=$BUILD/bin/waypoint
ZT=$BUILD/bin/ztunnel
MESH=tests/data/l7/bookinfo-mesh.yaml
for b in "$WP" "$ZT"; do [ -x "$b" ] || t_fatal "$b not built (run make)"; done
"$PY" -c 'import yaml' 2>/dev/null || t_fatal "python3-yaml missing (apt-get install python3-yaml)"
S=$(samples_dir 2>&1) || t_fatal "$S"
NET=$S/bookinfo/networking
why=$(samples_need "$S" bookinfo/platform/kube/bookinfo.yaml bookinfo/platform/kube/bookinfo-versions.yaml \
	sleep/sleep.yaml bookinfo/networking/destination-rule-all.yaml 2>&1) || t_fatal "$why"
t_diag "corpus: $S"

# kinds FILE: the distinct kinds of a file's documents, one per line
kinds() {
	"$PY" -c 'import sys, yaml
seen = []
for d in yaml.safe_load_all(open(sys.argv[1])):
    k = isinstance(d, dict) and d.get("kind")
    if k and k not in seen:
        seen.append(k)
print("\n".join(seen))' "$1"
}

n_routing=0
for f in "$NET"/*.yaml; do
	name=${f#"$S"/}
	other=$(kinds "$f" | grep -vxE 'VirtualService|DestinationRule|AuthorizationPolicy' | head -1)
	out=$("$WP" --check --config "$f" --config "$NET/destination-rule-all.yaml" \
		--mesh-config "$MESH" 2>&1)
	st=$?
	if [ -z "$other" ]; then
		n_routing=$((n_routing + 1))
		t_ok "$st" "$name loads (waypoint --check)" || printf '#   %s\n' "$out" | head -5
	else
		t_like "$st $out" "^[1-9][0-9]* .*$(basename "$f"):[0-9]+: .*unsupported kind $other" \
			"$name ($other) refused with FILE:LINE naming the kind"
	fi
done
t_ok "$([ "$n_routing" -ge 5 ]; echo $?)" "the corpus has routing files to load ($n_routing)"

pods=$("$PY" tests/lib/k8s.py pods n1,n2 "$S/bookinfo/platform/kube/bookinfo.yaml" \
	"$S/bookinfo/platform/kube/bookinfo-versions.yaml" "$S/sleep/sleep.yaml" 2>&1)
t_is "$(awk '{print $3, $5}' <<<"$pods" | tr '\n' ' ')" \
	"details-v1-0 bookinfo-details ratings-v1-0 bookinfo-ratings reviews-v1-0 bookinfo-reviews reviews-v2-0 bookinfo-reviews reviews-v3-0 bookinfo-reviews productpage-v1-0 bookinfo-productpage sleep-0 sleep " \
	"bookinfo + versions + sleep: the seven pods of the bookinfo scenes, with their ServiceAccounts"
t_like "$pods" "reviews-v2-0 default bookinfo-reviews app=reviews,version=v2 9080" \
	"reviews-v2 has the labels its subset selects and port 9080"
for f in $(grep -rlx --include='*.yaml' 'kind: Deployment' "$S" | sort); do
	want=$(grep -cx 'kind: Deployment' "$f")
	got=$("$PY" tests/lib/k8s.py pods n1 "$f" 2>&1 | awk 'NF >= 7 && $3 ~ /-[0-9]+$/' |
		sed -E 's/-[0-9]+ / /' | awk '{print $3}' | sort -u | wc -l)
	t_is "$got" "$want" "${f#"$S"/}: one pod per Deployment ($want)"
done

if [ -n "${ZTUNNEL_EXAMPLES:-}" ]; then
	[ -d "$ZTUNNEL_EXAMPLES" ] || t_fatal "ZTUNNEL_EXAMPLES=$ZTUNNEL_EXAMPLES: no such directory (want the reference ztunnel's examples/, holding local-config YAML such as localhost.yaml)"
	configs=$(ls "$ZTUNNEL_EXAMPLES"/*.yaml 2>/dev/null)
	[ -n "$configs" ] || t_fatal "ZTUNNEL_EXAMPLES=$ZTUNNEL_EXAMPLES: no *.yaml there (want the reference ztunnel's examples/, e.g. localhost.yaml)"
else
	configs=tests/data/config/localhost.yaml
fi
for f in $configs; do
	t_run "$(basename "$f") loads (ztunnel --check)" -- "$ZT" --check --config "$f"
done
t_done
