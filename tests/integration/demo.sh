#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make demo keeps working: both scenes (scripts/demo.sh, the L4 mesh; scripts/demo-waypoint.sh,
# bookinfo through a waypoint) run to the end and say what the README promises.
# corpus: istio-samples (make test-samples runs it on Istio's bookinfo too)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
export BUILD

out=$(timeout 120 scripts/demo.sh 2>&1)
t_is "$?" 0 "scripts/demo.sh exits 0"
t_like "$out" "the payload \"ZMESH-DEMO-SECRET-PAYLOAD\" sent by n1a: not found anywhere in the capture" "L4 scene: the payload is not on the wire"
t_like "$out" "Done: the namespaces, BPF programs and processes are removed on exit" "L4 scene ran to the end"
out=$(timeout 120 scripts/demo-waypoint.sh 2>&1)
t_is "$?" 0 "scripts/demo-waypoint.sh exits 0"
t_like "$out" "with 'end-user: jason', answered by:
    reviews-v2-0   10" "waypoint scene: jason's requests all went to reviews v2"
t_like "$out" "-> RBAC: access denied \(403\)" "waypoint scene: POST refused by the L7 policy"
t_like "$out" "Done: the bookinfo namespaces" "waypoint scene ran to the end"
t_done
