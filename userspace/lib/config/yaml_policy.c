// SPDX-License-Identifier: Apache-2.0
/*
 * The `policies` section of the local config: L4 authorization policies as the reference
 * ztunnel's rbac.rs Authorization deserializes them. `rules` is a list of rules, a rule a list
 * of clauses, a clause a list of match groups, a match group a mapping of attribute lists.
 * String matchers are written `- Exact: x` (also serde_yaml's tagged form `- !Exact x`), with
 * Prefix, Suffix and `Presence: {}`; service accounts as {namespace, serviceAccount}; IP ranges
 * as CIDR text (a bare address is a host range); ports as integers.
 */
#include <errno.h>
#include <string.h>

#include "config/yaml_internal.h"

static const char *const zm_yl_scopes[] = {"Global", "Namespace", "WorkloadSelector", NULL};
static const char *const zm_yl_actions[] = {"Allow", "Deny", NULL};
static const char *const zm_yl_str_kinds[] = {"Exact", "Prefix", "Suffix", "Presence", NULL};

#define ZM_YL_STR_MATCH_WANT "a string match (Exact, Prefix, Suffix or Presence)"

static int zm_yl_str_kind(const char *s, size_t len)
{
	int i;

	for (i = 0; zm_yl_str_kinds[i]; i++)
		if (strlen(zm_yl_str_kinds[i]) == len && !memcmp(zm_yl_str_kinds[i], s, len))
			return i;
	return -1;
}

/* The matcher's value: text for Exact/Prefix/Suffix, nothing ({}, [] or null) for Presence. */
static int zm_yl_str_match_value(struct zm_yl *yl, yaml_node_t *v, struct zm_cfg_str_match *m)
{
	bool empty = zm_yl_is_null(v) ||
		     (v->type == YAML_MAPPING_NODE &&
		      v->data.mapping.pairs.top == v->data.mapping.pairs.start) ||
		     (v->type == YAML_SEQUENCE_NODE &&
		      v->data.sequence.items.top == v->data.sequence.items.start);

	if (m->kind == ZM_CFG_STR_PRESENCE) {
		m->value = "";
		if (empty)
			return 0;
		zm_yl_error(yl, v, "Presence takes no value (write Presence: {})");
		return -EINVAL;
	}
	return zm_yl_str(yl, v, &m->value);
}

static int zm_yl_str_match_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_str_match *m = elem;
	char q[ZM_YL_QUOTE_BUF];
	yaml_node_t *k, *v;
	size_t old;
	int kind, r;

	(void)idx;
	/* serde_yaml's tagged form: !Exact value */
	if (n->type == YAML_SCALAR_NODE && n->tag && n->tag[0] == '!' && n->tag[1] != '!') {
		kind = zm_yl_str_kind((const char *)n->tag + 1, strlen((const char *)n->tag + 1));
		if (kind < 0) {
			zm_cfg_quote(n->tag, strlen((const char *)n->tag), q, sizeof(q));
			zm_yl_error(yl, n,
				    "unknown string match tag %s (want !Exact, !Prefix, "
				    "!Suffix or !Presence)",
				    q);
			return -EINVAL;
		}
		m->kind = (enum zm_cfg_str_kind)kind;
		return zm_yl_str_match_value(yl, n, m);
	}
	if (n->type != YAML_MAPPING_NODE ||
	    n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1) {
		zm_yl_error(yl, n, "expected %s, got %s", ZM_YL_STR_MATCH_WANT,
			    n->type == YAML_MAPPING_NODE ? "a mapping without exactly one key"
							 : zm_yl_kind_name(n));
		return -EINVAL;
	}
	k = zm_yl_node(yl, n->data.mapping.pairs.start[0].key);
	v = zm_yl_node(yl, n->data.mapping.pairs.start[0].value);
	if (!k || !v)
		return -EINVAL;
	kind = k->type == YAML_SCALAR_NODE
		   ? zm_yl_str_kind((const char *)k->data.scalar.value, k->data.scalar.length)
		   : -1;
	if (kind < 0) {
		zm_yl_error(yl, k,
			    "unknown string match %s (want Exact, Prefix, Suffix or Presence)",
			    zm_yl_quote(k, q, sizeof(q)));
		return -EINVAL;
	}
	m->kind = (enum zm_cfg_str_kind)kind;
	old = zm_yl_push_field(yl, zm_yl_str_kinds[kind]);
	r = zm_yl_str_match_value(yl, v, m);
	zm_yl_pop(yl, old);
	return r;
}

