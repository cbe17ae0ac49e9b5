// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of L4 authorization (userspace/lib/rbac): a table of connections against
 * policies from the local config (`policies`, the reference's model) and from Istio YAML,
 * covering every rule of userspace/lib/rbac/README.md and the reference's edge cases (empty rules,
 * clauses and groups, not-only groups, Presence, principals without spiffe://), then the
 * translation of every Istio field (tests/data/policies/all-fields.yaml) and a table of bad
 * inputs with their exact "FILE:LINE: field.path: problem" messages. Runs from the repo root.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "common/addr.h"
#include "config/config.h"
#include "datapath/datapath.h"
#include "rbac/rbac.h"
#include "test_rbac_index.h"

#define ERRLEN 4096

/* Three workloads: server (ns1, names ns1/named when present), other (ns2, same labels), wp (ns1,
 * waypoint). */
static const char *const workloads =
    "workloads:\n"
    "- {uid: s, name: server, namespace: ns1, workloadIps: [198.18.0.10],\n"
    "   labels: {app: server}%s}\n"
    "- {uid: o, name: other, namespace: ns2, workloadIps: [198.18.0.20], labels: {app: server}}\n"
    "- {uid: w, name: wp, namespace: ns1, workloadIps: [198.18.0.30], labels: {app: wp},\n"
    "   waypoint: {destination: /198.18.0.99}}\n";

#define CLIENT "spiffe://cluster.local/ns/ns1/sa/client"
#define ALIEN  "spiffe://cluster.local/ns/ns-bad/sa/x"

struct eval_case {
	const char *name;
	const char *policies; /* config `policies:` items, "" for none */
	const char *istio;    /* Istio YAML or NULL */
	const char *dst;      /* workload uid */
	const char *id;	      /* peer identity or NULL (plaintext) */
	const char *src;
	unsigned int port;
	bool allow;
	const char *policy; /* expected deciding policy */
	const char *reason; /* substring of the reason */
};

#define P(name, ns, scope, action, rules)                                                          \
	"- {name: " name ", namespace: " ns ", scope: " scope ", action: " action                  \
	", rules: " rules "}\n"

static const struct eval_case cases[] = {
    {"no policy allows", "", NULL, "s", NULL, "198.18.1.1", 80, true, "", "no allow policy"},
    {"allow by principal (no spiffe://)",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{principals: [{Exact: cluster.local/ns/ns1/sa/client}]}]]]"),
     NULL, "s", CLIENT, "198.18.1.1", 80, true, "ns1/a", "allowed by policy ns1/a"},
    {"principal written with spiffe:// never matches",
     P("a", "ns1", "Namespace", "Allow", "[[[{principals: [{Exact: \"" CLIENT "\"}]}]]]"), NULL,
     "s", CLIENT, "198.18.1.1", 80, false, "", "no allow policy matched (1 apply: ns1/a)"},
    {"deny wins over allow",
     P("d", "ns1", "Namespace", "Deny", "[[[{namespaces: [{Exact: ns1}]}]]]")
	 P("a", "ns1", "Namespace", "Allow", "[[]]"),
     NULL, "s", CLIENT, "198.18.1.1", 80, false, "ns1/d", "denied by policy ns1/d"},
    {"allow without rules allows nothing", P("a", "ns1", "Namespace", "Allow", "[]"), NULL, "s",
     CLIENT, "198.18.1.1", 80, false, "", "no allow policy matched"},
    {"rule without clauses matches", P("a", "ns1", "Namespace", "Allow", "[[]]"), NULL, "s", NULL,
     "198.18.1.1", 80, true, "ns1/a", ""},
    {"clause without groups matches", P("a", "ns1", "Namespace", "Allow", "[[[]]]"), NULL, "s",
     NULL, "198.18.1.1", 80, true, "ns1/a", ""},
    {"empty group never matches", P("a", "ns1", "Namespace", "Allow", "[[[{}]]]"), NULL, "s",
     CLIENT, "198.18.1.1", 80, false, "", ""},
    {"clauses AND: namespace ok, port wrong",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{namespaces: [{Exact: x}]}, {namespaces: [{Exact: ns1}]}], [{destinationPorts: "
       "[80]}]]]"),
     NULL, "s", CLIENT, "198.18.1.1", 81, false, "", ""},
    {"clauses AND, groups OR: second group, right port",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{namespaces: [{Exact: x}]}, {namespaces: [{Exact: ns1}]}], [{destinationPorts: "
       "[80]}]]]"),
     NULL, "s", CLIENT, "198.18.1.1", 80, true, "ns1/a", ""},
    {"group: positive matches but negative too",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{principals: [{Prefix: cluster.local/}], notPrincipals: [{Suffix: /sa/client}]}]]]"),
     NULL, "s", CLIENT, "198.18.1.1", 80, false, "", ""},
    {"not-only group matches plaintext (namespace \"\")",
     P("d", "ns1", "Namespace", "Deny", "[[[{notNamespaces: [{Exact: ns1}]}]]]"), NULL, "s", NULL,
     "198.18.1.1", 80, false, "ns1/d", ""},
    {"notPrincipals holds without identity",
     P("d", "ns1", "Namespace", "Deny", "[[[{notPrincipals: [{Presence: {}}]}]]]"), NULL, "s", NULL,
     "198.18.1.1", 80, false, "ns1/d", ""},
    {"notPrincipals Presence spares mTLS",
     P("d", "ns1", "Namespace", "Deny", "[[[{notPrincipals: [{Presence: {}}]}]]]"), NULL, "s",
     CLIENT, "198.18.1.1", 80, true, "", ""},
    {"Presence needs an identity",
     P("a", "ns1", "Namespace", "Allow", "[[[{principals: [{Presence: {}}]}]]]"), NULL, "s", NULL,
     "198.18.1.1", 80, false, "", ""},
    {"Presence on namespace",
     P("a", "ns1", "Namespace", "Allow", "[[[{namespaces: [{Presence: {}}]}]]]"), NULL, "s", ALIEN,
     "198.18.1.1", 80, true, "ns1/a", ""},
    {"service account",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{serviceAccounts: [{namespace: ns1, serviceAccount: client}]}]]]"),
     NULL, "s", CLIENT, "198.18.1.1", 80, true, "ns1/a", ""},
    {"service account needs identity",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{serviceAccounts: [{namespace: ns1, serviceAccount: client}]}]]]"),
     NULL, "s", NULL, "198.18.1.1", 80, false, "", ""},
    {"port is the real port (8080 ok)",
     P("a", "ns1", "Namespace", "Allow", "[[[{destinationPorts: [8080]}]]]"), NULL, "s", CLIENT,
     "198.18.1.1", 8080, true, "ns1/a", ""},
    {"port is the real port (15008 not)",
     P("a", "ns1", "Namespace", "Allow", "[[[{destinationPorts: [8080]}]]]"), NULL, "s", CLIENT,
     "198.18.1.1", 15008, false, "", ""},
    {"sourceIps / notSourceIps",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{sourceIps: [198.18.1.0/24], notSourceIps: [198.18.1.7]}]]]"),
     NULL, "s", NULL, "198.18.1.1", 80, true, "ns1/a", ""},
    {"notSourceIps excludes",
     P("a", "ns1", "Namespace", "Allow",
       "[[[{sourceIps: [198.18.1.0/24], notSourceIps: [198.18.1.7]}]]]"),
     NULL, "s", NULL, "198.18.1.7", 80, false, "", ""},
    {"destinationIps",
     P("a", "ns1", "Namespace", "Allow", "[[[{destinationIps: [198.18.0.0/28]}]]]"), NULL, "s",
     NULL, "198.18.1.7", 80, true, "ns1/a", ""},
    {"dry-run deny only reported",
     "- {name: d, namespace: ns1, scope: Namespace, action: Deny, dryRun: true, rules: [[]]}\n",
     NULL, "s", CLIENT, "198.18.1.1", 80, true, "", "no allow policy"},
    {"Namespace scope of another namespace", P("d", "ns2", "Namespace", "Deny", "[[]]"), NULL, "s",
     CLIENT, "198.18.1.1", 80, true, "", ""},
    {"Global scope from any namespace", P("d", "ns2", "Global", "Deny", "[[]]"), NULL, "s", CLIENT,
     "198.18.1.1", 80, false, "ns2/d", ""},
    {"WorkloadSelector named by the workload",
     P("named", "ns1", "WorkloadSelector", "Deny", "[[]]"), NULL, "s", CLIENT, "198.18.1.1", 80,
     false, "ns1/named", ""},
    {"WorkloadSelector not named", P("named", "ns1", "WorkloadSelector", "Deny", "[[]]"), NULL, "w",
     CLIENT, "198.18.1.1", 80, true, "", ""},
    /* Istio sources */
    {"istio selector in its namespace", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: "
     "ns1}\n"
     "spec: {selector: {matchLabels: {app: server}}, rules: [{from: [{source: {principals: "
     "[\"cluster.local/ns/ns1/sa/*\"]}}]}]}\n",
     "s", ALIEN, "198.18.1.1", 80, false, "", "no allow policy matched (1 apply: ns1/a)"},
    {"istio selector does not reach another namespace", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: "
     "ns1}\n"
     "spec: {selector: {matchLabels: {app: server}}}\n",
     "o", ALIEN, "198.18.1.1", 80, true, "", "no allow policy"},
    {"istio root-namespace selector reaches every namespace", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: "
     "istio-system}\n"
     "spec: {selector: {matchLabels: {app: server}}}\n",
     "o", CLIENT, "198.18.1.1", 80, false, "", "no allow policy matched"},
    {"istio rules: [{}] allows all", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: "
     "ns1}\n"
     "spec: {rules: [{}]}\n",
     "s", NULL, "198.18.1.1", 80, true, "ns1/a", "allowed by AuthorizationPolicy ns1/a"},
    {"istio DENY ipBlocks", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: "
     "ns1}\n"
     "spec: {action: DENY, rules: [{from: [{source: {ipBlocks: [198.18.1.0/24]}}], to: "
     "[{operation: {ports: [\"80\"]}}]}]}\n",
     "s", CLIENT, "198.18.1.1", 80, false, "ns1/d", "denied by AuthorizationPolicy ns1/d"},
    {"istio DENY ipBlocks, other port", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: "
     "ns1}\n"
     "spec: {action: DENY, rules: [{from: [{source: {ipBlocks: [198.18.1.0/24]}}], to: "
     "[{operation: {ports: [\"80\"]}}]}]}\n",
     "s", CLIENT, "198.18.1.1", 81, true, "", ""},
    {"istio L7 attribute without waypoint denies", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns1}\n"
     "spec: {rules: [{to: [{operation: {methods: [GET]}}]}]}\n",
     "s", CLIENT, "198.18.1.1", 80, false, "ns1/l7",
     "AuthorizationPolicy ns1/l7 uses the L7 attribute to.operation.methods but workload "
     "ns1/server has no waypoint to enforce it"},
    {"istio L7 ALLOW rule dropped with a waypoint", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns1}\n"
     "spec: {rules: [{to: [{operation: {methods: [GET]}}]}]}\n",
     "w", CLIENT, "198.18.1.1", 80, false, "", "no allow policy matched"},
    /* istiod: "this DENY policy has no enforceable rules at ztunnel and will have no effect" */
    {"istio DENY with only L7 attributes has no effect at ztunnel", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns1}\n"
     "spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}], when: [{key: "
     "\"request.headers[x]\", values: [y]}]}]}\n",
     "w", CLIENT, "198.18.1.1", 80, true, "", "no allow policy applies"},
    {"istio DENY with only L7 attributes, no waypoint: no effect either", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns1}\n"
     "spec: {action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}\n",
     "s", CLIENT, "198.18.1.1", 80, true, "", "no allow policy applies"},
    /* istiod: "DENY policy with HTTP attributes is enforced without the HTTP rules" */
    {"istio DENY mixing a port and a path denies the port", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns1}\n"
     "spec: {action: DENY, rules: [{to: [{operation: {ports: [\"80\"], paths: [/admin]}}]}]}\n",
     "s", CLIENT, "198.18.1.1", 80, false, "ns1/l7", "denied by AuthorizationPolicy ns1/l7"},
    {"istio policy with targetRefs is the waypoint's: skipped", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: wp, namespace: "
     "ns1}\n"
     "spec: {targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}], "
     "action: DENY, rules: [{}]}\n",
     "s", CLIENT, "198.18.1.1", 80, true, "", "no allow policy applies"},
    {"istio STRICT denies plaintext", "",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, "
     "namespace: ns1}\n"
     "spec: {mtls: {mode: STRICT}}\n",
     "s", NULL, "198.18.1.1", 80, false, "ns1/strict",
     "PeerAuthentication ns1/strict requires mTLS (STRICT) and the connection has no peer "
     "identity"},
    {"istio STRICT lets mTLS through", "",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, "
     "namespace: ns1}\n"
     "spec: {mtls: {mode: STRICT}}\n",
     "s", CLIENT, "198.18.1.1", 80, true, "", ""},
    {"istio namespace PERMISSIVE overrides mesh STRICT", "",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, "
     "namespace: istio-system}\n"
     "spec: {mtls: {mode: STRICT}}\n---\n"
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: "
     "ns1}\n"
     "spec: {mtls: {mode: PERMISSIVE}}\n",
     "s", NULL, "198.18.1.1", 80, true, "", ""},
    {"istio mesh STRICT elsewhere", "",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, "
     "namespace: istio-system}\n"
     "spec: {mtls: {mode: STRICT}}\n---\n"
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: "
     "ns1}\n"
     "spec: {mtls: {mode: PERMISSIVE}}\n",
     "o", NULL, "198.18.1.1", 80, false, "istio-system/default", ""},
    {"istio dry-run annotation", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
     "metadata: {name: d, namespace: ns1, annotations: {istio.io/dry-run: \"true\"}}\n"
     "spec: {action: DENY, rules: [{}]}\n",
     "s", CLIENT, "198.18.1.1", 80, true, "", ""},
};

