#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ztunnel compiles its L4 policies into the kernel fast path (zm_rbac_compile_fastpath ->
# zm_dp_policy_replace) on every policy or config (re)load: plaintext SYNs the policies
# certainly deny are dropped at tc (pod veths, uplink) or XDP (uplink) before they reach
# 15006, counted per policy; everything else still goes through ztunnel.
#
#   n1a 198.18.1.11 srv/server  (HBONE, app=server) --+                +-- n2a 198.18.2.11 client-ns/client (HBONE)
#   n1b 198.18.1.12 legacy/old  (TCP, plaintext)   ---+ n1 == wire0 == n2 +-- n2b 198.18.2.12 legacy/batch (TCP)
#
# The policy (an Istio AuthorizationPolicy as a user writes it): DENY n1b to the server on any
# port, and n2b on port 7778 only. Checks: n1b's SYNs die in the kernel (tc on veth-n1b: the
# connection fails, the policy's tc_drops and drop_policy rise, ztunnel's access log never sees
# it); n2b still reaches 7777 through 15006; n2b to 7778 dies at the uplink (tc, then XDP
# generic: xdp_drops, drop_policy_xdp); mesh n2a over HBONE (15008) is untouched; removing
# the policy empties the kernel set; the config's own `policies` compile the same way; a set
# replaced behind ztunnel's back is restored; --check validates --policy files.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need jq

m_init 2 2
N1B=$(h_ip4 n1b) N2B=$(h_ip4 n2b) N2A=$(h_ip4 n2a) SRV=$(h_ip4 n1a)
write_cfg() { # write_cfg [POLICIES-YAML]: the config, optionally with `policies:` items
	{
		echo "workloads:"
		m_workload -4 n1a srv server HBONE "labels: {app: server}"
		m_workload -4 n1b legacy old TCP "labels: {app: old}"
		m_workload -4 n2a client-ns client HBONE "labels: {app: client}"
		m_workload -4 n2b legacy batch TCP "labels: {app: batch}"
		[ -z "${1:-}" ] || printf 'policies:\n%s\n' "$1"
	} | m_config_write
}
write_cfg
m_ca_init

for n in n1 n2; do m_node_start $n --ca-dir "$M_CA" --policy "$M_POL" --poll-ms 100; done
# n1b is not enrolled (TCP); its veth still needs the capture filter, as a CNI would attach.
m_zctl n1 datapath attach veth-n1b >/dev/null || t_fatal "attach veth-n1b failed"
m_echo_serve n1a n2a
m_ztunnel_wait n1 n2
sleep 0.3

send() { # send POD PORT: what the client saw talking to the server n1a
	h_exec "$1" "$ECHO" send "$SRV" "$2" --data "hi-$1" --timeout 2 2>&1 | tr '\n' ' '
}
pol() { m_zctl n1 -j policy list | jq ".policies[] | select(.policy == \"$1\") | .$2"; }
n_rules() { m_zctl "$1" -j policy list | jq '[.policies[].n_rules] | add // 0'; }
reason() { m_zctl n1 -j stats | jq ".[] | select(.reason == \"$1\") | .packets"; }
seen() { grep -c "access .*src.addr=$1:" "$H_STATE/zt-n1.log"; }
# wait_rules NODE N: until the node's kernel set has N rules (5 s)
has_rules() { [ "$(n_rules "$1")" = "$2" ]; }
wait_rules() { m_wait_for 5 has_rules "$@"; }
set_policy() { printf '%s\n' "$1" | m_policy_write; }

t_like "$(grep 'kernel fast path' "$H_STATE/zt-n1.log")" "0 drop rules from 0 policies for node n1" \
	"startup: ztunnel compiled an empty kernel set"
t_like "$(send n1b 7777)" "hi-n1b" "no policy: plaintext n1b -> n1a:7777 through 15006"
t_like "$(cat "$H_STATE/zt-n1.log")" "scope=access msg=close dir=inbound_plain via=tcp src.addr=$N1B:" \
	"no policy: n1's access log saw n1b"

# 1. An Istio DENY on ipBlocks and ports.
set_policy "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-legacy-clients
  namespace: srv
