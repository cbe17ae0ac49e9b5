/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Istio YAML half of test_rbac.c: what every field of tests/data/policies/all-fields.yaml
 * becomes in the model, and the exact message of each refused input.
 */

static const struct zm_rbac_policy *find_policy(const struct zm_rbac_set *s, const char *kind,
						const char *key)
{
	size_t i;

	for (i = 0; i < s->n_policies; i++)
		if (!strcmp(s->policies[i].kind, kind) && !strcmp(s->policies[i].key, key))
			return &s->policies[i];
	return NULL;
}

static void test_every_field(const struct zm_rbac_policy *p)
{
	const struct zm_cfg_rule *r = &p->rules[0];
	const struct zm_cfg_match *g = &r->clauses[0].matches[0];
	const struct zm_cfg_match *to = &r->clauses[1].matches[0];
	char a[ZM_ADDR_STRLEN];

	is_int(p->scope, ZM_CFG_SCOPE_WORKLOAD_SELECTOR, "every-field: selector scope");
	ok(p->n_selector == 1 && !strcmp(p->selector[0].key, "app") &&
	       !strcmp(p->selector[0].value, "server"),
	   "every-field: matchLabels app=server");
	is_int(p->action, ZM_CFG_ACTION_ALLOW, "every-field: ALLOW");
	ok(!p->dry_run && !*p->l7 && p->n_rules == 1, "every-field: one L4 rule, enforced");
	is_int(r->n_clauses, 8, "rule: from, to and six when clauses");
	is_int(r->clauses[0].n_matches, 2, "from: one group per source");
	ok(g->principals.n == 4 && g->principals.v[0].kind == ZM_CFG_STR_EXACT &&
	       !strcmp(g->principals.v[0].value, "cluster.local/ns/ns1/sa/client") &&
	       g->principals.v[1].kind == ZM_CFG_STR_PREFIX &&
	       !strcmp(g->principals.v[1].value, "cluster.local/ns/team-") &&
	       g->principals.v[2].kind == ZM_CFG_STR_SUFFIX &&
	       !strcmp(g->principals.v[2].value, "/sa/admin") &&
	       g->principals.v[3].kind == ZM_CFG_STR_PRESENCE,
	   "principals: exact, prefix*, *suffix, * = Presence");
	ok(g->not_principals.n == 1 && g->namespaces.n == 1 && g->not_namespaces.n == 1 &&
	       !strcmp(g->not_namespaces.v[0].value, "ns-bad"),
	   "notPrincipals, namespaces, notNamespaces");
	ok(g->service_accounts.n == 1 && !strcmp(g->service_accounts.v[0].namespace, "ns1") &&
	       !strcmp(g->service_accounts.v[0].service_account, "client") &&
	       g->not_service_accounts.n == 1,
	   "serviceAccounts ns/sa");
	ok(g->source_ips.n == 3 && g->source_ips.v[1].prefix_len == 48 &&
	       !strcmp(zm_addr_format(&g->source_ips.v[2].addr, a, sizeof(a)), "198.18.1.0"),
	   "ipBlocks + remoteIpBlocks -> sourceIps");
	ok(g->not_source_ips.n == 2 && g->not_source_ips.v[0].prefix_len == 32,
	   "notIpBlocks + notRemoteIpBlocks -> notSourceIps (bare address = /32)");
	ok(to->destination_ports.n == 2 && to->destination_ports.v[0] == 8080 &&
	       to->destination_ports.v[1] == 9090 && to->not_destination_ports.n == 1 &&
	       to->not_destination_ports.v[0] == 9999,
	   "ports (strings or numbers), notPorts");
	ok(r->clauses[2].matches[0].source_ips.n == 1 &&
	       r->clauses[2].matches[0].not_source_ips.n == 1 &&
	       r->clauses[3].matches[0].source_ips.v[0].prefix_len == 15,
	   "when source.ip / remote.ip");
	ok(r->clauses[4].matches[0].namespaces.v[0].kind == ZM_CFG_STR_PREFIX &&
	       r->clauses[4].matches[0].not_namespaces.n == 1,
	   "when source.namespace");
	ok(r->clauses[5].matches[0].principals.v[0].kind == ZM_CFG_STR_PREFIX,
	   "when source.principal");
	ok(r->clauses[6].matches[0].destination_ips.n == 1 &&
	       r->clauses[6].matches[0].not_destination_ips.n == 1,
	   "when destination.ip");
	ok(r->clauses[7].matches[0].destination_ports.n == 2 &&
	       r->clauses[7].matches[0].not_destination_ports.v[0] == 9999,
	   "when destination.port");
}