static struct zm_addr A(const char *text) {
	struct zm_addr a;

	if (zm_addr_parse(text, &a))
		tap_bail("bad address literal in test: %s", text);
	return a;
}

static void
run_case(const struct eval_case *t)
{
	char text[8192], err[ERRLEN];
	struct zm_config *cfg = NULL;
	struct zm_rbac_set *set = NULL;
	const struct zm_rbac_set *sets[1];
	struct zm_rbac_sources src = {0};
	struct zm_rbac_result r;
	struct zm_rbac_conn c;

	/* The config refuses dangling references: name ns1/named only when it exists. */
	snprintf(text, sizeof(text), workloads,
		 strstr(t->policies, "name: named") ? ", authorizationPolicies: [ns1/named]" : "");
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s",
		 *t->policies ? "policies:\n" : "", t->policies);
	if (zm_config_load_buf("cfg.yaml", text, strlen(text), &cfg, err, sizeof(err))) {
		ok(0, "%s: config loads", t->name);
		printf("#   %s\n", err);
		return;
	}
	if (t->istio &&
	    zm_rbac_load_buf("p.yaml", t->istio, strlen(t->istio), &set, err, sizeof(err))) {
		ok(0, "%s: istio yaml loads", t->name);
		printf("#   %s\n", err);
		zm_config_free(cfg);
		return;
	}
	sets[0] = set;
	src = (struct zm_rbac_sources){cfg, sets, set ? 1 : 0, NULL};
	c = (struct zm_rbac_conn){A(t->src), A("198.18.0.10"), (__u16)t->port, t->id,
				  zm_config_workload_by_uid(cfg, t->dst)};
	c.dst_ip = c.dst->ips[0].addr;
	zm_rbac_evaluate(&src, &c, &r);
	if (!is_int(r.allow, t->allow, "%s: %s", t->name, t->allow ? "allow" : "deny") ||
	    !is_str(r.policy, t->policy, "%s: policy", t->name) ||
	    !ok(strstr(r.reason, t->reason) != NULL, "%s: reason", t->name))
		printf("#   reason: %s\n", r.reason);
	index_same(&src, &c, &r, t->name);
	zm_rbac_set_free(set);
	zm_config_free(cfg);
}

