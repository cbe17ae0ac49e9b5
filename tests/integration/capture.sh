#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# In-kernel capture end to end, with zm-testlistener standing in for ztunnel in each node
# namespace: it reports the original destination and source it learned from each socket.
#
#   n1a 198.18.1.11 (enrolled) --+                      +-- n2a 198.18.2.11 (enrolled)
#   n1b 198.18.1.12 ------------+ n1 ==== wire0 ==== n2 +-- n2b 198.18.2.12
#   (and 2001:2:0:<node>::<11|12>)   zmesh datapath loaded in n1 and n2 (uplink wire0)
#   every pod: zm-echo --banner on 7777 (and plain on 7778); node n1: zm-echo on 7779
#   veth-n1a also carries a foreign tc filter (prio 50, a counting BPF program) like a CNI's
set -u
cd "$(dirname "$0")/../.."
. tests/lib/mesh.sh
m_need "$LISTENER"

m_init 2 2

send() { # send FROM DST PORT: one exchange, output on one line
	h_exec "$1" "$ECHO" send "$2" "$3" --data "x" --timeout 3 2>&1 | head -1
}
foreign_pkts() { # what the foreign filter's own counter (its .bss "seen") says
	local prog map
	prog=$(h_exec n1 tc -j filter show dev veth-n1a ingress |
		jq '.[] | select(.pref == 50 and .options.prog != null) | .options.prog.id')
	map=$(bpftool prog show id "$prog" -j | jq '.map_ids[0]')
	bpftool map dump id "$map" -j | jq '.[0].formatted.value[".bss"][0].seen'
}

m_echo_serve n1a n1b n2a n2b
h_bg n1 "$ECHO" serve --port 7779 --banner

# A CNI-like foreign filter that must survive us and keep seeing what we do not claim.
h_exec n1 tc qdisc add dev veth-n1a clsact
h_exec n1 tc filter add dev veth-n1a ingress pref 50 bpf da obj \
	"$BUILD/tests/bpf/foreign_filter.bpf.o" sec tc ||
	t_fatal "cannot add the foreign filter"

for n in n1 n2; do
	out=$(m_zctl "$n" -j datapath load --uplink wire0 2>&1)
	t_is "$(echo "$out" | jq -r '.reused')" "false" "datapath load on $n: fresh install" || t_diag "$out"
	# As a CNI plugin would: our filter on every pod veth, enrolled or not.
	t_run "datapath attach on $n's pod veths" -- m_zctl "$n" datapath attach veth-${n}a veth-${n}b
done
t_run "enroll n1a (IPv4+IPv6, cgroup)" -- m_zctl n1 enroll --ip "$(h_ip4 n1a)" --ip "$(h_ip6 n1a)" \
	--veth veth-n1a --name n1a --namespace demo --service-account a \
	--pod-netns "$(h_ns n1a)" --cgroup "$(h_cgroup n1a)"
t_run "enroll n2a" -- m_zctl n2 enroll --ip "$(h_ip4 n2a)" --ip "$(h_ip6 n2a)" --veth veth-n2a \
	--name n2a --namespace demo --service-account b --cgroup "$(h_cgroup n2a)"
t_is "$(m_zctl n1 -j workload list | jq -r '[.[].address] | sort | join(",")')" \
	"$(h_ip4 n1a),$(h_ip6 n1a)" "workload list shows n1a's two addresses"
t_is "$(m_zctl n1 -j workload list | jq -r '.[0].identity')" "spiffe://cluster.local/ns/demo/sa/a" \
	"workload list shows n1a's identity"

st=$(m_zctl n1 -j datapath status)
abi=$(sed -n 's/^#define ZM_ABI_VERSION \([0-9]*\).*/\1/p' include/zmesh/abi.h)
t_is "$(echo "$st" | jq -r '[.loaded, .abi_version, .route.present] | join(" ")')" "true $abi true" \
	"datapath status: loaded, ABI $abi (include/zmesh/abi.h), policy route present"