static void test_all_fields(void)
{
	const char *path = "tests/data/policies/all-fields.yaml";
	const struct zm_rbac_policy *p;
	struct zm_rbac_set *s;
	char err[ERRLEN];

	if (!ok(!zm_rbac_load_file(path, &s, err, sizeof(err)), "%s loads", path)) {
		printf("#   %s\n", err);
		return;
	}
	is_int(s->n_policies, 4, "four documents, four policies");
	p = find_policy(s, "AuthorizationPolicy", "ns1/every-field");
	if (ok(p != NULL, "every-field found"))
		test_every_field(p);
	p = find_policy(s, "AuthorizationPolicy", "ns1/deny-bad-ns");
	ok(p && p->scope == ZM_CFG_SCOPE_NAMESPACE && p->action == ZM_CFG_ACTION_DENY &&
	       p->line == 53,
	   "v1beta1 DENY without selector: Namespace scope, line of the document");
	p = find_policy(s, "PeerAuthentication", "istio-system/default");
	ok(p && p->scope == ZM_CFG_SCOPE_GLOBAL && p->peer_auth == ZM_RBAC_PA_MESH &&
	       p->mtls_mode == ZM_MTLS_STRICT && !p->n_rules && !p->n_port_mtls,
	   "mesh STRICT: Global, mode kept, no rules");
	p = find_policy(s, "PeerAuthentication", "ns1/server-ports");
	ok(p && p->peer_auth == ZM_RBAC_PA_WORKLOAD && p->mtls_mode == ZM_MTLS_STRICT &&
	       p->n_port_mtls == 1 && p->port_mtls[0].port == 8081 &&
	       p->port_mtls[0].mode == ZM_MTLS_PERMISSIVE && p->loose_ports.n == 1 &&
	       p->loose_ports.v[0] == 8081 && !p->strict_ports.n,
	   "workload STRICT with a PERMISSIVE port");
	zm_rbac_set_free(s);
	is_int(zm_rbac_load_file("tests/data/policies/nope.yaml", &s, err, sizeof(err)), -ENOENT,
	       "missing file: -ENOENT");
	is_str(err, "tests/data/policies/nope.yaml: (file): cannot read: No such file or directory",
	       "missing file message");
}

#define AP "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
#define MD "metadata: {name: a, namespace: ns1}\n"