static void test_dry_run_report(void)
{
	static const char *const text =
	    "workloads:\n- {uid: s, name: server, namespace: ns1, workloadIps: [198.18.0.10]}\n"
	    "policies:\n"
	    "- {name: d, namespace: ns1, scope: Namespace, action: Deny, dryRun: true, rules: "
	    "[[]]}\n";
	struct zm_rbac_sources src = {0};
	struct zm_rbac_result r;
	struct zm_rbac_conn c = {0};
	struct zm_config *cfg;
	char err[ERRLEN];

	if (!ok(!zm_config_load_buf("cfg.yaml", text, strlen(text), &cfg, err, sizeof(err)),
		"dry-run config loads"))
		return;
	src.cfg = cfg;
	c.dst = &cfg->workloads[0];
	c.src_ip = A("198.18.1.1");
	c.dst_ip = A("198.18.0.10");
	c.dst_port = 80;
	zm_rbac_evaluate(&src, &c, &r);
	ok(r.allow && r.dry_run_differs, "dry-run deny: enforced allow, differs");
	is_str(r.dry_run, "with dry-run policies: deny (denied by policy ns1/d)", "dry-run text");
	index_same(&src, &c, &r, "dry-run deny");
	c.dst = NULL;
	is_int(zm_rbac_evaluate(&src, &c, &r), -EINVAL, "no destination workload: -EINVAL");
	ok(!r.allow, "no destination workload: deny");
	zm_config_free(cfg);
}