t_is "$(echo "$st" | jq -r '[.interfaces[].ifname] | sort | join(",")')" "veth-n1a,veth-n1b,wire0" \
	"datapath status lists the attached interfaces"
t_is "$(m_zctl n1 -j map list | jq -r '[.[].name] | sort | join(",")')" \
	"zm_bypass,zm_conns,zm_meta,zm_pol_gen,zm_pol_names,zm_pol_rules,zm_pol_stats,zm_stats,zm_wl_info,zm_workloads" \
	"map list shows every zmesh map"
t_like "$(m_zctl n1 map dump zm_workloads)" "198.18.1.11.*veth-n1a|198.18.1.11.*ifindex" \
	"map dump decodes zm_workloads for humans"

# Without a listener, enrolled pods fail closed, and fast: the datapath answers the SYN with a
# RST, so the client's connect() is refused at once instead of waiting out its timeout, and no
# plaintext escapes the mesh (n2b's server sees nothing). Both families, from the pod's veth
# and from the uplink (another node's client to an enrolled pod).
for fam in 4 6; do
	t_like "$(send n1a "$(h_ip$fam n2b)" 7777)" "Connection refused" \
		"IPv$fam no ztunnel: enrolled pod's connection refused by the datapath (not timed out)"
	t_like "$(send n2b "$(h_ip$fam n1a)" 7777)" "Connection refused" \
		"IPv$fam no ztunnel on n1: n2b -> enrolled n1a over the wire refused (RST back out of wire0)"
	t_like "$(send n2b "$(h_ip$fam n1a)" 15008)" "Connection refused" \
		"IPv$fam no ztunnel on n1: HBONE to enrolled n1a:15008 refused"
done
t_like "$(m_zctl n1 -j stats | jq '.[] | select(.reason == "refused_no_listener") | .packets')" '^[1-9]' \
	"refused_no_listener counted"
t_is "$(m_zctl n1 -j stats | jq '.[] | select(.reason == "drop_no_listener") | .packets')" 0 \
	"nothing needed the drop fallback (drop_no_listener 0)"

h_bg n1 "$LISTENER" --echo
h_bg n2 "$LISTENER" --echo
h_wait_port n1 15001 && h_wait_port n2 15008 || t_fatal "test listeners did not start"

for fam in 4 6; do
	a=$(h_ip$fam n1a) b=$(h_ip$fam n1b) c=$(h_ip$fam n2a) d=$(h_ip$fam n2b)
	br() { [ "$fam" = 6 ] && echo "\\[$1\\]" || echo "$1"; }
	t_like "$(send n1a "$c" 7777)" "^port=15001 orig_dst=$(br "$c"):7777 src=$(br "$a"):[0-9]+$" \
		"IPv$fam enrolled n1a -> n2a (cross node): captured to 15001, original dst and src intact"
	t_like "$(send n1a "$b" 7777)" "^port=15001 orig_dst=$(br "$b"):7777 src=$(br "$a"):" \
		"IPv$fam enrolled n1a -> n1b (same node): captured to 15001"
	t_like "$(send n1b "$a" 7777)" "^port=15006 orig_dst=$(br "$a"):7777 src=$(br "$b"):" \
		"IPv$fam plain n1b -> enrolled n1a: captured to 15006"
	t_like "$(send n2b "$a" 15008)" "^port=15008 orig_dst=$(br "$a"):15008 src=$(br "$d"):" \
		"IPv$fam n2b -> enrolled n1a:15008 over the wire: captured to 15008"
	t_like "$(send n2b "$a" 7777)" "^port=15006 orig_dst=$(br "$a"):7777 src=$(br "$d"):" \
		"IPv$fam n2b -> enrolled n1a:7777 over the wire: captured to 15006"
	t_like "$(send n1b "$d" 7777)" "^peer=$(br "$b"):[0-9]+ local=$(br "$d"):7777" \
		"IPv$fam non-enrolled n1b -> n2b: untouched"
done
t_like "$(send n1a 198.18.0.1 7779)" "^peer=198.18.1.11:[0-9]+ local=198.18.0.1:7779" \
	"enrolled n1a -> node address: never captured"