static const struct {
	const char *yaml, *msg;
} bad_inputs[] = {
    {AP MD "spec: {action: AUDIT}\n",
     "p.yaml:4: spec.action: action AUDIT is not supported: ztunnel enforces ALLOW and DENY only"},
    {AP MD "spec: {action: CUSTOM, provider: {name: x}}\n",
     "p.yaml:4: spec.action: action CUSTOM is not supported: ztunnel enforces ALLOW and DENY only\n"
     "p.yaml:4: spec.provider: not supported: provider belongs to action CUSTOM"},
    {AP MD "spec: {action: allow}\n",
     "p.yaml:4: spec.action: unknown value \"allow\" (want ALLOW, DENY, AUDIT or CUSTOM)"},
    {"apiVersion: security.istio.io/v1\nkind: Sidecar\n" MD,
     "p.yaml:2: kind: unknown kind \"Sidecar\" (want AuthorizationPolicy or PeerAuthentication)"},
    {"apiVersion: networking.istio.io/v1\nkind: AuthorizationPolicy\n" MD,
     "p.yaml:1: apiVersion: unsupported apiVersion \"networking.istio.io/v1\" (want "
     "security.istio.io/v1 or security.istio.io/v1beta1)"},
    {AP MD "spec: {rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source.ipBlocks[0]: invalid CIDR \"10.0.0.0/33\""},
    {AP MD "spec: {rules: [{from: [{source: {notIpBlocks: [bad]}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source.notIpBlocks[0]: invalid CIDR \"bad\""},
    {AP MD "spec: {selector: {}}\n",
     "p.yaml:4: spec.selector: empty selector selects nothing here: leave selector out to apply "
     "to the whole namespace"},
    {AP MD "spec: {selector: {matchLabels: {}}}\n",
     "p.yaml:4: spec.selector: empty selector selects nothing here: leave selector out to apply "
     "to the whole namespace"},
    {AP MD "spec: {rules: [{from: [{source: {principal: [x]}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source.principal: unknown field"},
    {AP MD "spec: {rules: [{from: [{source: {}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source: must set at least one field"},
    {AP MD "spec: {rules: [{from: [{}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source: missing required field"},
    {AP MD "spec: {rules: [{to: [{operation: {ports: [\"0\"]}}]}]}\n",
     "p.yaml:4: spec.rules[0].to[0].operation.ports[0]: port 0 out of range (want 1..65535)"},
    {AP MD "spec: {rules: [{to: [{operation: {}}]}]}\n",
     "p.yaml:4: spec.rules[0].to[0].operation: must set at least one field"},
    {AP MD "spec: {rules: [{from: [{source: {principals: [\"a*b\"]}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source.principals[0]: wildcard * is allowed only at the "
     "start or the end"},
    {AP MD "spec: {rules: [{when: [{key: source.ip}]}]}\n",
     "p.yaml:4: spec.rules[0].when[0]: needs values or notValues"},
    {AP MD "spec: {rules: [{when: [{key: source.port, values: [\"1\"]}]}]}\n",
     "p.yaml:4: spec.rules[0].when[0].key: unknown condition key \"source.port\" (want "
     "source.ip, remote.ip, source.namespace, source.principal, destination.ip, "
     "destination.port or an L7 key)"},
    {AP MD "spec: {rules: [{when: [{key: destination.ip, values: [300.1.1.1]}]}]}\n",
     "p.yaml:4: spec.rules[0].when[0].values[0]: invalid CIDR \"300.1.1.1\""},
    {AP MD "spec: {targetRefs: [{kind: Service, name: x}], selector: {matchLabels: {a: b}}}\n",
     "p.yaml:4: spec: only one of targetRefs or selector can be set"},
    {AP MD "spec: {targetRefs: ok}\n",
     "p.yaml:4: spec.targetRefs: want a list of {group, kind, name}"},
    {AP MD "spec: {rules: [{from: [{source: {serviceAccounts: [client]}}]}]}\n",
     "p.yaml:4: spec.rules[0].from[0].source.serviceAccounts[0]: invalid service account "
     "\"client\" (want <namespace>/<name>)"},
    {AP "metadata: {namespace: ns1}\n", "p.yaml:3: metadata.name: missing required field"},
    {AP MD "spec: {}\n---\n" AP MD,
     "p.yaml:6: metadata.name: AuthorizationPolicy ns1/a given twice (first at line 1)"},
    {AP MD "spec: {rules: {from: []}}\n", "p.yaml:4: spec.rules: expected a list, got a mapping"},
    {"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n" MD
     "spec: {mtls: {mode: STRICTER}}\n",
     "p.yaml:4: spec.mtls.mode: unknown value \"STRICTER\" (want UNSET, DISABLE, PERMISSIVE or "
     "STRICT)"},
    {"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n" MD
     "spec: {portLevelMtls: {8080: {mode: STRICT}}}\n",
     "p.yaml:4: spec.portLevelMtls: requires a selector"},
    {"- a\n- b\n", "p.yaml:1: (root): expected an Istio resource (a mapping), got a list"},
    {"a: [\n",
     "p.yaml:2: (yaml): did not find expected node content (while parsing a flow node at line 2)"},
};

static void test_bad_inputs(void)
{
	struct zm_rbac_set *s;
	char err[ERRLEN];
	size_t i;
	int r;

	for (i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
		r = zm_rbac_load_buf("p.yaml", bad_inputs[i].yaml, strlen(bad_inputs[i].yaml), &s,
				     err, sizeof(err));
		ok(r == -EINVAL && !s, "bad input %zu refused", i);
		is_str(err, bad_inputs[i].msg, "bad input %zu message", i);
	}
}