#include "test_rbac_yaml.h"

/* Evaluate CLIENT (or id) to workload uid of cfg at port 8080 through src. */
static void eval_to(const struct zm_rbac_sources *src, const struct zm_config *cfg, const char *uid,
		    const char *id, struct zm_rbac_result *r)
{
	struct zm_rbac_conn c = {A("198.18.1.1"), A("198.18.0.10"), 8080, id,
				 zm_config_workload_by_uid(cfg, uid)};

	zm_rbac_evaluate(src, &c, r);
}

/*
 * The policy index as ztunnel uses it: built per config snapshot, for one node's workloads. A
 * workload whose labels change is judged by the policies its new labels select once the index
 * is rebuilt for the new config; an index of the old config is ignored, not trusted; workloads
 * of other nodes are not indexed yet decided the same; and with the bench's 1,000 ALLOW
 * policies (every one selecting the server) and one DENY after them, the entry holds all of
 * them in order.
 */
static void test_index(void)
{
	static const char *const istio =
	    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	    "metadata: {name: a, namespace: ns1}\n"
	    "spec: {selector: {matchLabels: {app: server}}, rules: [{from: [{source: "
	    "{principals: [cluster.local/ns/ns1/sa/client]}}]}]}\n---\n"
	    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	    "metadata: {name: d, namespace: ns1}\n"
	    "spec: {selector: {matchLabels: {app: locked}}, action: DENY, rules: [{}]}\n";
	static const char *const wl_fmt =
	    "workloads:\n"
	    "- {uid: s, name: server, namespace: ns1, node: n1, workloadIps: [198.18.0.10],\n"
	    "   labels: {app: %s}}\n"
	    "- {uid: o, name: other, namespace: ns1, node: n2, workloadIps: [198.18.0.20],\n"
	    "   labels: {app: server}}\n";
	struct zm_config *before = NULL, *after = NULL;
	const struct zm_rbac_set *sets[1];
	struct zm_rbac_index *ib = NULL, *ia = NULL;
	struct zm_rbac_index_stats st;
	struct zm_rbac_sources src;
	struct zm_rbac_result r, w;
	struct zm_rbac_set *set = NULL;
	char text[1024], err[ERRLEN], *big;
	size_t i, used;

	snprintf(text, sizeof(text), wl_fmt, "server");
	if (!ok(!zm_config_load_buf("a.yaml", text, strlen(text), &before, err, sizeof(err)),
		"index: first config loads"))
		return;
	snprintf(text, sizeof(text), wl_fmt, "locked");
	if (!ok(!zm_config_load_buf("b.yaml", text, strlen(text), &after, err, sizeof(err)) &&
		    !zm_rbac_load_buf("p.yaml", istio, strlen(istio), &set, err, sizeof(err)),
		"index: second config and policies load"))
		goto out;
	sets[0] = set;
	src = (struct zm_rbac_sources){before, sets, 1, NULL};
	ib = zm_rbac_index_build(&src, "n1");
	zm_rbac_index_stats(ib, &st);
	ok(ib && st.workloads == 1 && st.policy_refs == 1 && st.peer_auth == 0,
	   "index: node n1's one workload, one policy applies to it (%zu, %zu)", st.workloads,
	   st.policy_refs);
	src.index = ib;
	eval_to(&src, before, "s", CLIENT, &r);
	ok(r.allow && !strcmp(r.policy, "ns1/a"), "index: app=server allowed by ns1/a");
	eval_to(&src, before, "o", ALIEN, &r);
	ok(!r.allow && strstr(r.reason, "no allow policy matched (1 apply: ns1/a)"),
	   "index: a workload of another node, not indexed, still decided: %s", r.reason);

	/* The labels change: a new config, the same policies. */
	src = (struct zm_rbac_sources){after, sets, 1, ib};
	eval_to(&src, after, "s", CLIENT, &r);
	ok(!r.allow && !strcmp(r.policy, "ns1/d"),
	   "index: the old config's index is ignored for the new config: %s", r.reason);
	ia = zm_rbac_index_build(&src, "n1");
	src.index = ia;
	eval_to(&src, after, "s", CLIENT, &r);
	ok(!r.allow && !strcmp(r.policy, "ns1/d"), "index: app=locked now denied by ns1/d: %s",
	   r.reason);
	src.index = NULL;
	eval_to(&src, after, "s", CLIENT, &w);
	ok(index_result_same(&r, &w), "index: rebuilt index decides as the walk");
	zm_rbac_index_free(ia);
	ia = NULL;
	zm_rbac_set_free(set);
	set = NULL;

	/* The bench's policy file, then one DENY for a principal none of them allows. */
	big = malloc(1024 * 1024);
	if (!ok(big != NULL, "index: memory for 1,000 policies"))
		goto out;
	used = 0;
	for (i = 1; i <= 1000; i++)
		used += (size_t)snprintf(
		    big + used, 1024 * 1024 - used,
		    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		    "metadata: {name: allow-%zu, namespace: ns1}\n"
		    "spec:\n  selector: {matchLabels: {app: server}}\n  action: ALLOW\n"
		    "  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/o-%zu/sa/c, "
		    "cluster.local/ns/ns1/sa/client]}\n    to:\n    - operation: {ports: "
		    "[\"8080\"]}\n"
		    "---\n",
		    i, i);
	snprintf(big + used, 1024 * 1024 - used,
		 "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		 "metadata: {name: deny, namespace: ns1}\n"
		 "spec: {action: DENY, rules: [{from: [{source: {principals: "
		 "[cluster.local/ns/o-7/sa/c]}}]}]}\n");
	if (!ok(!zm_rbac_load_buf("big.yaml", big, strlen(big), &set, err, sizeof(err)),
		"index: 1,001 policies load")) {
		printf("#   %s\n", err);
		free(big);
		goto out;
	}
	free(big);
	sets[0] = set;
	src = (struct zm_rbac_sources){before, sets, 1, NULL};
	ia = zm_rbac_index_build(&src, NULL);
	zm_rbac_index_stats(ia, &st);
	/* server and other (ns1, app=server too): the 1,000 ALLOW and the DENY each. */
	ok(ia && st.workloads == 2 && st.policy_refs == 2 * 1001,
	   "index: both workloads hold the 1,000 ALLOW and the DENY (%zu references)",
	   st.policy_refs);
	{
		static const char *const ids[] = {CLIENT, "spiffe://cluster.local/ns/o-7/sa/c",
						  "spiffe://cluster.local/ns/o-999/sa/c", ALIEN,
						  NULL};
		static const char *const want[] = {"ns1/allow-1", "ns1/deny", "ns1/allow-999", "",
						   ""};

		for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			src.index = NULL;
			eval_to(&src, before, "s", ids[i], &w);
			src.index = ia;
			eval_to(&src, before, "s", ids[i], &r);
			ok(index_result_same(&r, &w) && !strcmp(r.policy, want[i]),
			   "index: 1,001 policies, %s: %s", ids[i] ? ids[i] : "plaintext",
			   r.reason);
		}
	}