# A node address's capture ports are refused by the datapath: ztunnel would otherwise accept
# the connection as captured and dial the node's own 15001, a loop.
t_like "$(send n1a 198.18.0.1 15001)" "Connection refused" "enrolled n1a -> node:15001 refused"
t_like "$(send n1b 198.18.0.1 15006)" "Connection refused" "non-enrolled n1b -> node:15006 refused"
t_like "$(send n1a "$(h_node_ip6 n1)" 15001)" "Connection refused" "enrolled n1a -> node IPv6:15001 refused"
t_like "$(m_zctl n1 -j stats | jq '.[] | select(.reason == "refused_proxy_port") | .packets')" \
	'^[1-9]' "refused_proxy_port counted"
t_like "$(h_exec n1 "$ECHO" send "$(h_ip4 n1a)" 7777 --data x 2>&1 | head -1)" \
	"^peer=198.18.1.1:[0-9]+ local=198.18.1.11:7777" "node -> enrolled pod: untouched"

stats=$(m_zctl n1 -j stats)
for r in captured_outbound captured_inbound_plain captured_inbound_hbone established pass_bypass; do
	t_like "$(echo "$stats" | jq ".[] | select(.reason == \"$r\") | .packets")" '^[1-9]' \
		"stats on n1: $r counted"
done
t_like "$(m_zctl n1 stats)" "captured_outbound +[0-9]+" "stats human output names reasons"
t_like "$(m_zctl n1 -j conn list | jq -r '.[] | .local' | sort -u | tr '\n' ' ')" "198.18.1.11" \
	"conn list shows sockops telemetry of n1a's connections"

# The foreign filter sees what we do not claim (a flow to the node, which we never capture)
# and survives unload.
before=$(foreign_pkts)
send n1a 198.18.0.1 7779 >/dev/null
after=$(foreign_pkts)
t_ok "$([ "$after" -ge $((before + 4)) ]; echo $?)" "foreign filter counted the packets we passed on ($before -> $after)"

# No iptables, no nftables anywhere in the harness.
rules=0
for ns in n1 n2 n1a n1b n2a n2b; do
	r=$(h_exec "$ns" iptables-save 2>/dev/null | grep -c '^-A')
	r=$((r + $(h_exec "$ns" nft list ruleset 2>/dev/null | grep -c 'rule\|chain')))
	rules=$((rules + r))
done
t_is "$rules" "0" "no iptables or nftables rules in any harness namespace"

# Reload while a captured flow is busy: pinned maps reused, flow uninterrupted.
h_exec n1a "$ECHO" send "$(h_ip4 n2a)" 7777 --line --bytes 400000000 --timeout 10 \
	>"$H_STATE/bulk.out" 2>&1 &
bulk=$!
sleep 0.3
out=$(m_zctl n1 -j datapath load --uplink wire0 2>&1)
t_is "$(echo "$out" | jq -r '.reused')" "true" "reload reuses the pinned datapath"
wait "$bulk"
t_like "$(tr '\n' ' ' <"$H_STATE/bulk.out")" "^port=15001 .* echo ok 400000000 $" \
	"400 MB captured flow crossed the reload intact"
t_is "$(m_zctl n1 -j workload list | jq length)" "2" "enrollment survived the reload"

# Bad input: clear message, non-zero exit, state intact.
out=$(m_zctl n1 enroll --ip "$(h_ip4 n1a)" --veth veth-n1b 2>&1); st=$?
t_like "$st:$out" "^1:.*already enrolled" "enrolling an address already enrolled elsewhere is refused"
out=$(m_zctl n1 enroll --ip 198.18.1.99 --veth nosuchveth 2>&1); st=$?
t_like "$st:$out" "^1:.*nosuchveth" "enrolling on an unknown interface is refused"
out=$(m_zctl n1 enroll --ip 198.18.1.98 --veth veth-n1b --pod-netns zmt-nosuch 2>&1); st=$?
t_like "$st:$out" "^1:.*zmt-nosuch" "enrolling an unknown pod netns is refused"
out=$("$ZCTL" --netns /var/run/netns/zmt-nosuch-node workload list 2>&1); st=$?
t_like "$st:$out" "^1:.*zmt-nosuch-node" "an unknown node netns is refused"
out=$(m_zctl n1 enroll --ip 300.1.1.1 --veth veth-n1b 2>&1); st=$?
t_like "$st:$out" "^2:.*300.1.1.1" "a malformed address is a usage error"
t_is "$(m_zctl n1 -j workload list | jq length)" "2" "failed enrolls left the workloads as they were"
bpftool map update pinned "$H_BPFFS/n1/zm_meta" key 0 0 0 0 value 99 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ||
	t_diag "bpftool could not edit zm_meta"