static int zm_yl_str_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_str_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_str_match_item, (void **)&l->v, &l->n);
}

static const struct zm_yl_field zm_yl_sa_fields[] = {
    ZM_YL_F("namespace", ZM_YL_STR, struct zm_cfg_sa_match, namespace,
	    ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
    ZM_YL_F("serviceAccount", ZM_YL_STR, struct zm_cfg_sa_match, service_account,
	    ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
};

static int zm_yl_sa_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	return zm_yl_mapping(yl, n, zm_yl_sa_fields, ZM_YL_N(zm_yl_sa_fields), elem);
}

static int zm_yl_sa_list(struct zm_yl *yl, yaml_node_t *n, void *member)
{
	struct zm_cfg_sa_list *l = member;

	return zm_yl_list(yl, n, sizeof(*l->v), zm_yl_sa_item, (void **)&l->v, &l->n);
}

#define MATCH(name, member, fn) ZM_YL_FUNC_AT(name, struct zm_cfg_match, member, 0, fn)

static const struct zm_yl_field zm_yl_match_fields[] = {
    MATCH("namespaces", namespaces, zm_yl_str_list),
    MATCH("notNamespaces", not_namespaces, zm_yl_str_list),
    MATCH("serviceAccounts", service_accounts, zm_yl_sa_list),
    MATCH("notServiceAccounts", not_service_accounts, zm_yl_sa_list),
    MATCH("principals", principals, zm_yl_str_list),
    MATCH("notPrincipals", not_principals, zm_yl_str_list),
    MATCH("sourceIps", source_ips, zm_yl_cidr_list),
    MATCH("notSourceIps", not_source_ips, zm_yl_cidr_list),
    MATCH("destinationIps", destination_ips, zm_yl_cidr_list),
    MATCH("notDestinationIps", not_destination_ips, zm_yl_cidr_list),
    MATCH("destinationPorts", destination_ports, zm_yl_port_list),
    MATCH("notDestinationPorts", not_destination_ports, zm_yl_port_list),
};

static int zm_yl_match_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	(void)idx;
	/* An empty group ({}) is legal and never matches, as in the reference. */
	return zm_yl_mapping(yl, n, zm_yl_match_fields, ZM_YL_N(zm_yl_match_fields), elem);
}

static int zm_yl_clause_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_clause *c = elem;

	(void)idx;
	return zm_yl_list(yl, n, sizeof(*c->matches), zm_yl_match_item, (void **)&c->matches,
			  &c->n_matches);
}

static int zm_yl_rule_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_rule *r = elem;

	(void)idx;
	return zm_yl_list(yl, n, sizeof(*r->clauses), zm_yl_clause_item, (void **)&r->clauses,
			  &r->n_clauses);
}

static int zm_yl_rules(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_cfg_policy *p = obj;

	return zm_yl_list(yl, n, sizeof(*p->rules), zm_yl_rule_item, (void **)&p->rules,
			  &p->n_rules);
}

#define POL(name, kind, member, flags) ZM_YL_F(name, kind, struct zm_cfg_policy, member, flags)

static const struct zm_yl_field zm_yl_policy_fields[] = {
    POL("name", ZM_YL_STR, name, ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
    POL("namespace", ZM_YL_STR, namespace, ZM_YL_REQUIRED | ZM_YL_NONEMPTY),
    ZM_YL_E("scope", struct zm_cfg_policy, scope, ZM_YL_REQUIRED, zm_yl_scopes),
    ZM_YL_E("action", struct zm_cfg_policy, action, ZM_YL_REQUIRED, zm_yl_actions),
    ZM_YL_FUNC("rules", 0, zm_yl_rules),
    POL("dryRun", ZM_YL_BOOL, dry_run, 0),
};

static int zm_yl_policy_item(struct zm_yl *yl, yaml_node_t *n, void *elem, size_t idx)
{
	struct zm_cfg_policy *p = elem;

	(void)idx;
	p->line = zm_yl_line(n);
	return zm_yl_mapping(yl, n, zm_yl_policy_fields, ZM_YL_N(zm_yl_policy_fields), p);
}

int zm_yl_policies(struct zm_yl *yl, yaml_node_t *n, void *obj)
{
	struct zm_config *cfg = obj;

	return zm_yl_list(yl, n, sizeof(*cfg->policies), zm_yl_policy_item, (void **)&cfg->policies,
			  &cfg->n_policies);
}