out:
	zm_rbac_index_free(ia);
	zm_rbac_index_free(ib);
	zm_rbac_set_free(set);
	zm_config_free(after);
	zm_config_free(before);
}

/* Fast-path compiler: what it drops, and that the evaluator denies each dropped region. */
static const struct {
	const char *name, *policies, *istio, *want; /* want: "dst port src/len policy;" ... */
} fp_cases[] = {
    {"STRICT drops all plaintext to the namespace", "",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, "
     "namespace: ns1}\n"
     "spec: {mtls: {mode: STRICT}}\n",
     "198.18.0.10 0 any ns1/strict;198.18.0.30 0 any ns1/strict;"},
    {"DENY ipBlocks on a port", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: "
     "ns2}\n"
     "spec: {action: DENY, rules: [{from: [{source: {ipBlocks: [198.18.1.0/24]}}], to: "
     "[{operation: {ports: [\"80\"]}}]}]}\n",
     "198.18.0.20 80 198.18.1.0/24 ns2/d;"},
    {"ALLOW by principal only: plaintext never allowed",
     P("a", "ns2", "Namespace", "Allow", "[[[{principals: [{Presence: {}}]}]]]"), NULL,
     "198.18.0.20 0 any ns2/a;"},
    {"ALLOW by source range: nothing certain",
     P("a", "ns2", "Namespace", "Allow", "[[[{sourceIps: [198.18.1.0/24]}]]]"), NULL, ""},
    {"dry-run never compiled",
     "- {name: d, namespace: ns2, scope: Namespace, action: Deny, dryRun: true, rules: [[]]}\n",
     NULL, ""},
    {"L7 without waypoint drops all", "",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: l7, namespace: "
     "ns2}\n"
     "spec: {rules: [{to: [{operation: {paths: [/x]}}]}]}\n",
     "198.18.0.20 0 any ns2/l7;"},
};