out=$(m_zctl n1 datapath load 2>&1); st=$?
t_like "$st:$out" "^1:.*99.*$abi|^1:.*$abi.*99" "a datapath pinned by another ABI version is refused, both named"
# Readers refuse it too (its maps may not mean what this build prints), unless --force;
# writers always refuse.
for cmd in "workload list" "stats" "conn list" "policy list" "map dump zm_workloads"; do
	out=$(m_zctl n1 $cmd 2>&1); st=$?
	t_like "$st:$out" "^1:.*ABI version 99, this build has $abi.*--force" \
		"zmeshctl $cmd refuses a datapath of ABI 99, naming both versions"
done
out=$(m_zctl n1 --force -j stats 2>&1); st=$?
t_like "$st:$(jq -r '.[] | select(.reason == "captured_outbound") | .packets' <<<"$out" 2>&1)" \
	"^0:[1-9]" "zmeshctl --force stats reads it anyway"
t_like "$(m_zctl n1 -j map dump zm_meta 2>&1)" "99" "zm_meta itself stays readable (it is how the version is known)"
out=$(m_zctl n1 enroll --ip 198.18.1.97 --veth veth-n1b --force 2>&1); st=$?
t_like "$st:$out" "^1:.*ABI version 99" "a write (enroll) is refused even with --force"
bpftool map update pinned "$H_BPFFS/n1/zm_meta" key 0 0 0 0 value "$abi" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0

# Unload removes only ours.
t_run "unenroll n1a" -- m_zctl n1 unenroll --veth veth-n1a
t_run "datapath unload on n1" -- m_zctl n1 datapath unload
filters=$(h_exec n1 tc filter show dev veth-n1a ingress; h_exec n1 tc filter show dev wire0 ingress)
t_like "$filters" "pref 50 bpf .*foreign_filter" "the foreign filter is still there"
t_ok "$(echo "$filters" | grep -q 'pref 1 '; [ $? = 1 ]; echo $?)" "our filters are gone"
t_is "$(h_exec n1 ip rule | grep -c 'lookup 100')" "0" "the policy rule is gone"
t_is "$(h_exec n1 ip route show table 100 | wc -l)" "0" "the local route table is empty"
t_is "$(ls "$H_BPFFS/n1" | wc -l)" "0" "no pins left"
out=$(m_zctl n1 datapath unload 2>&1); st=$?
t_like "$st:$out" "^1:.*(not loaded|nothing)" "unload when nothing is loaded is an error"
t_like "$(send n1a "$(h_ip4 n2b)" 7777)" "^peer=198.18.1.11:" "after unload n1a talks directly again"

# Loads are serialised by the pin directory's lock: two at once, one installs, one reuses.
t_run "datapath unload on n2" -- m_zctl n2 datapath unload
m_zctl n2 -j datapath load --uplink wire0 >"$H_STATE/load1" 2>&1 &
l1=$!
m_zctl n2 -j datapath load --uplink wire0 >"$H_STATE/load2" 2>&1
wait "$l1"
t_is "$(cat "$H_STATE/load1" "$H_STATE/load2" | jq -r .reused | sort | tr '\n' ' ')" "false true " \
	"concurrent loads: one fresh install, one reuse"
t_run "datapath unload on n2 again" -- m_zctl n2 datapath unload
t_done