spec:
  selector:
    matchLabels:
      app: server
  action: DENY
  rules:
  - from:
    - source:
        ipBlocks: [\"$N1B/32\"]
  - from:
    - source:
        ipBlocks: [\"$N2B\"]
    to:
    - operation:
        ports: [\"7778\"]"
wait_rules n1 2
t_is "$(n_rules n1)" "2" "policy file reload: 2 kernel rules on n1"
t_like "$(grep 'kernel fast path' "$H_STATE/zt-n1.log" | tail -1)" \
	"2 drop rules from 1 policies for node n1" "n1 logs the number of kernel rules"
t_is "$(n_rules n2)" "0" "n2 has no workload the policy selects: no rules"
t_is "$(pol srv/deny-legacy-clients n_rules)" "2" "policy list names srv/deny-legacy-clients"
dump=$(m_zctl n1 -j map dump zm_pol_rules)
t_is "$(echo "$dump" | jq -r '[.[] | select(.key.live) | "\(.key.dst) \(.key.dst_port) \(.key.src) \(.value.action) \(.value.policy)"] | sort | join(";")')" \
	"$SRV 0 $N1B/32 drop srv/deny-legacy-clients;$SRV 7778 $N2B/32 drop srv/deny-legacy-clients" \
	"map dump zm_pol_rules decodes the live rules"
t_like "$(m_zctl n1 map dump zm_pol_names)" "srv/deny-legacy-clients.*n_rules=2" \
	"map dump zm_pol_names decodes names"
t_like "$(m_zctl n1 map dump zm_pol_gen)" "live_gen=[01] n_rules=2 serial=[0-9]+" \
	"map dump zm_pol_gen decodes the generation"

seen0=$(seen "$N1B") drop0=$(reason drop_policy) tc0=$(pol srv/deny-legacy-clients tc_drops)
t_like "$(send n1b 7777)" "timed out|refused|failed" "denied n1b -> n1a:7777 fails"
t_like "$(send n1b 7778)" "timed out|refused|failed" "denied n1b -> n1a:7778 fails"
t_ok "$([ "$(pol srv/deny-legacy-clients tc_drops)" -gt "$tc0" ]; echo $?)" \
	"policy list: tc_drops rose ($tc0 -> $(pol srv/deny-legacy-clients tc_drops))"
t_ok "$([ "$(reason drop_policy)" -gt "$drop0" ]; echo $?)" "stats: drop_policy rose"
t_is "$(seen "$N1B")" "$seen0" "ztunnel's access log never saw the dropped connections"
t_like "$(m_zctl n1 map dump zm_pol_stats)" "policy=\"srv/deny-legacy-clients\" tc_drops=[1-9]" \
	"map dump zm_pol_stats decodes the counters"
t_like "$(send n2b 7777)" "hi-n2b" "allowed n2b -> n1a:7777 still connects"
t_like "$(grep "src.addr=$N2B:" "$H_STATE/zt-n1.log" | tail -1)" "dir=inbound_plain.*dst.addr=$SRV:7777" \
	"... through 15006 (n1's access log)"
tc0=$(pol srv/deny-legacy-clients tc_drops)
t_like "$(send n2b 7778)" "timed out|refused|failed" "denied n2b -> n1a:7778 fails (uplink, tc)"
t_ok "$([ "$(pol srv/deny-legacy-clients tc_drops)" -gt "$tc0" ]; echo $?)" "uplink tc drop counted"
tc0=$(pol srv/deny-legacy-clients tc_drops)
t_like "$(send n2a 7778)" "hi-n2a" "mesh n2a -> n1a:7778 over HBONE unaffected"
t_like "$(grep "src.addr=$N2A:" "$H_STATE/zt-n1.log" | tail -1)" "dir=inbound via=hbone" \
	"... arrived on 15008"
t_is "$(pol srv/deny-legacy-clients tc_drops)" "$tc0" "HBONE traffic is never counted"

# 2. XDP generic on the uplink: the same rules, dropped before tc.
out=$(m_zctl n1 -j datapath load --uplink wire0 --xdp generic 2>&1)
t_is "$(echo "$out" | jq -r '[.reused, .xdp_mode] | join(" ")')" "true generic" \
	"datapath reload with --xdp generic keeps the maps" || t_diag "$out"
t_is "$(n_rules n1)" "2" "rules survived the reload"
x0=$(pol srv/deny-legacy-clients xdp_drops) tc0=$(pol srv/deny-legacy-clients tc_drops)
xr0=$(reason drop_policy_xdp) seen0=$(seen "$N2B")
t_like "$(send n2b 7778)" "timed out|refused|failed" "XDP: denied n2b -> n1a:7778 fails"
t_ok "$([ "$(pol srv/deny-legacy-clients xdp_drops)" -gt "$x0" ]; echo $?)" \
	"XDP: xdp_drops rose ($x0 -> $(pol srv/deny-legacy-clients xdp_drops))"
t_is "$(pol srv/deny-legacy-clients tc_drops)" "$tc0" "XDP: dropped before tc"
t_ok "$([ "$(reason drop_policy_xdp)" -gt "$xr0" ]; echo $?)" "stats: drop_policy_xdp rose"
t_is "$(seen "$N2B")" "$seen0" "XDP: ztunnel never saw it"
t_like "$(send n2b 7777)" "hi-n2b" "XDP: allowed n2b -> n1a:7777 still connects"
t_like "$(send n2a 7778)" "hi-n2a" "XDP: mesh n2a -> n1a:7778 over HBONE unaffected"

# 3. Removing the policy empties the kernel set.
set_policy ""
wait_rules n1 0
t_is "$(n_rules n1)" "0" "policy removed: the kernel set is empty"
t_like "$(grep 'kernel fast path' "$H_STATE/zt-n1.log" | tail -1)" "0 drop rules" \
	"n1 logs the empty set"
t_like "$(send n1b 7777)" "hi-n1b" "policy removed: n1b -> n1a:7777 works again"
t_like "$(send n2b 7778)" "hi-n2b" "policy removed: n2b -> n1a:7778 works again"

# 4. The config's own policies (reference model), through a config reload.
write_cfg "- {name: no-legacy, namespace: srv, scope: Namespace, action: Deny, rules: [[[{sourceIps: [\"$N1B/32\"]}]]]}"
wait_rules n1 1
t_is "$(pol srv/no-legacy n_rules)" "1" "config reload: srv/no-legacy compiled into 1 rule"
t_like "$(send n1b 7777)" "timed out|refused|failed" "config policy: n1b -> n1a:7777 dropped"
t_like "$(pol srv/no-legacy tc_drops)" "^[1-9]" "config policy: counted under srv/no-legacy"

# 5. A set replaced behind ztunnel's back is restored (ztunnel owns it).
m_zctl n1 policy set >/dev/null
wait_rules n1 1
t_is "$(pol srv/no-legacy n_rules)" "1" "a cleared kernel set is restored"
t_like "$(cat "$H_STATE/zt-n1.log")" "rule set was replaced outside ztunnel" "... and says so"

write_cfg
wait_rules n1 0
t_is "$(n_rules n1)" "0" "config policy removed: the kernel set is empty"
t_like "$(send n1b 7777)" "hi-n1b" "config policy removed: n1b -> n1a:7777 works"

# 6. --check validates --policy files.
printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: srv}\nspec:\n  action: DENYY\n' >"$H_STATE/bad.yaml"
out=$("$ZT" --check --config "$M_CFG" --policy "$M_POL" --policy "$H_STATE/bad.yaml" 2>&1); st=$?
out=$(echo "$out" | tr '\n' ' ')
t_like "$st:$out" "^1:.*bad.yaml:5: spec.action: " "--check: a broken policy file exits 1 with FILE:LINE: field"
set_policy "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: srv}
spec: {mtls: {mode: STRICT}}"
out=$("$ZT" --check --config "$M_CFG" --policy "$M_POL" --node n1 2>&1); st=$?
out=$(echo "$out" | tr '\n' ' ')
t_like "$st:$out" "^0:.*: ok \(1 policies\).*fast path: 1 kernel drop rules for node n1" \
	"--check --node: counts the node's kernel rules"
t_done