static void test_fastpath(void)
{
	char text[8192], err[ERRLEN], got[1024], a[ZM_ADDR_STRLEN], b[ZM_ADDR_STRLEN];
	struct zm_dp_policy_rule *rules;
	size_t i, j, n;

	for (i = 0; i < sizeof(fp_cases) / sizeof(fp_cases[0]); i++) {
		struct zm_config *cfg = NULL;
		struct zm_rbac_set *set = NULL;
		const struct zm_rbac_set *sets[1];
		struct zm_rbac_sources src;
		bool consistent = true;

		snprintf(text, sizeof(text), workloads, "");
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s",
			 *fp_cases[i].policies ? "policies:\n" : "", fp_cases[i].policies);
		if (zm_config_load_buf("cfg.yaml", text, strlen(text), &cfg, err, sizeof(err)) ||
		    (fp_cases[i].istio &&
		     zm_rbac_load_buf("p.yaml", fp_cases[i].istio, strlen(fp_cases[i].istio), &set,
				      err, sizeof(err)))) {
			ok(0, "fastpath %s: inputs load (%s)", fp_cases[i].name, err);
			zm_config_free(cfg);
			continue;
		}
		sets[0] = set;
		src = (struct zm_rbac_sources){cfg, sets, set ? 1 : 0, NULL};
		if (!ok(!zm_rbac_compile_fastpath(&src, NULL, &rules, &n), "fastpath %s: compiles",
			fp_cases[i].name))
			n = 0, rules = NULL;
		got[0] = '\0';
		for (j = 0; j < n; j++) {
			struct zm_rbac_result r;
			struct zm_rbac_conn c = {
			    rules[j].src, rules[j].dst,
			    rules[j].dst_port ? rules[j].dst_port : 12345, NULL,
			    zm_config_workload_by_ip(cfg, NULL, &rules[j].dst)};

			if (!rules[j].src_prefix)
				zm_addr_parse("203.0.113.9", &c.src_ip);
			zm_rbac_evaluate(&src, &c, &r);
			consistent &= !r.allow;
			zm_addr_format(&rules[j].dst, a, sizeof(a));
			zm_addr_format(&rules[j].src, b, sizeof(b));
			if (rules[j].src_prefix)
				snprintf(b + strlen(b), sizeof(b) - strlen(b), "/%u",
					 rules[j].src_prefix);
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s %u %s %s;", a,
				 rules[j].dst_port, rules[j].src_prefix ? b : "any",
				 rules[j].policy);
		}
		is_str(got, fp_cases[i].want, "fastpath %s: rules", fp_cases[i].name);
		ok(consistent, "fastpath %s: the evaluator denies every dropped region",
		   fp_cases[i].name);
		free(rules);
		zm_rbac_set_free(set);
		zm_config_free(cfg);
	}
}

/*
 * Long principal and namespace lists (the index splits those of 8 entries or more into sorted
 * Exact values and the rest): every kind of entry still matches where it should, positive and
 * negative, first and last, through the index and walked alike.
 */
static void test_long_lists(void)
{
	static char istio[8192];
	static const struct {
		const char *id;
		unsigned int port;
		const char *policy; /* deciding policy, "" for "no allow policy matched" */
	} conns[] = {
	    {"spiffe://cluster.local/ns/n-0/sa/c", 8080, "ns1/a"},
	    {"spiffe://cluster.local/ns/n-39/sa/c", 8080, "ns1/a"},
	    {"spiffe://cluster.local/ns/n-40/sa/c", 8080, ""},
	    {"spiffe://cluster.local/ns/n-3/sa/cc", 8080, ""},
	    {"spiffe://cluster.local/ns/pre-x/sa/y", 8080, "ns1/a"},
	    {"spiffe://cluster.local/ns/q/sa/suffix", 8080, "ns1/a"},
	    {"spiffe://cluster.local/ns/bad-18/sa/c", 8080, "ns1/d"},
	    {"spiffe://cluster.local/ns/bad-19/sa/c", 8080, ""},
	    {"spiffe://cluster.local/ns/evil-1/sa/c", 8080, "ns1/d"},
	    {"spiffe://cluster.local/ns/x-3/sa/c", 9090, ""},
	    {"spiffe://cluster.local/ns/x-10/sa/c", 9090, "ns1/a"},
	    {"spiffe://cluster.local/ns/n-1/sa/c", 9090, "ns1/a"},
	    {NULL, 9090, ""},
	};
	struct zm_rbac_sources src = {0};
	const struct zm_rbac_set *sets[1];
	struct zm_rbac_set *set = NULL;
	struct zm_rbac_index_stats st;
	struct zm_rbac_result r, w;
	struct zm_config *cfg = NULL;
	char text[1024], err[ERRLEN];
	size_t i;

	snprintf(istio, sizeof(istio), "%s",
		 "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		 "metadata: {name: d, namespace: ns1}\nspec:\n  action: DENY\n  rules:\n"
		 "  - from:\n    - source:\n        namespaces: [");
	for (i = 0; i < 19; i++)
		snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio), "bad-%zu, ", i);
	snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio), "%s",
		 "\"evil-*\"]\n---\napiVersion: security.istio.io/v1\n"
		 "kind: AuthorizationPolicy\nmetadata: {name: a, namespace: ns1}\nspec:\n"
		 "  rules:\n  - from:\n    - source:\n        principals: [\"*/sa/suffix\", ");
	for (i = 0; i < 40; i++)
		snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio),
			 "cluster.local/ns/n-%zu/sa/c, ", i);
	snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio), "%s",
		 "\"cluster.local/ns/pre-*\"]\n    to: [{operation: {ports: [\"8080\"]}}]\n"
		 "  - from:\n    - source:\n        principals: [\"*\"]\n"
		 "        notPrincipals: [");
	for (i = 0; i < 10; i++)
		snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio),
			 "%scluster.local/ns/x-%zu/sa/c", i ? ", " : "", i);
	snprintf(istio + strlen(istio), sizeof(istio) - strlen(istio), "%s",
		 "]\n    to: [{operation: {ports: [\"9090\"]}}]\n");
	snprintf(text, sizeof(text), workloads, "");
	if (!ok(!zm_config_load_buf("cfg.yaml", text, strlen(text), &cfg, err, sizeof(err)) &&
		    !zm_rbac_load_buf("long.yaml", istio, strlen(istio), &set, err, sizeof(err)),
		"long lists: inputs load")) {
		printf("#   %s\n", err);
		goto out;
	}
	sets[0] = set;
	src = (struct zm_rbac_sources){cfg, sets, 1, NULL};
	src.index = zm_rbac_index_build(&src, NULL);
	zm_rbac_index_stats(src.index, &st);
	ok(st.long_lists == 3,
	   "long lists: the namespaces, principals and notPrincipals split (%zu)", st.long_lists);
	for (i = 0; i < sizeof(conns) / sizeof(conns[0]); i++) {
		struct zm_rbac_conn c = {A("198.18.1.1"), A("198.18.0.10"), (__u16)conns[i].port,
					 conns[i].id, zm_config_workload_by_uid(cfg, "s")};
		struct zm_rbac_sources walk = src;

		walk.index = NULL;
		zm_rbac_evaluate(&src, &c, &r);
		zm_rbac_evaluate(&walk, &c, &w);
		ok(index_result_same(&r, &w) && !strcmp(r.policy, conns[i].policy) &&
		       r.allow == !strcmp(conns[i].policy, "ns1/a"),
		   "long lists: %s port %u: %s", conns[i].id ? conns[i].id : "plaintext",
		   conns[i].port, r.reason);
	}
out:
	zm_rbac_index_free((struct zm_rbac_index *)src.index);
	zm_rbac_set_free(set);
	zm_config_free(cfg);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_dry_run_report();
	test_all_fields();
	test_bad_inputs();
	test_fastpath();
	test_index();
	test_long_lists();
	tap_done();
}
